//! A small length-prefixed binary encoding for the records the jobs keep
//! in their job records: backup and restore specs and checkpoints.
//!
//! Little-endian `u64`s; byte strings and lists are prefixed with their
//! length. Records are private to this crate and versioned by a leading
//! magic; every read is bounds-checked, so a damaged record is an error,
//! never a panic.

use backup_format::manifest::SideRecord;
use backup_format::{Span, Timestamp};

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
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ExecError> {
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
