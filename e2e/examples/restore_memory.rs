//! Restore memory and throughput on the embedded cluster: one table of
//! `RESTORE_MEM_SIZES` MiB (default `64,256`; best one size per process,
//! since memory freed by a previous size is reused without growing RSS) is
//! backed up to `nodelocal://1/`, then restored from there into a new id:
//!
//! - into an ingest that counts and drops the batches: the restore job's
//!   own memory (ranged reads, merge, rekey, batches), with the default
//!   `RestoreSettings` and with one worker and 1 MiB batches;
//! - into the cluster itself (its bulk ingest): the whole process.
//!
//! Memory is the growth of `VmHWM` (reset through `/proc/self/clear_refs`)
//! over the RSS just before the restore. Besides wall-clock throughput, each
//! line gives the process's CPU time over the restore (user + system), which
//! other work on a shared machine disturbs less. `RESTORE_MEM_CACHE_MIB` sets the
//! storage engine's page cache (default 1 GiB), which the cluster's own
//! ingest fills. `RESTORE_MEM_CLUSTER_ALT=batch=<MiB>,workers=<n>` adds a
//! fourth restore into the cluster with those settings.
//! Run: `cargo run --release -p e2e --example restore_memory`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use backup_exec::{
    BackupJobs, BackupSettings, HostError, IdRewrites, Ingest, IngestBatch, KeyRewriter,
    LayerChoice, RestoreJobs, RestoreSettings,
};
use backup_format::{Descriptor, DescriptorId, Span};
use e2e::{Fixture, USERS, row, users_restore, value};
use embedded_cluster::{Cluster, ClusterConfig};

const VALUE_LEN: usize = 200;
const URI: &str = "nodelocal://1/restore-memory";

/// Bulk ingest into the cluster, or (when `discard`) counting only.
struct Target {
    cluster: Cluster,
    discard: bool,
    largest_batch: AtomicUsize,
}

impl Ingest for Target {
    fn key_rewriter(&self, rewrites: &IdRewrites) -> Result<Box<dyn KeyRewriter>, HostError> {
        self.cluster.key_rewriter(rewrites)
    }
    fn ingest(&self, batch: IngestBatch) -> Result<(), HostError> {
        self.largest_batch
            .fetch_max(batch.size(), Ordering::Relaxed);
        if self.discard {
            return Ok(());
        }
        Ingest::ingest(&self.cluster, batch)
    }
    fn sync(&self) -> Result<(), HostError> {
        if self.discard {
            return Ok(());
        }
        Ingest::sync(&self.cluster)
    }
    fn publish(&self, _: &[Descriptor]) -> Result<(), HostError> {
        Ok(())
    }
    fn abort(&self, spans: &[Span]) -> Result<(), HostError> {
        self.cluster.abort(spans)
    }
}

fn status_mib(field: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// CPU seconds (user + system) the process has used: less sensitive than
/// wall time to other work on a shared machine.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 12th and 13th of them, in clock ticks (USER_HZ, 100 on Linux).
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn load(fx: &Fixture, mib: usize) {
    let rows = (mib << 20) / (VALUE_LEN + 24);
    for start in (0..rows).step_by(2000) {
        let batch: Vec<_> = (start..(start + 2000).min(rows))
            .map(|i| (row(USERS, i as u32), Some(value(i as u32, VALUE_LEN))))
            .collect();
        fx.cluster.write_batch(&batch).unwrap();
    }
}

fn restore(
    fx: &Fixture,
    rt: &tokio::runtime::Runtime,
    what: &str,
    new: DescriptorId,
    discard: bool,
    settings: RestoreSettings,
) {
    let target = Arc::new(Target {
        cluster: fx.cluster.clone(),
        discard,
        largest_batch: AtomicUsize::new(0),
    });
    let jobs = RestoreJobs::new(fx.host(), target.clone(), settings);
    let before = status_mib("VmRSS:");
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let start = Instant::now();
    let cpu_start = cpu_secs();
    let r = rt.block_on(jobs.restore(users_restore(URI, new))).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu_start;
    let growth = status_mib("VmHWM:") - before;
    let mib = r.bytes as f64 / (1 << 20) as f64;
    println!(
        "{what}: {mib:.1} MiB in {secs:.2} s = {:.1} MiB/s; CPU {cpu:.2} s = {:.1} MiB per \
         CPU-second; RSS growth {growth:.0} MiB (RSS before {before:.0} MiB); largest batch {} KiB",
        mib / secs,
        mib / cpu.max(0.01),
        target.largest_batch.load(Ordering::Relaxed) >> 10
    );
}

fn main() {
    let sizes = e2e::measure::sizes_mib("RESTORE_MEM_SIZES", "64,256");
    let rt = tokio::runtime::Runtime::new().unwrap();
    for mib in sizes {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ClusterConfig::default();
        if let Ok(cache) = std::env::var("RESTORE_MEM_CACHE_MIB") {
            config.cache_bytes = cache.parse::<usize>().unwrap() << 20;
        }
        let fx = Fixture::open(dir.path(), config).unwrap();
        load(&fx, mib);
        let end = fx.cluster.now().unwrap();
        let mut backup = fx.spec(URI, end, LayerChoice::NewFull);
        backup.descriptors.retain(|d| d.id == USERS);
        backup.spans = vec![embedded_cluster::keys::table_span(USERS)];
        let backups = BackupJobs::new(fx.host(), BackupSettings::default());
        rt.block_on(backups.backup(backup)).unwrap();
        println!(
            "--- table of {mib} MiB (RSS {:.0} MiB)",
            status_mib("VmRSS:")
        );
        restore(
            &fx,
            &rt,
            "restore job, default settings, batches dropped",
            900,
            true,
            RestoreSettings::default(),
        );
        restore(
            &fx,
            &rt,
            "restore job, 1 worker, 1 MiB batches, dropped",
            901,
            true,
            RestoreSettings {
                workers: 1,
                ingest_batch_bytes: 1 << 20,
                ..RestoreSettings::default()
            },
        );
        restore(
            &fx,
            &rt,
            "restore into the cluster, default settings",
            902,
            false,
            RestoreSettings::default(),
        );
        if let Ok(alt) = std::env::var("RESTORE_MEM_CLUSTER_ALT") {
            let mut settings = RestoreSettings::default();
            for part in alt.split(',') {
                match part.split_once('=') {
                    Some(("batch", v)) => {
                        settings.ingest_batch_bytes = v.parse::<usize>().unwrap() << 20
                    }
                    Some(("workers", v)) => settings.workers = v.parse().unwrap(),
                    _ => panic!("RESTORE_MEM_CLUSTER_ALT: {part}"),
                }
            }
            restore(
                &fx,
                &rt,
                &format!("restore into the cluster, {alt}"),
                903,
                false,
                settings,
            );
        }
    }
}
