//! Sequences, enum types, zone configurations, the
//! `exclude_data_from_backup` storage parameter and cluster settings.

use std::time::Duration;

use backup_exec::IntentPolicy;
use backup_format::Timestamp;

use super::ddl::{new_object_place, put_desc};
use super::encoding::{decode_row, encode_key, encode_row};
use super::privileges::{require, require_admin};
use super::value::Value;
use super::{Ctx, QueryResult, SqlError};
use crate::catalog::model::{Body, Desc, SequenceDesc, TypeDesc};
use crate::catalog::{SETTINGS_TABLE_ID, ZONES_TABLE_ID, ZoneConfig, system_key};
use crate::keys;

/// Cluster settings with their defaults (others must be set before `SHOW`).
const SETTING_DEFAULTS: &[(&str, &str)] = &[
    ("bulkio.backup.file_size", "128 MiB"),
    ("kv.closed_timestamp.target_duration", "3s"),
    ("cluster.organization", ""),
];

/// `CREATE SEQUENCE`.
pub(crate) fn create_sequence(
    ctx: &mut Ctx<'_>,
    parts: &[String],
    if_not_exists: bool,
    start: i64,
    increment: i64,
) -> Result<QueryResult, SqlError> {
    let Some((db, schema, name)) = new_object_place(ctx, parts, if_not_exists)? else {
        return Ok(QueryResult::tag("CREATE SEQUENCE"));
    };
    let id = ctx.kv.cluster().allocate_ids(1)?[0];
    put_desc(
        ctx,
        Desc::new(
            id,
            &name,
            db,
            schema,
            ctx.user,
            Body::Sequence(SequenceDesc { start, increment }),
        ),
    );
    Ok(QueryResult::tag("CREATE SEQUENCE"))
}

/// The key holding a sequence's last value.
fn sequence_key(id: u64) -> Vec<u8> {
    keys::row_key(id, 1, &encode_key(&[&Value::Int(0)]))
}

/// The next value of a sequence; like CockroachDB's, not transactional
/// (a rolled-back transaction does not give its values back).
pub(crate) fn nextval(ctx: &mut Ctx<'_>, desc: &Desc) -> Result<i64, SqlError> {
    let Body::Sequence(seq) = &desc.body else {
        return Err(SqlError::Invalid(format!(
            "\"{}\" is not a sequence",
            desc.name
        )));
    };
    require(ctx, desc, "UPDATE", "relation")?;
    let cluster = ctx.kv.cluster().clone();
    let _guard = cluster
        .inner
        .sql
        .commit_lock
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let key = sequence_key(desc.id);
    let current = cluster
        .get(&key, Timestamp::MAX, IntentPolicy::FailFast)?
        .and_then(|v| decode_row(&v, 1))
        .and_then(|row| row.first().and_then(Value::as_int));
    let next = match current {
        Some(c) => c.checked_add(seq.increment).ok_or_else(|| {
            SqlError::Invalid(format!(
                "nextval: reached the limit of sequence {}",
                desc.name
            ))
        })?,
        None => seq.start,
    };
    cluster.write_batch(&[(key, Some(encode_row(&[Value::Int(next)])))])?;
    Ok(next)
}

/// A cluster-unique integer that grows with time (`unique_rowid()`).
pub(crate) fn unique_rowid(ctx: &mut Ctx<'_>) -> Result<i64, SqlError> {
    let cluster = ctx.kv.cluster().clone();
    let now = cluster.now()?.wall;
    let mut last = cluster
        .inner
        .sql
        .last_rowid
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    *last = (*last + 1).max(now);
    Ok(*last)
}

/// `CREATE TYPE .. AS ENUM`.
pub(crate) fn create_enum(
    ctx: &mut Ctx<'_>,
    parts: &[String],
    values: Vec<String>,
) -> Result<QueryResult, SqlError> {
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = values.iter().find(|v| !seen.insert(v.as_str())) {
        return Err(SqlError::Invalid(format!(
            "enum definition contains duplicate value {dup:?}"
        )));
    }
    let Some((db, schema, name)) = new_object_place(ctx, parts, false)? else {
        return Ok(QueryResult::tag("CREATE TYPE"));
    };
    let id = ctx.kv.cluster().allocate_ids(1)?[0];
    let mut d = Desc::new(
        id,
        &name,
        db,
        schema,
        ctx.user,
        Body::Type(TypeDesc { values }),
    );
    d.privileges
        .entry("public".into())
        .or_default()
        .insert("USAGE".into());
    put_desc(ctx, d);
    Ok(QueryResult::tag("CREATE TYPE"))
}

/// `DROP TYPE`.
pub(crate) fn drop_type(
    ctx: &mut Ctx<'_>,
    parts: &[String],
    if_exists: bool,
) -> Result<QueryResult, SqlError> {
    let full = parts.join(".");
    let d = match ctx.cat.resolve(parts, ctx.database) {
        Ok(d) if matches!(d.body, Body::Type(_)) => d.clone(),
        Ok(_) | Err(SqlError::UndefinedRelation(_)) if if_exists => {
            return Ok(QueryResult::tag("DROP TYPE"));
        }
        _ => return Err(SqlError::UndefinedType(full)),
    };
    if !(super::privileges::is_admin(ctx) || d.owner == ctx.user) {
        require(ctx, &d, "DROP", "type")?;
    }
    if let Some(user) = ctx
        .cat
        .descs
        .values()
        .find(|x| x.dependencies().iter().any(|dep| dep.id == d.id))
    {
        return Err(SqlError::DependentObjects(
            format!("type \"{}\"", d.name),
            format!("\"{}\"", user.name),
        ));
    }
    ctx.kv.delete(crate::catalog::descriptor_key(d.id));
    ctx.cat.descs.remove(&d.id);
    Ok(QueryResult::tag("DROP TYPE"))
}

fn table_for_change(ctx: &Ctx<'_>, parts: &[String], privilege: &str) -> Result<Desc, SqlError> {
    let d = ctx.cat.resolve(parts, ctx.database)?.clone();
    if d.table().is_none() {
        return Err(SqlError::Invalid(format!("\"{}\" is not a table", d.name)));
    }
    if !(super::privileges::is_admin(ctx) || d.owner == ctx.user) {
        require(ctx, &d, privilege, "relation")?;
    }
    Ok(d)
}

/// `ALTER TABLE t CONFIGURE ZONE USING gc.ttlseconds = n`: stored in
/// `system.zones` and applied to the table's GC at once.
pub(crate) fn configure_zone(
    ctx: &mut Ctx<'_>,
    parts: &[String],
    ttl: u64,
) -> Result<QueryResult, SqlError> {
    let d = table_for_change(ctx, parts, "ZONECONFIG")?;
    let zone = ZoneConfig {
        gc_ttl_seconds: ttl,
    };
    let bytes = serde_json::to_vec(&zone).map_err(|e| SqlError::Invalid(e.to_string()))?;
    ctx.kv
        .put(system_key(ZONES_TABLE_ID, &Value::Int(d.id as i64)), bytes);
    ctx.kv
        .cluster()
        .set_gc_ttl(d.id, Duration::from_secs(ttl))?;
    Ok(QueryResult::tag("CONFIGURE ZONE 1"))
}

/// `ALTER TABLE t SET (exclude_data_from_backup = b)`.
pub(crate) fn exclude_data(
    ctx: &mut Ctx<'_>,
    parts: &[String],
    exclude: bool,
) -> Result<QueryResult, SqlError> {
    let mut d = table_for_change(ctx, parts, "CREATE")?;
    if let Body::Table(t) = &mut d.body {
        t.exclude_data_from_backup = exclude;
    }
    put_desc(ctx, d);
    Ok(QueryResult::tag("ALTER TABLE"))
}

/// `SET CLUSTER SETTING`.
pub(crate) fn set_setting(
    ctx: &mut Ctx<'_>,
    name: &str,
    value: &str,
) -> Result<QueryResult, SqlError> {
    require_admin(ctx, "only admins may change cluster settings")?;
    ctx.kv.put(
        system_key(SETTINGS_TABLE_ID, &Value::String(name.to_string())),
        value.as_bytes().to_vec(),
    );
    Ok(QueryResult::tag("SET CLUSTER SETTING"))
}

/// `SHOW CLUSTER SETTING`.
pub(crate) fn show_setting(ctx: &mut Ctx<'_>, name: &str) -> Result<QueryResult, SqlError> {
    let stored = ctx.kv.get(&system_key(
        SETTINGS_TABLE_ID,
        &Value::String(name.to_string()),
    ))?;
    let value = match stored {
        Some(v) => String::from_utf8_lossy(&v).into_owned(),
        None => SETTING_DEFAULTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| SqlError::Invalid(format!("unknown cluster setting {name:?}")))?,
    };
    Ok(QueryResult {
        columns: vec![(name.to_string(), "STRING".into())],
        rows: vec![vec![Value::String(value)]],
        tag: "SHOW CLUSTER SETTING".into(),
    })
}
