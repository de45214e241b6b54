//! SQL errors, worded like a database's.

use crate::error::ClusterError;

/// Everything a SQL statement can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The text does not parse.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// The statement parses but this SQL layer does not implement it.
    #[error("unimplemented: {0}")]
    Unsupported(String),
    /// No such table, view or sequence.
    #[error("relation \"{0}\" does not exist")]
    UndefinedRelation(String),
    /// No such database.
    #[error("database \"{0}\" does not exist")]
    UndefinedDatabase(String),
    /// No such schema.
    #[error("schema \"{0}\" does not exist")]
    UndefinedSchema(String),
    /// No such column.
    #[error("column \"{0}\" does not exist")]
    UndefinedColumn(String),
    /// No such type.
    #[error("type \"{0}\" does not exist")]
    UndefinedType(String),
    /// No such user or role.
    #[error("role/user \"{0}\" does not exist")]
    UndefinedUser(String),
    /// The name is taken.
    #[error("{kind} \"{name}\" already exists")]
    Duplicate {
        /// `relation`, `database`, `schema`, `type`, `role/user`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A unique index (or the primary key) already holds the value.
    #[error("duplicate key value violates unique constraint \"{0}\"")]
    UniqueViolation(String),
    /// A foreign key does not hold.
    #[error("{0}")]
    ForeignKeyViolation(String),
    /// NULL in a NOT NULL column.
    #[error("null value in column \"{0}\" violates not-null constraint")]
    NotNullViolation(String),
    /// The user lacks a privilege.
    #[error("user {user} does not have {privilege} privilege on {kind} {object}")]
    InsufficientPrivilege {
        /// The session's user.
        user: String,
        /// The missing privilege.
        privilege: String,
        /// `relation`, `database`, `schema`, `type`.
        kind: &'static str,
        /// The object's name.
        object: String,
    },
    /// Only admins may do this.
    #[error("user {0} does not have the admin role: {1}")]
    NotAdmin(String, String),
    /// A dependent object blocks a drop.
    #[error("cannot drop {0}: {1} depends on it")]
    DependentObjects(String, String),
    /// A value of the wrong type or out of range, or a bad argument.
    #[error("{0}")]
    Invalid(String),
    /// A concurrent transaction won; the client should retry.
    #[error("restart transaction: TransactionRetryWithProtoRefreshError: {0}")]
    Retry(String),
    /// A statement not allowed in the session's transaction state.
    #[error("{0}")]
    TxnState(String),
    /// A backup statement arrived but no handler is installed.
    #[error("{0} is not available in this build: no backup statement handler is installed")]
    BackupUnavailable(String),
    /// A backup statement handler failed.
    #[error("{0}")]
    Backup(String),
    /// The cluster failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl From<crate::sql::kv::CommitError> for SqlError {
    fn from(e: crate::sql::kv::CommitError) -> SqlError {
        match e {
            crate::sql::kv::CommitError::Conflict(key) => SqlError::Retry(format!(
                "a concurrent transaction wrote key {} first",
                backup_format::PrettyKey(&key)
            )),
            crate::sql::kv::CommitError::Cluster(c) => SqlError::Cluster(c),
        }
    }
}
