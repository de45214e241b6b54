//! The key-value view of one SQL transaction: reads at a fixed timestamp with
//! the transaction's own buffered writes laid over them; commit writes the
//! buffer atomically at one timestamp.

use std::collections::BTreeMap;

use backup_exec::IntentPolicy;
use backup_format::{Span, Timestamp};

use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::mvcc::KeyValue;

/// Reads at `read_ts` plus buffered writes.
pub(crate) struct KvTxn {
    cluster: Cluster,
    /// The snapshot timestamp every read uses.
    pub(crate) read_ts: Timestamp,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl KvTxn {
    /// A transaction reading at `read_ts`.
    pub(crate) fn new(cluster: &Cluster, read_ts: Timestamp) -> KvTxn {
        KvTxn {
            cluster: cluster.clone(),
            read_ts,
            writes: BTreeMap::new(),
        }
    }

    /// The cluster.
    pub(crate) fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The value of `key`, own writes first.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ClusterError> {
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        self.cluster.get(key, self.read_ts, IntentPolicy::FailFast)
    }

    /// Every live pair of `span`, own writes laid over the snapshot.
    pub(crate) fn scan(&self, span: &Span) -> Result<Vec<KeyValue>, ClusterError> {
        let base = self
            .cluster
            .scan(span, self.read_ts, IntentPolicy::FailFast)?;
        let mut own = self
            .writes
            .range(span.start.clone()..span.end.clone())
            .peekable();
        if own.peek().is_none() {
            return Ok(base);
        }
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = base.into_iter().collect();
        for (k, v) in own {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().collect())
    }

    /// Buffers a write.
    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Buffers a delete.
    pub(crate) fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Writes the buffer atomically. With `check_conflicts`, fails with
    /// [`ClusterError::TxnAborted`]-like retry if another writer changed one of
    /// the written keys since `read_ts` (first committer wins).
    pub(crate) fn commit(self, check_conflicts: bool) -> Result<Option<Timestamp>, CommitError> {
        if self.writes.is_empty() {
            return Ok(None);
        }
        let _guard = self
            .cluster
            .inner
            .sql
            .commit_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if check_conflicts {
            for key in self.writes.keys() {
                let now = self
                    .cluster
                    .get(key, Timestamp::MAX, IntentPolicy::FailFast)?;
                let then = self
                    .cluster
                    .get(key, self.read_ts, IntentPolicy::FailFast)?;
                if now != then {
                    return Err(CommitError::Conflict(key.clone()));
                }
            }
        }
        let writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = self.writes.into_iter().collect();
        Ok(Some(self.cluster.write_batch(&writes)?))
    }
}

/// Why a commit failed.
#[derive(Debug)]
pub(crate) enum CommitError {
    /// Another transaction wrote this key after our snapshot.
    Conflict(Vec<u8>),
    /// The cluster failed.
    Cluster(ClusterError),
}

impl From<ClusterError> for CommitError {
    fn from(e: ClusterError) -> CommitError {
        CommitError::Cluster(e)
    }
}
