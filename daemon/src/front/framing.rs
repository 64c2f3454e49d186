//! The request shapes hyper's parser reads one way where another reader
//! could read them another: a `Content-Length` beside `Transfer-Encoding`
//! (hyper lets chunked win and drops the length, as RFC 9112 §6.3 allows)
//! and a repeated `Content-Length` (hyper keeps one when they agree).
//! Neither leaves a trace in the request hyper hands over, so the bytes
//! are watched on their way in: each request head's framing headers are
//! counted, and the service refuses (400) the request whose head was
//! ambiguous. Bodies are skipped by their framing (length, chunks), never
//! looked into, so the count stays aligned with the requests hyper parses.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest head or chunk-size line followed; past it hyper refuses the
/// request anyway, and the watch stops.
const MAX_LINE: usize = 128 * 1024;

/// One verdict per request head, in order: `true` when its framing was
/// ambiguous.
#[derive(Clone, Default)]
pub struct Verdicts(Arc<Mutex<VecDeque<bool>>>);

impl Verdicts {
    /// The verdict on the next request hyper hands over.
    pub fn ambiguous(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
            .unwrap_or(false)
    }

    fn push(&self, v: bool) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(v);
    }
}

enum State {
    Head(Vec<u8>),
    Fixed(u64),
    ChunkSize(Vec<u8>),
    ChunkData(u64),
    ChunkEnd,
    Trailers(Vec<u8>),
    /// After an ambiguous head (the connection closes after its 400), or
    /// input no parser would take: nothing more to learn.
    Off,
}

/// The stream, watched as it is read.
pub struct Watched<S> {
    inner: S,
    state: State,
    verdicts: Verdicts,
}

impl<S> Watched<S> {
    pub fn new(inner: S, verdicts: Verdicts) -> Watched<S> {
        Watched {
            inner,
            state: State::Head(Vec::new()),
            verdicts,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let state = std::mem::replace(&mut self.state, State::Off);
            self.state = match state {
                State::Off => return,
                State::Head(mut buf) => {
                    // Empty lines before a request line are skipped (RFC
                    // 9112 §2.2), as hyper does.
                    if buf.is_empty() {
                        let skip = data
                            .iter()
                            .position(|&b| b != b'\r' && b != b'\n')
                            .unwrap_or(data.len());
                        data = &data[skip..];
                        if data.is_empty() {
                            self.state = State::Head(buf);
                            return;
                        }
                    }
                    let from = buf.len().saturating_sub(3);
                    buf.extend_from_slice(data);
                    match head_end(&buf[from..]) {
                        Some(end) => {
                            let end = from + end;
                            let rest = buf.len() - end;
                            data = &data[data.len() - rest..];
                            self.head(&buf[..end])
                        }
                        None if buf.len() > MAX_LINE => State::Off,
                        None => {
                            data = &[];
                            State::Head(buf)
                        }
                    }
                }
                State::Fixed(n) => {
                    let take = n.min(data.len() as u64);
                    data = &data[take as usize..];
                    if n == take {
                        State::Head(Vec::new())
                    } else {
                        State::Fixed(n - take)
                    }
                }
                State::ChunkSize(mut line) => match line_end(data) {
                    Some(i) => {
                        line.extend_from_slice(&data[..i]);
                        data = &data[i + 1..];
                        match chunk_size(&line) {
                            Some(0) => State::Trailers(Vec::new()),
                            Some(n) => State::ChunkData(n),
                            None => State::Off,
                        }
                    }
                    None if line.len() + data.len() > MAX_LINE => State::Off,
                    None => {
                        line.extend_from_slice(data);
                        data = &[];
                        State::ChunkSize(line)
                    }
                },
                State::ChunkData(n) => {
                    let take = n.min(data.len() as u64);
                    data = &data[take as usize..];
                    if n == take {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(n - take)
                    }
                }
                State::ChunkEnd => match line_end(data) {
                    Some(i) => {
                        data = &data[i + 1..];
                        State::ChunkSize(Vec::new())
                    }
                    None => {
                        data = &[];
                        State::ChunkEnd
                    }
                },
                State::Trailers(mut line) => match line_end(data) {
                    Some(i) => {
                        line.extend_from_slice(&data[..i]);
                        data = &data[i + 1..];
                        if line.trim_ascii().is_empty() {
                            State::Head(Vec::new())
                        } else {
                            State::Trailers(Vec::new())
                        }
                    }
                    None if line.len() + data.len() > MAX_LINE => State::Off,
                    None => {
                        line.extend_from_slice(data);
                        data = &[];
                        State::Trailers(line)
                    }
                },
            };
        }
    }

    /// A whole head: its verdict, and how its body is framed.
    fn head(&mut self, head: &[u8]) -> State {
        let mut lengths = Vec::new();
        let mut te = false;
        for line in head.split(|&b| b == b'\n').skip(1) {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = &line[..colon];
            let value = line[colon + 1..].trim_ascii();
            if name.eq_ignore_ascii_case(b"content-length") {
                lengths.push(value.to_vec());
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                te = true;
            }
        }
        let ambiguous = (te && !lengths.is_empty()) || lengths.len() > 1;
        self.verdicts.push(ambiguous);
        if ambiguous {
            return State::Off;
        }
        if te {
            return State::ChunkSize(Vec::new());
        }
        match lengths.first() {
            None => State::Head(Vec::new()),
            Some(v) => match std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()) {
                Some(0) => State::Head(Vec::new()),
                Some(n) => State::Fixed(n),
                None => State::Off,
            },
        }
    }
}

/// Where a head ends (just past its empty line), LF or CRLF endings.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let at = i + p;
        let next = &buf[at + 1..];
        if next.first() == Some(&b'\n') {
            return Some(at + 2);
        }
        if next.starts_with(b"\r\n") {
            return Some(at + 3);
        }
        i = at + 1;
    }
    None
}

fn line_end(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b'\n')
}

fn chunk_size(line: &[u8]) -> Option<u64> {
    let hex = line.split(|&b| b == b';').next()?.trim_ascii();
    u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            this.feed(&buf.filled()[before..]);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(input: &[&[u8]]) -> Vec<bool> {
        let v = Verdicts::default();
        let mut w = Watched::new((), v.clone());
        for piece in input {
            w.feed(piece);
        }
        let q = v.0.lock().unwrap();
        q.iter().copied().collect()
    }

    #[test]
    fn ambiguous_heads_are_told_apart_and_bodies_skipped() {
        // A body that looks like a head is skipped by its length.
        let body = b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut req = format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        req.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(verdicts(&[&req]), [false, false]);
        // Byte by byte, the same.
        let pieces: Vec<&[u8]> = req.chunks(1).collect();
        assert_eq!(verdicts(&pieces), [false, false]);
        // Chunked with a trailer, then another request.
        let req = b"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\nx";
        assert_eq!(verdicts(&[req]), [false, true]);
        let req =
            b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(verdicts(&[req]), [true]);
    }
}
