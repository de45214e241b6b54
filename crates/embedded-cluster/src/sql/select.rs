//! `SELECT`: one table, view or subquery (or none), `WHERE`, projections
//! with `*` and expressions, `count`/`sum`/`min`/`max`/`avg`, `ORDER BY`,
//! `LIMIT`/`OFFSET`.

use sqlparser::ast::{
    Expr, GroupByExpr, LimitClause, OrderByKind, Query, Select, SelectItem, SetExpr, TableFactor,
};

use super::dml::table_rows;
use super::expr::{Scope, eval, function_args, is_aggregate, truthy};
use super::privileges::require;
use super::value::Value;
use super::{Ctx, QueryResult, SqlError, ident, name_parts};
use crate::catalog::model::Body;

/// Rows a query reads from, with their column names and types.
struct Source {
    names: Vec<String>,
    types: Vec<String>,
    hidden: Vec<bool>,
    qualifier: String,
    rows: Vec<Vec<Value>>,
}

/// Runs a query.
pub(crate) fn query(ctx: &mut Ctx<'_>, q: &Query) -> Result<QueryResult, SqlError> {
    if q.with.is_some() || q.fetch.is_some() || !q.locks.is_empty() {
        return Err(SqlError::Unsupported("WITH, FETCH and FOR UPDATE".into()));
    }
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return Err(SqlError::Unsupported(
            "set operations (UNION, ...) and VALUES as a query".into(),
        ));
    };
    check_plain(sel)?;
    let src = source(ctx, sel)?;
    let mut rows = Vec::new();
    for row in &src.rows {
        let keep = match &sel.selection {
            None => true,
            Some(e) => truthy(&eval(
                e,
                &Scope {
                    names: &src.names,
                    qualifier: &src.qualifier,
                    row,
                },
                ctx,
            )?),
        };
        if keep {
            rows.push(row.clone());
        }
    }
    let items = expand(&sel.projection, &src)?;
    if items.iter().any(|(_, e)| contains_aggregate(e)) {
        let (names, row) = aggregate(ctx, &items, &src, &rows)?;
        let columns = names.into_iter().zip(row.iter().map(type_of)).collect();
        return Ok(QueryResult {
            columns,
            rows: vec![row],
            tag: "SELECT 1".into(),
        });
    }
    let out_names: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
    let mut pairs = Vec::with_capacity(rows.len());
    for row in rows {
        let sc = Scope {
            names: &src.names,
            qualifier: &src.qualifier,
            row: &row,
        };
        let out = items
            .iter()
            .map(|(_, e)| eval(e, &sc, ctx))
            .collect::<Result<Vec<_>, _>>()?;
        pairs.push((row, out));
    }
    if let Some(ob) = &q.order_by {
        let OrderByKind::Expressions(exprs) = &ob.kind else {
            return Err(SqlError::Unsupported("ORDER BY ALL".into()));
        };
        let mut keyed = Vec::with_capacity(pairs.len());
        for (row, out) in pairs {
            let mut keys = Vec::with_capacity(exprs.len());
            for o in exprs {
                keys.push(sort_key(ctx, &o.expr, &src, &row, &out_names, &out)?);
            }
            keyed.push((keys, row, out));
        }
        keyed.sort_by(|a, b| {
            for (i, o) in exprs.iter().enumerate() {
                let c = a.0[i].order_cmp(&b.0[i]);
                let c = if o.options.asc == Some(false) {
                    c.reverse()
                } else {
                    c
                };
                if c.is_ne() {
                    return c;
                }
            }
            std::cmp::Ordering::Equal
        });
        pairs = keyed.into_iter().map(|(_, r, o)| (r, o)).collect();
    }
    let (limit, offset) = limit_offset(ctx, q.limit_clause.as_ref())?;
    let out: Vec<Vec<Value>> = pairs
        .into_iter()
        .map(|(_, o)| o)
        .skip(offset)
        .take(limit)
        .collect();
    let columns = items
        .iter()
        .enumerate()
        .map(|(i, (n, e))| {
            let declared = match e {
                Expr::Identifier(id) => src
                    .names
                    .iter()
                    .position(|x| *x == ident(id))
                    .map(|p| src.types[p].clone()),
                _ => None,
            };
            let ty = declared.unwrap_or_else(|| {
                out.iter()
                    .map(|r| &r[i])
                    .find(|v| !v.is_null())
                    .map(type_of)
                    .unwrap_or_else(|| "STRING".into())
            });
            (n.clone(), ty)
        })
        .collect();
    let tag = format!("SELECT {}", out.len());
    Ok(QueryResult {
        columns,
        rows: out,
        tag,
    })
}

fn check_plain(sel: &Select) -> Result<(), SqlError> {
    let grouped = match &sel.group_by {
        GroupByExpr::Expressions(v, _) => !v.is_empty(),
        GroupByExpr::All(_) => true,
    };
    if grouped || sel.having.is_some() || sel.distinct.is_some() {
        return Err(SqlError::Unsupported(
            "GROUP BY, HAVING and DISTINCT".into(),
        ));
    }
    Ok(())
}

/// The ids of the objects a query reads.
pub(crate) fn sources(ctx: &Ctx<'_>, q: &Query) -> Result<Vec<u64>, SqlError> {
    let mut out = Vec::new();
    if let SetExpr::Select(sel) = q.body.as_ref() {
        for twj in &sel.from {
            match &twj.relation {
                TableFactor::Table { name, .. } => {
                    out.push(ctx.cat.resolve(&name_parts(name), ctx.database)?.id)
                }
                TableFactor::Derived { subquery, .. } => out.extend(sources(ctx, subquery)?),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The rows of the `FROM` clause.
fn source(ctx: &mut Ctx<'_>, sel: &Select) -> Result<Source, SqlError> {
    let twj = match sel.from.as_slice() {
        [] => {
            return Ok(Source {
                names: vec![],
                types: vec![],
                hidden: vec![],
                qualifier: String::new(),
                rows: vec![vec![]],
            });
        }
        [t] if t.joins.is_empty() => t,
        _ => return Err(SqlError::Unsupported("joins".into())),
    };
    match &twj.relation {
        TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => {
            let parts = name_parts(name);
            let qualifier = alias
                .as_ref()
                .map(|a| ident(&a.name))
                .unwrap_or_else(|| parts.join("."));
            let d = ctx.cat.resolve(&parts, ctx.database)?.clone();
            require(ctx, &d, "SELECT", "relation")?;
            match &d.body {
                Body::Table(t) => {
                    let rows = table_rows(ctx, d.id, t)?
                        .into_iter()
                        .map(|(_, r)| r)
                        .collect();
                    Ok(Source {
                        names: t.columns.iter().map(|c| c.name.clone()).collect(),
                        types: t
                            .columns
                            .iter()
                            .map(|c| match c.ty {
                                super::value::ColumnType::Enum(id) => ctx
                                    .cat
                                    .descs
                                    .get(&id)
                                    .map(|t| t.name.clone())
                                    .unwrap_or_else(|| "ENUM".into()),
                                ty => ty.sql_name().to_string(),
                            })
                            .collect(),
                        hidden: t.columns.iter().map(|c| c.hidden).collect(),
                        qualifier,
                        rows,
                    })
                }
                Body::View(v) => {
                    let db = ctx
                        .cat
                        .descs
                        .get(&d.parent_id)
                        .map(|x| x.name.clone())
                        .unwrap_or_default();
                    let q = parse_query(&v.query)?;
                    let res = with_view_rights(ctx, &db, |inner| query(inner, &q))?;
                    Ok(from_result(res, qualifier))
                }
                _ => Err(SqlError::Invalid(format!(
                    "cannot select from {} \"{}\"",
                    d.kind().as_str(),
                    d.name
                ))),
            }
        }
        TableFactor::Derived {
            subquery, alias, ..
        } => {
            let res = query(ctx, subquery)?;
            Ok(from_result(
                res,
                alias.as_ref().map(|a| ident(&a.name)).unwrap_or_default(),
            ))
        }
        other => Err(SqlError::Unsupported(format!("FROM {other}"))),
    }
}

fn from_result(res: QueryResult, qualifier: String) -> Source {
    Source {
        names: res.columns.iter().map(|c| c.0.clone()).collect(),
        types: res.columns.iter().map(|c| c.1.clone()).collect(),
        hidden: vec![false; res.columns.len()],
        qualifier,
        rows: res.rows,
    }
}

/// Runs `f` as a view's body: names resolve in the view's database and its
/// sources are read with the view's rights.
fn with_view_rights<T>(
    ctx: &mut Ctx<'_>,
    db: &str,
    f: impl FnOnce(&mut Ctx<'_>) -> Result<T, SqlError>,
) -> Result<T, SqlError> {
    let cat = std::mem::take(&mut ctx.cat);
    let mut inner = Ctx {
        kv: &mut *ctx.kv,
        user: ctx.user,
        database: db,
        cat,
        skip_privileges: true,
    };
    let out = f(&mut inner);
    ctx.cat = inner.cat;
    out
}

fn parse_query(sql: &str) -> Result<Query, SqlError> {
    let stmt = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql)
        .map_err(|e| SqlError::Invalid(format!("stored view query does not parse: {e}")))?;
    match stmt.into_iter().next() {
        Some(sqlparser::ast::Statement::Query(q)) => Ok(*q),
        _ => Err(SqlError::Invalid(
            "stored view query is not a SELECT".into(),
        )),
    }
}

/// Projection items as (output name, expression); `*` expanded.
fn expand(items: &[SelectItem], src: &Source) -> Result<Vec<(String, Expr)>, SqlError> {
    let mut out = Vec::new();
    for item in items {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                for (n, hidden) in src.names.iter().zip(&src.hidden) {
                    if !hidden {
                        out.push((
                            n.clone(),
                            Expr::Identifier(sqlparser::ast::Ident::with_quote('"', n.clone())),
                        ));
                    }
                }
            }
            SelectItem::UnnamedExpr(e) => out.push((output_name(e), e.clone())),
            SelectItem::ExprWithAlias { expr, alias } => out.push((ident(alias), expr.clone())),
        }
    }
    Ok(out)
}

fn output_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => ident(i),
        Expr::CompoundIdentifier(p) => p.last().map(ident).unwrap_or_default(),
        Expr::Function(f) => name_parts(&f.name).join("."),
        other => other.to_string(),
    }
}

fn contains_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => is_aggregate(&name_parts(&f.name).join(".")),
        Expr::BinaryOp { left, right, .. } => contains_aggregate(left) || contains_aggregate(right),
        Expr::Nested(e) | Expr::UnaryOp { expr: e, .. } | Expr::Cast { expr: e, .. } => {
            contains_aggregate(e)
        }
        _ => false,
    }
}

/// One output row of aggregates over `rows`.
fn aggregate(
    ctx: &mut Ctx<'_>,
    items: &[(String, Expr)],
    src: &Source,
    rows: &[Vec<Value>],
) -> Result<(Vec<String>, Vec<Value>), SqlError> {
    let mut out = Vec::with_capacity(items.len());
    for (_, e) in items {
        out.push(agg_expr(ctx, e, src, rows)?);
    }
    Ok((items.iter().map(|(n, _)| n.clone()).collect(), out))
}

fn agg_expr(
    ctx: &mut Ctx<'_>,
    e: &Expr,
    src: &Source,
    rows: &[Vec<Value>],
) -> Result<Value, SqlError> {
    let Expr::Function(f) = e else {
        if let Expr::Nested(inner) = e {
            return agg_expr(ctx, inner, src, rows);
        }
        if contains_aggregate(e) {
            return Err(SqlError::Unsupported("arithmetic on aggregates".into()));
        }
        return Err(SqlError::Invalid(format!(
            "column \"{e}\" must appear in the GROUP BY clause or be used in an aggregate function"
        )));
    };
    let name = name_parts(&f.name).join(".");
    let args = function_args(&f.args)?;
    let arg = match args.as_slice() {
        [None] if name == "count" => None,
        [Some(a)] => Some(*a),
        _ => return Err(SqlError::Invalid(format!("{name}() takes one argument"))),
    };
    let mut values = Vec::with_capacity(rows.len());
    for row in rows {
        match arg {
            None => values.push(Value::Int(1)),
            Some(a) => {
                let v = eval(
                    a,
                    &Scope {
                        names: &src.names,
                        qualifier: &src.qualifier,
                        row,
                    },
                    ctx,
                )?;
                if !v.is_null() {
                    values.push(v);
                }
            }
        }
    }
    Ok(match name.as_str() {
        "count" => Value::Int(values.len() as i64),
        "sum" | "avg" if values.is_empty() => Value::Null,
        "sum" | "avg" => {
            let all_int = values.iter().all(|v| matches!(v, Value::Int(_)));
            let sum = if all_int {
                let mut s: i64 = 0;
                for v in &values {
                    s = s
                        .checked_add(v.as_int().unwrap_or_default())
                        .ok_or_else(|| SqlError::Invalid("integer out of range".into()))?;
                }
                Value::Int(s)
            } else {
                let mut s = 0.0;
                for v in &values {
                    s += v.as_f64().ok_or_else(|| {
                        SqlError::Invalid(format!("{name}() of non-numeric value {v}"))
                    })?;
                }
                Value::Float(s)
            };
            if name == "avg" {
                Value::Float(sum.as_f64().unwrap_or_default() / values.len() as f64)
            } else {
                sum
            }
        }
        "min" => values
            .into_iter()
            .min_by(|a, b| a.order_cmp(b))
            .unwrap_or(Value::Null),
        _ => values
            .into_iter()
            .max_by(|a, b| a.order_cmp(b))
            .unwrap_or(Value::Null),
    })
}

/// An `ORDER BY` key: a source expression, an output alias or a position.
fn sort_key(
    ctx: &mut Ctx<'_>,
    e: &Expr,
    src: &Source,
    row: &[Value],
    out_names: &[String],
    out: &[Value],
) -> Result<Value, SqlError> {
    if let Expr::Value(v) = e
        && let Ok(Value::Int(pos)) = super::expr::literal(&v.value)
    {
        return usize::try_from(pos - 1)
            .ok()
            .and_then(|p| out.get(p).cloned())
            .ok_or_else(|| {
                SqlError::Invalid(format!("ORDER BY position {pos} is not in select list"))
            });
    }
    match eval(
        e,
        &Scope {
            names: &src.names,
            qualifier: &src.qualifier,
            row,
        },
        ctx,
    ) {
        Err(SqlError::UndefinedColumn(c)) => eval(
            e,
            &Scope {
                names: out_names,
                qualifier: "",
                row: out,
            },
            ctx,
        )
        .map_err(|_| SqlError::UndefinedColumn(c)),
        other => other,
    }
}

fn limit_offset(ctx: &mut Ctx<'_>, l: Option<&LimitClause>) -> Result<(usize, usize), SqlError> {
    let num = |ctx: &mut Ctx<'_>, e: &Expr| -> Result<usize, SqlError> {
        match eval(e, &Scope::empty(), ctx)? {
            Value::Int(i) if i >= 0 => Ok(i as usize),
            v => Err(SqlError::Invalid(format!(
                "LIMIT/OFFSET must be a non-negative integer, not {v}"
            ))),
        }
    };
    match l {
        None => Ok((usize::MAX, 0)),
        Some(LimitClause::LimitOffset { limit, offset, .. }) => {
            let limit = match limit {
                Some(e) => num(ctx, e)?,
                None => usize::MAX,
            };
            let offset = match offset {
                Some(o) => num(ctx, &o.value)?,
                None => 0,
            };
            Ok((limit, offset))
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            Ok((num(ctx, limit)?, num(ctx, offset)?))
        }
    }
}

/// The type name of a computed value.
fn type_of(v: &Value) -> String {
    match v {
        Value::Int(_) => "INT8",
        Value::Float(_) => "FLOAT8",
        Value::Decimal(_) => "DECIMAL",
        Value::Bool(_) => "BOOL",
        Value::Bytes(_) => "BYTES",
        Value::String(_) | Value::Null => "STRING",
    }
    .to_string()
}
