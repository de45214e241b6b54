//! BACKUP and RESTORE run end to end on `backup-exec`'s in-memory fakes:
//! result rows, name resolution, privileges, dependencies, restores into
//! new ids, and the errors (kms, BACKUP ... TO, no secrets).
#![allow(clippy::unwrap_used)]

mod support;

use backup_format::DescriptorKind;
use backup_sql::{Datum, Privilege, SqlError};
use support::*;

#[test]
fn backup_full_then_incremental_returns_job_rows_and_show_backups_lists_the_full_backup() {
    let fx = fixture();
    let full = fx.ok(&format!("BACKUP DATABASE bank INTO '{URI}'"));
    assert_eq!(full.column_names(), BACKUP_COLUMNS);
    let types: Vec<_> = full.columns.iter().map(|c| c.type_name.as_str()).collect();
    assert_eq!(types, ["INT8", "STRING", "FLOAT8", "INT8", "INT8", "INT8"]);
    assert_eq!(string(col(&full, 0, "status")), "succeeded");
    assert_eq!(int(col(&full, 0, "rows")), 4 * 40, "bank's four tables");
    fx.write(1, 10);
    let inc = fx.ok(&format!("BACKUP DATABASE bank INTO LATEST IN '{URI}'"));
    assert_eq!(int(col(&inc, 0, "rows")), 4 * 10, "only the changed rows");
    let backups = fx.ok(&format!("SHOW BACKUPS IN '{URI}'"));
    assert_eq!(backups.column_names(), ["path"]);
    assert_eq!(backups.rows.len(), 1, "{backups:?}");
    let path = string(&backups.rows[0][0]).to_string();
    // A second full backup into the subdirectory's collection is listed too.
    fx.ok(&format!("BACKUP TABLE accounts INTO '{URI}'"));
    assert_eq!(fx.ok(&format!("SHOW BACKUPS IN '{URI}'")).rows.len(), 2);
    // An incremental into a named subdirectory.
    let r = fx.ok(&format!("BACKUP DATABASE bank INTO '{path}' IN '{URI}'"));
    assert_eq!(string(col(&r, 0, "status")), "succeeded");
}

#[test]
fn schema_wildcard_resolves_a_schema_of_the_current_database_before_a_database() {
    let fx = fixture();
    let rs = fx.ok(&format!("BACKUP TABLE x.* INTO '{URI}'"));
    // bank.x.y (40 rows), not database x's table t.
    assert_eq!(int(col(&rs, 0, "rows")), 40);
    let show = fx.ok(&format!("SHOW BACKUP FROM LATEST IN '{URI}'"));
    let objects: Vec<_> = show
        .rows
        .iter()
        .map(|r| string(&r[2]).to_string())
        .collect();
    assert!(objects.contains(&"y".to_string()), "{objects:?}");
    assert!(!objects.contains(&"t".to_string()), "{objects:?}");
    // An unqualified name resolves in the current database; x.t in database x.
    let rs = fx.ok(&format!("BACKUP TABLE accounts, x.t INTO '{URI}'"));
    assert_eq!(int(col(&rs, 0, "rows")), 80);
    let err = fx
        .run(&root(), &format!("BACKUP TABLE nosuch INTO '{URI}'"))
        .unwrap_err();
    assert!(
        err.to_string().contains("\"nosuch\" does not exist"),
        "{err}"
    );
}

#[test]
fn restore_database_with_new_db_name_and_table_into_db_use_new_ids_and_equal_data() {
    let fx = fixture();
    fx.ok(&format!("BACKUP DATABASE bank INTO '{URI}'"));
    fx.write(1, 10);
    fx.ok(&format!("BACKUP DATABASE bank INTO LATEST IN '{URI}'"));
    let rs = fx.ok(&format!(
        "RESTORE DATABASE bank FROM LATEST IN '{URI}' WITH new_db_name = 'bank2'"
    ));
    assert_eq!(rs.column_names(), BACKUP_COLUMNS);
    assert_eq!(string(col(&rs, 0, "status")), "succeeded");
    let published = fx.ingest.published();
    let db = published
        .iter()
        .find(|d| d.kind == DescriptorKind::Database)
        .unwrap();
    assert_eq!(db.name, "bank2");
    assert!(db.id >= 1000, "a fresh id: {}", db.id);
    let accounts = published.iter().find(|d| d.name == "accounts").unwrap();
    assert!(accounts.id >= 1000);
    assert_eq!(accounts.parent_id, db.id);
    assert_eq!(fx.restored(accounts.id), fx.data(51));
    assert_eq!(int(col(&rs, 0, "rows")), 4 * 40);
    // Restoring bank again without a new name collides with the live database.
    let err = fx
        .run(
            &root(),
            &format!("RESTORE DATABASE bank FROM LATEST IN '{URI}'"),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("database \"bank\" already exists"),
        "{err}"
    );
    // A table into an existing database.
    fx.ok(&format!(
        "RESTORE TABLE bank.customers FROM LATEST IN '{URI}' WITH into_db = 'restored'"
    ));
    let customers = fx
        .ingest
        .published()
        .into_iter()
        .find(|d| d.name == "customers" && d.parent_id == 70)
        .unwrap();
    assert_eq!(fx.restored(customers.id), fx.data(52));
}

#[test]
fn each_missing_privilege_is_an_error_naming_the_object_and_privilege() {
    let fx = fixture();
    let cases = [
        (
            alice(&[]),
            "BACKUP INTO 'nodelocal://1/c'",
            "only users with the admin role",
        ),
        (
            alice(&[(51, Privilege::Select)]),
            "BACKUP TABLE accounts INTO 'nodelocal://1/c'",
            "user alice does not have SELECT privilege on relation accounts",
        ),
        (
            alice(&[(50, Privilege::Connect)]),
            "BACKUP DATABASE bank INTO 'nodelocal://1/c'",
            "user alice does not have CONNECT privilege on database bank",
        ),
        (
            alice(&[(54, Privilege::Usage)]),
            "BACKUP TABLE x.y INTO 'nodelocal://1/c'",
            "user alice does not have USAGE privilege on schema x",
        ),
        (
            alice(&[(59, Privilege::Usage)]),
            "BACKUP TABLE invoices, invoice_seq INTO 'nodelocal://1/c'",
            "user alice does not have USAGE privilege on type status",
        ),
    ];
    for (ctx, sql, want) in cases {
        let err = fx.run(&ctx, sql).unwrap_err();
        assert!(matches!(err, SqlError::Privilege(_)), "{sql}: {err:?}");
        assert!(err.to_string().contains(want), "{sql}: {err}");
    }
    // With the privileges, alice backs up the table.
    fx.tick();
    let rs = fx
        .run(&alice(&[]), "BACKUP TABLE accounts INTO 'nodelocal://1/c'")
        .unwrap();
    assert_eq!(int(col(&rs, 0, "rows")), 40);
}

#[test]
fn a_foreign_key_target_missing_from_the_backup_is_an_error_naming_both() {
    let fx = fixture();
    let err = fx
        .run(&root(), &format!("BACKUP TABLE orders INTO '{URI}'"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "table \"bank.public.orders\" references table \"customers\" via foreign key which is not in the backup"
    );
    fx.ok(&format!("BACKUP TABLE orders, customers INTO '{URI}'"));
    let err = fx
        .run(&root(), &format!("BACKUP TABLE invoices INTO '{URI}'"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "table \"bank.public.invoices\" references sequence \"invoice_seq\" via sequence which is not in the backup"
    );
    let err = fx
        .run(&root(), &format!("BACKUP TABLE v INTO '{URI}'"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "view \"bank.public.v\" references relation \"accounts\" as a view source which is not in the backup"
    );
    // The type comes along on its own; the sequence and the view's source
    // named with them make the backups whole.
    fx.ok(&format!("BACKUP TABLE invoices, invoice_seq INTO '{URI}'"));
    let show = fx.ok(&format!("SHOW BACKUP FROM LATEST IN '{URI}'"));
    let types: Vec<_> = show
        .rows
        .iter()
        .map(|r| (r[2].clone(), r[3].clone()))
        .collect();
    assert!(
        types.contains(&(Datum::String("status".into()), Datum::String("type".into()))),
        "{types:?}"
    );
    fx.ok(&format!("BACKUP TABLE v, accounts INTO '{URI}'"));
}

#[test]
fn kms_and_backup_to_are_clear_errors() {
    let fx = fixture();
    let err = fx
        .run(
            &root(),
            &format!("BACKUP DATABASE bank INTO '{URI}' WITH kms = 'aws:///k'"),
        )
        .unwrap_err();
    assert!(err.to_string().contains("option \"kms\""), "{err}");
    let err = fx
        .run(&root(), &format!("BACKUP DATABASE bank TO '{URI}'"))
        .unwrap_err();
    assert!(
        err.to_string().contains("BACKUP ... TO is deprecated"),
        "{err}"
    );
}

#[test]
fn errors_name_no_secret_of_the_statement() {
    let fx = fixture();
    for sql in [
        "RESTORE DATABASE bank FROM LATEST IN 'nodelocal://1/nothing?AWS_ACCESS_KEY_ID=keyid&AWS_SECRET_ACCESS_KEY=hush'",
        "SHOW BACKUP FROM LATEST IN 'nodelocal://1/nothing-here' WITH encryption_passphrase = 'hush'",
        "RESTORE DATABASE bank FROM 'no/such' IN 'nodelocal://1/backups' WITH encryption_passphrase = 'hush'",
    ] {
        let err = fx.run(&root(), sql).unwrap_err().to_string();
        assert!(!err.contains("hush"), "{sql}: {err}");
    }
}
