//! Precedence-climbing parser from selector text to an [`Expr`] tree.
//!
//! The grammar, loosest-binding first:
//!
//! ```text
//! selector       := or_expr                        (must be a condition)
//! or_expr        := and_expr { OR and_expr }
//! and_expr       := not_expr { AND not_expr }
//! not_expr       := NOT not_expr | comparison
//! comparison     := additive [ cmp_op additive
//!                            | [NOT] BETWEEN additive AND additive
//!                            | [NOT] IN '(' string { ',' string } ')'
//!                            | [NOT] LIKE string [ESCAPE string]
//!                            | IS [NOT] NULL ]
//! additive       := multiplicative { ('+' | '-') multiplicative }
//! multiplicative := unary { ('*' | '/') unary }
//! unary          := ('+' | '-') unary | primary
//! primary        := literal | identifier | '(' or_expr ')'     (NULL is no literal)
//! ```
//!
//! It is parsed by precedence climbing ([`Parser::expr`]) rather than one function per rule,
//! which keeps the stack used per parenthesis level small.
//!
//! `NULL` is no primary: it appears only after `IS` or `IS NOT` (JMS §3.8.1.1).
//!
//! Besides syntax, the parser rejects what can never make sense whatever the message holds:
//! a number or string where a condition belongs, a string or condition in arithmetic or in an
//! ordering comparison, a boolean compared with a number or string, disallowed header names,
//! and nesting deeper than [`MAX_DEPTH`].

use std::sync::Arc;

use super::ast::{ArithOp, CmpOp, Expr, StaticType};
use super::in_list::InList;
use super::lexer::{Keyword, LexError, Lexer, Token, TokenKind};
use super::like::LikePattern;
use super::SelectorValue;
use crate::{Error, Result};

/// Deepest nesting of subexpressions accepted. Every parenthesis, `NOT`, sign and right-hand
/// operand of a looser-binding operator nests one level (a chain of one operator does not:
/// `a AND b AND c` is as deep as `a AND b`). This bounds the recursion of parsing, evaluation
/// and dropping, so hostile selectors cannot overflow the stack: parsing at the limit takes
/// well under a megabyte of stack even in debug builds.
pub(super) const MAX_DEPTH: usize = 128;

/// Header identifiers the specification bars from selectors.
const DISALLOWED_IDENTIFIERS: [&str; 5] = [
    "JMSDestination",
    "JMSReplyTo",
    "JMSExpiration",
    "JMSRedelivered",
    "JMSDeliveryTime",
];

// Binding levels, loosest first. An operator's right operand is parsed at the next level up
// (all binary operators are left-associative, comparisons are not associative at all).
const LOOSEST: u8 = 0;
const OR_LEVEL: u8 = 1;
const AND_LEVEL: u8 = 2;
const NOT_LEVEL: u8 = 3;
const COMPARISON_LEVEL: u8 = 4;
const ADDITIVE_LEVEL: u8 = 5;
const MULTIPLICATIVE_LEVEL: u8 = 6;
const UNARY_LEVEL: u8 = 7;
/// Any operator may follow a primary expression.
const NO_CEILING: u8 = u8::MAX;

/// The binding level of `kind` as an infix (or postfix) operator.
fn infix_level(kind: &TokenKind<'_>) -> Option<u8> {
    Some(match kind {
        TokenKind::Keyword(Keyword::Or) => OR_LEVEL,
        TokenKind::Keyword(Keyword::And) => AND_LEVEL,
        TokenKind::Eq
        | TokenKind::Ne
        | TokenKind::Lt
        | TokenKind::Le
        | TokenKind::Gt
        | TokenKind::Ge
        | TokenKind::Keyword(
            Keyword::Not | Keyword::Between | Keyword::In | Keyword::Like | Keyword::Is,
        ) => COMPARISON_LEVEL,
        TokenKind::Plus | TokenKind::Minus => ADDITIVE_LEVEL,
        TokenKind::Star | TokenKind::Slash => MULTIPLICATIVE_LEVEL,
        _ => return None,
    })
}

/// Builds the error every stage of the selector parser reports.
fn invalid(selector: &str, position: usize, reason: impl Into<String>) -> Error {
    Error::InvalidSelector {
        selector: selector.to_owned(),
        position,
        reason: reason.into(),
    }
}

/// Parses `text`; `None` for an empty or whitespace-only selector.
pub(super) fn parse(text: &str) -> Result<Option<Expr>> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let mut parser = Parser::new(text);
    let start = parser.token.pos;
    let expr = parser.expr(LOOSEST)?;
    if parser.token.kind != TokenKind::Eof {
        return Err(parser.error_at_token("unexpected"));
    }
    parser.expect_condition(&expr, start)?;
    Ok(Some(expr))
}

struct Parser<'a> {
    text: &'a str,
    lexer: Lexer<'a>,
    /// The current, not yet consumed token.
    token: Token<'a>,
    /// Set when the current token is [`TokenKind::Invalid`]: what the lexer rejected there.
    lex_error: Option<LexError>,
    depth: usize,
}

// Error paths live in small out-of-line functions so that the recursive functions keep small
// stack frames, even in debug builds.
impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        let mut parser = Parser {
            text,
            lexer: Lexer::new(text),
            token: Token {
                kind: TokenKind::Eof,
                pos: 0,
            },
            lex_error: None,
            depth: 0,
        };
        parser.token = parser.lex();
        parser
    }

    /// The next token from the lexer; a lexical error becomes an `Invalid` token, reported
    /// once the parser gets there, so an earlier syntax error takes precedence.
    fn lex(&mut self) -> Token<'a> {
        match self.lexer.next_token() {
            Ok(token) => token,
            Err(error) => {
                let pos = error.position;
                self.lex_error = Some(error);
                Token {
                    kind: TokenKind::Invalid,
                    pos,
                }
            }
        }
    }

    /// An error at `position`, or the pending lexical error if that comes first in the text.
    #[cold]
    #[inline(never)]
    fn error(&self, position: usize, reason: impl Into<String>) -> Error {
        match &self.lex_error {
            Some(lex) if lex.position <= position => {
                invalid(self.text, lex.position, lex.reason.clone())
            }
            _ => invalid(self.text, position, reason),
        }
    }

    /// "`context` `token`", at the current token: `expected ')', found 'AND'`.
    #[cold]
    #[inline(never)]
    fn error_at_token(&self, context: &str) -> Error {
        self.error(self.token.pos, format!("{context} {}", self.token.kind))
    }

    /// Consumes the current token and returns it; fails on an `Invalid` one.
    fn advance(&mut self) -> Result<Token<'a>> {
        if self.token.kind == TokenKind::Invalid {
            return Err(self.error(self.token.pos, "invalid token"));
        }
        let next = self.lex();
        Ok(std::mem::replace(&mut self.token, next))
    }

    fn at_keyword(&self, keyword: Keyword) -> bool {
        self.token.kind == TokenKind::Keyword(keyword)
    }

    /// Consumes the current token if it is `kind`, else fails with "expected `what`, found …".
    fn expect(&mut self, kind: &TokenKind<'_>, what: &str) -> Result<()> {
        if self.token.kind == *kind {
            self.advance()?;
            Ok(())
        } else {
            Err(self.error_at_token(&format!("expected {what}, found")))
        }
    }

    #[cold]
    #[inline(never)]
    fn too_deep(&self) -> Error {
        self.error(
            self.token.pos,
            format!("selector nests deeper than {MAX_DEPTH} levels"),
        )
    }

    /// Fails unless `expr` (starting at `pos`) can be TRUE/FALSE/UNKNOWN.
    fn expect_condition(&self, expr: &Expr, pos: usize) -> Result<()> {
        let found = match expr.static_type() {
            StaticType::Boolean | StaticType::Unknown => return Ok(()),
            StaticType::Numeric => "a numeric expression",
            StaticType::String => "a string",
        };
        Err(self.error(pos, format!("expected a condition, found {found}")))
    }

    /// Fails unless `expr` (starting at `pos`) can be a number, as an operand of `operator`.
    fn expect_numeric(&self, expr: &Expr, pos: usize, operator: &str) -> Result<()> {
        let found = match expr.static_type() {
            StaticType::Numeric | StaticType::Unknown => return Ok(()),
            StaticType::Boolean => "a boolean",
            StaticType::String => "a string",
        };
        Err(self.error(
            pos,
            format!("{operator} needs numeric operands, found {found}"),
        ))
    }

    /// Fails when `left op right` compares a boolean with a number or a string, both known at
    /// parse time (`TRUE = 0`, `(a = 1) = 'x'`): the grammar compares booleans only with
    /// booleans, and the TCK requires the error. A string literal compared with a number stays
    /// valid and FALSE, as the specification says of unlike types.
    fn expect_comparable(&self, left: &Expr, right: &Expr, pos: usize, op: CmpOp) -> Result<()> {
        let describe = |static_type| match static_type {
            StaticType::Numeric => Some("a number"),
            StaticType::String => Some("a string"),
            StaticType::Boolean | StaticType::Unknown => None,
        };
        let other = match (left.static_type(), right.static_type()) {
            (StaticType::Boolean, other) | (other, StaticType::Boolean) => describe(other),
            _ => None,
        };
        match other {
            Some(other) => Err(self.error(
                pos,
                format!("{} cannot compare a boolean with {other}", op.quoted()),
            )),
            None => Ok(()),
        }
    }

    /// An expression made of operators binding at `min_level` or tighter.
    ///
    /// All recursion of the parser goes through here, so this is where depth is limited.
    fn expr(&mut self, min_level: u8) -> Result<Expr> {
        if self.depth == MAX_DEPTH {
            return Err(self.too_deep());
        }
        self.depth += 1;
        let expr = self.climb(min_level);
        self.depth -= 1;
        expr
    }

    fn climb(&mut self, min_level: u8) -> Result<Expr> {
        let start = self.token.pos;
        let (mut left, mut ceiling) = self.prefix(min_level)?;
        while let Some(level) = infix_level(&self.token.kind) {
            // An operator binding tighter than `ceiling` is one the previous operator's right
            // operand refused, because comparisons do not chain (`a = b = c`, `NOT a = b = c`):
            // stop, and let the caller report it.
            if level < min_level || level > ceiling {
                break;
            }
            left = self.infix(left, start)?;
            ceiling = if level == COMPARISON_LEVEL {
                COMPARISON_LEVEL - 1
            } else {
                level
            };
        }
        // An OR chain is complete here (the loop took every OR at this level), so each chain
        // is folded once.
        left.fold_equalities();
        Ok(left)
    }

    /// The expression's first operand: `NOT x`, a signed operand, or a primary. Also returns
    /// the loosest operator that may follow it.
    fn prefix(&mut self, min_level: u8) -> Result<(Expr, u8)> {
        match self.token.kind {
            TokenKind::Keyword(Keyword::Not) if min_level <= NOT_LEVEL => {
                self.advance()?;
                let start = self.token.pos;
                let operand = self.expr(NOT_LEVEL)?;
                self.expect_condition(&operand, start)?;
                Ok((Expr::Not(Box::new(operand)), NOT_LEVEL))
            }
            TokenKind::Minus | TokenKind::Plus => Ok((self.signed()?, NO_CEILING)),
            _ => Ok((self.primary()?, NO_CEILING)),
        }
    }

    /// Applies the infix or postfix operator at the current token to `left`, which starts at
    /// byte `start`.
    fn infix(&mut self, left: Expr, start: usize) -> Result<Expr> {
        let arithmetic = match self.token.kind {
            TokenKind::Keyword(Keyword::Or) => return self.junction(left, start, Keyword::Or),
            TokenKind::Keyword(Keyword::And) => return self.junction(left, start, Keyword::And),
            TokenKind::Eq => return self.comparison(left, start, CmpOp::Eq),
            TokenKind::Ne => return self.comparison(left, start, CmpOp::Ne),
            TokenKind::Lt => return self.comparison(left, start, CmpOp::Lt),
            TokenKind::Le => return self.comparison(left, start, CmpOp::Le),
            TokenKind::Gt => return self.comparison(left, start, CmpOp::Gt),
            TokenKind::Ge => return self.comparison(left, start, CmpOp::Ge),
            TokenKind::Keyword(Keyword::Not) => {
                self.advance()?;
                return self.negatable_predicate(left, start, true);
            }
            TokenKind::Keyword(Keyword::Between | Keyword::In | Keyword::Like) => {
                return self.negatable_predicate(left, start, false)
            }
            TokenKind::Keyword(Keyword::Is) => return self.is_null(left),
            TokenKind::Plus => ArithOp::Add,
            TokenKind::Minus => ArithOp::Sub,
            TokenKind::Star => ArithOp::Mul,
            TokenKind::Slash => ArithOp::Div,
            _ => return Err(self.error_at_token("unexpected")),
        };
        self.arithmetic(left, start, arithmetic)
    }

    /// `left AND …` or `left OR …`, flattened into one n-ary node.
    fn junction(&mut self, left: Expr, start: usize, keyword: Keyword) -> Result<Expr> {
        self.expect_condition(&left, start)?;
        self.advance()?;
        let right_start = self.token.pos;
        let level = if keyword == Keyword::Or {
            OR_LEVEL
        } else {
            AND_LEVEL
        };
        let right = self.expr(level + 1)?;
        self.expect_condition(&right, right_start)?;
        let mut terms = match (keyword, left) {
            (Keyword::Or, Expr::Or(terms)) | (Keyword::And, Expr::And(terms)) => terms,
            (_, left) => vec![left],
        };
        match (keyword, right) {
            (Keyword::Or, Expr::Or(inner)) | (Keyword::And, Expr::And(inner)) => {
                terms.extend(inner);
            }
            (_, right) => terms.push(right),
        }
        Ok(if keyword == Keyword::Or {
            Expr::Or(terms)
        } else {
            Expr::And(terms)
        })
    }

    /// `left op right` for a comparison operator.
    fn comparison(&mut self, left: Expr, start: usize, op: CmpOp) -> Result<Expr> {
        self.advance()?;
        let right_start = self.token.pos;
        let right = self.expr(ADDITIVE_LEVEL)?;
        if op.is_ordering() {
            self.expect_numeric(&left, start, op.quoted())?;
            self.expect_numeric(&right, right_start, op.quoted())?;
        } else {
            self.expect_comparable(&left, &right, right_start, op)?;
        }
        Ok(Expr::Compare {
            op,
            left: Box::new(left),
            right: Box::new(right),
        })
    }

    /// `left op right` for an arithmetic operator; a chain becomes one left-to-right node.
    fn arithmetic(&mut self, left: Expr, start: usize, op: ArithOp) -> Result<Expr> {
        self.expect_numeric(&left, start, op.quoted())?;
        self.advance()?;
        let right_start = self.token.pos;
        let level = match op {
            ArithOp::Add | ArithOp::Sub => ADDITIVE_LEVEL,
            ArithOp::Mul | ArithOp::Div => MULTIPLICATIVE_LEVEL,
        };
        let right = self.expr(level + 1)?;
        self.expect_numeric(&right, right_start, op.quoted())?;
        // `Arith` folds left to right, so appending to a left-hand chain (even a parenthesized
        // one) computes `left op right`.
        Ok(match left {
            Expr::Arith { first, mut rest } => {
                rest.push((op, right));
                Expr::Arith { first, rest }
            }
            left => Expr::Arith {
                first: Box::new(left),
                rest: vec![(op, right)],
            },
        })
    }

    /// BETWEEN, IN or LIKE, after the left operand and an optional NOT.
    fn negatable_predicate(&mut self, left: Expr, start: usize, negated: bool) -> Result<Expr> {
        match self.token.kind {
            TokenKind::Keyword(Keyword::Between) => self.between(left, start, negated),
            TokenKind::Keyword(Keyword::In) => self.in_list(left, start, negated),
            TokenKind::Keyword(Keyword::Like) => self.like(left, start, negated),
            _ => Err(self.error_at_token("expected BETWEEN, IN or LIKE after NOT, found")),
        }
    }

    fn between(&mut self, operand: Expr, start: usize, negated: bool) -> Result<Expr> {
        self.advance()?;
        self.expect_numeric(&operand, start, "BETWEEN")?;
        let low_start = self.token.pos;
        let low = self.expr(ADDITIVE_LEVEL)?;
        self.expect_numeric(&low, low_start, "BETWEEN")?;
        self.expect(&TokenKind::Keyword(Keyword::And), "AND in BETWEEN")?;
        let high_start = self.token.pos;
        let high = self.expr(ADDITIVE_LEVEL)?;
        self.expect_numeric(&high, high_start, "BETWEEN")?;
        Ok(Expr::Between {
            operand: Box::new(operand),
            low: Box::new(low),
            high: Box::new(high),
            negated,
        })
    }

    /// The identifier IN and LIKE apply to.
    fn identifier_operand(&self, operand: Expr, start: usize, keyword: &str) -> Result<Box<str>> {
        match operand {
            Expr::Ident(name) => Ok(name),
            _ => Err(self.error(start, format!("{keyword} needs an identifier on its left"))),
        }
    }

    /// Consumes a string literal, or fails with "expected `what`, found …".
    fn string_literal(&mut self, what: &str) -> Result<(String, usize)> {
        let token = self.advance()?;
        match token.kind {
            TokenKind::String(value) => Ok((value, token.pos)),
            other => Err(self.error(token.pos, format!("expected {what}, found {other}"))),
        }
    }

    fn in_list(&mut self, operand: Expr, start: usize, negated: bool) -> Result<Expr> {
        let ident = self.identifier_operand(operand, start, "IN")?;
        self.advance()?;
        self.expect(&TokenKind::LParen, "'(' after IN")?;
        let mut values: Vec<Arc<str>> = Vec::new();
        loop {
            let (value, _) = self.string_literal("a string literal in the IN list")?;
            values.push(value.into());
            match self.token.kind {
                TokenKind::Comma => {
                    self.advance()?;
                }
                TokenKind::RParen => {
                    self.advance()?;
                    break;
                }
                _ => return Err(self.error_at_token("expected ',' or ')' in the IN list, found")),
            }
        }
        Ok(Expr::In {
            ident,
            values: Box::new(InList::new(values)),
            negated,
        })
    }

    fn like(&mut self, operand: Expr, start: usize, negated: bool) -> Result<Expr> {
        let ident = self.identifier_operand(operand, start, "LIKE")?;
        self.advance()?;
        let (pattern, pattern_pos) = self.string_literal("a string literal pattern after LIKE")?;
        let mut escape = None;
        if self.at_keyword(Keyword::Escape) {
            self.advance()?;
            let (text, escape_pos) = self.string_literal("a string literal after ESCAPE")?;
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => escape = Some(c),
                _ => return Err(self.error(escape_pos, "ESCAPE needs exactly one character")),
            }
        }
        let pattern = LikePattern::compile(&pattern, escape)
            .map_err(|_| self.error(pattern_pos, "LIKE pattern ends with its escape character"))?;
        Ok(Expr::Like {
            ident,
            pattern: Box::new(pattern),
            negated,
        })
    }

    fn is_null(&mut self, operand: Expr) -> Result<Expr> {
        self.advance()?;
        let negated = self.at_keyword(Keyword::Not);
        if negated {
            self.advance()?;
        }
        let what = if negated {
            "NULL after IS NOT"
        } else {
            "NULL after IS"
        };
        self.expect(&TokenKind::Keyword(Keyword::Null), what)?;
        Ok(Expr::IsNull {
            operand: Box::new(operand),
            negated,
        })
    }

    /// Unary `-` or `+` and its operand; signed numeric literals fold into one literal, so
    /// `-5` is the literal -5 as the specification reads it.
    fn signed(&mut self) -> Result<Expr> {
        let negate = self.token.kind == TokenKind::Minus;
        let sign_pos = self.token.pos;
        self.advance()?;
        if negate && self.token.kind == TokenKind::LongMinMagnitude {
            self.advance()?;
            return Ok(Expr::Literal(SelectorValue::Long(i64::MIN)));
        }
        let operand = self.expr(UNARY_LEVEL)?;
        let operator = if negate { "unary '-'" } else { "unary '+'" };
        self.expect_numeric(&operand, sign_pos, operator)?;
        Ok(match (negate, operand) {
            // A numeric literal, as `expect_numeric` let it through.
            (false, literal @ Expr::Literal(_)) => literal,
            (true, Expr::Literal(SelectorValue::Long(n))) if n != i64::MIN => {
                Expr::Literal(SelectorValue::Long(-n))
            }
            (true, Expr::Literal(SelectorValue::Double(d))) => {
                Expr::Literal(SelectorValue::Double(-d))
            }
            (negate, operand) => Expr::Unary {
                negate,
                operand: Box::new(operand),
            },
        })
    }

    /// A literal, an identifier or a parenthesized expression.
    fn primary(&mut self) -> Result<Expr> {
        let expr = match self.token.kind {
            TokenKind::Ident(name) => {
                if DISALLOWED_IDENTIFIERS.contains(&name) {
                    return Err(self.disallowed_identifier(name));
                }
                Expr::Ident(name.into())
            }
            TokenKind::String(ref value) => {
                Expr::Literal(SelectorValue::String(value.as_str().into()))
            }
            TokenKind::Long(n) => Expr::Literal(SelectorValue::Long(n)),
            TokenKind::Double(d) => Expr::Literal(SelectorValue::Double(d)),
            TokenKind::Keyword(Keyword::True) => Expr::Literal(SelectorValue::Bool(true)),
            TokenKind::Keyword(Keyword::False) => Expr::Literal(SelectorValue::Bool(false)),
            TokenKind::Keyword(Keyword::Null) => return Err(self.null_as_value()),
            TokenKind::LParen => return self.parenthesized(),
            TokenKind::LongMinMagnitude => {
                return Err(self.error(self.token.pos, "integer literal out of range"))
            }
            _ => return Err(self.error_at_token("expected an expression, found")),
        };
        self.advance()?;
        Ok(expr)
    }

    fn parenthesized(&mut self) -> Result<Expr> {
        self.advance()?;
        let inner = self.expr(LOOSEST)?;
        self.expect(&TokenKind::RParen, "')'")?;
        Ok(inner)
    }

    /// JMS §3.8.1.1: NULL is no value; it appears only in `IS [NOT] NULL`.
    #[cold]
    #[inline(never)]
    fn null_as_value(&self) -> Error {
        self.error(
            self.token.pos,
            "NULL is not a value: it may only follow IS or IS NOT",
        )
    }

    #[cold]
    #[inline(never)]
    fn disallowed_identifier(&self, name: &str) -> Error {
        self.error(
            self.token.pos,
            format!("identifier '{name}' cannot be used in a selector"),
        )
    }
}
