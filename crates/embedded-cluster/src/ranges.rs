//! Ranges: contiguous pieces of the keyspace, each with a leaseholder and a
//! GC threshold; splits at table boundaries and by size; lease moves.
//!
//! Invariant: the ranges tile `["", KEY_MAX)` with no gap and no overlap. The
//! first range starts at `""`; each range's `end` is the next one's `start`.
//! The in-memory map is the truth while open and is written to the engine's
//! `ranges` table on every change (the byte counters are the exception: they are
//! persisted when a range's record is next written, so after a crash they may
//! be stale, which only delays a size split).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{RwLockReadGuard, RwLockWriteGuard};

use backup_exec::NodeId;
use backup_format::{KEY_MAX, Span, Timestamp};
use redb::{ReadableTable, WriteTransaction};

use crate::blocks::Versions;
use crate::cluster::{Cluster, META, RANGES};
use crate::error::{ClusterError, storage};
use crate::keys;

/// At most this many split candidates are kept while sizing a range.
const MAX_SPLIT_CANDIDATES: usize = 256;

/// One range as the cluster keeps it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RangeState {
    /// The range's id.
    pub id: u64,
    /// Its keys.
    pub span: Span,
    /// The node holding its lease.
    pub leaseholder: NodeId,
    /// Reads at or below this timestamp fail; versions below it may be gone.
    pub gc_threshold: Timestamp,
    /// Approximate bytes of versions in the range (drives size splits).
    pub approx_bytes: u64,
}

impl Cluster {
    /// Every range in key order.
    pub fn ranges(&self) -> Vec<RangeState> {
        self.ranges_read().values().cloned().collect()
    }

    /// The range holding `key`.
    pub fn range_for(&self, key: &[u8]) -> Result<RangeState, ClusterError> {
        self.ranges_read()
            .range(..=key.to_vec())
            .next_back()
            .map(|(_, r)| r.clone())
            .ok_or_else(|| ClusterError::Corrupt("no range covers the key".into()))
    }

    /// The ranges overlapping `span`, in key order (unclipped).
    pub fn ranges_overlapping(&self, span: &Span) -> Vec<RangeState> {
        if span.is_empty() {
            return Vec::new();
        }
        let map = self.ranges_read();
        let first = map
            .range(..=span.start.clone())
            .next_back()
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        map.range(first..span.end.clone())
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Splits the range holding `key` so that a range starts at `key`; returns the
    /// new right-hand range (or the existing one starting there).
    pub fn split_at(&self, key: &[u8]) -> Result<RangeState, ClusterError> {
        if key.is_empty() || key >= KEY_MAX {
            return Err(ClusterError::Invalid(
                "a split key must be above \"\" and below KEY_MAX".into(),
            ));
        }
        let mut map = self.ranges_mut();
        if let Some(r) = map.get(key) {
            return Ok(r.clone());
        }
        let left_start = map
            .range(..=key.to_vec())
            .next_back()
            .map(|(k, _)| k.clone())
            .ok_or_else(|| ClusterError::Corrupt("no range covers the split key".into()))?;
        let Some(left) = map.get_mut(&left_start) else {
            return Err(ClusterError::Corrupt(
                "range map changed under its lock".into(),
            ));
        };
        let id = self.next_range_id()?;
        let half = left.approx_bytes / 2;
        let right = RangeState {
            id,
            span: Span::new(key, left.span.end.clone()),
            leaseholder: 0,
            gc_threshold: left.gc_threshold,
            approx_bytes: half,
        };
        left.span.end = key.to_vec();
        left.approx_bytes -= half;
        let left = left.clone();
        let mut right = right;
        right.leaseholder = self.pick_leaseholder(id).unwrap_or(left.leaseholder);
        // Lazy, like bulk ingest (which splits as it writes): a crash goes
        // back to the last durable layout of ranges, which is whole, and a
        // durable fsync here would stall every writer on the range map.
        self.write_lazy(|tx| {
            put_range(tx, &left)?;
            put_range(tx, &right)
        })?;
        map.insert(right.span.start.clone(), right.clone());
        Ok(right)
    }

    /// Moves a range's lease to `node`, which must be live.
    pub fn transfer_lease(&self, range_id: u64, node: NodeId) -> Result<(), ClusterError> {
        if !self.node(node)?.live {
            return Err(ClusterError::NodeDown(node));
        }
        let mut map = self.ranges_mut();
        let r = map
            .values_mut()
            .find(|r| r.id == range_id)
            .ok_or(ClusterError::UnknownRange(range_id))?;
        r.leaseholder = node;
        let r = r.clone();
        self.write(|tx| put_range(tx, &r))
    }

    /// Makes sure ranges start at the first key of each table and of the next one.
    pub(crate) fn ensure_table_splits(
        &self,
        tables: impl IntoIterator<Item = u64>,
    ) -> Result<(), ClusterError> {
        for t in tables {
            for boundary in [t, t.saturating_add(1)] {
                let key = keys::table_prefix(boundary);
                if !self.ranges_read().contains_key(&key) {
                    self.split_at(&key)?;
                }
            }
        }
        Ok(())
    }

    /// Adds written bytes to the ranges holding the keys, then splits every
    /// range that grew past the configured size at its middle key.
    pub(crate) fn note_written<'a>(
        &self,
        writes: impl IntoIterator<Item = (&'a [u8], u64)>,
    ) -> Result<(), ClusterError> {
        let max = self.inner.config.range_max_bytes;
        let mut oversized = Vec::new();
        {
            let mut map = self.ranges_mut();
            // Writes usually come in key order: sum them per run of one range
            // and look each range up once per run.
            let mut run: Option<(Vec<u8>, Vec<u8>, u64)> = None;
            for (key, bytes) in writes {
                if let Some((start, end, sum)) = &mut run
                    && start.as_slice() <= key
                    && key < end.as_slice()
                {
                    *sum += bytes;
                    continue;
                }
                if let Some((start, _, sum)) = run.take() {
                    add_bytes(&mut map, &start, sum, max, &mut oversized);
                }
                let upto = (Bound::Unbounded, Bound::Included(key));
                if let Some((start, r)) = map.range::<[u8], _>(upto).next_back() {
                    run = Some((start.clone(), r.span.end.clone(), bytes));
                }
            }
            if let Some((start, _, sum)) = run {
                add_bytes(&mut map, &start, sum, max, &mut oversized);
            }
        }
        // Split until every range is under the limit (or is one huge key).
        while let Some(start) = oversized.pop() {
            if let Some((left, right)) = self.split_by_size(&start)? {
                for r in [left, right] {
                    if r.approx_bytes > max {
                        oversized.push(r.span.start);
                    }
                }
            }
        }
        Ok(())
    }

    /// Splits the range starting at `start` at about the key where half its
    /// bytes lie, counting its bytes from the engine in one pass; returns the
    /// two halves, or `None` when the range cannot be split (one huge key, or
    /// it vanished).
    fn split_by_size(
        &self,
        start: &[u8],
    ) -> Result<Option<(RangeState, RangeState)>, ClusterError> {
        let Some(range) = self.ranges_read().get(start).cloned() else {
            return Ok(None);
        };
        let tx = self.read()?;
        let versions = Versions::open(&tx, &self.inner.segments)?;
        let lo = keys::escaped(&range.span.start);
        let hi = keys::escaped(&range.span.end);
        // One pass: the range's real size, and split candidates (key
        // boundaries with the bytes to their left) about every `step` bytes.
        // Past `MAX_SPLIT_CANDIDATES` every other one is dropped and the step
        // doubles, so memory stays small however stale `approx_bytes` is.
        let mut step = (range.approx_bytes / MAX_SPLIT_CANDIDATES as u64).max(1);
        let mut candidates: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut next_mark = step;
        let mut total = 0u64;
        let mut current: Vec<u8> = Vec::new();
        versions.sizes(&lo, &hi, |k, bytes| {
            let (esc, _) = keys::split_version_key(k)
                .ok_or_else(|| ClusterError::Corrupt("short version key".into()))?;
            // Split only at a key boundary.
            if esc != current.as_slice() {
                if total >= next_mark && !current.is_empty() {
                    candidates.push((total, esc.to_vec()));
                    next_mark = total + step;
                    if candidates.len() > MAX_SPLIT_CANDIDATES {
                        candidates = std::mem::take(&mut candidates)
                            .into_iter()
                            .skip(1)
                            .step_by(2)
                            .collect();
                        step *= 2;
                    }
                }
                current.clear();
                current.extend_from_slice(esc);
            }
            total += bytes;
            Ok(())
        })?;
        // The first candidate with at least half the bytes to its left.
        let (left_bytes, split_key) = match candidates.into_iter().find(|(l, _)| *l >= total / 2) {
            Some((l, esc)) => (
                l,
                Some(
                    keys::unescape(&esc)
                        .ok_or_else(|| ClusterError::Corrupt("bad escaped key".into()))?,
                ),
            ),
            None => (0, None),
        };
        drop(versions);
        drop(tx);
        let Some(k) = split_key.filter(|k| range.span.contains_key(k) && *k != range.span.start)
        else {
            self.set_range_bytes(start, total);
            return Ok(None);
        };
        self.set_range_bytes(start, total);
        let mut right = self.split_at(&k)?;
        let mut map = self.ranges_mut();
        let mut left = range;
        if let Some(l) = map.get_mut(start) {
            l.approx_bytes = left_bytes;
            left = l.clone();
        }
        if let Some(r) = map.get_mut(&k) {
            r.approx_bytes = total - left_bytes;
            right = r.clone();
        }
        Ok(Some((left, right)))
    }

    fn set_range_bytes(&self, start: &[u8], bytes: u64) {
        let mut map = self.ranges_mut();
        if let Some(r) = map.get_mut(start) {
            r.approx_bytes = bytes;
        }
    }

    /// Gives every lease of `node` to the live nodes.
    pub(crate) fn move_leases_off(&self, node: NodeId) -> Result<(), ClusterError> {
        let mut map = self.ranges_mut();
        let mut moved = Vec::new();
        for r in map.values_mut().filter(|r| r.leaseholder == node) {
            if let Some(to) = self.pick_leaseholder(r.id) {
                r.leaseholder = to;
                moved.push(r.clone());
            }
        }
        self.write(|tx| moved.iter().try_for_each(|r| put_range(tx, r)))
    }

    /// Writes a changed GC threshold of a range.
    pub(crate) fn set_gc_threshold(
        &self,
        range_id: u64,
        ts: Timestamp,
    ) -> Result<(), ClusterError> {
        let mut map = self.ranges_mut();
        let Some(r) = map.values_mut().find(|r| r.id == range_id) else {
            return Err(ClusterError::UnknownRange(range_id));
        };
        r.gc_threshold = r.gc_threshold.max(ts);
        let r = r.clone();
        self.write(|tx| put_range(tx, &r))
    }

    /// A live node for a new or orphaned range, spread by range id.
    fn pick_leaseholder(&self, range_id: u64) -> Option<NodeId> {
        let live: Vec<NodeId> = self
            .nodes_read()
            .iter()
            .filter(|n| n.live)
            .map(|n| n.id)
            .collect();
        (!live.is_empty()).then(|| live[(range_id % live.len() as u64) as usize])
    }

    /// A new range id (committed lazily with the split that uses it: a crash
    /// loses both or neither).
    fn next_range_id(&self) -> Result<u64, ClusterError> {
        self.write_lazy(|tx| next_counter(tx, "next_range_id"))
    }

    /// Loads the ranges, or creates the single first range of a new store.
    pub(crate) fn load_ranges(&self) -> Result<(), ClusterError> {
        let tx = self.read()?;
        let table = tx
            .open_table(RANGES)
            .map_err(|e| storage("opening ranges")(&e))?;
        let mut map = BTreeMap::new();
        for item in table.iter().map_err(|e| storage("loading ranges")(&e))? {
            let (k, v) = item.map_err(|e| storage("loading ranges")(&e))?;
            let r = decode_range(k.value(), v.value())?;
            map.insert(r.span.start.clone(), r);
        }
        drop(table);
        drop(tx);
        if map.is_empty() {
            let first = RangeState {
                id: self.next_range_id()?,
                span: Span::new(Vec::new(), KEY_MAX.to_vec()),
                leaseholder: self.nodes_read().first().map_or(1, |n| n.id),
                gc_threshold: Timestamp::ZERO,
                approx_bytes: 0,
            };
            self.write(|tx| put_range(tx, &first))?;
            map.insert(Vec::new(), first);
        }
        *self.ranges_mut() = map;
        Ok(())
    }

    pub(crate) fn ranges_read(&self) -> RwLockReadGuard<'_, BTreeMap<Vec<u8>, RangeState>> {
        self.inner.ranges.read().unwrap_or_else(|p| p.into_inner())
    }

    fn ranges_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<Vec<u8>, RangeState>> {
        self.inner.ranges.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adds `bytes` to the range starting at `start`, noting it in `oversized`
/// once it is past `max`.
fn add_bytes(
    map: &mut BTreeMap<Vec<u8>, RangeState>,
    start: &[u8],
    bytes: u64,
    max: u64,
    oversized: &mut Vec<Vec<u8>>,
) {
    if let Some(r) = map.get_mut(start) {
        r.approx_bytes += bytes;
        if r.approx_bytes > max && !oversized.iter().any(|s| s.as_slice() == start) {
            oversized.push(start.to_vec());
        }
    }
}

/// Returns and increments a persisted counter (first value 1).
pub(crate) fn next_counter(tx: &WriteTransaction, name: &str) -> Result<u64, ClusterError> {
    let mut meta = tx
        .open_table(META)
        .map_err(|e| storage("opening meta")(&e))?;
    let current = match meta
        .get(name)
        .map_err(|e| storage("reading a counter")(&e))?
    {
        Some(v) => u64::from_be_bytes(
            v.value()
                .try_into()
                .map_err(|_| ClusterError::Corrupt(format!("counter {name} is not 8 bytes")))?,
        ),
        None => 1,
    };
    meta.insert(name, (current + 1).to_be_bytes().as_slice())
        .map_err(|e| storage("writing a counter")(&e))?;
    Ok(current)
}

fn put_range(tx: &WriteTransaction, r: &RangeState) -> Result<(), ClusterError> {
    let mut table = tx
        .open_table(RANGES)
        .map_err(|e| storage("opening ranges")(&e))?;
    let mut v = Vec::with_capacity(40 + r.span.end.len());
    v.extend_from_slice(&r.id.to_be_bytes());
    v.extend_from_slice(&r.leaseholder.to_be_bytes());
    v.extend_from_slice(&r.gc_threshold.to_bytes());
    v.extend_from_slice(&r.approx_bytes.to_be_bytes());
    v.extend_from_slice(&r.span.end);
    table
        .insert(r.span.start.as_slice(), v.as_slice())
        .map_err(|e| storage("writing a range")(&e))?;
    Ok(())
}

fn decode_range(start: &[u8], v: &[u8]) -> Result<RangeState, ClusterError> {
    let bad = || ClusterError::Corrupt("a range record is malformed".into());
    if v.len() < 32 {
        return Err(bad());
    }
    let u64_at = |i: usize| -> Result<u64, ClusterError> {
        Ok(u64::from_be_bytes(
            v[i..i + 8].try_into().map_err(|_| bad())?,
        ))
    };
    let mut ts = [0u8; Timestamp::ENCODED_LEN];
    ts.copy_from_slice(&v[12..24]);
    Ok(RangeState {
        id: u64_at(0)?,
        leaseholder: u32::from_be_bytes(v[8..12].try_into().map_err(|_| bad())?),
        gc_threshold: Timestamp::from_bytes(ts),
        approx_bytes: u64_at(24)?,
        span: Span::new(start, &v[32..]),
    })
}
