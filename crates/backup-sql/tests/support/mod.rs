//! Shared fixture of the statement tests: the statements run end to end on `backup-exec`'s in-memory fakes: a
//! catalog with two databases, a user-defined schema and a foreign key,
//! data in a fake keyspace, backups in memory storages, restores through
//! `MemoryIngest`.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use backup_exec::restore::testing::{MemoryIngest, table_key, table_of, table_span};
use backup_exec::testing::{MemoryKv, MemoryStorages, StaticCatalog, memory_host};
use backup_exec::{BackupSettings, Catalog, Clock, HostError, RestoreSettings};
use backup_format::{
    Dependency, DependencyKind, Descriptor, DescriptorId, DescriptorKind, Timestamp,
};
use backup_sql::{BackupStatements, Datum, Privilege, ResultSet, SqlContext, SqlError};
use backup_storage::StorageContext;

pub const URI: &str = "nodelocal://1/backups";

/// A catalog of fixed descriptors that hands out fresh ids from 1000.
pub struct Catalog2 {
    pub inner: StaticCatalog,
    pub next: AtomicU64,
}

impl Catalog for Catalog2 {
    fn descriptors(&self, as_of: Timestamp) -> Result<Vec<Descriptor>, HostError> {
        self.inner.descriptors(as_of)
    }
    fn descriptor(
        &self,
        id: DescriptorId,
        as_of: Timestamp,
    ) -> Result<Option<Descriptor>, HostError> {
        self.inner.descriptor(id, as_of)
    }
    fn allocate_descriptor_ids(&self, count: usize) -> Result<Vec<DescriptorId>, HostError> {
        Ok((0..count)
            .map(|_| self.next.fetch_add(1, Ordering::Relaxed))
            .collect())
    }
}

pub fn desc(
    id: DescriptorId,
    kind: DescriptorKind,
    name: &str,
    parent: DescriptorId,
    schema: DescriptorId,
    deps: &[(DescriptorId, DependencyKind)],
) -> Descriptor {
    Descriptor {
        id,
        kind,
        name: name.into(),
        parent_id: parent,
        parent_schema_id: schema,
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

/// bank (50): accounts 51, customers 52, orders 53 (FK to customers),
/// schema x (54) with table y 55; database x (60) with table t 61;
/// empty database restored (70); sequence invoice_seq 56, table invoices 57
/// (uses the sequence and type status 59), view v 58 (on accounts).
pub fn schema() -> Vec<Descriptor> {
    use DescriptorKind::*;
    vec![
        desc(50, Database, "bank", 0, 0, &[]),
        desc(51, Table, "accounts", 50, 0, &[]),
        desc(52, Table, "customers", 50, 0, &[]),
        desc(
            53,
            Table,
            "orders",
            50,
            0,
            &[(52, DependencyKind::ForeignKey)],
        ),
        desc(54, Schema, "x", 50, 0, &[]),
        desc(55, Table, "y", 50, 54, &[]),
        desc(60, Database, "x", 0, 0, &[]),
        desc(61, Table, "t", 60, 0, &[]),
        desc(70, Database, "restored", 0, 0, &[]),
        desc(56, Sequence, "invoice_seq", 50, 0, &[]),
        desc(
            57,
            Table,
            "invoices",
            50,
            0,
            &[(56, DependencyKind::Sequence), (59, DependencyKind::Type)],
        ),
        desc(58, View, "v", 50, 0, &[(51, DependencyKind::ViewSource)]),
        desc(59, Type, "status", 50, 0, &[]),
    ]
}

pub struct Ctx {
    pub user: &'static str,
    pub admin: bool,
    pub denied: Vec<(DescriptorId, Privilege)>,
}

impl SqlContext for Ctx {
    fn user(&self) -> String {
        self.user.into()
    }
    fn current_database(&self) -> String {
        "bank".into()
    }
    fn is_admin(&self) -> bool {
        self.admin
    }
    fn has_privilege(&self, d: &Descriptor, p: Privilege) -> bool {
        !self.denied.contains(&(d.id, p))
    }
}

pub fn root() -> Ctx {
    Ctx {
        user: "root",
        admin: true,
        denied: Vec::new(),
    }
}

pub fn alice(denied: &[(DescriptorId, Privilege)]) -> Ctx {
    Ctx {
        user: "alice",
        admin: false,
        denied: denied.to_vec(),
    }
}

pub struct Fx {
    pub kv: Arc<MemoryKv>,
    pub dir: tempfile::TempDir,
    pub ingest: Arc<MemoryIngest>,
    pub exec: BackupStatements,
}

pub fn fixture() -> Fx {
    let splits: Vec<Vec<u8>> = [51u64, 52, 53, 55, 61]
        .iter()
        .map(|t| table_key(*t, b""))
        .collect();
    let refs: Vec<&[u8]> = splits.iter().map(Vec::as_slice).collect();
    let kv = Arc::new(MemoryKv::new(3, &refs));
    let catalog = Arc::new(Catalog2 {
        inner: StaticCatalog::default(),
        next: AtomicU64::new(1000),
    });
    for d in schema() {
        catalog
            .inner
            .descriptors
            .lock()
            .unwrap()
            .push((Timestamp::ZERO, d));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut storage = StorageContext::default();
    storage.nodelocal_dirs.insert(1, dir.path().to_path_buf());
    let mut host = memory_host(
        kv.clone(),
        Arc::new(StaticCatalog::default()),
        Arc::new(MemoryStorages::default()),
    );
    host.catalog = catalog;
    host.storage = Arc::new(storage);
    let ingest = Arc::new(MemoryIngest::default());
    let exec = BackupStatements::new(
        host,
        ingest.clone(),
        BackupSettings::for_tests(),
        RestoreSettings::for_tests(),
    )
    .unwrap();
    let fx = Fx {
        kv,
        dir,
        ingest,
        exec,
    };
    fx.write(0, 40);
    fx
}

impl Fx {
    pub fn write(&self, round: u32, rows: u32) {
        for t in [51u64, 52, 53, 55, 61] {
            for r in 0..rows {
                let v = format!("v{round}-{r}-{t}");
                self.kv.put(
                    &table_key(t, format!("r{r:04}").as_bytes()),
                    Some(v.as_bytes()),
                );
            }
        }
    }

    /// Moves the clock past the hundredth of a second layer names use.
    pub fn tick(&self) {
        let clock: &dyn Clock = self.kv.as_ref();
        for _ in 0..10_000_001 {
            clock.now();
        }
    }

    pub fn run(&self, ctx: &Ctx, sql: &str) -> Result<ResultSet, SqlError> {
        self.exec.execute_sql(ctx, sql, &[])
    }

    pub fn ok(&self, sql: &str) -> ResultSet {
        if sql.starts_with("BACKUP") {
            self.tick();
        }
        self.run(&root(), sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn data(&self, table: DescriptorId) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let span = table_span(table);
        let read = self.kv.as_ref();
        let mut out = BTreeMap::new();
        let now = Clock::now(read);
        for r in backup_exec::KvSource::ranges(read, &[span]).unwrap() {
            let req = backup_exec::ExportRequest {
                span: r.span.clone(),
                start_ts: Timestamp::ZERO,
                end_ts: now,
                all_revisions: false,
                intent_policy: backup_exec::IntentPolicy::FailFast,
                target_bytes: 0,
            };
            let chunk = backup_exec::KvSource::export(read, r.leaseholder, &req).unwrap();
            for e in chunk.entries {
                out.insert(e.key[9..].to_vec(), e.value.unwrap());
            }
        }
        out
    }

    /// What the restore ingested into `table`, keyed by row suffix.
    pub fn restored(&self, table: DescriptorId) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.ingest
            .visible()
            .into_iter()
            .filter(|(k, _)| table_of(k) == Some(table))
            .map(|(k, v)| (k[9..].to_vec(), v))
            .collect()
    }
}

pub fn int(d: &Datum) -> i64 {
    match d {
        Datum::Int(i) => *i,
        other => panic!("not an int: {other:?}"),
    }
}

pub fn string(d: &Datum) -> &str {
    match d {
        Datum::String(s) => s,
        other => panic!("not a string: {other:?}"),
    }
}

pub fn col<'a>(rs: &'a ResultSet, row: usize, name: &str) -> &'a Datum {
    let i = rs.columns.iter().position(|c| c.name == name).unwrap();
    &rs.rows[row][i]
}

pub const BACKUP_COLUMNS: [&str; 6] = [
    "job_id",
    "status",
    "fraction_completed",
    "rows",
    "index_entries",
    "bytes",
];
