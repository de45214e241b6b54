//! The schedule model: what a backup schedule runs, its policies, and the
//! scheduler's state between runs, with their stored encodings.

use backup_format::Timestamp;

use crate::error::ExecError;
use crate::host::{JobId, ProtectionId};

/// A schedule id (the store assigns it; never handed out twice).
pub type ScheduleId = u64;

/// One backup schedule: a full or an incremental schedule, the two halves
/// of a pair created by one `CREATE SCHEDULE`, or a lone full schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSchedule {
    /// Its id ([`super::ScheduleStore::create`] assigns it).
    pub id: ScheduleId,
    /// Its label (for people; not unique).
    pub label: String,
    /// The user it runs as.
    pub owner: String,
    /// When it runs: a cron expression or `@daily`-style name, in UTC; empty
    /// for a schedule that runs once (`RECURRING NEVER`).
    pub recurrence: String,
    /// When it runs next (`None`: not planned, e.g. paused or done).
    pub next_run: Option<Timestamp>,
    /// A paused schedule does not run.
    pub paused: bool,
    /// What it runs and how (set at creation).
    pub details: ScheduleDetails,
    /// What the scheduler remembers between runs.
    pub state: ScheduleState,
}

/// Whether a schedule's runs are full or incremental backups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScheduleKind {
    /// Every run is a new full backup.
    Full,
    /// Every run adds an incremental layer to the newest full backup.
    Incremental,
}

/// What a schedule runs, fixed at creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleDetails {
    /// Full or incremental.
    pub kind: ScheduleKind,
    /// The backup statement each run executes, with its secrets (stored, never
    /// displayed: show it redacted).
    pub backup_statement: String,
    /// The database the schedule was created in (unqualified names in the
    /// statement resolve in it).
    pub database: String,
    /// The other schedule of a full/incremental pair.
    pub pair: Option<ScheduleId>,
    /// What a failed run leads to.
    pub on_execution_failure: OnExecutionFailure,
    /// What a run that finds the previous one still running does.
    pub on_previous_running: OnPreviousRunning,
    /// When the schedule was created.
    pub created: Timestamp,
}

/// `on_execution_failure`: what a failed run leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum OnExecutionFailure {
    /// Run again soon ([`super::RETRY_DELAY_NANOS`] later).
    Retry,
    /// Run again at the next planned time (the default).
    #[default]
    Reschedule,
    /// Pause the schedule until `RESUME SCHEDULE`.
    Pause,
}

/// `on_previous_running`: what a due run does while the previous job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum OnPreviousRunning {
    /// Start the new backup anyway.
    Start,
    /// Skip this run; the next one is at the next planned time.
    Skip,
    /// Wait for the previous job to finish, then run (the default).
    #[default]
    Wait,
}

impl OnExecutionFailure {
    /// The option value (`retry`, `reschedule`, `pause`).
    pub fn as_str(&self) -> &'static str {
        match self {
            OnExecutionFailure::Retry => "retry",
            OnExecutionFailure::Reschedule => "reschedule",
            OnExecutionFailure::Pause => "pause",
        }
    }

    /// Parses an option value (case-insensitive).
    pub fn parse(s: &str) -> Option<OnExecutionFailure> {
        [Self::Retry, Self::Reschedule, Self::Pause]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

impl OnPreviousRunning {
    /// The option value (`start`, `skip`, `wait`).
    pub fn as_str(&self) -> &'static str {
        match self {
            OnPreviousRunning::Start => "start",
            OnPreviousRunning::Skip => "skip",
            OnPreviousRunning::Wait => "wait",
        }
    }

    /// Parses an option value (case-insensitive).
    pub fn parse(s: &str) -> Option<OnPreviousRunning> {
        [Self::Start, Self::Skip, Self::Wait]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

/// What the scheduler remembers between runs. Empty bytes decode to the
/// default (a schedule with no history), so a host may reset the state of a
/// restored schedule by storing an empty state.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ScheduleState {
    /// A note for `SHOW SCHEDULES` (why it is paused, the last error...).
    pub status: String,
    /// An incremental schedule waiting for its pair's first full backup
    /// (created paused; the full's first success resumes it).
    pub waiting_for_full: bool,
    /// Jobs this schedule started that had not finished at the last tick.
    pub running: Vec<RunningJob>,
    /// The newest job it started.
    pub last_job: Option<JobId>,
    /// End time of its newest successful backup.
    pub last_success: Option<Timestamp>,
    /// The pair's chain protection (kept by the full schedule of a pair): the
    /// end time of the chain's newest backup stays protected between runs.
    pub chain: Option<ChainProtection>,
}

/// A job started by a schedule and not yet seen finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningJob {
    /// The job.
    pub job: JobId,
    /// Its backup's end time.
    pub end_time: Timestamp,
    /// Protection of its end time, taken at start for the chain (pairs only).
    pub protection: Option<ProtectionId>,
}

/// A protected timestamp that keeps a chain's newest end time readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainProtection {
    /// The protection.
    pub id: ProtectionId,
    /// The protected time (the chain's newest end time).
    pub at: Timestamp,
}

const DETAILS_VERSION: u8 = 1;
const STATE_VERSION: u8 = 1;

impl ScheduleDetails {
    /// The stored encoding (a version byte, then the fields).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(vec![DETAILS_VERSION]);
        e.u8(match self.kind {
            ScheduleKind::Full => 0,
            ScheduleKind::Incremental => 1,
        });
        e.str(&self.backup_statement);
        e.str(&self.database);
        e.opt(self.pair);
        e.str(self.on_execution_failure.as_str());
        e.str(self.on_previous_running.as_str());
        e.ts(self.created);
        e.0
    }

    /// Reads what [`ScheduleDetails::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<ScheduleDetails, ExecError> {
        let mut d = Dec::new("schedule details", bytes, DETAILS_VERSION)?;
        let kind = match d.u8()? {
            0 => ScheduleKind::Full,
            1 => ScheduleKind::Incremental,
            _ => return Err(d.corrupt("unknown schedule kind")),
        };
        let backup_statement = d.string()?;
        let database = d.string()?;
        let pair = d.opt()?;
        let on_execution_failure = OnExecutionFailure::parse(&d.string()?)
            .ok_or_else(|| d.corrupt("unknown on_execution_failure"))?;
        let on_previous_running = OnPreviousRunning::parse(&d.string()?)
            .ok_or_else(|| d.corrupt("unknown on_previous_running"))?;
        let created = d.ts()?;
        d.finish()?;
        Ok(ScheduleDetails {
            kind,
            backup_statement,
            database,
            pair,
            on_execution_failure,
            on_previous_running,
            created,
        })
    }
}

impl ScheduleState {
    /// The stored encoding (a version byte, then the fields).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(vec![STATE_VERSION]);
        e.str(&self.status);
        e.u8(u8::from(self.waiting_for_full));
        e.u64(self.running.len() as u64);
        for r in &self.running {
            e.u64(r.job);
            e.ts(r.end_time);
            e.opt(r.protection.map(|p| p.0));
        }
        e.opt(self.last_job);
        e.opt_ts(self.last_success);
        e.u8(u8::from(self.chain.is_some()));
        if let Some(c) = self.chain {
            e.u64(c.id.0);
            e.ts(c.at);
        }
        e.0
    }

    /// Reads what [`ScheduleState::encode`] wrote; empty bytes are the default.
    pub fn decode(bytes: &[u8]) -> Result<ScheduleState, ExecError> {
        if bytes.is_empty() {
            return Ok(ScheduleState::default());
        }
        let mut d = Dec::new("schedule state", bytes, STATE_VERSION)?;
        let status = d.string()?;
        let waiting_for_full = d.u8()? != 0;
        let n = d.u64()?;
        let mut running = Vec::new();
        for _ in 0..n {
            let job = d.u64()?;
            let end_time = d.ts()?;
            let protection = d.opt()?.map(ProtectionId);
            running.push(RunningJob {
                job,
                end_time,
                protection,
            });
        }
        let last_job = d.opt()?;
        let last_success = d.opt_ts()?;
        let chain = if d.u8()? != 0 {
            Some(ChainProtection {
                id: ProtectionId(d.u64()?),
                at: d.ts()?,
            })
        } else {
            None
        };
        d.finish()?;
        Ok(ScheduleState {
            status,
            waiting_for_full,
            running,
            last_job,
            last_success,
            chain,
        })
    }
}

/// Appends fields.
struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn ts(&mut self, t: Timestamp) {
        self.0.extend_from_slice(&t.to_bytes());
    }
    fn opt(&mut self, v: Option<u64>) {
        self.u8(u8::from(v.is_some()));
        self.u64(v.unwrap_or(0));
    }
    fn opt_ts(&mut self, t: Option<Timestamp>) {
        self.u8(u8::from(t.is_some()));
        self.ts(t.unwrap_or(Timestamp::ZERO));
    }
}

/// Reads what [`Enc`] wrote, bounds-checked.
struct Dec<'a> {
    what: &'static str,
    rest: &'a [u8],
}

impl<'a> Dec<'a> {
    fn new(what: &'static str, bytes: &'a [u8], version: u8) -> Result<Dec<'a>, ExecError> {
        let mut d = Dec { what, rest: bytes };
        let v = d.u8()?;
        if v != version {
            return Err(d.corrupt(&format!("unknown encoding version {v}")));
        }
        Ok(d)
    }
    fn corrupt(&self, detail: &str) -> ExecError {
        ExecError::Corrupt {
            what: self.what.to_string(),
            detail: detail.to_string(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ExecError> {
        if self.rest.len() < n {
            return Err(self.corrupt("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, ExecError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, ExecError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn string(&mut self) -> Result<String, ExecError> {
        let n = usize::try_from(self.u64()?).map_err(|_| self.corrupt("a length past the end"))?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.corrupt("a string that is not UTF-8"))
    }
    fn ts(&mut self) -> Result<Timestamp, ExecError> {
        let mut a = [0u8; Timestamp::ENCODED_LEN];
        a.copy_from_slice(self.take(Timestamp::ENCODED_LEN)?);
        Ok(Timestamp::from_bytes(a))
    }
    fn opt(&mut self) -> Result<Option<u64>, ExecError> {
        let has = self.u8()? != 0;
        let v = self.u64()?;
        Ok(has.then_some(v))
    }
    fn opt_ts(&mut self) -> Result<Option<Timestamp>, ExecError> {
        let has = self.u8()? != 0;
        let t = self.ts()?;
        Ok(has.then_some(t))
    }
    fn finish(self) -> Result<(), ExecError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_and_state_round_trip_and_reject_damage() {
        let details = ScheduleDetails {
            kind: ScheduleKind::Incremental,
            backup_statement: "BACKUP INTO LATEST IN 'nodelocal://1/b' WITH detached".into(),
            database: "defaultdb".into(),
            pair: Some(4),
            on_execution_failure: OnExecutionFailure::Pause,
            on_previous_running: OnPreviousRunning::Skip,
            created: Timestamp::new(10, 2),
        };
        let bytes = details.encode();
        assert_eq!(ScheduleDetails::decode(&bytes).unwrap(), details);
        for cut in 0..bytes.len() {
            assert!(ScheduleDetails::decode(&bytes[..cut]).is_err());
        }
        let state = ScheduleState {
            status: "paused".into(),
            waiting_for_full: true,
            running: vec![RunningJob {
                job: 7,
                end_time: Timestamp::from_wall(99),
                protection: Some(ProtectionId(3)),
            }],
            last_job: Some(7),
            last_success: Some(Timestamp::from_wall(50)),
            chain: Some(ChainProtection {
                id: ProtectionId(2),
                at: Timestamp::from_wall(50),
            }),
        };
        let bytes = state.encode();
        assert_eq!(ScheduleState::decode(&bytes).unwrap(), state);
        for cut in 1..bytes.len() {
            assert!(ScheduleState::decode(&bytes[..cut]).is_err());
        }
        assert_eq!(
            ScheduleState::decode(&[]).unwrap(),
            ScheduleState::default()
        );
        let mut trailing = bytes;
        trailing.push(0);
        assert!(ScheduleState::decode(&trailing).is_err());
    }

    #[test]
    fn policy_names_round_trip() {
        for p in [
            OnExecutionFailure::Retry,
            OnExecutionFailure::Reschedule,
            OnExecutionFailure::Pause,
        ] {
            assert_eq!(OnExecutionFailure::parse(p.as_str()), Some(p));
        }
        for p in [
            OnPreviousRunning::Start,
            OnPreviousRunning::Skip,
            OnPreviousRunning::Wait,
        ] {
            assert_eq!(
                OnPreviousRunning::parse(&p.as_str().to_uppercase()),
                Some(p)
            );
        }
        assert_eq!(OnExecutionFailure::parse("later"), None);
    }
}
