//! `courier bench`: runs the workload runner's workloads (`courier-bench`) against each URL in
//! turn and prints one table of msgs/s and latency percentiles per URL and workload, with the
//! ratio of each figure to the first URL's.
//!
//! Honesty rules kept here, on top of the runner's own (exactly-once and order checks,
//! verified bodies):
//! - a discarded warm-up run opens each URL;
//! - beside an `embedded:` URL the same workloads run over raw tokio channels carrying the
//!   same messages (the in-process ceiling, rows `(raw channel)`), the same-run baseline;
//! - a paced workload's rate is a fraction of the maximum the same workload reached in this
//!   run (`--rate 50%`; workloads of the catalog that are paced default to 50 %), so its
//!   latency row means the same on a slow machine as on a fast one; an absolute `--rate R`
//!   is taken as given;
//! - `--persistent` makes every workload persistent and `--sends awaited|pipelined` sets how
//!   every flow workload sends, so each workload runs in all four combinations; without them
//!   each runs as the catalog has it; JSON rows say which (`persistent`, `pipelined`);
//! - beside each `amqp://` URL the same workloads run through raw lapin (persistent with
//!   publisher confirms, manual acks with `basic.qos`, the URL's queue type; for a classic
//!   URL with priority queues also a row on a queue with the same `x-max-priority`), beside each
//!   `redis://` URL through raw redis-rs Streams (`XADD`/`XREADGROUP`/`XACK`), and with
//!   `--redis-fsync-always` also on a private `redis-server` with `appendfsync always`: the
//!   raw-client baselines (`courier_bench::run_raw`), rows `raw …`; each adapter row shows
//!   its throughput and p99 as ratios to its own raw row (`--no-raw` leaves them out);
//! - a workload a backend cannot run (its error is `Unsupported`) is skipped with a note;
//! - memory per queued message is read from the broker, never from the client: this process
//!   for `embedded:`, the server's resident memory through its statistics for `courier://`
//!   (ADMIN on `#` needed), Redis's `used_memory` for `redis://`; RabbitMQ tells memory only
//!   through its management plugin, so there the memory workload is skipped with a note;
//! - Ctrl-C stops the run in progress and prints what was measured before it.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use courier::{DeliveryMode, Error, Result};
use courier_bench::{
    Limit, Overrides, RawClient, RedisServer, Report, Scenario, Topology, Workload,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value as Json;

use crate::args;

/// The fraction of its own maximum a paced catalog workload runs at by default.
const DEFAULT_PACE: f64 = 0.5;

/// Messages of the warm-up run (fewer if the workloads send fewer).
const WARM_UP_MESSAGES: u64 = 20_000;

/// Compare backends with the same workloads.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    courier bench --url embedded: --workload queue-1x1-100b-auto --messages 100000\n  \
    courier bench --url courier://127.0.0.1:7672 --url amqp://guest:guest@127.0.0.1:5672/%2f \
    --url redis://127.0.0.1:6379 --messages 100000 --persistent\n  \
    courier bench --url embedded: --workload queue-1x1-100b-paced --rate 50% --json\n  \
    courier bench --list")]
pub struct BenchArgs {
    /// Backend URL (repeatable); ratios are to the first.
    #[arg(
        long = "url",
        env = "COURIER_URL",
        value_name = "URL",
        required_unless_present = "list"
    )]
    pub urls: Vec<String>,
    /// Workload to run (repeatable); default: every standard workload. See --list.
    #[arg(long = "workload", value_name = "NAME")]
    pub workloads: Vec<String>,
    /// Workload to leave out (repeatable).
    #[arg(long = "skip", value_name = "NAME")]
    pub skip: Vec<String>,
    /// Messages per flow workload.
    #[arg(long, conflicts_with = "duration")]
    pub messages: Option<u64>,
    /// Send for this long instead of a count, in flow workloads (e.g. 10s, 2m).
    #[arg(long, value_parser = args::duration)]
    pub duration: Option<Duration>,
    /// Message size (at least 20 B), e.g. 100, 1KiB.
    #[arg(long, value_parser = args::size)]
    pub size: Option<usize>,
    /// Send every message persistent.
    #[arg(long)]
    pub persistent: bool,
    /// Send awaited or pipelined in every flow workload (default: as each workload has it).
    #[arg(long, value_enum)]
    pub sends: Option<Sends>,
    /// Receipts a pipelined producer keeps in flight before it awaits the oldest (default
    /// 1 000). With a durable backend, throughput is at most this many sends per commit
    /// latency (an `fdatasync` or two), so a slow disk wants a larger window.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=courier_bench::MAX_SEND_WINDOW as u64))]
    pub window: Option<u64>,
    /// Producers of queue and topic workloads.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub producers: Option<u64>,
    /// Consumers (subscriptions, for topics) of queue and topic workloads.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub consumers: Option<u64>,
    /// Consumer prefetch of flow workloads, as the raw clients use (a URL's own `prefetch=`
    /// wins for its backend; 0: none, each receive fetches one message).
    #[arg(long, default_value_t = u32::from(courier_bench::DEFAULT_PREFETCH),
          value_parser = clap::value_parser!(u32).range(0..=65_535))]
    pub prefetch: u32,
    /// Send rate of flow workloads: msgs/s (e.g. 20000), or a percentage of the workload's
    /// own maximum measured just before (e.g. 50%).
    #[arg(long, value_parser = rate)]
    pub rate: Option<Rate>,
    /// Run each workload this many times (each on a fresh backend) and report the median
    /// run; a run that failed its delivery check is always the one reported.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub repeat: u64,
    /// Also run every workload over raw in-process channels carrying the same messages: the
    /// ceiling, reported as its own rows. On by default when a URL is `embedded:` (the
    /// same-run baseline of an in-process backend).
    #[arg(long, conflicts_with = "no_ceiling")]
    pub ceiling: bool,
    /// Leave the raw-channel ceiling out even for `embedded:`.
    #[arg(long)]
    pub no_ceiling: bool,
    /// Leave out the raw-client baselines (raw lapin beside `amqp://`, raw redis-rs Streams
    /// beside `redis://`).
    #[arg(long)]
    pub no_raw: bool,
    /// Also run raw redis-rs Streams on a private `redis-server` (started on a free port in a
    /// temporary directory, stopped afterwards) with `appendonly yes`, `appendfsync always`:
    /// the durable Redis baseline.
    #[arg(long)]
    pub redis_fsync_always: bool,
    /// One JSON object per line, URL and workload, instead of the table.
    #[arg(long)]
    pub json: bool,
    /// List the workloads and exit.
    #[arg(long)]
    pub list: bool,
}

/// A send rate: fixed, or a fraction of the measured maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Messages per second.
    Fixed(u64),
    /// A fraction (0–1] of the maximum the same workload reached unpaced.
    OfMaximum(f64),
}

/// Parses `--rate`: `20000` or `50%`.
fn rate(text: &str) -> std::result::Result<Rate, String> {
    if let Some(percent) = text.strip_suffix('%') {
        return match percent.parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 100.0 => Ok(Rate::OfMaximum(p / 100.0)),
            _ => Err(format!("{text:?} is not a percentage in (0, 100]")),
        };
    }
    match text.parse::<u64>() {
        Ok(r) if r > 0 => Ok(Rate::Fixed(r)),
        _ => Err(format!("{text:?} is not a rate like 20000 or 50%")),
    }
}

/// One row of the result: a URL and a workload, measured or skipped.
struct Row {
    /// The URL, or the label of the raw channel or of a raw client.
    url: String,
    /// For a raw client's row: the URL of the backend it is the baseline of.
    raw_of: Option<String>,
    workload: String,
    /// How the workload sent: delivery mode and awaited or pipelined sends.
    sending: Sending,
    outcome: std::result::Result<Report, String>,
}

/// How a workload sends, for the JSON rows.
#[derive(Debug, Clone, Copy, Default)]
struct Sending {
    persistent: bool,
    pipelined: bool,
}

impl Sending {
    fn of(workload: &Workload) -> Self {
        match &workload.scenario {
            Scenario::Flow(f) => Sending {
                persistent: f.delivery_mode == DeliveryMode::Persistent,
                pipelined: f.send_window.is_some(),
            },
            Scenario::DeepQueue(d) => Sending {
                persistent: d.delivery_mode == DeliveryMode::Persistent,
                pipelined: false,
            },
            Scenario::Memory(m) => Sending {
                persistent: m.delivery_mode == DeliveryMode::Persistent,
                pipelined: false,
            },
        }
    }
}

/// How flow workloads send, when `--sends` overrides the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sends {
    /// Each send awaited before the next.
    Awaited,
    /// `send_async` with a window of 1 000 receipts (`--window` sets another).
    Pipelined,
}

/// The receipt window of `--sends pipelined`.
const PIPELINE_WINDOW: usize = 1_000;

/// The workloads the arguments select, with their overrides applied.
fn selected(args: &BenchArgs) -> Result<Vec<Workload>> {
    let mut chosen = if args.workloads.is_empty() {
        courier_bench::standard()
    } else {
        args.workloads
            .iter()
            .map(|name| {
                courier_bench::find(name).ok_or_else(|| {
                    Error::invalid_argument(format!("unknown workload {name:?}; see --list"))
                })
            })
            .collect::<Result<Vec<_>>>()?
    };
    for name in &args.skip {
        if courier_bench::find(name).is_none() {
            return Err(Error::invalid_argument(format!(
                "unknown workload {name:?}; see --list"
            )));
        }
    }
    chosen.retain(|w| !args.skip.contains(&w.name));
    let overrides = Overrides {
        messages: args.messages,
        duration: args.duration,
        size: args.size,
        ..Overrides::default()
    };
    for w in &mut chosen {
        w.apply(&overrides);
        adjust(w, args);
        w.validate()?;
    }
    Ok(chosen)
}

/// Applies the flags the runner's overrides do not carry: delivery mode and participants.
fn adjust(workload: &mut Workload, args: &BenchArgs) {
    let persistent = |mode: &mut DeliveryMode| {
        if args.persistent {
            *mode = DeliveryMode::Persistent;
        }
    };
    match &mut workload.scenario {
        Scenario::Flow(flow) => {
            persistent(&mut flow.delivery_mode);
            match args.sends {
                Some(Sends::Awaited) => flow.send_window = None,
                Some(Sends::Pipelined) => flow.send_window = Some(PIPELINE_WINDOW),
                None => {}
            }
            if let (Some(window), Some(_)) = (args.window, flow.send_window) {
                flow.send_window = Some(window as usize);
            }
            let p = args.producers.map(|n| n as usize);
            let c = args.consumers.map(|n| n as usize);
            match &mut flow.topology {
                Topology::Queue {
                    producers,
                    consumers,
                }
                | Topology::Forward {
                    producers,
                    consumers,
                    ..
                } => {
                    *producers = p.unwrap_or(*producers);
                    *consumers = c.unwrap_or(*consumers);
                }
                Topology::Topic {
                    producers,
                    subscriptions,
                } => {
                    *producers = p.unwrap_or(*producers);
                    *subscriptions = c.unwrap_or(*subscriptions);
                }
            }
        }
        Scenario::DeepQueue(deep) => persistent(&mut deep.delivery_mode),
        Scenario::Memory(memory) => persistent(&mut memory.delivery_mode),
    }
}

/// The pace a workload runs at: the flag's, else half its maximum if the catalog paces it.
fn pace(workload: &Workload, args: &BenchArgs) -> Option<Rate> {
    let Scenario::Flow(flow) = &workload.scenario else {
        return None;
    };
    args.rate
        .or_else(|| flow.rate.map(|_| Rate::OfMaximum(DEFAULT_PACE)))
}

/// Sets a flow workload's fixed rate (`None`: as fast as possible).
fn with_rate(workload: &Workload, rate: Option<u64>) -> Workload {
    let mut w = workload.clone();
    if let Scenario::Flow(flow) = &mut w.scenario {
        flow.rate = rate;
    }
    w
}

/// `workloads` with their consumers' prefetch for `target`: `--prefetch` unless the
/// backend's URL sets its own; raw clients take `--prefetch` when it is not 0 (else their
/// URL's, or their default).
fn with_prefetch(workloads: &[Workload], target: &Target, args: &BenchArgs) -> Vec<Workload> {
    let given = Some(args.prefetch).filter(|&p| p > 0);
    let prefetch = match target {
        Target::Backend(url) if url_sets_prefetch(url) => None,
        Target::Backend(_) | Target::Raw { .. } => given,
        Target::Ceiling => None,
    };
    workloads
        .iter()
        .map(|w| {
            let mut w = w.clone();
            if let Scenario::Flow(flow) = &mut w.scenario {
                flow.prefetch = prefetch;
            }
            w
        })
        .collect()
}

/// Whether `url`'s query has a `prefetch` option.
fn url_sets_prefetch(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("prefetch"))
    })
}

/// The label of the raw-channel ceiling's rows.
pub const CEILING: &str = "(raw channel)";

/// What a run measures: a backend by URL, the raw-channel ceiling, or a raw client.
#[derive(Debug, Clone)]
enum Target {
    /// A Courier backend.
    Backend(String),
    /// Raw tokio channels in this process.
    Ceiling,
    /// A broker's own client library, the baseline of the backend at `of`.
    Raw {
        /// The client and where it connects.
        client: RawClient,
        /// The backend URL it is the baseline of (`None` for a private server).
        of: Option<String>,
    },
}

impl Target {
    /// The `url` column.
    fn label(&self) -> String {
        match self {
            Target::Backend(url) => url.clone(),
            Target::Ceiling => CEILING.to_owned(),
            Target::Raw { client, .. } => client.label(),
        }
    }
}

/// Runs one workload `repeat` times, each on a fresh factory for a backend (or over raw
/// channels, or with a raw client), and reports the run of median throughput — or the first
/// run that failed its delivery check, so a failure is never averaged away.
async fn run_once(target: &Target, workload: &Workload, repeat: u64) -> Result<Report> {
    let mut runs = Vec::new();
    for _ in 0..repeat.max(1) {
        let measured = match target {
            Target::Ceiling => courier_bench::run_ceiling(workload).await?,
            Target::Backend(url) => courier_bench::run_at(url, workload).await?,
            Target::Raw { client, .. } => courier_bench::run_raw(client, workload).await?,
        };
        runs.push(measured);
    }
    let measured = match runs.iter().position(|m| !m.check.passed() || m.stalled) {
        Some(failed) => runs.swap_remove(failed),
        None => {
            runs.sort_by(|a, b| a.msgs_per_sec().total_cmp(&b.msgs_per_sec()));
            runs.swap_remove(runs.len() / 2)
        }
    };
    Ok(Report {
        workload: workload.name.clone(),
        url: target.label(),
        measured,
        ceiling: None,
    })
}

/// A short warm-up run of the first flow workload (that a raw client can run, for one),
/// discarded.
async fn warm_up(target: &Target, workloads: &[Workload]) -> Result<()> {
    let raw = matches!(target, Target::Raw { .. });
    let Some(first) = workloads.iter().find(|w| match &w.scenario {
        Scenario::Flow(f) => {
            !raw || (matches!(f.topology, Topology::Queue { .. })
                && f.selector_keys.is_none()
                && f.send_batch.is_none())
        }
        _ => false,
    }) else {
        return Ok(());
    };
    let mut w = with_rate(first, None);
    if let Scenario::Flow(flow) = &mut w.scenario {
        let messages = match flow.limit {
            Limit::Messages(n) => n.min(WARM_UP_MESSAGES),
            Limit::Duration(_) => WARM_UP_MESSAGES,
        };
        flow.limit = Limit::Messages(messages);
    }
    run_once(target, &w, 1).await.map(drop)
}

/// Runs `workload` on `url` as the flags say, returning the reported rows (a paced workload
/// at a fraction of its maximum gives two: the maximum and the paced run).
async fn measure(target: &Target, workload: &Workload, args: &BenchArgs) -> Result<Vec<Report>> {
    match pace(workload, args) {
        None => Ok(vec![
            run_once(target, &with_rate(workload, None), args.repeat).await?,
        ]),
        Some(Rate::Fixed(r)) => Ok(vec![
            run_once(target, &with_rate(workload, Some(r)), args.repeat).await?,
        ]),
        Some(Rate::OfMaximum(fraction)) => {
            let mut unpaced = with_rate(workload, None);
            unpaced.name = format!("{}@max", workload.name);
            let max = run_once(target, &unpaced, args.repeat).await?;
            let rate = (max.measured.msgs_per_sec() * fraction).round().max(1.0) as u64;
            let mut paced = with_rate(workload, Some(rate));
            paced.name = format!("{}@{:.0}%", workload.name, fraction * 100.0);
            let at = run_once(target, &paced, args.repeat).await?;
            Ok(vec![max, at])
        }
    }
}

/// The URL as printed: a password in it replaced by `***`.
pub fn shown(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    match authority[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..start],
            &authority[..colon],
            &url[start + at..]
        ),
        None => url.to_owned(),
    }
}

/// Whether the URL opens a broker inside this process.
fn is_embedded(url: &str) -> bool {
    url.get(..9)
        .is_some_and(|s| s.eq_ignore_ascii_case("embedded:"))
}

/// A spinner on stderr for one run (hidden when stderr is not a terminal).
fn spinner(url: &str, workload: &str) -> ProgressBar {
    // Cleared when dropped too: a run stopped by Ctrl-C leaves no spinner behind.
    let bar = ProgressBar::new_spinner().with_finish(indicatif::ProgressFinish::AndClear);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}") {
        bar.set_style(style);
    }
    bar.set_message(format!("{workload} on {url}"));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Runs the benchmark; the table (or JSON) goes to `out`, notes to stderr. Exits with
/// failure when a workload failed its delivery check or a URL could not be measured, and
/// with 130 after Ctrl-C (having printed what was measured).
pub async fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<ExitCode> {
    if args.list {
        for w in courier_bench::standard() {
            let _ = writeln!(out, "{:<26} {}", w.name, w.description);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.urls.iter().any(|u| u == CEILING) {
        return Err(Error::invalid_argument(format!(
            "{CEILING:?} names the raw-channel rows, not a URL; use --ceiling"
        )));
    }
    let workloads = selected(args)?;
    let mut rows: Vec<Row> = Vec::new();
    let mut healthy = true;
    let interrupted = tokio::select! {
        () = measure_all(args, &workloads, &mut rows, &mut healthy) => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted {
        eprintln!("courier: bench interrupted; what was measured before:");
    }
    print_rows(&rows, args.json, out);
    for row in &rows {
        if let Ok(report) = &row.outcome {
            if let Some(failure) = report.failure() {
                eprintln!("courier: {}", failure.replace('\n', "; "));
                healthy = false;
            }
        }
    }
    Ok(if interrupted {
        ExitCode::from(crate::INTERRUPTED)
    } else if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Measures every workload on every URL — each backend followed by its raw-client baseline —
/// appending rows as they finish (so an interrupted run keeps what it measured).
async fn measure_all(
    args: &BenchArgs,
    workloads: &[Workload],
    rows: &mut Vec<Row>,
    healthy: &mut bool,
) {
    let wanted = args.ceiling || (!args.no_ceiling && args.urls.iter().any(|u| is_embedded(u)));
    let mut targets = Vec::new();
    for url in &args.urls {
        targets.push(Target::Backend(url.clone()));
        if let Some(client) = RawClient::for_url(url).filter(|_| !args.no_raw) {
            targets.push(Target::Raw {
                client,
                of: Some(url.clone()),
            });
            // Second, so the ratio columns stay against the plain baseline.
            if let Some(client) = RawClient::with_backend_queue(url) {
                targets.push(Target::Raw {
                    client,
                    of: Some(url.clone()),
                });
            }
        }
    }
    if wanted {
        targets.push(Target::Ceiling);
    }
    for target in &targets {
        measure_target(args, target, workloads, rows, healthy).await;
    }
    if args.redis_fsync_always {
        let label = "raw redis streams (appendfsync always)";
        let bar = spinner(label, "starting redis-server");
        let started = RedisServer::start_fsync_always().await;
        bar.finish_and_clear();
        match started {
            Ok(server) => {
                let target = Target::Raw {
                    client: RawClient::RedisStreams {
                        url: server.url(),
                        read_batch: courier_bench::REDIS_READ_BATCH,
                        fsync_always: true,
                    },
                    of: None,
                };
                measure_target(args, &target, workloads, rows, healthy).await;
                drop(server);
            }
            Err(e) => {
                eprintln!("courier: {label}: {e}");
                *healthy = false;
                rows.push(Row {
                    url: label.to_owned(),
                    raw_of: None,
                    workload: "(every workload)".into(),
                    sending: Sending::default(),
                    outcome: Err(format!("failed: {e}")),
                });
            }
        }
    }
}

/// Warms `target` up, then measures every workload on it.
async fn measure_target(
    args: &BenchArgs,
    target: &Target,
    workloads: &[Workload],
    rows: &mut Vec<Row>,
    healthy: &mut bool,
) {
    let url = target.label();
    let raw_of = match target {
        Target::Raw { of, .. } => Some(of.clone().unwrap_or_default()),
        _ => None,
    };
    let workloads = &with_prefetch(workloads, target, args);
    let bar = spinner(&shown(&url), "warm-up");
    let warmed = warm_up(target, workloads).await;
    bar.finish_and_clear();
    if let Err(e) = warmed {
        // A raw client that can run none of the workloads has nothing to warm up: its rows
        // are skipped one by one below.
        if !e.is_unsupported() || raw_of.is_none() {
            eprintln!("courier: {}: {e}", shown(&url));
            *healthy = false;
            rows.push(Row {
                url: url.clone(),
                raw_of,
                workload: "(every workload)".into(),
                sending: Sending::default(),
                outcome: Err(format!(
                    "{}: {e}",
                    if e.is_unsupported() {
                        "skipped"
                    } else {
                        "failed"
                    }
                )),
            });
            return;
        }
    }
    for workload in workloads {
        let bar = spinner(&shown(&url), &workload.name);
        let outcome = measure(target, workload, args).await;
        bar.finish_and_clear();
        match outcome {
            Ok(reports) => {
                for report in reports {
                    eprintln!(
                        "courier: measured {} on {} at {:.0} msgs/s",
                        report.workload,
                        shown(&url),
                        report.measured.msgs_per_sec()
                    );
                    rows.push(Row {
                        url: url.clone(),
                        raw_of: raw_of.clone(),
                        workload: report.workload.clone(),
                        sending: Sending::of(workload),
                        outcome: Ok(report),
                    });
                }
            }
            Err(e) => {
                if !e.is_unsupported() {
                    *healthy = false;
                }
                let kind = if e.is_unsupported() {
                    "skipped"
                } else {
                    "failed"
                };
                eprintln!("courier: {} on {} {kind}: {e}", workload.name, shown(&url));
                rows.push(Row {
                    url: url.clone(),
                    raw_of: raw_of.clone(),
                    workload: workload.name.clone(),
                    sending: Sending::of(workload),
                    outcome: Err(format!("{kind}: {e}")),
                });
            }
        }
    }
}

/// The raw-client row that is the baseline of `row` (a backend row with a raw client), if it
/// was measured.
fn raw_baseline<'a>(rows: &'a [Row], row: &Row) -> Option<(&'a str, &'a Report)> {
    if row.raw_of.is_some() {
        return None;
    }
    rows.iter()
        .filter(|r| r.raw_of.as_deref() == Some(row.url.as_str()) && r.workload == row.workload)
        .find_map(|r| r.outcome.as_ref().ok().map(|rep| (r.url.as_str(), rep)))
}

/// Throughput and p99 of `report` as ratios to its raw baseline's.
fn raw_ratios(report: &Report, raw: &Report) -> (Option<f64>, Option<f64>) {
    let rate = raw.measured.msgs_per_sec();
    let throughput = (rate > 0.0).then(|| report.measured.msgs_per_sec() / rate);
    let p99 = match (&report.measured.latency, &raw.measured.latency) {
        (Some(a), Some(b)) if b.p99_us > 0.0 => Some(a.p99_us / b.p99_us),
        _ => None,
    };
    (throughput, p99)
}

/// The first measured URL's throughput for `workload`, the base of the ratios.
fn base(rows: &[Row], workload: &str) -> Option<f64> {
    let first = &rows.iter().find(|r| r.outcome.is_ok())?.url;
    rows.iter()
        .filter(|r| &r.url == first && r.workload == workload)
        .find_map(|r| r.outcome.as_ref().ok())
        .map(|r| r.measured.msgs_per_sec())
        .filter(|&v| v > 0.0)
}

/// What a row's columns cannot hold: memory per queued message, or the achieved send rate
/// of a paced run.
fn note(m: &courier_bench::Measurement) -> String {
    match m.memory {
        Some(memory) => format!(
            "{:.0} B per queued message ({})",
            memory.bytes_per_message(),
            memory.source.describe()
        ),
        None => String::new(),
    }
}

/// Prints the table, or one JSON object per measured row.
fn print_rows(rows: &[Row], json: bool, out: &mut dyn Write) {
    if json {
        for row in rows {
            let Ok(report) = &row.outcome else { continue };
            let mut line: Json = serde_json::from_str(&report.to_json()).unwrap_or(Json::Null);
            if let Json::Object(map) = &mut line {
                // The runner's `ratio` is to the raw-channel ceiling, not run here.
                map.remove("ratio");
                let ratio = base(rows, &row.workload).map(|b| report.measured.msgs_per_sec() / b);
                map.insert("ratio_to_first".into(), ratio.into());
                map.insert("url".into(), shown(&row.url).into());
                map.insert("persistent".into(), row.sending.persistent.into());
                map.insert("pipelined".into(), row.sending.pipelined.into());
                if let Some(of) = &row.raw_of {
                    map.insert("raw_client".into(), row.url.clone().into());
                    map.insert("raw_baseline_of".into(), shown(of).into());
                }
                let ratios = raw_baseline(rows, row).map(|(label, raw)| {
                    let (throughput, p99) = raw_ratios(report, raw);
                    (label, throughput, p99)
                });
                map.insert(
                    "raw_baseline".into(),
                    ratios.map(|(label, _, _)| label.to_owned()).into(),
                );
                map.insert("ratio_to_raw".into(), ratios.and_then(|(_, t, _)| t).into());
                map.insert(
                    "p99_ratio_to_raw".into(),
                    ratios.and_then(|(_, _, p)| p).into(),
                );
            }
            let _ = writeln!(out, "{line}");
        }
        return;
    }
    let url_width = rows
        .iter()
        .map(|r| shown(&r.url).chars().count())
        .max()
        .unwrap_or(3)
        .max(3);
    let name_width = rows
        .iter()
        .map(|r| r.workload.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        out,
        "{:<url_width$}  {:<name_width$}  {:>12}  {:>10}  {:>10}  {:>10}  {:>12}  {:>8}  {:>8}  {:>8}  note",
        "url",
        "workload",
        "msgs/s",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "exactly-once",
        "vs first",
        "vs raw",
        "p99/raw"
    );
    for row in rows {
        match &row.outcome {
            Ok(report) => {
                let m = &report.measured;
                let lat = |f: fn(&courier_bench::LatencySummary) -> f64| {
                    m.latency
                        .as_ref()
                        .map(|l| format!("{:.0}", f(l)))
                        .unwrap_or_else(|| "-".into())
                };
                let ratio = base(rows, &row.workload)
                    .map(|b| format!("{:.2}x", m.msgs_per_sec() / b))
                    .unwrap_or_else(|| "-".into());
                let once = if m.check.exactly_once() && m.check.in_order() && !m.stalled {
                    "yes"
                } else {
                    "NO"
                };
                let (vs_raw, p99_raw) = match raw_baseline(rows, row) {
                    Some((_, raw)) => {
                        let (t, p) = raw_ratios(report, raw);
                        let show = |v: Option<f64>| {
                            v.map(|v| format!("{v:.2}x")).unwrap_or_else(|| "-".into())
                        };
                        (show(t), show(p))
                    }
                    // Blank, not "-": only adapters with a raw client have these columns.
                    None => (String::new(), String::new()),
                };
                let line = format!(
                    "{:<url_width$}  {:<name_width$}  {:>12.0}  {:>10}  {:>10}  {:>10}  {:>12}  {:>8}  {:>8}  {:>8}  {}",
                    shown(&row.url),
                    row.workload,
                    m.msgs_per_sec(),
                    lat(|l| l.p50_us),
                    lat(|l| l.p99_us),
                    lat(|l| l.p999_us),
                    once,
                    ratio,
                    vs_raw,
                    p99_raw,
                    note(m)
                );
                let _ = writeln!(out, "{}", line.trim_end());
            }
            Err(note) => {
                let _ = writeln!(
                    out,
                    "{:<url_width$}  {:<name_width$}  {note}",
                    shown(&row.url),
                    row.workload
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            shown("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(shown("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(shown("amqp://user@host/"), "amqp://user@host/");
        assert_eq!(shown("embedded:"), "embedded:");
        assert_eq!(shown("courier://a:b@h/x@y"), "courier://a:***@h/x@y");
    }

    #[test]
    fn consumers_prefetch_as_the_raw_clients_unless_the_url_says() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Line {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let prefetch_of = |args: &[&str], target: &Target| {
            let line = Line::parse_from(args);
            let workloads = selected(&line.bench).unwrap();
            match &with_prefetch(&workloads, target, &line.bench)[0].scenario {
                Scenario::Flow(f) => f.prefetch,
                other => panic!("not a flow: {other:?}"),
            }
        };
        let plain = ["bench", "--url", "x:", "--workload", "queue-1x1-1k-auto"];
        let backend = |url: &str| Target::Backend(url.to_owned());
        assert_eq!(prefetch_of(&plain, &backend("courier://h")), Some(1000));
        assert_eq!(
            prefetch_of(&plain, &backend("amqp://h/%2f?heartbeat=5s&prefetch=50")),
            None,
            "the URL's own prefetch applies"
        );
        let zero = [&plain[..], &["--prefetch", "0"]].concat();
        assert_eq!(prefetch_of(&zero, &backend("courier://h")), None);
        let fifty = [&plain[..], &["--prefetch", "50"]].concat();
        assert_eq!(prefetch_of(&fifty, &Target::Ceiling), None);
        assert_eq!(prefetch_of(&fifty, &backend("redis://h")), Some(50));
        assert!(url_sets_prefetch("amqp://h/?prefetch=1"));
        assert!(!url_sets_prefetch("amqp://h/?prefetches=1&x=prefetch"));
    }

    #[test]
    fn flags_apply_to_the_selected_workloads() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Line {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let line = Line::parse_from([
            "bench",
            "--url",
            "embedded:",
            "--workload",
            "queue-4x4-100b",
            "--workload",
            "topic-1x8-100b",
            "--persistent",
            "--producers",
            "2",
            "--consumers",
            "3",
            "--messages",
            "500",
            "--size",
            "1KiB",
            "--sends",
            "pipelined",
        ]);
        let workloads = selected(&line.bench).unwrap();
        let shapes: Vec<_> = workloads
            .iter()
            .map(|w| match &w.scenario {
                Scenario::Flow(f) => (
                    f.topology.participants(),
                    f.delivery_mode,
                    f.message_size,
                    f.limit,
                ),
                other => panic!("not a flow: {other:?}"),
            })
            .collect();
        for (participants, mode, size, limit) in shapes {
            assert_eq!(participants, (2, 3));
            assert_eq!(mode, DeliveryMode::Persistent);
            assert_eq!(size, 1024);
            assert_eq!(limit, Limit::Messages(500));
        }
        assert!(workloads.iter().all(|w| matches!(
            Sending::of(w),
            Sending {
                persistent: true,
                pipelined: true
            }
        )));
        let unknown = Line::parse_from(["bench", "--url", "embedded:", "--workload", "nope"]);
        assert!(selected(&unknown.bench).is_err());
        let small = Line::parse_from(["bench", "--url", "embedded:", "--size", "10"]);
        assert!(
            selected(&small.bench).is_err(),
            "a body smaller than the stamp"
        );
    }

    #[test]
    fn rates_are_absolute_or_a_percentage_of_the_maximum() {
        assert_eq!(rate("20000"), Ok(Rate::Fixed(20_000)));
        assert_eq!(rate("50%"), Ok(Rate::OfMaximum(0.5)));
        for bad in ["0", "0%", "101%", "-5", "fast", "%", "NaN%"] {
            assert!(rate(bad).is_err(), "{bad:?} accepted");
        }
    }
}
