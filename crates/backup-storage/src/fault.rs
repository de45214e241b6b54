//! A fault-injecting wrapper for tests of the layers above: random transient
//! errors, added latency, and a write that fails after N bytes.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::StorageError;
use crate::storage::{ExternalStorage, Listing, ObjectWriter};

/// What [`FaultyStorage`] injects.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Probability (0.0..=1.0) that an operation fails with [`StorageError::Transient`].
    pub error_rate: f64,
    /// Added before every operation.
    pub latency: Duration,
    /// A streamed write fails (transiently) once it has been given more than this many bytes;
    /// the inner write is aborted, so nothing becomes visible.
    pub fail_write_after_bytes: Option<u64>,
    /// Seed of the deterministic random sequence.
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> FaultConfig {
        FaultConfig {
            error_rate: 0.0,
            latency: Duration::ZERO,
            fail_write_after_bytes: None,
            seed: 0x5eed,
        }
    }
}

/// Wraps a storage and injects faults per [`FaultConfig`].
#[derive(Debug)]
pub struct FaultyStorage {
    inner: Arc<dyn ExternalStorage>,
    config: FaultConfig,
    state: Arc<FaultState>,
}

#[derive(Debug)]
struct FaultState {
    rng: AtomicU64,
    injected: AtomicU64,
}

impl FaultState {
    /// splitmix64 over an atomic counter: deterministic, lock-free.
    fn roll(&self) -> f64 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl FaultyStorage {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ExternalStorage>, config: FaultConfig) -> FaultyStorage {
        let state = Arc::new(FaultState {
            rng: AtomicU64::new(config.seed),
            injected: AtomicU64::new(0),
        });
        FaultyStorage {
            inner,
            config,
            state,
        }
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.state.injected.load(Ordering::Relaxed)
    }

    async fn before(&self, op: &str, path: &str) -> Result<(), StorageError> {
        before(&self.config, &self.state, &self.inner.describe(), op, path).await
    }
}

async fn before(
    config: &FaultConfig,
    state: &FaultState,
    storage: &str,
    op: &str,
    path: &str,
) -> Result<(), StorageError> {
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    if config.error_rate > 0.0 && state.roll() < config.error_rate {
        state.injected.fetch_add(1, Ordering::Relaxed);
        return Err(StorageError::Transient {
            object: path.to_string(),
            storage: storage.to_string(),
            attempts: 1,
            cause: format!("injected fault in {op}"),
        });
    }
    Ok(())
}

#[async_trait]
impl ExternalStorage for FaultyStorage {
    fn describe(&self) -> String {
        format!("faulty({})", self.inner.describe())
    }

    async fn put(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        self.before("put", path).await?;
        if let Some(limit) = self.config.fail_write_after_bytes
            && data.len() as u64 > limit
        {
            self.state.injected.fetch_add(1, Ordering::Relaxed);
            return Err(write_cut(&self.inner.describe(), path, limit));
        }
        self.inner.put(path, data).await
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        self.before("writer", path).await?;
        let inner = self.inner.writer(path).await?;
        Ok(Box::new(FaultyWriter {
            inner: Some(inner),
            config: self.config.clone(),
            state: Arc::clone(&self.state),
            storage: self.inner.describe(),
            path: path.to_string(),
            written: 0,
        }))
    }

    async fn get(&self, path: &str) -> Result<Bytes, StorageError> {
        self.before("get", path).await?;
        self.inner.get(path).await
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        self.before("get_range", path).await?;
        self.inner.get_range(path, range).await
    }

    async fn size(&self, path: &str) -> Result<Option<u64>, StorageError> {
        self.before("size", path).await?;
        self.inner.size(path).await
    }

    async fn list(&self, prefix: &str, delimited: bool) -> Result<Listing, StorageError> {
        self.before("list", prefix).await?;
        self.inner.list(prefix, delimited).await
    }
}

fn write_cut(storage: &str, path: &str, limit: u64) -> StorageError {
    StorageError::Transient {
        object: path.to_string(),
        storage: storage.to_string(),
        attempts: 1,
        cause: format!("injected failure after {limit} bytes of the write"),
    }
}

struct FaultyWriter {
    inner: Option<Box<dyn ObjectWriter>>,
    config: FaultConfig,
    state: Arc<FaultState>,
    storage: String,
    path: String,
    written: u64,
}

impl FaultyWriter {
    async fn fail(&mut self, err: StorageError) -> StorageError {
        if let Some(inner) = self.inner.take() {
            let _ = inner.abort().await;
        }
        err
    }

    fn gone(&self) -> StorageError {
        StorageError::Permanent {
            object: self.path.clone(),
            storage: self.storage.clone(),
            cause: "the write already failed".into(),
        }
    }
}

#[async_trait]
impl ObjectWriter for FaultyWriter {
    async fn write(&mut self, data: Bytes) -> Result<(), StorageError> {
        if self.inner.is_none() {
            return Err(self.gone());
        }
        if let Err(e) = before(
            &self.config,
            &self.state,
            &self.storage,
            "write",
            &self.path,
        )
        .await
        {
            return Err(self.fail(e).await);
        }
        self.written += data.len() as u64;
        if let Some(limit) = self.config.fail_write_after_bytes
            && self.written > limit
        {
            self.state.injected.fetch_add(1, Ordering::Relaxed);
            let err = write_cut(&self.storage, &self.path, limit);
            return Err(self.fail(err).await);
        }
        match self.inner.as_mut() {
            Some(inner) => inner.write(data).await,
            None => Err(self.gone()),
        }
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StorageError> {
        if let Err(e) = before(
            &self.config,
            &self.state,
            &self.storage,
            "finish",
            &self.path,
        )
        .await
        {
            return Err(self.fail(e).await);
        }
        match self.inner.take() {
            Some(inner) => inner.finish().await,
            None => Err(self.gone()),
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StorageError> {
        match self.inner.take() {
            Some(inner) => inner.abort().await,
            None => Ok(()),
        }
    }
}
