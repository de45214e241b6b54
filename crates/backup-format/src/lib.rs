//! `backup-format`: every byte a backup writes.
//!
//! This crate owns the vocabulary and the file formats of the backup system,
//! with no I/O runtime of its own (everything is synchronous and streaming):
//!
//! - [`Timestamp`]: hybrid-logical-clock timestamps in CockroachDB's decimal
//!   form (`1637000000000000000.0000000001`) and RFC 3339;
//! - [`Span`] and [`SpanSet`]: half-open key ranges and the set algebra that
//!   incremental backups and restore planning rely on;
//! - [`MvccEntry`]: one version of one key, ordered key ascending then
//!   timestamp descending;
//! - [`Descriptor`]: the facts about a schema object a backup needs, with the
//!   host's own encoding carried as an opaque payload.
//!
//! ```
//! use backup_format::{Span, SpanSet, Timestamp};
//!
//! let ts: Timestamp = "1637000000000000000.0000000001".parse().unwrap();
//! assert_eq!(ts.logical, 1);
//!
//! let backed_up = SpanSet::from_spans([Span::new(*b"a", *b"m")]);
//! let todo = backed_up.uncovered(&Span::new(*b"a", *b"z"));
//! assert_eq!(todo.spans(), &[Span::new(*b"m", *b"z")]);
//! ```

mod descriptor;
mod error;
mod mvcc;
mod span;
mod timestamp;

pub use descriptor::{Dependency, DependencyKind, Descriptor, DescriptorId, DescriptorKind};
pub use error::FormatError;
pub use mvcc::{MvccEntry, mvcc_order};
pub use span::{KEY_MAX, PrettyKey, Span, SpanSet, prefix_end};
pub use timestamp::Timestamp;
