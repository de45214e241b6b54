//! The end of a backup: side files, then the manifest and its checksum, then
//! `LATEST`. A layer without a manifest is not a backup, so the manifest is
//! the last file of the layer.

use std::sync::Arc;

use backup_format::manifest::{
    Manifest, ManifestEncryption, SideFileRef, SideFileWriter, SideRecord, Statistics,
};
use backup_format::paths::{
    BACKUP_MANIFEST, BACKUP_MANIFEST_CHECKSUM, DESCRIPTORS_SIDE_FILE, FILES_SIDE_FILE,
    inverted_hex, latest_file_name,
};
use backup_format::{EncryptionKey, KDF_PBKDF2_SHA256, Timestamp};
use backup_storage::ExternalStorage;
use bytes::Bytes;

use super::checkpoint::Checkpoint;
use super::plan::Layer;
use super::spec::BackupSpec;
use crate::error::ExecError;

/// Writes a side file create-only. If a crashed attempt left a file of that
/// name, it is written under a fresh name; the manifest records which.
async fn put_side_file<T: SideRecord>(
    storage: &Arc<dyn ExternalStorage>,
    dir: &str,
    name: &str,
    records: impl IntoIterator<Item = T>,
    key: Option<&EncryptionKey>,
    now: Timestamp,
) -> Result<SideFileRef, ExecError> {
    let mut w = SideFileWriter::<Vec<u8>, T>::new(name, Vec::new(), key)?;
    for r in records {
        w.push(r)?;
    }
    let (bytes, mut reference) = w.finish()?;
    let bytes = Bytes::from(bytes);
    for candidate in [name.to_string(), format!("{name}-{}", inverted_hex(now))] {
        match storage
            .put(&format!("{dir}/{candidate}"), bytes.clone())
            .await
        {
            Ok(()) => {
                reference.name = candidate;
                return Ok(reference);
            }
            Err(e) if e.is_already_exists() && candidate == name => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ExecError::Internal(format!("no free name for {name}")))
}

/// Writes the layer's manifest (after its side files) and, for a full
/// backup, the `LATEST` pointer. Returns the statistics recorded.
pub(crate) async fn write_manifest(
    storage: &Arc<dyn ExternalStorage>,
    collection: &Arc<dyn ExternalStorage>,
    spec: &BackupSpec,
    layer: &Layer,
    checkpoint: &Checkpoint,
    key: Option<&EncryptionKey>,
    now: Timestamp,
) -> Result<Statistics, ExecError> {
    let mut files = checkpoint.files.clone();
    files.sort_by(|a, b| (&a.span.start, &a.path).cmp(&(&b.span.start, &b.path)));
    let files_ref = put_side_file(storage, &layer.dir, FILES_SIDE_FILE, files, key, now).await?;
    let mut descriptors = spec.descriptors.clone();
    descriptors.sort_by_key(|d| d.id);
    descriptors.dedup_by_key(|d| d.id);
    let desc_ref = put_side_file(
        storage,
        &layer.dir,
        DESCRIPTORS_SIDE_FILE,
        descriptors,
        key,
        now,
    )
    .await?;
    let statistics = Statistics {
        rows: checkpoint.rows,
        index_entries: checkpoint.index_entries,
        bytes: checkpoint.bytes(),
    };
    let manifest = Manifest {
        version: (0, 0),
        id: format!("{}-{}", layer.dir, inverted_hex(spec.end_time)),
        cluster_id: String::new(),
        start_time: layer.start_time,
        end_time: spec.end_time,
        spans: layer.spans.clone(),
        introduced_spans: layer.introduced.clone(),
        revision_history: spec.revision_history,
        full_cluster: spec.full_cluster,
        encryption: key.map(|k| ManifestEncryption {
            kdf: KDF_PBKDF2_SHA256.to_string(),
            key_check: k.key_check(),
        }),
        statistics,
        files: files_ref,
        descriptors: desc_ref,
    };
    let encoded = manifest.encode(key)?;
    storage
        .put(
            &format!("{}/{BACKUP_MANIFEST_CHECKSUM}", layer.dir),
            Bytes::from(encoded.checksum),
        )
        .await?;
    // The manifest is the last file of the layer: with it, the layer is a backup.
    storage
        .put(
            &format!("{}/{BACKUP_MANIFEST}", layer.dir),
            Bytes::from(encoded.manifest),
        )
        .await?;
    write_latest(collection, layer, now).await?;
    Ok(statistics)
}

/// Points `LATEST` at a new full backup (create-only, a fresh name each time).
pub(crate) async fn write_latest(
    collection: &Arc<dyn ExternalStorage>,
    layer: &Layer,
    now: Timestamp,
) -> Result<(), ExecError> {
    if layer.incremental() {
        return Ok(());
    }
    match collection
        .put(
            &latest_file_name(now),
            Bytes::from(layer.full_subdir.clone()),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.is_already_exists() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
