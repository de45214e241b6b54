//! The `WITH` options of each statement: which names exist, what values they
//! take, the structs that hold them and how they are written back.
//!
//! A boolean option holds `Expr::Bool` or a placeholder (`detached` alone is
//! `Bool(true)`); a text option a string or placeholder; a URI-list option one
//! or more strings or placeholders (`kms = ('a', 'b')`).

use std::fmt;

use crate::ast::{Expr, write_uris};

/// The kind of value an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OptKind {
    /// Boolean: bare, `= true`, `= false` or `= $n`.
    Flag,
    /// A string or placeholder.
    Text,
    /// Like `Text`, but a secret: never echoed in an error.
    Secret,
    /// One string or placeholder, or a parenthesised list of them.
    Uris,
    /// A string (one of these, case-insensitively) or placeholder.
    Choice(&'static [&'static str]),
    /// `'now'`, a timestamp string, or a placeholder.
    FirstRun,
}

/// One option name and its kind.
pub(crate) type OptSpec = (&'static str, OptKind);

/// An option as parsed, checked against its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParsedOption {
    /// The option's canonical (lower-case) name.
    pub name: &'static str,
    /// Its value.
    pub value: OptValue,
}

/// A parsed option value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OptValue {
    /// A single value.
    One(Expr),
    /// A URI list.
    List(Vec<Expr>),
}

impl OptValue {
    fn one(self) -> Expr {
        match self {
            OptValue::One(e) => e,
            // Specs never give a list to a single-valued option; keep the first.
            OptValue::List(v) => v.into_iter().next().unwrap_or(Expr::String(String::new())),
        }
    }

    fn list(self) -> Vec<Expr> {
        match self {
            OptValue::One(e) => vec![e],
            OptValue::List(v) => v,
        }
    }
}

/// Options of `BACKUP` (and of the backups a schedule takes).
pub(crate) const BACKUP_OPTIONS: &[OptSpec] = &[
    ("revision_history", OptKind::Flag),
    ("encryption_passphrase", OptKind::Secret),
    ("detached", OptKind::Flag),
    ("kms", OptKind::Uris),
    ("incremental_location", OptKind::Uris),
];

/// Options of `RESTORE`.
pub(crate) const RESTORE_OPTIONS: &[OptSpec] = &[
    ("into_db", OptKind::Text),
    ("new_db_name", OptKind::Text),
    ("skip_missing_foreign_keys", OptKind::Flag),
    ("skip_missing_sequences", OptKind::Flag),
    ("skip_missing_views", OptKind::Flag),
    ("encryption_passphrase", OptKind::Secret),
    ("detached", OptKind::Flag),
    ("kms", OptKind::Uris),
    ("incremental_location", OptKind::Uris),
];

/// Options of `SHOW BACKUP`.
pub(crate) const SHOW_BACKUP_OPTIONS: &[OptSpec] = &[
    ("encryption_passphrase", OptKind::Secret),
    ("check_files", OptKind::Flag),
    ("kms", OptKind::Uris),
    ("incremental_location", OptKind::Uris),
];

/// Values of `on_execution_failure`.
pub const ON_EXECUTION_FAILURE: &[&str] = &["retry", "reschedule", "pause"];
/// Values of `on_previous_running`.
pub const ON_PREVIOUS_RUNNING: &[&str] = &["start", "skip", "wait"];

/// Options of `CREATE SCHEDULE ... WITH SCHEDULE OPTIONS`.
pub(crate) const SCHEDULE_OPTIONS: &[OptSpec] = &[
    ("first_run", OptKind::FirstRun),
    (
        "on_execution_failure",
        OptKind::Choice(ON_EXECUTION_FAILURE),
    ),
    ("on_previous_running", OptKind::Choice(ON_PREVIOUS_RUNNING)),
    ("ignore_existing_backups", OptKind::Flag),
];

/// `BACKUP ... WITH` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupOptions {
    /// `revision_history`: keep every revision, for point-in-time restore.
    pub revision_history: Option<Expr>,
    /// `encryption_passphrase = '..'`: encrypt with a key derived from it.
    pub encryption_passphrase: Option<Expr>,
    /// `detached`: return the job id at once.
    pub detached: Option<Expr>,
    /// `kms = '..'` or `kms = ('..', ..)`: encrypt with KMS keys (not supported yet).
    pub kms: Option<Vec<Expr>>,
    /// `incremental_location = '..'`: where incremental layers go.
    pub incremental_location: Option<Vec<Expr>>,
}

/// `RESTORE ... WITH` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// `into_db = '..'`: restore tables into this database.
    pub into_db: Option<Expr>,
    /// `new_db_name = '..'`: restore a database under a new name.
    pub new_db_name: Option<Expr>,
    /// `skip_missing_foreign_keys`
    pub skip_missing_foreign_keys: Option<Expr>,
    /// `skip_missing_sequences`
    pub skip_missing_sequences: Option<Expr>,
    /// `skip_missing_views`
    pub skip_missing_views: Option<Expr>,
    /// `encryption_passphrase = '..'`
    pub encryption_passphrase: Option<Expr>,
    /// `detached`
    pub detached: Option<Expr>,
    /// `kms = ..` (not supported yet).
    pub kms: Option<Vec<Expr>>,
    /// `incremental_location = ..`: where the backup's incremental layers are.
    pub incremental_location: Option<Vec<Expr>>,
}

/// `SHOW BACKUP ... WITH` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShowBackupOptions {
    /// `encryption_passphrase = '..'`
    pub encryption_passphrase: Option<Expr>,
    /// `check_files`: verify that every data file exists.
    pub check_files: Option<Expr>,
    /// `kms = ..` (not supported yet).
    pub kms: Option<Vec<Expr>>,
    /// `incremental_location = ..`
    pub incremental_location: Option<Vec<Expr>>,
}

/// `WITH SCHEDULE OPTIONS` of `CREATE SCHEDULE`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScheduleOptions {
    /// `first_run = 'now' | '<timestamp>'`
    pub first_run: Option<Expr>,
    /// `on_execution_failure = 'retry' | 'reschedule' | 'pause'`
    pub on_execution_failure: Option<Expr>,
    /// `on_previous_running = 'start' | 'skip' | 'wait'`
    pub on_previous_running: Option<Expr>,
    /// `ignore_existing_backups`
    pub ignore_existing_backups: Option<Expr>,
}

impl BackupOptions {
    pub(crate) fn from_parsed(parsed: Vec<ParsedOption>) -> BackupOptions {
        let mut o = BackupOptions::default();
        for p in parsed {
            match p.name {
                "revision_history" => o.revision_history = Some(p.value.one()),
                "encryption_passphrase" => o.encryption_passphrase = Some(p.value.one()),
                "detached" => o.detached = Some(p.value.one()),
                "kms" => o.kms = Some(p.value.list()),
                _ => o.incremental_location = Some(p.value.list()),
            }
        }
        o
    }
}

impl RestoreOptions {
    pub(crate) fn from_parsed(parsed: Vec<ParsedOption>) -> RestoreOptions {
        let mut o = RestoreOptions::default();
        for p in parsed {
            match p.name {
                "into_db" => o.into_db = Some(p.value.one()),
                "new_db_name" => o.new_db_name = Some(p.value.one()),
                "skip_missing_foreign_keys" => o.skip_missing_foreign_keys = Some(p.value.one()),
                "skip_missing_sequences" => o.skip_missing_sequences = Some(p.value.one()),
                "skip_missing_views" => o.skip_missing_views = Some(p.value.one()),
                "encryption_passphrase" => o.encryption_passphrase = Some(p.value.one()),
                "detached" => o.detached = Some(p.value.one()),
                "kms" => o.kms = Some(p.value.list()),
                _ => o.incremental_location = Some(p.value.list()),
            }
        }
        o
    }
}

impl ShowBackupOptions {
    pub(crate) fn from_parsed(parsed: Vec<ParsedOption>) -> ShowBackupOptions {
        let mut o = ShowBackupOptions::default();
        for p in parsed {
            match p.name {
                "encryption_passphrase" => o.encryption_passphrase = Some(p.value.one()),
                "check_files" => o.check_files = Some(p.value.one()),
                "kms" => o.kms = Some(p.value.list()),
                _ => o.incremental_location = Some(p.value.list()),
            }
        }
        o
    }
}

impl ScheduleOptions {
    pub(crate) fn from_parsed(parsed: Vec<ParsedOption>) -> ScheduleOptions {
        let mut o = ScheduleOptions::default();
        for p in parsed {
            match p.name {
                "first_run" => o.first_run = Some(p.value.one()),
                "on_execution_failure" => o.on_execution_failure = Some(p.value.one()),
                "on_previous_running" => o.on_previous_running = Some(p.value.one()),
                _ => o.ignore_existing_backups = Some(p.value.one()),
            }
        }
        o
    }
}

/// Writes ` WITH a, b = 'x'` (or nothing when no option is set).
struct OptionWriter<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    intro: &'static str,
    first: bool,
}

impl<'a, 'b> OptionWriter<'a, 'b> {
    fn new(f: &'a mut fmt::Formatter<'b>, intro: &'static str) -> Self {
        OptionWriter {
            f,
            intro,
            first: true,
        }
    }

    fn sep(&mut self) -> fmt::Result {
        if self.first {
            self.first = false;
            self.f.write_str(self.intro)
        } else {
            self.f.write_str(", ")
        }
    }

    fn flag(&mut self, name: &str, value: &Option<Expr>) -> fmt::Result {
        match value {
            None => Ok(()),
            Some(Expr::Bool(true)) => {
                self.sep()?;
                self.f.write_str(name)
            }
            Some(v) => {
                self.sep()?;
                write!(self.f, "{name} = {v}")
            }
        }
    }

    fn one(&mut self, name: &str, value: &Option<Expr>) -> fmt::Result {
        match value {
            None => Ok(()),
            Some(v) => {
                self.sep()?;
                write!(self.f, "{name} = {v}")
            }
        }
    }

    fn list(&mut self, name: &str, value: &Option<Vec<Expr>>) -> fmt::Result {
        match value {
            None => Ok(()),
            Some(v) => {
                self.sep()?;
                write!(self.f, "{name} = ")?;
                write_uris(self.f, v)
            }
        }
    }
}

impl fmt::Display for BackupOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = OptionWriter::new(f, " WITH ");
        w.flag("revision_history", &self.revision_history)?;
        w.one("encryption_passphrase", &self.encryption_passphrase)?;
        w.flag("detached", &self.detached)?;
        w.list("kms", &self.kms)?;
        w.list("incremental_location", &self.incremental_location)
    }
}

impl fmt::Display for RestoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = OptionWriter::new(f, " WITH ");
        w.one("into_db", &self.into_db)?;
        w.one("new_db_name", &self.new_db_name)?;
        w.flag("skip_missing_foreign_keys", &self.skip_missing_foreign_keys)?;
        w.flag("skip_missing_sequences", &self.skip_missing_sequences)?;
        w.flag("skip_missing_views", &self.skip_missing_views)?;
        w.one("encryption_passphrase", &self.encryption_passphrase)?;
        w.flag("detached", &self.detached)?;
        w.list("kms", &self.kms)?;
        w.list("incremental_location", &self.incremental_location)
    }
}

impl fmt::Display for ShowBackupOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = OptionWriter::new(f, " WITH ");
        w.one("encryption_passphrase", &self.encryption_passphrase)?;
        w.flag("check_files", &self.check_files)?;
        w.list("kms", &self.kms)?;
        w.list("incremental_location", &self.incremental_location)
    }
}

impl fmt::Display for ScheduleOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = OptionWriter::new(f, " WITH SCHEDULE OPTIONS ");
        w.one("first_run", &self.first_run)?;
        w.one("on_execution_failure", &self.on_execution_failure)?;
        w.one("on_previous_running", &self.on_previous_running)?;
        w.flag("ignore_existing_backups", &self.ignore_existing_backups)
    }
}
