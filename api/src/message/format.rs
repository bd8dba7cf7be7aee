//! Courier's binary message format: the bytes every backend stores and sends.
//!
//! # Version 1 (frozen)
//!
//! One version byte, `1`, then the [postcard](https://docs.rs/postcard) encoding of:
//!
//! 1. the header, in this order: message id (`Option<str>`), timestamp (varint `u64`),
//!    correlation id (`Option<str>`), reply-to (`Option<Destination>`), destination
//!    (`Option<Destination>`), delivery mode (varint: 0 persistent, 1 non-persistent), type
//!    (`Option<str>`), expiration (varint `u64`), priority (`u8`), delivery time (varint `u64`).
//!    A destination is its kind (varint: 0 queue, 1 topic, 2 temporary queue, 3 temporary
//!    topic) and its name (`str`);
//! 2. the properties: `Option` of a sequence of (name, value) pairs in name order; a value is a
//!    varint tag (0 bool, 1 i8, 2 i16, 3 i32, 4 i64, 5 f32, 6 f64, 7 string, 8 char, 9 bytes)
//!    and its postcard encoding;
//! 3. the body: a varint tag (0 empty, 1 text, 2 bytes, 3 map of name → value in strictly
//!    increasing name order, 4 stream of values, 5 object: type name and JSON bytes) and its
//!    payload;
//! 4. the kind of an emptied body (`Option`, varint: 0 text, 1 bytes, 2 map, 3 stream,
//!    4 object), set only for a cleared text or object message.
//!
//! Per-delivery state — `JMSRedelivered` and `JMSXDeliveryCount` — is not in the bytes: the
//! broker sets it on each delivery and it travels beside the message.
//!
//! `api/tests/message_format_v1.rs` holds fixed byte vectors for every header field, property
//! type and body kind: changing an enum's variant order, a field or its order fails them.
//!
//! # Adding a version 2
//!
//! Never change what version 1 means. A new format gets the next version byte and its own
//! wire types (snapshot today's as `v1` types beside it); [`Message::encode`] writes the
//! newest version, [`Message::decode`] dispatches on the version byte and keeps the version 1
//! decoder (mapping its result into today's `Message`), and the fixed vectors of version 1 stay
//! in the tests as they are, joined by vectors for version 2.
//!
//! # Decoding untrusted bytes
//!
//! [`Message::decode`] never panics and re-checks every invariant the setters enforce (see
//! [`Message::validate`]): bytes that break one are [`Error::Decode`].

use bytes::Bytes;

use super::{check_property_name, Message, MAX_PRIORITY};
use crate::body::{Body, BodyKind};
use crate::{Error, Result};

/// Version byte at the start of every encoded message; this build writes version 1.
pub const ENCODING_VERSION: u8 = 1;

/// A postcard output appending to a `Vec`, whole slices at a time.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

impl Message {
    /// Encodes the message (header, properties, body) in Courier's versioned binary form — see
    /// [`crate::message::format`]. Per-delivery state (`redelivered`, the delivery count) is
    /// not encoded. A message that breaks an invariant ([`Message::validate`], e.g. a priority
    /// set above 9 through `spi::header_mut`) encodes to bytes that [`Message::decode`] refuses; a
    /// send refuses such a message ([`crate::spi::stamp_client`] checks it).
    pub fn encode(&self) -> Bytes {
        // Sized up front from the message's own estimate (an upper bound of the encoding for
        // all but tiny messages), and filled slice by slice: postcard's own `Vec` output grew
        // from empty and pushed a body byte by byte, a dozen reallocations and most of the
        // encoding's instructions for a 1 KiB body (callgrind).
        let mut out = Vec::with_capacity(self.size_hint().saturating_add(16).min(1 << 20));
        out.push(ENCODING_VERSION);
        // Serialising into memory cannot fail for this type: every field is plain data.
        let _ = postcard::serialize_with_flavor(self, Append(&mut out));
        Bytes::from(out)
    }

    /// Decodes bytes made by [`Message::encode`]. Unknown versions, malformed input and
    /// messages that break an invariant ([`Message::validate`]) are [`Error::Decode`]; this
    /// never panics. The decoded message is writable, with `redelivered` false and a delivery
    /// count of 0 (a backend sets both on delivery).
    pub fn decode(bytes: &[u8]) -> Result<Message> {
        match bytes.split_first() {
            Some((&ENCODING_VERSION, rest)) => decode_v1(rest),
            Some((v, _)) => Err(Error::Decode(format!(
                "unknown encoding version {v} (this build reads {ENCODING_VERSION})"
            ))),
            None => Err(Error::Decode("empty input".into())),
        }
    }

    /// Checks the invariants every setter keeps: priority 0–9; valid destination and reply-to
    /// names; property names valid (the JMSX names a message may carry included), unique and
    /// in order, with property-typed values; non-empty map entry names; an object body's JSON
    /// readable; a kind kept for an empty body only where the body cannot say it. The first
    /// violation found is [`Error::InvalidDestination`] for a destination, else
    /// [`Error::MessageFormat`].
    pub fn validate(&self) -> Result<()> {
        let h = &self.header;
        if h.priority > MAX_PRIORITY {
            return Err(Error::format(format!(
                "priority {} is outside 0-9",
                h.priority
            )));
        }
        if let Some(destination) = &h.destination {
            destination.validate()?;
        }
        self.validate_content(true)
    }

    /// The checks of [`Message::validate`] that a send does not overwrite: reply-to,
    /// properties, body and kind. `parse_json` also parses an object body's JSON (needed for
    /// bytes from outside; an object body made by this crate is valid JSON by construction).
    pub(crate) fn validate_content(&self, parse_json: bool) -> Result<()> {
        if let Some(reply_to) = &self.header.reply_to {
            reply_to.validate()?;
        }
        if let Some(properties) = &self.properties {
            let mut previous: Option<&str> = None;
            for (name, value) in properties.iter() {
                check_property_name(name).map_err(|e| Error::format(e.to_string()))?;
                if previous.is_some_and(|p| p >= name.as_str()) {
                    return Err(Error::format(format!(
                        "property {name:?} is duplicated or out of name order"
                    )));
                }
                previous = Some(name);
                if !value.is_property_type() {
                    return Err(Error::format(format!(
                        "property {name:?} holds a {} value, which is not a property type",
                        value.type_name()
                    )));
                }
            }
        }
        match &self.body {
            Body::Map(map) if map.contains_key("") => {
                return Err(Error::format("a map body has an entry with an empty name"));
            }
            Body::Object(object) if parse_json => object.check_json().map_err(Error::format)?,
            _ => {}
        }
        match (self.empty_kind, &self.body) {
            (None, _) | (Some(BodyKind::Text | BodyKind::Object), Body::Empty) => Ok(()),
            (Some(kind), body) => Err(Error::format(format!(
                "an emptied {} kind is recorded beside a {} body",
                kind.as_str(),
                body.kind()
            ))),
        }
    }
}

fn decode_v1(bytes: &[u8]) -> Result<Message> {
    let (mut message, tail): (Message, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(decode_error)?;
    if !tail.is_empty() {
        return Err(Error::Decode(format!(
            "{} trailing bytes after the message",
            tail.len()
        )));
    }
    message
        .validate()
        .map_err(|e| Error::Decode(e.to_string()))?;
    // An empty property set is held as none, as the setters hold it.
    if message.properties.as_ref().is_some_and(|p| p.is_empty()) {
        message.properties = None;
    }
    Ok(message)
}

/// A postcard error as [`Error::Decode`]. postcard drops the text of errors raised while
/// reading a value, so those name their possible causes.
pub(super) fn decode_error(e: postcard::Error) -> Error {
    match e {
        postcard::Error::SerdeDeCustom => Error::Decode(
            "a value is invalid: an unknown tag, or map body entries duplicated or out of name \
             order"
                .into(),
        ),
        other => Error::Decode(other.to_string()),
    }
}
