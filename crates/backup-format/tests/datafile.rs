//! Data files: round trips, ranged reads, rolling, and corruption.
#![allow(clippy::unwrap_used)]

use std::io;
use std::ops::Range;

use backup_format::datafile::{
    Compression, DataFileDecoder, DataFileOptions, DataFileReader, DataFileWriter, FileOpener,
    FileSummary, Footer, RollingWriter, verify_data_file,
};
use backup_format::{EncryptionKey, FormatError, MvccEntry, Span, Timestamp};
use proptest::prelude::*;

fn key() -> EncryptionKey {
    EncryptionKey::from_bytes([42; 32])
}

fn options(compression: Compression, encrypted: bool, block_size: usize) -> DataFileOptions {
    DataFileOptions {
        block_size,
        compression,
        encryption: encrypted.then(key),
        ..DataFileOptions::default()
    }
}

fn write(entries: &[MvccEntry], opts: &DataFileOptions) -> (Vec<u8>, FileSummary) {
    let mut w = DataFileWriter::new("data/1-1.sst", Vec::new(), opts).unwrap();
    for e in entries {
        w.add(e).unwrap();
    }
    w.finish().unwrap()
}

fn fetcher(bytes: &[u8]) -> impl FnMut(Range<u64>) -> io::Result<Vec<u8>> + '_ {
    move |r: Range<u64>| {
        bytes
            .get(r.start as usize..r.end as usize)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "past the end"))
    }
}

fn read_span(bytes: &[u8], span: &Span, k: Option<&EncryptionKey>) -> Vec<MvccEntry> {
    let mut r =
        DataFileReader::open("data/1-1.sst", bytes.len() as u64, fetcher(bytes), k).unwrap();
    r.scan(span).collect::<Result<Vec<_>, _>>().unwrap()
}

/// Sorted, MVCC-ordered entries from arbitrary (key, ts, value) triples.
fn arb_entries() -> impl Strategy<Value = Vec<MvccEntry>> {
    proptest::collection::vec(
        (
            proptest::collection::vec(0u8..4, 0..4),
            1i64..6,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        ),
        0..120,
    )
    .prop_map(|v| {
        let mut es: Vec<MvccEntry> = v
            .into_iter()
            .map(|(k, w, val)| MvccEntry {
                key: k,
                ts: Timestamp::new(w, 0),
                value: val,
            })
            .collect();
        es.sort();
        es.dedup_by(|a, b| a.key == b.key && a.ts == b.ts);
        es
    })
}

fn arb_codec() -> impl Strategy<Value = (Compression, bool)> {
    prop_oneof![
        Just((Compression::None, false)),
        Just((Compression::Zstd(1), false)),
        Just((Compression::Zstd(1), true)),
        Just((Compression::None, true)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn round_trip_and_span_reads(
        entries in arb_entries(),
        (compression, encrypted) in arb_codec(),
        block_size in 1usize..300,
        a in proptest::collection::vec(0u8..4, 0..3),
        b in proptest::collection::vec(0u8..4, 0..3),
    ) {
        let opts = options(compression, encrypted, block_size);
        let (bytes, summary) = write(&entries, &opts);
        let k = opts.encryption.as_ref();
        prop_assert_eq!(summary.stored_bytes, bytes.len() as u64);
        prop_assert_eq!(summary.checksum, crc32c::crc32c(&bytes));
        prop_assert_eq!(summary.entry_count, entries.len() as u64);
        let mut keys: Vec<&Vec<u8>> = entries.iter().map(|e| &e.key).collect();
        keys.dedup();
        prop_assert_eq!(summary.row_count, keys.len() as u64);
        for e in &entries {
            prop_assert!(summary.span.contains_key(&e.key));
            prop_assert!(summary.min_ts <= e.ts && e.ts <= summary.max_ts);
        }
        // Whole file.
        let all = read_span(&bytes, &Span::new(vec![], vec![0xff; 8]), k);
        prop_assert_eq!(&all, &entries);
        let verified = verify_data_file("data/1-1.sst", &bytes, k).unwrap();
        prop_assert_eq!(verified.entry_count, entries.len() as u64);
        // A sub-span reads exactly the entries in it, touching only overlapping blocks.
        let span = Span::new(a.clone().min(b.clone()), a.max(b));
        let want: Vec<MvccEntry> = entries.iter().filter(|e| span.contains_key(&e.key)).cloned().collect();
        prop_assert_eq!(read_span(&bytes, &span, k), want.clone());
        let mut r = DataFileReader::open("f", bytes.len() as u64, fetcher(&bytes), k).unwrap();
        let mut by_ref = Vec::new();
        r.scan(&span).for_each_ref(|e| by_ref.push(e.to_entry())).unwrap();
        prop_assert_eq!(by_ref, want);
    }
}

fn rows(n: usize, versions: usize) -> Vec<MvccEntry> {
    let mut out = Vec::new();
    for i in 0..n {
        for v in 0..versions {
            let k = format!("/Table/{}/1/{:08}", 50 + i / 1000, i);
            let val = format!("name-{i} balance={} city=city{}", i * 37 % 10_000, i % 17);
            out.push(MvccEntry::put(
                k,
                Timestamp::new(1_000 + (versions - v) as i64, 0),
                val,
            ));
        }
    }
    out
}

#[test]
fn ranged_reads_touch_only_overlapping_blocks() {
    let entries = rows(5_000, 1);
    let opts = options(Compression::Zstd(1), true, 4096);
    let (bytes, _) = write(&entries, &opts);
    let mut ranges = Vec::new();
    let fetch = |r: Range<u64>| {
        ranges.push(r.clone());
        Ok(bytes[r.start as usize..r.end as usize].to_vec())
    };
    let mut reader = DataFileReader::open("f", bytes.len() as u64, fetch, Some(&key())).unwrap();
    let blocks = reader.index().blocks.len();
    assert!(blocks > 20, "{blocks}");
    let span = Span::prefix(b"/Table/52/");
    let got: Vec<MvccEntry> = reader.scan(&span).map(Result::unwrap).collect();
    assert_eq!(got.len(), 1000);
    assert!(got.iter().all(|e| span.contains_key(&e.key)));
    let overlapping = reader.index().blocks_overlapping(&span);
    let read_bytes: u64 = ranges.iter().skip(2).map(|r| r.end - r.start).sum();
    let want: u64 = overlapping.iter().map(|b| b.len).sum();
    assert_eq!(read_bytes, want, "only the overlapping blocks are fetched");
    assert!(overlapping.len() < blocks / 3);
}

#[test]
fn sans_io_decoding() {
    let entries = rows(300, 2);
    let (bytes, _) = write(&entries, &options(Compression::Zstd(1), false, 1024));
    let len = bytes.len() as u64;
    let trailer = &bytes[bytes.len() - Footer::TRAILER_LEN..];
    let tail_len = Footer::tail_len("f", trailer, len).unwrap() as usize;
    let footer = Footer::decode("f", &bytes[bytes.len() - tail_len..], len, None).unwrap();
    assert_eq!(footer.entry_count, 600);
    assert_eq!(footer.row_count, 300);
    let mut dec = DataFileDecoder::new("f", footer.clone(), None);
    let r = footer.index_range();
    let index = dec
        .decode_index(&bytes[r.start as usize..r.end as usize])
        .unwrap();
    let mut got = Vec::new();
    for h in index.blocks_overlapping(&Span::all()) {
        let r = h.range();
        got.extend(
            dec.decode_block(&h, &bytes[r.start as usize..r.end as usize])
                .unwrap()
                .to_entries(),
        );
    }
    assert_eq!(got, entries);
}

#[test]
fn out_of_order_and_duplicates_are_refused() {
    let mut w =
        DataFileWriter::new("data/1-1.sst", Vec::new(), &DataFileOptions::default()).unwrap();
    w.add(&MvccEntry::put("b", Timestamp::from_wall(5), "x"))
        .unwrap();
    for bad in [
        MvccEntry::put("a", Timestamp::from_wall(9), "x"),
        MvccEntry::put("b", Timestamp::from_wall(5), "y"),
        MvccEntry::put("b", Timestamp::from_wall(6), "y"),
    ] {
        let err = w.add(&bad).unwrap_err();
        assert!(matches!(err, FormatError::OutOfOrder { .. }), "{err}");
        assert!(err.to_string().contains("data/1-1.sst"));
    }
    w.add(&MvccEntry::put("b", Timestamp::from_wall(4), "older"))
        .unwrap();
}

#[test]
fn wrong_key_missing_key_and_plaintext_with_key() {
    let entries = rows(10, 1);
    let (enc, _) = write(&entries, &options(Compression::Zstd(1), true, 4096));
    let (plain, _) = write(&entries, &options(Compression::Zstd(1), false, 4096));
    let other = EncryptionKey::from_bytes([7; 32]);
    let err = verify_data_file("data/9.sst", &enc, Some(&other)).unwrap_err();
    assert!(
        err.to_string()
            .contains("the passphrase does not open this backup"),
        "{err}"
    );
    assert!(matches!(
        verify_data_file("x", &enc, None),
        Err(FormatError::KeyRequired { .. })
    ));
    assert!(matches!(
        verify_data_file("x", &plain, Some(&key())),
        Err(FormatError::UnexpectedPlaintext { .. })
    ));
}

#[test]
fn swapped_blocks_are_detected_in_encrypted_files() {
    // Two blocks of identical length, swapped: crc32c still matches, GCM must not.
    let entries: Vec<MvccEntry> = (0..2)
        .map(|i| MvccEntry::put(format!("k{i}"), Timestamp::from_wall(1), "v".repeat(100)))
        .collect();
    let (bytes, _) = write(&entries, &options(Compression::None, true, 1));
    let mut r =
        DataFileReader::open("f", bytes.len() as u64, fetcher(&bytes), Some(&key())).unwrap();
    let blocks = r.index().blocks.clone();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].len, blocks[1].len);
    let _ = r.verify().unwrap();
    let (a, b) = (blocks[0].range(), blocks[1].range());
    let mut swapped = bytes.clone();
    swapped[a.start as usize..a.end as usize]
        .copy_from_slice(&bytes[b.start as usize..b.end as usize]);
    swapped[b.start as usize..b.end as usize]
        .copy_from_slice(&bytes[a.start as usize..a.end as usize]);
    let err = verify_data_file("f", &swapped, Some(&key())).unwrap_err();
    assert!(
        matches!(err, FormatError::AuthenticationFailed { .. }),
        "{err}"
    );
}

/// Every single-byte flip and every truncation of a small file is an error naming it.
#[test]
fn every_flip_and_cut_is_detected() {
    let entries: Vec<MvccEntry> = rows(6, 2)
        .into_iter()
        .chain([MvccEntry::tombstone(
            "/Table/99/1/z",
            Timestamp::from_wall(3),
        )])
        .collect();
    for (compression, encrypted) in [
        (Compression::None, false),
        (Compression::Zstd(1), false),
        (Compression::Zstd(1), true),
    ] {
        let opts = options(compression, encrypted, 200);
        let (bytes, _) = write(&entries, &opts);
        let k = opts.encryption.as_ref();
        assert_eq!(read_span(&bytes, &Span::all(), k), entries);
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                match verify_data_file("data/7-3.sst", &bad, k) {
                    Err(e) => assert_eq!(e.file(), Some("data/7-3.sst"), "{e}"),
                    Ok(v) => panic!("flip at {i} went unnoticed: {v:?}"),
                }
            }
        }
        for n in 0..bytes.len() {
            let err = verify_data_file("data/7-3.sst", &bytes[..n], k).unwrap_err();
            assert_eq!(err.file(), Some("data/7-3.sst"), "{err}");
        }
    }
}

#[test]
fn empty_file_round_trips() {
    let (bytes, summary) = write(&[], &DataFileOptions::default());
    assert_eq!(summary.entry_count, 0);
    assert!(summary.span.is_empty());
    assert_eq!(verify_data_file("e", &bytes, None).unwrap().entry_count, 0);
}

/// An opener that keeps files in memory.
#[derive(Default)]
struct MemFiles {
    next: u32,
    files: Vec<(String, Vec<u8>)>,
}

impl FileOpener for MemFiles {
    type Writer = Vec<u8>;
    fn open(&mut self) -> Result<(String, Vec<u8>), FormatError> {
        self.next += 1;
        Ok((
            backup_format::paths::data_file_name(1, u64::from(self.next)),
            Vec::new(),
        ))
    }
    fn close(&mut self, w: Vec<u8>, s: &FileSummary) -> Result<(), FormatError> {
        assert_eq!(s.stored_bytes, w.len() as u64);
        self.files.push((s.name.clone(), w));
        Ok(())
    }
}

#[test]
fn rolling_splits_at_target_size_never_inside_a_key() {
    // Many revisions per key so that the target is often reached mid-key.
    let entries = rows(400, 7);
    let opts = DataFileOptions {
        target_file_size: 8 * 1024,
        block_size: 1024,
        compression: Compression::None,
        ..DataFileOptions::default()
    };
    let mut sink = RollingWriter::new(MemFiles::default(), opts);
    for e in &entries {
        sink.add(e).unwrap();
    }
    let (files, summaries) = sink.finish().unwrap();
    assert!(summaries.len() > 5, "{}", summaries.len());
    let mut all = Vec::new();
    for ((name, bytes), s) in files.files.iter().zip(&summaries) {
        assert_eq!(name, &s.name);
        let got = read_span(bytes, &Span::new(vec![], vec![0xff]), None);
        // Each file holds whole keys: 7 revisions each.
        assert_eq!(got.len() % 7, 0);
        assert_eq!(s.row_count * 7, s.entry_count);
        all.extend(got);
    }
    assert_eq!(all, entries);
    for w in summaries.windows(2) {
        assert!(w[0].span.end <= w[1].span.start, "files overlap");
    }
    // Out of order across a roll is refused.
    let mut sink = RollingWriter::new(
        MemFiles::default(),
        DataFileOptions {
            target_file_size: 1,
            ..DataFileOptions::default()
        },
    );
    sink.add(&MvccEntry::put("b", Timestamp::from_wall(1), "x"))
        .unwrap();
    assert!(matches!(
        sink.add(&MvccEntry::put("a", Timestamp::from_wall(1), "x")),
        Err(FormatError::OutOfOrder { .. })
    ));
}
