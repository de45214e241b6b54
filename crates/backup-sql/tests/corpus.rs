//! Every example statement of the reference docs (see `reference-examples.sql`)
//! parses, formats canonically, and parses back to the same tree; its
//! redacted form keeps no credential.
#![allow(clippy::unwrap_used)]

use backup_sql::{Statement, parse_statement, parse_statements};

const CORPUS: &str = include_str!("reference-examples.sql");

#[test]
fn every_reference_example_round_trips() {
    let stmts = parse_statements(CORPUS).unwrap_or_else(|e| panic!("{}", e.render(CORPUS)));
    assert_eq!(
        stmts.len(),
        CORPUS.matches(';').count() - comment_semicolons()
    );
    for stmt in &stmts {
        let text = stmt.to_string();
        assert_eq!(&parse_statement(&text).unwrap(), stmt, "{text}");
        let redacted = stmt.redacted().to_string();
        for secret in [
            "{SECRET ACCESS KEY}",
            "{URL-ENCODED KEY}",
            "{ENCODED KEY}",
            "password123",
        ] {
            assert!(!redacted.contains(secret), "{redacted}");
        }
        assert_eq!(parse_statement(&redacted).unwrap(), stmt.redacted());
    }
    let backups = stmts
        .iter()
        .filter(|s| matches!(s, Statement::Backup(_)))
        .count();
    assert!(backups >= 30, "{backups}");
}

/// Semicolons inside `--` comments (none today; kept honest if one is added).
fn comment_semicolons() -> usize {
    CORPUS
        .lines()
        .filter(|l| l.trim_start().starts_with("--"))
        .map(|l| l.matches(';').count())
        .sum()
}
