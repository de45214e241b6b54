//! The streaming data-file writer.

use std::io::Write;

use super::block::{Codec, Compression, INDEX_COUNTER, PartKind, encode_entry};
use super::footer::{BlockHandle, DATA_FILE_MAJOR, DATA_FILE_MINOR, Footer, Index};
use crate::crypto::{EncryptionKey, KEY_CHECK_LEN, NONCE_PREFIX_LEN, random_bytes};
use crate::{FormatError, MvccEntry, PrettyKey, Span, Timestamp, mvcc_order};

/// How data files are written.
#[derive(Clone, Debug)]
pub struct DataFileOptions {
    /// Raw bytes after which a block is closed (default 64 KiB).
    pub block_size: usize,
    /// Block compression (default zstd level 1).
    pub compression: Compression,
    /// The backup's key, when the backup is encrypted.
    pub encryption: Option<EncryptionKey>,
    /// Stored bytes after which [`super::RollingWriter`] starts a new file
    /// (default 128 MiB); a file never ends inside one key's revisions.
    pub target_file_size: u64,
}

impl Default for DataFileOptions {
    fn default() -> DataFileOptions {
        DataFileOptions {
            block_size: 64 * 1024,
            compression: Compression::Zstd(1),
            encryption: None,
            target_file_size: 128 * 1024 * 1024,
        }
    }
}

/// What a finished data file holds: the facts the manifest's file list records.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FileSummary {
    /// The file's name (as given to the writer).
    pub name: String,
    /// `[first key, last key + 0x00)`; empty for an empty file.
    pub span: Span,
    /// Number of entries (versions).
    pub entry_count: u64,
    /// Number of distinct keys.
    pub row_count: u64,
    /// Raw bytes of the encoded entries.
    pub raw_bytes: u64,
    /// Bytes of the file as stored.
    pub stored_bytes: u64,
    /// Oldest entry timestamp (ZERO when empty).
    pub min_ts: Timestamp,
    /// Newest entry timestamp (ZERO when empty).
    pub max_ts: Timestamp,
    /// crc32c (Castagnoli) of all stored bytes of the file.
    pub checksum: u32,
}

/// Writes one data file to any [`Write`], from entries given in MVCC order.
///
/// Memory is one block plus the index (first and last key of each block).
pub struct DataFileWriter<W: Write> {
    name: String,
    out: W,
    written: u64,
    file_crc: u32,
    block_size: usize,
    codec: Codec,
    key: Option<EncryptionKey>,
    compressed: bool,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    raw: Vec<u8>,
    stored: Vec<u8>,
    block_entries: u32,
    block_first: Vec<u8>,
    last_key: Vec<u8>,
    last_ts: Timestamp,
    index: Index,
    first_key: Vec<u8>,
    entry_count: u64,
    row_count: u64,
    raw_bytes: u64,
    min_ts: Timestamp,
    max_ts: Timestamp,
}

impl<W: Write> DataFileWriter<W> {
    /// Starts the data file `name` on `out`.
    pub fn new(
        name: &str,
        out: W,
        options: &DataFileOptions,
    ) -> Result<DataFileWriter<W>, FormatError> {
        let nonce_prefix = match options.encryption {
            Some(_) => random_bytes::<NONCE_PREFIX_LEN>()?,
            None => [0u8; NONCE_PREFIX_LEN],
        };
        let block_size = options.block_size.clamp(1, 64 * 1024 * 1024);
        Ok(DataFileWriter {
            name: name.to_string(),
            out,
            written: 0,
            file_crc: 0,
            block_size,
            codec: Codec::new(
                options.compression,
                options.encryption.clone(),
                nonce_prefix,
            ),
            key: options.encryption.clone(),
            compressed: options.compression != Compression::None,
            nonce_prefix,
            raw: Vec::with_capacity(block_size + 1024),
            stored: Vec::with_capacity(block_size + 1024),
            block_entries: 0,
            block_first: Vec::new(),
            last_key: Vec::new(),
            last_ts: Timestamp::ZERO,
            index: Index::default(),
            first_key: Vec::new(),
            entry_count: 0,
            row_count: 0,
            raw_bytes: 0,
            min_ts: Timestamp::MAX,
            max_ts: Timestamp::ZERO,
        })
    }

    /// Adds one entry; entries must come in strict MVCC order.
    pub fn add(&mut self, entry: &MvccEntry) -> Result<(), FormatError> {
        self.add_parts(&entry.key, entry.ts, entry.value.as_deref())
    }

    /// Adds one entry given by its parts.
    pub fn add_parts(
        &mut self,
        key: &[u8],
        ts: Timestamp,
        value: Option<&[u8]>,
    ) -> Result<(), FormatError> {
        let new_key = self.entry_count == 0 || key != self.last_key.as_slice();
        if self.entry_count > 0 && mvcc_order(&self.last_key, self.last_ts, key, ts).is_ge() {
            return Err(FormatError::OutOfOrder {
                file: self.name.clone(),
                detail: format!(
                    "{} @ {ts} after {} @ {}; entries must be key ascending, timestamp descending, without duplicates",
                    PrettyKey(key),
                    PrettyKey(&self.last_key),
                    self.last_ts
                ),
            });
        }
        if key.len() > 64 * 1024 * 1024 || value.is_some_and(|v| v.len() > 256 * 1024 * 1024) {
            return Err(FormatError::InvalidArgument(format!(
                "{}: an entry of key {} is too large (keys up to 64 MiB, values up to 256 MiB)",
                self.name,
                PrettyKey(&key[..key.len().min(64)])
            )));
        }
        if self.entry_count == 0 {
            self.first_key = key.to_vec();
        }
        if self.block_entries == 0 {
            self.block_first.clear();
            self.block_first.extend_from_slice(key);
        }
        encode_entry(&mut self.raw, key, ts, value);
        if new_key {
            self.row_count += 1;
            self.last_key.clear();
            self.last_key.extend_from_slice(key);
        }
        self.last_ts = ts;
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        self.entry_count += 1;
        self.block_entries += 1;
        if self.raw.len() >= self.block_size {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Stored bytes so far plus the raw bytes of the open block: the size
    /// measure for rolling to a new file.
    pub fn size_estimate(&self) -> u64 {
        self.written + self.raw.len() as u64
    }

    /// The last key added, if any.
    pub fn last_key(&self) -> Option<&[u8]> {
        (self.entry_count > 0).then_some(self.last_key.as_slice())
    }

    /// Entries added so far.
    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn write_out(&mut self, bytes_from_stored: bool, extra: &[u8]) -> Result<(), FormatError> {
        let bytes: &[u8] = if bytes_from_stored {
            &self.stored
        } else {
            extra
        };
        self.out
            .write_all(bytes)
            .map_err(|e| FormatError::io(&self.name, e))?;
        self.file_crc = crc32c::crc32c_append(self.file_crc, bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), FormatError> {
        if self.block_entries == 0 {
            return Ok(());
        }
        let number = u32::try_from(self.index.blocks.len())
            .ok()
            .filter(|&n| n < INDEX_COUNTER)
            .ok_or_else(|| {
                FormatError::InvalidArgument(format!("{}: too many blocks", self.name))
            })?;
        self.stored.clear();
        self.codec
            .encode(&self.raw, PartKind::Block, number, &[], &mut self.stored)?;
        self.index.blocks.push(BlockHandle {
            number,
            offset: self.written,
            len: self.stored.len() as u64,
            raw_len: self.raw.len() as u64,
            entries: self.block_entries,
            first_key: std::mem::take(&mut self.block_first),
            last_key: self.last_key.clone(),
        });
        self.raw_bytes += self.raw.len() as u64;
        self.write_out(true, &[])?;
        self.raw.clear();
        self.block_entries = 0;
        Ok(())
    }

    /// Writes the last block, the index and the footer; returns the writer and the summary.
    pub fn finish(mut self) -> Result<(W, FileSummary), FormatError> {
        self.flush_block()?;
        let index_raw = self.index.encode_raw();
        let index_offset = self.written;
        self.stored.clear();
        self.codec.encode(
            &index_raw,
            PartKind::Index,
            INDEX_COUNTER,
            &[],
            &mut self.stored,
        )?;
        let index_len = self.stored.len() as u64;
        self.write_out(true, &[])?;
        let empty = self.entry_count == 0;
        let footer = Footer {
            version: (DATA_FILE_MAJOR, DATA_FILE_MINOR),
            compressed: self.compressed,
            encrypted: self.key.is_some(),
            nonce_prefix: self.nonce_prefix,
            key_check: self
                .key
                .as_ref()
                .map_or([0u8; KEY_CHECK_LEN], EncryptionKey::key_check),
            index_offset,
            index_len,
            index_raw_len: index_raw.len() as u64,
            block_count: self.index.blocks.len() as u32,
            entry_count: self.entry_count,
            row_count: self.row_count,
            raw_bytes: self.raw_bytes,
            min_ts: if empty { Timestamp::ZERO } else { self.min_ts },
            max_ts: self.max_ts,
            first_key: self.first_key.clone(),
            last_key: if empty {
                Vec::new()
            } else {
                self.last_key.clone()
            },
            tail_len: 0,
        };
        let tail = footer.encode(self.key.as_ref())?;
        self.write_out(false, &tail)?;
        self.out
            .flush()
            .map_err(|e| FormatError::io(&self.name, e))?;
        let summary = FileSummary {
            name: self.name.clone(),
            span: footer.span(),
            entry_count: self.entry_count,
            row_count: self.row_count,
            raw_bytes: self.raw_bytes,
            stored_bytes: self.written,
            min_ts: footer.min_ts,
            max_ts: footer.max_ts,
            checksum: self.file_crc,
        };
        Ok((self.out, summary))
    }
}
