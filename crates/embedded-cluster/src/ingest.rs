//! Bulk ingest of restored entries, and removal of a failed restore's data.
//!
//! Ingest writes a whole batch in one engine transaction (one durable commit
//! per batch, not per row), with the time-index entries that later
//! incremental exports need. Entries keep their own timestamps (see
//! [`backup_exec::Ingest::ingest`] for why the restore job sets them to its
//! write time).
//!
//! The cost is the engine's B-tree inserts, one per entry, so ingest keeps
//! them few and cheap:
//!
//! - **One time-index entry per run, not per version.** An ordinary write
//!   puts a `(table, ts, key)` entry beside every version. A batch of table
//!   keys instead gets one entry per (table, timestamp): keyed by the run's
//!   first key, valued with its exclusive end, meaning "the keys of this run
//!   with a version at `ts`". Export expands a run by reading those versions
//!   (so an incremental export finds exactly what it did with per-version
//!   entries), GC keeps a run entry when it collects the run's first key's
//!   version (the run's other keys may be in ranges GC has not reached), and
//!   [`Cluster::clear_spans`] removes the runs of an aborted restore. This
//!   halves the inserts of a restore.
//! - **Nothing but inserts under the writer.** The engine has one writer at a
//!   time, so validation, sorting and encoding every engine key and value into
//!   one buffer (no allocation per row) happen before the write transaction
//!   starts; with several restore workers, one encodes its next batch while
//!   another holds the writer. Under the writer, the versions go in in
//!   engine-key order, then the index entries, so each B-tree is appended to
//!   along its right edge rather than alternating between the two.
//!
//! The commit stays durable ([`redb::Durability::Immediate`]): a restore job
//! checkpoints a finished unit in its job store after the unit's ingest calls
//! return, and that store need not be this engine (the e2e fixture keeps jobs
//! in files), so a batch must be on disk before `ingest` returns or a crash
//! could lose data a checkpoint already counts as restored.

use std::collections::{BTreeMap, BTreeSet};

use backup_format::{KEY_MAX, MvccEntry, Span, Timestamp};
use redb::WriteTransaction;

use crate::cluster::{Cluster, TIME_INDEX, VERSIONS};
use crate::error::{ClusterError, storage};
use crate::keys;
use crate::mvcc::{KeyValue, TAG_TOMBSTONE, TAG_VALUE};

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
        let (encoded, written) = EncodedBatch::new(batch);
        self.write(|tx| encoded.write(tx))?;
        drop(encoded);
        self.note_written(written.iter().map(|(k, size)| (k.as_slice(), *size)))
    }

    /// Deletes every version in `spans` (and its time-index entries, among
    /// them the ingested runs starting in `spans`): the cleanup of a restore
    /// that failed before publishing.
    pub fn clear_spans(&self, spans: &[Span]) -> Result<u64, ClusterError> {
        let mut removed = 0u64;
        for span in spans.iter().filter(|s| !s.is_empty()) {
            let mut tables = BTreeSet::new();
            loop {
                let batch = self.versions_in(span, CLEAR_BATCH)?;
                if batch.is_empty() {
                    break;
                }
                removed += batch.len() as u64;
                tables.extend(batch.iter().filter_map(|(_, ik)| {
                    keys::split_time_index_key(ik).and_then(|(_, _, key)| keys::table_of(key))
                }));
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
            if let Some(ids) = keys::tables_in(span).filter(|t| t.end() - t.start() < 64) {
                tables.extend(ids);
            }
            self.clear_runs(span, &tables)?;
        }
        Ok(removed)
    }

    /// Removes the ingested-run entries of `tables` whose runs start in `span`.
    fn clear_runs(&self, span: &Span, tables: &BTreeSet<u64>) -> Result<(), ClusterError> {
        for &table in tables {
            let runs: Vec<Vec<u8>> = {
                let tx = self.read()?;
                let index = tx
                    .open_table(TIME_INDEX)
                    .map_err(|e| storage("opening the time index")(&e))?;
                let lo = keys::time_index_start(table, Timestamp::ZERO);
                let mut runs = Vec::new();
                for item in index
                    .range(lo.as_slice()..)
                    .map_err(|e| storage("scanning the time index")(&e))?
                {
                    let (k, v) = item.map_err(|e| storage("scanning the time index")(&e))?;
                    let Some((bucket, _, key)) = keys::split_time_index_key(k.value()) else {
                        return Err(ClusterError::Corrupt("short time-index key".into()));
                    };
                    if bucket != table {
                        break;
                    }
                    if !v.value().is_empty() && span.contains_key(key) {
                        runs.push(k.value().to_vec());
                    }
                }
                runs
            };
            self.write(|tx| {
                let mut index = tx
                    .open_table(TIME_INDEX)
                    .map_err(|e| storage("opening the time index")(&e))?;
                for k in &runs {
                    index
                        .remove(k.as_slice())
                        .map_err(|e| storage("clearing the time index")(&e))?;
                }
                Ok(())
            })?;
        }
        Ok(())
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

/// A sorted batch encoded for the engine: every version key and stored
/// value, and the batch's time-index entries, in one buffer.
struct EncodedBatch {
    bytes: Vec<u8>,
    /// Per entry, in engine-key order: (start in `bytes`, key length, value length).
    versions: Vec<(usize, usize, usize)>,
    /// Time-index entries in index order, laid out like `versions`.
    index: Vec<(usize, usize, usize)>,
}

impl EncodedBatch {
    /// Encodes `batch`, which is sorted in MVCC order (so in engine-key
    /// order), dropping each value once copied; returns the encoding and each
    /// entry's key with its size for range sizing.
    ///
    /// Table keys get one time-index entry per (table, timestamp) of the
    /// batch, naming the run of keys from the first to the last written at
    /// that timestamp (its value is the run's exclusive end; export reads the
    /// run's versions at that timestamp). Other keys get one entry per version,
    /// as ordinary writes do.
    fn new(batch: Vec<MvccEntry>) -> (EncodedBatch, Vec<(Vec<u8>, u64)>) {
        let capacity: usize = batch
            .iter()
            .map(|e| {
                let value = e.value.as_ref().map_or(0, Vec::len);
                2 * e.key.len() + 3 + Timestamp::ENCODED_LEN + value
            })
            .sum();
        let mut bytes = Vec::with_capacity(capacity);
        let mut versions = Vec::with_capacity(batch.len());
        let mut written = Vec::with_capacity(batch.len());
        let mut runs: BTreeMap<(u64, Timestamp), (usize, usize)> = BTreeMap::new();
        let mut single = Vec::new();
        for (i, e) in batch.into_iter().enumerate() {
            let size = e.size() as u64 + 3;
            let start = bytes.len();
            keys::push_version_key(&mut bytes, &e.key, e.ts);
            let key_len = bytes.len() - start;
            match &e.value {
                None => bytes.push(TAG_TOMBSTONE),
                Some(v) => {
                    bytes.push(TAG_VALUE);
                    bytes.extend_from_slice(v);
                }
            }
            versions.push((start, key_len, bytes.len() - start - key_len));
            match keys::table_of(&e.key) {
                // Sorted by key: the first entry of a run is its smallest key.
                Some(table) => {
                    runs.entry((table, e.ts))
                        .and_modify(|(_, last)| *last = i)
                        .or_insert((i, i));
                }
                None => single.push((i, e.ts)),
            }
            written.push((e.key, size));
        }
        let mut index = Vec::with_capacity(runs.len() + single.len());
        for ((_, ts), (first, last)) in runs {
            let start = bytes.len();
            keys::push_time_index_key(&mut bytes, &written[first].0, ts);
            let key_len = bytes.len() - start;
            bytes.extend_from_slice(&written[last].0);
            bytes.push(0);
            index.push((start, key_len, bytes.len() - start - key_len));
        }
        for (i, ts) in single {
            let start = bytes.len();
            keys::push_time_index_key(&mut bytes, &written[i].0, ts);
            index.push((start, bytes.len() - start, 0));
        }
        index.sort_unstable_by(|a, b| bytes[a.0..a.0 + a.1].cmp(&bytes[b.0..b.0 + b.1]));
        let encoded = EncodedBatch {
            bytes,
            versions,
            index,
        };
        (encoded, written)
    }

    /// Inserts the versions, then the time-index entries.
    fn write(&self, tx: &WriteTransaction) -> Result<(), ClusterError> {
        let mut versions = tx
            .open_table(VERSIONS)
            .map_err(|e| storage("opening versions")(&e))?;
        for &(start, key_len, value_len) in &self.versions {
            let (key, value) = self.pair(start, key_len, value_len);
            versions
                .insert(key, value)
                .map_err(|e| storage("writing a version")(&e))?;
        }
        drop(versions);
        let mut index = tx
            .open_table(TIME_INDEX)
            .map_err(|e| storage("opening the time index")(&e))?;
        for &(start, key_len, value_len) in &self.index {
            let (key, end) = self.pair(start, key_len, value_len);
            let previous = index
                .insert(key, end)
                .map_err(|e| storage("writing the time index")(&e))?
                .map(|v| v.value().to_vec());
            // The same run ingested again (a resumed restore) keeps its wider end.
            if let Some(previous) = previous.filter(|p| p.as_slice() > end) {
                index
                    .insert(key, previous.as_slice())
                    .map_err(|e| storage("writing the time index")(&e))?;
            }
        }
        Ok(())
    }

    fn pair(&self, start: usize, key_len: usize, value_len: usize) -> (&[u8], &[u8]) {
        let key_end = start + key_len;
        (
            &self.bytes[start..key_end],
            &self.bytes[key_end..key_end + value_len],
        )
    }
}
