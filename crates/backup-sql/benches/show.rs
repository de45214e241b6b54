//! `SHOW BACKUPS` over a collection of 1,000 backups and `SHOW BACKUP` of a
//! backup of 100,000 descriptors, both on local disk (`nodelocal://`).
//!
//! The backups are real: one `BACKUP` statement of a 100,000-table database
//! on `backup-exec`'s in-memory host, and one small backup whose directory is
//! then copied to 999 other full-backup subdirectories (each copy is a
//! complete, readable backup; `SHOW BACKUPS` lists manifests, so the copies
//! cost what real backups would).
//!
//! Run with `cargo bench -p backup-sql --bench show`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use backup_exec::testing::{MemoryKv, MemoryStorages, StaticCatalog, memory_host};
use backup_exec::{BackupSettings, RestoreSettings};
use backup_format::{Descriptor, DescriptorId, DescriptorKind, Span, Timestamp};
use backup_sql::{BackupStatements, Datum, Privilege, SqlContext};
use backup_storage::StorageContext;
use criterion::{Criterion, criterion_group, criterion_main};

/// Tables in the big backup.
const TABLES: u64 = 100_000;
/// Backups in the big collection.
const BACKUPS: usize = 1_000;

fn main_bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let exec = statements(dir.path());
    let root = Root;

    // One backup of 100,000 descriptors (a database and its tables).
    exec.execute_sql(&root, "BACKUP DATABASE big INTO 'nodelocal://1/wide'", &[])
        .unwrap();
    let rows = exec
        .execute_sql(
            &root,
            "SHOW BACKUP FROM LATEST IN 'nodelocal://1/wide'",
            &[],
        )
        .unwrap()
        .rows;
    assert_eq!(rows.len() as u64, TABLES + 1, "one row per descriptor");
    // Each table's row count, found by reading the shared data files.
    let count = |name: &str| {
        rows.iter()
            .find(|r| r[2] == Datum::String(name.into()))
            .map(|r| r[8].clone())
    };
    assert_eq!(count("t0"), Some(Datum::Int(1)));
    assert_eq!(count("t1"), Some(Datum::Int(0)));
    assert_eq!(count("t99900"), Some(Datum::Int(1)));

    // 1,000 backups: one real one, copied to 999 more subdirectories.
    exec.execute_sql(&root, "BACKUP TABLE big.t1 INTO 'nodelocal://1/many'", &[])
        .unwrap();
    let many = dir.path().join("many");
    let first = full_subdir(&many);
    for i in 1..BACKUPS {
        let to = many.join(format!(
            "2026/01/{:02}-{:02}{:02}{:02}.00",
            1 + i / 86_400 % 28,
            i / 3600 % 24,
            i / 60 % 60,
            i % 60
        ));
        copy_dir(&first, &to);
    }
    let listed = exec
        .execute_sql(&root, "SHOW BACKUPS IN 'nodelocal://1/many'", &[])
        .unwrap()
        .rows
        .len();
    assert_eq!(listed, BACKUPS);

    let mut g = c.benchmark_group("show");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("show_backups_1000", |b| {
        b.iter(|| {
            exec.execute_sql(&root, "SHOW BACKUPS IN 'nodelocal://1/many'", &[])
                .unwrap()
        })
    });
    g.bench_function("show_backup_100k_descriptors", |b| {
        b.iter(|| {
            exec.execute_sql(
                &root,
                "SHOW BACKUP FROM LATEST IN 'nodelocal://1/wide'",
                &[],
            )
            .unwrap()
        })
    });
    g.finish();
}

/// A statement executor over an in-memory host holding database `big`
/// (id 50) with tables `t0..t99999` (ids 100..), one row in every 100th.
fn statements(dir: &Path) -> BackupStatements {
    let kv = Arc::new(MemoryKv::new(3, &[]));
    let catalog = Arc::new(StaticCatalog::default());
    {
        let mut descs = catalog.descriptors.lock().unwrap();
        descs.push((
            Timestamp::ZERO,
            descriptor(50, DescriptorKind::Database, "big", 0),
        ));
        for i in 0..TABLES {
            let id = 100 + i;
            descs.push((
                Timestamp::ZERO,
                descriptor(id, DescriptorKind::Table, &format!("t{i}"), 50),
            ));
            if i % 100 == 0 {
                kv.put(&key(id, b"row"), Some(b"value"));
            }
        }
    }
    let mut host = memory_host(kv, catalog, Arc::new(MemoryStorages::default()));
    let mut storage = StorageContext::default();
    storage.nodelocal_dirs.insert(1, dir.to_path_buf());
    host.storage = Arc::new(storage);
    let ingest = Arc::new(backup_exec::restore::testing::MemoryIngest::default());
    BackupStatements::new(
        host,
        ingest,
        BackupSettings::default(),
        RestoreSettings::default(),
    )
    .unwrap()
}

fn descriptor(
    id: DescriptorId,
    kind: DescriptorKind,
    name: &str,
    parent: DescriptorId,
) -> Descriptor {
    Descriptor {
        id,
        kind,
        name: name.into(),
        parent_id: parent,
        parent_schema_id: 0,
        spans: match kind {
            DescriptorKind::Table => vec![Span::new(key(id, b""), key(id + 1, b""))],
            _ => Vec::new(),
        },
        dependencies: Vec::new(),
        exclude_data_from_backup: false,
        payload: Vec::new(),
    }
}

fn key(table: u64, suffix: &[u8]) -> Vec<u8> {
    backup_exec::restore::testing::table_key(table, suffix)
}

/// The only full-backup directory of a collection.
fn full_subdir(collection: &Path) -> std::path::PathBuf {
    let mut dir = collection.to_path_buf();
    for _ in 0..3 {
        let next = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.is_dir() && !p.ends_with("metadata") && !p.ends_with("incrementals"))
            .unwrap();
        dir = next;
    }
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

struct Root;

impl SqlContext for Root {
    fn user(&self) -> String {
        "root".into()
    }
    fn current_database(&self) -> String {
        "big".into()
    }
    fn is_admin(&self) -> bool {
        true
    }
    fn has_privilege(&self, _: &Descriptor, _: Privilege) -> bool {
        true
    }
}

criterion_group!(benches, main_bench);
criterion_main!(benches);
