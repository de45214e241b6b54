//! Writes: placing ingested blocks, and removing versions wherever they are
//! stored (GC, clearing an aborted restore), which rewrites the blocks that
//! held them.

use redb::{ReadableTable, Table, WriteTransaction};

use super::read::read_error;
use super::{BLOCKS, Block, BlockBuilder, INLINE, StoredBlock, external_value, reference_in};
use crate::cluster::VERSIONS;
use crate::error::{ClusterError, storage};
use crate::segments::{BlockRef, SEGMENTS, Segments};

/// Version entries, ingested blocks and segment accounting, open for writing
/// in one engine transaction.
pub(crate) struct VersionsMut<'tx> {
    rows: Table<'tx, &'static [u8], &'static [u8]>,
    blocks: Table<'tx, &'static [u8], &'static [u8]>,
    live: Table<'tx, u64, u64>,
    segments: &'tx Segments,
}

impl<'tx> VersionsMut<'tx> {
    /// Opens the tables in `tx`; blocks in segments are read from `segments`.
    pub(crate) fn open(
        tx: &'tx WriteTransaction,
        segments: &'tx Segments,
    ) -> Result<VersionsMut<'tx>, ClusterError> {
        Ok(VersionsMut {
            rows: tx
                .open_table(VERSIONS)
                .map_err(|e| storage("opening versions")(&e))?,
            blocks: tx
                .open_table(BLOCKS)
                .map_err(|e| storage("opening ingested blocks")(&e))?,
            live: tx
                .open_table(SEGMENTS)
                .map_err(|e| storage("opening segments")(&e))?,
            segments,
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
                Ok(StoredBlock::new(value)?.first_key()? <= last)
            }
            None => Ok(false),
        }
    }

    /// Records a block written to a segment, under its last engine key
    /// (B3 is the caller's: sorted, non-empty), and counts its stored bytes
    /// as live in its segment (S2).
    pub(crate) fn insert_external(
        &mut self,
        block: &Block<'_>,
        r: &BlockRef,
    ) -> Result<(), ClusterError> {
        let last = block.entry(block.len() - 1)?.0;
        let value = external_value(r, block.len(), block.entry(0)?.0);
        self.blocks
            .insert(last, value.as_slice())
            .map_err(|e| storage("writing an ingested block")(&e))?;
        self.add_live(r.segment, i64::from(r.len))
    }

    /// Stores an encoded block inline (B3 is the caller's).
    fn insert_inline(&mut self, block: &[u8]) -> Result<(), ClusterError> {
        let b = Block::parse(block)?;
        let last = b.entry(b.len() - 1)?.0;
        let mut value = Vec::with_capacity(1 + block.len());
        value.push(INLINE);
        value.extend_from_slice(block);
        self.blocks
            .insert(last, value.as_slice())
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
                let first = StoredBlock::new(value)?.first_key()?.to_vec();
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

    /// Removes the block entries in `[lo, hi)` (engine keys), at most
    /// `limit` blocks: a block wholly inside goes without being read, a block
    /// the bounds cut is rewritten without its entries inside. Returns the
    /// entries removed, and whether blocks may be left in the span.
    pub(crate) fn clear_blocks(
        &mut self,
        lo: &[u8],
        hi: &[u8],
        limit: usize,
    ) -> Result<(u64, bool), ClusterError> {
        let mut removed = 0;
        for _ in 0..limit {
            // The first block whose last key is at or above `lo` (B1: the
            // only candidate for entries at `lo`).
            let (last, whole, entries) = {
                let Some(item) = self.blocks.range(lo..).map_err(read_error)?.next() else {
                    return Ok((removed, false));
                };
                let (k, value) = item.map_err(read_error)?;
                let stored = StoredBlock::new(value)?;
                if stored.first_key()? >= hi {
                    return Ok((removed, false));
                }
                let whole = stored.first_key()? >= lo && k.value() < hi;
                if !whole {
                    // Cut by a bound: done if none of its entries is inside
                    // (then no other block is, by B1).
                    let block = stored.block(self.segments)?;
                    let at = block.seek(lo)?;
                    if at >= block.len() || block.entry(at)?.0 >= hi {
                        return Ok((removed, false));
                    }
                }
                (k.value().to_vec(), whole, stored.len()? as u64)
            };
            if whole {
                let old = self
                    .blocks
                    .remove(last.as_slice())
                    .map_err(|e| storage("clearing an ingested block")(&e))?
                    .map(|v| v.value().to_vec())
                    .unwrap_or_default();
                if let Some(r) = reference_in(&old)? {
                    self.add_live(r.segment, -i64::from(r.len))?;
                }
                removed += entries;
            } else {
                removed += self.rewrite_block(&last, |k| k < lo || k >= hi)?;
            }
        }
        Ok((removed, true))
    }

    /// Rewrites the block keyed `last` with only the entries `keep` accepts,
    /// inline (deleting it if none is left; a block in a segment stops
    /// counting there); returns how many entries were dropped.
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
        let old = match reference_in(&old)? {
            Some(r) => {
                self.add_live(r.segment, -i64::from(r.len))?;
                self.segments.read(&r)?
            }
            None => old[1..].to_vec(),
        };
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
            self.insert_inline(&kept.finish())?;
        }
        Ok(dropped)
    }

    /// Adds `delta` to the live bytes of `segment`, dropping its entry at
    /// zero (the segment is then deleted after the next sync, S2).
    fn add_live(&mut self, segment: u64, delta: i64) -> Result<(), ClusterError> {
        let now = self
            .live
            .get(segment)
            .map_err(|e| storage("reading segments")(&e))?
            .map_or(0, |v| v.value());
        let next = now.checked_add_signed(delta).ok_or_else(|| {
            ClusterError::Corrupt(format!("segment {segment}'s live bytes went below zero"))
        })?;
        if next == 0 {
            self.live
                .remove(segment)
                .map_err(|e| storage("writing segments")(&e))?;
        } else {
            self.live
                .insert(segment, next)
                .map_err(|e| storage("writing segments")(&e))?;
        }
        Ok(())
    }
}
