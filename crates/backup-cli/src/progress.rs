//! Progress bars for the jobs a BACKUP or RESTORE statement runs.
//!
//! The statement blocks its session until its job is done, so a watcher
//! thread polls the job records (`system.jobs`, which the jobs update with
//! their fraction completed) and draws a bar for each new job.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use backup_exec::{JobId, JobRecord, JobStore};
use embedded_cluster::Cluster;

/// Where and how bars are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarMode {
    /// Redrawn in place on a terminal (stderr), every 100 ms.
    Live,
    /// One final line per job on stdout (for logs and pipes).
    Summary,
    /// No bars.
    Off,
}

/// Watches the jobs one statement starts.
pub struct JobWatch {
    cluster: Cluster,
    mode: BarMode,
    baseline: JobId,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl JobWatch {
    /// Starts watching for jobs newer than the newest one now.
    pub fn start(cluster: &Cluster, mode: BarMode) -> JobWatch {
        let baseline = newest(cluster);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = (mode == BarMode::Live).then(|| {
            let (cluster, stop) = (cluster.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(job) = jobs_after(&cluster, baseline).into_iter().last() {
                        let mut err = std::io::stderr().lock();
                        let _ = write!(err, "\r{}", bar(&job));
                        let _ = err.flush();
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        });
        JobWatch {
            cluster: cluster.clone(),
            mode,
            baseline,
            stop,
            thread,
        }
    }

    /// Stops watching and draws each job's final state.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let jobs = jobs_after(&self.cluster, self.baseline);
        match self.mode {
            BarMode::Off => {}
            BarMode::Live => {
                let mut err = std::io::stderr().lock();
                for job in &jobs {
                    let _ = writeln!(err, "\r{}", bar(job));
                }
            }
            BarMode::Summary => {
                let mut out = std::io::stdout().lock();
                for job in &jobs {
                    let _ = writeln!(out, "{}", bar(job));
                }
            }
        }
    }
}

/// Whether `sql` starts a job worth a bar.
pub fn runs_a_job(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or_default();
    first.eq_ignore_ascii_case("BACKUP") || first.eq_ignore_ascii_case("RESTORE")
}

/// `job 123 BACKUP [##########··········]  50% running`.
fn bar(job: &JobRecord) -> String {
    const WIDTH: usize = 30;
    let fraction = job.fraction_completed.clamp(0.0, 1.0);
    let filled = (fraction * WIDTH as f64).round() as usize;
    format!(
        "  job {} {:<7} [{}{}] {:>3.0}% {}",
        job.id,
        job.kind.as_str(),
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        fraction * 100.0,
        job.status.as_str()
    )
}

fn newest(cluster: &Cluster) -> JobId {
    JobStore::list(cluster)
        .map(|jobs| jobs.iter().map(|j| j.id).max().unwrap_or(0))
        .unwrap_or(0)
}

fn jobs_after(cluster: &Cluster, baseline: JobId) -> Vec<JobRecord> {
    let mut jobs: Vec<JobRecord> = JobStore::list(cluster)
        .map(|jobs| jobs.into_iter().filter(|j| j.id > baseline).collect())
        .unwrap_or_default();
    jobs.sort_by_key(|j| j.id);
    jobs
}
