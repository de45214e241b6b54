//! Restores inside revision-history layers get the schema of exactly the
//! restored time: a database whose tables are created, indexed, changed and
//! dropped inside a chain of a full backup and incrementals `WITH
//! revision_history` is restored at a time between each pair of changes,
//! and every restore has exactly the tables (and indexes) the database had
//! then, each with the rows `SELECT ... AS OF SYSTEM TIME` reads. A restore
//! before the time the full backup's history starts (the GC threshold when
//! it was taken) is an error that says from when history is available. A
//! full-cluster restore inside the history gets the databases of that time,
//! and a damaged revision list is an error naming it.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use backup_exec::restore::BackupChoice;
use backup_exec::{Catalog, RestoreSource, verify_backup};
use backup_format::manifest::REVISIONS_SIDE_FILE;
use backup_format::{Descriptor, DescriptorKind, Timestamp};
use backup_storage::StorageContext;
use e2e::sql::{collection_uri as uri, err, exec};
use embedded_cluster::catalog::SYSTEM_DATABASE_ID;
use embedded_cluster::{Cluster, QueryResult, Session, Value};

/// The tables of database `db` as of `at`: name -> descriptor.
fn tables(c: &Cluster, db: &str, at: Timestamp) -> BTreeMap<String, Descriptor> {
    let all = c.descriptors(at).unwrap();
    let Some(db) = all
        .iter()
        .find(|d| d.kind == DescriptorKind::Database && d.name == db)
    else {
        return BTreeMap::new();
    };
    all.iter()
        .filter(|d| d.kind == DescriptorKind::Table && d.parent_id == db.id)
        .map(|d| (d.name.clone(), d.clone()))
        .collect()
}

fn rows(r: QueryResult) -> Vec<Vec<Value>> {
    r.rows
}

/// Restores `shop` as of `at` into `into`, then checks it has the tables,
/// indexes and rows `shop` had at `at`.
fn restore_matches(c: &Cluster, s: &mut Session, collection: &str, at: Timestamp, into: &str) {
    exec(
        s,
        &format!(
            "RESTORE DATABASE shop FROM LATEST IN '{collection}' AS OF SYSTEM TIME {at} \
             WITH new_db_name = '{into}'"
        ),
    );
    let now = c.now().unwrap();
    let want = tables(c, "shop", at);
    let got = tables(c, into, now);
    assert!(!want.is_empty(), "shop had tables at {at}");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the tables restored as of {at}"
    );
    for (name, d) in &want {
        assert_eq!(
            c.index_spans(&got[name]).len(),
            c.index_spans(d).len(),
            "secondary indexes of {name} restored as of {at}"
        );
        let source = rows(exec(
            s,
            &format!("SELECT * FROM shop.{name} AS OF SYSTEM TIME {at} ORDER BY id"),
        ));
        let restored = rows(exec(s, &format!("SELECT * FROM {into}.{name} ORDER BY id")));
        assert_eq!(restored, source, "rows of {name} restored as of {at}");
    }
}

#[test]
fn restores_inside_revision_history_get_the_schema_and_data_of_that_time() {
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let c = Cluster::open_default(dirs[0].path()).unwrap();
    c.enable_backup_statements().unwrap();
    let collection = uri(dirs[1].path());
    let mut s = c.session("root").unwrap();
    let mut times = Vec::new();
    let mut step = |s: &mut Session, sqls: &[&str]| {
        for sql in sqls {
            exec(s, sql);
        }
        let t = c.now().unwrap();
        times.push(t);
        t
    };

    // History before the GC threshold is gone.
    let ancient = step(
        &mut s,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id INT PRIMARY KEY, name STRING)",
            "INSERT INTO shop.items VALUES (1, 'pen'), (2, 'ink')",
        ],
    );
    let items = tables(&c, "shop", ancient)["items"].id;
    c.set_gc_ttl(items, Duration::ZERO).unwrap();
    exec(&mut s, "UPDATE shop.items SET name = 'quill' WHERE id = 1");
    c.run_gc_at(c.now().unwrap()).unwrap();

    // Inside the full backup's window: a table created, then dropped.
    step(
        &mut s,
        &[
            "CREATE TABLE shop.drafts (id INT PRIMARY KEY, note STRING)",
            "INSERT INTO shop.drafts VALUES (1, 'a'), (2, 'b')",
        ],
    );
    step(&mut s, &["INSERT INTO shop.items VALUES (3, 'pad')"]);
    step(&mut s, &["DROP TABLE shop.drafts"]);
    exec(
        &mut s,
        &format!("BACKUP DATABASE shop INTO '{collection}' WITH revision_history"),
    );

    // Inside the first incremental's window: a new table, an index, a
    // change, a drop.
    step(
        &mut s,
        &[
            "CREATE TABLE shop.orders (id INT PRIMARY KEY, item INT, qty INT)",
            "INSERT INTO shop.orders VALUES (1, 1, 5), (2, 3, 1)",
        ],
    );
    step(
        &mut s,
        &[
            "CREATE INDEX items_name_idx ON shop.items (name)",
            "INSERT INTO shop.items VALUES (4, 'clip')",
        ],
    );
    step(&mut s, &["UPDATE shop.orders SET qty = 7 WHERE id = 1"]);
    step(&mut s, &["DROP TABLE shop.orders"]);
    step(&mut s, &["DELETE FROM shop.items WHERE id = 2"]);
    exec(
        &mut s,
        &format!("BACKUP DATABASE shop INTO LATEST IN '{collection}' WITH revision_history"),
    );

    // Inside the second incremental's window: a table created and kept.
    step(
        &mut s,
        &[
            "CREATE TABLE shop.returns (id INT PRIMARY KEY, item INT)",
            "INSERT INTO shop.returns VALUES (1, 4)",
        ],
    );
    step(
        &mut s,
        &["UPDATE shop.items SET name = 'eraser' WHERE id = 3"],
    );
    exec(
        &mut s,
        &format!("BACKUP DATABASE shop INTO LATEST IN '{collection}' WITH revision_history"),
    );

    for (i, at) in times.iter().enumerate().skip(1) {
        restore_matches(&c, &mut s, &collection, *at, &format!("shop_{i}"));
    }

    // SHOW-free check that the names resolved as of the time: a table that
    // existed only inside the window restores on its own.
    exec(
        &mut s,
        &format!(
            "RESTORE TABLE shop.orders FROM LATEST IN '{collection}' AS OF SYSTEM TIME {} \
             WITH into_db = 'shop_1'",
            times[5]
        ),
    );
    assert_eq!(
        rows(exec(&mut s, "SELECT qty FROM shop_1.orders ORDER BY id")),
        vec![vec![Value::Int(5)], vec![Value::Int(1)]]
    );

    // Before the history's start: an error naming when history starts.
    let e = err(
        &mut s,
        &format!(
            "RESTORE DATABASE shop FROM LATEST IN '{collection}' AS OF SYSTEM TIME {ancient} \
             WITH new_db_name = 'too_old'"
        ),
    );
    assert!(e.contains("available only from"), "{e}");
    assert!(tables(&c, "too_old", c.now().unwrap()).is_empty());
}

/// Every file under `dir` named `name`.
fn find(dir: &Path, name: &str, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            find(&path, name, out);
        } else if path.file_name().is_some_and(|n| n == name) {
            out.push(path);
        }
    }
}

#[test]
fn a_damaged_revision_list_is_an_error_naming_it() {
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let c = Cluster::open_default(dirs[0].path()).unwrap();
    c.enable_backup_statements().unwrap();
    let collection = uri(dirs[1].path());
    let mut s = c.session("root").unwrap();
    exec(&mut s, "CREATE DATABASE shop");
    exec(&mut s, "CREATE TABLE shop.items (id INT PRIMARY KEY)");
    let inside = c.now().unwrap();
    exec(&mut s, "INSERT INTO shop.items VALUES (1)");
    exec(
        &mut s,
        &format!("BACKUP DATABASE shop INTO '{collection}' WITH revision_history"),
    );
    let mut files = Vec::new();
    find(dirs[1].path(), REVISIONS_SIDE_FILE, &mut files);
    assert_eq!(files.len(), 1, "one revision list: {files:?}");
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&files[0], bytes).unwrap();

    let e = err(
        &mut s,
        &format!(
            "RESTORE DATABASE shop FROM LATEST IN '{collection}' AS OF SYSTEM TIME {inside} \
             WITH new_db_name = 'damaged'"
        ),
    );
    assert!(e.contains(REVISIONS_SIDE_FILE), "{e}");
    assert!(tables(&c, "damaged", c.now().unwrap()).is_empty());

    let source = RestoreSource {
        collection: collection.clone(),
        locality_uris: Vec::new(),
        incremental_location: None,
        backup: BackupChoice::Latest,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt
        .block_on(verify_backup(&StorageContext::default(), &source, None))
        .unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.file.ends_with(REVISIONS_SIDE_FILE)),
        "{:?}",
        report.problems
    );
}

/// Every database name, and every table as `db.table`, as of `at`.
fn objects(c: &Cluster, at: Timestamp) -> Vec<String> {
    let all = c.descriptors(at).unwrap();
    let db_name = |id| {
        all.iter()
            .find(|d| d.id == id && d.kind == DescriptorKind::Database)
            .map_or("?".to_string(), |d| d.name.clone())
    };
    let mut out: Vec<String> = all
        .iter()
        .filter(|d| d.id != SYSTEM_DATABASE_ID && d.parent_id != SYSTEM_DATABASE_ID)
        .filter_map(|d| match d.kind {
            DescriptorKind::Database => Some(d.name.clone()),
            DescriptorKind::Table => Some(format!("{}.{}", db_name(d.parent_id), d.name)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_cluster_restore_inside_history_has_the_databases_and_tables_of_that_time() {
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let a = Cluster::open_default(dirs[0].path()).unwrap();
    a.enable_backup_statements().unwrap();
    let collection = uri(dirs[1].path());
    let mut s = a.session("root").unwrap();
    exec(&mut s, "CREATE DATABASE shop");
    exec(
        &mut s,
        "CREATE TABLE shop.items (id INT PRIMARY KEY, name STRING)",
    );
    exec(&mut s, "INSERT INTO shop.items VALUES (1, 'pen')");
    let t1 = a.now().unwrap();
    exec(&mut s, "CREATE DATABASE scratch");
    exec(&mut s, "CREATE TABLE scratch.notes (id INT PRIMARY KEY)");
    exec(&mut s, "INSERT INTO scratch.notes VALUES (7)");
    let t2 = a.now().unwrap();
    exec(&mut s, "DROP DATABASE scratch CASCADE");
    exec(&mut s, "INSERT INTO shop.items VALUES (2, 'ink')");
    let t3 = a.now().unwrap();
    exec(
        &mut s,
        &format!("BACKUP INTO '{collection}' WITH revision_history"),
    );

    for at in [t1, t2, t3] {
        let target = tempfile::tempdir().unwrap();
        let b = Cluster::open_default(target.path()).unwrap();
        b.enable_backup_statements().unwrap();
        let mut sb = b.session("root").unwrap();
        exec(
            &mut sb,
            &format!("RESTORE FROM LATEST IN '{collection}' AS OF SYSTEM TIME {at}"),
        );
        assert_eq!(
            objects(&b, b.now().unwrap()),
            objects(&a, at),
            "databases and tables restored as of {at}"
        );
        assert_eq!(
            rows(exec(&mut sb, "SELECT * FROM shop.items ORDER BY id")),
            rows(exec(
                &mut s,
                &format!("SELECT * FROM shop.items AS OF SYSTEM TIME {at} ORDER BY id")
            )),
        );
        if at == t2 {
            assert_eq!(
                rows(exec(&mut sb, "SELECT * FROM scratch.notes")),
                vec![vec![Value::Int(7)]]
            );
        }
    }
}
