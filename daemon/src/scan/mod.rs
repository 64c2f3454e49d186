//! `vaultctl scan`: finds copies of stored values in files the client
//! streams over the socket, and answers where they are (line, offset,
//! length), which credential and in which form; never a value, never a
//! matched byte.
//!
//! The matching is the redactor's ([`Redactor::find_in`]): the same
//! patterns (every encoded form of every value) in one Aho-Corasick
//! automaton, plus the decoded views of `job::unescape`, so a scan finds
//! exactly what a response would have redacted. A session builds the
//! matcher once and scans every file with it.
//!
//! A session is bounded like a streamed job: each file must arrive within
//! `request_timeout` and is at most `max_body` bytes, the wait for the
//! next file is the connection's `idle_timeout`, and a `lock` ends it at
//! once (the matcher holds every value's forms). Each connection runs on
//! its own task and large pieces are searched off the async workers, so a
//! hostile stream stalls nobody else.

use std::time::Duration;

use proto::frame::{read_frame_async, write_frame_async};
use proto::{Request, Response, ScanFinding, ScanReport};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout_at};
use zeroize::{Zeroize, Zeroizing};

use crate::error::reply;
use crate::job::epoch::Epoch;
use crate::job::http::REDACT_INLINE_MAX;
use crate::job::redact::{Form, Found, Label, MAX_ESCAPE_LEN, Redactor};
use crate::peer::Peer;
use crate::state::State;

mod error;

pub use error::{MAX_FINDINGS, ScanError};

/// The matcher of one session: the redactor's automaton over every stored
/// value, and the credential name of each value (by index).
struct Scanner {
    redactor: Redactor,
    names: Vec<String>,
}

impl Scanner {
    fn new(state: &State) -> Result<(Scanner, Epoch), crate::error::Error> {
        let opened = state.scan_values()?;
        let (names, values): (Vec<String>, Vec<proto::Secret>) = opened.values.into_iter().unzip();
        let tokens: Vec<&[u8]> = values.iter().map(|v| v.expose()).collect();
        // The values are zeroized as `values` drops: only the automaton,
        // which lives as long as the session, keeps their forms.
        let redactor = Redactor::for_bulk(&tokens);
        Ok((Scanner { redactor, names }, opened.epoch))
    }
}

/// One file being scanned, in pieces. As [`crate::job::redact::StreamRedactor`]
/// holds back the last `max_len - 1` bytes so that a copy cut by a chunk
/// boundary is found whole in the next search; occurrences that end in
/// that held-back part were reported by the previous search and are not
/// reported again.
struct FileScan<'a> {
    scanner: &'a Scanner,
    carry: Zeroizing<Vec<u8>>,
    /// The bytes before `carry` (one escape's length), so that escapes at
    /// its start are read in context.
    context: Zeroizing<Vec<u8>>,
    /// File offset of `carry[0]`.
    base: u64,
    /// A position in the file whose line is known: (offset, newlines before it).
    cursor: (u64, u64),
    findings: Vec<Finding>,
    /// Per value: the index in `findings` of its last copy, so overlapping
    /// matches of one value (its raw form inside a case-changed one, a
    /// cookie's value inside the whole cookie) are one finding.
    last: std::collections::HashMap<usize, usize>,
    too_many: bool,
}

struct Finding {
    label: Label,
    /// For a copy found in a decoded view: which escapes it is written
    /// with (see [`escape_kind`]).
    escaped: Option<&'static str>,
    start: u64,
    end: u64,
    line: u64,
}

impl<'a> FileScan<'a> {
    fn new(scanner: &'a Scanner) -> FileScan<'a> {
        FileScan {
            scanner,
            carry: Zeroizing::new(Vec::new()),
            context: Zeroizing::new(Vec::new()),
            base: 0,
            cursor: (0, 0),
            findings: Vec::new(),
            last: std::collections::HashMap::new(),
            too_many: false,
        }
    }

    fn pending_len(&self, chunk: usize) -> usize {
        self.carry.len() + chunk
    }

    fn push(&mut self, chunk: &[u8]) {
        let mut data = Zeroizing::new(Vec::with_capacity(self.carry.len() + chunk.len()));
        data.extend_from_slice(&self.carry);
        data.extend_from_slice(chunk);
        let searched = self.carry.len();
        let mut found: Vec<Found> = Vec::new();
        self.scanner.redactor.find_in(&self.context, &data, |f| {
            if f.end > searched {
                found.push(f);
            }
        });
        found.sort_unstable_by_key(|f| (f.start, f.escaped, f.label.form, f.end));
        for f in found {
            self.record(&data, f);
        }
        let keep = self.scanner.redactor.max_len().saturating_sub(1);
        let cut = data.len().saturating_sub(keep);
        // Lines are counted up to the cut, so the cursor stays inside the
        // next search's bytes.
        let cut_abs = self.base + cut as u64;
        if self.cursor.0 < cut_abs {
            self.line_at(&data, cut_abs);
        }
        let mut context = Zeroizing::new(Vec::with_capacity(MAX_ESCAPE_LEN));
        let from_old = MAX_ESCAPE_LEN.saturating_sub(cut).min(self.context.len());
        context.extend_from_slice(&self.context[self.context.len() - from_old..]);
        context.extend_from_slice(&data[cut.saturating_sub(MAX_ESCAPE_LEN)..cut]);
        self.context.zeroize();
        self.context = context;
        self.carry.zeroize();
        self.carry = Zeroizing::new(data[cut..].to_vec());
        self.base = cut_abs;
    }

    /// The number of newlines before file offset `at`, which lies in
    /// `data` (the bytes from `self.base`); moves the cursor there.
    fn line_at(&mut self, data: &[u8], at: u64) -> u64 {
        let rel = |x: u64| (x - self.base) as usize;
        let (pos, lines) = self.cursor;
        let lines = if at >= pos {
            lines + memchr::memchr_iter(b'\n', &data[rel(pos)..rel(at)]).count() as u64
        } else {
            lines - memchr::memchr_iter(b'\n', &data[rel(at)..rel(pos)]).count() as u64
        };
        self.cursor = (at, lines);
        lines
    }

    fn record(&mut self, data: &[u8], f: Found) {
        let (start, end) = (self.base + f.start as u64, self.base + f.end as u64);
        if let Some(&i) = self.last.get(&f.label.token) {
            let prev = &mut self.findings[i];
            if start < prev.end {
                prev.end = prev.end.max(end);
                return;
            }
        }
        if self.findings.len() >= MAX_FINDINGS {
            self.too_many = true;
            return;
        }
        let line = self.line_at(data, start) + 1;
        self.last.insert(f.label.token, self.findings.len());
        self.findings.push(Finding {
            label: f.label,
            escaped: f.escaped.then(|| escape_kind(&data[f.start..f.end])),
            start,
            end,
            line,
        });
    }

    /// The answer for this file. The held-back bytes were searched with
    /// the last piece already.
    fn finish(mut self, id: u64) -> Result<ScanReport, ScanError> {
        self.carry.zeroize();
        if self.too_many {
            return Err(ScanError::TooManyFindings);
        }
        let names = &self.scanner.names;
        let findings = self
            .findings
            .iter()
            .map(|f| ScanFinding {
                credential: names[f.label.token].clone(),
                form: match (f.escaped, f.label.form) {
                    (None, form) => form.label().to_owned(),
                    (Some(kind), Form::Raw | Form::CaseChanged | Form::Latin1) => kind.to_owned(),
                    (Some(kind), form) => format!("{}-{kind}", form.label()),
                },
                line: f.line,
                offset: f.start,
                len: f.end - f.start,
            })
            .collect();
        Ok(ScanReport { id, findings })
    }
}

/// Which escape syntax a partly escaped copy uses, named as the whole-value
/// forms are (`percent`, `json-escape`, `html`); `escaped` for a mix or
/// anything else. Only the copy's own bytes are looked at, and only for
/// which syntax they use: the name says nothing about the value.
fn escape_kind(copy: &[u8]) -> &'static str {
    // `intro` followed by `hex` hex digits somewhere in the copy.
    let escape = |intro: &[u8], hex: usize| {
        memchr::memmem::find_iter(copy, intro).any(|i| {
            let digits = copy.get(i + intro.len()..i + intro.len() + hex);
            digits.is_some_and(|d| d.iter().all(u8::is_ascii_hexdigit))
        })
    };
    let has = |needle: &[u8]| memchr::memmem::find(copy, needle).is_some();
    let html = ["&#", "&amp;", "&lt;", "&gt;", "&quot;", "&apos;"];
    let kinds = [
        (
            escape(b"\\u", 4) || has(b"\\/") || has(b"\\\""),
            "json-escape",
        ),
        (escape(b"%", 2), "percent"),
        (html.iter().any(|h| has(h.as_bytes())), "html"),
        (escape(b"\\x", 2), "backslash-escape"),
        (escape(b"=", 2), "quoted-printable"),
    ];
    let mut found = kinds.iter().filter(|(yes, _)| *yes);
    match (found.next(), found.next()) {
        (Some((_, kind)), None) => kind,
        _ => "escaped",
    }
}

/// Runs a scan session on the client's connection: `Done` once the
/// matcher is built, then one answer per `ScanFile`, until `End`. Returns
/// whether the connection can carry on.
pub async fn session<S>(stream: &mut S, state: &State, peer: &Peer) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let built = if multi_thread() {
        tokio::task::block_in_place(|| Scanner::new(state))
    } else {
        Scanner::new(state)
    };
    let (scanner, epoch) = match built {
        Ok(v) => v,
        Err(e) => {
            return write_frame_async(stream, &Response::Error(e.into()))
                .await
                .is_ok();
        }
    };
    tracing::debug!(
        "pid {}: scan session over {} stored values",
        peer.pid_str(),
        scanner.names.len()
    );
    if write_frame_async(stream, &Response::Done).await.is_err() {
        return false;
    }
    let idle = state.config.idle_timeout;
    let mut files = 0u64;
    let carry_on = loop {
        let next = tokio::select! {
            r = tokio::time::timeout(idle, read_frame_async::<_, Request>(stream)) => r,
            () = epoch.ended() => {
                refuse(stream, ScanError::LockedMeanwhile).await;
                break false;
            }
        };
        let id = match next {
            Ok(Ok(Some(Request::ScanFile { id }))) => id,
            Ok(Ok(Some(Request::End))) => {
                break write_frame_async(stream, &Response::Done).await.is_ok();
            }
            Ok(Ok(Some(_))) => {
                refuse(stream, ScanError::ExpectedChunk).await;
                break false;
            }
            _ => break false,
        };
        files += 1;
        let limit = state.config.request_timeout;
        let deadline = Instant::now() + limit;
        let scanned = tokio::select! {
            r = timeout_at(deadline, scan_file(stream, &scanner, state.config.max_body, &epoch, id)) => {
                r.unwrap_or(Err((ScanError::Timeout { limit }, false)))
            }
            () = epoch.ended() => Err((ScanError::LockedMeanwhile, false)),
        };
        let (resp, in_step) = match scanned {
            Ok(report) => (Response::ScanFindings(report), true),
            Err((e, in_step)) => (Response::Error(reply(e)), in_step),
        };
        // An answer holds names and positions, never a value: it may go
        // out after a lock (which is how the client learns of it), within
        // the file's time.
        let written = matches!(
            timeout_at(deadline + FAREWELL, write_frame_async(stream, &resp)).await,
            Ok(Ok(()))
        );
        if !(written && in_step) {
            break false;
        }
    };
    tracing::debug!(
        "pid {}: scan session ended after {files} files",
        peer.pid_str()
    );
    carry_on
}

/// How long vaultd tries to answer once a file's time is up.
const FAREWELL: Duration = Duration::from_secs(2);

async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, e: ScanError) -> bool {
    tokio::time::timeout(
        FAREWELL,
        write_frame_async(stream, &Response::Error(reply(e))),
    )
    .await
    .is_ok_and(|r| r.is_ok())
}

fn multi_thread() -> bool {
    tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
}

/// Reads one file's pieces up to its `End` and scans them. A file over
/// `max` is read to its end without being searched, so the session stays
/// in step (`true` in the error) and the client can go on to the next.
async fn scan_file<S>(
    stream: &mut S,
    scanner: &Scanner,
    max: usize,
    epoch: &Epoch,
    id: u64,
) -> Result<ScanReport, (ScanError, bool)>
where
    S: AsyncRead + Unpin,
{
    let mut scan = FileScan::new(scanner);
    let mut total = 0usize;
    // Small pieces are gathered before a search: each search also goes
    // over the held-back bytes, so a client sending one byte per frame
    // would otherwise cost a search of that window per byte.
    let mut pending: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(GATHER));
    let search = |scan: &mut FileScan<'_>, bytes: &[u8]| {
        if scan.pending_len(bytes.len()) > REDACT_INLINE_MAX && multi_thread() {
            tokio::task::block_in_place(|| scan.push(bytes));
        } else {
            scan.push(bytes);
        }
    };
    loop {
        match read_frame_async::<_, Request>(stream).await {
            Ok(Some(Request::Chunk(mut c))) => {
                if !epoch.is_current() {
                    c.zeroize();
                    return Err((ScanError::LockedMeanwhile, false));
                }
                total = total.saturating_add(c.len());
                if total <= max {
                    if c.len() >= GATHER {
                        if !pending.is_empty() {
                            search(&mut scan, &pending);
                            pending.clear();
                        }
                        search(&mut scan, &c);
                    } else {
                        if pending.len() + c.len() > pending.capacity() {
                            // Never reallocated: no copy left in freed memory.
                            search(&mut scan, &pending);
                            pending.clear();
                        }
                        pending.extend_from_slice(&c);
                    }
                }
                c.zeroize();
            }
            Ok(Some(Request::End)) if total > max => {
                return Err((ScanError::TooLarge { max }, true));
            }
            Ok(Some(Request::End)) => {
                search(&mut scan, &pending);
                return scan.finish(id).map_err(|e| (e, true));
            }
            Ok(Some(_)) => return Err((ScanError::ExpectedChunk, false)),
            Ok(None) | Err(_) => return Err((ScanError::ExpectedChunk, false)),
        }
    }
}

/// Pieces smaller than this are gathered into one search (see `scan_file`).
const GATHER: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner(tokens: &[(&str, &[u8])]) -> Scanner {
        let values: Vec<&[u8]> = tokens.iter().map(|t| t.1).collect();
        Scanner {
            redactor: Redactor::for_tokens(&values),
            names: tokens.iter().map(|t| t.0.to_owned()).collect(),
        }
    }

    /// (line, credential, form, offset, len) of every finding in `body`
    /// sent in pieces of `size` bytes.
    fn scan(s: &Scanner, body: &[u8], size: usize) -> Vec<(u64, String, String, u64, u64)> {
        let mut f = FileScan::new(s);
        for piece in body.chunks(size.max(1)) {
            f.push(piece);
        }
        f.finish(0)
            .unwrap()
            .findings
            .into_iter()
            .map(|f| (f.line, f.credential, f.form, f.offset, f.len))
            .collect()
    }

    const TOKEN: &[u8] = b"tok-0123456789abcdef-XYZ/+=";

    #[test]
    fn json_u_escape_of_one_char() {
        let s = scanner(&[("mr", TOKEN)]);
        // ASP.NET's JSON writes `+` as `\u002B`: found in a decoded view,
        // and the range covers the escape as written.
        let body = b"a\n{\"a\":\"tok-0123456789abcdef-XYZ/\\u002B=\"}\n";
        let got = scan(&s, body, 1 << 20);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, 2);
        assert_eq!(got[0].2, "json-escape");
        assert_eq!(got[0].3, 8);
        assert_eq!(got[0].4, 32);
    }

    #[test]
    fn every_chunk_size_gives_the_same_findings() {
        let s = scanner(&[("a", TOKEN), ("b", b"another-secret-value-42")]);
        let mut body = Vec::new();
        for i in 0..30 {
            body.extend_from_slice(format!("line {i} ").as_bytes());
            if i % 7 == 3 {
                body.extend_from_slice(TOKEN);
            }
            if i % 11 == 5 {
                body.extend_from_slice(b"q=another%2Dsecret%2Dvalue%2D42");
            }
            body.push(b'\n');
        }
        let whole = scan(&s, &body, body.len());
        assert_eq!(whole.len(), 7, "{whole:?}");
        assert_eq!(whole[0].0, 4);
        for size in 1..80 {
            assert_eq!(scan(&s, &body, size), whole, "chunk size {size}");
        }
    }

    #[test]
    fn partly_escaped_copies_are_named_by_their_escapes() {
        let s = scanner(&[("mr", TOKEN)]);
        for (copy, form) in [
            (&b"tok-0123456789abcdef-XYZ%2F%2B="[..], "percent"),
            (b"tok-0123456789abcdef-XYZ&#47;&#43;=", "html"),
            (b"tok-0123456789abcdef-XYZ\\x2F+=", "backslash-escape"),
            (b"tok-0123456789abcdef-XYZ%2F\\u002B=", "escaped"),
        ] {
            let mut body = b"k: ".to_vec();
            body.extend_from_slice(copy);
            let got = scan(&s, &body, 1 << 20);
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].2, form, "{}", String::from_utf8_lossy(copy));
            assert_eq!(got[0].4, copy.len() as u64);
        }
    }
}
