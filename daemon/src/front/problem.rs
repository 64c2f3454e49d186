//! vaultd's own answers on the HTTP front, told apart from the upstream's:
//! each carries `Tokenvault-Error: CODE` (a header an upstream cannot set:
//! the relay drops every upstream `Tokenvault-*`) and an RFC 9457
//! `application/problem+json` body. The detail is the same one line
//! `vaultctl` prints, which never carries a value.

use bytes::Bytes;
use hyper::{Response, StatusCode};
use proto::{ErrorCode, ErrorReply};

use super::body::OutBody;
use crate::error::Error;
use crate::job::error::JobError;

/// Why the front refused a request before any job was made of it.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error("only origin-form request targets (/path?query) are served: {0}")]
    Target(&'static str),
    #[error("CONNECT is not served: vaultd is not a proxy")]
    Connect,
    #[error(
        "protocol upgrades are refused: a WebSocket or h2c stream would carry bytes past the redactor"
    )]
    Upgrade,
    #[error("a request needs exactly one Host header, naming the credential")]
    Host,
    #[error("Host must be a credential name (an optional :port is ignored)")]
    HostName,
    #[error("Tokenvault-Origin must be one origin: http(s)://host[:port]")]
    Origin,
    #[error("unknown header {0}: the Tokenvault- prefix is vaultd's (only Tokenvault-Origin)")]
    UnknownTokenvaultHeader(String),
    #[error(
        "the request's length is ambiguous (Content-Length beside Transfer-Encoding, or Content-Length repeated)"
    )]
    Framing,
    #[error("vaultd serves uid {owner} only; uid {uid} is not allowed")]
    ForeignUid { uid: u32, owner: u32 },
    #[error("the upstream answered 101 Switching Protocols, which the front does not relay")]
    Switching,
}

impl FrontError {
    fn code(&self) -> ErrorCode {
        match self {
            FrontError::ForeignUid { .. } => ErrorCode::PermissionDenied,
            FrontError::Switching => ErrorCode::Upstream,
            _ => ErrorCode::BadRequest,
        }
    }
}

/// One of vaultd's own answers.
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
}

impl Problem {
    /// The status, code and title of a daemon error code: the table in
    /// docs/http-front.md, beside the exit codes they match.
    fn of(code: ErrorCode, detail: String) -> Problem {
        let (status, code, title) = match code {
            ErrorCode::Locked => (StatusCode::LOCKED, "locked", "The vault is locked"),
            ErrorCode::NoSuchCredential => (
                StatusCode::NOT_FOUND,
                "unknown-credential",
                "No credential by that name",
            ),
            ErrorCode::PolicyRefused | ErrorCode::PermissionDenied => (
                StatusCode::FORBIDDEN,
                "refused",
                "Refused by the credential's policy",
            ),
            ErrorCode::BadRequest | ErrorCode::VersionMismatch => {
                (StatusCode::BAD_REQUEST, "bad-request", "Bad request")
            }
            ErrorCode::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "A body is over max_body",
            ),
            ErrorCode::Upstream => (
                StatusCode::BAD_GATEWAY,
                "upstream-unreachable",
                "The upstream could not be reached",
            ),
            ErrorCode::SourceUnavailable => (
                StatusCode::BAD_GATEWAY,
                "source-unreachable",
                "The credential's source (OpenBao) is unreachable",
            ),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "vaultd failed",
            ),
        };
        Problem {
            status,
            code,
            title,
            detail,
        }
    }

    /// The job's time ran out: 504, not the 502 of an unreachable upstream.
    fn timeout(detail: String) -> Problem {
        Problem {
            status: StatusCode::GATEWAY_TIMEOUT,
            code: "timeout",
            title: "The request timed out",
            detail,
        }
    }

    pub fn front(e: &FrontError) -> Problem {
        let detail = match e {
            FrontError::ForeignUid { .. } => format!("refused: {e}"),
            _ => e.to_string(),
        };
        Problem::of(e.code(), detail)
    }

    /// Any layer's error, mapped as `vaultctl` maps it to an exit code.
    pub fn error(e: impl Into<Error>) -> Problem {
        let e: Error = e.into();
        if matches!(e, Error::Job(JobError::Timeout { .. })) {
            return Problem::timeout(e.to_string());
        }
        Problem::reply(e.into())
    }

    pub fn reply(r: ErrorReply) -> Problem {
        Problem::of(r.code, r.message)
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    fn json(&self) -> String {
        serde_json::json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        })
        .to_string()
    }

    pub fn response(&self) -> Response<OutBody> {
        let body = self.json();
        let mut resp = Response::new(OutBody::full(Bytes::from(body)));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/problem+json"),
        );
        h.insert(
            "tokenvault-error",
            hyper::header::HeaderValue::from_static(self.code),
        );
        resp
    }

    /// The whole answer as bytes, for a peer refused before hyper (or any
    /// read) is involved.
    pub fn raw(&self) -> Vec<u8> {
        let body = self.json();
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ntokenvault-error: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            self.code,
            body.len()
        )
        .into_bytes()
    }
}
