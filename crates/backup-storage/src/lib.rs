//! `backup-storage`: where backup files live.
//!
//! This crate owns the [`ExternalStorage`] trait — create-only writes (whole
//! or streamed, multipart for large objects), whole and ranged reads, size,
//! and listing with or without a delimiter; **no delete and no overwrite**,
//! so backups work on buckets with Object Lock and no delete permission —
//! and everything that turns a URI into one:
//!
//! - [`StorageUri::parse`] understands `s3://`, `gs://`, `azure://` /
//!   `azure-blob://`, `nodelocal://<node>/`, `userfile://` and `file:///`
//!   with CockroachDB's parameters, rejects unknown ones by name, rejects
//!   `http(s)://` ("HTTP storage is not supported for BACKUP and RESTORE"),
//!   and exposes `COCKROACH_LOCALITY`. `Display` and `Debug` are redacted;
//!   [`redact_uri`] redacts even strings that do not parse.
//! - [`open`] builds the storage, given a [`StorageContext`] from the host
//!   (nodelocal directories, a [`UserfileBackend`], the [`RetryPolicy`]).
//! - [`StorageError`] tells not-found, already-exists, permission denied,
//!   invalid URI and transient failures apart; transient ones are retried
//!   inside the crate first, bounded by the [`RetryPolicy`].
//! - [`FaultyStorage`] injects errors, latency and cut-off writes for tests.
//!
//! Backends: S3, Azure and GCS go through the `object_store` crate
//! (`object`/`open` modules); `file://` and `nodelocal://` are local
//! directories published by hard link (`local`); `userfile://` adapts the
//! host's backend (`userfile`). With `S3_STORAGE_CLASS` every object,
//! multipart ones too, carries the class; every S3 put carries a SHA-256
//! checksum, which Object Lock buckets demand.
//!
//! # S3 credentials
//!
//! | URI parameters | S3 requests are signed with |
//! |---|---|
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` [, `AWS_SESSION_TOKEN`] (`AUTH=specified`, the default) | those keys |
//! | `AUTH=implicit` | the environment's: `AWS_*` variables, web identity, container or instance role |
//! | either of the above plus `ASSUME_ROLE=<role ARN>` | temporary credentials of the role, from STS `AssumeRole` called with the credentials above |
//! | `ASSUME_ROLE=<ARN>,<ARN>,…` | each role assumes the next; the last role's temporary credentials |
//!
//! The [`sts`] module is the STS client (SigV4-signed form POST to
//! `AWS_ENDPOINT` when given, else `https://sts.<AWS_REGION>.amazonaws.com`,
//! region `us-east-1` by default). STS is first asked when the storage is
//! first used, not by [`open`]; each role's credentials are cached and
//! renewed five minutes before they expire (a failed renewal keeps the old
//! ones while they are valid). STS refusals (`AccessDenied`…) are permission
//! denied, throttling and 5xx are transient. `ASSUME_ROLE` with an external
//! id (`arn?EXTERNAL_ID=…`) is not supported: the value must be ARNs.
//!
//! # What "create-only" means on each backend
//!
//! | backend | whole puts, and streamed writes below one part | streamed multipart writes |
//! |---|---|---|
//! | `file://`, `nodelocal://` | staging file, fsync, `link(2)` publish: atomic | same |
//! | S3 | `If-None-Match: *`: atomic | HEAD before starting and before completing |
//! | Azure | `If-None-Match: *`: atomic | HEAD before starting and before completing |
//! | GCS | `ifGenerationMatch=0`: atomic | HEAD before starting and before completing |
//! | memory | atomic | HEAD before starting and before completing |
//! | `userfile://` | the host's `put_if_absent` | buffered, then `put_if_absent` |
//!
//! object_store completes multipart uploads unconditionally, so for cloud
//! multipart writes a second writer that publishes the *same* name between
//! the final HEAD and the completion would be overwritten (on a bucket with
//! Object Lock, S3 keeps both versions). Backup file names are unique per
//! writer, so this needs two writers of one name, which the backup job never
//! starts. A retried put or completion whose first response was lost can
//! meet its own object: an existing object of exactly the written size is
//! then taken as success.
//!
//! Retries: object_store's own retry loop is switched off (`max_retries = 0`)
//! so the crate's [`RetryPolicy`] is the single bound on attempts. Each part
//! of a multipart upload is retried on its own.
//!
//! **GCS is tested less than the others.** No GCS emulator that works with
//! object_store's client is available here (it writes through the XML API,
//! which `fake-gcs-server` and `gcp-storage-emulator` lack), so `gs://` is
//! covered by URI, configuration and authentication unit tests only; S3
//! (moto_server) and Azure (Azurite) run the full conformance suite.
//!
//! ```
//! use backup_storage::{open, StorageContext, StorageUri};
//! use bytes::Bytes;
//!
//! # async fn demo() -> Result<(), backup_storage::StorageError> {
//! let dir = std::env::temp_dir().join(format!("backup-storage-doc-{}", std::process::id()));
//! let uri = StorageUri::parse(&format!("file://{}", dir.display()))?;
//! let storage = open(&uri, &StorageContext::default())?;
//! storage.put("2026/11/24-193000.00/BACKUP_MANIFEST", Bytes::from_static(b"manifest")).await?;
//! // Create-only: a second write of the same name fails.
//! let again = storage.put("2026/11/24-193000.00/BACKUP_MANIFEST", Bytes::new()).await;
//! assert!(again.is_err_and(|e| e.is_already_exists()));
//! assert_eq!(storage.get_range("2026/11/24-193000.00/BACKUP_MANIFEST", 0..3).await?, "man");
//! let listing = storage.list("2026/11", true).await?;
//! assert_eq!(listing.prefixes, vec!["2026/11/24-193000.00".to_string()]);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//!
//! // Secrets never show.
//! let uri = StorageUri::parse("s3://b/p?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY=hunter2").unwrap();
//! assert_eq!(uri.to_string(), "s3://b/p?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY=redacted");
//! ```

mod error;
mod fault;
mod local;
mod object;
mod open;
mod redact;
mod retry;
mod storage;
pub mod sts;
mod uri;
mod userfile;

pub use error::StorageError;
pub use fault::{FaultConfig, FaultyStorage};
pub use open::{StorageContext, open, open_memory};
pub use redact::{redact_uri, secret_params};
pub use retry::RetryPolicy;
pub use storage::{ExternalStorage, Listing, ObjectMeta, ObjectWriter};
pub use uri::{
    Auth, AzureConfig, AzureEnvironment, GcsConfig, Location, NodeRef, S3_STORAGE_CLASSES,
    S3Config, Secret, StorageUri,
};
pub use userfile::{MemoryUserfiles, UserfileBackend};
