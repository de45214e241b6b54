//! The inputs and outputs of a restore, and its tunables.
//!
//! The SQL layer resolves names (`RESTORE DATABASE bank ... WITH new_db_name`,
//! `into_db`) into descriptor ids of the backup (read with
//! [`super::read_backup`]) and new ids, parents and names; the job works on
//! descriptors only.

use std::collections::BTreeMap;

use backup_format::{DescriptorId, Span, Timestamp};
use backup_storage::redact_uri;

use crate::jobs::redact_description;

/// Which backup of the collection to restore from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BackupChoice {
    /// `FROM LATEST IN 'uri'`: the newest full backup and its incrementals.
    Latest,
    /// `FROM 'subdir' IN 'uri'`: that full backup and its incrementals.
    Subdir(String),
}

/// Where the backup chain lives.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RestoreSource {
    /// The collection URI (the default locality).
    pub collection: String,
    /// Extra URIs with `COCKROACH_LOCALITY=key=value`, for files a
    /// locality-aware backup wrote there.
    pub locality_uris: Vec<String>,
    /// Where the incremental layers are, when not in the collection.
    pub incremental_location: Option<String>,
    /// Which full backup.
    pub backup: BackupChoice,
}

impl RestoreSource {
    /// Every URI, redacted, for descriptions and errors.
    pub fn redacted(&self) -> String {
        let mut s = format!("'{}'", redact_uri(&self.collection));
        for u in &self.locality_uris {
            s.push_str(&format!(", '{}'", redact_uri(u)));
        }
        if let Some(inc) = &self.incremental_location {
            s.push_str(&format!(" incremental_location = '{}'", redact_uri(inc)));
        }
        s
    }
}

/// What to restore, as descriptor ids of the backup.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RestoreTargets {
    /// Tables, views and sequences (`RESTORE TABLE a.t, a.v`).
    Tables(Vec<DescriptorId>),
    /// Databases with everything in them (`RESTORE DATABASE a, b`).
    Databases(Vec<DescriptorId>),
    /// Every descriptor of a full-cluster backup (`RESTORE FROM ...`); only
    /// into a cluster without user objects.
    Cluster,
}

/// Where one restored descriptor goes: its new id, and optionally new
/// parents and name (`new_db_name`, `into_db`).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct DescriptorRewrite {
    /// The restored object's id (fresh: no object of the cluster owns it).
    pub new_id: DescriptorId,
    /// A new parent database, when not the restored copy of the old one
    /// (`into_db`); `None` keeps the old parent, or its restored copy.
    pub parent_id: Option<DescriptorId>,
    /// A new parent schema, like `parent_id`.
    pub parent_schema_id: Option<DescriptorId>,
    /// A new name (`new_db_name` for a database); `None` keeps the name.
    pub name: Option<String>,
}

/// `WITH` options of a restore.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct RestoreOptions {
    /// Drop foreign keys to tables not restored.
    pub skip_missing_foreign_keys: bool,
    /// Drop column defaults using sequences not restored.
    pub skip_missing_sequences: bool,
    /// Leave out views whose sources are not restored.
    pub skip_missing_views: bool,
    /// The backup's `encryption_passphrase` (never displayed).
    pub encryption_passphrase: Option<String>,
    /// Return the job id at once.
    pub detached: bool,
}

/// A restore, with its targets already resolved into descriptor ids.
#[derive(Clone, PartialEq, Debug)]
pub struct RestoreSpec {
    /// The statement as typed, for `SHOW JOBS` (URIs and passphrase are
    /// redacted before it is stored).
    pub description: String,
    /// Who runs it.
    pub user: String,
    /// The chain to restore from.
    pub source: RestoreSource,
    /// `AS OF SYSTEM TIME`; `None` restores the chain's end time.
    pub as_of: Option<Timestamp>,
    /// What to restore.
    pub targets: RestoreTargets,
    /// Old id -> where it goes, for every restored descriptor.
    pub rewrites: BTreeMap<DescriptorId, DescriptorRewrite>,
    /// Spans (in the backup's keys) of secondary indexes: keys there count
    /// as index entries in the result, all others as rows.
    pub index_spans: Vec<Span>,
    /// `WITH` options.
    pub options: RestoreOptions,
}

impl RestoreSpec {
    /// The description with every URI and the passphrase redacted.
    pub fn redacted_description(&self) -> String {
        let s = &self.source;
        let uris = std::iter::once(&s.collection)
            .chain(&s.locality_uris)
            .chain(&s.incremental_location);
        redact_description(
            &self.description,
            uris,
            self.options.encryption_passphrase.as_deref(),
        )
    }
}

/// What a finished (or detached) restore reports.
pub type RestoreResult = crate::job::JobResult;

/// How a restore runs. Memory is bounded by these, not by data size: about
/// `workers × (max_files_per_unit × read_bytes_per_file + ingest_batch_bytes × 2)`,
/// plus, in a full-cluster restore, the host's system rows (users, zone
/// configurations, settings, schedules: small), held until publication.
#[derive(Clone, PartialEq, Debug)]
pub struct RestoreSettings {
    /// Work units processed (read, merged, ingested) at once
    /// (CockroachDB: min(4, cores - 1) per node).
    pub workers: usize,
    /// Raw bytes of data files one work unit covers at most (384 MiB).
    pub unit_target_bytes: u64,
    /// Data files one work unit reads at most (200).
    pub max_files_per_unit: usize,
    /// Bytes one ranged read fetches at most per file (adjacent needed blocks
    /// are read together up to this).
    pub read_bytes_per_file: u64,
    /// Raw bytes of one ingest batch.
    pub ingest_batch_bytes: usize,
}

impl Default for RestoreSettings {
    fn default() -> RestoreSettings {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        RestoreSettings {
            workers: cores.saturating_sub(1).clamp(2, 4),
            unit_target_bytes: 384 << 20,
            max_files_per_unit: 200,
            read_bytes_per_file: 1 << 20,
            ingest_batch_bytes: 4 << 20,
        }
    }
}

impl RestoreSettings {
    /// Small units and batches, so tests exercise many of each.
    pub fn for_tests() -> RestoreSettings {
        RestoreSettings {
            workers: 3,
            unit_target_bytes: 96 << 10,
            max_files_per_unit: 6,
            read_bytes_per_file: 32 << 10,
            ingest_batch_bytes: 16 << 10,
        }
    }
}
