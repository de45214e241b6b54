//! The records of the manifest's side files: data files, descriptors and
//! descriptor revisions.
//!
//! Each record is one protobuf-wire message (field tables in `docs/FORMAT.md`).

use super::{read_span, read_ts, span_message, ts_message};
use crate::datafile::FileSummary;
use crate::wire::{MessageReader, MessageWriter};
use crate::{
    Dependency, DependencyKind, Descriptor, DescriptorId, DescriptorKind, FormatError, Span,
    Timestamp,
};

/// A record type of a side file.
pub trait SideRecord: Sized {
    /// Magic bytes of its side file.
    const MAGIC: [u8; 8];
    /// What its side file is called in errors.
    const KIND: &'static str;
    /// Appends the record's protobuf-wire message to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Decodes one record of `file`.
    fn decode(file: &str, bytes: &[u8]) -> Result<Self, FormatError>;
    /// Whether `next` may follow `prev` (strictly increasing order).
    fn follows(prev: &Self, next: &Self) -> bool;
}

/// One data file as the manifest's file list records it.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct BackupFile {
    /// Path relative to the layer's directory (`data/1-7.sst`).
    pub path: String,
    /// Key span of its entries.
    pub span: Span,
    /// Entries (versions).
    pub entry_count: u64,
    /// Distinct keys.
    pub row_count: u64,
    /// Raw bytes.
    pub raw_bytes: u64,
    /// Stored bytes.
    pub stored_bytes: u64,
    /// crc32c of the stored bytes.
    pub checksum: u32,
    /// Locality of the storage it was written to (empty for the default).
    pub locality: String,
    /// Oldest entry timestamp.
    pub min_ts: Timestamp,
    /// Newest entry timestamp.
    pub max_ts: Timestamp,
}

impl BackupFile {
    /// The file-list record of a finished data file.
    pub fn from_summary(summary: &FileSummary, locality: &str) -> BackupFile {
        BackupFile {
            path: summary.name.clone(),
            span: summary.span.clone(),
            entry_count: summary.entry_count,
            row_count: summary.row_count,
            raw_bytes: summary.raw_bytes,
            stored_bytes: summary.stored_bytes,
            checksum: summary.checksum,
            locality: locality.to_string(),
            min_ts: summary.min_ts,
            max_ts: summary.max_ts,
        }
    }
}

impl SideRecord for BackupFile {
    const MAGIC: [u8; 8] = *b"BKPFILES";
    const KIND: &'static str = "file list";

    fn encode(&self, out: &mut Vec<u8>) {
        let mut m = MessageWriter::new();
        m.bytes(1, self.path.as_bytes())
            .message(2, &span_message(&self.span))
            .uint(3, self.entry_count)
            .uint(4, self.row_count)
            .uint(5, self.raw_bytes)
            .uint(6, self.stored_bytes)
            .fixed32(7, self.checksum)
            .bytes(8, self.locality.as_bytes())
            .message(9, &ts_message(self.min_ts))
            .message(10, &ts_message(self.max_ts));
        out.extend_from_slice(m.as_bytes());
    }

    fn decode(file: &str, bytes: &[u8]) -> Result<BackupFile, FormatError> {
        let mut f = BackupFile::default();
        let mut m = MessageReader::new(file, "a file-list record", bytes);
        while let Some((field, v)) = m.next_field()? {
            match field {
                1 => f.path = v.string(&m, "path")?,
                2 => f.span = read_span(file, v.bytes(&m, "span")?)?,
                3 => f.entry_count = v.uint(&m, "entry_count")?,
                4 => f.row_count = v.uint(&m, "row_count")?,
                5 => f.raw_bytes = v.uint(&m, "raw_bytes")?,
                6 => f.stored_bytes = v.uint(&m, "stored_bytes")?,
                7 => f.checksum = v.fixed32(&m, "checksum")?,
                8 => f.locality = v.string(&m, "locality")?,
                9 => f.min_ts = read_ts(file, v.bytes(&m, "min_ts")?)?,
                10 => f.max_ts = read_ts(file, v.bytes(&m, "max_ts")?)?,
                _ => {}
            }
        }
        Ok(f)
    }

    fn follows(prev: &BackupFile, next: &BackupFile) -> bool {
        (&prev.span.start, &prev.path) < (&next.span.start, &next.path)
    }
}

fn kind_code(k: DescriptorKind) -> u64 {
    match k {
        DescriptorKind::Database => 1,
        DescriptorKind::Schema => 2,
        DescriptorKind::Table => 3,
        DescriptorKind::View => 4,
        DescriptorKind::Sequence => 5,
        DescriptorKind::Type => 6,
    }
}

fn dep_code(k: DependencyKind) -> u64 {
    match k {
        DependencyKind::ForeignKey => 1,
        DependencyKind::Sequence => 2,
        DependencyKind::ViewSource => 3,
        DependencyKind::Type => 4,
    }
}

impl SideRecord for Descriptor {
    const MAGIC: [u8; 8] = *b"BKPDESCS";
    const KIND: &'static str = "descriptor list";

    fn encode(&self, out: &mut Vec<u8>) {
        let mut m = MessageWriter::new();
        m.uint(1, self.id)
            .uint(2, kind_code(self.kind))
            .bytes(3, self.name.as_bytes())
            .uint(4, self.parent_id)
            .uint(5, self.parent_schema_id);
        for s in &self.spans {
            m.message(6, &span_message(s));
        }
        for d in &self.dependencies {
            let mut dm = MessageWriter::new();
            dm.uint(1, d.id).uint(2, dep_code(d.kind));
            m.message(7, &dm);
        }
        m.bool(8, self.exclude_data_from_backup)
            .bytes(9, &self.payload);
        out.extend_from_slice(m.as_bytes());
    }

    fn decode(file: &str, bytes: &[u8]) -> Result<Descriptor, FormatError> {
        let mut d = Descriptor {
            id: 0,
            kind: DescriptorKind::Database,
            name: String::new(),
            parent_id: 0,
            parent_schema_id: 0,
            spans: Vec::new(),
            dependencies: Vec::new(),
            exclude_data_from_backup: false,
            payload: Vec::new(),
        };
        let mut kind = 0;
        let mut m = MessageReader::new(file, "a descriptor record", bytes);
        while let Some((field, v)) = m.next_field()? {
            match field {
                1 => d.id = v.uint(&m, "id")?,
                2 => kind = v.uint(&m, "kind")?,
                3 => d.name = v.string(&m, "name")?,
                4 => d.parent_id = v.uint(&m, "parent_id")?,
                5 => d.parent_schema_id = v.uint(&m, "parent_schema_id")?,
                6 => d.spans.push(read_span(file, v.bytes(&m, "spans")?)?),
                7 => d
                    .dependencies
                    .push(read_dependency(file, v.bytes(&m, "dependencies")?)?),
                8 => d.exclude_data_from_backup = v.bool(&m, "exclude_data_from_backup")?,
                9 => d.payload = v.bytes(&m, "payload")?.to_vec(),
                _ => {}
            }
        }
        d.kind = match kind {
            1 => DescriptorKind::Database,
            2 => DescriptorKind::Schema,
            3 => DescriptorKind::Table,
            4 => DescriptorKind::View,
            5 => DescriptorKind::Sequence,
            6 => DescriptorKind::Type,
            k => {
                return Err(FormatError::corrupt(
                    file,
                    format!("descriptor {} has unknown kind {k}", d.id),
                ));
            }
        };
        Ok(d)
    }

    fn follows(prev: &Descriptor, next: &Descriptor) -> bool {
        prev.id < next.id
    }
}

fn read_dependency(file: &str, bytes: &[u8]) -> Result<Dependency, FormatError> {
    let (mut id, mut kind) = (0, 0);
    let mut m = MessageReader::new(file, "a dependency", bytes);
    while let Some((field, v)) = m.next_field()? {
        match field {
            1 => id = v.uint(&m, "id")?,
            2 => kind = v.uint(&m, "kind")?,
            _ => {}
        }
    }
    let kind = match kind {
        1 => DependencyKind::ForeignKey,
        2 => DependencyKind::Sequence,
        3 => DependencyKind::ViewSource,
        4 => DependencyKind::Type,
        k => {
            return Err(FormatError::corrupt(
                file,
                format!("a dependency has unknown kind {k}"),
            ));
        }
    };
    Ok(Dependency { id, kind })
}

/// One revision of a descriptor inside a revision-history layer's window:
/// the descriptor as written at `time`, or its drop.
///
/// A layer's revision list opens with the state of every descriptor it
/// covers as of the layer's [`super::Manifest::revision_start`] (records at
/// exactly that time), followed by every change after it up to the layer's
/// end time, in `(time, id)` order. The schema as of a time `t` in the
/// window is, per id, the newest record at or before `t` (a drop, or no
/// record: the object did not exist then).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DescriptorRevision {
    /// The descriptor's id.
    pub id: DescriptorId,
    /// When this revision was written.
    pub time: Timestamp,
    /// The descriptor as of `time`; `None` when it was dropped then.
    pub descriptor: Option<Descriptor>,
}

impl SideRecord for DescriptorRevision {
    const MAGIC: [u8; 8] = *b"BKPDREVS";
    const KIND: &'static str = "descriptor revision list";

    fn encode(&self, out: &mut Vec<u8>) {
        let mut m = MessageWriter::new();
        m.uint(1, self.id).message(2, &ts_message(self.time));
        if let Some(d) = &self.descriptor {
            let mut body = Vec::new();
            d.encode(&mut body);
            m.bytes(3, &body);
        }
        out.extend_from_slice(m.as_bytes());
    }

    fn decode(file: &str, bytes: &[u8]) -> Result<DescriptorRevision, FormatError> {
        let mut r = DescriptorRevision {
            id: 0,
            time: Timestamp::ZERO,
            descriptor: None,
        };
        let mut m = MessageReader::new(file, "a descriptor revision record", bytes);
        while let Some((field, v)) = m.next_field()? {
            match field {
                1 => r.id = v.uint(&m, "id")?,
                2 => r.time = read_ts(file, v.bytes(&m, "time")?)?,
                3 => r.descriptor = Some(Descriptor::decode(file, v.bytes(&m, "descriptor")?)?),
                _ => {}
            }
        }
        if let Some(d) = &r.descriptor
            && d.id != r.id
        {
            return Err(FormatError::corrupt(
                file,
                format!(
                    "a revision of descriptor {} at {} holds descriptor {}",
                    r.id, r.time, d.id
                ),
            ));
        }
        Ok(r)
    }

    fn follows(prev: &DescriptorRevision, next: &DescriptorRevision) -> bool {
        (prev.time, prev.id) < (next.time, next.id)
    }
}

/// The schema as of `at` from a layer's revision list (see
/// [`DescriptorRevision`]): per id, the newest revision at or before `at`,
/// dropped objects left out; sorted by id.
pub fn descriptors_at(
    revisions: impl IntoIterator<Item = DescriptorRevision>,
    at: Timestamp,
) -> Vec<Descriptor> {
    let mut state = std::collections::BTreeMap::new();
    for r in revisions {
        if r.time <= at {
            state.insert(r.id, r.descriptor);
        }
    }
    state.into_values().flatten().collect()
}
