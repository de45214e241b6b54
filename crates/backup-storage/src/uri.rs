//! Storage URIs: parsing into a typed configuration per scheme, and redaction.
//!
//! Parameters follow CockroachDB's names (`AWS_ACCESS_KEY_ID`, `AUTH`,
//! `S3_STORAGE_CLASS`, `AZURE_ACCOUNT_KEY`, `CREDENTIALS`, `COCKROACH_LOCALITY`…).
//! An unknown or repeated parameter is an error naming it. Secrets are kept in
//! [`Secret`], whose `Debug` and `Display` print `redacted`.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;

use crate::error::StorageError;
use crate::redact::{percent_decode, redact_uri};

/// A secret value from a URI (key, token, credentials); prints as `redacted`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(secret: String) -> Secret {
        Secret(secret)
    }

    /// The secret itself, for handing to a client library; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("redacted")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("redacted")
    }
}

/// Where credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Credentials are in the URI (the default).
    Specified,
    /// Credentials come from the environment of the process (instance role, env vars, files).
    Implicit,
}

/// `s3://bucket/path?...`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Base path inside the bucket (no leading or trailing `/`).
    pub prefix: String,
    /// `AUTH`.
    pub auth: Auth,
    /// `AWS_ACCESS_KEY_ID` (not a secret: it is shown).
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Secret>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<Secret>,
    /// `AWS_REGION`.
    pub region: Option<String>,
    /// `AWS_ENDPOINT`, for S3-compatible services.
    pub endpoint: Option<String>,
    /// `S3_STORAGE_CLASS`, applied to every object written.
    pub storage_class: Option<String>,
    /// `ASSUME_ROLE`: a role ARN, or a comma-separated chain of them where
    /// each role assumes the next; S3 is then accessed with the last role's
    /// temporary credentials (see [`crate::sts`]).
    pub assume_role: Option<String>,
}

/// `gs://bucket/path?...`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcsConfig {
    /// Bucket name.
    pub bucket: String,
    /// Base path inside the bucket.
    pub prefix: String,
    /// `AUTH`.
    pub auth: Auth,
    /// `CREDENTIALS`, decoded from base64: a service-account JSON key.
    pub credentials: Option<Secret>,
}

/// The Azure cloud an account lives in (`AZURE_ENVIRONMENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureEnvironment {
    /// `AzurePublicCloud` (the default).
    Public,
    /// `AzureUSGovernmentCloud`.
    UsGovernment,
    /// `AzureChinaCloud`.
    China,
    /// `AzureGermanCloud`.
    German,
}

impl AzureEnvironment {
    /// Host suffix of the blob service in this cloud.
    pub fn blob_suffix(self) -> &'static str {
        match self {
            AzureEnvironment::Public => "blob.core.windows.net",
            AzureEnvironment::UsGovernment => "blob.core.usgovcloudapi.net",
            AzureEnvironment::China => "blob.core.chinacloudapi.cn",
            AzureEnvironment::German => "blob.core.cloudapi.de",
        }
    }
}

/// `azure://container/path?...` (also `azure-blob://`)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureConfig {
    /// Container name.
    pub container: String,
    /// Base path inside the container.
    pub prefix: String,
    /// `AZURE_ACCOUNT_NAME`.
    pub account_name: String,
    /// `AZURE_ACCOUNT_KEY`.
    pub account_key: Secret,
    /// `AZURE_ENVIRONMENT`.
    pub environment: AzureEnvironment,
}

/// Which node a `nodelocal://` URI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRef {
    /// `nodelocal://3/...`
    Id(u32),
    /// `nodelocal://self/...`: the node that opens the storage.
    This,
}

/// The place a URI names, with its typed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Amazon S3 or an S3-compatible service.
    S3(S3Config),
    /// Google Cloud Storage.
    Gcs(GcsConfig),
    /// Azure Blob Storage.
    Azure(AzureConfig),
    /// A directory on one node's own disk.
    Nodelocal {
        /// The node.
        node: NodeRef,
        /// Path under that node's external-IO directory (no leading `/`).
        path: String,
    },
    /// Files stored inside the database, through the host's [`crate::UserfileBackend`].
    Userfile {
        /// Qualified table name (`defaultdb.public.userfiles_root`); empty for the user's default.
        table: String,
        /// Base path of the files.
        path: String,
    },
    /// A local directory, e.g. an NFS mount (`file:///abs/path`).
    File {
        /// The absolute directory.
        path: PathBuf,
    },
}

/// A parsed backup-storage URI. `Display` and `Debug` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageUri {
    redacted: String,
    location: Location,
    locality: Option<(String, String)>,
}

const S3_PARAMS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_ENDPOINT",
    "AUTH",
    "S3_STORAGE_CLASS",
    "ASSUME_ROLE",
    "COCKROACH_LOCALITY",
];
const GCS_PARAMS: &[&str] = &["AUTH", "CREDENTIALS", "COCKROACH_LOCALITY"];
const AZURE_PARAMS: &[&str] = &[
    "AZURE_ACCOUNT_NAME",
    "AZURE_ACCOUNT_KEY",
    "AZURE_ENVIRONMENT",
    "COCKROACH_LOCALITY",
];
const LOCAL_PARAMS: &[&str] = &["COCKROACH_LOCALITY"];

/// Storage classes S3 accepts for `S3_STORAGE_CLASS`.
pub const S3_STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
];

/// Query parameters, each taken at most once.
struct Params {
    uri: String,
    pairs: Vec<(String, String)>,
}

impl Params {
    fn new(
        uri: &str,
        url: &url::Url,
        allowed: &[&str],
        scheme: &str,
    ) -> Result<Params, StorageError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in url.query_pairs() {
            let key = k.into_owned();
            if !allowed.contains(&key.as_str()) {
                return Err(StorageError::invalid_uri(
                    redact_uri(uri),
                    format!(
                        "unknown parameter {key} for {scheme}:// URIs; accepted parameters: {}",
                        allowed.join(", ")
                    ),
                ));
            }
            if pairs.iter().any(|(existing, _)| *existing == key) {
                return Err(StorageError::invalid_uri(
                    redact_uri(uri),
                    format!("parameter {key} is given more than once"),
                ));
            }
            pairs.push((key, v.into_owned()));
        }
        Ok(Params {
            uri: redact_uri(uri),
            pairs,
        })
    }

    fn take(&mut self, key: &str) -> Result<Option<String>, StorageError> {
        let Some(idx) = self.pairs.iter().position(|(k, _)| k == key) else {
            return Ok(None);
        };
        let (_, value) = self.pairs.remove(idx);
        if value.is_empty() {
            return Err(StorageError::invalid_uri(
                self.uri.clone(),
                format!("parameter {key} is empty; give it a value or leave it out"),
            ));
        }
        Ok(Some(value))
    }

    fn secret(&mut self, key: &str) -> Result<Option<Secret>, StorageError> {
        Ok(self.take(key)?.map(Secret))
    }

    fn auth(&mut self) -> Result<Auth, StorageError> {
        match self
            .take("AUTH")?
            .map(|a| a.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("specified") => Ok(Auth::Specified),
            Some("implicit") => Ok(Auth::Implicit),
            Some(other) => Err(StorageError::invalid_uri(
                self.uri.clone(),
                format!("AUTH={other} is not understood; use AUTH=specified or AUTH=implicit"),
            )),
        }
    }

    fn err(&self, reason: impl Into<String>) -> StorageError {
        StorageError::invalid_uri(self.uri.clone(), reason)
    }
}

impl StorageUri {
    /// Parses a storage URI; errors name the bad part and never contain a secret.
    pub fn parse(uri: &str) -> Result<StorageUri, StorageError> {
        let redacted = redact_uri(uri);
        let url = url::Url::parse(uri).map_err(|e| {
            StorageError::invalid_uri(
                redacted.clone(),
                format!("not a URI ({e}); expected e.g. s3://bucket/path?AWS_ACCESS_KEY_ID=..."),
            )
        })?;
        let scheme = url.scheme().to_ascii_lowercase();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(StorageError::invalid_uri(
                redacted,
                "credentials in the URI's user-info are not accepted; pass them as parameters",
            ));
        }
        let allowed = match scheme.as_str() {
            "s3" => S3_PARAMS,
            "gs" => GCS_PARAMS,
            "azure" | "azure-blob" => AZURE_PARAMS,
            "nodelocal" | "userfile" | "file" => LOCAL_PARAMS,
            "http" | "https" => {
                return Err(StorageError::invalid_uri(
                    redacted,
                    "HTTP storage is not supported for BACKUP and RESTORE",
                ));
            }
            other => {
                return Err(StorageError::invalid_uri(
                    redacted,
                    format!(
                        "unknown scheme {other}://; use s3://, gs://, azure://, azure-blob://, nodelocal://, userfile:// or file://"
                    ),
                ));
            }
        };
        let mut params = Params::new(uri, &url, allowed, &scheme)?;
        let locality = parse_locality(&mut params)?;
        let host = url.host_str().unwrap_or("").to_string();
        reject_dot_segments(uri, &params)?;
        let path = clean_path(&url, &params)?;
        let location = match scheme.as_str() {
            "s3" => Location::S3(parse_s3(host, path, &mut params)?),
            "gs" => Location::Gcs(parse_gcs(host, path, &mut params)?),
            "azure" | "azure-blob" => Location::Azure(parse_azure(host, path, &mut params)?),
            "nodelocal" => {
                let node = match host.as_str() {
                    "self" => NodeRef::This,
                    "" => return Err(params.err("nodelocal:// needs a node id: nodelocal://1/path or nodelocal://self/path")),
                    id => NodeRef::Id(id.parse().map_err(|_| {
                        params.err(format!("nodelocal node {id:?} is not a node id; use nodelocal://<number>/path or nodelocal://self/path"))
                    })?),
                };
                Location::Nodelocal { node, path }
            }
            "userfile" => Location::Userfile { table: host, path },
            _ => {
                if !host.is_empty() && host != "localhost" {
                    return Err(params.err(format!(
                        "file:// URIs name a local directory; remove the host {host:?} (file:///abs/path)"
                    )));
                }
                if path.is_empty() {
                    return Err(params.err("file:// needs a directory: file:///abs/path"));
                }
                Location::File {
                    path: PathBuf::from(format!("/{path}")),
                }
            }
        };
        Ok(StorageUri {
            redacted,
            location,
            locality,
        })
    }

    /// The typed configuration.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// `COCKROACH_LOCALITY=key=value`, if given (and not `default`).
    pub fn locality(&self) -> Option<(&str, &str)> {
        self.locality
            .as_ref()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The URI with secrets redacted (same as `Display`).
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// Every secret this URI carries, so backends can scrub their messages.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.location {
            Location::S3(c) => {
                out.extend(c.secret_access_key.iter().map(|s| s.0.clone()));
                out.extend(c.session_token.iter().map(|s| s.0.clone()));
            }
            Location::Gcs(c) => out.extend(c.credentials.iter().map(|s| s.0.clone())),
            Location::Azure(c) => out.push(c.account_key.0.clone()),
            _ => {}
        }
        out
    }
}

impl fmt::Display for StorageUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for StorageUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageUri")
            .field("uri", &self.redacted)
            .field("location", &self.location)
            .field("locality", &self.locality)
            .finish()
    }
}

impl std::str::FromStr for StorageUri {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<StorageUri, StorageError> {
        StorageUri::parse(s)
    }
}

fn parse_locality(params: &mut Params) -> Result<Option<(String, String)>, StorageError> {
    let Some(value) = params.take("COCKROACH_LOCALITY")? else {
        return Ok(None);
    };
    if value == "default" {
        return Ok(None);
    }
    match value.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() && !v.contains('=') => {
            Ok(Some((k.to_string(), v.to_string())))
        }
        _ => Err(params.err(format!(
            "COCKROACH_LOCALITY={value} is not key=value (e.g. COCKROACH_LOCALITY=region%3Dus-east1) or default"
        ))),
    }
}

/// URL parsing resolves `..` silently; a backup URI with one is a mistake
/// (or an attempt to escape), so the raw text is checked first.
fn reject_dot_segments(raw: &str, params: &Params) -> Result<(), StorageError> {
    let before_query = raw.split(['?', '#']).next().unwrap_or("");
    let after_scheme = before_query
        .split_once("://")
        .map_or(before_query, |(_, rest)| rest);
    for raw_seg in after_scheme.split('/').skip(1) {
        let seg = percent_decode(raw_seg);
        if seg
            .split(['/', '\\'])
            .any(|part| part == "." || part == "..")
        {
            return Err(params.err(format!(
                "path segment {seg:?} is not allowed; write the path without '.' or '..'"
            )));
        }
    }
    Ok(())
}

/// The URI's path, decoded, without leading/trailing `/`; `.`, `..` and empty
/// segments are rejected so no base path can climb out of its root.
fn clean_path(url: &url::Url, params: &Params) -> Result<String, StorageError> {
    let mut segments = Vec::new();
    for raw in url.path().split('/') {
        let seg = percent_decode(raw);
        if seg.is_empty() {
            continue;
        }
        if seg == "." || seg == ".." || seg.contains('/') || seg.contains('\\') {
            return Err(params.err(format!(
                "path segment {seg:?} is not allowed; write the path without '.', '..' or encoded separators"
            )));
        }
        segments.push(seg);
    }
    Ok(segments.join("/"))
}

fn require_host(
    host: String,
    what: &str,
    scheme: &str,
    params: &Params,
) -> Result<String, StorageError> {
    if host.is_empty() {
        return Err(params.err(format!(
            "{scheme}:// needs a {what}: {scheme}://{what}/path"
        )));
    }
    Ok(host)
}

fn parse_s3(host: String, prefix: String, p: &mut Params) -> Result<S3Config, StorageError> {
    let bucket = require_host(host, "bucket", "s3", p)?;
    let auth = p.auth()?;
    let access_key_id = p.take("AWS_ACCESS_KEY_ID")?;
    let secret_access_key = p.secret("AWS_SECRET_ACCESS_KEY")?;
    let session_token = p.secret("AWS_SESSION_TOKEN")?;
    match auth {
        Auth::Specified if access_key_id.is_none() || secret_access_key.is_none() => {
            return Err(p.err(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are required with AUTH=specified (the default); or use AUTH=implicit to take credentials from the environment",
            ));
        }
        Auth::Implicit
            if access_key_id.is_some()
                || secret_access_key.is_some()
                || session_token.is_some() =>
        {
            return Err(p.err(
                "AUTH=implicit takes credentials from the environment; remove AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or use AUTH=specified",
            ));
        }
        _ => {}
    }
    let storage_class = p.take("S3_STORAGE_CLASS")?;
    if let Some(class) = &storage_class
        && !S3_STORAGE_CLASSES.contains(&class.as_str())
    {
        return Err(p.err(format!(
            "S3_STORAGE_CLASS={class} is not a storage class S3 accepts; use one of {}",
            S3_STORAGE_CLASSES.join(", ")
        )));
    }
    let endpoint = p.take("AWS_ENDPOINT")?;
    if let Some(endpoint) = &endpoint
        && url::Url::parse(endpoint)
            .map(|u| u.scheme() != "http" && u.scheme() != "https")
            .unwrap_or(true)
    {
        return Err(p.err(format!("AWS_ENDPOINT={endpoint} is not an http(s):// URL")));
    }
    let assume_role = p.take("ASSUME_ROLE")?;
    if let Some(roles) = &assume_role {
        for role in crate::sts::role_chain(roles) {
            if !role.starts_with("arn:") || role.contains(char::is_whitespace) {
                return Err(p.err(format!(
                    "ASSUME_ROLE element {role:?} is not a role ARN; use arn:aws:iam::<account>:role/<name>, or several separated by commas"
                )));
            }
        }
    }
    Ok(S3Config {
        bucket,
        prefix,
        auth,
        access_key_id,
        secret_access_key,
        session_token,
        region: p.take("AWS_REGION")?,
        endpoint,
        storage_class,
        assume_role,
    })
}

fn parse_gcs(host: String, prefix: String, p: &mut Params) -> Result<GcsConfig, StorageError> {
    let bucket = require_host(host, "bucket", "gs", p)?;
    let auth = p.auth()?;
    let encoded = p.take("CREDENTIALS")?;
    let credentials = match (auth, encoded) {
        (Auth::Specified, None) => {
            return Err(p.err(
                "CREDENTIALS (a base64-encoded service-account JSON key) is required with AUTH=specified (the default); or use AUTH=implicit",
            ));
        }
        (Auth::Implicit, Some(_)) => {
            return Err(p.err("AUTH=implicit takes credentials from the environment; remove CREDENTIALS or use AUTH=specified"));
        }
        (_, Some(encoded)) => Some(Secret(decode_gcs_credentials(&encoded, p)?)),
        (Auth::Implicit, None) => None,
    };
    Ok(GcsConfig {
        bucket,
        prefix,
        auth,
        credentials,
    })
}

/// Decodes `CREDENTIALS`: base64 (standard or URL-safe; `+` may have become a
/// space in the query string) of a JSON object with a `type` field.
fn decode_gcs_credentials(encoded: &str, p: &Params) -> Result<String, StorageError> {
    let cleaned: String = encoded
        .chars()
        .filter(|c| *c != '\n' && *c != '\r')
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let bytes = engines
        .iter()
        .find_map(|e| e.decode(cleaned.as_bytes()).ok())
        .ok_or_else(|| {
            p.err("CREDENTIALS is not base64; encode the service-account JSON key file with base64")
        })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        p.err("CREDENTIALS does not decode to text; it must be a base64-encoded JSON key file")
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
        p.err("CREDENTIALS does not decode to JSON; it must be a base64-encoded JSON key file")
    })?;
    if json.get("type").and_then(|t| t.as_str()).is_none() {
        return Err(p.err(
            "CREDENTIALS JSON has no \"type\" field; it must be a Google service-account key file",
        ));
    }
    Ok(text)
}

fn parse_azure(host: String, prefix: String, p: &mut Params) -> Result<AzureConfig, StorageError> {
    let container = require_host(host, "container", "azure", p)?;
    let account_name = p
        .take("AZURE_ACCOUNT_NAME")?
        .ok_or_else(|| p.err("AZURE_ACCOUNT_NAME is required"))?;
    let account_key = p
        .secret("AZURE_ACCOUNT_KEY")?
        .ok_or_else(|| p.err("AZURE_ACCOUNT_KEY is required"))?;
    let environment = match p.take("AZURE_ENVIRONMENT")?.as_deref() {
        None | Some("AzurePublicCloud") => AzureEnvironment::Public,
        Some("AzureUSGovernmentCloud") => AzureEnvironment::UsGovernment,
        Some("AzureChinaCloud") => AzureEnvironment::China,
        Some("AzureGermanCloud") => AzureEnvironment::German,
        Some(other) => {
            return Err(p.err(format!(
                "AZURE_ENVIRONMENT={other} is not known; use AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud or AzureGermanCloud"
            )));
        }
    };
    Ok(AzureConfig {
        container,
        prefix,
        account_name,
        account_key,
        environment,
    })
}
