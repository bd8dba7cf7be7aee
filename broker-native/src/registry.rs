//! The broker's entry in `courier::connect`'s registry: the URL schemes it serves and the
//! function that opens a factory for one of them.

use std::sync::Arc;

use courier_api::{ConnectionFactory, ConnectionOptions, Error, Result};

use crate::core::broker::BrokerCore;
use crate::storage::{open_broker, JournalOptions};
use crate::{Broker, BrokerConfig, EmbeddedFactory};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Weak;

/// The URL schemes of Courier's own broker: `embedded:` (in this process) and `courier://`
/// (a Courier server over TCP).
pub const SCHEMES: &[&str] = &["embedded", "courier", "courier+tls"];

/// The in-process scheme of [`SCHEMES`].
pub const EMBEDDED_SCHEMES: &[&str] = &["embedded"];

/// The network schemes of [`SCHEMES`].
pub const TCP_SCHEMES: &[&str] = &["courier", "courier+tls"];

/// How much of a caller's text an error message quotes.
const QUOTED_CHARS: usize = 64;

/// Opens a connection factory for a URL of one of [`SCHEMES`].
///
/// | URL | factory |
/// |---|---|
/// | `embedded:` | a new in-process, in-memory broker |
/// | `embedded:?client_id=app1&prefetch=100` | the same, with [connection options](courier_api::options) |
/// | `embedded:/path` | the durable broker whose journal is in directory `/path` (made if missing); the same one for every call in this process while it is open |
/// | `courier://user:pass@host:7672?heartbeat=5s` | a [`TcpFactory`](crate::client::TcpFactory) for a Courier server |
/// | `courier+tls://host:7672?ca=/path.pem`, `courier://host?tls=true` | the same over TLS |
///
/// `embedded:` takes the shared options of [`ConnectionOptions`] and applies them as
/// [`EmbeddedFactory::with_options`] says (a client id holds for every connection; timeouts
/// and the heartbeat have no effect in process). An unknown or malformed option, a fragment
/// and another scheme are [`Error::InvalidArgument`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> courier_api::Result<()> {
/// let factory = courier_broker::connect("embedded:").await?;
/// assert_eq!(factory.capabilities().backend, "embedded");
/// let dir = tempfile::tempdir().unwrap();
/// let durable = courier_broker::connect(&format!("embedded:{}", dir.path().display())).await?;
/// assert!(durable.capabilities().durable_storage);
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<Arc<dyn ConnectionFactory>> {
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(Error::invalid_argument(format!(
            "{} is not a URL (no scheme); expected \"embedded:\"",
            quoted(url)
        )));
    };
    if scheme.eq_ignore_ascii_case("embedded") {
        Ok(Arc::new(embedded(rest)?))
    } else if scheme.eq_ignore_ascii_case("courier") || scheme.eq_ignore_ascii_case("courier+tls") {
        Ok(Arc::new(crate::client::TcpFactory::from_url(url)?))
    } else {
        Err(Error::invalid_argument(format!(
            "{} is not a scheme of Courier's broker (expected embedded: or courier://)",
            quoted(scheme)
        )))
    }
}

/// The concrete factory [`connect`] makes for an `embedded:` URL, for callers that need its
/// broker (`courier stats` reads [`Broker::snapshot`] through it). Another scheme is
/// [`Error::InvalidArgument`].
pub fn embedded_factory(url: &str) -> Result<EmbeddedFactory> {
    match url.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("embedded") => embedded(rest),
        _ => Err(Error::invalid_argument(format!(
            "{} is not an embedded: URL",
            quoted(url)
        ))),
    }
}

/// The factory for `embedded:` followed by `rest`.
fn embedded(rest: &str) -> Result<EmbeddedFactory> {
    if rest.is_empty() {
        return Ok(EmbeddedFactory::default());
    }
    if let Some(at) = rest.find('#') {
        return Err(Error::invalid_argument(format!(
            "embedded: URLs take no fragment (got {}); use \"embedded:\"",
            quoted(&rest[at..])
        )));
    }
    if let Some(query) = rest.strip_prefix('?') {
        let parsed = ConnectionOptions::from_url(&format!("embedded:?{query}"), &[])?;
        return EmbeddedFactory::default().with_options(parsed.options);
    }
    if let Some(at) = rest.find('?') {
        return Err(Error::invalid_argument(format!(
            "embedded: URLs take options only without a data directory (got {}); \
             use \"embedded:?...\"",
            quoted(&rest[at..])
        )));
    }
    durable(std::path::Path::new(rest))
}

/// Brokers opened on a data directory, so a second `connect` in this process shares the first
/// one's journal instead of writing the same files from two writers.
static DURABLE: Mutex<Vec<(PathBuf, Weak<BrokerCore>)>> = Mutex::new(Vec::new());

/// The durable broker of data directory `dir`.
fn durable(dir: &std::path::Path) -> Result<EmbeddedFactory> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::invalid_argument(format!(
            "data directory {}: {e}",
            quoted(&dir.display().to_string())
        ))
    })?;
    let key = std::fs::canonicalize(dir).map_err(|e| {
        Error::invalid_argument(format!(
            "data directory {}: {e}",
            quoted(&dir.display().to_string())
        ))
    })?;
    let mut open = DURABLE.lock();
    open.retain(|(_, core)| core.strong_count() > 0);
    if let Some(core) = open
        .iter()
        .find(|(p, _)| *p == key)
        .and_then(|(_, c)| c.upgrade())
    {
        return Ok(EmbeddedFactory::from_broker(Broker { core }));
    }
    let (broker, _, report) =
        open_broker(&key, BrokerConfig::default(), JournalOptions::default())?;
    if let Some(torn) = &report.torn_tail {
        tracing::warn!(file = %torn.file.display(), bytes = torn.bytes_cut, "journal: torn tail cut at start-up");
    }
    open.push((key, Arc::downgrade(&broker.core)));
    Ok(EmbeddedFactory::from_broker(broker))
}

/// `text` in quotes for an error message, cut to [`QUOTED_CHARS`] characters.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn error_of(url: &str) -> Error {
        match connect(url).await {
            Ok(_) => panic!("{url:?} must be refused"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn embedded_opens_a_broker_in_any_case() {
        assert!(connect("embedded:").await.is_ok());
        assert!(connect("EMBEDDED:").await.is_ok());
    }

    #[tokio::test]
    async fn a_data_directory_opens_one_durable_broker_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("embedded:{}", dir.path().display());
        let a = connect(&url).await.unwrap();
        assert!(a.capabilities().durable_storage);
        // A second connect shares the first broker (one writer per journal).
        let b = connect(&format!("embedded:{}/.", dir.path().display()))
            .await
            .unwrap();
        let queue = courier_api::Destination::queue("q");
        let conn = a.create_connection().await.unwrap();
        let session = conn
            .create_session(courier_api::SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        session
            .create_producer(Some(&queue))
            .await
            .unwrap()
            .send(&mut courier_api::Message::text("shared"))
            .await
            .unwrap();
        let conn_b = b.create_connection().await.unwrap();
        conn_b.start().await.unwrap();
        let got = conn_b
            .create_session(courier_api::SessionMode::AutoAcknowledge)
            .await
            .unwrap()
            .create_consumer(&queue, courier_api::ConsumerOptions::default())
            .await
            .unwrap()
            .receive_timeout(std::time::Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got.unwrap().body_text(), Some("shared"));
        // A file where the directory should be is a clear error.
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = error_of(&format!("embedded:{}", file.display())).await;
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }

    #[tokio::test]
    async fn queries_fragments_and_other_schemes_are_invalid() {
        for url in [
            "embedded:?x=%FF%00&&=",
            "embedded:/path?x=1",
            "embedded:#top",
            "amqp://host",
            "no scheme",
            "",
        ] {
            let e = error_of(url).await;
            assert!(matches!(e, Error::InvalidArgument(_)), "{url}: {e}");
        }
        assert!(error_of("embedded:?cache=1")
            .await
            .to_string()
            .contains("unknown option"));
    }

    #[tokio::test]
    async fn embedded_takes_the_shared_options() {
        assert!(connect("embedded:?").await.is_ok());
        let factory = connect(
            "embedded:?client_id=app%201&prefetch=100&heartbeat=10s\
             &connect_timeout=5s&request_timeout=500ms",
        )
        .await
        .unwrap();
        let connection = factory.create_connection().await.unwrap();
        assert_eq!(connection.client_id().as_deref(), Some("app 1"));
    }

    #[tokio::test]
    async fn hostile_options_are_typed_errors() {
        for url in [
            "embedded:?prefetch=-1",
            "embedded:?prefetch=1&prefetch=1",
            "embedded:?client_id=",
            "embedded:?client_id=%20%20",
            "embedded:?client_id=%ZZ",
            "embedded:?connect_timeout=99999999999999h",
            "embedded:?heartbeat=forever",
        ] {
            let e = error_of(url).await;
            assert!(matches!(e, Error::InvalidArgument(_)), "{url}: {e}");
        }
        let e = error_of(&format!("embedded:?client_id={}", "x".repeat(1 << 20))).await;
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert!(e.to_string().len() < 400);
    }

    #[tokio::test]
    async fn courier_urls_make_a_tcp_factory_and_bad_ones_are_refused() {
        let factory = connect("courier://app:pw@127.0.0.1:7070/?heartbeat=5s")
            .await
            .unwrap();
        assert_eq!(factory.capabilities().backend, "courier");
        for bad in [
            "courier://",
            "courier://host/path",
            "courier://host/#frag",
            "courier://host/?nope=1",
        ] {
            let e = error_of(bad).await;
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn errors_quote_little_of_a_huge_url() {
        let huge = format!("embedded:/{}", "é".repeat(1 << 20));
        let e = error_of(&huge).await;
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert!(e.to_string().len() < 400, "{}", e.to_string().len());
        let e = error_of(&format!("embedded:?{}", "x".repeat(1 << 20))).await;
        assert!(e.to_string().len() < 400);
    }
}
