//! # courier-space
//!
//! Tuple spaces — the Linda / JavaSpaces model of coordination — over any Courier backend.
//! Processes share a space, [`Space::write`] entries into it, and [`Space::read`] or
//! [`Space::take`] them by [`Template`] instead of by address; the space outlives the
//! processes, groups operations in [`Transaction`]s, and tells [`Space::notify`] listeners
//! when a matching entry appears.
//!
//! The crate is built only on `courier-api`, so it runs on every backend that can select on
//! queues: a space is a set of queues (one per entry type), an entry a message whose scalar
//! fields are typed properties and whose value is the body, a template a selector, `take` a
//! receive, `read` a browse, `notify` a topic subscription, a lease a time to live, and a
//! transaction a transacted session. Waiting operations are woken by the backend; nothing
//! polls.
//!
//! ```no_run
//! use courier_api::{Connection, ConnectionFactory};
//! use courier_space::{Space, Template, FOREVER};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug)]
//! struct Task { id: u64, kind: String, size: u32 }
//!
//! # async fn demo(factory: &dyn ConnectionFactory) -> courier_api::Result<()> {
//! let connection: Arc<dyn Connection> = factory.create_connection().await?.into();
//! let space = Space::open(&connection, "render-farm").await?;
//!
//! // JavaSpaces style: typed entries, templates over their fields.
//! space.write(&Task { id: 1, kind: "resize".into(), size: 640 }, FOREVER).await?;
//! let big = Template::<Task>::builder().eq("kind", "resize").range("size", 500..).build()?;
//! let task: Option<Task> = space.take(&big, Duration::from_secs(5)).await?;
//!
//! // Linda style: positional tuples.
//! space.write(&("point", 3_i64, 4_i64), FOREVER).await?;
//! let point = Template::<(String, i64, i64)>::builder().eq(0, "point").build()?;
//! let (_, x, y) = space.read(&point, FOREVER).await?.expect("waits until one exists");
//! # Ok(()) }
//! ```
//!
//! # Entries
//!
//! An entry is any serde struct or tuple.
//!
//! * **Type.** A struct's type name is its serde name (`#[serde(rename = "billing.Invoice")]`
//!   gives it a namespace); a tuple's is its element types, `(str,i64,str)`, so `&str` and
//!   `String` are one type and `i32` and `i64` are two. Each type has its own queue, so a
//!   template never sees entries of another type. Generic structs share their serde name
//!   across instantiations; give such entries distinct names.
//! * **Matchable fields.** Top-level fields holding a bool, an integer (that fits in an
//!   `i64`), a float, a char, a string, a unit enum variant (stored as its name), or one of
//!   those inside `Option` (`None` is SQL NULL) or a newtype, whose name is a JMS
//!   identifier. They are typed message properties, which the backend filters and indexes.
//!   Other fields — sequences, maps, nested structs, names that are selector keywords such
//!   as `not` — travel in the body only; a template naming them is refused.
//! * **Value.** The whole entry travels as JSON in an object body and comes back as the
//!   same type. Entries are persistent by default ([`SpaceOptions`]) and limited to 1 MiB
//!   and to 127 levels of nesting (deeper JSON cannot be read back, so it is not written).
//!
//! # Undecodable entries
//!
//! An entry that cannot be decoded as a take's template type (another program's type under
//! the same serde name, an older shape of the type) fails that take with
//! [`courier_api::Error::MessageFormat`] and goes back to the space, last in its priority's
//! order, with its failed decodes counted on it. The take that reaches
//! [`SpaceOptions::max_decode_failures`] moves it to [`SpaceOptions::dead_letter_queue`], so
//! it cannot block the space; without a dead-letter queue it stays and takes keep failing.
//! Aborted, timed-out or dropped transactions never count: only failed decodes do.
//!
//! # Backends
//!
//! A space needs selectors on queues and queue browsing; [`Space::open`] answers
//! [`courier_api::Error::Unsupported`] on a backend without them. Takes are exactly-once on
//! every backend that passes the conformance suite; waits are as cheap as the backend's
//! `receive`.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod contents;
mod duration;
mod entry;
mod lane;
mod lease;
mod notify;
mod returned;
mod schema;
mod space;
mod template;
mod transaction;
mod undecodable;

pub use contents::Contents;
pub use lease::Lease;
pub use notify::Notifications;
pub use space::{Space, SpaceOptions, FOREVER};
pub use template::{FieldName, Template, TemplateBuilder};
pub use transaction::Transaction;
