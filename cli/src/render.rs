//! How `receive` and `browse` print a message: one JSON object per line with `--json`
//! (headers, properties and body: text as-is, bytes as base64), else the body alone.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use courier::{Body, Message, Value};
use serde_json::{json, Map, Value as Json};

/// The message as one JSON object: `{"headers": {...}, "properties": {...}, "body_kind":
/// "text", "body": ...}`.
pub fn json(message: &Message) -> Json {
    let h = message.header();
    let headers = json!({
        "message_id": h.message_id.as_deref(),
        "timestamp": h.timestamp,
        "correlation_id": h.correlation_id.as_deref(),
        "reply_to": h.reply_to.as_ref().map(ToString::to_string),
        "destination": h.destination.as_ref().map(ToString::to_string),
        "delivery_mode": h.delivery_mode.as_str(),
        "redelivered": h.redelivered,
        "type": h.message_type.as_deref(),
        "expiration": h.expiration,
        "priority": h.priority,
        "delivery_time": h.delivery_time,
        "delivery_count": h.delivery_count,
    });
    let properties: Map<String, Json> = message
        .properties()
        .iter()
        .map(|(name, value)| (name.clone(), value_json(value)))
        .collect();
    json!({
        "headers": headers,
        "properties": properties,
        "body_kind": message.body().kind(),
        "body": body_json(message.body()),
    })
}

/// The message as a line of text: a text body as-is, any other body as its JSON.
pub fn text(message: &Message) -> String {
    match message.body() {
        Body::Text(text) => text.to_string(),
        other => body_json(other).to_string(),
    }
}

/// A body as JSON: text as a string, bytes as base64, a map as an object, a stream as an
/// array, an object as its own JSON, no body as `null`.
fn body_json(body: &Body) -> Json {
    match body {
        Body::Empty => Json::Null,
        Body::Text(text) => Json::String(text.to_string()),
        Body::Bytes(bytes) => Json::String(BASE64.encode(bytes)),
        Body::Map(map) => Json::Object(
            map.iter()
                .map(|(name, value)| (name.clone(), value_json(value)))
                .collect(),
        ),
        Body::Stream(values) => Json::Array(values.iter().map(value_json).collect()),
        Body::Object(object) => serde_json::from_slice(object.json())
            .unwrap_or_else(|_| Json::String(BASE64.encode(object.json()))),
    }
}

/// A typed value as JSON (the JMS type is not kept: JSON has one number type).
fn value_json(value: &Value) -> Json {
    match value {
        Value::Bool(b) => json!(b),
        Value::I8(n) => json!(n),
        Value::I16(n) => json!(n),
        Value::I32(n) => json!(n),
        Value::I64(n) => json!(n),
        Value::F32(n) => json!(n),
        Value::F64(n) => json!(n),
        Value::String(s) => json!(s.as_ref()),
        Value::Char(c) => json!(c.to_string()),
        Value::Bytes(b) => json!(BASE64.encode(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_base64_and_properties_keep_their_values() {
        let mut message = Message::bytes(vec![0u8, 1, 2, 255]);
        message.set_property("n", 7_i64).unwrap();
        message.set_property("s", "x").unwrap();
        let j = json(&message);
        assert_eq!(j["body_kind"], "bytes");
        assert_eq!(j["body"], "AAEC/w==");
        assert_eq!(j["properties"]["n"], 7);
        assert_eq!(j["properties"]["s"], "x");
        assert_eq!(text(&Message::text("hi")), "hi");
        assert_eq!(json(&Message::new())["body"], Json::Null);
    }
}
