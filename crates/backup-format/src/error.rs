//! The crate's error type.

/// Everything that can go wrong reading or writing backup formats.
///
/// Errors about a file name the file, so that an operator knows which object
/// in the bucket to look at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// A timestamp string could not be parsed.
    #[error("invalid timestamp {input:?}: {reason}")]
    InvalidTimestamp {
        /// What was given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
}
