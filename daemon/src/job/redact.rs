//! Removes echoes of a credential's token from a response before it leaves
//! the daemon, in case an upstream reflects request headers (httpbin-style
//! echo endpoints, error pages, debug dumps).
//!
//! Every pattern is derived from the token, so each lives in a zeroizing
//! buffer built at its final size (no reallocation leaves a copy behind in
//! freed memory). The search is one Aho-Corasick automaton over all of them:
//! linear in the input whatever the token looks like (a matcher that
//! restarts after every hit is quadratic on a periodic token such as
//! `aaaa…` against a body of `a`). The automaton holds the patterns in its
//! own tables, which the crate does not zeroize; it is built per job, lives
//! only as long as the job, and its memory is wiped when freed by vaultd's
//! global allocator (`secure::alloc::Wiping`), like reqwest's buffers.
//!
//! # The forms an echo takes
//!
//! Derived from how servers and frameworks write a string they were given,
//! each applied to the whole token (and matched ignoring ASCII case, which
//! covers upper/lower-case hex digits and a token whose letters were case
//! changed; over-redacting is safe):
//!
//! - raw: header dumps, error pages ("invalid token …"), logs;
//! - base64, standard and URL-safe alphabets, padded and not (Basic auth,
//!   JWT-style blobs, `btoa`), and the offset-independent "core" of each at
//!   the three byte alignments, so the token is found inside a larger base64
//!   blob (e.g. `user:token`);
//! - base64 wrapped by MIME (76 columns) and PEM (64 columns), LF and CRLF
//!   (Python `base64.encodebytes`, `openssl base64`, mail), token first;
//! - percent-encoding with every non-alphanumeric byte encoded, with only
//!   non-unreserved bytes encoded (RFC 3986, Python `quote(safe="")`), each
//!   also leaving `/` alone (Python `quote()` default, many path encoders),
//!   and form-urlencoding (`+` for space); base64 forms percent-encoded
//!   (a Basic credential echoed in a query string);
//! - hex of the bytes (`xxd -p`, `bin2hex`, `.hex()`), lower or upper;
//! - JSON string escapes as real encoders write them: minimal (serde_json,
//!   `JSON.stringify`), `/` as `\/` (PHP `json_encode`), non-ASCII as
//!   `\uXXXX` (Python `json.dumps`, PHP), `<`, `>`, `&`, U+2028/9 as
//!   `\u00XX` (Go `encoding/json`), in every combination; every character as
//!   `\uXXXX`; base64 forms with `\/`;
//! - HTML escaping of `& < > " '` (`&#39;` or `&#x27;`), optionally `/` as
//!   `&#x2F;` (Django, Jinja2, PHP `htmlspecialchars`, OWASP encoders);
//! - UTF-16, little- and big-endian, as bytes (Windows and Java stacks,
//!   `TextEncoder`-less JS dumps);
//! - the token and its base64 forms with *any subset* of their characters
//!   escaped, in any mix of escape syntaxes, and the token's Unicode case
//!   variants: searched in the decoded views of [`super::unescape`] around
//!   every escape.
//!
//! Not caught (SECURITY.md says so): base64 wrapped with the token starting
//! mid-line whose core crosses a line break, escapes nested in escapes, and
//! every transformation no pattern list can follow (hashing, encryption,
//! reversal, splitting across responses).

use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine;
use base64::engine::Config as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use zeroize::{Zeroize, Zeroizing};

/// RFC 3986 unreserved characters left alone (Python's `quote(safe="")`,
/// most URL libraries).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// As [`UNRESERVED`], and `/` left alone: Python's `quote()` default
/// (`safe='/'`), path-segment encoders.
const UNRESERVED_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Every non-alphanumeric byte encoded except `/`.
const STRICT_SLASH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/');

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
const MIN_CORE: usize = 12;

/// Removes echoes of a token from a response before it leaves the daemon.
/// Cloning shares the automaton.
#[derive(Clone)]
pub struct Redactor {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// Longest first, no duplicates, none empty.
    patterns: Vec<Zeroizing<Vec<u8>>>,
    /// Which token and form each pattern is (same order as `patterns`):
    /// the redactor ignores them, `vaultctl scan` reports them.
    labels: Vec<Label>,
    /// All patterns, ASCII case-insensitive, standard (overlapping) semantics.
    matcher: AhoCorasick,
    /// The tokens themselves and their Unicode case variants, searched in
    /// the decoded views of a response (see [`super::unescape`]).
    plain: Vec<Zeroizing<Vec<u8>>>,
    /// As `labels`, for `plain`.
    plain_labels: Vec<Label>,
    /// Built on first use: most responses hold no escape worth a view.
    plain_matcher: std::sync::OnceLock<AhoCorasick>,
    /// Whether a token has a byte outside ASCII: the Latin-1 view is
    /// searched too (see [`super::unescape::views`]).
    latin1: bool,
    /// The ASCII bytes whose escapes are decoded (all of them; see
    /// [`super::unescape::Syntax::needed`]).
    needed: [u64; 2],
}

/// How many bytes of a response one decoded byte can come from at most
/// (`&#x0002b;`, a surrogate pair `\ud83d\ude00` for four bytes, `\u00c3`
/// for one byte of mojibake): bounds how much a streamed body holds back.
pub(crate) const MAX_ESCAPE_LEN: usize = 12;

/// Which encoding of a token a pattern is. `vaultctl scan` names it in a
/// finding; the order is the preference when two forms are the same bytes
/// (an alphanumeric token's percent form is the raw token: it is `raw`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Form {
    Raw,
    /// Unicode or locale case mapping (ASCII case is ignored anyway).
    CaseChanged,
    /// One byte per character below U+0100.
    Latin1,
    Base64,
    Base64Url,
    /// Standard base64 wrapped at 64 or 76 columns.
    Base64Wrapped,
    /// Base64 with `/` written `\/`.
    Base64Json,
    Base64Percent,
    Percent,
    /// A JSON string body as an encoder writes it.
    Json,
    /// Every character as `\uXXXX`.
    JsonEscape,
    Html,
    Hex,
    Utf16,
}

impl Form {
    /// The stable name scan output and `--json` use (docs/json.md).
    pub fn label(self) -> &'static str {
        match self {
            Form::Raw => "raw",
            Form::CaseChanged => "case-changed",
            Form::Latin1 => "latin1",
            Form::Base64 => "base64",
            Form::Base64Url => "base64url",
            Form::Base64Wrapped => "base64-wrapped",
            Form::Base64Json => "base64-json",
            Form::Base64Percent => "base64-percent",
            Form::Percent => "percent",
            Form::Json => "json",
            Form::JsonEscape => "json-escape",
            Form::Html => "html",
            Form::Hex => "hex",
            Form::Utf16 => "utf16",
        }
    }
}

/// Which of the tokens given to [`Redactor::for_tokens`] (by index) a
/// pattern comes from, and in which form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label {
    pub token: usize,
    pub form: Form,
}

/// One occurrence of a pattern: `[start, end)` of the searched bytes.
/// `escaped`: found in a decoded view ([`super::unescape`]), so the span
/// covers the escapes as written.
#[derive(Clone, Copy, Debug)]
pub struct Found {
    pub start: usize,
    pub end: usize,
    pub label: Label,
    pub escaped: bool,
}

/// Lower-cases (matching ignores ASCII case), drops empties, sorts longest
/// first and removes duplicates, keeping the lowest label of each.
fn settle(mut v: Vec<(Zeroizing<Vec<u8>>, Label)>) -> (Vec<Zeroizing<Vec<u8>>>, Vec<Label>) {
    for (p, _) in &mut v {
        p.make_ascii_lowercase();
    }
    v.retain(|(p, _)| !p.is_empty());
    v.sort_by(|a, b| {
        b.0.len()
            .cmp(&a.0.len())
            .then_with(|| a.0.cmp(&b.0))
            .then_with(|| a.1.cmp(&b.1))
    });
    v.dedup_by(|a, b| a.0 == b.0);
    v.into_iter().unzip()
}

/// A redactor that no job holds any more is gone; this only finds one that
/// a running job still holds.
#[derive(Clone)]
pub struct WeakRedactor(Option<std::sync::Weak<Inner>>);

impl WeakRedactor {
    pub fn upgrade(&self) -> Option<Redactor> {
        let inner = self.0.as_ref()?.upgrade()?;
        Some(Redactor { inner: Some(inner) })
    }

    pub fn is_alive(&self) -> bool {
        self.0.as_ref().is_some_and(|w| w.strong_count() > 0)
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("patterns", &self.patterns().len())
            .finish()
    }
}

impl Redactor {
    /// What replaces every echo of the token.
    pub const MARK: &'static [u8] = b"[redacted]";

    /// Every form listed in the module documentation, deduplicated (ASCII
    /// case folded, since matching ignores it), in one automaton.
    pub fn new(token: &[u8]) -> Redactor {
        Redactor::for_tokens(&[token])
    }

    /// One automaton for several tokens: a job's own, and the others sent
    /// to the same hosts, which a storing upstream may show it.
    pub fn for_tokens(tokens: &[&[u8]]) -> Redactor {
        Redactor::build(tokens, AhoCorasickKind::ContiguousNFA)
    }

    /// As [`Redactor::for_tokens`], for searching a lot of text with many
    /// tokens (`vaultctl scan`): the same patterns in a DFA, which follows
    /// one table entry per byte where the NFA walks failure links. For 100
    /// tokens it searches about twice as fast, for ~100 ms and some
    /// megabytes more to build: worth it once per scan session, not per job.
    pub fn for_bulk(tokens: &[&[u8]]) -> Redactor {
        Redactor::build(tokens, AhoCorasickKind::DFA)
    }

    fn build(tokens: &[&[u8]], kind: AhoCorasickKind) -> Redactor {
        // A header credential such as `Cookie: sid=SECRET` or
        // `Authorization: Token SECRET` is echoed by servers that parse it
        // as the value alone (`{"sid": "SECRET"}`): that part is a token too.
        let mut all: Vec<(usize, Zeroizing<Vec<u8>>)> = Vec::new();
        for (i, t) in tokens.iter().enumerate().filter(|(_, t)| !t.is_empty()) {
            all.push((i, copy(t)));
            all.extend(value_parts(t).into_iter().map(|p| (i, copy(p))));
        }
        let labelled = |token: usize| move |(form, p)| (p, Label { token, form });
        let mut patterns: Vec<(Zeroizing<Vec<u8>>, Label)> = all
            .iter()
            .flat_map(|(i, t)| forms(t).into_iter().map(labelled(*i)))
            .collect();
        if patterns.is_empty() {
            return Redactor { inner: None };
        }
        let mut plain: Vec<(Zeroizing<Vec<u8>>, Label)> = all
            .iter()
            .flat_map(|(i, t)| case_variants(t).into_iter().map(labelled(*i)))
            .collect();
        // Searched as they are too: most case-changed echoes hold no escape.
        patterns.extend(plain.iter().map(|(p, l)| (copy(p), *l)));
        // The base64 forms may come back partly escaped as well.
        plain.extend(
            all.iter()
                .flat_map(|(i, t)| b64_forms(t).into_iter().map(labelled(*i))),
        );
        let latin1 = all.iter().any(|(_, t)| !t.is_ascii());
        let (plain, plain_labels) = settle(plain);
        let (patterns, labels) = settle(patterns);
        // A contiguous NFA, never a DFA: for a 36-byte token it builds in
        // a third of the time (~0.2 ms, paid per job) with 1/20 of the
        // memory (15 KiB against 330 KiB) and searches about as fast; a
        // DFA's table (states x byte classes) would reach hundreds of MiB
        // for a long token.
        let matcher = build_matcher_of(&patterns, kind);
        Redactor {
            inner: Some(Arc::new(Inner {
                patterns,
                labels,
                matcher,
                latin1,
                // Which escapes the views decode never depends on the
                // tokens: a set chosen from their characters made the
                // views an oracle (a script's own probe value, echoed or
                // scanned with one character escaped, was found or not
                // depending on whether a stored token held that character).
                needed: super::unescape::ALL_ASCII,
                plain,
                plain_labels,
                plain_matcher: std::sync::OnceLock::new(),
            })),
        }
    }

    /// For sharing with jobs that run at the same time (`HttpPool::redactor`).
    pub fn downgrade(&self) -> WeakRedactor {
        WeakRedactor(self.inner.as_ref().map(Arc::downgrade))
    }

    fn patterns(&self) -> &[Zeroizing<Vec<u8>>] {
        self.inner.as_ref().map_or(&[], |i| &i.patterns)
    }

    /// Replaces every occurrence of every pattern with MARK. Overlapping or
    /// adjacent occurrences (of the same or different patterns) become one
    /// MARK, so no byte of any occurrence survives. Returns the input
    /// unchanged (no copy) when nothing matches; otherwise the input buffer,
    /// which held the echo, is zeroized before it is freed.
    pub fn redact(&self, data: Vec<u8>) -> Vec<u8> {
        let spans = self.spans(&data);
        replace_spans(data, &spans, false)
    }

    /// The longest pattern, or an escaped token (up to [`MAX_ESCAPE_LEN`]
    /// bytes for each of its bytes), whichever is longer: how much of a
    /// streamed body may still
    /// be the start of an echo.
    pub(crate) fn max_len(&self) -> usize {
        let Some(inner) = &self.inner else {
            return 0;
        };
        let forms = inner.patterns.first().map_or(0, |p| p.len());
        let escaped = inner.plain.first().map_or(0, |p| p.len()) * MAX_ESCAPE_LEN;
        forms.max(escaped)
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
    /// error messages), where URL parsing lower-cases hosts and HTTP
    /// lower-cases header names. Matching always ignores ASCII case, so this
    /// is [`Redactor::redact_str`]; the name says why the caller needs it.
    pub fn redact_message(&self, s: &str) -> String {
        self.redact_str(s)
    }

    /// Sorted, merged [start, end) spans covering every occurrence: one
    /// overlapping pass, linear in `data` plus the number of occurrences.
    fn spans(&self, data: &[u8]) -> Vec<(usize, usize)> {
        self.spans_in(&[], data)
    }

    /// As [`Redactor::spans`], for `data` that follows `ctx` (bytes already
    /// passed on by a stream): the escapes at the start of `data` are read
    /// as they are in the whole body.
    fn spans_in(&self, ctx: &[u8], data: &[u8]) -> Vec<(usize, usize)> {
        let mut merged: Vec<(usize, usize)> = Vec::new();
        let mut extra = Vec::new();
        self.find_in(ctx, data, |f| {
            if f.escaped {
                extra.push((f.start, f.end));
                return;
            }
            // Occurrences arrive in order of their end; one that starts
            // before the previous spans' ends swallows them.
            let (mut s, mut e) = (f.start, f.end);
            while let Some(&(ls, le)) = merged.last() {
                if s > le {
                    break;
                }
                s = s.min(ls);
                e = e.max(le);
                merged.pop();
            }
            merged.push((s, e));
        });
        if !extra.is_empty() {
            merged.extend(extra);
            merged.sort_unstable();
            merge_sorted(&mut merged);
        }
        merged
    }

    /// Every occurrence of every pattern in `data` (which follows `ctx`,
    /// as for [`Redactor::spans_in`]), with its label: the plain patterns
    /// in order of their end, then those found in the decoded views. The
    /// one search both the redactor and `vaultctl scan` run.
    pub(crate) fn find_in(&self, ctx: &[u8], data: &[u8], mut each: impl FnMut(Found)) {
        let Some(inner) = &self.inner else {
            return;
        };
        // Patterns are sorted longest first: most header values are shorter
        // than any encoding of the token and need no search at all.
        let shortest = inner
            .patterns
            .last()
            .map_or(0, |p| p.len())
            .min(inner.plain.last().map_or(0, |p| p.len()));
        if data.len() < shortest {
            return;
        }
        for m in inner.matcher.find_overlapping_iter(data) {
            each(Found {
                start: m.start(),
                end: m.end(),
                label: inner.labels[m.pattern().as_usize()],
                escaped: false,
            });
        }
        // The token with any of its characters escaped, in any syntax mix:
        // searched in the decoded views, mapped back to the original bytes.
        let reach = self.max_len();
        let views = super::unescape::views(inner.latin1, inner.needed);
        // The views without Latin-1 differ only in `=HH`: the first one's
        // windows (it has more) serve both, found in one pass.
        let mut shared: Option<Vec<(usize, usize)>> = None;
        for syntax in views.iter().copied() {
            let windows = if syntax.latin1 {
                super::unescape::windows(data, syntax, reach)
            } else {
                shared
                    .get_or_insert_with(|| super::unescape::windows(data, views[0], reach))
                    .clone()
            };
            for (ws, we) in windows {
                // A window at the start is read after the context.
                let lead = if ws == 0 { ctx } else { &[][..] };
                let view = if lead.is_empty() {
                    super::unescape::decode(&data[ws..we], syntax)
                } else {
                    let mut both = Zeroizing::new(Vec::with_capacity(lead.len() + we));
                    both.extend_from_slice(lead);
                    both.extend_from_slice(&data[..we]);
                    super::unescape::decode(&both, syntax)
                };
                let plain = inner
                    .plain_matcher
                    .get_or_init(|| build_matcher(&inner.plain));
                for m in plain.find_overlapping_iter(&view.bytes[..]) {
                    let (s, e) = view.source_span(m.start(), m.end());
                    // Wholly in the context: handled by the previous piece.
                    if e <= lead.len() {
                        continue;
                    }
                    each(Found {
                        start: ws + s.saturating_sub(lead.len()),
                        end: ws + e - lead.len(),
                        label: inner.plain_labels[m.pattern().as_usize()],
                        escaped: true,
                    });
                }
            }
        }
    }
}

/// One automaton over `patterns`, ASCII case-insensitive, overlapping.
fn build_matcher(patterns: &[Zeroizing<Vec<u8>>]) -> AhoCorasick {
    build_matcher_of(patterns, AhoCorasickKind::ContiguousNFA)
}

fn build_matcher_of(patterns: &[Zeroizing<Vec<u8>>], kind: AhoCorasickKind) -> AhoCorasick {
    AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .ascii_case_insensitive(true)
        .kind(Some(kind))
        .build(patterns.iter().map(|p| p.as_slice()))
        .expect("patterns are bounded by MAX_SECRET")
}

/// The shortest value part of a `name=value` or `scheme value` credential
/// that is redacted on its own: shorter ones would match ordinary text.
const MIN_VALUE_PART: usize = 8;

/// The parts of a header credential that servers echo on their own: each
/// value of `a=1; b=2` (a Cookie header, parsed), and what follows the
/// scheme of `Token abc`.
fn value_parts(token: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for pair in token.split(|&b| b == b';') {
        if let Some(i) = pair.iter().position(|&b| b == b'=') {
            out.push(pair[i + 1..].trim_ascii());
        }
    }
    if let Some(i) = token.iter().position(|&b| b == b' ') {
        out.push(token[i + 1..].trim_ascii());
    }
    out.retain(|v| v.len() >= MIN_VALUE_PART && v.len() < token.len());
    out
}

/// The token as it is, and with its case changed as other languages'
/// runtimes change it: Unicode upper and lower case (full mappings, so
/// `ß` becomes `SS`), and Turkish-locale casing (`i` to `İ`, `I` to `ı`),
/// which Java's `toUpperCase()` applies under a Turkish default locale.
/// ASCII case is left to the matcher, which ignores it.
fn case_variants(token: &[u8]) -> Vec<(Form, Zeroizing<Vec<u8>>)> {
    let mut out = vec![(Form::Raw, copy(token))];
    let Ok(s) = std::str::from_utf8(token) else {
        return out;
    };
    let variants: [Zeroizing<String>; 4] = [
        Zeroizing::new(s.to_uppercase()),
        Zeroizing::new(s.to_lowercase()),
        Zeroizing::new(
            s.chars()
                .flat_map(|c| match c {
                    'i' => vec!['\u{130}'],
                    c => c.to_uppercase().collect(),
                })
                .collect(),
        ),
        Zeroizing::new(
            s.chars()
                .flat_map(|c| match c {
                    'I' => vec!['\u{131}'],
                    c => c.to_lowercase().collect(),
                })
                .collect(),
        ),
    ];
    for v in variants.iter() {
        if v.as_bytes() != token {
            out.push((Form::CaseChanged, copy(v.as_bytes())));
        }
    }
    // The token in Latin-1 (one byte per character), as JavaScript's
    // `escape()` (`%C5`) and Latin-1 pages write it.
    if !s.is_ascii() && s.chars().all(|c| u32::from(c) < 0x100) {
        let mut v = Zeroizing::new(Vec::with_capacity(s.len()));
        v.extend(s.chars().map(|c| u32::from(c) as u8));
        out.push((Form::Latin1, v));
    }
    out
}

/// Replaces each `[start, end)` span (sorted, disjoint) with the mark; wipes
/// the input when anything matched. With `continued`, a first span starting
/// at 0 continues a mark already passed on and gets none of its own.
fn replace_spans(mut data: Vec<u8>, spans: &[(usize, usize)], continued: bool) -> Vec<u8> {
    if spans.is_empty() {
        return data;
    }
    let removed: usize = spans.iter().map(|(s, e)| e - s).sum();
    let mut out = Vec::with_capacity(data.len() - removed + spans.len() * Redactor::MARK.len());
    let mut pos = 0;
    for (i, &(start, end)) in spans.iter().enumerate() {
        out.extend_from_slice(&data[pos..start]);
        if !(continued && i == 0 && start == 0) {
            out.extend_from_slice(Redactor::MARK);
        }
        pos = end;
    }
    out.extend_from_slice(&data[pos..]);
    data.zeroize();
    out
}

/// Redacts a body that arrives in pieces. Bytes that could still be the
/// beginning of an echo (the last `max_len - 1`) are held back until the
/// next piece (or the end), so an echo split across chunk boundaries is
/// caught like any other. The carry never grows past that: an echo that
/// runs across the cut is replaced up to the cut at once, and the mark is
/// remembered as open so its continuation adds no second mark. The output
/// is then byte for byte what [`Redactor::redact`] gives on the whole body,
/// at linear cost.
#[derive(Debug)]
pub struct StreamRedactor {
    redactor: Redactor,
    carry: Zeroizing<Vec<u8>>,
    /// The last bytes passed on before `carry` (at most one escape's
    /// length), searched again only so that the held-back text is parsed
    /// in context: a carry starting on the second `\` of `\\` must not
    /// read as an escape.
    context: Zeroizing<Vec<u8>>,
    /// `Some(n)`: the last thing passed on was a mark, and the first `n`
    /// bytes of `carry` belong to the echo it replaced.
    open: Option<usize>,
}

impl StreamRedactor {
    pub fn new(redactor: Redactor) -> StreamRedactor {
        StreamRedactor {
            redactor,
            carry: Zeroizing::new(Vec::new()),
            context: Zeroizing::new(Vec::new()),
            open: None,
        }
    }

    /// Takes the next piece; returns what can safely be passed on now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.step(chunk, false)
    }

    /// Whatever is still held back, redacted.
    pub fn finish(&mut self) -> Vec<u8> {
        self.step(&[], true)
    }

    /// How many bytes the next `push` of `chunk_len` bytes searches: the
    /// caller moves large ones off the async workers.
    pub fn pending_len(&self, chunk_len: usize) -> usize {
        self.carry.len() + chunk_len
    }

    fn step(&mut self, chunk: &[u8], last: bool) -> Vec<u8> {
        let mut data = Vec::with_capacity(self.carry.len() + chunk.len());
        data.extend_from_slice(&self.carry);
        data.extend_from_slice(chunk);
        self.carry.clear();
        let mut spans = self.redactor.spans_in(&self.context, &data);
        let continued = match self.open.take() {
            Some(n) => {
                match spans.first_mut() {
                    Some(first) if first.0 <= n => {
                        first.0 = 0;
                        first.1 = first.1.max(n);
                    }
                    _ => spans.insert(0, (0, n)),
                }
                merge_sorted(&mut spans);
                true
            }
            None => false,
        };
        // Occurrences starting before the cut lie wholly inside `data` and
        // are final; later ones may still grow with the next piece.
        let keep = if last {
            0
        } else {
            self.redactor.max_len().saturating_sub(1)
        };
        let cut = data.len().saturating_sub(keep);
        let mut done = Vec::with_capacity(spans.len());
        for (i, &(s, e)) in spans.iter().enumerate() {
            let continuing = continued && i == 0;
            if s > cut || (s == cut && !continuing) {
                break;
            }
            if e >= cut {
                done.push((s, cut));
                self.open = Some(e - cut);
                break;
            }
            done.push((s, e));
        }
        self.carry.extend_from_slice(&data[cut..]);
        let mut context = Zeroizing::new(Vec::with_capacity(MAX_ESCAPE_LEN));
        let from_old = MAX_ESCAPE_LEN.saturating_sub(cut).min(self.context.len());
        context.extend_from_slice(&self.context[self.context.len() - from_old..]);
        context.extend_from_slice(&data[cut.saturating_sub(MAX_ESCAPE_LEN)..cut]);
        self.context.zeroize();
        self.context = context;
        data[cut..].zeroize();
        data.truncate(cut);
        replace_spans(data, &done, continued)
    }
}

/// Merges touching spans of a list sorted by start.
fn merge_sorted(spans: &mut Vec<(usize, usize)>) {
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for &(s, e) in spans.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    *spans = merged;
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
            let out = streamed(&Redactor::new(token), &body, size);
            assert_eq!(out, whole, "chunk size {size}");
        }
    }

    /// `body` through a [`StreamRedactor`] in pieces of `size` bytes.
    pub(super) fn streamed(r: &Redactor, body: &[u8], size: usize) -> Vec<u8> {
        let mut s = StreamRedactor::new(r.clone());
        let mut out = Vec::new();
        for piece in body.chunks(size) {
            out.extend(s.push(piece));
        }
        out.extend(s.finish());
        out
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

/// Base64 of the token, standard and URL-safe, padded and not, and the
/// offset-independent cores of each alphabet at the three alignments.
fn b64_forms(token: &[u8]) -> Vec<(Form, Zeroizing<Vec<u8>>)> {
    let mut b64s: Vec<(Form, Zeroizing<Vec<u8>>)> = Vec::new();
    for engine in [&STANDARD, &STANDARD_NO_PAD] {
        b64s.push((Form::Base64, b64(engine, token)));
    }
    for engine in [&URL_SAFE, &URL_SAFE_NO_PAD] {
        b64s.push((Form::Base64Url, b64(engine, token)));
    }
    if token.len() >= 12 {
        for (form, engine) in [
            (Form::Base64, &STANDARD_NO_PAD),
            (Form::Base64Url, &URL_SAFE_NO_PAD),
        ] {
            for offset in 0..3 {
                let core = b64_core(engine, token, offset);
                if core.len() >= MIN_CORE {
                    b64s.push((form, core));
                }
            }
        }
    }
    b64s
}

/// Every form of the module documentation, not yet deduplicated, each
/// with its [`Form`].
fn forms(token: &[u8]) -> Vec<(Form, Zeroizing<Vec<u8>>)> {
    let mut out: Vec<(Form, Zeroizing<Vec<u8>>)> = vec![(Form::Raw, copy(token))];
    // Base64 and its cores; each also as JSON (`\/`) and percent-encoded.
    let b64s = b64_forms(token);
    for (_, b) in &b64s {
        if b.contains(&b'/') {
            out.push((Form::Base64Json, replace_byte(b, b'/', b"\\/")));
        }
        if b.iter().any(|c| !c.is_ascii_alphanumeric()) {
            out.push((Form::Base64Percent, percent(b, UNRESERVED, false)));
        }
    }
    let standard = b64(&STANDARD, token);
    for width in [76, 64] {
        if standard.len() > width {
            for eol in [&b"\n"[..], b"\r\n"] {
                out.push((Form::Base64Wrapped, wrap(&standard, width, eol)));
            }
        }
    }
    out.extend(b64s);
    for set in [NON_ALPHANUMERIC, STRICT_SLASH, UNRESERVED, UNRESERVED_SLASH] {
        out.push((Form::Percent, percent(token, set, false)));
    }
    out.push((Form::Percent, percent(token, FORM, true)));
    out.push((Form::Hex, hex(token)));
    // Text forms work on characters: a token that is not UTF-8 is taken as
    // Latin-1 (each byte one character), as lenient decoders do.
    let chars: Zeroizing<Vec<char>> = Zeroizing::new(match std::str::from_utf8(token) {
        Ok(s) => s.chars().collect(),
        Err(_) => token.iter().map(|&b| char::from(b)).collect(),
    });
    for slash in [false, true] {
        for ascii in [false, true] {
            for html_safe in [false, true] {
                out.push((Form::Json, json(&chars, slash, ascii, html_safe)));
            }
        }
    }
    out.push((Form::JsonEscape, json_u_all(&chars)));
    for apos in [&b"&#39;"[..], b"&#x27;"] {
        for slash in [false, true] {
            out.push((Form::Html, html(&chars, apos, slash)));
        }
    }
    out.push((Form::Utf16, utf16(&chars, false)));
    out.push((Form::Utf16, utf16(&chars, true)));
    out
}

/// `data` with every `from` byte written as `to`.
fn replace_byte(data: &[u8], from: u8, to: &[u8]) -> Zeroizing<Vec<u8>> {
    let n = data.iter().filter(|&&b| b == from).count();
    let mut v = Zeroizing::new(Vec::with_capacity(data.len() + n * to.len()));
    for &b in data {
        if b == from {
            v.extend_from_slice(to);
        } else {
            v.push(b);
        }
    }
    v
}

/// Lines of `width` characters ended by `eol` (the last line unended: what
/// follows it is unknown).
fn wrap(data: &[u8], width: usize, eol: &[u8]) -> Zeroizing<Vec<u8>> {
    let lines = data.len().div_ceil(width);
    let mut v = Zeroizing::new(Vec::with_capacity(data.len() + lines * eol.len()));
    for (i, line) in data.chunks(width).enumerate() {
        if i > 0 {
            v.extend_from_slice(eol);
        }
        v.extend_from_slice(line);
    }
    v
}

/// Lower-case hex of every byte (matching ignores case, so upper too).
fn hex(token: &[u8]) -> Zeroizing<Vec<u8>> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut v = Zeroizing::new(Vec::with_capacity(token.len() * 2));
    for &b in token {
        v.push(DIGITS[usize::from(b >> 4)]);
        v.push(DIGITS[usize::from(b & 15)]);
    }
    v
}

/// `\uXXXX` for each UTF-16 code unit of `c` (surrogate pairs above the BMP).
fn push_u_escape(v: &mut Zeroizing<Vec<u8>>, c: char) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        v.extend_from_slice(b"\\u");
        v.extend_from_slice(&hex(&unit.to_be_bytes()));
    }
}

/// A JSON string body as an encoder writes it: `"` and `\` escaped,
/// control characters as `\n`-style or `\u00XX`; with `slash`, `/` as `\/`
/// (PHP); with `ascii`, non-ASCII as `\uXXXX` (Python, PHP); with
/// `html_safe`, `<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX` (Go).
fn json(chars: &[char], slash: bool, ascii: bool, html_safe: bool) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(chars.len() * 6));
    let mut buf = [0u8; 4];
    for &c in chars {
        match c {
            '"' => v.extend_from_slice(b"\\\""),
            '\\' => v.extend_from_slice(b"\\\\"),
            '/' if slash => v.extend_from_slice(b"\\/"),
            '\n' => v.extend_from_slice(b"\\n"),
            '\r' => v.extend_from_slice(b"\\r"),
            '\t' => v.extend_from_slice(b"\\t"),
            '\u{8}' => v.extend_from_slice(b"\\b"),
            '\u{c}' => v.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => push_u_escape(&mut v, c),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if html_safe => push_u_escape(&mut v, c),
            c if ascii && !c.is_ascii() => push_u_escape(&mut v, c),
            c => v.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
    buf.zeroize();
    v
}

/// Every character as `\uXXXX`.
fn json_u_all(chars: &[char]) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(chars.len() * 12));
    for &c in chars {
        push_u_escape(&mut v, c);
    }
    v
}

/// HTML text escaping of `& < > "` and `'` (as `apos`), and with `slash`
/// `/` as `&#x2F;`.
fn html(chars: &[char], apos: &[u8], slash: bool) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(chars.len() * 6));
    let mut buf = [0u8; 4];
    for &c in chars {
        match c {
            '&' => v.extend_from_slice(b"&amp;"),
            '<' => v.extend_from_slice(b"&lt;"),
            '>' => v.extend_from_slice(b"&gt;"),
            '"' => v.extend_from_slice(b"&quot;"),
            '\'' => v.extend_from_slice(apos),
            '/' if slash => v.extend_from_slice(b"&#x2F;"),
            c => v.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
    buf.zeroize();
    v
}

/// UTF-16 code units as bytes, big- or little-endian.
fn utf16(chars: &[char], big_endian: bool) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(chars.len() * 4));
    let mut units = [0u16; 2];
    for &c in chars {
        for unit in c.encode_utf16(&mut units) {
            let bytes = if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            };
            v.extend_from_slice(&bytes);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use memchr::memmem;

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
        let red = Redactor::new(b"abcdef");
        let mut seen = red.patterns().to_vec();
        seen.dedup();
        assert_eq!(seen.len(), red.patterns().len());
        // An alphanumeric token: every percent, JSON and HTML form equals
        // the raw token; base64 (all four agree), hex, \u, UTF-16 LE, BE.
        assert_eq!(red.patterns().len(), 6);
        assert!(red.patterns().windows(2).all(|w| w[0].len() >= w[1].len()));
        assert!(red.patterns().iter().all(|p| !p.is_empty()));
        assert!(Redactor::new(b"").patterns().is_empty());
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

/// Issue #11 item 4: each everyday form an echo takes is redacted, both as
/// the whole body and inside surrounding text.
#[cfg(test)]
mod everyday_encodings {
    use super::*;

    /// Has '/', '+', '=', space, '&', '!', '<' and '"' for the escapers,
    /// and is long enough that its base64 wraps at 64 and 76 columns.
    const TOKEN: &str =
        "s3cr3t/t0k+en=with space&more!<x>\"q'-AbCdEfGhIjKlMnOpQrStUvWxYz-0123456789";

    /// Asserts the echo `form` is gone from `before{form}after`.
    #[track_caller]
    fn gone(token: &str, form: &[u8], what: &str) {
        let mut body = b"before ".to_vec();
        body.extend_from_slice(form);
        body.extend_from_slice(b" after");
        let out = Redactor::new(token.as_bytes()).redact(body);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "before [redacted] after",
            "{what} not redacted"
        );
    }

    fn b64(t: &str) -> String {
        STANDARD.encode(t)
    }

    #[test]
    fn json_with_escaped_slashes() {
        // PHP json_encode: '/' as '\/', '"' as '\"', '<' raw.
        let php = TOKEN.replace('/', "\\/").replace('"', "\\\"");
        gone(TOKEN, php.as_bytes(), "PHP json_encode");
        // A base64 token has '/' in it; so has the base64 of most tokens.
        let t = "tok-???-0123456789abcdef";
        let b = b64(t);
        assert!(b.contains('/'), "{b}");
        gone(t, b.replace('/', "\\/").as_bytes(), "JSON-escaped base64");
        let raw_b64_token = "Zm9v/YmFy+YmF6/cXV4=";
        gone(
            raw_b64_token,
            raw_b64_token.replace('/', "\\/").as_bytes(),
            "a base64 token, JSON-escaped",
        );
    }

    #[test]
    fn json_encoders_escape_sets() {
        // Go encoding/json: '<', '>', '&' as \u003c, \u003e, \u0026.
        let go = TOKEN
            .replace('"', "\\\"")
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026");
        gone(TOKEN, go.as_bytes(), "Go json");
        // Python json.dumps (ensure_ascii): non-ASCII as \uXXXX, lower hex.
        let t = "caf\u{e9}-t\u{f6}ken-\u{1f511}-0123456789";
        gone(
            t,
            b"caf\\u00e9-t\\u00f6ken-\\ud83d\\udd11-0123456789",
            "Python json.dumps",
        );
    }

    #[test]
    fn json_u_escapes_of_every_char() {
        let lower: String = TOKEN
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        gone(TOKEN, lower.as_bytes(), "\\u escapes, lower hex");
        gone(
            TOKEN,
            lower.to_uppercase().replace("\\U", "\\u").as_bytes(),
            "\\u escapes, upper hex",
        );
    }

    #[test]
    fn percent_encoding_leaving_slash_alone() {
        // Python urllib.parse.quote(TOKEN) (safe='/').
        let mut q = String::new();
        for b in TOKEN.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                    q.push(b as char);
                }
                _ => q.push_str(&format!("%{b:02X}")),
            }
        }
        gone(TOKEN, q.as_bytes(), "quote() with safe='/'");
        gone(
            TOKEN,
            q.to_lowercase().as_bytes(),
            "quote(), lower-case hex",
        );
    }

    #[test]
    fn base64_wrapped_mime_and_pem() {
        let b = b64(TOKEN);
        assert!(b.len() > 76);
        for (width, eol) in [(76, "\n"), (76, "\r\n"), (64, "\n"), (64, "\r\n")] {
            let wrapped: Vec<&str> = b
                .as_bytes()
                .chunks(width)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            let wrapped = format!("{}{eol}", wrapped.join(eol));
            let out = Redactor::new(TOKEN.as_bytes()).redact(wrapped.clone().into_bytes());
            assert_eq!(
                String::from_utf8_lossy(&out).trim_end(),
                "[redacted]",
                "base64 wrapped at {width} with {eol:?}"
            );
        }
    }

    #[test]
    fn hex_lower_and_upper() {
        let lower: String = TOKEN.bytes().map(|b| format!("{b:02x}")).collect();
        gone(TOKEN, lower.as_bytes(), "hex");
        gone(TOKEN, lower.to_uppercase().as_bytes(), "HEX");
    }

    #[test]
    fn utf16_le_and_be() {
        let le: Vec<u8> = TOKEN.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = TOKEN.encode_utf16().flat_map(u16::to_be_bytes).collect();
        gone(TOKEN, &le, "UTF-16LE");
        gone(TOKEN, &be, "UTF-16BE");
    }

    #[test]
    fn case_changed() {
        gone(TOKEN, TOKEN.to_uppercase().as_bytes(), "upper-cased token");
        gone(TOKEN, TOKEN.to_lowercase().as_bytes(), "lower-cased token");
        let pct: String = TOKEN
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02x}")
                }
            })
            .collect();
        gone(
            TOKEN,
            pct.to_uppercase().as_bytes(),
            "upper-cased percent form",
        );
    }

    #[test]
    fn html_escaped() {
        for apos in ["&#39;", "&#x27;"] {
            let h = TOKEN
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', apos);
            gone(TOKEN, h.as_bytes(), "HTML-escaped");
            gone(
                TOKEN,
                h.replace('/', "&#x2F;").as_bytes(),
                "HTML-escaped with /",
            );
        }
    }
}

/// Issue #11 item 11: the cost of redaction stays linear, and a stream's
/// carry stays bounded, however periodic the token and the body.
#[cfg(test)]
mod cost {
    use super::*;

    #[test]
    fn periodic_token_in_a_periodic_stream_keeps_a_bounded_carry() {
        let token = vec![b'a'; 64];
        let red = Redactor::new(&token);
        let bound = red.max_len();
        let mut s = StreamRedactor::new(red);
        let mut out = Vec::new();
        for _ in 0..200 {
            out.extend(s.push(&[b'a'; 1000]));
            assert!(s.carry.len() < bound, "carry grew to {}", s.carry.len());
        }
        out.extend(s.finish());
        assert_eq!(out, Redactor::MARK);
    }

    #[test]
    fn streamed_output_equals_whole_body_redaction_for_periodic_tokens() {
        for token in [&b"abab"[..], b"aaaa", b"abcabcab"] {
            let mut body = b"xx".to_vec();
            body.extend(b"ab".repeat(20));
            body.extend(b"-aaaaaaa-abcabcabcabc-ab-");
            body.extend(token);
            let whole = Redactor::new(token).redact(body.clone());
            for size in 1..body.len() {
                let out = super::stream_tests::streamed(&Redactor::new(token), &body, size);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&whole),
                    "token {:?}, chunk size {size}",
                    String::from_utf8_lossy(token)
                );
            }
        }
    }

    /// Any subset of a token's characters escaped, in any mix of syntaxes,
    /// and its case changed beyond ASCII (job::unescape, case_variants).
    #[test]
    fn escaped_subsets_and_unicode_case_are_caught() {
        let token = "Ab+Cd/Ef==Gh-ÖÄß";
        let r = Redactor::new(token.as_bytes());
        for echo in [
            "Ab\\u002BCd/Ef==Gh-ÖÄß",
            "Ab&#43;Cd&#x2F;Ef=3D=3DGh-ÖÄß",
            "Ab+Cd%2FEf%3D=Gh-\\xC3\\x96ÄSS",
            "AB+CD/EF==GH-ÖÄSS",
            "ab+cd/ef==gh-öäß",
            "token=Ab%2bCd/Ef==Gh-%C3%96%C3%84%C3%9F;",
            "Ab+Cd/Ef==Gh-\\u00c3\\u0096\\u00c3\\u0084\\u00c3\\u009f",
        ] {
            let out = r.redact(format!("x={echo};").into_bytes());
            let out = String::from_utf8_lossy(&out).into_owned();
            assert!(out.contains("[redacted]"), "{echo} -> {out}");
            assert!(
                !out.contains("Cd") && !out.contains("cd") && !out.contains("CD"),
                "{echo} -> {out}"
            );
        }
        // A cookie-style credential's value on its own.
        let r = Redactor::new(b"sid=0123456789abcdef");
        let out = r.redact(b"{\"sid\": \"0123456789abcdef\"}".to_vec());
        assert!(!String::from_utf8_lossy(&out).contains("0123456789"));
    }

    /// Found by review: a stream cut right after the first `\\` of `\\\\`
    /// must not make the held-back text parse as an escape (`\\xA1`).
    #[test]
    fn stream_cuts_inside_an_escaped_backslash() {
        let token = "xA1b+c/defghijklmnop";
        let r = Redactor::new(token.as_bytes());
        let mut body = vec![b'a'; 300];
        body.extend_from_slice(b"pre\\\\xA1b%2Bc&#47;defghijklmnop post");
        body.extend_from_slice(&[b'z'; 400]);
        assert!(!String::from_utf8_lossy(&r.redact(body.clone())).contains("defghijklmnop"));
        for cut in 1..body.len() {
            let mut s = StreamRedactor::new(r.clone());
            let mut out = s.push(&body[..cut]);
            out.extend(s.push(&body[cut..]));
            out.extend(s.finish());
            let out = String::from_utf8_lossy(&out).into_owned();
            assert!(!out.contains("defghijklmnop"), "cut at {cut}: {out}");
        }
    }

    /// Found by review: the token's base64 with only some characters
    /// escaped (ASP.NET writes `+` as `\\u002B`).
    #[test]
    fn partly_escaped_base64_is_caught() {
        let token = b"\xfb\xff\xbe token with bits that make + and / in base64";
        let r = Redactor::new(token);
        let b64 = STANDARD.encode(token);
        assert!(b64.contains('+') || b64.contains('/'), "{b64}");
        let echo = b64.replace('+', "\\u002B").replace('/', "&#47;");
        let out = r.redact(format!("x {echo} y").into_bytes());
        let out = String::from_utf8_lossy(&out).into_owned();
        let pieces: Vec<&str> = echo.split(['\\', '&']).filter(|p| p.len() >= 8).collect();
        assert!(!pieces.is_empty(), "{echo}");
        for p in pieces {
            assert!(!out.contains(&p[2..p.len() - 2]), "{p} in {out}");
        }
    }

    /// Found by review: each value of a multi-cookie credential.
    #[test]
    fn every_cookie_value_is_a_token() {
        let r = Redactor::new(b"theme=dark; sid=0123456789abcdef; csrf=fedcba9876543210");
        for v in ["0123456789abcdef", "fedcba9876543210"] {
            let out = r.redact(format!("{{\"v\": \"{v}\"}}").into_bytes());
            assert!(!String::from_utf8_lossy(&out).contains(v), "{v}");
        }
    }
}
