//! The message model: JMS headers, typed properties and a body, plus the one binary encoding
//! every backend stores (see [`mod@format`]), or the same message as separate parts for
//! backends that store headers, properties and body apart (see [`mod@parts`]).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::properties::Properties;
use std::sync::Arc;

use crate::body::{named_value_size, Body, BodyKind, ObjectBody, StreamReader};
use crate::selector::{SelectorSource, SelectorValue};
use crate::value::{FromValue, Value};
use crate::{Destination, Error, Result};

pub mod format;
pub mod parts;
pub use format::ENCODING_VERSION;
pub use parts::MessageParts;

/// Default JMS priority (§3.4.10).
pub const DEFAULT_PRIORITY: u8 = 4;
/// Highest JMS priority.
pub const MAX_PRIORITY: u8 = 9;
/// The JMS-defined property a backend sets on delivery: how often the message was delivered.
pub const JMSX_DELIVERY_COUNT: &str = "JMSXDeliveryCount";

/// Whether a message must survive a broker failure (§7.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeliveryMode {
    /// Once-and-only-once: kept on stable storage by backends that have it. The default.
    #[default]
    Persistent,
    /// At most once: may be lost on failure; never written to disk.
    NonPersistent,
}

impl DeliveryMode {
    /// The name JMS selectors use for `JMSDeliveryMode`: `PERSISTENT` or `NON_PERSISTENT`
    /// (a backend may store the mode as this name; [`DeliveryMode::parse`] reads it back).
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::Persistent => "PERSISTENT",
            DeliveryMode::NonPersistent => "NON_PERSISTENT",
        }
    }

    /// The mode named `name` by [`DeliveryMode::as_str`]; any other text is [`Error::Decode`].
    pub fn parse(name: &str) -> Result<DeliveryMode> {
        match name {
            "PERSISTENT" => Ok(DeliveryMode::Persistent),
            "NON_PERSISTENT" => Ok(DeliveryMode::NonPersistent),
            other => Err(Error::Decode(format!(
                "{other:?} is not a delivery mode (PERSISTENT or NON_PERSISTENT)"
            ))),
        }
    }
}

/// The JMS header fields (Table 3-1). Times are milliseconds since the Unix epoch, 0 = unset.
///
/// `redelivered` and `delivery_count` are per-delivery state: the broker sets them on each
/// delivery, they travel beside the message, and they are not part of its encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// `JMSMessageID`: set on send, starts with `ID:`; `None` when the producer disabled ids.
    pub message_id: Option<Arc<str>>,
    /// `JMSTimestamp`: when the send was called; 0 when the producer disabled timestamps.
    pub timestamp: u64,
    /// `JMSCorrelationID`: set by the application, links a reply to its request.
    pub correlation_id: Option<Arc<str>>,
    /// `JMSReplyTo`: where a reply should go.
    pub reply_to: Option<Destination>,
    /// `JMSDestination`: set on send.
    pub destination: Option<Destination>,
    /// `JMSDeliveryMode`: set on send.
    pub delivery_mode: DeliveryMode,
    /// `JMSRedelivered`: set before delivery when the message was delivered before. Not encoded.
    #[serde(skip)]
    pub redelivered: bool,
    /// `JMSType`: set by the application.
    pub message_type: Option<Arc<str>>,
    /// `JMSExpiration`: send time + time to live; 0 = never expires.
    pub expiration: u64,
    /// `JMSPriority`: 0 (lowest) to 9; set on send.
    pub priority: u8,
    /// `JMSDeliveryTime`: send time + delivery delay; never delivered before it.
    pub delivery_time: u64,
    /// `JMSXDeliveryCount`: 1 on first delivery, ≥ 2 when redelivered; 0 before delivery (the
    /// property is then absent). Not encoded.
    #[serde(skip)]
    pub delivery_count: u32,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            message_id: None,
            timestamp: 0,
            correlation_id: None,
            reply_to: None,
            destination: None,
            delivery_mode: DeliveryMode::Persistent,
            redelivered: false,
            message_type: None,
            expiration: 0,
            priority: DEFAULT_PRIORITY,
            delivery_time: 0,
            delivery_count: 0,
        }
    }
}

/// A message: header, typed properties and body.
///
/// Cheap to clone (payloads are shared). A received message's properties and body are
/// read-only until [`Message::clear_properties`] / [`Message::clear_body`], as in JMS.
///
/// ```
/// use courier_api::Message;
/// let mut m = Message::text("hello");
/// m.set_property("attempt", 3_i32).unwrap();
/// m.set_correlation_id("order-17").unwrap();
/// assert_eq!(m.body_text(), Some("hello"));
/// assert_eq!(m.property::<i64>("attempt").unwrap(), Some(3));
/// let copy = courier_api::Message::decode(&m.encode()).unwrap();
/// assert_eq!(copy, m);
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Message {
    header: Header,
    /// `None` when there are none, so a message without properties allocates nothing for them.
    properties: Option<Arc<Properties>>,
    body: Body,
    /// The kind of a message whose body is [`Body::Empty`] after `clear_body`: a cleared text
    /// or object message stays one. `None` whenever the body is not empty (the body then says
    /// its kind) and for a message that never had a body.
    empty_kind: Option<BodyKind>,
    #[serde(skip)]
    read_only_properties: bool,
    #[serde(skip)]
    read_only_body: bool,
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.header == other.header
            && self.properties() == other.properties()
            && self.body == other.body
            && self.empty_kind == other.empty_kind
    }
}

impl Message {
    /// A message with no body.
    pub fn new() -> Self {
        Self::default()
    }

    /// A message with the given body.
    pub fn with_body(body: Body) -> Self {
        Message {
            body,
            ..Self::default()
        }
    }

    /// A text message.
    pub fn text(text: impl Into<Arc<str>>) -> Self {
        Self::with_body(Body::Text(text.into()))
    }

    /// A bytes message.
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Self::with_body(Body::Bytes(bytes.into()))
    }

    /// A map message.
    pub fn map(map: BTreeMap<String, Value>) -> Self {
        Self::with_body(Body::Map(Arc::new(map)))
    }

    /// A stream message.
    pub fn stream(values: Vec<Value>) -> Self {
        Self::with_body(Body::Stream(Arc::new(values)))
    }

    /// An object message holding `value` as JSON under the type name serde gives it (see
    /// [`ObjectBody::new`]).
    pub fn object<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        Ok(Self::with_body(Body::Object(Box::new(ObjectBody::new(
            value,
        )?))))
    }

    // ---- header -----------------------------------------------------------------------

    /// All header fields.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// All header fields, writable; backends reach it through [`crate::spi::header_mut`].
    pub(crate) fn header_mut(&mut self) -> &mut Header {
        &mut self.header
    }

    /// `JMSMessageID`.
    pub fn message_id(&self) -> Option<&str> {
        self.header.message_id.as_deref()
    }

    /// `JMSTimestamp` in ms since the epoch (0 if disabled).
    pub fn timestamp(&self) -> u64 {
        self.header.timestamp
    }

    /// `JMSCorrelationID`.
    pub fn correlation_id(&self) -> Option<&str> {
        self.header.correlation_id.as_deref()
    }

    /// Sets `JMSCorrelationID`. Application values must not start with `ID:` unless they copy
    /// a message id (reply to a request): pass that through [`Message::set_correlation_id_from`].
    pub fn set_correlation_id(&mut self, id: impl Into<Arc<str>>) -> Result<()> {
        let id = id.into();
        if id.starts_with("ID:") {
            return Err(Error::invalid_argument(
                "application correlation ids must not start with \"ID:\" (use set_correlation_id_from)",
            ));
        }
        self.header.correlation_id = Some(id);
        Ok(())
    }

    /// Sets `JMSCorrelationID` to the message id of `request`, the usual request/reply link.
    pub fn set_correlation_id_from(&mut self, request: &Message) {
        self.header.correlation_id = request.header.message_id.clone();
    }

    /// `JMSReplyTo`.
    pub fn reply_to(&self) -> Option<&Destination> {
        self.header.reply_to.as_ref()
    }

    /// Sets `JMSReplyTo`.
    pub fn set_reply_to(&mut self, destination: Option<Destination>) {
        self.header.reply_to = destination;
    }

    /// `JMSDestination`: where the message was sent.
    pub fn destination(&self) -> Option<&Destination> {
        self.header.destination.as_ref()
    }

    /// `JMSDeliveryMode`.
    pub fn delivery_mode(&self) -> DeliveryMode {
        self.header.delivery_mode
    }

    /// `JMSRedelivered`.
    pub fn redelivered(&self) -> bool {
        self.header.redelivered
    }

    /// `JMSType`.
    pub fn message_type(&self) -> Option<&str> {
        self.header.message_type.as_deref()
    }

    /// Sets `JMSType`.
    pub fn set_message_type(&mut self, message_type: Option<&str>) {
        self.header.message_type = message_type.map(Arc::from);
    }

    /// `JMSExpiration` in ms since the epoch; 0 = never.
    pub fn expiration(&self) -> u64 {
        self.header.expiration
    }

    /// `JMSPriority`.
    pub fn priority(&self) -> u8 {
        self.header.priority
    }

    /// `JMSDeliveryTime` in ms since the epoch.
    pub fn delivery_time(&self) -> u64 {
        self.header.delivery_time
    }

    /// `JMSXDeliveryCount`: 1 on first delivery.
    pub fn delivery_count(&self) -> u32 {
        self.header.delivery_count
    }

    // ---- properties -------------------------------------------------------------------

    /// Sets a property. The name must be a valid selector identifier and not reserved
    /// (`JMS…`, except `JMSXGroupID` / `JMSXGroupSeq`); the value must be a property type.
    pub fn set_property(&mut self, name: &str, value: impl Into<Value>) -> Result<()> {
        if self.read_only_properties {
            return Err(Error::MessageNotWriteable(
                "properties of a received message are read-only until clear_properties()".into(),
            ));
        }
        check_property_name(name)?;
        let value = value.into();
        if !value.is_property_type() {
            return Err(Error::format(format!(
                "a {} value cannot be a property",
                value.type_name()
            )));
        }
        Arc::make_mut(self.properties.get_or_insert_with(Arc::default))
            .insert(name.to_owned(), value);
        Ok(())
    }

    /// Reads a property as `T` with the JMS conversions; `Ok(None)` when it is absent.
    ///
    /// Besides the application's properties this answers the JMSX properties the backend set:
    /// `JMSXDeliveryCount` (an int) on a delivered message.
    pub fn property<T: FromValue>(&self, name: &str) -> Result<Option<T>> {
        if let Some(value) = self.backend_property(name) {
            return T::from_value(&value).map(Some);
        }
        self.properties().get(name).map(T::from_value).transpose()
    }

    /// The value of a JMSX property the backend set, when present: `JMSXDeliveryCount` once
    /// the message was delivered (it is absent before).
    fn backend_property(&self, name: &str) -> Option<Value> {
        (name == JMSX_DELIVERY_COUNT && self.header.delivery_count > 0)
            .then(|| Value::I32(i32::try_from(self.header.delivery_count).unwrap_or(i32::MAX)))
    }

    /// The raw value of a property the application set (JMSX properties a backend sets on
    /// delivery are read with [`Message::property`]).
    pub fn raw_property(&self, name: &str) -> Option<&Value> {
        self.properties().get(name)
    }

    /// True when the property is set, by the application or (JMSX) by the backend.
    pub fn has_property(&self, name: &str) -> bool {
        self.backend_property(name).is_some() || self.properties().contains_key(name)
    }

    /// The names of every property present, in name order: the application's and the JMSX
    /// ones the backend set (`JMSXDeliveryCount` once delivered), like JMS
    /// `getPropertyNames`.
    pub fn property_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.properties().keys().map(String::as_str).collect();
        if self.backend_property(JMSX_DELIVERY_COUNT).is_some() {
            let at = names
                .binary_search(&JMSX_DELIVERY_COUNT)
                .unwrap_or_else(|i| i);
            names.insert(at, JMSX_DELIVERY_COUNT);
        }
        names
    }

    /// The properties the application set, by name (the JMSX properties a backend sets on
    /// delivery are answered by [`Message::property`] and listed by
    /// [`Message::property_names`], not held here).
    pub fn properties(&self) -> &Properties {
        static NONE: Properties = Properties::new();
        self.properties.as_deref().unwrap_or(&NONE)
    }

    /// Removes every property and makes the properties writable.
    pub fn clear_properties(&mut self) {
        self.properties = None;
        self.read_only_properties = false;
    }

    // ---- body -------------------------------------------------------------------------

    /// The body. After [`Message::clear_body`] a text or object message has [`Body::Empty`]
    /// and keeps its kind ([`Message::body_kind`]); a map, stream or bytes message has an
    /// empty map, stream or byte string.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The JMS message type: the kind of body this message carries, kept when the body is
    /// cleared; `None` for a message that never had a body (its first body sets the kind).
    pub fn body_kind(&self) -> Option<BodyKind> {
        self.body.body_kind().or(self.empty_kind)
    }

    fn check_body_writable(&self) -> Result<()> {
        if self.read_only_body {
            return Err(Error::MessageNotWriteable(
                "the body of a received message is read-only until clear_body()".into(),
            ));
        }
        Ok(())
    }

    /// Fails with [`Error::MessageFormat`] unless this message may carry a body of `kind`.
    fn check_kind(&self, kind: BodyKind) -> Result<()> {
        match self.body_kind() {
            Some(own) if own != kind => Err(Error::format(format!(
                "a {} message cannot take a {} body",
                own.as_str(),
                kind.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// Replaces the body; fails on a received message until [`Message::clear_body`], and with
    /// [`Error::MessageFormat`] when the body is of another kind than the message (a text
    /// message stays a text message). [`Body::Empty`] empties the body like `clear_body`.
    pub fn set_body(&mut self, body: Body) -> Result<()> {
        self.check_body_writable()?;
        match body.body_kind() {
            None => self.empty_body(),
            Some(kind) => {
                self.check_kind(kind)?;
                self.body = body;
                self.empty_kind = None;
            }
        }
        Ok(())
    }

    /// Empties the body and makes it writable. The message keeps its kind: a text or object
    /// message then has no text or object, a map, stream or bytes message an empty one; a
    /// body of another kind stays refused.
    pub fn clear_body(&mut self) {
        self.empty_body();
        self.read_only_body = false;
    }

    fn empty_body(&mut self) {
        let kind = self.body_kind();
        self.body = match kind {
            Some(BodyKind::Map) => Body::Map(Arc::default()),
            Some(BodyKind::Stream) => Body::Stream(Arc::default()),
            Some(BodyKind::Bytes) => Body::Bytes(Bytes::new()),
            Some(BodyKind::Text | BodyKind::Object) | None => Body::Empty,
        };
        self.empty_kind = match kind {
            Some(BodyKind::Text | BodyKind::Object) => kind,
            _ => None,
        };
    }

    /// The text of a text body; `None` for other kinds and a cleared text message.
    pub fn body_text(&self) -> Option<&str> {
        match &self.body {
            Body::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The bytes of a bytes body.
    pub fn body_bytes(&self) -> Option<&Bytes> {
        match &self.body {
            Body::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Reads entry `name` of a map body as `T`; `Ok(None)` when absent. A body of another
    /// kind is [`Error::MessageFormat`].
    pub fn map_get<T: FromValue>(&self, name: &str) -> Result<Option<T>> {
        match &self.body {
            Body::Map(m) => m.get(name).map(T::from_value).transpose(),
            other => Err(Error::format(format!(
                "a {} body is not a map",
                self.empty_kind.map_or(other.kind(), BodyKind::as_str)
            ))),
        }
    }

    /// Sets entry `name` of a map body (a message without a body becomes a map message).
    pub fn map_set(&mut self, name: &str, value: impl Into<Value>) -> Result<()> {
        self.check_body_writable()?;
        if name.is_empty() {
            return Err(Error::invalid_argument("map entry names must not be empty"));
        }
        self.check_kind(BodyKind::Map)?;
        if matches!(self.body, Body::Empty) {
            self.body = Body::Map(Arc::default());
        }
        match &mut self.body {
            Body::Map(m) => {
                Arc::make_mut(m).insert(name.to_owned(), value.into());
                Ok(())
            }
            other => Err(Error::format(format!(
                "a {} body is not a map",
                other.kind()
            ))),
        }
    }

    /// Appends a value to a stream body (a message without a body becomes a stream message).
    pub fn stream_write(&mut self, value: impl Into<Value>) -> Result<()> {
        self.check_body_writable()?;
        self.check_kind(BodyKind::Stream)?;
        if matches!(self.body, Body::Empty) {
            self.body = Body::Stream(Arc::default());
        }
        match &mut self.body {
            Body::Stream(s) => {
                Arc::make_mut(s).push(value.into());
                Ok(())
            }
            other => Err(Error::format(format!(
                "a {} body is not a stream",
                other.kind()
            ))),
        }
    }

    /// A reader over a stream body, from its first value.
    pub fn stream_reader(&self) -> Result<StreamReader> {
        match &self.body {
            Body::Stream(s) => Ok(StreamReader::new(s.clone())),
            other => Err(Error::format(format!(
                "a {} body is not a stream",
                self.empty_kind.map_or(other.kind(), BodyKind::as_str)
            ))),
        }
    }

    /// Decodes an object body as `T`; a cleared object message has no object to decode.
    pub fn body_object<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        match &self.body {
            Body::Object(o) => o.decode(),
            Body::Empty if self.empty_kind == Some(BodyKind::Object) => Err(Error::format(
                "the object message holds no object (its body was cleared)",
            )),
            other => Err(Error::format(format!(
                "a {} body is not an object",
                self.empty_kind.map_or(other.kind(), BodyKind::as_str)
            ))),
        }
    }

    // ---- delivery ---------------------------------------------------------------------

    /// Marks the message as delivered: properties and body become read-only (§3.10); backends
    /// reach it through [`crate::spi::mark_received`].
    pub(crate) fn mark_received(&mut self) {
        self.read_only_properties = true;
        self.read_only_body = true;
    }

    /// Bytes this message holds, for size limits (a broker compares it with its maximum
    /// message size): the message itself, every header string (message id, correlation id,
    /// type, destination and reply-to names), every property name and value, and the body
    /// (map keys, stream values, an object's type name and JSON). Saturates instead of
    /// overflowing.
    pub fn size_hint(&self) -> usize {
        let h = &self.header;
        let text = |s: &Option<Arc<str>>| s.as_deref().map_or(0, str::len);
        let destination = |d: &Option<Destination>| d.as_ref().map_or(0, |d| d.name().len());
        let header = text(&h.message_id)
            .saturating_add(text(&h.correlation_id))
            .saturating_add(text(&h.message_type))
            .saturating_add(destination(&h.destination))
            .saturating_add(destination(&h.reply_to));
        let properties = self.properties().iter().fold(0, |sum: usize, (k, v)| {
            sum.saturating_add(named_value_size(k, v))
        });
        std::mem::size_of::<Message>()
            .saturating_add(header)
            .saturating_add(properties)
            .saturating_add(self.body.size_hint())
    }
}

const SELECTOR_KEYWORDS: [&str; 11] = [
    "NULL", "TRUE", "FALSE", "NOT", "AND", "OR", "BETWEEN", "LIKE", "IN", "IS", "ESCAPE",
];

/// Checks a property name: a Java identifier, not a selector keyword, not reserved.
pub fn check_property_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = match chars.next() {
        Some(c) if c.is_alphabetic() || c == '_' || c == '$' => {
            chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        }
        _ => false,
    };
    if !valid {
        return Err(Error::invalid_argument(format!(
            "property name {name:?} is not a valid identifier"
        )));
    }
    if SELECTOR_KEYWORDS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(name))
    {
        return Err(Error::invalid_argument(format!(
            "property name {name:?} is a selector keyword"
        )));
    }
    if name.starts_with("JMS") && name != "JMSXGroupID" && name != "JMSXGroupSeq" {
        return Err(Error::invalid_argument(format!(
            "property name {name:?} is reserved (JMS prefix)"
        )));
    }
    Ok(())
}

impl SelectorSource for Message {
    fn selector_value(&self, identifier: &str) -> Option<SelectorValue> {
        if let Some(v) = self.properties().get(identifier) {
            return match v {
                Value::Bool(b) => Some(SelectorValue::Bool(*b)),
                Value::I8(n) => Some(SelectorValue::Long(*n as i64)),
                Value::I16(n) => Some(SelectorValue::Long(*n as i64)),
                Value::I32(n) => Some(SelectorValue::Long(*n as i64)),
                Value::I64(n) => Some(SelectorValue::Long(*n)),
                Value::F32(n) => Some(SelectorValue::Double(*n as f64)),
                Value::F64(n) => Some(SelectorValue::Double(*n)),
                Value::String(s) => Some(SelectorValue::String(s.clone())),
                Value::Char(_) | Value::Bytes(_) => None,
            };
        }
        let h = &self.header;
        match identifier {
            "JMSDeliveryMode" => Some(SelectorValue::String(Arc::from(h.delivery_mode.as_str()))),
            "JMSPriority" => Some(SelectorValue::Long(h.priority as i64)),
            "JMSMessageID" => h.message_id.clone().map(SelectorValue::String),
            "JMSTimestamp" => (h.timestamp != 0).then_some(SelectorValue::Long(h.timestamp as i64)),
            "JMSCorrelationID" => h.correlation_id.clone().map(SelectorValue::String),
            "JMSType" => h.message_type.clone().map(SelectorValue::String),
            JMSX_DELIVERY_COUNT => {
                (h.delivery_count > 0).then_some(SelectorValue::Long(h.delivery_count as i64))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_messages_are_read_only_until_cleared() {
        let mut m = Message::text("x");
        m.mark_received();
        assert!(matches!(
            m.set_property("a", 1_i32),
            Err(Error::MessageNotWriteable(_))
        ));
        assert!(m.set_body(Body::Empty).is_err());
        m.clear_properties();
        m.set_property("a", 1_i32).unwrap();
        m.clear_body();
        m.set_body(Body::Text("y".into())).unwrap();
    }

    #[test]
    fn property_names_are_checked() {
        let mut m = Message::new();
        for bad in [
            "",
            "1a",
            "a-b",
            "AND",
            "null",
            "JMSFoo",
            "JMSXDeliveryCount",
        ] {
            assert!(m.set_property(bad, 1_i32).is_err(), "{bad}");
        }
        m.set_property("JMSXGroupID", "g").unwrap();
        assert!(m.set_property("c", 'c').is_err());
    }

    #[test]
    fn decode_rejects_garbage_without_panicking() {
        assert!(Message::decode(&[]).is_err());
        assert!(Message::decode(&[9, 1, 2]).is_err());
        assert!(Message::decode(&[ENCODING_VERSION, 0xff, 0xff, 0xff]).is_err());
        let mut good = Message::text("hi").encode().to_vec();
        good.push(0);
        assert!(Message::decode(&good).is_err());
        for n in 0..good.len() - 1 {
            let _ = Message::decode(&good[..n]);
        }
    }

    #[test]
    fn every_body_round_trips() {
        let mut map = BTreeMap::new();
        map.insert("k".to_string(), Value::from('c'));
        for body in [
            Body::Empty,
            Body::Text("t".into()),
            Body::Bytes(Bytes::from_static(b"\0\x01")),
            Body::Map(Arc::new(map)),
            Body::Stream(Arc::new(vec![
                Value::from(1.5_f32),
                Value::from(vec![1_u8]),
            ])),
            Body::Object(Box::new(ObjectBody::new(&vec![1, 2, 3]).unwrap())),
        ] {
            let mut m = Message::with_body(body);
            m.header_mut().reply_to = Some(Destination::topic("r"));
            m.set_property("p", 2.5_f64).unwrap();
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
    }
}
