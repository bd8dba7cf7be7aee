//! The broker configuration of the suite's `security` cases, shared by the harnesses over
//! Courier's own broker (embedded, durable, TCP).

use courier_api::Result;
use courier_broker::{BrokerConfig, Permissions, User};
use courier_conformance::{AccessSpec, Grant};

/// A broker configuration with exactly `spec`'s users (each password hashed here with
/// argon2id) and anonymous access off; each grant is a rule for the exact name.
pub fn secured_config(spec: &AccessSpec) -> Result<BrokerConfig> {
    let mut users = Vec::new();
    for user in &spec.users {
        let mut configured = User::with_password(user.name.as_str(), &user.password)?;
        for (destination, grants) in &user.grants {
            let permissions = grants
                .iter()
                .map(|grant| match grant {
                    Grant::Send => Permissions::SEND,
                    Grant::Receive => Permissions::RECEIVE,
                    Grant::Browse => Permissions::BROWSE,
                })
                .fold(Permissions::NONE, |all, p| all | p);
            configured = configured.allow(destination.name(), permissions);
        }
        users.push(configured);
    }
    Ok(BrokerConfig {
        users,
        anonymous: None,
        ..BrokerConfig::default()
    })
}
