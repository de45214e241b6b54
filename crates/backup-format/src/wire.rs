//! Low-level byte encodings shared by every file format.
//!
//! - LEB128 varints (`u64`, 7 bits a byte, low bits first, at most 10 bytes);
//! - fixed-width little-endian integers;
//! - the protocol-buffers wire format (fields tagged `number << 3 | wire type`),
//!   used for the manifest, its side files and `ENCRYPTION-INFO` so that a
//!   reader skips fields it does not know (forward compatibility) and any
//!   protobuf library can read them. Only wire types 0 (varint),
//!   1 (fixed64), 2 (length-delimited) and 5 (fixed32) occur; groups are refused.
//!
//! [`ByteReader`] is a bounds-checked cursor: every read that would run past
//! the end is an error naming the file and the part being decoded, never a panic.

use crate::FormatError;

/// Appends `v` as a LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a varint length and then the bytes.
pub(crate) fn put_len_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A bounds-checked cursor over bytes of one part of one file.
pub(crate) struct ByteReader<'a> {
    file: &'a str,
    part: &'a str,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    /// A cursor over `buf`, the bytes of `part` of `file` (both for errors).
    pub(crate) fn new(file: &'a str, part: &'a str, buf: &'a [u8]) -> ByteReader<'a> {
        ByteReader {
            file,
            part,
            buf,
            pos: 0,
        }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Whether every byte was consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The error for structurally invalid bytes here.
    pub(crate) fn error(&self, what: &str) -> FormatError {
        FormatError::corrupt(
            self.file,
            format!("{} at byte {} of {}", what, self.pos, self.part),
        )
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.error("a field runs past the end"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian u16.
    pub(crate) fn u16_le(&mut self) -> Result<u16, FormatError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub(crate) fn u32_le(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub(crate) fn u64_le(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A LEB128 varint (at most 10 bytes, no overflow).
    pub(crate) fn varint(&mut self) -> Result<u64, FormatError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return Err(self.error("a varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.error("a varint is longer than 10 bytes"))
    }

    /// A varint that must fit a `usize` no larger than what is left.
    pub(crate) fn len(&mut self) -> Result<usize, FormatError> {
        let v = self.varint()?;
        usize::try_from(v)
            .ok()
            .filter(|&n| n <= self.buf.len() - self.pos)
            .ok_or_else(|| self.error("a length runs past the end"))
    }

    /// A varint length followed by that many bytes.
    pub(crate) fn len_bytes(&mut self) -> Result<&'a [u8], FormatError> {
        let n = self.len()?;
        self.bytes(n)
    }
}

/// Protobuf wire types used here.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Builds one protobuf-wire message.
#[derive(Default)]
pub(crate) struct MessageWriter {
    buf: Vec<u8>,
}

impl MessageWriter {
    /// An empty message.
    pub(crate) fn new() -> MessageWriter {
        MessageWriter::default()
    }

    fn key(&mut self, field: u32, wire: u8) {
        put_varint(&mut self.buf, (u64::from(field) << 3) | u64::from(wire));
    }

    /// A varint field (omitted when zero, as proto3 does).
    pub(crate) fn uint(&mut self, field: u32, v: u64) -> &mut Self {
        if v != 0 {
            self.key(field, VARINT);
            put_varint(&mut self.buf, v);
        }
        self
    }

    /// A bool field (omitted when false).
    pub(crate) fn bool(&mut self, field: u32, v: bool) -> &mut Self {
        self.uint(field, u64::from(v))
    }

    /// A fixed32 field (always written).
    pub(crate) fn fixed32(&mut self, field: u32, v: u32) -> &mut Self {
        self.key(field, FIXED32);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A length-delimited field (always written, also when empty).
    pub(crate) fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, LEN);
        put_len_bytes(&mut self.buf, v);
        self
    }

    /// A nested message field.
    pub(crate) fn message(&mut self, field: u32, m: &MessageWriter) -> &mut Self {
        self.bytes(field, &m.buf)
    }

    /// The encoded message.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// The encoded message so far.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// One decoded field value.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (no field of ours uses it yet; read and skipped).
    Fixed64,
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// Iterates the fields of one protobuf-wire message.
pub(crate) struct MessageReader<'a> {
    r: ByteReader<'a>,
}

impl<'a> MessageReader<'a> {
    /// Reads `buf`, the message of `part` of `file`.
    pub(crate) fn new(file: &'a str, part: &'a str, buf: &'a [u8]) -> MessageReader<'a> {
        MessageReader {
            r: ByteReader::new(file, part, buf),
        }
    }

    /// The next `(field number, value)`, or `None` at the end.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, FormatError> {
        if self.r.is_empty() {
            return Ok(None);
        }
        let key = self.r.varint()?;
        let field = u32::try_from(key >> 3)
            .ok()
            .filter(|&f| f > 0)
            .ok_or_else(|| self.r.error("an invalid field number"))?;
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(self.r.varint()?),
            FIXED64 => {
                self.r.u64_le()?;
                Value::Fixed64
            }
            LEN => Value::Bytes(self.r.len_bytes()?),
            FIXED32 => Value::Fixed32(self.r.u32_le()?),
            _ => return Err(self.r.error("an unsupported wire type")),
        };
        Ok(Some((field, value)))
    }

    /// The error for a field of the wrong wire type or value.
    pub(crate) fn error(&self, what: &str) -> FormatError {
        self.r.error(what)
    }
}

impl<'a> Value<'a> {
    /// The value of a varint field.
    pub(crate) fn uint(self, m: &MessageReader<'_>, name: &str) -> Result<u64, FormatError> {
        match self {
            Value::Varint(v) => Ok(v),
            _ => Err(m.error(&format!("field {name} is not a varint"))),
        }
    }

    /// The value of a varint field that must fit `u32`.
    pub(crate) fn u32(self, m: &MessageReader<'_>, name: &str) -> Result<u32, FormatError> {
        u32::try_from(self.uint(m, name)?)
            .map_err(|_| m.error(&format!("field {name} is out of range")))
    }

    /// The value of a bool field.
    pub(crate) fn bool(self, m: &MessageReader<'_>, name: &str) -> Result<bool, FormatError> {
        match self.uint(m, name)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(m.error(&format!("field {name} is not a bool"))),
        }
    }

    /// The value of a fixed32 field.
    pub(crate) fn fixed32(self, m: &MessageReader<'_>, name: &str) -> Result<u32, FormatError> {
        match self {
            Value::Fixed32(v) => Ok(v),
            _ => Err(m.error(&format!("field {name} is not a fixed32"))),
        }
    }

    /// The value of a length-delimited field.
    pub(crate) fn bytes(self, m: &MessageReader<'_>, name: &str) -> Result<&'a [u8], FormatError> {
        match self {
            Value::Bytes(v) => Ok(v),
            _ => Err(m.error(&format!("field {name} is not length-delimited"))),
        }
    }

    /// The value of a UTF-8 string field.
    pub(crate) fn string(self, m: &MessageReader<'_>, name: &str) -> Result<String, FormatError> {
        let b = self.bytes(m, name)?;
        String::from_utf8(b.to_vec()).map_err(|_| m.error(&format!("field {name} is not UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varint_round_trip(v: u64) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = ByteReader::new("f", "p", &out);
            prop_assert_eq!(r.varint().unwrap(), v);
            prop_assert!(r.is_empty());
        }
    }

    #[test]
    fn unknown_fields_are_skipped_and_bad_bytes_refused() {
        let mut m = MessageWriter::new();
        m.uint(1, 7).bytes(99, b"future").fixed32(98, 5).uint(2, 9);
        let bytes = m.finish();
        let mut r = MessageReader::new("f", "p", &bytes);
        let mut seen = Vec::new();
        while let Some((f, v)) = r.next_field().unwrap() {
            if f == 1 || f == 2 {
                seen.push(v.uint(&r, "x").unwrap());
            }
        }
        assert_eq!(seen, vec![7, 9]);
        let mut r = MessageReader::new("f", "p", &[0x0b]); // wire type 3 (group)
        assert!(r.next_field().is_err());
        let mut r = ByteReader::new("f", "p", &[0xff; 11]);
        assert!(r.varint().is_err());
    }
}
