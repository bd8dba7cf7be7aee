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
mod endpoint;
mod purge;
mod receive;
mod render;
mod send;
mod stats;
#[cfg(test)]
mod tests;

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
    Send(send::SendArgs),
    Receive(receive::ReceiveArgs),
    Browse(browse::BrowseArgs),
    Stats(stats::StatsArgs),
    Purge(purge::PurgeArgs),
    Bench(bench::BenchArgs),
    Completions(completions::CompletionsArgs),
}

/// The exit status after Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

/// Runs a command and returns its exit status; an error is printed by `main`.
async fn dispatch(command: Command) -> courier::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Send(a) => send::run(&*courier::connect(&a.url.url).await?, &a, &mut out).await?,
        Command::Receive(a) => {
            let factory = courier::connect(&a.url.url).await?;
            tokio::select! {
                done = receive::run(&*factory, &a, &mut out) => done?,
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::from(INTERRUPTED)),
            }
        }
        Command::Browse(a) => {
            browse::run(&*courier::connect(&a.url.url).await?, &a, &mut out).await?;
        }
        Command::Stats(a) => {
            stats::run(&*courier::connect(&a.url.url).await?, &a, &mut out).await?
        }
        Command::Purge(a) => {
            purge::run(&*courier::connect(&a.url.url).await?, &a, &mut out).await?;
        }
        Command::Bench(a) => return bench::run(&a, &mut out).await,
        Command::Completions(a) => completions::run(&a, &mut Cli::command(), &mut out),
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("courier: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("courier: {}", e.to_string().replace('\n', "; "));
            ExitCode::FAILURE
        }
    }
}
