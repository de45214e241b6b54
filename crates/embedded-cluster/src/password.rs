//! User passwords: what `CREATE USER .. WITH PASSWORD` stores, and how a
//! login is checked against it.
//!
//! The password itself is never stored: a user record keeps a salted
//! SCRAM-SHA-256 verifier ([`PasswordHash`], RFC 5802 / RFC 7677), the same
//! form PostgreSQL and CockroachDB keep. It checks a cleartext password
//! ([`Cluster::check_password`]) and lets a wire server run a SCRAM exchange
//! without ever seeing the password ([`Cluster::scram_verifier`]).
//!
//! ```
//! use embedded_cluster::Cluster;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let cluster = Cluster::open_default(dir.path()).unwrap();
//! let mut s = cluster.session("root").unwrap();
//! s.execute("CREATE USER alice WITH PASSWORD 'correct horse'").unwrap();
//! assert!(cluster.check_password("alice", "correct horse").unwrap());
//! assert!(!cluster.check_password("alice", "wrong").unwrap());
//! s.execute("ALTER USER alice WITH PASSWORD 'battery staple'").unwrap();
//! assert!(cluster.check_password("alice", "battery staple").unwrap());
//! ```

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::Snapshot;
use crate::cluster::Cluster;
use crate::sql::SqlError;
use crate::sql::kv::KvTxn;

/// PBKDF2 iterations of a new verifier (PostgreSQL's default).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// A salted SCRAM-SHA-256 verifier of a password (never the password).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash {
    /// PBKDF2-HMAC-SHA-256 iterations.
    pub iterations: u32,
    /// The random salt, hex.
    pub salt: String,
    /// `H(HMAC(SaltedPassword, "Client Key"))`, hex.
    pub stored_key: String,
    /// `HMAC(SaltedPassword, "Server Key")`, hex.
    pub server_key: String,
}

/// What a server needs to run a SCRAM-SHA-256 exchange for one user.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

impl PasswordHash {
    /// A verifier of `password` with a fresh random salt.
    pub fn new(password: &str) -> Result<PasswordHash, SqlError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)
            .map_err(|e| SqlError::Invalid(format!("no randomness for a password salt: {e}")))?;
        Ok(PasswordHash::with_salt(password, &salt, SCRAM_ITERATIONS))
    }

    /// A verifier of `password` with the given salt and iterations.
    pub fn with_salt(password: &str, salt: &[u8], iterations: u32) -> PasswordHash {
        let salted = salted_password(password, salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        PasswordHash {
            iterations,
            salt: hex(salt),
            stored_key: hex(&Sha256::digest(client_key)),
            server_key: hex(&hmac(&salted, b"Server Key")),
        }
    }

    /// Whether `password` is the one this verifier was made from.
    pub fn matches(&self, password: &str) -> bool {
        let Some(v) = self.verifier() else {
            return false;
        };
        let salted = salted_password(password, &v.salt, v.iterations);
        let stored: [u8; 32] = Sha256::digest(hmac(&salted, b"Client Key")).into();
        constant_time_eq(&stored, &v.stored_key)
    }

    /// The decoded verifier; `None` if the record is corrupt.
    pub fn verifier(&self) -> Option<ScramVerifier> {
        Some(ScramVerifier {
            iterations: self.iterations,
            salt: unhex(&self.salt)?,
            stored_key: unhex(&self.stored_key)?.try_into().ok()?,
            server_key: unhex(&self.server_key)?.try_into().ok()?,
        })
    }
}

/// A password as a statement carries it: its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'*****'")
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PasswordHash(SCRAM-SHA-256, {} iterations)",
            self.iterations
        )
    }
}

impl fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScramVerifier({} iterations)", self.iterations)
    }
}

impl Cluster {
    /// Whether `user` may log in with `password`: the user exists, can log in
    /// (is not a role), has a password and `password` is it. Unknown users
    /// and users without a password are `Ok(false)`, like a wrong password.
    pub fn check_password(&self, user: &str, password: &str) -> Result<bool, SqlError> {
        Ok(self
            .password_hash(user)?
            .is_some_and(|h| h.matches(password)))
    }

    /// The SCRAM-SHA-256 verifier of a user who can log in with a password;
    /// `None` for unknown users, roles and users without a password.
    pub fn scram_verifier(&self, user: &str) -> Result<Option<ScramVerifier>, SqlError> {
        Ok(self.password_hash(user)?.and_then(|h| h.verifier()))
    }

    fn password_hash(&self, user: &str) -> Result<Option<PasswordHash>, SqlError> {
        let kv = KvTxn::new(self, self.now()?);
        let snap = Snapshot::load(&kv)?;
        Ok(snap
            .users
            .get(user)
            .filter(|r| !r.is_role)
            .and_then(|r| r.password.clone()))
    }
}

/// `Hi(password, salt, i)`: PBKDF2-HMAC-SHA-256.
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

/// HMAC-SHA-256.
pub fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => <Hmac<Sha256> as KeyInit>::new(&Default::default()),
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Compares without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_matches_only_its_password() {
        let h = PasswordHash::new("s3cret").unwrap();
        assert!(h.matches("s3cret"));
        assert!(!h.matches("s3cret "));
        assert!(!format!("{h:?}").contains("s3cret"));
        let again = PasswordHash::new("s3cret").unwrap();
        assert_ne!(h.salt, again.salt, "each hash gets its own salt");
    }

    #[test]
    fn records_from_before_passwords_still_decode() {
        let rec: crate::catalog::UserRecord =
            serde_json::from_str(r#"{"is_role":false,"member_of":["admin"]}"#).unwrap();
        assert_eq!(rec.password, None);
        let json = serde_json::to_string(&rec).unwrap();
        assert!(!json.contains("password"), "{json}");
    }

    #[test]
    fn rfc7677_test_vector() {
        // RFC 7677 section 3: user "user", password "pencil".
        let salt = [
            0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36,
            0xfa, 0x81,
        ];
        let h = PasswordHash::with_salt("pencil", &salt, 4096);
        let v = h.verifier().unwrap();
        // ServerSignature = HMAC(ServerKey, AuthMessage) must give the RFC's "v=".
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                    r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                    s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
                    c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let sig = hmac(&v.server_key, auth.as_bytes());
        assert_eq!(base64(&sig), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    fn base64(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
