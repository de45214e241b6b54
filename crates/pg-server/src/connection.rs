//! One client connection: start-up and authentication, then the simple and
//! extended query protocols over the connection's session thread.

use std::net::SocketAddr;

use embedded_cluster::{Cluster, QueryResult, SqlError};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::auth::{Verdict, authenticate};
use crate::extended::Extended;
use crate::protocol::{FieldDesc, Frontend, Out, Startup, read_message, read_startup};
use crate::worker::{Outcome, SessionWorker};
use crate::{
    PgServerConfig, PgServerError, ShutdownHandle, client_settings, sqlstate, statements, types,
};

/// The version this server reports (psql and drivers key features off it).
pub const SERVER_VERSION: &str = "13.0.0";

/// Serves one accepted connection until the client leaves; one not
/// `admitted` (the server is full) is refused after its startup packet.
pub async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    cluster: Cluster,
    config: PgServerConfig,
    id: u64,
    shutdown: ShutdownHandle,
    admitted: bool,
) -> Result<(), PgServerError> {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut out = Out::new(w);

    let params = loop {
        match read_startup(&mut r).await? {
            Startup::Start(p) => break p,
            Startup::EncryptionRequest => {
                out.byte(b'N');
                out.flush().await?;
            }
            Startup::Cancel => return Ok(()),
        }
    };
    if !admitted {
        out.fatal(
            sqlstate::TOO_MANY_CONNECTIONS,
            &format!(
                "sorry, too many clients already (the server allows {})",
                config.max_connections
            ),
        );
        return out.flush().await;
    }
    let param = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let Some(user) = param("user").filter(|u| !u.is_empty()) else {
        out.error(
            sqlstate::INVALID_AUTHORIZATION,
            "no user name in the startup packet",
            Some("connect as a user, for example `psql -U root`"),
        );
        return out.flush().await;
    };
    let database = param("database");

    match authenticate(
        &mut r,
        &mut out,
        &cluster,
        config.password_method,
        &user,
        peer,
    )
    .await?
    {
        Verdict::Allowed => {}
        Verdict::Denied => {
            warn!(conn = id, %peer, user = %user, "password authentication failed");
            out.error(
                sqlstate::INVALID_PASSWORD,
                &format!("password authentication failed for user \"{user}\""),
                Some(
                    "check the password; users without one cannot log in over the network \
                     (set one with ALTER USER name WITH PASSWORD '...')",
                ),
            );
            return out.flush().await;
        }
    }

    let worker = match SessionWorker::open(cluster, user.clone(), database.clone()).await {
        Ok(w) => w,
        Err(e) => {
            let hint = matches!(e, SqlError::UndefinedDatabase(_))
                .then_some("connect to an existing database, for example defaultdb");
            out.error(sqlstate::of(&e), &e.to_string(), hint);
            return out.flush().await;
        }
    };
    info!(conn = id, %peer, user = %user, "connection opened");

    for (k, v) in [
        ("server_version", SERVER_VERSION),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("IntervalStyle", "postgres"),
        ("TimeZone", "UTC"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("is_superuser", if user == "root" { "on" } else { "off" }),
        ("session_authorization", &user),
        (
            "application_name",
            &param("application_name").unwrap_or_default(),
        ),
    ] {
        out.parameter_status(k, v);
    }
    let key: [u8; 8] = rand_key();
    out.backend_key(
        i32::from_be_bytes([key[0], key[1], key[2], key[3]]) & 0x7fff_ffff,
        i32::from_be_bytes([key[4], key[5], key[6], key[7]]),
    );
    out.ready(b'I');
    out.flush().await?;

    let mut conn = Connection {
        id,
        worker,
        in_transaction: false,
        executed: 0,
        shutdown,
        extended: Extended::default(),
    };
    let result = conn.run(&mut r, &mut out).await;
    info!(conn = id, user = %user, "connection closed");
    result
}

/// A connection after start-up.
pub struct Connection {
    /// Connection number, for logs.
    pub id: u64,
    /// The session thread.
    pub worker: SessionWorker,
    /// Whether the session has a transaction open.
    pub in_transaction: bool,
    /// How many statements the session has run.
    pub executed: u64,
    /// Ends the connection between statements when the server stops.
    pub shutdown: ShutdownHandle,
    /// Prepared statements, portals and the error state of a batch.
    pub extended: Extended,
}

impl Connection {
    async fn run<R, W>(&mut self, r: &mut R, out: &mut Out<W>) -> Result<(), PgServerError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            let msg = tokio::select! {
                biased;
                _ = self.shutdown.wait() => {
                    out.fatal(sqlstate::ADMIN_SHUTDOWN, "the server is shutting down");
                    return out.flush().await;
                }
                msg = read_message(r) => match msg? {
                    Some(m) => m,
                    None => return Ok(()),
                },
            };
            match msg {
                Frontend::Query(sql) => {
                    self.simple_query(&sql, out).await?;
                    out.ready(self.status());
                    out.flush().await?;
                }
                Frontend::Sync => {
                    self.extended.sync();
                    out.ready(self.status());
                    out.flush().await?;
                }
                Frontend::Flush => out.flush().await?,
                Frontend::Terminate => return Ok(()),
                Frontend::Password(_) | Frontend::Other(_) => {
                    out.error(
                        sqlstate::PROTOCOL_VIOLATION,
                        &format!("unexpected {} after authentication", msg.kind()),
                        None,
                    );
                    out.ready(self.status());
                    out.flush().await?;
                }
                other => self.extended_message(other, out).await?,
            }
            if out.is_large() {
                out.flush().await?;
            }
        }
    }

    /// The `ReadyForQuery` status byte.
    pub fn status(&self) -> u8 {
        if self.in_transaction { b'T' } else { b'I' }
    }

    /// Runs one statement on the session thread, logging its redacted text.
    pub async fn execute(
        &mut self,
        sql: &str,
    ) -> Result<Result<QueryResult, SqlError>, PgServerError> {
        debug!(conn = self.id, statement = %statements::redacted(sql), "executing");
        if let Some(result) = client_settings::intercept(sql) {
            return Ok(result);
        }
        let Outcome {
            result,
            in_transaction,
        } = self.worker.execute(sql.to_string()).await?;
        self.in_transaction = in_transaction;
        self.executed += 1;
        if let Err(e) = &result {
            debug!(
                conn = self.id,
                sqlstate = sqlstate::of(e),
                error = %statements::redact_message(&e.to_string(), sql),
                "statement failed"
            );
        }
        Ok(result)
    }

    /// `Q`: each statement in turn, text results; the first error ends it.
    async fn simple_query<W: AsyncWrite + Unpin>(
        &mut self,
        sql: &str,
        out: &mut Out<W>,
    ) -> Result<(), PgServerError> {
        let parts = statements::split(sql);
        if parts.is_empty() {
            out.empty_query();
            return Ok(());
        }
        for stmt in parts {
            match self.execute(stmt).await? {
                Ok(res) => {
                    let fields = types::fields(&res.columns, &[]);
                    if !fields.is_empty() {
                        out.row_description(&fields);
                    }
                    if let Err(msg) = send_rows(out, &res, &fields, 0, res.rows.len()).await {
                        out.error(sqlstate::INTERNAL_ERROR, &msg, None);
                        return Ok(());
                    }
                    out.command_complete(&tag_of(&res));
                }
                Err(e) => {
                    send_error(out, &e);
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// Sends rows `from..to` of `res` as `DataRow`s, flushing as the buffer grows.
pub async fn send_rows<W: AsyncWrite + Unpin>(
    out: &mut Out<W>,
    res: &QueryResult,
    fields: &[FieldDesc],
    from: usize,
    to: usize,
) -> Result<(), String> {
    for row in &res.rows[from..to] {
        let mut values = Vec::with_capacity(row.len());
        for (v, f) in row.iter().zip(fields) {
            values.push(types::encode(v, f)?);
        }
        out.data_row(&values);
        if out.is_large() {
            out.flush().await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The command tag of a result (the cluster's, or `SELECT n` if it has none).
pub fn tag_of(res: &QueryResult) -> String {
    if res.tag.is_empty() {
        format!("SELECT {}", res.rows.len())
    } else {
        res.tag.clone()
    }
}

/// An `ErrorResponse` for a statement's error.
pub fn send_error<W: AsyncWrite + Unpin>(out: &mut Out<W>, e: &SqlError) {
    out.error(sqlstate::of(e), &e.to_string(), None);
}

fn rand_key() -> [u8; 8] {
    let mut k = [0u8; 8];
    let _ = getrandom::fill(&mut k);
    k
}
