//! The persisted parts of a restore job: its spec (the job payload, so a
//! paused job resumes, also in another process) and its checkpoint (the job
//! progress: the ids the restore writes under, and the spans already done).
//!
//! Both are records of [`crate::codec`] behind a magic, so a damaged record
//! is an error, never a panic. Like a
//! backup's, the payload holds the URIs and the passphrase and is never
//! displayed (the description is redacted).

use backup_format::{DescriptorId, Span, SpanSet, Timestamp};

use super::spec::{
    BackupChoice, DescriptorRewrite, RestoreOptions, RestoreSource, RestoreSpec, RestoreTargets,
};
use crate::codec::{Dec, Enc};
use crate::error::ExecError;
use crate::host::IdRewrites;

const SPEC_MAGIC: &[u8] = b"RSTSPEC1";
const CHECKPOINT_MAGIC: &[u8] = b"RSTCKPT1";

/// What a restore has done so far, persisted after every finished unit.
#[derive(Clone, PartialEq, Debug, Default)]
pub(crate) struct RestoreCheckpoint {
    /// Backed-up id -> restored id: a resumed run writes under the same ids.
    pub(crate) ids: IdRewrites,
    /// Restored spans (new keys) that may hold ingested data: what a cancel
    /// or a failure removes.
    pub(crate) new_spans: Vec<Span>,
    /// Backed-up spans whose units finished: a resumed run skips them.
    pub(crate) done: SpanSet,
}

/// The job payload of `spec`.
pub(crate) fn encode_spec(spec: &RestoreSpec) -> Vec<u8> {
    let mut e = Enc(SPEC_MAGIC.to_vec());
    e.str(&spec.description).str(&spec.user);
    let s = &spec.source;
    e.str(&s.collection).u64(s.locality_uris.len() as u64);
    for u in &s.locality_uris {
        e.str(u);
    }
    opt_str(&mut e, s.incremental_location.as_deref());
    match &s.backup {
        BackupChoice::Latest => e.u64(0),
        BackupChoice::Subdir(d) => e.u64(1).str(d),
    };
    e.bool(spec.as_of.is_some())
        .ts(spec.as_of.unwrap_or(Timestamp::ZERO));
    let (kind, ids): (u64, &[DescriptorId]) = match &spec.targets {
        RestoreTargets::Tables(ids) => (0, ids),
        RestoreTargets::Databases(ids) => (1, ids),
        RestoreTargets::Cluster => (2, &[]),
    };
    e.u64(kind).u64(ids.len() as u64);
    for id in ids {
        e.u64(*id);
    }
    e.u64(spec.rewrites.len() as u64);
    for (old, r) in &spec.rewrites {
        e.u64(*old).u64(r.new_id);
        opt_u64(&mut e, r.parent_id);
        opt_u64(&mut e, r.parent_schema_id);
        opt_str(&mut e, r.name.as_deref());
    }
    e.spans(&spec.index_spans);
    let o = &spec.options;
    e.bool(o.skip_missing_foreign_keys)
        .bool(o.skip_missing_sequences)
        .bool(o.skip_missing_views);
    opt_str(&mut e, o.encryption_passphrase.as_deref());
    e.bool(o.detached);
    e.0
}

/// Reads a job payload written by [`encode_spec`].
pub(crate) fn decode_spec(bytes: &[u8]) -> Result<RestoreSpec, ExecError> {
    let mut d = Dec::new("restore job payload", bytes);
    magic(&mut d, SPEC_MAGIC)?;
    let description = d.string()?;
    let user = d.string()?;
    let collection = d.string()?;
    let n = d.len()?;
    let locality_uris = (0..n).map(|_| d.string()).collect::<Result<_, _>>()?;
    let incremental_location = read_opt_str(&mut d)?;
    let backup = match d.u64()? {
        0 => BackupChoice::Latest,
        1 => BackupChoice::Subdir(d.string()?),
        _ => return Err(d.corrupt("an unknown backup choice")),
    };
    let has_as_of = d.bool()?;
    let as_of = d.ts()?;
    let kind = d.u64()?;
    let n = d.len()?;
    let ids: Vec<DescriptorId> = (0..n).map(|_| d.u64()).collect::<Result<_, _>>()?;
    let targets = match kind {
        0 => RestoreTargets::Tables(ids),
        1 => RestoreTargets::Databases(ids),
        2 => RestoreTargets::Cluster,
        _ => return Err(d.corrupt("an unknown restore target")),
    };
    let n = d.len()?;
    let mut rewrites = std::collections::BTreeMap::new();
    for _ in 0..n {
        let old = d.u64()?;
        let r = DescriptorRewrite {
            new_id: d.u64()?,
            parent_id: read_opt_u64(&mut d)?,
            parent_schema_id: read_opt_u64(&mut d)?,
            name: read_opt_str(&mut d)?,
        };
        rewrites.insert(old, r);
    }
    let index_spans = d.spans()?;
    let options = RestoreOptions {
        skip_missing_foreign_keys: d.bool()?,
        skip_missing_sequences: d.bool()?,
        skip_missing_views: d.bool()?,
        encryption_passphrase: read_opt_str(&mut d)?,
        detached: d.bool()?,
    };
    d.finish()?;
    Ok(RestoreSpec {
        description,
        user,
        source: RestoreSource {
            collection,
            locality_uris,
            incremental_location,
            backup,
        },
        as_of: has_as_of.then_some(as_of),
        targets,
        rewrites,
        index_spans,
        options,
    })
}

/// The job progress of `c`.
pub(crate) fn encode_checkpoint(c: &RestoreCheckpoint) -> Vec<u8> {
    let mut e = Enc(CHECKPOINT_MAGIC.to_vec());
    e.u64(c.ids.len() as u64);
    for (old, new) in &c.ids {
        e.u64(*old).u64(*new);
    }
    e.spans(&c.new_spans).spans(c.done.spans());
    e.0
}

/// Reads a job progress written by [`encode_checkpoint`]; empty progress
/// (a job that never checkpointed) is the empty checkpoint.
pub(crate) fn decode_checkpoint(bytes: &[u8]) -> Result<RestoreCheckpoint, ExecError> {
    if bytes.is_empty() {
        return Ok(RestoreCheckpoint::default());
    }
    let mut d = Dec::new("restore job checkpoint", bytes);
    magic(&mut d, CHECKPOINT_MAGIC)?;
    let n = d.len()?;
    let mut ids = IdRewrites::new();
    for _ in 0..n {
        let old = d.u64()?;
        ids.insert(old, d.u64()?);
    }
    let new_spans = d.spans()?;
    let done = SpanSet::from_spans(d.spans()?);
    d.finish()?;
    Ok(RestoreCheckpoint {
        ids,
        new_spans,
        done,
    })
}

fn magic(d: &mut Dec<'_>, want: &[u8]) -> Result<(), ExecError> {
    if d.take(want.len())? == want {
        Ok(())
    } else {
        Err(d.corrupt("an unknown format (bad magic)"))
    }
}

fn opt_str(e: &mut Enc, s: Option<&str>) {
    e.bool(s.is_some()).str(s.unwrap_or(""));
}

fn read_opt_str(d: &mut Dec<'_>) -> Result<Option<String>, ExecError> {
    let has = d.bool()?;
    let s = d.string()?;
    Ok(has.then_some(s))
}

fn opt_u64(e: &mut Enc, v: Option<u64>) {
    e.bool(v.is_some()).u64(v.unwrap_or(0));
}

fn read_opt_u64(d: &mut Dec<'_>) -> Result<Option<u64>, ExecError> {
    let has = d.bool()?;
    let v = d.u64()?;
    Ok(has.then_some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_and_checkpoint_round_trip_and_reject_damage() {
        let mut rewrites = std::collections::BTreeMap::new();
        rewrites.insert(
            52,
            DescriptorRewrite {
                new_id: 152,
                parent_id: Some(7),
                parent_schema_id: None,
                name: Some("bank2".into()),
            },
        );
        let spec = RestoreSpec {
            description: "RESTORE DATABASE bank FROM LATEST IN 'x'".into(),
            user: "root".into(),
            source: RestoreSource {
                collection: "nodelocal://1/b".into(),
                locality_uris: vec!["nodelocal://2/b?COCKROACH_LOCALITY=region%3Dw".into()],
                incremental_location: Some("nodelocal://1/inc".into()),
                backup: BackupChoice::Subdir("2026/11/24-193000.00".into()),
            },
            as_of: Some(Timestamp::new(5, 1)),
            targets: RestoreTargets::Databases(vec![51]),
            rewrites,
            index_spans: vec![Span::new(*b"a", *b"b")],
            options: RestoreOptions {
                skip_missing_views: true,
                encryption_passphrase: Some("pw".into()),
                detached: true,
                ..RestoreOptions::default()
            },
        };
        let bytes = encode_spec(&spec);
        assert_eq!(decode_spec(&bytes).unwrap(), spec);
        for cut in 0..bytes.len() {
            assert!(decode_spec(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let c = RestoreCheckpoint {
            ids: [(51, 151), (52, 152)].into_iter().collect(),
            new_spans: vec![Span::new(*b"n", *b"o")],
            done: SpanSet::from_spans([Span::new(*b"a", *b"c")]),
        };
        let bytes = encode_checkpoint(&c);
        assert_eq!(decode_checkpoint(&bytes).unwrap(), c);
        assert_eq!(
            decode_checkpoint(&[]).unwrap(),
            RestoreCheckpoint::default()
        );
        assert!(decode_checkpoint(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_spec(&encode_checkpoint(&c)).is_err());
    }
}
