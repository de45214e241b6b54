//! Every statement form and option: what it parses to, how it formats, and
//! that the formatted text parses back to the same tree.
#![allow(clippy::unwrap_used)]

use backup_sql::*;

/// Parses, checks the round trip, and returns the canonical text.
fn canon(sql: &str) -> String {
    let stmt = parse_statement(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let text = stmt.to_string();
    let again = parse_statement(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(again, stmt, "{sql} -> {text}");
    text
}

fn s(v: &str) -> Expr {
    Expr::String(v.into())
}

fn backup(sql: &str) -> Backup {
    match parse_statement(sql).unwrap() {
        Statement::Backup(b) => b,
        other => panic!("{other:?}"),
    }
}

#[test]
fn backup_targets() {
    for (sql, want) in [
        ("BACKUP INTO 'u'", "BACKUP INTO 'u'"),
        (
            "backup database bank into 'u'",
            "BACKUP DATABASE bank INTO 'u'",
        ),
        (
            "BACKUP DATABASE a, \"B c\" INTO 'u'",
            "BACKUP DATABASE a, \"B c\" INTO 'u'",
        ),
        ("BACKUP TABLE t, u INTO 'u'", "BACKUP TABLE t, u INTO 'u'"),
        (
            "BACKUP t, db.s.u INTO 'u'",
            "BACKUP TABLE t, db.s.u INTO 'u'",
        ),
        ("BACKUP s.* INTO 'u'", "BACKUP TABLE s.* INTO 'u'"),
        (
            "BACKUP TABLE db.s.*, x INTO 'u'",
            "BACKUP TABLE db.s.*, x INTO 'u'",
        ),
        (
            "BACKUP DATABASE latest INTO 'u'",
            "BACKUP DATABASE \"latest\" INTO 'u'",
        ),
        ("BACKUP \"into\" INTO 'u'", "BACKUP TABLE \"into\" INTO 'u'"),
        (
            "BACKUP Bank.CUSTOMERS INTO 'u'",
            "BACKUP TABLE bank.customers INTO 'u'",
        ),
    ] {
        assert_eq!(canon(sql), want);
    }
    let b = backup("BACKUP db.s.* , t INTO 'u'");
    assert_eq!(
        b.targets,
        Targets::Tables(vec![
            TablePattern {
                parts: vec![Ident::new("db"), Ident::new("s")],
                wildcard: true
            },
            TablePattern {
                parts: vec![Ident::new("t")],
                wildcard: false
            },
        ])
    );
    assert_eq!(backup("BACKUP INTO 'u'").targets, Targets::Cluster);
}

#[test]
fn backup_destinations() {
    let b = backup("BACKUP INTO LATEST IN 'c'");
    assert_eq!((b.subdir, b.to), (Some(Subdir::Latest), vec![s("c")]));
    let b = backup("BACKUP INTO '2021/03/23-213101.37' IN 'c', 'l1'");
    assert_eq!(b.subdir, Some(Subdir::Path(s("2021/03/23-213101.37"))));
    assert_eq!(b.to, vec![s("c"), s("l1")]);
    let b = backup("BACKUP INTO $1 IN $2");
    assert_eq!(b.subdir, Some(Subdir::Path(Expr::Placeholder(1))));
    assert_eq!(b.to, vec![Expr::Placeholder(2)]);
    for (sql, want) in [
        ("BACKUP INTO 'a', 'b'", "BACKUP INTO ('a', 'b')"),
        ("BACKUP INTO ('a', 'b')", "BACKUP INTO ('a', 'b')"),
        ("BACKUP INTO ('a')", "BACKUP INTO 'a'"),
        (
            "BACKUP INTO latest IN ('a', $2)",
            "BACKUP INTO LATEST IN ('a', $2)",
        ),
        ("BACKUP INTO 'it''s' IN 'x'", "BACKUP INTO 'it''s' IN 'x'"),
    ] {
        assert_eq!(canon(sql), want);
    }
}

#[test]
fn as_of_system_time_forms() {
    for (sql, want) in [
        ("'-10s'", Expr::String("-10s".into())),
        ("'-1h30m'", s("-1h30m")),
        ("'2021-11-15 18:13:20'", s("2021-11-15 18:13:20")),
        (
            "1637000000000000000.0000000001",
            Expr::Number("1637000000000000000.0000000001".into()),
        ),
        (
            "follower_read_timestamp()",
            Expr::Function {
                name: Ident::new("follower_read_timestamp"),
                args: vec![],
            },
        ),
        ("$3", Expr::Placeholder(3)),
    ] {
        let sql = format!("BACKUP INTO 'u' AS OF SYSTEM TIME {sql}");
        assert_eq!(backup(&sql).as_of, Some(want), "{sql}");
        assert_eq!(canon(&sql), sql);
    }
}

#[test]
fn backup_options_every_form() {
    let b = backup(
        "BACKUP INTO 'u' WITH revision_history, encryption_passphrase = 'pw', detached = false, \
         kms = 'aws:///k', incremental_location = ('i1', 'i2')",
    );
    assert_eq!(
        b.options,
        BackupOptions {
            revision_history: Some(Expr::Bool(true)),
            encryption_passphrase: Some(s("pw")),
            detached: Some(Expr::Bool(false)),
            kms: Some(vec![s("aws:///k")]),
            incremental_location: Some(vec![s("i1"), s("i2")]),
        }
    );
    for (sql, want) in [
        ("WITH revision_history = true", "WITH revision_history"),
        (
            "WITH revision_history = FALSE",
            "WITH revision_history = false",
        ),
        ("WITH detached = $1", "WITH detached = $1"),
        (
            "WITH DETACHED, REVISION_HISTORY",
            "WITH revision_history, detached",
        ),
        (
            "WITH OPTIONS (detached, kms = ('a', 'b'))",
            "WITH detached, kms = ('a', 'b')",
        ),
        (
            "WITH encryption_passphrase = $2",
            "WITH encryption_passphrase = $2",
        ),
        (
            "WITH incremental_location = 'x'",
            "WITH incremental_location = 'x'",
        ),
    ] {
        assert_eq!(
            canon(&format!("BACKUP INTO 'u' {sql}")),
            format!("BACKUP INTO 'u' {want}")
        );
    }
}

#[test]
fn restore_forms_and_options() {
    for (sql, want) in [
        ("RESTORE FROM LATEST IN 'c'", "RESTORE FROM LATEST IN 'c'"),
        (
            "restore table bank.customers from latest in 'c'",
            "RESTORE TABLE bank.customers FROM LATEST IN 'c'",
        ),
        (
            "RESTORE DATABASE bank FROM '2021/03/23-213101.37' IN 'c', 'l'",
            "RESTORE DATABASE bank FROM '2021/03/23-213101.37' IN ('c', 'l')",
        ),
        (
            "RESTORE t FROM $1 IN $2 AS OF SYSTEM TIME '-1h'",
            "RESTORE TABLE t FROM $1 IN $2 AS OF SYSTEM TIME '-1h'",
        ),
        (
            "RESTORE DATABASE bank FROM LATEST IN 'c' WITH new_db_name = 'bank2', detached",
            "RESTORE DATABASE bank FROM LATEST IN 'c' WITH new_db_name = 'bank2', detached",
        ),
        (
            "RESTORE TABLE t FROM LATEST IN 'c' WITH skip_missing_views, into_db = 'd', \
             skip_missing_sequences = false, skip_missing_foreign_keys, encryption_passphrase = 'p', \
             kms = 'k', incremental_location = 'i'",
            "RESTORE TABLE t FROM LATEST IN 'c' WITH into_db = 'd', skip_missing_foreign_keys, \
             skip_missing_sequences = false, skip_missing_views, encryption_passphrase = 'p', \
             kms = 'k', incremental_location = 'i'",
        ),
    ] {
        assert_eq!(canon(sql), want);
    }
}

#[test]
fn show_backup_forms() {
    for (sql, want) in [
        ("show backups in 'c'", "SHOW BACKUPS IN 'c'"),
        ("SHOW BACKUPS IN $1", "SHOW BACKUPS IN $1"),
        (
            "SHOW BACKUP FROM LATEST IN 'c'",
            "SHOW BACKUP FROM LATEST IN 'c'",
        ),
        (
            "SHOW BACKUP SCHEMAS FROM 's' IN 'c'",
            "SHOW BACKUP SCHEMAS FROM 's' IN 'c'",
        ),
        (
            "SHOW BACKUP FILES FROM LATEST IN 'c'",
            "SHOW BACKUP FILES FROM LATEST IN 'c'",
        ),
        (
            "SHOW BACKUP RANGES FROM LATEST IN ('c', 'l')",
            "SHOW BACKUP RANGES FROM LATEST IN ('c', 'l')",
        ),
        (
            "SHOW BACKUP FROM LATEST IN 'c' WITH check_files, encryption_passphrase = 'p'",
            "SHOW BACKUP FROM LATEST IN 'c' WITH encryption_passphrase = 'p', check_files",
        ),
        (
            "SHOW BACKUP FROM LATEST IN 'c' WITH check_files = false, incremental_location = 'i', kms = $1",
            "SHOW BACKUP FROM LATEST IN 'c' WITH check_files = false, kms = $1, incremental_location = 'i'",
        ),
    ] {
        assert_eq!(canon(sql), want);
    }
}

#[test]
fn jobs_and_schedules() {
    for (sql, want) in [
        ("show jobs", "SHOW JOBS"),
        ("SHOW JOB 592786066399264769", "SHOW JOB 592786066399264769"),
        ("pause job 1", "PAUSE JOB 1"),
        ("RESUME JOB $1", "RESUME JOB $1"),
        ("CANCEL JOB 7;", "CANCEL JOB 7"),
        ("SHOW SCHEDULES", "SHOW SCHEDULES"),
        ("SHOW RUNNING SCHEDULES", "SHOW RUNNING SCHEDULES"),
        ("show paused schedules", "SHOW PAUSED SCHEDULES"),
        (
            "SHOW SCHEDULE 588799238330220545",
            "SHOW SCHEDULE 588799238330220545",
        ),
        ("PAUSE SCHEDULE 1", "PAUSE SCHEDULE 1"),
        ("RESUME SCHEDULE 2", "RESUME SCHEDULE 2"),
        ("DROP SCHEDULE $1", "DROP SCHEDULE $1"),
    ] {
        assert_eq!(canon(sql), want);
    }
    assert_eq!(
        parse_statement("PAUSE JOB 5").unwrap(),
        Statement::ControlJob {
            command: JobCommand::Pause,
            job: Expr::Number("5".into())
        }
    );
}

#[test]
fn create_schedule_forms() {
    for (sql, want) in [
        (
            "CREATE SCHEDULE core_schedule_label FOR BACKUP INTO 's3://b' RECURRING '@daily' \
             FULL BACKUP ALWAYS WITH SCHEDULE OPTIONS first_run = 'now'",
            "CREATE SCHEDULE core_schedule_label FOR BACKUP INTO 's3://b' RECURRING '@daily' \
             FULL BACKUP ALWAYS WITH SCHEDULE OPTIONS first_run = 'now'",
        ),
        (
            "create schedule if not exists 'BACKUP 1633462883' for backup into 'u' with detached \
             recurring '@hourly' full backup always with schedule options \
             first_run = '2021-10-05 20:00:00+00:00', on_execution_failure = 'RESCHEDULE', \
             on_previous_running = 'WAIT'",
            "CREATE SCHEDULE IF NOT EXISTS 'BACKUP 1633462883' FOR BACKUP INTO 'u' WITH detached \
             RECURRING '@hourly' FULL BACKUP ALWAYS WITH SCHEDULE OPTIONS \
             first_run = '2021-10-05 20:00:00+00:00', on_execution_failure = 'RESCHEDULE', \
             on_previous_running = 'WAIT'",
        ),
        (
            "CREATE SCHEDULE FOR BACKUP DATABASE bank INTO 'u' RECURRING NEVER",
            "CREATE SCHEDULE FOR BACKUP DATABASE bank INTO 'u' RECURRING NEVER",
        ),
        (
            "CREATE SCHEDULE s FOR BACKUP TABLE movr.public.vehicles INTO ('a', 'b') \
             WITH revision_history, encryption_passphrase = 'p' RECURRING '@daily' \
             FULL BACKUP '@weekly' WITH SCHEDULE OPTIONS (ignore_existing_backups, \
             on_execution_failure = 'retry', on_previous_running = 'skip')",
            "CREATE SCHEDULE s FOR BACKUP TABLE movr.public.vehicles INTO ('a', 'b') \
             WITH revision_history, encryption_passphrase = 'p' RECURRING '@daily' \
             FULL BACKUP '@weekly' WITH SCHEDULE OPTIONS on_execution_failure = 'retry', \
             on_previous_running = 'skip', ignore_existing_backups",
        ),
        (
            "CREATE SCHEDULE $1 FOR BACKUP INTO $2 RECURRING $3 FULL BACKUP $4 \
             WITH SCHEDULE OPTIONS first_run = $5, on_execution_failure = 'pause', \
             on_previous_running = 'start'",
            "CREATE SCHEDULE $1 FOR BACKUP INTO $2 RECURRING $3 FULL BACKUP $4 \
             WITH SCHEDULE OPTIONS first_run = $5, on_execution_failure = 'pause', \
             on_previous_running = 'start'",
        ),
    ] {
        assert_eq!(canon(sql), want);
    }
    let Statement::CreateSchedule(c) =
        parse_statement("CREATE SCHEDULE nightly FOR BACKUP INTO 'u' RECURRING '@daily'").unwrap()
    else {
        panic!()
    };
    assert_eq!(c.label, Some(Label::Name(Ident::new("nightly"))));
    assert_eq!(c.recurring, Recurrence::Cron(s("@daily")));
    assert_eq!(c.full_backup, None);
    assert!(!c.if_not_exists);
}

#[test]
fn several_statements() {
    let stmts = parse_statements(";SHOW JOBS; ; BACKUP INTO 'u'; PAUSE JOB 1").unwrap();
    assert_eq!(stmts.len(), 3);
    assert_eq!(stmts[0], Statement::ShowJobs);
    assert!(parse_statements("").unwrap().is_empty());
    assert!(parse_statements(" ;; -- nothing\n").unwrap().is_empty());
}

#[test]
fn routing_check() {
    for sql in [
        "BACKUP INTO 'x'",
        "  restore from latest in 'x'",
        "SHOW BACKUPS IN 'x'",
        "show backup from latest in 'x'",
        "SHOW JOBS",
        "SHOW JOB 1",
        "show schedules",
        "SHOW PAUSED SCHEDULES",
        "SHOW SCHEDULE 1",
        "PAUSE JOB 1",
        "RESUME SCHEDULE 1",
        "CANCEL JOB 1",
        "CREATE SCHEDULE FOR BACKUP INTO 'x' RECURRING NEVER",
        "DROP SCHEDULE 1",
        "/* c */ BACKUP INTOO 'x' 'unterminated",
    ] {
        assert!(is_backup_statement(sql), "{sql}");
    }
    for sql in [
        "SELECT 1",
        "CREATE TABLE t (a INT)",
        "DROP TABLE t",
        "SHOW TABLES",
        "show databases",
        "CANCEL QUERY '1'",
        "PAUSE ALL",
        "",
        "\"backup\" INTO 'x'",
        "'backup'",
    ] {
        assert!(!is_backup_statement(sql), "{sql}");
    }
}
