//! The restore job registry: restore jobs persisted through
//! [`crate::JobStore`], with pause, resume and cancel, and detached runs.
//!
//! A job can be paused (it stops at the next ingest batch, keeping what
//! finished units ingested, invisible), resumed (from its checkpoint: the
//! same new ids, finished spans skipped; also a `running` job no process
//! runs any more) and canceled (a running job stops and cleans up; a paused
//! one is cleaned up at once). Nothing of a canceled or failed restore is
//! visible.

use std::sync::Arc;

use tokio::sync::watch;

use super::codec::{decode_checkpoint, decode_spec, encode_spec};
use super::run::{clean_up, run_restore};
use super::spec::{RestoreResult, RestoreSettings, RestoreSpec};
use crate::backup::{Host, JobControl};
use crate::error::ExecError;
use crate::host::{HostError, Ingest, JobId, JobKind, JobRecord, JobResult, JobStatus};
use crate::job::mark_resumed;
use crate::jobs::{Tasks, state_error};

pub(super) type Outcome = Result<RestoreResult, ExecError>;

/// Starts and controls restore jobs on one host. Cheap to clone.
#[derive(Clone)]
pub struct RestoreJobs {
    pub(super) host: Host,
    pub(super) ingest: Arc<dyn Ingest>,
    pub(super) settings: RestoreSettings,
    tasks: Tasks<RestoreResult>,
}

impl RestoreJobs {
    /// Restores through `ingest` on `host` with `settings`.
    pub fn new(host: Host, ingest: Arc<dyn Ingest>, settings: RestoreSettings) -> RestoreJobs {
        RestoreJobs {
            host,
            ingest,
            settings,
            tasks: Tasks::new("restore"),
        }
    }

    /// Registers a restore job and runs it; waits for it unless
    /// `spec.options.detached` (then the id comes back at once, `running`).
    pub async fn restore(&self, spec: RestoreSpec) -> Outcome {
        let now = self.host.clock.now();
        let record = JobRecord::started(
            JobKind::Restore,
            spec.redacted_description(),
            spec.user.clone(),
            now,
            encode_spec(&spec),
        );
        let id = self.host.jobs.create(&record)?;
        self.start(id, spec).await
    }

    /// Resumes a paused restore (or a `running` one no process runs any
    /// more) from its checkpoint: under the same new ids, skipping the spans
    /// it finished.
    pub async fn resume(&self, id: JobId) -> Outcome {
        if !self.tasks.settle(id, self.job(id)?.status).await {
            return Err(state_error(id, JobStatus::Running, "it is already running"));
        }
        let payload = mark_resumed(self.host.jobs.as_ref(), id, JobKind::Restore)?;
        let mut spec = decode_spec(&payload)?;
        spec.options.detached = false;
        self.start(id, spec).await
    }

    /// Asks a running restore to pause: it stops at its next ingest batch;
    /// what its finished units ingested stays (invisible) for the resume.
    pub fn pause(&self, id: JobId) -> Result<(), ExecError> {
        if !self.tasks.live(id) {
            return Err(state_error(
                id,
                self.job(id)?.status,
                "it is not running in this process",
            ));
        }
        self.host.jobs.update(id, &mut |r| match r.status {
            _ if r.kind != JobKind::Restore => {
                Err(HostError::Invalid(format!("job {id} is not a restore")))
            }
            JobStatus::Running | JobStatus::PauseRequested => {
                r.status = JobStatus::PauseRequested;
                Ok(())
            }
            s => Err(HostError::Invalid(format!(
                "job {id} is {}: it is not running",
                s.as_str()
            ))),
        })?;
        self.tasks.signal(id, JobControl::Pause);
        Ok(())
    }

    /// Cancels a restore: a running one stops and removes what it ingested
    /// (its status is `cancel-requested` until then); a paused one, or a
    /// `running` one no process runs, is cleaned up and canceled at once.
    /// Nothing of a canceled restore is visible.
    pub async fn cancel(&self, id: JobId) -> Result<(), ExecError> {
        let live = self.tasks.live(id);
        let mut at_once = false;
        let record = self.host.jobs.update(id, &mut |r| {
            if r.kind != JobKind::Restore {
                return Err(HostError::Invalid(format!("job {id} is not a restore")));
            }
            if r.status.is_terminal() {
                return Err(HostError::Invalid(format!(
                    "job {id} is {}: it cannot be canceled",
                    r.status.as_str()
                )));
            }
            at_once = !live || r.status == JobStatus::Paused;
            r.status = JobStatus::CancelRequested;
            Ok(())
        })?;
        if !at_once {
            self.tasks.signal(id, JobControl::Cancel);
            return Ok(());
        }
        let checkpoint = decode_checkpoint(&record.progress)?;
        clean_up(&self.ingest, checkpoint.new_spans).await?;
        match self.conclude(id, Err(ExecError::Canceled(id))) {
            Err(ExecError::Canceled(_)) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits for a detached restore started by this registry to stop.
    pub async fn wait(&self, id: JobId) -> Outcome {
        match self.tasks.wait(id).await {
            Some(r) => r,
            None => Err(state_error(
                id,
                self.job(id)?.status,
                "this process is not running it",
            )),
        }
    }

    /// The job's record.
    pub fn job(&self, id: JobId) -> Result<JobRecord, ExecError> {
        self.host.jobs.get(id)?.ok_or(ExecError::JobNotFound(id))
    }

    async fn start(&self, id: JobId, spec: RestoreSpec) -> Outcome {
        let (tx, rx) = watch::channel(JobControl::Run);
        let detached = spec.options.detached;
        let this = self.clone();
        let run = async move {
            let r = run_restore(&this, id, &spec, rx).await;
            this.conclude(id, r)
        };
        self.tasks
            .run(id, tx, detached.then(|| JobResult::started(id)), run)
            .await
    }

    /// Records the outcome of a run in the job store.
    fn conclude(&self, id: JobId, r: Outcome) -> Outcome {
        let now = self.host.clock.now();
        let (status, error) = match &r {
            Ok(_) => (JobStatus::Succeeded, None),
            Err(ExecError::Paused(_)) => (JobStatus::Paused, None),
            Err(ExecError::Canceled(_)) => (JobStatus::Canceled, None),
            Err(e) => (JobStatus::Failed, Some(e.to_string())),
        };
        self.host.jobs.update(id, &mut |rec| {
            rec.status = status;
            rec.error = error.clone();
            if status == JobStatus::Succeeded {
                rec.fraction_completed = 1.0;
            }
            if status.is_terminal() {
                rec.finished = Some(now);
            }
            Ok(())
        })?;
        r
    }
}
