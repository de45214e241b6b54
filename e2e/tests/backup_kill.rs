//! A backup whose process is killed (SIGKILL) mid-job, resumed by a new
//! process's registry over the same file-backed job store, holds exactly
//! the entries of an uninterrupted backup of the same end time.
//!
//! The test re-executes its own binary with `BACKUP_KILL_CHILD` set, which
//! makes the same test run [`kill_child`] instead: the child opens the cluster store, backs up through storage
//! made slow by a little latency with a checkpoint every few milliseconds,
//! and is killed once a checkpoint file exists. Should the child finish
//! first, the test retries with more latency; it fails rather than pass
//! without a kill in the middle of a job.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backup_exec::{BackupJobs, BackupSettings, JobStatus, JobStore, LayerChoice, StorageOpener};
use backup_format::paths::{BACKUP_MANIFEST, CHECKPOINT_PREFIX};
use backup_format::{Span, Timestamp};
use backup_storage::{
    ExternalStorage, FaultConfig, FaultyStorage, StorageContext, StorageError, StorageUri,
};
use common::{assert_same, latest, open, read};
use e2e::{FileJobStore, Fixture, ORDERS, USERS, reference_entries};
use embedded_cluster::{ClusterConfig, keys};

const CHILD: &str = "BACKUP_KILL_CHILD";

/// Opens storages with `latency` added to every operation.
struct Slow(Arc<StorageContext>, Duration);

impl StorageOpener for Slow {
    fn open(&self, uri: &StorageUri) -> Result<Arc<dyn ExternalStorage>, StorageError> {
        let config = FaultConfig {
            latency: self.1,
            ..FaultConfig::default()
        };
        Ok(Arc::new(FaultyStorage::new(self.0.open(uri)?, config)))
    }
}

fn settings() -> BackupSettings {
    BackupSettings {
        checkpoint_interval: Duration::from_millis(5),
        ..BackupSettings::for_tests()
    }
}

/// The child: `BACKUP_KILL_CHILD=<dir>`, `BACKUP_KILL_URI`,
/// `BACKUP_KILL_END=<wall>.<logical>`, `BACKUP_KILL_LATENCY_MS`.
fn kill_child() {
    let var = |k: &str| std::env::var(k).unwrap();
    let dir = PathBuf::from(var(CHILD));
    let uri = var("BACKUP_KILL_URI");
    let (wall, logical) = var("BACKUP_KILL_END")
        .split_once('.')
        .map(|(w, l)| (w.parse().unwrap(), l.parse().unwrap()))
        .unwrap();
    let end = Timestamp { wall, logical };
    let latency = Duration::from_millis(var("BACKUP_KILL_LATENCY_MS").parse().unwrap());
    let fx = Fixture::open(&dir, ClusterConfig::default()).unwrap();
    let host = fx.host_with(
        Arc::new(fx.cluster.clone()),
        Arc::new(Slow(fx.storage.clone(), latency)),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(BackupJobs::new(host, settings()).backup(fx.spec(
            &uri,
            end,
            LayerChoice::NewFull,
        )))
        .unwrap();
    assert_eq!(r.status, JobStatus::Succeeded);
}

/// Whether a file whose name starts with `prefix` is anywhere under `dir`.
fn has_file(dir: &Path, prefix: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            has_file(&path, prefix)
        } else {
            e.file_name().to_string_lossy().starts_with(prefix)
        }
    })
}

#[test]
fn a_killed_backup_process_resumes_to_the_same_entries() {
    if std::env::var_os(CHILD).is_some() {
        kill_child();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (end, node1) = {
        let fx = Fixture::open(dir.path(), ClusterConfig::default()).unwrap();
        fx.load(3000, 100, 3).unwrap();
        (fx.cluster.now().unwrap(), fx.cluster.node_dir(1).unwrap())
    }; // the store is closed here: the child opens it
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut killed = None;
    for (attempt, latency_ms) in [2u64, 8, 25].into_iter().enumerate() {
        let name = format!("killed-{attempt}");
        let uri = format!("nodelocal://1/{name}");
        let collection = node1.join(&name);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_killed_backup_process_resumes_to_the_same_entries",
                "--nocapture",
            ])
            .env(CHILD, dir.path())
            .env("BACKUP_KILL_URI", &uri)
            .env("BACKUP_KILL_END", format!("{}.{}", end.wall, end.logical))
            .env("BACKUP_KILL_LATENCY_MS", latency_ms.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let was_killed = loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "the child failed: {status}");
                break false;
            }
            if has_file(&collection, CHECKPOINT_PREFIX) {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                break true;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("the child neither checkpointed nor finished in time");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let jobs = FileJobStore::open(&dir.path().join("jobs")).unwrap();
        let record = jobs
            .list()
            .unwrap()
            .into_iter()
            .find(|r| r.description.contains(&uri))
            .expect("the child registered its job");
        // Killed mid-job: the record still says running (nobody concluded
        // it) and the layer has no manifest yet.
        if was_killed
            && record.status == JobStatus::Running
            && !has_file(&collection, BACKUP_MANIFEST)
        {
            killed = Some((uri, record.id));
            break;
        }
        eprintln!(
            "attempt {attempt} ({latency_ms} ms latency): not killed mid-job ({}), retrying slower",
            record.status.as_str()
        );
    }
    let (uri, id) = killed.expect("no attempt killed the child in the middle of a backup");

    // A new process: the dead child's store lock is gone.
    let fx = Fixture::open(dir.path(), ClusterConfig::default())
        .expect("the store reopens after its process was killed");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let jobs = BackupJobs::new(fx.host(), settings());
        let r = tokio::time::timeout(Duration::from_secs(20), jobs.resume(id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.status, JobStatus::Succeeded);
        assert_eq!(jobs.job(id).unwrap().status, JobStatus::Succeeded);
        assert!(fx.cluster.protections().unwrap().is_empty(), "released");
        let clean_uri = "nodelocal://1/uninterrupted";
        jobs.backup(fx.spec(clean_uri, end, LayerChoice::NewFull))
            .await
            .unwrap();

        let resumed = open(fx.storage.as_ref(), &uri);
        let resumed = read(&resumed, &latest(&resumed).await, None).await;
        let clean = open(fx.storage.as_ref(), clean_uri);
        let clean = read(&clean, &latest(&clean).await, None).await;
        assert_same(
            &resumed.entries,
            &clean.entries,
            "killed and resumed vs uninterrupted",
        );
        let spans: Vec<Span> = vec![keys::table_span(USERS), keys::table_span(ORDERS)];
        let want = reference_entries(&fx.cluster, &spans, Timestamp::ZERO, end, false).unwrap();
        assert_same(&resumed.entries, &want, "killed and resumed vs the cluster");
        assert_eq!(
            resumed.manifest.statistics.rows,
            clean.manifest.statistics.rows
        );
    });
}
