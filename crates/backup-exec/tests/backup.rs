//! The backup job on the in-memory fake host: full, incremental, GC refusal,
//! exports by leaseholder, and the files read back with backup-format.
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
