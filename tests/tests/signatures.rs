//! Issue 7 end to end: signing credentials (RFC 9421) through `vaultctl
//! request`, checked by the upstream's own verifier (`harness::sigverify`,
//! which shares no code with the daemon), plus `pubkey` and `explain`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use harness::sigverify::{self, VerifyKey};
use harness::{Daemon, Upstream, canary, count};

fn ready() -> Daemon {
    let d = Daemon::start("");
    d.init();
    d
}

fn random(n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    b
}

#[test]
fn ed25519_generated_key_signs_every_request_and_hop() {
    let up = Upstream::plain();
    let d = ready();
    let out = d
        .ctl(&[
            "add",
            "ed",
            "--sign",
            "ed25519",
            "--keyid",
            "client-1",
            "--origin",
            &up.origin(),
        ])
        .ok();
    assert!(out.stderr.contains("vaultctl pubkey ed"), "{}", out.stderr);

    // pubkey: PEM (SPKI) then a JWK of the same key.
    let pk = d.ctl(&["pubkey", "ed"]).ok().text();
    let key = VerifyKey::ed25519_from_pem(&pk);
    let VerifyKey::Ed25519(raw) = &key else {
        unreachable!()
    };
    let jwk_line = pk.lines().find(|l| l.starts_with('{')).expect("JWK line");
    let jwk: serde_json::Value = serde_json::from_str(jwk_line).unwrap();
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(jwk["kid"], "client-1");
    assert_eq!(jwk["x"], URL_SAFE_NO_PAD.encode(raw));
    up.set_verify_key(key.clone());

    // GET: method and target URI are covered.
    let out = d.ctl(&["request", "ed", &up.url("/verify?x=1"), "-f"]).ok();
    assert_eq!(out.text(), "verified: @method @target-uri");

    // POST with a body: the digest and content type are covered too.
    let out = d
        .ctl(&[
            "request",
            "ed",
            &up.url("/verify"),
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"hello": "world"}"#,
            "-f",
        ])
        .ok();
    assert_eq!(
        out.text(),
        "verified: @method @target-uri content-digest content-type"
    );
    let posted = up.requests().pop().unwrap();
    assert_eq!(
        posted.header("content-digest").as_deref(),
        Some("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:")
    );
    // The same body from a file (streamed by vaultctl, gathered by the
    // daemon for the digest) signs identically.
    let file = d.path("body.json");
    std::fs::write(&file, r#"{"hello": "world"}"#).unwrap();
    let out = d
        .ctl(&[
            "request",
            "ed",
            &up.url("/verify"),
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!("@{}", file.display()),
            "-f",
        ])
        .ok();
    assert_eq!(
        out.text(),
        "verified: @method @target-uri content-digest content-type"
    );
    assert_eq!(
        up.requests().pop().unwrap().header("content-digest"),
        posted.header("content-digest")
    );
    let v = sigverify::verify(&posted, "http", &key).unwrap();
    assert_eq!(v.keyid.as_deref(), Some("client-1"));
    assert_eq!(v.alg.as_deref(), Some("ed25519"));
    // No --sig-ttl: new signing credentials expire their signatures after
    // 300 s, so one read back through an echo is soon worthless.
    assert_eq!(v.expires, Some(v.created + 300));
    // No token of any kind travels with a signed request.
    assert!(posted.header("authorization").is_none());

    // A man in the middle who changes the body is caught by the digest...
    let out = d
        .ctl(&[
            "request",
            "ed",
            &up.url("/verify-tampered"),
            "-d",
            "amount=10",
        ])
        .ok();
    assert_eq!(
        out.text(),
        "signature rejected: content-digest does not match the body"
    );
    // ...and one who also rewrites the digest, by the signature.
    let mut forged = up.requests().pop().unwrap();
    forged.body = b"amount=99".to_vec();
    let digest = ring::digest::digest(&ring::digest::SHA256, &forged.body);
    for h in forged.headers.iter_mut() {
        if h.0 == "content-digest" {
            h.1 = format!("sha-256=:{}:", STANDARD.encode(digest)).into_bytes();
        }
    }
    let e = sigverify::verify(&forged, "http", &key).unwrap_err();
    assert_eq!(e, "bad ed25519 signature");

    // -L: each hop is signed for its own URL (and a 303 drops the body).
    let n = up.requests().len();
    for (code, want) in [
        (
            "307",
            "verified: @method @target-uri content-digest content-type",
        ),
        // A 303 turns the POST into a GET: its body and Content-Type go.
        ("303", "verified: @method @target-uri"),
    ] {
        let out = d
            .ctl(&[
                "request",
                "ed",
                &up.url(&format!("/redirect?to=/verify&code={code}")),
                "-d",
                "a=1",
                "-L",
                "-f",
            ])
            .ok();
        assert_eq!(out.text(), want, "redirect {code}");
    }
    let hops = &up.requests()[n..];
    assert_eq!(hops.len(), 4);
    assert_ne!(hops[0].header("signature"), hops[1].header("signature"));

    // The client may not bring its own signature or digest: exit 5, nothing sent.
    let n = up.requests().len();
    for h in [
        "Signature: sig1=:AAAA:",
        "Signature-Input: sig1=();created=1",
        "Content-Digest: sha-256=:AAAA:",
    ] {
        let out = d
            .ctl(&["request", "ed", &up.url("/verify"), "-H", h])
            .code(5);
        assert!(out.stderr.starts_with("vaultctl: "), "{}", out.stderr);
    }
    assert_eq!(up.requests().len(), n);
    // Origin binding is unchanged.
    let other = Upstream::plain();
    d.ctl(&["request", "ed", &other.url("/verify")]).code(5);
    assert!(other.requests().is_empty());

    let list = d.ctl(&["list", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["injection"], "sign");
    assert_eq!(v[0]["alg"], "ed25519");
    assert_eq!(v[0]["keyid"], "client-1");
    assert!(d.ctl(&["list"]).ok().text().contains("sign ed25519"));
}

#[test]
fn hmac_imported_secret_signs_and_never_travels() {
    let up = Upstream::plain();
    let d = ready();
    // Binary, ending in a newline byte: imported byte-exact.
    let mut secret = random(31);
    secret.push(b'\n');
    d.ctl_in(
        &[
            "add",
            "h",
            "--sign",
            "hmac-sha256",
            "--import",
            "--keyid",
            "k1",
            "--sig-ttl",
            "60",
            "--origin",
            &up.origin(),
        ],
        Some(&secret),
    )
    .ok();
    up.set_verify_key(VerifyKey::Hmac(secret.clone()));
    let body = d.path("body.json");
    std::fs::write(&body, br#"{"n":1}"#).unwrap();
    let out = d
        .ctl(&[
            "request",
            "h",
            &up.url("/verify"),
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!("@{}", body.display()),
            "-f",
        ])
        .ok();
    assert_eq!(
        out.text(),
        "verified: @method @target-uri content-digest content-type"
    );
    let req = up.requests().pop().unwrap();
    let v = sigverify::verify(&req, "http", &VerifyKey::Hmac(secret.clone())).unwrap();
    assert_eq!(v.expires, Some(v.created + 60));
    assert_eq!(v.keyid.as_deref(), Some("k1"));
    assert_eq!(v.alg.as_deref(), Some("hmac-sha256"));
    // Another secret (the one without the trailing newline, say) fails.
    let e = sigverify::verify(&req, "http", &VerifyKey::Hmac(secret[..31].to_vec()));
    assert_eq!(e.unwrap_err(), "bad hmac-sha256 signature");
    // Tampered body: rejected by the upstream.
    let out = d
        .ctl(&["request", "h", &up.url("/verify-tampered"), "-d", "x=1"])
        .ok();
    assert!(
        out.text().contains("content-digest does not match"),
        "{}",
        out.text()
    );

    // The secret is in no request, log line or the vault file.
    let b64 = STANDARD.encode(&secret);
    for r in up.requests() {
        assert_eq!(count(&r.body, &secret), 0);
        for (_, val) in &r.headers {
            assert_eq!(count(val, &secret), 0);
            assert_eq!(count(val, b64.as_bytes()), 0);
        }
    }
    assert_eq!(count(d.log().as_bytes(), &secret), 0);
    assert_eq!(count(&std::fs::read(&d.vault).unwrap(), &secret), 0);

    // An HMAC secret cannot be generated (the upstream must know it), has
    // no public key, and must not be trivially short.
    let out = d
        .ctl(&[
            "add",
            "g",
            "--sign",
            "hmac-sha256",
            "--origin",
            &up.origin(),
        ])
        .code(1);
    assert!(out.stderr.contains("--import"), "{}", out.stderr);
    d.ctl(&["pubkey", "h"]).code(1);
    d.ctl_in(
        &[
            "add",
            "s",
            "--sign",
            "hmac-sha256",
            "--import",
            "--origin",
            &up.origin(),
        ],
        Some(b"short"),
    )
    .code(1);
    d.ctl(&["pubkey", "nosuch"]).code(4);
}

#[test]
fn imported_rfc_key_has_the_rfcs_public_key_and_covers_what_it_is_told() {
    let up = Upstream::plain();
    let d = ready();
    // RFC 9421 §B.1.4 test-key-ed25519.
    let pem = "-----BEGIN PRIVATE KEY-----\n\
               MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n\
               -----END PRIVATE KEY-----\n";
    d.ctl_in(
        &[
            "add",
            "rfc",
            "--sign",
            "ed25519",
            "--import",
            "--cover",
            "date",
            "--cover",
            "@method",
            "--cover",
            "@path",
            "--cover",
            "@authority",
            "--origin",
            &up.origin(),
        ],
        Some(pem.as_bytes()),
    )
    .ok();
    let pk = d.ctl(&["pubkey", "rfc"]).ok().text();
    assert!(
        pk.starts_with(
            "-----BEGIN PUBLIC KEY-----\n\
             MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n\
             -----END PUBLIC KEY-----\n"
        ),
        "{pk}"
    );
    up.set_verify_key(VerifyKey::ed25519_from_pem(&pk));
    // A covered header the request lacks: refused, nothing sent.
    let out = d.ctl(&["request", "rfc", &up.url("/verify")]).code(5);
    assert!(out.stderr.contains("\"date\""), "{}", out.stderr);
    assert!(up.requests().is_empty());
    let out = d
        .ctl(&[
            "request",
            "rfc",
            &up.url("/verify"),
            "-H",
            "Date: Tue, 20 Apr 2021 02:07:55 GMT",
            "-f",
        ])
        .ok();
    assert_eq!(out.text(), "verified: date @method @path @authority");
    // Key material that is not an Ed25519 key is refused.
    d.ctl_in(
        &[
            "add",
            "bad",
            "--sign",
            "ed25519",
            "--import",
            "--origin",
            &up.origin(),
        ],
        Some(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
    )
    .code(1);
}

#[test]
fn explain_gives_the_verdict_without_sending() {
    let up = Upstream::plain();
    let other = Upstream::plain();
    let d = ready();
    let token = canary("explain");
    d.add(
        "b",
        &token,
        &["--bearer", "--origin", &up.origin(), "--method", "GET"],
    )
    .ok();
    d.ctl(&[
        "add",
        "s",
        "--sign",
        "ed25519",
        "--keyid",
        "k",
        "--origin",
        &up.origin(),
    ])
    .ok();

    let out = d.ctl(&["explain", "b", &up.url("/user")]).ok();
    assert_eq!(
        out.text(),
        format!(
            "GET {}\nallowed: vaultd would send it, adding:\n  Authorization: Bearer <the credential's token>\n",
            up.url("/user")
        )
    );
    let out = d.ctl(&["explain", "s", &up.url("/x"), "-d", "a=1"]).ok();
    let text = out.text();
    assert!(
        text.starts_with(&format!("POST {}\nallowed", up.url("/x"))),
        "{text}"
    );
    assert!(
        text.contains("Content-Digest: sha-256=:<SHA-256 of the body>:"),
        "{text}"
    );
    assert!(
        text.contains(r#"Signature-Input: sig1=("@method" "@target-uri" "content-digest" "content-type");created=<time of sending>;expires=<created+300>;keyid="k";alg="ed25519""#),
        "{text}"
    );

    // Refusals: exit 5, the rule on stdout and one line on stderr.
    let out = d.ctl(&["explain", "b", &other.url("/user")]).code(5);
    assert!(out.text().contains("refused: origin"), "{}", out.text());
    assert!(out.text().contains(&up.origin()), "{}", out.text());
    assert!(
        out.stderr.starts_with("vaultctl: refused: "),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
    let out = d
        .ctl(&["explain", "b", &up.url("/user"), "-X", "DELETE"])
        .code(5);
    assert!(out.text().contains("method DELETE"), "{}", out.text());
    let out = d
        .ctl(&["explain", "s", &up.url("/x"), "-H", "Signature: sig1=:x:"])
        .code(5);
    assert!(out.text().contains("Signature"), "{}", out.text());
    let json = d.ctl(&["explain", "b", &other.url("/"), "--json"]).code(5);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["allowed"], false);

    // Usual exit codes; never a value; nothing sent, no use counted.
    d.ctl(&["explain", "nosuch", &up.url("/")]).code(4);
    d.ctl(&["explain", "b", "not a url"]).code(5);
    d.ctl(&["explain", "b", "/relative"]).code(1);
    for out in [
        d.ctl(&["list", "--json"]).ok(),
        d.ctl(&["explain", "b", &up.url("/")]).ok(),
    ] {
        assert_eq!(count(&out.stdout, token.as_bytes()), 0);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&d.ctl(&["list", "--json"]).ok().stdout).unwrap();
    assert_eq!(v[0]["use_count"], 0);
    d.ctl(&["lock"]).ok();
    d.ctl(&["explain", "b", &up.url("/")]).code(3);
    assert!(up.requests().is_empty() && other.requests().is_empty());
}

#[test]
fn sig_ttl_zero_is_an_explicit_never_expires() {
    let up = Upstream::plain();
    let d = ready();
    for (name, ttl) in [("forever", Some("0")), ("default", None)] {
        let mut args = vec!["add", name, "--sign", "ed25519", "--origin"];
        let origin = up.origin();
        args.push(&origin);
        if let Some(t) = ttl {
            args.extend(["--sig-ttl", t]);
        }
        d.ctl(&args).ok();
        let key = VerifyKey::ed25519_from_pem(&d.ctl(&["pubkey", name]).ok().text());
        up.set_verify_key(key.clone());
        let out = d.ctl(&["request", name, &up.url("/verify"), "-f"]).ok();
        assert_eq!(out.text(), "verified: @method @target-uri");
        let v = sigverify::verify(&up.requests().pop().unwrap(), "http", &key).unwrap();
        let want = ttl.is_none().then_some(v.created + 300);
        assert_eq!(v.expires, want, "{name}");
    }
}

#[test]
fn non_ascii_covered_headers_and_raw_url_characters_are_refused_unsent() {
    let up = Upstream::plain();
    let d = ready();
    let origin = up.origin();
    d.ctl(&[
        "add",
        "s",
        "--sign",
        "ed25519",
        "--cover",
        "@method",
        "--cover",
        "@target-uri",
        "--cover",
        "x-name",
        "--origin",
        &origin,
    ])
    .ok();
    let out = d
        .ctl(&["request", "s", &up.url("/verify"), "-H", "X-Name: Zoë"])
        .code(5);
    assert!(
        out.stderr.contains("x-name") && out.stderr.contains("US-ASCII"),
        "{}",
        out.stderr
    );
    // The WHATWG parser leaves these raw in a query or path.
    for url in [up.url("/a?q={b}"), up.url("/a|b"), up.url("/a?q=`b")] {
        let out = d
            .ctl(&["request", "s", &url, "-H", "X-Name: plain"])
            .code(5);
        assert!(
            out.stderr.contains("percent-encoded"),
            "{url}: {}",
            out.stderr
        );
    }
    assert!(up.requests().is_empty(), "nothing may be sent");
}
