//! Statements that block on some connections (here BACKUPs held at a gate
//! in their handler) do not hold up other connections; a stopping server
//! tells idle connections why it closes them.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use common::TestServer;
use embedded_cluster::{BackupContext, BackupStatementHandler, QueryResult, SqlError};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// Announces each backup statement, then waits for the gate to open.
struct Gate {
    entered: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl BackupStatementHandler for Gate {
    fn execute(
        &self,
        _ctx: &BackupContext<'_>,
        _statement: backup_sql::Statement,
    ) -> Result<QueryResult, SqlError> {
        self.entered.lock().unwrap().send(()).unwrap();
        self.release.lock().unwrap().recv().unwrap();
        Ok(QueryResult::tag("BACKUP"))
    }
}

async fn connect(server: &TestServer) -> tokio_postgres::Client {
    let url = format!(
        "host=127.0.0.1 port={} user=root dbname=defaultdb",
        server.addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_backups_do_not_stall_other_connections() {
    let server = TestServer::start();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    server.cluster.set_backup_handler(Arc::new(Gate {
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    }));

    // More blocked statements than the server has runtime threads.
    let mut backups = Vec::new();
    for i in 0..3 {
        let a = connect(&server).await;
        backups.push(tokio::spawn(async move {
            a.simple_query(&format!(
                "BACKUP DATABASE defaultdb INTO 'nodelocal://1/gate{i}'"
            ))
            .await
            .map(|_| ())
        }));
    }
    tokio::task::spawn_blocking(move || {
        for _ in 0..3 {
            entered_rx.recv().unwrap();
        }
    })
    .await
    .unwrap();

    // The backups are inside the handler, and stay there until released:
    // other connections, old and new, still run statements meanwhile.
    let b = connect(&server).await;
    b.batch_execute("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let row = b.query_one("SELECT count(*) FROM t", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    assert!(backups.iter().all(|b| !b.is_finished()));

    for _ in 0..3 {
        release_tx.send(()).unwrap();
    }
    for b in backups {
        b.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_closes_idle_connections_with_57p01() {
    let server = TestServer::start();
    let url = format!(
        "host=127.0.0.1 port={} user=root dbname=defaultdb",
        server.addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    let connection = tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();
    server.stop();
    let e = connection.await.unwrap().unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::ADMIN_SHUTDOWN), "{e:?}");
    assert!(client.simple_query("SELECT 1").await.is_err());
}
