//! SHOW BACKUPS / SHOW BACKUP (files, check_files, encryption, localities),
//! SHOW JOBS and job control, end to end on `backup-exec`'s in-memory fakes.
#![allow(clippy::unwrap_used)]

mod support;

use backup_sql::{Datum, SqlError};
use support::*;

#[test]
fn detached_backup_returns_only_the_job_id_and_show_jobs_redacts() {
    let fx = fixture();
    fx.tick();
    let rs = fx
        .run(
            &root(),
            &format!("BACKUP TABLE bank.accounts INTO '{URI}' WITH detached, encryption_passphrase = 'hush'"),
        )
        .unwrap();
    assert_eq!(rs.column_names(), ["job_id"]);
    let id = int(&rs.rows[0][0]);
    // Wait for it through the registry's record.
    for _ in 0..2000 {
        let rec = fx.exec.backup_jobs().job(id as u64).unwrap();
        if rec.status.is_terminal() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let jobs = fx.ok("SHOW JOBS");
    assert_eq!(
        jobs.column_names(),
        [
            "job_id",
            "job_type",
            "description",
            "user_name",
            "status",
            "created",
            "started",
            "finished",
            "fraction_completed",
            "error",
            "schedule_id"
        ]
    );
    let types: Vec<_> = jobs.columns.iter().map(|c| c.type_name.as_str()).collect();
    assert_eq!(types[5], "TIMESTAMPTZ");
    assert_eq!(types[8], "FLOAT8");
    let desc = string(col(&jobs, 0, "description"));
    assert!(!desc.contains("hush"), "{desc}");
    assert!(
        desc.contains("encryption_passphrase = '*****'") || desc.contains("redacted"),
        "{desc}"
    );
    assert_eq!(string(col(&jobs, 0, "job_type")), "BACKUP");
    assert_eq!(string(col(&jobs, 0, "status")), "succeeded");
    assert_eq!(string(col(&jobs, 0, "user_name")), "root");
    let one = fx.ok(&format!("SHOW JOB {id}"));
    assert_eq!(one.rows.len(), 1);
    // Another user does not see root's jobs.
    assert!(fx.run(&alice(&[]), "SHOW JOBS").unwrap().rows.is_empty());
}

#[test]
fn show_backup_lists_objects_and_files_and_check_files_finds_missing_and_corrupt_files() {
    let fx = fixture();
    fx.ok(&format!("BACKUP DATABASE bank INTO '{URI}'"));
    fx.write(1, 5);
    fx.ok(&format!("BACKUP DATABASE bank INTO LATEST IN '{URI}'"));
    let rs = fx.ok(&format!("SHOW BACKUP FROM LATEST IN '{URI}'"));
    assert_eq!(
        rs.column_names(),
        [
            "database_name",
            "parent_schema_name",
            "object_name",
            "object_type",
            "backup_type",
            "start_time",
            "end_time",
            "size_bytes",
            "rows",
            "is_full_cluster"
        ]
    );
    let accounts: Vec<_> = rs
        .rows
        .iter()
        .filter(|r| r[2] == Datum::String("accounts".into()))
        .collect();
    assert_eq!(accounts.len(), 2, "one row per layer");
    assert_eq!(accounts[0][0], Datum::String("bank".into()));
    assert_eq!(accounts[0][1], Datum::String("public".into()));
    assert_eq!(accounts[0][4], Datum::String("full".into()));
    assert_eq!(accounts[1][4], Datum::String("incremental".into()));
    assert_eq!(int(&accounts[0][8]), 40);
    assert_eq!(int(&accounts[1][8]), 5);
    assert_eq!(accounts[0][9], Datum::Bool(false));
    let files = fx.ok(&format!("SHOW BACKUP FILES FROM LATEST IN '{URI}'"));
    assert_eq!(files.columns[0].name, "path");
    assert!(files.rows.len() >= 2);
    let total: i64 = files.rows.iter().map(|r| int(&r[5])).sum();
    assert_eq!(total, 4 * 40 + 4 * 5);
    // Clean: check_files passes.
    fx.ok(&format!(
        "SHOW BACKUP FROM LATEST IN '{URI}' WITH check_files"
    ));
    // Delete one file, corrupt another.
    let paths: Vec<String> = files
        .rows
        .iter()
        .map(|r| string(&r[0]).to_string())
        .collect();
    let root_dir = fx.dir.path().join("backups");
    std::fs::remove_file(root_dir.join(&paths[0])).unwrap();
    let mut bytes = std::fs::read(root_dir.join(&paths[1])).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(root_dir.join(&paths[1]), bytes).unwrap();
    let err = fx
        .run(
            &root(),
            &format!("SHOW BACKUP FROM LATEST IN '{URI}' WITH check_files"),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("{} (missing)", paths[0])), "{msg}");
    assert!(msg.contains(&format!("{} (corrupt", paths[1])), "{msg}");
}

#[test]
fn pause_resume_and_cancel_job() {
    let fx = fixture();
    // Enough data that the job is still running when paused.
    fx.write(2, 3000);
    fx.tick();
    let rs = fx.ok(&format!("BACKUP DATABASE bank INTO '{URI}' WITH detached"));
    let id = int(&rs.rows[0][0]);
    let status = |fx: &Fx, id: i64| fx.exec.backup_jobs().job(id as u64).unwrap().status;
    match fx.run(&root(), &format!("PAUSE JOB {id}")) {
        Ok(_) => {
            for _ in 0..2000 {
                if status(&fx, id) == backup_exec::JobStatus::Paused {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert_eq!(status(&fx, id), backup_exec::JobStatus::Paused);
            // Alice cannot control root's job.
            let err = fx
                .run(&alice(&[]), &format!("RESUME JOB {id}"))
                .unwrap_err();
            assert!(matches!(err, SqlError::Privilege(_)), "{err}");
            fx.ok(&format!("RESUME JOB {id}"));
            for _ in 0..4000 {
                if status(&fx, id).is_terminal() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert_eq!(status(&fx, id), backup_exec::JobStatus::Succeeded);
        }
        Err(e) => panic!("the job finished before it could be paused: {e}"),
    }
    // Cancel a paused job.
    fx.tick();
    let rs = fx.ok(&format!("BACKUP DATABASE bank INTO '{URI}' WITH detached"));
    let id = int(&rs.rows[0][0]);
    fx.ok(&format!("CANCEL JOB {id}"));
    for _ in 0..2000 {
        if status(&fx, id).is_terminal() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(
        fx.exec.backup_jobs().job(id as u64).unwrap().status,
        backup_exec::JobStatus::Canceled
    );
    let err = fx.run(&root(), &format!("CANCEL JOB {id}")).unwrap_err();
    assert!(err.to_string().contains("canceled"), "{err}");
}

#[test]
fn show_backup_of_an_encrypted_backup_reads_its_files_with_the_passphrase() {
    let fx = fixture();
    let uri = "nodelocal://1/secret";
    fx.ok(&format!(
        "BACKUP TABLE accounts INTO '{uri}' WITH encryption_passphrase = 'pw'"
    ));
    let show = format!("SHOW BACKUP FROM LATEST IN '{uri}' WITH encryption_passphrase = 'pw'");
    let rs = fx.ok(&show);
    let accounts = rs
        .rows
        .iter()
        .find(|r| r[2] == Datum::String("accounts".into()))
        .unwrap();
    assert_eq!(int(&accounts[8]), 40);
    fx.ok(&format!("{show}, check_files"));
    let files = fx.ok(&format!(
        "SHOW BACKUP FILES FROM LATEST IN '{uri}' WITH encryption_passphrase = 'pw'"
    ));
    assert_eq!(files.rows.iter().map(|r| int(&r[5])).sum::<i64>(), 40);
    let err = fx
        .run(&root(), &format!("SHOW BACKUP FROM LATEST IN '{uri}'"))
        .unwrap_err();
    assert!(err.to_string().contains("encrypted"), "{err}");
}

#[test]
fn check_files_reads_the_files_of_a_locality_aware_backup_in_their_localities() {
    let fx = fixture();
    let uris = "('nodelocal://1/loc?COCKROACH_LOCALITY=default', \
                'nodelocal://1/loc-r2?COCKROACH_LOCALITY=region%3Dr2')";
    fx.ok(&format!("BACKUP DATABASE bank INTO {uris}"));
    let files = fx.ok(&format!(
        "SHOW BACKUP FILES FROM LATEST IN {uris} WITH check_files"
    ));
    assert_eq!(files.rows.iter().map(|r| int(&r[5])).sum::<i64>(), 4 * 40);
    let rs = fx.ok(&format!("SHOW BACKUP FROM LATEST IN {uris}"));
    let accounts = rs
        .rows
        .iter()
        .find(|r| r[2] == Datum::String("accounts".into()))
        .unwrap();
    assert_eq!(int(&accounts[8]), 40);
    // Without the locality URI, its files cannot be checked.
    let r2 = std::fs::read_dir(fx.dir.path().join("loc-r2"))
        .unwrap()
        .count();
    assert!(r2 > 0, "node 2's files went to its locality");
    let err = fx
        .run(
            &root(),
            "SHOW BACKUP FROM LATEST IN 'nodelocal://1/loc' WITH check_files",
        )
        .unwrap_err();
    assert!(err.to_string().contains("locality region=r2"), "{err}");
}
