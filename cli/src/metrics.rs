//! `courier serve --metrics ADDR`: the broker's [`StatsSnapshot`] in the Prometheus text
//! exposition format (version 0.0.4) at `GET /metrics`.
//!
//! The HTTP side is a minimal HTTP/1.1 responder written here rather than hyper/axum plus
//! `prometheus-client`: it answers one fixed GET with a freshly encoded snapshot and closes
//! the connection, which needs neither routing, keep-alive, chunking nor a metrics registry
//! (the figures already live in the broker; a registry would copy them into a second set of
//! atomics on every scrape), and it keeps some forty crates out of the build. It is bounded
//! against hostile peers: request heads of at most [`MAX_HEAD`] bytes, [`READ_TIMEOUT`] to
//! send them, at most [`MAX_SCRAPES`] scrapes at once; anything else is answered 400, 404 or
//! 405.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use courier_broker::{Broker, DestinationType, StatsSnapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The address `--metrics` takes without a value: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9090";

/// The longest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// Time a scraper has to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Scrapes answered at once; more wait for a place.
const MAX_SCRAPES: usize = 32;

/// Serves the metrics of `broker` on `listener` until the runtime stops.
pub async fn serve(listener: TcpListener, broker: Broker) {
    let places = Arc::new(Semaphore::new(MAX_SCRAPES));
    loop {
        let Ok(place) = places.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let broker = broker.clone();
        tokio::spawn(async move {
            let _place = place;
            if let Err(e) = answer(stream, &broker).await {
                tracing::debug!(error = %e, "metrics: scrape failed");
            }
        });
    }
}

/// Reads one request head and answers it.
async fn answer(mut stream: TcpStream, broker: &Broker) -> std::io::Result<()> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await;
    let (status, body) = match head {
        Ok(Ok(Some(head))) => respond(&head, broker),
        Ok(Ok(None)) => (
            "400 Bad Request",
            "request head too large or cut\n".to_owned(),
        ),
        Ok(Err(e)) => return Err(e),
        Err(_) => ("408 Request Timeout", "no request in time\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The request head up to its blank line; `None` when it is longer than [`MAX_HEAD`] or
/// the peer stops before its end.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return Ok(Some(String::from_utf8_lossy(&head).into_owned()));
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

/// The status and body for a request head.
fn respond(head: &str, broker: &Broker) -> (&'static str, String) {
    let mut words = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => ("200 OK", encode(&broker.snapshot())),
        ("GET", _) => ("404 Not Found", "metrics are at /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "only GET /metrics\n".to_owned()),
    }
}

/// A label value escaped as the text format wants (backslash, quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The snapshot in the Prometheus text exposition format.
pub fn encode(s: &StatsSnapshot) -> String {
    let mut out = String::new();
    type Field = fn(&courier_broker::DestinationStats) -> u64;
    let per_destination: [(&str, &str, &str, Field); 7] = [
        (
            "courier_destination_depth",
            "gauge",
            "Messages stored (ready or delayed).",
            |d| d.depth,
        ),
        (
            "courier_destination_unacked",
            "gauge",
            "Messages delivered and not acknowledged.",
            |d| d.unacked,
        ),
        (
            "courier_destination_consumers",
            "gauge",
            "Consumers attached.",
            |d| d.consumers,
        ),
        (
            "courier_destination_messages_in_total",
            "counter",
            "Messages stored in the destination.",
            |d| d.messages_in,
        ),
        (
            "courier_destination_messages_out_total",
            "counter",
            "Deliveries to consumers, redeliveries included.",
            |d| d.messages_out,
        ),
        (
            "courier_destination_redelivered_total",
            "counter",
            "Deliveries of a message delivered before.",
            |d| d.redelivered,
        ),
        (
            "courier_destination_dead_lettered_total",
            "counter",
            "Messages moved to the dead-letter queue.",
            |d| d.dead_lettered,
        ),
    ];
    for (name, kind, help, field) in per_destination {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for d in &s.destinations {
            let kind = match d.kind {
                DestinationType::Queue => "queue",
                DestinationType::Topic => "topic",
            };
            let _ = writeln!(
                out,
                "{name}{{type=\"{kind}\",name=\"{}\"}} {}",
                label(&d.name),
                field(d)
            );
        }
    }
    let gauges = [
        (
            "courier_connections",
            "gauge",
            "Connections open.",
            Some(s.connections),
        ),
        (
            "courier_memory_used_bytes",
            "gauge",
            "Bytes charged for stored messages.",
            Some(s.memory_used),
        ),
        (
            "courier_memory_limit_bytes",
            "gauge",
            "The broker-wide memory limit.",
            Some(s.memory_limit),
        ),
        (
            "courier_stored_messages",
            "gauge",
            "Message copies held.",
            Some(s.stored_messages),
        ),
        (
            "courier_dropped_messages_total",
            "counter",
            "Messages dropped by drop-oldest policies.",
            Some(s.dropped_messages),
        ),
        (
            "courier_process_resident_bytes",
            "gauge",
            "The broker process's resident memory.",
            s.resident_bytes,
        ),
        (
            "courier_journal_written_bytes_total",
            "counter",
            "Bytes the journal wrote.",
            s.store.map(|j| j.bytes),
        ),
        (
            "courier_journal_disk_bytes",
            "gauge",
            "Bytes the journal's segment files take on disk.",
            s.store.map(|j| j.disk_bytes),
        ),
        (
            "courier_journal_segments",
            "gauge",
            "Segment files making up the journal.",
            s.store.map(|j| j.segments),
        ),
    ];
    for (name, kind, help, value) in gauges {
        if let Some(value) = value {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
    if let Some(j) = &s.store {
        let name = "courier_journal_fsync_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time of the journal's fdatasync calls.\n# TYPE {name} summary\n\
             {name}_sum {}\n{name}_count {}",
            j.fsync_nanos as f64 / 1e9,
            j.fsyncs
        );
        let name = "courier_journal_batch_records";
        let _ = writeln!(
            out,
            "# HELP {name} Records per journal batch (one fdatasync each).\n# TYPE {name} summary\n\
             {name}_sum {}\n{name}_count {}",
            j.records, j.batches
        );
        let name = "courier_journal_fsync_max_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} The longest fdatasync so far.\n# TYPE {name} gauge\n{name} {}",
            j.fsync_max_nanos as f64 / 1e9
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_broker::{DestinationStats, StoreStats};

    #[test]
    fn the_snapshot_encodes_as_prometheus_text_with_escaped_labels() {
        let snapshot = StatsSnapshot {
            destinations: vec![DestinationStats {
                name: "we\"ird\\name".into(),
                kind: DestinationType::Topic,
                depth: 3,
                unacked: 0,
                consumers: 1,
                subscriptions: 1,
                messages_in: 9,
                messages_out: 6,
                redelivered: 2,
                dead_lettered: 1,
            }],
            connections: 2,
            memory_used: 100,
            memory_limit: 1000,
            stored_messages: 3,
            dropped_messages: 0,
            store: Some(StoreStats {
                fsyncs: 4,
                fsync_nanos: 2_000_000,
                fsync_max_nanos: 1_000_000,
                batches: 4,
                records: 10,
                bytes: 500,
                disk_bytes: 4096,
                segments: 1,
            }),
            resident_bytes: Some(1 << 20),
        };
        let text = encode(&snapshot);
        assert!(text
            .contains("courier_destination_depth{type=\"topic\",name=\"we\\\"ird\\\\name\"} 3\n"));
        assert!(text.contains("courier_destination_dead_lettered_total{type=\"topic\",name=\"we\\\"ird\\\\name\"} 1\n"));
        assert!(text.contains("# TYPE courier_connections gauge\ncourier_connections 2\n"));
        assert!(text.contains(
            "courier_journal_fsync_seconds_sum 0.002\ncourier_journal_fsync_seconds_count 4\n"
        ));
        assert!(text.contains("courier_journal_batch_records_sum 10\n"));
        assert!(text.contains("courier_journal_disk_bytes 4096\n"));
        assert!(text.contains("courier_process_resident_bytes 1048576\n"));
        // Every sample line is `name{labels} value` or `name value`, value a number.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn requests_other_than_get_metrics_are_refused() {
        let broker = Broker::default();
        assert_eq!(respond("GET /metrics HTTP/1.1", &broker).0, "200 OK");
        assert_eq!(respond("GET /metrics?x=1 HTTP/1.0", &broker).0, "200 OK");
        assert_eq!(respond("GET / HTTP/1.1", &broker).0, "404 Not Found");
        assert_eq!(
            respond("POST /metrics HTTP/1.1", &broker).0,
            "405 Method Not Allowed"
        );
        assert_eq!(respond("", &broker).0, "405 Method Not Allowed");
    }
}
