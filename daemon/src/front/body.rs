//! The front's response bodies.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::mpsc;

/// The front's response body: a problem's whole JSON, or the redacted
/// download fed from the relay task. That one ends only with an explicit
/// [`OutBody::END`]: a relay that stops without it (lock, deadline, a
/// panic) is an error, which makes hyper cut the connection, so a body cut
/// short never looks complete.
pub struct OutBody(Out);

enum Out {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Result<Bytes, std::io::Error>>),
}

impl OutBody {
    pub const END: Bytes = Bytes::new();

    pub fn full(b: Bytes) -> OutBody {
        OutBody(Out::Full(Some(b)))
    }

    pub fn channel(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>) -> OutBody {
        OutBody(Out::Channel(rx))
    }
}

impl hyper::body::Body for OutBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match &mut self.0 {
            Out::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Out::Channel(rx) => rx.poll_recv(cx).map(|item| match item {
                Some(Ok(b)) if b.is_empty() => None,
                Some(r) => Some(r.map(Frame::data)),
                None => Some(Err(std::io::Error::other("the response was cut short"))),
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.0, Out::Full(None))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match &self.0 {
            Out::Full(Some(b)) => hyper::body::SizeHint::with_exact(b.len() as u64),
            Out::Full(None) => hyper::body::SizeHint::with_exact(0),
            Out::Channel(_) => hyper::body::SizeHint::default(),
        }
    }
}
