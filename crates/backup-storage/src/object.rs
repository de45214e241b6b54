//! Storage on any `object_store` backend that has multipart uploads: S3,
//! Azure, GCS and the in-memory store.
//!
//! Create-only: single puts use `PutMode::Create` (S3 and Azure send
//! `If-None-Match: *`, GCS `ifGenerationMatch=0`, memory checks atomically).
//! object_store completes multipart uploads unconditionally, so a streamed
//! write checks with HEAD before starting and again just before completing;
//! another writer that publishes the same name between that last HEAD and
//! the completion would be overwritten. Backup file names are unique per
//! writer, so that race needs two writers of one name, which the backup job
//! never starts.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    Attributes, GetOptions, GetRange, MultipartId, ObjectStore, ObjectStoreExt, PutMode,
    PutMultipartOptions, PutOptions, PutPayload,
};

use crate::error::{Scrubber, StorageError, from_object_store};
use crate::retry::RetryPolicy;
use crate::storage::{
    ExternalStorage, Listing, ObjectMeta, ObjectWriter, check_path, join, relative,
};

/// A store that can do both whole-object and multipart operations.
pub(crate) trait CloudStore: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> CloudStore for T {}

struct Inner {
    describe: String,
    store: Arc<dyn CloudStore>,
    base: String,
    attributes: Attributes,
    retry: RetryPolicy,
    scrubber: Scrubber,
    part_size: usize,
}

/// An [`ExternalStorage`] over an object_store backend.
#[derive(Clone)]
pub(crate) struct ObjectStorage {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStorage")
            .field("storage", &self.inner.describe)
            .field("part_size", &self.inner.part_size)
            .finish()
    }
}

/// Settings of one [`ObjectStorage`].
pub(crate) struct ObjectStorageConfig {
    pub describe: String,
    pub base: String,
    pub attributes: Attributes,
    pub retry: RetryPolicy,
    pub scrubber: Scrubber,
    pub part_size: usize,
}

impl ObjectStorage {
    pub(crate) fn new(store: Arc<dyn CloudStore>, config: ObjectStorageConfig) -> ObjectStorage {
        ObjectStorage {
            inner: Arc::new(Inner {
                describe: config.describe,
                store,
                base: config.base,
                attributes: config.attributes,
                retry: config.retry,
                scrubber: config.scrubber,
                part_size: config.part_size.max(1),
            }),
        }
    }
}

impl Inner {
    fn location(&self, path: &str) -> Result<Path, StorageError> {
        check_path(path, false)?;
        Ok(Path::from(join(&self.base, path)))
    }

    fn error(&self, err: &object_store::Error, path: &str, attempt: u32) -> StorageError {
        from_object_store(err, path, &self.describe, &self.scrubber, attempt)
    }

    async fn head_size(&self, loc: &Path, path: &str) -> Result<Option<u64>, StorageError> {
        let out = self
            .retry
            .run(|attempt| async move {
                match self.store.head(loc).await {
                    Ok(meta) => Ok(Some(meta.size)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(self.error(&e, path, attempt)),
                }
            })
            .await?;
        Ok(out)
    }

    /// `AlreadyExists` if `path` is taken.
    async fn ensure_absent(&self, loc: &Path, path: &str) -> Result<(), StorageError> {
        match self.head_size(loc, path).await? {
            None => Ok(()),
            Some(_) => Err(StorageError::AlreadyExists {
                object: path.to_string(),
                storage: self.describe.clone(),
                cause: "found by a check before publishing".to_string(),
            }),
        }
    }

    /// A create-only single put. A retry that meets `AlreadyExists` after an
    /// earlier attempt may have landed checks the size: an object of exactly
    /// our size is taken to be our own earlier attempt.
    async fn put_create(
        &self,
        loc: &Path,
        path: &str,
        payload: PutPayload,
    ) -> Result<(), StorageError> {
        let len = payload.content_length() as u64;
        let last_attempt = std::sync::atomic::AtomicU32::new(0);
        let result = self
            .retry
            .run(|attempt| {
                last_attempt.store(attempt, std::sync::atomic::Ordering::Relaxed);
                let payload = payload.clone();
                async move {
                    let opts = PutOptions {
                        mode: PutMode::Create,
                        attributes: self.attributes.clone(),
                        ..PutOptions::default()
                    };
                    self.store
                        .put_opts(loc, payload, opts)
                        .await
                        .map(|_| ())
                        .map_err(|e| self.error(&e, path, attempt))
                }
            })
            .await;
        match result {
            Err(e)
                if e.is_already_exists()
                    && last_attempt.load(std::sync::atomic::Ordering::Relaxed) > 1 =>
            {
                match self.head_size(loc, path).await? {
                    Some(size) if size == len => Ok(()),
                    _ => Err(e),
                }
            }
            other => other,
        }
    }
}

#[async_trait]
impl ExternalStorage for ObjectStorage {
    fn describe(&self) -> String {
        self.inner.describe.clone()
    }

    async fn put(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        let loc = self.inner.location(path)?;
        self.inner
            .put_create(&loc, path, PutPayload::from_bytes(data))
            .await
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        let loc = self.inner.location(path)?;
        self.inner.ensure_absent(&loc, path).await?;
        Ok(Box::new(CloudWriter {
            inner: Arc::clone(&self.inner),
            path: path.to_string(),
            loc,
            buffer: Vec::new(),
            buffered: 0,
            total: 0,
            upload: None,
        }))
    }

    async fn get(&self, path: &str) -> Result<Bytes, StorageError> {
        let inner = &self.inner;
        let loc = inner.location(path)?;
        let loc = &loc;
        inner
            .retry
            .run(|attempt| async move {
                let got = inner
                    .store
                    .get(loc)
                    .await
                    .map_err(|e| inner.error(&e, path, attempt))?;
                got.bytes()
                    .await
                    .map_err(|e| inner.error(&e, path, attempt))
            })
            .await
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let inner = &self.inner;
        let loc = inner.location(path)?;
        if range.start > range.end {
            return Err(StorageError::InvalidPath {
                object: path.to_string(),
                reason: format!("range {}..{} is reversed", range.start, range.end),
            });
        }
        if range.is_empty() {
            return match inner.head_size(&loc, path).await? {
                Some(size) if range.end <= size => Ok(Bytes::new()),
                Some(size) => Err(out_of_range(path, &inner.describe, &range, size)),
                None => Err(not_found(path, &inner.describe)),
            };
        }
        let loc = &loc;
        let range = &range;
        inner
            .retry
            .run(|attempt| async move {
                let opts = GetOptions {
                    range: Some(GetRange::Bounded(range.clone())),
                    ..GetOptions::default()
                };
                let got = inner
                    .store
                    .get_opts(loc, opts)
                    .await
                    .map_err(|e| inner.error(&e, path, attempt))?;
                let size = got.meta.size;
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| inner.error(&e, path, attempt))?;
                if bytes.len() as u64 != range.end - range.start {
                    return Err(out_of_range(path, &inner.describe, range, size));
                }
                Ok(bytes)
            })
            .await
    }

    async fn size(&self, path: &str) -> Result<Option<u64>, StorageError> {
        let loc = self.inner.location(path)?;
        self.inner.head_size(&loc, path).await
    }

    async fn list(&self, prefix: &str, delimited: bool) -> Result<Listing, StorageError> {
        check_path(prefix, true)?;
        let inner = &self.inner;
        let full = join(&inner.base, prefix.trim_end_matches('/'));
        let loc = (!full.is_empty()).then(|| Path::from(full.as_str()));
        let loc = loc.as_ref();
        let mut listing = inner
            .retry
            .run(|attempt| async move {
                let mut listing = Listing::default();
                if delimited {
                    let result = inner
                        .store
                        .list_with_delimiter(loc)
                        .await
                        .map_err(|e| inner.error(&e, prefix, attempt))?;
                    for object in result.objects {
                        push_object(
                            &mut listing,
                            &inner.base,
                            object.location.as_ref(),
                            object.size,
                        );
                    }
                    for dir in result.common_prefixes {
                        if let Some(rel) = relative(&inner.base, dir.as_ref()) {
                            listing.prefixes.push(rel.to_string());
                        }
                    }
                } else {
                    let objects: Vec<object_store::ObjectMeta> = inner
                        .store
                        .list(loc)
                        .try_collect()
                        .await
                        .map_err(|e| inner.error(&e, prefix, attempt))?;
                    for object in objects {
                        push_object(
                            &mut listing,
                            &inner.base,
                            object.location.as_ref(),
                            object.size,
                        );
                    }
                }
                Ok(listing)
            })
            .await?;
        listing.objects.sort();
        listing.prefixes.sort();
        Ok(listing)
    }
}

fn push_object(listing: &mut Listing, base: &str, full: &str, size: u64) {
    if let Some(rel) = relative(base, full) {
        listing.objects.push(ObjectMeta {
            path: rel.to_string(),
            size,
        });
    }
}

pub(crate) fn out_of_range(
    path: &str,
    storage: &str,
    range: &Range<u64>,
    size: u64,
) -> StorageError {
    StorageError::Permanent {
        object: path.to_string(),
        storage: storage.to_string(),
        cause: format!(
            "range {}..{} is outside the object's {size} bytes",
            range.start, range.end
        ),
    }
}

pub(crate) fn not_found(path: &str, storage: &str) -> StorageError {
    StorageError::NotFound {
        object: path.to_string(),
        storage: storage.to_string(),
        cause: "no such object".to_string(),
    }
}

struct Upload {
    id: MultipartId,
    parts: Vec<PartId>,
}

/// A streamed write: buffered up to one part, then a multipart upload.
struct CloudWriter {
    inner: Arc<Inner>,
    path: String,
    loc: Path,
    buffer: Vec<Bytes>,
    buffered: usize,
    total: u64,
    upload: Option<Upload>,
}

impl CloudWriter {
    fn take_buffer(&mut self) -> PutPayload {
        self.buffered = 0;
        std::mem::take(&mut self.buffer).into_iter().collect()
    }

    async fn start_upload(&self) -> Result<Upload, StorageError> {
        let inner = &self.inner;
        let (loc, path) = (&self.loc, self.path.as_str());
        inner.ensure_absent(loc, path).await?;
        let id = inner
            .retry
            .run(|attempt| async move {
                let opts = PutMultipartOptions {
                    attributes: inner.attributes.clone(),
                    ..PutMultipartOptions::default()
                };
                inner
                    .store
                    .create_multipart_opts(loc, opts)
                    .await
                    .map_err(|e| inner.error(&e, path, attempt))
            })
            .await?;
        Ok(Upload {
            id,
            parts: Vec::new(),
        })
    }

    async fn flush_part(&mut self) -> Result<(), StorageError> {
        if self.upload.is_none() {
            self.upload = Some(self.start_upload().await?);
        }
        let payload = self.take_buffer();
        let inner = Arc::clone(&self.inner);
        let (loc, path) = (&self.loc, self.path.as_str());
        let Some(upload) = self.upload.as_mut() else {
            return Ok(());
        };
        let (id, idx) = (&upload.id, upload.parts.len());
        let part = inner
            .retry
            .run(|attempt| {
                let payload = payload.clone();
                let inner = &inner;
                async move {
                    inner
                        .store
                        .put_part(loc, id, idx, payload)
                        .await
                        .map_err(|e| inner.error(&e, path, attempt))
                }
            })
            .await?;
        upload.parts.push(part);
        Ok(())
    }

    async fn complete(&mut self) -> Result<(), StorageError> {
        if self.buffered > 0 || self.upload.as_ref().is_some_and(|u| u.parts.is_empty()) {
            self.flush_part().await?;
        }
        let inner = Arc::clone(&self.inner);
        let (loc, path) = (&self.loc, self.path.as_str());
        inner.ensure_absent(loc, path).await?;
        let Some(upload) = self.upload.as_ref() else {
            return Ok(());
        };
        let total = self.total;
        let last_attempt = std::sync::atomic::AtomicU32::new(0);
        let result = inner
            .retry
            .run(|attempt| {
                last_attempt.store(attempt, std::sync::atomic::Ordering::Relaxed);
                let parts = upload.parts.clone();
                let inner = &inner;
                async move {
                    inner
                        .store
                        .complete_multipart(loc, &upload.id, parts)
                        .await
                        .map(|_| ())
                        .map_err(|e| inner.error(&e, path, attempt))
                }
            })
            .await;
        match result {
            // A completion whose response was lost, then retried, may find
            // the upload gone: the object of our size is our own.
            Err(e) if last_attempt.load(std::sync::atomic::Ordering::Relaxed) > 1 => {
                match inner.head_size(loc, path).await? {
                    Some(size) if size == total => Ok(()),
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    fn abort_in_background(&mut self) {
        if let Some(upload) = self.upload.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let store = Arc::clone(&self.inner.store);
            let loc = self.loc.clone();
            handle.spawn(async move {
                let _ = store.abort_multipart(&loc, &upload.id).await;
            });
        }
    }
}

#[async_trait]
impl ObjectWriter for CloudWriter {
    async fn write(&mut self, data: Bytes) -> Result<(), StorageError> {
        self.total += data.len() as u64;
        self.buffered += data.len();
        self.buffer.push(data);
        if self.buffered >= self.inner.part_size {
            let result = self.flush_part().await;
            if result.is_err() {
                self.abort_in_background();
            }
            result?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StorageError> {
        if self.upload.is_none() {
            let payload = self.take_buffer();
            let inner = Arc::clone(&self.inner);
            inner.put_create(&self.loc, &self.path, payload).await?;
            return Ok(self.total);
        }
        match self.complete().await {
            Ok(()) => {
                self.upload = None;
                Ok(self.total)
            }
            Err(e) => {
                self.abort_in_background();
                Err(e)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StorageError> {
        if let Some(upload) = self.upload.take() {
            let _ = self
                .inner
                .store
                .abort_multipart(&self.loc, &upload.id)
                .await;
        }
        Ok(())
    }
}

impl Drop for CloudWriter {
    fn drop(&mut self) {
        self.abort_in_background();
    }
}
