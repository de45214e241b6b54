//! `userfile://` storage: files kept inside the database by the host.
//!
//! The host implements [`UserfileBackend`]; this module turns it into an
//! [`ExternalStorage`]. [`MemoryUserfiles`] is a small in-memory backend for
//! tests (of this crate and of hosts).

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::StorageError;
use crate::object::{not_found, out_of_range};
use crate::retry::RetryPolicy;
use crate::storage::{
    ExternalStorage, Listing, ObjectMeta, ObjectWriter, check_path, join, relative,
};

/// What a host implements to store userfiles. `table` is the URI's qualified
/// table name (empty for the user's default table); `key` is a `/`-separated
/// path. Errors use [`StorageError`] so the host can say not-found,
/// already-exists, permission denied or transient.
#[async_trait]
pub trait UserfileBackend: Send + Sync + std::fmt::Debug {
    /// Stores a file unless `key` exists ([`StorageError::AlreadyExists`] then).
    async fn put_if_absent(&self, table: &str, key: &str, data: Bytes) -> Result<(), StorageError>;
    /// Reads a whole file ([`StorageError::NotFound`] if absent).
    async fn get(&self, table: &str, key: &str) -> Result<Bytes, StorageError>;
    /// Reads bytes `range` of a file; the range lies inside it.
    async fn get_range(
        &self,
        table: &str,
        key: &str,
        range: Range<u64>,
    ) -> Result<Bytes, StorageError>;
    /// A file's size, `None` if absent.
    async fn size(&self, table: &str, key: &str) -> Result<Option<u64>, StorageError>;
    /// Every file whose key starts with `prefix` (a plain string prefix), with sizes.
    async fn list(&self, table: &str, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError>;
}

/// An in-memory [`UserfileBackend`] for tests.
#[derive(Debug, Default)]
pub struct MemoryUserfiles {
    files: Mutex<BTreeMap<(String, String), Bytes>>,
}

impl MemoryUserfiles {
    /// An empty backend.
    pub fn new() -> MemoryUserfiles {
        MemoryUserfiles::default()
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Bytes>> {
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn missing(key: &str) -> StorageError {
    not_found(key, "userfile test backend")
}

#[async_trait]
impl UserfileBackend for MemoryUserfiles {
    async fn put_if_absent(&self, table: &str, key: &str, data: Bytes) -> Result<(), StorageError> {
        let mut files = self.files();
        let id = (table.to_string(), key.to_string());
        if files.contains_key(&id) {
            return Err(StorageError::AlreadyExists {
                object: key.to_string(),
                storage: "userfile test backend".into(),
                cause: "file exists".into(),
            });
        }
        files.insert(id, data);
        Ok(())
    }

    async fn get(&self, table: &str, key: &str) -> Result<Bytes, StorageError> {
        self.files()
            .get(&(table.to_string(), key.to_string()))
            .cloned()
            .ok_or_else(|| missing(key))
    }

    async fn get_range(
        &self,
        table: &str,
        key: &str,
        range: Range<u64>,
    ) -> Result<Bytes, StorageError> {
        let data = self.get(table, key).await?;
        Ok(data.slice(range.start as usize..range.end as usize))
    }

    async fn size(&self, table: &str, key: &str) -> Result<Option<u64>, StorageError> {
        Ok(self
            .files()
            .get(&(table.to_string(), key.to_string()))
            .map(|d| d.len() as u64))
    }

    async fn list(&self, table: &str, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        Ok(self
            .files()
            .iter()
            .filter(|((t, k), _)| t == table && k.starts_with(prefix))
            .map(|((_, k), d)| ObjectMeta {
                path: k.clone(),
                size: d.len() as u64,
            })
            .collect())
    }
}

/// [`ExternalStorage`] over a host's [`UserfileBackend`].
#[derive(Debug, Clone)]
pub(crate) struct UserfileStorage {
    describe: String,
    backend: Arc<dyn UserfileBackend>,
    table: String,
    base: String,
    retry: RetryPolicy,
}

impl UserfileStorage {
    pub(crate) fn new(
        describe: String,
        backend: Arc<dyn UserfileBackend>,
        table: String,
        base: String,
        retry: RetryPolicy,
    ) -> UserfileStorage {
        UserfileStorage {
            describe,
            backend,
            table,
            base,
            retry,
        }
    }

    fn key(&self, path: &str) -> Result<String, StorageError> {
        check_path(path, false)?;
        Ok(join(&self.base, path))
    }
}

#[async_trait]
impl ExternalStorage for UserfileStorage {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn put(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        let key = self.key(path)?;
        let (key, data) = (&key, &data);
        self.retry
            .run(|_| async move {
                self.backend
                    .put_if_absent(&self.table, key, data.clone())
                    .await
            })
            .await
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        let key = self.key(path)?;
        if self.backend.size(&self.table, &key).await?.is_some() {
            return Err(StorageError::AlreadyExists {
                object: path.to_string(),
                storage: self.describe.clone(),
                cause: "found by a check before writing".into(),
            });
        }
        Ok(Box::new(UserfileWriter {
            storage: self.clone(),
            path: path.to_string(),
            chunks: Vec::new(),
        }))
    }

    async fn get(&self, path: &str) -> Result<Bytes, StorageError> {
        let key = self.key(path)?;
        let key = &key;
        self.retry
            .run(|_| async move { self.backend.get(&self.table, key).await })
            .await
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let size = self
            .size(path)
            .await?
            .ok_or_else(|| not_found(path, &self.describe))?;
        if range.start > range.end || range.end > size {
            return Err(out_of_range(path, &self.describe, &range, size));
        }
        let key = self.key(path)?;
        let (key, range) = (&key, &range);
        self.retry
            .run(|_| async move {
                self.backend
                    .get_range(&self.table, key, range.clone())
                    .await
            })
            .await
    }

    async fn size(&self, path: &str) -> Result<Option<u64>, StorageError> {
        let key = self.key(path)?;
        let key = &key;
        self.retry
            .run(|_| async move { self.backend.size(&self.table, key).await })
            .await
    }

    async fn list(&self, prefix: &str, delimited: bool) -> Result<Listing, StorageError> {
        check_path(prefix, true)?;
        let dir = join(&self.base, prefix.trim_end_matches('/'));
        let wanted = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let wanted = &wanted;
        let files = self
            .retry
            .run(|_| async move { self.backend.list(&self.table, wanted).await })
            .await?;
        let mut listing = Listing::default();
        for file in files {
            let Some(under) = file.path.strip_prefix(wanted.as_str()) else {
                continue;
            };
            let Some(rel) = relative(&self.base, &file.path) else {
                continue;
            };
            match under.split_once('/') {
                Some((child, _)) if delimited => {
                    let prefix = join(prefix.trim_end_matches('/'), child);
                    if !listing.prefixes.contains(&prefix) {
                        listing.prefixes.push(prefix);
                    }
                }
                _ => listing.objects.push(ObjectMeta {
                    path: rel.to_string(),
                    size: file.size,
                }),
            }
        }
        listing.objects.sort();
        listing.prefixes.sort();
        Ok(listing)
    }
}

/// Buffers a userfile and stores it whole on finish.
struct UserfileWriter {
    storage: UserfileStorage,
    path: String,
    chunks: Vec<Bytes>,
}

#[async_trait]
impl ObjectWriter for UserfileWriter {
    async fn write(&mut self, data: Bytes) -> Result<(), StorageError> {
        self.chunks.push(data);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<u64, StorageError> {
        let data: Vec<u8> = self.chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let len = data.len() as u64;
        self.storage.put(&self.path, Bytes::from(data)).await?;
        Ok(len)
    }

    async fn abort(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
}
