//! Shared fixtures of the restore tests: an in-memory source cluster with a
//! few tables, backups taken with the real backup job, restores through
//! `MemoryIngest`, and the source's own reads at a time.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use backup_exec::restore::testing::{MemoryIngest, table_key, table_of, table_span};
use backup_exec::restore::{BackupChoice, DescriptorRewrite};
use backup_exec::testing::{MemoryKv, MemoryStorages, StaticCatalog, memory_host};
use backup_exec::{
    BackupJobs, BackupSettings, BackupSpec, Destination, ExportRequest, Host, IntentPolicy,
    KvSource, LayerChoice, RestoreJobs, RestoreOptions, RestoreSettings, RestoreSource,
    RestoreSpec, RestoreTargets, StorageOpener,
};
use backup_format::{
    Dependency, DependencyKind, Descriptor, DescriptorId, DescriptorKind, Timestamp,
};
use backup_storage::{ExternalStorage, Listing, ObjectWriter, StorageError, StorageUri};
use bytes::Bytes;

pub const URI: &str = "nodelocal://1/backups";
pub const DB: DescriptorId = 50;
/// Tables of the fixture: 51 (parent of 52's foreign key), 52, 53 (uses sequence 55).
pub const TABLES: [DescriptorId; 3] = [51, 52, 53];
pub const VIEW: DescriptorId = 54;
pub const SEQUENCE: DescriptorId = 55;

pub fn descriptor(
    id: DescriptorId,
    kind: DescriptorKind,
    deps: &[(DescriptorId, DependencyKind)],
) -> Descriptor {
    Descriptor {
        id,
        kind,
        name: format!("{}{id}", kind.as_str()),
        parent_id: if kind == DescriptorKind::Database {
            0
        } else {
            DB
        },
        parent_schema_id: 0,
        spans: match kind {
            DescriptorKind::Table | DescriptorKind::Sequence => vec![table_span(id)],
            _ => Vec::new(),
        },
        dependencies: deps
            .iter()
            .map(|&(id, kind)| Dependency { id, kind })
            .collect(),
        exclude_data_from_backup: false,
        payload: vec![id as u8],
    }
}

/// The fixture's schema: a database, three tables, a view and a sequence.
pub fn schema() -> Vec<Descriptor> {
    use DependencyKind::{ForeignKey, Sequence as Seq, ViewSource};
    use DescriptorKind::{Database, Sequence, Table, View};
    vec![
        descriptor(DB, Database, &[]),
        descriptor(51, Table, &[]),
        descriptor(52, Table, &[(51, ForeignKey)]),
        descriptor(53, Table, &[(SEQUENCE, Seq)]),
        descriptor(VIEW, View, &[(51, ViewSource)]),
        descriptor(SEQUENCE, Sequence, &[]),
    ]
}

/// A source cluster, its backups and a restore target.
pub struct Fixture {
    pub kv: Arc<MemoryKv>,
    pub storages: Arc<MemoryStorages>,
    pub backups: BackupJobs,
    pub host: Host,
    pub schema: Vec<Descriptor>,
    pub catalog: Arc<StaticCatalog>,
}

impl Fixture {
    pub fn new() -> Fixture {
        let splits: Vec<Vec<u8>> = [51u64, 52, 53, 54, 55, 56]
            .iter()
            .map(|t| table_key(*t, b""))
            .collect();
        let split_refs: Vec<&[u8]> = splits.iter().map(Vec::as_slice).collect();
        let kv = Arc::new(MemoryKv::new(3, &split_refs));
        let storages = Arc::new(MemoryStorages::default());
        let catalog = Arc::new(StaticCatalog::default());
        let schema = schema();
        for d in &schema {
            catalog
                .descriptors
                .lock()
                .unwrap()
                .push((Timestamp::ZERO, d.clone()));
        }
        let host = memory_host(kv.clone(), catalog.clone(), storages.clone());
        let backups = BackupJobs::new(host.clone(), BackupSettings::for_tests());
        Fixture {
            kv,
            storages,
            backups,
            host,
            schema,
            catalog,
        }
    }

    /// Changes descriptor `id`'s payload at a fresh time, in the schema the
    /// next backups take and in the catalog's history.
    pub fn change_schema(&mut self, id: DescriptorId, payload: &[u8]) -> Timestamp {
        let clock: &dyn backup_exec::Clock = self.kv.as_ref();
        let at = clock.now();
        let d = self.schema.iter_mut().find(|d| d.id == id).unwrap();
        d.payload = payload.to_vec();
        self.catalog
            .descriptors
            .lock()
            .unwrap()
            .push((at, d.clone()));
        at
    }

    /// Moves the source's clock `nanos` forward.
    pub fn advance(&self, nanos: u64) {
        let clock: &dyn backup_exec::Clock = self.kv.as_ref();
        for _ in 0..nanos {
            clock.now();
        }
    }

    pub fn put(&self, table: DescriptorId, row: u32, value: Option<&[u8]>) -> Timestamp {
        self.kv
            .put(&table_key(table, format!("r{row:05}").as_bytes()), value)
    }

    /// Backs up every table and the sequence at a fresh time.
    pub async fn backup(
        &self,
        layer: LayerChoice,
        revision_history: bool,
        passphrase: Option<&str>,
    ) -> Timestamp {
        // Layer directories are named to the hundredth of a second: move the
        // fake clock (which ticks one nanosecond a call) past the last name.
        self.advance(10_000_001);
        let end = self.kv.put(b"zz-clock-tick", Some(b"x"));
        let spec = BackupSpec {
            description: format!("BACKUP INTO '{URI}'"),
            user: "root".into(),
            descriptors: self.schema.clone(),
            spans: [51u64, 52, 53, SEQUENCE]
                .iter()
                .map(|t| table_span(*t))
                .collect(),
            index_spans: Vec::new(),
            full_cluster: true,
            end_time: end,
            destination: Destination {
                collection: URI.into(),
                locality_uris: Vec::new(),
                incremental_location: None,
                layer,
            },
            revision_history,
            encryption_passphrase: passphrase.map(str::to_string),
            detached: false,
        };
        self.backups.backup(spec).await.unwrap();
        end
    }

    /// The source's own read of `table` at `ts`: an export of the newest
    /// live version of every key.
    pub fn read_at(&self, table: DescriptorId, ts: Timestamp) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut out = BTreeMap::new();
        for r in self.kv.ranges(&[table_span(table)]).unwrap() {
            let mut span = r.span.clone();
            loop {
                let req = ExportRequest {
                    span: span.clone(),
                    start_ts: Timestamp::ZERO,
                    end_ts: ts,
                    all_revisions: false,
                    intent_policy: IntentPolicy::FailFast,
                    target_bytes: 0,
                };
                let chunk = self.kv.export(r.leaseholder, &req).unwrap();
                for e in chunk.entries {
                    out.insert(e.key, e.value.unwrap());
                }
                match chunk.resume_key {
                    Some(k) => span.start = k,
                    None => break,
                }
            }
        }
        out
    }
}

/// A restore of `targets` from LATEST, every object moved to id + 100.
pub fn restore_spec(targets: RestoreTargets, as_of: Option<Timestamp>) -> RestoreSpec {
    let rewrites = schema()
        .iter()
        .map(|d| {
            let r = DescriptorRewrite {
                new_id: d.id + 100,
                ..DescriptorRewrite::default()
            };
            (d.id, r)
        })
        .collect();
    RestoreSpec {
        description: format!("RESTORE FROM LATEST IN '{URI}'"),
        user: "root".into(),
        source: RestoreSource {
            collection: URI.into(),
            locality_uris: Vec::new(),
            incremental_location: None,
            backup: BackupChoice::Latest,
        },
        as_of,
        targets,
        rewrites,
        index_spans: Vec::new(),
        options: RestoreOptions::default(),
    }
}

/// A restore target: a fresh ingest on a host sharing the fixture's storages.
pub fn target(fx: &Fixture, storage: Arc<dyn StorageOpener>) -> (Arc<MemoryIngest>, RestoreJobs) {
    let ingest = Arc::new(MemoryIngest::default());
    let mut host = memory_host(
        Arc::new(MemoryKv::new(1, &[])),
        Arc::new(StaticCatalog::default()),
        fx.storages.clone(),
    );
    host.storage = storage;
    (
        ingest.clone(),
        RestoreJobs::new(host, ingest, RestoreSettings::for_tests()),
    )
}

/// The restored rows of the copy of `table` (at `table + 100`), keyed back to `table`.
pub fn restored(ingest: &MemoryIngest, table: DescriptorId) -> BTreeMap<Vec<u8>, Vec<u8>> {
    ingest
        .visible()
        .into_iter()
        .filter(|(k, _)| table_of(k) == Some(table + 100))
        .map(|(k, v)| (table_key(table, &k[9..]), v))
        .collect()
}

/// Copies every object of `from` into a fresh storage, leaving out or
/// changing some; returns an opener that serves it for [`URI`].
pub async fn copy_collection(
    from: &Arc<dyn ExternalStorage>,
    mut change: impl FnMut(&str, Bytes) -> Option<Bytes>,
) -> Arc<dyn StorageOpener> {
    let to = Arc::new(MemoryStorages::default());
    let dst = to.get(URI);
    for obj in from.list("", false).await.unwrap().objects {
        let bytes = from.get(&obj.path).await.unwrap();
        if let Some(b) = change(&obj.path, bytes) {
            dst.put(&obj.path, b).await.unwrap();
        }
    }
    to
}

/// Counts the bytes read from every storage it opens.
#[derive(Default)]
pub struct CountingOpener {
    pub inner: Arc<MemoryStorages>,
    pub read: Arc<AtomicU64>,
}

impl StorageOpener for CountingOpener {
    fn open(&self, uri: &StorageUri) -> Result<Arc<dyn ExternalStorage>, StorageError> {
        Ok(Arc::new(Counting {
            inner: self.inner.open(uri)?,
            read: self.read.clone(),
        }))
    }
}

#[derive(Debug)]
struct Counting {
    inner: Arc<dyn ExternalStorage>,
    read: Arc<AtomicU64>,
}

#[async_trait]
impl ExternalStorage for Counting {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn put(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        self.inner.put(path, data).await
    }
    async fn writer(&self, path: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        self.inner.writer(path).await
    }
    async fn get(&self, path: &str) -> Result<Bytes, StorageError> {
        let b = self.inner.get(path).await?;
        self.read.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b)
    }
    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let b = self.inner.get_range(path, range).await?;
        self.read.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b)
    }
    async fn size(&self, path: &str) -> Result<Option<u64>, StorageError> {
        self.inner.size(path).await
    }
    async fn list(&self, prefix: &str, delimited: bool) -> Result<Listing, StorageError> {
        self.inner.list(prefix, delimited).await
    }
}
