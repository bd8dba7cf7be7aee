//! `courier bench` with the raw-client baselines: beside an `amqp://` URL raw lapin, beside a
//! `redis://` URL raw redis-rs Streams, and a private `redis-server` with `appendfsync always`.
//! Needs the machine's RabbitMQ (127.0.0.1:5672, guest/guest) and Redis (127.0.0.1:6379).

use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value as Json;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f?prefetch=100";
const REDIS: &str = "redis://127.0.0.1:6379";

fn courier() -> Command {
    let mut command = Command::cargo_bin("courier").expect("the courier binary");
    command
        .env_remove("COURIER_URL")
        .timeout(Duration::from_secs(180));
    command
}

fn bench(extra: &[&str]) -> (String, String) {
    let output = courier()
        .args(["bench", "--url", AMQP, "--url", REDIS, "--persistent"])
        .args([
            "--workload",
            "queue-1x1-100b-pipelined",
            "--messages",
            "400",
        ])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (stdout, stderr)
}

/// The cell of the right-aligned column `name` (8 wide) in `line`, by the header's position.
fn column(header: &str, line: &str, name: &str) -> String {
    let at = header.find(name).expect("a column of the header");
    let end = header[..at].chars().count() + name.chars().count();
    let chars: Vec<char> = line.chars().collect();
    // Lines are trimmed at the end: a blank last cell may be cut off.
    let (hi, lo) = (end.min(chars.len()), end.saturating_sub(8).min(chars.len()));
    chars[lo..hi].iter().collect::<String>().trim().to_owned()
}

#[test]
fn adapters_are_compared_with_their_raw_clients_in_a_table() {
    let (text, _) = bench(&[]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(
        lines[0].starts_with("url") && lines[0].contains("vs raw") && lines[0].contains("p99/raw"),
        "{text}"
    );
    // Beside a classic URL with priority queues (the default), raw lapin runs twice: on a
    // plain queue (the ratios' baseline) and on a queue with the adapter's arguments.
    let expected = [
        "amqp://guest:***@127.0.0.1:5672/%2f?prefetch=100",
        "raw lapin classic  ",
        "raw lapin classic x-max-priority 9",
        REDIS,
        "raw redis streams",
    ];
    for (line, start) in lines[1..].iter().zip(expected) {
        assert!(line.starts_with(start), "{start:?} in\n{text}");
        assert!(line.contains(" yes "), "{text}");
    }
    // Adapter rows carry their ratios to their raw row; raw rows leave the cells blank.
    for (row, adapter) in [(1, true), (2, false), (3, false), (4, true), (5, false)] {
        for name in ["vs raw", "p99/raw"] {
            let cell = column(lines[0], lines[row], name);
            assert_eq!(cell.ends_with('x'), adapter, "{name} {cell:?} in\n{text}");
            assert_eq!(cell.is_empty(), !adapter, "{name} {cell:?} in\n{text}");
        }
    }
}

#[test]
fn json_rows_name_their_raw_baseline_and_ratios() {
    let (text, _) = bench(&["--json"]);
    let rows: Vec<Json> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(rows.len(), 5, "{text}");
    for row in &rows {
        assert_eq!(row["exactly_once"], true, "{row}");
        assert_eq!(row["messages"], 400, "{row}");
        assert_eq!(row["persistent"], true, "{row}");
        assert!(row["p99_us"].as_f64().is_some_and(|p| p > 0.0), "{row}");
    }
    assert_eq!(rows[0]["raw_baseline"], "raw lapin classic");
    assert_eq!(rows[1]["raw_client"], "raw lapin classic");
    assert_eq!(
        rows[1]["raw_baseline_of"],
        "amqp://guest:***@127.0.0.1:5672/%2f?prefetch=100"
    );
    assert_eq!(rows[2]["raw_client"], "raw lapin classic x-max-priority 9");
    assert_eq!(
        rows[2]["raw_baseline_of"],
        "amqp://guest:***@127.0.0.1:5672/%2f?prefetch=100"
    );
    assert_eq!(rows[3]["raw_baseline"], "raw redis streams");
    assert_eq!(rows[4]["raw_client"], "raw redis streams");
    for adapter in [&rows[0], &rows[3]] {
        let ratio = adapter["ratio_to_raw"]
            .as_f64()
            .expect("a throughput ratio");
        assert!(ratio > 0.0, "{adapter}");
        assert!(adapter["p99_ratio_to_raw"].as_f64().is_some(), "{adapter}");
    }
    for raw in [&rows[1], &rows[2], &rows[4]] {
        assert!(raw["ratio_to_raw"].is_null(), "{raw}");
    }
}

#[test]
fn what_a_raw_client_cannot_run_is_skipped_and_the_fsync_server_is_started() {
    let output = courier()
        .args(["bench", "--url", REDIS, "--redis-fsync-always"])
        .args([
            "--workload",
            "queue-1x1-100b-auto",
            "--workload",
            "topic-1x8-100b",
        ])
        .args(["--messages", "300"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let line = |start: &str, workload: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(start) && l.contains(workload))
            .unwrap_or_else(|| panic!("no {start} {workload} row in\n{stdout}"))
            .to_owned()
    };
    assert!(line("raw redis streams  ", "queue-1x1-100b-auto").contains(" yes "));
    assert!(line("raw redis streams  ", "topic-1x8-100b").contains("skipped"));
    assert!(
        line(
            "raw redis streams (appendfsync always)",
            "queue-1x1-100b-auto"
        )
        .contains(" yes "),
        "{stdout}"
    );
    assert!(line(REDIS, "topic-1x8-100b").contains(" yes "), "{stdout}");
}
