//! Backup throughput on the embedded cluster to local disk (zstd-1 and
//! AES-256-GCM on), beside the raw zstd-1 → AES-256-GCM → crc32c pipeline
//! over the same kind of bytes in the same run.
//!
//! Reports MiB/s of raw data, CPU seconds (from `/proc/self/stat`), MiB/s
//! per core used, the ratio of the backup's to the pipeline's per-core
//! figure, and the growth of resident memory during the backup (`VmHWM`
//! after resetting it through `/proc/self/clear_refs`, minus the RSS then).
//!
//! The job's memory is separated from the engine's: before the measured
//! backup the whole table is read once through the cluster's export, in
//! 1 MiB chunks dropped at once, so redb's page cache (1 GiB by default,
//! larger than any table here) already holds the table and stays flat.
//!
//! `BACKUP_BENCH_SIZES` (default `32,128`) lists the table sizes in MiB, one
//! fresh cluster each; sizes are best measured one per process (memory
//! freed by a previous size is reused without growing RSS). Every size is
//! backed up with the default settings, then again (into another
//! collection) with `BACKUP_BENCH_ALT` settings, `chunk=<MiB>,workers=<n>`
//! (default `chunk=4,workers=1`), to show the growth follows the settings.
//! `BACKUP_BENCH_CACHE_MIB` caps redb's page cache (default: the cluster's
//! 1 GiB), so that tables larger than the cache can be measured without
//! the cache's growth mixing with the job's.
//! Run: `cargo bench -p e2e --bench backup`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Key};
use backup_exec::{BackupJobs, BackupSettings, ExportRequest, IntentPolicy, KvSource, LayerChoice};
use backup_format::MvccEntry;
use criterion::{Criterion, criterion_group, criterion_main};
use e2e::measure::{Run, cpu_seconds, reset_peak, status_kib};
use e2e::{Fixture, USERS, row, value};
use embedded_cluster::ClusterConfig;

const VALUE_LEN: usize = 200;
const BLOCK: usize = 64 << 10;

/// Loads a table of about `mib` MiB of raw entries; returns the row count.
fn load(fx: &Fixture, mib: usize) -> u32 {
    let rows = (mib << 20) / (VALUE_LEN + 24);
    for start in (0..rows).step_by(2000) {
        let batch: Vec<_> = (start..(start + 2000).min(rows))
            .map(|i| (row(USERS, i as u32), Some(value(i as u32, VALUE_LEN))))
            .collect();
        fx.cluster.write_batch(&batch).unwrap();
    }
    rows as u32
}

/// Reads every entry of the table once, from each range's leaseholder, in
/// 1 MiB chunks dropped at once: fills the engine's page cache.
fn warm(fx: &Fixture) {
    let span = embedded_cluster::keys::table_span(USERS);
    let end = fx.cluster.now().unwrap();
    for r in KvSource::ranges(&fx.cluster, &[span]).unwrap() {
        let mut req = ExportRequest {
            span: r.span.clone(),
            start_ts: backup_format::Timestamp::ZERO,
            end_ts: end,
            all_revisions: false,
            intent_policy: IntentPolicy::FailFast,
            target_bytes: 1 << 20,
        };
        loop {
            let chunk = KvSource::export(&fx.cluster, r.leaseholder, &req).unwrap();
            std::hint::black_box(chunk.entries.len());
            match chunk.resume_key {
                Some(k) => req.span.start = k,
                None => break,
            }
        }
    }
}

fn backup(
    fx: &Fixture,
    rt: &tokio::runtime::Runtime,
    uri: &str,
    raw_mib: f64,
    settings: BackupSettings,
) -> Run {
    let end = fx.cluster.now().unwrap();
    let mut spec = fx.spec(uri, end, LayerChoice::NewFull);
    spec.descriptors.retain(|d| d.id == USERS);
    spec.spans = vec![embedded_cluster::keys::table_span(USERS)];
    spec.encryption_passphrase = Some("bench".into());
    let jobs = BackupJobs::new(fx.host(), settings);
    let before = status_kib("VmRSS:") as f64 / 1024.0;
    reset_peak();
    let (t, c) = (Instant::now(), cpu_seconds());
    let r = rt.block_on(jobs.backup(spec)).unwrap();
    let run = Run {
        mib: r.bytes as f64 / f64::from(1 << 20),
        wall: t.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - c,
        peak_mib: status_kib("VmHWM:") as f64 / 1024.0 - before,
    };
    assert!(
        run.mib > raw_mib * 0.5,
        "backed up {} of {raw_mib} MiB",
        run.mib
    );
    run
}

/// zstd-1 → AES-256-GCM → crc32c over 64 KiB blocks of encoded entries.
fn pipeline(rows: u32) -> Run {
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from([7u8; 32]));
    let mut compressor = zstd::bulk::Compressor::new(1).unwrap();
    let before = status_kib("VmRSS:") as f64 / 1024.0;
    reset_peak();
    let (t, c) = (Instant::now(), cpu_seconds());
    let (mut raw, mut block, mut crc, mut counter) = (0usize, Vec::new(), 0u32, 0u32);
    let mut seal = |block: &mut Vec<u8>| {
        let mut out = compressor.compress(block).unwrap();
        let mut nonce = [0u8; 12];
        nonce[8..].copy_from_slice(&counter.to_be_bytes());
        counter += 1;
        let tag = cipher
            .encrypt_inout_detached(&nonce.into(), b"", out.as_mut_slice().into())
            .unwrap();
        out.extend_from_slice(tag.as_slice());
        crc = crc32c::crc32c_append(crc, &out);
        block.clear();
    };
    let ts = backup_format::Timestamp::from_wall(1);
    for i in 0..rows {
        let e = MvccEntry::put(row(USERS, i), ts, value(i, VALUE_LEN));
        block.extend_from_slice(&e.key);
        block.extend_from_slice(&e.ts.to_bytes());
        block.extend_from_slice(e.value.as_deref().unwrap_or_default());
        raw += e.size();
        if block.len() >= BLOCK {
            seal(&mut block);
        }
    }
    seal(&mut block);
    std::hint::black_box(crc);
    Run {
        mib: raw as f64 / f64::from(1 << 20),
        wall: t.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - c,
        peak_mib: status_kib("VmHWM:") as f64 / 1024.0 - before,
    }
}

/// `chunk=<MiB>,workers=<n>` over the bench's default settings.
fn alt_settings(base: &BackupSettings) -> (BackupSettings, String) {
    let spec = std::env::var("BACKUP_BENCH_ALT").unwrap_or_else(|_| "chunk=4,workers=1".into());
    let mut s = base.clone();
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("chunk", v)) => s.chunk_target_bytes = v.parse::<u64>().unwrap() << 20,
            Some(("workers", v)) => s.per_node_concurrency = v.parse().unwrap(),
            Some(("file", v)) => s.file_size = v.parse::<u64>().unwrap() << 20,
            _ => panic!("BACKUP_BENCH_ALT: {part}"),
        }
    }
    (s, spec)
}

fn bench(c: &mut Criterion) {
    let sizes = e2e::measure::sizes_mib("BACKUP_BENCH_SIZES", "32,128");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // How many ranges (64 MiB each by default) the table spans bounds how
    // many export workers are busy at once: at most that many, at most
    // `per_node_concurrency` per node.
    let settings = BackupSettings {
        kdf_iterations: 1_000,
        ..BackupSettings::default()
    };
    let (alt, alt_name) = alt_settings(&settings);
    let mut results = Vec::new();
    for &mib in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ClusterConfig::default();
        if let Ok(mib) = std::env::var("BACKUP_BENCH_CACHE_MIB") {
            config.cache_bytes = mib.trim().parse::<usize>().unwrap() << 20;
        }
        let fx = Fixture::open(dir.path(), config).unwrap();
        let rows = load(&fx, mib);
        let loaded = status_kib("VmRSS:") as f64 / 1024.0;
        warm(&fx);
        let warmed = status_kib("VmRSS:") as f64 / 1024.0;
        let ranges = KvSource::ranges(&fx.cluster, &[embedded_cluster::keys::table_span(USERS)])
            .unwrap()
            .len();
        let b = backup(
            &fx,
            &rt,
            "nodelocal://1/bench",
            mib as f64,
            settings.clone(),
        );
        let after = status_kib("VmRSS:") as f64 / 1024.0;
        let a = backup(&fx, &rt, "nodelocal://1/bench-alt", mib as f64, alt.clone());
        let p = pipeline(rows);
        println!(
            "--- table of {mib} MiB in {ranges} ranges (RSS after loading {loaded:.0} MiB, after the warm scan {warmed:.0} MiB, after the backup {after:.0} MiB)"
        );
        let bp = b.report("backup (cluster -> local disk)");
        a.report(&format!("backup with {alt_name}"));
        let pp = p.report("raw zstd-1 -> AES-256-GCM -> crc32c");
        println!("ratio per core: {:.0}%", bp / pp * 100.0);
        results.push((mib, b.peak_mib, a.peak_mib));
        if Some(&mib) == sizes.last() {
            let mut g = c.benchmark_group("backup");
            g.sample_size(10)
                .measurement_time(Duration::from_secs(1))
                .warm_up_time(Duration::from_millis(100));
            g.bench_function("pipeline_16MiB", |bch| {
                bch.iter(|| pipeline(rows.min((16 << 20) / (VALUE_LEN as u32 + 24))))
            });
            g.finish();
        }
    }
    for (mib, grew, grew_alt) in results {
        println!(
            "RSS growth during the backup of {mib} MiB: {grew:.0} MiB (default settings), {grew_alt:.0} MiB ({alt_name})"
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
