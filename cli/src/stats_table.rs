//! How `courier stats` prints a broker's [`StatsSnapshot`]: broker-wide lines, then one row
//! per destination; with an earlier snapshot, message rates over the interval between them.

use std::fmt::Write as _;
use std::time::Duration;

use courier::broker::{DestinationType, StatsSnapshot};

/// The snapshot as text. `rates`: the earlier snapshot and the time between the two.
pub fn render(
    backend: &str,
    snapshot: &StatsSnapshot,
    rates: Option<&(StatsSnapshot, Duration)>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "backend       {backend}");
    let _ = writeln!(out, "connections   {}", snapshot.connections);
    let percent = if snapshot.memory_limit == 0 {
        0.0
    } else {
        snapshot.memory_used as f64 * 100.0 / snapshot.memory_limit as f64
    };
    let _ = writeln!(
        out,
        "memory        {} of {} ({percent:.1}%), {} message copies held, {} dropped",
        bytes(snapshot.memory_used),
        bytes(snapshot.memory_limit),
        snapshot.stored_messages,
        snapshot.dropped_messages
    );
    let _ = match snapshot.resident_bytes {
        Some(rss) => writeln!(out, "resident      {} (the broker process)", bytes(rss)),
        None => writeln!(
            out,
            "resident      not reported: the broker's platform does not tell it"
        ),
    };
    match &snapshot.store {
        Some(s) => {
            let mean_ms = |n: u64, d: u64| {
                if d == 0 {
                    0.0
                } else {
                    n as f64 / d as f64 / 1e6
                }
            };
            let _ = writeln!(
                out,
                "journal       {} fsyncs, mean {:.2} ms, max {:.2} ms; {} batches, mean {:.1} records; {} written",
                s.fsyncs,
                mean_ms(s.fsync_nanos, s.fsyncs),
                s.fsync_max_nanos as f64 / 1e6,
                s.batches,
                if s.batches == 0 { 0.0 } else { s.records as f64 / s.batches as f64 },
                bytes(s.bytes)
            );
        }
        None => {
            let _ = writeln!(out, "journal       none (in memory: nothing on disk)");
        }
    }
    if let Some(s) = &snapshot.store {
        let _ = writeln!(
            out,
            "disk          {} in {} journal segments",
            bytes(s.disk_bytes),
            s.segments
        );
    }
    if rates.is_none() {
        let _ = writeln!(
            out,
            "rates         not reported: counters only (add --interval 1s for rates)"
        );
    }
    let _ = writeln!(out, "destinations  {}", snapshot.destinations.len());
    let mut rows = vec![vec![
        "TYPE".to_owned(),
        "NAME".to_owned(),
        "DEPTH".to_owned(),
        "UNACKED".to_owned(),
        "CONSUMERS".to_owned(),
        "IN".to_owned(),
        "OUT".to_owned(),
        "REDELIVERED".to_owned(),
        "DEAD-LETTERED".to_owned(),
    ]];
    if rates.is_some() {
        rows[0].extend(["IN/S".to_owned(), "OUT/S".to_owned()]);
    }
    for d in &snapshot.destinations {
        let mut row = vec![
            match d.kind {
                DestinationType::Queue => "queue".to_owned(),
                DestinationType::Topic => "topic".to_owned(),
            },
            d.name.clone(),
            d.depth.to_string(),
            d.unacked.to_string(),
            d.consumers.to_string(),
            d.messages_in.to_string(),
            d.messages_out.to_string(),
            d.redelivered.to_string(),
            d.dead_lettered.to_string(),
        ];
        if let Some((earlier, interval)) = rates {
            let before = earlier.destination(d.kind, &d.name);
            let rate = |now: u64, then: Option<u64>| {
                let secs = interval.as_secs_f64().max(1e-9);
                format!("{:.1}", now.saturating_sub(then.unwrap_or(0)) as f64 / secs)
            };
            row.push(rate(d.messages_in, before.map(|b| b.messages_in)));
            row.push(rate(d.messages_out, before.map(|b| b.messages_out)));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// `n` bytes in a readable unit.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier::broker::DestinationStats;

    fn snapshot(messages_in: u64) -> StatsSnapshot {
        StatsSnapshot {
            destinations: vec![DestinationStats {
                name: "orders".into(),
                kind: DestinationType::Queue,
                depth: 3,
                unacked: 1,
                consumers: 2,
                subscriptions: 0,
                messages_in,
                messages_out: 4,
                redelivered: 1,
                dead_lettered: 0,
            }],
            connections: 5,
            memory_used: 2048,
            memory_limit: 4096,
            stored_messages: 4,
            dropped_messages: 0,
            store: None,
            resident_bytes: None,
        }
    }

    #[test]
    fn rows_show_the_figures_and_rates_come_from_two_snapshots() {
        let text = render("embedded", &snapshot(7), None);
        assert!(text.contains("connections   5"), "{text}");
        assert!(text.contains("2.0 KiB of 4.0 KiB (50.0%)"), "{text}");
        let row = text.lines().find(|l| l.starts_with("queue")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            ["queue", "orders", "3", "1", "2", "7", "4", "1", "0"]
        );
        assert!(text.contains("rates         not reported"));
        let text = render(
            "embedded",
            &snapshot(27),
            Some(&(snapshot(7), Duration::from_secs(2))),
        );
        let row = text.lines().find(|l| l.starts_with("queue")).unwrap();
        assert!(row.ends_with("10.0  0.0"), "{row}");
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(512 << 20), "512.0 MiB");
    }
}
