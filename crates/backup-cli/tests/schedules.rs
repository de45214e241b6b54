//! Scheduled backups through `backup-cli sql`: a schedule created with
//! `first_run = 'now'` runs its first backup before the command ends, and
//! the job is shown as the schedule's in a later invocation.

#![allow(clippy::unwrap_used)]

mod support;

use support::sql;

#[test]
fn a_schedule_with_first_run_now_takes_its_first_backup() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    sql(
        s,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.t (id INT PRIMARY KEY, v STRING)",
            "INSERT INTO shop.t VALUES (1, 'a'), (2, 'b')",
        ],
    )
    .ok();
    let created = sql(
        s,
        &["CREATE SCHEDULE nightly FOR BACKUP DATABASE shop \
           INTO 'nodelocal://1/sched' \
           WITH encryption_passphrase = 'sched-secret-77' \
           RECURRING '@daily' FULL BACKUP ALWAYS \
           WITH SCHEDULE OPTIONS first_run = 'now'"],
    )
    .ok();
    let mut lines = created.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("schedule_id\tlabel\tstatus\tfirst_run\tschedule\tbackup_stmt"),
        "{}",
        created.stdout
    );
    let row: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let schedule_id = row[0].to_string();
    assert_eq!(row[1], "nightly");
    assert_eq!(row[4], "@daily");
    assert!(
        !created.all().contains("sched-secret-77"),
        "{}",
        created.all()
    );
    // The command ended only after the due backup did (whether its exit
    // pass or the background scheduler started it): the next invocation
    // finds the job succeeded.
    assert!(!created.stderr.contains("failed"), "{}", created.stderr);

    let jobs = sql(s, &["SHOW JOBS"]).ok();
    let header: Vec<&str> = jobs.stdout.lines().next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let job = jobs
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|r| r[col("schedule_id")] == schedule_id)
        .unwrap_or_else(|| panic!("no job of schedule {schedule_id}:\n{}", jobs.stdout));
    assert_eq!(job[col("status")], "succeeded", "{}", jobs.stdout);
    assert_eq!(job[col("job_type")], "BACKUP");
    assert!(!jobs.all().contains("sched-secret-77"));

    // The backup is real: it restores.
    sql(
        s,
        &[
            "RESTORE DATABASE shop FROM LATEST IN 'nodelocal://1/sched' \
           WITH new_db_name = 'shop2', encryption_passphrase = 'sched-secret-77'",
        ],
    )
    .ok();
    let rows = sql(s, &["SELECT id, v FROM shop2.t ORDER BY id"]).ok();
    assert_eq!(rows.stdout, "id\tv\n1\ta\n2\tb\n");

    // The schedule's next run is a day away: nothing more is due.
    let shown = sql(s, &[&format!("SHOW SCHEDULE {schedule_id}")]).ok();
    assert!(shown.stdout.contains("nightly"), "{}", shown.stdout);
    assert!(!shown.stderr.contains("is due"), "{}", shown.stderr);
}
