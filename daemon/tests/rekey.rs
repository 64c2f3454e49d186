//! Re-keying (issue 11, item 10): `passwd`, a replaced key file and
//! `keyfile remove` each seal the vault under a fresh data key, so an old
//! copy of the vault file plus an old passphrase or a revoked key file
//! recovers a key that opens nothing saved afterwards.

use proto::{CredentialSpec, Injection, Request, Response, Secret};
use vaultd::{Config, DataKey, KdfParams, Peer, State, VaultFile, handle};

const CHEAP: KdfParams = KdfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};

fn s(b: &[u8]) -> Secret {
    Secret::from_slice(b)
}

async fn ok(state: &State, req: Request) {
    let peer = Peer {
        uid: rustix::process::getuid().as_raw(),
        pid: None,
    };
    if let Response::Error(e) = handle(state, &peer, req).await {
        panic!("{}", e.message);
    }
}

async fn add(state: &State, name: &str) {
    let spec = CredentialSpec {
        injection: Some(Injection::Bearer),
        origins: vec!["https://api.example.org".into()],
        allow_insecure_http: false,
        methods: vec![],
        path_prefixes: vec![],
        source: None,
    };
    let req = Request::Add {
        name: name.into(),
        spec,
        value: s(format!("token-of-{name}").as_bytes()),
    };
    ok(state, req).await;
}

fn key_by_pass(file: &[u8], pass: &[u8]) -> DataKey {
    VaultFile::parse(file)
        .unwrap()
        .open_with_passphrase(pass)
        .unwrap()
        .1
}

fn opens(file: &[u8], key: &DataKey) -> bool {
    VaultFile::parse(file).unwrap().verify(key).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_copies_and_old_secrets_open_nothing_saved_after_a_slot_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault");
    let read = || std::fs::read(&path).unwrap();
    let state = State::new(Config::parse("").unwrap(), path.clone())
        .unwrap()
        .with_kdf(CHEAP);
    ok(
        &state,
        Request::Init {
            passphrase: s(b"old pass"),
        },
    )
    .await;
    add(&state, "a").await;
    let first_keyfile = [7u8; 32];
    ok(
        &state,
        Request::AddKeyfile {
            passphrase: s(b"old pass"),
            key: s(&first_keyfile),
        },
    )
    .await;
    // What someone holding an old copy (a backup) and the old secrets has.
    let old_copy = read();
    let by_old_pass = key_by_pass(&old_copy, b"old pass");
    let by_old_keyfile = VaultFile::parse(&old_copy)
        .unwrap()
        .open_with_keyfile(&first_keyfile)
        .unwrap()
        .1;
    assert!(opens(&read(), &by_old_pass));

    // passwd: a new data key; the key-file slot cannot be re-wrapped
    // (vaultd never holds the key file) and is dropped.
    ok(
        &state,
        Request::Passwd {
            old: s(b"old pass"),
            new: s(b"new pass"),
        },
    )
    .await;
    add(&state, "b").await;
    let after_passwd = read();
    assert!(
        !opens(&after_passwd, &by_old_pass),
        "old passphrase's key still opens"
    );
    assert!(
        !opens(&after_passwd, &by_old_keyfile),
        "old key file's key still opens"
    );
    assert!(!VaultFile::parse(&after_passwd).unwrap().has_keyfile());
    let by_new_pass = key_by_pass(&after_passwd, b"new pass");

    // A replaced key file: a new data key again, the passphrase slot re-wrapped.
    let second_keyfile = [8u8; 32];
    ok(
        &state,
        Request::AddKeyfile {
            passphrase: s(b"new pass"),
            key: s(&second_keyfile),
        },
    )
    .await;
    add(&state, "c").await;
    let after_replace = read();
    assert!(!opens(&after_replace, &by_new_pass));
    let by_second_keyfile = VaultFile::parse(&after_replace)
        .unwrap()
        .open_with_keyfile(&second_keyfile)
        .unwrap()
        .1;
    assert!(opens(
        &after_replace,
        &key_by_pass(&after_replace, b"new pass")
    ));

    // keyfile remove: slot gone, and its key opens nothing saved after.
    ok(
        &state,
        Request::RemoveKeyfile {
            passphrase: s(b"new pass"),
        },
    )
    .await;
    add(&state, "d").await;
    let last = read();
    assert!(!opens(&last, &by_second_keyfile));
    assert!(
        VaultFile::parse(&last)
            .unwrap()
            .open_with_keyfile(&second_keyfile)
            .is_err()
    );
    let (_, _, contents) = VaultFile::parse(&last)
        .unwrap()
        .open_with_passphrase(b"new pass")
        .unwrap();
    // Nothing was lost on the way: all four credentials are in the file.
    for name in ["a", "b", "c", "d"] {
        let needle = format!("token-of-{name}");
        assert!(
            contents
                .windows(needle.len())
                .any(|w| w == needle.as_bytes()),
            "{name} lost"
        );
    }
    // A second removal has nothing to remove.
    let peer = Peer {
        uid: rustix::process::getuid().as_raw(),
        pid: None,
    };
    let Response::Error(e) = handle(
        &state,
        &peer,
        Request::RemoveKeyfile {
            passphrase: s(b"new pass"),
        },
    )
    .await
    else {
        panic!("removed a slot that is not there")
    };
    assert!(e.message.contains("no key-file slot"), "{}", e.message);
}
