//! The server's configuration file (`courier.toml`): listen address and limits, broker
//! settings, anonymous access and users with argon2id password hashes and per-destination
//! permissions. `courier serve` reads it; `courier user` edits its users.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:7672"
//! max_connections = 20000
//! handshake_timeout_ms = 10000
//! heartbeat_ms = 10000
//! # TLS (optional): with a certificate, plaintext clients are refused unless allowed.
//! # tls_cert = "/etc/courier/cert.pem"
//! # tls_key = "/etc/courier/key.pem"
//! # tls_allow_plaintext = false
//!
//! [broker]
//! max_delivery_attempts = 5
//!
//! # Without [[anonymous]] entries, anonymous callers may do everything while no user is
//! # configured and are refused once one is; `anonymous_enabled = false` refuses them always.
//! [[anonymous]]
//! pattern = "public.#"
//! permissions = ["send", "receive", "browse"]
//!
//! [[users]]
//! name = "app"
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."
//! allow = [{ pattern = "orders.#", permissions = ["send", "receive"] }]
//! ```

use courier_broker::server::ServerConfig;
use courier_broker::{AccessRule, BrokerConfig, Permissions, User};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Server settings.
    #[serde(default, skip_serializing_if = "ServerSection::is_empty")]
    pub server: ServerSection,
    /// Broker settings.
    #[serde(default, skip_serializing_if = "BrokerSection::is_empty")]
    pub broker: BrokerSection,
    /// `false` refuses anonymous callers even without users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_enabled: Option<bool>,
    /// What anonymous callers may do; absent: see the module docs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anonymous: Vec<RuleEntry>,
    /// The users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserEntry>,
}

/// `[server]`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Listen address (the `--listen` flag wins).
    pub listen: Option<String>,
    /// Connections served at once.
    pub max_connections: Option<usize>,
    /// Time a new connection has to authenticate.
    pub handshake_timeout_ms: Option<u64>,
    /// Heartbeat interval (100 ms to 1 h).
    pub heartbeat_ms: Option<u64>,
    /// TLS certificate chain, PEM (with `tls_key`; `--tls-cert` wins).
    pub tls_cert: Option<std::path::PathBuf>,
    /// TLS private key, PEM (with `tls_cert`; `--tls-key` wins).
    pub tls_key: Option<std::path::PathBuf>,
    /// With TLS, serve plaintext clients too (refused by default).
    pub tls_allow_plaintext: Option<bool>,
}

impl ServerSection {
    fn is_empty(&self) -> bool {
        self.listen.is_none()
            && self.max_connections.is_none()
            && self.handshake_timeout_ms.is_none()
            && self.heartbeat_ms.is_none()
            && self.tls_cert.is_none()
            && self.tls_key.is_none()
            && self.tls_allow_plaintext.is_none()
    }
}

/// `[broker]`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    /// Deliveries before a message goes to the dead-letter queue.
    pub max_delivery_attempts: Option<u32>,
    /// The largest message accepted, in bytes.
    pub max_message_size: Option<usize>,
}

impl BrokerSection {
    fn is_empty(&self) -> bool {
        self.max_delivery_attempts.is_none() && self.max_message_size.is_none()
    }
}

/// One permission rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    /// Destination name pattern (`*` one word, `#` any words).
    pub pattern: String,
    /// `send`, `receive`, `browse`, `admin`, or `all`.
    pub permissions: Vec<String>,
}

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// The user name.
    pub name: String,
    /// The PHC string of an argon2id hash.
    pub password_hash: String,
    /// What the user may do where.
    #[serde(default)]
    pub allow: Vec<RuleEntry>,
}

impl ConfigFile {
    /// Reads `path`; a missing file is the empty configuration when `optional`.
    pub fn load(path: &Path, optional: bool) -> Result<ConfigFile, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ConfigFile::default())
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the file (to a temporary file, then renamed, so a crash leaves the old one).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = toml::to_string_pretty(self).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The broker configuration it describes.
    pub fn broker_config(&self) -> Result<BrokerConfig, String> {
        let mut config = BrokerConfig::default();
        if let Some(n) = self.broker.max_delivery_attempts {
            config.max_delivery_attempts = Some(n);
        }
        if let Some(n) = self.broker.max_message_size {
            config.max_message_size = n;
        }
        for entry in &self.users {
            let mut user = User::with_hash(entry.name.as_str(), &entry.password_hash)
                .map_err(|e| format!("user {:?}: {e}", entry.name))?;
            for rule in &entry.allow {
                user = user.allow(rule.pattern.as_str(), permissions(&rule.permissions)?);
            }
            config.users.push(user);
        }
        if self.anonymous_enabled == Some(false) {
            config.anonymous = Some(Vec::new());
        } else if !self.anonymous.is_empty() {
            let rules = self
                .anonymous
                .iter()
                .map(|r| {
                    Ok(AccessRule::new(
                        r.pattern.as_str(),
                        permissions(&r.permissions)?,
                    ))
                })
                .collect::<Result<Vec<_>, String>>()?;
            config.anonymous = Some(rules);
        }
        Ok(config)
    }

    /// The server limits it sets over the defaults.
    pub fn server_config(&self) -> ServerConfig {
        let mut config = ServerConfig::default();
        let s = &self.server;
        if let Some(n) = s.max_connections {
            config.max_connections = n;
        }
        if let Some(ms) = s.handshake_timeout_ms {
            config.handshake_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(ms) = s.heartbeat_ms {
            config.heartbeat = Duration::from_millis(ms.clamp(100, 3_600_000));
        }
        config
    }
}

/// Permission names to [`Permissions`].
pub fn permissions(names: &[String]) -> Result<Permissions, String> {
    names.iter().try_fold(Permissions::NONE, |all, name| {
        let p = match name.to_ascii_lowercase().as_str() {
            "send" => Permissions::SEND,
            "receive" => Permissions::RECEIVE,
            "browse" => Permissions::BROWSE,
            "admin" => Permissions::ADMIN,
            "all" => Permissions::ALL,
            other => {
                return Err(format!(
                    "unknown permission {other:?} (send, receive, browse, admin, all)"
                ))
            }
        };
        Ok(all | p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_users_and_rules_becomes_a_broker_config() {
        let user = User::with_password("app", "pw").unwrap();
        let text = format!(
            r#"
            anonymous_enabled = false
            [server]
            listen = "127.0.0.1:0"
            heartbeat_ms = 5000
            [broker]
            max_delivery_attempts = 4
            [[users]]
            name = "app"
            password_hash = "{}"
            allow = [{{ pattern = "orders.#", permissions = ["send", "receive"] }}]
            "#,
            user.password_hash()
        );
        let file: ConfigFile = toml::from_str(&text).unwrap();
        let broker = file.broker_config().unwrap();
        assert_eq!(broker.users.len(), 1);
        assert_eq!(broker.max_delivery_attempts, Some(4));
        assert_eq!(broker.anonymous.as_deref().map(<[_]>::len), Some(0));
        assert_eq!(file.server_config().heartbeat, Duration::from_secs(5));
    }

    #[test]
    fn bad_entries_are_refused_by_name() {
        assert!(toml::from_str::<ConfigFile>("[server]\nlisten2 = 1").is_err());
        assert!(permissions(&["sned".into()]).unwrap_err().contains("sned"));
        let file: ConfigFile =
            toml::from_str("[[users]]\nname = \"x\"\npassword_hash = \"plain\"").unwrap();
        assert!(file.broker_config().unwrap_err().contains("\"x\""));
    }
}
