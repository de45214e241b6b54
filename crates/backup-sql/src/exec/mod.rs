//! Statement execution: parsed statements become backup and restore jobs,
//! listings of backups and jobs, and job control, on any host that
//! implements `backup-exec`'s traits.
//!
//! - [`SqlContext`]: who runs the statement, in which database, with which
//!   privileges (the host's session implements it);
//! - [`BackupStatements`]: the executor, holding the host, the ingest and
//!   the job registries, and a tokio runtime for its blocking entry points;
//! - [`ResultSet`]: columns with CockroachDB type names, and rows of [`Datum`]s.
//!
//! The planning lives in `resolve` (names, privileges, dependencies),
//! `plan` (BACKUP and RESTORE specs) and `show` (listings, job control).

mod plan;
mod resolve;
mod schedule;
mod scrub;
mod show;

use std::sync::Arc;

use backup_exec::{
    BackupJobs, BackupSettings, ExecError, Host, HostError, Ingest, RestoreJobs, RestoreSettings,
};
use backup_format::{Descriptor, Timestamp};

use crate::ast::{Expr, Statement};
use crate::error::SqlError;

/// A privilege the statements check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Privilege {
    /// `SELECT` on a table, view or sequence.
    Select,
    /// `CONNECT` on a database.
    Connect,
    /// `USAGE` on a user-defined schema or type.
    Usage,
}

impl Privilege {
    /// The privilege's SQL name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Connect => "CONNECT",
            Privilege::Usage => "USAGE",
        }
    }
}

/// The session a statement runs in; the host implements it.
pub trait SqlContext {
    /// The user running the statement.
    fn user(&self) -> String;
    /// The current database (unqualified names resolve in it).
    fn current_database(&self) -> String;
    /// Whether the user has the admin role.
    fn is_admin(&self) -> bool;
    /// Whether the user holds `privilege` on `descriptor`.
    fn has_privilege(&self, descriptor: &Descriptor, privilege: Privilege) -> bool;
}

/// One result column: its name and CockroachDB type name (`INT8`, `STRING`...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// The CockroachDB type name.
    pub type_name: String,
}

/// One value of a result row.
#[derive(Clone, Debug, PartialEq)]
pub enum Datum {
    /// SQL `NULL`.
    Null,
    /// `INT8`
    Int(i64),
    /// `FLOAT8`
    Float(f64),
    /// `STRING`
    String(String),
    /// `BOOL`
    Bool(bool),
    /// `TIMESTAMPTZ`
    Timestamp(Timestamp),
    /// `BYTES`
    Bytes(Vec<u8>),
}

/// The result of a statement.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ResultSet {
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows, each with one datum per column.
    pub rows: Vec<Vec<Datum>>,
}

impl ResultSet {
    /// An empty result with these `(name, type)` columns.
    pub fn with_columns(columns: &[(&str, &str)]) -> ResultSet {
        ResultSet {
            columns: columns
                .iter()
                .map(|(n, t)| Column {
                    name: (*n).to_string(),
                    type_name: (*t).to_string(),
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    /// The column names, in order.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }
}

/// Runs backup statements on one host. Owns a tokio runtime for
/// [`BackupStatements::execute`], which blocks; do not call that from
/// inside another tokio runtime (use [`BackupStatements::execute_async`]).
pub struct BackupStatements {
    host: Host,
    backups: BackupJobs,
    restores: RestoreJobs,
    schedules: Option<Arc<dyn backup_exec::schedule::ScheduleStore>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for BackupStatements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupStatements")
    }
}

impl BackupStatements {
    /// An executor over `host`, restoring through `ingest`.
    pub fn new(
        host: Host,
        ingest: Arc<dyn Ingest>,
        backup: BackupSettings,
        restore: RestoreSettings,
    ) -> Result<BackupStatements, SqlError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("backup-sql")
            .enable_all()
            .build()
            .map_err(|e| SqlError::Exec(format!("cannot start the job runtime: {e}")))?;
        Ok(BackupStatements {
            backups: BackupJobs::new(host.clone(), backup),
            restores: RestoreJobs::new(host.clone(), ingest, restore),
            host,
            schedules: None,
            runtime: Some(runtime),
        })
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The backup job registry.
    pub fn backup_jobs(&self) -> &BackupJobs {
        &self.backups
    }

    /// Parses, binds and runs one statement, blocking until it is done (a
    /// detached job keeps running on the executor's runtime).
    pub fn execute_sql(
        &self,
        ctx: &dyn SqlContext,
        sql: &str,
        params: &[String],
    ) -> Result<ResultSet, SqlError> {
        let stmt = crate::parse_statement(sql)?;
        self.execute(ctx, &stmt, params)
    }

    /// Binds `params` and runs `stmt`, blocking until it is done.
    pub fn execute(
        &self,
        ctx: &dyn SqlContext,
        stmt: &Statement,
        params: &[String],
    ) -> Result<ResultSet, SqlError> {
        let Some(rt) = &self.runtime else {
            return Err(SqlError::Exec("the executor is shut down".into()));
        };
        rt.block_on(self.execute_async(ctx, stmt, params))
    }

    /// Binds `params` and runs `stmt` on the caller's tokio runtime.
    pub async fn execute_async(
        &self,
        ctx: &dyn SqlContext,
        stmt: &Statement,
        params: &[String],
    ) -> Result<ResultSet, SqlError> {
        let stmt = stmt.bind(params)?;
        stmt.check_supported()?;
        self.run(ctx, &stmt)
            .await
            .map_err(|e| scrub::scrub(e, &stmt))
    }

    async fn run(&self, ctx: &dyn SqlContext, stmt: &Statement) -> Result<ResultSet, SqlError> {
        match stmt {
            Statement::Backup(b) => self.backup(ctx, stmt, b).await,
            Statement::Restore(r) => self.restore(ctx, stmt, r).await,
            Statement::ShowBackups { collection } => self.show_backups(collection).await,
            Statement::ShowBackup(s) => self.show_backup(s).await,
            Statement::ShowJobs => self.show_jobs(ctx, None),
            Statement::ShowJob { job } => self.show_jobs(ctx, Some(job_id(job)?)),
            Statement::ControlJob { command, job } => {
                self.control_job(ctx, *command, job_id(job)?).await
            }
            Statement::CreateSchedule(c) => self.create_schedule(ctx, c).await,
            Statement::ShowSchedules { filter } => self.show_schedules(ctx, *filter, None),
            Statement::ShowSchedule { schedule } => {
                self.show_schedules(ctx, None, Some(schedule::schedule_id(schedule)?))
            }
            Statement::ControlSchedule { command, schedule } => {
                self.control_schedule(ctx, *command, schedule::schedule_id(schedule)?)
            }
        }
    }

    /// The host's current time.
    fn now(&self) -> Timestamp {
        self.host.clock.now()
    }
}

impl Drop for BackupStatements {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A job id from a bound expression.
fn job_id(e: &Expr) -> Result<u64, SqlError> {
    let text = match e {
        Expr::Number(n) | Expr::String(n) => n.as_str(),
        other => {
            return Err(SqlError::InvalidValue {
                what: "job id".into(),
                reason: format!("{other} is not an integer"),
            });
        }
    };
    text.parse().map_err(|_| SqlError::InvalidValue {
        what: "job id".into(),
        reason: format!("{text:?} is not an integer"),
    })
}

/// The text of a bound string option or URI.
fn text(what: &str, e: &Expr) -> Result<String, SqlError> {
    match e {
        Expr::String(s) | Expr::Number(s) => Ok(s.clone()),
        other => Err(SqlError::InvalidValue {
            what: what.into(),
            reason: format!("{other} is not a string"),
        }),
    }
}

/// The texts of a list of URIs.
fn texts(what: &str, list: &[Expr]) -> Result<Vec<String>, SqlError> {
    list.iter().map(|e| text(what, e)).collect()
}

/// A bound boolean option (absent: false).
fn flag(what: &str, e: &Option<Expr>) -> Result<bool, SqlError> {
    match e {
        None => Ok(false),
        Some(Expr::Bool(b)) => Ok(*b),
        Some(Expr::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Expr::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(SqlError::InvalidValue {
            what: format!("option {what:?}"),
            reason: format!("{other} is not a boolean"),
        }),
    }
}

impl From<ExecError> for SqlError {
    fn from(e: ExecError) -> SqlError {
        SqlError::Exec(e.to_string())
    }
}

impl From<HostError> for SqlError {
    fn from(e: HostError) -> SqlError {
        SqlError::Exec(e.to_string())
    }
}

impl From<backup_storage::StorageError> for SqlError {
    fn from(e: backup_storage::StorageError) -> SqlError {
        SqlError::Exec(e.to_string())
    }
}
