//! Session settings that drivers send when they connect (`SET
//! application_name = ...`, `SET extra_float_digits = 3`, ...). The cluster
//! has no such settings; values that match how this server already behaves
//! are accepted (and change nothing), others are refused with a reason.

use embedded_cluster::{QueryResult, SqlError};

use crate::statements::first_word;

/// Settings accepted with any value: they only affect the client's side
/// or what the server would log.
const ANY_VALUE: &[&str] = &[
    "application_name",
    "extra_float_digits",
    "client_min_messages",
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "lock_timeout",
];

/// `SET [SESSION] name {=|TO} value` for a driver setting: `Some` result
/// (or error) when it is one, `None` to leave the statement to the cluster.
pub fn intercept(sql: &str) -> Option<Result<QueryResult, SqlError>> {
    if first_word(sql) != "set" {
        return None;
    }
    let rest = sql.trim_start()[3..].trim_start();
    let rest = strip_word(rest, "session").unwrap_or(rest);
    let (name, value) = split_assignment(rest)?;
    let name = name.to_ascii_lowercase();
    let value = value.trim().trim_matches(|c| c == '\'' || c == '"').trim();
    let fixed: &[(&str, &[&str])] = &[
        ("client_encoding", &["utf8", "utf-8", "unicode"]),
        ("timezone", &["utc", "etc/utc", "z", "0", "+00:00", "gmt"]),
        ("time zone", &["utc", "etc/utc", "z", "0", "+00:00", "gmt"]),
        ("datestyle", &["iso", "iso, mdy", "iso,mdy"]),
        ("intervalstyle", &["postgres"]),
        ("standard_conforming_strings", &["on", "true"]),
        ("search_path", &["public"]),
    ];
    if ANY_VALUE.contains(&name.as_str()) {
        return Some(Ok(QueryResult::tag("SET")));
    }
    let (_, allowed) = fixed.iter().find(|(n, _)| *n == name)?;
    Some(if allowed.contains(&value.to_ascii_lowercase().as_str()) {
        Ok(QueryResult::tag("SET"))
    } else {
        Err(SqlError::Unsupported(format!(
            "{name} = {value}: this server only runs with {name} {}",
            allowed[0].to_ascii_uppercase()
        )))
    })
}

fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let head = s.get(..word.len())?;
    let after = s.get(word.len()..)?;
    (head.eq_ignore_ascii_case(word) && after.starts_with(char::is_whitespace))
        .then(|| after.trim_start())
}

/// `name = value`, `name TO value`, or `TIME ZONE value`.
fn split_assignment(s: &str) -> Option<(&str, &str)> {
    if let Some(v) = strip_word(s, "time").and_then(|r| strip_word(r, "zone")) {
        return Some(("time zone", v));
    }
    if let Some(eq) = s.find('=') {
        return Some((s[..eq].trim(), &s[eq + 1..]));
    }
    let end = s.find(char::is_whitespace)?;
    let v = strip_word(s[end..].trim_start(), "to")?;
    Some((&s[..end], v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_settings() {
        assert!(matches!(
            intercept("SET application_name = 'psql'"),
            Some(Ok(_))
        ));
        assert!(matches!(
            intercept("set extra_float_digits to 3"),
            Some(Ok(_))
        ));
        assert!(matches!(intercept("SET TIME ZONE 'UTC'"), Some(Ok(_))));
        assert!(matches!(
            intercept("SET client_encoding = 'LATIN1'"),
            Some(Err(_))
        ));
        assert!(intercept("SET database = shop").is_none());
        assert!(intercept("SET CLUSTER SETTING x = 1").is_none());
        assert!(intercept("SELECT 1").is_none());
    }
}
