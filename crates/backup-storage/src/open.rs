//! Opening a [`StorageUri`]: the host's context, and one builder per scheme.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::memory::InMemory;
use object_store::{Attribute, Attributes, ClientOptions, HeaderMap, HeaderValue, RetryConfig};

use crate::error::{Scrubber, StorageError, chain_text};
use crate::local::LocalStorage;
use crate::object::{ObjectStorage, ObjectStorageConfig};
use crate::retry::RetryPolicy;
use crate::storage::ExternalStorage;
use crate::sts;
use crate::uri::{Auth, AzureConfig, GcsConfig, Location, NodeRef, S3Config, StorageUri};
use crate::userfile::{UserfileBackend, UserfileStorage};

/// Smallest part S3 accepts (except the last).
const S3_MIN_PART: usize = 5 * 1024 * 1024;

/// What the host tells the crate when opening storage.
#[derive(Debug, Clone)]
pub struct StorageContext {
    /// Each node's external-IO directory, for `nodelocal://<id>/`.
    pub nodelocal_dirs: HashMap<u32, PathBuf>,
    /// The node opening the storage, for `nodelocal://self/`.
    pub local_node: Option<u32>,
    /// The host's userfile backend, for `userfile://`.
    pub userfile: Option<Arc<dyn UserfileBackend>>,
    /// How transient failures are retried.
    pub retry: RetryPolicy,
    /// Streamed writes buffer this many bytes per multipart part (S3 at least 5 MiB).
    pub part_size: usize,
    /// Per-request timeout of cloud clients.
    pub request_timeout: Duration,
    /// Tests only: send S3/Azure/GCS requests to this http(s) endpoint
    /// (a loopback emulator). Azure expects `http://host:port/<account>`.
    pub endpoint_override: Option<String>,
}

impl Default for StorageContext {
    fn default() -> StorageContext {
        StorageContext {
            nodelocal_dirs: HashMap::new(),
            local_node: None,
            userfile: None,
            retry: RetryPolicy::default(),
            part_size: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
            endpoint_override: None,
        }
    }
}

/// Opens the storage a URI names.
pub fn open(
    uri: &StorageUri,
    ctx: &StorageContext,
) -> Result<Arc<dyn ExternalStorage>, StorageError> {
    let describe = uri.redacted().to_string();
    let scrubber = Scrubber::new(uri.secrets());
    let config = |base: &str, attributes: Attributes, part_size: usize| ObjectStorageConfig {
        describe: describe.clone(),
        base: base.to_string(),
        attributes,
        retry: ctx.retry,
        scrubber: scrubber.clone(),
        part_size,
    };
    let built = |e: object_store::Error| StorageError::InvalidUri {
        uri: describe.clone(),
        reason: format!(
            "cannot configure the client: {}",
            scrubber.scrub(&chain_text(&e))
        ),
    };
    match uri.location() {
        Location::S3(c) => {
            let store = s3_store(c, ctx, &describe)?.build().map_err(built)?;
            let mut attributes = Attributes::new();
            if let Some(class) = &c.storage_class {
                attributes.insert(Attribute::StorageClass, class.clone().into());
            }
            let cfg = config(&c.prefix, attributes, ctx.part_size.max(S3_MIN_PART));
            Ok(Arc::new(ObjectStorage::new(Arc::new(store), cfg)))
        }
        Location::Azure(c) => {
            let store = azure_store(c, ctx).build().map_err(built)?;
            let cfg = config(&c.prefix, Attributes::new(), ctx.part_size);
            Ok(Arc::new(ObjectStorage::new(Arc::new(store), cfg)))
        }
        Location::Gcs(c) => {
            let store = gcs_store(c, ctx)?.build().map_err(built)?;
            let cfg = config(&c.prefix, Attributes::new(), ctx.part_size.max(S3_MIN_PART));
            Ok(Arc::new(ObjectStorage::new(Arc::new(store), cfg)))
        }
        Location::Nodelocal { node, path } => {
            let id = match node {
                NodeRef::Id(id) => *id,
                NodeRef::This => ctx.local_node.ok_or_else(|| StorageError::InvalidUri {
                    uri: describe.clone(),
                    reason: "nodelocal://self needs the host to say which node this is".into(),
                })?,
            };
            let root = ctx
                .nodelocal_dirs
                .get(&id)
                .ok_or_else(|| StorageError::InvalidUri {
                    uri: describe.clone(),
                    reason: format!(
                        "node {id} has no nodelocal directory here; use a node id of this cluster"
                    ),
                })?;
            Ok(Arc::new(LocalStorage::open(
                describe, root, path, ctx.retry,
            )?))
        }
        Location::File { path } => Ok(Arc::new(LocalStorage::open(describe, path, "", ctx.retry)?)),
        Location::Userfile { table, path } => {
            let backend = ctx.userfile.clone().ok_or_else(|| StorageError::InvalidUri {
                uri: describe.clone(),
                reason: "userfile:// storage needs the host's userfile backend, which this context lacks".into(),
            })?;
            Ok(Arc::new(UserfileStorage::new(
                describe.clone(),
                backend,
                table.clone(),
                path.clone(),
                ctx.retry,
            )))
        }
    }
}

/// A fresh in-memory storage (for tests and tools).
pub fn open_memory(ctx: &StorageContext) -> Arc<dyn ExternalStorage> {
    let cfg = ObjectStorageConfig {
        describe: "memory".to_string(),
        base: String::new(),
        attributes: Attributes::new(),
        retry: ctx.retry,
        scrubber: Scrubber::default(),
        part_size: ctx.part_size,
    };
    Arc::new(ObjectStorage::new(Arc::new(InMemory::new()), cfg))
}

/// The crate's [`RetryPolicy`] is the single bound on retries: object_store's
/// own retry loop is turned off so attempts do not multiply.
fn no_inner_retries() -> RetryConfig {
    RetryConfig {
        max_retries: 0,
        retry_timeout: Duration::from_secs(0),
        ..RetryConfig::default()
    }
}

/// The HTTP client STS is called with: the same timeouts as the storage's.
fn sts_client(ctx: &StorageContext) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(ctx.request_timeout)
        .build()
}

fn client_options(
    ctx: &StorageContext,
    headers: Option<HeaderMap>,
    allow_http: bool,
) -> ClientOptions {
    let mut options = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout(ctx.request_timeout)
        .with_allow_http(allow_http);
    if let Some(headers) = headers {
        options = options.with_default_headers(headers);
    }
    options
}

pub(crate) fn s3_store(
    c: &S3Config,
    ctx: &StorageContext,
    describe: &str,
) -> Result<AmazonS3Builder, StorageError> {
    let mut builder = match c.auth {
        Auth::Implicit => AmazonS3Builder::from_env(),
        Auth::Specified => AmazonS3Builder::new(),
    };
    if let Some(id) = &c.access_key_id {
        builder = builder.with_access_key_id(id);
    }
    if let Some(secret) = &c.secret_access_key {
        builder = builder.with_secret_access_key(secret.expose());
    }
    if let Some(token) = &c.session_token {
        builder = builder.with_token(token.expose());
    }
    let region = c
        .region
        .clone()
        .unwrap_or_else(|| sts::DEFAULT_REGION.to_string());
    builder = builder.with_region(region).with_bucket_name(&c.bucket);
    let endpoint = ctx.endpoint_override.clone().or_else(|| c.endpoint.clone());
    let allow_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    if c.assume_role.is_some() {
        let client = sts_client(ctx).map_err(|e| {
            StorageError::invalid_uri(
                describe,
                format!("cannot build the STS client: {}", chain_text(&e)),
            )
        })?;
        let base = builder
            .clone()
            .with_client_options(client_options(ctx, None, allow_http));
        if let Some(credentials) =
            sts::s3_credentials(c, &base, endpoint.as_deref(), client, describe)?
        {
            builder = builder.with_credentials(credentials);
        }
    }
    if let Some(endpoint) = endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
    // Object Lock buckets reject puts without a content checksum.
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amz-sdk-checksum-algorithm",
        HeaderValue::from_static("SHA256"),
    );
    Ok(builder
        .with_checksum_algorithm(Checksum::SHA256)
        .with_client_options(client_options(ctx, Some(headers), allow_http))
        .with_retry(no_inner_retries()))
}

pub(crate) fn azure_store(c: &AzureConfig, ctx: &StorageContext) -> MicrosoftAzureBuilder {
    let endpoint = ctx
        .endpoint_override
        .clone()
        .unwrap_or_else(|| format!("https://{}.{}", c.account_name, c.environment.blob_suffix()));
    let allow_http = endpoint.starts_with("http://");
    MicrosoftAzureBuilder::new()
        .with_account(&c.account_name)
        .with_access_key(c.account_key.expose())
        .with_container_name(&c.container)
        .with_endpoint(endpoint)
        .with_client_options(client_options(ctx, None, allow_http))
        .with_retry(no_inner_retries())
}

pub(crate) fn gcs_store(
    c: &GcsConfig,
    ctx: &StorageContext,
) -> Result<GoogleCloudStorageBuilder, StorageError> {
    let mut builder = match (&c.auth, &c.credentials) {
        (Auth::Specified, Some(key)) => {
            GoogleCloudStorageBuilder::new().with_service_account_key(key.expose())
        }
        _ => GoogleCloudStorageBuilder::from_env(),
    };
    builder = builder.with_bucket_name(&c.bucket);
    let mut allow_http = false;
    if let Some(endpoint) = &ctx.endpoint_override {
        allow_http = endpoint.starts_with("http://");
        builder = builder.with_base_url(endpoint);
    }
    Ok(builder
        .with_client_options(client_options(ctx, None, allow_http))
        .with_retry(no_inner_retries()))
}
