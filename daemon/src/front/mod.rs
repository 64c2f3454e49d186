//! The HTTP front: HTTP/1.1 on a second Unix socket, so a script in any
//! language uses a credential by pointing its own HTTP library at
//! `http://NAME/...` over that socket. It is another way into the same job
//! path as `vaultctl request` (`job::prepare`, `job::http`, the streamed
//! upload and the redacted download of `job::stream`), never a second one:
//! what is added here is only HTTP in and out.
//!
//! - `accept`: the listener, the peer check before a byte is read, the
//!   connection cap and hyper's limits;
//! - `framing`: the request shapes hyper reads one way and another reader
//!   could read another, caught on the way in;
//! - `request`: from an HTTP request to a `JobRequest` (`Host` names the
//!   credential; what is refused before any job exists);
//! - `problem`: vaultd's own answers (`Tokenvault-Error`, RFC 9457);
//! - `relay`: the job itself and the response back, redacted.

mod accept;
mod body;
mod framing;
mod problem;
mod relay;
mod request;

pub use accept::serve;
