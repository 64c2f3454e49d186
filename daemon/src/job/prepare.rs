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
use crate::state::State;
use crate::text::log_field;

/// Checks a job against its credential's policy and builds what the HTTP
/// side needs. Nothing is sent here.
pub fn prepare_job(
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
    let result = check_job(state, peer, job);
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
            tracing::warn!(
                "job refused: credential {credential:?}, pid {}: {e}",
                peer.pid_str()
            );
            return Err(e.into());
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
