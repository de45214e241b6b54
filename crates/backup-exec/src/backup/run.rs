//! Running a backup job: plan once, then attempts until done; transient
//! failures retry with backoff, and past the retry limit the job pauses.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use backup_format::datafile::DataFileOptions;
use backup_format::paths::{DATA_DIR, parse_data_file_name};
use backup_format::{EncryptionKey, SpanSet, Timestamp};
use tokio::sync::{mpsc, watch};

use super::checkpoint::Progress;
use super::export::{Event, Exporter};
use super::finish::{write_latest, write_manifest};
use super::plan::{
    Layer, Storages, check_gc_and_protect, encryption_key, layer_finished, open_storages,
    read_layer, resolve_layer,
};
use super::sink::SinkTarget;
use super::spec::{BackupResult, BackupSpec, Host};
use crate::error::ExecError;
use crate::host::{JobId, JobStatus};
use crate::progress::{ProgressEvent, ProgressListener};
use crate::settings::BackupSettings;

/// What a user asked a running job to do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum JobControl {
    /// Keep going.
    Run,
    /// Stop at the next chunk boundary, checkpoint, and pause.
    Pause,
    /// Stop and cancel.
    Cancel,
}

/// Everything one job run needs.
pub(crate) struct JobRun<'a> {
    pub(crate) host: &'a Host,
    pub(crate) settings: &'a BackupSettings,
    pub(crate) listener: &'a Arc<dyn ProgressListener>,
    pub(crate) job: JobId,
    pub(crate) spec: &'a BackupSpec,
}

/// Runs (or resumes) the backup of `job` to completion.
///
/// A transient failure anywhere (planning, export, upload, checkpoint,
/// manifest) restarts from the last checkpoint after a backoff; the budget
/// of `max_retries` resets whenever a restart made progress, and once it is
/// spent the job stops with [`ExecError::RetriesExhausted`] (and is paused).
pub(crate) async fn run_backup(
    run: JobRun<'_>,
    control: watch::Receiver<JobControl>,
) -> Result<BackupResult, ExecError> {
    let mut control = control;
    let mut done = SpanSet::new();
    let mut failures = 0u32;
    let started = Instant::now();
    loop {
        let before = done.clone();
        match run_once(&run, &mut control, &mut done, started).await {
            Ok(r) => return Ok(r),
            Err(e) if e.is_transient() => {
                if done != before {
                    failures = 0; // progress was made: the budget resets
                }
                failures += 1;
                if failures > run.settings.max_retries {
                    return Err(ExecError::RetriesExhausted {
                        attempts: failures,
                        last: e.to_string(),
                    });
                }
                tokio::time::sleep(run.settings.backoff(failures)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One run from the job's persisted layer and checkpoints to the manifest;
/// `done` receives the spans known done.
async fn run_once(
    run: &JobRun<'_>,
    control: &mut watch::Receiver<JobControl>,
    done: &mut SpanSet,
    started: Instant,
) -> Result<BackupResult, ExecError> {
    let (host, settings, spec, job) = (run.host, run.settings, run.spec, run.job);
    let record = host.jobs.get(job)?.ok_or(ExecError::JobNotFound(job))?;
    let (mut layer, storages, key) = if record.progress.is_empty() {
        resolve_layer(host, spec, settings).await?
    } else {
        let layer = Layer::decode(&record.progress)?;
        let storages = open_storages(host, spec, layer.incremental())?;
        let key = encryption_key(
            &storages,
            &layer.full_subdir,
            spec.encryption_passphrase.as_deref(),
            settings,
        )
        .await?;
        (layer, storages, key)
    };
    check_gc_and_protect(host, &mut layer, spec.end_time)?;
    let encoded = layer.encode();
    host.jobs.update(job, &mut |r| {
        r.progress = encoded.clone();
        Ok(())
    })?;
    let now = host.clock.now();
    if layer_finished(&storages, &layer).await? {
        write_latest(&storages.collection, &layer, now).await?;
        let prev = read_layer(&storages.layer_default, &layer.dir, key.as_ref()).await?;
        release(host, &layer)?;
        let s = prev.manifest.statistics;
        return Ok(result(job, s.rows, s.index_entries, s.bytes));
    }
    let mut progress = Progress::load(&storages.layer_default, &layer.dir, key.as_ref()).await?;
    *done = progress.done.clone();
    let r = attempt(
        run,
        &layer,
        &storages,
        key.as_ref(),
        &mut progress,
        control,
        started,
    )
    .await;
    *done = progress.done.clone();
    r?;
    // Everything the manifest will list is in a saved checkpoint first, so a
    // job interrupted while finishing lists exactly the same files on resume.
    progress
        .save(
            &storages.layer_default,
            &layer.dir,
            &job.to_string(),
            host.clock.now(),
            key.as_ref(),
        )
        .await?;
    // A pause or cancel that arrived after the last export stops here, before
    // the manifest: a canceled job must not leave a backup behind.
    match *control.borrow() {
        JobControl::Run => {}
        JobControl::Pause => return Err(ExecError::Paused(job)),
        JobControl::Cancel => return Err(ExecError::Canceled(job)),
    }
    let stats = write_manifest(
        host,
        &storages.layer_default,
        &storages.collection,
        spec,
        &layer,
        &progress,
        key.as_ref(),
    )
    .await?;
    release(host, &layer)?;
    Ok(result(job, stats.rows, stats.index_entries, stats.bytes))
}

/// Drops the job's protected timestamp (already dropped is fine).
fn release(host: &Host, layer: &Layer) -> Result<(), ExecError> {
    match layer.protection.map(|p| host.protector.release(p)) {
        Some(Err(e)) if !matches!(e, crate::host::HostError::NotFound(_)) => Err(e.into()),
        _ => Ok(()),
    }
}

fn result(job: JobId, rows: u64, index_entries: u64, bytes: u64) -> BackupResult {
    BackupResult {
        job_id: job,
        status: JobStatus::Succeeded,
        fraction_completed: 1.0,
        rows,
        index_entries,
        bytes,
    }
}

/// One attempt: export every span not yet done, checkpointing as it goes.
async fn attempt(
    run: &JobRun<'_>,
    layer: &Layer,
    storages: &Storages,
    key: Option<&EncryptionKey>,
    checkpoint: &mut Progress,
    control: &mut watch::Receiver<JobControl>,
    started: Instant,
) -> Result<(), ExecError> {
    let (host, settings, spec) = (run.host, run.settings, run.spec);
    let exporter = Arc::new(Exporter::new(
        host.kv.clone(),
        settings.clone(),
        spec.end_time,
        spec.revision_history,
        started,
    ));
    let todo = SpanSet::from_spans(layer.spans.iter().cloned()).subtract(&checkpoint.done);
    let introduced = SpanSet::from_spans(layer.introduced.iter().cloned());
    let now = Instant::now();
    let mut total = exporter
        .plan(
            todo.intersection(&introduced).spans().to_vec(),
            Timestamp::ZERO,
            now,
            0,
        )
        .await?;
    total += exporter
        .plan(
            todo.subtract(&introduced).spans().to_vec(),
            layer.start_time,
            now,
            0,
        )
        .await?;
    run.listener.event(&ProgressEvent::Planned {
        job: run.job,
        total_spans: total,
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Data-file numbers start above the clock's wall time and above every
    // file an earlier attempt of this layer left (a paused or crashed
    // attempt writes files its checkpoint may not list, and a clock's wall
    // time need not have moved past their numbers): no name is reused.
    let first_seq = u64::try_from(host.clock.now().wall)
        .unwrap_or(0)
        .max(next_free_seq(storages, &layer.dir).await?);
    let seq = Arc::new(AtomicU64::new(first_seq));
    let index_spans = Arc::new(SpanSet::from_spans(spec.index_spans.iter().cloned()));
    let options = DataFileOptions {
        encryption: key.cloned(),
        target_file_size: settings.file_size,
        ..DataFileOptions::default()
    };
    let mut workers = Vec::new();
    for node in host.kv.nodes() {
        let (storage, locality) = storages
            .by_locality
            .iter()
            .find(|((k, v), _)| node.locality.matches(k, v))
            .map(|((k, v), s)| (s.clone(), format!("{k}={v}")))
            .unwrap_or_else(|| (storages.layer_default.clone(), String::new()));
        let target = SinkTarget {
            node: node.id,
            storage,
            locality,
            layer_dir: layer.dir.clone(),
            options: options.clone(),
            seq: seq.clone(),
            index_spans: index_spans.clone(),
        };
        for _ in 0..settings.per_node_concurrency.max(1) {
            workers.push(tokio::spawn(exporter.clone().work(
                node.id,
                target.clone(),
                tx.clone(),
            )));
        }
    }
    drop(tx);
    let mut finished = 0usize;
    let mut last_checkpoint = Instant::now();
    let mut stopped = None;
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                None => break,
                Some(Event::Stored(d)) => {
                    if let Some(f) = &d.file {
                        run.listener.event(&ProgressEvent::FileWritten {
                            job: run.job,
                            path: f.path.clone(),
                            bytes: f.stored_bytes,
                        });
                    }
                    let d = *d;
                    checkpoint.record(d.file, &d.pieces);
                    if last_checkpoint.elapsed() >= settings.checkpoint_interval {
                        save(run, storages, layer, checkpoint, key, finished, total).await?;
                        last_checkpoint = Instant::now();
                    }
                }
                Some(Event::ItemFinished) => finished += 1,
            },
            changed = control.changed(), if stopped.is_none() => {
                let c = if changed.is_ok() { *control.borrow() } else { JobControl::Cancel };
                if c != JobControl::Run {
                    exporter.stop();
                    stopped = Some(c);
                }
            }
        }
    }
    for w in workers {
        w.await
            .map_err(|e| ExecError::Internal(format!("export worker: {e}")))?;
    }
    let error = exporter.take_error();
    if checkpoint.dirty() && (error.is_some() || stopped.is_some()) {
        save(run, storages, layer, checkpoint, key, finished, total).await?;
    }
    if let Some(e) = error {
        return Err(e);
    }
    match stopped {
        Some(JobControl::Pause) => Err(ExecError::Paused(run.job)),
        Some(_) => Err(ExecError::Canceled(run.job)),
        None => Ok(()),
    }
}

/// Writes a checkpoint and the job's fraction completed.
async fn save(
    run: &JobRun<'_>,
    storages: &Storages,
    layer: &Layer,
    checkpoint: &mut Progress,
    key: Option<&EncryptionKey>,
    finished: usize,
    total: usize,
) -> Result<(), ExecError> {
    let path = checkpoint
        .save(
            &storages.layer_default,
            &layer.dir,
            &run.job.to_string(),
            run.host.clock.now(),
            key,
        )
        .await?;
    if let Some(path) = path {
        run.listener
            .event(&ProgressEvent::Checkpointed { job: run.job, path });
    }
    let fraction = if total == 0 {
        1.0
    } else {
        (finished as f64 / total as f64).min(0.99)
    };
    run.host.jobs.update(run.job, &mut |r| {
        if fraction > r.fraction_completed {
            r.fraction_completed = fraction;
        }
        Ok(())
    })?;
    run.listener.event(&ProgressEvent::Fraction {
        job: run.job,
        fraction,
    });
    Ok(())
}

/// One above the highest data-file number in `layer_dir` on any of the
/// layer's storages (0 when there is none).
async fn next_free_seq(storages: &Storages, layer_dir: &str) -> Result<u64, ExecError> {
    let mut next = 0;
    let all =
        std::iter::once(&storages.layer_default).chain(storages.by_locality.iter().map(|(_, s)| s));
    for storage in all {
        let prefix = format!("{layer_dir}/{DATA_DIR}/");
        for obj in storage.list(&prefix, false).await?.objects {
            let name = obj
                .path
                .strip_prefix(&format!("{layer_dir}/"))
                .unwrap_or(&obj.path);
            if let Some((_, seq)) = parse_data_file_name(name) {
                next = next.max(seq.saturating_add(1));
            }
        }
    }
    Ok(next)
}
