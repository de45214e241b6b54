//! Running the built `backup-cli` binary as a user would.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// What one run of the binary did.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both streams, for "never appears anywhere" checks.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics with both streams unless the run exited 0.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics with both streams unless the run exited 1.
    pub fn failed(self) -> Run {
        assert_eq!(
            self.code,
            Some(1),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_backup-cli"));
    c.args(args).env_remove("RUST_LOG").stdin(Stdio::null());
    c
}

/// Runs `backup-cli <args>`.
pub fn cli(args: &[&str]) -> Run {
    match command(args).output() {
        Ok(out) => finish(out),
        Err(e) => panic!("cannot run backup-cli: {e}"),
    }
}

/// Runs `backup-cli <args>` with extra environment variables.
pub fn cli_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = command(args);
    c.envs(env.iter().copied());
    match c.output() {
        Ok(out) => finish(out),
        Err(e) => panic!("cannot run backup-cli: {e}"),
    }
}

/// Runs `backup-cli <args>` with `input` on standard input.
pub fn cli_stdin(args: &[&str], input: &str) -> Run {
    let mut c = command(args);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match c.spawn() {
        Ok(c) => c,
        Err(e) => panic!("cannot run backup-cli: {e}"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).expect("writing stdin");
    }
    finish(child.wait_with_output().expect("waiting for backup-cli"))
}

/// `backup-cli sql --store <store> -e <stmt>...`.
pub fn sql(store: &Path, statements: &[&str]) -> Run {
    let store = store.to_str().expect("utf-8 temp path");
    let mut args = vec!["sql", "--store", store];
    for s in statements {
        args.push("-e");
        args.push(s);
    }
    cli(&args)
}

/// Every file under `dir` whose name ends with `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A store with `bank.t` (three rows) backed up in full to
/// `nodelocal://1/<collection>`.
pub fn store_with_backup(collection: &str, with: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let backup = format!("BACKUP DATABASE bank INTO 'nodelocal://1/{collection}'{with}");
    sql(
        dir.path(),
        &[
            "CREATE DATABASE bank",
            "CREATE TABLE bank.t (id INT PRIMARY KEY, v STRING)",
            "INSERT INTO bank.t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
            &backup,
        ],
    )
    .ok();
    dir
}
