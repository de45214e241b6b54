//! The backup job: DESIGN.md's "Data flow of one backup".
//!
//! - [`spec`]: what to back up and where ([`BackupSpec`]), and the host it runs on ([`Host`]);
//! - `plan`: resolve the layer in the collection, read the chain, pick spans, check GC;
//! - `export`: per-leaseholder queues and workers (intents, retries, re-planning);
//! - `sink`: rolling data files streamed to storage, create-only;
//! - `checkpoint`: what is done, written to new file names;
//! - `history`: a revision-history layer's descriptor revisions and the
//!   time its history starts;
//! - `finish`: side files, manifest and checksum last, then `LATEST`;
//! - `run`: one attempt and the retry-then-pause loop around it.

mod checkpoint;
mod codec;
mod export;
mod finish;
mod history;
pub(crate) mod plan;
mod run;
mod sink;
pub mod spec;

/// The checkpoint format a job's progress is saved in (`backup-format`'s).
pub use backup_format::checkpoint::Checkpoint;
pub(crate) use codec::{decode_spec, encode_spec};
pub(crate) use run::{JobControl, JobRun, run_backup};
pub use spec::{BackupResult, BackupSpec, Destination, Host, LayerChoice, StorageOpener};

/// The protection recorded in a job's progress, if any.
pub(crate) fn decode_layer(
    progress: &[u8],
) -> Result<Option<crate::host::ProtectionId>, crate::error::ExecError> {
    if progress.is_empty() {
        return Ok(None);
    }
    Ok(plan::Layer::decode(progress)?.protection)
}

/// The error of a blocking task that did not finish: the runtime shutting
/// down (the process is going away; the job stays `running` and is resumed
/// from its checkpoint later), or a panic.
pub(crate) fn join_error(what: &str, e: tokio::task::JoinError) -> crate::error::ExecError {
    if e.is_cancelled() {
        crate::error::ExecError::Interrupted(format!("{what} task canceled by runtime shutdown"))
    } else {
        crate::error::ExecError::Internal(format!("{what} task: {e}"))
    }
}
