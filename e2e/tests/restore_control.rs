//! Restore job control on the embedded cluster: a restore held mid-run at
//! an ingest gate (never a sleep) is paused and resumed from its checkpoint,
//! or canceled, which removes everything it ingested from the cluster.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use backup_exec::restore::testing::Gate;
use backup_exec::{
    BackupJobs, BackupSettings, ExecError, HostError, IdRewrites, Ingest, IngestBatch, JobStatus,
    KeyRewriter, LayerChoice, RestoreJobs, RestoreSettings,
};
use backup_format::{Descriptor, DescriptorId, Span, Timestamp};
use e2e::{Fixture, ORDERS, USERS, rows_as, users_orders_restore};
use embedded_cluster::{Cluster, ClusterConfig};

const URI: &str = "nodelocal://1/control";

/// The cluster's ingest behind a gate; publication is recorded here (the
/// fixture's descriptors carry no catalog payload for the cluster to decode).
struct GatedIngest {
    cluster: Cluster,
    gate: Gate,
    batches: AtomicUsize,
    published: Mutex<Vec<Descriptor>>,
}

impl Ingest for GatedIngest {
    fn key_rewriter(&self, rewrites: &IdRewrites) -> Result<Box<dyn KeyRewriter>, HostError> {
        self.cluster.key_rewriter(rewrites)
    }
    fn ingest(&self, batch: IngestBatch) -> Result<(), HostError> {
        self.gate.pass();
        self.batches.fetch_add(1, Ordering::Relaxed);
        Ingest::ingest(&self.cluster, batch)
    }
    fn sync(&self) -> Result<(), HostError> {
        Ingest::sync(&self.cluster)
    }
    fn publish(&self, descriptors: &[Descriptor]) -> Result<(), HostError> {
        self.published
            .lock()
            .unwrap()
            .extend_from_slice(descriptors);
        Ok(())
    }
    fn abort(&self, spans: &[Span]) -> Result<(), HostError> {
        self.cluster.abort(spans)
    }
}

fn gated(fx: &Fixture) -> (Arc<GatedIngest>, RestoreJobs) {
    let ingest = Arc::new(GatedIngest {
        cluster: fx.cluster.clone(),
        gate: Gate::default(),
        batches: AtomicUsize::new(0),
        published: Mutex::new(Vec::new()),
    });
    let settings = RestoreSettings {
        workers: 1,
        ..RestoreSettings::for_tests()
    };
    (
        ingest.clone(),
        RestoreJobs::new(fx.host(), ingest, settings),
    )
}

async fn source(dir: &std::path::Path) -> (Fixture, Timestamp) {
    let fx = Fixture::open(dir, ClusterConfig::default()).unwrap();
    fx.load(2000, 48, 3).unwrap();
    let end = fx.cluster.now().unwrap();
    let jobs = BackupJobs::new(fx.host(), BackupSettings::for_tests());
    jobs.backup(fx.spec(URI, end, LayerChoice::NewFull))
        .await
        .unwrap();
    (fx, end)
}

async fn arrivals(ingest: &Arc<GatedIngest>, n: usize) {
    let i = ingest.clone();
    let reached = tokio::task::spawn_blocking(move || i.gate.wait_for_arrivals(n))
        .await
        .unwrap();
    assert!(reached, "the restore never reached ingest batch {n}");
}

/// The users/orders restore as tables `new` and `new + 1`, detached.
fn detached(new: DescriptorId) -> backup_exec::RestoreSpec {
    let mut spec = users_orders_restore(URI, None, new);
    spec.options.detached = true;
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_restore_resumes_from_its_checkpoint_on_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (fx, end) = source(dir.path()).await;
    // A whole run, for the number of batches it takes.
    let (whole, jobs) = gated(&fx);
    let id = jobs.restore(detached(700)).await.unwrap().job_id;
    jobs.wait(id).await.unwrap();
    let all = whole.batches.load(Ordering::Relaxed);
    assert!(all >= 8, "{all} batches");

    let (ingest, jobs) = gated(&fx);
    ingest.gate.close_at(all / 2);
    let id = jobs.restore(detached(400)).await.unwrap().job_id;
    arrivals(&ingest, all / 2).await;
    jobs.pause(id).unwrap();
    ingest.gate.open();
    let err = jobs.wait(id).await.unwrap_err();
    assert!(matches!(err, ExecError::Paused(_)), "{err}");
    let paused = jobs.job(id).unwrap();
    assert_eq!(paused.status, JobStatus::Paused);
    assert!(
        paused.fraction_completed > 0.0,
        "no unit finished before the pause"
    );
    assert!(ingest.published.lock().unwrap().is_empty());

    let before = ingest.batches.load(Ordering::Relaxed);
    let r = jobs.resume(id).await.unwrap();
    assert_eq!(r.status, JobStatus::Succeeded);
    let again = ingest.batches.load(Ordering::Relaxed) - before;
    assert!(
        again < all,
        "the resumed run redid everything: {again} of {all}"
    );
    let now = fx.cluster.now().unwrap();
    assert_eq!(
        rows_as(&fx.cluster, 400, now, 400),
        rows_as(&fx.cluster, USERS, end, 400)
    );
    assert_eq!(
        rows_as(&fx.cluster, 401, now, 401),
        rows_as(&fx.cluster, ORDERS, end, 401)
    );
    let ids: Vec<u64> = ingest
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, [400, 401]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canceled_restore_removes_what_it_ingested_from_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (fx, _) = source(dir.path()).await;
    let (ingest, jobs) = gated(&fx);
    ingest.gate.close_at(4);
    let id = jobs.restore(detached(600)).await.unwrap().job_id;
    arrivals(&ingest, 4).await;
    let now = fx.cluster.now().unwrap();
    assert!(
        !rows_as(&fx.cluster, 600, now, 600).is_empty(),
        "batches before the gate were ingested"
    );
    jobs.cancel(id).await.unwrap();
    assert_eq!(jobs.job(id).unwrap().status, JobStatus::CancelRequested);
    ingest.gate.open();
    let err = jobs.wait(id).await.unwrap_err();
    assert!(matches!(err, ExecError::Canceled(_)), "{err}");
    assert_eq!(jobs.job(id).unwrap().status, JobStatus::Canceled);
    assert!(ingest.published.lock().unwrap().is_empty());
    let now = fx.cluster.now().unwrap();
    for t in [600, 601] {
        assert!(
            rows_as(&fx.cluster, t, now, t).is_empty(),
            "table {t} has restored data left"
        );
    }
}
