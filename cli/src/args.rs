//! Argument types shared by the subcommands: the backend URL (defaulting to `COURIER_URL`),
//! the destination, durations like `500ms`/`2m`, sizes like `1KiB`, and `k=v` properties.
//!
//! Every parser returns a one-line reason on bad input, which clap prints with the argument
//! it belongs to; none panics on hostile text (huge numbers overflow into an error).

use std::time::Duration;

use clap::Args;
use courier::{Destination, Value};

/// The largest size argument accepted: 1 GiB (a bigger message is a mistake on any backend).
pub const MAX_SIZE: usize = 1 << 30;

/// Which broker to talk to.
#[derive(Debug, Clone, Args)]
pub struct UrlArg {
    /// Backend URL: embedded:, courier://host:7672, amqp://user:pass@host/%2f, redis://host
    #[arg(long, env = "COURIER_URL", value_name = "URL")]
    pub url: String,
}

/// A queue or a topic, given by name.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct DestinationArg {
    /// Queue name (point-to-point).
    #[arg(long, value_name = "NAME")]
    pub queue: Option<String>,
    /// Topic name (publish/subscribe).
    #[arg(long, value_name = "NAME")]
    pub topic: Option<String>,
}

impl DestinationArg {
    /// The destination named.
    pub fn destination(&self) -> Destination {
        // clap requires exactly one of the two.
        match &self.queue {
            Some(queue) => Destination::queue(queue),
            None => Destination::topic(self.topic.as_deref().unwrap_or_default()),
        }
    }
}

/// Parses a duration: a whole number and `ms`, `s`, `m` or `h` (`500ms`, `2m`), at most a day.
pub fn duration(text: &str) -> Result<Duration, String> {
    courier::options::parse_duration("duration", text).map_err(|e| e.to_string())
}

/// Parses a size in bytes: a whole number with an optional unit `B`, `KB`/`MB`/`GB` (powers of
/// 1000) or `KiB`/`MiB`/`GiB` (powers of 1024), e.g. `100`, `1KiB`, `2MB`; at most 1 GiB.
pub fn size(text: &str) -> Result<usize, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let multiplier: usize = match unit.trim_start() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KB, MB, GB, KiB, MiB or GiB)"
            ))
        }
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|&n| n <= MAX_SIZE)
        .ok_or_else(|| format!("{text:?} is not a size up to 1GiB like 100, 1KiB or 2MB"))
}

/// Parses a message property `name=value`. The value's type is read from its text: `true` or
/// `false` is a boolean, a whole number a long, a number with a point a double, anything else
/// a string; a `name:string=value` prefix keeps a value as a string (`id:string=42`).
pub fn property(text: &str) -> Result<(String, Value), String> {
    let (name, raw) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not a property like name=value"))?;
    let (name, forced_string) = match name.strip_suffix(":string") {
        Some(name) => (name, true),
        None => (name, false),
    };
    courier::message::check_property_name(name).map_err(|e| e.to_string())?;
    let value = if forced_string {
        Value::String(raw.into())
    } else if let Ok(b) = raw.parse::<bool>() {
        Value::Bool(b)
    } else if let Ok(n) = raw.parse::<i64>() {
        Value::I64(n)
    } else if raw.contains('.') && raw.parse::<f64>().is_ok_and(f64::is_finite) {
        Value::F64(raw.parse().expect("checked just above"))
    } else {
        Value::String(raw.into())
    };
    Ok((name.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_and_refuse_overflow() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "5", "5x", "-1s", "99999999999999999999h", "25h"] {
            assert!(duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(size("100"), Ok(100));
        assert_eq!(size("1KiB"), Ok(1024));
        assert_eq!(size("2MB"), Ok(2_000_000));
        assert_eq!(size("1GiB"), Ok(1 << 30));
        for bad in [
            "",
            "KiB",
            "1.5KiB",
            "2GiB",
            "1TB",
            "-1",
            "99999999999999999999999",
        ] {
            assert!(size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn properties_are_typed_by_their_text() {
        assert_eq!(property("n=42"), Ok(("n".into(), Value::I64(42))));
        assert_eq!(property("ok=true"), Ok(("ok".into(), Value::Bool(true))));
        assert_eq!(property("x=1.5"), Ok(("x".into(), Value::F64(1.5))));
        assert_eq!(
            property("id:string=42"),
            Ok(("id".into(), Value::String("42".into())))
        );
        assert_eq!(
            property("a=b=c"),
            Ok(("a".into(), Value::String("b=c".into())))
        );
        assert!(property("novalue").is_err());
        assert!(property("=1").is_err());
        assert!(property("bad name=1").is_err());
    }
}
