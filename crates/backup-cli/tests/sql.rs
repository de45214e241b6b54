//! `backup-cli sql`: statements against a store, formats, errors, secrets.

mod support;

use support::{cli, cli_env, cli_stdin, sql, store_with_backup};

#[test]
fn backup_incremental_and_restore_across_invocations() {
    let dir = store_with_backup("b", "");
    let s = dir.path();
    sql(
        s,
        &[
            "INSERT INTO bank.t VALUES (4, 'd')",
            "UPDATE bank.t SET v = 'B' WHERE id = 2",
        ],
    )
    .ok();
    let inc = sql(
        s,
        &["BACKUP DATABASE bank INTO LATEST IN 'nodelocal://1/b'"],
    )
    .ok();
    assert!(inc.stdout.contains("\tsucceeded\t"), "{}", inc.stdout);
    let backups = sql(s, &["SHOW BACKUPS IN 'nodelocal://1/b'"]).ok();
    let lines: Vec<&str> = backups.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", backups.stdout);
    assert_eq!(lines[0], "path");
    let show = sql(s, &["SHOW BACKUP FROM LATEST IN 'nodelocal://1/b'"]).ok();
    assert!(show.stdout.contains("\tincremental\t"), "{}", show.stdout);

    sql(
        s,
        &["RESTORE DATABASE bank FROM LATEST IN 'nodelocal://1/b' WITH new_db_name = 'bank2'"],
    )
    .ok();
    let rows = sql(s, &["SELECT id, v FROM bank2.t ORDER BY id"]).ok();
    assert_eq!(rows.stdout, "id\tv\n1\ta\n2\tB\n3\tc\n4\td\n");
    let fp = |db: &str| {
        sql(
            s,
            &[&format!("SHOW EXPERIMENTAL_FINGERPRINTS FROM TABLE {db}.t")],
        )
        .ok()
        .stdout
    };
    assert_eq!(fp("bank2"), fp("bank"));
}

#[test]
fn tsv_is_the_default_off_a_terminal_and_tsv_and_csv_start_with_a_header() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = dir.path();
    let q = "SELECT id, v FROM t ORDER BY id";
    let setup = [
        "CREATE TABLE t (id INT PRIMARY KEY, v STRING)",
        "INSERT INTO t VALUES (1, 'x,y'), (2, 'plain')",
    ];
    let run = sql(s, &setup).ok();
    assert_eq!(run.stdout, "CREATE TABLE\nINSERT 0 2\n");
    let store = s.to_str().expect("utf-8");
    let tsv = sql(s, &[q]).ok();
    assert_eq!(tsv.stdout, "id\tv\n1\tx,y\n2\tplain\n");
    let csv = cli(&["sql", "--store", store, "--format", "csv", "-e", q]).ok();
    assert_eq!(csv.stdout, "id,v\n1,\"x,y\"\n2,plain\n");
    let table = cli(&["sql", "--store", store, "--format", "table", "-e", q]).ok();
    assert!(table.stdout.contains("(2 rows)"), "{}", table.stdout);
}

#[test]
fn the_first_failing_statement_prints_error_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = dir.path();
    let run = sql(
        s,
        &[
            "CREATE TABLE t (id INT PRIMARY KEY)",
            "INSERT INTO nosuch VALUES (1)",
            "INSERT INTO t VALUES (1)",
        ],
    )
    .failed();
    assert!(run.stderr.starts_with("ERROR: "), "{}", run.stderr);
    assert!(run.stderr.contains("nosuch"), "{}", run.stderr);
    // The statement after the failure did not run.
    let count = sql(s, &["SELECT count(*) FROM t"]).ok();
    assert_eq!(count.stdout, "count\n0\n");
}

#[test]
fn statements_from_standard_input_may_span_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().to_str().expect("utf-8");
    let run = cli_stdin(
        &["sql", "--store", store],
        "CREATE TABLE t (id INT PRIMARY KEY,\n  v STRING); -- a comment\nINSERT INTO t VALUES (1, 'a;b');\nSELECT v FROM t",
    )
    .ok();
    assert_eq!(run.stdout, "CREATE TABLE\nINSERT 0 1\nv\na;b\n");
}

#[test]
fn a_wrong_passphrase_is_a_clear_error_and_no_passphrase_is_printed() {
    let dir = store_with_backup("enc", " WITH encryption_passphrase = 'correct-horse-7'");
    let s = dir.path();
    let wrong = sql(
        s,
        &["RESTORE DATABASE bank FROM LATEST IN 'nodelocal://1/enc' \
           WITH new_db_name = 'b2', encryption_passphrase = 'wrong-battery-8'"],
    )
    .failed();
    assert!(wrong.stderr.starts_with("ERROR: "), "{}", wrong.stderr);
    assert!(
        wrong
            .stderr
            .contains("passphrase does not open this backup"),
        "{}",
        wrong.stderr
    );
    let right = sql(
        s,
        &[
            "RESTORE DATABASE bank FROM LATEST IN 'nodelocal://1/enc' \
             WITH new_db_name = 'b2', encryption_passphrase = 'correct-horse-7'",
            "SELECT count(*) FROM b2.t",
            "SHOW JOBS",
        ],
    )
    .ok();
    assert!(right.stdout.contains("count\n3\n"), "{}", right.stdout);
    for run in [&wrong, &right] {
        for secret in ["correct-horse-7", "wrong-battery-8"] {
            assert!(!run.all().contains(secret), "{secret} in:\n{}", run.all());
        }
    }
}

#[test]
fn an_http_uri_is_refused() {
    let dir = store_with_backup("b", "");
    let run = sql(
        dir.path(),
        &["BACKUP DATABASE bank INTO 'http://127.0.0.1:1/backups'"],
    )
    .failed();
    assert!(run.stderr.starts_with("ERROR: "), "{}", run.stderr);
    assert!(
        run.stderr.contains("HTTP storage is not supported"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_s3_secret_never_appears_in_output_or_logs() {
    let dir = store_with_backup("b", "");
    let store = dir.path().to_str().expect("utf-8");
    let secret = "s3cr3t-AbCdEf-0123456789";
    let uri = format!(
        "s3://bucket/backups?AWS_ACCESS_KEY_ID=AKIDTEST&AWS_SECRET_ACCESS_KEY={secret}\
         &AWS_ENDPOINT=http://127.0.0.1:1&AWS_REGION=us-east-1"
    );
    let stmt = format!("SHOW BACKUPS IN '{uri}'");
    let run = cli_env(
        &["sql", "--store", store, "-e", &stmt],
        &[("RUST_LOG", "debug")],
    )
    .failed();
    assert!(run.stderr.contains("ERROR: "), "{}", run.stderr);
    assert!(run.stderr.contains("127.0.0.1:1"), "{}", run.stderr);
    assert!(!run.all().contains(secret), "{}", run.all());
    let offline = cli_env(&["verify", &uri], &[("RUST_LOG", "debug")]).failed();
    assert!(!offline.all().contains(secret), "{}", offline.all());
}

#[test]
fn an_unknown_user_is_told_how_to_create_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().to_str().expect("utf-8");
    let run = cli(&["sql", "--store", store, "--user", "carl", "-e", "SELECT 1"]).failed();
    assert!(run.stderr.contains("CREATE USER carl"), "{}", run.stderr);
}

#[test]
fn workload_init_bank_loads_in_bulk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().to_str().expect("utf-8");
    let run = cli(&[
        "workload",
        "init",
        "bank",
        "--store",
        store,
        "--rows",
        "5000",
        "--payload-bytes",
        "20",
    ])
    .ok();
    assert!(run.stdout.contains("loaded 5000 rows"), "{}", run.stdout);
    let count = sql(
        dir.path(),
        &["SELECT count(*), min(id), max(id) FROM bank.accounts"],
    )
    .ok();
    assert_eq!(count.stdout, "count\tmin\tmax\n5000\t0\t4999\n");
}

#[test]
fn every_command_has_help_with_an_example() {
    for args in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["sql", "--help"],
        vec!["workload", "init", "--help"],
        vec!["inspect", "--help"],
        vec!["verify", "--help"],
    ] {
        let run = cli(&args).ok();
        assert!(run.stdout.contains("Example"), "{args:?}:\n{}", run.stdout);
    }
}
