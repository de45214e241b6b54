//! `backup-cli workload init bank`: the bank workload loaded in bulk.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use embedded_cluster::bank::{self, BankConfig};

use crate::store::{OpenStore, Schedules};

/// Arguments of `backup-cli workload`.
#[derive(Debug, clap::Args)]
pub struct WorkloadArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: WorkloadCommand,
}

/// Workload subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum WorkloadCommand {
    /// Creates and loads a workload's tables.
    #[command(after_help = "Example:
  backup-cli workload init bank --store ./store --rows 1000000 --payload-bytes 100
  backup-cli sql --store ./store -e \"SELECT count(*) FROM bank.accounts\"")]
    Init(InitArgs),
}

/// Arguments of `backup-cli workload init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The workload: `bank` (the table `bank.accounts (id, balance, payload)`).
    #[arg(value_enum)]
    pub workload: Workload,
    /// The cluster's store directory (created on first use).
    #[arg(long)]
    pub store: PathBuf,
    /// Nodes of a new cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Accounts to load (ids 0..rows).
    #[arg(long, default_value_t = 1_000)]
    pub rows: u64,
    /// Bytes of each account's payload column.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
}

/// The workloads there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// `bank.accounts`, loaded by bulk ingest at one timestamp.
    Bank,
}

/// Runs `backup-cli workload`.
pub fn run(args: WorkloadArgs) -> anyhow::Result<ExitCode> {
    let WorkloadCommand::Init(args) = args.command;
    let store = OpenStore::open(&args.store, args.nodes, Schedules::Ignore)?;
    let started = Instant::now();
    let config = BankConfig {
        rows: args.rows,
        payload_bytes: args.payload_bytes,
        ..BankConfig::default()
    };
    let stats = match args.workload {
        Workload::Bank => bank::load(store.cluster(), &config).with_context(|| {
            format!(
                "loading the bank workload into {} failed (a bank.accounts table \
                 with other columns, say from the demo sample, cannot take it: use a new --store)",
                args.store.display()
            )
        })?,
    };
    let secs = started.elapsed().as_secs_f64();
    println!(
        "loaded {} rows ({:.1} MiB of row data) into bank.accounts (table id {}) in {secs:.2}s",
        stats.rows,
        stats.bytes as f64 / f64::from(1 << 20),
        stats.table_id,
    );
    Ok(ExitCode::SUCCESS)
}
