//! Connection options given in a backend URL: `scheme://user:pass@host/?connect_timeout=5s&heartbeat=10s&prefetch=100&client_id=app1`.
//!
//! [`ConnectionOptions::from_url`] reads the options every backend shares from the URL's
//! userinfo and query. A backend with options of its own (amqp's `queue_type`, redis's
//! `durability`) names their keys, and the parser hands their raw values back to it in
//! [`ParsedOptions::extra`]; any other key is refused, so a typo never passes silently.
//!
//! Every value is checked: durations are a whole number and a unit (`500ms`, `5s`, `2m`,
//! `1h`), at most [`MAX_DURATION`]; the prefetch is at most [`MAX_PREFETCH`]; a client id
//! is a non-empty name without control characters. A key given twice, an empty value, a
//! value that is not valid UTF-8 once percent-decoded, or an oversized URL is
//! [`Error::InvalidArgument`] naming the key.

use std::time::Duration;

use url::Url;

use crate::{Error, Result};

/// The longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 4096;
/// The longest duration an option accepts: a day (a longer timeout or heartbeat is a mistake,
/// and keeps every deadline far from `Instant` overflow).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// The largest consumer prefetch accepted.
pub const MAX_PREFETCH: u32 = 1_000_000;
/// The longest client id, username or password accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The query keys every backend understands.
pub const KNOWN_KEYS: &[&str] = &[
    "connect_timeout",
    "request_timeout",
    "heartbeat",
    "prefetch",
    "client_id",
];

/// The options every backend shares, read from a URL. Fields a URL leaves out are `None`
/// (the backend's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// `connect_timeout`: how long to wait for a connection to be established.
    pub connect_timeout: Option<Duration>,
    /// `request_timeout`: how long to wait for the broker to answer one request.
    pub request_timeout: Option<Duration>,
    /// `heartbeat`: how often to check a quiet connection is alive.
    pub heartbeat: Option<Duration>,
    /// `prefetch`: the default prefetch of consumers that do not set their own.
    pub prefetch: Option<u32>,
    /// `client_id`: the client id every connection of the factory has from creation (JMS's
    /// administratively configured client id).
    pub client_id: Option<String>,
    /// The URL's username, percent-decoded.
    pub username: Option<String>,
    /// The URL's password, percent-decoded.
    pub password: Option<String>,
}

/// What [`ConnectionOptions::from_url`] found: the shared options and the backend's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedOptions {
    /// The options every backend shares.
    pub options: ConnectionOptions,
    /// The backend's own keys that the URL set, with their decoded values, in URL order.
    pub extra: Vec<(String, String)>,
}

impl ConnectionOptions {
    /// Parses `url` (checked for size first), accepting the [`KNOWN_KEYS`] and the backend's
    /// `extra_keys`. Every problem is [`Error::InvalidArgument`].
    ///
    /// ```
    /// use courier_api::options::ConnectionOptions;
    /// use std::time::Duration;
    /// let parsed = ConnectionOptions::from_url(
    ///     "amqp://app:s%40cret@host/?heartbeat=10s&prefetch=100&queue_type=quorum",
    ///     &["queue_type"],
    /// ).unwrap();
    /// assert_eq!(parsed.options.heartbeat, Some(Duration::from_secs(10)));
    /// assert_eq!(parsed.options.password.as_deref(), Some("s@cret"));
    /// assert_eq!(parsed.extra, [("queue_type".to_string(), "quorum".to_string())]);
    /// assert!(ConnectionOptions::from_url("amqp://host/?hartbeat=1s", &[]).is_err());
    /// ```
    pub fn from_url(url: &str, extra_keys: &[&str]) -> Result<ParsedOptions> {
        if url.len() > MAX_URL_BYTES {
            return Err(Error::invalid_argument(format!(
                "the URL is {} bytes long; at most {MAX_URL_BYTES} are accepted",
                url.len()
            )));
        }
        let parsed =
            Url::parse(url).map_err(|e| Error::invalid_argument(format!("malformed URL: {e}")))?;
        let mut out = ParsedOptions::default();
        let o = &mut out.options;
        if !parsed.username().is_empty() {
            o.username = Some(decode_name("username", parsed.username())?);
        }
        if let Some(password) = parsed.password() {
            o.password = Some(decode_name("password", password)?);
        }
        let mut seen: Vec<String> = Vec::new();
        for pair in parsed.query().unwrap_or("").split('&') {
            if pair.is_empty() {
                continue;
            }
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode("a query key", raw_key)?;
            let value = decode(&key, raw_value)?;
            if seen.contains(&key) {
                return Err(Error::invalid_argument(format!(
                    "option {key:?} is given twice"
                )));
            }
            if value.is_empty() {
                return Err(Error::invalid_argument(format!(
                    "option {key:?} has an empty value"
                )));
            }
            match key.as_str() {
                "connect_timeout" => o.connect_timeout = Some(parse_duration(&key, &value)?),
                "request_timeout" => o.request_timeout = Some(parse_duration(&key, &value)?),
                "heartbeat" => o.heartbeat = Some(parse_duration(&key, &value)?),
                "prefetch" => o.prefetch = Some(parse_prefetch(&value)?),
                "client_id" => o.client_id = Some(check_name("client_id", value.clone())?),
                other if extra_keys.contains(&other) => {
                    out.extra.push((key.clone(), value));
                }
                other => {
                    let known: Vec<&str> = KNOWN_KEYS.iter().chain(extra_keys).copied().collect();
                    return Err(Error::invalid_argument(format!(
                        "unknown option {} (known: {})",
                        quoted(other),
                        known.join(", ")
                    )));
                }
            }
            seen.push(key);
        }
        Ok(out)
    }
}

/// Parses a boolean option (a backend's `tls`, `priority`, `reconnect`): `true` or `false`,
/// nothing else.
///
/// ```
/// use courier_api::options::parse_flag;
/// assert!(parse_flag("tls", "true").unwrap());
/// assert!(parse_flag("tls", "yes").is_err());
/// ```
pub fn parse_flag(key: &str, text: &str) -> Result<bool> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::invalid_argument(format!(
            "option {key:?} = {}: expected true or false",
            quoted(text)
        ))),
    }
}

/// Parses a duration option: digits then `ms`, `s`, `m` or `h`; zero and at most
/// [`MAX_DURATION`].
pub fn parse_duration(key: &str, text: &str) -> Result<Duration> {
    let bad = |why: &str| {
        Error::invalid_argument(format!(
            "option {key:?} = {}: {why} (expected e.g. 500ms, 5s, 2m, 1h; at most 24h)",
            quoted(text)
        ))
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| bad("no unit"))?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(bad("not a whole number"));
    }
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad("unknown unit")),
    };
    let ms = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .filter(|&ms| u128::from(ms) <= MAX_DURATION.as_millis())
        .ok_or_else(|| bad("too long"))?;
    Ok(Duration::from_millis(ms))
}

fn parse_prefetch(text: &str) -> Result<u32> {
    text.parse::<u32>()
        .ok()
        .filter(|&n| n <= MAX_PREFETCH)
        .ok_or_else(|| {
            Error::invalid_argument(format!(
                "option \"prefetch\" = {}: expected a whole number from 0 to {MAX_PREFETCH}",
                quoted(text)
            ))
        })
}

/// Percent-decodes a query key or value (`+` is a space, as in a form) into UTF-8.
fn decode(what: &str, raw: &str) -> Result<String> {
    percent_decode(raw, true).ok_or_else(|| {
        Error::invalid_argument(format!(
            "{what} {} has a malformed percent escape or is not UTF-8 once decoded",
            quoted(raw)
        ))
    })
}

/// Strict percent-decoding of `raw` into UTF-8 (`+` as a space when `plus_is_space`); `None` for a malformed escape or bad UTF-8.
fn percent_decode(raw: &str, plus_is_space: bool) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A percent-decoded username or password, checked like a client id.
fn decode_name(what: &str, raw: &str) -> Result<String> {
    let text = percent_decode(raw, false).ok_or_else(|| {
        Error::invalid_argument(format!(
            "the URL's {what} has a malformed percent escape or is not UTF-8 once decoded"
        ))
    })?;
    check_name(what, text)
}

/// A client id, username or password: not empty, at most [`MAX_NAME_BYTES`], no control
/// characters.
fn check_name(what: &str, text: String) -> Result<String> {
    if text.is_empty() || text.len() > MAX_NAME_BYTES || text.chars().any(char::is_control) {
        return Err(Error::invalid_argument(format!(
            "{what} must be 1 to {MAX_NAME_BYTES} bytes without control characters"
        )));
    }
    Ok(text)
}

/// `text` in quotes for an error message, cut to 64 characters.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> String {
        match ConnectionOptions::from_url(url, &["queue_type"]) {
            Err(Error::InvalidArgument(reason)) => reason,
            other => panic!("{url:?} must be InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn every_shared_option_is_read() {
        let p = ConnectionOptions::from_url(
            "amqp://us%20er:p%3Ass@h:5672/v?connect_timeout=500ms&request_timeout=2m\
             &heartbeat=1h&prefetch=100&client_id=app%201&queue_type=quorum",
            &["queue_type"],
        )
        .unwrap();
        let o = p.options;
        assert_eq!(o.connect_timeout, Some(Duration::from_millis(500)));
        assert_eq!(o.request_timeout, Some(Duration::from_secs(120)));
        assert_eq!(o.heartbeat, Some(Duration::from_secs(3600)));
        assert_eq!(o.prefetch, Some(100));
        assert_eq!(o.client_id.as_deref(), Some("app 1"));
        assert_eq!(o.username.as_deref(), Some("us er"));
        assert_eq!(o.password.as_deref(), Some("p:ss"));
        assert_eq!(p.extra, [("queue_type".into(), "quorum".into())]);
        let none = ConnectionOptions::from_url("embedded:", &[]).unwrap();
        assert_eq!(none, ParsedOptions::default());
        let opaque = ConnectionOptions::from_url("embedded:?client_id=a&prefetch=0", &[]).unwrap();
        assert_eq!(opaque.options.client_id.as_deref(), Some("a"));
        assert_eq!(opaque.options.prefetch, Some(0));
    }

    #[test]
    fn hostile_urls_are_invalid_arguments_naming_the_problem() {
        let cases = [
            ("embedded:?prefetch=-1", "prefetch"),
            ("embedded:?prefetch=1000001", "prefetch"),
            ("embedded:?prefetch=99999999999999999999", "prefetch"),
            ("embedded:?connect_timeout=99999999999999h", "too long"),
            (
                "embedded:?connect_timeout=18446744073709551615ms",
                "too long",
            ),
            ("embedded:?connect_timeout=25h", "too long"),
            ("embedded:?heartbeat=5", "no unit"),
            ("embedded:?heartbeat=s", "whole number"),
            ("embedded:?heartbeat=-5s", "whole number"),
            ("embedded:?heartbeat=5d", "unknown unit"),
            ("embedded:?heartbeat=1.5s", "unknown unit"),
            ("embedded:?heartbeat=", "empty value"),
            ("embedded:?heartbeat", "empty value"),
            ("embedded:?prefetch=1&prefetch=2", "twice"),
            ("embedded:?client_id=a&client%5Fid=b", "twice"),
            ("embedded:?client_id=%0A", "control"),
            ("embedded:?client_id=%FF", "UTF-8"),
            ("embedded:?client_id=%G1", "percent escape"),
            ("embedded:?client_id=%4", "percent escape"),
            ("embedded:?hartbeat=1s", "known: connect_timeout"),
            ("amqp://%FF@host/", "username"),
            ("amqp://u:%00@host/", "password"),
            ("not a url", "malformed URL"),
        ];
        for (url, says) in cases {
            let reason = refused(url);
            assert!(reason.contains(says), "{url:?}: {reason}");
        }
        let known = refused("embedded:?nope=1");
        assert!(
            known.contains("queue_type") && known.contains("heartbeat"),
            "{known}"
        );
        let huge = format!("embedded:?client_id={}", "x".repeat(1 << 20));
        assert!(refused(&huge).contains("bytes long"));
        let long_id = format!("embedded:?client_id={}", "x".repeat(MAX_NAME_BYTES + 1));
        assert!(refused(&long_id).contains("client_id"));
        let long_key = format!("embedded:?{}=1", "k".repeat(3000));
        assert!(refused(&long_key).len() < 400);
    }

    #[test]
    fn the_largest_values_are_accepted() {
        let p =
            ConnectionOptions::from_url("embedded:?heartbeat=24h&prefetch=1000000", &[]).unwrap();
        assert_eq!(p.options.heartbeat, Some(MAX_DURATION));
        assert_eq!(p.options.prefetch, Some(MAX_PREFETCH));
    }
}
