//! `backup-exec`: the traits a host database implements, and the backup
//! and restore jobs and backup schedules that run over them.
//!
//! - [`host`]: the *narrow traits* of the design — [`KvSource`], [`Catalog`],
//!   [`Ingest`], [`KeyRewriter`], [`JobStore`], [`Protector`] and [`Clock`] —
//!   synchronous and `Send + Sync` (see [`host`] for why);
//! - [`backup`]: a [`BackupSpec`] made real — plan the layer in the
//!   collection (full, or incremental on `LATEST` or a subdirectory, with
//!   introduced spans), export every range on its leaseholder with bounded
//!   concurrency (intents requeued then read with priority, transient
//!   failures retried then the job paused), stream rolling data files to
//!   storage create-only, checkpoint, and write the manifest last, then `LATEST`;
//! - [`BackupJobs`]: the job registry over [`JobStore`] (pause, resume,
//!   cancel, detached runs) with [`ProgressEvent`]s for a progress bar;
//! - [`BackupSettings`]: file size, chunk size, concurrency, delays, retries;
//! - [`restore`]: the restore job ([`RestoreJobs`] over a [`RestoreSpec`]):
//!   chain validation, `AS OF SYSTEM TIME`, span cover, ranged reads, merge
//!   across layers, rekey, parallel ingest, one publish;
//! - [`schedule`]: scheduled backups: the schedule model, cron recurrences,
//!   the scheduling decision, the protected chain, and the scheduler's tick.
//!
//! ```
//! use backup_exec::{ExportRequest, IntentPolicy, Locality, BackupSettings};
//! use backup_format::{Span, Timestamp};
//!
//! let locality: Locality = "region=us-east1,zone=a".parse().unwrap();
//! assert!(locality.matches("region", "us-east1"));
//!
//! // An incremental export of one table's span between two backups.
//! let request = ExportRequest {
//!     span: Span::new(*b"a", *b"m"),
//!     start_ts: Timestamp::from_wall(100),
//!     end_ts: Timestamp::from_wall(200),
//!     all_revisions: false,
//!     intent_policy: IntentPolicy::FailFast,
//!     target_bytes: 16 << 20,
//! };
//! assert!(request.start_ts < request.end_ts);
//! assert_eq!(BackupSettings::default().file_size, 128 << 20);
//! ```
//!
//! A backup runs through [`BackupJobs::backup`] on a [`Host`]; see
//! `tests/backup.rs` for a complete example on an in-memory host.

pub mod backup;
mod batch;
mod codec;
mod error;
pub mod host;
mod job;
mod jobs;
mod progress;
pub mod restore;
pub mod schedule;
mod settings;
#[cfg(feature = "testing")]
pub mod testing;
pub mod verify;

pub use backup::{
    BackupResult, BackupSpec, Checkpoint, Destination, Host, LayerChoice, StorageOpener,
};
pub use batch::IngestBatch;
pub use error::ExecError;
pub use host::{
    Catalog, Clock, ExportChunk, ExportError, ExportRequest, HostError, IdRewrites, Ingest,
    IntentPolicy, JobId, JobKind, JobRecord, JobResult, JobStatus, JobStore, KeyRewriter, KvSource,
    Locality, NodeId, NodeInfo, ProtectionId, Protector, RangeInfo,
};
pub use jobs::BackupJobs;
pub use progress::{NoProgress, ProgressEvent, ProgressListener};
pub use restore::{
    RestoreJobs, RestoreOptions, RestoreResult, RestoreSettings, RestoreSource, RestoreSpec,
    RestoreTargets,
};
pub use settings::BackupSettings;
pub use verify::{FileProblem, ProblemKind, VerifyReport, verify_backup};
