//! `courier stats`: what a backend can tell about itself.
//!
//! Courier's own broker reports its statistics ([`StatsSnapshot`]): in process for
//! `embedded:` URLs, through the protocol's `Stats` op (ADMIN on `#` needed) for
//! `courier://`. Every destination's depth, unacknowledged deliveries, consumers and message
//! counters, connections, memory against its limit, and the journal's fsyncs and batches;
//! with `--interval` two snapshots give rates. Other backends' client APIs carry no broker
//! statistics: for them `stats` shows capabilities and queue depths counted by browsing, and
//! names every other figure as not reported rather than printing a guess.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use courier::broker::{DestinationType, StatsSnapshot};
use courier::{ConnectionFactory, Destination, Error, Result, SessionMode};

use crate::args::UrlArg;
use crate::endpoint::Endpoint;
use crate::stats_table;

/// Figures the client API of other backends cannot give, printed as not reported.
const NOT_REPORTED: &[&str] = &["destinations", "consumers", "rates", "memory", "disk"];

/// Show what a backend can tell: destinations, depths, consumers, rates, memory.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    courier stats --url courier://admin:secret@127.0.0.1:7672\n  \
    courier stats --url courier://127.0.0.1:7672 --queue orders --interval 1s\n  \
    courier stats --url amqp://guest:guest@127.0.0.1:5672/%2f --queue orders --queue invoices")]
pub struct StatsArgs {
    #[command(flatten)]
    pub url: UrlArg,
    /// Only this queue (repeatable); other backends count its depth by browsing.
    #[arg(long = "queue", value_name = "NAME")]
    pub queues: Vec<String>,
    /// Take a second snapshot after this long and show message rates (Courier's broker).
    #[arg(long, value_parser = crate::args::duration, value_name = "DURATION")]
    pub interval: Option<Duration>,
    /// Print the broker's snapshot as one JSON object (Courier's broker).
    #[arg(long)]
    pub json: bool,
}

/// Prints the figures of the backend at `url` on `out`.
pub async fn run(url: &str, args: &StatsArgs, out: &mut dyn Write) -> Result<()> {
    let scheme = url.split_once(':').map_or("", |(s, _)| s);
    if scheme.eq_ignore_ascii_case("embedded") {
        let factory = courier::broker::embedded_factory(url)?;
        let broker = factory.broker().clone();
        let read = || {
            let broker = broker.clone();
            async move { Ok(broker.snapshot()) }
        };
        broker_stats("embedded (in process)", read, args, out).await
    } else if scheme.eq_ignore_ascii_case("courier") {
        let factory = courier::broker::client::TcpFactory::from_url(url)?;
        let read = || {
            let factory = factory.clone();
            async move { factory.broker_stats().await }
        };
        let name = format!("courier ({})", factory.address());
        broker_stats(&name, read, args, out).await
    } else {
        let factory = courier::connect(url).await?;
        client_stats(&*factory, args, out).await
    }
}

/// Courier's broker: its snapshot, and rates from a second one after `--interval`.
async fn broker_stats<F, Fut>(
    backend: &str,
    read: F,
    args: &StatsArgs,
    out: &mut dyn Write,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<StatsSnapshot>>,
{
    let mut snapshot = read().await?;
    let mut earlier = None;
    if let Some(interval) = args.interval {
        tokio::time::sleep(interval).await;
        earlier = Some(std::mem::replace(&mut snapshot, read().await?));
    }
    for name in &args.queues {
        if snapshot.destination(DestinationType::Queue, name).is_none() {
            return Err(Error::invalid_destination(
                format!("queue://{name}"),
                "no such queue on the broker",
            ));
        }
    }
    if !args.queues.is_empty() {
        snapshot
            .destinations
            .retain(|d| d.kind == DestinationType::Queue && args.queues.contains(&d.name));
    }
    if args.json {
        let text = serde_json::to_string(&snapshot)
            .map_err(|e| Error::invalid_argument(format!("cannot encode the snapshot: {e}")))?;
        let _ = writeln!(out, "{text}");
        return Ok(());
    }
    let rates = earlier.map(|e| (e, args.interval.unwrap_or_default()));
    let _ = write!(
        out,
        "{}",
        stats_table::render(backend, &snapshot, rates.as_ref())
    );
    Ok(())
}

/// Any other backend: what its client API tells — capabilities, and depths by browsing.
pub async fn client_stats(
    factory: &dyn ConnectionFactory,
    args: &StatsArgs,
    out: &mut dyn Write,
) -> Result<()> {
    if args.json || args.interval.is_some() {
        return Err(Error::unsupported(
            factory.capabilities().backend,
            "--json and --interval (only Courier's broker reports statistics)",
        ));
    }
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
