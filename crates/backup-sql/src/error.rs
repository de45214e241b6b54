//! The crate's errors: [`ParseError`] for text that is not a statement, and
//! [`SqlError`] for everything after parsing (binding, evaluation, support).

use std::fmt;

/// A statement that does not parse: where, near which token, and why.
///
/// Displays like CockroachDB: `at or near "intoo": syntax error: expected INTO or TO`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// Byte offset of the offending token in the input.
    pub pos: usize,
    /// The offending token, lower-cased (`EOF` at the end of the input).
    pub near: String,
    /// What went wrong, usually `syntax error: expected ...`.
    pub message: String,
}

impl ParseError {
    /// A syntax error at `pos`, near `near`, saying what was expected.
    pub fn syntax(pos: usize, near: impl Into<String>, detail: impl fmt::Display) -> ParseError {
        ParseError {
            pos,
            near: near.into(),
            message: format!("syntax error: {detail}"),
        }
    }

    /// The error with the input line it points into and a `^` under the position,
    /// for a command-line client.
    pub fn render(&self, sql: &str) -> String {
        let pos = floor_char_boundary(sql, self.pos.min(sql.len()));
        let line_start = sql[..pos].rfind('\n').map_or(0, |i| i + 1);
        let line_end = sql[pos..].find('\n').map_or(sql.len(), |i| pos + i);
        let line_no = sql[..line_start].matches('\n').count() + 1;
        let line = &sql[line_start..line_end];
        let column = sql[line_start..pos].chars().count();
        let prefix = format!("LINE {line_no}: ");
        let pad = " ".repeat(prefix.chars().count() + column);
        format!("ERROR: {self}\n{prefix}{line}\n{pad}^")
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at or near \"{}\": {}", self.near, self.message)
    }
}

/// Everything that can go wrong in this crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// The text is not a statement of this grammar.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// A `$n` placeholder has no value among the bound parameters.
    #[error("no value for placeholder ${index}: {given} parameter(s) were bound")]
    MissingParameter {
        /// The placeholder's number (1-based).
        index: u32,
        /// How many parameters were given.
        given: usize,
    },
    /// A bound parameter or literal has the wrong form for where it is used.
    #[error("invalid value for {what}: {reason}")]
    InvalidValue {
        /// What the value is for, e.g. `option "detached"`.
        what: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The `AS OF SYSTEM TIME` expression cannot be evaluated.
    #[error("AS OF SYSTEM TIME: {0}")]
    AsOf(String),
    /// The statement parses but asks for something not supported yet.
    #[error("{0}")]
    Unsupported(String),
    /// The user lacks a privilege (`user alice does not have SELECT privilege on relation t`).
    #[error("{0}")]
    Privilege(String),
    /// A name does not resolve to an object.
    #[error("{0}")]
    NotFound(String),
    /// A backup or restore would leave out an object another one needs.
    #[error("{0}")]
    Dependency(String),
    /// An object the statement would create already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// `SHOW BACKUP ... WITH check_files` found missing or corrupt files.
    #[error("{0}")]
    BackupFiles(String),
    /// The job or the host failed (the message names no secret).
    #[error("{0}")]
    Exec(String),
}
