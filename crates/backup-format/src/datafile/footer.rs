//! The footer, trailer and index of a data file.

use std::ops::Range;

use super::block::{Codec, Compression, FOOTER_COUNTER, INDEX_COUNTER, MAX_RAW_PART, PartKind};
use crate::crypto::{EncryptionKey, KEY_CHECK_LEN, NONCE_PREFIX_LEN};
use crate::wire::{ByteReader, put_len_bytes, put_varint};
use crate::{FormatError, Span, Timestamp};

/// Major version of the data-file format this release writes and reads.
pub const DATA_FILE_MAJOR: u16 = 1;
/// Minor version this release writes (newer minors only append footer fields).
pub const DATA_FILE_MINOR: u16 = 0;
pub(crate) const MAGIC: &[u8; 8] = b"BKPDATAF";
/// Bytes of the plain part of the footer.
const PLAIN_LEN: usize = 2 + NONCE_PREFIX_LEN + KEY_CHECK_LEN;
const KIND: &str = "backup data file";

/// What the footer of a data file says.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Footer {
    /// Major and minor format version.
    pub version: (u16, u16),
    /// Whether blocks are zstd-compressed.
    pub compressed: bool,
    /// Whether blocks, index and footer are AES-256-GCM sealed.
    pub encrypted: bool,
    pub(crate) nonce_prefix: [u8; NONCE_PREFIX_LEN],
    pub(crate) key_check: [u8; KEY_CHECK_LEN],
    /// Offset of the index.
    pub index_offset: u64,
    /// Stored length of the index (with its crc32c).
    pub index_len: u64,
    /// Raw (decoded) length of the index.
    pub index_raw_len: u64,
    /// Number of blocks.
    pub block_count: u32,
    /// Number of entries (versions).
    pub entry_count: u64,
    /// Number of distinct keys.
    pub row_count: u64,
    /// Raw bytes of all blocks.
    pub raw_bytes: u64,
    /// Oldest timestamp of any entry (ZERO when empty).
    pub min_ts: Timestamp,
    /// Newest timestamp of any entry (ZERO when empty).
    pub max_ts: Timestamp,
    /// First key (empty when the file is empty).
    pub first_key: Vec<u8>,
    /// Last key (empty when the file is empty).
    pub last_key: Vec<u8>,
    /// Stored length of footer plus trailer.
    pub tail_len: u64,
}

impl Footer {
    /// Bytes of the fixed trailer at the very end of the file.
    pub const TRAILER_LEN: usize = 20;
    /// How many tail bytes a reader should fetch first; usually enough for the footer.
    pub const SUGGESTED_TAIL_READ: u64 = 4096;

    /// The key span `[first_key, last_key + 0x00)` of the file's entries.
    pub fn span(&self) -> Span {
        if self.entry_count == 0 {
            return Span::default();
        }
        let mut end = self.last_key.clone();
        end.push(0);
        Span::new(self.first_key.clone(), end)
    }

    /// The byte range of the index.
    pub fn index_range(&self) -> Range<u64> {
        self.index_offset..self.index_offset + self.index_len
    }

    /// From the last [`Footer::TRAILER_LEN`] bytes of `file`, how many bytes at
    /// the end of the file hold the footer and trailer.
    pub fn tail_len(file: &str, trailer: &[u8], file_len: u64) -> Result<u64, FormatError> {
        let t = trailer_fields(file, trailer, file_len)?;
        Ok(t.footer_len + Self::TRAILER_LEN as u64)
    }

    /// Decodes the footer from `tail`, the last bytes of `file` (at least
    /// [`Footer::tail_len`] of them), checking it against `key`.
    pub fn decode(
        file: &str,
        tail: &[u8],
        file_len: u64,
        key: Option<&EncryptionKey>,
    ) -> Result<Footer, FormatError> {
        let trailer_start = tail
            .len()
            .checked_sub(Self::TRAILER_LEN)
            .ok_or_else(|| FormatError::truncated(file, "the file is shorter than its trailer"))?;
        let t = trailer_fields(file, &tail[trailer_start..], file_len)?;
        let footer_len = t.footer_len as usize;
        let footer_start = trailer_start.checked_sub(footer_len).ok_or_else(|| {
            FormatError::InvalidArgument(format!(
                "{file}: the tail given holds {} bytes but the footer needs {}",
                tail.len(),
                footer_len + Self::TRAILER_LEN
            ))
        })?;
        let covered = &tail[footer_start..];
        let mut crc = crc32c::crc32c(&covered[..footer_len + 4]);
        crc = crc32c::crc32c_append(crc, &covered[footer_len + 8..]);
        if crc != t.crc {
            return Err(FormatError::checksum(file, "the footer"));
        }
        if t.major != DATA_FILE_MAJOR {
            return Err(FormatError::UnsupportedVersion {
                file: file.to_string(),
                major: t.major,
                minor: t.minor,
                supported: DATA_FILE_MAJOR,
            });
        }
        let body = &covered[..footer_len];
        if body.len() < PLAIN_LEN {
            return Err(FormatError::corrupt(file, "the footer is too short"));
        }
        let (plain, protected) = body.split_at(PLAIN_LEN);
        let compressed = flag(file, plain[0], "compression")?;
        let encrypted = flag(file, plain[1], "encryption")?;
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        nonce_prefix.copy_from_slice(&plain[2..2 + NONCE_PREFIX_LEN]);
        let mut key_check = [0u8; KEY_CHECK_LEN];
        key_check.copy_from_slice(&plain[2 + NONCE_PREFIX_LEN..]);
        let mut opened;
        let protected: &[u8] = match (encrypted, key) {
            (true, None) => {
                return Err(FormatError::KeyRequired {
                    file: file.to_string(),
                });
            }
            (false, Some(_)) => {
                return Err(FormatError::UnexpectedPlaintext {
                    file: file.to_string(),
                });
            }
            (false, None) => protected,
            (true, Some(key)) => {
                key.verify_check(file, &key_check)?;
                opened = protected.to_vec();
                let mut aad = vec![PartKind::Footer as u8];
                aad.extend_from_slice(&FOOTER_COUNTER.to_be_bytes());
                aad.extend_from_slice(plain);
                key.open(
                    file,
                    "the footer",
                    &nonce_prefix,
                    FOOTER_COUNTER,
                    &aad,
                    &mut opened,
                )?;
                &opened
            }
        };
        let mut r = ByteReader::new(file, "the footer", protected);
        let footer = Footer {
            version: (t.major, t.minor),
            compressed,
            encrypted,
            nonce_prefix,
            key_check,
            index_offset: r.u64_le()?,
            index_len: r.u64_le()?,
            index_raw_len: r.u64_le()?,
            block_count: r.u32_le()?,
            entry_count: r.u64_le()?,
            row_count: r.u64_le()?,
            raw_bytes: r.u64_le()?,
            min_ts: Timestamp::from_bytes(r.array()?),
            max_ts: Timestamp::from_bytes(r.array()?),
            first_key: r.len_bytes()?.to_vec(),
            last_key: r.len_bytes()?.to_vec(),
            tail_len: t.footer_len + Self::TRAILER_LEN as u64,
        };
        // Bytes after the known fields belong to newer minor versions: skipped.
        footer.check(file, file_len)?;
        Ok(footer)
    }

    fn check(&self, file: &str, file_len: u64) -> Result<(), FormatError> {
        let bad = |what: &str| Err(FormatError::corrupt(file, format!("the footer {what}")));
        let end = self
            .index_offset
            .checked_add(self.index_len)
            .and_then(|e| e.checked_add(self.tail_len));
        if end != Some(file_len) {
            return bad("does not place the index right before it");
        }
        if self.index_raw_len > MAX_RAW_PART as u64 {
            return bad("claims an oversized index");
        }
        let empty = self.entry_count == 0;
        if empty != (self.block_count == 0) || empty != (self.row_count == 0) {
            return bad("has inconsistent counts");
        }
        if self.row_count > self.entry_count || u64::from(self.block_count) > self.entry_count {
            return bad("has inconsistent counts");
        }
        if !empty && (self.min_ts > self.max_ts || self.first_key > self.last_key) {
            return bad("has an inverted key or time range");
        }
        Ok(())
    }

    /// Encodes footer and trailer (the writer's side).
    pub(crate) fn encode(&self, key: Option<&EncryptionKey>) -> Result<Vec<u8>, FormatError> {
        let mut plain = Vec::with_capacity(PLAIN_LEN);
        plain.push(u8::from(self.compressed));
        plain.push(u8::from(self.encrypted));
        plain.extend_from_slice(&self.nonce_prefix);
        plain.extend_from_slice(&self.key_check);
        let mut p = Vec::with_capacity(96 + self.first_key.len() + self.last_key.len());
        for v in [self.index_offset, self.index_len, self.index_raw_len] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        p.extend_from_slice(&self.block_count.to_le_bytes());
        for v in [self.entry_count, self.row_count, self.raw_bytes] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        p.extend_from_slice(&self.min_ts.to_bytes());
        p.extend_from_slice(&self.max_ts.to_bytes());
        put_len_bytes(&mut p, &self.first_key);
        put_len_bytes(&mut p, &self.last_key);
        if let Some(key) = key {
            let mut aad = vec![PartKind::Footer as u8];
            aad.extend_from_slice(&FOOTER_COUNTER.to_be_bytes());
            aad.extend_from_slice(&plain);
            key.seal(&self.nonce_prefix, FOOTER_COUNTER, &aad, &mut p)?;
        }
        let mut out = plain;
        out.extend_from_slice(&p);
        let footer_len = u32::try_from(out.len())
            .map_err(|_| FormatError::InvalidArgument("a key longer than 2 GiB".into()))?;
        let mut rest = Vec::with_capacity(12);
        rest.extend_from_slice(&DATA_FILE_MAJOR.to_le_bytes());
        rest.extend_from_slice(&DATA_FILE_MINOR.to_le_bytes());
        rest.extend_from_slice(MAGIC);
        out.extend_from_slice(&footer_len.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&out), &rest);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&rest);
        Ok(out)
    }
}

struct Trailer {
    footer_len: u64,
    crc: u32,
    major: u16,
    minor: u16,
}

fn trailer_fields(file: &str, trailer: &[u8], file_len: u64) -> Result<Trailer, FormatError> {
    if trailer.len() != Footer::TRAILER_LEN || file_len < Footer::TRAILER_LEN as u64 {
        return Err(FormatError::truncated(
            file,
            "the file is shorter than its trailer",
        ));
    }
    if &trailer[12..] != MAGIC {
        return Err(FormatError::BadMagic {
            file: file.to_string(),
            expected: KIND,
        });
    }
    let mut r = ByteReader::new(file, "the trailer", trailer);
    let t = Trailer {
        footer_len: u64::from(r.u32_le()?),
        crc: r.u32_le()?,
        major: r.u16_le()?,
        minor: r.u16_le()?,
    };
    if t.footer_len + Footer::TRAILER_LEN as u64 > file_len {
        return Err(FormatError::truncated(
            file,
            format!(
                "the footer claims {} bytes but the file has {file_len}",
                t.footer_len
            ),
        ));
    }
    Ok(t)
}

fn flag(file: &str, b: u8, what: &str) -> Result<bool, FormatError> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(FormatError::corrupt(
            file,
            format!("unknown {what} code {b} in the footer"),
        )),
    }
}

/// Where one block lives and what it holds.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockHandle {
    /// Block number (0-based), bound into its encryption.
    pub number: u32,
    /// Offset in the file.
    pub offset: u64,
    /// Stored length, including the crc32c.
    pub len: u64,
    /// Raw length of its entries.
    pub raw_len: u64,
    /// Number of entries.
    pub entries: u32,
    /// First key.
    pub first_key: Vec<u8>,
    /// Last key.
    pub last_key: Vec<u8>,
}

impl BlockHandle {
    /// The block's byte range in the file.
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.len
    }

    /// The byte range of one ranged read fetching `blocks[0]` (in file
    /// order) and the blocks after it while the read stays within
    /// `max_bytes` (the first block always, whole); `None` if `blocks` is
    /// empty.
    pub fn coalesced_range(blocks: &[BlockHandle], max_bytes: u64) -> Option<Range<u64>> {
        let first = blocks.first()?;
        let mut end = first.offset + first.len;
        for b in &blocks[1..] {
            if b.offset + b.len - first.offset > max_bytes {
                break;
            }
            end = b.offset + b.len;
        }
        Some(first.offset..end)
    }

    /// Whether the block may hold a key of `span`.
    pub fn overlaps(&self, span: &Span) -> bool {
        self.first_key.as_slice() < span.end.as_slice()
            && self.last_key.as_slice() >= span.start.as_slice()
    }
}

/// The decoded index of a data file.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Index {
    /// Every block, in file (and key) order.
    pub blocks: Vec<BlockHandle>,
}

impl Index {
    /// The blocks that may hold keys of `span`, in order (contiguous).
    pub fn blocks_overlapping(&self, span: &Span) -> Vec<BlockHandle> {
        if span.is_empty() {
            return Vec::new();
        }
        let from = self
            .blocks
            .partition_point(|b| b.last_key.as_slice() < span.start.as_slice());
        self.blocks[from..]
            .iter()
            .take_while(|b| b.first_key.as_slice() < span.end.as_slice())
            .cloned()
            .collect()
    }

    /// Raw encoding (the writer's side).
    pub(crate) fn encode_raw(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.blocks.len() * 64);
        put_varint(&mut out, self.blocks.len() as u64);
        for b in &self.blocks {
            put_varint(&mut out, b.offset);
            put_varint(&mut out, b.len);
            put_varint(&mut out, b.raw_len);
            put_varint(&mut out, u64::from(b.entries));
            put_len_bytes(&mut out, &b.first_key);
            put_len_bytes(&mut out, &b.last_key);
        }
        out
    }

    /// Decodes and checks the stored index of `file` against its footer.
    pub(crate) fn decode(
        file: &str,
        footer: &Footer,
        codec: &mut Codec,
        stored: &[u8],
    ) -> Result<Index, FormatError> {
        if stored.len() as u64 != footer.index_len {
            return Err(FormatError::truncated(file, "the index is incomplete"));
        }
        let mut raw = Vec::new();
        codec.decode(
            file,
            "the index",
            stored,
            PartKind::Index,
            INDEX_COUNTER,
            &[],
            footer.index_raw_len as usize,
            &mut raw,
        )?;
        let mut r = ByteReader::new(file, "the index", &raw);
        let n = r.varint()?;
        if n != u64::from(footer.block_count) {
            return Err(FormatError::corrupt(
                file,
                "the index and footer disagree on the block count",
            ));
        }
        // Each index entry takes at least 6 bytes: never reserve more than the bytes allow.
        let mut blocks = Vec::with_capacity((footer.block_count as usize).min(raw.len() / 6));
        let (mut offset, mut entries, mut raw_bytes) = (0u64, 0u64, 0u64);
        for number in 0..footer.block_count {
            let b = BlockHandle {
                number,
                offset: r.varint()?,
                len: r.varint()?,
                raw_len: r.varint()?,
                entries: u32::try_from(r.varint()?)
                    .map_err(|_| r.error("an entry count out of range"))?,
                first_key: r.len_bytes()?.to_vec(),
                last_key: r.len_bytes()?.to_vec(),
            };
            let ordered = b.first_key <= b.last_key
                && blocks
                    .last()
                    .is_none_or(|p: &BlockHandle| p.last_key <= b.first_key);
            if b.offset != offset
                || b.len < 4
                || b.entries == 0
                || b.raw_len > MAX_RAW_PART as u64
                || !ordered
            {
                return Err(FormatError::corrupt(
                    file,
                    format!("index entry of block {number} is invalid"),
                ));
            }
            offset = offset.saturating_add(b.len);
            entries = entries.saturating_add(u64::from(b.entries));
            raw_bytes = raw_bytes.saturating_add(b.raw_len);
            blocks.push(b);
        }
        if !r.is_empty() {
            return Err(r.error("trailing bytes"));
        }
        let keys_match = match (blocks.first(), blocks.last()) {
            (Some(f), Some(l)) => f.first_key == footer.first_key && l.last_key == footer.last_key,
            _ => true,
        };
        if offset != footer.index_offset
            || entries != footer.entry_count
            || raw_bytes != footer.raw_bytes
            || !keys_match
        {
            return Err(FormatError::corrupt(
                file,
                "the index does not match the footer",
            ));
        }
        Ok(Index { blocks })
    }
}

/// The compression setting a reader uses for a footer.
pub(crate) fn read_compression(footer: &Footer) -> Compression {
    if footer.compressed {
        Compression::Zstd(0)
    } else {
        Compression::None
    }
}
