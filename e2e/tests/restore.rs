//! The restore job on the embedded cluster: backups of its tables (a full
//! backup and incrementals, with revision history) restored into new table
//! ids, compared with the cluster's own reads at the restore time; a failed
//! restore leaves nothing behind.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use backup_exec::{
    BackupJobs, BackupSettings, JobStatus, LayerChoice, RestoreJobs, RestoreSettings,
};
use backup_format::{DescriptorId, Timestamp};
use e2e::{
    Fixture, ORDERS, RecordingIngest, USERS, index_span, row, rows_as, users_orders_restore,
};
use embedded_cluster::{ClusterConfig, keys};

const URI: &str = "nodelocal://1/restores";

fn fixture() -> (tempfile::TempDir, Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let fx = Fixture::open(dir.path(), ClusterConfig::default()).unwrap();
    fx.load(1500, 48, 3).unwrap();
    (dir, fx)
}

/// A backup of both tables ending now (layer names are in hundredths of a second).
async fn backup(fx: &Fixture, layer: LayerChoice, revision_history: bool) -> Timestamp {
    tokio::time::sleep(Duration::from_millis(15)).await;
    let end = fx.cluster.now().unwrap();
    let mut spec = fx.spec(URI, end, layer);
    spec.revision_history = revision_history;
    let jobs = BackupJobs::new(fx.host(), BackupSettings::for_tests());
    jobs.backup(spec).await.unwrap();
    end
}

async fn restore(
    fx: &Fixture,
    as_of: Option<Timestamp>,
    new: DescriptorId,
    fail_publish: bool,
) -> Result<backup_exec::RestoreResult, backup_exec::ExecError> {
    let ingest = Arc::new(RecordingIngest {
        fail_publish,
        ..RecordingIngest::new(fx.cluster.clone())
    });
    let jobs = RestoreJobs::new(fx.host(), ingest.clone(), RestoreSettings::for_tests());
    let r = jobs.restore(users_orders_restore(URI, as_of, new)).await;
    if r.is_ok() {
        let published = ingest.published.lock().unwrap();
        let ids: Vec<u64> = published.iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![new, new + 1]);
        assert_eq!(published[0].spans, vec![keys::table_span(new)]);
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_restores_the_cluster_data_at_its_end_and_inside_its_history() {
    let (_dir, fx) = fixture();
    let c = &fx.cluster;
    let full = backup(&fx, LayerChoice::NewFull, true).await;
    // Changes between layers: updates, deletes and a transaction.
    for i in 0..300u32 {
        c.put(&row(USERS, i), format!("updated {i}").as_bytes())
            .unwrap();
    }
    let mid = c.now().unwrap();
    for i in 300..500u32 {
        c.delete(&row(ORDERS, i)).unwrap();
    }
    let txn = c.begin().unwrap();
    txn.put(&row(ORDERS, 5000), b"new order").unwrap();
    txn.delete(&row(USERS, 1499)).unwrap();
    txn.commit().unwrap();
    let inc1 = backup(&fx, LayerChoice::Latest, true).await;
    for i in 0..100u32 {
        c.delete(&row(USERS, i)).unwrap();
    }
    let inc2 = backup(&fx, LayerChoice::Latest, false).await;

    let mut next = 200;
    for (as_of, at) in [
        (None, inc2),
        (Some(mid), mid),
        (Some(inc1), inc1),
        (Some(full), full),
    ] {
        let r = restore(&fx, as_of, next, false).await.unwrap();
        assert_eq!(r.status, JobStatus::Succeeded);
        let now = c.now().unwrap();
        for (old, new) in [(USERS, next), (ORDERS, next + 1)] {
            let want = rows_as(c, old, at, new);
            assert!(!want.is_empty());
            assert_eq!(
                rows_as(c, new, now, new),
                want,
                "table {old} restored as {new} at {at}"
            );
        }
        let index_entries = rows_as(c, USERS, at, USERS)
            .keys()
            .filter(|k| index_span(USERS, 2).contains_key(k))
            .count() as u64;
        assert_eq!(r.index_entries, index_entries);
        next += 10;
    }
    // Inside the last layer, which has no revision history: an error.
    let err = restore(&fx, Some(inc1.add_nanos(1)), 300, false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("without revision_history"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restore_leaves_no_data_in_the_cluster() {
    let (_dir, fx) = fixture();
    backup(&fx, LayerChoice::NewFull, false).await;
    let err = restore(&fx, None, 400, true).await.unwrap_err();
    assert!(
        err.to_string().contains("injected publish failure"),
        "{err}"
    );
    let now = fx.cluster.now().unwrap();
    for t in [400, 401] {
        assert!(
            rows_as(&fx.cluster, t, now, t).is_empty(),
            "table {t} has restored data left"
        );
    }
}
