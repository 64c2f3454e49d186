//! A decoded view of a response, for the redactor's second search.
//!
//! Encoders escape *some* characters of a string, and which ones differs
//! from one to the next: ASP.NET's JSON writes `+` as `\u002B`, Go's
//! html/template writes it as `&#43;`, OWASP ESAPI as `&#x2b;`, Go's
//! `url.PathEscape` escapes `/` but not `+` or `=`, JavaScript's
//! `escape()` escapes `=` but not `/`, quoted-printable writes `=` as `=3D`,
//! nginx's log writes bytes outside ASCII as `\xC3`. A list of whole-token
//! forms can only follow the encoders someone thought of; decoding every
//! escape syntax first and searching the result for the token catches any
//! subset of escaped characters, in any mix of these syntaxes, at linear
//! cost.
//!
//! Decoded here: `%HH`, `=HH` and soft line breaks (quoted-printable),
//! `\xHH`, `\uXXXX` (with
//! surrogate pairs), `\/`, `\\`, `\"`, `&#NN;`, `&#xHH;`, `&amp;`, `&lt;`,
//! `&gt;`, `&quot;`, `&apos;`. In the *Latin-1* view, a character below
//! U+0100 (escaped, or raw as a two-byte UTF-8 sequence) stands for one
//! byte: what WSGI, Node.js and others make of a UTF-8 header they decode
//! as Latin-1 ("mojibake") and write back.
//!
//! A match in the view is mapped back to the bytes of the original it came
//! from, so the whole escaped echo is replaced. Decoding something that was
//! not an escape can only make more text match, never less: the redactor
//! over-redacts safely.

use zeroize::Zeroizing;

/// The decoded bytes and where each came from.
pub struct View {
    pub bytes: Zeroizing<Vec<u8>>,
    /// `(decoded_start, decoded_end, source_start, source_end)` of every
    /// escape, in order. Bytes outside them map one to one.
    escapes: Vec<(usize, usize, usize, usize)>,
}

impl View {
    /// The `[start, end)` span of the original that decoded to
    /// `[start, end)` of the view.
    pub fn source_span(&self, start: usize, end: usize) -> (usize, usize) {
        (self.source_of(start).0, self.source_of(end - 1).1)
    }

    /// The source bytes that produced decoded byte `d`.
    fn source_of(&self, d: usize) -> (usize, usize) {
        let i = self.escapes.partition_point(|e| e.0 <= d);
        match i.checked_sub(1).map(|i| self.escapes[i]) {
            Some((ds, de, ss, se)) if d < de => {
                let _ = ds;
                (ss, se)
            }
            Some((_, de, _, se)) => {
                let s = se + (d - de);
                (s, s + 1)
            }
            None => (d, d + 1),
        }
    }
}

/// The stretches of `data` worth decoding: around each escape, `reach`
/// bytes either way (an echo that contains the escape lies within them; an
/// echo without one is found by the plain search), merged. Most bodies
/// (binary, or text without escapes) have few or none, so most bytes are
/// never copied.
pub fn windows(data: &[u8], syntax: Syntax, reach: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    let mut next = Starts::new(syntax);
    while i < data.len() {
        let Some(at) = next.from(data, i) else {
            break;
        };
        i = at;
        match escape_at(data, i, syntax).filter(|(_, out)| out.wanted(syntax)) {
            Some((len, _)) => {
                let (s, e) = (i.saturating_sub(reach), (i + len + reach).min(data.len()));
                match out.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => out.push((s, e)),
                }
                i += len;
            }
            None => i += 1,
        }
    }
    out
}

/// Finds the next byte an escape may start with, by `memchr` over the few
/// such bytes rather than a test of every byte: text is searched at
/// memory speed between escapes (`vaultctl scan` reads gigabytes). Each
/// needle's next position is remembered until passed, so a body full of
/// one of them and free of another is not searched again and again.
struct Starts {
    syntax: Syntax,
    /// Next `%`, `\\` or `&`, and next `=`, at or after the last query
    /// (`usize::MAX`: none left; `None`: not searched yet).
    three: Option<usize>,
    equals: Option<usize>,
}

impl Starts {
    fn new(syntax: Syntax) -> Starts {
        Starts {
            syntax,
            three: None,
            equals: None,
        }
    }

    fn from(&mut self, data: &[u8], i: usize) -> Option<usize> {
        if self.syntax.latin1 {
            // Any byte from 0xC2 up may start a character: test each.
            return data[i..]
                .iter()
                .position(|b| starts(b, self.syntax))
                .map(|p| p + i);
        }
        let refresh = |cached: Option<usize>, find: &dyn Fn(&[u8]) -> Option<usize>| match cached {
            Some(p) if p >= i => p,
            _ => find(&data[i..]).map_or(usize::MAX, |p| p + i),
        };
        let three = refresh(self.three, &|d| memchr::memchr3(b'%', b'\\', b'&', d));
        self.three = Some(three);
        let mut at = three;
        if self.syntax.qp {
            let equals = refresh(self.equals, &|d| memchr::memchr(b'=', d));
            self.equals = Some(equals);
            at = at.min(equals);
        }
        (at != usize::MAX).then_some(at)
    }
}

/// Whether an escape may start with `b`.
fn starts(b: &u8, syntax: Syntax) -> bool {
    matches!(b, b'%' | b'\\' | b'&') || (syntax.qp && *b == b'=') || (syntax.latin1 && *b >= 0xC2)
}

/// Which escapes a view decodes.
#[derive(Clone, Copy, Debug)]
pub struct Syntax {
    /// Characters below U+0100 stand for one byte (mojibake).
    pub latin1: bool,
    /// Quoted-printable `=HH`, only for bytes that are ASCII and not
    /// alphanumeric (what quoted-printable escapes in a token: `=` as
    /// `=3D`). `=` so often comes right before a token (`token=…`,
    /// `sid=…`) that decoding it as an escape could break the match: the
    /// redactor also searches a view without it.
    pub qp: bool,
    /// Whether an escape may stand for a byte outside ASCII.
    pub non_ascii: bool,
    /// The ASCII bytes whose escapes are decoded (a bit each). The
    /// redactor decodes all of them ([`ALL_ASCII`]): a set chosen from the
    /// tokens' own characters would make what the views find depend on
    /// the tokens, an oracle for a script that stores probes of its own.
    pub needed: [u64; 2],
}

impl Syntax {
    fn needs(&self, b: u8) -> bool {
        b < 0x80 && self.needed[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }
}

/// The ASCII bytes whose escapes the views decode: all of them (escapes
/// of letters and digits are never decoded anyway), whatever the tokens
/// hold. A set chosen from the stored tokens' own characters made what the
/// views find depend on them, an oracle for a script that stores probe
/// values of its own (`redteam_scan.rs`); a fixed smaller set misses the
/// partial escapes real encoders make (WHATWG URLs escape `{"} `, HTML
/// `&<>"'`, encodeURIComponent all but `-_.!~*'()`). It costs throughput
/// on escape-heavy text (BENCHMARKS.md, scan). Control bytes other than
/// tab are left out: a token cannot hold one (`validate_token`).
pub const ALL_ASCII: [u64; 2] = [u64::MAX << 32 | 1 << 9, u64::MAX];

/// The views the redactor searches: with and without quoted-printable,
/// both decoding escapes of bytes outside ASCII whatever the tokens hold,
/// and the Latin-1 view when a token has such a byte. That view can only
/// add matches, and only of a token with a byte outside ASCII (an ASCII
/// value's match does not depend on how such escapes decode, since the
/// other views leave a lone one as it is), so whether it runs reveals
/// nothing a script could see in its own findings.
pub fn views(latin1: bool, needed: [u64; 2]) -> Vec<Syntax> {
    let base = Syntax {
        latin1: false,
        qp: true,
        non_ascii: true,
        needed,
    };
    let mut v = vec![base, Syntax { qp: false, ..base }];
    if latin1 {
        v.push(Syntax {
            latin1: true,
            ..base
        });
    }
    v
}

/// The decoded view of `data`.
pub fn decode(data: &[u8], syntax: Syntax) -> View {
    let latin1 = syntax.latin1;
    let mut bytes = Zeroizing::new(Vec::with_capacity(data.len()));
    let mut escapes = Vec::new();
    let mut i = 0;
    while i < data.len() {
        // Runs without an escape's first byte are copied whole.
        let run = data[i..]
            .iter()
            .position(|b| starts(b, syntax))
            .unwrap_or(data.len() - i);
        bytes.extend_from_slice(&data[i..i + run]);
        i += run;
        if i == data.len() {
            break;
        }
        match escape_at(data, i, syntax).filter(|(_, out)| out.wanted(syntax)) {
            Some((len, out)) => {
                let start = bytes.len();
                out.write(&mut bytes, latin1);
                escapes.push((start, bytes.len(), i, i + len));
                i += len;
            }
            None => {
                bytes.push(data[i]);
                i += 1;
            }
        }
    }
    View { bytes, escapes }
}

/// What one escape decodes to.
enum Out {
    Byte(u8),
    Char(u32),
    Nothing,
}

impl Out {
    /// Whether decoding this escape can help: never for an ASCII letter or
    /// digit (no encoder escapes one alone; a token spelled out wholly as
    /// `\\uXXXX` is one of the redactor's whole-token forms), and for a
    /// byte outside ASCII only when a token has one.
    fn wanted(&self, syntax: Syntax) -> bool {
        let v = match *self {
            Out::Byte(b) => u32::from(b),
            Out::Char(cp) => cp,
            Out::Nothing => return true,
        };
        match char::from_u32(v) {
            Some(c) if c.is_ascii_alphanumeric() => false,
            Some(c) if c.is_ascii() => syntax.needs(c as u8),
            _ => syntax.non_ascii,
        }
    }

    fn write(self, v: &mut Vec<u8>, latin1: bool) {
        match self {
            Out::Byte(b) => v.push(b),
            Out::Nothing => {}
            Out::Char(cp) if latin1 && cp < 0x100 => v.push(cp as u8),
            Out::Char(cp) => {
                let c = char::from_u32(cp).unwrap_or('\u{fffd}');
                let mut buf = [0u8; 4];
                v.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// A byte escape (`%HH`, `=HH`, `\\xHH`) at `i`, introduced by `intro`.
/// Outside the Latin-1 view a byte above ASCII stands only as part of a
/// UTF-8 sequence of such escapes (`%C3%85`): a lone `%B6` is more likely
/// a `%` before text (`100%B64…`) than half a character. In the Latin-1
/// view `%HH` and `\\xHH` stand alone (`escape()` writes `Å` as `%C5`);
/// `=HH` never does (`x=Ab…` is an assignment far more often).
fn byte_escape(data: &[u8], i: usize, intro: &[u8], syntax: Syntax) -> Option<(usize, Out)> {
    let len = intro.len() + 2;
    let at = |j: usize| -> Option<u8> {
        if data.get(j..j + intro.len()) != Some(intro) {
            return None;
        }
        hex_n(data, j + intro.len(), 2).map(|v| v as u8)
    };
    let b = at(i)?;
    // Quoted-printable escapes only `=`, blanks before a line break, the
    // characters unsafe in EBCDIC and bytes outside ASCII: `x=3F` is an
    // assignment of hex far more often than an escaped `?`.
    if intro == b"=" && b.is_ascii() && !b"=\t !\"#$@[\\]^`{|}~".contains(&b) {
        return None;
    }
    let ok = b.is_ascii()
        || (syntax.latin1 && intro != b"=")
        || ((0xC2..=0xF4).contains(&b) && at(i + len).is_some_and(|n| (0x80..0xC0).contains(&n)))
        || ((0x80..0xC0).contains(&b) && i >= len && at(i - len).is_some_and(|p| p >= 0x80));
    ok.then_some((len, Out::Byte(b)))
}

fn hex_val(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

fn hex_n(data: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = data.get(at..at + n)?;
    s.iter()
        .try_fold(0u32, |acc, &b| Some(acc * 16 + hex_val(b)?))
}

/// The escape starting at `i`, if any: its length and what it stands for.
fn escape_at(data: &[u8], i: usize, syntax: Syntax) -> Option<(usize, Out)> {
    let rest = &data[i..];
    let latin1 = syntax.latin1;
    match rest[0] {
        b'%' => byte_escape(data, i, b"%", syntax),
        // A soft line break (quoted-printable wraps at 76 columns).
        b'=' if syntax.qp && rest.get(1..3) == Some(b"\r\n") => Some((3, Out::Nothing)),
        b'=' if syntax.qp && rest.get(1) == Some(&b'\n') => Some((2, Out::Nothing)),
        b'=' if syntax.qp => byte_escape(data, i, b"=", syntax),
        b'\\' => match *rest.get(1)? {
            b'x' => byte_escape(data, i, b"\\x", syntax),
            b'X' => byte_escape(data, i, b"\\X", syntax),
            b'u' => {
                let hi = hex_n(data, i + 2, 4)?;
                if (0xD800..0xDC00).contains(&hi) && rest.get(6..8) == Some(b"\\u") {
                    if let Some(lo) =
                        hex_n(data, i + 8, 4).filter(|lo| (0xDC00..0xE000).contains(lo))
                    {
                        let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        return Some((12, Out::Char(cp)));
                    }
                }
                Some((6, Out::Char(hi)))
            }
            // `\=` `\:` (Java properties), `\+` `\.` `\_` (Markdown),
            // `\/` `\"` `\\` (JSON): any punctuation after a backslash.
            b if b.is_ascii_punctuation() => Some((2, Out::Byte(b))),
            // CSS: `\2b ` (1-6 hex digits, then one optional space).
            b if b.is_ascii_hexdigit() => {
                let n = rest[1..]
                    .iter()
                    .take(6)
                    .take_while(|b| b.is_ascii_hexdigit())
                    .count();
                let cp = hex_n(data, i + 1, n)?;
                let space = usize::from(rest.get(1 + n) == Some(&b' '));
                Some((1 + n + space, Out::Char(cp)))
            }
            _ => None,
        },
        b'&' => html_entity(rest),
        // Mojibake: a character below U+0100 written as UTF-8 stands for
        // the one byte it was decoded from.
        b @ (0xC2 | 0xC3) if latin1 => {
            let next = *rest.get(1)?;
            (0x80..0xC0)
                .contains(&next)
                .then_some((2, Out::Byte(((b & 0x03) << 6) | (next & 0x3F))))
        }
        _ => None,
    }
}

/// HTML5 named references for ASCII punctuation (PHP's `htmlentities`
/// with `ENT_HTML5` writes `&plus;`, `&sol;`, `&equals;`).
const ASCII_NAMES: [(&str, u8); 38] = [
    ("excl", b'!'),
    ("quot", b'"'),
    ("QUOT", b'"'),
    ("num", b'#'),
    ("dollar", b'$'),
    ("percnt", b'%'),
    ("amp", b'&'),
    ("AMP", b'&'),
    ("apos", b'\''),
    ("lpar", b'('),
    ("rpar", b')'),
    ("ast", b'*'),
    ("midast", b'*'),
    ("plus", b'+'),
    ("comma", b','),
    ("period", b'.'),
    ("sol", b'/'),
    ("colon", b':'),
    ("semi", b';'),
    ("lt", b'<'),
    ("LT", b'<'),
    ("equals", b'='),
    ("gt", b'>'),
    ("GT", b'>'),
    ("quest", b'?'),
    ("commat", b'@'),
    ("lsqb", b'['),
    ("lbrack", b'['),
    ("bsol", b'\\'),
    ("rsqb", b']'),
    ("rbrack", b']'),
    ("Hat", b'^'),
    ("lowbar", b'_'),
    ("grave", b'`'),
    ("lcub", b'{'),
    ("lbrace", b'{'),
    ("verbar", b'|'),
    ("rcub", b'}'),
];

/// The HTML 4 Latin-1 named references, in code point order from U+00A0
/// (PHP's default `htmlentities` writes `&Aring;`).
const LATIN1_NAMES: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

fn html_entity(rest: &[u8]) -> Option<(usize, Out)> {
    let end = rest.iter().take(12).position(|&b| b == b';')?;
    let body = &rest[1..end];
    let named = |name: &[u8]| -> Option<u32> {
        if let Some(&(_, c)) = ASCII_NAMES.iter().find(|(n, _)| n.as_bytes() == name) {
            return Some(u32::from(c));
        }
        let i = LATIN1_NAMES.iter().position(|n| n.as_bytes() == name)?;
        Some(0xA0 + i as u32)
    };
    let cp = match body {
        name if name.first().is_some_and(u8::is_ascii_alphabetic) => named(name)?,
        [b'#', b'x' | b'X', hex @ ..] if !hex.is_empty() => hex
            .iter()
            .try_fold(0u32, |acc, &b| Some(acc.checked_mul(16)? + hex_val(b)?))?,
        [b'#', dec @ ..] if !dec.is_empty() => dec.iter().try_fold(0u32, |acc, &b| {
            Some(acc.checked_mul(10)? + (b as char).to_digit(10)?)
        })?,
        _ => return None,
    };
    Some((end + 1, Out::Char(cp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(s: &[u8], latin1: bool) -> Vec<u8> {
        decode(
            s,
            Syntax {
                latin1,
                qp: true,
                non_ascii: true,
                needed: [u64::MAX; 2],
            },
        )
        .bytes
        .to_vec()
    }

    #[test]
    fn every_syntax_decodes() {
        for (escaped, plain) in [
            (&b"a%2Bb%2fc"[..], &b"a+b/c"[..]),
            (b"a=3Db", b"a=b"),
            (b"a\\x2Bb", b"a+b"),
            (b"a\\u002Bb\\/c\\\\d\\\"e", b"a+b/c\\d\"e"),
            (
                b"a&#43;b&#x2b;c&#X2F;d&amp;e&lt;&gt;&quot;&apos;",
                b"a+b+c/d&e<>\"'",
            ),
            (b"\\ud83d\\ude00", "\u{1F600}".as_bytes()),
            (b"no escapes at all", b"no escapes at all"),
            // Quoted-printable only for what it escapes in a token.
            (b"token=B64", b"token=B64"),
            (b"abc=\r\ndef=\nghi", b"abcdefghi"),
            (b"%zz =G \\q &nope; &#;", b"%zz =G \\q &nope; &#;"),
        ] {
            assert_eq!(
                view(escaped, false),
                plain,
                "{}",
                String::from_utf8_lossy(escaped)
            );
        }
    }

    #[test]
    fn latin1_view_undoes_mojibake() {
        let token = "ö".as_bytes(); // C3 B6
        assert_eq!(view(b"\\u00c3\\u00b6", true), token);
        assert_eq!(view("Ã¶".as_bytes(), true), token);
        assert_eq!(view(b"\\xC3\\xB6", true), token);
        // The UTF-8 view keeps a real escape of the character itself.
        assert_eq!(view(b"\\u00f6", false), token);
    }

    #[test]
    fn windows_surround_escapes_only() {
        let data = b"aaaaaaaaaa%2Bbbbbbbbbbbbbbbbbbbbbb%41cc&#43;";
        let w = windows(data, views(true, [u64::MAX; 2])[0], 3);
        // `%41` is an `A`: no encoder escapes a letter alone.
        assert_eq!(w, [(7, 16), (36, data.len())]);
        assert!(windows(b"no escape % here = \\q", views(true, [u64::MAX; 2])[0], 3).is_empty());
    }

    #[test]
    fn spans_map_back_to_the_source() {
        let src = b"x%2By&#43;z";
        let v = decode(src, views(true, [u64::MAX; 2])[0]);
        assert_eq!(&v.bytes[..], b"x+y+z");
        assert_eq!(v.source_span(0, 5), (0, src.len()));
        assert_eq!(v.source_span(1, 2), (1, 4));
        assert_eq!(v.source_span(2, 3), (4, 5));
        assert_eq!(v.source_span(3, 4), (5, 10));
        assert_eq!(v.source_span(4, 5), (10, 11));
    }
}
