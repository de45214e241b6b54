//! Printing query results as an aligned table, TSV or CSV.

use std::io::{self, Write};

use embedded_cluster::{QueryResult, Value};

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table with a row count (the default on a terminal).
    Table,
    /// Tab-separated values with a header row (the default otherwise).
    Tsv,
    /// Comma-separated values with a header row.
    Csv,
}

/// Prints one statement's result; a result without columns prints its tag.
pub fn print(out: &mut dyn Write, result: &QueryResult, format: Format) -> io::Result<()> {
    if result.columns.is_empty() {
        return writeln!(out, "{}", result.tag);
    }
    let header: Vec<&str> = result.columns.iter().map(|(n, _)| n.as_str()).collect();
    let rows: Vec<Vec<String>> = result
        .rows
        .iter()
        .map(|r| r.iter().map(text).collect())
        .collect();
    match format {
        Format::Table => table(out, &header, &rows),
        Format::Tsv => {
            writeln!(out, "{}", join(&header, '\t', tsv_field))?;
            for r in &rows {
                writeln!(out, "{}", join(r, '\t', tsv_field))?;
            }
            Ok(())
        }
        Format::Csv => {
            writeln!(out, "{}", join(&header, ',', csv_field))?;
            for r in &rows {
                writeln!(out, "{}", join(r, ',', csv_field))?;
            }
            Ok(())
        }
    }
}

/// A value as text (`NULL` for NULL).
pub fn text(v: &Value) -> String {
    v.to_string()
}

/// An aligned table: header, a rule, the rows, then `(N rows)`.
fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let parts: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!(" {c:<w$} ", w = *w))
            .collect();
        parts.join("|").trim_end().to_string()
    };
    writeln!(out, "{}", line(&mut header.iter().copied()))?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    writeln!(out, "{}", rule.join("+"))?;
    for r in rows {
        writeln!(out, "{}", line(&mut r.iter().map(String::as_str)))?;
    }
    let n = rows.len();
    writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" })
}

fn join<S: AsRef<str>>(cells: &[S], sep: char, field: fn(&str) -> String) -> String {
    let parts: Vec<String> = cells.iter().map(|c| field(c.as_ref())).collect();
    parts.join(&sep.to_string())
}

/// Tabs, newlines and backslashes escaped so one row stays one line.
fn tsv_field(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

/// RFC 4180 quoting: fields with a comma, quote or line break are quoted.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> QueryResult {
        QueryResult {
            columns: vec![
                ("id".into(), "INT8".into()),
                ("name".into(), "STRING".into()),
            ],
            rows: vec![
                vec![Value::Int(1), Value::String("a,b".into())],
                vec![Value::Int(22), Value::Null],
            ],
            tag: "SELECT 2".into(),
        }
    }

    fn render(format: Format) -> String {
        let mut out = Vec::new();
        print(&mut out, &sample(), format).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_start_with_a_header_row() {
        assert_eq!(render(Format::Tsv), "id\tname\n1\ta,b\n22\tNULL\n");
        assert_eq!(render(Format::Csv), "id,name\n1,\"a,b\"\n22,NULL\n");
        assert_eq!(
            render(Format::Table),
            " id | name\n----+------\n 1  | a,b\n 22 | NULL\n(2 rows)\n"
        );
        let mut out = Vec::new();
        print(&mut out, &QueryResult::tag("CREATE TABLE"), Format::Tsv).unwrap();
        assert_eq!(out, b"CREATE TABLE\n");
    }
}
