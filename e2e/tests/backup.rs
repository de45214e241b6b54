//! Backups on the embedded cluster read back with backup-format's readers:
//! full and incremental, introduced spans and the new-full-needed errors,
//! revision history, `exclude_data_from_backup`, GC refusal, encryption.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use backup_exec::{ExecError, JobStatus, LayerChoice};
use backup_format::paths::incremental_dir;
use backup_format::{Span, Timestamp};
use common::{URI, assert_same, fixture, jobs, latest, open, read};
use e2e::{ORDERS, RecordingKv, USERS, reference_entries, row, table};
use embedded_cluster::keys;

fn all_spans() -> Vec<Span> {
    vec![keys::table_span(USERS), keys::table_span(ORDERS)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_then_incremental_equal_the_clusters_exports() {
    let (_dir, fx) = fixture(600);
    let jobs = jobs(fx.host());
    let end1 = fx.cluster.now().unwrap();
    let r = jobs
        .backup(fx.spec(URI, end1, LayerChoice::NewFull))
        .await
        .unwrap();
    assert_eq!(r.status, JobStatus::Succeeded);
    assert_eq!((r.rows, r.index_entries), (1200, 600));
    let storage = open(fx.storage.as_ref(), URI);
    let full = latest(&storage).await;
    let layer = read(&storage, &full, None).await;
    let want = reference_entries(&fx.cluster, &all_spans(), Timestamp::ZERO, end1, false).unwrap();
    assert_same(&layer.entries, &want, "full backup");
    assert_eq!(layer.manifest.statistics.rows, 1200);
    assert!(layer.files.len() > 1, "files split at the file size");
    assert!(fx.cluster.protections().unwrap().is_empty(), "released");

    fx.cluster.put(&row(USERS, 7), b"changed").unwrap();
    fx.cluster.delete(&row(ORDERS, 9)).unwrap();
    fx.cluster.put(&row(ORDERS, 100_000), b"new").unwrap();
    let end2 = fx.cluster.now().unwrap();
    let r = jobs
        .backup(fx.spec(URI, end2, LayerChoice::Latest))
        .await
        .unwrap();
    assert_eq!(r.rows, 3);
    let inc = read(&storage, &incremental_dir(&full, end2), None).await;
    assert_eq!(inc.manifest.start_time, end1);
    let want = reference_entries(&fx.cluster, &all_spans(), end1, end2, false).unwrap();
    assert_eq!(want.len(), 3);
    assert!(
        want.iter().any(|e| e.value.is_none()),
        "the delete is a tombstone"
    );
    assert_same(&inc.entries, &want, "incremental");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_table_is_introduced_and_a_changed_chain_needs_a_full_backup() {
    let (_dir, fx) = fixture(200);
    let jobs = jobs(fx.host());
    // The full backup holds only USERS; ORDERS is created after it.
    let end1 = fx.cluster.now().unwrap();
    let mut users_only = fx.spec(URI, end1, LayerChoice::NewFull);
    users_only.descriptors.retain(|d| d.id == USERS);
    users_only.spans = vec![keys::table_span(USERS)];
    jobs.backup(users_only).await.unwrap();
    let storage = open(fx.storage.as_ref(), URI);
    let full = latest(&storage).await;

    // ORDERS existed when the full backup ran: the chain does not cover it.
    let end2 = fx.cluster.now().unwrap();
    let err = jobs
        .backup(fx.spec(URI, end2, LayerChoice::Latest))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::NeedsFullBackup { .. }), "{err}");
    assert!(err.to_string().contains("orders"), "{err}");

    // Now the catalog says ORDERS was created after the full backup.
    {
        let mut c = fx.catalog.descriptors.lock().unwrap();
        c.retain(|(_, d)| d.id != ORDERS);
        c.push((end1.next(), table(ORDERS, "orders")));
    }
    let end3 = fx.cluster.now().unwrap();
    jobs.backup(fx.spec(URI, end3, LayerChoice::Latest))
        .await
        .unwrap();
    let inc = read(&storage, &incremental_dir(&full, end3), None).await;
    assert_eq!(
        inc.manifest.introduced_spans,
        vec![keys::table_span(ORDERS)]
    );
    let orders = reference_entries(
        &fx.cluster,
        &[keys::table_span(ORDERS)],
        Timestamp::ZERO,
        end3,
        false,
    )
    .unwrap();
    assert_eq!(orders.len(), 200, "introduced spans read from time zero");
    assert_same(&inc.entries, &orders, "introduced ORDERS");

    // USERS dropped and recreated since the last layer.
    {
        let mut c = fx.catalog.descriptors.lock().unwrap();
        c.retain(|(_, d)| d.id != USERS);
        c.push((end3.next(), table(USERS, "users")));
    }
    let end4 = fx.cluster.now().unwrap();
    let err = jobs
        .backup(fx.spec(URI, end4, LayerChoice::Latest))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecError::TableRecreated { table: USERS }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_location_and_an_empty_subdir() {
    let (_dir, fx) = fixture(100);
    let jobs = jobs(fx.host());
    let end1 = fx.cluster.now().unwrap();
    // An explicit subdir with no full backup in it: a full backup is taken there.
    jobs.backup(fx.spec(URI, end1, LayerChoice::Subdir("/2024/q1".into())))
        .await
        .unwrap();
    let storage = open(fx.storage.as_ref(), URI);
    let full = read(&storage, "2024/q1", None).await;
    assert_eq!(full.manifest.start_time, Timestamp::ZERO);
    fx.cluster.put(&row(USERS, 3), b"x").unwrap();
    let end2 = fx.cluster.now().unwrap();
    let mut spec = fx.spec(URI, end2, LayerChoice::Subdir("2024/q1".into()));
    spec.destination.incremental_location = Some("nodelocal://2/incs".into());
    jobs.backup(spec).await.unwrap();
    let incs = open(fx.storage.as_ref(), "nodelocal://2/incs");
    let inc = read(&incs, &incremental_dir("2024/q1", end2), None).await;
    assert_eq!((inc.manifest.start_time, inc.entries.len()), (end1, 1));
    assert!(
        !storage
            .exists(&incremental_dir("2024/q1", end2))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_history_keeps_every_revision() {
    let (_dir, fx) = fixture(100);
    for v in 0..5u8 {
        fx.cluster.put(&row(USERS, 1), &[v; 10]).unwrap();
    }
    fx.cluster.delete(&row(ORDERS, 2)).unwrap();
    let end = fx.cluster.now().unwrap();
    let mut spec = fx.spec(URI, end, LayerChoice::NewFull);
    spec.revision_history = true;
    jobs(fx.host()).backup(spec).await.unwrap();
    let storage = open(fx.storage.as_ref(), URI);
    let layer = read(&storage, &latest(&storage).await, None).await;
    let want = reference_entries(&fx.cluster, &all_spans(), Timestamp::ZERO, end, true).unwrap();
    let revisions = want.iter().filter(|e| e.key == row(USERS, 1)).count();
    assert_eq!(revisions, 6, "the load plus five updates");
    assert!(layer.manifest.revision_history);
    assert_same(&layer.entries, &want, "revision history");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_table_keeps_its_schema_but_not_its_data() {
    let (_dir, fx) = fixture(100);
    let end = fx.cluster.now().unwrap();
    let mut spec = fx.spec(URI, end, LayerChoice::NewFull);
    for d in &mut spec.descriptors {
        d.exclude_data_from_backup = d.id == ORDERS;
    }
    spec.spans = vec![keys::table_span(USERS)];
    jobs(fx.host()).backup(spec).await.unwrap();
    let storage = open(fx.storage.as_ref(), URI);
    let dir = latest(&storage).await;
    let layer = read(&storage, &dir, None).await;
    assert!(
        layer
            .entries
            .iter()
            .all(|e| keys::table_of(&e.key) == Some(USERS))
    );
    assert_eq!(layer.entries.len(), 200, "users rows and index entries");
    let raw = storage
        .get(&format!("{dir}/{}", layer.manifest.descriptors.name))
        .await
        .unwrap();
    let descriptors: Vec<backup_format::Descriptor> =
        backup_format::manifest::SideFileReader::<_, backup_format::Descriptor>::open(
            "d",
            std::io::Cursor::new(raw),
            &layer.manifest.descriptors,
            None,
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let orders = descriptors.iter().find(|d| d.id == ORDERS).unwrap();
    assert!(orders.exclude_data_from_backup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_gc_threshold_is_refused_before_any_work() {
    let (_dir, fx) = fixture(50);
    let old = fx.cluster.now().unwrap();
    fx.cluster.put(&row(USERS, 1), b"newer").unwrap();
    for t in [USERS, ORDERS] {
        fx.cluster.set_gc_ttl(t, Duration::from_secs(1)).unwrap();
    }
    fx.cluster
        .run_gc_at(Timestamp::from_wall(old.wall + 3_000_000_000))
        .unwrap();
    let threshold = fx.cluster.gc_threshold(&keys::table_span(USERS));
    assert!(threshold >= old, "GC moved the threshold past the old time");
    let kv = Arc::new(RecordingKv::new(fx.cluster.clone(), None));
    let err = jobs(fx.host_with(kv.clone(), fx.storage.clone()))
        .backup(fx.spec(URI, old, LayerChoice::NewFull))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::BelowGcThreshold { .. }), "{err}");
    assert!(err.to_string().contains(&threshold.to_string()), "{err}");
    assert!(kv.calls().is_empty(), "no export before the check");
    let storage = open(fx.storage.as_ref(), URI);
    assert!(storage.list("", true).await.unwrap().objects.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_backup_reads_only_with_its_key() {
    let (_dir, fx) = fixture(200);
    let end = fx.cluster.now().unwrap();
    let mut spec = fx.spec(URI, end, LayerChoice::NewFull);
    spec.encryption_passphrase = Some("correct horse".into());
    jobs(fx.host()).backup(spec).await.unwrap();
    let storage = open(fx.storage.as_ref(), URI);
    let dir = latest(&storage).await;
    let no_key = e2e::read_backup(&storage, &Default::default(), &dir, None).await;
    assert!(no_key.is_err(), "readable without the key");
    let wrong = e2e::backup_key(&storage, &dir, "wrong").await;
    assert!(wrong.is_err(), "a wrong passphrase derives no key");
    let key = e2e::backup_key(&storage, &dir, "correct horse")
        .await
        .unwrap();
    let layer = read(&storage, &dir, Some(&key)).await;
    let want = reference_entries(&fx.cluster, &all_spans(), Timestamp::ZERO, end, false).unwrap();
    assert_same(&layer.entries, &want, "encrypted backup");
    // Plain bytes of a value never appear in a stored data file.
    let file = &layer.files[0];
    let bytes = storage.get(&format!("{dir}/{}", file.path)).await.unwrap();
    let needle = e2e::value(1, 100);
    assert!(!bytes.windows(20).any(|w| w == &needle[..20]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_file_holds_one_contiguous_run_of_key_space() {
    // Six ranges over three nodes: each node's ranges have others' between
    // them. Files large enough to hold every range a worker exports.
    let (_dir, fx) = fixture(2000);
    let settings = backup_exec::BackupSettings {
        file_size: 64 << 20,
        per_node_concurrency: 1,
        ..backup_exec::BackupSettings::for_tests()
    };
    let jobs = backup_exec::BackupJobs::new(fx.host(), settings);
    let end = fx.cluster.now().unwrap();
    let r = jobs
        .backup(fx.spec(URI, end, LayerChoice::NewFull))
        .await
        .unwrap();
    assert_eq!(r.status, JobStatus::Succeeded);
    let storage = open(fx.storage.as_ref(), URI);
    let layer = read(&storage, &latest(&storage).await, None).await;
    let want = reference_entries(&fx.cluster, &all_spans(), Timestamp::ZERO, end, false).unwrap();
    assert_same(&layer.entries, &want, "full backup");
    let mut spans: Vec<&Span> = layer.files.iter().map(|f| &f.span).collect();
    spans.sort_by(|a, b| a.start.cmp(&b.start));
    assert!(spans.len() >= 6, "at least a file per range: {spans:?}");
    for w in spans.windows(2) {
        assert!(
            w[0].end <= w[1].start,
            "files overlap: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
}
