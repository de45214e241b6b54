//! `SHOW BACKUPS`, `SHOW BACKUP [SCHEMAS | FILES | RANGES]` (with
//! `check_files`), `SHOW JOBS` / `SHOW JOB`, and `PAUSE` / `RESUME` /
//! `CANCEL JOB`.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use backup_exec::restore::{BackupChain, ChainLayer, read_backup};
use backup_exec::{JobKind, JobRecord, JobStatus};
use backup_format::datafile::{DataFileReader, verify_data_file};
use backup_format::manifest::{BackupFile, SideFileReader};
use backup_format::paths::{BACKUP_MANIFEST, ENCRYPTION_INFO, INCREMENTALS_DIR};
use backup_format::{Descriptor, DescriptorId, PrettyKey, Span, Timestamp};
use backup_format::{EncryptionInfo, EncryptionKey};
use backup_storage::{ExternalStorage, StorageUri};

use super::plan::source;
use super::resolve::Names;
use super::{BackupStatements, Datum, ResultSet, SqlContext, flag, text};
use crate::ast::{Expr, JobCommand, ShowBackup, ShowBackupDetails};
use crate::error::SqlError;

const SHOW_JOBS_COLUMNS: &[(&str, &str)] = &[
    ("job_id", "INT8"),
    ("job_type", "STRING"),
    ("description", "STRING"),
    ("user_name", "STRING"),
    ("status", "STRING"),
    ("created", "TIMESTAMPTZ"),
    ("started", "TIMESTAMPTZ"),
    ("finished", "TIMESTAMPTZ"),
    ("fraction_completed", "FLOAT8"),
    ("error", "STRING"),
    ("schedule_id", "INT8"),
];

const SHOW_BACKUP_COLUMNS: &[(&str, &str)] = &[
    ("database_name", "STRING"),
    ("parent_schema_name", "STRING"),
    ("object_name", "STRING"),
    ("object_type", "STRING"),
    ("backup_type", "STRING"),
    ("start_time", "TIMESTAMPTZ"),
    ("end_time", "TIMESTAMPTZ"),
    ("size_bytes", "INT8"),
    ("rows", "INT8"),
    ("is_full_cluster", "BOOL"),
];

const SHOW_FILES_COLUMNS: &[(&str, &str)] = &[
    ("path", "STRING"),
    ("backup_type", "STRING"),
    ("start_pretty", "STRING"),
    ("end_pretty", "STRING"),
    ("size_bytes", "INT8"),
    ("rows", "INT8"),
];

const SHOW_RANGES_COLUMNS: &[(&str, &str)] = &[
    ("start_pretty", "STRING"),
    ("end_pretty", "STRING"),
    ("start_key", "BYTES"),
    ("end_key", "BYTES"),
];

fn ts(t: Option<Timestamp>) -> Datum {
    match t {
        Some(t) if !t.is_zero() => Datum::Timestamp(t),
        _ => Datum::Null,
    }
}

fn backup_type(i: usize) -> Datum {
    Datum::String(if i == 0 { "full" } else { "incremental" }.into())
}

/// How to read a chain's files: its collection and incremental storages,
/// and the key of an encrypted chain.
struct Access {
    storages: [Arc<dyn ExternalStorage>; 2],
    key: Option<EncryptionKey>,
    /// `key=value` locality -> the storage of its URI.
    by_locality: Vec<(String, Arc<dyn ExternalStorage>)>,
}

/// The storage holding `file` of layer `l`, or `None` for a locality whose
/// URI the statement did not give.
fn file_storage(
    access: &Access,
    l: &ChainLayer,
    file: &BackupFile,
) -> Option<Arc<dyn ExternalStorage>> {
    if file.locality.is_empty() {
        return Some(layer_storage(access, l));
    }
    access
        .by_locality
        .iter()
        .find(|(loc, _)| *loc == file.locality)
        .map(|(_, s)| s.clone())
}

/// The storage holding a layer's default-locality files.
fn layer_storage(access: &Access, l: &ChainLayer) -> Arc<dyn ExternalStorage> {
    let chain_storage = &access.storages;
    if l.dir.starts_with(INCREMENTALS_DIR) {
        chain_storage[1].clone()
    } else {
        chain_storage[0].clone()
    }
}

impl BackupStatements {
    pub(super) async fn show_backups(&self, collection: &Expr) -> Result<ResultSet, SqlError> {
        let uri = text("collection URI", collection)?;
        let storage = self.host.storage.open(&StorageUri::parse(&uri)?)?;
        let listing = storage.list("", false).await?;
        let mut rs = ResultSet::with_columns(&[("path", "STRING")]);
        for obj in listing.objects {
            let Some(dir) = obj.path.strip_suffix(&format!("/{BACKUP_MANIFEST}")) else {
                continue;
            };
            if dir.starts_with(INCREMENTALS_DIR) || dir.starts_with("metadata") {
                continue;
            }
            rs.rows.push(vec![Datum::String(format!("/{dir}"))]);
        }
        Ok(rs)
    }

    /// The data files of every layer, with the layer's index.
    async fn files(
        &self,
        chain: &BackupChain,
        storages: &Access,
    ) -> Result<Vec<(usize, BackupFile)>, SqlError> {
        let mut out = Vec::new();
        for (i, l) in chain.layers.iter().enumerate() {
            let storage = layer_storage(storages, l);
            let path = format!("{}/{}", l.dir, l.manifest.files.name);
            let raw = storage.get(&path).await?;
            let reader = SideFileReader::<_, BackupFile>::open(
                &path,
                Cursor::new(raw.to_vec()),
                &l.manifest.files,
                storages.key.as_ref(),
            )
            .map_err(|e| SqlError::Exec(e.to_string()))?;
            for f in reader {
                out.push((i, f.map_err(|e| SqlError::Exec(e.to_string()))?));
            }
        }
        Ok(out)
    }

    pub(super) async fn show_backup(&self, s: &ShowBackup) -> Result<ResultSet, SqlError> {
        let o = &s.options;
        let src = source(&s.subdir, &s.collection, &o.incremental_location)?;
        let passphrase = o
            .encryption_passphrase
            .as_ref()
            .map(|e| text("encryption_passphrase", e))
            .transpose()?;
        let chain = read_backup(self.host.storage.as_ref(), &src, passphrase.as_deref()).await?;
        let collection = self
            .host
            .storage
            .open(&StorageUri::parse(&src.collection)?)?;
        let incrementals = match &src.incremental_location {
            Some(u) => self.host.storage.open(&StorageUri::parse(u)?)?,
            None => collection.clone(),
        };
        let key = match chain.encrypted() {
            false => None,
            true => {
                let path = format!("{}/{ENCRYPTION_INFO}", chain.full_subdir);
                let bytes = collection.get(&path).await?;
                let info = EncryptionInfo::decode(&path, &bytes)
                    .map_err(|e| SqlError::Exec(e.to_string()))?;
                let pass = passphrase.as_deref().unwrap_or_default();
                Some(
                    info.derive_key(&path, pass.as_bytes())
                        .map_err(|e| SqlError::Exec(e.to_string()))?,
                )
            }
        };
        let mut by_locality = Vec::new();
        for uri in &src.locality_uris {
            let parsed = StorageUri::parse(uri)?;
            if let Some((k, v)) = parsed.locality() {
                by_locality.push((format!("{k}={v}"), self.host.storage.open(&parsed)?));
            }
        }
        let storages = Access {
            storages: [collection, incrementals],
            key,
            by_locality,
        };
        let need_files =
            flag("check_files", &o.check_files)? || s.details == Some(ShowBackupDetails::Files);
        let files =
            if need_files || s.details.is_none() || s.details == Some(ShowBackupDetails::Schemas) {
                self.files(&chain, &storages).await?
            } else {
                Vec::new()
            };
        if flag("check_files", &o.check_files)? {
            check_files(&chain, &storages, &files).await?;
        }
        match s.details {
            Some(ShowBackupDetails::Files) => {
                let mut rs = ResultSet::with_columns(SHOW_FILES_COLUMNS);
                for (i, f) in &files {
                    rs.rows.push(vec![
                        Datum::String(format!("{}/{}", chain.layers[*i].dir, f.path)),
                        backup_type(*i),
                        Datum::String(PrettyKey(&f.span.start).to_string()),
                        Datum::String(PrettyKey(&f.span.end).to_string()),
                        Datum::Int(f.stored_bytes as i64),
                        Datum::Int(f.row_count as i64),
                    ]);
                }
                Ok(rs)
            }
            Some(ShowBackupDetails::Ranges) => {
                let mut rs = ResultSet::with_columns(SHOW_RANGES_COLUMNS);
                for l in &chain.layers {
                    for sp in &l.manifest.spans {
                        rs.rows.push(vec![
                            Datum::String(PrettyKey(&sp.start).to_string()),
                            Datum::String(PrettyKey(&sp.end).to_string()),
                            Datum::Bytes(sp.start.clone()),
                            Datum::Bytes(sp.end.clone()),
                        ]);
                    }
                }
                Ok(rs)
            }
            Some(ShowBackupDetails::Schemas) | None => {
                self.objects(&chain, &storages, &files).await
            }
        }
    }

    /// One row per object per layer.
    async fn objects(
        &self,
        chain: &BackupChain,
        storages: &Access,
        files: &[(usize, BackupFile)],
    ) -> Result<ResultSet, SqlError> {
        let mut rs = ResultSet::with_columns(SHOW_BACKUP_COLUMNS);
        for (i, l) in chain.layers.iter().enumerate() {
            let m = &l.manifest;
            let descs = chain.descriptors(Some(m.end_time)).await?;
            let names = Names::new(&descs);
            let layer_files: Vec<&BackupFile> = files
                .iter()
                .filter(|(fi, _)| *fi == i)
                .map(|(_, f)| f)
                .collect();
            let stats = table_stats(l, storages, &descs, &layer_files).await?;
            for d in &descs {
                let (db, schema) = names.parents(d);
                let (size, rows) = match stats.get(&d.id) {
                    Some((size, rows)) => (Some(*size), Some(*rows)),
                    None if d.spans.is_empty() => (None, None),
                    None => (Some(0), Some(0)),
                };
                let opt = |v: Option<i64>| v.map_or(Datum::Null, Datum::Int);
                rs.rows.push(vec![
                    if db.is_empty() {
                        Datum::Null
                    } else {
                        Datum::String(db)
                    },
                    if schema.is_empty() {
                        Datum::Null
                    } else {
                        Datum::String(schema)
                    },
                    Datum::String(d.name.clone()),
                    Datum::String(d.kind.as_str().into()),
                    backup_type(i),
                    ts(Some(m.start_time)),
                    ts(Some(m.end_time)),
                    opt(size),
                    opt(rows),
                    Datum::Bool(m.full_cluster),
                ]);
            }
        }
        Ok(rs)
    }

    pub(super) fn show_jobs(
        &self,
        ctx: &dyn SqlContext,
        only: Option<u64>,
    ) -> Result<ResultSet, SqlError> {
        let mut rs = ResultSet::with_columns(SHOW_JOBS_COLUMNS);
        let records: Vec<JobRecord> =
            match only {
                Some(id) => vec![self.host.jobs.get(id)?.ok_or_else(|| {
                    SqlError::NotFound(format!("job with ID {id} does not exist"))
                })?],
                None => self.host.jobs.list()?,
            };
        for r in records {
            if !ctx.is_admin() && r.user != ctx.user() {
                if only.is_some() {
                    return Err(SqlError::NotFound(format!(
                        "job with ID {} does not exist",
                        r.id
                    )));
                }
                continue;
            }
            rs.rows.push(vec![
                Datum::Int(r.id as i64),
                Datum::String(r.kind.as_str().into()),
                Datum::String(r.description.clone()),
                Datum::String(r.user.clone()),
                Datum::String(r.status.as_str().into()),
                ts(Some(r.created)),
                ts(r.started),
                ts(r.finished),
                Datum::Float(r.fraction_completed),
                r.error.clone().map_or(Datum::Null, Datum::String),
                r.created_by_schedule
                    .map_or(Datum::Null, |s| Datum::Int(s as i64)),
            ]);
        }
        Ok(rs)
    }

    pub(super) async fn control_job(
        &self,
        ctx: &dyn SqlContext,
        command: JobCommand,
        id: u64,
    ) -> Result<ResultSet, SqlError> {
        let record = self
            .host
            .jobs
            .get(id)?
            .ok_or_else(|| SqlError::NotFound(format!("job with ID {id} does not exist")))?;
        if !ctx.is_admin() && record.user != ctx.user() {
            return Err(SqlError::Privilege(format!(
                "user {} does not have privileges for job {id}",
                ctx.user()
            )));
        }
        if command == JobCommand::Resume && record.status != JobStatus::Paused {
            return Err(SqlError::Exec(format!(
                "job {id} is {}: only a paused job can be resumed",
                record.status.as_str()
            )));
        }
        match (record.kind, command) {
            (JobKind::Backup, JobCommand::Pause) => self.backups.pause(id)?,
            (JobKind::Backup, JobCommand::Cancel) => self.backups.cancel(id)?,
            (JobKind::Restore, JobCommand::Pause) => self.restores.pause(id)?,
            (JobKind::Restore, JobCommand::Cancel) => self.restores.cancel(id).await?,
            (kind, JobCommand::Resume) => {
                // The job runs on in the background, as in CockroachDB.
                match kind {
                    JobKind::Backup => {
                        let jobs = self.backups.clone();
                        tokio::spawn(async move { jobs.resume(id).await });
                    }
                    JobKind::Restore => {
                        let jobs = self.restores.clone();
                        tokio::spawn(async move { jobs.resume(id).await });
                    }
                }
                // Wait (briefly) for it to be recorded as running.
                for _ in 0..200 {
                    let s = self.host.jobs.get(id)?.map(|r| r.status);
                    if s != Some(JobStatus::Paused) {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        }
        Ok(ResultSet::default())
    }
}

/// Bytes and rows of each table in one layer: from the manifest's file
/// records when a file holds one table's keys, else by reading the file once
/// and charging each key to the table whose span holds it.
async fn table_stats(
    layer: &ChainLayer,
    storages: &Access,
    descs: &[Descriptor],
    files: &[&BackupFile],
) -> Result<BTreeMap<DescriptorId, (i64, i64)>, SqlError> {
    let spans = SpanIndex::new(descs);
    let mut stats: BTreeMap<DescriptorId, (i64, i64)> = BTreeMap::new();
    for f in files {
        let overlapping = spans.overlapping(&f.span);
        if let [(sp, id)] = overlapping
            && sp.contains(&f.span)
        {
            let e = stats.entry(*id).or_default();
            e.0 += f.raw_bytes as i64;
            e.1 += f.row_count as i64;
            continue;
        }
        if overlapping.is_empty() {
            continue;
        }
        let Some(storage) = file_storage(storages, layer, f) else {
            continue;
        };
        let path = format!("{}/{}", layer.dir, f.path);
        let bytes = storage.get(&path).await?;
        let fetch = |r: std::ops::Range<u64>| -> std::io::Result<Vec<u8>> {
            bytes
                .get(r.start as usize..r.end as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| std::io::Error::other("range past the end"))
        };
        let mut reader =
            DataFileReader::open(&path, bytes.len() as u64, fetch, storages.key.as_ref())
                .map_err(|e| SqlError::Exec(e.to_string()))?;
        // Entries come in key order, so a key's versions are adjacent.
        let mut last: Option<Vec<u8>> = None;
        reader
            .scan(&f.span)
            .for_each_ref(|x| {
                let Some(id) = spans.holder(overlapping, x.key) else {
                    return;
                };
                let e = stats.entry(id).or_default();
                e.0 +=
                    (x.key.len() + x.value.map_or(0, <[u8]>::len) + Timestamp::ENCODED_LEN) as i64;
                if last.as_deref() != Some(x.key) {
                    e.1 += 1;
                    last = Some(x.key.to_vec());
                }
            })
            .map_err(|e| SqlError::Exec(e.to_string()))?;
    }
    Ok(stats)
}

/// The spans of a layer's descriptors, sorted by start key, for finding
/// which descriptor holds a key in logarithmic time. Descriptor spans do
/// not overlap one another.
struct SpanIndex {
    spans: Vec<(Span, DescriptorId)>,
}

impl SpanIndex {
    fn new(descs: &[Descriptor]) -> SpanIndex {
        let mut spans: Vec<(Span, DescriptorId)> = descs
            .iter()
            .flat_map(|d| d.spans.iter().map(move |sp| (sp.clone(), d.id)))
            .collect();
        spans.sort_by(|a, b| a.0.start.cmp(&b.0.start));
        SpanIndex { spans }
    }

    /// The spans that intersect `span`, in key order.
    fn overlapping(&self, span: &Span) -> &[(Span, DescriptorId)] {
        let from = self.spans.partition_point(|(s, _)| s.end <= span.start);
        let to = self.spans.partition_point(|(s, _)| s.start < span.end);
        match self.spans.get(from..to.max(from)) {
            Some(found) => found,
            None => &[],
        }
    }

    /// The descriptor among `candidates` (a slice of `overlapping`) whose
    /// span holds `key`.
    fn holder(&self, candidates: &[(Span, DescriptorId)], key: &[u8]) -> Option<DescriptorId> {
        let i = candidates.partition_point(|(s, _)| s.start.as_slice() <= key);
        let (sp, id) = candidates.get(i.checked_sub(1)?)?;
        (key < sp.end.as_slice()).then_some(*id)
    }
}

/// Reads and verifies every data file of the chain; errors listing the
/// missing and corrupt ones by path.
async fn check_files(
    chain: &BackupChain,
    storages: &Access,
    files: &[(usize, BackupFile)],
) -> Result<(), SqlError> {
    let mut problems = Vec::new();
    for (i, f) in files {
        let l = &chain.layers[*i];
        let path = format!("{}/{}", l.dir, f.path);
        let Some(storage) = file_storage(storages, l, f) else {
            problems.push(format!(
                "{path} (in the storage of locality {}, whose URI was not given)",
                f.locality
            ));
            continue;
        };
        match storage.get(&path).await {
            Err(e) if e.is_not_found() => problems.push(format!("{path} (missing)")),
            Err(e) => problems.push(format!("{path} (unreadable: {e})")),
            Ok(bytes) => {
                if let Err(e) = verify_data_file(&path, &bytes, storages.key.as_ref()) {
                    problems.push(format!("{path} (corrupt: {e})"));
                }
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(SqlError::BackupFiles(format!(
        "backup {} has {} missing or corrupt file(s): {}",
        chain.full_subdir,
        problems.len(),
        problems.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_format::DescriptorKind;

    fn table(id: DescriptorId, start: &[u8], end: &[u8]) -> Descriptor {
        Descriptor {
            id,
            kind: DescriptorKind::Table,
            name: format!("t{id}"),
            parent_id: 1,
            parent_schema_id: 0,
            spans: vec![Span::new(start, end)],
            dependencies: Vec::new(),
            exclude_data_from_backup: false,
            payload: Vec::new(),
        }
    }

    #[test]
    fn span_index_finds_the_holder_of_each_key() {
        // Out of order on purpose, with a gap between c and e.
        let descs = vec![
            table(3, b"e", b"g"),
            table(1, b"a", b"b"),
            table(2, b"b", b"c"),
        ];
        let index = SpanIndex::new(&descs);
        let all = index.overlapping(&Span::new(&b""[..], &b"z"[..]));
        assert_eq!(all.iter().map(|x| x.1).collect::<Vec<_>>(), [1, 2, 3]);
        let mid = index.overlapping(&Span::new(&b"b0"[..], &b"e"[..]));
        assert_eq!(mid.iter().map(|x| x.1).collect::<Vec<_>>(), [2]);
        assert!(
            index
                .overlapping(&Span::new(&b"c"[..], &b"e"[..]))
                .is_empty()
        );
        assert!(
            index
                .overlapping(&Span::new(&b"x"[..], &b"z"[..]))
                .is_empty()
        );
        for (key, want) in [
            (&b"a"[..], Some(1)),
            (b"az", Some(1)),
            (b"b", Some(2)),
            (b"c", None),
            (b"d", None),
            (b"f", Some(3)),
            (b"g", None),
            (b"", None),
        ] {
            assert_eq!(index.holder(all, key), want, "{key:?}");
        }
    }
}
