//! The job registry: backup jobs persisted through [`JobStore`], with pause,
//! resume and cancel, detached runs, and progress events.
//!
//! Status moves `running` → `succeeded` | `failed` | `canceled` | `paused`;
//! `paused` → `running` on [`BackupJobs::resume`]. A job whose retry budget
//! ran out is paused with its error attached. A `running` job that no
//! process runs (after a crash or restart) can be resumed too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backup::{
    BackupResult, BackupSpec, Host, JobControl, JobRun, decode_spec, encode_spec, run_backup,
};
use crate::error::ExecError;
use crate::host::{HostError, JobId, JobKind, JobRecord, JobResult, JobStatus};
use crate::job::mark_resumed;
use crate::progress::{NoProgress, ProgressEvent, ProgressListener};
use crate::settings::BackupSettings;

/// Starts and controls backup jobs on one host. Cheap to clone.
#[derive(Clone)]
pub struct BackupJobs {
    host: Host,
    settings: BackupSettings,
    listener: Arc<dyn ProgressListener>,
    tasks: Tasks<BackupResult>,
}

impl BackupJobs {
    /// A registry over `host` with `settings`.
    pub fn new(host: Host, settings: BackupSettings) -> BackupJobs {
        BackupJobs {
            host,
            settings,
            listener: Arc::new(NoProgress),
            tasks: Tasks::new("backup"),
        }
    }

    /// Sends progress events to `listener`.
    pub fn with_listener(mut self, listener: Arc<dyn ProgressListener>) -> BackupJobs {
        self.listener = listener;
        self
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Registers and runs a backup. Waits for it unless `spec.detached`, in
    /// which case the job's id comes back at once with status `running`.
    pub async fn backup(&self, spec: BackupSpec) -> Result<BackupResult, ExecError> {
        let now = self.host.clock.now();
        let record = JobRecord::started(
            JobKind::Backup,
            spec.redacted_description(),
            spec.user.clone(),
            now,
            encode_spec(&spec),
        );
        let id = self.host.jobs.create(&record)?;
        self.start(id, spec).await
    }

    /// Resumes a paused job (or a `running` one no process runs any more),
    /// from its last checkpoint.
    pub async fn resume(&self, id: JobId) -> Result<BackupResult, ExecError> {
        if !self.tasks.settle(id, self.job(id)?.status).await {
            return Err(state_error(id, JobStatus::Running, "it is already running"));
        }
        let payload = mark_resumed(self.host.jobs.as_ref(), id, JobKind::Backup)?;
        let spec = decode_spec(&payload)?;
        self.status_event(id, JobStatus::Running);
        self.start(id, spec).await
    }

    async fn start(&self, id: JobId, spec: BackupSpec) -> Result<BackupResult, ExecError> {
        let (tx, rx) = watch::channel(JobControl::Run);
        let detached = spec.detached;
        let this = self.clone();
        let run = async move {
            let run = JobRun {
                host: &this.host,
                settings: &this.settings,
                listener: &this.listener,
                job: id,
                spec: &spec,
            };
            let r = run_backup(run, rx).await;
            this.conclude(id, r)
        };
        self.tasks
            .run(id, tx, detached.then(|| JobResult::started(id)), run)
            .await
    }

    /// Records the outcome of a run in the job store.
    fn conclude(
        &self,
        id: JobId,
        r: Result<BackupResult, ExecError>,
    ) -> Result<BackupResult, ExecError> {
        if matches!(r, Err(ExecError::Interrupted(_))) {
            // The runtime is going away: leave the job `running`, like a crash.
            return r;
        }
        let now = self.host.clock.now();
        let (status, error) = match &r {
            Ok(_) => (JobStatus::Succeeded, None),
            Err(ExecError::Paused(_)) => (JobStatus::Paused, None),
            Err(e @ ExecError::RetriesExhausted { .. }) => (JobStatus::Paused, Some(e.to_string())),
            Err(ExecError::Canceled(_)) => (JobStatus::Canceled, None),
            Err(e) => (JobStatus::Failed, Some(e.to_string())),
        };
        let mut status = status;
        let record = self.host.jobs.update(id, &mut |rec| {
            // A cancel that raced with the run stopping for another reason
            // (a pause, retries exhausted) wins; a run that succeeded stays
            // succeeded (its manifest is written: it is a backup).
            if rec.status == JobStatus::CancelRequested && status == JobStatus::Paused {
                status = JobStatus::Canceled;
            }
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
        if matches!(status, JobStatus::Failed | JobStatus::Canceled) {
            self.release_protection(&record);
        }
        self.status_event(id, status);
        r
    }

    /// Drops the protected timestamp of a job that will not continue.
    fn release_protection(&self, record: &JobRecord) {
        if let Ok(layer) = crate::backup::decode_layer(&record.progress)
            && let Some(p) = layer
        {
            let _ = self.host.protector.release(p);
        }
    }

    fn status_event(&self, job: JobId, status: JobStatus) {
        self.listener.event(&ProgressEvent::Status { job, status });
    }

    /// Asks a running job to pause at its next chunk boundary (after a checkpoint).
    pub fn pause(&self, id: JobId) -> Result<(), ExecError> {
        self.control(id, JobControl::Pause, JobStatus::PauseRequested)
    }

    /// Cancels a job: a running one stops (its status is `cancel-requested`
    /// until it does); a paused one, or a `running` one no process runs, is
    /// canceled at once. Either way its protected timestamp is released and
    /// no manifest is written.
    pub fn cancel(&self, id: JobId) -> Result<(), ExecError> {
        let live = self.tasks.live(id);
        let now = self.host.clock.now();
        let mut at_once = false;
        let record = self.host.jobs.update(id, &mut |r| {
            if r.status.is_terminal() {
                return Err(HostError::Invalid(format!(
                    "job {id} is {}: it cannot be canceled",
                    r.status.as_str()
                )));
            }
            at_once = !live || r.status == JobStatus::Paused;
            if at_once {
                r.status = JobStatus::Canceled;
                r.finished = Some(now);
            } else {
                r.status = JobStatus::CancelRequested;
            }
            Ok(())
        })?;
        if at_once {
            self.release_protection(&record);
            self.status_event(id, JobStatus::Canceled);
        } else {
            self.tasks.signal(id, JobControl::Cancel);
        }
        Ok(())
    }

    /// Asks a running job to stop with `c`, after recording `status`
    /// (first, so the job's own final status overwrites it).
    fn control(&self, id: JobId, c: JobControl, status: JobStatus) -> Result<(), ExecError> {
        if !self.tasks.live(id) {
            let record = self.host.jobs.get(id)?.ok_or(ExecError::JobNotFound(id))?;
            return Err(state_error(
                id,
                record.status,
                "it is not running in this process",
            ));
        }
        self.host.jobs.update(id, &mut |r| match r.status {
            JobStatus::Running | JobStatus::PauseRequested => {
                r.status = status;
                Ok(())
            }
            s => Err(HostError::Invalid(format!(
                "job {id} is {}: it is not running",
                s.as_str()
            ))),
        })?;
        self.tasks.signal(id, c);
        Ok(())
    }

    /// Waits for a detached job started by this registry to stop.
    pub async fn wait(&self, id: JobId) -> Result<BackupResult, ExecError> {
        match self.tasks.wait(id).await {
            Some(r) => r,
            None => {
                let record = self.job(id)?;
                Err(state_error(
                    id,
                    record.status,
                    "this process is not running it",
                ))
            }
        }
    }

    /// The job's record.
    pub fn job(&self, id: JobId) -> Result<JobRecord, ExecError> {
        self.host.jobs.get(id)?.ok_or(ExecError::JobNotFound(id))
    }
}

/// The tasks that run a registry's jobs in this process: each job's control
/// channel and, while nobody waits for it, its task. Shared by the backup
/// and restore registries. Cheap to clone.
pub(crate) struct Tasks<R> {
    /// `backup` or `restore`, for errors.
    kind: &'static str,
    running: Arc<Mutex<HashMap<JobId, Task<R>>>>,
}

struct Task<R> {
    control: watch::Sender<JobControl>,
    /// `None` while a caller awaits the job in [`Tasks::run`] or [`Tasks::wait`].
    handle: Option<JoinHandle<Result<R, ExecError>>>,
}

impl<R> Clone for Tasks<R> {
    fn clone(&self) -> Self {
        Tasks {
            kind: self.kind,
            running: self.running.clone(),
        }
    }
}

impl<R: Send + 'static> Tasks<R> {
    pub(crate) fn new(kind: &'static str) -> Tasks<R> {
        Tasks {
            kind,
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Task<R>>> {
        match self.running.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Whether a task of this process still runs job `id` (a detached job
    /// that stopped but was not waited for does not).
    pub(crate) fn live(&self, id: JobId) -> bool {
        self.running()
            .get(&id)
            .is_some_and(|r| r.handle.as_ref().is_none_or(|h| !h.is_finished()))
    }

    /// Runs job `id` as a task controlled through `control`. With
    /// `detached = Some(started)` returns `started` at once (the task runs
    /// on until [`Tasks::wait`]); otherwise waits for the job's outcome.
    pub(crate) async fn run(
        &self,
        id: JobId,
        control: watch::Sender<JobControl>,
        detached: Option<R>,
        job: impl std::future::Future<Output = Result<R, ExecError>> + Send + 'static,
    ) -> Result<R, ExecError> {
        let handle = tokio::spawn(job);
        if let Some(started) = detached {
            self.running().insert(
                id,
                Task {
                    control,
                    handle: Some(handle),
                },
            );
            return Ok(started);
        }
        self.running().insert(
            id,
            Task {
                control,
                handle: None,
            },
        );
        self.join(id, handle).await
    }

    /// Before a resume: whether no task of this process runs job `id`,
    /// whose record says `status`. A run that recorded its pause is ending:
    /// this waits for its task to stop rather than call it still running.
    pub(crate) async fn settle(&self, id: JobId, status: JobStatus) -> bool {
        if !self.live(id) {
            return true;
        }
        if status != JobStatus::Paused {
            return false;
        }
        if let Some(outcome) = self.wait(id).await {
            drop(outcome);
            return true;
        }
        // Someone else awaits the task: it stops right after its pause.
        for _ in 0..5_000 {
            if !self.live(id) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        false
    }

    /// Sends `c` to job `id`'s task, if this process runs it.
    pub(crate) fn signal(&self, id: JobId, c: JobControl) {
        if let Some(task) = self.running().get(&id) {
            let _ = task.control.send(c);
        }
    }

    /// The outcome of detached job `id`, or `None` if no task of this
    /// process runs it (or someone already waits for it).
    pub(crate) async fn wait(&self, id: JobId) -> Option<Result<R, ExecError>> {
        let handle = self.running().get_mut(&id).and_then(|t| t.handle.take())?;
        Some(self.join(id, handle).await)
    }

    async fn join(
        &self,
        id: JobId,
        handle: JoinHandle<Result<R, ExecError>>,
    ) -> Result<R, ExecError> {
        let r = handle
            .await
            .map_err(|e| ExecError::Internal(format!("{} job {id}: {e}", self.kind)));
        self.running().remove(&id);
        r?
    }
}

/// The error for a job whose status does not allow what was asked.
pub(crate) fn state_error(id: JobId, status: JobStatus, what: &str) -> ExecError {
    ExecError::JobState {
        id,
        status: status.as_str(),
        what: what.to_string(),
    }
}

/// `description` with each of `uris` replaced by its redacted form and the
/// passphrase by `redacted`: what job records and SHOW JOBS may show.
pub(crate) fn redact_description<'a>(
    description: &str,
    uris: impl IntoIterator<Item = &'a String>,
    passphrase: Option<&str>,
) -> String {
    let mut d = description.to_string();
    for uri in uris {
        if !uri.is_empty() {
            d = d.replace(uri.as_str(), &backup_storage::redact_uri(uri));
        }
    }
    if let Some(p) = passphrase.filter(|p| !p.is_empty()) {
        d = d.replace(p, "redacted");
    }
    d
}
