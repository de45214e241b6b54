//! The backup manifest: what one backup layer holds, and where.
//!
//! A layer's manifest is three kinds of file:
//!
//! - `BACKUP_MANIFEST`: the small fixed part — format version, ids, start
//!   and end time, spans, introduced spans, revision-history and
//!   full-cluster flags, encryption info (KDF name and key check, never the
//!   key), statistics — plus a reference (name, count, length, SHA-256) to
//!   each side file;
//! - side files `BACKUP_METADATA-FILES` and `BACKUP_METADATA-DESCRIPTORS`: the
//!   file list and the descriptors as of the end time, and in a
//!   revision-history layer `BACKUP_METADATA-DESCRIPTOR-REVISIONS`: every
//!   descriptor revision of its window ([`DescriptorRevision`]), so a restore
//!   inside the window knows the exact schema then; all sorted, written and
//!   read as streams
//!   ([`SideFileWriter`], [`SideFileReader`]) so a backup of a million files
//!   never holds its file list in memory;
//! - `BACKUP_MANIFEST-CHECKSUM`: `sha256:` and 64 lower-case hex digits of
//!   the SHA-256 of the stored `BACKUP_MANIFEST`, so a torn or altered
//!   manifest is detected before it is parsed.
//!
//! The fixed part is a protobuf-wire message (unknown fields are skipped, so
//! newer minor versions stay readable) inside the envelope of
//! [`crate::envelope`] with magic `BKPMANIF`; a reader refuses an unknown
//! major version. In an encrypted backup the enveloped bytes are then
//! written as a sealed stream (see [`crate::crypto`]).
//!
//! ```
//! use backup_format::manifest::{BackupFile, Manifest, SideFileReader, SideFileWriter};
//! use backup_format::{paths, Span, Timestamp};
//!
//! // Stream the file list (sorted by span start, then path) into its side file.
//! let mut files = SideFileWriter::new(paths::FILES_SIDE_FILE, Vec::new(), None).unwrap();
//! for i in 0..3u8 {
//!     files.push(BackupFile { path: format!("data/1-{i}.sst"), span: Span::new([i], [i + 1]), ..Default::default() }).unwrap();
//! }
//! let (files_bytes, files_ref) = files.finish().unwrap();
//!
//! let manifest = Manifest { id: "b1".into(), end_time: Timestamp::from_wall(5), files: files_ref, ..Default::default() };
//! let stored = manifest.encode(None).unwrap();
//! let back = Manifest::decode(paths::BACKUP_MANIFEST, &stored.manifest, &stored.checksum, None).unwrap();
//! let listed: Vec<BackupFile> = SideFileReader::open(paths::FILES_SIDE_FILE, &files_bytes[..], &back.files, None)
//!     .unwrap()
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(listed.len(), 3);
//! ```

mod records;
mod sidefile;

pub use records::{BackupFile, DescriptorRevision, SideRecord, descriptors_at};
pub use sidefile::{SideFileReader, SideFileWriter};

use sha2::{Digest, Sha256};

use crate::crypto::{EncryptionKey, KEY_CHECK_LEN, open_if_sealed, seal_bytes};
use crate::envelope::{open_envelope, seal_envelope};
use crate::wire::{MessageReader, MessageWriter};
use crate::{FormatError, Span, Timestamp};

/// Major version of the manifest format this release writes and reads.
pub const MANIFEST_MAJOR: u16 = 1;
/// Minor version this release writes (1: descriptor revisions and the
/// revision start time; 1.0 readers skip both).
pub const MANIFEST_MINOR: u16 = 1;
/// Name of the side file of a revision-history layer's descriptor revisions.
pub const REVISIONS_SIDE_FILE: &str = "BACKUP_METADATA-DESCRIPTOR-REVISIONS";
const MAGIC: &[u8; 8] = b"BKPMANIF";
const CHECKSUM_PREFIX: &str = "sha256:";

/// The fixed part of a backup layer's manifest.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Manifest {
    /// Format version (major, minor) the manifest was read with; written as the current one.
    pub version: (u16, u16),
    /// Unique id of this backup layer.
    pub id: String,
    /// Id of the cluster backed up.
    pub cluster_id: String,
    /// Start of the covered time interval (ZERO for a full backup).
    pub start_time: Timestamp,
    /// The time the data is consistent as of.
    pub end_time: Timestamp,
    /// Key spans backed up.
    pub spans: Vec<Span>,
    /// Spans new since the previous layer, backed up from the beginning of time.
    pub introduced_spans: Vec<Span>,
    /// Whether every revision in `(start_time, end_time]` is kept.
    pub revision_history: bool,
    /// Whether this is a backup of the whole cluster.
    pub full_cluster: bool,
    /// How the backup is encrypted, when it is.
    pub encryption: Option<ManifestEncryption>,
    /// Totals over all data files.
    pub statistics: Statistics,
    /// The file list side file.
    pub files: SideFileRef,
    /// The descriptors side file.
    pub descriptors: SideFileRef,
    /// The descriptor revisions side file of a revision-history layer
    /// (`None` in layers without revision history, in manifests older than
    /// 1.1, and when the host kept no descriptor history).
    pub revisions: Option<SideFileRef>,
    /// In a revision-history layer, the earliest time its history can be
    /// restored at (inclusive): the start time of an incremental; for a
    /// full backup, just above the highest GC threshold of its spans when it
    /// was taken. ZERO in manifests older than 1.1 (read as `start_time`).
    pub revision_start: Timestamp,
}

impl Manifest {
    /// The earliest time a restore can read this layer's revision history
    /// at (inclusive); only meaningful with `revision_history`.
    pub fn history_start(&self) -> Timestamp {
        self.revision_start.max(self.start_time)
    }
}

/// Encryption facts a manifest records (never the key).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ManifestEncryption {
    /// The KDF named in `ENCRYPTION-INFO`.
    pub kdf: String,
    /// The key check of the backup's key: equal across a chain encrypted with one key.
    pub key_check: [u8; KEY_CHECK_LEN],
}

/// Totals over a backup layer's data.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Statistics {
    /// Rows (distinct primary keys) backed up.
    pub rows: u64,
    /// Secondary index entries backed up.
    pub index_entries: u64,
    /// Raw bytes of data backed up.
    pub bytes: u64,
}

/// What a manifest knows about one of its side files.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SideFileRef {
    /// Path relative to the layer's directory.
    pub name: String,
    /// Number of records.
    pub count: u64,
    /// Stored length in bytes.
    pub stored_bytes: u64,
    /// SHA-256 of the stored bytes.
    pub sha256: [u8; 32],
}

/// The stored bytes of a manifest and of its checksum file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EncodedManifest {
    /// Bytes of `BACKUP_MANIFEST`.
    pub manifest: Vec<u8>,
    /// Bytes of `BACKUP_MANIFEST-CHECKSUM`.
    pub checksum: Vec<u8>,
}

impl Manifest {
    /// Encodes the manifest (sealed with `key` when given) and its checksum file.
    pub fn encode(&self, key: Option<&EncryptionKey>) -> Result<EncodedManifest, FormatError> {
        let body = self.encode_body();
        let enveloped = seal_envelope(MAGIC, MANIFEST_MAJOR, MANIFEST_MINOR, &body)?;
        let manifest = match key {
            Some(key) => seal_bytes(key, &enveloped)?,
            None => enveloped,
        };
        let checksum = checksum_file(&manifest).into_bytes();
        Ok(EncodedManifest { manifest, checksum })
    }

    /// Reads `file` (a `BACKUP_MANIFEST`) after checking it against its checksum file.
    pub fn decode(
        file: &str,
        manifest: &[u8],
        checksum: &[u8],
        key: Option<&EncryptionKey>,
    ) -> Result<Manifest, FormatError> {
        if checksum != checksum_file(manifest).as_bytes() {
            let well_formed = std::str::from_utf8(checksum)
                .ok()
                .and_then(|s| s.strip_prefix(CHECKSUM_PREFIX))
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            return Err(FormatError::checksum(
                file,
                if well_formed {
                    "the whole file (it does not match BACKUP_MANIFEST-CHECKSUM: torn or altered)"
                } else {
                    "BACKUP_MANIFEST-CHECKSUM, which is malformed"
                },
            ));
        }
        let enveloped = open_if_sealed(file, key, manifest)?;
        let (minor, body) =
            open_envelope(file, MAGIC, "backup manifest", MANIFEST_MAJOR, &enveloped)?;
        let mut m = Manifest::decode_body(file, body)?;
        m.version = (MANIFEST_MAJOR, minor);
        Ok(m)
    }

    fn encode_body(&self) -> Vec<u8> {
        let mut m = MessageWriter::new();
        m.bytes(1, self.id.as_bytes())
            .bytes(2, self.cluster_id.as_bytes())
            .message(3, &ts_message(self.start_time))
            .message(4, &ts_message(self.end_time));
        for s in &self.spans {
            m.message(5, &span_message(s));
        }
        for s in &self.introduced_spans {
            m.message(6, &span_message(s));
        }
        m.bool(7, self.revision_history).bool(8, self.full_cluster);
        if let Some(e) = &self.encryption {
            let mut em = MessageWriter::new();
            em.bytes(1, e.kdf.as_bytes()).bytes(2, &e.key_check);
            m.message(9, &em);
        }
        let mut st = MessageWriter::new();
        st.uint(1, self.statistics.rows)
            .uint(2, self.statistics.index_entries)
            .uint(3, self.statistics.bytes);
        m.message(10, &st)
            .message(11, &side_ref_message(&self.files))
            .message(12, &side_ref_message(&self.descriptors));
        if let Some(r) = &self.revisions {
            m.message(13, &side_ref_message(r));
        }
        if !self.revision_start.is_zero() {
            m.message(14, &ts_message(self.revision_start));
        }
        m.finish()
    }

    fn decode_body(file: &str, body: &[u8]) -> Result<Manifest, FormatError> {
        let mut out = Manifest::default();
        let mut m = MessageReader::new(file, "the manifest", body);
        while let Some((field, v)) = m.next_field()? {
            match field {
                1 => out.id = v.string(&m, "id")?,
                2 => out.cluster_id = v.string(&m, "cluster_id")?,
                3 => out.start_time = read_ts(file, v.bytes(&m, "start_time")?)?,
                4 => out.end_time = read_ts(file, v.bytes(&m, "end_time")?)?,
                5 => out.spans.push(read_span(file, v.bytes(&m, "spans")?)?),
                6 => out
                    .introduced_spans
                    .push(read_span(file, v.bytes(&m, "introduced_spans")?)?),
                7 => out.revision_history = v.bool(&m, "revision_history")?,
                8 => out.full_cluster = v.bool(&m, "full_cluster")?,
                9 => out.encryption = Some(read_encryption(file, v.bytes(&m, "encryption")?)?),
                10 => out.statistics = read_statistics(file, v.bytes(&m, "statistics")?)?,
                11 => out.files = read_side_ref(file, v.bytes(&m, "files")?)?,
                12 => out.descriptors = read_side_ref(file, v.bytes(&m, "descriptors")?)?,
                13 => out.revisions = Some(read_side_ref(file, v.bytes(&m, "revisions")?)?),
                14 => out.revision_start = read_ts(file, v.bytes(&m, "revision_start")?)?,
                _ => {} // a newer minor version's field: skipped
            }
        }
        Ok(out)
    }
}

/// The contents of the checksum file for the stored manifest bytes.
pub fn checksum_file(manifest: &[u8]) -> String {
    let digest = Sha256::digest(manifest);
    let mut s = String::with_capacity(CHECKSUM_PREFIX.len() + 64);
    s.push_str(CHECKSUM_PREFIX);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub(crate) fn ts_message(ts: Timestamp) -> MessageWriter {
    let mut m = MessageWriter::new();
    m.uint(1, ts.wall as u64).uint(2, u64::from(ts.logical));
    m
}

pub(crate) fn read_ts(file: &str, bytes: &[u8]) -> Result<Timestamp, FormatError> {
    let mut ts = Timestamp::ZERO;
    let mut m = MessageReader::new(file, "a timestamp", bytes);
    while let Some((field, v)) = m.next_field()? {
        match field {
            1 => ts.wall = v.uint(&m, "wall")? as i64,
            2 => ts.logical = v.u32(&m, "logical")?,
            _ => {}
        }
    }
    Ok(ts)
}

pub(crate) fn span_message(s: &Span) -> MessageWriter {
    let mut m = MessageWriter::new();
    m.bytes(1, &s.start).bytes(2, &s.end);
    m
}

pub(crate) fn read_span(file: &str, bytes: &[u8]) -> Result<Span, FormatError> {
    let mut s = Span::default();
    let mut m = MessageReader::new(file, "a span", bytes);
    while let Some((field, v)) = m.next_field()? {
        match field {
            1 => s.start = v.bytes(&m, "start")?.to_vec(),
            2 => s.end = v.bytes(&m, "end")?.to_vec(),
            _ => {}
        }
    }
    Ok(s)
}

fn read_encryption(file: &str, bytes: &[u8]) -> Result<ManifestEncryption, FormatError> {
    let mut m = MessageReader::new(file, "the encryption info", bytes);
    let (mut kdf, mut key_check) = (String::new(), None);
    while let Some((field, v)) = m.next_field()? {
        match field {
            1 => kdf = v.string(&m, "kdf")?,
            2 => {
                key_check = Some(
                    <[u8; KEY_CHECK_LEN]>::try_from(v.bytes(&m, "key_check")?)
                        .map_err(|_| m.error("a key check of the wrong length"))?,
                )
            }
            _ => {}
        }
    }
    let key_check =
        key_check.ok_or_else(|| FormatError::corrupt(file, "the key check is missing"))?;
    Ok(ManifestEncryption { kdf, key_check })
}

fn read_statistics(file: &str, bytes: &[u8]) -> Result<Statistics, FormatError> {
    let mut s = Statistics::default();
    let mut m = MessageReader::new(file, "the statistics", bytes);
    while let Some((field, v)) = m.next_field()? {
        match field {
            1 => s.rows = v.uint(&m, "rows")?,
            2 => s.index_entries = v.uint(&m, "index_entries")?,
            3 => s.bytes = v.uint(&m, "bytes")?,
            _ => {}
        }
    }
    Ok(s)
}

fn side_ref_message(r: &SideFileRef) -> MessageWriter {
    let mut m = MessageWriter::new();
    m.bytes(1, r.name.as_bytes())
        .uint(2, r.count)
        .uint(3, r.stored_bytes)
        .bytes(4, &r.sha256);
    m
}

fn read_side_ref(file: &str, bytes: &[u8]) -> Result<SideFileRef, FormatError> {
    let mut r = SideFileRef::default();
    let mut m = MessageReader::new(file, "a side file reference", bytes);
    while let Some((field, v)) = m.next_field()? {
        match field {
            1 => r.name = v.string(&m, "name")?,
            2 => r.count = v.uint(&m, "count")?,
            3 => r.stored_bytes = v.uint(&m, "stored_bytes")?,
            4 => {
                r.sha256 = <[u8; 32]>::try_from(v.bytes(&m, "sha256")?)
                    .map_err(|_| m.error("a SHA-256 of the wrong length"))?
            }
            _ => {}
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            version: (MANIFEST_MAJOR, MANIFEST_MINOR),
            id: "b1".into(),
            end_time: Timestamp::new(5, 1),
            spans: vec![Span::new(*b"a", *b"b")],
            ..Manifest::default()
        }
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let m = sample();
        let mut body = m.encode_body();
        let mut extra = MessageWriter::new();
        extra
            .bytes(77, b"a field from a newer minor version")
            .uint(78, 5);
        body.extend_from_slice(extra.as_bytes());
        let enveloped = seal_envelope(MAGIC, MANIFEST_MAJOR, 9, &body).unwrap();
        let checksum = checksum_file(&enveloped);
        let back =
            Manifest::decode("BACKUP_MANIFEST", &enveloped, checksum.as_bytes(), None).unwrap();
        assert_eq!(back.version, (1, 9));
        assert_eq!(
            Manifest {
                version: m.version,
                ..back
            },
            m
        );
    }

    #[test]
    fn unknown_major_is_refused_clearly() {
        let enveloped = seal_envelope(MAGIC, 2, 0, &sample().encode_body()).unwrap();
        let checksum = checksum_file(&enveloped);
        let err = Manifest::decode("x/BACKUP_MANIFEST", &enveloped, checksum.as_bytes(), None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "x/BACKUP_MANIFEST has format version 2.0, but this release reads only major version 1: read it with a newer release"
        );
    }
}
