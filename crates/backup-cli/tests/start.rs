//! `backup-cli start`: the real `psql` runs statements, BACKUP and RESTORE
//! included, against the served store; SIGTERM stops the server and the
//! data persists for the next command.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use support::sql;

/// The `psql` binary, or `None` (then the test is skipped, unless
/// `BACKUP_TEST_REQUIRE_SERVERS=1` says every server and tool must be there).
fn psql() -> Option<&'static str> {
    let found = Command::new("psql")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("psql");
    }
    assert!(
        std::env::var("BACKUP_TEST_REQUIRE_SERVERS").as_deref() != Ok("1"),
        "psql is not installed (apt-get install postgresql-client; `cargo xtask test` does it)"
    );
    eprintln!("skipped: psql is not installed");
    None
}

/// A running `backup-cli start`; stopped with SIGTERM when dropped.
struct Server {
    child: Child,
    port: String,
}

impl Server {
    fn start(store: &std::path::Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_backup-cli"))
            .args(["start", "--store"])
            .arg(store)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"));
        let port = addr.rsplit(':').next().unwrap().to_string();
        Server { child, port }
    }

    /// `psql -A -t -c <sql>` as root: (exit code, stdout, stderr).
    fn psql(&self, bin: &str, statement: &str) -> (i32, String, String) {
        let out = Command::new(bin)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port,
                "-U",
                "root",
                "-d",
                "defaultdb",
            ])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement])
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

#[test]
fn psql_runs_backup_and_restore_against_backup_cli_start() {
    let Some(bin) = psql() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let ok = |statement: &str| {
        let (code, out, err) = server.psql(bin, statement);
        assert_eq!(code, 0, "{statement}: {err}");
        out
    };
    ok("CREATE TABLE t (id INT PRIMARY KEY, v STRING)");
    ok("INSERT INTO t VALUES (1, 'one'), (2, 'two')");
    assert_eq!(ok("SELECT v FROM t ORDER BY id"), "one\ntwo\n");
    let backup = ok("BACKUP DATABASE defaultdb INTO 'nodelocal://1/served'");
    assert!(backup.contains("|succeeded|"), "{backup}");
    let listed = ok("SHOW BACKUPS IN 'nodelocal://1/served'");
    assert_eq!(listed.lines().count(), 1, "{listed}");
    ok(
        "RESTORE DATABASE defaultdb FROM LATEST IN 'nodelocal://1/served' \
        WITH new_db_name = 'restored'",
    );
    assert_eq!(ok("SELECT v FROM restored.t ORDER BY id"), "one\ntwo\n");
    let (code, _, err) = server.psql(bin, "BACKUP DATABASE defaultdb INTO 'http://127.0.0.1/x'");
    assert_ne!(code, 0);
    assert!(err.contains("ERROR"), "{err}");

    let status = server.stop();
    assert!(
        status.success(),
        "SIGTERM stops the server cleanly: {status}"
    );
    // The store is released and keeps the data.
    let rows = sql(dir.path(), &["SELECT count(*) FROM restored.t"]).ok();
    assert_eq!(rows.stdout, "count\n2\n");
}
