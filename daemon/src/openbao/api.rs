//! The five calls vaultd makes to OpenBao (the same API as HashiCorp
//! Vault): AppRole login, token lookup, renew and revoke, and a KV v2 read,
//! each tried on the configured nodes in turn.
//!
//! Written on reqwest with serde types rather than a client crate: five
//! calls do not need one, and here every secret stays in our hands. Bodies
//! with a secret_id or a value are short-lived heap buffers, which the
//! daemon's wiping allocator clears when they are freed; the client keeps
//! no idle connections, so no connection buffer outlives its call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proto::Secret;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;

use super::error::{SourceError, one_line, reason_of};
use crate::config::OpenBaoConfig;

/// Largest answer read from OpenBao: a KV secret with its metadata.
const MAX_ANSWER: usize = 1024 * 1024;

/// One call's deadline per node.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Cheap to clone: a revocation runs on a clone after `lock`.
#[derive(Clone)]
pub struct Api {
    cfg: OpenBaoConfig,
    client: reqwest::Client,
    /// The node that answered last: tried first next time.
    node: Arc<AtomicUsize>,
}

/// What a login or token lookup says about the client token.
pub struct TokenInfo {
    /// `None` with a lookup (the token is the one we have).
    pub token: Option<Secret>,
    /// Time to live; zero means it does not expire (a root token).
    pub ttl: Duration,
    pub renewable: bool,
}

/// A KV v2 read: the field's value, its version and the narrowing
/// metadata.
pub struct KvValue {
    pub value: Secret,
    pub version: u64,
    /// `custom_metadata.tokenvault_origins`, split on commas.
    pub origins: Option<Vec<String>>,
    pub node: String,
}

/// An answer that is not a transport failure: status and body.
struct Answer {
    status: u16,
    body: zeroize::Zeroizing<Vec<u8>>,
    node: String,
}

impl Api {
    /// `listener_uids`: as for upstreams, a plain-http node on loopback
    /// must be served by vaultd's uid, root or one of these, or the
    /// connection is dropped before the secret_id or token is written.
    pub fn new(cfg: &OpenBaoConfig, listener_uids: &[u32]) -> Result<Api, SourceError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tls_info(true)
            .connector_layer(crate::job::listener_layer::CheckListenerLayer::new(
                listener_uids,
            ))
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(5))
            .timeout(CALL_TIMEOUT);
        if let Some(path) = &cfg.ca {
            let pem = std::fs::read(path).map_err(|e| {
                SourceError::Client(format!("cannot read openbao.ca {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| SourceError::Client(format!("openbao.ca {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(SourceError::Client(format!(
                    "openbao.ca {} holds no certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| SourceError::Client(one_line(&e.to_string())))?;
        Ok(Api {
            cfg: cfg.clone(),
            client,
            node: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn config(&self) -> &OpenBaoConfig {
        &self.cfg
    }

    /// The node tried first (the last one that answered).
    pub fn current_node(&self) -> String {
        let i = self.node.load(Ordering::Relaxed) % self.cfg.addrs.len();
        node_name(&self.cfg.addrs[i])
    }

    /// `mount/path` as messages name a secret.
    pub fn kv_name(&self, path: &str) -> String {
        format!("{}/{path}", self.cfg.kv_mount)
    }

    /// Sends one call to each node in turn, from the one that answered
    /// last, until one answers with something other than a 5xx (a sealed
    /// node, a standby without an active node) or a 429/473 (a standby that
    /// does not serve this).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&Secret>,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, SourceError> {
        let n = self.cfg.addrs.len();
        let start = self.node.load(Ordering::Relaxed) % n;
        let mut last = SourceError::Unreachable {
            node: node_name(&self.cfg.addrs[start]),
            reason: "no node tried".into(),
        };
        for k in 0..n {
            let i = (start + k) % n;
            let base = &self.cfg.addrs[i];
            let node = node_name(base);
            let url = match base.join(&format!("v1/{path}")) {
                Ok(u) => u,
                Err(e) => return Err(SourceError::Client(e.to_string())),
            };
            let mut headers = HeaderMap::new();
            headers.insert("X-Vault-Request", HeaderValue::from_static("true"));
            if let Some(ns) = &self.cfg.namespace {
                if let Ok(v) = HeaderValue::from_str(ns) {
                    headers.insert("X-Vault-Namespace", v);
                }
            }
            if let Some(t) = token {
                let mut v = HeaderValue::from_bytes(t.expose()).map_err(|_| {
                    SourceError::Client("the client token is not a header value".into())
                })?;
                v.set_sensitive(true);
                headers.insert("X-Vault-Token", v);
            }
            let mut req = self.client.request(method.clone(), url).headers(headers);
            if let Some(b) = &body {
                req = req
                    .header("Content-Type", "application/json")
                    .body(b.clone());
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = SourceError::Unreachable {
                        node,
                        reason: transport_reason(&e),
                    };
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let body = match read_body(resp).await {
                Ok(b) => b,
                Err(reason) => {
                    last = SourceError::Unreachable { node, reason };
                    continue;
                }
            };
            // A standby without a leader answers writes with 307 to the dead
            // leader: redirects are never followed, the next node is tried.
            if status >= 500 || status == 429 || status == 473 || (300..400).contains(&status) {
                last = SourceError::Unreachable {
                    node,
                    reason: reason_of(status, &body),
                };
                continue;
            }
            self.node.store(i, Ordering::Relaxed);
            return Ok(Answer { status, body, node });
        }
        Err(last)
    }

    /// AppRole login: a new client token.
    pub async fn login_approle(
        &self,
        role_id: &Secret,
        secret_id: &Secret,
    ) -> Result<TokenInfo, SourceError> {
        #[derive(serde::Serialize)]
        struct Login<'a> {
            role_id: &'a str,
            secret_id: &'a str,
        }
        fn text(s: &Secret) -> Result<&str, SourceError> {
            std::str::from_utf8(s.expose())
                .map_err(|_| SourceError::Client("login material is not UTF-8".into()))
        }
        let body = serde_json::to_vec(&Login {
            role_id: text(role_id)?,
            secret_id: text(secret_id)?,
        })
        .map_err(|e| SourceError::Client(e.to_string()))?;
        let path = format!("auth/{}/login", self.cfg.approle_mount);
        let a = self
            .call(reqwest::Method::POST, &path, None, Some(body))
            .await?;
        if a.status != 200 {
            return Err(SourceError::LoginRefused {
                node: a.node,
                reason: reason_of(a.status, &a.body),
            });
        }
        auth_of(&a)
    }

    /// What OpenBao knows of a token we hold (`auth = "token"`).
    pub async fn lookup_self(&self, token: &Secret) -> Result<TokenInfo, SourceError> {
        #[derive(Deserialize)]
        struct Lookup {
            data: LookupData,
        }
        #[derive(Deserialize)]
        struct LookupData {
            #[serde(default)]
            ttl: u64,
            #[serde(default)]
            renewable: bool,
        }
        let a = self
            .call(
                reqwest::Method::GET,
                "auth/token/lookup-self",
                Some(token),
                None,
            )
            .await?;
        if a.status != 200 {
            return Err(SourceError::LoginRefused {
                node: a.node,
                reason: reason_of(a.status, &a.body),
            });
        }
        let l: Lookup = serde_json::from_slice(&a.body).map_err(|e| SourceError::Malformed {
            node: a.node.clone(),
            path: "auth/token/lookup-self".into(),
            reason: one_line(&e.to_string()),
        })?;
        Ok(TokenInfo {
            token: None,
            ttl: Duration::from_secs(l.data.ttl),
            renewable: l.data.renewable,
        })
    }

    /// Extends the token's lease.
    pub async fn renew_self(&self, token: &Secret) -> Result<TokenInfo, SourceError> {
        let a = self
            .call(
                reqwest::Method::POST,
                "auth/token/renew-self",
                Some(token),
                Some(b"{}".to_vec()),
            )
            .await?;
        if a.status != 200 {
            return Err(SourceError::LoginRefused {
                node: a.node,
                reason: reason_of(a.status, &a.body),
            });
        }
        let mut info = auth_of(&a)?;
        // The answer repeats the token we sent: drop that copy at once.
        info.token = None;
        Ok(info)
    }

    /// Best effort: the token dies with the lock, not at its TTL.
    pub async fn revoke_self(&self, token: &Secret) {
        let _ = self
            .call(
                reqwest::Method::POST,
                "auth/token/revoke-self",
                Some(token),
                Some(b"{}".to_vec()),
            )
            .await;
    }

    /// Reads `field` of the current version of KV v2 secret `path`.
    /// `Err(None)` means the token was refused (403): log in again and retry.
    pub async fn kv_read(
        &self,
        token: &Secret,
        path: &str,
        field: &str,
    ) -> Result<KvValue, Option<SourceError>> {
        let name = self.kv_name(path);
        let a = self
            .call(
                reqwest::Method::GET,
                &format!("{}/data/{path}", self.cfg.kv_mount),
                Some(token),
                None,
            )
            .await
            .map_err(Some)?;
        let node = a.node.clone();
        let malformed = |reason: String| SourceError::Malformed {
            node: node.clone(),
            path: name.clone(),
            reason: one_line(&reason),
        };
        let kv: Option<Kv> = serde_json::from_slice(&a.body).ok();
        match a.status {
            200 => {}
            403 => return Err(None),
            404 => {
                // A deleted current version answers 404 with its metadata.
                if let Some(m) = kv
                    .as_ref()
                    .and_then(|k| k.data.as_ref())
                    .map(|d| &d.metadata)
                {
                    if !m.deletion_time.is_empty() || m.destroyed {
                        return Err(Some(SourceError::Deleted {
                            node,
                            path: name,
                            version: m.version,
                        }));
                    }
                }
                return Err(Some(SourceError::NotFound { node, path: name }));
            }
            s => {
                return Err(Some(SourceError::Denied {
                    node,
                    path: name,
                    reason: reason_of(s, &a.body),
                }));
            }
        }
        let kv = kv
            .and_then(|k| k.data)
            .ok_or_else(|| Some(malformed("no data".into())))?;
        let Some(fields) = kv.data else {
            return Err(Some(SourceError::Deleted {
                node,
                path: name,
                version: kv.metadata.version,
            }));
        };
        let value = match fields.get(field) {
            Some(serde_json::Value::String(s)) => Secret::from_slice(s.as_bytes()),
            Some(_) => {
                return Err(Some(SourceError::BadValue {
                    node,
                    path: name,
                    field: field.to_owned(),
                    reason: "not a string".into(),
                }));
            }
            None => {
                return Err(Some(SourceError::NoField {
                    node,
                    path: name,
                    field: field.to_owned(),
                }));
            }
        };
        let origins = kv
            .metadata
            .custom_metadata
            .as_ref()
            .and_then(|m| m.get("tokenvault_origins"))
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect()
            });
        Ok(KvValue {
            value,
            version: kv.metadata.version,
            origins,
            node,
        })
    }
}

#[derive(Deserialize)]
struct Kv {
    data: Option<KvData>,
}

#[derive(Deserialize)]
struct KvData {
    /// `null` for a deleted version.
    data: Option<std::collections::HashMap<String, serde_json::Value>>,
    metadata: KvMetadata,
}

#[derive(Deserialize)]
struct KvMetadata {
    #[serde(default)]
    version: u64,
    #[serde(default)]
    deletion_time: String,
    #[serde(default)]
    destroyed: bool,
    #[serde(default)]
    custom_metadata: Option<std::collections::HashMap<String, String>>,
}

/// The `auth` block of a login or renew answer.
fn auth_of(a: &Answer) -> Result<TokenInfo, SourceError> {
    #[derive(Deserialize)]
    struct Auth {
        auth: Option<AuthData>,
    }
    #[derive(Deserialize)]
    struct AuthData {
        client_token: String,
        #[serde(default)]
        lease_duration: u64,
        #[serde(default)]
        renewable: bool,
    }
    let parsed: Auth = serde_json::from_slice(&a.body).map_err(|e| SourceError::Malformed {
        node: a.node.clone(),
        path: "auth".into(),
        reason: one_line(&e.to_string()),
    })?;
    let auth = parsed.auth.ok_or_else(|| SourceError::Malformed {
        node: a.node.clone(),
        path: "auth".into(),
        reason: "no auth block".into(),
    })?;
    Ok(TokenInfo {
        token: Some(Secret::from_slice(auth.client_token.as_bytes())),
        ttl: Duration::from_secs(auth.lease_duration),
        renewable: auth.renewable,
    })
}

async fn read_body(mut resp: reqwest::Response) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    let mut out = zeroize::Zeroizing::new(Vec::new());
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > MAX_ANSWER {
                    return Err(format!("answer larger than {MAX_ANSWER} bytes"));
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(transport_reason(&e)),
        }
    }
}

/// The innermost cause: "connection refused", "certificate not trusted".
fn transport_reason(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        cause.to_string()
    };
    one_line(&what)
}

/// A node as messages name it: scheme, host and port.
fn node_name(u: &url::Url) -> String {
    u.origin().ascii_serialization()
}
