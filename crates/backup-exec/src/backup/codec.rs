//! A small length-prefixed binary encoding for job payloads and checkpoints.
//!
//! Records are private to this crate and versioned by a leading magic; every
//! read is bounds-checked, so a damaged record is an error, never a panic.

use backup_format::manifest::SideRecord;
use backup_format::{Descriptor, Span, Timestamp};

use super::spec::{BackupSpec, Destination, LayerChoice};
use crate::error::ExecError;

/// Appends primitive values.
#[derive(Default)]
pub(crate) struct Enc(pub(crate) Vec<u8>);

impl Enc {
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    pub(crate) fn bool(&mut self, b: bool) -> &mut Self {
        self.u64(u64::from(b))
    }
    pub(crate) fn ts(&mut self, t: Timestamp) -> &mut Self {
        self.0.extend_from_slice(&t.to_bytes());
        self
    }
    pub(crate) fn span(&mut self, s: &Span) -> &mut Self {
        self.bytes(&s.start).bytes(&s.end)
    }
    pub(crate) fn spans(&mut self, spans: &[Span]) -> &mut Self {
        self.u64(spans.len() as u64);
        for s in spans {
            self.span(s);
        }
        self
    }
    pub(crate) fn record<T: SideRecord>(&mut self, r: &T) -> &mut Self {
        let mut buf = Vec::new();
        r.encode(&mut buf);
        self.bytes(&buf)
    }
}

/// Reads what [`Enc`] wrote.
pub(crate) struct Dec<'a> {
    what: &'static str,
    rest: &'a [u8],
}

impl<'a> Dec<'a> {
    pub(crate) fn new(what: &'static str, bytes: &'a [u8]) -> Dec<'a> {
        Dec { what, rest: bytes }
    }
    pub(crate) fn corrupt(&self, detail: &str) -> ExecError {
        ExecError::Corrupt {
            what: self.what.to_string(),
            detail: detail.to_string(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ExecError> {
        if self.rest.len() < n {
            return Err(self.corrupt("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    pub(crate) fn u64(&mut self) -> Result<u64, ExecError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub(crate) fn len(&mut self) -> Result<usize, ExecError> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.rest.len().max(1 << 20))
            .ok_or_else(|| self.corrupt("a length past the end"))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], ExecError> {
        let n = self.len()?;
        self.take(n)
    }
    pub(crate) fn string(&mut self) -> Result<String, ExecError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.corrupt("a string that is not UTF-8"))
    }
    pub(crate) fn bool(&mut self) -> Result<bool, ExecError> {
        Ok(self.u64()? != 0)
    }
    pub(crate) fn ts(&mut self) -> Result<Timestamp, ExecError> {
        let b = self.take(Timestamp::ENCODED_LEN)?;
        let mut a = [0u8; Timestamp::ENCODED_LEN];
        a.copy_from_slice(b);
        Ok(Timestamp::from_bytes(a))
    }
    pub(crate) fn span(&mut self) -> Result<Span, ExecError> {
        let start = self.bytes()?.to_vec();
        let end = self.bytes()?.to_vec();
        Ok(Span::new(start, end))
    }
    pub(crate) fn spans(&mut self) -> Result<Vec<Span>, ExecError> {
        let n = self.len()?;
        (0..n).map(|_| self.span()).collect()
    }
    pub(crate) fn record<T: SideRecord>(&mut self) -> Result<T, ExecError> {
        let b = self.bytes()?;
        Ok(T::decode(self.what, b)?)
    }
    pub(crate) fn finish(self) -> Result<(), ExecError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt("trailing bytes"))
        }
    }
}

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
