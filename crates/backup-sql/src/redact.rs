//! Redaction: statements as they may appear in job descriptions, logs and
//! `SHOW` output, with passphrases and URI credentials replaced by `redacted`.
//!
//! [`redact_uri`] is the one place that knows which URI parts are secret;
//! when `backup-storage` exports its own `redact_uri`, swap the body for a
//! call to it.

use crate::ast::{Expr, Statement};
use crate::options::{BackupOptions, RestoreOptions, ShowBackupOptions};

/// Query parameters whose values are secrets (compared case-insensitively).
pub const SECRET_URI_PARAMS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_ACCOUNT_KEY",
    "AZURE_CLIENT_SECRET",
    "CREDENTIALS",
];

/// What replaces a secret.
pub const REDACTED: &str = "redacted";

/// `uri` with secret query parameters and any userinfo password replaced by
/// `redacted`; everything else is kept as written.
pub fn redact_uri(uri: &str) -> String {
    let (before_query, query) = match uri.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (uri, None),
    };
    let mut out = redact_userinfo(before_query);
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _))
                    if SECRET_URI_PARAMS
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(key)) =>
                {
                    format!("{key}={REDACTED}")
                }
                _ => param.to_string(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

/// `scheme://user:password@host/..` with the password redacted.
fn redact_userinfo(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_string();
    };
    let authority_start = scheme_end + 3;
    let rest = &s[authority_start..];
    let authority_len = rest.find(['/', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let Some(at) = authority.rfind('@') else {
        return s.to_string();
    };
    let Some(colon) = authority[..at].find(':') else {
        return s.to_string();
    };
    format!(
        "{}{}:{REDACTED}{}",
        &s[..authority_start],
        &authority[..colon],
        &s[authority_start + at..]
    )
}

fn uri(e: &Expr) -> Expr {
    match e {
        Expr::String(s) => Expr::String(redact_uri(s)),
        other => other.clone(),
    }
}

fn uris(list: &[Expr]) -> Vec<Expr> {
    list.iter().map(uri).collect()
}

fn secret(e: &Option<Expr>) -> Option<Expr> {
    e.as_ref().map(|e| match e {
        Expr::String(_) => Expr::String(REDACTED.into()),
        other => other.clone(),
    })
}

fn backup_options(o: &BackupOptions) -> BackupOptions {
    BackupOptions {
        encryption_passphrase: secret(&o.encryption_passphrase),
        kms: o.kms.as_deref().map(uris),
        incremental_location: o.incremental_location.as_deref().map(uris),
        ..o.clone()
    }
}

impl Statement {
    /// The statement with passphrases and URI credentials redacted; its
    /// `Display` is what a job description may show.
    pub fn redacted(&self) -> Statement {
        let mut s = self.clone();
        match &mut s {
            Statement::Backup(b) => {
                b.to = uris(&b.to);
                b.options = backup_options(&b.options);
            }
            Statement::Restore(r) => {
                r.from = uris(&r.from);
                r.options = RestoreOptions {
                    encryption_passphrase: secret(&r.options.encryption_passphrase),
                    kms: r.options.kms.as_deref().map(uris),
                    incremental_location: r.options.incremental_location.as_deref().map(uris),
                    ..r.options.clone()
                };
            }
            Statement::ShowBackups { collection } => *collection = uri(collection),
            Statement::ShowBackup(sb) => {
                sb.collection = uris(&sb.collection);
                sb.options = ShowBackupOptions {
                    encryption_passphrase: secret(&sb.options.encryption_passphrase),
                    kms: sb.options.kms.as_deref().map(uris),
                    incremental_location: sb.options.incremental_location.as_deref().map(uris),
                    ..sb.options.clone()
                };
            }
            Statement::CreateSchedule(c) => {
                c.to = uris(&c.to);
                c.backup_options = backup_options(&c.backup_options);
            }
            Statement::ShowJobs
            | Statement::ShowJob { .. }
            | Statement::ControlJob { .. }
            | Statement::ShowSchedules { .. }
            | Statement::ShowSchedule { .. }
            | Statement::ControlSchedule { .. } => {}
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_params_are_redacted_case_insensitively() {
        assert_eq!(
            redact_uri(
                "s3://b/p?AWS_ACCESS_KEY_ID=id&aws_secret_access_key=s3cr3t&AWS_SESSION_TOKEN=t"
            ),
            "s3://b/p?AWS_ACCESS_KEY_ID=id&aws_secret_access_key=redacted&AWS_SESSION_TOKEN=redacted"
        );
        assert_eq!(
            redact_uri("azure://c/p?AZURE_ACCOUNT_NAME=n&AZURE_ACCOUNT_KEY=k%3D"),
            "azure://c/p?AZURE_ACCOUNT_NAME=n&AZURE_ACCOUNT_KEY=redacted"
        );
        assert_eq!(
            redact_uri("gs://b/p?AUTH=specified&CREDENTIALS=abc"),
            "gs://b/p?AUTH=specified&CREDENTIALS=redacted"
        );
    }

    #[test]
    fn userinfo_password_is_redacted() {
        assert_eq!(
            redact_uri("http://alice:pw@host:8080/x?y=1"),
            "http://alice:redacted@host:8080/x?y=1"
        );
        assert_eq!(redact_uri("http://alice@host/x"), "http://alice@host/x");
    }

    #[test]
    fn other_uris_are_unchanged() {
        for u in [
            "nodelocal://1/b",
            "userfile:///x",
            "",
            "not a uri",
            "s3://b?a&b=&=c",
        ] {
            assert_eq!(redact_uri(u), u);
        }
    }
}
