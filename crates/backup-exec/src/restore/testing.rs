//! An in-memory [`Ingest`] fake and a table-keyed layout for restore tests
//! (feature `testing`).
//!
//! Keys of table `T` start with `b't'` then `T` as a big-endian u64
//! ([`table_key`]); [`MemoryIngest`] rewrites that id, stores ingested
//! entries, publishes descriptors, and can be told to fail.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use backup_format::{Descriptor, DescriptorId, MvccEntry, Span, Timestamp};

use crate::host::{HostError, IdRewrites, Ingest, IngestBatch, KeyRewriter, SystemRows};

const MARKER: u8 = b't';
const PREFIX_LEN: usize = 9;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The key `suffix` of table `table`.
pub fn table_key(table: DescriptorId, suffix: &[u8]) -> Vec<u8> {
    let mut k = vec![MARKER];
    k.extend_from_slice(&table.to_be_bytes());
    k.extend_from_slice(suffix);
    k
}

/// Every key of table `table`.
pub fn table_span(table: DescriptorId) -> Span {
    Span::new(
        table_key(table, b""),
        table_key(table.saturating_add(1), b""),
    )
}

/// The table of a key in this layout.
pub fn table_of(key: &[u8]) -> Option<DescriptorId> {
    if key.len() < PREFIX_LEN || key[0] != MARKER {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&key[1..PREFIX_LEN]);
    Some(u64::from_be_bytes(id))
}

struct Rewriter(IdRewrites);

impl KeyRewriter for Rewriter {
    fn rewrite(&self, key: &[u8]) -> Option<Vec<u8>> {
        let new = self.0.get(&table_of(key)?)?;
        Some(table_key(*new, &key[PREFIX_LEN..]))
    }

    fn rewrite_span(&self, span: &Span) -> Option<Span> {
        let table = table_of(&span.start)?;
        let start = self.rewrite(&span.start)?;
        let end = if span.end == table_key(table.saturating_add(1), b"") {
            table_key(self.0.get(&table)?.saturating_add(1), b"")
        } else {
            self.rewrite(&span.end)?
        };
        Some(Span::new(start, end))
    }
}

/// `(key, newest-first ts)` -> value.
type Versions = BTreeMap<(Vec<u8>, std::cmp::Reverse<Timestamp>), Vec<u8>>;

/// Ingested data and published descriptors in memory.
#[derive(Default)]
pub struct MemoryIngest {
    data: Mutex<Versions>,
    published: Mutex<Vec<Descriptor>>,
    batches: AtomicUsize,
    largest_batch: AtomicUsize,
    /// Fail every ingest call after this many batches.
    pub fail_after_batches: Mutex<Option<usize>>,
    /// Fail `publish`.
    pub fail_publish: Mutex<bool>,
    /// Ids this host declares as its system descriptors.
    pub system: Mutex<BTreeSet<DescriptorId>>,
    /// System rows a full-cluster restore published, with its id map.
    system_rows: Mutex<Vec<(SystemRows, IdRewrites)>>,
    /// Blocks every ingest call while closed (see [`Gate`]).
    pub gate: Gate,
}

/// A gate ingest calls wait at: tests hold a restore provably mid-run
/// without guessing timings. Open unless closed.
#[derive(Default)]
pub struct Gate {
    state: Mutex<GateState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct GateState {
    closed: bool,
    arrivals: usize,
    close_at: Option<usize>,
}

impl Gate {
    /// Makes ingest calls wait.
    pub fn close(&self) {
        lock(&self.state).closed = true;
    }

    /// Closes the gate when the `n`-th call arrives (that call waits too).
    pub fn close_at(&self, n: usize) {
        lock(&self.state).close_at = Some(n);
    }

    /// Lets waiting and later ingest calls through.
    pub fn open(&self) {
        let mut g = lock(&self.state);
        g.closed = false;
        g.close_at = None;
        self.changed.notify_all();
    }

    /// Calls that arrived so far (waiting or passed).
    pub fn arrivals(&self) -> usize {
        lock(&self.state).arrivals
    }

    /// Blocks until at least `n` calls have arrived; `false` if they did not
    /// within 30 seconds (a hung test fails instead of hanging).
    pub fn wait_for_arrivals(&self, n: usize) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut g = lock(&self.state);
        while g.arrivals < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            g = match self.changed.wait_timeout(g, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    /// Called by an ingest: counts the arrival and waits while closed.
    pub fn pass(&self) {
        let mut g = lock(&self.state);
        g.arrivals += 1;
        if g.close_at == Some(g.arrivals) {
            g.closed = true;
        }
        self.changed.notify_all();
        while g.closed {
            g = match self.changed.wait(g) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
    }
}

impl MemoryIngest {
    /// Descriptors published so far.
    pub fn published(&self) -> Vec<Descriptor> {
        lock(&self.published).clone()
    }

    /// Every stored entry, published or not: `(key, ts, value)`.
    pub fn entries(&self) -> Vec<MvccEntry> {
        lock(&self.data)
            .iter()
            .map(|((k, t), v)| MvccEntry::put(k.clone(), t.0, v.clone()))
            .collect()
    }

    /// What SQL would see: the newest value of each key of a published table.
    pub fn visible(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let tables: Vec<DescriptorId> = self.published().iter().map(|d| d.id).collect();
        let mut out = BTreeMap::new();
        for ((k, _), v) in lock(&self.data).iter() {
            if table_of(k).is_some_and(|t| tables.contains(&t)) {
                out.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        out
    }

    /// System rows a full-cluster restore published, each with the id map
    /// it was given.
    pub fn system_rows(&self) -> Vec<(SystemRows, IdRewrites)> {
        lock(&self.system_rows).clone()
    }

    /// Ingest calls so far.
    pub fn batches(&self) -> usize {
        self.batches.load(Ordering::Relaxed)
    }

    /// Raw bytes of the largest batch.
    pub fn largest_batch_bytes(&self) -> usize {
        self.largest_batch.load(Ordering::Relaxed)
    }
}

impl Ingest for MemoryIngest {
    fn key_rewriter(&self, rewrites: &IdRewrites) -> Result<Box<dyn KeyRewriter>, HostError> {
        Ok(Box::new(Rewriter(rewrites.clone())))
    }

    fn ingest(&self, batch: IngestBatch) -> Result<(), HostError> {
        self.gate.pass();
        let n = self.batches.fetch_add(1, Ordering::Relaxed);
        if lock(&self.fail_after_batches).is_some_and(|limit| n >= limit) {
            return Err(HostError::Storage("injected ingest failure".into()));
        }
        self.largest_batch
            .fetch_max(batch.size(), Ordering::Relaxed);
        let mut data = lock(&self.data);
        for e in batch.iter() {
            let Some(v) = e.value else {
                return Err(HostError::Invalid(
                    "a restore never ingests a delete".into(),
                ));
            };
            data.insert((e.key.to_vec(), std::cmp::Reverse(e.ts)), v.to_vec());
        }
        Ok(())
    }

    fn publish(&self, descriptors: &[Descriptor]) -> Result<(), HostError> {
        if *lock(&self.fail_publish) {
            return Err(HostError::Storage("injected publish failure".into()));
        }
        lock(&self.published).extend_from_slice(descriptors);
        Ok(())
    }

    fn abort(&self, spans: &[Span]) -> Result<(), HostError> {
        lock(&self.data).retain(|(k, _), _| !spans.iter().any(|s| s.contains_key(k)));
        Ok(())
    }

    fn system_descriptors(&self) -> BTreeSet<DescriptorId> {
        lock(&self.system).clone()
    }

    /// Publishes the descriptors and records the system rows with the id map.
    fn publish_cluster(
        &self,
        descriptors: &[Descriptor],
        system: &[SystemRows],
        ids: &IdRewrites,
    ) -> Result<(), HostError> {
        self.publish(descriptors)?;
        lock(&self.system_rows).extend(system.iter().map(|t| (t.clone(), ids.clone())));
        Ok(())
    }
}
