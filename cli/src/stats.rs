//! `courier stats`: what a backend can tell about itself through the client API.
//!
//! The client API carries no broker statistics: what every backend answers is its
//! capabilities, its provider metadata, and a queue's depth, counted by browsing it (so a
//! backend without browsing cannot give depths). Destination lists, consumer counts, rates,
//! memory and disk come from the broker process (`courier serve --metrics`); `stats` names
//! each of them as not reported rather than printing a guess.

use std::io::Write;

use clap::Args;
use courier::{ConnectionFactory, Destination, Result, SessionMode};

use crate::args::UrlArg;
use crate::endpoint::Endpoint;

/// Figures the client API cannot give, printed as not reported.
const NOT_REPORTED: &[&str] = &["destinations", "consumers", "rates", "memory", "disk"];

/// Show what a backend can tell: capabilities, and queue depths.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    courier stats --url courier://127.0.0.1:7672 --queue orders\n  \
    courier stats --url amqp://guest:guest@127.0.0.1:5672/%2f --queue orders --queue invoices")]
pub struct StatsArgs {
    #[command(flatten)]
    pub url: UrlArg,
    /// A queue whose depth to show (repeatable).
    #[arg(long = "queue", value_name = "NAME")]
    pub queues: Vec<String>,
}

/// Prints the backend's figures on `out`.
pub async fn run(
    factory: &dyn ConnectionFactory,
    args: &StatsArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let endpoint = Endpoint::open(factory, SessionMode::AutoAcknowledge, None).await?;
    let caps = factory.capabilities();
    let meta = endpoint.metadata();
    let mut lines = vec![
        format!("backend       {}", caps.backend),
        format!(
            "provider      {} {} (JMS {})",
            meta.provider_name, meta.provider_version, meta.jms_version
        ),
    ];
    lines.push(format!(
        "durability    {:?} (durable storage: {})",
        caps.persistent_durability, caps.durable_storage
    ));
    if let Some(max) = caps.max_message_size {
        lines.push(format!("max message   {max} B"));
    }
    for name in &args.queues {
        let depth = if caps.browse {
            let browser = endpoint
                .session
                .create_browser(&Destination::queue(name), None)
                .await?;
            let mut depth = 0_u64;
            while browser.next().await?.is_some() {
                depth += 1;
            }
            browser.close().await?;
            format!("depth {depth} (counted by browsing)")
        } else {
            "depth not reported: this backend cannot browse".to_owned()
        };
        lines.push(format!("queue {name}  {depth}"));
    }
    for field in NOT_REPORTED {
        lines.push(format!(
            "{field:<13} not reported: the client API of {} has no broker statistics",
            caps.backend
        ));
    }
    endpoint.close().await?;
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    Ok(())
}
