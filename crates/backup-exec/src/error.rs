//! The crate's one error type: every message says what happened and what to do.

use backup_format::{DescriptorId, FormatError, Timestamp};
use backup_storage::StorageError;

use crate::host::{ExportError, HostError, JobId};

/// Everything that can stop a backup job.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The read timestamp is at or below a span's GC threshold.
    #[error(
        "backup at {requested} must be after the replica GC threshold {threshold}: \
         back up at a later time, or protect the timestamp before it ages out"
    )]
    BelowGcThreshold {
        /// The timestamp the backup must read at.
        requested: Timestamp,
        /// The highest GC threshold over the backup's spans.
        threshold: Timestamp,
    },
    /// An incremental backup cannot be appended to the chain.
    #[error("a new full backup is needed: {reason}")]
    NeedsFullBackup {
        /// Why (which table, which chain).
        reason: String,
    },
    /// A table was dropped and recreated since the chain's last layer.
    #[error(
        "a new full backup is needed: table {table} was dropped and recreated since the last backup in the chain"
    )]
    TableRecreated {
        /// The table's descriptor id.
        table: DescriptorId,
    },
    /// The spec is malformed (bad URI, end time in the past of the chain, ...).
    #[error("invalid backup: {0}")]
    Invalid(String),
    /// A schedule's recurrence or options are malformed.
    #[error("invalid schedule: {0}")]
    InvalidSchedule(String),
    /// Reading or writing the destination failed (URIs are redacted).
    #[error("backup storage: {0}")]
    Storage(#[from] StorageError),
    /// Encoding or decoding a backup file failed.
    #[error("backup file: {0}")]
    Format(#[from] FormatError),
    /// A host call failed.
    #[error("host: {0}")]
    Host(#[from] HostError),
    /// An export failed in a way retrying will not fix.
    #[error("export of {span}: {error}")]
    Export {
        /// The span (pretty-printed).
        span: String,
        /// What the host said.
        error: ExportError,
    },
    /// Transient failures went on past the retry limit; the job pauses.
    #[error(
        "{attempts} attempts failed without progress, last with: {last}; \
         the job is paused: fix the cause and RESUME JOB to continue from the last checkpoint"
    )]
    RetriesExhausted {
        /// Attempts made since the last progress.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The job was paused by a user (its progress is checkpointed).
    #[error("job {0} was paused: RESUME JOB {0} to continue")]
    Paused(JobId),
    /// The job was canceled by a user.
    #[error("job {0} was canceled")]
    Canceled(JobId),
    /// No such job.
    #[error("job {0} not found")]
    JobNotFound(JobId),
    /// The job is in a state that does not allow the request.
    #[error("job {id} is {status}: {what}")]
    JobState {
        /// The job.
        id: JobId,
        /// Its status (`succeeded`, `running`, ...).
        status: &'static str,
        /// What cannot be done.
        what: String,
    },
    /// A checkpoint or job payload could not be decoded.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// A create-only write found an object with other contents at its path.
    #[error(
        "{path} already exists with different contents: another job wrote into this backup; \
         back up into a new location"
    )]
    ObjectConflict {
        /// The object's path in its storage.
        path: String,
    },
    /// The runtime shut down under the job (the process is exiting); the
    /// job stays `running` and resumes from its last checkpoint.
    #[error("interrupted: {0}; RESUME JOB to continue from the last checkpoint")]
    Interrupted(String),
    /// A worker task panicked or was lost.
    #[error("internal error: {0}")]
    Internal(String),
    /// A restore's backup chain cannot be used (missing layer, gap, mixed keys).
    #[error("the backup chain is broken: {0}")]
    BrokenChain(String),
    /// A restore's `AS OF SYSTEM TIME` is not a time the chain can restore.
    #[error("cannot restore AS OF SYSTEM TIME {requested}: {reason}")]
    RestoreTime {
        /// The time asked for.
        requested: Timestamp,
        /// Why, and which times can be restored.
        reason: String,
    },
    /// A restored object needs an object the restore leaves out.
    #[error(
        "{object} depends on {dependency}, which is not being restored: \
         restore it too{option}"
    )]
    MissingDependency {
        /// The restored object (kind, name, id).
        object: String,
        /// What it needs (kind, id, how).
        dependency: String,
        /// `" or use skip_missing_..."` when an option allows the restore anyway.
        option: String,
    },
    /// Reading one file of the backup failed.
    #[error("reading backup file {file}: {detail}")]
    BackupFile {
        /// The file (path in the collection).
        file: String,
        /// What went wrong and what to do.
        detail: String,
    },
}

impl ExecError {
    /// Whether retrying the attempt may succeed (storage hiccups, nodes down).
    pub fn is_transient(&self) -> bool {
        match self {
            ExecError::Storage(e) => e.is_transient(),
            ExecError::Host(e) => e.is_transient(),
            ExecError::Export { error, .. } => matches!(error, ExportError::Transient(_)),
            _ => false,
        }
    }
}
