//! End-to-end tests of the selector language through the public API.

use std::collections::HashMap;

use super::{Selector, SelectorSource, SelectorValue};
use crate::Error;

/// A property set for tests.
#[derive(Default)]
struct Props(HashMap<&'static str, SelectorValue>);

impl Props {
    fn with(mut self, name: &'static str, value: SelectorValue) -> Self {
        self.0.insert(name, value);
        self
    }
}

impl SelectorSource for Props {
    fn selector_value(&self, identifier: &str) -> Option<SelectorValue> {
        self.0.get(identifier).cloned()
    }
}

fn string(text: &str) -> SelectorValue {
    SelectorValue::String(text.into())
}

/// The properties most tests use.
fn sample() -> Props {
    Props::default()
        .with("i", SelectorValue::Long(5))
        .with("d", SelectorValue::Double(2.5))
        .with("s", string("abc"))
        .with("one", string("1"))
        .with("t", SelectorValue::Bool(true))
        .with("f", SelectorValue::Bool(false))
        .with("big", SelectorValue::Long(i64::MAX))
        .with("min", SelectorValue::Long(i64::MIN))
}

fn eval(selector: &str, props: &Props) -> Option<bool> {
    Selector::parse(selector)
        .unwrap_or_else(|e| panic!("{selector:?} should parse: {e}"))
        .evaluate(props)
}

/// Evaluates against [`sample`].
fn check(selector: &str) -> Option<bool> {
    eval(selector, &sample())
}

/// Asserts `selector` evaluates to `expected` against [`sample`].
#[track_caller]
fn assert_eval(selector: &str, expected: Option<bool>) {
    assert_eq!(check(selector), expected, "{selector}");
}

/// The position and reason of the parse error for `selector`.
#[track_caller]
fn parse_error(selector: &str) -> (usize, String) {
    match Selector::parse(selector) {
        Ok(parsed) => panic!("{selector:?} parsed: {parsed:?}"),
        Err(Error::InvalidSelector {
            selector: text,
            position,
            reason,
        }) => {
            assert_eq!(text, selector);
            assert!(position <= selector.len());
            (position, reason)
        }
        Err(other) => panic!("wrong error kind: {other}"),
    }
}

#[track_caller]
fn assert_error(selector: &str, position: usize, reason_part: &str) {
    let (actual_position, reason) = parse_error(selector);
    assert_eq!(actual_position, position, "{selector:?}: {reason}");
    assert!(
        reason.contains(reason_part),
        "{selector:?}: {reason:?} lacks {reason_part:?}"
    );
}

const T: Option<bool> = Some(true);
const F: Option<bool> = Some(false);
const U: Option<bool> = None;

#[test]
fn empty_selector_matches_everything() {
    for text in ["", "   ", "\t\n "] {
        let selector = Selector::parse(text).expect("empty parses");
        assert!(selector.is_empty());
        assert_eq!(selector.text(), text);
        assert_eq!(selector.evaluate(&Props::default()), T);
        assert!(selector.matches(&sample()));
        assert!(selector.required_equalities().is_empty());
    }
    assert!(!Selector::parse("TRUE").expect("parses").is_empty());
}

#[test]
fn text_display_and_from_str_keep_the_original() {
    let text = "  color = 'red'  AND size>3 ";
    let selector: Selector = text.parse().expect("parses");
    assert_eq!(selector.text(), text);
    assert_eq!(selector.to_string(), text);
    assert_eq!(
        Selector::parse(&selector.to_string())
            .expect("reparses")
            .text(),
        text
    );
    let clone = selector.clone();
    assert_eq!(clone.text(), text);
    assert!("a =".parse::<Selector>().is_err());
}

#[test]
fn selector_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    assert_send_sync::<Selector>();
}

#[test]
fn boolean_literals() {
    assert_eval("TRUE", T);
    assert_eval("FALSE", F);
    assert_eval("true", T);
    assert_eval("NOT FALSE", T);
    assert_eval("TRUE = TRUE", T);
    assert_eval("TRUE <> FALSE", T);
    assert_eval("t = TRUE", T);
    assert_eval("TRUE = t", T);
    assert_eval("(i = 5) = TRUE", T);
    assert_eval("(i = 5) <> (s = 'abc')", F);
}

/// JMS §3.8.1.1: NULL is no value, it appears only in `IS [NOT] NULL`; the TCK requires
/// `NULL = 0`, `a = NULL` and `NULL` alone to be invalid selectors.
#[test]
fn null_is_only_allowed_after_is() {
    for (selector, position) in [
        ("NULL", 0),
        ("null", 0),
        ("NULL = 0", 0),
        ("a = NULL", 4),
        ("NULL = NULL", 0),
        ("s <> NULL", 5),
        ("NULL IS NULL", 0),
        ("NOT NULL", 4),
        ("NULL AND a = 1", 0),
        ("a = 1 OR NULL", 9),
        ("NULL IN ('a')", 0),
        ("NULL LIKE 'a'", 0),
        ("NULL + 1 = 1", 0),
        ("i * NULL = 0", 4),
        ("-NULL = 1", 1),
        ("(NULL) IS NULL", 1),
        ("i BETWEEN NULL AND 10", 10),
        ("i BETWEEN 1 AND NULL", 16),
    ] {
        assert_error(selector, position, "NULL is not a value");
    }
    assert_error(
        "s IN ('a', NULL)",
        11,
        "expected a string literal in the IN list",
    );
    // The valid forms.
    assert_eval("x IS NULL", T);
    assert_eval("x IS NOT NULL", F);
    assert_eval("i is not null", T);
    assert_eval("NOT x IS NULL AND i IS NOT NULL", F);
}

/// A boolean literal or condition compared with a number or a string can never be TRUE; the
/// TCK requires `TRUE = 0` to be an invalid selector.
#[test]
fn booleans_compare_only_with_booleans() {
    assert_error("TRUE = 0", 7, "'=' cannot compare a boolean with a number");
    assert_error("FALSE = 0", 8, "'=' cannot compare a boolean with a number");
    assert_error("0 = TRUE", 4, "'=' cannot compare a boolean with a number");
    assert_error(
        "TRUE <> 1.5",
        8,
        "'<>' cannot compare a boolean with a number",
    );
    assert_error("TRUE = i + 1", 7, "cannot compare a boolean with a number");
    assert_error("TRUE = 'true'", 7, "cannot compare a boolean with a string");
    assert_error("'x' <> FALSE", 7, "cannot compare a boolean with a string");
    assert_error("(i = 5) = 1", 10, "cannot compare a boolean with a number");
    assert_error(
        "(s LIKE 'a%') = 'a'",
        16,
        "cannot compare a boolean with a string",
    );
    assert_error(
        "t = 1 AND TRUE = 0",
        17,
        "cannot compare a boolean with a number",
    );
    // Ordering a boolean is refused as before.
    assert_error("TRUE < 1", 0, "'<' needs numeric operands, found a boolean");
    assert_error(
        "1 >= FALSE",
        5,
        "'>=' needs numeric operands, found a boolean",
    );
    // Booleans with booleans or identifiers stay valid.
    assert_eval("TRUE = FALSE", F);
    assert_eval("flag = TRUE", U);
    assert_eval("t = FALSE", F);
    assert_eval("TRUE", T);
    assert_eval("NOT FALSE", T);
    assert_eval("t = f", F);
}

/// What else the types tell at parse time. The specification makes a comparison of unlike
/// types FALSE rather than an error, so a string literal compared with a number parses.
#[test]
fn other_static_type_checks() {
    assert_eval("'1' = 1", F);
    assert_eval("'1' <> 1", F);
    assert_eval("1 = 'a'", F);
    assert_error(
        "'a' + 1 = 1",
        0,
        "'+' needs numeric operands, found a string",
    );
    assert_error(
        "1 - 'a' = 1",
        4,
        "'-' needs numeric operands, found a string",
    );
    assert_error(
        "TRUE + 1 = 2",
        0,
        "'+' needs numeric operands, found a boolean",
    );
    assert_error("-FALSE = 1", 0, "unary '-' needs numeric operands");
    assert_error("1 LIKE '1'", 0, "LIKE needs an identifier on its left");
    assert_error("'a' LIKE 'a'", 0, "LIKE needs an identifier on its left");
    assert_error("TRUE LIKE 'a'", 0, "LIKE needs an identifier on its left");
    assert_error("1 IN ('1')", 0, "IN needs an identifier on its left");
    assert_error("'a' BETWEEN 1 AND 2", 0, "BETWEEN needs numeric operands");
    assert_error("i BETWEEN 'a' AND 2", 10, "BETWEEN needs numeric operands");
    assert_error("TRUE BETWEEN 1 AND 2", 0, "found a boolean");
}

#[test]
fn three_valued_truth_tables() {
    let props = sample(); // t is TRUE, f is FALSE, u is absent (UNKNOWN as a condition)
    let truth = |name: &str| match name {
        "t" => T,
        "f" => F,
        _ => U,
    };
    for a in ["t", "f", "u"] {
        let not = truth(a).map(|b| !b);
        assert_eq!(eval(&format!("NOT {a}"), &props), not, "NOT {a}");
        for b in ["t", "f", "u"] {
            let and = match (truth(a), truth(b)) {
                (F, _) | (_, F) => F,
                (T, T) => T,
                _ => U,
            };
            let or = match (truth(a), truth(b)) {
                (T, _) | (_, T) => T,
                (F, F) => F,
                _ => U,
            };
            assert_eq!(eval(&format!("{a} AND {b}"), &props), and, "{a} AND {b}");
            assert_eq!(eval(&format!("{a} OR {b}"), &props), or, "{a} OR {b}");
            assert_eq!(
                eval(&format!("NOT ({a} AND {b})"), &props),
                and.map(|x| !x),
                "NOT ({a} AND {b})"
            );
        }
    }
}

#[test]
fn only_true_selects() {
    let props = sample();
    for (text, matches) in [("i = 5", true), ("i = 6", false), ("nothing = 1", false)] {
        assert_eq!(
            Selector::parse(text).expect("parses").matches(&props),
            matches,
            "{text}"
        );
    }
}

#[test]
fn null_in_comparisons_and_arithmetic() {
    for selector in [
        "x = 1",
        "x <> 1",
        "x < 1",
        "NOT (x = 1)",
        "x = x",
        "x + 1 = 1",
        "-x = 1",
        "i + x > 0",
        "i * x = 0",
        "x = 'abc'",
        "x = TRUE",
        "x",
        "NOT x",
    ] {
        assert_eval(selector, U);
    }
    // FALSE wins over UNKNOWN in AND, TRUE in OR.
    assert_eval("x = 1 AND i = 6", F);
    assert_eval("x = 1 OR i = 5", T);
    assert_eval("x = 1 OR i = 6", U);
}

#[test]
fn numeric_comparisons() {
    for (selector, expected) in [
        ("i = 5", T),
        ("i <> 5", F),
        ("i < 6", T),
        ("i <= 5", T),
        ("i > 5", F),
        ("i >= 5", T),
        ("d > 2", T),
        ("d < 2.6", T),
        ("i = 5.0", T),
        ("5 = i", T),
        ("d = 2.5", T),
        ("i > d", T),
        ("big > 9223372036854775806", T),
        ("big = 9223372036854775807", T),
        ("min = -9223372036854775808", T),
        ("min < -9223372036854775807", T),
        ("-i = -5", T),
        ("- -i = 5", T),
        ("+i = 5", T),
        ("-d = -2.5", T),
    ] {
        assert_eval(selector, expected);
    }
}

#[test]
fn arithmetic_and_precedence() {
    for (selector, expected) in [
        ("1 + 2 * 3 = 7", T),
        ("(1 + 2) * 3 = 9", T),
        ("10 - 4 - 3 = 3", T),
        ("100 / 10 / 5 = 2", T),
        ("2 - -3 = 5", T),
        ("-2 * -3 = 6", T),
        ("i / 2 = 2", T),
        ("-i / 2 = -2", T),
        ("i / 2.0 = 2.5", T),
        ("i * d = 12.5", T),
        ("i * 2 - 3 = 7", T),
        ("i + 1 > 5", T),
        ("1 + 2 * 3 - 4 / 2 = 5", T),
        ("7E3 = 7000", T),
        ("0x1F = 31", T),
        ("017 = 15", T),
        ("31L = 31", T),
        ("1.5F = 1.5", T),
        (".5 + 7. = 7.5", T),
        ("1.5e-3 * 1000 = 1.5", T),
        ("-9223372036854775808 < 0", T),
    ] {
        assert_eval(selector, expected);
    }
}

#[test]
fn division_by_zero_and_overflow() {
    assert_eval("i / 0 = 0", U);
    assert_eval("NOT (i / 0 = 0)", U);
    assert_eval("(i - 5) / (i - 5) = 1", U);
    assert_eval("i / 0.0 > 1000", T);
    assert_eval("-i / 0.0 < -1000", T);
    // Overflowing long arithmetic continues in double instead of wrapping.
    assert_eval("big + 1 = 9223372036854775808.0", T);
    assert_eval("big * 2 > 0", T);
    assert_eval("min - 1 < 0", T);
    assert_eval("-min > 0", T);
    assert_eval("min / -1 > 0", T);
    assert_eval("- -9223372036854775808 > 0", T);
}

#[test]
fn arithmetic_on_non_numbers_is_unknown() {
    for selector in [
        "s + 1 = 1",
        "t * 2 = 2",
        "-s = 1",
        "+t = 1",
        "i + s > 0",
        "one + 1 = 2",
    ] {
        assert_eval(selector, U);
    }
}

#[test]
fn unlike_types_compare_false() {
    for selector in [
        "one = 1",
        "one <> 1",
        "1 = one",
        "i = 'abc'",
        "i <> 'abc'",
        "t = 1",
        "t = 'true'",
        "s = TRUE",
        "s <> FALSE",
        "i = t",
        "i < one",
        "one >= i",
        "'1' = 1",
    ] {
        assert_eval(selector, F);
    }
    // ... so their negation selects.
    assert_eval("NOT (one = 1)", T);
    assert_eval("NOT (one <> 1)", T);
}

#[test]
fn strings_and_booleans_compare_only_for_equality() {
    assert_eval("s = 'abc'", T);
    assert_eval("s = 'ABC'", F);
    assert_eval("s <> 'abd'", T);
    assert_eval("'abc' = s", T);
    assert_eval("s = one", F);
    assert_eval("t = TRUE", T);
    assert_eval("f = FALSE", T);
    assert_eval("t <> f", T);
    assert_eval("t = f", F);
    // Ordering between two identifiers is only known at run time: UNKNOWN.
    assert_eval("s < one", U);
    assert_eval("s >= s", U);
    assert_eval("t > f", U);
    // With a string or boolean literal it can never hold, so it does not parse.
    assert_error("s > 'a'", 4, "'>' needs numeric operands, found a string");
    assert_error("'a' <= s", 0, "'<=' needs numeric operands, found a string");
    assert_error("t < TRUE", 4, "found a boolean");
    assert_error("(i = 1) < 2", 0, "found a boolean");
}

#[test]
fn quotes_and_unicode_in_strings() {
    let props = Props::default()
        .with("name", string("it's"))
        .with("città", string("naïve ☃"));
    assert_eq!(eval("name = 'it''s'", &props), T);
    assert_eq!(eval("città = 'naïve ☃'", &props), T);
    assert_eq!(eval("città LIKE 'na_ve _'", &props), T);
}

#[test]
fn boolean_identifiers_as_conditions() {
    assert_eval("t", T);
    assert_eval("f", F);
    assert_eval("NOT t", F);
    assert_eval("t AND i = 5", T);
    assert_eval("f OR i = 5", T);
    assert_eval("t AND f", F);
    assert_eval("(t)", T);
    // Non-boolean values used as conditions are UNKNOWN.
    assert_eval("s", U);
    assert_eval("i", U);
    assert_eval("NOT s", U);
    assert_eval("s OR t", T);
    assert_eval("s AND t", U);
    assert_eval("(i = 5) = TRUE", T);
    assert_eval("(i = 6) = t", F);
}

#[test]
fn between() {
    for (selector, expected) in [
        ("i BETWEEN 1 AND 10", T),
        ("i BETWEEN 5 AND 5", T),
        ("i BETWEEN 6 AND 10", F),
        ("i BETWEEN 10 AND 1", F),
        ("i NOT BETWEEN 1 AND 10", F),
        ("i NOT BETWEEN 6 AND 10", T),
        ("d BETWEEN 2 AND 3", T),
        ("d BETWEEN 2.5 AND 2.5", T),
        ("i BETWEEN 4.5 AND 5.5", T),
        ("i BETWEEN 2 * 2 AND 3 + 3", T),
        ("i + 1 BETWEEN 6 AND 6", T),
        ("-i BETWEEN -10 AND 0", T),
        ("x BETWEEN 1 AND 10", U),
        ("x NOT BETWEEN 1 AND 10", U),
        ("i BETWEEN 1 AND x", U),
        ("i BETWEEN 6 AND x", F),
        ("i NOT BETWEEN 6 AND x", T),
        ("i BETWEEN x AND 10", U),
        // Unlike types: FALSE, so NOT BETWEEN is TRUE.
        ("s BETWEEN 1 AND 10", F),
        ("s NOT BETWEEN 1 AND 10", T),
        ("i BETWEEN 1 AND 10 AND s = 'abc'", T),
        ("i between 1 and 10 or FALSE", T),
    ] {
        assert_eval(selector, expected);
    }
    assert_error("'a' BETWEEN 1 AND 2", 0, "BETWEEN needs numeric operands");
    assert_error("i BETWEEN 'a' AND 2", 10, "BETWEEN needs numeric operands");
    assert_error("i BETWEEN 1 AND TRUE", 16, "BETWEEN needs numeric operands");
    assert_error(
        "i BETWEEN 1 OR 2",
        12,
        "expected AND in BETWEEN, found 'OR'",
    );
    assert_error(
        "i BETWEEN 1",
        11,
        "expected AND in BETWEEN, found end of selector",
    );
}

#[test]
fn in_lists() {
    for (selector, expected) in [
        ("s IN ('abc')", T),
        ("s IN ('x', 'abc', 'y')", T),
        ("s IN ('x', 'y')", F),
        ("s IN ('ABC')", F),
        ("s NOT IN ('x', 'y')", T),
        ("s NOT IN ('abc', 'y')", F),
        ("s IN ('abc', 'abc')", T),
        ("x IN ('a')", U),
        ("x NOT IN ('a')", U),
        // Non-string values: UNKNOWN either way.
        ("i IN ('5')", U),
        ("i NOT IN ('5')", U),
        ("t IN ('TRUE')", U),
        ("s in ('abc') and i = 5", T),
    ] {
        assert_eval(selector, expected);
    }
    let props = Props::default().with("q", string("it's"));
    assert_eq!(eval("q IN ('its', 'it''s')", &props), T);
    assert_eq!(eval("q IN ('')", &props), F);
    assert_eq!(
        eval("q IN ('')", &Props::default().with("q", string(""))),
        T
    );

    assert_error(
        "s IN (1, 2)",
        6,
        "expected a string literal in the IN list, found numeric literal",
    );
    assert_error(
        "s IN ('a', b)",
        11,
        "expected a string literal in the IN list",
    );
    assert_error(
        "s IN ()",
        6,
        "expected a string literal in the IN list, found ')'",
    );
    assert_error("s IN ('a' 'b')", 10, "expected ',' or ')' in the IN list");
    assert_error(
        "s IN ('a',)",
        10,
        "expected a string literal in the IN list",
    );
    assert_error(
        "s IN ('a'",
        9,
        "expected ',' or ')' in the IN list, found end of selector",
    );
    assert_error("s IN 'a'", 5, "expected '(' after IN");
    assert_error("'abc' IN ('abc')", 0, "IN needs an identifier on its left");
    assert_error("i + 1 IN ('a')", 0, "IN needs an identifier on its left");
    assert_error("s IN (NULL)", 6, "expected a string literal in the IN list");
}

#[test]
fn like() {
    let props = |value: &str| Props::default().with("v", string(value));
    let cases = [
        // The specification's examples.
        ("v LIKE '12%3'", "123", T),
        ("v LIKE '12%3'", "12993", T),
        ("v LIKE '12%3'", "1234", F),
        ("v LIKE 'l_se'", "lose", T),
        ("v LIKE 'l_se'", "loose", F),
        ("v LIKE '\\_%' ESCAPE '\\'", "_foo", T),
        ("v LIKE '\\_%' ESCAPE '\\'", "bar", F),
        ("v NOT LIKE '12%3'", "123", F),
        ("v NOT LIKE '12%3'", "1234", T),
        // Edge cases.
        ("v LIKE ''", "", T),
        ("v LIKE ''", "a", F),
        ("v LIKE '%'", "", T),
        ("v LIKE '_'", "", F),
        ("v LIKE '_'", "☃", T),
        ("v LIKE '%%'", "x", T),
        ("v LIKE 'a%b%c'", "aXbYc", T),
        ("v LIKE 'a%b%c'", "abcb", F),
        ("v LIKE 'abc'", "ABC", F),
        ("v LIKE '100!%' ESCAPE '!'", "100%", T),
        ("v LIKE '100!%' ESCAPE '!'", "1000", F),
        ("v LIKE '100%' ESCAPE '!'", "1000", T),
        ("v LIKE 'a!!b' ESCAPE '!'", "a!b", T),
        ("v LIKE '%''%'", "it's", T),
        ("v LIKE 'x''_' ESCAPE ''''", "x_", T),
        ("v like 'A%' escape '|'", "Ab", T),
    ];
    for (selector, value, expected) in cases {
        assert_eq!(
            eval(selector, &props(value)),
            expected,
            "{selector} on {value:?}"
        );
    }
    assert_eval("x LIKE 'a%'", U);
    assert_eval("x NOT LIKE 'a%'", U);
    assert_eval("i LIKE '5'", U);
    assert_eval("t NOT LIKE 'x'", U);

    assert_error(
        "v LIKE 'x' ESCAPE 'ab'",
        18,
        "ESCAPE needs exactly one character",
    );
    assert_error(
        "v LIKE 'x' ESCAPE ''",
        18,
        "ESCAPE needs exactly one character",
    );
    assert_error(
        "v LIKE 'x!' ESCAPE '!'",
        7,
        "LIKE pattern ends with its escape character",
    );
    assert_error(
        "v LIKE b",
        7,
        "expected a string literal pattern after LIKE, found identifier 'b'",
    );
    assert_error(
        "v LIKE 'x' ESCAPE 1",
        18,
        "expected a string literal after ESCAPE",
    );
    assert_error("'v' LIKE 'x'", 0, "LIKE needs an identifier on its left");
    assert_error(
        "v LIKE",
        6,
        "expected a string literal pattern after LIKE, found end of selector",
    );
}

#[test]
fn is_null() {
    for (selector, expected) in [
        ("x IS NULL", T),
        ("x IS NOT NULL", F),
        ("i IS NULL", F),
        ("i IS NOT NULL", T),
        ("s is not null", T),
        ("NOT x IS NULL", F),
        ("i + x IS NULL", T),
        ("i + 1 IS NULL", F),
        ("(x = 1) IS NULL", T),
        ("(i = 1) IS NOT NULL", T),
        ("x IS NULL AND i IS NOT NULL", T),
    ] {
        assert_eval(selector, expected);
    }
    assert_error("x IS 1", 5, "expected NULL after IS, found numeric literal");
    assert_error(
        "x IS NOT",
        8,
        "expected NULL after IS NOT, found end of selector",
    );
    assert_error("x IS NULL IS NULL", 10, "unexpected 'IS'");
}

#[test]
fn keywords_are_case_insensitive() {
    assert_eval("s LiKe 'a%' aNd i BeTwEeN 1 AnD 10 oR NoT t Is NuLl", T);
    assert_eval("s not in ('x') AND t = true AND f = False AND x is null", T);
    assert_eval("nOt FaLsE", T);
}

#[test]
fn identifiers_are_case_sensitive() {
    let props = Props::default()
        .with("Color", string("red"))
        .with("color", string("blue"));
    assert_eq!(eval("Color = 'red'", &props), T);
    assert_eq!(eval("color = 'blue'", &props), T);
    assert_eq!(eval("COLOR = 'red'", &props), U);
    let props = Props::default()
        .with("$amount", SelectorValue::Long(1))
        .with("_x9", SelectorValue::Long(2))
        .with("größe", SelectorValue::Long(3));
    assert_eq!(eval("$amount + _x9 = größe", &props), T);
}

#[test]
fn header_identifiers() {
    let props = Props::default()
        .with("JMSDeliveryMode", string("PERSISTENT"))
        .with("JMSPriority", SelectorValue::Long(7))
        .with("JMSMessageID", string("ID:1"))
        .with("JMSTimestamp", SelectorValue::Long(1_700_000_000_000))
        .with("JMSCorrelationID", string("c-1"))
        .with("JMSType", string("order"))
        .with("JMSXDeliveryCount", SelectorValue::Long(2));
    for selector in [
        "JMSDeliveryMode = 'PERSISTENT'",
        "JMSPriority > 4",
        "JMSMessageID = 'ID:1'",
        "JMSTimestamp > 0",
        "JMSCorrelationID LIKE 'c-%'",
        "JMSType IN ('order', 'invoice')",
        "JMSXDeliveryCount >= 2",
        "NOT JMSDeliveryMode = 'NON_PERSISTENT'",
    ] {
        assert_eq!(eval(selector, &props), T, "{selector}");
    }
    assert_eq!(eval("JMSCorrelationID IS NULL", &Props::default()), T);
}

#[test]
fn disallowed_header_identifiers() {
    for name in [
        "JMSDestination",
        "JMSReplyTo",
        "JMSExpiration",
        "JMSRedelivered",
        "JMSDeliveryTime",
    ] {
        let (position, reason) = parse_error(&format!("x = 1 OR {name} IS NULL"));
        assert_eq!(position, 9);
        assert!(reason.contains(name), "{reason}");
        assert_error(&format!("{name} = 'q'"), 0, name);
    }
    // Identifiers are case-sensitive: these are ordinary properties.
    assert_eval("jmsdestination IS NULL", T);
    assert_eval("JMSDestinationName IS NULL", T);
}

#[test]
fn not_a_condition() {
    assert_error("'abc'", 0, "expected a condition, found a string");
    assert_error(
        "1 + 2",
        0,
        "expected a condition, found a numeric expression",
    );
    assert_error(
        "  42",
        2,
        "expected a condition, found a numeric expression",
    );
    assert_error("-i", 0, "expected a condition, found a numeric expression");
    assert_error("i = 1 AND 5", 10, "expected a condition");
    assert_error("'a' OR i = 1", 0, "expected a condition");
    assert_error("NOT 'a'", 4, "expected a condition");
    assert_error("(1)", 0, "expected a condition");
    assert_error("i = 1 AND (2 + i)", 10, "expected a condition");
}

#[test]
fn static_arithmetic_type_errors() {
    assert_error(
        "'a' + 1 = 1",
        0,
        "'+' needs numeric operands, found a string",
    );
    assert_error(
        "1 * TRUE = 1",
        4,
        "'*' needs numeric operands, found a boolean",
    );
    assert_error("-'a' = 1", 0, "unary '-' needs numeric operands");
    assert_error(
        "i - (i = 1) = 0",
        4,
        "'-' needs numeric operands, found a boolean",
    );
}

#[test]
fn syntax_error_positions() {
    assert_error("a =", 3, "expected an expression, found end of selector");
    assert_error("(a = 1", 6, "expected ')', found end of selector");
    assert_error("((a = 1) AND b = 2", 18, "expected ')'");
    assert_error("a = 1)", 5, "unexpected ')'");
    assert_error("a == 1", 3, "expected an expression, found '='");
    assert_error("a = 'x", 4, "unterminated string literal");
    assert_error("a # 1", 2, "unexpected character '#'");
    assert_error("a = 1 b", 6, "unexpected identifier 'b'");
    assert_error("a = b = c", 6, "unexpected '='");
    assert_error(
        "a NOT = 1",
        6,
        "expected BETWEEN, IN or LIKE after NOT, found '='",
    );
    assert_error("and = 1", 0, "expected an expression, found 'AND'");
    assert_error(
        "a = 1 AND",
        9,
        "expected an expression, found end of selector",
    );
    assert_error("a = 1 OR OR b", 9, "expected an expression, found 'OR'");
    assert_error("()", 1, "expected an expression, found ')'");
    assert_error("a = 9223372036854775808", 4, "integer literal out of range");
    assert_error(
        "a = +9223372036854775808",
        5,
        "integer literal out of range",
    );
    assert_error("a = 1e999", 4, "floating-point literal out of range");
    assert_error("a = 12abc", 4, "malformed numeric literal");
    assert_error("é = 1 AND ☃", 11, "unexpected character '☃'");
    assert_error("a <> 'x' AND b ESCAPE 'c'", 15, "unexpected 'ESCAPE'");
    // The first problem in the text wins, even when a later one is lexical.
    assert_error(
        "a = = 'unterminated",
        4,
        "expected an expression, found '='",
    );
}

#[test]
fn nesting_limit_prevents_stack_overflow() {
    let nested =
        |open: &str, n: usize, close: &str| format!("{}i = 5{}", open.repeat(n), close.repeat(n));
    // Within the limit.
    assert_eval(&nested("(", 100, ")"), T);
    assert_eval(&nested("NOT ", 100, ""), T);
    assert_eval(&format!("i = {}5", "- ".repeat(100)), T);
    assert_eval(&nested("(i = 5 AND ", 60, ")"), T);
    // Hostile depth fails cleanly.
    for text in [
        nested("(", 100_000, ")"),
        nested("(", 100_000, ""),
        nested("NOT ", 100_000, ""),
        format!("i = {}5", "-".repeat(100_000)),
        format!("i = {}5", "+".repeat(100_000)),
        format!("{}i", "(-".repeat(100_000)),
        nested("(i = 5 AND ", 100_000, ")"),
    ] {
        let (_, reason) = parse_error(&text);
        assert!(reason.contains("nests deeper than 128 levels"), "{reason}");
    }
}

/// Parsing, evaluating, printing, cloning and dropping the deepest selectors of several
/// shapes fits in a 1 MiB stack, in debug builds too (tokio's worker threads have 2 MiB).
#[test]
fn deepest_selectors_fit_a_small_stack() {
    let shapes: [fn(usize) -> String; 8] = [
        |n| format!("{}i = 5{}", "(".repeat(n), ")".repeat(n)),
        |n| format!("{}t", "NOT ".repeat(n)),
        |n| format!("{}t", "NOT (".repeat(n)) + &")".repeat(n),
        |n| format!("i = {}5", "-".repeat(n)),
        |n| format!("i = {}i{}", "-(i + ".repeat(n), ")".repeat(n)),
        |n| format!("{}t{}", "(t = ".repeat(n), ")".repeat(n)),
        |n| {
            format!(
                "{}i{} IS NULL",
                "(i * 2 + 1 = 3 AND t OR ".repeat(n),
                ")".repeat(n)
            )
        },
        |n| {
            format!(
                "i BETWEEN 0 AND {}1{}",
                "2 * -(i - ".repeat(n),
                ")".repeat(n)
            )
        },
    ];
    let worker = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            for shape in shapes {
                // The deepest instance that parses, and one level more.
                let mut n = 1;
                while Selector::parse(&shape(n + 1)).is_ok() {
                    n += 1;
                }
                assert!(n >= 3, "{}", shape(n + 1));
                let selector = Selector::parse(&shape(n)).expect("parses");
                let _ = selector.evaluate(&sample());
                let _ = selector.evaluate(&Props::default());
                assert!(!format!("{selector:?}").is_empty());
                let _ = selector.required_equalities();
                drop(selector.clone());
                assert!(Selector::parse(&shape(100_000)).is_err());
            }
        })
        .expect("spawns");
    worker.join().expect("no stack overflow");
}

#[test]
fn long_chains_do_not_nest() {
    let ands = vec!["i = 5"; 50_000].join(" AND ");
    assert_eval(&ands, T);
    let ors = vec!["i = 6"; 50_000].join(" OR ");
    assert_eval(&ors, F);
    let sum = format!("{} = 50000", vec!["1"; 50_000].join(" + "));
    assert_eval(&sum, T);
    let product = format!("{} = 1", vec!["1"; 50_000].join(" * "));
    assert_eval(&product, T);
}

#[test]
fn required_equalities_shapes() {
    use SelectorValue::{Bool, Double, Long};
    let required = |text: &str| Selector::parse(text).expect("parses").required_equalities();
    let pair = |name: &str, values: Vec<SelectorValue>| (name.to_owned(), values);

    assert_eq!(
        required("color = 'red'"),
        vec![pair("color", vec![string("red")])]
    );
    assert_eq!(
        required("'red' = color AND size = 5 AND weight > 3"),
        vec![
            pair("color", vec![string("red")]),
            pair("size", vec![Long(5), Double(5.0)]),
        ]
    );
    assert_eq!(
        required("color IN ('blue', 'red', 'blue') AND x > 1"),
        vec![pair("color", vec![string("blue"), string("red")])]
    );
    assert_eq!(
        required("(a = 'x' AND (b = 'y')) AND c = 'z'"),
        vec![
            pair("a", vec![string("x")]),
            pair("b", vec![string("y")]),
            pair("c", vec![string("z")]),
        ]
    );
    assert_eq!(
        required("a IN ('x', 'y') AND a = 'x'"),
        vec![pair("a", vec![string("x")])]
    );
    assert_eq!(required("a = 'x' AND a = 'y'"), vec![pair("a", vec![])]);
    assert_eq!(
        required("flag = TRUE"),
        vec![pair("flag", vec![Bool(true)])]
    );
    assert_eq!(required("d = 2.5"), vec![pair("d", vec![Double(2.5)])]);
    assert_eq!(
        required("d = 2.0"),
        vec![pair("d", vec![Double(2.0), Long(2)])]
    );
    assert_eq!(
        required("n = -5"),
        vec![pair("n", vec![Long(-5), Double(-5.0)])]
    );
    assert_eq!(
        required("JMSType = 'order'"),
        vec![pair("JMSType", vec![string("order")])]
    );
    for none in [
        "",
        "a = 1 OR b = 2",
        "a NOT IN ('x')",
        "NOT a = 'x'",
        "a <> 'x'",
        "a = b",
        "a > 1",
        "a LIKE 'x'",
        "a = 1 + 1",
        "flag",
        "d = 1E18",
        "(a = 'x' OR b = 'y') AND c > 1",
    ] {
        assert_eq!(required(none), vec![], "{none}");
    }
}

/// Long lists and many conjuncts: the intersection and grouping work through hash maps, and
/// must give what the quadratic version gave.
#[test]
fn required_equalities_of_long_lists_and_many_conjuncts() {
    let list = |range: std::ops::Range<usize>| {
        let values: Vec<String> = range.map(|i| format!("'v{i}'")).collect();
        format!("a IN ({})", values.join(", "))
    };
    let selector =
        Selector::parse(&format!("{} AND {}", list(0..2000), list(1000..3000))).expect("parses");
    // Same-width numbers: sorted as strings too.
    let expected: Vec<SelectorValue> = (1000..2000).map(|i| string(&format!("v{i}"))).collect();
    let required = selector.required_equalities();
    assert_eq!(required.len(), 1);
    assert_eq!(required[0].0, "a");
    assert_eq!(required[0].1, expected);

    let conjuncts: Vec<String> = (0..3000).map(|i| format!("a{} = {i}", i % 1000)).collect();
    let required = Selector::parse(&conjuncts.join(" AND "))
        .expect("parses")
        .required_equalities();
    assert_eq!(required.len(), 1000);
    for (i, (name, values)) in required.iter().enumerate() {
        assert_eq!(name, &format!("a{i}"));
        // `a7 = 7 AND a7 = 1007 AND a7 = 2007` can never hold.
        assert_eq!(values, &Vec::<SelectorValue>::new());
    }
    let doubled = Selector::parse(&format!(
        "x = 2.0 AND {} AND 2 = x",
        conjuncts.join(" AND ")
    ))
    .expect("parses")
    .required_equalities();
    assert_eq!(
        doubled[0],
        (
            "x".to_owned(),
            vec![SelectorValue::Double(2.0), SelectorValue::Long(2)]
        )
    );
    // -0.0 equals 0.
    assert_eq!(
        Selector::parse("z = -0.0 AND z = 0")
            .expect("parses")
            .required_equalities(),
        vec![(
            "z".to_owned(),
            vec![SelectorValue::Double(-0.0), SelectorValue::Long(0)]
        )]
    );
}

#[test]
fn required_equalities_hold_whenever_the_selector_is_true() {
    let messages = [
        Props::default()
            .with("a", string("x"))
            .with("n", SelectorValue::Long(5)),
        Props::default()
            .with("a", string("x"))
            .with("n", SelectorValue::Double(5.0)),
        Props::default()
            .with("a", string("y"))
            .with("n", SelectorValue::Double(2.0)),
        Props::default().with("n", SelectorValue::Long(2)),
    ];
    for text in [
        "a = 'x' AND n = 5",
        "n = 5.0",
        "n = 2.0 AND a IN ('y', 'z')",
        "n = 2 AND a IS NULL",
    ] {
        let selector = Selector::parse(text).expect("parses");
        let required = selector.required_equalities();
        assert!(!required.is_empty());
        let mut matched = false;
        for message in &messages {
            if selector.matches(message) {
                matched = true;
                for (ident, values) in &required {
                    let value = message.selector_value(ident).expect("present");
                    assert!(values.contains(&value), "{text}: {ident} = {value:?}");
                }
            }
        }
        assert!(matched, "{text} matched no message");
    }
}

/// The selector cases of the conformance suite (`courier-conformance`), evaluated directly:
/// each selector picks exactly the expected labelled messages.
#[test]
fn conformance_suite_cases() {
    use SelectorValue::{Bool, Double, Long};
    type Case<'a> = (&'a str, &'a [&'a str]);
    fn check(messages: &[(&str, Props)], cases: &[Case<'_>]) {
        for (selector, expected) in cases {
            let parsed = Selector::parse(selector).expect("parses");
            let got: Vec<&str> = messages
                .iter()
                .filter(|(_, props)| parsed.matches(props))
                .map(|(label, _)| *label)
                .collect();
            assert_eq!(&got, expected, "{selector}");
        }
    }
    let p = |pairs: &[(&'static str, SelectorValue)]| {
        pairs.iter().fold(Props::default(), |props, (name, value)| {
            props.with(name, value.clone())
        })
    };

    check(
        &[
            ("red", p(&[("color", string("red"))])),
            ("quote", p(&[("color", string("O'Brien"))])),
            ("five", p(&[("n", Long(5))])),
            ("six", p(&[("n", Long(6))])),
            ("on", p(&[("flag", Bool(true))])),
            ("off", p(&[("flag", Bool(false))])),
            ("none", p(&[])),
        ],
        &[
            ("color = 'red'", &["red"]),
            ("color = 'O''Brien'", &["quote"]),
            ("n = 5", &["five"]),
            ("flag = TRUE", &["on"]),
            ("color <> 'red'", &["quote"]),
            ("n <> 5", &["six"]),
            ("flag <> FALSE", &["on"]),
        ],
    );
    check(
        &[
            ("x", p(&[("a", Long(3)), ("b", Long(2))])),
            ("y", p(&[("a", Long(5)), ("b", Long(5))])),
            ("z", p(&[("a", Long(3))])),
        ],
        &[
            ("a + b = 5", &["x"]),
            ("a - b = 1", &["x"]),
            ("a * b = 25", &["y"]),
            ("a / 2.0 = 1.5", &["x", "z"]),
            ("-a = -3", &["x", "z"]),
            ("a + b * 2 = 7", &["x"]),
            ("(a + b) * 2 = 10", &["x"]),
            ("a + b > 0", &["x", "y"]),
        ],
    );
    check(
        &[
            ("p", p(&[("a", Long(1)), ("b", Long(1))])),
            ("q", p(&[("a", Long(1)), ("b", Long(2))])),
            ("r", p(&[("a", Long(2)), ("b", Long(1))])),
        ],
        &[
            ("a = 1 OR b = 1 AND a = 2", &["p", "q", "r"]),
            ("NOT a = 1 AND b = 1", &["r"]),
        ],
    );
    check(
        &[
            ("b2", p(&[("b", Long(2))])),
            ("b3", p(&[("b", Long(3))])),
            ("a5", p(&[("a", Long(5))])),
            ("a0", p(&[("a", Long(0))])),
            ("none", p(&[])),
        ],
        &[
            ("a > 1 OR b = 2", &["b2", "a5"]),
            ("a > 1 AND b = 2", &[]),
            ("NOT (a > 1)", &["a0"]),
            ("NOT (a > 1 AND b = 2)", &["b3", "a0"]),
            ("NOT (a > 1 OR b = 2)", &[]),
            ("a = a", &["a5", "a0"]),
        ],
    );
    check(
        &[
            ("1", p(&[("n", Long(1))])),
            ("2.5", p(&[("n", Double(2.5))])),
            ("4", p(&[("n", Long(4))])),
            ("5", p(&[("n", Long(5))])),
            ("none", p(&[])),
        ],
        &[
            ("n BETWEEN 2 AND 4", &["2.5", "4"]),
            ("n NOT BETWEEN 2 AND 4", &["1", "5"]),
            ("n BETWEEN 2.1 AND 2.9", &["2.5"]),
        ],
    );
    check(
        &[
            ("a_1", p(&[("name", string("a_1"))])),
            ("ab1", p(&[("name", string("ab1"))])),
            ("a%", p(&[("name", string("a%"))])),
            ("100%", p(&[("name", string("100%"))])),
        ],
        &[
            ("name LIKE 'a\\_%' ESCAPE '\\'", &["a_1"]),
            ("name LIKE '100!%' ESCAPE '!'", &["100%"]),
            ("name LIKE 'a!%' ESCAPE '!'", &["a%"]),
            ("name NOT LIKE 'a%'", &["100%"]),
        ],
    );
    check(
        &[
            ("string", p(&[("n", string("2"))])),
            ("int", p(&[("n", Long(2))])),
            ("bool", p(&[("n", Bool(true))])),
        ],
        &[
            ("n > 1", &["int"]),
            ("n = 2", &["int"]),
            ("n = '2'", &["string"]),
            ("n = TRUE", &["bool"]),
            ("NOT (n = 2)", &["string", "bool"]),
        ],
    );
    check(
        &[
            ("int2", p(&[("x", Long(2))])),
            ("double2", p(&[("x", Double(2.0))])),
            ("float1.5", p(&[("x", Double(f64::from(1.5_f32)))])),
            ("long7000", p(&[("x", Long(7000))])),
            ("neg", p(&[("x", Double(-95.7))])),
        ],
        &[
            ("x = 2", &["int2", "double2"]),
            ("x = 2.0", &["int2", "double2"]),
            ("x > 1.25 AND x < 1.75", &["float1.5"]),
            ("x = 7E3", &["long7000"]),
            ("x = -95.7", &["neg"]),
            ("x * 2 = 4.0", &["int2", "double2"]),
        ],
    );
    check(
        &[
            (
                "lower",
                p(&[
                    ("color", string("red")),
                    ("n", Long(2)),
                    ("name", string("abc")),
                ]),
            ),
            ("upper", p(&[("Color", string("red"))])),
            ("flag", p(&[("flag", Bool(true))])),
        ],
        &[
            (
                "color = 'red' and n between 1 AnD 3 oR name like 'zz%' EsCaPe '!'",
                &["lower"],
            ),
            (
                "name Is Not Null aNd color not In ('blue') AND nOt (n > 5)",
                &["lower"],
            ),
            ("Color = 'red'", &["upper"]),
            ("color iS nUlL AND flag = tRuE", &["flag"]),
        ],
    );

    // Invalid selectors, with the lowest plausible error position.
    for (selector, min_position) in [
        ("color = ", 6),
        ("color = 'red", 8),
        ("a = 1)", 5),
        ("(a = 1", 0),
        ("a == 1", 2),
        ("a = 1 AND", 6),
        ("AND a = 1", 0),
        ("n BETWEEN 1", 2),
        ("color IN ()", 6),
        ("color IN (1, 2)", 6),
        ("name LIKE 5", 5),
        ("name LIKE 'a' ESCAPE 'ab'", 14),
        ("a ! 1", 2),
        ("a = 'x' 'y'", 8),
        ("color = 'red' AND JMSExpiration = 0", 0),
    ] {
        let (position, _) = parse_error(selector);
        assert!(position >= min_position, "{selector}: {position}");
    }
}

/// `x = a OR x = b OR …` is folded into one set lookup: it must give what evaluating each
/// equality and ORing them gives, for every kind of literal and value.
#[test]
fn folded_equality_disjunctions_agree_with_their_terms() {
    use SelectorValue::{Bool, Double, Long};
    let literals = [
        "1",
        "-1",
        "0",
        "-0.0",
        "2.5",
        "9007199254740993",
        "9007199254740992.0",
        "'a'",
        "''",
        "TRUE",
        "FALSE",
        "9223372036854775807",
    ];
    let values = [
        None,
        Some(Long(1)),
        Some(Long(-1)),
        Some(Long(0)),
        Some(Double(0.0)),
        Some(Double(-0.0)),
        Some(Double(1.0)),
        Some(Double(2.5)),
        Some(Long(2)),
        Some(Long(9_007_199_254_740_992)),
        Some(Long(9_007_199_254_740_993)),
        Some(Double(9_007_199_254_740_992.0)),
        Some(Long(i64::MAX)),
        Some(Double(i64::MAX as f64)),
        Some(Double(f64::NAN)),
        Some(string("a")),
        Some(string("")),
        Some(string("1")),
        Some(Bool(true)),
        Some(Bool(false)),
    ];
    // Every window of consecutive literals, with the identifier on either side.
    for start in 0..literals.len() {
        for end in start + 1..=literals.len() {
            let window = &literals[start..end];
            let terms: Vec<String> = window
                .iter()
                .enumerate()
                .map(|(i, literal)| {
                    if i % 2 == 0 {
                        format!("x = {literal}")
                    } else {
                        format!("{literal} = x")
                    }
                })
                .collect();
            let folded = Selector::parse(&terms.join(" OR ")).expect("parses");
            for value in &values {
                let props = match value {
                    Some(value) => Props::default().with("x", value.clone()),
                    None => Props::default(),
                };
                // SQL OR: TRUE wins, then UNKNOWN.
                let results: Vec<Option<bool>> =
                    terms.iter().map(|term| eval(term, &props)).collect();
                let expected = if results.contains(&T) {
                    T
                } else if results.contains(&U) {
                    U
                } else {
                    F
                };
                assert_eq!(folded.evaluate(&props), expected, "{terms:?} on {value:?}");
            }
        }
    }
    // Not folded, and still right: other identifiers or operators in the chain.
    assert_eval("i = 1 OR s = 'abc'", T);
    assert_eval("i = 1 OR i > 4", T);
    assert_eval("i = 1 OR i = 2 OR x = 3", U);
    assert_eval("NOT (i = 1 OR i = 5)", F);
    assert_eval("(i = 1 OR i = 5) AND (s = 'x' OR s = 'abc')", T);
}

#[test]
fn required_equalities_of_equality_disjunctions() {
    use SelectorValue::{Double, Long};
    let required = |text: &str| Selector::parse(text).expect("parses").required_equalities();
    assert_eq!(
        required("n = 1 OR n = 2.5 OR 'a' = n"),
        vec![(
            "n".to_owned(),
            vec![Long(1), Double(1.0), Double(2.5), string("a")]
        )]
    );
    assert_eq!(
        required("(n = 1 OR n = 2) AND n = 2"),
        vec![("n".to_owned(), vec![Long(2), Double(2.0)])]
    );
    // A double many longs equal cannot be listed.
    assert_eq!(required("n = 1 OR n = 1E18"), vec![]);
    assert_eq!(required("n = 1 OR m = 2"), vec![]);
}
