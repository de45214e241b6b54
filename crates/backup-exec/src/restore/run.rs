//! One run of a restore job: read and validate the chain, plan descriptors
//! and work units, restore the units in parallel (checkpointing each),
//! publish once; on failure or cancel remove what was ingested, so nothing
//! is half visible. A pause stops at the next ingest batch and keeps what
//! finished units ingested for the resume.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use backup_format::{Descriptor, Span, SpanSet};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::chain::{BackupChain, SchemaChanges, read_backup};
use super::codec::{RestoreCheckpoint, decode_checkpoint, encode_checkpoint};
use super::control::{Outcome, RestoreJobs};
use super::cover::{LayerFile, WorkUnit, balanced_target, cover, split_large};
use super::plan::{DescriptorPlan, plan_descriptors};
use super::read::{UnitContext, UnitStats, read_rows, restore_unit};
use super::spec::{RestoreResult, RestoreSettings, RestoreSpec, RestoreTargets};
use crate::backup::JobControl;
use crate::error::ExecError;
use crate::host::{Ingest, JobId, JobStatus, SystemRows};

/// One run of a restore, from its checkpoint to the end (or a stop).
pub(super) async fn run_restore(
    jobs: &RestoreJobs,
    id: JobId,
    spec: &RestoreSpec,
    control: watch::Receiver<JobControl>,
) -> Outcome {
    let host = &jobs.host;
    let mut checkpoint = decode_checkpoint(&jobs.job(id)?.progress)?;
    let passphrase = spec.options.encryption_passphrase.as_deref();
    let chain = read_backup(host.storage.as_ref(), &spec.source, passphrase).await?;
    let (read_at, used) = chain.restore_time(spec.as_of)?;
    let full_cluster = chain.layers[..used]
        .first()
        .is_some_and(|l| l.manifest.full_cluster);
    let backed_up = chain.descriptors(spec.as_of).await?;
    // A resumed run writes under the ids the first run picked.
    let mut effective = spec.clone();
    for (old, new) in &checkpoint.ids {
        effective.rewrites.entry(*old).or_default().new_id = *new;
    }
    let system = jobs.ingest.system_descriptors();
    let plan = plan_descriptors(host, &effective, &backed_up, full_cluster, &system)?;
    if let Some(changes) = chain.schema_changes(spec.as_of).await? {
        check_schema_unchanged(&plan, &changes, read_at)?;
    }
    let rewriter: Arc<dyn crate::host::KeyRewriter> =
        Arc::from(jobs.ingest.key_rewriter(&plan.ids)?);
    let published = plan.published(&effective.rewrites, rewriter.as_ref())?;
    let new_spans: Vec<Span> = published.iter().flat_map(|d| d.spans.clone()).collect();
    if checkpoint.ids.is_empty() {
        checkpoint.ids = plan.ids.clone();
        checkpoint.new_spans = new_spans.clone();
        save(jobs, id, &checkpoint, None)?;
    }
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
    let watcher = watch_control(control.clone(), ctx.stop.clone());
    let outcome = async {
        let (units, system_units) = plan_units(jobs, &chain, used, &plan, &checkpoint).await?;
        let stats = restore_units(jobs, id, units, &ctx, &mut checkpoint).await;
        stopped(id, &control)?;
        let stats = stats?;
        let system_rows = read_system_rows(&plan, system_units, &ctx).await?;
        stopped(id, &control)?;
        publish(jobs, &effective, published, system_rows, &plan).await?;
        Ok(stats)
    }
    .await;
    watcher.abort();
    match outcome {
        Ok(stats) => Ok(RestoreResult {
            job_id: id,
            status: JobStatus::Succeeded,
            fraction_completed: 1.0,
            rows: stats.rows,
            index_entries: stats.index_entries,
            bytes: stats.bytes,
        }),
        // Paused: what finished units ingested stays (invisible) for the resume.
        Err(e @ ExecError::Paused(_)) => Err(e),
        Err(e) => {
            // Nothing was published: remove every ingested entry.
            match clean_up(&jobs.ingest, new_spans).await {
                Ok(()) => Err(e),
                Err(c) => Err(ExecError::Internal(format!(
                    "{e}; removing the partly restored data also failed: {c}"
                ))),
            }
        }
    }
}

/// A restore as of a time inside a layer's window needs the schema as of
/// that time. A layer with descriptor revisions has it (see
/// [`BackupChain::descriptors`]); one without them (older backups, hosts
/// without descriptor history) has it only at the window's ends, so there an
/// object restored (or dropped from a restored database) whose descriptor
/// changed inside the window is an error rather than a guess.
fn check_schema_unchanged(
    plan: &DescriptorPlan,
    changes: &SchemaChanges,
    at: backup_format::Timestamp,
) -> Result<(), ExecError> {
    let restored = |id: &u64| plan.restored.contains_key(id);
    let hit = changes
        .changed
        .iter()
        .find(|(id, d)| restored(id) || restored(&d.parent_id));
    match hit {
        None => Ok(()),
        Some((id, d)) => Err(ExecError::RestoreTime {
            requested: at,
            reason: format!(
                "{} {} ({id}) was created, dropped or changed between {} and {} (the backup {}), \
                 and the backup keeps descriptors only as of those two times, so its schema \
                 as of the restore time is not known: restore as of {} or {}",
                d.kind.as_str(),
                d.name,
                changes.start,
                changes.end,
                changes.dir,
                changes.start,
                changes.end
            ),
        }),
    }
}

/// Sets `stop` once a pause or cancel is asked for.
fn watch_control(
    mut control: watch::Receiver<JobControl>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *control.borrow_and_update() != JobControl::Run {
                stop.store(true, Ordering::Relaxed);
                return;
            }
            if control.changed().await.is_err() {
                return;
            }
        }
    })
}

/// The pause or cancel asked for, as the error that stops the run.
fn stopped(id: JobId, control: &watch::Receiver<JobControl>) -> Result<(), ExecError> {
    match *control.borrow() {
        JobControl::Run => Ok(()),
        JobControl::Pause => Err(ExecError::Paused(id)),
        JobControl::Cancel => Err(ExecError::Canceled(id)),
    }
}

/// The work units still to do, and those of the system rows (a full-cluster
/// restore; read whole on every run: they are small).
async fn plan_units(
    jobs: &RestoreJobs,
    chain: &BackupChain,
    used: usize,
    plan: &DescriptorPlan,
    checkpoint: &RestoreCheckpoint,
) -> Result<(Vec<WorkUnit>, Vec<WorkUnit>), ExecError> {
    let layers = &chain.layers[..used];
    let data = SpanSet::from_spans(plan.data_spans());
    let system = SpanSet::from_spans(plan.system_spans());
    let all = data.union(&system);
    // The newest layer used must hold every restored span.
    if let Some(last) = layers.last() {
        let held = SpanSet::from_spans(last.manifest.spans.iter().cloned());
        if let Some(s) = all.iter().find(|s| !held.covers(s)) {
            return Err(ExecError::Invalid(format!(
                "the backup {} does not hold the data of span {s:?}: restore from a backup that contains it",
                last.dir
            )));
        }
    }
    let mut files = Vec::new();
    for layer in layers {
        for file in chain.files(layer).await? {
            if !all.overlaps(&file.span) {
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
    let todo = data.subtract(&checkpoint.done);
    let target = balanced_target(&todo, &files, &jobs.settings);
    let settings = RestoreSettings {
        unit_target_bytes: target,
        ..jobs.settings.clone()
    };
    let units = split_large(cover(&todo, &files, &settings), target, chain.key.as_ref()).await?;
    Ok((units, cover(&system, &files, &jobs.settings)))
}

/// Runs the units with at most `workers` at once, checkpointing each
/// finished one once the host has made it durable ([`Ingest::sync`], run
/// while the other units go on); on the first failure (or a pause or cancel)
/// the others stop at their next batch, and this returns once all have
/// stopped.
async fn restore_units(
    jobs: &RestoreJobs,
    id: JobId,
    units: Vec<WorkUnit>,
    ctx: &Arc<UnitContext>,
    checkpoint: &mut RestoreCheckpoint,
) -> Result<UnitStats, ExecError> {
    let total = units.len();
    let mut todo = units.into_iter().filter(|u| !u.files.is_empty());
    let mut set = JoinSet::new();
    let mut stats = UnitStats::default();
    let mut first_error = None;
    let mut done = 0usize;
    // Units ingested but not yet durable, so not yet in the checkpoint.
    let mut finished: Vec<Span> = Vec::new();
    let workers = jobs.settings.workers.max(1);
    loop {
        while first_error.is_none() && !ctx.stop.load(Ordering::Relaxed) && set.len() < workers {
            let Some(unit) = todo.next() else { break };
            let span = unit.span.clone();
            let c = ctx.clone();
            set.spawn(async move { (span, restore_unit(unit, c).await) });
        }
        if first_error.is_none() && !finished.is_empty() {
            done += finished.len();
            let fraction = (done as f64 / total.max(1) as f64).min(0.99);
            if let Err(e) = make_durable(jobs, id, ctx, checkpoint, &mut finished, fraction).await {
                ctx.stop.store(true, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        match joined {
            Ok((span, Ok(s))) => {
                stats.rows += s.rows;
                stats.index_entries += s.index_entries;
                stats.bytes += s.bytes;
                finished.push(span);
            }
            Ok((_, Err(e))) => {
                ctx.stop.store(true, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
            Err(e) => {
                ctx.stop.store(true, Ordering::Relaxed);
                first_error.get_or_insert(ExecError::Internal(format!("restore worker: {e}")));
            }
        }
    }
    // Also after a stop: a paused job resumes without redoing these.
    if !finished.is_empty() {
        done += finished.len();
        let fraction = (done as f64 / total.max(1) as f64).min(0.99);
        if let Err(e) = make_durable(jobs, id, ctx, checkpoint, &mut finished, fraction).await {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

/// Has the host make the `finished` units durable, then records them in
/// the checkpoint.
async fn make_durable(
    jobs: &RestoreJobs,
    id: JobId,
    ctx: &UnitContext,
    checkpoint: &mut RestoreCheckpoint,
    finished: &mut Vec<Span>,
    fraction: f64,
) -> Result<(), ExecError> {
    let ingest = ctx.ingest.clone();
    tokio::task::spawn_blocking(move || ingest.sync())
        .await
        .map_err(|e| ExecError::Internal(format!("ingest task: {e}")))??;
    for span in finished.drain(..) {
        checkpoint.done.insert(span);
    }
    save(jobs, id, checkpoint, Some(fraction))
}

/// Persists the checkpoint (and progress, when given).
fn save(
    jobs: &RestoreJobs,
    id: JobId,
    checkpoint: &RestoreCheckpoint,
    fraction: Option<f64>,
) -> Result<(), ExecError> {
    let progress = encode_checkpoint(checkpoint);
    jobs.host.jobs.update(id, &mut |r| {
        r.progress = progress.clone();
        if let Some(f) = fraction {
            r.fraction_completed = r.fraction_completed.max(f);
        }
        Ok(())
    })?;
    Ok(())
}

/// The rows of the system tables at the restore time, per table.
async fn read_system_rows(
    plan: &DescriptorPlan,
    units: Vec<WorkUnit>,
    ctx: &UnitContext,
) -> Result<Vec<SystemRows>, ExecError> {
    let mut out: Vec<SystemRows> = plan
        .system_tables
        .iter()
        .map(|d| SystemRows {
            table: d.id,
            rows: Vec::new(),
        })
        .collect();
    for unit in units.iter().filter(|u| !u.files.is_empty()) {
        for (key, value) in read_rows(unit, ctx).await? {
            let table = plan
                .system_tables
                .iter()
                .position(|d| d.spans.iter().any(|s| s.contains_key(&key)));
            if let Some(rows) = table.and_then(|i| out.get_mut(i)) {
                rows.rows.push((key, value));
            }
        }
    }
    for t in &mut out {
        t.rows.sort();
    }
    Ok(out)
}

async fn publish(
    jobs: &RestoreJobs,
    spec: &RestoreSpec,
    descriptors: Vec<Descriptor>,
    system: Vec<SystemRows>,
    plan: &DescriptorPlan,
) -> Result<(), ExecError> {
    let ingest = jobs.ingest.clone();
    let cluster = spec.targets == RestoreTargets::Cluster;
    let ids = plan.ids.clone();
    tokio::task::spawn_blocking(move || {
        if cluster {
            ingest.publish_cluster(&descriptors, &system, &ids)
        } else {
            ingest.publish(&descriptors)
        }
    })
    .await
    .map_err(|e| ExecError::Internal(format!("publish task: {e}")))??;
    Ok(())
}

/// Removes everything ingested into `spans`.
pub(super) async fn clean_up(ingest: &Arc<dyn Ingest>, spans: Vec<Span>) -> Result<(), ExecError> {
    if spans.is_empty() {
        return Ok(());
    }
    let ingest = ingest.clone();
    tokio::task::spawn_blocking(move || ingest.abort(&spans))
        .await
        .map_err(|e| ExecError::Internal(format!("cleanup task: {e}")))??;
    Ok(())
}
