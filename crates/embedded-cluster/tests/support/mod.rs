//! What the cluster's integration tests share: a cluster in a temporary
//! store, and statements that must succeed or must fail.
#![allow(clippy::unwrap_used, dead_code)]

use embedded_cluster::{Cluster, QueryResult, Session, Value};

/// A 3-node cluster in a temporary store (kept alive by the returned dir).
pub fn open() -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::open_default(dir.path()).unwrap();
    (dir, cluster)
}

/// [`open`] with BACKUP, RESTORE and the other backup statements routed to
/// the backup system.
pub fn open_with_backups() -> (tempfile::TempDir, Cluster) {
    let (dir, cluster) = open();
    cluster.enable_backup_statements().unwrap();
    (dir, cluster)
}

/// Runs a statement that must succeed.
pub fn exec(s: &mut Session, sql: &str) -> QueryResult {
    s.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Runs a statement that must fail; its error message.
pub fn err(s: &mut Session, sql: &str) -> String {
    match s.execute(sql) {
        Ok(r) => panic!("{sql} succeeded: {r:?}"),
        Err(e) => e.to_string(),
    }
}

/// The value of column `name` in row `row`.
pub fn column<'a>(r: &'a QueryResult, row: usize, name: &str) -> &'a Value {
    let i = r.columns.iter().position(|(n, _)| n == name).unwrap();
    &r.rows[row][i]
}

/// Every row's value of column `name`.
pub fn column_values(r: &QueryResult, name: &str) -> Vec<Value> {
    let i = r.columns.iter().position(|(n, _)| n == name).unwrap();
    r.rows.iter().map(|row| row[i].clone()).collect()
}
