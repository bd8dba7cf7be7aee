//! # courier-conformance
//!
//! One behavioural suite for every Courier backend, grouped like the Jakarta Messaging TCK.
//! Each case is a public async function taking a [`Harness`]; the [`conformance_suite!`] macro
//! expands every case into its own `#[tokio::test]`, named `area::case_section`, so a failure
//! says what broke.
//!
//! ```ignore
//! // conformance-tests/tests/mybackend.rs
//! courier_conformance::conformance_suite!(MyHarness::new().await);
//! ```
//!
//! A [`Harness`] names the case's [`Harness::namespace`] (every destination a case creates is
//! a [`Harness::name`] under it) and deletes it in [`Harness::cleanup`], which runs after every
//! case, also a failed one. [`Harness::wait`] and [`Harness::quiet`] time the waits, so a
//! slower backend raises them. [`Harness::restart`] and [`Harness::crash`] (default
//! `Unsupported`) drive the [`persistence`] area, which runs alone under
//! [`harness::SERVER_LOCK`]; a backend sharing one server with other processes runs
//! [`ordinary_suite!`] and [`persistence_suite!`] in two test binaries instead.
//!
//! [`Harness::secured_factory`] (default `Unsupported`) hands the [`security`] area a factory
//! with the users of an [`AccessSpec`].
//!
//! Cases for an optional feature check [`courier_api::Capabilities`]: without it they assert
//! the operation answers `Unsupported` ([`gated`]).

#![forbid(unsafe_code)]

pub mod expect;
pub mod harness;

pub mod acknowledge;
pub mod browsing;
pub mod concurrency;
pub mod connection;
pub mod connection_loss;
pub mod dead_letter;
pub mod deletion;
pub mod delivery;
pub mod errors;
pub mod headers;
pub mod in_doubt;
pub mod listener;
pub mod messages;
pub mod ordering;
pub mod persistence;
pub mod pipelining;
pub mod properties;
pub mod queues;
pub mod security;
pub mod selector_index;
pub mod selectors;
pub mod space;
pub mod temporary;
pub mod topics;
pub mod transactions;
pub mod waits;

pub use harness::{gated, unique, AccessSpec, Grant, Harness, Namespace, SpecUser, QUIET, WAIT};

/// Expands one area's cases into `#[tokio::test]` functions in a module named after the area.
///
/// Each test takes [`harness::SERVER_LOCK`] (shared; the `exclusive` form takes it alone, for
/// cases that restart the backend), builds a harness and runs the case with
/// [`harness::run_case`]: [`Harness::cleanup`] runs whether the case passed, failed or
/// panicked, and only then is the outcome reported.
#[doc(hidden)]
#[macro_export]
macro_rules! cases {
    ($make:expr, $area:ident, [$($case:ident),* $(,)?]) => {
        $crate::cases!(@expand read, $make, $area, [$($case),*]);
    };
    (exclusive $make:expr, $area:ident, [$($case:ident),* $(,)?]) => {
        $crate::cases!(@expand write, $make, $area, [$($case),*]);
    };
    (@expand $lock:ident, $make:expr, $area:ident, [$($case:ident),*]) => {
        mod $area {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let _server = $crate::harness::SERVER_LOCK.$lock().await;
                    let harness = $make;
                    $crate::harness::run_case(
                        &harness,
                        concat!(stringify!($area), "::", stringify!($case)),
                        $crate::$area::$case(&harness),
                    )
                    .await;
                }
            )*
        }
    };
}

/// Expands the whole suite into one `#[tokio::test]` per case. `$make` is an expression that
/// builds a fresh [`Harness`] for each case (it may use `.await`).
///
/// The persistence cases restart the backend; they take [`harness::SERVER_LOCK`] alone, so
/// they never overlap another case of the same binary. A backend whose cases share one server
/// with other processes uses [`ordinary_suite!`] and [`persistence_suite!`] in two test
/// binaries instead, run one after the other.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::ordinary_suite!($make);
        $crate::persistence_suite!($make);
    };
}

/// Every area except persistence: cases that never restart the backend.
#[macro_export]
macro_rules! ordinary_suite {
    ($make:expr) => {
        $crate::acknowledge_cases!($make);
        $crate::browsing_cases!($make);
        $crate::concurrency_cases!($make);
        $crate::connection_cases!($make);
        $crate::connection_loss_cases!($make);
        $crate::dead_letter_cases!($make);
        $crate::deletion_cases!($make);
        $crate::delivery_cases!($make);
        $crate::errors_cases!($make);
        $crate::headers_cases!($make);
        $crate::in_doubt_cases!($make);
        $crate::listener_cases!($make);
        $crate::messages_cases!($make);
        $crate::ordering_cases!($make);
        $crate::pipelining_cases!($make);
        $crate::properties_cases!($make);
        $crate::queues_cases!($make);
        $crate::security_cases!($make);
        $crate::selector_index_cases!($make);
        $crate::selectors_cases!($make);
        $crate::space_cases!($make);
        $crate::temporary_cases!($make);
        $crate::topics_cases!($make);
        $crate::transactions_cases!($make);
    };
}

/// Only the persistence area: cases that restart or crash the backend.
#[macro_export]
macro_rules! persistence_suite {
    ($make:expr) => {
        $crate::persistence_cases!($make);
    };
}
