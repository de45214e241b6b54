//! Index fingerprints (`SHOW EXPERIMENTAL_FINGERPRINTS`): a 64-bit FNV-1a
//! hash over an index's current `(key suffix, value)` pairs in key order.
//!
//! The suffix is the key after the 13-byte table/index prefix, so a table
//! restored under a new id fingerprints equal to its source when (and, up to
//! hash collisions, only when) it holds the same data.

use backup_format::Span;

use crate::error::ClusterError;
use crate::keys;
use crate::mvcc::KeyValue;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// An incremental FNV-1a 64 hasher.
#[derive(Clone, Copy, Debug)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Fnv64 {
        Fnv64(FNV_OFFSET)
    }
}

impl Fnv64 {
    /// Feeds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The span of index `index` of table `table`.
pub fn index_span(table: u64, index: u32) -> Span {
    Span::new(
        keys::index_prefix(table, index),
        keys::index_prefix(table, index.saturating_add(1)),
    )
}

/// The fingerprint of an index's pairs (`None` when the index is empty).
pub fn fingerprint(pairs: &[KeyValue]) -> Option<u64> {
    if pairs.is_empty() {
        return None;
    }
    let mut h = Fnv64::default();
    for (k, v) in pairs {
        let suffix = k.get(keys::TABLE_PREFIX_LEN + 4..).unwrap_or_default();
        h.write(&(suffix.len() as u32).to_le_bytes());
        h.write(suffix);
        h.write(&(v.len() as u32).to_le_bytes());
        h.write(v);
    }
    Some(h.finish())
}

/// Fails if a pair lies outside the index (a guard against a bad span).
pub(crate) fn check_pairs(table: u64, index: u32, pairs: &[KeyValue]) -> Result<(), ClusterError> {
    let prefix = keys::index_prefix(table, index);
    match pairs.iter().find(|(k, _)| !k.starts_with(&prefix)) {
        Some((k, _)) => Err(ClusterError::Corrupt(format!(
            "key {} in the span of index {index} of table {table}",
            backup_format::PrettyKey(k)
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_data_under_another_table_fingerprints_equal() {
        let a = vec![
            (keys::row_key(100, 1, b"k1"), b"v1".to_vec()),
            (keys::row_key(100, 1, b"k2"), b"v2".to_vec()),
        ];
        let b = vec![
            (keys::row_key(200, 1, b"k1"), b"v1".to_vec()),
            (keys::row_key(200, 1, b"k2"), b"v2".to_vec()),
        ];
        let c = vec![
            (keys::row_key(200, 1, b"k1"), b"v1".to_vec()),
            (keys::row_key(200, 1, b"k2"), b"v3".to_vec()),
        ];
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
        // Moving a byte between key and value changes the hash.
        let d = vec![
            (keys::row_key(100, 1, b"k1v"), b"1".to_vec()),
            (keys::row_key(100, 1, b"k2"), b"v2".to_vec()),
        ];
        assert_ne!(fingerprint(&a), fingerprint(&d));
        assert_eq!(fingerprint(&[]), None);
        assert!(check_pairs(100, 1, &a).is_ok());
        assert!(check_pairs(100, 2, &a).is_err());
    }
}
