//! Property: after random histories of writes and deletes over several
//! tables and a chain of full and incremental backups (some with revision
//! history), a restore at a random time equals the source's own read at that
//! time, or fails with a `RestoreTime` error exactly when the chain cannot
//! restore that time.
#![allow(clippy::unwrap_used)]

mod restore_support;

use backup_exec::{ExecError, LayerChoice, RestoreTargets};
use backup_format::Timestamp;
use proptest::prelude::*;
use restore_support::*;

#[derive(Clone, Debug)]
enum Op {
    Put(u64, u32, u8),
    Delete(u64, u32),
    /// Several writes in a row (the fake source has no transactions: they
    /// get consecutive timestamps).
    Batch(Vec<(u64, u32, Option<u8>)>),
}

fn op() -> impl Strategy<Value = Op> {
    let table = prop::sample::select(vec![51u64, 52, 53]);
    prop_oneof![
        4 => (table.clone(), 0u32..25, any::<u8>()).prop_map(|(t, r, v)| Op::Put(t, r, v)),
        2 => (table.clone(), 0u32..25).prop_map(|(t, r)| Op::Delete(t, r)),
        1 => prop::collection::vec((table, 0u32..25, prop::option::of(any::<u8>())), 1..5).prop_map(Op::Batch),
    ]
}

/// Rounds of writes, each ended by a backup: (ops, full?, revision history?).
fn history() -> impl Strategy<Value = Vec<(Vec<Op>, bool, bool)>> {
    prop::collection::vec(
        (
            prop::collection::vec(op(), 0..12),
            prop::bool::weighted(0.2),
            any::<bool>(),
        ),
        1..5,
    )
}

fn apply(fx: &Fixture, op: &Op, times: &mut Vec<Timestamp>) {
    let value = |v: u8| vec![v; 1 + usize::from(v % 7)];
    match op {
        Op::Put(t, r, v) => times.push(fx.put(*t, *r, Some(&value(*v)))),
        Op::Delete(t, r) => times.push(fx.put(*t, *r, None)),
        Op::Batch(ws) => {
            for (t, r, v) in ws {
                times.push(fx.put(*t, *r, v.map(value).as_deref()));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn restores_equal_the_source_at_the_restore_time(
        rounds in history(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 3),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let fx = Fixture::new();
        let mut times = Vec::new();
        // (start, end, revision history) of the layers of the newest chain.
        let mut layers: Vec<(Timestamp, Timestamp, bool)> = Vec::new();
        for (i, (ops, full, revisions)) in rounds.iter().enumerate() {
            for op in ops {
                apply(&fx, op, &mut times);
            }
            let full = *full || i == 0;
            let layer = if full { LayerChoice::NewFull } else { LayerChoice::Latest };
            let end = rt.block_on(fx.backup(layer, *revisions, None));
            if full {
                layers.clear();
            }
            let start = layers.last().map_or(Timestamp::ZERO, |l| l.1);
            layers.push((start, end, *revisions));
            times.push(end);
        }
        let chain_start = layers[0].1;
        let restorable = |t: Timestamp| {
            layers.iter().any(|&(s, e, rev)| t == e || (rev && t > s && t < e))
        };
        for pick in &picks {
            let t = *pick.get(&times);
            let (ingest, jobs) = target(&fx, fx.storages.clone());
            let r = rt.block_on(jobs.restore(restore_spec(RestoreTargets::Databases(vec![DB]), Some(t))));
            if restorable(t) {
                prop_assert!(r.is_ok(), "{t} (chain from {chain_start}): {r:?}");
                for table in [51, 52, 53] {
                    prop_assert_eq!(restored(&ingest, table), fx.read_at(table, t), "table {} at {}", table, t);
                }
            } else {
                prop_assert!(matches!(r, Err(ExecError::RestoreTime { .. })), "{t}: {r:?}");
                prop_assert!(ingest.entries().is_empty() && ingest.published().is_empty());
            }
        }
    }
}
