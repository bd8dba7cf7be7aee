//! `courier`: the command line of Courier. One file per subcommand; this file only parses
//! the command line and dispatches.

#![forbid(unsafe_code)]

mod config;
mod serve;
mod user;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Courier: a JMS-style message broker in Rust.
#[derive(Parser)]
#[command(name = "courier", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a Courier broker server (`courier://`).
    Serve(serve::ServeArgs),
    /// Manages the users of a server's configuration file.
    User(user::UserArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::User(args) => user::run(args),
    }
}
