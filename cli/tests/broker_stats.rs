//! The broker's own statistics from the real binary: `courier serve --metrics` scraped over
//! HTTP, `courier stats` over `courier://` (ADMIN on `#` required) and in process
//! (`embedded:/dir`), and the clear one-line errors for a wrong password, a user without
//! ADMIN, a missing queue and a metrics address that cannot be bound.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_courier");

fn add_user(config: &std::path::Path, name: &str, password: &str, allow: &str) {
    let mut child = Command::new(BIN)
        .args(["user", "add", name, "--allow", allow, "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait().unwrap().success());
}

/// A running `courier serve` with its addresses; SIGTERM on drop.
struct Server {
    child: Child,
    addr: String,
    metrics: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Starts a durable `courier serve` with users `admin` (everything) and `app` (orders.#
/// send/receive, no admin), metrics on a free port.
fn serve(dir: &std::path::Path) -> Server {
    let config = dir.join("courier.toml");
    add_user(&config, "admin", "adm1n", "#=all");
    add_user(&config, "app", "s3cret", "orders.#=send,receive");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    let first = next();
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    let second = next();
    let metrics = second
        .strip_prefix("metrics on http://")
        .and_then(|s| s.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected second line {second:?}"))
        .to_owned();
    Server {
        child,
        addr,
        metrics,
    }
}

/// Runs the binary; returns (exit code, stdout, stderr).
fn courier(args: &[&str]) -> (Option<i32>, String, String) {
    let output = assert_cmd::Command::new(BIN)
        .args(args)
        .env_remove("COURIER_URL")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = courier(args);
    assert_eq!(code, Some(0), "{args:?}: {err}");
    out
}

/// Expects exit 1 and one `courier: ` line on stderr containing `expected`.
fn fails(args: &[&str], expected: &str) {
    let (code, _, err) = courier(args);
    assert_eq!(code, Some(1), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.starts_with("courier: "), "{err}");
    assert!(
        err.contains(expected),
        "{args:?}: {err:?} lacks {expected:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// `GET path` on `addr`; returns the status line and the body.
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample `name` (labels included, as printed) in an exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn stats_and_metrics_show_the_brokers_figures_and_refuse_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let admin = format!("--url=courier://admin:adm1n@{}", server.addr);
    let app = format!("--url=courier://app:s3cret@{}", server.addr);

    ok(&[
        "send",
        &app,
        "--queue",
        "orders",
        "--count",
        "3",
        "--persistent",
        "o",
    ]);
    ok(&[
        "receive",
        &app,
        "--queue",
        "orders",
        "--count",
        "1",
        "--timeout",
        "5s",
    ]);

    // `stats` over TCP: the broker's own row for the queue.
    let text = ok(&["stats", &admin, "--queue", "orders"]);
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("queue"))
        .unwrap_or_else(|| panic!("no queue row:\n{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        ["queue", "orders", "2", "0", "0", "3", "1", "0", "0"],
        "{text}"
    );
    assert!(
        text.contains("journal") && text.contains("fsyncs"),
        "{text}"
    );
    let json = ok(&["stats", &admin, "--json"]);
    let json: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let orders = json["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "orders")
        .unwrap();
    assert_eq!(orders["depth"], 2);
    assert!(json["store"]["fsyncs"].as_u64().unwrap() >= 1, "{json}");
    assert!(json["store"]["disk_bytes"].as_u64().unwrap() > 0, "{json}");
    assert!(json["resident_bytes"].as_u64().unwrap() > 1 << 20, "{json}");
    assert!(text.contains("journal segments"), "{text}");

    // Prometheus text at /metrics.
    let (status, body) = http_get(&server.metrics, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let q = "{type=\"queue\",name=\"orders\"}";
    assert_eq!(sample(&body, &format!("courier_destination_depth{q}")), 2.0);
    assert_eq!(
        sample(&body, &format!("courier_destination_messages_in_total{q}")),
        3.0
    );
    assert_eq!(
        sample(&body, &format!("courier_destination_messages_out_total{q}")),
        1.0
    );
    assert!(sample(&body, "courier_memory_used_bytes") > 0.0);
    assert!(sample(&body, "courier_memory_limit_bytes") > 0.0);
    assert!(sample(&body, "courier_journal_fsync_seconds_count") >= 1.0);
    assert!(sample(&body, "courier_journal_disk_bytes") > 0.0);
    assert!(sample(&body, "courier_process_resident_bytes") > 0.0);
    assert!(sample(&body, "courier_journal_batch_records_sum") >= 3.0);
    assert!(sample(&body, "courier_connections") >= 0.0);
    assert_eq!(http_get(&server.metrics, "/").0, "HTTP/1.1 404 Not Found");

    // Refusals: one clear line, exit 1.
    fails(&["stats", &app], "not authorized");
    fails(
        &[
            "send",
            &format!("--url=courier://app:wrong@{}", server.addr),
            "--queue",
            "orders",
            "x",
        ],
        "uthentication",
    );
    fails(&["stats", &admin, "--queue", "nope"], "no such queue");
    fails(
        &[
            "receive",
            &app,
            "--queue",
            "orders.missing",
            "--count",
            "1",
            "--timeout",
            "200ms",
        ],
        "received 0 of 1 messages from queue://orders.missing",
    );
}

#[test]
fn embedded_stats_read_the_same_snapshot_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("--url=embedded:{}", dir.path().join("data").display());
    ok(&[
        "send",
        &url,
        "--queue",
        "kept",
        "--count",
        "2",
        "--persistent",
        "x",
    ]);
    let text = ok(&["stats", &url, "--queue", "kept"]);
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("queue"))
        .unwrap_or_else(|| panic!("no queue row:\n{text}"))
        .split_whitespace()
        .collect();
    // Replayed from the journal: 2 stored, counters start afresh in this process.
    assert_eq!(&row[..3], ["queue", "kept", "2"], "{text}");
    assert!(text.contains("backend       embedded"), "{text}");
}

#[test]
fn a_metrics_address_that_cannot_be_bound_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "256.1.1.1:80",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("courier serve: cannot serve metrics on 256.1.1.1:80"),
        "{err}"
    );
}
