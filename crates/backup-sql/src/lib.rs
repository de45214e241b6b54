//! `backup-sql` owns the grammar of the backup statements: `BACKUP`,
//! `RESTORE`, `SHOW BACKUP(S)`, `SHOW JOBS` / `SHOW JOB`, `PAUSE` / `RESUME` /
//! `CANCEL JOB`, and `CREATE` / `SHOW` / `PAUSE` / `RESUME` / `DROP SCHEDULE`.
//!
//! - [`token`]: the tokenizer (byte offsets, case-insensitive keywords);
//! - [`parse_statement`] / [`parse_statements`]: a recursive-descent parser to
//!   our own [`ast`], whose `Display` is canonical SQL that parses back to the
//!   same tree; errors say where and what was expected ([`ParseError`]);
//! - [`Statement::redacted`]: the form for job descriptions (no passphrases,
//!   no URI credentials), [`Statement::bind`]: `$n` placeholders;
//! - [`evaluate_as_of`]: `AS OF SYSTEM TIME` against the current time.
//!
//! - [`exec`]: statements run as backup and restore jobs ([`BackupStatements`]).
//!
//! ```
//! use backup_sql::{Statement, Targets, evaluate_as_of, parse_statement};
//! use backup_format::Timestamp;
//!
//! let stmt = parse_statement(
//!     "backup database bank into 's3://b/p?AWS_SECRET_ACCESS_KEY=k' \
//!      as of system time '-10s' with revision_history",
//! )?;
//! let Statement::Backup(backup) = &stmt else { unreachable!() };
//! assert!(matches!(&backup.targets, Targets::Databases(dbs) if dbs[0].as_str() == "bank"));
//! assert_eq!(
//!     stmt.redacted().to_string(),
//!     "BACKUP DATABASE bank INTO 's3://b/p?AWS_SECRET_ACCESS_KEY=redacted' \
//!      AS OF SYSTEM TIME '-10s' WITH revision_history"
//! );
//! assert_eq!(parse_statement(&stmt.to_string())?, stmt);
//!
//! let now = Timestamp::from_wall(1_637_000_000_000_000_000);
//! let as_of = evaluate_as_of(backup.as_of.as_ref().unwrap(), now)?;
//! assert_eq!(as_of, now.add_nanos(-10_000_000_000));
//!
//! let err = parse_statement("BACKUP INTOO 'x'").unwrap_err();
//! assert_eq!(err.to_string(), r#"at or near "intoo": syntax error: expected INTO or TO"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod aost;
pub mod ast;
mod bind;
mod error;
pub mod exec;
mod options;
mod parse;
pub mod redact;
pub mod token;

pub use aost::evaluate_as_of;
pub use ast::{
    Backup, BackupOptions, CreateSchedule, Expr, FullBackup, Ident, JobCommand, Label, Recurrence,
    Restore, RestoreOptions, ScheduleCommand, ScheduleOptions, ScheduleState, ShowBackup,
    ShowBackupDetails, ShowBackupOptions, Statement, Subdir, TablePattern, Targets,
};
pub use error::{ParseError, SqlError};
pub use exec::{BackupStatements, Column, Datum, Privilege, ResultSet, SqlContext};
pub use options::{ON_EXECUTION_FAILURE, ON_PREVIOUS_RUNNING};
pub use parse::{is_backup_statement, parse_statement, parse_statements};
pub use redact::redact_uri;
