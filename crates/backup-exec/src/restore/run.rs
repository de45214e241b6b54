//! Running a restore job: read and validate the chain, plan descriptors and
//! work units, restore the units in parallel, publish once; on any failure
//! remove what was ingested, so nothing is half visible.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use backup_format::SpanSet;
use tokio::task::{JoinHandle, JoinSet};

use super::chain::read_backup;
use super::cover::{LayerFile, cover};
use super::plan::plan_descriptors;
use super::read::{UnitContext, UnitStats, restore_unit};
use super::spec::{RestoreResult, RestoreSettings, RestoreSpec};
use crate::backup::Host;
use crate::error::ExecError;
use crate::host::{Ingest, JobId, JobKind, JobRecord, JobStatus};

type Running = Arc<Mutex<HashMap<JobId, JoinHandle<Result<RestoreResult, ExecError>>>>>;

/// Starts restore jobs on one host. Cheap to clone.
#[derive(Clone)]
pub struct RestoreJobs {
    host: Host,
    ingest: Arc<dyn Ingest>,
    settings: RestoreSettings,
    running: Running,
}

impl RestoreJobs {
    /// Restores through `ingest` on `host` with `settings`.
    pub fn new(host: Host, ingest: Arc<dyn Ingest>, settings: RestoreSettings) -> RestoreJobs {
        RestoreJobs {
            host,
            ingest,
            settings,
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn running(
        &self,
    ) -> MutexGuard<'_, HashMap<JobId, JoinHandle<Result<RestoreResult, ExecError>>>> {
        match self.running.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Registers a restore job and runs it; waits for it unless
    /// `spec.options.detached` (then the id comes back at once, `running`).
    pub async fn restore(&self, spec: RestoreSpec) -> Result<RestoreResult, ExecError> {
        let now = self.host.clock.now();
        let record = JobRecord::started(
            JobKind::Restore,
            spec.redacted_description(),
            spec.user.clone(),
            now,
            Vec::new(),
        );
        let id = self.host.jobs.create(&record)?;
        let this = self.clone();
        let detached = spec.options.detached;
        let handle = tokio::spawn(async move {
            let r = run_restore(&this, id, &spec).await;
            this.conclude(id, r)
        });
        if detached {
            self.running().insert(id, handle);
            return Ok(RestoreResult {
                job_id: id,
                status: JobStatus::Running,
                fraction_completed: 0.0,
                rows: 0,
                index_entries: 0,
                bytes: 0,
            });
        }
        handle
            .await
            .map_err(|e| ExecError::Internal(format!("restore job {id}: {e}")))?
    }

    /// Waits for a detached restore started by this registry.
    pub async fn wait(&self, id: JobId) -> Result<RestoreResult, ExecError> {
        let Some(handle) = self.running().remove(&id) else {
            let record = self.job(id)?;
            return Err(ExecError::JobState {
                id,
                status: record.status.as_str(),
                what: "this process is not running it".into(),
            });
        };
        handle
            .await
            .map_err(|e| ExecError::Internal(format!("restore job {id}: {e}")))?
    }

    /// The job's record.
    pub fn job(&self, id: JobId) -> Result<JobRecord, ExecError> {
        self.host.jobs.get(id)?.ok_or(ExecError::JobNotFound(id))
    }

    fn conclude(
        &self,
        id: JobId,
        r: Result<RestoreResult, ExecError>,
    ) -> Result<RestoreResult, ExecError> {
        let now = self.host.clock.now();
        let (status, error) = match &r {
            Ok(_) => (JobStatus::Succeeded, None),
            Err(e) => (JobStatus::Failed, Some(e.to_string())),
        };
        self.host.jobs.update(id, &mut |rec| {
            rec.status = status;
            rec.error = error.clone();
            rec.finished = Some(now);
            if status == JobStatus::Succeeded {
                rec.fraction_completed = 1.0;
            }
            Ok(())
        })?;
        r
    }
}

/// One restore, start to end.
async fn run_restore(
    jobs: &RestoreJobs,
    id: JobId,
    spec: &RestoreSpec,
) -> Result<RestoreResult, ExecError> {
    let host = &jobs.host;
    let passphrase = spec.options.encryption_passphrase.as_deref();
    let chain = read_backup(host.storage.as_ref(), &spec.source, passphrase).await?;
    let (read_at, used) = chain.restore_time(spec.as_of)?;
    let layers = &chain.layers[..used];
    let full_cluster = layers.first().is_some_and(|l| l.manifest.full_cluster);
    let backed_up = chain.descriptors(spec.as_of).await?;
    let plan = plan_descriptors(host, spec, &backed_up, full_cluster)?;
    let rewriter: Arc<dyn crate::host::KeyRewriter> =
        Arc::from(jobs.ingest.key_rewriter(&plan.ids)?);
    let published = plan.published(&spec.rewrites, rewriter.as_ref())?;
    let new_spans: Vec<_> = published.iter().flat_map(|d| d.spans.clone()).collect();
    let wanted = SpanSet::from_spans(plan.data_spans());
    // The newest layer used must hold every restored span.
    if let Some(last) = layers.last() {
        let held = SpanSet::from_spans(last.manifest.spans.iter().cloned());
        if let Some(s) = wanted.iter().find(|s| !held.covers(s)) {
            return Err(ExecError::Invalid(format!(
                "the backup {} does not hold the data of span {s:?}: restore from a backup that contains it",
                last.dir
            )));
        }
    }
    let mut files = Vec::new();
    for layer in layers {
        for file in chain.files(layer).await? {
            if !wanted.overlaps(&file.span) {
                continue;
            }
            let storage = chain.file_storage(layer, &file)?;
            files.push(Arc::new(LayerFile {
                path: format!("{}/{}", layer.dir, file.path),
                file,
                storage,
            }));
        }
    }
    let units = cover(&wanted, &files, &jobs.settings);
    let ctx = Arc::new(UnitContext {
        key: chain.key.clone(),
        read_at,
        write_at: host.clock.now(),
        rewriter,
        ingest: jobs.ingest.clone(),
        index_spans: SpanSet::from_spans(spec.index_spans.iter().cloned()),
        settings: jobs.settings.clone(),
        stop: Arc::new(AtomicBool::new(false)),
    });
    let outcome = match restore_units(jobs, id, units, ctx).await {
        Ok(stats) => publish(jobs, published).await.map(|()| stats),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(stats) => Ok(RestoreResult {
            job_id: id,
            status: JobStatus::Succeeded,
            fraction_completed: 1.0,
            rows: stats.rows,
            index_entries: stats.index_entries,
            bytes: stats.bytes,
        }),
        Err(e) => {
            // Nothing was published: remove every ingested entry.
            let ingest = jobs.ingest.clone();
            let cleaned = tokio::task::spawn_blocking(move || ingest.abort(&new_spans)).await;
            match cleaned {
                Ok(Ok(())) => Err(e),
                Ok(Err(c)) => Err(ExecError::Internal(format!(
                    "{e}; removing the partly restored data also failed: {c}"
                ))),
                Err(c) => Err(ExecError::Internal(format!("{e}; cleanup task: {c}"))),
            }
        }
    }
}

/// Runs the units with at most `workers` at once; on the first failure the
/// others stop at their next batch, and this returns once all have stopped.
async fn restore_units(
    jobs: &RestoreJobs,
    id: JobId,
    units: Vec<super::cover::WorkUnit>,
    ctx: Arc<UnitContext>,
) -> Result<UnitStats, ExecError> {
    let total = units.len();
    let mut todo = units.into_iter().filter(|u| !u.files.is_empty());
    let mut set = JoinSet::new();
    let mut stats = UnitStats::default();
    let mut first_error = None;
    let mut done = 0usize;
    let workers = jobs.settings.workers.max(1);
    loop {
        while first_error.is_none() && set.len() < workers {
            let Some(unit) = todo.next() else { break };
            set.spawn(restore_unit(unit, ctx.clone()));
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        match joined {
            Ok(Ok(s)) => {
                stats.rows += s.rows;
                stats.index_entries += s.index_entries;
                stats.bytes += s.bytes;
                done += 1;
                let fraction = (done as f64 / total.max(1) as f64).min(0.99);
                jobs.host.jobs.update(id, &mut |r| {
                    r.fraction_completed = r.fraction_completed.max(fraction);
                    Ok(())
                })?;
            }
            Ok(Err(e)) => {
                ctx.stop.store(true, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
            Err(e) => {
                ctx.stop.store(true, Ordering::Relaxed);
                first_error.get_or_insert(ExecError::Internal(format!("restore worker: {e}")));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

async fn publish(
    jobs: &RestoreJobs,
    descriptors: Vec<backup_format::Descriptor>,
) -> Result<(), ExecError> {
    let ingest = jobs.ingest.clone();
    tokio::task::spawn_blocking(move || ingest.publish(&descriptors))
        .await
        .map_err(|e| ExecError::Internal(format!("publish task: {e}")))??;
    Ok(())
}
