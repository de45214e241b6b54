//! The scheduler: runs the backup schedules of the cluster's schedule table
//! while the cluster is up.
//!
//! [`Cluster::start_scheduler`] installs the backup statement executor (as
//! [`Cluster::enable_backup_statements`] does: call one or the other) and
//! starts a background thread that ticks once a second on the cluster's
//! clock; the returned [`SchedulerHandle`] stops it when dropped.
//! [`Cluster::scheduler`] gives the same [`Scheduler`] without the thread,
//! for ticking by hand (tests with [`Cluster::advance_clock`]).
//!
//! Each tick ([`backup_exec::schedule::ScheduleRunner::tick`]) finds the
//! due schedules, starts their backups through the same path as SQL
//! `BACKUP` (the schedule's statement, detached, as its owner), records the
//! job ids, applies `on_execution_failure` and `on_previous_running`, keeps
//! the pair's chain protected (its tables' spans and the descriptor table,
//! which an incremental reads as of the chain's end), and writes each schedule's state back to the
//! schedule table, so schedules and their progress survive a restart. On
//! start, scheduled jobs left `running` by an earlier process are resumed
//! from their checkpoints.
//!
//! ```
//! use std::time::Duration;
//! use embedded_cluster::{Cluster, bank};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let cluster = Cluster::open_default(dir.path()).unwrap();
//! bank::sample(&cluster).unwrap();
//! let scheduler = cluster.scheduler().unwrap();
//! let mut s = cluster.session("root").unwrap();
//! s.execute("CREATE SCHEDULE nightly FOR BACKUP DATABASE bank INTO 'nodelocal://1/b' \
//!            RECURRING '@daily' WITH SCHEDULE OPTIONS first_run = 'now'").unwrap();
//! let report = scheduler.tick().unwrap();
//! let (_, job) = report.started[0];
//! assert_eq!(scheduler.wait_for_job(job).unwrap().status.as_str(), "succeeded");
//! drop(scheduler);
//! cluster.disable_backup_statements();
//! ```

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use backup_exec::schedule::{BackupSchedule, BackupStarter, ScheduleRunner, TickReport};
use backup_exec::{JobId, JobRecord, JobStatus};
use backup_format::Timestamp;
use backup_sql::BackupStatements;

use crate::backup_statements::Session;
use crate::catalog::DESCRIPTOR_TABLE_ID;
use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::keys;

/// How often the background scheduler ticks by default.
pub const DEFAULT_TICK_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the cluster's backup schedules, one [`Scheduler::tick`] at a time.
pub struct Scheduler {
    cluster: Cluster,
    statements: Arc<BackupStatements>,
    runner: ScheduleRunner,
    last_error: Mutex<Option<String>>,
}

impl Cluster {
    /// Installs the backup statement executor (replacing an earlier one, as
    /// [`Cluster::enable_backup_statements`] does) and returns a scheduler
    /// over it, ticked by hand. Scheduled jobs left `running` by an earlier
    /// process are resumed.
    pub fn scheduler(&self) -> Result<Scheduler, ClusterError> {
        let statements = self.install_executor()?;
        let mut runner = statements
            .schedule_runner()
            .ok_or_else(|| ClusterError::Invalid("the executor keeps no schedules".into()))?;
        // A chain's incremental reads descriptors as of the chain's end.
        runner.catalog_spans = vec![keys::table_span(DESCRIPTOR_TABLE_ID)];
        let scheduler = Scheduler {
            cluster: self.clone(),
            statements,
            runner,
            last_error: Mutex::new(None),
        };
        scheduler.adopt_orphans()?;
        Ok(scheduler)
    }

    /// [`Cluster::scheduler`], ticked by a background thread every
    /// [`DEFAULT_TICK_INTERVAL`] until the handle is dropped.
    pub fn start_scheduler(&self) -> Result<SchedulerHandle, ClusterError> {
        self.start_scheduler_every(DEFAULT_TICK_INTERVAL)
    }

    /// [`Cluster::start_scheduler`] with another tick interval.
    pub fn start_scheduler_every(
        &self,
        interval: Duration,
    ) -> Result<SchedulerHandle, ClusterError> {
        let scheduler = Arc::new(self.scheduler()?);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let scheduler = scheduler.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("backup-scheduler".into())
                .spawn(move || run(&scheduler, &stop, interval))
                .map_err(|e| ClusterError::Invalid(format!("cannot start the scheduler: {e}")))?
        };
        Ok(SchedulerHandle {
            scheduler,
            stop,
            thread: Some(thread),
        })
    }

    /// Moves the cluster's clock forward by `by` (the clock never goes
    /// back): what schedules are due by, for simulating days in tests.
    pub fn advance_clock(&self, by: Duration) -> Result<Timestamp, ClusterError> {
        let now = self.now()?;
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.inner.clock.observe(now.add_nanos(nanos))
    }
}

impl Scheduler {
    /// One pass over every schedule at the cluster's now: starts due
    /// backups and records what finished (see the module docs).
    pub fn tick(&self) -> Result<TickReport, ClusterError> {
        let starter = OwnerStarter {
            cluster: &self.cluster,
            statements: &self.statements,
        };
        self.runner
            .tick(&starter)
            .map_err(|e| ClusterError::Invalid(format!("scheduler tick: {e}")))
    }

    /// Waits for a job the scheduler started to stop; returns its record.
    /// Do not call from inside a tokio runtime.
    pub fn wait_for_job(&self, id: JobId) -> Result<JobRecord, ClusterError> {
        self.statements
            .wait_for_job(id)
            .map_err(|e| ClusterError::Invalid(e.to_string()))
    }

    /// The error of the background thread's last tick, if it (or one of
    /// its schedules) failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The executor the scheduler starts backups through (the same one the
    /// cluster's sessions use).
    pub fn statements(&self) -> &BackupStatements {
        &self.statements
    }

    /// Resumes scheduled jobs recorded `running` that no process runs (the
    /// process that ran them stopped): they continue from their checkpoints.
    fn adopt_orphans(&self) -> Result<(), ClusterError> {
        let host = |e: backup_exec::HostError| ClusterError::Invalid(e.to_string());
        for s in self.runner.schedules.list().map_err(host)? {
            for r in &s.state.running {
                let status = self
                    .cluster
                    .job_at(r.job, self.cluster.now()?)?
                    .map(|j| j.status);
                if matches!(status, Some(JobStatus::Running | JobStatus::PauseRequested)) {
                    // A job that cannot resume shows its error in SHOW JOBS;
                    // the schedule sees it as failed then.
                    let _ = self.statements.resume_detached(r.job);
                }
            }
        }
        Ok(())
    }
}

/// A running background scheduler; dropping it stops the thread (a backup
/// it started runs on in the executor).
pub struct SchedulerHandle {
    scheduler: Arc<Scheduler>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl SchedulerHandle {
    /// The scheduler the thread ticks.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The background loop: tick, then sleep `interval` or until stopped.
fn run(scheduler: &Scheduler, stop: &(Mutex<bool>, Condvar), interval: Duration) {
    let (lock, wake) = stop;
    loop {
        let error = match scheduler.tick() {
            Ok(report) => report
                .errors
                .first()
                .map(|(id, e)| format!("schedule {id}: {e}")),
            Err(e) => Some(e.to_string()),
        };
        *scheduler
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = error;
        let stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
        let (stopped, _) = wake
            .wait_timeout_while(stopped, interval, |s| !*s)
            .unwrap_or_else(|p| p.into_inner());
        if *stopped {
            return;
        }
    }
}

/// Starts a schedule's backup as its owner, in the database it was created in.
struct OwnerStarter<'a> {
    cluster: &'a Cluster,
    statements: &'a BackupStatements,
}

impl BackupStarter for OwnerStarter<'_> {
    fn start(&self, schedule: &BackupSchedule) -> Result<JobId, String> {
        let ctx = Session::new(self.cluster, &schedule.owner, &schedule.details.database)
            .map_err(|e| e.to_string())?;
        self.statements
            .start_scheduled(&ctx, schedule)
            .map_err(|e| e.to_string())
    }
}
