//! The real `psql` (Debian's postgresql-client) against a server on an
//! ephemeral loopback port: DDL, DML, BACKUP, SHOW BACKUPS, RESTORE, errors,
//! password logins, and secrets that must not reach the server's logs.
//!
//! Without `psql` on PATH the tests print why and pass, unless
//! `BACKUP_TEST_REQUIRE_SERVERS=1` (as `cargo xtask test` sets), when they fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output, Stdio};

use common::{LOGS, TestServer};

/// `psql` as a client would run it: no `.psqlrc`, never a password prompt,
/// unaligned tuples-only output, stop at the first error.
fn psql(server: &TestServer, user: &str, password: Option<&str>, sql: &str) -> Output {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-w", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-p", &server.addr.port().to_string()])
        .args(["-U", user, "-d", "defaultdb", "-c", sql])
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null());
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    cmd.output().unwrap()
}

/// Runs `sql` as root; panics with psql's stderr if it fails; returns stdout.
fn ok(server: &TestServer, sql: &str) -> String {
    let out = psql(server, "root", None, sql);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "psql -c {sql:?} failed ({}): {stderr}",
        out.status
    );
    stdout.trim_end().to_string()
}

/// Whether `psql` runs here; without it, fail under
/// `BACKUP_TEST_REQUIRE_SERVERS=1`, else say why the test does nothing.
fn have_psql(test: &str) -> bool {
    let found = Command::new("psql")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("BACKUP_TEST_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "psql is not on PATH and BACKUP_TEST_REQUIRE_SERVERS=1: \
             install it with `apt-get install -y postgresql-client`"
        );
        eprintln!("skipping {test}: psql is not on PATH (apt-get install -y postgresql-client)");
    }
    found
}

#[test]
fn tables_backup_show_backups_and_restore_through_psql() {
    if !have_psql("tables_backup_show_backups_and_restore_through_psql") {
        return;
    }
    let server = TestServer::start();
    // defaultdb exists from the start; root needs no password over loopback.
    assert_eq!(ok(&server, "SELECT 1"), "1");
    ok(
        &server,
        "CREATE TABLE accounts (id INT PRIMARY KEY, owner STRING, balance INT)",
    );
    let tag = ok(
        &server,
        "INSERT INTO accounts VALUES (1, 'ann', 100), (2, 'bo', 250), (3, 'cy', 0)",
    );
    assert_eq!(tag, "INSERT 0 3");
    assert_eq!(
        ok(
            &server,
            "SELECT id, owner, balance FROM accounts ORDER BY id"
        ),
        "1|ann|100\n2|bo|250\n3|cy|0"
    );
    // Several statements in one query, and a semicolon inside a literal.
    assert_eq!(
        ok(
            &server,
            "UPDATE accounts SET owner = 'a;b' WHERE id = 3; SELECT owner FROM accounts WHERE id = 3"
        ),
        "UPDATE 1\na;b"
    );

    let backup = ok(&server, "BACKUP DATABASE defaultdb INTO 'nodelocal://1/x'");
    let cols: Vec<&str> = backup.split('|').collect();
    assert_eq!(cols.len(), 6, "{backup}");
    assert_eq!(cols[1], "succeeded", "{backup}");

    let backups = ok(&server, "SHOW BACKUPS IN 'nodelocal://1/x'");
    assert_eq!(backups.lines().count(), 1, "{backups}");

    let restore = ok(
        &server,
        "RESTORE DATABASE defaultdb FROM LATEST IN 'nodelocal://1/x' \
         WITH new_db_name = 'restored'",
    );
    assert!(restore.contains("|succeeded|"), "{restore}");
    assert_eq!(
        ok(
            &server,
            "SELECT id, owner, balance FROM restored.accounts ORDER BY id"
        ),
        "1|ann|100\n2|bo|250\n3|a;b|0"
    );
}

#[test]
fn errors_come_back_with_the_message_and_the_connection_goes_on() {
    if !have_psql("errors_come_back_with_the_message_and_the_connection_goes_on") {
        return;
    }
    let server = TestServer::start();
    let out = psql(&server, "root", None, "SELECT * FROM no_such_table");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"ERROR:  relation "no_such_table" does not exist"#),
        "{stderr}"
    );
    // Without ON_ERROR_STOP, psql goes on in the same connection after an error.
    let out = Command::new("psql")
        .args(["-X", "-w", "-A", "-t", "-h", "127.0.0.1"])
        .args([
            "-p",
            &server.addr.port().to_string(),
            "-U",
            "root",
            "-d",
            "defaultdb",
        ])
        .args(["-c", "SELECT nonsense FROM", "-c", "SELECT 41 + 1"])
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ERROR:  syntax error"), "{stderr}");
    assert_eq!(stdout.trim(), "42", "{stderr}");
    // The SQLSTATE reaches the client.
    let verbose = Command::new("psql")
        .args(["-X", "-w", "-h", "127.0.0.1", "-v", "VERBOSITY=verbose"])
        .args([
            "-p",
            &server.addr.port().to_string(),
            "-U",
            "root",
            "-d",
            "defaultdb",
        ])
        .args(["-c", "SELECT * FROM no_such_table"])
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(stderr.contains("42P01"), "{stderr}");
}

#[test]
fn users_with_passwords_log_in_and_wrong_passwords_do_not() {
    if !have_psql("users_with_passwords_log_in_and_wrong_passwords_do_not") {
        return;
    }
    let server = TestServer::start();
    ok(&server, "CREATE USER alice WITH PASSWORD 'al1ce-pw'");
    ok(&server, "CREATE USER nopw");
    ok(&server, "GRANT ALL ON DATABASE defaultdb TO alice");

    let good = psql(&server, "alice", Some("al1ce-pw"), "SELECT 7");
    assert!(good.status.success(), "{good:?}");
    assert_eq!(String::from_utf8_lossy(&good.stdout).trim(), "7");

    for (user, pw) in [
        ("alice", Some("wrong")),
        ("alice", None),
        ("nopw", Some("")),
        ("nosuchuser", Some("x")),
    ] {
        let bad = psql(&server, user, pw, "SELECT 7");
        assert_eq!(bad.status.code(), Some(2), "{user}: {bad:?}");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(
            stderr.contains("password authentication failed")
                || stderr.contains("no password supplied"),
            "{user}: {stderr}"
        );
    }

    // A user changes their own password; the old one stops working.
    let out = psql(
        &server,
        "alice",
        Some("al1ce-pw"),
        "ALTER USER alice WITH PASSWORD 'n3w-pw'",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        !psql(&server, "alice", Some("al1ce-pw"), "SELECT 1")
            .status
            .success()
    );
    assert!(
        psql(&server, "alice", Some("n3w-pw"), "SELECT 1")
            .status
            .success()
    );
}

#[test]
fn secrets_do_not_reach_the_server_logs() {
    if !have_psql("secrets_do_not_reach_the_server_logs") {
        return;
    }
    let server = TestServer::start();
    ok(&server, "CREATE TABLE t (id INT PRIMARY KEY)");
    ok(&server, "INSERT INTO t VALUES (1)");
    ok(&server, "CREATE USER carol WITH PASSWORD 'carol-pw-Zq7'");
    let r = ok(
        &server,
        "BACKUP DATABASE defaultdb INTO 'nodelocal://1/enc' \
         WITH encryption_passphrase = 'passphrase-Xk9'",
    );
    assert!(r.contains("|succeeded|"), "{r}");
    // A URI with a secret that fails (nothing listens on port 1): the
    // statement and its error are logged, the secret is not.
    let out = psql(
        &server,
        "root",
        None,
        "SHOW BACKUPS IN 's3://bucket/p?AWS_ACCESS_KEY_ID=AKID&\
         AWS_SECRET_ACCESS_KEY=aws-secret-Qm3&AWS_ENDPOINT=http://127.0.0.1:1&AWS_REGION=r'",
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(!stderr.contains("aws-secret-Qm3"), "{stderr}");

    let logs = LOGS.text();
    // The statements were logged (redacted) ...
    assert!(logs.contains("SHOW BACKUPS"), "{logs}");
    assert!(
        logs.contains("AKID"),
        "the redacted URI shows its key id: {logs}"
    );
    assert!(logs.contains("CREATE USER carol"), "{logs}");
    // ... and no secret is in them.
    for secret in ["carol-pw-Zq7", "passphrase-Xk9", "aws-secret-Qm3"] {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
    }
}
