//! `courier purge`: empties a queue by receiving and discarding its messages.
//!
//! The client API has no purge operation, so this one consumes: it takes every message
//! that arrives within `--timeout` of the last one (messages sent meanwhile may be taken too;
//! messages delivered to other consumers and not yet acknowledged are not purged).

use std::io::Write;
use std::time::Duration;

use clap::Args;
use courier::{ConnectionFactory, ConsumerOptions, Destination, Result, SessionMode};

use crate::args::{self, UrlArg};
use crate::endpoint::Endpoint;

/// Empty a queue (its messages are received and discarded).
#[derive(Debug, Clone, Args)]
#[command(after_help = "Example:\n  courier purge --url courier://127.0.0.1:7672 --queue orders")]
pub struct PurgeArgs {
    #[command(flatten)]
    pub url: UrlArg,
    /// The queue to empty.
    #[arg(long, value_name = "NAME")]
    pub queue: String,
    /// Only messages this JMS selector accepts.
    #[arg(long)]
    pub selector: Option<String>,
    /// Stop once no message came for this long.
    #[arg(long, value_parser = args::duration, default_value = "500ms")]
    pub timeout: Duration,
}

/// Purges the queue and reports how many messages went on `out`.
pub async fn run(
    factory: &dyn ConnectionFactory,
    args: &PurgeArgs,
    out: &mut dyn Write,
) -> Result<u64> {
    let endpoint = Endpoint::open(factory, SessionMode::AutoAcknowledge, None).await?;
    let queue = Destination::queue(&args.queue);
    let options = ConsumerOptions {
        selector: args.selector.clone(),
        ..ConsumerOptions::default()
    };
    let consumer = endpoint.session.create_consumer(&queue, options).await?;
    let mut purged = 0_u64;
    let outcome = loop {
        match consumer.receive_timeout(args.timeout).await {
            Ok(Some(_)) => purged += 1,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let closed = endpoint.close().await;
    outcome?;
    closed?;
    let _ = writeln!(out, "purged {purged} messages from {queue}");
    Ok(purged)
}
