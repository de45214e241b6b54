//! `backup-cli`: the binary a new user meets first.
//!
//! - `demo`: the main job end to end on an embedded cluster in a temporary
//!   store — full backup, changes under an open transaction, incremental
//!   with revision history, SHOW BACKUPS / SHOW BACKUP, restores at the
//!   latest time and in between, each proven by fingerprints;
//! - `sql`: statements (or an interactive shell) in one session against the
//!   embedded cluster of a store directory, with scheduled backups running
//!   while it is open;
//! - `start`: the cluster of a store directory served over the PostgreSQL
//!   wire protocol (psql, drivers), with scheduled backups running;
//! - `workload init bank`: the bank workload, bulk loaded;
//! - `inspect` and `verify`: a backup collection, offline.
//!
//! Logging goes to stderr through `tracing`, filtered by `RUST_LOG`
//! (`RUST_LOG=debug backup-cli ...`); quiet (errors only) by default.

mod demo;
mod fingerprints;
mod inspect;
mod offline;
mod output;
mod progress;
mod redact;
mod shell;
mod sql;
mod start;
mod store;
mod verify;
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Backups and restores of an embedded CockroachDB-style cluster, from SQL.
#[derive(Debug, Parser)]
#[command(
    name = "backup-cli",
    version,
    after_help = "Examples:
  backup-cli demo                        # the whole story in under a minute
  backup-cli sql --store ./store -e \"CREATE DATABASE bank\"
  backup-cli sql --store ./store         # interactive shell
  backup-cli verify nodelocal://1/backups --store ./store

Logging: RUST_LOG=info (or debug, or backup_exec=debug) prints logs to stderr."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the main job end to end on a temporary 3-node cluster and proves
    /// each restore with fingerprints.
    Demo(demo::DemoArgs),
    /// Runs SQL statements (or an interactive shell) against the cluster in a
    /// store directory.
    Sql(sql::SqlArgs),
    /// Serves the cluster of a store directory over the PostgreSQL wire
    /// protocol (psql, drivers), with scheduled backups running.
    Start(start::StartArgs),
    /// Loads sample workloads in bulk.
    Workload(workload::WorkloadArgs),
    /// Lists the backups in a collection and, for one, its chain and contents
    /// (offline: no cluster needed).
    Inspect(inspect::InspectArgs),
    /// Reads every file a backup needs and checks every checksum and block
    /// (offline); exits 1 naming each missing or corrupt file.
    Verify(verify::VerifyArgs),
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Sql(a) => sql::run(a),
        Command::Start(a) => start::run(a),
        Command::Workload(a) => workload::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Verify(a) => verify::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Every command scrubs the secrets it was given from its errors.
            eprintln!("ERROR: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG`-filtered logs on stderr; errors only when unset.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
