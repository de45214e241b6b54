//! `CREATE USER .. WITH PASSWORD`, `ALTER USER .. PASSWORD` and
//! `Cluster::check_password`: salted verifiers only, never the password.
#![allow(clippy::unwrap_used)]

use embedded_cluster::Cluster;

fn open() -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::open_default(dir.path()).unwrap();
    (dir, cluster)
}

#[test]
fn create_and_alter_user_passwords() {
    let (_d, c) = open();
    let mut root = c.session("root").unwrap();
    let r = root
        .execute("CREATE USER alice WITH PASSWORD 'it''s secret'")
        .unwrap();
    assert_eq!(r.tag, "CREATE USER");
    root.execute("CREATE USER bob PASSWORD 'bobpw'").unwrap();
    root.execute("CREATE USER carol").unwrap();
    assert!(c.check_password("alice", "it's secret").unwrap());
    assert!(!c.check_password("alice", "bobpw").unwrap());
    assert!(c.check_password("bob", "bobpw").unwrap());
    // No password, unknown user, role: never a match.
    assert!(!c.check_password("carol", "").unwrap());
    assert!(!c.check_password("nobody", "x").unwrap());
    root.execute("CREATE ROLE ops WITH PASSWORD 'rolepw'")
        .unwrap();
    assert!(!c.check_password("ops", "rolepw").unwrap());
    assert!(c.scram_verifier("alice").unwrap().is_some());
    assert!(c.scram_verifier("carol").unwrap().is_none());

    // Users may change their own password; only admins someone else's.
    let mut alice = c.session("alice").unwrap();
    let r = alice
        .execute("ALTER USER alice WITH PASSWORD 'new one'")
        .unwrap();
    assert_eq!(r.tag, "ALTER ROLE");
    assert!(c.check_password("alice", "new one").unwrap());
    assert!(!c.check_password("alice", "it's secret").unwrap());
    let e = alice
        .execute("ALTER USER bob WITH PASSWORD 'hijack'")
        .unwrap_err()
        .to_string();
    assert!(e.contains("admin"), "{e}");
    assert!(!e.contains("hijack"), "{e}");
    assert!(c.check_password("bob", "bobpw").unwrap());

    // PASSWORD NULL removes it; root may set carol's.
    root.execute("ALTER USER bob WITH PASSWORD NULL").unwrap();
    assert!(!c.check_password("bob", "bobpw").unwrap());
    root.execute("ALTER USER carol PASSWORD 'c'").unwrap();
    assert!(c.check_password("carol", "c").unwrap());
    let e = root
        .execute("ALTER USER nobody WITH PASSWORD 'pw'")
        .unwrap_err()
        .to_string();
    assert!(e.contains("nobody"), "{e}");
    root.execute("ALTER USER IF EXISTS nobody WITH PASSWORD 'pw'")
        .unwrap();

    // Passwords survive a restart of the store.
    drop((root, alice));
    let dir = _d.path().to_path_buf();
    drop(c);
    let c = Cluster::open_default(&dir).unwrap();
    assert!(c.check_password("alice", "new one").unwrap());
}

#[test]
fn passwords_never_show_in_output_or_errors() {
    let (_d, c) = open();
    let mut root = c.session("root").unwrap();
    root.execute("CREATE USER dave WITH PASSWORD 'hunter2-secret'")
        .unwrap();
    let users = root.execute("SHOW USERS").unwrap();
    assert!(!format!("{users:?}").contains("hunter2"));
    for bad in [
        "CREATE USER erin WITH PASSWORD 'hunter2-secret' VALID UNTIL '2030-01-01'",
        "ALTER USER dave WITH PASSWORD 'hunter2-secret' extra",
        "ALTER USER dave WITH PASSWORD",
        "CREATE USER dave WITH PASSWORD 'hunter2-secret'",
    ] {
        let e = root.execute(bad).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{bad}: {e}");
    }
    // The failed CREATE did not create erin.
    assert!(c.session("erin").is_err());
}
