//! Request jobs: policy check, credential injection, the HTTP exchange and
//! redaction of the response.

pub mod audit;
pub mod epoch;
pub mod error;
pub mod explain;
pub mod http;
pub mod listener;
pub mod listener_layer;
pub mod policy;
pub mod prepare;
pub mod redact;
pub mod sign;
pub mod stream;
pub mod unescape;
