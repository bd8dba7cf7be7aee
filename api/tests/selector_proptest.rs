//! Property tests of the selector engine: it never panics, whatever the text and the message,
//! and its results obey the laws of three-valued logic.

use std::collections::HashMap;

use courier_api::selector::*;
use proptest::prelude::*;

/// A message's properties; absent names are NULL.
#[derive(Debug, Clone, Default)]
struct Props(HashMap<String, SelectorValue>);

impl SelectorSource for Props {
    fn selector_value(&self, identifier: &str) -> Option<SelectorValue> {
        self.0.get(identifier).cloned()
    }
}

/// The identifiers the generators use.
const IDENTS: [&str; 6] = ["a", "b", "c", "s", "flag", "JMSPriority"];

fn value() -> impl Strategy<Value = SelectorValue> {
    prop_oneof![
        any::<bool>().prop_map(SelectorValue::Bool),
        (-3i64..=3).prop_map(SelectorValue::Long),
        prop::sample::select(vec![i64::MIN, i64::MAX, -1, 1 << 53]).prop_map(SelectorValue::Long),
        (-3i32..=3).prop_map(|n| SelectorValue::Double(f64::from(n) / 2.0)),
        prop::sample::select(vec![f64::NAN, f64::INFINITY, -0.0, 1e300])
            .prop_map(SelectorValue::Double),
        "[abc%_'!]{0,4}".prop_map(|s| SelectorValue::String(s.into())),
    ]
}

fn props() -> impl Strategy<Value = Props> {
    prop::collection::hash_map(
        prop::sample::select(IDENTS.to_vec()),
        value(),
        0..IDENTS.len(),
    )
    .prop_map(|map| Props(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

/// Pieces of selector syntax, valid and not, to glue together.
fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a",
        "b",
        "s",
        "flag",
        "JMSPriority",
        "JMSDestination",
        "$x",
        "_y",
        "NOT",
        "not",
        "AND",
        "and",
        "OR",
        "Or",
        "BETWEEN",
        "LIKE",
        "IN",
        "IS",
        "NULL",
        "TRUE",
        "false",
        "ESCAPE",
        "=",
        "<>",
        "<",
        "<=",
        ">",
        ">=",
        "+",
        "-",
        "*",
        "/",
        "(",
        ")",
        ",",
        "'x'",
        "'%a_'",
        "''",
        "'",
        "'!'",
        "0",
        "1",
        "-1",
        "2.5",
        ".5",
        "7.",
        "1e3",
        "1e",
        "0x1F",
        "0x",
        "017",
        "09",
        "1L",
        "1.5F",
        "9223372036854775807",
        "9223372036854775808",
        "1e999",
        "!",
        "é",
        "\u{0}",
    ])
}

fn token_soup() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(token(), 0..24),
        prop::sample::select(vec![" ", "", "  "]),
    )
        .prop_map(|(tokens, separator)| tokens.join(separator))
}

fn string_literal() -> impl Strategy<Value = String> {
    "[abc%_'!]{0,3}".prop_map(|s| format!("'{}'", s.replace('\'', "''")))
}

fn ident() -> impl Strategy<Value = String> {
    prop::sample::select(IDENTS.to_vec()).prop_map(str::to_owned)
}

/// Well-formed numeric expressions.
fn numeric() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        ident(),
        prop::sample::select(vec![
            "0",
            "1",
            "-2",
            "3",
            "0.5",
            "-1.5",
            "1e3",
            "0x10",
            "9223372036854775807",
            "-9223372036854775808",
        ])
        .prop_map(str::to_owned),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["+", "-", "*", "/"]),
                inner.clone()
            )
                .prop_map(|(l, op, r)| format!("{l} {op} {r}")),
            inner.clone().prop_map(|e| format!("-({e})")),
            inner.prop_map(|e| format!("({e})")),
        ]
    })
}

/// Well-formed conditions.
fn condition() -> impl Strategy<Value = String> {
    let comparison = prop_oneof![
        (
            numeric(),
            prop::sample::select(vec!["=", "<>", "<", "<=", ">", ">="]),
            numeric()
        )
            .prop_map(|(l, op, r)| format!("{l} {op} {r}")),
        (
            ident(),
            prop::sample::select(vec!["=", "<>"]),
            string_literal()
        )
            .prop_map(|(i, op, s)| format!("{i} {op} {s}")),
        (string_literal(), ident()).prop_map(|(s, i)| format!("{s} = {i}")),
        (ident(), ident()).prop_map(|(l, r)| format!("{l} = {r}")),
        (
            ident(),
            any::<bool>(),
            prop::collection::vec(string_literal(), 1..4)
        )
            .prop_map(|(i, not, list)| format!(
                "{i} {}IN ({})",
                if not { "NOT " } else { "" },
                list.join(", ")
            )),
        (
            ident(),
            any::<bool>(),
            prop::collection::vec(
                prop::sample::select(vec!["a", "b", "%", "_", "!%", "!_", "!!"]),
                0..5
            ),
            any::<bool>()
        )
            .prop_map(|(i, not, pattern, escape)| format!(
                "{i} {}LIKE '{}'{}",
                if not { "NOT " } else { "" },
                pattern.concat(),
                if escape { " ESCAPE '!'" } else { "" }
            )),
        (numeric(), any::<bool>(), numeric(), numeric()).prop_map(|(e, not, lo, hi)| format!(
            "{e} {}BETWEEN {lo} AND {hi}",
            if not { "NOT " } else { "" }
        )),
        (numeric(), any::<bool>())
            .prop_map(|(e, not)| format!("{e} IS {}NULL", if not { "NOT " } else { "" })),
        ident(),
        prop::sample::select(vec!["TRUE", "FALSE", "flag = TRUE"]).prop_map(str::to_owned),
    ];
    comparison.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["AND", "OR", "and", "or"]),
                inner.clone()
            )
                .prop_map(|(l, op, r)| format!("{l} {op} {r}")),
            inner.clone().prop_map(|c| format!("NOT {c}")),
            inner.prop_map(|c| format!("({c})")),
        ]
    })
}

/// Evaluates a parsed selector in every way the API offers; nothing may panic.
fn exercise(selector: &Selector, props: &Props) -> Option<bool> {
    let result = selector.evaluate(props);
    assert_eq!(selector.matches(props), result == Some(true));
    assert_eq!(selector.is_empty(), selector.text().trim().is_empty());
    let _ = selector.required_equalities();
    let _ = format!("{selector:?}");
    // Display round-trips.
    let reparsed = Selector::parse(&selector.to_string()).expect("display output reparses");
    assert_eq!(reparsed.text(), selector.text());
    assert_eq!(reparsed.evaluate(props), result);
    result
}

/// Parsing either succeeds or reports a position inside the text; never panics.
fn parse_checked(text: &str) -> Option<Selector> {
    match Selector::parse(text) {
        Ok(selector) => {
            assert_eq!(selector.text(), text);
            Some(selector)
        }
        Err(courier_api::Error::InvalidSelector {
            selector,
            position,
            reason,
        }) => {
            assert_eq!(selector, text);
            assert!(
                position <= text.len(),
                "position {position} beyond {text:?}"
            );
            assert!(text.is_char_boundary(position));
            assert!(!reason.is_empty());
            None
        }
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>(), props in props()) {
        if let Some(selector) = parse_checked(&text) {
            exercise(&selector, &props);
        }
    }

    #[test]
    fn selector_like_text_never_panics(
        text in "[abs0-9 '()=<>+*/%_.,eExXL$!-]{0,40}",
        props in props(),
    ) {
        if let Some(selector) = parse_checked(&text) {
            exercise(&selector, &props);
        }
    }

    #[test]
    fn token_soup_never_panics(text in token_soup(), props in props()) {
        if let Some(selector) = parse_checked(&text) {
            exercise(&selector, &props);
        }
    }

    #[test]
    fn well_formed_selectors_parse_and_obey_three_valued_logic(
        text in condition(),
        props in props(),
    ) {
        let selector = Selector::parse(&text)
            .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"));
        let result = exercise(&selector, &props);

        let negated = Selector::parse(&format!("NOT ({text})")).expect("negation parses");
        prop_assert_eq!(negated.evaluate(&props), result.map(|b| !b));
        let both = Selector::parse(&format!("({text}) AND ({text})")).expect("parses");
        prop_assert_eq!(both.evaluate(&props), result);
        let either = Selector::parse(&format!("({text}) OR NOT ({text})")).expect("parses");
        prop_assert_ne!(either.evaluate(&props), Some(false));

        // The index hint is never wrong.
        if result == Some(true) {
            for (name, values) in selector.required_equalities() {
                let actual = props.selector_value(&name);
                prop_assert!(
                    actual.as_ref().is_some_and(|v| values.contains(v)),
                    "{} is TRUE but {} = {:?} is not in {:?}", text, name, actual, values
                );
            }
        }
    }
}

/// One element of a `LIKE` pattern, for the reference matcher.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LikeElement {
    Char(char),
    AnyOne,
    AnyRun,
}

/// The elements of `pattern`, or `None` when it ends with its escape character.
fn like_elements(pattern: &str, escape: Option<char>) -> Option<Vec<LikeElement>> {
    let mut elements = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        elements.push(if Some(c) == escape {
            LikeElement::Char(chars.next()?)
        } else {
            match c {
                '_' => LikeElement::AnyOne,
                '%' => LikeElement::AnyRun,
                other => LikeElement::Char(other),
            }
        });
    }
    Some(elements)
}

/// The textbook LIKE matcher, O(pattern × text): `matched[j]` tells whether the pattern
/// elements read so far match the first `j` characters of the text.
fn reference_like(elements: &[LikeElement], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for element in elements {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match element {
                LikeElement::AnyRun => matched[j] || (j > 0 && next[j - 1]),
                LikeElement::AnyOne => j > 0 && matched[j - 1],
                LikeElement::Char(c) => j > 0 && matched[j - 1] && text[j - 1] == *c,
            };
        }
        matched = next;
    }
    matched[text.len()]
}

/// Up to 300 characters, mostly `a` and `b`, with a few rare multi-byte ones.
fn long_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![40 => Just('a'), 40 => Just('b'), 1 => Just('\u{e9}'), 1 => Just('\u{1F600}')],
        0..300,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// A pattern made from `text`: most characters kept, some turned into `_`, into `%` (with or
/// without the character), or, if `flips`, into another character; so it often matches, in
/// segments long enough for several 64-bit words.
fn pattern_from(text: &str, edits: &[u8], flips: bool) -> String {
    let mut pattern = String::new();
    for (c, edit) in text.chars().zip(edits.iter().chain(std::iter::repeat(&0))) {
        match edit {
            90..=94 => pattern.push('_'),
            95 => pattern.push('%'),
            96 => {
                pattern.push('%');
                pattern.push(c);
            }
            97.. if flips => pattern.push(if c == 'a' { 'b' } else { 'a' }),
            _ => pattern.push(c),
        }
    }
    pattern
}

/// `p [NOT] LIKE 'pattern' [ESCAPE 'escape']` evaluated on `p = text`.
fn like_selector_result(
    pattern: &str,
    escape: Option<char>,
    not: bool,
    text: &str,
) -> Option<Option<bool>> {
    let selector = format!(
        "p {}LIKE '{}'{}",
        if not { "NOT " } else { "" },
        pattern.replace('\'', "''"),
        escape.map_or(String::new(), |e| format!(
            " ESCAPE '{}'",
            e.to_string().replace('\'', "''")
        ))
    );
    let selector = Selector::parse(&selector).ok()?;
    let mut props = Props::default();
    props
        .0
        .insert("p".to_owned(), SelectorValue::String(text.into()));
    Some(selector.evaluate(&props))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Short random patterns over a small alphabet with multi-byte characters and escapes.
    #[test]
    fn like_agrees_with_the_reference_matcher(
        pattern in "[ab\u{e9}\u{2603}%_!']{0,10}",
        text in "[ab\u{e9}\u{2603}%_!']{0,12}",
        escape in prop::option::of(prop::sample::select(vec!['!', '%', '_', 'a', '\u{2603}'])),
        not in any::<bool>(),
    ) {
        let result = like_selector_result(&pattern, escape, not, &text);
        match like_elements(&pattern, escape) {
            None => prop_assert_eq!(result, None, "a dangling escape is a parse error"),
            Some(elements) => {
                let expected = reference_like(&elements, &text) != not;
                prop_assert_eq!(result, Some(Some(expected)), "{:?} on {:?}", pattern, text);
            }
        }
    }

    /// Long patterns derived from the text, so they often match and their segments with `_`
    /// span several 64-bit words.
    #[test]
    fn long_like_patterns_agree_with_the_reference_matcher(
        text in long_text(),
        edits in prop::collection::vec(0u8..100, 0..300),
        flips in any::<bool>(),
        prefix in prop::sample::select(vec!["", "", "%", "_%", "%b"]),
        suffix in prop::sample::select(vec!["", "", "%", "%_", "a%"]),
    ) {
        let pattern = format!("{prefix}{}{suffix}", pattern_from(&text, &edits, flips));
        let elements = like_elements(&pattern, None).expect("no escape");
        let expected = reference_like(&elements, &text);
        prop_assert_eq!(
            like_selector_result(&pattern, None, false, &text),
            Some(Some(expected)),
            "{:?} on {:?}", pattern, text
        );
    }
}
