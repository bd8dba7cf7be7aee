//! Compiling a selector to Lua, for backends that evaluate selectors inside a Lua engine
//! (Redis scripts): [`Selector::to_lua`] and the runtime it calls, [`LUA_RUNTIME`].
//!
//! The compiled chunk is `local K, V = ...; return <condition>`: `K` is the runtime table
//! that [`LUA_RUNTIME`] defines, and `V(name)` returns an identifier's value, `nil` for NULL,
//! else `{'b', bool}`, `{'s', string}`, `{'d', number}` or a long made by `K.long(text)`
//! (decimal text). Run it with `pcall`: it returns `true`, `false` or `nil` (UNKNOWN), the
//! same as [`Selector::evaluate`], or raises `K.UNDECIDED` where Lua's doubles cannot
//! reproduce the api's exact 64-bit arithmetic (an arithmetic operand or result beyond
//! ±2^53); the caller then evaluates that message with [`Selector::evaluate`].
//!
//! Literal strings and names are written as decimal byte escapes, so no selector text can
//! break out of its string; the chunk has no loops, and its nesting is bounded by the
//! parser's depth limit.

use std::fmt::Write;

use super::ast::{ArithOp, CmpOp, Expr};
use super::like::LikeToken;
use super::{Selector, SelectorValue};

/// The Lua runtime a compiled selector calls (`K`): one Lua expression whose value is the
/// runtime table. Embed it in a script as `local K = <LUA_RUNTIME>` (Redis scripts may not
/// create globals) and pass `K` to each compiled chunk.
pub const LUA_RUNTIME: &str = include_str!("runtime.lua");

impl Selector {
    /// The selector as a Lua chunk (see the [module](self) docs for its contract).
    pub fn to_lua(&self) -> String {
        let mut out = String::from("local K, V = ...\nreturn ");
        match self.root() {
            None => out.push_str("true"),
            Some(root) => truth(root, &mut out),
        }
        out
    }
}

fn lua_string(text: &str, out: &mut String) {
    out.push('"');
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\{b:03}");
        }
    }
    out.push('"');
}

fn literal(value: &SelectorValue, out: &mut String) {
    match value {
        SelectorValue::Bool(b) => {
            let _ = write!(out, "{{'b',{b}}}");
        }
        SelectorValue::Long(n) => {
            let _ = write!(out, "K.long('{n}')");
        }
        SelectorValue::Double(d) => {
            out.push_str("K.dbl('");
            out.push_str(&double_text(*d));
            out.push_str("')");
        }
        SelectorValue::String(s) => {
            out.push_str("{'s',");
            lua_string(s, out);
            out.push('}');
        }
    }
}

/// A double as text the runtime's `K.num` reads back exactly.
pub(crate) fn double_text(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        // The shortest text that reads back as exactly this double.
        format!("{d:e}")
    }
}

fn op_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "<>",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

fn arith_name(op: ArithOp) -> &'static str {
    match op {
        ArithOp::Add => "+",
        ArithOp::Sub => "-",
        ArithOp::Mul => "*",
        ArithOp::Div => "/",
    }
}

fn ident(name: &str, out: &mut String) {
    out.push_str("V(");
    lua_string(name, out);
    out.push(')');
}

/// Compiles `expr` as a condition: Lua `true`, `false` or `nil`.
fn truth(expr: &Expr, out: &mut String) {
    match expr {
        Expr::Not(operand) => {
            out.push_str("K.not3(");
            truth(operand, out);
            out.push(')');
        }
        Expr::And(terms) | Expr::Or(terms) => {
            out.push_str(if matches!(expr, Expr::And(_)) {
                "K.and3("
            } else {
                "K.or3("
            });
            let _ = write!(out, "{}", terms.len());
            for term in terms {
                out.push(',');
                truth(term, out);
            }
            out.push(')');
        }
        Expr::Compare { op, left, right } => {
            let _ = write!(out, "K.cmp('{}',", op_name(*op));
            value(left, out);
            out.push(',');
            value(right, out);
            out.push(')');
        }
        Expr::Between {
            operand,
            low,
            high,
            negated,
        } => {
            let _ = write!(out, "K.between({negated},");
            value(operand, out);
            out.push(',');
            value(low, out);
            out.push(',');
            value(high, out);
            out.push(')');
        }
        Expr::In {
            ident: name,
            values,
            negated,
        } => {
            let _ = write!(out, "K.isin({negated},");
            ident(name, out);
            out.push_str(",{");
            for v in values.values() {
                out.push('[');
                lua_string(&v, out);
                out.push_str("]=true,");
            }
            out.push_str("})");
        }
        Expr::Like {
            ident: name,
            pattern,
            negated,
        } => {
            let _ = write!(out, "K.like({negated},");
            ident(name, out);
            out.push_str(",{");
            for token in pattern.tokens() {
                match token {
                    LikeToken::Char(c) => lua_string(c.encode_utf8(&mut [0; 4]), out),
                    LikeToken::One => out.push('1'),
                    LikeToken::Any => out.push('2'),
                }
                out.push(',');
            }
            out.push_str("})");
        }
        Expr::AnyEqual {
            ident: name,
            values,
        } => {
            out.push_str("K.anyeq(");
            ident(name, out);
            out.push_str(",{");
            for v in values.literals() {
                literal(v, out);
                out.push(',');
            }
            out.push_str("})");
        }
        Expr::IsNull { operand, negated } => {
            let _ = write!(out, "K.isnull({negated},");
            value(operand, out);
            out.push(')');
        }
        Expr::Literal(_) | Expr::Ident(_) | Expr::Arith { .. } | Expr::Unary { .. } => {
            out.push_str("K.truth(");
            value(expr, out);
            out.push(')');
        }
    }
}

/// Compiles `expr` as a value: `nil` or a typed value.
fn value(expr: &Expr, out: &mut String) {
    match expr {
        Expr::Literal(v) => literal(v, out),
        Expr::Ident(name) => ident(name, out),
        Expr::Arith { first, rest } => {
            for _ in rest {
                out.push_str("K.ar(");
            }
            value(first, out);
            for (op, operand) in rest {
                let _ = write!(out, ",'{}',", arith_name(*op));
                value(operand, out);
                out.push(')');
            }
        }
        Expr::Unary { negate, operand } => {
            out.push_str(if *negate { "K.neg(" } else { "K.pos(" });
            value(operand, out);
            out.push(')');
        }
        _ => {
            out.push_str("K.bool(");
            truth(expr, out);
            out.push(')');
        }
    }
}
