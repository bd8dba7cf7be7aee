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

#![forbid(unsafe_code)]

pub mod expect;
pub mod harness;

pub mod acknowledge;
pub mod browsing;
pub mod concurrency;
pub mod connection;
pub mod dead_letter;
pub mod delivery;
pub mod errors;
pub mod headers;
pub mod listener;
pub mod messages;
pub mod ordering;
pub mod pipelining;
pub mod properties;
pub mod queues;
pub mod selector_index;
pub mod selectors;
pub mod space;
pub mod temporary;
pub mod topics;
pub mod transactions;

pub use harness::{unique, Harness, QUIET, WAIT};

/// Expands one area's cases into `#[tokio::test]` functions in a module named after the area.
#[doc(hidden)]
#[macro_export]
macro_rules! cases {
    ($make:expr, $area:ident, [$($case:ident),* $(,)?]) => {
        mod $area {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let harness = $make;
                    if let Err(e) = $crate::$area::$case(&harness).await {
                        panic!("{}::{} failed: {e:?}", stringify!($area), stringify!($case));
                    }
                }
            )*
        }
    };
}

/// Expands the whole suite into one `#[tokio::test]` per case. `$make` is an expression that
/// builds a fresh [`Harness`] for each case (it may use `.await`).
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::acknowledge_cases!($make);
        $crate::browsing_cases!($make);
        $crate::concurrency_cases!($make);
        $crate::connection_cases!($make);
        $crate::dead_letter_cases!($make);
        $crate::delivery_cases!($make);
        $crate::errors_cases!($make);
        $crate::headers_cases!($make);
        $crate::listener_cases!($make);
        $crate::messages_cases!($make);
        $crate::ordering_cases!($make);
        $crate::pipelining_cases!($make);
        $crate::properties_cases!($make);
        $crate::queues_cases!($make);
        $crate::selector_index_cases!($make);
        $crate::selectors_cases!($make);
        $crate::space_cases!($make);
        $crate::temporary_cases!($make);
        $crate::topics_cases!($make);
        $crate::transactions_cases!($make);
    };
}
