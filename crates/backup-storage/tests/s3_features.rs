//! S3 specifics on moto_server: Object Lock buckets and storage classes,
//! checked by asking the server directly.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use backup_storage::{ExternalStorage, StorageUri, open};
use bytes::Bytes;
use futures::StreamExt;

fn payload(i: usize, len: usize) -> Bytes {
    (0..len).map(|j| (i * 7 + j) as u8).collect()
}

async fn head(endpoint: &str, bucket: &str, key: &str) -> reqwest::header::HeaderMap {
    let resp = common::http()
        .head(format!("{endpoint}/{bucket}/{key}"))
        // moto refuses anonymous object reads but does not check signatures.
        .header("Authorization", common::FAKE_S3_AUTH)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "HEAD {key}: {}", resp.status());
    resp.headers().clone()
}

async fn write_multipart(storage: &dyn ExternalStorage, path: &str, len: usize, seed: usize) {
    let data = payload(seed, len);
    let mut w = storage.writer(path).await.unwrap();
    for chunk in data.chunks(1024 * 1024) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(w.finish().await.unwrap(), len as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_lock_bucket_keeps_every_object() {
    let Some(endpoint) = common::endpoint("BACKUP_TEST_S3_ENDPOINT", "object_lock") else {
        return;
    };
    let bucket = common::unique("locked");
    common::create_bucket(&endpoint, &bucket, true).await;
    common::set_default_retention(&endpoint, &bucket).await;
    let uri = StorageUri::parse(&common::s3_uri(&endpoint, &bucket, "backup", "")).unwrap();
    let storage: Arc<dyn ExternalStorage> = open(&uri, &common::context()).unwrap();

    // A few hundred single puts, concurrently, plus multipart writes.
    const SINGLE: usize = 300;
    const MULTI: usize = 3;
    let multi_len = 11 * 1024 * 1024 + 17;
    futures::stream::iter(0..SINGLE)
        .map(|i| {
            let storage = Arc::clone(&storage);
            async move {
                storage
                    .put(&format!("data/{i:04}.sst"), payload(i, 100 + i))
                    .await
            }
        })
        .buffer_unordered(16)
        .for_each(|r| async move { r.unwrap() })
        .await;
    for i in 0..MULTI {
        write_multipart(storage.as_ref(), &format!("big/{i}.sst"), multi_len, i).await;
    }

    // Every overwrite attempt is refused, single and streamed.
    for i in (0..SINGLE).step_by(10) {
        let err = storage
            .put(&format!("data/{i:04}.sst"), Bytes::from_static(b"evil"))
            .await
            .unwrap_err();
        assert!(err.is_already_exists(), "{err}");
    }
    for i in 0..MULTI {
        let err = storage.writer(&format!("big/{i}.sst")).await.err().unwrap();
        assert!(err.is_already_exists(), "{err}");
    }

    // The bucket is versioned (Object Lock): an overwrite or a delete would
    // leave a second version or a delete marker. There must be none.
    let resp = common::http()
        .get(format!("{endpoint}/{bucket}?versions"))
        .send()
        .await
        .unwrap();
    let body = resp.text().await.unwrap();
    assert_eq!(
        body.matches("<Version>").count(),
        SINGLE + MULTI,
        "{body:.2000}"
    );
    assert!(!body.contains("<DeleteMarker>"), "{body:.2000}");

    // Single puts carry the bucket's default retention (moto does not lock
    // multipart uploads), and every object reads back as written.
    for i in 0..SINGLE {
        let key = format!("data/{i:04}.sst");
        if i % 25 == 0 {
            let headers = head(&endpoint, &bucket, &format!("backup/{key}")).await;
            assert_eq!(
                headers
                    .get("x-amz-object-lock-mode")
                    .map(|v| v.to_str().unwrap()),
                Some("GOVERNANCE"),
                "{headers:?}"
            );
            assert!(headers.contains_key("x-amz-object-lock-retain-until-date"));
        }
        assert_eq!(
            storage.get(&key).await.unwrap(),
            payload(i, 100 + i),
            "{key}"
        );
    }
    for i in 0..MULTI {
        let got = storage.get(&format!("big/{i}.sst")).await.unwrap();
        assert_eq!(got, payload(i, multi_len));
    }
}

#[tokio::test]
async fn storage_class_is_on_every_object() {
    let Some(endpoint) = common::endpoint("BACKUP_TEST_S3_ENDPOINT", "storage_class") else {
        return;
    };
    let bucket = common::unique("classes");
    common::create_bucket(&endpoint, &bucket, false).await;
    for class in [
        "INTELLIGENT_TIERING",
        "STANDARD_IA",
        "ONEZONE_IA",
        "GLACIER_IR",
    ] {
        let base = class.to_ascii_lowercase();
        let raw = common::s3_uri(
            &endpoint,
            &bucket,
            &base,
            &format!("&S3_STORAGE_CLASS={class}"),
        );
        let storage = open(&StorageUri::parse(&raw).unwrap(), &common::context()).unwrap();
        storage.put("single", payload(1, 1000)).await.unwrap();
        let mut keys = vec!["single"];
        if class == "INTELLIGENT_TIERING" {
            write_multipart(storage.as_ref(), "multipart", 11 * 1024 * 1024, 2).await;
            let mut w = storage.writer("streamed-small").await.unwrap();
            w.write(payload(3, 10)).await.unwrap();
            w.finish().await.unwrap();
            keys.extend(["multipart", "streamed-small"]);
        }
        for key in keys {
            let headers = head(&endpoint, &bucket, &format!("{base}/{key}")).await;
            assert_eq!(
                headers
                    .get("x-amz-storage-class")
                    .map(|v| v.to_str().unwrap()),
                Some(class),
                "{class} {key}: {headers:?}"
            );
        }
    }
    // And without the parameter, objects are STANDARD (S3 omits the header).
    let raw = common::s3_uri(&endpoint, &bucket, "plain", "");
    let storage = open(&StorageUri::parse(&raw).unwrap(), &common::context()).unwrap();
    storage.put("single", payload(1, 10)).await.unwrap();
    let headers = head(&endpoint, &bucket, "plain/single").await;
    let class = headers
        .get("x-amz-storage-class")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        class.is_none() || class.as_deref() == Some("STANDARD"),
        "{class:?}"
    );
}
