//! Streamed, sorted side files of the manifest: the file list, the
//! descriptors and the descriptor revisions.
//!
//! Plain layout (all integers little-endian):
//!
//! ```text
//! header  magic [8] ("BKPFILES", "BKPDESCS" or "BKPDREVS") | major u16 (1) | minor u16 (0)
//! chunk*  length u32 (> 0) | crc32c u32 of (length ‖ payload) | payload: (record length varint | record)*
//! end     0u32 | record count u64 | crc32c u32 of every byte before this field
//! ```
//!
//! Each record is a protobuf-wire message; records are in strictly
//! increasing order (files by span start then path, descriptors by id,
//! revisions by time then id), which
//! the writer enforces. Chunks hold whole records and are ~64 KiB, so a
//! reader holds one chunk at a time and checks each chunk's crc32c before it
//! yields any of its records. In an encrypted backup the plain bytes are
//! written as a sealed stream. The manifest records each side file's record
//! count, stored length and SHA-256, which the reader checks at the end.

use std::io::{self, Read, Write};
use std::marker::PhantomData;

use sha2::{Digest, Sha256};

use super::SideFileRef;
use super::records::SideRecord;
use crate::FormatError;
use crate::crypto::{EncryptionKey, OpenReader, STREAM_MAGIC, SealWriter, read_full, unwrap_io};
use crate::wire::{ByteReader, put_varint};

const MAJOR: u16 = 1;
const MINOR: u16 = 0;
const CHUNK_TARGET: usize = 64 * 1024;
const MAX_CHUNK: usize = 256 * 1024 * 1024;

/// Counts and hashes the stored bytes on their way out.
struct Hashing<W> {
    inner: W,
    bytes: u64,
    sha: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

enum Sink<W: Write> {
    Plain(Hashing<W>),
    Sealed(Box<SealWriter<Hashing<W>>>),
}

/// Writes a side file from records given in order; memory is one chunk.
pub struct SideFileWriter<W: Write, T: SideRecord> {
    name: String,
    sink: Sink<W>,
    chunk: Vec<u8>,
    record: Vec<u8>,
    crc: u32,
    count: u64,
    last: Option<T>,
}

impl<W: Write, T: SideRecord> SideFileWriter<W, T> {
    /// Starts the side file `name` on `out`, sealed with `key` when given.
    pub fn new(name: &str, out: W, key: Option<&EncryptionKey>) -> Result<Self, FormatError> {
        let hashing = Hashing {
            inner: out,
            bytes: 0,
            sha: Sha256::new(),
        };
        let sink = match key {
            Some(key) => Sink::Sealed(Box::new(
                SealWriter::new(hashing, key).map_err(|e| unwrap_io(name, e))?,
            )),
            None => Sink::Plain(hashing),
        };
        let mut w = SideFileWriter {
            name: name.to_string(),
            sink,
            chunk: Vec::with_capacity(CHUNK_TARGET + 1024),
            record: Vec::new(),
            crc: 0,
            count: 0,
            last: None,
        };
        let mut header = T::MAGIC.to_vec();
        header.extend_from_slice(&MAJOR.to_le_bytes());
        header.extend_from_slice(&MINOR.to_le_bytes());
        w.emit(&header)?;
        Ok(w)
    }

    fn emit(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        let r = match &mut self.sink {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Sealed(w) => w.write_all(bytes),
        };
        r.map_err(|e| unwrap_io(&self.name, e))
    }

    /// Appends one record; it must sort strictly after the previous one.
    pub fn push(&mut self, record: T) -> Result<(), FormatError> {
        if let Some(prev) = &self.last
            && !T::follows(prev, &record)
        {
            return Err(FormatError::OutOfOrder {
                file: self.name.clone(),
                detail: format!(
                    "record {} of the {} does not sort after the one before it (files by span start then path, descriptors by id, revisions by time then id, no duplicates)",
                    self.count,
                    T::KIND
                ),
            });
        }
        self.record.clear();
        record.encode(&mut self.record);
        put_varint(&mut self.chunk, self.record.len() as u64);
        self.chunk.extend_from_slice(&self.record);
        self.count += 1;
        self.last = Some(record);
        if self.chunk.len() >= CHUNK_TARGET {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), FormatError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let len = u32::try_from(self.chunk.len())
            .ok()
            .filter(|&n| (n as usize) < MAX_CHUNK)
            .ok_or_else(|| {
                FormatError::InvalidArgument(format!("{}: a record larger than 256 MiB", self.name))
            })?;
        let crc = crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), &self.chunk);
        let mut head = [0u8; 8];
        head[..4].copy_from_slice(&len.to_le_bytes());
        head[4..].copy_from_slice(&crc.to_le_bytes());
        self.emit(&head)?;
        let chunk = std::mem::take(&mut self.chunk);
        self.emit(&chunk)?;
        self.chunk = chunk;
        self.chunk.clear();
        Ok(())
    }

    /// Records written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Bytes held in memory (the open chunk).
    pub fn buffered_bytes(&self) -> usize {
        self.chunk.capacity()
    }

    /// Writes the end marker; returns the writer and the reference the manifest records.
    pub fn finish(mut self) -> Result<(W, SideFileRef), FormatError> {
        self.flush_chunk()?;
        let mut end = [0u8; 12];
        end[4..].copy_from_slice(&self.count.to_le_bytes());
        self.emit(&end)?;
        let crc = self.crc;
        self.emit(&crc.to_le_bytes())?;
        let hashing = match self.sink {
            Sink::Plain(w) => w,
            Sink::Sealed(w) => (*w).finish().map_err(|e| unwrap_io(&self.name, e))?,
        };
        let mut hashing = hashing;
        hashing
            .flush()
            .map_err(|e| FormatError::io(&self.name, e))?;
        let reference = SideFileRef {
            name: self.name,
            count: self.count,
            stored_bytes: hashing.bytes,
            sha256: hashing.sha.finalize().into(),
        };
        Ok((hashing.inner, reference))
    }
}

/// The stored bytes coming in: counted and hashed, after the few bytes
/// read ahead to tell a sealed stream from a plain file.
struct StoredInput<R> {
    inner: R,
    sniffed: [u8; 6],
    sniffed_len: usize,
    sniffed_pos: usize,
    bytes: u64,
    sha: Sha256,
}

impl<R: Read> Read for StoredInput<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.sniffed_pos < self.sniffed_len {
            let n = buf.len().min(self.sniffed_len - self.sniffed_pos);
            buf[..n].copy_from_slice(&self.sniffed[self.sniffed_pos..self.sniffed_pos + n]);
            self.sniffed_pos += n;
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

enum Source<R: Read> {
    Plain(StoredInput<R>),
    Sealed(Box<OpenReader<StoredInput<R>>>),
}

impl<R: Read> Source<R> {
    fn stored(&self) -> &StoredInput<R> {
        match self {
            Source::Plain(s) => s,
            Source::Sealed(o) => o.get_ref(),
        }
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(buf),
            Source::Sealed(r) => r.read(buf),
        }
    }
}

/// Reads a side file record by record, checking each chunk before yielding
/// its records and the whole file (count, length, SHA-256) at the end.
pub struct SideFileReader<R: Read, T: SideRecord> {
    name: String,
    source: Source<R>,
    expected: SideFileRef,
    chunk: Vec<u8>,
    pos: usize,
    crc: u32,
    count: u64,
    done: bool,
    max_buffered: usize,
    _record: PhantomData<T>,
}

impl<R: Read, T: SideRecord> SideFileReader<R, T> {
    /// Opens the side file `name` that the manifest describes as `expected`.
    pub fn open(
        name: &str,
        input: R,
        expected: &SideFileRef,
        key: Option<&EncryptionKey>,
    ) -> Result<Self, FormatError> {
        let mut stored = StoredInput {
            inner: input,
            sniffed: [0u8; 6],
            sniffed_len: 0,
            sniffed_pos: 0,
            bytes: 0,
            sha: Sha256::new(),
        };
        let mut sniffed = [0u8; 6];
        let got = read_full(&mut stored, &mut sniffed).map_err(|e| FormatError::io(name, e))?;
        stored.sniffed = sniffed;
        stored.sniffed_len = got;
        let sealed = got == 6 && &sniffed == STREAM_MAGIC;
        let source = match (sealed, key) {
            (true, Some(key)) => Source::Sealed(Box::new(OpenReader::new(stored, name, key)?)),
            (true, None) => {
                return Err(FormatError::KeyRequired {
                    file: name.to_string(),
                });
            }
            (false, Some(_)) => {
                return Err(FormatError::UnexpectedPlaintext {
                    file: name.to_string(),
                });
            }
            (false, None) => Source::Plain(stored),
        };
        let mut r = SideFileReader {
            name: name.to_string(),
            source,
            expected: expected.clone(),
            chunk: Vec::new(),
            pos: 0,
            crc: 0,
            count: 0,
            done: false,
            max_buffered: 0,
            _record: PhantomData,
        };
        let header = r.take_exact::<12>("the header")?;
        if header[..8] != T::MAGIC {
            return Err(FormatError::BadMagic {
                file: name.to_string(),
                expected: T::KIND,
            });
        }
        let major = u16::from_le_bytes([header[8], header[9]]);
        if major != MAJOR {
            return Err(FormatError::UnsupportedVersion {
                file: name.to_string(),
                major,
                minor: u16::from_le_bytes([header[10], header[11]]),
                supported: MAJOR,
            });
        }
        Ok(r)
    }

    /// The largest number of bytes the reader held in memory at once so far.
    pub fn max_buffered_bytes(&self) -> usize {
        self.max_buffered
    }

    /// Exactly `N` plain bytes, folded into the running crc32c.
    fn take_exact<const N: usize>(&mut self, what: &str) -> Result<[u8; N], FormatError> {
        let mut buf = [0u8; N];
        let got = read_full(&mut self.source, &mut buf).map_err(|e| unwrap_io(&self.name, e))?;
        if got < N {
            return Err(FormatError::truncated(
                &self.name,
                format!("{what} is missing"),
            ));
        }
        self.crc = crc32c::crc32c_append(self.crc, &buf);
        Ok(buf)
    }

    /// Loads the next chunk; `false` after the end marker was checked.
    fn load_chunk(&mut self) -> Result<bool, FormatError> {
        let head = self.take_exact::<8>("a chunk header or the end marker")?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len == 0 {
            self.finish_checks(&head)?;
            return Ok(false);
        }
        if len >= MAX_CHUNK {
            return Err(FormatError::corrupt(
                &self.name,
                format!("a chunk claims {len} bytes"),
            ));
        }
        // Grow as bytes actually arrive, so a damaged length cannot allocate much.
        self.chunk.clear();
        let got = (&mut self.source)
            .take(len as u64)
            .read_to_end(&mut self.chunk)
            .map_err(|e| unwrap_io(&self.name, e))?;
        if got < len {
            return Err(FormatError::truncated(&self.name, "a chunk is incomplete"));
        }
        let want = crc32c::crc32c_append(crc32c::crc32c(&head[..4]), &self.chunk);
        if want != crc {
            return Err(FormatError::checksum(
                &self.name,
                format!("the chunk after record {}", self.count),
            ));
        }
        self.crc = crc32c::crc32c_append(self.crc, &self.chunk);
        self.max_buffered = self.max_buffered.max(self.chunk.capacity());
        self.pos = 0;
        Ok(true)
    }

    fn finish_checks(&mut self, head: &[u8; 8]) -> Result<(), FormatError> {
        // The end marker: 0u32 (read), then the crc32c field of the chunk header
        // slot holds the first half of the count.
        let rest = self.take_exact::<4>("the record count")?;
        let count = u64::from_le_bytes([
            head[4], head[5], head[6], head[7], rest[0], rest[1], rest[2], rest[3],
        ]);
        let crc_before = self.crc;
        let mut c = [0u8; 4];
        let got = read_full(&mut self.source, &mut c).map_err(|e| unwrap_io(&self.name, e))?;
        if got < 4 {
            return Err(FormatError::truncated(
                &self.name,
                "the final checksum is missing",
            ));
        }
        if u32::from_le_bytes(c) != crc_before {
            return Err(FormatError::checksum(&self.name, "the whole file"));
        }
        let mut extra = [0u8; 1];
        if read_full(&mut self.source, &mut extra).map_err(|e| unwrap_io(&self.name, e))? != 0 {
            return Err(FormatError::corrupt(
                &self.name,
                "bytes follow the end marker",
            ));
        }
        if count != self.count || count != self.expected.count {
            return Err(FormatError::corrupt(
                &self.name,
                format!(
                    "it holds {} records, says {count}, and the manifest says {}",
                    self.count, self.expected.count
                ),
            ));
        }
        let stored = self.source.stored();
        let sha: [u8; 32] = stored.sha.clone().finalize().into();
        if stored.bytes != self.expected.stored_bytes || sha != self.expected.sha256 {
            return Err(FormatError::checksum(
                &self.name,
                "the whole file (it is not the one the manifest names)",
            ));
        }
        self.done = true;
        Ok(())
    }

    fn next_record(&mut self) -> Result<Option<T>, FormatError> {
        while self.pos >= self.chunk.len() {
            if self.done || !self.load_chunk()? {
                return Ok(None);
            }
        }
        let mut r = ByteReader::new(&self.name, "a chunk", &self.chunk[self.pos..]);
        let bytes = r.len_bytes()?;
        let record = T::decode(&self.name, bytes)?;
        self.pos += r.position();
        self.count += 1;
        Ok(Some(record))
    }
}

impl<R: Read, T: SideRecord> Iterator for SideFileReader<R, T> {
    type Item = Result<T, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                self.chunk.clear();
                Some(Err(e))
            }
        }
    }
}
