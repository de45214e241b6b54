//! MVCC entries: one version of one key.
//!
//! An entry is a user key, the timestamp of the write, and either a value or
//! a tombstone (a delete). The order of entries everywhere in a backup — in
//! data files, in export chunks, in restore merges — is key ascending, then
//! timestamp **descending**, so the newest version of a key comes first.

use std::cmp::Ordering;

use crate::Timestamp;

/// One version of one key.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct MvccEntry {
    /// The user key.
    pub key: Vec<u8>,
    /// When this version was written.
    pub ts: Timestamp,
    /// The value, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

impl MvccEntry {
    /// A value written at `ts`.
    pub fn put(key: impl Into<Vec<u8>>, ts: Timestamp, value: impl Into<Vec<u8>>) -> MvccEntry {
        MvccEntry {
            key: key.into(),
            ts,
            value: Some(value.into()),
        }
    }

    /// A delete at `ts`.
    pub fn tombstone(key: impl Into<Vec<u8>>, ts: Timestamp) -> MvccEntry {
        MvccEntry {
            key: key.into(),
            ts,
            value: None,
        }
    }

    /// Whether this version deletes the key.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Bytes of key and value, the size measure used for file and chunk targets.
    pub fn size(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, Vec::len) + Timestamp::ENCODED_LEN
    }

    /// The MVCC order of `(key, ts)`: key ascending, then timestamp descending.
    pub fn mvcc_cmp(&self, other: &MvccEntry) -> Ordering {
        mvcc_order(&self.key, self.ts, &other.key, other.ts)
    }
}

/// The MVCC order of two `(key, ts)` pairs: key ascending, then timestamp descending.
pub fn mvcc_order(a_key: &[u8], a_ts: Timestamp, b_key: &[u8], b_ts: Timestamp) -> Ordering {
    a_key.cmp(b_key).then_with(|| b_ts.cmp(&a_ts))
}

impl Ord for MvccEntry {
    fn cmp(&self, other: &MvccEntry) -> Ordering {
        self.mvcc_cmp(other)
            .then_with(|| self.value.cmp(&other.value))
    }
}

impl PartialOrd for MvccEntry {
    fn partial_cmp(&self, other: &MvccEntry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_version_first() {
        let mut v = [
            MvccEntry::put("b", Timestamp::from_wall(1), "x"),
            MvccEntry::put("a", Timestamp::from_wall(1), "old"),
            MvccEntry::tombstone("a", Timestamp::from_wall(3)),
            MvccEntry::put("a", Timestamp::from_wall(2), "new"),
        ];
        v.sort();
        let order: Vec<(&[u8], i64)> = v.iter().map(|e| (e.key.as_slice(), e.ts.wall)).collect();
        assert_eq!(
            order,
            vec![
                (&b"a"[..], 3),
                (&b"a"[..], 2),
                (&b"a"[..], 1),
                (&b"b"[..], 1)
            ]
        );
        assert!(v[0].is_tombstone());
    }
}
