//! A raw HTTP/1.1 upstream for the red-team suites: it answers what the
//! hyper test upstream cannot (transfer-codings, echoes in any encoding,
//! stored requests) and records what it was sent.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::Daemon;

/// vaultctl without the harness's stderr panic, so every case is reported.
pub fn run(d: &Daemon, args: &[&str]) -> (i32, Vec<u8>, Vec<u8>) {
    let out = d
        .cmd()
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run vaultctl");
    (out.status.code().unwrap_or(-1), out.stdout, out.stderr)
}

pub struct Seen {
    pub path: String,
    /// The bearer token (Authorization without `Bearer `).
    pub token: Vec<u8>,
    /// The Cookie header as sent.
    pub cookie: Vec<u8>,
}

pub fn read_head(s: &mut TcpStream) -> Seen {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s);
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).unwrap_or(0);
    let text = String::from_utf8_lossy(&line).into_owned();
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut token = Vec::new();
    let mut cookie = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 || line == b"\r\n" {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
        let mut v = &line[colon + 1..];
        while let [b' ' | b'\t', rest @ ..] = v {
            v = rest;
        }
        while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] = v {
            v = rest;
        }
        if name == "authorization" {
            token = v.strip_prefix(b"Bearer ").unwrap_or(v).to_vec();
        } else if name == "cookie" {
            cookie = v.to_vec();
        }
    }
    Seen {
        path,
        token,
        cookie,
    }
}

pub fn raw_upstream(handler: fn(&Seen) -> Vec<u8>) -> SocketAddr {
    raw_upstream_at("127.0.0.1:0", handler)
}

/// As [`raw_upstream`], bound to `bind` (a real service often binds 0.0.0.0).
pub fn raw_upstream_at(bind: &str, handler: fn(&Seen) -> Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind(bind).unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let seen = read_head(&mut s);
            let body = handler(&seen);
            // A handler may answer a whole response of its own.
            if body.starts_with(b"HTTP/1.1 ") {
                let _ = s.write_all(&body);
                continue;
            }
            let mut out = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(&body);
            let _ = s.write_all(&out);
        }
    });
    addr
}

pub fn query(path: &str, key: &str) -> String {
    path.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")[..]))
        .unwrap_or("")
        .to_owned()
}

/// Each byte of `t` mapped by `f` (None: left as is).
pub fn map_bytes(t: &[u8], f: impl Fn(u8) -> Option<String>) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in t {
        match f(b) {
            Some(s) => out.extend_from_slice(s.as_bytes()),
            None => out.push(b),
        }
    }
    out
}
