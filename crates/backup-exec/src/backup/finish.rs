//! The end of a backup: side files, the staged manifest, its checksum, then
//! the manifest, then `LATEST`. A layer without a manifest is not a backup,
//! so the manifest is the last file of the layer; every step is idempotent,
//! so a job interrupted anywhere in here finishes when resumed.

use std::sync::Arc;

use backup_format::manifest::{
    Manifest, ManifestEncryption, REVISIONS_SIDE_FILE, SideFileRef, SideFileWriter, SideRecord,
    Statistics, checksum_file,
};
use backup_format::paths::{
    BACKUP_MANIFEST, BACKUP_MANIFEST_CHECKSUM, DESCRIPTORS_SIDE_FILE, FILES_SIDE_FILE,
    inverted_hex, latest_file_name,
};
use backup_format::{EncryptionKey, KDF_PBKDF2_SHA256, SpanSet, Timestamp};
use backup_storage::ExternalStorage;
use bytes::Bytes;

use super::checkpoint::Progress;
use super::history;
use super::plan::Layer;
use super::spec::{BackupSpec, Host};
use crate::error::ExecError;

/// Where the encoded manifest is staged before it is published: a resumed
/// job publishes exactly these bytes (an encrypted manifest's bytes differ
/// each time it is encoded, so re-encoding could not match a checksum file
/// an interrupted run already wrote).
const STAGED_MANIFEST: &str = "progress/BACKUP_MANIFEST-STAGED";

/// Writes `bytes` to `path` create-only. An object already there with
/// exactly these bytes counts as written (a resumed job redoing its last
/// step); one with other bytes is an error naming it.
pub(crate) async fn put_same(
    storage: &Arc<dyn ExternalStorage>,
    path: &str,
    bytes: Bytes,
) -> Result<(), ExecError> {
    match storage.put(path, bytes.clone()).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_already_exists() => {
            if storage.get(path).await? == bytes {
                Ok(())
            } else {
                Err(ExecError::ObjectConflict {
                    path: path.to_string(),
                })
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes a side file create-only. A plaintext side file left by an
/// interrupted run must hold the same bytes; a sealed one never can (fresh
/// nonces), so it is written under a fresh name and the manifest records which.
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
    if key.is_none() {
        put_same(storage, &format!("{dir}/{name}"), bytes).await?;
        return Ok(reference);
    }
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
    Err(ExecError::ObjectConflict {
        path: format!("{dir}/{name}-{}", inverted_hex(now)),
    })
}

/// Finishes the layer: side files, the staged manifest, its checksum, the
/// manifest, and for a full backup the `LATEST` pointer. Every step may be
/// redone by a resumed job (new names are taken at the host's clock now).
/// Returns the statistics recorded.
pub(crate) async fn write_manifest(
    host: &Host,
    storage: &Arc<dyn ExternalStorage>,
    collection: &Arc<dyn ExternalStorage>,
    spec: &BackupSpec,
    layer: &Layer,
    progress: &Progress,
    key: Option<&EncryptionKey>,
) -> Result<Statistics, ExecError> {
    let now = host.clock.now();
    let staged_path = format!("{}/{STAGED_MANIFEST}", layer.dir);
    let staged = match storage.get(&staged_path).await {
        Ok(bytes) => Some(bytes.to_vec()),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let manifest = match staged {
        Some(bytes) => bytes,
        None => {
            let encoded = encode_manifest(host, storage, spec, layer, progress, key, now).await?;
            put_same(storage, &staged_path, Bytes::from(encoded.clone())).await?;
            encoded
        }
    };
    let checksum = checksum_file(&manifest).into_bytes();
    let statistics = Manifest::decode(&staged_path, &manifest, &checksum, key)?.statistics;
    put_same(
        storage,
        &format!("{}/{BACKUP_MANIFEST_CHECKSUM}", layer.dir),
        Bytes::from(checksum),
    )
    .await?;
    // The manifest is the last file of the layer: with it, the layer is a backup.
    put_same(
        storage,
        &format!("{}/{BACKUP_MANIFEST}", layer.dir),
        Bytes::from(manifest),
    )
    .await?;
    write_latest(collection, layer, now).await?;
    Ok(statistics)
}

/// Writes the side files and returns the encoded manifest naming them.
async fn encode_manifest(
    host: &Host,
    storage: &Arc<dyn ExternalStorage>,
    spec: &BackupSpec,
    layer: &Layer,
    progress: &Progress,
    key: Option<&EncryptionKey>,
    now: Timestamp,
) -> Result<Vec<u8>, ExecError> {
    let mut files = progress.files.clone();
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
    let (revisions, revision_start) = write_revisions(host, storage, spec, layer, key, now).await?;
    let index_spans = SpanSet::from_spans(spec.index_spans.iter().cloned());
    let (rows, index_entries) = progress.rows_and_index_entries(&index_spans);
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
        statistics: Statistics {
            rows,
            index_entries,
            bytes: progress.bytes(),
        },
        files: files_ref,
        descriptors: desc_ref,
        revisions,
        revision_start,
    };
    Ok(manifest.encode(key)?.manifest)
}

/// With revision history: the time the layer's history starts, read now
/// that every export is done (a full backup's history starts above the GC
/// thresholds of its spans as they are now, which cover what the exports
/// saw), and the descriptor revisions side file when the host keeps
/// descriptor history.
async fn write_revisions(
    host: &Host,
    storage: &Arc<dyn ExternalStorage>,
    spec: &BackupSpec,
    layer: &Layer,
    key: Option<&EncryptionKey>,
    now: Timestamp,
) -> Result<(Option<SideFileRef>, Timestamp), ExecError> {
    if !spec.revision_history {
        return Ok((None, Timestamp::ZERO));
    }
    let incremental_start = layer.incremental().then_some(layer.start_time);
    let from = history::earliest_start(host, incremental_start, &layer.spans)?;
    let Some(h) = history::read_history(host, spec, from)? else {
        return Ok((None, from));
    };
    let reference = put_side_file(
        storage,
        &layer.dir,
        REVISIONS_SIDE_FILE,
        h.revisions,
        key,
        now,
    )
    .await?;
    Ok((Some(reference), h.start))
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
