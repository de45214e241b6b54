//! Property: on the embedded cluster, after a random history of writes,
//! deletes and transactions (committed at once or after other writes,
//! aborted, or left open until a backup pushes them) over three tables, each
//! round ended by a full or an incremental backup (with or without revision
//! history; some full backups after a GC), a restore of the chain `AS OF` a
//! random time equals the cluster's own read of the source tables at that
//! time, or fails with a `RestoreTime` error saying why when the chain cannot
//! restore that time (then nothing restored is visible). A restore without
//! `AS OF` equals the cluster's latest read. The cluster's reads are checked
//! in turn against a model of the history.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backup_exec::restore::DescriptorRewrite;
use backup_exec::{
    BackupJobs, BackupSettings, ExecError, JobStatus, LayerChoice, RestoreJobs, RestoreResult,
    RestoreSettings, RestoreTargets,
};
use backup_format::{DescriptorId, Timestamp};
use e2e::{
    Fixture, ORDERS, RecordingIngest, USERS, index_span, rows_as, table, users_orders_restore,
};
use embedded_cluster::{Cluster, ClusterConfig, ClusterError, Txn, keys};
use proptest::prelude::*;

const URI: &str = "nodelocal://1/props";
/// A third table, written only by the history (no rows loaded).
const ITEMS: DescriptorId = 62;
/// The source tables, in the order restores give them new ids.
const TABLES: [DescriptorId; 3] = [USERS, ORDERS, ITEMS];

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn restores_at_random_times_equal_the_cluster_read_at_those_times(
        rounds in history(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 4),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let fx = Fixture::open(dir.path(), ClusterConfig::default()).unwrap();
        fx.catalog
            .descriptors
            .lock()
            .unwrap()
            .push((Timestamp::from_wall(1), table(ITEMS, "items")));
        let before = fx.cluster.now().unwrap();
        let loaded = fx.load(16, 24, 2).unwrap();
        let mut run = Run::new(&fx, loaded);
        run.times.push(before);
        for round in &rounds {
            for op in &round.ops {
                run.apply(op);
            }
            rt.block_on(run.backup(round));
        }

        let mut next_id = 200;
        // The chain's end, without AS OF: the latest read (nothing is
        // written after the last backup).
        let latest = fx.cluster.now().unwrap();
        let r = rt.block_on(restore(&fx, None, next_id)).unwrap();
        prop_assert_eq!(r.status, JobStatus::Succeeded);
        run.check_read(latest);
        assert_restored(&fx.cluster, latest, next_id, &r);

        let end = run.layers.last().unwrap().end;
        let mut candidates = run.times.clone();
        candidates.extend(run.times.iter().map(Timestamp::next));
        candidates.push(end.next());
        for pick in &picks {
            next_id += 10;
            let at = *pick.get(&candidates);
            let result = rt.block_on(restore(&fx, Some(at), next_id));
            match restorable(&run.layers, at) {
                Ok(()) => {
                    let r = result.unwrap_or_else(|e| panic!("restore as of {at}: {e}"));
                    prop_assert_eq!(r.status, JobStatus::Succeeded);
                    run.check_read(at);
                    assert_restored(&fx.cluster, at, next_id, &r);
                }
                Err(why) => {
                    match result {
                        Err(ExecError::RestoreTime { requested, reason }) => {
                            prop_assert_eq!(requested, at);
                            prop_assert!(reason.contains(why), "as of {}: {}", at, reason);
                        }
                        other => panic!("restore as of {at} should fail ({why}): {other:?}"),
                    }
                    let now = fx.cluster.now().unwrap();
                    for id in next_id..next_id + 3 {
                        prop_assert!(rows_as(&fx.cluster, id, now, id).is_empty());
                    }
                }
            }
        }
    }
}

/// One key of a source table: its index (2 only for `USERS`) and row.
#[derive(Clone, Debug)]
struct Key {
    table: DescriptorId,
    index: u32,
    row: u32,
}

impl Key {
    fn bytes(&self) -> Vec<u8> {
        keys::row_key(self.table, self.index, &self.row.to_be_bytes())
    }
}

/// How a transaction ends.
#[derive(Clone, Copy, Debug)]
enum End {
    Commit,
    Abort,
    /// Left pending while the round's other ops run; committed just
    /// before the round's backup.
    CommitLater,
    /// Left pending: the round's backup pushes it (aborts it and removes its
    /// intents), so a later commit fails.
    LeaveOpen,
}

#[derive(Clone, Debug)]
enum Op {
    Put(Key, u8),
    Delete(Key),
    /// A transaction's writes (`None` deletes), then its end.
    Txn(Vec<(Key, Option<u8>)>, End),
}

/// A round of ops, then a backup (full or not, revision history or not).
#[derive(Clone, Debug)]
struct Round {
    ops: Vec<Op>,
    full: bool,
    revision_history: bool,
    /// Before a full backup: the tables' GC TTL is zero and GC runs now, so
    /// the backup's history starts just above the new GC threshold.
    gc: bool,
}

fn key() -> impl Strategy<Value = Key> {
    let table = prop::sample::select(TABLES.to_vec());
    (table, any::<bool>(), 0u32..10).prop_map(|(table, ix, row)| Key {
        table,
        index: if table == USERS && ix { 2 } else { 1 },
        row,
    })
}

fn op() -> impl Strategy<Value = Op> {
    let end = prop_oneof![
        3 => Just(End::Commit),
        1 => Just(End::Abort),
        1 => Just(End::CommitLater),
        1 => Just(End::LeaveOpen),
    ];
    let write = (key(), prop::option::weighted(0.75, any::<u8>()));
    prop_oneof![
        4 => (key(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => key().prop_map(Op::Delete),
        2 => (prop::collection::vec(write, 1..5), end).prop_map(|(w, e)| Op::Txn(w, e)),
    ]
}

fn history() -> impl Strategy<Value = Vec<Round>> {
    let round = (
        prop::collection::vec(op(), 0..8),
        prop::bool::weighted(0.2),
        any::<bool>(),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(ops, full, revision_history, gc)| Round {
            ops,
            full,
            revision_history,
            gc,
        });
    prop::collection::vec(round, 2..6)
}

fn value(v: u8) -> Vec<u8> {
    format!("value {v} ")
        .repeat(1 + usize::from(v % 5))
        .into_bytes()
}

/// A layer of the newest chain: `(start, end]`, revision history (from
/// `history_start`) or not.
#[derive(Clone, Copy, Debug)]
struct Layer {
    start: Timestamp,
    end: Timestamp,
    revision_history: bool,
    history_start: Timestamp,
}

/// Whether the chain of `layers` can restore `at`; if not, the words the
/// error must contain.
fn restorable(layers: &[Layer], at: Timestamp) -> Result<(), &'static str> {
    let end = layers.last().map_or(Timestamp::ZERO, |l| l.end);
    if at > end {
        return Err("after the end time");
    }
    for l in layers {
        if at == l.end {
            return Ok(());
        }
        if at > l.start && at < l.end {
            return match (l.revision_history, at < l.history_start) {
                (true, false) => Ok(()),
                (true, true) => Err("available only from"),
                (false, _) => Err("without revision_history"),
            };
        }
    }
    Err("before the chain's first backup")
}

/// A history being applied: the times it wrote at, the layers of the newest
/// chain, the transactions still open, and a model of every version written
/// since the fixture's load.
struct Run<'a> {
    fx: &'a Fixture,
    times: Vec<Timestamp>,
    layers: Vec<Layer>,
    open: Vec<OpenTxn>,
    /// When the fixture's load ended: the model starts there.
    loaded: Timestamp,
    /// Each key's versions since `loaded` (`None` deletes), oldest first.
    model: BTreeMap<Vec<u8>, Versions>,
}

/// A key's versions: (time, value or `None` for a delete), oldest first.
type Versions = Vec<(Timestamp, Option<Vec<u8>>)>;

/// A transaction not yet ended, with the writes it made.
struct OpenTxn {
    txn: Txn,
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    commit_at_round_end: bool,
}

impl<'a> Run<'a> {
    fn new(fx: &'a Fixture, loaded: Timestamp) -> Run<'a> {
        let mut model = BTreeMap::new();
        for t in TABLES {
            for (k, v) in rows_as(&fx.cluster, t, loaded, t) {
                model.insert(k, vec![(loaded, Some(v))]);
            }
        }
        Run {
            fx,
            times: Vec::new(),
            layers: Vec::new(),
            open: Vec::new(),
            loaded,
            model,
        }
    }

    /// Whether an open transaction holds `key`.
    fn locked(&self, key: &[u8]) -> bool {
        self.open
            .iter()
            .any(|o| o.writes.iter().any(|(k, _)| k == key))
    }

    /// Applies `op`; a write to a key an open transaction holds must fail
    /// with a write-intent error, every other write must succeed.
    fn apply(&mut self, op: &Op) {
        let c = &self.fx.cluster;
        match op {
            Op::Put(k, v) => {
                let r = c.put(&k.bytes(), &value(*v));
                if let Some(ts) = self.expect_write(&k.bytes(), r) {
                    self.record(ts, [(k.bytes(), Some(value(*v)))]);
                }
            }
            Op::Delete(k) => {
                let r = c.delete(&k.bytes());
                if let Some(ts) = self.expect_write(&k.bytes(), r) {
                    self.record(ts, [(k.bytes(), None)]);
                }
            }
            Op::Txn(writes, end) => {
                let txn = c.begin().unwrap();
                let mut done = Vec::new();
                for (k, v) in writes {
                    let (key, v) = (k.bytes(), v.map(value));
                    let r = match &v {
                        Some(v) => txn.put(&key, v),
                        None => txn.delete(&key),
                    };
                    if self.expect_write(&key, r).is_some() {
                        done.push((key, v));
                    }
                }
                match end {
                    End::Commit => {
                        let ts = txn.commit().unwrap();
                        self.record(ts, done);
                    }
                    End::Abort => {
                        txn.abort().unwrap();
                        self.times.push(c.now().unwrap());
                    }
                    End::CommitLater | End::LeaveOpen => self.open.push(OpenTxn {
                        txn,
                        writes: done,
                        commit_at_round_end: matches!(end, End::CommitLater),
                    }),
                }
            }
        }
    }

    /// Checks a write's result: an error exactly when an open transaction
    /// holds the key; `Some` on success.
    fn expect_write<T: std::fmt::Debug>(
        &self,
        key: &[u8],
        r: Result<T, ClusterError>,
    ) -> Option<T> {
        match (self.locked(key), r) {
            (false, Ok(t)) => Some(t),
            (true, Err(ClusterError::WriteIntent { key: k, .. })) => {
                assert_eq!(k, key);
                None
            }
            (locked, r) => panic!("write of {key:?} (held by an open txn: {locked}): {r:?}"),
        }
    }

    /// Notes writes that became visible at `ts` (the later of two writes
    /// to one key wins, as in a transaction).
    fn record(
        &mut self,
        ts: Timestamp,
        writes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    ) {
        self.times.push(ts);
        let last: BTreeMap<_, _> = writes.into_iter().collect();
        for (k, v) in last {
            self.model.entry(k).or_default().push((ts, v));
        }
    }

    /// A backup of the three tables ending now. Transactions to commit at
    /// the round's end commit first; each one left open was pushed by the
    /// backup (if it wrote an intent) and cannot commit after it.
    async fn backup(&mut self, round: &Round) {
        for o in std::mem::take(&mut self.open) {
            match o.commit_at_round_end {
                true => {
                    let ts = o.txn.commit().unwrap();
                    self.record(ts, o.writes);
                }
                false => self.open.push(o),
            }
        }
        let fx = self.fx;
        let spans = TABLES.map(keys::table_span);
        let full = round.full || self.layers.is_empty();
        let mut history_start = self.layers.last().map_or(Timestamp::ZERO, |l| l.end);
        if full && round.gc {
            for t in TABLES {
                fx.cluster.set_gc_ttl(t, Duration::ZERO).unwrap();
            }
            fx.cluster.run_gc_at(fx.cluster.now().unwrap()).unwrap();
        }
        if full {
            let threshold = spans.iter().map(|s| fx.cluster.gc_threshold(s)).max();
            history_start = threshold
                .filter(|t| !t.is_zero())
                .map_or(Timestamp::ZERO, |t| t.next());
        }
        // Layer directories are named in hundredths of a second.
        tokio::time::sleep(Duration::from_millis(15)).await;
        let end = fx.cluster.now().unwrap();
        let layer = match full {
            true => LayerChoice::NewFull,
            false => LayerChoice::Latest,
        };
        let mut spec = fx.spec(URI, end, layer);
        spec.description = format!("BACKUP TABLE users, orders, items INTO '{URI}'");
        spec.descriptors.push(table(ITEMS, "items"));
        spec.spans = spans.to_vec();
        spec.revision_history = round.revision_history;
        let jobs = BackupJobs::new(fx.host(), BackupSettings::for_tests());
        jobs.backup(spec).await.unwrap();
        if full {
            self.layers.clear();
        }
        let start = self.layers.last().map_or(Timestamp::ZERO, |l| l.end);
        self.layers.push(Layer {
            start,
            end,
            revision_history: round.revision_history,
            history_start,
        });
        self.times.push(end);
        for o in self.open.drain(..) {
            match (o.writes.is_empty(), o.txn.commit()) {
                (false, Err(ClusterError::TxnAborted(_))) => {}
                // A transaction without intents is not in the backup's way.
                (true, Ok(ts)) => self.times.push(ts),
                (pushed, r) => panic!("commit after the backup (pushed: {pushed}): {r:?}"),
            }
        }
    }

    /// Asserts the cluster reads at `at` what the model says (times before
    /// the fixture's load are not modelled).
    fn check_read(&self, at: Timestamp) {
        if at < self.loaded {
            return;
        }
        let want: BTreeMap<Vec<u8>, Vec<u8>> = self
            .model
            .iter()
            .filter_map(|(k, versions)| {
                let (_, v) = versions.iter().rev().find(|(ts, _)| *ts <= at)?;
                Some((k.clone(), v.clone()?))
            })
            .collect();
        let mut got = BTreeMap::new();
        for t in TABLES {
            got.extend(rows_as(&self.fx.cluster, t, at, t));
        }
        if got != want {
            panic!("the cluster's read at {at}: {}", difference(&got, &want));
        }
    }
}

/// The three tables restored from the latest chain (as of `as_of`) as
/// tables `new`, `new + 1` and `new + 2`.
async fn restore(
    fx: &Fixture,
    as_of: Option<Timestamp>,
    new: DescriptorId,
) -> Result<RestoreResult, ExecError> {
    let mut spec = users_orders_restore(URI, as_of, new);
    spec.description = format!("RESTORE TABLE users, orders, items FROM LATEST IN '{URI}'");
    spec.targets = RestoreTargets::Tables(TABLES.to_vec());
    let items = DescriptorRewrite {
        new_id: new + 2,
        ..DescriptorRewrite::default()
    };
    spec.rewrites.insert(ITEMS, items);
    let ingest = Arc::new(RecordingIngest::new(fx.cluster.clone()));
    let jobs = RestoreJobs::new(fx.host(), ingest.clone(), RestoreSettings::for_tests());
    let r = jobs.restore(spec).await;
    let published: Vec<DescriptorId> = ingest
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    match &r {
        Ok(_) => assert_eq!(published, vec![new, new + 1, new + 2]),
        Err(_) => assert!(published.is_empty(), "published {published:?}"),
    }
    r
}

/// Asserts tables `new..new + 3` hold what the source tables held at `at`,
/// and that the restore counted the secondary index entries of then.
fn assert_restored(c: &Cluster, at: Timestamp, new: DescriptorId, r: &RestoreResult) {
    let now = c.now().unwrap();
    let mut index_entries = 0;
    for (old, new) in TABLES.into_iter().zip(new..) {
        let want = rows_as(c, old, at, new);
        let got = rows_as(c, new, now, new);
        if got != want {
            panic!(
                "table {old} restored as {new} as of {at}: {}",
                difference(&got, &want)
            );
        }
        let ix = index_span(new, 2);
        index_entries += want.keys().filter(|k| ix.contains_key(k)).count() as u64;
    }
    assert_eq!(r.index_entries, index_entries, "index entries as of {at}");
}

/// The first key where `got` and `want` differ, for a short message.
fn difference(got: &BTreeMap<Vec<u8>, Vec<u8>>, want: &BTreeMap<Vec<u8>, Vec<u8>>) -> String {
    let keys = got.keys().chain(want.keys());
    match keys.filter(|k| got.get(*k) != want.get(*k)).min() {
        Some(k) => format!(
            "{} rows, {} wanted; first difference at {k:?}: {:?}, wanted {:?}",
            got.len(),
            want.len(),
            got.get(k).map(|v| String::from_utf8_lossy(v)),
            want.get(k).map(|v| String::from_utf8_lossy(v)),
        ),
        None => "equal".into(),
    }
}
