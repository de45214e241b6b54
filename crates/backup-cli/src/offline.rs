//! What the offline commands (`inspect`, `verify`) share: opening a
//! collection's storage without a cluster, and naming the backup to read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use backup_exec::RestoreSource;
use backup_exec::restore::spec::BackupChoice;
use backup_format::paths::{BACKUP_MANIFEST, INCREMENTALS_DIR};
use backup_storage::{ExternalStorage, Location, StorageContext, StorageUri};

use crate::redact::Secrets;

/// Arguments that locate a collection and one backup in it.
#[derive(Debug, clap::Args)]
pub struct CollectionArgs {
    /// The collection URI, as given to BACKUP ... INTO (`nodelocal://1/backups`
    /// with --store, `file:///abs/dir`, `s3://bucket/path?...`), or a local path.
    pub uri: String,
    /// The store directory of the embedded cluster whose `nodelocal://` URIs
    /// are meant (each node's directory is `<store>/nodes/<id>`).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The full backup to read, as SHOW BACKUPS lists it (`2026/11/24-193000.00`).
    #[arg(long, conflicts_with = "latest")]
    pub subdir: Option<String>,
    /// Read the newest full backup (the default of `verify`).
    #[arg(long)]
    pub latest: bool,
    /// The encryption passphrase of an encrypted backup.
    #[arg(long)]
    pub passphrase: Option<String>,
    /// A locality's URI (with `COCKROACH_LOCALITY=key=value`) of a
    /// locality-aware backup (repeatable).
    #[arg(long = "locality-uri", value_name = "URI")]
    pub locality_uris: Vec<String>,
    /// Where the incrementals are, when the backups used `incremental_location`.
    #[arg(long, value_name = "URI")]
    pub incremental_location: Option<String>,
}

/// An opened collection.
pub struct Collection {
    /// The URI, as given (holds secrets: never print it).
    pub uri: String,
    /// Extra locality URIs of the backup.
    pub locality_uris: Vec<String>,
    /// Where its incrementals are, when not in the collection.
    pub incremental_location: Option<String>,
    /// The storage context the URIs open with.
    pub context: StorageContext,
    /// The collection's storage.
    pub storage: Arc<dyn ExternalStorage>,
    /// The secrets of the arguments, for scrubbing output.
    pub secrets: Secrets,
}

impl Collection {
    /// Parses and opens the collection `args` names.
    pub fn open(args: &CollectionArgs) -> anyhow::Result<Collection> {
        let mut secrets = Secrets::default();
        secrets.learn_uri(&args.uri);
        for uri in args.locality_uris.iter().chain(&args.incremental_location) {
            secrets.learn_uri(uri);
        }
        if let Some(p) = &args.passphrase {
            secrets.add_secret(p);
        }
        let uri = if args.uri.contains("://") {
            args.uri.clone()
        } else {
            let abs = std::path::absolute(&args.uri)
                .with_context(|| format!("cannot resolve the path {}", args.uri))?;
            format!("file://{}", abs.display())
        };
        let parsed = StorageUri::parse(&uri).map_err(|e| {
            anyhow::anyhow!(secrets.scrub(&format!(
                "{e} (give a collection URI such as nodelocal://1/backups with --store, \
                 file:///abs/dir or s3://bucket/path)"
            )))
        })?;
        let mut context = StorageContext::default();
        match &args.store {
            Some(store) => {
                context.nodelocal_dirs = node_dirs(store)?;
                context.local_node = Some(1);
            }
            None if matches!(parsed.location(), Location::Nodelocal { .. }) => bail!(
                "{} names a node's directory of an embedded cluster: pass that \
                 cluster's --store DIR (or use file://<store>/nodes/<id>/...)",
                parsed.redacted()
            ),
            None => {}
        }
        let storage = backup_storage::open(&parsed, &context)
            .map_err(|e| anyhow::anyhow!(secrets.scrub(&e.to_string())))?;
        Ok(Collection {
            uri,
            locality_uris: args.locality_uris.clone(),
            incremental_location: args.incremental_location.clone(),
            context,
            storage,
            secrets,
        })
    }

    /// An error of reading the collection, scrubbed, with the CLI's way of
    /// giving a passphrase.
    pub fn error(&self, e: &dyn std::fmt::Display) -> anyhow::Error {
        let text = self.secrets.scrub(&e.to_string());
        if text.contains("give its encryption_passphrase") {
            anyhow::anyhow!("{text} (with --passphrase)")
        } else {
            anyhow::anyhow!(text)
        }
    }

    /// The source of the backup `args` chooses (`latest` when neither is given).
    pub fn source(&self, subdir: Option<&str>) -> RestoreSource {
        RestoreSource {
            collection: self.uri.clone(),
            locality_uris: self.locality_uris.clone(),
            incremental_location: self.incremental_location.clone(),
            backup: match subdir {
                Some(s) => BackupChoice::Subdir(s.trim_matches('/').to_string()),
                None => BackupChoice::Latest,
            },
        }
    }

    /// Every full backup in the collection, oldest first, with its number of
    /// incremental layers (counting only layers with a manifest).
    pub async fn backups(&self) -> anyhow::Result<Vec<(String, usize)>> {
        let listing = self
            .storage
            .list("", false)
            .await
            .map_err(|e| anyhow::anyhow!(self.secrets.scrub(&e.to_string())))?;
        let suffix = format!("/{BACKUP_MANIFEST}");
        let mut fulls = Vec::new();
        let mut incrementals: HashMap<String, usize> = HashMap::new();
        for obj in &listing.objects {
            let Some(dir) = obj.path.strip_suffix(&suffix) else {
                continue;
            };
            if let Some(inc) = dir.strip_prefix(&format!("{INCREMENTALS_DIR}/")) {
                if let Some((full, _)) = backup_format::paths::parse_incremental_dir(dir) {
                    *incrementals.entry(full).or_default() += 1;
                } else {
                    tracing::debug!(dir = inc, "not an incremental layer");
                }
            } else if !dir.starts_with("metadata") {
                fulls.push(dir.to_string());
            }
        }
        fulls.sort();
        Ok(fulls
            .into_iter()
            .map(|f| {
                let n = incrementals.get(&f).copied().unwrap_or(0);
                (f, n)
            })
            .collect())
    }
}

/// Each node's `nodelocal://` directory in a store.
fn node_dirs(store: &Path) -> anyhow::Result<HashMap<u32, PathBuf>> {
    let nodes = store.join("nodes");
    let entries = std::fs::read_dir(&nodes).with_context(|| {
        format!(
            "{} has no node directories: is {} the --store of a backup-cli cluster?",
            nodes.display(),
            store.display()
        )
    })?;
    let mut dirs = HashMap::new();
    for e in entries.flatten() {
        if let Some(id) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
            dirs.insert(id, e.path());
        }
    }
    Ok(dirs)
}

/// A tokio runtime for one offline command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
