//! Restore throughput beside backup throughput of the same data, in the same
//! run, on the in-memory host: 4 tables of realistic rows, a full backup
//! with production settings (8 MiB files so there are several), then
//! restores of every table into fresh ids.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use backup_exec::restore::testing::{MemoryIngest, table_key, table_span};
use backup_exec::restore::{BackupChoice, DescriptorRewrite};
use backup_exec::testing::{MemoryKv, MemoryStorages, StaticCatalog, memory_host};
use backup_exec::{
    BackupJobs, BackupSettings, BackupSpec, Clock, Destination, LayerChoice, RestoreJobs,
    RestoreOptions, RestoreSettings, RestoreSource, RestoreSpec, RestoreTargets,
};
use backup_format::{Descriptor, DescriptorKind, Timestamp};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const URI: &str = "nodelocal://1/bench";
const TABLES: [u64; 4] = [51, 52, 53, 54];
const ROWS: u32 = 40_000;

fn table(id: u64) -> Descriptor {
    Descriptor {
        id,
        kind: DescriptorKind::Table,
        name: format!("t{id}"),
        parent_id: 50,
        parent_schema_id: 0,
        spans: vec![table_span(id)],
        dependencies: Vec::new(),
        exclude_data_from_backup: false,
        payload: Vec::new(),
    }
}

/// Row-like values: a few columns of text and numbers (~3x compressible).
fn value(t: u64, r: u32) -> Vec<u8> {
    let h = (u64::from(r).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ t) >> 7;
    format!(
        "{{\"id\":{r},\"name\":\"customer-{h:x}\",\"balance\":{},\"city\":\"city-{}\",\"note\":\"{}\"}}",
        h % 100_000,
        h % 97,
        "lorem ipsum dolor sit amet ".repeat(2)
    )
    .into_bytes()
}

struct Setup {
    kv: Arc<MemoryKv>,
    storages: Arc<MemoryStorages>,
    backups: BackupJobs,
    raw_bytes: u64,
}

fn setup() -> Setup {
    let splits: Vec<Vec<u8>> = TABLES.iter().map(|t| table_key(*t, b"")).collect();
    let refs: Vec<&[u8]> = splits.iter().map(Vec::as_slice).collect();
    let kv = Arc::new(MemoryKv::new(3, &refs));
    let mut raw_bytes = 0u64;
    for t in TABLES {
        for r in 0..ROWS {
            let k = table_key(t, format!("{r:08}").as_bytes());
            let v = value(t, r);
            raw_bytes += (k.len() + v.len()) as u64;
            kv.put(&k, Some(&v));
        }
    }
    let catalog = Arc::new(StaticCatalog::default());
    for t in TABLES {
        catalog
            .descriptors
            .lock()
            .unwrap()
            .push((Timestamp::ZERO, table(t)));
    }
    let storages = Arc::new(MemoryStorages::default());
    let host = memory_host(kv.clone(), catalog, storages.clone());
    let settings = BackupSettings {
        file_size: 8 << 20,
        ..BackupSettings::default()
    };
    Setup {
        kv,
        storages,
        backups: BackupJobs::new(host, settings),
        raw_bytes,
    }
}

async fn backup(s: &Setup) -> Duration {
    // Each full backup needs its own directory (named to 1/100 s).
    let clock: &dyn Clock = s.kv.as_ref();
    for _ in 0..10_000_001 {
        clock.now();
    }
    let end = clock.now();
    let spec = BackupSpec {
        description: "BACKUP".into(),
        user: "root".into(),
        descriptors: TABLES.iter().map(|t| table(*t)).collect(),
        spans: TABLES.iter().map(|t| table_span(*t)).collect(),
        index_spans: Vec::new(),
        full_cluster: false,
        end_time: end,
        destination: Destination {
            collection: URI.into(),
            locality_uris: Vec::new(),
            incremental_location: None,
            layer: LayerChoice::NewFull,
        },
        revision_history: false,
        encryption_passphrase: None,
        detached: false,
    };
    let start = Instant::now();
    s.backups.backup(spec).await.unwrap();
    start.elapsed()
}

async fn restore(s: &Setup) -> (Duration, Arc<MemoryIngest>) {
    let ingest = Arc::new(MemoryIngest::default());
    let host = memory_host(
        Arc::new(MemoryKv::new(1, &[])),
        Arc::new(StaticCatalog::default()),
        s.storages.clone(),
    );
    let jobs = RestoreJobs::new(host, ingest.clone(), RestoreSettings::default());
    let spec = RestoreSpec {
        description: "RESTORE".into(),
        user: "root".into(),
        source: RestoreSource {
            collection: URI.into(),
            locality_uris: Vec::new(),
            incremental_location: None,
            backup: BackupChoice::Latest,
        },
        as_of: None,
        targets: RestoreTargets::Tables(TABLES.to_vec()),
        rewrites: TABLES
            .iter()
            .map(|t| {
                let r = DescriptorRewrite {
                    new_id: t + 100,
                    ..DescriptorRewrite::default()
                };
                (*t, r)
            })
            .collect(),
        index_spans: Vec::new(),
        options: RestoreOptions::default(),
    };
    let start = Instant::now();
    let r = jobs.restore(spec).await.unwrap();
    let took = start.elapsed();
    assert_eq!(r.rows, u64::from(ROWS) * TABLES.len() as u64);
    (took, ingest)
}

fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = setup();
    rt.block_on(backup(&s)); // a backup for the restores to read
    let mut group = c.benchmark_group("backup-exec");
    group.throughput(Throughput::Bytes(s.raw_bytes));
    group.sample_size(10);
    group.bench_function("backup (full, 4 tables)", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let s = &s;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += backup(s).await;
                }
                total
            }
        })
    });
    group.bench_function("restore (4 tables, new ids)", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let s = &s;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += restore(s).await.0;
                }
                total
            }
        })
    });
    group.finish();
    let (_, ingest) = rt.block_on(restore(&s));
    println!(
        "raw data {:.1} MiB; largest ingest batch {} KiB; peak RSS {:?} MiB",
        s.raw_bytes as f64 / (1 << 20) as f64,
        ingest.largest_batch_bytes() >> 10,
        peak_rss_mib()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
