//! PAUSE / RESUME / CANCEL JOB on restore jobs, held mid-run at the
//! in-memory ingest's gate (no timing guesses).
#![allow(clippy::unwrap_used)]

mod support;

use support::*;

/// The status of job `id` as `SHOW JOB` reports it.
fn status(fx: &Fx, id: i64) -> String {
    string(col(&fx.ok(&format!("SHOW JOB {id}")), 0, "status")).to_string()
}

/// Polls `SHOW JOB` until job `id` is `want` (bounded: 60 s).
fn wait_for(fx: &Fx, id: i64, want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while status(fx, id) != want {
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} never became {want}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

const RESTORE: &str = "RESTORE DATABASE bank FROM LATEST IN 'nodelocal://1/backups' \
                       WITH new_db_name = 'bank2', detached";

#[test]
fn a_restore_paused_through_sql_resumes_and_finishes() {
    let fx = fixture();
    fx.ok(&format!("BACKUP DATABASE bank INTO '{URI}'"));
    fx.ingest.gate.close_at(2);
    let id = int(&fx.ok(RESTORE).rows[0][0]);
    assert!(
        fx.ingest.gate.wait_for_arrivals(2),
        "the restore reached the gate"
    );
    fx.ok(&format!("PAUSE JOB {id}"));
    fx.ingest.gate.open();
    wait_for(&fx, id, "paused");
    assert!(
        fx.ingest.published().is_empty(),
        "nothing visible while paused"
    );

    fx.ok(&format!("RESUME JOB {id}"));
    wait_for(&fx, id, "succeeded");
    let names: Vec<String> = fx
        .ingest
        .published()
        .iter()
        .map(|d| d.name.clone())
        .collect();
    assert!(names.contains(&"bank2".to_string()), "{names:?}");
    assert!(!fx.ingest.visible().is_empty());
    let e = fx
        .run(&root(), &format!("CANCEL JOB {id}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("succeeded"), "{e}");
}

#[test]
fn a_restore_canceled_through_sql_leaves_nothing() {
    let fx = fixture();
    fx.ok(&format!("BACKUP DATABASE bank INTO '{URI}'"));
    fx.ingest.gate.close_at(2);
    let id = int(&fx.ok(RESTORE).rows[0][0]);
    assert!(fx.ingest.gate.wait_for_arrivals(2));
    fx.ok(&format!("CANCEL JOB {id}"));
    fx.ingest.gate.open();
    wait_for(&fx, id, "canceled");
    assert!(fx.ingest.published().is_empty());
    assert!(fx.ingest.entries().is_empty(), "ingested data was removed");
    let e = fx
        .run(&root(), &format!("RESUME JOB {id}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("canceled"), "{e}");
}
