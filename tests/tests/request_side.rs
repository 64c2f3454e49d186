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
