//! Statements `sqlparser` does not know (or knows differently from
//! CockroachDB), recognised by a small token matcher before it runs:
//! `UPSERT`, `AS OF SYSTEM TIME`, `CONFIGURE ZONE`, the
//! `exclude_data_from_backup` storage parameter, `SHOW ...`, `USE`/`SET
//! database`, transaction control, users and roles, `GRANT`/`REVOKE`,
//! `CREATE TYPE .. AS ENUM`, `CREATE SEQUENCE` and cluster settings.

use super::SqlError;
use crate::password::Secret;

/// A token of the matcher.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// An identifier or keyword, lower-cased unless it was double-quoted.
    Word(String, bool),
    /// A single-quoted string.
    Str(String),
    /// A number as written.
    Num(String),
    /// Punctuation.
    Punct(char),
}

/// Splits `sql` into tokens; `None` on an unterminated quote.
pub(crate) fn tokenize(sql: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                let &ch = chars.get(i)?;
                if ch == c {
                    if chars.get(i + 1) == Some(&c) {
                        s.push(c);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                s.push(ch);
                i += 1;
            }
            out.push(if c == '\'' {
                Tok::Str(s)
            } else {
                Tok::Word(s, true)
            });
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let w: String = chars[start..i].iter().collect();
            out.push(Tok::Word(w.to_lowercase(), false));
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    Some(out)
}

/// Where an object named by `GRANT`/`SHOW GRANTS` lives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ObjKind {
    /// A table, view or sequence.
    Table,
    /// A database.
    Database,
    /// A schema.
    Schema,
    /// A type.
    Type,
}

/// A recognised special statement.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Special {
    /// `UPSERT ...`: the statement rewritten as `INSERT ...`.
    Upsert(String),
    /// A `SELECT` with `AS OF SYSTEM TIME <expr>` removed.
    AsOf { sql: String, expr: backup_sql::Expr },
    /// `ALTER TABLE t CONFIGURE ZONE USING gc.ttlseconds = n`.
    ConfigureZone { table: Vec<String>, ttl: u64 },
    /// `ALTER TABLE t SET (exclude_data_from_backup = b)`.
    ExcludeData { table: Vec<String>, exclude: bool },
    /// `SHOW EXPERIMENTAL_FINGERPRINTS FROM TABLE t`.
    Fingerprints(Vec<String>),
    /// `SHOW DATABASES`.
    ShowDatabases,
    /// `SHOW TABLES [FROM db]`.
    ShowTables(Option<String>),
    /// `SHOW GRANTS [ON kind names] [FOR users]`.
    ShowGrants {
        on: Option<(ObjKind, Vec<Vec<String>>)>,
        users: Vec<String>,
    },
    /// `SHOW USERS` / `SHOW ROLES`.
    ShowUsers,
    /// `USE db` / `SET database = db`.
    Use(String),
    /// `BEGIN`.
    Begin,
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK`.
    Rollback,
    /// `CREATE USER|ROLE name [[WITH] PASSWORD 'pw' | NULL]`.
    CreateUser {
        name: String,
        is_role: bool,
        if_not_exists: bool,
        password: Option<Secret>,
    },
    /// `ALTER USER|ROLE [IF EXISTS] name [WITH] PASSWORD 'pw' | NULL`.
    AlterUserPassword {
        name: String,
        if_exists: bool,
        password: Option<Secret>,
    },
    /// `DROP USER|ROLE`.
    DropUser { name: String, if_exists: bool },
    /// `GRANT privileges ON ...` / `REVOKE ...`.
    Grant {
        revoke: bool,
        privileges: Vec<String>,
        kind: ObjKind,
        objects: Vec<Vec<String>>,
        grantees: Vec<String>,
    },
    /// `GRANT role TO user` / `REVOKE role FROM user`.
    GrantRole {
        revoke: bool,
        roles: Vec<String>,
        members: Vec<String>,
    },
    /// `CREATE TYPE t AS ENUM (...)`.
    CreateEnum {
        name: Vec<String>,
        values: Vec<String>,
    },
    /// `DROP TYPE t`.
    DropType { name: Vec<String>, if_exists: bool },
    /// `CREATE SEQUENCE s [START [WITH] n] [INCREMENT [BY] n]`.
    CreateSequence {
        name: Vec<String>,
        if_not_exists: bool,
        start: i64,
        increment: i64,
    },
    /// `SET CLUSTER SETTING name = value`.
    SetClusterSetting { name: String, value: String },
    /// `SHOW CLUSTER SETTING name`.
    ShowClusterSetting(String),
}

/// A cursor over tokens.
struct Cur<'a> {
    toks: &'a [Tok],
    i: usize,
}

impl Cur<'_> {
    fn kw(&mut self, w: &str) -> bool {
        if matches!(self.toks.get(self.i), Some(Tok::Word(x, false)) if x == w) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn kws(&mut self, ws: &[&str]) -> bool {
        let save = self.i;
        if ws.iter().all(|w| self.kw(w)) {
            true
        } else {
            self.i = save;
            false
        }
    }
    fn punct(&mut self, c: char) -> bool {
        if self.toks.get(self.i) == Some(&Tok::Punct(c)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> Option<String> {
        match self.toks.get(self.i) {
            Some(Tok::Word(w, _)) => {
                self.i += 1;
                Some(w.clone())
            }
            _ => None,
        }
    }
    fn name(&mut self) -> Option<Vec<String>> {
        let mut parts = vec![self.ident()?];
        while self.punct('.') {
            parts.push(self.ident()?);
        }
        Some(parts)
    }
    fn names(&mut self) -> Option<Vec<Vec<String>>> {
        let mut out = vec![self.name()?];
        while self.punct(',') {
            out.push(self.name()?);
        }
        Some(out)
    }
    fn idents(&mut self) -> Option<Vec<String>> {
        let mut out = vec![self.ident()?];
        while self.punct(',') {
            out.push(self.ident()?);
        }
        Some(out)
    }
    fn done(&self) -> bool {
        self.i >= self.toks.len()
    }
    fn rest_value(&mut self) -> Option<String> {
        let t = self.toks.get(self.i)?.clone();
        self.i += 1;
        Some(match t {
            Tok::Word(w, _) => w,
            Tok::Str(s) => s,
            Tok::Num(n) => n,
            Tok::Punct(c) => c.to_string(),
        })
    }
}

/// Recognises a special statement; `Ok(None)` leaves it to `sqlparser`.
pub(crate) fn recognise(sql: &str) -> Result<Option<Special>, SqlError> {
    let Some(toks) = tokenize(sql) else {
        return Err(SqlError::Syntax("unterminated quoted string".into()));
    };
    let syntax = || {
        SqlError::Syntax(format!(
            "at or near \"{sql}\": could not parse the statement"
        ))
    };
    let mut c = Cur { toks: &toks, i: 0 };
    let first = match toks.first() {
        Some(Tok::Word(w, false)) => w.clone(),
        _ => return Ok(None),
    };
    let out = match first.as_str() {
        "upsert" => {
            let rest = sql.trim_start().get(6..).unwrap_or_default().to_string();
            Some(Special::Upsert(format!("INSERT{rest}")))
        }
        "select" | "with" => as_of(sql)?,
        "alter" if c.kws(&["alter", "user"]) || c.kws(&["alter", "role"]) => {
            let if_exists = c.kws(&["if", "exists"]);
            let name = c.ident().ok_or_else(|| password_syntax("ALTER USER"))?;
            Some(Special::AlterUserPassword {
                name,
                if_exists,
                password: password_option(&mut c, "ALTER USER")?,
            })
        }
        "alter" if c.kws(&["alter", "table"]) => {
            let table = c.name().ok_or_else(syntax)?;
            if c.kws(&["configure", "zone", "using"]) {
                let key = c.name().ok_or_else(syntax)?.join(".");
                if key != "gc.ttlseconds" || !c.punct('=') {
                    return Err(SqlError::Unsupported(format!("zone config field {key}")));
                }
                let ttl = c
                    .rest_value()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(syntax)?;
                Some(Special::ConfigureZone { table, ttl })
            } else if c.kw("set") && c.punct('(') {
                let key = c.ident().ok_or_else(syntax)?;
                if key != "exclude_data_from_backup" || !c.punct('=') {
                    return Err(SqlError::Unsupported(format!("storage parameter {key}")));
                }
                let v = c.rest_value().ok_or_else(syntax)?;
                let exclude = matches!(v.as_str(), "true" | "on" | "1");
                Some(Special::ExcludeData { table, exclude })
            } else {
                None
            }
        }
        "show" => {
            c.i = 1;
            if c.kws(&["experimental_fingerprints", "from", "table"]) {
                Some(Special::Fingerprints(c.name().ok_or_else(syntax)?))
            } else if c.kw("databases") {
                Some(Special::ShowDatabases)
            } else if c.kw("tables") {
                let db = if c.kw("from") {
                    Some(c.ident().ok_or_else(syntax)?)
                } else {
                    None
                };
                Some(Special::ShowTables(db))
            } else if c.kw("grants") {
                let on = if c.kw("on") {
                    let kind = obj_kind(&mut c);
                    Some((kind, c.names().ok_or_else(syntax)?))
                } else {
                    None
                };
                let users = if c.kw("for") {
                    c.idents().ok_or_else(syntax)?
                } else {
                    Vec::new()
                };
                Some(Special::ShowGrants { on, users })
            } else if c.kw("users") || c.kw("roles") {
                Some(Special::ShowUsers)
            } else if c.kws(&["cluster", "setting"]) {
                Some(Special::ShowClusterSetting(
                    c.name().ok_or_else(syntax)?.join("."),
                ))
            } else {
                return Err(SqlError::Unsupported(sql.to_string()));
            }
        }
        "use" => {
            c.i = 1;
            Some(Special::Use(c.ident().ok_or_else(syntax)?))
        }
        "set" => {
            c.i = 1;
            if c.kw("database") {
                if !(c.punct('=') || c.kw("to")) {
                    return Err(syntax());
                }
                Some(Special::Use(c.rest_value().ok_or_else(syntax)?))
            } else if c.kws(&["cluster", "setting"]) {
                let name = c.name().ok_or_else(syntax)?.join(".");
                if !(c.punct('=') || c.kw("to")) {
                    return Err(syntax());
                }
                Some(Special::SetClusterSetting {
                    name,
                    value: c.rest_value().ok_or_else(syntax)?,
                })
            } else {
                return Err(SqlError::Unsupported(sql.to_string()));
            }
        }
        "begin" | "start" => Some(Special::Begin),
        "commit" | "end" => Some(Special::Commit),
        "rollback" | "abort" => Some(Special::Rollback),
        "create" | "drop" => {
            c.i = 1;
            let create = first == "create";
            if c.kw("user") || c.kw("role") {
                let is_role = matches!(&toks[1], Tok::Word(w, _) if w == "role");
                if create {
                    let if_not_exists = c.kws(&["if", "not", "exists"]);
                    let name = c.ident().ok_or_else(syntax)?;
                    let password = if c.done() {
                        None
                    } else {
                        password_option(&mut c, "CREATE USER")?
                    };
                    Some(Special::CreateUser {
                        name,
                        is_role,
                        if_not_exists,
                        password,
                    })
                } else {
                    let if_exists = c.kws(&["if", "exists"]);
                    Some(Special::DropUser {
                        name: c.ident().ok_or_else(syntax)?,
                        if_exists,
                    })
                }
            } else if c.kw("type") {
                if create {
                    let name = c.name().ok_or_else(syntax)?;
                    if !c.kws(&["as", "enum"]) || !c.punct('(') {
                        return Err(SqlError::Unsupported(
                            "CREATE TYPE other than AS ENUM".into(),
                        ));
                    }
                    let mut values = Vec::new();
                    while let Some(Tok::Str(s)) = toks.get(c.i) {
                        values.push(s.clone());
                        c.i += 1;
                        if !c.punct(',') {
                            break;
                        }
                    }
                    if !c.punct(')') {
                        return Err(syntax());
                    }
                    Some(Special::CreateEnum { name, values })
                } else {
                    let if_exists = c.kws(&["if", "exists"]);
                    Some(Special::DropType {
                        name: c.name().ok_or_else(syntax)?,
                        if_exists,
                    })
                }
            } else if create && c.kw("sequence") {
                let if_not_exists = c.kws(&["if", "not", "exists"]);
                let name = c.name().ok_or_else(syntax)?;
                let (mut start, mut increment) = (1i64, 1i64);
                while !c.done() {
                    if c.kw("start") {
                        c.kw("with");
                        start = c
                            .rest_value()
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(syntax)?;
                    } else if c.kw("increment") {
                        c.kw("by");
                        increment = c
                            .rest_value()
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(syntax)?;
                    } else {
                        return Err(syntax());
                    }
                }
                if increment == 0 {
                    return Err(SqlError::Invalid("INCREMENT must not be zero".into()));
                }
                Some(Special::CreateSequence {
                    name,
                    if_not_exists,
                    start,
                    increment,
                })
            } else {
                None
            }
        }
        "grant" | "revoke" => {
            c.i = 1;
            let revoke = first == "revoke";
            let words = c.idents().ok_or_else(syntax)?;
            if c.kw("on") {
                let kind = obj_kind(&mut c);
                let objects = c.names().ok_or_else(syntax)?;
                if !(c.kw(if revoke { "from" } else { "to" })) {
                    return Err(syntax());
                }
                let grantees = c.idents().ok_or_else(syntax)?;
                let privileges = words.iter().map(|w| w.to_ascii_uppercase()).collect();
                Some(Special::Grant {
                    revoke,
                    privileges,
                    kind,
                    objects,
                    grantees,
                })
            } else if c.kw(if revoke { "from" } else { "to" }) {
                Some(Special::GrantRole {
                    revoke,
                    roles: words,
                    members: c.idents().ok_or_else(syntax)?,
                })
            } else {
                return Err(syntax());
            }
        }
        _ => None,
    };
    Ok(out)
}

/// `[WITH] PASSWORD 'pw' | PASSWORD NULL` to the end of the statement.
fn password_option(c: &mut Cur<'_>, what: &str) -> Result<Option<Secret>, SqlError> {
    c.kw("with");
    if !c.kw("password") {
        return Err(password_syntax(what));
    }
    let out = match c.toks.get(c.i) {
        Some(Tok::Str(s)) => Some(Secret(s.clone())),
        Some(Tok::Word(w, false)) if w == "null" => None,
        _ => return Err(password_syntax(what)),
    };
    c.i += 1;
    if !c.done() {
        return Err(password_syntax(what));
    }
    Ok(out)
}

/// The error for a malformed password clause; it never quotes the statement,
/// which may hold a password.
fn password_syntax(what: &str) -> SqlError {
    SqlError::Syntax(format!(
        "{what}: expected `{what} name [WITH] PASSWORD 'password'` or `... PASSWORD NULL` \
         (no other options are supported)"
    ))
}

fn obj_kind(c: &mut Cur<'_>) -> ObjKind {
    if c.kw("database") {
        ObjKind::Database
    } else if c.kw("schema") {
        ObjKind::Schema
    } else if c.kw("type") {
        ObjKind::Type
    } else {
        let _ = c.kw("table") || c.kw("sequence") || c.kw("view");
        ObjKind::Table
    }
}

/// Cuts `AS OF SYSTEM TIME <expr>` out of a `SELECT`.
fn as_of(sql: &str) -> Result<Option<Special>, SqlError> {
    let lower = sql.to_ascii_lowercase();
    let Some(pos) = find_outside_quotes(&lower, "as of system time") else {
        return Ok(None);
    };
    let after = &sql[pos + "as of system time".len()..];
    let toks = tokenize(after).unwrap_or_default();
    let (expr, consumed) = match toks.as_slice() {
        [Tok::Str(s), ..] => (backup_sql::Expr::String(s.clone()), 1),
        [Tok::Num(n), ..] => (backup_sql::Expr::Number(n.clone()), 1),
        [Tok::Word(f, _), Tok::Punct('('), Tok::Punct(')'), ..] => (
            backup_sql::Expr::Function {
                name: backup_sql::Ident(f.clone()),
                args: vec![],
            },
            3,
        ),
        _ => {
            return Err(SqlError::Syntax(
                "AS OF SYSTEM TIME needs a timestamp or interval".into(),
            ));
        }
    };
    // Find where the consumed tokens end in the text.
    let mut rest = after.trim_start();
    for _ in 0..consumed {
        rest = skip_token(rest).trim_start();
    }
    Ok(Some(Special::AsOf {
        sql: format!("{} {}", &sql[..pos], rest),
        expr,
    }))
}

/// `s` without its first token.
fn skip_token(s: &str) -> &str {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, q @ ('\'' | '"'))) => {
            let mut prev_quote = false;
            for (i, ch) in chars {
                if ch == q {
                    prev_quote = !prev_quote;
                } else if prev_quote {
                    return &s[i..];
                }
            }
            ""
        }
        Some((_, ch)) if ch.is_alphanumeric() || ch == '_' || ch == '-' || ch == '.' => {
            let end = s
                .char_indices()
                .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '.' || *c == '-'))
                .map_or(s.len(), |(i, _)| i);
            &s[end..]
        }
        Some((_, ch)) => &s[ch.len_utf8()..],
        None => "",
    }
}

/// The byte position of `needle` in `hay` outside single quotes.
fn find_outside_quotes(hay: &str, needle: &str) -> Option<usize> {
    let mut in_quote = false;
    for (i, ch) in hay.char_indices() {
        if ch == '\'' {
            in_quote = !in_quote;
        } else if !in_quote && hay[i..].starts_with(needle) {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_is_cut_out() {
        let Some(Special::AsOf { sql, expr }) =
            recognise("SELECT * FROM t AS OF SYSTEM TIME '-1s' WHERE a = 'as of system time'")
                .unwrap()
        else {
            panic!("not recognised")
        };
        assert_eq!(sql, "SELECT * FROM t  WHERE a = 'as of system time'");
        assert_eq!(expr, backup_sql::Expr::String("-1s".into()));
        let Some(Special::AsOf { sql, .. }) =
            recognise("select count(*) from t as of system time 1637000000000000000.0000000001")
                .unwrap()
        else {
            panic!("not recognised")
        };
        assert_eq!(sql.trim(), "select count(*) from t");
    }

    #[test]
    fn special_forms() {
        assert_eq!(
            recognise("ALTER TABLE bank.accounts CONFIGURE ZONE USING gc.ttlseconds = 600")
                .unwrap(),
            Some(Special::ConfigureZone {
                table: vec!["bank".into(), "accounts".into()],
                ttl: 600
            })
        );
        assert_eq!(
            recognise("grant admin to alice").unwrap(),
            Some(Special::GrantRole {
                revoke: false,
                roles: vec!["admin".into()],
                members: vec!["alice".into()]
            })
        );
        assert!(recognise("select 1").unwrap().is_none());
        assert!(recognise("SHOW 'x").is_err());
    }
}
