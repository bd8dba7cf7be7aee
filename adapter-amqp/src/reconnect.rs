//! Watching a connection for loss, and the opt-in reconnect (`?reconnect=true`).
//!
//! Without `reconnect` a loss is final: every call fails with `ConnectionLost` and the
//! exception listener hears of it.
//!
//! With it, a loss starts a new *epoch*:
//!
//! 1. The link turns *reconnecting*: calls fail at once with `ConnectionLost` (a clear
//!    failure: nothing is queued to be sent later), receives wait for the reconnect (up to
//!    their own timeout). Sends whose confirm was outstanding fail `InDoubt` — their
//!    confirms were on the old channels — and are never lost silently.
//! 2. The connection is made again, with backoff ([`FIRST_BACKOFF`] doubling to
//!    [`MAX_BACKOFF`]) for as long as the application keeps the connection open.
//! 3. The client id is claimed again; if another connection took it meanwhile, the
//!    reconnect gives up (the connection is then lost for good, and the listener is told).
//! 4. Every session gets a new channel in its mode. What its application held
//!    unacknowledged went back to the queues with the old channel: the session's next
//!    `acknowledge` or `commit` fails (`ConnectionLost`, `TransactionRolledBack`) instead
//!    of pretending, and those messages come again, flagged redelivered.
//! 5. The topology is declared again: queues, exchanges and delay queues on their next use,
//!    subscription queues before the link opens again (a non-durable subscription gets a new queue; messages
//!    published while it had none are not its). Consumers resume on their next receive.
//!    Temporary destinations were exclusive to the lost connection: they are gone, and
//!    their consumers fail with `InvalidDestination`.

use courier_api::Error;
use futures::{Stream, StreamExt};
use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties, Event};
use std::sync::Weak;
use std::time::Duration;

use crate::link::{Link, State};

/// The first wait before connecting again.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How to connect again.
#[derive(Debug, Clone)]
pub struct Reconnect {
    /// The server's URI.
    pub uri: AMQPUri,
    /// How long one attempt may take.
    pub connect_timeout: Duration,
}

/// Connects to `uri`, bounded by `timeout`.
pub(crate) async fn connect(uri: AMQPUri, timeout: Duration) -> Result<Connection, Error> {
    let properties = ConnectionProperties::default().with_connection_name("courier-amqp".into());
    match tokio::time::timeout(timeout, Connection::connect_uri(uri, properties)).await {
        Err(_) => Err(Error::Timeout(timeout)),
        Ok(Err(e)) => Err(crate::failure::map("connection.open", e)),
        Ok(Ok(c)) => Ok(c),
    }
}

/// Watches the link's connection for loss (a task of its own, ending with the link), and
/// reconnects after one when the link has [`Reconnect`].
pub(crate) fn watch(link: Weak<Link>, events: impl Stream<Item = Event> + Send + 'static) {
    tokio::spawn(async move {
        let mut events: std::pin::Pin<Box<dyn Stream<Item = Event> + Send>> = Box::pin(events);
        loop {
            let Some(event) = events.next().await else {
                return;
            };
            let Event::Error(error) = event else { continue };
            let Some(strong) = link.upgrade() else { return };
            if strong.connection().status().connected() {
                // A channel's error; the connection lives on.
                continue;
            }
            if !strong.lose(error) {
                return;
            }
            drop(strong);
            match reconnect(&link).await {
                Some(next) => events = next,
                None => return,
            }
        }
    });
}

/// Connects again until it works, the application closes the connection, or the client id
/// is taken; the new connection's events.
async fn reconnect(
    link: &Weak<Link>,
) -> Option<std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        let strong = link.upgrade()?;
        if !matches!(&*strong.state.borrow(), State::Reconnecting(_)) {
            return None;
        }
        let spec = strong.reconnect.clone()?;
        let connection = match connect(spec.uri, spec.connect_timeout).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("courier-amqp: reconnect attempt failed: {e}");
                continue;
            }
        };
        match restore(&strong, connection).await {
            Ok(events) => return Some(events),
            Err(Restore::Retry(e)) => {
                tracing::debug!("courier-amqp: restoring after a reconnect failed: {e}");
            }
            Err(Restore::GiveUp(e)) => {
                strong.give_up(e);
                return None;
            }
        }
    }
}

/// Why a restore failed.
enum Restore {
    /// Try again (the new connection failed too).
    Retry(Error),
    /// Stop: the connection cannot be what it was.
    GiveUp(Error),
}

/// The outcome of a request bounded by `timeout`: a failure is one to retry.
fn bounded<T>(
    timeout: Duration,
    what: &str,
    outcome: Result<lapin::Result<T>, tokio::time::error::Elapsed>,
) -> Result<T, Restore> {
    match outcome {
        Err(_) => Err(Restore::Retry(Error::Timeout(timeout))),
        Ok(Err(e)) => Err(Restore::Retry(crate::failure::map(what, e))),
        Ok(Ok(v)) => Ok(v),
    }
}

/// Puts `connection` in place, claims the client id again and gives every session a new
/// channel; then opens the new epoch and declares the subscriptions again.
async fn restore(
    link: &std::sync::Arc<Link>,
    connection: Connection,
) -> Result<std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>, Restore> {
    let timeout = link.request_timeout;
    let events = Box::pin(connection.events_listener());
    let client_id = link.client_id.lock().clone();
    if let Some(client_id) = client_id {
        let channel = bounded(
            timeout,
            "channel.open",
            tokio::time::timeout(timeout, connection.create_channel()).await,
        )?;
        let options = QueueDeclareOptions {
            exclusive: true,
            ..QueueDeclareOptions::default()
        };
        let queue = format!("courier.client-id.{client_id}");
        let claimed = tokio::time::timeout(
            timeout,
            channel.queue_declare(queue.as_str().into(), options, FieldTable::default()),
        )
        .await;
        match claimed {
            Ok(Ok(_)) => {
                let _ = tokio::time::timeout(timeout, channel.close(200, "OK".into())).await;
            }
            Ok(Err(_)) if connection.status().connected() => {
                let _ = connection.close(200, "OK".into()).await;
                return Err(Restore::GiveUp(Error::connection_lost(format!(
                    "reconnected, but another connection took the client id {client_id:?}"
                ))));
            }
            other => {
                bounded(timeout, "queue.declare", other)?;
            }
        }
    }
    let sessions = link.live_sessions();
    let mut channels = Vec::with_capacity(sessions.len());
    for session in &sessions {
        let channel = bounded(
            timeout,
            "channel.open",
            tokio::time::timeout(timeout, connection.create_channel()).await,
        )?;
        if session.mode == courier_api::SessionMode::Transacted {
            bounded(
                timeout,
                "tx.select",
                tokio::time::timeout(timeout, channel.tx_select()).await,
            )?;
        } else {
            bounded(
                timeout,
                "confirm.select",
                tokio::time::timeout(
                    timeout,
                    channel.confirm_select(ConfirmSelectOptions::default()),
                )
                .await,
            )?;
        }
        channels.push(channel);
    }
    if !matches!(&*link.state.borrow(), State::Reconnecting(_)) {
        // Closed meanwhile.
        let _ = connection.close(200, "OK".into()).await;
        return Err(Restore::GiveUp(Error::illegal_state(
            "the connection is closed",
        )));
    }
    link.replace_connection(connection);
    link.forget_declarations();
    for (session, channel) in sessions.iter().zip(channels) {
        session.replace_channel(channel);
    }
    // Subscriptions first, then open: a message the application sends once the link is
    // open reaches every subscription, and no consumer consumes a queue that went with the
    // lost connection.
    crate::link::as_restorer(async {
        for session in &sessions {
            session.resubscribe().await;
        }
    })
    .await;
    link.reopen();
    Ok(events)
}
