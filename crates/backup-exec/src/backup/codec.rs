//! The backup spec and layer records in the encoding of [`crate::codec`].

use backup_format::Descriptor;

use super::spec::{BackupSpec, Destination, LayerChoice};
pub(crate) use crate::codec::{Dec, Enc};
use crate::error::ExecError;

const SPEC_MAGIC: &[u8] = b"BKPSPEC1";

/// The job payload: the whole spec, so a job resumes after a process restart.
///
/// It holds the destination URIs and the passphrase (like CockroachDB's job
/// details): the payload is never displayed; the description is redacted.
pub(crate) fn encode_spec(spec: &BackupSpec) -> Vec<u8> {
    let mut e = Enc(SPEC_MAGIC.to_vec());
    e.str(&spec.description).str(&spec.user);
    e.u64(spec.descriptors.len() as u64);
    for d in &spec.descriptors {
        e.record::<Descriptor>(d);
    }
    e.spans(&spec.spans)
        .spans(&spec.index_spans)
        .bool(spec.full_cluster)
        .ts(spec.end_time);
    let d = &spec.destination;
    e.str(&d.collection).u64(d.locality_uris.len() as u64);
    for u in &d.locality_uris {
        e.str(u);
    }
    e.bool(d.incremental_location.is_some())
        .str(d.incremental_location.as_deref().unwrap_or(""));
    match &d.layer {
        LayerChoice::NewFull => e.u64(0),
        LayerChoice::Latest => e.u64(1),
        LayerChoice::Subdir(s) => e.u64(2).str(s),
    };
    e.bool(spec.revision_history)
        .bool(spec.encryption_passphrase.is_some())
        .str(spec.encryption_passphrase.as_deref().unwrap_or(""))
        .bool(spec.detached);
    e.0
}

/// Inverse of [`encode_spec`].
pub(crate) fn decode_spec(bytes: &[u8]) -> Result<BackupSpec, ExecError> {
    let mut d = Dec::new("backup job payload", bytes);
    if d.take(SPEC_MAGIC.len())? != SPEC_MAGIC {
        return Err(d.corrupt("not a backup job payload"));
    }
    let description = d.string()?;
    let user = d.string()?;
    let n = d.len()?;
    let descriptors = (0..n)
        .map(|_| d.record::<Descriptor>())
        .collect::<Result<_, _>>()?;
    let spans = d.spans()?;
    let index_spans = d.spans()?;
    let full_cluster = d.bool()?;
    let end_time = d.ts()?;
    let collection = d.string()?;
    let n = d.len()?;
    let locality_uris = (0..n).map(|_| d.string()).collect::<Result<_, _>>()?;
    let has_inc = d.bool()?;
    let inc = d.string()?;
    let layer = match d.u64()? {
        0 => LayerChoice::NewFull,
        1 => LayerChoice::Latest,
        2 => LayerChoice::Subdir(d.string()?),
        _ => return Err(d.corrupt("unknown layer choice")),
    };
    let revision_history = d.bool()?;
    let has_pass = d.bool()?;
    let pass = d.string()?;
    let detached = d.bool()?;
    d.finish()?;
    Ok(BackupSpec {
        description,
        user,
        descriptors,
        spans,
        index_spans,
        full_cluster,
        end_time,
        destination: Destination {
            collection,
            locality_uris,
            incremental_location: has_inc.then_some(inc),
            layer,
        },
        revision_history,
        encryption_passphrase: has_pass.then_some(pass),
        detached,
    })
}
