//! Restore throughput beside backup throughput, in one process and one run,
//! on the embedded cluster.
//!
//! For each table size in `RESTORE_BENCH_SIZES` (MiB, default `32,128`) a
//! fresh cluster is loaded with 200-byte row values (as in the backup
//! benchmark), then, in criterion group `restore`:
//!
//! - `backup/<size>`: the table backed up to `nodelocal://1/` with the
//!   backup benchmark's settings (defaults, 1,000 KDF iterations) and
//!   options (zstd-compressed, AES-256-GCM-encrypted), a fresh collection
//!   each iteration (the previous one is deleted);
//! - `restore/<size>`: the latest backup (`LATEST`, its full chain) restored
//!   into fresh table ids with `RestoreSettings::default()` through the
//!   cluster's own bulk ingest (`impl Ingest for Cluster`; only publication
//!   is skipped, the fixture's descriptors having no catalog payload). Each
//!   restored table is cleared afterwards, so disk use stays bounded.
//!
//! Each iteration is timed by hand (wall clock, CPU seconds from
//! `/proc/self/stat`, growth of `VmHWM` after resetting it through
//! `/proc/self/clear_refs`); the median iteration of each is printed with
//! the ratio restore/backup of MiB/s and of MiB/s per core (of the same
//! table, so the ratio of backup to restore time), and the largest RSS
//! growth of each (usually the first iteration's: later ones reuse memory
//! the earlier ones freed, and the engine's page cache is warm). The first
//! restore of each size is verified: its row count and a digest of every
//! (key suffix, value) pair equal the source table's.
//!
//! `RESTORE_BENCH_VALUES` picks the values: `text` (default) repeats a row's
//! few fields, as the backup benchmark does, and compresses about 8:1;
//! `mixed` is pseudo-random words and numbers, which compress only about 2:1
//! (lz4) to 3:1 (zstd), closer to many real tables.
//!
//! Run: `cargo bench -p e2e --bench restore`; `-- --test` runs each once.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use backup_exec::{
    BackupJobs, BackupSettings, JobStatus, LayerChoice, RestoreJobs, RestoreSettings,
};
use backup_format::{DescriptorId, Timestamp};
use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use e2e::measure::{Meter, Run, each_entry, rss_mib};
use e2e::{Fixture, RecordingIngest, USERS, row, users_restore, value};
use embedded_cluster::fingerprint::Fnv64;
use embedded_cluster::{Cluster, ClusterConfig, keys};

const VALUE_LEN: usize = 200;
const PASSPHRASE: &str = "bench";
const COLLECTIONS: &str = "restore-bench";
/// Restored tables get ids from here on, one per restore.
const FIRST_NEW_ID: DescriptorId = 1000;

fn bench(c: &mut Criterion) {
    let sizes = e2e::measure::sizes_mib("RESTORE_BENCH_SIZES", "32,128");
    let values = Values::from_env();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("restore");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(1));
    let mut summary = Vec::new();
    for &mib in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let mut table = Table::load(dir.path(), mib, values);
        let size = format!("{mib}MiB");
        group.bench_function(BenchmarkId::new("backup", &size), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| table.backup(&rt)).sum())
        });
        group.bench_function(BenchmarkId::new("restore", &size), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| table.restore(&rt)).sum())
        });
        let lines = table.report();
        lines.iter().for_each(|l| println!("{l}"));
        summary.extend(lines);
    }
    group.finish();
    println!("=== summary");
    summary.iter().for_each(|l| println!("{l}"));
}

criterion_group!(benches, bench);
criterion_main!(benches);

/// One size: its cluster, its source table and what was measured on it.
struct Table {
    mib: usize,
    values: Values,
    fx: Fixture,
    rows: u64,
    /// When the source was last written: its digest is taken here.
    loaded_at: Timestamp,
    rss_loaded: f64,
    backups: Vec<Run>,
    restores: Vec<Run>,
    /// The last backup's collection, under node 1's `nodelocal` directory.
    collection: Option<String>,
    next_id: DescriptorId,
    verified: Option<(u64, u64)>,
    /// Seconds the first clearing of a restored table took (what the
    /// cleanup of a failed or canceled restore does).
    cleared_in: Option<f64>,
}

impl Table {
    /// A fresh cluster in `dir` with a table of about `mib` MiB of raw
    /// entries, read once so the engine's page cache holds it.
    fn load(dir: &std::path::Path, mib: usize, values: Values) -> Table {
        let fx = Fixture::open(dir, ClusterConfig::default()).unwrap();
        let rows = (mib << 20) / (VALUE_LEN + 24);
        for start in (0..rows).step_by(2000) {
            let batch: Vec<_> = (start..(start + 2000).min(rows))
                .map(|i| (row(USERS, i as u32), Some(values.value(i as u32))))
                .collect();
            fx.cluster.write_batch(&batch).unwrap();
        }
        let loaded_at = fx.cluster.now().unwrap();
        each_entry(&fx.cluster, USERS, loaded_at, |e| {
            std::hint::black_box(e);
        })
        .unwrap();
        Table {
            mib,
            values,
            fx,
            rows: rows as u64,
            loaded_at,
            rss_loaded: rss_mib(),
            backups: Vec::new(),
            restores: Vec::new(),
            collection: None,
            next_id: FIRST_NEW_ID,
            verified: None,
            cleared_in: None,
        }
    }

    /// Backs the table up into a fresh collection (deleting the previous
    /// one); returns the wall time.
    fn backup(&mut self, rt: &tokio::runtime::Runtime) -> Duration {
        let name = format!("{COLLECTIONS}/{}", self.backups.len());
        let uri = format!("nodelocal://1/{name}");
        let end = self.fx.cluster.now().unwrap();
        let mut spec = self.fx.spec(&uri, end, LayerChoice::NewFull);
        spec.descriptors.retain(|d| d.id == USERS);
        spec.spans = vec![keys::table_span(USERS)];
        spec.encryption_passphrase = Some(PASSPHRASE.into());
        let settings = BackupSettings {
            kdf_iterations: 1_000,
            ..BackupSettings::default()
        };
        let jobs = BackupJobs::new(self.fx.host(), settings);
        let meter = Meter::start();
        let r = rt.block_on(jobs.backup(spec)).unwrap();
        let run = meter.stop(r.bytes);
        assert_eq!(r.status, JobStatus::Succeeded);
        assert_eq!(r.rows, self.rows, "rows backed up");
        self.backups.push(run);
        if let Some(old) = self.collection.replace(name) {
            std::fs::remove_dir_all(self.node_dir().join(old)).unwrap();
        }
        Duration::from_secs_f64(run.wall)
    }

    /// Restores the last backup into a fresh id (verifying the first
    /// restore), then clears it; returns the wall time.
    fn restore(&mut self, rt: &tokio::runtime::Runtime) -> Duration {
        let collection = self
            .collection
            .clone()
            .expect("the backup benchmark runs before the restore one");
        let uri = format!("nodelocal://1/{collection}");
        let new = self.next_id;
        self.next_id += 1;
        let ingest = Arc::new(RecordingIngest::new(self.fx.cluster.clone()));
        let jobs = RestoreJobs::new(self.fx.host(), ingest, RestoreSettings::default());
        let meter = Meter::start();
        let mut spec = users_restore(&uri, new);
        spec.options.encryption_passphrase = Some(PASSPHRASE.into());
        let r = rt.block_on(jobs.restore(spec)).unwrap();
        let run = meter.stop(r.bytes);
        assert_eq!(r.status, JobStatus::Succeeded);
        assert_eq!(r.rows, self.rows, "rows restored");
        self.restores.push(run);
        if self.verified.is_none() {
            let now = self.fx.cluster.now().unwrap();
            let source = digest(&self.fx.cluster, USERS, self.loaded_at);
            let restored = digest(&self.fx.cluster, new, now);
            assert_eq!(source.0, self.rows, "rows in the source table");
            assert_eq!(
                restored, source,
                "table {new} restored from {uri}: (rows, digest) differs from the source's"
            );
            self.verified = Some(restored);
        }
        let clearing = std::time::Instant::now();
        self.fx
            .cluster
            .clear_spans(&[keys::table_span(new)])
            .unwrap();
        self.cleared_in
            .get_or_insert(clearing.elapsed().as_secs_f64());
        Duration::from_secs_f64(run.wall)
    }

    fn node_dir(&self) -> PathBuf {
        self.fx.cluster.node_dir(1).unwrap()
    }

    /// The lines printed for this size.
    fn report(&self) -> Vec<String> {
        let (b, r) = (median(&self.backups), median(&self.restores));
        let ranges = backup_exec::KvSource::ranges(&self.fx.cluster, &[keys::table_span(USERS)])
            .unwrap()
            .len();
        let peak = |runs: &[Run]| runs.iter().map(|r| r.peak_mib).fold(0.0, f64::max);
        let mut lines = vec![format!(
            "--- table of {} MiB, {:?} values ({} rows in {ranges} ranges; RSS after loading \
             {:.0} MiB); median of {} backups and {} restores",
            self.mib,
            self.values,
            self.rows,
            self.rss_loaded,
            self.backups.len(),
            self.restores.len()
        )];
        lines.push(b.line("backup (cluster -> nodelocal, zstd + AES-256-GCM)"));
        lines.push(r.line("restore (nodelocal -> cluster bulk ingest, new ids)"));
        // Both moved the same table (their byte counts differ only in what
        // each counts per entry), so the ratios are of times.
        lines.push(format!(
            "restore/backup: wall MiB/s {:.0}%, MiB/s per core {:.0}% (of the same table); \
             largest RSS growth: backup {:.0} MiB, restore {:.0} MiB",
            b.wall / r.wall.max(1e-9) * 100.0,
            b.cpu / r.cpu.max(1e-9) * 100.0,
            peak(&self.backups),
            peak(&self.restores)
        ));
        if let Some((rows, hash)) = self.verified {
            lines.push(format!(
                "restore verified: {rows} rows, digest {hash:016x} equal to the source table's"
            ));
        }
        if let Some(secs) = self.cleared_in {
            lines.push(format!(
                "clearing a restored table (the cleanup of a failed restore): {secs:.3} s"
            ));
        }
        lines
    }
}

/// The number of rows of `table` at `ts` and an FNV-1a digest of their
/// (key after the table prefix, value) pairs in key order.
fn digest(cluster: &Cluster, table: DescriptorId, ts: Timestamp) -> (u64, u64) {
    let mut h = Fnv64::default();
    let rows = each_entry(cluster, table, ts, |e| {
        let value = e.value.as_deref().expect("no deletes in the bench table");
        for part in [&e.key[keys::TABLE_PREFIX_LEN..], value] {
            h.write(&(part.len() as u32).to_le_bytes());
            h.write(part);
        }
    })
    .unwrap();
    (rows, h.finish())
}

/// What the rows' values look like (`RESTORE_BENCH_VALUES`).
#[derive(Clone, Copy, Debug)]
enum Values {
    /// A row's few fields repeated (compresses about 8:1).
    Text,
    /// Pseudo-random words and numbers (compresses about 2:1 to 3:1).
    Mixed,
}

impl Values {
    fn from_env() -> Values {
        match std::env::var("RESTORE_BENCH_VALUES").as_deref() {
            Err(_) | Ok("text") => Values::Text,
            Ok("mixed") => Values::Mixed,
            Ok(other) => panic!("RESTORE_BENCH_VALUES is `text` or `mixed`, not {other:?}"),
        }
    }

    /// The value of row `i`, [`VALUE_LEN`] bytes.
    fn value(self, i: u32) -> Vec<u8> {
        match self {
            Values::Text => value(i, VALUE_LEN),
            Values::Mixed => mixed_value(i),
        }
    }
}

/// Words and numbers drawn by a generator seeded with the row number.
fn mixed_value(i: u32) -> Vec<u8> {
    const WORDS: [&str; 32] = [
        "alpha", "bravo", "cedar", "delta", "ember", "fjord", "grove", "harbor", "island",
        "jasper", "kettle", "lumen", "meadow", "north", "orchid", "pebble", "quartz", "river",
        "summit", "timber", "umber", "valley", "willow", "xenon", "yarrow", "zephyr", "amber",
        "basalt", "copper", "dune", "estuary", "flint",
    ];
    // splitmix64, started at a mix of `i` (so no two rows' streams overlap).
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let mut state = mix(u64::from(i) ^ 0x5DEE_CE66_D1CE_4E5B);
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(state)
    };
    let mut out = Vec::with_capacity(VALUE_LEN + 24);
    while out.len() < VALUE_LEN {
        let r = next();
        if r % 3 == 0 {
            out.extend_from_slice(format!("{} ", r >> 40).as_bytes());
        } else {
            out.extend_from_slice(WORDS[(r >> 8) as usize % WORDS.len()].as_bytes());
            out.push(b' ');
        }
    }
    out.truncate(VALUE_LEN);
    out
}

/// The run of median wall time.
fn median(runs: &[Run]) -> Run {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}
