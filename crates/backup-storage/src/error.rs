//! The crate's one error type, and how object_store errors map onto it.

/// Everything that can go wrong reading, writing or opening backup storage.
///
/// Every variant names the object (or URI) and the cause; none ever contains a
/// secret: URIs are redacted and causes coming from a backend are scrubbed of
/// the storage's secrets before they are stored here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist.
    #[error("object {object} not found in {storage}: {cause}")]
    NotFound {
        /// Path of the object, relative to the storage's base.
        object: String,
        /// Redacted description of the storage.
        storage: String,
        /// What the backend said.
        cause: String,
    },
    /// A create-only write found an object of that name; backups never overwrite.
    #[error(
        "object {object} already exists in {storage} and backups never overwrite; write to a new name ({cause})"
    )]
    AlreadyExists {
        /// Path of the object, relative to the storage's base.
        object: String,
        /// Redacted description of the storage.
        storage: String,
        /// What the backend said.
        cause: String,
    },
    /// The credentials are missing, wrong, or lack a permission the operation needs.
    #[error(
        "permission denied for object {object} in {storage}: {cause}; check the URI's credentials and the bucket's policy"
    )]
    PermissionDenied {
        /// Path of the object, relative to the storage's base.
        object: String,
        /// Redacted description of the storage.
        storage: String,
        /// What the backend said.
        cause: String,
    },
    /// The URI cannot be used: bad syntax, unknown parameter, missing credentials, escaping path.
    #[error("invalid storage URI {uri}: {reason}")]
    InvalidUri {
        /// The URI, redacted.
        uri: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// An object path handed to the storage is not acceptable (empty, `..`, absolute).
    #[error("invalid object path {object:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        object: String,
        /// What is wrong.
        reason: String,
    },
    /// A failure that may go away if retried (timeouts, 5xx, connection errors);
    /// returned once the crate's own retries are used up.
    #[error(
        "transient failure on object {object} in {storage} after {attempts} attempt(s): {cause}"
    )]
    Transient {
        /// Path of the object, relative to the storage's base.
        object: String,
        /// Redacted description of the storage.
        storage: String,
        /// How many attempts were made.
        attempts: u32,
        /// What the backend said last.
        cause: String,
    },
    /// The operation or parameter is understood but not supported by this build.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is unsupported and what to do instead.
        what: String,
    },
    /// Any other failure, not worth retrying.
    #[error("storage failure on object {object} in {storage}: {cause}")]
    Permanent {
        /// Path of the object, relative to the storage's base.
        object: String,
        /// Redacted description of the storage.
        storage: String,
        /// What the backend said.
        cause: String,
    },
}

impl StorageError {
    /// True for failures worth retrying later (the backup job pauses on these).
    pub fn is_transient(&self) -> bool {
        matches!(self, StorageError::Transient { .. })
    }

    /// True when the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    /// True when a create-only write met an existing object.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, StorageError::AlreadyExists { .. })
    }

    pub(crate) fn invalid_uri(uri: impl Into<String>, reason: impl Into<String>) -> StorageError {
        StorageError::InvalidUri {
            uri: uri.into(),
            reason: reason.into(),
        }
    }
}

/// Replaces every known secret in backend messages with `redacted`.
///
/// Backends build their own error texts; we never trust them not to echo a
/// credential, so each storage scrubs with the secrets of its own URI.
#[derive(Clone, Default)]
pub(crate) struct Scrubber {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

impl Scrubber {
    pub(crate) fn new(secrets: impl IntoIterator<Item = String>) -> Scrubber {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Scrubber { secrets }
    }

    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "redacted");
            }
        }
        out
    }
}

/// The class of an object_store failure, before it becomes a [`StorageError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    NotFound,
    AlreadyExists,
    Denied,
    Transient,
    Permanent,
}

/// Classifies an object_store error: what the caller may do about it.
pub(crate) fn classify(err: &object_store::Error) -> Class {
    use object_store::Error as E;
    match err {
        E::NotFound { .. } => Class::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => Class::AlreadyExists,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => Class::Denied,
        _ => classify_chain(err),
    }
}

fn classify_chain(err: &(dyn std::error::Error + 'static)) -> Class {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(sts) = e.downcast_ref::<crate::sts::StsError>() {
            return if sts.is_denied() {
                Class::Denied
            } else if sts.is_transient() {
                Class::Transient
            } else {
                Class::Permanent
            };
        }
        if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as K;
            if matches!(
                http.kind(),
                K::Connect | K::Request | K::Timeout | K::Interrupted
            ) {
                return Class::Transient;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::TimedOut | K::Interrupted | K::ConnectionReset | K::ConnectionAborted => {
                    return Class::Transient;
                }
                K::PermissionDenied => return Class::Denied,
                K::NotFound => return Class::NotFound,
                K::AlreadyExists => return Class::AlreadyExists,
                _ => {}
            }
        }
        current = e.source();
    }
    let text = err.to_string();
    if let Some(status) = status_code(&text) {
        return match status {
            429 | 500..=599 => Class::Transient,
            401 | 403 => Class::Denied,
            404 => Class::NotFound,
            409 | 412 => Class::AlreadyExists,
            _ => Class::Permanent,
        };
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("timed out") || lower.contains("connection") {
        return Class::Transient;
    }
    Class::Permanent
}

/// Finds the HTTP status in object_store's "status code: NNN" messages.
fn status_code(text: &str) -> Option<u16> {
    let idx = text.find("status code: ")?;
    let digits: String = text[idx + "status code: ".len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Full text of an error and its sources, one line.
pub(crate) fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        current = e.source();
    }
    text
}

/// Builds the [`StorageError`] for an object_store failure on one object.
pub(crate) fn from_object_store(
    err: &object_store::Error,
    object: &str,
    storage: &str,
    scrubber: &Scrubber,
    attempts: u32,
) -> StorageError {
    let cause = scrubber.scrub(&chain_text(err));
    let object = object.to_string();
    let storage = storage.to_string();
    match classify(err) {
        Class::NotFound => StorageError::NotFound {
            object,
            storage,
            cause,
        },
        Class::AlreadyExists => StorageError::AlreadyExists {
            object,
            storage,
            cause,
        },
        Class::Denied => StorageError::PermissionDenied {
            object,
            storage,
            cause,
        },
        Class::Transient => StorageError::Transient {
            object,
            storage,
            attempts,
            cause,
        },
        Class::Permanent => StorageError::Permanent {
            object,
            storage,
            cause,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_classify() {
        let err = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 503 Service Unavailable: slow down"
                .into(),
        };
        assert_eq!(classify(&err), Class::Transient);
        let err = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 400 Bad Request: no".into(),
        };
        assert_eq!(classify(&err), Class::Permanent);
        let err = object_store::Error::NotFound {
            path: "a".into(),
            source: "gone".into(),
        };
        assert_eq!(classify(&err), Class::NotFound);
    }

    #[test]
    fn scrubber_replaces_secrets() {
        let s = Scrubber::new(vec!["SECRETVALUE".to_string(), "ab".to_string()]);
        assert_eq!(s.scrub("key SECRETVALUE here ab"), "key redacted here ab");
    }
}
