//! One function per request: turns a decoded [`Request`] into a
//! [`Response`]. Jobs run on the connection itself ([`crate::job::stream`]),
//! since their bodies and replies flow in chunks.

use std::collections::HashMap;

use proto::{
    CredentialSpec, ImportEntry, JobRequest, Request, Response, Secret, StatusInfo, VaultState,
};

use crate::error::{Error, RequestError};

use crate::job::policy::{self, Policy};
use crate::job::sign;
use crate::job::stream;
use crate::peer::Peer;
use crate::secure::Shielded;
use crate::state::{State, Unlocker, check_passphrase_shape, no_such};
use crate::text::clip;
use crate::vault::store::{StoredCredential, StoredLogin, now_secs, validate_name};

fn bad(msg: impl Into<String>) -> Error {
    RequestError::Invalid(msg.into()).into()
}

/// What a uid listed in `allow_uids` may not ask for: everything but using
/// credentials. A guest that could `rotate` would redirect the owner's next
/// upload into its own account; `backup` would give it the file to guess
/// offline; `unlock`/`passwd`/`keyfile` would give it passphrase guesses;
/// `add`/`remove`/`lock` change what the owner relies on. `None`: allowed.
fn owner_only(req: &Request) -> Option<&'static str> {
    Some(match req {
        Request::Status
        | Request::List
        | Request::Job(_)
        | Request::StreamJob { .. }
        | Request::Chunk(_)
        | Request::End
        | Request::Explain(_)
        | Request::PublicKey { .. }
        | Request::OpenBaoStatus => return None,
        // Which stored value is in a file is the owner's to know: a guest
        // could test guesses of the owner's tokens against the matcher.
        Request::Scan | Request::ScanFile { .. } => "scan",
        Request::Init { .. } => "init",
        Request::Unlock { .. } | Request::UnlockKeyfile { .. } => "unlock",
        Request::Lock => "lock",
        Request::Passwd { .. } => "passwd",
        Request::Add { .. } | Request::AddGenerated { .. } | Request::AddSourced { .. } => "add",
        Request::Rotate { .. } => "rotate",
        Request::Remove { .. } => "remove",
        Request::AddKeyfile { .. } => "keyfile create",
        Request::Backup => "backup",
        Request::RemoveKeyfile { .. } => "keyfile remove",
        Request::OpenBaoLogin(_) => "openbao login",
        Request::Refresh { .. } => "refresh",
        Request::Import { .. } => "import",
    })
}

/// The daemon's own uid: the one that may manage the vault.
fn owner_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Serves one request on `stream`: a job runs there in chunks, anything
/// else gets one reply. Returns whether the connection can carry on.
pub async fn serve<S>(state: &State, peer: &Peer, req: Request, stream: &mut S) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match req {
        Request::Job(job) => stream::buffered(stream, state, peer, job).await,
        Request::StreamJob {
            job,
            body_follows,
            body_len,
        } => stream::streamed(stream, state, peer, job, body_follows, body_len).await,
        Request::Scan if peer.uid == owner_uid() => crate::scan::session(stream, state, peer).await,
        other => {
            let resp = handle(state, peer, other).await;
            proto::frame::write_frame_async(stream, &resp).await.is_ok()
        }
    }
}

/// The reply to a request that is not a job.
pub async fn handle(state: &State, peer: &Peer, req: Request) -> Response {
    if peer.uid != owner_uid() {
        if let Some(what) = owner_only(&req) {
            tracing::warn!(
                "refused `{what}` from uid {} (pid {}): allow_uids grants the use of credentials only",
                peer.uid,
                peer.pid_str()
            );
            let e = RequestError::OwnerOnly {
                uid: peer.uid,
                owner: owner_uid(),
                what,
            };
            return Response::Error(crate::error::reply(e));
        }
    }
    let result = match req {
        Request::Status => Ok(status(state)),
        Request::Init { passphrase } => state
            .init(passphrase)
            .await
            .map(|_| Response::Done)
            .map_err(Error::from),
        Request::Unlock { passphrase } => unlock(state, Unlocker::Passphrase(passphrase)).await,
        Request::UnlockKeyfile { key } => unlock(state, Unlocker::KeyFile(key)).await,
        Request::Lock => {
            if state.lock() {
                tracing::info!("vault locked by request of pid {}", peer.pid_str());
            }
            Ok(Response::Done)
        }
        Request::Passwd { old, new } => passwd(state, old, new).await,
        Request::Add { name, spec, value } => {
            if spec.source.is_some() {
                Err(bad(
                    "a credential whose value lives in OpenBao is added with the vault's passphrase (AddSourced)",
                ))
            } else {
                add(state, name, spec, value).await
            }
        }
        Request::Rotate { name, value } => rotate(state, name, value).await,
        Request::Remove { name } => remove(state, name).await,
        Request::List => state.list().map(Response::List).map_err(Error::from),
        Request::AddKeyfile { passphrase, key } => add_keyfile(state, passphrase, key).await,
        // `serve` runs jobs on the connection, so their writes to the
        // client end with the job (deadline, lock).
        Request::Job(_) | Request::StreamJob { .. } => Err(RequestError::MisroutedJob.into()),
        // Pieces of a body outside a streamed job are a client bug.
        Request::Chunk(_) | Request::End => Err(RequestError::StrayChunk.into()),
        // `serve` runs a scan session on the connection; a file outside
        // one is a client bug.
        Request::Scan | Request::ScanFile { .. } => Err(RequestError::StrayChunk.into()),
        Request::AddGenerated { name, spec } => add_generated(state, name, spec).await,
        Request::PublicKey { name } => public_key(state, &name).await,
        Request::Explain(job) => explain(state, job).await,
        Request::Backup => backup(state, peer).await,
        Request::RemoveKeyfile { passphrase } => remove_keyfile(state, passphrase).await,
        Request::OpenBaoLogin(login) => openbao_login(state, login).await,
        Request::OpenBaoStatus => Ok(Response::OpenBaoStatus(
            state
                .openbao_status()
                .unwrap_or_else(openbao_not_configured),
        )),
        Request::Refresh { name } => refresh(state, name).await,
        Request::AddSourced {
            name,
            spec,
            passphrase,
        } => add_sourced(state, name, spec, passphrase).await,
        Request::Import { entries, replace } => import(state, entries, replace).await,
    };
    result.unwrap_or_else(|e| Response::Error(e.into()))
}

fn status(state: &State) -> Response {
    let vault_state = if state.is_unlocked() {
        VaultState::Unlocked
    } else if state.vault_exists() {
        VaultState::Locked
    } else {
        VaultState::Uninitialized
    };
    Response::Status(StatusInfo {
        daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol: proto::PROTOCOL_VERSION,
        state: vault_state,
        credentials: state.credential_count(),
        uptime_secs: state.started.elapsed().as_secs(),
        pid: std::process::id(),
        vault_path: state.vault_path.display().to_string(),
        openbao: state.openbao_status(),
        http_socket: match &state.config.http_socket {
            crate::config::FrontSocket::At(p) => Some(p.display().to_string()),
            _ => None,
        },
    })
}

fn openbao_not_configured() -> proto::OpenBaoStatus {
    proto::OpenBaoStatus {
        configured: false,
        addrs: Vec::new(),
        node: None,
        auth: String::new(),
        has_login: false,
        logged_in: false,
        token_ttl_secs: None,
        last_error: None,
    }
}

/// `vaultctl openbao login`: the material is checked against the cluster
/// before it is stored, so a wrong secret_id is reported now, not at the
/// first job.
async fn openbao_login(state: &State, login: proto::OpenBaoLogin) -> Result<Response, Error> {
    let seal = |s: &Secret| {
        Shielded::try_from(s)
            .map_err(|e| Error::from(crate::state::StateError::Internal(e.to_string())))
    };
    let (stored, kind) = match &login {
        proto::OpenBaoLogin::AppRole { role_id, secret_id } => {
            if role_id.is_empty() || secret_id.is_empty() {
                return Err(bad("the role_id and the secret_id must not be empty"));
            }
            (
                StoredLogin::AppRole {
                    role_id: seal(&Secret::from_slice(role_id.as_bytes()))?,
                    secret_id: seal(secret_id)?,
                },
                "approle",
            )
        }
        proto::OpenBaoLogin::Token(token) => {
            if token.is_empty() {
                return Err(bad("the token must not be empty"));
            }
            (StoredLogin::Token(seal(token)?), "token")
        }
    };
    drop(login);
    state.openbao_login(stored).await?;
    tracing::info!("OpenBao login ({kind}) checked and stored");
    Ok(Response::Done)
}

async fn refresh(state: &State, name: Option<String>) -> Result<Response, Error> {
    let n = state.refresh(name.as_deref()).await?;
    tracing::info!("{n} OpenBao-sourced value(s) read by request");
    Ok(Response::Done)
}

async fn unlock(state: &State, with: Unlocker) -> Result<Response, Error> {
    let how = with.kind();
    match state.unlock(with).await {
        Ok(true) => {
            tracing::info!("vault unlocked with {how}");
            Ok(Response::Done)
        }
        Ok(false) => Ok(Response::Done),
        Err(e) => {
            tracing::warn!("unlock with {how} failed: {e}");
            Err(e.into())
        }
    }
}

async fn passwd(state: &State, old: Secret, new: Secret) -> Result<Response, Error> {
    check_passphrase_shape(&new)?;
    state.verify_passphrase(old).await?;
    let kdf = state.kdf();
    // Argon2id on the async threads would stall other clients for ~0.3 s:
    // derive the new slot on the blocking pool inside the change.
    state
        .mutate(move |_, file, key| -> Result<(), Error> {
            rekey(key)?;
            if file.remove_keyfile() {
                tracing::warn!(
                    "key-file slot removed by passwd (vaultd does not hold the key file to re-wrap the new data key): run `vaultctl keyfile create PATH` for a new one"
                );
            }
            tokio::task::block_in_place(|| file.set_passphrase(key, new.expose(), kdf))
                .map_err(Error::from)
        })
        .await?;
    tracing::info!("passphrase changed; vault re-keyed");
    Ok(Response::Done)
}

/// A fresh data key for the next save. Every secret that changes a slot
/// (passwd, a new or removed key file) re-keys: a slot only re-wrapped
/// would leave the old data key valid, so an old copy of the vault file
/// plus the old passphrase or a revoked key file would open every later
/// vault file too.
fn rekey(key: &mut crate::vault::crypto::DataKey) -> Result<(), Error> {
    *key = crate::vault::crypto::DataKey::generate()?;
    Ok(())
}

/// `keyfile remove`: drop the slot and re-key, re-wrapping the passphrase
/// slot with the passphrase just checked.
async fn remove_keyfile(state: &State, passphrase: Secret) -> Result<Response, Error> {
    state.verify_passphrase(passphrase.clone()).await?;
    let kdf = state.kdf();
    state
        .mutate(move |_, file, key| -> Result<(), Error> {
            if !file.remove_keyfile() {
                return Err(bad("this vault has no key-file slot"));
            }
            rekey(key)?;
            tokio::task::block_in_place(|| file.set_passphrase(key, passphrase.expose(), kdf))
                .map_err(Error::from)
        })
        .await?;
    tracing::info!("key-file slot removed; vault re-keyed");
    Ok(Response::Done)
}

async fn add_keyfile(state: &State, passphrase: Secret, key: Secret) -> Result<Response, Error> {
    let key: [u8; 32] = key
        .expose()
        .try_into()
        .map_err(|_| bad("a key file holds exactly 32 bytes"))?;
    let key = zeroize::Zeroizing::new(key);
    state.verify_passphrase(passphrase.clone()).await?;
    let kdf = state.kdf();
    state
        .mutate(move |_, file, data_key| -> Result<(), Error> {
            // A replaced key file must open nothing saved from now on.
            rekey(data_key)?;
            tokio::task::block_in_place(|| {
                file.set_passphrase(data_key, passphrase.expose(), kdf)
            })?;
            file.set_keyfile(data_key, &key).map_err(Error::from)
        })
        .await?;
    tracing::info!("key-file slot set; vault re-keyed");
    Ok(Response::Done)
}

async fn add(
    state: &State,
    name: String,
    spec: CredentialSpec,
    value: Secret,
) -> Result<Response, Error> {
    let (cred, sourced) = checked_credential(state, &name, spec, value)?;
    let log_name = name.clone();
    state
        .mutate(move |contents, _, _| -> Result<(), Error> {
            if contents.credentials.contains_key(&name) {
                return Err(Error::from(crate::state::StateError::AlreadyExists {
                    name,
                }));
            }
            contents.credentials.insert(name, cred);
            Ok(())
        })
        .await?;
    tracing::info!("credential {log_name:?} added");
    if sourced {
        state.kick_sources();
    }
    Ok(Response::Done)
}

/// A new credential as `add` and `import` both require it: a plain name,
/// an injection (header name, signing parameters), a spec that compiles to
/// a policy, and a value the injection can use (or, for an OpenBao source,
/// none). One function, so an import can never store what `add` would
/// refuse. Also says whether the value comes from a source.
fn checked_credential(
    state: &State,
    name: &str,
    mut spec: CredentialSpec,
    value: Secret,
) -> Result<(StoredCredential, bool), Error> {
    validate_name(name).map_err(crate::state::StateError::from)?;
    let Some(injection) = spec.injection.take() else {
        return Err(bad(
            "choose how the token is sent: --preset, --header, --bearer or --sign",
        ));
    };
    if let proto::Injection::Header { name } = &injection {
        policy::validate_header_name(name).map_err(Error::Spec)?;
    }
    spec.injection = Some(sign::normalize(injection)?);
    Policy::from_spec(&spec).map_err(Error::Spec)?;
    let value = match &spec.source {
        Some(proto::Source::OpenBao { path, field }) => {
            if !state.has_openbao() {
                return Err(bad(crate::openbao::SourceError::NotConfigured.to_string()));
            }
            check_source(path, field)?;
            if !value.is_empty() {
                return Err(bad(
                    "a credential from OpenBao has no local value: give --from-openbao alone",
                ));
            }
            Shielded::seal(b"")
                .map_err(|e| Error::from(crate::state::StateError::Internal(e.to_string())))?
        }
        None => checked_value(spec.injection.as_ref(), value)?,
    };
    let sourced = spec.source.is_some();
    let cred = StoredCredential {
        spec: normalize_spec(spec).into(),
        value,
        created: now_secs(),
        last_used: None,
        use_count: 0,
    };
    Ok((cred, sourced))
}

/// `vaultctl import`: every entry checked as `add` checks one, then one
/// save for all of them (a save per entry is what made 10,000 `add`s take
/// minutes). The first bad entry refuses the whole import, named by the
/// client's `source` label (its line), never by its value. An OpenBao
/// source is refused: binding one needs the passphrase (`AddSourced`).
async fn import(
    state: &State,
    entries: Vec<ImportEntry>,
    replace: bool,
) -> Result<Response, Error> {
    if entries.is_empty() {
        return Err(bad("nothing to import"));
    }
    let mut checked: Vec<(String, String, StoredCredential)> = Vec::with_capacity(entries.len());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    for ImportEntry {
        name,
        spec,
        value,
        source,
    } in entries
    {
        let entry = clip(&source);
        let in_entry = |e: Error| Error::Import {
            entry: entry.clone(),
            inner: Box::new(e),
        };
        if spec.source.is_some() {
            return Err(in_entry(bad(
                "a credential whose value lives in OpenBao is added with `vaultctl add --from-openbao` (it needs the passphrase), not imported",
            )));
        }
        let (cred, _) = checked_credential(state, &name, spec, value).map_err(in_entry)?;
        if let Some(&first) = seen.get(&name) {
            return Err(in_entry(bad(format!(
                "credential {name:?} is also imported by {}",
                checked[first].1
            ))));
        }
        seen.insert(name.clone(), checked.len());
        checked.push((name, entry, cred));
    }
    let count = checked.len();
    let mut replaced = 0;
    state
        .mutate(|contents, _, _| -> Result<(), Error> {
            for (name, entry, _) in &checked {
                if contents.credentials.contains_key(name) {
                    if !replace {
                        return Err(Error::Import {
                            entry: entry.clone(),
                            inner: Box::new(bad(format!(
                                "a credential named {name:?} already exists (pass --replace to replace it)"
                            ))),
                        });
                    }
                    replaced += 1;
                }
            }
            for (name, _, cred) in checked {
                contents.credentials.insert(name, cred);
            }
            Ok(())
        })
        .await?;
    if replaced > 0 {
        // Replaced values may sit in pooled connections' buffers: drop them.
        state.http.reset();
    }
    tracing::info!("{count} credentials imported in one save ({replaced} replaced)");
    Ok(Response::Done)
}

/// `add --from-openbao`: the passphrase first (on the same serialized,
/// penalized path as unlock), because the value can be fetched by its path:
/// whoever binds that path to an origin decides where the team's token
/// goes.
async fn add_sourced(
    state: &State,
    name: String,
    spec: CredentialSpec,
    passphrase: Secret,
) -> Result<Response, Error> {
    if spec.source.is_none() {
        return Err(bad("--from-openbao PATH#FIELD is missing"));
    }
    state.verify_passphrase(passphrase).await?;
    add(state, name, spec, Secret::new(Vec::new())).await
}

/// `PATH#FIELD` as OpenBao's KV v2 API takes it: a relative path of plain
/// segments (it goes into a URL), and a field name.
fn check_source(path: &str, field: &str) -> Result<(), Error> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'+');
    let path_ok = !path.is_empty()
        && path.len() <= 512
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && seg.bytes().all(plain));
    if !path_ok {
        return Err(bad(
            "--from-openbao PATH#FIELD: PATH is a KV path under the mount, e.g. team/microreact (letters, digits, - _ . @ + between slashes)",
        ));
    }
    if field.is_empty() || field.len() > 256 || field.chars().any(char::is_control) {
        return Err(bad(
            "--from-openbao PATH#FIELD: FIELD names a key of the secret, e.g. token",
        ));
    }
    Ok(())
}

/// Stores origins in their canonical spelling, so `list` shows what is enforced.
fn normalize_spec(mut spec: CredentialSpec) -> CredentialSpec {
    if let Ok(p) = Policy::from_spec(&spec) {
        spec.origins = p.origins.iter().map(|o| o.to_string()).collect();
        spec.methods = p.methods.clone();
    }
    spec
}

async fn rotate(state: &State, name: String, value: Secret) -> Result<Response, Error> {
    let log_name = name.clone();
    state
        .mutate(move |contents, _, _| -> Result<(), Error> {
            let cred = contents
                .credentials
                .get_mut(&name)
                .ok_or_else(|| Error::from(no_such(&name)))?;
            if let Some((path, field)) = cred.spec.openbao() {
                return Err(Error::from(crate::state::StateError::SourceManaged {
                    name,
                    at: format!("{path}#{field}"),
                }));
            }
            // What a valid value is depends on the credential's kind.
            let injection = cred.spec.injection.as_ref().map(proto::Injection::from);
            cred.value = checked_value(injection.as_ref(), value)?;
            Ok(())
        })
        .await?;
    // The old value may sit in pooled connections' buffers: drop them.
    state.http.reset();
    tracing::info!("credential {log_name:?} rotated");
    Ok(Response::Done)
}

async fn remove(state: &State, name: String) -> Result<Response, Error> {
    let log_name = name.clone();
    state
        .mutate(move |contents, _, _| -> Result<(), Error> {
            contents
                .credentials
                .remove(&name)
                .map(drop)
                .ok_or_else(|| Error::from(no_such(&name)))
        })
        .await?;
    state.forget_source(&log_name);
    // Its value may sit in pooled connections' buffers: drop them.
    state.http.reset();
    tracing::info!("credential {log_name:?} removed");
    Ok(Response::Done)
}

async fn backup(state: &State, peer: &Peer) -> Result<Response, Error> {
    let sealed = state.backup().await?;
    tracing::info!(
        "backup of the vault ({} bytes) sent to pid {}",
        sealed.len(),
        peer.pid_str()
    );
    Ok(Response::Backup { sealed })
}

/// A token must be a valid header value; a signing key must load as a key
/// of its algorithm (and is stored in normalized form).
fn checked_value(injection: Option<&proto::Injection>, value: Secret) -> Result<Shielded, Error> {
    let value = match injection {
        Some(proto::Injection::Sign { alg, .. }) => sign::import(*alg, value)?,
        _ => {
            policy::validate_token(value.expose()).map_err(Error::Spec)?;
            value
        }
    };
    // The plaintext `value` is zeroized as it goes out of scope here.
    Shielded::try_from(&value).map_err(|e| crate::state::StateError::Internal(e.to_string()).into())
}

/// `add --sign ed25519` without `--import`: the key is born in the daemon.
async fn add_generated(
    state: &State,
    name: String,
    spec: CredentialSpec,
) -> Result<Response, Error> {
    let Some(proto::Injection::Sign { alg, .. }) = &spec.injection else {
        return Err(bad(
            "only a signing credential (--sign) has a generated key",
        ));
    };
    let key = sign::generate(*alg)?;
    add(state, name, spec, key).await
}

/// The Ed25519 public key, to register with the upstream.
async fn public_key(state: &State, name: &str) -> Result<Response, Error> {
    state.source_ready(name).await?;
    let lease = state.lease(name)?;
    match &lease.injection {
        proto::Injection::Sign {
            alg: alg @ proto::SigAlg::Ed25519,
            keyid,
            ..
        } => Ok(Response::PublicKey(proto::PublicKeyInfo {
            alg: *alg,
            keyid: keyid.clone(),
            public_key: sign::public_key(lease.token.expose())?,
        })),
        proto::Injection::Sign { .. } => Err(bad(format!(
            "{name:?} signs with a shared hmac-sha256 secret: it has no public key"
        ))),
        _ => Err(bad(format!(
            "{name:?} is not a signing credential: it has no public key"
        ))),
    }
}

/// The verdict a job would get, without sending it or counting a use. The
/// lease's copy of the value is never read and is zeroized when dropped;
/// no other credential's value is opened.
async fn explain(state: &State, job: JobRequest) -> Result<Response, Error> {
    state.source_ready(&job.credential).await?;
    let lease = state.lease(&job.credential)?;
    let (method, url) = (job.method.clone(), job.url.clone());
    let mut e = crate::job::explain::explain(&lease.policy, &lease.injection, job)?;
    if e.refused.is_some() {
        if let Some(why) = crate::job::prepare::narrowed_out(&lease, &method, &url) {
            e.refused = Some(why.to_string());
        }
    }
    Ok(Response::Explain(e))
}
