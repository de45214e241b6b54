//! Reads: every version of a key span, merged from version entries and
//! ingested blocks in engine-key order.

use std::cmp::Ordering;
use std::ops::ControlFlow;

use redb::ReadableTable;

use super::{BLOCKS, StoredBlock};
use crate::cluster::VERSIONS;
use crate::error::{ClusterError, storage};
use crate::segments::Segments;

/// One sorted view of every version: version entries and ingested blocks.
pub(crate) struct Versions<'s, R> {
    rows: R,
    blocks: R,
    segments: &'s Segments,
}

impl<'s> Versions<'s, redb::ReadOnlyTable<&'static [u8], &'static [u8]>> {
    /// Opens both tables in a read transaction; blocks stored in segments are
    /// read from `segments`.
    pub(crate) fn open(
        tx: &redb::ReadTransaction,
        segments: &'s Segments,
    ) -> Result<Self, ClusterError> {
        Ok(Versions {
            segments,
            rows: tx
                .open_table(VERSIONS)
                .map_err(|e| storage("opening versions")(&e))?,
            blocks: tx
                .open_table(BLOCKS)
                .map_err(|e| storage("opening ingested blocks")(&e))?,
        })
    }
}

impl<R: ReadableTable<&'static [u8], &'static [u8]>> Versions<'_, R> {
    /// Calls `f` with every `(engine key, stored value)` in `[lo, hi)`, in
    /// engine-key order, until it returns `Break`.
    pub(crate) fn for_each(
        &self,
        lo: &[u8],
        hi: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>, ClusterError>,
    ) -> Result<(), ClusterError> {
        if lo >= hi {
            return Ok(());
        }
        let mut rows = self.rows.range(lo..hi).map_err(read_error)?;
        let mut row = rows.next().transpose().map_err(read_error)?;
        let mut blocks = BlockCursor::new(&self.blocks, self.segments, lo, hi)?;
        loop {
            blocks.settle()?;
            let (mut next_row, mut next_block) = (false, false);
            let flow = match (&row, blocks.peek()?) {
                (None, None) => return Ok(()),
                (Some((k, v)), None) => {
                    next_row = true;
                    f(k.value(), v.value())?
                }
                (None, Some((k, v))) => {
                    next_block = true;
                    f(k, v)?
                }
                (Some((rk, rv)), Some((bk, bv))) => match rk.value().cmp(bk) {
                    Ordering::Greater => {
                        next_block = true;
                        f(bk, bv)?
                    }
                    ordering => {
                        // Equal keys: the version entry shadows the block's (B2).
                        next_block = ordering == Ordering::Equal;
                        next_row = true;
                        f(rk.value(), rv.value())?
                    }
                },
            };
            if next_block {
                blocks.pos += 1;
            }
            if next_row {
                row = rows.next().transpose().map_err(read_error)?;
            }
            if flow.is_break() {
                return Ok(());
            }
        }
    }
}

impl<R: ReadableTable<&'static [u8], &'static [u8]>> Versions<'_, R> {
    /// Calls `f` with the bytes (engine key plus stored value) stored in
    /// `[lo, hi)`, in key order: once per version entry, once per block lying
    /// wholly inside (with its first engine key), and once per version of a
    /// block that `lo` or `hi` cuts. Sizes a range without visiting every
    /// version of its blocks.
    pub(crate) fn sizes(
        &self,
        lo: &[u8],
        hi: &[u8],
        mut f: impl FnMut(&[u8], u64) -> Result<(), ClusterError>,
    ) -> Result<(), ClusterError> {
        if lo >= hi {
            return Ok(());
        }
        let mut rows = self.rows.range(lo..hi).map_err(read_error)?;
        let mut row = rows.next().transpose().map_err(read_error)?;
        let mut blocks = BlockCursor::new(&self.blocks, self.segments, lo, hi)?;
        loop {
            blocks.settle()?;
            let piece = blocks.peek_piece()?;
            let row_first = match (&row, &piece) {
                (None, None) => return Ok(()),
                (Some((k, _)), Some((first, _, _))) => k.value() < *first,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            match (&row, piece) {
                (Some((k, v)), _) if row_first => {
                    f(k.value(), (k.value().len() + v.value().len()) as u64)?;
                    row = rows.next().transpose().map_err(read_error)?;
                }
                (_, Some((first, bytes, entries))) => {
                    f(first, bytes)?;
                    blocks.pos += entries;
                }
                _ => return Ok(()),
            }
        }
    }
}

/// An engine key and its stored value.
type Entry<'a> = (&'a [u8], &'a [u8]);

/// A run of stored bytes for sizing: (first engine key, bytes, entries).
type Piece<'a> = (&'a [u8], u64, usize);

/// Walks the block entries of `[lo, hi)` across consecutive blocks, reading
/// a block's segment only when one of its entries is needed.
struct BlockCursor<'t> {
    blocks: redb::Range<'t, &'static [u8], &'static [u8]>,
    segments: &'t Segments,
    /// The current block and its last engine key.
    current: Option<(redb::AccessGuard<'t, &'static [u8]>, StoredBlock<'t>)>,
    /// Position of the next entry in `current`.
    pos: usize,
    hi: &'t [u8],
}

impl<'t> BlockCursor<'t> {
    fn new<R: ReadableTable<&'static [u8], &'static [u8]>>(
        table: &'t R,
        segments: &'t Segments,
        lo: &[u8],
        hi: &'t [u8],
    ) -> Result<BlockCursor<'t>, ClusterError> {
        // The first block whose last key is at or above `lo` (by B1, the only
        // one that can start below `lo`).
        let mut blocks = table.range(lo..).map_err(read_error)?;
        let (current, pos) = match blocks.next() {
            Some(item) => {
                let (last, value) = item.map_err(read_error)?;
                let stored = StoredBlock::new(value)?;
                let pos = if stored.first_key()? < lo {
                    stored.block(segments)?.seek(lo)?
                } else {
                    0
                };
                (Some((last, stored)), pos)
            }
            None => (None, 0),
        };
        Ok(BlockCursor {
            blocks,
            segments,
            current,
            pos,
            hi,
        })
    }

    /// Moves past an exhausted block to the next one.
    fn settle(&mut self) -> Result<(), ClusterError> {
        while let Some((_, stored)) = &self.current {
            if self.pos < stored.len()? {
                return Ok(());
            }
            self.pos = 0;
            self.current = match self.blocks.next() {
                Some(item) => {
                    let (last, value) = item.map_err(read_error)?;
                    Some((last, StoredBlock::new(value)?))
                }
                None => None,
            };
        }
        Ok(())
    }

    /// The next piece below `hi`: the whole current block as (first key,
    /// bytes of its entries, entry count) when the cursor is at its start
    /// and it ends below `hi` (without reading its segment), else the next
    /// entry alone.
    fn peek_piece(&self) -> Result<Option<Piece<'_>>, ClusterError> {
        let Some((last, stored)) = &self.current else {
            return Ok(None);
        };
        if self.pos == 0 && last.value() < self.hi {
            return Ok(Some((
                stored.first_key()?,
                stored.content_bytes()?,
                stored.len()?,
            )));
        }
        Ok(self
            .peek()?
            .map(|(k, v)| (k, (k.len() + v.len()) as u64, 1)))
    }

    /// The next entry below `hi`, if any.
    fn peek(&self) -> Result<Option<Entry<'_>>, ClusterError> {
        let Some((_, stored)) = &self.current else {
            return Ok(None);
        };
        if self.pos >= stored.len()? {
            return Ok(None);
        }
        let (k, v) = stored.block(self.segments)?.entry(self.pos)?;
        Ok((k < self.hi).then_some((k, v)))
    }
}

pub(super) fn read_error(e: redb::StorageError) -> ClusterError {
    storage("reading versions")(&e)
}
