//! Loading the bank workload: MiB/s of row data (key + encoded value) that
//! `bank::load` writes into a fresh cluster. `BANK_BENCH_MIB` sets the size
//! (default 256 MiB); payloads are 1,000 bytes.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use embedded_cluster::Cluster;
use embedded_cluster::bank::{self, BankConfig};

fn bench(c: &mut Criterion) {
    let mib: u64 = std::env::var("BANK_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let payload_bytes = 1000;
    let rows = (mib << 20) / (payload_bytes as u64 + 30);
    let config = BankConfig {
        rows,
        payload_bytes,
        batch_rows: 16_384,
        ..BankConfig::default()
    };
    let mut group = c.benchmark_group("bank_load");
    group.sample_size(10);
    group.bench_function(format!("{mib}MiB"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let cluster = Cluster::open_default(dir.path()).unwrap();
                let start = Instant::now();
                let stats = bank::load(&cluster, &config).unwrap();
                let elapsed = start.elapsed();
                total += elapsed;
                eprintln!(
                    "bank load: {} rows, {:.1} MiB of row data in {:.2} s = {:.1} MiB/s",
                    stats.rows,
                    stats.bytes as f64 / (1 << 20) as f64,
                    elapsed.as_secs_f64(),
                    stats.bytes as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
                );
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
