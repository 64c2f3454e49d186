//! The vault's own stored form of a credential's policy.
//!
//! The contents are encoded with bincode, which is positional: a field
//! added to a type changes the bytes of every value after it. The protocol
//! types (`proto::CredentialSpec`) change whenever the socket gains a
//! feature, so the vault never stores them: it stores these, which change
//! only deliberately, together with the vault format.
//!
//! Adding a field (or an injection kind) is a vault-format change:
//! 1. bump `format::FORMAT_VERSION` and keep a decoder for the old
//!    version's contents (a `StoredSpecV1` with today's layout, converted
//!    on unlock; the next save writes the new version);
//! 2. add a fixture made by the new version, and keep `valid-v1.vault`
//!    opening (`fixtures.rs`), which is the migration test;
//! 3. update the golden bytes in this module's tests.
//!
//! Appending an enum variant at the end of `StoredInjection` keeps old
//! files decoding, but an older vaultd would then fail on the new file
//! with a confusing codec error: bump the version for that too.

use proto::{CredentialSpec, Injection, SigAlg, Source};
use serde::{Deserialize, Serialize};

/// What a credential may do, as stored. Field order is the file format.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredSpec {
    pub injection: Option<StoredInjection>,
    pub origins: Vec<String>,
    pub allow_insecure_http: bool,
    pub methods: Vec<String>,
    pub path_prefixes: Vec<String>,
    /// Where the value lives when it is not in the vault (format 2).
    pub source: Option<StoredSource>,
}

/// A credential whose value is fetched, never stored. Variant order is the
/// file format.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum StoredSource {
    /// A field of a KV v2 secret in the configured OpenBao (or HashiCorp
    /// Vault) cluster, `path` relative to the configured mount.
    OpenBao { path: String, field: String },
}

/// The policy of format 1, which had no `source`: decoded on unlock of a
/// version-1 file and converted.
#[derive(Deserialize, Debug, Clone)]
pub struct StoredSpecV1 {
    pub injection: Option<StoredInjection>,
    pub origins: Vec<String>,
    pub allow_insecure_http: bool,
    pub methods: Vec<String>,
    pub path_prefixes: Vec<String>,
}

impl From<StoredSpecV1> for StoredSpec {
    fn from(s: StoredSpecV1) -> StoredSpec {
        StoredSpec {
            injection: s.injection,
            origins: s.origins,
            allow_insecure_http: s.allow_insecure_http,
            methods: s.methods,
            path_prefixes: s.path_prefixes,
            source: None,
        }
    }
}

impl StoredSpec {
    /// The OpenBao path and field, for a credential whose value lives there.
    pub fn openbao(&self) -> Option<(&str, &str)> {
        match &self.source {
            Some(StoredSource::OpenBao { path, field }) => Some((path, field)),
            None => None,
        }
    }
}

/// How the token is attached, as stored. Variant order is the file format.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum StoredInjection {
    Header {
        name: String,
    },
    Bearer,
    Sign {
        alg: StoredSigAlg,
        keyid: Option<String>,
        ttl_secs: Option<u64>,
        components: Vec<String>,
    },
}

/// A signature algorithm, as stored. Variant order is the file format.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredSigAlg {
    HmacSha256,
    Ed25519,
}

impl From<CredentialSpec> for StoredSpec {
    fn from(s: CredentialSpec) -> StoredSpec {
        StoredSpec {
            injection: s.injection.map(StoredInjection::from),
            origins: s.origins,
            allow_insecure_http: s.allow_insecure_http,
            methods: s.methods,
            path_prefixes: s.path_prefixes,
            source: s.source.map(|src| match src {
                Source::OpenBao { path, field } => StoredSource::OpenBao { path, field },
            }),
        }
    }
}

impl From<&StoredSpec> for CredentialSpec {
    fn from(s: &StoredSpec) -> CredentialSpec {
        CredentialSpec {
            injection: s.injection.as_ref().map(Injection::from),
            origins: s.origins.clone(),
            allow_insecure_http: s.allow_insecure_http,
            methods: s.methods.clone(),
            path_prefixes: s.path_prefixes.clone(),
            source: s.source.as_ref().map(|src| match src {
                StoredSource::OpenBao { path, field } => Source::OpenBao {
                    path: path.clone(),
                    field: field.clone(),
                },
            }),
        }
    }
}

impl From<Injection> for StoredInjection {
    fn from(i: Injection) -> StoredInjection {
        match i {
            Injection::Header { name } => StoredInjection::Header { name },
            Injection::Bearer => StoredInjection::Bearer,
            Injection::Sign {
                alg,
                keyid,
                ttl_secs,
                components,
            } => StoredInjection::Sign {
                alg: alg.into(),
                keyid,
                ttl_secs,
                components,
            },
        }
    }
}

impl From<&StoredInjection> for Injection {
    fn from(i: &StoredInjection) -> Injection {
        match i {
            StoredInjection::Header { name } => Injection::Header { name: name.clone() },
            StoredInjection::Bearer => Injection::Bearer,
            StoredInjection::Sign {
                alg,
                keyid,
                ttl_secs,
                components,
            } => Injection::Sign {
                alg: (*alg).into(),
                keyid: keyid.clone(),
                ttl_secs: *ttl_secs,
                components: components.clone(),
            },
        }
    }
}

impl From<SigAlg> for StoredSigAlg {
    fn from(a: SigAlg) -> StoredSigAlg {
        match a {
            SigAlg::HmacSha256 => StoredSigAlg::HmacSha256,
            SigAlg::Ed25519 => StoredSigAlg::Ed25519,
        }
    }
}

impl From<StoredSigAlg> for SigAlg {
    fn from(a: StoredSigAlg) -> SigAlg {
        match a {
            StoredSigAlg::HmacSha256 => SigAlg::HmacSha256,
            StoredSigAlg::Ed25519 => SigAlg::Ed25519,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// One spec per injection kind, every field set.
    fn samples() -> Vec<StoredSpec> {
        let base = StoredSpec {
            injection: None,
            origins: vec!["https://a.example".into()],
            allow_insecure_http: true,
            methods: vec!["GET".into()],
            path_prefixes: vec!["/api/".into()],
            source: None,
        };
        let sign = |alg| StoredInjection::Sign {
            alg,
            keyid: Some("k".into()),
            ttl_secs: Some(300),
            components: vec!["@method".into()],
        };
        [
            None,
            Some(StoredInjection::Header { name: "X-K".into() }),
            Some(StoredInjection::Bearer),
            Some(sign(StoredSigAlg::HmacSha256)),
            Some(sign(StoredSigAlg::Ed25519)),
        ]
        .into_iter()
        .map(|injection| StoredSpec {
            injection,
            ..base.clone()
        })
        .chain([StoredSpec {
            injection: Some(StoredInjection::Bearer),
            source: Some(StoredSource::OpenBao {
                path: "team/m".into(),
                field: "token".into(),
            }),
            ..base.clone()
        }])
        .collect()
    }

    /// Format 1's bytes (no `source`) still decode, as the same spec with
    /// no source.
    #[test]
    fn format_1_specs_decode_and_convert() {
        for (v1, v2) in GOLDEN_V1.iter().zip(samples()) {
            let bytes: Vec<u8> = (0..v1.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&v1[i..i + 2], 16).unwrap())
                .collect();
            let old: StoredSpecV1 = proto::codec::decode(&bytes).unwrap();
            assert_eq!(StoredSpec::from(old), v2);
        }
    }

    /// The stored bytes are the vault format: a change here is a format
    /// change (see the module docs), never a side effect of the protocol.
    #[test]
    fn stored_bytes_are_pinned() {
        let got: Vec<String> = samples()
            .iter()
            .map(|s| hex(&proto::codec::encode(s).unwrap()))
            .collect();
        let want = GOLDEN.to_vec();
        assert_eq!(
            got, want,
            "the stored spec's bytes changed: a vault-format change"
        );
    }

    /// Today the stored form encodes exactly as the protocol's does.
    #[test]
    fn protocol_round_trip_is_lossless() {
        for s in samples() {
            let p = CredentialSpec::from(&s);
            assert_eq!(
                proto::codec::encode(&p).unwrap(),
                proto::codec::encode(&s).unwrap(),
                "checked while format 2 and protocol agree; drop this line when they part"
            );
            assert_eq!(StoredSpec::from(p), s);
        }
    }

    /// Format 2: format 1's bytes plus the `source` option.
    const GOLDEN: [&str; 6] = [
        "00011168747470733a2f2f612e6578616d706c6501010347455401052f6170692f00",
        "010003582d4b011168747470733a2f2f612e6578616d706c6501010347455401052f6170692f00",
        "0101011168747470733a2f2f612e6578616d706c6501010347455401052f6170692f00",
        "01020001016b01fb2c010107406d6574686f64011168747470733a2f2f612e6578616d706c6501010347455401052f6170692f00",
        "01020101016b01fb2c010107406d6574686f64011168747470733a2f2f612e6578616d706c6501010347455401052f6170692f00",
        "0101011168747470733a2f2f612e6578616d706c6501010347455401052f6170692f0100067465616d2f6d05746f6b656e",
    ];

    /// Format 1, pinned when it was written (the first five samples).
    const GOLDEN_V1: [&str; 5] = [
        "00011168747470733a2f2f612e6578616d706c6501010347455401052f6170692f",
        "010003582d4b011168747470733a2f2f612e6578616d706c6501010347455401052f6170692f",
        "0101011168747470733a2f2f612e6578616d706c6501010347455401052f6170692f",
        "01020001016b01fb2c010107406d6574686f64011168747470733a2f2f612e6578616d706c6501010347455401052f6170692f",
        "01020101016b01fb2c010107406d6574686f64011168747470733a2f2f612e6578616d706c6501010347455401052f6170692f",
    ];
}
