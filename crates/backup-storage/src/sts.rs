//! `ASSUME_ROLE`: a small AWS STS client and the credential provider that
//! hands its temporary credentials to object_store's S3 client.
//!
//! The base credentials (the URI's keys with `AUTH=specified`, or the
//! environment's with `AUTH=implicit`) sign an STS `AssumeRole` request
//! (Signature Version 4, service `sts`) for the first role of `ASSUME_ROLE`;
//! with a comma-separated chain each role's temporary credentials assume the
//! next. The last role's credentials sign the S3 requests. Every hop caches
//! its credentials and asks STS again a few minutes before they expire; when
//! a refresh fails while the old credentials are still valid, those are used
//! (and the failure logged) until they are not.
//!
//! Nothing here ever puts a secret (secret key, session token, signature) in
//! an error, a log line or `Debug` output; access key ids are not secret and
//! do show.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::{digest, hmac};
use chrono::{DateTime, Utc};
use object_store::CredentialProvider;
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::client::StaticCredentialProvider;

use crate::error::StorageError;
use crate::uri::{Auth, S3Config, Secret};

/// Credentials object_store's S3 client signs with.
pub type AwsCredentials = Arc<dyn CredentialProvider<Credential = AwsCredential>>;

/// How long each set of temporary credentials is asked for.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);

/// Credentials are refreshed this long before they expire.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The region STS is asked in when the URI names none.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A failed `AssumeRole`. Holds the role, STS's error code and message, never
/// a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    /// STS refused: the base credentials are wrong or may not assume the role.
    #[error(
        "STS refused to let these credentials assume role {role}: {code}: {message}; check the credentials and the role's trust policy"
    )]
    Denied {
        /// The role ARN.
        role: String,
        /// STS's error code (`AccessDenied`, `InvalidClientTokenId`, …) or the HTTP status.
        code: String,
        /// STS's message.
        message: String,
    },
    /// STS is throttling, unavailable or unreachable; worth retrying.
    #[error("STS AssumeRole for role {role} failed and may succeed later: {cause}")]
    Transient {
        /// The role ARN.
        role: String,
        /// What went wrong.
        cause: String,
    },
    /// STS rejected the request for another reason (a bad ARN, say).
    #[error("STS rejected AssumeRole for role {role}: HTTP {status}: {code}: {message}")]
    Rejected {
        /// The role ARN.
        role: String,
        /// HTTP status.
        status: u16,
        /// STS's error code.
        code: String,
        /// STS's message.
        message: String,
    },
    /// STS answered success with a body that is not an `AssumeRoleResponse`.
    #[error("STS answered AssumeRole for role {role} with an unusable response: {what}")]
    Malformed {
        /// The role ARN.
        role: String,
        /// What is missing or wrong (never the body itself).
        what: String,
    },
}

impl StsError {
    /// True when the credentials may not assume the role.
    pub fn is_denied(&self) -> bool {
        matches!(self, StsError::Denied { .. })
    }

    /// True when retrying later may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, StsError::Transient { .. })
    }

    fn into_object_store(self) -> object_store::Error {
        match &self {
            StsError::Denied { role, .. } => object_store::Error::PermissionDenied {
                path: role.clone(),
                source: Box::new(self),
            },
            _ => object_store::Error::Generic {
                store: "STS",
                source: Box::new(self),
            },
        }
    }
}

/// Temporary credentials returned by `AssumeRole`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporaryCredentials {
    /// Access key id (`ASIA…`); not secret.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Session token.
    pub session_token: Secret,
    /// When they stop working.
    pub expiration: DateTime<Utc>,
}

impl TemporaryCredentials {
    fn to_aws(&self) -> AwsCredential {
        AwsCredential {
            key_id: self.access_key_id.clone(),
            secret_key: self.secret_access_key.expose().to_string(),
            token: Some(self.session_token.expose().to_string()),
        }
    }
}

/// Lower-case hex of bytes.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

/// The SigV4 signing key for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// One request to sign with AWS Signature Version 4.
#[derive(Debug, Clone, Copy)]
pub struct SigV4Request<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// The URI-encoded path (`/` for none).
    pub canonical_uri: &'a str,
    /// The canonical query string (sorted, URI-encoded), empty for none.
    pub canonical_query: &'a str,
    /// Headers to sign; must include `host` and `x-amz-date`. Names are
    /// compared case-insensitively and values trimmed.
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-case hex SHA-256 of the body.
    pub payload_sha256: &'a str,
}

/// Who signs, where: the parts of a SigV4 credential scope.
#[derive(Clone, Copy)]
pub struct SigV4Signer<'a> {
    /// Access key id.
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret_access_key: &'a str,
    /// Region, e.g. `us-east-1`.
    pub region: &'a str,
    /// Service, e.g. `sts`.
    pub service: &'a str,
}

impl fmt::Debug for SigV4Signer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigV4Signer")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"redacted")
            .field("region", &self.region)
            .field("service", &self.service)
            .finish()
    }
}

impl SigV4Signer<'_> {
    /// The `Authorization` header value for `req` at `amz_date`
    /// (`YYYYMMDD'T'HHMMSS'Z'`, the request's `x-amz-date`).
    pub fn authorization(&self, req: &SigV4Request<'_>, amz_date: &str) -> String {
        let date = amz_date.get(..8).unwrap_or(amz_date);
        let mut headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|(k, v)| {
                let value = v.split_whitespace().collect::<Vec<_>>().join(" ");
                (k.to_ascii_lowercase(), value)
            })
            .collect();
        headers.sort();
        let mut canonical_headers = String::new();
        let mut signed: Vec<&str> = Vec::new();
        for (name, value) in &headers {
            if signed.last() == Some(&name.as_str()) {
                // A repeated header: its values join with commas.
                canonical_headers.pop();
                canonical_headers.push(',');
            } else {
                canonical_headers.push_str(name);
                canonical_headers.push(':');
                signed.push(name);
            }
            canonical_headers.push_str(value);
            canonical_headers.push('\n');
        }
        let signed_headers = signed.join(";");
        let canonical_request = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            req.method,
            req.canonical_uri,
            req.canonical_query,
            canonical_headers,
            signed_headers,
            req.payload_sha256
        );
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(canonical_request.as_bytes())
        );
        let key = signing_key(self.secret_access_key, date, self.region, self.service);
        let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key_id
        )
    }
}

/// An `AssumeRole` call to make: which role, where, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRoleRequest {
    /// STS endpoint (`https://sts.<region>.amazonaws.com`, or `AWS_ENDPOINT`).
    pub endpoint: url::Url,
    /// Signing region.
    pub region: String,
    /// The role ARN.
    pub role_arn: String,
    /// `RoleSessionName`, shown in the account's CloudTrail.
    pub session_name: String,
    /// `DurationSeconds`.
    pub duration: Duration,
}

/// A signed HTTP request, ready to send. `Debug` hides the signature and the
/// session token.
#[derive(Clone)]
pub struct SignedRequest {
    /// Where to POST.
    pub url: url::Url,
    /// Headers to send (all signed).
    pub headers: Vec<(String, String)>,
    /// The form-encoded body.
    pub body: String,
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| match k.as_str() {
                "authorization" | "x-amz-security-token" => (k.as_str(), "redacted"),
                _ => (k.as_str(), v.as_str()),
            })
            .collect();
        f.debug_struct("SignedRequest")
            .field("url", &self.url.as_str())
            .field("headers", &headers)
            .field("body", &self.body)
            .finish()
    }
}

impl AssumeRoleRequest {
    /// A request for `role_arn` with the default duration and a session name
    /// made from the current time.
    pub fn new(endpoint: url::Url, region: &str, role_arn: &str) -> AssumeRoleRequest {
        AssumeRoleRequest {
            endpoint,
            region: region.to_string(),
            role_arn: role_arn.to_string(),
            session_name: format!("backup-storage-{}", Utc::now().timestamp()),
            duration: DEFAULT_DURATION,
        }
    }

    /// The form body: `Action=AssumeRole&Version=2011-06-15&RoleArn=…`.
    pub fn body(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "AssumeRole")
            .append_pair("Version", "2011-06-15")
            .append_pair("RoleArn", &self.role_arn)
            .append_pair("RoleSessionName", &self.session_name)
            .append_pair("DurationSeconds", &self.duration.as_secs().to_string())
            .finish()
    }

    /// The request signed with `credential` at `now`.
    pub fn sign(&self, credential: &AwsCredential, now: DateTime<Utc>) -> SignedRequest {
        let body = self.body();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let host = match (self.endpoint.host_str(), self.endpoint.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => String::new(),
        };
        let payload_sha256 = sha256_hex(body.as_bytes());
        let mut headers: Vec<(String, String)> = vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            ),
            ("host".into(), host),
            ("x-amz-content-sha256".into(), payload_sha256.clone()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        if let Some(token) = &credential.token {
            headers.push(("x-amz-security-token".into(), token.clone()));
        }
        let borrowed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let path = match self.endpoint.path() {
            "" => "/",
            p => p,
        };
        let signer = SigV4Signer {
            access_key_id: &credential.key_id,
            secret_access_key: &credential.secret_key,
            region: &self.region,
            service: "sts",
        };
        let authorization = signer.authorization(
            &SigV4Request {
                method: "POST",
                canonical_uri: path,
                canonical_query: self.endpoint.query().unwrap_or(""),
                headers: &borrowed,
                payload_sha256: &payload_sha256,
            },
            &amz_date,
        );
        // reqwest sets Host from the URL itself.
        headers.retain(|(k, _)| k != "host");
        headers.push(("authorization".into(), authorization));
        SignedRequest {
            url: self.endpoint.clone(),
            headers,
            body,
        }
    }
}

/// The text of the first `<tag>…</tag>` element in `xml`, unescaped.
fn element<'a>(xml: &'a str, tag: &str) -> Option<std::borrow::Cow<'a, str>> {
    let open = format!("<{tag}");
    let mut from = 0;
    let start = loop {
        let at = from + xml.get(from..)?.find(&open)?;
        let after = at + open.len();
        match xml.as_bytes().get(after) {
            Some(b'>') => break after + 1,
            Some(b' ' | b'\t' | b'\r' | b'\n') => {
                let close = after + xml.get(after..)?.find('>')?;
                if xml.as_bytes().get(close.checked_sub(1)?) == Some(&b'/') {
                    return Some("".into()); // <tag/>
                }
                break close + 1;
            }
            _ => from = after,
        }
    };
    let end = start + xml.get(start..)?.find(&format!("</{tag}>"))?;
    Some(unescape(xml.get(start..end)?.trim()))
}

fn unescape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('&') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|s| *s <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| entity.strip_prefix('#').map(|d| d.parse::<u32>()))
                .and_then(|n| n.ok())
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

/// Error codes meaning the caller's credentials or permissions are at fault.
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "UnrecognizedClientException",
    "RegionDisabledException",
    "InvalidAccessKeyId",
];

/// Error codes worth retrying.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
    "IDPCommunicationError",
    "RequestTimeout",
];

/// Turns STS's answer to `AssumeRole` for `role` (HTTP status and body) into
/// credentials or a typed error. Never copies the body into an error.
pub fn parse_response(
    role: &str,
    status: u16,
    body: &str,
) -> Result<TemporaryCredentials, StsError> {
    if (200..300).contains(&status) {
        return parse_success(role, body);
    }
    let code = element(body, "Code").map(|c| c.into_owned());
    let message = element(body, "Message")
        .map(|m| m.chars().take(500).collect::<String>())
        .unwrap_or_else(|| match code {
            Some(_) => "no message".to_string(),
            None => "the body is not an STS error response".to_string(),
        });
    let code_text = code.clone().unwrap_or_else(|| format!("HTTP {status}"));
    let role = role.to_string();
    let code_is = |list: &[&str]| code.as_deref().is_some_and(|c| list.contains(&c));
    if code_is(TRANSIENT_CODES) || status == 429 || (500..600).contains(&status) {
        Err(StsError::Transient {
            role,
            cause: format!("HTTP {status}: {code_text}: {message}"),
        })
    } else if code_is(DENIED_CODES) || status == 401 || status == 403 {
        Err(StsError::Denied {
            role,
            code: code_text,
            message,
        })
    } else {
        Err(StsError::Rejected {
            role,
            status,
            code: code_text,
            message,
        })
    }
}

fn parse_success(role: &str, body: &str) -> Result<TemporaryCredentials, StsError> {
    let malformed = |what: &str| StsError::Malformed {
        role: role.to_string(),
        what: what.to_string(),
    };
    let credentials =
        element(body, "Credentials").ok_or_else(|| malformed("no <Credentials> element"))?;
    let field = |tag: &str| -> Result<String, StsError> {
        match element(&credentials, tag) {
            Some(v) if !v.is_empty() => Ok(v.into_owned()),
            _ => Err(malformed(&format!("no <{tag}> in <Credentials>"))),
        }
    };
    let access_key_id = field("AccessKeyId")?;
    let secret_access_key = Secret::new(field("SecretAccessKey")?);
    let session_token = Secret::new(field("SessionToken")?);
    let expiration_text = field("Expiration")?;
    let expiration = DateTime::parse_from_rfc3339(&expiration_text)
        .map_err(|_| {
            malformed(&format!(
                "<Expiration> {expiration_text:?} is not an RFC 3339 time"
            ))
        })?
        .with_timezone(&Utc);
    Ok(TemporaryCredentials {
        access_key_id,
        secret_access_key,
        session_token,
        expiration,
    })
}

/// Sends a signed `AssumeRole` and parses the answer.
pub async fn assume_role(
    client: &reqwest::Client,
    request: &AssumeRoleRequest,
    credential: &AwsCredential,
) -> Result<TemporaryCredentials, StsError> {
    let signed = request.sign(credential, Utc::now());
    let mut builder = client.post(signed.url.clone());
    for (name, value) in &signed.headers {
        builder = builder.header(name, value);
    }
    let transient = |e: reqwest::Error| StsError::Transient {
        role: request.role_arn.clone(),
        cause: format!(
            "cannot reach STS at {}: {}",
            request.endpoint,
            error_text(&e)
        ),
    };
    let response = builder.body(signed.body).send().await.map_err(transient)?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(transient)?;
    parse_response(&request.role_arn, status, &body)
}

fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        text.push_str(": ");
        text.push_str(&e.to_string());
        current = e.source();
    }
    text
}

struct Cached {
    aws: Arc<AwsCredential>,
    key_id: String,
    expiration: DateTime<Utc>,
}

/// A [`CredentialProvider`] that assumes one role with the credentials of
/// `base`, caches the temporary credentials and refreshes them
/// [`DEFAULT_REFRESH_MARGIN`] before they expire.
pub struct AssumeRoleProvider {
    base: AwsCredentials,
    request: AssumeRoleRequest,
    client: reqwest::Client,
    refresh_margin: chrono::Duration,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl fmt::Debug for AssumeRoleProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.cached.try_lock().ok().and_then(|c| {
            c.as_ref()
                .map(|c| format!("{} until {}", c.key_id, c.expiration.to_rfc3339()))
        });
        f.debug_struct("AssumeRoleProvider")
            .field("role", &self.request.role_arn)
            .field("endpoint", &self.request.endpoint.as_str())
            .field("current", &current)
            .field("base", &self.base)
            .finish()
    }
}

impl AssumeRoleProvider {
    /// Assumes `request.role_arn` with `base`'s credentials, over `client`.
    pub fn new(
        base: AwsCredentials,
        request: AssumeRoleRequest,
        client: reqwest::Client,
    ) -> AssumeRoleProvider {
        AssumeRoleProvider {
            base,
            request,
            client,
            refresh_margin: chrono::Duration::seconds(DEFAULT_REFRESH_MARGIN.as_secs() as i64),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Refresh this long before expiry instead of [`DEFAULT_REFRESH_MARGIN`].
    pub fn with_refresh_margin(mut self, margin: Duration) -> AssumeRoleProvider {
        self.refresh_margin = chrono::Duration::from_std(margin)
            .unwrap_or_else(|_| chrono::Duration::seconds(i64::from(u32::MAX)));
        self
    }

    /// The role this provider assumes.
    pub fn role(&self) -> &str {
        &self.request.role_arn
    }

    /// The current temporary credentials, from cache or freshly assumed.
    pub async fn credentials(&self) -> Result<Arc<AwsCredential>, object_store::Error> {
        let mut cached = self.cached.lock().await;
        let now = Utc::now();
        if let Some(c) = cached.as_ref()
            && now + self.refresh_margin < c.expiration
        {
            return Ok(Arc::clone(&c.aws));
        }
        let base = self.base.get_credential().await?;
        match assume_role(&self.client, &self.request, &base).await {
            Ok(fresh) => {
                tracing::debug!(
                    role = %self.request.role_arn,
                    access_key_id = %fresh.access_key_id,
                    expiration = %fresh.expiration.to_rfc3339(),
                    "assumed role"
                );
                let aws = Arc::new(fresh.to_aws());
                *cached = Some(Cached {
                    aws: Arc::clone(&aws),
                    key_id: fresh.access_key_id,
                    expiration: fresh.expiration,
                });
                Ok(aws)
            }
            Err(err) => match cached.as_ref() {
                // Still valid for a while: keep using them, try again next time.
                Some(c) if now + chrono::Duration::seconds(30) < c.expiration => {
                    tracing::warn!(
                        role = %self.request.role_arn,
                        expiration = %c.expiration.to_rfc3339(),
                        "refreshing assumed-role credentials failed; using the current ones until they expire: {err}"
                    );
                    Ok(Arc::clone(&c.aws))
                }
                _ => Err(err.into_object_store()),
            },
        }
    }
}

#[async_trait::async_trait]
impl CredentialProvider for AssumeRoleProvider {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        self.credentials().await
    }
}

/// The roles of an `ASSUME_ROLE` value, in the order they are assumed.
pub fn role_chain(assume_role: &str) -> Vec<&str> {
    assume_role.split(',').map(str::trim).collect()
}

/// The STS endpoint for an S3 configuration: the URI's (or the test
/// context's) endpoint, else the region's public one.
fn sts_endpoint(
    c: &S3Config,
    endpoint_override: Option<&str>,
    region: &str,
    describe: &str,
) -> Result<url::Url, StorageError> {
    let text = endpoint_override
        .map(str::to_string)
        .or_else(|| c.endpoint.clone())
        .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
    url::Url::parse(&text).map_err(|e| {
        StorageError::invalid_uri(describe, format!("STS endpoint {text} is not a URL: {e}"))
    })
}

/// The credential chain `ASSUME_ROLE` asks for, or `None` without it.
///
/// `base_builder` is the S3 builder before credentials are set; for
/// `AUTH=implicit` it is built once to get object_store's environment
/// credential chain (variables, web identity, container and instance roles).
pub(crate) fn s3_credentials(
    c: &S3Config,
    base_builder: &AmazonS3Builder,
    endpoint_override: Option<&str>,
    client: reqwest::Client,
    describe: &str,
) -> Result<Option<AwsCredentials>, StorageError> {
    let Some(assume_role) = &c.assume_role else {
        return Ok(None);
    };
    let region = c.region.as_deref().unwrap_or(DEFAULT_REGION);
    let endpoint = sts_endpoint(c, endpoint_override, region, describe)?;
    let mut provider: AwsCredentials = match c.auth {
        Auth::Specified => {
            let (Some(key_id), Some(secret)) = (&c.access_key_id, &c.secret_access_key) else {
                return Err(StorageError::invalid_uri(
                    describe,
                    "ASSUME_ROLE with AUTH=specified needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to call STS with",
                ));
            };
            Arc::new(StaticCredentialProvider::new(AwsCredential {
                key_id: key_id.clone(),
                secret_key: secret.expose().to_string(),
                token: c.session_token.as_ref().map(|t| t.expose().to_string()),
            }))
        }
        Auth::Implicit => {
            let store = base_builder.clone().build().map_err(|e| {
                StorageError::invalid_uri(
                    describe,
                    format!(
                        "cannot find credentials in the environment to assume {assume_role} with: {}",
                        crate::error::chain_text(&e)
                    ),
                )
            })?;
            Arc::clone(store.credentials())
        }
    };
    for role in role_chain(assume_role) {
        let request = AssumeRoleRequest::new(endpoint.clone(), region, role);
        provider = Arc::new(AssumeRoleProvider::new(provider, request, client.clone()));
    }
    Ok(Some(provider))
}
