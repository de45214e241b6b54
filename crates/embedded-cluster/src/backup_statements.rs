//! Wires `backup-sql`'s statement executor into the cluster's SQL sessions.
//!
//! [`Cluster::enable_backup_statements`] (or [`install_backup_statements`])
//! builds a [`backup_exec::Host`] from the cluster itself (ranges and export,
//! catalog, protected timestamps, clock, job records) with every node's
//! `nodelocal://<id>/` directory as external storage, and installs a
//! [`BackupStatementHandler`] that runs `BACKUP`, `RESTORE`, `SHOW BACKUPS`,
//! `SHOW BACKUP`, `SHOW JOBS`, job control and the schedule statements
//! (`CREATE SCHEDULE FOR BACKUP`, `SHOW SCHEDULES`, `PAUSE | RESUME | DROP
//! SCHEDULE`, kept in the cluster's schedule table) for
//! [`crate::Session::execute`]. The scheduler that runs schedules shares the
//! executor: see [`Cluster::start_scheduler`].
//!
//! # Blocking
//!
//! The executor owns a small tokio runtime and its `execute` blocks until
//! the statement is done. [`crate::Session::execute`] is synchronous, so
//! this is fine from ordinary threads; do not run backup statements through
//! a session from inside a tokio runtime (the nested `block_on` panics in
//! tokio) — use `spawn_blocking` there.
//!
//! # Lifetime
//!
//! The installed handler holds clones of the cluster, so the cluster stays
//! open (and its store locked) until [`Cluster::disable_backup_statements`]
//! removes the handler.

use std::collections::HashMap;
use std::sync::Arc;

use backup_exec::{BackupSettings, Host, RestoreSettings};
use backup_format::Descriptor;
use backup_sql::{BackupStatements, Datum, Privilege, ResultSet, SqlContext, Statement};
use backup_storage::StorageContext;

use crate::catalog::Snapshot;
use crate::catalog::model::Body;
use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::sql::kv::KvTxn;
use crate::sql::{BackupContext, BackupStatementHandler, QueryResult, SqlError, Value};

/// Installs the backup statements on `cluster` (see the module docs).
pub fn install_backup_statements(cluster: &Cluster) -> Result<(), ClusterError> {
    cluster.enable_backup_statements()
}

impl Cluster {
    /// Routes backup statements of every session to a `backup-sql`
    /// executor over this cluster (see [`install_backup_statements`]).
    pub fn enable_backup_statements(&self) -> Result<(), ClusterError> {
        self.install_executor().map(|_| ())
    }

    /// Builds a new executor over this cluster, installs it as the backup
    /// statement handler (replacing any earlier one) and returns it.
    pub(crate) fn install_executor(&self) -> Result<Arc<BackupStatements>, ClusterError> {
        let mut dirs = HashMap::new();
        for node in self.nodes() {
            dirs.insert(node.id, self.node_dir(node.id)?);
        }
        let storage = StorageContext {
            nodelocal_dirs: dirs,
            local_node: Some(1),
            ..StorageContext::default()
        };
        let me = Arc::new(self.clone());
        let host = Host {
            kv: me.clone(),
            catalog: me.clone(),
            protector: me.clone(),
            clock: me.clone(),
            jobs: me.clone(),
            storage: Arc::new(storage),
        };
        let statements = BackupStatements::new(
            host,
            me,
            BackupSettings::default(),
            RestoreSettings::default(),
        )
        .map_err(|e| ClusterError::Invalid(e.to_string()))?
        .with_schedules(Arc::new(self.clone()));
        let statements = Arc::new(statements);
        self.set_backup_handler(Arc::new(Handler {
            statements: statements.clone(),
        }));
        Ok(statements)
    }

    /// Removes the backup statement handler, releasing its hold on the cluster.
    pub fn disable_backup_statements(&self) {
        self.clear_backup_handler();
    }
}

/// The installed handler.
struct Handler {
    statements: Arc<BackupStatements>,
}

impl BackupStatementHandler for Handler {
    fn execute(
        &self,
        ctx: &BackupContext<'_>,
        statement: Statement,
    ) -> Result<QueryResult, SqlError> {
        let sql_ctx = Session::new(ctx.cluster, ctx.user, ctx.database)?;
        let tag = tag_of(&statement);
        let out = self
            .statements
            .execute(&sql_ctx, &statement, &[])
            .map_err(|e| SqlError::Backup(e.to_string()))?;
        Ok(to_query_result(out, tag))
    }
}

/// The session as `backup-sql` sees it: the user, the database, and the
/// catalog as of the statement's start for privilege checks.
pub(crate) struct Session<'a> {
    user: &'a str,
    database: &'a str,
    snap: Snapshot,
}

impl<'a> Session<'a> {
    /// `user` in `database`, with the catalog as of now.
    pub(crate) fn new(
        cluster: &Cluster,
        user: &'a str,
        database: &'a str,
    ) -> Result<Session<'a>, ClusterError> {
        let kv = KvTxn::new(cluster, cluster.now()?);
        let snap = Snapshot::load(&kv).map_err(|e| ClusterError::Invalid(e.to_string()))?;
        Ok(Session {
            user,
            database,
            snap,
        })
    }
}

impl SqlContext for Session<'_> {
    fn user(&self) -> String {
        self.user.to_string()
    }

    fn current_database(&self) -> String {
        self.database.to_string()
    }

    fn is_admin(&self) -> bool {
        self.snap.is_member(self.user, "admin")
    }

    fn has_privilege(&self, descriptor: &Descriptor, privilege: Privilege) -> bool {
        if self.is_admin() {
            return true;
        }
        let Some(desc) = self.snap.descs.get(&descriptor.id) else {
            return false;
        };
        if desc.owner == self.user {
            return true;
        }
        let wanted = match (&desc.body, privilege) {
            (Body::Database, _) => "CONNECT",
            (Body::Schema | Body::Type(_), _) => "USAGE",
            (_, p) => p.as_str(),
        };
        self.snap.grantees_of(self.user).iter().any(|g| {
            desc.privileges
                .get(g)
                .is_some_and(|p| p.contains(wanted) || p.contains("ALL"))
        })
    }
}

/// What kind of command tag a statement gets (the row count is added for listings).
enum Tag {
    Fixed(&'static str),
    Rows(&'static str),
}

fn tag_of(statement: &Statement) -> Tag {
    match statement {
        Statement::Backup(_) => Tag::Fixed("BACKUP"),
        Statement::Restore(_) => Tag::Fixed("RESTORE"),
        Statement::ControlJob { command, .. } => Tag::Fixed(match command {
            backup_sql::ast::JobCommand::Pause => "PAUSE JOBS",
            backup_sql::ast::JobCommand::Resume => "RESUME JOBS",
            backup_sql::ast::JobCommand::Cancel => "CANCEL JOBS",
        }),
        Statement::CreateSchedule(_) => Tag::Fixed("CREATE SCHEDULE FOR BACKUP"),
        Statement::ControlSchedule { command, .. } => Tag::Fixed(match command {
            backup_sql::ast::ScheduleCommand::Pause => "PAUSE SCHEDULES",
            backup_sql::ast::ScheduleCommand::Resume => "RESUME SCHEDULES",
            backup_sql::ast::ScheduleCommand::Drop => "DROP SCHEDULES",
        }),
        _ => Tag::Rows("SHOW"),
    }
}

fn to_query_result(out: ResultSet, tag: Tag) -> QueryResult {
    let rows: Vec<Vec<Value>> = out
        .rows
        .into_iter()
        .map(|row| row.into_iter().map(to_value).collect())
        .collect();
    let tag = match tag {
        Tag::Fixed(t) => t.to_string(),
        Tag::Rows(t) => format!("{t} {}", rows.len()),
    };
    QueryResult {
        columns: out
            .columns
            .into_iter()
            .map(|c| (c.name, c.type_name))
            .collect(),
        rows,
        tag,
    }
}

fn to_value(d: Datum) -> Value {
    match d {
        Datum::Null => Value::Null,
        Datum::Int(i) => Value::Int(i),
        Datum::Float(f) => Value::Float(f),
        Datum::String(s) => Value::String(s),
        Datum::Bool(b) => Value::Bool(b),
        Datum::Timestamp(ts) => Value::Decimal(ts.to_string()),
        Datum::Bytes(b) => Value::Bytes(b),
    }
}
