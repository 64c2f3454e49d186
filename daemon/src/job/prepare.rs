//! From a job request to a job ready to send: the credential's lease, the
//! policy checks, and the audit line of a refusal. Nothing is sent here.

use std::time::Duration;

use bytes::Bytes;
use proto::JobRequest;
use reqwest::Method;

use super::audit::Audit;
use super::error::JobError;
use super::http::Prepared;
use super::policy::Policy;
use crate::error::Error;
use crate::peer::Peer;
use crate::state::{Lease, State, StateError};
use crate::text::log_field;

/// Checks a job against its credential's policy and builds what the HTTP
/// side needs. Nothing is sent here.
pub async fn prepare_job(
    state: &State,
    peer: &Peer,
    job: JobRequest,
) -> Result<(Prepared, Audit), Error> {
    // A refused job gets its audit line here; the caller logs the outcome
    // of one that goes ahead.
    let unchecked = state
        .config
        .audit
        .then(|| Audit::unchecked(&job.credential, &job.method, &job.url));
    // An OpenBao-sourced value not read yet is read now (bounded).
    let result = match state.source_ready(&job.credential).await {
        Ok(()) => {
            state.neighbours_ready(&job.credential).await;
            check_job(state, peer, job)
        }
        Err(e) => Err(e.into()),
    };
    if let (Err(e), Some(audit)) = (&result, unchecked) {
        audit.log_refused(state, peer, e.code());
    }
    result
}

fn check_job(state: &State, peer: &Peer, job: JobRequest) -> Result<(Prepared, Audit), Error> {
    let JobRequest {
        credential,
        method,
        url,
        headers,
        body,
        follow_redirects,
        timeout_ms,
    } = job;
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| JobError::BadMethod { method })?;
    if body
        .as_ref()
        .is_some_and(|b| b.len() > state.http.max_body())
    {
        return Err(JobError::TooLarge {
            which: "request",
            max: state.http.max_body(),
        }
        .into());
    }
    let lease = state.lease(&credential)?;
    Policy::check_headers(&lease.injection, &headers)?;
    lease.policy.check_method_overrides(&headers)?;
    let (url, origin) = match lease.policy.check(method.as_str(), &url) {
        Ok(v) => v,
        Err(e) => {
            let e = match narrowed_out(&lease, method.as_str(), &url) {
                Some(why) => Error::from(why),
                None => e.into(),
            };
            tracing::warn!(
                "job refused: credential {credential:?}, pid {}: {e}",
                peer.pid_str()
            );
            return Err(e);
        }
    };
    let neighbours = state.neighbours(&credential)?;
    state.record_use(&credential);
    let audit = Audit {
        path: log_field(url.path()),
        method: log_field(method.as_str()),
        origin: log_field(&origin.to_string()),
        credential: log_field(&credential),
    };
    let prepared = Prepared {
        url,
        origin,
        method,
        headers,
        body: body.map(Bytes::from),
        follow_redirects,
        timeout: timeout_ms.map(Duration::from_millis),
        policy: lease.policy,
        injection: lease.injection,
        token: lease.token,
        neighbours,
        client: lease.client,
        epoch: lease.epoch,
        redactor_key: (credential.clone(), lease.generation),
    };
    Ok((prepared, audit))
}

/// When OpenBao's `tokenvault_origins` narrowed a credential and the job's
/// origin is one the credential itself allows, the refusal says so (the
/// narrowed policy alone would only say "not among the origins").
pub fn narrowed_out(lease: &Lease, method: &str, url: &str) -> Option<StateError> {
    let n = lease.narrowing.as_ref()?;
    let (_, origin) = n.local.check(method, url).ok()?;
    Some(StateError::NarrowedOut {
        origin: origin.to_string(),
        at: n.at.clone(),
        effective: n.effective.clone(),
    })
}
