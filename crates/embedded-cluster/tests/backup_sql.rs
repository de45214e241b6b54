//! End to end: backup statements through `Session::execute` on a 3-node
//! cluster, with the `backup-sql` executor installed.
#![allow(clippy::unwrap_used)]

use embedded_cluster::{Cluster, QueryResult, Session, Value, bank};

mod support;
use support::{err, exec};

const URI: &str = "nodelocal://1/backups";

fn open() -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::open_default(dir.path()).unwrap();
    assert_eq!(cluster.nodes().len(), 3);
    cluster.enable_backup_statements().unwrap();
    (dir, cluster)
}

fn fingerprints(s: &mut Session, table: &str) -> Vec<Vec<Value>> {
    exec(
        s,
        &format!("SHOW EXPERIMENTAL_FINGERPRINTS FROM TABLE {table}"),
    )
    .rows
}

fn count(s: &mut Session, table: &str) -> Value {
    exec(s, &format!("SELECT count(*) FROM {table}"))
        .scalar()
        .unwrap()
        .clone()
}

fn assert_succeeded(r: &QueryResult) {
    let names: Vec<&str> = r.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "job_id",
            "status",
            "fraction_completed",
            "rows",
            "index_entries",
            "bytes"
        ]
    );
    assert_eq!(r.rows.len(), 1, "{r:?}");
    assert_eq!(r.rows[0][1], Value::String("succeeded".into()), "{r:?}");
}

fn all_text(r: &QueryResult) -> String {
    format!("{r:?}")
}

#[test]
fn backup_incremental_show_restore_and_as_of() {
    let (_d, c) = open();
    bank::sample(&c).unwrap();
    let mut s = c.session("root").unwrap();

    let full = exec(&mut s, &format!("BACKUP DATABASE bank INTO '{URI}'"));
    assert_succeeded(&full);
    assert_eq!(full.tag, "BACKUP");

    let between = exec(&mut s, "SELECT cluster_logical_timestamp()")
        .scalar()
        .unwrap()
        .to_string();
    exec(
        &mut s,
        "UPDATE bank.accounts SET balance = balance + 7 WHERE id < 3",
    );
    exec(&mut s, "DELETE FROM bank.accounts WHERE id = 4");

    let inc = exec(
        &mut s,
        &format!("BACKUP DATABASE bank INTO LATEST IN '{URI}' WITH revision_history"),
    );
    assert_succeeded(&inc);

    let backups = exec(&mut s, &format!("SHOW BACKUPS IN '{URI}'"));
    assert_eq!(backups.rows.len(), 1, "{backups:?}");
    assert_eq!(backups.columns[0].0, "path");

    let show = exec(&mut s, &format!("SHOW BACKUP FROM LATEST IN '{URI}'"));
    let names: Vec<String> = show
        .rows
        .iter()
        .map(|r| r[2].as_str().unwrap_or_default().to_string())
        .collect();
    for object in ["bank", "accounts", "customers", "rich_accounts"] {
        assert!(names.iter().any(|n| n == object), "{object} in {names:?}");
    }
    assert!(show.tag.starts_with("SHOW"), "{}", show.tag);

    let restore = exec(
        &mut s,
        &format!("RESTORE DATABASE bank FROM LATEST IN '{URI}' WITH new_db_name = 'bank2'"),
    );
    assert_succeeded(&restore);
    assert_eq!(restore.tag, "RESTORE");
    for t in ["accounts", "customers"] {
        assert_eq!(
            fingerprints(&mut s, &format!("bank2.{t}")),
            fingerprints(&mut s, &format!("bank.{t}")),
            "{t}"
        );
        assert_eq!(
            count(&mut s, &format!("bank2.{t}")),
            count(&mut s, &format!("bank.{t}"))
        );
    }

    let restore = exec(
        &mut s,
        &format!(
            "RESTORE DATABASE bank FROM LATEST IN '{URI}' AS OF SYSTEM TIME {between} \
             WITH new_db_name = 'bank3'"
        ),
    );
    assert_succeeded(&restore);
    let then = exec(
        &mut s,
        &format!("SELECT id, balance FROM bank.accounts AS OF SYSTEM TIME {between} ORDER BY id"),
    );
    let restored = exec(&mut s, "SELECT id, balance FROM bank3.accounts ORDER BY id");
    assert_eq!(restored.rows, then.rows);
    assert_eq!(restored.rows.len(), 4);
    let now = exec(&mut s, "SELECT id, balance FROM bank.accounts ORDER BY id");
    assert_ne!(restored.rows, now.rows);

    let jobs = exec(&mut s, "SHOW JOBS");
    assert!(jobs.rows.len() >= 4, "{jobs:?}");
    let text = all_text(&jobs);
    assert!(text.contains("BACKUP"), "{text}");
    assert!(text.contains("RESTORE"), "{text}");
    c.disable_backup_statements();
}

#[test]
fn encrypted_backup_needs_the_passphrase_and_never_shows_it() {
    let (_d, c) = open();
    bank::sample(&c).unwrap();
    let mut s = c.session("root").unwrap();
    let mut seen = String::new();
    let r = exec(
        &mut s,
        &format!("BACKUP DATABASE bank INTO '{URI}' WITH encryption_passphrase = 'secret-xyz'"),
    );
    assert_succeeded(&r);
    seen.push_str(&all_text(&r));

    let e = err(
        &mut s,
        &format!(
            "RESTORE DATABASE bank FROM LATEST IN '{URI}' \
             WITH new_db_name = 'bank2', encryption_passphrase = 'wrong-one'"
        ),
    );
    assert!(
        e.contains("passphrase") || e.contains("decrypt") || e.contains("encrypt"),
        "{e}"
    );
    seen.push_str(&e);

    let e = err(
        &mut s,
        &format!("RESTORE DATABASE bank FROM LATEST IN '{URI}' WITH new_db_name = 'bank2'"),
    );
    seen.push_str(&e);

    let r = exec(
        &mut s,
        &format!(
            "RESTORE DATABASE bank FROM LATEST IN '{URI}' \
             WITH new_db_name = 'bank2', encryption_passphrase = 'secret-xyz'"
        ),
    );
    assert_succeeded(&r);
    seen.push_str(&all_text(&r));
    assert_eq!(
        fingerprints(&mut s, "bank2.accounts"),
        fingerprints(&mut s, "bank.accounts")
    );
    let jobs = exec(&mut s, "SHOW JOBS");
    seen.push_str(&all_text(&jobs));
    assert!(
        all_text(&jobs).contains("encryption_passphrase"),
        "{jobs:?}"
    );
    assert!(!seen.contains("secret-xyz"), "{seen}");
    c.disable_backup_statements();
}

#[test]
fn http_uri_and_unprivileged_user_are_refused() {
    let (_d, c) = open();
    bank::sample(&c).unwrap();
    let mut root = c.session("root").unwrap();
    let e = err(
        &mut root,
        "BACKUP DATABASE bank INTO 'http://example.invalid/backups'",
    );
    assert!(e.contains("http"), "{e}");

    exec(&mut root, "CREATE USER alice");
    let mut alice = c.session("alice").unwrap();
    let e = err(&mut alice, &format!("BACKUP DATABASE bank INTO '{URI}'"));
    assert!(e.contains("alice"), "{e}");
    for target in ["bank.public.customers", "bank.customers"] {
        let e = err(&mut alice, &format!("BACKUP TABLE {target} INTO '{URI}'"));
        assert!(e.contains("alice") && e.contains("SELECT"), "{target}: {e}");
    }
    c.disable_backup_statements();
}

#[test]
fn table_names_resolve_in_the_databases_public_schema() {
    // This catalog gives each database a `public` schema descriptor of its
    // own; `db.t` and an unqualified `t` must resolve in it.
    let (_d, c) = open();
    bank::sample(&c).unwrap();
    let mut s = c.session("root").unwrap();
    exec(
        &mut s,
        "CREATE TABLE bank.plain (id INT PRIMARY KEY, v STRING)",
    );
    exec(&mut s, "INSERT INTO bank.plain VALUES (1, 'a'), (2, 'b')");
    assert_succeeded(&exec(
        &mut s,
        "BACKUP TABLE bank.plain INTO 'nodelocal://1/qualified'",
    ));
    // Resolved, then refused for its foreign key, naming both tables.
    let e = err(&mut s, "BACKUP TABLE bank.accounts INTO 'nodelocal://1/fk'");
    assert!(e.contains("accounts") && e.contains("customers"), "{e}");
    exec(&mut s, "USE bank");
    assert_succeeded(&exec(
        &mut s,
        "BACKUP TABLE plain INTO 'nodelocal://1/unqualified'",
    ));
    let e = err(&mut s, "BACKUP TABLE nosuch INTO 'nodelocal://1/none'");
    assert!(e.contains("nosuch"), "{e}");
    c.disable_backup_statements();
}
