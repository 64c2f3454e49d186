//! Credentials whose value lives in OpenBao (or HashiCorp Vault) KV v2.
//!
//! The value is read into shielded memory and never written to any file:
//! the vault stores only where it lives (`StoredSource`) and how to log in
//! (`StoredLogin`). This module holds the client token of the current
//! unlock and the cache of values read; `State` decides when to read
//! (`state/source.rs`) and drops all of it on `lock`.
//!
//! - [`api`]: the HTTP calls, with failover between the cluster's nodes.
//! - [`error`]: why a read failed, in words that name the node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proto::Secret;

use crate::config::{OpenBaoAuth, OpenBaoConfig};
use crate::secure::Shielded;
use crate::vault::store::StoredLogin;

pub mod api;
pub mod error;

pub use api::KvValue;
pub use error::SourceError;

/// Retired values kept per credential for redaction.
const MAX_RETIRED: usize = 4;

/// The client token of this unlock.
struct Session {
    /// The unlock it belongs to (see [`OpenBao::era`]): a session of an
    /// earlier unlock is revoked, never used.
    era: u64,
    /// A token vaultd made by logging in (AppRole) is revoked when dropped;
    /// a token the admin gave (`auth = "token"`) is the stored login
    /// itself and must survive a lock.
    revocable: bool,
    token: Shielded,
    /// Zero: it does not expire.
    ttl: Duration,
    renewable: bool,
    since: Instant,
}

impl Session {
    /// Treated as expired a little early (a tenth of its life, at most
    /// 5 s), so a call never goes out with a token about to lapse.
    fn expired(&self) -> bool {
        let margin = (self.ttl / 10).min(Duration::from_secs(5));
        !self.ttl.is_zero() && self.since.elapsed() + margin >= self.ttl
    }

    /// Renewed once two thirds of its life have gone, well before expiry.
    fn wants_renewal(&self) -> bool {
        self.renewable && !self.ttl.is_zero() && self.since.elapsed() >= self.ttl * 2 / 3
    }

    fn remaining(&self) -> Option<Duration> {
        (!self.ttl.is_zero()).then(|| self.ttl.saturating_sub(self.since.elapsed()))
    }
}

/// A value read from OpenBao, and when.
pub struct Entry {
    pub value: Shielded,
    pub version: u64,
    /// The last good read: `max_stale` counts from here.
    pub read_at: Instant,
    /// When the background refresher reads it again.
    pub due: Instant,
    /// `tokenvault_origins` from the secret's custom metadata.
    pub origins: Option<Vec<String>>,
    /// The last failed read since the last good one.
    pub last_error: Option<SourceError>,
}

pub struct OpenBao {
    api: api::Api,
    session: tokio::sync::Mutex<Option<Session>>,
    /// What `status` shows without waiting for a call in progress.
    shown: Mutex<Shown>,
    cache: Mutex<HashMap<String, Entry>>,
    /// Failed first reads, for messages and `list` (no entry exists yet).
    first_errors: Mutex<HashMap<String, (SourceError, Instant)>>,
    /// One read at a time per credential: a job waiting for a first read
    /// and the refresher share it.
    reading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Values this unlock read and then stopped using (an older version, or
    /// one OpenBao withdrew): no longer sent, still redacted, since an
    /// upstream may have stored them and may still accept them.
    retired: Mutex<HashMap<String, Vec<Shielded>>>,
    /// Bumped by [`OpenBao::clear`]: a read that began before a `lock`
    /// must not fill the cache after it.
    era: AtomicU64,
}

#[derive(Default)]
struct Shown {
    logged_in: bool,
    expires: Option<Instant>,
    last_error: Option<String>,
}

impl OpenBao {
    pub fn new(cfg: &OpenBaoConfig, listener_uids: &[u32]) -> Result<OpenBao, SourceError> {
        Ok(OpenBao {
            api: api::Api::new(cfg, listener_uids)?,
            session: tokio::sync::Mutex::new(None),
            shown: Mutex::new(Shown::default()),
            cache: Mutex::new(HashMap::new()),
            first_errors: Mutex::new(HashMap::new()),
            reading: Mutex::new(HashMap::new()),
            retired: Mutex::new(HashMap::new()),
            era: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &OpenBaoConfig {
        self.api.config()
    }

    pub fn kv_name(&self, path: &str) -> String {
        self.api.kv_name(path)
    }

    pub fn era(&self) -> u64 {
        self.era.load(Ordering::Acquire)
    }

    /// Serializes reads of one credential.
    pub fn read_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.reading)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Logs in with `login` and checks the result, for `vaultctl openbao
    /// login`: the material is stored only if it works. The token it gave
    /// becomes this unlock's session.
    pub async fn try_login(&self, login: &StoredLogin) -> Result<(), SourceError> {
        let era = self.era();
        let mut session = self.session.lock().await;
        let new = self.login(login, era).await;
        self.show(
            new.as_ref().map(|_| ()).map_err(Clone::clone),
            new.as_ref().ok().and_then(Session::remaining),
        );
        if self.era() != era {
            // Locked meanwhile: nothing of this login may stay.
            let old = session.take();
            drop(session);
            for s in new.into_iter().chain(old) {
                self.revoke_later(s);
            }
            return Err(locked_meanwhile());
        }
        let old = session.replace(new?);
        drop(session);
        if let Some(old) = old {
            self.revoke_later(old);
        }
        Ok(())
    }

    /// A client token for the next call: the session's, renewed when due,
    /// or a new login.
    async fn token(&self, login: Option<&StoredLogin>) -> Result<Secret, SourceError> {
        let era = self.era();
        let mut session = self.session.lock().await;
        if session.as_ref().is_some_and(|s| s.era != era) {
            if let Some(old) = session.take() {
                self.revoke_later(old);
            }
        }
        if let Some(s) = session.as_mut() {
            if s.wants_renewal() {
                let token = open(&s.token)?;
                match self.api.renew_self(&token).await {
                    Ok(info) => {
                        s.ttl = info.ttl;
                        s.since = Instant::now();
                        s.renewable = info.renewable;
                        tracing::info!(
                            "OpenBao token renewed at {} (ttl {})",
                            self.api.current_node(),
                            humantime::format_duration(info.ttl)
                        );
                    }
                    Err(e) => {
                        tracing::warn!("OpenBao token renewal failed, logging in again: {e}");
                        s.ttl = Duration::from_secs(1);
                        s.since = Instant::now() - Duration::from_secs(10);
                    }
                }
            }
        }
        if session.as_ref().is_some_and(|s| !s.expired()) && self.era() == era {
            let s = session.as_ref().ok_or(SourceError::NoLogin)?;
            self.show(Ok(()), s.remaining());
            return open(&s.token);
        }
        let login = login.ok_or(SourceError::NoLogin)?;
        let result = self.login(login, era).await;
        self.show(
            result.as_ref().map(|_| ()).map_err(Clone::clone),
            result.as_ref().ok().and_then(Session::remaining),
        );
        if self.era() != era {
            let old = session.take();
            drop(session);
            for s in result.into_iter().chain(old) {
                self.revoke_later(s);
            }
            return Err(locked_meanwhile());
        }
        let s = result?;
        let token = open(&s.token)?;
        if let Some(old) = session.replace(s) {
            self.revoke_later(old);
        }
        Ok(token)
    }

    async fn login(&self, login: &StoredLogin, era: u64) -> Result<Session, SourceError> {
        let cfg = self.api.config();
        let revocable = cfg.auth == OpenBaoAuth::AppRole;
        let (token, info) = match (cfg.auth, login) {
            (OpenBaoAuth::AppRole, StoredLogin::AppRole { role_id, secret_id }) => {
                let info = self
                    .api
                    .login_approle(&open(role_id)?, &open(secret_id)?)
                    .await?;
                let token = info.token.as_ref().ok_or(SourceError::NoLogin)?;
                (Shielded::try_from(token).map_err(shield)?, info)
            }
            (OpenBaoAuth::Token, StoredLogin::Token(token)) => {
                let info = self.api.lookup_self(&open(token)?).await?;
                (token.clone(), info)
            }
            (auth, _) => {
                return Err(SourceError::Client(format!(
                    "the stored login is not for auth = \"{}\": run `vaultctl openbao login` again",
                    auth.as_str()
                )));
            }
        };
        tracing::info!(
            "logged in to OpenBao at {} ({}, ttl {})",
            self.api.current_node(),
            cfg.auth.as_str(),
            if info.ttl.is_zero() {
                "none".to_owned()
            } else {
                humantime::format_duration(info.ttl).to_string()
            }
        );
        Ok(Session {
            era,
            revocable,
            token,
            ttl: info.ttl,
            renewable: info.renewable,
            since: Instant::now(),
        })
    }

    /// Reads `path#field`: logs in first if needed, and once more if the
    /// token was refused (expired or revoked).
    pub async fn read(
        &self,
        login: Option<&StoredLogin>,
        path: &str,
        field: &str,
    ) -> Result<KvValue, SourceError> {
        let result = self.read_once(login, path, field).await;
        if let Err(e) = &result {
            self.note_error(e);
        }
        result
    }

    async fn read_once(
        &self,
        login: Option<&StoredLogin>,
        path: &str,
        field: &str,
    ) -> Result<KvValue, SourceError> {
        let token = self.token(login).await?;
        match self.api.kv_read(&token, path, field).await {
            Ok(v) => return Ok(v),
            Err(Some(e)) => return Err(e),
            Err(None) => {}
        }
        // 403: the token may have expired or been revoked. A new login;
        // a second 403 is the policy's answer.
        drop(token);
        self.forget_session().await;
        let token = self.token(login).await?;
        match self.api.kv_read(&token, path, field).await {
            Ok(v) => Ok(v),
            Err(Some(e)) => Err(e),
            Err(None) => Err(SourceError::Denied {
                node: self.api.current_node(),
                path: self.api.kv_name(path),
                reason: "permission denied".into(),
            }),
        }
    }

    async fn forget_session(&self) {
        if let Some(old) = self.session.lock().await.take() {
            // Possibly still valid (a 403 for another reason): revoke it
            // rather than leave a live token behind.
            self.revoke_later(old);
        }
    }

    /// Renews the session's token when due, between reads, so a token
    /// whose TTL is shorter than `refresh` does not lapse.
    pub async fn maintain(&self) {
        let due = self
            .session
            .lock()
            .await
            .as_ref()
            .is_some_and(|s| s.wants_renewal());
        if due {
            let _ = self.token(None).await;
        }
    }

    /// Puts a good read in the cache, unless the vault locked since `era`.
    pub fn store(&self, era: u64, name: &str, entry: Entry) -> bool {
        let mut cache = lock(&self.cache);
        if self.era() != era {
            return false;
        }
        lock(&self.first_errors).remove(name);
        if let Some(old) = cache.insert(name.to_owned(), entry) {
            if cache
                .get(name)
                .is_some_and(|new| new.version != old.version)
            {
                self.retire(name, old.value);
            }
        }
        true
    }

    /// Keeps a value no longer used for redaction (the last few per
    /// credential).
    fn retire(&self, name: &str, value: Shielded) {
        let mut retired = lock(&self.retired);
        let list = retired.entry(name.to_owned()).or_default();
        list.push(value);
        if list.len() > MAX_RETIRED {
            list.remove(0);
        }
    }

    /// The values of `name` that jobs must redact: the cached one, and
    /// those retired this unlock. Empty when vaultd never read it.
    pub fn known_values(&self, name: &str) -> Vec<Secret> {
        let mut out: Vec<Secret> = lock(&self.retired)
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|v| v.open().ok())
            .collect();
        out.extend(
            lock(&self.cache)
                .get(name)
                .and_then(|e| e.value.open().ok()),
        );
        out
    }

    /// Records a failed read: the entry keeps serving until `max_stale`.
    pub fn store_error(&self, era: u64, name: &str, e: SourceError, retry: Duration) {
        let mut cache = lock(&self.cache);
        if self.era() != era {
            return;
        }
        match cache.get_mut(name) {
            Some(_) if e.is_refusal() => {
                // Withdrawn, not served until max_stale: see `is_refusal`.
                if let Some(old) = cache.remove(name) {
                    self.retire(name, old.value);
                }
                lock(&self.first_errors).insert(name.to_owned(), (e, Instant::now() + retry));
            }
            Some(entry) => {
                entry.last_error = Some(e);
                entry.due = Instant::now() + retry;
            }
            None => {
                lock(&self.first_errors).insert(name.to_owned(), (e, Instant::now() + retry));
            }
        }
    }

    /// Runs `f` on the cached entry of `name`.
    pub fn with_entry<T>(&self, name: &str, f: impl FnOnce(Option<&Entry>) -> T) -> T {
        f(lock(&self.cache).get(name))
    }

    /// The error of a first read that failed (no entry yet).
    pub fn first_error(&self, name: &str) -> Option<SourceError> {
        lock(&self.first_errors).get(name).map(|(e, _)| e.clone())
    }

    /// Whether a credential whose first read failed may be tried again.
    pub fn first_error_due(&self, name: &str, now: Instant) -> bool {
        lock(&self.first_errors)
            .get(name)
            .is_none_or(|(_, due)| *due <= now)
    }

    /// Forgets one credential's value (`remove`, or its source changed).
    pub fn forget(&self, name: &str) {
        lock(&self.cache).remove(name);
        lock(&self.retired).remove(name);
        lock(&self.first_errors).remove(name);
        lock(&self.reading).remove(name);
    }

    /// Drops every value read and the client token (revoked in the
    /// background, best effort): `lock`.
    pub fn clear(&self) {
        self.era.fetch_add(1, Ordering::AcqRel);
        lock(&self.cache).clear();
        lock(&self.retired).clear();
        lock(&self.first_errors).clear();
        lock(&self.reading).clear();
        *lock(&self.shown) = Shown::default();
        // Not awaited: `lock` must not wait on the network. A read in
        // progress holds the session; it finds the era changed.
        if let Ok(mut s) = self.session.try_lock() {
            if let Some(old) = s.take() {
                self.revoke_later(old);
            }
        }
    }

    /// Revokes a token we no longer use, without waiting for it.
    fn revoke_later(&self, old: Session) {
        if !old.revocable {
            return;
        }
        let Ok(token) = open(&old.token) else {
            return;
        };
        drop(old);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let api = self.api.clone();
        handle.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(3), api.revoke_self(&token)).await;
        });
    }

    /// `vaultctl openbao status`.
    pub fn status(&self, has_login: bool) -> proto::OpenBaoStatus {
        let cfg = self.api.config();
        let shown = lock(&self.shown);
        proto::OpenBaoStatus {
            configured: true,
            addrs: cfg
                .addrs
                .iter()
                .map(|u| u.origin().ascii_serialization())
                .collect(),
            node: Some(self.api.current_node()),
            auth: cfg.auth.as_str().to_owned(),
            has_login,
            logged_in: shown.logged_in,
            token_ttl_secs: shown
                .expires
                .map(|e| e.saturating_duration_since(Instant::now()).as_secs()),
            last_error: shown.last_error.clone(),
        }
    }

    fn show(&self, result: Result<(), SourceError>, remaining: Option<Duration>) {
        let mut shown = lock(&self.shown);
        match result {
            Ok(()) => {
                shown.logged_in = true;
                shown.expires = remaining.map(|r| Instant::now() + r);
            }
            Err(e) => {
                shown.last_error = Some(e.to_string());
            }
        }
    }

    fn note_error(&self, e: &SourceError) {
        lock(&self.shown).last_error = Some(e.to_string());
    }
}

fn locked_meanwhile() -> SourceError {
    SourceError::Client("the vault was locked while logging in to OpenBao".into())
}

fn open(s: &Shielded) -> Result<Secret, SourceError> {
    s.open().map_err(shield)
}

fn shield(e: impl std::fmt::Display) -> SourceError {
    SourceError::Client(format!("shielded memory: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
