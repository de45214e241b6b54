//! Manifests, side files and ENCRYPTION-INFO: round trips, streaming, corruption.
#![allow(clippy::unwrap_used)]

use std::io::{self, Read, Write};

use backup_format::manifest::{
    BackupFile, Manifest, ManifestEncryption, SideFileReader, SideFileRef, SideFileWriter,
    Statistics,
};
use backup_format::{
    Dependency, DependencyKind, Descriptor, DescriptorKind, EncryptionInfo, EncryptionKey,
    FormatError, Span, Timestamp,
};
use proptest::prelude::*;

fn key() -> EncryptionKey {
    EncryptionKey::from_bytes([9; 32])
}

fn arb_span() -> impl Strategy<Value = Span> {
    (
        proptest::collection::vec(any::<u8>(), 0..6),
        proptest::collection::vec(any::<u8>(), 0..6),
    )
        .prop_map(|(a, b)| Span::new(a, b))
}

fn arb_ts() -> impl Strategy<Value = Timestamp> {
    (0i64..i64::MAX, any::<u32>()).prop_map(|(w, l)| Timestamp::new(w, l))
}

fn arb_manifest() -> impl Strategy<Value = Manifest> {
    (
        ("[a-z0-9-]{0,12}", "[a-z0-9-]{0,12}", arb_ts(), arb_ts()),
        (
            proptest::collection::vec(arb_span(), 0..4),
            proptest::collection::vec(arb_span(), 0..3),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(any::<[u8; 8]>()),
        ),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>(),
        ),
    )
        .prop_map(
            |((id, cluster, start, end), (spans, intro), (rev, full, enc), (r, i, b, c, sha))| {
                Manifest {
                    version: (1, backup_format::manifest::MANIFEST_MINOR),
                    id,
                    cluster_id: cluster,
                    start_time: start,
                    end_time: end,
                    spans,
                    introduced_spans: intro,
                    revision_history: rev,
                    full_cluster: full,
                    encryption: enc.map(|key_check| ManifestEncryption {
                        kdf: "pbkdf2-hmac-sha256".into(),
                        key_check,
                    }),
                    statistics: Statistics {
                        rows: r,
                        index_entries: i,
                        bytes: b,
                    },
                    files: SideFileRef {
                        name: "BACKUP_METADATA-FILES".into(),
                        count: c,
                        stored_bytes: b,
                        sha256: sha,
                    },
                    descriptors: SideFileRef::default(),
                    revisions: None,
                    revision_start: Timestamp::ZERO,
                }
            },
        )
}

fn file(i: u64) -> BackupFile {
    BackupFile {
        path: format!("data/{}-{}.sst", i % 3 + 1, i),
        span: Span::new(format!("/Table/{:09}", i), format!("/Table/{:09}", i + 1)),
        entry_count: i * 3 + 1,
        row_count: i + 1,
        raw_bytes: i * 1000,
        stored_bytes: i * 333,
        checksum: i as u32 ^ 0xdead_beef,
        locality: if i.is_multiple_of(2) {
            String::new()
        } else {
            "region=us-east1".into()
        },
        min_ts: Timestamp::new(i as i64, 0),
        max_ts: Timestamp::new(i as i64 + 10, 2),
    }
}

fn descriptor(id: u64) -> Descriptor {
    Descriptor {
        id,
        kind: [
            DescriptorKind::Database,
            DescriptorKind::Table,
            DescriptorKind::Type,
        ][id as usize % 3],
        name: format!("obj{id}"),
        parent_id: id / 2,
        parent_schema_id: id / 3,
        spans: vec![Span::prefix(format!("/Table/{id}/").as_bytes())],
        dependencies: vec![Dependency {
            id: id + 1,
            kind: DependencyKind::ForeignKey,
        }],
        exclude_data_from_backup: id.is_multiple_of(5),
        payload: vec![id as u8; (id % 7) as usize],
    }
}

fn write_files(
    files: impl IntoIterator<Item = BackupFile>,
    k: Option<&EncryptionKey>,
) -> (Vec<u8>, SideFileRef) {
    let mut w = SideFileWriter::new("BACKUP_METADATA-FILES", Vec::new(), k).unwrap();
    for f in files {
        w.push(f).unwrap();
    }
    w.finish().unwrap()
}

fn read_all<T: backup_format::manifest::SideRecord>(
    bytes: &[u8],
    r: &SideFileRef,
    k: Option<&EncryptionKey>,
) -> Result<Vec<T>, FormatError> {
    SideFileReader::<_, T>::open("BACKUP_METADATA-FILES", bytes, r, k)?.collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn manifest_round_trip(m in arb_manifest(), encrypted: bool) {
        let k = encrypted.then(key);
        let enc = m.encode(k.as_ref()).unwrap();
        let back = Manifest::decode("BACKUP_MANIFEST", &enc.manifest, &enc.checksum, k.as_ref()).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn side_files_round_trip(n in 0u64..400, encrypted: bool) {
        let k = encrypted.then(key);
        let files: Vec<BackupFile> = (0..n).map(file).collect();
        let (bytes, r) = write_files(files.clone(), k.as_ref());
        prop_assert_eq!(r.count, n);
        prop_assert_eq!(read_all::<BackupFile>(&bytes, &r, k.as_ref()).unwrap(), files);
        let descs: Vec<Descriptor> = (0..n).map(descriptor).collect();
        let mut w = SideFileWriter::new("D", Vec::new(), k.as_ref()).unwrap();
        for d in descs.clone() {
            w.push(d).unwrap();
        }
        let (bytes, r) = w.finish().unwrap();
        prop_assert_eq!(read_all::<Descriptor>(&bytes, &r, k.as_ref()).unwrap(), descs);
    }
}

#[test]
fn side_file_order_is_enforced() {
    let mut w = SideFileWriter::new("F", Vec::new(), None).unwrap();
    w.push(file(2)).unwrap();
    assert!(matches!(
        w.push(file(1)),
        Err(FormatError::OutOfOrder { .. })
    ));
    assert!(matches!(
        w.push(file(2)),
        Err(FormatError::OutOfOrder { .. })
    ));
}

#[test]
fn wrong_key_and_missing_key() {
    let m = Manifest {
        id: "x".into(),
        ..Manifest::default()
    };
    let enc = m.encode(Some(&key())).unwrap();
    let err = Manifest::decode(
        "B/BACKUP_MANIFEST",
        &enc.manifest,
        &enc.checksum,
        Some(&EncryptionKey::from_bytes([1; 32])),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("the passphrase does not open this backup"),
        "{err}"
    );
    assert!(matches!(
        Manifest::decode("B", &enc.manifest, &enc.checksum, None),
        Err(FormatError::KeyRequired { .. })
    ));
    let (bytes, r) = write_files((0..3).map(file), Some(&key()));
    let err =
        read_all::<BackupFile>(&bytes, &r, Some(&EncryptionKey::from_bytes([1; 32]))).unwrap_err();
    assert!(matches!(err, FormatError::WrongPassphrase { .. }), "{err}");
}

/// Flips every byte and cuts at every length of a small manifest, checksum
/// file, side file and ENCRYPTION-INFO; every one must be an error naming the file.
#[test]
fn every_flip_and_cut_is_detected() {
    let m = Manifest {
        id: "b".into(),
        spans: vec![Span::new(*b"a", *b"z")],
        end_time: Timestamp::new(7, 0),
        ..Manifest::default()
    };
    for k in [None, Some(key())] {
        let enc = m.encode(k.as_ref()).unwrap();
        for i in 0..enc.manifest.len() {
            let mut bad = enc.manifest.clone();
            bad[i] ^= 0x04;
            let err =
                Manifest::decode("L/BACKUP_MANIFEST", &bad, &enc.checksum, k.as_ref()).unwrap_err();
            assert_eq!(err.file(), Some("L/BACKUP_MANIFEST"));
            let err = Manifest::decode(
                "L/BACKUP_MANIFEST",
                &enc.manifest[..i],
                &enc.checksum,
                k.as_ref(),
            )
            .unwrap_err();
            assert_eq!(err.file(), Some("L/BACKUP_MANIFEST"));
        }
        for i in 0..enc.checksum.len() {
            let mut bad = enc.checksum.clone();
            bad[i] ^= 0x04;
            assert!(
                Manifest::decode("L/BACKUP_MANIFEST", &enc.manifest, &bad, k.as_ref()).is_err()
            );
            assert!(
                Manifest::decode(
                    "L/BACKUP_MANIFEST",
                    &enc.manifest,
                    &enc.checksum[..i],
                    k.as_ref()
                )
                .is_err()
            );
        }
        let (bytes, r) = write_files((0..4).map(file), k.as_ref());
        let good: Vec<BackupFile> = (0..4).map(file).collect();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            let err = read_all::<BackupFile>(&bad, &r, k.as_ref()).unwrap_err();
            assert_eq!(err.file(), Some("BACKUP_METADATA-FILES"), "{err}");
            let err = read_all::<BackupFile>(&bytes[..i], &r, k.as_ref()).unwrap_err();
            assert_eq!(err.file(), Some("BACKUP_METADATA-FILES"), "{err}");
            // A reader that stops at the first error never yields a changed record.
            let mut reader =
                match SideFileReader::<_, BackupFile>::open("F", &bad[..], &r, k.as_ref()) {
                    Ok(reader) => reader,
                    Err(_) => continue,
                };
            for (n, rec) in (&mut reader).enumerate() {
                match rec {
                    Ok(rec) => assert_eq!(rec, good[n], "flip at {i} changed a record"),
                    Err(_) => break,
                }
            }
        }
    }
    let (info, _) = EncryptionInfo::generate_with_iterations(b"pw", 1000).unwrap();
    let bytes = info.encode().unwrap();
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        assert_eq!(
            EncryptionInfo::decode("ENCRYPTION-INFO", &bad)
                .unwrap_err()
                .file(),
            Some("ENCRYPTION-INFO")
        );
        assert!(EncryptionInfo::decode("ENCRYPTION-INFO", &bytes[..i]).is_err());
    }
}

/// Writes records to a file on disk and counts bytes.
struct CountingFile(io::BufWriter<std::fs::File>, u64);

impl Write for CountingFile {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.0.write(b)?;
        self.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// One million file entries go through the writer and reader one at a time:
/// neither side collects them, and each holds at most about one 64 KiB chunk.
#[test]
fn a_million_files_stream_in_bounded_memory() {
    const N: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("BACKUP_METADATA-FILES");
    let out = CountingFile(io::BufWriter::new(std::fs::File::create(&path).unwrap()), 0);
    let mut w = SideFileWriter::new("BACKUP_METADATA-FILES", out, None).unwrap();
    let mut max_writer_buffer = 0;
    for i in 0..N {
        w.push(file(i)).unwrap();
        max_writer_buffer = max_writer_buffer.max(w.buffered_bytes());
    }
    let (out, r) = w.finish().unwrap();
    assert_eq!(r.count, N);
    assert!(
        out.1 > 50_000_000,
        "the file list is large: {} bytes",
        out.1
    );
    drop(out);
    let input = io::BufReader::new(std::fs::File::open(&path).unwrap());
    let mut reader =
        SideFileReader::<_, BackupFile>::open("BACKUP_METADATA-FILES", input, &r, None).unwrap();
    let mut n = 0u64;
    let mut rows = 0u64;
    for f in &mut reader {
        let f = f.unwrap();
        rows += f.row_count;
        n += 1;
    }
    assert_eq!(n, N);
    assert_eq!(rows, N * (N + 1) / 2);
    assert!(
        max_writer_buffer <= 192 * 1024,
        "writer held {max_writer_buffer} bytes"
    );
    assert!(
        reader.max_buffered_bytes() <= 192 * 1024,
        "reader held {} bytes",
        reader.max_buffered_bytes()
    );
    let _ = io::empty().read(&mut [0u8; 1]);
}
