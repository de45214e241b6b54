//! The scheduler's tick over the host traits: observe the jobs schedules
//! started, move the pair's protected chain forward, decide, start due
//! backups through a [`BackupStarter`], and persist each schedule's state.

use std::sync::Arc;

use backup_format::{Span, Timestamp};

use super::cron::Recurrence;
use super::decide::{JobOutcome, decide};
use super::model::{
    BackupSchedule, ChainProtection, RunningJob, ScheduleId, ScheduleKind, ScheduleState,
};
use crate::backup::decode_spec;
use crate::error::ExecError;
use crate::host::{Clock, HostError, JobId, JobStatus, JobStore, ProtectionId, Protector};

/// Persisted schedules (the host's system table of schedules).
pub trait ScheduleStore: Send + Sync {
    /// Stores a new schedule and returns its id (`schedule.id` is ignored).
    fn create(&self, schedule: &BackupSchedule) -> Result<ScheduleId, HostError>;

    /// Atomically reads, changes and writes back one schedule; returns it as
    /// written. If `change` fails nothing is written; an unknown id is `NotFound`.
    fn update(
        &self,
        id: ScheduleId,
        change: &mut dyn FnMut(&mut BackupSchedule) -> Result<(), HostError>,
    ) -> Result<BackupSchedule, HostError>;

    /// One schedule, or `None`.
    fn get(&self, id: ScheduleId) -> Result<Option<BackupSchedule>, HostError>;

    /// Every schedule, by id.
    fn list(&self) -> Result<Vec<BackupSchedule>, HostError>;

    /// Deletes a schedule; an unknown id is `NotFound`.
    fn delete(&self, id: ScheduleId) -> Result<(), HostError>;
}

/// Starts the backup a schedule runs (the host executes its statement as
/// the schedule's owner, detached) and returns the job's id.
pub trait BackupStarter {
    /// Starts one run of `schedule`; an error is a failed run, with why.
    fn start(&self, schedule: &BackupSchedule) -> Result<JobId, String>;
}

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Backups started: schedule and job.
    pub started: Vec<(ScheduleId, JobId)>,
    /// Jobs seen finished: schedule, job and outcome.
    pub finished: Vec<(ScheduleId, JobId, JobOutcome)>,
    /// Runs that could not start: schedule and why.
    pub failed_to_start: Vec<(ScheduleId, String)>,
    /// Schedules whose tick failed (the others still ran): schedule and error.
    pub errors: Vec<(ScheduleId, String)>,
}

/// The scheduler over a host's stores, protector and clock.
#[derive(Clone)]
pub struct ScheduleRunner {
    /// The schedules.
    pub schedules: Arc<dyn ScheduleStore>,
    /// The jobs schedules start.
    pub jobs: Arc<dyn JobStore>,
    /// Protected timestamps for the chain.
    pub protector: Arc<dyn Protector>,
    /// The clock schedules are due by.
    pub clock: Arc<dyn Clock>,
    /// Spans the host reads its catalog from as of a past time (an
    /// incremental checks its tables as of the chain's end): the chain
    /// protects them along with the backed-up data.
    pub catalog_spans: Vec<Span>,
}

impl ScheduleRunner {
    /// One pass over every schedule at the clock's now (see [`decide`]).
    /// A schedule whose tick fails (a damaged recurrence, a store error) is
    /// reported in [`TickReport::errors`] and the others still run; only
    /// failing to list the schedules is an error.
    pub fn tick(&self, starter: &dyn BackupStarter) -> Result<TickReport, ExecError> {
        let mut report = TickReport::default();
        for s in self.schedules.list()? {
            if let Err(e) = self.tick_one(s.id, starter, &mut report) {
                report.errors.push((s.id, e.to_string()));
            }
        }
        Ok(report)
    }

    fn tick_one(
        &self,
        id: ScheduleId,
        starter: &dyn BackupStarter,
        report: &mut TickReport,
    ) -> Result<(), ExecError> {
        let Some(s) = self.schedules.get(id)? else {
            return Ok(());
        };
        let now = self.clock.now();
        let recurrence = match s.recurrence.trim() {
            "" => None,
            e => Some(Recurrence::parse(e)?),
        };
        let outcomes: Vec<(JobId, JobOutcome)> = s
            .state
            .running
            .iter()
            .map(|r| Ok((r.job, self.outcome(r.job)?)))
            .collect::<Result<_, ExecError>>()?;
        for (r, (_, o)) in s.state.running.iter().zip(&outcomes) {
            match o {
                JobOutcome::Running => continue,
                JobOutcome::Succeeded => self.succeeded(&s, r)?,
                JobOutcome::Failed(_) => self.release(r.protection),
            }
            report.finished.push((s.id, r.job, o.clone()));
        }
        let full_ready = self.full_ready(&s)?;
        let mut decision = decide(&s, recurrence.as_ref(), now, &outcomes, full_ready)?;
        let mut started = None;
        if decision.start {
            match starter.start(&s) {
                Ok(job) => {
                    report.started.push((s.id, job));
                    // The job runs whatever happens here: record it even if
                    // tagging or protecting it failed, so it is not started twice.
                    started = Some(self.track(&s, job).unwrap_or_else(|e| {
                        report.errors.push((s.id, format!("job {job}: {e}")));
                        RunningJob {
                            job,
                            end_time: now,
                            protection: None,
                        }
                    }));
                }
                Err(why) => {
                    report.failed_to_start.push((s.id, why.clone()));
                    // A run that could not start is a failed run.
                    let failed = [(0, JobOutcome::Failed(why.clone()))];
                    let mut as_failed = s.clone();
                    as_failed.next_run = decision.next_run;
                    let again = decide(&as_failed, recurrence.as_ref(), now, &failed, true)?;
                    decision.next_run = again.next_run;
                    decision.pause = again.pause;
                    decision.status = Some(match again.pause {
                        true => format!(
                            "paused because a backup could not start: {why}; \
                             RESUME SCHEDULE {} to run it again",
                            s.id
                        ),
                        false => format!("could not start a backup: {why}"),
                    });
                }
            }
        }
        let done: Vec<JobId> = s
            .state
            .running
            .iter()
            .zip(&outcomes)
            .filter(|(_, (_, o))| !matches!(o, JobOutcome::Running))
            .map(|(r, _)| r.job)
            .collect();
        let last_success = s
            .state
            .running
            .iter()
            .zip(&outcomes)
            .filter(|(_, (_, o))| matches!(o, JobOutcome::Succeeded))
            .map(|(r, _)| r.end_time)
            .max();
        let written = self.schedules.update(s.id, &mut |rec| {
            let st = &mut rec.state;
            st.running.retain(|r| !done.contains(&r.job));
            if let Some(r) = &started {
                st.running.push(r.clone());
                st.last_job = Some(r.job);
            }
            if let Some(t) = last_success {
                st.last_success = Some(st.last_success.map_or(t, |o| o.max(t)));
            }
            if let Some(status) = &decision.status {
                st.status = status.clone();
            }
            // Only the scheduler's own changes: a user's PAUSE or RESUME in
            // between stays.
            if rec.next_run == s.next_run {
                rec.next_run = decision.next_run;
            }
            if decision.pause {
                rec.paused = true;
            }
            Ok(())
        });
        if let Err(e) = written {
            // Dropped meanwhile: let go of what this tick took for it.
            if let Some(r) = started {
                self.release(r.protection);
            }
            return match e {
                HostError::NotFound(_) => Ok(()),
                e => Err(e.into()),
            };
        }
        Ok(())
    }

    fn outcome(&self, job: JobId) -> Result<JobOutcome, ExecError> {
        let Some(r) = self.jobs.get(job)? else {
            return Ok(JobOutcome::Failed(format!("job {job} does not exist")));
        };
        Ok(match r.status {
            JobStatus::Succeeded => JobOutcome::Succeeded,
            JobStatus::Failed | JobStatus::Canceled => JobOutcome::Failed(
                r.error
                    .unwrap_or_else(|| format!("the job was {}", r.status.as_str())),
            ),
            JobStatus::Running
            | JobStatus::Paused
            | JobStatus::PauseRequested
            | JobStatus::CancelRequested => JobOutcome::Running,
        })
    }

    /// Whether the full backup an incremental schedule builds on exists: its
    /// pair has succeeded once (an incremental without a pair builds on
    /// whatever `LATEST` is).
    fn full_ready(&self, s: &BackupSchedule) -> Result<bool, ExecError> {
        if s.details.kind != ScheduleKind::Incremental {
            return Ok(true);
        }
        let Some(pair) = s.details.pair else {
            return Ok(true);
        };
        Ok(self
            .schedules
            .get(pair)?
            .is_none_or(|full| full.state.last_success.is_some()))
    }

    /// Tags a started job with its schedule and, for a pair, protects its end
    /// time at once, so no moment passes between the job's own protection
    /// ending and the chain's moving to it.
    fn track(&self, s: &BackupSchedule, job: JobId) -> Result<RunningJob, ExecError> {
        let record = self.jobs.update(job, &mut |r| {
            r.created_by_schedule = Some(s.id);
            Ok(())
        })?;
        let (spans, end_time) = match decode_spec(&record.payload) {
            Ok(spec) => (spec.spans, spec.end_time),
            Err(_) => (Vec::new(), record.created),
        };
        let protection = match s.details.pair {
            Some(_) if !spans.is_empty() => {
                let mut all = spans;
                all.extend(self.catalog_spans.iter().cloned());
                self.protect(&all, end_time)
            }
            _ => None,
        };
        Ok(RunningJob {
            job,
            end_time,
            protection,
        })
    }

    fn protect(&self, spans: &[Span], at: Timestamp) -> Option<ProtectionId> {
        if spans.is_empty() {
            return None;
        }
        // Below the GC threshold already: the job itself fails and says so.
        self.protector.protect(spans, at).ok()
    }

    fn release(&self, p: Option<ProtectionId>) {
        if let Some(p) = p {
            // Already gone (a restored schedule's, say): nothing to keep.
            let _ = self.protector.release(p);
        }
    }

    /// A job of `s` succeeded: its end time becomes the chain's protected
    /// time (a new full backup, or a newer incremental, releases the older
    /// protection); the first full backup of a pair resumes the incremental
    /// schedule that waited for it.
    fn succeeded(&self, s: &BackupSchedule, r: &RunningJob) -> Result<(), ExecError> {
        let owner = match (s.details.kind, s.details.pair) {
            (_, None) => {
                self.release(r.protection);
                return Ok(());
            }
            (ScheduleKind::Full, Some(_)) => s.id,
            (ScheduleKind::Incremental, Some(full)) => full,
        };
        let Some(p) = r.protection else {
            return self.after_full(s);
        };
        let mut superseded = None;
        let moved = self.schedules.update(owner, &mut |rec| {
            superseded = None;
            match rec.state.chain {
                // Seen before (a tick whose last write failed).
                Some(c) if c.id == p => {}
                Some(c) if c.at > r.end_time => superseded = Some(p),
                old => {
                    superseded = old.map(|c| c.id);
                    rec.state.chain = Some(ChainProtection {
                        id: p,
                        at: r.end_time,
                    });
                }
            }
            Ok(())
        });
        match moved {
            Ok(_) => self.release(superseded),
            Err(HostError::NotFound(_)) => self.release(Some(p)),
            Err(e) => return Err(e.into()),
        }
        self.after_full(s)
    }

    fn after_full(&self, s: &BackupSchedule) -> Result<(), ExecError> {
        let (ScheduleKind::Full, Some(inc)) = (s.details.kind, s.details.pair) else {
            return Ok(());
        };
        let now = self.clock.now();
        let r = self.schedules.update(inc, &mut |rec| {
            if rec.state.waiting_for_full {
                rec.state.waiting_for_full = false;
                rec.state.status = String::new();
                rec.paused = false;
                rec.next_run = match rec.recurrence.trim() {
                    "" => None,
                    e => Some(
                        Recurrence::parse(e)
                            .and_then(|r| r.next_after(now))
                            .map_err(|e| HostError::Invalid(e.to_string()))?,
                    ),
                };
            }
            Ok(())
        });
        match r {
            Ok(_) | Err(HostError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Lets go of every protection a schedule holds (its chain and its
    /// running jobs'), for `DROP SCHEDULE`.
    pub fn release_all(&self, state: &ScheduleState) {
        self.release(state.chain.map(|c| c.id));
        for r in &state.running {
            self.release(r.protection);
        }
    }
}
