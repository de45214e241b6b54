//! Persisted job records: the cluster as a [`JobStore`].
//!
//! Records live in the engine's `jobs` table (job id -> encoded record), so
//! they survive restarts. [`JobStore::update`] runs its change inside one
//! engine write transaction: updates of one job never lose each other's
//! changes. The change must not call back into the cluster (the engine has a
//! single writer, held during the change).

use backup_exec::{HostError, JobId, JobKind, JobRecord, JobStatus, JobStore};
use backup_format::Timestamp;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::cluster::Cluster;
use crate::error::{ClusterError, storage};
use crate::ranges::next_counter;

/// Engine table of job records: job id -> encoded [`JobRecord`].
pub(crate) const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");

impl JobStore for Cluster {
    fn create(&self, record: &JobRecord) -> Result<JobId, HostError> {
        Ok(self.write(|tx| {
            let id = next_counter(tx, "next_job_id")?;
            let mut jobs = tx
                .open_table(JOBS)
                .map_err(|e| storage("opening jobs")(&e))?;
            let stored = JobRecord {
                id,
                ..record.clone()
            };
            jobs.insert(id, encode(&stored).as_slice())
                .map_err(|e| storage("writing a job")(&e))?;
            Ok(id)
        })?)
    }

    fn update(
        &self,
        id: JobId,
        change: &mut dyn FnMut(&mut JobRecord) -> Result<(), HostError>,
    ) -> Result<JobRecord, HostError> {
        let tx = self
            .inner
            .db
            .begin_write()
            .map_err(|e| HostError::from(storage("starting a job update")(&e)))?;
        let record = {
            let mut jobs = tx
                .open_table(JOBS)
                .map_err(|e| HostError::from(storage("opening jobs")(&e)))?;
            let current = jobs
                .get(id)
                .map_err(|e| HostError::from(storage("reading a job")(&e)))?
                .map(|v| decode(v.value()))
                .transpose()?
                .ok_or_else(|| HostError::NotFound(format!("job {id}")))?;
            let mut record = current;
            // On error the transaction is dropped, which aborts it: nothing is written.
            change(&mut record)?;
            record.id = id;
            jobs.insert(id, encode(&record).as_slice())
                .map_err(|e| HostError::from(storage("writing a job")(&e)))?;
            record
        };
        tx.commit()
            .map_err(|e| HostError::from(storage("committing a job update")(&e)))?;
        Ok(record)
    }

    fn get(&self, id: JobId) -> Result<Option<JobRecord>, HostError> {
        let tx = self
            .inner
            .db
            .begin_read()
            .map_err(|e| HostError::from(storage("reading jobs")(&e)))?;
        let jobs = tx
            .open_table(JOBS)
            .map_err(|e| HostError::from(storage("opening jobs")(&e)))?;
        let v = jobs
            .get(id)
            .map_err(|e| HostError::from(storage("reading a job")(&e)))?;
        Ok(v.map(|v| decode(v.value())).transpose()?)
    }

    fn list(&self) -> Result<Vec<JobRecord>, HostError> {
        let tx = self
            .inner
            .db
            .begin_read()
            .map_err(|e| HostError::from(storage("reading jobs")(&e)))?;
        let jobs = tx
            .open_table(JOBS)
            .map_err(|e| HostError::from(storage("opening jobs")(&e)))?;
        let mut out = Vec::new();
        for item in jobs
            .iter()
            .map_err(|e| HostError::from(storage("listing jobs")(&e)))?
        {
            let (_, v) = item.map_err(|e| HostError::from(storage("listing jobs")(&e)))?;
            out.push(decode(v.value())?);
        }
        Ok(out)
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

fn encode(r: &JobRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + r.payload.len() + r.progress.len());
    out.extend_from_slice(&r.id.to_be_bytes());
    out.push(match r.kind {
        JobKind::Backup => 0,
        JobKind::Restore => 1,
    });
    out.push(STATUSES.iter().position(|s| *s == r.status).unwrap_or(0) as u8);
    out.extend_from_slice(&r.created.to_bytes());
    for t in [r.started, r.finished] {
        match t {
            Some(t) => {
                out.push(1);
                out.extend_from_slice(&t.to_bytes());
            }
            None => out.push(0),
        }
    }
    out.extend_from_slice(&r.fraction_completed.to_bits().to_be_bytes());
    out.push(u8::from(r.error.is_some()));
    for field in [
        r.description.as_bytes(),
        r.user.as_bytes(),
        r.error.as_deref().unwrap_or("").as_bytes(),
        &r.payload,
        &r.progress,
    ] {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// A cursor over an encoded record.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ClusterError> {
        if self.0.len() < n {
            return Err(ClusterError::Corrupt("a job record is truncated".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, ClusterError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    fn ts(&mut self) -> Result<Timestamp, ClusterError> {
        let mut b = [0u8; Timestamp::ENCODED_LEN];
        b.copy_from_slice(self.take(Timestamp::ENCODED_LEN)?);
        Ok(Timestamp::from_bytes(b))
    }

    fn opt_ts(&mut self) -> Result<Option<Timestamp>, ClusterError> {
        Ok(match self.take(1)?[0] {
            0 => None,
            _ => Some(self.ts()?),
        })
    }

    fn bytes(&mut self) -> Result<Vec<u8>, ClusterError> {
        let n = usize::try_from(self.u64()?)
            .map_err(|_| ClusterError::Corrupt("a job field is too long".into()))?;
        Ok(self.take(n)?.to_vec())
    }

    fn string(&mut self) -> Result<String, ClusterError> {
        String::from_utf8(self.bytes()?)
            .map_err(|_| ClusterError::Corrupt("a job field is not UTF-8".into()))
    }
}

fn decode(v: &[u8]) -> Result<JobRecord, ClusterError> {
    let mut r = Reader(v);
    let id = r.u64()?;
    let kind = match r.take(1)?[0] {
        0 => JobKind::Backup,
        _ => JobKind::Restore,
    };
    let status = *STATUSES
        .get(usize::from(r.take(1)?[0]))
        .ok_or_else(|| ClusterError::Corrupt(format!("job {id} has an unknown status")))?;
    let created = r.ts()?;
    let started = r.opt_ts()?;
    let finished = r.opt_ts()?;
    let fraction_completed = f64::from_bits(r.u64()?);
    let has_error = r.take(1)?[0] != 0;
    let description = r.string()?;
    let user = r.string()?;
    let error = r.string()?;
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
        payload: r.bytes()?,
        progress: r.bytes()?,
    })
}
