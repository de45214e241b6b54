//! Persisted schedule records: the table a backup scheduler keeps its
//! schedules in.
//!
//! Each schedule is an MVCC row of the system table `system.scheduled_jobs`
//! ([`SCHEDULES_TABLE_ID`]), keyed by schedule id (an order-preserving `INT`
//! key), its value a versioned binary encoding of [`ScheduleRecord`]. Like job
//! records they persist with the store, read as of any time
//! ([`Cluster::schedules_at`]) and travel in a backup of
//! [`crate::catalog::system_spans`].
//!
//! The cluster is also `backup-exec`'s [`ScheduleStore`]: a
//! [`BackupSchedule`] is stored as a record whose `schedule_expr` is its
//! recurrence and whose `payload` and `state` are the encodings of its
//! [`backup_exec::schedule::ScheduleDetails`] and
//! [`backup_exec::schedule::ScheduleState`]. The scheduler that runs them
//! is in [`crate::scheduler`].
//!
//! # For other writers of schedule records (a cluster restore)
//!
//! A record's fields mean the same to every writer: `paused` pauses the
//! schedule (set it with [`Cluster::update_schedule`]; `RESUME SCHEDULE`
//! clears it), `next_run` is when it runs next (`None` while paused), and
//! an empty `state` resets what the scheduler remembers (running jobs,
//! protected chain) — the right thing for schedules restored into another
//! cluster, whose jobs and protections are not there.

use backup_exec::HostError;
use backup_exec::schedule::{BackupSchedule, ScheduleDetails, ScheduleState, ScheduleStore};
use backup_format::Timestamp;

use crate::catalog::SCHEDULES_TABLE_ID;
use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::ranges::next_counter;
use crate::records::{self, Reader, Writer};

/// Encoding version of a stored schedule record.
const SCHEDULE_ENCODING: u8 = 1;

/// A schedule id (never handed out twice).
pub type ScheduleId = u64;

/// One schedule, as stored. This shape is stable: other writers (a cluster
/// restore) may rely on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRecord {
    /// Its id ([`Cluster::create_schedule`] assigns it; ignored on input).
    pub id: ScheduleId,
    /// Its label (a name for people; not unique).
    pub label: String,
    /// The user who owns it.
    pub owner: String,
    /// When it runs: a cron expression (stored as given, not checked here).
    pub schedule_expr: String,
    /// When it runs next (`None`: not planned).
    pub next_run: Option<Timestamp>,
    /// A paused schedule does not run.
    pub paused: bool,
    /// What it runs, opaque to the cluster (for backup schedules, the
    /// encoded `ScheduleDetails`: the backup statement and the policies).
    pub payload: Vec<u8>,
    /// The executor's state, opaque to the cluster (for backup schedules,
    /// the encoded `ScheduleState`; empty: no history).
    pub state: Vec<u8>,
}

impl ScheduleRecord {
    /// The record of a backup schedule.
    pub fn from_backup_schedule(s: &BackupSchedule) -> ScheduleRecord {
        ScheduleRecord {
            id: s.id,
            label: s.label.clone(),
            owner: s.owner.clone(),
            schedule_expr: s.recurrence.clone(),
            next_run: s.next_run,
            paused: s.paused,
            payload: s.details.encode(),
            state: s.state.encode(),
        }
    }

    /// The backup schedule this record holds (an error if it holds none).
    pub fn to_backup_schedule(&self) -> Result<BackupSchedule, ClusterError> {
        let corrupt =
            |e: backup_exec::ExecError| ClusterError::Corrupt(format!("schedule {}: {e}", self.id));
        Ok(BackupSchedule {
            id: self.id,
            label: self.label.clone(),
            owner: self.owner.clone(),
            recurrence: self.schedule_expr.clone(),
            next_run: self.next_run,
            paused: self.paused,
            details: ScheduleDetails::decode(&self.payload).map_err(corrupt)?,
            state: ScheduleState::decode(&self.state).map_err(corrupt)?,
        })
    }
}

impl Cluster {
    /// Stores a new schedule under a fresh id and returns the id.
    pub fn create_schedule(&self, record: &ScheduleRecord) -> Result<ScheduleId, ClusterError> {
        let id = self.write(|tx| next_counter(tx, "next_schedule_id"))?;
        let stored = ScheduleRecord {
            id,
            ..record.clone()
        };
        records::locked(self, || {
            records::write(self, SCHEDULES_TABLE_ID, id, Some(encode(&stored)))
        })?;
        Ok(id)
    }

    /// Changes schedule `id` atomically: reads it, applies `change` and
    /// writes the result, all under the cluster's commit lock, so concurrent
    /// updates never lose each other's changes. If `change` fails nothing is
    /// written. `change` must not commit SQL transactions on this cluster.
    ///
    /// Fails with [`ClusterError::UnknownSchedule`] if there is no such schedule.
    pub fn update_schedule(
        &self,
        id: ScheduleId,
        change: impl FnOnce(&mut ScheduleRecord) -> Result<(), ClusterError>,
    ) -> Result<ScheduleRecord, ClusterError> {
        records::locked(self, || {
            let mut record = self
                .schedule(id)?
                .ok_or(ClusterError::UnknownSchedule(id))?;
            change(&mut record)?;
            record.id = id;
            records::write(self, SCHEDULES_TABLE_ID, id, Some(encode(&record)))?;
            Ok(record)
        })
    }

    /// Schedule `id` now (`None` if there is none).
    pub fn schedule(&self, id: ScheduleId) -> Result<Option<ScheduleRecord>, ClusterError> {
        self.schedule_at(id, self.now()?)
    }

    /// Every schedule now, in id order.
    pub fn schedules(&self) -> Result<Vec<ScheduleRecord>, ClusterError> {
        self.schedules_at(self.now()?)
    }

    /// Schedule `id` as of `as_of` (`None` if it did not exist then).
    pub fn schedule_at(
        &self,
        id: ScheduleId,
        as_of: Timestamp,
    ) -> Result<Option<ScheduleRecord>, ClusterError> {
        records::read(self, SCHEDULES_TABLE_ID, id, as_of)?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Every schedule as of `as_of`, in id order.
    pub fn schedules_at(&self, as_of: Timestamp) -> Result<Vec<ScheduleRecord>, ClusterError> {
        records::scan(self, SCHEDULES_TABLE_ID, as_of)?
            .iter()
            .map(|v| decode(v))
            .collect()
    }

    /// Deletes schedule `id` (an MVCC tombstone: reads as of earlier times
    /// still see it). Fails with [`ClusterError::UnknownSchedule`] if there
    /// is no such schedule.
    pub fn drop_schedule(&self, id: ScheduleId) -> Result<(), ClusterError> {
        records::locked(self, || {
            if self.schedule(id)?.is_none() {
                return Err(ClusterError::UnknownSchedule(id));
            }
            records::write(self, SCHEDULES_TABLE_ID, id, None)?;
            Ok(())
        })
    }
}

impl ScheduleStore for Cluster {
    fn create(&self, schedule: &BackupSchedule) -> Result<u64, HostError> {
        Ok(self.create_schedule(&ScheduleRecord::from_backup_schedule(schedule))?)
    }

    fn update(
        &self,
        id: u64,
        change: &mut dyn FnMut(&mut BackupSchedule) -> Result<(), HostError>,
    ) -> Result<BackupSchedule, HostError> {
        let mut refused = None;
        let written = self.update_schedule(id, |rec| {
            let mut s = rec.to_backup_schedule()?;
            if let Err(e) = change(&mut s) {
                let msg = e.to_string();
                refused = Some(e);
                return Err(ClusterError::Invalid(msg));
            }
            *rec = ScheduleRecord::from_backup_schedule(&s);
            Ok(())
        });
        match (written, refused) {
            (Ok(rec), _) => Ok(rec.to_backup_schedule()?),
            (Err(_), Some(e)) => Err(e),
            (Err(ClusterError::UnknownSchedule(id)), None) => {
                Err(HostError::NotFound(format!("schedule {id}")))
            }
            (Err(e), None) => Err(e.into()),
        }
    }

    fn get(&self, id: u64) -> Result<Option<BackupSchedule>, HostError> {
        Ok(self
            .schedule(id)?
            .map(|r| r.to_backup_schedule())
            .transpose()?)
    }

    /// Every backup schedule; records that hold none are left out.
    fn list(&self) -> Result<Vec<BackupSchedule>, HostError> {
        Ok(self
            .schedules()?
            .iter()
            .filter_map(|r| r.to_backup_schedule().ok())
            .collect())
    }

    fn delete(&self, id: u64) -> Result<(), HostError> {
        match self.drop_schedule(id) {
            Err(ClusterError::UnknownSchedule(id)) => {
                Err(HostError::NotFound(format!("schedule {id}")))
            }
            r => Ok(r?),
        }
    }
}

/// Version byte, then id, next run, paused flag, and length-prefixed label,
/// owner, schedule expression, payload and state.
fn encode(r: &ScheduleRecord) -> Vec<u8> {
    let mut w = Writer::new(SCHEDULE_ENCODING);
    w.u64(r.id);
    w.opt_ts(r.next_run);
    w.u8(u8::from(r.paused));
    w.bytes(r.label.as_bytes());
    w.bytes(r.owner.as_bytes());
    w.bytes(r.schedule_expr.as_bytes());
    w.bytes(&r.payload);
    w.bytes(&r.state);
    w.0
}

fn decode(v: &[u8]) -> Result<ScheduleRecord, ClusterError> {
    let mut r = Reader::new(v, SCHEDULE_ENCODING, "a schedule record")?;
    let id = r.u64()?;
    let next_run = r.opt_ts()?;
    let paused = r.u8()? != 0;
    let record = ScheduleRecord {
        id,
        next_run,
        paused,
        label: r.string()?,
        owner: r.string()?,
        schedule_expr: r.string()?,
        payload: r.bytes()?,
        state: r.bytes()?,
    };
    r.finish()?;
    Ok(record)
}

/// Decodes a stored schedule row (a `system.scheduled_jobs` value, e.g. read
/// from a full-cluster backup by the restore, see `catalog`).
pub fn decode_schedule_row(value: &[u8]) -> Result<ScheduleRecord, ClusterError> {
    decode(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let rec = ScheduleRecord {
            id: 7,
            label: "nightly".into(),
            owner: "root".into(),
            schedule_expr: "@daily".into(),
            next_run: Some(Timestamp::new(9, 2)),
            paused: true,
            payload: b"BACKUP INTO 'x'".to_vec(),
            state: vec![0, 1, 2],
        };
        let bytes = encode(&rec);
        assert_eq!(decode(&bytes).unwrap(), rec);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut other_version = bytes.clone();
        other_version[0] = 2;
        assert!(decode(&other_version).is_err());
        let mut trailing = bytes;
        trailing.push(0);
        assert!(decode(&trailing).is_err());
    }
}
