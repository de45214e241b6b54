//! SQL helpers for tests that drive the cluster through sessions.

use std::path::Path;

use embedded_cluster::{QueryResult, Session};

/// Runs `sql`, panicking with the statement and the error if it fails.
pub fn exec(s: &mut Session, sql: &str) -> QueryResult {
    match s.execute(sql) {
        Ok(r) => r,
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// Runs `sql`, which must fail; returns the error's message.
pub fn err(s: &mut Session, sql: &str) -> String {
    match s.execute(sql) {
        Ok(r) => panic!("{sql} succeeded: {r:?}"),
        Err(e) => e.to_string(),
    }
}

/// A `file://` collection URI under `dir`.
pub fn collection_uri(dir: &Path) -> String {
    format!("file://{}", dir.join("collection").display())
}
