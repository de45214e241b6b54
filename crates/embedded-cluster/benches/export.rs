//! Export, incremental export and bulk ingest of one large table.
//!
//! The table (default 1 GiB of row data; `EXPORT_BENCH_MIB` changes it) is
//! built once per run by bulk ingest. Figures: full export MiB/s beside a plain
//! scan of the engine in the same run; incremental export after changing 1% of
//! the keys, scattered; bulk ingest MiB/s.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use backup_exec::{ExportRequest, IntentPolicy, KvSource};
use backup_format::{MvccEntry, Span, Timestamp};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use embedded_cluster::{Cluster, keys};

const TABLE: u64 = 100;
const VALUE_LEN: usize = 1000;
const BATCH_BYTES: usize = 16 << 20;

fn table_mib() -> usize {
    std::env::var("EXPORT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// A row's value: varied bytes, so nothing is trivially small.
fn value(i: u64, salt: u8) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(salt);
    (0..VALUE_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 64) as u8 + b' '
        })
        .collect()
}

fn row(table: u64, i: u64) -> Vec<u8> {
    keys::row_key(table, 1, &i.to_be_bytes())
}

/// Ingests `rows` rows of `table` in 16 MiB batches; returns bytes ingested.
fn build(c: &Cluster, table: u64, rows: u64, ts: Timestamp) -> u64 {
    let per_batch = (BATCH_BYTES / VALUE_LEN) as u64;
    let mut bytes = 0;
    let mut i = 0;
    while i < rows {
        let end = (i + per_batch).min(rows);
        let batch: Vec<MvccEntry> = (i..end)
            .map(|j| MvccEntry::put(row(table, j), ts, value(j, 0)))
            .collect();
        bytes += batch.iter().map(|e| e.size() as u64).sum::<u64>();
        c.ingest(batch).unwrap();
        i = end;
    }
    bytes
}

/// Exports `span` between the times through every range and resume key.
fn export(c: &Cluster, span: &Span, start: Timestamp, end: Timestamp) -> (u64, u64) {
    let (mut entries, mut bytes) = (0, 0);
    for r in KvSource::ranges(c, std::slice::from_ref(span)).unwrap() {
        let mut req = ExportRequest {
            span: r.span.clone(),
            start_ts: start,
            end_ts: end,
            all_revisions: false,
            intent_policy: IntentPolicy::FailFast,
            target_bytes: 16 << 20,
        };
        loop {
            let chunk = c.export(r.leaseholder, &req).unwrap();
            entries += chunk.entries.len() as u64;
            bytes += chunk.entries.iter().map(|e| e.size() as u64).sum::<u64>();
            match chunk.resume_key {
                Some(k) => req.span.start = k,
                None => break,
            }
        }
    }
    (entries, bytes)
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::open_default(dir.path()).unwrap();
    let rows = ((table_mib() as u64) << 20) / VALUE_LEN as u64;
    let t_build = cluster.now().unwrap();
    let started = Instant::now();
    let table_bytes = build(&cluster, TABLE, rows, t_build);
    let took = started.elapsed();
    eprintln!(
        "setup: ingested {rows} rows, {:.0} MiB in {:.1?} = {:.0} MiB/s; {} ranges",
        table_bytes as f64 / 1048576.0,
        took,
        table_bytes as f64 / 1048576.0 / took.as_secs_f64(),
        cluster.ranges().len()
    );
    let span = keys::table_span(TABLE);
    let t1 = cluster.now().unwrap();

    let mut g = c.benchmark_group("export");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(table_bytes));
    g.bench_function("plain_engine_scan", |b| {
        b.iter(|| cluster.engine_scan_bytes(&span).unwrap())
    });
    g.bench_function("full_export", |b| {
        b.iter(|| {
            let (n, _) = export(&cluster, &span, Timestamp::ZERO, t1);
            assert_eq!(n, rows);
        })
    });

    // Change 1% of the keys, scattered through the table.
    let changed: Vec<u64> = (0..rows / 100)
        .map(|i| (i * 100 + (i * 37) % 100).min(rows - 1))
        .collect();
    for chunk in changed.chunks(10_000) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|&i| (row(TABLE, i), Some(value(i, 1))))
            .collect();
        cluster.write_batch(&batch).unwrap();
    }
    let t2 = cluster.now().unwrap();
    g.bench_function("incremental_export_1pct", |b| {
        b.iter(|| {
            let (n, _) = export(&cluster, &span, t1, t2);
            assert_eq!(n, changed.len() as u64);
        })
    });
    g.finish();

    // Bulk ingest of fresh 64 MiB tables.
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    let ingest_rows = (64u64 << 20) / VALUE_LEN as u64;
    let probe = build(&cluster, 1_000, 1, t2);
    let ingest_bytes = probe * ingest_rows;
    g.throughput(Throughput::Bytes(ingest_bytes));
    let mut next_table = 1_001;
    g.bench_function("bulk_ingest_64MiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Rows are made before the clock starts: only ingest is timed.
                let ts = cluster.now().unwrap();
                let per_batch = (BATCH_BYTES / VALUE_LEN) as u64;
                let batches: Vec<Vec<MvccEntry>> = (0..ingest_rows)
                    .step_by(per_batch as usize)
                    .map(|i| {
                        (i..(i + per_batch).min(ingest_rows))
                            .map(|j| MvccEntry::put(row(next_table, j), ts, value(j, 2)))
                            .collect()
                    })
                    .collect();
                let start = Instant::now();
                for batch in batches {
                    cluster.ingest(batch).unwrap();
                }
                total += start.elapsed();
                next_table += 1;
            }
            total
        })
    });
    g.finish();
}

criterion_group!(name = export_benches; config = Criterion::default(); targets = benches);
criterion_main!(export_benches);
