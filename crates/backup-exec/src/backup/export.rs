//! Export: per-leaseholder queues worked by a bounded number of workers per node.
//!
//! - Each range goes to the queue of its leaseholder; only that node's
//!   workers export it (a lease move or a down node re-plans the rest of the
//!   span through [`KvSource::ranges`]).
//! - First try of a span: [`IntentPolicy::FailFast`]; on an intent the rest
//!   of the span goes to the back of the queue and waits `intent_retry_delay`
//!   since its last try; once the backup has run `priority_delay`, exports
//!   use [`IntentPolicy::ResolveWithPriority`].
//! - Transient failures re-plan the rest with backoff; `max_retries` of them
//!   in a row on one span without progress fail the attempt (the job then
//!   retries or pauses).
//! - Chunks in flight across the job are bounded by `max_in_flight_bytes`:
//!   a worker takes its chunk's share of a job-wide budget before asking for
//!   a chunk and returns it once the sink has consumed the chunk, so the
//!   job's buffers do not grow with the number of nodes and workers.
//! - No span is exported twice: a span leaves the queue before it is
//!   exported, and only its unexported remainder (from the chunk's resume
//!   key) is ever put back.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backup_format::{PrettyKey, Span, Timestamp};
use tokio::sync::{Notify, Semaphore, mpsc};

use super::sink::{Done, Sink, SinkTarget};
use crate::error::ExecError;
use crate::host::{ExportError, ExportRequest, IntentPolicy, KvSource, NodeId};
use crate::settings::BackupSettings;

/// A span waiting to be exported.
#[derive(Clone, Debug)]
pub(crate) struct WorkItem {
    pub(crate) span: Span,
    /// Exclusive lower time bound (ZERO for introduced spans and full backups).
    pub(crate) start_ts: Timestamp,
    not_before: Instant,
    failures: u32,
}

/// What workers tell the coordinator.
#[derive(Debug)]
pub(crate) enum Event {
    /// Spans stored (with their file).
    Stored(Box<Done>),
    /// One planned work item is entirely exported.
    ItemFinished,
}

struct State {
    queues: BTreeMap<NodeId, VecDeque<WorkItem>>,
    /// Items queued or being exported.
    outstanding: usize,
    error: Option<ExecError>,
    stop: bool,
}

/// Everything workers share.
pub(crate) struct Exporter {
    kv: Arc<dyn KvSource>,
    settings: BackupSettings,
    end_ts: Timestamp,
    all_revisions: bool,
    started: Instant,
    state: Mutex<State>,
    notify: Notify,
    /// The in-flight chunk budget, in KiB.
    budget: Semaphore,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Exporter {
    pub(crate) fn new(
        kv: Arc<dyn KvSource>,
        settings: BackupSettings,
        end_ts: Timestamp,
        all_revisions: bool,
        started: Instant,
    ) -> Exporter {
        Exporter {
            kv,
            end_ts,
            all_revisions,
            started,
            state: Mutex::new(State {
                queues: BTreeMap::new(),
                outstanding: 0,
                error: None,
                stop: false,
            }),
            notify: Notify::new(),
            budget: Semaphore::new(budget_kib(&settings).0),
            settings,
        }
    }

    /// Splits `spans` by range and queues each piece on its leaseholder.
    pub(crate) async fn plan(
        &self,
        spans: Vec<Span>,
        start_ts: Timestamp,
        not_before: Instant,
        failures: u32,
    ) -> Result<usize, ExecError> {
        if spans.is_empty() {
            return Ok(0);
        }
        let kv = self.kv.clone();
        let ranges = tokio::task::spawn_blocking(move || kv.ranges(&spans))
            .await
            .map_err(|e| super::join_error("planning", e))??;
        let n = ranges.len();
        let mut st = lock(&self.state);
        for r in ranges {
            st.queues
                .entry(r.leaseholder)
                .or_default()
                .push_back(WorkItem {
                    span: r.span,
                    start_ts,
                    not_before,
                    failures,
                });
            st.outstanding += 1;
        }
        drop(st);
        self.notify.notify_waiters();
        Ok(n)
    }

    /// Asks every worker to stop after its current chunk.
    pub(crate) fn stop(&self) {
        lock(&self.state).stop = true;
        self.notify.notify_waiters();
    }

    /// The first error a worker hit.
    pub(crate) fn take_error(&self) -> Option<ExecError> {
        lock(&self.state).error.take()
    }

    fn fail(&self, e: ExecError) {
        let mut st = lock(&self.state);
        if st.error.is_none() {
            st.error = Some(e);
        }
        st.stop = true;
        drop(st);
        self.notify.notify_waiters();
    }

    /// The next ready item of `node`'s queue; `None` when all work is done or stopped.
    async fn next(&self, node: NodeId) -> Option<WorkItem> {
        loop {
            let notified = self.notify.notified();
            let wait = {
                let mut st = lock(&self.state);
                if st.stop || st.outstanding == 0 {
                    return None;
                }
                let now = Instant::now();
                let queue = st.queues.entry(node).or_default();
                if let Some(i) = queue.iter().position(|w| w.not_before <= now) {
                    return queue.remove(i);
                }
                queue
                    .iter()
                    .map(|w| w.not_before - now)
                    .min()
                    .unwrap_or(Duration::from_millis(50))
            };
            let _ = tokio::time::timeout(wait, notified).await;
        }
    }

    fn requeue(&self, node: NodeId, item: WorkItem) {
        let mut st = lock(&self.state);
        st.queues.entry(node).or_default().push_back(item);
        st.outstanding += 1;
        drop(st);
        self.notify.notify_waiters();
    }

    fn finished_one(&self) {
        let mut st = lock(&self.state);
        st.outstanding = st.outstanding.saturating_sub(1);
        drop(st);
        self.notify.notify_waiters();
    }

    fn stopping(&self) -> bool {
        lock(&self.state).stop
    }

    /// One worker of `node`: exports items of its queue into its own sink.
    pub(crate) async fn work(
        self: Arc<Self>,
        node: NodeId,
        target: SinkTarget,
        events: mpsc::UnboundedSender<Event>,
    ) {
        let mut sink = Sink::new(target);
        while let Some(item) = self.next(node).await {
            let r = self.export_item(node, item, &mut sink, &events).await;
            self.finished_one();
            if let Err(e) = r {
                self.fail(e);
                break;
            }
        }
        match sink.close().await {
            Ok(Some(d)) => {
                let _ = events.send(Event::Stored(Box::new(d)));
            }
            Ok(None) => {}
            Err(e) => self.fail(e),
        }
    }

    async fn export_item(
        &self,
        node: NodeId,
        mut item: WorkItem,
        sink: &mut Sink,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Result<(), ExecError> {
        let end = item.span.end.clone();
        let mut cursor = item.span.start.clone();
        let send = |d: Option<Done>| {
            if let Some(d) = d {
                let _ = events.send(Event::Stored(Box::new(d)));
            }
        };
        send(sink.begin_piece(&cursor).await?);
        loop {
            if self.stopping() {
                send(sink.end_piece(&cursor));
                return Ok(());
            }
            let policy = if self.started.elapsed() >= self.settings.priority_delay {
                IntentPolicy::ResolveWithPriority
            } else {
                IntentPolicy::FailFast
            };
            let request = ExportRequest {
                span: Span::new(cursor.clone(), end.clone()),
                start_ts: item.start_ts,
                end_ts: self.end_ts,
                all_revisions: self.all_revisions,
                intent_policy: policy,
                target_bytes: self.settings.chunk_target_bytes,
            };
            // Held until the sink has taken the chunk's entries.
            let share = self
                .budget
                .acquire_many(budget_kib(&self.settings).1)
                .await
                .map_err(|_| ExecError::Internal("the export budget was closed".into()))?;
            let kv = self.kv.clone();
            let result = tokio::task::spawn_blocking(move || kv.export(node, &request))
                .await
                .map_err(|e| super::join_error("export", e))?;
            let rest = Span::new(cursor.clone(), end.clone());
            match result {
                Ok(chunk) => {
                    for d in sink.add(chunk.entries).await? {
                        send(Some(d));
                    }
                    drop(share);
                    item.failures = 0;
                    match chunk.resume_key {
                        Some(k) if k.as_slice() < end.as_slice() => cursor = k,
                        _ => {
                            send(sink.end_piece(&end));
                            let _ = events.send(Event::ItemFinished);
                            return Ok(());
                        }
                    }
                }
                Err(ExportError::WriteIntent { .. }) => {
                    send(sink.end_piece(&cursor));
                    let now = Instant::now();
                    self.requeue(
                        node,
                        WorkItem {
                            span: rest,
                            not_before: now + self.settings.intent_retry_delay,
                            ..item
                        },
                    );
                    return Ok(());
                }
                Err(e @ (ExportError::Transient(_) | ExportError::NotLeaseholder { .. })) => {
                    send(sink.end_piece(&cursor));
                    let failures = item.failures + 1;
                    if failures > self.settings.max_retries {
                        return Err(ExecError::Export {
                            span: format!("{}..{}", PrettyKey(&rest.start), PrettyKey(&rest.end)),
                            error: ExportError::Transient(e.to_string()),
                        });
                    }
                    let delay = match e {
                        ExportError::NotLeaseholder { .. } => Duration::ZERO,
                        _ => self.settings.backoff(failures),
                    };
                    // The lease may have moved: re-plan the rest by range.
                    self.plan(vec![rest], item.start_ts, Instant::now() + delay, failures)
                        .await?;
                    return Ok(());
                }
                Err(ExportError::GcThreshold {
                    requested,
                    threshold,
                }) => {
                    return Err(ExecError::BelowGcThreshold {
                        requested,
                        threshold,
                    });
                }
                Err(error @ ExportError::Permanent(_)) => {
                    return Err(ExecError::Export {
                        span: format!("{}..{}", PrettyKey(&rest.start), PrettyKey(&rest.end)),
                        error,
                    });
                }
            }
        }
    }
}

/// `(job budget, one chunk's share)` in KiB: the budget holds at least one
/// chunk, so a chunk larger than the budget still runs, alone.
fn budget_kib(settings: &BackupSettings) -> (usize, u32) {
    let limit = u64::from(u32::MAX / 2);
    let chunk = settings.chunk_target_bytes.div_ceil(1024).clamp(1, limit);
    let total = (settings.max_in_flight_bytes / 1024).clamp(chunk, limit);
    (total as usize, chunk as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_holds_at_least_one_chunk_and_never_overflows() {
        let mut s = BackupSettings::default();
        assert_eq!(budget_kib(&s), (64 << 10, 4 << 10));
        s.max_in_flight_bytes = 1 << 20;
        s.chunk_target_bytes = 16 << 20;
        assert_eq!(budget_kib(&s), (16 << 10, 16 << 10), "one chunk fits");
        s.max_in_flight_bytes = u64::MAX;
        s.chunk_target_bytes = u64::MAX;
        let (total, chunk) = budget_kib(&s);
        assert!(total <= Semaphore::MAX_PERMITS && chunk as usize <= total);
        s.chunk_target_bytes = 0;
        assert_eq!(budget_kib(&s).1, 1);
    }
}
