//! Who is on the other end of a loopback TCP connection: the uid owning the connecting
//! socket.
//!
//! `SO_PEERCRED` exists for Unix sockets only; for TCP over 127.0.0.1 both ends are sockets
//! of this network namespace, so the kernel knows the connecting socket and its owner's uid.
//! It is asked for that one socket (local address the peer's, remote address ours) through
//! `NETLINK_SOCK_DIAG` (what `ss` uses; an exact lookup, a few microseconds, no privilege
//! needed); when netlink is unavailable, the socket tables `/proc/net/tcp{,6}` are read
//! instead (milliseconds on a busy machine: the kernel walks every socket).
//!
//! A zone runs every instance of one provider under that provider's uid, and its gateway (and
//! relay) in the zone manager's process (root, when it switches uids at all). So a session
//! that reaches an instance's data port legitimately comes from the zone's uid or from this
//! provider's own uid (its composite's peers); anything else came around the gateway — another
//! provider's instance — and [`allowed`] refuses it (`zonal workload`). The other way round,
//! the zone's gateway asks who accepted its connection to an instance ([`listener_uid`]): a
//! port that another provider's process took over is not that instance.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The uid owning the socket at `peer` that is connected to `local`; `None` when no such
/// connection is listed (it closed meanwhile, or the tables cannot be read).
pub fn peer_uid(local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    match diag::uid_of(peer, local) {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!("sock_diag lookup failed ({e}); reading /proc/net/tcp");
            proc_peer_uid(local, peer)
        }
    }
}

/// [`peer_uid`] from the text tables `/proc/net/tcp` and `/proc/net/tcp6`.
fn proc_peer_uid(local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|table| {
        let text = std::fs::read_to_string(table).ok()?;
        find_uid(&text, local, peer)
    })
}

/// Looks up, in the text of a socket table, the uid of the socket whose local address is
/// `peer` and whose remote address is `local`.
fn find_uid(text: &str, local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            return None;
        }
        let (own, remote) = (parse_addr(f[1])?, parse_addr(f[2])?);
        (same(own, peer) && same(remote, local)).then(|| f[7].parse().ok()).flatten()
    })
}

/// Equal, an IPv4-mapped IPv6 address counting as its IPv4 address.
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    a.port() == b.port() && canon(a.ip()) == canon(b.ip())
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:` port (IPv6): each 32-bit word is printed in
/// the host's byte order, the port as a number.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word =
        |i: usize| addr.get(i * 8..i * 8 + 8).and_then(|w| u32::from_str_radix(w, 16).ok()).map(u32::to_ne_bytes);
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// May a connection from `peer` to `local` be served by an instance running as `own_uid`?
/// Yes when the connecting socket belongs to root (the zone manager: gateway, relay) or to
/// `own_uid` (the provider's own instances); `Err` names who it was otherwise.
pub fn allowed(local: SocketAddr, peer: SocketAddr, own_uid: u32) -> Result<(), String> {
    match peer_uid(local, peer) {
        Some(0) => Ok(()),
        Some(uid) if uid == own_uid => Ok(()),
        Some(uid) => Err(format!(
            "a connection from {peer} by uid {uid}, neither the zone's (0) nor this instance's ({own_uid})"
        )),
        None => Err(format!("a connection from {peer} whose socket the kernel does not list (closed already?)")),
    }
}

/// The `NETLINK_SOCK_DIAG` exact lookup of one TCP socket (linux/inet_diag.h).
#[cfg(target_os = "linux")]
mod diag {
    use std::net::{IpAddr, SocketAddr};

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLMSG_ERROR: u16 = 2;
    const NLM_F_REQUEST: u16 = 1;
    /// `INET_DIAG_NOCOOKIE`: match any socket cookie.
    const NO_COOKIE: u32 = !0;

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct SockId {
        sport: u16,
        dport: u16,
        src: [u32; 4],
        dst: [u32; 4],
        interface: u32,
        cookie: [u32; 2],
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Request {
        // struct nlmsghdr
        len: u32,
        kind: u16,
        flags: u16,
        seq: u32,
        pid: u32,
        // struct inet_diag_req_v2
        family: u8,
        protocol: u8,
        ext: u8,
        pad: u8,
        states: u32,
        id: SockId,
    }

    /// Offset of `idiag_uid` in a reply: the 16-byte header, then `inet_diag_msg` (4 bytes,
    /// the 48-byte socket id, expires, rqueue, wqueue).
    const UID_AT: usize = 16 + 4 + 48 + 12;

    /// The uid owning the TCP socket whose local address is `own` and remote address
    /// `remote`: `Ok(None)` when the kernel lists no such socket; `Err` when it cannot be
    /// asked.
    pub fn uid_of(own: SocketAddr, remote: SocketAddr) -> Result<Option<u32>, String> {
        let v4 = |a: SocketAddr| match a.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(ip) => ip.to_ipv4_mapped(),
        };
        let (Some(src), Some(dst)) = (v4(own), v4(remote)) else {
            return Err("not an IPv4 connection".into());
        };
        let mut req = Request {
            len: std::mem::size_of::<Request>() as u32,
            kind: SOCK_DIAG_BY_FAMILY,
            flags: NLM_F_REQUEST,
            seq: 1,
            family: libc::AF_INET as u8,
            protocol: libc::IPPROTO_TCP as u8,
            states: !0,
            ..Default::default()
        };
        req.id.sport = own.port().to_be();
        req.id.dport = remote.port().to_be();
        req.id.src[0] = u32::from_ne_bytes(src.octets());
        req.id.dst[0] = u32::from_ne_bytes(dst.octets());
        req.id.cookie = [NO_COOKIE, NO_COOKIE];
        // SAFETY: plain socket calls on a descriptor owned here (closed by `Fd`), with
        // pointers to live, correctly sized local buffers.
        unsafe {
            let fd = libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::NETLINK_SOCK_DIAG);
            if fd < 0 {
                return Err(format!("socket(NETLINK_SOCK_DIAG): {}", std::io::Error::last_os_error()));
            }
            let fd = Fd(fd);
            let timeout = libc::timeval { tv_sec: 1, tv_usec: 0 };
            libc::setsockopt(
                fd.0,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
            let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
            kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            let sent = libc::sendto(
                fd.0,
                (&req as *const Request).cast(),
                std::mem::size_of::<Request>(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            );
            if sent < 0 {
                return Err(format!("send to NETLINK_SOCK_DIAG: {}", std::io::Error::last_os_error()));
            }
            let mut buf = [0u8; 1024];
            let got = libc::recv(fd.0, buf.as_mut_ptr().cast(), buf.len(), 0);
            if got < 0 {
                return Err(format!("receive from NETLINK_SOCK_DIAG: {}", std::io::Error::last_os_error()));
            }
            parse_reply(&buf[..got as usize])
        }
    }

    /// The uid of a `SOCK_DIAG_BY_FAMILY` reply; `None` for an error reply (no such socket).
    fn parse_reply(reply: &[u8]) -> Result<Option<u32>, String> {
        let u16_at = |i: usize| reply.get(i..i + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
        let u32_at = |i: usize| reply.get(i..i + 4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        match u16_at(4) {
            Some(NLMSG_ERROR) => Ok(None),
            Some(SOCK_DIAG_BY_FAMILY) => u32_at(UID_AT).map(Some).ok_or_else(|| "a short sock_diag reply".into()),
            other => Err(format!("an unexpected sock_diag reply (type {other:?})")),
        }
    }

    struct Fd(libc::c_int);

    impl Drop for Fd {
        fn drop(&mut self) {
            // SAFETY: the descriptor is owned by this value and closed once.
            unsafe {
                libc::close(self.0);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod diag {
    pub fn uid_of(_: std::net::SocketAddr, _: std::net::SocketAddr) -> Result<Option<u32>, String> {
        Err("sock_diag is Linux's".into())
    }
}

/// The uid owning the accepting end of `stream`, a connection this process made to a local
/// port (the accepted socket takes the uid of the listening one): `None` when the kernel
/// does not list it.
pub fn listener_uid(stream: &tokio::net::TcpStream) -> Option<u32> {
    let (ours, theirs) = (stream.local_addr().ok()?, stream.peer_addr().ok()?);
    // The remote end of our connection is a socket whose local address is `theirs`.
    peer_uid(ours, theirs)
}

/// The real uid of process `pid` (`/proc/<pid>/status`); `None` when it is gone.
pub fn uid_of_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The effective uid of this process.
pub fn own_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_the_uid_of_the_accepting_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let stream = tokio::net::TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
        let _accepted = listener.accept().await.expect("accept");
        assert_eq!(listener_uid(&stream), Some(own_uid()));
        assert_eq!(uid_of_pid(std::process::id()), Some(own_uid()));
        assert_eq!(uid_of_pid(u32::MAX), None, "no such process");
    }

    #[test]
    fn parses_both_tables() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:A000 0100007F:1F90 01 00000000:00000000 00:00000000 00000000   1234        0 1 1 0\n";
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let peer: SocketAddr = "127.0.0.1:40960".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(find_uid(v4, local, peer), Some(1234));
            assert_eq!(find_uid(v4, peer, local), None, "direction matters");
            let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0000000000000000FFFF00000100007F:A000 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  5678        0 1 1 0\n";
            assert_eq!(find_uid(v6, local, peer), Some(5678), "an IPv4-mapped peer");
        }
        assert_eq!(find_uid("header\n garbage\n", local, peer), None);
    }

    #[test]
    fn finds_the_uid_of_a_real_loopback_peer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let local = listener.local_addr().expect("addr");
        let client = std::net::TcpStream::connect(local).expect("connect");
        let (_server, peer) = listener.accept().expect("accept");
        assert_eq!(peer, client.local_addr().expect("client addr"));
        assert_eq!(peer_uid(local, peer), Some(own_uid()));
        assert_eq!(diag::uid_of(peer, local), Ok(Some(own_uid())), "through sock_diag");
        assert_eq!(proc_peer_uid(local, peer), Some(own_uid()), "through /proc/net/tcp");
        assert_eq!(diag::uid_of(local, peer), Ok(Some(own_uid())), "the accepted end is ours too");
        assert!(allowed(local, peer, own_uid()).is_ok());
        // A made-up peer is not listed: refused, saying so.
        let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(allowed(local, nobody, own_uid()).unwrap_err().contains("does not list"));
        // The cost of a lookup with this test's sockets open (reported, not asserted).
        let time = |f: &dyn Fn()| {
            let started = std::time::Instant::now();
            for _ in 0..100 {
                f();
            }
            started.elapsed() / 100
        };
        let by_diag = time(&|| assert!(diag::uid_of(peer, local).is_ok()));
        let by_proc = time(&|| assert!(proc_peer_uid(local, peer).is_some()));
        let by_pid = time(&|| assert_eq!(uid_of_pid(std::process::id()), Some(own_uid())));
        let sockets = std::fs::read_to_string("/proc/net/tcp").map(|t| t.lines().count() - 1).unwrap_or(0);
        eprintln!(
            "peer uid lookup: sock_diag {by_diag:?}, /proc/net/tcp {by_proc:?} ({sockets} sockets listed); uid of a pid {by_pid:?}"
        );
    }
}
