//! `backup-cli demo` runs the main job end to end and proves its restores.

mod support;

use support::cli;

#[test]
fn demo_exits_zero_and_its_restores_fingerprint_equal_to_the_source() {
    let run = cli(&["demo", "--rows", "40"]).ok();
    let out = &run.stdout;
    for step in [
        "> BACKUP DATABASE bank INTO 'nodelocal://1/demo-backups';",
        "WITH revision_history;",
        "holds deletion intents",
        "> SHOW BACKUPS IN 'nodelocal://1/demo-backups';",
        "> SHOW BACKUP FROM LATEST IN 'nodelocal://1/demo-backups';",
        "WITH new_db_name = 'bank_latest';",
        "AS OF SYSTEM TIME",
        "WITH new_db_name = 'bank_then';",
    ] {
        assert!(out.contains(step), "{step} missing from:\n{out}");
    }
    // A progress bar per job: two backups and two restores.
    let bars = out
        .lines()
        .filter(|l| l.contains("] 100% succeeded"))
        .count();
    assert_eq!(bars, 4, "{out}");
    // Both restores, every table, fingerprints equal to the source's.
    for restored in ["bank_latest", "bank_then"] {
        for table in ["accounts", "customers"] {
            let check = format!("CHECK ok: {restored}.{table} fingerprints equal bank.{table}");
            assert!(out.contains(&check), "{check} missing from:\n{out}");
        }
    }
    let matches = out
        .lines()
        .filter(|l| l.trim_end().ends_with(" match"))
        .count();
    assert_eq!(matches, 4, "{out}");
    assert!(
        !out.contains("MISMATCH") && !out.contains("FAILED"),
        "{out}"
    );
    assert!(out.contains("checks passed"), "{out}");
}

#[test]
fn demo_refuses_a_store_that_holds_a_cluster() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().to_str().expect("utf-8");
    support::sql(dir.path(), &["CREATE DATABASE x"]).ok();
    let run = cli(&["demo", "--store", store]).failed();
    assert!(run.stderr.starts_with("ERROR: "), "{}", run.stderr);
    assert!(run.stderr.contains("new directory"), "{}", run.stderr);
}
