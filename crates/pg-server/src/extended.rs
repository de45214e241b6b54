//! The extended query protocol: Parse, Bind, Describe, Execute, Close.
//!
//! The cluster runs SQL text, so a Bind substitutes its parameters into the
//! statement as literals (text parameters as quoted strings). A statement
//! runs when its portal is first described or executed; its rows are then
//! handed out by Execute, `max_rows` at a time.
//!
//! Describing a prepared statement (before any parameters) runs it when it
//! just reads, with NULL for each parameter, to learn its columns (BACKUP
//! and RESTORE have known columns). A statement without parameters keeps
//! that result, and its first Bind uses it if nothing ran on the connection
//! in between, so a statement such as `SELECT nextval('s')` runs once. The
//! types described are the types the rows are then sent as.

use std::collections::HashMap;

use embedded_cluster::{QueryResult, SqlError};
use tokio::io::AsyncWrite;

use crate::connection::{Connection, send_rows, tag_of};
use crate::protocol::{Frontend, Out};
use crate::{PgServerError, sqlstate, statements, types};

/// Prepared statements, portals, and whether the batch failed.
#[derive(Default)]
pub struct Extended {
    statements: HashMap<String, Prepared>,
    portals: HashMap<String, Portal>,
    /// After an error, messages are skipped until Sync.
    failed: bool,
}

/// A parsed statement.
struct Prepared {
    sql: String,
    /// One OID per parameter (the client's, or `text`).
    param_types: Vec<i32>,
    /// Columns learned by a Describe.
    columns: Option<Vec<(String, String)>>,
    /// The result of running it for a Describe, and the connection's
    /// statement count right after.
    probe: Option<(u64, QueryResult)>,
}

/// A bound statement.
struct Portal {
    sql: String,
    result_formats: Vec<i16>,
    /// The columns its statement was described with, if it was.
    described: Option<Vec<(String, String)>>,
    state: PortalState,
}

/// The columns rows are sent as: as described, else as the result has them.
fn columns_of<'a>(
    described: &'a Option<Vec<(String, String)>>,
    result: &'a QueryResult,
) -> &'a [(String, String)] {
    match described {
        Some(d) if d.len() == result.columns.len() => d,
        _ => &result.columns,
    }
}

enum PortalState {
    /// Not run yet.
    Pending,
    /// Run; rows from `sent` on are still to go.
    Ran { result: QueryResult, sent: usize },
}

impl Extended {
    /// End of a batch: errors are forgotten, the unnamed portal is closed.
    pub fn sync(&mut self) {
        self.failed = false;
        self.portals.remove("");
    }
}

/// An error that ends the batch: its SQLSTATE and message.
struct BatchError(&'static str, String);

impl From<&SqlError> for BatchError {
    fn from(e: &SqlError) -> BatchError {
        BatchError(sqlstate::of(e), e.to_string())
    }
}

impl Connection {
    /// Handles Parse, Bind, Describe, Execute and Close.
    pub(crate) async fn extended_message<W: AsyncWrite + Unpin>(
        &mut self,
        msg: Frontend,
        out: &mut Out<W>,
    ) -> Result<(), PgServerError> {
        if self.extended.failed {
            return Ok(());
        }
        if let Err(BatchError(code, message)) = self.step(msg, out).await? {
            out.error(code, &message, None);
            self.extended.failed = true;
        }
        Ok(())
    }

    async fn step<W: AsyncWrite + Unpin>(
        &mut self,
        msg: Frontend,
        out: &mut Out<W>,
    ) -> Result<Result<(), BatchError>, PgServerError> {
        match msg {
            Frontend::Parse {
                name,
                sql,
                param_types,
            } => {
                let parts = statements::split(&sql);
                if parts.len() > 1 {
                    return Ok(Err(BatchError(
                        "42601",
                        "cannot insert multiple commands into a prepared statement".into(),
                    )));
                }
                let sql = parts.first().map(|s| s.to_string()).unwrap_or_default();
                let count = statements::parameter_count(&sql).max(param_types.len());
                let param_types = (0..count)
                    .map(|i| match param_types.get(i) {
                        Some(&oid) if oid != 0 => oid,
                        _ => types::TEXT,
                    })
                    .collect();
                self.extended.statements.insert(
                    name,
                    Prepared {
                        sql,
                        param_types,
                        columns: None,
                        probe: None,
                    },
                );
                out.parse_complete();
            }
            Frontend::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            } => {
                let executed = self.executed;
                let Some(p) = self.extended.statements.get_mut(&statement) else {
                    return Ok(Err(no_statement(&statement)));
                };
                let state = match p.probe.take() {
                    Some((at, result)) if at == executed => PortalState::Ran { result, sent: 0 },
                    _ => PortalState::Pending,
                };
                if params.len() != p.param_types.len() {
                    return Ok(Err(BatchError(
                        "08P01",
                        format!(
                            "bind message supplies {} parameters, but the prepared statement \
                             requires {}",
                            params.len(),
                            p.param_types.len()
                        ),
                    )));
                }
                let mut literals = Vec::with_capacity(params.len());
                for (i, v) in params.iter().enumerate() {
                    let format = types::format_at(&param_formats, i);
                    match types::literal(v.as_deref(), p.param_types[i], format) {
                        Ok(l) => literals.push(l),
                        Err(m) => {
                            return Ok(Err(BatchError(
                                sqlstate::INVALID_PARAMETER_VALUE,
                                format!("parameter ${}: {m}", i + 1),
                            )));
                        }
                    }
                }
                let sql = match statements::substitute(&p.sql, &literals) {
                    Ok(s) => s,
                    Err(m) => return Ok(Err(BatchError(sqlstate::PROTOCOL_VIOLATION, m))),
                };
                self.extended.portals.insert(
                    portal,
                    Portal {
                        sql,
                        result_formats,
                        described: p.columns.clone(),
                        state,
                    },
                );
                out.bind_complete();
            }
            Frontend::Describe { kind: b'S', name } => {
                return self.describe_statement(&name, out).await;
            }
            Frontend::Describe { name, .. } => {
                if let Err(e) = self.run_portal(&name).await? {
                    return Ok(Err(e));
                }
                let Some(portal) = self.extended.portals.get(&name) else {
                    return Ok(Err(no_portal(&name)));
                };
                match &portal.state {
                    PortalState::Ran { result, .. } if !result.columns.is_empty() => {
                        out.row_description(&types::fields(
                            columns_of(&portal.described, result),
                            &portal.result_formats,
                        ));
                    }
                    _ => out.no_data(),
                }
            }
            Frontend::Execute { portal, max_rows } => {
                return self.execute_portal(&portal, max_rows, out).await;
            }
            Frontend::Close { kind, name } => {
                if kind == b'S' {
                    self.extended.statements.remove(&name);
                } else {
                    self.extended.portals.remove(&name);
                }
                out.close_complete();
            }
            other => {
                return Ok(Err(BatchError(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!("unexpected {}", other.kind()),
                )));
            }
        }
        Ok(Ok(()))
    }

    async fn describe_statement<W: AsyncWrite + Unpin>(
        &mut self,
        name: &str,
        out: &mut Out<W>,
    ) -> Result<Result<(), BatchError>, PgServerError> {
        let Some(p) = self.extended.statements.get(name) else {
            return Ok(Err(no_statement(name)));
        };
        out.parameter_description(&p.param_types);
        let columns = match &p.columns {
            Some(c) => c.clone(),
            None => {
                let sql = p.sql.clone();
                let n = p.param_types.len();
                let mut probe_result = None;
                let columns = match known_columns(&sql) {
                    Some(c) => c,
                    None if !sql.is_empty() && statements::is_read_only(&sql) => {
                        let nulls = vec!["NULL".to_string(); n];
                        let probe = statements::substitute(&sql, &nulls).unwrap_or_default();
                        match self.execute(&probe).await? {
                            Ok(r) => {
                                let columns = r.columns.clone();
                                if n == 0 {
                                    probe_result = Some((self.executed, r));
                                }
                                columns
                            }
                            // Without parameters the error is the statement's own.
                            Err(e) if n == 0 => return Ok(Err(BatchError::from(&e))),
                            Err(_) => Vec::new(),
                        }
                    }
                    None => Vec::new(),
                };
                if let Some(p) = self.extended.statements.get_mut(name) {
                    p.columns = Some(columns.clone());
                    p.probe = probe_result;
                }
                columns
            }
        };
        if columns.is_empty() {
            out.no_data();
        } else {
            out.row_description(&types::fields(&columns, &[]));
        }
        Ok(Ok(()))
    }

    /// Runs the portal's statement if it has not run yet.
    async fn run_portal(&mut self, name: &str) -> Result<Result<(), BatchError>, PgServerError> {
        let Some(portal) = self.extended.portals.get(name) else {
            return Ok(Err(no_portal(name)));
        };
        if !matches!(portal.state, PortalState::Pending) || portal.sql.is_empty() {
            return Ok(Ok(()));
        }
        let sql = portal.sql.clone();
        let result = match self.execute(&sql).await? {
            Ok(r) => r,
            Err(e) => {
                self.extended.portals.remove(name);
                return Ok(Err(BatchError::from(&e)));
            }
        };
        if let Some(portal) = self.extended.portals.get_mut(name) {
            portal.state = PortalState::Ran { result, sent: 0 };
        }
        Ok(Ok(()))
    }

    async fn execute_portal<W: AsyncWrite + Unpin>(
        &mut self,
        name: &str,
        max_rows: i32,
        out: &mut Out<W>,
    ) -> Result<Result<(), BatchError>, PgServerError> {
        if let Err(e) = self.run_portal(name).await? {
            return Ok(Err(e));
        }
        let Some(portal) = self.extended.portals.get_mut(name) else {
            return Ok(Err(no_portal(name)));
        };
        let Portal {
            described,
            result_formats,
            state,
            ..
        } = portal;
        let PortalState::Ran { result, sent } = state else {
            out.empty_query();
            return Ok(Ok(()));
        };
        let total = result.rows.len();
        let to = match usize::try_from(max_rows) {
            Ok(n) if n > 0 => (*sent + n).min(total),
            _ => total,
        };
        let fields = types::fields(columns_of(described, result), result_formats);
        if let Err(m) = send_rows(out, result, &fields, *sent, to).await {
            return Ok(Err(BatchError(sqlstate::INTERNAL_ERROR, m)));
        }
        *sent = to;
        if to < total {
            out.portal_suspended();
        } else {
            out.command_complete(&tag_of(result));
        }
        Ok(Ok(()))
    }
}

/// Columns of statements that must not run just to be described.
fn known_columns(sql: &str) -> Option<Vec<(String, String)>> {
    let first = statements::first_word(sql);
    if !matches!(first.as_str(), "backup" | "restore") {
        return None;
    }
    let detached = sql.to_ascii_lowercase().contains("detached");
    let cols: &[(&str, &str)] = if detached {
        &[("job_id", "INT8")]
    } else {
        &[
            ("job_id", "INT8"),
            ("status", "STRING"),
            ("fraction_completed", "FLOAT8"),
            ("rows", "INT8"),
            ("index_entries", "INT8"),
            ("bytes", "INT8"),
        ]
    };
    Some(
        cols.iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect(),
    )
}

fn no_statement(name: &str) -> BatchError {
    BatchError(
        sqlstate::INVALID_STATEMENT_NAME,
        format!("prepared statement \"{name}\" does not exist"),
    )
}

fn no_portal(name: &str) -> BatchError {
    BatchError(
        sqlstate::INVALID_CURSOR_NAME,
        format!("portal \"{name}\" does not exist"),
    )
}
