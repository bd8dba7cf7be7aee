//! `courier browse`: prints a queue's messages in delivery order and leaves them there.

use std::io::Write;

use clap::Args;
use courier::{ConnectionFactory, Destination, Result, SessionMode};

use crate::args::UrlArg;
use crate::endpoint::Endpoint;
use crate::render;

/// Look at a queue's messages without taking them.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    courier browse --url courier://127.0.0.1:7672 --queue orders\n  \
    courier browse --queue orders --selector \"priority > 4\" --json")]
pub struct BrowseArgs {
    #[command(flatten)]
    pub url: UrlArg,
    /// The queue to browse.
    #[arg(long, value_name = "NAME")]
    pub queue: String,
    /// Only messages this JMS selector accepts.
    #[arg(long)]
    pub selector: Option<String>,
    /// One JSON object per message: headers, properties and body (bytes as base64).
    #[arg(long)]
    pub json: bool,
}

/// Browses the queue, printing each message on `out`; returns how many there were.
pub async fn run(
    factory: &dyn ConnectionFactory,
    args: &BrowseArgs,
    out: &mut dyn Write,
) -> Result<u64> {
    let endpoint = Endpoint::open(factory, SessionMode::AutoAcknowledge, None).await?;
    let queue = Destination::queue(&args.queue);
    let browser = endpoint
        .session
        .create_browser(&queue, args.selector.as_deref())
        .await?;
    let mut seen = 0_u64;
    let outcome = loop {
        match browser.next().await {
            Ok(Some(message)) => {
                let line = if args.json {
                    render::json(&message).to_string()
                } else {
                    render::text(&message)
                };
                if writeln!(out, "{line}").is_err() {
                    break Ok(());
                }
                seen += 1;
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let closed = endpoint.close().await;
    outcome?;
    closed?;
    Ok(seen)
}
