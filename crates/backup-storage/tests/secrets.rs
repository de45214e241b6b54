//! Distinctive secrets go through every error path; no Display or Debug of an
//! error, URI or storage may contain them.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use backup_storage::{ExternalStorage, StorageError, StorageUri, open, redact_uri};
use base64::Engine as _;
use bytes::Bytes;

const S3_SECRET: &str = "LEAKs3secretQ7zX";
const S3_TOKEN: &str = "LEAKsessionTOKq9";
const AZURE_RAW: &str = "LEAKazureKEYbytes";
const GCS_PRIVATE: &str = "LEAKgcpPRIVATEkey";

fn azure_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(AZURE_RAW)
}

fn gcs_credentials() -> String {
    let json = format!(
        r#"{{"type":"service_account","client_email":"x@y.iam.gserviceaccount.com","private_key_id":"id","private_key":"-----BEGIN PRIVATE KEY-----\n{GCS_PRIVATE}\n-----END PRIVATE KEY-----\n"}}"#
    );
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

fn secrets() -> Vec<String> {
    vec![
        S3_SECRET.into(),
        S3_TOKEN.into(),
        AZURE_RAW.into(),
        azure_key(),
        GCS_PRIVATE.into(),
        gcs_credentials(),
    ]
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn s3(endpoint: &str, extra: &str) -> String {
    format!(
        "s3://bucket/p?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY={S3_SECRET}&AWS_SESSION_TOKEN={S3_TOKEN}&AWS_ENDPOINT={}{extra}",
        enc(endpoint)
    )
}

fn azure(extra: &str) -> String {
    format!(
        "azure://cont/p?AZURE_ACCOUNT_NAME=acct&AZURE_ACCOUNT_KEY={}{extra}",
        enc(&azure_key())
    )
}

fn gcs(extra: &str) -> String {
    format!(
        "gs://bucket/p?AUTH=specified&CREDENTIALS={}{extra}",
        gcs_credentials()
    )
}

#[derive(Default)]
struct Texts(Vec<(String, String)>);

impl Texts {
    fn error(&mut self, what: &str, err: &StorageError) {
        self.0.push((what.into(), format!("{err} {err:?}")));
    }
    fn add(&mut self, what: &str, text: String) {
        self.0.push((what.into(), text));
    }
    async fn storage_ops(&mut self, what: &str, storage: &Arc<dyn ExternalStorage>) {
        self.add(
            &format!("{what} describe"),
            format!("{} {storage:?}", storage.describe()),
        );
        let results = [
            storage.put("x", Bytes::from_static(b"1")).await.err(),
            storage.get("x").await.err(),
            storage.get_range("x", 0..1).await.err(),
            storage.size("x").await.err(),
            storage.list("", true).await.err(),
            storage.list("", false).await.err(),
            storage.writer("y").await.err(),
        ];
        let mut failures = 0;
        for err in results.iter().flatten() {
            failures += 1;
            self.error(what, err);
        }
        assert!(failures >= 6, "{what}: expected failures, got {failures}");
    }
    fn check(&self) {
        assert!(self.0.len() > 20, "too few texts checked: {}", self.0.len());
        for (what, text) in &self.0 {
            for secret in secrets() {
                for form in [secret.clone(), enc(&secret)] {
                    assert!(!text.contains(&form), "{what} leaks a secret: {text}");
                }
            }
        }
    }
}

#[tokio::test]
async fn no_error_uri_or_storage_text_contains_a_secret() {
    let mut texts = Texts::default();
    let closed = format!("http://127.0.0.1:{}", common::closed_port());
    let ctx = common::context();

    // Bad URIs: unknown parameter, bad values, unparsable, http, misspelled secret.
    let bad = [
        s3(&closed, "&BOGUS=1"),
        s3(&closed, "&S3_STORAGE_CLASS=NOPE"),
        s3(&closed, "&AUTH=implicit"),
        s3(&closed, "&AWS_SESSION_TOKEN=again"),
        format!("s3://[::1?AWS_SECRET_ACCESS_KEY={S3_SECRET}"),
        format!("https://host/p?AWS_SECRET_ACCESS_KEY={S3_SECRET}"),
        format!("s3://b?AWS_ACCESS_KEY_ID=i&AWS_SECRET_ACESS_KEY={S3_SECRET}"),
        azure("&AZURE_ENVIRONMENT=Nowhere"),
        azure("&AWS_REGION=x"),
        gcs("&AUTH=implicit"),
        gcs("&EXTRA=1"),
        format!("nodelocal://1/../x?COCKROACH_LOCALITY=a%3Db&AWS_SECRET_ACCESS_KEY={S3_SECRET}"),
    ];
    for uri in &bad {
        let err = StorageUri::parse(uri).unwrap_err();
        texts.error(uri, &err);
        texts.add("redact_uri", redact_uri(uri));
    }

    // Valid URIs print redacted.
    let good = [
        s3(&closed, "&S3_STORAGE_CLASS=STANDARD"),
        azure(""),
        gcs(""),
    ];
    for uri in &good {
        let parsed = StorageUri::parse(uri).unwrap();
        texts.add(
            "uri",
            format!("{parsed} {parsed:?} {:?}", parsed.location()),
        );
        texts.add("redact_uri", redact_uri(uri));
    }

    // GCS: the key does not hold a usable private key, so opening fails.
    let err = open(&StorageUri::parse(&gcs("")).unwrap(), &ctx).unwrap_err();
    texts.error("gcs open", &err);
    // ASSUME_ROLE: STS unreachable, every operation fails while assuming.
    let assumed = open(
        &StorageUri::parse(&s3(
            &closed,
            "&ASSUME_ROLE=arn:aws:iam::1:role/a,arn:aws:iam::1:role/b",
        ))
        .unwrap(),
        &ctx,
    )
    .unwrap();
    texts.storage_ops("assume role refused", &assumed).await;

    // Connection refused on a closed loopback port, S3 and Azure, every operation.
    let s3_refused = open(&StorageUri::parse(&s3(&closed, "")).unwrap(), &ctx).unwrap();
    texts.storage_ops("s3 refused", &s3_refused).await;
    let err = s3_refused.get("x").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let mut az_ctx = common::context();
    az_ctx.endpoint_override = Some(format!("{closed}/acct"));
    let az_refused = open(&StorageUri::parse(&azure("")).unwrap(), &az_ctx).unwrap();
    texts.storage_ops("azure refused", &az_refused).await;

    // Not found and already exists, on moto (which ignores signatures, so
    // the distinctive secrets are accepted) when it runs.
    if let Some(endpoint) = common::endpoint("BACKUP_TEST_S3_ENDPOINT", "secrets (moto part)") {
        let bucket = common::unique("secrets");
        common::create_bucket(&endpoint, &bucket, false).await;
        let uri = s3(&endpoint, "").replace("s3://bucket/", &format!("s3://{bucket}/"));
        let storage = open(&StorageUri::parse(&uri).unwrap(), &ctx).unwrap();
        let err = storage.get("missing").await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        texts.error("not found", &err);
        storage
            .put("taken", Bytes::from_static(b"1"))
            .await
            .unwrap();
        let err = storage
            .put("taken", Bytes::from_static(b"2"))
            .await
            .unwrap_err();
        assert!(err.is_already_exists(), "{err}");
        texts.error("already exists", &err);
        let err = storage.get_range("taken", 0..10).await.unwrap_err();
        texts.error("out of range", &err);
        texts.add("storage", format!("{} {storage:?}", storage.describe()));

        // The same through an assumed role (moto's STS).
        let assumed = open(
            &StorageUri::parse(&format!(
                "{uri}&ASSUME_ROLE=arn:aws:iam::123456789012:role/b"
            ))
            .unwrap(),
            &ctx,
        )
        .unwrap();
        let err = assumed.get("missing").await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        texts.error("assumed not found", &err);
        let err = assumed
            .put("taken", Bytes::from_static(b"3"))
            .await
            .unwrap_err();
        assert!(err.is_already_exists(), "{err}");
        texts.error("assumed already exists", &err);
        texts.add(
            "assumed storage",
            format!("{} {assumed:?}", assumed.describe()),
        );
    }
    texts.check();
}
