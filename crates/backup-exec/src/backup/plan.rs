//! Planning: resolve the layer in the collection, read the chain, choose the
//! spans and their time bounds, and check the GC threshold before any work.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use backup_format::manifest::{Manifest, SideFileReader};
use backup_format::paths::{
    BACKUP_MANIFEST, BACKUP_MANIFEST_CHECKSUM, ENCRYPTION_INFO, INCREMENTALS_DIR, LATEST_DIR,
    full_backup_subdir, incremental_dir, parse_latest_contents,
};
use backup_format::{
    Descriptor, DescriptorKind, EncryptionInfo, EncryptionKey, Span, SpanSet, Timestamp,
};
use backup_storage::{ExternalStorage, StorageUri};
use bytes::Bytes;

use super::codec::{Dec, Enc};
use super::history;
use super::spec::{BackupSpec, Host, LayerChoice};
use crate::error::ExecError;
use crate::host::ProtectionId;
use crate::settings::BackupSettings;

/// The destination's storages: the default one and one per locality.
#[derive(Clone, Debug)]
pub(crate) struct Storages {
    /// The collection (default locality).
    pub(crate) collection: Arc<dyn ExternalStorage>,
    /// Where this layer's default-locality files go (the collection, or
    /// `incremental_location` for an incremental).
    pub(crate) layer_default: Arc<dyn ExternalStorage>,
    /// `(key, value)` of `COCKROACH_LOCALITY` -> storage.
    pub(crate) by_locality: Vec<((String, String), Arc<dyn ExternalStorage>)>,
}

/// The layer being written, fixed at the first run and persisted in the job
/// record, so a resumed job writes to the same place with the same bounds.
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct Layer {
    /// The full backup's subdirectory in the collection.
    pub(crate) full_subdir: String,
    /// This layer's directory (the full subdir, or `incrementals/...`).
    pub(crate) dir: String,
    /// Exclusive lower time bound (ZERO for a full backup).
    pub(crate) start_time: Timestamp,
    /// Every span of the layer (recorded in the manifest).
    pub(crate) spans: Vec<Span>,
    /// Spans new since the previous layer: exported from the beginning of time.
    pub(crate) introduced: Vec<Span>,
    /// The protected timestamp held for the life of the job.
    pub(crate) protection: Option<ProtectionId>,
}

const LAYER_MAGIC: &[u8] = b"BKPLAYR1";

impl Layer {
    pub(crate) fn incremental(&self) -> bool {
        self.dir != self.full_subdir
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Enc(LAYER_MAGIC.to_vec());
        e.str(&self.full_subdir)
            .str(&self.dir)
            .ts(self.start_time)
            .spans(&self.spans)
            .spans(&self.introduced)
            .bool(self.protection.is_some())
            .u64(self.protection.map_or(0, |p| p.0));
        e.0
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Layer, ExecError> {
        let Some(body) = bytes.strip_prefix(LAYER_MAGIC) else {
            return Err(ExecError::Corrupt {
                what: "backup job progress".into(),
                detail: "not a layer record".into(),
            });
        };
        let mut d = Dec::new("backup job progress", body);
        let layer = Layer {
            full_subdir: d.string()?,
            dir: d.string()?,
            start_time: d.ts()?,
            spans: d.spans()?,
            introduced: d.spans()?,
            protection: {
                let has = d.bool()?;
                let id = d.u64()?;
                has.then_some(ProtectionId(id))
            },
        };
        d.finish()?;
        Ok(layer)
    }
}

/// Opens every URI of the destination.
pub(crate) fn open_storages(
    host: &Host,
    spec: &BackupSpec,
    incremental: bool,
) -> Result<Storages, ExecError> {
    let open = |uri: &str| -> Result<(StorageUri, Arc<dyn ExternalStorage>), ExecError> {
        let parsed = StorageUri::parse(uri)?;
        let storage = host.storage.open(&parsed)?;
        Ok((parsed, storage))
    };
    let (_, collection) = open(&spec.destination.collection)?;
    let layer_default = match (&spec.destination.incremental_location, incremental) {
        (Some(inc), true) => open(inc)?.1,
        _ => collection.clone(),
    };
    let mut by_locality = Vec::new();
    for uri in &spec.destination.locality_uris {
        let (parsed, storage) = open(uri)?;
        let Some((k, v)) = parsed.locality() else {
            return Err(ExecError::Invalid(format!(
                "locality URI {} needs COCKROACH_LOCALITY=key=value",
                parsed.redacted()
            )));
        };
        by_locality.push(((k.to_string(), v.to_string()), storage));
    }
    Ok(Storages {
        collection,
        layer_default,
        by_locality,
    })
}

/// A layer of the chain as read back.
pub(crate) struct PreviousLayer {
    pub(crate) manifest: Manifest,
    pub(crate) descriptors: Vec<Descriptor>,
}

/// The newest full backup's subdirectory, from `metadata/latest/` (`None`
/// when the collection has no backup yet). Backup and restore both read
/// `LATEST` through this one function.
pub(crate) async fn latest_full(
    collection: &Arc<dyn ExternalStorage>,
) -> Result<Option<String>, ExecError> {
    let listing = collection.list(LATEST_DIR, false).await?;
    // LATEST names invert their time: the first is the newest.
    let Some(obj) = listing.objects.first() else {
        return Ok(None);
    };
    let bytes = collection.get(&obj.path).await?;
    match parse_latest_contents(&bytes) {
        Some(subdir) => Ok(Some(subdir)),
        None => Err(ExecError::BackupFile {
            file: obj.path.clone(),
            detail: "it does not name a full backup's subdirectory: \
                     name the subdirectory instead of LATEST"
                .into(),
        }),
    }
}

/// Reads one layer's manifest and descriptors from `dir` of `storage`.
pub(crate) async fn read_layer(
    storage: &Arc<dyn ExternalStorage>,
    dir: &str,
    key: Option<&EncryptionKey>,
) -> Result<PreviousLayer, ExecError> {
    let file = format!("{dir}/{BACKUP_MANIFEST}");
    let bytes = storage.get(&file).await?;
    let checksum = storage
        .get(&format!("{dir}/{BACKUP_MANIFEST_CHECKSUM}"))
        .await?;
    let manifest = Manifest::decode(&file, &bytes, &checksum, key)?;
    let side = format!("{dir}/{}", manifest.descriptors.name);
    let raw = storage.get(&side).await?;
    let reader =
        SideFileReader::<_, Descriptor>::open(&side, Cursor::new(raw), &manifest.descriptors, key)?;
    let descriptors = reader.collect::<Result<Vec<_>, _>>()?;
    Ok(PreviousLayer {
        manifest,
        descriptors,
    })
}

/// The encryption key: from the full backup's `ENCRYPTION-INFO`, written
/// there first (create-only) when this is a new encrypted full backup.
pub(crate) async fn encryption_key(
    storages: &Storages,
    full_subdir: &str,
    passphrase: Option<&str>,
    settings: &BackupSettings,
) -> Result<Option<EncryptionKey>, ExecError> {
    let path = format!("{full_subdir}/{ENCRYPTION_INFO}");
    let existing = match storages.collection.get(&path).await {
        Ok(b) => Some(b),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    match (existing, passphrase) {
        (Some(bytes), Some(p)) => {
            let info = EncryptionInfo::decode(&path, &bytes)?;
            Ok(Some(info.derive_key(&path, p.as_bytes())?))
        }
        (Some(_), None) => Err(ExecError::Invalid(format!(
            "the full backup {full_subdir} is encrypted: give its encryption_passphrase"
        ))),
        (None, Some(p)) => {
            let (info, key) =
                EncryptionInfo::generate_with_iterations(p.as_bytes(), settings.kdf_iterations)?;
            storages
                .collection
                .put(&path, Bytes::from(info.encode()?))
                .await?;
            Ok(Some(key))
        }
        (None, None) => Ok(None),
    }
}

/// Whether `dir` holds a finished layer (a manifest).
async fn has_manifest(storage: &Arc<dyn ExternalStorage>, dir: &str) -> Result<bool, ExecError> {
    Ok(storage.exists(&format!("{dir}/{BACKUP_MANIFEST}")).await?)
}

/// Decides full or incremental, where, and from which time; checks the chain.
pub(crate) async fn resolve_layer(
    host: &Host,
    spec: &BackupSpec,
    settings: &BackupSettings,
) -> Result<(Layer, Storages, Option<EncryptionKey>), ExecError> {
    let probe = open_storages(host, spec, false)?;
    let base_full = match &spec.destination.layer {
        LayerChoice::NewFull => None,
        LayerChoice::Latest => latest_full(&probe.collection).await?,
        LayerChoice::Subdir(s) => {
            let s = s.trim_matches('/').to_string();
            if has_manifest(&probe.collection, &s).await? {
                Some(s)
            } else {
                // No full backup there: a full backup is taken into it.
                let storages = probe;
                let key = encryption_key(
                    &storages,
                    &s,
                    spec.encryption_passphrase.as_deref(),
                    settings,
                )
                .await?;
                return Ok((full_layer(host, spec, s)?, storages, key));
            }
        }
    };
    let Some(full_subdir) = base_full else {
        let subdir = full_backup_subdir(spec.end_time);
        if has_manifest(&probe.collection, &subdir).await? {
            return Err(ExecError::Invalid(format!(
                "a backup ending at {} already exists in {subdir}: use another AS OF SYSTEM TIME",
                spec.end_time
            )));
        }
        let key = encryption_key(
            &probe,
            &subdir,
            spec.encryption_passphrase.as_deref(),
            settings,
        )
        .await?;
        return Ok((full_layer(host, spec, subdir)?, probe, key));
    };
    let storages = open_storages(host, spec, true)?;
    let key = encryption_key(
        &storages,
        &full_subdir,
        spec.encryption_passphrase.as_deref(),
        settings,
    )
    .await?;
    let previous = newest_layer(&storages, &full_subdir, key.as_ref()).await?;
    let prev_end = previous.manifest.end_time;
    if spec.end_time <= prev_end {
        return Err(ExecError::Invalid(format!(
            "the backup's end time {} is not after the end time {prev_end} of the last backup in the chain",
            spec.end_time
        )));
    }
    let dir = incremental_dir(&full_subdir, spec.end_time);
    let spans = layer_spans(host, spec, Some(prev_end))?;
    let introduced = check_chain(host, spec, &spans, &previous, prev_end)?;
    Ok((
        Layer {
            full_subdir,
            dir,
            start_time: prev_end,
            spans,
            introduced,
            protection: None,
        },
        storages,
        key,
    ))
}

fn full_layer(host: &Host, spec: &BackupSpec, subdir: String) -> Result<Layer, ExecError> {
    Ok(Layer {
        full_subdir: subdir.clone(),
        dir: subdir,
        start_time: Timestamp::ZERO,
        spans: layer_spans(host, spec, None)?,
        introduced: Vec::new(),
        protection: None,
    })
}

/// The layer's spans: the spec's and, with revision history, the data spans
/// of covered objects that exist only inside the window (created, or
/// dropped, in it), so a restore inside the window finds their data.
/// `incremental_start` is an incremental's start time.
fn layer_spans(
    host: &Host,
    spec: &BackupSpec,
    incremental_start: Option<Timestamp>,
) -> Result<Vec<Span>, ExecError> {
    if !spec.revision_history {
        return Ok(spec.spans.clone());
    }
    let from = history::earliest_start(host, incremental_start, &spec.spans)?;
    let h = history::read_history(host, spec, from)?;
    Ok(history::with_history_spans(&spec.spans, h.as_ref()))
}

/// The chain's newest layer: the full backup or its newest incremental.
async fn newest_layer(
    storages: &Storages,
    full_subdir: &str,
    key: Option<&EncryptionKey>,
) -> Result<PreviousLayer, ExecError> {
    let mut newest = read_layer(&storages.collection, full_subdir, key).await?;
    let prefix = format!("{INCREMENTALS_DIR}/{full_subdir}");
    let listing = storages.layer_default.list(&prefix, false).await?;
    for obj in listing.objects {
        let Some(dir) = obj.path.strip_suffix(&format!("/{BACKUP_MANIFEST}")) else {
            continue;
        };
        let layer = read_layer(&storages.layer_default, dir, key).await?;
        if layer.manifest.end_time > newest.manifest.end_time {
            newest = layer;
        }
    }
    Ok(newest)
}

/// Checks that the chain can be extended and returns the introduced spans.
///
/// A table in this backup that the previous layer holds must have existed
/// continuously since (else it was dropped and recreated); a table the
/// previous layer lacks must be new since it (its spans are then introduced,
/// exported from the beginning of time), else the chain does not cover it.
fn check_chain(
    host: &Host,
    spec: &BackupSpec,
    spans: &[Span],
    previous: &PreviousLayer,
    prev_end: Timestamp,
) -> Result<Vec<Span>, ExecError> {
    let prev_ids: BTreeMap<u64, &Descriptor> =
        previous.descriptors.iter().map(|d| (d.id, d)).collect();
    let prev_spans = SpanSet::from_spans(previous.manifest.spans.iter().cloned());
    let wanted = SpanSet::from_spans(spec.spans.iter().cloned());
    let mut introduced = SpanSet::new();
    for d in &spec.descriptors {
        if d.kind != DescriptorKind::Table || d.exclude_data_from_backup {
            continue;
        }
        let then = host.catalog.descriptor(d.id, prev_end)?;
        if prev_ids.contains_key(&d.id) {
            if then.as_ref().is_none_or(|t| t.spans != d.spans) {
                return Err(ExecError::TableRecreated { table: d.id });
            }
            continue;
        }
        let data: Vec<Span> = d
            .spans
            .iter()
            .flat_map(|s| {
                wanted
                    .intersection(&SpanSet::from_spans([s.clone()]))
                    .spans()
                    .to_vec()
            })
            .collect();
        if data.iter().all(|s| prev_spans.covers(s)) {
            continue;
        }
        if then.is_some() {
            return Err(ExecError::NeedsFullBackup {
                reason: format!(
                    "table {} ({}) existed at {prev_end} but the last backup in the chain does not contain it",
                    d.id, d.name
                ),
            });
        }
        for s in data {
            introduced.insert(s);
        }
    }
    // Spans not owned by any table descriptor but new to the chain are
    // introduced too (also those of tables created inside the window).
    for s in spans {
        for gap in prev_spans.uncovered(s).spans() {
            introduced.insert(gap.clone());
        }
    }
    Ok(introduced.spans().to_vec())
}

/// Refuses to start when the read timestamp is at or below a GC threshold,
/// then protects it for the life of the job.
pub(crate) fn check_gc_and_protect(
    host: &Host,
    layer: &mut Layer,
    end_time: Timestamp,
) -> Result<(), ExecError> {
    let introduced = SpanSet::from_spans(layer.introduced.iter().cloned());
    let mut protect_at = if layer.incremental() {
        layer.start_time
    } else {
        end_time
    };
    for span in &layer.spans {
        let threshold = host.protector.gc_threshold(span)?;
        // An incremental reads its non-introduced spans from its start time.
        let requested = if layer.incremental() && !introduced.covers(span) {
            layer.start_time
        } else {
            end_time
        };
        if requested <= threshold {
            return Err(ExecError::BelowGcThreshold {
                requested,
                threshold,
            });
        }
        protect_at = protect_at.min(requested);
    }
    if layer.protection.is_none() && !layer.spans.is_empty() {
        let id = host
            .protector
            .protect(&layer.spans, protect_at)
            .map_err(|e| match e {
                crate::host::HostError::GcThreshold {
                    requested,
                    threshold,
                } => ExecError::BelowGcThreshold {
                    requested,
                    threshold,
                },
                e => ExecError::Host(e),
            })?;
        layer.protection = Some(id);
    }
    Ok(())
}

/// Whether the layer was already finished (its manifest exists): a job that
/// crashed after writing it only has the `LATEST` pointer left to write.
pub(crate) async fn layer_finished(storages: &Storages, layer: &Layer) -> Result<bool, ExecError> {
    has_manifest(&storages.layer_default, &layer.dir).await
}
