//! The statements' syntax tree. `Display` writes canonical SQL that parses
//! back to the same tree (the round-trip property the tests check).
//!
//! Canonical means: keywords upper case, `TABLE` written out for bare table
//! targets, one URI bare and several in parentheses, options in a fixed order,
//! `opt` for `opt = true`.

use std::fmt;

pub use crate::options::{BackupOptions, RestoreOptions, ScheduleOptions, ShowBackupOptions};

/// One statement of the backup grammar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Statement {
    /// `BACKUP [targets] INTO [subdir IN] uri[, ...] [AS OF SYSTEM TIME e] [WITH ...]`
    Backup(Backup),
    /// `RESTORE [targets] FROM subdir IN uri[, ...] [AS OF SYSTEM TIME e] [WITH ...]`
    Restore(Restore),
    /// `SHOW BACKUPS IN uri`: the full backups in a collection.
    ShowBackups {
        /// The collection URI.
        collection: Expr,
    },
    /// `SHOW BACKUP [SCHEMAS | FILES | RANGES] FROM subdir IN uri [WITH ...]`
    ShowBackup(ShowBackup),
    /// `SHOW JOBS`
    ShowJobs,
    /// `SHOW JOB id`
    ShowJob {
        /// The job id (an integer or a placeholder).
        job: Expr,
    },
    /// `PAUSE JOB id`, `RESUME JOB id`, `CANCEL JOB id`
    ControlJob {
        /// What to do.
        command: JobCommand,
        /// The job id (an integer or a placeholder).
        job: Expr,
    },
    /// `CREATE SCHEDULE [IF NOT EXISTS] [label] FOR BACKUP ...`
    CreateSchedule(CreateSchedule),
    /// `SHOW [RUNNING | PAUSED] SCHEDULES`
    ShowSchedules {
        /// Only schedules in this state, when given.
        filter: Option<ScheduleState>,
    },
    /// `SHOW SCHEDULE id`
    ShowSchedule {
        /// The schedule id (an integer or a placeholder).
        schedule: Expr,
    },
    /// `PAUSE SCHEDULE id`, `RESUME SCHEDULE id`, `DROP SCHEDULE id`
    ControlSchedule {
        /// What to do.
        command: ScheduleCommand,
        /// The schedule id (an integer or a placeholder).
        schedule: Expr,
    },
}

/// A `BACKUP ... INTO` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// What to back up.
    pub targets: Targets,
    /// `None` for a new full backup; `LATEST` or a subdirectory to add an incremental.
    pub subdir: Option<Subdir>,
    /// The collection URI, then the locality URIs of a locality-aware backup (never empty).
    pub to: Vec<Expr>,
    /// The `AS OF SYSTEM TIME` expression.
    pub as_of: Option<Expr>,
    /// The `WITH` options.
    pub options: BackupOptions,
}

/// A `RESTORE ... FROM` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restore {
    /// What to restore.
    pub targets: Targets,
    /// Which backup of the collection.
    pub subdir: Subdir,
    /// The collection URI, then locality URIs (never empty).
    pub from: Vec<Expr>,
    /// The `AS OF SYSTEM TIME` expression (needs revision history in the backup).
    pub as_of: Option<Expr>,
    /// The `WITH` options.
    pub options: RestoreOptions,
}

/// A `SHOW BACKUP` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShowBackup {
    /// `SCHEMAS`, `FILES` or `RANGES`, or `None` for the default table listing.
    pub details: Option<ShowBackupDetails>,
    /// Which backup of the collection.
    pub subdir: Subdir,
    /// The collection URI, then locality URIs (never empty).
    pub collection: Vec<Expr>,
    /// The `WITH` options.
    pub options: ShowBackupOptions,
}

/// What `SHOW BACKUP` lists besides tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShowBackupDetails {
    /// `SCHEMAS`
    Schemas,
    /// `FILES`
    Files,
    /// `RANGES`
    Ranges,
}

/// `CREATE SCHEDULE ... FOR BACKUP ...`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateSchedule {
    /// `IF NOT EXISTS` (needs a label).
    pub if_not_exists: bool,
    /// The schedule's label; CockroachDB names an unlabelled schedule `BACKUP`.
    pub label: Option<Label>,
    /// What to back up.
    pub targets: Targets,
    /// The collection URI, then locality URIs (never empty).
    pub to: Vec<Expr>,
    /// The backup's `WITH` options.
    pub backup_options: BackupOptions,
    /// `RECURRING '<cron>'` or `RECURRING NEVER`.
    pub recurring: Recurrence,
    /// `FULL BACKUP ALWAYS` or `FULL BACKUP '<cron>'`.
    pub full_backup: Option<FullBackup>,
    /// `WITH SCHEDULE OPTIONS ...`
    pub schedule_options: ScheduleOptions,
}

/// A schedule label: an identifier, a string or a placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Label {
    /// An identifier, e.g. `nightly`.
    Name(Ident),
    /// A string or placeholder, e.g. `'BACKUP 1633462883'`.
    Value(Expr),
}

/// When a schedule runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recurrence {
    /// A crontab expression (a string or placeholder).
    Cron(Expr),
    /// `NEVER`: the schedule does not recur.
    Never,
}

/// When a schedule takes a full backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FullBackup {
    /// `FULL BACKUP ALWAYS`: every run is a full backup.
    Always,
    /// `FULL BACKUP '<cron>'`: full backups on this crontab, incrementals between.
    Cron(Expr),
}

/// Filter of `SHOW SCHEDULES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScheduleState {
    /// `SHOW RUNNING SCHEDULES`
    Running,
    /// `SHOW PAUSED SCHEDULES`
    Paused,
}

/// `PAUSE`, `RESUME` or `CANCEL` a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobCommand {
    /// `PAUSE JOB`
    Pause,
    /// `RESUME JOB`
    Resume,
    /// `CANCEL JOB`
    Cancel,
}

/// `PAUSE`, `RESUME` or `DROP` a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScheduleCommand {
    /// `PAUSE SCHEDULE`
    Pause,
    /// `RESUME SCHEDULE`
    Resume,
    /// `DROP SCHEDULE`
    Drop,
}

/// Which backup in a collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subdir {
    /// `LATEST`: the newest full backup.
    Latest,
    /// A subdirectory such as `'2021/03/23-213101.37'` (a string or placeholder).
    Path(Expr),
}

/// What a backup or restore covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Targets {
    /// No targets: the whole cluster.
    Cluster,
    /// `DATABASE a, b`
    Databases(Vec<Ident>),
    /// `TABLE t, u` (also written bare: `t, u`), with `schema.*` patterns.
    Tables(Vec<TablePattern>),
}

/// A table name (`t`, `s.t`, `db.s.t`) or a wildcard (`s.*`, `db.s.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TablePattern {
    /// The name's parts: 1 to 3 for a name, 1 or 2 before a wildcard.
    pub parts: Vec<Ident>,
    /// Whether the pattern ends in `.*`.
    pub wildcard: bool,
}

/// An identifier, normalised: unquoted ones are folded to lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(pub String);

/// A value: what URIs, option values, ids and `AS OF SYSTEM TIME` are made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// A string literal.
    String(String),
    /// A number literal as written (digits, optional fraction), e.g. an id or a decimal HLC.
    Number(String),
    /// `$n`, bound later by [`Statement::bind`](crate::Statement::bind).
    Placeholder(u32),
    /// `TRUE` or `FALSE`.
    Bool(bool),
    /// A function call such as `follower_read_timestamp()`.
    Function {
        /// The function's name.
        name: Ident,
        /// Its arguments.
        args: Vec<Expr>,
    },
}

/// Every word the parser treats as a keyword somewhere; identifiers equal to
/// one are written quoted so they read back as names.
pub const KEYWORDS: &[&str] = &[
    "always",
    "as",
    "backup",
    "backups",
    "cancel",
    "create",
    "database",
    "drop",
    "exists",
    "false",
    "files",
    "for",
    "from",
    "full",
    "if",
    "in",
    "incremental",
    "into",
    "job",
    "jobs",
    "latest",
    "never",
    "not",
    "of",
    "options",
    "pause",
    "paused",
    "ranges",
    "recurring",
    "restore",
    "resume",
    "running",
    "schedule",
    "schedules",
    "schemas",
    "show",
    "system",
    "table",
    "time",
    "to",
    "true",
    "with",
];

impl Ident {
    /// An identifier with this (already normalised) value.
    pub fn new(value: impl Into<String>) -> Ident {
        Ident(value.into())
    }

    /// The identifier's value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.0;
        let plain = s
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'$')
            && !KEYWORDS.contains(&s.as_str());
        if plain {
            f.write_str(s)
        } else {
            write!(f, "\"{}\"", s.replace('"', "\"\""))
        }
    }
}

/// Writes `s` as a single-quoted SQL string literal.
pub fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::String(s) => f.write_str(&quote_string(s)),
            Expr::Number(n) => f.write_str(n),
            Expr::Placeholder(n) => write!(f, "${n}"),
            Expr::Bool(true) => f.write_str("true"),
            Expr::Bool(false) => f.write_str("false"),
            Expr::Function { name, args } => {
                write!(f, "{name}(")?;
                write_list(f, args)?;
                f.write_str(")")
            }
        }
    }
}

/// Writes items separated by `, `.
pub(crate) fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

/// Writes a URI list: one bare, several in parentheses.
pub(crate) fn write_uris(f: &mut fmt::Formatter<'_>, uris: &[Expr]) -> fmt::Result {
    if uris.len() == 1 {
        write_list(f, uris)
    } else {
        f.write_str("(")?;
        write_list(f, uris)?;
        f.write_str(")")
    }
}

impl fmt::Display for TablePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{part}")?;
        }
        if self.wildcard {
            f.write_str(if self.parts.is_empty() { "*" } else { ".*" })?;
        }
        Ok(())
    }
}

impl fmt::Display for Targets {
    /// Writes the targets with a leading space, or nothing for the cluster.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Targets::Cluster => Ok(()),
            Targets::Databases(dbs) => {
                f.write_str(" DATABASE ")?;
                write_list(f, dbs)
            }
            Targets::Tables(tables) => {
                f.write_str(" TABLE ")?;
                write_list(f, tables)
            }
        }
    }
}

impl fmt::Display for Subdir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subdir::Latest => f.write_str("LATEST"),
            Subdir::Path(e) => write!(f, "{e}"),
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Name(i) => write!(f, "{i}"),
            Label::Value(e) => write!(f, "{e}"),
        }
    }
}

fn write_as_of(f: &mut fmt::Formatter<'_>, as_of: &Option<Expr>) -> fmt::Result {
    match as_of {
        Some(e) => write!(f, " AS OF SYSTEM TIME {e}"),
        None => Ok(()),
    }
}

impl fmt::Display for Backup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BACKUP{} INTO ", self.targets)?;
        if let Some(subdir) = &self.subdir {
            write!(f, "{subdir} IN ")?;
        }
        write_uris(f, &self.to)?;
        write_as_of(f, &self.as_of)?;
        write!(f, "{}", self.options)
    }
}

impl fmt::Display for Restore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RESTORE{} FROM {} IN ", self.targets, self.subdir)?;
        write_uris(f, &self.from)?;
        write_as_of(f, &self.as_of)?;
        write!(f, "{}", self.options)
    }
}

impl fmt::Display for ShowBackup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SHOW BACKUP ")?;
        match self.details {
            Some(ShowBackupDetails::Schemas) => f.write_str("SCHEMAS ")?,
            Some(ShowBackupDetails::Files) => f.write_str("FILES ")?,
            Some(ShowBackupDetails::Ranges) => f.write_str("RANGES ")?,
            None => {}
        }
        write!(f, "FROM {} IN ", self.subdir)?;
        write_uris(f, &self.collection)?;
        write!(f, "{}", self.options)
    }
}

impl fmt::Display for CreateSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CREATE SCHEDULE ")?;
        if self.if_not_exists {
            f.write_str("IF NOT EXISTS ")?;
        }
        if let Some(label) = &self.label {
            write!(f, "{label} ")?;
        }
        write!(f, "FOR BACKUP{} INTO ", self.targets)?;
        write_uris(f, &self.to)?;
        write!(f, "{}", self.backup_options)?;
        match &self.recurring {
            Recurrence::Cron(e) => write!(f, " RECURRING {e}")?,
            Recurrence::Never => f.write_str(" RECURRING NEVER")?,
        }
        match &self.full_backup {
            Some(FullBackup::Always) => f.write_str(" FULL BACKUP ALWAYS")?,
            Some(FullBackup::Cron(e)) => write!(f, " FULL BACKUP {e}")?,
            None => {}
        }
        write!(f, "{}", self.schedule_options)
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Backup(b) => write!(f, "{b}"),
            Statement::Restore(r) => write!(f, "{r}"),
            Statement::ShowBackups { collection } => write!(f, "SHOW BACKUPS IN {collection}"),
            Statement::ShowBackup(s) => write!(f, "{s}"),
            Statement::ShowJobs => f.write_str("SHOW JOBS"),
            Statement::ShowJob { job } => write!(f, "SHOW JOB {job}"),
            Statement::ControlJob { command, job } => {
                let verb = match command {
                    JobCommand::Pause => "PAUSE",
                    JobCommand::Resume => "RESUME",
                    JobCommand::Cancel => "CANCEL",
                };
                write!(f, "{verb} JOB {job}")
            }
            Statement::CreateSchedule(c) => write!(f, "{c}"),
            Statement::ShowSchedules { filter } => match filter {
                None => f.write_str("SHOW SCHEDULES"),
                Some(ScheduleState::Running) => f.write_str("SHOW RUNNING SCHEDULES"),
                Some(ScheduleState::Paused) => f.write_str("SHOW PAUSED SCHEDULES"),
            },
            Statement::ShowSchedule { schedule } => write!(f, "SHOW SCHEDULE {schedule}"),
            Statement::ControlSchedule { command, schedule } => {
                let verb = match command {
                    ScheduleCommand::Pause => "PAUSE",
                    ScheduleCommand::Resume => "RESUME",
                    ScheduleCommand::Drop => "DROP",
                };
                write!(f, "{verb} SCHEDULE {schedule}")
            }
        }
    }
}
