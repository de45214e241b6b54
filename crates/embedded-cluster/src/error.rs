//! The cluster's one error type, and its mapping onto the host traits' errors.

use std::path::PathBuf;

use backup_exec::{ExportError, HostError, NodeId};
use backup_format::{PrettyKey, Timestamp};

/// Everything that can go wrong in the embedded cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Another cluster (in this or another process) has the store open.
    #[error(
        "store {path} is in use by another process (or another open cluster in this one): \
         close it first, or open a different store directory"
    )]
    StoreInUse {
        /// The store directory.
        path: PathBuf,
    },
    /// The storage engine or the file system failed.
    #[error("storage failure in {context}: {message}")]
    Storage {
        /// What the cluster was doing.
        context: String,
        /// The engine's message.
        message: String,
    },
    /// The store holds bytes the cluster cannot decode.
    #[error("corrupt store: {0}; restore the store from a backup")]
    Corrupt(String),
    /// A pending transaction's intent sits on the key.
    #[error(
        "conflicting write intent on key {} of transaction {txn}: retry, or read with priority",
        PrettyKey(key)
    )]
    WriteIntent {
        /// The key.
        key: Vec<u8>,
        /// The transaction holding the intent.
        txn: u64,
    },
    /// The transaction was aborted (for example pushed by a high-priority read).
    #[error("transaction {0} was aborted (pushed by a high-priority reader): retry it")]
    TxnAborted(u64),
    /// The transaction is already committed.
    #[error("transaction {0} is already committed")]
    TxnCommitted(u64),
    /// A read below the GC threshold.
    #[error(
        "read at {requested} must be after the replica GC threshold {threshold}: \
         the versions it needs were garbage collected; read at a later timestamp"
    )]
    GcThreshold {
        /// The timestamp asked for.
        requested: Timestamp,
        /// The range's GC threshold.
        threshold: Timestamp,
    },
    /// No node has that id.
    #[error("no node {0} in the cluster (see Cluster::nodes)")]
    UnknownNode(NodeId),
    /// The node is marked down.
    #[error("node {0} is down: mark it live first, or use another node")]
    NodeDown(NodeId),
    /// No range has that id.
    #[error("no range {0} in the cluster (see Cluster::ranges)")]
    UnknownRange(u64),
    /// No protected-timestamp record has that id.
    #[error("no protected timestamp record {0}")]
    UnknownProtection(u64),
    /// No schedule has that id.
    #[error("no schedule {0} (see Cluster::schedules)")]
    UnknownSchedule(u64),
    /// The request makes no sense.
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Wraps an engine error with what the cluster was doing.
pub(crate) fn storage(context: &str) -> impl Fn(&dyn std::fmt::Display) -> ClusterError + '_ {
    move |e| ClusterError::Storage {
        context: context.to_string(),
        message: e.to_string(),
    }
}

impl From<ClusterError> for HostError {
    fn from(e: ClusterError) -> HostError {
        match e {
            ClusterError::GcThreshold {
                requested,
                threshold,
            } => HostError::GcThreshold {
                requested,
                threshold,
            },
            ClusterError::WriteIntent { .. }
            | ClusterError::TxnAborted(_)
            | ClusterError::NodeDown(_) => HostError::Transient(e.to_string()),
            ClusterError::UnknownNode(_)
            | ClusterError::UnknownRange(_)
            | ClusterError::UnknownProtection(_)
            | ClusterError::UnknownSchedule(_) => HostError::NotFound(e.to_string()),
            ClusterError::Invalid(_) | ClusterError::TxnCommitted(_) => {
                HostError::Invalid(e.to_string())
            }
            ClusterError::StoreInUse { .. }
            | ClusterError::Storage { .. }
            | ClusterError::Corrupt(_) => HostError::Storage(e.to_string()),
        }
    }
}

impl From<ClusterError> for ExportError {
    fn from(e: ClusterError) -> ExportError {
        match e {
            ClusterError::GcThreshold {
                requested,
                threshold,
            } => ExportError::GcThreshold {
                requested,
                threshold,
            },
            ClusterError::WriteIntent { key, txn } => ExportError::WriteIntent {
                key,
                txn: txn.to_string(),
            },
            ClusterError::TxnAborted(_)
            | ClusterError::NodeDown(_)
            | ClusterError::Storage { .. } => ExportError::Transient(e.to_string()),
            other => ExportError::Permanent(other.to_string()),
        }
    }
}
