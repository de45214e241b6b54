//! The restore job: DESIGN.md's "Restore runs the other way".
//!
//! - [`spec`]: what to restore from where, with targets already resolved into
//!   descriptor ids of the backup and where each goes ([`RestoreSpec`]);
//! - `chain`: read the full backup and its incrementals, validate the chain
//!   (contiguous times, one key), and pick the layers for `AS OF SYSTEM TIME`
//!   ([`read_backup`] also serves the SQL layer, which resolves names
//!   against [`BackupChain::descriptors`]);
//! - `plan`: which descriptors, under which ids and names, with dependency
//!   checks and the `skip_missing_*` options;
//! - `cover`: the requested spans cut into work units with their files;
//! - `read`: per unit, ranged reads of only the needed blocks, a merge per key
//!   across layers (the newest version at or below the restore time wins,
//!   deletes delete), rekeying, and batched ingest;
//! - `control`: the job registry ([`RestoreJobs`]): pause, resume, cancel,
//!   detached runs;
//! - `run`: one run of the job: units in parallel with bounded concurrency,
//!   a checkpoint per finished unit, one publish at the end (with the system
//!   rows of a full-cluster restore, see [`crate::Ingest::publish_cluster`]),
//!   cleanup on failure or cancel;
//! - `codec`: the persisted job payload (the spec) and checkpoint.
//!
//! Name resolution (`new_db_name`, `into_db`, `RESTORE DATABASE bank`) belongs
//! to the SQL layer: it reads the chain's descriptors, picks ids and fills
//! [`RestoreSpec::rewrites`].

mod chain;
mod codec;
mod control;
mod cover;
mod plan;
mod read;
mod run;
pub mod spec;
#[cfg(feature = "testing")]
pub mod testing;

pub use chain::{BackupChain, ChainLayer, read_backup};
pub use control::RestoreJobs;
pub use spec::{
    BackupChoice, DescriptorRewrite, RestoreOptions, RestoreResult, RestoreSettings, RestoreSource,
    RestoreSpec, RestoreTargets,
};
