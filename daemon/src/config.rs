//! `config.toml`: every key optional, unknown keys refused by name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {source}")]
    Parse { path: PathBuf, source: ParseError },
}

/// What is wrong inside a config file. Never quotes a value that could
/// hold a secret (a mistyped `proxy = http://user:password@host`).
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// toml's message and the line, with the key it is about.
    #[error("{0}")]
    Toml(String),
    #[error("{key}: {reason}")]
    Value {
        key: &'static str,
        reason: ValueError,
    },
    #[error(
        "allow_uids: {OVERFLOW_UID} (nobody) is refused: under the unit's PrivateUsers=yes every other local user appears as {OVERFLOW_UID}, so it would admit them all; set PrivateUsers=no and list the real uids instead"
    )]
    OverflowUid,
    #[error(
        "loopback_listener_uids: {OVERFLOW_UID} (nobody) is refused: under the unit's PrivateUsers=yes every other local user's socket appears as {OVERFLOW_UID}; give the service TLS, or set PrivateUsers=no and list its real uid"
    )]
    OverflowListenerUid,
}

/// Why one value does not parse.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("invalid duration {value:?}: {reason}")]
    Duration { value: String, reason: String },
    #[error("must be more than 0")]
    NotPositive,
    #[error("must be at least 1")]
    Zero,
    #[error("at most {max} (each connection is a file descriptor)")]
    TooManyConnections { max: usize },
    #[error("invalid size {value:?}: expected e.g. 64MiB")]
    SizeNumber { value: String },
    #[error("invalid size unit {unit:?}: use B, KiB, MiB or GiB")]
    SizeUnit { unit: String },
    #[error("size {value:?} is too large")]
    SizeTooLarge { value: String },
    #[error("give at least one node, e.g. addrs = [\"https://bao1.example.org:8200\"]")]
    NoAddrs,
    /// The address itself is not repeated: it could carry a password.
    #[error("each node is http(s)://host[:port], with no user, path or query")]
    Addr,
    #[error(
        "a node off loopback must be https:// (the secret_id and the client token cross the connection)"
    )]
    PlainAddr,
    #[error("unknown auth {value:?}: use \"approle\" or \"token\"")]
    Auth { value: String },
    #[error("a mount path or namespace: letters, digits, - _ . and / between parts")]
    Mount,
}

fn value(key: &'static str) -> impl Fn(ValueError) -> ParseError {
    move |reason| ParseError::Value { key, reason }
}

/// The file as written by the user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    socket: Option<PathBuf>,
    vault: Option<PathBuf>,
    lock_after_idle: Option<String>,
    lock_after: Option<String>,
    max_body: Option<String>,
    request_timeout: Option<String>,
    #[serde(default)]
    extra_ca: Vec<PathBuf>,
    proxy: Option<String>,
    unlock_keyfile: Option<PathBuf>,
    #[serde(default)]
    allow_uids: Vec<u32>,
    #[serde(default)]
    loopback_listener_uids: Vec<u32>,
    #[serde(default)]
    audit: bool,
    max_connections: Option<usize>,
    hello_timeout: Option<String>,
    idle_timeout: Option<String>,
    openbao: Option<RawOpenBao>,
    http_socket: Option<PathBuf>,
}

/// `[openbao]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOpenBao {
    #[serde(default)]
    addrs: Vec<String>,
    ca: Option<PathBuf>,
    namespace: Option<String>,
    kv_mount: Option<String>,
    auth: Option<String>,
    approle_mount: Option<String>,
    refresh: Option<String>,
    max_stale: Option<String>,
}

/// How vaultd logs in to OpenBao.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenBaoAuth {
    AppRole,
    Token,
}

impl OpenBaoAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            OpenBaoAuth::AppRole => "approle",
            OpenBaoAuth::Token => "token",
        }
    }
}

/// The `[openbao]` table with defaults applied: where credentials with
/// `--from-openbao` get their values.
#[derive(Debug, Clone)]
pub struct OpenBaoConfig {
    /// Nodes of one cluster, tried in turn; each `http(s)://host:port`.
    pub addrs: Vec<url::Url>,
    /// An extra CA (PEM) trusted for these nodes only.
    pub ca: Option<PathBuf>,
    pub namespace: Option<String>,
    pub kv_mount: String,
    pub auth: OpenBaoAuth,
    pub approle_mount: String,
    /// A cached value older than this is re-read in the background.
    pub refresh: Duration,
    /// A cached value is served this long after the last good read while
    /// OpenBao cannot be read; after that jobs fail (exit 7).
    pub max_stale: Duration,
}

/// Settings with defaults applied and units parsed.
#[derive(Debug, Clone)]
pub struct Config {
    pub socket: Option<PathBuf>,
    pub vault: Option<PathBuf>,
    /// `None` means never.
    pub lock_after_idle: Option<Duration>,
    pub lock_after: Option<Duration>,
    pub max_body: usize,
    pub request_timeout: Duration,
    pub extra_ca: Vec<PathBuf>,
    pub proxy: Option<String>,
    pub unlock_keyfile: Option<PathBuf>,
    pub allow_uids: Vec<u32>,
    /// Besides vaultd's own uid and root: uids whose sockets may receive a
    /// token over plain http on loopback (see `job::listener`).
    pub loopback_listener_uids: Vec<u32>,
    pub audit: bool,
    /// Connections served at once; one more is answered "busy" and logged.
    pub max_connections: usize,
    /// A client must send its hello this quickly after connecting.
    pub hello_timeout: Duration,
    /// A connection silent this long between requests is closed.
    pub idle_timeout: Duration,
    /// `None` when there is no `[openbao]` table.
    pub openbao: Option<OpenBaoConfig>,
    /// The HTTP front's socket (see `front`): as configured until `main`
    /// resolves it, then where it is served (or `Off`), which `status`
    /// shows.
    pub http_socket: FrontSocket,
}

/// Where the HTTP front listens. A separate socket rather than a mode of
/// the main one, so its path can be given to an HTTP library as is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FrontSocket {
    /// `http.sock` beside the main socket.
    #[default]
    Default,
    /// `http_socket = ""`: no front.
    Off,
    At(PathBuf),
}

impl FrontSocket {
    /// An empty path turns the front off (as `http_socket = ""` and
    /// `--http-socket ''` say).
    pub fn from_path(p: PathBuf) -> FrontSocket {
        if p.as_os_str().is_empty() {
            FrontSocket::Off
        } else {
            FrontSocket::At(p)
        }
    }

    /// The path beside the main `socket` for `Default`.
    pub fn resolve(&self, socket: &Path) -> Option<PathBuf> {
        match self {
            FrontSocket::Default => {
                Some(socket.parent().unwrap_or(Path::new(".")).join("http.sock"))
            }
            FrontSocket::Off => None,
            FrontSocket::At(p) => Some(p.clone()),
        }
    }
}

/// Defaults of the connection limits (see [`Config`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for Config {
    fn default() -> Self {
        Config {
            socket: None,
            vault: None,
            lock_after_idle: Some(Duration::from_secs(8 * 3600)),
            lock_after: None,
            max_body: proto::MAX_BODY,
            request_timeout: Duration::from_secs(60),
            extra_ca: Vec::new(),
            proxy: None,
            unlock_keyfile: None,
            allow_uids: Vec::new(),
            loopback_listener_uids: Vec::new(),
            audit: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            hello_timeout: DEFAULT_HELLO_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            openbao: None,
            http_socket: FrontSocket::Default,
        }
    }
}

impl Config {
    /// Loads `path`; a missing file is fine only when `required` is false
    /// (the default location is optional, an explicit `--config` is not).
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config::default());
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Config::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    pub fn parse(text: &str) -> Result<Config, ParseError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ParseError::Toml(describe(text, &e)))?;
        let d = Config::default();
        let max_body = match raw.max_body {
            Some(s) => parse_size(&s).map_err(value("max_body"))?,
            None => d.max_body,
        };
        let positive = |key: &'static str, v: Option<String>, default: Duration| match v {
            Some(s) => parse_duration(&s)
                .map_err(value(key))?
                .ok_or(ValueError::NotPositive)
                .map_err(value(key)),
            None => Ok(default),
        };
        let request_timeout = positive("request_timeout", raw.request_timeout, d.request_timeout)?;
        let hello_timeout = positive("hello_timeout", raw.hello_timeout, d.hello_timeout)?;
        let idle_timeout = positive("idle_timeout", raw.idle_timeout, d.idle_timeout)?;
        let max_connections = match raw.max_connections {
            Some(0) => return Err(value("max_connections")(ValueError::Zero)),
            Some(n) if n > MAX_MAX_CONNECTIONS => {
                return Err(value("max_connections")(ValueError::TooManyConnections {
                    max: MAX_MAX_CONNECTIONS,
                }));
            }
            Some(n) => n,
            None => d.max_connections,
        };
        Ok(Config {
            socket: raw.socket,
            vault: raw.vault,
            lock_after_idle: match raw.lock_after_idle {
                Some(s) => parse_duration(&s).map_err(value("lock_after_idle"))?,
                None => d.lock_after_idle,
            },
            lock_after: match raw.lock_after {
                Some(s) => parse_duration(&s).map_err(value("lock_after"))?,
                None => d.lock_after,
            },
            max_body,
            request_timeout,
            extra_ca: raw.extra_ca,
            proxy: raw.proxy,
            unlock_keyfile: raw.unlock_keyfile,
            allow_uids: check_allow_uids(raw.allow_uids)?,
            loopback_listener_uids: check_listener_uids(raw.loopback_listener_uids)?,
            audit: raw.audit,
            max_connections,
            hello_timeout,
            idle_timeout,
            openbao: raw.openbao.map(openbao).transpose()?,
            http_socket: raw
                .http_socket
                .map_or(FrontSocket::Default, FrontSocket::from_path),
        })
    }
}

/// Defaults of `[openbao]`.
pub const DEFAULT_OPENBAO_REFRESH: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_OPENBAO_MAX_STALE: Duration = Duration::from_secs(3600);

fn openbao(raw: RawOpenBao) -> Result<OpenBaoConfig, ParseError> {
    if raw.addrs.is_empty() {
        return Err(value("openbao.addrs")(ValueError::NoAddrs));
    }
    let mut addrs = Vec::new();
    for a in &raw.addrs {
        let u = url::Url::parse(a).map_err(|_| value("openbao.addrs")(ValueError::Addr))?;
        let plain = u.scheme() == "http" || u.scheme() == "https";
        // The secret_id and token cross this connection: TLS, unless the
        // node is on this machine's loopback.
        let loopback = match u.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            _ => false,
        };
        if u.scheme() == "http" && !loopback {
            return Err(value("openbao.addrs")(ValueError::PlainAddr));
        }
        if !plain
            || u.host().is_none()
            || !u.username().is_empty()
            || u.password().is_some()
            || u.query().is_some()
            || u.path() != "/"
        {
            return Err(value("openbao.addrs")(ValueError::Addr));
        }
        addrs.push(u);
    }
    let auth = match raw.auth.as_deref() {
        None | Some("approle") => OpenBaoAuth::AppRole,
        Some("token") => OpenBaoAuth::Token,
        Some(other) => {
            return Err(value("openbao.auth")(ValueError::Auth {
                value: other.to_owned(),
            }));
        }
    };
    let segment = |key: &'static str, v: Option<String>, default: &str| {
        let v = v.unwrap_or_else(|| default.to_owned());
        let ok = !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
            && !v.starts_with('/')
            && !v.ends_with('/')
            && !v.split('/').any(|p| p.is_empty() || p == "." || p == "..");
        if ok {
            Ok(v)
        } else {
            Err(value(key)(ValueError::Mount))
        }
    };
    let duration = |key: &'static str, v: Option<String>, default: Duration| match v {
        Some(s) => parse_duration(&s)
            .map_err(value(key))?
            .ok_or(ValueError::NotPositive)
            .map_err(value(key)),
        None => Ok(default),
    };
    let refresh = duration("openbao.refresh", raw.refresh, DEFAULT_OPENBAO_REFRESH)?;
    let max_stale = duration(
        "openbao.max_stale",
        raw.max_stale,
        DEFAULT_OPENBAO_MAX_STALE,
    )?;
    Ok(OpenBaoConfig {
        addrs,
        ca: raw.ca,
        namespace: raw
            .namespace
            .map(|n| segment("openbao.namespace", Some(n), ""))
            .transpose()?,
        kv_mount: segment("openbao.kv_mount", raw.kv_mount, "secret")?,
        auth,
        approle_mount: segment("openbao.approle_mount", raw.approle_mount, "approle")?,
        refresh,
        max_stale,
    })
}

/// toml's message plus the line it is about, so a wrong value names its key
/// ("invalid value: integer `-1`, expected usize" alone does not).
fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().to_owned();
    let Some(span) = e.span() else {
        return message;
    };
    let line_no = text[..span.start.min(text.len())].matches('\n').count();
    // The key names the line; its value is never repeated (a mistyped
    // `proxy = http://user:password@host` must not reach the journal).
    let key = text
        .lines()
        .nth(line_no)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && k.len() <= 64);
    match key {
        Some(key) if !message.contains(key) => {
            format!("line {}: {message} (key `{key}`)", line_no + 1)
        }
        _ => format!("line {}: {message}", line_no + 1),
    }
}

/// Upper bound of `max_connections` (tokio's semaphore has a far higher
/// one; this catches typos such as an extra digit).
const MAX_MAX_CONNECTIONS: usize = 1 << 20;

/// "8h", "90s", "1h 30m"; "0" means never (`None`).
pub fn parse_duration(s: &str) -> Result<Option<Duration>, ValueError> {
    let s = s.trim();
    if s == "0" {
        return Ok(None);
    }
    let d = humantime::parse_duration(s).map_err(|e| ValueError::Duration {
        value: s.to_owned(),
        reason: e.to_string(),
    })?;
    Ok((!d.is_zero()).then_some(d))
}

/// "64MiB", "512KiB", "1GiB", "1000" (bytes); K/M/G alone mean KiB/MiB/GiB.
pub fn parse_size(s: &str) -> Result<usize, ValueError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().map_err(|_| ValueError::SizeNumber {
        value: s.to_owned(),
    })?;
    let mult: usize = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(ValueError::SizeUnit {
                unit: other.to_owned(),
            });
        }
    };
    n.checked_mul(mult).ok_or_else(|| ValueError::SizeTooLarge {
        value: s.to_owned(),
    })
}

/// The overflow uid: under the shipped unit's `PrivateUsers=yes` every uid
/// but the daemon's own (and root) appears as this one inside the unit, so
/// listing it would admit every local user at once.
const OVERFLOW_UID: u32 = 65534;

fn check_allow_uids(uids: Vec<u32>) -> Result<Vec<u32>, ParseError> {
    if uids.contains(&OVERFLOW_UID) {
        return Err(ParseError::OverflowUid);
    }
    Ok(uids)
}

fn check_listener_uids(uids: Vec<u32>) -> Result<Vec<u32>, ParseError> {
    if uids.contains(&OVERFLOW_UID) {
        return Err(ParseError::OverflowListenerUid);
    }
    Ok(uids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.lock_after_idle, Some(Duration::from_secs(8 * 3600)));
        assert_eq!(c.lock_after, None);
        assert_eq!(c.max_body, 64 << 20);
        assert_eq!(c.request_timeout, Duration::from_secs(60));
        assert!(!c.audit);
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.hello_timeout, Duration::from_secs(5));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
    }

    #[test]
    fn connection_limits() {
        let c = Config::parse(
            "max_connections = 16\nhello_timeout = \"500ms\"\nidle_timeout = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(c.max_connections, 16);
        assert_eq!(c.hello_timeout, Duration::from_millis(500));
        assert_eq!(c.idle_timeout, Duration::from_secs(2));
        for bad in [
            "max_connections = 0",
            "max_connections = -1",
            "max_connections = 99999999",
            "hello_timeout = \"0\"",
            "idle_timeout = \"0s\"",
            "idle_timeout = \"soon\"",
        ] {
            let e = Config::parse(bad).unwrap_err().to_string();
            let key = bad.split(' ').next().unwrap();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn units() {
        let c = Config::parse(
            "lock_after_idle = \"0\"\nlock_after = \"90s\"\nmax_body = \"1MiB\"\nrequest_timeout = \"2m\"\nallow_uids = [1001]\n",
        )
        .unwrap();
        assert_eq!(c.lock_after_idle, None);
        assert_eq!(c.lock_after, Some(Duration::from_secs(90)));
        assert_eq!(c.max_body, 1 << 20);
        assert_eq!(c.request_timeout, Duration::from_secs(120));
        assert_eq!(c.allow_uids, vec![1001]);
    }

    #[test]
    fn openbao_table_defaults_and_refusals() {
        let c = Config::parse("[openbao]\naddrs = [\"https://bao.example.org:8200\"]\n")
            .unwrap()
            .openbao
            .unwrap();
        assert_eq!(c.kv_mount, "secret");
        assert_eq!(c.approle_mount, "approle");
        assert_eq!(c.auth, OpenBaoAuth::AppRole);
        assert_eq!(c.refresh, DEFAULT_OPENBAO_REFRESH);
        assert_eq!(c.max_stale, DEFAULT_OPENBAO_MAX_STALE);
        assert!(Config::parse("").unwrap().openbao.is_none());
        let ok = Config::parse(
            "[openbao]\naddrs = [\"http://127.0.0.1:8200\", \"https://[::1]:8200\"]\nauth = \"token\"\nkv_mount = \"team/kv\"\nrefresh = \"30s\"\nmax_stale = \"2h\"\n",
        )
        .unwrap()
        .openbao
        .unwrap();
        assert_eq!(ok.addrs.len(), 2);
        assert_eq!(ok.auth, OpenBaoAuth::Token);
        assert_eq!(ok.refresh, Duration::from_secs(30));
        for (bad, says) in [
            ("[openbao]\n", "at least one node"),
            ("[openbao]\naddrs = []\n", "at least one node"),
            (
                "[openbao]\naddrs = [\"http://bao.example.org:8200\"]\n",
                "must be https",
            ),
            (
                "[openbao]\naddrs = [\"https://u:s3cret@bao.example.org\"]\n",
                "no user",
            ),
            ("[openbao]\naddrs = [\"https://b/v1\"]\n", "no user, path"),
            (
                "[openbao]\naddrs = [\"https://b\"]\nauth = \"userpass\"\n",
                "unknown auth",
            ),
            (
                "[openbao]\naddrs = [\"https://b\"]\nkv_mount = \"../sys\"\n",
                "kv_mount",
            ),
            (
                "[openbao]\naddrs = [\"https://b\"]\nrefresh = \"0\"\n",
                "more than 0",
            ),
            (
                "[openbao]\naddrs = [\"https://b\"]\nrole_id = \"x\"\n",
                "role_id",
            ),
        ] {
            let e = Config::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
            assert!(!e.contains("s3cret"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn errors_name_the_key_never_the_value() {
        for bad in [
            "proxy = http://user:s3cret@proxy:3128\n",
            "proxy = [\"http://user:s3cret@proxy:3128\"]\n",
            "proxy = { url = \"http://user:s3cret@proxy:3128\" }\n",
        ] {
            let e = Config::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cret"), "{bad:?}: {e}");
            assert!(e.contains("proxy"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("lock_afer_idle = \"1h\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lock_afer_idle"), "{e}");
    }

    #[test]
    fn bad_values() {
        assert!(Config::parse("max_body = \"12 parsecs\"").is_err());
        assert_eq!(
            Config::parse("max_body = \"4GiB\"").unwrap().max_body,
            4 << 30
        );
        assert!(Config::parse("request_timeout = \"soon\"").is_err());
    }

    #[test]
    fn allow_uids_refuses_the_overflow_uid_and_says_why() {
        let e = Config::parse("allow_uids = [1001, 65534]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("65534") && e.contains("PrivateUsers"), "{e}");
        assert_eq!(
            Config::parse("allow_uids = [1001]\n").unwrap().allow_uids,
            vec![1001]
        );
    }
}
