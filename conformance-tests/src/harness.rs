//! What a backend provides to run the suite.

use async_trait::async_trait;
use courier_api::{Capabilities, Connection, ConnectionFactory, Result};
use std::sync::Arc;
use std::time::Duration;

/// A backend under test: its connection factory, what it can do, and how to restart it.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The factory every case connects through.
    fn factory(&self) -> Arc<dyn ConnectionFactory>;

    /// The backend's capabilities; cases for a missing feature check `Unsupported` instead.
    fn capabilities(&self) -> Capabilities {
        self.factory().capabilities()
    }

    /// Restarts the backend, keeping what it stores durably. Backends without durable
    /// storage return [`courier_api::Error::Unsupported`].
    async fn restart(&self) -> Result<()>;

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

    /// A new started connection.
    async fn connect(&self) -> Result<Box<dyn Connection>> {
        let connection = self.factory().create_connection().await?;
        connection.start().await?;
        Ok(connection)
    }
}

/// How long a case waits for a message it expects.
pub const WAIT: Duration = Duration::from_secs(5);

/// How long a case waits to be confident that no message is coming.
pub const QUIET: Duration = Duration::from_millis(250);

/// A destination or subscription name unique to one run, so cases never see each other's
/// messages on a shared server.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
