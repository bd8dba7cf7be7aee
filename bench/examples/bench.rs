//! Measures a Courier backend with the standard workloads, each beside its raw-channel ceiling.
//!
//! ```text
//! cargo run --release -p courier-bench --example bench   # every workload, embedded broker
//! cargo run --release -p courier-bench --example bench -- --workload queue-1x1-100b-auto --messages 2000000
//! cargo run --release -p courier-bench --example bench -- --skip selector-deep-1m --json
//! cargo run --release -p courier-bench --example bench -- --list
//! ```
//!
//! Prints a table (or, with `--json`, one JSON object per line and workload) and exits with
//! status 1 when any workload lost, duplicated or reordered a message.

use clap::Parser;
use courier_bench::{self as workload, Overrides, Report, Table, Workload};
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// Courier workload runner.
#[derive(Debug, Parser)]
#[command(about = "Measures a Courier backend; each workload runs beside a raw tokio channel")]
struct Args {
    /// Backend URL.
    #[arg(long, default_value = "embedded:")]
    url: String,
    /// Workload to run (repeatable); default: all of them. See `--list`.
    #[arg(long = "workload", value_name = "NAME")]
    workloads: Vec<String>,
    /// Workload to leave out (repeatable), e.g. `selector-deep-1m`.
    #[arg(long = "skip", value_name = "NAME")]
    skip: Vec<String>,
    /// Messages to send in flow workloads (not the depth of deep-queue or memory workloads).
    #[arg(long)]
    messages: Option<u64>,
    /// Send for this long instead of a message count, in flow workloads: `10s`, `500ms`, `2m`.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Message size in bytes (at least 20), in every workload.
    #[arg(long)]
    size: Option<usize>,
    /// Fixed total send rate in messages per second, in flow workloads.
    #[arg(long)]
    rate: Option<u64>,
    /// One JSON object per line and workload instead of the table.
    #[arg(long)]
    json: bool,
    /// Run each workload (and its ceiling) this many times and report the median run; a run
    /// that fails its delivery check is always the one reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    repeat: u64,
    /// Leave out the raw-channel ceiling runs (e.g. when profiling the backend alone).
    #[arg(long)]
    no_ceiling: bool,
    /// List the workloads and exit.
    #[arg(long)]
    list: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1_000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())
}

fn selected(args: &Args) -> Result<Vec<Workload>, String> {
    let mut chosen = if args.workloads.is_empty() {
        workload::standard()
    } else {
        args.workloads
            .iter()
            .map(|name| {
                workload::find(name).ok_or_else(|| format!("unknown workload {name:?}; see --list"))
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    for name in &args.skip {
        if workload::find(name).is_none() {
            return Err(format!("unknown workload {name:?}; see --list"));
        }
    }
    chosen.retain(|w| !args.skip.contains(&w.name));
    let overrides = Overrides {
        messages: args.messages,
        duration: args.duration,
        size: args.size,
        rate: args.rate,
    };
    for w in &mut chosen {
        w.apply(&overrides);
        w.validate().map_err(|e| e.to_string())?;
    }
    Ok(chosen)
}

async fn run(args: &Args, w: &Workload) -> courier::Result<Report> {
    if !args.no_ceiling {
        return workload::measure_repeated(&args.url, w, args.repeat as usize).await;
    }
    let factory = courier::connect(&args.url).await?;
    Ok(Report {
        workload: w.name.clone(),
        url: args.url.clone(),
        measured: workload::run(factory.as_ref(), w).await?,
        ceiling: None,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for w in workload::standard() {
            println!("{:<24} {}", w.name, w.description);
        }
        return ExitCode::SUCCESS;
    }
    let workloads = match selected(&args) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    let mut reports: Vec<Report> = Vec::with_capacity(workloads.len());
    for w in &workloads {
        eprint!("{:<24} ", w.name);
        let _ = std::io::stderr().flush();
        let started = std::time::Instant::now();
        match run(&args, w).await {
            Ok(report) => {
                eprintln!(
                    "{:>12.0} msgs/s  ({:.1} s)",
                    report.measured.msgs_per_sec(),
                    started.elapsed().as_secs_f64()
                );
                if args.json {
                    println!("{}", report.to_json());
                }
                reports.push(report);
            }
            Err(e) => {
                eprintln!("error");
                eprintln!("bench: workload {} on {} failed: {e}", w.name, args.url);
                return ExitCode::FAILURE;
            }
        }
    }
    if !args.json {
        print!("{}", Table(&reports));
    }
    let failures: Vec<String> = reports.iter().filter_map(Report::failure).collect();
    for failure in &failures {
        eprintln!("\n!!! {failure}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
