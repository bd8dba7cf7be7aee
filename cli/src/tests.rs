//! The subcommands against one shared in-process broker: each test parses real command lines
//! and runs them in turn on the same factory, as separate `courier` processes would on a
//! broker they share.

use std::sync::Arc;

use clap::Parser;
use courier::ConnectionFactory;
use serde_json::Value as Json;

use crate::{browse, delete, purge, receive, send, stats, Cli, Command};

/// Runs one command line on `factory` and returns its output, or its error's text.
async fn courier(factory: &Arc<dyn ConnectionFactory>, line: &[&str]) -> Result<String, String> {
    let argv = ["courier"].iter().chain(line).copied();
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let f = factory.as_ref();
    let done = match cli.command {
        Command::Send(a) => send::run(f, &a, &mut out).await,
        Command::Receive(a) => receive::run(f, &a, &mut out).await,
        Command::Browse(a) => browse::run(f, &a, &mut out).await.map(drop),
        // The client-API path, which every backend other than Courier's broker takes.
        Command::Stats(a) => stats::client_stats(f, &a, &mut out).await,
        Command::Purge(a) => purge::run(f, &a, &mut out).await.map(drop),
        Command::Delete(a) => delete::run(f, &a, &mut out).await,
        other => panic!("not a broker command: {other:?}"),
    };
    done.map_err(|e| e.to_string())?;
    Ok(String::from_utf8(out).expect("output is UTF-8"))
}

fn json_lines(text: &str) -> Vec<Json> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect()
}

async fn broker() -> Arc<dyn ConnectionFactory> {
    courier::connect("embedded:")
        .await
        .expect("an embedded broker")
}

const URL: &str = "--url=embedded:";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_round_trips_with_its_properties_headers_and_body() {
    let b = broker().await;
    let line = [
        "send",
        URL,
        "--queue",
        "orders",
        "--property",
        "region=eu",
        "--property",
        "n=42",
        "--property",
        "id:string=7",
        "--correlation-id",
        "c-1",
        "--priority",
        "7",
        "--persistent",
        "hello",
    ];
    courier(&b, &line).await.unwrap();
    let out = courier(
        &b,
        &[
            "receive",
            URL,
            "--queue",
            "orders",
            "--count",
            "1",
            "--json",
            "--timeout",
            "2s",
        ],
    )
    .await
    .unwrap();
    let m = &json_lines(&out)[0];
    assert_eq!(m["body"], "hello");
    assert_eq!(m["body_kind"], "text");
    assert_eq!(m["properties"]["region"], "eu");
    assert_eq!(m["properties"]["n"], 42);
    assert_eq!(m["properties"]["id"], "7");
    assert_eq!(m["headers"]["correlation_id"], "c-1");
    assert_eq!(m["headers"]["priority"], 7);
    assert_eq!(m["headers"]["delivery_mode"], "PERSISTENT");
    assert_eq!(m["headers"]["destination"], "queue://orders");
    // Taken: the queue is empty now.
    let err = courier(
        &b,
        &[
            "receive",
            URL,
            "--queue",
            "orders",
            "--count",
            "1",
            "--timeout",
            "100ms",
        ],
    )
    .await
    .unwrap_err();
    assert!(err.contains("received 0 of 1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bytes_body_of_a_given_size_arrives_as_base64() {
    let b = broker().await;
    courier(&b, &["send", URL, "--queue", "q", "--size", "1KiB"])
        .await
        .unwrap();
    let out = courier(
        &b,
        &["receive", URL, "--queue", "q", "--count", "1", "--json"],
    )
    .await
    .unwrap();
    let m = &json_lines(&out)[0];
    assert_eq!(m["body_kind"], "bytes");
    let body = m["body"].as_str().unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    assert_eq!(bytes, vec![b'x'; 1024]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_takes_only_the_messages_it_accepts() {
    let b = broker().await;
    for (region, text) in [("eu", "one"), ("us", "two"), ("eu", "three")] {
        let p = format!("region={region}");
        courier(&b, &["send", URL, "--queue", "q", "--property", &p, text])
            .await
            .unwrap();
    }
    let out = courier(
        &b,
        &[
            "receive",
            URL,
            "--queue",
            "q",
            "--selector",
            "region = 'eu'",
            "--timeout",
            "200ms",
        ],
    )
    .await
    .unwrap();
    assert_eq!(out, "one\nthree\n");
    let left = courier(&b, &["browse", URL, "--queue", "q"]).await.unwrap();
    assert_eq!(left, "two\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_leaves_messages_in_place() {
    let b = broker().await;
    courier(&b, &["send", URL, "--queue", "q", "--count", "3", "m"])
        .await
        .unwrap();
    let first = courier(&b, &["browse", URL, "--queue", "q", "--json"])
        .await
        .unwrap();
    let second = courier(&b, &["browse", URL, "--queue", "q", "--json"])
        .await
        .unwrap();
    assert_eq!(json_lines(&first).len(), 3);
    assert_eq!(first, second);
    let seqs: Vec<i64> = json_lines(&first)
        .iter()
        .map(|m| m["properties"]["courier_seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [0, 1, 2]);
    let selected = courier(
        &b,
        &[
            "browse",
            URL,
            "--queue",
            "q",
            "--selector",
            "courier_seq > 0",
        ],
    )
    .await
    .unwrap();
    assert_eq!(selected.lines().count(), 2);
    let taken = courier(&b, &["receive", URL, "--queue", "q", "--count", "3"])
        .await
        .unwrap();
    assert_eq!(taken, "m\nm\nm\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_subscription_keeps_messages_between_two_receive_runs() {
    let b = broker().await;
    let sub = [
        "receive",
        URL,
        "--topic",
        "events",
        "--durable",
        "audit",
        "--timeout",
        "100ms",
    ];
    assert_eq!(
        courier(&b, &sub).await.unwrap(),
        "",
        "the subscription starts empty"
    );
    courier(&b, &["send", URL, "--topic", "events", "a"])
        .await
        .unwrap();
    courier(&b, &["send", URL, "--topic", "events", "b"])
        .await
        .unwrap();
    assert_eq!(courier(&b, &sub).await.unwrap(), "a\nb\n");
    assert_eq!(courier(&b, &sub).await.unwrap(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_none_returns_messages_and_client_ack_takes_them() {
    let b = broker().await;
    courier(&b, &["send", URL, "--queue", "q", "--count", "2", "m"])
        .await
        .unwrap();
    let peek = [
        "receive", URL, "--queue", "q", "--count", "2", "--ack", "none", "--json",
    ];
    let out = courier(&b, &peek).await.unwrap();
    assert_eq!(json_lines(&out).len(), 2);
    let again = courier(
        &b,
        &[
            "receive", URL, "--queue", "q", "--count", "2", "--ack", "client", "--json",
        ],
    )
    .await
    .unwrap();
    let again = json_lines(&again);
    assert_eq!(again.len(), 2);
    assert_eq!(again[0]["headers"]["redelivered"], true);
    assert_eq!(
        courier(&b, &["browse", URL, "--queue", "q"]).await.unwrap(),
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sends_all_arrive_in_order_and_stats_shows_the_depth() {
    let b = broker().await;
    let out = courier(
        &b,
        &["send", URL, "--queue", "load", "--count", "5000", "x"],
    )
    .await
    .unwrap();
    assert!(
        out.starts_with("sent 5000 messages to queue://load"),
        "{out}"
    );
    let stats = courier(&b, &["stats", URL, "--queue", "load"])
        .await
        .unwrap();
    assert!(stats.contains("queue load  depth 5000"), "{stats}");
    assert!(stats.contains("consumers     not reported"), "{stats}");
    assert!(stats.contains("provider      "), "{stats}");
    let out = courier(
        &b,
        &[
            "receive", URL, "--queue", "load", "--count", "5000", "--json",
        ],
    )
    .await
    .unwrap();
    let seqs: Vec<i64> = json_lines(&out)
        .iter()
        .map(|m| m["properties"]["courier_seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (0..5000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_empties_a_queue() {
    let b = broker().await;
    courier(&b, &["send", URL, "--queue", "q", "--count", "10", "m"])
        .await
        .unwrap();
    let out = courier(&b, &["purge", URL, "--queue", "q", "--timeout", "100ms"])
        .await
        .unwrap();
    assert_eq!(out, "purged 10 messages from queue://q\n");
    let stats = courier(&b, &["stats", URL, "--queue", "q"]).await.unwrap();
    assert!(stats.contains("queue q  depth 0"), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_a_queue_and_its_messages() {
    let b = broker().await;
    courier(&b, &["send", URL, "--queue", "q", "--count", "3", "m"])
        .await
        .unwrap();
    let out = courier(&b, &["delete", URL, "--queue", "q"]).await.unwrap();
    assert_eq!(out, "deleted queue://q\n");
    let again = courier(&b, &["delete", URL, "--queue", "q"]).await;
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.contains("no such destination")),
        "{again:?}"
    );
    let out = courier(
        &b,
        &[
            "receive",
            URL,
            "--queue",
            "q",
            "--count",
            "1",
            "--timeout",
            "100ms",
        ],
    )
    .await;
    assert!(out.is_err(), "the deleted messages are gone: {out:?}");
    let both = courier(&b, &["delete", URL, "--queue", "q", "--topic", "t"]).await;
    assert!(both.is_err(), "one destination at a time: {both:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_waits_and_an_expired_one_is_never_delivered() {
    let b = broker().await;
    courier(&b, &["send", URL, "--queue", "q", "--ttl", "1ms", "gone"])
        .await
        .unwrap();
    courier(
        &b,
        &["send", URL, "--queue", "q", "--delay", "300ms", "later"],
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let early = courier(&b, &["receive", URL, "--queue", "q", "--timeout", "50ms"])
        .await
        .unwrap();
    assert_eq!(early, "");
    let late = courier(
        &b,
        &[
            "receive",
            URL,
            "--queue",
            "q",
            "--count",
            "1",
            "--timeout",
            "2s",
        ],
    )
    .await
    .unwrap();
    assert_eq!(late, "later\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_refused_before_any_send() {
    let b = broker().await;
    for line in [
        &["send", URL, "--queue", "q", "--priority", "10", "x"][..],
        &["send", URL, "--queue", "q", "--topic", "t", "x"],
        &["send", URL, "x"],
        &["send", URL, "--queue", "q", "--size", "2GiB"],
        &["send", URL, "--queue", "q", "--property", "1bad=x", "x"],
        &["send", URL, "--queue", "q", "--ttl", "forever", "x"],
        &["receive", URL, "--queue", "q", "--durable", "d"],
        &["receive", URL, "--queue", "q", "--ack", "sometimes"],
    ] {
        assert!(courier(&b, line).await.is_err(), "{line:?} accepted");
    }
    let err = courier(
        &b,
        &[
            "receive",
            URL,
            "--queue",
            "q",
            "--selector",
            "a = = b",
            "--timeout",
            "10ms",
        ],
    )
    .await
    .unwrap_err();
    assert!(err.to_lowercase().contains("selector"), "{err}");
    assert_eq!(
        courier(&b, &["browse", URL, "--queue", "q"]).await.unwrap(),
        ""
    );
}
