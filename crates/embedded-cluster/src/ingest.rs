//! Bulk ingest of restored entries, and removal of a failed restore's data.
//!
//! Ingest writes a whole batch in one engine transaction (one commit and
//! fsync per batch, not per row), in engine-key order, with the time-index
//! entries that later incremental exports need. Entries keep their own
//! timestamps (see [`backup_exec::Ingest::ingest`] for why the restore job sets
//! them to its write time).

use backup_format::{KEY_MAX, MvccEntry, Span};

use crate::cluster::{Cluster, TIME_INDEX, VERSIONS};
use crate::error::{ClusterError, storage};
use crate::keys;
use crate::mvcc::{KeyValue, VersionWriter};

/// Engine keys removed per write transaction when clearing spans.
const CLEAR_BATCH: usize = 50_000;

impl Cluster {
    /// Writes `batch` in one engine transaction, each entry at its own timestamp.
    pub fn ingest(&self, mut batch: Vec<MvccEntry>) -> Result<(), ClusterError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(bad) = batch
            .iter()
            .find(|e| e.key.is_empty() || e.key.as_slice() >= KEY_MAX || e.ts.is_zero())
        {
            return Err(ClusterError::Invalid(format!(
                "cannot ingest key {} at {}: keys must be non-empty and below KEY_MAX, \
                 timestamps above zero",
                backup_format::PrettyKey(&bad.key),
                bad.ts
            )));
        }
        batch.sort_unstable_by(|a, b| a.mvcc_cmp(b));
        let mut tables: Vec<u64> = batch
            .iter()
            .filter_map(|e| keys::table_of(&e.key))
            .collect();
        tables.dedup();
        self.ensure_table_splits(tables)?;
        // Keep the clock above every ingested timestamp.
        if let Some(max) = batch.iter().map(|e| e.ts).max() {
            self.inner.clock.observe(max)?;
        }
        self.write(|tx| {
            let mut w = VersionWriter::open(tx)?;
            for e in &batch {
                w.put(&e.key, e.ts, e.value.as_deref())?;
            }
            Ok(())
        })?;
        self.note_written(
            batch
                .iter()
                .map(|e| (e.key.as_slice(), e.size() as u64 + 3)),
        )
    }

    /// Deletes every version in `spans` (and its time-index entries): the
    /// cleanup of a restore that failed before publishing.
    pub fn clear_spans(&self, spans: &[Span]) -> Result<u64, ClusterError> {
        let mut removed = 0u64;
        for span in spans.iter().filter(|s| !s.is_empty()) {
            loop {
                let batch = self.versions_in(span, CLEAR_BATCH)?;
                if batch.is_empty() {
                    break;
                }
                removed += batch.len() as u64;
                self.write(|tx| {
                    let mut versions = tx
                        .open_table(VERSIONS)
                        .map_err(|e| storage("opening versions")(&e))?;
                    let mut index = tx
                        .open_table(TIME_INDEX)
                        .map_err(|e| storage("opening the time index")(&e))?;
                    for (ek, ik) in &batch {
                        versions
                            .remove(ek.as_slice())
                            .map_err(|e| storage("clearing a version")(&e))?;
                        index
                            .remove(ik.as_slice())
                            .map_err(|e| storage("clearing the time index")(&e))?;
                    }
                    Ok(())
                })?;
            }
        }
        Ok(removed)
    }

    /// Up to `limit` (engine key, time-index key) pairs of versions in `span`.
    fn versions_in(&self, span: &Span, limit: usize) -> Result<Vec<KeyValue>, ClusterError> {
        let tx = self.read()?;
        let versions = tx
            .open_table(VERSIONS)
            .map_err(|e| storage("opening versions")(&e))?;
        let (lo, hi) = (keys::escaped(&span.start), keys::escaped(&span.end));
        let mut out = Vec::new();
        for item in versions
            .range(lo.as_slice()..hi.as_slice())
            .map_err(|e| storage("scanning")(&e))?
            .take(limit)
        {
            let (k, _) = item.map_err(|e| storage("scanning")(&e))?;
            let (esc, ts) = keys::split_version_key(k.value())
                .ok_or_else(|| ClusterError::Corrupt("short version key".into()))?;
            let key = keys::unescape(esc).ok_or_else(|| ClusterError::Corrupt("bad key".into()))?;
            out.push((k.value().to_vec(), keys::time_index_key(&key, ts)));
        }
        Ok(out)
    }
}
