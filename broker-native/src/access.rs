//! Access control: who may connect (users with argon2id password hashes, and anonymous
//! callers when configured) and what each may do on which destinations.
//!
//! # Design
//!
//! - **Users** come from the configuration ([`crate::BrokerConfig::users`]), each with the
//!   PHC string of an argon2id hash ([`User::with_password`] hashes, [`User::with_hash`]
//!   takes an existing hash). A password is checked by `argon2`'s own verification, whose
//!   final comparison is constant-time. A connection with an unknown user name is verified
//!   against a dummy hash of the same cost, so both failures take as long and answer the
//!   same [`Error::Authentication`] text: nothing tells a caller which user names exist.
//!   (The dummy hash has the default cost, so users whose hashes have another cost should
//!   all share one; [`User::with_password`] always uses the default.)
//! - **Anonymous** callers (a connection without credentials) get
//!   [`crate::BrokerConfig::anonymous`]'s rules. Left `None`, anonymous callers may do
//!   everything while no user is configured (so the default broker, and `embedded:`, work
//!   as before) and are refused once users are configured.
//! - **Rules** map destination name patterns (the `*`/`#` words of [`crate::PolicyRule`])
//!   to [`Permissions`]. The most specific matching pattern decides, as for destination
//!   policies, so `orders.# → SEND|RECEIVE` with `orders.audit → BROWSE` keeps
//!   `orders.audit` browse-only; no matching pattern means no permission.
//! - **Operations**: [`Permissions::SEND`] to send to a queue or publish to a topic;
//!   [`Permissions::RECEIVE`] to consume from a queue or subscribe to a topic (non-durable
//!   and shared non-durable subscriptions); [`Permissions::BROWSE`] to browse a queue;
//!   [`Permissions::ADMIN`] to manage state that outlives the connection: a durable (or
//!   shared durable) subscription needs `RECEIVE` and `ADMIN` on its topic, and
//!   unsubscribing needs `ADMIN` on it; deleting a destination needs `ADMIN` on it.
//! - **Temporary destinations** are not checked: the broker names them (an unguessable
//!   name), only their connection consumes from them, and knowing the name — given out as a
//!   reply-to — is the permission to send to it, as request/reply needs.
//! - **Where checks happen**: where an operation is created — a producer with a destination
//!   (once, not per message), each send of a producer without one, a consumer, a browser, a
//!   durable subscription, an unsubscribe. A refusal is [`Error::NotAuthorized`] naming the
//!   operation and destination only. A connection's grants are fixed when it authenticates.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params};
use courier_api::{Destination, Error, Result};
use std::collections::HashMap;
use std::fmt;
use std::ops::BitOr;
use std::sync::{Arc, OnceLock};

use crate::config::BrokerConfig;
use crate::core::policy::words_specificity;

/// The one answer to a wrong password and an unknown user, so neither tells which it was.
pub const AUTHENTICATION_FAILED: &str = "invalid user name or password";

/// The answer to a connection without credentials when anonymous access is off.
pub const ANONYMOUS_REFUSED: &str = "anonymous access is not allowed: credentials required";

/// Longest user name or password accepted (bytes); longer ones fail authentication before
/// any hashing, so a hostile caller cannot make the broker hash megabytes.
pub const MAX_CREDENTIAL_LEN: usize = 1024;

/// Most memory a configured hash may make each login take, in KiB (256 MiB).
pub const MAX_MEMORY_COST_KIB: u32 = 256 * 1024;

/// Most passes a configured hash may make each login take.
pub const MAX_TIME_COST: u32 = 16;

/// Most lanes a configured hash may have.
pub const MAX_LANES: u32 = 16;

/// What a user (or anonymous caller) may do on a destination: a set of operations.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

impl Permissions {
    /// Nothing.
    pub const NONE: Permissions = Permissions(0);
    /// Send to a queue, publish to a topic.
    pub const SEND: Permissions = Permissions(1);
    /// Consume from a queue, subscribe to a topic.
    pub const RECEIVE: Permissions = Permissions(2);
    /// Browse a queue.
    pub const BROWSE: Permissions = Permissions(4);
    /// Create and delete durable subscriptions of a topic.
    pub const ADMIN: Permissions = Permissions(8);
    /// Every operation.
    pub const ALL: Permissions = Permissions(15);

    /// True when every operation of `other` is in `self`.
    pub fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Permissions {
    type Output = Permissions;

    fn bitor(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (Permissions::SEND, "SEND"),
            (Permissions::RECEIVE, "RECEIVE"),
            (Permissions::BROWSE, "BROWSE"),
            (Permissions::ADMIN, "ADMIN"),
        ]
        .iter()
        .filter(|(p, _)| self.contains(*p))
        .map(|(_, n)| *n)
        .collect();
        if names.is_empty() {
            f.write_str("NONE")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

/// An operation checked against a destination's [`Permissions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A send or publish.
    Send,
    /// A consumer or non-durable subscription.
    Receive,
    /// A queue browser.
    Browse,
    /// A durable subscription (needs `RECEIVE` and `ADMIN`).
    DurableSubscribe,
    /// Deleting a durable subscription (needs `ADMIN`).
    Unsubscribe,
    /// Deleting a destination (needs `ADMIN`).
    Delete,
}

impl Operation {
    /// The permissions the operation needs.
    pub fn needs(self) -> Permissions {
        match self {
            Operation::Send => Permissions::SEND,
            Operation::Receive => Permissions::RECEIVE,
            Operation::Browse => Permissions::BROWSE,
            Operation::DurableSubscribe => Permissions::RECEIVE | Permissions::ADMIN,
            Operation::Unsubscribe => Permissions::ADMIN,
            Operation::Delete => Permissions::ADMIN,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Send => "send to",
            Operation::Receive => "receive from",
            Operation::Browse => "browse",
            Operation::DurableSubscribe => "durable subscription to",
            Operation::Unsubscribe => "unsubscribe from",
            Operation::Delete => "delete",
        })
    }
}

/// Permissions on the destinations whose names match a pattern (`*` one word, `#` any
/// number of words; see [`crate::PolicyRule`]). The most specific matching rule decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    /// The destination name pattern.
    pub pattern: String,
    /// What is allowed on matching destinations.
    pub permissions: Permissions,
}

impl AccessRule {
    /// A rule giving `permissions` on destinations matching `pattern`.
    pub fn new(pattern: impl Into<String>, permissions: Permissions) -> Self {
        AccessRule {
            pattern: pattern.into(),
            permissions,
        }
    }
}

/// A user of the broker: a name, the PHC string of its argon2id password hash, and its
/// rules. The hash is never printed (`Debug` shows the name and rules only).
///
/// ```
/// use courier_broker::{AccessRule, Permissions, User};
/// let alice = User::with_password("alice", "s3cret")?
///     .allow("orders.#", Permissions::SEND | Permissions::RECEIVE);
/// assert!(alice.password_hash().starts_with("$argon2id$"));
/// let again = User::with_hash("alice", alice.password_hash())?;
/// assert_eq!(again.name(), "alice");
/// # Ok::<(), courier_api::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    name: String,
    hash: String,
    rules: Vec<AccessRule>,
}

impl User {
    /// A user whose password is hashed here with argon2id (the `argon2` crate's default
    /// cost) and a fresh random salt. No rules yet: add them with [`User::allow`].
    pub fn with_password(name: impl Into<String>, password: &str) -> Result<User> {
        let name = checked_name(name.into())?;
        let hash = hash_password(password)?;
        Ok(User {
            name,
            hash,
            rules: Vec::new(),
        })
    }

    /// A user with an existing argon2id hash in PHC form (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`),
    /// e.g. from a configuration file. Anything else — another algorithm, bad parameters,
    /// malformed text — is [`Error::InvalidArgument`].
    pub fn with_hash(name: impl Into<String>, phc: &str) -> Result<User> {
        let name = checked_name(name.into())?;
        let parsed = PasswordHash::new(phc)
            .map_err(|e| Error::invalid_argument(format!("password hash of {name:?}: {e}")))?;
        if parsed.algorithm != Algorithm::Argon2id.ident() {
            return Err(Error::invalid_argument(format!(
                "password hash of {name:?}: {} is not argon2id",
                parsed.algorithm
            )));
        }
        let params = Params::try_from(&parsed).map_err(|e| {
            Error::invalid_argument(format!("password hash parameters of {name:?}: {e}"))
        })?;
        if params.m_cost() > MAX_MEMORY_COST_KIB
            || params.t_cost() > MAX_TIME_COST
            || params.p_cost() > MAX_LANES
        {
            return Err(Error::invalid_argument(format!(
                "password hash of {name:?} costs more than a login may (at most \
                 m={MAX_MEMORY_COST_KIB}, t={MAX_TIME_COST}, p={MAX_LANES})"
            )));
        }
        if parsed.hash.is_none() || parsed.salt.is_none() {
            return Err(Error::invalid_argument(format!(
                "password hash of {name:?} lacks its salt or hash"
            )));
        }
        Ok(User {
            name,
            hash: phc.to_owned(),
            rules: Vec::new(),
        })
    }

    /// Adds a rule: `permissions` on destinations matching `pattern`.
    pub fn allow(mut self, pattern: impl Into<String>, permissions: Permissions) -> User {
        self.rules.push(AccessRule::new(pattern, permissions));
        self
    }

    /// The user name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PHC string of the password hash.
    pub fn password_hash(&self) -> &str {
        &self.hash
    }

    /// The user's rules.
    pub fn rules(&self) -> &[AccessRule] {
        &self.rules
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// A user name is non-empty and at most [`MAX_CREDENTIAL_LEN`] bytes.
fn checked_name(name: String) -> Result<String> {
    if name.is_empty() || name.len() > MAX_CREDENTIAL_LEN {
        return Err(Error::invalid_argument(format!(
            "a user name has 1 to {MAX_CREDENTIAL_LEN} bytes"
        )));
    }
    Ok(name)
}

/// The PHC string of an argon2id hash of `password` with a random 16-byte salt.
fn hash_password(password: &str) -> Result<String> {
    if password.len() > MAX_CREDENTIAL_LEN {
        return Err(Error::invalid_argument(format!(
            "a password has at most {MAX_CREDENTIAL_LEN} bytes"
        )));
    }
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| Error::invalid_argument(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::invalid_argument(format!("cannot hash the password: {e}")))
}

/// True when `password` matches the PHC `hash` (argon2's constant-time comparison).
fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash of nothing anyone knows, verified for unknown user names so that they cost what a
/// wrong password costs.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let secret = uuid::Uuid::new_v4().simple().to_string();
        hash_password(&secret).unwrap_or_default()
    })
}

/// A rule with its pattern split into words once, so a check allocates only the name's words.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    words: Vec<Box<str>>,
    permissions: Permissions,
}

/// What one authenticated connection may do.
#[derive(Debug)]
pub(crate) enum Grants {
    /// Everything, unchecked: the default broker's anonymous caller.
    Unrestricted,
    /// What the rules allow; nothing where none matches.
    Rules(Vec<CompiledRule>),
}

impl Grants {
    /// Grants of `rules`.
    fn rules(rules: &[AccessRule]) -> Grants {
        Grants::Rules(
            rules
                .iter()
                .map(|rule| CompiledRule {
                    words: rule.pattern.split('.').map(Box::from).collect(),
                    permissions: rule.permissions,
                })
                .collect(),
        )
    }

    /// Whether the broker's statistics may be read: by an unrestricted caller, or one
    /// granted ADMIN by a rule for every destination (`#`).
    pub fn may_read_stats(&self) -> bool {
        match self {
            Grants::Unrestricted => true,
            Grants::Rules(rules) => rules.iter().any(|rule| {
                rule.words.len() == 1
                    && &*rule.words[0] == "#"
                    && rule.permissions.contains(Permissions::ADMIN)
            }),
        }
    }

    /// `Ok` when `operation` is allowed on `destination`, else [`Error::NotAuthorized`]
    /// naming only the operation and destination. Temporary destinations are not checked
    /// (see the module notes).
    pub fn check(&self, operation: Operation, destination: &Destination) -> Result<()> {
        let Grants::Rules(rules) = self else {
            return Ok(());
        };
        if destination.is_temporary() {
            return Ok(());
        }
        let name: Vec<&str> = destination.name().split('.').collect();
        let mut best = None;
        for rule in rules {
            if let Some(spec) = words_specificity(&rule.words, &name) {
                if best.as_ref().is_none_or(|(b, _)| spec > *b) {
                    best = Some((spec, rule.permissions));
                }
            }
        }
        let granted = best.map_or(Permissions::NONE, |(_, p)| p);
        if granted.contains(operation.needs()) {
            Ok(())
        } else {
            Err(Error::not_authorized(format!("{operation} {destination}")))
        }
    }
}

/// User name → (PHC hash, grants).
type Users = HashMap<String, (String, Arc<Grants>)>;

/// The grants of `user` if `password` is its password; the same [`Error::Authentication`]
/// after the same work for a wrong password and an unknown user.
fn check_password(users: &Users, user: &str, password: &str) -> Result<Arc<Grants>> {
    let failed = || Error::authentication(AUTHENTICATION_FAILED);
    if user.len() > MAX_CREDENTIAL_LEN || password.len() > MAX_CREDENTIAL_LEN {
        return Err(failed());
    }
    match users.get(user) {
        Some((hash, grants)) if verify(hash, password) => Ok(grants.clone()),
        Some(_) => Err(failed()),
        None => {
            // The same work as a wrong password, then the same answer.
            let _ = verify(dummy_hash(), password);
            Err(failed())
        }
    }
}

/// The broker's user table, built once from its configuration.
pub(crate) struct Access {
    users: Arc<Users>,
    anonymous: Option<Arc<Grants>>,
    /// Bounds the password verifications running at once: each takes the hash's memory
    /// cost (19 MiB by default) on a blocking thread, so a flood of logins waits here
    /// instead of taking a thread and its memory each.
    verifying: Arc<tokio::sync::Semaphore>,
}

impl Access {
    /// The table of `config`; of users with the same name, the first counts.
    pub fn new(config: &BrokerConfig) -> Self {
        let mut users = HashMap::new();
        for user in &config.users {
            users
                .entry(user.name.clone())
                .or_insert_with(|| (user.hash.clone(), Arc::new(Grants::rules(&user.rules))));
        }
        let anonymous = match &config.anonymous {
            Some(rules) => Some(Arc::new(Grants::rules(rules))),
            None if config.users.is_empty() => Some(Arc::new(Grants::Unrestricted)),
            None => None,
        };
        if !users.is_empty() {
            // Made now, not at the first unknown user, whose refusal would take twice as long.
            dummy_hash();
        }
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Access {
            users: Arc::new(users),
            anonymous,
            verifying: Arc::new(tokio::sync::Semaphore::new(parallel)),
        }
    }

    /// [`Access::authenticate`] for async callers: a password is verified on a blocking
    /// thread, at most one per core at a time, so logins neither stall the runtime's
    /// workers nor take unbounded threads and memory.
    pub async fn login(&self, credentials: Option<(&str, &str)>) -> Result<Arc<Grants>> {
        let Some((user, password)) = credentials else {
            return self.authenticate(None);
        };
        if user.len() > MAX_CREDENTIAL_LEN || password.len() > MAX_CREDENTIAL_LEN {
            return Err(Error::authentication(AUTHENTICATION_FAILED));
        }
        let permit = self
            .verifying
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::backend("broker", e))?;
        let users = self.users.clone();
        let (user, password) = (user.to_owned(), password.to_owned());
        // The permit goes with the verification, so a login abandoned by its caller still
        // holds its place until the hashing it started ends.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            check_password(&users, &user, &password)
        })
        .await
        .map_err(|e| Error::backend("broker", e))?
    }

    /// The grants of a caller with `credentials` (`None`: anonymous). Argon2 verification
    /// takes tens of milliseconds by design: async callers use [`Access::login`].
    pub fn authenticate(&self, credentials: Option<(&str, &str)>) -> Result<Arc<Grants>> {
        let Some((user, password)) = credentials else {
            return self
                .anonymous
                .clone()
                .ok_or_else(|| Error::authentication(ANONYMOUS_REFUSED));
        };
        check_password(&self.users, user, password)
    }
}
