//! The persisted job model a host stores through [`JobStore`]: what a job
//! is ([`JobKind`]), where it stands ([`JobStatus`]) and its record
//! ([`JobRecord`]), with the opaque spec and checkpoint the jobs keep in it.

use backup_format::Timestamp;

use crate::host::HostError;

/// The id of a job.
pub type JobId = u64;

/// What a job does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum JobKind {
    /// A backup.
    Backup,
    /// A restore.
    Restore,
}

impl JobKind {
    /// The upper-case name `SHOW JOBS` prints (`BACKUP`, `RESTORE`).
    pub fn as_str(&self) -> &'static str {
        match self {
            JobKind::Backup => "BACKUP",
            JobKind::Restore => "RESTORE",
        }
    }
}

/// A job's state.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum JobStatus {
    /// Being executed.
    Running,
    /// Paused by a user or by repeated failures; can be resumed.
    Paused,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Canceled by a user.
    Canceled,
    /// A pause was asked for; the job stops at its next checkpoint.
    PauseRequested,
    /// A cancel was asked for; the job stops and cleans up.
    CancelRequested,
}

impl JobStatus {
    /// The lower-case name `SHOW JOBS` prints (`running`, `pause-requested`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Paused => "paused",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
            JobStatus::PauseRequested => "pause-requested",
            JobStatus::CancelRequested => "cancel-requested",
        }
    }

    /// Inverse of [`JobStatus::as_str`].
    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "running" => JobStatus::Running,
            "paused" => JobStatus::Paused,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "canceled" => JobStatus::Canceled,
            "pause-requested" => JobStatus::PauseRequested,
            "cancel-requested" => JobStatus::CancelRequested,
            _ => return None,
        })
    }

    /// Whether the job is over (succeeded, failed or canceled).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Canceled
        )
    }
}

/// A persisted job.
#[derive(Clone, PartialEq, Debug)]
pub struct JobRecord {
    /// Assigned by [`JobStore::create`].
    pub id: JobId,
    /// Backup or restore.
    pub kind: JobKind,
    /// The statement, with secrets redacted.
    pub description: String,
    /// Who started it.
    pub user: String,
    /// Current state.
    pub status: JobStatus,
    /// When it was created.
    pub created: Timestamp,
    /// When it first ran.
    pub started: Option<Timestamp>,
    /// When it reached a terminal state.
    pub finished: Option<Timestamp>,
    /// Progress in `[0, 1]`.
    pub fraction_completed: f64,
    /// The error of a failed (or paused-by-failure) job.
    pub error: Option<String>,
    /// The job's spec, opaque to the store.
    pub payload: Vec<u8>,
    /// The job's latest checkpoint, opaque to the store.
    pub progress: Vec<u8>,
    /// The schedule that started it (`None`: started by a statement).
    pub created_by_schedule: Option<u64>,
}

impl JobRecord {
    /// A job that starts running `at`, before the store gives it an id.
    pub fn started(
        kind: JobKind,
        description: String,
        user: String,
        at: Timestamp,
        payload: Vec<u8>,
    ) -> JobRecord {
        JobRecord {
            id: 0,
            kind,
            description,
            user,
            status: JobStatus::Running,
            created: at,
            started: Some(at),
            finished: None,
            fraction_completed: 0.0,
            error: None,
            payload,
            progress: Vec::new(),
            created_by_schedule: None,
        }
    }
}

/// Persisted job records.
pub trait JobStore: Send + Sync {
    /// Stores a new record and returns its id (the store assigns it; `record.id`
    /// is ignored).
    fn create(&self, record: &JobRecord) -> Result<JobId, HostError>;

    /// Atomically reads, changes and writes back one record (so a user's
    /// `PAUSE` and the job's own progress update do not overwrite each other);
    /// returns the record as written. If `change` fails nothing is written.
    fn update(
        &self,
        id: JobId,
        change: &mut dyn FnMut(&mut JobRecord) -> Result<(), HostError>,
    ) -> Result<JobRecord, HostError>;

    /// One record, or `None` if there is no such job.
    fn get(&self, id: JobId) -> Result<Option<JobRecord>, HostError>;

    /// Every record, by id.
    fn list(&self) -> Result<Vec<JobRecord>, HostError>;
}

/// Marks job `id`, which must be a `kind` job that is paused (or running
/// with no process running it), as running again and returns its payload:
/// the first step of resuming a backup or a restore.
pub(crate) fn mark_resumed(
    jobs: &dyn JobStore,
    id: JobId,
    kind: JobKind,
) -> Result<Vec<u8>, HostError> {
    let mut payload = Vec::new();
    jobs.update(id, &mut |r| {
        if r.kind != kind {
            return Err(HostError::Invalid(format!(
                "job {id} is not a {}",
                kind.as_str().to_lowercase()
            )));
        }
        match r.status {
            JobStatus::Paused | JobStatus::Running | JobStatus::PauseRequested => {}
            s => {
                return Err(HostError::Invalid(format!(
                    "job {id} is {}: only a paused job can be resumed",
                    s.as_str()
                )));
            }
        }
        r.status = JobStatus::Running;
        r.error = None;
        payload = r.payload.clone();
        Ok(())
    })?;
    Ok(payload)
}

/// What a finished, stopped or detached backup or restore reports: the
/// columns of the BACKUP and RESTORE statements' result.
#[derive(Clone, PartialEq, Debug)]
pub struct JobResult {
    /// The job.
    pub job_id: JobId,
    /// Its status when this was returned.
    pub status: JobStatus,
    /// Progress in `[0, 1]`.
    pub fraction_completed: f64,
    /// Rows backed up or restored.
    pub rows: u64,
    /// Secondary index entries backed up or restored.
    pub index_entries: u64,
    /// Raw bytes (keys and values) backed up or restored.
    pub bytes: u64,
}

impl JobResult {
    /// A job just started and running on (a detached statement's result).
    pub fn started(job_id: JobId) -> JobResult {
        JobResult {
            job_id,
            status: JobStatus::Running,
            fraction_completed: 0.0,
            rows: 0,
            index_entries: 0,
            bytes: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryJobStore;

    #[test]
    fn only_a_paused_job_of_the_asked_kind_is_marked_resumed() {
        let store = MemoryJobStore::default();
        let mut record = JobRecord::started(
            JobKind::Restore,
            "RESTORE".into(),
            "root".into(),
            Timestamp::from_wall(1),
            b"spec".to_vec(),
        );
        record.status = JobStatus::Paused;
        record.error = Some("paused after retries".into());
        let id = store.create(&record).unwrap();
        let before = store.get(id).unwrap().unwrap();

        // The wrong kind, and the job is left as it was.
        let e = mark_resumed(&store, id, JobKind::Backup).unwrap_err();
        assert!(e.to_string().contains("not a backup"), "{e}");
        assert_eq!(store.get(id).unwrap().unwrap(), before);

        let payload = mark_resumed(&store, id, JobKind::Restore).unwrap();
        assert_eq!(payload, b"spec");
        let after = store.get(id).unwrap().unwrap();
        assert_eq!(after.status, JobStatus::Running);
        assert_eq!(after.error, None);

        // A finished job is not resumed.
        store
            .update(id, &mut |r| {
                r.status = JobStatus::Succeeded;
                Ok(())
            })
            .unwrap();
        let e = mark_resumed(&store, id, JobKind::Restore).unwrap_err();
        assert!(e.to_string().contains("only a paused job"), "{e}");
    }
}
