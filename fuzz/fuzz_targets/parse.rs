//! Fuzzes the backup-statement parser: no input may panic it, every error
//! points inside the input, and whatever parses formats back to SQL that
//! parses to the same statement (also in its redacted form).
#![no_main]

use backup_sql::{is_backup_statement, parse_statement, parse_statements};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|sql: &str| {
    let _ = is_backup_statement(sql);
    match parse_statements(sql) {
        Ok(stmts) => {
            for stmt in stmts {
                let text = stmt.to_string();
                match parse_statement(&text) {
                    Ok(again) => assert_eq!(again, stmt, "round trip changed {text:?}"),
                    Err(e) => panic!("formatted statement does not parse: {text:?}: {e}"),
                }
                let redacted = stmt.redacted();
                let text = redacted.to_string();
                assert_eq!(parse_statement(&text).ok(), Some(redacted), "{text:?}");
                let _ = stmt.bind(&["1".to_string(), "x".to_string()]);
                let _ = stmt.check_supported();
            }
        }
        Err(e) => {
            assert!(e.pos <= sql.len(), "error position {} past the end", e.pos);
            let _ = e.render(sql);
        }
    }
});
