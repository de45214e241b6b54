//! Opening the embedded cluster a command works on, from its store directory.

use std::path::Path;

use anyhow::{Context, bail};
use backup_exec::{JobStatus, JobStore, Locality};
use embedded_cluster::scheduler::SchedulerHandle;
use embedded_cluster::{Cluster, ClusterConfig, ClusterError};

/// An open cluster with the backup statements installed (and, for the
/// commands that keep the cluster up, the backup scheduler running);
/// removes them (and so releases the store) when dropped.
pub struct OpenStore {
    cluster: Cluster,
    scheduler: Option<SchedulerHandle>,
}

/// Whether scheduled backups run while the store is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedules {
    /// Due schedules start backups while the command runs.
    Run,
    /// Schedules are left alone (the demo, bulk loads).
    Ignore,
}

impl OpenStore {
    /// Opens (creating on first use) the cluster stored in `dir`, with
    /// `nodes` nodes if it is new; a reopened store keeps its own nodes.
    pub fn open(dir: &Path, nodes: usize, schedules: Schedules) -> anyhow::Result<OpenStore> {
        if nodes == 0 {
            bail!("--nodes must be at least 1");
        }
        let config = ClusterConfig {
            nodes: (0..nodes).map(locality).collect(),
            ..ClusterConfig::default()
        };
        let cluster = match Cluster::open(dir, config) {
            Ok(c) => c,
            Err(ClusterError::StoreInUse { path }) => bail!(
                "the store {} is in use by another process (a running `backup-cli sql` \
                 or demo?): close it, or pass another --store",
                path.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot open the cluster store {}: check the path, or pass a new \
                         directory to --store",
                        dir.display()
                    )
                });
            }
        };
        let scheduler = match schedules {
            Schedules::Run => Some(
                cluster
                    .start_scheduler()
                    .context("cannot start the backup scheduler")?,
            ),
            Schedules::Ignore => {
                cluster
                    .enable_backup_statements()
                    .context("cannot install the backup statements")?;
                None
            }
        };
        tracing::debug!(store = %dir.display(), nodes = cluster.nodes().len(), "store open");
        Ok(OpenStore { cluster, scheduler })
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Before the command ends: starts the backups of schedules that are due
    /// now and waits for them, printing each outcome to stderr, so a
    /// schedule that came due while the store was open is not left for the
    /// next process. Returns whether every one succeeded.
    pub fn finish_due_schedules(&self) -> anyhow::Result<bool> {
        let Some(handle) = &self.scheduler else {
            return Ok(true);
        };
        let scheduler = handle.scheduler();
        let report = scheduler.tick().context("running due schedules")?;
        let mut ok = true;
        for (schedule, why) in &report.failed_to_start {
            eprintln!("scheduled backup of schedule {schedule} could not start: {why}");
            ok = false;
        }
        for (schedule, job) in &report.started {
            eprintln!("schedule {schedule} is due: waiting for its backup job {job} to finish");
            let record = scheduler.wait_for_job(*job)?;
            eprintln!("backup job {job} {}", record.status.as_str());
            ok &= record.status == JobStatus::Succeeded;
        }
        // Scheduled backups started earlier in this session by the
        // background scheduler finish too, rather than stop with the process
        // (they would resume from a checkpoint next time, but a user who
        // closes the shell expects them done).
        let started: Vec<_> = report.started.iter().map(|(_, job)| *job).collect();
        let jobs = JobStore::list(&self.cluster).context("listing jobs")?;
        let mut waited = !started.is_empty();
        for job in jobs.iter().filter(|j| {
            j.created_by_schedule.is_some()
                && j.status == JobStatus::Running
                && !started.contains(&j.id)
        }) {
            eprintln!("waiting for scheduled backup job {} to finish", job.id);
            let record = scheduler.wait_for_job(job.id)?;
            eprintln!("backup job {} {}", job.id, record.status.as_str());
            waited = true;
        }
        // Record the outcomes in the schedules before the store closes.
        if waited {
            scheduler.tick().context("recording scheduled backups")?;
        }
        Ok(ok)
    }
}

impl Drop for OpenStore {
    fn drop(&mut self) {
        // Stop the scheduler thread before the statements go away.
        self.scheduler.take();
        self.cluster.disable_backup_statements();
    }
}

/// Node `i`'s locality (0-based): two zones of `us-east1`, then one of
/// `us-west1`, repeating, as [`ClusterConfig::default`] lays out three.
fn locality(i: usize) -> Locality {
    let (region, zone) = match i % 3 {
        0 => ("us-east1", "us-east1-a"),
        1 => ("us-east1", "us-east1-b"),
        _ => ("us-west1", "us-west1-a"),
    };
    let zone = if i >= 3 {
        format!("{zone}{}", i / 3 + 1)
    } else {
        zone.to_string()
    };
    Locality::new([("region", region), ("zone", zone.as_str())])
}
