//! `INSERT`, `UPSERT`, `UPDATE` and `DELETE`, with primary-key, unique,
//! not-null and foreign-key constraints and secondary index maintenance.

use backup_format::Span;
use sqlparser::ast::{
    Assignment, AssignmentTarget, Delete, Expr, FromTable, Insert, SetExpr, TableFactor,
    TableObject, TableWithJoins,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::encoding::{decode_row, encode_key, encode_row};
use super::expr::{Scope, eval, truthy};
use super::privileges::require;
use super::value::{ColumnType, Value};
use super::{Ctx, QueryResult, SqlError, ident, name_parts};
use crate::catalog::model::{Body, DefaultExpr, Desc, IndexDesc, TableDesc};
use crate::keys;

/// A row with its primary-index key.
pub(crate) type KeyedRow = (Vec<u8>, Vec<Value>);

/// The rows of a table: (primary key, values), in key order.
pub(crate) fn table_rows(ctx: &Ctx<'_>, id: u64, t: &TableDesc) -> Result<Vec<KeyedRow>, SqlError> {
    let span = Span::new(keys::index_prefix(id, 1), keys::index_prefix(id, 2));
    ctx.kv
        .scan(&span)?
        .into_iter()
        .map(|(k, v)| {
            let row = decode_row(&v, t.columns.len())
                .ok_or_else(|| SqlError::Invalid(format!("corrupt row in table {id}")))?;
            Ok((k, row))
        })
        .collect()
}

/// The primary-key key of a row.
pub(crate) fn pk_key(id: u64, t: &TableDesc, row: &[Value]) -> Vec<u8> {
    let vals: Vec<&Value> = t.primary_key.iter().map(|&i| &row[i]).collect();
    keys::row_key(id, 1, &encode_key(&vals))
}

/// The key and value of a row in a secondary index: a unique index maps the
/// indexed values to the primary key; otherwise the key carries both.
pub(crate) fn index_entry(
    id: u64,
    t: &TableDesc,
    idx: &IndexDesc,
    row: &[Value],
) -> (Vec<u8>, Vec<u8>) {
    let indexed: Vec<&Value> = idx.columns.iter().map(|&i| &row[i]).collect();
    let pk: Vec<&Value> = t.primary_key.iter().map(|&i| &row[i]).collect();
    if idx.unique && !indexed.iter().any(|v| v.is_null()) {
        (
            keys::row_key(id, idx.id, &encode_key(&indexed)),
            encode_key(&pk),
        )
    } else {
        let all: Vec<&Value> = indexed.into_iter().chain(pk).collect();
        (keys::row_key(id, idx.id, &encode_key(&all)), Vec::new())
    }
}

/// The table a DML statement names, with the privilege checked.
fn target(ctx: &Ctx<'_>, parts: &[String], privilege: &str) -> Result<(Desc, TableDesc), SqlError> {
    let d = ctx.cat.resolve(parts, ctx.database)?.clone();
    let Body::Table(t) = &d.body else {
        return Err(SqlError::Invalid(format!("\"{}\" is not a table", d.name)));
    };
    let t = t.clone();
    require(ctx, &d, privilege, "relation")?;
    Ok((d, t))
}

/// `INSERT` (or `UPSERT` when `upsert`).
pub(crate) fn insert(
    ctx: &mut Ctx<'_>,
    ins: &Insert,
    upsert: bool,
) -> Result<QueryResult, SqlError> {
    let TableObject::TableName(name) = &ins.table else {
        return Err(SqlError::Unsupported("INSERT into a table function".into()));
    };
    if ins.on.is_some() || ins.returning.is_some() {
        return Err(SqlError::Unsupported(
            "INSERT .. ON CONFLICT / RETURNING (use UPSERT)".into(),
        ));
    }
    let (d, t) = target(ctx, &name_parts(name), "INSERT")?;
    if upsert {
        require(ctx, &d, "UPDATE", "relation")?;
    }
    let targets: Vec<usize> = if ins.columns.is_empty() {
        (0..t.columns.len())
            .filter(|&i| !t.columns[i].hidden)
            .collect()
    } else {
        ins.columns
            .iter()
            .map(|c| {
                let n = ident(c);
                t.columns
                    .iter()
                    .position(|x| x.name == n)
                    .ok_or(SqlError::UndefinedColumn(n))
            })
            .collect::<Result<_, _>>()?
    };
    let source = ins
        .source
        .as_ref()
        .ok_or_else(|| SqlError::Unsupported("INSERT without VALUES".into()))?;
    let input: Vec<Vec<Value>> = match source.body.as_ref() {
        SetExpr::Values(values) => {
            let mut out = Vec::with_capacity(values.rows.len());
            for r in &values.rows {
                out.push(
                    r.iter()
                        .map(|e| eval(e, &Scope::empty(), ctx))
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
            out
        }
        _ => super::select::query(ctx, source)?.rows,
    };
    let n = input.len();
    for vals in input {
        if vals.len() != targets.len() {
            return Err(SqlError::Invalid(format!(
                "INSERT has {} expressions but {} target columns",
                vals.len(),
                targets.len()
            )));
        }
        let mut row: Vec<Option<Value>> = vec![None; t.columns.len()];
        for (&i, v) in targets.iter().zip(vals) {
            row[i] = Some(v);
        }
        let mut full = Vec::with_capacity(row.len());
        for (i, v) in row.into_iter().enumerate() {
            full.push(match v {
                Some(v) => v,
                None => default_value(ctx, &t, i)?,
            });
        }
        let full = check_row(ctx, &t, full)?;
        write_row(ctx, &d, &t, &full, upsert)?;
    }
    Ok(QueryResult::tag(format!(
        "{} 0 {n}",
        if upsert { "UPSERT" } else { "INSERT" }
    )))
}

/// The default of column `i`.
fn default_value(ctx: &mut Ctx<'_>, t: &TableDesc, i: usize) -> Result<Value, SqlError> {
    match &t.columns[i].default {
        None => Ok(Value::Null),
        Some(DefaultExpr::Nextval(seq)) => {
            let desc = ctx
                .cat
                .descs
                .get(seq)
                .cloned()
                .ok_or_else(|| SqlError::UndefinedRelation(format!("sequence [{seq}]")))?;
            Ok(Value::Int(super::ddl::nextval(ctx, &desc)?))
        }
        Some(DefaultExpr::Expr(text)) => {
            let e = Parser::new(&PostgreSqlDialect {})
                .try_with_sql(text)
                .and_then(|mut p| p.parse_expr())
                .map_err(|e| SqlError::Invalid(format!("bad default {text:?}: {e}")))?;
            eval(&e, &Scope::empty(), ctx)
        }
    }
}

/// Coerces each value to its column's type and checks NOT NULL.
fn check_row(ctx: &Ctx<'_>, t: &TableDesc, row: Vec<Value>) -> Result<Vec<Value>, SqlError> {
    row.into_iter()
        .zip(&t.columns)
        .map(|(v, c)| {
            let enum_values = match c.ty {
                ColumnType::Enum(id) => match ctx.cat.descs.get(&id).map(|d| &d.body) {
                    Some(Body::Type(ty)) => ty.values.clone(),
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            let v = c.ty.coerce(v, &enum_values).map_err(SqlError::Invalid)?;
            if v.is_null() && !c.nullable {
                return Err(SqlError::NotNullViolation(c.name.clone()));
            }
            Ok(v)
        })
        .collect()
}

/// Writes one row with its index entries, checking constraints.
fn write_row(
    ctx: &mut Ctx<'_>,
    d: &Desc,
    t: &TableDesc,
    row: &[Value],
    upsert: bool,
) -> Result<(), SqlError> {
    let key = pk_key(d.id, t, row);
    if let Some(old) = ctx.kv.get(&key)? {
        if !upsert {
            return Err(SqlError::UniqueViolation(
                t.indexes
                    .first()
                    .map(|i| i.name.clone())
                    .unwrap_or_default(),
            ));
        }
        let old = decode_row(&old, t.columns.len())
            .ok_or_else(|| SqlError::Invalid("corrupt row".into()))?;
        for idx in t.indexes.iter().skip(1) {
            ctx.kv.delete(index_entry(d.id, t, idx, &old).0);
        }
    }
    for fk in &t.foreign_keys {
        let vals: Vec<&Value> = fk.columns.iter().map(|&i| &row[i]).collect();
        if vals.iter().any(|v| v.is_null()) {
            continue;
        }
        let parent = keys::row_key(fk.ref_table, 1, &encode_key(&vals));
        let self_ref = fk.ref_table == d.id && parent == key;
        if !self_ref && ctx.kv.get(&parent)?.is_none() {
            return Err(SqlError::ForeignKeyViolation(format!(
                "insert on table \"{}\" violates foreign key constraint \"{}\"",
                d.name, fk.name
            )));
        }
    }
    let pk_bytes = key[keys::TABLE_PREFIX_LEN + 4..].to_vec();
    for idx in t.indexes.iter().skip(1) {
        let (k, v) = index_entry(d.id, t, idx, row);
        if !v.is_empty()
            && let Some(existing) = ctx.kv.get(&k)?
            && existing != pk_bytes
        {
            return Err(SqlError::UniqueViolation(idx.name.clone()));
        }
        ctx.kv.put(k, v);
    }
    ctx.kv.put(key, encode_row(row));
    Ok(())
}

/// Removes a row and its index entries; with `check_children`, fails if a
/// foreign key of another row still references it.
fn remove_row(
    ctx: &mut Ctx<'_>,
    d: &Desc,
    t: &TableDesc,
    row: &[Value],
    check_children: bool,
) -> Result<(), SqlError> {
    if check_children {
        let pk: Vec<&Value> = t.primary_key.iter().map(|&i| &row[i]).collect();
        let children: Vec<Desc> = ctx
            .cat
            .descs
            .values()
            .filter(|c| {
                c.table()
                    .is_some_and(|ct| ct.foreign_keys.iter().any(|fk| fk.ref_table == d.id))
            })
            .cloned()
            .collect();
        for child in children {
            let Some(ct) = child.table() else { continue };
            let rows = table_rows(ctx, child.id, ct)?;
            for fk in ct.foreign_keys.iter().filter(|fk| fk.ref_table == d.id) {
                let hit = rows.iter().any(|(_, r)| {
                    fk.columns
                        .iter()
                        .zip(&pk)
                        .all(|(&i, v)| r[i].sql_cmp(v) == Some(std::cmp::Ordering::Equal))
                        && !(child.id == d.id && pk_key(d.id, t, r) == pk_key(d.id, t, row))
                });
                if hit {
                    return Err(SqlError::ForeignKeyViolation(format!(
                        "delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
                        d.name, fk.name, child.name
                    )));
                }
            }
        }
    }
    for idx in t.indexes.iter().skip(1) {
        ctx.kv.delete(index_entry(d.id, t, idx, row).0);
    }
    ctx.kv.delete(pk_key(d.id, t, row));
    Ok(())
}

/// The rows of `d` that pass `selection`.
fn matching(
    ctx: &mut Ctx<'_>,
    d: &Desc,
    t: &TableDesc,
    alias: &str,
    selection: Option<&Expr>,
) -> Result<Vec<Vec<Value>>, SqlError> {
    let names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    let mut out = Vec::new();
    for (_, row) in table_rows(ctx, d.id, t)? {
        let keep = match selection {
            None => true,
            Some(e) => truthy(&eval(
                e,
                &Scope {
                    names: &names,
                    qualifier: alias,
                    row: &row,
                },
                ctx,
            )?),
        };
        if keep {
            out.push(row);
        }
    }
    Ok(out)
}

fn single_table(t: &TableWithJoins) -> Result<(Vec<String>, String), SqlError> {
    match &t.relation {
        TableFactor::Table { name, alias, .. } if t.joins.is_empty() => {
            let parts = name_parts(name);
            let alias = alias
                .as_ref()
                .map(|a| ident(&a.name))
                .unwrap_or_else(|| parts.last().cloned().unwrap_or_default());
            Ok((parts, alias))
        }
        _ => Err(SqlError::Unsupported(
            "joins and subqueries in UPDATE/DELETE".into(),
        )),
    }
}

/// `UPDATE t SET .. [WHERE ..]`.
pub(crate) fn update(
    ctx: &mut Ctx<'_>,
    table: &TableWithJoins,
    assignments: &[Assignment],
    selection: Option<&Expr>,
) -> Result<QueryResult, SqlError> {
    let (parts, alias) = single_table(table)?;
    let (d, t) = target(ctx, &parts, "UPDATE")?;
    let names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    let mut sets = Vec::new();
    for a in assignments {
        let AssignmentTarget::ColumnName(col) = &a.target else {
            return Err(SqlError::Unsupported("tuple assignments".into()));
        };
        let col = name_parts(col).pop().unwrap_or_default();
        let i = names
            .iter()
            .position(|n| *n == col)
            .ok_or(SqlError::UndefinedColumn(col))?;
        sets.push((i, &a.value));
    }
    let rows = matching(ctx, &d, &t, &alias, selection)?;
    let n = rows.len();
    for old in rows {
        let mut new = old.clone();
        for (i, e) in &sets {
            new[*i] = eval(
                e,
                &Scope {
                    names: &names,
                    qualifier: &alias,
                    row: &old,
                },
                ctx,
            )?;
        }
        let new = check_row(ctx, &t, new)?;
        let pk_changed = pk_key(d.id, &t, &old) != pk_key(d.id, &t, &new);
        remove_row(ctx, &d, &t, &old, pk_changed)?;
        write_row(ctx, &d, &t, &new, false)?;
    }
    Ok(QueryResult::tag(format!("UPDATE {n}")))
}

/// `DELETE FROM t [WHERE ..]`.
pub(crate) fn delete(ctx: &mut Ctx<'_>, del: &Delete) -> Result<QueryResult, SqlError> {
    let from = match &del.from {
        FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
    };
    let [table] = from.as_slice() else {
        return Err(SqlError::Unsupported("DELETE from several tables".into()));
    };
    let (parts, alias) = single_table(table)?;
    let (d, t) = target(ctx, &parts, "DELETE")?;
    let rows = matching(ctx, &d, &t, &alias, del.selection.as_ref())?;
    let n = rows.len();
    for row in rows {
        remove_row(ctx, &d, &t, &row, true)?;
    }
    Ok(QueryResult::tag(format!("DELETE {n}")))
}
