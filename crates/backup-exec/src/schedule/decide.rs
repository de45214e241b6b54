//! The scheduling decision: a pure function of a schedule, the time, and
//! what became of the jobs it started.

use backup_format::Timestamp;

use super::cron::Recurrence;
use super::model::{BackupSchedule, OnExecutionFailure, OnPreviousRunning, ScheduleKind};
use crate::error::ExecError;
use crate::host::JobId;

/// How long `on_execution_failure = 'retry'` waits before running again.
pub const RETRY_DELAY_NANOS: i64 = 60 * 1_000_000_000;

/// What became of a job a schedule started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Still running, or paused (a paused job is not finished).
    Running,
    /// It succeeded: its backup exists.
    Succeeded,
    /// It failed or was canceled (or could not be started), with why.
    Failed(String),
}

/// What the scheduler does with one schedule at one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Start a backup now.
    pub start: bool,
    /// The schedule's next run after this tick.
    pub next_run: Option<Timestamp>,
    /// Pause the schedule (a failure under `on_execution_failure = 'pause'`).
    pub pause: bool,
    /// The note for `SHOW SCHEDULES` (`None`: leave it as it is).
    pub status: Option<String>,
}

/// Decides what `schedule` does at `now`, given the outcome of every job it
/// had running (`outcomes`, one per job of `schedule.state.running`) and,
/// for an incremental schedule, whether its full backup exists (`full_ready`).
///
/// - a failed job applies `on_execution_failure`: `retry` runs again
///   [`RETRY_DELAY_NANOS`] later, `reschedule` keeps the next planned run,
///   `pause` pauses the schedule;
/// - a paused schedule, or one not yet due, does nothing more;
/// - a due run that finds a job still running applies `on_previous_running`:
///   `start` starts anyway, `skip` moves to the next planned run, `wait`
///   stays due until the job finishes;
/// - a due incremental whose full backup does not exist yet moves to its next run;
/// - otherwise the backup starts and the next run is the recurrence's next
///   time after `now` (none for a schedule that runs once).
pub fn decide(
    schedule: &BackupSchedule,
    recurrence: Option<&Recurrence>,
    now: Timestamp,
    outcomes: &[(JobId, JobOutcome)],
    full_ready: bool,
) -> Result<Decision, ExecError> {
    let details = &schedule.details;
    let mut d = Decision {
        start: false,
        next_run: schedule.next_run,
        pause: false,
        status: None,
    };
    let next_planned = |after: Timestamp| -> Result<Option<Timestamp>, ExecError> {
        recurrence.map(|r| r.next_after(after)).transpose()
    };
    for (job, outcome) in outcomes {
        match outcome {
            JobOutcome::Failed(why) => {
                d.status = Some(format!("job {job} failed: {why}"));
                match details.on_execution_failure {
                    OnExecutionFailure::Retry => {
                        let retry = now.add_nanos(RETRY_DELAY_NANOS);
                        d.next_run = Some(d.next_run.map_or(retry, |n| n.min(retry)));
                    }
                    OnExecutionFailure::Reschedule => {}
                    OnExecutionFailure::Pause => {
                        d.pause = true;
                        d.status = Some(format!(
                            "paused because job {job} failed: {why}; RESUME SCHEDULE {} to run it again",
                            schedule.id
                        ));
                    }
                }
            }
            JobOutcome::Succeeded => d.status = Some(String::new()),
            JobOutcome::Running => {}
        }
    }
    let Some(due) = d.next_run else {
        return Ok(d);
    };
    if schedule.paused || d.pause || due > now {
        return Ok(d);
    }
    let still_running = outcomes
        .iter()
        .any(|(_, o)| matches!(o, JobOutcome::Running));
    if still_running {
        match details.on_previous_running {
            OnPreviousRunning::Start => {}
            OnPreviousRunning::Skip => {
                d.next_run = next_planned(now)?;
                d.status = Some("skipped a run: the previous backup was still running".into());
                return Ok(d);
            }
            OnPreviousRunning::Wait => {
                d.status = Some("waiting for the previous backup to finish".into());
                return Ok(d);
            }
        }
    }
    if details.kind == ScheduleKind::Incremental && !full_ready {
        d.next_run = next_planned(now)?;
        d.status = Some("skipped a run: waiting for the first full backup".into());
        return Ok(d);
    }
    d.start = true;
    d.next_run = next_planned(now)?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::model::{ScheduleDetails, ScheduleState};

    const H: i64 = 3600 * 1_000_000_000;

    fn schedule(kind: ScheduleKind) -> BackupSchedule {
        BackupSchedule {
            id: 1,
            label: "nightly".into(),
            owner: "root".into(),
            recurrence: "@hourly".into(),
            next_run: Some(Timestamp::from_wall(10 * H)),
            paused: false,
            details: ScheduleDetails {
                kind,
                backup_statement: "BACKUP INTO 'x' WITH detached".into(),
                database: "defaultdb".into(),
                pair: None,
                on_execution_failure: OnExecutionFailure::Reschedule,
                on_previous_running: OnPreviousRunning::Wait,
                created: Timestamp::from_wall(H),
            },
            state: ScheduleState::default(),
        }
    }

    fn hourly() -> Recurrence {
        Recurrence::parse("@hourly").unwrap()
    }

    fn at(h: i64) -> Timestamp {
        Timestamp::from_wall(h * H)
    }

    #[test]
    fn not_due_does_nothing_and_due_starts_with_the_next_planned_run() {
        let s = schedule(ScheduleKind::Full);
        let d = decide(&s, Some(&hourly()), at(9), &[], true).unwrap();
        assert!(!d.start);
        assert_eq!(d.next_run, Some(at(10)));
        let d = decide(&s, Some(&hourly()), at(10).add_nanos(5), &[], true).unwrap();
        assert!(d.start);
        assert_eq!(d.next_run, Some(at(11)));
        // A schedule that runs once has no next run after it.
        let d = decide(&s, None, at(10), &[], true).unwrap();
        assert!(d.start);
        assert_eq!(d.next_run, None);
    }

    #[test]
    fn paused_schedules_do_not_run() {
        let mut s = schedule(ScheduleKind::Full);
        s.paused = true;
        let d = decide(&s, Some(&hourly()), at(12), &[], true).unwrap();
        assert!(!d.start);
    }

    #[test]
    fn incremental_waits_for_its_full_backup() {
        let s = schedule(ScheduleKind::Incremental);
        let d = decide(&s, Some(&hourly()), at(10), &[], false).unwrap();
        assert!(!d.start);
        assert_eq!(d.next_run, Some(at(11)));
        assert!(d.status.unwrap().contains("first full backup"));
        assert!(
            decide(&s, Some(&hourly()), at(10), &[], true)
                .unwrap()
                .start
        );
    }

    #[test]
    fn previous_running_policies() {
        let running = [(5, JobOutcome::Running)];
        let mut s = schedule(ScheduleKind::Full);
        let now = at(10).add_nanos(1);
        let d = decide(&s, Some(&hourly()), now, &running, true).unwrap();
        assert!(!d.start, "wait");
        assert_eq!(d.next_run, Some(at(10)), "wait stays due");
        s.details.on_previous_running = OnPreviousRunning::Skip;
        let d = decide(&s, Some(&hourly()), now, &running, true).unwrap();
        assert!(!d.start, "skip");
        assert_eq!(d.next_run, Some(at(11)));
        s.details.on_previous_running = OnPreviousRunning::Start;
        let d = decide(&s, Some(&hourly()), now, &running, true).unwrap();
        assert!(d.start, "start");
    }

    #[test]
    fn failure_policies() {
        let failed = [(5, JobOutcome::Failed("storage unreachable".into()))];
        let mut s = schedule(ScheduleKind::Full);
        let now = at(9);
        // reschedule: the planned run stays.
        let d = decide(&s, Some(&hourly()), now, &failed, true).unwrap();
        assert_eq!(d.next_run, Some(at(10)));
        assert!(!d.pause);
        assert!(d.status.unwrap().contains("storage unreachable"));
        // retry: a minute later.
        s.details.on_execution_failure = OnExecutionFailure::Retry;
        let d = decide(&s, Some(&hourly()), now, &failed, true).unwrap();
        assert_eq!(d.next_run, Some(now.add_nanos(RETRY_DELAY_NANOS)));
        // pause: the schedule pauses and does not start even when due.
        s.details.on_execution_failure = OnExecutionFailure::Pause;
        let d = decide(&s, Some(&hourly()), at(10), &failed, true).unwrap();
        assert!(d.pause);
        assert!(!d.start);
        assert!(d.status.unwrap().contains("RESUME SCHEDULE 1"));
    }
}
