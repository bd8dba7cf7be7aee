//! `courier serve`: runs the broker behind a socket until SIGINT or SIGTERM, then shuts down
//! gracefully — stops accepting, lets connections finish the requests they sent (sends and
//! commits in flight complete and are answered), closes them, writes and syncs what the
//! journal still holds and closes it — and exits 0.
//!
//! Messages are kept durably in a journal in the data directory (`--data`, default
//! `./courier-data`); `--memory` runs an in-memory broker instead. One server per data
//! directory: two processes must not share one.
//!
//! TLS: `--tls-cert F --tls-key F` (or `tls_cert` / `tls_key` in the config file's
//! `[server]`) serves `courier+tls://` clients; plaintext clients are then refused — and
//! audited — unless `--tls-allow-plaintext` lets them in on the same port.

use clap::Args;
use courier_broker::server::{Server, ServerTls};
use courier_broker::storage::{open_broker, JournalOptions, JournalStore};
use courier_broker::Broker;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::ConfigFile;

/// The default data directory.
const DEFAULT_DATA: &str = "courier-data";

/// The default listen address.
const DEFAULT_LISTEN: &str = "127.0.0.1:7672";

/// Options of `courier serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7672, or the config file's server.listen].
    #[arg(long)]
    listen: Option<String>,
    /// Data directory for durable storage [default: ./courier-data].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Keep messages in memory only: nothing survives a restart.
    #[arg(long, conflicts_with = "data")]
    memory: bool,
    /// Configuration file (users, permissions, limits) [default: courier.toml, optional].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics [ADDR default: 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR", num_args = 0..=1,
          default_missing_value = crate::metrics::DEFAULT_ADDR)]
    metrics: Option<String>,
    /// TLS certificate chain (PEM); with --tls-key, clients connect with courier+tls://
    /// and plaintext clients are refused [default: the config file's server.tls_cert].
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of --tls-cert [default: the config file's server.tls_key].
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// With TLS, serve plaintext clients on the same port too.
    #[arg(long)]
    tls_allow_plaintext: bool,
}

/// Runs the server; the exit code is 0 after a graceful shutdown.
pub fn run(args: ServeArgs) -> ExitCode {
    init_logging();
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("courier.toml"));
    let file = match ConfigFile::load(&config_path, args.config.is_none()) {
        Ok(file) => file,
        Err(e) => return fail(&e),
    };
    let broker_config = match file.broker_config() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let listen = args
        .listen
        .or_else(|| file.server.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let mut server_config = file.server_config();
    server_config.tls = match tls_config(
        &args.tls_cert,
        &args.tls_key,
        args.tls_allow_plaintext,
        &file,
    ) {
        Ok(tls) => tls,
        Err(e) => return fail(&e),
    };
    let tls = server_config.tls.as_ref().map(|t| {
        if t.plaintext_allowed() {
            "tls+plaintext"
        } else {
            "tls"
        }
    });
    let metrics_addr = args.metrics.clone();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    // The broker may spawn tasks as it is built.
    let entered = runtime.enter();
    let users = broker_config.users.len();
    let (broker, store) = if args.memory {
        tracing::warn!("--memory: messages are kept in memory only and lost at shutdown");
        (Broker::new(broker_config), None)
    } else {
        let dir = args.data.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
        match open_durable(&dir, broker_config) {
            Ok((broker, store)) => (broker, Some(store)),
            Err(e) => return fail(&e),
        }
    };
    drop(entered);
    runtime.block_on(async move {
        let server = match Server::bind(&listen, broker, server_config).await {
            Ok(server) => server,
            Err(e) => {
                close_journal(store.as_deref());
                return fail(&format!("cannot listen on {listen}: {e}"));
            }
        };
        let metrics = match &metrics_addr {
            Some(addr) => match tokio::net::TcpListener::bind(addr.as_str()).await {
                Ok(listener) => Some(listener),
                Err(e) => {
                    server.shutdown().await;
                    close_journal(store.as_deref());
                    return fail(&format!("cannot serve metrics on {addr}: {e}"));
                }
            },
            None => None,
        };
        tracing::info!(addr = %server.local_addr(), users, config = %config_path.display(), transport = tls.unwrap_or("plaintext"), "courier serve ready");
        // Printed for scripts and tests that start the server on port 0.
        println!("listening on {}", server.local_addr());
        if let Some(listener) = metrics {
            if let Ok(addr) = listener.local_addr() {
                println!("metrics on http://{addr}/metrics");
            }
            tokio::spawn(crate::metrics::serve(listener, server.broker().clone()));
        }
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        close_journal(store.as_deref());
        ExitCode::SUCCESS
    })
}

/// The TLS identity from the flags, else the config file's `[server]` entries: a certificate
/// and a key together, or neither (plaintext only).
fn tls_config(
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
    allow_plaintext: bool,
    file: &ConfigFile,
) -> Result<Option<ServerTls>, String> {
    let cert = cert.as_ref().or(file.server.tls_cert.as_ref());
    let key = key.as_ref().or(file.server.tls_key.as_ref());
    let allow_plaintext = allow_plaintext || file.server.tls_allow_plaintext == Some(true);
    match (cert, key) {
        (None, None) if allow_plaintext => {
            Err("--tls-allow-plaintext needs --tls-cert and --tls-key".to_owned())
        }
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => ServerTls::from_pem_files(cert, key)
            .map(|tls| Some(tls.allow_plaintext(allow_plaintext)))
            .map_err(|e| e.to_string()),
        _ => Err("TLS needs both a certificate (--tls-cert) and a key (--tls-key)".to_owned()),
    }
}

/// Opens (or creates) the journal in `dir` and the broker it rebuilds.
fn open_durable(
    dir: &std::path::Path,
    config: courier_broker::BrokerConfig,
) -> Result<(Broker, Arc<JournalStore>), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("data directory {}: {e}", dir.display()))?;
    let (broker, store, report) = open_broker(dir, config, JournalOptions::default())
        .map_err(|e| format!("data directory {}: {e}", dir.display()))?;
    if let Some(torn) = &report.torn_tail {
        tracing::warn!(file = %torn.file.display(), bytes = torn.bytes_cut,
            "journal: torn tail cut at start-up (a crash in the middle of a write)");
    }
    tracing::info!(data = %dir.display(), "durable storage: journal opened");
    Ok((broker, store))
}

/// Writes and syncs what the journal still holds, then stops its threads.
fn close_journal(store: Option<&JournalStore>) {
    if let Some(store) = store {
        store.journal().close();
        tracing::info!(data = %store.journal().dir().display(), "journal closed");
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("courier serve: {message}");
    ExitCode::from(2)
}

/// Structured logs to stderr; `RUST_LOG` filters (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
