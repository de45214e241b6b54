//! `backup-cli inspect` and `verify`: collections read offline.

mod support;

use support::{cli, files_ending, sql, store_with_backup};

/// A store whose collection `nodelocal://1/b` holds a full backup of the
/// `bank` database and one incremental on top of it.
fn store_with_incremental() -> tempfile::TempDir {
    let dir = store_with_backup("b", "");
    sql(
        dir.path(),
        &[
            "INSERT INTO bank.t VALUES (4, 'd')",
            "BACKUP DATABASE bank INTO LATEST IN 'nodelocal://1/b'",
        ],
    )
    .ok();
    dir
}

#[test]
fn verify_passes_a_good_backup_and_names_a_data_file_with_a_flipped_byte() {
    let dir = store_with_incremental();
    let s = dir.path();
    let store = s.to_str().expect("utf-8");
    let good = cli(&["verify", "nodelocal://1/b", "--store", store]).ok();
    assert!(good.stdout.contains("2 layer(s)"), "{}", good.stdout);
    assert!(
        good.stdout.contains("OK: every file is present and intact"),
        "{}",
        good.stdout
    );

    let collection = s.join("nodes").join("1").join("b");
    let data = files_ending(&collection, ".sst");
    assert_eq!(data.len(), 2, "{data:?}");
    let victim = &data[0];
    let mut bytes = std::fs::read(victim).expect("reading a data file");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(victim, &bytes).expect("writing a data file");
    let relative = victim
        .strip_prefix(&collection)
        .expect("under the collection")
        .to_str()
        .expect("utf-8")
        .to_string();

    let bad = cli(&["verify", "nodelocal://1/b", "--store", store, "--latest"]).failed();
    assert!(
        bad.stderr.contains(&format!("{relative} (corrupt)")),
        "{relative} not in:\n{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("1 missing or corrupt file"),
        "{}",
        bad.stderr
    );
    let other = data[1]
        .strip_prefix(&collection)
        .expect("under")
        .to_str()
        .expect("utf-8");
    assert!(!bad.stderr.contains(other), "{}", bad.stderr);

    // The same collection as a file:// URI, and a missing file.
    std::fs::remove_file(&data[1]).expect("removing a data file");
    let uri = format!("file://{}", collection.display());
    let missing = cli(&["verify", &uri]).failed();
    assert!(
        missing.stderr.contains(&format!("{other} (missing)")),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("2 missing or corrupt file"),
        "{}",
        missing.stderr
    );
}

#[test]
fn verify_opens_an_encrypted_backup_only_with_its_passphrase() {
    let dir = store_with_backup("enc", " WITH encryption_passphrase = 'pass-Q9'");
    let store = dir.path().to_str().expect("utf-8");
    let none = cli(&["verify", "nodelocal://1/enc", "--store", store]).failed();
    assert!(none.stderr.contains("--passphrase"), "{}", none.stderr);
    let wrong = cli(&[
        "verify",
        "nodelocal://1/enc",
        "--store",
        store,
        "--passphrase",
        "nope-Z1",
    ])
    .failed();
    assert!(
        wrong.stderr.contains("passphrase does not open"),
        "{}",
        wrong.stderr
    );
    let right = cli(&[
        "verify",
        "nodelocal://1/enc",
        "--store",
        store,
        "--passphrase",
        "pass-Q9",
    ])
    .ok();
    assert!(right.stdout.contains("OK"), "{}", right.stdout);
    for run in [&none, &wrong, &right] {
        assert!(
            !run.all().contains("pass-Q9") && !run.all().contains("nope-Z1"),
            "{}",
            run.all()
        );
    }
}

#[test]
fn inspect_lists_backups_and_one_chain() {
    let dir = store_with_backup("b", " WITH revision_history");
    let s = dir.path();
    let store = s.to_str().expect("utf-8");
    sql(
        s,
        &["BACKUP DATABASE bank INTO LATEST IN 'nodelocal://1/b' WITH revision_history"],
    )
    .ok();
    sql(s, &["BACKUP DATABASE bank INTO 'nodelocal://1/b'"]).ok();
    let list = cli(&["inspect", "nodelocal://1/b", "--store", store]).ok();
    assert!(list.stdout.contains("2 full backup(s)"), "{}", list.stdout);
    assert!(
        list.stdout.contains("(1 incremental layer(s))"),
        "{}",
        list.stdout
    );
    let subdir = list
        .stdout
        .lines()
        .find(|l| l.contains("(1 incremental"))
        .and_then(|l| l.split_whitespace().next())
        .expect("a listed backup")
        .to_string();
    let one = cli(&[
        "inspect",
        "nodelocal://1/b",
        "--store",
        store,
        "--subdir",
        &subdir,
    ])
    .ok();
    for want in [
        "2 layer(s), not encrypted",
        "full ",
        "incremental ",
        "table     bank.public.t",
    ] {
        assert!(one.stdout.contains(want), "{want} not in:\n{}", one.stdout);
    }
    let latest = cli(&["inspect", "nodelocal://1/b", "--store", store, "--latest"]).ok();
    assert!(latest.stdout.contains("1 layer(s)"), "{}", latest.stdout);
}

#[test]
fn offline_commands_say_what_to_do_with_a_nodelocal_uri_and_no_store() {
    let run = cli(&["inspect", "nodelocal://1/b"]).failed();
    assert!(run.stderr.contains("--store"), "{}", run.stderr);
    let run = cli(&["verify", "http://127.0.0.1:1/b"]).failed();
    assert!(
        run.stderr.contains("HTTP storage is not supported"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_names_a_corrupt_side_file_of_an_incremental() {
    let dir = store_with_incremental();
    let s = dir.path();
    let store = s.to_str().expect("utf-8");
    let collection = s.join("nodes").join("1").join("b");
    let side: Vec<_> = files_ending(&collection, "BACKUP_METADATA-FILES")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("incrementals"))
        .collect();
    assert_eq!(side.len(), 1, "{side:?}");
    let mut bytes = std::fs::read(&side[0]).expect("reading the side file");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&side[0], &bytes).expect("writing the side file");
    let relative = side[0]
        .strip_prefix(&collection)
        .expect("under the collection")
        .to_str()
        .expect("utf-8")
        .to_string();
    let bad = cli(&["verify", "nodelocal://1/b", "--store", store]).failed();
    assert!(
        bad.stderr.contains(&format!("{relative} (corrupt)")),
        "{relative} not in:\n{}",
        bad.stderr
    );
}

#[test]
fn inspect_shows_encryption_and_needs_the_passphrase() {
    let dir = store_with_backup("enc", " WITH encryption_passphrase = 'pass-R7'");
    let store = dir.path().to_str().expect("utf-8");
    let list = cli(&["inspect", "nodelocal://1/enc", "--store", store]).ok();
    assert!(list.stdout.contains("1 full backup(s)"), "{}", list.stdout);
    let locked = cli(&["inspect", "nodelocal://1/enc", "--store", store, "--latest"]).failed();
    assert!(locked.stderr.contains("--passphrase"), "{}", locked.stderr);
    let open = cli(&[
        "inspect",
        "nodelocal://1/enc",
        "--store",
        store,
        "--latest",
        "--passphrase",
        "pass-R7",
    ])
    .ok();
    assert!(
        open.stdout.contains("1 layer(s), encrypted ("),
        "{}",
        open.stdout
    );
    assert!(!open.all().contains("pass-R7"), "{}", open.all());
}
