//! What travels inside frames: the handshake, the requests of the api's operations, their
//! replies and errors, encoded with postcard (compact, no schema on the wire; the protocol
//! version in the handshake names the layout). Decoding never trusts the peer: every
//! malformed payload is a typed [`Error::Protocol`].

use bytes::{BufMut, Bytes, BytesMut};
use courier_api::{
    Body, Capabilities, Destination, Durability, Error, Header, InDoubtOperation, Message,
    SendOptions, SessionMode,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::time::Duration;

/// The client's first frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`]: tells a Courier peer from a stray connection.
    pub magic: u32,
    /// The protocol versions the client speaks.
    pub versions: Vec<u16>,
    /// User name and password; `None` asks for anonymous access.
    pub credentials: Option<(String, String)>,
    /// A client id to claim at once (a factory configured with one).
    pub client_id: Option<String>,
    /// The heartbeat interval the client asks for, in milliseconds (0: the server's).
    pub heartbeat_ms: u64,
}

/// `COUR` in ASCII.
pub const MAGIC: u32 = 0x434f_5552;

/// The server's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Welcome {
    /// Accepted: the version both speak, what the server offers, the heartbeat interval
    /// both sides keep, and the largest frame the server accepts from now on.
    Accepted {
        /// The negotiated protocol version.
        version: u16,
        /// The server's build version.
        server_version: String,
        /// What this connection offers.
        capabilities: WireCapabilities,
        /// Heartbeat interval in milliseconds.
        heartbeat_ms: u64,
        /// The maximum frame length the server accepts.
        max_frame: u64,
    },
    /// Refused (no common version, bad credentials, client id in use): the reason.
    Refused(WireError),
}

/// [`Capabilities`] on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireCapabilities {
    /// Flags in the order of [`WireCapabilities::FLAGS`].
    pub flags: Vec<bool>,
    /// `persistent_durability`: 0 none, 1 disk, 2 replicated.
    pub durability: u8,
    /// `max_delivery_attempts`.
    pub max_delivery_attempts: Option<u32>,
    /// `dead_letter_queue`.
    pub dead_letter_queue: Option<String>,
    /// `max_message_size`.
    pub max_message_size: Option<u64>,
}

impl WireCapabilities {
    /// How many flags a version-1 peer sends.
    pub const FLAGS: usize = 18;

    /// The wire form of `caps`.
    pub fn from_caps(c: &Capabilities) -> Self {
        WireCapabilities {
            flags: vec![
                c.queue_selectors,
                c.delivery_delay,
                c.browse,
                c.durable_storage,
                c.priority,
                c.expiry,
                c.no_local,
                c.transactions,
                c.temporary_destinations,
                c.durable_subscriptions,
                c.shared_subscriptions,
                c.exact_delivery_count,
                c.exact_prefetch,
                c.client_id_exclusive,
                c.access_control,
                false,
                false,
                c.delete_destinations,
            ],
            durability: match c.persistent_durability {
                Durability::Disk => 1,
                Durability::Replicated => 2,
                _ => 0,
            },
            max_delivery_attempts: c.max_delivery_attempts,
            dead_letter_queue: c.dead_letter_queue.clone(),
            max_message_size: c.max_message_size.map(|n| n as u64),
        }
    }

    /// The capabilities, named `backend`; a flag the peer did not send is `false`.
    pub fn to_caps(&self, backend: &'static str) -> Capabilities {
        let f = |i: usize| self.flags.get(i).copied().unwrap_or(false);
        let mut c = Capabilities::full(backend);
        c.queue_selectors = f(0);
        c.delivery_delay = f(1);
        c.browse = f(2);
        c.durable_storage = f(3);
        c.priority = f(4);
        c.expiry = f(5);
        c.no_local = f(6);
        c.transactions = f(7);
        c.temporary_destinations = f(8);
        c.durable_subscriptions = f(9);
        c.shared_subscriptions = f(10);
        c.exact_delivery_count = f(11);
        c.exact_prefetch = f(12);
        c.client_id_exclusive = f(13);
        c.access_control = f(14);
        c.delete_destinations = f(17);
        // A Courier server that deletes destinations deletes topics too.
        c.delete_topics = c.delete_destinations;
        c.persistent_durability = match self.durability {
            1 => Durability::Disk,
            2 => Durability::Replicated,
            _ => Durability::None,
        };
        c.max_delivery_attempts = self.max_delivery_attempts;
        c.dead_letter_queue = self.dead_letter_queue.clone();
        c.max_message_size = self
            .max_message_size
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        c
    }
}

/// [`SendOptions`] on the wire (durations in nanoseconds, saturating).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSendOptions {
    /// `true` for persistent.
    pub persistent: bool,
    /// 0–9.
    pub priority: u8,
    /// Time to live.
    pub time_to_live_ns: u64,
    /// Delivery delay.
    pub delivery_delay_ns: u64,
    /// No message id.
    pub disable_message_id: bool,
    /// No timestamp.
    pub disable_timestamp: bool,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl From<&SendOptions> for WireSendOptions {
    fn from(o: &SendOptions) -> Self {
        WireSendOptions {
            persistent: o.delivery_mode == courier_api::DeliveryMode::Persistent,
            priority: o.priority,
            time_to_live_ns: nanos(o.time_to_live),
            delivery_delay_ns: nanos(o.delivery_delay),
            disable_message_id: o.disable_message_id,
            disable_timestamp: o.disable_timestamp,
        }
    }
}

impl From<WireSendOptions> for SendOptions {
    fn from(o: WireSendOptions) -> Self {
        SendOptions {
            delivery_mode: if o.persistent {
                courier_api::DeliveryMode::Persistent
            } else {
                courier_api::DeliveryMode::NonPersistent
            },
            priority: o.priority,
            time_to_live: Duration::from_nanos(o.time_to_live_ns),
            delivery_delay: Duration::from_nanos(o.delivery_delay_ns),
            disable_message_id: o.disable_message_id,
            disable_timestamp: o.disable_timestamp,
        }
    }
}

/// A session mode on the wire.
pub fn mode_to_u8(mode: SessionMode) -> u8 {
    match mode {
        SessionMode::AutoAcknowledge => 0,
        SessionMode::ClientAcknowledge => 1,
        SessionMode::DupsOkAcknowledge => 2,
        SessionMode::Transacted => 3,
    }
}

/// The session mode of a wire byte.
pub fn mode_from_u8(byte: u8) -> Result<SessionMode, Error> {
    Ok(match byte {
        0 => SessionMode::AutoAcknowledge,
        1 => SessionMode::ClientAcknowledge,
        2 => SessionMode::DupsOkAcknowledge,
        3 => SessionMode::Transacted,
        b => return Err(Error::protocol(format!("unknown session mode {b}"))),
    })
}

/// Which kind of consumer a [`Request::CreateConsumer`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsumerKind {
    /// A queue consumer or a non-durable topic subscriber.
    Plain,
    /// A durable topic subscriber.
    Durable,
    /// A shared non-durable subscriber.
    Shared,
    /// A shared durable subscriber.
    SharedDurable,
}

/// How long a receive waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wait {
    /// `receive_no_wait`.
    NoWait,
    /// `receive_timeout`, in nanoseconds (saturating).
    Timeout(u64),
    /// `receive`.
    Forever,
}

/// A request of the api, naming the object it acts on by the handle the server gave out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// `Connection::set_client_id`.
    SetClientId(String),
    /// `Connection::start`.
    Start,
    /// `Connection::stop`.
    Stop,
    /// `Connection::close`: the server closes the connection's broker state and replies.
    Close,
    /// `Connection::create_session`; replies [`Reply::Created`].
    CreateSession(u8),
    /// `Session::close`.
    CloseSession(u64),
    /// `Session::create_producer`; replies [`Reply::Created`].
    CreateProducer(u64, Option<Destination>),
    /// `Producer::close`.
    CloseProducer(u64),
    /// A send by a producer; replies [`Reply::Sent`] with the stamped header.
    Send {
        /// The producer.
        producer: u64,
        /// The destination of this send (`None`: the producer's).
        destination: Option<Destination>,
        /// The message as the application made it.
        message: Message,
        /// The send's options.
        options: WireSendOptions,
    },
    /// A consumer of any kind; replies [`Reply::Created`].
    CreateConsumer {
        /// The session.
        session: u64,
        /// The kind.
        kind: ConsumerKind,
        /// Queue or topic.
        destination: Destination,
        /// Subscription name (durable and shared kinds).
        name: Option<String>,
        /// Selector text.
        selector: Option<String>,
        /// No-local.
        no_local: bool,
        /// Prefetch (credit).
        prefetch: Option<u32>,
    },
    /// `Consumer::close`.
    CloseConsumer(u64),
    /// A receive; replies [`Reply::Message`]. One receive is one credit.
    Receive(u64, Wait),
    /// `Consumer::receive_body`; replies [`Reply::Body`].
    ReceiveBody(u64, Option<u64>),
    /// `Consumer::receive_delivery`; replies [`Reply::Delivery`].
    ReceiveDelivery(u64),
    /// Settles a delivery of [`Request::ReceiveDelivery`]: acknowledge or give back.
    Settle(u64, bool),
    /// `Session::unsubscribe`.
    Unsubscribe(u64, String),
    /// `Session::create_browser`; replies [`Reply::Created`].
    CreateBrowser(u64, Destination, Option<String>),
    /// `Browser::next`; replies [`Reply::Message`].
    BrowseNext(u64),
    /// `Browser::close`.
    CloseBrowser(u64),
    /// `Session::create_temporary_queue` (false) / `_topic` (true); replies
    /// [`Reply::Destination`].
    CreateTemporary(u64, bool),
    /// `Session::delete_temporary`.
    DeleteTemporary(u64, Destination),
    /// `Session::commit`.
    Commit(u64),
    /// `Session::rollback`.
    Rollback(u64),
    /// `Session::recover`.
    Recover(u64),
    /// `Session::acknowledge`.
    Acknowledge(u64),
    /// Replies once every earlier request of the session is answered (`Producer::flush`).
    Sync(u64),
    /// The caller of the receive with this correlation id stopped waiting: the server ends
    /// it (answering it with no message) unless it already has a message, which it then
    /// sends as usual. Has no reply of its own.
    Cancel(u64),
    /// More credit for a consumer's open message stream ([`Request::Stream`]): `n > 0` lets
    /// the server push `n` more messages; `0` ends the stream, answered by a final
    /// `Delivery(None)` after any message in flight. Sent under the stream's correlation id;
    /// credit for a stream that ended is ignored.
    Credit(u64, u32),
    /// Opens a consumer's message stream (prefetch) with `n` credits: the server pushes a
    /// message per credit, each a [`Reply::Delivery`] under this request's correlation id,
    /// held until [`Request::Settle`]d.
    Stream(u64, u32),
    /// `Session::delete_destination`.
    DeleteDestination(u64, Destination),
    /// The broker's statistics ([`crate::StatsSnapshot`]); replies [`Reply::Stats`]. Needs
    /// ADMIN on every destination (`#`); destinations where a narrower rule withholds ADMIN
    /// are left out.
    Stats,
    /// Protocol 2: deliveries of `consumer`'s open message stream that the client handed to
    /// the application, in hand-over order. Acknowledges each (as `Settle(delivery, true)`)
    /// and grants the stream one credit per delivery (as `Credit(consumer, n)`), in one frame
    /// instead of three per message. Sent under the stream's correlation id; no reply.
    Consumed(u64, Vec<u64>),
}

/// A delivered message with its per-delivery state, which the message encoding leaves out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivered {
    /// The message.
    pub message: Message,
    /// `JMSRedelivered`.
    pub redelivered: bool,
    /// `JMSXDeliveryCount`.
    pub delivery_count: u32,
}

impl Delivered {
    /// The wire form of a delivered message.
    pub fn of(message: Message) -> Self {
        Delivered {
            redelivered: message.redelivered(),
            delivery_count: message.header().delivery_count,
            message,
        }
    }

    /// The message as the application gets it: delivery state restored, read-only.
    pub fn into_message(self) -> Message {
        let mut message = self.message;
        let h = courier_api::spi::header_mut(&mut message);
        h.redelivered = self.redelivered;
        h.delivery_count = self.delivery_count;
        courier_api::spi::mark_received(&mut message);
        message
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// Done, nothing to return.
    Done,
    /// A new handle (session, producer, consumer, browser).
    Created(u64),
    /// A send is confirmed; the header the broker stamped.
    Sent(Header),
    /// A received or browsed message, or none.
    Message(Option<Delivered>),
    /// The body of `receive_body`, or none.
    Body(Option<Body>),
    /// A held delivery and its handle, or none.
    Delivery(Option<(u64, Delivered)>),
    /// A temporary destination.
    Destination(Destination),
    /// The request failed.
    Failed(WireError),
    /// The answer to [`Request::Stats`].
    Stats(crate::StatsSnapshot),
}

/// An [`Error`] on the wire: the kind and its text fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// Which [`Error`] variant.
    pub kind: u8,
    /// The main text (reason, destination, …).
    pub text: String,
    /// A second text (the reason of an invalid destination or selector).
    pub detail: String,
    /// A number (selector position, timeout in ms, in-doubt operation).
    pub number: u64,
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> Self {
        let w = |kind: u8, text: &str| WireError {
            kind,
            text: text.to_owned(),
            detail: String::new(),
            number: 0,
        };
        match e {
            Error::InvalidDestination {
                destination,
                reason,
            } => WireError {
                detail: reason.clone(),
                ..w(1, destination)
            },
            Error::InvalidSelector {
                selector,
                position,
                reason,
            } => WireError {
                detail: reason.clone(),
                number: *position as u64,
                ..w(2, selector)
            },
            Error::InvalidArgument(s) => w(3, s),
            Error::IllegalState(s) => w(4, s),
            Error::InvalidClientId(s) => w(5, s),
            Error::TransactionRolledBack(s) => w(6, s),
            Error::MessageFormat(s) => w(7, s),
            Error::MessageNotWriteable(s) => w(8, s),
            Error::EndOfStream => w(9, ""),
            Error::Unsupported { feature, .. } => w(10, feature),
            Error::Authentication(s) => w(11, s),
            Error::NotAuthorized(s) => w(12, s),
            Error::ResourceLimit(s) => w(13, s),
            Error::FlowControl(s) => w(14, s),
            Error::Timeout(d) => WireError {
                number: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                ..w(15, "")
            },
            Error::ConnectionLost { reason, .. } => w(16, reason),
            Error::InDoubt { operation, reason } => WireError {
                number: match operation {
                    InDoubtOperation::Commit => 1,
                    InDoubtOperation::Acknowledge => 2,
                    _ => 0,
                },
                ..w(17, reason)
            },
            Error::Protocol(s) => w(18, s),
            Error::Decode(s) => w(19, s),
            other => w(20, &other.to_string()),
        }
    }
}

/// The cause of an error the server reported as a backend failure.
#[derive(Debug)]
struct Remote(String);

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Remote {}

impl From<WireError> for Error {
    fn from(w: WireError) -> Self {
        match w.kind {
            1 => Error::InvalidDestination {
                destination: w.text,
                reason: w.detail,
            },
            2 => Error::InvalidSelector {
                selector: w.text,
                position: usize::try_from(w.number).unwrap_or(usize::MAX),
                reason: w.detail,
            },
            3 => Error::InvalidArgument(w.text),
            4 => Error::IllegalState(w.text),
            5 => Error::InvalidClientId(w.text),
            6 => Error::TransactionRolledBack(w.text),
            7 => Error::MessageFormat(w.text),
            8 => Error::MessageNotWriteable(w.text),
            9 => Error::EndOfStream,
            10 => Error::unsupported("courier", w.text),
            11 => Error::Authentication(w.text),
            12 => Error::NotAuthorized(w.text),
            13 => Error::ResourceLimit(w.text),
            14 => Error::FlowControl(w.text),
            15 => Error::Timeout(Duration::from_millis(w.number)),
            16 => Error::connection_lost(w.text),
            17 => Error::in_doubt(
                match w.number {
                    1 => InDoubtOperation::Commit,
                    2 => InDoubtOperation::Acknowledge,
                    _ => InDoubtOperation::Send,
                },
                w.text,
            ),
            18 => Error::Protocol(w.text),
            19 => Error::Decode(w.text),
            _ => Error::backend("courier", Remote(w.text)),
        }
    }
}

/// Encodes a payload.
pub fn encode<T: Serialize>(value: &T) -> Bytes {
    thread_local! {
        /// Where this thread serialises before the payload is copied out at its exact size:
        /// growing a fresh `Vec` from empty cost a dozen reallocations per message (15 % of
        /// a server's instructions, callgrind). Payloads are not cut from a shared block, so
        /// a queued frame never keeps more memory alive than its own size.
        static SCRATCH: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
    }
    /// Above this the buffer is dropped after use: one huge message must not pin its size
    /// for the thread's lifetime.
    const KEEP: usize = 256 * 1024;
    SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        buf.clear();
        // Serialising these types cannot fail (no maps with non-string keys, no custom
        // serialisers that refuse); an empty payload would be refused by the peer.
        if postcard::serialize_with_flavor(value, Extend(&mut buf)).is_err() {
            buf.clear();
        }
        let payload = Bytes::copy_from_slice(&buf);
        if buf.capacity() > KEEP {
            *buf = BytesMut::new();
        }
        payload
    })
}

/// A postcard output appending to a `BytesMut`, whole slices at a time (postcard's own
/// `Vec` output pushes a message body byte by byte).
struct Extend<'a>(&'a mut BytesMut);

impl postcard::ser_flavors::Flavor for Extend<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.put_u8(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Decodes a payload; anything malformed (or trailing bytes) is [`Error::Protocol`].
pub fn decode<T: DeserializeOwned>(payload: &[u8], what: &str) -> Result<T, Error> {
    match postcard::take_from_bytes(payload) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Error::protocol(format!(
            "{} trailing bytes after a {what}",
            rest.len()
        ))),
        Err(e) => Err(Error::protocol(format!("malformed {what}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requests_and_errors_round_trip() {
        let request = Request::Send {
            producer: 7,
            destination: Some(Destination::queue("q")),
            message: Message::text("hi"),
            options: (&SendOptions::default()).into(),
        };
        assert_eq!(
            decode::<Request>(&encode(&request), "request").unwrap(),
            request
        );
        let error = Error::invalid_selector_for_test();
        let back: Error = WireError::from(&error).into();
        assert_eq!(back.to_string(), error.to_string());
        let caps = Capabilities::full("courier");
        assert_eq!(WireCapabilities::from_caps(&caps).to_caps("courier"), caps);
    }

    trait ForTest {
        fn invalid_selector_for_test() -> Error;
    }

    impl ForTest for Error {
        fn invalid_selector_for_test() -> Error {
            Error::InvalidSelector {
                selector: "a >".into(),
                position: 3,
                reason: "missing operand".into(),
            }
        }
    }

    proptest! {
        /// Arbitrary payloads decode to a value or a protocol error, never a panic.
        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<Request>(&bytes, "request");
            let _ = decode::<Reply>(&bytes, "reply");
            let _ = decode::<Hello>(&bytes, "hello");
            let _ = decode::<Welcome>(&bytes, "welcome");
        }
    }
}
