//! BACKUP and RESTORE: targets resolved into a [`BackupSpec`] or a
//! [`RestoreSpec`], run through the job registries, reported as rows.

use std::collections::BTreeMap;

use backup_exec::restore::DescriptorRewrite;
use backup_exec::restore::{BackupChoice, read_backup};
use backup_exec::{
    BackupSpec, Destination, JobStatus, LayerChoice, RestoreOptions, RestoreSource, RestoreSpec,
    RestoreTargets,
};
use backup_format::{DescriptorId, DescriptorKind};

use super::resolve::{
    Names, check_backup_privileges, check_dependencies, is_relation, resolve_targets,
};
use super::{BackupStatements, Datum, ResultSet, SqlContext, flag, text, texts};
use crate::ast::{Backup, Restore, Statement, Subdir, Targets};
use crate::error::SqlError;
use crate::evaluate_as_of;

/// The columns of a BACKUP or RESTORE that waited for its job.
const JOB_RESULT_COLUMNS: &[(&str, &str)] = &[
    ("job_id", "INT8"),
    ("status", "STRING"),
    ("fraction_completed", "FLOAT8"),
    ("rows", "INT8"),
    ("index_entries", "INT8"),
    ("bytes", "INT8"),
];

fn job_rows(
    detached: bool,
    job: u64,
    status: JobStatus,
    fraction: f64,
    counts: [u64; 3],
) -> ResultSet {
    if detached {
        let mut rs = ResultSet::with_columns(&[("job_id", "INT8")]);
        rs.rows.push(vec![Datum::Int(job as i64)]);
        return rs;
    }
    let mut rs = ResultSet::with_columns(JOB_RESULT_COLUMNS);
    let [rows, index_entries, bytes] = counts;
    rs.rows.push(vec![
        Datum::Int(job as i64),
        Datum::String(status.as_str().into()),
        Datum::Float(fraction),
        Datum::Int(rows as i64),
        Datum::Int(index_entries as i64),
        Datum::Int(bytes as i64),
    ]);
    rs
}

fn subdir_text(s: &Subdir) -> Result<Option<String>, SqlError> {
    match s {
        Subdir::Latest => Ok(None),
        Subdir::Path(e) => Ok(Some(text("subdirectory", e)?)),
    }
}

/// The first URI of `incremental_location`, if given.
fn incremental(list: &Option<Vec<crate::ast::Expr>>) -> Result<Option<String>, SqlError> {
    match list {
        None => Ok(None),
        Some(l) => Ok(texts("incremental_location", l)?.into_iter().next()),
    }
}

/// Where a restore or `SHOW BACKUP` reads from.
pub(crate) fn source(
    subdir: &Subdir,
    uris: &[crate::ast::Expr],
    incremental_location: &Option<Vec<crate::ast::Expr>>,
) -> Result<RestoreSource, SqlError> {
    let mut uris = texts("URI", uris)?.into_iter();
    let collection = uris.next().ok_or_else(|| SqlError::InvalidValue {
        what: "URI".into(),
        reason: "no collection URI".into(),
    })?;
    Ok(RestoreSource {
        collection,
        locality_uris: uris.collect(),
        incremental_location: incremental(incremental_location)?,
        backup: match subdir_text(subdir)? {
            None => BackupChoice::Latest,
            Some(s) => BackupChoice::Subdir(s),
        },
    })
}

impl BackupStatements {
    pub(super) async fn backup(
        &self,
        ctx: &dyn SqlContext,
        stmt: &Statement,
        b: &Backup,
    ) -> Result<ResultSet, SqlError> {
        let now = self.now();
        let end_time = match &b.as_of {
            Some(e) => evaluate_as_of(e, now)?,
            None => now,
        };
        let all = self.host.catalog.descriptors(end_time)?;
        let names = Names::new(&all);
        let resolved = resolve_targets(&names, &b.targets, &ctx.current_database())?;
        check_backup_privileges(ctx, &names, &b.targets, &resolved)?;
        check_dependencies(&names, &resolved.ids)?;
        let descriptors: Vec<_> = all
            .iter()
            .filter(|d| resolved.ids.contains(&d.id))
            .cloned()
            .collect();
        let spans = descriptors
            .iter()
            .filter(|d| !d.exclude_data_from_backup)
            .flat_map(|d| d.spans.iter().cloned())
            .collect();
        let index_spans = descriptors
            .iter()
            .filter(|d| !d.exclude_data_from_backup)
            .flat_map(|d| self.host.catalog.index_spans(d))
            .collect();
        let mut uris = texts("URI", &b.to)?.into_iter();
        let collection = uris.next().unwrap_or_default();
        let layer = match &b.subdir {
            None => LayerChoice::NewFull,
            Some(Subdir::Latest) => LayerChoice::Latest,
            Some(s) => LayerChoice::Subdir(subdir_text(s)?.unwrap_or_default()),
        };
        let detached = flag("detached", &b.options.detached)?;
        let spec = BackupSpec {
            description: stmt.redacted().to_string(),
            user: ctx.user(),
            descriptors,
            spans,
            index_spans,
            full_cluster: matches!(b.targets, Targets::Cluster),
            end_time,
            destination: Destination {
                collection,
                locality_uris: uris.collect(),
                incremental_location: incremental(&b.options.incremental_location)?,
                layer,
            },
            revision_history: flag("revision_history", &b.options.revision_history)?,
            encryption_passphrase: b
                .options
                .encryption_passphrase
                .as_ref()
                .map(|e| text("encryption_passphrase", e))
                .transpose()?,
            detached,
        };
        let r = self.backups.backup(spec).await?;
        Ok(job_rows(
            detached,
            r.job_id,
            r.status,
            r.fraction_completed,
            [r.rows, r.index_entries, r.bytes],
        ))
    }

    pub(super) async fn restore(
        &self,
        ctx: &dyn SqlContext,
        stmt: &Statement,
        r: &Restore,
    ) -> Result<ResultSet, SqlError> {
        let o = &r.options;
        let source = source(&r.subdir, &r.from, &o.incremental_location)?;
        let passphrase = o
            .encryption_passphrase
            .as_ref()
            .map(|e| text("encryption_passphrase", e))
            .transpose()?;
        let chain = read_backup(self.host.storage.as_ref(), &source, passphrase.as_deref()).await?;
        let now = self.now();
        let as_of = r
            .as_of
            .as_ref()
            .map(|e| evaluate_as_of(e, now))
            .transpose()?;
        let backup = chain.descriptors(as_of).await?;
        let names = Names::new(&backup);
        let live_all = self.host.catalog.descriptors(now)?;
        let live = Names::new(&live_all);
        let new_db_name = o
            .new_db_name
            .as_ref()
            .map(|e| text("new_db_name", e))
            .transpose()?;
        let into_db = o.into_db.as_ref().map(|e| text("into_db", e)).transpose()?;
        let mut rewrites: BTreeMap<DescriptorId, DescriptorRewrite> = BTreeMap::new();
        let targets = match &r.targets {
            Targets::Cluster => {
                if !ctx.is_admin() {
                    return Err(SqlError::Privilege(format!(
                        "only users with the admin role are allowed to restore a full cluster: \
                         user {} does not have the admin role",
                        ctx.user()
                    )));
                }
                RestoreTargets::Cluster
            }
            Targets::Databases(dbs) => {
                if new_db_name.is_some() && dbs.len() != 1 {
                    return Err(SqlError::InvalidValue {
                        what: "option \"new_db_name\"".into(),
                        reason: "it renames one database: restore one database at a time".into(),
                    });
                }
                let mut ids = Vec::new();
                for name in dbs {
                    let db = names.database(name.as_str()).ok_or_else(|| {
                        SqlError::NotFound(format!("database \"{name}\" is not in the backup"))
                    })?;
                    let target = new_db_name.clone().unwrap_or_else(|| db.name.clone());
                    if live.database(&target).is_some() {
                        return Err(SqlError::AlreadyExists(format!(
                            "database \"{target}\" already exists: restore with new_db_name"
                        )));
                    }
                    ids.push(db.id);
                    let ids_needed = 1 + names.contents(db.id).len();
                    let fresh = self.host.catalog.allocate_descriptor_ids(ids_needed)?;
                    let mut fresh = fresh.into_iter();
                    let mut next = || {
                        fresh.next().ok_or_else(|| {
                            SqlError::Exec("the catalog allocated too few ids".into())
                        })
                    };
                    rewrites.insert(
                        db.id,
                        DescriptorRewrite {
                            new_id: next()?,
                            name: new_db_name.clone(),
                            ..DescriptorRewrite::default()
                        },
                    );
                    for d in names.contents(db.id) {
                        rewrites.insert(
                            d.id,
                            DescriptorRewrite {
                                new_id: next()?,
                                ..DescriptorRewrite::default()
                            },
                        );
                    }
                }
                RestoreTargets::Databases(ids)
            }
            Targets::Tables(patterns) => {
                let mut ids = Vec::new();
                for p in patterns {
                    for d in names.resolve_pattern(p, &ctx.current_database())? {
                        if is_relation(d) && !ids.contains(&d.id) {
                            ids.push(d.id);
                        }
                    }
                }
                let fresh = self.host.catalog.allocate_descriptor_ids(ids.len())?;
                for (id, new_id) in ids.iter().zip(fresh) {
                    let Some(d) = names.by_id.get(id) else {
                        continue;
                    };
                    let db_name = match &into_db {
                        Some(n) => n.clone(),
                        None => names.parents(d).0,
                    };
                    let target_db = live.database(&db_name).ok_or_else(|| {
                        SqlError::NotFound(format!(
                            "a database named \"{db_name}\" needs to exist to restore table \"{}\"",
                            d.name
                        ))
                    })?;
                    let exists = live
                        .contents(target_db.id)
                        .iter()
                        .any(|l| l.name == d.name && l.kind != DescriptorKind::Schema);
                    // The table goes into the schema of its backed-up
                    // schema's name in the target database.
                    let schema_name = match names.parents(d).1 {
                        n if n.is_empty() => "public".to_string(),
                        n => n,
                    };
                    let Some(schema_id) = live.schema_id(target_db.id, &schema_name) else {
                        return Err(SqlError::NotFound(format!(
                            "a schema named \"{schema_name}\" needs to exist in database \"{}\" \
                             to restore table \"{}\": create it first",
                            target_db.name, d.name
                        )));
                    };
                    if exists {
                        return Err(SqlError::AlreadyExists(format!(
                            "relation \"{}.{schema_name}.{}\" already exists",
                            target_db.name, d.name
                        )));
                    }
                    rewrites.insert(
                        *id,
                        DescriptorRewrite {
                            new_id,
                            parent_id: Some(target_db.id),
                            parent_schema_id: Some(schema_id),
                            name: None,
                        },
                    );
                }
                RestoreTargets::Tables(ids)
            }
        };
        let index_spans = backup
            .iter()
            .filter(|d| targets == RestoreTargets::Cluster || rewrites.contains_key(&d.id))
            .flat_map(|d| self.host.catalog.index_spans(d))
            .collect();
        let detached = flag("detached", &o.detached)?;
        let spec = RestoreSpec {
            description: stmt.redacted().to_string(),
            user: ctx.user(),
            source,
            as_of,
            targets,
            index_spans,
            rewrites,
            options: RestoreOptions {
                skip_missing_foreign_keys: flag(
                    "skip_missing_foreign_keys",
                    &o.skip_missing_foreign_keys,
                )?,
                skip_missing_sequences: flag("skip_missing_sequences", &o.skip_missing_sequences)?,
                skip_missing_views: flag("skip_missing_views", &o.skip_missing_views)?,
                encryption_passphrase: passphrase,
                detached,
            },
        };
        let res = self.restores.restore(spec).await?;
        Ok(job_rows(
            detached,
            res.job_id,
            res.status,
            res.fraction_completed,
            [res.rows, res.index_entries, res.bytes],
        ))
    }
}
