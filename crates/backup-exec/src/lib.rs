//! `backup-exec`: the traits a host database implements, and (to come) the
//! backup, restore and schedule jobs that run over them.
//!
//! For now this crate owns the *narrow traits* of the design ([`host`]):
//! [`KvSource`], [`Catalog`], [`Ingest`], [`KeyRewriter`], [`JobStore`],
//! [`Protector`] and [`Clock`], with the types they exchange. They are
//! synchronous and `Send + Sync` (see [`host`] for why).
//!
//! ```
//! use backup_exec::{ExportRequest, IntentPolicy, Locality};
//! use backup_format::{Span, Timestamp};
//!
//! let locality: Locality = "region=us-east1,zone=a".parse().unwrap();
//! assert!(locality.matches("region", "us-east1"));
//!
//! // An incremental export of one table's span between two backups.
//! let request = ExportRequest {
//!     span: Span::new(*b"a", *b"m"),
//!     start_ts: Timestamp::from_wall(100),
//!     end_ts: Timestamp::from_wall(200),
//!     all_revisions: false,
//!     intent_policy: IntentPolicy::FailFast,
//!     target_bytes: 16 << 20,
//! };
//! assert!(request.start_ts < request.end_ts);
//! ```

pub mod host;

pub use host::{
    Catalog, Clock, ExportChunk, ExportError, ExportRequest, HostError, IdRewrites, Ingest,
    IntentPolicy, JobId, JobKind, JobRecord, JobStatus, JobStore, KeyRewriter, KvSource, Locality,
    NodeId, NodeInfo, ProtectionId, Protector, RangeInfo,
};
