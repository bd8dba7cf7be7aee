//! `courier receive`: takes messages from a queue, a topic, or a durable subscription, and
//! prints each (`--json`: one object per line).
//!
//! Acknowledgement: `auto` acknowledges each message as it is received; `client` acknowledges
//! each after it is printed, so a message is never lost between the broker and the terminal;
//! `none` never acknowledges, so every message returns to the queue (marked redelivered) when
//! the command exits — a peek that, unlike `browse`, takes the messages while it runs.

use std::io::Write;
use std::time::Duration;

use clap::{Args, ValueEnum};
use courier::{ConnectionFactory, ConsumerOptions, Error, Result, SessionMode};

use crate::args::{self, DestinationArg, UrlArg};
use crate::endpoint::Endpoint;
use crate::render;

/// The client id `--durable` uses when neither `--client-id` nor the URL sets one.
pub const DEFAULT_CLIENT_ID: &str = "courier-cli";

/// How received messages are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ack {
    /// Each message as it is received.
    Auto,
    /// Each message after it is printed.
    Client,
    /// Never: messages return to the destination when the command exits.
    None,
}

/// Receive messages.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    courier receive --url courier://127.0.0.1:7672 --queue orders --count 10 --json\n  \
    courier receive --queue orders --selector \"region = 'eu'\" --timeout 2s\n  \
    courier receive --topic events --durable audit --client-id auditor")]
pub struct ReceiveArgs {
    #[command(flatten)]
    pub url: UrlArg,
    #[command(flatten)]
    pub destination: DestinationArg,
    /// Receive through this durable subscription of the topic (kept between runs).
    #[arg(long, value_name = "NAME", requires = "topic")]
    pub durable: Option<String>,
    /// Client id for the connection (durable subscriptions belong to it); the URL's
    /// `?client_id=` wins.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Stop after this many messages; without it, receive until the timeout or Ctrl-C.
    #[arg(long)]
    pub count: Option<u64>,
    /// A JMS message selector, e.g. "region = 'eu' AND amount > 100".
    #[arg(long)]
    pub selector: Option<String>,
    /// Stop when no message came for this long (e.g. 500ms, 5s); without it, wait forever.
    #[arg(long, value_parser = args::duration)]
    pub timeout: Option<Duration>,
    /// One JSON object per message: headers, properties and body (bytes as base64).
    #[arg(long)]
    pub json: bool,
    /// Acknowledgement: auto, client or none.
    #[arg(long, value_enum, default_value_t = Ack::Auto)]
    pub ack: Ack,
}

/// Receives as the arguments say, printing each message on `out`. With `--count N`, fewer
/// than N messages before the timeout is an error (after printing those that came).
pub async fn run(
    factory: &dyn ConnectionFactory,
    args: &ReceiveArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let destination = args.destination.destination();
    let mode = match args.ack {
        Ack::Auto => SessionMode::AutoAcknowledge,
        Ack::Client | Ack::None => SessionMode::ClientAcknowledge,
    };
    let client_id = match (&args.durable, &args.client_id) {
        (_, Some(id)) => Some(id.as_str()),
        (Some(_), None) => Some(DEFAULT_CLIENT_ID),
        (None, None) => None,
    };
    let endpoint = Endpoint::open(factory, mode, client_id).await?;
    let options = ConsumerOptions {
        selector: args.selector.clone(),
        ..ConsumerOptions::default()
    };
    let consumer = match &args.durable {
        Some(name) => {
            endpoint
                .session
                .create_durable_consumer(&destination, name, options)
                .await?
        }
        None => {
            endpoint
                .session
                .create_consumer(&destination, options)
                .await?
        }
    };
    let mut received = 0_u64;
    let outcome = loop {
        if args.count.is_some_and(|n| received >= n) {
            break Ok(());
        }
        let next = match args.timeout {
            Some(timeout) => consumer.receive_timeout(timeout).await,
            None => consumer.receive().await,
        };
        let message = match next {
            Ok(Some(message)) => message,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let line = if args.json {
            render::json(&message).to_string()
        } else {
            render::text(&message)
        };
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            // The reader went away (e.g. `| head`): stop without acknowledging this one.
            break Ok(());
        }
        received += 1;
        if args.ack == Ack::Client {
            if let Err(e) = endpoint.session.acknowledge().await {
                break Err(e);
            }
        }
    };
    let closed = endpoint.close().await;
    outcome?;
    closed?;
    match args.count {
        Some(n) if received < n => Err(Error::illegal_state(format!(
            "received {received} of {n} messages from {destination} {}",
            match args.timeout {
                Some(t) => format!("before the {t:?} timeout"),
                None => "before the consumer was closed".to_owned(),
            }
        ))),
        _ => Ok(()),
    }
}
