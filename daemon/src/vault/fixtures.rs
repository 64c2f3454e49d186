//! Known-answer vault files in `tests/fixtures/` (see its README.md).
//!
//! They are generated once, committed, and never regenerated: the point is
//! that files written by *this* version keep opening in every later
//! version, so a later change to the format or to `Contents` that breaks
//! them is a compatibility break, not a fixture to update.
//! `cargo test -p vaultd --lib -- --ignored generate_fixtures` rewrites them
//! (only for a deliberate new fixture set).

use std::path::PathBuf;

use super::spec::{StoredInjection, StoredSource, StoredSpec};
use super::store::{Contents, StoredCredential, StoredLogin, decode_contents};
use super::{KdfParams, VaultError, VaultFile};

/// The passphrase of `valid-v1.vault` (published: it protects nothing).
const PASSPHRASE: &[u8] = b"tokenvault fixture passphrase v1";
/// The one credential in `valid-v1.vault`.
const NAME: &str = "fixture";
const TOKEN: &[u8] = b"fixture-token-v1-7f3c9a1e5b2d4c6a";
const ORIGIN: &str = "http://127.45.67.89:18089";
const CREATED: u64 = 1_795_000_000;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn read(name: &str) -> Vec<u8> {
    let p = dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn err<T>(r: Result<T, VaultError>) -> VaultError {
    match r {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(e) => e,
    }
}

/// The Argon2id parameters the v1 fixtures were made with (the default
/// then): every later version must keep opening them.
const FIXTURE_KDF: KdfParams = KdfParams {
    m_cost_kib: 65_536,
    t_cost: 3,
    p_cost: 1,
};

#[test]
#[ignore = "writes tests/fixtures/valid-v2.vault; run only to create a new fixture"]
fn generate_v2_fixture() {
    // The format-1 files were written by this function's format-1 version
    // (tokenvault 0.1.0, see the README); they are never rewritten.
    let (file, key) = VaultFile::create(PASSPHRASE_V2, FIXTURE_KDF).unwrap();
    let plaintext = proto::codec::encode(&v2_contents()).unwrap();
    let valid = file.seal(&key, &plaintext).unwrap();
    std::fs::write(dir().join("valid-v2.vault"), valid).unwrap();
}

/// The passphrase of `valid-v2.vault` (published: it protects nothing).
const PASSPHRASE_V2: &[u8] = b"tokenvault fixture passphrase v2";
/// The OpenBao-sourced credential of `valid-v2.vault`, and its login.
const SOURCED: &str = "from-openbao";
const ROLE_ID: &[u8] = b"fixture-role-id-v2";
const SECRET_ID: &[u8] = b"fixture-secret-id-v2-3e8d";

/// What `valid-v2.vault` holds: the v1 credential, one whose value lives
/// in OpenBao (no value stored), and an AppRole login.
fn v2_contents() -> Contents {
    let shield = |b: &[u8]| crate::secure::Shielded::seal(b).unwrap();
    let mut contents = Contents::default();
    let base = StoredSpec {
        injection: Some(StoredInjection::Bearer),
        origins: vec![ORIGIN.into()],
        allow_insecure_http: false,
        methods: vec![],
        path_prefixes: vec![],
        source: None,
    };
    contents.credentials.insert(
        NAME.into(),
        StoredCredential {
            spec: base.clone(),
            value: shield(TOKEN),
            created: CREATED,
            last_used: None,
            use_count: 0,
        },
    );
    contents.credentials.insert(
        SOURCED.into(),
        StoredCredential {
            spec: StoredSpec {
                source: Some(StoredSource::OpenBao {
                    path: "team/fixture".into(),
                    field: "token".into(),
                }),
                ..base
            },
            value: shield(b""),
            created: CREATED,
            last_used: None,
            use_count: 0,
        },
    );
    contents.openbao_login = Some(StoredLogin::AppRole {
        role_id: shield(ROLE_ID),
        secret_id: shield(SECRET_ID),
    });
    contents
}

#[test]
fn valid_v2_fixture_opens_with_its_known_contents() {
    let bytes = read("valid-v2.vault");
    let parsed = VaultFile::parse(&bytes).unwrap();
    assert_eq!(parsed.version(), 2);
    let (_, _, plaintext) = parsed.open_with_passphrase(PASSPHRASE_V2).unwrap();
    let contents = decode_contents(2, &plaintext).unwrap();
    // Byte for byte: the stored types re-encode exactly what v2 wrote.
    assert_eq!(*proto::codec::encode(&contents).unwrap(), *plaintext);
    assert_eq!(contents.credentials.len(), 2);
    assert_eq!(
        contents.credentials[NAME].value.open().unwrap().expose(),
        TOKEN
    );
    let s = &contents.credentials[SOURCED];
    assert_eq!(s.spec.openbao(), Some(("team/fixture", "token")));
    assert!(s.value.open().unwrap().is_empty());
    match contents.openbao_login {
        Some(StoredLogin::AppRole { role_id, secret_id }) => {
            assert_eq!(role_id.open().unwrap().expose(), ROLE_ID);
            assert_eq!(secret_id.open().unwrap().expose(), SECRET_ID);
        }
        other => panic!("login: {other:?}"),
    }
}

#[test]
fn valid_fixture_opens_with_its_known_contents() {
    let bytes = read("valid-v1.vault");
    let parsed = VaultFile::parse(&bytes).unwrap();
    assert_eq!(parsed.vault().kdf_params(), FIXTURE_KDF);
    assert!(!parsed.has_keyfile());
    assert_eq!(parsed.version(), 1);
    let (_, _, plaintext) = parsed.open_with_passphrase(PASSPHRASE).unwrap();
    // Format 1 contents, converted: the migration.
    let contents = decode_contents(1, &plaintext).unwrap();
    assert!(contents.openbao_login.is_none());
    assert_eq!(contents.credentials.len(), 1);
    let c = &contents.credentials[NAME];
    assert_eq!(c.value.open().unwrap().expose(), TOKEN);
    assert_eq!(c.spec.injection, Some(StoredInjection::Bearer));
    assert_eq!(c.spec.origins, [ORIGIN]);
    assert_eq!(c.spec.source, None);
    assert_eq!(c.created, CREATED);
    assert_eq!((c.last_used, c.use_count), (None, 0));
}

#[test]
fn broken_fixtures_are_refused_with_the_right_error() {
    assert!(matches!(
        err(VaultFile::parse(&read("truncated.vault"))),
        VaultError::Truncated
    ));
    assert!(matches!(
        err(VaultFile::parse(&read("wrong-magic.vault"))),
        VaultError::BadMagic
    ));
    let e = err(VaultFile::parse(&read("future-version.vault")));
    assert!(matches!(e, VaultError::NewerVersion(u16::MAX)));
    assert!(
        e.to_string().contains("created by a newer tokenvault"),
        "{e}"
    );
    // The header is intact, so this one fails only after the passphrase
    // unwrapped the data key: the contents do not authenticate.
    let parsed = VaultFile::parse(&read("flipped-tag.vault")).unwrap();
    assert!(matches!(
        err(parsed.open_with_passphrase(PASSPHRASE)),
        VaultError::Corrupt(_)
    ));
}
