//! A sink that splits a stream of entries into data files of a target size.

use std::io::Write;

use super::writer::{DataFileOptions, DataFileWriter, FileSummary};
use crate::{FormatError, MvccEntry, PrettyKey, Timestamp, mvcc_order};

/// Where a [`RollingWriter`] puts its files.
pub trait FileOpener {
    /// The writer of one file.
    type Writer: Write;

    /// Opens the next data file; returns its name (e.g. from
    /// [`crate::paths::data_file_name`]) and a writer for its bytes.
    fn open(&mut self) -> Result<(String, Self::Writer), FormatError>;

    /// Takes back a finished file's writer (to upload or close it) with its summary.
    fn close(&mut self, writer: Self::Writer, summary: &FileSummary) -> Result<(), FormatError>;
}

/// Writes entries in MVCC order into as many data files as needed.
///
/// A file is closed once its size passes [`DataFileOptions::target_file_size`],
/// but only before an entry with a new key: all revisions of one key always
/// land in the same file, so a reader of one file sees whole keys.
pub struct RollingWriter<O: FileOpener> {
    opener: O,
    options: DataFileOptions,
    current: Option<DataFileWriter<O::Writer>>,
    finished: Vec<FileSummary>,
    last: Option<(Vec<u8>, Timestamp)>,
}

impl<O: FileOpener> RollingWriter<O> {
    /// A sink opening files through `opener`.
    pub fn new(opener: O, options: DataFileOptions) -> RollingWriter<O> {
        RollingWriter {
            opener,
            options,
            current: None,
            finished: Vec::new(),
            last: None,
        }
    }

    /// Adds one entry (strict MVCC order across all files).
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
        let roll = match &self.current {
            Some(w) => {
                w.size_estimate() >= self.options.target_file_size && w.last_key() != Some(key)
            }
            None => false,
        };
        if roll {
            self.close_current()?;
        }
        if self.current.is_none() {
            if let Some((k, t)) = &self.last
                && mvcc_order(k, *t, key, ts).is_ge()
            {
                return Err(FormatError::OutOfOrder {
                    file: "(next data file)".into(),
                    detail: format!("{} @ {ts} after {} @ {t}", PrettyKey(key), PrettyKey(k)),
                });
            }
            let (name, writer) = self.opener.open()?;
            self.current = Some(DataFileWriter::new(&name, writer, &self.options)?);
        }
        if let Some(w) = &mut self.current {
            w.add_parts(key, ts, value)?;
        }
        self.last_ts_and_key(key, ts);
        Ok(())
    }

    fn last_ts_and_key(&mut self, key: &[u8], ts: Timestamp) {
        match &mut self.last {
            Some((k, t)) => {
                if k.as_slice() != key {
                    k.clear();
                    k.extend_from_slice(key);
                }
                *t = ts;
            }
            None => self.last = Some((key.to_vec(), ts)),
        }
    }

    fn close_current(&mut self) -> Result<(), FormatError> {
        if let Some(w) = self.current.take() {
            let (writer, summary) = w.finish()?;
            self.opener.close(writer, &summary)?;
            self.finished.push(summary);
        }
        Ok(())
    }

    /// Summaries of the files finished so far.
    pub fn finished(&self) -> &[FileSummary] {
        &self.finished
    }

    /// Closes the open file; returns the opener and every file's summary, in order.
    pub fn finish(mut self) -> Result<(O, Vec<FileSummary>), FormatError> {
        self.close_current()?;
        Ok((self.opener, self.finished))
    }
}
