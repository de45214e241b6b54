//! Block contents and the per-part codec (zstd, AES-256-GCM, crc32c).
//!
//! A block's raw bytes are its entries back to back:
//!
//! ```text
//! entry := key length (varint) | key | timestamp (12 bytes: wall i64 BE, logical u32 BE)
//!        | kind u8 (0 = tombstone, 1 = value) | [value length (varint) | value]   (value only when kind = 1)
//! ```
//!
//! Every stored part (block, index, footer) goes through [`Codec`]: compress
//! (zstd, when the file is compressed), then seal (AES-256-GCM, when it is
//! encrypted), then append the crc32c of the result. Decoding runs the same
//! steps backwards and checks each one.

use crate::crypto::{EncryptionKey, NONCE_PREFIX_LEN, TAG_LEN};
use crate::wire::put_varint;
use crate::{FormatError, MvccEntry, Timestamp, mvcc_order};

/// Largest raw size of one block or index a reader accepts (1 GiB).
pub(crate) const MAX_RAW_PART: usize = 1 << 30;

/// What kind of part a sealed unit is, bound into its associated data.
#[derive(Clone, Copy)]
pub(crate) enum PartKind {
    Block = 0,
    Index = 1,
    Footer = 2,
}

/// Counter (nonce suffix) of the index part; blocks use their number.
pub(crate) const INDEX_COUNTER: u32 = u32::MAX - 1;
/// Counter of the footer part.
pub(crate) const FOOTER_COUNTER: u32 = u32::MAX;

/// How a file's blocks are compressed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Compression {
    /// Stored as is.
    None,
    /// zstd at the given level (1 is the default: fast, ~3x on row data).
    Zstd(i32),
}

/// Appends one entry to a raw block.
pub(crate) fn encode_entry(out: &mut Vec<u8>, key: &[u8], ts: Timestamp, value: Option<&[u8]>) {
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    out.extend_from_slice(&ts.to_bytes());
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put_varint(out, v.len() as u64);
            out.extend_from_slice(v);
        }
    }
}

/// One entry of a decoded block, borrowing the block's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EntryRef<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// When this version was written.
    pub ts: Timestamp,
    /// The value, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
}

impl EntryRef<'_> {
    /// An owned copy.
    pub fn to_entry(&self) -> MvccEntry {
        MvccEntry {
            key: self.key.to_vec(),
            ts: self.ts,
            value: self.value.map(<[u8]>::to_vec),
        }
    }

    /// Bytes of key and value, as [`MvccEntry::size`] counts them.
    pub fn size(&self) -> usize {
        self.key.len() + self.value.map_or(0, <[u8]>::len) + Timestamp::ENCODED_LEN
    }

    /// The MVCC order (key ascending, then timestamp descending).
    pub fn mvcc_cmp(&self, other: &EntryRef<'_>) -> std::cmp::Ordering {
        mvcc_order(self.key, self.ts, other.key, other.ts)
    }
}

/// Reads a varint at `*pos` (fast path for one byte); `None` if malformed or cut.
#[inline]
fn varint_at(raw: &[u8], pos: &mut usize) -> Option<u64> {
    let b = *raw.get(*pos)?;
    if b < 0x80 {
        *pos += 1;
        return Some(u64::from(b));
    }
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *raw.get(*pos)?;
        *pos += 1;
        if i == 9 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[inline]
fn slice_at<'a>(raw: &'a [u8], pos: &mut usize, len: u64) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok()?;
    let end = pos.checked_add(len)?;
    let out = raw.get(*pos..end)?;
    *pos = end;
    Some(out)
}

/// Parses the entry at byte `pos` of a raw block; returns it and the next
/// entry's offset, or `None` if the bytes there are not a whole entry.
#[inline]
pub(crate) fn parse_entry(raw: &[u8], pos: usize) -> Option<(EntryRef<'_>, usize)> {
    let mut p = pos;
    let klen = varint_at(raw, &mut p)?;
    let key = slice_at(raw, &mut p, klen)?;
    let ts_bytes: [u8; Timestamp::ENCODED_LEN] =
        raw.get(p..p + Timestamp::ENCODED_LEN)?.try_into().ok()?;
    p += Timestamp::ENCODED_LEN;
    let ts = Timestamp::from_bytes(ts_bytes);
    let kind = *raw.get(p)?;
    p += 1;
    let value = match kind {
        0 => None,
        1 => {
            let vlen = varint_at(raw, &mut p)?;
            Some(slice_at(raw, &mut p, vlen)?)
        }
        _ => return None,
    };
    Some((EntryRef { key, ts, value }, p))
}

/// The decoded, verified entries of one block.
#[derive(Default, Clone, Debug)]
pub struct Block {
    raw: Vec<u8>,
    entries: u32,
    last_pos: usize,
}

impl Block {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries as usize
    }

    /// Whether the block holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The entries in MVCC order.
    pub fn iter(&self) -> BlockIter<'_> {
        self.iter_from(0)
    }

    /// The entries from byte offset `pos` (an entry boundary) on.
    pub(crate) fn iter_from(&self, pos: usize) -> BlockIter<'_> {
        BlockIter {
            raw: &self.raw,
            pos,
        }
    }

    /// The entry at byte offset `pos` and the offset of the next one: a
    /// cursor over the block without borrowing it between steps. `pos` is 0
    /// or an offset this method returned; `None` past the last entry.
    pub fn entry_at(&self, pos: usize) -> Option<(EntryRef<'_>, usize)> {
        parse_entry(&self.raw, pos)
    }

    /// Owned copies of the entries.
    pub fn to_entries(&self) -> Vec<MvccEntry> {
        self.iter().map(|e| e.to_entry()).collect()
    }

    /// Raw bytes of the block's entries.
    pub(crate) fn raw_len_bytes(&self) -> usize {
        self.raw.len()
    }

    /// The last entry of a verified, non-empty block.
    pub(crate) fn last_entry(&self) -> Option<EntryRef<'_>> {
        parse_entry(&self.raw, self.last_pos).map(|(e, _)| e)
    }

    /// The raw bytes, for reuse of the allocation.
    pub(crate) fn raw_mut(&mut self) -> &mut Vec<u8> {
        &mut self.raw
    }

    /// Checks that the raw bytes parse as `expected` entries in MVCC order
    /// from `first` to `last`; on success the block is ready to iterate.
    pub(crate) fn verify(
        &mut self,
        file: &str,
        part: &str,
        expected: u32,
        first: &[u8],
        last: &[u8],
    ) -> Result<(), FormatError> {
        let raw = &self.raw;
        self.last_pos = 0;
        let mut pos = 0;
        let mut n: u32 = 0;
        let mut prev: Option<EntryRef<'_>> = None;
        while pos < raw.len() {
            let Some((e, next)) = parse_entry(raw, pos) else {
                return Err(FormatError::corrupt(
                    file,
                    format!("{part} has a malformed entry at byte {pos}"),
                ));
            };
            match prev {
                None if e.key != first => {
                    return Err(FormatError::corrupt(
                        file,
                        format!("the first key of {part} differs from the index"),
                    ));
                }
                Some(p) if mvcc_order(p.key, p.ts, e.key, e.ts).is_ge() => {
                    return Err(FormatError::corrupt(
                        file,
                        format!("entries of {part} are not in MVCC order"),
                    ));
                }
                _ => {}
            }
            prev = Some(e);
            self.last_pos = pos;
            n = n.saturating_add(1);
            pos = next;
        }
        if n != expected || n == 0 || prev.is_some_and(|p| p.key != last) {
            return Err(FormatError::corrupt(
                file,
                format!(
                    "{part} holds {n} entries ending at a different key than the index says ({expected})"
                ),
            ));
        }
        self.entries = n;
        Ok(())
    }
}

/// Iterates the entries of a verified [`Block`].
pub struct BlockIter<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for BlockIter<'a> {
    type Item = EntryRef<'a>;
    fn next(&mut self) -> Option<EntryRef<'a>> {
        // The block was verified when decoded, so parsing cannot fail; stop if it does.
        let (e, next) = parse_entry(self.raw, self.pos)?;
        self.pos = next;
        Some(e)
    }
}

/// The compress → seal → crc32c pipeline of one file, with reusable state.
pub(crate) struct Codec {
    compression: Compression,
    key: Option<EncryptionKey>,
    prefix: [u8; NONCE_PREFIX_LEN],
    compressor: Option<zstd::bulk::Compressor<'static>>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
    scratch: Vec<u8>,
}

impl Codec {
    /// A codec for one file.
    pub(crate) fn new(
        compression: Compression,
        key: Option<EncryptionKey>,
        prefix: [u8; NONCE_PREFIX_LEN],
    ) -> Codec {
        Codec {
            compression,
            key,
            prefix,
            compressor: None,
            decompressor: None,
            scratch: Vec::new(),
        }
    }

    fn aad(kind: PartKind, counter: u32, extra: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(5 + extra.len());
        aad.push(kind as u8);
        aad.extend_from_slice(&counter.to_be_bytes());
        aad.extend_from_slice(extra);
        aad
    }

    /// Appends the stored form of `raw` (payload then crc32c) to `out`.
    pub(crate) fn encode(
        &mut self,
        raw: &[u8],
        kind: PartKind,
        counter: u32,
        extra_aad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        let start = out.len();
        match (self.compression, &self.key) {
            (Compression::None, None) => out.extend_from_slice(raw),
            (compression, key) => {
                self.scratch.clear();
                match compression {
                    Compression::None => self.scratch.extend_from_slice(raw),
                    Compression::Zstd(level) => {
                        let c = match &mut self.compressor {
                            Some(c) => c,
                            None => {
                                self.compressor
                                    .insert(zstd::bulk::Compressor::new(level).map_err(|e| {
                                        FormatError::InvalidArgument(format!(
                                            "zstd level {level}: {e}"
                                        ))
                                    })?)
                            }
                        };
                        self.scratch
                            .reserve(zstd::zstd_safe::compress_bound(raw.len()) + TAG_LEN);
                        c.compress_to_buffer(raw, &mut self.scratch).map_err(|e| {
                            FormatError::InvalidArgument(format!("zstd compression failed: {e}"))
                        })?;
                    }
                }
                if let Some(key) = key {
                    let aad = Self::aad(kind, counter, extra_aad);
                    key.seal(&self.prefix, counter, &aad, &mut self.scratch)?;
                }
                out.extend_from_slice(&self.scratch);
            }
        }
        let crc = crc32c::crc32c(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    /// Checks and decodes the stored form of a part into `raw` (replacing its contents).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decode(
        &mut self,
        file: &str,
        part: &str,
        stored: &[u8],
        kind: PartKind,
        counter: u32,
        extra_aad: &[u8],
        raw_len: usize,
        raw: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        let n = stored.len().checked_sub(4).ok_or_else(|| {
            FormatError::corrupt(file, format!("{part} is shorter than its checksum"))
        })?;
        let (payload, crc) = stored.split_at(n);
        let mut c = [0u8; 4];
        c.copy_from_slice(crc);
        if crc32c::crc32c(payload) != u32::from_le_bytes(c) {
            return Err(FormatError::checksum(file, part));
        }
        if raw_len > MAX_RAW_PART {
            return Err(FormatError::corrupt(
                file,
                format!("{part} claims {raw_len} raw bytes"),
            ));
        }
        let payload: &[u8] = match &self.key {
            Some(key) => {
                self.scratch.clear();
                self.scratch.extend_from_slice(payload);
                key.open(
                    file,
                    part,
                    &self.prefix,
                    counter,
                    &Self::aad(kind, counter, extra_aad),
                    &mut self.scratch,
                )?;
                &self.scratch
            }
            None => payload,
        };
        raw.clear();
        match self.compression {
            Compression::None => raw.extend_from_slice(payload),
            Compression::Zstd(_) => {
                let d = match &mut self.decompressor {
                    Some(d) => d,
                    None => self.decompressor.insert(
                        zstd::bulk::Decompressor::new().map_err(|e| FormatError::io(file, e))?,
                    ),
                };
                raw.reserve(raw_len);
                d.decompress_to_buffer(payload, raw)
                    .map_err(|e| FormatError::Decompression {
                        file: file.to_string(),
                        part: part.to_string(),
                        detail: e.to_string(),
                    })?;
            }
        }
        if raw.len() != raw_len {
            return Err(FormatError::corrupt(
                file,
                format!(
                    "{part} decodes to {} bytes, not the {raw_len} the index says",
                    raw.len()
                ),
            ));
        }
        Ok(())
    }
}
