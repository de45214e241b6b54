//! How a block is stored in its segment: its reference, and compression.

use crate::error::ClusterError;

/// Where one block's bytes are and how they are stored: encoded in the
/// engine in [`BlockRef::LEN`] bytes (or [`BlockRef::RAW_ONLY_LEN`], the
/// first encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockRef {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
    /// Bytes stored in the segment (what S2 counts).
    pub(crate) len: u32,
    /// crc32c of the stored bytes.
    pub(crate) crc: u32,
    /// Bytes of the block itself, once decompressed.
    pub(crate) raw_len: u32,
    /// How the block is stored.
    pub(crate) codec: Codec,
}

/// How a block's bytes are stored in its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    /// As they are.
    Raw,
    /// Compressed in the LZ4 block format.
    Lz4,
}

impl Codec {
    fn tag(self) -> u8 {
        match self {
            Codec::Raw => 0,
            Codec::Lz4 => 1,
        }
    }
}

impl BlockRef {
    /// Encoded length.
    pub(crate) const LEN: usize = 29;
    /// Length of the first encoding (segment, offset, length, crc), which
    /// names a raw block.
    pub(crate) const RAW_ONLY_LEN: usize = 24;

    /// Appends the encoding to `out`: the first encoding, then the raw
    /// length and the codec.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.segment.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.push(self.codec.tag());
    }

    /// Inverse of [`BlockRef::encode_into`]; also decodes the first
    /// encoding ([`BlockRef::RAW_ONLY_LEN`] bytes) as a raw block.
    pub(crate) fn decode(bytes: &[u8]) -> Result<BlockRef, ClusterError> {
        let bad = || ClusterError::Corrupt("an ingested block's reference is malformed".into());
        if bytes.len() != Self::LEN && bytes.len() != Self::RAW_ONLY_LEN {
            return Err(bad());
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let u32_at = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[i..i + 4]);
            u32::from_le_bytes(b)
        };
        let len = u32_at(16);
        let (raw_len, codec) = match bytes.get(Self::RAW_ONLY_LEN..) {
            Some([]) => (len, Codec::Raw),
            Some(&[_, _, _, _, 0]) if u32_at(24) == len => (len, Codec::Raw),
            Some(&[_, _, _, _, 1]) => (u32_at(24), Codec::Lz4),
            _ => return Err(bad()),
        };
        Ok(BlockRef {
            segment: u64_at(0),
            offset: u64_at(8),
            len,
            crc: u32_at(20),
            raw_len,
            codec,
        })
    }

    /// The block from the `stored` bytes this reference names (their crc
    /// already checked): as they are, or decompressed.
    pub(crate) fn unpack(&self, stored: Vec<u8>) -> Result<Vec<u8>, ClusterError> {
        match self.codec {
            Codec::Raw => Ok(stored),
            Codec::Lz4 => decompress(self, &stored),
        }
    }
}

/// The blocks of one append, each compressed where that pays, one after
/// another in one buffer.
pub(super) struct Packed {
    pub(super) bytes: Vec<u8>,
    /// Each block's reference, with its offset in `bytes` and segment 0:
    /// placed by [`Packed::refs_at`].
    refs: Vec<BlockRef>,
}

impl Packed {
    /// Compresses each of `blocks` when that saves at least an eighth of
    /// its bytes, else copies it as it is.
    pub(super) fn new(blocks: &[Vec<u8>]) -> Packed {
        let raw_total: usize = blocks.iter().map(Vec::len).sum();
        let mut bytes = Vec::with_capacity(raw_total);
        let mut refs = Vec::with_capacity(blocks.len());
        for block in blocks {
            let at = bytes.len();
            bytes.resize(
                at + lz4_flex::block::get_maximum_output_size(block.len()),
                0,
            );
            let codec = match lz4_flex::block::compress_into(block, &mut bytes[at..]) {
                Ok(n) if n.saturating_mul(8) <= block.len() * 7 => {
                    bytes.truncate(at + n);
                    Codec::Lz4
                }
                // Too little gain (or no room, which the size above rules out).
                _ => {
                    bytes.truncate(at);
                    bytes.extend_from_slice(block);
                    Codec::Raw
                }
            };
            let stored = &bytes[at..];
            refs.push(BlockRef {
                segment: 0,
                offset: at as u64,
                len: stored.len() as u32,
                crc: crc32c::crc32c(stored),
                raw_len: block.len() as u32,
                codec,
            });
        }
        Packed { bytes, refs }
    }

    /// The blocks' references once `bytes` is written at `start` of
    /// `segment`.
    pub(super) fn refs_at(&self, segment: u64, start: u64) -> Vec<BlockRef> {
        self.refs
            .iter()
            .map(|r| BlockRef {
                segment,
                offset: start + r.offset,
                ..*r
            })
            .collect()
    }
}

/// The block `r` names from its lz4-compressed `stored` bytes, which must
/// decompress to exactly its raw length.
fn decompress(r: &BlockRef, stored: &[u8]) -> Result<Vec<u8>, ClusterError> {
    let corrupt = |what: String| {
        ClusterError::Corrupt(format!(
            "a compressed block of segment {} at {} {what}",
            r.segment, r.offset
        ))
    };
    // LZ4 expands a byte at most 255-fold: a damaged raw length must not
    // ask for a huge buffer.
    if u64::from(r.raw_len) > u64::from(r.len) * 255 {
        return Err(corrupt(format!(
            "claims {} bytes from {}, more than LZ4 can give",
            r.raw_len, r.len
        )));
    }
    let mut raw = vec![0u8; r.raw_len as usize];
    match lz4_flex::block::decompress_into(stored, &mut raw) {
        Ok(n) if n == raw.len() => Ok(raw),
        Ok(n) => Err(corrupt(format!(
            "decompresses to {n} bytes, not the {} its reference records",
            r.raw_len
        ))),
        Err(e) => Err(corrupt(format!("does not decompress ({e})"))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;
    use std::fs;

    use super::*;
    use crate::segments::Segments;

    /// A block of text that compresses well.
    fn text(len: usize) -> Vec<u8> {
        b"row 00000042 name-7 city-3 "
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect()
    }

    /// `len` bytes that do not compress (xorshift).
    pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn open() -> (tempfile::TempDir, Segments) {
        let dir = tempfile::tempdir().unwrap();
        let segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        (dir, segments)
    }

    #[test]
    fn a_block_is_compressed_only_when_that_saves_an_eighth() {
        let (dir, segments) = open();
        // Mostly noise (lz4 saves less than an eighth), and half noise, half
        // text (it saves about half).
        let mut mixed = noise(60_000, 3);
        mixed.extend(text(4_000));
        let mut half = noise(32_000, 5);
        half.extend(text(32_000));
        let blocks = vec![text(65_536), noise(65_536, 1), mixed, half];
        let (id, refs) = segments.append(&blocks).unwrap();
        segments.committed(id);
        let codecs: Vec<Codec> = refs.iter().map(|r| r.codec).collect();
        assert_eq!(codecs, [Codec::Lz4, Codec::Raw, Codec::Raw, Codec::Lz4]);
        assert!(refs[0].len < 65_536 / 8, "{:?}", refs[0]);
        assert!(refs[3].len <= 56_000, "{:?}", refs[3]);
        for (r, block) in refs.iter().zip(&blocks) {
            assert_eq!(r.raw_len as usize, block.len());
            if r.codec == Codec::Raw {
                assert_eq!(r.len, r.raw_len);
            }
            assert_eq!(&segments.read(r).unwrap(), block);
        }
        // The file holds the stored bytes, back to back.
        let stored: u64 = refs.iter().map(|r| u64::from(r.len)).sum();
        let file = dir.path().join("segments").join(format!("{id}.seg"));
        assert_eq!(fs::metadata(file).unwrap().len(), stored);
        assert_eq!(refs[1].offset, u64::from(refs[0].len));
    }

    #[test]
    fn a_reference_round_trips_and_its_first_encoding_names_a_raw_block() {
        let (_dir, segments) = open();
        let blocks = vec![text(10_000), noise(10_000, 9)];
        let (id, refs) = segments.append(&blocks).unwrap();
        segments.committed(id);
        for r in &refs {
            let mut encoded = Vec::new();
            r.encode_into(&mut encoded);
            assert_eq!(encoded.len(), BlockRef::LEN);
            assert_eq!(BlockRef::decode(&encoded).unwrap(), *r);
        }
        // The first encoding: segment, offset, length, crc.
        let raw = refs[1];
        let mut first = Vec::new();
        first.extend_from_slice(&raw.segment.to_le_bytes());
        first.extend_from_slice(&raw.offset.to_le_bytes());
        first.extend_from_slice(&raw.len.to_le_bytes());
        first.extend_from_slice(&raw.crc.to_le_bytes());
        assert_eq!(first.len(), BlockRef::RAW_ONLY_LEN);
        let decoded = BlockRef::decode(&first).unwrap();
        assert_eq!(decoded, raw);
        assert_eq!(segments.read(&decoded).unwrap(), blocks[1]);
        // A raw block whose lengths differ, an unknown codec, a short
        // encoding: errors.
        let mut bad = Vec::new();
        BlockRef { raw_len: 7, ..raw }.encode_into(&mut bad);
        assert!(matches!(
            BlockRef::decode(&bad),
            Err(ClusterError::Corrupt(_))
        ));
        let mut unknown = Vec::new();
        raw.encode_into(&mut unknown);
        unknown[BlockRef::LEN - 1] = 9;
        assert!(matches!(
            BlockRef::decode(&unknown),
            Err(ClusterError::Corrupt(_))
        ));
        assert!(BlockRef::decode(&first[..20]).is_err());
    }

    #[test]
    fn a_compressed_block_that_does_not_decompress_to_its_length_is_corrupt() {
        let (_dir, segments) = open();
        let block = text(20_000);
        let (id, refs) = segments.append(std::slice::from_ref(&block)).unwrap();
        segments.committed(id);
        let r = refs[0];
        assert_eq!(r.codec, Codec::Lz4);
        // The crc matches, the lengths do not.
        for raw_len in [r.raw_len - 1, r.raw_len + 1, r.len * 255 + 1] {
            let err = segments.read(&BlockRef { raw_len, ..r }).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, ClusterError::Corrupt(_)), "{msg}");
            assert!(
                msg.contains(&format!("segment {} at {}", r.segment, r.offset)),
                "{msg}"
            );
        }
        // Bytes that are no LZ4 block, with a matching crc.
        let garbage = noise(1_000, 11);
        let (id, refs) = segments.append(std::slice::from_ref(&garbage)).unwrap();
        segments.committed(id);
        let as_lz4 = BlockRef {
            codec: Codec::Lz4,
            raw_len: 64_000,
            ..refs[0]
        };
        let err = segments.read(&as_lz4).unwrap_err();
        assert!(matches!(err, ClusterError::Corrupt(_)), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("compressed block of segment"), "{msg}");
    }
}
