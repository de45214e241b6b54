//! Scheduled backups end to end on a 3-node cluster: `CREATE SCHEDULE`
//! through sessions, the scheduler ticked by hand on the cluster's clock
//! moved forward through simulated weeks, restores of what it wrote.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use backup_exec::schedule::{BackupSchedule, ScheduleKind, ScheduleStore, TickReport};
use backup_exec::{Catalog, JobStatus, JobStore};
use backup_format::Timestamp;
use embedded_cluster::{Cluster, QueryResult, Scheduler, Session, Value, keys};

const SECOND: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SECOND;
const DAY: i64 = 24 * HOUR;
/// Tuesday 2031-01-07 00:30:00 UTC, where every simulation starts.
const T0: i64 = 1_925_512_200 * SECOND;

fn open() -> (tempfile::TempDir, Cluster, Scheduler) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::open_default(dir.path()).unwrap();
    let scheduler = cluster.scheduler().unwrap();
    let mut s = cluster.session("root").unwrap();
    exec(&mut s, "CREATE DATABASE shop");
    exec(
        &mut s,
        "CREATE TABLE shop.items (id INT PRIMARY KEY, v STRING)",
    );
    exec(&mut s, "INSERT INTO shop.items VALUES (0, 'start')");
    jump_to(&cluster, T0);
    (dir, cluster, scheduler)
}

fn exec(s: &mut Session, sql: &str) -> QueryResult {
    match s.execute(sql) {
        Ok(r) => r,
        Err(e) => panic!("{sql}: {e}"),
    }
}

fn err(s: &mut Session, sql: &str) -> String {
    match s.execute(sql) {
        Ok(r) => panic!("{sql} succeeded: {r:?}"),
        Err(e) => e.to_string(),
    }
}

/// Moves the cluster's clock to `wall` (nanoseconds; it must be ahead).
fn jump_to(c: &Cluster, wall: i64) {
    let now = c.now().unwrap().wall;
    assert!(wall > now, "the clock never goes back");
    c.advance_clock(Duration::from_nanos((wall - now) as u64))
        .unwrap();
}

/// Ticks, then waits for every job the tick started.
fn tick(sched: &Scheduler) -> TickReport {
    let report = sched.tick().unwrap();
    assert!(report.errors.is_empty(), "{report:?}");
    for (_, job) in &report.started {
        sched.wait_for_job(*job).unwrap();
    }
    report
}

fn schedules(c: &Cluster) -> Vec<BackupSchedule> {
    ScheduleStore::list(c).unwrap()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

fn fingerprint(s: &mut Session, table: &str) -> Vec<Vec<Value>> {
    exec(
        s,
        &format!("SHOW EXPERIMENTAL_FINGERPRINTS FROM TABLE {table}"),
    )
    .rows
}

#[test]
fn create_schedule_returns_one_row_per_schedule_with_secrets_redacted() {
    let (_d, c, _sched) = open();
    let mut s = c.session("root").unwrap();
    let uri = "s3://bucket/coll?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY=sekrit";
    let r = exec(
        &mut s,
        &format!(
            "CREATE SCHEDULE nightly FOR BACKUP DATABASE shop INTO '{uri}' \
             WITH encryption_passphrase = 'hush' RECURRING '@daily' \
             WITH SCHEDULE OPTIONS first_run = 'now', ignore_existing_backups"
        ),
    );
    assert_eq!(r.tag, "CREATE SCHEDULE FOR BACKUP");
    let names: Vec<&str> = r.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "schedule_id",
            "label",
            "status",
            "first_run",
            "schedule",
            "backup_stmt"
        ]
    );
    assert_eq!(r.rows.len(), 2, "{r:?}");
    let (inc, full) = (&r.rows[0], &r.rows[1]);
    assert_eq!(text(&inc[1]), "nightly");
    assert_eq!(
        text(&inc[2]),
        "PAUSED: Waiting for initial backup to complete"
    );
    assert_eq!(inc[3], Value::Null);
    assert_eq!(text(&inc[4]), "@daily");
    assert!(text(&inc[5]).contains("INTO LATEST IN"), "{inc:?}");
    assert_eq!(text(&full[2]), "ACTIVE");
    assert_ne!(full[3], Value::Null);
    // Daily incrementals get weekly full backups.
    assert_eq!(text(&full[4]), "@weekly");
    for row in &r.rows {
        let stmt = text(&row[5]);
        assert!(stmt.contains("detached"), "{stmt}");
        assert!(!stmt.contains("sekrit") && !stmt.contains("hush"), "{stmt}");
    }
    let all = format!("{:?}", exec(&mut s, "SHOW SCHEDULES"));
    assert!(!all.contains("sekrit") && !all.contains("hush"), "{all}");

    // Hourly incrementals get daily fulls; FULL BACKUP ALWAYS makes one schedule.
    let r = exec(
        &mut s,
        "CREATE SCHEDULE hourly FOR BACKUP DATABASE shop INTO 'nodelocal://1/h' RECURRING '@hourly'",
    );
    assert_eq!(text(&r.rows[1][4]), "@daily");
    let r = exec(
        &mut s,
        "CREATE SCHEDULE always FOR BACKUP TABLE shop.items INTO 'nodelocal://1/a' \
         RECURRING '0 3 * * *' FULL BACKUP ALWAYS",
    );
    assert_eq!(r.rows.len(), 1);
    // The first run of a schedule without first_run is its next cron time.
    let next = match &r.rows[0][3] {
        Value::Decimal(d) => d.clone(),
        other => panic!("{other:?}"),
    };
    // 03:00 the same day, 2.5 hours after T0.
    assert!(
        next.starts_with(&(T0 + 9000 * SECOND).to_string()),
        "{next}"
    );
    // IF NOT EXISTS with a taken label does nothing.
    let r = exec(
        &mut s,
        "CREATE SCHEDULE IF NOT EXISTS always FOR BACKUP INTO 'nodelocal://1/x' RECURRING '@daily'",
    );
    assert!(r.rows.is_empty());
    assert_eq!(schedules(&c).len(), 5);

    // Bad input says what to fix.
    let e = err(
        &mut s,
        "CREATE SCHEDULE bad FOR BACKUP INTO 'nodelocal://1/x' RECURRING 'every day'",
    );
    assert!(e.contains("cron expression"), "{e}");
    let e = err(
        &mut s,
        "CREATE SCHEDULE bad FOR BACKUP INTO 'nodelocal://1/x' RECURRING '@daily' \
         WITH SCHEDULE OPTIONS first_run = 'soon'",
    );
    assert!(e.contains("first_run"), "{e}");
    // A user without privileges on the targets cannot schedule their backup.
    exec(&mut s, "CREATE USER alice");
    let mut alice = c.session("alice").unwrap();
    let e = err(
        &mut alice,
        "CREATE SCHEDULE mine FOR BACKUP DATABASE shop INTO 'nodelocal://1/x' RECURRING '@daily'",
    );
    assert!(e.contains("privilege") || e.contains("admin"), "{e}");
    assert_eq!(schedules(&c).len(), 5);
}

/// The id of the table `shop.items`.
fn items_id(c: &Cluster) -> u64 {
    Catalog::descriptors(c, c.now().unwrap())
        .unwrap()
        .into_iter()
        .find(|d| d.name == "items")
        .unwrap()
        .id
}

fn column(r: &QueryResult, name: &str) -> usize {
    r.columns.iter().position(|(n, _)| n == name).unwrap()
}

fn kind_of(c: &Cluster, id: u64) -> ScheduleKind {
    ScheduleStore::get(c, id).unwrap().unwrap().details.kind
}

fn the(c: &Cluster, kind: ScheduleKind) -> BackupSchedule {
    schedules(c)
        .into_iter()
        .find(|s| s.details.kind == kind)
        .unwrap()
}

fn create(s: &mut Session, sql: &str) -> u64 {
    let r = exec(s, sql);
    match r.rows.last().unwrap()[0] {
        Value::Int(id) => id as u64,
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn daily_incrementals_and_weekly_fulls_over_three_weeks_are_each_restorable() {
    let (_d, c, sched) = open();
    let mut s = c.session("root").unwrap();
    let uri = "nodelocal://1/weekly";
    // Incrementals every day at noon; the full cadence defaults to weekly
    // (Sundays at midnight), and the first full backup runs now.
    exec(
        &mut s,
        &format!(
            "CREATE SCHEDULE weekly FOR BACKUP DATABASE shop INTO '{uri}' \
             RECURRING '0 12 * * *' WITH SCHEDULE OPTIONS first_run = 'now'"
        ),
    );
    let (mut fulls, mut incrementals) = (0, 0);
    // The data as of the newest backup of each chain.
    let mut chains: Vec<Vec<Vec<Value>>> = Vec::new();
    // Every 6 hours for three weeks, with a write before each tick.
    for step in 0..=84i64 {
        if step > 0 {
            jump_to(&c, T0 + step * 6 * HOUR);
        }
        exec(
            &mut s,
            &format!(
                "INSERT INTO shop.items VALUES ({}, 'step {step}')",
                step + 1
            ),
        );
        let report = tick(&sched);
        assert!(report.failed_to_start.is_empty(), "{report:?}");
        for (id, job) in report.started {
            let record = JobStore::get(&c, job).unwrap().unwrap();
            assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
            assert_eq!(record.created_by_schedule, Some(id));
            let fp = fingerprint(&mut s, "shop.items");
            match kind_of(&c, id) {
                ScheduleKind::Full => {
                    fulls += 1;
                    chains.push(fp);
                }
                ScheduleKind::Incremental => {
                    incrementals += 1;
                    *chains.last_mut().unwrap() = fp;
                }
            }
        }
    }
    tick(&sched);
    // The first full, then one each Sunday; an incremental every noon.
    assert_eq!((fulls, incrementals), (4, 21));
    let backups = exec(&mut s, &format!("SHOW BACKUPS IN '{uri}'"));
    let subdirs: Vec<String> = backups.rows.iter().map(|r| text(&r[0])).collect();
    assert_eq!(subdirs.len(), 4, "{subdirs:?}");
    let mut layers = Vec::new();
    for (i, sub) in subdirs.iter().enumerate() {
        let show = exec(&mut s, &format!("SHOW BACKUP FROM '{sub}' IN '{uri}'"));
        let name = column(&show, "object_name");
        layers.push(
            show.rows
                .iter()
                .filter(|r| r[name] == Value::String("items".into()))
                .count(),
        );
        // Each chain restores to the data of its newest backup.
        exec(
            &mut s,
            &format!("RESTORE DATABASE shop FROM '{sub}' IN '{uri}' WITH new_db_name = 'r{i}'"),
        );
        assert_eq!(
            fingerprint(&mut s, &format!("r{i}.items")),
            chains[i],
            "{sub}"
        );
    }
    // Tuesday to Saturday, then whole weeks from Sunday, then Sunday and Monday.
    assert_eq!(layers, [6, 8, 8, 3]);
    let jobs = exec(&mut s, "SHOW JOBS");
    let by = column(&jobs, "schedule_id");
    let kind = column(&jobs, "job_type");
    let scheduled = jobs
        .rows
        .iter()
        .filter(|r| r[kind] == Value::String("BACKUP".into()))
        .inspect(|r| assert_ne!(r[by], Value::Null, "{r:?}"))
        .count();
    assert_eq!(scheduled, 25);
    // Idle between runs, the pair holds exactly one protection: its chain's.
    let chain = the(&c, ScheduleKind::Full).state.chain.unwrap();
    let protections = c.protections().unwrap();
    assert_eq!(protections.len(), 1, "{protections:?}");
    assert_eq!(protections[0].ts, chain.at);
}

#[test]
fn pause_resume_and_drop() {
    let (_d, c, sched) = open();
    let mut s = c.session("root").unwrap();
    let id = create(
        &mut s,
        "CREATE SCHEDULE p FOR BACKUP DATABASE shop INTO 'nodelocal://1/p' \
         RECURRING '@hourly' FULL BACKUP ALWAYS WITH SCHEDULE OPTIONS first_run = 'now'",
    );
    let r = exec(&mut s, &format!("PAUSE SCHEDULE {id}"));
    assert_eq!(r.tag, "PAUSE SCHEDULES");
    let one = exec(&mut s, &format!("SHOW SCHEDULE {id}"));
    assert_eq!(one.rows.len(), 1);
    assert_eq!(
        text(&one.rows[0][column(&one, "schedule_status")]),
        "PAUSED"
    );
    assert_eq!(one.rows[0][column(&one, "next_run")], Value::Null);
    assert_eq!(exec(&mut s, "SHOW PAUSED SCHEDULES").rows.len(), 1);
    assert_eq!(exec(&mut s, "SHOW RUNNING SCHEDULES").rows.len(), 0);
    jump_to(&c, T0 + 2 * HOUR);
    assert!(tick(&sched).started.is_empty(), "a paused schedule ran");

    // Only its owner or an admin may touch it; others do not see it.
    exec(&mut s, "CREATE USER alice");
    let mut alice = c.session("alice").unwrap();
    assert!(err(&mut alice, &format!("RESUME SCHEDULE {id}")).contains("does not own"));
    assert!(exec(&mut alice, "SHOW SCHEDULES").rows.is_empty());
    assert!(err(&mut alice, &format!("SHOW SCHEDULE {id}")).contains("does not exist"));

    exec(&mut s, &format!("RESUME SCHEDULE {id}"));
    let one = exec(&mut s, &format!("SHOW SCHEDULE {id}"));
    assert_eq!(
        text(&one.rows[0][column(&one, "schedule_status")]),
        "ACTIVE"
    );
    assert_ne!(one.rows[0][column(&one, "next_run")], Value::Null);
    jump_to(&c, T0 + 3 * HOUR);
    let report = tick(&sched);
    assert_eq!(report.started.len(), 1);
    let jobs = exec(&mut s, "SHOW JOBS");
    assert_eq!(
        jobs.rows[0][column(&jobs, "schedule_id")],
        Value::Int(id as i64)
    );

    let r = exec(&mut s, &format!("DROP SCHEDULE {id}"));
    assert_eq!(r.tag, "DROP SCHEDULES");
    assert!(err(&mut s, &format!("SHOW SCHEDULE {id}")).contains("does not exist"));
    assert!(err(&mut s, &format!("DROP SCHEDULE {id}")).contains("does not exist"));
    jump_to(&c, T0 + 6 * HOUR);
    assert!(tick(&sched).started.is_empty(), "a dropped schedule ran");
}

#[test]
fn failure_policies_retry_reschedule_and_pause() {
    let (_d, c, sched) = open();
    let mut s = c.session("root").unwrap();
    let mut ids = Vec::new();
    for policy in ["retry", "reschedule", "pause"] {
        ids.push(create(
            &mut s,
            &format!(
                "CREATE SCHEDULE {policy} FOR BACKUP DATABASE shop INTO 'nodelocal://1/{policy}' \
                 RECURRING '@daily' FULL BACKUP ALWAYS \
                 WITH SCHEDULE OPTIONS first_run = 'now', on_execution_failure = '{policy}'"
            ),
        ));
    }
    // The destinations break: a file where each collection's directory goes.
    for policy in ["retry", "reschedule", "pause"] {
        let path = c.node_dir(1).unwrap().join(policy);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::write(&path, b"not a directory").unwrap();
    }
    let first = tick(&sched);
    assert_eq!(
        first.started.len() + first.failed_to_start.len(),
        3,
        "{first:?}"
    );
    tick(&sched);
    let now = c.now().unwrap();
    let get = |id: u64| ScheduleStore::get(&c, id).unwrap().unwrap();
    let (retry, reschedule, pause) = (get(ids[0]), get(ids[1]), get(ids[2]));
    // retry: again a minute later.
    let next = retry.next_run.unwrap();
    assert!(
        next > now && next.wall <= now.wall + 61 * SECOND,
        "{retry:?}"
    );
    assert!(!retry.paused);
    // reschedule: at the next planned run, midnight.
    assert_eq!(
        reschedule.next_run,
        Some(Timestamp::from_wall(T0 - 1800 * SECOND + DAY))
    );
    assert!(!reschedule.paused);
    // pause: paused, saying why and how to go on.
    assert!(pause.paused);
    assert!(pause.state.status.contains("RESUME SCHEDULE"), "{pause:?}");
    let shown = exec(&mut s, &format!("SHOW SCHEDULE {}", ids[2]));
    assert_eq!(
        text(&shown.rows[0][column(&shown, "schedule_status")]),
        "PAUSED"
    );

    jump_to(&c, now.wall + 2 * 60 * SECOND);
    let again = tick(&sched);
    let ran: Vec<u64> = again
        .started
        .iter()
        .map(|(id, _)| *id)
        .chain(again.failed_to_start.iter().map(|(id, _)| *id))
        .collect();
    assert_eq!(ran, [ids[0]], "only the retrying schedule runs again");
}

#[test]
fn previous_running_policies_wait_skip_and_start() {
    let (_d, c, sched) = open();
    let mut s = c.session("root").unwrap();
    let mut ids = Vec::new();
    for policy in ["wait", "skip", "start"] {
        ids.push(create(
            &mut s,
            &format!(
                "CREATE SCHEDULE {policy} FOR BACKUP DATABASE shop INTO 'nodelocal://1/{policy}' \
                 RECURRING '@hourly' FULL BACKUP ALWAYS \
                 WITH SCHEDULE OPTIONS first_run = 'now', on_previous_running = '{policy}'"
            ),
        ));
    }
    // A gate: an open transaction's intent holds every backup of the table
    // (the job requeues the span until the intent goes, far below the one
    // minute after which it would push the transaction).
    let gate = c.begin().unwrap();
    gate.put(&keys::row_key(items_id(&c), 1, b"gate"), b"x")
        .unwrap();
    let first = sched.tick().unwrap();
    assert_eq!(first.started.len(), 3, "{first:?}");
    jump_to(&c, T0 + HOUR);
    let second = sched.tick().unwrap();
    let started: Vec<u64> = second.started.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        started,
        [ids[2]],
        "only 'start' starts beside a running job"
    );
    let get = |id: u64| ScheduleStore::get(&c, id).unwrap().unwrap();
    let now = c.now().unwrap();
    assert!(get(ids[0]).next_run.unwrap() <= now, "wait stays due");
    assert!(get(ids[0]).state.status.contains("waiting"));
    assert!(get(ids[1]).next_run.unwrap() > now, "skip moves on");
    assert!(get(ids[1]).state.status.contains("skipped"));
    assert_eq!(get(ids[2]).state.running.len(), 2);

    gate.abort().unwrap();
    for (_, job) in first.started.iter().chain(&second.started) {
        assert_eq!(
            sched.wait_for_job(*job).unwrap().status,
            JobStatus::Succeeded
        );
    }
    // The waiting schedule runs as soon as its job is done; the others wait
    // for their next hour.
    let third = tick(&sched);
    let started: Vec<u64> = third.started.iter().map(|(id, _)| *id).collect();
    assert_eq!(started, [ids[0]]);
}

#[test]
fn gc_never_passes_the_protected_chain() {
    let (_d, c, sched) = open();
    let mut s = c.session("root").unwrap();
    c.set_gc_ttl(items_id(&c), Duration::from_secs(3600))
        .unwrap();
    let span = keys::table_span(items_id(&c));
    exec(
        &mut s,
        "CREATE SCHEDULE g FOR BACKUP DATABASE shop INTO 'nodelocal://1/g' \
         RECURRING '0 12 * * *' FULL BACKUP '@weekly' WITH SCHEDULE OPTIONS first_run = 'now'",
    );
    tick(&sched);
    tick(&sched);
    let e1 = the(&c, ScheduleKind::Full).state.chain.unwrap().at;
    // The incremental misses three days (paused), while rows change and GC runs.
    let inc = the(&c, ScheduleKind::Incremental).id;
    exec(&mut s, &format!("PAUSE SCHEDULE {inc}"));
    for day in 1..=3 {
        exec(
            &mut s,
            &format!("UPDATE shop.items SET v = 'day {day}' WHERE id = 0"),
        );
        jump_to(&c, T0 + day * DAY);
        c.run_gc().unwrap();
        let threshold = c.gc_threshold(&span);
        assert!(threshold < e1, "GC passed the chain: {threshold} >= {e1}");
    }
    exec(&mut s, &format!("RESUME SCHEDULE {inc}"));
    jump_to(&c, T0 + 3 * DAY + 12 * HOUR);
    let report = tick(&sched);
    let (_, job) = report.started[0];
    // The incremental starts where the chain ended, still readable.
    let record = JobStore::get(&c, job).unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
    tick(&sched);
    let e2 = the(&c, ScheduleKind::Full).state.chain.unwrap().at;
    assert!(e2 > e1);
    // The chain moved: the older protection is gone, GC may pass e1 now.
    let protections = c.protections().unwrap();
    assert_eq!(protections.len(), 1, "{protections:?}");
    assert_eq!(protections[0].ts, e2);
    jump_to(&c, T0 + 4 * DAY);
    c.run_gc().unwrap();
    let threshold = c.gc_threshold(&span);
    assert!(threshold >= e1 && threshold < e2, "{threshold}");
    let mut restored = c.session("root").unwrap();
    exec(
        &mut restored,
        "RESTORE DATABASE shop FROM LATEST IN 'nodelocal://1/g' WITH new_db_name = 'back'",
    );
    assert_eq!(
        fingerprint(&mut restored, "back.items"),
        fingerprint(&mut restored, "shop.items")
    );
    // Dropping the pair lets go of its chain.
    for sched in schedules(&c) {
        exec(&mut s, &format!("DROP SCHEDULE {}", sched.id));
    }
    assert!(c.protections().unwrap().is_empty());
}

#[test]
fn schedules_survive_reopening_the_cluster() {
    let (dir, c, sched) = open();
    let mut s = c.session("root").unwrap();
    exec(
        &mut s,
        "CREATE SCHEDULE r FOR BACKUP DATABASE shop INTO 'nodelocal://1/r' \
         RECURRING '0 12 * * *' WITH SCHEDULE OPTIONS first_run = 'now'",
    );
    tick(&sched);
    tick(&sched);
    let before = schedules(&c);
    assert!(
        !the(&c, ScheduleKind::Incremental).paused,
        "the full resumed it"
    );
    drop(s);
    drop(sched);
    c.disable_backup_statements();
    drop(c);

    let c = Cluster::open_default(dir.path()).unwrap();
    let sched = c.scheduler().unwrap();
    assert_eq!(schedules(&c), before);
    let chain = the(&c, ScheduleKind::Full).state.chain.unwrap();
    assert_eq!(c.protections().unwrap()[0].ts, chain.at);
    jump_to(&c, T0 + 12 * HOUR + 60 * SECOND);
    let report = tick(&sched);
    assert_eq!(report.started.len(), 1);
    let (id, job) = report.started[0];
    assert_eq!(kind_of(&c, id), ScheduleKind::Incremental);
    assert_eq!(
        sched.wait_for_job(job).unwrap().status,
        JobStatus::Succeeded
    );
    drop(sched);
    c.disable_backup_statements();
}

#[test]
fn a_collection_with_backups_needs_ignore_existing_backups() {
    let (_d, c, _sched) = open();
    let mut s = c.session("root").unwrap();
    exec(&mut s, "BACKUP DATABASE shop INTO 'nodelocal://1/taken'");
    let e = err(
        &mut s,
        "CREATE SCHEDULE t FOR BACKUP DATABASE shop INTO 'nodelocal://1/taken' RECURRING '@daily'",
    );
    assert!(e.contains("ignore_existing_backups"), "{e}");
    assert!(schedules(&c).is_empty());
    exec(
        &mut s,
        "CREATE SCHEDULE t FOR BACKUP DATABASE shop INTO 'nodelocal://1/taken' RECURRING '@daily' \
         WITH SCHEDULE OPTIONS ignore_existing_backups",
    );
    assert_eq!(schedules(&c).len(), 2);
}

#[test]
fn recurring_never_runs_once() {
    let (_d, c, sched) = open();
    let mut s = c.session("root").unwrap();
    let r = exec(
        &mut s,
        "CREATE SCHEDULE once FOR BACKUP DATABASE shop INTO 'nodelocal://1/once' \
         RECURRING NEVER WITH SCHEDULE OPTIONS first_run = 'now'",
    );
    assert_eq!(r.rows.len(), 1);
    assert_eq!(text(&r.rows[0][4]), "NEVER");
    assert_eq!(tick(&sched).started.len(), 1);
    tick(&sched);
    let once = schedules(&c).remove(0);
    assert_eq!(once.next_run, None);
    assert!(once.state.last_success.is_some());
    jump_to(&c, T0 + 30 * DAY);
    assert!(tick(&sched).started.is_empty());
}

#[test]
fn the_background_scheduler_runs_due_schedules_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    let handle = c.start_scheduler_every(Duration::from_millis(20)).unwrap();
    let mut s = c.session("root").unwrap();
    exec(&mut s, "CREATE DATABASE shop");
    exec(&mut s, "CREATE TABLE shop.items (id INT PRIMARY KEY)");
    exec(
        &mut s,
        "CREATE SCHEDULE bg FOR BACKUP DATABASE shop INTO 'nodelocal://1/bg' \
         RECURRING '@daily' FULL BACKUP ALWAYS WITH SCHEDULE OPTIONS first_run = 'now'",
    );
    // Bounded wait for the thread's tick to start and finish the backup.
    let mut succeeded = false;
    for _ in 0..1000 {
        let jobs = JobStore::list(&c).unwrap();
        if jobs.iter().any(|j| j.status == JobStatus::Succeeded) {
            succeeded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(succeeded, "{:?}", handle.scheduler().last_error());
    drop(handle);
    // Stopped: nothing ticks any more, even when the next run is due.
    jump_to(&c, c.now().unwrap().wall + 2 * DAY);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(JobStore::list(&c).unwrap().len(), 1);
    c.disable_backup_statements();
}
