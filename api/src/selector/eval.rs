//! Evaluation of an [`Expr`] against a [`SelectorSource`], with SQL three-valued logic.
//!
//! Truth values are `Option<bool>` (`None` is UNKNOWN); values are `Option<SelectorValue>`
//! (`None` is NULL). The rules of Jakarta Messaging 3.1 §3.8.1.2, with the choices it leaves
//! open made as noted:
//!
//! * any comparison or arithmetic with a NULL operand is UNKNOWN / NULL;
//! * exact and approximate numbers compare with each other (the long is widened to double, as
//!   Java's binary numeric promotion does); strings and booleans compare with `=` and `<>` only,
//!   other operators on them give UNKNOWN;
//! * comparing values of unlike types (a string with a number, …) gives FALSE, for every
//!   operator including `<>`; so `NOT (s = 1)` is TRUE when `s` is a string;
//! * arithmetic on anything but numbers is NULL; long arithmetic that overflows is carried out
//!   in double instead, and long division by zero is NULL; double arithmetic follows IEEE 754
//!   (`1.0 / 0` is infinity), as in Java;
//! * `IN` and `LIKE` on a value that is not a string are UNKNOWN, as on NULL;
//! * a value that is not a boolean, used as a condition, is UNKNOWN.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::ast::{ArithOp, CmpOp, Expr};
use super::{SelectorSource, SelectorValue};

/// SQL AND over truth values, short-circuiting on FALSE.
fn and3(terms: impl IntoIterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for term in terms {
        match term {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(true)
    }
}

/// SQL OR over truth values, short-circuiting on TRUE.
fn or3(terms: impl IntoIterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for term in terms {
        match term {
            Some(true) => return Some(true),
            None => unknown = true,
            Some(false) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(false)
    }
}

impl Expr {
    /// The truth value of this expression used as a condition.
    pub(super) fn truth(&self, source: &dyn SelectorSource) -> Option<bool> {
        match self {
            Expr::Not(operand) => operand.truth(source).map(|b| !b),
            Expr::And(terms) => and3(terms.iter().map(|term| term.truth(source))),
            Expr::Or(terms) => or3(terms.iter().map(|term| term.truth(source))),
            Expr::Compare { op, left, right } => compare(
                *op,
                left.value(source).as_deref(),
                right.value(source).as_deref(),
            ),
            Expr::Between {
                operand,
                low,
                high,
                negated,
            } => {
                let value = operand.value(source);
                let within = and3([
                    compare(CmpOp::Ge, value.as_deref(), low.value(source).as_deref()),
                    compare(CmpOp::Le, value.as_deref(), high.value(source).as_deref()),
                ]);
                within.map(|b| b != *negated)
            }
            Expr::In {
                ident,
                values,
                negated,
            } => match source.selector_value(ident)? {
                SelectorValue::String(s) => Some(values.contains(&s) != *negated),
                _ => None,
            },
            Expr::Like {
                ident,
                pattern,
                negated,
            } => match source.selector_value(ident)? {
                SelectorValue::String(s) => Some(pattern.matches(&s) != *negated),
                _ => None,
            },
            Expr::AnyEqual { ident, values } => {
                Some(values.contains(&source.selector_value(ident)?))
            }
            Expr::IsNull { operand, negated } => Some(operand.value(source).is_none() != *negated),
            Expr::Literal(_) | Expr::Ident(_) | Expr::Arith { .. } | Expr::Unary { .. } => {
                match *self.value(source)? {
                    SelectorValue::Bool(b) => Some(b),
                    _ => None,
                }
            }
        }
    }

    /// The value of this expression; conditions give `Bool` (or NULL for UNKNOWN). Literals
    /// are borrowed, so evaluation does not touch the reference counts of shared strings.
    pub(super) fn value(&self, source: &dyn SelectorSource) -> Option<Cow<'_, SelectorValue>> {
        let value = match self {
            Expr::Literal(value) => return Some(Cow::Borrowed(value)),
            Expr::Ident(name) => source.selector_value(name)?,
            Expr::Arith { first, rest } => {
                let mut acc = first.value(source)?;
                for (op, operand) in rest {
                    acc = Cow::Owned(arithmetic(*op, &acc, &*operand.value(source)?)?);
                }
                return Some(acc);
            }
            Expr::Unary { negate, operand } => match *operand.value(source)? {
                SelectorValue::Long(n) if *negate => n
                    .checked_neg()
                    .map_or(SelectorValue::Double(-(n as f64)), SelectorValue::Long),
                SelectorValue::Double(d) if *negate => SelectorValue::Double(-d),
                SelectorValue::Long(n) => SelectorValue::Long(n),
                SelectorValue::Double(d) => SelectorValue::Double(d),
                SelectorValue::Bool(_) | SelectorValue::String(_) => return None,
            },
            Expr::Not(_)
            | Expr::And(_)
            | Expr::Or(_)
            | Expr::Compare { .. }
            | Expr::Between { .. }
            | Expr::In { .. }
            | Expr::Like { .. }
            | Expr::AnyEqual { .. }
            | Expr::IsNull { .. } => SelectorValue::Bool(self.truth(source)?),
        };
        Some(Cow::Owned(value))
    }

    /// If this expression is `ident = literal`, `literal = ident`, `ident IN (…)` or a
    /// disjunction of equalities of one identifier: the identifier and every value it must
    /// equal for the expression to be TRUE.
    pub(super) fn required_values(&self) -> Option<(&str, Vec<SelectorValue>)> {
        match self {
            Expr::Compare {
                op: CmpOp::Eq,
                left,
                right,
            } => match (&**left, &**right) {
                (Expr::Ident(name), Expr::Literal(literal))
                | (Expr::Literal(literal), Expr::Ident(name)) => {
                    Some((name, values_equal_to(literal)?))
                }
                _ => None,
            },
            Expr::In {
                ident,
                values,
                negated: false,
            } => Some((
                ident,
                values
                    .values()
                    .into_iter()
                    .map(SelectorValue::String)
                    .collect(),
            )),
            Expr::AnyEqual { ident, values } => {
                let mut equal = Vec::new();
                for literal in values.literals() {
                    equal.extend(values_equal_to(literal)?);
                }
                Some((ident, equal))
            }
            _ => None,
        }
    }
}

/// Every value `v` with `v = literal` TRUE, when they can be listed.
///
/// Numbers compare across types, so `x = 5` also holds for the double 5.0; a double literal
/// equals the longs that widen to it, which are too many to list between 2^53 and 2^63 in
/// magnitude (then `None`).
fn values_equal_to(literal: &SelectorValue) -> Option<Vec<SelectorValue>> {
    /// Below this magnitude every long converts to a distinct double exactly.
    const EXACT_LONG_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    /// Above this magnitude no long widens to the double.
    const LONG_LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63

    Some(match literal {
        SelectorValue::Bool(_) | SelectorValue::String(_) => vec![literal.clone()],
        SelectorValue::Long(n) => vec![literal.clone(), SelectorValue::Double(*n as f64)],
        SelectorValue::Double(d) if d.is_nan() => Vec::new(),
        SelectorValue::Double(d) if d.fract() != 0.0 || d.abs() > LONG_LIMIT => {
            vec![literal.clone()]
        }
        SelectorValue::Double(d) if d.abs() < EXACT_LONG_LIMIT => {
            vec![literal.clone(), SelectorValue::Long(*d as i64)]
        }
        SelectorValue::Double(_) => return None,
    })
}

/// A number, for mixed-type arithmetic and comparison.
#[derive(Clone, Copy)]
enum Number {
    Long(i64),
    Double(f64),
}

impl Number {
    fn of(value: &SelectorValue) -> Option<Number> {
        match *value {
            SelectorValue::Long(n) => Some(Number::Long(n)),
            SelectorValue::Double(d) => Some(Number::Double(d)),
            SelectorValue::Bool(_) | SelectorValue::String(_) => None,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Long(n) => n as f64,
            Number::Double(d) => d,
        }
    }
}

/// `left op right` with NULL, type and NaN rules applied.
fn compare(op: CmpOp, left: Option<&SelectorValue>, right: Option<&SelectorValue>) -> Option<bool> {
    let (left, right) = (left?, right?);
    let ordering = match (Number::of(left), Number::of(right)) {
        (Some(Number::Long(a)), Some(Number::Long(b))) => Some(a.cmp(&b)),
        // NaN is unordered: `=` and the ordering operators are FALSE, `<>` is TRUE (as in Java).
        (Some(a), Some(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        _ => {
            let equal = match (left, right) {
                (SelectorValue::String(a), SelectorValue::String(b)) => a == b,
                (SelectorValue::Bool(a), SelectorValue::Bool(b)) => a == b,
                // Unlike types.
                _ => return Some(false),
            };
            return match op {
                CmpOp::Eq => Some(equal),
                CmpOp::Ne => Some(!equal),
                // Strings and booleans are not ordered.
                CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => None,
            };
        }
    };
    Some(match op {
        CmpOp::Eq => ordering == Some(Ordering::Equal),
        CmpOp::Ne => ordering != Some(Ordering::Equal),
        CmpOp::Lt => ordering == Some(Ordering::Less),
        CmpOp::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => ordering == Some(Ordering::Greater),
        CmpOp::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
    })
}

/// `left op right` on numbers; NULL for non-numbers and long division by zero.
fn arithmetic(op: ArithOp, left: &SelectorValue, right: &SelectorValue) -> Option<SelectorValue> {
    let (left, right) = (Number::of(left)?, Number::of(right)?);
    if let (Number::Long(a), Number::Long(b)) = (left, right) {
        let exact = match op {
            ArithOp::Add => a.checked_add(b),
            ArithOp::Sub => a.checked_sub(b),
            ArithOp::Mul => a.checked_mul(b),
            ArithOp::Div if b == 0 => return None,
            // Truncates toward zero, like Java; only i64::MIN / -1 overflows.
            ArithOp::Div => a.checked_div(b),
        };
        if let Some(n) = exact {
            return Some(SelectorValue::Long(n));
        }
    }
    let (a, b) = (left.as_f64(), right.as_f64());
    Some(SelectorValue::Double(match op {
        ArithOp::Add => a + b,
        ArithOp::Sub => a - b,
        ArithOp::Mul => a * b,
        ArithOp::Div => a / b,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> SelectorValue {
        SelectorValue::String(text.into())
    }

    #[test]
    fn three_valued_and_or() {
        let values = [Some(true), Some(false), None];
        for a in values {
            for b in values {
                let expected_and = match (a, b) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                let expected_or = match (a, b) {
                    (Some(true), _) | (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                };
                assert_eq!(and3([a, b]), expected_and, "{a:?} AND {b:?}");
                assert_eq!(or3([a, b]), expected_or, "{a:?} OR {b:?}");
            }
        }
        assert_eq!(and3([]), Some(true));
        assert_eq!(or3([]), Some(false));
    }

    #[test]
    fn compare_numbers_across_types() {
        use SelectorValue::{Double, Long};
        assert_eq!(
            compare(CmpOp::Eq, Some(&Long(5)), Some(&Double(5.0))),
            Some(true)
        );
        assert_eq!(
            compare(CmpOp::Lt, Some(&Long(5)), Some(&Double(5.5))),
            Some(true)
        );
        assert_eq!(
            compare(CmpOp::Ge, Some(&Double(-0.0)), Some(&Long(0))),
            Some(true)
        );
        assert_eq!(
            compare(CmpOp::Gt, Some(&Long(i64::MAX)), Some(&Long(i64::MAX - 1))),
            Some(true)
        );
        let nan = Double(f64::NAN);
        assert_eq!(compare(CmpOp::Eq, Some(&nan), Some(&nan)), Some(false));
        assert_eq!(compare(CmpOp::Ne, Some(&nan), Some(&Long(1))), Some(true));
        assert_eq!(compare(CmpOp::Lt, Some(&nan), Some(&Long(1))), Some(false));
        assert_eq!(compare(CmpOp::Ge, Some(&nan), Some(&Long(1))), Some(false));
    }

    #[test]
    fn compare_unlike_and_unordered() {
        use SelectorValue::{Bool, Long};
        for op in [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Ge] {
            assert_eq!(compare(op, Some(&s("1")), Some(&Long(1))), Some(false));
            assert_eq!(compare(op, Some(&Bool(true)), Some(&Long(1))), Some(false));
            assert_eq!(
                compare(op, Some(&Bool(true)), Some(&s("true"))),
                Some(false)
            );
            assert_eq!(compare(op, None, Some(&Long(1))), None);
            assert_eq!(compare(op, Some(&s("a")), None), None);
        }
        assert_eq!(compare(CmpOp::Lt, Some(&s("a")), Some(&s("b"))), None);
        assert_eq!(
            compare(CmpOp::Le, Some(&Bool(false)), Some(&Bool(true))),
            None
        );
        assert_eq!(compare(CmpOp::Ne, Some(&s("a")), Some(&s("b"))), Some(true));
        assert_eq!(
            compare(CmpOp::Eq, Some(&Bool(false)), Some(&Bool(false))),
            Some(true)
        );
    }

    fn arith(op: ArithOp, left: SelectorValue, right: SelectorValue) -> Option<SelectorValue> {
        arithmetic(op, &left, &right)
    }

    #[test]
    fn arithmetic_promotion_and_edge_cases() {
        use SelectorValue::{Bool, Double, Long};
        assert_eq!(arith(ArithOp::Add, Long(2), Long(3)), Some(Long(5)));
        assert_eq!(arith(ArithOp::Div, Long(7), Long(2)), Some(Long(3)));
        assert_eq!(arith(ArithOp::Div, Long(-7), Long(2)), Some(Long(-3)));
        assert_eq!(arith(ArithOp::Mul, Long(2), Double(1.5)), Some(Double(3.0)));
        assert_eq!(arith(ArithOp::Div, Long(7), Double(2.0)), Some(Double(3.5)));
        assert_eq!(arith(ArithOp::Div, Long(1), Long(0)), None);
        assert_eq!(
            arith(ArithOp::Div, Long(1), Double(0.0)),
            Some(Double(f64::INFINITY))
        );
        assert_eq!(
            arith(ArithOp::Add, Long(i64::MAX), Long(1)),
            Some(Double(i64::MAX as f64 + 1.0))
        );
        assert_eq!(
            arith(ArithOp::Mul, Long(i64::MIN), Long(-1)),
            Some(Double(-(i64::MIN as f64)))
        );
        assert_eq!(
            arith(ArithOp::Div, Long(i64::MIN), Long(-1)),
            Some(Double(-(i64::MIN as f64)))
        );
        assert_eq!(arith(ArithOp::Add, s("1"), Long(1)), None);
        assert_eq!(arith(ArithOp::Add, Long(1), Bool(true)), None);
    }

    #[test]
    fn equal_value_sets() {
        use SelectorValue::{Double, Long};
        assert_eq!(values_equal_to(&Long(5)), Some(vec![Long(5), Double(5.0)]));
        assert_eq!(
            values_equal_to(&Double(2.0)),
            Some(vec![Double(2.0), Long(2)])
        );
        assert_eq!(values_equal_to(&Double(2.5)), Some(vec![Double(2.5)]));
        assert_eq!(values_equal_to(&Double(1e300)), Some(vec![Double(1e300)]));
        assert_eq!(
            values_equal_to(&Double(f64::INFINITY)),
            Some(vec![Double(f64::INFINITY)])
        );
        assert_eq!(values_equal_to(&Double(1e18)), None);
        assert_eq!(values_equal_to(&Double(-9_223_372_036_854_775_808.0)), None);
        assert_eq!(values_equal_to(&s("x")), Some(vec![s("x")]));
    }
}
