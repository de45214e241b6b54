//! One worker's data-file sink: entries in MVCC order in, data files
//! streamed to storage (create-only) out, split at the file-size setting.
//!
//! Memory is one block plus one export chunk: each block the format writer
//! emits goes into a small buffer that is drained into the storage's
//! streamed writer after every chunk.
//!
//! Invariant kept here: a *piece* (a key span whose entries this sink
//! received) is reported done only together with the uploaded file that
//! holds its entries — or at once when it had no entries. A file never ends
//! inside one key's revisions, so a file boundary is a key boundary and the
//! piece is cut there.

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

/// What a sink reports: spans now safely stored, with the file holding them.
#[derive(Debug)]
pub(crate) struct Done {
    /// The uploaded file, or `None` for pieces without entries.
    pub(crate) file: Option<BackupFile>,
    /// Key spans whose entries are all in `file` (or were empty).
    pub(crate) pieces: Vec<Span>,
    /// Rows in `file`.
    pub(crate) rows: u64,
    /// Secondary index entries in `file`.
    pub(crate) index_entries: u64,
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

struct OpenFile {
    writer: DataFileWriter<Pending>,
    pending: Pending,
    upload: Box<dyn ObjectWriter>,
    pieces: Vec<Span>,
    rows: u64,
    index_entries: u64,
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
    open: Option<OpenFile>,
    /// Start of the piece being received, and whether it has entries yet.
    piece: Option<(Vec<u8>, bool)>,
    last_key: Vec<u8>,
}

impl Sink {
    pub(crate) fn new(target: SinkTarget) -> Sink {
        Sink {
            target,
            open: None,
            piece: None,
            last_key: Vec::new(),
        }
    }

    /// Starts receiving the span beginning at `start`.
    pub(crate) fn begin_piece(&mut self, start: &[u8]) {
        self.piece = Some((start.to_vec(), false));
    }

    /// Ends the piece at `end` (exclusive): everything before `end` was
    /// received. Returns a report when the piece needs no file.
    pub(crate) fn end_piece(&mut self, end: &[u8]) -> Option<Done> {
        let (start, has_entries) = self.piece.take()?;
        if start.as_slice() >= end {
            return None;
        }
        let span = Span::new(start, end.to_vec());
        match (&mut self.open, has_entries) {
            (Some(f), true) => {
                f.pieces.push(span);
                None
            }
            _ => Some(Done {
                file: None,
                pieces: vec![span],
                rows: 0,
                index_entries: 0,
            }),
        }
    }

    /// Adds one export chunk's entries; returns the files finished meanwhile.
    pub(crate) async fn add(&mut self, entries: &[MvccEntry]) -> Result<Vec<Done>, ExecError> {
        let mut done = Vec::new();
        for e in entries {
            let new_key = e.key != self.last_key;
            let roll = self.open.as_ref().is_some_and(|f| {
                new_key && f.writer.size_estimate() >= self.target.options.target_file_size
            });
            if roll {
                // Cut the piece at this key: everything before it is in the file.
                match self.piece.take() {
                    Some((start, true)) => {
                        if let Some(f) = &mut self.open {
                            f.pieces.push(Span::new(start, e.key.clone()));
                        }
                    }
                    Some((start, false)) if start < e.key => done.push(Done {
                        file: None,
                        pieces: vec![Span::new(start, e.key.clone())],
                        rows: 0,
                        index_entries: 0,
                    }),
                    _ => {}
                }
                self.piece = Some((e.key.clone(), false));
                if let Some(d) = self.close().await? {
                    done.push(d);
                }
            }
            if self.open.is_none() {
                self.open_file().await?;
            }
            if let Some(f) = &mut self.open {
                f.writer.add(e)?;
                if new_key {
                    if self.target.index_spans.contains_key(&e.key) {
                        f.index_entries += 1;
                    } else {
                        f.rows += 1;
                    }
                }
            }
            if let Some((_, has)) = &mut self.piece {
                *has = true;
            }
            if new_key {
                self.last_key.clear();
                self.last_key.extend_from_slice(&e.key);
            }
        }
        self.drain().await?;
        Ok(done)
    }

    async fn open_file(&mut self) -> Result<(), ExecError> {
        let seq = self.target.seq.fetch_add(1, Ordering::Relaxed);
        let name = data_file_name(self.target.node, seq);
        let path = format!("{}/{name}", self.target.layer_dir);
        let upload = self.target.storage.writer(&path).await?;
        let pending = Pending::default();
        let writer = DataFileWriter::new(&name, pending.clone(), &self.target.options)?;
        self.open = Some(OpenFile {
            writer,
            pending,
            upload,
            pieces: Vec::new(),
            rows: 0,
            index_entries: 0,
        });
        Ok(())
    }

    async fn drain(&mut self) -> Result<(), ExecError> {
        if let Some(f) = &mut self.open {
            let bytes = f.pending.take();
            if !bytes.is_empty() {
                f.upload.write(Bytes::from(bytes)).await?;
            }
        }
        Ok(())
    }

    /// Finishes and uploads the open file, if any.
    pub(crate) async fn close(&mut self) -> Result<Option<Done>, ExecError> {
        let Some(f) = self.open.take() else {
            return Ok(None);
        };
        let (pending, summary) = f.writer.finish()?;
        let mut upload = f.upload;
        let tail = pending.take();
        if !tail.is_empty() {
            upload.write(Bytes::from(tail)).await?;
        }
        upload.finish().await?;
        self.last_key.clear();
        Ok(Some(Done {
            file: Some(BackupFile::from_summary(&summary, &self.target.locality)),
            pieces: f.pieces,
            rows: f.rows,
            index_entries: f.index_entries,
        }))
    }
}
