//! MVCC reads and writes, transactions and their intents.
//!
//! Every write is a new version at an HLC timestamp; a delete writes a
//! tombstone. A transaction first writes *intents* (one per key, in the
//! `intents` table, at a provisional timestamp) and a pending record; commit
//! turns all its intents into versions at the commit timestamp and marks the
//! record committed, in one engine transaction, so no reader ever sees half a
//! commit. A transaction dropped without commit or abort leaves its intents in
//! place, like a stalled client, until a high-priority reader pushes it.
//!
//! Readers meet an intent whose provisional timestamp is at or below their read
//! timestamp. Under [`IntentPolicy::FailFast`] they fail with
//! [`ClusterError::WriteIntent`]; under [`IntentPolicy::ResolveWithPriority`]
//! they *push* the writer: its record becomes aborted and all its intents are
//! removed, then the read proceeds.

use std::ops::ControlFlow;

use backup_exec::IntentPolicy;
use backup_format::{KEY_MAX, Span, Timestamp};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use crate::blocks::Versions;
use crate::cluster::{Cluster, INTENTS, TIME_INDEX, TXNS, VERSIONS};
use crate::error::{ClusterError, storage};
use crate::keys;
use crate::ranges::next_counter;

/// A key and a value (or an encoded value), as scans return them.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Tag byte of a stored tombstone.
pub(crate) const TAG_TOMBSTONE: u8 = 0;
/// Tag byte of a stored value.
pub(crate) const TAG_VALUE: u8 = 1;

/// Status byte of a pending transaction record.
const TXN_PENDING: u8 = 0;
/// Status byte of a committed transaction record.
const TXN_COMMITTED: u8 = 1;
/// Status byte of an aborted transaction record.
const TXN_ABORTED: u8 = 2;

impl Cluster {
    /// Writes `value` at `key` now; returns the write's timestamp.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<Timestamp, ClusterError> {
        self.write_batch(&[(key.to_vec(), Some(value.to_vec()))])
    }

    /// Deletes `key` now (writes a tombstone); returns the write's timestamp.
    pub fn delete(&self, key: &[u8]) -> Result<Timestamp, ClusterError> {
        self.write_batch(&[(key.to_vec(), None)])
    }

    /// Writes several keys atomically at one timestamp (`None` deletes). Fails
    /// with [`ClusterError::WriteIntent`] if a pending transaction holds one of them.
    pub fn write_batch(
        &self,
        writes: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<Timestamp, ClusterError> {
        for (k, _) in writes {
            check_key(k)?;
        }
        self.ensure_table_splits(writes.iter().filter_map(|(k, _)| keys::table_of(k)))?;
        let ts = self.now()?;
        self.write(|tx| {
            let intents = tx
                .open_table(INTENTS)
                .map_err(|e| storage("opening intents")(&e))?;
            for (k, _) in writes {
                if let Some(v) = intents
                    .get(k.as_slice())
                    .map_err(|e| storage("reading intents")(&e))?
                {
                    let (txn, _, _) = decode_intent(v.value())?;
                    return Err(ClusterError::WriteIntent {
                        key: k.clone(),
                        txn,
                    });
                }
            }
            let mut w = VersionWriter::open(tx)?;
            for (k, v) in writes {
                w.put(k, ts, v.as_deref())?;
            }
            Ok(())
        })?;
        self.note_written(
            writes
                .iter()
                .map(|(k, v)| (k.as_slice(), stored_size(k, v))),
        )?;
        Ok(ts)
    }

    /// The value of `key` at `ts` (`None` if absent or deleted).
    pub fn get(
        &self,
        key: &[u8],
        ts: Timestamp,
        policy: IntentPolicy,
    ) -> Result<Option<Vec<u8>>, ClusterError> {
        self.check_gc(&Span::key(key), ts)?;
        let tx = self.read_resolving(&Span::key(key), ts, policy)?;
        let versions = Versions::open(&tx, &self.inner.segments)?;
        let mut found = None;
        let (lo, hi) = (keys::version_key(key, ts), keys::versions_end(key));
        versions.for_each(&lo, &hi, |_, v| {
            found = decode_value(v)?;
            Ok(ControlFlow::Break(()))
        })?;
        Ok(found)
    }

    /// Every live `(key, value)` of `span` at `ts`, in key order. Holds the whole
    /// result in memory: for tests and small spans (exports stream instead).
    pub fn scan(
        &self,
        span: &Span,
        ts: Timestamp,
        policy: IntentPolicy,
    ) -> Result<Vec<KeyValue>, ClusterError> {
        self.check_gc(span, ts)?;
        let tx = self.read_resolving(span, ts, policy)?;
        let versions = Versions::open(&tx, &self.inner.segments)?;
        let (lo, hi) = (keys::escaped(&span.start), keys::escaped(&span.end));
        let mut out = Vec::new();
        let mut current: Option<Vec<u8>> = None;
        versions.for_each(&lo, &hi, |k, v| {
            let (esc, vts) = keys::split_version_key(k)
                .ok_or_else(|| ClusterError::Corrupt("short version key".into()))?;
            if vts > ts || current.as_deref() == Some(esc) {
                return Ok(ControlFlow::Continue(()));
            }
            current = Some(esc.to_vec());
            if let Some(value) = decode_value(v)? {
                let key = keys::unescape(esc)
                    .ok_or_else(|| ClusterError::Corrupt("bad escaped key".into()))?;
                out.push((key, value));
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(out)
    }

    /// Starts a transaction; its writes are intents until [`Txn::commit`].
    pub fn begin(&self) -> Result<Txn, ClusterError> {
        let ts = self.now()?;
        let id = self.write(|tx| {
            let id = next_counter(tx, "next_txn_id")?;
            put_txn_record(tx, id, TXN_PENDING, ts)?;
            Ok(id)
        })?;
        Ok(Txn {
            cluster: self.clone(),
            id,
            ts,
        })
    }

    /// Fails with [`ClusterError::GcThreshold`] if `ts` is at or below the GC
    /// threshold of a range of `span`.
    pub(crate) fn check_gc(&self, span: &Span, ts: Timestamp) -> Result<(), ClusterError> {
        let threshold = self
            .ranges_overlapping(span)
            .iter()
            .map(|r| r.gc_threshold)
            .max()
            .unwrap_or(Timestamp::ZERO);
        if !threshold.is_zero() && ts <= threshold {
            return Err(ClusterError::GcThreshold {
                requested: ts,
                threshold,
            });
        }
        Ok(())
    }

    /// A read snapshot in which no intent at or below `ts` sits in `span`:
    /// fails on one, or pushes their transactions, per `policy`.
    pub(crate) fn read_resolving(
        &self,
        span: &Span,
        ts: Timestamp,
        policy: IntentPolicy,
    ) -> Result<crate::cluster::Snapshot, ClusterError> {
        loop {
            let tx = self.read()?;
            let conflicts = intents_in(&tx, span, ts)?;
            let Some((key, txn)) = conflicts.first().cloned() else {
                return Ok(tx);
            };
            drop(tx);
            match policy {
                IntentPolicy::FailFast => return Err(ClusterError::WriteIntent { key, txn }),
                IntentPolicy::ResolveWithPriority => {
                    for (_, txn) in conflicts {
                        self.push(txn)?;
                    }
                }
            }
        }
    }

    /// Aborts a pending transaction and removes its intents (a push by a
    /// high-priority reader). A committed transaction has no intents left.
    pub fn push(&self, txn: u64) -> Result<(), ClusterError> {
        self.write(|tx| {
            let (status, ts) = get_txn_record(tx, txn)?;
            if status == TXN_PENDING {
                put_txn_record(tx, txn, TXN_ABORTED, ts)?;
            }
            remove_intents(tx, txn)?;
            Ok(())
        })
    }
}

/// A transaction: writes intents, then commits them all at one timestamp.
pub struct Txn {
    cluster: Cluster,
    id: u64,
    ts: Timestamp,
}

impl Txn {
    /// The transaction's id (named by `WriteIntent` errors).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Writes an intent for `key`.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<(), ClusterError> {
        self.write_intent(key, Some(value))
    }

    /// Writes a deletion intent for `key`.
    pub fn delete(&self, key: &[u8]) -> Result<(), ClusterError> {
        self.write_intent(key, None)
    }

    fn write_intent(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), ClusterError> {
        check_key(key)?;
        self.cluster.ensure_table_splits(keys::table_of(key))?;
        self.cluster.write(|tx| {
            self.check_pending(tx)?;
            let mut intents = tx
                .open_table(INTENTS)
                .map_err(|e| storage("opening intents")(&e))?;
            if let Some(v) = intents
                .get(key)
                .map_err(|e| storage("reading intents")(&e))?
            {
                let (other, _, _) = decode_intent(v.value())?;
                if other != self.id {
                    return Err(ClusterError::WriteIntent {
                        key: key.to_vec(),
                        txn: other,
                    });
                }
            }
            let mut v = Vec::with_capacity(21 + value.map_or(0, <[u8]>::len));
            v.extend_from_slice(&self.id.to_be_bytes());
            v.extend_from_slice(&self.ts.to_bytes());
            v.extend_from_slice(&encode_value(value));
            intents
                .insert(key, v.as_slice())
                .map_err(|e| storage("writing an intent")(&e))?;
            Ok(())
        })
    }

    /// Turns every intent into a version at one commit timestamp; fails with
    /// [`ClusterError::TxnAborted`] if the transaction was pushed.
    pub fn commit(self) -> Result<Timestamp, ClusterError> {
        let ts = self.cluster.now()?;
        let written = self.cluster.write(|tx| {
            self.check_pending(tx)?;
            let mut written = Vec::new();
            let resolved = remove_intents(tx, self.id)?;
            let mut w = VersionWriter::open(tx)?;
            for (key, value) in resolved {
                let value = decode_value(&value)?;
                w.put(&key, ts, value.as_deref())?;
                let size = stored_size(&key, &value);
                written.push((key, size));
            }
            put_txn_record(tx, self.id, TXN_COMMITTED, ts)?;
            Ok(written)
        })?;
        self.cluster
            .note_written(written.iter().map(|(k, s)| (k.as_slice(), *s)))?;
        Ok(ts)
    }

    /// Discards the transaction's intents.
    pub fn abort(self) -> Result<(), ClusterError> {
        self.cluster.write(|tx| {
            self.check_pending(tx)?;
            put_txn_record(tx, self.id, TXN_ABORTED, self.ts)?;
            remove_intents(tx, self.id)?;
            Ok(())
        })
    }

    fn check_pending(&self, tx: &WriteTransaction) -> Result<(), ClusterError> {
        match get_txn_record(tx, self.id)?.0 {
            TXN_PENDING => Ok(()),
            TXN_COMMITTED => Err(ClusterError::TxnCommitted(self.id)),
            _ => Err(ClusterError::TxnAborted(self.id)),
        }
    }
}

/// Keys must be non-empty and below `KEY_MAX`.
fn check_key(key: &[u8]) -> Result<(), ClusterError> {
    if key.is_empty() || key >= KEY_MAX {
        return Err(ClusterError::Invalid(
            "keys must be non-empty and below KEY_MAX (0xFFFF)".into(),
        ));
    }
    Ok(())
}

/// Bytes a version takes, for range sizing.
pub(crate) fn stored_size(key: &[u8], value: &Option<Vec<u8>>) -> u64 {
    (key.len() + value.as_ref().map_or(0, Vec::len) + Timestamp::ENCODED_LEN + 3) as u64
}

/// Writes versions with their time-index entries, tables opened once.
pub(crate) struct VersionWriter<'tx> {
    versions: redb::Table<'tx, &'static [u8], &'static [u8]>,
    index: redb::Table<'tx, &'static [u8], &'static [u8]>,
}

impl<'tx> VersionWriter<'tx> {
    /// Opens the version and time-index tables of `tx`.
    pub(crate) fn open(tx: &'tx WriteTransaction) -> Result<VersionWriter<'tx>, ClusterError> {
        Ok(VersionWriter {
            versions: tx
                .open_table(VERSIONS)
                .map_err(|e| storage("opening versions")(&e))?,
            index: tx
                .open_table(TIME_INDEX)
                .map_err(|e| storage("opening the time index")(&e))?,
        })
    }

    /// Writes one version and its time-index entry.
    pub(crate) fn put(
        &mut self,
        key: &[u8],
        ts: Timestamp,
        value: Option<&[u8]>,
    ) -> Result<(), ClusterError> {
        self.versions
            .insert(
                keys::version_key(key, ts).as_slice(),
                encode_value(value).as_slice(),
            )
            .map_err(|e| storage("writing a version")(&e))?;
        self.index
            .insert(keys::time_index_key(key, ts).as_slice(), [].as_slice())
            .map_err(|e| storage("writing the time index")(&e))?;
        Ok(())
    }
}

/// Tag byte then value bytes.
pub(crate) fn encode_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![TAG_TOMBSTONE],
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(TAG_VALUE);
            out.extend_from_slice(v);
            out
        }
    }
}

/// Inverse of [`encode_value`].
pub(crate) fn decode_value(stored: &[u8]) -> Result<Option<Vec<u8>>, ClusterError> {
    match stored.split_first() {
        Some((&TAG_TOMBSTONE, _)) => Ok(None),
        Some((&TAG_VALUE, rest)) => Ok(Some(rest.to_vec())),
        _ => Err(ClusterError::Corrupt("a stored value has a bad tag".into())),
    }
}

/// Splits an intent record into (txn, provisional ts, encoded value).
fn decode_intent(v: &[u8]) -> Result<(u64, Timestamp, &[u8]), ClusterError> {
    if v.len() < 21 {
        return Err(ClusterError::Corrupt("an intent record is short".into()));
    }
    let mut txn = [0u8; 8];
    txn.copy_from_slice(&v[..8]);
    let mut ts = [0u8; Timestamp::ENCODED_LEN];
    ts.copy_from_slice(&v[8..20]);
    Ok((u64::from_be_bytes(txn), Timestamp::from_bytes(ts), &v[20..]))
}

/// Intents in `span` at or below `ts`, as (key, txn).
fn intents_in(
    tx: &ReadTransaction,
    span: &Span,
    ts: Timestamp,
) -> Result<Vec<(Vec<u8>, u64)>, ClusterError> {
    let intents = tx
        .open_table(INTENTS)
        .map_err(|e| storage("opening intents")(&e))?;
    let mut out = Vec::new();
    for item in intents
        .range(span.start.as_slice()..span.end.as_slice())
        .map_err(|e| storage("scanning intents")(&e))?
    {
        let (k, v) = item.map_err(|e| storage("scanning intents")(&e))?;
        let (txn, its, _) = decode_intent(v.value())?;
        if its <= ts {
            out.push((k.value().to_vec(), txn));
        }
    }
    Ok(out)
}

/// Removes every intent of `txn`, returning (key, encoded value) of each.
///
/// Scans the whole intents table: intents are few (they live only while
/// their transaction is open).
fn remove_intents(tx: &WriteTransaction, txn: u64) -> Result<Vec<KeyValue>, ClusterError> {
    let mut intents = tx
        .open_table(INTENTS)
        .map_err(|e| storage("opening intents")(&e))?;
    let mut mine = Vec::new();
    for item in intents
        .iter()
        .map_err(|e| storage("scanning intents")(&e))?
    {
        let (k, v) = item.map_err(|e| storage("scanning intents")(&e))?;
        let (owner, _, value) = decode_intent(v.value())?;
        if owner == txn {
            mine.push((k.value().to_vec(), value.to_vec()));
        }
    }
    for (k, _) in &mine {
        intents
            .remove(k.as_slice())
            .map_err(|e| storage("removing an intent")(&e))?;
    }
    Ok(mine)
}

fn put_txn_record(
    tx: &WriteTransaction,
    id: u64,
    status: u8,
    ts: Timestamp,
) -> Result<(), ClusterError> {
    let mut txns = tx
        .open_table(TXNS)
        .map_err(|e| storage("opening txns")(&e))?;
    let mut v = vec![status];
    v.extend_from_slice(&ts.to_bytes());
    txns.insert(id, v.as_slice())
        .map_err(|e| storage("writing a txn record")(&e))?;
    Ok(())
}

fn get_txn_record(tx: &WriteTransaction, id: u64) -> Result<(u8, Timestamp), ClusterError> {
    let txns = tx
        .open_table(TXNS)
        .map_err(|e| storage("opening txns")(&e))?;
    let v = txns
        .get(id)
        .map_err(|e| storage("reading a txn record")(&e))?
        .ok_or_else(|| ClusterError::Invalid(format!("no transaction {id}")))?;
    let v = v.value();
    if v.len() != 13 {
        return Err(ClusterError::Corrupt(format!(
            "txn record {id} is malformed"
        )));
    }
    let mut ts = [0u8; Timestamp::ENCODED_LEN];
    ts.copy_from_slice(&v[1..]);
    Ok((v[0], Timestamp::from_bytes(ts)))
}
