//! Who accepted a plain-http connection to loopback, checked after the
//! connect and before a byte of the request (and so the token) is written.
//!
//! A plain-http origin on loopback authenticates nothing: when the real
//! service is down (not started yet, restarting, crashed), whoever binds
//! its port first receives the token in cleartext. Another local user can
//! be told apart: the kernel lists every TCP socket with its owner's uid in
//! `/proc/net/tcp` and `/proc/net/tcp6`, including the server side of our
//! own connection. That entry (local address = our peer, remote address =
//! our local address) exists from the moment the kernel answers the SYN,
//! first as a request socket (`SYN_RECV`) and then as the accepted socket
//! (`ESTABLISHED`), before the server calls `accept()`; both carry the uid
//! of the listening socket that took the connection. A socket of another
//! uid cannot join the real service's port while it listens (Linux allows
//! `SO_REUSEPORT` only between sockets of one uid).
//!
//! Checking the connection itself, rather than who listens before the
//! connect, leaves no window: a squatter that listens only for the instant
//! of our connect is still the owner of the socket we are connected to, and
//! the connection is dropped unused. [`super::http`] runs [`check_connected`]
//! as a reqwest connector layer, so every new connection is checked and a
//! pooled one was checked when it was made.
//!
//! What this cannot do: tell the real service from another process of
//! the same uid. Use https for a loopback service that must be told apart
//! (SECURITY.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Times the tables are read before giving up on finding the server side
/// of a connection, and the pause between reads. Under a SYN flood the
/// kernel answers with SYN cookies and keeps no request socket, so the
/// server side appears only once our ACK has been processed, which on
/// loopback is nearly always before `connect()` returns.
const LOOKUPS: u32 = 5;
const LOOKUP_PAUSE: Duration = Duration::from_millis(2);

/// The connection is not sent on: its server side is not trusted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Untrusted {
    #[error(
        "{addr} is served by uid {uid}, not by you, root or a uid in loopback_listener_uids: plain http to loopback authenticates nothing, so the token is not sent (if that uid runs the real service, add it to loopback_listener_uids; better, give the service TLS)"
    )]
    Uid { addr: SocketAddr, uid: u32 },
    /// Fail closed: without the server side we cannot say who it is.
    #[error(
        "{addr}: the socket that took the connection is not in /proc/net/tcp{{,6}}, so who serves it cannot be told: plain http to loopback authenticates nothing, so the token is not sent"
    )]
    Unseen { addr: SocketAddr },
}

/// Whether a connection to `remote` must have its server side checked:
/// loopback, IPv4-mapped loopback (`::ffff:127.0.0.1`, which
/// `Ipv6Addr::is_loopback` does not count) included.
pub fn is_loopback(remote: IpAddr) -> bool {
    remote.to_canonical().is_loopback()
}

/// Checks the server side of our connection from `local` to `remote`: its
/// socket must belong to vaultd's own uid, root, or one in `trusted`.
pub async fn check_connected(
    local: SocketAddr,
    remote: SocketAddr,
    trusted: &[u32],
) -> Result<(), Untrusted> {
    let own = rustix::process::geteuid().as_raw();
    let remote = canonical(remote);
    for attempt in 0..LOOKUPS {
        if attempt > 0 {
            tokio::time::sleep(LOOKUP_PAUSE).await;
        }
        // Walking the kernel's tables takes milliseconds (every bucket of
        // the established hash): off the async workers.
        let found = tokio::task::spawn_blocking(move || lookup(local, remote))
            .await
            .unwrap_or(None);
        if let Some(uid) = found {
            return if uid == own || uid == 0 || trusted.contains(&uid) {
                Ok(())
            } else {
                Err(Untrusted::Uid { addr: remote, uid })
            };
        }
    }
    Err(Untrusted::Unseen { addr: remote })
}

/// The server side's uid, reading only the tables it can be in: an IPv4
/// connection is accepted by an IPv4 socket (`tcp`) or a dual-stack IPv6
/// one (`tcp6`, as `::ffff:a.b.c.d`); an IPv6 one only by an IPv6 socket.
/// A kernel without IPv6 has no tcp6.
fn lookup(local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let tables: &[&str] = if remote.ip().to_canonical().is_ipv4() {
        &["/proc/net/tcp", "/proc/net/tcp6"]
    } else {
        &["/proc/net/tcp6"]
    };
    tables.iter().find_map(|table| {
        let text = std::fs::read_to_string(table).ok()?;
        server_side(&text, local, remote)
    })
}

/// The uid of the socket whose local address is our `remote` and whose
/// remote address is our `local`, in state `ESTABLISHED` (01) or
/// `SYN_RECV` (03). Any other state (closing, `TIME_WAIT`, whose uid the
/// kernel prints as 0) is not a server about to read our request.
fn server_side(text: &str, local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let (local, remote) = (canonical(local), canonical(remote));
    parse(text).into_iter().find_map(|e| {
        (matches!(e.state, 0x01 | 0x03) && e.local == remote && e.remote == local).then_some(e.uid)
    })
}

/// An IPv4-mapped address as the IPv4 address it is: an IPv6 client
/// socket reaching an IPv4 listener shows as `::ffff:a.b.c.d` on our side
/// and as `a.b.c.d` in `/proc/net/tcp` on the server's.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// One line of `/proc/net/tcp{,6}`.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    uid: u32,
}

/// Every socket of a `/proc/net/tcp{,6}` text, addresses canonical.
fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            Some(Entry {
                local: canonical(address(f[1])?),
                remote: canonical(address(f[2])?),
                state: u8::from_str_radix(f[3], 16).ok()?,
                uid: f[7].parse().ok()?,
            })
        })
        .collect()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6). The kernel
/// prints each 32-bit word of the address as a host-order integer.
fn address(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(&ip[i * 8..i * 8 + 8])?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_the_kernels_table() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1530 1\n\
   1: 0100007F:1F90 0100007F:86DF 01 00000000:00000000 03:00000908 00000000   999        0 0 3\n\
   2: 0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000100007F:86DF 03 00000000:00000000 00:00000000 00000000   998        0 7 1\n\
   3: 00000000000000000000000001000000:0050 00000000000000000000000001000000:86E0 06 00000000:00000000 00:00000000 00000000     0        0 7 1\n";
        let entries = parse(text);
        assert_eq!(entries.len(), 4);
        assert_eq!(
            entries[0],
            Entry {
                local: "127.0.0.1:8080".parse().unwrap(),
                remote: "0.0.0.0:0".parse().unwrap(),
                state: 0x0A,
                uid: 1000
            }
        );
        let ours = |l: &str, r: &str| (l.parse().unwrap(), r.parse().unwrap());
        // The accepted socket of a connection from 127.0.0.1:34527.
        let (l, r) = ours("127.0.0.1:34527", "127.0.0.1:8080");
        assert_eq!(server_side(text, l, r), Some(999));
        // IPv4-mapped on either side matches the plain IPv4 form.
        let (l, r) = ours("[::ffff:127.0.0.1]:34527", "127.0.0.1:80");
        assert_eq!(server_side(text, l, r), Some(998));
        // The listener itself and a TIME_WAIT entry (uid shown as 0) are
        // not the server side of a live connection.
        let (l, r) = ours("[::1]:34528", "[::1]:80");
        assert_eq!(server_side(text, l, r), None);
        let (l, r) = ours("0.0.0.0:0", "127.0.0.1:8080");
        assert_eq!(server_side(text, l, r), None);
    }

    #[test]
    fn mapped_loopback_is_loopback() {
        for (ip, yes) in [
            ("127.0.0.1", true),
            ("127.9.8.7", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:10.0.0.1", false),
            ("10.0.0.1", false),
            ("::", false),
        ] {
            assert_eq!(is_loopback(ip.parse().unwrap()), yes, "{ip}");
        }
    }

    /// The server side is listed, with the listener's uid, as soon as
    /// `connect()` returns and before anyone calls `accept()`.
    #[tokio::test]
    async fn the_server_side_is_listed_before_accept() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(l) = std::net::TcpListener::bind(bind) else {
                continue; // no IPv6 loopback here
            };
            for _ in 0..50 {
                let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
                let (local, remote) = (c.local_addr().unwrap(), c.peer_addr().unwrap());
                let own = rustix::process::geteuid().as_raw();
                assert_eq!(
                    lookup(local, remote),
                    Some(own),
                    "{bind}: first read, before accept"
                );
                assert!(check_connected(local, remote, &[]).await.is_ok());
            }
        }
    }

    #[tokio::test]
    async fn an_unseen_server_side_is_refused() {
        // A connection that does not exist: nothing to attribute.
        let local: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let remote: SocketAddr = "127.0.0.1:2".parse().unwrap();
        assert!(matches!(
            check_connected(local, remote, &[]).await,
            Err(Untrusted::Unseen { .. })
        ));
    }
}
