//! Backup schedules: `CREATE SCHEDULE FOR BACKUP`, `SHOW SCHEDULES`,
//! `SHOW SCHEDULE`, `PAUSE | RESUME | DROP SCHEDULE`, and one run of a
//! schedule for the host's scheduler ([`BackupStatements::start_scheduled`]).
//!
//! A schedule stores the `BACKUP ... WITH detached` statement each run
//! executes (with its secrets; it is shown redacted) and runs it as the
//! schedule's owner through the same path as a typed `BACKUP`: names,
//! privileges and dependencies are checked again at every run.

use std::sync::Arc;

use backup_exec::schedule::{
    BackupSchedule, OnExecutionFailure, OnPreviousRunning, Recurrence, ScheduleDetails,
    ScheduleKind, ScheduleRunner, ScheduleStore, default_full_recurrence,
};
use backup_exec::{JobId, JobRecord};
use backup_format::Timestamp;

use super::resolve::{Names, check_backup_privileges, check_dependencies, resolve_targets};
use super::{BackupStatements, Datum, ResultSet, SqlContext, flag, text};
use crate::ast::{
    Backup, CreateSchedule, Expr, FullBackup, Label, Recurrence as AstRecurrence, ScheduleCommand,
    ScheduleState as StateFilter, Statement, Subdir,
};
use crate::error::SqlError;

/// The result columns of `CREATE SCHEDULE FOR BACKUP` (one row per schedule).
const CREATE_COLUMNS: &[(&str, &str)] = &[
    ("schedule_id", "INT8"),
    ("label", "STRING"),
    ("status", "STRING"),
    ("first_run", "TIMESTAMPTZ"),
    ("schedule", "STRING"),
    ("backup_stmt", "STRING"),
];

/// The columns of `SHOW SCHEDULES` and `SHOW SCHEDULE`.
const SHOW_COLUMNS: &[(&str, &str)] = &[
    ("id", "INT8"),
    ("label", "STRING"),
    ("schedule_status", "STRING"),
    ("next_run", "TIMESTAMPTZ"),
    ("state", "STRING"),
    ("recurrence", "STRING"),
    ("jobs_running", "INT8"),
    ("owner", "STRING"),
    ("created", "TIMESTAMPTZ"),
    ("command", "STRING"),
];

/// The status of an incremental schedule until its first full backup exists.
const WAITING: &str = "Waiting for initial backup to complete";

impl BackupStatements {
    /// Keeps schedules in `store`, enabling the schedule statements.
    pub fn with_schedules(mut self, store: Arc<dyn ScheduleStore>) -> BackupStatements {
        self.schedules = Some(store);
        self
    }

    /// The scheduler over this executor's host and schedule store (`None`
    /// without [`BackupStatements::with_schedules`]); set its
    /// `catalog_spans` to the host's catalog spans.
    pub fn schedule_runner(&self) -> Option<ScheduleRunner> {
        Some(ScheduleRunner {
            schedules: self.schedules.clone()?,
            jobs: self.host.jobs.clone(),
            protector: self.host.protector.clone(),
            clock: self.host.clock.clone(),
            catalog_spans: Vec::new(),
        })
    }

    fn schedule_store(&self) -> Result<&Arc<dyn ScheduleStore>, SqlError> {
        self.schedules.as_ref().ok_or_else(|| {
            SqlError::Unsupported(
                "this host keeps no schedules: backup schedules are not available".into(),
            )
        })
    }

    /// Starts one run of `schedule` as `ctx`'s user (its owner): its backup
    /// statement, detached, through the same path as a typed `BACKUP`.
    /// Blocks until the job is registered; do not call from a tokio runtime.
    pub fn start_scheduled(
        &self,
        ctx: &dyn SqlContext,
        schedule: &BackupSchedule,
    ) -> Result<JobId, SqlError> {
        let Some(rt) = &self.runtime else {
            return Err(SqlError::Exec("the executor is shut down".into()));
        };
        rt.block_on(self.start_scheduled_async(ctx, schedule))
    }

    /// [`BackupStatements::start_scheduled`] on the caller's runtime.
    pub async fn start_scheduled_async(
        &self,
        ctx: &dyn SqlContext,
        schedule: &BackupSchedule,
    ) -> Result<JobId, SqlError> {
        let stmt = crate::parse_statement(&schedule.details.backup_statement)?;
        let Statement::Backup(mut b) = stmt else {
            return Err(SqlError::Exec(format!(
                "schedule {} does not hold a BACKUP statement",
                schedule.id
            )));
        };
        b.options.detached = Some(Expr::Bool(true));
        let stmt = Statement::Backup(b.clone());
        let rs = self
            .backup(ctx, &stmt, &b)
            .await
            .map_err(|e| super::scrub::scrub(e, &stmt))?;
        match rs.rows.first().and_then(|r| r.first()) {
            Some(Datum::Int(id)) => Ok(*id as JobId),
            _ => Err(SqlError::Exec(
                "the scheduled backup returned no job id".into(),
            )),
        }
    }

    /// Waits for a job started by this executor to stop and returns its
    /// record. Blocks; do not call from a tokio runtime.
    pub fn wait_for_job(&self, id: JobId) -> Result<JobRecord, SqlError> {
        let Some(rt) = &self.runtime else {
            return Err(SqlError::Exec("the executor is shut down".into()));
        };
        // A job that already stopped is not waited for: its record says how.
        let _ = rt.block_on(self.backups.wait(id));
        Ok(self.backups.job(id)?)
    }

    /// Resumes job `id` in the background (a scheduled job an earlier
    /// process left running), from its last checkpoint.
    pub fn resume_detached(&self, id: JobId) -> Result<(), SqlError> {
        let Some(rt) = &self.runtime else {
            return Err(SqlError::Exec("the executor is shut down".into()));
        };
        let jobs = self.backups.clone();
        rt.spawn(async move { jobs.resume(id).await });
        Ok(())
    }

    pub(super) async fn create_schedule(
        &self,
        ctx: &dyn SqlContext,
        c: &CreateSchedule,
    ) -> Result<ResultSet, SqlError> {
        let store = self.schedule_store()?;
        let mut rs = ResultSet::with_columns(CREATE_COLUMNS);
        let label = match &c.label {
            Some(Label::Name(id)) => id.as_str().to_string(),
            Some(Label::Value(e)) => text("schedule label", e)?,
            None => "BACKUP".to_string(),
        };
        if c.if_not_exists && store.list()?.iter().any(|s| s.label == label) {
            return Ok(rs);
        }
        let now = self.now();
        // Checked now as a BACKUP would be, and again at every run.
        let all = self.host.catalog.descriptors(now)?;
        let names = Names::new(&all);
        let resolved = resolve_targets(&names, &c.targets, &ctx.current_database())?;
        check_backup_privileges(ctx, &names, &c.targets, &resolved)?;
        check_dependencies(&names, &resolved.ids)?;
        let o = &c.schedule_options;
        if let Some(uri) = c.to.first() {
            let collection = text("URI", uri)?;
            backup_storage::StorageUri::parse(&collection)?;
            // A new schedule starts its own chains: it would otherwise add
            // incrementals to another writer's full backups.
            if !flag("ignore_existing_backups", &o.ignore_existing_backups)?
                && !self.show_backups(uri).await?.rows.is_empty()
            {
                return Err(SqlError::AlreadyExists(format!(
                    "backups already exist in {}: schedule into a new location, or add \
                     WITH SCHEDULE OPTIONS ignore_existing_backups",
                    backup_storage::redact_uri(&collection)
                )));
            }
        }
        let plan = Plan::of(c, now)?;
        let option = |name: &str, e: &Option<Expr>| -> Result<Option<String>, SqlError> {
            e.as_ref().map(|e| text(name, e)).transpose()
        };
        let on_execution_failure = match option("on_execution_failure", &o.on_execution_failure)? {
            None => OnExecutionFailure::default(),
            Some(v) => OnExecutionFailure::parse(&v).ok_or_else(|| {
                bad_option(
                    "on_execution_failure",
                    &v,
                    "'retry', 'reschedule' or 'pause'",
                )
            })?,
        };
        let on_previous_running = match option("on_previous_running", &o.on_previous_running)? {
            None => OnPreviousRunning::default(),
            Some(v) => OnPreviousRunning::parse(&v).ok_or_else(|| {
                bad_option("on_previous_running", &v, "'start', 'skip' or 'wait'")
            })?,
        };
        let first_run = match option("first_run", &o.first_run)? {
            None => match &plan.full {
                Some(r) => Some(r.next_after(now)?),
                None => Some(now),
            },
            Some(v) if v.eq_ignore_ascii_case("now") => Some(now),
            Some(v) => Some(v.parse::<Timestamp>().map_err(|e| {
                bad_option("first_run", &v, &format!("'now' or a timestamp ({e})"))
            })?),
        };
        let statement = |subdir: Option<Subdir>| {
            let mut options = c.backup_options.clone();
            options.detached = Some(Expr::Bool(true));
            Statement::Backup(Backup {
                targets: c.targets.clone(),
                subdir,
                to: c.to.clone(),
                as_of: None,
                options,
            })
        };
        let details = |kind, stmt: &Statement| ScheduleDetails {
            kind,
            backup_statement: stmt.to_string(),
            database: ctx.current_database(),
            pair: None,
            on_execution_failure,
            on_previous_running,
            created: now,
        };
        let full_stmt = statement(None);
        let mut full = BackupSchedule {
            id: 0,
            label: label.clone(),
            owner: ctx.user(),
            recurrence: plan.full.as_ref().map_or("", |r| r.expr()).to_string(),
            next_run: first_run,
            paused: false,
            details: details(ScheduleKind::Full, &full_stmt),
            state: Default::default(),
        };
        full.id = store.create(&full)?;
        let mut rows = vec![row(&full, "ACTIVE", &full_stmt)];
        if let Some(inc) = &plan.incremental {
            let inc_stmt = statement(Some(Subdir::Latest));
            let mut incremental = BackupSchedule {
                id: 0,
                label,
                owner: ctx.user(),
                recurrence: inc.expr().to_string(),
                next_run: None,
                paused: true,
                details: ScheduleDetails {
                    pair: Some(full.id),
                    ..details(ScheduleKind::Incremental, &inc_stmt)
                },
                state: Default::default(),
            };
            incremental.state.waiting_for_full = true;
            incremental.state.status = WAITING.to_string();
            incremental.id = store.create(&incremental)?;
            let full_id = full.id;
            store.update(full_id, &mut |s| {
                s.details.pair = Some(incremental.id);
                Ok(())
            })?;
            rows.insert(
                0,
                row(&incremental, &format!("PAUSED: {WAITING}"), &inc_stmt),
            );
        }
        rs.rows = rows;
        Ok(rs)
    }

    pub(super) fn show_schedules(
        &self,
        ctx: &dyn SqlContext,
        filter: Option<StateFilter>,
        only: Option<u64>,
    ) -> Result<ResultSet, SqlError> {
        let store = self.schedule_store()?;
        let mut rs = ResultSet::with_columns(SHOW_COLUMNS);
        let schedules = match only {
            Some(id) => vec![store.get(id)?.ok_or_else(|| not_found(id))?],
            None => store.list()?,
        };
        for s in schedules {
            if !ctx.is_admin() && s.owner != ctx.user() {
                if only.is_some() {
                    return Err(not_found(s.id));
                }
                continue;
            }
            match filter {
                Some(StateFilter::Running) if s.paused => continue,
                Some(StateFilter::Paused) if !s.paused => continue,
                _ => {}
            }
            rs.rows.push(vec![
                Datum::Int(s.id as i64),
                Datum::String(s.label.clone()),
                Datum::String(if s.paused { "PAUSED" } else { "ACTIVE" }.into()),
                s.next_run.map_or(Datum::Null, Datum::Timestamp),
                match s.state.status.as_str() {
                    "" => Datum::Null,
                    st => Datum::String(st.to_string()),
                },
                Datum::String(s.recurrence.clone()),
                Datum::Int(s.state.running.len() as i64),
                Datum::String(s.owner.clone()),
                Datum::Timestamp(s.details.created),
                Datum::String(redacted(&s.details.backup_statement)),
            ]);
        }
        Ok(rs)
    }

    pub(super) fn control_schedule(
        &self,
        ctx: &dyn SqlContext,
        command: ScheduleCommand,
        id: u64,
    ) -> Result<ResultSet, SqlError> {
        let store = self.schedule_store()?;
        let s = store.get(id)?.ok_or_else(|| not_found(id))?;
        if !ctx.is_admin() && s.owner != ctx.user() {
            return Err(SqlError::Privilege(format!(
                "user {} does not own schedule {id}: only its owner or an admin can change it",
                ctx.user()
            )));
        }
        let now = self.now();
        match command {
            ScheduleCommand::Pause => {
                store.update(id, &mut |s| {
                    s.paused = true;
                    s.next_run = None;
                    Ok(())
                })?;
            }
            ScheduleCommand::Resume => {
                let next = match s.recurrence.trim() {
                    "" if s.state.last_job.is_none() => Some(now),
                    "" => None,
                    e => Some(Recurrence::parse(e)?.next_after(now)?),
                };
                store.update(id, &mut |s| {
                    s.paused = false;
                    s.next_run = next;
                    if !s.state.waiting_for_full {
                        s.state.status.clear();
                    }
                    Ok(())
                })?;
            }
            ScheduleCommand::Drop => {
                store.delete(id)?;
                if let Some(runner) = self.schedule_runner() {
                    runner.release_all(&s.state);
                }
                if let Some(pair) = s.details.pair {
                    // The other half lives on alone (a missing pair is fine).
                    let _ = store.update(pair, &mut |p| {
                        p.details.pair = None;
                        Ok(())
                    });
                }
            }
        }
        Ok(ResultSet::default())
    }
}

/// The recurrences a `CREATE SCHEDULE` asks for.
struct Plan {
    /// The full schedule's (`None`: it runs once).
    full: Option<Recurrence>,
    /// The incremental schedule's, when there is one.
    incremental: Option<Recurrence>,
}

impl Plan {
    fn of(c: &CreateSchedule, now: Timestamp) -> Result<Plan, SqlError> {
        let recurring = match &c.recurring {
            AstRecurrence::Never => {
                if matches!(c.full_backup, Some(FullBackup::Cron(_))) {
                    return Err(SqlError::InvalidValue {
                        what: "FULL BACKUP".into(),
                        reason: "RECURRING NEVER takes one full backup: leave FULL BACKUP out"
                            .into(),
                    });
                }
                return Ok(Plan {
                    full: None,
                    incremental: None,
                });
            }
            AstRecurrence::Cron(e) => Recurrence::parse(&text("RECURRING", e)?)?,
        };
        let full = match &c.full_backup {
            Some(FullBackup::Always) => None,
            Some(FullBackup::Cron(e)) => Some(Recurrence::parse(&text("FULL BACKUP", e)?)?),
            None => default_full_recurrence(&recurring, now)?
                .map(Recurrence::parse)
                .transpose()?,
        };
        Ok(match full {
            None => Plan {
                full: Some(recurring),
                incremental: None,
            },
            Some(f) => Plan {
                full: Some(f),
                incremental: Some(recurring),
            },
        })
    }
}

fn row(s: &BackupSchedule, status: &str, stmt: &Statement) -> Vec<Datum> {
    vec![
        Datum::Int(s.id as i64),
        Datum::String(s.label.clone()),
        Datum::String(status.to_string()),
        s.next_run.map_or(Datum::Null, Datum::Timestamp),
        Datum::String(if s.recurrence.is_empty() {
            "NEVER".into()
        } else {
            s.recurrence.clone()
        }),
        Datum::String(stmt.redacted().to_string()),
    ]
}

/// A stored backup statement with its secrets redacted.
fn redacted(sql: &str) -> String {
    match crate::parse_statement(sql) {
        Ok(s) => s.redacted().to_string(),
        Err(_) => "(not shown: the stored statement does not parse)".into(),
    }
}

fn not_found(id: u64) -> SqlError {
    SqlError::NotFound(format!("schedule with ID {id} does not exist"))
}

fn bad_option(name: &str, value: &str, expected: &str) -> SqlError {
    SqlError::InvalidValue {
        what: format!("schedule option {name:?}"),
        reason: format!("{value:?} is not valid: expected {expected}"),
    }
}

/// A schedule id from a bound expression.
pub(super) fn schedule_id(e: &Expr) -> Result<u64, SqlError> {
    let text = match e {
        Expr::Number(n) | Expr::String(n) => n.as_str(),
        other => {
            return Err(SqlError::InvalidValue {
                what: "schedule id".into(),
                reason: format!("{other} is not an integer"),
            });
        }
    };
    text.parse().map_err(|_| SqlError::InvalidValue {
        what: "schedule id".into(),
        reason: format!("{text:?} is not an integer"),
    })
}
