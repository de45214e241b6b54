//! Id-keyed records in system tables (jobs, schedules): MVCC rows keyed by
//! record id, read and written like any other table row.
//!
//! A record's key is `system_key(table, id)`: the ordinary table key layout
//! with the id as an order-preserving `INT` primary key, so a scan of the
//! table returns records in id order. Values are versioned binary encodings
//! (first byte: the encoding version) built with [`Writer`] and read with
//! [`Reader`].

use backup_exec::IntentPolicy;
use backup_format::Timestamp;

use crate::catalog::system_key;
use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::keys;
use crate::sql::value::Value;

/// The key of record `id` of system table `table`; `None` for ids no record
/// can have (above `i64::MAX`, the largest `INT` key).
pub(crate) fn record_key(table: u64, id: u64) -> Option<Vec<u8>> {
    let id = i64::try_from(id).ok()?;
    Some(system_key(table, &Value::Int(id)))
}

/// The encoded record `id` of `table` as of `ts`.
pub(crate) fn read(
    cluster: &Cluster,
    table: u64,
    id: u64,
    ts: Timestamp,
) -> Result<Option<Vec<u8>>, ClusterError> {
    match record_key(table, id) {
        Some(key) => cluster.get(&key, ts, IntentPolicy::FailFast),
        None => Ok(None),
    }
}

/// Every encoded record of `table` as of `ts`, in id order.
pub(crate) fn scan(
    cluster: &Cluster,
    table: u64,
    ts: Timestamp,
) -> Result<Vec<Vec<u8>>, ClusterError> {
    Ok(cluster
        .scan(&keys::table_span(table), ts, IntentPolicy::FailFast)?
        .into_iter()
        .map(|(_, v)| v)
        .collect())
}

/// Writes (`Some`) or deletes (`None`) record `id` of `table` now.
pub(crate) fn write(
    cluster: &Cluster,
    table: u64,
    id: u64,
    value: Option<Vec<u8>>,
) -> Result<Timestamp, ClusterError> {
    let key = record_key(table, id)
        .ok_or_else(|| ClusterError::Invalid(format!("record id {id} is out of range")))?;
    cluster.write_batch(&[(key, value)])
}

/// Runs `f` holding the cluster's commit lock, which every SQL commit and
/// every record write of this module takes: a read-modify-write under it is
/// atomic. `f` must not commit SQL transactions (the lock is not reentrant).
pub(crate) fn locked<T>(cluster: &Cluster, f: impl FnOnce() -> T) -> T {
    let _guard = cluster
        .inner
        .sql
        .commit_lock
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    f()
}

/// Builds an encoded record.
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    /// A record of encoding version `version`.
    pub(crate) fn new(version: u8) -> Writer {
        Writer(vec![version])
    }

    /// Appends one byte.
    pub(crate) fn u8(&mut self, b: u8) {
        self.0.push(b);
    }

    /// Appends a big-endian `u64`.
    pub(crate) fn u64(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_be_bytes());
    }

    /// Appends a timestamp.
    pub(crate) fn ts(&mut self, t: Timestamp) {
        self.0.extend_from_slice(&t.to_bytes());
    }

    /// Appends an optional timestamp (presence byte, then the timestamp).
    pub(crate) fn opt_ts(&mut self, t: Option<Timestamp>) {
        match t {
            Some(t) => {
                self.u8(1);
                self.ts(t);
            }
            None => self.u8(0),
        }
    }

    /// Appends length-prefixed bytes.
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
}

/// A cursor over an encoded record; `what` names the record in errors.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`, checking its encoding version is `version`.
    pub(crate) fn new(
        bytes: &'a [u8],
        version: u8,
        what: &'static str,
    ) -> Result<Reader<'a>, ClusterError> {
        let mut r = Reader { rest: bytes, what };
        let v = r.u8()?;
        if v != version {
            return Err(ClusterError::Corrupt(format!(
                "{what} has unknown encoding version {v} (expected {version})"
            )));
        }
        Ok(r)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ClusterError> {
        if self.rest.len() < n {
            return Err(ClusterError::Corrupt(format!("{} is truncated", self.what)));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Result<u8, ClusterError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian `u64`.
    pub(crate) fn u64(&mut self) -> Result<u64, ClusterError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    /// A timestamp.
    pub(crate) fn ts(&mut self) -> Result<Timestamp, ClusterError> {
        let mut b = [0u8; Timestamp::ENCODED_LEN];
        b.copy_from_slice(self.take(Timestamp::ENCODED_LEN)?);
        Ok(Timestamp::from_bytes(b))
    }

    /// An optional timestamp.
    pub(crate) fn opt_ts(&mut self) -> Result<Option<Timestamp>, ClusterError> {
        Ok(match self.u8()? {
            0 => None,
            _ => Some(self.ts()?),
        })
    }

    /// Length-prefixed bytes.
    pub(crate) fn bytes(&mut self) -> Result<Vec<u8>, ClusterError> {
        let n = usize::try_from(self.u64()?)
            .map_err(|_| ClusterError::Corrupt(format!("a field of {} is too long", self.what)))?;
        Ok(self.take(n)?.to_vec())
    }

    /// A length-prefixed UTF-8 string.
    pub(crate) fn string(&mut self) -> Result<String, ClusterError> {
        String::from_utf8(self.bytes()?)
            .map_err(|_| ClusterError::Corrupt(format!("a field of {} is not UTF-8", self.what)))
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(self) -> Result<(), ClusterError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ClusterError::Corrupt(format!(
                "{} has trailing bytes",
                self.what
            )))
        }
    }
}
