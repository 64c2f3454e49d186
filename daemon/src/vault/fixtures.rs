//! Known-answer vault files in `tests/fixtures/` (see its README.md).
//!
//! They are generated once, committed, and never regenerated: the point is
//! that files written by *this* version keep opening in every later
//! version, so a later change to the format or to `Contents` that breaks
//! them is a compatibility break, not a fixture to update.
//! `cargo test -p vaultd --lib -- --ignored generate_fixtures` rewrites them
//! (only for a deliberate new fixture set).

use std::path::PathBuf;

use super::spec::{StoredInjection, StoredSpec};
use super::store::{Contents, StoredCredential};
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
#[ignore = "writes tests/fixtures; run only to create a new fixture set"]
fn generate_fixtures() {
    let (file, key) = VaultFile::create(PASSPHRASE, FIXTURE_KDF).unwrap();
    let mut contents = Contents::default();
    contents.credentials.insert(
        NAME.into(),
        StoredCredential {
            spec: StoredSpec {
                injection: Some(StoredInjection::Bearer),
                origins: vec![ORIGIN.into()],
                allow_insecure_http: false,
                methods: vec![],
                path_prefixes: vec![],
            },
            value: crate::secure::Shielded::seal(TOKEN).unwrap(),
            created: CREATED,
            last_used: None,
            use_count: 0,
        },
    );
    let plaintext = proto::codec::encode(&contents).unwrap();
    let valid = file.seal(&key, &plaintext).unwrap();

    // Cut inside the passphrase slot: reported as truncated, not corrupt.
    let truncated = valid[..64].to_vec();
    let mut wrong_magic = valid.clone();
    wrong_magic[..8].copy_from_slice(b"NOTVAULT");
    // Last byte = last byte of the AES-GCM tag of the contents.
    let mut flipped_tag = valid.clone();
    *flipped_tag.last_mut().unwrap() ^= 0x01;
    let mut future = valid.clone();
    future[8..10].copy_from_slice(&2u16.to_be_bytes());

    std::fs::create_dir_all(dir()).unwrap();
    for (name, bytes) in [
        ("valid-v1.vault", &valid),
        ("truncated.vault", &truncated),
        ("wrong-magic.vault", &wrong_magic),
        ("flipped-tag.vault", &flipped_tag),
        ("future-version.vault", &future),
    ] {
        std::fs::write(dir().join(name), bytes).unwrap();
    }
}

#[test]
fn valid_fixture_opens_with_its_known_contents() {
    let bytes = read("valid-v1.vault");
    let parsed = VaultFile::parse(&bytes).unwrap();
    assert_eq!(parsed.vault().kdf_params(), FIXTURE_KDF);
    assert!(!parsed.has_keyfile());
    let (_, _, plaintext) = parsed.open_with_passphrase(PASSPHRASE).unwrap();
    let contents: Contents = proto::codec::decode(&plaintext).unwrap();
    // Byte for byte: the stored types re-encode exactly what v1 wrote.
    assert_eq!(*proto::codec::encode(&contents).unwrap(), *plaintext);
    assert_eq!(contents.credentials.len(), 1);
    let c = &contents.credentials[NAME];
    assert_eq!(c.value.open().unwrap().expose(), TOKEN);
    assert_eq!(c.spec.injection, Some(StoredInjection::Bearer));
    assert_eq!(c.spec.origins, [ORIGIN]);
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
    assert!(matches!(e, VaultError::NewerVersion(2)));
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
