//! The client side of a scan session (`vaultctl scan`): files go to vaultd
//! in chunks, findings come back. The buffers that held file contents are
//! wiped as soon as they are sent, so no copy of a stored value found in a
//! file outlives its chunk in this process.

use std::io::{self, Read};

use proto::frame::{FrameError, read_frame, write_frame};
use proto::{ErrorReply, Request, Response, ScanReport};
use zeroize::{Zeroize, Zeroizing};

use crate::{Client, ClientError};

/// How one file went.
#[derive(Debug)]
pub enum FileOutcome {
    /// Scanned: where stored values occur, and how many bytes were sent.
    Scanned { report: ScanReport, bytes: u64 },
    /// vaultd would not scan this file (e.g. over its `max_body`); the
    /// session goes on.
    Refused(ErrorReply),
    /// The file could not be read to its end; nothing of it is reported.
    Unreadable { error: io::Error, bytes: u64 },
    /// The file held more than the byte cap: it was cut there and nothing
    /// of it is reported.
    Oversize { bytes: u64 },
}

/// An open scan session: vaultd holds its matcher until [`ScanSession::end`]
/// (or the connection closes).
pub struct ScanSession<'a> {
    client: &'a mut Client,
    next_id: u64,
}

impl Client {
    /// Opens a scan session. Fails as a request does: locked (exit 3), not
    /// the owner, daemon gone.
    pub fn scan_session(&mut self) -> Result<ScanSession<'_>, ClientError> {
        match self.call(&Request::Scan)? {
            Response::Done => Ok(ScanSession {
                client: self,
                next_id: 0,
            }),
            _ => Err(ClientError::Closed),
        }
    }
}

impl ScanSession<'_> {
    /// Sends `head` (bytes already read from the file, e.g. to look for
    /// NULs) and then the rest of `reader`, at most `max` bytes in all, and
    /// waits for the findings.
    pub fn file(
        &mut self,
        head: &[u8],
        reader: &mut dyn Read,
        max: u64,
    ) -> Result<FileOutcome, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let stream = &mut self.client.stream;
        write_frame(stream, &Request::ScanFile { id })?;
        let mut sent = 0u64;
        let mut failure: Option<FileOutcome> = None;
        send_chunk(stream, head)?;
        sent += head.len() as u64;
        let mut buf = Zeroizing::new(vec![0u8; proto::CHUNK]);
        loop {
            let n = match reader.read(&mut buf[..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    failure = Some(FileOutcome::Unreadable { error, bytes: sent });
                    break;
                }
            };
            if sent + n as u64 > max {
                failure = Some(FileOutcome::Oversize { bytes: sent });
                break;
            }
            send_chunk(stream, &buf[..n])?;
            sent += n as u64;
        }
        buf.zeroize();
        write_frame(stream, &Request::End)?;
        let answer = match read_frame(stream)? {
            Some(Response::ScanFindings(report)) if report.id == id => FileOutcome::Scanned {
                report,
                bytes: sent,
            },
            Some(Response::Error(e)) => {
                // Only "too large" leaves the session in step; anything
                // else (locked meanwhile, timeout) ends it.
                if e.code == proto::ErrorCode::TooLarge {
                    FileOutcome::Refused(e)
                } else {
                    return Err(ClientError::Daemon(e));
                }
            }
            Some(_) | None => return Err(ClientError::Closed),
        };
        Ok(failure.unwrap_or(answer))
    }

    /// Ends the session: vaultd drops its matcher.
    pub fn end(self) -> Result<(), ClientError> {
        write_frame(&mut self.client.stream, &Request::End)?;
        match read_frame(&mut self.client.stream)? {
            Some(Response::Done) => Ok(()),
            Some(Response::Error(e)) => Err(ClientError::Daemon(e)),
            _ => Err(ClientError::Closed),
        }
    }
}

/// One chunk of a file; the copy the message owns is wiped once it is
/// written (the frame itself is built in a zeroizing buffer by `proto`).
fn send_chunk(stream: &mut std::os::unix::net::UnixStream, data: &[u8]) -> Result<(), FrameError> {
    if data.is_empty() {
        return Ok(());
    }
    let req = Request::Chunk(data.to_vec());
    let sent = write_frame(stream, &req);
    if let Request::Chunk(mut v) = req {
        v.zeroize();
    }
    sent
}
