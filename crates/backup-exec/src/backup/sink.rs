//! One worker's data-file sink: entries in MVCC order in, data files
//! streamed to storage (create-only) out, split at the file-size setting.
//!
//! Memory is one export chunk plus about a MiB of encoded output: each
//! block the format writer emits goes into a small buffer that is drained
//! into the storage's streamed writer after every MiB of raw entries.
//!
//! Compression and encryption are CPU work: each chunk is encoded on a
//! blocking thread (`spawn_blocking`), never on the async workers, so the
//! uploads and the coordinator keep running meanwhile. A data file never
//! mixes rows and secondary-index entries (a new file starts where one kind
//! ends and the other begins), so the manifest can count both from the
//! files' distinct keys.
//!
//! Invariant kept here: a *piece* (a key span whose entries this sink
//! received) is reported done only together with the uploaded file that
//! holds its entries — or at once when it had no entries. A file never ends
//! inside one key's revisions, so a file boundary is a key boundary and the
//! piece is cut there.
//!
//! A data file also holds one contiguous run of key space: a worker's
//! ranges are rarely adjacent (the other nodes' ranges lie between them), so
//! when a piece does not start where the open file's last piece ended, the
//! file is closed first. Each file's span in the manifest is then tight, and
//! a restore sizes its work units by the files truly under them and opens
//! only those.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use backup_format::datafile::{DataFileOptions, DataFileWriter};
use backup_format::manifest::BackupFile;
use backup_format::paths::data_file_name;
use backup_format::{MvccEntry, Span, SpanSet};
use backup_storage::{ExternalStorage, ObjectWriter};
use bytes::Bytes;

use crate::error::ExecError;
use crate::host::NodeId;

/// Raw bytes encoded between two drains of the encoded output: the sink's
/// output buffer holds about this much (compressed) instead of a whole
/// export chunk's worth.
const DRAIN_BYTES: usize = 1 << 20;

/// What a sink reports: spans now safely stored, with the file holding them.
#[derive(Debug)]
pub(crate) struct Done {
    /// The uploaded file, or `None` for pieces without entries.
    pub(crate) file: Option<BackupFile>,
    /// Key spans whose entries are all in `file` (or were empty).
    pub(crate) pieces: Vec<Span>,
}

/// A `Write` whose bytes are drained after each chunk.
#[derive(Clone, Default)]
struct Pending(Arc<Mutex<Vec<u8>>>);

impl Pending {
    fn take(&self) -> Vec<u8> {
        match self.0.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }
}

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.lock() {
            Ok(mut v) => v.extend_from_slice(buf),
            Err(p) => p.into_inner().extend_from_slice(buf),
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The CPU side of the open file; moved to a blocking thread for each chunk.
struct Encoding {
    writer: DataFileWriter<Pending>,
    pending: Pending,
    last_key: Vec<u8>,
    /// Whether the file holds secondary-index entries (else rows).
    index: bool,
}

impl Encoding {
    /// Encodes `entries[from..]` until the file should roll (at a new key,
    /// once the file is big enough or the kind of key changes) or, between
    /// entries, once `budget` raw bytes were encoded (so the encoded output
    /// is drained in pieces of about that size, whatever the chunk size);
    /// returns where it stopped and whether the file should roll there.
    fn encode(
        &mut self,
        entries: &[MvccEntry],
        from: usize,
        target_size: u64,
        index_spans: &SpanSet,
        budget: usize,
    ) -> Result<(usize, bool), ExecError> {
        let mut i = from;
        let mut encoded = 0usize;
        while let Some(e) = entries.get(i) {
            if encoded >= budget {
                return Ok((i, false));
            }
            let new_key = e.key != self.last_key;
            // Roll at a new key when the file is big enough, when rows give
            // way to index entries (or back), or when the key goes backwards
            // (a requeued span below what this file already holds).
            if new_key
                && self.writer.entry_count() > 0
                && (self.writer.size_estimate() >= target_size
                    || index_spans.contains_key(&e.key) != self.index
                    || e.key < self.last_key)
            {
                return Ok((i, true));
            }
            self.writer.add(e)?;
            encoded += e.size();
            if new_key {
                self.last_key.clear();
                self.last_key.extend_from_slice(&e.key);
            }
            i += 1;
        }
        Ok((i, false))
    }
}

/// Where a sink writes and how.
#[derive(Clone)]
pub(crate) struct SinkTarget {
    pub(crate) node: NodeId,
    pub(crate) storage: Arc<dyn ExternalStorage>,
    /// `key=value` of the storage's locality, empty for the default.
    pub(crate) locality: String,
    pub(crate) layer_dir: String,
    pub(crate) options: DataFileOptions,
    /// Job-wide sequence of data-file numbers (starts at the attempt's HLC
    /// wall time, so names are never reused across resumptions).
    pub(crate) seq: Arc<AtomicU64>,
    pub(crate) index_spans: Arc<SpanSet>,
}

/// One worker's sink.
pub(crate) struct Sink {
    target: SinkTarget,
    /// The open file's encoder (`None`: no file open).
    encoding: Option<Encoding>,
    /// The open file's upload.
    upload: Option<Box<dyn ObjectWriter>>,
    /// Pieces whose entries are all in the open file.
    pieces: Vec<Span>,
    /// Start of the piece being received, and whether it has entries yet.
    piece: Option<(Vec<u8>, bool)>,
    /// Where the open file's run of key space ends: the end of the last
    /// piece ended while it was open.
    run_end: Option<Vec<u8>>,
}

fn lost(e: tokio::task::JoinError) -> ExecError {
    super::join_error("data-file encoding", e)
}

impl Sink {
    pub(crate) fn new(target: SinkTarget) -> Sink {
        Sink {
            target,
            encoding: None,
            upload: None,
            pieces: Vec::new(),
            piece: None,
            run_end: None,
        }
    }

    /// Starts receiving the span beginning at `start`; if the open file's
    /// run of key space does not reach `start`, closes that file first and
    /// returns its report.
    pub(crate) async fn begin_piece(&mut self, start: &[u8]) -> Result<Option<Done>, ExecError> {
        let closed = if self.encoding.is_some() && self.run_end.as_deref() != Some(start) {
            self.close().await?
        } else {
            None
        };
        self.piece = Some((start.to_vec(), false));
        Ok(closed)
    }

    /// Ends the piece at `end` (exclusive): everything before `end` was
    /// received. Returns a report when the piece needs no file.
    pub(crate) fn end_piece(&mut self, end: &[u8]) -> Option<Done> {
        let (start, has_entries) = self.piece.take()?;
        if start.as_slice() >= end {
            return None;
        }
        let span = Span::new(start, end.to_vec());
        if self.encoding.is_some() {
            self.run_end = Some(end.to_vec());
        }
        if has_entries && self.encoding.is_some() {
            self.pieces.push(span);
            return None;
        }
        Some(Done {
            file: None,
            pieces: vec![span],
        })
    }

    /// Adds one export chunk's entries; returns the files finished meanwhile.
    pub(crate) async fn add(&mut self, entries: Vec<MvccEntry>) -> Result<Vec<Done>, ExecError> {
        let mut done = Vec::new();
        let mut entries = entries;
        let mut pos = 0;
        while pos < entries.len() {
            let mut encoding = match self.encoding.take() {
                Some(enc) => enc,
                None => {
                    let index = self.target.index_spans.contains_key(&entries[pos].key);
                    self.open_file(index).await?
                }
            };
            let spans = self.target.index_spans.clone();
            let size = self.target.options.target_file_size;
            let (encoding, back, stop) = tokio::task::spawn_blocking(move || {
                let r = encoding.encode(&entries, pos, size, &spans, DRAIN_BYTES);
                (encoding, entries, r)
            })
            .await
            .map_err(lost)?;
            self.encoding = Some(encoding);
            entries = back;
            let (stop, roll) = stop?;
            if stop > pos
                && let Some((_, has)) = &mut self.piece
            {
                *has = true;
            }
            self.drain().await?;
            pos = stop;
            if !roll {
                continue;
            }
            if let Some(e) = entries.get(pos) {
                // Roll: cut the piece at this key; everything before it is in the file.
                let key = e.key.clone();
                match self.piece.take() {
                    Some((start, true)) => self.pieces.push(Span::new(start, key.clone())),
                    Some((start, false)) if start < key => done.push(Done {
                        file: None,
                        pieces: vec![Span::new(start, key.clone())],
                    }),
                    _ => {}
                }
                self.piece = Some((key, false));
                if let Some(d) = self.close().await? {
                    done.push(d);
                }
            }
        }
        Ok(done)
    }

    async fn open_file(&mut self, index: bool) -> Result<Encoding, ExecError> {
        let seq = self.target.seq.fetch_add(1, Ordering::Relaxed);
        let name = data_file_name(self.target.node, seq);
        let path = format!("{}/{name}", self.target.layer_dir);
        self.upload = Some(self.target.storage.writer(&path).await?);
        let pending = Pending::default();
        let writer = DataFileWriter::new(&name, pending.clone(), &self.target.options)?;
        Ok(Encoding {
            writer,
            pending,
            last_key: Vec::new(),
            index,
        })
    }

    async fn drain(&mut self) -> Result<(), ExecError> {
        if let (Some(enc), Some(upload)) = (&self.encoding, &mut self.upload) {
            let bytes = enc.pending.take();
            if !bytes.is_empty() {
                upload.write(Bytes::from(bytes)).await?;
            }
        }
        Ok(())
    }

    /// Finishes and uploads the open file, if any.
    pub(crate) async fn close(&mut self) -> Result<Option<Done>, ExecError> {
        self.run_end = None;
        let (Some(enc), Some(mut upload)) = (self.encoding.take(), self.upload.take()) else {
            return Ok(None);
        };
        let (pending, summary) = tokio::task::spawn_blocking(move || enc.writer.finish())
            .await
            .map_err(lost)??;
        let tail = pending.take();
        if !tail.is_empty() {
            upload.write(Bytes::from(tail)).await?;
        }
        upload.finish().await?;
        Ok(Some(Done {
            file: Some(BackupFile::from_summary(&summary, &self.target.locality)),
            pieces: std::mem::take(&mut self.pieces),
        }))
    }
}
