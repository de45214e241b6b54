//! Jobs and schedules as MVCC rows of system tables 5 and 6: the schedule
//! API, persistence, atomic updates, reads as of a time and export of the
//! system spans.
#![allow(clippy::unwrap_used)]

use backup_exec::{
    ExportRequest, HostError, IntentPolicy, JobKind, JobRecord, JobStatus, JobStore, KvSource,
};
use backup_format::Timestamp;
use embedded_cluster::catalog::{JOBS_TABLE_ID, SCHEDULES_TABLE_ID, system_spans};
use embedded_cluster::{Cluster, ClusterError, ScheduleRecord, keys};

fn job(description: &str) -> JobRecord {
    JobRecord {
        id: 0,
        kind: JobKind::Backup,
        description: description.into(),
        user: "root".into(),
        status: JobStatus::Running,
        created: Timestamp::from_wall(5),
        started: None,
        finished: None,
        fraction_completed: 0.0,
        error: None,
        payload: vec![9],
        progress: Vec::new(),
        created_by_schedule: None,
    }
}

fn schedule(label: &str) -> ScheduleRecord {
    ScheduleRecord {
        id: 0,
        label: label.into(),
        owner: "root".into(),
        schedule_expr: "@daily".into(),
        next_run: Some(Timestamp::from_wall(1_000)),
        paused: false,
        payload: b"BACKUP INTO 'nodelocal://1/b'".to_vec(),
        state: Vec::new(),
    }
}

#[test]
fn schedules_create_update_list_drop_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c);
    {
        let cl = Cluster::open_default(dir.path()).unwrap();
        assert_eq!(cl.schedules().unwrap(), vec![]);
        a = cl.create_schedule(&schedule("nightly")).unwrap();
        b = cl.create_schedule(&schedule("hourly")).unwrap();
        c = cl.create_schedule(&schedule("doomed")).unwrap();
        assert!(a < b && b < c);
        let got = cl.schedule(a).unwrap().unwrap();
        assert_eq!(
            got,
            ScheduleRecord {
                id: a,
                ..schedule("nightly")
            }
        );

        let updated = cl
            .update_schedule(b, |r| {
                r.paused = true;
                r.next_run = None;
                r.state = b"last run: job 4".to_vec();
                r.id = 777; // ignored: the id stays
                Ok(())
            })
            .unwrap();
        assert_eq!(updated.id, b);
        assert_eq!(cl.schedule(b).unwrap().unwrap(), updated);
        // A failing change writes nothing.
        let err = cl.update_schedule(b, |r| {
            r.paused = false;
            Err(ClusterError::Invalid("no".into()))
        });
        assert!(matches!(err, Err(ClusterError::Invalid(_))));
        assert!(cl.schedule(b).unwrap().unwrap().paused);
        assert!(matches!(
            cl.update_schedule(999, |_| Ok(())),
            Err(ClusterError::UnknownSchedule(999))
        ));
        assert!(matches!(
            cl.update_schedule(u64::MAX, |_| Ok(())),
            Err(ClusterError::UnknownSchedule(_))
        ));

        cl.drop_schedule(c).unwrap();
        assert_eq!(cl.schedule(c).unwrap(), None);
        assert!(matches!(
            cl.drop_schedule(c),
            Err(ClusterError::UnknownSchedule(_))
        ));
        assert!(matches!(
            cl.update_schedule(c, |_| Ok(())),
            Err(ClusterError::UnknownSchedule(_))
        ));
    }
    let cl = Cluster::open_default(dir.path()).unwrap();
    let all = cl.schedules().unwrap();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a, b]);
    assert_eq!(all[0].label, "nightly");
    assert!(all[1].paused);
    assert_eq!(all[1].state, b"last run: job 4".to_vec());
    assert_eq!(all[1].next_run, None);
    // Ids are never handed out again, even the dropped one's.
    let d = cl.create_schedule(&schedule("new")).unwrap();
    assert!(d > c);
}

#[test]
fn concurrent_job_updates_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cl = Cluster::open_default(dir.path()).unwrap();
    let id = JobStore::create(&cl, &job("BACKUP")).unwrap();
    let s = cl.create_schedule(&schedule("s")).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let cl = cl.clone();
            scope.spawn(move || {
                for _ in 0..20 {
                    JobStore::update(&cl, id, &mut |r| {
                        r.progress.push(t);
                        Ok(())
                    })
                    .unwrap();
                    cl.update_schedule(s, |r| {
                        r.state.push(t);
                        Ok(())
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(JobStore::get(&cl, id).unwrap().unwrap().progress.len(), 80);
    assert_eq!(cl.schedule(s).unwrap().unwrap().state.len(), 80);
}

#[test]
fn jobs_and_schedules_read_as_of_earlier_times() {
    let dir = tempfile::tempdir().unwrap();
    let cl = Cluster::open_default(dir.path()).unwrap();
    let t0 = cl.now().unwrap();
    let j = JobStore::create(&cl, &job("BACKUP DATABASE bank")).unwrap();
    let s = cl.create_schedule(&schedule("nightly")).unwrap();
    let t1 = cl.now().unwrap();
    JobStore::update(&cl, j, &mut |r| {
        r.status = JobStatus::Succeeded;
        r.fraction_completed = 1.0;
        Ok(())
    })
    .unwrap();
    cl.update_schedule(s, |r| {
        r.paused = true;
        Ok(())
    })
    .unwrap();
    let j2 = JobStore::create(&cl, &job("RESTORE")).unwrap();
    let t2 = cl.now().unwrap();
    cl.drop_schedule(s).unwrap();
    let t3 = cl.now().unwrap();

    // Before anything was written: empty tables.
    assert_eq!(cl.jobs_at(t0).unwrap(), vec![]);
    assert_eq!(cl.schedules_at(t0).unwrap(), vec![]);
    // At t1: the first versions.
    let at1 = cl.jobs_at(t1).unwrap();
    assert_eq!(at1.len(), 1);
    assert_eq!(at1[0].status, JobStatus::Running);
    assert_eq!(at1[0].fraction_completed, 0.0);
    assert_eq!(cl.job_at(j2, t1).unwrap(), None);
    assert!(!cl.schedule_at(s, t1).unwrap().unwrap().paused);
    // At t2: updated, the second job exists, the schedule not yet dropped.
    assert_eq!(
        cl.jobs_at(t2)
            .unwrap()
            .iter()
            .map(|r| (r.id, r.status))
            .collect::<Vec<_>>(),
        vec![(j, JobStatus::Succeeded), (j2, JobStatus::Running)]
    );
    assert!(cl.schedules_at(t2).unwrap()[0].paused);
    // At t3 (and now): the schedule is gone.
    assert_eq!(cl.schedules_at(t3).unwrap(), vec![]);
    assert_eq!(cl.schedules().unwrap(), vec![]);
    assert_eq!(JobStore::list(&cl).unwrap(), cl.jobs_at(t3).unwrap());
}

#[test]
fn an_export_of_the_system_spans_carries_jobs_and_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let cl = Cluster::open_default(dir.path()).unwrap();
    let mut s = cl.session("root").unwrap();
    s.execute("CREATE TABLE t (id INT PRIMARY KEY)").unwrap();
    let jobs: Vec<u64> = (0..3)
        .map(|i| JobStore::create(&cl, &job(&format!("BACKUP {i}"))).unwrap())
        .collect();
    let kept = cl.create_schedule(&schedule("kept")).unwrap();
    let dropped = cl.create_schedule(&schedule("dropped")).unwrap();
    cl.drop_schedule(dropped).unwrap();
    let now = cl.now().unwrap();

    let mut entries = Vec::new();
    for range in KvSource::ranges(&cl, &system_spans()).unwrap() {
        let request = ExportRequest {
            span: range.span.clone(),
            start_ts: Timestamp::ZERO,
            end_ts: now,
            all_revisions: false,
            intent_policy: IntentPolicy::FailFast,
            target_bytes: 0,
        };
        let mut req = request;
        loop {
            let chunk = cl.export(range.leaseholder, &req).unwrap();
            entries.extend(chunk.entries);
            match chunk.resume_key {
                Some(k) => req.span.start = k,
                None => break,
            }
        }
    }
    let in_table = |id: u64| {
        entries
            .iter()
            .filter(|e| keys::table_of(&e.key) == Some(id))
            .collect::<Vec<_>>()
    };
    let job_rows = in_table(JOBS_TABLE_ID);
    assert_eq!(job_rows.len(), jobs.len());
    let sched_rows = in_table(SCHEDULES_TABLE_ID);
    assert_eq!(sched_rows.len(), 1, "the dropped schedule is not exported");
    // The exported rows are exactly the stored rows.
    for e in job_rows.iter().chain(&sched_rows) {
        assert_eq!(
            e.value.as_deref(),
            cl.get(&e.key, now, IntentPolicy::FailFast)
                .unwrap()
                .as_deref()
        );
    }
    let stored = cl.schedule(kept).unwrap().unwrap();
    assert!(
        sched_rows[0]
            .value
            .as_deref()
            .is_some_and(|v| v.windows(4).any(|w| w == b"kept")),
        "{stored:?}"
    );
    // Descriptors (table 1) ride along in the same spans.
    assert!(!in_table(1).is_empty());
}

#[test]
fn job_store_errors_map_to_host_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cl = Cluster::open_default(dir.path()).unwrap();
    assert!(matches!(
        JobStore::update(&cl, u64::MAX, &mut |_| Ok(())),
        Err(HostError::NotFound(_))
    ));
    assert_eq!(JobStore::get(&cl, u64::MAX).unwrap(), None);
}
