//! `backup-cli sql`: statements in one session against the embedded cluster
//! of a store directory, from `-e`, from standard input, or typed into the
//! interactive shell.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use embedded_cluster::{Cluster, Session};

use crate::output::{self, Format};
use crate::progress::{BarMode, JobWatch, runs_a_job};
use crate::redact::Secrets;
use crate::store::{OpenStore, Schedules};

/// Arguments of `backup-cli sql`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  backup-cli sql --store ./store -e \"CREATE DATABASE bank\" \\
      -e \"CREATE TABLE bank.t (id INT PRIMARY KEY, v STRING)\" \\
      -e \"INSERT INTO bank.t VALUES (1, 'a')\"
  backup-cli sql --store ./store -e \"BACKUP DATABASE bank INTO 'nodelocal://1/backups'\"
  backup-cli sql --store ./store --format csv -e \"SHOW BACKUPS IN 'nodelocal://1/backups'\"
  backup-cli sql --store ./store          # interactive shell; end statements with ;")]
pub struct SqlArgs {
    /// The cluster's store directory (created on first use; data persists).
    #[arg(long)]
    pub store: PathBuf,
    /// Nodes of a new cluster (an existing store keeps its own).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// The SQL user of the session.
    #[arg(long, default_value = "root")]
    pub user: String,
    /// Output format: `table` on a terminal, `tsv` otherwise.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// A statement to run (repeatable; run in order, stopping at the first
    /// error). Without -e, statements come from standard input or the shell.
    #[arg(short = 'e', long = "execute", value_name = "STATEMENT")]
    pub execute: Vec<String>,
}

/// Runs `backup-cli sql`.
pub fn run(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let store = OpenStore::open(&args.store, args.nodes, Schedules::Run)?;
    let session = store.cluster().session(&args.user).with_context(|| {
        format!(
            "cannot open a session as {:?}: create the user first \
             (`-e \"CREATE USER {}\"` as root)",
            args.user, args.user
        )
    })?;
    let terminal = std::io::stdout().is_terminal();
    let mut runner = Runner {
        cluster: store.cluster().clone(),
        session,
        format: args
            .format
            .unwrap_or(if terminal { Format::Table } else { Format::Tsv }),
        bars: if std::io::stderr().is_terminal() {
            BarMode::Live
        } else {
            BarMode::Off
        },
        secrets: Secrets::default(),
    };
    if !args.execute.is_empty() {
        let mut all = Vec::new();
        for e in &args.execute {
            let (mut stmts, rest) = split_statements(e);
            if !rest.trim().is_empty() {
                stmts.push(rest);
            }
            all.extend(stmts);
        }
        let code = runner.run_all(&all);
        return finish(&store, code);
    }
    if std::io::stdin().is_terminal() {
        let history = args.store.join("shell_history");
        crate::shell::run(&mut runner, &history)?;
        return finish(&store, ExitCode::SUCCESS);
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("cannot read statements from standard input")?;
    let (mut stmts, rest) = split_statements(&input);
    if !rest.trim().is_empty() {
        stmts.push(rest);
    }
    let code = runner.run_all(&stmts);
    finish(&store, code)
}

/// Runs the schedules that are due before the store closes (see
/// [`OpenStore::finish_due_schedules`]); a failed scheduled backup makes
/// the exit code 1.
fn finish(store: &OpenStore, code: ExitCode) -> anyhow::Result<ExitCode> {
    let scheduled_ok = store.finish_due_schedules()?;
    Ok(if scheduled_ok {
        code
    } else {
        ExitCode::FAILURE
    })
}

/// One session and how its results are shown.
pub struct Runner {
    cluster: Cluster,
    session: Session,
    format: Format,
    bars: BarMode,
    secrets: Secrets,
}

impl Runner {
    /// Runs statements in order; the first failure prints `ERROR: ...` and
    /// ends the run with exit code 1.
    fn run_all(&mut self, statements: &[String]) -> ExitCode {
        for sql in statements {
            if let Err(msg) = self.run(sql) {
                eprintln!("ERROR: {msg}");
                return ExitCode::FAILURE;
            }
        }
        ExitCode::SUCCESS
    }

    /// Runs one statement and prints its result; the error message
    /// (secrets scrubbed) on failure.
    pub fn run(&mut self, sql: &str) -> Result<(), String> {
        self.secrets.learn(sql);
        tracing::debug!(
            statement = %crate::redact::statement_for_display(sql, &self.secrets),
            "running"
        );
        let watch = runs_a_job(sql).then(|| JobWatch::start(&self.cluster, self.bars));
        let result = self.session.execute(sql);
        if let Some(w) = watch {
            w.finish();
        }
        match result {
            Ok(r) => {
                let mut buf = Vec::new();
                let _ = output::print(&mut buf, &r, self.format);
                let text = self.secrets.scrub(&String::from_utf8_lossy(&buf));
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
                Ok(())
            }
            Err(e) => Err(self.secrets.scrub(&e.to_string())),
        }
    }

    /// `sql` as it may be shown or stored, secrets redacted.
    pub fn display(&mut self, sql: &str) -> String {
        self.secrets.learn(sql);
        crate::redact::statement_for_display(sql, &self.secrets)
    }

    /// The prompt's `user@database`.
    pub fn who(&self) -> String {
        format!("{}@{}", self.session.user(), self.session.database())
    }
}

/// Splits `text` into complete statements (each ending at a `;` outside
/// quotes and comments, without it) and the incomplete rest.
pub fn split_statements(text: &str) -> (Vec<String>, String) {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                current.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    current.push(c);
                }
                '-' if chars.peek() == Some(&'-') => {
                    // A comment runs to the end of the line.
                    for c in chars.by_ref() {
                        if c == '\n' {
                            current.push('\n');
                            break;
                        }
                    }
                }
                ';' => {
                    let stmt = current.trim().to_string();
                    if !stmt.is_empty() {
                        out.push(stmt);
                    }
                    current.clear();
                }
                _ => current.push(c),
            },
        }
    }
    (out, current.trim_start().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_semicolons_outside_quotes_and_comments() {
        let (stmts, rest) = split_statements(
            "SELECT 'a;b'; -- a comment; still\nSELECT \"x;\" FROM t;\n;  SELECT\n 1",
        );
        assert_eq!(stmts, ["SELECT 'a;b'", "SELECT \"x;\" FROM t"]);
        assert_eq!(rest, "SELECT\n 1");
        let (stmts, rest) = split_statements("BACKUP INTO 'x';");
        assert_eq!(stmts, ["BACKUP INTO 'x'"]);
        assert_eq!(rest, "");
    }
}
