//! Bytes of a vault file -> `VaultFile::parse`: a damaged, truncated or
//! hostile file is an error, never a panic or a huge allocation. What
//! parses is also opened with a key file (cheap HKDF, unlike the Argon2id
//! passphrase slot), which must fail cleanly on a wrong key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vaultd::VaultFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = VaultFile::parse(data) {
        let _ = parsed.open_with_keyfile(&[0u8; 32]);
    }
});
