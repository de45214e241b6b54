//! Scheduled backups: the schedule model, recurrences, the scheduling
//! decision and the scheduler's tick over the host traits.
//!
//! A `CREATE SCHEDULE` makes one schedule, or a pair: a full schedule and an
//! incremental schedule on the same collection ([`ScheduleDetails::pair`]).
//! Without `FULL BACKUP`, the full cadence follows the incremental one
//! ([`default_full_recurrence`]: hourly or faster incrementals get daily
//! fulls, up to daily ones weekly fulls, rarer ones only fulls).
//!
//! - [`model`]: [`BackupSchedule`] with its [`ScheduleDetails`] (the backup
//!   statement, `on_execution_failure`, `on_previous_running`, the pair) and
//!   [`ScheduleState`] (running jobs, last success, the chain protection);
//! - [`Recurrence`]: cron expressions and `@daily`-style names, next run in UTC;
//! - [`decide`]: a pure function of (schedule, now, outcome of its jobs) to
//!   what to do: start a backup, wait, skip, retry, pause;
//! - [`ScheduleRunner`]: one tick over a [`ScheduleStore`], the
//!   [`crate::JobStore`], the [`crate::Protector`] and the [`crate::Clock`],
//!   starting backups through the host's [`BackupStarter`].
//!
//! # The protected chain
//!
//! A pair keeps the end time of its chain's newest backup protected between
//! runs (in the full schedule's [`ScheduleState::chain`]), over the backed-up
//! spans and the host's catalog spans ([`ScheduleRunner::catalog_spans`]), so an incremental
//! never finds its start time below the GC threshold after a slow or missed
//! run. A run of a pair protects its end time when it starts; when it
//! succeeds that protection becomes the chain's and the older one is
//! released (so a new full backup releases the old chain's); when it fails
//! its protection is released and the chain stays where it was.
//!
//! # The incremental waits for its full backup
//!
//! The incremental schedule of a pair is created paused and
//! [`ScheduleState::waiting_for_full`]; the full schedule's first success
//! resumes it. An incremental resumed by hand before that skips its runs
//! until the full backup exists.
//!
//! ```
//! use backup_exec::schedule::{Recurrence, default_full_recurrence};
//! use backup_format::Timestamp;
//!
//! let hourly = Recurrence::parse("@hourly").unwrap();
//! let now = Timestamp::from_wall(1_795_548_615_000_000_000); // 2026-11-24 19:30:15 UTC
//! assert_eq!(hourly.next_after(now).unwrap(), Timestamp::from_wall(1_795_550_400_000_000_000));
//! assert_eq!(default_full_recurrence(&hourly, now).unwrap(), Some("@daily"));
//! ```

mod cron;
mod decide;
pub mod model;
mod runner;
#[cfg(test)]
mod tests;

pub use cron::{Recurrence, default_full_recurrence};
pub use decide::{Decision, JobOutcome, RETRY_DELAY_NANOS, decide};
pub use model::{
    BackupSchedule, ChainProtection, OnExecutionFailure, OnPreviousRunning, RunningJob,
    ScheduleDetails, ScheduleId, ScheduleKind, ScheduleState,
};
pub use runner::{BackupStarter, ScheduleRunner, ScheduleStore, TickReport};
