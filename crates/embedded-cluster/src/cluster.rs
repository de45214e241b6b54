//! Opening a cluster from its store directory; its nodes.
//!
//! A store directory holds:
//!
//! ```text
//! LOCK          OS lock held while a cluster has the store open
//! data.redb     the engine file: MVCC versions, time index, intents,
//!               transactions, ranges, protections, zone settings,
//!               metadata
//! clock         the HLC ceiling (see `hlc`)
//! nodes/<id>/   each node's `nodelocal://<id>/` directory
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use backup_exec::{Locality, NodeId, NodeInfo};
use backup_format::Timestamp;
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};

use crate::error::{ClusterError, storage};
use crate::hlc::Hlc;
use crate::ranges::RangeState;
use crate::segments::{ReadPin, SEGMENTS, Segments};

/// Engine table of MVCC versions: `version_key` -> tag byte + value.
pub(crate) const VERSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("versions");
/// Engine table of the time index: `time_index_key` -> empty.
pub(crate) const TIME_INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("time_index");
/// Engine table of intents: user key -> txn id, provisional ts, tag, value.
pub(crate) const INTENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("intents");
/// Engine table of transaction records: txn id -> status and timestamp.
pub(crate) const TXNS: TableDefinition<u64, &[u8]> = TableDefinition::new("txns");
/// Engine table of ranges: start key -> range record.
pub(crate) const RANGES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("ranges");
/// Engine table of protected timestamps: id -> record.
pub(crate) const PROTECTIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("protections");
/// Engine table of per-table GC TTLs (`gc.ttlseconds`): table id -> seconds.
pub(crate) const ZONES: TableDefinition<u64, u64> = TableDefinition::new("zones");
/// Engine table of counters and the node list.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// How a new cluster is laid out; on reopen the stored nodes win.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// One locality per node; node ids are 1, 2, ...
    pub nodes: Vec<Locality>,
    /// A range larger than this (approximate bytes of versions) is split.
    pub range_max_bytes: u64,
    /// GC TTL of tables without their own `gc.ttlseconds` (default 25 hours).
    pub default_gc_ttl: Duration,
    /// Bytes of the storage engine's page cache (default 1 GiB).
    pub cache_bytes: usize,
}

impl Default for ClusterConfig {
    /// Three nodes: two zones of `us-east1` and one of `us-west1`; 64 MiB
    /// ranges; 25 h TTL; a 1 GiB engine cache.
    fn default() -> ClusterConfig {
        ClusterConfig {
            nodes: vec![
                Locality::new([("region", "us-east1"), ("zone", "us-east1-a")]),
                Locality::new([("region", "us-east1"), ("zone", "us-east1-b")]),
                Locality::new([("region", "us-west1"), ("zone", "us-west1-a")]),
            ],
            range_max_bytes: 64 << 20,
            default_gc_ttl: Duration::from_secs(25 * 3600),
            cache_bytes: 1 << 30,
        }
    }
}

/// An N-node cluster in one process over one store directory. Cheap to clone;
/// clones share the cluster.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) inner: Arc<Inner>,
}

/// Shared state of a cluster.
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) db: Database,
    pub(crate) clock: Hlc,
    pub(crate) config: ClusterConfig,
    pub(crate) nodes: RwLock<Vec<NodeInfo>>,
    /// Ranges by start key; they tile the keyspace `["", KEY_MAX)` without gaps.
    pub(crate) ranges: RwLock<BTreeMap<Vec<u8>, RangeState>>,
    /// Serialises protections and GC runs.
    pub(crate) gc: std::sync::Mutex<()>,
    /// SQL state shared by sessions (commit lock, backup handler).
    pub(crate) sql: crate::sql::SqlShared,
    /// The files holding bulk-ingested blocks.
    pub(crate) segments: Arc<Segments>,
    /// Held for the life of the cluster: the OS lock that makes the store exclusive.
    _lock: fs::File,
}

impl Drop for Inner {
    /// The engine makes its last lazy commit durable when it closes (after
    /// this): the segment bytes it names go to disk first (S1).
    fn drop(&mut self) {
        let _ = self.segments.sync();
    }
}

impl Cluster {
    /// Opens the cluster stored in `dir`, creating it (with `config`) if new.
    ///
    /// Fails with [`ClusterError::StoreInUse`] while another cluster, in this
    /// process or another, has the store open.
    pub fn open(dir: &Path, config: ClusterConfig) -> Result<Cluster, ClusterError> {
        if config.nodes.is_empty() {
            return Err(ClusterError::Invalid(
                "a cluster needs at least one node".into(),
            ));
        }
        fs::create_dir_all(dir).map_err(|e| storage("creating the store directory")(&e))?;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(|e| storage("opening the store lock file")(&e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(ClusterError::StoreInUse {
                    path: dir.to_path_buf(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(storage("locking the store")(&e)),
        }
        let db = match Database::builder()
            .set_cache_size(config.cache_bytes)
            .create(dir.join("data.redb"))
        {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(ClusterError::StoreInUse {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(storage("opening data.redb")(&e)),
        };
        let clock = Hlc::open(&dir.join("clock"))?;
        let segments = Arc::new(Segments::open(dir, &live_segments(&db)?)?);
        let inner = Inner {
            segments,
            dir: dir.to_path_buf(),
            db,
            clock,
            config,
            nodes: RwLock::new(Vec::new()),
            ranges: RwLock::new(BTreeMap::new()),
            gc: crate::gc::new_gc_lock(),
            sql: crate::sql::SqlShared::default(),
            _lock: lock,
        };
        let cluster = Cluster {
            inner: Arc::new(inner),
        };
        cluster.load()?;
        Ok(cluster)
    }

    /// Opens the store with [`ClusterConfig::default`] (three nodes).
    pub fn open_default(dir: &Path) -> Result<Cluster, ClusterError> {
        Cluster::open(dir, ClusterConfig::default())
    }

    /// Creates the engine tables, then loads (or first writes) nodes and ranges.
    fn load(&self) -> Result<(), ClusterError> {
        let nodes = self.write(|tx| {
            tx.open_table(SEGMENTS)
                .map_err(|e| storage("creating tables")(&e))?;
            for def in [VERSIONS, crate::blocks::BLOCKS, TIME_INDEX, INTENTS, RANGES] {
                tx.open_table(def)
                    .map_err(|e| storage("creating tables")(&e))?;
            }
            tx.open_table(TXNS)
                .map_err(|e| storage("creating tables")(&e))?;
            tx.open_table(PROTECTIONS)
                .map_err(|e| storage("creating tables")(&e))?;
            tx.open_table(ZONES)
                .map_err(|e| storage("creating tables")(&e))?;
            let mut meta = tx
                .open_table(META)
                .map_err(|e| storage("opening meta")(&e))?;
            let stored = meta
                .get("nodes")
                .map_err(|e| storage("reading nodes")(&e))?
                .map(|v| v.value().to_vec());
            match stored {
                Some(bytes) => decode_nodes(bytes.as_slice()),
                None => {
                    let nodes: Vec<NodeInfo> = (1..)
                        .zip(&self.inner.config.nodes)
                        .map(|(id, locality)| NodeInfo {
                            id,
                            locality: locality.clone(),
                            live: true,
                        })
                        .collect();
                    meta.insert("nodes", encode_nodes(&nodes).as_slice())
                        .map_err(|e| storage("writing nodes")(&e))?;
                    Ok(nodes)
                }
            }
        })?;
        for n in &nodes {
            fs::create_dir_all(self.node_dir_path(n.id))
                .map_err(|e| storage("creating a node directory")(&e))?;
        }
        *self.nodes_mut() = nodes;
        self.load_ranges()
    }

    /// Every node, with locality and liveness.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes_read().clone()
    }

    /// The directory behind `nodelocal://<id>/`.
    pub fn node_dir(&self, id: NodeId) -> Result<PathBuf, ClusterError> {
        self.node(id)?;
        Ok(self.node_dir_path(id))
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// A timestamp from the cluster's HLC.
    pub fn now(&self) -> Result<Timestamp, ClusterError> {
        self.inner.clock.now()
    }

    /// Marks a node live or down. A node going down loses its leases to the
    /// live nodes (as if its leases expired); a down node cannot export.
    pub fn set_node_live(&self, id: NodeId, live: bool) -> Result<(), ClusterError> {
        {
            let mut nodes = self.nodes_mut();
            let node = nodes
                .iter_mut()
                .find(|n| n.id == id)
                .ok_or(ClusterError::UnknownNode(id))?;
            node.live = live;
        }
        if !live {
            self.move_leases_off(id)?;
        }
        Ok(())
    }

    /// One node's info.
    pub(crate) fn node(&self, id: NodeId) -> Result<NodeInfo, ClusterError> {
        self.nodes_read()
            .iter()
            .find(|n| n.id == id)
            .cloned()
            .ok_or(ClusterError::UnknownNode(id))
    }

    fn node_dir_path(&self, id: NodeId) -> PathBuf {
        self.inner.dir.join("nodes").join(id.to_string())
    }

    pub(crate) fn nodes_read(&self) -> RwLockReadGuard<'_, Vec<NodeInfo>> {
        self.inner.nodes.read().unwrap_or_else(|p| p.into_inner())
    }

    fn nodes_mut(&self) -> RwLockWriteGuard<'_, Vec<NodeInfo>> {
        self.inner.nodes.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one engine write transaction and commits it.
    ///
    /// The engine has a single writer: never call this (or [`Hlc::now`] inside
    /// it is fine — the clock does not use the engine) while the same thread
    /// holds another write transaction.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, ClusterError>,
    ) -> Result<T, ClusterError> {
        let tx = self
            .inner
            .db
            .begin_write()
            .map_err(|e| storage("starting a write")(&e))?;
        // Every lazy commit before this one has finished (one writer at a
        // time): syncing the segments now puts every byte they name on disk
        // before this commit makes them durable (S1).
        self.inner.segments.sync()?;
        let out = f(&tx)?;
        tx.commit().map_err(|e| storage("committing a write")(&e))?;
        Ok(out)
    }

    /// Like [`Cluster::write`], but the commit is not made durable.
    pub(crate) fn write_lazy<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, ClusterError>,
    ) -> Result<T, ClusterError> {
        let mut tx = self
            .inner
            .db
            .begin_write()
            .map_err(|e| storage("starting a write")(&e))?;
        tx.set_durability(redb::Durability::None)
            .map_err(|e| storage("starting a write")(&e))?;
        let out = f(&tx)?;
        tx.commit().map_err(|e| storage("committing a write")(&e))?;
        Ok(out)
    }

    /// A consistent read snapshot of the engine.
    pub(crate) fn read(&self) -> Result<Snapshot, ClusterError> {
        // Pinned first: the snapshot may name any segment live from here on.
        let pin = self.inner.segments.pin();
        let tx = self
            .inner
            .db
            .begin_read()
            .map_err(|e| storage("starting a read")(&e))?;
        Ok(Snapshot { tx, _pin: pin })
    }

    /// A read of the engine's latest state that pins no segment (for
    /// deciding which segments are unused).
    pub(crate) fn read_unpinned(&self) -> Result<ReadTransaction, ClusterError> {
        self.inner
            .db
            .begin_read()
            .map_err(|e| storage("starting a read")(&e))
    }
}

fn encode_nodes(nodes: &[NodeInfo]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in nodes {
        let loc = n.locality.to_string();
        out.extend_from_slice(&n.id.to_be_bytes());
        out.extend_from_slice(&(loc.len() as u32).to_be_bytes());
        out.extend_from_slice(loc.as_bytes());
    }
    out
}

fn decode_nodes(mut b: &[u8]) -> Result<Vec<NodeInfo>, ClusterError> {
    let bad = || ClusterError::Corrupt("the node list in meta is malformed".into());
    let mut out = Vec::new();
    while !b.is_empty() {
        let id = u32::from_be_bytes(b.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        let len = u32::from_be_bytes(b.get(4..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        let end = 8 + len as usize;
        let loc = std::str::from_utf8(b.get(8..end).ok_or_else(bad)?).map_err(|_| bad())?;
        out.push(NodeInfo {
            id,
            locality: loc.parse().map_err(|_| bad())?,
            live: true,
        });
        b = &b[end..];
    }
    Ok(out)
}

/// A consistent read snapshot of the engine, keeping every segment it may
/// name until it ends.
pub(crate) struct Snapshot {
    tx: ReadTransaction,
    _pin: ReadPin,
}

impl std::ops::Deref for Snapshot {
    type Target = ReadTransaction;
    fn deref(&self) -> &ReadTransaction {
        &self.tx
    }
}

/// The segments holding live blocks, as the engine last recorded them.
fn live_segments(db: &Database) -> Result<BTreeSet<u64>, ClusterError> {
    let tx = db
        .begin_read()
        .map_err(|e| storage("starting a read")(&e))?;
    let table = match tx.open_table(SEGMENTS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(BTreeSet::new()),
        Err(e) => return Err(storage("opening segments")(&e)),
    };
    let mut out = BTreeSet::new();
    for item in table
        .range::<u64>(..)
        .map_err(|e| storage("reading segments")(&e))?
    {
        let (k, _) = item.map_err(|e| storage("reading segments")(&e))?;
        out.insert(k.value());
    }
    Ok(out)
}
