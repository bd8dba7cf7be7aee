//! The real `courier` binary: help, exit codes and one-line errors, bench output, completions,
//! `COURIER_URL`, and Ctrl-C.

use std::io::{BufRead as _, BufReader};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value as Json;

const SUBCOMMANDS: &[&str] = &[
    "send",
    "receive",
    "browse",
    "stats",
    "purge",
    "delete",
    "bench",
    "completions",
];

fn courier() -> Command {
    let mut command = Command::cargo_bin("courier").expect("the courier binary");
    command
        .env_remove("COURIER_URL")
        .timeout(Duration::from_secs(120));
    command
}

/// Runs `args`, expects exit status 1 with one `courier: ` line on stderr containing
/// `expected`, and nothing that looks like a panic.
fn fails_with(args: &[&str], expected: &str) {
    let output = courier().args(args).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: not one line: {stderr}"
    );
    assert!(stderr.starts_with("courier: "), "{args:?}: {stderr}");
    assert!(
        stderr.contains(expected),
        "{args:?}: {stderr:?} lacks {expected:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.chars().count() < 1_100,
        "{args:?}: a line of {} bytes",
        stderr.len()
    );
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    let top = courier().arg("--help").output().unwrap();
    assert!(top.status.success());
    let top = String::from_utf8(top.stdout).unwrap();
    for sub in SUBCOMMANDS {
        assert!(top.contains(sub), "{sub} missing from --help");
        let out = courier().args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub} --help failed");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Example"), "{sub} --help has no example");
        assert!(text.contains(&format!("courier {sub}")), "{sub}: {text}");
    }
}

#[test]
fn bad_urls_and_unbuilt_backends_fail_with_one_clear_line() {
    fails_with(
        &["send", "--url", "ftp://example.com", "--queue", "q", "x"],
        "unknown URL scheme \"ftp\"",
    );
    fails_with(
        &["send", "--url", "not a url", "--queue", "q", "x"],
        "whitespace",
    );
    fails_with(&["send", "--url", "", "--queue", "q", "x"], "");
    fails_with(
        &["browse", "--url", "embedded:?prefetch=lots", "--queue", "q"],
        "prefetch",
    );
    fails_with(
        &["stats", "--url", "embedded:?password_typo=x"],
        "password_typo",
    );
    fails_with(
        &[
            "send",
            "--url",
            "embedded:",
            "--queue",
            "q",
            "--file",
            "/nonexistent/body",
        ],
        "cannot read /nonexistent/body",
    );
    fails_with(&["bench", "--url", "(raw channel)"], "not a URL");
    let long_selector = "(".repeat(100_000);
    fails_with(
        &[
            "receive",
            "--url",
            "embedded:",
            "--queue",
            "q",
            "--selector",
            &long_selector,
        ],
        "invalid selector",
    );
    let long_name = "a".repeat(5_000);
    fails_with(
        &["send", "--url", "embedded:", "--queue", &long_name, "x"],
        "bytes in all)",
    );
    // A queue no one sent to: receiving a message from it times out, as a clear error.
    fails_with(
        &[
            "receive",
            "--url",
            "embedded:",
            "--queue",
            "missing",
            "--count",
            "1",
            "--timeout",
            "100ms",
        ],
        "received 0 of 1 messages from queue://missing",
    );
}

#[test]
fn bad_arguments_exit_2_naming_the_argument() {
    for (args, expected) in [
        (
            &[
                "send",
                "--url",
                "embedded:",
                "--queue",
                "q",
                "--size",
                "1.5KiB",
            ][..],
            "--size",
        ),
        (
            &["send", "--url", "embedded:", "--queue", "q", "--ttl", "5"],
            "--ttl",
        ),
        (
            &[
                "send",
                "--url",
                "embedded:",
                "--queue",
                "q",
                "--property",
                "x",
                "m",
            ],
            "--property",
        ),
        (&["bench", "--url", "embedded:", "--rate", "150%"], "--rate"),
        (&["send", "--queue", "q", "x"], "--url"),
    ] {
        let output = courier().args(args).output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn courier_url_is_the_default_url() {
    courier()
        .env("COURIER_URL", "embedded:")
        .args(["send", "--queue", "q", "x"])
        .assert()
        .success();
    let output = courier()
        .env("COURIER_URL", "gopher://x")
        .args(["send", "--queue", "q", "x"])
        .output()
        .unwrap();
    assert!(String::from_utf8(output.stderr)
        .unwrap()
        .contains("\"gopher\""));
}

#[test]
fn bench_prints_a_table_and_json_with_the_required_fields() {
    let table = courier()
        .args([
            "bench",
            "--url",
            "embedded:",
            "--url",
            "embedded:?prefetch=10",
        ])
        .args(["--workload", "queue-1x1-100b-auto", "--messages", "2000"])
        .output()
        .unwrap();
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let text = String::from_utf8(table.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("url") && lines[0].contains("p99.9 µs"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("embedded: ") && lines[1].ends_with("1.00x"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("embedded:?prefetch=10") && lines[2].contains(" yes "),
        "{text}"
    );
    assert!(
        lines[3].starts_with("(raw channel)") && lines[3].contains(" yes "),
        "{text}"
    );

    let json = courier()
        .args([
            "bench",
            "--url",
            "embedded:",
            "--json",
            "--persistent",
            "--no-ceiling",
        ])
        .args([
            "--workload",
            "queue-1x1-100b-pipelined",
            "--workload",
            "topic-1x8-100b",
        ])
        .args(["--messages", "1000", "--size", "64"])
        .output()
        .unwrap();
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let rows: Vec<Json> = String::from_utf8(json.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        for field in [
            "url",
            "workload",
            "messages",
            "msgs_per_sec",
            "p50_us",
            "p99_us",
            "p999_us",
            "exactly_once",
        ] {
            assert!(row.get(field).is_some(), "{field} missing from {row}");
        }
        assert_eq!(row["exactly_once"], true);
        assert_eq!(row["persistent"], true);
        assert_eq!(row["ratio_to_first"], 1.0);
    }
    assert_eq!(rows[0]["messages"], 1000);
    assert_eq!(rows[0]["pipelined"], true);
    assert_eq!(rows[1]["pipelined"], false);
    assert_eq!(
        rows[1]["messages"], 8000,
        "a topic counts every subscription's copy"
    );
}

#[test]
fn bench_skips_what_a_backend_cannot_run_and_names_a_backend_not_built() {
    let output = courier()
        .args([
            "bench",
            "--url",
            "embedded:",
            "--url",
            "redis://127.0.0.1:6379",
        ])
        .args(["--workload", "queue-1x1-100b-auto", "--messages", "500"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stdout.contains("embedded:"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("redis://127.0.0.1:6379")),
        "{stdout}"
    );
    assert!(stderr.contains("redis://127.0.0.1:6379"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = courier().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("courier") && script.contains("receive"),
            "{shell}"
        );
    }
    assert_eq!(
        courier()
            .args(["completions", "cmd"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

/// Sends SIGINT to a running child.
fn interrupt(child: &std::process::Child) {
    let status = Process::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_stops_a_waiting_receive_cleanly() {
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("courier"))
        .args(["receive", "--url", "embedded:", "--queue", "q"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Time to start and install the Ctrl-C handler (before it, SIGINT would kill the process).
    std::thread::sleep(Duration::from_millis(1_500));
    interrupt(&child);
    let started = Instant::now();
    let output = loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break child.wait_with_output().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "receive ignored Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(output.status.code(), Some(130));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}

#[test]
fn a_bench_stopped_by_ctrl_c_prints_what_it_measured() {
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("courier"))
        .args(["bench", "--url", "embedded:", "--messages", "1000"])
        .args([
            "--workload",
            "queue-1x1-100b-auto",
            "--workload",
            "selector-deep-1m",
        ])
        .env_remove("COURIER_URL")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The first workload is quick; the second fills a queue with a million messages. Stop
    // the bench once the first is measured.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.starts_with("courier: measured queue-1x1-100b-auto") {
            interrupt(&child);
        }
        line.clear();
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{seen}");
    assert!(seen.contains("interrupted"), "{seen}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[1].contains("queue-1x1-100b-auto") && lines[1].contains(" yes "),
        "{stdout}"
    );
}

/// `delete` of a topic on RabbitMQ, which cannot delete topics, names the backend (it once
/// read "unsupported by the this backend backend"); a queue that does not exist is a clear
/// error on the remote backends.
#[test]
fn delete_where_a_backend_cannot_names_the_backend() {
    let amqp = "amqp://guest:guest@127.0.0.1:5672/%2f";
    fails_with(
        &["delete", "--url", amqp, "--topic", "cli-test.no-delete"],
        "unsupported by the amqp backend: deleting topics",
    );
    let missing = format!("cli-test.never-made-{}", std::process::id());
    for url in [amqp, "redis://127.0.0.1:6379"] {
        fails_with(
            &["delete", "--url", url, "--queue", &missing],
            &format!("invalid destination \"queue://{missing}\""),
        );
    }
}
