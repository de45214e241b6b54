//! Full-cluster restore end to end through SQL sessions: a cluster with
//! users and roles, grants, a zone configuration, a cluster setting and a
//! backup schedule is backed up with `BACKUP INTO`, then restored with
//! `RESTORE FROM LATEST IN` into a fresh cluster, which gets all of it back
//! (the zone configuration under the table's new id, the schedules paused).
//! Database restores keep grants only for users the target has.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use backup_exec::Catalog;
use e2e::sql::{collection_uri as uri, err, exec};
use embedded_cluster::catalog::zone_config;
use embedded_cluster::{Cluster, Session, Value};

fn open(dir: &Path) -> Cluster {
    let c = Cluster::open_default(dir).unwrap();
    c.enable_backup_statements().unwrap();
    c
}

fn table_id(c: &Cluster, name: &str) -> u64 {
    c.descriptors(c.now().unwrap())
        .unwrap()
        .into_iter()
        .find(|d| d.name == name)
        .unwrap()
        .id
}

fn items(s: &mut Session, table: &str) -> Vec<Vec<Value>> {
    exec(s, &format!("SELECT id, name FROM {table} ORDER BY id")).rows
}

/// A source cluster with every kind of system state, backed up whole.
fn source(dir: &Path, collection: &str) -> (Cluster, Vec<Vec<Value>>) {
    let c = open(dir);
    let mut s = c.session("root").unwrap();
    for sql in [
        "CREATE USER alice",
        "CREATE USER bob",
        "CREATE ROLE analyst",
        "GRANT analyst TO alice",
        "CREATE DATABASE shop",
        "CREATE TABLE shop.items (id INT PRIMARY KEY, name STRING)",
        "INSERT INTO shop.items VALUES (1, 'pen'), (2, 'ink'), (3, 'pad')",
        "GRANT SELECT ON TABLE shop.items TO analyst",
        "ALTER TABLE shop.items CONFIGURE ZONE USING gc.ttlseconds = 600",
        "SET CLUSTER SETTING bulkio.backup.file_size = '64 MiB'",
    ] {
        exec(&mut s, sql);
    }
    exec(
        &mut s,
        &format!(
            "CREATE SCHEDULE nightly FOR BACKUP INTO '{collection}-scheduled' RECURRING '@daily'"
        ),
    );
    // As if the schedules had run: job ids that mean nothing elsewhere.
    for sched in c.schedules().unwrap() {
        c.update_schedule(sched.id, |r| {
            let mut b = r.to_backup_schedule()?;
            b.state.last_job = Some(4242);
            *r = embedded_cluster::ScheduleRecord::from_backup_schedule(&b);
            Ok(())
        })
        .unwrap();
    }
    let rows = items(&mut s, "shop.items");
    let backup = exec(&mut s, &format!("BACKUP INTO '{collection}'"));
    assert_eq!(backup.rows[0][1], Value::String("succeeded".into()));
    (c, rows)
}

#[test]
fn a_cluster_restore_brings_back_users_grants_zones_settings_and_paused_schedules() {
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let collection = uri(dirs[2].path());
    let (a, rows) = source(dirs[0].path(), &collection);
    let old_id = table_id(&a, "items");
    let schedules = a.schedules().unwrap();
    assert_eq!(
        schedules.len(),
        2,
        "a daily incremental with its weekly full"
    );
    assert!(schedules.iter().any(|s| !s.paused));

    // SHOW BACKUP lists the system tables the backup carries.
    let mut s = a.session("root").unwrap();
    let show = format!(
        "{:?}",
        exec(
            &mut s,
            &format!("SHOW BACKUP FROM LATEST IN '{collection}'")
        )
    );
    for name in [
        "system",
        "users",
        "zones",
        "settings",
        "scheduled_jobs",
        "items",
    ] {
        assert!(show.contains(&format!("\"{name}\"")), "{name} in {show}");
    }

    let b = open(dirs[1].path());
    let mut root = b.session("root").unwrap();
    // The target's own defaultdb exists (the session made it): it gives way.
    exec(&mut root, "SELECT 1");
    let restore = exec(&mut root, &format!("RESTORE FROM LATEST IN '{collection}'"));
    assert_eq!(restore.rows[0][1], Value::String("succeeded".into()));

    // Data and grants: alice reads through her role, bob has no grant.
    assert_eq!(items(&mut root, "shop.items"), rows);
    let mut alice = b.session("alice").unwrap();
    assert_eq!(items(&mut alice, "shop.items"), rows);
    let mut bob = b.session("bob").unwrap();
    assert!(err(&mut bob, "SELECT * FROM shop.items").contains("privilege"));
    // root and admin are the target's own, still admins.
    exec(&mut root, "CREATE USER carol");

    // The zone configuration follows the table to its new id, and applies.
    let new_id = table_id(&b, "items");
    assert_ne!(new_id, old_id, "the restore gives every object a fresh id");
    let zone = zone_config(&b, new_id, b.now().unwrap()).unwrap().unwrap();
    assert_eq!(zone.gc_ttl_seconds, 600);
    assert_eq!(b.gc_ttl(new_id).unwrap(), Duration::from_secs(600));

    // The setting.
    assert_eq!(
        exec(&mut root, "SHOW CLUSTER SETTING bulkio.backup.file_size").scalar(),
        Some(&Value::String("64 MiB".into()))
    );

    // The schedules: all back, all paused, pairs pointing at each other.
    let restored = b.schedules().unwrap();
    assert_eq!(restored.len(), schedules.len());
    assert!(restored.iter().all(|s| s.paused), "{restored:?}");
    let mut labels: Vec<&str> = restored.iter().map(|s| s.label.as_str()).collect();
    labels.sort_unstable();
    assert_eq!(labels, ["nightly", "nightly"]);
    let ids: Vec<u64> = restored.iter().map(|s| s.id).collect();
    for s in &restored {
        let schedule = s.to_backup_schedule().unwrap();
        let pair = schedule.details.pair.unwrap();
        assert!(ids.contains(&pair) && pair != s.id, "{s:?}");
        assert!(schedule.state.running.is_empty() && schedule.state.last_job.is_none());
        assert!(schedule.state.chain.is_none());
        assert!(schedule.state.status.contains("restored"), "{schedule:?}");
    }

    // The source's jobs are not restored: the target has only its restore.
    let jobs = exec(&mut root, "SHOW JOBS");
    assert!(!format!("{jobs:?}").contains("BACKUP INTO"), "{jobs:?}");

    // A second cluster restore is refused: the cluster has user objects now.
    let again = err(&mut root, &format!("RESTORE FROM LATEST IN '{collection}'"));
    assert!(again.contains("without user objects"), "{again}");
    b.disable_backup_statements();
    a.disable_backup_statements();
}

#[test]
fn a_database_restore_keeps_grants_only_for_users_the_target_has() {
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let collection = uri(dirs[2].path());
    let (a, rows) = source(dirs[0].path(), &collection);

    // A target without analyst: the grant is dropped, so a role created
    // later under that name does not inherit it.
    let c = open(dirs[1].path());
    let mut root = c.session("root").unwrap();
    exec(
        &mut root,
        &format!("RESTORE DATABASE shop FROM LATEST IN '{collection}'"),
    );
    assert_eq!(items(&mut root, "shop.items"), rows);
    exec(&mut root, "CREATE USER alice");
    exec(&mut root, "CREATE ROLE analyst");
    exec(&mut root, "GRANT analyst TO alice");
    let mut alice = c.session("alice").unwrap();
    assert!(err(&mut alice, "SELECT * FROM shop.items").contains("privilege"));

    // Now that analyst exists, a restore keeps its grant.
    exec(
        &mut root,
        &format!("RESTORE DATABASE shop FROM LATEST IN '{collection}' WITH new_db_name = 'shop2'"),
    );
    assert_eq!(items(&mut alice, "shop2.items"), rows);
    // System tables come back only with a cluster restore.
    let system = err(
        &mut root,
        &format!("RESTORE TABLE system.users FROM LATEST IN '{collection}' WITH into_db = 'shop'"),
    );
    assert!(system.contains("full cluster restore"), "{system}");
    c.disable_backup_statements();
    a.disable_backup_statements();
}
