//! Backup checkpoints: progress a resumed job starts from.
//!
//! A checkpoint is written as a new file, `progress/BACKUP-CHECKPOINT-<inverted>`
//! ([`crate::paths::checkpoint_file_name`]), never over an old one. To stay
//! small however long the job (the reference system's grew to ~500 MB), a
//! checkpoint may hold only what was finished since the previous one
//! (`delta = true`): a resuming job then reads every checkpoint of the layer
//! and unions them. A cumulative checkpoint (`delta = false`) stands alone;
//! a reader may stop at the newest one.
//!
//! Layout: the envelope of [`crate::envelope`] with magic `BKPCHKPT`, version
//! 1.0, and a protobuf-wire body — 1: job id (string), 2: written-at
//! timestamp (message), 3: completed spans (repeated span messages), 4: files
//! written (repeated file-list records, as in the manifest's file list),
//! 5: delta (bool). Encrypted backups write the enveloped bytes as a sealed
//! stream.

use crate::crypto::{EncryptionKey, open_if_sealed, seal_bytes};
use crate::envelope::{open_envelope, seal_envelope};
use crate::manifest::{BackupFile, SideRecord, read_span, read_ts, span_message, ts_message};
use crate::wire::{MessageReader, MessageWriter};
use crate::{FormatError, Span, Timestamp};

const MAGIC: &[u8; 8] = b"BKPCHKPT";
const MAJOR: u16 = 1;
const MINOR: u16 = 0;

/// Progress of a backup job.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Checkpoint {
    /// The job this progress belongs to.
    pub job_id: String,
    /// When the checkpoint was written (also in its file name).
    pub written_at: Timestamp,
    /// Spans whose data is entirely in `files` (or in earlier checkpoints' files).
    pub completed_spans: Vec<Span>,
    /// Data files written.
    pub files: Vec<BackupFile>,
    /// Whether this holds only what was finished since the previous checkpoint.
    pub delta: bool,
}

impl Checkpoint {
    /// The stored bytes (sealed with `key` when given).
    pub fn encode(&self, key: Option<&EncryptionKey>) -> Result<Vec<u8>, FormatError> {
        let mut m = MessageWriter::new();
        m.bytes(1, self.job_id.as_bytes())
            .message(2, &ts_message(self.written_at));
        for s in &self.completed_spans {
            m.message(3, &span_message(s));
        }
        let mut rec = Vec::new();
        for f in &self.files {
            rec.clear();
            f.encode(&mut rec);
            m.bytes(4, &rec);
        }
        m.bool(5, self.delta);
        let enveloped = seal_envelope(MAGIC, MAJOR, MINOR, m.as_bytes())?;
        match key {
            Some(key) => seal_bytes(key, &enveloped),
            None => Ok(enveloped),
        }
    }

    /// Reads the checkpoint `file`.
    pub fn decode(
        file: &str,
        bytes: &[u8],
        key: Option<&EncryptionKey>,
    ) -> Result<Checkpoint, FormatError> {
        let enveloped = open_if_sealed(file, key, bytes)?;
        let (_minor, body) = open_envelope(file, MAGIC, "backup checkpoint", MAJOR, &enveloped)?;
        let mut c = Checkpoint::default();
        let mut m = MessageReader::new(file, "the checkpoint", body);
        while let Some((field, v)) = m.next_field()? {
            match field {
                1 => c.job_id = v.string(&m, "job_id")?,
                2 => c.written_at = read_ts(file, v.bytes(&m, "written_at")?)?,
                3 => c
                    .completed_spans
                    .push(read_span(file, v.bytes(&m, "completed_spans")?)?),
                4 => c
                    .files
                    .push(BackupFile::decode(file, v.bytes(&m, "files")?)?),
                5 => c.delta = v.bool(&m, "delta")?,
                _ => {}
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn round_trip(n in 0usize..20, delta: bool, encrypted: bool, wall in 0i64..i64::MAX) {
            let key = encrypted.then(|| EncryptionKey::from_bytes([5; 32]));
            let c = Checkpoint {
                job_id: "job-1".into(),
                written_at: Timestamp::from_wall(wall),
                completed_spans: (0..n).map(|i| Span::new([i as u8], [i as u8 + 1])).collect(),
                files: (0..n)
                    .map(|i| BackupFile { path: format!("data/1-{i}.sst"), entry_count: i as u64, ..BackupFile::default() })
                    .collect(),
                delta,
            };
            let bytes = c.encode(key.as_ref()).unwrap();
            prop_assert_eq!(Checkpoint::decode("cp", &bytes, key.as_ref()).unwrap(), c);
        }
    }

    #[test]
    fn every_flip_and_cut_is_detected() {
        let c = Checkpoint {
            job_id: "j".into(),
            completed_spans: vec![Span::new(*b"a", *b"b")],
            files: vec![BackupFile {
                path: "data/1-1.sst".into(),
                ..BackupFile::default()
            }],
            ..Checkpoint::default()
        };
        let key = EncryptionKey::from_bytes([5; 32]);
        for k in [None, Some(&key)] {
            let bytes = c.encode(k).unwrap();
            for i in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[i] ^= 0x20;
                assert_eq!(
                    Checkpoint::decode("progress/cp", &bad, k)
                        .unwrap_err()
                        .file(),
                    Some("progress/cp")
                );
                assert!(Checkpoint::decode("progress/cp", &bytes[..i], k).is_err());
            }
        }
    }
}
