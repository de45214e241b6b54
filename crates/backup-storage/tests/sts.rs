//! `ASSUME_ROLE`: SigV4 against AWS's published examples, the STS request and
//! response handling, the caching provider against a scripted STS on
//! 127.0.0.1, and the whole path through `open` against moto.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backup_storage::sts::{
    AssumeRoleProvider, AssumeRoleRequest, SigV4Request, SigV4Signer, StsError, parse_response,
    sha256_hex, signing_key,
};
use backup_storage::{StorageError, StorageUri, open};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use object_store::CredentialProvider;
use object_store::aws::AwsCredential;
use object_store::client::StaticCredentialProvider;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The example secret of AWS's Signature Version 4 documentation and test suite.
const AWS_EXAMPLE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const BASE_SECRET: &str = "LEAKbaseSECRETx81";
const BASE_TOKEN: &str = "LEAKbaseTOKENq55";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// AWS SigV4 test suite, "get-vanilla": GET / on example.amazonaws.com,
// 2015-08-30 12:36:00, key AKIDEXAMPLE, region us-east-1, service "service".
#[test]
fn sigv4_matches_aws_test_suite_get_vanilla() {
    assert_eq!(sha256_hex(b""), EMPTY_SHA256);
    let signer = SigV4Signer {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: AWS_EXAMPLE_SECRET,
        region: "us-east-1",
        service: "service",
    };
    let auth = signer.authorization(
        &SigV4Request {
            method: "GET",
            canonical_uri: "/",
            canonical_query: "",
            headers: &[
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            payload_sha256: EMPTY_SHA256,
        },
        "20150830T123600Z",
    );
    assert_eq!(
        auth,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    // Debug of the signer never shows the secret.
    assert!(!format!("{signer:?}").contains(AWS_EXAMPLE_SECRET));
}

// The worked example of AWS's "Signature Version 4 signing process" pages:
// IAM ListUsers, GET with a form content type, same key and time.
#[test]
fn sigv4_matches_aws_documentation_iam_example() {
    assert_eq!(
        hex(&signing_key(
            AWS_EXAMPLE_SECRET,
            "20150830",
            "us-east-1",
            "iam"
        )),
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    );
    let signer = SigV4Signer {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: AWS_EXAMPLE_SECRET,
        region: "us-east-1",
        service: "iam",
    };
    let auth = signer.authorization(
        &SigV4Request {
            method: "GET",
            canonical_uri: "/",
            canonical_query: "Action=ListUsers&Version=2010-05-08",
            headers: &[
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
                ("Host", "iam.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            payload_sha256: EMPTY_SHA256,
        },
        "20150830T123600Z",
    );
    assert_eq!(
        auth,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    );
}

fn base_credential() -> AwsCredential {
    AwsCredential {
        key_id: "AKIDBASE".into(),
        secret_key: BASE_SECRET.into(),
        token: Some(BASE_TOKEN.into()),
    }
}

fn request(endpoint: &str, role: &str) -> AssumeRoleRequest {
    let mut r = AssumeRoleRequest::new(endpoint.parse().unwrap(), "eu-west-3", role);
    r.session_name = "backup-test".into();
    r
}

#[test]
fn assume_role_request_is_a_signed_form_post() {
    let req = request(
        "https://sts.eu-west-3.amazonaws.com",
        "arn:aws:iam::123456789012:role/backup",
    );
    assert_eq!(
        req.body(),
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fbackup&RoleSessionName=backup-test&DurationSeconds=3600"
    );
    let now = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let signed = req.sign(&base_credential(), now);
    assert_eq!(signed.url.as_str(), "https://sts.eu-west-3.amazonaws.com/");
    assert_eq!(signed.body, req.body());
    let header = |name: &str| {
        signed
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {signed:?}"))
    };
    assert_eq!(header("x-amz-date"), "20260102T030405Z");
    assert_eq!(header("x-amz-security-token"), BASE_TOKEN);
    assert_eq!(
        header("x-amz-content-sha256"),
        sha256_hex(signed.body.as_bytes())
    );
    assert!(header("content-type").starts_with("application/x-www-form-urlencoded"));
    let auth = header("authorization");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDBASE/20260102/eu-west-3/sts/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="),
        "{auth}"
    );
    // The signature is the SigV4 of exactly these headers plus host.
    let mut to_sign: Vec<(&str, &str)> = signed
        .headers
        .iter()
        .filter(|(k, _)| k != "authorization")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    to_sign.push(("host", "sts.eu-west-3.amazonaws.com"));
    let hash = sha256_hex(signed.body.as_bytes());
    let expected = SigV4Signer {
        access_key_id: "AKIDBASE",
        secret_access_key: BASE_SECRET,
        region: "eu-west-3",
        service: "sts",
    }
    .authorization(
        &SigV4Request {
            method: "POST",
            canonical_uri: "/",
            canonical_query: "",
            headers: &to_sign,
            payload_sha256: &hash,
        },
        "20260102T030405Z",
    );
    assert_eq!(auth, expected);
    // Deterministic, and the secret matters.
    assert_eq!(req.sign(&base_credential(), now).headers, signed.headers);
    let mut other = base_credential();
    other.secret_key = "another".into();
    assert_ne!(req.sign(&other, now).headers.last(), signed.headers.last());
    // Ports are part of the signed host.
    let local = request("http://127.0.0.1:4566", "arn:aws:iam::1:role/r");
    assert!(
        local
            .sign(&base_credential(), now)
            .url
            .as_str()
            .starts_with("http://127.0.0.1:4566/")
    );

    // Debug shows neither the secret, the token nor the signature.
    let debug = format!("{signed:?} {req:?}");
    let signature = auth.rsplit("Signature=").next().unwrap().to_string();
    for secret in [BASE_SECRET, BASE_TOKEN, signature.as_str()] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(debug.contains("RoleArn"), "{debug}");
}

fn success_xml(key: &str, secret: &str, token: &str, expiration: &str) -> String {
    format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/backup/s</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{key}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{token}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#
    )
}

fn error_xml(code: &str, message: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"#
    )
}

const ROLE: &str = "arn:aws:iam::123456789012:role/backup";

#[test]
fn responses_parse_into_credentials_or_typed_errors() {
    let body = success_xml(
        "ASIAEXAMPLE",
        "LEAKtemp/secret+k&amp;y",
        "LEAKtempTOKEN==",
        "2026-11-24T22:35:40.037890Z",
    );
    let creds = parse_response(ROLE, 200, &body).unwrap();
    assert_eq!(creds.access_key_id, "ASIAEXAMPLE");
    assert_eq!(creds.secret_access_key.expose(), "LEAKtemp/secret+k&y");
    assert_eq!(creds.session_token.expose(), "LEAKtempTOKEN==");
    assert_eq!(
        creds.expiration,
        Utc.with_ymd_and_hms(2026, 11, 24, 22, 35, 40).unwrap()
            + chrono::Duration::microseconds(37890)
    );
    let debug = format!("{creds:?}");
    assert!(
        debug.contains("ASIAEXAMPLE") && !debug.contains("LEAK"),
        "{debug}"
    );

    let denied = parse_response(
        ROLE,
        403,
        &error_xml(
            "AccessDenied",
            "User: arn:aws:iam::1:user/u is not authorized to perform: sts:AssumeRole",
        ),
    )
    .unwrap_err();
    assert!(denied.is_denied(), "{denied}");
    assert!(
        denied.to_string().contains(ROLE) && denied.to_string().contains("not authorized"),
        "{denied}"
    );
    let bad_key = parse_response(ROLE, 403, &error_xml("InvalidClientTokenId", "no")).unwrap_err();
    assert!(bad_key.is_denied(), "{bad_key}");

    let throttled =
        parse_response(ROLE, 400, &error_xml("Throttling", "Rate exceeded")).unwrap_err();
    assert!(throttled.is_transient(), "{throttled}");
    let unavailable = parse_response(ROLE, 503, "<html><body>LEAKbody</body></html>").unwrap_err();
    assert!(unavailable.is_transient(), "{unavailable}");
    assert!(
        !unavailable.to_string().contains("LEAKbody"),
        "{unavailable}"
    );

    let invalid = parse_response(ROLE, 400, &error_xml("ValidationError", "bad arn")).unwrap_err();
    assert!(
        matches!(&invalid, StsError::Rejected { status: 400, code, .. } if code == "ValidationError"),
        "{invalid:?}"
    );

    // Success status, unusable body: never echoed (it may hold half a secret).
    for body in [
        "".to_string(),
        "not xml at all".to_string(),
        success_xml("ASIA1", "LEAKs", "", "2026-01-01T00:00:00Z"),
        success_xml("ASIA1", "LEAKs", "LEAKt", "tomorrow"),
        "<AssumeRoleResponse><Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>LEAKs"
            .to_string(),
    ] {
        let err = parse_response(ROLE, 200, &body).unwrap_err();
        assert!(matches!(err, StsError::Malformed { .. }), "{err:?}");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("LEAK"), "{text}");
    }
}

/// One HTTP request as a test server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn is_sts(&self) -> bool {
        self.header("authorization")
            .is_some_and(|a| a.contains("/sts/aws4_request"))
    }
    /// The access key id of the Authorization header.
    fn key_id(&self) -> Option<String> {
        let auth = self.header("authorization")?;
        let cred = auth.split("Credential=").nth(1)?;
        Some(cred.split('/').next()?.to_string())
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

type Handler = Arc<
    dyn Fn(Seen) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>
        + Send
        + Sync,
>;

/// A minimal HTTP/1.1 server on 127.0.0.1 that records every request and
/// answers through `handler`.
async fn serve(handler: Handler) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = Arc::clone(&handler);
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let _ = connection(stream, handler, log).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

async fn connection(
    mut stream: TcpStream,
    handler: Handler,
    log: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let path = first.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        assert!(
            !headers.iter().any(|(k, _)| k == "transfer-encoding"),
            "chunked requests are not expected: {headers:?}"
        );
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        buf.drain(..head_end + 4);
        while buf.len() < len {
            let mut chunk = [0u8; 65536];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Vec<u8> = buf.drain(..len).collect();
        let seen = Seen {
            method: method.clone(),
            path,
            headers,
            body,
        };
        log.lock().unwrap().push(seen.clone());
        let reply = handler(seen).await;
        let mut out = format!("HTTP/1.1 {} X\r\n", reply.status);
        let mut has_length = false;
        for (k, v) in &reply.headers {
            has_length |= k.eq_ignore_ascii_case("content-length");
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !has_length {
            out.push_str(&format!("content-length: {}\r\n", reply.body.len()));
        }
        out.push_str("\r\n");
        stream.write_all(out.as_bytes()).await?;
        if method != "HEAD" {
            stream.write_all(&reply.body).await?;
        }
    }
}

/// A scripted STS: answers AssumeRole with the next of `replies` (the last
/// one repeats); anything else gets a 400.
async fn scripted_sts(replies: Vec<(u16, String)>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
    serve(Arc::new(move |seen: Seen| {
        let replies = Arc::clone(&replies);
        Box::pin(async move {
            let body = String::from_utf8_lossy(&seen.body).to_string();
            if seen.method != "POST" || !body.contains("Action=AssumeRole") {
                return Reply {
                    status: 400,
                    headers: vec![],
                    body: b"not STS".to_vec(),
                };
            }
            let mut q = replies.lock().unwrap();
            let (status, body) = if q.len() > 1 {
                q.pop_front().unwrap()
            } else {
                q.front().cloned().unwrap()
            };
            Reply {
                status,
                headers: vec![("content-type".into(), "text/xml".into())],
                body: body.into_bytes(),
            }
        })
    }))
    .await
}

fn in_one_hour() -> String {
    (Utc::now() + chrono::Duration::hours(1)).to_rfc3339()
}

fn static_base() -> Arc<dyn CredentialProvider<Credential = AwsCredential>> {
    Arc::new(StaticCredentialProvider::new(base_credential()))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn provider_caches_refreshes_and_chains() {
    let hour = in_one_hour();
    let (endpoint, seen) = scripted_sts(vec![
        (
            200,
            success_xml("ASIAHOP1", "LEAKsecret1", "LEAKtoken1", &hour),
        ),
        (
            200,
            success_xml("ASIAHOP2", "LEAKsecret2", "LEAKtoken2", &hour),
        ),
        (
            200,
            success_xml("ASIAHOP3", "LEAKsecret3", "LEAKtoken3", &hour),
        ),
    ])
    .await;
    let first = Arc::new(AssumeRoleProvider::new(
        static_base(),
        request(&endpoint, "arn:aws:iam::1:role/first"),
        client(),
    ));
    let second = AssumeRoleProvider::new(
        first.clone(),
        request(&endpoint, "arn:aws:iam::2:role/second"),
        client(),
    );
    // The chain: base → first role → second role.
    let got = second.get_credential().await.unwrap();
    assert_eq!(got.key_id, "ASIAHOP2");
    assert_eq!(got.secret_key, "LEAKsecret2");
    assert_eq!(got.token.as_deref(), Some("LEAKtoken2"));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        let body0 = String::from_utf8_lossy(&seen[0].body).to_string();
        assert!(
            body0.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Ffirst"),
            "{body0}"
        );
        assert_eq!(seen[0].key_id().as_deref(), Some("AKIDBASE"));
        assert_eq!(seen[0].header("x-amz-security-token"), Some(BASE_TOKEN));
        assert!(
            seen[0]
                .header("authorization")
                .unwrap()
                .contains("/eu-west-3/sts/aws4_request")
        );
        // The second hop signs with the first hop's temporary credentials.
        let body1 = String::from_utf8_lossy(&seen[1].body).to_string();
        assert!(body1.contains("role%2Fsecond"), "{body1}");
        assert_eq!(seen[1].key_id().as_deref(), Some("ASIAHOP1"));
        assert_eq!(seen[1].header("x-amz-security-token"), Some("LEAKtoken1"));
    }
    // Cached: no further STS calls, the very same credential.
    let again = second.get_credential().await.unwrap();
    assert!(Arc::ptr_eq(&got, &again));
    assert_eq!(seen.lock().unwrap().len(), 2);
    // Debug shows roles and key ids, no secrets.
    let debug = format!("{second:?}");
    assert!(
        debug.contains("ASIAHOP2") && debug.contains("role/first"),
        "{debug}"
    );
    assert!(!debug.contains("LEAK"), "{debug}");

    // A refresh margin longer than the lifetime: every call refreshes.
    let eager = AssumeRoleProvider::new(
        static_base(),
        request(&endpoint, "arn:aws:iam::3:role/eager"),
        client(),
    )
    .with_refresh_margin(Duration::from_secs(2 * 3600));
    let a = eager.get_credential().await.unwrap();
    let b = eager.get_credential().await.unwrap();
    assert_eq!(
        (a.key_id.as_str(), b.key_id.as_str()),
        ("ASIAHOP3", "ASIAHOP3")
    );
    assert!(!Arc::ptr_eq(&a, &b));
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn refresh_failure_keeps_still_valid_credentials() {
    let (endpoint, seen) = scripted_sts(vec![
        (
            200,
            success_xml("ASIAOLD", "LEAKs", "LEAKt", &in_one_hour()),
        ),
        (503, "<html>down</html>".into()),
    ])
    .await;
    let provider = AssumeRoleProvider::new(static_base(), request(&endpoint, ROLE), client())
        .with_refresh_margin(Duration::from_secs(2 * 3600));
    assert_eq!(provider.get_credential().await.unwrap().key_id, "ASIAOLD");
    // The refresh fails, but the old credentials have an hour left.
    assert_eq!(provider.get_credential().await.unwrap().key_id, "ASIAOLD");
    assert_eq!(seen.lock().unwrap().len(), 2);

    // Expired credentials are never handed out.
    let (endpoint, _) = scripted_sts(vec![
        (
            200,
            success_xml(
                "ASIAGONE",
                "LEAKs",
                "LEAKt",
                &(Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
            ),
        ),
        (503, "<html>down</html>".into()),
    ])
    .await;
    let provider = AssumeRoleProvider::new(static_base(), request(&endpoint, ROLE), client());
    assert_eq!(provider.get_credential().await.unwrap().key_id, "ASIAGONE");
    let err = provider.get_credential().await.unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
}

fn s3_uri_with_role(endpoint: &str, bucket: &str, roles: &str) -> String {
    common::s3_uri(endpoint, bucket, "x", &format!("&ASSUME_ROLE={roles}"))
}

/// STS's refusals and outages surface as typed storage errors naming the
/// object and the role, with no secret in them.
#[tokio::test]
async fn sts_errors_become_storage_errors() {
    type Expect = fn(&StorageError) -> bool;
    let cases: Vec<(u16, String, Expect)> = vec![
        (
            403,
            error_xml("AccessDenied", "not authorized to perform sts:AssumeRole"),
            |e| matches!(e, StorageError::PermissionDenied { .. }),
        ),
        (400, error_xml("Throttling", "Rate exceeded"), |e| {
            e.is_transient()
        }),
        (503, "<html>down</html>".into(), |e| e.is_transient()),
        (400, error_xml("ValidationError", "bad"), |e| {
            matches!(e, StorageError::Permanent { .. })
        }),
        (200, "garbage".into(), |e| {
            matches!(e, StorageError::Permanent { .. })
        }),
    ];
    for (status, body, expected) in cases {
        let (endpoint, seen) = scripted_sts(vec![(status, body)]).await;
        let raw =
            s3_uri_with_role(&endpoint, "bucket", ROLE).replace("testing-secret", BASE_SECRET);
        let storage = open(&StorageUri::parse(&raw).unwrap(), &common::context()).unwrap();
        let err = storage
            .put("data/1.sst", Bytes::from_static(b"1"))
            .await
            .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(expected(&err), "HTTP {status}: {text}");
        assert!(text.contains("data/1.sst") && text.contains(ROLE), "{text}");
        assert!(!text.contains(BASE_SECRET), "{text}");
        // Only STS was asked; no S3 request went out without credentials.
        let seen = seen.lock().unwrap();
        assert!(
            !seen.is_empty() && seen.iter().all(Seen::is_sts),
            "{seen:?}"
        );
    }

    // An unreachable STS is transient.
    let closed = format!("http://127.0.0.1:{}", common::closed_port());
    let raw = s3_uri_with_role(&closed, "bucket", ROLE);
    let storage = open(&StorageUri::parse(&raw).unwrap(), &common::context()).unwrap();
    let err = storage.get("data/1.sst").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("STS"), "{err}");
}

#[test]
fn bad_role_arns_are_refused_when_parsing() {
    for roles in [
        "role/backup",
        "arn:aws:iam::1:role/a,,arn:aws:iam::1:role/b",
        "",
    ] {
        let raw = format!("s3://b/p?AUTH=implicit&ASSUME_ROLE={roles}");
        let err = StorageUri::parse(&raw).unwrap_err();
        assert!(err.to_string().contains("ASSUME_ROLE"), "{roles}: {err}");
    }
}

/// The whole path on moto: `open` assumes the role (a chain of two) through
/// moto's STS, and every S3 request is signed with the last role's temporary
/// (`ASIA…`) credentials. A recording proxy in front of moto shows which
/// key signed what.
#[tokio::test]
async fn assumed_role_credentials_sign_s3_requests_on_moto() {
    let Some(moto) = common::endpoint("BACKUP_TEST_S3_ENDPOINT", "assume_role_on_moto") else {
        return;
    };
    let bucket = common::unique("assumed");
    common::create_bucket(&moto, &bucket, false).await;

    let upstream = moto.clone();
    let forward = common::http();
    let (proxy, seen) = serve(Arc::new(move |seen: Seen| {
        let url = format!("{upstream}{}", seen.path);
        let forward = forward.clone();
        Box::pin(async move {
            let method = reqwest::Method::from_bytes(seen.method.as_bytes()).unwrap();
            let mut req = forward.request(method, url);
            for (k, v) in &seen.headers {
                if !matches!(k.as_str(), "host" | "content-length" | "connection") {
                    req = req.header(k, v);
                }
            }
            let resp = req.body(seen.body.clone()).send().await.unwrap();
            let status = resp.status().as_u16();
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .filter(|(k, _)| {
                    let k = k.as_str();
                    k != "transfer-encoding"
                        && k != "connection"
                        && (seen.method == "HEAD" || k != "content-length")
                })
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let body = resp.bytes().await.unwrap().to_vec();
            Reply {
                status,
                headers,
                body,
            }
        })
    }))
    .await;

    let roles = "arn:aws:iam::123456789012:role/backup,arn:aws:iam::123456789012:role/writer";
    let raw = s3_uri_with_role(&proxy, &bucket, roles);
    let storage = open(&StorageUri::parse(&raw).unwrap(), &common::context()).unwrap();
    storage
        .put("data/1.sst", Bytes::from_static(b"assumed"))
        .await
        .unwrap();
    assert_eq!(storage.get("data/1.sst").await.unwrap(), "assumed");
    assert_eq!(storage.size("data/1.sst").await.unwrap(), Some(7));
    let err = storage
        .put("data/1.sst", Bytes::from_static(b"again"))
        .await
        .unwrap_err();
    assert!(err.is_already_exists(), "{err}");

    let seen = seen.lock().unwrap().clone();
    let (sts, s3): (Vec<&Seen>, Vec<&Seen>) = seen.iter().partition(|s| s.is_sts());
    // Two hops, once each (cached for the later requests).
    assert_eq!(sts.len(), 2, "{sts:?}");
    assert_eq!(sts[0].key_id().as_deref(), Some("testing"));
    let first_role_key = sts[1].key_id().unwrap();
    assert!(first_role_key.starts_with("ASIA"), "{first_role_key}");
    assert!(sts[1].header("x-amz-security-token").is_some());
    // Every S3 request: the second role's key, with its session token.
    assert!(s3.len() >= 4, "{s3:?}");
    let keys: std::collections::BTreeSet<String> = s3.iter().map(|s| s.key_id().unwrap()).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let s3_key = keys.into_iter().next().unwrap();
    assert!(s3_key.starts_with("ASIA"), "{s3_key}");
    assert_ne!(s3_key, first_role_key);
    assert!(
        s3.iter()
            .all(|s| s.header("x-amz-security-token").is_some()),
        "{s3:?}"
    );
    assert!(s3.iter().any(|s| s.path.contains(&bucket)));
}

/// `AUTH=implicit`: the environment's keys call STS. Run in a child process
/// (this test binary again) so the environment can be set for it alone.
#[tokio::test]
async fn implicit_base_credentials_come_from_the_environment() {
    // Re-run as a child process with only the child's environment: then this
    // same test is the child.
    if let Ok(endpoint) = std::env::var("BACKUP_STS_CHILD_ENDPOINT") {
        implicit_child(endpoint).await;
        return;
    }
    let (endpoint, seen) = scripted_sts(vec![(403, error_xml("AccessDenied", "no"))]).await;
    let exe = std::env::current_exe().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([
                "--exact",
                "implicit_base_credentials_come_from_the_environment",
                "--nocapture",
            ])
            .env("BACKUP_STS_CHILD_ENDPOINT", endpoint)
            .env("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
            .env("AWS_SECRET_ACCESS_KEY", BASE_SECRET)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "STS was not called");
    for s in seen.iter() {
        assert!(s.is_sts(), "{s:?}");
        assert_eq!(s.key_id().as_deref(), Some("AKIDFROMENV"));
    }
}

/// The child's side of `implicit_base_credentials_come_from_the_environment`:
/// `AUTH=implicit` must sign STS with the environment's key.
async fn implicit_child(endpoint: String) {
    let ep: String = url::form_urlencoded::byte_serialize(endpoint.as_bytes()).collect();
    let raw = format!("s3://bucket/x?AUTH=implicit&AWS_ENDPOINT={ep}&ASSUME_ROLE={ROLE}");
    let storage = open(&StorageUri::parse(&raw).unwrap(), &common::context()).unwrap();
    let err = storage
        .put("a", Bytes::from_static(b"1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::PermissionDenied { .. }),
        "{err}"
    );
    assert!(!err.to_string().contains(BASE_SECRET), "{err}");
}
