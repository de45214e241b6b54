//! The recursive-descent parser: entry points, the token cursor, and the
//! pieces every statement shares (names, values, URI lists, ids).
//!
//! Statement families live in submodules: [`backup`] (BACKUP, RESTORE,
//! SHOW BACKUP(S)), [`options`] (`WITH` lists) and [`jobs`] (jobs and
//! schedules).

mod backup;
mod jobs;
mod options;

use crate::ast::{Expr, Ident, Statement, TablePattern, Targets};
use crate::error::ParseError;
use crate::token::{Lexer, Token, TokenKind, tokenize};

/// Words that end a list of names, so they cannot be unquoted names there.
const RESERVED_IN_NAMES: &[&str] = &["as", "for", "from", "in", "into", "recurring", "to", "with"];

/// How deeply function calls may nest in an expression.
const MAX_EXPR_DEPTH: usize = 16;

/// Parses exactly one statement (a trailing `;` is allowed).
pub fn parse_statement(sql: &str) -> Result<Statement, ParseError> {
    let mut p = Parser::new(sql)?;
    while p.eat(&TokenKind::Semicolon) {}
    if p.peek().kind == TokenKind::Eof {
        return Err(p.expected("a statement"));
    }
    let stmt = p.statement()?;
    while p.eat(&TokenKind::Semicolon) {}
    if p.peek().kind != TokenKind::Eof {
        return Err(p.expected("end of input (only one statement is allowed here)"));
    }
    Ok(stmt)
}

/// Parses `;`-separated statements (empty statements are skipped).
pub fn parse_statements(sql: &str) -> Result<Vec<Statement>, ParseError> {
    let mut p = Parser::new(sql)?;
    let mut out = Vec::new();
    loop {
        while p.eat(&TokenKind::Semicolon) {}
        if p.peek().kind == TokenKind::Eof {
            return Ok(out);
        }
        out.push(p.statement()?);
    }
}

/// Whether `sql` starts like a statement of this grammar, so a host SQL layer
/// can route it here. Looks at the first words only; it does not validate.
pub fn is_backup_statement(sql: &str) -> bool {
    let mut lexer = Lexer::new(sql);
    let mut words = Vec::new();
    while words.len() < 2 {
        match lexer.next_token() {
            Ok(Token {
                kind:
                    TokenKind::Word {
                        value,
                        quoted: false,
                    },
                ..
            }) => words.push(value),
            _ => break,
        }
    }
    let second = words.get(1).map(String::as_str).unwrap_or_default();
    match words.first().map(String::as_str) {
        Some("backup" | "restore") => true,
        Some("show") => matches!(
            second,
            "backup" | "backups" | "job" | "jobs" | "schedule" | "schedules" | "running" | "paused"
        ),
        Some("pause" | "resume") => matches!(second, "job" | "schedule"),
        Some("cancel") => second == "job",
        Some("create" | "drop") => second == "schedule",
        _ => false,
    }
}

/// A cursor over the tokens of one input.
pub(crate) struct Parser<'a> {
    sql: &'a str,
    tokens: Vec<Token>,
    idx: usize,
}

impl<'a> Parser<'a> {
    fn new(sql: &'a str) -> Result<Self, ParseError> {
        Ok(Parser {
            sql,
            tokens: tokenize(sql)?,
            idx: 0,
        })
    }

    /// The current token (the final EOF token once past the end).
    fn peek(&self) -> &Token {
        self.peek_nth(0)
    }

    /// The token `n` places ahead.
    fn peek_nth(&self, n: usize) -> &Token {
        let i = (self.idx + n).min(self.tokens.len().saturating_sub(1));
        &self.tokens[i]
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if self.idx < self.tokens.len() - 1 {
            self.idx += 1;
        }
        t
    }

    fn is_kw(&self, kw: &str) -> bool {
        self.peek().is_keyword(kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.advance();
        }
        hit
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.expected(kw.to_uppercase()))
        }
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        let hit = &self.peek().kind == kind;
        if hit {
            self.advance();
        }
        hit
    }

    fn expect(&mut self, kind: &TokenKind, what: &str) -> Result<(), ParseError> {
        if self.eat(kind) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    /// A syntax error at the current token: `expected <what>`.
    fn expected(&self, what: impl std::fmt::Display) -> ParseError {
        self.error_at(self.peek(), format!("syntax error: expected {what}"))
    }

    fn error_at(&self, token: &Token, message: String) -> ParseError {
        ParseError {
            pos: token.start,
            near: token.near(self.sql),
            message,
        }
    }

    /// The end of a statement (`;` or EOF), not consumed; `hint` names what
    /// else could have come here.
    fn expect_end(&self, hint: &str) -> Result<(), ParseError> {
        match self.peek().kind {
            TokenKind::Semicolon | TokenKind::Eof => Ok(()),
            _ if hint.is_empty() => Err(self.expected("end of statement")),
            _ => Err(self.expected(format!("{hint} or end of statement"))),
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        let stmt = if self.eat_kw("backup") {
            self.backup()?
        } else if self.eat_kw("restore") {
            self.restore()?
        } else if self.eat_kw("show") {
            self.show()?
        } else if self.is_kw("pause") || self.is_kw("resume") || self.is_kw("cancel") {
            self.control()?
        } else if self.eat_kw("create") {
            self.create_schedule()?
        } else if self.eat_kw("drop") {
            self.drop_schedule()?
        } else {
            return Err(self.expected(
                "BACKUP, RESTORE, SHOW, PAUSE, RESUME, CANCEL, CREATE SCHEDULE or DROP SCHEDULE",
            ));
        };
        Ok(stmt)
    }

    /// An identifier (`what` names it in errors).
    fn ident(&mut self, what: &str) -> Result<Ident, ParseError> {
        match &self.peek().kind {
            TokenKind::Word { value, quoted }
                if *quoted || !RESERVED_IN_NAMES.contains(&value.as_str()) =>
            {
                let ident = Ident(value.clone());
                self.advance();
                Ok(ident)
            }
            _ => Err(self.expected(what)),
        }
    }

    /// `DATABASE a, b` | `TABLE t, s.*` | bare `t, u` | nothing (the cluster,
    /// when the next word is one of `ends`).
    fn targets(&mut self, ends: &[&str]) -> Result<Targets, ParseError> {
        if self.eat_kw("database") {
            let mut dbs = vec![self.ident("a database name")?];
            while self.eat(&TokenKind::Comma) {
                dbs.push(self.ident("a database name")?);
            }
            return Ok(Targets::Databases(dbs));
        }
        let explicit = self.eat_kw("table");
        if !explicit && ends.iter().any(|kw| self.is_kw(kw)) {
            return Ok(Targets::Cluster);
        }
        if !explicit && !matches!(self.peek().kind, TokenKind::Word { .. }) {
            let ends: Vec<String> = ends.iter().map(|e| e.to_uppercase()).collect();
            return Err(self.expected(format!(
                "{}, DATABASE, TABLE or a table name",
                ends.join(", ")
            )));
        }
        let mut tables = vec![self.table_pattern()?];
        while self.eat(&TokenKind::Comma) {
            tables.push(self.table_pattern()?);
        }
        Ok(Targets::Tables(tables))
    }

    /// `t`, `s.t`, `db.s.t`, `s.*` or `db.s.*`.
    fn table_pattern(&mut self) -> Result<TablePattern, ParseError> {
        let mut parts = vec![self.ident("a table name or pattern")?];
        while self.eat(&TokenKind::Dot) {
            if self.peek().kind == TokenKind::Star {
                if parts.len() > 2 {
                    return Err(self.expected("a name: a wildcard follows schema or db.schema"));
                }
                self.advance();
                return Ok(TablePattern {
                    parts,
                    wildcard: true,
                });
            }
            if parts.len() == 3 {
                return Err(self.error_at(
                    self.peek(),
                    "syntax error: a table name has at most three parts (db.schema.table)".into(),
                ));
            }
            parts.push(self.ident("a name or *")?);
        }
        Ok(TablePattern {
            parts,
            wildcard: false,
        })
    }

    /// A string literal or `$n` placeholder.
    fn value(&mut self, what: &str) -> Result<Expr, ParseError> {
        let e = match &self.peek().kind {
            TokenKind::String(s) => Expr::String(s.clone()),
            TokenKind::Placeholder(n) => Expr::Placeholder(*n),
            _ => return Err(self.expected(format!("{what} (a string or placeholder)"))),
        };
        self.advance();
        Ok(e)
    }

    /// One URI, a comma-separated list of them, or a parenthesised list.
    fn uri_list(&mut self) -> Result<Vec<Expr>, ParseError> {
        if self.eat(&TokenKind::LParen) {
            let list = self.uri_list_after(None)?;
            self.expect(&TokenKind::RParen, ", or )")?;
            return Ok(list);
        }
        self.uri_list_after(None)
    }

    /// One URI or a parenthesised list (an option's value, where a bare comma
    /// would start the next option).
    fn uri_or_parenthesised_list(&mut self) -> Result<Vec<Expr>, ParseError> {
        if self.peek().kind == TokenKind::LParen {
            self.uri_list()
        } else {
            Ok(vec![self.value("a URI")?])
        }
    }

    /// A comma-separated list of URIs, the first one possibly already read.
    fn uri_list_after(&mut self, first: Option<Expr>) -> Result<Vec<Expr>, ParseError> {
        let mut list = match first {
            Some(e) => vec![e],
            None => vec![self.value("a URI")?],
        };
        while self.eat(&TokenKind::Comma) {
            list.push(self.value("a URI")?);
        }
        Ok(list)
    }

    /// A job or schedule id: an integer or a placeholder.
    fn id(&mut self, what: &str) -> Result<Expr, ParseError> {
        let e = match &self.peek().kind {
            TokenKind::Number(n) if !n.contains('.') => Expr::Number(n.clone()),
            TokenKind::Placeholder(n) => Expr::Placeholder(*n),
            _ => return Err(self.expected(format!("{what} (an integer or placeholder)"))),
        };
        self.advance();
        Ok(e)
    }

    /// `[AS OF SYSTEM TIME expr]`.
    fn as_of(&mut self) -> Result<Option<Expr>, ParseError> {
        if !self.eat_kw("as") {
            return Ok(None);
        }
        self.expect_kw("of")?;
        self.expect_kw("system")?;
        self.expect_kw("time")?;
        Ok(Some(self.aost_expr(0)?))
    }

    /// A string, number, placeholder or function call.
    fn aost_expr(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let what = "a timestamp: a string, number, placeholder or function call";
        let e = match &self.peek().kind {
            TokenKind::String(s) => Expr::String(s.clone()),
            TokenKind::Number(n) => Expr::Number(n.clone()),
            TokenKind::Placeholder(n) => Expr::Placeholder(*n),
            TokenKind::Word { value, .. } if self.peek_nth(1).kind == TokenKind::LParen => {
                if depth >= MAX_EXPR_DEPTH {
                    return Err(self.error_at(
                        self.peek(),
                        "syntax error: function calls are nested too deeply".into(),
                    ));
                }
                let name = Ident(value.clone());
                self.advance();
                self.advance();
                let mut args = Vec::new();
                if !self.eat(&TokenKind::RParen) {
                    args.push(self.aost_expr(depth + 1)?);
                    while self.eat(&TokenKind::Comma) {
                        args.push(self.aost_expr(depth + 1)?);
                    }
                    self.expect(&TokenKind::RParen, ", or )")?;
                }
                return Ok(Expr::Function { name, args });
            }
            _ => return Err(self.expected(what)),
        };
        self.advance();
        Ok(e)
    }
}
