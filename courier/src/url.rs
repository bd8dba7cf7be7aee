//! Choosing a backend from a URL, like `sqlx::any`.

use std::sync::Arc;

use courier_api::{ConnectionFactory, Error, Result};

/// Opens a connection factory for the backend a URL names.
///
/// | URL | backend |
/// |---|---|
/// | `embedded:` | a new in-process, in-memory broker (feature `native`) |
///
/// Other schemes (`embedded:/path`, `courier://`, `amqp://`, `redis://`) are the backends of
/// later releases and are refused with [`Error::Unsupported`]; malformed URLs with
/// [`Error::InvalidArgument`].
pub async fn connect(url: &str) -> Result<Arc<dyn ConnectionFactory>> {
    let (scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| Error::invalid_argument(format!("{url:?} is not a URL (no scheme)")))?;
    match scheme {
        #[cfg(feature = "native")]
        "embedded" if rest.is_empty() => Ok(Arc::new(courier_broker::EmbeddedFactory::default())),
        "embedded" => Err(Error::unsupported(
            "embedded",
            "a data directory (durable storage is not built yet); use \"embedded:\"",
        )),
        "courier" | "amqp" | "amqps" | "redis" | "rediss" => Err(Error::unsupported(
            "courier",
            format!("the {scheme}:// backend is not available in this build"),
        )),
        other => Err(Error::invalid_argument(format!(
            "unknown URL scheme {other:?} (expected embedded:)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn schemes() {
        assert!(connect("embedded:").await.is_ok());
        assert!(matches!(
            connect("amqp://127.0.0.1").await.err(),
            Some(Error::Unsupported { .. })
        ));
        assert!(matches!(
            connect("nothing").await.err(),
            Some(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            connect("ftp://x").await.err(),
            Some(Error::InvalidArgument(_))
        ));
    }
}
