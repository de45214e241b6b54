//! Descriptor revisions of revision-history layers: the side file's round
//! trip, the manifest fields that name it, the schema as of a time, and
//! manifests written before revisions existed.
#![allow(clippy::unwrap_used)]

use backup_format::manifest::{
    DescriptorRevision, MANIFEST_MINOR, Manifest, REVISIONS_SIDE_FILE, SideFileReader, SideFileRef,
    SideFileWriter, descriptors_at,
};
use backup_format::{Descriptor, DescriptorKind, EncryptionKey, FormatError, Span, Timestamp};
use proptest::prelude::*;

fn descriptor(id: u64, version: u8) -> Descriptor {
    Descriptor {
        id,
        kind: DescriptorKind::Table,
        name: format!("t{id}"),
        parent_id: 100,
        parent_schema_id: 101,
        spans: vec![Span::new(vec![id as u8], vec![id as u8 + 1])],
        dependencies: Vec::new(),
        exclude_data_from_backup: false,
        payload: vec![version; 3],
    }
}

/// Random revision lists: ids 1..6 changing at times 1..40, a third of the
/// changes drops; sorted by (time, id) without duplicates.
fn arb_revisions() -> impl Strategy<Value = Vec<DescriptorRevision>> {
    proptest::collection::btree_map((1i64..40, 1u64..6), (any::<bool>(), any::<u8>()), 0..40)
        .prop_map(|m| {
            m.into_iter()
                .map(|((wall, id), (drop, v))| DescriptorRevision {
                    id,
                    time: Timestamp::new(wall, 0),
                    descriptor: (!drop || v % 3 != 0).then(|| descriptor(id, v)),
                })
                .collect()
        })
}

fn write(revs: &[DescriptorRevision], key: Option<&EncryptionKey>) -> (Vec<u8>, SideFileRef) {
    let mut w = SideFileWriter::new(REVISIONS_SIDE_FILE, Vec::new(), key).unwrap();
    for r in revs {
        w.push(r.clone()).unwrap();
    }
    w.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn revisions_round_trip_and_replay(revs in arb_revisions(), encrypted: bool, at in 0i64..45) {
        let key = encrypted.then(|| EncryptionKey::from_bytes([3; 32]));
        let (bytes, r) = write(&revs, key.as_ref());
        let back: Vec<DescriptorRevision> =
            SideFileReader::open(REVISIONS_SIDE_FILE, &bytes[..], &r, key.as_ref())
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        prop_assert_eq!(&back, &revs);

        // The schema at `at`: per id, the newest revision at or before it.
        let at = Timestamp::new(at, 0);
        let mut want: Vec<Descriptor> = Vec::new();
        for id in 1..6 {
            let newest = revs.iter().rev().find(|r| r.id == id && r.time <= at);
            if let Some(Some(d)) = newest.map(|r| r.descriptor.clone()) {
                want.push(d);
            }
        }
        prop_assert_eq!(descriptors_at(back, at), want);
    }

    #[test]
    fn manifest_names_its_revisions(count: u64, wall in 1i64..i64::MAX, has: bool, encrypted: bool) {
        let key = encrypted.then(|| EncryptionKey::from_bytes([4; 32]));
        let m = Manifest {
            version: (1, MANIFEST_MINOR),
            id: "b".into(),
            end_time: Timestamp::new(wall, 2),
            revision_history: true,
            revisions: has.then(|| SideFileRef {
                name: REVISIONS_SIDE_FILE.into(),
                count,
                stored_bytes: 9,
                sha256: [7; 32],
            }),
            revision_start: Timestamp::new(wall / 2, 1),
            ..Manifest::default()
        };
        let enc = m.encode(key.as_ref()).unwrap();
        let back = Manifest::decode("BACKUP_MANIFEST", &enc.manifest, &enc.checksum, key.as_ref()).unwrap();
        prop_assert_eq!(back, m);
    }
}

#[test]
fn revisions_out_of_order_are_refused() {
    let mut w = SideFileWriter::new(REVISIONS_SIDE_FILE, Vec::new(), None).unwrap();
    let at = |wall, id| DescriptorRevision {
        id,
        time: Timestamp::new(wall, 0),
        descriptor: None,
    };
    w.push(at(5, 2)).unwrap();
    w.push(at(5, 3)).unwrap();
    w.push(at(6, 1)).unwrap();
    let err = w.push(at(6, 1)).unwrap_err();
    assert!(matches!(err, FormatError::OutOfOrder { .. }), "{err}");
    assert!(
        err.to_string().contains("revisions by time then id"),
        "{err}"
    );
}

/// A 1.0 manifest (no revisions, no revision start) still reads, and its
/// history starts at its start time.
#[test]
fn manifests_before_revisions_read() {
    let m = Manifest {
        id: "old".into(),
        start_time: Timestamp::new(10, 0),
        end_time: Timestamp::new(20, 0),
        revision_history: true,
        ..Manifest::default()
    };
    let enc = m.encode(None).unwrap();
    let back = Manifest::decode("BACKUP_MANIFEST", &enc.manifest, &enc.checksum, None).unwrap();
    assert_eq!(back.revisions, None);
    assert_eq!(back.revision_start, Timestamp::ZERO);
    assert_eq!(back.history_start(), Timestamp::new(10, 0));
    let later = Manifest {
        revision_start: Timestamp::new(15, 0),
        ..back
    };
    assert_eq!(later.history_start(), Timestamp::new(15, 0));
}

#[test]
fn a_revision_holding_another_descriptor_is_corrupt() {
    let r = DescriptorRevision {
        id: 1,
        time: Timestamp::new(3, 0),
        descriptor: Some(descriptor(2, 0)),
    };
    let (bytes, reference) = write(&[r], None);
    let err = SideFileReader::<_, DescriptorRevision>::open(
        REVISIONS_SIDE_FILE,
        &bytes[..],
        &reference,
        None,
    )
    .unwrap()
    .next()
    .unwrap()
    .unwrap_err();
    assert!(err.to_string().contains("holds descriptor 2"), "{err}");
}
