//! Helpers shared by the end-to-end backup tests.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use backup_exec::{BackupJobs, BackupSettings, Host, StorageOpener};
use backup_format::paths::LATEST_DIR;
use backup_format::{EncryptionKey, MvccEntry};
use backup_storage::{ExternalStorage, StorageUri};
use e2e::{Fixture, LayerContents, read_backup};
use embedded_cluster::ClusterConfig;
use tempfile::TempDir;

pub const URI: &str = "nodelocal://1/backups";

/// A 3-node cluster with both tables loaded (`rows` rows each, 3 ranges per table).
pub fn fixture(rows: u32) -> (TempDir, Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let fx = Fixture::open(dir.path(), ClusterConfig::default()).unwrap();
    fx.load(rows, 100, 3).unwrap();
    (dir, fx)
}

pub fn jobs(host: Host) -> BackupJobs {
    BackupJobs::new(host, BackupSettings::for_tests())
}

pub fn open(opener: &dyn StorageOpener, uri: &str) -> Arc<dyn ExternalStorage> {
    opener.open(&StorageUri::parse(uri).unwrap()).unwrap()
}

/// The subdirectory `LATEST` names.
pub async fn latest(storage: &Arc<dyn ExternalStorage>) -> String {
    let listing = storage.list(LATEST_DIR, false).await.unwrap();
    let bytes = storage.get(&listing.objects[0].path).await.unwrap();
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .trim()
        .to_string()
}

pub async fn read(
    storage: &Arc<dyn ExternalStorage>,
    dir: &str,
    key: Option<&EncryptionKey>,
) -> LayerContents {
    read_backup(storage, &BTreeMap::new(), dir, key)
        .await
        .unwrap()
}

/// Asserts two entry lists are equal, with a short message when not.
pub fn assert_same(got: &[MvccEntry], want: &[MvccEntry], what: &str) {
    assert!(!want.is_empty(), "{what}: the reference is empty");
    assert_eq!(got.len(), want.len(), "{what}: entry counts differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: entry {i} differs");
    }
}
