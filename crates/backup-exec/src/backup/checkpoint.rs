//! Progress: which key spans are safely in uploaded data files, and those
//! files, saved as `backup-format` checkpoints.
//!
//! Every `checkpoint_interval` the job writes a *delta* checkpoint
//! ([`backup_format::Checkpoint`] with `delta = true`) holding only what was
//! finished since the previous one, to `progress/BACKUP-CHECKPOINT-<inverted
//! HLC time>`, a name never used before (create-only storage, object-lock
//! friendly). A resumed job reads every checkpoint of the layer and unions
//! them, so checkpoints stay small however long the job runs.
//!
//! Invariant: a span is in `done` only once every entry of it is in a data
//! file that has been uploaded *and* is listed in `files`. A resumed job
//! exports exactly the spans not in `done`, so its layer holds the same
//! entries as an uninterrupted run (files of the interrupted attempt that
//! never reached a checkpoint are orphans the manifest does not list).

use std::sync::Arc;

use backup_format::checkpoint::Checkpoint;
use backup_format::manifest::BackupFile;
use backup_format::paths::{PROGRESS_DIR, checkpoint_file_name, parse_checkpoint_file_name};
use backup_format::{EncryptionKey, Span, SpanSet, Timestamp};
use backup_storage::ExternalStorage;
use bytes::Bytes;

use crate::error::ExecError;

/// What a job has finished so far, and what of it is not saved yet.
#[derive(Clone, PartialEq, Debug, Default)]
pub(crate) struct Progress {
    /// Uploaded data files, in upload order.
    pub(crate) files: Vec<BackupFile>,
    /// Key spans whose entries are all in `files`.
    pub(crate) done: SpanSet,
    /// Files not yet in a saved checkpoint.
    unsaved_files: Vec<BackupFile>,
    /// Spans not yet in a saved checkpoint.
    unsaved_spans: Vec<Span>,
}

impl Progress {
    /// Raw bytes in `files`.
    pub(crate) fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.raw_bytes).sum()
    }

    /// `(rows, index entries)` in `files`: a data file never mixes the two
    /// (the sink starts a new file where one ends and the other begins), so
    /// a file's distinct keys are index entries when its first key is in
    /// `index_spans`.
    pub(crate) fn rows_and_index_entries(&self, index_spans: &SpanSet) -> (u64, u64) {
        let (mut rows, mut index) = (0, 0);
        for f in &self.files {
            if index_spans.contains_key(&f.span.start) {
                index += f.row_count;
            } else {
                rows += f.row_count;
            }
        }
        (rows, index)
    }

    /// Adds spans (and, when given, the file holding their entries).
    pub(crate) fn record(&mut self, file: Option<BackupFile>, pieces: &[Span]) {
        if let Some(f) = file {
            self.files.push(f.clone());
            self.unsaved_files.push(f);
        }
        for p in pieces {
            self.done.insert(p.clone());
            self.unsaved_spans.push(p.clone());
        }
    }

    /// Whether something was recorded since the last save.
    pub(crate) fn dirty(&self) -> bool {
        !self.unsaved_files.is_empty() || !self.unsaved_spans.is_empty()
    }

    /// Writes what was recorded since the last save as a delta checkpoint
    /// under `layer_dir` at `now`; returns its path (`None` if nothing new).
    pub(crate) async fn save(
        &mut self,
        storage: &Arc<dyn ExternalStorage>,
        layer_dir: &str,
        job: &str,
        now: Timestamp,
        key: Option<&EncryptionKey>,
    ) -> Result<Option<String>, ExecError> {
        if !self.dirty() {
            return Ok(None);
        }
        let checkpoint = Checkpoint {
            job_id: job.to_string(),
            written_at: now,
            completed_spans: SpanSet::from_spans(self.unsaved_spans.iter().cloned())
                .spans()
                .to_vec(),
            files: self.unsaved_files.clone(),
            delta: true,
        };
        let bytes = checkpoint.encode(key)?;
        let path = format!("{layer_dir}/{}", checkpoint_file_name(now));
        storage.put(&path, Bytes::from(bytes)).await?;
        self.unsaved_files.clear();
        self.unsaved_spans.clear();
        Ok(Some(path))
    }

    /// The progress saved under `layer_dir`: the union of every delta
    /// checkpoint since the newest cumulative one.
    ///
    /// A checkpoint that does not decode is an error naming it: it was
    /// written create-only in one request, so damage is not a torn write.
    pub(crate) async fn load(
        storage: &Arc<dyn ExternalStorage>,
        layer_dir: &str,
        key: Option<&EncryptionKey>,
    ) -> Result<Progress, ExecError> {
        let listing = storage
            .list(&format!("{layer_dir}/{PROGRESS_DIR}"), false)
            .await?;
        let mut progress = Progress::default();
        // Names invert their time, so the listing is newest first.
        for obj in listing.objects {
            if parse_checkpoint_file_name(&obj.path).is_none() {
                continue; // e.g. the staged manifest
            }
            let raw = storage.get(&obj.path).await?;
            let c = Checkpoint::decode(&obj.path, &raw, key)?;
            progress.files.extend(c.files);
            for s in c.completed_spans {
                progress.done.insert(s);
            }
            if !c.delta {
                break;
            }
        }
        // The order of files does not matter: the manifest sorts them.
        Ok(progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_index_entries_split_by_file() {
        let mut p = Progress::default();
        let file = |start: &[u8], rows| BackupFile {
            path: format!("data/{}.sst", start[0]),
            span: Span::new(start.to_vec(), vec![start[0] + 1]),
            row_count: rows,
            raw_bytes: 10,
            ..BackupFile::default()
        };
        p.record(Some(file(b"a", 3)), &[Span::new(*b"a", *b"b")]);
        p.record(Some(file(b"x", 2)), &[Span::new(*b"x", *b"y")]);
        p.record(None, &[Span::new(*b"b", *b"c")]);
        let index = SpanSet::from_spans([Span::new(*b"x", *b"z")]);
        assert_eq!(p.rows_and_index_entries(&index), (3, 2));
        assert_eq!(p.bytes(), 20);
        assert_eq!(
            p.done.spans(),
            &[Span::new(*b"a", *b"c"), Span::new(*b"x", *b"y")]
        );
        assert!(p.dirty());
    }
}
