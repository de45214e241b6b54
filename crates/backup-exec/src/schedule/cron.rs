//! Recurrences: cron expressions (and `@daily`-style names) parsed by the
//! `croner` crate, evaluated in UTC on HLC timestamps; and the full-backup
//! cadence picked for an incremental one.

use backup_format::Timestamp;
use chrono::{DateTime, Utc};

use crate::error::ExecError;

const SECOND: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SECOND;
const DAY: i64 = 24 * HOUR;

/// A parsed recurrence: when a schedule runs.
#[derive(Clone, Debug)]
pub struct Recurrence {
    expr: String,
    cron: croner::Cron,
}

impl Recurrence {
    /// Parses a five-field cron expression (minute hour day-of-month month
    /// day-of-week) or one of `@yearly`, `@annually`, `@monthly`, `@weekly`,
    /// `@daily`, `@midnight`, `@hourly`.
    pub fn parse(expr: &str) -> Result<Recurrence, ExecError> {
        let trimmed = expr.trim();
        let normalized = if trimmed.eq_ignore_ascii_case("@midnight") {
            "@daily"
        } else {
            trimmed
        };
        let cron = croner::Cron::new(normalized).parse().map_err(|e| {
            ExecError::InvalidSchedule(format!(
                "{expr:?} is not a cron expression ({e}): use five fields such as \
                 '0 3 * * *', or @hourly, @daily, @weekly, @monthly"
            ))
        })?;
        Ok(Recurrence {
            expr: trimmed.to_string(),
            cron,
        })
    }

    /// The expression as given (trimmed).
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The first time strictly after `t` the recurrence fires (whole seconds, UTC).
    pub fn next_after(&self, t: Timestamp) -> Result<Timestamp, ExecError> {
        let secs = t.wall.div_euclid(SECOND);
        let start: DateTime<Utc> = DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| ExecError::InvalidSchedule(format!("time {t} is out of range")))?;
        let next = self.cron.find_next_occurrence(&start, false).map_err(|e| {
            ExecError::InvalidSchedule(format!("{:?} has no run after {t}: {e}", self.expr))
        })?;
        Ok(Timestamp::from_wall(
            next.timestamp().saturating_mul(SECOND),
        ))
    }

    /// The gap between the two runs after `from`, in nanoseconds (how often
    /// the recurrence fires, as CockroachDB measures it).
    pub fn frequency_nanos(&self, from: Timestamp) -> Result<i64, ExecError> {
        let first = self.next_after(from)?;
        let second = self.next_after(first)?;
        Ok(second.wall - first.wall)
    }
}

/// The full-backup recurrence for incrementals on `incremental` when
/// `CREATE SCHEDULE` names none: incrementals at most an hour apart get
/// daily full backups, at most a day apart weekly ones; rarer incrementals
/// get no separate full schedule (`None`: every run is a full backup).
pub fn default_full_recurrence(
    incremental: &Recurrence,
    now: Timestamp,
) -> Result<Option<&'static str>, ExecError> {
    let every = incremental.frequency_nanos(now)?;
    Ok(if every <= HOUR {
        Some("@daily")
    } else if every <= DAY {
        Some("@weekly")
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-24 19:30:15.5 UTC.
    fn t0() -> Timestamp {
        Timestamp::from_wall(1_795_548_615 * SECOND + SECOND / 2)
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_wall(secs * SECOND)
    }

    #[test]
    fn next_runs_in_utc() {
        let daily = Recurrence::parse("@daily").unwrap();
        // Next midnight UTC after 2026-11-24 19:30:15.
        assert_eq!(daily.next_after(t0()).unwrap(), at(1_795_564_800));
        // Strictly after: at midnight itself, the next is a day later.
        assert_eq!(
            daily.next_after(at(1_795_564_800)).unwrap(),
            at(1_795_564_800 + 86_400)
        );
        let hourly = Recurrence::parse(" @HOURLY ").unwrap();
        assert_eq!(hourly.expr(), "@HOURLY");
        assert_eq!(hourly.next_after(t0()).unwrap(), at(1_795_550_400));
        let five = Recurrence::parse("*/5 * * * *").unwrap();
        assert_eq!(five.next_after(t0()).unwrap(), at(1_795_548_900));
        // Sunday 2026-11-29 00:00 UTC.
        let weekly = Recurrence::parse("@weekly").unwrap();
        assert_eq!(weekly.next_after(t0()).unwrap(), at(1_795_910_400));
    }

    #[test]
    fn bad_expressions_are_errors() {
        for bad in [
            "",
            "every day",
            "61 * * * *",
            "* * * *  * * * *",
            "@fortnightly",
        ] {
            let e = Recurrence::parse(bad).unwrap_err().to_string();
            assert!(e.contains("cron expression"), "{bad}: {e}");
        }
    }

    #[test]
    fn default_full_cadence_follows_the_incremental_one() {
        let pick = |e: &str| default_full_recurrence(&Recurrence::parse(e).unwrap(), t0()).unwrap();
        assert_eq!(pick("*/15 * * * *"), Some("@daily"));
        assert_eq!(pick("@hourly"), Some("@daily"));
        assert_eq!(pick("0 */6 * * *"), Some("@weekly"));
        assert_eq!(pick("@daily"), Some("@weekly"));
        assert_eq!(pick("@weekly"), None);
        assert_eq!(pick("@monthly"), None);
    }
}
