//! The gateway's TCP side: listeners on 127.0.0.1 and one task per connection. Where a
//! connection goes is the gateway's decision ([`ZoneCore::gateway_route`], see
//! [`crate::gateway`]); this module connects to it and then only moves bytes: the connection
//! stays on that instance (or remote peer) until either side closes it.
//!
//! A connection for which no instance has a free slot is told `busy: …` (the workload's own
//! refusal line) and closed. A connection for a remote peer that cannot be reached is
//! closed, counted and logged.
//!
//! Design choice: one task per session opens it (routing, connect, the peer-uid check) and
//! then hands the two sockets to two blocking threads from a pool, one per direction
//! ([`threads`]): each waits in `recv(2)` and forwards with `send(2)` through a buffer it
//! owns, so a message wakes the thread that forwards it, with two system calls per hop and
//! no hand-off through the async scheduler (measured: docs/benchmarks.md, "Gateway").
//! Should no thread be available, the task relays itself: `splice(2)` through a pipe per
//! direction, or `tokio::io::copy` without pipes. See [`relay`] for why the two directions
//! end differently.

use std::net::SocketAddr;
use std::sync::Weak;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::core::ZoneCore;
use crate::gateway::{GatewayKey, Route};

mod threads;

/// How long the gateway's relay threads poll a session before they block (`threads`'
/// *Polling*); the process's setting, set once when its zone starts.
pub(crate) fn set_poll(poll: Duration) {
    threads::RELAYS.set_poll(poll);
}

/// How long a connection to an instance may take before the gateway tries another one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many instances a connection is tried on before it is refused.
const ATTEMPTS: usize = 3;
/// How long a connection to a remote peer (another zone) may take.
const REMOTE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A listener opened: its address, its accept task, and the port it should have had with why
/// it could not (taken by another process).
pub(crate) type Opened = (SocketAddr, AbortHandle, Option<(u16, String)>);

/// Opens the gateway `key` (service, component, port) on loopback: on port `want` when given
/// and free, else on an ephemeral port — then also returns `want` and why it could not be had.
pub(crate) fn listen(zone: Weak<ZoneCore>, key: GatewayKey, want: Option<u16>) -> Result<Opened, String> {
    let mut taken = None;
    let std_listener = match want.map(|p| (p, std::net::TcpListener::bind(("127.0.0.1", p)))) {
        Some((_, Ok(l))) => l,
        Some((p, Err(e))) => {
            taken = Some((p, e.to_string()));
            std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string())?
        }
        None => std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string())?,
    };
    std_listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let listener = TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let task = tokio::spawn(accept_loop(zone, key, listener));
    Ok((addr, task.abort_handle(), taken))
}

async fn accept_loop(zone: Weak<ZoneCore>, key: GatewayKey, listener: TcpListener) {
    let key = std::sync::Arc::new(key);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(proxy(zone.clone(), key.clone(), stream));
            }
            // Out of file descriptors, typically: wait instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A counted session: released when dropped, however the session ends.
struct Lease {
    zone: Weak<ZoneCore>,
    key: std::sync::Arc<GatewayKey>,
    instance: String,
    /// The instance's port the session went to (one per configuration).
    port: u16,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(z) = self.zone.upgrade() {
            z.gateway_release(&self.key.0, &self.instance, self.port);
        }
    }
}

/// Moves bytes both ways until the instance's side ends. A client that stops sending only
/// half-closes towards the instance (it may still be waiting for the answer); an instance
/// that closes (or dies) ends the session at once. `copy_bidirectional` would wait for the
/// client's side too, keeping the slot of a dead instance counted until the client noticed.
/// Returns true when the instance's side ended while the client's was still open (the
/// instance closed the session, or died).
///
/// The bytes move on two blocking threads ([`threads`]); only when no thread can be had do
/// they move in this task ([`relay_async`]).
async fn relay(client: TcpStream, backend: TcpStream) -> bool {
    let (Ok(c), Ok(b)) = (client.into_std(), backend.into_std()) else {
        // Unreachable in practice (deregistering a registered socket); the session is over.
        return false;
    };
    match threads::relay(&threads::RELAYS, c, b).await {
        Ok(instance_ended) => instance_ended,
        Err((c, b)) => {
            let back = (c.set_nonblocking(true), b.set_nonblocking(true));
            match (back, TcpStream::from_std(c), TcpStream::from_std(b)) {
                ((Ok(()), Ok(())), Ok(mut c), Ok(mut b)) => relay_async(&mut c, &mut b).await,
                _ => false,
            }
        }
    }
}

/// [`relay`] in this task: `splice(2)` through a pipe per direction (or, without pipes,
/// through user-space buffers).
async fn relay_async(client: &mut TcpStream, backend: &mut TcpStream) -> bool {
    let client_done = std::sync::atomic::AtomicBool::new(false);
    if let (Ok(up_pipe), Ok(down_pipe)) = (zero_copy::Pipe::new(), zero_copy::Pipe::new()) {
        let up = async {
            let _ = zero_copy::one_way(client, backend, &up_pipe).await;
            client_done.store(true, std::sync::atomic::Ordering::Relaxed);
            zero_copy::shutdown_write(backend);
            std::future::pending::<()>().await
        };
        let down = async {
            let _ = zero_copy::one_way(backend, client, &down_pipe).await;
            zero_copy::shutdown_write(client);
        };
        tokio::select! {
            _ = down => {}
            _ = up => {}
        }
        return !client_done.load(std::sync::atomic::Ordering::Relaxed);
    }
    relay_copying(client, backend).await
}

/// [`relay_async`] through user-space buffers.
async fn relay_copying(client: &mut TcpStream, backend: &mut TcpStream) -> bool {
    let client_done = std::sync::atomic::AtomicBool::new(false);
    let (mut cr, mut cw) = client.split();
    let (mut br, mut bw) = backend.split();
    let up = async {
        let _ = tokio::io::copy(&mut cr, &mut bw).await;
        client_done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = bw.shutdown().await;
        std::future::pending::<()>().await
    };
    let down = async {
        let _ = tokio::io::copy(&mut br, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    tokio::select! {
        _ = down => {}
        _ = up => {}
    }
    !client_done.load(std::sync::atomic::Ordering::Relaxed)
}

/// A session relayed to a remote peer: released when dropped.
struct RemoteLease {
    zone: Weak<ZoneCore>,
    key: std::sync::Arc<GatewayKey>,
}

impl Drop for RemoteLease {
    fn drop(&mut self) {
        if let Some(z) = self.zone.upgrade() {
            z.remote_release(&self.key);
        }
    }
}

async fn proxy(zone: Weak<ZoneCore>, key: std::sync::Arc<GatewayKey>, mut client: TcpStream) {
    let _ = client.set_nodelay(true);
    let mut excluded: Vec<String> = Vec::new();
    while excluded.len() < ATTEMPTS {
        let route = match zone.upgrade() {
            Some(z) => z.gateway_route(&key, &excluded),
            None => return,
        };
        let picked = match route {
            None => break,
            Some(Route::Remote(addr)) => return to_remote(zone, key, client, addr).await,
            Some(Route::Local(picked)) => picked,
        };
        let lease =
            Lease { zone: zone.clone(), key: key.clone(), instance: picked.instance.clone(), port: picked.addr.port() };
        let started = Instant::now();
        let connected = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(picked.addr)).await {
            Ok(Ok(backend)) => match picked.pid {
                Some(pid) => match accepted_by(&backend, pid).await {
                    Ok(()) => Some(backend),
                    Err(why) => {
                        tracing::warn!(instance = picked.instance, addr = %picked.addr, "gateway: not sent there: {why}");
                        None
                    }
                },
                None => Some(backend),
            },
            _ => None,
        };
        match connected {
            Some(backend) => {
                if let Some(z) = zone.upgrade() {
                    z.gateway_latency(&picked.instance, started.elapsed());
                }
                let _ = backend.set_nodelay(true);
                let instance_ended = relay(client, backend).await;
                // An instance that ended a session its client had not may have died: its
                // exit is handled while this session still counts (its sessions are lost).
                if instance_ended {
                    if let Some(z) = zone.upgrade() {
                        z.gateway_saw_instance_end(&picked.instance).await;
                    }
                }
                drop(lease);
                return;
            }
            _ => {
                if let Some(z) = zone.upgrade() {
                    z.gateway_latency(&picked.instance, CONNECT_TIMEOUT);
                }
                tracing::debug!(instance = picked.instance, addr = %picked.addr, "gateway cannot reach the instance");
                excluded.push(picked.instance.clone());
            }
        }
    }
    if let Some(z) = zone.upgrade() {
        z.gateway_rejected(&key.0);
    }
    let _ = client.write_all(b"busy: no free session slots in this zone\n").await;
    let _ = client.shutdown().await;
}

/// Checks that the connection `backend` to an instance's port was accepted by a socket of the
/// instance's uid (that of process `pid`) — or of root — and not by a process of another
/// provider that took the port over (the instance died and another bound it). The accepted
/// socket may take a moment to be listed: asked up to 10 times, 1 ms apart.
async fn accepted_by(backend: &TcpStream, pid: u32) -> Result<(), String> {
    let Some(want) = zonal_proto::peer::uid_of_pid(pid) else {
        return Err(format!("its process {pid} is gone"));
    };
    for attempt in 0..10 {
        match zonal_proto::peer::listener_uid(backend) {
            Some(uid) if uid == want || uid == 0 => return Ok(()),
            Some(uid) => return Err(format!("the port is held by uid {uid}, not the instance's uid {want}")),
            None if attempt < 9 => tokio::time::sleep(Duration::from_millis(1)).await,
            None => {}
        }
    }
    Err("the kernel does not list the socket that accepted the connection".into())
}

/// Relays `client` to the remote peer at `addr` (the session is counted already). A peer
/// that cannot be reached closes the client's connection: the caller sees the end of the
/// stream, as from a peer that went away.
async fn to_remote(zone: Weak<ZoneCore>, key: std::sync::Arc<GatewayKey>, mut client: TcpStream, addr: String) {
    let _lease = RemoteLease { zone: zone.clone(), key: key.clone() };
    let why = match tokio::time::timeout(REMOTE_CONNECT_TIMEOUT, TcpStream::connect(addr.as_str())).await {
        Ok(Ok(backend)) => {
            let _ = backend.set_nodelay(true);
            relay(client, backend).await;
            return;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no connection within {} s", REMOTE_CONNECT_TIMEOUT.as_secs()),
    };
    if let Some(z) = zone.upgrade() {
        z.remote_unreachable(&key, &addr, &why);
    }
    let _ = client.shutdown().await;
}

/// `splice(2)` between two sockets through a pipe: the kernel moves the data, user space
/// only waits for readiness.
mod zero_copy {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    use tokio::io::Interest;
    use tokio::net::TcpStream;

    /// Bytes asked for per splice: the default pipe capacity (16 pages).
    const CHUNK: usize = 1 << 16;

    /// A pipe for `splice(2)`: non-blocking for this task's relay, blocking for the relay
    /// threads ([`super::threads`]).
    pub struct Pipe {
        pub(in crate::relay) read: OwnedFd,
        pub(in crate::relay) write: OwnedFd,
    }

    impl Pipe {
        pub fn new() -> io::Result<Pipe> {
            Pipe::with_flags(libc::O_NONBLOCK)
        }

        pub(in crate::relay) fn blocking() -> io::Result<Pipe> {
            Pipe::with_flags(0)
        }

        fn with_flags(flags: libc::c_int) -> io::Result<Pipe> {
            let mut fds = [0 as libc::c_int; 2];
            // SAFETY: `fds` has room for the two descriptors pipe2 writes.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), flags | libc::O_CLOEXEC) } < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: pipe2 succeeded, so both descriptors are new and owned by nobody else.
            Ok(unsafe { Pipe { read: OwnedFd::from_raw_fd(fds[0]), write: OwnedFd::from_raw_fd(fds[1]) } })
        }
    }

    fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
        splice_with(from, to, len, libc::SPLICE_F_NONBLOCK)
    }

    /// `splice(2)` of up to `len` bytes between two descriptors, one of them a pipe, with
    /// `flags` besides `SPLICE_F_MOVE`.
    pub(in crate::relay) fn splice_with(from: RawFd, to: RawFd, len: usize, flags: libc::c_uint) -> io::Result<usize> {
        // SAFETY: a plain system call on descriptors the caller keeps open; null offsets
        // because neither end is a file.
        let n = unsafe {
            libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, libc::SPLICE_F_MOVE | flags)
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Moves everything `src` sends to `dst` until `src` ends (Ok) or either fails. The pipe
    /// is empty whenever `src` is read, so a `WouldBlock` there means the socket has nothing,
    /// and tokio's readiness is cleared correctly; likewise for `dst` while the pipe holds data.
    pub async fn one_way(src: &TcpStream, dst: &TcpStream, pipe: &Pipe) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            let n = loop {
                src.readable().await?;
                match src.try_io(Interest::READABLE, || splice(src.as_raw_fd(), pipe.write.as_raw_fd(), CHUNK)) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                return Ok(total);
            }
            let mut left = n;
            while left > 0 {
                dst.writable().await?;
                match dst.try_io(Interest::WRITABLE, || splice(pipe.read.as_raw_fd(), dst.as_raw_fd(), left)) {
                    Ok(m) => left -= m,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
            total += n as u64;
        }
    }

    /// Half-closes `s` for writing (the peer reads end-of-stream).
    pub fn shutdown_write(s: &TcpStream) {
        // SAFETY: shutdown(2) on a socket descriptor `s` keeps open; errors (already closed)
        // need no handling.
        unsafe {
            libc::shutdown(s.as_raw_fd(), libc::SHUT_WR);
        }
    }
}
