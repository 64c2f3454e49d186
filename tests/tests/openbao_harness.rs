//! The OpenBao harness itself (`harness::openbao`): each helper the
//! OpenBao-source tests rely on does what it says against a real `bao`.
//! Also pins down the raw HTTP answers vaultd must handle (deleted version,
//! sealed node, standby read), so a change in OpenBao shows up here first.

use std::time::{Duration, Instant};

use harness::openbao::{BaoCluster, BaoDev, BaoOps, bao_or_skip, http_get};

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn dev_kv_put_then_get_returns_the_value() {
    let Some(_) = bao_or_skip("dev_kv_put_then_get_returns_the_value") else {
        return;
    };
    let bao = BaoDev::start();
    let value = harness::canary("kv");
    assert_eq!(bao.kv_put("team/microreact", "token", &value), 1);
    assert_eq!(bao.kv_get_field("team/microreact", "token"), value);

    let v2 = bao.kv_put_fields("team/microreact", &[("token", "second"), ("user", "x")]);
    assert_eq!(v2, 2);
    assert_eq!(bao.kv_get_field("team/microreact", "token"), "second");
    assert_eq!(bao.kv_get_field("team/microreact", "user"), "x");
    // The value went on stdin: the server never logs it, and it is in no
    // argv we built (the log is the only place a CLI echo could land).
    assert!(!bao.log().contains(&value));
}

#[test]
fn dev_custom_metadata_is_visible() {
    let Some(_) = bao_or_skip("dev_custom_metadata_is_visible") else {
        return;
    };
    let bao = BaoDev::start();
    bao.kv_put("team/shared", "token", "t");
    let origins = "https://a.example,https://b.example";
    bao.kv_metadata_put("team/shared", &[("tokenvault_origins", origins)]);
    let meta = bao.bao_json(
        &["kv", "metadata", "get", "-mount=secret", "team/shared"],
        None,
    );
    assert_eq!(
        meta["data"]["custom_metadata"]["tokenvault_origins"], origins,
        "{meta}"
    );
    // A KV v2 data read carries custom_metadata too: one call suffices.
    let (status, body) = http_get(
        bao.addr(),
        "/v1/secret/data/team/shared",
        Some(bao.root_token()),
    )
    .expect("answer");
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(
        v["data"]["metadata"]["custom_metadata"]["tokenvault_origins"],
        origins
    );
    assert_eq!(v["data"]["data"]["token"], "t");
}

#[test]
fn dev_deleted_version_reads_404_with_metadata() {
    let Some(_) = bao_or_skip("dev_deleted_version_reads_404_with_metadata") else {
        return;
    };
    let bao = BaoDev::start();
    bao.kv_put("team/gone", "token", "t");
    bao.kv_delete("team/gone");
    let read = |path: &str| http_get(bao.addr(), path, Some(bao.root_token())).expect("answer");
    let (status, body) = read("/v1/secret/data/team/gone");
    assert_eq!(status, 404, "{body}");
    let v = json(&body);
    assert!(v["data"]["data"].is_null(), "{body}");
    assert_ne!(v["data"]["metadata"]["deletion_time"], "", "{body}");
    assert_eq!(v["data"]["metadata"]["destroyed"], false, "{body}");

    bao.kv_destroy("team/gone", &[1]);
    let (status, body) = read("/v1/secret/data/team/gone");
    assert_eq!(status, 404, "{body}");
    assert_eq!(json(&body)["data"]["metadata"]["destroyed"], true, "{body}");

    // Never written: 404 with an empty error list, no metadata.
    let (status, body) = read("/v1/secret/data/team/never");
    assert_eq!(status, 404, "{body}");
    assert!(json(&body)["data"].is_null(), "{body}");
}

#[test]
fn dev_approle_login_works_and_is_bound_to_its_policy() {
    let Some(_) = bao_or_skip("dev_approle_login_works_and_is_bound_to_its_policy") else {
        return;
    };
    let bao = BaoDev::start();
    bao.kv_put("team/microreact", "token", "shared-value");
    bao.kv_put("other/thing", "token", "not-yours");
    let policy = r#"path "secret/data/team/*" { capabilities = ["read"] }"#;
    let (role_id, secret_id) = bao.approle_setup_with("machine", policy, "2m", "10m");
    // Enabling twice is fine (a second role on the same mount).
    let (role2, _) = bao.approle_setup("other-machine", policy);
    assert_ne!(role_id, role2);

    let client = bao.approle_login(&role_id, &secret_id);
    let as_client = bao.cli().with_token(&client);
    assert_eq!(
        as_client.kv_get_field("team/microreact", "token"),
        "shared-value"
    );
    let (status, _) =
        http_get(bao.addr(), "/v1/secret/data/other/thing", Some(&client)).expect("answer");
    assert_eq!(status, 403, "policy should deny other/");
    let lookup = as_client.bao_json(&["token", "lookup"], None);
    let ttl = lookup["data"]["ttl"].as_u64().expect("ttl");
    assert!((60..=120).contains(&ttl), "token_ttl=2m, got {ttl}");

    let wrong = bao.approle_login_output(&role_id, "00000000-0000-0000-0000-000000000000");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("invalid"));

    bao.token_revoke(&client);
    let (status, _) =
        http_get(bao.addr(), "/v1/secret/data/team/microreact", Some(&client)).expect("answer");
    assert_eq!(status, 403, "revoked token still reads");

    bao.secret_id_destroy("machine", &secret_id);
    assert!(
        !bao.approle_login_output(&role_id, &secret_id)
            .status
            .success()
    );

    let tok = bao.token_create("machine", "1h");
    assert_eq!(
        bao.cli()
            .with_token(&tok)
            .kv_get_field("team/microreact", "token"),
        "shared-value"
    );
}

#[test]
fn tls_dev_server_answers_with_its_ca() {
    let Some(_) = bao_or_skip("tls_dev_server_answers_with_its_ca") else {
        return;
    };
    let bao = BaoDev::start_tls();
    assert!(bao.addr().starts_with("https://127.0.0.1:"));
    let ca = bao.ca_pem_path().expect("ca path");
    let pem = std::fs::read_to_string(ca).expect("read ca");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    // With its CA the CLI works; without it, verification fails.
    bao.kv_put("team/tls", "token", "over-tls");
    assert_eq!(bao.kv_get_field("team/tls", "token"), "over-tls");
    let mut no_ca = bao.cli();
    no_ca.cacert = None;
    let out = no_ca.bao(&["status"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate"), "{err}");
}

#[test]
fn cluster_elects_a_new_leader_that_serves_old_data() {
    let Some(_) = bao_or_skip("cluster_elects_a_new_leader_that_serves_old_data") else {
        return;
    };
    let mut c = BaoCluster::start3();
    let addrs = c.addrs();
    assert_eq!(addrs.len(), 3);
    let old = c.leader().expect("leader");
    c.kv_put("team/ha", "token", "before-kill");

    // A standby answers reads from its own copy of the data, which lags
    // the leader: right after a write it may say 404 `{"errors":[]}`, as
    // for a path never written. Writes to a standby are forwarded.
    let standby = (0..3).find(|&i| i != old).expect("standby");
    let path = "/v1/secret/data/team/ha";
    let written = Instant::now();
    let mut answers = Vec::new();
    loop {
        let (status, body) = http_get(&addrs[standby], path, Some(c.root_token())).expect("answer");
        if status == 200 {
            break;
        }
        answers.push(format!("{status} {body}"));
        assert!(
            written.elapsed() < Duration::from_secs(10),
            "standby never served the value: {answers:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "standby read consistent {} ms after the write; before that: {answers:?}",
        written.elapsed().as_millis()
    );
    c.node_cli(standby)
        .kv_put("team/ha-via-standby", "token", "fwd");
    assert_eq!(c.kv_get_field("team/ha-via-standby", "token"), "fwd");

    let killed_at = Instant::now();
    c.kill(old);
    // What the survivors answer to a KV read while they elect.
    let mut seen = std::collections::BTreeMap::new();
    while c.leader().is_none() && killed_at.elapsed() < Duration::from_secs(30) {
        for (i, addr) in addrs.iter().enumerate().filter(|(i, _)| *i != old) {
            let got = http_get(addr, path, Some(c.root_token()));
            // Status and error list only: request ids differ every time.
            let key = got.map_or("no answer".to_owned(), |(s, b)| {
                let v: serde_json::Value = serde_json::from_str(&b).unwrap_or_default();
                format!("{s} errors={}", v["errors"])
            });
            *seen.entry(format!("node{i}: {key}")).or_insert(0) += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let new = c.wait_for_new_leader(Duration::from_secs(30));
    println!(
        "new leader node{new} {} ms after SIGKILL of node{old}; reads meanwhile: {seen:#?}",
        killed_at.elapsed().as_millis()
    );
    assert_ne!(new, old);
    assert_eq!(
        c.node_cli(new).kv_get_field("team/ha", "token"),
        "before-kill"
    );
    c.kv_put("team/ha", "token", "after-kill");

    // A restarted node is sealed until unsealed; then a standby with the
    // data written while it was down.
    c.restart_sealed(old);
    let (status, body) = http_get(&addrs[old], path, Some(c.root_token())).expect("answer");
    println!("sealed node read: {status} {body}");
    assert_eq!(status, 503, "{body}");
    c.unseal_node(old);
    let caught_up = Instant::now();
    loop {
        let out = c.node_cli(old).bao(
            &["kv", "get", "-mount=secret", "-field=token", "team/ha"],
            None,
        );
        if out.stdout == b"after-kill" {
            break;
        }
        assert!(
            caught_up.elapsed() < Duration::from_secs(30),
            "node{old} never caught up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
