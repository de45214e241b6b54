//! The interactive SQL shell: line editing and history (kept in the store
//! directory, with secrets redacted), statements over several lines until a `;`.

use std::path::Path;

use anyhow::Context;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::sql::{Runner, split_statements};

const HELP: &str = "\
Type SQL statements ending with ';' (they may span lines), for example:
  CREATE DATABASE bank;
  BACKUP DATABASE bank INTO 'nodelocal://1/backups';
  SHOW BACKUPS IN 'nodelocal://1/backups';
  RESTORE DATABASE bank FROM LATEST IN 'nodelocal://1/backups' WITH new_db_name = 'bank2';
\\q, quit or Ctrl-D leaves; Ctrl-C drops the statement being typed.";

/// Runs the shell until the user leaves.
pub fn run(runner: &mut Runner, history: &Path) -> anyhow::Result<()> {
    let mut editor = DefaultEditor::new().context("cannot start the line editor")?;
    // A missing history file is normal on first use.
    let _ = editor.load_history(history);
    println!("# backup-cli SQL shell. Type \\? for help, \\q to leave.");
    let mut pending = String::new();
    loop {
        let prompt = if pending.is_empty() {
            format!("{}> ", runner.who())
        } else {
            format!("{}-> ", " ".repeat(runner.who().len()))
        };
        let line = match editor.readline(&prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("cannot read from the terminal"),
        };
        if pending.is_empty() {
            match line.trim() {
                "" => continue,
                "\\q" | "quit" | "exit" => break,
                "\\?" | "help" => {
                    println!("{HELP}");
                    continue;
                }
                _ => {}
            }
        }
        pending.push_str(&line);
        pending.push('\n');
        let (statements, rest) = split_statements(&pending);
        for sql in statements {
            // The history file is stored: it keeps statements redacted.
            let _ = editor.add_history_entry(format!("{};", runner.display(&sql)));
            if let Err(msg) = runner.run(&sql) {
                eprintln!("ERROR: {msg}");
            }
        }
        pending = rest;
    }
    if let Err(e) = editor.save_history(history) {
        tracing::warn!(
            "cannot save the shell history to {}: {e}",
            history.display()
        );
    }
    Ok(())
}
