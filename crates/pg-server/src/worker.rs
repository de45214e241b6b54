//! The thread that owns one connection's SQL session.
//!
//! [`embedded_cluster::Session::execute`] blocks (a BACKUP waits for its
//! job, and runs its own runtime), so each connection hands its statements
//! to a dedicated thread outside the server's tokio runtime; other
//! connections go on meanwhile.

use std::sync::mpsc;

use embedded_cluster::{Cluster, QueryResult, Session, SqlError};
use tokio::sync::oneshot;

use crate::PgServerError;

/// A statement for the session thread, with where to send its result.
type Job = (String, oneshot::Sender<Outcome>);

/// What one statement did, and the session's transaction state after it.
pub struct Outcome {
    /// The result or the error.
    pub result: Result<QueryResult, SqlError>,
    /// Whether a transaction is open afterwards.
    pub in_transaction: bool,
}

/// A handle on the session thread of one connection; dropping it ends the thread.
pub struct SessionWorker {
    jobs: mpsc::Sender<Job>,
}

impl SessionWorker {
    /// Opens a session as `user` in `database` on a new thread.
    pub async fn open(
        cluster: Cluster,
        user: String,
        database: Option<String>,
    ) -> Result<SessionWorker, SqlError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), SqlError>>();
        let spawned = std::thread::Builder::new()
            .name(format!("pg-session-{user}"))
            .spawn(move || {
                let mut session = match open_session(&cluster, &user, database.as_deref()) {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok((sql, reply)) = rx.recv() {
                    let result = session.execute(&sql);
                    let _ = reply.send(Outcome {
                        result,
                        in_transaction: session.in_transaction(),
                    });
                }
            });
        if let Err(e) = spawned {
            return Err(SqlError::Invalid(format!(
                "could not start a session thread: {e}"
            )));
        }
        match ready_rx.await {
            Ok(Ok(())) => Ok(SessionWorker { jobs }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SqlError::Invalid("the session thread stopped".into())),
        }
    }

    /// Runs one statement on the session thread.
    pub async fn execute(&self, sql: String) -> Result<Outcome, PgServerError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((sql, tx))
            .map_err(|_| PgServerError::SessionGone)?;
        rx.await.map_err(|_| PgServerError::SessionGone)
    }
}

/// A session as `user`, switched to `database` when one is named.
fn open_session(
    cluster: &Cluster,
    user: &str,
    database: Option<&str>,
) -> Result<Session, SqlError> {
    let mut session = cluster.session(user)?;
    if let Some(db) = database.filter(|d| !d.is_empty() && *d != session.database()) {
        let quoted = format!("\"{}\"", db.replace('"', "\"\""));
        session.execute(&format!("SET database = {quoted}"))?;
    }
    Ok(session)
}
