//! Directories on a local disk: `file:///abs/path` and `nodelocal://N/path`.
//!
//! Create-only publishing: an object is written to `<name>#<digits>` in its
//! destination directory, fsynced, then hard-linked to its name — `link(2)`
//! fails if the name exists, so publishing is atomic and never overwrites —
//! and the staging name is removed. Staging names are hidden from listings
//! and rejected as object names.
//!
//! Nothing may escape the root: paths with `..` are rejected up front, and
//! every operation resolves symlinks and checks the result is still under
//! the (canonical) root.

use std::io::ErrorKind;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::error::StorageError;
use crate::object::{not_found, out_of_range};
use crate::retry::RetryPolicy;
use crate::storage::{
    ExternalStorage, Listing, ObjectMeta, ObjectWriter, check_path, is_staging_name,
};

static STAGING_SEQ: AtomicU64 = AtomicU64::new(0);

/// An [`ExternalStorage`] in a local directory.
#[derive(Debug, Clone)]
pub(crate) struct LocalStorage {
    describe: String,
    /// Canonical directory objects live under.
    root: PathBuf,
    retry: RetryPolicy,
}

impl LocalStorage {
    /// Opens `root/base`, creating it; `root` bounds every path (for
    /// nodelocal it is the node's directory, for file:// the base itself).
    pub(crate) fn open(
        describe: String,
        root: &Path,
        base: &str,
        retry: RetryPolicy,
    ) -> Result<LocalStorage, StorageError> {
        let io_err = |what: &str, e: std::io::Error| StorageError::InvalidUri {
            uri: describe.clone(),
            reason: format!("{what}: {e}"),
        };
        std::fs::create_dir_all(root)
            .map_err(|e| io_err("cannot create the storage directory", e))?;
        let canonical_root = root
            .canonicalize()
            .map_err(|e| io_err("cannot resolve the storage directory", e))?;
        let dir = canonical_root.join(base);
        std::fs::create_dir_all(&dir)
            .map_err(|e| io_err("cannot create the storage directory", e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| io_err("cannot resolve the storage directory", e))?;
        if !dir.starts_with(&canonical_root) {
            return Err(StorageError::InvalidUri {
                uri: describe,
                reason: "the path escapes the node's directory (through a symlink); use a path inside it".into(),
            });
        }
        Ok(LocalStorage {
            describe,
            root: dir,
            retry,
        })
    }

    /// The file for `path`, after checking nothing on the way escapes the root.
    fn resolve(&self, path: &str, allow_empty: bool) -> Result<PathBuf, StorageError> {
        check_path(path, allow_empty)?;
        let target = self.root.join(path.trim_end_matches('/'));
        let mut existing = target.as_path();
        loop {
            match existing.canonicalize() {
                Ok(real) => {
                    if !real.starts_with(&self.root) {
                        return Err(StorageError::PermissionDenied {
                            object: path.to_string(),
                            storage: self.describe.clone(),
                            cause: "the path leads outside the storage directory through a symlink"
                                .into(),
                        });
                    }
                    return Ok(target);
                }
                Err(_) => match existing.parent() {
                    Some(parent) if parent.starts_with(&self.root) => existing = parent,
                    _ => return Ok(target),
                },
            }
        }
    }

    fn io_error(&self, path: &str, e: &std::io::Error) -> StorageError {
        io_error(&self.describe, path, e)
    }
}

fn io_error(storage: &str, path: &str, e: &std::io::Error) -> StorageError {
    let (object, storage, cause) = (path.to_string(), storage.to_string(), e.to_string());
    match e.kind() {
        ErrorKind::NotFound => StorageError::NotFound {
            object,
            storage,
            cause,
        },
        ErrorKind::AlreadyExists => StorageError::AlreadyExists {
            object,
            storage,
            cause,
        },
        ErrorKind::PermissionDenied => StorageError::PermissionDenied {
            object,
            storage,
            cause,
        },
        ErrorKind::TimedOut | ErrorKind::Interrupted => StorageError::Transient {
            object,
            storage,
            attempts: 1,
            cause,
        },
        _ => StorageError::Permanent {
            object,
            storage,
            cause,
        },
    }
}

async fn blocking<T: Send + 'static>(
    storage: &str,
    path: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| io_error(storage, path, &e)),
        Err(e) => Err(StorageError::Permanent {
            object: path.to_string(),
            storage: storage.to_string(),
            cause: format!("file task failed: {e}"),
        }),
    }
}

#[async_trait]
impl ExternalStorage for LocalStorage {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn put(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        let mut writer = self.writer(path).await?;
        writer.write(data).await?;
        writer.finish().await.map(|_| ())
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        let dest = self.resolve(path, false)?;
        let Some(dir) = dest.parent().map(Path::to_path_buf) else {
            return Err(StorageError::InvalidPath {
                object: path.to_string(),
                reason: "no parent directory".into(),
            });
        };
        let create_dir = dir.clone();
        blocking(&self.describe, path, move || {
            std::fs::create_dir_all(create_dir)
        })
        .await?;
        // Re-check now that the directories exist: one may be a symlink.
        self.resolve(path, false)?;
        if tokio::fs::symlink_metadata(&dest).await.is_ok() {
            return Err(StorageError::AlreadyExists {
                object: path.to_string(),
                storage: self.describe.clone(),
                cause: "found by a check before writing".into(),
            });
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let seq = STAGING_SEQ.fetch_add(1, Ordering::Relaxed);
        let staging = dir.join(format!("{name}#{}{seq:08}", std::process::id()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
            .await
            .map_err(|e| self.io_error(path, &e))?;
        Ok(Box::new(LocalWriter {
            describe: self.describe.clone(),
            path: path.to_string(),
            dest,
            dir,
            staging: Some(staging),
            file: Some(file),
            total: 0,
        }))
    }

    async fn get(&self, path: &str) -> Result<Bytes, StorageError> {
        let file = self.resolve(path, false)?;
        let file = &file;
        self.retry
            .run(|_| async move {
                tokio::fs::read(file)
                    .await
                    .map(Bytes::from)
                    .map_err(|e| self.io_error(path, &e))
            })
            .await
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let file = self.resolve(path, false)?;
        if range.start > range.end {
            return Err(StorageError::InvalidPath {
                object: path.to_string(),
                reason: format!("range {}..{} is reversed", range.start, range.end),
            });
        }
        let describe = self.describe.clone();
        let owned_path = path.to_string();
        let size = self
            .size(path)
            .await?
            .ok_or_else(|| not_found(path, &describe))?;
        if range.end > size {
            return Err(out_of_range(path, &describe, &range, size));
        }
        blocking(&self.describe, path, move || {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = std::fs::File::open(&file)?;
            f.seek(SeekFrom::Start(range.start))?;
            let mut buf = vec![0u8; (range.end - range.start) as usize];
            f.read_exact(&mut buf)?;
            let _ = owned_path;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn size(&self, path: &str) -> Result<Option<u64>, StorageError> {
        let file = self.resolve(path, false)?;
        match tokio::fs::metadata(&file).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error(path, &e)),
        }
    }

    async fn list(&self, prefix: &str, delimited: bool) -> Result<Listing, StorageError> {
        let dir = self.resolve(prefix, true)?;
        let root = self.root.clone();
        let mut listing = blocking(&self.describe, prefix, move || {
            let mut listing = Listing::default();
            walk(&root, &dir, delimited, &mut listing)?;
            Ok(listing)
        })
        .await?;
        listing.objects.sort();
        listing.prefixes.sort();
        Ok(listing)
    }
}

/// Lists `dir` (recursively unless `delimited`) into `listing`, paths relative to `root`.
fn walk(root: &Path, dir: &Path, delimited: bool, listing: &mut Listing) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_staging_name(&name) {
            continue;
        }
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            if delimited {
                listing.prefixes.push(rel);
            } else {
                walk(root, &path, false, listing)?;
            }
        } else if meta.is_file() {
            listing.objects.push(ObjectMeta {
                path: rel,
                size: meta.len(),
            });
        }
    }
    Ok(())
}

/// A local write in progress: a staging file, published by hard link.
struct LocalWriter {
    describe: String,
    path: String,
    dest: PathBuf,
    dir: PathBuf,
    staging: Option<PathBuf>,
    file: Option<tokio::fs::File>,
    total: u64,
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, data: Bytes) -> Result<(), StorageError> {
        let Some(file) = self.file.as_mut() else {
            return Err(StorageError::Permanent {
                object: self.path.clone(),
                storage: self.describe.clone(),
                cause: "write after a failed write".into(),
            });
        };
        if let Err(e) = file.write_all(&data).await {
            self.file = None;
            return Err(io_error(&self.describe, &self.path, &e));
        }
        self.total += data.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StorageError> {
        let (Some(mut file), Some(staging)) = (self.file.take(), self.staging.clone()) else {
            return Err(StorageError::Permanent {
                object: self.path.clone(),
                storage: self.describe.clone(),
                cause: "finish after a failed write".into(),
            });
        };
        let sync = async {
            file.flush().await?;
            file.sync_all().await
        };
        sync.await
            .map_err(|e| io_error(&self.describe, &self.path, &e))?;
        drop(file);
        let (dest, dir) = (self.dest.clone(), self.dir.clone());
        blocking(&self.describe, &self.path, move || {
            std::fs::hard_link(&staging, &dest)?;
            let _ = std::fs::remove_file(&staging);
            // Make the new name durable.
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })
        .await?;
        self.staging = None;
        Ok(self.total)
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StorageError> {
        self.file = None;
        if let Some(staging) = self.staging.take() {
            let _ = tokio::fs::remove_file(staging).await;
        }
        Ok(())
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if let Some(staging) = self.staging.take() {
            let _ = std::fs::remove_file(staging);
        }
    }
}
