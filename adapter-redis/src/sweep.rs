//! The sweep of temporary destinations whose connection is gone.
//!
//! Each temporary destination is registered in [`keys::TEMPORARIES`] (its root → the owner,
//! `run_id:client_id`) when made, and unregistered when its connection deletes it or closes.
//! A connection that crashes cannot do that, so every heartbeat one live connection (at most
//! one per heartbeat interval across all clients: the [`keys::SWEEP_GATE`] key) looks at up to
//! [`BATCH`] registered destinations and, where the server's client list no longer has the
//! owner, deletes the destination's keys in one script (`destroy`) and unregisters it.

use redis::Value;

use crate::args::Args;
use crate::connection::Shared;
use crate::keys;

/// Registered temporary destinations examined per sweep (a random sample when more).
pub(crate) const BATCH: usize = 100;

/// One sweep, if no other connection swept within the last heartbeat. Errors are left to the
/// heartbeat's own command, which loses the connection when the link failed.
pub(crate) async fn sweep_temporaries(shared: &Shared) {
    let mut cmd = shared.cmd.clone();
    let gate: Option<String> = match redis::cmd("SET")
        .arg(keys::SWEEP_GATE)
        .arg(1)
        .arg("NX")
        .arg("PX")
        .arg(shared.config.heartbeat.as_millis() as u64)
        .query_async(&mut cmd)
        .await
    {
        Ok(gate) => gate,
        Err(_) => return,
    };
    if gate.is_none() {
        return;
    }
    // Fields only: WITHVALUES answers pairs in RESP3 and a flat list in RESP2.
    let sample: Vec<String> = match redis::cmd("HRANDFIELD")
        .arg(keys::TEMPORARIES)
        .arg(BATCH)
        .query_async(&mut cmd)
        .await
    {
        Ok(sample) => sample,
        Err(_) => return,
    };
    for root in &sample {
        let owner: Option<String> = match redis::cmd("HGET")
            .arg(keys::TEMPORARIES)
            .arg(root)
            .query_async(&mut cmd)
            .await
        {
            Ok(owner) => owner,
            Err(_) => return,
        };
        let Some(owner) = owner else { continue };
        match shared.owner_alive(&owner).await {
            Ok(false) => {}
            _ => continue,
        }
        if shared.upkeep(root, Args::op("destroy").0).await.is_err() {
            return;
        }
        let _: Result<Value, _> = redis::cmd("HDEL")
            .arg(keys::TEMPORARIES)
            .arg(root)
            .query_async(&mut cmd)
            .await;
    }
}
