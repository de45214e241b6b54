//! A [`JobStore`] in a directory: one file per job of length-prefixed
//! fields, replaced atomically (write to a temporary name, then rename), so a
//! killed process leaves every record whole and a new process resumes it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use backup_exec::{HostError, JobId, JobKind, JobRecord, JobStatus, JobStore};
use backup_format::Timestamp;

/// Job records as files `<dir>/<id>.job`.
pub struct FileJobStore {
    dir: PathBuf,
    /// Serialises read-modify-write within this process.
    lock: Mutex<()>,
}

fn io(what: &str) -> impl Fn(std::io::Error) -> HostError + '_ {
    move |e| HostError::Storage(format!("{what}: {e}"))
}

impl FileJobStore {
    /// The store in `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<FileJobStore, HostError> {
        fs::create_dir_all(dir).map_err(io("creating the job directory"))?;
        Ok(FileJobStore {
            dir: dir.to_path_buf(),
            lock: Mutex::new(()),
        })
    }

    fn path(&self, id: JobId) -> PathBuf {
        self.dir.join(format!("{id:020}.job"))
    }

    fn write(&self, record: &JobRecord) -> Result<(), HostError> {
        let tmp = self.dir.join(format!("{:020}.tmp", record.id));
        fs::write(&tmp, encode(record)).map_err(io("writing a job record"))?;
        fs::rename(&tmp, self.path(record.id)).map_err(io("publishing a job record"))
    }

    fn read(&self, id: JobId) -> Result<Option<JobRecord>, HostError> {
        match fs::read(self.path(id)) {
            Ok(bytes) => decode(&bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading a job record")(e)),
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        match self.lock.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn ids(&self) -> Result<Vec<JobId>, HostError> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io("listing jobs"))? {
            let name = entry.map_err(io("listing jobs"))?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name.strip_suffix(".job").and_then(|s| s.parse().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }
}

impl JobStore for FileJobStore {
    fn create(&self, record: &JobRecord) -> Result<JobId, HostError> {
        let _g = self.guard();
        let id = self.ids()?.last().map_or(1, |i| i + 1);
        let mut r = record.clone();
        r.id = id;
        self.write(&r)?;
        Ok(id)
    }

    fn update(
        &self,
        id: JobId,
        change: &mut dyn FnMut(&mut JobRecord) -> Result<(), HostError>,
    ) -> Result<JobRecord, HostError> {
        let _g = self.guard();
        let mut r = self
            .read(id)?
            .ok_or_else(|| HostError::NotFound(format!("job {id}")))?;
        change(&mut r)?;
        self.write(&r)?;
        Ok(r)
    }

    fn get(&self, id: JobId) -> Result<Option<JobRecord>, HostError> {
        let _g = self.guard();
        self.read(id)
    }

    fn list(&self) -> Result<Vec<JobRecord>, HostError> {
        let _g = self.guard();
        let mut out = Vec::new();
        for id in self.ids()? {
            out.extend(self.read(id)?);
        }
        Ok(out)
    }
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u64).to_le_bytes());
    out.extend_from_slice(field);
}

fn put_ts(out: &mut Vec<u8>, ts: Option<Timestamp>) {
    put(out, &ts.map(|t| t.to_bytes().to_vec()).unwrap_or_default());
}

fn encode(r: &JobRecord) -> Vec<u8> {
    let mut out = Vec::new();
    put(&mut out, &r.id.to_le_bytes());
    put(&mut out, r.kind.as_str().as_bytes());
    put(&mut out, r.description.as_bytes());
    put(&mut out, r.user.as_bytes());
    put(&mut out, r.status.as_str().as_bytes());
    put_ts(&mut out, Some(r.created));
    put_ts(&mut out, r.started);
    put_ts(&mut out, r.finished);
    put(&mut out, &r.fraction_completed.to_le_bytes());
    put(&mut out, r.error.as_deref().unwrap_or("\u{0}").as_bytes());
    put(&mut out, &r.payload);
    put(&mut out, &r.progress);
    out
}

fn decode(bytes: &[u8]) -> Result<JobRecord, HostError> {
    let bad = |what: &str| HostError::Storage(format!("corrupt job record: {what}"));
    let mut fields = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, tail) = rest.split_at_checked(8).ok_or_else(|| bad("truncated"))?;
        let len = u64::from_le_bytes(len.try_into().map_err(|_| bad("length"))?);
        let len = usize::try_from(len).map_err(|_| bad("length"))?;
        let (field, tail) = tail.split_at_checked(len).ok_or_else(|| bad("truncated"))?;
        fields.push(field);
        rest = tail;
    }
    let [
        id,
        kind,
        desc,
        user,
        status,
        created,
        started,
        finished,
        frac,
        error,
        payload,
        progress,
    ] = fields[..]
    else {
        return Err(bad("wrong number of fields"));
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| bad("not UTF-8"));
    let ts = |b: &[u8]| -> Result<Option<Timestamp>, HostError> {
        if b.is_empty() {
            return Ok(None);
        }
        Ok(Some(Timestamp::from_bytes(
            b.try_into().map_err(|_| bad("timestamp"))?,
        )))
    };
    let error = text(error)?;
    Ok(JobRecord {
        id: u64::from_le_bytes(id.try_into().map_err(|_| bad("id"))?),
        kind: match kind {
            b"BACKUP" => JobKind::Backup,
            b"RESTORE" => JobKind::Restore,
            _ => return Err(bad("kind")),
        },
        description: text(desc)?,
        user: text(user)?,
        status: JobStatus::parse(&text(status)?).ok_or_else(|| bad("status"))?,
        created: ts(created)?.ok_or_else(|| bad("created"))?,
        started: ts(started)?,
        finished: ts(finished)?,
        fraction_completed: f64::from_le_bytes(frac.try_into().map_err(|_| bad("fraction"))?),
        error: (error != "\u{0}").then_some(error),
        payload: payload.to_vec(),
        progress: progress.to_vec(),
        created_by_schedule: None,
    })
}
