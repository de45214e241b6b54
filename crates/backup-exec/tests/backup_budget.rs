//! The job-wide budget of chunks in flight (`max_in_flight_bytes`): with
//! exports held at a gate, no more exports run at once than the budget
//! holds chunks, whatever the number of workers; the backup then completes.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use backup_exec::testing::{MemoryJobStore, MemoryKv, MemoryStorages, StaticCatalog};
use backup_exec::{
    BackupJobs, BackupSettings, BackupSpec, Destination, ExportChunk, ExportError, ExportRequest,
    Host, HostError, KvSource, LayerChoice, NodeId, NodeInfo, RangeInfo,
};
use backup_format::Span;

/// Exports wait while the gate is closed; counts how many are inside.
struct HeldKv {
    kv: Arc<MemoryKv>,
    state: Mutex<Held>,
    changed: Condvar,
}

#[derive(Default)]
struct Held {
    open: bool,
    inside: usize,
    most: usize,
}

impl KvSource for HeldKv {
    fn nodes(&self) -> Vec<NodeInfo> {
        self.kv.nodes()
    }

    fn ranges(&self, spans: &[Span]) -> Result<Vec<RangeInfo>, HostError> {
        self.kv.ranges(spans)
    }

    fn export(&self, node: NodeId, request: &ExportRequest) -> Result<ExportChunk, ExportError> {
        let mut st = self.state.lock().unwrap();
        st.inside += 1;
        st.most = st.most.max(st.inside);
        self.changed.notify_all();
        while !st.open {
            st = self.changed.wait(st).unwrap();
        }
        drop(st);
        let r = self.kv.export(node, request);
        self.state.lock().unwrap().inside -= 1;
        r
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_in_flight_never_exceed_the_budget() {
    // Six ranges over three nodes, three workers per node: without the
    // budget, six exports would wait at the gate at once.
    let kv = Arc::new(MemoryKv::new(3, &[b"k1", b"k2", b"k3", b"k4", b"k5"]));
    for i in 0..6000u32 {
        kv.put(format!("k{}{i:05}", i % 6).as_bytes(), Some(&[5u8; 64]));
    }
    let held = Arc::new(HeldKv {
        kv: kv.clone(),
        state: Mutex::new(Held::default()),
        changed: Condvar::new(),
    });
    let storages = Arc::new(MemoryStorages::default());
    let host = Host {
        kv: held.clone(),
        catalog: Arc::new(StaticCatalog::default()),
        protector: kv.clone(),
        clock: kv.clone(),
        jobs: Arc::new(MemoryJobStore::default()),
        storage: storages.clone(),
    };
    let settings = BackupSettings {
        per_node_concurrency: 3,
        chunk_target_bytes: 8 << 10,
        max_in_flight_bytes: 16 << 10,
        ..BackupSettings::for_tests()
    };
    let jobs = Arc::new(BackupJobs::new(host, settings));
    let end = backup_exec::Clock::now(kv.as_ref());
    let spec = BackupSpec {
        description: "BACKUP INTO 'nodelocal://1/b'".into(),
        user: "root".into(),
        descriptors: Vec::new(),
        spans: vec![Span::new(*b"k", *b"l")],
        index_spans: Vec::new(),
        full_cluster: false,
        end_time: end,
        destination: Destination {
            collection: "nodelocal://1/b".into(),
            locality_uris: Vec::new(),
            incremental_location: None,
            layer: LayerChoice::NewFull,
        },
        revision_history: false,
        encryption_passphrase: None,
        detached: false,
    };
    let job = {
        let jobs = jobs.clone();
        tokio::spawn(async move { jobs.backup(spec).await })
    };

    // Two chunks fit the budget: wait until two exports are at the gate,
    // then give any third one time to arrive (it must not).
    let waiting = held.clone();
    tokio::task::spawn_blocking(move || {
        let mut st = waiting.state.lock().unwrap();
        while st.inside < 2 {
            st = waiting.changed.wait(st).unwrap();
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_gate = held.state.lock().unwrap().inside;

    // Open the gate before asserting, so a failure does not leave exports
    // blocked forever.
    held.state.lock().unwrap().open = true;
    held.changed.notify_all();
    let result = job.await.unwrap().unwrap();
    assert_eq!(at_gate, 2, "the budget holds two chunks");
    assert_eq!(result.rows, 6000, "every key backed up");
    assert_eq!(held.state.lock().unwrap().most, 2);
}
