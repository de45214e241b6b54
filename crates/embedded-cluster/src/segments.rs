//! Segment files: where the bytes of bulk-ingested blocks live.
//!
//! A bulk ingest appends its encoded blocks to a segment file (with `pwrite`,
//! outside the engine's single writer, so several ingests copy their bytes at
//! once) and puts only a [`BlockRef`] per block in the engine. Segments are
//! append-only files of up to [`SEGMENT_TARGET`] bytes under
//! `<store>/segments/`, named by id.
//!
//! Each block is stored lz4-compressed (the LZ4 block format, no framing)
//! when that saves at least an eighth of its bytes, else as it is, so
//! incompressible data costs no extra space. An append compresses its
//! blocks before it takes the state appends share, so concurrent ingests
//! compress at once; their bytes go out in one `pwrite`. A [`BlockRef`]
//! records how its block is stored, its stored length and its raw length; a
//! reference in the first, 24-byte encoding (written before blocks were
//! compressed) names a raw block. Readers above (range sizing, clearing,
//! GC) see only raw blocks and raw lengths; only the live-byte count (S2)
//! is of stored bytes.
//!
//! Invariants:
//!
//! - **S1, durable references name durable bytes.** Every durable engine
//!   commit is preceded by [`Segments::sync`] (see `Cluster::write`), which
//!   flushes every segment written since the last one; lazy commits (bulk
//!   ingest) only become durable through a later durable commit. So after a
//!   crash, every reference the engine holds names bytes that reached disk.
//! - **S2, live bytes are counted.** The `segments` table maps a segment id to
//!   the stored (possibly compressed) bytes of the blocks referencing it,
//!   updated in the same engine transaction as the references. A segment
//!   file with no entry holds no live block: it is deleted when the cluster
//!   opens, after each [`Cluster::sync`](crate::Cluster::sync), and after
//!   clearing or GC (unless an append to it is in flight). Blocks stop naming
//!   a segment only in durable commits, so no durable state still names a
//!   deleted one.
//! - **S3, bytes never change once written**, and each reference carries the
//!   crc32c of the stored bytes, checked on every read before decompressing;
//!   a block that then fails to decompress to exactly its raw length is an
//!   error too. A torn or foreign byte is an error, never a wrong answer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use redb::TableDefinition;

use crate::error::{ClusterError, storage};

mod stored;

pub(crate) use stored::BlockRef;
use stored::Packed;
#[cfg(test)]
pub(crate) use stored::tests::noise;

/// Live bytes per segment id (S2).
pub(crate) const SEGMENTS: TableDefinition<u64, u64> = TableDefinition::new("segments");

/// A segment is closed once it holds this many bytes.
pub(crate) const SEGMENT_TARGET: u64 = 1 << 30;

/// The segment files of one store.
pub(crate) struct Segments {
    dir: PathBuf,
    state: Mutex<State>,
    /// Open handles, for reads and appends.
    files: RwLock<HashMap<u64, Arc<File>>>,
}

/// What appends share.
#[derive(Default)]
struct State {
    /// The segment appended to, and its length.
    current: Option<(u64, u64)>,
    next_id: u64,
    /// Segments written since the last sync.
    dirty: BTreeSet<u64>,
    /// Appends whose references are not committed yet, per segment.
    in_flight: BTreeMap<u64, usize>,
    /// Advanced each time segments are doomed; readers pin the epoch they
    /// started in.
    epoch: u64,
    /// Open readers per epoch they started in.
    readers: BTreeMap<u64, usize>,
    /// Segments no block names any more, with the epoch they were doomed in:
    /// deleted once no reader from that epoch or earlier is left.
    doomed: Vec<(u64, u64)>,
}

/// Keeps every segment a read snapshot may name until the snapshot ends:
/// taken before the engine snapshot begins, dropped after it ends.
pub(crate) struct ReadPin {
    segments: Arc<Segments>,
    epoch: u64,
}

impl Drop for ReadPin {
    fn drop(&mut self) {
        let mut state = self.segments.lock();
        if let Some(n) = state.readers.get_mut(&self.epoch) {
            *n -= 1;
            if *n == 0 {
                state.readers.remove(&self.epoch);
            }
        }
        // A failed removal leaves the file for the next reap or open.
        let _ = self.segments.reap(&mut state);
    }
}

impl Segments {
    /// Opens `<store>/segments`, deleting every segment file `live` does not
    /// name (S2: blocks never durably committed, or all removed).
    pub(crate) fn open(store: &Path, live: &BTreeSet<u64>) -> Result<Segments, ClusterError> {
        let dir = store.join("segments");
        fs::create_dir_all(&dir).map_err(|e| storage("creating the segments directory")(&e))?;
        let mut next_id = live.last().map_or(1, |id| id + 1);
        for entry in fs::read_dir(&dir).map_err(|e| storage("listing segments")(&e))? {
            let entry = entry.map_err(|e| storage("listing segments")(&e))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            next_id = next_id.max(id + 1);
            if !live.contains(&id) {
                fs::remove_file(entry.path())
                    .map_err(|e| storage("removing an unused segment")(&e))?;
            }
        }
        Ok(Segments {
            dir,
            state: Mutex::new(State {
                next_id,
                ..State::default()
            }),
            files: RwLock::new(HashMap::new()),
        })
    }

    /// Appends `blocks` one after another to the current segment (starting
    /// a new one when it is full), each compressed where that pays; returns
    /// the segment id and each block's reference. The caller must call
    /// [`Segments::committed`] with the id once the references are committed
    /// (or abandoned).
    pub(crate) fn append(&self, blocks: &[Vec<u8>]) -> Result<(u64, Vec<BlockRef>), ClusterError> {
        // Before taking the state: concurrent appends compress at once.
        let packed = Packed::new(blocks);
        let total = packed.bytes.len() as u64;
        let (id, start) = {
            let mut state = self.lock();
            let (id, len) = match state.current {
                Some((id, len)) if len < SEGMENT_TARGET => (id, len),
                _ => {
                    let id = state.next_id;
                    state.next_id += 1;
                    (id, 0)
                }
            };
            state.current = Some((id, len + total));
            state.dirty.insert(id);
            *state.in_flight.entry(id).or_default() += 1;
            (id, len)
        };
        // Created by whichever append to a new segment gets here first (ids
        // are never reused, so this never revives a deleted segment).
        let written = self.file(id, true).and_then(|file| {
            file.write_all_at(&packed.bytes, start)
                .map_err(|e| storage("writing a segment")(&e))
        });
        if let Err(e) = written {
            self.committed(id);
            return Err(e);
        }
        Ok((id, packed.refs_at(id, start)))
    }

    /// Marks one append to segment `id` as committed (or abandoned).
    pub(crate) fn committed(&self, id: u64) {
        let mut state = self.lock();
        if let Some(n) = state.in_flight.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                state.in_flight.remove(&id);
            }
        }
    }

    /// Reads the block `r` names, checking its length and crc32c, and
    /// decompresses it if it is stored compressed.
    pub(crate) fn read(&self, r: &BlockRef) -> Result<Vec<u8>, ClusterError> {
        let file = self.file(r.segment, false)?;
        // A damaged reference must not ask for more than the file holds.
        let file_len = file
            .metadata()
            .map_err(|e| storage("reading a segment")(&e))?
            .len();
        if r.offset.saturating_add(u64::from(r.len)) > file_len {
            return Err(ClusterError::Corrupt(format!(
                "a block reference points past the end of segment {} ({} + {} > {file_len})",
                r.segment, r.offset, r.len
            )));
        }
        let mut stored = vec![0u8; r.len as usize];
        file.read_exact_at(&mut stored, r.offset).map_err(|e| {
            ClusterError::Corrupt(format!(
                "segment {} cannot be read at {} ({e})",
                r.segment, r.offset
            ))
        })?;
        if crc32c::crc32c(&stored) != r.crc {
            return Err(ClusterError::Corrupt(format!(
                "a block of segment {} at {} fails its checksum",
                r.segment, r.offset
            )));
        }
        r.unpack(stored)
    }

    /// Flushes every segment written since the last sync to disk (S1).
    pub(crate) fn sync(&self) -> Result<(), ClusterError> {
        // The handles are taken with the set, so a segment deleted meanwhile
        // (no block names it) is flushed through its still-open handle.
        // A segment whose first append has not created it yet stays dirty.
        let dirty: Vec<(u64, Arc<File>)> = {
            let mut state = self.lock();
            let files = self.files.read().unwrap_or_else(|p| p.into_inner());
            let (open, unborn): (BTreeSet<u64>, BTreeSet<u64>) = std::mem::take(&mut state.dirty)
                .into_iter()
                .partition(|id| files.contains_key(id));
            state.dirty = unborn;
            open.into_iter()
                .filter_map(|id| files.get(&id).map(|f| (id, f.clone())))
                .collect()
        };
        for (i, (_, file)) in dirty.iter().enumerate() {
            if let Err(e) = file.sync_data() {
                // Still unsynced: the next sync tries again.
                let mut state = self.lock();
                state.dirty.extend(dirty[i..].iter().map(|(id, _)| *id));
                return Err(storage("syncing a segment")(&e));
            }
        }
        Ok(())
    }

    /// Pins the segments a read snapshot begun after this call may name.
    pub(crate) fn pin(self: &Arc<Self>) -> ReadPin {
        let mut state = self.lock();
        let epoch = state.epoch;
        *state.readers.entry(epoch).or_default() += 1;
        ReadPin {
            segments: self.clone(),
            epoch,
        }
    }

    /// Dooms every segment file `is_live` (read from a fresh state) says
    /// holds no live block, unless an append to it is in flight; a doomed
    /// file is deleted once no read snapshot that could name it is open.
    /// Runs under the append lock, so no append starts or finishes in
    /// between; the segment being appended to is closed first if it goes.
    pub(crate) fn delete_unused(
        &self,
        is_live: impl Fn(u64) -> Result<bool, ClusterError>,
    ) -> Result<(), ClusterError> {
        let mut state = self.lock();
        let doomed_before = state.doomed.len();
        for id in self.present()? {
            if state.in_flight.contains_key(&id)
                || state.doomed.iter().any(|&(_, d)| d == id)
                || is_live(id)?
            {
                continue;
            }
            // Appends go to a new segment from now on.
            if state.current.is_some_and(|(c, _)| c == id) {
                state.current = None;
            }
            state.dirty.remove(&id);
            let epoch = state.epoch;
            state.doomed.push((epoch, id));
        }
        if state.doomed.len() > doomed_before {
            state.epoch += 1;
        }
        self.reap(&mut state)
    }

    /// Deletes the doomed segments no open reader can name.
    fn reap(&self, state: &mut State) -> Result<(), ClusterError> {
        let oldest_reader = state.readers.keys().next().copied();
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.doomed)
            .into_iter()
            .partition(|&(epoch, _)| oldest_reader.is_none_or(|r| r > epoch));
        state.doomed = kept;
        for (_, id) in gone {
            self.files
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            match fs::remove_file(self.path(id)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(storage("removing an unused segment")(&e)),
            }
        }
        Ok(())
    }

    /// Ids of the segment files present.
    fn present(&self) -> Result<Vec<u64>, ClusterError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| storage("listing segments")(&e))? {
            let entry = entry.map_err(|e| storage("listing segments")(&e))?;
            if let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// The handle of segment `id`, creating the file when `create`.
    fn file(&self, id: u64, create: bool) -> Result<Arc<File>, ClusterError> {
        if let Some(f) = self
            .files
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return Ok(f.clone());
        }
        let mut files = self.files.write().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = files.get(&id) {
            return Ok(f.clone());
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(self.path(id))
            .map_err(|e| {
                if create {
                    storage("creating a segment")(&e)
                } else {
                    ClusterError::Corrupt(format!("segment {id} is missing ({e})"))
                }
            })?;
        let file = Arc::new(file);
        files.insert(id, file.clone());
        Ok(file)
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.seg"))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
