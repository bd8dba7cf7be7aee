//! Tokenizer: turns selector text into tokens, each tagged with the byte offset it starts at.
//!
//! The lexer is pulled one token at a time by the parser, which reports a lexical problem only
//! when it reaches the bad token, so the first problem in text order is the one reported.

use std::fmt;

/// A lexical problem: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LexError {
    pub(super) position: usize,
    pub(super) reason: String,
}

impl LexError {
    fn new(position: usize, reason: impl Into<String>) -> Self {
        LexError {
            position,
            reason: reason.into(),
        }
    }
}

type LexResult<T> = std::result::Result<T, LexError>;

/// The reserved words of the selector language; they match case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyword {
    Null,
    True,
    False,
    Not,
    And,
    Or,
    Between,
    Like,
    In,
    Is,
    Escape,
}

impl Keyword {
    const ALL: [Keyword; 11] = [
        Keyword::Null,
        Keyword::True,
        Keyword::False,
        Keyword::Not,
        Keyword::And,
        Keyword::Or,
        Keyword::Between,
        Keyword::Like,
        Keyword::In,
        Keyword::Is,
        Keyword::Escape,
    ];

    /// The canonical (upper-case) spelling.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Keyword::Null => "NULL",
            Keyword::True => "TRUE",
            Keyword::False => "FALSE",
            Keyword::Not => "NOT",
            Keyword::And => "AND",
            Keyword::Or => "OR",
            Keyword::Between => "BETWEEN",
            Keyword::Like => "LIKE",
            Keyword::In => "IN",
            Keyword::Is => "IS",
            Keyword::Escape => "ESCAPE",
        }
    }

    /// The keyword spelled by `word` in any letter case, if it is one.
    fn lookup(word: &str) -> Option<Keyword> {
        Keyword::ALL
            .into_iter()
            .find(|keyword| keyword.as_str().eq_ignore_ascii_case(word))
    }
}

/// What a token is; identifiers borrow from the selector text.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind<'a> {
    Ident(&'a str),
    Keyword(Keyword),
    /// A string literal with its `''` escapes resolved.
    String(String),
    Long(i64),
    /// The decimal literal `9223372036854775808`: only valid right after a unary minus, where it
    /// spells `i64::MIN` (as in Java).
    LongMinMagnitude,
    Double(f64),
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    LParen,
    RParen,
    Comma,
    Eof,
    /// Stands in for text the lexer rejected; the parser holds the [`LexError`].
    Invalid,
}

impl fmt::Display for TokenKind<'_> {
    /// Describes the token for error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let symbol = match self {
            TokenKind::Ident(name) => return write!(f, "identifier '{name}'"),
            TokenKind::Keyword(keyword) => return write!(f, "'{}'", keyword.as_str()),
            TokenKind::String(_) => return f.write_str("string literal"),
            TokenKind::Long(_) | TokenKind::LongMinMagnitude | TokenKind::Double(_) => {
                return f.write_str("numeric literal")
            }
            TokenKind::Eof => return f.write_str("end of selector"),
            TokenKind::Invalid => return f.write_str("invalid token"),
            TokenKind::Eq => "=",
            TokenKind::Ne => "<>",
            TokenKind::Lt => "<",
            TokenKind::Le => "<=",
            TokenKind::Gt => ">",
            TokenKind::Ge => ">=",
            TokenKind::Plus => "+",
            TokenKind::Minus => "-",
            TokenKind::Star => "*",
            TokenKind::Slash => "/",
            TokenKind::LParen => "(",
            TokenKind::RParen => ")",
            TokenKind::Comma => ",",
        };
        write!(f, "'{symbol}'")
    }
}

/// A token and the byte offset of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token<'a> {
    pub(super) kind: TokenKind<'a>,
    pub(super) pos: usize,
}

/// First character of an identifier (Java rules, approximated with Unicode letters).
fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

/// Any later character of an identifier.
fn is_ident_part(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Pull-based tokenizer over selector text.
pub(super) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Lexer { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    /// The next token; at the end of the text, [`TokenKind::Eof`] positioned at the text length.
    pub(super) fn next_token(&mut self) -> LexResult<Token<'a>> {
        let rest = self.rest();
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
        let start = self.pos;
        let mut chars = trimmed.chars();
        let Some(first) = chars.next() else {
            return Ok(Token {
                kind: TokenKind::Eof,
                pos: start,
            });
        };
        let second = chars.next();
        let (kind, len) = match first {
            '\'' => return self.string(start),
            '0'..='9' => return self.number(start),
            '.' if second.is_some_and(|c| c.is_ascii_digit()) => return self.number(start),
            c if is_ident_start(c) => return Ok(self.word(start)),
            '=' => (TokenKind::Eq, 1),
            '<' => match second {
                Some('>') => (TokenKind::Ne, 2),
                Some('=') => (TokenKind::Le, 2),
                _ => (TokenKind::Lt, 1),
            },
            '>' => match second {
                Some('=') => (TokenKind::Ge, 2),
                _ => (TokenKind::Gt, 1),
            },
            '+' => (TokenKind::Plus, 1),
            '-' => (TokenKind::Minus, 1),
            '*' => (TokenKind::Star, 1),
            '/' => (TokenKind::Slash, 1),
            '(' => (TokenKind::LParen, 1),
            ')' => (TokenKind::RParen, 1),
            ',' => (TokenKind::Comma, 1),
            other => {
                return Err(LexError::new(
                    start,
                    format!("unexpected character {other:?}"),
                ))
            }
        };
        self.pos += len;
        Ok(Token { kind, pos: start })
    }

    /// An identifier or keyword starting at `start`.
    fn word(&mut self, start: usize) -> Token<'a> {
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|&(_, c)| !is_ident_part(c))
            .map_or(rest.len(), |(i, _)| i);
        let word = rest.get(..len).unwrap_or_default();
        self.pos = start + len;
        let kind = Keyword::lookup(word).map_or(TokenKind::Ident(word), TokenKind::Keyword);
        Token { kind, pos: start }
    }

    /// A string literal whose opening quote is at `start`; `''` stands for one quote.
    fn string(&mut self, start: usize) -> LexResult<Token<'a>> {
        let mut value = String::new();
        let mut from = start + 1;
        loop {
            let rest = self.text.get(from..).unwrap_or_default();
            let Some(offset) = rest.find('\'') else {
                return Err(LexError::new(start, "unterminated string literal"));
            };
            value.push_str(rest.get(..offset).unwrap_or_default());
            let quote = from + offset;
            if self.text.as_bytes().get(quote + 1) == Some(&b'\'') {
                value.push('\'');
                from = quote + 2;
            } else {
                self.pos = quote + 1;
                return Ok(Token {
                    kind: TokenKind::String(value),
                    pos: start,
                });
            }
        }
    }

    /// End of the run of `radix` digits starting at byte `from`.
    fn scan_digits(&self, mut from: usize, radix: u32) -> usize {
        let bytes = self.text.as_bytes();
        while bytes
            .get(from)
            .is_some_and(|&b| char::from(b).is_digit(radix))
        {
            from += 1;
        }
        from
    }

    /// The text between two ASCII byte offsets found by scanning.
    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.text.get(from..to).unwrap_or_default()
    }

    /// Moves past a numeric literal ending at `end`; a letter, digit, `_` or `$` glued to it
    /// makes the whole literal malformed (`12abc`, `1.5L`, `0x1G`).
    fn finish_number(&mut self, start: usize, end: usize) -> LexResult<()> {
        self.pos = end;
        if self.rest().chars().next().is_some_and(is_ident_part) {
            return Err(LexError::new(start, "malformed numeric literal"));
        }
        Ok(())
    }

    /// A numeric literal in Java syntax starting at `start`.
    ///
    /// Exact: decimal, `0x` hexadecimal, `0b` binary or `0`-prefixed octal, optional `L`.
    /// Approximate: digits with a `.` and/or an exponent, or an `F`/`D` suffix.
    fn number(&mut self, start: usize) -> LexResult<Token<'a>> {
        let bytes = self.text.as_bytes();
        let out_of_range = |what: &str| LexError::new(start, format!("{what} out of range"));

        if bytes.get(start) == Some(&b'0') {
            let radix = match bytes.get(start + 1) {
                Some(b'x' | b'X') => Some(16),
                Some(b'b' | b'B') => Some(2),
                _ => None,
            };
            if let Some(radix) = radix {
                let digits_end = self.scan_digits(start + 2, radix);
                let digits = self.slice(start + 2, digits_end);
                let end =
                    digits_end + usize::from(matches!(bytes.get(digits_end), Some(b'l' | b'L')));
                self.finish_number(start, end)?;
                if digits.is_empty() {
                    return Err(LexError::new(start, "malformed numeric literal"));
                }
                let bits = u64::from_str_radix(digits, radix)
                    .map_err(|_| out_of_range("integer literal"))?;
                // Like Java long literals, hexadecimal and binary spell all 64 bits
                // (two's complement): 0xFFFFFFFFFFFFFFFF is -1.
                return Ok(Token {
                    kind: TokenKind::Long(bits as i64),
                    pos: start,
                });
            }
        }

        let int_end = self.scan_digits(start, 10);
        let mut end = int_end;
        let mut is_float = false;
        let mut fraction = "";
        if bytes.get(end) == Some(&b'.') {
            is_float = true;
            let fraction_end = self.scan_digits(end + 1, 10);
            fraction = self.slice(end + 1, fraction_end);
            end = fraction_end;
        }
        let mut exponent = "0";
        if matches!(bytes.get(end), Some(b'e' | b'E')) {
            is_float = true;
            let sign_end = end + 1 + usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
            let exponent_end = self.scan_digits(sign_end, 10);
            if exponent_end == sign_end {
                return Err(LexError::new(
                    start,
                    "malformed numeric literal: exponent has no digits",
                ));
            }
            exponent = self.slice(end + 1, exponent_end);
            end = exponent_end;
        }
        match bytes.get(end) {
            Some(b'f' | b'F' | b'd' | b'D') => {
                is_float = true;
                end += 1;
            }
            Some(b'l' | b'L') if !is_float => end += 1,
            _ => {}
        }
        self.finish_number(start, end)?;

        let integer = self.slice(start, int_end);
        if is_float {
            let normalized = format!(
                "{}.{}e{}",
                if integer.is_empty() { "0" } else { integer },
                if fraction.is_empty() { "0" } else { fraction },
                exponent
            );
            let value: f64 = normalized
                .parse()
                .map_err(|_| LexError::new(start, "malformed numeric literal"))?;
            let nonzero_digits = integer.bytes().chain(fraction.bytes()).any(|b| b != b'0');
            // Java rejects literals that overflow to infinity or underflow to zero.
            if value.is_infinite() || (value == 0.0 && nonzero_digits) {
                return Err(out_of_range("floating-point literal"));
            }
            return Ok(Token {
                kind: TokenKind::Double(value),
                pos: start,
            });
        }

        if integer.len() > 1 && integer.starts_with('0') {
            let octal = integer.get(1..).unwrap_or_default();
            if octal.bytes().any(|b| b > b'7') {
                return Err(LexError::new(start, "malformed octal literal"));
            }
            let bits =
                u64::from_str_radix(octal, 8).map_err(|_| out_of_range("integer literal"))?;
            return Ok(Token {
                kind: TokenKind::Long(bits as i64),
                pos: start,
            });
        }

        let magnitude: u64 = integer
            .parse()
            .map_err(|_| out_of_range("integer literal"))?;
        let kind = match i64::try_from(magnitude) {
            Ok(value) => TokenKind::Long(value),
            Err(_) if magnitude == i64::MIN.unsigned_abs() => TokenKind::LongMinMagnitude,
            Err(_) => return Err(out_of_range("integer literal")),
        };
        Ok(Token { kind, pos: start })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind<'_>> {
        let mut lexer = Lexer::new(text);
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token().expect("lexes");
            if token.kind == TokenKind::Eof {
                assert_eq!(token.pos, text.len());
                return out;
            }
            out.push(token.kind);
        }
    }

    fn error_at(text: &str) -> (usize, String) {
        let mut lexer = Lexer::new(text);
        loop {
            match lexer.next_token() {
                Ok(token) if token.kind == TokenKind::Eof => panic!("{text:?} lexed without error"),
                Ok(_) => {}
                Err(LexError { position, reason }) => return (position, reason),
            }
        }
    }

    #[test]
    fn operators_and_punctuation() {
        use TokenKind::*;
        assert_eq!(
            kinds("= <> < <= > >= + - * / ( ) ,"),
            vec![Eq, Ne, Lt, Le, Gt, Ge, Plus, Minus, Star, Slash, LParen, RParen, Comma]
        );
        assert_eq!(kinds("a<>b"), vec![Ident("a"), Ne, Ident("b")]);
        assert_eq!(kinds("a<=-1"), vec![Ident("a"), Le, Minus, Long(1)]);
    }

    #[test]
    fn keywords_are_case_insensitive_identifiers_are_not() {
        assert_eq!(
            kinds("and Or NOT between LiKe in Is escape null True fAlSe"),
            [
                Keyword::And,
                Keyword::Or,
                Keyword::Not,
                Keyword::Between,
                Keyword::Like,
                Keyword::In,
                Keyword::Is,
                Keyword::Escape,
                Keyword::Null,
                Keyword::True,
                Keyword::False,
            ]
            .map(TokenKind::Keyword)
        );
        assert_eq!(
            kinds("android $x _y x1 ÿé JMSType"),
            vec![
                TokenKind::Ident("android"),
                TokenKind::Ident("$x"),
                TokenKind::Ident("_y"),
                TokenKind::Ident("x1"),
                TokenKind::Ident("ÿé"),
                TokenKind::Ident("JMSType"),
            ]
        );
    }

    #[test]
    fn string_literals() {
        assert_eq!(kinds("'abc'"), vec![TokenKind::String("abc".into())]);
        assert_eq!(kinds("''"), vec![TokenKind::String(String::new())]);
        assert_eq!(kinds("'it''s'"), vec![TokenKind::String("it's".into())]);
        assert_eq!(kinds("''''"), vec![TokenKind::String("'".into())]);
        assert_eq!(kinds("'a' 'b'").len(), 2);
        assert_eq!(
            kinds("'naïve ☃'"),
            vec![TokenKind::String("naïve ☃".into())]
        );
        assert_eq!(
            error_at("x = 'abc"),
            (4, "unterminated string literal".into())
        );
        assert_eq!(
            error_at("'it''s"),
            (0, "unterminated string literal".into())
        );
    }

    #[test]
    fn exact_numerics() {
        use TokenKind::Long;
        assert_eq!(
            kinds("0 57 123L 9223372036854775807"),
            vec![Long(0), Long(57), Long(123), Long(i64::MAX)]
        );
        assert_eq!(
            kinds("0x1F 0X1fl 0b101 017 00"),
            vec![Long(31), Long(31), Long(5), Long(15), Long(0)]
        );
        assert_eq!(kinds("0xFFFFFFFFFFFFFFFF"), vec![Long(-1)]);
        assert_eq!(
            kinds("9223372036854775808"),
            vec![TokenKind::LongMinMagnitude]
        );
        assert_eq!(
            error_at("9223372036854775809").1,
            "integer literal out of range"
        );
        assert_eq!(error_at("x = 99999999999999999999999").0, 4);
        assert_eq!(
            error_at("0x1FFFFFFFFFFFFFFFF").1,
            "integer literal out of range"
        );
        assert_eq!(error_at("09").1, "malformed octal literal");
        assert_eq!(error_at("0x").1, "malformed numeric literal");
        assert_eq!(error_at("0xG1").1, "malformed numeric literal");
        assert_eq!(error_at("12abc").1, "malformed numeric literal");
        assert_eq!(error_at("1L2").1, "malformed numeric literal");
    }

    #[test]
    fn approximate_numerics() {
        use TokenKind::Double;
        assert_eq!(
            kinds("7E3 95.7 7. .5 1.5e-3 2e+2 6.2f 3d 1.e1 09.5 08e1"),
            vec![
                Double(7000.0),
                Double(95.7),
                Double(7.0),
                Double(0.5),
                Double(0.0015),
                Double(200.0),
                Double(6.2),
                Double(3.0),
                Double(10.0),
                Double(9.5),
                Double(80.0),
            ]
        );
        assert_eq!(kinds("0.0 0e999"), vec![Double(0.0), Double(0.0)]);
        assert_eq!(error_at("1e400").1, "floating-point literal out of range");
        assert_eq!(error_at("1e-400").1, "floating-point literal out of range");
        assert_eq!(error_at("x > 1e").0, 4);
        assert_eq!(
            error_at("1e+").1,
            "malformed numeric literal: exponent has no digits"
        );
        assert_eq!(error_at("1.5L").1, "malformed numeric literal");
        assert_eq!(error_at("1.5x").1, "malformed numeric literal");
    }

    #[test]
    fn unknown_characters() {
        assert_eq!(error_at("a != 1"), (2, "unexpected character '!'".into()));
        assert_eq!(
            error_at("a = \"x\""),
            (4, "unexpected character '\"'".into())
        );
        assert_eq!(error_at("a . b"), (2, "unexpected character '.'".into()));
        assert_eq!(error_at("é = ☃"), (5, "unexpected character '☃'".into()));
    }

    #[test]
    fn positions_are_byte_offsets() {
        let mut lexer = Lexer::new("  é\t=\n'x'");
        let positions: Vec<usize> = std::iter::from_fn(|| {
            let token = lexer.next_token().expect("lexes");
            (token.kind != TokenKind::Eof).then_some(token.pos)
        })
        .collect();
        assert_eq!(positions, vec![2, 5, 7]);
    }
}
