//! `embedded-cluster`: the default host of the backup system — an N-node
//! cluster in one process over a real embedded storage engine.
//!
//! Part 1 (this crate so far) owns the storage side:
//!
//! - [`Cluster`]: nodes with localities and `nodelocal://<id>/` directories,
//!   opened from a store directory that persists across restarts and is
//!   exclusive to one open cluster ([`ClusterError::StoreInUse`]);
//! - ranges split at table boundaries and by size, each with a leaseholder;
//!   leases move and nodes go down ([`Cluster::transfer_lease`],
//!   [`Cluster::set_node_live`]);
//! - the HLC ([`Hlc`]), MVCC versions and tombstones, transactions with
//!   intents and pushes ([`Txn`]), GC thresholds with per-table TTLs and
//!   protected timestamps ([`Cluster::run_gc`]);
//! - export (full, incremental through a time index, with revisions) and bulk
//!   ingest, and the `backup-exec` traits [`backup_exec::KvSource`],
//!   [`backup_exec::Protector`], [`backup_exec::Clock`] and
//!   [`backup_exec::Ingest`] over them;
//! - persisted job records ([`backup_exec::JobStore`]), MVCC rows of the
//!   system table `system.jobs` (id 5);
//! - the key layout ([`keys`]) and the table-id [`keys::TableKeyRewriter`].
//!
//! Part 2 adds the schema and SQL side:
//!
//! - [`catalog`]: descriptors (databases, schemas, tables with indexes and
//!   foreign keys, views, sequences, enum types), users and roles, zone
//!   configs and cluster settings, stored as MVCC rows of system tables
//!   (ids 1-6, see [`catalog`]) so the catalog reads as of any time; the
//!   [`backup_exec::Catalog`] impl, id allocation and
//!   [`backup_exec::Ingest::publish`];
//! - [`sql`]: [`Cluster::session`] and [`Session::execute`] over `sqlparser`,
//!   with privileges, constraints, transactions, `AS OF SYSTEM TIME`,
//!   `SHOW EXPERIMENTAL_FINGERPRINTS` ([`fingerprint`]) and the
//!   [`BackupStatementHandler`] hook for backup statements;
//! - [`bank`]: the bank workload (bulk load) and a multi-table sample.
//!
//! - schedules: [`ScheduleRecord`]s in the system table
//!   `system.scheduled_jobs` (id 6), through [`Cluster::create_schedule`],
//!   [`Cluster::update_schedule`], [`Cluster::schedule`],
//!   [`Cluster::schedules`] and [`Cluster::drop_schedule`]; the
//!   [`scheduler`] runs backup schedules while the cluster is up
//!   ([`Cluster::start_scheduler`]).
//!
//! Every system table (ids 1-6: descriptors, users and roles, zone configs,
//! settings, jobs, schedules) is ordinary MVCC data inside
//! [`catalog::system_spans`]: it reads as of any time (for example
//! [`Cluster::jobs_at`], [`Cluster::schedules_at`]) and a full-cluster backup
//! of those spans carries it.
//!
//! ```
//! use embedded_cluster::{Cluster, Value};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let cluster = Cluster::open_default(dir.path()).unwrap();
//! let mut s = cluster.session("root").unwrap();
//! s.execute("CREATE TABLE t (id INT PRIMARY KEY, v STRING)").unwrap();
//! s.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')").unwrap();
//! let r = s.execute("SELECT count(*) FROM t WHERE id > 1").unwrap();
//! assert_eq!(r.scalar(), Some(&Value::Int(1)));
//! let err = s.execute("INSERT INTO t VALUES (1, 'c')").unwrap_err();
//! assert_eq!(err.to_string(), r#"duplicate key value violates unique constraint "t_pkey""#);
//! ```
//!
//! # Backup statements
//!
//! [`Cluster::enable_backup_statements`] ([`backup_statements`]) installs
//! `backup-sql`'s executor: sessions then run `BACKUP`, `RESTORE`,
//! `SHOW BACKUPS`, `SHOW BACKUP`, `SHOW JOBS` and job control, with
//! `nodelocal://<node>/` URIs in each node's directory. The statements block
//! until their job is done; do not run them from inside a tokio runtime.
//! More in `tests/backup_sql.rs`.
//!
//! ```
//! use embedded_cluster::{Cluster, Value, bank};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let cluster = Cluster::open_default(dir.path()).unwrap();
//! cluster.enable_backup_statements().unwrap();
//! bank::sample(&cluster).unwrap();
//! let mut s = cluster.session("root").unwrap();
//! let r = s.execute("BACKUP DATABASE bank INTO 'nodelocal://1/backups'").unwrap();
//! assert_eq!(r.rows[0][1], Value::String("succeeded".into()));
//! s.execute("RESTORE DATABASE bank FROM LATEST IN 'nodelocal://1/backups' \
//!            WITH new_db_name = 'bank2'").unwrap();
//! let fp = |s: &mut embedded_cluster::Session, t: &str| {
//!     s.execute(&format!("SHOW EXPERIMENTAL_FINGERPRINTS FROM TABLE {t}")).unwrap().rows
//! };
//! assert_eq!(fp(&mut s, "bank2.accounts"), fp(&mut s, "bank.accounts"));
//! cluster.disable_backup_statements(); // the handler holds the cluster open
//! ```
//!
//! # Why redb
//!
//! The engine is [redb](https://docs.rs/redb) 4: a pure-Rust, dependency-free,
//! ACID B-tree in one file. It gives what this host needs and nothing it must
//! work around: ordered range scans (MVCC versions, the time index), snapshot
//! read transactions that many export threads run at once while a single
//! writer commits, atomic multi-table write transactions (a commit turns all
//! of a transaction's intents into versions at once), and a whole-file lock.
//! An LSM such as fjall writes faster under heavy random load, but brings a
//! larger dependency tree and background compaction threads to a 2-core
//! build box.
//!
//! One B-tree insert per version was too slow for restore, though, so bulk
//! ingest goes around it (as an LSM's SST ingestion would): a batch is
//! packed into sorted 64 KiB blocks (`blocks`), appended (lz4-compressed
//! where that saves an eighth or more) to append-only segment files
//! (`segments`) outside redb's single writer, and redb keeps
//! one checksummed reference per block, committed lazily and made durable by
//! [`Cluster::sync`]. Readers merge version entries and blocks into one
//! sorted stream, so nothing above that module knows where a version lives.
//! The invariants (disjoint blocks, durable references naming durable bytes,
//! segments deleted only once no snapshot can name them) are written next to
//! the code that keeps them.

//! # Example
//!
//! ```
//! use backup_exec::{ExportRequest, IntentPolicy, KvSource};
//! use backup_format::Timestamp;
//! use embedded_cluster::{Cluster, keys};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let cluster = Cluster::open_default(dir.path()).unwrap();
//! let key = keys::row_key(52, 1, b"alice");
//! let t1 = cluster.put(&key, b"100").unwrap();
//! let t2 = cluster.put(&key, b"90").unwrap();
//! assert_eq!(cluster.get(&key, t1, IntentPolicy::FailFast).unwrap(), Some(b"100".to_vec()));
//!
//! // Export the table at t2 from its leaseholder.
//! let range = &KvSource::ranges(&cluster, &[keys::table_span(52)]).unwrap()[0];
//! let request = ExportRequest {
//!     span: range.span.clone(),
//!     start_ts: Timestamp::ZERO,
//!     end_ts: t2,
//!     all_revisions: false,
//!     intent_policy: IntentPolicy::FailFast,
//!     target_bytes: 0,
//! };
//! let chunk = cluster.export(range.leaseholder, &request).unwrap();
//! assert_eq!(chunk.entries.len(), 1);
//! assert_eq!(chunk.entries[0].value.as_deref(), Some(&b"90"[..]));
//! ```

pub mod backup_statements;
pub mod bank;
mod blocks;
pub mod catalog;
mod cluster;
mod error;
mod export;
pub mod fingerprint;
mod gc;
mod hlc;
mod host;
mod ingest;
mod jobs;
pub mod keys;
mod mvcc;
pub mod password;
mod ranges;
mod records;
pub mod scheduler;
mod schedules;
mod segments;
pub mod sql;

pub use backup_statements::install_backup_statements;
pub use cluster::{Cluster, ClusterConfig};
pub use error::ClusterError;
pub use export::{DEFAULT_CHUNK_BYTES, MAX_CHANGED_KEYS};
pub use gc::{GcStats, Protection};
pub use hlc::Hlc;
pub use mvcc::{KeyValue, Txn};
pub use password::{PasswordHash, ScramVerifier};
pub use ranges::RangeState;
pub use scheduler::{Scheduler, SchedulerHandle};
pub use schedules::{ScheduleId, ScheduleRecord};
pub use sql::{
    BackupContext, BackupStatementHandler, ColumnType, QueryResult, Session, SqlError, Value,
};
