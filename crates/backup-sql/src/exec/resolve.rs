//! Name resolution over a set of descriptors (the live catalog at the
//! backup's time, or a backup's), privilege checks, and dependency checks.
//!
//! Rules (CockroachDB's): an unqualified name resolves in the current
//! database's `public` schema; `x.t` and `x.*` resolve a schema `x` of the
//! current database before a database `x`; `d.s.t` is fully qualified.

use std::collections::{BTreeMap, BTreeSet};

use backup_format::{DependencyKind, Descriptor, DescriptorId, DescriptorKind};

use super::{Privilege, SqlContext};
use crate::ast::{Ident, TablePattern, Targets};
use crate::error::SqlError;

/// Descriptors indexed for name lookups.
pub(crate) struct Names<'a> {
    pub(crate) by_id: BTreeMap<DescriptorId, &'a Descriptor>,
    all: &'a [Descriptor],
}

/// Whether a descriptor is a relation (table, view or sequence).
pub(crate) fn is_relation(d: &Descriptor) -> bool {
    matches!(
        d.kind,
        DescriptorKind::Table | DescriptorKind::View | DescriptorKind::Sequence
    )
}

impl<'a> Names<'a> {
    pub(crate) fn new(all: &'a [Descriptor]) -> Names<'a> {
        Names {
            by_id: all.iter().map(|d| (d.id, d)).collect(),
            all,
        }
    }

    pub(crate) fn database(&self, name: &str) -> Option<&'a Descriptor> {
        self.all
            .iter()
            .find(|d| d.kind == DescriptorKind::Database && d.name == name)
    }

    fn schema(&self, db: DescriptorId, name: &str) -> Option<&'a Descriptor> {
        self.all
            .iter()
            .find(|d| d.kind == DescriptorKind::Schema && d.parent_id == db && d.name == name)
    }

    /// The schema id of `name` in `db`: 0 for `public` (no descriptor).
    pub(crate) fn schema_id(&self, db: DescriptorId, name: &str) -> Option<DescriptorId> {
        match self.schema(db, name) {
            Some(s) => Some(s.id),
            None if name == "public" => Some(0),
            None => None,
        }
    }

    /// The id of `db`'s `public` schema: a host may give it a descriptor of
    /// its own (embedded-cluster does) or none (then 0).
    fn public_schema(&self, db: DescriptorId) -> DescriptorId {
        self.schema_id(db, "public").unwrap_or(0)
    }

    fn relations_in(&self, db: DescriptorId, schema: DescriptorId) -> Vec<&'a Descriptor> {
        self.all
            .iter()
            .filter(|d| is_relation(d) && d.parent_id == db && d.parent_schema_id == schema)
            .collect()
    }

    /// Everything in database `db` (not the database itself).
    pub(crate) fn contents(&self, db: DescriptorId) -> Vec<&'a Descriptor> {
        self.all.iter().filter(|d| d.parent_id == db).collect()
    }

    /// `db.schema.name` of a descriptor (`db` for a database).
    pub(crate) fn qualified(&self, d: &Descriptor) -> String {
        if d.kind == DescriptorKind::Database {
            return d.name.clone();
        }
        let db = self.by_id.get(&d.parent_id).map_or("", |p| p.name.as_str());
        if d.kind == DescriptorKind::Schema {
            return format!("{db}.{}", d.name);
        }
        let schema = match self.by_id.get(&d.parent_schema_id) {
            Some(s) => s.name.as_str(),
            None => "public",
        };
        format!("{db}.{schema}.{}", d.name)
    }

    /// Database name and schema name of a descriptor, for listings.
    pub(crate) fn parents(&self, d: &Descriptor) -> (String, String) {
        let db = self
            .by_id
            .get(&d.parent_id)
            .map_or(String::new(), |p| p.name.clone());
        let schema = match (d.kind, self.by_id.get(&d.parent_schema_id)) {
            (DescriptorKind::Database | DescriptorKind::Schema, _) => String::new(),
            (_, Some(s)) => s.name.clone(),
            (_, None) => "public".into(),
        };
        (db, schema)
    }

    fn current_db(&self, current: &str) -> Result<&'a Descriptor, SqlError> {
        self.database(current).ok_or_else(|| {
            SqlError::NotFound(format!(
                "database \"{current}\" does not exist: qualify the name or set the database"
            ))
        })
    }

    /// The relations a pattern names.
    pub(crate) fn resolve_pattern(
        &self,
        p: &TablePattern,
        current: &str,
    ) -> Result<Vec<&'a Descriptor>, SqlError> {
        let parts: Vec<&str> = p.parts.iter().map(Ident::as_str).collect();
        let not_found = || SqlError::NotFound(format!("table \"{p}\" does not exist"));
        // (database, schema) the last part lives in, or the wildcard covers.
        let prefix: &[&str] = if p.wildcard {
            &parts
        } else {
            &parts[..parts.len().saturating_sub(1)]
        };
        let (db, schema) = match prefix {
            [] => {
                let db = self.current_db(current)?;
                (db.id, self.public_schema(db.id))
            }
            [x] => {
                // A schema `x` of the current database first, then a database `x`.
                let in_current = self
                    .database(current)
                    .and_then(|db| self.schema_id(db.id, x).map(|s| (db.id, s)));
                let has_table = |(db, schema): (DescriptorId, DescriptorId)| {
                    p.wildcard
                        || self
                            .relations_in(db, schema)
                            .iter()
                            .any(|d| Some(&d.name.as_str()) == parts.last())
                };
                match in_current {
                    // `x.t` with no `t` in schema `x` falls back to database `x`.
                    Some(found) if has_table(found) || self.database(x).is_none() => found,
                    _ => match self.database(x) {
                        Some(db) => (db.id, self.public_schema(db.id)),
                        None => {
                            return Err(SqlError::NotFound(format!(
                                "no schema or database \"{x}\" for \"{p}\""
                            )));
                        }
                    },
                }
            }
            [d, s] => {
                let db = self.database(d).ok_or_else(|| {
                    SqlError::NotFound(format!("database \"{d}\" does not exist"))
                })?;
                let schema = self.schema_id(db.id, s).ok_or_else(|| {
                    SqlError::NotFound(format!("schema \"{d}.{s}\" does not exist"))
                })?;
                (db.id, schema)
            }
            _ => return Err(not_found()),
        };
        let in_schema = self.relations_in(db, schema);
        if p.wildcard {
            return Ok(in_schema);
        }
        let name = parts.last().copied().unwrap_or_default();
        let found: Vec<_> = in_schema.into_iter().filter(|d| d.name == name).collect();
        if found.is_empty() {
            return Err(not_found());
        }
        Ok(found)
    }
}

/// What a target list resolves to.
pub(crate) struct Resolved {
    /// Every descriptor covered (with parents, schemas and types needed).
    pub(crate) ids: BTreeSet<DescriptorId>,
    /// The named databases (database targets).
    pub(crate) databases: Vec<DescriptorId>,
    /// The named relations (table targets).
    pub(crate) tables: Vec<DescriptorId>,
}

/// Resolves backup targets against `names` (the catalog at the backup time).
pub(crate) fn resolve_targets(
    names: &Names<'_>,
    targets: &Targets,
    current: &str,
) -> Result<Resolved, SqlError> {
    let mut r = Resolved {
        ids: BTreeSet::new(),
        databases: Vec::new(),
        tables: Vec::new(),
    };
    match targets {
        Targets::Cluster => r.ids.extend(names.by_id.keys()),
        Targets::Databases(dbs) => {
            for name in dbs {
                let db = names.database(name.as_str()).ok_or_else(|| {
                    SqlError::NotFound(format!("database \"{name}\" does not exist"))
                })?;
                r.databases.push(db.id);
                r.ids.insert(db.id);
                r.ids.extend(names.contents(db.id).iter().map(|d| d.id));
            }
        }
        Targets::Tables(patterns) => {
            for p in patterns {
                for d in names.resolve_pattern(p, current)? {
                    if !r.tables.contains(&d.id) {
                        r.tables.push(d.id);
                    }
                    r.ids.insert(d.id);
                    r.ids.insert(d.parent_id);
                    if d.parent_schema_id != 0 {
                        r.ids.insert(d.parent_schema_id);
                    }
                }
            }
        }
    }
    // Types a covered object uses come along (CockroachDB backs them up too).
    let types: Vec<DescriptorId> = r
        .ids
        .iter()
        .filter_map(|id| names.by_id.get(id))
        .flat_map(|d| d.dependencies.iter())
        .filter(|dep| dep.kind == DependencyKind::Type)
        .map(|dep| dep.id)
        .collect();
    r.ids.extend(types);
    Ok(r)
}

fn object_word(kind: DescriptorKind) -> &'static str {
    match kind {
        DescriptorKind::Database => "database",
        DescriptorKind::Schema => "schema",
        DescriptorKind::Type => "type",
        _ => "relation",
    }
}

/// Checks the privileges a backup of `resolved` needs.
pub(crate) fn check_backup_privileges(
    ctx: &dyn SqlContext,
    names: &Names<'_>,
    targets: &Targets,
    resolved: &Resolved,
) -> Result<(), SqlError> {
    if matches!(targets, Targets::Cluster) {
        if !ctx.is_admin() {
            return Err(SqlError::Privilege(format!(
                "only users with the admin role are allowed to perform full cluster backups: \
                 user {} does not have the admin role",
                ctx.user()
            )));
        }
        return Ok(());
    }
    if ctx.is_admin() {
        return Ok(());
    }
    for id in &resolved.ids {
        let Some(d) = names.by_id.get(id) else {
            continue;
        };
        let needed = match d.kind {
            DescriptorKind::Database if resolved.databases.contains(id) => Privilege::Connect,
            DescriptorKind::Database => continue,
            DescriptorKind::Schema | DescriptorKind::Type => Privilege::Usage,
            _ => Privilege::Select,
        };
        if !ctx.has_privilege(d, needed) {
            return Err(SqlError::Privilege(format!(
                "user {} does not have {} privilege on {} {}",
                ctx.user(),
                needed.as_str(),
                object_word(d.kind),
                d.name
            )));
        }
    }
    Ok(())
}

/// Fails if an object in `ids` needs a table, sequence or view source that
/// is not in `ids`, naming both.
pub(crate) fn check_dependencies(
    names: &Names<'_>,
    ids: &BTreeSet<DescriptorId>,
) -> Result<(), SqlError> {
    for id in ids {
        let Some(d) = names.by_id.get(id) else {
            continue;
        };
        for dep in &d.dependencies {
            if ids.contains(&dep.id) {
                continue;
            }
            let (via, what) = match dep.kind {
                DependencyKind::ForeignKey => ("via foreign key", "table"),
                DependencyKind::Sequence => ("via sequence", "sequence"),
                DependencyKind::ViewSource => ("as a view source", "relation"),
                DependencyKind::Type => continue,
            };
            let target = names
                .by_id
                .get(&dep.id)
                .map_or(format!("{}", dep.id), |t| t.name.clone());
            return Err(SqlError::Dependency(format!(
                "{} \"{}\" references {what} \"{target}\" {via} which is not in the backup",
                d.kind.as_str(),
                names.qualified(d)
            )));
        }
    }
    Ok(())
}
