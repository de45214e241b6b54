//! A real driver (tokio-postgres) over the extended query protocol:
//! prepared statements, text and binary parameters, binary results, row
//! limits on portals, BACKUP through a prepared statement, SQLSTATEs, and
//! SCRAM-SHA-256 and cleartext password logins.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestServer;
use pg_server::{PasswordMethod, PgServerConfig};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

async fn connect(
    server: &TestServer,
    user: &str,
    password: Option<&str>,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(server.addr.port())
        .user(user)
        .dbname("defaultdb");
    if let Some(p) = password {
        config.password(p);
    }
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_parameters_and_binary_results() {
    let server = TestServer::start();
    let c = connect(&server, "root", None).await.unwrap();
    c.batch_execute(
        "CREATE TABLE accounts (id INT PRIMARY KEY, owner STRING, balance FLOAT, active BOOL); \
         INSERT INTO accounts VALUES (1, 'ann', 1.5, true), (2, 'bo', 250, false)",
    )
    .await
    .unwrap();

    // Untyped parameters are text; the cluster converts them.
    let n = c
        .execute(
            "INSERT INTO accounts VALUES ($1, $2, $3, $4)",
            &[&"3", &"it's cy", &"0.25", &"true"],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);

    let stmt = c
        .prepare("SELECT id, owner, balance, active FROM accounts WHERE owner = $1")
        .await
        .unwrap();
    assert_eq!(stmt.params(), &[Type::TEXT]);
    let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["id", "owner", "balance", "active"]);
    assert_eq!(stmt.columns()[0].type_(), &Type::INT8);
    let rows = c.query(&stmt, &[&"it's cy"]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(0), 3);
    assert_eq!(rows[0].get::<_, String>(1), "it's cy");
    assert_eq!(rows[0].get::<_, f64>(2), 0.25);
    assert!(rows[0].get::<_, bool>(3));

    // Typed binary parameters.
    let typed = c
        .prepare_typed(
            "SELECT owner FROM accounts WHERE id = $1 OR active = $2 ORDER BY id",
            &[Type::INT8, Type::BOOL],
        )
        .await
        .unwrap();
    let rows = c.query(&typed, &[&2i64, &true]).await.unwrap();
    let owners: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(owners, ["ann", "bo", "it's cy"]);

    // A NULL parameter.
    let rows = c
        .query(
            "SELECT count(*) FROM accounts WHERE owner = $1",
            &[&None::<String>],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 0);

    // Rows go with the types the statement was described with, even where
    // the cluster only learns a computed column's type from its values.
    let doubled = c
        .prepare_typed(
            "SELECT id * 2 AS d FROM accounts WHERE id = $1",
            &[Type::INT8],
        )
        .await
        .unwrap();
    let ty = doubled.columns()[0].type_().clone();
    let row = c.query_one(&doubled, &[&2i64]).await.unwrap();
    if ty == Type::INT8 {
        assert_eq!(row.get::<_, i64>(0), 4);
    } else {
        assert_eq!(ty, Type::TEXT);
        assert_eq!(row.get::<_, String>(0), "4");
    }

    // Describing a prepared statement does not consume a sequence value.
    c.batch_execute("CREATE SEQUENCE s").await.unwrap();
    let next = c.prepare("SELECT nextval('s')").await.unwrap();
    assert_eq!(c.query_one(&next, &[]).await.unwrap().get::<_, i64>(0), 1);
    assert_eq!(c.query_one(&next, &[]).await.unwrap().get::<_, i64>(0), 2);

    // A portal read two rows at a time.
    let mut c = c;
    let tx = c.transaction().await.unwrap();
    let portal = tx
        .bind("SELECT id FROM accounts ORDER BY id", &[])
        .await
        .unwrap();
    let first = tx.query_portal(&portal, 2).await.unwrap();
    let rest = tx.query_portal(&portal, 2).await.unwrap();
    assert_eq!(
        (first.len(), rest.len(), rest[0].get::<_, i64>(0)),
        (2, 1, 3)
    );
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_sqlstates_and_the_connection_goes_on() {
    let server = TestServer::start();
    let c = connect(&server, "root", None).await.unwrap();
    // What drivers set when they connect is accepted, or refused with a reason.
    c.batch_execute("SET application_name = 'tests'; SET extra_float_digits = 3")
        .await
        .unwrap();
    let e = c
        .batch_execute("SET TIME ZONE 'Europe/Paris'")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED), "{e:?}");
    let e = c.query("SELECT * FROM missing", &[]).await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::UNDEFINED_TABLE), "{e:?}");
    let e = c.simple_query("SELEC 1").await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::SYNTAX_ERROR), "{e:?}");
    c.batch_execute("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap();
    let e = c
        .execute("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::UNIQUE_VIOLATION), "{e:?}");
    let e = c
        .execute("INSERT INTO t VALUES ($1)", &[&"x", &"y"])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("parameters"), "{e}");
    let row = c.query_one("SELECT count(*) FROM t", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_through_prepared_statements() {
    let server = TestServer::start();
    let c = connect(&server, "root", None).await.unwrap();
    c.batch_execute(
        "CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, name STRING); \
         INSERT INTO shop.items VALUES (1, 'lamp'), (2, 'desk')",
    )
    .await
    .unwrap();
    let rows = c
        .query("BACKUP DATABASE shop INTO $1", &[&"nodelocal://1/ext"])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>("status"), "succeeded");
    assert!(rows[0].get::<_, i64>("job_id") > 0);
    assert_eq!(rows[0].get::<_, f64>("fraction_completed"), 1.0);

    let backups = c
        .query("SHOW BACKUPS IN 'nodelocal://1/ext'", &[])
        .await
        .unwrap();
    assert_eq!(backups.len(), 1);

    let rows = c
        .query(
            "RESTORE DATABASE shop FROM LATEST IN 'nodelocal://1/ext' WITH new_db_name = $1",
            &[&"shop2"],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>("status"), "succeeded");
    let names: Vec<String> = c
        .query("SELECT name FROM shop2.items ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["lamp", "desk"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_and_cleartext_password_logins() {
    for method in [PasswordMethod::ScramSha256, PasswordMethod::Cleartext] {
        let server = TestServer::start_with(PgServerConfig {
            password_method: method,
            ..PgServerConfig::default()
        });
        let root = connect(&server, "root", None).await.unwrap();
        root.batch_execute("CREATE USER dana WITH PASSWORD 'dana-pw'; CREATE USER eve")
            .await
            .unwrap();
        let dana = connect(&server, "dana", Some("dana-pw")).await.unwrap();
        let row = dana.query_one("SELECT 1 + 1", &[]).await.unwrap();
        assert_eq!(row.get::<_, i64>(0), 2, "{method:?}");
        for (user, pw) in [("dana", "nope"), ("eve", "x"), ("ghost", "x")] {
            let e = connect(&server, user, Some(pw)).await.err().unwrap();
            assert_eq!(
                e.code(),
                Some(&SqlState::INVALID_PASSWORD),
                "{method:?} {user}: {e:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_refused_with_53300() {
    let server = TestServer::start_with(PgServerConfig {
        max_connections: 1,
        ..PgServerConfig::default()
    });
    let first = connect(&server, "root", None).await.unwrap();
    let e = connect(&server, "root", None).await.err().unwrap();
    assert_eq!(e.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{e:?}");
    assert_eq!(
        first
            .query_one("SELECT 1", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        1
    );
}
