//! The checks every URL passes before a backend sees it: a sane length, no whitespace or
//! control characters, well-formed percent escapes, and a scheme as RFC 3986 spells it.

use courier_api::{Error, Result};

/// The longest URL accepted, in bytes: far more than any host, credentials and options need.
pub(crate) const MAX_URL_BYTES: usize = 4096;

/// How much of a caller's text an error message quotes.
const QUOTED_CHARS: usize = 64;

/// Checks `url` and returns its scheme in lower case (`AMQP://…` → `amqp`).
pub(crate) fn scheme_of(url: &str) -> Result<String> {
    if url.is_empty() {
        return Err(Error::invalid_argument(
            "the URL is empty; expected e.g. \"embedded:\"",
        ));
    }
    if url.len() > MAX_URL_BYTES {
        return Err(Error::invalid_argument(format!(
            "the URL is {} bytes long; at most {MAX_URL_BYTES} are accepted",
            url.len()
        )));
    }
    if let Some((at, c)) = url
        .char_indices()
        .find(|(_, c)| c.is_control() || c.is_whitespace())
    {
        return Err(Error::invalid_argument(format!(
            "{} has whitespace or a control character ({c:?}) at byte {at}",
            quoted(url)
        )));
    }
    check_percent_escapes(url)?;
    let Some((scheme, _)) = url.split_once(':') else {
        return Err(Error::invalid_argument(format!(
            "{} is not a URL (no scheme); expected e.g. \"embedded:\"",
            quoted(url)
        )));
    };
    let mut chars = scheme.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !well_formed {
        return Err(Error::invalid_argument(format!(
            "{} is not a URL scheme (a letter, then letters, digits, '+', '-' or '.')",
            quoted(scheme)
        )));
    }
    Ok(scheme.to_ascii_lowercase())
}

/// Every `%` starts a two-hex-digit escape. What the escapes decode to (any byte, UTF-8 or
/// not) is for the backend to judge.
fn check_percent_escapes(url: &str) -> Result<()> {
    let bytes = url.as_bytes();
    for (at, _) in url.match_indices('%') {
        let escape = bytes.get(at + 1..at + 3);
        if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
            return Err(Error::invalid_argument(format!(
                "{} has a malformed percent escape at byte {at} (expected % and two hex digits)",
                quoted(url)
            )));
        }
    }
    Ok(())
}

/// `text` in quotes for an error message, cut to [`QUOTED_CHARS`] characters.
pub(crate) fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> String {
        match scheme_of(url) {
            Err(Error::InvalidArgument(reason)) => reason,
            other => panic!("{url:?} must be InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn schemes_are_found_and_lower_cased() {
        assert_eq!(scheme_of("embedded:").unwrap(), "embedded");
        assert_eq!(scheme_of("AMQPS://u:p@h:1/v?x=%FF%FE").unwrap(), "amqps");
        assert_eq!(scheme_of("x+y-z.1:").unwrap(), "x+y-z.1");
        assert_eq!(scheme_of("embedded:/dätä").unwrap(), "embedded");
    }

    #[test]
    fn hostile_urls_are_invalid_arguments_with_a_short_text() {
        let cases = [
            ("", "empty"),
            ("nothing", "no scheme"),
            (":", "not a URL scheme"),
            ("://host", "not a URL scheme"),
            ("1amqp://x", "not a URL scheme"),
            ("%41mqp://x", "not a URL scheme"),
            ("ämqp://x", "not a URL scheme"),
            ("embedded:%", "percent escape"),
            ("embedded:%4", "percent escape"),
            ("embedded:%zz", "percent escape"),
            ("embedded:?a=%G0", "percent escape"),
            ("embedded: ", "whitespace"),
            (" embedded:", "whitespace"),
            ("embedded:\0", "control"),
            ("amqp://h\r\nost", "control"),
        ];
        for (url, says) in cases {
            let reason = refused(url);
            assert!(reason.contains(says), "{url:?}: {reason}");
        }
        let huge = format!("embedded:{}", "%".repeat(1 << 20));
        let reason = refused(&huge);
        assert!(reason.contains("bytes long"), "{reason}");
        assert!(reason.len() < 200);
        let long_scheme = format!("{}:", "é".repeat(1000));
        assert!(refused(&long_scheme).len() < 300);
    }
}
