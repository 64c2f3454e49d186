//! When vaultd reads OpenBao-sourced values, and what a job gets from the
//! cache: a value younger than `max_stale`, under origins narrowed by the
//! secret's `tokenvault_origins`.
//!
//! Reads happen in the background (after unlock, when a value is older
//! than `refresh`, and when a read failed: every few seconds until one
//! works), on first use if no read has finished, and at once on
//! `vaultctl refresh`. A job never waits for a refresh of a value it can
//! still use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::{CredentialSpec, Secret, SourceState};

use super::{State, StateError, internal, no_such};
use crate::job::policy::Policy;
use crate::openbao::{Entry, OpenBao, SourceError};
use crate::secure::Shielded;
use crate::vault::store::StoredLogin;

/// After a failed background read, the next one waits this long (or
/// `refresh`, if shorter).
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// An explicit `vaultctl refresh` keeps trying this long while no node can
/// answer (a leader election takes a few seconds).
const REFRESH_PATIENCE: Duration = Duration::from_secs(20);
/// The longest a job waits for a first read.
const FIRST_READ_LIMIT: Duration = Duration::from_secs(15);

/// Where a job's origins come from when OpenBao narrowed them.
#[derive(Clone)]
pub struct Narrowing {
    /// The credential's own policy, before narrowing.
    pub local: Arc<Policy>,
    /// `mount/path` of the secret whose metadata narrowed it.
    pub at: String,
    /// The origins left.
    pub effective: Vec<String>,
}

/// What one read needs, copied out of the vault.
struct ReadPlan {
    path: String,
    field: String,
    spec: CredentialSpec,
    login: Option<StoredLogin>,
}

impl State {
    fn openbao(&self) -> Result<&OpenBao, StateError> {
        self.openbao
            .as_ref()
            .ok_or(StateError::Source(SourceError::NotConfigured))
    }

    fn plan(&self, name: &str) -> Result<Option<ReadPlan>, StateError> {
        let guard = self.read();
        let u = guard.as_ref().ok_or(StateError::Locked)?;
        let cred = u
            .contents
            .credentials
            .get(name)
            .ok_or_else(|| no_such(name))?;
        Ok(cred.spec.openbao().map(|(path, field)| ReadPlan {
            path: path.to_owned(),
            field: field.to_owned(),
            spec: (&cred.spec).into(),
            login: u.contents.openbao_login.clone(),
        }))
    }

    /// The credentials whose value lives in OpenBao.
    fn sourced_names(&self) -> Result<Vec<String>, StateError> {
        let guard = self.read();
        let u = guard.as_ref().ok_or(StateError::Locked)?;
        Ok(u.contents
            .credentials
            .iter()
            .filter(|(_, c)| c.spec.openbao().is_some())
            .map(|(n, _)| n.clone())
            .collect())
    }

    /// For a job: an OpenBao-sourced credential with no usable value yet is
    /// read now (the first use after unlock, or past `max_stale`); anything
    /// else returns at once.
    pub async fn source_ready(&self, name: &str) -> Result<(), StateError> {
        let Ok(Some(_)) = self.plan(name) else {
            // Locked, unknown or local: `lease` gives the error.
            return Ok(());
        };
        let ob = self.openbao()?;
        if self.usable(ob, name) {
            return Ok(());
        }
        let e = match tokio::time::timeout(FIRST_READ_LIMIT, self.read_source(name, false)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(StateError::Source(e))) => e,
            Ok(Err(e)) => return Err(e),
            Err(_) => SourceError::NotRead {
                name: name.to_owned(),
                reason: format!(
                    "no answer within {}",
                    humantime::format_duration(FIRST_READ_LIMIT)
                ),
            },
        };
        // A value that was read once and has gone stale says so, with the
        // read that just failed as the reason.
        let age = ob.with_entry(name, |e| e.map(|e| e.read_at.elapsed()));
        Err(StateError::Source(match age {
            Some(age) if !e.is_refusal() => SourceError::Stale {
                name: name.to_owned(),
                age,
                max_stale: ob.config().max_stale,
                last: Box::new(e),
            },
            _ => e,
        }))
    }

    fn usable(&self, ob: &OpenBao, name: &str) -> bool {
        let max_stale = ob.config().max_stale;
        ob.with_entry(name, |e| {
            e.is_some_and(|e| e.read_at.elapsed() <= max_stale)
        })
    }

    /// Reads one credential's value from OpenBao into the cache. Without
    /// `force`, a read that another task finished while this one waited
    /// counts.
    pub async fn read_source(&self, name: &str, force: bool) -> Result<(), StateError> {
        let ob = self.openbao()?;
        let gate = ob.read_lock(name);
        let _one_at_a_time = gate.lock().await;
        if !force && self.usable(ob, name) {
            return Ok(());
        }
        let Some(plan) = self.plan(name)? else {
            return Ok(());
        };
        let era = ob.era();
        let cfg = ob.config();
        let retry = RETRY_AFTER.min(cfg.refresh);
        let result = match ob.read(plan.login.as_ref(), &plan.path, &plan.field).await {
            Ok(kv) => checked(&plan, kv.value)
                .map_err(|reason| SourceError::BadValue {
                    node: kv.node.clone(),
                    path: ob.kv_name(&plan.path),
                    field: plan.field.clone(),
                    reason,
                })
                .map(|value| (value, kv.version, kv.origins)),
            Err(e) => Err(e),
        };
        let (value, version, origins) = match result {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("reading {name:?} from OpenBao failed: {e}");
                ob.store_error(era, name, e.clone(), retry);
                return Err(StateError::Source(e));
            }
        };
        let old_version = ob.with_entry(name, |e| e.map(|e| e.version));
        let now = Instant::now();
        let stored = ob.store(
            era,
            name,
            Entry {
                value,
                version,
                read_at: now,
                due: now + cfg.refresh + jitter(cfg.refresh),
                origins,
                last_error: None,
            },
        );
        if stored && old_version != Some(version) {
            // A new value: redactors are rebuilt, and pooled connections
            // whose buffers may hold the old one are dropped.
            self.bump();
            if old_version.is_some() {
                self.http.reset();
                tracing::info!("{name:?}: new value (version {version}) from OpenBao");
            }
        }
        Ok(())
    }

    /// One pass of the background refresher: reads every value that is
    /// due (never read, older than `refresh`, or a failed read's retry
    /// time has come), and renews the client token when due.
    pub async fn refresh_due(&self) {
        let Some(ob) = &self.openbao else {
            return;
        };
        let Ok(names) = self.sourced_names() else {
            return;
        };
        let now = Instant::now();
        for name in names {
            let due = ob.with_entry(&name, |e| e.is_none_or(|e| e.due <= now))
                && ob.first_error_due(&name, now);
            if due {
                let _ = self.read_source(&name, true).await;
            }
        }
        ob.maintain().await;
    }

    /// `vaultctl refresh [NAME]`: reads now, waiting out a leader election
    /// for up to 20 s.
    pub async fn refresh(&self, name: Option<&str>) -> Result<usize, StateError> {
        // Not configured: say so before anything else.
        self.openbao()?;
        let names: Vec<String> = match name {
            Some(n) => {
                if self.plan(n)?.is_none() {
                    return Err(StateError::NotSourced { name: n.to_owned() });
                }
                vec![n.to_owned()]
            }
            None => self.sourced_names()?,
        };
        let started = Instant::now();
        for n in &names {
            loop {
                match self.read_source(n, true).await {
                    Ok(()) => break,
                    Err(StateError::Source(SourceError::Unreachable { .. }))
                        if started.elapsed() < REFRESH_PATIENCE =>
                    {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(names.len())
    }

    /// The value and policy of an OpenBao-sourced credential for a job.
    pub(super) fn cached(
        &self,
        name: &str,
        base: &Arc<Policy>,
        spec: &CredentialSpec,
    ) -> Result<(Secret, Arc<Policy>, Option<Narrowing>), StateError> {
        let ob = self.openbao()?;
        let max_stale = ob.config().max_stale;
        let found = ob.with_entry(name, |e| {
            let e = e?;
            let age = e.read_at.elapsed();
            if age > max_stale {
                return Some(Err(SourceError::Stale {
                    name: name.to_owned(),
                    age,
                    max_stale,
                    last: Box::new(e.last_error.clone().unwrap_or(SourceError::NotRead {
                        name: name.to_owned(),
                        reason: "no read since".into(),
                    })),
                }));
            }
            Some(Ok((e.value.open(), e.origins.clone())))
        });
        let (value, origins) = match found {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(StateError::Source(e)),
            None => {
                return Err(StateError::Source(ob.first_error(name).unwrap_or(
                    SourceError::NotRead {
                        name: name.to_owned(),
                        reason: "the first read is still running".into(),
                    },
                )));
            }
        };
        let value = value.map_err(internal)?;
        let Some(allowed) = origins else {
            return Ok((value, base.clone(), None));
        };
        let at = self.source_name(spec);
        let effective = narrow(base, &allowed);
        if effective.is_empty() {
            return Err(StateError::NarrowedAway {
                name: name.to_owned(),
                at,
            });
        }
        let narrowed = CredentialSpec {
            origins: effective.clone(),
            ..spec.clone()
        };
        let policy = Arc::new(Policy::from_spec(&narrowed).map_err(StateError::Spec)?);
        Ok((
            value,
            policy,
            Some(Narrowing {
                local: base.clone(),
                at,
                effective,
            }),
        ))
    }

    fn source_name(&self, spec: &CredentialSpec) -> String {
        match (&spec.source, &self.openbao) {
            (Some(proto::Source::OpenBao { path, field }), Some(ob)) => {
                format!("{}#{field}", ob.kv_name(path))
            }
            (Some(proto::Source::OpenBao { path, field }), None) => format!("{path}#{field}"),
            (None, _) => String::new(),
        }
    }

    /// What `list` shows of a sourced credential's cached value.
    pub(super) fn source_state(&self, name: &str, base: Option<&Arc<Policy>>) -> SourceState {
        let Some(ob) = &self.openbao else {
            return SourceState {
                version: None,
                age_secs: None,
                last_error: Some(SourceError::NotConfigured.to_string()),
                effective_origins: None,
            };
        };
        let (version, age, last, origins) = ob.with_entry(name, |e| match e {
            Some(e) => (
                Some(e.version),
                Some(e.read_at.elapsed().as_secs()),
                e.last_error.as_ref().map(|e| e.to_string()),
                e.origins.clone(),
            ),
            None => (None, None, None, None),
        });
        let last = last.or_else(|| ob.first_error(name).map(|e| e.to_string()));
        SourceState {
            version,
            age_secs: age,
            last_error: last,
            effective_origins: match (origins, base) {
                (Some(allowed), Some(base)) => Some(narrow(base, &allowed)),
                _ => None,
            },
        }
    }

    /// What a job of another credential must redact of OpenBao-sourced
    /// credential `name` (see [`State::neighbours`]): every value of it
    /// read this unlock. `None` when vaultd does not know its value though
    /// it may exist (never read, OpenBao unreachable): the job is refused.
    /// A read OpenBao refused (no such secret, denied) leaves nothing to
    /// redact.
    pub(super) fn known_values(&self, name: &str) -> Option<Vec<Secret>> {
        let ob = self.openbao.as_ref()?;
        let values = ob.known_values(name);
        if values.is_empty() && !ob.first_error(name).is_some_and(|e| e.is_refusal()) {
            return None;
        }
        Some(values)
    }

    /// Older values of the job's own credential: an upstream may echo the
    /// version it stored before the new one arrived.
    pub(super) fn retired_values(&self, name: &str) -> Vec<Secret> {
        let Some(ob) = &self.openbao else {
            return Vec::new();
        };
        let mut all = ob.known_values(name);
        // The last one is the current value, which the job redacts anyway.
        if ob.with_entry(name, |e| e.is_some()) {
            all.pop();
        }
        all
    }

    /// `vaultctl openbao login`: checks the material against the cluster,
    /// then stores it.
    pub async fn openbao_login(&self, login: StoredLogin) -> Result<(), StateError> {
        if !self.is_unlocked() {
            return Err(StateError::Locked);
        }
        let ob = self.openbao()?;
        ob.try_login(&login).await.map_err(StateError::Source)?;
        self.mutate(move |contents, _, _| -> Result<(), StateError> {
            contents.openbao_login = Some(login);
            Ok(())
        })
        .await?;
        self.source_kick.notify_one();
        Ok(())
    }

    /// `vaultctl openbao status`.
    pub fn openbao_status(&self) -> Option<proto::OpenBaoStatus> {
        let ob = self.openbao.as_ref()?;
        let has_login = self
            .read()
            .as_ref()
            .is_some_and(|u| u.contents.openbao_login.is_some());
        Some(ob.status(has_login))
    }
}

/// The value as a job will use it: a token must be a valid header value,
/// a signing key must load as a key of its algorithm.
fn checked(plan: &ReadPlan, value: Secret) -> Result<Shielded, String> {
    let value = match &plan.spec.injection {
        Some(proto::Injection::Sign { alg, .. }) => {
            crate::job::sign::import(*alg, value).map_err(|e| e.to_string())?
        }
        _ => {
            crate::job::policy::validate_token(value.expose()).map_err(|e| e.to_string())?;
            value
        }
    };
    Shielded::try_from(&value).map_err(|e| e.to_string())
}

/// The credential's origins that `allowed` (OpenBao's list) also names,
/// compared in canonical form. An entry that is not an origin allows
/// nothing.
fn narrow(base: &Policy, allowed: &[String]) -> Vec<String> {
    let allowed: Vec<String> = allowed
        .iter()
        .filter_map(|a| {
            let spec = CredentialSpec {
                origins: vec![a.clone()],
                allow_insecure_http: true,
                ..CredentialSpec::default()
            };
            Policy::from_spec(&spec)
                .ok()
                .and_then(|p| p.origins.first().map(|o| o.to_string()))
        })
        .collect();
    base.origins
        .iter()
        .map(|o| o.to_string())
        .filter(|o| allowed.contains(o))
        .collect()
}

/// Up to a tenth of `refresh` (at most 30 s), so machines that unlocked
/// together do not all read at once.
fn jitter(refresh: Duration) -> Duration {
    let span = (refresh / 10).min(Duration::from_secs(30));
    let r = crate::vault::crypto::random_bytes::<4>()
        .map(u32::from_le_bytes)
        .unwrap_or(0);
    span.mul_f64(f64::from(r) / f64::from(u32::MAX))
}
