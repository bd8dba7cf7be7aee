//! `courier`: the command line of Courier. Sends, receives, browses, inspects and benchmarks
//! any backend by URL (`embedded:`, `courier://`, `amqp://`, `redis://`).
//!
//! Each subcommand lives in its own module; this file only parses and dispatches. Errors are
//! printed as one line on stderr (`courier: ...`) with exit status 1 (2 for bad arguments,
//! 130 after Ctrl-C).

#![forbid(unsafe_code)]

mod args;
mod bench;
mod browse;
mod completions;
mod config;
mod delete;
mod endpoint;
mod metrics;
mod purge;
mod receive;
mod render;
mod send;
mod serve;
mod stats;
mod stats_table;
#[cfg(test)]
mod tests;
mod user;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Courier: the JMS programming model over any backend, from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "courier",
    version,
    after_help = "Every --url defaults to $COURIER_URL. Durations: 500ms, 5s, 2m, 1h. Sizes: 100, 1KiB, 2MB.\n\n\
                  Example:\n  export COURIER_URL=courier://127.0.0.1:7672\n  \
                  courier send --queue orders 'hello'\n  courier receive --queue orders --count 1"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a Courier broker server (`courier://`).
    Serve(serve::ServeArgs),
    /// Manages the users of a server's configuration file.
    User(user::UserArgs),
    Send(send::SendArgs),
    Receive(receive::ReceiveArgs),
    Browse(browse::BrowseArgs),
    Stats(stats::StatsArgs),
    Purge(purge::PurgeArgs),
    Delete(delete::DeleteArgs),
    Bench(bench::BenchArgs),
    Completions(completions::CompletionsArgs),
}

/// The exit status after Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

/// Runs a command and returns its exit status; an error is printed by `main`. Ctrl-C stops
/// a broker command (its connection is dropped, so unacknowledged messages go back) with
/// status 130; `bench` handles Ctrl-C itself, to print what it measured.
async fn dispatch(command: Command) -> courier::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let url = match &command {
        Command::Send(a) => &a.url.url,
        Command::Receive(a) => &a.url.url,
        Command::Browse(a) => &a.url.url,
        Command::Stats(a) => &a.url.url,
        Command::Purge(a) => &a.url.url,
        Command::Delete(a) => &a.url.url,
        Command::Bench(a) => return bench::run(a, &mut out).await,
        Command::Serve(_) | Command::User(_) => {
            return Err(courier::Error::invalid_argument(
                "serve and user run without a broker connection",
            ))
        }
        Command::Completions(a) => {
            completions::run(a, &mut Cli::command(), &mut out);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let work = async {
        if let Command::Stats(a) = &command {
            // Courier's broker answers with its own figures, through its own clients.
            return stats::run(url, a, &mut out).await;
        }
        // Connecting is inside the select too: Ctrl-C stops a connect that hangs.
        let factory = courier::connect(url).await?;
        let f = &*factory;
        match &command {
            Command::Send(a) => send::run(f, a, &mut out).await,
            Command::Receive(a) => receive::run(f, a, &mut out).await,
            Command::Browse(a) => browse::run(f, a, &mut out).await.map(drop),
            Command::Purge(a) => purge::run(f, a, &mut out).await.map(drop),
            Command::Delete(a) => delete::run(f, a, &mut out).await,
            Command::Stats(_)
            | Command::Bench(_)
            | Command::Completions(_)
            | Command::Serve(_)
            | Command::User(_) => Ok(()),
        }
    };
    tokio::select! {
        done = work => done.map(|()| ExitCode::SUCCESS),
        _ = tokio::signal::ctrl_c() => Ok(ExitCode::from(INTERRUPTED)),
    }
}

/// The longest error line printed, in characters: errors quote what they refuse, and a
/// 100 KB selector should not become a 100 KB line.
const MAX_ERROR_CHARS: usize = 1_000;

/// An error's text on one line, cut to [`MAX_ERROR_CHARS`].
fn one_line(text: &str) -> String {
    let line = text.replace(['\n', '\r'], "; ");
    match line.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}… ({} bytes in all)", &line[..cut], line.len()),
        None => line,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Command::Serve(args) => return serve::run(args),
        Command::User(args) => return user::run(args),
        command => command,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("courier: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("courier: {}", one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}
