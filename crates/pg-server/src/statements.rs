//! Statement text as clients send it: a simple query split into its
//! statements, `$n` placeholders found and replaced, and the redacted form
//! the server logs.

/// A lexical state of the scanner.
#[derive(Clone, Copy, PartialEq)]
enum State {
    Normal,
    /// Inside `'...'`; `true` when backslash escapes apply (`E'...'`).
    Single(bool),
    Double,
    LineComment,
    /// Nesting depth.
    BlockComment(u32),
    /// Inside `$tag$...$tag$`.
    Dollar,
}

/// What the scanner reports.
enum Event {
    /// A byte outside quotes and comments.
    Byte(usize, u8),
    /// A single-quoted literal ended; the range includes its quotes.
    Quoted(usize, usize),
}

/// A scanner of statement text.
struct Scan<'a> {
    sql: &'a str,
    state: State,
    dollar_tag: &'a str,
}

impl<'a> Scan<'a> {
    fn new(sql: &'a str) -> Scan<'a> {
        Scan {
            sql,
            state: State::Normal,
            dollar_tag: "",
        }
    }

    /// Walks `sql`, reporting each byte outside quotes and comments and
    /// each single-quoted literal.
    fn run(&mut self, mut f: impl FnMut(Event)) {
        let b = self.sql.as_bytes();
        let mut i = 0;
        let mut quote_start = 0;
        while i < b.len() {
            let c = b[i];
            let next = b.get(i + 1).copied();
            match self.state {
                State::Normal => match c {
                    b'\'' => {
                        let escapes = i > 0
                            && matches!(b[i - 1], b'e' | b'E')
                            && (i < 2 || !is_ident(b[i - 2]));
                        quote_start = if escapes { i - 1 } else { i };
                        self.state = State::Single(escapes);
                    }
                    b'"' => self.state = State::Double,
                    b'-' if next == Some(b'-') => {
                        self.state = State::LineComment;
                        i += 1;
                    }
                    b'/' if next == Some(b'*') => {
                        self.state = State::BlockComment(1);
                        i += 1;
                    }
                    b'$' if i == 0 || !is_ident(b[i - 1]) => {
                        if let Some(tag) = dollar_tag(&self.sql[i..]) {
                            self.dollar_tag = tag;
                            self.state = State::Dollar;
                            i += tag.len();
                            continue;
                        }
                        f(Event::Byte(i, c));
                    }
                    _ => f(Event::Byte(i, c)),
                },
                State::Single(escapes) => {
                    if escapes && c == b'\\' {
                        i += 1;
                    } else if c == b'\'' {
                        if next == Some(b'\'') {
                            i += 1;
                        } else {
                            self.state = State::Normal;
                            f(Event::Quoted(quote_start, i + 1));
                        }
                    }
                }
                State::Double => {
                    if c == b'"' {
                        self.state = State::Normal;
                    }
                }
                State::LineComment => {
                    if c == b'\n' {
                        self.state = State::Normal;
                    }
                }
                State::BlockComment(depth) => {
                    if c == b'*' && next == Some(b'/') {
                        self.state = if depth == 1 {
                            State::Normal
                        } else {
                            State::BlockComment(depth - 1)
                        };
                        i += 1;
                    } else if c == b'/' && next == Some(b'*') {
                        self.state = State::BlockComment(depth + 1);
                        i += 1;
                    }
                }
                State::Dollar => {
                    if self.sql[i..].starts_with(self.dollar_tag) {
                        i += self.dollar_tag.len();
                        self.state = State::Normal;
                        continue;
                    }
                }
            }
            i += 1;
        }
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// `$tag$` or `$$` at the start of `s`.
fn dollar_tag(s: &str) -> Option<&str> {
    let rest = s.get(1..)?;
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let ok = tag.is_empty()
        || (tag.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            && !tag.as_bytes()[0].is_ascii_digit());
    ok.then(|| &s[..end + 2])
}

/// The statements of a simple query, trimmed, without empty ones (a text of
/// only comments and semicolons has none).
pub fn split(sql: &str) -> Vec<&str> {
    let mut cuts = Vec::new();
    let mut has_content = Vec::new();
    let mut content = false;
    Scan::new(sql).run(|e| match e {
        Event::Byte(i, b';') => {
            cuts.push(i);
            has_content.push(content);
            content = false;
        }
        Event::Byte(_, c) if c.is_ascii_whitespace() => {}
        _ => content = true,
    });
    cuts.push(sql.len());
    has_content.push(content);
    let mut out = Vec::new();
    let mut start = 0;
    for (end, content) in cuts.into_iter().zip(has_content) {
        if content {
            out.push(sql[start..end].trim());
        }
        start = (end + 1).min(sql.len());
    }
    out
}

/// Every `$n` placeholder outside quotes and comments: (byte range, n).
pub fn placeholders(sql: &str) -> Vec<(std::ops::Range<usize>, usize)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    Scan::new(sql).run(|e| {
        if let Event::Byte(i, b'$') = e {
            let digits = b[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
            if let Ok(n) = sql[i + 1..i + 1 + digits].parse::<usize>() {
                out.push((i..i + 1 + digits, n));
            }
        }
    });
    out
}

/// How many parameters the statement takes (its highest `$n`).
pub fn parameter_count(sql: &str) -> usize {
    placeholders(sql).iter().map(|(_, n)| *n).max().unwrap_or(0)
}

/// `sql` with each `$n` replaced by `literals[n - 1]`; `Err` names a
/// placeholder without a value.
pub fn substitute(sql: &str, literals: &[String]) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for (range, n) in placeholders(sql) {
        let lit = n
            .checked_sub(1)
            .and_then(|i| literals.get(i))
            .ok_or_else(|| {
                format!(
                    "statement uses ${n} but {} parameters were bound",
                    literals.len()
                )
            })?;
        out.push_str(&sql[last..range.start]);
        out.push_str(lit);
        last = range.end;
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

/// The form of a statement the server may log: backup statements with
/// their URIs' credentials and passphrases redacted, every other statement
/// with its string literals masked (they may hold passwords).
pub fn redacted(sql: &str) -> String {
    if backup_sql::is_backup_statement(sql)
        && let Ok(s) = backup_sql::parse_statement(sql)
    {
        return s.redacted().to_string();
    }
    let mut ranges = Vec::new();
    Scan::new(sql).run(|e| {
        if let Event::Quoted(s, e) = e {
            ranges.push(s..e);
        }
    });
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for r in ranges {
        out.push_str(&sql[last..r.start]);
        out.push_str("'***'");
        last = r.end;
    }
    // An unterminated literal: mask the rest.
    let rest = &sql[last..];
    match rest.find('\'') {
        Some(q) => {
            out.push_str(&rest[..q]);
            out.push_str("'***");
        }
        None => out.push_str(rest),
    }
    out
}

/// An error message about `sql` with every string literal of `sql` masked,
/// for the logs (messages may quote the statement's text).
pub fn redact_message(message: &str, sql: &str) -> String {
    let mut literals = Vec::new();
    Scan::new(sql).run(|e| {
        if let Event::Quoted(s, e) = e {
            let inner = sql[s..e].trim_start_matches(['e', 'E']);
            let inner = &inner[1..inner.len() - 1];
            if !inner.is_empty() {
                literals.push(inner.to_string());
                literals.push(inner.replace("''", "'"));
            }
        }
    });
    if let Some(rest) = sql.get(sql.rfind('\'').map_or(sql.len(), |q| q + 1)..) {
        // An unterminated literal: its text may be quoted too.
        if sql.matches('\'').count() % 2 == 1 && !rest.is_empty() {
            literals.push(rest.to_string());
        }
    }
    literals.sort_by_key(|l| std::cmp::Reverse(l.len()));
    let mut out = message.to_string();
    for l in literals {
        out = out.replace(&l, "***");
    }
    out
}

/// Whether the statement only reads (so the server may run it to learn its
/// columns before the client asks for rows).
pub fn is_read_only(sql: &str) -> bool {
    let first = first_word(sql);
    matches!(
        first.as_str(),
        "select" | "show" | "values" | "table" | "explain"
    ) || (first == "with" && !contains_word(sql, &["insert", "update", "delete", "upsert"]))
}

/// The statement's first keyword, lower-cased.
pub fn first_word(sql: &str) -> String {
    sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn contains_word(sql: &str, words: &[&str]) -> bool {
    sql.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| words.iter().any(|x| w.eq_ignore_ascii_case(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_comments() {
        assert_eq!(
            split("select 'a;b'; select \"x;y\" -- c;d\n; /* e;f */ ;;"),
            vec!["select 'a;b'", "select \"x;y\" -- c;d"]
        );
        assert_eq!(split("  ;  -- only a comment"), Vec::<&str>::new());
        assert_eq!(
            split("select $$a;b$$; select 1"),
            vec!["select $$a;b$$", "select 1"]
        );
        assert_eq!(split("select E'a\\';b'"), vec!["select E'a\\';b'"]);
    }

    #[test]
    fn placeholders_are_found_and_replaced() {
        let sql = "select $1, '$2', $2 from t where a = $10";
        assert_eq!(parameter_count(sql), 10);
        let lits: Vec<String> = (1..=10).map(|i| format!("L{i}")).collect();
        assert_eq!(
            substitute(sql, &lits).unwrap(),
            "select L1, '$2', L2 from t where a = L10"
        );
        assert!(substitute("select $2", &lits[..1]).is_err());
    }

    #[test]
    fn redaction_masks_literals_and_uri_secrets() {
        assert_eq!(
            redacted("CREATE USER a WITH PASSWORD 'pw''x'"),
            "CREATE USER a WITH PASSWORD '***'"
        );
        let b = redacted(
            "BACKUP DATABASE d INTO 's3://bucket/p?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY=topsecret'",
        );
        assert!(!b.contains("topsecret"), "{b}");
        assert!(b.contains("bucket"), "{b}");
        assert_eq!(redacted("select 'unterminated"), "select '***");
    }

    #[test]
    fn error_messages_lose_the_literals_of_their_statement() {
        let sql = "CREATE USER a WITH PASSWORD 'pw-1' bogus";
        assert_eq!(
            redact_message("syntax error near 'pw-1' bogus", sql),
            "syntax error near '***' bogus"
        );
        assert_eq!(redact_message("x: sec'ret", "select 'sec''ret'"), "x: ***");
        assert_eq!(redact_message("near: abc", "select 'abc"), "near: ***");
    }

    #[test]
    fn read_only_statements() {
        assert!(is_read_only(" SELECT 1"));
        assert!(is_read_only("show tables"));
        assert!(!is_read_only("insert into t values (1)"));
        assert!(!is_read_only(
            "with x as (select 1) insert into t select * from x"
        ));
    }
}
