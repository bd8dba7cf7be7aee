//! What a backend provides to run the suite.

use async_trait::async_trait;
use courier_api::{Capabilities, Connection, ConnectionFactory, Destination, Error, Result};
use futures::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

/// A backend under test: its connection factory, what it can do, where its cases' destinations
/// live, and how to restart it.
///
/// The suite builds a fresh harness for every case, so per-case state (the namespace) belongs
/// in the harness value.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The factory every case connects through. Called again after [`Harness::restart`] and
    /// [`Harness::crash`], so a harness may hand out a new factory for the restarted backend.
    fn factory(&self) -> Arc<dyn ConnectionFactory>;

    /// The backend's capabilities; cases for a missing feature check `Unsupported` instead.
    fn capabilities(&self) -> Capabilities {
        self.factory().capabilities()
    }

    /// A prefix unique to this harness (one case): every destination and subscription a case
    /// names lives under it (see [`Harness::name`]), so [`Harness::cleanup`] can find them.
    /// [`Namespace`] makes one.
    fn namespace(&self) -> &str;

    /// Deletes everything the case created under [`Harness::namespace`]. The suite calls it
    /// after every case, also when the case failed, so a real server is not left full of test
    /// queues. A backend that gives every case a fresh broker (the embedded one) has nothing
    /// to delete and may answer `Ok(())` without acting.
    async fn cleanup(&self) -> Result<()>;

    /// Restarts the backend gracefully, keeping what it stores durably. Open connections are
    /// lost; cases reconnect through [`Harness::connect`]. The default answers
    /// [`Error::Unsupported`], the truthful answer of a backend without durable storage.
    async fn restart(&self) -> Result<()> {
        Err(Error::unsupported(
            self.capabilities().backend,
            "restart of the backend by the conformance harness",
        ))
    }

    /// Kills the backend without warning (kill -9) and starts it again. Like
    /// [`Harness::restart`], but the backend gets no chance to flush. The default answers
    /// [`Error::Unsupported`].
    async fn crash(&self) -> Result<()> {
        Err(Error::unsupported(
            self.capabilities().backend,
            "crash (kill -9) of the backend by the conformance harness",
        ))
    }

    /// How long a case waits for a message it expects. A slow backend raises it.
    fn wait(&self) -> Duration {
        WAIT
    }

    /// How long a case waits to be confident that no message is coming. It must cover the
    /// backend's delivery latency, or "nothing arrives" checks pass vacuously.
    fn quiet(&self) -> Duration {
        QUIET
    }

    /// A destination, subscription, space or client-id name for this case:
    /// `<namespace>_<prefix>-<unique>`. Only ASCII letters, digits, `_` and `-` (for names as
    /// strict as tuple-space names) when the namespace and prefix are, and under 128 bytes
    /// for a prefix of up to 40.
    fn name(&self, prefix: &str) -> String {
        format!("{}_{}", self.namespace(), unique(prefix))
    }

    /// Loses every live connection the factory made, as a network failure would (a test
    /// hook for the `connection_loss` cases): the backend's connections must report
    /// [`courier_api::Error::ConnectionLost`]. Backends that cannot simulate a loss return
    /// [`courier_api::Error::Unsupported`], the default.
    async fn sever_connections(&self) -> Result<()> {
        Err(courier_api::Error::unsupported(
            "harness",
            "simulating a connection loss",
        ))
    }

    /// A factory for the same backend whose connections all have `client_id` from creation
    /// (JMS's administratively configured client id), for the configured-client-id cases of
    /// [`crate::connection`]. The default answers [`Error::Unsupported`] (a harness that cannot
    /// configure a factory so); those cases then end early.
    async fn factory_with_client_id(&self, client_id: &str) -> Result<Arc<dyn ConnectionFactory>> {
        let _ = client_id;
        Err(Error::unsupported(
            self.capabilities().backend,
            "a connection factory configured with a client id, by the conformance harness",
        ))
    }

    /// A factory for the backend with exactly `spec`'s users, each allowed what its grants
    /// say and nothing else, and anonymous access off: the returned factory's
    /// `create_connection` connects without credentials and must fail with
    /// [`Error::Authentication`]. It drives the `security` cases; user names and destinations
    /// of the spec live under [`Harness::namespace`], and [`Harness::cleanup`] removes the
    /// users too. The default answers [`Error::Unsupported`], the answer of a backend without
    /// [`Capabilities::access_control`]; a backend with it must override this.
    async fn secured_factory(&self, spec: &AccessSpec) -> Result<Arc<dyn ConnectionFactory>> {
        let _ = spec;
        Err(Error::unsupported(
            self.capabilities().backend,
            "users and permissions configured by the conformance harness",
        ))
    }

    /// A new started connection.
    async fn connect(&self) -> Result<Box<dyn Connection>> {
        let connection = self.factory().create_connection().await?;
        connection.start().await?;
        Ok(connection)
    }
}

/// The users a [`Harness::secured_factory`] must know, for the `security` cases.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessSpec {
    /// The users; anonymous access is off.
    pub users: Vec<SpecUser>,
}

/// One user of an [`AccessSpec`]: name, password, and what it may do where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecUser {
    /// The user name (a [`Harness::name`]: ASCII letters, digits, `_` and `-`).
    pub name: String,
    /// The password (ASCII letters and digits).
    pub password: String,
    /// Per destination (exact names, no patterns, so every backend can express them), what
    /// the user may do; on any other destination it may do nothing.
    pub grants: Vec<(Destination, Vec<Grant>)>,
}

/// An operation a [`SpecUser`] may be granted on a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// Send to the queue, publish to the topic.
    Send,
    /// Consume from the queue, subscribe (non-durably) to the topic.
    Receive,
    /// Browse the queue.
    Browse,
}

/// A namespace for one harness: `courier-test-<random>` (45 bytes of ASCII letters, digits
/// and `-`), unique per value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    /// A fresh, unique namespace.
    pub fn new() -> Self {
        Namespace(unique("courier-test"))
    }

    /// The prefix itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self::new()
    }
}

/// The default of [`Harness::wait`]: how long a case waits for a message it expects.
pub const WAIT: Duration = Duration::from_secs(5);

/// The default of [`Harness::quiet`]: how long a case waits to be confident that no message
/// is coming.
pub const QUIET: Duration = Duration::from_millis(250);

/// A name unique to one run, so cases never see each other's messages on a shared server.
/// Cases use [`Harness::name`], which also puts the name under the case's namespace.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Held for reading by every ordinary case and for writing by every persistence case, so a
/// restart or crash never happens while another case of the same test binary runs on a
/// shared server. It does not reach other processes: a backend whose harness shares one
/// server across cases runs the persistence cases in their own test binary
/// ([`crate::persistence_suite!`]), not at the same time as the others.
pub static SERVER_LOCK: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The capability gate of a case: with the feature `available`, `result` is passed on as
/// `Some`; without it, `result` must be [`Error::Unsupported`] (the case then ends early with
/// `None`), so a backend that lacks a feature says so instead of doing something weaker.
pub fn gated<T>(available: bool, feature: &str, result: Result<T>) -> Result<Option<T>> {
    if available {
        return result.map(Some);
    }
    match result {
        Err(e) => assert!(
            e.is_unsupported(),
            "no {feature}: the operation must answer Unsupported, got {e:?}"
        ),
        Ok(_) => panic!("the backend says it has no {feature} but the operation succeeded"),
    }
    Ok(None)
}

/// Runs one case the way the suite does: the case, then [`Harness::cleanup`] whether the case
/// passed, failed or panicked, then the report — the case's panic or error first, else a
/// cleanup error — as a panic naming `name`.
pub async fn run_case<F>(harness: &dyn Harness, name: &str, case: F)
where
    F: Future<Output = Result<()>>,
{
    let outcome = AssertUnwindSafe(case).catch_unwind().await;
    let cleanup = harness.cleanup().await;
    match outcome {
        Err(panic) => std::panic::resume_unwind(panic),
        Ok(Err(e)) => panic!("{name} failed: {e:?}"),
        Ok(Ok(())) => {}
    }
    if let Err(e) = cleanup {
        panic!("{name} cleanup failed: {e:?}");
    }
}
