//! Data files: sorted MVCC entries in compressed, checksummed, optionally
//! encrypted blocks, with an index and a footer for ranged reads.
//!
//! ```text
//! block 0 | block 1 | ... | block n-1 | index | footer | trailer (20 bytes)
//! ```
//!
//! - Each **block** holds ~64 KiB of raw entries (see [`block`](self) for the
//!   entry encoding), stored as `codec(raw) | crc32c u32 LE`, where `codec` is
//!   zstd (when compressed) then AES-256-GCM (when encrypted; nonce = file
//!   nonce prefix ‖ block number u32 BE, AAD = `0x00 ‖ block number u32 BE`).
//!   One key's revisions may continue into the next block, never into the
//!   next file.
//! - The **index** lists, per block, its offset, stored length, raw length,
//!   entry count and first and last key; stored like a block with counter
//!   `0xFFFF_FFFE` and AAD kind `0x01`.
//! - The **footer** has a plain part (compression, encryption, nonce prefix,
//!   key check) and a protected part (index location, counts, raw bytes,
//!   min/max timestamp, first and last key) that is sealed with counter
//!   `0xFFFF_FFFF`, AAD `0x02 ‖ 0xFFFFFFFF ‖ plain part` when encrypted.
//! - The **trailer** is `footer length u32 | crc32c u32 | major u16 | minor u16 | "BKPDATAF"`,
//!   all little-endian; the crc32c covers the footer and the rest of the trailer.
//!
//! Every byte of the file is covered by a checksum, and the index must
//! describe blocks that tile the file from offset 0 to the index exactly,
//! so a flipped byte or a cut anywhere is an error. With encryption, the
//! blocks, index and footer are also authenticated, so swapped, replayed,
//! dropped or foreign blocks are detected too.
//!
//! Reading is sans-IO: [`Footer::tail_len`] and [`Footer::decode`] on the
//! last bytes, then [`DataFileDecoder::decode_index`] on the index range,
//! [`Index::blocks_overlapping`] for a key span, and
//! [`DataFileDecoder::decode_block`] on each block's bytes. [`DataFileReader`]
//! does all of this over a "read this byte range" callback.

mod block;
mod footer;
mod reader;
mod rolling;
mod writer;

pub use block::{Block, BlockIter, Compression, EntryRef};
pub use footer::{BlockHandle, DATA_FILE_MAJOR, DATA_FILE_MINOR, Footer, Index};
pub use reader::{DataFileDecoder, DataFileReader, Scan, VerifiedFile, verify_data_file};
pub use rolling::{FileOpener, RollingWriter};
pub use writer::{DataFileOptions, DataFileWriter, FileSummary};
