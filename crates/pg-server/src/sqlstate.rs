//! SQLSTATE codes for the cluster's errors.

use embedded_cluster::{ClusterError, SqlError};

/// `28P01`: a wrong password (or an unknown user).
pub const INVALID_PASSWORD: &str = "28P01";
/// `28000`: the authorisation is not allowed at all.
pub const INVALID_AUTHORIZATION: &str = "28000";
/// `08P01`: the client broke the protocol.
pub const PROTOCOL_VIOLATION: &str = "08P01";
/// `0A000`: a feature this server does not have.
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// `26000`: no such prepared statement.
pub const INVALID_STATEMENT_NAME: &str = "26000";
/// `34000`: no such portal.
pub const INVALID_CURSOR_NAME: &str = "34000";
/// `22023`: a bad parameter value.
pub const INVALID_PARAMETER_VALUE: &str = "22023";
/// `3D000`: no such database.
pub const INVALID_CATALOG_NAME: &str = "3D000";
/// `XX000`: the server failed.
pub const INTERNAL_ERROR: &str = "XX000";
/// `53300`: the server has as many connections as it allows.
pub const TOO_MANY_CONNECTIONS: &str = "53300";
/// `57P01`: the server is shutting down.
pub const ADMIN_SHUTDOWN: &str = "57P01";

/// The SQLSTATE a client gets for `e`.
pub fn of(e: &SqlError) -> &'static str {
    match e {
        SqlError::Syntax(_) => "42601",
        SqlError::Unsupported(_) => FEATURE_NOT_SUPPORTED,
        SqlError::UndefinedRelation(_) => "42P01",
        SqlError::UndefinedDatabase(_) => INVALID_CATALOG_NAME,
        SqlError::UndefinedSchema(_) => "3F000",
        SqlError::UndefinedColumn(_) => "42703",
        SqlError::UndefinedType(_) => "42704",
        SqlError::UndefinedUser(_) => "42704",
        SqlError::Duplicate { kind, .. } => match *kind {
            "database" => "42P04",
            "schema" => "42P06",
            "role/user" => "42710",
            "type" => "42710",
            _ => "42P07",
        },
        SqlError::UniqueViolation(_) => "23505",
        SqlError::ForeignKeyViolation(_) => "23503",
        SqlError::NotNullViolation(_) => "23502",
        SqlError::InsufficientPrivilege { .. } | SqlError::NotAdmin(..) => "42501",
        SqlError::DependentObjects(..) => "2BP01",
        SqlError::Invalid(_) => INVALID_PARAMETER_VALUE,
        SqlError::Retry(_) => "40001",
        SqlError::TxnState(_) => "25000",
        SqlError::BackupUnavailable(_) => FEATURE_NOT_SUPPORTED,
        SqlError::Backup(_) => "XXUUU",
        SqlError::Cluster(c) => match c {
            ClusterError::WriteIntent { .. } | ClusterError::TxnAborted(_) => "40001",
            ClusterError::GcThreshold { .. } => "3B000",
            ClusterError::NodeDown(_) => "58030",
            ClusterError::Invalid(_) => INVALID_PARAMETER_VALUE,
            ClusterError::Corrupt(_) => "XX001",
            _ => INTERNAL_ERROR,
        },
    }
}
