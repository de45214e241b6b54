//! Hybrid-logical-clock timestamps.
//!
//! A [`Timestamp`] is wall-clock nanoseconds since the Unix epoch plus a
//! logical counter that orders events within one nanosecond. Timestamps are
//! totally ordered by `(wall, logical)`.
//!
//! Text forms, as CockroachDB shows them:
//! - decimal: `1637000000000000000.0000000001` (wall nanos, a dot, the logical
//!   counter in exactly ten digits); a bare integer means logical 0;
//! - RFC 3339: `2021-11-15T18:13:20Z`, also with a space instead of `T` and
//!   with no offset (UTC is assumed), with fractional seconds to the nanosecond.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::FormatError;

/// An HLC timestamp: wall nanoseconds since the epoch and a logical counter.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    pub wall: i64,
    /// Orders events that share a wall time.
    pub logical: u32,
}

/// Number of digits of the logical part in the decimal form.
const LOGICAL_DIGITS: usize = 10;

impl Timestamp {
    /// The zero timestamp, below every real one; "the beginning of time".
    pub const ZERO: Timestamp = Timestamp {
        wall: 0,
        logical: 0,
    };
    /// The largest timestamp.
    pub const MAX: Timestamp = Timestamp {
        wall: i64::MAX,
        logical: u32::MAX,
    };
    /// Length of [`Timestamp::to_bytes`].
    pub const ENCODED_LEN: usize = 12;

    /// A timestamp from its two parts.
    pub const fn new(wall: i64, logical: u32) -> Timestamp {
        Timestamp { wall, logical }
    }

    /// A timestamp at a wall time with logical 0.
    pub const fn from_wall(wall: i64) -> Timestamp {
        Timestamp { wall, logical: 0 }
    }

    /// Whether this is [`Timestamp::ZERO`].
    pub fn is_zero(&self) -> bool {
        *self == Timestamp::ZERO
    }

    /// The smallest timestamp above this one.
    pub fn next(&self) -> Timestamp {
        match self.logical.checked_add(1) {
            Some(logical) => Timestamp {
                wall: self.wall,
                logical,
            },
            None => Timestamp {
                wall: self.wall.saturating_add(1),
                logical: 0,
            },
        }
    }

    /// The largest timestamp below this one (ZERO stays ZERO).
    pub fn prev(&self) -> Timestamp {
        if self.logical > 0 {
            Timestamp {
                wall: self.wall,
                logical: self.logical - 1,
            }
        } else if self.wall > 0 {
            Timestamp {
                wall: self.wall - 1,
                logical: u32::MAX,
            }
        } else {
            Timestamp::ZERO
        }
    }

    /// The timestamp `nanos` nanoseconds later (or earlier, when negative), logical 0.
    pub fn add_nanos(&self, nanos: i64) -> Timestamp {
        Timestamp::from_wall(self.wall.saturating_add(nanos))
    }

    /// The wall time as a UTC date-time.
    pub fn to_datetime(&self) -> OffsetDateTime {
        // i64 nanoseconds always fit in OffsetDateTime's range.
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.wall))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The wall time in RFC 3339 (UTC, nanosecond precision when needed).
    pub fn to_rfc3339(&self) -> String {
        self.to_datetime()
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.to_string())
    }

    /// A fixed 12-byte big-endian encoding whose byte order is the timestamp order
    /// (for non-negative wall times).
    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..8].copy_from_slice(&self.wall.to_be_bytes());
        out[8..].copy_from_slice(&self.logical.to_be_bytes());
        out
    }

    /// Decodes [`Timestamp::to_bytes`].
    pub fn from_bytes(bytes: [u8; Self::ENCODED_LEN]) -> Timestamp {
        let mut wall = [0u8; 8];
        wall.copy_from_slice(&bytes[..8]);
        let mut logical = [0u8; 4];
        logical.copy_from_slice(&bytes[8..]);
        Timestamp {
            wall: i64::from_be_bytes(wall),
            logical: u32::from_be_bytes(logical),
        }
    }

    /// Parses the decimal form (`wall[.logical]`).
    pub fn parse_decimal(s: &str) -> Result<Timestamp, FormatError> {
        let bad = |why: &str| FormatError::InvalidTimestamp {
            input: s.to_string(),
            reason: why.to_string(),
        };
        let (wall, logical) = match s.split_once('.') {
            Some((w, l)) => (w, Some(l)),
            None => (s, None),
        };
        if wall.is_empty() || !wall.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "the wall time must be a non-negative integer of nanoseconds",
            ));
        }
        let wall: i64 = wall
            .parse()
            .map_err(|_| bad("the wall time is out of range"))?;
        let logical = match logical {
            None => 0,
            Some(l) => {
                if l.len() != LOGICAL_DIGITS || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("the logical part must be exactly ten digits"));
                }
                l.parse::<u32>()
                    .map_err(|_| bad("the logical part is out of range"))?
            }
        };
        Ok(Timestamp { wall, logical })
    }

    /// Parses an RFC 3339 date-time (also `YYYY-MM-DD HH:MM:SS[.f]` in UTC).
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, FormatError> {
        let trimmed = s.trim();
        let with_t = trimmed.replacen(' ', "T", 1);
        let candidates = [trimmed.to_string(), with_t.clone(), format!("{with_t}Z")];
        for c in &candidates {
            if let Ok(dt) = OffsetDateTime::parse(c, &Rfc3339) {
                let nanos = dt.unix_timestamp_nanos();
                let wall = i64::try_from(nanos).map_err(|_| FormatError::InvalidTimestamp {
                    input: s.to_string(),
                    reason: "the time is out of the representable range (1677..2262)".into(),
                })?;
                if wall < 0 {
                    return Err(FormatError::InvalidTimestamp {
                        input: s.to_string(),
                        reason: "times before 1970 are not supported".into(),
                    });
                }
                return Ok(Timestamp::from_wall(wall));
            }
        }
        Err(FormatError::InvalidTimestamp {
            input: s.to_string(),
            reason: "expected a decimal HLC timestamp or an RFC 3339 date-time".into(),
        })
    }
}

impl FromStr for Timestamp {
    type Err = FormatError;

    /// Parses either text form: decimal first, then RFC 3339.
    fn from_str(s: &str) -> Result<Timestamp, FormatError> {
        let s = s.trim();
        if s.bytes().next().is_some_and(|b| b.is_ascii_digit())
            && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            Timestamp::parse_decimal(s)
        } else {
            Timestamp::parse_rfc3339(s)
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:010}", self.wall, self.logical)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimal_form() {
        let ts: Timestamp = "1637000000000000000.0000000001".parse().unwrap();
        assert_eq!(ts, Timestamp::new(1_637_000_000_000_000_000, 1));
        assert_eq!(ts.to_string(), "1637000000000000000.0000000001");
        let bare: Timestamp = "1637000000000000000".parse().unwrap();
        assert_eq!(bare, Timestamp::from_wall(1_637_000_000_000_000_000));
    }

    #[test]
    fn rfc3339_forms() {
        let a: Timestamp = "2021-11-15T18:13:20Z".parse().unwrap();
        assert_eq!(a, Timestamp::from_wall(1_637_000_000_000_000_000));
        let b: Timestamp = "2021-11-15 18:13:20".parse().unwrap();
        assert_eq!(a, b);
        let c: Timestamp = "2021-11-15T19:13:20.5+01:00".parse().unwrap();
        assert_eq!(c, a.add_nanos(500_000_000));
        assert_eq!(a.to_rfc3339(), "2021-11-15T18:13:20Z");
    }

    #[test]
    fn bad_inputs_are_errors() {
        for s in [
            "",
            "abc",
            "1.2",
            "1.00000000001",
            "-5",
            "2021-13-01T00:00:00Z",
            "1.x000000000",
        ] {
            let err = s.parse::<Timestamp>().unwrap_err();
            assert!(err.to_string().contains("timestamp"), "{s}: {err}");
        }
    }

    #[test]
    fn next_and_prev() {
        let t = Timestamp::new(5, u32::MAX);
        assert_eq!(t.next(), Timestamp::new(6, 0));
        assert_eq!(t.next().prev(), t);
        assert_eq!(Timestamp::ZERO.prev(), Timestamp::ZERO);
    }

    proptest! {
        #[test]
        fn decimal_round_trip(wall in 0i64..i64::MAX, logical: u32) {
            let ts = Timestamp::new(wall, logical);
            prop_assert_eq!(ts.to_string().parse::<Timestamp>().unwrap(), ts);
            prop_assert_eq!(Timestamp::from_bytes(ts.to_bytes()), ts);
        }

        #[test]
        fn byte_order_is_timestamp_order(a in 0i64..i64::MAX, la: u32, b in 0i64..i64::MAX, lb: u32) {
            let (x, y) = (Timestamp::new(a, la), Timestamp::new(b, lb));
            prop_assert_eq!(x.cmp(&y), x.to_bytes().cmp(&y.to_bytes()));
        }
    }
}
