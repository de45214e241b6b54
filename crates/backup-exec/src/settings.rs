//! Tunables of the backup job; tests shrink the delays to milliseconds.

use std::time::Duration;

/// How a backup job runs. Memory is bounded by these, never by data size:
/// roughly `nodes × per_node_concurrency × (chunk_target_bytes + block size)`.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupSettings {
    /// Stored bytes after which a data file is closed (`bulkio.backup.file_size`, 128 MiB).
    pub file_size: u64,
    /// Bytes one export call returns at most (a key's revisions may exceed it).
    pub chunk_target_bytes: u64,
    /// Export workers per node (~5 in CockroachDB's setup, 3 exports per store).
    pub per_node_concurrency: usize,
    /// A span that met an intent is retried no sooner than this after its last try (5 s).
    pub intent_retry_delay: Duration,
    /// After this much backup time, spans are read with high priority (1 minute).
    pub priority_delay: Duration,
    /// Transient failures without progress before the job pauses (5).
    pub max_retries: u32,
    /// First backoff after a transient failure; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Cap of the backoff (1 s).
    pub max_backoff: Duration,
    /// How often progress is checkpointed (1 minute).
    pub checkpoint_interval: Duration,
    /// PBKDF2 iterations for a new encrypted backup (64,000).
    pub kdf_iterations: u32,
    /// Export chunks in flight across the whole job, in bytes of their
    /// `chunk_target_bytes` (64 MiB): with the chunk size, this bounds the
    /// job's buffers whatever the number of nodes and workers. At least one
    /// chunk is always allowed.
    pub max_in_flight_bytes: u64,
}

impl Default for BackupSettings {
    fn default() -> BackupSettings {
        BackupSettings {
            file_size: 128 << 20,
            chunk_target_bytes: 4 << 20,
            per_node_concurrency: 3,
            intent_retry_delay: Duration::from_secs(5),
            priority_delay: Duration::from_secs(60),
            max_retries: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(60),
            kdf_iterations: backup_format::DEFAULT_PBKDF2_ITERATIONS,
            max_in_flight_bytes: 64 << 20,
        }
    }
}

impl BackupSettings {
    /// Settings for tests: small files and chunks, millisecond delays.
    pub fn for_tests() -> BackupSettings {
        BackupSettings {
            file_size: 64 << 10,
            chunk_target_bytes: 8 << 10,
            per_node_concurrency: 2,
            intent_retry_delay: Duration::from_millis(5),
            priority_delay: Duration::from_millis(100),
            max_retries: 4,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(10),
            checkpoint_interval: Duration::from_millis(20),
            kdf_iterations: 1_000,
            max_in_flight_bytes: 24 << 10,
        }
    }

    /// The backoff before retry number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}
