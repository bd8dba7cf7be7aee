//! Choosing a backend from a URL, like `sqlx::any`: each backend crate names its URL schemes
//! and offers a `connect` function; the registry lists the backends this build has, chosen by
//! cargo features.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use courier_api::{ConnectionFactory, Error, Result};

use crate::url::{quoted, scheme_of};

/// What a backend's `connect` returns.
type Connecting<'a> = Pin<Box<dyn Future<Output = Result<Arc<dyn ConnectionFactory>>> + Send + 'a>>;

/// A backend of this build: its URL schemes and how to connect to one.
struct Backend {
    schemes: &'static [&'static str],
    connect: for<'a> fn(&'a str) -> Connecting<'a>,
}

/// The backends this build has, by cargo feature.
const BUILT_IN: &[Backend] = &[
    #[cfg(feature = "native")]
    Backend {
        schemes: courier_broker::EMBEDDED_SCHEMES,
        connect: |url| Box::pin(courier_broker::connect(url)),
    },
    #[cfg(feature = "tcp")]
    Backend {
        schemes: courier_broker::TCP_SCHEMES,
        connect: |url| Box::pin(courier_broker::connect(url)),
    },
    #[cfg(feature = "amqp")]
    Backend {
        schemes: courier_amqp::SCHEMES,
        connect: |url| Box::pin(courier_amqp::connect(url)),
    },
    #[cfg(feature = "redis")]
    Backend {
        schemes: courier_redis::SCHEMES,
        connect: |url| Box::pin(courier_redis::connect(url)),
    },
];

/// Every scheme a backend of Courier serves, whether or not this build has it: scheme,
/// backend, and the feature of `courier` that brings it in.
const KNOWN_SCHEMES: &[(&str, &str, &str)] = &[
    ("embedded", "embedded", "native"),
    ("courier", "courier", "tcp"),
    ("courier+tls", "courier", "tcp"),
    ("amqp", "amqp", "amqp"),
    ("amqps", "amqp", "amqp"),
    ("redis", "redis", "redis"),
    ("rediss", "redis", "redis"),
];

/// The URL schemes this build of courier can connect to (or refuse with the reason its
/// backend gives, such as a backend not built yet), e.g. `["embedded", "courier"]`.
pub fn schemes() -> Vec<&'static str> {
    BUILT_IN
        .iter()
        .flat_map(|b| b.schemes.iter().copied())
        .collect()
}

/// Opens a connection factory for the backend a URL names.
///
/// | URL | backend | cargo feature of `courier` |
/// |---|---|---|
/// | `embedded:` | a new in-process, in-memory broker | `native` (default) |
/// | `embedded:?client_id=app1&prefetch=100` | the same, with [connection options](courier_api::options) | `native` |
/// | `embedded:/path` | Courier's broker in this process, durable: its journal in directory `/path` | `native` |
/// | `courier://user:pass@host:7672` | Courier's broker over TCP (a `courier serve` server) | `tcp` (default) |
/// | `courier+tls://host:7672?ca=/path.pem` | the same over TLS | `tcp` |
/// | `amqp://`, `amqps://` | RabbitMQ (`courier-amqp`, over lapin) | `amqp` |
/// | `redis://`, `rediss://` | Redis (`courier-redis`): queues and topics kept by Lua scripts in Redis 7 | `redis` |
///
/// A scheme whose feature is off is refused with [`Error::Unsupported`] naming the feature; an
/// unknown scheme or a malformed URL (empty, over 4 KiB, whitespace or control characters,
/// a broken percent escape) with [`Error::InvalidArgument`]. Schemes are case-insensitive.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> courier::Result<()> {
/// let factory = courier::connect("embedded:").await?;
/// let nowhere = courier::connect("ftp://example.com").await.err().unwrap();
/// assert!(matches!(nowhere, courier::Error::InvalidArgument(_)));
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<Arc<dyn ConnectionFactory>> {
    let scheme = scheme_of(url)?;
    if let Some(backend) = BUILT_IN
        .iter()
        .find(|b| b.schemes.contains(&scheme.as_str()))
    {
        return (backend.connect)(url).await;
    }
    if let Some((_, backend, feature)) = KNOWN_SCHEMES.iter().find(|(s, ..)| *s == scheme) {
        return Err(Error::unsupported(
            backend,
            format!(
                "{scheme}: URLs need a backend this build of courier leaves out; \
                 enable the `{feature}` feature of courier"
            ),
        ));
    }
    Err(Error::invalid_argument(format!(
        "unknown URL scheme {} (Courier knows {})",
        quoted(&scheme),
        KNOWN_SCHEMES
            .iter()
            .map(|(s, ..)| format!("{s}:"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_scheme_is_known_under_its_feature() {
        for backend in BUILT_IN {
            for scheme in backend.schemes {
                assert!(
                    KNOWN_SCHEMES.iter().any(|(s, ..)| s == scheme),
                    "{scheme} is missing from KNOWN_SCHEMES"
                );
            }
        }
        #[cfg(feature = "native")]
        assert_eq!(features_schemes("native"), courier_broker::EMBEDDED_SCHEMES);
        #[cfg(feature = "tcp")]
        assert_eq!(features_schemes("tcp"), courier_broker::TCP_SCHEMES);
        #[cfg(feature = "amqp")]
        assert_eq!(features_schemes("amqp"), courier_amqp::SCHEMES);
        #[cfg(feature = "redis")]
        assert_eq!(features_schemes("redis"), courier_redis::SCHEMES);
        assert_eq!(
            schemes().len(),
            ["native", "tcp", "amqp", "redis"]
                .iter()
                .filter(|f| enabled(f))
                .map(|f| features_schemes(f).len())
                .sum::<usize>()
        );
    }

    fn enabled(feature: &str) -> bool {
        let built = [
            ("native", cfg!(feature = "native")),
            ("tcp", cfg!(feature = "tcp")),
            ("amqp", cfg!(feature = "amqp")),
            ("redis", cfg!(feature = "redis")),
        ];
        built.iter().any(|&(f, on)| f == feature && on)
    }

    fn features_schemes(feature: &str) -> Vec<&'static str> {
        KNOWN_SCHEMES
            .iter()
            .filter(|(.., f)| *f == feature)
            .map(|(s, ..)| *s)
            .collect()
    }
}
