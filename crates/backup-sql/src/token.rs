//! The tokenizer: SQL text to [`Token`]s with byte offsets.
//!
//! Unquoted words are lower-cased (keywords match case-insensitively and
//! unquoted identifiers fold to lower case, as in CockroachDB); `"quoted"`
//! identifiers keep their case and may contain `""`. String literals are
//! single-quoted with `''` as the escaped quote. `--` and `/* */` comments
//! are skipped.

use crate::error::ParseError;

/// Largest accepted placeholder number (`$65535`).
pub const MAX_PLACEHOLDER: u32 = u16::MAX as u32;

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A keyword or identifier; `value` is lower-cased unless `quoted`.
    Word {
        /// The word's text (folded to lower case when unquoted).
        value: String,
        /// Whether it was written in double quotes.
        quoted: bool,
    },
    /// A single-quoted string literal, unescaped.
    String(String),
    /// An unsigned number literal as written: digits with an optional fraction.
    Number(String),
    /// A `$n` placeholder.
    Placeholder(u32),
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// `*`
    Star,
    /// `=`
    Eq,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `;`
    Semicolon,
    /// The end of the input.
    Eof,
}

/// One token and where it is in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just past its last character.
    pub end: usize,
}

impl Token {
    /// Whether this is the unquoted keyword `kw` (given in lower case).
    pub fn is_keyword(&self, kw: &str) -> bool {
        matches!(&self.kind, TokenKind::Word { value, quoted: false } if value == kw)
    }

    /// How the token is named in an error's `at or near "..."`.
    pub fn near(&self, sql: &str) -> String {
        match &self.kind {
            TokenKind::Eof => "EOF".to_string(),
            // A string may be a URI with credentials: never echo it verbatim.
            TokenKind::String(s) => format!("'{}'", crate::redact::redact_uri(s)),
            _ => sql
                .get(self.start..self.end)
                .unwrap_or_default()
                .to_lowercase(),
        }
    }
}

/// Splits `sql` into tokens, ending with one [`TokenKind::Eof`].
pub fn tokenize(sql: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer::new(sql);
    let mut out = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let done = token.kind == TokenKind::Eof;
        out.push(token);
        if done {
            return Ok(out);
        }
    }
}

/// Produces tokens one at a time (so a caller can stop after a few).
pub(crate) struct Lexer<'a> {
    sql: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `sql`.
    pub(crate) fn new(sql: &'a str) -> Self {
        Lexer { sql, pos: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.sql[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.sql[self.pos..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn error(&self, start: usize, message: &str) -> ParseError {
        let end = self.pos.max(start + 1).min(self.sql.len());
        let near = self.sql.get(start..end).unwrap_or_default().to_lowercase();
        let near = if near.is_empty() { "EOF".into() } else { near };
        ParseError::syntax(start, near, message)
    }

    fn skip_space_and_comments(&mut self) -> Result<(), ParseError> {
        loop {
            match (self.peek(), self.peek2()) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('-'), Some('-')) => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.pos;
                    self.pos += 2;
                    match self.sql[self.pos..].find("*/") {
                        Some(i) => self.pos += i + 2,
                        None => {
                            self.pos = self.sql.len();
                            return Err(self.error(start, "unterminated comment"));
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// The next token; [`TokenKind::Eof`] at (and after) the end.
    pub(crate) fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_space_and_comments()?;
        let start = self.pos;
        let Some(c) = self.bump() else {
            return Ok(Token {
                kind: TokenKind::Eof,
                start,
                end: start,
            });
        };
        let kind = match c {
            ',' => TokenKind::Comma,
            '.' => TokenKind::Dot,
            '*' => TokenKind::Star,
            '=' => TokenKind::Eq,
            '(' => TokenKind::LParen,
            ')' => TokenKind::RParen,
            ';' => TokenKind::Semicolon,
            '\'' => TokenKind::String(self.quoted(start, '\'', "unterminated string literal")?),
            '"' => {
                let value = self.quoted(start, '"', "unterminated quoted identifier")?;
                if value.is_empty() {
                    return Err(self.error(start, "zero-length delimited identifier"));
                }
                TokenKind::Word {
                    value,
                    quoted: true,
                }
            }
            '$' => self.placeholder(start)?,
            c if c.is_ascii_digit() => self.number(start),
            c if c.is_alphabetic() || c == '_' => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
                {
                    self.bump();
                }
                TokenKind::Word {
                    value: self.sql[start..self.pos].to_lowercase(),
                    quoted: false,
                }
            }
            _ => return Err(self.error(start, "unexpected character")),
        };
        Ok(Token {
            kind,
            start,
            end: self.pos,
        })
    }

    /// The body of a `q`-quoted token whose opening quote is at `start`.
    fn quoted(&mut self, start: usize, q: char, unterminated: &str) -> Result<String, ParseError> {
        let mut out = String::new();
        loop {
            match self.bump() {
                // Name only the quote: the rest may be a secret.
                None => return Err(ParseError::syntax(start, q.to_string(), unterminated)),
                Some(c) if c == q => {
                    if self.peek() == Some(q) {
                        self.bump();
                        out.push(q);
                    } else {
                        return Ok(out);
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn placeholder(&mut self, start: usize) -> Result<TokenKind, ParseError> {
        let digits_start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let digits = &self.sql[digits_start..self.pos];
        if digits.is_empty() {
            return Err(self.error(start, "expected a placeholder number after $"));
        }
        match digits.parse::<u32>() {
            Ok(n) if (1..=MAX_PLACEHOLDER).contains(&n) => Ok(TokenKind::Placeholder(n)),
            _ => Err(self.error(
                start,
                &format!("placeholder numbers run from $1 to ${MAX_PLACEHOLDER}"),
            )),
        }
    }

    fn number(&mut self, start: usize) -> TokenKind {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek() == Some('.') && self.peek2().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        TokenKind::Number(self.sql[start..self.pos].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<TokenKind> {
        tokenize(sql).unwrap().into_iter().map(|t| t.kind).collect()
    }

    fn word(v: &str, quoted: bool) -> TokenKind {
        TokenKind::Word {
            value: v.into(),
            quoted,
        }
    }

    #[test]
    fn words_fold_and_quoted_words_keep_case() {
        assert_eq!(
            kinds(r#"BaCkUp "My""Tbl" x_1$"#),
            vec![
                word("backup", false),
                word("My\"Tbl", true),
                word("x_1$", false),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn strings_numbers_placeholders_and_punctuation() {
        assert_eq!(
            kinds("'it''s' 12.5 7 $3 , . * = ( ) ;"),
            vec![
                TokenKind::String("it's".into()),
                TokenKind::Number("12.5".into()),
                TokenKind::Number("7".into()),
                TokenKind::Placeholder(3),
                TokenKind::Comma,
                TokenKind::Dot,
                TokenKind::Star,
                TokenKind::Eq,
                TokenKind::LParen,
                TokenKind::RParen,
                TokenKind::Semicolon,
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn offsets_are_bytes() {
        let toks = tokenize("é 'x'").unwrap();
        assert_eq!((toks[0].start, toks[0].end), (0, 2));
        assert_eq!((toks[1].start, toks[1].end), (3, 6));
        assert_eq!(toks[2].start, 6);
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(
            kinds("a -- c\n/* b */ b"),
            vec![word("a", false), word("b", false), TokenKind::Eof]
        );
    }

    #[test]
    fn lexical_errors() {
        for (sql, pos, msg) in [
            ("a 'abc", 2, "unterminated string literal"),
            ("a \"abc", 2, "unterminated quoted identifier"),
            ("\"\"", 0, "zero-length delimited identifier"),
            ("$0", 0, "placeholder numbers"),
            ("$", 0, "expected a placeholder number"),
            ("$99999999999", 0, "placeholder numbers"),
            ("a # b", 2, "unexpected character"),
            ("/* x", 0, "unterminated comment"),
        ] {
            let err = tokenize(sql).unwrap_err();
            assert_eq!(err.pos, pos, "{sql}");
            assert!(err.message.contains(msg), "{sql}: {err}");
        }
    }
}
