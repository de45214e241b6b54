//! Export in both modes, with resume keys, intents, leases and GC; ingest.
#![allow(clippy::unwrap_used)]

use backup_exec::{ExportError, ExportRequest, Ingest, IntentPolicy, KvSource};
use backup_format::{MvccEntry, Span, Timestamp};
use embedded_cluster::{Cluster, keys};

fn request(span: Span, start: Timestamp, end: Timestamp, all: bool) -> ExportRequest {
    ExportRequest {
        span,
        start_ts: start,
        end_ts: end,
        all_revisions: all,
        intent_policy: IntentPolicy::FailFast,
        target_bytes: 0,
    }
}

/// Exports a whole span through resume keys, checking every chunk's invariants.
fn export_all(c: &Cluster, req: &ExportRequest) -> (Vec<MvccEntry>, usize) {
    let mut out: Vec<MvccEntry> = Vec::new();
    let mut chunks = 0;
    let mut req = req.clone();
    for info in KvSource::ranges(c, std::slice::from_ref(&req.span)).unwrap() {
        req.span = info.span.clone();
        loop {
            let chunk = KvSource::export(c, info.leaseholder, &req).unwrap();
            chunks += 1;
            for w in chunk.entries.windows(2) {
                assert!(w[0].mvcc_cmp(&w[1]).is_lt(), "chunk not in MVCC order");
            }
            if let (Some(last), Some(first)) = (out.last(), chunk.entries.first()) {
                assert!(
                    last.key < first.key,
                    "a key's revisions were split across chunks"
                );
            }
            out.extend(chunk.entries);
            match chunk.resume_key {
                Some(k) => {
                    assert!(info.span.contains_key(&k));
                    req.span.start = k;
                }
                None => break,
            }
        }
    }
    (out, chunks)
}

fn key(i: u32) -> Vec<u8> {
    keys::row_key(80, 1, &i.to_be_bytes())
}

#[test]
fn full_and_incremental_exports_with_resume_keys() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    let batch: Vec<_> = (0..300).map(|i| (key(i), Some(vec![1u8; 100]))).collect();
    let t1 = c.write_batch(&batch).unwrap();
    // Changes after t1: rewrite 10, 20, ...; delete 15; rewrite 30 twice.
    let mut changes = Vec::new();
    for i in (10..300).step_by(10) {
        changes.push(c.put(&key(i), b"second").unwrap());
    }
    c.delete(&key(15)).unwrap();
    let t2 = c.put(&key(30), b"third").unwrap();
    let span = keys::table_span(80);

    // Full export at t1: every key once, values of t1, small chunks.
    let mut req = request(span.clone(), Timestamp::ZERO, t1, false);
    req.target_bytes = 2_000;
    let (full, chunks) = export_all(&c, &req);
    assert_eq!(full.len(), 300);
    assert!(chunks > 5, "target_bytes should cut chunks, got {chunks}");
    assert!(
        full.iter()
            .all(|e| e.ts == t1 && e.value.as_deref() == Some(&[1u8; 100][..]))
    );

    // Full export at t2: 299 live keys (15 is deleted and left out), newest values.
    let (full2, _) = export_all(&c, &request(span.clone(), Timestamp::ZERO, t2, false));
    assert_eq!(full2.len(), 299);
    assert!(full2.iter().all(|e| !e.is_tombstone()));
    let k30 = full2.iter().find(|e| e.key == key(30)).unwrap();
    assert_eq!(k30.value.as_deref(), Some(&b"third"[..]));

    // Incremental (t1, t2]: exactly the changed keys, the delete as a tombstone.
    let mut inc_req = request(span.clone(), t1, t2, false);
    inc_req.target_bytes = 100;
    let (inc, inc_chunks) = export_all(&c, &inc_req);
    let mut expected: Vec<Vec<u8>> = (10..300).step_by(10).map(key).collect();
    expected.push(key(15));
    expected.sort();
    assert_eq!(
        inc.iter().map(|e| e.key.clone()).collect::<Vec<_>>(),
        expected
    );
    assert!(
        inc.iter()
            .find(|e| e.key == key(15))
            .unwrap()
            .is_tombstone()
    );
    assert!(inc_chunks > 3);

    // Revision history: every version in the window, newest first.
    let (revs, _) = export_all(&c, &request(span.clone(), t1, t2, true));
    assert_eq!(revs.len(), expected.len() + 1); // key 30 has two revisions
    let k30: Vec<_> = revs.iter().filter(|e| e.key == key(30)).collect();
    assert_eq!(k30.len(), 2);
    assert!(k30[0].ts > k30[1].ts);
    let (all_revs, _) = export_all(&c, &request(span.clone(), Timestamp::ZERO, t2, true));
    assert_eq!(all_revs.len(), 300 + changes.len() + 2);

    // The incremental over the index equals the same window cut out of a full scan.
    let from_scan: Vec<_> = all_revs.iter().filter(|e| e.ts > t1).cloned().collect();
    assert_eq!(revs, from_scan);
}

#[test]
fn export_errors_tell_the_job_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    c.put(&key(1), b"a").unwrap();
    let span = keys::table_span(80);
    let info = KvSource::ranges(&c, std::slice::from_ref(&span)).unwrap()[0].clone();
    let holder = info.leaseholder;
    let other = (1..=3).find(|n| *n != holder).unwrap();

    // Not the leaseholder.
    let now = c.now().unwrap();
    let req = request(info.span.clone(), Timestamp::ZERO, now, false);
    assert_eq!(
        KvSource::export(&c, other, &req),
        Err(ExportError::NotLeaseholder {
            node: other,
            leaseholder: holder
        })
    );

    // An intent: fail fast names key and transaction; priority pushes it.
    let txn = c.begin().unwrap();
    txn.put(&key(2), b"pending").unwrap();
    let req = request(info.span.clone(), Timestamp::ZERO, c.now().unwrap(), false);
    match KvSource::export(&c, holder, &req) {
        Err(ExportError::WriteIntent { key: k, txn: t }) => {
            assert_eq!(k, key(2));
            assert_eq!(t, txn.id().to_string());
        }
        other => panic!("expected WriteIntent, got {other:?}"),
    }
    let mut prio = req.clone();
    prio.intent_policy = IntentPolicy::ResolveWithPriority;
    let chunk = KvSource::export(&c, holder, &prio).unwrap();
    assert_eq!(chunk.entries.len(), 1);
    assert!(
        txn.commit().is_err(),
        "the pushed transaction must not commit"
    );

    // Below the GC threshold.
    c.set_gc_ttl(80, std::time::Duration::ZERO).unwrap();
    c.run_gc().unwrap();
    let threshold = c.gc_threshold(&span);
    match KvSource::export(&c, holder, &req) {
        Err(ExportError::GcThreshold {
            requested,
            threshold: t,
        }) => {
            assert_eq!(requested, req.end_ts);
            assert_eq!(t, threshold);
        }
        other => panic!("expected GcThreshold, got {other:?}"),
    }
    let inc = request(info.span.clone(), req.end_ts, c.now().unwrap(), false);
    assert!(matches!(
        KvSource::export(&c, holder, &inc),
        Err(ExportError::GcThreshold { .. })
    ));

    // A down node: transient, and its leases moved so a re-plan finds the new holder.
    c.set_node_live(holder, false).unwrap();
    let fresh = request(info.span.clone(), Timestamp::ZERO, c.now().unwrap(), false);
    assert!(matches!(
        KvSource::export(&c, holder, &fresh),
        Err(ExportError::Transient(_))
    ));
    let replanned = KvSource::ranges(&c, std::slice::from_ref(&span)).unwrap();
    assert_ne!(replanned[0].leaseholder, holder);
    assert!(KvSource::export(&c, replanned[0].leaseholder, &fresh).is_ok());
}

#[test]
fn concurrent_exports_on_several_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    for t in 90..96 {
        let batch: Vec<_> = (0..200u32)
            .map(|i| (keys::row_key(t, 1, &i.to_be_bytes()), Some(vec![3u8; 64])))
            .collect();
        c.write_batch(&batch).unwrap();
    }
    let end = c.now().unwrap();
    let spans: Vec<Span> = (90..96).map(keys::table_span).collect();
    let ranges = KvSource::ranges(&c, &spans).unwrap();
    let total: usize = std::thread::scope(|s| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|r| {
                let c = &c;
                s.spawn(move || {
                    let req = request(r.span.clone(), Timestamp::ZERO, end, false);
                    KvSource::export(c, r.leaseholder, &req)
                        .unwrap()
                        .entries
                        .len()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(total, 6 * 200);
}

#[test]
fn ingest_rekeyed_entries_then_export_and_abort() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::open_default(dir.path()).unwrap();
    let rewriter = Ingest::key_rewriter(&c, &[(80, 180)].into_iter().collect()).unwrap();
    let write_ts = backup_exec::Clock::now(&c);
    let batch: Vec<MvccEntry> = (0..1000u32)
        .map(|i| MvccEntry::put(rewriter.rewrite(&key(i)).unwrap(), write_ts, vec![9u8; 50]))
        .collect();
    let (a, b) = batch.split_at(500);
    Ingest::ingest(&c, b.to_vec().into()).unwrap();
    Ingest::ingest(&c, a.to_vec().into()).unwrap();
    assert!(backup_exec::Clock::now(&c) > write_ts);
    let span = keys::table_span(180);
    let (got, _) = export_all(
        &c,
        &request(span.clone(), Timestamp::ZERO, c.now().unwrap(), false),
    );
    assert_eq!(got, batch);
    // Ingested data is visible to incremental exports after its write time.
    let (inc, _) = export_all(
        &c,
        &request(span.clone(), write_ts.prev(), c.now().unwrap(), false),
    );
    assert_eq!(inc.len(), 1000);
    // Abort clears the restored spans.
    Ingest::abort(&c, std::slice::from_ref(&span)).unwrap();
    let (after, _) = export_all(&c, &request(span, Timestamp::ZERO, c.now().unwrap(), true));
    assert!(after.is_empty());
    assert!(
        Ingest::ingest(
            &c,
            vec![MvccEntry::put(Vec::new(), write_ts, b"x".to_vec())].into()
        )
        .is_err()
    );
}
