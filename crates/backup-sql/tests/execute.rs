//! The statements run end to end on `backup-exec`'s in-memory fakes: a
//! catalog with two databases, a user-defined schema and a foreign key,
//! data in a fake keyspace, backups in memory storages, restores through
//! `MemoryIngest`.
#![allow(clippy::unwrap_used)]

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

const URI: &str = "nodelocal://1/backups";

/// A catalog of fixed descriptors that hands out fresh ids from 1000.
struct Catalog2 {
    inner: StaticCatalog,
    next: AtomicU64,
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

fn desc(
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
fn schema() -> Vec<Descriptor> {
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

struct Ctx {
    user: &'static str,
    admin: bool,
    denied: Vec<(DescriptorId, Privilege)>,
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

fn root() -> Ctx {
    Ctx {
        user: "root",
        admin: true,
        denied: Vec::new(),
    }
}

fn alice(denied: &[(DescriptorId, Privilege)]) -> Ctx {
    Ctx {
        user: "alice",
        admin: false,
        denied: denied.to_vec(),
    }
}

struct Fx {
    kv: Arc<MemoryKv>,
    dir: tempfile::TempDir,
    ingest: Arc<MemoryIngest>,
    exec: BackupStatements,
}

fn fixture() -> Fx {
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
    fn write(&self, round: u32, rows: u32) {
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
    fn tick(&self) {
        let clock: &dyn Clock = self.kv.as_ref();
        for _ in 0..10_000_001 {
            clock.now();
        }
    }

    fn run(&self, ctx: &Ctx, sql: &str) -> Result<ResultSet, SqlError> {
        self.exec.execute_sql(ctx, sql, &[])
    }

    fn ok(&self, sql: &str) -> ResultSet {
        if sql.starts_with("BACKUP") {
            self.tick();
        }
        self.run(&root(), sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn data(&self, table: DescriptorId) -> BTreeMap<Vec<u8>, Vec<u8>> {
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
    fn restored(&self, table: DescriptorId) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.ingest
            .visible()
            .into_iter()
            .filter(|(k, _)| table_of(k) == Some(table))
            .map(|(k, v)| (k[9..].to_vec(), v))
            .collect()
    }
}

fn int(d: &Datum) -> i64 {
    match d {
        Datum::Int(i) => *i,
        other => panic!("not an int: {other:?}"),
    }
}

fn string(d: &Datum) -> &str {
    match d {
        Datum::String(s) => s,
        other => panic!("not a string: {other:?}"),
    }
}

fn col<'a>(rs: &'a ResultSet, row: usize, name: &str) -> &'a Datum {
    let i = rs.columns.iter().position(|c| c.name == name).unwrap();
    &rs.rows[row][i]
}

const BACKUP_COLUMNS: [&str; 6] = [
    "job_id",
    "status",
    "fraction_completed",
    "rows",
    "index_entries",
    "bytes",
];

#[test]
fn backup_full_then_incremental_returns_job_rows_and_show_backups_lists_the_full_backup() {
    let fx = fixture();
    let full = fx.ok(&format!("BACKUP DATABASE bank INTO '{URI}'"));
    assert_eq!(full.column_names(), BACKUP_COLUMNS);
    let types: Vec<_> = full.columns.iter().map(|c| c.type_name.as_str()).collect();
    assert_eq!(types, ["INT8", "STRING", "FLOAT8", "INT8", "INT8", "INT8"]);
    assert_eq!(string(col(&full, 0, "status")), "succeeded");
    assert_eq!(int(col(&full, 0, "rows")), 4 * 40, "bank's four tables");
    fx.write(1, 10);
    let inc = fx.ok(&format!("BACKUP DATABASE bank INTO LATEST IN '{URI}'"));
    assert_eq!(int(col(&inc, 0, "rows")), 4 * 10, "only the changed rows");
    let backups = fx.ok(&format!("SHOW BACKUPS IN '{URI}'"));
    assert_eq!(backups.column_names(), ["path"]);
    assert_eq!(backups.rows.len(), 1, "{backups:?}");
    let path = string(&backups.rows[0][0]).to_string();
    // A second full backup into the subdirectory's collection is listed too.
    fx.ok(&format!("BACKUP TABLE accounts INTO '{URI}'"));
    assert_eq!(fx.ok(&format!("SHOW BACKUPS IN '{URI}'")).rows.len(), 2);
    // An incremental into a named subdirectory.
    let r = fx.ok(&format!("BACKUP DATABASE bank INTO '{path}' IN '{URI}'"));
    assert_eq!(string(col(&r, 0, "status")), "succeeded");
}

#[test]
fn detached_backup_returns_only_the_job_id_and_show_jobs_redacts() {
    let fx = fixture();
    fx.tick();
    let rs = fx
        .run(
            &root(),
            &format!("BACKUP TABLE bank.accounts INTO '{URI}' WITH detached, encryption_passphrase = 'hush'"),
        )
        .unwrap();
    assert_eq!(rs.column_names(), ["job_id"]);
    let id = int(&rs.rows[0][0]);
    // Wait for it through the registry's record.
    for _ in 0..2000 {
        let rec = fx.exec.backup_jobs().job(id as u64).unwrap();
        if rec.status.is_terminal() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let jobs = fx.ok("SHOW JOBS");
    assert_eq!(
        jobs.column_names(),
        [
            "job_id",
            "job_type",
            "description",
            "user_name",
            "status",
            "created",
            "started",
            "finished",
            "fraction_completed",
            "error"
        ]
    );
    let types: Vec<_> = jobs.columns.iter().map(|c| c.type_name.as_str()).collect();
    assert_eq!(types[5], "TIMESTAMPTZ");
    assert_eq!(types[8], "FLOAT8");
    let desc = string(col(&jobs, 0, "description"));
    assert!(!desc.contains("hush"), "{desc}");
    assert!(
        desc.contains("encryption_passphrase = '*****'") || desc.contains("redacted"),
        "{desc}"
    );
    assert_eq!(string(col(&jobs, 0, "job_type")), "BACKUP");
    assert_eq!(string(col(&jobs, 0, "status")), "succeeded");
    assert_eq!(string(col(&jobs, 0, "user_name")), "root");
    let one = fx.ok(&format!("SHOW JOB {id}"));
    assert_eq!(one.rows.len(), 1);
    // Another user does not see root's jobs.
    assert!(fx.run(&alice(&[]), "SHOW JOBS").unwrap().rows.is_empty());
}

#[test]
fn schema_wildcard_resolves_a_schema_of_the_current_database_before_a_database() {
    let fx = fixture();
    let rs = fx.ok(&format!("BACKUP TABLE x.* INTO '{URI}'"));
    // bank.x.y (40 rows), not database x's table t.
    assert_eq!(int(col(&rs, 0, "rows")), 40);
    let show = fx.ok(&format!("SHOW BACKUP FROM LATEST IN '{URI}'"));
    let objects: Vec<_> = show
        .rows
        .iter()
        .map(|r| string(&r[2]).to_string())
        .collect();
    assert!(objects.contains(&"y".to_string()), "{objects:?}");
    assert!(!objects.contains(&"t".to_string()), "{objects:?}");
    // An unqualified name resolves in the current database; x.t in database x.
    let rs = fx.ok(&format!("BACKUP TABLE accounts, x.t INTO '{URI}'"));
    assert_eq!(int(col(&rs, 0, "rows")), 80);
    let err = fx
        .run(&root(), &format!("BACKUP TABLE nosuch INTO '{URI}'"))
        .unwrap_err();
    assert!(
        err.to_string().contains("\"nosuch\" does not exist"),
        "{err}"
    );
}

#[test]
fn restore_database_with_new_db_name_and_table_into_db_use_new_ids_and_equal_data() {
    let fx = fixture();
    fx.ok(&format!("BACKUP DATABASE bank INTO '{URI}'"));
    fx.write(1, 10);
    fx.ok(&format!("BACKUP DATABASE bank INTO LATEST IN '{URI}'"));
    let rs = fx.ok(&format!(
        "RESTORE DATABASE bank FROM LATEST IN '{URI}' WITH new_db_name = 'bank2'"
    ));
    assert_eq!(rs.column_names(), BACKUP_COLUMNS);
    assert_eq!(string(col(&rs, 0, "status")), "succeeded");
    let published = fx.ingest.published();
    let db = published
        .iter()
        .find(|d| d.kind == DescriptorKind::Database)
        .unwrap();
    assert_eq!(db.name, "bank2");
    assert!(db.id >= 1000, "a fresh id: {}", db.id);
    let accounts = published.iter().find(|d| d.name == "accounts").unwrap();
    assert!(accounts.id >= 1000);
    assert_eq!(accounts.parent_id, db.id);
    assert_eq!(fx.restored(accounts.id), fx.data(51));
    assert_eq!(int(col(&rs, 0, "rows")), 4 * 40);
    // Restoring bank again without a new name collides with the live database.
    let err = fx
        .run(
            &root(),
            &format!("RESTORE DATABASE bank FROM LATEST IN '{URI}'"),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("database \"bank\" already exists"),
        "{err}"
    );
    // A table into an existing database.
    fx.ok(&format!(
        "RESTORE TABLE bank.customers FROM LATEST IN '{URI}' WITH into_db = 'restored'"
    ));
    let customers = fx
        .ingest
        .published()
        .into_iter()
        .find(|d| d.name == "customers" && d.parent_id == 70)
        .unwrap();
    assert_eq!(fx.restored(customers.id), fx.data(52));
}

#[test]
fn show_backup_lists_objects_and_files_and_check_files_finds_missing_and_corrupt_files() {
    let fx = fixture();
    fx.ok(&format!("BACKUP DATABASE bank INTO '{URI}'"));
    fx.write(1, 5);
    fx.ok(&format!("BACKUP DATABASE bank INTO LATEST IN '{URI}'"));
    let rs = fx.ok(&format!("SHOW BACKUP FROM LATEST IN '{URI}'"));
    assert_eq!(
        rs.column_names(),
        [
            "database_name",
            "parent_schema_name",
            "object_name",
            "object_type",
            "backup_type",
            "start_time",
            "end_time",
            "size_bytes",
            "rows",
            "is_full_cluster"
        ]
    );
    let accounts: Vec<_> = rs
        .rows
        .iter()
        .filter(|r| r[2] == Datum::String("accounts".into()))
        .collect();
    assert_eq!(accounts.len(), 2, "one row per layer");
    assert_eq!(accounts[0][0], Datum::String("bank".into()));
    assert_eq!(accounts[0][1], Datum::String("public".into()));
    assert_eq!(accounts[0][4], Datum::String("full".into()));
    assert_eq!(accounts[1][4], Datum::String("incremental".into()));
    assert_eq!(int(&accounts[0][8]), 40);
    assert_eq!(int(&accounts[1][8]), 5);
    assert_eq!(accounts[0][9], Datum::Bool(false));
    let files = fx.ok(&format!("SHOW BACKUP FILES FROM LATEST IN '{URI}'"));
    assert_eq!(files.columns[0].name, "path");
    assert!(files.rows.len() >= 2);
    let total: i64 = files.rows.iter().map(|r| int(&r[5])).sum();
    assert_eq!(total, 4 * 40 + 4 * 5);
    // Clean: check_files passes.
    fx.ok(&format!(
        "SHOW BACKUP FROM LATEST IN '{URI}' WITH check_files"
    ));
    // Delete one file, corrupt another.
    let paths: Vec<String> = files
        .rows
        .iter()
        .map(|r| string(&r[0]).to_string())
        .collect();
    let root_dir = fx.dir.path().join("backups");
    std::fs::remove_file(root_dir.join(&paths[0])).unwrap();
    let mut bytes = std::fs::read(root_dir.join(&paths[1])).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(root_dir.join(&paths[1]), bytes).unwrap();
    let err = fx
        .run(
            &root(),
            &format!("SHOW BACKUP FROM LATEST IN '{URI}' WITH check_files"),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("{} (missing)", paths[0])), "{msg}");
    assert!(msg.contains(&format!("{} (corrupt", paths[1])), "{msg}");
}

#[test]
fn each_missing_privilege_is_an_error_naming_the_object_and_privilege() {
    let fx = fixture();
    let cases = [
        (
            alice(&[]),
            "BACKUP INTO 'nodelocal://1/c'",
            "only users with the admin role",
        ),
        (
            alice(&[(51, Privilege::Select)]),
            "BACKUP TABLE accounts INTO 'nodelocal://1/c'",
            "user alice does not have SELECT privilege on relation accounts",
        ),
        (
            alice(&[(50, Privilege::Connect)]),
            "BACKUP DATABASE bank INTO 'nodelocal://1/c'",
            "user alice does not have CONNECT privilege on database bank",
        ),
        (
            alice(&[(54, Privilege::Usage)]),
            "BACKUP TABLE x.y INTO 'nodelocal://1/c'",
            "user alice does not have USAGE privilege on schema x",
        ),
        (
            alice(&[(59, Privilege::Usage)]),
            "BACKUP TABLE invoices, invoice_seq INTO 'nodelocal://1/c'",
            "user alice does not have USAGE privilege on type status",
        ),
    ];
    for (ctx, sql, want) in cases {
        let err = fx.run(&ctx, sql).unwrap_err();
        assert!(matches!(err, SqlError::Privilege(_)), "{sql}: {err:?}");
        assert!(err.to_string().contains(want), "{sql}: {err}");
    }
    // With the privileges, alice backs up the table.
    fx.tick();
    let rs = fx
        .run(&alice(&[]), "BACKUP TABLE accounts INTO 'nodelocal://1/c'")
        .unwrap();
    assert_eq!(int(col(&rs, 0, "rows")), 40);
}

#[test]
fn a_foreign_key_target_missing_from_the_backup_is_an_error_naming_both() {
    let fx = fixture();
    let err = fx
        .run(&root(), &format!("BACKUP TABLE orders INTO '{URI}'"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "table \"bank.public.orders\" references table \"customers\" via foreign key which is not in the backup"
    );
    fx.ok(&format!("BACKUP TABLE orders, customers INTO '{URI}'"));
    let err = fx
        .run(&root(), &format!("BACKUP TABLE invoices INTO '{URI}'"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "table \"bank.public.invoices\" references sequence \"invoice_seq\" via sequence which is not in the backup"
    );
    let err = fx
        .run(&root(), &format!("BACKUP TABLE v INTO '{URI}'"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "view \"bank.public.v\" references relation \"accounts\" as a view source which is not in the backup"
    );
    // The type comes along on its own; the sequence and the view's source
    // named with them make the backups whole.
    fx.ok(&format!("BACKUP TABLE invoices, invoice_seq INTO '{URI}'"));
    let show = fx.ok(&format!("SHOW BACKUP FROM LATEST IN '{URI}'"));
    let types: Vec<_> = show
        .rows
        .iter()
        .map(|r| (r[2].clone(), r[3].clone()))
        .collect();
    assert!(
        types.contains(&(Datum::String("status".into()), Datum::String("type".into()))),
        "{types:?}"
    );
    fx.ok(&format!("BACKUP TABLE v, accounts INTO '{URI}'"));
}

#[test]
fn kms_and_backup_to_are_clear_errors() {
    let fx = fixture();
    let err = fx
        .run(
            &root(),
            &format!("BACKUP DATABASE bank INTO '{URI}' WITH kms = 'aws:///k'"),
        )
        .unwrap_err();
    assert!(err.to_string().contains("option \"kms\""), "{err}");
    let err = fx
        .run(&root(), &format!("BACKUP DATABASE bank TO '{URI}'"))
        .unwrap_err();
    assert!(
        err.to_string().contains("BACKUP ... TO is deprecated"),
        "{err}"
    );
}

#[test]
fn pause_resume_and_cancel_job() {
    let fx = fixture();
    // Enough data that the job is still running when paused.
    fx.write(2, 3000);
    fx.tick();
    let rs = fx.ok(&format!("BACKUP DATABASE bank INTO '{URI}' WITH detached"));
    let id = int(&rs.rows[0][0]);
    let status = |fx: &Fx, id: i64| fx.exec.backup_jobs().job(id as u64).unwrap().status;
    match fx.run(&root(), &format!("PAUSE JOB {id}")) {
        Ok(_) => {
            for _ in 0..2000 {
                if status(&fx, id) == backup_exec::JobStatus::Paused {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert_eq!(status(&fx, id), backup_exec::JobStatus::Paused);
            // Alice cannot control root's job.
            let err = fx
                .run(&alice(&[]), &format!("RESUME JOB {id}"))
                .unwrap_err();
            assert!(matches!(err, SqlError::Privilege(_)), "{err}");
            fx.ok(&format!("RESUME JOB {id}"));
            for _ in 0..4000 {
                if status(&fx, id).is_terminal() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert_eq!(status(&fx, id), backup_exec::JobStatus::Succeeded);
        }
        Err(e) => panic!("the job finished before it could be paused: {e}"),
    }
    // Cancel a paused job.
    fx.tick();
    let rs = fx.ok(&format!("BACKUP DATABASE bank INTO '{URI}' WITH detached"));
    let id = int(&rs.rows[0][0]);
    fx.ok(&format!("CANCEL JOB {id}"));
    for _ in 0..2000 {
        if status(&fx, id).is_terminal() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(
        fx.exec.backup_jobs().job(id as u64).unwrap().status,
        backup_exec::JobStatus::Canceled
    );
    let err = fx.run(&root(), &format!("CANCEL JOB {id}")).unwrap_err();
    assert!(err.to_string().contains("canceled"), "{err}");
}

#[test]
fn errors_name_no_secret_of_the_statement() {
    let fx = fixture();
    for sql in [
        "RESTORE DATABASE bank FROM LATEST IN 'nodelocal://1/nothing?AWS_ACCESS_KEY_ID=keyid&AWS_SECRET_ACCESS_KEY=hush'",
        "SHOW BACKUP FROM LATEST IN 'nodelocal://1/nothing-here' WITH encryption_passphrase = 'hush'",
        "RESTORE DATABASE bank FROM 'no/such' IN 'nodelocal://1/backups' WITH encryption_passphrase = 'hush'",
    ] {
        let err = fx.run(&root(), sql).unwrap_err().to_string();
        assert!(!err.contains("hush"), "{sql}: {err}");
    }
}

#[test]
fn show_backup_of_an_encrypted_backup_reads_its_files_with_the_passphrase() {
    let fx = fixture();
    let uri = "nodelocal://1/secret";
    fx.ok(&format!(
        "BACKUP TABLE accounts INTO '{uri}' WITH encryption_passphrase = 'pw'"
    ));
    let show = format!("SHOW BACKUP FROM LATEST IN '{uri}' WITH encryption_passphrase = 'pw'");
    let rs = fx.ok(&show);
    let accounts = rs
        .rows
        .iter()
        .find(|r| r[2] == Datum::String("accounts".into()))
        .unwrap();
    assert_eq!(int(&accounts[8]), 40);
    fx.ok(&format!("{show}, check_files"));
    let files = fx.ok(&format!(
        "SHOW BACKUP FILES FROM LATEST IN '{uri}' WITH encryption_passphrase = 'pw'"
    ));
    assert_eq!(files.rows.iter().map(|r| int(&r[5])).sum::<i64>(), 40);
    let err = fx
        .run(&root(), &format!("SHOW BACKUP FROM LATEST IN '{uri}'"))
        .unwrap_err();
    assert!(err.to_string().contains("encrypted"), "{err}");
}

#[test]
fn check_files_reads_the_files_of_a_locality_aware_backup_in_their_localities() {
    let fx = fixture();
    let uris = "('nodelocal://1/loc?COCKROACH_LOCALITY=default', \
                'nodelocal://1/loc-r2?COCKROACH_LOCALITY=region%3Dr2')";
    fx.ok(&format!("BACKUP DATABASE bank INTO {uris}"));
    let files = fx.ok(&format!(
        "SHOW BACKUP FILES FROM LATEST IN {uris} WITH check_files"
    ));
    assert_eq!(files.rows.iter().map(|r| int(&r[5])).sum::<i64>(), 4 * 40);
    let rs = fx.ok(&format!("SHOW BACKUP FROM LATEST IN {uris}"));
    let accounts = rs
        .rows
        .iter()
        .find(|r| r[2] == Datum::String("accounts".into()))
        .unwrap();
    assert_eq!(int(&accounts[8]), 40);
    // Without the locality URI, its files cannot be checked.
    let r2 = std::fs::read_dir(fx.dir.path().join("loc-r2"))
        .unwrap()
        .count();
    assert!(r2 > 0, "node 2's files went to its locality");
    let err = fx
        .run(
            &root(),
            "SHOW BACKUP FROM LATEST IN 'nodelocal://1/loc' WITH check_files",
        )
        .unwrap_err();
    assert!(err.to_string().contains("locality region=r2"), "{err}");
}
