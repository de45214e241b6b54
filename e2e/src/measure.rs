//! What the benchmarks measure of this process, from `/proc/self`: CPU
//! seconds, resident memory and its peak, and a [`Meter`] that turns one
//! timed job into a [`Run`] (MiB/s wall, CPU seconds, MiB/s per core, RSS
//! growth). Also [`each_entry`], a table read in small chunks, to warm the
//! engine's page cache or digest a table without holding it in memory.

use std::time::Instant;

use backup_exec::{ExportRequest, IntentPolicy, KvSource};
use backup_format::{DescriptorId, MvccEntry, Timestamp};
use embedded_cluster::{Cluster, keys};

use crate::Error;

/// One measured job.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Run {
    /// Raw MiB the job moved.
    pub mib: f64,
    /// Wall-clock seconds.
    pub wall: f64,
    /// CPU seconds (user + system) of the whole process meanwhile.
    pub cpu: f64,
    /// Peak resident memory over the RSS at the start, in MiB.
    pub peak_mib: f64,
}

impl Run {
    /// MiB per wall-clock second.
    pub fn mib_per_s(&self) -> f64 {
        self.mib / self.wall.max(1e-9)
    }

    /// MiB per CPU second: throughput per core used.
    pub fn mib_per_core(&self) -> f64 {
        self.mib / self.cpu.max(1e-9)
    }

    /// `what: …` with every figure.
    pub fn line(&self, what: &str) -> String {
        format!(
            "{what}: {:.1} MiB in {:.2} s = {:.1} MiB/s; {:.2} CPU s ({:.2} cores) = {:.1} MiB/s per core; RSS growth {:.0} MiB",
            self.mib,
            self.wall,
            self.mib_per_s(),
            self.cpu,
            self.cpu / self.wall.max(1e-9),
            self.mib_per_core(),
            self.peak_mib
        )
    }

    /// Prints [`Run::line`]; returns [`Run::mib_per_core`].
    pub fn report(&self, what: &str) -> f64 {
        println!("{}", self.line(what));
        self.mib_per_core()
    }
}

/// A measurement under way: started by [`Meter::start`], which resets the
/// peak RSS, and turned into a [`Run`] by [`Meter::stop`].
#[derive(Debug)]
pub struct Meter {
    rss_mib: f64,
    wall: Instant,
    cpu: f64,
}

impl Meter {
    /// Starts measuring now.
    pub fn start() -> Meter {
        let rss_mib = rss_mib();
        reset_peak();
        Meter {
            rss_mib,
            wall: Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    /// The run so far, for a job that moved `bytes` raw bytes.
    pub fn stop(&self, bytes: u64) -> Run {
        Run {
            mib: bytes as f64 / f64::from(1 << 20),
            wall: self.wall.elapsed().as_secs_f64(),
            cpu: cpu_seconds() - self.cpu,
            peak_mib: status_kib("VmHWM:") as f64 / 1024.0 - self.rss_mib,
        }
    }
}

/// CPU seconds (user + system) of this process so far.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0 // utime, stime (fields 14, 15); USER_HZ = 100
}

/// A `/proc/self/status` field in KiB (`"VmRSS:"`, `"VmHWM:"`), 0 if absent.
pub fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The resident memory now, in MiB.
pub fn rss_mib() -> f64 {
    status_kib("VmRSS:") as f64 / 1024.0
}

/// Resets `VmHWM` to the current RSS.
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Calls `f` on every entry of `table` visible at `end` (latest versions
/// only), in key order, read from each range's leaseholder in 1 MiB chunks
/// dropped at once; returns how many entries there were.
pub fn each_entry(
    cluster: &Cluster,
    table: DescriptorId,
    end: Timestamp,
    mut f: impl FnMut(&MvccEntry),
) -> Result<u64, Error> {
    let mut count = 0;
    for r in KvSource::ranges(cluster, &[keys::table_span(table)])? {
        let mut req = ExportRequest {
            span: r.span.clone(),
            start_ts: Timestamp::ZERO,
            end_ts: end,
            all_revisions: false,
            intent_policy: IntentPolicy::FailFast,
            target_bytes: 1 << 20,
        };
        loop {
            let chunk = KvSource::export(cluster, r.leaseholder, &req)?;
            count += chunk.entries.len() as u64;
            chunk.entries.iter().for_each(&mut f);
            match chunk.resume_key {
                Some(k) => req.span.start = k,
                None => break,
            }
        }
    }
    Ok(count)
}

/// Table sizes in MiB from the comma-separated environment variable `var`
/// (`default` when unset), for the benchmarks and examples.
///
/// # Panics
/// On a size that is not a number: these are measuring tools, and a typo
/// should stop the run rather than measure something else.
#[allow(clippy::unwrap_used)]
pub fn sizes_mib(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{var}: {v:?} is not a size in MiB"))
        })
        .collect()
}
