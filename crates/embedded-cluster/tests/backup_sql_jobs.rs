//! End to end through `Session::execute`: detached jobs, SHOW JOB(S),
//! PAUSE / RESUME / CANCEL JOB, the deprecated `BACKUP .. TO` form, and
//! the `index_entries` of BACKUP and RESTORE results.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use embedded_cluster::{Session, Value};

mod support;
use support::{column, err, exec, open_with_backups as open};

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("not an int: {other:?}"),
    }
}

/// The status of job `id`, as `SHOW JOB` reports it.
fn status(s: &mut Session, id: i64) -> String {
    let r = exec(s, &format!("SHOW JOB {id}"));
    assert_eq!(r.rows.len(), 1, "{r:?}");
    match column(&r, 0, "status") {
        Value::String(s) => s.clone(),
        other => panic!("status {other:?}"),
    }
}

/// Polls `SHOW JOB` until the job reaches `want` (bounded: 120 s).
fn wait_for(s: &mut Session, id: i64, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = status(s, id);
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is {now}, still not {want}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn detached_backup_is_a_job_that_show_job_follows_to_success() {
    let (_dir, cluster) = open();
    let mut s = cluster.session("root").unwrap();
    exec(&mut s, "CREATE DATABASE d");
    exec(&mut s, "CREATE TABLE d.t (id INT PRIMARY KEY, v STRING)");
    exec(&mut s, "INSERT INTO d.t VALUES (1, 'a'), (2, 'b')");
    let r = exec(
        &mut s,
        "BACKUP DATABASE d INTO 'nodelocal://1/detached' WITH detached",
    );
    let names: Vec<&str> = r.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["job_id"]);
    let id = int(&r.rows[0][0]);
    wait_for(&mut s, id, "succeeded");
    let jobs = exec(&mut s, "SHOW JOBS");
    let row = jobs
        .rows
        .iter()
        .position(|r| r[0] == Value::Int(id))
        .unwrap();
    assert_eq!(
        column(&jobs, row, "job_type"),
        &Value::String("BACKUP".into())
    );
    let desc = format!("{:?}", column(&jobs, row, "description"));
    assert!(desc.contains("nodelocal://1/detached"), "{desc}");
    // The backup is complete: it restores.
    exec(
        &mut s,
        "RESTORE DATABASE d FROM LATEST IN 'nodelocal://1/detached' WITH new_db_name = 'd2'",
    );
    let n = exec(&mut s, "SELECT count(*) FROM d2.t");
    assert_eq!(n.scalar(), Some(&Value::Int(2)));
    // Control statements on a finished job say why they cannot apply.
    let e = err(&mut s, &format!("PAUSE JOB {id}"));
    assert!(e.contains("succeeded"), "{e}");
    let e = err(&mut s, "SHOW JOB 123456789");
    assert!(e.contains("123456789"), "{e}");
}

#[test]
fn a_job_that_keeps_failing_pauses_itself_then_resumes_and_cancels_through_sql() {
    let (_dir, cluster) = open();
    let mut s = cluster.session("root").unwrap();
    exec(&mut s, "CREATE DATABASE d");
    exec(&mut s, "CREATE TABLE d.t (id INT PRIMARY KEY)");
    exec(&mut s, "INSERT INTO d.t VALUES (1)");
    // Nothing listens on port 1 of the loopback address: every write fails
    // transiently, so the job retries and then pauses itself.
    let secret = "dead-endpoint-secret-9f3b";
    let uri = format!(
        "s3://bucket/path?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY={secret}\
         &AWS_ENDPOINT=http://127.0.0.1:1&AWS_REGION=us-east-1"
    );
    let r = s.execute(&format!("BACKUP DATABASE d INTO '{uri}' WITH detached"));
    let id = match r {
        Ok(r) => int(&r.rows[0][0]),
        Err(e) => panic!("a detached backup starts a job even if storage is down: {e}"),
    };
    wait_for(&mut s, id, "paused");
    let one = exec(&mut s, &format!("SHOW JOB {id}"));
    let text = format!("{one:?}");
    assert!(!text.contains(secret), "{text}");
    assert!(
        text.contains("*****") || text.contains("redacted"),
        "{text}"
    );

    exec(&mut s, &format!("RESUME JOB {id}"));
    let after = status(&mut s, id);
    assert!(after == "running" || after == "paused", "{after}");
    exec(&mut s, &format!("CANCEL JOB {id}"));
    wait_for(&mut s, id, "canceled");
    let e = err(&mut s, &format!("RESUME JOB {id}"));
    assert!(e.contains("canceled"), "{e}");
    // No statement output anywhere carries the secret.
    let jobs = exec(&mut s, "SHOW JOBS");
    assert!(!format!("{jobs:?}").contains(secret));
}

#[test]
fn deprecated_backup_to_points_to_backup_into() {
    let (_dir, cluster) = open();
    let mut s = cluster.session("root").unwrap();
    exec(&mut s, "CREATE DATABASE d");
    let e = err(&mut s, "BACKUP DATABASE d TO 'nodelocal://1/old'");
    assert!(e.contains("BACKUP") && e.contains("INTO"), "{e}");
    let e = err(&mut s, "BACKUP DATABASE d INTOO 'nodelocal://1/x'");
    assert!(
        e.contains("at or near \"intoo\"") || e.contains("INTOO"),
        "{e}"
    );
}

#[test]
fn secondary_index_keys_count_as_index_entries_in_backup_and_restore() {
    let (_dir, cluster) = open();
    let mut s = cluster.session("root").unwrap();
    exec(&mut s, "CREATE DATABASE d");
    exec(&mut s, "CREATE TABLE d.t (id INT PRIMARY KEY, v STRING)");
    exec(&mut s, "CREATE INDEX t_v ON d.t (v)");
    for i in 0..10 {
        exec(&mut s, &format!("INSERT INTO d.t VALUES ({i}, 'v{i}')"));
    }
    let b = exec(&mut s, "BACKUP DATABASE d INTO 'nodelocal://1/idx'");
    assert_eq!(int(column(&b, 0, "rows")), 10, "{b:?}");
    assert_eq!(int(column(&b, 0, "index_entries")), 10, "{b:?}");
    let r = exec(
        &mut s,
        "RESTORE DATABASE d FROM LATEST IN 'nodelocal://1/idx' WITH new_db_name = 'e'",
    );
    assert_eq!(int(column(&r, 0, "rows")), 10, "{r:?}");
    assert_eq!(int(column(&r, 0, "index_entries")), 10, "{r:?}");
    // The restored index answers lookups.
    let n = exec(&mut s, "SELECT count(*) FROM e.t WHERE v = 'v3'");
    assert_eq!(n.scalar(), Some(&Value::Int(1)));
}
