//! `VaultFile::parse` on arbitrary bytes: an error, never a panic (the
//! stable-toolchain sibling of `fuzz/fuzz_targets/vault_file.rs`).

use proptest::prelude::*;
use vaultd::VaultFile;

/// A real v1 vault (tests/fixtures/README.md documents it).
const VALID: &[u8] = include_bytes!("../../tests/fixtures/valid-v1.vault");

fn parse_and_open(bytes: &[u8]) {
    if let Ok(parsed) = VaultFile::parse(bytes) {
        // The key-file slot is cheap to try (no Argon2id); a wrong key or a
        // missing slot is an error.
        assert!(parsed.open_with_keyfile(&[0u8; 32]).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse_and_open(&bytes);
    }

    #[test]
    fn arbitrary_tail_after_the_magic_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = VALID[..8].to_vec();
        bytes.extend_from_slice(&tail);
        parse_and_open(&bytes);
    }

    #[test]
    fn mutated_valid_file_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = VALID.to_vec();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        parse_and_open(&bytes);
    }
}

#[test]
fn the_fixture_parses() {
    // The mutations above start from a file that does parse.
    assert!(VaultFile::parse(VALID).is_ok());
}
