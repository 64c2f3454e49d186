//! Golden bytes: one pinned encoding per message. A failure here means the
//! wire format changed: bump `PROTOCOL_VERSION` or put new variants at the
//! end, never reorder. Regenerate the table with
//! `GOLDEN_PRINT=1 cargo test -p tokenvault-proto --test golden -- --nocapture`.

use proto::codec::encode;
use proto::*;

fn spec() -> CredentialSpec {
    CredentialSpec {
        injection: Some(Injection::Header {
            name: "Access-Token".into(),
        }),
        origins: vec!["https://microreact.org".into()],
        allow_insecure_http: false,
        methods: vec!["POST".into()],
        path_prefixes: vec!["/api".into()],
        source: None,
    }
}

fn s(b: &[u8]) -> Secret {
    Secret::from_slice(b)
}

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let job = JobRequest {
        credential: "m".into(),
        method: "POST".into(),
        url: "https://microreact.org/api".into(),
        headers: vec![Header {
            name: "X".into(),
            value: b"y".to_vec(),
        }],
        body: Some(vec![0, 255]),
        follow_redirects: true,
        timeout_ms: Some(1500),
    };
    let resp = JobResponse {
        status: 200,
        http_version: "HTTP/1.1".into(),
        reason: "OK".into(),
        headers: vec![],
        body: b"{}".to_vec(),
        url: "https://a/".into(),
        redirects: 2,
        sent: Some(SentRequest {
            method: "GET".into(),
            target: "/".into(),
            http_version: "HTTP/1.1".into(),
            headers: vec![Header {
                name: "X".into(),
                value: b"y".to_vec(),
            }],
        }),
    };
    let e = |v: &dyn Erased| v.bytes();
    vec![
        ("hello", e(&Hello { version: 1 })),
        ("status", e(&Request::Status)),
        (
            "init",
            e(&Request::Init {
                passphrase: s(b"pw"),
            }),
        ),
        (
            "unlock",
            e(&Request::Unlock {
                passphrase: s(b"pw"),
            }),
        ),
        (
            "unlock_keyfile",
            e(&Request::UnlockKeyfile { key: s(b"k") }),
        ),
        ("lock", e(&Request::Lock)),
        (
            "passwd",
            e(&Request::Passwd {
                old: s(b"a"),
                new: s(b"b"),
            }),
        ),
        (
            "add",
            e(&Request::Add {
                name: "m".into(),
                spec: spec(),
                value: s(b"t"),
            }),
        ),
        (
            "rotate",
            e(&Request::Rotate {
                name: "m".into(),
                value: s(b"t"),
            }),
        ),
        ("remove", e(&Request::Remove { name: "m".into() })),
        ("list", e(&Request::List)),
        (
            "add_keyfile",
            e(&Request::AddKeyfile {
                passphrase: s(b"p"),
                key: s(b"k"),
            }),
        ),
        ("job", e(&Request::Job(job.clone()))),
        ("backup", e(&Request::Backup)),
        (
            "remove_keyfile",
            e(&Request::RemoveKeyfile {
                passphrase: s(b"p"),
            }),
        ),
        (
            "resp_status",
            e(&Response::Status(StatusInfo {
                daemon_version: "0.1.0".into(),
                protocol: 1,
                state: VaultState::Unlocked,
                credentials: Some(2),
                uptime_secs: 60,
                pid: 42,
                vault_path: "/v".into(),
                openbao: None,
                http_socket: Some("/h".into()),
            })),
        ),
        ("resp_done", e(&Response::Done)),
        (
            "resp_list",
            e(&Response::List(vec![CredentialInfo {
                name: "m".into(),
                spec: spec(),
                created: 1,
                last_used: None,
                use_count: 3,
                source_state: None,
            }])),
        ),
        ("resp_job", e(&Response::Job(resp.clone()))),
        (
            "resp_error",
            e(&Response::Error(ErrorReply::new(
                ErrorCode::PolicyRefused,
                "no",
            ))),
        ),
        (
            "resp_backup",
            e(&Response::Backup {
                sealed: vec![0x54, 0x4b, 0x00, 0xff],
            }),
        ),
        (
            "add_sign",
            e(&Request::Add {
                name: "s".into(),
                spec: sign_spec(),
                value: s(b"k"),
            }),
        ),
        (
            "add_generated",
            e(&Request::AddGenerated {
                name: "s".into(),
                spec: sign_spec(),
            }),
        ),
        ("pubkey", e(&Request::PublicKey { name: "s".into() })),
        ("explain", e(&Request::Explain(explain_job()))),
        (
            "resp_pubkey",
            e(&Response::PublicKey(PublicKeyInfo {
                alg: SigAlg::Ed25519,
                keyid: Some("k".into()),
                public_key: vec![1, 2],
            })),
        ),
        (
            "resp_explain",
            e(&Response::Explain(Explanation {
                method: "GET".into(),
                url: "https://a/".into(),
                refused: None,
                adds: vec!["Signature: x".into()],
            })),
        ),
        (
            "stream_job",
            e(&Request::StreamJob {
                job,
                body_follows: true,
                body_len: Some(300),
            }),
        ),
        ("req_chunk", e(&Request::Chunk(vec![1, 2, 3]))),
        ("req_end", e(&Request::End)),
        ("resp_head", e(&Response::Head(resp))),
        ("resp_chunk", e(&Response::Chunk(vec![1, 2, 3]))),
        ("resp_end", e(&Response::End)),
        (
            "openbao_login",
            e(&Request::OpenBaoLogin(OpenBaoLogin::AppRole {
                role_id: "r".into(),
                secret_id: s(b"s"),
            })),
        ),
        ("openbao_status", e(&Request::OpenBaoStatus)),
        (
            "refresh",
            e(&Request::Refresh {
                name: Some("m".into()),
            }),
        ),
        (
            "resp_openbao_status",
            e(&Response::OpenBaoStatus(OpenBaoStatus {
                configured: true,
                addrs: vec!["http://127.0.0.1:8200".into()],
                node: None,
                auth: "approle".into(),
                has_login: true,
                logged_in: false,
                token_ttl_secs: Some(60),
                last_error: None,
            })),
        ),
        (
            "add_sourced",
            e(&Request::AddSourced {
                name: "m".into(),
                spec: spec(),
                passphrase: s(b"pw"),
            }),
        ),
        (
            "openbao_spec",
            e(&CredentialSpec {
                source: Some(Source::OpenBao {
                    path: "team/m".into(),
                    field: "token".into(),
                }),
                ..spec()
            }),
        ),
        (
            "import",
            e(&Request::Import {
                entries: vec![ImportEntry {
                    name: "m".into(),
                    spec: spec(),
                    value: s(b"t"),
                    source: "line 1".into(),
                }],
                replace: true,
            }),
        ),
        ("scan", e(&Request::Scan)),
        ("scan_file", e(&Request::ScanFile { id: 7 })),
        (
            "resp_scan_findings",
            e(&Response::ScanFindings(ScanReport {
                id: 7,
                findings: vec![ScanFinding {
                    credential: "m".into(),
                    form: "raw".into(),
                    line: 3,
                    offset: 40,
                    len: 36,
                }],
            })),
        ),
    ]
}

fn sign_spec() -> CredentialSpec {
    CredentialSpec {
        injection: Some(Injection::Sign {
            alg: SigAlg::HmacSha256,
            keyid: Some("k".into()),
            ttl_secs: Some(60),
            components: vec!["@method".into()],
        }),
        origins: vec!["https://a".into()],
        ..CredentialSpec::default()
    }
}

fn explain_job() -> JobRequest {
    JobRequest {
        credential: "s".into(),
        method: "GET".into(),
        url: "https://a/".into(),
        headers: vec![],
        body: None,
        follow_redirects: false,
        timeout_ms: None,
    }
}

/// Lets one table hold values of different types.
trait Erased {
    fn bytes(&self) -> Vec<u8>;
}

impl<T: serde::Serialize> Erased for T {
    fn bytes(&self) -> Vec<u8> {
        encode(self).expect("encode")
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const GOLDEN: &[(&str, &str)] = &[
    ("hello", "01"),
    ("status", "00"),
    ("init", "01027077"),
    ("unlock", "02027077"),
    ("unlock_keyfile", "03016b"),
    ("lock", "04"),
    ("passwd", "0501610162"),
    (
        "add",
        "06016d01000c4163636573732d546f6b656e011668747470733a2f2f6d6963726f72656163742e6f7267000104504f535401042f617069000174",
    ),
    ("rotate", "07016d0174"),
    ("remove", "08016d"),
    ("list", "09"),
    ("add_keyfile", "0a0170016b"),
    (
        "job",
        "0b016d04504f53541a68747470733a2f2f6d6963726f72656163742e6f72672f6170690101580179010200ff0101fbdc05",
    ),
    ("backup", "12"),
    ("remove_keyfile", "130170"),
    ("resp_status", "0005302e312e30010201023c2a022f760001022f68"),
    ("resp_done", "01"),
    (
        "resp_list",
        "0201016d01000c4163636573732d546f6b656e011668747470733a2f2f6d6963726f72656163742e6f7267000104504f535401042f6170690001000300",
    ),
    (
        "resp_job",
        "03c808485454502f312e31024f4b00027b7d0a68747470733a2f2f612f020103474554012f08485454502f312e310101580179",
    ),
    ("resp_error", "0404026e6f"),
    ("resp_backup", "0a04544b00ff"),
    (
        "add_sign",
        "06017301020001016b013c0107406d6574686f64010968747470733a2f2f6100000000016b",
    ),
    (
        "add_generated",
        "0f017301020001016b013c0107406d6574686f64010968747470733a2f2f6100000000",
    ),
    ("pubkey", "100173"),
    ("explain", "110173034745540a68747470733a2f2f612f00000000"),
    ("resp_pubkey", "080101016b020102"),
    (
        "resp_explain",
        "09034745540a68747470733a2f2f612f00010c5369676e61747572653a2078",
    ),
    (
        "stream_job",
        "0c016d04504f53541a68747470733a2f2f6d6963726f72656163742e6f72672f6170690101580179010200ff0101fbdc050101fb2c01",
    ),
    ("req_chunk", "0d03010203"),
    ("req_end", "0e"),
    (
        "resp_head",
        "05c808485454502f312e31024f4b00027b7d0a68747470733a2f2f612f020103474554012f08485454502f312e310101580179",
    ),
    ("resp_chunk", "0603010203"),
    ("resp_end", "07"),
    ("openbao_login", "140001720173"),
    ("openbao_status", "15"),
    ("refresh", "1601016d"),
    (
        "resp_openbao_status",
        "0b010115687474703a2f2f3132372e302e302e313a383230300007617070726f6c650100013c00",
    ),
    (
        "add_sourced",
        "17016d01000c4163636573732d546f6b656e011668747470733a2f2f6d6963726f72656163742e6f7267000104504f535401042f61706900027077",
    ),
    (
        "openbao_spec",
        "01000c4163636573732d546f6b656e011668747470733a2f2f6d6963726f72656163742e6f7267000104504f535401042f6170690100067465616d2f6d05746f6b656e",
    ),
    (
        "import",
        "1801016d01000c4163636573732d546f6b656e011668747470733a2f2f6d6963726f72656163742e6f7267000104504f535401042f617069000174066c696e65203101",
    ),
    ("scan", "19"),
    ("scan_file", "1a07"),
    ("resp_scan_findings", "0c0701016d03726177032824"),
];

#[test]
fn encodings_are_pinned() {
    let got = cases();
    if std::env::var_os("GOLDEN_PRINT").is_some() {
        for (name, bytes) in &got {
            println!("    (\"{name}\", \"{}\"),", hex(bytes));
        }
        return;
    }
    assert_eq!(
        got.len(),
        GOLDEN.len(),
        "every message needs a golden entry"
    );
    for ((name, bytes), (gname, ghex)) in got.iter().zip(GOLDEN) {
        assert_eq!(name, gname);
        assert_eq!(&hex(bytes), ghex, "encoding of {name} changed");
    }
}

#[test]
fn protocol_version_is_a_literal() {
    assert_eq!(PROTOCOL_VERSION, 3);
}

#[test]
fn error_codes_map_to_exit_codes() {
    assert_eq!(ErrorCode::Locked.exit_code(), 3);
    assert_eq!(ErrorCode::NoSuchCredential.exit_code(), 4);
    assert_eq!(ErrorCode::PolicyRefused.exit_code(), 5);
    assert_eq!(ErrorCode::Upstream.exit_code(), 6);
    assert_eq!(ErrorCode::SourceUnavailable.exit_code(), 7);
    assert_eq!(ErrorCode::BadPassphrase.exit_code(), 1);
}
