//! Persisted job records: the cluster as a [`JobStore`].
//!
//! Each job is an MVCC row of the system table `system.jobs`
//! ([`JOBS_TABLE_ID`]), keyed by job id (an order-preserving `INT` key), its
//! value a versioned binary encoding of [`JobRecord`]. Records therefore
//! persist with the store, read as of any time ([`Cluster::jobs_at`]) and
//! travel in a backup of [`crate::catalog::system_spans`]. Job ids come from a
//! counter that never hands an id out twice.
//!
//! [`JobStore::update`] reads, changes and writes the row under the cluster's
//! commit lock, which every other writer of the row takes too: updates of one
//! job never lose each other's changes. The change must not commit SQL
//! transactions on this cluster (the lock is held during the change).

use backup_exec::{HostError, JobId, JobKind, JobRecord, JobStatus, JobStore};
use backup_format::Timestamp;

use crate::catalog::JOBS_TABLE_ID;
use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::ranges::next_counter;
use crate::records::{self, Reader, Writer};

/// Encoding version of a stored job record: 2 appends the creating schedule
/// to version 1, which is still read (as created by no schedule).
const JOB_ENCODING: u8 = 2;

/// The first encoding version, without the creating schedule.
const JOB_ENCODING_V1: u8 = 1;

impl Cluster {
    /// Every job record as of `as_of`, in id order.
    pub fn jobs_at(&self, as_of: Timestamp) -> Result<Vec<JobRecord>, ClusterError> {
        records::scan(self, JOBS_TABLE_ID, as_of)?
            .iter()
            .map(|v| decode(v))
            .collect()
    }

    /// Job `id` as of `as_of` (`None` if it did not exist then).
    pub fn job_at(&self, id: JobId, as_of: Timestamp) -> Result<Option<JobRecord>, ClusterError> {
        records::read(self, JOBS_TABLE_ID, id, as_of)?
            .map(|v| decode(&v))
            .transpose()
    }
}

impl JobStore for Cluster {
    fn create(&self, record: &JobRecord) -> Result<JobId, HostError> {
        let id = self.write(|tx| next_counter(tx, "next_job_id"))?;
        let stored = JobRecord {
            id,
            ..record.clone()
        };
        records::locked(self, || {
            records::write(self, JOBS_TABLE_ID, id, Some(encode(&stored)))
        })?;
        Ok(id)
    }

    fn update(
        &self,
        id: JobId,
        change: &mut dyn FnMut(&mut JobRecord) -> Result<(), HostError>,
    ) -> Result<JobRecord, HostError> {
        records::locked(self, || {
            let mut record = self
                .job_at(id, self.now()?)?
                .ok_or_else(|| HostError::NotFound(format!("job {id}")))?;
            // On error nothing is written.
            change(&mut record)?;
            record.id = id;
            records::write(self, JOBS_TABLE_ID, id, Some(encode(&record)))?;
            Ok(record)
        })
    }

    fn get(&self, id: JobId) -> Result<Option<JobRecord>, HostError> {
        Ok(self.job_at(id, self.now()?)?)
    }

    fn list(&self) -> Result<Vec<JobRecord>, HostError> {
        Ok(self.jobs_at(self.now()?)?)
    }
}

const STATUSES: [JobStatus; 7] = [
    JobStatus::Running,
    JobStatus::Paused,
    JobStatus::Succeeded,
    JobStatus::Failed,
    JobStatus::Canceled,
    JobStatus::PauseRequested,
    JobStatus::CancelRequested,
];

/// Version byte, then id, kind, status, created, started, finished, fraction,
/// error flag, length-prefixed description, user, error, payload, progress,
/// and (version 2) a flag byte then the creating schedule's id.
fn encode(r: &JobRecord) -> Vec<u8> {
    let mut w = Writer::new(JOB_ENCODING);
    w.u64(r.id);
    w.u8(match r.kind {
        JobKind::Backup => 0,
        JobKind::Restore => 1,
    });
    w.u8(STATUSES.iter().position(|s| *s == r.status).unwrap_or(0) as u8);
    w.ts(r.created);
    w.opt_ts(r.started);
    w.opt_ts(r.finished);
    w.u64(r.fraction_completed.to_bits());
    w.u8(u8::from(r.error.is_some()));
    w.bytes(r.description.as_bytes());
    w.bytes(r.user.as_bytes());
    w.bytes(r.error.as_deref().unwrap_or("").as_bytes());
    w.bytes(&r.payload);
    w.bytes(&r.progress);
    w.u8(u8::from(r.created_by_schedule.is_some()));
    w.u64(r.created_by_schedule.unwrap_or(0));
    w.0
}

fn decode(v: &[u8]) -> Result<JobRecord, ClusterError> {
    let version = match v.first() {
        Some(&JOB_ENCODING_V1) => JOB_ENCODING_V1,
        _ => JOB_ENCODING,
    };
    let mut r = Reader::new(v, version, "a job record")?;
    let id = r.u64()?;
    let kind = match r.u8()? {
        0 => JobKind::Backup,
        1 => JobKind::Restore,
        k => {
            return Err(ClusterError::Corrupt(format!(
                "job {id} has unknown kind {k}"
            )));
        }
    };
    let status = *STATUSES
        .get(usize::from(r.u8()?))
        .ok_or_else(|| ClusterError::Corrupt(format!("job {id} has an unknown status")))?;
    let created = r.ts()?;
    let started = r.opt_ts()?;
    let finished = r.opt_ts()?;
    let fraction_completed = f64::from_bits(r.u64()?);
    let has_error = r.u8()? != 0;
    let description = r.string()?;
    let user = r.string()?;
    let error = r.string()?;
    let payload = r.bytes()?;
    let progress = r.bytes()?;
    let created_by_schedule = if version == JOB_ENCODING_V1 {
        None
    } else {
        let has = r.u8()? != 0;
        let id = r.u64()?;
        has.then_some(id)
    };
    r.finish()?;
    Ok(JobRecord {
        id,
        kind,
        description,
        user,
        status,
        created,
        started,
        finished,
        fraction_completed,
        error: has_error.then_some(error),
        payload,
        progress,
        created_by_schedule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> JobRecord {
        let mut r = JobRecord::started(
            JobKind::Backup,
            "BACKUP INTO 'nodelocal://1/b'".into(),
            "root".into(),
            Timestamp::new(5, 1),
            vec![1, 2],
        );
        r.id = 3;
        r.progress = vec![7];
        r
    }

    #[test]
    fn encoding_round_trips_with_and_without_a_schedule() {
        let mut r = record();
        assert_eq!(decode(&encode(&r)).unwrap(), r);
        r.created_by_schedule = Some(42);
        let bytes = encode(&r);
        assert_eq!(decode(&bytes).unwrap(), r);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
    }

    #[test]
    fn version_1_records_still_read() {
        let mut r = record();
        r.created_by_schedule = Some(9);
        let mut v1 = encode(&r);
        v1.truncate(v1.len() - 9);
        v1[0] = JOB_ENCODING_V1;
        let old = decode(&v1).unwrap();
        assert_eq!(old.created_by_schedule, None);
        assert_eq!(old.description, r.description);
        assert_eq!(old.progress, r.progress);
    }
}
