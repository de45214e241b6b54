//! Ingested blocks: bulk-ingested versions stored many to an engine entry.
//!
//! An ordinary write stores each version as its own entry of the `versions`
//! table. A bulk ingest (a restore) instead packs its sorted versions into
//! blocks of about [`BLOCK_TARGET`] bytes, appends them to a segment file
//! (see `segments`, which stores each compressed when that pays; this
//! module sees only raw blocks) and puts one entry per block in the
//! `ingested_blocks` table, keyed by the block's *last* engine key and
//! holding the block's [`BlockRef`]: no B-tree insert per version and no
//! copy of the bytes through the engine, which is what made restore slower
//! than backup. A
//! block rewritten later (GC, clearing part of it) is stored inline in the
//! engine entry instead. Every reader sees one sorted sequence of versions,
//! merged from both tables by [`Versions`], so nothing above this module
//! knows where a version lives.
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
//! An `ingested_blocks` value is a tag byte, then the block itself
//! ([`INLINE`]) or its [`BlockRef`], entry count and first key
//! ([`EXTERNAL`]; [`EXTERNAL_RAW_ONLY`] in stores written before blocks
//! were compressed, with the reference's first, shorter encoding). Block
//! layout (all integers little-endian `u32`):
//!
//! ```text
//! entry*  = key_len | value_len | engine key | stored value
//! trailer = entry offset * count | count
//! ```

mod read;
mod write;

use backup_format::Timestamp;
use std::cell::OnceCell;

use redb::{AccessGuard, TableDefinition};

pub(crate) use read::Versions;
pub(crate) use write::VersionsMut;

use crate::error::ClusterError;
use crate::keys;
use crate::mvcc::{TAG_TOMBSTONE, TAG_VALUE};
use crate::segments::{BlockRef, Segments};

/// The table of ingested blocks: last engine key → encoded block.
pub(crate) const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("ingested_blocks");

/// A block is closed once its entries reach this many bytes.
pub(crate) const BLOCK_TARGET: usize = 64 << 10;

/// Tag of an `ingested_blocks` value holding the block itself.
pub(crate) const INLINE: u8 = 0;
/// Tag of an `ingested_blocks` value holding a [`BlockRef`] in its first
/// encoding ([`BlockRef::RAW_ONLY_LEN`] bytes, a raw block): read, no
/// longer written.
pub(crate) const EXTERNAL_RAW_ONLY: u8 = 1;
/// Tag of an `ingested_blocks` value holding a [`BlockRef`].
pub(crate) const EXTERNAL: u8 = 2;

/// An `ingested_blocks` value: the block itself, or its [`BlockRef`] with
/// the block's entry count and first key (so a block can be sized and
/// placed without reading its segment), read from the segment on first use.
pub(crate) struct StoredBlock<'t> {
    value: AccessGuard<'t, &'static [u8]>,
    /// Length of its [`BlockRef`], if the block is in a segment.
    reference_len: Option<usize>,
    loaded: OnceCell<Vec<u8>>,
}

impl<'t> StoredBlock<'t> {
    /// Checks the value's tag and header.
    pub(crate) fn new(
        value: AccessGuard<'t, &'static [u8]>,
    ) -> Result<StoredBlock<'t>, ClusterError> {
        let malformed =
            || ClusterError::Corrupt("an ingested block's engine entry is malformed".into());
        let v = value.value();
        let reference_len = match v.first() {
            Some(&INLINE) => {
                Block::parse(&v[1..])?;
                None
            }
            Some(&tag) => match external_reference_len(tag) {
                // Then the entry count and a non-empty first key.
                Some(n) if v.len() > 1 + n + 4 => Some(n),
                _ => return Err(malformed()),
            },
            None => return Err(malformed()),
        };
        Ok(StoredBlock {
            value,
            reference_len,
            loaded: OnceCell::new(),
        })
    }

    /// The block's first engine key.
    pub(crate) fn first_key(&self) -> Result<&[u8], ClusterError> {
        let v = self.value.value();
        match self.reference_len {
            Some(n) => Ok(&v[1 + n + 4..]),
            None => Ok(Block::parse(&v[1..])?.entry(0)?.0),
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> Result<usize, ClusterError> {
        let v = self.value.value();
        match self.reference_len {
            Some(n) => Ok(read_u32(v, 1 + n).unwrap_or(0) as usize),
            None => Ok(Block::parse(&v[1..])?.len()),
        }
    }

    /// Bytes of its entries' keys and values (the block without framing,
    /// as it is uncompressed).
    pub(crate) fn content_bytes(&self) -> Result<u64, ClusterError> {
        let raw = match self.reference_len {
            Some(_) => u64::from(self.reference()?.raw_len),
            None => (self.value.value().len() - 1) as u64,
        };
        Ok(raw.saturating_sub(4 + 12 * self.len()? as u64))
    }

    /// The block, read from its segment the first time.
    pub(crate) fn block(&self, segments: &Segments) -> Result<Block<'_>, ClusterError> {
        let v = self.value.value();
        if self.reference_len.is_none() {
            return Block::parse(&v[1..]);
        }
        if self.loaded.get().is_none() {
            let _ = self.loaded.set(segments.read(&self.reference()?)?);
        }
        let bytes = self
            .loaded
            .get()
            .ok_or_else(|| ClusterError::Corrupt("an ingested block did not load".into()))?;
        Block::parse(bytes)
    }

    /// Where a block in a segment is.
    fn reference(&self) -> Result<BlockRef, ClusterError> {
        let n = self.reference_len.ok_or_else(|| {
            ClusterError::Corrupt("an inline ingested block has no reference".into())
        })?;
        BlockRef::decode(&self.value.value()[1..1 + n])
    }
}

/// The [`BlockRef`] in an `ingested_blocks` value, if its block is in a
/// segment.
pub(crate) fn reference_in(value: &[u8]) -> Result<Option<BlockRef>, ClusterError> {
    let unknown = || ClusterError::Corrupt("an ingested block has an unknown tag".into());
    let (&tag, rest) = value.split_first().ok_or_else(unknown)?;
    if tag == INLINE {
        return Ok(None);
    }
    let n = external_reference_len(tag).ok_or_else(unknown)?;
    BlockRef::decode(rest.get(..n).unwrap_or_default()).map(Some)
}

/// Length of the [`BlockRef`] a value tagged `tag` holds, if it is one
/// naming a block in a segment.
fn external_reference_len(tag: u8) -> Option<usize> {
    match tag {
        EXTERNAL => Some(BlockRef::LEN),
        EXTERNAL_RAW_ONLY => Some(BlockRef::RAW_ONLY_LEN),
        _ => None,
    }
}

/// The `ingested_blocks` value naming a block of `entries` entries from
/// `first` on, stored at `r`.
pub(crate) fn external_value(r: &BlockRef, entries: usize, first: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + BlockRef::LEN + 4 + first.len());
    out.push(EXTERNAL);
    r.encode_into(&mut out);
    out.extend_from_slice(&(entries as u32).to_le_bytes());
    out.extend_from_slice(first);
    out
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use backup_exec::{Clock, Ingest, IntentPolicy};
    use backup_format::{MvccEntry, Span};
    use redb::ReadableTable;

    use super::*;
    use crate::Cluster;

    const TABLE: u64 = 90;

    fn key(i: u32) -> Vec<u8> {
        keys::row_key(TABLE, 1, &i.to_be_bytes())
    }

    /// 300 bytes of xorshift noise: blocks of these are stored raw.
    fn noise(i: u32) -> Vec<u8> {
        crate::segments::noise(300, u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// Rewrites every block's engine entry as stores written before blocks
    /// were compressed hold it: [`EXTERNAL_RAW_ONLY`] and the reference's
    /// first encoding. Returns how many.
    fn rewrite_in_first_encoding(c: &Cluster) -> usize {
        c.write(|tx| {
            let mut table = tx.open_table(BLOCKS).unwrap();
            let entries: Vec<(Vec<u8>, Vec<u8>)> = table
                .iter()
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.value().to_vec(), v.value().to_vec())
                })
                .collect();
            for (k, v) in &entries {
                let r = reference_in(v)?.unwrap();
                assert_eq!((v[0], r.len), (EXTERNAL, r.raw_len), "a raw block");
                let mut first = vec![EXTERNAL_RAW_ONLY];
                first.extend_from_slice(&r.segment.to_le_bytes());
                first.extend_from_slice(&r.offset.to_le_bytes());
                first.extend_from_slice(&r.len.to_le_bytes());
                first.extend_from_slice(&r.crc.to_le_bytes());
                first.extend_from_slice(&v[1 + BlockRef::LEN..]);
                table.insert(k.as_slice(), first.as_slice()).unwrap();
            }
            Ok(entries.len())
        })
        .unwrap()
    }

    #[test]
    fn blocks_named_in_the_first_reference_encoding_still_read_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cluster::open_default(dir.path()).unwrap();
        let ts = Clock::now(&c);
        let rows: Vec<(Vec<u8>, Vec<u8>)> = (0..2_000).map(|i| (key(i), noise(i))).collect();
        let batch = rows
            .iter()
            .map(|(k, v)| MvccEntry::put(k.clone(), ts, v.clone()))
            .collect();
        Ingest::ingest(&c, batch).unwrap();
        c.sync().unwrap();
        assert!(rewrite_in_first_encoding(&c) >= 8);
        drop(c);
        let c = Cluster::open_default(dir.path()).unwrap();
        let scan = |c: &Cluster| {
            c.scan(
                &keys::table_span(TABLE),
                Clock::now(c),
                IntentPolicy::FailFast,
            )
            .unwrap()
        };
        assert_eq!(scan(&c), rows);
        // Clearing cuts one block (rewritten inline) and drops others whole;
        // their stored bytes stop counting, so the segment goes at the end.
        c.clear_spans(&[Span::new(key(0), key(1_001))]).unwrap();
        assert_eq!(scan(&c), rows[1_001..]);
        c.clear_spans(&[keys::table_span(TABLE)]).unwrap();
        assert!(scan(&c).is_empty());
        let left = std::fs::read_dir(dir.path().join("segments")).unwrap();
        assert_eq!(left.count(), 0);
    }
}
