//! Headers-exchange prefilters: a topic subscription whose selector requires properties to
//! equal given values receives only messages that have them, so RabbitMQ does not transfer
//! the others to the client at all.
//!
//! The subscription's queue is then bound, not to the topics exchange directly, but to a headers
//! exchange of its own ([`filter_exchange`], auto-delete: it goes with the queue's binding)
//! that the topics exchange (`courier.topics`) feeds under the topic's name. Each binding of the queue to it is one
//! combination of required values, with `x-match` `all`.
//!
//! A prefilter is only ever a necessary condition; the api's evaluator still decides every
//! message exactly. It is taken from [`Selector::required_equalities`] and keeps only what
//! RabbitMQ can compare exactly:
//!
//! - application properties (not `JMS…` headers, which travel in other forms);
//! - strings and booleans as they are, numbers once per AMQP type that can hold the value
//!   (RabbitMQ compares header values with their type: a property `n` of `i32` 3 is not
//!   the `i64` 3), each of those a binding;
//! - at most [`MAX_BINDINGS`] bindings: conditions that would make more are left out (the
//!   client alone checks them).

use courier_api::selector::SelectorValue;
use courier_api::Selector;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// The most bindings one subscription's prefilter uses.
pub const MAX_BINDINGS: usize = 16;

/// The headers exchange of the subscription queue `queue`, or `None` when the name would
/// be too long for AMQP (the subscription then goes without a prefilter).
pub(crate) fn filter_exchange(queue: &str) -> Option<ShortString> {
    ShortString::try_new(format!("courier.filter.{queue}")).ok()
}

/// The header values a property must have (any of them) for `value` to equal it in a
/// selector.
fn header_values(value: &SelectorValue) -> Vec<AMQPValue> {
    match value {
        SelectorValue::Bool(b) => vec![AMQPValue::Boolean(*b)],
        SelectorValue::String(s) => vec![AMQPValue::LongString(LongString::from(s.as_bytes()))],
        SelectorValue::Long(n) => {
            let n = *n;
            let mut values = vec![AMQPValue::LongLongInt(n)];
            if let Ok(v) = i32::try_from(n) {
                values.push(AMQPValue::LongInt(v));
            }
            if let Ok(v) = i16::try_from(n) {
                values.push(AMQPValue::ShortInt(v));
            }
            if let Ok(v) = i8::try_from(n) {
                values.push(AMQPValue::ShortShortInt(v));
            }
            values
        }
        SelectorValue::Double(d) => {
            let d = *d;
            let mut values = vec![AMQPValue::Double(d)];
            #[allow(clippy::cast_possible_truncation)]
            let narrow = d as f32;
            if f64::from(narrow) == d {
                values.push(AMQPValue::Float(narrow));
            }
            values
        }
    }
}

/// The binding arguments of the prefilter of `selector`: one table per binding, none when
/// the selector requires no equality RabbitMQ can check.
pub(crate) fn bindings(selector: &Selector) -> Vec<FieldTable> {
    let mut combinations: Vec<Vec<(ShortString, AMQPValue)>> = vec![Vec::new()];
    for (identifier, values) in selector.required_equalities() {
        if identifier.starts_with("JMS") || identifier.starts_with("x-") {
            continue;
        }
        let Ok(key) = ShortString::try_new(identifier) else {
            continue;
        };
        let options: Vec<AMQPValue> = values.iter().flat_map(header_values).collect();
        if options.is_empty() || combinations.len() * options.len() > MAX_BINDINGS {
            continue;
        }
        let mut next = Vec::with_capacity(combinations.len() * options.len());
        for fixed in &combinations {
            for option in &options {
                let mut one = fixed.clone();
                one.push((key.clone(), option.clone()));
                next.push(one);
            }
        }
        combinations = next;
    }
    if combinations.iter().all(Vec::is_empty) {
        return Vec::new();
    }
    combinations
        .into_iter()
        .map(|pairs| {
            let mut table = FieldTable::default();
            table.insert(
                "x-match".into(),
                AMQPValue::LongString(LongString::from("all")),
            );
            for (key, value) in pairs {
                table.insert(key, value);
            }
            table
        })
        .collect()
}

/// Where a subscription's messages come from: the topics exchange itself, or the exchange its
/// prefilter bindings hang on.
#[derive(Debug)]
pub(crate) enum Source {
    /// Bound directly to the topics exchange.
    Topics,
    /// Bound to the headers exchange `exchange` with these arguments, once each.
    Filter {
        exchange: ShortString,
        bindings: Vec<FieldTable>,
    },
}

impl Source {
    /// The source of the subscription queue `queue` with `selector`.
    pub fn of(queue: &str, selector: Option<&Selector>) -> Source {
        let bindings = selector.map(bindings).unwrap_or_default();
        match filter_exchange(queue) {
            Some(exchange) if !bindings.is_empty() => Source::Filter { exchange, bindings },
            _ => Source::Topics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Vec<FieldTable> {
        bindings(&Selector::parse(text).unwrap())
    }

    #[test]
    fn string_and_boolean_equalities_make_one_binding() {
        let b = of("color = 'red' AND urgent = TRUE AND size > 3");
        assert_eq!(b.len(), 1);
        let t = b[0].inner();
        assert_eq!(t.len(), 3, "{t:?}");
        assert_eq!(
            t.get("color"),
            Some(&AMQPValue::LongString(LongString::from("red")))
        );
        assert_eq!(t.get("urgent"), Some(&AMQPValue::Boolean(true)));
    }

    #[test]
    fn a_number_gets_a_binding_per_type_holding_it() {
        // 3: i64, i32, i16, i8, f64, f32.
        assert_eq!(of("n = 3").len(), 6);
        // 100000: i64, i32, f64, f32.
        assert_eq!(of("n = 100000").len(), 4);
        assert_eq!(of("color = 'red' AND n = 3").len(), 6);
    }

    #[test]
    fn nothing_to_prefilter_is_no_binding() {
        for text in [
            "color = 'red' OR n = 3",
            "size > 3",
            "JMSType = 'x'",
            "JMSPriority = 4",
            "NOT color = 'red'",
            "color <> 'red'",
        ] {
            assert!(of(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn too_many_combinations_leave_conditions_to_the_client() {
        // Two numbers would need 36 bindings: the second is left out.
        let b = of("a = 3 AND b = 3 AND color = 'red'");
        assert_eq!(b.len(), 6);
        assert!(b.iter().all(|t| t.inner().get("b").is_none()));
        assert!(b.iter().all(|t| t.inner().get("color").is_some()));
        let many =
            of("color IN ('a','b','c','d','e','f','g','h','i','j','k','l','m','n','o','p','q')");
        assert!(many.is_empty());
    }
}
