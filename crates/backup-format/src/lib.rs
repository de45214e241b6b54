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
//!   host's own encoding carried as an opaque payload;
//! - [`datafile`]: data files of sorted, compressed, checksummed, optionally
//!   encrypted blocks, written streaming and read by key span with ranged reads;
//! - [`crypto`] and [`EncryptionInfo`]: AES-256-GCM and the passphrase KDF;
//! - [`manifest`]: the backup manifest, its checksum and its streamed side files;
//! - [`checkpoint`]: a backup job's progress, for resuming;
//! - [`paths`]: the names of everything in a backup collection.
//!
//! The byte-level layout of every file is in `docs/FORMAT.md`.
//!
//! ```
//! use backup_format::{Span, SpanSet, Timestamp, MvccEntry};
//! use backup_format::datafile::{DataFileOptions, DataFileWriter, verify_data_file};
//!
//! let ts: Timestamp = "1637000000000000000.0000000001".parse().unwrap();
//! assert_eq!(ts.logical, 1);
//!
//! let backed_up = SpanSet::from_spans([Span::new(*b"a", *b"m")]);
//! let todo = backed_up.uncovered(&Span::new(*b"a", *b"z"));
//! assert_eq!(todo.spans(), &[Span::new(*b"m", *b"z")]);
//!
//! // A data file in memory: entries in MVCC order in, a summary out.
//! let mut w = DataFileWriter::new("data/1-1.sst", Vec::new(), &DataFileOptions::default()).unwrap();
//! w.add(&MvccEntry::put("a", ts, "1")).unwrap();
//! w.add(&MvccEntry::tombstone("b", ts)).unwrap();
//! let (bytes, summary) = w.finish().unwrap();
//! assert_eq!((summary.entry_count, summary.row_count), (2, 2));
//! assert_eq!(verify_data_file("data/1-1.sst", &bytes, None).unwrap().entry_count, 2);
//! ```

pub mod checkpoint;
pub mod crypto;
pub mod datafile;
mod descriptor;
mod encryption_info;
mod envelope;
mod error;
pub mod manifest;
mod mvcc;
pub mod paths;
mod span;
mod timestamp;
mod wire;

pub use checkpoint::Checkpoint;
pub use crypto::EncryptionKey;
pub use descriptor::{Dependency, DependencyKind, Descriptor, DescriptorId, DescriptorKind};
pub use encryption_info::{DEFAULT_PBKDF2_ITERATIONS, EncryptionInfo, KDF_PBKDF2_SHA256, SALT_LEN};
pub use error::FormatError;
pub use mvcc::{MvccEntry, mvcc_order};
pub use span::{KEY_MAX, PrettyKey, Span, SpanSet, prefix_end};
pub use timestamp::Timestamp;
