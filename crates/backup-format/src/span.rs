//! Key spans and sets of spans.
//!
//! A [`Span`] is the half-open key range `[start, end)`; a span whose end is
//! not above its start is empty. A [`SpanSet`] is a set of keys described by
//! spans, kept normalised: sorted, non-empty, non-overlapping and with
//! touching spans merged. Normalisation makes equality of sets structural,
//! and every operation is a linear merge over the two sorted lists.
//!
//! This is the math of incremental backups (spans introduced since the last
//! backup = now − then) and of restore (what no file covers yet).

use std::fmt;

/// The end of the keyspace: no key a host writes sorts at or above it.
pub const KEY_MAX: &[u8] = &[0xff, 0xff];

/// The half-open key range `[start, end)`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// First key in the span.
    pub start: Vec<u8>,
    /// First key after the span.
    pub end: Vec<u8>,
}

impl Span {
    /// The span `[start, end)`.
    pub fn new(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Span {
        Span {
            start: start.into(),
            end: end.into(),
        }
    }

    /// The span holding exactly one key.
    pub fn key(key: &[u8]) -> Span {
        let mut end = key.to_vec();
        end.push(0);
        Span {
            start: key.to_vec(),
            end,
        }
    }

    /// The span of every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Span {
        Span {
            start: prefix.to_vec(),
            end: prefix_end(prefix),
        }
    }

    /// The whole keyspace `["", KEY_MAX)`.
    pub fn all() -> Span {
        Span {
            start: Vec::new(),
            end: KEY_MAX.to_vec(),
        }
    }

    /// Whether the span holds no key.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `key` lies in the span.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.start.as_slice() <= key && key < self.end.as_slice()
    }

    /// Whether every key of `other` lies in this span.
    pub fn contains(&self, other: &Span) -> bool {
        other.is_empty() || (self.start <= other.start && other.end <= self.end)
    }

    /// Whether the two spans share a key.
    pub fn overlaps(&self, other: &Span) -> bool {
        !self.is_empty() && !other.is_empty() && self.start < other.end && other.start < self.end
    }

    /// The keys in both spans, if any.
    pub fn intersect(&self, other: &Span) -> Option<Span> {
        let start = self.start.as_slice().max(other.start.as_slice());
        let end = self.end.as_slice().min(other.end.as_slice());
        (start < end).then(|| Span::new(start, end))
    }
}

/// The smallest key above every key that starts with `prefix`
/// ([`KEY_MAX`] when there is none, i.e. the prefix is empty or all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    KEY_MAX.to_vec()
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", PrettyKey(&self.start), PrettyKey(&self.end))
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Shows a key with printable ASCII as is and other bytes as `\xNN`.
pub struct PrettyKey<'a>(pub &'a [u8]);

impl fmt::Display for PrettyKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &b in self.0 {
            if b.is_ascii_graphic() && b != b'\\' && b != b'"' || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("\"")
    }
}

/// A normalised set of keys: sorted, disjoint, non-touching, non-empty spans.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct SpanSet {
    spans: Vec<Span>,
}

impl SpanSet {
    /// The empty set.
    pub fn new() -> SpanSet {
        SpanSet::default()
    }

    /// The set of all keys in any of `spans`.
    pub fn from_spans(spans: impl IntoIterator<Item = Span>) -> SpanSet {
        let mut spans: Vec<Span> = spans.into_iter().filter(|s| !s.is_empty()).collect();
        spans.sort_by(|a, b| a.start.cmp(&b.start));
        let mut out: Vec<Span> = Vec::with_capacity(spans.len());
        for span in spans {
            match out.last_mut() {
                Some(last) if span.start <= last.end => {
                    if span.end > last.end {
                        last.end = span.end;
                    }
                }
                _ => out.push(span),
            }
        }
        SpanSet { spans: out }
    }

    /// The normalised spans, in key order.
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// Iterates the normalised spans in key order.
    pub fn iter(&self) -> std::slice::Iter<'_, Span> {
        self.spans.iter()
    }

    /// Number of normalised spans.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Adds the keys of `span`.
    pub fn insert(&mut self, span: Span) {
        if span.is_empty() {
            return;
        }
        let spans = std::mem::take(&mut self.spans);
        *self = SpanSet::from_spans(spans.into_iter().chain(std::iter::once(span)));
    }

    /// Whether `key` is in the set.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        let idx = self.spans.partition_point(|s| s.end.as_slice() <= key);
        self.spans.get(idx).is_some_and(|s| s.contains_key(key))
    }

    /// Whether every key of `span` is in the set.
    pub fn covers(&self, span: &Span) -> bool {
        if span.is_empty() {
            return true;
        }
        // Normalised spans never touch, so one span must hold it whole.
        let idx = self.spans.partition_point(|s| s.end <= span.start);
        self.spans.get(idx).is_some_and(|s| s.contains(span))
    }

    /// Whether every key of `other` is in the set.
    pub fn covers_set(&self, other: &SpanSet) -> bool {
        other.subtract(self).is_empty()
    }

    /// Whether any key of `span` is in the set.
    pub fn overlaps(&self, span: &Span) -> bool {
        let idx = self.spans.partition_point(|s| s.end <= span.start);
        self.spans.get(idx).is_some_and(|s| s.overlaps(span))
    }

    /// Keys in either set.
    pub fn union(&self, other: &SpanSet) -> SpanSet {
        SpanSet::from_spans(self.spans.iter().chain(other.spans.iter()).cloned())
    }

    /// Keys in both sets.
    pub fn intersection(&self, other: &SpanSet) -> SpanSet {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.spans.len() && j < other.spans.len() {
            let (a, b) = (&self.spans[i], &other.spans[j]);
            if let Some(x) = a.intersect(b) {
                out.push(x);
            }
            if a.end < b.end {
                i += 1;
            } else {
                j += 1;
            }
        }
        SpanSet::from_spans(out)
    }

    /// Keys in this set and not in `other`.
    pub fn subtract(&self, other: &SpanSet) -> SpanSet {
        let mut out = Vec::new();
        let mut j = 0;
        for span in &self.spans {
            let mut start = span.start.clone();
            // Skip subtrahend spans entirely before this span.
            while j < other.spans.len() && other.spans[j].end <= start {
                j += 1;
            }
            let mut k = j;
            while k < other.spans.len() && other.spans[k].start < span.end {
                let cut = &other.spans[k];
                if cut.start > start {
                    out.push(Span::new(start.clone(), cut.start.clone()));
                }
                if cut.end > start {
                    start = cut.end.clone();
                }
                if start >= span.end {
                    break;
                }
                k += 1;
            }
            if start < span.end {
                out.push(Span::new(start, span.end.clone()));
            }
        }
        SpanSet::from_spans(out)
    }

    /// The parts of `span` the set does not cover.
    pub fn uncovered(&self, span: &Span) -> SpanSet {
        SpanSet::from_spans([span.clone()]).subtract(self)
    }
}

impl FromIterator<Span> for SpanSet {
    fn from_iter<I: IntoIterator<Item = Span>>(iter: I) -> SpanSet {
        SpanSet::from_spans(iter)
    }
}

impl<'a> IntoIterator for &'a SpanSet {
    type Item = &'a Span;
    type IntoIter = std::slice::Iter<'a, Span>;
    fn into_iter(self) -> Self::IntoIter {
        self.spans.iter()
    }
}

impl fmt::Debug for SpanSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.spans.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(a: &[u8], b: &[u8]) -> Span {
        Span::new(a, b)
    }

    #[test]
    fn normalises() {
        let set = SpanSet::from_spans([s(b"c", b"d"), s(b"a", b"b"), s(b"b", b"c"), s(b"x", b"x")]);
        assert_eq!(set.spans(), &[s(b"a", b"d")]);
    }

    #[test]
    fn subtract_and_uncovered() {
        let all = SpanSet::from_spans([s(b"a", b"z")]);
        let done = SpanSet::from_spans([s(b"b", b"c"), s(b"d", b"e")]);
        assert_eq!(
            all.subtract(&done).spans(),
            &[s(b"a", b"b"), s(b"c", b"d"), s(b"e", b"z")]
        );
        assert_eq!(done.uncovered(&s(b"b", b"e")).spans(), &[s(b"c", b"d")]);
        assert!(done.covers(&s(b"b", b"c")));
        assert!(!done.covers(&s(b"b", b"d")));
    }

    #[test]
    fn prefix_end_carries() {
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), KEY_MAX.to_vec());
        assert!(Span::prefix(b"t1").contains_key(b"t1/row"));
        assert!(!Span::prefix(b"t1").contains_key(b"t2"));
    }

    /// Spans over the alphabet 0..6 (one byte); probe keys include two-byte keys
    /// between the bounds, so "touching" and "inside" are both exercised.
    fn arb_span() -> impl Strategy<Value = Span> {
        (0u8..6, 0u8..6).prop_map(|(a, b)| Span::new(vec![a], vec![b]))
    }

    fn arb_set() -> impl Strategy<Value = (Vec<Span>, SpanSet)> {
        proptest::collection::vec(arb_span(), 0..6).prop_map(|v| {
            let set = SpanSet::from_spans(v.clone());
            (v, set)
        })
    }

    fn probes() -> Vec<Vec<u8>> {
        let mut out = vec![vec![]];
        for a in 0u8..7 {
            out.push(vec![a]);
            out.push(vec![a, 0]);
            out.push(vec![a, 0x80]);
        }
        out
    }

    fn naive(spans: &[Span], key: &[u8]) -> bool {
        spans.iter().any(|s| s.contains_key(key))
    }

    proptest! {
        #[test]
        fn set_ops_match_naive_model((a, sa) in arb_set(), (b, sb) in arb_set(), probe in arb_span()) {
            let union = sa.union(&sb);
            let inter = sa.intersection(&sb);
            let diff = sa.subtract(&sb);
            let unc = sa.uncovered(&probe);
            for k in probes() {
                let (ia, ib) = (naive(&a, &k), naive(&b, &k));
                prop_assert_eq!(sa.contains_key(&k), ia);
                prop_assert_eq!(union.contains_key(&k), ia || ib);
                prop_assert_eq!(inter.contains_key(&k), ia && ib);
                prop_assert_eq!(diff.contains_key(&k), ia && !ib);
                prop_assert_eq!(unc.contains_key(&k), probe.contains_key(&k) && !ia);
            }
            // Normal form: sorted, non-empty, non-touching.
            for set in [&union, &inter, &diff, &unc] {
                for w in set.spans().windows(2) {
                    prop_assert!(w[0].end < w[1].start);
                }
                prop_assert!(set.iter().all(|s| !s.is_empty()));
            }
            prop_assert_eq!(sa.covers(&probe), unc.is_empty());
            prop_assert_eq!(sa.overlaps(&probe), !SpanSet::from_spans([probe.clone()]).intersection(&sa).is_empty());
            prop_assert_eq!(sa.covers_set(&sb), sb.subtract(&sa).is_empty());
        }
    }
}
