//! A raw-socket client sending what drivers never do: messages out of
//! place, unknown names, oversized lengths, garbage. The server answers
//! with errors (or closes that one connection) and keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::TestServer;

/// A connection speaking the protocol by hand.
struct Raw {
    s: TcpStream,
}

impl Raw {
    /// Connects as root and reads up to the first ReadyForQuery.
    fn connect(server: &TestServer) -> Raw {
        let s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut raw = Raw { s };
        let mut body = Vec::new();
        body.extend(196_608i32.to_be_bytes());
        for p in ["user", "root", "database", "defaultdb", ""] {
            body.extend(p.as_bytes());
            body.push(0);
        }
        let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        packet.extend(body);
        raw.s.write_all(&packet).unwrap();
        raw.until_ready();
        raw
    }

    fn send(&mut self, tag: u8, body: &[u8]) {
        let mut m = vec![tag];
        m.extend(((body.len() + 4) as i32).to_be_bytes());
        m.extend(body);
        self.s.write_all(&m).unwrap();
    }

    /// The next message: its tag and body; `None` when the server closed.
    fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 5];
        self.s.read_exact(&mut head).ok()?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        self.s.read_exact(&mut body).ok()?;
        Some((head[0], body))
    }

    /// Message tags up to and including ReadyForQuery, and any SQLSTATEs.
    fn until_ready(&mut self) -> (Vec<u8>, Vec<String>) {
        let mut tags = Vec::new();
        let mut codes = Vec::new();
        loop {
            let (tag, body) = self.recv().expect("the server closed the connection");
            tags.push(tag);
            if tag == b'E' {
                codes.push(sqlstate(&body));
            }
            if tag == b'Z' {
                return (tags, codes);
            }
        }
    }
}

fn sqlstate(error: &[u8]) -> String {
    let mut fields = error.split(|&b| b == 0);
    fields
        .find_map(|f| f.strip_prefix(b"C"))
        .map(|c| String::from_utf8_lossy(c).to_string())
        .unwrap_or_default()
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

#[test]
fn bad_messages_get_errors_and_the_connection_goes_on() {
    let server = TestServer::start();
    let mut c = Raw::connect(&server);

    // Bind to a statement that was never parsed; the rest of the batch is
    // skipped up to Sync.
    let mut bind = cstr("");
    bind.extend(cstr("nope"));
    bind.extend([0, 0, 0, 0, 0, 0]);
    c.send(b'B', &bind);
    c.send(b'E', &[0, 0, 0, 0, 0]);
    c.send(b'S', &[]);
    let (tags, codes) = c.until_ready();
    assert_eq!(tags, b"EZ");
    assert_eq!(codes, ["26000"]);

    // Execute of a missing portal, and an unknown message type.
    let mut exec = cstr("ghost");
    exec.extend(0i32.to_be_bytes());
    c.send(b'E', &exec);
    c.send(b'S', &[]);
    assert_eq!(c.until_ready().1, ["34000"]);
    c.send(b'?', b"junk");
    assert_eq!(c.until_ready().1, ["08P01"]);

    // Parse with two statements.
    let mut parse = cstr("two");
    parse.extend(cstr("SELECT 1; SELECT 2"));
    parse.extend([0, 0]);
    c.send(b'P', &parse);
    c.send(b'S', &[]);
    assert_eq!(c.until_ready().1, ["42601"]);

    // An empty query, then a real one on the same connection.
    c.send(b'Q', &cstr("  ;  "));
    assert_eq!(c.until_ready().0, b"IZ");
    c.send(b'Q', &cstr("SELECT 1"));
    assert_eq!(c.until_ready().0, b"TDCZ");
}

#[test]
fn garbage_closes_only_its_own_connection() {
    let server = TestServer::start();
    let mut good = Raw::connect(&server);

    // A message claiming to be 2 GiB long.
    let mut bad = Raw::connect(&server);
    bad.s.write_all(&[b'Q', 0x7f, 0xff, 0xff, 0xff]).unwrap();
    assert!(bad.recv().is_none());

    // A startup packet that is not one.
    let mut junk = TcpStream::connect(server.addr).unwrap();
    junk.write_all(&[0, 0, 0, 3, 1, 2, 3, 4]).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(junk.read(&mut buf).unwrap_or(0), 0);

    good.send(b'Q', &cstr("SELECT 2"));
    assert_eq!(good.until_ready().0, b"TDCZ");
}
