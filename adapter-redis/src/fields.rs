//! The values a selector sees, stored beside each message as hash fields `v:<name>` so the
//! take script can evaluate a compiled selector without decoding the message.
//!
//! Each value is typed by its first letter: `b1`/`b0` a boolean, `l<decimal>` an exact
//! numeric, `d<text>` an approximate one (the shortest text that reads back as the same
//! double; `nan`, `inf`, `-inf`), `s<text>` a string. `JMSPriority` is the message's `p`
//! field and `JMSXDeliveryCount` its delivery count, so neither is stored again.

use courier_api::{Message, Value};

/// A double as text that Lua's `tonumber` (the runtime's `K.num`) reads back exactly.
fn double_text(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{d:e}")
    }
}

fn typed(value: &Value) -> Option<String> {
    Some(match value {
        Value::Bool(b) => format!("b{}", u8::from(*b)),
        Value::I8(n) => format!("l{n}"),
        Value::I16(n) => format!("l{n}"),
        Value::I32(n) => format!("l{n}"),
        Value::I64(n) => format!("l{n}"),
        Value::F32(n) => format!("d{}", double_text(f64::from(*n))),
        Value::F64(n) => format!("d{}", double_text(*n)),
        Value::String(s) => format!("s{s}"),
        // Not visible to selectors (NULL).
        _ => return None,
    })
}

/// A selector literal as the typed text its equal property values are indexed under (`-0`
/// as `0`, as the script does); `None` for a value no property can be stored as.
pub(crate) fn typed_value(value: &courier_api::selector::SelectorValue) -> Option<String> {
    use courier_api::selector::SelectorValue;
    Some(match value {
        SelectorValue::Bool(b) => format!("b{}", u8::from(*b)),
        SelectorValue::Long(n) => format!("l{n}"),
        SelectorValue::Double(d) if *d == 0.0 => "d0e0".to_string(),
        SelectorValue::Double(d) => format!("d{}", double_text(*d)),
        SelectorValue::String(s) => format!("s{s}"),
    })
}

/// The selector-visible values of a message, as alternating field names and values.
pub(crate) fn selector_fields(message: &Message) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut push = |name: &str, value: String| {
        out.push(format!("v:{name}").into_bytes());
        out.push(value.into_bytes());
    };
    for (name, value) in message.properties().iter() {
        if let Some(text) = typed(value) {
            push(name, text);
        }
    }
    let h = message.header();
    push("JMSDeliveryMode", format!("s{}", h.delivery_mode.as_str()));
    if let Some(id) = &h.message_id {
        push("JMSMessageID", format!("s{id}"));
    }
    if h.timestamp != 0 {
        push("JMSTimestamp", format!("l{}", h.timestamp));
    }
    if let Some(id) = &h.correlation_id {
        push("JMSCorrelationID", format!("s{id}"));
    }
    if let Some(t) = &h.message_type {
        push("JMSType", format!("s{t}"));
    }
    out
}
