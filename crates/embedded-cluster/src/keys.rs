//! The host's key layout, and how keys are stored in the engine.
//!
//! **User keys.** A SQL row of table `T`, index `I`, primary key `pk` lives at
//!
//! ```text
//! 0xF0 | T as u64 big-endian | I as u32 big-endian | pk bytes (order-preserving)
//! ```
//!
//! so all of a table's keys share the 9-byte prefix [`table_prefix`] and sort
//! in id order. Keys below `0xF0` are system keys (catalog, settings: part 2
//! of the cluster). No key starts with `0xFF`, so every key is below
//! [`backup_format::KEY_MAX`]. Table id 0 is never used for a table.
//!
//! **Engine keys.** Every MVCC version is stored at
//! `escape(user key) | 0x00 0x01 | !timestamp` ([`version_key`]), where
//! `escape` doubles each `0x00` as `0x00 0xFF` and `!timestamp` is the bitwise
//! complement of [`Timestamp::to_bytes`]. This keeps user-key order (a key
//! sorts before every key it is a prefix of) and puts a key's newest version
//! first. The time index ([`time_index_key`]) orders writes by
//! `(table id, timestamp, user key)`, so an incremental export reads only
//! what changed in its time window.

use backup_exec::{IdRewrites, KeyRewriter};
use backup_format::{DescriptorId, Span, Timestamp};

/// First byte of every table key.
pub const TABLE_MARKER: u8 = 0xF0;

/// Length of [`table_prefix`].
pub const TABLE_PREFIX_LEN: usize = 9;

/// Terminator that ends an escaped user key inside an engine key.
const TERMINATOR: [u8; 2] = [0x00, 0x01];

/// The prefix shared by every key of table `id`.
pub fn table_prefix(id: DescriptorId) -> Vec<u8> {
    let mut out = Vec::with_capacity(TABLE_PREFIX_LEN);
    out.push(TABLE_MARKER);
    out.extend_from_slice(&id.to_be_bytes());
    out
}

/// The span of every key of table `id`.
pub fn table_span(id: DescriptorId) -> Span {
    Span::new(table_prefix(id), table_prefix(id.saturating_add(1)))
}

/// The prefix of every key of index `index` of table `table`.
pub fn index_prefix(table: DescriptorId, index: u32) -> Vec<u8> {
    let mut out = table_prefix(table);
    out.extend_from_slice(&index.to_be_bytes());
    out
}

/// The key of a row: index prefix then the primary-key bytes.
pub fn row_key(table: DescriptorId, index: u32, pk: &[u8]) -> Vec<u8> {
    let mut out = index_prefix(table, index);
    out.extend_from_slice(pk);
    out
}

/// The table a key belongs to, if it is a table key.
pub fn table_of(key: &[u8]) -> Option<DescriptorId> {
    if key.len() < TABLE_PREFIX_LEN || key[0] != TABLE_MARKER {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&key[1..TABLE_PREFIX_LEN]);
    Some(u64::from_be_bytes(id))
}

/// The tables whose keys a span can hold, when the span lies within table keys
/// (`None` for spans reaching system keys or past the table region).
pub fn tables_in(span: &Span) -> Option<std::ops::RangeInclusive<DescriptorId>> {
    let first = table_of(&span.start)?;
    let last = match table_of(&span.end)? {
        // An end exactly at a table's prefix excludes that table.
        id if span.end.len() == TABLE_PREFIX_LEN => id.checked_sub(1)?,
        id => id,
    };
    (first <= last).then_some(first..=last)
}

/// Appends the order-preserving escape of `key` and its terminator.
pub(crate) fn push_escaped(out: &mut Vec<u8>, key: &[u8]) {
    // Row keys hold many zeros (fixed-width ids): size the output once,
    // then fill it byte by byte.
    let zeros = key.iter().filter(|&&b| b == 0).count();
    if zeros == 0 {
        out.extend_from_slice(key);
    } else {
        let start = out.len();
        out.resize(start + key.len() + zeros, 0xFF);
        let mut at = start;
        for &b in key {
            out[at] = b;
            // After a zero, the 0xFF the resize put there stays.
            at += if b == 0 { 2 } else { 1 };
        }
    }
    out.extend_from_slice(&TERMINATOR);
}

/// The escaped key with its terminator: a lower bound of the key's versions.
pub(crate) fn escaped(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2);
    push_escaped(&mut out, key);
    out
}

/// An exclusive upper bound of the engine keys of `key`'s versions (every
/// version key of `key` is [`escaped`] then a timestamp of fixed length).
pub(crate) fn versions_end(key: &[u8]) -> Vec<u8> {
    let mut out = escaped(key);
    out.extend_from_slice(&[0xFF; Timestamp::ENCODED_LEN + 1]);
    out
}

/// The engine key of the version of `key` written at `ts`.
pub(crate) fn version_key(key: &[u8], ts: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2 + Timestamp::ENCODED_LEN);
    push_version_key(&mut out, key, ts);
    out
}

/// Appends [`version_key`] of `key` at `ts` to `out`.
pub(crate) fn push_version_key(out: &mut Vec<u8>, key: &[u8], ts: Timestamp) {
    push_escaped(out, key);
    out.extend_from_slice(&inverted(ts));
}

/// Splits an engine version key into (escaped key with terminator, timestamp).
pub(crate) fn split_version_key(engine_key: &[u8]) -> Option<(&[u8], Timestamp)> {
    let cut = engine_key.len().checked_sub(Timestamp::ENCODED_LEN)?;
    let (prefix, ts) = engine_key.split_at(cut);
    let mut raw = [0u8; Timestamp::ENCODED_LEN];
    for (o, b) in raw.iter_mut().zip(ts) {
        *o = !b;
    }
    Some((prefix, Timestamp::from_bytes(raw)))
}

/// Decodes an escaped key (with its terminator) back to the user key.
pub(crate) fn unescape(escaped: &[u8]) -> Option<Vec<u8>> {
    let body = escaped.strip_suffix(&TERMINATOR)?;
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        out.push(body[i]);
        if body[i] == 0 {
            if body.get(i + 1) != Some(&0xFF) {
                return None;
            }
            i += 1;
        }
        i += 1;
    }
    Some(out)
}

/// The timestamp's bytes, complemented so that newer sorts first.
fn inverted(ts: Timestamp) -> [u8; Timestamp::ENCODED_LEN] {
    let mut b = ts.to_bytes();
    for x in &mut b {
        *x = !*x;
    }
    b
}

/// The time-index bucket of a key: its table id, or 0 for system keys.
pub(crate) fn bucket_of(key: &[u8]) -> u64 {
    table_of(key).unwrap_or(0)
}

/// The start of a bucket's entries at or after `ts`.
pub(crate) fn time_index_start(bucket: u64, ts: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + Timestamp::ENCODED_LEN);
    out.extend_from_slice(&bucket.to_be_bytes());
    out.extend_from_slice(&ts.to_bytes());
    out
}

/// The time-index key of a version: `(bucket, ts ascending, user key)`.
pub(crate) fn time_index_key(key: &[u8], ts: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + Timestamp::ENCODED_LEN + key.len());
    push_time_index_key(&mut out, key, ts);
    out
}

/// Appends [`time_index_key`] of `key` at `ts` to `out`.
pub(crate) fn push_time_index_key(out: &mut Vec<u8>, key: &[u8], ts: Timestamp) {
    out.extend_from_slice(&bucket_of(key).to_be_bytes());
    out.extend_from_slice(&ts.to_bytes());
    out.extend_from_slice(key);
}

/// Splits a time-index key into (bucket, ts, user key).
pub(crate) fn split_time_index_key(k: &[u8]) -> Option<(u64, Timestamp, &[u8])> {
    if k.len() < 8 + Timestamp::ENCODED_LEN {
        return None;
    }
    let mut bucket = [0u8; 8];
    bucket.copy_from_slice(&k[..8]);
    let mut ts = [0u8; Timestamp::ENCODED_LEN];
    ts.copy_from_slice(&k[8..8 + Timestamp::ENCODED_LEN]);
    Some((
        u64::from_be_bytes(bucket),
        Timestamp::from_bytes(ts),
        &k[8 + Timestamp::ENCODED_LEN..],
    ))
}

/// Rewrites the table id in table keys, after a map of old -> new ids.
#[derive(Clone, Debug)]
pub struct TableKeyRewriter {
    rewrites: IdRewrites,
}

impl TableKeyRewriter {
    /// A rewriter for the given old -> new table ids.
    pub fn new(rewrites: IdRewrites) -> TableKeyRewriter {
        TableKeyRewriter { rewrites }
    }
}

impl KeyRewriter for TableKeyRewriter {
    fn rewrite(&self, key: &[u8]) -> Option<Vec<u8>> {
        let new_id = self.rewrites.get(&table_of(key)?)?;
        let mut out = table_prefix(*new_id);
        out.extend_from_slice(&key[TABLE_PREFIX_LEN..]);
        Some(out)
    }

    /// Overwrites the table id in place: ids are fixed-width, so the key
    /// keeps its length and buffer.
    fn rewrite_in_place(&self, key: &mut Vec<u8>) -> bool {
        let Some(new_id) = table_of(key).and_then(|t| self.rewrites.get(&t)) else {
            return false;
        };
        key[1..TABLE_PREFIX_LEN].copy_from_slice(&new_id.to_be_bytes());
        true
    }

    fn rewrite_span(&self, span: &Span) -> Option<Span> {
        let table = table_of(&span.start)?;
        let start = self.rewrite(&span.start)?;
        // The end is either inside the same table or the next table's prefix.
        let end = if span.end == table_prefix(table.saturating_add(1)) {
            table_prefix(self.rewrites.get(&table)?.saturating_add(1))
        } else if table_of(&span.end) == Some(table) {
            self.rewrite(&span.end)?
        } else {
            return None;
        };
        Some(Span::new(start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rewriter_moves_table_prefix() {
        let rw = TableKeyRewriter::new([(52, 107)].into_iter().collect());
        assert_eq!(
            rw.rewrite(&row_key(52, 1, b"pk")),
            Some(row_key(107, 1, b"pk"))
        );
        assert_eq!(rw.rewrite(&row_key(53, 1, b"pk")), None);
        let mut key = row_key(52, 1, b"pk");
        assert!(rw.rewrite_in_place(&mut key));
        assert_eq!(key, row_key(107, 1, b"pk"));
        let mut other = row_key(53, 1, b"pk");
        assert!(!rw.rewrite_in_place(&mut other));
        assert_eq!(other, row_key(53, 1, b"pk"));
        assert_eq!(rw.rewrite(b"system"), None);
        assert_eq!(rw.rewrite_span(&table_span(52)), Some(table_span(107)));
        let inner = Span::new(row_key(52, 1, b"a"), row_key(52, 1, b"q"));
        assert_eq!(
            rw.rewrite_span(&inner),
            Some(Span::new(row_key(107, 1, b"a"), row_key(107, 1, b"q")))
        );
    }

    #[test]
    fn tables_of_spans() {
        assert_eq!(tables_in(&table_span(7)), Some(7..=7));
        let two = Span::new(table_prefix(7), row_key(8, 1, b"x"));
        assert_eq!(tables_in(&two), Some(7..=8));
        assert_eq!(tables_in(&Span::all()), None);
    }

    proptest! {
        #[test]
        fn version_keys_keep_mvcc_order(
            a in proptest::collection::vec(0u8..4, 0..6), ta in 0i64..50,
            b in proptest::collection::vec(0u8..4, 0..6), tb in 0i64..50,
        ) {
            let (ta, tb) = (Timestamp::from_wall(ta), Timestamp::from_wall(tb));
            let expected = backup_format::mvcc_order(&a, ta, &b, tb);
            prop_assert_eq!(version_key(&a, ta).cmp(&version_key(&b, tb)), expected);
            let vk = version_key(&a, ta);
            let (esc, ts) = split_version_key(&vk).unwrap();
            prop_assert_eq!(ts, ta);
            prop_assert_eq!(unescape(esc).unwrap(), a.clone());
            // The escaped bounds used by scans bracket the key's versions.
            prop_assert!(escaped(&a) <= vk);
        }
    }
}
