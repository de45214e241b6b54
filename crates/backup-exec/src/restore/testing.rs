//! An in-memory [`Ingest`] fake and a table-keyed layout for restore tests
//! (feature `testing`).
//!
//! Keys of table `T` start with `b't'` then `T` as a big-endian u64
//! ([`table_key`]); [`MemoryIngest`] rewrites that id, stores ingested
//! entries, publishes descriptors, and can be told to fail.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use backup_format::{Descriptor, DescriptorId, MvccEntry, Span, Timestamp};

use crate::host::{HostError, IdRewrites, Ingest, KeyRewriter};

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

    fn ingest(&self, batch: Vec<MvccEntry>) -> Result<(), HostError> {
        let n = self.batches.fetch_add(1, Ordering::Relaxed);
        if lock(&self.fail_after_batches).is_some_and(|limit| n >= limit) {
            return Err(HostError::Storage("injected ingest failure".into()));
        }
        let bytes: usize = batch.iter().map(MvccEntry::size).sum();
        self.largest_batch.fetch_max(bytes, Ordering::Relaxed);
        let mut data = lock(&self.data);
        for e in batch {
            let Some(v) = e.value else {
                return Err(HostError::Invalid(
                    "a restore never ingests a delete".into(),
                ));
            };
            data.insert((e.key, std::cmp::Reverse(e.ts)), v);
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
}
