//! Shared test helpers: finding the loopback S3/Azure servers and creating
//! buckets and containers on them.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backup_storage::{RetryPolicy, StorageContext};
use base64::Engine as _;

/// Azurite's public development account (documented by Microsoft).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's public development key (documented by Microsoft).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An Authorization header moto accepts (it does not verify signatures,
/// but refuses anonymous object reads).
pub const FAKE_S3_AUTH: &str = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";

/// The server endpoint in `var`, or `None` after printing why the test skips.
/// With `BACKUP_TEST_REQUIRE_SERVERS=1` a missing endpoint fails the test.
pub fn endpoint(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => {
            assert!(
                v.starts_with("http://127.0.0.1:"),
                "{var}={v}: tests only talk to 127.0.0.1"
            );
            Some(v)
        }
        _ => {
            if std::env::var("BACKUP_TEST_REQUIRE_SERVERS").as_deref() == Ok("1") {
                panic!("{test}: {var} is not set but BACKUP_TEST_REQUIRE_SERVERS=1");
            }
            println!(
                "{test}: skipped: no server ({var} is not set; `cargo xtask test` starts one)"
            );
            None
        }
    }
}

/// A name unique to this run.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// A retry policy that keeps failing tests fast.
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

/// Context for tests: small parts so multipart paths run on small objects.
pub fn context() -> StorageContext {
    StorageContext {
        retry: quick_retry(),
        part_size: 1024 * 1024,
        request_timeout: Duration::from_secs(30),
        ..StorageContext::default()
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Creates a moto bucket (moto does not check signatures).
pub async fn create_bucket(endpoint: &str, bucket: &str, object_lock: bool) {
    let mut req = http().put(format!("{endpoint}/{bucket}"));
    if object_lock {
        req = req.header("x-amz-bucket-object-lock-enabled", "true");
    }
    let resp = req.send().await.unwrap();
    assert!(
        resp.status().is_success(),
        "create bucket: {}",
        resp.status()
    );
}

/// Sets a default GOVERNANCE retention of one day on a lock bucket.
pub async fn set_default_retention(endpoint: &str, bucket: &str) {
    let body = r#"<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>"#;
    let resp = http()
        .put(format!("{endpoint}/{bucket}?object-lock"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "object lock config: {status} {text}");
}

/// An S3 URI for a moto bucket.
pub fn s3_uri(endpoint: &str, bucket: &str, base: &str, extra: &str) -> String {
    let ep: String = url::form_urlencoded::byte_serialize(endpoint.as_bytes()).collect();
    format!(
        "s3://{bucket}/{base}?AWS_ACCESS_KEY_ID=testing&AWS_SECRET_ACCESS_KEY=testing-secret&AWS_REGION=us-east-1&AWS_ENDPOINT={ep}{extra}"
    )
}

/// An Azure URI for Azurite, and the endpoint override it needs.
pub fn azure_uri(container: &str, base: &str) -> String {
    let key: String = url::form_urlencoded::byte_serialize(AZURITE_KEY.as_bytes()).collect();
    format!(
        "azure://{container}/{base}?AZURE_ACCOUNT_NAME={AZURITE_ACCOUNT}&AZURE_ACCOUNT_KEY={key}"
    )
}

/// Creates an Azurite container with a SharedKey-signed request.
pub async fn create_container(endpoint: &str, container: &str) {
    let date = http_date(SystemTime::now());
    let version = "2021-08-06";
    let resource = format!("/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container");
    let to_sign =
        format!("PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}");
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .unwrap();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let signature = base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let resp = http()
        .put(format!(
            "{endpoint}/{AZURITE_ACCOUNT}/{container}?restype=container"
        ))
        .header("x-ms-date", &date)
        .header("x-ms-version", version)
        .header("Content-Length", "0")
        .header(
            "Authorization",
            format!("SharedKey {AZURITE_ACCOUNT}:{signature}"),
        )
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "create container: {status} {text}");
}

/// RFC 1123 date, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn http_date_is_rfc1123() {
    let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
    assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
}
