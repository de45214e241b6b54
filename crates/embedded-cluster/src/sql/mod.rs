//! The SQL layer: sessions that parse statements with `sqlparser` (after a
//! small matcher for CockroachDB-only forms, see `special`) and run them
//! against the catalog and the MVCC store.
//!
//! Backup statements (`BACKUP`, `RESTORE`, `SHOW BACKUP`, jobs, schedules)
//! are recognised with [`backup_sql::is_backup_statement`] and handed to the
//! [`BackupStatementHandler`] installed with
//! [`Cluster::set_backup_handler`](crate::Cluster::set_backup_handler).

mod ddl;
mod dml;
pub(crate) mod encoding;
mod error;
mod expr;
pub(crate) mod kv;
mod objects;
mod privileges;
mod select;
mod show;
mod special;
pub mod value;

use std::sync::{Arc, Mutex, RwLock};

use backup_format::Timestamp;
use sqlparser::ast::{ObjectName, ObjectNamePart, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::catalog::Snapshot;
use crate::cluster::Cluster;
pub use error::SqlError;
use kv::KvTxn;
use special::Special;
pub use value::{ColumnType, Value};

/// The result of one statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryResult {
    /// Result columns: (name, type name).
    pub columns: Vec<(String, String)>,
    /// Result rows.
    pub rows: Vec<Vec<Value>>,
    /// The command tag (`SELECT 3`, `INSERT 0 2`, `CREATE TABLE`, ...).
    pub tag: String,
}

impl QueryResult {
    /// A result with only a tag.
    pub fn tag(tag: impl Into<String>) -> QueryResult {
        QueryResult {
            tag: tag.into(),
            ..QueryResult::default()
        }
    }

    /// The single value of a one-row, one-column result.
    pub fn scalar(&self) -> Option<&Value> {
        match self.rows.as_slice() {
            [row] => row.first(),
            _ => None,
        }
    }
}

/// What a backup statement handler gets to work with.
pub struct BackupContext<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The session's user.
    pub user: &'a str,
    /// The session's current database.
    pub database: &'a str,
    /// The statement text.
    pub sql: &'a str,
}

/// Runs backup statements for sessions (installed by the backup-sql integration).
pub trait BackupStatementHandler: Send + Sync {
    /// Executes one parsed backup statement.
    fn execute(
        &self,
        ctx: &BackupContext<'_>,
        statement: backup_sql::Statement,
    ) -> Result<QueryResult, SqlError>;
}

/// SQL state shared by every session of a cluster.
#[derive(Default)]
pub(crate) struct SqlShared {
    /// Serialises commits (conflict check, then write).
    pub(crate) commit_lock: Mutex<()>,
    /// The backup statement handler, if installed.
    pub(crate) handler: RwLock<Option<Arc<dyn BackupStatementHandler>>>,
    /// Whether `defaultdb` was checked for.
    pub(crate) bootstrapped: Mutex<bool>,
    /// The last `unique_rowid()` handed out.
    pub(crate) last_rowid: Mutex<i64>,
}

impl Cluster {
    /// Opens a SQL session as `user` (which must exist; `root` always does),
    /// in database `defaultdb`.
    pub fn session(&self, user: &str) -> Result<Session, SqlError> {
        self.bootstrap()?;
        let kv = KvTxn::new(self, self.now()?);
        let snap = Snapshot::load(&kv)?;
        match snap.users.get(user) {
            Some(rec) if !rec.is_role => {}
            _ => return Err(SqlError::UndefinedUser(user.to_string())),
        }
        Ok(Session {
            cluster: self.clone(),
            user: user.to_string(),
            database: "defaultdb".to_string(),
            txn: None,
        })
    }

    /// Installs the handler backup statements are routed to.
    pub fn set_backup_handler(&self, handler: Arc<dyn BackupStatementHandler>) {
        *self
            .inner
            .sql
            .handler
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(handler);
    }

    /// Removes the backup statement handler, if any (backup statements then
    /// fail with [`SqlError::BackupUnavailable`]).
    pub fn clear_backup_handler(&self) {
        *self
            .inner
            .sql
            .handler
            .write()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Creates `defaultdb` the first time a session opens on a new store.
    fn bootstrap(&self) -> Result<(), SqlError> {
        let mut done = self
            .inner
            .sql
            .bootstrapped
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *done {
            return Ok(());
        }
        let mut kv = KvTxn::new(self, self.now()?);
        let snap = Snapshot::load(&kv)?;
        if snap.database("defaultdb").is_none() {
            ddl::create_database_raw(&mut kv, "defaultdb", "root")?;
            kv.commit(false)?;
        }
        *done = true;
        Ok(())
    }
}

/// One SQL connection: a user, a current database and maybe an open transaction.
pub struct Session {
    cluster: Cluster,
    user: String,
    database: String,
    txn: Option<KvTxn>,
}

/// What a statement runs with.
pub(crate) struct Ctx<'a> {
    pub(crate) kv: &'a mut KvTxn,
    pub(crate) user: &'a str,
    pub(crate) database: &'a str,
    pub(crate) cat: Snapshot,
    /// Set while expanding a view: its sources are read with the view's rights.
    pub(crate) skip_privileges: bool,
}

impl Session {
    /// The session's user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The current database.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Whether a `BEGIN` is open.
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Executes one statement (a trailing `;` is fine).
    pub fn execute(&mut self, sql: &str) -> Result<QueryResult, SqlError> {
        let sql = sql.trim().trim_end_matches(';').trim();
        if sql.is_empty() {
            return Err(SqlError::Syntax("empty statement".into()));
        }
        if backup_sql::is_backup_statement(sql) {
            return self.backup_statement(sql);
        }
        match special::recognise(sql)? {
            Some(s) => self.special(s),
            None => self.parsed(sql, false),
        }
    }

    fn backup_statement(&mut self, sql: &str) -> Result<QueryResult, SqlError> {
        let first = sql
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let handler = self
            .cluster
            .inner
            .sql
            .handler
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(handler) = handler else {
            return Err(SqlError::BackupUnavailable(first));
        };
        let statement =
            backup_sql::parse_statement(sql).map_err(|e| SqlError::Syntax(e.to_string()))?;
        let ctx = BackupContext {
            cluster: &self.cluster,
            user: &self.user,
            database: &self.database,
            sql,
        };
        handler.execute(&ctx, statement)
    }

    fn special(&mut self, s: Special) -> Result<QueryResult, SqlError> {
        match s {
            Special::Upsert(sql) => self.parsed(&sql, true),
            Special::AsOf { sql, expr } => {
                if self.txn.is_some() {
                    return Err(SqlError::TxnState(
                        "AS OF SYSTEM TIME is not allowed inside an explicit transaction".into(),
                    ));
                }
                let ts = backup_sql::evaluate_as_of(&expr, self.cluster.now()?)
                    .map_err(|e| SqlError::Invalid(e.to_string()))?;
                self.read_at(&sql, ts)
            }
            Special::Begin => {
                if self.txn.is_some() {
                    return Err(SqlError::TxnState(
                        "there is already a transaction in progress".into(),
                    ));
                }
                self.txn = Some(KvTxn::new(&self.cluster, self.cluster.now()?));
                Ok(QueryResult::tag("BEGIN"))
            }
            Special::Commit => match self.txn.take() {
                Some(kv) => {
                    kv.commit(true)?;
                    Ok(QueryResult::tag("COMMIT"))
                }
                None => Err(SqlError::TxnState(
                    "there is no transaction in progress".into(),
                )),
            },
            Special::Rollback => match self.txn.take() {
                Some(_) => Ok(QueryResult::tag("ROLLBACK")),
                None => Err(SqlError::TxnState(
                    "there is no transaction in progress".into(),
                )),
            },
            Special::Use(db) => {
                let found = self.run(|ctx| {
                    let d = ctx
                        .cat
                        .database(&db)
                        .ok_or_else(|| SqlError::UndefinedDatabase(db.clone()))?;
                    privileges::require(ctx, d, "CONNECT", "database")?;
                    Ok(d.name.clone())
                })?;
                self.database = found;
                Ok(QueryResult::tag("SET"))
            }
            other => self.run(|ctx| show::special(ctx, other)),
        }
    }

    /// Runs a read-only statement as of `ts`.
    fn read_at(&mut self, sql: &str, ts: Timestamp) -> Result<QueryResult, SqlError> {
        let stmt = parse_one(sql)?;
        let Statement::Query(q) = stmt else {
            return Err(SqlError::Unsupported(
                "AS OF SYSTEM TIME on a statement other than SELECT".into(),
            ));
        };
        let mut kv = KvTxn::new(&self.cluster, ts);
        let cat = Snapshot::load(&kv)?;
        let mut ctx = Ctx {
            kv: &mut kv,
            user: &self.user,
            database: &self.database,
            cat,
            skip_privileges: false,
        };
        select::query(&mut ctx, &q)
    }

    fn parsed(&mut self, sql: &str, upsert: bool) -> Result<QueryResult, SqlError> {
        let stmt = parse_one(sql)?;
        self.run(|ctx| match stmt {
            Statement::Query(q) => select::query(ctx, &q),
            Statement::Insert(ins) => dml::insert(ctx, &ins, upsert),
            Statement::Update {
                table,
                assignments,
                selection,
                ..
            } => dml::update(ctx, &table, &assignments, selection.as_ref()),
            Statement::Delete(del) => dml::delete(ctx, &del),
            other => ddl::execute(ctx, other),
        })
    }

    /// Runs `f` in the open transaction, or in its own committed one.
    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        match self.txn.as_mut() {
            Some(kv) => {
                let cat = Snapshot::load(kv)?;
                let mut ctx = Ctx {
                    kv,
                    user: &self.user,
                    database: &self.database,
                    cat,
                    skip_privileges: false,
                };
                f(&mut ctx)
            }
            None => {
                let mut kv = KvTxn::new(&self.cluster, self.cluster.now()?);
                let cat = Snapshot::load(&kv)?;
                let mut ctx = Ctx {
                    kv: &mut kv,
                    user: &self.user,
                    database: &self.database,
                    cat,
                    skip_privileges: false,
                };
                let out = f(&mut ctx)?;
                kv.commit(false)?;
                Ok(out)
            }
        }
    }
}

/// Parses exactly one statement with `sqlparser`.
fn parse_one(sql: &str) -> Result<Statement, SqlError> {
    let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| {
        SqlError::Syntax(
            e.to_string()
                .trim_start_matches("sql parser error: ")
                .to_string(),
        )
    })?;
    match (stmts.pop(), stmts.is_empty()) {
        (Some(s), true) => Ok(s),
        _ => Err(SqlError::Syntax("expected exactly one statement".into())),
    }
}

/// The parts of an object name, lower-cased unless quoted.
pub(crate) fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => ident(i),
            other => other.to_string(),
        })
        .collect()
}

/// An identifier, lower-cased unless quoted.
pub(crate) fn ident(i: &sqlparser::ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}
