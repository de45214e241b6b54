//! The backup job on the in-memory fake host: full, incremental, GC refusal,
//! exports by leaseholder, and the files read back with backup-format; job
//! control (detached runs, pause and resume, cancel) with exports held at a
//! gate so the job is provably mid-run when it is controlled.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use backup_exec::testing::{MemoryKv, MemoryStorages, StaticCatalog, memory_host};
use backup_exec::{
    BackupJobs, BackupSettings, BackupSpec, Destination, JobStatus, KvSource, LayerChoice,
};
use backup_format::datafile::verify_data_file;
use backup_format::manifest::{BackupFile, Manifest, SideFileReader};
use backup_format::paths::{BACKUP_MANIFEST, BACKUP_MANIFEST_CHECKSUM, LATEST_DIR};
use backup_format::{Span, Timestamp};
use backup_storage::ExternalStorage;

const URI: &str = "nodelocal://1/backups";

fn spec(end: Timestamp, layer: LayerChoice) -> BackupSpec {
    BackupSpec {
        description: format!("BACKUP INTO '{URI}'"),
        user: "root".into(),
        descriptors: Vec::new(),
        spans: vec![Span::new(*b"a", *b"z")],
        index_spans: Vec::new(),
        full_cluster: false,
        end_time: end,
        destination: Destination {
            collection: URI.into(),
            locality_uris: Vec::new(),
            incremental_location: None,
            layer,
        },
        revision_history: false,
        encryption_passphrase: None,
        detached: false,
    }
}

async fn read_entries(storage: &Arc<dyn ExternalStorage>, dir: &str) -> (Manifest, u64) {
    let m = storage
        .get(&format!("{dir}/{BACKUP_MANIFEST}"))
        .await
        .unwrap();
    let c = storage
        .get(&format!("{dir}/{BACKUP_MANIFEST_CHECKSUM}"))
        .await
        .unwrap();
    let manifest = Manifest::decode("m", &m, &c, None).unwrap();
    let side = storage
        .get(&format!("{dir}/{}", manifest.files.name))
        .await
        .unwrap();
    let files: Vec<BackupFile> = SideFileReader::<_, BackupFile>::open(
        "f",
        std::io::Cursor::new(side),
        &manifest.files,
        None,
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    let mut entries = 0;
    for f in &files {
        let bytes = storage.get(&format!("{dir}/{}", f.path)).await.unwrap();
        entries += verify_data_file(&f.path, &bytes, None).unwrap().entry_count;
    }
    (manifest, entries)
}

fn fixture() -> (Arc<MemoryKv>, Arc<MemoryStorages>, BackupJobs) {
    let kv = Arc::new(MemoryKv::new(3, &[b"f", b"m", b"t"]));
    for i in 0..2000u32 {
        let key = format!("k{i:05}");
        kv.put(key.as_bytes(), Some(&[7u8; 40]));
    }
    let storages = Arc::new(MemoryStorages::default());
    let host = memory_host(
        kv.clone(),
        Arc::new(StaticCatalog::default()),
        storages.clone(),
    );
    (
        kv,
        storages,
        BackupJobs::new(host, BackupSettings::for_tests()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_then_incremental_backup_reads_back() {
    let (kv, storages, jobs) = fixture();
    let end = kv.put(b"a-first", Some(b"x"));
    let r = jobs.backup(spec(end, LayerChoice::NewFull)).await.unwrap();
    assert_eq!(r.status, JobStatus::Succeeded);
    assert_eq!(r.rows, 2001);
    let storage = storages.get(URI);
    let latest = storage.list(LATEST_DIR, false).await.unwrap();
    assert_eq!(latest.objects.len(), 1);
    let full =
        String::from_utf8(storage.get(&latest.objects[0].path).await.unwrap().to_vec()).unwrap();
    let (m, entries) = read_entries(&storage, &full).await;
    assert_eq!(entries, 2001);
    assert!(m.statistics.bytes > 0);
    assert_eq!(kv.protections(), 0, "protection released");
    // Every export went to the range's leaseholder and no key was exported twice.
    let mut exports = kv.exports.lock().unwrap().clone();
    let ranges = kv.ranges(&[Span::new(*b"a", *b"z")]).unwrap();
    for (node, span) in &exports {
        let range = ranges
            .iter()
            .find(|r| r.span.contains_key(&span.start))
            .unwrap();
        assert_eq!(
            *node, range.leaseholder,
            "{span:?} exported off its leaseholder"
        );
        assert!(
            span.end <= range.span.end,
            "{span:?} crosses a range boundary"
        );
    }
    exports.sort_by(|a, b| a.1.start.cmp(&b.1.start));
    for w in exports.windows(2) {
        assert!(
            w[0].1.end <= w[1].1.start,
            "{:?} and {:?} overlap",
            w[0],
            w[1]
        );
    }
    let covered = backup_format::SpanSet::from_spans(exports.iter().map(|e| e.1.clone()));
    assert_eq!(
        covered.spans(),
        &[Span::new(*b"a", *b"z")],
        "every key exported"
    );
    // Incremental: only the changes.
    kv.put(b"k00001", Some(b"new"));
    let end2 = kv.put(b"zz-out-of-span", Some(b"x"));
    let r = jobs.backup(spec(end2, LayerChoice::Latest)).await.unwrap();
    assert_eq!(r.rows, 1);
    let inc = backup_format::paths::incremental_dir(&full, end2);
    let (m, entries) = read_entries(&storage, &inc).await;
    assert_eq!((m.start_time, entries), (end, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_gc_threshold_is_refused_with_the_threshold() {
    let (kv, _storages, jobs) = fixture();
    let end = kv.put(b"a", Some(b"x"));
    let threshold = kv.put(b"b", Some(b"x"));
    kv.set_gc_threshold(threshold);
    let err = jobs
        .backup(spec(end, LayerChoice::NewFull))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&threshold.to_string()), "{err}");
    assert!(
        kv.exports.lock().unwrap().is_empty(),
        "no work before the check"
    );
}

/// A [`KvSource`] whose exports wait at a gate: each export takes one pass,
/// and blocks (on its blocking thread) while none is left.
struct GatedKv {
    kv: Arc<MemoryKv>,
    passes: std::sync::Mutex<usize>,
    opened: std::sync::Condvar,
}

impl GatedKv {
    fn new(kv: Arc<MemoryKv>, passes: usize) -> Arc<GatedKv> {
        Arc::new(GatedKv {
            kv,
            passes: std::sync::Mutex::new(passes),
            opened: std::sync::Condvar::new(),
        })
    }

    fn open(&self) {
        *self.passes.lock().unwrap() = usize::MAX;
        self.opened.notify_all();
    }
}

impl KvSource for GatedKv {
    fn nodes(&self) -> Vec<backup_exec::NodeInfo> {
        self.kv.nodes()
    }

    fn ranges(
        &self,
        spans: &[Span],
    ) -> Result<Vec<backup_exec::RangeInfo>, backup_exec::HostError> {
        self.kv.ranges(spans)
    }

    fn export(
        &self,
        node: backup_exec::NodeId,
        request: &backup_exec::ExportRequest,
    ) -> Result<backup_exec::ExportChunk, backup_exec::ExportError> {
        let mut passes = self.passes.lock().unwrap();
        while *passes == 0 {
            passes = self.opened.wait(passes).unwrap();
        }
        *passes = passes.saturating_sub(1);
        drop(passes);
        self.kv.export(node, request)
    }
}

const CONTROL_KEYS: u32 = 6000;

/// A host whose exports pass `passes` times, then wait for [`GatedKv::open`];
/// `CONTROL_KEYS` keys of 100 bytes (about 10 data files of 64 KiB).
fn gated(passes: usize) -> (Arc<MemoryKv>, Arc<GatedKv>, Arc<MemoryStorages>, BackupJobs) {
    let kv = Arc::new(MemoryKv::new(3, &[b"k02", b"k04"]));
    for i in 0..CONTROL_KEYS {
        kv.put(format!("k{i:05}").as_bytes(), Some(&[9u8; 100]));
    }
    let gate = GatedKv::new(kv.clone(), passes);
    let storages = Arc::new(MemoryStorages::default());
    let host = backup_exec::Host {
        kv: gate.clone(),
        catalog: Arc::new(StaticCatalog::default()),
        protector: kv.clone(),
        clock: kv.clone(),
        jobs: Arc::new(backup_exec::testing::MemoryJobStore::default()),
        storage: storages.clone(),
    };
    let jobs = BackupJobs::new(host, BackupSettings::for_tests());
    (kv, gate, storages, jobs)
}

fn detached(end: Timestamp) -> BackupSpec {
    BackupSpec {
        detached: true,
        ..spec(end, LayerChoice::NewFull)
    }
}

/// Every path in the collection.
async fn all_paths(storage: &Arc<dyn ExternalStorage>) -> Vec<String> {
    let listing = storage.list("", false).await.unwrap();
    listing.objects.into_iter().map(|o| o.path).collect()
}

fn is_backup_file(path: &str) -> bool {
    path.ends_with(BACKUP_MANIFEST) || path.starts_with(LATEST_DIR)
}

/// Polls `cond` every millisecond for up to 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// The spans the checkpoints under `storage` record as done.
async fn checkpointed(storage: &Arc<dyn ExternalStorage>) -> backup_format::SpanSet {
    let mut done = backup_format::SpanSet::new();
    for path in all_paths(storage).await {
        if backup_format::paths::parse_checkpoint_file_name(&path).is_some() {
            let bytes = storage.get(&path).await.unwrap();
            let c = backup_format::checkpoint::Checkpoint::decode(&path, &bytes, None).unwrap();
            for s in c.completed_spans {
                done.insert(s);
            }
        }
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_backup_returns_its_id_at_once_then_completes() {
    let (kv, gate, storages, jobs) = gated(0);
    let end = kv.put(b"a", Some(b"x"));
    let started = std::time::Instant::now();
    let r = jobs.backup(detached(end)).await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(r.status, JobStatus::Running);
    // No export has passed the gate: the job is provably still running.
    assert_eq!(jobs.job(r.job_id).unwrap().status, JobStatus::Running);
    assert!(kv.exports.lock().unwrap().is_empty());
    let storage = storages.get(URI);
    assert!(!all_paths(&storage).await.iter().any(|p| is_backup_file(p)));
    gate.open();
    let done = jobs.wait(r.job_id).await.unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.rows, u64::from(CONTROL_KEYS) + 1);
    let record = jobs.job(r.job_id).unwrap();
    assert_eq!(record.status, JobStatus::Succeeded);
    assert!(record.finished.is_some());
    assert!(
        all_paths(&storage)
            .await
            .iter()
            .any(|p| p.ends_with(BACKUP_MANIFEST))
    );
    assert_eq!(kv.protections(), 0);
    // A finished job cannot be canceled, paused or resumed; its record stays.
    assert!(jobs.cancel(r.job_id).is_err());
    assert!(jobs.pause(r.job_id).is_err());
    assert!(jobs.resume(r.job_id).await.is_err());
    assert_eq!(jobs.job(r.job_id).unwrap().status, JobStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_of_a_running_job_releases_protection_and_leaves_no_backup() {
    let (kv, gate, storages, jobs) = gated(12);
    let end = kv.put(b"a", Some(b"x"));
    let id = jobs.backup(detached(end)).await.unwrap().job_id;
    // Mid-run: the protection is held and the first exports went through,
    // the rest wait at the gate.
    eventually("12 exports", || kv.exports.lock().unwrap().len() == 12).await;
    assert_eq!(kv.protections(), 1, "the job protects its end time");
    jobs.cancel(id).unwrap();
    assert_eq!(jobs.job(id).unwrap().status, JobStatus::CancelRequested);
    gate.open();
    let err = jobs.wait(id).await.unwrap_err();
    assert!(matches!(err, backup_exec::ExecError::Canceled(_)), "{err}");
    let record = jobs.job(id).unwrap();
    assert_eq!(record.status, JobStatus::Canceled);
    assert!(record.finished.is_some());
    assert_eq!(kv.protections(), 0, "protection released");
    let paths = all_paths(&storages.get(URI)).await;
    assert!(!paths.is_empty(), "the job had written files");
    assert!(
        !paths.iter().any(|p| is_backup_file(p)),
        "no manifest, no LATEST: {paths:?}"
    );
    assert!(
        jobs.resume(id).await.is_err(),
        "a canceled job stays canceled"
    );
}

/// Starts a detached job, lets `passes` exports through, pauses it, and
/// returns once it is paused (without waiting on it).
async fn paused_job(
    passes: usize,
) -> (
    Arc<MemoryKv>,
    Arc<GatedKv>,
    Arc<MemoryStorages>,
    BackupJobs,
    u64,
) {
    let (kv, gate, storages, jobs) = gated(passes);
    let end = kv.put(b"a", Some(b"x"));
    let id = jobs.backup(detached(end)).await.unwrap().job_id;
    eventually("exports", || kv.exports.lock().unwrap().len() == passes).await;
    jobs.pause(id).unwrap();
    assert_eq!(jobs.job(id).unwrap().status, JobStatus::PauseRequested);
    gate.open();
    eventually("paused", || {
        jobs.job(id).unwrap().status == JobStatus::Paused
    })
    .await;
    (kv, gate, storages, jobs, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_then_resume_continues_from_the_checkpoint() {
    let (kv, _gate, storages, jobs, id) = paused_job(40).await;
    let storage = storages.get(URI);
    assert!(!all_paths(&storage).await.iter().any(|p| is_backup_file(p)));
    assert_eq!(kv.protections(), 1, "a paused job keeps its protection");
    let done = checkpointed(&storage).await;
    assert!(!done.is_empty(), "the pause saved a checkpoint");
    let before = kv.exports.lock().unwrap().len();
    // Resumed without waiting on the paused run first.
    let r = jobs.resume(id).await.unwrap();
    assert_eq!(r.status, JobStatus::Running);
    let r = jobs.wait(id).await.unwrap();
    assert_eq!(r.status, JobStatus::Succeeded);
    let after = kv.exports.lock().unwrap()[before..].to_vec();
    assert!(!after.is_empty());
    for (_, span) in &after {
        assert!(
            !done.overlaps(span),
            "{span:?} was checkpointed but exported again"
        );
    }
    let full = String::from_utf8(
        storage
            .get(&storage.list(LATEST_DIR, false).await.unwrap().objects[0].path)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    let (m, entries) = read_entries(&storage, &full).await;
    assert_eq!(entries, u64::from(CONTROL_KEYS) + 1, "every key once");
    assert_eq!(m.statistics.rows, u64::from(CONTROL_KEYS) + 1);
    assert_eq!(kv.protections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_attempt_never_reuses_a_data_file_name_left_in_the_layer() {
    let (kv, _gate, storages, jobs, id) = paused_job(10).await;
    let storage = storages.get(URI);
    let data = all_paths(&storage)
        .await
        .into_iter()
        .find(|p| p.ends_with(".sst"))
        .expect("the paused attempt wrote data files");
    let dir = data.rsplit_once("/data/").unwrap().0.to_string();
    // Files of an earlier attempt numbered just where the resumed attempt's
    // clock stands (the in-memory clock's wall moves by one per reading, so
    // an attempt numbering from its start time would pick these names).
    let wall = u64::try_from(backup_exec::Clock::now(kv.as_ref()).wall).unwrap();
    for node in 1..=3 {
        for seq in wall..wall + 300 {
            storage
                .put(
                    &format!("{dir}/data/{node}-{seq}.sst"),
                    bytes::Bytes::from_static(b"left by an earlier attempt"),
                )
                .await
                .unwrap();
        }
    }
    jobs.resume(id).await.unwrap();
    let r = jobs.wait(id).await.unwrap();
    assert_eq!(r.status, JobStatus::Succeeded);
    let (m, entries) = read_entries(&storage, &dir).await;
    assert_eq!(entries, u64::from(CONTROL_KEYS) + 1, "every key once");
    assert_eq!(m.statistics.rows, u64::from(CONTROL_KEYS) + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_of_a_paused_job_is_immediate() {
    let (kv, _gate, storages, jobs, id) = paused_job(20).await;
    assert_eq!(kv.protections(), 1);
    jobs.cancel(id).unwrap();
    let record = jobs.job(id).unwrap();
    assert_eq!(record.status, JobStatus::Canceled);
    assert!(record.finished.is_some());
    assert_eq!(kv.protections(), 0, "protection released");
    assert!(
        !all_paths(&storages.get(URI))
            .await
            .iter()
            .any(|p| is_backup_file(p))
    );
    assert!(jobs.resume(id).await.is_err());
    assert!(jobs.cancel(id).is_err());
}
