//! `AS OF SYSTEM TIME`: evaluating the expression against the current time.
//!
//! Accepted forms: a negative interval string (`'-10s'`, `'-1h30m'`,
//! `'-2m3.5s'`, `'-100ms'`, `'-1us'`, also with long unit names and spaces);
//! an absolute timestamp string (RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f]` in UTC);
//! a decimal HLC timestamp (`1637000000000000000.0000000001`, as a number or
//! a string); and `follower_read_timestamp()`.

use backup_format::Timestamp;

use crate::ast::Expr;
use crate::error::SqlError;

/// How far `follower_read_timestamp()` lies behind now (4.8 s, as CockroachDB documents).
pub const FOLLOWER_READ_OFFSET_NANOS: i64 = 4_800_000_000;

/// The timestamp an `AS OF SYSTEM TIME` expression names, given the current time.
///
/// Times after `now` and malformed expressions are errors; placeholders must
/// be bound first ([`Statement::bind`](crate::Statement::bind)).
pub fn evaluate_as_of(expr: &Expr, now: Timestamp) -> Result<Timestamp, SqlError> {
    let err = |m: String| Err(SqlError::AsOf(m));
    let ts = match expr {
        Expr::String(s) => match parse_interval(s) {
            Some(Ok(nanos)) => return relative(s, nanos, now),
            Some(Err(reason)) => return err(format!("invalid interval '{s}': {reason}")),
            None => s.parse::<Timestamp>().map_err(|e| {
                SqlError::AsOf(format!(
                    "'{s}' is neither a negative interval (like '-10s') nor a timestamp: {e}"
                ))
            })?,
        },
        Expr::Number(n) => {
            Timestamp::parse_decimal(n).map_err(|e| SqlError::AsOf(e.to_string()))?
        }
        Expr::Function { name, args } => match name.as_str() {
            "follower_read_timestamp" | "experimental_follower_read_timestamp" => {
                if !args.is_empty() {
                    return err(format!("{name}() takes no arguments"));
                }
                return Ok(Timestamp::from_wall(
                    now.wall.saturating_sub(FOLLOWER_READ_OFFSET_NANOS).max(0),
                ));
            }
            _ => {
                return err(format!(
                    "unknown function {name}(); expected follower_read_timestamp()"
                ));
            }
        },
        Expr::Placeholder(n) => {
            return err(format!(
                "placeholder ${n} has no value: bind the parameters first"
            ));
        }
        Expr::Bool(b) => return err(format!("{b} is not a timestamp")),
    };
    if ts > now {
        return err(format!(
            "timestamp {ts} ({}) is in the future; now is {now}",
            ts.to_rfc3339()
        ));
    }
    Ok(ts)
}

/// `now` moved by a (negative) interval.
fn relative(text: &str, nanos: i64, now: Timestamp) -> Result<Timestamp, SqlError> {
    if nanos >= 0 {
        return Err(SqlError::AsOf(format!(
            "interval '{text}' is not in the past: use a negative interval such as '-10s'"
        )));
    }
    match now.wall.checked_add(nanos) {
        Some(wall) if wall >= 0 => Ok(Timestamp::from_wall(wall)),
        _ => Err(SqlError::AsOf(format!(
            "interval '{text}' reaches back before 1970"
        ))),
    }
}

/// Nanoseconds per unit name.
fn unit_nanos(unit: &str) -> Option<i128> {
    Some(match unit {
        "ns" | "nanosecond" | "nanoseconds" => 1,
        "us" | "µs" | "μs" | "microsecond" | "microseconds" => 1_000,
        "ms" | "millisecond" | "milliseconds" => 1_000_000,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000_000_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000_000_000,
        "d" | "day" | "days" => 86_400_000_000_000,
        _ => return None,
    })
}

/// Parses an interval such as `-1h30m` or `-2 minutes 3.5 seconds` into
/// nanoseconds (a leading sign applies to the whole interval).
///
/// `None` when the text does not look like an interval at all (no unit);
/// `Some(Err)` when it does but is malformed.
pub fn parse_interval(text: &str) -> Option<Result<i64, String>> {
    let s = text.trim();
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let body = body.trim_start();
    // An interval needs a unit letter after its first number.
    let first_alpha = body.find(|c: char| c.is_alphabetic())?;
    if !body[..first_alpha]
        .trim_end()
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.')
        || first_alpha == 0
    {
        return None;
    }
    Some(interval_components(body).map(|n| if negative { -n } else { n }))
}

fn interval_components(body: &str) -> Result<i64, String> {
    let mut total: i128 = 0;
    let mut rest = body.trim();
    if rest.is_empty() {
        return Err("empty interval".into());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].to_lowercase();
        rest = rest[unit_len..].trim_start();
        if number.is_empty() {
            return Err(format!("expected a number before '{unit}'"));
        }
        let per = unit_nanos(&unit).ok_or_else(|| {
            if unit.is_empty() {
                format!("'{number}' has no unit (use h, m, s, ms, us or ns)")
            } else {
                format!("unknown unit '{unit}' (use h, m, s, ms, us or ns)")
            }
        })?;
        if number.matches('.').count() > 1 {
            return Err(format!("malformed number '{number}'"));
        }
        total = total
            .checked_add(
                scaled(number, per)
                    .ok_or_else(|| format!("'{number}{unit}' is malformed or too large"))?,
            )
            .ok_or("the interval is too large")?;
    }
    i64::try_from(total).map_err(|_| "the interval is too large".to_string())
}

/// `number` (digits with an optional fraction) times `per` nanoseconds,
/// truncated to whole nanoseconds.
fn scaled(number: &str, per: i128) -> Option<i128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let int: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int.checked_mul(per)?;
    let mut scale = per;
    for digit in frac.bytes().take(30) {
        scale /= 10;
        value = value.checked_add(i128::from(digit - b'0') * scale)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Ident;

    const NOW: Timestamp = Timestamp::new(1_637_000_000_000_000_000, 7);
    const S: i64 = 1_000_000_000;

    fn eval(e: Expr) -> Result<Timestamp, SqlError> {
        evaluate_as_of(&e, NOW)
    }

    fn string(s: &str) -> Expr {
        Expr::String(s.into())
    }

    #[test]
    fn relative_intervals() {
        for (text, back) in [
            ("-10s", 10 * S),
            ("-1h30m", 5400 * S),
            ("-2m3.5s", 123 * S + S / 2),
            ("-100ms", S / 10),
            ("-1us", 1_000),
            ("-1µs", 1_000),
            ("-5ns", 5),
            (" -1 hour 2 minutes ", 3720 * S),
            ("-1d", 86_400 * S),
            ("-.5s", S / 2),
        ] {
            assert_eq!(
                eval(string(text)).unwrap(),
                Timestamp::from_wall(NOW.wall - back),
                "{text}"
            );
        }
    }

    #[test]
    fn absolute_and_decimal() {
        let past = Timestamp::new(1_636_000_000_000_000_000, 3);
        assert_eq!(eval(Expr::Number(past.to_string())).unwrap(), past);
        assert_eq!(eval(string(&past.to_string())).unwrap(), past);
        assert_eq!(
            eval(string("2021-11-15 18:13:19")).unwrap(),
            Timestamp::from_wall(NOW.wall - S)
        );
        assert_eq!(eval(Expr::Number(NOW.to_string())).unwrap(), NOW);
    }

    #[test]
    fn follower_read_timestamp_is_4_8_seconds_back() {
        let f = Expr::Function {
            name: Ident::new("follower_read_timestamp"),
            args: vec![],
        };
        assert_eq!(
            eval(f).unwrap(),
            Timestamp::from_wall(NOW.wall - 4_800_000_000)
        );
    }

    #[test]
    fn errors() {
        for (e, needle) in [
            (string("10s"), "not in the past"),
            (string("-0s"), "not in the past"),
            (string("-10x"), "unknown unit 'x'"),
            (string("-10s5"), "has no unit"),
            (string("-1.2.3s"), "malformed number '1.2.3'"),
            (
                string("-9999999999999999999999999999999999999h"),
                "too large",
            ),
            (string("-9999999999999999h"), "too large"),
            (string("-100000d"), "before 1970"),
            (string("yesterday"), "neither a negative interval"),
            (string("-10"), "neither a negative interval"),
            (string("2099-01-01T00:00:00Z"), "in the future"),
            (Expr::Number(NOW.next().to_string()), "in the future"),
            (Expr::Number("1.5".into()), "ten digits"),
            (Expr::Placeholder(2), "$2 has no value"),
            (Expr::Bool(true), "not a timestamp"),
            (
                Expr::Function {
                    name: Ident::new("now"),
                    args: vec![],
                },
                "unknown function now()",
            ),
            (
                Expr::Function {
                    name: Ident::new("follower_read_timestamp"),
                    args: vec![string("x")],
                },
                "takes no arguments",
            ),
        ] {
            let err = eval(e.clone()).unwrap_err().to_string();
            assert!(err.starts_with("AS OF SYSTEM TIME: "), "{e:?}: {err}");
            assert!(err.contains(needle), "{e:?}: {err}");
        }
    }
}
