//! Segment files of bulk-ingested blocks: blocks that compress are stored
//! compressed and others raw, their space comes back when the data is
//! cleared, files no block names are removed when the store opens, and a
//! damaged byte is an error naming the damage, never a wrong answer.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use backup_exec::{Clock, Ingest, IntentPolicy};
use backup_format::MvccEntry;
use embedded_cluster::{Cluster, ClusterConfig, ClusterError, KeyValue, keys};

const TABLE: u64 = 88;
/// A table of incompressible rows.
const NOISE_TABLE: u64 = 89;
/// Rows per load, and bytes per row value.
const ROWS: u32 = 3_000;
const VALUE_LEN: usize = 300;

fn key(i: u32) -> Vec<u8> {
    table_key(TABLE, i)
}

fn table_key(table: u64, i: u32) -> Vec<u8> {
    keys::row_key(table, 1, &i.to_be_bytes())
}

/// A row value that compresses well.
fn text(i: u32) -> Vec<u8> {
    vec![(i % 251) as u8; VALUE_LEN]
}

/// A row value that does not compress (xorshift noise).
fn noise(i: u32) -> Vec<u8> {
    let mut x = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..VALUE_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Ingests 3,000 rows of 300 bytes (about 15 blocks) and syncs.
fn load(c: &Cluster) {
    load_table(c, TABLE, text);
}

fn load_table(c: &Cluster, table: u64, value: fn(u32) -> Vec<u8>) {
    let ts = Clock::now(c);
    let batch: Vec<MvccEntry> = (0..ROWS)
        .map(|i| MvccEntry::put(table_key(table, i), ts, value(i)))
        .collect();
    Ingest::ingest(c, batch.into()).unwrap();
    c.sync().unwrap();
}

/// Every live row of the table now.
fn live_rows(c: &Cluster) -> Result<Vec<KeyValue>, ClusterError> {
    table_rows(c, TABLE)
}

fn table_rows(c: &Cluster, table: u64) -> Result<Vec<KeyValue>, ClusterError> {
    c.scan(
        &keys::table_span(table),
        Clock::now(c),
        IntentPolicy::FailFast,
    )
}

fn expected_rows(table: u64, value: fn(u32) -> Vec<u8>) -> Vec<KeyValue> {
    (0..ROWS).map(|i| (table_key(table, i), value(i))).collect()
}

fn files_bytes(dir: &Path) -> u64 {
    segment_files(dir)
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum()
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
fn blocks_that_compress_are_stored_compressed_and_others_raw() {
    let dir = tempfile::tempdir().unwrap();
    let raw = u64::from(ROWS) * VALUE_LEN as u64;
    let c = Cluster::open_default(dir.path()).unwrap();
    load(&c);
    let compressed = files_bytes(dir.path());
    assert!(compressed > 0 && compressed < raw / 4, "{compressed}");
    // Noise is stored as it is: values, keys and framing, nothing more.
    load_table(&c, NOISE_TABLE, noise);
    let stored_noise = files_bytes(dir.path()) - compressed;
    assert!(
        (raw..raw + raw / 4).contains(&stored_noise),
        "{stored_noise}"
    );
    drop(c);
    // Everything reads back after a restart.
    let c = Cluster::open_default(dir.path()).unwrap();
    assert_eq!(live_rows(&c).unwrap(), expected_rows(TABLE, text));
    assert_eq!(
        table_rows(&c, NOISE_TABLE).unwrap(),
        expected_rows(NOISE_TABLE, noise)
    );
    // Clearing gives all of it back (live bytes count stored bytes).
    c.clear_spans(&[keys::table_span(TABLE), keys::table_span(NOISE_TABLE)])
        .unwrap();
    assert!(segment_files(dir.path()).is_empty());
}

#[test]
fn ranges_holding_compressed_blocks_are_sized_by_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let config = ClusterConfig {
        range_max_bytes: 64 << 10,
        ..ClusterConfig::default()
    };
    let c = Cluster::open(dir.path(), config).unwrap();
    load(&c);
    assert!(files_bytes(dir.path()) < 200_000);
    // About 900 KiB of keys and values, split into ranges of at most 64 KiB.
    let table = keys::table_span(TABLE);
    let ranges: Vec<_> = c
        .ranges()
        .into_iter()
        .filter(|r| r.span.start >= table.start && r.span.end <= table.end)
        .collect();
    let bytes: u64 = ranges.iter().map(|r| r.approx_bytes).sum();
    assert!(bytes >= u64::from(ROWS) * VALUE_LEN as u64, "{bytes}");
    assert!(ranges.len() >= 14, "{}", ranges.len());
    assert_eq!(live_rows(&c).unwrap(), expected_rows(TABLE, text));
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
    // A byte in a compressed block in the middle of the file.
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
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
