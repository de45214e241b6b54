//! The scheduler's tick over in-memory stores: the protected chain of a
//! full/incremental pair, the incremental waiting for its full, failures.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use backup_format::{Span, Timestamp};

use super::*;
use crate::backup::{BackupSpec, Destination, LayerChoice, encode_spec};
use crate::host::{
    Clock, HostError, JobId, JobKind, JobRecord, JobStatus, JobStore, ProtectionId, Protector,
};

const H: i64 = 3600 * 1_000_000_000;

#[derive(Default)]
struct Fakes {
    schedules: Mutex<BTreeMap<ScheduleId, BackupSchedule>>,
    jobs: Mutex<BTreeMap<JobId, JobRecord>>,
    protections: Mutex<BTreeMap<u64, Timestamp>>,
    next: Mutex<u64>,
    now: Mutex<i64>,
}

impl Fakes {
    fn id(&self) -> u64 {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        *n
    }
    fn set_now(&self, wall: i64) {
        *self.now.lock().unwrap() = wall;
    }
    fn protected(&self) -> Vec<Timestamp> {
        self.protections.lock().unwrap().values().copied().collect()
    }
    fn finish(&self, job: JobId, status: JobStatus) {
        self.jobs.lock().unwrap().get_mut(&job).unwrap().status = status;
    }
    fn get(&self, id: ScheduleId) -> BackupSchedule {
        self.schedules.lock().unwrap()[&id].clone()
    }
}

impl ScheduleStore for Fakes {
    fn create(&self, s: &BackupSchedule) -> Result<ScheduleId, HostError> {
        let id = self.id();
        let stored = BackupSchedule { id, ..s.clone() };
        self.schedules.lock().unwrap().insert(id, stored);
        Ok(id)
    }
    fn update(
        &self,
        id: ScheduleId,
        change: &mut dyn FnMut(&mut BackupSchedule) -> Result<(), HostError>,
    ) -> Result<BackupSchedule, HostError> {
        let mut all = self.schedules.lock().unwrap();
        let s = all
            .get_mut(&id)
            .ok_or_else(|| HostError::NotFound(format!("schedule {id}")))?;
        let mut copy = s.clone();
        change(&mut copy)?;
        *s = copy.clone();
        Ok(copy)
    }
    fn get(&self, id: ScheduleId) -> Result<Option<BackupSchedule>, HostError> {
        Ok(self.schedules.lock().unwrap().get(&id).cloned())
    }
    fn list(&self) -> Result<Vec<BackupSchedule>, HostError> {
        Ok(self.schedules.lock().unwrap().values().cloned().collect())
    }
    fn delete(&self, id: ScheduleId) -> Result<(), HostError> {
        self.schedules.lock().unwrap().remove(&id);
        Ok(())
    }
}

impl JobStore for Fakes {
    fn create(&self, r: &JobRecord) -> Result<JobId, HostError> {
        let id = self.id();
        self.jobs
            .lock()
            .unwrap()
            .insert(id, JobRecord { id, ..r.clone() });
        Ok(id)
    }
    fn update(
        &self,
        id: JobId,
        change: &mut dyn FnMut(&mut JobRecord) -> Result<(), HostError>,
    ) -> Result<JobRecord, HostError> {
        let mut all = self.jobs.lock().unwrap();
        let r = all.get_mut(&id).unwrap();
        change(r)?;
        Ok(r.clone())
    }
    fn get(&self, id: JobId) -> Result<Option<JobRecord>, HostError> {
        Ok(self.jobs.lock().unwrap().get(&id).cloned())
    }
    fn list(&self) -> Result<Vec<JobRecord>, HostError> {
        Ok(self.jobs.lock().unwrap().values().cloned().collect())
    }
}

impl Protector for Fakes {
    fn protect(&self, _: &[Span], ts: Timestamp) -> Result<ProtectionId, HostError> {
        let id = self.id();
        self.protections.lock().unwrap().insert(id, ts);
        Ok(ProtectionId(id))
    }
    fn release(&self, id: ProtectionId) -> Result<(), HostError> {
        match self.protections.lock().unwrap().remove(&id.0) {
            Some(_) => Ok(()),
            None => Err(HostError::NotFound(format!("protection {}", id.0))),
        }
    }
    fn gc_threshold(&self, _: &Span) -> Result<Timestamp, HostError> {
        Ok(Timestamp::ZERO)
    }
}

impl Clock for Fakes {
    fn now(&self) -> Timestamp {
        Timestamp::from_wall(*self.now.lock().unwrap())
    }
}

/// Registers a running backup job reading at the clock's now, or fails.
struct Starter<'a> {
    fakes: &'a Fakes,
    fail: bool,
}

impl BackupStarter for Starter<'_> {
    fn start(&self, s: &BackupSchedule) -> Result<JobId, String> {
        if self.fail {
            return Err("destination unreachable".into());
        }
        let spec = BackupSpec {
            description: s.details.backup_statement.clone(),
            user: s.owner.clone(),
            descriptors: Vec::new(),
            spans: vec![Span::new(*b"a", *b"b")],
            index_spans: Vec::new(),
            full_cluster: false,
            end_time: self.fakes.now(),
            destination: Destination {
                collection: "nodelocal://1/c".into(),
                locality_uris: Vec::new(),
                incremental_location: None,
                layer: LayerChoice::NewFull,
            },
            revision_history: false,
            encryption_passphrase: None,
            detached: true,
        };
        let record = JobRecord::started(
            JobKind::Backup,
            spec.description.clone(),
            spec.user.clone(),
            self.fakes.now(),
            encode_spec(&spec),
        );
        JobStore::create(self.fakes, &record).map_err(|e| e.to_string())
    }
}

fn schedule(kind: ScheduleKind, recurrence: &str) -> BackupSchedule {
    BackupSchedule {
        id: 0,
        label: "pair".into(),
        owner: "root".into(),
        recurrence: recurrence.into(),
        next_run: None,
        paused: false,
        details: ScheduleDetails {
            kind,
            backup_statement: "BACKUP INTO 'nodelocal://1/c' WITH detached".into(),
            database: "defaultdb".into(),
            pair: None,
            on_execution_failure: OnExecutionFailure::Reschedule,
            on_previous_running: OnPreviousRunning::Wait,
            created: Timestamp::from_wall(H),
        },
        state: ScheduleState::default(),
    }
}

/// A daily full and hourly incremental pair; the full runs first at 1h.
fn pair(fakes: &Arc<Fakes>) -> (ScheduleId, ScheduleId, ScheduleRunner) {
    fakes.set_now(H);
    let mut full = schedule(ScheduleKind::Full, "@daily");
    full.next_run = Some(Timestamp::from_wall(H));
    let f = ScheduleStore::create(fakes.as_ref(), &full).unwrap();
    let mut inc = schedule(ScheduleKind::Incremental, "@hourly");
    inc.paused = true;
    inc.state.waiting_for_full = true;
    inc.details.pair = Some(f);
    let i = ScheduleStore::create(fakes.as_ref(), &inc).unwrap();
    fakes
        .schedules
        .lock()
        .unwrap()
        .get_mut(&f)
        .unwrap()
        .details
        .pair = Some(i);
    let runner = ScheduleRunner {
        schedules: fakes.clone(),
        jobs: fakes.clone(),
        protector: fakes.clone(),
        clock: fakes.clone(),
        catalog_spans: vec![Span::new(*b"d", *b"e")],
    };
    (f, i, runner)
}

#[test]
fn the_chain_moves_with_each_success_and_a_new_full_releases_the_old() {
    let fakes = Arc::new(Fakes::default());
    let (f, i, runner) = pair(&fakes);
    let ok = Starter {
        fakes: &fakes,
        fail: false,
    };
    let t = Timestamp::from_wall;

    let r = runner.tick(&ok).unwrap();
    let (_, j1) = r.started[0];
    assert_eq!(r.started, [(f, j1)], "the full runs; the incremental waits");
    assert_eq!(
        fakes.protected(),
        [t(H)],
        "the run's end time is protected at once"
    );
    fakes.finish(j1, JobStatus::Succeeded);

    fakes.set_now(H + H / 2);
    let r = runner.tick(&ok).unwrap();
    assert!(r.started.is_empty());
    let chain = fakes.get(f).state.chain.unwrap();
    assert_eq!(chain.at, t(H));
    let inc = fakes.get(i);
    assert!(
        !inc.paused && !inc.state.waiting_for_full,
        "the full resumed it"
    );
    assert_eq!(inc.next_run, Some(t(2 * H)));

    fakes.set_now(2 * H);
    let r = runner.tick(&ok).unwrap();
    let (_, j2) = r.started[0];
    assert_eq!(r.started, [(i, j2)]);
    assert_eq!(fakes.protected(), [t(H), t(2 * H)], "chain and running job");
    fakes.finish(j2, JobStatus::Succeeded);
    fakes.set_now(2 * H + 1);
    runner.tick(&ok).unwrap();
    assert_eq!(fakes.get(f).state.chain.unwrap().at, t(2 * H));
    assert_eq!(fakes.protected(), [t(2 * H)], "the older end is released");

    // A failed run releases its own protection; the chain stays.
    fakes.set_now(3 * H);
    let r = runner.tick(&ok).unwrap();
    let (_, j3) = r.started[0];
    fakes.finish(j3, JobStatus::Failed);
    fakes.set_now(3 * H + 1);
    let r = runner.tick(&ok).unwrap();
    assert!(matches!(r.finished[0].2, JobOutcome::Failed(_)));
    assert_eq!(fakes.protected(), [t(2 * H)]);
    assert!(fakes.get(i).state.status.contains("failed"));

    // The next day's full backup takes the chain over.
    fakes.set_now(24 * H);
    let r = runner.tick(&ok).unwrap();
    let full_job = r.started.iter().find(|(s, _)| *s == f).unwrap().1;
    let inc_job = r.started.iter().find(|(s, _)| *s == i).unwrap().1;
    fakes.finish(full_job, JobStatus::Succeeded);
    fakes.finish(inc_job, JobStatus::Succeeded);
    fakes.set_now(24 * H + 1);
    runner.tick(&ok).unwrap();
    assert_eq!(fakes.get(f).state.chain.unwrap().at, t(24 * H));
    assert_eq!(fakes.protected(), [t(24 * H)]);

    runner.release_all(&fakes.get(f).state);
    assert!(fakes.protected().is_empty());
}

#[test]
fn a_run_that_cannot_start_follows_on_execution_failure() {
    let fakes = Arc::new(Fakes::default());
    let (f, _, runner) = pair(&fakes);
    fakes
        .schedules
        .lock()
        .unwrap()
        .get_mut(&f)
        .unwrap()
        .details
        .on_execution_failure = OnExecutionFailure::Pause;
    let broken = Starter {
        fakes: &fakes,
        fail: true,
    };
    let r = runner.tick(&broken).unwrap();
    assert_eq!(r.failed_to_start.len(), 1);
    let full = fakes.get(f);
    assert!(full.paused);
    assert!(
        full.state.status.contains("destination unreachable"),
        "{full:?}"
    );
    assert!(fakes.protected().is_empty());
    // Paused: nothing more runs, even a day later.
    fakes.set_now(30 * H);
    assert_eq!(runner.tick(&broken).unwrap(), TickReport::default());
}
