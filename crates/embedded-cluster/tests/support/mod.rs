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

/// Every entry of `span` in `(start, end]` through every range and resume
/// key, in chunks of about `target` bytes.
pub fn export_all(
    c: &Cluster,
    span: &backup_format::Span,
    start: backup_format::Timestamp,
    end: backup_format::Timestamp,
    all_revisions: bool,
    target: u64,
) -> Vec<backup_format::MvccEntry> {
    use backup_exec::{ExportRequest, IntentPolicy, KvSource};
    let mut out = Vec::new();
    for info in KvSource::ranges(c, std::slice::from_ref(span)).unwrap() {
        let mut req = ExportRequest {
            span: info.span.clone(),
            start_ts: start,
            end_ts: end,
            all_revisions,
            intent_policy: IntentPolicy::FailFast,
            target_bytes: target,
        };
        loop {
            let chunk = KvSource::export(c, info.leaseholder, &req).unwrap();
            out.extend(chunk.entries);
            match chunk.resume_key {
                Some(k) => req.span.start = k,
                None => break,
            }
        }
    }
    out
}
