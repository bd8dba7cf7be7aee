//! `LIKE` patterns: `_` matches one character, `%` any run of characters (including none).
//!
//! A pattern is compiled once, when the selector is parsed, into segments: the pieces between
//! its `%`s. The first segment must match at the start of the text, the last at its end (both
//! have a fixed length in characters), and the middle ones are found in order, each at its
//! leftmost place after the previous one. Leftmost is always right: a match that puts a middle
//! segment further right can put it at the leftmost place instead, which leaves more text for
//! the segments after it.
//!
//! A segment without `_` is found with the standard library's two-way substring search, which
//! is linear; one with `_` with a bit-parallel shift-and automaton ([`ShiftAnd`]). A match thus
//! costs O(text + pattern) for patterns without `_` between `%`s and O(text × segment / 64) at
//! worst otherwise, never pattern × text, and never more memory than O(pattern).
//!
//! Characters are Unicode scalar values: `_` is one `char` whatever its UTF-8 length. Segments
//! without `_` are compared as UTF-8 bytes, which is the same thing: in valid UTF-8, one
//! string found inside another always starts and ends at character boundaries.

use std::collections::BTreeMap;
use std::ops::Range;

/// One element of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    /// This exact character.
    Char(char),
    /// `_`: exactly one character.
    AnyOne,
}

/// The first or last segment of a pattern, matched in place.
#[derive(Debug, PartialEq, Eq)]
struct AnchoredSegment {
    elements: Box<[Element]>,
    /// The segment as text when it has no `_`, compared as a string.
    literal: Option<Box<str>>,
}

impl AnchoredSegment {
    fn new(elements: Vec<Element>) -> Self {
        AnchoredSegment {
            literal: literal_text(&elements),
            elements: elements.into_boxed_slice(),
        }
    }

    /// If `text` starts with this segment: the byte length of the match.
    fn match_start(&self, text: &str) -> Option<usize> {
        if let Some(literal) = &self.literal {
            return text.starts_with(&**literal).then_some(literal.len());
        }
        let mut chars = text.char_indices();
        for element in self.elements.iter() {
            let (_, c) = chars.next()?;
            if !element.accepts(c) {
                return None;
            }
        }
        Some(chars.offset())
    }

    /// If `text` ends with this segment: the byte offset where the match starts.
    fn match_end(&self, text: &str) -> Option<usize> {
        if let Some(literal) = &self.literal {
            return text
                .ends_with(&**literal)
                .then(|| text.len() - literal.len());
        }
        let mut chars = text.char_indices().rev();
        let mut start = text.len();
        for element in self.elements.iter().rev() {
            let (at, c) = chars.next()?;
            if !element.accepts(c) {
                return None;
            }
            start = at;
        }
        Some(start)
    }
}

impl Element {
    fn accepts(self, c: char) -> bool {
        match self {
            Element::Char(expected) => expected == c,
            Element::AnyOne => true,
        }
    }
}

/// The segment's text, when it has no `_`.
fn literal_text(elements: &[Element]) -> Option<Box<str>> {
    elements
        .iter()
        .map(|element| match element {
            Element::Char(c) => Some(*c),
            Element::AnyOne => None,
        })
        .collect::<Option<String>>()
        .map(String::into_boxed_str)
}

/// A non-empty segment between two `%`, and how to find it.
#[derive(Debug, PartialEq, Eq)]
enum MiddleSegment {
    /// No `_`: a substring search.
    Literal(Box<str>),
    /// With `_`: a shift-and automaton.
    Wildcard(ShiftAnd),
}

impl MiddleSegment {
    fn new(elements: Vec<Element>) -> Self {
        match literal_text(&elements) {
            Some(literal) => MiddleSegment::Literal(literal),
            None => MiddleSegment::Wildcard(ShiftAnd::new(&elements)),
        }
    }

    /// The byte offset just past the leftmost match in `text`.
    fn find_end(&self, text: &str) -> Option<usize> {
        match self {
            MiddleSegment::Literal(literal) => {
                text.find(&**literal).map(|start| start + literal.len())
            }
            MiddleSegment::Wildcard(automaton) => automaton.find_end(text),
        }
    }
}

/// Where a character occurs in a [`ShiftAnd`] segment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Occurrences {
    /// A frequent character: the index of its bit mask in [`ShiftAnd::masks`].
    Mask(usize),
    /// A rare character: its range of positions in [`ShiftAnd::positions`].
    Positions(Range<usize>),
}

/// Bit-parallel search (shift-and, Baeza-Yates and Gonnet) for a segment with `_`.
///
/// Bit `i` of the state is set when the last `i + 1` characters read match the segment's first
/// `i + 1` elements, so reading a character shifts the state by one and keeps the bits of the
/// positions that accept it. A character that occurs at least `words` times in the segment has
/// a bit mask (at most 64 characters do, so masks take O(segment) memory); a rarer one keeps a
/// list of its fewer than `words` positions. Either way one text character costs O(words),
/// where `words` is the segment length / 64, rounded up.
#[derive(Debug, PartialEq, Eq)]
struct ShiftAnd {
    /// Segment length in characters, at least 1.
    len: usize,
    /// 64-bit words per state.
    words: usize,
    /// The positions holding `_`, which accept any character.
    any: Box<[u64]>,
    /// Every literal character of the segment, sorted, and where it occurs.
    chars: Box<[(char, Occurrences)]>,
    /// Bit masks of the frequent characters, `words` words each.
    masks: Box<[u64]>,
    /// Positions of the rare characters.
    positions: Box<[usize]>,
}

impl ShiftAnd {
    /// The automaton for `elements`, which are not empty.
    fn new(elements: &[Element]) -> Self {
        let len = elements.len();
        let words = len.div_ceil(64);
        let mut any = vec![0u64; words];
        let mut by_char: BTreeMap<char, Vec<usize>> = BTreeMap::new();
        for (position, element) in elements.iter().enumerate() {
            match element {
                Element::AnyOne => set_bit(&mut any, position),
                Element::Char(c) => by_char.entry(*c).or_default().push(position),
            }
        }
        let mut chars = Vec::with_capacity(by_char.len());
        let mut masks = Vec::new();
        let mut positions = Vec::new();
        for (c, at) in by_char {
            let occurrences = if at.len() >= words {
                let index = masks.len() / words;
                let mut mask = vec![0u64; words];
                for position in at {
                    set_bit(&mut mask, position);
                }
                masks.extend(mask);
                Occurrences::Mask(index)
            } else {
                let start = positions.len();
                positions.extend(at);
                Occurrences::Positions(start..positions.len())
            };
            chars.push((c, occurrences));
        }
        ShiftAnd {
            len,
            words,
            any: any.into_boxed_slice(),
            chars: chars.into_boxed_slice(),
            masks: masks.into_boxed_slice(),
            positions: positions.into_boxed_slice(),
        }
    }

    /// The byte offset just past the leftmost match in `text`. All matches have the same
    /// length, so the one that ends first is the one that starts first.
    fn find_end(&self, text: &str) -> Option<usize> {
        let Some(last) = self.len.checked_sub(1) else {
            return Some(0);
        };
        let (last_word, last_bit) = (last / 64, 1u64 << (last % 64));
        let mut state = vec![0u64; self.words];
        let mut kept = vec![0u64; self.words];
        for (at, c) in text.char_indices() {
            // Every position moves on by one, and a new match may begin here.
            let mut carry = 1;
            for word in state.iter_mut() {
                let out = *word >> 63;
                *word = (*word << 1) | carry;
                carry = out;
            }
            match self.occurrences(c) {
                Some(Occurrences::Mask(index)) => {
                    let start = index * self.words;
                    let mask = self
                        .masks
                        .get(start..start + self.words)
                        .unwrap_or_default();
                    for ((word, any), mask) in state.iter_mut().zip(&*self.any).zip(mask) {
                        *word &= any | mask;
                    }
                }
                rare => {
                    let positions = match rare {
                        Some(Occurrences::Positions(range)) => {
                            self.positions.get(range.clone()).unwrap_or_default()
                        }
                        _ => &[],
                    };
                    for &position in positions {
                        if get_bit(&state, position) {
                            set_bit(&mut kept, position);
                        }
                    }
                    for ((word, any), kept) in state.iter_mut().zip(&*self.any).zip(&mut kept) {
                        *word = (*word & any) | *kept;
                        *kept = 0;
                    }
                }
            }
            if state
                .get(last_word)
                .is_some_and(|word| word & last_bit != 0)
            {
                return Some(at + c.len_utf8());
            }
        }
        None
    }

    fn occurrences(&self, c: char) -> Option<&Occurrences> {
        self.chars
            .binary_search_by_key(&c, |(candidate, _)| *candidate)
            .ok()
            .and_then(|index| self.chars.get(index))
            .map(|(_, occurrences)| occurrences)
    }
}

fn set_bit(words: &mut [u64], position: usize) {
    if let Some(word) = words.get_mut(position / 64) {
        *word |= 1 << (position % 64);
    }
}

fn get_bit(words: &[u64], position: usize) -> bool {
    words
        .get(position / 64)
        .is_some_and(|word| word & (1 << (position % 64)) != 0)
}

/// The segments after the first `%` of a pattern.
#[derive(Debug, PartialEq, Eq)]
struct AfterPercent {
    /// Non-empty segments between two `%`, in order.
    middle: Box<[MiddleSegment]>,
    /// The segment after the last `%`, possibly empty.
    tail: AnchoredSegment,
}

/// A compiled `LIKE` pattern.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct LikePattern {
    /// The pattern as tokens, for compiling it elsewhere (see `lua.rs`).
    tokens: Box<[LikeToken]>,
    /// The segment before the first `%` (the whole pattern if it has none), possibly empty.
    head: AnchoredSegment,
    /// `None` for a pattern without `%`, which must match the whole text.
    after_percent: Option<AfterPercent>,
}

/// One token of a `LIKE` pattern, escapes resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LikeToken {
    /// This exact character.
    Char(char),
    /// `_`: exactly one character.
    One,
    /// `%`: any run of characters.
    Any,
}

/// The pattern ends with an escape character that has nothing to escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DanglingEscape;

impl LikePattern {
    /// Compiles `pattern`. The `escape` character makes the character after it literal; it is
    /// meant for `_`, `%` and itself, and any other character after it stands for itself.
    pub(super) fn compile(pattern: &str, escape: Option<char>) -> Result<Self, DanglingEscape> {
        let mut segments: Vec<Vec<Element>> = Vec::new();
        let mut current = Vec::new();
        let mut tokens = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let element = if Some(c) == escape {
                Element::Char(chars.next().ok_or(DanglingEscape)?)
            } else {
                match c {
                    '_' => Element::AnyOne,
                    '%' => {
                        tokens.push(LikeToken::Any);
                        segments.push(std::mem::take(&mut current));
                        continue;
                    }
                    other => Element::Char(other),
                }
            };
            tokens.push(match element {
                Element::Char(c) => LikeToken::Char(c),
                Element::AnyOne => LikeToken::One,
            });
            current.push(element);
        }
        segments.push(current);
        let mut segments = segments.into_iter();
        let head = AnchoredSegment::new(segments.next().unwrap_or_default());
        let mut rest: Vec<Vec<Element>> = segments.collect();
        let after_percent = rest.pop().map(|tail| AfterPercent {
            // Empty middle segments come from consecutive `%`, which mean the same as one.
            middle: rest
                .into_iter()
                .filter(|segment| !segment.is_empty())
                .map(MiddleSegment::new)
                .collect(),
            tail: AnchoredSegment::new(tail),
        });
        Ok(LikePattern {
            tokens: tokens.into_boxed_slice(),
            head,
            after_percent,
        })
    }

    /// The pattern's tokens, escapes resolved.
    pub(super) fn tokens(&self) -> &[LikeToken] {
        &self.tokens
    }

    /// Whether the whole of `text` matches the pattern.
    pub(super) fn matches(&self, text: &str) -> bool {
        let Some(head_end) = self.head.match_start(text) else {
            return false;
        };
        let rest = text.get(head_end..).unwrap_or_default();
        let Some(after_percent) = &self.after_percent else {
            return rest.is_empty();
        };
        let Some(tail_start) = after_percent.tail.match_end(rest) else {
            return false;
        };
        let mut unmatched = rest.get(..tail_start).unwrap_or_default();
        for segment in after_percent.middle.iter() {
            let Some(end) = segment.find_end(unmatched) else {
                return false;
            };
            unmatched = unmatched.get(end..).unwrap_or_default();
        }
        true
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

    #[test]
    fn segments_with_underscore_longer_than_a_word() {
        // 200-character middle segments: four 64-bit words of automaton state.
        let a99 = "a".repeat(99);
        let pattern = format!("%{a99}x_{a99}%");
        assert!(like(&pattern, &format!("b{a99}xé{a99}b")));
        assert!(like(&pattern, &format!("{a99}{a99}x☃{a99}{a99}")));
        assert!(!like(&pattern, &format!("{a99}x{a99}")));
        assert!(!like(&pattern, &format!("{a99}y_{a99}")));
        assert!(!like(&pattern, &format!("a{}x_{a99}", "a".repeat(97))));
        // Only `_`: any 130 characters.
        let pattern = format!("%{}%", "_".repeat(130));
        assert!(like(&pattern, &"é".repeat(130)));
        assert!(!like(&pattern, &"é".repeat(129)));
    }

    #[test]
    fn frequent_characters_get_masks_rare_ones_positions() {
        let elements: Vec<Element> = format!("{}_x{}", "a".repeat(100), "b".repeat(3))
            .chars()
            .map(|c| match c {
                '_' => Element::AnyOne,
                c => Element::Char(c),
            })
            .collect();
        let automaton = ShiftAnd::new(&elements);
        assert_eq!(automaton.words, 2);
        assert!(matches!(
            automaton.occurrences('a'),
            Some(Occurrences::Mask(0))
        ));
        assert!(matches!(
            automaton.occurrences('b'),
            Some(Occurrences::Mask(1))
        ));
        assert!(matches!(
            automaton.occurrences('x'),
            Some(Occurrences::Positions(_))
        ));
        assert_eq!(automaton.occurrences('y'), None);
        let text = format!("ab{}☃xbbbc", "a".repeat(100));
        let end = automaton.find_end(&text).expect("found");
        assert_eq!(&text[end..], "c");
        assert_eq!(
            automaton.find_end(&format!("{}☃ybbb", "a".repeat(100))),
            None
        );
    }

    #[test]
    fn first_and_last_segments_do_not_overlap() {
        assert!(!like("a%a", "a"));
        assert!(like("a%a", "aa"));
        assert!(!like("ab%bc", "abc"));
        assert!(like("ab%bc", "abbc"));
        assert!(!like("_%_", "é"));
        assert!(like("a_%_b", "aé☃b"));
        assert!(!like("a_%_b", "aéb"));
        assert!(!like("%ab%ba%", "aba"));
        assert!(like("%ab%ba%", "abba"));
    }
}
