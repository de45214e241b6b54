//! `WITH` option lists: `WITH a, b = 'x'`, `WITH OPTIONS (a, b = 'x')` and
//! `WITH SCHEDULE OPTIONS ...`, checked against a statement's option specs.

use backup_format::Timestamp;

use super::Parser;
use crate::ast::Expr;
use crate::error::ParseError;
use crate::options::{OptKind, OptSpec, OptValue, ParsedOption};
use crate::token::TokenKind;

impl Parser<'_> {
    /// `[WITH [OPTIONS (] option, ... [)]]` for statement `stmt`.
    pub(super) fn with_options(
        &mut self,
        spec: &[OptSpec],
        stmt: &str,
    ) -> Result<Vec<ParsedOption>, ParseError> {
        if !self.eat_kw("with") {
            return Ok(Vec::new());
        }
        self.option_list(spec, stmt)
    }

    /// An option list, bare or as `OPTIONS (...)` / `(...)`.
    pub(super) fn option_list(
        &mut self,
        spec: &[OptSpec],
        stmt: &str,
    ) -> Result<Vec<ParsedOption>, ParseError> {
        let parens = if self.is_kw("options") && self.peek_nth(1).kind == TokenKind::LParen {
            self.advance();
            self.advance();
            true
        } else {
            self.eat(&TokenKind::LParen)
        };
        let mut out: Vec<ParsedOption> = Vec::new();
        loop {
            let name_pos = self.peek().start;
            let parsed = self.option(spec, stmt)?;
            if out.iter().any(|o| o.name == parsed.name) {
                return Err(ParseError {
                    pos: name_pos,
                    near: parsed.name.to_string(),
                    message: format!("option \"{}\" specified more than once", parsed.name),
                });
            }
            out.push(parsed);
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        if parens {
            self.expect(&TokenKind::RParen, ", or )")?;
        }
        Ok(out)
    }

    /// `name [= value]`.
    fn option(&mut self, spec: &[OptSpec], stmt: &str) -> Result<ParsedOption, ParseError> {
        let name_token = self.peek().clone();
        let TokenKind::Word { value: name, .. } = &name_token.kind else {
            return Err(self.expected(format!("a {stmt} option name")));
        };
        let Some(&(name, kind)) = spec.iter().find(|(n, _)| n == name) else {
            let known: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
            return Err(self.error_at(
                &name_token,
                format!(
                    "syntax error: unknown {stmt} option \"{name}\"; expected one of {}",
                    known.join(", ")
                ),
            ));
        };
        self.advance();
        if !self.eat(&TokenKind::Eq) {
            if kind == OptKind::Flag {
                return Ok(ParsedOption {
                    name,
                    value: OptValue::One(Expr::Bool(true)),
                });
            }
            let mut err = self.expected(format!("= and a value for option \"{name}\""));
            if kind == OptKind::Secret && matches!(self.peek().kind, TokenKind::String(_)) {
                err.near = "'redacted'".into();
            }
            return Err(err);
        }
        let value = match kind {
            OptKind::Flag => OptValue::One(self.flag_value()?),
            OptKind::Uris => OptValue::List(self.uri_or_parenthesised_list()?),
            OptKind::Text | OptKind::Secret => OptValue::One(self.value("a value")?),
            OptKind::Choice(allowed) => {
                let token = self.peek().clone();
                let v = self.value(&format!("one of '{}'", allowed.join("', '")))?;
                if let Expr::String(s) = &v
                    && !allowed.contains(&s.to_lowercase().as_str())
                {
                    return Err(self.error_at(
                        &token,
                        format!(
                            "invalid value for option \"{name}\": expected one of '{}'",
                            allowed.join("', '")
                        ),
                    ));
                }
                OptValue::One(v)
            }
            OptKind::FirstRun => {
                let token = self.peek().clone();
                let v = self.value("'now' or a timestamp")?;
                if let Expr::String(s) = &v
                    && !s.eq_ignore_ascii_case("now")
                    && let Err(e) = s.parse::<Timestamp>()
                {
                    return Err(self.error_at(
                        &token,
                        format!("invalid value for option \"{name}\": expected 'now' or {e}"),
                    ));
                }
                OptValue::One(v)
            }
        };
        Ok(ParsedOption { name, value })
    }

    /// `TRUE`, `FALSE` or a placeholder.
    fn flag_value(&mut self) -> Result<Expr, ParseError> {
        let e = match &self.peek().kind {
            TokenKind::Placeholder(n) => Expr::Placeholder(*n),
            _ if self.is_kw("true") => Expr::Bool(true),
            _ if self.is_kw("false") => Expr::Bool(false),
            _ => return Err(self.expected("TRUE, FALSE or a placeholder")),
        };
        self.advance();
        Ok(e)
    }
}
