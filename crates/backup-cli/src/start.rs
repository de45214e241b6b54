//! `backup-cli start`: serves the embedded cluster of a store directory over
//! the PostgreSQL wire protocol until Ctrl-C, with the backup scheduler
//! running.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use pg_server::PgServer;

use crate::store::{OpenStore, Schedules};

/// Arguments of `backup-cli start`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  backup-cli start --store ./store
  psql -h 127.0.0.1 -p 26257 -U root -d defaultdb \\
      -c \"BACKUP DATABASE defaultdb INTO 'nodelocal://1/backups'\"
  backup-cli start --store ./store --listen 127.0.0.1:5433

root connects from a loopback address without a password; other users need
one: CREATE USER alice WITH PASSWORD 'secret'.")]
pub struct StartArgs {
    /// The cluster's store directory (created on first use; data persists).
    #[arg(long)]
    pub store: PathBuf,
    /// Nodes of a new cluster (an existing store keeps its own).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:26257")]
    pub listen: SocketAddr,
}

/// Runs `backup-cli start` until Ctrl-C (or SIGTERM).
pub fn run(args: StartArgs) -> anyhow::Result<ExitCode> {
    let store = OpenStore::open(&args.store, args.nodes, Schedules::Run)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    let served = runtime.block_on(async {
        // The server's error names the address, the cause and what to do.
        let server = PgServer::bind(store.cluster().clone(), args.listen)
            .map_err(|e| anyhow::anyhow!("{e} (--listen)"))?;
        let addr = server.local_addr();
        // Printed on stdout, one line, so scripts can read the address.
        println!("listening on {addr}");
        eprintln!(
            "connect with: psql -h {} -p {} -U root -d defaultdb   (Ctrl-C stops)",
            addr.ip(),
            addr.port()
        );
        if !addr.ip().is_loopback() {
            eprintln!(
                "note: {addr} is not a loopback address: every user, root included, \
                 needs a password there"
            );
        }
        let stop = server.shutdown_handle();
        tokio::spawn(async move {
            stop_signal().await;
            stop.shutdown();
        });
        server.serve().await.context("the server stopped")
    });
    served?;
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, or SIGTERM where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
