//! Embedded connections.

use async_trait::async_trait;
use courier_api::{
    Capabilities, Connection, ConnectionMetadata, Destination, Error, ExceptionListener, Result,
    Session, SessionMode,
};
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::session::{EmbeddedSession, SessionShared};
use crate::access::Grants;
use crate::core::broker::BrokerCore;
use crate::core::queue::Origin;

/// Start/stop of delivery without a lock on the receive path: a receive announces itself
/// in `in_flight` before it checks `started`, so `stop` can wait until none is taking a message.
#[derive(Default)]
pub(crate) struct DeliveryGate {
    started: AtomicBool,
    in_flight: AtomicUsize,
    /// Signalled on start, stop and when the last delivery in progress ends.
    pub changed: Notify,
}

impl DeliveryGate {
    /// True while the connection delivers.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Enters a delivery; `false` (and nothing entered) when the connection is stopped.
    pub fn begin(&self) -> bool {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.started.load(Ordering::SeqCst) {
            return true;
        }
        self.end();
        false
    }

    /// Leaves a delivery entered with [`DeliveryGate::begin`].
    pub fn end(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 && !self.is_started() {
            self.changed.notify_waiters();
        }
    }

    fn start(&self) {
        self.started.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Stops delivery and waits for deliveries in progress to return.
    async fn stop(&self) {
        self.started.store(false, Ordering::SeqCst);
        self.changed.notify_waiters();
        loop {
            let idle = self.changed.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// State shared by a connection and everything made from it.
pub(crate) struct ConnectionShared {
    pub id: u64,
    pub broker: Arc<BrokerCore>,
    /// What the connection's user (or anonymous caller) may do, fixed when it authenticated.
    pub grants: Arc<Grants>,
    client_id: RwLock<Option<Arc<str>>>,
    origin: RwLock<Arc<Origin>>,
    used: AtomicBool,
    /// Delivery gate: see [`ConnectionShared::begin_delivery`].
    pub delivery: DeliveryGate,
    /// Set once the connection ended; then `lost` says whether by a loss.
    closed: AtomicBool,
    /// The error of a loss, written under its lock before `closed` is set, so a reader that
    /// sees `closed` and then takes the lock finds it.
    lost: Mutex<Option<Error>>,
    pub token: CancellationToken,
    sessions: Mutex<Vec<Weak<SessionShared>>>,
    temporaries: Mutex<Vec<Destination>>,
    listener: Mutex<Option<ExceptionListener>>,
    capabilities: Capabilities,
    /// Set by the TCP server: a delivery's durable count is not awaited before the message
    /// is handed over; the flag is raised instead, and the server holds back its next
    /// frames until the store is synced ([`crate::store::Store::synced`]) — one wait for
    /// many deliveries instead of one `fdatasync` per message.
    deferred_sync: std::sync::OnceLock<Arc<AtomicBool>>,
}

impl ConnectionShared {
    /// The flag to raise for a delivery handed over before its count is durable, when the
    /// connection's owner asked for that ([`EmbeddedConnection::defer_delivery_sync`]).
    pub fn deferred_sync(&self) -> Option<&AtomicBool> {
        self.deferred_sync.get().map(|flag| &**flag)
    }

    /// `Ok` while open; the loss's [`Error::ConnectionLost`] after a loss, `IllegalState`
    /// after a close.
    pub fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(self.end_reason());
        }
        Ok(())
    }

    /// Why the connection ended: a clone of the loss's error, or `IllegalState` for a close.
    fn end_reason(&self) -> Error {
        self.lost
            .lock()
            .clone()
            .unwrap_or_else(|| Error::illegal_state("the connection is closed"))
    }

    /// `error`, or the loss's error once the connection is lost: a call cut short because the
    /// connection ended reports the loss, not the close it caused.
    pub fn lost_or(&self, error: Error) -> Error {
        match self.lost.lock().clone() {
            Some(lost) => lost,
            None => error,
        }
    }

    pub fn client_id(&self) -> Option<Arc<str>> {
        self.client_id.read().clone()
    }

    pub fn origin(&self) -> Arc<Origin> {
        self.origin.read().clone()
    }

    fn mark_used(&self) {
        self.used.store(true, Ordering::Release);
    }

    pub fn add_temporary(&self, destination: Destination) {
        self.temporaries.lock().push(destination);
    }

    pub fn forget_temporary(&self, destination: &Destination) {
        self.temporaries.lock().retain(|d| d != destination);
    }

    fn close(&self) {
        self.end(None);
    }

    /// Loses the connection as a network failure would: everything made from it fails with
    /// `error` from now on, the broker closes it, and the exception listener is called once.
    /// `false` when it had already ended.
    pub fn lose(&self, error: Error) -> bool {
        self.end(Some(error))
    }

    /// Ends the connection once, by a close (`lost == None`) or a loss.
    fn end(&self, lost: Option<Error>) -> bool {
        {
            let mut reason = self.lost.lock();
            if self.closed.swap(true, Ordering::AcqRel) {
                return false;
            }
            *reason = lost.clone();
        }
        self.broker.connections.down();
        self.token.cancel();
        self.delivery.changed.notify_waiters();
        let sessions = std::mem::take(&mut *self.sessions.lock());
        for session in sessions.iter().filter_map(Weak::upgrade) {
            session.close();
        }
        for destination in std::mem::take(&mut *self.temporaries.lock()) {
            // Owned by this connection, so only a race with an explicit delete can fail.
            let _ = self.broker.delete_temporary(&destination, self.id, true);
        }
        if let Some(id) = self.client_id.read().as_deref() {
            self.broker.release_client_id(id);
        }
        let listener = self.listener.lock().take();
        if let (Some(listener), Some(error)) = (listener, lost) {
            listener(&error);
        }
        true
    }
}

/// A connection to an in-process broker. It closes on [`Connection::close`], or once its
/// handle and everything made from it are dropped.
pub struct EmbeddedConnection {
    shared: Arc<ConnectionShared>,
}

impl EmbeddedConnection {
    pub(crate) fn new(
        broker: Arc<BrokerCore>,
        grants: Arc<Grants>,
        capabilities: Capabilities,
    ) -> Self {
        broker.start_housekeeping();
        broker.connections.up();
        let id = broker.next_id();
        EmbeddedConnection {
            shared: Arc::new(ConnectionShared {
                id,
                broker,
                grants,
                client_id: RwLock::new(None),
                origin: RwLock::new(Arc::new(Origin {
                    connection: id,
                    client_id: None,
                })),
                used: AtomicBool::new(false),
                delivery: DeliveryGate::default(),
                closed: AtomicBool::new(false),
                lost: Mutex::new(None),
                token: CancellationToken::new(),
                sessions: Mutex::new(Vec::new()),
                temporaries: Mutex::new(Vec::new()),
                listener: Mutex::new(None),
                capabilities,
                deferred_sync: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Hands deliveries over without waiting for their counts to be durable, raising the
    /// returned flag for each instead. Only for a caller that, on seeing the flag raised,
    /// waits for [`crate::store::Store::synced`] before a delivered message can be seen
    /// outside the process (the TCP server's writer does), so a crash still cannot bring
    /// back a message someone saw without `redelivered`.
    pub(crate) fn defer_delivery_sync(&self) -> Arc<AtomicBool> {
        self.shared
            .deferred_sync
            .get_or_init(|| Arc::new(AtomicBool::new(false)))
            .clone()
    }

    /// The state shared with what the connection made, for the factory's loss hook.
    pub(crate) fn shared(&self) -> &Arc<ConnectionShared> {
        &self.shared
    }

    /// Simulates losing this connection (a test hook): every pending and later call on it and
    /// on what it made fails with [`Error::ConnectionLost`] carrying `reason`, the broker
    /// closes it as on [`Connection::close`], and the exception listener is called once.
    /// `false` when the connection had already ended.
    pub fn simulate_loss(&self, reason: &str) -> bool {
        self.shared.lose(Error::connection_lost(reason))
    }
}

/// What the embedded provider reports about itself.
fn embedded_metadata() -> ConnectionMetadata {
    ConnectionMetadata::new(
        "Courier embedded",
        env!("CARGO_PKG_VERSION"),
        vec!["JMSXDeliveryCount", "JMSXGroupID", "JMSXGroupSeq"],
    )
}

/// A connection whose handle is dropped stays open while its sessions live; the last of them
/// to go closes it.
impl Drop for ConnectionShared {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait]
impl Connection for EmbeddedConnection {
    async fn set_client_id(&self, client_id: &str) -> Result<()> {
        let s = &self.shared;
        s.check_open()?;
        if client_id.trim().is_empty() {
            return Err(Error::invalid_argument("a client id must not be empty"));
        }
        if s.used.load(Ordering::Acquire) {
            return Err(Error::illegal_state(
                "the client id can only be set before the connection is used",
            ));
        }
        let mut current = s.client_id.write();
        if current.is_some() {
            return Err(Error::illegal_state("the client id is already set"));
        }
        s.broker.claim_client_id(client_id)?;
        let id: Arc<str> = Arc::from(client_id);
        *current = Some(id.clone());
        *s.origin.write() = Arc::new(Origin {
            connection: s.id,
            client_id: Some(id),
        });
        Ok(())
    }

    fn client_id(&self) -> Option<String> {
        self.shared.client_id().map(|s| s.to_string())
    }

    async fn start(&self) -> Result<()> {
        self.shared.check_open()?;
        self.shared.mark_used();
        self.shared.delivery.start();
        Ok(())
    }

    async fn stop(&self) -> Result<()> {
        self.shared.check_open()?;
        self.shared.mark_used();
        self.shared.delivery.stop().await;
        Ok(())
    }

    async fn create_session(&self, mode: SessionMode) -> Result<Box<dyn Session>> {
        self.shared.check_open()?;
        self.shared.mark_used();
        let session = SessionShared::new(self.shared.clone(), mode);
        let mut sessions = self.shared.sessions.lock();
        sessions.retain(|w| w.strong_count() > 0);
        sessions.push(Arc::downgrade(&session));
        Ok(Box::new(EmbeddedSession::new(session)))
    }

    /// A listener set on an ended connection is never called.
    fn set_exception_listener(&self, listener: Option<ExceptionListener>) {
        *self.shared.listener.lock() = listener;
    }

    /// The factory's capabilities: an in-process broker has no handshake to learn less from.
    fn capabilities(&self) -> Capabilities {
        self.shared.capabilities.clone()
    }

    fn metadata(&self) -> ConnectionMetadata {
        embedded_metadata()
    }

    async fn closed(&self) -> Error {
        self.shared.token.cancelled().await;
        let lost = self.shared.lost.lock().clone();
        lost.unwrap_or_else(|| Error::illegal_state("closed"))
    }

    async fn close(&self) -> Result<()> {
        self.shared.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{BrokerConfig, DestinationPolicy, EmbeddedFactory};
    use courier_api::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_send_blocked_by_flow_control_fails_with_the_loss() {
        let config = BrokerConfig {
            default_policy: DestinationPolicy {
                max_depth: Some(1),
                block_timeout: Duration::MAX,
                ..DestinationPolicy::default()
            },
            ..BrokerConfig::default()
        };
        let factory = EmbeddedFactory::new(config);
        let connection = factory.create_connection().await.unwrap();
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        let producer = session
            .create_producer(Some(&Destination::queue("full")))
            .await
            .unwrap();
        producer.send(&mut Message::text("fills")).await.unwrap();
        let mut waits = Message::text("waits");
        let (blocked, severed) = tokio::join!(producer.send(&mut waits), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            factory.sever_connections("cable pulled")
        });
        assert_eq!(severed, 1);
        match blocked {
            Err(Error::ConnectionLost { reason, .. }) => assert_eq!(reason, "cable pulled"),
            other => panic!("expected ConnectionLost, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn severing_loses_only_live_connections_of_the_factory() {
        let factory = EmbeddedFactory::default();
        let other_factory = EmbeddedFactory::from_broker(factory.broker().clone());
        let closed = factory.create_connection().await.unwrap();
        closed.close().await.unwrap();
        let live = factory.create_connection().await.unwrap();
        let other = other_factory.create_connection().await.unwrap();
        assert_eq!(factory.sever_connections("gone"), 1);
        assert!(matches!(
            live.start().await,
            Err(Error::ConnectionLost { .. })
        ));
        assert!(matches!(closed.start().await, Err(Error::IllegalState(_))));
        other.start().await.unwrap();
        assert_eq!(factory.sever_connections("again"), 0);
    }

    #[tokio::test]
    async fn a_connection_answers_its_capabilities_and_metadata() {
        let factory = EmbeddedFactory::default();
        let connection = factory.create_connection().await.unwrap();
        assert_eq!(connection.capabilities(), factory.capabilities());
        let metadata = connection.metadata();
        assert_eq!(metadata.provider_name, "Courier embedded");
        assert_eq!(metadata.provider_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(metadata.jms_version, "3.1");
        assert_eq!(
            metadata.jmsx_properties,
            ["JMSXDeliveryCount", "JMSXGroupID", "JMSXGroupSeq"]
        );
    }
}
