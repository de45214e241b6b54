//! Files of format version 1, committed under `tests/fixtures/v1/`, must stay
//! readable: a change that breaks old backups fails here.
//!
//! Regenerate (only when adding a new fixture, never to "fix" this test):
//! `BACKUP_FORMAT_WRITE_FIXTURES=1 cargo test -p backup-format --test fixtures`
//! writes only fixtures that do not exist yet.
#![allow(clippy::unwrap_used)]

use std::io;
use std::ops::Range;
use std::path::PathBuf;

use backup_format::datafile::{Compression, DataFileOptions, DataFileReader, DataFileWriter};
use backup_format::manifest::{
    BackupFile, Manifest, ManifestEncryption, SideFileReader, SideFileWriter, Statistics,
};
use backup_format::{Checkpoint, paths};
use backup_format::{
    Dependency, DependencyKind, Descriptor, DescriptorKind, EncryptionInfo, EncryptionKey,
    MvccEntry, Span, Timestamp,
};

const PASSPHRASE: &[u8] = b"fixture passphrase";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn entries() -> Vec<MvccEntry> {
    let mut out = Vec::new();
    for i in 0..200u32 {
        let key = format!("/Table/104/1/{i:05}");
        for v in 0..(1 + i % 3) {
            let ts = Timestamp::new(
                1_764_000_000_000_000_000 + i64::from(i) * 1000 - i64::from(v),
                v,
            );
            if v == 2 {
                out.push(MvccEntry::tombstone(key.clone(), ts));
            } else {
                out.push(MvccEntry::put(
                    key.clone(),
                    ts,
                    format!("row {i} version {v}: ünïcødé and bytes \u{1}"),
                ));
            }
        }
    }
    out
}

fn data_variants() -> [(&'static str, Compression, bool); 3] {
    [
        ("data/1-1.sst", Compression::None, false),
        ("data/1-2.sst", Compression::Zstd(1), false),
        ("data/1-3.sst", Compression::Zstd(3), true),
    ]
}

fn descriptors() -> Vec<Descriptor> {
    vec![
        Descriptor {
            id: 104,
            kind: DescriptorKind::Database,
            name: "bank".into(),
            parent_id: 0,
            parent_schema_id: 0,
            spans: vec![],
            dependencies: vec![],
            exclude_data_from_backup: false,
            payload: b"db payload".to_vec(),
        },
        Descriptor {
            id: 106,
            kind: DescriptorKind::Table,
            name: "accounts".into(),
            parent_id: 104,
            parent_schema_id: 105,
            spans: vec![Span::prefix(b"/Table/106/")],
            dependencies: vec![Dependency {
                id: 107,
                kind: DependencyKind::Sequence,
            }],
            exclude_data_from_backup: false,
            payload: vec![0, 1, 2, 255],
        },
    ]
}

fn manifest_base() -> Manifest {
    Manifest {
        version: (1, 0),
        id: "8e4f0c1a-backup".into(),
        cluster_id: "cluster-42".into(),
        start_time: Timestamp::ZERO,
        end_time: Timestamp::new(1_764_012_600_000_000_000, 3),
        spans: vec![Span::prefix(b"/Table/104/"), Span::prefix(b"/Table/106/")],
        introduced_spans: vec![Span::prefix(b"/Table/106/")],
        revision_history: true,
        full_cluster: false,
        encryption: None,
        statistics: Statistics {
            rows: 200,
            index_entries: 0,
            bytes: 12_345,
        },
        ..Manifest::default()
    }
}

fn checkpoint() -> Checkpoint {
    Checkpoint {
        job_id: "job-77".into(),
        written_at: Timestamp::new(1_764_012_660_000_000_000, 0),
        completed_spans: vec![Span::prefix(b"/Table/104/")],
        files: vec![BackupFile {
            path: "data/1-1.sst".into(),
            span: Span::new(*b"/Table/104/1/00000", *b"/Table/104/1/00199\0"),
            entry_count: 400,
            row_count: 200,
            raw_bytes: 20_000,
            stored_bytes: 27_703,
            checksum: 0x1234_5678,
            locality: "region=eu".into(),
            min_ts: Timestamp::new(1, 0),
            max_ts: Timestamp::new(2, 1),
        }],
        delta: true,
    }
}

/// Writes the checkpoint fixtures (added after the first batch), with the
/// key of the committed ENCRYPTION-INFO. Skipped when they exist.
fn write_checkpoint_fixtures() {
    let d = dir();
    if d.join("checkpoint").exists() {
        return;
    }
    let info = EncryptionInfo::decode("E", &read(paths::ENCRYPTION_INFO)).unwrap();
    let key = info.derive_key("E", PASSPHRASE).unwrap();
    std::fs::write(d.join("checkpoint"), checkpoint().encode(None).unwrap()).unwrap();
    std::fs::write(
        d.join("encrypted/checkpoint"),
        checkpoint().encode(Some(&key)).unwrap(),
    )
    .unwrap();
}

fn fetcher(bytes: &[u8]) -> impl FnMut(Range<u64>) -> io::Result<Vec<u8>> + '_ {
    |r: Range<u64>| Ok(bytes[r.start as usize..r.end as usize].to_vec())
}

/// Writes the fixtures of the first batch (data files, ENCRYPTION-INFO, manifests).
/// Skipped when they exist: committed fixtures are never rewritten.
fn write_fixtures() {
    let d = dir();
    if d.join(paths::ENCRYPTION_INFO).exists() {
        return;
    }
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::create_dir_all(d.join("encrypted")).unwrap();
    let (info, key) = EncryptionInfo::generate(PASSPHRASE).unwrap();
    std::fs::write(d.join(paths::ENCRYPTION_INFO), info.encode().unwrap()).unwrap();
    let mut files = Vec::new();
    for (name, compression, encrypted) in data_variants() {
        let opts = DataFileOptions {
            block_size: 2048,
            compression,
            encryption: encrypted.then(|| key.clone()),
            ..DataFileOptions::default()
        };
        let mut w = DataFileWriter::new(name, Vec::new(), &opts).unwrap();
        for e in entries() {
            w.add(&e).unwrap();
        }
        let (bytes, summary) = w.finish().unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
        files.push(BackupFile::from_summary(&summary, "region=eu"));
    }
    // Same span for all three: sorted by path.
    for (sub, k) in [("", None), ("encrypted/", Some(&key))] {
        let mut fw = SideFileWriter::new(paths::FILES_SIDE_FILE, Vec::new(), k).unwrap();
        for f in files.clone() {
            fw.push(f).unwrap();
        }
        let (fbytes, fref) = fw.finish().unwrap();
        let mut dw = SideFileWriter::new(paths::DESCRIPTORS_SIDE_FILE, Vec::new(), k).unwrap();
        for x in descriptors() {
            dw.push(x).unwrap();
        }
        let (dbytes, dref) = dw.finish().unwrap();
        let m = Manifest {
            files: fref,
            descriptors: dref,
            encryption: k.map(|k| ManifestEncryption {
                kdf: info.kdf.clone(),
                key_check: k.key_check(),
            }),
            ..manifest_base()
        };
        let enc = m.encode(k).unwrap();
        std::fs::write(d.join(format!("{sub}{}", paths::FILES_SIDE_FILE)), fbytes).unwrap();
        std::fs::write(
            d.join(format!("{sub}{}", paths::DESCRIPTORS_SIDE_FILE)),
            dbytes,
        )
        .unwrap();
        std::fs::write(
            d.join(format!("{sub}{}", paths::BACKUP_MANIFEST)),
            enc.manifest,
        )
        .unwrap();
        std::fs::write(
            d.join(format!("{sub}{}", paths::BACKUP_MANIFEST_CHECKSUM)),
            enc.checksum,
        )
        .unwrap();
    }
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(dir().join(rel))
        .unwrap_or_else(|e| panic!("fixture {rel} is missing ({e}); it must be committed"))
}

#[test]
fn version_1_fixtures_still_read() {
    if std::env::var_os("BACKUP_FORMAT_WRITE_FIXTURES").is_some() {
        write_fixtures();
        write_checkpoint_fixtures();
    }
    let info =
        EncryptionInfo::decode(paths::ENCRYPTION_INFO, &read(paths::ENCRYPTION_INFO)).unwrap();
    assert_eq!(info.kdf, "pbkdf2-hmac-sha256");
    assert_eq!(info.iterations, 64_000);
    let key: EncryptionKey = info.derive_key(paths::ENCRYPTION_INFO, PASSPHRASE).unwrap();
    assert!(info.derive_key(paths::ENCRYPTION_INFO, b"not it").is_err());

    let want = entries();
    for (name, _, encrypted) in data_variants() {
        let bytes = read(name);
        let k = encrypted.then_some(&key);
        let mut r = DataFileReader::open(name, bytes.len() as u64, fetcher(&bytes), k).unwrap();
        assert_eq!(r.footer().version, (1, 0));
        let got: Vec<MvccEntry> = r.scan(&Span::all()).map(Result::unwrap).collect();
        assert_eq!(got, want, "{name}");
        let span = Span::new(*b"/Table/104/1/00050", *b"/Table/104/1/00060");
        let part: Vec<MvccEntry> = r.scan(&span).map(Result::unwrap).collect();
        assert_eq!(
            part,
            want.iter()
                .filter(|e| span.contains_key(&e.key))
                .cloned()
                .collect::<Vec<_>>()
        );
        assert_eq!(r.verify().unwrap().entry_count, want.len() as u64);
    }

    for (sub, k) in [("", None), ("encrypted/", Some(&key))] {
        let m = Manifest::decode(
            paths::BACKUP_MANIFEST,
            &read(&format!("{sub}{}", paths::BACKUP_MANIFEST)),
            &read(&format!("{sub}{}", paths::BACKUP_MANIFEST_CHECKSUM)),
            k,
        )
        .unwrap();
        assert_eq!(
            Manifest {
                files: Default::default(),
                descriptors: Default::default(),
                encryption: None,
                ..m.clone()
            },
            manifest_base()
        );
        assert_eq!(m.encryption.is_some(), k.is_some());
        let files: Vec<BackupFile> = SideFileReader::open(
            paths::FILES_SIDE_FILE,
            &read(&format!("{sub}{}", paths::FILES_SIDE_FILE))[..],
            &m.files,
            k,
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
        assert_eq!(files.len(), 3);
        for (f, (name, _, _)) in files.iter().zip(data_variants()) {
            let bytes = read(name);
            assert_eq!(f.path, name);
            assert_eq!(f.stored_bytes, bytes.len() as u64);
            assert_eq!(f.checksum, crc32c::crc32c(&bytes));
            assert_eq!(f.entry_count, want.len() as u64);
            assert_eq!(f.row_count, 200);
            assert_eq!(f.locality, "region=eu");
        }
        let descs: Vec<Descriptor> = SideFileReader::open(
            paths::DESCRIPTORS_SIDE_FILE,
            &read(&format!("{sub}{}", paths::DESCRIPTORS_SIDE_FILE))[..],
            &m.descriptors,
            k,
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
        assert_eq!(descs, descriptors());
        let cp = Checkpoint::decode("checkpoint", &read(&format!("{sub}checkpoint")), k).unwrap();
        assert_eq!(cp, checkpoint());
    }
}
