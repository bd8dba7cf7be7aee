//! One connection and one session opened from a URL's factory, closed when a command is done.

use courier::{Connection, ConnectionFactory, ConnectionMetadata, Result, Session, SessionMode};

/// A started connection with one session.
pub struct Endpoint {
    connection: Box<dyn Connection>,
    /// The session the command works in.
    pub session: Box<dyn Session>,
}

impl Endpoint {
    /// Opens and starts a connection with a session in `mode`. A `client_id` is set unless
    /// the URL already configured one (`?client_id=`), which wins.
    pub async fn open(
        factory: &dyn ConnectionFactory,
        mode: SessionMode,
        client_id: Option<&str>,
    ) -> Result<Self> {
        let connection = factory.create_connection().await?;
        if let (Some(id), None) = (client_id, connection.client_id()) {
            connection.set_client_id(id).await?;
        }
        connection.start().await?;
        let session = connection.create_session(mode).await?;
        Ok(Endpoint {
            connection,
            session,
        })
    }

    /// What the connection says about its provider.
    pub fn metadata(&self) -> ConnectionMetadata {
        self.connection.metadata()
    }

    /// Closes the connection and everything made from it.
    pub async fn close(self) -> Result<()> {
        self.connection.close().await
    }
}
