//! The PostgreSQL v3 wire protocol: the frontend messages this server reads
//! and the backend messages it writes.

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::PgServerError;

/// The largest message a client may send (a statement with its parameters).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Protocol version 3.0, as a startup packet's code.
const PROTOCOL_3_0: i32 = 196_608;
/// A startup packet asking for TLS.
const SSL_REQUEST: i32 = 80_877_103;
/// A startup packet asking for GSSAPI encryption.
const GSSENC_REQUEST: i32 = 80_877_104;
/// A startup packet cancelling another connection's query.
const CANCEL_REQUEST: i32 = 80_877_102;

/// What a client opens a connection with.
#[derive(Debug)]
pub enum Startup {
    /// Protocol 3.0 and its parameters (`user`, `database`, ...).
    Start(Vec<(String, String)>),
    /// TLS or GSSAPI encryption asked for (declined with `N`).
    EncryptionRequest,
    /// A cancel request (this server does not cancel; the connection closes).
    Cancel,
}

/// A message of the normal phase (no `Debug`: it may hold passwords).
pub enum Frontend {
    /// `Q`: a simple query (one or more statements).
    Query(String),
    /// `P`: a statement to prepare.
    Parse {
        /// Statement name (empty: the unnamed one).
        name: String,
        /// The SQL.
        sql: String,
        /// Parameter type OIDs the client fixed (0: unspecified).
        param_types: Vec<i32>,
    },
    /// `B`: parameters bound to a prepared statement.
    Bind {
        /// Portal name.
        portal: String,
        /// Statement name.
        statement: String,
        /// Per-parameter format codes (0 text, 1 binary), 0, 1 or n of them.
        param_formats: Vec<i16>,
        /// The values (`None` is NULL).
        params: Vec<Option<Vec<u8>>>,
        /// Per-column result format codes, 0, 1 or n of them.
        result_formats: Vec<i16>,
    },
    /// `D`: describe a statement (`S`) or a portal (`P`).
    Describe {
        /// `S` or `P`.
        kind: u8,
        /// Its name.
        name: String,
    },
    /// `E`: run a portal.
    Execute {
        /// Portal name.
        portal: String,
        /// Row limit (0: all).
        max_rows: i32,
    },
    /// `C`: close a statement (`S`) or a portal (`P`).
    Close {
        /// `S` or `P`.
        kind: u8,
        /// Its name.
        name: String,
    },
    /// `S`: end of an extended-query batch.
    Sync,
    /// `H`: send what is buffered.
    Flush,
    /// `X`: the client leaves.
    Terminate,
    /// `p`: a password, SASL initial or SASL response (raw body).
    Password(Vec<u8>),
    /// Anything else (answered with an error).
    Other(u8),
}

impl Frontend {
    /// The message's name, for errors (never its contents, which may hold
    /// statements or passwords).
    pub fn kind(&self) -> String {
        match self {
            Frontend::Query(_) => "Query".into(),
            Frontend::Parse { .. } => "Parse".into(),
            Frontend::Bind { .. } => "Bind".into(),
            Frontend::Describe { .. } => "Describe".into(),
            Frontend::Execute { .. } => "Execute".into(),
            Frontend::Close { .. } => "Close".into(),
            Frontend::Sync => "Sync".into(),
            Frontend::Flush => "Flush".into(),
            Frontend::Terminate => "Terminate".into(),
            Frontend::Password(_) => "a password message".into(),
            Frontend::Other(t) => format!("message type {:?}", *t as char),
        }
    }
}

/// Reads the first packet of a connection.
pub async fn read_startup<R: AsyncRead + Unpin>(r: &mut R) -> Result<Startup, PgServerError> {
    let len = r.read_i32().await?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (8..=10_000).contains(l))
        .ok_or_else(|| PgServerError::Protocol(format!("bad startup packet length {len}")))?;
    let mut body = vec![0u8; len - 4];
    r.read_exact(&mut body).await?;
    let mut b = &body[..];
    let code = b.get_i32();
    match code {
        PROTOCOL_3_0 => {
            let mut params = Vec::new();
            loop {
                let key = cstr(&mut b)?;
                if key.is_empty() {
                    break;
                }
                params.push((key, cstr(&mut b)?));
            }
            Ok(Startup::Start(params))
        }
        SSL_REQUEST | GSSENC_REQUEST => Ok(Startup::EncryptionRequest),
        CANCEL_REQUEST => Ok(Startup::Cancel),
        other => Err(PgServerError::Protocol(format!(
            "unsupported protocol version {}.{}: use protocol 3.0",
            other >> 16,
            other & 0xffff
        ))),
    }
}

/// Reads one normal-phase message; `None` when the client hung up.
pub async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<Frontend>, PgServerError> {
    let tag = match r.read_u8().await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let len = r.read_i32().await?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (4..=MAX_MESSAGE_BYTES).contains(l))
        .ok_or_else(|| {
            PgServerError::Protocol(format!(
                "message length {len} is out of range (at most {MAX_MESSAGE_BYTES} bytes)"
            ))
        })?;
    let mut body = vec![0u8; len - 4];
    r.read_exact(&mut body).await?;
    decode(tag, body).map(Some)
}

fn decode(tag: u8, body: Vec<u8>) -> Result<Frontend, PgServerError> {
    let mut b = &body[..];
    Ok(match tag {
        b'Q' => Frontend::Query(cstr(&mut b)?),
        b'P' => {
            let name = cstr(&mut b)?;
            let sql = cstr(&mut b)?;
            let n = i16_at(&mut b)?;
            let mut param_types = Vec::new();
            for _ in 0..n {
                param_types.push(i32_at(&mut b)?);
            }
            Frontend::Parse {
                name,
                sql,
                param_types,
            }
        }
        b'B' => {
            let portal = cstr(&mut b)?;
            let statement = cstr(&mut b)?;
            let param_formats = i16_list(&mut b)?;
            let n = i16_at(&mut b)?;
            let mut params = Vec::new();
            for _ in 0..n {
                let len = i32_at(&mut b)?;
                if len < 0 {
                    params.push(None);
                } else {
                    let len = len as usize;
                    if b.remaining() < len {
                        return Err(short());
                    }
                    params.push(Some(b[..len].to_vec()));
                    b.advance(len);
                }
            }
            let result_formats = i16_list(&mut b)?;
            Frontend::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            }
        }
        b'D' | b'C' => {
            if b.remaining() < 1 {
                return Err(short());
            }
            let kind = b.get_u8();
            let name = cstr(&mut b)?;
            if tag == b'D' {
                Frontend::Describe { kind, name }
            } else {
                Frontend::Close { kind, name }
            }
        }
        b'E' => Frontend::Execute {
            portal: cstr(&mut b)?,
            max_rows: i32_at(&mut b)?,
        },
        b'S' => Frontend::Sync,
        b'H' => Frontend::Flush,
        b'X' => Frontend::Terminate,
        b'p' => Frontend::Password(body),
        other => Frontend::Other(other),
    })
}

fn short() -> PgServerError {
    PgServerError::Protocol("message ends early".into())
}

/// A NUL-terminated UTF-8 string.
pub fn cstr(b: &mut &[u8]) -> Result<String, PgServerError> {
    let end = b
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| PgServerError::Protocol("string without its terminating NUL".into()))?;
    let s = std::str::from_utf8(&b[..end])
        .map_err(|_| PgServerError::Protocol("string is not UTF-8".into()))?
        .to_string();
    b.advance(end + 1);
    Ok(s)
}

fn i16_at(b: &mut &[u8]) -> Result<i16, PgServerError> {
    if b.remaining() < 2 {
        return Err(short());
    }
    Ok(b.get_i16())
}

/// A big-endian i32 off the front of `b`.
pub fn i32_at(b: &mut &[u8]) -> Result<i32, PgServerError> {
    if b.remaining() < 4 {
        return Err(short());
    }
    Ok(b.get_i32())
}

fn i16_list(b: &mut &[u8]) -> Result<Vec<i16>, PgServerError> {
    let n = i16_at(b)?;
    (0..n).map(|_| i16_at(b)).collect()
}

/// Backend messages, buffered until [`Out::flush`].
pub struct Out<W> {
    w: W,
    buf: BytesMut,
}

/// One column of a row description.
#[derive(Clone, Debug)]
pub struct FieldDesc {
    /// Column name.
    pub name: String,
    /// Type OID.
    pub oid: i32,
    /// Type length (-1 for variable).
    pub len: i16,
    /// 0 text, 1 binary.
    pub format: i16,
}

impl<W: AsyncWrite + Unpin> Out<W> {
    /// Buffers messages for `w`.
    pub fn new(w: W) -> Out<W> {
        Out {
            w,
            buf: BytesMut::with_capacity(8192),
        }
    }

    /// Writes what is buffered.
    pub async fn flush(&mut self) -> Result<(), PgServerError> {
        self.w.write_all(&self.buf).await?;
        self.buf.clear();
        self.w.flush().await?;
        Ok(())
    }

    /// Whether enough is buffered that it should go out.
    pub fn is_large(&self) -> bool {
        self.buf.len() >= 64 * 1024
    }

    /// A raw byte (the answer to an SSL request).
    pub fn byte(&mut self, b: u8) {
        self.buf.put_u8(b);
    }

    fn msg(&mut self, tag: u8, body: impl FnOnce(&mut BytesMut)) {
        self.buf.put_u8(tag);
        let at = self.buf.len();
        self.buf.put_i32(0);
        body(&mut self.buf);
        let len = (self.buf.len() - at) as i32;
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// `R`: an authentication request or result (`code` and its data).
    pub fn auth(&mut self, code: i32, data: &[u8]) {
        self.msg(b'R', |b| {
            b.put_i32(code);
            b.put_slice(data);
        });
    }

    /// `S`: a run-time parameter's value.
    pub fn parameter_status(&mut self, name: &str, value: &str) {
        self.msg(b'S', |b| {
            put_cstr(b, name);
            put_cstr(b, value);
        });
    }

    /// `K`: the process id and secret a cancel request would name.
    pub fn backend_key(&mut self, pid: i32, secret: i32) {
        self.msg(b'K', |b| {
            b.put_i32(pid);
            b.put_i32(secret);
        });
    }

    /// `Z`: ready for a query; `status` is `I`, `T` or `E`.
    pub fn ready(&mut self, status: u8) {
        self.msg(b'Z', |b| b.put_u8(status));
    }

    /// `T`: the columns of the rows to come.
    pub fn row_description(&mut self, fields: &[FieldDesc]) {
        self.msg(b'T', |b| {
            b.put_i16(fields.len() as i16);
            for f in fields {
                put_cstr(b, &f.name);
                b.put_i32(0);
                b.put_i16(0);
                b.put_i32(f.oid);
                b.put_i16(f.len);
                b.put_i32(-1);
                b.put_i16(f.format);
            }
        });
    }

    /// `D`: one row of encoded values.
    pub fn data_row(&mut self, values: &[Option<Vec<u8>>]) {
        self.msg(b'D', |b| {
            b.put_i16(values.len() as i16);
            for v in values {
                match v {
                    None => b.put_i32(-1),
                    Some(v) => {
                        b.put_i32(v.len() as i32);
                        b.put_slice(v);
                    }
                }
            }
        });
    }

    /// `C`: a statement finished with `tag`.
    pub fn command_complete(&mut self, tag: &str) {
        self.msg(b'C', |b| put_cstr(b, tag));
    }

    /// `I`: the query string held no statement.
    pub fn empty_query(&mut self) {
        self.msg(b'I', |_| {});
    }

    /// `E`: an error with its SQLSTATE, message and an optional hint.
    pub fn error(&mut self, sqlstate: &str, message: &str, hint: Option<&str>) {
        self.error_with("ERROR", sqlstate, message, hint);
    }

    /// `E` with severity `FATAL`: the server closes the connection next.
    pub fn fatal(&mut self, sqlstate: &str, message: &str) {
        self.error_with("FATAL", sqlstate, message, None);
    }

    fn error_with(&mut self, severity: &str, sqlstate: &str, message: &str, hint: Option<&str>) {
        self.msg(b'E', |b| {
            for (k, v) in [(b'S', severity), (b'V', severity), (b'C', sqlstate)] {
                b.put_u8(k);
                put_cstr(b, v);
            }
            b.put_u8(b'M');
            put_cstr(b, message);
            if let Some(h) = hint {
                b.put_u8(b'H');
                put_cstr(b, h);
            }
            b.put_u8(0);
        });
    }

    /// `1`: Parse done.
    pub fn parse_complete(&mut self) {
        self.msg(b'1', |_| {});
    }

    /// `2`: Bind done.
    pub fn bind_complete(&mut self) {
        self.msg(b'2', |_| {});
    }

    /// `3`: Close done.
    pub fn close_complete(&mut self) {
        self.msg(b'3', |_| {});
    }

    /// `n`: the statement or portal returns no rows.
    pub fn no_data(&mut self) {
        self.msg(b'n', |_| {});
    }

    /// `s`: Execute stopped at its row limit.
    pub fn portal_suspended(&mut self) {
        self.msg(b's', |_| {});
    }

    /// `t`: the parameter types of a prepared statement.
    pub fn parameter_description(&mut self, oids: &[i32]) {
        self.msg(b't', |b| {
            b.put_i16(oids.len() as i16);
            for o in oids {
                b.put_i32(*o);
            }
        });
    }
}

fn put_cstr(b: &mut BytesMut, s: &str) {
    // A NUL inside would end the string early on the client: drop it.
    b.extend(s.bytes().filter(|&c| c != 0));
    b.put_u8(0);
}
