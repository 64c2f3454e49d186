//! The `--json` schemas of docs/json.md: one test per schema, each pinning
//! the exact set of fields and their types, so a rename or a removed field
//! fails here before it breaks a user's `jq`.

use harness::{Daemon, Upstream, canary};
use serde_json::Value;

fn ready() -> Daemon {
    let d = Daemon::start("");
    d.init();
    d
}

fn json(out: harness::Out) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.text()))
}

/// `(field, type)` where type is one of: string, number, bool, array,
/// object, null, and "a|b" for either.
#[track_caller]
fn assert_schema(v: &Value, fields: &[(&str, &str)]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let mut want: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    let mut got: Vec<&str> = obj.keys().map(|k| k.as_str()).collect();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want, "fields of {v}");
    for (k, ty) in fields {
        let val = &obj[*k];
        let actual = match val {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        assert!(
            ty.split('|').any(|t| t == actual),
            "{k}: expected {ty}, got {actual} in {v}"
        );
    }
}

const STATUS: &[(&str, &str)] = &[
    ("version", "string"),
    ("protocol", "number"),
    ("state", "string"),
    ("credentials", "number|null"),
    ("uptime_secs", "number"),
    ("pid", "number"),
    ("vault", "string"),
    ("openbao", "object|null"),
    ("http_socket", "string|null"),
];

#[test]
fn status_json_schema() {
    let d = Daemon::start("");
    let v = json(d.ctl(&["status", "--json"]).ok());
    assert_schema(&v, STATUS);
    assert_eq!(v["state"], "uninitialized");
    assert_eq!(v["credentials"], Value::Null);
    assert_eq!(v["pid"], d.pid());
    assert_eq!(v["vault"], d.vault.display().to_string());
    d.init();
    let v = json(d.ctl(&["status", "--json"]).ok());
    assert_schema(&v, STATUS);
    assert_eq!(
        (v["state"].as_str(), v["credentials"].as_u64()),
        (Some("unlocked"), Some(0))
    );
    d.ctl(&["lock"]).ok();
    let v = json(d.ctl(&["status", "--json"]).ok());
    assert_schema(&v, STATUS);
    assert_eq!(
        (v["state"].as_str(), &v["credentials"]),
        (Some("locked"), &Value::Null)
    );
}

const CREDENTIAL: &[(&str, &str)] = &[
    ("name", "string"),
    ("injection", "string"),
    ("header", "string|null"),
    ("origins", "array"),
    ("allow_insecure_http", "bool"),
    ("methods", "array"),
    ("path_prefixes", "array"),
    ("created", "number"),
    ("last_used", "number|null"),
    ("use_count", "number"),
    ("source", "object|null"),
];

#[test]
fn list_json_schema() {
    let up = Upstream::plain();
    let d = ready();
    let token = canary("list");
    d.add(
        "h",
        &token,
        &[
            "--header",
            "X-Key",
            "--origin",
            &up.origin(),
            "--method",
            "post",
        ],
    )
    .ok();
    d.add(
        "b",
        &token,
        &[
            "--bearer",
            "--origin",
            &up.origin(),
            "--path-prefix",
            "/api/",
        ],
    )
    .ok();
    d.ctl(&[
        "add",
        "s",
        "--sign",
        "ed25519",
        "--keyid",
        "k1",
        "--origin",
        &up.origin(),
    ])
    .ok();
    d.ctl(&["request", "b", &up.url("/api/x")]).ok();
    let out = d.ctl(&["list", "--json"]).ok();
    assert_eq!(harness::count(&out.stdout, token.as_bytes()), 0);
    let v = json(out);
    let list = v.as_array().expect("an array");
    let names: Vec<&str> = list.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["b", "h", "s"], "sorted by name");
    assert_schema(&list[0], CREDENTIAL);
    assert_schema(&list[1], CREDENTIAL);
    let mut signing = CREDENTIAL.to_vec();
    signing.extend([
        ("alg", "string"),
        ("keyid", "string|null"),
        ("sig_ttl", "number|null"),
        ("covered", "array"),
    ]);
    assert_schema(&list[2], &signing);
    assert_eq!(list[0]["injection"], "bearer");
    assert_eq!(list[0]["use_count"], 1);
    assert!(list[0]["last_used"].is_number());
    assert_eq!(list[0]["path_prefixes"][0], "/api/");
    assert_eq!(
        (list[1]["injection"].as_str(), list[1]["header"].as_str()),
        (Some("header"), Some("X-Key"))
    );
    assert_eq!(list[1]["methods"][0], "POST");
    assert_eq!(list[1]["origins"][0], up.origin());
    assert_eq!(
        (list[2]["alg"].as_str(), list[2]["keyid"].as_str()),
        (Some("ed25519"), Some("k1"))
    );
}

const RESPONSE_TEXT: &[(&str, &str)] = &[
    ("status", "number"),
    ("http_version", "string"),
    ("url", "string"),
    ("headers", "object"),
    ("body", "string"),
];

#[test]
fn request_json_schema_text_and_binary_bodies() {
    let up = Upstream::plain();
    let d = ready();
    let token = canary("req");
    d.add("m", &token, &["--bearer", "--origin", &up.origin()])
        .ok();

    let v = json(
        d.ctl(&["request", "m", &up.url("/user"), "--print=json"])
            .ok(),
    );
    assert_schema(&v, RESPONSE_TEXT);
    assert_eq!(v["status"], 200);
    assert_eq!(v["http_version"], "HTTP/1.1");
    assert_eq!(v["url"], up.url("/user"));
    assert!(
        v["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["name"], "Ada");

    // A body that is not UTF-8 comes as body_base64 instead.
    let bytes: Vec<u8> = (0u8..=255).rev().collect();
    let file = d.path("bin.dat");
    std::fs::write(&file, &bytes).unwrap();
    let arg = format!("@{}", file.display());
    let v = json(
        d.ctl(&[
            "request",
            "m",
            &up.url("/bytes"),
            "--data-binary",
            &arg,
            "--print=json",
        ])
        .ok(),
    );
    let mut binary = RESPONSE_TEXT[..4].to_vec();
    binary.push(("body_base64", "string"));
    assert_schema(&v, &binary);
    use base64::Engine;
    let back = base64::engine::general_purpose::STANDARD
        .decode(v["body_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(back, bytes);

    // An HTTP error is still a document without -f (and nothing with -f).
    let v = json(
        d.ctl(&["request", "m", &up.url("/status/404"), "--print=json"])
            .ok(),
    );
    assert_eq!(v["status"], 404);
    let out = d
        .ctl(&["request", "m", &up.url("/status/404"), "--print=json", "-f"])
        .code(22);
    assert!(out.stdout.is_empty());
}

const EXPLAIN: &[(&str, &str)] = &[
    ("allowed", "bool"),
    ("method", "string"),
    ("url", "string"),
    ("refused", "string|null"),
    ("adds", "array"),
];

#[test]
fn explain_json_schema_allowed_and_refused() {
    let up = Upstream::plain();
    let d = ready();
    let token = canary("explain");
    d.add(
        "m",
        &token,
        &["--header", "Access-Token", "--origin", &up.origin()],
    )
    .ok();
    let out = d.ctl(&["explain", "m", &up.url("/api"), "--json"]).ok();
    assert_eq!(harness::count(&out.stdout, token.as_bytes()), 0);
    let v = json(out);
    assert_schema(&v, EXPLAIN);
    assert_eq!(
        (v["allowed"].as_bool(), v["method"].as_str()),
        (Some(true), Some("GET"))
    );
    assert!(v["adds"][0].as_str().unwrap().starts_with("Access-Token"));
    let v = json(
        d.ctl(&["explain", "m", "https://evil.example/", "--json"])
            .code(5),
    );
    assert_schema(&v, EXPLAIN);
    assert_eq!(v["allowed"], false);
    assert!(v["refused"].as_str().unwrap().contains(&up.origin()), "{v}");
    assert!(up.requests().is_empty(), "explain sent something");
}
