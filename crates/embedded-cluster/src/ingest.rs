//! Bulk ingest of restored entries, and removal of a failed restore's data.
//!
//! Ingest writes a whole batch in one engine transaction (one commit per
//! batch, not per row), with the time-index entries that later
//! incremental exports need. Entries keep their own timestamps (see
//! [`backup_exec::Ingest::ingest`] for why the restore job sets them to its
//! write time).
//!
//! The cost is the engine's B-tree inserts, so ingest keeps them few:
//!
//! - **Versions go in as blocks.** The sorted batch is packed into blocks of
//!   about 64 KiB (see `blocks`): one insert per block instead of one per
//!   version. Where a version or a block already lies in the batch's key
//!   interval (a resumed restore writing a unit again, an ingest into live
//!   keys), the batch is written one version entry per version instead, so
//!   blocks never overlap each other or hold a version an entry also holds.
//! - **One time-index entry per run, not per version.** An ordinary write
//!   puts a `(table, ts, key)` entry beside every version. A batch of table
//!   keys instead gets one entry per (table, timestamp): keyed by the run's
//!   first key, valued with its exclusive end, meaning "the keys of this run
//!   with a version at `ts`". Export expands a run by reading those versions
//!   (so an incremental export finds exactly what it did with per-version
//!   entries), GC keeps a run entry when it collects the run's first key's
//!   version (the run's other keys may be in ranges GC has not reached), and
//!   [`Cluster::clear_spans`] removes the runs of an aborted restore.
//! - **Nothing but inserts under the writer.** The engine has one writer at a
//!   time, so validation, sorting and encoding the blocks happen before the
//!   write transaction starts; with several restore workers, one encodes its
//!   next batch while another holds the writer.
//!
//! The commit is lazy ([`redb::Durability::None`]): visible at once, written
//! to disk by the next durable commit. The restore job calls
//! [`backup_exec::Ingest::sync`] (here [`Cluster::sync`], one durable commit)
//! once a work unit is ingested and before its checkpoint counts the unit as
//! restored, so a crash loses only batches no checkpoint counts, which a
//! resumed restore writes again; its job store need not be this engine (the
//! e2e fixture keeps jobs in files). A durable commit per 4 MiB batch cost
//! more than the batch's inserts.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use backup_exec::IngestBatch;
use backup_format::{KEY_MAX, Span, Timestamp};
use redb::{ReadableTable, WriteTransaction};

use crate::blocks::{BLOCK_TARGET, Block, BlockBuilder, Versions, VersionsMut};
use crate::cluster::{Cluster, TIME_INDEX};
use crate::error::{ClusterError, storage};
use crate::keys;
use crate::mvcc::KeyValue;
use crate::segments::{BlockRef, SEGMENTS, Segments};

/// Room beyond [`BLOCK_TARGET`] for the entry that closes a block.
const BLOCK_SLACK: usize = 4 << 10;

/// Engine keys removed per write transaction when clearing spans.
const CLEAR_BATCH: usize = 50_000;

/// Ingested blocks removed per write transaction when clearing spans.
const CLEAR_BLOCKS: usize = 4_096;

/// What a run of a batch is written at: its table and timestamp.
type RunAt = (u64, Timestamp);

/// A run's first and last key.
type RunKeys<'a> = (&'a [u8], &'a [u8]);

impl Cluster {
    /// Writes `batch` in one engine transaction, each entry at its own
    /// timestamp. The commit is lazy: visible at once, durable after the next
    /// [`Cluster::sync`] (or any other write, all of which are durable).
    pub fn ingest(&self, batch: impl Into<IngestBatch>) -> Result<(), ClusterError> {
        let mut batch = batch.into();
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(bad) = batch
            .iter()
            .find(|e| e.key.is_empty() || e.key >= KEY_MAX || e.ts.is_zero())
        {
            return Err(ClusterError::Invalid(format!(
                "cannot ingest key {} at {}: keys must be non-empty and below KEY_MAX, \
                 timestamps above zero",
                backup_format::PrettyKey(bad.key),
                bad.ts
            )));
        }
        // A restore's batches come sorted: checking is cheaper than sorting.
        if !batch.is_sorted() {
            batch.sort();
        }
        // A version given twice is written once (a block holds each engine key once).
        batch.dedup_versions();
        let mut tables: Vec<u64> = batch.iter().filter_map(|e| keys::table_of(e.key)).collect();
        tables.dedup();
        self.ensure_table_splits(tables)?;
        // Keep the clock above every ingested timestamp.
        if let Some(max) = batch.iter().map(|e| e.ts).max() {
            self.inner.clock.observe(max)?;
        }
        let encoded = EncodedBatch::new(&batch);
        // The blocks' bytes go to a segment outside the engine's writer; only
        // their references are written under it.
        let segments = &self.inner.segments;
        let (segment, refs) = segments.append(&encoded.blocks)?;
        let committed = self.write_lazy(|tx| encoded.write(tx, segments, &refs));
        segments.committed(segment);
        committed?;
        drop(encoded);
        self.note_written(batch.iter().map(|e| (e.key, e.size() as u64 + 3)))
    }

    /// Makes every ingest so far durable: one durable commit, which persists
    /// the lazy commits before it.
    pub fn sync(&self) -> Result<(), ClusterError> {
        // Flush the segments before taking the engine's writer, so other
        // ingests keep committing meanwhile; the durable commit then flushes
        // only what was appended since.
        self.inner.segments.sync()?;
        self.write(|_| Ok(()))?;
        self.drop_unused_segments()
    }

    /// Deletes the segment files no block names any more (S2 in `segments`).
    /// Blocks stop naming a segment only in durable commits (GC, clearing),
    /// so the engine's current state is also its durable one for this.
    pub(crate) fn drop_unused_segments(&self) -> Result<(), ClusterError> {
        self.inner.segments.delete_unused(|id| {
            let tx = self.read_unpinned()?;
            let live = tx
                .open_table(SEGMENTS)
                .map_err(|e| storage("opening segments")(&e))?;
            Ok(live
                .get(id)
                .map_err(|e| storage("reading segments")(&e))?
                .is_some())
        })
    }

    /// Deletes every version in `spans` (and its time-index entries, among
    /// them the ingested runs starting in `spans`): the cleanup of a restore
    /// that failed before publishing.
    pub fn clear_spans(&self, spans: &[Span]) -> Result<u64, ClusterError> {
        let mut removed = 0u64;
        for span in spans.iter().filter(|s| !s.is_empty()) {
            let mut tables = BTreeSet::new();
            // Blocks of table keys go whole, without reading them: their
            // only time-index entries are runs, which `clear_runs` below
            // handles for spans of fewer than 64 tables.
            if keys::tables_in(span).is_some_and(|t| t.end() - t.start() < 64) {
                removed += self.clear_blocks(span)?;
            }
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
                    let engine_keys: Vec<Vec<u8>> =
                        batch.iter().map(|(ek, _)| ek.clone()).collect();
                    VersionsMut::open(tx, &self.inner.segments)?.remove(&engine_keys)?;
                    let mut index = tx
                        .open_table(TIME_INDEX)
                        .map_err(|e| storage("opening the time index")(&e))?;
                    for (_, ik) in &batch {
                        let removed = index
                            .remove(ik.as_slice())
                            .map_err(|e| storage("clearing the time index")(&e))?
                            .map(|v| v.value().to_vec());
                        if let Some(end) = removed.filter(|v| !v.is_empty()) {
                            keep_run_tail(&mut index, ik, &end, span)?;
                        }
                    }
                    Ok(())
                })?;
            }
            if let Some(ids) = keys::tables_in(span).filter(|t| t.end() - t.start() < 64) {
                tables.extend(ids);
            }
            self.clear_runs(span, &tables)?;
        }
        self.drop_unused_segments()?;
        Ok(removed)
    }

    /// Removes every ingested block entry in `span`, a durable write per
    /// [`CLEAR_BLOCKS`] blocks; returns the versions removed.
    fn clear_blocks(&self, span: &Span) -> Result<u64, ClusterError> {
        let (lo, hi) = (keys::escaped(&span.start), keys::escaped(&span.end));
        let mut removed = 0;
        loop {
            let (n, more) = self.write(|tx| {
                VersionsMut::open(tx, &self.inner.segments)?.clear_blocks(&lo, &hi, CLEAR_BLOCKS)
            })?;
            removed += n;
            if !more {
                return Ok(removed);
            }
        }
    }

    /// Removes the ingested-run entries of `tables` whose runs start in `span`.
    fn clear_runs(&self, span: &Span, tables: &BTreeSet<u64>) -> Result<(), ClusterError> {
        for &table in tables {
            let runs: Vec<KeyValue> = {
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
                        runs.push((k.value().to_vec(), v.value().to_vec()));
                    }
                }
                runs
            };
            self.write(|tx| {
                let mut index = tx
                    .open_table(TIME_INDEX)
                    .map_err(|e| storage("opening the time index")(&e))?;
                for (k, end) in &runs {
                    index
                        .remove(k.as_slice())
                        .map_err(|e| storage("clearing the time index")(&e))?;
                    keep_run_tail(&mut index, k, end, span)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Up to `limit` (engine key, time-index key) pairs of versions in `span`.
    fn versions_in(&self, span: &Span, limit: usize) -> Result<Vec<KeyValue>, ClusterError> {
        let tx = self.read()?;
        let versions = Versions::open(&tx, &self.inner.segments)?;
        let (lo, hi) = (keys::escaped(&span.start), keys::escaped(&span.end));
        let mut out = Vec::new();
        versions.for_each(&lo, &hi, |k, _| {
            let (esc, ts) = keys::split_version_key(k)
                .ok_or_else(|| ClusterError::Corrupt("short version key".into()))?;
            let key = keys::unescape(esc).ok_or_else(|| ClusterError::Corrupt("bad key".into()))?;
            out.push((k.to_vec(), keys::time_index_key(&key, ts)));
            Ok(if out.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })?;
        Ok(out)
    }
}

/// A sorted batch encoded for the engine: its versions packed into blocks
/// (see `blocks`), and its time-index entries in one buffer.
struct EncodedBatch {
    /// Encoded blocks, in engine-key order, each non-empty.
    blocks: Vec<Vec<u8>>,
    index_bytes: Vec<u8>,
    /// Time-index entries in index order: (start in `index_bytes`, key
    /// length, value length).
    index: Vec<(usize, usize, usize)>,
}

impl EncodedBatch {
    /// Encodes `batch`, which is sorted in MVCC order (so in engine-key
    /// order) without duplicates.
    ///
    /// Table keys get one time-index entry per (table, timestamp) of the
    /// batch, naming the run of keys from the first to the last written at
    /// that timestamp (its value is the run's exclusive end; export reads the
    /// run's versions at that timestamp). Other keys get one entry per version,
    /// as ordinary writes do.
    fn new(batch: &IngestBatch) -> EncodedBatch {
        let mut blocks = Vec::new();
        let mut block = BlockBuilder::with_capacity(BLOCK_TARGET + BLOCK_SLACK);
        let mut runs: BTreeMap<RunAt, RunKeys<'_>> = BTreeMap::new();
        let mut single = Vec::new();
        // The run being extended: (table, ts), first and last key.
        let mut run: Option<(RunAt, &[u8], &[u8])> = None;
        for e in batch.iter() {
            block.push_version(e.key, e.ts, e.value);
            if block.size() >= BLOCK_TARGET {
                let full = std::mem::replace(
                    &mut block,
                    BlockBuilder::with_capacity(BLOCK_TARGET + BLOCK_SLACK),
                );
                blocks.push(full.finish());
            }
            match keys::table_of(e.key) {
                // Most entries continue the previous entry's run.
                Some(table) => match &mut run {
                    Some((at, _, last)) if *at == (table, e.ts) => *last = e.key,
                    _ => {
                        if let Some((at, first, last)) = run.replace(((table, e.ts), e.key, e.key))
                        {
                            note_run(&mut runs, at, first, last);
                        }
                    }
                },
                None => single.push((e.key, e.ts)),
            }
        }
        if !block.is_empty() {
            blocks.push(block.finish());
        }
        if let Some((at, first, last)) = run {
            note_run(&mut runs, at, first, last);
        }
        let mut index_bytes = Vec::new();
        let mut index = Vec::with_capacity(runs.len() + single.len());
        for ((_, ts), (first, last)) in runs {
            let start = index_bytes.len();
            keys::push_time_index_key(&mut index_bytes, first, ts);
            let key_len = index_bytes.len() - start;
            index_bytes.extend_from_slice(last);
            index_bytes.push(0);
            index.push((start, key_len, index_bytes.len() - start - key_len));
        }
        for (key, ts) in single {
            let start = index_bytes.len();
            keys::push_time_index_key(&mut index_bytes, key, ts);
            index.push((start, index_bytes.len() - start, 0));
        }
        index
            .sort_unstable_by(|a, b| index_bytes[a.0..a.0 + a.1].cmp(&index_bytes[b.0..b.0 + b.1]));
        EncodedBatch {
            blocks,
            index_bytes,
            index,
        }
    }

    /// Inserts the blocks (or, where versions or blocks already lie in the
    /// batch's key interval, one entry per version), then the time-index
    /// entries.
    fn write(
        &self,
        tx: &WriteTransaction,
        segments: &Segments,
        refs: &[BlockRef],
    ) -> Result<(), ClusterError> {
        let (Some(first), Some(last)) = (self.blocks.first(), self.blocks.last()) else {
            return Ok(());
        };
        let mut versions = VersionsMut::open(tx, segments)?;
        let first_key = Block::parse(first)?.entry(0)?.0;
        let last = Block::parse(last)?;
        let last_key = last.entry(last.len() - 1)?.0;
        if versions.occupied(first_key, last_key)? {
            // The bytes appended to the segment stay unnamed (dead space).
            for block in &self.blocks {
                let block = Block::parse(block)?;
                for i in 0..block.len() {
                    let (key, value) = block.entry(i)?;
                    versions.insert_row(key, value)?;
                }
            }
        } else {
            for (block, r) in self.blocks.iter().zip(refs) {
                let block = Block::parse(block)?;
                versions.insert_external(&block, r)?;
            }
        }
        drop(versions);
        let mut index = tx
            .open_table(TIME_INDEX)
            .map_err(|e| storage("opening the time index")(&e))?;
        for &(start, key_len, value_len) in &self.index {
            let key_end = start + key_len;
            let key = &self.index_bytes[start..key_end];
            let end = &self.index_bytes[key_end..key_end + value_len];
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
}

/// After the run entry `ik` (ending at `end`) was removed by clearing
/// `span`: if the run goes on past the span, its keys there keep an entry,
/// now starting at the span's end (keeping a wider one already there).
fn keep_run_tail(
    index: &mut redb::Table<&'static [u8], &'static [u8]>,
    ik: &[u8],
    end: &[u8],
    span: &Span,
) -> Result<(), ClusterError> {
    if end <= span.end.as_slice() {
        return Ok(());
    }
    let (_, ts, _) = keys::split_time_index_key(ik)
        .ok_or_else(|| ClusterError::Corrupt("short time-index key".into()))?;
    let tail = keys::time_index_key(&span.end, ts);
    let wider = index
        .get(tail.as_slice())
        .map_err(|e| storage("reading the time index")(&e))?
        .is_some_and(|v| v.value() > end);
    if !wider {
        index
            .insert(tail.as_slice(), end)
            .map_err(|e| storage("keeping an ingested run")(&e))?;
    }
    Ok(())
}

/// Records that the keys `first..=last` of a sorted batch belong to the run of
/// `at` (a run may be met in pieces when another timestamp interleaves).
fn note_run<'a>(
    runs: &mut BTreeMap<RunAt, RunKeys<'a>>,
    at: RunAt,
    first: &'a [u8],
    last: &'a [u8],
) {
    runs.entry(at)
        .and_modify(|(_, l)| *l = last)
        .or_insert((first, last));
}
