//! The cluster's public behaviour: MVCC reads, intents and pushes, GC and
//! protected timestamps, persistence, ranges and leases.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use backup_exec::{Clock, IntentPolicy, KvSource, Protector};
use backup_format::{Span, Timestamp};
use embedded_cluster::{Cluster, ClusterConfig, ClusterError, keys};

const FAIL: IntentPolicy = IntentPolicy::FailFast;
const PUSH: IntentPolicy = IntentPolicy::ResolveWithPriority;

fn open(dir: &std::path::Path) -> Cluster {
    Cluster::open_default(dir).unwrap()
}

#[test]
fn mvcc_reads_at_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let k = keys::row_key(60, 1, b"k");
    let before = c.now().unwrap();
    let t1 = c.put(&k, b"v1").unwrap();
    let t2 = c.put(&k, b"v2").unwrap();
    let t3 = c.delete(&k).unwrap();
    let t4 = c.put(&k, b"v4").unwrap();
    assert!(before < t1 && t1 < t2 && t2 < t3 && t3 < t4);
    assert_eq!(c.get(&k, before, FAIL).unwrap(), None);
    assert_eq!(c.get(&k, t1, FAIL).unwrap(), Some(b"v1".to_vec()));
    assert_eq!(c.get(&k, t3.prev(), FAIL).unwrap(), Some(b"v2".to_vec()));
    assert_eq!(
        c.get(&k, t3, FAIL).unwrap(),
        None,
        "tombstone hides the key"
    );
    assert_eq!(
        c.get(&k, Timestamp::MAX, FAIL).unwrap(),
        Some(b"v4".to_vec())
    );
    // Keys that are prefixes of each other stay apart.
    let k0 = [k.clone(), vec![0]].concat();
    c.put(&k0, b"longer").unwrap();
    let span = keys::table_span(60);
    let rows = c.scan(&span, c.now().unwrap(), FAIL).unwrap();
    assert_eq!(
        rows,
        vec![(k.clone(), b"v4".to_vec()), (k0, b"longer".to_vec())]
    );
    assert!(matches!(c.put(b"", b"x"), Err(ClusterError::Invalid(_))));
}

#[test]
fn intents_fail_fast_or_get_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let k = keys::row_key(61, 1, b"a");
    let t0 = c.put(&k, b"committed").unwrap();
    let txn = c.begin().unwrap();
    txn.put(&k, b"pending").unwrap();
    // Below the intent's timestamp, reads do not see it.
    assert_eq!(c.get(&k, t0, FAIL).unwrap(), Some(b"committed".to_vec()));
    let now = c.now().unwrap();
    match c.get(&k, now, FAIL) {
        Err(ClusterError::WriteIntent { key, txn: id }) => {
            assert_eq!(key, k);
            assert_eq!(id, txn.id());
        }
        other => panic!("expected a write intent error, got {other:?}"),
    }
    // Plain writes conflict with the intent too.
    assert!(matches!(
        c.put(&k, b"x"),
        Err(ClusterError::WriteIntent { .. })
    ));
    // A high-priority read pushes the transaction and reads the committed value.
    assert_eq!(c.get(&k, now, PUSH).unwrap(), Some(b"committed".to_vec()));
    assert!(matches!(txn.commit(), Err(ClusterError::TxnAborted(_))));
    assert_eq!(
        c.get(&k, c.now().unwrap(), FAIL).unwrap(),
        Some(b"committed".to_vec())
    );

    // A committed transaction's writes appear together at its commit timestamp.
    let txn = c.begin().unwrap();
    let k2 = keys::row_key(61, 1, b"b");
    txn.put(&k, b"new-a").unwrap();
    txn.put(&k2, b"new-b").unwrap();
    txn.delete(&k2).unwrap();
    txn.put(&k2, b"final-b").unwrap();
    let at = txn.commit().unwrap();
    assert_eq!(c.get(&k, at, FAIL).unwrap(), Some(b"new-a".to_vec()));
    assert_eq!(c.get(&k2, at, FAIL).unwrap(), Some(b"final-b".to_vec()));
    assert_eq!(c.get(&k2, at.prev(), FAIL).unwrap(), None);

    // Abort discards the intents.
    let txn = c.begin().unwrap();
    txn.put(&k, b"never").unwrap();
    txn.abort().unwrap();
    assert_eq!(
        c.get(&k, c.now().unwrap(), FAIL).unwrap(),
        Some(b"new-a".to_vec())
    );
}

#[test]
fn gc_threshold_ttl_and_protection() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let table = 62;
    let k = keys::row_key(table, 1, b"k");
    let t1 = c.put(&k, b"v1").unwrap();
    let t2 = c.put(&k, b"v2").unwrap();
    let gone = keys::row_key(table, 1, b"gone");
    c.put(&gone, b"x").unwrap();
    let t_del = c.delete(&gone).unwrap();
    assert_eq!(c.gc_ttl(table).unwrap(), Duration::from_secs(25 * 3600));

    // With the default 25 h TTL, GC now keeps everything readable.
    c.run_gc().unwrap();
    assert_eq!(c.get(&k, t1, FAIL).unwrap(), Some(b"v1".to_vec()));

    // A protection at t1 holds the threshold below t1 even with a zero TTL.
    let span = keys::table_span(table);
    let id = Protector::protect(&c, std::slice::from_ref(&span), t1).unwrap();
    c.set_gc_ttl(table, Duration::ZERO).unwrap();
    c.run_gc().unwrap();
    assert_eq!(Protector::gc_threshold(&c, &span).unwrap(), t1.prev());
    assert_eq!(c.get(&k, t1, FAIL).unwrap(), Some(b"v1".to_vec()));

    // Released: GC advances to now and removes what no later read can see.
    Protector::release(&c, id).unwrap();
    assert!(Protector::release(&c, id).is_err(), "double release");
    let stats = c.run_gc().unwrap();
    assert!(stats.versions_removed >= 3, "{stats:?}"); // v1, the tombstone, x
    let threshold = c.gc_threshold(&span);
    assert!(threshold > t_del);
    match c.get(&k, t2, FAIL) {
        Err(e @ ClusterError::GcThreshold { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&t2.to_string()) && msg.contains(&threshold.to_string()));
        }
        other => panic!("expected a GC threshold error, got {other:?}"),
    }
    assert_eq!(
        c.get(&k, c.now().unwrap(), FAIL).unwrap(),
        Some(b"v2".to_vec())
    );
    assert!(
        c.protect(std::slice::from_ref(&span), t1).is_err(),
        "protect below threshold"
    );
    // The other tables' ranges keep their (25 h) threshold.
    assert!(c.get(&keys::row_key(63, 1, b"z"), t1, FAIL).is_ok());
}

#[test]
fn persists_across_reopen_and_locks_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys::row_key(64, 1, b"k");
    let (t1, last, range_count, moved);
    {
        let c = open(dir.path());
        t1 = c.put(&k, b"v1").unwrap();
        let txn = c.begin().unwrap();
        txn.put(&keys::row_key(64, 1, b"pending"), b"p").unwrap();
        drop(txn); // left pending, like a stalled client
        let r = c.range_for(&k).unwrap();
        c.transfer_lease(r.id, 3).unwrap();
        moved = r.id;
        c.set_gc_ttl(64, Duration::from_secs(600)).unwrap();
        range_count = c.ranges().len();
        assert!(matches!(
            Cluster::open_default(dir.path()),
            Err(ClusterError::StoreInUse { .. })
        ));
        last = Clock::now(&c);
    }
    let c = open(dir.path());
    assert!(Clock::now(&c) > last, "the clock went back across a reopen");
    assert_eq!(c.get(&k, t1, FAIL).unwrap(), Some(b"v1".to_vec()));
    assert_eq!(c.ranges().len(), range_count);
    assert_eq!(
        c.ranges()
            .iter()
            .find(|r| r.id == moved)
            .unwrap()
            .leaseholder,
        3
    );
    assert_eq!(c.gc_ttl(64).unwrap(), Duration::from_secs(600));
    assert_eq!(c.nodes().len(), 3);
    // The pending transaction's intent survived too.
    let now = c.now().unwrap();
    assert!(matches!(
        c.get(&keys::row_key(64, 1, b"pending"), now, FAIL),
        Err(ClusterError::WriteIntent { .. })
    ));
}

#[test]
fn store_in_use_from_another_process() {
    let dir = tempfile::tempdir().unwrap();
    if let Ok(child_dir) = std::env::var("EMBEDDED_CLUSTER_CHILD_STORE") {
        // Child: the parent holds the store open.
        match Cluster::open_default(std::path::Path::new(&child_dir)) {
            Err(ClusterError::StoreInUse { .. }) => std::process::exit(42),
            other => panic!("child expected StoreInUse, got {:?}", other.err()),
        }
    }
    let _c = open(dir.path());
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store_in_use_from_another_process",
            "--nocapture",
        ])
        .env("EMBEDDED_CLUSTER_CHILD_STORE", dir.path())
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(42),
        "the second process did not get StoreInUse"
    );
}

#[test]
fn ranges_split_at_tables_and_by_size_and_leases_move() {
    let dir = tempfile::tempdir().unwrap();
    let config = ClusterConfig {
        range_max_bytes: 64 << 10,
        ..ClusterConfig::default()
    };
    let c = Cluster::open(dir.path(), config).unwrap();
    for t in [70, 71] {
        let batch: Vec<_> = (0..400u32)
            .map(|i| (keys::row_key(t, 1, &i.to_be_bytes()), Some(vec![7u8; 500])))
            .collect();
        c.write_batch(&batch).unwrap();
    }
    let ranges = c.ranges();
    // The ranges tile the keyspace.
    assert_eq!(ranges[0].span.start, Vec::<u8>::new());
    for w in ranges.windows(2) {
        assert_eq!(w[0].span.end, w[1].span.start);
    }
    assert_eq!(
        ranges.last().unwrap().span.end,
        backup_format::KEY_MAX.to_vec()
    );
    // Table boundaries are range boundaries; ~400 KiB per table split by size.
    for t in [70, 71, 72] {
        assert!(ranges.iter().any(|r| r.span.start == keys::table_prefix(t)));
    }
    let t70: Vec<_> = KvSource::ranges(&c, &[keys::table_span(70)]).unwrap();
    assert!(t70.len() >= 4, "expected size splits, got {}", t70.len());
    assert_eq!(t70[0].span.start, keys::table_prefix(70));
    assert_eq!(t70.last().unwrap().span.end, keys::table_prefix(71));
    let holders: std::collections::BTreeSet<_> = t70.iter().map(|r| r.leaseholder).collect();
    assert!(holders.len() > 1, "leases are spread over nodes");
    // Clipping to the request.
    let part = Span::new(
        keys::row_key(70, 1, &[0, 0, 0, 5]),
        keys::row_key(70, 1, &[0, 0, 0, 6]),
    );
    let clipped = KvSource::ranges(&c, std::slice::from_ref(&part)).unwrap();
    assert_eq!(clipped.len(), 1);
    assert_eq!(clipped[0].span, part);
    // Lease moves and node failures.
    let r = &t70[0];
    let other = if r.leaseholder == 1 { 2 } else { 1 };
    c.transfer_lease(r.range_id, other).unwrap();
    let again = KvSource::ranges(&c, std::slice::from_ref(&r.span)).unwrap();
    assert_eq!(again[0].leaseholder, other);
    assert_eq!(again[0].locality, c.nodes()[other as usize - 1].locality);
    c.set_node_live(other, false).unwrap();
    assert!(!c.nodes()[other as usize - 1].live);
    assert!(c.ranges().iter().all(|r| r.leaseholder != other));
    assert!(matches!(
        c.transfer_lease(r.range_id, other),
        Err(ClusterError::NodeDown(_))
    ));
    assert!(c.node_dir(1).unwrap().is_dir());
    // Data is intact across all of it.
    let rows = c
        .scan(&keys::table_span(70), c.now().unwrap(), FAIL)
        .unwrap();
    assert_eq!(rows.len(), 400);
}

#[test]
fn job_records_persist_and_update_atomically() {
    use backup_exec::{HostError, JobKind, JobRecord, JobStatus, JobStore};
    let dir = tempfile::tempdir().unwrap();
    let record = JobRecord {
        id: 0,
        kind: JobKind::Backup,
        description: "BACKUP DATABASE bank INTO 's3://b/p?AWS_SECRET_ACCESS_KEY=redacted'".into(),
        user: "root".into(),
        status: JobStatus::Running,
        created: Timestamp::from_wall(5),
        started: Some(Timestamp::new(6, 1)),
        finished: None,
        fraction_completed: 0.0,
        error: None,
        payload: vec![1, 2, 3],
        progress: Vec::new(),
        created_by_schedule: None,
    };
    let (a, b);
    {
        let c = open(dir.path());
        a = JobStore::create(&c, &record).unwrap();
        b = JobStore::create(&c, &record).unwrap();
        assert_ne!(a, b);
        let updated = JobStore::update(&c, a, &mut |r| {
            r.status = JobStatus::PauseRequested;
            r.fraction_completed = 0.25;
            r.progress = b"checkpoint".to_vec();
            Ok(())
        })
        .unwrap();
        assert_eq!(updated.id, a);
        // A failing change writes nothing.
        let err = JobStore::update(&c, a, &mut |r| {
            r.status = JobStatus::Failed;
            Err(HostError::Invalid("no".into()))
        });
        assert!(err.is_err());
        assert!(matches!(
            JobStore::update(&c, 999, &mut |_| Ok(())),
            Err(HostError::NotFound(_))
        ));
    }
    let c = open(dir.path());
    let got = JobStore::get(&c, a).unwrap().unwrap();
    assert_eq!(got.status, JobStatus::PauseRequested);
    assert_eq!(got.fraction_completed, 0.25);
    assert_eq!(got.progress, b"checkpoint".to_vec());
    assert_eq!(got.payload, record.payload);
    assert_eq!(got.started, record.started);
    assert_eq!(got.description, record.description);
    let all = JobStore::list(&c).unwrap();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a, b]);
    assert_eq!(JobStore::get(&c, 12345).unwrap(), None);
}
