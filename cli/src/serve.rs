//! `courier serve`: runs the broker behind a socket until SIGINT or SIGTERM, then shuts down
//! gracefully — stops accepting, lets connections finish the requests they sent (sends and
//! commits in flight complete and are answered), closes them — and exits 0.

use clap::Args;
use courier_broker::server::Server;
use courier_broker::Broker;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::ConfigFile;

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
    /// Configuration file (users, permissions, limits) [default: courier.toml, optional].
    #[arg(long)]
    config: Option<PathBuf>,
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
    if let Some(dir) = &args.data {
        return fail(&format!(
            "--data {}: durable storage is not built into the server yet; run without --data \
             for an in-memory broker",
            dir.display()
        ));
    }
    let broker_config = match file.broker_config() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let listen = args
        .listen
        .or_else(|| file.server.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let server_config = file.server_config();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        tracing::warn!(
            "no data directory: messages are kept in memory only (durable storage comes with \
             the storage engine)"
        );
        let users = broker_config.users.len();
        let server = match Server::bind(&listen, Broker::new(broker_config), server_config).await
        {
            Ok(server) => server,
            Err(e) => return fail(&format!("cannot listen on {listen}: {e}")),
        };
        tracing::info!(addr = %server.local_addr(), users, config = %config_path.display(), "courier serve ready");
        // Printed for scripts and tests that start the server on port 0.
        println!("listening on {}", server.local_addr());
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        ExitCode::SUCCESS
    })
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
