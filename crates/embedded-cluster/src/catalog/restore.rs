//! The publication of a full-cluster restore
//! ([`backup_exec::Ingest::publish_cluster`]): the restored descriptors and
//! the backed-up system rows, in one catalog transaction.
//!
//! - The target's own default databases (`defaultdb`, `postgres`), empty as
//!   the restore checked, give way to the restored ones.
//! - Descriptors keep every grant and owner as backed up.
//! - `system.users`: users and roles the target lacks are added; those it
//!   has (`root`, `admin`, `public`, or any created before) are kept as
//!   they are.
//! - `system.zones`: each configuration moves to its descriptor's restored
//!   id and applies to GC at once; those of descriptors not restored are
//!   left out.
//! - `system.settings`: written as backed up.
//! - `system.scheduled_jobs`: each schedule comes back **paused** under a
//!   fresh id (pairs of full/incremental schedules point at each other's
//!   new ids; the source's running jobs and chain protection are
//!   forgotten, their ids mean nothing here), so a restored cluster does
//!   not start writing into the source's collection by surprise. Schedules are created just before the
//!   catalog commit and dropped again if it fails.
//! - `system.jobs` is not restored.

use std::collections::BTreeMap;
use std::time::Duration;

use backup_exec::IdRewrites;
use backup_exec::host::SystemRows;
use backup_format::Descriptor;

use super::host::{Grants, write_descriptors};
use super::model::Body;
use super::{
    SCHEDULES_TABLE_ID, SETTINGS_TABLE_ID, Snapshot, USERS_TABLE_ID, ZONES_TABLE_ID, ZoneConfig,
    descriptor_key, system_key, user_name_of_key,
};
use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::schedules::{ScheduleId, ScheduleRecord, decode_schedule_row};
use crate::sql::SqlError;
use crate::sql::kv::KvTxn;
use crate::sql::value::Value;

/// Databases every cluster starts with; a cluster restore replaces them.
const DEFAULT_DATABASES: [&str; 2] = ["defaultdb", "postgres"];

impl Cluster {
    /// Publishes a full-cluster restore (see the module docs): `descriptors`
    /// under their restored ids, and `system` rows written back with
    /// descriptor ids moved through `ids` (backed-up id -> restored id).
    pub fn publish_cluster_restore(
        &self,
        descriptors: &[Descriptor],
        system: &[SystemRows],
        ids: &IdRewrites,
    ) -> Result<(), SqlError> {
        let rows = |table: u64| {
            system
                .iter()
                .filter(move |t| t.table == table)
                .flat_map(|t| t.rows.iter())
        };
        let schedules = self.restore_schedules(rows(SCHEDULES_TABLE_ID))?;
        let published = self.publish_catalog(descriptors, ids, &rows);
        let zones = match published {
            Ok(zones) => zones,
            Err(e) => {
                for id in schedules {
                    let _ = self.drop_schedule(id);
                }
                return Err(e);
            }
        };
        for (id, zone) in zones {
            self.set_gc_ttl(id, Duration::from_secs(zone.gc_ttl_seconds))?;
        }
        Ok(())
    }

    /// One catalog transaction: default databases out, descriptors, users,
    /// zones and settings in. Returns the restored zone configurations.
    fn publish_catalog<'a, I>(
        &self,
        descriptors: &[Descriptor],
        ids: &IdRewrites,
        rows: &dyn Fn(u64) -> I,
    ) -> Result<Vec<(u64, ZoneConfig)>, SqlError>
    where
        I: Iterator<Item = &'a (Vec<u8>, Vec<u8>)>,
    {
        let mut kv = KvTxn::new(self, self.now()?);
        let mut snap = Snapshot::load(&kv)?;
        for id in replaceable_databases(&snap)? {
            kv.delete(descriptor_key(id));
            snap.descs.remove(&id);
        }
        write_descriptors(&mut kv, &snap, descriptors, Grants::AsBackedUp)?;
        for (key, value) in rows(USERS_TABLE_ID) {
            if !snap.users.contains_key(&user_name_of_key(key)?) {
                kv.put(key.clone(), value.clone());
            }
        }
        let by_key: BTreeMap<&Vec<u8>, &Vec<u8>> =
            rows(ZONES_TABLE_ID).map(|(k, v)| (k, v)).collect();
        let mut zones = Vec::new();
        for (old, new) in ids {
            let (Ok(old_pk), Ok(new_pk)) = (i64::try_from(*old), i64::try_from(*new)) else {
                continue;
            };
            let Some(value) = by_key.get(&system_key(ZONES_TABLE_ID, &Value::Int(old_pk))) else {
                continue;
            };
            let zone: ZoneConfig = serde_json::from_slice(value).map_err(|e| {
                SqlError::Invalid(format!(
                    "corrupt zone configuration of {old} in the backup: {e}"
                ))
            })?;
            kv.put(
                system_key(ZONES_TABLE_ID, &Value::Int(new_pk)),
                value.to_vec(),
            );
            zones.push((*new, zone));
        }
        for (key, value) in rows(SETTINGS_TABLE_ID) {
            kv.put(key.clone(), value.clone());
        }
        kv.commit(false)?;
        Ok(zones)
    }

    /// Creates every backed-up schedule paused under a fresh id, then points
    /// pairs at each other's new ids and drops the source's job and
    /// protection ids from their state. Returns the new ids.
    fn restore_schedules<'a>(
        &self,
        rows: impl Iterator<Item = &'a (Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<ScheduleId>, ClusterError> {
        let mut moved: BTreeMap<ScheduleId, ScheduleId> = BTreeMap::new();
        let mut created = Vec::new();
        let outcome = (|| {
            for (_, value) in rows {
                let record = decode_schedule_row(value)?;
                let new = self.create_schedule(&ScheduleRecord {
                    paused: true,
                    ..record.clone()
                })?;
                created.push(new);
                moved.insert(record.id, new);
            }
            for new in moved.values() {
                let Some(record) = self.schedule(*new)? else {
                    continue;
                };
                let Ok(mut schedule) = record.to_backup_schedule() else {
                    continue; // not a backup schedule: nothing refers to other ids
                };
                schedule.details.pair = schedule.details.pair.and_then(|p| moved.get(&p).copied());
                // Jobs and protections of the source cluster mean nothing here.
                let state = &mut schedule.state;
                state.running.clear();
                state.last_job = None;
                state.chain = None;
                state.status =
                    "PAUSED: restored with the cluster; RESUME SCHEDULE to run it".into();
                self.update_schedule(*new, |r| {
                    *r = ScheduleRecord::from_backup_schedule(&schedule);
                    Ok(())
                })?;
            }
            Ok(())
        })();
        match outcome {
            Ok(()) => Ok(created),
            Err(e) => {
                for id in created {
                    let _ = self.drop_schedule(id);
                }
                Err(e)
            }
        }
    }
}

/// The target's default databases and their schemas, which a cluster
/// restore replaces; an error if one holds anything but its `public` schema.
fn replaceable_databases(snap: &Snapshot) -> Result<Vec<u64>, SqlError> {
    let mut out = Vec::new();
    for db in snap.descs.values() {
        if !matches!(db.body, Body::Database) || !DEFAULT_DATABASES.contains(&db.name.as_str()) {
            continue;
        }
        out.push(db.id);
        for d in snap.descs.values().filter(|d| d.parent_id == db.id) {
            if !matches!(d.body, Body::Schema) || d.name != "public" {
                return Err(SqlError::Invalid(format!(
                    "a full cluster restore needs a cluster without user objects, but {} \
                     exists in {}: restore into a new cluster",
                    d.name, db.name
                )));
            }
            out.push(d.id);
        }
    }
    Ok(out)
}
