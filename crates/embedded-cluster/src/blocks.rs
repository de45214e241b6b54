//! Ingested blocks: bulk-ingested versions stored many to an engine entry.
//!
//! An ordinary write stores each version as its own entry of the `versions`
//! table. A bulk ingest (a restore) instead packs its sorted versions into
//! blocks of about [`BLOCK_TARGET`] bytes, one entry of the `ingested_blocks`
//! table each, keyed by the block's *last* engine key: one B-tree insert per
//! block instead of one per version, which is what made restore slower than
//! backup. Every reader sees one sorted sequence of versions, merged from
//! both tables by [`Versions`], so nothing above this module knows where a
//! version lives.
//!
//! Invariants (kept here and by `ingest`):
//!
//! - **B1, blocks are disjoint.** The engine-key intervals `[first, last]` of
//!   two blocks never overlap. Ingest writes blocks only when the batch's
//!   interval meets no block and no version entry; otherwise it writes one
//!   version entry per version, as ordinary writes do.
//! - **B2, a version entry shadows a block entry at the same engine key.**
//!   Blocks are written only where no version entry exists, so a version
//!   entry with a block entry's engine key was written later (an ingest that
//!   fell back to version entries) and is the one readers see.
//! - **B3, a block is sorted and non-empty**, entries strictly increasing by
//!   engine key; its table key is its last entry's engine key. Removing
//!   versions (GC, clearing an aborted restore) rewrites a block without them
//!   under its new last key, or deletes it when nothing is left, so B1–B3
//!   still hold.
//!
//! Block layout (all integers little-endian `u32`):
//!
//! ```text
//! entry*  = key_len | value_len | engine key | stored value
//! trailer = entry offset * count | count
//! ```

use std::cmp::Ordering;
use std::ops::ControlFlow;

use backup_format::Timestamp;
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::cluster::VERSIONS;
use crate::error::{ClusterError, storage};
use crate::keys;
use crate::mvcc::{TAG_TOMBSTONE, TAG_VALUE};

/// The table of ingested blocks: last engine key → encoded block.
pub(crate) const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("ingested_blocks");

/// A block is closed once its entries reach this many bytes.
pub(crate) const BLOCK_TARGET: usize = 64 << 10;

/// One sorted view of every version: version entries and ingested blocks.
pub(crate) struct Versions<R> {
    rows: R,
    blocks: R,
}

impl Versions<redb::ReadOnlyTable<&'static [u8], &'static [u8]>> {
    /// Opens both tables in a read transaction.
    pub(crate) fn open(tx: &redb::ReadTransaction) -> Result<Self, ClusterError> {
        Ok(Versions {
            rows: tx
                .open_table(VERSIONS)
                .map_err(|e| storage("opening versions")(&e))?,
            blocks: tx
                .open_table(BLOCKS)
                .map_err(|e| storage("opening ingested blocks")(&e))?,
        })
    }
}

impl<R: ReadableTable<&'static [u8], &'static [u8]>> Versions<R> {
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
        let mut blocks = BlockCursor::new(&self.blocks, lo, hi)?;
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

impl<R: ReadableTable<&'static [u8], &'static [u8]>> Versions<R> {
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
        let mut blocks = BlockCursor::new(&self.blocks, lo, hi)?;
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

/// Walks the block entries of `[lo, hi)` across consecutive blocks.
struct BlockCursor<'t> {
    blocks: redb::Range<'t, &'static [u8], &'static [u8]>,
    current: Option<redb::AccessGuard<'t, &'static [u8]>>,
    /// Position of the next entry in `current`.
    pos: usize,
    hi: &'t [u8],
}

impl<'t> BlockCursor<'t> {
    fn new<R: ReadableTable<&'static [u8], &'static [u8]>>(
        table: &'t R,
        lo: &[u8],
        hi: &'t [u8],
    ) -> Result<BlockCursor<'t>, ClusterError> {
        // The first block whose last key is at or above `lo` (by B1, the only
        // one that can start below `lo`).
        let mut blocks = table.range(lo..).map_err(read_error)?;
        let (current, pos) = match blocks.next() {
            Some(item) => {
                let (_, value) = item.map_err(read_error)?;
                let pos = Block::parse(value.value())?.seek(lo)?;
                (Some(value), pos)
            }
            None => (None, 0),
        };
        Ok(BlockCursor {
            blocks,
            current,
            pos,
            hi,
        })
    }

    /// Moves past an exhausted block to the next one.
    fn settle(&mut self) -> Result<(), ClusterError> {
        while let Some(guard) = &self.current {
            if self.pos < Block::parse(guard.value())?.len() {
                return Ok(());
            }
            self.pos = 0;
            self.current = match self.blocks.next() {
                Some(item) => Some(item.map_err(read_error)?.1),
                None => None,
            };
        }
        Ok(())
    }

    /// The next piece below `hi`: the whole current block as (first key,
    /// bytes of its entries, entry count) when the cursor is at its start
    /// and it ends below `hi`, else the next entry alone.
    fn peek_piece(&self) -> Result<Option<Piece<'_>>, ClusterError> {
        let Some(guard) = &self.current else {
            return Ok(None);
        };
        let block = Block::parse(guard.value())?;
        if self.pos == 0 && block.entry(block.len() - 1)?.0 < self.hi {
            let framing = 4 + 12 * block.len();
            let bytes = guard.value().len().saturating_sub(framing) as u64;
            return Ok(Some((block.entry(0)?.0, bytes, block.len())));
        }
        Ok(self
            .peek()?
            .map(|(k, v)| (k, (k.len() + v.len()) as u64, 1)))
    }

    /// The next entry below `hi`, if any.
    fn peek(&self) -> Result<Option<Entry<'_>>, ClusterError> {
        let Some(guard) = &self.current else {
            return Ok(None);
        };
        let block = Block::parse(guard.value())?;
        if self.pos >= block.len() {
            return Ok(None);
        }
        let (k, v) = block.entry(self.pos)?;
        Ok((k < self.hi).then_some((k, v)))
    }
}

fn read_error(e: redb::StorageError) -> ClusterError {
    storage("reading versions")(&e)
}

impl<'tx> Versions<Table<'tx, &'static [u8], &'static [u8]>> {
    /// Opens both tables in a write transaction.
    pub(crate) fn open_mut(tx: &'tx WriteTransaction) -> Result<Self, ClusterError> {
        Ok(Versions {
            rows: tx
                .open_table(VERSIONS)
                .map_err(|e| storage("opening versions")(&e))?,
            blocks: tx
                .open_table(BLOCKS)
                .map_err(|e| storage("opening ingested blocks")(&e))?,
        })
    }

    /// True if a version entry or a block lies in `[first, last]`: where a
    /// new block may not go (B1, B2).
    pub(crate) fn occupied(&self, first: &[u8], last: &[u8]) -> Result<bool, ClusterError> {
        if self
            .rows
            .range(first..=last)
            .map_err(read_error)?
            .next()
            .is_some()
        {
            return Ok(true);
        }
        match self.blocks.range(first..).map_err(read_error)?.next() {
            Some(item) => {
                let (_, value) = item.map_err(read_error)?;
                Ok(Block::parse(value.value())?.entry(0)?.0 <= last)
            }
            None => Ok(false),
        }
    }

    /// Inserts one encoded block (B3 is the caller's: sorted, non-empty).
    pub(crate) fn insert_block(&mut self, block: &[u8]) -> Result<(), ClusterError> {
        let b = Block::parse(block)?;
        let last = b.entry(b.len() - 1)?.0;
        self.blocks
            .insert(last, block)
            .map_err(|e| storage("writing an ingested block")(&e))?;
        Ok(())
    }

    /// Inserts one version entry.
    pub(crate) fn insert_row(&mut self, key: &[u8], value: &[u8]) -> Result<(), ClusterError> {
        self.rows
            .insert(key, value)
            .map_err(|e| storage("writing a version")(&e))?;
        Ok(())
    }

    /// Removes the versions at `engine_keys` (sorted ascending), wherever they
    /// are stored; keys with no version are ignored.
    pub(crate) fn remove(&mut self, engine_keys: &[Vec<u8>]) -> Result<(), ClusterError> {
        for k in engine_keys {
            self.rows
                .remove(k.as_slice())
                .map_err(|e| storage("removing a version")(&e))?;
        }
        // Group the keys by the block whose interval holds them.
        let mut i = 0;
        while i < engine_keys.len() {
            let key = engine_keys[i].as_slice();
            let (last, first) = {
                let Some(item) = self.blocks.range(key..).map_err(read_error)?.next() else {
                    break;
                };
                let (k, value) = item.map_err(read_error)?;
                let first = Block::parse(value.value())?.entry(0)?.0.to_vec();
                (k.value().to_vec(), first)
            };
            let mut j = i;
            while j < engine_keys.len() && engine_keys[j].as_slice() <= last.as_slice() {
                j += 1;
            }
            let in_block: Vec<&[u8]> = engine_keys[i..j]
                .iter()
                .map(Vec::as_slice)
                .filter(|k| *k >= first.as_slice())
                .collect();
            if !in_block.is_empty() {
                self.rewrite_block(&last, |k| in_block.binary_search(&k).is_err())?;
            }
            i = j;
        }
        Ok(())
    }

    /// Rewrites the block keyed `last` with only the entries `keep` accepts
    /// (deleting it if none is left); returns how many entries were dropped.
    fn rewrite_block(
        &mut self,
        last: &[u8],
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<u64, ClusterError> {
        let old = self
            .blocks
            .remove(last)
            .map_err(|e| storage("rewriting an ingested block")(&e))?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| ClusterError::Corrupt("an ingested block vanished".into()))?;
        let old = Block::parse(&old)?;
        let mut kept = BlockBuilder::default();
        let mut dropped = 0;
        for i in 0..old.len() {
            let (k, v) = old.entry(i)?;
            if keep(k) {
                kept.push(k, v);
            } else {
                dropped += 1;
            }
        }
        if !kept.is_empty() {
            self.insert_block(&kept.finish())?;
        }
        Ok(dropped)
    }
}

/// A parsed view of one encoded block.
#[derive(Clone, Copy)]
pub(crate) struct Block<'a> {
    bytes: &'a [u8],
    /// Where the offsets start.
    offsets: usize,
    count: usize,
}

impl<'a> Block<'a> {
    /// Checks the trailer of `bytes`.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Block<'a>, ClusterError> {
        let corrupt = || ClusterError::Corrupt("an ingested block's trailer is malformed".into());
        let count = read_u32(bytes, bytes.len().checked_sub(4).ok_or_else(corrupt)?)
            .ok_or_else(corrupt)? as usize;
        let offsets = count
            .checked_mul(4)
            .and_then(|n| bytes.len().checked_sub(4 + n))
            .ok_or_else(corrupt)?;
        if count == 0 {
            return Err(corrupt());
        }
        Ok(Block {
            bytes,
            offsets,
            count,
        })
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Entry `i` as (engine key, stored value).
    pub(crate) fn entry(&self, i: usize) -> Result<(&'a [u8], &'a [u8]), ClusterError> {
        let corrupt =
            || ClusterError::Corrupt(format!("entry {i} of an ingested block is malformed"));
        if i >= self.count {
            return Err(corrupt());
        }
        let at = read_u32(self.bytes, self.offsets + 4 * i).ok_or_else(corrupt)? as usize;
        let key_len = read_u32(self.bytes, at).ok_or_else(corrupt)? as usize;
        let value_len = read_u32(self.bytes, at + 4).ok_or_else(corrupt)? as usize;
        let key_end = (at + 8).checked_add(key_len).ok_or_else(corrupt)?;
        let value_end = key_end.checked_add(value_len).ok_or_else(corrupt)?;
        if value_end > self.offsets {
            return Err(corrupt());
        }
        Ok((
            &self.bytes[at + 8..key_end],
            &self.bytes[key_end..value_end],
        ))
    }

    /// The position of the first entry whose key is at or above `key`.
    pub(crate) fn seek(&self, key: &[u8]) -> Result<usize, ClusterError> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid)?.0 < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

/// Builds one encoded block from entries pushed in engine-key order.
#[derive(Default)]
pub(crate) struct BlockBuilder {
    bytes: Vec<u8>,
    offsets: Vec<u32>,
}

impl BlockBuilder {
    /// A builder with room for about one block.
    pub(crate) fn with_capacity(bytes: usize) -> BlockBuilder {
        BlockBuilder {
            bytes: Vec::with_capacity(bytes),
            offsets: Vec::new(),
        }
    }

    /// Appends an entry; the caller keeps keys strictly increasing (B3).
    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) {
        self.offsets.push(self.bytes.len() as u32);
        self.bytes
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(value);
    }

    /// Appends the version of `key` at `ts`, encoding its engine key and
    /// stored value in place; the caller keeps versions in MVCC order (B3).
    pub(crate) fn push_version(&mut self, key: &[u8], ts: Timestamp, value: Option<&[u8]>) {
        let at = self.bytes.len();
        self.offsets.push(at as u32);
        self.bytes.extend_from_slice(&[0; 8]);
        keys::push_version_key(&mut self.bytes, key, ts);
        let key_len = self.bytes.len() - at - 8;
        match value {
            None => self.bytes.push(TAG_TOMBSTONE),
            Some(v) => {
                self.bytes.push(TAG_VALUE);
                self.bytes.extend_from_slice(v);
            }
        }
        let value_len = self.bytes.len() - at - 8 - key_len;
        self.bytes[at..at + 4].copy_from_slice(&(key_len as u32).to_le_bytes());
        self.bytes[at + 4..at + 8].copy_from_slice(&(value_len as u32).to_le_bytes());
    }

    /// Bytes written so far.
    pub(crate) fn size(&self) -> usize {
        self.bytes.len()
    }

    /// True if no entry was pushed.
    pub(crate) fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The encoded block.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.bytes.reserve(4 * self.offsets.len() + 4);
        for o in &self.offsets {
            self.bytes.extend_from_slice(&o.to_le_bytes());
        }
        self.bytes
            .extend_from_slice(&(self.offsets.len() as u32).to_le_bytes());
        self.bytes
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}
