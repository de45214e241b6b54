//! SQL values and column types.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A SQL value as queries return it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `NULL`.
    Null,
    /// An `INT`.
    Int(i64),
    /// A `DECIMAL` or `FLOAT` (held as a double).
    Float(f64),
    /// An exact decimal as text (for example `cluster_logical_timestamp()`).
    Decimal(String),
    /// A `BOOL`.
    Bool(bool),
    /// A `STRING`, `TIMESTAMP`, `UUID`, `JSONB` or enum value, as text.
    String(String),
    /// A `BYTES`.
    Bytes(Vec<u8>),
}

impl Value {
    /// Whether the value is `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as an integer, if it is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The value as text, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A number for numeric comparison.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Decimal(d) => d.parse().ok(),
            _ => None,
        }
    }

    /// SQL comparison; `None` when either side is NULL or the types do not compare.
    pub(crate) fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Null, _) | (_, Value::Null) => None,
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Bytes(a), Value::Bytes(b)) => Some(a.cmp(b)),
            (Value::Decimal(a), Value::Decimal(b)) if a.len() == b.len() => Some(a.cmp(b)),
            (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        }
    }

    /// A total order for `ORDER BY` (NULLs first).
    pub(crate) fn order_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => Ordering::Less,
            (_, Value::Null) => Ordering::Greater,
            (a, b) => a.sql_cmp(b).unwrap_or(Ordering::Equal),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Decimal(d) => f.write_str(d),
            Value::Bool(b) => write!(f, "{b}"),
            Value::String(s) => f.write_str(s),
            Value::Bytes(b) => {
                f.write_str("\\x")?;
                b.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
        }
    }
}

/// A column's declared type (CockroachDB names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnType {
    /// `INT`, `INT8`, `BIGINT`, ...
    Int,
    /// `FLOAT`, `REAL`, `DOUBLE PRECISION`.
    Float,
    /// `DECIMAL` / `NUMERIC` (held as a double).
    Decimal,
    /// `STRING`, `TEXT`, `VARCHAR`.
    String,
    /// `BOOL`.
    Bool,
    /// `TIMESTAMP` / `TIMESTAMPTZ` (text).
    Timestamp,
    /// `UUID` (text, validated).
    Uuid,
    /// `BYTES`.
    Bytes,
    /// `JSONB` (text).
    Jsonb,
    /// A user-defined enum: the type descriptor's id.
    Enum(u64),
}

impl ColumnType {
    /// The built-in type a SQL type name stands for, if any.
    pub(crate) fn parse_builtin(name: &str) -> Option<ColumnType> {
        let upper = name.trim().to_ascii_uppercase();
        let base = upper.split('(').next().unwrap_or("").trim();
        Some(match base {
            "INT" | "INT2" | "INT4" | "INT8" | "INT64" | "INTEGER" | "BIGINT" | "SMALLINT"
            | "SERIAL" => ColumnType::Int,
            "FLOAT" | "FLOAT4" | "FLOAT8" | "REAL" | "DOUBLE" | "DOUBLE PRECISION" => {
                ColumnType::Float
            }
            "DECIMAL" | "NUMERIC" | "DEC" => ColumnType::Decimal,
            "STRING" | "TEXT" | "VARCHAR" | "CHAR" | "CHARACTER VARYING" | "CHARACTER" => {
                ColumnType::String
            }
            "BOOL" | "BOOLEAN" => ColumnType::Bool,
            "TIMESTAMP"
            | "TIMESTAMPTZ"
            | "TIMESTAMP WITH TIME ZONE"
            | "TIMESTAMP WITHOUT TIME ZONE" => ColumnType::Timestamp,
            "UUID" => ColumnType::Uuid,
            "BYTES" | "BYTEA" | "BLOB" => ColumnType::Bytes,
            "JSONB" | "JSON" => ColumnType::Jsonb,
            _ => return None,
        })
    }

    /// The name `SHOW` output and result columns use.
    pub fn sql_name(&self) -> &'static str {
        match self {
            ColumnType::Int => "INT8",
            ColumnType::Float => "FLOAT8",
            ColumnType::Decimal => "DECIMAL",
            ColumnType::String => "STRING",
            ColumnType::Bool => "BOOL",
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::Uuid => "UUID",
            ColumnType::Bytes => "BYTES",
            ColumnType::Jsonb => "JSONB",
            ColumnType::Enum(_) => "ENUM",
        }
    }

    /// Converts `v` to this type for storage; `Err` carries a message.
    pub(crate) fn coerce(&self, v: Value, enum_values: &[String]) -> Result<Value, String> {
        let bad = |v: &Value| format!("could not parse {v} as type {}", self.sql_name());
        Ok(match (self, v) {
            (_, Value::Null) => Value::Null,
            (ColumnType::Int, Value::Int(i)) => Value::Int(i),
            (ColumnType::Int, Value::Float(f)) if f.fract() == 0.0 => Value::Int(f as i64),
            (ColumnType::Int, Value::String(s)) => {
                Value::Int(s.trim().parse().map_err(|_| bad(&Value::String(s)))?)
            }
            (ColumnType::Float | ColumnType::Decimal, v @ (Value::Int(_) | Value::Float(_))) => {
                Value::Float(v.as_f64().unwrap_or_default())
            }
            (
                ColumnType::Float | ColumnType::Decimal,
                v @ (Value::String(_) | Value::Decimal(_)),
            ) => {
                let text = v.to_string();
                Value::Float(text.trim().parse().map_err(|_| bad(&v))?)
            }
            (ColumnType::Bool, Value::Bool(b)) => Value::Bool(b),
            (ColumnType::Bool, Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "t" => Value::Bool(true),
                "false" | "f" => Value::Bool(false),
                _ => return Err(bad(&Value::String(s))),
            },
            (ColumnType::Bytes, Value::Bytes(b)) => Value::Bytes(b),
            (ColumnType::Bytes, Value::String(s)) => Value::Bytes(s.into_bytes()),
            (ColumnType::Uuid, Value::String(s)) => {
                if !is_uuid(&s) {
                    return Err(bad(&Value::String(s)));
                }
                Value::String(s.to_ascii_lowercase())
            }
            (ColumnType::Enum(_), Value::String(s)) => {
                if !enum_values.contains(&s) {
                    return Err(format!("invalid input value for enum: {s:?}"));
                }
                Value::String(s)
            }
            (ColumnType::String | ColumnType::Timestamp | ColumnType::Jsonb, v) => match v {
                Value::Bytes(_) => return Err(bad(&v)),
                other => Value::String(other.to_string()),
            },
            (_, v) => return Err(bad(&v)),
        })
    }
}

/// Whether `s` is a UUID in its 8-4-4-4-12 hex form.
fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}
