//! [`IngestBatch`]: the entries a restore hands to [`Ingest::ingest`](crate::Ingest::ingest),
//! packed into one buffer.
//!
//! A restore moves millions of small rows; giving each its own key and value
//! allocation cost as much CPU as merging and rekeying them. A batch instead
//! appends every key and value to one growing byte buffer and keeps a small
//! fixed-size record per entry, so filling a batch allocates nothing per
//! entry, and a host reads the entries back as borrowed [`EntryRef`]s.

use std::fmt;

use backup_format::datafile::EntryRef;
use backup_format::{MvccEntry, Timestamp};

/// Entries for bulk ingest, packed into one byte buffer.
///
/// The entries keep the order they were pushed in until [`IngestBatch::sort`];
/// a restore pushes them in MVCC order (key ascending, then timestamp
/// descending).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IngestBatch {
    /// Every key and value, one after another.
    bytes: Vec<u8>,
    entries: Vec<Packed>,
}

/// Where one entry's key and value are in [`IngestBatch::bytes`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Packed {
    start: usize,
    key_len: usize,
    /// `None` for a tombstone; the value follows the key.
    value_len: Option<usize>,
    ts: Timestamp,
}

impl IngestBatch {
    /// An empty batch.
    pub fn new() -> IngestBatch {
        IngestBatch::default()
    }

    /// An empty batch with room for `entries` entries of `bytes` bytes of
    /// keys and values in all.
    pub fn with_capacity(entries: usize, bytes: usize) -> IngestBatch {
        IngestBatch {
            bytes: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(entries),
        }
    }

    /// Appends one entry (a tombstone when `value` is `None`).
    pub fn push(&mut self, key: &[u8], ts: Timestamp, value: Option<&[u8]>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        if let Some(v) = value {
            self.bytes.extend_from_slice(v);
        }
        self.entries.push(Packed {
            start,
            key_len: key.len(),
            value_len: value.map(<[u8]>::len),
            ts,
        });
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the batch holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of keys, values and timestamps, as [`MvccEntry::size`] counts
    /// them: the measure of the restore's batch target.
    pub fn size(&self) -> usize {
        self.bytes.len() + self.entries.len() * Timestamp::ENCODED_LEN
    }

    /// The entry at `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<EntryRef<'_>> {
        self.entries.get(i).map(|p| self.entry(p))
    }

    /// The entries in their current order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = EntryRef<'_>> + DoubleEndedIterator {
        self.entries.iter().map(|p| self.entry(p))
    }

    /// Whether the entries are in MVCC order (equal neighbours allowed).
    pub fn is_sorted(&self) -> bool {
        self.entries
            .is_sorted_by(|a, b| self.entry(a).mvcc_cmp(&self.entry(b)).is_le())
    }

    /// Puts the entries in MVCC order (their bytes do not move).
    pub fn sort(&mut self) {
        let bytes = &self.bytes;
        let entry = |p: &Packed| entry_of(bytes, p);
        self.entries
            .sort_unstable_by(|a, b| entry(a).mvcc_cmp(&entry(b)));
    }

    /// Keeps the first of each run of neighbours with the same key and
    /// timestamp (after [`IngestBatch::sort`], one entry per version).
    pub fn dedup_versions(&mut self) {
        let bytes = &self.bytes;
        self.entries
            .dedup_by(|a, b| a.ts == b.ts && entry_of(bytes, a).key == entry_of(bytes, b).key);
    }

    /// Owned copies of the entries, for hosts that want them.
    pub fn to_entries(&self) -> Vec<MvccEntry> {
        self.iter().map(|e| e.to_entry()).collect()
    }

    fn entry(&self, p: &Packed) -> EntryRef<'_> {
        entry_of(&self.bytes, p)
    }
}

/// The entry `p` describes; `p` always lies inside `bytes` (both are only
/// written by [`IngestBatch::push`], which appends them together).
fn entry_of<'a>(bytes: &'a [u8], p: &Packed) -> EntryRef<'a> {
    let key_end = p.start + p.key_len;
    EntryRef {
        key: bytes.get(p.start..key_end).unwrap_or_default(),
        ts: p.ts,
        value: p
            .value_len
            .map(|n| bytes.get(key_end..key_end + n).unwrap_or_default()),
    }
}

impl From<Vec<MvccEntry>> for IngestBatch {
    fn from(entries: Vec<MvccEntry>) -> IngestBatch {
        entries.iter().collect()
    }
}

impl FromIterator<MvccEntry> for IngestBatch {
    fn from_iter<I: IntoIterator<Item = MvccEntry>>(iter: I) -> IngestBatch {
        let mut batch = IngestBatch::new();
        for e in iter {
            batch.push(&e.key, e.ts, e.value.as_deref());
        }
        batch
    }
}

impl<'a> FromIterator<&'a MvccEntry> for IngestBatch {
    fn from_iter<I: IntoIterator<Item = &'a MvccEntry>>(iter: I) -> IngestBatch {
        let mut batch = IngestBatch::new();
        batch.extend(iter);
        batch
    }
}

impl<'a> Extend<&'a MvccEntry> for IngestBatch {
    fn extend<I: IntoIterator<Item = &'a MvccEntry>>(&mut self, iter: I) {
        for e in iter {
            self.push(&e.key, e.ts, e.value.as_deref());
        }
    }
}

impl fmt::Debug for IngestBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entries() -> impl Strategy<Value = Vec<MvccEntry>> {
        let entry = (
            prop::collection::vec(0u8..4, 0..4),
            0i64..4,
            prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
        )
            .prop_map(|(key, wall, value)| MvccEntry {
                key,
                ts: Timestamp::new(wall, 0),
                value,
            });
        prop::collection::vec(entry, 0..40)
    }

    proptest! {
        /// A batch holds exactly the entries pushed, in order; sorting and
        /// deduplicating it agree with doing so on owned entries.
        #[test]
        fn batch_matches_owned_entries(owned in entries()) {
            let mut batch = IngestBatch::from(owned.clone());
            prop_assert_eq!(batch.len(), owned.len());
            prop_assert_eq!(batch.to_entries(), owned.clone());
            prop_assert_eq!(batch.size(), owned.iter().map(MvccEntry::size).sum::<usize>());
            for (i, e) in owned.iter().enumerate() {
                prop_assert_eq!(batch.get(i).map(|r| r.to_entry()), Some(e.clone()));
            }
            prop_assert_eq!(batch.get(owned.len()), None);
            let mut sorted = owned;
            sorted.sort_by(MvccEntry::mvcc_cmp);
            prop_assert_eq!(
                batch.is_sorted(),
                batch.to_entries().is_sorted_by(|a, b| a.mvcc_cmp(b).is_le())
            );
            batch.sort();
            prop_assert!(batch.is_sorted());
            // Same versions in the same order (values of equal versions may swap).
            let versions = |v: &[MvccEntry]| v.iter().map(|e| (e.key.clone(), e.ts)).collect::<Vec<_>>();
            prop_assert_eq!(versions(&batch.to_entries()), versions(&sorted));
            batch.dedup_versions();
            sorted.dedup_by(|a, b| a.key == b.key && a.ts == b.ts);
            prop_assert_eq!(versions(&batch.to_entries()), versions(&sorted));
        }
    }

    #[test]
    fn tombstones_and_empty_values_differ() {
        let mut batch = IngestBatch::new();
        batch.push(b"a", Timestamp::new(2, 0), None);
        batch.push(b"a", Timestamp::new(1, 0), Some(b""));
        assert_eq!(batch.get(0).map(|e| e.value), Some(None));
        assert_eq!(batch.get(1).map(|e| e.value), Some(Some(&b""[..])));
        assert_eq!(format!("{batch:?}").matches("EntryRef").count(), 2);
    }
}
