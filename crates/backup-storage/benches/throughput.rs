//! Throughput of writing and reading backup-sized objects (8–128 MiB) with
//! concurrency, to the local filesystem and to S3 on moto_server (when
//! `BACKUP_TEST_S3_ENDPOINT` is set, as `cargo xtask bench` does).
//!
//! Each iteration moves `TOTAL` bytes (a slice of the 1 GiB the issue names,
//! to keep runs short); criterion reports bytes per second. Objects written
//! by an iteration are removed by the benchmark itself afterwards (the crate
//! has no delete), outside the timed part.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backup_storage::{ExternalStorage, StorageContext, StorageUri, open};
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;

const MIB: usize = 1024 * 1024;
const CHUNK: usize = 4 * MIB;
const CONCURRENCY: usize = 4;

static RUN: AtomicU64 = AtomicU64::new(0);

fn chunk() -> Bytes {
    (0..CHUNK)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

async fn write_objects(
    storage: &Arc<dyn ExternalStorage>,
    prefix: &str,
    total: usize,
    size: usize,
) {
    let data = chunk();
    futures::stream::iter(0..total / size)
        .map(|i| {
            let (storage, data) = (Arc::clone(storage), data.clone());
            let path = format!("{prefix}/{i:04}.sst");
            async move {
                let mut w = storage.writer(&path).await.unwrap();
                let mut left = size;
                while left > 0 {
                    let n = left.min(CHUNK);
                    w.write(data.slice(..n)).await.unwrap();
                    left -= n;
                }
                w.finish().await.unwrap();
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<()>()
        .await;
}

async fn read_objects(storage: &Arc<dyn ExternalStorage>, prefix: &str, total: usize, size: usize) {
    futures::stream::iter(0..total / size)
        .map(|i| {
            let storage = Arc::clone(storage);
            let path = format!("{prefix}/{i:04}.sst");
            async move {
                let got = storage.get(&path).await.unwrap();
                assert_eq!(got.len(), size);
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<()>()
        .await;
}

/// Where a benchmark writes, and how the benchmark removes what it wrote.
struct Target {
    name: &'static str,
    storage: Arc<dyn ExternalStorage>,
    total: usize,
    remove: Box<dyn Fn(&str) + Send + Sync>,
}

fn local_target(dir: &std::path::Path) -> Target {
    let uri = StorageUri::parse(&format!("file://{}", dir.display())).unwrap();
    let root = dir.to_path_buf();
    Target {
        name: "local",
        storage: open(&uri, &StorageContext::default()).unwrap(),
        total: 256 * MIB,
        remove: Box::new(move |prefix| {
            let _ = std::fs::remove_dir_all(root.join(prefix));
        }),
    }
}

fn moto_target(rt: &tokio::runtime::Runtime) -> Option<Target> {
    let endpoint = std::env::var("BACKUP_TEST_S3_ENDPOINT").ok()?;
    assert!(endpoint.starts_with("http://127.0.0.1:"));
    let bucket = format!("bench-{}", std::process::id());
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    rt.block_on(http.put(format!("{endpoint}/{bucket}")).send())
        .unwrap();
    let ep: String = url::form_urlencoded::byte_serialize(endpoint.as_bytes()).collect();
    let uri = format!(
        "s3://{bucket}?AWS_ACCESS_KEY_ID=bench&AWS_SECRET_ACCESS_KEY=bench&AWS_ENDPOINT={ep}"
    );
    let storage = open(
        &StorageUri::parse(&uri).unwrap(),
        &StorageContext::default(),
    )
    .unwrap();
    let lister = Arc::clone(&storage);
    let handle = rt.handle().clone();
    Some(Target {
        name: "moto",
        storage,
        total: 128 * MIB,
        remove: Box::new(move |prefix| {
            // moto keeps objects in memory: delete them with raw requests.
            let listing = handle.block_on(lister.list(prefix, false)).unwrap();
            for object in listing.objects {
                let url = format!("{endpoint}/{bucket}/{}", object.path);
                let request = http.delete(url).header(
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
                );
                handle.block_on(request.send()).unwrap();
            }
        }),
    })
}

fn throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut targets = vec![local_target(dir.path())];
    match moto_target(&rt) {
        Some(t) => targets.push(t),
        None => println!("moto benchmarks skipped: BACKUP_TEST_S3_ENDPOINT is not set"),
    }
    let mut group = c.benchmark_group("storage_throughput");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for target in &targets {
        for size in [8 * MIB, 32 * MIB, 128 * MIB] {
            let total = target.total;
            group.throughput(Throughput::Bytes(total as u64));
            let label = format!("{}MiB-objects", size / MIB);
            group.bench_function(
                BenchmarkId::new(format!("{}/write", target.name), &label),
                |b| {
                    b.iter_custom(|iters| {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            let prefix = format!("w{}", RUN.fetch_add(1, Ordering::Relaxed));
                            let start = Instant::now();
                            rt.block_on(write_objects(&target.storage, &prefix, total, size));
                            spent += start.elapsed();
                            (target.remove)(&prefix);
                        }
                        spent
                    })
                },
            );
            let prefix = format!("r{}", RUN.fetch_add(1, Ordering::Relaxed));
            rt.block_on(write_objects(&target.storage, &prefix, total, size));
            group.bench_function(
                BenchmarkId::new(format!("{}/read", target.name), &label),
                |b| b.iter(|| rt.block_on(read_objects(&target.storage, &prefix, total, size))),
            );
            (target.remove)(&prefix);
        }
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
