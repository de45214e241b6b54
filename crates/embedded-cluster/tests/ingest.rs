//! Bulk ingest's time-index runs: incremental exports find every ingested
//! version through them (in chunks, with resume keys), GC keeps a run whose
//! first key it collects, and abort clears them.
#![allow(clippy::unwrap_used)]

mod support;

use backup_exec::{Clock, Ingest};
use backup_format::{MvccEntry, Span, Timestamp};
use embedded_cluster::{Cluster, keys};

const TABLE: u64 = 190;

fn key(i: u32) -> Vec<u8> {
    keys::row_key(TABLE, 1, &i.to_be_bytes())
}

/// Every entry of `span` in `(start, end]`, in chunks of about 2,000 bytes.
fn export(c: &Cluster, span: &Span, start: Timestamp, end: Timestamp, all: bool) -> Vec<MvccEntry> {
    support::export_all(c, span, start, end, all, 2_000)
}

#[test]
fn incremental_exports_see_every_ingested_version_at_several_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    let ts_a = Clock::now(&c);
    let ts_b = Clock::now(&c);
    let older: Vec<MvccEntry> = (0..200u32)
        .map(|i| MvccEntry::put(key(i), ts_a, vec![1u8; 40]))
        .collect();
    let newer: Vec<MvccEntry> = (100..300u32)
        .map(|i| MvccEntry::put(key(i), ts_b, vec![2u8; 40]))
        .collect();
    // One batch holding both timestamps, another for the rest of the newer ones.
    let mut first: Vec<MvccEntry> = older.clone();
    first.extend(newer[..50].iter().cloned());
    Ingest::ingest(&c, first.into()).unwrap();
    Ingest::ingest(&c, newer[50..].to_vec().into()).unwrap();
    let t3 = c.write_batch(&[(key(5), Some(vec![3u8; 40]))]).unwrap();
    let span = keys::table_span(TABLE);
    let now = c.now().unwrap();

    assert_eq!(export(&c, &span, ts_a.prev(), ts_a, false), older);
    assert_eq!(export(&c, &span, ts_a, ts_b, false), newer);
    let latest = export(&c, &span, ts_b, now, false);
    assert_eq!(latest, vec![MvccEntry::put(key(5), t3, vec![3u8; 40])]);
    let mut every: Vec<MvccEntry> = older.iter().chain(&newer).cloned().collect();
    every.extend(latest);
    every.sort();
    assert_eq!(export(&c, &span, ts_a.prev(), now, true), every);
    // The same answer as the full scan's revisions in the window.
    let full = export(&c, &span, Timestamp::ZERO, now, true);
    assert_eq!(full, every);
}

#[test]
fn gc_of_a_runs_first_key_keeps_the_run_for_the_other_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    let ts = Clock::now(&c);
    let batch: Vec<MvccEntry> = (0..100u32)
        .map(|i| MvccEntry::put(key(i), ts, vec![1u8; 40]))
        .collect();
    Ingest::ingest(&c, batch.clone().into()).unwrap();
    // Key 0's ingested version becomes garbage in the left range; the right
    // range is protected from before the ingest, so its history stays readable.
    c.write_batch(&[(key(0), Some(vec![2u8; 40]))]).unwrap();
    c.split_at(&key(50)).unwrap();
    let right = Span::new(key(50), keys::table_prefix(TABLE + 1));
    c.protect(std::slice::from_ref(&right), ts.prev()).unwrap();
    c.set_gc_ttl(TABLE, std::time::Duration::ZERO).unwrap();
    let stats = c.run_gc().unwrap();
    assert!(stats.versions_removed >= 1, "{stats:?}");
    assert!(c.gc_threshold(&right) < ts.prev());
    let got = export(&c, &right, ts.prev(), c.now().unwrap(), false);
    assert_eq!(got, batch[50..].to_vec());
}

#[test]
fn abort_clears_ingested_runs_and_a_new_ingest_starts_clean() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    let span = keys::table_span(TABLE);
    let ts = Clock::now(&c);
    let batch: Vec<MvccEntry> = (0..300u32)
        .map(|i| MvccEntry::put(key(i), ts, vec![1u8; 40]))
        .collect();
    Ingest::ingest(&c, batch[..150].to_vec().into()).unwrap();
    Ingest::ingest(&c, batch[150..].to_vec().into()).unwrap();
    Ingest::abort(&c, std::slice::from_ref(&span)).unwrap();
    let now = c.now().unwrap();
    assert!(export(&c, &span, ts.prev(), now, true).is_empty());
    assert!(export(&c, &span, Timestamp::ZERO, now, true).is_empty());
    // A second restore into the same ids sees only its own data.
    let again = Clock::now(&c);
    let second: Vec<MvccEntry> = (0..10u32)
        .map(|i| MvccEntry::put(key(i * 7), again, vec![4u8; 40]))
        .collect();
    Ingest::ingest(&c, second.clone().into()).unwrap();
    let now = c.now().unwrap();
    assert_eq!(export(&c, &span, ts.prev(), now, true), second);
}
