//! What the client may ask of the upstream, and how the daemon reaches it:
//! headers that would slice an echo of the token or sidestep `--method`, a
//! configured proxy, and who vaultctl hands secrets to.

use harness::{Daemon, Upstream, canary};

/// Range / If-Range with a header or bearer credential, and a method
/// override with `--method` rules, are refused (exit 5) before anything is
/// sent.
#[test]
fn slicing_and_method_override_headers_are_refused_before_sending() {
    let up = Upstream::plain();
    let d = Daemon::start("");
    d.init();
    let token = canary("slice");
    d.add(
        "hdr",
        &token,
        &["--header", "Access-Token", "--origin", &up.origin()],
    )
    .ok();
    d.add("bear", &token, &["--bearer", "--origin", &up.origin()])
        .ok();
    d.add(
        "get",
        &token,
        &["--bearer", "--method", "GET", "--origin", &up.origin()],
    )
    .ok();
    let url = up.url("/echo");
    let cases: [(&str, &str, &str); 6] = [
        ("hdr", "Range: bytes=0-3", "Range"),
        ("hdr", "If-Range: \"x\"", "If-Range"),
        ("bear", "range: bytes=4-7", "range"),
        (
            "get",
            "X-HTTP-Method-Override: DELETE",
            "X-HTTP-Method-Override",
        ),
        ("get", "X-HTTP-Method: DELETE", "X-HTTP-Method"),
        ("get", "X-Method-Override: DELETE", "X-Method-Override"),
    ];
    for (cred, header, name) in cases {
        let out = d.ctl(&["request", cred, &url, "-H", header]).code(5);
        let msg = out.stderr.trim_end();
        assert!(msg.contains(name), "{header}: {msg}");
        assert!(msg.lines().count() == 1, "{header}: {msg}");
        assert!(
            !msg.contains(&token) && msg.starts_with("vaultctl: "),
            "{msg}"
        );
    }
    assert!(up.requests().is_empty(), "the upstream received a request");
    // Without --method rules, the override header is the server's business.
    d.ctl(&["request", "bear", &url, "-H", "X-HTTP-Method-Override: GET"])
        .ok();
    assert_eq!(up.requests().len(), 1);
}

/// A TCP listener on 127.0.0.1 standing in for a configured proxy: it
/// records every connection and every byte, answers a `CONNECT` with 502
/// (it reaches nothing), and closes anything else after reading it.
struct RecordingProxy {
    port: u16,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    bytes: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl RecordingProxy {
    fn start() -> RecordingProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, b) = (connections.clone(), bytes.clone());
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                c.fetch_add(1, Ordering::SeqCst);
                let b = b.clone();
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        b.lock().expect("proxy log").extend_from_slice(&buf[..n]);
                        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            let _ = s.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                            break;
                        }
                    }
                });
            }
        });
        RecordingProxy {
            port,
            connections,
            bytes,
        }
    }

    fn config(&self) -> String {
        format!("proxy = \"http://127.0.0.1:{}\"\n", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn seen(&self) -> String {
        String::from_utf8_lossy(&self.bytes.lock().expect("proxy log")).into_owned()
    }
}

/// #11 item 5: with a `proxy` configured, a job to a loopback origin, plain
/// http or https, goes straight to the upstream; the proxy gets no
/// connection and no byte.
#[test]
fn a_configured_proxy_never_sees_loopback_jobs() {
    let proxy = RecordingProxy::start();
    let plain = Upstream::plain();
    let tls = Upstream::tls();
    let ca = tls.ca_pem.as_ref().expect("TLS upstream");
    let config = format!("{}extra_ca = [\"{{dir}}/ca.pem\"]\n", proxy.config());
    let d = Daemon::start_with(&config, &[("ca.pem", ca.as_bytes())]);
    d.init();
    let token = canary("proxyloop");
    d.add(
        "lo",
        &token,
        &[
            "--header",
            "Access-Token",
            "--origin",
            &plain.origin(),
            "--origin",
            &tls.origin(),
        ],
    )
    .ok();
    d.ctl(&["request", "lo", &plain.url("/user")]).ok();
    d.ctl(&["request", "lo", &tls.url("/user")]).ok();
    assert!(plain.saw(&token), "the plain loopback upstream got nothing");
    assert!(tls.saw(&token), "the TLS loopback upstream got nothing");
    assert_eq!(
        proxy.connections(),
        0,
        "the proxy was used: {:?}",
        proxy.seen()
    );
}

/// #11 item 5: plain http off loopback (`--allow-insecure-http`) carries the
/// token in cleartext, so it never goes through the proxy: the job goes
/// direct (here it cannot reach 192.0.2.1, TEST-NET-1, and fails with exit
/// 6) and the proxy sees nothing. An https origin off loopback still uses
/// the proxy, which only ever sees the CONNECT line.
#[test]
fn a_configured_proxy_never_carries_plain_http() {
    let proxy = RecordingProxy::start();
    let d = Daemon::start(&proxy.config());
    d.init();
    let token = canary("proxyplain");
    d.add(
        "far",
        &token,
        &[
            "--bearer",
            "--allow-insecure-http",
            "--origin",
            "http://192.0.2.1:8080",
            "--origin",
            "https://tokenvault-proxy-test.invalid",
        ],
    )
    .ok();
    let out = d.ctl(&[
        "request",
        "far",
        "http://192.0.2.1:8080/user",
        "--max-time",
        "3",
    ]);
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert_eq!(
        proxy.connections(),
        0,
        "plain http went through the proxy: {:?}",
        proxy.seen()
    );
    let out = d.ctl(&[
        "request",
        "far",
        "https://tokenvault-proxy-test.invalid/user",
        "--max-time",
        "5",
    ]);
    assert_eq!(out.code, 6, "{}", out.stderr);
    let seen = proxy.seen();
    assert!(
        seen.starts_with("CONNECT tokenvault-proxy-test.invalid:443 "),
        "https off loopback should use the proxy: {seen:?}"
    );
    assert!(!seen.contains(&token));
}

/// #11 item 6: `http://localhost:P` may connect to [::1]:P, where another
/// local user can listen while the real service is on 127.0.0.1:P, and
/// plain http would hand that user the token. Such an origin is refused at
/// `add` with a message naming the address literals to use instead, and
/// nothing reaches either listener.
#[test]
fn plain_http_localhost_origins_are_refused_asking_for_an_address() {
    let up = Upstream::plain();
    let port = up.addr.port();
    // The other user's listener on [::1] at the real service's port.
    let decoy = match std::net::TcpListener::bind(("::1", port)) {
        Ok(l) => Some(l),
        Err(e) => {
            println!("no [::1]:{port} decoy ({e}); checking the refusal only");
            None
        }
    };
    if let Some(l) = &decoy {
        l.set_nonblocking(true).expect("nonblocking");
    }
    let d = Daemon::start("");
    d.init();
    let token = canary("localhost");
    let origin = format!("http://localhost:{port}");
    let out = d
        .add("lh", &token, &["--bearer", "--origin", &origin])
        .code(1);
    let msg = out.stderr.trim_end();
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(msg.starts_with("vaultctl: "), "{msg}");
    assert!(
        msg.contains(&format!("http://127.0.0.1:{port}"))
            && msg.contains(&format!("http://[::1]:{port}")),
        "{msg}"
    );
    let out = d.ctl(&["request", "lh", &format!("{origin}/user")]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    // Case and a trailing slash do not get it in either.
    d.add(
        "lh2",
        &token,
        &["--bearer", "--origin", &format!("http://LocalHost:{port}/")],
    )
    .code(1);
    if let Some(l) = &decoy {
        assert!(l.accept().is_err(), "the [::1] listener got a connection");
    }
    assert!(up.requests().is_empty());
    // The address literals are accepted.
    d.add(
        "v4",
        &token,
        &["--bearer", "--origin", &format!("http://127.0.0.1:{port}")],
    )
    .ok();
    d.add(
        "v6",
        &token,
        &["--bearer", "--origin", &format!("http://[::1]:{port}")],
    )
    .ok();
}

/// A listener on `path` run as `user` (this test binary again, running
/// [`fake_vaultd_helper`]), impersonating vaultd: it answers every
/// connection with vaultd's own hello and appends every byte it receives
/// to `log`.
fn fake_vaultd_as(
    user: &harness::TestUser,
    path: &std::path::Path,
    log: &std::path::Path,
) -> std::process::Child {
    let child = user
        .command(std::env::current_exe().expect("test binary"))
        .args(["--exact", "fake_vaultd_helper", "--nocapture"])
        .env("TOKENVAULT_FAKE_VAULTD", path)
        .env("TOKENVAULT_FAKE_VAULTD_LOG", log)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the fake vaultd");
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the fake vaultd did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

/// Not a test on its own: a no-op unless [`fake_vaultd_as`] started this
/// binary with `TOKENVAULT_FAKE_VAULTD` set; then the fake vaultd's loop.
#[test]
fn fake_vaultd_helper() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    let (Some(path), Some(log)) = (
        std::env::var_os("TOKENVAULT_FAKE_VAULTD"),
        std::env::var_os("TOKENVAULT_FAKE_VAULTD_LOG"),
    ) else {
        return;
    };
    let mut hello = Vec::new();
    proto::frame::write_frame(
        &mut hello,
        &proto::Hello {
            version: proto::PROTOCOL_VERSION,
        },
    )
    .expect("hello frame");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    for mut c in listener.incoming().flatten() {
        let _ = c.set_read_timeout(Some(std::time::Duration::from_millis(1500)));
        let _ = c.write_all(&hello);
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = c.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        f.write_all(&got).expect("write log");
        // One line per connection: how many bytes it carried.
        let mut counts = log.clone();
        counts.push(".counts");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(counts)
            .expect("counts");
        writeln!(f, "{}", got.len()).expect("write counts");
    }
}

/// #11 "Also": vaultctl checks with SO_PEERCRED who serves the socket
/// before it sends a passphrase, key or token. A listener of another uid
/// (neither the caller's nor root's) impersonating vaultd gets no byte from
/// `init`, `unlock`, `passwd`, `add`, `rotate`, `keyfile create`/`remove`;
/// vaultctl exits 2 with one line naming the socket and the peer's uid.
#[test]
fn vaultctl_sends_no_secret_to_a_socket_served_by_another_uid() {
    use std::os::unix::fs::PermissionsExt;
    let test = "vaultctl_sends_no_secret_to_a_socket_served_by_another_uid";
    if !harness::is_root() {
        eprintln!("skipping {test}: needs root to run a listener as another uid");
        return;
    }
    let user = match harness::TestUser::create("fake") {
        Ok(u) => u,
        Err(e) => {
            eprintln!("skipping {test}: {e}");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    user.own(&run);
    let socket = run.join("vaultd.sock");
    let log = run.join("received");
    let mut fake = fake_vaultd_as(&user, &socket, &log);
    let keyfile = dir.path().join("new.key");
    let oldkey = dir.path().join("old.key");
    std::fs::write(&oldkey, [7u8; 32]).unwrap();
    std::fs::set_permissions(&oldkey, std::fs::Permissions::from_mode(0o600)).unwrap();
    let passphrase = canary("fakepass");
    let token = canary("faketoken");
    let secret_in = format!("{passphrase}\n{token}\n");
    let cases: [&[&str]; 8] = [
        &["init", "--passphrase-stdin"],
        &["unlock", "--passphrase-stdin"],
        &["passwd", "--passphrase-stdin"],
        &["add", "svc", "--bearer", "--origin", "http://127.0.0.1:9"],
        &["rotate", "svc"],
        &[
            "keyfile",
            "create",
            keyfile.to_str().unwrap(),
            "--passphrase-stdin",
        ],
        &["keyfile", "remove", "--passphrase-stdin"],
        &["unlock", "--keyfile", oldkey.to_str().unwrap()],
    ];
    let mut failures = Vec::new();
    for args in cases {
        let out = harness::daemon::run(
            std::process::Command::new(harness::bin("vaultctl"))
                .env("VAULTD_SOCKET", &socket)
                .args(args),
            Some(secret_in.as_bytes()),
        );
        let msg = out.stderr.trim_end().to_owned();
        if args[0] == "unlock" {
            eprintln!("vaultctl {args:?} is told: {msg}");
        }
        let ok = out.code == 2
            && msg.lines().count() == 1
            && msg.starts_with("vaultctl: ")
            && msg.contains(&socket.display().to_string())
            && msg.contains(&format!("uid {}", user.uid));
        if !ok {
            failures.push(format!("{args:?}: exit {}: {msg}", out.code));
        }
    }
    // A last harmless request, so a fake that is slow to write its log is
    // waited for: status carries no secret and still goes through.
    let _ = harness::daemon::run(
        std::process::Command::new(harness::bin("vaultctl"))
            .env("VAULTD_SOCKET", &socket)
            .arg("status"),
        None,
    );
    let received = std::fs::read(&log).unwrap_or_default();
    let counts = std::fs::read_to_string(run.join("received.counts")).unwrap_or_default();
    let counts: Vec<usize> = counts.lines().map(|l| l.parse().unwrap()).collect();
    let _ = fake.kill();
    let _ = fake.wait();
    assert!(
        !received.is_empty(),
        "the fake vaultd recorded nothing at all: the check of the test is broken"
    );
    assert_eq!(
        harness::count(&received, passphrase.as_bytes())
            + harness::count(&received, token.as_bytes()),
        0,
        "a secret reached the other uid's listener"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Not even a hello: each secret-carrying command checked the peer
    // before writing anything; only the final `status` spoke.
    assert_eq!(counts.len(), cases.len() + 1, "connections: {counts:?}");
    assert!(
        counts[..cases.len()].iter().all(|&n| n == 0),
        "bytes per connection: {counts:?}"
    );
}
