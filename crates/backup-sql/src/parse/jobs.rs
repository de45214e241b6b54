//! Jobs (`SHOW JOBS`, `SHOW JOB`, `PAUSE`/`RESUME`/`CANCEL JOB`) and schedules
//! (`CREATE SCHEDULE ... FOR BACKUP`, `SHOW SCHEDULES`, `SHOW SCHEDULE`,
//! `PAUSE`/`RESUME`/`DROP SCHEDULE`).

use super::Parser;
use crate::ast::{
    CreateSchedule, FullBackup, JobCommand, Label, Recurrence, ScheduleCommand, ScheduleState,
    Statement,
};
use crate::error::ParseError;
use crate::options::{BACKUP_OPTIONS, BackupOptions, SCHEDULE_OPTIONS, ScheduleOptions};
use crate::token::TokenKind;

impl Parser<'_> {
    /// After `SHOW`, when it is not about backups.
    pub(super) fn show_jobs_or_schedules(&mut self) -> Result<Statement, ParseError> {
        let stmt = if self.eat_kw("jobs") {
            Statement::ShowJobs
        } else if self.eat_kw("job") {
            Statement::ShowJob {
                job: self.id("a job id")?,
            }
        } else if self.eat_kw("schedules") {
            Statement::ShowSchedules { filter: None }
        } else if self.eat_kw("running") {
            self.expect_kw("schedules")?;
            Statement::ShowSchedules {
                filter: Some(ScheduleState::Running),
            }
        } else if self.eat_kw("paused") {
            self.expect_kw("schedules")?;
            Statement::ShowSchedules {
                filter: Some(ScheduleState::Paused),
            }
        } else if self.eat_kw("schedule") {
            Statement::ShowSchedule {
                schedule: self.id("a schedule id")?,
            }
        } else {
            return Err(self.expected(
                "BACKUP, BACKUPS, JOBS, JOB, SCHEDULES, RUNNING SCHEDULES, PAUSED SCHEDULES or SCHEDULE",
            ));
        };
        self.expect_end("")?;
        Ok(stmt)
    }

    /// `PAUSE | RESUME | CANCEL` `JOB id`, `PAUSE | RESUME SCHEDULE id`.
    pub(super) fn control(&mut self) -> Result<Statement, ParseError> {
        let verb = self.advance();
        let cancel = verb.is_keyword("cancel");
        let stmt = if self.eat_kw("job") {
            let job = self.id("a job id")?;
            let command = if cancel {
                JobCommand::Cancel
            } else if verb.is_keyword("pause") {
                JobCommand::Pause
            } else {
                JobCommand::Resume
            };
            Statement::ControlJob { command, job }
        } else if !cancel && self.eat_kw("schedule") {
            let schedule = self.id("a schedule id")?;
            let command = if verb.is_keyword("pause") {
                ScheduleCommand::Pause
            } else {
                ScheduleCommand::Resume
            };
            Statement::ControlSchedule { command, schedule }
        } else {
            return Err(self.expected(if cancel { "JOB" } else { "JOB or SCHEDULE" }));
        };
        self.expect_end("")?;
        Ok(stmt)
    }

    /// After `DROP`.
    pub(super) fn drop_schedule(&mut self) -> Result<Statement, ParseError> {
        self.expect_kw("schedule")?;
        let schedule = self.id("a schedule id")?;
        self.expect_end("")?;
        Ok(Statement::ControlSchedule {
            command: ScheduleCommand::Drop,
            schedule,
        })
    }

    /// After `CREATE`.
    pub(super) fn create_schedule(&mut self) -> Result<Statement, ParseError> {
        self.expect_kw("schedule")?;
        let if_not_exists = if self.eat_kw("if") {
            self.expect_kw("not")?;
            self.expect_kw("exists")?;
            true
        } else {
            false
        };
        let label = if self.is_kw("for") {
            if if_not_exists {
                return Err(self.expected("a schedule label: IF NOT EXISTS needs one"));
            }
            None
        } else {
            Some(self.label()?)
        };
        self.expect_kw("for")?;
        self.expect_kw("backup")?;
        let targets = self.targets(&["into"])?;
        self.expect_kw("into")?;
        let to = self.uri_list()?;
        let backup_options = if self.is_kw("with") && !self.peek_nth(1).is_keyword("schedule") {
            self.advance();
            BackupOptions::from_parsed(self.option_list(BACKUP_OPTIONS, "BACKUP")?)
        } else {
            BackupOptions::default()
        };
        if !self.eat_kw("recurring") {
            return Err(
                self.expected(if backup_options == BackupOptions::default() {
                    "WITH or RECURRING"
                } else {
                    "RECURRING"
                }),
            );
        }
        let recurring = if self.eat_kw("never") {
            Recurrence::Never
        } else {
            Recurrence::Cron(self.value("NEVER or a crontab")?)
        };
        let full_backup = if self.eat_kw("full") {
            self.expect_kw("backup")?;
            if self.eat_kw("always") {
                Some(FullBackup::Always)
            } else {
                Some(FullBackup::Cron(self.value("ALWAYS or a crontab")?))
            }
        } else {
            None
        };
        let schedule_options = if self.eat_kw("with") {
            self.expect_kw("schedule")?;
            self.expect_kw("options")?;
            ScheduleOptions::from_parsed(self.option_list(SCHEDULE_OPTIONS, "schedule")?)
        } else {
            ScheduleOptions::default()
        };
        self.expect_end(
            match (&full_backup, schedule_options == ScheduleOptions::default()) {
                (None, true) => "FULL BACKUP, WITH SCHEDULE OPTIONS",
                (Some(_), true) => "WITH SCHEDULE OPTIONS",
                _ => "",
            },
        )?;
        Ok(Statement::CreateSchedule(CreateSchedule {
            if_not_exists,
            label,
            targets,
            to,
            backup_options,
            recurring,
            full_backup,
            schedule_options,
        }))
    }

    /// A schedule label: an identifier, a string or a placeholder.
    fn label(&mut self) -> Result<Label, ParseError> {
        match self.peek().kind {
            TokenKind::String(_) | TokenKind::Placeholder(_) => {
                Ok(Label::Value(self.value("a label")?))
            }
            _ => Ok(Label::Name(self.ident("a schedule label or FOR")?)),
        }
    }
}
