//! Export: the MVCC entries of a span in `(start_ts, end_ts]`, in chunks.
//!
//! Two access paths give the same answer:
//!
//! - **scan**: walk every version of the span in engine order (used for full
//!   exports, `start_ts` = ZERO, and for spans outside table keys);
//! - **time index**: for an incremental export of table keys, read the
//!   `(table, timestamp, key)` index over `(start_ts, end_ts]` to find the keys
//!   that changed, then read only those keys' versions. The work is
//!   proportional to the changes, not to the table. An index entry names one
//!   key, or (bulk ingest, see `ingest`) a run of keys written at its
//!   timestamp: its value is the run's exclusive end, and the run's keys with a
//!   version at that timestamp are read from the versions.
//!
//! Memory is bounded: a chunk stops at about `target_bytes` (at a key
//! boundary, so one key's revisions are never split), and the time-index path
//! keeps at most [`MAX_CHANGED_KEYS`] keys per chunk, resuming after the last.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use backup_exec::{ExportChunk, ExportError, ExportRequest, NodeId};
use backup_format::{MvccEntry, Span, Timestamp};
use redb::ReadOnlyTable;

/// An engine table open for reading.
type Table = ReadOnlyTable<&'static [u8], &'static [u8]>;

use crate::blocks::Versions;
use crate::cluster::{Cluster, TIME_INDEX};
use crate::error::{ClusterError, storage};
use crate::keys;
use crate::mvcc::decode_value;

/// The chunk size used when a request leaves `target_bytes` at 0.
pub const DEFAULT_CHUNK_BYTES: u64 = 16 << 20;

/// At most this many changed keys are gathered for one time-index chunk.
pub const MAX_CHANGED_KEYS: usize = 100_000;

/// At most this many tables are read through the time index in one export.
const MAX_INDEXED_TABLES: u64 = 16;

impl Cluster {
    /// Exports one chunk of `request.span` on `node` (see [`backup_exec::KvSource::export`]).
    pub fn export(
        &self,
        node: NodeId,
        request: &ExportRequest,
    ) -> Result<ExportChunk, ExportError> {
        let info = self.node(node)?;
        if !info.live {
            return Err(ClusterError::NodeDown(node).into());
        }
        let span = &request.span;
        if span.is_empty() {
            return Ok(ExportChunk::default());
        }
        if request.start_ts > request.end_ts {
            return Err(ExportError::Permanent(format!(
                "export start {} is after its end {}",
                request.start_ts, request.end_ts
            )));
        }
        let mut threshold = Timestamp::ZERO;
        for r in self.ranges_overlapping(span) {
            if r.leaseholder != node {
                return Err(ExportError::NotLeaseholder {
                    node,
                    leaseholder: r.leaseholder,
                });
            }
            threshold = threshold.max(r.gc_threshold);
        }
        if !threshold.is_zero() {
            // An incremental needs the state at its start; every export its end.
            let requested = if request.start_ts.is_zero() {
                request.end_ts
            } else {
                request.start_ts
            };
            if requested <= threshold {
                return Err(ExportError::GcThreshold {
                    requested,
                    threshold,
                });
            }
        }
        let tx = self.read_resolving(span, request.end_ts, request.intent_policy)?;
        let versions = Versions::open(&tx, &self.inner.segments)?;
        let target = match request.target_bytes {
            0 => DEFAULT_CHUNK_BYTES,
            t => t,
        };
        let mut chunk = Chunk {
            request,
            target,
            out: ExportChunk::default(),
            bytes: 0,
        };
        match keys::tables_in(span) {
            Some(tables)
                if !request.start_ts.is_zero()
                    && tables.end() - tables.start() < MAX_INDEXED_TABLES =>
            {
                let index = tx
                    .open_table(TIME_INDEX)
                    .map_err(|e| storage("opening the time index")(&e))?;
                chunk.by_time_index(&versions, &index, tables)?;
            }
            _ => chunk.by_scan(&versions)?,
        }
        Ok(chunk.out)
    }
}

impl Cluster {
    /// Reads every engine entry of `span` without decoding anything and returns
    /// the bytes seen: the plain-scan baseline export is measured against.
    pub fn engine_scan_bytes(&self, span: &backup_format::Span) -> Result<u64, ClusterError> {
        let tx = self.read()?;
        let versions = Versions::open(&tx, &self.inner.segments)?;
        let (lo, hi) = (keys::escaped(&span.start), keys::escaped(&span.end));
        let mut bytes = 0u64;
        versions.for_each(&lo, &hi, |k, v| {
            bytes += (k.len() + v.len()) as u64;
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(bytes)
    }
}

/// One chunk being built.
struct Chunk<'r> {
    request: &'r ExportRequest,
    target: u64,
    out: ExportChunk,
    bytes: u64,
}

/// How one key's versions are consumed, newest first.
enum Step {
    /// Keep reading this key's versions.
    More,
    /// This key is finished.
    Done,
}

impl Chunk<'_> {
    /// Walks every version of the span.
    fn by_scan(&mut self, versions: &Versions<'_, Table>) -> Result<(), ClusterError> {
        let span = &self.request.span;
        let (lo, hi) = (keys::escaped(&span.start), keys::escaped(&span.end));
        let mut current: Vec<u8> = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        let mut done = false;
        versions.for_each(&lo, &hi, |k, v| {
            let (esc, ts) = keys::split_version_key(k)
                .ok_or_else(|| ClusterError::Corrupt("short version key".into()))?;
            if esc != current.as_slice() {
                if self.bytes >= self.target {
                    self.out.resume_key = Some(unescape(esc)?);
                    return Ok(ControlFlow::Break(()));
                }
                current.clear();
                current.extend_from_slice(esc);
                key = None;
                done = false;
            }
            if done || ts > self.request.end_ts {
                return Ok(ControlFlow::Continue(()));
            }
            let user_key = match &key {
                Some(k) => k,
                None => key.insert(unescape(esc)?),
            };
            done = matches!(self.take(user_key, ts, v)?, Step::Done);
            Ok(ControlFlow::Continue(()))
        })
    }

    /// Reads the keys changed in the window from the time index, then their versions.
    fn by_time_index(
        &mut self,
        versions: &Versions<'_, Table>,
        index: &Table,
        tables: std::ops::RangeInclusive<u64>,
    ) -> Result<(), ClusterError> {
        let span = &self.request.span;
        let (start_ts, end_ts) = (self.request.start_ts, self.request.end_ts);
        let mut changed: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut truncated = false;
        for table in tables {
            let from = keys::time_index_start(table, start_ts.next());
            for item in index
                .range(from.as_slice()..)
                .map_err(|e| storage("reading the time index")(&e))?
            {
                let (k, v) = item.map_err(|e| storage("reading the time index")(&e))?;
                let (bucket, ts, key) = keys::split_time_index_key(k.value())
                    .ok_or_else(|| ClusterError::Corrupt("short time-index key".into()))?;
                if bucket != table || ts > end_ts {
                    break;
                }
                let run_end = v.value();
                if run_end.is_empty() {
                    if span.contains_key(key) {
                        truncated |= note_changed(&mut changed, key);
                    }
                } else {
                    let run = Span::new(key, run_end);
                    if let Some(run) = run.intersect(span) {
                        truncated |= changed_in_run(versions, &run, ts, &mut changed)?;
                    }
                }
            }
        }
        let mut last: Option<Vec<u8>> = None;
        for key in changed {
            if self.bytes >= self.target {
                self.out.resume_key = Some(key);
                return Ok(());
            }
            let (lo, hi) = (keys::version_key(&key, end_ts), keys::versions_end(&key));
            versions.for_each(&lo, &hi, |k, v| {
                let (_, ts) = keys::split_version_key(k)
                    .ok_or_else(|| ClusterError::Corrupt("short version key".into()))?;
                Ok(match self.take(&key, ts, v)? {
                    Step::Done => ControlFlow::Break(()),
                    Step::More => ControlFlow::Continue(()),
                })
            })?;
            last = Some(key);
        }
        if truncated {
            self.out.resume_key = last.map(|mut k| {
                k.push(0);
                k
            });
        }
        Ok(())
    }

    /// Consumes one version (at or below `end_ts`) of `key`, newest first.
    fn take(&mut self, key: &[u8], ts: Timestamp, stored: &[u8]) -> Result<Step, ClusterError> {
        let req = self.request;
        if ts <= req.start_ts {
            return Ok(Step::Done);
        }
        let value = decode_value(stored)?;
        let keep = req.all_revisions || value.is_some() || !req.start_ts.is_zero();
        if keep {
            let entry = MvccEntry {
                key: key.to_vec(),
                ts,
                value,
            };
            self.bytes += entry.size() as u64;
            self.out.entries.push(entry);
        }
        Ok(if req.all_revisions {
            Step::More
        } else {
            Step::Done
        })
    }
}

/// Adds `key` to `changed`, keeping only the [`MAX_CHANGED_KEYS`] smallest
/// (the rest come in the next chunk); true if a key was left out.
fn note_changed(changed: &mut BTreeSet<Vec<u8>>, key: &[u8]) -> bool {
    if changed.contains(key) {
        return false;
    }
    if changed.len() >= MAX_CHANGED_KEYS && changed.last().is_some_and(|l| l.as_slice() < key) {
        return true;
    }
    changed.insert(key.to_vec());
    if changed.len() > MAX_CHANGED_KEYS {
        changed.pop_last();
        return true;
    }
    false
}

/// Adds the keys of `run` with a version at `ts` to `changed` (an ingested
/// run's index entry); true if a key was left out.
fn changed_in_run(
    versions: &Versions<'_, Table>,
    run: &Span,
    ts: Timestamp,
    changed: &mut BTreeSet<Vec<u8>>,
) -> Result<bool, ClusterError> {
    let (lo, hi) = (keys::escaped(&run.start), keys::escaped(&run.end));
    let mut truncated = false;
    versions.for_each(&lo, &hi, |k, _| {
        let (esc, vts) = keys::split_version_key(k)
            .ok_or_else(|| ClusterError::Corrupt("short version key".into()))?;
        if vts == ts && note_changed(changed, &unescape(esc)?) {
            // Keys come in order: every later one is left out too.
            truncated = true;
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(truncated)
}

fn unescape(esc: &[u8]) -> Result<Vec<u8>, ClusterError> {
    keys::unescape(esc).ok_or_else(|| ClusterError::Corrupt("bad escaped key".into()))
}
