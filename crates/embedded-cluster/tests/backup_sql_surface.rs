//! End to end through `Session::execute`: the SHOW BACKUP variants and
//! `check_files`, privileges, backup-time dependency errors and the
//! `skip_missing_*` options, `schema.*` name resolution, and the
//! `AS OF SYSTEM TIME` forms.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use embedded_cluster::{QueryResult, Session, Value};

mod support;
use support::{column_values as column, err, exec, open_with_backups as open};

fn names(r: &QueryResult) -> Vec<&str> {
    r.columns.iter().map(|(n, _)| n.as_str()).collect()
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

/// Every regular file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A database with a table, a user-defined schema with a table, and an
/// orders table with a foreign key to customers.
fn shop(s: &mut Session) {
    exec(s, "CREATE DATABASE shop");
    exec(s, "USE shop");
    exec(
        s,
        "CREATE TABLE customers (id INT PRIMARY KEY, name STRING)",
    );
    exec(
        s,
        "CREATE TABLE orders (id INT PRIMARY KEY, customer INT REFERENCES customers (id))",
    );
    exec(s, "CREATE SCHEMA archive");
    exec(s, "CREATE TABLE archive.old (id INT PRIMARY KEY)");
    exec(s, "INSERT INTO customers VALUES (1, 'ann'), (2, 'bo')");
    exec(s, "INSERT INTO orders VALUES (10, 1), (11, 2), (12, 2)");
    exec(s, "INSERT INTO archive.old VALUES (7)");
}

#[test]
fn show_backup_variants_and_check_files_find_a_corrupt_file() {
    let (dir, cluster) = open();
    let mut r = cluster.session("root").unwrap();
    shop(&mut r);
    exec(&mut r, "BACKUP DATABASE shop INTO 'nodelocal://1/shop'");
    let uri = "'nodelocal://1/shop'";

    let all = exec(&mut r, &format!("SHOW BACKUP FROM LATEST IN {uri}"));
    let objects = column(&all, "object_name");
    for want in ["shop", "customers", "orders", "archive", "old"] {
        assert!(objects.contains(&s(want)), "{want} in {objects:?}");
    }
    let orders = objects.iter().position(|o| *o == s("orders")).unwrap();
    assert_eq!(column(&all, "rows")[orders], Value::Int(3));
    assert_eq!(column(&all, "parent_schema_name")[orders], s("public"));

    let schemas = exec(&mut r, &format!("SHOW BACKUP SCHEMAS FROM LATEST IN {uri}"));
    assert_eq!(schemas.rows.len(), all.rows.len());
    let files_rs = exec(&mut r, &format!("SHOW BACKUP FILES FROM LATEST IN {uri}"));
    assert_eq!(
        names(&files_rs),
        [
            "path",
            "backup_type",
            "start_pretty",
            "end_pretty",
            "size_bytes",
            "rows"
        ]
    );
    assert!(!files_rs.rows.is_empty());
    let ranges = exec(&mut r, &format!("SHOW BACKUP RANGES FROM LATEST IN {uri}"));
    assert_eq!(
        names(&ranges),
        ["start_pretty", "end_pretty", "start_key", "end_key"]
    );
    assert!(!ranges.rows.is_empty());

    exec(
        &mut r,
        &format!("SHOW BACKUP FROM LATEST IN {uri} WITH check_files"),
    );
    // Flip one byte in the middle of one data file: check_files names it.
    let data: Vec<PathBuf> = files(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .filter(|p| p.to_string_lossy().contains("shop"))
        .collect();
    assert!(!data.is_empty(), "data files under the nodelocal directory");
    let victim = &data[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(victim, bytes).unwrap();
    let e = err(
        &mut r,
        &format!("SHOW BACKUP FROM LATEST IN {uri} WITH check_files"),
    );
    let name = victim.file_name().unwrap().to_string_lossy().to_string();
    assert!(e.contains(&name), "{e} names {name}");
}

#[test]
fn privileges_are_checked_per_object_and_named_in_the_error() {
    let (_dir, cluster) = open();
    let mut r = cluster.session("root").unwrap();
    shop(&mut r);
    exec(&mut r, "CREATE USER alice");
    let mut a = cluster.session("alice").unwrap();
    exec(&mut a, "USE shop");

    let e = err(&mut a, "BACKUP TABLE shop.customers INTO 'nodelocal://1/a'");
    assert!(e.contains("SELECT") && e.contains("customers"), "{e}");
    exec(&mut r, "GRANT SELECT ON TABLE shop.customers TO alice");
    exec(&mut a, "BACKUP TABLE shop.customers INTO 'nodelocal://1/a'");

    // A database backup reads every table of it: SELECT on each.
    let e = err(&mut a, "BACKUP DATABASE shop INTO 'nodelocal://1/b'");
    assert!(e.contains("SELECT") && e.contains("orders"), "{e}");
    // And CONNECT on the database, which `public` has until revoked.
    exec(
        &mut r,
        "GRANT SELECT ON TABLE shop.orders, shop.archive.old TO alice",
    );
    exec(&mut r, "GRANT USAGE ON SCHEMA shop.archive TO alice");
    exec(&mut a, "BACKUP DATABASE shop INTO 'nodelocal://1/b'");
    exec(&mut r, "REVOKE CONNECT ON DATABASE shop FROM public");
    let e = err(&mut a, "BACKUP DATABASE shop INTO 'nodelocal://1/b2'");
    assert!(e.contains("CONNECT") && e.contains("shop"), "{e}");
    exec(&mut r, "GRANT CONNECT ON DATABASE shop TO public");
    exec(&mut r, "REVOKE USAGE ON SCHEMA shop.archive FROM alice");

    let e = err(
        &mut a,
        "BACKUP TABLE shop.archive.old INTO 'nodelocal://1/c'",
    );
    assert!(e.contains("old") || e.contains("archive"), "{e}");

    let e = err(&mut a, "BACKUP INTO 'nodelocal://1/d'");
    assert!(e.contains("admin"), "{e}");
}

#[test]
fn dependencies_at_backup_and_restore_time() {
    let (_dir, cluster) = open();
    let mut r = cluster.session("root").unwrap();
    shop(&mut r);
    // A table without its foreign-key target is refused, naming both.
    let e = err(&mut r, "BACKUP TABLE shop.orders INTO 'nodelocal://1/x'");
    assert!(e.contains("orders") && e.contains("customers"), "{e}");

    // Both in the backup; restoring orders alone needs the skip option.
    exec(
        &mut r,
        "BACKUP TABLE shop.orders, shop.customers INTO 'nodelocal://1/both'",
    );
    exec(&mut r, "CREATE DATABASE other");
    let e = err(
        &mut r,
        "RESTORE TABLE shop.orders FROM LATEST IN 'nodelocal://1/both' WITH into_db = 'other'",
    );
    assert!(e.contains("customers"), "{e}");
    exec(
        &mut r,
        "RESTORE TABLE shop.orders FROM LATEST IN 'nodelocal://1/both' \
         WITH into_db = 'other', skip_missing_foreign_keys",
    );
    let n = exec(&mut r, "SELECT count(*) FROM other.orders");
    assert_eq!(n.scalar(), Some(&Value::Int(3)));
    // Without the foreign key, an order for a missing customer is accepted.
    exec(&mut r, "INSERT INTO other.orders VALUES (99, 12345)");

    // A table of a user-defined schema goes into the schema of that name.
    exec(
        &mut r,
        "BACKUP TABLE shop.archive.old INTO 'nodelocal://1/old'",
    );
    let e = err(
        &mut r,
        "RESTORE TABLE shop.archive.old FROM LATEST IN 'nodelocal://1/old' WITH into_db = 'other'",
    );
    assert!(e.contains("archive") && e.contains("other"), "{e}");
    exec(&mut r, "CREATE SCHEMA other.archive");
    exec(
        &mut r,
        "RESTORE TABLE shop.archive.old FROM LATEST IN 'nodelocal://1/old' WITH into_db = 'other'",
    );
    let n = exec(&mut r, "SELECT count(*) FROM other.archive.old");
    assert_eq!(n.scalar(), Some(&Value::Int(1)));
}

#[test]
fn schema_star_resolves_a_schema_before_a_database() {
    let (_dir, cluster) = open();
    let mut r = cluster.session("root").unwrap();
    shop(&mut r);
    // A database named like the schema: `archive.*` in `shop` is the schema.
    exec(&mut r, "CREATE DATABASE archive");
    exec(
        &mut r,
        "CREATE TABLE archive.public.decoy (id INT PRIMARY KEY)",
    );
    exec(&mut r, "USE shop");
    exec(&mut r, "BACKUP TABLE archive.* INTO 'nodelocal://1/star'");
    let show = exec(&mut r, "SHOW BACKUP FROM LATEST IN 'nodelocal://1/star'");
    let objects = column(&show, "object_name");
    assert!(objects.contains(&s("old")), "{objects:?}");
    assert!(!objects.contains(&s("decoy")), "{objects:?}");
}

#[test]
fn as_of_system_time_forms() {
    let (_dir, cluster) = open();
    let mut r = cluster.session("root").unwrap();
    shop(&mut r);
    let now = exec(&mut r, "SELECT cluster_logical_timestamp()");
    let ts = match now.scalar().unwrap() {
        Value::String(t) => t.clone(),
        Value::Decimal(t) => t.to_string(),
        other => format!("{other}"),
    };
    exec(&mut r, "INSERT INTO customers VALUES (3, 'cy')");
    exec(
        &mut r,
        &format!("BACKUP TABLE customers INTO 'nodelocal://1/aost' AS OF SYSTEM TIME {ts}"),
    );
    let show = exec(&mut r, "SHOW BACKUP FROM LATEST IN 'nodelocal://1/aost'");
    let i = column(&show, "object_name")
        .iter()
        .position(|o| *o == s("customers"))
        .unwrap();
    assert_eq!(
        column(&show, "rows")[i],
        Value::Int(2),
        "as of before the insert"
    );

    // follower_read_timestamp() is a few seconds back: before `shop` existed.
    let e = err(
        &mut r,
        "BACKUP TABLE customers INTO 'nodelocal://1/aost2' AS OF SYSTEM TIME follower_read_timestamp()",
    );
    assert!(e.contains("shop") && e.contains("does not exist"), "{e}");
    exec(
        &mut r,
        "BACKUP TABLE customers INTO 'nodelocal://1/aost3' AS OF SYSTEM TIME '-1ms'",
    );
    let e = err(
        &mut r,
        "BACKUP TABLE customers INTO 'nodelocal://1/aost4' AS OF SYSTEM TIME 'yesterday-ish'",
    );
    assert!(e.contains("yesterday-ish"), "{e}");
}
