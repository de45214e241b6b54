//! One suite, every backend: memory, file://, nodelocal://, userfile:// (test
//! backend), S3 on moto_server and Azure on Azurite (both on 127.0.0.1).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use backup_storage::{
    ExternalStorage, MemoryUserfiles, ObjectMeta, StorageContext, StorageError, StorageUri, open,
    open_memory,
};
use bytes::Bytes;

fn data(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The suite. `part` is the backend's multipart part size.
async fn conformance(storage: Arc<dyn ExternalStorage>, part: usize) {
    let name = storage.describe();
    // Whole objects: put, get, size, exists.
    let small = data(1000, 1);
    storage.put("a/b/small.sst", small.clone()).await.unwrap();
    assert_eq!(storage.get("a/b/small.sst").await.unwrap(), small, "{name}");
    assert_eq!(storage.size("a/b/small.sst").await.unwrap(), Some(1000));
    assert!(storage.exists("a/b/small.sst").await.unwrap());
    storage.put("empty", Bytes::new()).await.unwrap();
    assert_eq!(storage.get("empty").await.unwrap(), Bytes::new());
    assert_eq!(storage.size("empty").await.unwrap(), Some(0));

    // Create-only: the second put fails and the first content stays.
    let err = storage.put("a/b/small.sst", data(10, 9)).await.unwrap_err();
    assert!(err.is_already_exists(), "{name}: {err}");
    assert!(err.to_string().contains("a/b/small.sst"), "{err}");
    assert_eq!(storage.get("a/b/small.sst").await.unwrap(), small);

    // Missing objects.
    let err = storage.get("a/missing").await.unwrap_err();
    assert!(err.is_not_found(), "{name}: {err}");
    assert!(err.to_string().contains("a/missing"), "{err}");
    assert_eq!(storage.size("a/missing").await.unwrap(), None);
    assert!(!storage.exists("a/missing").await.unwrap());
    assert!(
        storage
            .get_range("a/missing", 0..1)
            .await
            .unwrap_err()
            .is_not_found()
    );

    // Ranges.
    assert_eq!(
        storage.get_range("a/b/small.sst", 10..20).await.unwrap(),
        small.slice(10..20)
    );
    assert_eq!(
        storage.get_range("a/b/small.sst", 990..1000).await.unwrap(),
        small.slice(990..)
    );
    assert_eq!(
        storage.get_range("a/b/small.sst", 5..5).await.unwrap(),
        Bytes::new()
    );
    assert!(
        storage.get_range("a/b/small.sst", 990..1001).await.is_err(),
        "{name}"
    );

    // Streamed writes: below one part (single put) and multipart.
    let mut w = storage.writer("a/streamed-small").await.unwrap();
    w.write(data(100, 2)).await.unwrap();
    w.write(data(50, 3)).await.unwrap();
    assert_eq!(w.finish().await.unwrap(), 150);
    let mut expect = data(100, 2).to_vec();
    expect.extend_from_slice(&data(50, 3));
    assert_eq!(storage.get("a/streamed-small").await.unwrap(), expect);

    let big = data(3 * part + 12_345, 4);
    let mut w = storage.writer("a/b/c/big.sst").await.unwrap();
    for chunk in big.chunks(part / 3 + 7) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(w.finish().await.unwrap(), big.len() as u64);
    assert_eq!(storage.get("a/b/c/big.sst").await.unwrap(), big, "{name}");
    assert_eq!(
        storage.size("a/b/c/big.sst").await.unwrap(),
        Some(big.len() as u64)
    );
    let mid = (part as u64 - 10)..(part as u64 + 10);
    assert_eq!(
        storage
            .get_range("a/b/c/big.sst", mid.clone())
            .await
            .unwrap(),
        big.slice(mid.start as usize..mid.end as usize)
    );

    // A writer for a taken name fails, at the latest on finish.
    let taken = async {
        let mut w = storage.writer("a/b/small.sst").await?;
        w.write(data(10, 5)).await?;
        w.finish().await
    };
    assert!(taken.await.unwrap_err().is_already_exists(), "{name}");
    // A name taken while a streamed (multipart) write is under way: exactly
    // one writer wins and the object is the winner's. (Azure counts a blob
    // with uncommitted blocks as existing, so there the put loses.)
    let mut w = storage.writer("a/race").await.unwrap();
    w.write(data(part + 1, 6)).await.unwrap();
    let put = storage.put("a/race", data(7, 7)).await;
    w.write(data(10, 8)).await.unwrap();
    let finished = w.finish().await;
    match put {
        Ok(()) => {
            assert!(finished.unwrap_err().is_already_exists(), "{name}");
            assert_eq!(
                storage.get("a/race").await.unwrap(),
                data(7, 7),
                "{name}: overwritten"
            );
        }
        Err(e) => {
            assert!(e.is_already_exists(), "{name}: {e}");
            assert_eq!(finished.unwrap(), part as u64 + 11);
            assert_eq!(
                storage.size("a/race").await.unwrap(),
                Some(part as u64 + 11)
            );
        }
    }
    // Same, below one part (published by the final create-only put).
    let mut w = storage.writer("a/race-small").await.unwrap();
    w.write(data(10, 6)).await.unwrap();
    storage.put("a/race-small", data(7, 7)).await.unwrap();
    assert!(w.finish().await.unwrap_err().is_already_exists(), "{name}");
    assert_eq!(storage.get("a/race-small").await.unwrap(), data(7, 7));

    // Abandoned writes leave nothing visible.
    let mut w = storage.writer("a/aborted").await.unwrap();
    w.write(data(part + 5, 9)).await.unwrap();
    w.abort().await.unwrap();
    let mut w = storage.writer("a/dropped").await.unwrap();
    w.write(data(part + 5, 9)).await.unwrap();
    drop(w);
    let mut w = storage.writer("a/dropped-small").await.unwrap();
    w.write(data(5, 9)).await.unwrap();
    drop(w);
    for gone in ["a/aborted", "a/dropped", "a/dropped-small"] {
        assert_eq!(storage.size(gone).await.unwrap(), None, "{name}: {gone}");
    }

    // Listing.
    let all = storage.list("", false).await.unwrap();
    let paths: Vec<&str> = all.objects.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "a/b/c/big.sst",
            "a/b/small.sst",
            "a/race",
            "a/race-small",
            "a/streamed-small",
            "empty"
        ],
        "{name}"
    );
    assert!(all.prefixes.is_empty());
    let top = storage.list("", true).await.unwrap();
    assert_eq!(
        top.objects,
        vec![ObjectMeta {
            path: "empty".into(),
            size: 0
        }],
        "{name}"
    );
    assert_eq!(top.prefixes, vec!["a".to_string()], "{name}");
    let a = storage.list("a", true).await.unwrap();
    let a_objects: Vec<&str> = a.objects.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(
        a_objects,
        ["a/race", "a/race-small", "a/streamed-small"],
        "{name}"
    );
    assert_eq!(a.prefixes, vec!["a/b".to_string()], "{name}");
    let ab = storage.list("a/b/", false).await.unwrap();
    assert_eq!(
        ab.objects,
        vec![
            ObjectMeta {
                path: "a/b/c/big.sst".into(),
                size: big.len() as u64
            },
            ObjectMeta {
                path: "a/b/small.sst".into(),
                size: 1000
            },
        ],
        "{name}"
    );
    assert_eq!(
        storage.list("nothing/here", true).await.unwrap(),
        Default::default()
    );

    // Bad object paths are refused before reaching the backend.
    for bad in ["", "/abs", "a/../b", "a//b", "./a"] {
        let err = storage.put(bad, Bytes::new()).await.unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidPath { .. }),
            "{name}: {bad}: {err}"
        );
    }
}

#[tokio::test]
async fn memory() {
    let ctx = common::context();
    conformance(open_memory(&ctx), ctx.part_size).await;
}

#[tokio::test]
async fn file() {
    let dir = tempfile::tempdir().unwrap();
    let uri = StorageUri::parse(&format!("file://{}/backups", dir.path().display())).unwrap();
    let ctx = common::context();
    let storage = open(&uri, &ctx).unwrap();
    conformance(storage, ctx.part_size).await;
    // No staging files are left behind.
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            assert!(
                !e.file_name().to_string_lossy().contains('#'),
                "{:?}",
                e.path()
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
}

#[tokio::test]
async fn nodelocal() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = common::context();
    ctx.nodelocal_dirs.insert(1, dir.path().join("n1"));
    ctx.nodelocal_dirs.insert(2, dir.path().join("n2"));
    ctx.local_node = Some(2);
    let storage = open(&StorageUri::parse("nodelocal://1/backups/x").unwrap(), &ctx).unwrap();
    conformance(storage, ctx.part_size).await;
    assert!(dir.path().join("n1/backups/x/a/b/small.sst").is_file());
    // `self` is the local node.
    let this = open(&StorageUri::parse("nodelocal://self/y").unwrap(), &ctx).unwrap();
    this.put("f", Bytes::from_static(b"x")).await.unwrap();
    assert!(dir.path().join("n2/y/f").is_file());
    // An unknown node is an error naming it.
    let err = open(&StorageUri::parse("nodelocal://7/y").unwrap(), &ctx).unwrap_err();
    assert!(err.to_string().contains("node 7"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn nodelocal_symlink_escape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"s").unwrap();
    let node = dir.path().join("n1");
    std::fs::create_dir_all(node.join("base")).unwrap();
    std::os::unix::fs::symlink(&outside, node.join("link")).unwrap();
    std::os::unix::fs::symlink(&outside, node.join("base/inner")).unwrap();
    let mut ctx = common::context();
    ctx.nodelocal_dirs.insert(1, node);
    // The base path itself goes through the symlink.
    let err = open(&StorageUri::parse("nodelocal://1/link/x").unwrap(), &ctx).unwrap_err();
    assert!(err.to_string().contains("escapes"), "{err}");
    // An object path goes through a symlink inside the base.
    let storage = open(&StorageUri::parse("nodelocal://1/base").unwrap(), &ctx).unwrap();
    let err = storage.get("inner/secret").await.unwrap_err();
    assert!(
        matches!(err, StorageError::PermissionDenied { .. }),
        "{err}"
    );
    let err = storage
        .put("inner/new", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::PermissionDenied { .. }),
        "{err}"
    );
    assert!(!outside.join("new").exists());
}

#[tokio::test]
async fn userfile() {
    let mut ctx = common::context();
    let backend = Arc::new(MemoryUserfiles::new());
    ctx.userfile = Some(backend.clone());
    let uri = StorageUri::parse("userfile://defaultdb.public.userfiles_root/backups").unwrap();
    conformance(open(&uri, &ctx).unwrap(), ctx.part_size).await;
    // The files are in the host's backend, under the URI's table and path.
    use backup_storage::UserfileBackend;
    let got = backend
        .get("defaultdb.public.userfiles_root", "backups/a/b/small.sst")
        .await
        .unwrap();
    assert_eq!(got.len(), 1000);
    // Without a backend, userfile:// is a clear error.
    let err = open(&uri, &StorageContext::default()).unwrap_err();
    assert!(err.to_string().contains("userfile"), "{err}");
}

#[tokio::test]
async fn s3_moto() {
    let Some(endpoint) = common::endpoint("BACKUP_TEST_S3_ENDPOINT", "s3_moto") else {
        return;
    };
    let bucket = common::unique("conformance");
    common::create_bucket(&endpoint, &bucket, false).await;
    let uri = StorageUri::parse(&common::s3_uri(&endpoint, &bucket, "base/path", "")).unwrap();
    let ctx = common::context();
    // S3 parts are at least 5 MiB.
    conformance(open(&uri, &ctx).unwrap(), 5 * 1024 * 1024).await;
}

#[tokio::test]
async fn azure_azurite() {
    let Some(endpoint) = common::endpoint("BACKUP_TEST_AZURE_ENDPOINT", "azure_azurite") else {
        return;
    };
    let container = common::unique("conformance");
    common::create_container(&endpoint, &container).await;
    let uri = StorageUri::parse(&common::azure_uri(&container, "base/path")).unwrap();
    let mut ctx = common::context();
    ctx.endpoint_override = Some(format!("{endpoint}/{}", common::AZURITE_ACCOUNT));
    conformance(open(&uri, &ctx).unwrap(), ctx.part_size).await;
}
