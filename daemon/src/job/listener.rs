//! Who listens on a plain-http loopback port, checked before a token is
//! sent there.
//!
//! A plain-http origin on loopback authenticates nothing: when the real
//! service is down (not started yet, restarting, crashed), whoever binds
//! its port first receives the token in cleartext. Another local user can
//! be told apart: the kernel lists every listening socket with its owner's
//! uid in `/proc/net/tcp` and `/proc/net/tcp6`, and a socket of another
//! uid cannot join the real service's port while it listens (Linux allows
//! `SO_REUSEPORT` only between sockets of one uid). So before each send,
//! every socket listening where the connection may land must belong to
//! vaultd's own uid, root, or a uid in `loopback_listener_uids`.
//!
//! What this cannot do: tell the real service from another process of
//! the same uid, or close the moment between the check and the connect.
//! Use https for a loopback service that must be told apart (SECURITY.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A listener that is not trusted to receive a token.
#[derive(Debug, thiserror::Error)]
#[error(
    "{addr} is served by uid {uid}, not by you, root or a uid in loopback_listener_uids: plain http to loopback authenticates nothing, so the token is not sent (if that uid runs the real service, add it to loopback_listener_uids; better, give the service TLS)"
)]
pub struct Untrusted {
    pub addr: SocketAddr,
    pub uid: u32,
}

/// One LISTEN line of `/proc/net/tcp{,6}`.
#[derive(Debug, PartialEq, Eq)]
struct Listening {
    addr: SocketAddr,
    uid: u32,
}

/// Checks every socket listening where a connection to `target` may land.
/// `trusted` holds the uids besides vaultd's own and root. Nothing
/// listening is fine: the connection will then fail.
pub fn check(target: SocketAddr, trusted: &[u32]) -> Result<(), Untrusted> {
    let own = rustix::process::geteuid().as_raw();
    let mut lines = String::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // A kernel without IPv6 has no tcp6: nothing listens there.
        if let Ok(t) = std::fs::read_to_string(table) {
            lines.push_str(&t);
        }
    }
    for l in parse(&lines) {
        let trusted_uid = l.uid == own || l.uid == 0 || trusted.contains(&l.uid);
        if !trusted_uid && accepts(l.addr, target) {
            return Err(Untrusted {
                addr: target,
                uid: l.uid,
            });
        }
    }
    Ok(())
}

/// Whether a socket listening on `on` may accept a connection to `target`:
/// same port, and the same address, a wildcard, or (for an IPv6 socket)
/// the IPv4-mapped form or the IPv6 wildcard, which also takes IPv4 unless
/// the socket is v6-only (not shown in the table, so assumed).
fn accepts(on: SocketAddr, target: SocketAddr) -> bool {
    if on.port() != target.port() {
        return false;
    }
    match (on.ip(), target.ip()) {
        (IpAddr::V4(a), IpAddr::V4(t)) => a == t || a.is_unspecified(),
        (IpAddr::V6(a), IpAddr::V4(t)) => a.is_unspecified() || a.to_ipv4_mapped() == Some(t),
        (IpAddr::V6(a), IpAddr::V6(t)) => a == t || a.is_unspecified(),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

/// The LISTEN sockets of a `/proc/net/tcp{,6}` text (state `0A`).
fn parse(text: &str) -> Vec<Listening> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 || f[3] != "0A" {
                return None;
            }
            let addr = address(f[1])?;
            let uid = f[7].parse().ok()?;
            Some(Listening { addr, uid })
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
   1: 0100007F:8A40 0100007F:86DF 06 00000000:00000000 03:00000908 00000000     0        0 0 3\n\
   2: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 7 1\n";
        assert_eq!(
            parse(text),
            [
                Listening {
                    addr: "127.0.0.1:8080".parse().unwrap(),
                    uid: 1000
                },
                Listening {
                    addr: "[::1]:80".parse().unwrap(),
                    uid: 999
                },
            ]
        );
    }

    #[test]
    fn which_listeners_take_a_connection() {
        let t4: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let t6: SocketAddr = "[::1]:8080".parse().unwrap();
        for (on, target, yes) in [
            ("127.0.0.1:8080", t4, true),
            ("0.0.0.0:8080", t4, true),
            ("[::]:8080", t4, true),
            ("[::ffff:127.0.0.1]:8080", t4, true),
            ("127.0.0.2:8080", t4, false),
            ("127.0.0.1:8081", t4, false),
            ("[::1]:8080", t4, false),
            ("[::1]:8080", t6, true),
            ("[::]:8080", t6, true),
            ("0.0.0.0:8080", t6, false),
        ] {
            assert_eq!(
                accepts(on.parse().unwrap(), target),
                yes,
                "{on} -> {target}"
            );
        }
    }

    #[test]
    fn this_process_listening_is_trusted() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(check(l.local_addr().unwrap(), &[]).is_ok());
    }
}
