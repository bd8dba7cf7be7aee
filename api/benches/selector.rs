//! Selector engine costs as inputs grow: parsing long IN lists and AND chains, evaluating IN
//! and ORed equalities, `required_equalities`, and LIKE on long patterns and values.
//!
//! `cargo bench -p courier-api --bench selector`. Each group reports a throughput in elements
//! (list values, conjuncts or text characters), so linear growth shows as a flat throughput
//! across sizes. Add a filter to run one group, e.g. `-- like`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use courier_api::selector::{Selector, SelectorSource, SelectorValue};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};

/// List and chain sizes.
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// One string property, the only thing these selectors look at.
struct OneProperty {
    name: &'static str,
    value: Arc<str>,
}

impl SelectorSource for OneProperty {
    fn selector_value(&self, identifier: &str) -> Option<SelectorValue> {
        (identifier == self.name).then(|| SelectorValue::String(self.value.clone()))
    }
}

/// Builds the selector text of one shape and size.
type SelectorText = fn(usize) -> String;

/// `x IN ('v0', 'v1', …)` with `n` values.
fn in_list(n: usize) -> String {
    let values: Vec<String> = (0..n).map(|i| format!("'v{i}'")).collect();
    format!("x IN ({})", values.join(", "))
}

/// `a0 = 0 AND a1 = 1 AND …`: `n` conjuncts on distinct identifiers.
fn distinct_equalities(n: usize) -> String {
    let conjuncts: Vec<String> = (0..n).map(|i| format!("a{i} = {i}")).collect();
    conjuncts.join(" AND ")
}

/// `a = 1 AND a = 1 AND …`: `n` conjuncts on one identifier.
fn repeated_equalities(n: usize) -> String {
    vec!["a = 1"; n].join(" AND ")
}

/// Two `n`-value IN lists on one identifier, which `required_equalities` intersects.
fn intersected_in_lists(n: usize) -> String {
    let list = in_list(n);
    format!("{list} AND {list}")
}

/// Settings for groups whose single run can take seconds before the fixes: ten runs, no
/// warm-up beyond one, so a before/after comparison finishes.
fn slow_group(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100));
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    slow_group(&mut group);
    let shapes: [(&str, SelectorText); 2] =
        [("in_list", in_list), ("and_chain", distinct_equalities)];
    for (name, build) in shapes {
        for n in SIZES {
            let text = build(n);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(name, n), &text, |b, text| {
                b.iter(|| Selector::parse(black_box(text)).expect("parses"));
            });
        }
    }
    group.finish();
}

fn evaluate_in(c: &mut Criterion) {
    let mut group = c.benchmark_group("evaluate_in");
    for n in SIZES {
        let selector = Selector::parse(&in_list(n)).expect("parses");
        let hit = OneProperty {
            name: "x",
            value: format!("v{}", n / 2).into(),
        };
        let miss = OneProperty {
            name: "x",
            value: "absent".into(),
        };
        group.bench_function(BenchmarkId::new("hit", n), |b| {
            b.iter(|| assert!(selector.matches(black_box(&hit))));
        });
        group.bench_function(BenchmarkId::new("miss", n), |b| {
            b.iter(|| assert!(!selector.matches(black_box(&miss))));
        });
    }
    group.finish();
}

/// `n = 0 OR n = 1 OR …` with `count` terms: what a tuple space's `one_of` on a numeric field
/// sends.
fn numeric_disjunction(count: usize) -> String {
    let terms: Vec<String> = (0..count).map(|i| format!("n = {i}")).collect();
    terms.join(" OR ")
}

/// One numeric property.
struct OneNumber(i64);

impl SelectorSource for OneNumber {
    fn selector_value(&self, identifier: &str) -> Option<SelectorValue> {
        (identifier == "n").then_some(SelectorValue::Long(self.0))
    }
}

fn evaluate_or_equalities(c: &mut Criterion) {
    let mut group = c.benchmark_group("evaluate_or_equalities");
    for n in SIZES {
        let selector = Selector::parse(&numeric_disjunction(n)).expect("parses");
        let hit = OneNumber(n as i64 / 2);
        let miss = OneNumber(-1);
        group.bench_function(BenchmarkId::new("hit", n), |b| {
            b.iter(|| assert!(selector.matches(black_box(&hit))));
        });
        group.bench_function(BenchmarkId::new("miss", n), |b| {
            b.iter(|| assert!(!selector.matches(black_box(&miss))));
        });
    }
    group.finish();
}

fn required_equalities(c: &mut Criterion) {
    let mut group = c.benchmark_group("required_equalities");
    slow_group(&mut group);
    let shapes: [(&str, SelectorText); 3] = [
        ("distinct", distinct_equalities),
        ("repeated", repeated_equalities),
        ("intersected_in", intersected_in_lists),
    ];
    for (name, build) in shapes {
        for n in SIZES {
            let selector = Selector::parse(&build(n)).expect("parses");
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| black_box(selector.required_equalities()));
            });
        }
    }
    group.finish();
}

/// LIKE where a backtracking matcher retries the whole pattern at every text position: a
/// text of `a`s and a pattern of `a`s between `%`s that fails only at its last character.
fn like(c: &mut Criterion) {
    let mut group = c.benchmark_group("like");
    slow_group(&mut group);
    let text_len = 1_000_000;
    let value = OneProperty {
        name: "p",
        value: "a".repeat(text_len).into(),
    };
    let cases = [
        ("literal", 1_000, '%'),
        ("literal", 10_000, '%'),
        ("underscore", 1_000, '_'),
        ("underscore", 10_000, '_'),
    ];
    for (name, pattern_len, middle) in cases {
        // `%aaa…(middle)…aab%`: never matches, the `b` is not in the text.
        let half = "a".repeat(pattern_len / 2 - 1);
        let pattern = format!("%{half}{middle}{half}b%");
        let selector = Selector::parse(&format!("p LIKE '{pattern}'")).expect("parses");
        group.throughput(Throughput::Elements(text_len as u64));
        group.bench_function(
            BenchmarkId::new(name, format!("{pattern_len}x{text_len}")),
            |b| b.iter(|| assert!(!selector.matches(black_box(&value)))),
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    parse,
    evaluate_in,
    evaluate_or_equalities,
    required_equalities,
    like
);
criterion_main!(benches);
