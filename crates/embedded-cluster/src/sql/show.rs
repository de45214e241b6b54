//! `SHOW ...` statements and the other matcher-recognised statements.

use super::objects::{set_setting, show_setting};
use super::privileges::{self, has, require, resolve_kind};
use super::special::{ObjKind, Special};
use super::value::Value;
use super::{Ctx, QueryResult, SqlError};
use crate::catalog::model::Body;
use crate::fingerprint::{check_pairs, fingerprint, index_span};

/// Runs a statement the matcher recognised (other than transaction control).
pub(crate) fn special(ctx: &mut Ctx<'_>, s: Special) -> Result<QueryResult, SqlError> {
    match s {
        Special::ConfigureZone { table, ttl } => super::ddl::configure_zone(ctx, &table, ttl),
        Special::ExcludeData { table, exclude } => super::ddl::exclude_data(ctx, &table, exclude),
        Special::Fingerprints(table) => fingerprints(ctx, &table),
        Special::ShowDatabases => show_databases(ctx),
        Special::ShowTables(db) => show_tables(ctx, db),
        Special::ShowGrants { on, users } => show_grants(ctx, on, &users),
        Special::ShowUsers => Ok(result(
            &[
                ("username", "STRING"),
                ("is_role", "BOOL"),
                ("member_of", "STRING"),
            ],
            ctx.cat
                .users
                .iter()
                .map(|(n, r)| {
                    vec![
                        Value::String(n.clone()),
                        Value::Bool(r.is_role),
                        Value::String(r.member_of.join(",")),
                    ]
                })
                .collect(),
        )),
        Special::CreateUser {
            name,
            is_role,
            if_not_exists,
            password,
        } => privileges::create_user(ctx, &name, is_role, if_not_exists, password),
        Special::AlterUserPassword {
            name,
            if_exists,
            password,
        } => privileges::alter_user_password(ctx, &name, if_exists, password),
        Special::DropUser { name, if_exists } => privileges::drop_user(ctx, &name, if_exists),
        Special::Grant {
            revoke,
            privileges: p,
            kind,
            objects,
            grantees,
        } => privileges::grant(ctx, revoke, &p, kind, &objects, &grantees),
        Special::GrantRole {
            revoke,
            roles,
            members,
        } => privileges::grant_role(ctx, revoke, &roles, &members),
        Special::CreateEnum { name, values } => super::ddl::create_enum(ctx, &name, values),
        Special::DropType { name, if_exists } => super::ddl::drop_type(ctx, &name, if_exists),
        Special::CreateSequence {
            name,
            if_not_exists,
            start,
            increment,
        } => super::ddl::create_sequence(ctx, &name, if_not_exists, start, increment),
        Special::SetClusterSetting { name, value } => set_setting(ctx, &name, &value),
        Special::ShowClusterSetting(name) => show_setting(ctx, &name),
        other => Err(SqlError::TxnState(format!("{other:?} cannot run here"))),
    }
}

fn result(cols: &[(&str, &str)], rows: Vec<Vec<Value>>) -> QueryResult {
    let tag = format!("SHOW {}", rows.len());
    QueryResult {
        columns: cols
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect(),
        rows,
        tag,
    }
}

/// One row per index: `index_name, fingerprint`.
fn fingerprints(ctx: &mut Ctx<'_>, table: &[String]) -> Result<QueryResult, SqlError> {
    let d = ctx.cat.resolve(table, ctx.database)?.clone();
    require(ctx, &d, "SELECT", "relation")?;
    let Body::Table(t) = &d.body else {
        return Err(SqlError::Invalid(format!("\"{}\" is not a table", d.name)));
    };
    let mut rows = Vec::new();
    for idx in &t.indexes {
        let pairs = ctx.kv.scan(&index_span(d.id, idx.id))?;
        check_pairs(d.id, idx.id, &pairs)?;
        let fp = fingerprint(&pairs).map_or(Value::Null, |f| Value::Int(f as i64));
        rows.push(vec![Value::String(idx.name.clone()), fp]);
    }
    Ok(result(
        &[("index_name", "STRING"), ("fingerprint", "INT8")],
        rows,
    ))
}

fn show_databases(ctx: &Ctx<'_>) -> Result<QueryResult, SqlError> {
    let rows = ctx
        .cat
        .descs
        .values()
        .filter(|d| matches!(d.body, Body::Database) && has(ctx, d, "CONNECT"))
        .map(|d| {
            vec![
                Value::String(d.name.clone()),
                Value::String(d.owner.clone()),
            ]
        })
        .collect::<Vec<_>>();
    let mut rows = rows;
    rows.sort_by(|a, b| a[0].order_cmp(&b[0]));
    Ok(result(
        &[("database_name", "STRING"), ("owner", "STRING")],
        rows,
    ))
}

fn show_tables(ctx: &Ctx<'_>, db: Option<String>) -> Result<QueryResult, SqlError> {
    let name = db.unwrap_or_else(|| ctx.database.to_string());
    let d = ctx
        .cat
        .database(&name)
        .ok_or_else(|| SqlError::UndefinedDatabase(name.clone()))?;
    require(ctx, d, "CONNECT", "database")?;
    let mut rows: Vec<Vec<Value>> = ctx
        .cat
        .objects_of(d.id)
        .filter(|o| matches!(o.body, Body::Table(_) | Body::View(_) | Body::Sequence(_)))
        .map(|o| {
            let schema = ctx
                .cat
                .descs
                .get(&o.parent_schema_id)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            let kind = match o.body {
                Body::View(_) => "view",
                Body::Sequence(_) => "sequence",
                _ => "table",
            };
            vec![
                Value::String(schema),
                Value::String(o.name.clone()),
                Value::String(kind.into()),
                Value::String(o.owner.clone()),
            ]
        })
        .collect();
    rows.sort_by(|a, b| a[0].order_cmp(&b[0]).then(a[1].order_cmp(&b[1])));
    Ok(result(
        &[
            ("schema_name", "STRING"),
            ("table_name", "STRING"),
            ("type", "STRING"),
            ("owner", "STRING"),
        ],
        rows,
    ))
}

fn show_grants(
    ctx: &Ctx<'_>,
    on: Option<(ObjKind, Vec<Vec<String>>)>,
    users: &[String],
) -> Result<QueryResult, SqlError> {
    let targets: Vec<&crate::catalog::model::Desc> = match &on {
        Some((kind, names)) => names
            .iter()
            .map(|n| resolve_kind(ctx, *kind, n))
            .collect::<Result<_, _>>()?,
        None => {
            let db = ctx
                .cat
                .database(ctx.database)
                .ok_or_else(|| SqlError::UndefinedDatabase(ctx.database.to_string()))?;
            std::iter::once(db)
                .chain(ctx.cat.objects_of(db.id))
                .collect()
        }
    };
    let mut rows = Vec::new();
    for d in targets {
        let db = if d.parent_id == 0 {
            d.name.clone()
        } else {
            ctx.cat
                .descs
                .get(&d.parent_id)
                .map(|x| x.name.clone())
                .unwrap_or_default()
        };
        let mut grants: Vec<(String, String)> = vec![
            ("admin".into(), "ALL".into()),
            ("root".into(), "ALL".into()),
        ];
        if !matches!(d.owner.as_str(), "root" | "admin") {
            grants.push((d.owner.clone(), "ALL".into()));
        }
        for (g, ps) in &d.privileges {
            grants.extend(ps.iter().map(|p| (g.clone(), p.clone())));
        }
        for (g, p) in grants {
            if !users.is_empty() && !users.contains(&g) {
                continue;
            }
            rows.push(vec![
                Value::String(db.clone()),
                Value::String(d.name.clone()),
                Value::String(d.kind().as_str().into()),
                Value::String(g),
                Value::String(p),
            ]);
        }
    }
    Ok(result(
        &[
            ("database_name", "STRING"),
            ("object_name", "STRING"),
            ("object_type", "STRING"),
            ("grantee", "STRING"),
            ("privilege_type", "STRING"),
        ],
        rows,
    ))
}
