//! The narrow interface every backend implements.

use std::fmt::Debug;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::StorageError;

/// One object found by [`ExternalStorage::list`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectMeta {
    /// Path relative to the storage's base path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// The result of [`ExternalStorage::list`], sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Objects (directly under the prefix when delimited, else all below it).
    pub objects: Vec<ObjectMeta>,
    /// With a delimiter: the "directories" directly under the prefix, relative
    /// to the base path, without a trailing `/`. Empty without a delimiter.
    pub prefixes: Vec<String>,
}

/// A place to read and write backup files: create-only writes, whole and
/// ranged reads, size, and listing. There is no delete and no overwrite.
///
/// Paths are relative to the URI's base path, `/`-separated, without `.`,
/// `..` or empty segments. Transient failures are retried inside the
/// storage (see [`crate::RetryPolicy`]) before an error is returned.
#[async_trait]
pub trait ExternalStorage: Send + Sync + Debug {
    /// Redacted description, e.g. the redacted URI.
    fn describe(&self) -> String;

    /// Writes a whole object; [`StorageError::AlreadyExists`] if the name is taken.
    async fn put(&self, path: &str, data: Bytes) -> Result<(), StorageError>;

    /// Starts a streamed, create-only write (multipart above the part size).
    /// Nothing is visible under `path` until [`ObjectWriter::finish`] succeeds.
    async fn writer(&self, path: &str) -> Result<Box<dyn ObjectWriter>, StorageError>;

    /// Reads a whole object.
    async fn get(&self, path: &str) -> Result<Bytes, StorageError>;

    /// Reads `range` (end exclusive) of an object; the range must lie inside it.
    async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StorageError>;

    /// The object's size, or `None` if it does not exist.
    async fn size(&self, path: &str) -> Result<Option<u64>, StorageError>;

    /// Whether the object exists.
    async fn exists(&self, path: &str) -> Result<bool, StorageError> {
        Ok(self.size(path).await?.is_some())
    }

    /// Lists under the directory `prefix` (`""` for the base). With
    /// `delimited`, only direct children: objects and sub-"directories".
    async fn list(&self, prefix: &str, delimited: bool) -> Result<Listing, StorageError>;
}

/// A streamed, create-only write of one object.
///
/// Dropping a writer without calling [`ObjectWriter::finish`] abandons the
/// write: no object becomes visible (pending multipart uploads are aborted in
/// the background where the backend allows it).
#[async_trait]
pub trait ObjectWriter: Send {
    /// Appends bytes.
    async fn write(&mut self, data: Bytes) -> Result<(), StorageError>;

    /// Publishes the object, create-only; returns its size.
    async fn finish(self: Box<Self>) -> Result<u64, StorageError>;

    /// Abandons the write explicitly; nothing becomes visible.
    async fn abort(self: Box<Self>) -> Result<(), StorageError>;
}

/// Checks an object path (or, with `allow_empty`, a listing prefix).
pub(crate) fn check_path(path: &str, allow_empty: bool) -> Result<(), StorageError> {
    let bad = |reason: &str| StorageError::InvalidPath {
        object: path.to_string(),
        reason: reason.to_string(),
    };
    if path.is_empty() {
        return if allow_empty {
            Ok(())
        } else {
            Err(bad("an object path cannot be empty"))
        };
    }
    if path.starts_with('/') {
        return Err(bad(
            "paths are relative to the storage's base; remove the leading '/'",
        ));
    }
    let trimmed = if allow_empty {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    for seg in trimmed.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(bad("paths cannot contain empty, '.' or '..' segments"));
        }
        if seg.contains('\\') || seg.chars().any(char::is_control) {
            return Err(bad("paths cannot contain '\\' or control characters"));
        }
        if is_staging_name(seg) {
            return Err(bad(
                "names ending in '#<digits>' are reserved for in-progress writes",
            ));
        }
    }
    Ok(())
}

/// `name#123`: the form of in-progress local files, hidden from listings.
pub(crate) fn is_staging_name(seg: &str) -> bool {
    match seg.rsplit_once('#') {
        Some((_, digits)) => !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()),
        None => false,
    }
}

/// Joins a base path and a relative path with `/`.
pub(crate) fn join(base: &str, path: &str) -> String {
    match (base.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => base.to_string(),
        (false, false) => format!("{base}/{path}"),
    }
}

/// Strips `base/` from a full path; `None` if it is not under `base`.
pub(crate) fn relative<'a>(base: &str, full: &'a str) -> Option<&'a str> {
    if base.is_empty() {
        return Some(full);
    }
    full.strip_prefix(base)?.strip_prefix('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert!(check_path("a/b.sst", false).is_ok());
        assert!(check_path("", true).is_ok());
        assert!(check_path("a/", true).is_ok());
        for bad in ["", "/a", "a//b", "a/../b", "./a", "a\\b", "a#12"] {
            assert!(check_path(bad, false).is_err(), "{bad} accepted");
        }
        assert!(check_path("a#b", false).is_ok());
    }

    #[test]
    fn join_and_relative() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("b", "a"), "b/a");
        assert_eq!(relative("b", "b/a"), Some("a"));
        assert_eq!(relative("b", "bc/a"), None);
    }
}
