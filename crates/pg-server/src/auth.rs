//! Who may connect: `root` over loopback without a password, everyone else
//! with a password checked against the cluster's salted verifier, by
//! SCRAM-SHA-256 (the default) or a cleartext password message.

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use embedded_cluster::password::{constant_time_eq, hmac};
use embedded_cluster::{Cluster, ScramVerifier};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::protocol::{Frontend, Out, cstr, i32_at, read_message};
use crate::{PasswordMethod, PgServerError};

/// `AuthenticationOk`.
const AUTH_OK: i32 = 0;
/// `AuthenticationCleartextPassword`.
const AUTH_CLEARTEXT: i32 = 3;
/// `AuthenticationSASL`.
const AUTH_SASL: i32 = 10;
/// `AuthenticationSASLContinue`.
const AUTH_SASL_CONTINUE: i32 = 11;
/// `AuthenticationSASLFinal`.
const AUTH_SASL_FINAL: i32 = 12;

/// The result of authenticating a connection.
pub enum Verdict {
    /// The user may go on.
    Allowed,
    /// The password was wrong, or the user cannot log in with one.
    Denied,
}

/// Runs the authentication exchange for `user` connecting from `peer`;
/// sends `AuthenticationOk` when it succeeds.
pub async fn authenticate<R, W>(
    r: &mut R,
    out: &mut Out<W>,
    cluster: &Cluster,
    method: PasswordMethod,
    user: &str,
    peer: SocketAddr,
) -> Result<Verdict, PgServerError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if user == "root" && peer.ip().is_loopback() {
        out.auth(AUTH_OK, &[]);
        return Ok(Verdict::Allowed);
    }
    let allowed = match method {
        PasswordMethod::ScramSha256 => scram(r, out, cluster, user).await?,
        PasswordMethod::Cleartext => cleartext(r, out, cluster, user).await?,
    };
    if allowed {
        out.auth(AUTH_OK, &[]);
        Ok(Verdict::Allowed)
    } else {
        Ok(Verdict::Denied)
    }
}

async fn cleartext<R, W>(
    r: &mut R,
    out: &mut Out<W>,
    cluster: &Cluster,
    user: &str,
) -> Result<bool, PgServerError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    out.auth(AUTH_CLEARTEXT, &[]);
    out.flush().await?;
    let body = password_message(r).await?;
    let password = cstr(&mut &body[..])?;
    let cluster = cluster.clone();
    let user = user.to_string();
    // PBKDF2 takes milliseconds: keep it off the async workers.
    tokio::task::spawn_blocking(move || cluster.check_password(&user, &password).unwrap_or(false))
        .await
        .map_err(|e| PgServerError::Runtime(e.to_string()))
}

async fn scram<R, W>(
    r: &mut R,
    out: &mut Out<W>,
    cluster: &Cluster,
    user: &str,
) -> Result<bool, PgServerError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Unknown users and users without a password get a made-up verifier,
    // so the exchange looks the same and fails only at the proof.
    let (verifier, real) = match cluster.scram_verifier(user) {
        Ok(Some(v)) => (v, true),
        _ => (decoy_verifier()?, false),
    };
    out.auth(AUTH_SASL, b"SCRAM-SHA-256\0\0");
    out.flush().await?;

    // SASLInitialResponse: mechanism, length, client-first-message.
    let body = password_message(r).await?;
    let mut b = &body[..];
    let mechanism = cstr(&mut b)?;
    if mechanism != "SCRAM-SHA-256" {
        return Err(PgServerError::Protocol(format!(
            "SASL mechanism {mechanism:?} is not offered: use SCRAM-SHA-256"
        )));
    }
    let _len = i32_at(&mut b)?;
    let client_first = utf8(b)?;
    let (gs2_header, client_first_bare) = split_gs2(client_first)?;
    let client_nonce = attribute(client_first_bare, 'r')?;

    let server_nonce = format!("{client_nonce}{}", B64.encode(random::<18>()?));
    let server_first = format!(
        "r={server_nonce},s={},i={}",
        B64.encode(&verifier.salt),
        verifier.iterations
    );
    out.auth(AUTH_SASL_CONTINUE, server_first.as_bytes());
    out.flush().await?;

    // SASLResponse: client-final-message.
    let body = password_message(r).await?;
    let client_final = utf8(&body)?;
    let proof_at = client_final
        .rfind(",p=")
        .ok_or_else(|| PgServerError::Protocol("SCRAM client-final without a proof".into()))?;
    let without_proof = &client_final[..proof_at];
    let proof = B64
        .decode(&client_final[proof_at + 3..])
        .map_err(|_| PgServerError::Protocol("SCRAM proof is not base64".into()))?;
    let binding = attribute(without_proof, 'c')?;
    if binding != B64.encode(gs2_header.as_bytes())
        || attribute(without_proof, 'r')? != server_nonce
    {
        return Ok(false);
    }
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let client_signature = hmac(&verifier.stored_key, auth_message.as_bytes());
    if proof.len() != client_signature.len() {
        return Ok(false);
    }
    let client_key: Vec<u8> = proof
        .iter()
        .zip(client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    let ok = real && constant_time_eq(&Sha256::digest(&client_key), &verifier.stored_key);
    if ok {
        let server_signature = hmac(&verifier.server_key, auth_message.as_bytes());
        let last = format!("v={}", B64.encode(server_signature));
        out.auth(AUTH_SASL_FINAL, last.as_bytes());
    }
    Ok(ok)
}

/// The body of the next `p` message.
async fn password_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, PgServerError> {
    match read_message(r).await? {
        Some(Frontend::Password(body)) => Ok(body),
        Some(other) => Err(PgServerError::Protocol(format!(
            "expected a password message, got {}",
            other.kind()
        ))),
        None => Err(PgServerError::Protocol(
            "the client left during authentication".into(),
        )),
    }
}

/// `n,,` / `y,,` and the rest of a client-first-message.
fn split_gs2(msg: &str) -> Result<(&str, &str), PgServerError> {
    let bad = || PgServerError::Protocol("malformed SCRAM client-first-message".into());
    if msg.starts_with("p=") {
        return Err(PgServerError::Protocol(
            "SCRAM channel binding is not supported (the connection has no TLS)".into(),
        ));
    }
    let first = msg.find(',').ok_or_else(bad)?;
    let second = msg[first + 1..].find(',').ok_or_else(bad)? + first + 1;
    Ok((&msg[..=second], &msg[second + 1..]))
}

/// The value of attribute `name` (`r=...`) in a SCRAM message.
fn attribute(msg: &str, name: char) -> Result<&str, PgServerError> {
    msg.split(',')
        .find_map(|a| a.strip_prefix(name).and_then(|a| a.strip_prefix('=')))
        .ok_or_else(|| PgServerError::Protocol(format!("SCRAM message without {name}=")))
}

fn utf8(b: &[u8]) -> Result<&str, PgServerError> {
    std::str::from_utf8(b).map_err(|_| PgServerError::Protocol("SCRAM message is not UTF-8".into()))
}

fn random<const N: usize>() -> Result<[u8; N], PgServerError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| PgServerError::Runtime(e.to_string()))?;
    Ok(out)
}

fn decoy_verifier() -> Result<ScramVerifier, PgServerError> {
    Ok(ScramVerifier {
        iterations: embedded_cluster::password::SCRAM_ITERATIONS,
        salt: random::<16>()?.to_vec(),
        stored_key: random::<32>()?,
        server_key: random::<32>()?,
    })
}
