//! Keeping secrets out of everything the CLI prints.
//!
//! Statements are echoed through `backup-sql`'s redaction, and the layers
//! below already scrub their errors; as a second line of defence every
//! secret found in the statements a command runs (URI secrets and
//! passwords, `encryption_passphrase`, `PASSWORD`) is replaced by
//! `redacted` in whatever the command prints.

use backup_storage::redact_uri;

/// The secrets of the statements seen so far.
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    values: Vec<String>,
}

/// Options whose string value is a secret.
const SECRET_OPTIONS: &[&str] = &["encryption_passphrase", "password", "kms"];

impl Secrets {
    /// Remembers every secret in `sql`.
    pub fn learn(&mut self, sql: &str) {
        let literals = string_literals(sql);
        for (pos, lit) in &literals {
            if lit.contains("://") {
                self.learn_uri(lit);
            }
            let before = sql[..*pos].trim_end().trim_end_matches('=').trim_end();
            let before = before.to_ascii_lowercase();
            if SECRET_OPTIONS.iter().any(|o| before.ends_with(o)) {
                self.add_secret(lit);
            }
        }
    }

    /// Remembers the secrets of one URI (for URIs given on the command line).
    pub fn learn_uri(&mut self, uri: &str) {
        let redacted = redact_uri(uri);
        let (Some((_, q1)), Some((_, q2))) = (uri.split_once('?'), redacted.split_once('?')) else {
            self.learn_userinfo(uri);
            return;
        };
        for (a, b) in q1.split('&').zip(q2.split('&')) {
            if a != b
                && let Some((_, v)) = a.split_once('=')
            {
                self.add_secret(v);
                self.add_secret(&percent_decode(v));
            }
        }
        self.learn_userinfo(uri);
    }

    fn learn_userinfo(&mut self, uri: &str) {
        let Some((_, rest)) = uri.split_once("://") else {
            return;
        };
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            self.add_secret(password);
            self.add_secret(&percent_decode(password));
        }
    }

    /// Remembers one secret value (a passphrase given as an argument).
    pub fn add_secret(&mut self, secret: &str) {
        if !secret.is_empty() && !self.values.iter().any(|v| v == secret) {
            self.values.push(secret.to_string());
            // Longest first, so a secret that contains another goes whole.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// `text` with every known secret replaced by `redacted`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "redacted");
            }
        }
        out
    }
}

/// A statement as it may be shown: backup statements through their AST's
/// redaction, others with known secrets scrubbed.
pub fn statement_for_display(sql: &str, secrets: &Secrets) -> String {
    let sql = sql.trim().trim_end_matches(';').trim_end();
    if backup_sql::is_backup_statement(sql)
        && let Ok(stmt) = backup_sql::parse_statement(sql)
    {
        return secrets.scrub(&stmt.redacted().to_string());
    }
    secrets.scrub(sql)
}

/// The single-quoted literals of `sql` with their byte offsets (`''` is a quote).
fn string_literals(sql: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut chars = sql.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut lit = String::new();
        while let Some((_, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                    chars.next();
                    lit.push('\'');
                    continue;
                }
                break;
            }
            lit.push(c);
        }
        out.push((i, lit));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => match std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_of_uris_and_passphrases_are_scrubbed() {
        let mut s = Secrets::default();
        s.learn(
            "BACKUP DATABASE bank INTO 's3://b/p?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY=hunter%2F2' \
             WITH encryption_passphrase = 'pass''word'",
        );
        s.learn("CREATE USER u WITH PASSWORD 'pw-123'");
        s.learn_uri("gs://user:sekret@host/p");
        let text = "key hunter/2, hunter%2F2, pass'word, pw-123, sekret; id stays";
        assert_eq!(
            s.scrub(text),
            "key redacted, redacted, redacted, redacted, redacted; id stays"
        );
    }

    #[test]
    fn backup_statements_display_redacted() {
        let mut s = Secrets::default();
        let sql = "BACKUP INTO 'nodelocal://1/b' WITH encryption_passphrase = 'xyzzy';";
        s.learn(sql);
        let shown = statement_for_display(sql, &s);
        assert!(!shown.contains("xyzzy"), "{shown}");
        assert!(shown.contains("nodelocal://1/b"), "{shown}");
    }
}
