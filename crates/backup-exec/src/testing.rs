//! In-memory fakes of the host traits for tests (feature `testing`).
//!
//! [`MemoryKv`] holds MVCC entries in a `BTreeMap` split into fixed ranges
//! whose leases are spread over nodes; it records every export so tests can
//! check each span was exported once, by its leaseholder. [`MemoryJobStore`],
//! [`StaticCatalog`] and [`MemoryStorages`] complete a [`Host`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use backup_format::manifest::DescriptorRevision;
use backup_format::{Descriptor, DescriptorId, MvccEntry, Span, Timestamp};
use backup_storage::{ExternalStorage, StorageContext, StorageError, StorageUri, open_memory};

use crate::backup::{Host, StorageOpener};
use crate::host::{
    Catalog, Clock, ExportChunk, ExportError, ExportRequest, HostError, JobId, JobRecord, JobStore,
    KvSource, Locality, NodeId, NodeInfo, ProtectionId, Protector, RangeInfo,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// `(key, newest-first ts)` -> value (`None`: tombstone).
type Versions = BTreeMap<(Vec<u8>, std::cmp::Reverse<Timestamp>), Option<Vec<u8>>>;

/// An in-memory keyspace with ranges, leaseholders and export.
#[derive(Default)]
pub struct MemoryKv {
    /// `(key, inverted ts)` -> value (`None`: tombstone).
    data: Mutex<Versions>,
    /// Range start keys -> leaseholder; ranges tile the keyspace.
    ranges: Mutex<BTreeMap<Vec<u8>, NodeId>>,
    nodes: Vec<NodeInfo>,
    clock: AtomicI64,
    /// Every successful export call: `(node, keys it covered)` — the
    /// request's start up to the chunk's resume key (or the span's end).
    pub exports: Mutex<Vec<(NodeId, Span)>>,
    gc_threshold: Mutex<Timestamp>,
    protections: Mutex<HashMap<u64, Timestamp>>,
    next_protection: AtomicU64,
}

impl MemoryKv {
    /// `nodes` nodes (localities `region=r<i>`), ranges split at `splits`,
    /// leases round-robin.
    pub fn new(nodes: u32, splits: &[&[u8]]) -> MemoryKv {
        let nodes: Vec<NodeInfo> = (1..=nodes)
            .map(|id| NodeInfo {
                id,
                locality: Locality::new([("region", format!("r{id}"))]),
                live: true,
            })
            .collect();
        let mut ranges = BTreeMap::new();
        ranges.insert(Vec::new(), 1);
        for (i, s) in splits.iter().enumerate() {
            ranges.insert(s.to_vec(), (i as u32 + 1) % nodes.len().max(1) as u32 + 1);
        }
        MemoryKv {
            ranges: Mutex::new(ranges),
            nodes,
            clock: AtomicI64::new(1_000),
            next_protection: AtomicU64::new(1),
            ..MemoryKv::default()
        }
    }

    /// Writes `value` (or a tombstone) at a fresh timestamp.
    pub fn put(&self, key: &[u8], value: Option<&[u8]>) -> Timestamp {
        let ts = self.now();
        lock(&self.data).insert(
            (key.to_vec(), std::cmp::Reverse(ts)),
            value.map(<[u8]>::to_vec),
        );
        ts
    }

    /// Sets the GC threshold of every span.
    pub fn set_gc_threshold(&self, ts: Timestamp) {
        *lock(&self.gc_threshold) = ts;
    }

    /// Protections held now.
    pub fn protections(&self) -> usize {
        lock(&self.protections).len()
    }

    fn leaseholder(&self, key: &[u8]) -> NodeId {
        lock(&self.ranges)
            .range(..=key.to_vec())
            .next_back()
            .map_or(1, |(_, n)| *n)
    }
}

impl KvSource for MemoryKv {
    fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.clone()
    }

    fn ranges(&self, spans: &[Span]) -> Result<Vec<RangeInfo>, HostError> {
        let ranges = lock(&self.ranges).clone();
        let bounds: Vec<(Vec<u8>, NodeId)> = ranges.into_iter().collect();
        let mut out = Vec::new();
        for span in spans {
            for (i, (start, node)) in bounds.iter().enumerate() {
                let end = bounds
                    .get(i + 1)
                    .map_or(backup_format::KEY_MAX.to_vec(), |(k, _)| k.clone());
                if let Some(clipped) = Span::new(start.clone(), end).intersect(span) {
                    out.push(RangeInfo {
                        range_id: i as u64 + 1,
                        span: clipped,
                        leaseholder: *node,
                        locality: self
                            .nodes
                            .iter()
                            .find(|n| n.id == *node)
                            .map(|n| n.locality.clone())
                            .unwrap_or_default(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn export(&self, node: NodeId, req: &ExportRequest) -> Result<ExportChunk, ExportError> {
        let holder = self.leaseholder(&req.span.start);
        if holder != node {
            return Err(ExportError::NotLeaseholder {
                node,
                leaseholder: holder,
            });
        }
        let data = lock(&self.data);
        let mut chunk = ExportChunk::default();
        let mut size = 0usize;
        let mut last_key: Option<Vec<u8>> = None;
        for ((key, std::cmp::Reverse(ts)), value) in
            data.range((req.span.start.clone(), std::cmp::Reverse(Timestamp::MAX))..)
        {
            if key.as_slice() >= req.span.end.as_slice() {
                break;
            }
            if *ts > req.end_ts || *ts <= req.start_ts {
                continue;
            }
            let new_key = last_key.as_deref() != Some(key.as_slice());
            if !new_key && !req.all_revisions {
                continue;
            }
            if new_key && req.target_bytes > 0 && size as u64 >= req.target_bytes {
                chunk.resume_key = Some(key.clone());
                break;
            }
            last_key = Some(key.clone());
            if value.is_none() && req.start_ts.is_zero() && !req.all_revisions {
                continue;
            }
            let e = MvccEntry {
                key: key.clone(),
                ts: *ts,
                value: value.clone(),
            };
            size += e.size();
            chunk.entries.push(e);
        }
        let covered = chunk.resume_key.clone().unwrap_or(req.span.end.clone());
        lock(&self.exports).push((node, Span::new(req.span.start.clone(), covered)));
        Ok(chunk)
    }
}

impl Protector for MemoryKv {
    fn protect(&self, _spans: &[Span], ts: Timestamp) -> Result<ProtectionId, HostError> {
        let threshold = *lock(&self.gc_threshold);
        if ts <= threshold {
            return Err(HostError::GcThreshold {
                requested: ts,
                threshold,
            });
        }
        let id = self.next_protection.fetch_add(1, Ordering::Relaxed);
        lock(&self.protections).insert(id, ts);
        Ok(ProtectionId(id))
    }

    fn release(&self, id: ProtectionId) -> Result<(), HostError> {
        lock(&self.protections)
            .remove(&id.0)
            .map(|_| ())
            .ok_or_else(|| HostError::NotFound(format!("protection {}", id.0)))
    }

    fn gc_threshold(&self, _span: &Span) -> Result<Timestamp, HostError> {
        Ok(*lock(&self.gc_threshold))
    }
}

impl Clock for MemoryKv {
    fn now(&self) -> Timestamp {
        Timestamp::from_wall(self.clock.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// Job records in memory.
#[derive(Default)]
pub struct MemoryJobStore {
    jobs: Mutex<BTreeMap<JobId, JobRecord>>,
}

impl JobStore for MemoryJobStore {
    fn create(&self, record: &JobRecord) -> Result<JobId, HostError> {
        let mut jobs = lock(&self.jobs);
        let id = jobs.keys().next_back().map_or(1, |k| k + 1);
        let mut r = record.clone();
        r.id = id;
        jobs.insert(id, r);
        Ok(id)
    }

    fn update(
        &self,
        id: JobId,
        change: &mut dyn FnMut(&mut JobRecord) -> Result<(), HostError>,
    ) -> Result<JobRecord, HostError> {
        let mut jobs = lock(&self.jobs);
        let r = jobs
            .get_mut(&id)
            .ok_or_else(|| HostError::NotFound(format!("job {id}")))?;
        let mut copy = r.clone();
        change(&mut copy)?;
        *r = copy.clone();
        Ok(copy)
    }

    fn get(&self, id: JobId) -> Result<Option<JobRecord>, HostError> {
        Ok(lock(&self.jobs).get(&id).cloned())
    }

    fn list(&self) -> Result<Vec<JobRecord>, HostError> {
        Ok(lock(&self.jobs).values().cloned().collect())
    }
}

/// A catalog of fixed descriptors, each with the time it was created; a
/// later pair with the same id is a new version of that descriptor.
#[derive(Default)]
pub struct StaticCatalog {
    /// `(created at, descriptor)`.
    pub descriptors: Mutex<Vec<(Timestamp, Descriptor)>>,
    /// Act as a host that keeps no descriptor history
    /// ([`Catalog::descriptor_revisions`] answers `None`).
    pub without_history: std::sync::atomic::AtomicBool,
}

impl Catalog for StaticCatalog {
    fn descriptors(&self, as_of: Timestamp) -> Result<Vec<Descriptor>, HostError> {
        Ok(lock(&self.descriptors)
            .iter()
            .filter(|(t, _)| *t <= as_of)
            .map(|(_, d)| d.clone())
            .collect())
    }

    fn descriptor(
        &self,
        id: DescriptorId,
        as_of: Timestamp,
    ) -> Result<Option<Descriptor>, HostError> {
        Ok(lock(&self.descriptors)
            .iter()
            .rev()
            .find(|(t, d)| d.id == id && *t <= as_of)
            .map(|(_, d)| d.clone()))
    }

    fn descriptor_revisions(
        &self,
        after: Timestamp,
        until: Timestamp,
    ) -> Result<Option<Vec<DescriptorRevision>>, HostError> {
        if self.without_history.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let mut out: Vec<DescriptorRevision> = lock(&self.descriptors)
            .iter()
            .filter(|(t, _)| *t > after && *t <= until)
            .map(|(t, d)| DescriptorRevision {
                id: d.id,
                time: *t,
                descriptor: Some(d.clone()),
            })
            .collect();
        out.sort_by_key(|r| (r.time, r.id));
        out.dedup_by_key(|r| (r.time, r.id));
        Ok(Some(out))
    }

    fn allocate_descriptor_ids(&self, _count: usize) -> Result<Vec<DescriptorId>, HostError> {
        Err(HostError::Invalid(
            "a static catalog allocates no ids".into(),
        ))
    }
}

/// Opens every URI as an in-memory storage, the same one for the same URI
/// (query parameters ignored); `file://` URIs open the real directory.
#[derive(Default)]
pub struct MemoryStorages {
    stores: Mutex<HashMap<String, Arc<dyn ExternalStorage>>>,
}

impl MemoryStorages {
    /// The storage behind `uri`'s base (without query).
    pub fn get(&self, uri: &str) -> Arc<dyn ExternalStorage> {
        let base = uri.split('?').next().unwrap_or(uri).to_string();
        lock(&self.stores)
            .entry(base)
            .or_insert_with(|| open_memory(&StorageContext::default()))
            .clone()
    }
}

impl StorageOpener for MemoryStorages {
    fn open(&self, uri: &StorageUri) -> Result<Arc<dyn ExternalStorage>, StorageError> {
        Ok(self.get(&uri.to_string()))
    }
}

/// A host made of `kv` (for KV, protection and clock) and fresh fakes.
pub fn memory_host(
    kv: Arc<MemoryKv>,
    catalog: Arc<StaticCatalog>,
    storages: Arc<MemoryStorages>,
) -> Host {
    Host {
        kv: kv.clone(),
        catalog,
        protector: kv.clone(),
        clock: kv,
        jobs: Arc::new(MemoryJobStore::default()),
        storage: storages,
    }
}
