//! The inputs and outputs of a backup, and the host it runs on.

use std::sync::Arc;

use backup_format::{Descriptor, Span, Timestamp};
use backup_storage::{ExternalStorage, StorageContext, StorageError, StorageUri, redact_uri};

use crate::host::{Catalog, Clock, JobStore, KvSource, Protector};
use crate::jobs::redact_description;

/// Where in the collection the new layer goes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum LayerChoice {
    /// `BACKUP INTO 'uri'`: a new full backup in a subdirectory named by its end time.
    NewFull,
    /// `BACKUP INTO LATEST IN 'uri'`: an incremental on the newest full backup
    /// (a full backup when the collection has none).
    Latest,
    /// `BACKUP INTO 'subdir' IN 'uri'`: an incremental on that full backup
    /// (a full backup into `subdir` when it holds none).
    Subdir(String),
}

/// The destination of a backup.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Destination {
    /// The collection URI (the default locality).
    pub collection: String,
    /// Extra URIs, each with `COCKROACH_LOCALITY=key=value`: nodes of that
    /// locality write their data files there.
    pub locality_uris: Vec<String>,
    /// Where incremental layers go instead of the collection.
    pub incremental_location: Option<String>,
    /// Full or incremental, and on which full backup.
    pub layer: LayerChoice,
}

impl Destination {
    /// Every URI, redacted, for descriptions and errors.
    pub fn redacted(&self) -> String {
        let mut uris = vec![redact_uri(&self.collection)];
        uris.extend(self.locality_uris.iter().map(|u| redact_uri(u)));
        let mut s = if uris.len() == 1 {
            format!("'{}'", uris[0])
        } else {
            format!(
                "({})",
                uris.iter()
                    .map(|u| format!("'{u}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if let Some(inc) = &self.incremental_location {
            s.push_str(&format!(" incremental_location = '{}'", redact_uri(inc)));
        }
        s
    }
}

/// A backup, with its targets already resolved (by `backup-sql` or a caller).
#[derive(Clone, PartialEq, Debug)]
pub struct BackupSpec {
    /// The statement as typed, for `SHOW JOBS`; every URI of the destination
    /// in it is replaced by its redacted form before it is stored.
    pub description: String,
    /// Who runs it.
    pub user: String,
    /// Descriptors of every object backed up (databases, schemas, tables, ...).
    pub descriptors: Vec<Descriptor>,
    /// Key spans to back up; spans of tables with `exclude_data_from_backup`
    /// are left out here (their schema stays).
    pub spans: Vec<Span>,
    /// Spans of secondary indexes: distinct keys in them count as index
    /// entries, all others as rows.
    pub index_spans: Vec<Span>,
    /// Whether the whole cluster is backed up.
    pub full_cluster: bool,
    /// The read timestamp (`AS OF SYSTEM TIME`), the layer's end time.
    pub end_time: Timestamp,
    /// Where it goes.
    pub destination: Destination,
    /// Keep every revision in the layer's time window.
    pub revision_history: bool,
    /// `encryption_passphrase`, if any (never displayed).
    pub encryption_passphrase: Option<String>,
    /// `WITH detached`: return the job id at once.
    pub detached: bool,
}

impl BackupSpec {
    /// The description with every destination URI redacted.
    pub fn redacted_description(&self) -> String {
        let d = &self.destination;
        let uris = std::iter::once(&d.collection)
            .chain(&d.locality_uris)
            .chain(&d.incremental_location);
        redact_description(
            &self.description,
            uris,
            self.encryption_passphrase.as_deref(),
        )
    }
}

/// What a finished (or stopped) backup reports.
pub type BackupResult = crate::job::JobResult;

/// Opens the storage a URI names (the host's context, or a test wrapper).
pub trait StorageOpener: Send + Sync {
    /// The storage of `uri`.
    fn open(&self, uri: &StorageUri) -> Result<Arc<dyn ExternalStorage>, StorageError>;
}

impl StorageOpener for StorageContext {
    fn open(&self, uri: &StorageUri) -> Result<Arc<dyn ExternalStorage>, StorageError> {
        backup_storage::open(uri, self)
    }
}

/// Everything of the host a backup job uses.
#[derive(Clone)]
pub struct Host {
    /// Ranges, leaseholders and export.
    pub kv: Arc<dyn KvSource>,
    /// Descriptors as of a time (incremental chain checks).
    pub catalog: Arc<dyn Catalog>,
    /// GC thresholds and protected timestamps.
    pub protector: Arc<dyn Protector>,
    /// The HLC.
    pub clock: Arc<dyn Clock>,
    /// Persisted job records.
    pub jobs: Arc<dyn JobStore>,
    /// Opens destination URIs.
    pub storage: Arc<dyn StorageOpener>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host")
    }
}
