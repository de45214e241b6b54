//! `pg-server`: serves an [`embedded_cluster::Cluster`] over the PostgreSQL
//! wire protocol (v3), so `psql` and Postgres drivers run every statement
//! the cluster's sessions run — `BACKUP`, `RESTORE` and `SHOW BACKUPS`
//! included once [`Cluster::enable_backup_statements`] is on.
//!
//! - The simple query protocol (what `psql` uses), with several statements
//!   per query, and the extended protocol (Parse/Bind/Describe/Execute, what
//!   most drivers use) with text parameters, or binary ones of the integer,
//!   float, bool, bytea and text types. Results go as text, or binary when a
//!   driver asks; `INT8`, `FLOAT8`, `BOOL` and `BYTES` columns keep their
//!   PostgreSQL types, every other column is `text`.
//! - Each connection has one SQL session on a thread of its own, so a long
//!   BACKUP does not hold up other connections; at most
//!   [`PgServerConfig::max_connections`] are served at once.
//! - Errors are `ErrorResponse`s with a SQLSTATE; the connection stays usable.
//! - As in CockroachDB, `defaultdb` exists from the start and `root`
//!   connects from a loopback address without a password. Everyone else
//!   needs a password set with `CREATE USER name WITH PASSWORD '...'`,
//!   checked by SCRAM-SHA-256 (or, if configured, a cleartext password
//!   message; use that only over loopback, as there is no TLS).
//! - Statements are logged at `debug` level through `tracing`, with string
//!   literals masked and backup URIs redacted, so passwords and credentials
//!   never reach the logs.
//! - `SET` of the settings drivers send on connect (`application_name`,
//!   `extra_float_digits`, `client_encoding`, time zone, ...) is accepted
//!   when it matches how the server runs (UTF8, UTC), refused otherwise.
//!
//! # Limits
//!
//! - No TLS: an `SSLRequest` is declined, so `sslmode=prefer` (psql's
//!   default) connects in the clear and `sslmode=require` fails.
//! - No MD5 logins: the cluster keeps SCRAM verifiers, which MD5 cannot use.
//! - The database a client names must exist (psql without `-d` names one
//!   after the user): connect to `defaultdb` or another existing database.
//! - Cancel requests are ignored; `COPY` and the `pg_catalog` tables psql's
//!   `\d` commands read are not there.
//! - A text parameter becomes a quoted literal; where the cluster does not
//!   convert a string to the other side's type (`int_col = '2'`), declare
//!   the parameter's type when preparing (`prepare_typed`) instead.
//! - Describing a prepared statement that reads runs it (with NULL
//!   parameters) to learn its columns; `SHOW BACKUP(S)` with a `$n` URI
//!   therefore cannot be prepared — give the URI as a literal there.
//!
//! # Example
//!
//! ```no_run
//! use embedded_cluster::Cluster;
//! use pg_server::{ShutdownHandle, serve_blocking};
//!
//! let cluster = Cluster::open_default(std::path::Path::new("/tmp/store")).unwrap();
//! cluster.enable_backup_statements().unwrap();
//! let shutdown = ShutdownHandle::new();
//! // Another thread (a Ctrl-C handler, say) may call `shutdown.shutdown()`.
//! serve_blocking(cluster, "127.0.0.1:26257", shutdown).unwrap();
//! // Then: psql -h 127.0.0.1 -p 26257 -U root -d defaultdb
//! ```
//!
//! Inside a tokio runtime, bind and serve directly:
//!
//! ```no_run
//! # async fn run(cluster: embedded_cluster::Cluster) -> Result<(), pg_server::PgServerError> {
//! let server = pg_server::PgServer::bind(cluster, "127.0.0.1:0")?;
//! println!("listening on {}", server.local_addr());
//! let stop = server.shutdown_handle();
//! tokio::spawn(server.serve());
//! // ...
//! stop.shutdown();
//! # Ok(()) }
//! ```

mod auth;
mod client_settings;
mod connection;
mod error;
mod extended;
mod protocol;
pub mod sqlstate;
pub mod statements;
mod types;
mod worker;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use embedded_cluster::Cluster;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info};

pub use connection::SERVER_VERSION;
pub use error::PgServerError;

/// How long a stopping server waits for busy connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How clients other than `root` over loopback prove their password.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PasswordMethod {
    /// SCRAM-SHA-256: the password never crosses the wire (the default).
    #[default]
    ScramSha256,
    /// A cleartext password message (for old clients; loopback only, as
    /// there is no TLS).
    Cleartext,
}

/// Server options.
#[derive(Clone, Copy, Debug)]
pub struct PgServerConfig {
    /// How password logins work.
    pub password_method: PasswordMethod,
    /// Connections served at once (each has a session thread); more are
    /// refused with `53300`.
    pub max_connections: usize,
}

impl Default for PgServerConfig {
    /// SCRAM-SHA-256 logins, at most 100 connections.
    fn default() -> PgServerConfig {
        PgServerConfig {
            password_method: PasswordMethod::default(),
            max_connections: 100,
        }
    }
}

/// A bound PostgreSQL wire protocol server over one cluster.
pub struct PgServer {
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    cluster: Cluster,
    config: PgServerConfig,
    shutdown: ShutdownHandle,
}

/// Stops a [`PgServer`]: it accepts no more connections, tells idle ones
/// the server is shutting down (`57P01`) and closes them, and drops busy
/// ones after [`SHUTDOWN_GRACE`] (a statement already running still
/// finishes on its session thread). Cheap to clone.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    tx: Arc<watch::Sender<bool>>,
}

impl ShutdownHandle {
    /// A handle not yet shut down.
    pub fn new() -> ShutdownHandle {
        ShutdownHandle {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    /// Asks the server to stop.
    pub fn shutdown(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`ShutdownHandle::shutdown`] was called.
    pub fn is_shutdown(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once [`ShutdownHandle::shutdown`] is called.
    pub(crate) async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

impl Default for ShutdownHandle {
    fn default() -> ShutdownHandle {
        ShutdownHandle::new()
    }
}

impl PgServer {
    /// Listens on `addr` (port 0 picks a free port; see
    /// [`PgServer::local_addr`]). Needs no runtime.
    pub fn bind(cluster: Cluster, addr: impl ToSocketAddrs) -> Result<PgServer, PgServerError> {
        let shown = addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map_or_else(|| "the given address".to_string(), |a| a.to_string());
        let bind_err = |source| PgServerError::Bind {
            addr: shown.clone(),
            source,
        };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        Ok(PgServer {
            listener,
            local_addr,
            cluster,
            config: PgServerConfig::default(),
            shutdown: ShutdownHandle::new(),
        })
    }

    /// Uses `config` instead of the defaults.
    pub fn with_config(mut self, config: PgServerConfig) -> PgServer {
        self.config = config;
        self
    }

    /// Uses `shutdown` (made before the server) to stop it.
    pub fn with_shutdown(mut self, shutdown: ShutdownHandle) -> PgServer {
        self.shutdown = shutdown;
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops [`PgServer::serve`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Accepts and serves connections until shut down. Must run inside a
    /// tokio runtime with I/O and time enabled.
    pub async fn serve(self) -> Result<(), PgServerError> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        info!(addr = %self.local_addr, "serving the PostgreSQL wire protocol");
        let next_id = AtomicU64::new(1);
        let slots = Arc::new(Semaphore::new(self.config.max_connections));
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = self.shutdown.wait() => break,
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            debug!(error = %e, "accept failed");
                            continue;
                        }
                    };
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    let cluster = self.cluster.clone();
                    let config = self.config;
                    let shutdown = self.shutdown.clone();
                    let slot = slots.clone().try_acquire_owned().ok();
                    connections.spawn(async move {
                        let admitted = slot.is_some();
                        let served = connection::serve_connection(
                            stream, peer, cluster, config, id, shutdown, admitted,
                        );
                        if let Err(e) = served.await {
                            debug!(conn = id, error = %e, "connection ended with an error");
                        }
                        drop(slot);
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        // Idle connections get a FATAL "shutting down" and close; those still
        // running a statement (or starting up) get a grace period, then are
        // dropped (a statement already running finishes on its session thread).
        let grace = tokio::time::sleep(SHUTDOWN_GRACE);
        tokio::pin!(grace);
        while !connections.is_empty() {
            tokio::select! {
                _ = &mut grace => break,
                _ = connections.join_next() => {}
            }
        }
        connections.shutdown().await;
        info!(addr = %self.local_addr, "stopped serving");
        Ok(())
    }
}

/// Serves `cluster` on `addr` until `shutdown` is triggered, on a runtime
/// of its own; blocks the calling thread. What `backup-cli start` runs
/// (to print the address first, use [`PgServer::bind`], then
/// [`PgServer::local_addr`] and [`PgServer::serve_blocking`]).
pub fn serve_blocking(
    cluster: Cluster,
    addr: impl ToSocketAddrs,
    shutdown: ShutdownHandle,
) -> Result<(), PgServerError> {
    PgServer::bind(cluster, addr)?
        .with_shutdown(shutdown)
        .serve_blocking()
}

impl PgServer {
    /// [`PgServer::serve`] on a runtime of its own; blocks the calling
    /// thread (which must not be inside a tokio runtime) until shut down.
    pub fn serve_blocking(self) -> Result<(), PgServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pg-server")
            .enable_all()
            .build()
            .map_err(|e| PgServerError::Runtime(e.to_string()))?;
        runtime.block_on(self.serve())
    }
}
