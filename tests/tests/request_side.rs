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
