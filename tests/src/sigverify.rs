//! An independent RFC 9421 verifier, as an upstream would run it: it parses
//! `Signature-Input` and `Signature` from the request it *received*,
//! rebuilds the signature base from that request, checks `Content-Digest`
//! (RFC 9530) against the received body, and verifies with ring. It shares
//! no code with the daemon, so a bug in the daemon's signer cannot hide
//! behind the same bug here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, signature};

use crate::upstream::Recorded;

/// What the upstream knows about the client's key.
#[derive(Debug, Clone)]
pub enum VerifyKey {
    /// The shared secret.
    Hmac(Vec<u8>),
    /// The raw 32-byte public key.
    Ed25519(Vec<u8>),
}

impl VerifyKey {
    /// The public key from `vaultctl pubkey`'s PEM (SubjectPublicKeyInfo).
    pub fn ed25519_from_pem(text: &str) -> VerifyKey {
        let b64: String = text
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN PUBLIC KEY-----"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        let der = STANDARD.decode(b64).expect("PEM base64");
        // 12-byte SPKI header for Ed25519 (RFC 8410), then the key.
        assert_eq!(der.len(), 44, "Ed25519 SPKI is 44 bytes");
        assert_eq!(
            &der[..12],
            b"\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00"
        );
        VerifyKey::Ed25519(der[12..].to_vec())
    }
}

/// The verified signature's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub components: Vec<String>,
    pub created: u64,
    pub expires: Option<u64>,
    pub keyid: Option<String>,
    pub alg: Option<String>,
}

/// Verifies signature `sig1` on a received request; `scheme` is how the
/// upstream was reached. Errors say which check failed.
pub fn verify(req: &Recorded, scheme: &str, key: &VerifyKey) -> Result<Verified, String> {
    let input = one_header(req, "signature-input")?;
    let sig_field = one_header(req, "signature")?;
    let params_text = input
        .strip_prefix("sig1=")
        .ok_or("Signature-Input has no sig1")?;
    let close = params_text
        .find(')')
        .filter(|_| params_text.starts_with('('))
        .ok_or("Signature-Input is not an inner list")?;
    let components: Vec<String> = params_text[1..close]
        .split(' ')
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.strip_prefix('"')
                .and_then(|c| c.strip_suffix('"'))
                .map(str::to_owned)
                .ok_or_else(|| format!("component {c} is not a string"))
        })
        .collect::<Result<_, _>>()?;
    let mut v = Verified {
        components: components.clone(),
        created: 0,
        expires: None,
        keyid: None,
        alg: None,
    };
    for p in params_text[close + 1..]
        .split(';')
        .filter(|p| !p.is_empty())
    {
        let (k, val) = p.split_once('=').ok_or("parameter without value")?;
        let unq = || val.trim_matches('"').to_owned();
        match k {
            "created" => v.created = val.parse().map_err(|_| "bad created")?,
            "expires" => v.expires = Some(val.parse().map_err(|_| "bad expires")?),
            "keyid" => v.keyid = Some(unq()),
            "alg" => v.alg = Some(unq()),
            other => return Err(format!("unknown parameter {other}")),
        }
    }
    let sig_b64 = sig_field
        .strip_prefix("sig1=:")
        .and_then(|s| s.strip_suffix(':'))
        .ok_or("Signature has no sig1 byte sequence")?;
    let sig = STANDARD
        .decode(sig_b64)
        .map_err(|_| "Signature is not base64")?;

    // The body must be what the digest says, and a body must be covered.
    if !req.body.is_empty() && !components.iter().any(|c| c == "content-digest") {
        return Err("the body is not covered by the signature".into());
    }
    if let Some(d) = req.header("content-digest") {
        let want = format!(
            "sha-256=:{}:",
            STANDARD.encode(digest::digest(&digest::SHA256, &req.body))
        );
        if d != want {
            return Err("content-digest does not match the body".into());
        }
    }

    let mut base = String::new();
    for c in &components {
        let value = component(req, scheme, c)?;
        base.push_str(&format!("\"{c}\": {value}\n"));
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(params_text);

    match key {
        VerifyKey::Hmac(secret) => {
            if v.alg.as_deref().is_some_and(|a| a != "hmac-sha256") {
                return Err("alg does not match the key".into());
            }
            let k = hmac::Key::new(hmac::HMAC_SHA256, secret);
            hmac::verify(&k, base.as_bytes(), &sig).map_err(|_| "bad hmac-sha256 signature")?;
        }
        VerifyKey::Ed25519(public) => {
            if v.alg.as_deref().is_some_and(|a| a != "ed25519") {
                return Err("alg does not match the key".into());
            }
            signature::UnparsedPublicKey::new(&signature::ED25519, public)
                .verify(base.as_bytes(), &sig)
                .map_err(|_| "bad ed25519 signature")?;
        }
    }

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    if v.created > now + 5 || v.created + 300 < now {
        return Err("created is not recent".into());
    }
    if v.expires.is_some_and(|e| e < now) {
        return Err("signature expired".into());
    }
    Ok(v)
}

fn one_header(req: &Recorded, name: &str) -> Result<String, String> {
    let n = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .count();
    match n {
        1 => Ok(req.header(name).expect("present")),
        0 => Err(format!("no {name} header")),
        _ => Err(format!("{n} {name} headers")),
    }
}

/// A component's value as this upstream sees the request.
fn component(req: &Recorded, scheme: &str, name: &str) -> Result<String, String> {
    let host = || req.header("host").ok_or("no Host header");
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (req.target.clone(), None),
    };
    Ok(match name {
        "@method" => req.method.clone(),
        "@target-uri" => format!("{scheme}://{}{}", host()?, req.target),
        "@authority" => host()?.to_ascii_lowercase(),
        "@scheme" => scheme.to_owned(),
        "@request-target" => req.target.clone(),
        "@path" => path,
        "@query" => format!("?{}", query.unwrap_or_default()),
        d if d.starts_with('@') => return Err(format!("unsupported component {d}")),
        field => {
            let values: Vec<String> = req
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(field))
                .map(|(_, v)| String::from_utf8_lossy(v).trim().to_owned())
                .collect();
            if values.is_empty() {
                return Err(format!("covered header {field} is missing"));
            }
            values.join(", ")
        }
    })
}
