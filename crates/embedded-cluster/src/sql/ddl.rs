//! Schema changes: databases, schemas, tables, indexes, views, drops; and
//! the other objects (sequences, enum types, zone configs, storage
//! parameters, cluster settings) in `objects`.

use sqlparser::ast::{
    ColumnOption, CreateIndex, CreateTable, DataType, Expr, ObjectName, ObjectType, Query,
    SchemaName, Statement, TableConstraint,
};

use super::dml::{index_entry, table_rows};
use super::privileges::{is_admin, kind_word, require, require_admin};
use super::value::ColumnType;
use super::{Ctx, QueryResult, SqlError, ident, name_parts};
use crate::catalog::model::{
    Body, ColumnDesc, DefaultExpr, Desc, ForeignKeyDesc, IndexDesc, TableDesc,
};
use crate::catalog::{ZONES_TABLE_ID, descriptor_key, encode_desc, system_key};
use crate::sql::kv::KvTxn;
use crate::sql::value::Value;

pub(crate) use super::objects::{
    configure_zone, create_enum, create_sequence, drop_type, exclude_data, nextval, unique_rowid,
};

/// Runs a DDL statement parsed by `sqlparser`.
pub(crate) fn execute(ctx: &mut Ctx<'_>, stmt: Statement) -> Result<QueryResult, SqlError> {
    match stmt {
        Statement::CreateDatabase {
            db_name,
            if_not_exists,
            ..
        } => create_database(ctx, &db_name, if_not_exists),
        Statement::CreateSchema {
            schema_name,
            if_not_exists,
            ..
        } => match schema_name {
            SchemaName::Simple(name) | SchemaName::NamedAuthorization(name, _) => {
                create_schema(ctx, &name, if_not_exists)
            }
            SchemaName::UnnamedAuthorization(_) => {
                Err(SqlError::Unsupported("CREATE SCHEMA AUTHORIZATION".into()))
            }
        },
        Statement::CreateTable(ct) => create_table(ctx, &ct),
        Statement::CreateIndex(ci) => create_index(ctx, &ci),
        Statement::CreateView {
            name,
            query,
            or_replace,
            materialized,
            ..
        } => {
            if materialized || or_replace {
                return Err(SqlError::Unsupported(
                    "materialized views and CREATE OR REPLACE VIEW".into(),
                ));
            }
            create_view(ctx, &name, &query)
        }
        Statement::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            ..
        } => {
            let mut tag = QueryResult::tag(format!("DROP {object_type}"));
            for n in &names {
                tag = drop(ctx, object_type, &name_parts(n), if_exists, cascade)?;
            }
            Ok(tag)
        }
        other => Err(SqlError::Unsupported(format!(
            "statement {}",
            first_words(&other.to_string())
        ))),
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Writes a database and its `public` schema (no privilege check).
pub(crate) fn create_database_raw(
    kv: &mut KvTxn,
    name: &str,
    owner: &str,
) -> Result<u64, SqlError> {
    let ids = kv.cluster().allocate_ids(2)?;
    let mut db = Desc::new(ids[0], name, 0, 0, owner, Body::Database);
    db.privileges
        .entry("public".into())
        .or_default()
        .insert("CONNECT".into());
    let mut schema = Desc::new(ids[1], "public", ids[0], 0, owner, Body::Schema);
    schema
        .privileges
        .entry("public".into())
        .or_default()
        .insert("USAGE".into());
    kv.put(descriptor_key(db.id), encode_desc(&db));
    kv.put(descriptor_key(schema.id), encode_desc(&schema));
    Ok(ids[0])
}

/// Stores a descriptor in the transaction and the statement's snapshot.
pub(crate) fn put_desc(ctx: &mut Ctx<'_>, d: Desc) {
    ctx.kv.put(descriptor_key(d.id), encode_desc(&d));
    ctx.cat.descs.insert(d.id, d);
}

fn create_database(
    ctx: &mut Ctx<'_>,
    name: &ObjectName,
    if_not_exists: bool,
) -> Result<QueryResult, SqlError> {
    require_admin(ctx, "only admins may create databases")?;
    let name = name_parts(name).join(".");
    if ctx.cat.database(&name).is_some() {
        if if_not_exists {
            return Ok(QueryResult::tag("CREATE DATABASE"));
        }
        return Err(SqlError::Duplicate {
            kind: "database",
            name,
        });
    }
    create_database_raw(ctx.kv, &name, ctx.user)?;
    Ok(QueryResult::tag("CREATE DATABASE"))
}

fn create_schema(
    ctx: &mut Ctx<'_>,
    name: &ObjectName,
    if_not_exists: bool,
) -> Result<QueryResult, SqlError> {
    let parts = name_parts(name);
    let (db_name, schema) = match parts.as_slice() {
        [s] => (ctx.database.to_string(), s.clone()),
        [d, s] => (d.clone(), s.clone()),
        _ => {
            return Err(SqlError::Invalid(format!(
                "invalid schema name {}",
                parts.join(".")
            )));
        }
    };
    let db = ctx
        .cat
        .database(&db_name)
        .ok_or_else(|| SqlError::UndefinedDatabase(db_name.clone()))?
        .clone();
    require(ctx, &db, "CREATE", "database")?;
    if ctx.cat.schema(db.id, &schema).is_some() {
        if if_not_exists {
            return Ok(QueryResult::tag("CREATE SCHEMA"));
        }
        return Err(SqlError::Duplicate {
            kind: "schema",
            name: schema,
        });
    }
    let id = ctx.kv.cluster().allocate_ids(1)?[0];
    put_desc(
        ctx,
        Desc::new(id, &schema, db.id, 0, ctx.user, Body::Schema),
    );
    Ok(QueryResult::tag("CREATE SCHEMA"))
}

/// Resolves where a new object goes, checks `CREATE` and that the name is free.
/// `Ok(None)` when it exists and `if_not_exists` is set.
pub(crate) fn new_object_place(
    ctx: &Ctx<'_>,
    parts: &[String],
    if_not_exists: bool,
) -> Result<Option<(u64, u64, String)>, SqlError> {
    let (db, schema, name) = ctx.cat.resolve_parent(parts, ctx.database)?;
    if let Some(d) = ctx.cat.descs.get(&db) {
        require(ctx, d, "CREATE", "database")?;
    }
    if ctx.cat.object(schema, &name).is_some() {
        if if_not_exists {
            return Ok(None);
        }
        return Err(SqlError::Duplicate {
            kind: "relation",
            name: parts.join("."),
        });
    }
    Ok(Some((db, schema, name)))
}

/// The column type a SQL type names: built-in or an enum in scope.
fn column_type(ctx: &Ctx<'_>, dt: &DataType) -> Result<ColumnType, SqlError> {
    if let Some(t) = ColumnType::parse_builtin(&dt.to_string()) {
        return Ok(t);
    }
    let parts = match dt {
        DataType::Custom(name, _) => name_parts(name),
        other => vec![other.to_string().to_lowercase()],
    };
    let full = parts.join(".");
    match ctx.cat.resolve(&parts, ctx.database) {
        Ok(d) if matches!(d.body, Body::Type(_)) => {
            require(ctx, d, "USAGE", "type")?;
            Ok(ColumnType::Enum(d.id))
        }
        _ => Err(SqlError::UndefinedType(full)),
    }
}

fn create_table(ctx: &mut Ctx<'_>, ct: &CreateTable) -> Result<QueryResult, SqlError> {
    if ct.query.is_some() {
        return Err(SqlError::Unsupported("CREATE TABLE AS".into()));
    }
    let parts = name_parts(&ct.name);
    let Some((db, schema, name)) = new_object_place(ctx, &parts, ct.if_not_exists)? else {
        return Ok(QueryResult::tag("CREATE TABLE"));
    };
    let id = ctx.kv.cluster().allocate_ids(1)?[0];
    let mut columns = Vec::new();
    let mut pk: Vec<String> = Vec::new();
    let mut uniques: Vec<(Option<String>, Vec<String>)> = Vec::new();
    let mut fks: Vec<(Option<String>, Vec<String>, ObjectName)> = Vec::new();
    for c in &ct.columns {
        let cname = ident(&c.name);
        if columns.iter().any(|x: &ColumnDesc| x.name == cname) {
            return Err(SqlError::Duplicate {
                kind: "column",
                name: cname,
            });
        }
        let mut col = ColumnDesc {
            name: cname.clone(),
            ty: column_type(ctx, &c.data_type)?,
            nullable: true,
            default: None,
            hidden: false,
        };
        for opt in &c.options {
            match &opt.option {
                ColumnOption::Null => {}
                ColumnOption::NotNull => col.nullable = false,
                ColumnOption::Default(e) => col.default = Some(default_expr(ctx, e)?),
                ColumnOption::Unique {
                    is_primary: true, ..
                } => pk = vec![cname.clone()],
                ColumnOption::Unique {
                    is_primary: false, ..
                } => uniques.push((None, vec![cname.clone()])),
                ColumnOption::ForeignKey { foreign_table, .. } => {
                    fks.push((
                        opt.name.as_ref().map(ident),
                        vec![cname.clone()],
                        foreign_table.clone(),
                    ));
                }
                other => return Err(SqlError::Unsupported(format!("column option {other}"))),
            }
        }
        columns.push(col);
    }
    for con in &ct.constraints {
        match con {
            TableConstraint::PrimaryKey { columns: cols, .. } => {
                pk = cols
                    .iter()
                    .map(|c| expr_name(&c.column.expr))
                    .collect::<Result<_, _>>()?;
            }
            TableConstraint::Unique {
                name: n,
                columns: cols,
                ..
            } => {
                let cols = cols
                    .iter()
                    .map(|c| expr_name(&c.column.expr))
                    .collect::<Result<_, _>>()?;
                uniques.push((n.as_ref().map(ident), cols));
            }
            TableConstraint::ForeignKey {
                name: n,
                columns: cols,
                foreign_table,
                ..
            } => {
                fks.push((
                    n.as_ref().map(ident),
                    cols.iter().map(ident).collect(),
                    foreign_table.clone(),
                ));
            }
            other => return Err(SqlError::Unsupported(format!("constraint {other}"))),
        }
    }
    if pk.is_empty() {
        columns.push(ColumnDesc {
            name: "rowid".into(),
            ty: ColumnType::Int,
            nullable: false,
            default: Some(DefaultExpr::Expr("unique_rowid()".into())),
            hidden: true,
        });
        pk = vec!["rowid".into()];
    }
    let pos = |c: &str, cols: &[ColumnDesc]| {
        cols.iter()
            .position(|x| x.name == c)
            .ok_or_else(|| SqlError::UndefinedColumn(c.to_string()))
    };
    let primary_key: Vec<usize> = pk
        .iter()
        .map(|c| pos(c, &columns))
        .collect::<Result<_, _>>()?;
    for &i in &primary_key {
        columns[i].nullable = false;
    }
    let mut indexes = vec![IndexDesc {
        id: 1,
        name: format!("{name}_pkey"),
        columns: primary_key.clone(),
        unique: true,
    }];
    for (n, cols) in uniques {
        let idx_cols: Vec<usize> = cols
            .iter()
            .map(|c| pos(c, &columns))
            .collect::<Result<_, _>>()?;
        let id = indexes.len() as u32 + 1;
        indexes.push(IndexDesc {
            id,
            name: n.unwrap_or_else(|| format!("{name}_{}_key", cols.join("_"))),
            columns: idx_cols,
            unique: true,
        });
    }
    let mut foreign_keys = Vec::new();
    for (n, cols, target) in fks {
        let target_parts = name_parts(&target);
        let ref_table = if target_parts.last() == Some(&name) && target_parts.len() == 1 {
            id
        } else {
            let t = ctx.cat.resolve(&target_parts, ctx.database)?;
            let td = t
                .table()
                .ok_or_else(|| SqlError::Invalid(format!("{} is not a table", t.name)))?;
            if td.primary_key.len() != cols.len() {
                return Err(SqlError::Invalid(format!(
                    "foreign key on {} must reference the whole primary key of {}",
                    cols.join(", "),
                    t.name
                )));
            }
            t.id
        };
        let fk_cols: Vec<usize> = cols
            .iter()
            .map(|c| pos(c, &columns))
            .collect::<Result<_, _>>()?;
        foreign_keys.push(ForeignKeyDesc {
            name: n.unwrap_or_else(|| format!("{name}_{}_fkey", cols.join("_"))),
            columns: fk_cols,
            ref_table,
        });
    }
    let next_index_id = indexes.len() as u32 + 1;
    let table = TableDesc {
        columns,
        primary_key,
        indexes,
        foreign_keys,
        exclude_data_from_backup: false,
        next_index_id,
    };
    put_desc(
        ctx,
        Desc::new(id, &name, db, schema, ctx.user, Body::Table(table)),
    );
    Ok(QueryResult::tag("CREATE TABLE"))
}

/// A column default: `nextval('seq')` becomes a sequence reference.
fn default_expr(ctx: &Ctx<'_>, e: &Expr) -> Result<DefaultExpr, SqlError> {
    if let Expr::Function(f) = e
        && name_parts(&f.name).join(".") == "nextval"
        && let [Some(Expr::Value(v))] = super::expr::function_args(&f.args)?.as_slice()
        && let Value::String(seq) = super::expr::literal(&v.value)?
    {
        let parts: Vec<String> = seq.split('.').map(str::to_string).collect();
        let d = ctx.cat.resolve(&parts, ctx.database)?;
        if !matches!(d.body, Body::Sequence(_)) {
            return Err(SqlError::Invalid(format!("{seq} is not a sequence")));
        }
        return Ok(DefaultExpr::Nextval(d.id));
    }
    Ok(DefaultExpr::Expr(e.to_string()))
}

fn expr_name(e: &Expr) -> Result<String, SqlError> {
    match e {
        Expr::Identifier(i) => Ok(ident(i)),
        other => Err(SqlError::Unsupported(format!(
            "index on expression {other}"
        ))),
    }
}

fn create_index(ctx: &mut Ctx<'_>, ci: &CreateIndex) -> Result<QueryResult, SqlError> {
    let parts = name_parts(&ci.table_name);
    let mut desc = ctx.cat.resolve(&parts, ctx.database)?.clone();
    require(ctx, &desc, "CREATE", "relation")?;
    let Body::Table(t) = &mut desc.body else {
        return Err(SqlError::Invalid(format!("{} is not a table", desc.name)));
    };
    let cols: Vec<String> = ci
        .columns
        .iter()
        .map(|c| expr_name(&c.column.expr))
        .collect::<Result<_, _>>()?;
    let name = match &ci.name {
        Some(n) => name_parts(n).join("."),
        None => format!("{}_{}_idx", desc.name, cols.join("_")),
    };
    if t.indexes.iter().any(|i| i.name == name) {
        if ci.if_not_exists {
            return Ok(QueryResult::tag("CREATE INDEX"));
        }
        return Err(SqlError::Duplicate {
            kind: "index",
            name,
        });
    }
    let columns = cols
        .iter()
        .map(|c| {
            t.columns
                .iter()
                .position(|x| &x.name == c)
                .ok_or_else(|| SqlError::UndefinedColumn(c.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let idx = IndexDesc {
        id: t.next_index_id,
        name,
        columns,
        unique: ci.unique,
    };
    t.next_index_id += 1;
    // Backfill from the current rows.
    let table = t.clone();
    for (_, row) in table_rows(ctx, desc.id, &table)? {
        let (k, v) = index_entry(desc.id, &table, &idx, &row);
        if idx.unique && ctx.kv.get(&k)?.is_some() {
            return Err(SqlError::UniqueViolation(idx.name.clone()));
        }
        ctx.kv.put(k, v);
    }
    if let Body::Table(t) = &mut desc.body {
        t.indexes.push(idx);
    }
    put_desc(ctx, desc);
    Ok(QueryResult::tag("CREATE INDEX"))
}

fn create_view(
    ctx: &mut Ctx<'_>,
    name: &ObjectName,
    query: &Query,
) -> Result<QueryResult, SqlError> {
    let parts = name_parts(name);
    let Some((db, schema, vname)) = new_object_place(ctx, &parts, false)? else {
        return Ok(QueryResult::tag("CREATE VIEW"));
    };
    // Run the query once: it must be valid, and the creator must be able to read it.
    super::select::query(ctx, query)?;
    let sources = super::select::sources(ctx, query)?;
    let id = ctx.kv.cluster().allocate_ids(1)?[0];
    let body = Body::View(crate::catalog::model::ViewDesc {
        query: query.to_string(),
        sources,
    });
    put_desc(ctx, Desc::new(id, &vname, db, schema, ctx.user, body));
    Ok(QueryResult::tag("CREATE VIEW"))
}

/// Objects that depend on `id` (name of the first, if any).
fn dependent_of(ctx: &Ctx<'_>, id: u64, except: &[u64]) -> Option<String> {
    ctx.cat
        .descs
        .values()
        .filter(|d| d.id != id && !except.contains(&d.id))
        .find(|d| d.dependencies().iter().any(|dep| dep.id == id))
        .map(|d| d.name.clone())
}

fn drop(
    ctx: &mut Ctx<'_>,
    kind: ObjectType,
    parts: &[String],
    if_exists: bool,
    cascade: bool,
) -> Result<QueryResult, SqlError> {
    let tag = QueryResult::tag(format!("DROP {kind}"));
    let full = parts.join(".");
    let desc = match kind {
        ObjectType::Database => match ctx.cat.database(&full) {
            Some(d) => d.clone(),
            None if if_exists => return Ok(tag),
            None => return Err(SqlError::UndefinedDatabase(full)),
        },
        ObjectType::Table | ObjectType::View | ObjectType::Sequence => {
            match ctx.cat.resolve(parts, ctx.database) {
                Ok(d) => d.clone(),
                Err(SqlError::UndefinedRelation(_)) if if_exists => return Ok(tag),
                Err(e) => return Err(e),
            }
        }
        ObjectType::Schema => {
            let d = super::privileges::resolve_kind(ctx, super::special::ObjKind::Schema, parts);
            match d {
                Ok(d) => d.clone(),
                Err(_) if if_exists => return Ok(tag),
                Err(e) => return Err(e),
            }
        }
        other => return Err(SqlError::Unsupported(format!("DROP {other}"))),
    };
    let expected = match kind {
        ObjectType::Table => matches!(desc.body, Body::Table(_)),
        ObjectType::View => matches!(desc.body, Body::View(_)),
        ObjectType::Sequence => matches!(desc.body, Body::Sequence(_)),
        _ => true,
    };
    if !expected {
        return Err(SqlError::Invalid(format!(
            "\"{}\" is not a {}",
            desc.name,
            kind.to_string().to_lowercase()
        )));
    }
    if !(is_admin(ctx) || desc.owner == ctx.user) {
        require(ctx, &desc, "DROP", kind_word(&desc))?;
    }
    let mut victims = vec![desc.id];
    if matches!(desc.body, Body::Database | Body::Schema) {
        let inside: Vec<u64> = ctx
            .cat
            .descs
            .values()
            .filter(|d| d.parent_id == desc.id || d.parent_schema_id == desc.id)
            .map(|d| d.id)
            .collect();
        let non_public = inside.iter().filter(|id| {
            ctx.cat
                .descs
                .get(id)
                .is_some_and(|d| !(matches!(d.body, Body::Schema) && d.name == "public"))
        });
        if non_public.count() > 0 && !cascade {
            return Err(SqlError::Invalid(format!(
                "{} \"{}\" is not empty and CASCADE was not specified",
                kind_word(&desc),
                desc.name
            )));
        }
        victims.extend(inside);
    }
    for &id in &victims {
        if let Some(dep) = dependent_of(ctx, id, &victims) {
            let name = ctx
                .cat
                .descs
                .get(&id)
                .map(|d| d.name.clone())
                .unwrap_or_default();
            return Err(SqlError::DependentObjects(
                format!("relation \"{name}\""),
                format!("\"{dep}\""),
            ));
        }
    }
    for id in victims {
        ctx.kv.delete(descriptor_key(id));
        ctx.kv
            .delete(system_key(ZONES_TABLE_ID, &Value::Int(id as i64)));
        ctx.cat.descs.remove(&id);
    }
    Ok(tag)
}
