//! Bounded exponential backoff for transient failures.

use std::future::Future;
use std::time::Duration;

use crate::error::StorageError;

/// How transient failures are retried inside a storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (1 means no retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub base_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Runs `op` until it succeeds, fails with a non-transient error, or the
    /// attempts are used up. `op` gets the attempt number (1-based).
    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<T, StorageError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, StorageError>>,
    {
        let attempts = self.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match op(attempt).await {
                Err(StorageError::Transient {
                    object,
                    storage,
                    cause,
                    ..
                }) => {
                    if attempt >= attempts {
                        return Err(StorageError::Transient {
                            object,
                            storage,
                            attempts: attempt,
                            cause,
                        });
                    }
                    tracing::debug!(%object, %storage, attempt, %cause, "retrying transient storage failure");
                    tokio::time::sleep(self.delay(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn transient() -> StorageError {
        StorageError::Transient {
            object: "o".into(),
            storage: "s".into(),
            attempts: 1,
            cause: "503".into(),
        }
    }

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let out = quick(5)
            .run(|_| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(transient())
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(out, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn retries_are_bounded_and_counted() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = quick(3)
            .run(|_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(transient())
            })
            .await;
        assert!(matches!(
            out,
            Err(StorageError::Transient { attempts: 3, .. })
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = quick(5)
            .run(|_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(StorageError::AlreadyExists {
                    object: "o".into(),
                    storage: "s".into(),
                    cause: "exists".into(),
                })
            })
            .await;
        assert!(out.is_err_and(|e| e.is_already_exists()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(40), Duration::from_secs(5));
    }
}
