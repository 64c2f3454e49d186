//! Removes echoes of a credential's token from a response before it leaves
//! the daemon, in case an upstream reflects request headers (httpbin-style
//! echo endpoints, error pages, debug dumps).
//!
//! Every pattern is derived from the token, so each lives in a zeroizing
//! buffer built at its final size (no reallocation leaves a copy behind in
//! freed memory).

use std::fmt;

use base64::Engine;
use base64::engine::Config as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use memchr::memmem;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use zeroize::{Zeroize, Zeroizing};

/// RFC 3986 unreserved characters left alone (Python's `quote(safe="")`,
/// most URL libraries).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// WHATWG application/x-www-form-urlencoded: leaves `*-._`, space is `+`.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// Base64 "cores" (the characters that do not depend on neighbouring bytes,
/// for the token starting at each offset within a 3-byte group) are only
/// used when at least this long, so a short token cannot make random data
/// match.
const MIN_CORE: usize = 16;

/// Removes echoes of a token from a response before it leaves the daemon.
#[derive(Clone)]
pub struct Redactor {
    /// Longest first, no duplicates, none empty.
    patterns: Vec<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

impl Redactor {
    /// What replaces every echo of the token.
    pub const MARK: &'static [u8] = b"[redacted]";

    /// Patterns: the raw token; base64 STANDARD and URL_SAFE, each padded and
    /// unpadded, plus the offset-independent core of each alphabet's encoding
    /// at the three alignments (so the token is found inside a larger base64
    /// blob); percent-encoded with every non-alphanumeric byte encoded and
    /// with only non-unreserved bytes encoded, each with upper- and
    /// lower-case hex; form-urlencoded ('+' for space). Deduplicated.
    pub fn new(token: &[u8]) -> Redactor {
        let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        if token.is_empty() {
            return Redactor { patterns };
        }
        patterns.push(copy(token));
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            patterns.push(b64(engine, token));
        }
        if token.len() >= 12 {
            for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                for offset in 0..3 {
                    let core = b64_core(engine, token, offset);
                    if core.len() >= MIN_CORE {
                        patterns.push(core);
                    }
                }
            }
        }
        for set in [NON_ALPHANUMERIC, UNRESERVED] {
            let upper = percent(token, set, false);
            let lower = lower_hex(&upper);
            patterns.push(upper);
            patterns.push(lower);
        }
        let form = percent(token, FORM, true);
        patterns.push(lower_hex(&form));
        patterns.push(form);

        patterns.retain(|p| !p.is_empty());
        patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        patterns.dedup();
        Redactor { patterns }
    }

    /// Replaces every occurrence of every pattern with MARK. Overlapping or
    /// adjacent occurrences (of the same or different patterns) become one
    /// MARK, so no byte of any occurrence survives. Returns the input
    /// unchanged (no copy) when nothing matches; otherwise the input buffer,
    /// which held the echo, is zeroized before it is freed.
    pub fn redact(&self, data: Vec<u8>) -> Vec<u8> {
        let spans = self.spans(&data);
        replace_spans(data, &spans)
    }

    /// Length of the longest pattern: how much of a streamed body may still
    /// be the start of an echo.
    fn max_len(&self) -> usize {
        self.patterns.first().map_or(0, |p| p.len())
    }

    /// For header values: the same on bytes, converted back lossily (a
    /// replaced span could in theory cut a multi-byte character).
    pub fn redact_str(&self, s: &str) -> String {
        let out = self.redact(s.as_bytes().to_vec());
        match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => {
                let mut bytes = e.into_bytes();
                let s = String::from_utf8_lossy(&bytes).into_owned();
                bytes.zeroize();
                s
            }
        }
    }

    /// For strings the daemon builds from upstream text (URLs, header names,
    /// error messages): as [`Redactor::redact_str`], and also ignoring ASCII
    /// case, because URL parsing lower-cases hosts and HTTP lower-cases
    /// header names, so an echo there may no longer match byte for byte.
    /// Over-redacting a message costs nothing.
    pub fn redact_message(&self, s: &str) -> String {
        let folded = Redactor {
            patterns: self
                .patterns
                .iter()
                .map(|p| Zeroizing::new(p.to_ascii_lowercase()))
                .collect(),
        };
        let mut lower = Zeroizing::new(s.as_bytes().to_ascii_lowercase());
        let mut spans = self.spans(s.as_bytes());
        spans.extend(folded.spans(&lower));
        lower.zeroize();
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (st, e) in spans {
            match merged.last_mut() {
                Some(last) if st <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((st, e)),
            }
        }
        let out = replace_spans(s.as_bytes().to_vec(), &merged);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Sorted, merged [start, end) spans covering every occurrence.
    fn spans(&self, data: &[u8]) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        // Patterns are sorted longest first: most header values are shorter
        // than any encoding of the token and need no search at all.
        if self.patterns.last().is_none_or(|p| data.len() < p.len()) {
            return spans;
        }
        for p in self.patterns.iter().filter(|p| p.len() <= data.len()) {
            let finder = memmem::Finder::new(p.as_slice());
            let mut from = 0;
            // Overlapping search: restart one byte after each hit.
            while let Some(i) = finder.find(&data[from..]) {
                let start = from + i;
                spans.push((start, start + p.len()));
                from = start + 1;
                if from >= data.len() {
                    break;
                }
            }
        }
        if spans.len() < 2 {
            return spans;
        }
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }
}

/// Replaces each `[start, end)` span (sorted, disjoint) with the mark; wipes
/// the input when anything matched.
fn replace_spans(mut data: Vec<u8>, spans: &[(usize, usize)]) -> Vec<u8> {
    if spans.is_empty() {
        return data;
    }
    let removed: usize = spans.iter().map(|(s, e)| e - s).sum();
    let mut out = Vec::with_capacity(data.len() - removed + spans.len() * Redactor::MARK.len());
    let mut pos = 0;
    for &(start, end) in spans {
        out.extend_from_slice(&data[pos..start]);
        out.extend_from_slice(Redactor::MARK);
        pos = end;
    }
    out.extend_from_slice(&data[pos..]);
    data.zeroize();
    out
}

/// Redacts a body that arrives in pieces. Bytes that could still be the
/// beginning of an echo are held back until the next piece (or the end), so
/// an echo split across chunk boundaries is caught like any other.
#[derive(Debug)]
pub struct StreamRedactor {
    redactor: Redactor,
    carry: Zeroizing<Vec<u8>>,
}

impl StreamRedactor {
    pub fn new(redactor: Redactor) -> StreamRedactor {
        StreamRedactor {
            redactor,
            carry: Zeroizing::new(Vec::new()),
        }
    }

    /// Takes the next piece; returns what can safely be passed on now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut data = Vec::with_capacity(self.carry.len() + chunk.len());
        data.extend_from_slice(&self.carry);
        data.extend_from_slice(chunk);
        self.carry.clear();
        let keep = self.redactor.max_len().saturating_sub(1);
        let mut cut = data.len().saturating_sub(keep);
        let spans = self.redactor.spans(&data);
        // An echo straddling the cut is held back whole.
        if let Some(&(s, _)) = spans.iter().find(|&&(s, e)| s < cut && e > cut) {
            cut = s;
        }
        self.carry.extend_from_slice(&data[cut..]);
        data[cut..].zeroize();
        data.truncate(cut);
        let done: Vec<(usize, usize)> = spans.into_iter().filter(|&(_, e)| e <= cut).collect();
        replace_spans(data, &done)
    }

    /// Whatever is still held back, redacted.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut *self.carry);
        self.redactor.redact(rest)
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn echoes_split_at_every_boundary_are_caught() {
        let token = b"tok-0123456789abcdef-XYZ";
        let body: Vec<u8> = [&b"head "[..], token, b" mid ", token, b" tail"].concat();
        let whole = Redactor::new(token).redact(body.clone());
        for size in 1..body.len() {
            let mut s = StreamRedactor::new(Redactor::new(token));
            let mut out = Vec::new();
            for piece in body.chunks(size) {
                out.extend(s.push(piece));
            }
            out.extend(s.finish());
            assert_eq!(out, whole, "chunk size {size}");
        }
    }

    #[test]
    fn base64_echo_split_across_chunks() {
        let token = b"secret-token-value-1234";
        let b64 = STANDARD.encode(token);
        let body = format!("x={b64};").into_bytes();
        let mut s = StreamRedactor::new(Redactor::new(token));
        let (a, b) = body.split_at(7);
        let mut out = s.push(a);
        out.extend(s.push(b));
        out.extend(s.finish());
        assert_eq!(out, b"x=[redacted];");
    }
}

fn copy(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(bytes.len()));
    v.extend_from_slice(bytes);
    v
}

fn b64<E: Engine>(engine: &E, input: &[u8]) -> Zeroizing<Vec<u8>> {
    let len = base64::encoded_len(input.len(), engine.config().encode_padding())
        .expect("token length is bounded");
    let mut s = Zeroizing::new(String::with_capacity(len));
    engine.encode_string(input, &mut s);
    copy(s.as_bytes())
}

/// The base64 characters of `token` placed `offset` bytes into a 3-byte
/// group that depend on the token's bytes alone.
fn b64_core<E: Engine>(engine: &E, token: &[u8], offset: usize) -> Zeroizing<Vec<u8>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(token.len() + offset));
    buf.resize(offset, 0);
    buf.extend_from_slice(token);
    let encoded = b64(engine, &buf);
    // Character c covers bits [6c, 6c + 6); the token covers
    // [8 * offset, 8 * (offset + len)).
    let first = (8 * offset).div_ceil(6);
    let end = (8 * (offset + token.len())) / 6;
    copy(&encoded[first..end.min(encoded.len())])
}

fn percent(token: &[u8], set: &'static AsciiSet, plus_for_space: bool) -> Zeroizing<Vec<u8>> {
    let mut s = Zeroizing::new(String::with_capacity(token.len() * 3));
    for (i, chunk) in token.split(|&b| plus_for_space && b == b' ').enumerate() {
        if i > 0 {
            s.push('+');
        }
        for piece in percent_encoding::percent_encode(chunk, set) {
            s.push_str(piece);
        }
    }
    copy(s.as_bytes())
}

/// The same encoding with lower-case hex digits after each '%'.
fn lower_hex(encoded: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut v = copy(encoded);
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' && i + 2 < v.len() {
            v[i + 1] = v[i + 1].to_ascii_lowercase();
            v[i + 2] = v[i + 2].to_ascii_lowercase();
            i += 3;
        } else {
            i += 1;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"s3cr3t/t0k+en=with space&more!";

    fn r() -> Redactor {
        Redactor::new(TOKEN)
    }

    fn count(hay: &[u8], needle: &[u8]) -> usize {
        memmem::find_iter(hay, needle).count()
    }

    #[test]
    fn raw_echo_in_body() {
        let mut body = b"{\"headers\":{\"Access-Token\":\"".to_vec();
        body.extend_from_slice(TOKEN);
        body.extend_from_slice(b"\"},\"again\":\"");
        body.extend_from_slice(TOKEN);
        body.extend_from_slice(b"\"}");
        let out = r().redact(body);
        assert_eq!(
            out,
            b"{\"headers\":{\"Access-Token\":\"[redacted]\"},\"again\":\"[redacted]\"}"
        );
    }

    #[test]
    fn base64_echoes() {
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            let enc = engine.encode(TOKEN);
            let body = format!("token={enc};").into_bytes();
            let out = r().redact(body);
            assert_eq!(out, b"token=[redacted];", "{enc}");
        }
        // Inside a larger blob, at every alignment.
        for prefix in [&b""[..], b"u", b"us", b"user:"] {
            let mut plain = prefix.to_vec();
            plain.extend_from_slice(TOKEN);
            plain.extend_from_slice(b"-trailer");
            let enc = STANDARD.encode(&plain);
            let out = r().redact(enc.clone().into_bytes());
            assert!(count(&out, Redactor::MARK) == 1, "{enc} -> {out:?}");
            assert!(out.len() < enc.len(), "{enc}");
        }
        // The Bearer header as an echo: "Bearer <token>" base64-encoded.
        let blob = URL_SAFE.encode(b"Authorization: Bearer s3cr3t/t0k+en=with space&more!\n");
        let out = r().redact(blob.into_bytes());
        assert_eq!(count(&out, Redactor::MARK), 1);
    }

    #[test]
    fn percent_echoes() {
        let forms = [
            "s3cr3t%2Ft0k%2Ben%3Dwith%20space%26more%21",
            "s3cr3t%2ft0k%2ben%3dwith%20space%26more%21",
            "s3cr3t%2Ft0k%2Ben%3Dwith+space%26more%21",
            "s3cr3t%2ft0k%2ben%3dwith+space%26more%21",
        ];
        for f in forms {
            let body = format!("GET /echo?t={f}&x=1").into_bytes();
            let out = r().redact(body);
            assert_eq!(out, b"GET /echo?t=[redacted]&x=1", "{f}");
        }
        // A JWT-like token: '-', '.', '_' left alone by unreserved encoders,
        // encoded by the strict one.
        let jwt = b"eyJhbGci.eyJzdWIi.c2ln-_~x";
        let red = Redactor::new(jwt);
        for f in [
            "eyJhbGci%2EeyJzdWIi%2Ec2ln%2D%5F%7Ex",
            "eyJhbGci.eyJzdWIi.c2ln-_%7ex",
        ] {
            assert_eq!(red.redact(f.as_bytes().to_vec()), Redactor::MARK, "{f}");
        }
    }

    #[test]
    fn header_value() {
        let value = format!("Bearer {}", std::str::from_utf8(TOKEN).unwrap());
        assert_eq!(r().redact_str(&value), "Bearer [redacted]");
        let enc = STANDARD.encode(TOKEN);
        assert_eq!(r().redact_str(&format!("t={enc}")), "t=[redacted]");
        assert_eq!(r().redact_str("nothing here"), "nothing here");
    }

    #[test]
    fn no_match_returns_the_same_buffer() {
        let data = b"an ordinary response body, no secrets in it".repeat(100);
        let ptr = data.as_ptr();
        let expected = data.clone();
        let out = r().redact(data);
        assert_eq!(out, expected);
        assert_eq!(out.as_ptr(), ptr, "copied although nothing matched");
        assert!(r().redact(Vec::new()).is_empty());
    }

    #[test]
    fn overlapping_and_adjacent() {
        let red = Redactor::new(b"abab");
        assert_eq!(red.redact(b"xabababx".to_vec()), b"x[redacted]x");
        assert_eq!(red.redact(b"ababab".to_vec()), b"[redacted]");
        assert_eq!(red.redact(b"abababab".to_vec()), b"[redacted]");
        assert_eq!(red.redact(b"aba".to_vec()), b"aba");
        // Raw and encoded forms side by side merge into one mark.
        let mut body = TOKEN.to_vec();
        body.extend_from_slice(STANDARD.encode(TOKEN).as_bytes());
        assert_eq!(r().redact(body), Redactor::MARK);
    }

    #[test]
    fn patterns_are_deduplicated_and_sorted() {
        // An alphanumeric token: every percent form equals the raw token.
        let red = Redactor::new(b"abcdef");
        let mut seen = red.patterns.clone();
        seen.dedup();
        assert_eq!(seen.len(), red.patterns.len());
        assert_eq!(
            red.patterns.len(),
            2,
            "raw + base64 (all four base64 forms agree)"
        );
        assert!(red.patterns.windows(2).all(|w| w[0].len() >= w[1].len()));
        assert!(red.patterns.iter().all(|p| !p.is_empty()));
        assert!(Redactor::new(b"").patterns.is_empty());
        assert_eq!(Redactor::new(b"").redact(b"abc".to_vec()), b"abc");
    }

    #[test]
    fn debug_does_not_show_patterns() {
        let s = format!("{:?}", r());
        assert!(!s.contains("s3cr3t"), "{s}");
    }

    #[test]
    fn binary_token_and_lossy_header() {
        let red = Redactor::new(b"\xe9\xe9secret\xff");
        let out = red.redact(b"x\xe9\xe9secret\xffy".to_vec());
        assert_eq!(out, b"x[redacted]y");
        // A token ending inside a multi-byte character of the header value.
        let red = Redactor::new(b"zz\xc3");
        assert_eq!(red.redact_str("azz\u{e9}b"), "a[redacted]\u{fffd}b");
    }

    #[test]
    fn messages_are_redacted_ignoring_case() {
        let r = Redactor::new(b"TOK-AbCdEf0123456789");
        let msg = r.redact_message("redirect to http://tok-abcdef0123456789.example/ refused");
        assert_eq!(msg, "redirect to http://[redacted].example/ refused");
        assert_eq!(r.redact_message("nothing here"), "nothing here");
    }
}
