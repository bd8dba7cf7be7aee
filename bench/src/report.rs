//! Reports: a workload's figures beside its raw-channel ceiling, as a table or as JSON lines.

use serde::Serialize;
use std::fmt::{self, Write as _};

use super::latency::LatencyKind;
use super::measurement::Measurement;

/// A workload measured on one backend, with the raw-channel ceiling of the same run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Workload name.
    pub workload: String,
    /// The backend's URL.
    pub url: String,
    /// The backend's figures.
    pub measured: Measurement,
    /// The same workload over raw channels, if it was run.
    pub ceiling: Option<Measurement>,
}

impl Report {
    /// Backend throughput as a fraction of the ceiling's.
    pub fn ratio(&self) -> Option<f64> {
        let ceiling = self.ceiling.as_ref()?.msgs_per_sec();
        (ceiling > 0.0).then(|| self.measured.msgs_per_sec() / ceiling)
    }

    /// Every message arrived exactly once and in order, on the backend and on the ceiling,
    /// and delivery never stalled.
    pub fn passed(&self) -> bool {
        [Some(&self.measured), self.ceiling.as_ref()]
            .into_iter()
            .flatten()
            .all(|m| m.check.passed() && !m.stalled)
    }

    /// What went wrong, for a report that did not pass.
    pub fn failure(&self) -> Option<String> {
        if self.passed() {
            return None;
        }
        let mut text = format!(
            "workload {} on {} FAILED its delivery check",
            self.workload, self.url
        );
        for (side, m) in [
            ("backend", Some(&self.measured)),
            ("raw channel", self.ceiling.as_ref()),
        ] {
            let Some(m) = m else { continue };
            if !m.check.passed() || m.stalled {
                let stalled = if m.stalled { " (delivery stalled)" } else { "" };
                let _ = write!(text, "\n{side}{stalled}: {}", m.check);
            }
        }
        Some(text)
    }

    /// One line of JSON with the figures of the backend and of the ceiling.
    pub fn to_json(&self) -> String {
        let m = &self.measured;
        let c = self.ceiling.as_ref();
        let latency = m.latency.as_ref();
        let ceiling_latency = c.and_then(|c| c.latency.as_ref());
        let line = JsonLine {
            url: &self.url,
            workload: &self.workload,
            messages: m.messages,
            msgs_per_sec: m.msgs_per_sec().round(),
            p50_us: latency.map(|l| l.p50_us),
            p99_us: latency.map(|l| l.p99_us),
            p999_us: latency.map(|l| l.p999_us),
            max_us: latency.map(|l| l.max_us),
            exactly_once: m.check.exactly_once(),
            in_order: m.check.in_order(),
            stalled: m.stalled,
            latency: m.latency_kind,
            elapsed_ms: m.elapsed.as_secs_f64() * 1e3,
            sent: m.sent,
            sends_per_sec: m.sends_per_sec().round(),
            missing: m.check.missing,
            duplicates: m.check.duplicates,
            reordered: m.check.reordered,
            unexpected: m.check.unexpected,
            rss_bytes_per_message: m.memory.map(|f| f.bytes_per_message().round()),
            memory_source: m.memory.map(|f| f.source.describe()),
            ceiling_msgs_per_sec: c.map(|c| c.msgs_per_sec().round()),
            ceiling_p50_us: ceiling_latency.map(|l| l.p50_us),
            ceiling_p99_us: ceiling_latency.map(|l| l.p99_us),
            ceiling_p999_us: ceiling_latency.map(|l| l.p999_us),
            ceiling_exactly_once: c.map(|c| c.check.exactly_once() && c.check.in_order()),
            ceiling_rss_bytes_per_message: c
                .and_then(|c| c.memory)
                .map(|f| f.bytes_per_message().round()),
            ratio: self.ratio(),
        };
        serde_json::to_string(&line).expect("a report serialises to JSON")
    }

    /// Extra facts a table row cannot hold: memory per message, fill rate, achieved send rate.
    fn note(&self) -> String {
        let m = &self.measured;
        if let Some(memory) = m.memory {
            let ceiling = self
                .ceiling
                .as_ref()
                .and_then(|c| c.memory)
                .map(|c| format!(" (raw channel {:.0} B)", c.bytes_per_message()))
                .unwrap_or_default();
            return format!(
                "{:.0} B per queued message ({}){ceiling}; msgs/s = fill rate",
                memory.bytes_per_message(),
                memory.source.describe()
            );
        }
        match m.latency_kind {
            LatencyKind::ReceiveCall => format!(
                "{} queued (filled at {}/s); latency = receive call",
                group(m.sent as f64),
                group(m.sends_per_sec())
            ),
            _ => format!("sent at {}/s", group(m.sends_per_sec())),
        }
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    url: &'a str,
    workload: &'a str,
    messages: u64,
    msgs_per_sec: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    p999_us: Option<f64>,
    max_us: Option<f64>,
    exactly_once: bool,
    in_order: bool,
    stalled: bool,
    latency: LatencyKind,
    elapsed_ms: f64,
    sent: u64,
    sends_per_sec: f64,
    missing: u64,
    duplicates: u64,
    reordered: u64,
    unexpected: u64,
    /// Bytes per queued message (see `memory_source` for what was read).
    rss_bytes_per_message: Option<f64>,
    /// What memory was read: `resident`, `server resident`, `redis used_memory`.
    memory_source: Option<&'static str>,
    ceiling_msgs_per_sec: Option<f64>,
    ceiling_p50_us: Option<f64>,
    ceiling_p99_us: Option<f64>,
    ceiling_p999_us: Option<f64>,
    ceiling_exactly_once: Option<bool>,
    ceiling_rss_bytes_per_message: Option<f64>,
    ratio: Option<f64>,
}

/// Reports as an aligned text table, one row per workload.
///
/// ```
/// let table = courier_bench::Table(&[]);
/// assert!(table.to_string().starts_with("workload"));
/// ```
pub struct Table<'a>(pub &'a [Report]);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEADER: [&str; 11] = [
            "workload",
            "url",
            "messages",
            "msgs/s",
            "ceiling msgs/s",
            "ratio",
            "p50 µs",
            "p99 µs",
            "p999 µs",
            "exactly_once",
            "notes",
        ];
        let rows: Vec<[String; 11]> = self.0.iter().map(row).collect();
        let width = |i: usize| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([HEADER[i].chars().count()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..HEADER.len()).map(width).collect();
        let line = |f: &mut fmt::Formatter<'_>, cells: [&str; 11]| -> fmt::Result {
            for (i, cell) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                let last = i + 1 == cells.len();
                // Text columns align left, figures (columns 2 to 8) right.
                if !(2..9).contains(&i) {
                    f.write_str(cell)?;
                    if !last {
                        write!(f, "{:pad$}  ", "")?;
                    }
                } else {
                    write!(f, "{:pad$}{cell}  ", "")?;
                }
            }
            writeln!(f)
        };
        line(f, HEADER)?;
        for r in &rows {
            line(f, std::array::from_fn(|i| r[i].as_str()))?;
        }
        Ok(())
    }
}

fn row(report: &Report) -> [String; 11] {
    let m = &report.measured;
    let micros = |v: Option<f64>| v.map(format_us).unwrap_or_else(|| "-".to_owned());
    let latency = m.latency.as_ref();
    let verdict = match (report.passed(), m.check.exactly_once()) {
        (true, _) => "yes".to_owned(),
        (false, true) => "NO (order)".to_owned(),
        (false, false) => "NO".to_owned(),
    };
    [
        report.workload.clone(),
        report.url.clone(),
        group(m.messages as f64),
        group(m.msgs_per_sec()),
        report
            .ceiling
            .as_ref()
            .map(|c| group(c.msgs_per_sec()))
            .unwrap_or_else(|| "-".to_owned()),
        report
            .ratio()
            .map(|r| format!("{r:.2}"))
            .unwrap_or_else(|| "-".to_owned()),
        micros(latency.map(|l| l.p50_us)),
        micros(latency.map(|l| l.p99_us)),
        micros(latency.map(|l| l.p999_us)),
        verdict,
        report.note(),
    ]
}

/// `1234567.8` → `1 234 568`.
fn group(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(d);
    }
    out
}

/// Microseconds with one decimal below 1 000, whole above.
fn format_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.1}")
    } else {
        group(us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckReport;
    use crate::latency::LatencySummary;
    use std::time::Duration;

    fn measurement(messages: u64, millis: u64) -> Measurement {
        Measurement {
            messages,
            elapsed: Duration::from_millis(millis),
            sent: messages,
            send_elapsed: Duration::from_millis(millis),
            latency_kind: LatencyKind::SendToReceive,
            latency: Some(LatencySummary {
                samples: messages,
                mean_us: 2.0,
                p50_us: 1.5,
                p99_us: 12.25,
                p999_us: 1_500.0,
                max_us: 2_000.0,
            }),
            check: CheckReport {
                expected: messages,
                received: messages,
                ..CheckReport::default()
            },
            stalled: false,
            memory: None,
        }
    }

    #[test]
    fn json_lines_carry_the_required_fields() {
        let report = Report {
            workload: "w".into(),
            url: "embedded:".into(),
            measured: measurement(1_000, 500),
            ceiling: Some(measurement(1_000, 100)),
        };
        let v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
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
            assert!(v.get(field).is_some(), "{field}");
        }
        assert_eq!(v["msgs_per_sec"], 2_000.0);
        assert_eq!(v["ratio"], 0.2);
        assert_eq!(v["exactly_once"], true);
        assert!(report.passed() && report.failure().is_none());
    }

    #[test]
    fn tables_align_and_failures_are_loud() {
        let mut bad = measurement(10, 1);
        bad.check.missing = 1;
        let reports = [
            Report {
                workload: "fine".into(),
                url: "embedded:".into(),
                measured: measurement(1_234_567, 1_000),
                ceiling: None,
            },
            Report {
                workload: "broken".into(),
                url: "embedded:".into(),
                measured: bad,
                ceiling: None,
            },
        ];
        let text = Table(&reports).to_string();
        assert!(text.contains("1 234 567"), "{text}");
        assert!(text.contains("1 500"), "{text}");
        assert!(text.lines().nth(2).unwrap().contains("NO"), "{text}");
        assert!(reports[1].failure().unwrap().contains("1 missing"));
        assert_eq!(group(999.0), "999");
        assert_eq!(group(1_000.0), "1 000");
    }
}
