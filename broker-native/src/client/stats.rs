//! The broker's statistics over `courier://`: the protocol's `Stats` op.

use courier_api::{Connection, Result};

use super::connection::unexpected;
use super::{TcpConnection, TcpFactory};
use crate::protocol::ops::{Reply, Request};
use crate::StatsSnapshot;

impl TcpConnection {
    /// The server's broker statistics, as this connection's user may read them (ADMIN on
    /// every destination, `#`; else [`courier_api::Error::NotAuthorized`]).
    pub async fn broker_stats(&self) -> Result<StatsSnapshot> {
        match self.link().call(&Request::Stats, None, None).await? {
            Reply::Stats(snapshot) => Ok(snapshot),
            other => Err(unexpected(&other)),
        }
    }
}

impl TcpFactory {
    /// Connects with the factory's credentials, reads the server's broker statistics
    /// ([`TcpConnection::broker_stats`]) and closes the connection.
    pub async fn broker_stats(&self) -> Result<StatsSnapshot> {
        let connection = self.connect(self.credentials()).await?;
        let snapshot = connection.broker_stats().await;
        let closed = connection.close().await;
        let snapshot = snapshot?;
        closed?;
        Ok(snapshot)
    }
}
