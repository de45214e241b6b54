//! The backup chain a restore reads: the full backup and its incrementals,
//! read from the collection, validated, and cut at the restore time.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use backup_format::manifest::{
    BackupFile, DescriptorRevision, Manifest, SideFileReader, SideRecord, descriptors_at,
};
use backup_format::paths::{
    BACKUP_MANIFEST, BACKUP_MANIFEST_CHECKSUM, ENCRYPTION_INFO, INCREMENTALS_DIR, LATEST_DIR,
};
use backup_format::{Descriptor, DescriptorId, EncryptionInfo, EncryptionKey, Timestamp};
use backup_storage::{ExternalStorage, StorageError, StorageUri};

use super::spec::{BackupChoice, RestoreSource};
use crate::backup::StorageOpener;
use crate::error::ExecError;

/// Descriptors that changed inside one layer's window (see
/// [`BackupChain::schema_changes`]).
#[derive(Clone, Debug)]
pub(crate) struct SchemaChanges {
    /// By id: the descriptor as of the window's start or, if it did not exist
    /// then, its end.
    pub(crate) changed: BTreeMap<DescriptorId, Descriptor>,
    /// The window's start.
    pub(crate) start: Timestamp,
    /// The window's end.
    pub(crate) end: Timestamp,
    /// The layer's directory.
    pub(crate) dir: String,
}

/// One layer of a chain: a full backup or an incremental on it.
#[derive(Clone, Debug)]
pub struct ChainLayer {
    /// Its directory, relative to its storage (`2026/11/24-193000.00` or
    /// `incrementals/...`).
    pub dir: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// Whether its default-locality files are in the incremental location.
    in_incremental_location: bool,
}

/// The storages of a restore's source.
#[derive(Clone, Debug)]
pub(crate) struct SourceStorages {
    pub(crate) collection: Arc<dyn ExternalStorage>,
    pub(crate) incrementals: Arc<dyn ExternalStorage>,
    pub(crate) by_locality: Vec<(String, Arc<dyn ExternalStorage>)>,
}

/// A validated chain: a full backup then incrementals, each starting where
/// the previous one ends, all under one encryption key.
#[derive(Clone, Debug)]
pub struct BackupChain {
    /// The full backup's subdirectory in the collection.
    pub full_subdir: String,
    /// The layers, oldest (the full backup) first.
    pub layers: Vec<ChainLayer>,
    pub(crate) key: Option<EncryptionKey>,
    pub(crate) storages: SourceStorages,
}

/// Reads and validates the chain `source` names; `passphrase` opens an
/// encrypted one.
pub async fn read_backup(
    opener: &dyn StorageOpener,
    source: &RestoreSource,
    passphrase: Option<&str>,
) -> Result<BackupChain, ExecError> {
    let storages = open_storages(opener, source)?;
    let full_subdir = match &source.backup {
        BackupChoice::Latest => latest_full(&storages.collection).await?,
        BackupChoice::Subdir(s) => s.trim_matches('/').to_string(),
    };
    let key = encryption_key(&storages.collection, &full_subdir, passphrase).await?;
    let full = read_manifest(&storages.collection, &full_subdir, key.as_ref()).await?;
    let mut layers = vec![ChainLayer {
        dir: full_subdir.clone(),
        manifest: full,
        in_incremental_location: false,
    }];
    let prefix = format!("{INCREMENTALS_DIR}/{full_subdir}");
    let listing = storages.incrementals.list(&prefix, false).await?;
    for obj in listing.objects {
        // A layer without a manifest is not a backup: only manifests count.
        let Some(dir) = obj.path.strip_suffix(&format!("/{BACKUP_MANIFEST}")) else {
            continue;
        };
        let manifest = read_manifest(&storages.incrementals, dir, key.as_ref()).await?;
        layers.push(ChainLayer {
            dir: dir.to_string(),
            manifest,
            in_incremental_location: true,
        });
    }
    layers.sort_by_key(|l| l.manifest.end_time);
    validate(&full_subdir, &layers, key.as_ref())?;
    Ok(BackupChain {
        full_subdir,
        layers,
        key,
        storages,
    })
}

impl BackupChain {
    /// The end time of the newest layer.
    pub fn end_time(&self) -> Timestamp {
        self.layers
            .last()
            .map_or(Timestamp::ZERO, |l| l.manifest.end_time)
    }

    /// Whether the chain is encrypted.
    pub fn encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// The time a restore reads at and how many layers it needs: `as_of`
    /// must be a layer's end time, or inside a layer with revision history.
    pub fn restore_time(&self, as_of: Option<Timestamp>) -> Result<(Timestamp, usize), ExecError> {
        let end = self.end_time();
        let Some(t) = as_of else {
            return Ok((end, self.layers.len()));
        };
        let err = |reason: String| ExecError::RestoreTime {
            requested: t,
            reason,
        };
        if t > end {
            return Err(err(format!(
                "it is after the end time {end} of the newest backup in {}: \
                 restore at or before {end}",
                self.full_subdir
            )));
        }
        for (i, l) in self.layers.iter().enumerate() {
            let m = &l.manifest;
            if t == m.end_time {
                return Ok((t, i + 1));
            }
            if t > m.start_time && t < m.end_time && m.revision_history {
                if t < m.history_start() {
                    return Err(err(format!(
                        "revision history in the backup {} is available only from {} \
                         (older history was garbage collected before the backup): restore as of \
                         a time from {} to {}; {}",
                        l.dir,
                        m.history_start(),
                        m.history_start(),
                        m.end_time,
                        self.history_hint()
                    )));
                }
                return Ok((t, i + 1));
            }
            if t > m.start_time && t < m.end_time {
                return Err(err(format!(
                    "the backup {} covering ({}, {}] was taken without revision_history, \
                     so only its end time can be restored; {}",
                    l.dir,
                    m.start_time,
                    m.end_time,
                    self.history_hint()
                )));
            }
        }
        Err(err(format!(
            "it is before the chain's first backup; {}",
            self.history_hint()
        )))
    }

    /// Which times the chain can restore, for errors.
    fn history_hint(&self) -> String {
        let mut from = None;
        for l in self.layers.iter().rev() {
            if !l.manifest.revision_history {
                break;
            }
            from = Some(l.manifest.history_start());
        }
        let ends: Vec<String> = self
            .layers
            .iter()
            .map(|l| l.manifest.end_time.to_string())
            .collect();
        match from {
            Some(from) => format!(
                "revision history is available from {from} to {}, and the backups' end times are {}",
                self.end_time(),
                ends.join(", ")
            ),
            None => format!(
                "no revision history is available at the end of the chain; the backups' end times are {}",
                ends.join(", ")
            ),
        }
    }

    /// The descriptors as of `as_of` (the newest layer's end by default):
    /// what a restore at that time can restore. Inside the window of a layer
    /// with descriptor revisions they are the schema of exactly that time;
    /// in an older revision-history layer without them, the layer's end.
    pub async fn descriptors(
        &self,
        as_of: Option<Timestamp>,
    ) -> Result<Vec<Descriptor>, ExecError> {
        let (t, used) = self.restore_time(as_of)?;
        let Some(layer) = used.checked_sub(1).and_then(|i| self.layers.get(i)) else {
            return Ok(Vec::new());
        };
        if let Some(revisions) = layer.manifest.revisions.as_ref()
            && t != layer.manifest.end_time
        {
            let all: Vec<DescriptorRevision> =
                self.side_file(layer, &revisions.name, revisions).await?;
            return Ok(descriptors_at(all, t));
        }
        self.side_file(
            layer,
            &layer.manifest.descriptors.name,
            &layer.manifest.descriptors,
        )
        .await
    }

    /// The descriptors whose schema changed inside the window of the layer
    /// holding `as_of`, when `as_of` falls strictly inside the window of an
    /// incremental layer with revision history but without descriptor
    /// revisions (a backup from before they were recorded, or from a host
    /// without descriptor history; `None` otherwise). Such a layer keeps its
    /// descriptors only as of its end, and the previous layer's as of its
    /// start: for these the schema as of `as_of` is not known. Each comes
    /// with the layer's window and directory, for errors.
    pub(crate) async fn schema_changes(
        &self,
        as_of: Option<Timestamp>,
    ) -> Result<Option<SchemaChanges>, ExecError> {
        let (t, used) = self.restore_time(as_of)?;
        let (Some(layer), Some(previous)) = (
            used.checked_sub(1).and_then(|i| self.layers.get(i)),
            used.checked_sub(2).and_then(|i| self.layers.get(i)),
        ) else {
            return Ok(None);
        };
        if t == layer.manifest.end_time || layer.manifest.revisions.is_some() {
            return Ok(None);
        }
        let before: BTreeMap<DescriptorId, Descriptor> = self
            .layer_descriptors(previous)
            .await?
            .into_iter()
            .map(|d| (d.id, d))
            .collect();
        let after: BTreeMap<DescriptorId, Descriptor> = self
            .layer_descriptors(layer)
            .await?
            .into_iter()
            .map(|d| (d.id, d))
            .collect();
        let mut changed = BTreeMap::new();
        for (id, d) in before.iter().chain(after.iter()) {
            if before.get(id) != after.get(id) {
                changed.entry(*id).or_insert_with(|| d.clone());
            }
        }
        Ok(Some(SchemaChanges {
            changed,
            start: layer.manifest.start_time,
            end: layer.manifest.end_time,
            dir: layer.dir.clone(),
        }))
    }

    async fn layer_descriptors(&self, layer: &ChainLayer) -> Result<Vec<Descriptor>, ExecError> {
        let m = &layer.manifest;
        self.side_file(layer, &m.descriptors.name, &m.descriptors)
            .await
    }

    /// The data files of `layer`.
    pub(crate) async fn files(&self, layer: &ChainLayer) -> Result<Vec<BackupFile>, ExecError> {
        self.side_file(layer, &layer.manifest.files.name, &layer.manifest.files)
            .await
    }

    async fn side_file<T: SideRecord>(
        &self,
        layer: &ChainLayer,
        name: &str,
        expected: &backup_format::manifest::SideFileRef,
    ) -> Result<Vec<T>, ExecError> {
        let storage = self.layer_storage(layer);
        let path = format!("{}/{name}", layer.dir);
        let raw = get(storage, &path).await?;
        let reader =
            SideFileReader::<_, T>::open(&path, Cursor::new(raw), expected, self.key.as_ref())?;
        Ok(reader.collect::<Result<Vec<_>, _>>()?)
    }

    /// The storage of a layer's manifest and default-locality files.
    pub(crate) fn layer_storage(&self, layer: &ChainLayer) -> &Arc<dyn ExternalStorage> {
        if layer.in_incremental_location {
            &self.storages.incrementals
        } else {
            &self.storages.collection
        }
    }

    /// The storage holding `file` of `layer`.
    pub(crate) fn file_storage(
        &self,
        layer: &ChainLayer,
        file: &BackupFile,
    ) -> Result<Arc<dyn ExternalStorage>, ExecError> {
        if file.locality.is_empty() {
            return Ok(self.layer_storage(layer).clone());
        }
        self.storages
            .by_locality
            .iter()
            .find(|(l, _)| *l == file.locality)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| ExecError::BackupFile {
                file: format!("{}/{}", layer.dir, file.path),
                detail: format!(
                    "it was written to the storage of locality {}: give that URI \
                     (with COCKROACH_LOCALITY={}) to the restore",
                    file.locality, file.locality
                ),
            })
    }
}

fn open_storages(
    opener: &dyn StorageOpener,
    source: &RestoreSource,
) -> Result<SourceStorages, ExecError> {
    let open = |uri: &str| -> Result<(StorageUri, Arc<dyn ExternalStorage>), ExecError> {
        let parsed = StorageUri::parse(uri)?;
        let storage = opener.open(&parsed)?;
        Ok((parsed, storage))
    };
    let (_, collection) = open(&source.collection)?;
    let incrementals = match &source.incremental_location {
        Some(inc) => open(inc)?.1,
        None => collection.clone(),
    };
    let mut by_locality = Vec::new();
    for uri in &source.locality_uris {
        let (parsed, storage) = open(uri)?;
        let Some((k, v)) = parsed.locality() else {
            return Err(ExecError::Invalid(format!(
                "locality URI {} needs COCKROACH_LOCALITY=key=value",
                parsed.redacted()
            )));
        };
        by_locality.push((format!("{k}={v}"), storage));
    }
    Ok(SourceStorages {
        collection,
        incrementals,
        by_locality,
    })
}

/// Reads a whole object, naming it in a not-found error.
pub(crate) async fn get(
    storage: &Arc<dyn ExternalStorage>,
    path: &str,
) -> Result<bytes::Bytes, ExecError> {
    storage.get(path).await.map_err(|e| missing(path, e))
}

/// A storage error on `path`, with what to do when the file is missing.
pub(crate) fn missing(path: &str, e: StorageError) -> ExecError {
    if e.is_not_found() {
        ExecError::BackupFile {
            file: path.to_string(),
            detail: "it does not exist: the backup is incomplete or was altered; \
                     restore from another backup"
                .into(),
        }
    } else {
        ExecError::Storage(e)
    }
}

async fn latest_full(collection: &Arc<dyn ExternalStorage>) -> Result<String, ExecError> {
    crate::backup::plan::latest_full(collection)
        .await?
        .ok_or_else(|| {
            ExecError::Invalid(format!(
                "no backup found in {}: {LATEST_DIR} is empty (take a backup first, or name its subdirectory)",
                collection.describe()
            ))
        })
}

async fn encryption_key(
    collection: &Arc<dyn ExternalStorage>,
    full_subdir: &str,
    passphrase: Option<&str>,
) -> Result<Option<EncryptionKey>, ExecError> {
    let path = format!("{full_subdir}/{ENCRYPTION_INFO}");
    let info = match collection.get(&path).await {
        Ok(b) => Some(b),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    match (info, passphrase) {
        (Some(bytes), Some(p)) => {
            let info = EncryptionInfo::decode(&path, &bytes)?;
            Ok(Some(info.derive_key(&path, p.as_bytes())?))
        }
        (Some(_), None) => Err(ExecError::Invalid(format!(
            "the backup {full_subdir} is encrypted: give its encryption_passphrase"
        ))),
        (None, Some(_)) => Err(ExecError::Invalid(format!(
            "the backup {full_subdir} is not encrypted (it has no {ENCRYPTION_INFO}): \
             restore without encryption_passphrase"
        ))),
        (None, None) => Ok(None),
    }
}

async fn read_manifest(
    storage: &Arc<dyn ExternalStorage>,
    dir: &str,
    key: Option<&EncryptionKey>,
) -> Result<Manifest, ExecError> {
    let file = format!("{dir}/{BACKUP_MANIFEST}");
    let bytes = storage.get(&file).await.map_err(|e| {
        if e.is_not_found() {
            ExecError::BackupFile {
                file: file.clone(),
                detail: format!(
                    "there is no finished backup in {dir} (a backup without its manifest \
                     is not a backup): pick another with SHOW BACKUPS"
                ),
            }
        } else {
            ExecError::Storage(e)
        }
    })?;
    let checksum = get(storage, &format!("{dir}/{BACKUP_MANIFEST_CHECKSUM}")).await?;
    Ok(Manifest::decode(&file, &bytes, &checksum, key)?)
}

/// Each layer starts where the previous one ends, the first is a full
/// backup, and every layer has the full backup's key.
fn validate(
    full_subdir: &str,
    layers: &[ChainLayer],
    key: Option<&EncryptionKey>,
) -> Result<(), ExecError> {
    let Some(full) = layers.first() else {
        return Err(ExecError::BrokenChain(format!(
            "{full_subdir} holds no backup"
        )));
    };
    if full.dir != full_subdir || !full.manifest.start_time.is_zero() {
        return Err(ExecError::BrokenChain(format!(
            "the oldest layer {} starts at {}, not at the full backup {full_subdir}",
            full.dir, full.manifest.start_time
        )));
    }
    let check = key.map(EncryptionKey::key_check);
    for pair in layers.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        if next.manifest.start_time != prev.manifest.end_time {
            return Err(ExecError::BrokenChain(format!(
                "layer {} starts at {} but the previous layer {} ends at {}: a backup in \
                 between is missing; restore from a complete chain",
                next.dir, next.manifest.start_time, prev.dir, prev.manifest.end_time
            )));
        }
    }
    for l in layers {
        if l.manifest.encryption.as_ref().map(|e| e.key_check) != check {
            return Err(ExecError::BrokenChain(format!(
                "layer {} is not encrypted with the key of the full backup {full_subdir}: \
                 a chain uses one encryption key",
                l.dir
            )));
        }
    }
    Ok(())
}
