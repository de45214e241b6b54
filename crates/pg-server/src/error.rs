//! The crate's one error type.

/// What can go wrong serving the wire protocol.
#[derive(Debug, thiserror::Error)]
pub enum PgServerError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}; pick a free port or another address")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A socket failed.
    #[error("connection i/o failed: {0}")]
    Io(#[from] std::io::Error),
    /// A client sent something the protocol does not allow.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The session thread of a connection stopped.
    #[error("the connection's session thread stopped")]
    SessionGone,
    /// The server's runtime could not start.
    #[error("cannot start the server runtime: {0}")]
    Runtime(String),
}
