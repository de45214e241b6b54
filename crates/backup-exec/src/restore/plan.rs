//! Which descriptors a restore brings back, under which ids, names and
//! parents; dependency checks and the `skip_missing_*` options.

use std::collections::{BTreeMap, BTreeSet};

use backup_format::{Dependency, DependencyKind, Descriptor, DescriptorId, DescriptorKind, Span};

use super::spec::{DescriptorRewrite, RestoreOptions, RestoreSpec, RestoreTargets};
use crate::backup::Host;
use crate::error::ExecError;
use crate::host::{IdRewrites, KeyRewriter};

/// Databases every cluster has; a cluster restore replaces them.
const DEFAULT_DATABASES: [&str; 3] = ["system", "defaultdb", "postgres"];

/// The descriptors to restore, with the ids they move to.
#[derive(Clone, Debug)]
pub(crate) struct DescriptorPlan {
    /// The backed-up descriptors being restored, by old id.
    pub(crate) restored: BTreeMap<DescriptorId, Descriptor>,
    /// Old id -> new id, for every restored descriptor.
    pub(crate) ids: IdRewrites,
    /// Dependencies dropped by a `skip_missing_*` option: (object, dependency).
    pub(crate) dropped: BTreeSet<(DescriptorId, DescriptorId)>,
    /// The host's system tables in the backup whose rows a full-cluster
    /// restore writes back (never published, never ingested).
    pub(crate) system_tables: Vec<Descriptor>,
}

/// Picks the descriptors of `backup` that `spec` restores and checks their
/// dependencies. `full_cluster` says whether the backup is of a whole
/// cluster; `system` holds the ids of the host's system descriptors
/// ([`crate::Ingest::system_descriptors`]), which only a full-cluster restore
/// brings back, as rows.
pub(crate) fn plan_descriptors(
    host: &Host,
    spec: &RestoreSpec,
    backup: &[Descriptor],
    full_cluster: bool,
    system: &BTreeSet<DescriptorId>,
) -> Result<DescriptorPlan, ExecError> {
    let by_id: BTreeMap<DescriptorId, &Descriptor> = backup.iter().map(|d| (d.id, d)).collect();
    let find = |id: DescriptorId| {
        by_id.get(&id).copied().ok_or_else(|| {
            ExecError::Invalid(format!(
                "descriptor {id} is not in the backup: pick a target SHOW BACKUP lists"
            ))
        })
    };
    let mut selected: BTreeSet<DescriptorId> = BTreeSet::new();
    match &spec.targets {
        RestoreTargets::Tables(ids) => {
            for &id in ids {
                let d = find(id)?;
                if !matches!(
                    d.kind,
                    DescriptorKind::Table | DescriptorKind::View | DescriptorKind::Sequence
                ) {
                    return Err(ExecError::Invalid(format!(
                        "{} {} ({id}) is not a table: restore it as a database",
                        d.kind.as_str(),
                        d.name
                    )));
                }
                selected.insert(id);
            }
        }
        RestoreTargets::Databases(ids) => {
            for &id in ids {
                let d = find(id)?;
                if d.kind != DescriptorKind::Database {
                    return Err(ExecError::Invalid(format!(
                        "{} {} ({id}) is not a database: restore it as a table",
                        d.kind.as_str(),
                        d.name
                    )));
                }
                selected.insert(id);
            }
            for d in backup {
                if ids.contains(&d.parent_id) {
                    selected.insert(d.id);
                }
            }
        }
        RestoreTargets::Cluster => {
            if !full_cluster {
                return Err(ExecError::Invalid(
                    "the backup is not of a whole cluster: restore its databases or tables instead"
                        .into(),
                ));
            }
            check_cluster_is_empty(host)?;
            selected.extend(
                backup
                    .iter()
                    .map(|d| d.id)
                    .filter(|id| !system.contains(id)),
            );
        }
    }
    if let Some(d) = selected
        .iter()
        .find_map(|id| by_id.get(id).filter(|_| system.contains(id)))
    {
        return Err(ExecError::Invalid(format!(
            "{} {} ({}) belongs to the system: it comes back only with a full cluster restore \
             (RESTORE FROM ...)",
            d.kind.as_str(),
            d.name,
            d.id
        )));
    }
    let system_tables = match spec.targets {
        RestoreTargets::Cluster => backup
            .iter()
            .filter(|d| system.contains(&d.id) && !d.spans.is_empty())
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let dropped = check_dependencies(&by_id, &mut selected, &spec.options)?;
    let restored: BTreeMap<DescriptorId, Descriptor> = selected
        .iter()
        .filter_map(|id| by_id.get(id).map(|d| (*id, (*d).clone())))
        .collect();
    let ids = new_ids(host, spec, &restored)?;
    Ok(DescriptorPlan {
        restored,
        ids,
        dropped,
        system_tables,
    })
}

/// A cluster restore goes only into a cluster without user objects.
fn check_cluster_is_empty(host: &Host) -> Result<(), ExecError> {
    let now = host.clock.now();
    let existing = host.catalog.descriptors(now)?;
    let system: BTreeSet<DescriptorId> = existing
        .iter()
        .filter(|d| d.kind == DescriptorKind::Database && d.name == "system")
        .map(|d| d.id)
        .collect();
    let user = existing.iter().find(|d| match d.kind {
        DescriptorKind::Database => !DEFAULT_DATABASES.contains(&d.name.as_str()),
        DescriptorKind::Schema => d.name != "public" && !system.contains(&d.parent_id),
        _ => !system.contains(&d.parent_id),
    });
    match user {
        Some(d) => Err(ExecError::Invalid(format!(
            "a full cluster restore needs a cluster without user objects, but {} {} ({}) exists: \
             restore into a new cluster, or restore databases or tables instead",
            d.kind.as_str(),
            d.name,
            d.id
        ))),
        None => Ok(()),
    }
}

/// Checks every dependency of the selection; drops those a `skip_missing_*`
/// option allows (views are left out with `skip_missing_views`).
fn check_dependencies(
    by_id: &BTreeMap<DescriptorId, &Descriptor>,
    selected: &mut BTreeSet<DescriptorId>,
    options: &RestoreOptions,
) -> Result<BTreeSet<(DescriptorId, DescriptorId)>, ExecError> {
    loop {
        let mut dropped = BTreeSet::new();
        let mut skip_view = None;
        for id in selected.iter() {
            let Some(d) = by_id.get(id) else { continue };
            for dep in &d.dependencies {
                if selected.contains(&dep.id) {
                    continue;
                }
                let (allowed, option) = match dep.kind {
                    DependencyKind::ForeignKey => (
                        options.skip_missing_foreign_keys,
                        " or use skip_missing_foreign_keys",
                    ),
                    DependencyKind::Sequence => (
                        options.skip_missing_sequences,
                        " or use skip_missing_sequences",
                    ),
                    DependencyKind::ViewSource => {
                        (options.skip_missing_views, " or use skip_missing_views")
                    }
                    DependencyKind::Type => (false, ""),
                };
                if !allowed {
                    return Err(missing_dependency(d, dep, by_id, option));
                }
                if dep.kind == DependencyKind::ViewSource {
                    skip_view = Some(*id);
                    break;
                }
                dropped.insert((*id, dep.id));
            }
            if skip_view.is_some() {
                break;
            }
        }
        match skip_view {
            // Leaving a view out may leave other views without a source: again.
            Some(view) => {
                selected.remove(&view);
            }
            None => return Ok(dropped),
        }
    }
}

fn missing_dependency(
    d: &Descriptor,
    dep: &Dependency,
    by_id: &BTreeMap<DescriptorId, &Descriptor>,
    option: &str,
) -> ExecError {
    let how = match dep.kind {
        DependencyKind::ForeignKey => "a foreign key",
        DependencyKind::Sequence => "a column default",
        DependencyKind::ViewSource => "its query",
        DependencyKind::Type => "a column type",
    };
    let target = match by_id.get(&dep.id) {
        Some(t) => format!("{} {} ({})", t.kind.as_str(), t.name, t.id),
        None => format!("descriptor {} (not in the backup)", dep.id),
    };
    ExecError::MissingDependency {
        object: format!("{} {} ({})", d.kind.as_str(), d.name, d.id),
        dependency: format!("{target} through {how}"),
        option: option.to_string(),
    }
}

/// The new id of every restored descriptor: the spec's, else freshly
/// allocated by the catalog (also in a cluster restore: the target's own
/// default databases, or data of its dropped tables not yet collected, may
/// hold the backed-up ids; ids in restored system rows move along).
fn new_ids(
    host: &Host,
    spec: &RestoreSpec,
    restored: &BTreeMap<DescriptorId, Descriptor>,
) -> Result<IdRewrites, ExecError> {
    let mut ids = IdRewrites::new();
    let mut unassigned = Vec::new();
    for id in restored.keys() {
        match spec.rewrites.get(id) {
            Some(r) => {
                ids.insert(*id, r.new_id);
            }
            None => unassigned.push(*id),
        }
    }
    if !unassigned.is_empty() {
        let fresh = host
            .catalog
            .allocate_descriptor_ids(unassigned.len())
            .map_err(|e| {
                ExecError::Invalid(format!(
                    "no new id for descriptors {unassigned:?} and the catalog could not allocate any: {e}"
                ))
            })?;
        if fresh.len() != unassigned.len() {
            return Err(ExecError::Internal(format!(
                "the catalog allocated {} ids for {} descriptors",
                fresh.len(),
                unassigned.len()
            )));
        }
        ids.extend(unassigned.into_iter().zip(fresh));
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = ids.values().find(|id| !seen.insert(**id)) {
        return Err(ExecError::Invalid(format!(
            "two restored descriptors would get the id {dup}: give each its own new id"
        )));
    }
    Ok(ids)
}

impl DescriptorPlan {
    /// The restored descriptors as they will be published: new ids, parents,
    /// names, dependencies and spans.
    pub(crate) fn published(
        &self,
        rewrites: &BTreeMap<DescriptorId, DescriptorRewrite>,
        keys: &dyn KeyRewriter,
    ) -> Result<Vec<Descriptor>, ExecError> {
        let mut out = Vec::with_capacity(self.restored.len());
        for (old, d) in &self.restored {
            let r = rewrites.get(old);
            let moved = |id: DescriptorId, explicit: Option<DescriptorId>| {
                explicit.unwrap_or_else(|| self.ids.get(&id).copied().unwrap_or(id))
            };
            let mut n = d.clone();
            n.id = self.ids.get(old).copied().unwrap_or(*old);
            n.parent_id = moved(d.parent_id, r.and_then(|r| r.parent_id));
            n.parent_schema_id = moved(d.parent_schema_id, r.and_then(|r| r.parent_schema_id));
            if let Some(name) = r.and_then(|r| r.name.clone()) {
                n.name = name;
            }
            n.dependencies = d
                .dependencies
                .iter()
                .filter(|dep| !self.dropped.contains(&(*old, dep.id)))
                .map(|dep| Dependency {
                    id: self.ids.get(&dep.id).copied().unwrap_or(dep.id),
                    kind: dep.kind,
                })
                .collect();
            n.spans = d
                .spans
                .iter()
                .map(|s| {
                    keys.rewrite_span(s).ok_or_else(|| {
                        ExecError::Invalid(format!(
                            "the host cannot move the span {s:?} of {} {} ({old}) to its new id",
                            d.kind.as_str(),
                            d.name
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
            out.push(n);
        }
        Ok(out)
    }

    /// Spans (backed-up keys) of the system tables whose rows come back.
    pub(crate) fn system_spans(&self) -> Vec<Span> {
        self.system_tables
            .iter()
            .flat_map(|d| d.spans.iter().cloned())
            .collect()
    }

    /// Spans (backed-up keys) whose data is restored.
    pub(crate) fn data_spans(&self) -> Vec<Span> {
        self.restored
            .values()
            .filter(|d| !d.exclude_data_from_backup)
            .flat_map(|d| d.spans.iter().cloned())
            .collect()
    }
}
