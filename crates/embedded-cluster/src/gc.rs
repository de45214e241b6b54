//! Garbage collection: GC thresholds, per-table TTLs, protected timestamps.
//!
//! When GC runs at time `now`, each range's threshold moves up to
//! `now - ttl` (the TTL of the range's table, `gc.ttlseconds`, 25 hours by
//! default), but never to or past a protected timestamp over the range: a
//! protection at `ts` caps the threshold at `ts.prev()`, so reads at `ts` keep
//! working. Thresholds never move down. Then every version no read above the
//! threshold can see is deleted: all versions older than the newest one at or
//! below the threshold, and that one too when it is a tombstone.
//!
//! Protections and GC runs are serialised by one lock, so a protection that
//! succeeded is always honoured by the next GC.

use std::ops::ControlFlow;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use backup_format::{Span, Timestamp};
use redb::{ReadableTable, WriteTransaction};

use crate::blocks::{Versions, VersionsMut};
use crate::cluster::{Cluster, PROTECTIONS, TIME_INDEX, ZONES};
use crate::error::{ClusterError, storage};
use crate::keys;
use crate::mvcc::TAG_TOMBSTONE;
use crate::ranges::{RangeState, next_counter};
use crate::segments::Segments;

/// What one GC run did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct GcStats {
    /// Ranges whose threshold moved.
    pub thresholds_advanced: usize,
    /// Versions deleted.
    pub versions_removed: u64,
}

/// A protected-timestamp record.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Protection {
    /// Its id.
    pub id: u64,
    /// The protected read time.
    pub ts: Timestamp,
    /// The protected spans.
    pub spans: Vec<Span>,
}

impl Cluster {
    /// Sets table `table`'s `gc.ttlseconds`.
    pub fn set_gc_ttl(&self, table: u64, ttl: Duration) -> Result<(), ClusterError> {
        self.write(|tx| {
            let mut zones = tx
                .open_table(ZONES)
                .map_err(|e| storage("opening zones")(&e))?;
            zones
                .insert(table, ttl.as_secs())
                .map_err(|e| storage("writing a zone")(&e))?;
            Ok(())
        })
    }

    /// The GC TTL of table `table` (its own, or the cluster default).
    pub fn gc_ttl(&self, table: u64) -> Result<Duration, ClusterError> {
        let tx = self.read()?;
        let zones = tx
            .open_table(ZONES)
            .map_err(|e| storage("opening zones")(&e))?;
        Ok(zones
            .get(table)
            .map_err(|e| storage("reading a zone")(&e))?
            .map_or(self.inner.config.default_gc_ttl, |v| {
                Duration::from_secs(v.value())
            }))
    }

    /// Protects the versions of `spans` visible at `ts` from GC until released.
    pub fn protect(&self, spans: &[Span], ts: Timestamp) -> Result<u64, ClusterError> {
        let _gc = self.gc_lock();
        for span in spans {
            self.check_gc(span, ts)?;
        }
        self.write(|tx| {
            let id = next_counter(tx, "next_protection_id")?;
            let mut table = tx
                .open_table(PROTECTIONS)
                .map_err(|e| storage("opening protections")(&e))?;
            table
                .insert(id, encode_protection(ts, spans).as_slice())
                .map_err(|e| storage("writing a protection")(&e))?;
            Ok(id)
        })
    }

    /// Drops a protection.
    pub fn release(&self, id: u64) -> Result<(), ClusterError> {
        let _gc = self.gc_lock();
        self.write(|tx| {
            let mut table = tx
                .open_table(PROTECTIONS)
                .map_err(|e| storage("opening protections")(&e))?;
            let removed = table
                .remove(id)
                .map_err(|e| storage("removing a protection")(&e))?;
            match removed {
                Some(_) => Ok(()),
                None => Err(ClusterError::UnknownProtection(id)),
            }
        })
    }

    /// Every protected-timestamp record.
    pub fn protections(&self) -> Result<Vec<Protection>, ClusterError> {
        let tx = self.read()?;
        let table = tx
            .open_table(PROTECTIONS)
            .map_err(|e| storage("opening protections")(&e))?;
        let mut out = Vec::new();
        for item in table
            .iter()
            .map_err(|e| storage("reading protections")(&e))?
        {
            let (k, v) = item.map_err(|e| storage("reading protections")(&e))?;
            let (ts, spans) = decode_protection(v.value())?;
            out.push(Protection {
                id: k.value(),
                ts,
                spans,
            });
        }
        Ok(out)
    }

    /// The highest GC threshold over the ranges of `span`.
    pub fn gc_threshold(&self, span: &Span) -> Timestamp {
        self.ranges_overlapping(span)
            .iter()
            .map(|r| r.gc_threshold)
            .max()
            .unwrap_or(Timestamp::ZERO)
    }

    /// Runs GC over every range as of the clock's now.
    pub fn run_gc(&self) -> Result<GcStats, ClusterError> {
        let now = self.now()?;
        self.run_gc_at(now)
    }

    /// Runs GC over every range as if the time were `now`.
    pub fn run_gc_at(&self, now: Timestamp) -> Result<GcStats, ClusterError> {
        let _gc = self.gc_lock();
        let protections = self.protections()?;
        let mut stats = GcStats::default();
        for range in self.ranges() {
            let ttl = match keys::table_of(&range.span.start) {
                Some(t) => self.gc_ttl(t)?,
                None => self.inner.config.default_gc_ttl,
            };
            let ttl = i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX);
            let mut target = Timestamp::from_wall(now.wall.saturating_sub(ttl).max(0));
            for p in protections
                .iter()
                .filter(|p| p.spans.iter().any(|s| s.overlaps(&range.span)))
            {
                target = target.min(p.ts.prev());
            }
            if target > range.gc_threshold {
                self.set_gc_threshold(range.id, target)?;
                stats.thresholds_advanced += 1;
                stats.versions_removed += self.collect_garbage(&range, target)?;
            }
        }
        self.drop_unused_segments()?;
        Ok(stats)
    }

    /// Deletes the versions of `range` that no read above `threshold` sees.
    fn collect_garbage(
        &self,
        range: &RangeState,
        threshold: Timestamp,
    ) -> Result<u64, ClusterError> {
        let tx = self.read()?;
        let versions = Versions::open(&tx, &self.inner.segments)?;
        let (lo, hi) = (
            keys::escaped(&range.span.start),
            keys::escaped(&range.span.end),
        );
        let mut garbage: Vec<Vec<u8>> = Vec::new();
        // The key whose newest version at or below the threshold was already seen.
        let mut settled: Option<Vec<u8>> = None;
        versions.for_each(&lo, &hi, |k, v| {
            let (esc, ts) = keys::split_version_key(k)
                .ok_or_else(|| ClusterError::Corrupt("short version key".into()))?;
            if ts > threshold {
                return Ok(ControlFlow::Continue(()));
            }
            if settled.as_deref() == Some(esc) {
                garbage.push(k.to_vec());
            } else {
                settled = Some(esc.to_vec());
                if v.first() == Some(&TAG_TOMBSTONE) {
                    garbage.push(k.to_vec());
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        drop(versions);
        drop(tx);
        let removed = garbage.len() as u64;
        self.write(|tx| remove_versions(tx, &self.inner.segments, &garbage))?;
        Ok(removed)
    }

    fn gc_lock(&self) -> MutexGuard<'_, ()> {
        self.inner.gc.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The lock that serialises protections and GC runs.
pub(crate) fn new_gc_lock() -> Mutex<()> {
    Mutex::new(())
}

/// Deletes versions (by engine key) and their time-index entries.
fn remove_versions(
    tx: &WriteTransaction,
    segments: &Segments,
    engine_keys: &[Vec<u8>],
) -> Result<(), ClusterError> {
    VersionsMut::open(tx, segments)?.remove(engine_keys)?;
    let mut index = tx
        .open_table(TIME_INDEX)
        .map_err(|e| storage("opening the time index")(&e))?;
    for ek in engine_keys {
        let (esc, ts) = keys::split_version_key(ek)
            .ok_or_else(|| ClusterError::Corrupt("short version key".into()))?;
        let key = keys::unescape(esc).ok_or_else(|| ClusterError::Corrupt("bad key".into()))?;
        let ik = keys::time_index_key(&key, ts);
        let removed = index
            .remove(ik.as_slice())
            .map_err(|e| storage("removing a time-index entry")(&e))?
            .map(|v| v.value().to_vec());
        // An entry with a value names a run of ingested keys that starts at
        // this key (see `ingest`): the run's other keys may still have
        // versions at `ts`, so it stays.
        if let Some(run_end) = removed.filter(|v| !v.is_empty()) {
            index
                .insert(ik.as_slice(), run_end.as_slice())
                .map_err(|e| storage("keeping an ingested run")(&e))?;
        }
    }
    Ok(())
}

fn encode_protection(ts: Timestamp, spans: &[Span]) -> Vec<u8> {
    let mut out = ts.to_bytes().to_vec();
    for s in spans {
        for part in [&s.start, &s.end] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

fn decode_protection(v: &[u8]) -> Result<(Timestamp, Vec<Span>), ClusterError> {
    let bad = || ClusterError::Corrupt("a protection record is malformed".into());
    let mut ts = [0u8; Timestamp::ENCODED_LEN];
    ts.copy_from_slice(v.get(..Timestamp::ENCODED_LEN).ok_or_else(bad)?);
    let mut rest = &v[Timestamp::ENCODED_LEN..];
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_be_bytes(
            rest.get(..4)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        let end = 4 + len as usize;
        parts.push(rest.get(4..end).ok_or_else(bad)?.to_vec());
        rest = &rest[end..];
    }
    if parts.len() % 2 != 0 {
        return Err(bad());
    }
    let spans = parts
        .chunks(2)
        .map(|p| Span::new(p[0].clone(), p[1].clone()))
        .collect();
    Ok((Timestamp::from_bytes(ts), spans))
}
