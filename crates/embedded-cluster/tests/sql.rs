//! The SQL layer: statements, errors, constraints, transactions, AS OF
//! SYSTEM TIME, fingerprints, privileges and the catalog as of a past time.
#![allow(clippy::unwrap_used)]

use backup_exec::Catalog;
use backup_format::{DependencyKind, DescriptorKind};
use embedded_cluster::{QueryResult, Session, Value};

mod support;
use support::{err, exec, open};

fn ints(r: &QueryResult) -> Vec<Vec<i64>> {
    r.rows
        .iter()
        .map(|row| row.iter().map(|v| v.as_int().unwrap()).collect())
        .collect()
}

fn bank(s: &mut Session) {
    exec(s, "CREATE DATABASE bank");
    exec(
        s,
        "CREATE TABLE bank.accounts (id INT PRIMARY KEY, balance INT NOT NULL, name STRING)",
    );
    exec(
        s,
        "INSERT INTO bank.accounts VALUES (1, 100, 'a'), (2, 200, 'b'), (3, 300, 'c')",
    );
}

#[test]
fn ddl_and_dml_round_trip() {
    let (_d, c) = open();
    let mut s = c.session("root").unwrap();
    bank(&mut s);
    let r = exec(
        &mut s,
        "SELECT id, balance FROM bank.accounts WHERE balance >= 200 ORDER BY id DESC",
    );
    assert_eq!(ints(&r), vec![vec![3, 300], vec![2, 200]]);
    assert_eq!(r.columns[0], ("id".to_string(), "INT8".to_string()));
    assert_eq!(r.tag, "SELECT 2");
    let r = exec(
        &mut s,
        "SELECT * FROM bank.accounts WHERE name IN ('a', 'c') AND NOT id = 3",
    );
    assert_eq!(
        r.rows,
        vec![vec![
            Value::Int(1),
            Value::Int(100),
            Value::String("a".into())
        ]]
    );
    assert_eq!(
        exec(&mut s, "SELECT count(*), sum(balance) FROM bank.accounts").rows,
        vec![vec![Value::Int(3), Value::Int(600)]]
    );
    assert_eq!(
        exec(
            &mut s,
            "SELECT id FROM bank.accounts ORDER BY balance DESC LIMIT 1"
        )
        .scalar(),
        Some(&Value::Int(3))
    );
    assert_eq!(
        exec(
            &mut s,
            "SELECT id FROM bank.accounts WHERE id = 1 OR id = 2 ORDER BY id LIMIT 5 OFFSET 1"
        )
        .scalar(),
        Some(&Value::Int(2))
    );
    assert_eq!(
        exec(
            &mut s,
            "UPDATE bank.accounts SET balance = balance + 1 WHERE id < 3"
        )
        .tag,
        "UPDATE 2"
    );
    assert_eq!(
        exec(&mut s, "SELECT sum(balance) FROM bank.accounts").scalar(),
        Some(&Value::Int(602))
    );
    assert_eq!(
        exec(
            &mut s,
            "UPSERT INTO bank.accounts VALUES (3, 5, 'c2'), (4, 40, 'd')"
        )
        .tag,
        "UPSERT 0 2"
    );
    assert_eq!(
        ints(&exec(
            &mut s,
            "SELECT id, balance FROM bank.accounts WHERE id >= 3 ORDER BY id"
        )),
        vec![vec![3, 5], vec![4, 40]]
    );
    assert_eq!(
        exec(&mut s, "DELETE FROM bank.accounts WHERE id = 4").tag,
        "DELETE 1"
    );
    assert_eq!(
        exec(&mut s, "SELECT count(*) FROM bank.accounts").scalar(),
        Some(&Value::Int(3))
    );
    exec(&mut s, "USE bank");
    assert_eq!(s.database(), "bank");
    assert_eq!(
        exec(&mut s, "SELECT count(*) FROM accounts").scalar(),
        Some(&Value::Int(3))
    );
    exec(&mut s, "SET database = defaultdb");
    assert_eq!(s.database(), "defaultdb");
    let r = exec(&mut s, "SHOW TABLES FROM bank");
    assert_eq!(r.rows[0][1], Value::String("accounts".into()));
    let dbs: Vec<String> = exec(&mut s, "SHOW DATABASES")
        .rows
        .iter()
        .map(|r| r[0].to_string())
        .collect();
    assert_eq!(dbs, vec!["bank", "defaultdb"]);
    exec(&mut s, "DROP TABLE bank.accounts");
    assert_eq!(
        err(&mut s, "SELECT * FROM bank.accounts"),
        "relation \"bank.accounts\" does not exist"
    );
    exec(&mut s, "DROP DATABASE bank");
    assert_eq!(err(&mut s, "USE bank"), "database \"bank\" does not exist");
}

#[test]
fn types_defaults_and_secondary_indexes() {
    let (_d, c) = open();
    let mut s = c.session("root").unwrap();
    exec(
        &mut s,
        "CREATE TABLE t (k STRING PRIMARY KEY, d DECIMAL, b BOOL, ts TIMESTAMP, u UUID, by BYTES, j JSONB, n INT DEFAULT 7, e STRING UNIQUE)",
    );
    exec(
        &mut s,
        "INSERT INTO t (k, d, b, ts, u, by, j, e) VALUES ('x', 1.5, true, '2024-01-01 00:00:00', '00000000-0000-0000-0000-000000000001', 'ab', '{\"a\": 1}', 'uniq')",
    );
    let r = exec(&mut s, "SELECT n, d, b, by FROM t");
    assert_eq!(
        r.rows[0],
        vec![
            Value::Int(7),
            Value::Float(1.5),
            Value::Bool(true),
            Value::Bytes(b"ab".to_vec())
        ]
    );
    assert!(err(&mut s, "INSERT INTO t (k, u) VALUES ('y', 'not-a-uuid')").contains("UUID"));
    assert_eq!(
        err(&mut s, "INSERT INTO t (k, e) VALUES ('z', 'uniq')"),
        "duplicate key value violates unique constraint \"t_e_key\""
    );
    exec(&mut s, "CREATE INDEX t_n_idx ON t (n)");
    let fp = exec(&mut s, "SHOW EXPERIMENTAL_FINGERPRINTS FROM TABLE t");
    let names: Vec<String> = fp.rows.iter().map(|r| r[0].to_string()).collect();
    assert_eq!(names, vec!["t_pkey", "t_e_key", "t_n_idx"]);
    // A table without a primary key gets a hidden rowid.
    exec(&mut s, "CREATE TABLE nopk (a INT)");
    exec(&mut s, "INSERT INTO nopk VALUES (1), (1)");
    let r = exec(&mut s, "SELECT * FROM nopk");
    assert_eq!(r.columns.len(), 1);
    assert_eq!(r.rows.len(), 2);
}

#[test]
fn errors_read_like_a_database() {
    let (_d, c) = open();
    let mut s = c.session("root").unwrap();
    bank(&mut s);
    assert_eq!(
        err(&mut s, "INSERT INTO bank.accounts VALUES (1, 5, 'dup')"),
        "duplicate key value violates unique constraint \"accounts_pkey\""
    );
    assert_eq!(
        err(&mut s, "SELECT * FROM bank.nope"),
        "relation \"bank.nope\" does not exist"
    );
    assert_eq!(
        err(&mut s, "SELECT nope FROM bank.accounts"),
        "column \"nope\" does not exist"
    );
    assert_eq!(
        err(&mut s, "INSERT INTO bank.accounts (id) VALUES (9)"),
        "null value in column \"balance\" violates not-null constraint"
    );
    assert_eq!(
        err(&mut s, "CREATE DATABASE bank"),
        "database \"bank\" already exists"
    );
    assert_eq!(
        err(&mut s, "CREATE TABLE bank.accounts (id INT PRIMARY KEY)"),
        "relation \"bank.accounts\" already exists"
    );
    assert!(err(&mut s, "SELEC 1").starts_with("syntax error"));
    assert!(
        err(&mut s, "INSERT INTO bank.accounts VALUES ('x', 1, 'a')").contains("could not parse")
    );
    assert_eq!(err(&mut s, "SELECT 1/0"), "division by zero");
    assert_eq!(
        err(&mut s, "BACKUP DATABASE bank INTO 'nodelocal://1/b'"),
        "BACKUP is not available in this build: no backup statement handler is installed"
    );
    // Nothing panics on odd input.
    for sql in [
        "",
        ";",
        "'",
        "SELECT",
        "SELECT * FROM",
        "UPSERT",
        "ALTER TABLE",
        "GRANT",
        "SHOW",
        "CREATE TYPE x AS ENUM (",
        "SELECT 9223372036854775807 + 1",
        "SELECT -(-9223372036854775807 - 1)",
    ] {
        assert!(s.execute(sql).is_err(), "{sql}");
    }
}

#[test]
fn foreign_keys_are_enforced() {
    let (_d, c) = open();
    let mut s = c.session("root").unwrap();
    exec(&mut s, "CREATE TABLE parent (id INT PRIMARY KEY)");
    exec(
        &mut s,
        "CREATE TABLE child (id INT PRIMARY KEY, p INT REFERENCES parent (id))",
    );
    exec(&mut s, "INSERT INTO parent VALUES (1)");
    exec(&mut s, "INSERT INTO child VALUES (10, 1), (11, NULL)");
    assert_eq!(
        err(&mut s, "INSERT INTO child VALUES (12, 2)"),
        "insert on table \"child\" violates foreign key constraint \"child_p_fkey\""
    );
    assert_eq!(
        err(&mut s, "DELETE FROM parent WHERE id = 1"),
        "delete on table \"parent\" violates foreign key constraint \"child_p_fkey\" on table \"child\""
    );
    assert!(err(&mut s, "DROP TABLE parent").contains("depends on it"));
    exec(&mut s, "DELETE FROM child");
    exec(&mut s, "DELETE FROM parent WHERE id = 1");
}

#[test]
fn transactions_commit_and_roll_back() {
    let (_d, c) = open();
    let mut s = c.session("root").unwrap();
    bank(&mut s);
    let mut other = c.session("root").unwrap();
    exec(&mut s, "BEGIN");
    exec(&mut s, "UPDATE bank.accounts SET balance = 0 WHERE id = 1");
    assert_eq!(
        exec(&mut s, "SELECT balance FROM bank.accounts WHERE id = 1").scalar(),
        Some(&Value::Int(0))
    );
    assert_eq!(
        exec(&mut other, "SELECT balance FROM bank.accounts WHERE id = 1").scalar(),
        Some(&Value::Int(100)),
        "uncommitted write is invisible"
    );
    exec(&mut s, "ROLLBACK");
    assert_eq!(
        exec(&mut s, "SELECT balance FROM bank.accounts WHERE id = 1").scalar(),
        Some(&Value::Int(100))
    );
    exec(&mut s, "BEGIN");
    exec(&mut s, "INSERT INTO bank.accounts VALUES (9, 9, 'n')");
    exec(&mut s, "COMMIT");
    assert_eq!(
        exec(&mut other, "SELECT balance FROM bank.accounts WHERE id = 9").scalar(),
        Some(&Value::Int(9))
    );
    // First committer wins.
    exec(&mut s, "BEGIN");
    exec(&mut s, "UPDATE bank.accounts SET balance = 1 WHERE id = 2");
    exec(
        &mut other,
        "UPDATE bank.accounts SET balance = 2 WHERE id = 2",
    );
    assert!(err(&mut s, "COMMIT").starts_with("restart transaction"));
    assert_eq!(
        exec(&mut other, "SELECT balance FROM bank.accounts WHERE id = 2").scalar(),
        Some(&Value::Int(2))
    );
    assert_eq!(err(&mut s, "COMMIT"), "there is no transaction in progress");
}

#[test]
fn as_of_system_time_and_logical_timestamp() {
    let (_d, c) = open();
    let mut s = c.session("root").unwrap();
    bank(&mut s);
    let ts = exec(&mut s, "SELECT cluster_logical_timestamp()")
        .scalar()
        .unwrap()
        .to_string();
    assert!(ts.contains('.'), "{ts}");
    exec(&mut s, "UPDATE bank.accounts SET balance = 0");
    exec(&mut s, "DELETE FROM bank.accounts WHERE id = 3");
    let then = exec(
        &mut s,
        &format!("SELECT sum(balance) FROM bank.accounts AS OF SYSTEM TIME {ts}"),
    );
    assert_eq!(then.scalar(), Some(&Value::Int(600)));
    let then = exec(
        &mut s,
        &format!("SELECT id FROM bank.accounts AS OF SYSTEM TIME '{ts}' ORDER BY id"),
    );
    assert_eq!(ints(&then), vec![vec![1], vec![2], vec![3]]);
    assert_eq!(
        exec(&mut s, "SELECT sum(balance) FROM bank.accounts").scalar(),
        Some(&Value::Int(0))
    );
    assert!(
        err(
            &mut s,
            "SELECT * FROM bank.accounts AS OF SYSTEM TIME '+10s'"
        )
        .contains("interval")
    );
}

#[test]
fn fingerprints_match_equal_data() {
    let (_d, c) = open();
    let mut s = c.session("root").unwrap();
    bank(&mut s);
    exec(
        &mut s,
        "CREATE TABLE bank.copy (id INT PRIMARY KEY, balance INT NOT NULL, name STRING)",
    );
    exec(
        &mut s,
        "INSERT INTO bank.copy VALUES (3, 300, 'c'), (1, 100, 'a'), (2, 200, 'b')",
    );
    let fp = |s: &mut Session, t: &str| {
        exec(s, &format!("SHOW EXPERIMENTAL_FINGERPRINTS FROM TABLE {t}")).rows[0][1].clone()
    };
    let a = fp(&mut s, "bank.accounts");
    assert!(!a.is_null());
    assert_eq!(a, fp(&mut s, "bank.copy"));
    exec(&mut s, "UPDATE bank.copy SET balance = 301 WHERE id = 3");
    assert_ne!(a, fp(&mut s, "bank.copy"));
}

#[test]
fn catalog_reads_as_of_a_past_timestamp() {
    let (_d, c) = open();
    let mut s = c.session("root").unwrap();
    bank(&mut s);
    let t1 = c.now().unwrap();
    exec(&mut s, "CREATE TABLE bank.later (id INT PRIMARY KEY)");
    exec(
        &mut s,
        "ALTER TABLE bank.accounts SET (exclude_data_from_backup = true)",
    );
    let t2 = c.now().unwrap();
    exec(&mut s, "DROP TABLE bank.later");
    let names = |ts| -> Vec<String> {
        c.descriptors(ts)
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect()
    };
    // User objects, then the system database and tables a cluster backup carries.
    assert_eq!(
        names(t1),
        vec![
            "defaultdb",
            "public",
            "bank",
            "public",
            "accounts",
            "system",
            "users",
            "zones",
            "settings",
            "scheduled_jobs"
        ]
    );
    assert!(names(t2).contains(&"later".to_string()));
    assert!(!names(c.now().unwrap()).contains(&"later".to_string()));
    let accounts = c
        .descriptors(t1)
        .unwrap()
        .into_iter()
        .find(|d| d.name == "accounts")
        .unwrap();
    assert_eq!(accounts.kind, DescriptorKind::Table);
    assert!(!accounts.exclude_data_from_backup);
    assert_eq!(
        accounts.spans,
        vec![embedded_cluster::keys::table_span(accounts.id)]
    );
    let now = c
        .descriptor(accounts.id, c.now().unwrap())
        .unwrap()
        .unwrap();
    assert!(now.exclude_data_from_backup);
    let before = c.descriptor(accounts.id, t1.prev().prev()).unwrap();
    assert!(before.is_none() || before.unwrap().name == "accounts");
    let ids = c.allocate_descriptor_ids(3).unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| *id > accounts.id));
    let _ = DependencyKind::ForeignKey;
}
