//! Reading data files: the sans-IO decoder and a reader over a ranged-read callback.

use std::io;
use std::ops::Range;

use super::block::{Block, Codec, EntryRef, PartKind};
use super::footer::{BlockHandle, Footer, Index, read_compression};
use crate::crypto::EncryptionKey;
use crate::{FormatError, MvccEntry, Span, Timestamp, mvcc_order};

/// Decodes the index and blocks of one data file whose footer is known.
///
/// It does no I/O: the caller fetches the byte ranges ([`Footer::index_range`],
/// [`BlockHandle::range`]) however it likes, e.g. with async ranged GETs.
pub struct DataFileDecoder {
    file: String,
    footer: Footer,
    codec: Codec,
}

impl DataFileDecoder {
    /// A decoder for `file` with its decoded footer; `key` must be the one
    /// the footer was decoded with.
    pub fn new(file: &str, footer: Footer, key: Option<&EncryptionKey>) -> DataFileDecoder {
        let codec = Codec::new(read_compression(&footer), key.cloned(), footer.nonce_prefix);
        DataFileDecoder {
            file: file.to_string(),
            footer,
            codec,
        }
    }

    /// The footer.
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// Decodes the index from the bytes of [`Footer::index_range`].
    pub fn decode_index(&mut self, stored: &[u8]) -> Result<Index, FormatError> {
        Index::decode(&self.file, &self.footer, &mut self.codec, stored)
    }

    /// Decodes and verifies one block from the bytes of [`BlockHandle::range`].
    pub fn decode_block(
        &mut self,
        handle: &BlockHandle,
        stored: &[u8],
    ) -> Result<Block, FormatError> {
        let mut block = Block::default();
        self.decode_block_into(handle, stored, &mut block)?;
        Ok(block)
    }

    /// Like [`DataFileDecoder::decode_block`], reusing `block`'s allocation.
    pub fn decode_block_into(
        &mut self,
        handle: &BlockHandle,
        stored: &[u8],
        block: &mut Block,
    ) -> Result<(), FormatError> {
        let part = format!("block {}", handle.number);
        if stored.len() as u64 != handle.len {
            return Err(FormatError::truncated(
                &self.file,
                format!("{part} is incomplete"),
            ));
        }
        let raw_len = usize::try_from(handle.raw_len)
            .map_err(|_| FormatError::corrupt(&self.file, format!("{part} is too large")))?;
        self.codec.decode(
            &self.file,
            &part,
            stored,
            PartKind::Block,
            handle.number,
            &[],
            raw_len,
            block.raw_mut(),
        )?;
        block.verify(
            &self.file,
            &part,
            handle.entries,
            &handle.first_key,
            &handle.last_key,
        )
    }
}

/// Reads a data file through a "read this byte range" callback.
pub struct DataFileReader<F> {
    file: String,
    fetch: F,
    decoder: DataFileDecoder,
    index: Index,
}

/// Most bytes one fetch asks for when reading adjacent blocks together.
const MAX_FETCH: u64 = 8 * 1024 * 1024;

impl<F: FnMut(Range<u64>) -> io::Result<Vec<u8>>> DataFileReader<F> {
    /// Opens `file` of `file_len` bytes: reads and checks its footer and index.
    pub fn open(
        file: &str,
        file_len: u64,
        mut fetch: F,
        key: Option<&EncryptionKey>,
    ) -> Result<Self, FormatError> {
        if file_len < Footer::TRAILER_LEN as u64 {
            return Err(FormatError::truncated(
                file,
                "the file is shorter than its trailer",
            ));
        }
        let first = file_len.min(Footer::SUGGESTED_TAIL_READ);
        let mut tail = read(file, &mut fetch, file_len - first..file_len)?;
        let need = Footer::tail_len(file, &tail[tail.len() - Footer::TRAILER_LEN..], file_len)?;
        if need > first {
            tail = read(file, &mut fetch, file_len - need..file_len)?;
        }
        let footer = Footer::decode(file, &tail, file_len, key)?;
        let mut decoder = DataFileDecoder::new(file, footer, key);
        let index_bytes = read(file, &mut fetch, decoder.footer().index_range())?;
        let index = decoder.decode_index(&index_bytes)?;
        Ok(DataFileReader {
            file: file.to_string(),
            fetch,
            decoder,
            index,
        })
    }

    /// The footer.
    pub fn footer(&self) -> &Footer {
        self.decoder.footer()
    }

    /// The index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Iterates the entries whose keys lie in `span`, reading only the blocks that overlap it.
    pub fn scan(&mut self, span: &Span) -> Scan<'_, F> {
        self.scan_span(Some(span))
    }

    fn scan_span(&mut self, span: Option<&Span>) -> Scan<'_, F> {
        let blocks = match span {
            Some(span) => self.index.blocks_overlapping(span),
            None => self.index.blocks.clone(),
        };
        Scan {
            reader: self,
            span: span.cloned(),
            blocks,
            next_block: 0,
            fetched: Vec::new(),
            fetched_from: 0,
            block: Block::default(),
            pos: 0,
            check_start: false,
            check_end: false,
            prev_last: None,
            failed: false,
        }
    }

    /// Decodes every block and checks every checksum, the order of all
    /// entries, and the footer's counts; returns what the file holds.
    pub fn verify(&mut self) -> Result<VerifiedFile, FormatError> {
        let (mut entries, mut rows) = (0u64, 0u64);
        let (mut min_ts, mut max_ts) = (Timestamp::MAX, Timestamp::ZERO);
        let mut last_key: Option<Vec<u8>> = None;
        self.scan_span(None).for_each_ref(|e| {
            entries += 1;
            if last_key.as_deref() != Some(e.key) {
                rows += 1;
                last_key = Some(e.key.to_vec());
            }
            min_ts = min_ts.min(e.ts);
            max_ts = max_ts.max(e.ts);
        })?;
        let f = self.footer().clone();
        let ok = entries == f.entry_count
            && rows == f.row_count
            && (entries == 0 || (min_ts == f.min_ts && max_ts == f.max_ts));
        if !ok {
            return Err(FormatError::corrupt(
                &self.file,
                "the footer's counts or times do not match the entries",
            ));
        }
        Ok(VerifiedFile {
            span: f.span(),
            entry_count: entries,
            row_count: rows,
            raw_bytes: f.raw_bytes,
            min_ts: f.min_ts,
            max_ts: f.max_ts,
        })
    }
}

/// What [`DataFileReader::verify`] found in an intact file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedFile {
    /// Key span of the entries.
    pub span: Span,
    /// Entries.
    pub entry_count: u64,
    /// Distinct keys.
    pub row_count: u64,
    /// Raw bytes.
    pub raw_bytes: u64,
    /// Oldest timestamp.
    pub min_ts: Timestamp,
    /// Newest timestamp.
    pub max_ts: Timestamp,
}

/// Verifies a whole data file held in memory (see [`DataFileReader::verify`]).
pub fn verify_data_file(
    file: &str,
    bytes: &[u8],
    key: Option<&EncryptionKey>,
) -> Result<VerifiedFile, FormatError> {
    let fetch = |r: Range<u64>| -> io::Result<Vec<u8>> {
        bytes
            .get(r.start as usize..r.end as usize)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "range past the end"))
    };
    DataFileReader::open(file, bytes.len() as u64, fetch, key)?.verify()
}

fn read<F: FnMut(Range<u64>) -> io::Result<Vec<u8>>>(
    file: &str,
    fetch: &mut F,
    range: Range<u64>,
) -> Result<Vec<u8>, FormatError> {
    let want = range.end - range.start;
    let bytes = fetch(range).map_err(|e| FormatError::io(file, e))?;
    if bytes.len() as u64 != want {
        return Err(FormatError::truncated(
            file,
            format!("a ranged read returned {} of {want} bytes", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// Entries of a data file within a span, in MVCC order.
pub struct Scan<'r, F> {
    reader: &'r mut DataFileReader<F>,
    span: Option<Span>,
    blocks: Vec<BlockHandle>,
    next_block: usize,
    fetched: Vec<u8>,
    fetched_from: u64,
    block: Block,
    pos: usize,
    /// Whether entries of the current block may lie before / after the span.
    check_start: bool,
    check_end: bool,
    /// The last entry of the previous block, for the order check across blocks.
    prev_last: Option<(Vec<u8>, Timestamp)>,
    failed: bool,
}

impl<F: FnMut(Range<u64>) -> io::Result<Vec<u8>>> Scan<'_, F> {
    /// Loads the next block; `false` when there is none.
    fn load_next_block(&mut self) -> Result<bool, FormatError> {
        let Some(handle) = self.blocks.get(self.next_block).cloned() else {
            return Ok(false);
        };
        let fetched_end = self.fetched_from + self.fetched.len() as u64;
        if handle.offset < self.fetched_from || handle.offset + handle.len > fetched_end {
            // Fetch this block and the following ones up to MAX_FETCH in one read.
            let range = BlockHandle::coalesced_range(&self.blocks[self.next_block..], MAX_FETCH)
                .unwrap_or_else(|| handle.range());
            self.fetched = read(&self.reader.file, &mut self.reader.fetch, range)?;
            self.fetched_from = handle.offset;
        }
        let start = (handle.offset - self.fetched_from) as usize;
        let stored = &self.fetched[start..start + handle.len as usize];
        self.reader
            .decoder
            .decode_block_into(&handle, stored, &mut self.block)?;
        // Within a block the order was verified; across blocks it is checked here.
        if let (Some((k, t)), Some((first, _))) = (&self.prev_last, self.block.entry_at(0))
            && mvcc_order(k, *t, first.key, first.ts).is_ge()
        {
            return Err(FormatError::corrupt(
                &self.reader.file,
                format!(
                    "block {} is out of MVCC order with the block before it",
                    handle.number
                ),
            ));
        }
        if let Some(last) = self.block.last_entry() {
            match &mut self.prev_last {
                Some((k, t)) => {
                    k.clear();
                    k.extend_from_slice(last.key);
                    *t = last.ts;
                }
                None => self.prev_last = Some((last.key.to_vec(), last.ts)),
            }
        }
        self.check_start = self
            .span
            .as_ref()
            .is_some_and(|s| handle.first_key < s.start);
        self.check_end = self.span.as_ref().is_some_and(|s| handle.last_key >= s.end);
        self.next_block += 1;
        self.pos = 0;
        Ok(true)
    }

    /// Moves to the next entry in the span; returns its offset in the current block.
    fn advance(&mut self) -> Result<Option<usize>, FormatError> {
        if self.failed {
            return Ok(None);
        }
        loop {
            if self.pos >= self.block.raw_len_bytes() {
                if !self.load_next_block()? {
                    return Ok(None);
                }
                continue;
            }
            let start = self.pos;
            let Some((e, next)) = self.block.entry_at(start) else {
                return Err(FormatError::corrupt(
                    &self.reader.file,
                    "a block ends inside an entry",
                ));
            };
            self.pos = next;
            if let Some(span) = &self.span {
                if self.check_end && e.key >= span.end.as_slice() {
                    self.blocks.truncate(self.next_block);
                    self.pos = usize::MAX;
                    return Ok(None);
                }
                if self.check_start && e.key < span.start.as_slice() {
                    continue;
                }
            }
            return Ok(Some(start));
        }
    }

    /// Calls `f` on each entry of the span without copying it (the fast way to read).
    pub fn for_each_ref(mut self, mut f: impl FnMut(EntryRef<'_>)) -> Result<(), FormatError> {
        if self.failed {
            return Ok(());
        }
        loop {
            let (check_start, check_end) = (self.check_start, self.check_end);
            let empty = Span::default();
            let span = self.span.as_ref().unwrap_or(&empty);
            for e in self.block.iter_from(self.pos) {
                if check_end && e.key >= span.end.as_slice() {
                    return Ok(());
                }
                if check_start && e.key < span.start.as_slice() {
                    continue;
                }
                f(e);
            }
            self.pos = usize::MAX;
            if !self.load_next_block()? {
                return Ok(());
            }
        }
    }
}

impl<F: FnMut(Range<u64>) -> io::Result<Vec<u8>>> Iterator for Scan<'_, F> {
    type Item = Result<MvccEntry, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.advance() {
            Ok(Some(start)) => self.block.entry_at(start).map(|(e, _)| Ok(e.to_entry())),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
