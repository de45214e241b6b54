//! Users and privileges, views, sequences, enums, zone configs, the exclude
//! flag, cluster settings, descriptor publication and the bank workload.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use backup_exec::{Catalog, Ingest};
use backup_format::{DependencyKind, DescriptorKind};
use embedded_cluster::bank::{self, BankConfig};

mod support;
use embedded_cluster::Value;
use support::{err, exec, open};

#[test]
fn privileges_are_enforced_and_granted() {
    let (_d, c) = open();
    let mut root = c.session("root").unwrap();
    exec(&mut root, "CREATE DATABASE bank");
    exec(
        &mut root,
        "CREATE TABLE bank.accounts (id INT PRIMARY KEY, balance INT)",
    );
    exec(&mut root, "INSERT INTO bank.accounts VALUES (1, 10)");
    assert!(c.session("alice").is_err(), "no such user yet");
    exec(&mut root, "CREATE USER alice");
    exec(&mut root, "CREATE ROLE readers");
    assert!(c.session("readers").is_err(), "roles cannot log in");
    let mut alice = c.session("alice").unwrap();
    assert_eq!(
        err(&mut alice, "SELECT * FROM bank.accounts"),
        "user alice does not have SELECT privilege on relation accounts"
    );
    assert_eq!(
        err(&mut alice, "INSERT INTO bank.accounts VALUES (2, 1)"),
        "user alice does not have INSERT privilege on relation accounts"
    );
    assert!(err(&mut alice, "CREATE DATABASE mine").contains("admin"));
    assert!(err(&mut alice, "CREATE USER bob").contains("admin"));
    exec(&mut root, "GRANT SELECT ON TABLE bank.accounts TO readers");
    exec(&mut root, "GRANT readers TO alice");
    assert_eq!(
        exec(&mut alice, "SELECT count(*) FROM bank.accounts").scalar(),
        Some(&Value::Int(1))
    );
    assert_eq!(
        err(&mut alice, "UPDATE bank.accounts SET balance = 0"),
        "user alice does not have UPDATE privilege on relation accounts"
    );
    exec(
        &mut root,
        "GRANT INSERT, UPDATE, DELETE ON bank.accounts TO alice",
    );
    exec(&mut alice, "INSERT INTO bank.accounts VALUES (2, 1)");
    exec(
        &mut alice,
        "UPDATE bank.accounts SET balance = 0 WHERE id = 2",
    );
    exec(&mut alice, "DELETE FROM bank.accounts WHERE id = 2");
    let grants = exec(&mut root, "SHOW GRANTS ON TABLE bank.accounts FOR alice");
    let privs: Vec<String> = grants.rows.iter().map(|r| r[4].to_string()).collect();
    assert_eq!(privs, vec!["DELETE", "INSERT", "UPDATE"]);
    exec(&mut root, "REVOKE readers FROM alice");
    assert!(err(&mut alice, "SELECT * FROM bank.accounts").contains("SELECT privilege"));
    exec(&mut root, "REVOKE ALL ON TABLE bank.accounts FROM alice");
    assert!(err(&mut alice, "DELETE FROM bank.accounts").contains("DELETE privilege"));
    // Admins can do everything.
    exec(&mut root, "GRANT admin TO alice");
    exec(&mut alice, "SELECT * FROM bank.accounts");
    exec(&mut alice, "CREATE DATABASE mine");
    assert!(err(&mut root, "DROP USER nobody").contains("does not exist"));
    assert_eq!(
        err(&mut root, "CREATE USER alice"),
        "role/user \"alice\" already exists"
    );
    // CONNECT on a database.
    exec(&mut root, "CREATE USER carol");
    exec(&mut root, "REVOKE CONNECT ON DATABASE bank FROM public");
    let mut carol = c.session("carol").unwrap();
    assert_eq!(
        err(&mut carol, "USE bank"),
        "user carol does not have CONNECT privilege on database bank"
    );
    let users: Vec<String> = exec(&mut root, "SHOW USERS")
        .rows
        .iter()
        .map(|r| r[0].to_string())
        .collect();
    assert!(users.contains(&"carol".to_string()) && users.contains(&"readers".to_string()));
}

#[test]
fn views_sequences_enums_and_dependencies() {
    let (_d, c) = open();
    bank::sample(&c).unwrap();
    let mut s = c.session("root").unwrap();
    exec(&mut s, "USE bank");
    let ids = exec(&mut s, "SELECT id, name FROM customers ORDER BY id");
    assert_eq!(
        ids.rows[0],
        vec![Value::Int(1), Value::String("alice".into())]
    );
    assert_eq!(ids.rows.len(), 3);
    assert_eq!(
        exec(&mut s, "SELECT nextval('customer_ids')").scalar(),
        Some(&Value::Int(4))
    );
    let rich = exec(&mut s, "SELECT id FROM rich_accounts ORDER BY id");
    assert_eq!(rich.rows, vec![vec![Value::Int(2)], vec![Value::Int(4)]]);
    assert_eq!(
        exec(
            &mut s,
            "SELECT sum(balance) FROM bank.rich_accounts WHERE customer_id = 3"
        )
        .scalar(),
        Some(&Value::Int(9000))
    );
    assert!(
        err(&mut s, "INSERT INTO accounts VALUES (5, 1, 'gold', 1, 'x')")
            .contains("invalid input value for enum")
    );
    assert!(
        err(
            &mut s,
            "INSERT INTO accounts VALUES (5, 99, 'checking', 1, 'x')"
        )
        .contains("foreign key")
    );
    assert_eq!(
        exec(&mut s, "SELECT kind FROM accounts WHERE id = 1").columns[0].1,
        "account_kind"
    );
    // A view's reader needs SELECT on the view only.
    exec(&mut s, "CREATE USER viewer");
    exec(&mut s, "GRANT SELECT ON bank.rich_accounts TO viewer");
    let mut v = c.session("viewer").unwrap();
    assert_eq!(
        exec(&mut v, "SELECT count(*) FROM bank.rich_accounts").scalar(),
        Some(&Value::Int(2))
    );
    assert!(err(&mut v, "SELECT * FROM bank.accounts").contains("SELECT privilege"));
    // Dependencies block drops and show in the catalog.
    assert!(err(&mut s, "DROP TABLE accounts").contains("rich_accounts"));
    assert!(err(&mut s, "DROP TYPE account_kind").contains("depends on it"));
    let descs = c.descriptors(c.now().unwrap()).unwrap();
    let by_name = |n: &str| descs.iter().find(|d| d.name == n).unwrap();
    let accounts = by_name("accounts");
    let deps: Vec<(u64, DependencyKind)> = accounts
        .dependencies
        .iter()
        .map(|d| (d.id, d.kind))
        .collect();
    assert!(deps.contains(&(by_name("customers").id, DependencyKind::ForeignKey)));
    assert!(deps.contains(&(by_name("account_kind").id, DependencyKind::Type)));
    assert_eq!(
        by_name("customers").dependencies[0].id,
        by_name("customer_ids").id
    );
    assert_eq!(
        by_name("customers").dependencies[0].kind,
        DependencyKind::Sequence
    );
    assert_eq!(by_name("rich_accounts").kind, DescriptorKind::View);
    assert_eq!(
        by_name("rich_accounts").dependencies[0].kind,
        DependencyKind::ViewSource
    );
    assert_eq!(
        by_name("customer_ids").spans.len(),
        1,
        "a sequence's value is data"
    );
    exec(&mut s, "DROP VIEW rich_accounts");
    exec(&mut s, "DROP TABLE accounts");
    exec(&mut s, "DROP TYPE account_kind");
    exec(&mut s, "DROP DATABASE bank CASCADE");
    assert_eq!(
        err(&mut s, "SELECT * FROM customers"),
        "relation \"customers\" does not exist"
    );
}

#[test]
fn zone_configs_exclude_flag_and_settings() {
    let (_d, c) = open();
    let mut s = c.session("root").unwrap();
    exec(&mut s, "CREATE TABLE t (id INT PRIMARY KEY)");
    exec(
        &mut s,
        "ALTER TABLE t CONFIGURE ZONE USING gc.ttlseconds = 600",
    );
    let id = c
        .descriptors(c.now().unwrap())
        .unwrap()
        .into_iter()
        .find(|d| d.name == "t")
        .unwrap()
        .id;
    assert_eq!(c.gc_ttl(id).unwrap(), Duration::from_secs(600));
    assert!(
        !c.descriptor(id, c.now().unwrap())
            .unwrap()
            .unwrap()
            .exclude_data_from_backup
    );
    exec(
        &mut s,
        "ALTER TABLE t SET (exclude_data_from_backup = true)",
    );
    assert!(
        c.descriptor(id, c.now().unwrap())
            .unwrap()
            .unwrap()
            .exclude_data_from_backup
    );
    exec(
        &mut s,
        "SET CLUSTER SETTING bulkio.backup.file_size = '64 MiB'",
    );
    assert_eq!(
        exec(&mut s, "SHOW CLUSTER SETTING bulkio.backup.file_size").scalar(),
        Some(&Value::String("64 MiB".into()))
    );
    exec(&mut s, "CREATE USER u");
    let mut u = c.session("u").unwrap();
    assert!(
        err(
            &mut u,
            "ALTER TABLE t CONFIGURE ZONE USING gc.ttlseconds = 1"
        )
        .contains("ZONECONFIG")
    );
    assert!(err(&mut u, "SET CLUSTER SETTING x = 1").contains("admin"));
}

#[test]
fn publish_makes_restored_tables_appear_at_once_under_new_ids() {
    let (_d, c) = open();
    bank::sample(&c).unwrap();
    let mut s = c.session("root").unwrap();
    let before = c.now().unwrap();
    let fp_src = exec(
        &mut s,
        "SHOW EXPERIMENTAL_FINGERPRINTS FROM TABLE bank.accounts",
    );
    // Restore the database as bank2: copy the data under new ids, then publish.
    let descs = c.descriptors(before).unwrap();
    let olds: Vec<_> = descs
        .iter()
        .filter(|d| {
            d.name == "bank" || d.parent_id == descs.iter().find(|x| x.name == "bank").unwrap().id
        })
        .cloned()
        .collect();
    let new_ids = c.allocate_descriptor_ids(olds.len()).unwrap();
    let map: std::collections::BTreeMap<u64, u64> = olds
        .iter()
        .map(|d| d.id)
        .zip(new_ids.iter().copied())
        .collect();
    let rewriter = c.key_rewriter(&map).unwrap();
    for d in &olds {
        for span in &d.spans {
            let rows = c
                .scan(span, before, backup_exec::IntentPolicy::FailFast)
                .unwrap();
            let ts = c.now().unwrap();
            let batch = rows
                .into_iter()
                .map(|(k, v)| backup_format::MvccEntry {
                    key: rewriter.rewrite(&k).unwrap(),
                    ts,
                    value: Some(v),
                })
                .collect::<Vec<_>>();
            c.ingest(batch).unwrap();
        }
    }
    assert!(
        s.execute("SELECT * FROM bank2.accounts").is_err(),
        "invisible before publish"
    );
    let published: Vec<_> = olds
        .iter()
        .map(|d| {
            let mut n = d.clone();
            n.id = map[&d.id];
            n.parent_id = map.get(&d.parent_id).copied().unwrap_or(0);
            n.parent_schema_id = map.get(&d.parent_schema_id).copied().unwrap_or(0);
            if d.kind == DescriptorKind::Database {
                n.name = "bank2".into();
            }
            n
        })
        .collect();
    c.publish(&published).unwrap();
    let fp_new = exec(
        &mut s,
        "SHOW EXPERIMENTAL_FINGERPRINTS FROM TABLE bank2.accounts",
    );
    assert_eq!(fp_src.rows, fp_new.rows);
    assert_eq!(
        exec(&mut s, "SELECT count(*) FROM bank2.rich_accounts").scalar(),
        Some(&Value::Int(2))
    );
    // References moved: the FK now points at bank2.customers.
    assert!(
        err(
            &mut s,
            "INSERT INTO bank2.accounts VALUES (9, 42, 'checking', 1, 'x')"
        )
        .contains("foreign key")
    );
    exec(&mut s, "INSERT INTO bank2.customers (name) VALUES ('dave')");
    assert_eq!(
        exec(&mut s, "SELECT count(*) FROM bank.customers").scalar(),
        Some(&Value::Int(3)),
        "source untouched"
    );
    // Publishing the same names again is refused.
    assert!(c.publish(&published).is_err());
}

#[test]
fn bank_load_writes_rows_readable_by_sql() {
    let (_d, c) = open();
    let stats = bank::load(
        &c,
        &BankConfig {
            rows: 5_000,
            payload_bytes: 50,
            batch_rows: 1_000,
            initial_balance: 7,
        },
    )
    .unwrap();
    assert_eq!(stats.rows, 5_000);
    assert!(stats.bytes > 5_000 * 50);
    let mut s = c.session("root").unwrap();
    let r = exec(&mut s, "SELECT count(*), sum(balance) FROM bank.accounts");
    assert_eq!(r.rows[0], vec![Value::Int(5_000), Value::Int(35_000)]);
    let row = exec(
        &mut s,
        "SELECT id, payload FROM bank.accounts WHERE id = 4999",
    );
    assert_eq!(row.rows[0][1].as_str().unwrap().len(), 50);
    assert_eq!(
        err(&mut s, "INSERT INTO bank.accounts VALUES (0, 1, 'x')"),
        "duplicate key value violates unique constraint \"accounts_pkey\""
    );
}
