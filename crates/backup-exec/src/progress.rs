//! Progress events a front end can turn into a progress bar.

use crate::host::JobId;

/// One thing that happened to a running backup.
#[derive(Clone, PartialEq, Debug)]
pub enum ProgressEvent {
    /// Planning is done: `total_spans` pieces of work (ranges) were queued.
    Planned {
        /// The job.
        job: JobId,
        /// Pieces of work.
        total_spans: usize,
    },
    /// A data file was uploaded.
    FileWritten {
        /// The job.
        job: JobId,
        /// Its path in the layer.
        path: String,
        /// Stored bytes.
        bytes: u64,
    },
    /// The fraction of the work done moved.
    Fraction {
        /// The job.
        job: JobId,
        /// In `[0, 1]`.
        fraction: f64,
    },
    /// A checkpoint was written.
    Checkpointed {
        /// The job.
        job: JobId,
        /// Its path in the layer.
        path: String,
    },
    /// The job reached a new status (`succeeded`, `paused`, ...).
    Status {
        /// The job.
        job: JobId,
        /// Its new status.
        status: crate::host::JobStatus,
    },
}

/// Receives [`ProgressEvent`]s; must be cheap and must not block.
pub trait ProgressListener: Send + Sync {
    /// Called for every event, possibly from several threads.
    fn event(&self, event: &ProgressEvent);
}

/// Ignores every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl ProgressListener for NoProgress {
    fn event(&self, _event: &ProgressEvent) {}
}
