//! # courier-redis
//!
//! The Courier model over Redis Streams. Not built yet: this crate offers no backend. It already
//! takes its place in `courier::connect`'s registry (feature `redis` of `courier`): it names
//! its URL schemes, and its [`connect`] answers [`Error::Unsupported`] until the backend
//! exists. See the README's backend matrix.

#![forbid(unsafe_code)]

use std::sync::Arc;

use courier_api::{ConnectionFactory, Error, Result};

/// The URL schemes of this backend: `redis://` and, over rediss, `rediss://`.
pub const SCHEMES: &[&str] = &["redis", "rediss"];

/// Opens a connection factory for a URL of one of [`SCHEMES`].
///
/// Today every such URL is refused with [`Error::Unsupported`] (the backend is not built yet),
/// and a URL of another scheme with [`Error::InvalidArgument`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let refused = courier_redis::connect("redis://127.0.0.1").await.err().unwrap();
/// assert!(refused.is_unsupported());
/// # }
/// ```
pub async fn connect(url: &str) -> Result<Arc<dyn ConnectionFactory>> {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme);
    match scheme {
        Some(s) if SCHEMES.iter().any(|known| s.eq_ignore_ascii_case(known)) => {
            Err(Error::unsupported(
                "redis",
                "the Redis Streams backend is not built yet (courier-redis has no client)",
            ))
        }
        _ => Err(Error::invalid_argument(format!(
            "not a redis:// or rediss:// URL ({} bytes, scheme {:?})",
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
            "redis://127.0.0.1",
            "REDISS://user:pw@host:1/x?y=%FF",
            "redis:",
        ] {
            let e = connect(url).await.err().expect("no backend yet");
            assert!(e.is_unsupported(), "{url}: {e}");
            assert!(e.to_string().contains("not built yet"), "{e}");
        }
    }

    #[tokio::test]
    async fn other_urls_are_invalid() {
        let huge = "x".repeat(1 << 20);
        for url in ["", "embedded:", "redis", huge.as_str()] {
            let e = connect(url).await.err().expect("not a url of this backend");
            assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
            assert!(e.to_string().len() < 200);
        }
    }
}
