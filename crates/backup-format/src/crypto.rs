//! AES-256-GCM: the key, block sealing, and the chunked stream format.
//!
//! One 256-bit key encrypts a whole backup chain (it comes from the
//! passphrase through the KDF in [`crate::EncryptionInfo`]). Every file that
//! is encrypted draws its own random 8-byte *nonce prefix*; a sealed unit's
//! 12-byte nonce is that prefix followed by a 4-byte big-endian counter
//! (block or chunk number), so no nonce repeats within a file, and a unit
//! moved to another position or another file fails authentication.
//!
//! Every encrypted file also records the key's 8-byte *key check*
//! (`HMAC-SHA256(key, "backup-format key check v1")`, first 8 bytes), so a
//! wrong passphrase is told apart from an altered file:
//! [`FormatError::WrongPassphrase`] instead of an authentication failure.
//!
//! # Sealed stream (manifest, side files, checkpoints)
//!
//! ```text
//! header   "BKPENC" | major u8 (1) | minor u8 (0) | nonce prefix [8] | key check [8]   (24 bytes)
//! chunk i  AES-256-GCM(plaintext_i) | tag [16]
//!          nonce = prefix || i as u32 BE;  AAD = header || final flag (1 byte: 1 = last chunk)
//! ```
//!
//! Every chunk but the last holds exactly [`STREAM_CHUNK`] (64 KiB) of
//! plaintext; the last holds less (possibly nothing) and carries the final
//! flag. A reader therefore knows from a chunk's length whether it must be
//! the last: a cut at a chunk boundary leaves a full-length last chunk
//! (truncation), a cut inside a chunk fails authentication, and appended or
//! reordered chunks fail authentication or the end check.

use std::fmt;
use std::io::{self, Read, Write};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Key};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::FormatError;

/// Plaintext bytes in every chunk of a sealed stream but the last.
pub const STREAM_CHUNK: usize = 64 * 1024;
/// Bytes of an AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Bytes of a key check.
pub const KEY_CHECK_LEN: usize = 8;
/// Bytes of a file's random nonce prefix.
pub const NONCE_PREFIX_LEN: usize = 8;
/// Bytes of a sealed stream's header.
pub const STREAM_HEADER_LEN: usize = 24;
/// Magic bytes opening a sealed stream.
pub const STREAM_MAGIC: &[u8; 6] = b"BKPENC";
const STREAM_MAJOR: u8 = 1;
const STREAM_MINOR: u8 = 0;
const KEY_CHECK_LABEL: &[u8] = b"backup-format key check v1";

/// A 256-bit AES-GCM key with its key check. Never printed.
#[derive(Clone)]
pub struct EncryptionKey {
    cipher: Aes256Gcm,
    check: [u8; KEY_CHECK_LEN],
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(redacted)")
    }
}

impl EncryptionKey {
    /// A key from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> EncryptionKey {
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&bytes) {
            Ok(mac) => mac,
            // HMAC takes keys of any length; this arm is never taken.
            Err(_) => <Hmac<Sha256> as KeyInit>::new(&Default::default()),
        };
        mac.update(KEY_CHECK_LABEL);
        let digest = mac.finalize().into_bytes();
        let mut check = [0u8; KEY_CHECK_LEN];
        check.copy_from_slice(&digest[..KEY_CHECK_LEN]);
        EncryptionKey {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(bytes)),
            check,
        }
    }

    /// The key check: a value that tells keys apart without revealing them.
    pub fn key_check(&self) -> [u8; KEY_CHECK_LEN] {
        self.check
    }

    /// Errors with [`FormatError::WrongPassphrase`] unless `check` is this key's.
    pub fn verify_check(&self, file: &str, check: &[u8]) -> Result<(), FormatError> {
        if check == self.check {
            Ok(())
        } else {
            Err(FormatError::WrongPassphrase {
                file: file.to_string(),
            })
        }
    }

    /// Encrypts `buf` in place and appends the tag.
    pub(crate) fn seal(
        &self,
        prefix: &[u8; NONCE_PREFIX_LEN],
        counter: u32,
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        let nonce = nonce(prefix, counter);
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce.into(), aad, buf.as_mut_slice().into())
            .map_err(|_| FormatError::InvalidArgument("AES-GCM refused the input size".into()))?;
        buf.extend_from_slice(tag.as_slice());
        Ok(())
    }

    /// Authenticates and decrypts `buf` (ciphertext then tag) in place and
    /// drops the tag.
    pub(crate) fn open(
        &self,
        file: &str,
        part: &str,
        prefix: &[u8; NONCE_PREFIX_LEN],
        counter: u32,
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        let n = buf
            .len()
            .checked_sub(TAG_LEN)
            .ok_or_else(|| FormatError::truncated(file, format!("{part} is shorter than a tag")))?;
        let (msg, tag) = buf.split_at_mut(n);
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag);
        self.cipher
            .decrypt_inout_detached(&nonce(prefix, counter).into(), aad, msg.into(), &t.into())
            .map_err(|_| FormatError::AuthenticationFailed {
                file: file.to_string(),
                part: part.to_string(),
            })?;
        buf.truncate(n);
        Ok(())
    }
}

fn nonce(prefix: &[u8; NONCE_PREFIX_LEN], counter: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
    n[NONCE_PREFIX_LEN..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// `N` random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], FormatError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| FormatError::Random(e.to_string()))?;
    Ok(out)
}

/// Whether `bytes` start like a sealed stream.
pub fn is_sealed_stream(bytes: &[u8]) -> bool {
    bytes.starts_with(STREAM_MAGIC)
}

/// Encrypts whole files as a sealed stream, written as it goes.
pub struct SealWriter<W: Write> {
    inner: W,
    key: EncryptionKey,
    header: [u8; STREAM_HEADER_LEN],
    prefix: [u8; NONCE_PREFIX_LEN],
    counter: u32,
    buf: Vec<u8>,
    aad: Vec<u8>,
}

impl<W: Write> SealWriter<W> {
    /// Starts a sealed stream on `inner` (writes the header).
    pub fn new(mut inner: W, key: &EncryptionKey) -> io::Result<SealWriter<W>> {
        let prefix = random_bytes::<NONCE_PREFIX_LEN>().map_err(io::Error::other)?;
        let mut header = [0u8; STREAM_HEADER_LEN];
        header[..6].copy_from_slice(STREAM_MAGIC);
        header[6] = STREAM_MAJOR;
        header[7] = STREAM_MINOR;
        header[8..16].copy_from_slice(&prefix);
        header[16..].copy_from_slice(&key.key_check());
        inner.write_all(&header)?;
        let mut aad = header.to_vec();
        aad.push(0);
        Ok(SealWriter {
            inner,
            key: key.clone(),
            header,
            prefix,
            counter: 0,
            buf: Vec::with_capacity(STREAM_CHUNK + TAG_LEN),
            aad,
        })
    }

    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        self.aad[STREAM_HEADER_LEN] = u8::from(last);
        self.key
            .seal(&self.prefix, self.counter, &self.aad, &mut self.buf)
            .map_err(io::Error::other)?;
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.counter = self.counter.checked_add(1).ok_or_else(|| {
            io::Error::other("a sealed stream is limited to 2^32 chunks (256 TiB)")
        })?;
        Ok(())
    }

    /// Seals the last (short) chunk and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_chunk(true)?;
        self.inner.flush()?;
        let _ = self.header;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(STREAM_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == STREAM_CHUNK {
            // A full chunk is never the last: the last is always short.
            self.seal_chunk(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts a sealed stream chunk by chunk, authenticating each chunk before
/// any of its bytes are returned.
pub struct OpenReader<R: Read> {
    inner: R,
    file: String,
    key: EncryptionKey,
    prefix: [u8; NONCE_PREFIX_LEN],
    aad: Vec<u8>,
    counter: u32,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<R: Read> OpenReader<R> {
    /// Reads and checks the header of the sealed stream `file`.
    pub fn new(
        mut inner: R,
        file: &str,
        key: &EncryptionKey,
    ) -> Result<OpenReader<R>, FormatError> {
        let mut header = [0u8; STREAM_HEADER_LEN];
        let got = read_full(&mut inner, &mut header).map_err(|e| FormatError::io(file, e))?;
        if !header[..got].starts_with(&STREAM_MAGIC[..got.min(6)]) {
            return Err(FormatError::BadMagic {
                file: file.to_string(),
                expected: "encrypted backup file",
            });
        }
        if got < STREAM_HEADER_LEN {
            return Err(FormatError::truncated(
                file,
                "the encryption header is incomplete",
            ));
        }
        if header[6] != STREAM_MAJOR {
            return Err(FormatError::UnsupportedVersion {
                file: file.to_string(),
                major: u16::from(header[6]),
                minor: u16::from(header[7]),
                supported: u16::from(STREAM_MAJOR),
            });
        }
        key.verify_check(file, &header[16..])?;
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        prefix.copy_from_slice(&header[8..16]);
        let mut aad = header.to_vec();
        aad.push(0);
        Ok(OpenReader {
            inner,
            file: file.to_string(),
            key: key.clone(),
            prefix,
            aad,
            counter: 0,
            buf: Vec::with_capacity(STREAM_CHUNK + TAG_LEN),
            pos: 0,
            done: false,
        })
    }

    /// The next authenticated plaintext chunk, or `None` after the last.
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, FormatError> {
        if self.done {
            return Ok(None);
        }
        self.buf.resize(STREAM_CHUNK + TAG_LEN, 0);
        let got = read_full(&mut self.inner, &mut self.buf)
            .map_err(|e| FormatError::io(&self.file, e))?;
        self.buf.truncate(got);
        let last = got < STREAM_CHUNK + TAG_LEN;
        if got < TAG_LEN {
            return Err(FormatError::truncated(
                &self.file,
                format!("encrypted chunk {} is missing or incomplete", self.counter),
            ));
        }
        self.aad[STREAM_HEADER_LEN] = u8::from(last);
        let part = format!("encrypted chunk {}", self.counter);
        self.key.open(
            &self.file,
            &part,
            &self.prefix,
            self.counter,
            &self.aad,
            &mut self.buf,
        )?;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| FormatError::corrupt(&self.file, "more than 2^32 encrypted chunks"))?;
        if last {
            self.done = true;
        }
        self.pos = 0;
        Ok(Some(&self.buf))
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Returns the inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            if self.next_chunk().map_err(io::Error::other)?.is_none() {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(crate) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Turns an I/O error back into the [`FormatError`] it carries, if any.
pub(crate) fn unwrap_io(file: &str, e: io::Error) -> FormatError {
    if e.get_ref().is_some_and(|inner| inner.is::<FormatError>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(fe) = inner.downcast::<FormatError>() {
                return *fe;
            }
            return FormatError::io(file, io::Error::other("unreadable inner error"));
        }
        return FormatError::io(file, io::Error::other("unreadable inner error"));
    }
    FormatError::io(file, e)
}

/// Encrypts `plaintext` as a whole sealed stream.
pub fn seal_bytes(key: &EncryptionKey, plaintext: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut w = SealWriter::new(
        Vec::with_capacity(plaintext.len() + plaintext.len() / STREAM_CHUNK * TAG_LEN + 64),
        key,
    )
    .map_err(|e| unwrap_io("(memory)", e))?;
    w.write_all(plaintext)
        .map_err(|e| unwrap_io("(memory)", e))?;
    w.finish().map_err(|e| unwrap_io("(memory)", e))
}

/// The plaintext of a whole file that is sealed exactly when a key is given:
/// opened with `key` when sealed, as is when plain. A sealed file without a
/// key, or a plain one where a key was given, is an error naming the file.
pub(crate) fn open_if_sealed<'a>(
    file: &str,
    key: Option<&EncryptionKey>,
    bytes: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, FormatError> {
    match (is_sealed_stream(bytes), key) {
        (true, Some(key)) => Ok(std::borrow::Cow::Owned(open_bytes(file, key, bytes)?)),
        (true, None) => Err(FormatError::KeyRequired {
            file: file.to_string(),
        }),
        (false, Some(_)) => Err(FormatError::UnexpectedPlaintext {
            file: file.to_string(),
        }),
        (false, None) => Ok(std::borrow::Cow::Borrowed(bytes)),
    }
}

/// Decrypts a whole sealed stream `file`.
pub fn open_bytes(file: &str, key: &EncryptionKey, sealed: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut r = OpenReader::new(sealed, file, key)?;
    let mut out = Vec::with_capacity(sealed.len());
    while let Some(chunk) = r.next_chunk()? {
        out.extend_from_slice(chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> EncryptionKey {
        EncryptionKey::from_bytes([b; 32])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn stream_round_trip(len in 0usize..200_000, seed: u8) {
            let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect();
            let sealed = seal_bytes(&key(1), &data).unwrap();
            prop_assert_eq!(open_bytes("f", &key(1), &sealed).unwrap(), data);
        }
    }

    #[test]
    fn exact_multiple_gets_an_empty_final_chunk() {
        let data = vec![7u8; STREAM_CHUNK * 2];
        let sealed = seal_bytes(&key(1), &data).unwrap();
        assert_eq!(
            sealed.len(),
            STREAM_HEADER_LEN + 2 * (STREAM_CHUNK + TAG_LEN) + TAG_LEN
        );
        // Cutting the empty final chunk leaves a full-length last chunk: truncation.
        let cut = &sealed[..sealed.len() - TAG_LEN];
        let err = open_bytes("m", &key(1), cut).unwrap_err();
        assert!(matches!(err, FormatError::Truncated { .. }), "{err}");
        assert_eq!(open_bytes("m", &key(1), &sealed).unwrap(), data);
    }

    #[test]
    fn wrong_key_reordering_and_truncation_are_errors() {
        let data: Vec<u8> = (0..3 * STREAM_CHUNK + 100).map(|i| i as u8).collect();
        let sealed = seal_bytes(&key(1), &data).unwrap();
        let err = open_bytes("m", &key(2), &sealed).unwrap_err();
        assert!(
            err.to_string()
                .contains("the passphrase does not open this backup"),
            "{err}"
        );
        // Swap chunks 0 and 1.
        let c = STREAM_CHUNK + TAG_LEN;
        let h = STREAM_HEADER_LEN;
        let mut swapped = sealed.clone();
        swapped[h..h + c].copy_from_slice(&sealed[h + c..h + 2 * c]);
        swapped[h + c..h + 2 * c].copy_from_slice(&sealed[h..h + c]);
        assert!(matches!(
            open_bytes("m", &key(1), &swapped).unwrap_err(),
            FormatError::AuthenticationFailed { .. }
        ));
        for cut in [h, h + c, h + 2 * c, h + 3 * c, sealed.len() - 1, h + 5] {
            let err = open_bytes("m", &key(1), &sealed[..cut]).unwrap_err();
            assert_eq!(err.file(), Some("m"));
        }
        let mut appended = sealed.clone();
        appended.extend_from_slice(&sealed[h..h + c]);
        assert!(open_bytes("m", &key(1), &appended).is_err());
    }
}
