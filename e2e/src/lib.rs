//! End-to-end fixtures: `backup-exec` driven on `embedded-cluster`.
//!
//! - [`Fixture`]: a 3-node cluster in a directory (a `nodelocal` directory
//!   per node), two tables split into ranges with leases spread over the
//!   nodes, and the [`Host`] a backup runs on (the cluster for KV, protection
//!   and clock; a [`StaticCatalog`] of the tables; a [`FileJobStore`] that
//!   survives a killed process);
//! - [`read_backup`]: a layer's files read back with `backup-format`'s
//!   readers into sorted [`MvccEntry`]s;
//! - [`reference_entries`]: the same entries straight from the cluster;
//! - [`RecordingKv`]: a [`KvSource`] wrapper recording every export.
//!
//! This crate exists so that `backup-exec` never depends on a concrete host.

mod jobstore;
pub mod measure;
pub mod sql;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, Mutex};

use backup_exec::testing::StaticCatalog;
use backup_exec::{
    BackupSpec, Destination, ExportChunk, ExportError, ExportRequest, Host, HostError, IdRewrites,
    Ingest, IngestBatch, IntentPolicy, KeyRewriter, KvSource, LayerChoice, NodeId, NodeInfo,
    RangeInfo, StorageOpener,
};
use backup_format::datafile::DataFileReader;
use backup_format::manifest::{BackupFile, Manifest, SideFileReader};
use backup_format::paths::{BACKUP_MANIFEST, BACKUP_MANIFEST_CHECKSUM, ENCRYPTION_INFO};
use backup_format::{
    Descriptor, DescriptorId, DescriptorKind, EncryptionInfo, EncryptionKey, MvccEntry, Span,
    Timestamp,
};
use backup_storage::{ExternalStorage, StorageContext};
use embedded_cluster::{Cluster, ClusterConfig, keys};

pub use jobstore::FileJobStore;

/// Any error of the fixtures.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The first test table (index 1 is its primary index, 2 a secondary one).
pub const USERS: DescriptorId = 60;
/// The second test table.
pub const ORDERS: DescriptorId = 61;

/// A cluster with its host.
pub struct Fixture {
    /// The cluster.
    pub cluster: Cluster,
    /// The tables' descriptors.
    pub catalog: Arc<StaticCatalog>,
    /// Opens `nodelocal://<id>/` in each node's directory.
    pub storage: Arc<StorageContext>,
    /// The job records.
    pub jobs: Arc<FileJobStore>,
}

impl Fixture {
    /// Opens (or reopens) the cluster stored under `dir` with `config`.
    pub fn open(dir: &Path, config: ClusterConfig) -> Result<Fixture, Error> {
        let cluster = Cluster::open(&dir.join("store"), config)?;
        let mut ctx = StorageContext::default();
        for n in cluster.nodes() {
            ctx.nodelocal_dirs.insert(n.id, cluster.node_dir(n.id)?);
        }
        let catalog = Arc::new(StaticCatalog::default());
        for (id, name) in [(USERS, "users"), (ORDERS, "orders")] {
            catalog
                .descriptors
                .lock()
                .map_err(|_| "catalog lock poisoned")?
                .push((Timestamp::from_wall(1), table(id, name)));
        }
        Ok(Fixture {
            cluster,
            catalog,
            storage: Arc::new(ctx),
            jobs: Arc::new(FileJobStore::open(&dir.join("jobs"))?),
        })
    }

    /// The host, with `kv` for export (the cluster itself, or a wrapper) and
    /// `storage` for the destinations.
    pub fn host_with(&self, kv: Arc<dyn KvSource>, storage: Arc<dyn StorageOpener>) -> Host {
        Host {
            kv,
            catalog: self.catalog.clone(),
            protector: Arc::new(self.cluster.clone()),
            clock: Arc::new(self.cluster.clone()),
            jobs: self.jobs.clone(),
            storage,
        }
    }

    /// The host on the cluster and its `nodelocal` storage.
    pub fn host(&self) -> Host {
        self.host_with(Arc::new(self.cluster.clone()), self.storage.clone())
    }

    /// Writes `rows` rows of `value_len` bytes into both tables (primary
    /// index 1, and a secondary index 2 entry per row of `USERS`), splits
    /// each table into `ranges_per_table` ranges and spreads their leases
    /// over the nodes. Returns the time of the last write.
    pub fn load(
        &self,
        rows: u32,
        value_len: usize,
        ranges_per_table: u32,
    ) -> Result<Timestamp, Error> {
        let mut last = Timestamp::ZERO;
        for table in [USERS, ORDERS] {
            for chunk in (0..rows).collect::<Vec<_>>().chunks(500) {
                let mut batch = Vec::with_capacity(chunk.len() * 2);
                for &i in chunk {
                    batch.push((row(table, i), Some(value(i, value_len))));
                    if table == USERS {
                        let ix = keys::row_key(table, 2, &(rows - i).to_be_bytes());
                        batch.push((ix, Some(i.to_be_bytes().to_vec())));
                    }
                }
                last = self.cluster.write_batch(&batch)?;
            }
            for r in 1..ranges_per_table {
                self.cluster
                    .split_at(&row(table, rows / ranges_per_table * r))?;
            }
        }
        let nodes = self.cluster.nodes();
        for (i, r) in self.cluster.ranges().iter().enumerate() {
            self.cluster
                .transfer_lease(r.id, nodes[i % nodes.len()].id)?;
        }
        Ok(last)
    }

    /// A backup of both tables at `end` into `uri`.
    pub fn spec(&self, uri: &str, end: Timestamp, layer: LayerChoice) -> BackupSpec {
        BackupSpec {
            description: format!("BACKUP TABLE users, orders INTO '{uri}'"),
            user: "root".into(),
            descriptors: vec![table(USERS, "users"), table(ORDERS, "orders")],
            spans: vec![keys::table_span(USERS), keys::table_span(ORDERS)],
            index_spans: vec![index_span(USERS, 2)],
            full_cluster: false,
            end_time: end,
            destination: Destination {
                collection: uri.to_string(),
                locality_uris: Vec::new(),
                incremental_location: None,
                layer,
            },
            revision_history: false,
            encryption_passphrase: None,
            detached: false,
        }
    }
}

/// The descriptor of test table `id`.
pub fn table(id: DescriptorId, name: &str) -> Descriptor {
    Descriptor {
        id,
        kind: DescriptorKind::Table,
        name: name.to_string(),
        parent_id: 50,
        parent_schema_id: 51,
        spans: vec![keys::table_span(id)],
        dependencies: Vec::new(),
        exclude_data_from_backup: false,
        payload: Vec::new(),
    }
}

/// The span of one index of a table.
pub fn index_span(table: DescriptorId, index: u32) -> Span {
    let start = keys::index_prefix(table, index);
    Span::new(start, keys::index_prefix(table, index + 1))
}

/// The primary-index key of row `i` of `table`.
pub fn row(table: DescriptorId, i: u32) -> Vec<u8> {
    keys::row_key(table, 1, &i.to_be_bytes())
}

/// A value of row `i`: compressible, but not constant.
pub fn value(i: u32, len: usize) -> Vec<u8> {
    let text = format!("row {i:08} name-{} city-{} ", i % 97, i % 13);
    text.bytes().cycle().take(len).collect()
}

/// A layer read back: its manifest, its file list and its entries, sorted.
pub struct LayerContents {
    /// The manifest.
    pub manifest: Manifest,
    /// The file list.
    pub files: Vec<BackupFile>,
    /// Every entry of every data file, in MVCC order.
    pub entries: Vec<MvccEntry>,
}

/// The key of an encrypted backup whose full backup is in `full_dir`.
pub async fn backup_key(
    collection: &Arc<dyn ExternalStorage>,
    full_dir: &str,
    passphrase: &str,
) -> Result<EncryptionKey, Error> {
    let path = format!("{full_dir}/{ENCRYPTION_INFO}");
    let info = EncryptionInfo::decode(&path, &collection.get(&path).await?)?;
    Ok(info.derive_key(&path, passphrase.as_bytes())?)
}

/// Reads layer `dir`: the manifest and file list from `default`, each data
/// file from the storage of its locality (`by_locality`, else `default`).
pub async fn read_backup(
    default: &Arc<dyn ExternalStorage>,
    by_locality: &BTreeMap<String, Arc<dyn ExternalStorage>>,
    dir: &str,
    key: Option<&EncryptionKey>,
) -> Result<LayerContents, Error> {
    let mpath = format!("{dir}/{BACKUP_MANIFEST}");
    let manifest = Manifest::decode(
        &mpath,
        &default.get(&mpath).await?,
        &default
            .get(&format!("{dir}/{BACKUP_MANIFEST_CHECKSUM}"))
            .await?,
        key,
    )?;
    let side = format!("{dir}/{}", manifest.files.name);
    let raw = default.get(&side).await?;
    let files =
        SideFileReader::<_, BackupFile>::open(&side, Cursor::new(raw), &manifest.files, key)?
            .collect::<Result<Vec<_>, _>>()?;
    let mut entries = Vec::new();
    for f in &files {
        let storage = by_locality.get(&f.locality).unwrap_or(default);
        let path = format!("{dir}/{}", f.path);
        let bytes = storage.get(&path).await?;
        let fetch = |r: std::ops::Range<u64>| -> std::io::Result<Vec<u8>> {
            bytes
                .get(r.start as usize..r.end as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| std::io::Error::other("range past the end"))
        };
        let mut reader = DataFileReader::open(&path, bytes.len() as u64, fetch, key)?;
        for e in reader.scan(&Span::new(Vec::new(), backup_format::KEY_MAX.to_vec())) {
            entries.push(e?);
        }
    }
    entries.sort_by(|a, b| a.mvcc_cmp(b));
    Ok(LayerContents {
        manifest,
        files,
        entries,
    })
}

/// What the cluster itself exports for `spans` in `(start, end]` (from each
/// range's leaseholder, through resume keys), in MVCC order.
pub fn reference_entries(
    cluster: &Cluster,
    spans: &[Span],
    start: Timestamp,
    end: Timestamp,
    all_revisions: bool,
) -> Result<Vec<MvccEntry>, Error> {
    let mut out = Vec::new();
    for r in KvSource::ranges(cluster, spans)? {
        let mut req = ExportRequest {
            span: r.span.clone(),
            start_ts: start,
            end_ts: end,
            all_revisions,
            intent_policy: IntentPolicy::FailFast,
            target_bytes: 0,
        };
        loop {
            let chunk = KvSource::export(cluster, r.leaseholder, &req)?;
            out.extend(chunk.entries);
            match chunk.resume_key {
                Some(k) => req.span.start = k,
                None => break,
            }
        }
    }
    out.sort_by(|a, b| a.mvcc_cmp(b));
    Ok(out)
}

/// One export call as [`RecordingKv`] saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportCall {
    /// The node asked.
    pub node: NodeId,
    /// The range's leaseholder at the time of the call.
    pub leaseholder: NodeId,
    /// The keys the call covered: from the request's start to the chunk's
    /// resume key (or the span's end); `None` when the call failed.
    pub covered: Option<Span>,
    /// Whether the node was live when the call started (after the hook ran).
    pub live_at_start: bool,
}

/// Hook run before every export, e.g. to move a lease mid-backup.
pub type BeforeExport = Box<dyn Fn(usize) + Send + Sync>;

/// A [`KvSource`] that records every export call.
pub struct RecordingKv {
    /// The cluster.
    pub cluster: Cluster,
    /// Every call, in order.
    pub calls: Mutex<Vec<ExportCall>>,
    /// Called with the number of calls so far, before each export.
    pub before_export: Option<BeforeExport>,
}

impl RecordingKv {
    /// Records exports of `cluster`.
    pub fn new(cluster: Cluster, before_export: Option<BeforeExport>) -> RecordingKv {
        RecordingKv {
            cluster,
            calls: Mutex::new(Vec::new()),
            before_export,
        }
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<ExportCall> {
        match self.calls.lock() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl KvSource for RecordingKv {
    fn nodes(&self) -> Vec<NodeInfo> {
        KvSource::nodes(&self.cluster)
    }

    fn ranges(&self, spans: &[Span]) -> Result<Vec<RangeInfo>, HostError> {
        KvSource::ranges(&self.cluster, spans)
    }

    fn export(&self, node: NodeId, request: &ExportRequest) -> Result<ExportChunk, ExportError> {
        if let Some(hook) = &self.before_export {
            hook(self.calls().len());
        }
        let leaseholder = self
            .cluster
            .ranges_overlapping(&request.span)
            .first()
            .map_or(0, |r| r.leaseholder);
        let live_at_start = KvSource::nodes(&self.cluster)
            .iter()
            .any(|n| n.id == node && n.live);
        let r = KvSource::export(&self.cluster, node, request);
        let covered = r.as_ref().ok().map(|c| {
            let end = c.resume_key.clone().unwrap_or(request.span.end.clone());
            Span::new(request.span.start.clone(), end)
        });
        let call = ExportCall {
            node,
            leaseholder,
            covered,
            live_at_start,
        };
        match self.calls.lock() {
            Ok(mut c) => c.push(call),
            Err(p) => p.into_inner().push(call),
        }
        r
    }
}

/// The spec of `RESTORE TABLE users, orders FROM LATEST IN '<uri>'` (as of
/// `as_of` when given), restoring them as tables `new` and `new + 1`.
pub fn users_orders_restore(
    uri: &str,
    as_of: Option<Timestamp>,
    new: DescriptorId,
) -> backup_exec::RestoreSpec {
    use backup_exec::restore::{BackupChoice, DescriptorRewrite};
    let rewrites = [(USERS, new), (ORDERS, new + 1)]
        .into_iter()
        .map(|(old, new_id)| {
            let r = DescriptorRewrite {
                new_id,
                ..DescriptorRewrite::default()
            };
            (old, r)
        })
        .collect();
    backup_exec::RestoreSpec {
        description: format!("RESTORE TABLE users, orders FROM LATEST IN '{uri}'"),
        user: "root".into(),
        source: backup_exec::RestoreSource {
            collection: uri.into(),
            locality_uris: Vec::new(),
            incremental_location: None,
            backup: BackupChoice::Latest,
        },
        as_of,
        targets: backup_exec::RestoreTargets::Tables(vec![USERS, ORDERS]),
        rewrites,
        index_spans: vec![index_span(USERS, 2)],
        options: backup_exec::RestoreOptions::default(),
    }
}

/// The spec of `RESTORE TABLE users FROM LATEST IN '<uri>'`, restoring it as
/// table `new` (callers add options such as the passphrase).
pub fn users_restore(uri: &str, new: DescriptorId) -> backup_exec::RestoreSpec {
    let mut spec = users_orders_restore(uri, None, new);
    spec.description = format!("RESTORE TABLE users FROM LATEST IN '{uri}'");
    spec.targets = backup_exec::RestoreTargets::Tables(vec![USERS]);
    spec.rewrites.remove(&ORDERS);
    spec.index_spans.clear();
    spec
}

/// Every live row of `table` at `ts`, keyed under table id `as_id` (to
/// compare a source table with its restored copy).
pub fn rows_as(
    cluster: &Cluster,
    table: DescriptorId,
    ts: Timestamp,
    as_id: DescriptorId,
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    cluster
        .scan(
            &keys::table_span(table),
            ts,
            backup_exec::IntentPolicy::FailFast,
        )
        .unwrap_or_else(|e| panic!("scanning table {table}: {e}"))
        .into_iter()
        .map(|(k, v)| {
            let mut key = keys::table_prefix(as_id);
            key.extend_from_slice(&k[keys::TABLE_PREFIX_LEN..]);
            (key, v)
        })
        .collect()
}

/// The cluster's bulk ingest, sync and cleanup, with publication recorded
/// here instead (the fixture's descriptors carry no catalog payload for the
/// cluster to decode), or failed on purpose.
pub struct RecordingIngest {
    /// The cluster ingested into.
    pub cluster: Cluster,
    /// Every descriptor published so far.
    pub published: Mutex<Vec<Descriptor>>,
    /// Whether publishing fails (an injected failure).
    pub fail_publish: bool,
}

impl RecordingIngest {
    /// An ingest into `cluster` that records what it publishes.
    pub fn new(cluster: Cluster) -> RecordingIngest {
        RecordingIngest {
            cluster,
            published: Mutex::new(Vec::new()),
            fail_publish: false,
        }
    }
}

impl Ingest for RecordingIngest {
    fn key_rewriter(&self, rewrites: &IdRewrites) -> Result<Box<dyn KeyRewriter>, HostError> {
        self.cluster.key_rewriter(rewrites)
    }
    fn ingest(&self, batch: IngestBatch) -> Result<(), HostError> {
        Ingest::ingest(&self.cluster, batch)
    }
    fn sync(&self) -> Result<(), HostError> {
        Ingest::sync(&self.cluster)
    }
    fn publish(&self, descriptors: &[Descriptor]) -> Result<(), HostError> {
        if self.fail_publish {
            return Err(HostError::Storage("injected publish failure".into()));
        }
        self.published
            .lock()
            .map_err(|_| HostError::Storage("the published list's lock is poisoned".into()))?
            .extend_from_slice(descriptors);
        Ok(())
    }
    fn abort(&self, spans: &[Span]) -> Result<(), HostError> {
        self.cluster.abort(spans)
    }
}
