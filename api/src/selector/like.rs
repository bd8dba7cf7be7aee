//! `LIKE` patterns: `_` matches one character, `%` any run of characters (including none).
//!
//! Matching works on Unicode scalar values with the classic two-pointer wildcard algorithm,
//! which backtracks only to the most recent `%`: O(pattern × text) in the worst case, never
//! exponential, and no allocation per match.

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    /// This exact character.
    Char(char),
    /// `_`: exactly one character.
    AnyOne,
    /// `%`: any run of characters, possibly empty.
    AnyRun,
}

/// A compiled `LIKE` pattern.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct LikePattern {
    elements: Box<[Element]>,
}

/// The pattern ends with an escape character that has nothing to escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DanglingEscape;

impl LikePattern {
    /// Compiles `pattern`. The `escape` character makes the character after it literal; it is
    /// meant for `_`, `%` and itself, and any other character after it stands for itself.
    pub(super) fn compile(pattern: &str, escape: Option<char>) -> Result<Self, DanglingEscape> {
        let mut elements = Vec::with_capacity(pattern.len());
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let element = if Some(c) == escape {
                Element::Char(chars.next().ok_or(DanglingEscape)?)
            } else {
                match c {
                    '_' => Element::AnyOne,
                    // Consecutive `%` mean the same as one.
                    '%' if elements.last() == Some(&Element::AnyRun) => continue,
                    '%' => Element::AnyRun,
                    other => Element::Char(other),
                }
            };
            elements.push(element);
        }
        Ok(LikePattern {
            elements: elements.into_boxed_slice(),
        })
    }

    /// Whether the whole of `text` matches the pattern.
    pub(super) fn matches(&self, text: &str) -> bool {
        let next_char = |at: usize| text.get(at..).and_then(|rest| rest.chars().next());
        // Pattern index and text byte offset.
        let (mut p, mut t) = (0, 0);
        // After a mismatch, resume here: the pattern element after the latest `%`, and the text
        // offset that `%` currently stops at.
        let mut resume: Option<(usize, usize)> = None;
        loop {
            let c = next_char(t);
            match (self.elements.get(p), c) {
                (Some(Element::AnyRun), _) => {
                    p += 1;
                    resume = Some((p, t));
                    continue;
                }
                (Some(Element::AnyOne), Some(c)) => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                (Some(Element::Char(expected)), Some(c)) if *expected == c => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                (None, None) => return true,
                _ => {}
            }
            // Mismatch: let the latest `%` swallow one more character and retry after it.
            let Some((resume_p, resume_t)) = resume else {
                return false;
            };
            let Some(swallowed) = next_char(resume_t) else {
                return false;
            };
            let resume_t = resume_t + swallowed.len_utf8();
            resume = Some((resume_p, resume_t));
            p = resume_p;
            t = resume_t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(pattern: &str, text: &str) -> bool {
        LikePattern::compile(pattern, None)
            .expect("valid pattern")
            .matches(text)
    }

    fn like_escaped(pattern: &str, escape: char, text: &str) -> bool {
        LikePattern::compile(pattern, Some(escape))
            .expect("valid pattern")
            .matches(text)
    }

    #[test]
    fn literal_patterns_match_exactly() {
        assert!(like("abc", "abc"));
        assert!(!like("abc", "abcd"));
        assert!(!like("abc", "ab"));
        assert!(!like("abc", "ABC"));
        assert!(like("", ""));
        assert!(!like("", "a"));
    }

    #[test]
    fn underscore_is_exactly_one_character() {
        assert!(like("_", "a"));
        assert!(like("_", "é"));
        assert!(like("_", "☃"));
        assert!(!like("_", ""));
        assert!(!like("_", "ab"));
        assert!(like("a_c", "abc"));
        assert!(like("a_c", "a☃c"));
        assert!(!like("a_c", "ac"));
        assert!(like("__", "😀é"));
    }

    #[test]
    fn percent_is_any_run() {
        assert!(like("%", ""));
        assert!(like("%", "anything"));
        assert!(like("%%", ""));
        assert!(like("a%", "a"));
        assert!(like("a%", "abc"));
        assert!(!like("a%", "ba"));
        assert!(like("%a", "bca"));
        assert!(!like("%a", "ab"));
        assert!(like("%b%", "abc"));
        assert!(!like("%x%", "abc"));
        assert!(like("a%c%e", "abcde"));
        assert!(like("a%c%e", "ace"));
        assert!(!like("a%c%e", "acd"));
        assert!(like("%ab%ab%", "xxabyyab"));
        assert!(like("%aab", "aaab"));
        assert!(like("_%_", "ab"));
        assert!(!like("_%_", "a"));
        assert!(like("%_%", "a"));
        assert!(like("12%3", "123"));
        assert!(like("%é%", "café au lait"));
    }

    #[test]
    fn escape_makes_wildcards_literal() {
        assert!(like_escaped("\\_%", '\\', "_foo"));
        assert!(!like_escaped("\\_%", '\\', "xfoo"));
        assert!(like_escaped("100!%", '!', "100%"));
        assert!(!like_escaped("100!%", '!', "1000"));
        assert!(like_escaped("a!!b", '!', "a!b"));
        assert!(like_escaped("!a", '!', "a"));
        assert!(like_escaped("%%%_", '%', "%_"));
        assert!(like_escaped("é☃_", '☃', "é_"));
        assert_eq!(
            LikePattern::compile("abc\\", Some('\\')),
            Err(DanglingEscape)
        );
        assert_eq!(LikePattern::compile("a!!!", Some('!')), Err(DanglingEscape));
    }

    #[test]
    fn no_exponential_blowup() {
        let text = "a".repeat(10_000);
        let pattern = format!("{}b", "%a".repeat(50));
        assert!(!like(&pattern, &text));
        let pattern = "%a".repeat(50);
        assert!(like(&pattern, &text));
    }
}
