//! The restore job on the in-memory fake host, from backups taken with the
//! real backup job: chains, AS OF SYSTEM TIME, failures that leave nothing
//! visible, dependencies and the skip_missing_* options, ranged reads.
#![allow(clippy::unwrap_used)]

mod restore_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use backup_exec::restore::read_backup;
use backup_exec::restore::testing::{MemoryIngest, table_span};
use backup_exec::restore::{BackupChoice, DescriptorRewrite, RestoreSource};
use backup_exec::{
    BackupJobs, BackupSettings, ExecError, JobKind, JobStatus, LayerChoice, RestoreTargets,
};
use backup_format::{DependencyKind, DescriptorKind};
use backup_storage::ExternalStorage;
use restore_support::*;

fn assert_nothing_visible(ingest: &MemoryIngest) {
    assert!(ingest.published().is_empty(), "descriptors were published");
    assert!(ingest.entries().is_empty(), "restored data was left behind");
}

/// Writes `rows` rows into each table and the sequence, then updates and
/// deletes some of them in later rounds.
fn write_round(fx: &Fixture, round: u32, rows: u32) {
    for t in [51, 52, 53, SEQUENCE] {
        for r in 0..rows {
            match (r + round) % 5 {
                0 if round > 0 => fx.put(t, r, None),
                _ => fx.put(
                    t,
                    r,
                    Some(format!("v{round}-{r}-{}", "x".repeat(30)).as_bytes()),
                ),
            };
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restore_of_a_full_and_incrementals_equals_the_source_at_the_end() {
    let fx = Fixture::new();
    write_round(&fx, 0, 300);
    fx.backup(LayerChoice::NewFull, false, None).await;
    for round in 1..=3 {
        write_round(&fx, round, 300 + round * 20);
        fx.backup(LayerChoice::Latest, false, None).await;
    }
    let end = fx.kv.put(b"zz-after", Some(b"x"));
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    let mut spec = restore_spec(RestoreTargets::Databases(vec![DB]), None);
    spec.rewrites.get_mut(&DB).unwrap().name = Some("bank2".into()); // new_db_name
    let r = jobs.restore(spec).await.unwrap();
    assert_eq!(r.status, JobStatus::Succeeded);
    let mut expected_rows = 0;
    for t in [51, 52, 53, SEQUENCE] {
        let source = fx.read_at(t, end);
        assert!(!source.is_empty());
        expected_rows += source.len() as u64;
        assert_eq!(restored(&ingest, t), source, "table {t}");
    }
    assert_eq!(r.rows, expected_rows);
    // Every restored entry is written at one timestamp.
    let times: std::collections::BTreeSet<_> = ingest.entries().iter().map(|e| e.ts).collect();
    assert_eq!(times.len(), 1);
    // Published once, under new ids, parents, names and dependencies.
    let published = ingest.published();
    assert_eq!(published.len(), 6);
    let db = published.iter().find(|d| d.id == DB + 100).unwrap();
    assert_eq!(db.name, "bank2");
    let t52 = published.iter().find(|d| d.id == 152).unwrap();
    assert_eq!((t52.parent_id, t52.dependencies[0].id), (DB + 100, 151));
    assert_eq!(t52.spans, vec![table_span(152)]);
    let job = jobs.job(r.job_id).unwrap();
    assert_eq!(
        (job.kind, job.status, job.fraction_completed),
        (JobKind::Restore, JobStatus::Succeeded, 1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_system_time_inside_revision_history_restores_that_time() {
    let fx = Fixture::new();
    let mut times = Vec::new();
    write_round(&fx, 0, 100);
    times.push(fx.put(51, 7, Some(b"early")));
    let full_end = fx.backup(LayerChoice::NewFull, true, None).await;
    for round in 1..=4 {
        write_round(&fx, round, 120);
        times.push(fx.put(51, 7, Some(format!("round {round}").as_bytes())));
        if round == 2 {
            fx.backup(LayerChoice::Latest, true, None).await;
        }
    }
    let chain_end = fx.backup(LayerChoice::Latest, true, None).await;
    times.push(full_end);
    times.push(chain_end);
    for t in times {
        let (ingest, jobs) = target(&fx, fx.storages.clone());
        let spec = restore_spec(RestoreTargets::Tables(vec![51, 52]), Some(t));
        jobs.restore(spec).await.unwrap();
        for table in [51, 52] {
            assert_eq!(
                restored(&ingest, table),
                fx.read_at(table, t),
                "table {table} at {t}"
            );
        }
    }
    // After the chain's end: an error naming the end time.
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    let late = fx.kv.put(b"zz", Some(b"x"));
    let err = jobs
        .restore(restore_spec(RestoreTargets::Tables(vec![51]), Some(late)))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::RestoreTime { .. }), "{err}");
    assert!(err.to_string().contains(&chain_end.to_string()), "{err}");
    assert_nothing_visible(&ingest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_inside_a_window_restores_the_schema_of_that_time() {
    for passphrase in [None, Some("correct horse")] {
        let mut fx = Fixture::new();
        write_round(&fx, 0, 40);
        fx.backup(LayerChoice::NewFull, true, passphrase).await;
        let before = fx.put(51, 1, Some(b"before the change"));
        let changed = fx.change_schema(51, b"with a new column");
        let after = fx.put(51, 2, Some(b"after the change"));
        let end = fx.backup(LayerChoice::Latest, true, passphrase).await;
        for (at, payload) in [
            (before, schema()[1].payload.clone()),
            (changed, b"with a new column".to_vec()),
            (after, b"with a new column".to_vec()),
            (end, b"with a new column".to_vec()),
        ] {
            let (ingest, jobs) = target(&fx, fx.storages.clone());
            let mut spec = restore_spec(RestoreTargets::Tables(vec![51]), Some(at));
            spec.options.encryption_passphrase = passphrase.map(str::to_string);
            jobs.restore(spec).await.unwrap();
            assert_eq!(restored(&ingest, 51), fx.read_at(51, at), "rows at {at}");
            let published = ingest.published();
            assert_eq!(published[0].payload, payload, "schema at {at}");
        }
    }
}

/// A full backup with revision history holds history only from above the
/// GC threshold of its spans at the time it was taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_backups_history_starts_above_the_gc_threshold() {
    let fx = Fixture::new();
    write_round(&fx, 0, 20);
    let collected = fx.put(51, 1, Some(b"garbage collected"));
    let threshold = fx.put(51, 2, Some(b"at the threshold"));
    fx.kv.set_gc_threshold(threshold);
    let kept = fx.put(51, 3, Some(b"kept"));
    fx.backup(LayerChoice::NewFull, true, None).await;

    let (ingest, jobs) = target(&fx, fx.storages.clone());
    jobs.restore(restore_spec(RestoreTargets::Tables(vec![51]), Some(kept)))
        .await
        .unwrap();
    assert_eq!(restored(&ingest, 51), fx.read_at(51, kept));

    let (ingest, jobs) = target(&fx, fx.storages.clone());
    for at in [collected, threshold] {
        let err = jobs
            .restore(restore_spec(RestoreTargets::Tables(vec![51]), Some(at)))
            .await
            .unwrap_err();
        assert!(matches!(err, ExecError::RestoreTime { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("available only from {}", threshold.next())),
            "{text}"
        );
    }
    assert_nothing_visible(&ingest);
}

/// A host without descriptor history (or a backup from before revisions
/// were recorded) knows the schema only at each window's ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_descriptor_history_a_time_where_the_schema_changed_is_an_error_not_a_guess() {
    let mut fx = Fixture::new();
    fx.catalog.without_history.store(true, Ordering::Relaxed);
    write_round(&fx, 0, 40);
    fx.backup(LayerChoice::NewFull, true, None).await;
    let inside = fx.put(51, 1, Some(b"before the change"));
    // Table 51's schema changes inside the incremental's window; the
    // sequence's does not.
    let t51 = fx.schema.iter_mut().find(|d| d.id == 51).unwrap();
    t51.payload = b"with a new column".to_vec();
    fx.put(51, 2, Some(b"after the change"));
    let end = fx.backup(LayerChoice::Latest, true, None).await;

    let (ingest, jobs) = target(&fx, fx.storages.clone());
    let err = jobs
        .restore(restore_spec(RestoreTargets::Tables(vec![51]), Some(inside)))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::RestoreTime { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("table51") && text.contains("schema") && text.contains(&end.to_string()),
        "{text}"
    );
    assert_nothing_visible(&ingest);
    // A database restore there fails the same way.
    let err = jobs
        .restore(restore_spec(
            RestoreTargets::Databases(vec![DB]),
            Some(inside),
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("table51"), "{err}");
    // An unchanged object restores at that time; the changed one at the end.
    jobs.restore(restore_spec(
        RestoreTargets::Tables(vec![SEQUENCE]),
        Some(inside),
    ))
    .await
    .unwrap();
    assert_eq!(restored(&ingest, SEQUENCE), fx.read_at(SEQUENCE, inside));
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    jobs.restore(restore_spec(RestoreTargets::Tables(vec![51]), Some(end)))
        .await
        .unwrap();
    assert_eq!(restored(&ingest, 51), fx.read_at(51, end));
    let published = ingest.published();
    assert_eq!(published[0].payload, b"with a new column");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_outside_revision_history_says_from_when_history_is_available() {
    let fx = Fixture::new();
    write_round(&fx, 0, 50);
    let full_end = fx.backup(LayerChoice::NewFull, false, None).await;
    let inside_inc1 = fx.put(51, 1, Some(b"a"));
    write_round(&fx, 1, 50);
    let inc1 = fx.backup(LayerChoice::Latest, false, None).await;
    write_round(&fx, 2, 50);
    let inside_inc2 = fx.put(51, 2, Some(b"b"));
    fx.backup(LayerChoice::Latest, true, None).await;
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    let err = jobs
        .restore(restore_spec(
            RestoreTargets::Tables(vec![51]),
            Some(inside_inc1),
        ))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("without revision_history"), "{msg}");
    assert!(
        msg.contains(&format!("revision history is available from {inc1}")),
        "{msg}"
    );
    assert_nothing_visible(&ingest);
    // The end of a layer without revision history can be restored.
    jobs.restore(restore_spec(
        RestoreTargets::Tables(vec![51]),
        Some(full_end),
    ))
    .await
    .unwrap();
    assert_eq!(restored(&ingest, 51), fx.read_at(51, full_end));
    // And any time inside the revision history.
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    jobs.restore(restore_spec(
        RestoreTargets::Tables(vec![51]),
        Some(inside_inc2),
    ))
    .await
    .unwrap();
    assert_eq!(restored(&ingest, 51), fx.read_at(51, inside_inc2));
}

/// A chain of a full backup and two incrementals, its storage and its layer dirs.
async fn chain(fx: &Fixture, passphrase: Option<&str>) -> (Arc<dyn ExternalStorage>, Vec<String>) {
    write_round(fx, 0, 400);
    fx.backup(LayerChoice::NewFull, false, passphrase).await;
    write_round(fx, 1, 400);
    fx.backup(LayerChoice::Latest, false, passphrase).await;
    write_round(fx, 2, 400);
    fx.backup(LayerChoice::Latest, false, passphrase).await;
    let storage = fx.storages.get(URI);
    let source = RestoreSource {
        collection: URI.into(),
        locality_uris: Vec::new(),
        incremental_location: None,
        backup: BackupChoice::Latest,
    };
    let c = read_backup(fx.storages.as_ref(), &source, passphrase)
        .await
        .unwrap();
    (storage, c.layers.iter().map(|l| l.dir.clone()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chain_is_an_error_naming_the_gap() {
    let fx = Fixture::new();
    let (storage, dirs) = chain(&fx, None).await;
    let gone = format!("{}/BACKUP_MANIFEST", dirs[1]);
    let opener = copy_collection(&storage, |p, b| (p != gone).then_some(b)).await;
    let (ingest, jobs) = target(&fx, opener);
    let err = jobs
        .restore(restore_spec(RestoreTargets::Databases(vec![DB]), None))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::BrokenChain(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&dirs[2]) && msg.contains(&dirs[0]), "{msg}");
    assert_nothing_visible(&ingest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_data_file_fails_and_leaves_nothing() {
    let mut fx = Fixture::new();
    // Files of ~1 KiB, so the full backup always has many of them (with the
    // default test size the count depends on how spans meet workers).
    fx.backups = BackupJobs::new(
        fx.host.clone(),
        BackupSettings {
            file_size: 1 << 10,
            ..BackupSettings::for_tests()
        },
    );
    let (storage, dirs) = chain(&fx, None).await;
    let data = storage
        .list(&format!("{}/data", dirs[0]), false)
        .await
        .unwrap()
        .objects;
    assert!(data.len() > 3);
    let gone = data[data.len() - 1].path.clone();
    let opener = copy_collection(&storage, |p, b| (p != gone).then_some(b)).await;
    let (ingest, jobs) = target(&fx, opener);
    let err = jobs
        .restore(restore_spec(RestoreTargets::Databases(vec![DB]), None))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&gone) && err.to_string().contains("does not exist"),
        "{err}"
    );
    assert!(ingest.batches() > 0, "the failure came after some ingest");
    assert_nothing_visible(&ingest);
    let job = jobs.job(1).unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.error.unwrap().contains(&gone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_block_fails_naming_the_file() {
    let fx = Fixture::new();
    let (storage, dirs) = chain(&fx, None).await;
    let data = storage
        .list(&format!("{}/data", dirs[0]), false)
        .await
        .unwrap()
        .objects;
    let bad = data[data.len() - 1].path.clone();
    let opener = copy_collection(&storage, |p, b| {
        if p != bad {
            return Some(b);
        }
        let mut v = b.to_vec();
        v[40] ^= 0x5a; // inside the first block
        Some(v.into())
    })
    .await;
    let (ingest, jobs) = target(&fx, opener);
    let err = jobs
        .restore(restore_spec(RestoreTargets::Databases(vec![DB]), None))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&bad) && err.to_string().contains("corrupt"),
        "{err}"
    );
    assert_nothing_visible(&ingest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_chains_restore_with_their_passphrase_only() {
    let fx = Fixture::new();
    chain(&fx, Some("correct horse")).await;
    let end = fx.kv.put(b"zz", Some(b"x"));
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    let mut spec = restore_spec(RestoreTargets::Databases(vec![DB]), None);
    spec.options.encryption_passphrase = Some("battery staple".into());
    spec.description
        .push_str(" WITH encryption_passphrase = 'battery staple'");
    let err = jobs.restore(spec.clone()).await.unwrap_err();
    assert!(
        err.to_string().contains("passphrase does not open"),
        "{err}"
    );
    assert!(
        !err.to_string().contains("battery"),
        "the passphrase leaked: {err}"
    );
    assert!(!jobs.job(1).unwrap().description.contains("battery"));
    assert_nothing_visible(&ingest);
    spec.options.encryption_passphrase = None;
    let err = jobs.restore(spec.clone()).await.unwrap_err();
    assert!(
        err.to_string().contains("give its encryption_passphrase"),
        "{err}"
    );
    spec.options.encryption_passphrase = Some("correct horse".into());
    jobs.restore(spec).await.unwrap();
    assert_eq!(restored(&ingest, 53), fx.read_at(53, end));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ingest_or_publish_leaves_nothing_visible() {
    let fx = Fixture::new();
    chain(&fx, None).await;
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    *ingest.fail_after_batches.lock().unwrap() = Some(3);
    let err = jobs
        .restore(restore_spec(RestoreTargets::Databases(vec![DB]), None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("injected ingest failure"), "{err}");
    assert_nothing_visible(&ingest);
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    *ingest.fail_publish.lock().unwrap() = true;
    let err = jobs
        .restore(restore_spec(RestoreTargets::Databases(vec![DB]), None))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("injected publish failure"),
        "{err}"
    );
    assert!(ingest.batches() > 3);
    assert_nothing_visible(&ingest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_must_be_restored_unless_skipped() {
    let fx = Fixture::new();
    write_round(&fx, 0, 20);
    let end = fx.backup(LayerChoice::NewFull, false, None).await;
    let cases = [
        (52, "foreign key", "skip_missing_foreign_keys"),
        (53, "column default", "skip_missing_sequences"),
        (VIEW, "its query", "skip_missing_views"),
    ];
    for (id, how, option) in cases {
        let (ingest, jobs) = target(&fx, fx.storages.clone());
        let err = jobs
            .restore(restore_spec(RestoreTargets::Tables(vec![id]), None))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ExecError::MissingDependency { .. }), "{msg}");
        assert!(msg.contains(how) && msg.contains(option), "{msg}");
        assert_nothing_visible(&ingest);
        let mut spec = restore_spec(RestoreTargets::Tables(vec![id, 51]), None);
        spec.options.skip_missing_foreign_keys = true; // irrelevant: 51 is restored
        let ok = jobs.restore(spec).await;
        assert!(id == 53 || ok.is_ok(), "{ok:?}");
    }
    // Each option lets the restore through.
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    let mut spec = restore_spec(RestoreTargets::Tables(vec![52, 53, VIEW]), None);
    spec.options.skip_missing_foreign_keys = true;
    spec.options.skip_missing_sequences = true;
    spec.options.skip_missing_views = true;
    jobs.restore(spec).await.unwrap();
    let published = ingest.published();
    let ids: Vec<u64> = published.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![152, 153], "the view is left out");
    assert!(
        published.iter().all(|d| d.dependencies.is_empty()),
        "{published:?}"
    );
    assert_eq!(restored(&ingest, 52), fx.read_at(52, end));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_dependency_cannot_be_skipped() {
    let fx = Fixture::new();
    let mut schema = fx.schema.clone();
    schema.push(descriptor(56, DescriptorKind::Type, &[]));
    schema[1].dependencies.push(backup_format::Dependency {
        id: 56,
        kind: DependencyKind::Type,
    });
    let fx = Fixture { schema, ..fx };
    write_round(&fx, 0, 5);
    fx.backup(LayerChoice::NewFull, false, None).await;
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    let mut spec = restore_spec(RestoreTargets::Tables(vec![51]), None);
    spec.options = backup_exec::RestoreOptions {
        skip_missing_foreign_keys: true,
        skip_missing_sequences: true,
        skip_missing_views: true,
        ..Default::default()
    };
    let err = jobs.restore(spec).await.unwrap_err();
    assert!(
        err.to_string().contains(
            "type type56 (56) through a column type, which is not being restored: restore it too"
        ),
        "{err}"
    );
    assert_nothing_visible(&ingest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_restore_needs_an_empty_cluster_and_moves_every_object() {
    let fx = Fixture::new();
    write_round(&fx, 0, 30);
    let end = fx.backup(LayerChoice::NewFull, false, None).await;
    // Into a cluster with a user database: refused.
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    let busy = backup_exec::testing::StaticCatalog::default();
    busy.descriptors.lock().unwrap().push((
        backup_format::Timestamp::ZERO,
        descriptor(7, DescriptorKind::Database, &[]),
    ));
    let mut host = fx.host.clone();
    host.catalog = Arc::new(busy);
    let refusing = backup_exec::RestoreJobs::new(
        host,
        ingest.clone(),
        backup_exec::RestoreSettings::for_tests(),
    );
    let spec = restore_spec(RestoreTargets::Cluster, None);
    let err = refusing.restore(spec.clone()).await.unwrap_err();
    assert!(
        err.to_string().contains("without user objects") && err.to_string().contains("database7"),
        "{err}"
    );
    assert_nothing_visible(&ingest);
    // Without new ids and a catalog that cannot allocate any: an error.
    let mut no_ids = spec.clone();
    no_ids.rewrites.clear();
    let err = jobs.restore(no_ids).await.unwrap_err();
    assert!(err.to_string().contains("could not allocate"), "{err}");
    // Into an empty one: everything, under the new ids.
    jobs.restore(spec).await.unwrap();
    assert_eq!(ingest.published().len(), 6);
    for t in [51, 52, 53, SEQUENCE] {
        assert_eq!(restored(&ingest, t), fx.read_at(t, end), "table {t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_table_reads_only_its_blocks_in_bounded_batches() {
    let fx = Fixture::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for t in [51, 52, 53, SEQUENCE] {
        for r in 0..3000 {
            // Incompressible values, so the data files dwarf the metadata.
            let v: Vec<u8> = (0..8)
                .flat_map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()
                })
                .collect();
            fx.put(t, r, Some(&v));
        }
    }
    let end = fx.backup(LayerChoice::NewFull, false, None).await;
    let stored: u64 = fx
        .storages
        .get(URI)
        .list("", false)
        .await
        .unwrap()
        .objects
        .iter()
        .map(|o| o.size)
        .sum();
    let counting = Arc::new(CountingOpener {
        inner: fx.storages.clone(),
        ..Default::default()
    });
    let (ingest, jobs) = target(&fx, counting.clone());
    let mut spec = restore_spec(RestoreTargets::Tables(vec![52]), None);
    spec.rewrites.insert(
        52,
        DescriptorRewrite {
            new_id: 152,
            parent_id: Some(900),
            ..Default::default()
        },
    ); // into_db
    spec.options.skip_missing_foreign_keys = true;
    jobs.restore(spec).await.unwrap();
    assert_eq!(restored(&ingest, 52), fx.read_at(52, end));
    assert_eq!(ingest.published()[0].parent_id, 900);
    let read = counting.read.load(Ordering::Relaxed);
    assert!(
        read < stored / 3,
        "read {read} of {stored} bytes for one table of four"
    );
    let limit = backup_exec::RestoreSettings::for_tests().ingest_batch_bytes + 200;
    assert!(
        ingest.largest_batch_bytes() <= limit,
        "{}",
        ingest.largest_batch_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_restore_returns_at_once_and_can_be_awaited() {
    let fx = Fixture::new();
    write_round(&fx, 0, 50);
    let end = fx.backup(LayerChoice::NewFull, false, None).await;
    let (ingest, jobs) = target(&fx, fx.storages.clone());
    let mut spec = restore_spec(RestoreTargets::Tables(vec![51]), None);
    spec.options.detached = true;
    let r = jobs.restore(spec).await.unwrap();
    assert_eq!(r.status, JobStatus::Running);
    let done = jobs.wait(r.job_id).await.unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(restored(&ingest, 51), fx.read_at(51, end));
}
