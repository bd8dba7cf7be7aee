//! [`Selector`]: a parsed selector and its public operations.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::ast::Expr;
use super::{parser, required, SelectorSource, SelectorValue};
use crate::{Error, Result};

/// A parsed JMS message selector, ready to be evaluated against many messages.
///
/// Parse once with [`Selector::parse`], then call [`Selector::matches`] per message. Cloning is
/// cheap (the parsed form is shared) and a `Selector` is `Send + Sync`, so one parse can serve
/// every consumer and thread.
#[derive(Debug, Clone)]
pub struct Selector {
    text: Arc<str>,
    /// `None` for the empty selector, which matches every message.
    root: Option<Arc<Expr>>,
}

impl Selector {
    /// The parsed expression; `None` for the empty selector.
    pub(super) fn root(&self) -> Option<&Expr> {
        self.root.as_deref()
    }

    /// Parses selector text.
    ///
    /// Empty or whitespace-only text gives a selector that matches every message.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSelector`], whose `position` is the byte offset of the offending token,
    /// for a syntax error, a disallowed header (`JMSDestination`, `JMSReplyTo`,
    /// `JMSExpiration`, `JMSRedelivered`, `JMSDeliveryTime`), `NULL` anywhere but after `IS`
    /// or `IS NOT`, an expression that can never be TRUE because of its types (`'abc'`,
    /// `1 + 2`, `name > 'a'`, `'a' + 1 = 2`, `TRUE = 0`) or nesting deeper than 128 levels.
    pub fn parse(text: &str) -> Result<Selector> {
        let root = parser::parse(text)?;
        Ok(Selector {
            text: text.into(),
            root: root.map(Arc::new),
        })
    }

    /// The text this selector was parsed from, unchanged.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True for the empty selector, which matches every message.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Evaluates the selector with SQL three-valued logic: `Some(true)` is TRUE, `Some(false)`
    /// FALSE and `None` UNKNOWN (for instance when a property it compares is absent).
    pub fn evaluate(&self, source: &dyn SelectorSource) -> Option<bool> {
        match &self.root {
            None => Some(true),
            Some(root) => root.truth(source),
        }
    }

    /// Whether the selector selects the message: only TRUE does, FALSE and UNKNOWN do not.
    pub fn matches(&self, source: &dyn SelectorSource) -> bool {
        self.evaluate(source) == Some(true)
    }

    /// Equality conditions a message must meet for the selector to be TRUE, for a broker to
    /// pre-filter messages with an index.
    ///
    /// Looks at the top-level AND-conjuncts of the forms `ident = literal`, `literal = ident`,
    /// `ident IN ('a', …)` (not `NOT IN`) and `ident = a OR ident = b …`, and returns each identifier once with the values
    /// it must equal ([`SelectorValue`] equality); an identifier constrained by several
    /// conjuncts gets the intersection. The result is empty when there are no such conjuncts,
    /// for instance under a top-level OR. It is never wrong: whenever the selector is TRUE for
    /// a message, that message's value of each returned identifier equals one of its values.
    /// Since numbers compare across types, `x = 5` yields both `Long(5)` and `Double(5.0)`;
    /// an integral double literal of magnitude between 2^53 and 2^63, which many longs equal,
    /// is left out.
    pub fn required_equalities(&self) -> Vec<(String, Vec<SelectorValue>)> {
        let Some(root) = &self.root else {
            return Vec::new();
        };
        let conjuncts = match &**root {
            Expr::And(terms) => terms.as_slice(),
            single => std::slice::from_ref(single),
        };
        required::required_equalities(conjuncts)
    }
}

impl fmt::Display for Selector {
    /// Writes the original selector text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Selector {
    type Err = Error;

    /// Same as [`Selector::parse`].
    fn from_str(text: &str) -> Result<Selector> {
        Selector::parse(text)
    }
}
