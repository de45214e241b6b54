//! Fingerprints of a database's tables as of any time, read straight from
//! the cluster's MVCC store, to prove a restore against its source.
//!
//! Each index's fingerprint is `embedded_cluster::fingerprint::fingerprint`
//! over its `(key suffix, value)` pairs — what `SHOW
//! EXPERIMENTAL_FINGERPRINTS` shows for the current time — so a restored
//! table (under a new id) fingerprints equal to its source at the restore
//! time exactly when it holds the same rows.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow};
use backup_exec::{Catalog, IntentPolicy};
use backup_format::{DescriptorKind, Timestamp};
use embedded_cluster::{Cluster, fingerprint, keys};

/// Table name -> (index id -> fingerprint) for the non-empty indexes.
pub type Fingerprints = BTreeMap<String, BTreeMap<u32, u64>>;

/// The fingerprints of every table of database `db` as of `ts`.
pub fn of_database(cluster: &Cluster, db: &str, ts: Timestamp) -> anyhow::Result<Fingerprints> {
    let descs = Catalog::descriptors(cluster, ts).context("reading the catalog")?;
    let db_id = descs
        .iter()
        .find(|d| d.kind == DescriptorKind::Database && d.name == db)
        .map(|d| d.id)
        .ok_or_else(|| anyhow!("database {db} does not exist at {ts}"))?;
    let mut out = Fingerprints::new();
    for t in descs
        .iter()
        .filter(|d| d.kind == DescriptorKind::Table && d.parent_id == db_id)
    {
        out.insert(t.name.clone(), of_table(cluster, t.id, ts)?);
    }
    Ok(out)
}

/// The id of table `db.table` now.
pub fn table_id(cluster: &Cluster, db: &str, table: &str) -> anyhow::Result<u64> {
    let ts = cluster.now()?;
    let descs = Catalog::descriptors(cluster, ts).context("reading the catalog")?;
    let db_id = descs
        .iter()
        .find(|d| d.kind == DescriptorKind::Database && d.name == db)
        .map(|d| d.id);
    descs
        .iter()
        .find(|d| d.kind == DescriptorKind::Table && Some(d.parent_id) == db_id && d.name == table)
        .map(|d| d.id)
        .ok_or_else(|| anyhow!("table {db}.{table} does not exist"))
}

/// Per-index fingerprints of one table as of `ts`.
fn of_table(cluster: &Cluster, table: u64, ts: Timestamp) -> anyhow::Result<BTreeMap<u32, u64>> {
    let pairs = cluster
        .scan(&keys::table_span(table), ts, IntentPolicy::FailFast)
        .with_context(|| format!("scanning table {table} at {ts}"))?;
    let index_of = |k: &[u8]| -> u32 {
        k.get(keys::TABLE_PREFIX_LEN..keys::TABLE_PREFIX_LEN + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes)
    };
    let mut out = BTreeMap::new();
    let mut start = 0;
    while start < pairs.len() {
        let index = index_of(&pairs[start].0);
        let end = pairs[start..]
            .iter()
            .position(|(k, _)| index_of(k) != index)
            .map_or(pairs.len(), |n| start + n);
        if let Some(fp) = fingerprint::fingerprint(&pairs[start..end]) {
            out.insert(index, fp);
        }
        start = end;
    }
    Ok(out)
}
