//! Restore job control on the in-memory fake host: pause, resume from the
//! checkpoint, cancel (running or paused) leaving nothing behind, all held
//! mid-run at an ingest gate; and the system rows of a full-cluster restore.
#![allow(clippy::unwrap_used)]

mod restore_support;

use std::sync::Arc;

use backup_exec::restore::testing::{MemoryIngest, table_span};
use backup_exec::testing::{MemoryKv, StaticCatalog, memory_host};
use backup_exec::{
    ExecError, JobStatus, LayerChoice, RestoreJobs, RestoreSettings, RestoreSpec, RestoreTargets,
};
use restore_support::*;

/// A target whose restores run one unit at a time (so progress is ordered).
fn serial_target(fx: &Fixture) -> (Arc<MemoryIngest>, RestoreJobs) {
    let ingest = Arc::new(MemoryIngest::default());
    let host = memory_host(
        Arc::new(MemoryKv::new(1, &[])),
        Arc::new(StaticCatalog::default()),
        fx.storages.clone(),
    );
    let settings = RestoreSettings {
        workers: 1,
        ..RestoreSettings::for_tests()
    };
    (ingest.clone(), RestoreJobs::new(host, ingest, settings))
}

async fn source() -> (Fixture, backup_format::Timestamp) {
    let fx = Fixture::new();
    for t in [51, 52, 53, SEQUENCE] {
        for r in 0..1500 {
            fx.put(t, r, Some(format!("{t}-{r}-{}", "y".repeat(60)).as_bytes()));
        }
    }
    let end = fx.backup(LayerChoice::NewFull, false, None).await;
    (fx, end)
}

fn detached(targets: RestoreTargets) -> RestoreSpec {
    let mut spec = restore_spec(targets, None);
    spec.options.detached = true;
    spec
}

/// Runs `f` on a blocking thread (gate waits block).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_restore_resumes_from_its_checkpoint_and_finishes() {
    let (fx, end) = source().await;
    // A whole run, for the number of batches it takes.
    let (whole, jobs) = serial_target(&fx);
    jobs.restore(restore_spec(RestoreTargets::Databases(vec![DB]), None))
        .await
        .unwrap();
    let all_batches = whole.batches();
    assert!(all_batches >= 8, "{all_batches} batches");

    let (ingest, jobs) = serial_target(&fx);
    ingest.gate.close_at(all_batches / 2);
    let id = jobs
        .restore(detached(RestoreTargets::Databases(vec![DB])))
        .await
        .unwrap()
        .job_id;
    let g = ingest.clone();
    assert!(blocking(move || g.gate.wait_for_arrivals(all_batches / 2)).await);
    jobs.pause(id).unwrap();
    assert_eq!(jobs.job(id).unwrap().status, JobStatus::PauseRequested);
    ingest.gate.open();
    let err = jobs.wait(id).await.unwrap_err();
    assert!(matches!(err, ExecError::Paused(j) if j == id), "{err}");
    let paused = jobs.job(id).unwrap();
    assert_eq!(paused.status, JobStatus::Paused);
    assert!(
        paused.fraction_completed > 0.0 && paused.fraction_completed < 1.0,
        "{}",
        paused.fraction_completed
    );
    assert!(
        ingest.published().is_empty(),
        "nothing is visible while paused"
    );
    assert!(jobs.resume(id + 1000).await.is_err());

    let before = ingest.batches();
    let r = jobs.resume(id).await.unwrap();
    assert_eq!(r.status, JobStatus::Succeeded);
    assert_eq!(jobs.job(id).unwrap().status, JobStatus::Succeeded);
    let resumed_batches = ingest.batches() - before;
    assert!(
        resumed_batches < all_batches,
        "the resumed run redid everything: {resumed_batches} of {all_batches} batches"
    );
    for t in [51, 52, 53, SEQUENCE] {
        assert_eq!(restored(&ingest, t), fx.read_at(t, end), "table {t}");
    }
    assert_eq!(ingest.published().len(), 6);
    // A finished job can be neither paused, resumed nor canceled.
    assert!(jobs.pause(id).is_err());
    assert!(jobs.resume(id).await.is_err());
    assert!(jobs.cancel(id).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canceled_restore_leaves_nothing_whether_running_or_paused() {
    let (fx, _) = source().await;
    // Canceled while running, held at its third batch.
    let (ingest, jobs) = serial_target(&fx);
    ingest.gate.close_at(3);
    let id = jobs
        .restore(detached(RestoreTargets::Cluster))
        .await
        .unwrap()
        .job_id;
    let g = ingest.clone();
    assert!(blocking(move || g.gate.wait_for_arrivals(3)).await);
    jobs.cancel(id).await.unwrap();
    assert_eq!(jobs.job(id).unwrap().status, JobStatus::CancelRequested);
    ingest.gate.open();
    let err = jobs.wait(id).await.unwrap_err();
    assert!(matches!(err, ExecError::Canceled(j) if j == id), "{err}");
    let record = jobs.job(id).unwrap();
    assert_eq!(record.status, JobStatus::Canceled);
    assert!(record.finished.is_some());
    assert!(ingest.published().is_empty());
    assert!(ingest.entries().is_empty(), "ingested data was left behind");

    // Paused first, then canceled: cleaned up at once.
    let (ingest, jobs) = serial_target(&fx);
    ingest.gate.close_at(3);
    let id = jobs
        .restore(detached(RestoreTargets::Tables(vec![51])))
        .await
        .unwrap()
        .job_id;
    let g = ingest.clone();
    assert!(blocking(move || g.gate.wait_for_arrivals(3)).await);
    jobs.pause(id).unwrap();
    ingest.gate.open();
    assert!(jobs.wait(id).await.is_err());
    assert_eq!(jobs.job(id).unwrap().status, JobStatus::Paused);
    assert!(!ingest.entries().is_empty(), "a paused job keeps its data");
    jobs.cancel(id).await.unwrap();
    assert_eq!(jobs.job(id).unwrap().status, JobStatus::Canceled);
    assert!(ingest.published().is_empty());
    assert!(ingest.entries().is_empty(), "ingested data was left behind");
    assert!(
        jobs.resume(id).await.is_err(),
        "a canceled job cannot resume"
    );

    // Job control of this registry touches only restore jobs.
    let backup = fx.host.jobs.list().unwrap()[0].clone();
    assert_eq!(backup.kind, backup_exec::JobKind::Backup);
    let source_jobs = RestoreJobs::new(fx.host.clone(), ingest, RestoreSettings::for_tests());
    for e in [
        source_jobs.cancel(backup.id).await.unwrap_err(),
        source_jobs.resume(backup.id).await.unwrap_err(),
    ] {
        assert!(e.to_string().contains("not a restore"), "{e}");
    }
    assert_eq!(fx.host.jobs.get(backup.id).unwrap().unwrap(), backup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_restore_hands_system_rows_to_the_host_and_never_publishes_them() {
    let (fx, end) = source().await;
    // The target declares table 53 one of its system tables.
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    ingest.system.lock().unwrap().insert(53);
    let err = jobs
        .restore(restore_spec(RestoreTargets::Tables(vec![53]), None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("full cluster restore"), "{err}");
    assert!(ingest.published().is_empty());

    jobs.restore(restore_spec(RestoreTargets::Cluster, None))
        .await
        .unwrap();
    let published: Vec<u64> = ingest.published().iter().map(|d| d.id).collect();
    assert_eq!(published.len(), 5, "{published:?}");
    assert!(!published.contains(&153) && !published.contains(&53));
    assert!(
        ingest
            .entries()
            .iter()
            .all(|e| !table_span(153).contains_key(&e.key) && !table_span(53).contains_key(&e.key)),
        "system rows were ingested as data"
    );
    let rows = ingest.system_rows();
    assert_eq!(rows.len(), 1);
    let (system, ids) = &rows[0];
    assert_eq!(system.table, 53);
    let expected: Vec<(Vec<u8>, Vec<u8>)> = fx.read_at(53, end).into_iter().collect();
    assert_eq!(system.rows, expected);
    assert_eq!(ids.get(&51), Some(&151));
    assert!(!ids.contains_key(&53));
}
