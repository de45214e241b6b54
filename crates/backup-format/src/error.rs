//! The crate's error type.
//!
//! Every error about a file names the file (the caller passes the name or
//! path it read the bytes from) and says what is wrong with it, so that an
//! operator knows which object in the bucket to look at and what to do.

use std::io;

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
    /// Reading or writing the underlying bytes failed.
    #[error("{file}: I/O error: {source}")]
    Io {
        /// The file being read or written.
        file: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file does not start or end with the magic bytes of its kind.
    #[error(
        "{file} is not a {expected} (its magic bytes are wrong): check that the path names the right object, or the object is damaged"
    )]
    BadMagic {
        /// The file.
        file: String,
        /// What kind of file was expected.
        expected: &'static str,
    },
    /// The file was written by a newer, incompatible release.
    #[error(
        "{file} has format version {major}.{minor}, but this release reads only major version {supported}: read it with a newer release"
    )]
    UnsupportedVersion {
        /// The file.
        file: String,
        /// The major version found.
        major: u16,
        /// The minor version found.
        minor: u16,
        /// The major version this release reads.
        supported: u16,
    },
    /// The file ends early.
    #[error("{file} is truncated: {detail}; the object is incomplete or was cut short in storage")]
    Truncated {
        /// The file.
        file: String,
        /// What was missing.
        detail: String,
    },
    /// A checksum over stored bytes does not match.
    #[error(
        "{file} is corrupt: checksum mismatch in {part}; the object was altered or damaged in storage"
    )]
    ChecksumMismatch {
        /// The file.
        file: String,
        /// Which part (`block 3`, `index`, `footer`, ...).
        part: String,
    },
    /// The bytes are structurally invalid.
    #[error("{file} is corrupt: {detail}")]
    Corrupt {
        /// The file.
        file: String,
        /// What is wrong.
        detail: String,
    },
    /// The key derived from the passphrase is not the backup's key.
    #[error(
        "{file}: the passphrase does not open this backup; give the passphrase the backup was taken with"
    )]
    WrongPassphrase {
        /// The file that was being opened.
        file: String,
    },
    /// AES-GCM authentication failed with the right key.
    #[error(
        "{file} failed authentication in {part}: it was altered, truncated, reordered or belongs to another file"
    )]
    AuthenticationFailed {
        /// The file.
        file: String,
        /// Which part.
        part: String,
    },
    /// The file is encrypted and no key was given.
    #[error("{file} is encrypted: give the backup's passphrase to read it")]
    KeyRequired {
        /// The file.
        file: String,
    },
    /// A key was given for a file that is not encrypted.
    #[error(
        "{file} is not encrypted, but a passphrase was given: the backup chain mixes encrypted and plain files"
    )]
    UnexpectedPlaintext {
        /// The file.
        file: String,
    },
    /// zstd could not decompress a part of the file.
    #[error("{file} is corrupt: {part} does not decompress: {detail}")]
    Decompression {
        /// The file.
        file: String,
        /// Which part.
        part: String,
        /// The decompressor's message.
        detail: String,
    },
    /// Input given to a writer was not in the required order.
    #[error("{file}: input out of order: {detail}")]
    OutOfOrder {
        /// The file being written.
        file: String,
        /// Which items were out of order.
        detail: String,
    },
    /// The encryption info names a key-derivation function this release does not know.
    #[error(
        "{file} names the key-derivation function {name:?}, which this release does not know: read it with a newer release"
    )]
    UnknownKdf {
        /// The file.
        file: String,
        /// The KDF name found.
        name: String,
    },
    /// A caller-supplied value is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

impl FormatError {
    /// An I/O error on `file`.
    pub fn io(file: &str, source: io::Error) -> FormatError {
        FormatError::Io {
            file: file.to_string(),
            source,
        }
    }

    /// Structurally invalid bytes in `file`.
    pub fn corrupt(file: &str, detail: impl Into<String>) -> FormatError {
        FormatError::Corrupt {
            file: file.to_string(),
            detail: detail.into(),
        }
    }

    /// `file` ends early.
    pub fn truncated(file: &str, detail: impl Into<String>) -> FormatError {
        FormatError::Truncated {
            file: file.to_string(),
            detail: detail.into(),
        }
    }

    /// A checksum mismatch in `part` of `file`.
    pub fn checksum(file: &str, part: impl Into<String>) -> FormatError {
        FormatError::ChecksumMismatch {
            file: file.to_string(),
            part: part.into(),
        }
    }

    /// The file this error is about, when it is about one.
    pub fn file(&self) -> Option<&str> {
        match self {
            FormatError::Io { file, .. }
            | FormatError::BadMagic { file, .. }
            | FormatError::UnsupportedVersion { file, .. }
            | FormatError::Truncated { file, .. }
            | FormatError::ChecksumMismatch { file, .. }
            | FormatError::Corrupt { file, .. }
            | FormatError::WrongPassphrase { file }
            | FormatError::AuthenticationFailed { file, .. }
            | FormatError::KeyRequired { file }
            | FormatError::UnexpectedPlaintext { file }
            | FormatError::Decompression { file, .. }
            | FormatError::OutOfOrder { file, .. }
            | FormatError::UnknownKdf { file, .. } => Some(file),
            FormatError::InvalidTimestamp { .. }
            | FormatError::InvalidArgument(_)
            | FormatError::Random(_) => None,
        }
    }
}
