//! Ingested blocks are invisible to readers: after random interleavings of
//! bulk ingests (packed into blocks, or written version by version where
//! data already lies in the batch's interval), ordinary writes and deletes,
//! GC and clearing of spans, every read path (point reads, scans, full and
//! incremental exports with and without revisions) answers exactly what a
//! plain model of the versions says, at every recorded time above the GC
//! threshold.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use backup_exec::{Clock, Ingest, IntentPolicy};
use backup_format::{MvccEntry, Span, Timestamp};
use embedded_cluster::{Cluster, keys};
use proptest::prelude::*;

const TABLE: u64 = 77;
const KEYS: u16 = 48;

/// Row keys whose primary key holds a zero byte (escaped in engine keys).
fn key(i: u16) -> Vec<u8> {
    keys::row_key(TABLE, 1, &i.to_be_bytes())
}

#[derive(Clone, Debug)]
enum Op {
    /// Bulk ingest at a fresh time (`None`) or at an earlier recorded time:
    /// (key, value length or delete).
    Ingest(Option<usize>, Vec<(u16, Option<usize>)>),
    Put(u16, usize),
    Delete(u16),
    /// Clear the keys `[a, b)`.
    Clear(u16, u16),
    Gc,
}

fn op() -> impl Strategy<Value = Op> {
    let entry = (0..KEYS, prop::option::weighted(0.9, 0usize..3_000));
    prop_oneof![
        4 => (prop::option::of(any::<usize>()), prop::collection::vec(entry, 1..80))
            .prop_map(|(at, es)| Op::Ingest(at, es)),
        3 => (0..KEYS, 0usize..500).prop_map(|(k, n)| Op::Put(k, n)),
        1 => (0..KEYS).prop_map(Op::Delete),
        1 => (0..KEYS, 0..KEYS).prop_map(|(a, b)| Op::Clear(a.min(b), a.max(b))),
        1 => Just(Op::Gc),
    ]
}

/// Every version the cluster should hold: (key, ts) → value (None: tombstone).
type Model = BTreeMap<(Vec<u8>, Timestamp), Option<Vec<u8>>>;

fn value(k: u16, ts: Timestamp, len: usize) -> Vec<u8> {
    let seed = u64::from(k) ^ ts.wall as u64;
    (0..len)
        .map(|i| (seed.wrapping_add(i as u64) % 251) as u8)
        .collect()
}

/// The newest version of each key at or below `ts`, live ones only.
fn model_scan(model: &Model, ts: Timestamp) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut newest: BTreeMap<&Vec<u8>, (Timestamp, &Option<Vec<u8>>)> = BTreeMap::new();
    for ((k, vts), v) in model {
        if *vts <= ts && newest.get(k).is_none_or(|(t, _)| vts > t) {
            newest.insert(k, (*vts, v));
        }
    }
    newest
        .into_iter()
        .filter_map(|(k, (_, v))| v.clone().map(|v| (k.clone(), v)))
        .collect()
}

/// Every version in `(start, end]`, in MVCC order (key, then newest first).
fn model_window(model: &Model, start: Timestamp, end: Timestamp) -> Vec<MvccEntry> {
    let mut out: Vec<MvccEntry> = model
        .iter()
        .filter(|((_, ts), _)| *ts > start && *ts <= end)
        .map(|((k, ts), v)| MvccEntry {
            key: k.clone(),
            ts: *ts,
            value: v.clone(),
        })
        .collect();
    out.sort_by(|a, b| a.mvcc_cmp(b));
    out
}

/// Every entry of the table in `(start, end]`, in small chunks.
fn export(c: &Cluster, start: Timestamp, end: Timestamp, all: bool) -> Vec<MvccEntry> {
    support::export_all(c, &keys::table_span(TABLE), start, end, all, 20_000)
}

fn apply(c: &Cluster, model: &mut Model, times: &mut Vec<Timestamp>, op: &Op) {
    let threshold = c.gc_threshold(&keys::table_span(TABLE));
    match op {
        Op::Ingest(at, entries) => {
            let later: Vec<Timestamp> = times.iter().copied().filter(|t| *t > threshold).collect();
            let ts = match at {
                Some(i) if !later.is_empty() => later[i % later.len()],
                _ => Clock::now(c),
            };
            let batch: Vec<MvccEntry> = entries
                .iter()
                .map(|&(k, len)| MvccEntry {
                    key: key(k),
                    ts,
                    value: len.map(|n| value(k, ts, n)),
                })
                .collect();
            // A key given twice in one batch is written once: keep the
            // model to the batch's single version of it.
            let mut sorted = batch.clone();
            sorted.sort_by(|a, b| a.mvcc_cmp(b));
            sorted.dedup_by(|a, b| a.key == b.key && a.ts == b.ts);
            Ingest::ingest(c, batch.into()).unwrap();
            // Which duplicate survives is the engine's choice: read it back.
            for e in sorted {
                let got = c.get(&e.key, ts, IntentPolicy::FailFast).unwrap();
                let mut candidates = entries
                    .iter()
                    .filter(|(k, _)| key(*k) == e.key)
                    .map(|&(k, len)| len.map(|n| value(k, ts, n)));
                assert!(
                    candidates.any(|v| v == got),
                    "ingested key {:?} at {ts} reads {got:?}",
                    e.key
                );
                model.insert((e.key, ts), got);
            }
            times.push(ts);
        }
        Op::Put(k, n) => {
            let ts = c.write_batch(&[(key(*k), Some(vec![7u8; *n]))]).unwrap();
            model.insert((key(*k), ts), Some(vec![7u8; *n]));
            times.push(ts);
        }
        Op::Delete(k) => {
            let ts = c.delete(&key(*k)).unwrap();
            model.insert((key(*k), ts), None);
            times.push(ts);
        }
        Op::Clear(a, b) => {
            c.clear_spans(&[Span::new(key(*a), key(*b))]).unwrap();
            model.retain(|(k, _), _| !(key(*a) <= *k && *k < key(*b)));
        }
        Op::Gc => {
            c.set_gc_ttl(TABLE, Duration::ZERO).unwrap();
            let now = Clock::now(c);
            c.run_gc_at(now).unwrap();
            times.push(Clock::now(c));
        }
    }
}

fn check(c: &Cluster, model: &Model, times: &[Timestamp]) {
    let span = keys::table_span(TABLE);
    let threshold = c.gc_threshold(&span);
    let mut visible: Vec<Timestamp> = times.iter().copied().filter(|t| *t > threshold).collect();
    visible.push(Clock::now(c));
    visible.sort();
    visible.dedup();
    for &ts in &visible {
        let want = model_scan(model, ts);
        let got = c.scan(&span, ts, IntentPolicy::FailFast).unwrap();
        assert_eq!(got, want, "scan at {ts}");
        let mut full: Vec<(Vec<u8>, Vec<u8>)> = export(c, Timestamp::ZERO, ts, false)
            .into_iter()
            .map(|e| (e.key, e.value.unwrap()))
            .collect();
        full.sort();
        assert_eq!(full, want, "full export at {ts}");
        for i in (0..KEYS).step_by(5) {
            let want = want
                .iter()
                .find(|(k, _)| *k == key(i))
                .map(|(_, v)| v.clone());
            assert_eq!(
                c.get(&key(i), ts, IntentPolicy::FailFast).unwrap(),
                want,
                "get {i} at {ts}"
            );
        }
    }
    // Incremental windows with every revision, between consecutive times.
    for pair in visible.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let mut got = export(c, start, end, true);
        got.sort_by(|a, b| a.mvcc_cmp(b));
        assert_eq!(
            got,
            model_window(model, start, end),
            "incremental export ({start}, {end}]"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_read_sees_ingested_blocks_as_plain_versions(ops in prop::collection::vec(op(), 1..14)) {
        let dir = tempfile::tempdir().unwrap();
        let c = Cluster::open_default(dir.path()).unwrap();
        let mut model = Model::new();
        let mut times = Vec::new();
        for op in &ops {
            apply(&c, &mut model, &mut times, op);
        }
        check(&c, &model, &times);
        // Everything holds across a restart (blocks are persisted).
        drop(c);
        let c = Cluster::open_default(dir.path()).unwrap();
        check(&c, &model, &times);
    }
}

#[test]
fn a_large_ingest_spans_many_blocks_and_reads_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    let ts = Clock::now(&c);
    // 4,000 rows of 300 bytes: about 20 blocks.
    let batch: Vec<MvccEntry> = (0..4_000u16)
        .rev()
        .map(|i| MvccEntry::put(key(i), ts, value(i, ts, 300)))
        .collect();
    Ingest::ingest(&c, batch.into()).unwrap();
    let rows = c
        .scan(&keys::table_span(TABLE), ts, IntentPolicy::FailFast)
        .unwrap();
    assert_eq!(rows.len(), 4_000);
    for (i, (k, v)) in rows.iter().enumerate() {
        assert_eq!(*k, key(i as u16));
        assert_eq!(*v, value(i as u16, ts, 300));
    }
    // A narrow scan starting inside a block.
    let some = c
        .scan(
            &Span::new(key(1_234), key(1_240)),
            ts,
            IntentPolicy::FailFast,
        )
        .unwrap();
    assert_eq!(
        some.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        (1_234..1_240).map(key).collect::<Vec<_>>()
    );
    // Clearing the middle keeps both ends.
    c.clear_spans(&[Span::new(key(100), key(3_900))]).unwrap();
    let left = c
        .scan(&keys::table_span(TABLE), ts, IntentPolicy::FailFast)
        .unwrap();
    let want: Vec<Vec<u8>> = (0..100).chain(3_900..4_000).map(key).collect();
    assert_eq!(left.into_iter().map(|(k, _)| k).collect::<Vec<_>>(), want);
}
