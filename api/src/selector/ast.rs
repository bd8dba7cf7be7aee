//! The parsed form of a selector.
//!
//! AND, OR and additive/multiplicative chains are n-ary nodes rather than left-leaning binary
//! trees, so the tree's depth is bounded by the parser's nesting limit however long the
//! selector is; evaluation and `Drop` recurse along that depth.

use super::in_list::InList;
use super::like::LikePattern;
use super::value_set::ValueSet;
use super::SelectorValue;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// `<`, `<=`, `>`, `>=`: defined on numbers only.
    pub(super) fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    /// The operator in quotes, for error messages.
    pub(super) fn quoted(self) -> &'static str {
        match self {
            CmpOp::Eq => "'='",
            CmpOp::Ne => "'<>'",
            CmpOp::Lt => "'<'",
            CmpOp::Le => "'<='",
            CmpOp::Gt => "'>'",
            CmpOp::Ge => "'>='",
        }
    }
}

/// A binary arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl ArithOp {
    /// The operator in quotes, for error messages.
    pub(super) fn quoted(self) -> &'static str {
        match self {
            ArithOp::Add => "'+'",
            ArithOp::Sub => "'-'",
            ArithOp::Mul => "'*'",
            ArithOp::Div => "'/'",
        }
    }
}

/// What an expression is known to produce before any message is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StaticType {
    /// TRUE, FALSE or UNKNOWN: a condition or a boolean literal.
    Boolean,
    /// A number.
    Numeric,
    /// A string literal.
    String,
    /// An identifier: any type, decided per message.
    Unknown,
}

/// A selector expression.
#[derive(Debug)]
pub(super) enum Expr {
    /// A literal value. Signed numeric literals (`-5`) are folded into one literal.
    Literal(SelectorValue),
    /// A header or property name.
    Ident(Box<str>),
    Not(Box<Expr>),
    /// Conjunction of two or more terms.
    And(Vec<Expr>),
    /// Disjunction of two or more terms.
    Or(Vec<Expr>),
    Compare {
        op: CmpOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `first op1 e1 op2 e2 …`, evaluated left to right (the parser nests `*`/`/` inside).
    Arith {
        first: Box<Expr>,
        rest: Vec<(ArithOp, Expr)>,
    },
    /// Unary `-` (`negate`) or `+` on a non-literal operand.
    Unary {
        negate: bool,
        operand: Box<Expr>,
    },
    Between {
        operand: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    /// `ident [NOT] IN (…)`.
    In {
        ident: Box<str>,
        values: Box<InList>,
        negated: bool,
    },
    Like {
        ident: Box<str>,
        pattern: Box<LikePattern>,
        negated: bool,
    },
    /// `ident = v1 OR ident = v2 OR …` (or `v1 = ident …`) with literals: the parser folds such
    /// a disjunction into one set lookup.
    AnyEqual {
        ident: Box<str>,
        values: Box<ValueSet>,
    },
    IsNull {
        operand: Box<Expr>,
        negated: bool,
    },
}

impl Expr {
    /// If this is `ident = literal` or `literal = ident`: the identifier and the literal.
    pub(super) fn as_equality(&self) -> Option<(&str, &SelectorValue)> {
        let Expr::Compare {
            op: CmpOp::Eq,
            left,
            right,
        } = self
        else {
            return None;
        };
        match (&**left, &**right) {
            (Expr::Ident(name), Expr::Literal(literal))
            | (Expr::Literal(literal), Expr::Ident(name)) => Some((name, literal)),
            _ => None,
        }
    }

    /// Folds `x = v1 OR x = v2 OR …` (every term an equality of one identifier with a
    /// literal) into [`Expr::AnyEqual`] in place; leaves anything else as it is. The result is
    /// the same for every message: NULL when `x` is NULL, else whether `x` equals some literal.
    ///
    /// Out of line and in place, so the parser's recursive frames stay small.
    #[inline(never)]
    pub(super) fn fold_equalities(&mut self) {
        let Expr::Or(terms) = self else {
            return;
        };
        let first_ident = terms
            .first()
            .and_then(Expr::as_equality)
            .map(|(name, _)| name);
        let Some(ident) = first_ident else {
            return;
        };
        if !terms
            .iter()
            .all(|term| term.as_equality().is_some_and(|(name, _)| name == ident))
        {
            return;
        }
        let ident: Box<str> = ident.into();
        let mut values = ValueSet::default();
        for term in terms.iter() {
            if let Some((_, literal)) = term.as_equality() {
                values.insert(literal.clone());
            }
        }
        *self = Expr::AnyEqual {
            ident,
            values: Box::new(values),
        };
    }

    /// The type this expression is known to have at parse time.
    pub(super) fn static_type(&self) -> StaticType {
        match self {
            Expr::Literal(SelectorValue::Bool(_)) => StaticType::Boolean,
            Expr::Literal(SelectorValue::Long(_) | SelectorValue::Double(_)) => StaticType::Numeric,
            Expr::Literal(SelectorValue::String(_)) => StaticType::String,
            Expr::Ident(_) => StaticType::Unknown,
            Expr::Arith { .. } | Expr::Unary { .. } => StaticType::Numeric,
            Expr::Not(_)
            | Expr::And(_)
            | Expr::Or(_)
            | Expr::Compare { .. }
            | Expr::Between { .. }
            | Expr::In { .. }
            | Expr::Like { .. }
            | Expr::AnyEqual { .. }
            | Expr::IsNull { .. } => StaticType::Boolean,
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every recursive frame of parsing and evaluation holds expressions: they must stay small
    /// for the deepest selectors to fit a small stack.
    #[test]
    fn expressions_stay_small() {
        let size = std::mem::size_of::<super::Expr>();
        assert!(size <= 48, "{size}");
    }
}
