//! curl side by side with vaultctl (issue 15): the same arguments run as
//! `curl -H @hdr ARGS URL` (the token in a header file, never argv) and as
//! `vaultctl request NAME URL ARGS` against the same [`Upstream`], then
//! what the upstream received and what each printed are compared.
//!
//! Compared: method, path and query, body bytes, every request header
//! except the ones listed in [`DIFFERING`], stdout byte for byte, and the
//! exit code. The credential header must carry the token in both.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::daemon::run;
use crate::{Daemon, Recorded, Upstream, canary};

/// Request headers that legitimately differ between curl and vaultd, and
/// why. Everything else the upstream receives must be equal.
pub const DIFFERING: &[(&str, &str)] = &[
    ("user-agent", "curl/x.y.z vs vaultd's own"),
    (
        "accept-encoding",
        "vaultd always asks for the encodings it can decode and redact (gzip, deflate, br, zstd); curl asks only with --compressed",
    ),
    (
        "expect",
        "curl -T asks for 100-continue before an upload; vaultd sends the body at once",
    ),
];

/// The credential header, checked separately.
pub const CREDENTIAL_HEADER: &str = "access-token";

/// One program's run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// What the upstream received during the run, in order.
    pub received: Vec<Recorded>,
}

/// curl's run and vaultctl's.
#[derive(Debug)]
pub struct Pair {
    pub curl: Run,
    pub vaultctl: Run,
}

/// A daemon with credential `cmp` (header Access-Token, origin the
/// upstream), the upstream, and a header file for curl.
pub struct SideBySide {
    pub daemon: Daemon,
    pub up: Upstream,
    pub token: String,
    header_file: PathBuf,
}

impl Default for SideBySide {
    fn default() -> Self {
        Self::new()
    }
}

impl SideBySide {
    pub fn new() -> SideBySide {
        let up = Upstream::plain();
        let daemon = Daemon::start("");
        daemon.init();
        let token = canary("curlcmp");
        daemon
            .add(
                "cmp",
                &token,
                &["--header", "Access-Token", "--origin", &up.origin()],
            )
            .ok();
        let header_file = daemon.path("curl-headers");
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&header_file)
                .expect("header file");
            std::io::Write::write_all(&mut f, format!("Access-Token: {token}\n").as_bytes())
                .expect("write header file");
        }
        SideBySide {
            daemon,
            up,
            token,
            header_file,
        }
    }

    /// A file in the test's directory holding `data`; its path.
    pub fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.daemon.path(name);
        std::fs::write(&p, data).expect("write test file");
        p
    }

    pub fn dir(&self) -> &Path {
        self.daemon.dir()
    }

    /// `curl -q -H @hdr URL ARGS` (no .curlrc, no proxy).
    pub fn curl(&self, path: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
        self.up.clear();
        let mut c = Command::new("curl");
        c.arg("-q")
            .arg("-H")
            .arg(format!("@{}", self.header_file.display()))
            .arg(self.up.url(path))
            .args(args)
            .current_dir(self.dir());
        for v in [
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            c.env_remove(v);
        }
        let out = run(&mut c, stdin);
        Run {
            code: out.code,
            stdout: out.stdout,
            stderr: out.stderr,
            received: self.up.requests(),
        }
    }

    /// `vaultctl request cmp URL ARGS`.
    pub fn vaultctl(&self, path: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
        self.up.clear();
        let url = self.up.url(path);
        let mut all = vec!["request", "cmp", &url];
        all.extend_from_slice(args);
        let mut c = self.daemon.cmd();
        c.args(&all).current_dir(self.dir());
        let out = run(&mut c, stdin);
        Run {
            code: out.code,
            stdout: out.stdout,
            stderr: out.stderr,
            received: self.up.requests(),
        }
    }

    /// Both, with the same arguments and stdin.
    pub fn both(&self, path: &str, args: &[&str], stdin: Option<&[u8]>) -> Pair {
        Pair {
            curl: self.curl(path, args, stdin),
            vaultctl: self.vaultctl(path, args, stdin),
        }
    }

    /// Runs both and asserts they agree (see [`Pair::assert_same`]).
    #[track_caller]
    pub fn same(&self, path: &str, args: &[&str]) -> Pair {
        let p = self.both(path, args, None);
        p.assert_same(&self.token);
        p
    }
}

/// A request as compared: method, target, sorted headers (lower-case
/// names, the [`DIFFERING`] ones and the credential left out), body.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// `r` as compared, with a multipart boundary (from its Content-Type)
/// replaced by `BOUNDARY` in the headers and body.
pub fn seen(r: &Recorded) -> Seen {
    let boundary = r
        .header("content-type")
        .and_then(|v| v.split_once("boundary=").map(|(_, b)| b.to_owned()));
    let mask = |s: &str| match &boundary {
        Some(b) => s.replace(b.as_str(), "BOUNDARY"),
        None => s.to_owned(),
    };
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .filter(|(n, _)| n != CREDENTIAL_HEADER && !DIFFERING.iter().any(|(d, _)| d == n))
        .map(|(n, v)| (n, mask(&v)))
        .collect();
    headers.sort();
    let body = match &boundary {
        Some(b) => replace_bytes(&r.body, b.as_bytes(), b"BOUNDARY"),
        None => r.body.clone(),
    };
    Seen {
        method: r.method.clone(),
        target: r.target.clone(),
        headers,
        body,
    }
}

fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

impl Pair {
    /// The upstream got the same requests (see [`seen`]), each with the
    /// credential, and both printed the same stdout and exited alike.
    #[track_caller]
    pub fn assert_same(&self, token: &str) {
        self.assert_same_requests(token);
        assert_eq!(
            String::from_utf8_lossy(&self.vaultctl.stdout),
            String::from_utf8_lossy(&self.curl.stdout),
            "stdout differs (left vaultctl, right curl); vaultctl stderr: {}",
            self.vaultctl.stderr
        );
        assert_eq!(
            self.vaultctl.stdout, self.curl.stdout,
            "stdout bytes differ"
        );
        self.assert_same_code();
    }

    #[track_caller]
    pub fn assert_same_code(&self) {
        assert_eq!(
            self.vaultctl.code, self.curl.code,
            "exit codes differ (left vaultctl, right curl); vaultctl stderr: {}; curl stderr: {}",
            self.vaultctl.stderr, self.curl.stderr
        );
    }

    #[track_caller]
    pub fn assert_same_requests(&self, token: &str) {
        let c: Vec<Seen> = self.curl.received.iter().map(seen).collect();
        let v: Vec<Seen> = self.vaultctl.received.iter().map(seen).collect();
        assert!(!c.is_empty(), "curl sent nothing: {}", self.curl.stderr);
        assert_eq!(
            v, c,
            "the upstream received different requests (left vaultctl, right curl); vaultctl stderr: {}",
            self.vaultctl.stderr
        );
        for r in self.curl.received.iter().chain(&self.vaultctl.received) {
            assert_eq!(
                r.header(CREDENTIAL_HEADER).as_deref(),
                Some(token),
                "a request without the credential"
            );
        }
    }
}
