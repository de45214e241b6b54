//! `BACKUP`, `RESTORE`, `SHOW BACKUP` and `SHOW BACKUPS`, plus the `SHOW`
//! dispatch.

use super::Parser;
use crate::ast::{Backup, Restore, ShowBackup, ShowBackupDetails, Statement, Subdir, Targets};
use crate::error::ParseError;
use crate::options::{
    BACKUP_OPTIONS, BackupOptions, RESTORE_OPTIONS, RestoreOptions, SHOW_BACKUP_OPTIONS,
    ShowBackupOptions,
};
use crate::token::TokenKind;

impl Parser<'_> {
    /// After `BACKUP`.
    pub(super) fn backup(&mut self) -> Result<Statement, ParseError> {
        let start = self.idx;
        let targets = self.targets(&["into", "to"])?;
        if self.is_kw("to") {
            return Err(self.deprecated_backup_to());
        }
        if !self.eat_kw("into") {
            return Err(self.misspelled_keyword(start, &targets, "INTO or TO"));
        }
        let (subdir, to) = if self.eat_kw("latest") {
            self.expect_kw("in")?;
            (Some(Subdir::Latest), self.uri_list()?)
        } else if self.peek().kind == TokenKind::LParen {
            (None, self.uri_list()?)
        } else {
            let first = self.value("a collection URI or subdirectory")?;
            if self.eat_kw("in") {
                (Some(Subdir::Path(first)), self.uri_list()?)
            } else {
                (None, self.uri_list_after(Some(first))?)
            }
        };
        let as_of = self.as_of()?;
        let options = BackupOptions::from_parsed(self.with_options(BACKUP_OPTIONS, "BACKUP")?);
        self.expect_end("AS OF SYSTEM TIME, WITH")?;
        Ok(Statement::Backup(Backup {
            targets,
            subdir,
            to,
            as_of,
            options,
        }))
    }

    /// The error for a missing `expected` keyword after targets. When the
    /// "targets" were one bare word, that word was most likely the keyword
    /// misspelled (`BACKUP INTOO 'uri'`), so the error points at it.
    pub(super) fn misspelled_keyword(
        &self,
        start: usize,
        targets: &Targets,
        expected: &str,
    ) -> ParseError {
        let one_bare_word = matches!(targets, Targets::Tables(t)
            if t.len() == 1 && t[0].parts.len() == 1 && !t[0].wildcard)
            && self.idx == start + 1
            && !self.tokens[start].is_keyword("table");
        if one_bare_word {
            let word = self.tokens[start].clone();
            self.error_at(&word, format!("syntax error: expected {expected}"))
        } else {
            self.expected(expected)
        }
    }

    /// `BACKUP ... TO uri [INCREMENTAL FROM uri, ...] ...`: parsed in full, then
    /// refused with a pointer to `BACKUP ... INTO`.
    fn deprecated_backup_to(&mut self) -> ParseError {
        let to = self.peek().clone();
        self.advance();
        let rest = (|| {
            self.uri_list()?;
            if self.eat_kw("incremental") {
                self.expect_kw("from")?;
                self.uri_list()?;
            }
            self.as_of()?;
            self.with_options(BACKUP_OPTIONS, "BACKUP")?;
            self.expect_end("INCREMENTAL FROM, AS OF SYSTEM TIME, WITH")
        })();
        match rest {
            Err(e) => e,
            Ok(()) => self.error_at(
                &to,
                "BACKUP ... TO is deprecated and not supported: use BACKUP ... INTO <collection URI> \
                 for a full backup and BACKUP ... INTO LATEST IN <collection URI> for an incremental one"
                    .into(),
            ),
        }
    }

    /// After `RESTORE`.
    pub(super) fn restore(&mut self) -> Result<Statement, ParseError> {
        let start = self.idx;
        let targets = self.targets(&["from"])?;
        if !self.eat_kw("from") {
            return Err(self.misspelled_keyword(start, &targets, "FROM"));
        }
        let subdir = self.subdir_in("RESTORE FROM")?;
        let from = self.uri_list()?;
        let as_of = self.as_of()?;
        let options = RestoreOptions::from_parsed(self.with_options(RESTORE_OPTIONS, "RESTORE")?);
        self.expect_end("AS OF SYSTEM TIME, WITH")?;
        Ok(Statement::Restore(Restore {
            targets,
            subdir,
            from,
            as_of,
            options,
        }))
    }

    /// `LATEST IN` or `<subdir> IN`, with a clear error for the old
    /// `<stmt> <uri>` form that named a backup by its full URI.
    fn subdir_in(&mut self, stmt: &str) -> Result<Subdir, ParseError> {
        if self.eat_kw("latest") {
            self.expect_kw("in")?;
            return Ok(Subdir::Latest);
        }
        let path = self.value("LATEST or a backup subdirectory")?;
        if !self.eat_kw("in") {
            return Err(self.expected(format!(
                "IN: name the backup as {stmt} LATEST IN <collection URI> or \
                 {stmt} '<subdirectory>' IN <collection URI>"
            )));
        }
        Ok(Subdir::Path(path))
    }

    /// After `SHOW`.
    pub(super) fn show(&mut self) -> Result<Statement, ParseError> {
        if self.eat_kw("backups") {
            self.expect_kw("in")?;
            let collection = self.value("a collection URI")?;
            self.expect_end("")?;
            return Ok(Statement::ShowBackups { collection });
        }
        if self.eat_kw("backup") {
            return self.show_backup();
        }
        self.show_jobs_or_schedules()
    }

    /// After `SHOW BACKUP`.
    fn show_backup(&mut self) -> Result<Statement, ParseError> {
        let details = if self.eat_kw("schemas") {
            Some(ShowBackupDetails::Schemas)
        } else if self.eat_kw("files") {
            Some(ShowBackupDetails::Files)
        } else if self.eat_kw("ranges") {
            Some(ShowBackupDetails::Ranges)
        } else {
            None
        };
        if !self.eat_kw("from") {
            return Err(self.expected(if details.is_some() {
                "FROM"
            } else {
                "SCHEMAS, FILES, RANGES or FROM"
            }));
        }
        let subdir = self.subdir_in("SHOW BACKUP FROM")?;
        let collection = self.uri_list()?;
        let options =
            ShowBackupOptions::from_parsed(self.with_options(SHOW_BACKUP_OPTIONS, "SHOW BACKUP")?);
        self.expect_end("WITH")?;
        Ok(Statement::ShowBackup(ShowBackup {
            details,
            subdir,
            collection,
            options,
        }))
    }
}
