//! The cluster as the backup system's [`Catalog`], and descriptor publication
//! for [`backup_exec::Ingest::publish`].

use std::collections::{BTreeMap, BTreeSet};

use backup_exec::{Catalog, ExportError, ExportRequest, HostError, IntentPolicy, KvSource, NodeId};
use backup_format::manifest::DescriptorRevision;
use backup_format::{Descriptor, DescriptorId, MvccEntry, Span, Timestamp};

use super::{
    DESCRIPTOR_TABLE_ID, FIRST_USER_ID, SYSTEM_DATABASE_ID, Snapshot, decode_desc,
    descriptor_id_of_key, descriptor_key, encode_desc, system_descriptors, to_backup_descriptor,
};
use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::ranges::next_counter;
use crate::sql::SqlError;
use crate::sql::kv::KvTxn;

impl From<SqlError> for HostError {
    fn from(e: SqlError) -> HostError {
        match e {
            SqlError::Cluster(c) => c.into(),
            SqlError::Retry(m) => HostError::Transient(m),
            other => HostError::Invalid(other.to_string()),
        }
    }
}

impl Cluster {
    /// Reserves `count` fresh descriptor ids (never handed out again).
    pub fn allocate_ids(&self, count: usize) -> Result<Vec<DescriptorId>, ClusterError> {
        self.write(|tx| {
            (0..count)
                .map(|_| next_counter(tx, "next_descriptor_id").map(|n| n + FIRST_USER_ID - 1))
                .collect()
        })
    }

    /// Writes restored descriptors (of a table or database restore) in one
    /// atomic step: each payload is re-encoded under the descriptor's (new)
    /// id, name and parents, and the ids it refers to are moved along with
    /// the other published descriptors. Grants to users or roles this
    /// cluster does not have are dropped, and an object whose owner it does
    /// not have is owned by `root` (a later `CREATE USER` of the same name
    /// must not inherit them).
    pub fn publish_descriptors(&self, descriptors: &[Descriptor]) -> Result<(), SqlError> {
        let mut kv = KvTxn::new(self, self.now()?);
        let snap = Snapshot::load(&kv)?;
        write_descriptors(&mut kv, &snap, descriptors, Grants::OfExistingUsers)?;
        kv.commit(false)?;
        Ok(())
    }

    /// Every user descriptor as of `as_of`, then the `system` database and
    /// the system tables a full-cluster backup carries
    /// ([`super::system_descriptors`]).
    pub fn descriptors_at(&self, as_of: Timestamp) -> Result<Vec<Descriptor>, SqlError> {
        let kv = KvTxn::new(self, as_of);
        let snap = Snapshot::load(&kv)?;
        let mut out: Vec<Descriptor> = snap
            .descs
            .values()
            .filter(|d| d.id >= FIRST_USER_ID)
            .map(to_backup_descriptor)
            .collect();
        out.extend(system_descriptors());
        Ok(out)
    }
}

impl Cluster {
    /// Every version of every user descriptor written in `(after, until]`,
    /// by (time, id): the MVCC history of `system.descriptor`, read with the
    /// same export every backup uses (all revisions, failing fast on an
    /// intent). Fails with [`HostError::GcThreshold`] when `after` is at or
    /// below that table's GC threshold (the history there is incomplete).
    pub fn descriptor_history(
        &self,
        after: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<DescriptorRevision>, HostError> {
        let span = crate::keys::table_span(DESCRIPTOR_TABLE_ID);
        let threshold = self.gc_threshold(&span);
        if !threshold.is_zero() && after <= threshold {
            return Err(HostError::GcThreshold {
                requested: after,
                threshold,
            });
        }
        let mut out = Vec::new();
        for range in KvSource::ranges(self, std::slice::from_ref(&span))? {
            let mut request = ExportRequest {
                span: range.span.clone(),
                start_ts: after,
                end_ts: until,
                all_revisions: true,
                intent_policy: IntentPolicy::FailFast,
                target_bytes: 0,
            };
            loop {
                let chunk = self
                    .export(range.leaseholder, &request)
                    .map_err(|e| history_error(range.leaseholder, e))?;
                for entry in chunk.entries {
                    let r = revision(entry)?;
                    // As `descriptors` shows them: user descriptors only.
                    if r.id >= FIRST_USER_ID {
                        out.push(r);
                    }
                }
                match chunk.resume_key {
                    Some(k) => request.span.start = k,
                    None => break,
                }
            }
        }
        out.sort_by_key(|r| (r.time, r.id));
        Ok(out)
    }
}

/// One version of a `system.descriptor` row as a revision.
fn revision(entry: MvccEntry) -> Result<DescriptorRevision, HostError> {
    let id = descriptor_id_of_key(&entry.key).ok_or_else(|| {
        HostError::Storage(format!(
            "a system.descriptor key that names no descriptor: {}",
            backup_format::PrettyKey(&entry.key)
        ))
    })?;
    let descriptor = match entry.value {
        Some(bytes) => Some(to_backup_descriptor(&decode_desc(&bytes)?)),
        None => None,
    };
    Ok(DescriptorRevision {
        id,
        time: entry.ts,
        descriptor,
    })
}

/// An export failure while reading descriptor history, as a host error.
fn history_error(node: NodeId, e: ExportError) -> HostError {
    match e {
        ExportError::GcThreshold {
            requested,
            threshold,
        } => HostError::GcThreshold {
            requested,
            threshold,
        },
        ExportError::Permanent(m) => {
            HostError::Storage(format!("reading descriptor history on node {node}: {m}"))
        }
        e => HostError::Transient(format!("reading descriptor history: {e}")),
    }
}

impl Catalog for Cluster {
    fn descriptors(&self, as_of: Timestamp) -> Result<Vec<Descriptor>, HostError> {
        Ok(self.descriptors_at(as_of)?)
    }

    fn descriptor(
        &self,
        id: DescriptorId,
        as_of: Timestamp,
    ) -> Result<Option<Descriptor>, HostError> {
        if let Some(d) = system_descriptors().into_iter().find(|d| d.id == id) {
            return Ok(Some(d));
        }
        let kv = KvTxn::new(self, as_of);
        match kv.get(&descriptor_key(id))? {
            Some(bytes) => Ok(Some(to_backup_descriptor(&decode_desc(&bytes)?))),
            None => Ok(None),
        }
    }

    fn descriptor_revisions(
        &self,
        after: Timestamp,
        until: Timestamp,
    ) -> Result<Option<Vec<DescriptorRevision>>, HostError> {
        self.descriptor_history(after, until).map(Some)
    }

    fn allocate_descriptor_ids(&self, count: usize) -> Result<Vec<DescriptorId>, HostError> {
        Ok(self.allocate_ids(count)?)
    }

    fn index_spans(&self, descriptor: &Descriptor) -> Vec<Span> {
        let Ok(desc) = decode_desc(&descriptor.payload) else {
            return Vec::new();
        };
        let Some(table) = desc.table() else {
            return Vec::new();
        };
        // The primary index comes first and holds the rows.
        table
            .indexes
            .iter()
            .skip(1)
            .map(|i| Span::prefix(&crate::keys::index_prefix(descriptor.id, i.id)))
            .collect()
    }
}

/// Which backed-up grants a publication keeps.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Grants {
    /// Every grant and owner as backed up (a cluster restore, which brings
    /// the users back too).
    AsBackedUp,
    /// Grants to users and roles `snap` has; other owners become `root`.
    OfExistingUsers,
}

/// Buffers the restored `descriptors` into `kv` (see
/// [`Cluster::publish_descriptors`]); `snap` is the catalog they join.
pub(super) fn write_descriptors(
    kv: &mut KvTxn,
    snap: &Snapshot,
    descriptors: &[Descriptor],
    grants: Grants,
) -> Result<(), SqlError> {
    let mut decoded = Vec::with_capacity(descriptors.len());
    let mut map = BTreeMap::new();
    for d in descriptors {
        let desc = decode_desc(&d.payload)?;
        map.insert(desc.id, d.id);
        decoded.push((d, desc));
    }
    let new_ids: BTreeSet<u64> = descriptors.iter().map(|d| d.id).collect();
    for (d, mut desc) in decoded {
        if d.id < FIRST_USER_ID || d.parent_id == SYSTEM_DATABASE_ID {
            return Err(SqlError::Invalid(format!(
                "cannot publish {} {} under id {} in database {}: system ids and the \
                 system database are not for restored objects",
                d.kind.as_str(),
                d.name,
                d.id,
                d.parent_id
            )));
        }
        if let Some(clash) = snap.descs.get(&d.id) {
            return Err(SqlError::Invalid(format!(
                "cannot publish {} {}: id {} is already used by {}",
                d.kind.as_str(),
                d.name,
                d.id,
                clash.name
            )));
        }
        let taken = snap.descs.values().any(|o| {
            o.name == d.name
                && o.parent_id == d.parent_id
                && o.parent_schema_id == d.parent_schema_id
                && o.kind() == d.kind
        });
        if taken {
            return Err(SqlError::Duplicate {
                kind: if d.kind == backup_format::DescriptorKind::Database {
                    "database"
                } else {
                    "relation"
                },
                name: d.name.clone(),
            });
        }
        let deps: BTreeSet<u64> = d.dependencies.iter().map(|x| x.id).collect();
        let keep =
            |id: u64| deps.contains(&id) && (snap.descs.contains_key(&id) || new_ids.contains(&id));
        desc.remap(&map, &keep);
        desc.id = d.id;
        desc.name = d.name.clone();
        desc.parent_id = d.parent_id;
        desc.parent_schema_id = d.parent_schema_id;
        if grants == Grants::OfExistingUsers {
            desc.privileges
                .retain(|grantee, _| snap.users.contains_key(grantee));
            if !snap.users.contains_key(&desc.owner) {
                desc.owner = "root".into();
            }
        }
        kv.put(descriptor_key(d.id), encode_desc(&desc));
    }
    Ok(())
}
