//! `ENCRYPTION-INFO`: how a passphrase becomes the backup's key.
//!
//! A full backup taken with a passphrase writes one `ENCRYPTION-INFO` file,
//! in plain text (it holds no secret): the name of the key-derivation
//! function, its parameters, its random salt and the derived key's key check.
//! Incremental backups in the same chain reuse it, so every layer has the
//! same key. Because the KDF's name and parameters are stored, a later
//! release can move to another KDF and still open old backups.
//!
//! File layout: the envelope of [`crate::envelope`] with magic `BKPEINFO`,
//! version 1.0, and a protobuf-wire body:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | 1 | string | KDF name; `pbkdf2-hmac-sha256` is the only one so far |
//! | 2 | varint | iterations |
//! | 3 | bytes | salt (16 bytes) |
//! | 4 | bytes | key check of the derived key (8 bytes) |

use crate::FormatError;
use crate::crypto::{EncryptionKey, KEY_CHECK_LEN, random_bytes};
use crate::envelope::{open_envelope, seal_envelope};
use crate::wire::{MessageReader, MessageWriter};

/// The KDF the reference system uses: PBKDF2 with HMAC-SHA256.
pub const KDF_PBKDF2_SHA256: &str = "pbkdf2-hmac-sha256";
/// Default PBKDF2 iterations (the reference system's choice).
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 64_000;
/// Bytes of the salt.
pub const SALT_LEN: usize = 16;
/// Iterations above this are refused as corrupt (a damaged file must not hang a reader).
const MAX_ITERATIONS: u32 = 100_000_000;
const MAGIC: &[u8; 8] = b"BKPEINFO";
const MAJOR: u16 = 1;
const MINOR: u16 = 0;

/// The contents of an `ENCRYPTION-INFO` file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EncryptionInfo {
    /// Name of the key-derivation function.
    pub kdf: String,
    /// KDF iterations.
    pub iterations: u32,
    /// Random salt.
    pub salt: [u8; SALT_LEN],
    /// Key check of the derived key.
    pub key_check: [u8; KEY_CHECK_LEN],
}

impl EncryptionInfo {
    /// New encryption info with a random salt and the default KDF; returns the derived key too.
    pub fn generate(passphrase: &[u8]) -> Result<(EncryptionInfo, EncryptionKey), FormatError> {
        EncryptionInfo::generate_with_iterations(passphrase, DEFAULT_PBKDF2_ITERATIONS)
    }

    /// Like [`EncryptionInfo::generate`] with a chosen PBKDF2 iteration count.
    pub fn generate_with_iterations(
        passphrase: &[u8],
        iterations: u32,
    ) -> Result<(EncryptionInfo, EncryptionKey), FormatError> {
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(FormatError::InvalidArgument(format!(
                "PBKDF2 iterations must be between 1 and {MAX_ITERATIONS}, not {iterations}"
            )));
        }
        let salt = random_bytes::<SALT_LEN>()?;
        let key = pbkdf2_key(passphrase, &salt, iterations);
        let info = EncryptionInfo {
            kdf: KDF_PBKDF2_SHA256.to_string(),
            iterations,
            salt,
            key_check: key.key_check(),
        };
        Ok((info, key))
    }

    /// Derives the key from `passphrase`; [`FormatError::WrongPassphrase`] if it is not this backup's.
    pub fn derive_key(&self, file: &str, passphrase: &[u8]) -> Result<EncryptionKey, FormatError> {
        if self.kdf != KDF_PBKDF2_SHA256 {
            return Err(FormatError::UnknownKdf {
                file: file.to_string(),
                name: self.kdf.clone(),
            });
        }
        let key = pbkdf2_key(passphrase, &self.salt, self.iterations);
        key.verify_check(file, &self.key_check)?;
        Ok(key)
    }

    /// The bytes of the `ENCRYPTION-INFO` file.
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        let mut m = MessageWriter::new();
        m.bytes(1, self.kdf.as_bytes())
            .uint(2, u64::from(self.iterations))
            .bytes(3, &self.salt)
            .bytes(4, &self.key_check);
        seal_envelope(MAGIC, MAJOR, MINOR, m.as_bytes())
    }

    /// Reads an `ENCRYPTION-INFO` file named `file`.
    pub fn decode(file: &str, bytes: &[u8]) -> Result<EncryptionInfo, FormatError> {
        let (_minor, body) = open_envelope(file, MAGIC, "ENCRYPTION-INFO file", MAJOR, bytes)?;
        let mut m = MessageReader::new(file, "the encryption info", body);
        let (mut kdf, mut iterations, mut salt, mut check) = (None, 0u32, None, None);
        while let Some((field, v)) = m.next_field()? {
            match field {
                1 => kdf = Some(v.string(&m, "kdf")?),
                2 => iterations = v.u32(&m, "iterations")?,
                3 => salt = Some(fixed::<SALT_LEN>(&m, v.bytes(&m, "salt")?, "salt")?),
                4 => {
                    check = Some(fixed::<KEY_CHECK_LEN>(
                        &m,
                        v.bytes(&m, "key check")?,
                        "key check",
                    )?)
                }
                _ => {} // a newer release's field: skipped
            }
        }
        let missing = |what: &str| FormatError::corrupt(file, format!("the {what} is missing"));
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(FormatError::corrupt(
                file,
                format!("{iterations} KDF iterations is out of range"),
            ));
        }
        Ok(EncryptionInfo {
            kdf: kdf.ok_or_else(|| missing("KDF name"))?,
            iterations,
            salt: salt.ok_or_else(|| missing("salt"))?,
            key_check: check.ok_or_else(|| missing("key check"))?,
        })
    }
}

fn fixed<const N: usize>(
    m: &MessageReader<'_>,
    b: &[u8],
    name: &str,
) -> Result<[u8; N], FormatError> {
    <[u8; N]>::try_from(b).map_err(|_| m.error(&format!("the {name} is not {N} bytes")))
}

fn pbkdf2_key(passphrase: &[u8], salt: &[u8], iterations: u32) -> EncryptionKey {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(passphrase, salt, iterations, &mut key);
    EncryptionKey::from_bytes(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_round_trip_and_wrong_passphrase() {
        let (info, key) = EncryptionInfo::generate(b"correct horse").unwrap();
        assert_eq!(info.iterations, 64_000);
        let bytes = info.encode().unwrap();
        let back = EncryptionInfo::decode("ENCRYPTION-INFO", &bytes).unwrap();
        assert_eq!(back, info);
        let again = back
            .derive_key("ENCRYPTION-INFO", b"correct horse")
            .unwrap();
        assert_eq!(again.key_check(), key.key_check());
        let err = back.derive_key("ENCRYPTION-INFO", b"wrong").unwrap_err();
        assert_eq!(
            err.to_string(),
            "ENCRYPTION-INFO: the passphrase does not open this backup; give the passphrase the backup was taken with"
        );
    }

    proptest::proptest! {
        #[test]
        fn file_round_trip(kdf in "[a-z0-9-]{0,20}", iterations in 1u32..100_000_000, salt: [u8; 16], key_check: [u8; 8]) {
            let info = EncryptionInfo { kdf, iterations, salt, key_check };
            let back = EncryptionInfo::decode("E", &info.encode().unwrap()).unwrap();
            proptest::prop_assert_eq!(back, info);
        }
    }

    #[test]
    fn unknown_kdf_is_refused() {
        let (mut info, _) = EncryptionInfo::generate_with_iterations(b"p", 10).unwrap();
        info.kdf = "argon2id".into();
        let back = EncryptionInfo::decode("E", &info.encode().unwrap()).unwrap();
        assert!(matches!(
            back.derive_key("E", b"p"),
            Err(FormatError::UnknownKdf { .. })
        ));
    }
}
