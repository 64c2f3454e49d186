//! Red-team round for issue 14 (`vaultctl import`, `vaultctl scan`): a
//! script of the vault's uid, talking only to vaultd's socket and to its
//! own loopback servers, without the passphrase, tries to learn any byte of
//! a stored token through scan answers, scan as a guessing oracle, and
//! import.
//!
//! Each test asserts that the script learns nothing. Two worked on the
//! code they were written against (850c79f): which escapes the decoded
//! views undid depended on the stored tokens' characters, so a script's
//! own probe values, scanned with one character escaped, were found or
//! not depending on whether a stored token held that character (or any
//! byte outside ASCII). The views now decode the same escapes whatever the
//! tokens hold.

use std::path::Path;

use harness::{Daemon, Upstream, canary};

fn ready() -> Daemon {
    let d = Daemon::start("");
    d.init();
    d
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap();
}

/// `vaultctl scan FILES...` in the daemon's dir: (exit code, stdout).
fn scan(d: &Daemon, files: &[String]) -> (Option<i32>, String) {
    let mut c = d.cmd();
    c.current_dir(d.dir()).env("HOME", d.dir()).arg("scan");
    c.args(files);
    let out = harness::daemon::run(&mut c, None);
    let hits = harness::leaks(&out.stdout);
    assert!(
        hits.is_empty(),
        "a value in scan's stdout:\n{}",
        hits.join("\n")
    );
    (Some(out.code), out.text())
}

/// ASCII punctuation the probes below can test (`%` and `.` are the
/// probe's own characters).
fn probe_chars() -> Vec<u8> {
    (0x21u8..0x7f)
        .filter(|b| !b.is_ascii_alphanumeric() && *b != b'%' && *b != b'.')
        .collect()
}

/// The probe credential for character `c`: it holds `%HH` (the escape of
/// `c`, spelt out literally) and a `.`, and never `c` itself.
fn probe_value(c: u8) -> String {
    format!("rt14probe{c:02x}kn%{c:02X}own.tail-of-probe")
}

/// The copy of the probe in a file: literal `%HH` and `.` escaped as
/// `%2E`. The decoded view turns `%2E` into `.` (a character the stored
/// values hold), and turns `%HH` into `c` only if some stored value holds
/// `c` (`Syntax::needed`): so the probe is found exactly when no stored
/// value holds `c`.
fn probe_file(c: u8) -> String {
    format!("x rt14probe{c:02x}kn%{c:02X}own%2Etail-of-probe y\n")
}

/// Attack: the character set of every stored value, one ASCII punctuation
/// character at a time. The decoded views of the scan decode an escape only
/// when its character is one the stored values hold (the `needed` bitmap,
/// a speed-up), so a script that adds a probe credential of its own whose
/// value contains an escape *literally* (`%21`) gets a finding for a file
/// holding that probe (with another character escaped so that only the
/// decoded view can match) exactly when no stored value contains `!`.
/// Which punctuation a token holds is part of its value (and with a token
/// of a known shape, e.g. `prefix_<random>` from a known alphabet, it
/// narrows the alphabet a brute force must cover).
#[test]
fn scan_reveals_which_punctuation_a_stored_token_holds() {
    let d = ready();
    // The victim's token: holds `!` and `*`, never `#` or `^`.
    let secret = format!("{}!*x", canary("rt14set"));
    d.add("victim", &secret, &["--preset", "microreact"]).ok();
    // The script's own probes (no passphrase needed for `add`).
    let chars = probe_chars();
    for &c in &chars {
        d.add(
            &format!("probe{c:02x}"),
            &probe_value(c),
            &["--bearer", "--origin", "https://probe.example"],
        )
        .ok();
    }
    let mut files = Vec::new();
    for &c in &chars {
        let name = format!("p{c:02x}.txt");
        write(&d.path(&name), probe_file(c).as_bytes());
        files.push(name);
    }
    let (_, text) = scan(&d, &files);
    // Characters whose probe was NOT found: held by some stored value
    // (the victim's token, or one of the base64 forms the matcher holds).
    let learned: Vec<char> = chars
        .iter()
        .filter(|c| !text.contains(&format!("credential probe{:02x} ", c)))
        .map(|&c| c as char)
        .collect();
    let answer = |c: u8| text.contains(&format!("credential probe{c:02x} "));
    assert_eq!(
        answer(b'!'),
        answer(b'#'),
        "the scan answers differ for a character the victim's token holds \
         (`!`) and one it does not (`#`): the script learned the token's \
         punctuation {learned:?}\n{text}"
    );
    assert_eq!(answer(b'*'), answer(b'^'), "{learned:?}\n{text}");
}

/// Attack, same mechanism for bytes outside ASCII: the views decode an
/// escape of a byte above ASCII only when some stored value has one
/// (`Syntax::non_ascii`), so a probe holding `%C3%A9` literally tells
/// whether any stored token holds a non-ASCII byte.
#[test]
fn scan_reveals_whether_a_stored_token_holds_non_ascii() {
    let probe = "rt14probe-na%C3%A9own.tail-of-probe";
    let file = b"x rt14probe-na%C3%A9own%2Etail-of-probe y\n";
    let mut answers = Vec::new();
    for secret in [
        format!("{}x", canary("rt14a")),
        format!("{}\u{e9}x", canary("rt14b")),
    ] {
        let d = ready();
        d.add("victim", &secret, &["--preset", "microreact"]).ok();
        d.add(
            "probe",
            probe,
            &["--bearer", "--origin", "https://probe.example"],
        )
        .ok();
        write(&d.path("p.txt"), file);
        let (_, text) = scan(&d, &["p.txt".to_owned()]);
        answers.push(text.contains("credential probe "));
    }
    assert_eq!(
        answers[0], answers[1],
        "the scan answer for the same file depends on whether the victim's \
         token is ASCII: {answers:?}"
    );
}

/// Attack: scan as a prefix / part oracle. A file holding every prefix,
/// every suffix and every half of the token (raw, base64, percent) but
/// never the whole token gets no finding: no form is a part of a token.
#[test]
fn no_part_of_a_token_is_a_finding() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    let d = ready();
    let token = canary("rt14part");
    d.add("victim", &token, &["--preset", "microreact"]).ok();
    let mut body = String::new();
    let n = token.len();
    for i in 1..n {
        let (pre, suf) = (&token[..i], &token[i..]);
        body.push_str(&format!("p {pre} |\ns {suf} |\n"));
        body.push_str(&format!("b {} |\n", STANDARD.encode(pre)));
        body.push_str(&format!("c {} |\n", STANDARD.encode(suf)));
        // The token with one character dropped.
        body.push_str(&format!("d {pre}{} |\n", &token[i + 1..]));
    }
    write(&d.path("parts.txt"), body.as_bytes());
    let (code, text) = scan(&d, &["parts.txt".to_owned()]);
    assert_eq!(code, Some(0), "a part of the token was reported:\n{text}");
}

/// Attack: import `--replace` of an existing credential to rebind its
/// origin while keeping its value (an entry with an empty value, as raw
/// frames). The import must be refused, or the value replaced: the old
/// token must never reach the script's server.
#[test]
fn import_replace_cannot_rebind_a_kept_value() {
    let up = Upstream::plain();
    let d = ready();
    let token = canary("rt14keep");
    d.add(
        "victim",
        &token,
        &["--bearer", "--origin", "https://victim.example"],
    )
    .ok();
    let mut c = vaultctl::Client::connect(&d.socket).unwrap();
    let req = proto::Request::Import {
        entries: vec![proto::ImportEntry {
            name: "victim".into(),
            spec: proto::CredentialSpec {
                injection: Some(proto::Injection::Bearer),
                origins: vec![up.origin()],
                ..proto::CredentialSpec::default()
            },
            value: proto::Secret::new(Vec::new()),
            source: "line 1 (VICTIM)".into(),
        }],
        replace: true,
    };
    let r = c.call(&req);
    drop(c);
    assert!(
        r.is_err(),
        "an import with no value replaced a credential: {r:?}"
    );
    if r.is_ok() {
        d.ctl(&["request", "victim", &up.url("/x")]);
    }
    assert!(
        !up.saw(&token),
        "the kept token reached the script's server"
    );
}

/// Attack: a hostile scan stream over raw frames (a never-ending file of
/// large chunks, then a lock mid-file) neither stalls others nor crashes
/// vaultd; the hostile session gets an error, never a value.
#[test]
fn hostile_scan_stream_and_lock_mid_file() {
    use proto::frame::{read_frame, write_frame};
    use std::time::{Duration, Instant};
    let d = ready();
    let token = canary("rt14host");
    d.add("victim", &token, &["--preset", "microreact"]).ok();
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write_frame(
        &mut s,
        &proto::Hello {
            version: proto::PROTOCOL_VERSION,
        },
    )
    .unwrap();
    let _: proto::Hello = read_frame(&mut s).unwrap().unwrap();
    write_frame(&mut s, &proto::Request::Scan).unwrap();
    let r: proto::Response = read_frame(&mut s).unwrap().unwrap();
    assert!(matches!(r, proto::Response::Done), "{r:?}");
    write_frame(&mut s, &proto::Request::ScanFile { id: 1 }).unwrap();
    let mut w = s.try_clone().unwrap();
    let feeder = std::thread::spawn(move || {
        // Chunks that end in the token's first half, over and over.
        let mut piece = vec![b'a'; proto::CHUNK];
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(6) {
            piece[0] ^= 1;
            if write_frame(&mut w, &proto::Request::Chunk(piece.clone())).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(800));
    for _ in 0..3 {
        let t0 = Instant::now();
        d.ctl(&["status"]).ok();
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "status stalled by a scan stream"
        );
    }
    d.ctl(&["lock"]).ok();
    let answer: Option<proto::Response> = read_frame(&mut s).ok().flatten();
    if let Some(a) = &answer {
        let text = format!("{a:?}");
        assert!(!text.contains(&token), "a value in the answer");
        assert!(matches!(a, proto::Response::Error(_)), "{text}");
    }
    drop(s);
    feeder.join().unwrap();
    d.unlock();
    d.ctl(&["status"]).ok();
}
