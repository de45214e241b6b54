//! The cluster's column types as PostgreSQL type OIDs, values as wire
//! bytes (text or binary), and parameters as SQL literals.

use embedded_cluster::Value;

use crate::protocol::FieldDesc;

/// `bool`.
pub const BOOL: i32 = 16;
/// `bytea`.
pub const BYTEA: i32 = 17;
/// `int8`.
pub const INT8: i32 = 20;
/// `int2`.
pub const INT2: i32 = 21;
/// `int4`.
pub const INT4: i32 = 23;
/// `text`.
pub const TEXT: i32 = 25;
/// `float4`.
pub const FLOAT4: i32 = 700;
/// `float8`.
pub const FLOAT8: i32 = 701;
/// `varchar`.
pub const VARCHAR: i32 = 1043;
/// `unknown` (an untyped literal).
pub const UNKNOWN: i32 = 705;

/// The OID and length a column of the cluster's type `name` is sent as.
///
/// Types with a binary form this server writes keep their own OID; every
/// other type (DECIMAL, TIMESTAMP, UUID, JSONB, enums) goes as `text`, whose
/// binary form is its text.
pub fn oid_of(type_name: &str) -> (i32, i16) {
    let upper = type_name.to_ascii_uppercase();
    match upper.split('(').next().unwrap_or("").trim() {
        "INT" | "INT8" | "INT4" | "INT2" | "INTEGER" | "BIGINT" | "SMALLINT" | "SERIAL" => {
            (INT8, 8)
        }
        "FLOAT" | "FLOAT8" | "FLOAT4" | "REAL" | "DOUBLE PRECISION" => (FLOAT8, 8),
        "BOOL" | "BOOLEAN" => (BOOL, 1),
        "BYTES" | "BYTEA" => (BYTEA, -1),
        _ => (TEXT, -1),
    }
}

/// The row description of a result: names and types from the cluster,
/// formats from the client's Bind (0 or 1 code for all, or one per column).
pub fn fields(columns: &[(String, String)], formats: &[i16]) -> Vec<FieldDesc> {
    columns
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| {
            let (oid, len) = oid_of(ty);
            FieldDesc {
                name: name.clone(),
                oid,
                len,
                format: format_at(formats, i),
            }
        })
        .collect()
}

/// The format code of column (or parameter) `i`.
pub fn format_at(formats: &[i16], i: usize) -> i16 {
    match formats {
        [] => 0,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(0),
    }
}

/// A value as the bytes of a `DataRow` field; `Err` names what cannot be sent.
pub fn encode(v: &Value, field: &FieldDesc) -> Result<Option<Vec<u8>>, String> {
    if v.is_null() {
        return Ok(None);
    }
    if field.format == 0 {
        return Ok(Some(text(v, field.oid).into_bytes()));
    }
    let bad = || {
        format!(
            "column {:?}: cannot send {v:?} in binary as type OID {}",
            field.name, field.oid
        )
    };
    Ok(Some(match field.oid {
        INT8 => {
            let i = match v {
                Value::Int(i) => *i,
                Value::Float(f) if f.fract() == 0.0 => *f as i64,
                other => other.to_string().trim().parse().map_err(|_| bad())?,
            };
            i.to_be_bytes().to_vec()
        }
        FLOAT8 => {
            let f = match v {
                Value::Int(i) => *i as f64,
                Value::Float(f) => *f,
                other => other.to_string().trim().parse().map_err(|_| bad())?,
            };
            f.to_be_bytes().to_vec()
        }
        BOOL => match v {
            Value::Bool(b) => vec![u8::from(*b)],
            _ => return Err(bad()),
        },
        BYTEA => match v {
            Value::Bytes(b) => b.clone(),
            other => other.to_string().into_bytes(),
        },
        _ => text(v, field.oid).into_bytes(),
    }))
}

/// The PostgreSQL text form of a value.
fn text(v: &Value, oid: i32) -> String {
    match v {
        Value::Bool(b) if oid == BOOL => (if *b { "t" } else { "f" }).to_string(),
        Value::Float(f) if f.is_infinite() => {
            (if *f > 0.0 { "Infinity" } else { "-Infinity" }).to_string()
        }
        other => other.to_string(),
    }
}

/// A bound parameter as a SQL literal to put where its `$n` stood.
///
/// Text parameters become quoted string literals (the cluster converts them
/// to the column's type, as PostgreSQL does with untyped literals), or bare
/// numbers when the client declared a numeric type. Binary parameters are
/// read by their declared type.
pub fn literal(value: Option<&[u8]>, oid: i32, format: i16) -> Result<String, String> {
    let Some(bytes) = value else {
        return Ok("NULL".into());
    };
    if format == 0 {
        let s = std::str::from_utf8(bytes).map_err(|_| "a text parameter is not UTF-8")?;
        return Ok(match oid {
            INT2 | INT4 | INT8 if s.trim().parse::<i64>().is_ok() => s.trim().to_string(),
            FLOAT4 | FLOAT8 if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
                s.trim().to_string()
            }
            BOOL => bool_literal(s)?.to_string(),
            _ => quote(s),
        });
    }
    let int = |n: usize| -> Result<i64, String> {
        let arr: [u8; 8] = match (n, bytes.len()) {
            (2, 2) => (i16::from_be_bytes([bytes[0], bytes[1]]) as i64).to_be_bytes(),
            (4, 4) => {
                (i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as i64).to_be_bytes()
            }
            (8, 8) => bytes.try_into().map_err(|_| "bad int8")?,
            _ => return Err(format!("a binary integer parameter must be {n} bytes")),
        };
        Ok(i64::from_be_bytes(arr))
    };
    Ok(match oid {
        INT2 => int(2)?.to_string(),
        INT4 => int(4)?.to_string(),
        INT8 => int(8)?.to_string(),
        FLOAT8 => {
            let arr: [u8; 8] = bytes
                .try_into()
                .map_err(|_| "a binary float8 parameter must be 8 bytes")?;
            float_literal(f64::from_be_bytes(arr))?
        }
        FLOAT4 => {
            let arr: [u8; 4] = bytes
                .try_into()
                .map_err(|_| "a binary float4 parameter must be 4 bytes")?;
            float_literal(f64::from(f32::from_be_bytes(arr)))?
        }
        BOOL => match bytes {
            [0] => "false".into(),
            [_] => "true".into(),
            _ => return Err("a binary bool parameter must be 1 byte".into()),
        },
        BYTEA => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("'\\x{hex}'")
        }
        TEXT | VARCHAR | UNKNOWN | 0 => quote(
            std::str::from_utf8(bytes).map_err(|_| "a text parameter is not UTF-8".to_string())?,
        ),
        other => {
            return Err(format!(
                "binary parameters of type OID {other} are not supported: send it as text"
            ));
        }
    })
}

fn float_literal(f: f64) -> Result<String, String> {
    if f.is_finite() {
        Ok(format!("{f:?}"))
    } else {
        Err("NaN and infinite float parameters are not supported".into())
    }
}

fn bool_literal(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "on" | "yes" | "1" => Ok(true),
        "f" | "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean")),
    }
}

/// A single-quoted SQL string literal.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted_or_typed() {
        assert_eq!(literal(Some(b"it's"), 0, 0).unwrap(), "'it''s'");
        assert_eq!(literal(Some(b"42"), INT8, 0).unwrap(), "42");
        assert_eq!(literal(Some(b"42; drop"), INT8, 0).unwrap(), "'42; drop'");
        assert_eq!(literal(None, TEXT, 0).unwrap(), "NULL");
        assert_eq!(literal(Some(&7i32.to_be_bytes()), INT4, 1).unwrap(), "7");
        assert_eq!(literal(Some(&[1]), BOOL, 1).unwrap(), "true");
        assert!(literal(Some(&[1, 2]), INT4, 1).is_err());
    }

    #[test]
    fn binary_values() {
        let f = FieldDesc {
            name: "n".into(),
            oid: INT8,
            len: 8,
            format: 1,
        };
        assert_eq!(
            encode(&Value::Int(5), &f).unwrap(),
            Some(5i64.to_be_bytes().to_vec())
        );
        assert_eq!(encode(&Value::Null, &f).unwrap(), None);
        assert!(encode(&Value::String("x".into()), &f).is_err());
        let t = FieldDesc {
            format: 0,
            oid: BOOL,
            ..f
        };
        assert_eq!(encode(&Value::Bool(true), &t).unwrap(), Some(b"t".to_vec()));
    }
}
