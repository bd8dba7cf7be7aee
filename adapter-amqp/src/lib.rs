//! # courier-amqp
//!
//! The Courier model over RabbitMQ (AMQP 0-9-1). Not built yet: this crate offers no backend. It already
//! takes its place in `courier::connect`'s registry (feature `amqp` of `courier`): it names
//! its URL schemes, and its [`connect`] answers [`Error::Unsupported`] until the backend
//! exists. See the README's backend matrix.

#![forbid(unsafe_code)]

use std::sync::Arc;

use courier_api::{ConnectionFactory, Error, Result};

/// The URL schemes of this backend: `amqp://` and, over amqps, `amqps://`.
pub const SCHEMES: &[&str] = &["amqp", "amqps"];

/// Opens a connection factory for a URL of one of [`SCHEMES`].
///
/// Today every such URL is refused with [`Error::Unsupported`] (the backend is not built yet),
/// and a URL of another scheme with [`Error::InvalidArgument`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let refused = courier_amqp::connect("amqp://127.0.0.1").await.err().unwrap();
/// assert!(refused.is_unsupported());
/// # }
/// ```
pub async fn connect(url: &str) -> Result<Arc<dyn ConnectionFactory>> {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme);
    match scheme {
        Some(s) if SCHEMES.iter().any(|known| s.eq_ignore_ascii_case(known)) => {
            Err(Error::unsupported(
                "amqp",
                "the RabbitMQ (AMQP 0-9-1) backend is not built yet (courier-amqp has no client)",
            ))
        }
        _ => Err(Error::invalid_argument(format!(
            "not a amqp:// or amqps:// URL ({} bytes, scheme {:?})",
            url.len(),
            scheme.map(|s| s.chars().take(32).collect::<String>())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn its_schemes_are_unsupported_until_the_backend_exists() {
        for url in [
            "amqp://127.0.0.1",
            "AMQPS://user:pw@host:1/x?y=%FF",
            "amqp:",
        ] {
            let e = connect(url).await.err().expect("no backend yet");
            assert!(e.is_unsupported(), "{url}: {e}");
            assert!(e.to_string().contains("not built yet"), "{e}");
        }
    }

    #[tokio::test]
    async fn other_urls_are_invalid() {
        let huge = "x".repeat(1 << 20);
        for url in ["", "embedded:", "amqp", huge.as_str()] {
            let e = connect(url).await.err().expect("not a url of this backend");
            assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
            assert!(e.to_string().len() < 200);
        }
    }
}
