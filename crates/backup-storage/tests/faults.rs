//! The fault-injecting wrapper: error rate, latency, and a write cut off
//! after N bytes that leaves nothing visible.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use backup_storage::{ExternalStorage, FaultConfig, FaultyStorage, StorageUri, open, open_memory};
use bytes::Bytes;

#[tokio::test]
async fn error_rate_one_fails_everything_transiently() {
    let inner = open_memory(&common::context());
    inner.put("x", Bytes::from_static(b"1")).await.unwrap();
    let faulty = FaultyStorage::new(
        inner,
        FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        },
    );
    assert!(faulty.get("x").await.unwrap_err().is_transient());
    assert!(
        faulty
            .put("y", Bytes::new())
            .await
            .unwrap_err()
            .is_transient()
    );
    assert!(faulty.list("", true).await.unwrap_err().is_transient());
    assert!(faulty.size("x").await.unwrap_err().is_transient());
    assert_eq!(faulty.injected(), 4);
}

#[tokio::test]
async fn error_rate_is_roughly_honoured_and_deterministic() {
    let inner = open_memory(&common::context());
    inner.put("x", Bytes::from_static(b"1")).await.unwrap();
    let config = FaultConfig {
        error_rate: 0.3,
        seed: 42,
        ..FaultConfig::default()
    };
    let run = |storage: FaultyStorage| async move {
        let mut outcomes = Vec::new();
        for _ in 0..1000 {
            outcomes.push(storage.get("x").await.is_ok());
        }
        (outcomes, storage.injected())
    };
    let (a, injected) = run(FaultyStorage::new(Arc::clone(&inner), config.clone())).await;
    let (b, _) = run(FaultyStorage::new(inner, config)).await;
    assert_eq!(a, b, "same seed, same faults");
    assert!(
        (200..400).contains(&injected),
        "{injected} faults of 1000 at rate 0.3"
    );
    assert_eq!(a.iter().filter(|ok| !**ok).count() as u64, injected);
}

#[tokio::test]
async fn latency_is_added() {
    let faulty = FaultyStorage::new(
        open_memory(&common::context()),
        FaultConfig {
            latency: Duration::from_millis(40),
            ..FaultConfig::default()
        },
    );
    let start = Instant::now();
    faulty.put("x", Bytes::from_static(b"1")).await.unwrap();
    faulty.get("x").await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(80),
        "{:?}",
        start.elapsed()
    );
}

async fn cut_write(inner: Arc<dyn ExternalStorage>) {
    let faulty = FaultyStorage::new(
        Arc::clone(&inner),
        FaultConfig {
            fail_write_after_bytes: Some(2500),
            ..FaultConfig::default()
        },
    );
    let mut w = faulty.writer("cut").await.unwrap();
    w.write(Bytes::from(vec![1u8; 1000])).await.unwrap();
    w.write(Bytes::from(vec![2u8; 1000])).await.unwrap();
    let err = w.write(Bytes::from(vec![3u8; 1000])).await.unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("after 2500 bytes"),
        "{err}"
    );
    assert!(w.finish().await.is_err());
    assert_eq!(
        inner.size("cut").await.unwrap(),
        None,
        "{}",
        inner.describe()
    );
    assert!(inner.list("", false).await.unwrap().objects.is_empty());
    // A whole put above the limit fails too; below it passes through.
    assert!(
        faulty
            .put("big", Bytes::from(vec![0u8; 3000]))
            .await
            .unwrap_err()
            .is_transient()
    );
    faulty
        .put("small", Bytes::from(vec![0u8; 10]))
        .await
        .unwrap();
    assert_eq!(inner.size("small").await.unwrap(), Some(10));
    assert_eq!(faulty.injected(), 2);
}

#[tokio::test]
async fn write_cut_after_n_bytes_leaves_nothing() {
    // Memory, with parts smaller than the cut so a multipart upload is under way.
    let mut ctx = common::context();
    ctx.part_size = 1024;
    cut_write(open_memory(&ctx)).await;
    let dir = tempfile::tempdir().unwrap();
    let uri = StorageUri::parse(&format!("file://{}", dir.path().display())).unwrap();
    cut_write(open(&uri, &ctx).unwrap()).await;
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only `small` is on disk"
    );
}
