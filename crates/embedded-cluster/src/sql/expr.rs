//! Scalar expression evaluation over one row.

use std::cmp::Ordering;

use sqlparser::ast::{
    BinaryOperator, CastKind, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, UnaryOperator,
    Value as SqlValue,
};

use super::value::{ColumnType, Value};
use super::{Ctx, SqlError, ddl, ident, name_parts};

/// The columns an expression can see: (qualifier, name) and the row's values.
pub(crate) struct Scope<'a> {
    /// Column names.
    pub(crate) names: &'a [String],
    /// The table name or alias that qualifies them.
    pub(crate) qualifier: &'a str,
    /// The row.
    pub(crate) row: &'a [Value],
}

impl Scope<'_> {
    /// An empty scope (no columns).
    pub(crate) fn empty() -> Scope<'static> {
        Scope {
            names: &[],
            qualifier: "",
            row: &[],
        }
    }

    fn column(&self, name: &str) -> Result<Value, SqlError> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.row.get(i).cloned())
            .ok_or_else(|| SqlError::UndefinedColumn(name.to_string()))
    }
}

/// Evaluates `e` against `scope`.
pub(crate) fn eval(e: &Expr, scope: &Scope<'_>, ctx: &mut Ctx<'_>) -> Result<Value, SqlError> {
    Ok(match e {
        Expr::Identifier(i) => scope.column(&ident(i))?,
        Expr::CompoundIdentifier(parts) => {
            let names: Vec<String> = parts.iter().map(ident).collect();
            match names.as_slice() {
                [.., q, c]
                    if q == scope.qualifier || scope.qualifier.ends_with(&format!(".{q}")) =>
                {
                    scope.column(c)?
                }
                _ => return Err(SqlError::UndefinedColumn(names.join("."))),
            }
        }
        Expr::Value(v) => literal(&v.value)?,
        Expr::Nested(inner) => eval(inner, scope, ctx)?,
        Expr::UnaryOp { op, expr } => {
            let v = eval(expr, scope, ctx)?;
            match (op, v) {
                (_, Value::Null) => Value::Null,
                (UnaryOperator::Not, Value::Bool(b)) => Value::Bool(!b),
                (UnaryOperator::Minus, Value::Int(i)) => {
                    Value::Int(i.checked_neg().ok_or_else(overflow)?)
                }
                (UnaryOperator::Minus, Value::Float(f)) => Value::Float(-f),
                (UnaryOperator::Plus, v @ (Value::Int(_) | Value::Float(_))) => v,
                (op, v) => {
                    return Err(SqlError::Invalid(format!(
                        "unsupported unary operator: {op} {v}"
                    )));
                }
            }
        }
        Expr::BinaryOp { left, op, right } => {
            let l = eval(left, scope, ctx)?;
            // Short-circuit AND / OR with SQL's three-valued logic.
            match (op, &l) {
                (BinaryOperator::And, Value::Bool(false)) => return Ok(Value::Bool(false)),
                (BinaryOperator::Or, Value::Bool(true)) => return Ok(Value::Bool(true)),
                _ => {}
            }
            let r = eval(right, scope, ctx)?;
            binary(op, l, r)?
        }
        Expr::IsNull(e) => Value::Bool(eval(e, scope, ctx)?.is_null()),
        Expr::IsNotNull(e) => Value::Bool(!eval(e, scope, ctx)?.is_null()),
        Expr::IsTrue(e) => Value::Bool(eval(e, scope, ctx)? == Value::Bool(true)),
        Expr::IsFalse(e) => Value::Bool(eval(e, scope, ctx)? == Value::Bool(false)),
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let v = eval(expr, scope, ctx)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            let mut found = false;
            for item in list {
                let x = eval(item, scope, ctx)?;
                match v.sql_cmp(&x) {
                    Some(Ordering::Equal) => found = true,
                    None if x.is_null() => saw_null = true,
                    _ => {}
                }
            }
            match (found, saw_null) {
                (true, _) => Value::Bool(!negated),
                (false, true) => Value::Null,
                (false, false) => Value::Bool(*negated),
            }
        }
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let v = eval(expr, scope, ctx)?;
            let (lo, hi) = (eval(low, scope, ctx)?, eval(high, scope, ctx)?);
            match (v.sql_cmp(&lo), v.sql_cmp(&hi)) {
                (Some(a), Some(b)) => {
                    Value::Bool((a != Ordering::Less && b != Ordering::Greater) != *negated)
                }
                _ => Value::Null,
            }
        }
        Expr::Cast {
            kind: CastKind::Cast | CastKind::DoubleColon,
            expr,
            data_type,
            ..
        } => {
            let v = eval(expr, scope, ctx)?;
            let ty = ColumnType::parse_builtin(&data_type.to_string())
                .ok_or_else(|| SqlError::Unsupported(format!("cast to {data_type}")))?;
            ty.coerce(v, &[]).map_err(SqlError::Invalid)?
        }
        Expr::TypedString(sqlparser::ast::TypedString {
            data_type, value, ..
        }) => {
            let ty = ColumnType::parse_builtin(&data_type.to_string())
                .ok_or_else(|| SqlError::Unsupported(format!("type {data_type}")))?;
            ty.coerce(literal(&value.value)?, &[])
                .map_err(SqlError::Invalid)?
        }
        Expr::Function(f) => {
            let name = name_parts(&f.name).join(".");
            let args = function_args(&f.args)?;
            call(&name, &args, scope, ctx)?
        }
        other => return Err(SqlError::Unsupported(format!("expression {other}"))),
    })
}

/// The plain argument expressions of a call (`*` as `None`).
pub(crate) fn function_args(args: &FunctionArguments) -> Result<Vec<Option<&Expr>>, SqlError> {
    match args {
        FunctionArguments::None => Ok(Vec::new()),
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(Some(e)),
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => Ok(None),
                other => Err(SqlError::Unsupported(format!("function argument {other}"))),
            })
            .collect(),
        FunctionArguments::Subquery(_) => Err(SqlError::Unsupported("subquery arguments".into())),
    }
}

/// Whether `name` is an aggregate function.
pub(crate) fn is_aggregate(name: &str) -> bool {
    matches!(name, "count" | "sum" | "min" | "max" | "avg")
}

fn call(
    name: &str,
    args: &[Option<&Expr>],
    scope: &Scope<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<Value, SqlError> {
    let mut values = Vec::with_capacity(args.len());
    for a in args {
        match a {
            Some(e) => values.push(eval(e, scope, ctx)?),
            None => {
                return Err(SqlError::Invalid(format!(
                    "{name}(*) is only valid as an aggregate"
                )));
            }
        }
    }
    Ok(match (name, values.as_slice()) {
        (n, _) if is_aggregate(n) => {
            return Err(SqlError::Invalid(format!(
                "aggregate function {n}() is not allowed here"
            )));
        }
        ("cluster_logical_timestamp", []) => Value::Decimal(ctx.kv.read_ts.to_string()),
        ("now" | "current_timestamp", []) => Value::String(ctx.kv.read_ts.to_rfc3339()),
        ("nextval", [Value::String(seq)]) => {
            let parts: Vec<String> = seq.split('.').map(str::to_string).collect();
            let desc = ctx.cat.resolve(&parts, ctx.database)?.clone();
            Value::Int(ddl::nextval(ctx, &desc)?)
        }
        ("unique_rowid", []) => Value::Int(ddl::unique_rowid(ctx)?),
        ("lower", [Value::String(s)]) => Value::String(s.to_lowercase()),
        ("upper", [Value::String(s)]) => Value::String(s.to_uppercase()),
        ("length", [Value::String(s)]) => Value::Int(s.chars().count() as i64),
        ("abs", [Value::Int(i)]) => Value::Int(i.checked_abs().ok_or_else(overflow)?),
        ("gen_random_uuid", []) => Value::String(pseudo_uuid(ctx)?),
        (n, _) => return Err(SqlError::Invalid(format!("unknown function: {n}()"))),
    })
}

/// A version-4-shaped UUID from the HLC (unique in this cluster, not random).
fn pseudo_uuid(ctx: &mut Ctx<'_>) -> Result<String, SqlError> {
    let a = ddl::unique_rowid(ctx)? as u64;
    let b = a.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Ok(format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (b >> 32) as u32,
        (b >> 16) as u16,
        (b & 0xFFF) as u16,
        (a >> 48) as u16 & 0xFFF,
        a & 0xFFFF_FFFF_FFFF
    ))
}

fn overflow() -> SqlError {
    SqlError::Invalid("integer out of range".into())
}

/// A literal's value.
pub(crate) fn literal(v: &SqlValue) -> Result<Value, SqlError> {
    Ok(match v {
        SqlValue::Number(n, _) => match n.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(
                n.parse()
                    .map_err(|_| SqlError::Invalid(format!("bad number {n}")))?,
            ),
        },
        SqlValue::SingleQuotedString(s) | SqlValue::EscapedStringLiteral(s) => {
            Value::String(s.clone())
        }
        SqlValue::Boolean(b) => Value::Bool(*b),
        SqlValue::Null => Value::Null,
        other => return Err(SqlError::Unsupported(format!("literal {other}"))),
    })
}

fn binary(op: &BinaryOperator, l: Value, r: Value) -> Result<Value, SqlError> {
    use BinaryOperator as B;
    if matches!(op, B::And | B::Or) {
        return Ok(match (op, l, r) {
            (B::And, Value::Bool(a), Value::Bool(b)) => Value::Bool(a && b),
            (B::Or, Value::Bool(a), Value::Bool(b)) => Value::Bool(a || b),
            (B::And, _, Value::Bool(false)) => Value::Bool(false),
            (B::Or, _, Value::Bool(true)) => Value::Bool(true),
            (_, Value::Null, _) | (_, _, Value::Null) => Value::Null,
            (op, l, r) => {
                return Err(SqlError::Invalid(format!(
                    "unsupported binary operator: {l} {op} {r}"
                )));
            }
        });
    }
    if l.is_null() || r.is_null() {
        return Ok(Value::Null);
    }
    let cmp = |want: &dyn Fn(Ordering) -> bool| -> Result<Value, SqlError> {
        match l.sql_cmp(&r) {
            Some(o) => Ok(Value::Bool(want(o))),
            None => Err(SqlError::Invalid(format!(
                "unsupported comparison: {l} {op} {r}"
            ))),
        }
    };
    match op {
        B::Eq => cmp(&|o| o == Ordering::Equal),
        B::NotEq => cmp(&|o| o != Ordering::Equal),
        B::Lt => cmp(&|o| o == Ordering::Less),
        B::LtEq => cmp(&|o| o != Ordering::Greater),
        B::Gt => cmp(&|o| o == Ordering::Greater),
        B::GtEq => cmp(&|o| o != Ordering::Less),
        B::StringConcat => Ok(Value::String(format!("{l}{r}"))),
        B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => arith(op, &l, &r),
        other => Err(SqlError::Unsupported(format!("operator {other}"))),
    }
}

fn arith(op: &BinaryOperator, l: &Value, r: &Value) -> Result<Value, SqlError> {
    use BinaryOperator as B;
    if let (Value::Int(a), Value::Int(b)) = (l, r) {
        let (a, b) = (*a, *b);
        let out = match op {
            B::Plus => a.checked_add(b),
            B::Minus => a.checked_sub(b),
            B::Multiply => a.checked_mul(b),
            B::Divide | B::Modulo if b == 0 => {
                return Err(SqlError::Invalid("division by zero".into()));
            }
            B::Divide => a.checked_div(b),
            _ => a.checked_rem(b),
        };
        return out.map(Value::Int).ok_or_else(overflow);
    }
    let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) else {
        return Err(SqlError::Invalid(format!(
            "unsupported binary operator: {l} {op} {r}"
        )));
    };
    Ok(Value::Float(match op {
        B::Plus => a + b,
        B::Minus => a - b,
        B::Multiply => a * b,
        B::Divide if b == 0.0 => return Err(SqlError::Invalid("division by zero".into())),
        B::Divide => a / b,
        _ => a % b,
    }))
}

/// Whether a WHERE value lets the row through.
pub(crate) fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}
