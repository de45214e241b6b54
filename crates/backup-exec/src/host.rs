//! The narrow traits a host database implements.
//!
//! The backup and restore jobs see a host only through these traits:
//!
//! - [`KvSource`]: the nodes, the ranges with their leaseholders, and
//!   time-bounded MVCC export of a span;
//! - [`Catalog`]: schema descriptors as of a timestamp;
//! - [`Ingest`] and [`KeyRewriter`]: bulk writes of restored data under new ids,
//!   and the one-step publication of the restored descriptors;
//! - [`JobStore`]: persisted job records with opaque spec and checkpoint;
//! - [`Protector`]: protected timestamps and GC thresholds;
//! - [`Clock`]: the host's hybrid-logical clock.
//!
//! Every trait is **synchronous** (its methods block) and `Send + Sync`, so it is
//! object safe (`Arc<dyn KvSource>`) and simple to implement over a blocking
//! storage engine. The async executor calls them through
//! `tokio::task::spawn_blocking`; an implementation must therefore allow calls
//! from several threads at once (for example exports on different nodes).
//!
//! Every failure is a [`HostError`], except export, whose [`ExportError`] tells
//! apart the cases the backup job reacts to differently (requeue on an intent,
//! retry on a transient error, re-plan on a lease move, refuse below the GC
//! threshold, fail on anything permanent).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

pub use crate::batch::IngestBatch;
pub use crate::job::{JobId, JobKind, JobRecord, JobResult, JobStatus, JobStore};
use backup_format::manifest::DescriptorRevision;
use backup_format::{Descriptor, DescriptorId, MvccEntry, Span, Timestamp};

/// The id of a node of the host cluster.
pub type NodeId = u32;

/// A node's locality: ordered `key=value` tiers, most general first
/// (`region=us-east1,zone=us-east1-b`).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Locality {
    /// The tiers, in order.
    pub tiers: Vec<(String, String)>,
}

impl Locality {
    /// A locality from `(key, value)` tiers, most general first.
    pub fn new<K: Into<String>, V: Into<String>>(
        tiers: impl IntoIterator<Item = (K, V)>,
    ) -> Locality {
        Locality {
            tiers: tiers
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Whether the tier `key` has the value `value`.
    pub fn matches(&self, key: &str, value: &str) -> bool {
        self.get(key) == Some(value)
    }

    /// The value of the tier `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.tiers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether there are no tiers.
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }
}

impl FromStr for Locality {
    type Err = HostError;

    /// Parses `key=value[,key=value...]`; the empty string is the empty locality.
    fn from_str(s: &str) -> Result<Locality, HostError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Locality::default());
        }
        let mut tiers = Vec::new();
        for tier in s.split(',') {
            let (k, v) = tier.split_once('=').ok_or_else(|| {
                HostError::Invalid(format!(
                    "locality tier {tier:?} in {s:?} is not key=value \
                     (write e.g. region=us-east1,zone=a)"
                ))
            })?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() || v.is_empty() {
                return Err(HostError::Invalid(format!(
                    "locality tier {tier:?} in {s:?} has an empty key or value"
                )));
            }
            tiers.push((k.to_string(), v.to_string()));
        }
        Ok(Locality { tiers })
    }
}

impl fmt::Display for Locality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.tiers.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Locality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locality({self})")
    }
}

/// One node as the host sees it now.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NodeInfo {
    /// The node's id.
    pub id: NodeId,
    /// Where it runs.
    pub locality: Locality,
    /// Whether it is up (a down node holds no leases and cannot export).
    pub live: bool,
}

/// One range overlapping a requested span.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RangeInfo {
    /// The host's id of the range.
    pub range_id: u64,
    /// The part of the range inside the requested span (clipped to it).
    pub span: Span,
    /// The node holding the range's lease: the only node that may export it.
    pub leaseholder: NodeId,
    /// The leaseholder's locality.
    pub locality: Locality,
}

/// What an export does when it meets an unresolved write intent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum IntentPolicy {
    /// Fail at once with [`ExportError::WriteIntent`]; the job requeues the span.
    #[default]
    FailFast,
    /// Read at high priority: push (abort) the conflicting transaction, resolve
    /// its intent, then read.
    ResolveWithPriority,
}

/// A request to export the MVCC entries of one span.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ExportRequest {
    /// The keys to export (`[start, end)`); export resumes by moving `span.start`
    /// to the previous chunk's `resume_key`.
    pub span: Span,
    /// Exclusive lower time bound; [`Timestamp::ZERO`] exports from the beginning.
    pub start_ts: Timestamp,
    /// Inclusive upper time bound: the backup's read time.
    pub end_ts: Timestamp,
    /// Every revision in `(start_ts, end_ts]` instead of only the newest at `end_ts`.
    ///
    /// Without it: the newest version of each key at `end_ts` that was written
    /// after `start_ts`; keys whose newest version is a delete are left out when
    /// `start_ts` is ZERO and exported as a tombstone otherwise.
    pub all_revisions: bool,
    /// What to do on a write intent.
    pub intent_policy: IntentPolicy,
    /// Stop after about this many bytes ([`MvccEntry::size`]) and return a resume
    /// key; 0 lets the host pick its default chunk size (memory stays bounded
    /// either way). A chunk may exceed it to keep one key's revisions together.
    pub target_bytes: u64,
}

/// One chunk of an export.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ExportChunk {
    /// Entries in MVCC order (key ascending, timestamp descending); one key's
    /// revisions are never split between chunks.
    pub entries: Vec<MvccEntry>,
    /// Where the next chunk starts, when the span is not finished.
    pub resume_key: Option<Vec<u8>>,
}

/// Why an export failed; each case asks the job for a different reaction.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ExportError {
    /// An unresolved intent of a pending transaction sits in the span; retry
    /// later, or with [`IntentPolicy::ResolveWithPriority`].
    #[error(
        "conflicting write intent on key {} of transaction {txn}: retry later or read with priority",
        backup_format::PrettyKey(key)
    )]
    WriteIntent {
        /// The key holding the intent.
        key: Vec<u8>,
        /// The host's id of the transaction that wrote it.
        txn: String,
    },
    /// A temporary failure (node down, overload, I/O hiccup): retry with backoff.
    #[error("transient export failure: {0}; retry")]
    Transient(String),
    /// The span's data below `threshold` was garbage collected.
    #[error(
        "export at {requested} must be after the replica GC threshold {threshold}: \
         protect the timestamp before it ages out, or back up at a later time"
    )]
    GcThreshold {
        /// The timestamp asked for.
        requested: Timestamp,
        /// The range's GC threshold.
        threshold: Timestamp,
    },
    /// The node asked does not hold the lease; re-plan with [`KvSource::ranges`].
    #[error("node {node} is not the leaseholder of the span (node {leaseholder} is): re-plan")]
    NotLeaseholder {
        /// The node the export was sent to.
        node: NodeId,
        /// The current leaseholder.
        leaseholder: NodeId,
    },
    /// A failure that retrying will not fix.
    #[error("export failed: {0}")]
    Permanent(String),
}

/// The keyspace and its time-bounded export: what backups read from.
pub trait KvSource: Send + Sync {
    /// Every node of the cluster with its locality and liveness.
    fn nodes(&self) -> Vec<NodeInfo>;

    /// The ranges overlapping `spans`, in key order, each clipped to the span it
    /// overlaps, with its current leaseholder.
    fn ranges(&self, spans: &[Span]) -> Result<Vec<RangeInfo>, HostError>;

    /// Exports one chunk of `request.span` on `node`, which must be the live
    /// leaseholder of every key in the span (else `NotLeaseholder` or
    /// `Transient`).
    fn export(&self, node: NodeId, request: &ExportRequest) -> Result<ExportChunk, ExportError>;
}

/// The schema as of a timestamp.
pub trait Catalog: Send + Sync {
    /// Every descriptor (databases, schemas, tables, views, sequences, types) as
    /// of `as_of`, dropped ones left out.
    fn descriptors(&self, as_of: Timestamp) -> Result<Vec<Descriptor>, HostError>;

    /// One descriptor as of `as_of`, or `None` if it did not exist then.
    fn descriptor(
        &self,
        id: DescriptorId,
        as_of: Timestamp,
    ) -> Result<Option<Descriptor>, HostError>;

    /// Every change to a descriptor with a time in `(after, until]`, ordered
    /// by (time, id): the descriptor as [`Catalog::descriptors`] shows it
    /// right after the change, or `None` for a drop. A backup with revision
    /// history records them, so a restore as of a time inside its window
    /// gets the schema of that time.
    ///
    /// `Ok(None)` (the default) means the host keeps no descriptor history:
    /// its revision-history backups then know the schema only at each
    /// layer's end, and a restore inside a window refuses objects whose
    /// schema changed in it. Fails with [`HostError::GcThreshold`] when the
    /// history at `after` is no longer complete (garbage collected).
    fn descriptor_revisions(
        &self,
        after: Timestamp,
        until: Timestamp,
    ) -> Result<Option<Vec<DescriptorRevision>>, HostError> {
        let _ = (after, until);
        Ok(None)
    }

    /// Reserves `count` fresh descriptor ids (for restored objects); they are
    /// never handed out again.
    fn allocate_descriptor_ids(&self, count: usize) -> Result<Vec<DescriptorId>, HostError>;

    /// The spans of `descriptor` (read from its payload, so it also works for
    /// a backed-up descriptor) that hold secondary-index entries rather than
    /// rows: BACKUP and RESTORE count their keys as `index_entries`. Hosts
    /// without secondary indexes keep the default, none.
    fn index_spans(&self, descriptor: &Descriptor) -> Vec<Span> {
        let _ = descriptor;
        Vec::new()
    }
}

/// Maps a key of a backed-up object to the key of its restored copy.
///
/// The key encoding belongs to the host: it decides where the descriptor id
/// lives in a key. Built by [`Ingest::key_rewriter`] from an [`IdRewrites`] map.
pub trait KeyRewriter: Send + Sync {
    /// The key under the new ids, or `None` if the key belongs to no object in
    /// the map (the restore leaves it out).
    fn rewrite(&self, key: &[u8]) -> Option<Vec<u8>>;

    /// Rewrites `key` in its own buffer (a restore calls this once per
    /// restored row); `false`, leaving it unchanged, if the key belongs to no
    /// object in the map. Default: through [`KeyRewriter::rewrite`].
    fn rewrite_in_place(&self, key: &mut Vec<u8>) -> bool {
        match self.rewrite(key) {
            Some(new) => {
                *key = new;
                true
            }
            None => false,
        }
    }

    /// The span under the new ids, or `None` if its start belongs to no object
    /// in the map. A span must lie within one object's keys.
    fn rewrite_span(&self, span: &Span) -> Option<Span>;
}

/// Old descriptor id -> new descriptor id, for a restore.
pub type IdRewrites = BTreeMap<DescriptorId, DescriptorId>;

/// Bulk writes of restored data and publication of restored schema.
///
/// Restored data is invisible to SQL until its descriptors are published: it
/// lives under fresh descriptor ids no published object owns.
pub trait Ingest: Send + Sync {
    /// A rewriter from the backed-up ids to the restored ids.
    fn key_rewriter(&self, rewrites: &IdRewrites) -> Result<Box<dyn KeyRewriter>, HostError>;

    /// Writes already rekeyed entries in bulk (batched, not a transaction per
    /// row). Each entry is written at exactly its own `ts`: the restore job sets
    /// every entry's `ts` to one write timestamp taken from [`Clock::now`] when it
    /// starts, so restored data is above every GC threshold and later
    /// incremental backups see it. A restore's batches come in MVCC order.
    /// May be called from several threads at once.
    fn ingest(&self, batch: IngestBatch) -> Result<(), HostError>;

    /// Makes every batch ingested so far durable. The restore job calls it
    /// once a work unit's batches are all ingested, before its checkpoint
    /// counts the unit as restored, so a host may make each batch durable
    /// lazily (one sync per unit instead of one per batch). Default: nothing,
    /// for hosts whose [`Ingest::ingest`] is durable when it returns.
    fn sync(&self) -> Result<(), HostError> {
        Ok(())
    }

    /// Publishes the restored descriptors (already carrying their new ids and
    /// names) in one atomic step; the host re-encodes their payloads as needed.
    fn publish(&self, descriptors: &[Descriptor]) -> Result<(), HostError>;

    /// Removes everything ingested into `spans` by a failed or canceled restore
    /// (whose descriptors were never published).
    fn abort(&self, spans: &[Span]) -> Result<(), HostError>;

    /// The ids of the host's own system descriptors (the same in every
    /// cluster of the host): the system database and the system tables a
    /// full-cluster backup carries (users, zone configurations, settings,
    /// schedules). A restore never publishes them nor ingests their keys; a
    /// full-cluster restore reads their rows as of the restore time and
    /// hands them to [`Ingest::publish_cluster`]. Default: none.
    fn system_descriptors(&self) -> BTreeSet<DescriptorId> {
        BTreeSet::new()
    }

    /// Publishes a full-cluster restore in one step: `descriptors` as
    /// [`Ingest::publish`] does (the target's own empty default databases
    /// give way to the restored ones), and the backed-up rows of the system
    /// tables written back under the host's policy, with descriptor ids in
    /// them moved through `ids` (backed-up id -> restored id). Default:
    /// [`Ingest::publish`], refusing system rows it could not write.
    fn publish_cluster(
        &self,
        descriptors: &[Descriptor],
        system: &[SystemRows],
        ids: &IdRewrites,
    ) -> Result<(), HostError> {
        let _ = ids;
        if let Some(t) = system.iter().find(|t| !t.rows.is_empty()) {
            return Err(HostError::Invalid(format!(
                "this host cannot restore the rows of system table {}",
                t.table
            )));
        }
        self.publish(descriptors)
    }
}

/// The rows of one system table in a full-cluster backup, as of the restore
/// time, under their backed-up keys (see [`Ingest::publish_cluster`]).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SystemRows {
    /// The system table's descriptor id.
    pub table: DescriptorId,
    /// `(key, value)` of every row live at the restore time, in key order.
    pub rows: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The id of a protected-timestamp record.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ProtectionId(pub u64);

/// Protected timestamps: keep GC from removing what a job still has to read.
pub trait Protector: Send + Sync {
    /// Keeps every version of `spans` visible at `ts` from being garbage
    /// collected until [`Protector::release`]. Fails if `ts` is already below the
    /// GC threshold of one of the spans.
    fn protect(&self, spans: &[Span], ts: Timestamp) -> Result<ProtectionId, HostError>;

    /// Drops a protection; releasing an unknown id is a `NotFound` error.
    fn release(&self, id: ProtectionId) -> Result<(), HostError>;

    /// The highest GC threshold over the ranges of `span`: reads at or below it
    /// fail. A backup refuses to start below it.
    fn gc_threshold(&self, span: &Span) -> Result<Timestamp, HostError>;
}

/// The host's hybrid-logical clock.
pub trait Clock: Send + Sync {
    /// A timestamp above every one this clock returned before (also across
    /// restarts), close to wall time.
    fn now(&self) -> Timestamp;
}

/// A failure of a host trait call.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum HostError {
    /// Temporary (node down, lock contention, overload): retrying may succeed.
    #[error("temporarily unavailable: {0}; retry")]
    Transient(String),
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is malformed or not allowed.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A read or protection below the GC threshold.
    #[error(
        "timestamp {requested} must be after the replica GC threshold {threshold}: \
         use a later timestamp"
    )]
    GcThreshold {
        /// The timestamp asked for.
        requested: Timestamp,
        /// The GC threshold in force.
        threshold: Timestamp,
    },
    /// The host's storage failed.
    #[error("storage failure: {0}")]
    Storage(String),
}

impl HostError {
    /// Whether retrying the call may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, HostError::Transient(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locality_round_trip_and_match() {
        let l: Locality = "region=us-east1,zone=a".parse().unwrap();
        assert_eq!(l.to_string(), "region=us-east1,zone=a");
        assert!(l.matches("region", "us-east1"));
        assert!(!l.matches("region", "us-west1"));
        assert!(!l.matches("rack", "1"));
        assert_eq!(l.get("zone"), Some("a"));
        assert!("".parse::<Locality>().unwrap().is_empty());
    }

    #[test]
    fn bad_locality_is_an_error() {
        for s in ["region", "region=", "=a", "region=a,,zone=b"] {
            let err = s.parse::<Locality>().unwrap_err();
            assert!(err.to_string().contains("locality"), "{s}: {err}");
        }
    }

    #[test]
    fn job_status_names_round_trip() {
        for s in [
            JobStatus::Running,
            JobStatus::Paused,
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Canceled,
            JobStatus::PauseRequested,
            JobStatus::CancelRequested,
        ] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        assert!(JobStatus::Canceled.is_terminal());
        assert!(!JobStatus::PauseRequested.is_terminal());
    }

    #[test]
    fn traits_are_object_safe() {
        fn takes(_: Option<std::sync::Arc<dyn KvSource>>, _: Option<Box<dyn JobStore>>) {}
        takes(None, None);
        let e = ExportError::GcThreshold {
            requested: Timestamp::from_wall(1),
            threshold: Timestamp::from_wall(2),
        };
        assert!(e.to_string().contains("GC threshold"));
    }
}
