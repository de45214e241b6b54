//! Backups on the embedded cluster under trouble: intents of a pending
//! transaction, leases moving and a node going down, storage faults, pauses
//! and a dropped runtime; and locality-aware destinations.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backup_exec::{
    BackupJobs, BackupSettings, ExecError, Host, JobStatus, LayerChoice, Locality, StorageOpener,
};
use backup_format::{Span, SpanSet, Timestamp};
use backup_storage::{
    ExternalStorage, FaultConfig, FaultyStorage, StorageContext, StorageError, StorageUri,
};
use common::{URI, assert_same, fixture, latest, open, read};
use e2e::{Fixture, ORDERS, RecordingKv, USERS, read_backup, reference_entries, row};
use embedded_cluster::{ClusterConfig, keys};

fn all_spans() -> Vec<Span> {
    vec![keys::table_span(USERS), keys::table_span(ORDERS)]
}

async fn check_backup(fx: &Fixture, end: Timestamp) {
    let storage = open(fx.storage.as_ref(), URI);
    let layer = read(&storage, &latest(&storage).await, None).await;
    let want = reference_entries(&fx.cluster, &all_spans(), Timestamp::ZERO, end, false).unwrap();
    assert_same(&layer.entries, &want, "backup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intents_are_retried_then_pushed_and_never_backed_up() {
    let (_dir, fx) = fixture(300);
    let txn = fx.cluster.begin().unwrap();
    txn.put(&row(USERS, 5), b"uncommitted").unwrap();
    txn.put(&row(ORDERS, 6), b"uncommitted").unwrap();
    let end = fx.cluster.now().unwrap();
    let settings = BackupSettings {
        intent_retry_delay: Duration::from_millis(5),
        priority_delay: Duration::from_millis(100),
        ..BackupSettings::for_tests()
    };
    let kv = Arc::new(RecordingKv::new(fx.cluster.clone(), None));
    let started = std::time::Instant::now();
    BackupJobs::new(fx.host_with(kv.clone(), fx.storage.clone()), settings)
        .backup(fx.spec(URI, end, LayerChoice::NewFull))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "waited for priority"
    );
    let calls = kv.calls();
    let failed = calls.iter().filter(|c| c.covered.is_none()).count();
    assert!(
        failed >= 4,
        "fail-fast exports were requeued and retried: {failed}"
    );
    assert!(
        txn.commit().is_err(),
        "the pending transaction was pushed (aborted)"
    );
    check_backup(&fx, end).await;
    let storage = open(fx.storage.as_ref(), URI);
    let layer = read(&storage, &latest(&storage).await, None).await;
    assert!(
        layer
            .entries
            .iter()
            .all(|e| e.value.as_deref() != Some(b"uncommitted"))
    );
    assert!(
        layer.entries.iter().any(|e| e.key == row(USERS, 5)),
        "committed value kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_span_is_exported_once_by_its_leaseholder_while_leases_move() {
    let (_dir, fx) = fixture(1500);
    let cluster = fx.cluster.clone();
    let stage = AtomicU64::new(0);
    let down_at = Arc::new(AtomicU64::new(u64::MAX));
    let down_at2 = down_at.clone();
    let hook = Box::new(move |n: usize| {
        if n >= 3
            && stage
                .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            let r = &cluster.ranges()[2];
            let to = if r.leaseholder == 1 { 2 } else { 1 };
            cluster.transfer_lease(r.id, to).unwrap();
        }
        if n >= 8
            && stage
                .compare_exchange(1, 2, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            cluster.set_node_live(3, false).unwrap();
            down_at2.store(n as u64, Ordering::SeqCst);
        }
    });
    let kv = Arc::new(RecordingKv::new(fx.cluster.clone(), Some(hook)));
    let end = fx.cluster.now().unwrap();
    common::jobs(fx.host_with(kv.clone(), fx.storage.clone()))
        .backup(fx.spec(URI, end, LayerChoice::NewFull))
        .await
        .unwrap();
    let calls = kv.calls();
    assert!(calls.len() > 10, "the hook ran mid-backup");
    let mut covered: Vec<Span> = Vec::new();
    let down = down_at.load(Ordering::SeqCst) as usize;
    assert!(down < calls.len(), "node 3 went down mid-backup");
    for c in &calls {
        if let Some(span) = &c.covered {
            assert_eq!(
                c.node, c.leaseholder,
                "{span:?} exported off its leaseholder"
            );
            // Calls already under way when the node went down may finish;
            // none that started on a down node may succeed.
            assert!(c.live_at_start, "down node {} exported {span:?}", c.node);
            covered.push(span.clone());
        }
    }
    assert!(
        calls.iter().any(|c| c.covered.is_none()),
        "a lease move was noticed"
    );
    covered.sort_by(|a, b| a.start.cmp(&b.start));
    for w in covered.windows(2) {
        assert!(w[0].end <= w[1].start, "{:?} and {:?} overlap", w[0], w[1]);
    }
    let union = SpanSet::from_spans(covered);
    assert_eq!(
        union,
        SpanSet::from_spans(all_spans()),
        "every key exported"
    );
    check_backup(&fx, end).await;
}

/// Opens storages wrapped in a fault injector; each opening gets its own
/// seed (the same seed would fail the same operation of every run).
struct Faulty(Arc<StorageContext>, FaultConfig, AtomicU64);

impl Faulty {
    fn new(ctx: Arc<StorageContext>, config: FaultConfig) -> Faulty {
        Faulty(ctx, config, AtomicU64::new(1))
    }
}

impl StorageOpener for Faulty {
    fn open(&self, uri: &StorageUri) -> Result<Arc<dyn ExternalStorage>, StorageError> {
        let inner = self.0.open(uri)?;
        let config = FaultConfig {
            seed: self.1.seed ^ self.2.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919),
            ..self.1.clone()
        };
        Ok(Arc::new(FaultyStorage::new(inner, config)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_faults_complete_or_pause_then_complete_on_resume() {
    let (_dir, fx) = fixture(800);
    let end = fx.cluster.now().unwrap();
    let config = FaultConfig {
        error_rate: 0.08,
        ..FaultConfig::default()
    };
    let host = fx.host_with(
        Arc::new(fx.cluster.clone()),
        Arc::new(Faulty::new(fx.storage.clone(), config)),
    );
    let settings = BackupSettings {
        max_retries: 2,
        ..BackupSettings::for_tests()
    };
    let jobs = BackupJobs::new(host, settings);
    let mut outcome = jobs.backup(fx.spec(URI, end, LayerChoice::NewFull)).await;
    let mut pauses = 0;
    while let Err(e) = &outcome {
        assert!(matches!(e, ExecError::RetriesExhausted { .. }), "{e}");
        let id = jobs.host().jobs.list().unwrap()[0].id;
        assert_eq!(jobs.job(id).unwrap().status, JobStatus::Paused);
        pauses += 1;
        assert!(pauses < 30, "never completed");
        outcome = jobs.resume(id).await;
    }
    assert_eq!(outcome.unwrap().status, JobStatus::Succeeded);
    check_backup(&fx, end).await;
}

/// Holds every export from call `from` on until released, so a test can act
/// on a job that is provably mid-run (no timing guesses).
#[derive(Clone)]
struct Gate(
    Arc<(std::sync::Mutex<(bool, bool)>, std::sync::Condvar)>,
    usize,
);

impl Gate {
    /// A closed gate that starts holding exports at call `from`.
    fn new(from: usize) -> Gate {
        Gate(
            Arc::new((
                std::sync::Mutex::new((false, false)),
                std::sync::Condvar::new(),
            )),
            from,
        )
    }

    /// The hook for [`RecordingKv`]: blocks while the gate is closed.
    fn hook(&self) -> e2e::BeforeExport {
        let gate = self.clone();
        Box::new(move |calls| {
            if calls < gate.1 {
                return;
            }
            let (lock, cvar) = &*gate.0;
            let mut state = lock.lock().unwrap();
            state.0 = true; // reached
            while !state.1 {
                state = cvar.wait(state).unwrap();
            }
        })
    }

    /// Waits (bounded) until an export is held at the gate.
    async fn reached(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !self.0.0.lock().unwrap().0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no export reached the gate"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Opens the gate for good.
    fn release(&self) {
        let (lock, cvar) = &*self.0;
        lock.lock().unwrap().1 = true;
        cvar.notify_all();
    }
}

/// A pseudo-random export call number in `1..=max`.
fn random_call(max: usize) -> usize {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    1 + nanos as usize % max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_at_a_random_point_then_resumed_holds_the_same_entries() {
    let (_dir, fx) = fixture(2000);
    let end = fx.cluster.now().unwrap();
    let gate = Gate::new(random_call(6));
    let kv = Arc::new(RecordingKv::new(fx.cluster.clone(), Some(gate.hook())));
    let host = fx.host_with(kv, fx.storage.clone());
    let jobs = common::jobs(host);
    let mut spec = fx.spec(URI, end, LayerChoice::NewFull);
    spec.detached = true;
    let id = jobs.backup(spec).await.unwrap().job_id;
    // The job cannot finish while an export is held, so the pause lands mid-job.
    gate.reached().await;
    jobs.pause(id).unwrap();
    gate.release();
    match jobs.wait(id).await {
        Err(ExecError::Paused(_)) => {
            assert_eq!(jobs.job(id).unwrap().status, JobStatus::Paused);
            // The job was detached: resuming it returns at once.
            jobs.resume(id).await.unwrap();
            jobs.wait(id).await.unwrap();
        }
        other => panic!("expected a pause, got {other:?}"),
    }
    assert_eq!(jobs.job(id).unwrap().status, JobStatus::Succeeded);
    check_backup(&fx, end).await;
}

#[test]
fn a_dropped_runtime_is_resumed_by_a_new_registry() {
    let (_dir, fx) = fixture(2000);
    let end = fx.cluster.now().unwrap();
    let gate = Gate::new(random_call(6));
    let kv = Arc::new(RecordingKv::new(fx.cluster.clone(), Some(gate.hook())));
    let host: Host = fx.host_with(kv, fx.storage.clone());
    let spec = fx.spec(URI, end, LayerChoice::NewFull);
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let jobs = common::jobs(host.clone());
        let mut detached = spec.clone();
        detached.detached = true;
        rt.block_on(async {
            jobs.backup(detached).await.unwrap();
            // An export is held: the job is provably mid-run when the runtime goes.
            gate.reached().await;
        });
        let opener = gate.clone();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            opener.release();
        });
        rt.shutdown_timeout(Duration::from_secs(5));
        release.join().unwrap();
    }
    let record = host.jobs.list().unwrap().remove(0);
    assert_eq!(record.status, JobStatus::Running, "killed mid-run");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let jobs = common::jobs(host.clone());
        jobs.resume(record.id).await.unwrap();
        let r = jobs.wait(record.id).await.unwrap();
        assert_eq!(r.status, JobStatus::Succeeded);
        check_backup(&fx, end).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locality_aware_files_land_in_their_localitys_storage() {
    let dir = tempfile::tempdir().unwrap();
    let config = ClusterConfig {
        nodes: vec![
            Locality::new([("region", "east")]),
            Locality::new([("region", "west")]),
            Locality::new([("region", "east")]),
        ],
        ..ClusterConfig::default()
    };
    let fx = Fixture::open(dir.path(), config).unwrap();
    fx.load(600, 100, 3).unwrap();
    let end = fx.cluster.now().unwrap();
    let default_uri = "nodelocal://1/backups?COCKROACH_LOCALITY=default";
    let mut spec = fx.spec(default_uri, end, LayerChoice::NewFull);
    spec.destination.locality_uris = vec![
        "nodelocal://1/east?COCKROACH_LOCALITY=region%3Deast".into(),
        "nodelocal://2/west?COCKROACH_LOCALITY=region%3Dwest".into(),
    ];
    common::jobs(fx.host()).backup(spec).await.unwrap();
    let default = open(fx.storage.as_ref(), URI);
    let east = open(fx.storage.as_ref(), "nodelocal://1/east");
    let west = open(fx.storage.as_ref(), "nodelocal://2/west");
    let by_locality = BTreeMap::from([
        ("region=east".to_string(), east.clone()),
        ("region=west".to_string(), west.clone()),
    ]);
    let layer_dir = latest(&default).await;
    let layer = read_backup(&default, &by_locality, &layer_dir, None)
        .await
        .unwrap();
    let nodes = fx.cluster.nodes();
    for f in &layer.files {
        let node: u32 = f.path["data/".len()..]
            .split('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let region = nodes[node as usize - 1].locality.get("region").unwrap();
        assert_eq!(f.locality, format!("region={region}"), "{}", f.path);
        let storage = &by_locality[&f.locality];
        assert!(
            storage
                .exists(&format!("{layer_dir}/{}", f.path))
                .await
                .unwrap()
        );
        assert!(
            !default
                .exists(&format!("{layer_dir}/{}", f.path))
                .await
                .unwrap()
        );
    }
    for region in ["region=east", "region=west"] {
        assert!(layer.files.iter().any(|f| f.locality == region), "{region}");
    }
    let want = reference_entries(&fx.cluster, &all_spans(), Timestamp::ZERO, end, false).unwrap();
    assert_same(&layer.entries, &want, "locality-aware backup");
}
