//! Malformed input: every error says where (byte offset and token) and what
//! was expected; option misuse names the option; deprecated forms point to
//! the current syntax; `bind` and `check_supported` refuse what they must.
#![allow(clippy::unwrap_used)]

use backup_sql::*;

/// The error for `sql`, checked to point at `near` (found at its byte offset).
fn err(sql: &str, near: &str) -> ParseError {
    let e = parse_statement(sql).unwrap_err();
    assert_eq!(e.near, near, "{sql}: {e}");
    if near == "EOF" {
        assert_eq!(e.pos, sql.len(), "{sql}: {e}");
    } else {
        let at = sql.to_lowercase()[e.pos..].starts_with(&near.to_lowercase());
        assert!(at, "{sql}: pos {} is not at {near}: {e}", e.pos);
    }
    e
}

#[test]
fn syntax_errors_say_what_was_expected() {
    for (sql, near, message) in [
        (
            "BACKUP INTOO 's3://x'",
            "intoo",
            "syntax error: expected INTO or TO",
        ),
        (
            "BACKUP TABLE t INTOO 'x'",
            "intoo",
            "syntax error: expected INTO or TO",
        ),
        (
            "BACKUP",
            "EOF",
            "expected INTO, TO, DATABASE, TABLE or a table name",
        ),
        (
            "RESTORE 'x'",
            "'x'",
            "expected FROM, DATABASE, TABLE or a table name",
        ),
        (
            "BACKUP INTO",
            "EOF",
            "expected a collection URI or subdirectory (a string or placeholder)",
        ),
        ("BACKUP INTO LATEST 'x'", "'x'", "expected IN"),
        ("BACKUP INTO 'x' AS OF SYSTEM 'y'", "'y'", "expected TIME"),
        (
            "BACKUP INTO 'x' AS OF SYSTEM TIME",
            "EOF",
            "expected a timestamp",
        ),
        (
            "BACKUP INTO 'x' AS OF SYSTEM TIME now",
            "now",
            "expected a timestamp",
        ),
        (
            "BACKUP INTO 'x' WITH",
            "EOF",
            "expected a BACKUP option name",
        ),
        (
            "BACKUP INTO 'x' 'y'",
            "'y'",
            "expected AS OF SYSTEM TIME, WITH or end of statement",
        ),
        ("BACKUP INTO 'x', ", "EOF", "expected a URI"),
        ("BACKUP INTO ('x' 'y')", "'y'", "expected , or )"),
        (
            "BACKUP DATABASE INTO 'x'",
            "into",
            "expected a database name",
        ),
        ("BACKUP a.b.c.d INTO 'x'", "d", "at most three parts"),
        ("BACKUP a.b.c.* INTO 'x'", "*", "wildcard"),
        ("BACKUP a. INTO 'x'", "into", "expected a name or *"),
        (
            "RESTORE FROM 'x'",
            "EOF",
            "expected IN: name the backup as RESTORE FROM LATEST IN",
        ),
        (
            "RESTORE DATABASE d FROMM LATEST IN 'x'",
            "fromm",
            "expected FROM",
        ),
        ("RESTORE FROM LATEST IN", "EOF", "expected a URI"),
        (
            "SHOW BACKUP 'x'",
            "'x'",
            "expected SCHEMAS, FILES, RANGES or FROM",
        ),
        ("SHOW BACKUP FILES 'x'", "'x'", "expected FROM"),
        ("SHOW BACKUPS 'x'", "'x'", "expected IN"),
        ("SHOW TABLES", "tables", "expected BACKUP, BACKUPS, JOBS"),
        (
            "SHOW JOB abc",
            "abc",
            "expected a job id (an integer or placeholder)",
        ),
        ("SHOW JOB 1.5", "1.5", "expected a job id"),
        ("SHOW JOBS 1", "1", "expected end of statement"),
        ("CANCEL SCHEDULE 1", "schedule", "expected JOB"),
        ("PAUSE 1", "1", "expected JOB or SCHEDULE"),
        ("DROP TABLE t", "table", "expected SCHEDULE"),
        ("SELECT 1", "select", "expected BACKUP, RESTORE, SHOW"),
        ("", "EOF", "expected a statement"),
        ("SHOW JOBS; SHOW JOBS", "show", "only one statement"),
        (
            "CREATE SCHEDULE IF NOT EXISTS FOR BACKUP INTO 'u' RECURRING NEVER",
            "for",
            "needs one",
        ),
        (
            "CREATE SCHEDULE s FOR BACKUP INTO 'u'",
            "EOF",
            "expected WITH or RECURRING",
        ),
        (
            "CREATE SCHEDULE s FOR BACKUP INTO 'u' WITH detached",
            "EOF",
            "expected RECURRING",
        ),
        (
            "CREATE SCHEDULE s FOR BACKUP INTO 'u' RECURRING",
            "EOF",
            "NEVER or a crontab",
        ),
        (
            "CREATE SCHEDULE s FOR BACKUP INTO 'u' RECURRING NEVER FULL BACKUP",
            "EOF",
            "ALWAYS or a crontab",
        ),
        (
            "CREATE SCHEDULE s FOR BACKUP INTO 'u' RECURRING NEVER 'x'",
            "'x'",
            "FULL BACKUP, WITH SCHEDULE OPTIONS or end",
        ),
        (
            "CREATE SCHEDULE s FOR BACKUP INTO 'u' RECURRING NEVER WITH OPTIONS",
            "options",
            "expected SCHEDULE",
        ),
        ("CREATE TABLE t", "table", "expected SCHEDULE"),
        (
            "BACKUP INTO 'x' AS OF SYSTEM TIME f(f(f(f(f(f(f(f(f(f(f(f(f(f(f(f(f(f(1))))))))))))))))))",
            "f",
            "nested too deeply",
        ),
        (
            "BACKUP INTO 'x' AS OF SYSTEM TIME f(1",
            "EOF",
            "expected , or )",
        ),
        ("BACKUP INTO 'x\n", "'", "unterminated string literal"),
        ("BACKUP INTO $0", "$0", "placeholder numbers run from $1"),
    ] {
        let e = err(sql, near);
        assert!(e.message.contains(message), "{sql}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("at or near \"{near}\": ")),
            "{e}"
        );
    }
}

#[test]
fn option_errors_name_the_option() {
    for (sql, near, message) in [
        (
            "BACKUP INTO 'x' WITH revision_historyy",
            "revision_historyy",
            "unknown BACKUP option \"revision_historyy\"; expected one of revision_history, \
             encryption_passphrase, detached, kms, incremental_location",
        ),
        (
            "RESTORE FROM LATEST IN 'x' WITH revision_history",
            "revision_history",
            "unknown RESTORE option",
        ),
        (
            "SHOW BACKUP FROM LATEST IN 'x' WITH detached",
            "detached",
            "unknown SHOW BACKUP option",
        ),
        (
            "BACKUP INTO 'x' WITH detached, detached = false",
            "detached",
            "option \"detached\" specified more than once",
        ),
        (
            "RESTORE FROM LATEST IN 'x' WITH into_db = 'a', into_db = 'b'",
            "into_db",
            "option \"into_db\" specified more than once",
        ),
        (
            "BACKUP INTO 'x' WITH detached = 'yes'",
            "'yes'",
            "expected TRUE, FALSE or a placeholder",
        ),
        (
            "BACKUP INTO 'x' WITH encryption_passphrase",
            "EOF",
            "expected = and a value for option \"encryption_passphrase\"",
        ),
        (
            "BACKUP INTO 'x' WITH encryption_passphrase = 5",
            "5",
            "expected a value (a string or placeholder)",
        ),
        (
            "RESTORE FROM LATEST IN 'x' WITH new_db_name",
            "EOF",
            "option \"new_db_name\"",
        ),
        ("BACKUP INTO 'x' WITH kms = ()", ")", "expected a URI"),
        (
            "BACKUP INTO 'x' WITH 5",
            "5",
            "expected a BACKUP option name",
        ),
        (
            "CREATE SCHEDULE s FOR BACKUP INTO 'u' RECURRING NEVER WITH SCHEDULE OPTIONS on_execution_failure = 'explode'",
            "'explode'",
            "invalid value for option \"on_execution_failure\": expected one of 'retry', 'reschedule', 'pause'",
        ),
        (
            "CREATE SCHEDULE s FOR BACKUP INTO 'u' RECURRING NEVER WITH SCHEDULE OPTIONS on_previous_running = 'run'",
            "'run'",
            "expected one of 'start', 'skip', 'wait'",
        ),
        (
            "CREATE SCHEDULE s FOR BACKUP INTO 'u' RECURRING NEVER WITH SCHEDULE OPTIONS first_run = 'tomorrow'",
            "'tomorrow'",
            "invalid value for option \"first_run\": expected 'now' or",
        ),
        (
            "CREATE SCHEDULE s FOR BACKUP INTO 'u' RECURRING NEVER WITH SCHEDULE OPTIONS detached",
            "detached",
            "unknown schedule option \"detached\"",
        ),
    ] {
        let e = err(sql, near);
        assert!(e.message.contains(message), "{sql}: {e}");
    }
}

#[test]
fn secrets_stay_out_of_errors() {
    let e =
        parse_statement("BACKUP INTO 's3://b?AWS_SECRET_ACCESS_KEY=hunter2' 'oops'").unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = parse_statement("BACKUP INTO 'x' 's3://b?AWS_SECRET_ACCESS_KEY=hunter2'").unwrap_err();
    assert_eq!(e.near, "'s3://b?AWS_SECRET_ACCESS_KEY=redacted'");
    let e = parse_statement("BACKUP INTO 'x' WITH encryption_passphrase 'hunter2'").unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(e.message.contains("expected = and a value"), "{e}");
}

#[test]
fn deprecated_forms_point_to_the_current_syntax() {
    for sql in [
        "BACKUP TO 's3://x'",
        "BACKUP DATABASE bank TO 'a', 'b' INCREMENTAL FROM 'c', 'd' AS OF SYSTEM TIME '-10s' WITH revision_history",
        "BACKUP TABLE t TO ('a') INCREMENTAL FROM ('c')",
    ] {
        let e = err(sql, "to");
        assert!(e.message.contains("BACKUP ... TO is deprecated"), "{e}");
        assert!(
            e.message.contains("BACKUP ... INTO <collection URI>"),
            "{e}"
        );
    }
    // The rest of a deprecated statement is still checked.
    let e = err("BACKUP TO 'x' WITH bogus", "bogus");
    assert!(e.message.contains("unknown BACKUP option"), "{e}");
    let e = err("BACKUP TO 'x' INCREMENTAL 'y'", "'y'");
    assert!(e.message.contains("expected FROM"), "{e}");
}

#[test]
fn render_points_a_caret_at_the_error() {
    let sql = "BACKUP DATABASE bank\n  INTOO 's3://x'";
    let e = parse_statement(sql).unwrap_err();
    assert_eq!(
        e.render(sql),
        "ERROR: at or near \"intoo\": syntax error: expected INTO or TO\n\
         LINE 2:   INTOO 's3://x'\n\
         \x20         ^"
    );
    // Out-of-range positions do not panic.
    let far = ParseError {
        pos: 999,
        near: "x".into(),
        message: "m".into(),
    };
    assert!(far.render("é").ends_with('^'));
}

#[test]
fn bind_substitutes_and_checks_parameters() {
    let stmt = parse_statement(
        "BACKUP INTO $1 IN $2 AS OF SYSTEM TIME $3 WITH detached = $4, encryption_passphrase = $5",
    )
    .unwrap();
    let params: Vec<String> = ["sub", "s3://b", "-10s", "TRUE", "pw"]
        .map(String::from)
        .to_vec();
    let bound = stmt.bind(&params).unwrap();
    assert_eq!(
        bound.to_string(),
        "BACKUP INTO 'sub' IN 's3://b' AS OF SYSTEM TIME '-10s' WITH encryption_passphrase = 'pw', detached"
    );
    assert_eq!(
        stmt.bind(&params[..2]).unwrap_err(),
        SqlError::MissingParameter { index: 3, given: 2 }
    );
    let mut bad = params.clone();
    bad[3] = "maybe".into();
    let e = stmt.bind(&bad).unwrap_err().to_string();
    assert!(
        e.contains("option \"detached\"") && e.contains("'maybe' is not a boolean"),
        "{e}"
    );

    let job = parse_statement("PAUSE JOB $1").unwrap();
    assert_eq!(
        job.bind(&["42".into()]).unwrap().to_string(),
        "PAUSE JOB 42"
    );
    assert!(
        job.bind(&["4x".into()])
            .unwrap_err()
            .to_string()
            .contains("not an unsigned integer")
    );

    let sched = parse_statement(
        "CREATE SCHEDULE $1 FOR BACKUP INTO $2 RECURRING $3 WITH SCHEDULE OPTIONS \
         on_execution_failure = $4, first_run = $5",
    )
    .unwrap();
    let ok: Vec<String> = ["n", "u", "@daily", "Retry", "now"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        sched.bind(&ok).unwrap().to_string(),
        "CREATE SCHEDULE 'n' FOR BACKUP INTO 'u' RECURRING '@daily' WITH SCHEDULE OPTIONS \
         first_run = 'now', on_execution_failure = 'Retry'"
    );
    let mut bad = ok.clone();
    bad[3] = "explode".into();
    assert!(
        sched
            .bind(&bad)
            .unwrap_err()
            .to_string()
            .contains("on_execution_failure")
    );
    let mut bad = ok;
    bad[4] = "soon".into();
    assert!(
        sched
            .bind(&bad)
            .unwrap_err()
            .to_string()
            .contains("first_run")
    );
}

#[test]
fn kms_parses_but_is_not_supported_yet() {
    for sql in [
        "BACKUP INTO 'x' WITH kms = 'aws:///k?REGION=r'",
        "RESTORE FROM LATEST IN 'x' WITH kms = ('a', 'b')",
        "SHOW BACKUP FROM LATEST IN 'x' WITH kms = 'a'",
        "CREATE SCHEDULE FOR BACKUP INTO 'x' WITH kms = 'a' RECURRING NEVER",
    ] {
        let stmt = parse_statement(sql).unwrap();
        let e = stmt.check_supported().unwrap_err().to_string();
        assert!(
            e.contains("option \"kms\" is not supported yet"),
            "{sql}: {e}"
        );
    }
    parse_statement("BACKUP INTO 'x' WITH detached")
        .unwrap()
        .check_supported()
        .unwrap();
}

#[test]
fn redacted_form_hides_secrets() {
    let stmt = parse_statement(
        "BACKUP INTO 'sub' IN 's3://b?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY=sk', \
         'azure://c?AZURE_ACCOUNT_KEY=ak' WITH encryption_passphrase = 'pw', \
         incremental_location = 'gs://i?CREDENTIALS=cr', kms = 'aws:///k?AWS_SESSION_TOKEN=tok'",
    )
    .unwrap();
    let text = stmt.redacted().to_string();
    for secret in ["sk", "ak", "'pw'", "cr'", "tok"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(text.contains("AWS_ACCESS_KEY_ID=id"), "{text}");
    assert!(
        text.contains("encryption_passphrase = 'redacted'"),
        "{text}"
    );
    // The redacted form is itself a statement.
    assert_eq!(parse_statement(&text).unwrap(), stmt.redacted());

    for sql in [
        "RESTORE FROM LATEST IN 'http://u:pw@h/x' WITH encryption_passphrase = 'pw'",
        "SHOW BACKUP FROM LATEST IN 'http://u:pw@h/x' WITH encryption_passphrase = 'pw'",
        "SHOW BACKUPS IN 'http://u:pw@h/x'",
        "CREATE SCHEDULE FOR BACKUP INTO 'http://u:pw@h/x' WITH encryption_passphrase = 'pw' RECURRING NEVER",
    ] {
        let text = parse_statement(sql).unwrap().redacted().to_string();
        assert!(!text.contains("pw"), "{text}");
        assert!(text.contains("u:redacted@h"), "{text}");
    }
}
