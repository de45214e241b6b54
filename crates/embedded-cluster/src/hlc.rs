//! The hybrid-logical clock.
//!
//! Invariant: every timestamp [`Hlc::now`] returns is above every timestamp it
//! returned before, in this process and in every earlier one that used the
//! same store. Across restarts this holds because the clock persists a
//! *ceiling* — a wall time one second ahead of anything handed out — before
//! handing out a timestamp at or past the old ceiling, and a reopened clock
//! starts at the persisted ceiling.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use backup_format::Timestamp;

use crate::error::{ClusterError, storage};

/// How far ahead of handed-out time the persisted ceiling is.
const CEILING_LEAD_NANOS: i64 = 1_000_000_000;

/// A monotonic clock close to wall time, persisted in one small file.
#[derive(Debug)]
pub struct Hlc {
    path: PathBuf,
    state: Mutex<HlcState>,
}

#[derive(Debug)]
struct HlcState {
    last: Timestamp,
    ceiling: i64,
}

impl Hlc {
    /// Opens (or creates) the clock persisted at `path`.
    pub fn open(path: &Path) -> Result<Hlc, ClusterError> {
        let ceiling = match fs::read(path) {
            Ok(bytes) => {
                let raw: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                    ClusterError::Corrupt(format!("clock file {} is not 8 bytes", path.display()))
                })?;
                i64::from_be_bytes(raw)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(storage("reading the clock file")(&e)),
        };
        Ok(Hlc {
            path: path.to_path_buf(),
            state: Mutex::new(HlcState {
                last: Timestamp::from_wall(ceiling),
                ceiling,
            }),
        })
    }

    /// A timestamp above every earlier one, close to wall time.
    pub fn now(&self) -> Result<Timestamp, ClusterError> {
        self.advance(None)
    }

    /// Like [`Hlc::now`], but if persisting the ceiling fails the timestamp is
    /// still returned (monotonic in this process; the next call retries the write).
    pub fn now_lossy(&self) -> Timestamp {
        match self.now() {
            Ok(ts) => ts,
            Err(_) => {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                st.last = st.last.next();
                st.last
            }
        }
    }

    /// Moves the clock past `ts` (a timestamp seen from elsewhere), then ticks.
    pub fn observe(&self, ts: Timestamp) -> Result<Timestamp, ClusterError> {
        self.advance(Some(ts))
    }

    fn advance(&self, seen: Option<Timestamp>) -> Result<Timestamp, ClusterError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut base = st.last;
        if let Some(seen) = seen {
            base = base.max(seen);
        }
        let wall = wall_nanos();
        let next = if wall > base.wall {
            Timestamp::from_wall(wall)
        } else {
            base.next()
        };
        if next.wall >= st.ceiling {
            let ceiling = next.wall.saturating_add(CEILING_LEAD_NANOS);
            persist(&self.path, ceiling)?;
            st.ceiling = ceiling;
        }
        st.last = next;
        Ok(next)
    }
}

/// Wall time in nanoseconds since the epoch (0 if the system clock is before it).
fn wall_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Writes the ceiling durably: a temporary file, fsync, then rename over the old one.
fn persist(path: &Path, ceiling: i64) -> Result<(), ClusterError> {
    let tmp = path.with_extension("tmp");
    let err = storage("persisting the clock ceiling");
    let mut f = fs::File::create(&tmp).map_err(|e| err(&e))?;
    f.write_all(&ceiling.to_be_bytes()).map_err(|e| err(&e))?;
    f.sync_all().map_err(|e| err(&e))?;
    fs::rename(&tmp, path).map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_never_back_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        let clock = Hlc::open(&path).unwrap();
        let mut last = Timestamp::ZERO;
        for _ in 0..1000 {
            let t = clock.now().unwrap();
            assert!(t > last);
            last = t;
        }
        let far = Timestamp::from_wall(last.wall + 3_600_000_000_000);
        assert!(clock.observe(far).unwrap() > far);
        drop(clock);
        let reopened = Hlc::open(&path).unwrap();
        assert!(
            reopened.now().unwrap() > far,
            "time went back across a reopen"
        );
        let wall = wall_nanos();
        let close = Hlc::open(&dir.path().join("other")).unwrap().now().unwrap();
        assert!(
            (close.wall - wall).abs() < 1_000_000_000,
            "far from wall time"
        );
    }
}
