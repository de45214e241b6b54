//! The checksummed envelope around small whole files.
//!
//! ```text
//! magic [8] | major u16 LE | minor u16 LE | body length u32 LE | body | crc32c u32 LE
//! ```
//!
//! The crc32c (Castagnoli) covers every byte before it. A reader checks, in
//! order: length, magic, checksum, then the major version — so a damaged file
//! reports damage, and only an intact file from a newer release reports
//! "unsupported version". The envelope layout itself never changes between
//! versions; only the body's fields do.

use crate::FormatError;
use crate::wire::ByteReader;

/// Bytes the envelope adds around its body.
pub(crate) const ENVELOPE_OVERHEAD: usize = 8 + 2 + 2 + 4 + 4;

/// Wraps `body` in an envelope.
pub(crate) fn seal_envelope(
    magic: &[u8; 8],
    major: u16,
    minor: u16,
    body: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let len = u32::try_from(body.len())
        .map_err(|_| FormatError::InvalidArgument("an enveloped file body exceeds 4 GiB".into()))?;
    let mut out = Vec::with_capacity(body.len() + ENVELOPE_OVERHEAD);
    out.extend_from_slice(magic);
    out.extend_from_slice(&major.to_le_bytes());
    out.extend_from_slice(&minor.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Checks the envelope of `file` and returns `(minor version, body)`.
pub(crate) fn open_envelope<'a>(
    file: &str,
    magic: &[u8; 8],
    kind: &'static str,
    major: u16,
    bytes: &'a [u8],
) -> Result<(u16, &'a [u8]), FormatError> {
    let head = bytes.len().min(8);
    if bytes[..head] != magic[..head] {
        return Err(FormatError::BadMagic {
            file: file.to_string(),
            expected: kind,
        });
    }
    if bytes.len() < ENVELOPE_OVERHEAD {
        return Err(FormatError::truncated(
            file,
            format!("{kind} is shorter than its envelope"),
        ));
    }
    let mut r = ByteReader::new(file, "the envelope", &bytes[8..16]);
    let found_major = r.u16_le()?;
    let minor = r.u16_le()?;
    let len = r.u32_le()? as usize;
    let expected_len = len.checked_add(ENVELOPE_OVERHEAD);
    if expected_len.is_none_or(|n| n > bytes.len()) {
        return Err(FormatError::truncated(
            file,
            format!(
                "the body should hold {len} bytes but the file has {}",
                bytes.len()
            ),
        ));
    }
    if expected_len != Some(bytes.len()) {
        return Err(FormatError::corrupt(
            file,
            format!(
                "{} bytes follow the end of the {kind}",
                bytes.len() - len - ENVELOPE_OVERHEAD
            ),
        ));
    }
    let (covered, crc) = bytes.split_at(bytes.len() - 4);
    let mut c = [0u8; 4];
    c.copy_from_slice(crc);
    if crc32c::crc32c(covered) != u32::from_le_bytes(c) {
        return Err(FormatError::checksum(file, kind));
    }
    if found_major != major {
        return Err(FormatError::UnsupportedVersion {
            file: file.to_string(),
            major: found_major,
            minor,
            supported: major,
        });
    }
    Ok((minor, &covered[16..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flip_and_cut_is_detected() {
        let sealed = seal_envelope(b"TESTMAGC", 1, 0, b"hello body").unwrap();
        assert_eq!(
            open_envelope("f", b"TESTMAGC", "test file", 1, &sealed).unwrap(),
            (0, &b"hello body"[..])
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let err = open_envelope("f", b"TESTMAGC", "test file", 1, &bad).unwrap_err();
            assert_eq!(err.file(), Some("f"));
            assert!(open_envelope("f", b"TESTMAGC", "test file", 1, &sealed[..i]).is_err());
        }
        let newer = seal_envelope(b"TESTMAGC", 2, 3, b"x").unwrap();
        let err = open_envelope("f", b"TESTMAGC", "test file", 1, &newer).unwrap_err();
        assert!(err.to_string().contains("version 2.3"), "{err}");
    }
}
