//! Errors never carry secrets: every URI of the statement is replaced by its
//! redacted form, and secret query values and passphrases by `redacted`,
//! in whatever message a lower layer produced.

use crate::ast::{Expr, Statement};
use crate::error::SqlError;

/// The secret strings of a bound statement, each with its replacement.
fn secrets(stmt: &Statement) -> Vec<(String, String)> {
    let (uris, passphrase): (Vec<&Expr>, Option<&Expr>) = match stmt {
        Statement::Backup(b) => (
            b.to.iter()
                .chain(b.options.incremental_location.iter().flatten())
                .collect(),
            b.options.encryption_passphrase.as_ref(),
        ),
        Statement::Restore(r) => (
            r.from
                .iter()
                .chain(r.options.incremental_location.iter().flatten())
                .collect(),
            r.options.encryption_passphrase.as_ref(),
        ),
        Statement::ShowBackup(s) => (
            s.collection
                .iter()
                .chain(s.options.incremental_location.iter().flatten())
                .collect(),
            s.options.encryption_passphrase.as_ref(),
        ),
        Statement::ShowBackups { collection } => (vec![collection], None),
        _ => (Vec::new(), None),
    };
    let mut out = Vec::new();
    for uri in uris {
        let Expr::String(u) = uri else { continue };
        let redacted = backup_storage::redact_uri(u);
        if redacted != *u {
            out.push((u.clone(), redacted));
        }
        let query = u.split_once('?').map_or("", |(_, q)| q);
        for pair in query.split('&') {
            if let Some((k, v)) = pair.split_once('=')
                && backup_storage::secret_params()
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(k))
                && v.len() >= 3
            {
                out.push((v.to_string(), "redacted".into()));
            }
        }
    }
    if let Some(Expr::String(p)) = passphrase
        && !p.is_empty()
    {
        out.push((p.clone(), "redacted".into()));
    }
    // Longest first, so a URI is replaced whole before its parts.
    out.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    out
}

/// `e` with every secret of `stmt` taken out of its message.
pub(crate) fn scrub(e: SqlError, stmt: &Statement) -> SqlError {
    let secrets = secrets(stmt);
    if secrets.is_empty() {
        return e;
    }
    let clean = |mut s: String| {
        for (secret, with) in &secrets {
            s = s.replace(secret.as_str(), with);
        }
        s
    };
    match e {
        SqlError::InvalidValue { what, reason } => SqlError::InvalidValue {
            what: clean(what),
            reason: clean(reason),
        },
        SqlError::AsOf(s) => SqlError::AsOf(clean(s)),
        SqlError::Unsupported(s) => SqlError::Unsupported(clean(s)),
        SqlError::Privilege(s) => SqlError::Privilege(clean(s)),
        SqlError::NotFound(s) => SqlError::NotFound(clean(s)),
        SqlError::Dependency(s) => SqlError::Dependency(clean(s)),
        SqlError::AlreadyExists(s) => SqlError::AlreadyExists(clean(s)),
        SqlError::BackupFiles(s) => SqlError::BackupFiles(clean(s)),
        SqlError::Exec(s) => SqlError::Exec(clean(s)),
        other => other,
    }
}
