//! Checkpoints: which key spans are safely in uploaded data files, and those files.
//!
//! A checkpoint is written every `checkpoint_interval` to
//! `progress/BACKUP-CHECKPOINT-<inverted HLC time>`, a name never used
//! before (create-only storage, object-lock friendly); the newest one that
//! decodes wins. It stays small: the done spans (coalesced) and one record
//! per data file, never entries.
//!
//! Invariant: a span is in `done` only once every entry of it is in a data
//! file that has been uploaded *and* is listed in `files`. A resumed job
//! exports exactly the spans not in `done`, so its layer holds the same
//! entries as an uninterrupted run (files of the interrupted attempt that
//! never reached a checkpoint are orphans the manifest does not list).

use std::sync::Arc;

use backup_format::crypto::{open_bytes, seal_bytes};
use backup_format::manifest::BackupFile;
use backup_format::paths::{PROGRESS_DIR, checkpoint_file_name};
use backup_format::{EncryptionKey, Span, SpanSet, Timestamp};
use backup_storage::ExternalStorage;
use bytes::Bytes;

use super::codec::{Dec, Enc, put_file};
use crate::error::ExecError;

const MAGIC: &[u8] = b"BKPCKPT1";

/// What a job has finished so far.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Checkpoint {
    /// Uploaded data files, in upload order.
    pub files: Vec<BackupFile>,
    /// Key spans whose entries are all in `files`.
    pub done: SpanSet,
    /// Rows in `files`.
    pub rows: u64,
    /// Secondary index entries in `files`.
    pub index_entries: u64,
}

impl Checkpoint {
    /// Raw bytes in `files`.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.raw_bytes).sum()
    }

    /// Adds spans (and, when given, the file holding their entries).
    pub(crate) fn record(
        &mut self,
        file: Option<BackupFile>,
        pieces: &[Span],
        rows: u64,
        idx: u64,
    ) {
        if let Some(f) = file {
            self.files.push(f);
        }
        for p in pieces {
            self.done.insert(p.clone());
        }
        self.rows += rows;
        self.index_entries += idx;
    }

    fn encode(&self) -> Vec<u8> {
        let mut e = Enc(MAGIC.to_vec());
        e.u64(self.files.len() as u64);
        for f in &self.files {
            put_file(&mut e, f);
        }
        e.spans(self.done.spans())
            .u64(self.rows)
            .u64(self.index_entries);
        let crc = crc32c::crc32c(&e.0);
        e.u64(u64::from(crc));
        e.0
    }

    fn decode(bytes: &[u8]) -> Result<Checkpoint, ExecError> {
        let corrupt = |detail: &str| ExecError::Corrupt {
            what: "backup checkpoint".into(),
            detail: detail.into(),
        };
        let body_len = bytes
            .len()
            .checked_sub(8)
            .ok_or_else(|| corrupt("too short"))?;
        let (body, tail) = bytes.split_at(body_len);
        let mut t = Dec::new("backup checkpoint", tail);
        if t.u64()? != u64::from(crc32c::crc32c(body)) {
            return Err(corrupt("checksum mismatch"));
        }
        if !body.starts_with(MAGIC) {
            return Err(corrupt("not a checkpoint"));
        }
        let mut d = Dec::new("backup checkpoint", &body[MAGIC.len()..]);
        let n = d.len()?;
        let files = (0..n)
            .map(|_| d.record::<BackupFile>())
            .collect::<Result<Vec<_>, _>>()?;
        let done = SpanSet::from_spans(d.spans()?);
        let rows = d.u64()?;
        let index_entries = d.u64()?;
        d.finish()?;
        Ok(Checkpoint {
            files,
            done,
            rows,
            index_entries,
        })
    }

    /// Writes the checkpoint under `layer_dir` at `now`; returns its path.
    pub(crate) async fn write(
        &self,
        storage: &Arc<dyn ExternalStorage>,
        layer_dir: &str,
        now: Timestamp,
        key: Option<&EncryptionKey>,
    ) -> Result<String, ExecError> {
        let mut bytes = self.encode();
        if let Some(key) = key {
            bytes = seal_bytes(key, &bytes)?;
        }
        let path = format!("{layer_dir}/{}", checkpoint_file_name(now));
        storage.put(&path, Bytes::from(bytes)).await?;
        Ok(path)
    }

    /// The newest checkpoint under `layer_dir` that decodes, if any.
    pub(crate) async fn read_latest(
        storage: &Arc<dyn ExternalStorage>,
        layer_dir: &str,
        key: Option<&EncryptionKey>,
    ) -> Result<Option<Checkpoint>, ExecError> {
        let listing = storage
            .list(&format!("{layer_dir}/{PROGRESS_DIR}"), false)
            .await?;
        // Names invert their time, so the listing is newest first.
        for obj in listing.objects {
            let raw = storage.get(&obj.path).await?;
            let plain = match key {
                Some(key) => match open_bytes(&obj.path, key, &raw) {
                    Ok(p) => p,
                    Err(_) => continue,
                },
                None => raw.to_vec(),
            };
            if let Ok(c) = Checkpoint::decode(&plain) {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let mut c = Checkpoint::default();
        let f = BackupFile {
            path: "data/1-5.sst".into(),
            span: Span::new(*b"a", *b"b"),
            entry_count: 3,
            ..BackupFile::default()
        };
        c.record(Some(f), &[Span::new(*b"a", *b"c")], 2, 1);
        c.record(None, &[Span::new(*b"c", *b"d")], 0, 0);
        let bytes = c.encode();
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), c);
        assert_eq!(c.done.spans(), &[Span::new(*b"a", *b"d")]);
        let mut bad = bytes.clone();
        bad[10] ^= 1;
        assert!(Checkpoint::decode(&bad).is_err());
        assert!(Checkpoint::decode(&bytes[..bytes.len() - 3]).is_err());
    }
}
