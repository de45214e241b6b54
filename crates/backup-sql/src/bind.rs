//! Binding `$n` placeholders to the caller's parameters, and the checks a
//! statement must pass before it is planned.

use backup_format::Timestamp;

use crate::ast::{CreateSchedule, Expr, FullBackup, Label, Recurrence, Statement, Subdir};
use crate::error::SqlError;
use crate::options::{
    BackupOptions, ON_EXECUTION_FAILURE, ON_PREVIOUS_RUNNING, RestoreOptions, ScheduleOptions,
    ShowBackupOptions,
};

/// Substitutes parameters for placeholders, checking each against where it is used.
struct Binder<'a> {
    params: &'a [String],
}

impl Binder<'_> {
    fn param(&self, n: u32) -> Result<&str, SqlError> {
        usize::try_from(n)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| self.params.get(i))
            .map(String::as_str)
            .ok_or(SqlError::MissingParameter {
                index: n,
                given: self.params.len(),
            })
    }

    /// A string position (URI, text option, label, crontab).
    fn text(&self, e: &Expr) -> Result<Expr, SqlError> {
        match e {
            Expr::Placeholder(n) => Ok(Expr::String(self.param(*n)?.to_string())),
            other => Ok(other.clone()),
        }
    }

    fn texts(&self, list: &[Expr]) -> Result<Vec<Expr>, SqlError> {
        list.iter().map(|e| self.text(e)).collect()
    }

    fn opt_text(&self, e: &Option<Expr>) -> Result<Option<Expr>, SqlError> {
        e.as_ref().map(|e| self.text(e)).transpose()
    }

    fn opt_texts(&self, e: &Option<Vec<Expr>>) -> Result<Option<Vec<Expr>>, SqlError> {
        e.as_deref().map(|l| self.texts(l)).transpose()
    }

    /// A boolean option: the parameter must read as a boolean.
    fn flag(&self, name: &str, e: &Option<Expr>) -> Result<Option<Expr>, SqlError> {
        let Some(Expr::Placeholder(n)) = e else {
            return Ok(e.clone());
        };
        let v = self.param(*n)?;
        let b = match v.to_ascii_lowercase().as_str() {
            "true" | "t" | "on" | "yes" | "1" => true,
            "false" | "f" | "off" | "no" | "0" => false,
            _ => {
                return Err(SqlError::InvalidValue {
                    what: format!("option \"{name}\""),
                    reason: format!("${n} = '{v}' is not a boolean"),
                });
            }
        };
        Ok(Some(Expr::Bool(b)))
    }

    /// A string option that must be one of `allowed` (case-insensitively).
    fn choice(
        &self,
        name: &str,
        allowed: &[&str],
        e: &Option<Expr>,
    ) -> Result<Option<Expr>, SqlError> {
        let bound = self.opt_text(e)?;
        if let (Some(Expr::Placeholder(n)), Some(Expr::String(s))) = (e, &bound)
            && !allowed.contains(&s.to_lowercase().as_str())
        {
            return Err(SqlError::InvalidValue {
                what: format!("option \"{name}\""),
                reason: format!("${n} = '{s}': expected one of '{}'", allowed.join("', '")),
            });
        }
        Ok(bound)
    }

    /// A job or schedule id: the parameter must be an unsigned integer.
    fn id(&self, e: &Expr) -> Result<Expr, SqlError> {
        let Expr::Placeholder(n) = e else {
            return Ok(e.clone());
        };
        let v = self.param(*n)?;
        if v.parse::<u64>().is_err() {
            return Err(SqlError::InvalidValue {
                what: "an id".into(),
                reason: format!("${n} = '{v}' is not an unsigned integer"),
            });
        }
        Ok(Expr::Number(v.to_string()))
    }

    /// An `AS OF SYSTEM TIME` expression: placeholders become strings, also
    /// inside function arguments.
    fn aost(&self, e: &Expr) -> Result<Expr, SqlError> {
        match e {
            Expr::Function { name, args } => Ok(Expr::Function {
                name: name.clone(),
                args: args
                    .iter()
                    .map(|a| self.aost(a))
                    .collect::<Result<_, _>>()?,
            }),
            other => self.text(other),
        }
    }

    fn subdir(&self, s: &Subdir) -> Result<Subdir, SqlError> {
        match s {
            Subdir::Latest => Ok(Subdir::Latest),
            Subdir::Path(e) => Ok(Subdir::Path(self.text(e)?)),
        }
    }

    fn backup_options(&self, o: &BackupOptions) -> Result<BackupOptions, SqlError> {
        Ok(BackupOptions {
            revision_history: self.flag("revision_history", &o.revision_history)?,
            encryption_passphrase: self.opt_text(&o.encryption_passphrase)?,
            detached: self.flag("detached", &o.detached)?,
            kms: self.opt_texts(&o.kms)?,
            incremental_location: self.opt_texts(&o.incremental_location)?,
        })
    }

    fn restore_options(&self, o: &RestoreOptions) -> Result<RestoreOptions, SqlError> {
        Ok(RestoreOptions {
            into_db: self.opt_text(&o.into_db)?,
            new_db_name: self.opt_text(&o.new_db_name)?,
            skip_missing_foreign_keys: self
                .flag("skip_missing_foreign_keys", &o.skip_missing_foreign_keys)?,
            skip_missing_sequences: self
                .flag("skip_missing_sequences", &o.skip_missing_sequences)?,
            skip_missing_views: self.flag("skip_missing_views", &o.skip_missing_views)?,
            encryption_passphrase: self.opt_text(&o.encryption_passphrase)?,
            detached: self.flag("detached", &o.detached)?,
            kms: self.opt_texts(&o.kms)?,
            incremental_location: self.opt_texts(&o.incremental_location)?,
        })
    }

    fn schedule(&self, c: &CreateSchedule) -> Result<CreateSchedule, SqlError> {
        let o = &c.schedule_options;
        let first_run = self.opt_text(&o.first_run)?;
        if let (Some(Expr::Placeholder(n)), Some(Expr::String(s))) = (&o.first_run, &first_run)
            && !s.eq_ignore_ascii_case("now")
            && let Err(e) = s.parse::<Timestamp>()
        {
            return Err(SqlError::InvalidValue {
                what: "option \"first_run\"".into(),
                reason: format!("${n}: expected 'now' or {e}"),
            });
        }
        Ok(CreateSchedule {
            if_not_exists: c.if_not_exists,
            label: match &c.label {
                Some(Label::Value(e)) => Some(Label::Value(self.text(e)?)),
                other => other.clone(),
            },
            targets: c.targets.clone(),
            to: self.texts(&c.to)?,
            backup_options: self.backup_options(&c.backup_options)?,
            recurring: match &c.recurring {
                Recurrence::Cron(e) => Recurrence::Cron(self.text(e)?),
                Recurrence::Never => Recurrence::Never,
            },
            full_backup: match &c.full_backup {
                Some(FullBackup::Cron(e)) => Some(FullBackup::Cron(self.text(e)?)),
                other => other.clone(),
            },
            schedule_options: ScheduleOptions {
                first_run,
                on_execution_failure: self.choice(
                    "on_execution_failure",
                    ON_EXECUTION_FAILURE,
                    &o.on_execution_failure,
                )?,
                on_previous_running: self.choice(
                    "on_previous_running",
                    ON_PREVIOUS_RUNNING,
                    &o.on_previous_running,
                )?,
                ignore_existing_backups: self
                    .flag("ignore_existing_backups", &o.ignore_existing_backups)?,
            },
        })
    }
}

impl Statement {
    /// The statement with `$n` replaced by `params[n - 1]`: as a string in
    /// string positions, a boolean for boolean options and an integer for ids.
    /// A placeholder without a parameter, or a parameter of the wrong form, is an error.
    pub fn bind(&self, params: &[String]) -> Result<Statement, SqlError> {
        let b = Binder { params };
        let mut s = self.clone();
        match &mut s {
            Statement::Backup(x) => {
                if let Some(subdir) = &x.subdir {
                    x.subdir = Some(b.subdir(subdir)?);
                }
                x.to = b.texts(&x.to)?;
                x.as_of = x.as_of.as_ref().map(|e| b.aost(e)).transpose()?;
                x.options = b.backup_options(&x.options)?;
            }
            Statement::Restore(x) => {
                x.subdir = b.subdir(&x.subdir)?;
                x.from = b.texts(&x.from)?;
                x.as_of = x.as_of.as_ref().map(|e| b.aost(e)).transpose()?;
                x.options = b.restore_options(&x.options)?;
            }
            Statement::ShowBackups { collection } => *collection = b.text(collection)?,
            Statement::ShowBackup(x) => {
                x.subdir = b.subdir(&x.subdir)?;
                x.collection = b.texts(&x.collection)?;
                let o = &x.options;
                x.options = ShowBackupOptions {
                    encryption_passphrase: b.opt_text(&o.encryption_passphrase)?,
                    check_files: b.flag("check_files", &o.check_files)?,
                    kms: b.opt_texts(&o.kms)?,
                    incremental_location: b.opt_texts(&o.incremental_location)?,
                };
            }
            Statement::ShowJobs | Statement::ShowSchedules { .. } => {}
            Statement::ShowJob { job } | Statement::ControlJob { job, .. } => *job = b.id(job)?,
            Statement::ShowSchedule { schedule } | Statement::ControlSchedule { schedule, .. } => {
                *schedule = b.id(schedule)?;
            }
            Statement::CreateSchedule(c) => *c = b.schedule(c)?,
        }
        Ok(s)
    }

    /// Refuses what parses but cannot run yet, naming it: the `kms` option.
    pub fn check_supported(&self) -> Result<(), SqlError> {
        let kms = match self {
            Statement::Backup(b) => b.options.kms.is_some(),
            Statement::Restore(r) => r.options.kms.is_some(),
            Statement::ShowBackup(s) => s.options.kms.is_some(),
            Statement::CreateSchedule(c) => c.backup_options.kms.is_some(),
            _ => false,
        };
        if kms {
            return Err(SqlError::Unsupported(
                "option \"kms\" is not supported yet: encrypt with encryption_passphrase instead"
                    .into(),
            ));
        }
        Ok(())
    }
}
