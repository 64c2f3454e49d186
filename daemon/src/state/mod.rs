//! The daemon's shared state: the vault (locked or unlocked), the HTTP
//! client and the settings. Every vault change goes through [`State::mutate`],
//! which saves to disk *before* the change becomes visible, so what a client
//! saw acknowledged is always what is on disk.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use proto::Secret;
use zeroize::Zeroizing;

use crate::config::Config;
use crate::job::epoch::{Epoch, Epochs};
use crate::job::http::HttpPool;
use crate::job::policy::Policy;
use crate::vault::store::Contents;
use crate::vault::{self, DataKey, KdfParams, VaultError, VaultFile};

mod error;
mod source;

use error::internal;
pub use error::{StartError, StateError};
pub use source::Narrowing;

/// The keys and plaintext of an unlocked vault. Dropping it (on `lock`)
/// zeroizes the data key and every token.
struct Unlocked {
    file: VaultFile,
    key: DataKey,
    contents: Contents,
    /// Compiled once per credential, not per job.
    policies: HashMap<String, Arc<Policy>>,
    unlocked_at: Instant,
}

/// What a job needs from the vault, copied out so the lock is not held
/// while the request runs.
pub struct Lease {
    pub policy: Arc<Policy>,
    pub injection: proto::Injection,
    pub token: Secret,
    /// The HTTP client, taken under the same vault read lock as the token.
    /// `lock`, `remove` and `rotate` change the vault (write lock) before
    /// they swap the client, so a job holding an old token always holds the
    /// old pool, which is dropped, buffers and all, when the job ends.
    pub client: reqwest::Client,
    /// Which unlock this lease belongs to.
    pub epoch: Epoch,
    /// Which version of the vault's contents (see `State::generation`).
    pub generation: u64,
    /// Set when OpenBao's metadata narrowed the origins: `policy` is the
    /// narrowed one, and this says why an origin is missing.
    pub narrowing: Option<Narrowing>,
}

/// What a scan matches against ([`State::scan_values`]): opened for one
/// scan session and zeroized when it ends.
pub struct ScanValues {
    pub values: Vec<(String, Secret)>,
    pub epoch: Epoch,
}

/// What opens the vault: one of its two kinds of key slot.
pub enum Unlocker {
    Passphrase(Secret),
    KeyFile(Secret),
}

impl Unlocker {
    /// For log lines: which kind, never the secret.
    pub fn kind(&self) -> &'static str {
        match self {
            Unlocker::Passphrase(_) => "passphrase",
            Unlocker::KeyFile(_) => "key file",
        }
    }
}

pub struct State {
    pub config: Config,
    pub vault_path: PathBuf,
    pub started: Instant,
    pub http: HttpPool,
    kdf: KdfParams,
    vault: RwLock<Option<Unlocked>>,
    /// Serializes writers (and unlock attempts); readers never wait on disk.
    writer: tokio::sync::Mutex<()>,
    /// Serializes every passphrase check (unlock, passwd, keyfile create),
    /// penalty included, so guesses cannot run in parallel. Taken before
    /// `writer` wherever both are held.
    attempts: tokio::sync::Mutex<()>,
    last_activity: Mutex<Instant>,
    /// Failed passphrase checks since the last right one, whichever request
    /// made them: passwd and keyfile create guess as slowly as unlock.
    failed_unlocks: Mutex<u32>,
    /// Bumped by every `lock` (see [`Epoch`]).
    epoch: Epochs,
    /// Bumped by every change of the contents, unlock and lock: a job's
    /// redactor may be shared with jobs of the same credential and
    /// generation only (`HttpPool::redactor`). Also bumped when OpenBao
    /// gives a credential a new value.
    generation: std::sync::atomic::AtomicU64,
    /// Where `--from-openbao` credentials get their values (`None`: no
    /// `[openbao]` table).
    openbao: Option<crate::openbao::OpenBao>,
    /// Wakes the background reader of OpenBao values (after unlock, login
    /// or add) instead of waiting for its next tick.
    source_kick: tokio::sync::Notify,
}

fn compile(contents: &Contents) -> HashMap<String, Arc<Policy>> {
    contents
        .credentials
        .iter()
        .filter_map(|(name, c)| {
            Some((
                name.clone(),
                Arc::new(Policy::from_spec(&(&c.spec).into()).ok()?),
            ))
        })
        .collect()
}

impl State {
    pub fn new(config: Config, vault_path: PathBuf) -> Result<State, StartError> {
        // The shielding key: drawn now, so a warning about locking its
        // pages shows at start, and a failure stops the daemon here.
        match crate::secure::shield::init() {
            Ok(true) => tracing::debug!("shielding key pages locked in memory"),
            Ok(false) => {}
            Err(e) => return Err(StartError::Shield(e.to_string())),
        }
        let http = HttpPool::new(&config)?;
        let openbao = config
            .openbao
            .as_ref()
            .map(|o| crate::openbao::OpenBao::new(o, &config.loopback_listener_uids))
            .transpose()
            .map_err(StartError::OpenBao)?;
        Ok(State {
            config,
            vault_path,
            started: Instant::now(),
            http,
            kdf: KdfParams::DEFAULT,
            vault: RwLock::new(None),
            writer: tokio::sync::Mutex::new(()),
            attempts: tokio::sync::Mutex::new(()),
            last_activity: Mutex::new(Instant::now()),
            failed_unlocks: Mutex::new(0),
            epoch: Epochs::default(),
            generation: std::sync::atomic::AtomicU64::new(0),
            openbao,
            source_kick: tokio::sync::Notify::new(),
        })
    }

    /// Test hook: cheaper Argon2id parameters for vaults created by this daemon.
    pub fn with_kdf(mut self, kdf: KdfParams) -> State {
        self.kdf = kdf;
        self
    }

    pub fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub fn is_unlocked(&self) -> bool {
        self.read().is_some()
    }

    pub fn credential_count(&self) -> Option<u32> {
        self.read()
            .as_ref()
            .map(|u| u.contents.credentials.len() as u32)
    }

    pub fn vault_exists(&self) -> bool {
        self.vault_path.exists()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<Unlocked>> {
        self.vault.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<Unlocked>> {
        self.vault.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops every key and token from memory, and the pooled upstream
    /// connections whose buffers may still hold an injected header.
    pub fn lock(&self) -> bool {
        let was_unlocked = {
            let mut guard = self.write();
            // Under the write lock, so no lease can see the old vault with
            // the new epoch.
            self.epoch.advance();
            self.bump();
            if let Some(ob) = &self.openbao {
                ob.clear();
            }
            guard.take().is_some()
        };
        if was_unlocked {
            self.http.reset();
        }
        was_unlocked
    }

    /// Locks if `lock_after_idle` or `lock_after` has passed.
    pub fn check_timers(&self) -> Option<&'static str> {
        let idle = self
            .last_activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed();
        let since_unlock = self.read().as_ref()?.unlocked_at.elapsed();
        let reason = if self.config.lock_after.is_some_and(|d| since_unlock >= d) {
            "lock_after"
        } else if self.config.lock_after_idle.is_some_and(|d| idle >= d) {
            "lock_after_idle"
        } else {
            return None;
        };
        self.lock().then_some(reason)
    }

    pub async fn init(&self, passphrase: Secret) -> Result<(), StateError> {
        check_passphrase_shape(&passphrase)?;
        let _w = self.writer.lock().await;
        if self.vault_path.exists() {
            return Err(StateError::VaultExists {
                path: self.vault_path.clone(),
            });
        }
        let kdf = self.kdf;
        let (file, key) =
            tokio::task::spawn_blocking(move || VaultFile::create(passphrase.expose(), kdf))
                .await
                .map_err(internal)??;
        let contents = Contents::default();
        self.save(&file, &key, &contents).await?;
        self.bump();
        *self.write() = Some(Unlocked {
            file,
            key,
            contents,
            policies: HashMap::new(),
            unlocked_at: Instant::now(),
        });
        self.touch();
        Ok(())
    }

    /// Unlocks with a passphrase (`Ok(false)`: already unlocked). Failed
    /// attempts are answered after a growing delay, one at a time.
    pub async fn unlock(&self, with: Unlocker) -> Result<bool, StateError> {
        let _a = self.attempts.lock().await;
        let _w = self.writer.lock().await;
        if self.is_unlocked() {
            return Ok(false);
        }
        let bytes = tokio::task::spawn_blocking({
            let path = self.vault_path.clone();
            move || vault::read_vault(&path)
        })
        .await
        .map_err(internal)??
        .ok_or_else(|| StateError::NoVault {
            path: self.vault_path.clone(),
        })?;
        let parsed = VaultFile::parse(&bytes)?;
        let version = parsed.version();
        let opened = tokio::task::spawn_blocking(move || match &with {
            Unlocker::KeyFile(secret) => {
                let key: &[u8; 32] = secret
                    .expose()
                    .try_into()
                    .map_err(|_| VaultError::WrongKeyfile)?;
                parsed.open_with_keyfile(key)
            }
            Unlocker::Passphrase(secret) => parsed.open_with_passphrase(secret.expose()),
        })
        .await
        .map_err(internal)?;
        let (file, key, plaintext) = match opened {
            Ok(v) => v,
            Err(e @ (VaultError::WrongPassphrase | VaultError::WrongKeyfile)) => {
                self.penalize().await;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let contents = vault::store::decode_contents(version, &plaintext)
            .map_err(|_| StateError::Malformed)?;
        drop(plaintext);
        self.reset_failures();
        let policies = compile(&contents);
        self.bump();
        *self.write() = Some(Unlocked {
            file,
            key,
            contents,
            policies,
            unlocked_at: Instant::now(),
        });
        self.touch();
        // OpenBao-sourced values are read in the background: unlock does
        // not wait on the network.
        self.source_kick.notify_one();
        Ok(true)
    }

    /// Seals and writes the vault durably (off the async threads).
    async fn save(
        &self,
        file: &VaultFile,
        key: &DataKey,
        contents: &Contents,
    ) -> Result<(), StateError> {
        let plaintext = Zeroizing::new(proto::codec::encode(contents).map_err(internal)?);
        let sealed = file.seal(key, &plaintext)?;
        drop(plaintext);
        let path = self.vault_path.clone();
        tokio::task::spawn_blocking(move || vault::write_atomic(&path, &sealed))
            .await
            .map_err(internal)?
            .map_err(|e| {
                // Only a failed directory fsync comes after the rename.
                let replaced = matches!(
                    &e,
                    VaultError::Io {
                        op: "sync directory",
                        ..
                    }
                );
                let e = StateError::Save {
                    source: e,
                    replaced,
                };
                tracing::warn!("saving the vault failed: {e}");
                e
            })?;
        // One line per durable write: tests count saves by it (an import
        // of any size is one).
        tracing::debug!("vault saved ({} credentials)", contents.credentials.len());
        Ok(())
    }

    /// Applies `change` to a copy of the contents (and optionally the key
    /// slots), saves it, and only then makes it visible. On any error the
    /// in-memory state is untouched and equal to what is on disk.
    pub async fn mutate<F, E>(&self, change: F) -> Result<(), E>
    where
        F: FnOnce(&mut Contents, &mut VaultFile, &mut DataKey) -> Result<(), E>,
        E: From<StateError>,
    {
        let _w = self.writer.lock().await;
        let (mut contents, mut file, mut key) = {
            let guard = self.read();
            let u = guard.as_ref().ok_or(StateError::Locked)?;
            (u.contents.clone(), u.file.clone(), u.key.clone())
        };
        // Outside the read lock: a change may take a while (passwd runs Argon2id).
        // A change may also replace the data key (re-keying on passwd and
        // key-file changes): the new key seals this save and every later one.
        change(&mut contents, &mut file, &mut key)?;
        self.save(&file, &key, &contents).await?;
        let mut guard = self.write();
        if let Some(u) = guard.as_mut() {
            // Keep usage counted while the save ran.
            for (name, c) in contents.credentials.iter_mut() {
                if let Some(old) = u.contents.credentials.get(name) {
                    c.use_count = c.use_count.max(old.use_count);
                    c.last_used = c.last_used.max(old.last_used);
                }
            }
            u.policies = compile(&contents);
            u.contents = contents;
            u.file = file;
            u.key = key;
            self.bump();
        }
        self.touch();
        Ok(())
    }

    /// Verifies the passphrase against the current slot (for passwd and
    /// keyfile create) on the same serialized, penalized path as unlock, so
    /// these requests are no faster way to guess.
    pub async fn verify_passphrase(&self, passphrase: Secret) -> Result<(), StateError> {
        let _a = self.attempts.lock().await;
        let file = self.read().as_ref().ok_or(StateError::Locked)?.file.clone();
        let ok = tokio::task::spawn_blocking(move || file.check_passphrase(passphrase.expose()))
            .await
            .map_err(internal)?;
        match ok {
            Ok(_) => {
                self.reset_failures();
                Ok(())
            }
            Err(e @ VaultError::WrongPassphrase) => {
                self.penalize().await;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Counts a failed passphrase check and waits out its penalty; called
    /// with `attempts` held, so the next guess waits too.
    async fn penalize(&self) {
        let fails = {
            let mut f = self
                .failed_unlocks
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *f = f.saturating_add(1);
            *f
        };
        tokio::time::sleep(unlock_penalty(fails)).await;
    }

    fn reset_failures(&self) {
        *self
            .failed_unlocks
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = 0;
    }

    /// The vault file exactly as it is on disk, for `vaultctl backup`.
    ///
    /// Read under the writer lock, so no save is half-way and the bytes are
    /// the last acknowledged state (what this daemon has in memory, apart
    /// from usage counters that are saved lazily). Needs no key, so it also
    /// works while locked. The header is parsed, and while unlocked the
    /// contents are authenticated with the data key, so that a damaged or
    /// foreign file is refused rather than handed out as a backup (while
    /// locked, damage behind an intact header shows only at unlock).
    pub async fn backup(&self) -> Result<Vec<u8>, StateError> {
        let _w = self.writer.lock().await;
        let path = self.vault_path.clone();
        let bytes = tokio::task::spawn_blocking(move || vault::read_vault(&path))
            .await
            .map_err(internal)??
            .ok_or_else(|| StateError::NothingToBackUp {
                path: self.vault_path.clone(),
            })?;
        let parsed = VaultFile::parse(&bytes)?;
        let key = self.read().as_ref().map(|u| u.key.clone());
        if let Some(key) = key {
            parsed.verify(&key)?;
        }
        if bytes.len() > proto::MAX_BODY {
            return Err(StateError::BackupTooLarge {
                path: self.vault_path.clone(),
                max: proto::MAX_BODY,
            });
        }
        Ok(bytes)
    }

    pub fn kdf(&self) -> KdfParams {
        self.kdf
    }

    pub fn list(&self) -> Result<Vec<proto::CredentialInfo>, StateError> {
        let guard = self.read();
        let u = guard.as_ref().ok_or(StateError::Locked)?;
        Ok(u.contents
            .credentials
            .iter()
            .map(|(n, c)| {
                let mut info = c.info(n);
                if c.spec.source.is_some() {
                    info.source_state = Some(self.source_state(n, u.policies.get(n)));
                }
                info
            })
            .collect())
    }

    /// Forgets a credential's fetched value (after `remove`).
    pub fn forget_source(&self, name: &str) {
        if let Some(ob) = &self.openbao {
            ob.forget(name);
        }
    }

    /// Wakes the background reader of OpenBao values.
    pub fn kick_sources(&self) {
        self.source_kick.notify_one();
    }

    /// Resolves when something asks for an early background read.
    pub async fn sources_kicked(&self) {
        self.source_kick.notified().await;
    }

    pub fn has_openbao(&self) -> bool {
        self.openbao.is_some()
    }

    /// Copies out what one job needs.
    pub fn lease(&self, name: &str) -> Result<Lease, StateError> {
        let guard = self.read();
        let u = guard.as_ref().ok_or(StateError::Locked)?;
        let Some(cred) = u.contents.credentials.get(name) else {
            return Err(no_such(name));
        };
        let policy = match u.policies.get(name) {
            Some(p) => p.clone(),
            None => Arc::new(Policy::from_spec(&(&cred.spec).into()).map_err(StateError::Spec)?),
        };
        let injection = cred
            .spec
            .injection
            .as_ref()
            .map(proto::Injection::from)
            .ok_or_else(|| internal("credential has no injection"))?;
        let (token, policy, narrowing) = if cred.spec.source.is_some() {
            self.cached(name, &policy, &(&cred.spec).into())?
        } else {
            (cred.value.open().map_err(internal)?, policy, None)
        };
        Ok(Lease {
            policy,
            injection,
            token,
            client: self.http.client(),
            epoch: self.epoch.current(),
            generation: self.generation.load(std::sync::atomic::Ordering::Acquire),
            narrowing,
        })
    }

    /// The credential an HTTP front request names by its `Host` (which
    /// clients lower-case, so matched ignoring case; an exact match first,
    /// then the only name that matches ignoring case) and its first origin
    /// (its own, before any OpenBao narrowing), where a request without
    /// `Tokenvault-Origin` goes. Nothing secret is opened here.
    pub fn front_target(&self, host: &str) -> Result<(String, String), StateError> {
        let guard = self.read();
        let u = guard.as_ref().ok_or(StateError::Locked)?;
        let creds = &u.contents.credentials;
        let name = if creds.contains_key(host) {
            host.to_owned()
        } else {
            let mut found = creds.keys().filter(|k| k.eq_ignore_ascii_case(host));
            match (found.next(), found.next()) {
                (Some(k), None) => k.clone(),
                _ => return Err(no_such(host)),
            }
        };
        let policy = match u.policies.get(&name) {
            Some(p) => p.clone(),
            None => {
                let cred = creds.get(&name).ok_or_else(|| no_such(host))?;
                Arc::new(Policy::from_spec(&(&cred.spec).into()).map_err(StateError::Spec)?)
            }
        };
        let origin = policy
            .origins
            .first()
            .map(|o| o.to_string())
            .ok_or_else(|| internal("credential has no origin"))?;
        Ok((name, origin))
    }

    /// The tokens of the other credentials bound to a machine `name` is
    /// bound to. An upstream that stores what it receives (a request log,
    /// an "activity" page) can show a job one of the other tokens sent
    /// there, or one a script added itself to read the others back: the
    /// job redacts them all. Opened per job, like the token, and only for
    /// a job its policy let through (not for `explain` or a refusal).
    pub fn neighbours(&self, name: &str) -> Result<Vec<Secret>, StateError> {
        let guard = self.read();
        let u = guard.as_ref().ok_or(StateError::Locked)?;
        let cred = u
            .contents
            .credentials
            .get(name)
            .ok_or_else(|| no_such(name))?;
        let hosts = hosts_of(&cred.spec);
        let mut neighbours = self.retired_values(name);
        for (other, c) in &u.contents.credentials {
            let sends_value = !matches!(
                c.spec.injection,
                Some(crate::vault::spec::StoredInjection::Sign { .. }) | None
            );
            if other != name && sends_value && hosts_of(&c.spec).iter().any(|h| hosts.contains(h)) {
                if c.spec.source.is_some() {
                    // A value vaultd does not know cannot be redacted: the
                    // job waits for it (`neighbours_ready`) or is refused.
                    let values = self.known_values(other).ok_or_else(|| {
                        StateError::Source(crate::openbao::SourceError::NeighbourUnknown {
                            name: other.clone(),
                        })
                    })?;
                    neighbours.extend(values);
                } else {
                    neighbours.push(c.value.open().map_err(internal)?);
                }
            }
        }
        Ok(neighbours)
    }

    /// The OpenBao-sourced credentials whose values `neighbours(name)`
    /// will need, not cached yet.
    fn uncached_neighbours(&self, name: &str) -> Vec<String> {
        let guard = self.read();
        let Some(u) = guard.as_ref() else {
            return Vec::new();
        };
        let Some(cred) = u.contents.credentials.get(name) else {
            return Vec::new();
        };
        let hosts = hosts_of(&cred.spec);
        u.contents
            .credentials
            .iter()
            .filter(|(other, c)| {
                *other != name
                    && c.spec.source.is_some()
                    && !matches!(
                        c.spec.injection,
                        Some(crate::vault::spec::StoredInjection::Sign { .. }) | None
                    )
                    && self.known_values(other).is_none()
                    && hosts_of(&c.spec).iter().any(|h| hosts.contains(h))
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Reads the values of OpenBao-sourced neighbours not cached yet, so
    /// the job can redact them (see `neighbours`).
    pub async fn neighbours_ready(&self, name: &str) {
        if self.openbao.is_none() {
            return;
        }
        for other in self.uncached_neighbours(name) {
            let _ = self.source_ready(&other).await;
        }
    }

    /// Every stored value with its credential's name, for `vaultctl scan`,
    /// and the unlock they belong to (a scan ends when the vault locks).
    /// The one place a scan gets values from: a credential whose value
    /// lives elsewhere (OpenBao) joins the list here.
    pub fn scan_values(&self) -> Result<ScanValues, StateError> {
        let guard = self.read();
        let u = guard.as_ref().ok_or(StateError::Locked)?;
        let mut values = Vec::with_capacity(u.contents.credentials.len());
        for (name, c) in &u.contents.credentials {
            if c.spec.source.is_some() {
                // An OpenBao-sourced value: every version read since the
                // unlock (an old copy on disk is still a leak); one not read
                // yet is not looked for.
                let known = self.known_values(name).unwrap_or_default();
                values.extend(known.into_iter().map(|v| (name.clone(), v)));
            } else {
                values.push((name.clone(), c.value.open().map_err(internal)?));
            }
        }
        Ok(ScanValues {
            values,
            epoch: self.epoch.current(),
        })
    }

    fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Counts a job that passed the policy. Kept in memory and written with
    /// the next save: usage statistics are not worth a disk write per job.
    pub fn record_use(&self, name: &str) {
        if let Some(c) = self
            .write()
            .as_mut()
            .and_then(|u| u.contents.credentials.get_mut(name))
        {
            c.use_count += 1;
            c.last_used = Some(crate::vault::store::now_secs());
        }
    }

    pub fn idle(&self) -> Duration {
        self.last_activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
}

pub fn no_such(name: &str) -> StateError {
    StateError::NoSuchCredential {
        name: name.to_owned(),
    }
}

pub fn check_passphrase_shape(p: &Secret) -> Result<(), StateError> {
    if p.is_empty() {
        return Err(StateError::EmptyPassphrase);
    }
    Ok(())
}

/// Growing delay after failed unlocks, as ssh-agent does: 0.5 s, 1 s, 2 s,
/// ... capped at 10 s. Attempts are serialized, so guessing is slow.
pub fn unlock_penalty(fails: u32) -> Duration {
    let ms = 500u64.saturating_mul(1u64 << fails.saturating_sub(1).min(5));
    Duration::from_millis(ms.min(10_000))
}

/// The hosts a credential may be sent to, as the machine they reach:
/// scheme and port ignored (one server often answers on several), every
/// spelling of this machine (127.0.0.0/8, ::1, an IPv4-mapped loopback
/// address, the unspecified addresses, `localhost`, its own LAN
/// addresses) one host, and an IPv4-mapped address its IPv4 address. Two DNS names of one server are
/// not linked (SECURITY.md).
fn hosts_of(spec: &crate::vault::spec::StoredSpec) -> Vec<String> {
    spec.origins
        .iter()
        .filter_map(|o| url::Url::parse(o).ok())
        .filter_map(|u| machine_of(&u))
        .collect()
}

fn machine_of(u: &url::Url) -> Option<String> {
    use std::net::IpAddr;
    let ip = match u.host()? {
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
            return Some("loopback".into());
        }
        url::Host::Domain(d) => return Some(d.to_ascii_lowercase()),
        url::Host::Ipv4(a) => IpAddr::V4(a),
        url::Host::Ipv6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
    };
    Some(
        if ip.is_loopback() || ip.is_unspecified() || is_own_address(ip) {
            "loopback".into()
        } else {
            ip.to_string()
        },
    )
}

/// Whether `ip` is one of this machine's own addresses (a LAN address): a
/// socket binds to it only then. A service listening on 0.0.0.0 answers on
/// every one of them, so they are one machine with loopback.
fn is_own_address(ip: std::net::IpAddr) -> bool {
    std::net::UdpSocket::bind(std::net::SocketAddr::new(ip, 0)).is_ok()
}
