//! A server on an ephemeral loopback port over a fresh cluster, and the
//! server's log lines captured for secret checks.
#![allow(dead_code, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};

use embedded_cluster::Cluster;
use pg_server::{PgServer, PgServerConfig, ShutdownHandle};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Every log line of every server in this test binary.
pub static LOGS: LazyLock<Logs> = LazyLock::new(|| {
    let logs = Logs::default();
    let _ = tracing::subscriber::set_global_default(logs.clone());
    logs
});

/// A running server; dropping it stops the server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its cluster.
    pub cluster: Cluster,
    shutdown: ShutdownHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A 3-node cluster with backup statements, served on 127.0.0.1:0.
    pub fn start() -> TestServer {
        TestServer::start_with(PgServerConfig::default())
    }

    /// The same with `config`.
    pub fn start_with(config: PgServerConfig) -> TestServer {
        LazyLock::force(&LOGS);
        let dir = tempfile::tempdir().unwrap();
        let cluster = Cluster::open_default(dir.path()).unwrap();
        cluster.enable_backup_statements().unwrap();
        let server = PgServer::bind(cluster.clone(), "127.0.0.1:0")
            .unwrap()
            .with_config(config);
        let addr = server.local_addr();
        let shutdown = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.serve_blocking().unwrap());
        TestServer {
            addr,
            cluster,
            shutdown,
            thread: Some(thread),
            _dir: dir,
        }
    }
}

impl TestServer {
    /// Stops the server (as dropping it does, without waiting).
    pub fn stop(&self) {
        self.shutdown.shutdown();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.cluster.disable_backup_statements();
    }
}

/// A `tracing` subscriber that keeps every event as a line of text.
#[derive(Clone, Default)]
pub struct Logs {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Logs {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Subscriber for Logs {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(format!(
            "{} {}",
            event.metadata().level(),
            event.metadata().target()
        ));
        event.record(&mut line);
        self.lines.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
