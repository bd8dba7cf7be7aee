//! Reading the broker's statistics through a connection, under its user's grants: the
//! in-process form of the protocol's `Stats` op, which the server answers with it.

use courier_api::{Error, Result};
use std::sync::Arc;

use super::EmbeddedConnection;
use crate::access::{Grants, Operation};
use crate::{Broker, StatsSnapshot};

/// What a connection may read of the statistics: its broker and its grants.
#[derive(Clone)]
pub(crate) struct StatsAccess {
    broker: Broker,
    grants: Arc<Grants>,
}

impl StatsAccess {
    /// The snapshot, if the grants allow it ([`Grants::may_read_stats`]): destinations
    /// where a narrower rule withholds ADMIN are left out. Otherwise
    /// [`Error::NotAuthorized`].
    pub fn read(&self) -> Result<StatsSnapshot> {
        if !self.grants.may_read_stats() {
            return Err(Error::not_authorized(
                "read the broker's statistics (needs admin on every destination, `#`)",
            ));
        }
        let grants = &self.grants;
        Ok(self
            .broker
            .snapshot_of(|d| grants.check(Operation::Delete, d).is_ok()))
    }
}

impl EmbeddedConnection {
    /// The broker's statistics ([`Broker::snapshot`]) as this connection's user may read
    /// them: [`Error::NotAuthorized`] without ADMIN on every destination (`#`); the
    /// anonymous caller of a broker without users reads everything.
    pub fn broker_stats(&self) -> Result<StatsSnapshot> {
        self.shared().check_open()?;
        self.stats_access().read()
    }

    /// The access the server keeps for the connection's `Stats` requests.
    pub(crate) fn stats_access(&self) -> StatsAccess {
        let shared = self.shared();
        StatsAccess {
            broker: Broker {
                core: shared.broker.clone(),
            },
            grants: shared.grants.clone(),
        }
    }
}
