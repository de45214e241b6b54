//! Offline verification of a backup: read every file a restore of it would
//! need — each layer's manifest and checksum, side files and data files —
//! check every checksum and decode every block, and report each missing or
//! corrupt file by path (what `restic check --read-data` is to restic).
//!
//! The manifests, their checksum files and `ENCRYPTION-INFO` are read (and
//! the chain validated) by [`read_backup`]; a failure there ends the check
//! with that error, which names the file. Every other file is checked on its
//! own, so one bad data file does not hide another.

use std::io::Cursor;
use std::sync::Arc;

use backup_format::datafile::verify_data_file;
use backup_format::manifest::{
    BackupFile, DescriptorRevision, SideFileReader, SideFileRef, SideRecord,
};
use backup_format::{Descriptor, EncryptionKey};
use backup_storage::ExternalStorage;

use crate::backup::StorageOpener;
use crate::error::ExecError;
use crate::restore::{BackupChain, ChainLayer, RestoreSource, read_backup};

/// What [`verify_backup`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VerifyReport {
    /// The full backup's subdirectory in the collection.
    pub full_subdir: String,
    /// Layers of the chain (the full backup and its incrementals).
    pub layers: usize,
    /// Files read and checked (side files and data files; the manifests are
    /// checked by reading the chain).
    pub files_checked: usize,
    /// Stored bytes read.
    pub bytes_read: u64,
    /// MVCC entries decoded from the data files.
    pub entries: u64,
    /// Every missing or corrupt file, in the order found.
    pub problems: Vec<FileProblem>,
}

impl VerifyReport {
    /// Whether every file was present and intact.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One file that failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProblem {
    /// The file's path relative to its storage (`<layer dir>/data/1-3.sst`).
    pub file: String,
    /// Missing, corrupt or unreadable.
    pub kind: ProblemKind,
    /// What exactly is wrong.
    pub detail: String,
}

/// How a file failed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file does not exist.
    Missing,
    /// The file exists but its bytes do not check out.
    Corrupt,
    /// The storage failed to read it (it may be intact).
    Unreadable,
}

impl ProblemKind {
    /// `missing`, `corrupt` or `unreadable`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProblemKind::Missing => "missing",
            ProblemKind::Corrupt => "corrupt",
            ProblemKind::Unreadable => "unreadable",
        }
    }
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.file, self.kind.as_str(), self.detail)
    }
}

/// Reads and checks every file the backup `source` names (and its chain)
/// needs; `passphrase` opens an encrypted one. Fails only when the chain
/// itself cannot be read (missing or corrupt manifest, wrong passphrase,
/// broken chain); file problems go into the report.
pub async fn verify_backup(
    opener: &dyn StorageOpener,
    source: &RestoreSource,
    passphrase: Option<&str>,
) -> Result<VerifyReport, ExecError> {
    let chain = read_backup(opener, source, passphrase).await?;
    let mut report = VerifyReport {
        full_subdir: chain.full_subdir.clone(),
        layers: chain.layers.len(),
        ..VerifyReport::default()
    };
    for layer in &chain.layers {
        verify_layer(&chain, layer, &mut report).await;
    }
    Ok(report)
}

/// The data files of layer `index` of `chain` (oldest first), as its
/// manifest's file list records them.
pub async fn layer_files(chain: &BackupChain, index: usize) -> Result<Vec<BackupFile>, ExecError> {
    match chain.layers.get(index) {
        Some(layer) => chain.files(layer).await,
        None => Err(ExecError::Invalid(format!(
            "the chain of {} has {} layers, not {}",
            chain.full_subdir,
            chain.layers.len(),
            index + 1
        ))),
    }
}

async fn verify_layer(chain: &BackupChain, layer: &ChainLayer, report: &mut VerifyReport) {
    let storage = chain.layer_storage(layer).clone();
    let key = chain.key.as_ref();
    let m = &layer.manifest;
    let _ = side_file::<Descriptor>(&storage, &layer.dir, &m.descriptors, key, report).await;
    if let Some(r) = &m.revisions {
        let _ = side_file::<DescriptorRevision>(&storage, &layer.dir, r, key, report).await;
    }
    let Some(files) = side_file::<BackupFile>(&storage, &layer.dir, &m.files, key, report).await
    else {
        return;
    };
    for file in &files {
        let path = format!("{}/{}", layer.dir, file.path);
        let storage = match chain.file_storage(layer, file) {
            Ok(s) => s,
            Err(e) => {
                report.problems.push(FileProblem {
                    file: path,
                    kind: ProblemKind::Unreadable,
                    detail: e.to_string(),
                });
                continue;
            }
        };
        if let Some(problem) = verify_data(&storage, &path, file, key, report).await {
            report.problems.push(problem);
        }
    }
}

/// Reads a side file and every record in it; `None` (with a problem
/// recorded) when it is missing or corrupt.
async fn side_file<T: SideRecord>(
    storage: &Arc<dyn ExternalStorage>,
    dir: &str,
    expected: &SideFileRef,
    key: Option<&EncryptionKey>,
    report: &mut VerifyReport,
) -> Option<Vec<T>> {
    let path = format!("{dir}/{}", expected.name);
    let bytes = match fetch(storage, &path).await {
        Ok(b) => b,
        Err(problem) => {
            report.problems.push(problem);
            return None;
        }
    };
    report.files_checked += 1;
    report.bytes_read += bytes.len() as u64;
    let records = SideFileReader::<_, T>::open(&path, Cursor::new(bytes), expected, key)
        .and_then(|reader| reader.collect::<Result<Vec<T>, _>>());
    match records {
        Ok(r) => Some(r),
        Err(e) => {
            report.problems.push(FileProblem {
                file: path,
                kind: ProblemKind::Corrupt,
                detail: e.to_string(),
            });
            None
        }
    }
}

/// Checks one data file's size, whole-file crc32c, every block, and its
/// counts against the file list.
async fn verify_data(
    storage: &Arc<dyn ExternalStorage>,
    path: &str,
    file: &BackupFile,
    key: Option<&EncryptionKey>,
    report: &mut VerifyReport,
) -> Option<FileProblem> {
    let bytes = match fetch(storage, path).await {
        Ok(b) => b,
        Err(problem) => return Some(problem),
    };
    report.files_checked += 1;
    report.bytes_read += bytes.len() as u64;
    let corrupt = |detail: String| {
        Some(FileProblem {
            file: path.to_string(),
            kind: ProblemKind::Corrupt,
            detail,
        })
    };
    if bytes.len() as u64 != file.stored_bytes {
        return corrupt(format!(
            "it is {} bytes long, but the manifest records {}",
            bytes.len(),
            file.stored_bytes
        ));
    }
    let crc = crc32c::crc32c(&bytes);
    if crc != file.checksum {
        return corrupt(format!(
            "its crc32c is {crc:08x}, but the manifest records {:08x}",
            file.checksum
        ));
    }
    match verify_data_file(path, &bytes, key) {
        Ok(v) if v.entry_count != file.entry_count => corrupt(format!(
            "it holds {} entries, but the manifest records {}",
            v.entry_count, file.entry_count
        )),
        Ok(v) => {
            report.entries += v.entry_count;
            None
        }
        Err(e) => corrupt(e.to_string()),
    }
}

/// Reads a whole file; a missing or unreadable one becomes a problem.
async fn fetch(storage: &Arc<dyn ExternalStorage>, path: &str) -> Result<Vec<u8>, FileProblem> {
    match storage.get(path).await {
        Ok(b) => Ok(b.to_vec()),
        Err(e) if e.is_not_found() => Err(FileProblem {
            file: path.to_string(),
            kind: ProblemKind::Missing,
            detail: "it does not exist".into(),
        }),
        Err(e) => Err(FileProblem {
            file: path.to_string(),
            kind: ProblemKind::Unreadable,
            detail: e.to_string(),
        }),
    }
}
