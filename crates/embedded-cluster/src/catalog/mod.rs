//! The catalog: descriptors, users and roles, zone configs, settings, jobs
//! and schedules, stored as MVCC rows of *system tables* in the cluster's own keyspace.
//!
//! Every system table uses the ordinary table key layout
//! (`0xF0 | id | index 1 | pk`, see [`crate::keys`]) with an id below
//! [`FIRST_USER_ID`], so a schema change is an MVCC write at its
//! transaction's timestamp: reading the catalog as of a time is an MVCC read
//! at that time, and a backup of a system table's span carries it.
//!
//! | id | table | primary key | value |
//! |----|-------|-------------|-------|
//! | 1 | `system.descriptor` | descriptor id | [`model::Desc`] as versioned JSON |
//! | 2 | `system.users` | user or role name | [`UserRecord`] as JSON |
//! | 3 | `system.zones` | descriptor id | [`ZoneConfig`] as JSON |
//! | 4 | `system.settings` | setting name | its value as text |
//! | 5 | `system.jobs` | job id | [`backup_exec::JobRecord`], versioned binary |
//! | 6 | `system.scheduled_jobs` | schedule id | [`crate::ScheduleRecord`], versioned binary |
//!
//! Privileges live in each descriptor (`Desc::privileges`, `Desc::owner`).
//!
//! To the backup system ([`backup_exec::Catalog`]) the catalog also shows a
//! `system` database ([`SYSTEM_DATABASE_ID`]) holding the system tables a
//! full-cluster backup carries ([`RESTORED_SYSTEM_TABLES`]: users, zones,
//! settings, schedules; not jobs, not descriptors, which travel in the
//! manifest). SQL never sees them as objects. A full-cluster restore writes
//! their rows back (see `restore`): users the target lacks, zone
//! configurations under the restored ids, settings, and schedules paused.

mod host;
pub mod model;
mod restore;

use std::collections::BTreeMap;

use backup_format::{Descriptor, Span};
use serde::{Deserialize, Serialize};

use crate::keys;
use crate::sql::SqlError;
use crate::sql::encoding::encode_key;
use crate::sql::kv::KvTxn;
use crate::sql::value::Value;
use model::{Body, Desc};

/// Table id of `system.descriptor`.
pub const DESCRIPTOR_TABLE_ID: u64 = 1;
/// Table id of `system.users`.
pub const USERS_TABLE_ID: u64 = 2;
/// Table id of `system.zones`.
pub const ZONES_TABLE_ID: u64 = 3;
/// Table id of `system.settings`.
pub const SETTINGS_TABLE_ID: u64 = 4;
/// Table id of `system.jobs` (see [`backup_exec::JobStore`] on [`crate::Cluster`]).
pub const JOBS_TABLE_ID: u64 = 5;
/// Table id of `system.scheduled_jobs` (see [`crate::Cluster::create_schedule`]).
pub const SCHEDULES_TABLE_ID: u64 = 6;
/// The first id handed to user objects; ids below are system tables.
pub const FIRST_USER_ID: u64 = 100;
/// Descriptor id of the `system` database the backup system sees.
pub const SYSTEM_DATABASE_ID: u64 = 7;
/// The system tables a full-cluster backup carries and restore writes back.
pub const RESTORED_SYSTEM_TABLES: [(u64, &str); 4] = [
    (USERS_TABLE_ID, "users"),
    (ZONES_TABLE_ID, "zones"),
    (SETTINGS_TABLE_ID, "settings"),
    (SCHEDULES_TABLE_ID, "scheduled_jobs"),
];

/// The `system` database and its tables of [`RESTORED_SYSTEM_TABLES`], as
/// the backup system sees them (fixed ids, the same in every cluster).
pub fn system_descriptors() -> Vec<Descriptor> {
    let mut out = vec![Descriptor {
        id: SYSTEM_DATABASE_ID,
        kind: backup_format::DescriptorKind::Database,
        name: "system".into(),
        parent_id: 0,
        parent_schema_id: 0,
        spans: Vec::new(),
        dependencies: Vec::new(),
        exclude_data_from_backup: false,
        payload: Vec::new(),
    }];
    out.extend(RESTORED_SYSTEM_TABLES.iter().map(|(id, name)| Descriptor {
        id: *id,
        kind: backup_format::DescriptorKind::Table,
        name: (*name).into(),
        parent_id: SYSTEM_DATABASE_ID,
        parent_schema_id: 0,
        spans: vec![keys::table_span(*id)],
        dependencies: Vec::new(),
        exclude_data_from_backup: false,
        payload: Vec::new(),
    }));
    out
}

/// The zone configuration of descriptor `id` as of `as_of`, if it has one.
pub fn zone_config(
    cluster: &crate::Cluster,
    id: u64,
    as_of: backup_format::Timestamp,
) -> Result<Option<ZoneConfig>, SqlError> {
    let kv = KvTxn::new(cluster, as_of);
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    match kv.get(&system_key(ZONES_TABLE_ID, &Value::Int(id)))? {
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| SqlError::Invalid(format!("corrupt zone configuration: {e}"))),
        None => Ok(None),
    }
}

/// The spans of every system table (what a full-cluster backup adds).
pub fn system_spans() -> Vec<Span> {
    vec![Span::new(
        keys::table_prefix(DESCRIPTOR_TABLE_ID),
        keys::table_prefix(FIRST_USER_ID),
    )]
}

/// A user or a role.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// A role cannot log in.
    pub is_role: bool,
    /// Roles it is a member of.
    pub member_of: Vec<String>,
    /// The salted verifier of its password, if it has one (records written
    /// before passwords existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<crate::password::PasswordHash>,
}

/// A zone configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneConfig {
    /// `gc.ttlseconds`.
    pub gc_ttl_seconds: u64,
}

/// The key of a system table row.
pub(crate) fn system_key(table: u64, pk: &Value) -> Vec<u8> {
    keys::row_key(table, 1, &encode_key(&[pk]))
}

/// The key of a descriptor (the inverse of [`descriptor_id_of_key`]).
pub(crate) fn descriptor_key(id: u64) -> Vec<u8> {
    system_key(DESCRIPTOR_TABLE_ID, &Value::Int(id as i64))
}

/// The descriptor id in a key of `system.descriptor` (see [`descriptor_key`]).
pub(crate) fn descriptor_id_of_key(key: &[u8]) -> Option<u64> {
    let pk = key.strip_prefix(keys::index_prefix(DESCRIPTOR_TABLE_ID, 1).as_slice())?;
    let (&tag, rest) = pk.split_first()?;
    let bits: [u8; 8] = rest.try_into().ok()?;
    (tag == 0x02).then(|| u64::from_be_bytes(bits) ^ (1 << 63))
}

/// Decodes a stored descriptor.
pub(crate) fn decode_desc(bytes: &[u8]) -> Result<Desc, SqlError> {
    serde_json::from_slice(bytes)
        .map_err(|e| SqlError::Invalid(format!("corrupt descriptor payload: {e}")))
}

/// Encodes a descriptor for storage (and as a backup payload).
pub(crate) fn encode_desc(d: &Desc) -> Vec<u8> {
    serde_json::to_vec(d).unwrap_or_default()
}

/// The backup system's view of a descriptor.
pub fn to_backup_descriptor(d: &Desc) -> Descriptor {
    let spans = match d.body {
        Body::Table(_) | Body::Sequence(_) => vec![keys::table_span(d.id)],
        _ => Vec::new(),
    };
    Descriptor {
        id: d.id,
        kind: d.kind(),
        name: d.name.clone(),
        parent_id: d.parent_id,
        parent_schema_id: d.parent_schema_id,
        spans,
        dependencies: d.dependencies(),
        exclude_data_from_backup: d.table().is_some_and(|t| t.exclude_data_from_backup),
        payload: encode_desc(d),
    }
}

/// The catalog as of one transaction's snapshot.
#[derive(Clone, Default)]
pub(crate) struct Snapshot {
    /// Every descriptor by id.
    pub(crate) descs: BTreeMap<u64, Desc>,
    /// Every user and role by name (`root` and `admin` included).
    pub(crate) users: BTreeMap<String, UserRecord>,
}

impl Snapshot {
    /// Reads the catalog through `kv`.
    pub(crate) fn load(kv: &KvTxn) -> Result<Snapshot, SqlError> {
        let mut descs = BTreeMap::new();
        for (_, v) in kv.scan(&keys::table_span(DESCRIPTOR_TABLE_ID))? {
            let d = decode_desc(&v)?;
            descs.insert(d.id, d);
        }
        let mut users = BTreeMap::new();
        users.insert(
            "admin".to_string(),
            UserRecord {
                is_role: true,
                member_of: vec![],
                password: None,
            },
        );
        users.insert(
            "root".to_string(),
            UserRecord {
                is_role: false,
                member_of: vec!["admin".into()],
                password: None,
            },
        );
        users.insert(
            "public".to_string(),
            UserRecord {
                is_role: true,
                member_of: vec![],
                password: None,
            },
        );
        for (k, v) in kv.scan(&keys::table_span(USERS_TABLE_ID))? {
            let rec: UserRecord = serde_json::from_slice(&v)
                .map_err(|e| SqlError::Invalid(format!("corrupt user record: {e}")))?;
            let name = user_name_of_key(&k)?;
            users.insert(name, rec);
        }
        Ok(Snapshot { descs, users })
    }

    /// The database named `name`.
    pub(crate) fn database(&self, name: &str) -> Option<&Desc> {
        self.descs
            .values()
            .find(|d| matches!(d.body, Body::Database) && d.name == name)
    }

    /// The schema `name` of database `db`.
    pub(crate) fn schema(&self, db: u64, name: &str) -> Option<&Desc> {
        self.descs
            .values()
            .find(|d| matches!(d.body, Body::Schema) && d.parent_id == db && d.name == name)
    }

    /// The object (not a database or schema) `name` in schema `schema`.
    pub(crate) fn object(&self, schema: u64, name: &str) -> Option<&Desc> {
        self.descs.values().find(|d| {
            d.parent_schema_id == schema
                && d.name == name
                && !matches!(d.body, Body::Database | Body::Schema)
        })
    }

    /// Every object of database `db`.
    pub(crate) fn objects_of(&self, db: u64) -> impl Iterator<Item = &Desc> {
        self.descs
            .values()
            .filter(move |d| d.parent_id == db && !matches!(d.body, Body::Schema))
    }

    /// Resolves a 1-3 part name to (database id, schema id, object name),
    /// `current` being the session's database.
    pub(crate) fn resolve_parent(
        &self,
        parts: &[String],
        current: &str,
    ) -> Result<(u64, u64, String), SqlError> {
        let full = parts.join(".");
        let (db_name, schema_name, name) = match parts {
            [n] => (current.to_string(), "public".to_string(), n.clone()),
            [a, n] => {
                let in_current = self
                    .database(current)
                    .and_then(|db| self.schema(db.id, a))
                    .is_some();
                if in_current {
                    (current.to_string(), a.clone(), n.clone())
                } else {
                    (a.clone(), "public".to_string(), n.clone())
                }
            }
            [d, s, n] => (d.clone(), s.clone(), n.clone()),
            _ => return Err(SqlError::Invalid(format!("invalid name {full:?}"))),
        };
        let db = self.database(&db_name).ok_or_else(|| {
            if parts.len() == 1 {
                SqlError::UndefinedRelation(full.clone())
            } else {
                SqlError::UndefinedDatabase(db_name.clone())
            }
        })?;
        let schema = self
            .schema(db.id, &schema_name)
            .ok_or_else(|| SqlError::UndefinedSchema(schema_name.clone()))?;
        Ok((db.id, schema.id, name))
    }

    /// Resolves a relation (table, view, sequence) or type name.
    pub(crate) fn resolve(&self, parts: &[String], current: &str) -> Result<&Desc, SqlError> {
        let full = parts.join(".");
        let (_, schema, name) = self.resolve_parent(parts, current).map_err(|e| match e {
            SqlError::UndefinedDatabase(_) | SqlError::UndefinedSchema(_) => {
                SqlError::UndefinedRelation(full.clone())
            }
            e => e,
        })?;
        self.object(schema, &name)
            .ok_or(SqlError::UndefinedRelation(full))
    }

    /// Whether `user` is `root`, or a member (directly or not) of `role`.
    pub(crate) fn is_member(&self, user: &str, role: &str) -> bool {
        let mut seen = vec![user.to_string()];
        let mut i = 0;
        while let Some(u) = seen.get(i).cloned() {
            if u == role || (role == "admin" && u == "root") {
                return true;
            }
            if let Some(rec) = self.users.get(&u) {
                for r in &rec.member_of {
                    if !seen.contains(r) {
                        seen.push(r.clone());
                    }
                }
            }
            i += 1;
        }
        false
    }

    /// The user, its roles and `public`: every grantee whose grants apply.
    pub(crate) fn grantees_of(&self, user: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .users
            .keys()
            .filter(|r| self.is_member(user, r))
            .cloned()
            .collect();
        out.push("public".into());
        out
    }
}

/// The name in a `system.users` key.
fn user_name_of_key(key: &[u8]) -> Result<String, SqlError> {
    let bad = || SqlError::Invalid("corrupt user key".into());
    let body = key
        .get(keys::TABLE_PREFIX_LEN + 4 + 1..)
        .and_then(|b| b.strip_suffix(&[0x00, 0x01]))
        .ok_or_else(bad)?;
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        out.push(body[i]);
        i += if body[i] == 0 { 2 } else { 1 };
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_ids_come_back_from_their_keys() {
        for id in [1, FIRST_USER_ID, 12_345, u64::from(u32::MAX) + 7] {
            assert_eq!(descriptor_id_of_key(&descriptor_key(id)), Some(id));
        }
        assert_eq!(
            descriptor_id_of_key(&system_key(USERS_TABLE_ID, &Value::Int(5))),
            None
        );
        assert_eq!(
            descriptor_id_of_key(&system_key(DESCRIPTOR_TABLE_ID, &Value::String("x".into()))),
            None
        );
    }
}
