//! Segment files of bulk-ingested blocks: their space comes back when the
//! data is cleared, files no block names are removed when the store opens,
//! and a damaged byte is an error naming the damage, never a wrong answer.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use backup_exec::{Clock, Ingest, IntentPolicy};
use backup_format::MvccEntry;
use embedded_cluster::{Cluster, ClusterError, KeyValue, keys};

const TABLE: u64 = 88;

fn key(i: u32) -> Vec<u8> {
    keys::row_key(TABLE, 1, &i.to_be_bytes())
}

/// Ingests 3,000 rows of 300 bytes (about 15 blocks) and syncs.
fn load(c: &Cluster) {
    let ts = Clock::now(c);
    let batch: Vec<MvccEntry> = (0..3_000u32)
        .map(|i| MvccEntry::put(key(i), ts, vec![(i % 251) as u8; 300]))
        .collect();
    Ingest::ingest(c, batch.into()).unwrap();
    c.sync().unwrap();
}

/// Every live row of the table now.
fn live_rows(c: &Cluster) -> Result<Vec<KeyValue>, ClusterError> {
    c.scan(
        &keys::table_span(TABLE),
        Clock::now(c),
        IntentPolicy::FailFast,
    )
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    out.sort();
    out
}

#[test]
fn clearing_ingested_data_deletes_its_segment_files() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    load(&c);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(std::fs::metadata(&files[0]).unwrap().len() > 900_000);
    // Clearing part of the data keeps the file (other blocks still name it).
    c.clear_spans(&[backup_format::Span::new(key(0), key(1_000))])
        .unwrap();
    assert_eq!(segment_files(dir.path()), files);
    let rows = live_rows(&c).unwrap();
    assert_eq!(rows.len(), 2_000);
    assert_eq!(rows[0].0, key(1_000));
    // Clearing the rest gives the space back.
    c.clear_spans(&[keys::table_span(TABLE)]).unwrap();
    assert!(segment_files(dir.path()).is_empty());
    // A later ingest starts a new file and reads back after a restart.
    load(&c);
    drop(c);
    let c = Cluster::open_default(dir.path()).unwrap();
    let rows = live_rows(&c).unwrap();
    assert_eq!(rows.len(), 3_000);
    assert_eq!(segment_files(dir.path()).len(), 1);
}

#[test]
fn a_segment_file_no_block_names_is_removed_when_the_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    load(&c);
    drop(c);
    let kept = segment_files(dir.path());
    // Left by a crash between writing the bytes and committing their blocks.
    std::fs::write(dir.path().join("segments").join("999.seg"), b"orphan").unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    assert_eq!(segment_files(dir.path()), kept);
    let rows = live_rows(&c).unwrap();
    assert_eq!(rows.len(), 3_000);
}

#[test]
fn a_damaged_segment_is_an_error_not_a_wrong_answer() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    load(&c);
    drop(c);
    let file = segment_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[100_000] ^= 0x40;
    std::fs::write(&file, bytes).unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    let err = live_rows(&c).unwrap_err();
    assert!(matches!(err, ClusterError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
    // Keys in undamaged blocks still read.
    let first = c
        .get(&key(0), Clock::now(&c), IntentPolicy::FailFast)
        .unwrap();
    assert_eq!(first, Some(vec![0u8; 300]));
    // A truncated segment is an error naming it, not a huge read.
    drop(c);
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    let err = c
        .get(&key(2_999), Clock::now(&c), IntentPolicy::FailFast)
        .unwrap_err();
    assert!(err.to_string().contains("past the end of segment"), "{err}");
}
