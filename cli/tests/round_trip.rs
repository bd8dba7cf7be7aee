//! The real `courier` binary, run as separate processes one after the other on one data
//! directory (`embedded:/dir`): what one process sends persistently the next receives, and
//! `courier delete` removes a queue for good. Each process opens the journal, takes its lock,
//! and releases it on exit, so the next one can open it.

use std::time::Duration;

use assert_cmd::Command;

fn courier() -> Command {
    let mut command = Command::cargo_bin("courier").expect("the courier binary");
    command
        .env_remove("COURIER_URL")
        .timeout(Duration::from_secs(60));
    command
}

/// Runs `args` and returns stdout, panicking with stderr unless it succeeded.
fn run(args: &[&str]) -> String {
    let output = courier().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_persistent_message_crosses_processes_and_delete_removes_the_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("--url=embedded:{}", tmp.path().join("data").display());
    let url = url.as_str();

    run(&["send", url, "--queue", "q", "--persistent", "hello"]);
    let received = run(&[
        "receive",
        url,
        "--queue",
        "q",
        "--count",
        "1",
        "--timeout",
        "5s",
    ]);
    assert!(
        received.contains("hello"),
        "the next process receives it: {received}"
    );

    // Gone once received and acknowledged: a third process finds nothing.
    let empty = courier()
        .args([
            "receive",
            url,
            "--queue",
            "q",
            "--count",
            "1",
            "--timeout",
            "200ms",
        ])
        .output()
        .unwrap();
    assert!(!empty.status.success(), "nothing left to receive");

    run(&["send", url, "--queue", "q", "--persistent", "doomed"]);
    let deleted = run(&["delete", url, "--queue", "q"]);
    assert_eq!(deleted, "deleted queue://q\n");
    let after = courier()
        .args([
            "receive",
            url,
            "--queue",
            "q",
            "--count",
            "1",
            "--timeout",
            "200ms",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&after.stdout);
    assert!(
        !after.status.success() && !stdout.contains("doomed"),
        "a deleted queue's message does not come back in a later process: {stdout}"
    );
    // The receive made the queue afresh (empty); a queue never made is an error.
    let never = courier()
        .args(["delete", url, "--queue", "never-made"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&never.stderr);
    assert_eq!(never.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no such destination"), "{stderr}");
}
