//! The client side of a scan session (`vaultctl scan`): files go to vaultd
//! in chunks, findings come back. The buffers that held file contents are
//! wiped as soon as they are sent, so no copy of a stored value found in a
//! file outlives its chunk in this process.

use std::io::{self, Read};

use proto::frame::{FrameError, read_frame, write_frame, write_frame_with};
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
        let sent = send_file(stream, id, head, reader, max);
        let (sent, failure) = match sent {
            Ok(v) => v,
            // vaultd may have ended the session (a lock) and closed: its
            // last word says why better than the broken pipe.
            Err(e) => {
                return Err(match read_frame::<_, Response>(stream) {
                    Ok(Some(Response::Error(reply))) => ClientError::Daemon(reply),
                    _ => e.into(),
                });
            }
        };
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

/// `ScanFile`, the chunks and `End`: how many bytes went, and why the file
/// is not to be reported when it is not (unreadable, over `max`).
fn send_file(
    stream: &mut std::os::unix::net::UnixStream,
    id: u64,
    head: &[u8],
    reader: &mut dyn Read,
    max: u64,
) -> Result<(u64, Option<FileOutcome>), FrameError> {
    write_frame(stream, &Request::ScanFile { id })?;
    let mut sender = Chunks::new();
    let mut failure: Option<FileOutcome> = None;
    let mut sent = sender.send(stream, |buf| {
        let n = head.len().min(buf.len());
        buf[..n].copy_from_slice(&head[..n]);
        Ok(n)
    })? as u64;
    loop {
        let step = sender.send(stream, |buf| {
            loop {
                match reader.read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => return other,
                }
            }
        });
        match step {
            Ok(0) => break,
            Ok(n) if sent + n as u64 > max => {
                failure = Some(FileOutcome::Oversize { bytes: sent });
                break;
            }
            Ok(n) => sent += n as u64,
            Err(FrameError::Io(error)) if sender.read_failed => {
                failure = Some(FileOutcome::Unreadable { error, bytes: sent });
                break;
            }
            Err(e) => return Err(e),
        }
    }
    drop(sender);
    write_frame(stream, &Request::End)?;
    Ok((sent, failure))
}

/// The chunks of one file: one `Request::Chunk` whose buffer the file is
/// read into, and one frame buffer, both reused for every chunk (no fresh
/// allocation, page faults and copy per chunk) and wiped when dropped.
struct Chunks {
    req: Request,
    frame: Zeroizing<Vec<u8>>,
    /// Whether the last error came from reading the file, not the socket.
    read_failed: bool,
}

impl Chunks {
    fn new() -> Chunks {
        Chunks {
            req: Request::Chunk(Vec::with_capacity(proto::CHUNK)),
            frame: Zeroizing::new(Vec::new()),
            read_failed: false,
        }
    }

    /// Fills the chunk with `fill` (given a buffer of `proto::CHUNK`
    /// bytes, it returns how many it wrote) and sends it unless empty.
    fn send(
        &mut self,
        stream: &mut std::os::unix::net::UnixStream,
        fill: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> Result<usize, FrameError> {
        let Request::Chunk(buf) = &mut self.req else {
            return Err(FrameError::Truncated);
        };
        buf.resize(proto::CHUNK, 0);
        let n = match fill(&mut buf[..]) {
            Ok(n) => n,
            Err(e) => {
                self.read_failed = true;
                return Err(FrameError::Io(e));
            }
        };
        buf.truncate(n);
        if n > 0 {
            write_frame_with(stream, &self.req, &mut self.frame)?;
        }
        Ok(n)
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        if let Request::Chunk(buf) = &mut self.req {
            buf.zeroize();
        }
    }
}
