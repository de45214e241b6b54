//! One work unit: read only the needed blocks of each file (ranged reads),
//! merge the layers per key (the newest version at or below the restore
//! time wins; a delete deletes), rekey, and ingest in batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use backup_format::datafile::{Block, BlockHandle, DataFileDecoder, EntryRef, Footer, Index};
use backup_format::{EncryptionKey, Span, SpanSet, Timestamp};
use bytes::Bytes;

use super::chain::missing;
use super::cover::{LayerFile, WorkUnit};
use super::spec::RestoreSettings;
use crate::error::ExecError;
use crate::host::{Ingest, IngestBatch, KeyRewriter};

/// What a unit restored.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct UnitStats {
    pub(crate) rows: u64,
    pub(crate) index_entries: u64,
    pub(crate) bytes: u64,
}

/// What every unit of one restore shares.
pub(crate) struct UnitContext {
    pub(crate) key: Option<EncryptionKey>,
    /// The restore time: versions above it are ignored.
    pub(crate) read_at: Timestamp,
    /// The timestamp every restored entry is written at.
    pub(crate) write_at: Timestamp,
    pub(crate) rewriter: Arc<dyn KeyRewriter>,
    pub(crate) ingest: Arc<dyn Ingest>,
    pub(crate) index_spans: SpanSet,
    pub(crate) settings: RestoreSettings,
    /// Set when another unit failed: stop at the next batch.
    pub(crate) stop: Arc<AtomicBool>,
}

/// Entries of one file within a span, read block by block: a cursor over
/// the current decoded block, which later blocks reuse the buffer of.
struct FileCursor {
    file: Arc<LayerFile>,
    decoder: DataFileDecoder,
    blocks: Vec<BlockHandle>,
    next_block: usize,
    fetched: Bytes,
    fetched_from: u64,
    block: Block,
    /// Offset in `block` of the current entry, which lies in `span`.
    pos: usize,
    /// Offset of the entry after it.
    next: usize,
    /// Whether every entry of `block` lies in `span` (most blocks of a
    /// unit: only the first and the last may cross its bounds).
    block_in_span: bool,
    span: Span,
    read_bytes: u64,
}

impl FileCursor {
    /// Reads the footer and index, picks the blocks overlapping `span`, and
    /// moves to the first entry in it; `None` if there is none.
    async fn open(
        file: Arc<LayerFile>,
        span: &Span,
        key: Option<&EncryptionKey>,
        read_bytes: u64,
    ) -> Result<Option<FileCursor>, ExecError> {
        let (decoder, index) = read_index(&file, key).await?;
        let blocks = index.blocks_overlapping(span);
        let mut cursor = FileCursor {
            file,
            decoder,
            blocks,
            next_block: 0,
            fetched: Bytes::new(),
            fetched_from: 0,
            block: Block::default(),
            pos: 0,
            next: 0,
            block_in_span: false,
            span: span.clone(),
            read_bytes,
        };
        Ok(cursor.settle().await?.then_some(cursor))
    }

    /// The current entry.
    fn current(&self) -> Option<EntryRef<'_>> {
        self.block.entry_at(self.pos).map(|(e, _)| e)
    }

    /// Moves past the current entry; `false` when the file has no more.
    async fn advance(&mut self) -> Result<bool, ExecError> {
        self.pos = self.next;
        self.settle().await
    }

    /// Moves to the first entry in the span at or after `pos`, loading
    /// blocks as needed; `false` when the file has no more.
    async fn settle(&mut self) -> Result<bool, ExecError> {
        loop {
            while let Some((e, next)) = self.block.entry_at(self.pos) {
                if self.block_in_span || self.span.contains_key(e.key) {
                    self.next = next;
                    return Ok(true);
                }
                self.pos = next;
            }
            if !self.load_next().await? {
                return Ok(false);
            }
        }
    }

    /// Decodes the next needed block into `block`; `false` if none is left.
    async fn load_next(&mut self) -> Result<bool, ExecError> {
        let Some(handle) = self.blocks.get(self.next_block).cloned() else {
            return Ok(false);
        };
        let fetched_end = self.fetched_from + self.fetched.len() as u64;
        if handle.offset < self.fetched_from || handle.offset + handle.len > fetched_end {
            // This block and the following needed ones, up to the read size.
            let range =
                BlockHandle::coalesced_range(&self.blocks[self.next_block..], self.read_bytes)
                    .unwrap_or_else(|| handle.range());
            self.fetched = fetch(&self.file, range).await?;
            self.fetched_from = handle.offset;
        }
        let start = usize::try_from(handle.offset - self.fetched_from).unwrap_or(usize::MAX);
        let stored = usize::try_from(handle.len)
            .ok()
            .and_then(|n| self.fetched.get(start..start.checked_add(n)?))
            .ok_or_else(|| ExecError::Internal(format!("block {} not fetched", handle.number)))?;
        self.decoder
            .decode_block_into(&handle, stored, &mut self.block)?;
        self.next_block += 1;
        self.pos = 0;
        // Decoding checked the block's first and last keys against these.
        self.block_in_span =
            self.span.contains_key(&handle.first_key) && self.span.contains_key(&handle.last_key);
        Ok(true)
    }
}

/// Reads the footer and block index of `file` (two or three ranged reads).
pub(crate) async fn read_index(
    file: &LayerFile,
    key: Option<&EncryptionKey>,
) -> Result<(DataFileDecoder, Index), ExecError> {
    let path = file.path.clone();
    let len = file.file.stored_bytes;
    if len < Footer::TRAILER_LEN as u64 {
        return Err(ExecError::BackupFile {
            file: path,
            detail: format!("the file list says it has only {len} bytes"),
        });
    }
    let first = len.min(Footer::SUGGESTED_TAIL_READ);
    let mut tail = fetch(file, len - first..len).await?;
    let trailer = &tail[tail.len() - Footer::TRAILER_LEN..];
    let need = Footer::tail_len(&path, trailer, len)?;
    if need > first {
        tail = fetch(file, len.saturating_sub(need)..len).await?;
    }
    let footer = Footer::decode(&path, &tail, len, key)?;
    let mut decoder = DataFileDecoder::new(&path, footer, key);
    let index_bytes = fetch(file, decoder.footer().index_range()).await?;
    let index = decoder.decode_index(&index_bytes)?;
    Ok((decoder, index))
}

/// A ranged read of `file`, naming it when it is missing or short.
async fn fetch(file: &LayerFile, range: std::ops::Range<u64>) -> Result<Bytes, ExecError> {
    let want = range.end - range.start;
    let bytes = file
        .storage
        .get_range(&file.path, range)
        .await
        .map_err(|e| missing(&file.path, e))?;
    if bytes.len() as u64 != want {
        return Err(ExecError::BackupFile {
            file: file.path.clone(),
            detail: format!(
                "a ranged read returned {} of {want} bytes: the file is shorter than its \
                 manifest says; it was truncated or replaced",
                bytes.len()
            ),
        });
    }
    Ok(bytes)
}

/// Restores one unit; returns what it wrote (not yet durable: the caller
/// has the host sync before counting it). Returns only once no ingest of the
/// unit is in flight, so a cleanup after a failure sees everything.
pub(crate) async fn restore_unit(
    unit: WorkUnit,
    ctx: Arc<UnitContext>,
) -> Result<UnitStats, ExecError> {
    let mut sink = Sink::Ingest(Batch::new(ctx.clone()));
    let merged = merge(&unit, &ctx, &mut sink).await;
    let Sink::Ingest(mut batch) = sink else {
        return Err(ExecError::Internal("restore unit lost its batch".into()));
    };
    let flushed = match merged {
        Ok(_) => batch.flush().await,
        Err(_) => Ok(()),
    };
    let waited = batch.wait().await;
    let stats = merged?;
    flushed?;
    waited?;
    Ok(stats)
}

/// The rows live at the restore time of one unit, under their backed-up
/// keys (the system rows of a full-cluster restore), in key order.
pub(crate) async fn read_rows(
    unit: &WorkUnit,
    ctx: &UnitContext,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ExecError> {
    let mut sink = Sink::Rows(Vec::new());
    merge(unit, ctx, &mut sink).await?;
    match sink {
        Sink::Rows(rows) => Ok(rows),
        Sink::Ingest(_) => Ok(Vec::new()),
    }
}

/// Where merged entries go.
enum Sink {
    /// Rekeyed and ingested in batches.
    Ingest(Batch),
    /// Kept under their backed-up keys.
    Rows(Vec<(Vec<u8>, Vec<u8>)>),
}

/// Merges the unit's files and pushes the restored entries into `sink`.
/// Nothing is allocated per entry: entries are read in place from each
/// file's current block and copied once, into the batch.
async fn merge(
    unit: &WorkUnit,
    ctx: &UnitContext,
    sink: &mut Sink,
) -> Result<UnitStats, ExecError> {
    let mut cursors = Vec::with_capacity(unit.files.len());
    for f in &unit.files {
        let read = ctx.settings.read_bytes_per_file.max(1);
        if let Some(c) = FileCursor::open(f.clone(), &unit.span, ctx.key.as_ref(), read).await? {
            cursors.push(c);
        }
    }
    let mut stats = UnitStats::default();
    // The backed-up key of the last version that decided its key's fate.
    let mut decided: Option<Vec<u8>> = None;
    let mut new_key = Vec::new();
    while let Some(i) = newest_first(&cursors) {
        if let Some(e) = cursors[i].current() {
            // The first version at or below the restore time decides the key.
            if e.ts <= ctx.read_at && decided.as_deref() != Some(e.key) {
                let d = decided.get_or_insert_with(Vec::new);
                d.clear();
                d.extend_from_slice(e.key);
                // A delete at the restore time leaves nothing to restore.
                if let Some(value) = e.value {
                    match sink {
                        Sink::Rows(rows) => rows.push((e.key.to_vec(), value.to_vec())),
                        Sink::Ingest(batch) => {
                            new_key.clear();
                            new_key.extend_from_slice(e.key);
                            if ctx.rewriter.rewrite_in_place(&mut new_key) {
                                if ctx.index_spans.contains_key(e.key) {
                                    stats.index_entries += 1;
                                } else {
                                    stats.rows += 1;
                                }
                                stats.bytes += (new_key.len() + value.len()) as u64;
                                batch.push(&new_key, value).await?;
                            }
                        }
                    }
                }
            }
        }
        if !cursors[i].advance().await? {
            cursors.swap_remove(i);
        }
    }
    Ok(stats)
}

/// The cursor whose current entry comes first in MVCC order.
fn newest_first(cursors: &[FileCursor]) -> Option<usize> {
    if cursors.len() <= 1 {
        return (!cursors.is_empty()).then_some(0);
    }
    let mut best: Option<(usize, EntryRef<'_>)> = None;
    for (i, c) in cursors.iter().enumerate() {
        let Some(e) = c.current() else { continue };
        match &best {
            Some((_, b)) if e.mvcc_cmp(b).is_ge() => {}
            _ => best = Some((i, e)),
        }
    }
    best.map(|(i, _)| i)
}

/// Rekeyed entries on their way to the host: at most one batch is being
/// ingested while the next one fills.
struct Batch {
    ctx: Arc<UnitContext>,
    entries: IngestBatch,
    in_flight: Option<tokio::task::JoinHandle<Result<(), crate::host::HostError>>>,
}

impl Batch {
    fn new(ctx: Arc<UnitContext>) -> Batch {
        Batch {
            ctx,
            entries: IngestBatch::new(),
            in_flight: None,
        }
    }

    /// Adds a rekeyed row at the restore's write time.
    async fn push(&mut self, key: &[u8], value: &[u8]) -> Result<(), ExecError> {
        self.entries.push(key, self.ctx.write_at, Some(value));
        if self.entries.size() >= self.ctx.settings.ingest_batch_bytes {
            self.flush().await?;
        }
        Ok(())
    }

    async fn wait(&mut self) -> Result<(), ExecError> {
        if let Some(h) = self.in_flight.take() {
            h.await
                .map_err(|e| ExecError::Internal(format!("ingest task: {e}")))??;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ExecError> {
        self.wait().await?;
        if self.ctx.stop.load(Ordering::Relaxed) {
            return Err(ExecError::Internal(
                "stopped: another part of the restore failed".into(),
            ));
        }
        if self.entries.is_empty() {
            return Ok(());
        }
        // The next batch will likely be about as large as this one.
        let next = IngestBatch::with_capacity(self.entries.len(), self.entries.size());
        let batch = std::mem::replace(&mut self.entries, next);
        let ingest = self.ctx.ingest.clone();
        self.in_flight = Some(tokio::task::spawn_blocking(move || ingest.ingest(batch)));
        Ok(())
    }
}
