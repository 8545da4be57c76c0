//! Established sessions relayed by blocking threads: one per direction, each blocked in
//! `recv(2)` on its source socket, so a message wakes the thread that forwards it directly
//! (no readiness queue, no scheduler hand-off between the wake-up and the `send(2)`), and a
//! message costs two system calls per hop: the `recv` that returns it and the `send`.
//!
//! Threads come from a pool ([`Pool`]): a thread whose session ended waits
//! [`IDLE_FOR`] for the next one before it exits, so opening a session does not start a
//! thread while sessions come and go. Each thread owns one buffer of [`BUF`] bytes for its
//! whole life: no allocation per read, nor per session once the pool is warm. The number of
//! threads is bounded by the open sessions (two each), which the gateway's session slots
//! bound.
//!
//! **Polling** (`zonal zone --gateway-poll`, [`Relays::set_poll`]): before a thread blocks in
//! `recv`, it tries again without blocking, yielding its core between tries, for up to the
//! poll time since its last message. On a request/response session the next message usually
//! comes within that time, so the thread takes it without sleeping and the core does not
//! halt between the messages: on a VM a halted vCPU's wake-up is most of what a hop costs
//! (docs/benchmarks.md). The price is CPU: up to the poll time per message and direction,
//! taken from whatever else could run on the core only when nothing else wants it (the
//! yield). A session silent for longer than the poll time costs nothing more.
//!
//! How a session ends is [`relay`]'s: the client's end of stream (or an error on that
//! direction) only half-closes towards the instance; the instance's end of stream (or an
//! error) half-closes towards the client and ends the session at once, waking the other
//! direction by `shutdown(2)`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bytes read at once: a thread's buffer (one per thread, allocated when it starts).
pub(crate) const BUF: usize = 64 * 1024;
/// A read of at least this many bytes switches its direction to `splice(2)`: copying a
/// few pages twice costs more than moving page references.
pub(crate) const SPLICE_FROM: usize = 16 * 1024;
/// How long an idle relay thread waits for another session before it exits.
pub(crate) const IDLE_FOR: Duration = Duration::from_secs(30);
/// Stack of a relay thread: it only runs [`one_way`] (the buffer is on the heap).
const STACK: usize = 128 * 1024;

/// What a relay thread runs: given its buffer and pipe.
pub(crate) type Job = Box<dyn FnOnce(&mut Scratch) + Send + 'static>;

/// A relay thread's own buffer and pipe, kept from one session to the next.
pub(crate) struct Scratch {
    pub(crate) buf: Vec<u8>,
    /// Empty between sessions; `None` when none could be made, or after a session that
    /// may have left bytes in it.
    pipe: Option<Pipe>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch { buf: vec![0u8; BUF], pipe: Pipe::blocking().ok() }
    }
}

/// A blocking pipe for `splice(2)`.
pub(crate) use super::zero_copy::Pipe;

/// Blocking `splice(2)`.
fn splice(from: std::os::fd::RawFd, to: std::os::fd::RawFd, len: usize) -> io::Result<usize> {
    super::zero_copy::splice_with(from, to, len, 0)
}

/// [`one_way`] by `splice(2)` through `pipe` (blocking): the bytes stay in the kernel. The
/// pipe is empty when this returns Ok; after an error it may not be.
pub(crate) fn one_way_splice(src: &TcpStream, dst: &TcpStream, pipe: &Pipe) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut total = 0u64;
    loop {
        let n = match splice(src.as_raw_fd(), pipe.write.as_raw_fd(), BUF) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut left = n;
        while left > 0 {
            match splice(pipe.read.as_raw_fd(), dst.as_raw_fd(), left) {
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        total += n as u64;
    }
}

/// Moves `src` to `dst` with the thread's scratch: through its buffer while each read
/// returns less than [`SPLICE_FROM`] bytes (small messages: one `recv` and one `send`
/// each); after a larger read (large messages, a bulk transfer), by `splice(2)` through
/// the thread's pipe, so the rest of the stream does not enter user space.
fn forward(src: &TcpStream, dst: &TcpStream, scratch: &mut Scratch, poll: Duration) {
    let Scratch { buf, pipe } = scratch;
    match one_way(src, dst, buf, pipe.is_some(), poll) {
        Ok(Some(_)) | Err(_) => {}
        Ok(None) => {
            if let Some(p) = pipe {
                if one_way_splice(src, dst, p).is_err() {
                    // It may hold bytes of this session: the next session gets a new one.
                    *pipe = Pipe::blocking().ok();
                }
            }
        }
    }
}

/// Sessions relayed by threads at once, at most: the gateway's ([`RELAYS`]) takes one
/// per core the zone may run on.
pub(crate) struct Relays {
    pool: Pool,
    threaded: std::sync::atomic::AtomicUsize,
    /// 0: one per core.
    max: usize,
    /// How long a thread polls its socket before it blocks, in µs (0: it blocks at once).
    poll_us: std::sync::atomic::AtomicU64,
}

/// The gateway's relays.
pub(crate) static RELAYS: Relays = Relays::new(IDLE_FOR, 0);

impl Relays {
    pub(crate) const fn new(idle_for: Duration, max: usize) -> Relays {
        Relays {
            pool: Pool::new(idle_for),
            threaded: std::sync::atomic::AtomicUsize::new(0),
            max,
            poll_us: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How long a relay thread polls its socket for the next message before it blocks (the
    /// module's *Polling*), at most [`crate::MAX_GATEWAY_POLL`]; sessions started afterwards
    /// use it.
    pub(crate) fn set_poll(&self, poll: Duration) {
        let us = u64::try_from(poll.min(crate::MAX_GATEWAY_POLL).as_micros()).unwrap_or(u64::MAX);
        self.poll_us.store(us, Ordering::Relaxed);
    }

    fn poll(&self) -> Duration {
        Duration::from_micros(self.poll_us.load(Ordering::Relaxed))
    }

    fn max(&self) -> usize {
        match self.max {
            0 => {
                static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
                *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            }
            m => m,
        }
    }

    /// One of the [`Relays::max`] places, if one is free.
    fn take(&'static self) -> Option<Threaded<'static>> {
        let max = self.max();
        self.threaded
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| Threaded(&self.threaded))
    }
}

/// A session's place among the threaded ones: released when dropped.
struct Threaded<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Threaded<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Threads waiting for a job, each by the sending side of its own channel.
pub(crate) struct Pool {
    idle: Mutex<Vec<(u64, Sender<Job>)>>,
    next_id: std::sync::atomic::AtomicU64,
    idle_for: Duration,
}

impl Pool {
    pub(crate) const fn new(idle_for: Duration) -> Pool {
        Pool { idle: Mutex::new(Vec::new()), next_id: std::sync::atomic::AtomicU64::new(0), idle_for }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Sender<Job>)>> {
        // A poisoned list is still a list of channels: a panic elsewhere leaves it whole.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many threads wait for a job now.
    #[cfg(test)]
    pub(crate) fn idle_threads(&self) -> usize {
        self.idle().len()
    }

    /// Runs `job` on an idle thread, or on a new one. Gives the job back when no thread can
    /// be started (out of memory or of threads).
    pub(crate) fn run(&'static self, job: Job) -> Result<(), Job> {
        let mut job = job;
        {
            // Sent while the list is locked: a thread whose wait timed out looks for itself
            // in the list under the same lock, so it either is gone from it before the send
            // (and was not picked) or finds the job in its channel.
            let mut idle = self.idle();
            while let Some((_, tx)) = idle.pop() {
                match tx.send(job) {
                    Ok(()) => return Ok(()),
                    Err(mpsc::SendError(back)) => job = back,
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel::<Job>();
        let slot = Arc::new(Mutex::new(Some(job)));
        let first = slot.clone();
        let started = std::thread::Builder::new().name("gateway-relay".into()).stack_size(STACK).spawn(move || {
            let Some(job) = first.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
            self.work(id, tx, rx, job)
        });
        match started {
            Ok(_) => Ok(()),
            Err(_) => match slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some(job) => Err(job),
                None => Ok(()),
            },
        }
    }

    fn work(&self, id: u64, tx: Sender<Job>, rx: mpsc::Receiver<Job>, first: Job) {
        let mut scratch = Scratch::new();
        let mut job = first;
        loop {
            job(&mut scratch);
            self.idle().push((id, tx.clone()));
            job = match rx.recv_timeout(self.idle_for) {
                Ok(next) => next,
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    let mut idle = self.idle();
                    if let Some(k) = idle.iter().position(|(i, _)| *i == id) {
                        idle.swap_remove(k);
                        return;
                    }
                    drop(idle);
                    // Picked while timing out: the job was sent under the lock.
                    match rx.try_recv() {
                        Ok(next) => next,
                        Err(_) => return,
                    }
                }
            };
        }
    }
}

/// One relayed session's two sockets (blocking).
struct Session {
    client: TcpStream,
    backend: TcpStream,
    /// Set when the client's direction ended (its end of stream or an error).
    client_done: AtomicBool,
    /// The session's place among the threaded ones, given up as soon as either direction
    /// ends: a session being closed leaves its place to the next one at once.
    place: Mutex<Option<Threaded<'static>>>,
}

impl Session {
    fn give_up_place(&self) {
        drop(self.place.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

/// Moves everything `src` sends to `dst` until `src` ends (`Ok(Some(total))`) or either
/// fails, through `buf`, polling `src` for `poll` before each blocking read; with
/// `until_large`, stops after forwarding a read of at least [`SPLICE_FROM`] bytes
/// (`Ok(None)`).
pub(crate) fn one_way(
    mut src: &TcpStream,
    mut dst: &TcpStream,
    buf: &mut [u8],
    until_large: bool,
    poll: Duration,
) -> io::Result<Option<u64>> {
    let mut total = 0u64;
    loop {
        let polled = if poll.is_zero() { None } else { read_polling(src, buf, poll) };
        let read = match polled {
            Some(r) => r,
            None => src.read(buf),
        };
        let n = match read {
            Ok(0) => return Ok(Some(total)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all(&buf[..n])?;
        total += n as u64;
        if until_large && n >= SPLICE_FROM.min(buf.len()) {
            return Ok(None);
        }
    }
}

/// Reads `src` without blocking, yielding the core between tries, until something (data,
/// end of stream, an error) comes or `poll` has passed (`None`: the caller blocks).
fn read_polling(src: &TcpStream, buf: &mut [u8], poll: Duration) -> Option<io::Result<usize>> {
    use std::os::fd::AsRawFd;
    let start = std::time::Instant::now();
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes and the descriptor stays open while
        // `src` is borrowed.
        let n = unsafe { libc::recv(src.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n >= 0 {
            return Some(Ok(n as usize));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => {}
            io::ErrorKind::Interrupted => continue,
            _ => return Some(Err(e)),
        }
        if start.elapsed() >= poll {
            return None;
        }
        std::thread::yield_now();
    }
}

/// Relays `client` ⇄ `backend` on two pool threads and waits (asynchronously) until the
/// session ends: when the backend's direction ends. Returns true when the backend's side
/// ended while the client's was still open. Gives the sockets back when `relays` has as
/// many threaded sessions as it takes, or no thread could be started (the caller relays
/// them another way).
pub(crate) async fn relay(
    relays: &'static Relays,
    client: TcpStream,
    backend: TcpStream,
) -> Result<bool, (TcpStream, TcpStream)> {
    let Some(place) = relays.take() else {
        return Err((client, backend));
    };
    let pool = &relays.pool;
    let poll = relays.poll();
    if client.set_nonblocking(false).is_err() || backend.set_nonblocking(false).is_err() {
        return Err((client, backend));
    }
    let session =
        Arc::new(Session { client, backend, client_done: AtomicBool::new(false), place: Mutex::new(Some(place)) });
    let (up_tx, up_rx) = tokio::sync::oneshot::channel::<()>();
    let (down_tx, down_rx) = tokio::sync::oneshot::channel::<bool>();
    let up = {
        let s = session.clone();
        Box::new(move |scratch: &mut Scratch| {
            forward(&s.client, &s.backend, scratch, poll);
            s.client_done.store(true, Ordering::SeqCst);
            s.give_up_place();
            let _ = s.backend.shutdown(Shutdown::Write);
            let _ = up_tx.send(());
        }) as Job
    };
    let down = {
        let s = session.clone();
        Box::new(move |scratch: &mut Scratch| {
            forward(&s.backend, &s.client, scratch, poll);
            let client_open = !s.client_done.load(Ordering::SeqCst);
            s.give_up_place();
            // The client reads the end of the stream after everything sent; the client's
            // direction is woken: a read of the client returns end of stream, a write to the
            // backend fails.
            let _ = s.client.shutdown(Shutdown::Write);
            let _ = s.client.shutdown(Shutdown::Read);
            let _ = s.backend.shutdown(Shutdown::Both);
            let _ = down_tx.send(client_open);
        }) as Job
    };
    if let Err(up) = pool.run(up) {
        drop(up);
        drop(down);
        return take_back(session).map_or(Ok(false), Err);
    }
    if let Err(down) = pool.run(down) {
        drop(down);
        tracing::warn!("gateway: no thread for a session's second direction; the session is closed");
        // The client's direction runs already: end it as the backend's end would.
        let _ = session.client.shutdown(Shutdown::Both);
        let _ = session.backend.shutdown(Shutdown::Both);
        let _ = up_rx.await;
        return Ok(false);
    }
    drop(session);
    let client_open = down_rx.await.unwrap_or(false);
    let _ = up_rx.await;
    Ok(client_open)
}

/// The sockets of a session no job holds any more (both jobs were dropped, so the session
/// has one owner; were it not so, the sockets are closed and `None` returned).
fn take_back(session: Arc<Session>) -> Option<(TcpStream, TcpStream)> {
    match Arc::try_unwrap(session) {
        Ok(s) => Some((s.client, s.backend)),
        Err(s) => {
            let _ = s.client.shutdown(Shutdown::Both);
            let _ = s.backend.shutdown(Shutdown::Both);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    /// A connected pair on loopback: (the one that connected, the one accepted).
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    /// A session through the relay: (the client application's socket, the backend
    /// application's socket, the relay's result).
    /// A relay running in a task.
    type Relayed = tokio::task::JoinHandle<Result<bool, (TcpStream, TcpStream)>>;

    fn session() -> (TcpStream, TcpStream, Relayed) {
        let (client_app, client) = pair();
        let (backend, backend_app) = pair();
        let relayed = tokio::spawn(relay(&TEST_RELAYS, client, backend));
        (client_app, backend_app, relayed)
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    async fn ended(relayed: Relayed) -> bool {
        match tokio::time::timeout(Duration::from_secs(30), relayed).await {
            Ok(Ok(Ok(instance_ended))) => instance_ended,
            Ok(Ok(Err(_))) => panic!("the relay gave the sockets back"),
            Ok(Err(e)) => panic!("the relay task failed: {e}"),
            Err(_) => panic!("the relay did not end within 30 s"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_transfers_both_ways_at_once_arrive_whole_and_in_order() {
        let (client_app, backend_app, relayed) = session();
        let up = pattern(8 << 20, 1);
        let down = pattern(8 << 20, 7);
        let (up2, down2) = (up.clone(), down.clone());
        let (mut cw, mut bw) = (client_app.try_clone().unwrap(), backend_app.try_clone().unwrap());
        let client_sends = std::thread::spawn(move || {
            cw.write_all(&up2).unwrap();
            cw.shutdown(Shutdown::Write).unwrap();
        });
        let backend_sends = std::thread::spawn(move || {
            bw.write_all(&down2).unwrap();
        });
        let (mut cr, mut br) = (client_app, backend_app);
        let backend_reads = std::thread::spawn(move || {
            let mut got = Vec::new();
            br.read_to_end(&mut got).unwrap();
            (got, br)
        });
        let mut got_down = vec![0u8; down.len()];
        cr.read_exact(&mut got_down).unwrap();
        assert!(got_down == down, "the client got other bytes than the backend sent");
        client_sends.join().unwrap();
        backend_sends.join().unwrap();
        // The client's end of stream reached the backend (half-close), after every byte.
        let (got_up, backend_app) = backend_reads.join().unwrap();
        assert!(got_up == up, "the backend got other bytes than the client sent");
        drop(backend_app);
        let mut rest = Vec::new();
        cr.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        assert!(!ended(relayed).await, "the client had ended first");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_half_close_still_gets_the_answer() {
        let (mut client_app, mut backend_app, relayed) = session();
        client_app.write_all(b"question\n").unwrap();
        client_app.shutdown(Shutdown::Write).unwrap();
        let mut asked = Vec::new();
        backend_app.read_to_end(&mut asked).unwrap();
        assert_eq!(asked, b"question\n");
        // The session is still open the other way: the answer comes after the client's end.
        backend_app.write_all(b"answer\n").unwrap();
        let mut answer = [0u8; 7];
        client_app.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"answer\n");
        assert!(!relayed.is_finished(), "the session ended before the backend did");
        drop(backend_app);
        let mut rest = Vec::new();
        client_app.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        assert!(!ended(relayed).await, "the client had ended first");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backend_close_ends_the_session_at_once_though_the_client_is_silent() {
        let (mut client_app, mut backend_app, relayed) = session();
        backend_app.write_all(b"bye\n").unwrap();
        backend_app.shutdown(Shutdown::Write).unwrap();
        // The client neither sends nor closes: the session ends anyway, the client reads
        // everything sent and then the end of the stream.
        assert!(ended(relayed).await, "the backend ended while the client was open");
        let mut got = Vec::new();
        client_app.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye\n");
        // Nothing the client sends now reaches the backend.
        let _ = client_app.write_all(b"late\n");
        let mut rest = Vec::new();
        backend_app.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = backend_app.read_to_end(&mut rest);
        assert!(rest.is_empty(), "the backend got {rest:?} after its end");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backend_end_wakes_a_client_direction_blocked_on_a_backend_that_does_not_read() {
        let (client_app, backend_app, relayed) = session();
        // The client sends far more than the buffers hold; the backend reads nothing, so the
        // client's direction blocks in send(2) towards the backend.
        let mut cw = client_app.try_clone().unwrap();
        let flood = std::thread::spawn(move || {
            let chunk = vec![0u8; 1 << 16];
            let mut sent = 0usize;
            while sent < (256 << 20) {
                match cw.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        backend_app.shutdown(Shutdown::Write).unwrap();
        assert!(ended(relayed).await);
        drop(client_app);
        drop(backend_app);
        flood.join().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_reader_gets_every_byte_in_order() {
        let (mut client_app, mut backend_app, relayed) = session();
        let down = pattern(4 << 20, 3);
        let sent = down.clone();
        let backend_sends = std::thread::spawn(move || {
            backend_app.write_all(&sent).unwrap();
            backend_app
        });
        // The client reads 1 KiB at a time with pauses: the relay blocks on the client.
        let mut got = Vec::with_capacity(down.len());
        let mut buf = [0u8; 1024];
        let mut reads = 0usize;
        while got.len() < down.len() {
            let n = client_app.read(&mut buf).unwrap();
            assert!(n > 0, "end of stream after {} of {} bytes", got.len(), down.len());
            got.extend_from_slice(&buf[..n]);
            reads += 1;
            if reads.is_multiple_of(256) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        assert!(got == down, "the slow reader got other bytes than the backend sent");
        drop(backend_sends.join().unwrap());
        assert!(ended(relayed).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_sessions_at_once_each_get_their_own_bytes() {
        let mut apps = Vec::new();
        for _ in 0..64 {
            apps.push(session());
        }
        let mut echoes = Vec::new();
        for (k, (_, backend_app, _)) in apps.iter().enumerate() {
            let mut b = backend_app.try_clone().unwrap();
            echoes.push(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match b.read(&mut buf) {
                        Ok(0) | Err(_) => return k,
                        Ok(n) => b.write_all(&buf[..n]).unwrap(),
                    }
                }
            }));
        }
        for round in 0..20u8 {
            for (k, (client_app, _, _)) in apps.iter_mut().enumerate() {
                let msg = pattern(100 + k, round.wrapping_add(k as u8));
                client_app.write_all(&msg).unwrap();
                let mut back = vec![0u8; msg.len()];
                client_app.read_exact(&mut back).unwrap();
                assert!(back == msg, "session {k} round {round} got another session's bytes");
            }
        }
        for (client_app, backend_app, relayed) in apps {
            client_app.shutdown(Shutdown::Write).unwrap();
            drop(backend_app);
            assert!(!ended(relayed).await);
            drop(client_app);
        }
        for e in echoes {
            e.join().unwrap();
        }
    }

    /// One threaded session at a time.
    static ONE_RELAY: Relays = Relays::new(IDLE_FOR, 1);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sessions_beyond_the_threaded_cap_are_given_back_until_a_place_is_free() {
        let (mut client_app, backend_app, first) = {
            let (client_app, client) = pair();
            let (backend, backend_app) = pair();
            (client_app, backend_app, tokio::spawn(relay(&ONE_RELAY, client, backend)))
        };
        // The first session has the only place (it echoes through the relay) …
        client_app.write_all(b"x").unwrap();
        let mut b = backend_app.try_clone().unwrap();
        let mut got = [0u8; 1];
        b.read_exact(&mut got).unwrap();
        // … so the second is given back whole: its sockets still connect its two ends.
        let (mut c2_app, c2) = pair();
        let (b2, mut b2_app) = pair();
        let (c2, b2) = match relay(&ONE_RELAY, c2, b2).await {
            Err(back) => back,
            Ok(_) => panic!("a second session was threaded beyond the cap of one"),
        };
        c2_app.write_all(b"still here").unwrap();
        let mut buf = [0u8; 10];
        (&c2).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"still here");
        // Once the first session's client has ended its direction, the place is free
        // again, though the session is still open: its backend may still answer.
        client_app.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        let again = tokio::spawn(relay(&ONE_RELAY, c2, b2));
        c2_app.write_all(b"relayed").unwrap();
        let mut buf = [0u8; 7];
        b2_app.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"relayed");
        assert!(!again.is_finished(), "the second session was given back: the place was not free");
        b.write_all(b"late answer").unwrap();
        let mut buf = [0u8; 11];
        client_app.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late answer");
        drop(backend_app);
        drop(b);
        assert!(!ended(first).await, "the client had ended first");
        drop(b2_app);
        assert!(ended(again).await);
    }

    #[test]
    fn splice_moves_a_large_stream_whole_and_the_pipe_is_left_empty() {
        let (mut src_app, src) = pair();
        let (dst, mut dst_app) = pair();
        let data = pattern(16 << 20, 5);
        let sent = data.clone();
        let sender = std::thread::spawn(move || {
            src_app.write_all(&sent).unwrap();
        });
        let receiver = std::thread::spawn(move || {
            let mut got = Vec::new();
            dst_app.read_to_end(&mut got).unwrap();
            got
        });
        let pipe = Pipe::blocking().unwrap();
        // The sender's end of stream ends the transfer (its socket is closed when it returns).
        let moved = one_way_splice(&src, &dst, &pipe).unwrap();
        sender.join().unwrap();
        assert_eq!(moved, data.len() as u64);
        drop(dst);
        assert!(receiver.join().unwrap() == data, "other bytes arrived than were sent");
        // Nothing left in the pipe: a non-blocking read finds it empty.
        let mut probe = [0u8; 1];
        // SAFETY: a read into a one-byte buffer we own, from a descriptor the pipe keeps open.
        let n = unsafe {
            use std::os::fd::AsRawFd;
            libc::fcntl(pipe.read.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
            libc::read(pipe.read.as_raw_fd(), probe.as_mut_ptr().cast(), 1)
        };
        assert_eq!(n, -1, "the pipe still held bytes");
    }

    #[test]
    fn polling_takes_what_comes_and_gives_up_after_the_poll_time() {
        let (mut app, relay_end) = pair();
        let mut buf = [0u8; 16];
        let t0 = Instant::now();
        assert!(read_polling(&relay_end, &mut buf, Duration::from_millis(20)).is_none(), "nothing was sent");
        assert!(t0.elapsed() >= Duration::from_millis(20), "it gave up early: {:?}", t0.elapsed());
        app.write_all(b"hi").unwrap();
        let n = read_polling(&relay_end, &mut buf, Duration::from_secs(5)).expect("the bytes").unwrap();
        assert_eq!(&buf[..n], b"hi");
        drop(app);
        let end = read_polling(&relay_end, &mut buf, Duration::from_secs(5)).expect("the end of stream");
        assert_eq!(end.unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_polling_relay_carries_requests_and_answers_and_ends_with_the_backend() {
        static POLLING: Relays = Relays::new(IDLE_FOR, 1000);
        POLLING.set_poll(Duration::from_micros(200));
        let (mut client_app, client) = pair();
        let (backend, mut backend_app) = pair();
        let relayed = tokio::spawn(relay(&POLLING, client, backend));
        for i in 0..200u32 {
            // Every fifth exchange waits past the poll time, so both the polled and the
            // blocking read are taken.
            if i % 5 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            let question = format!("q{i:05}\n");
            client_app.write_all(question.as_bytes()).unwrap();
            let mut asked = [0u8; 7];
            backend_app.read_exact(&mut asked).unwrap();
            assert_eq!(&asked, question.as_bytes());
            backend_app.write_all(&asked).unwrap();
            let mut answer = [0u8; 7];
            client_app.read_exact(&mut answer).unwrap();
            assert_eq!(answer, asked);
        }
        drop(backend_app);
        let mut rest = Vec::new();
        client_app.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        assert!(ended(relayed).await, "the backend ended a session the client held open");
    }

    static TEST_POOL: Pool = Pool::new(Duration::from_secs(2));
    /// No cap but that of the test's own sessions.
    static TEST_RELAYS: Relays = Relays::new(IDLE_FOR, 1000);

    #[test]
    fn pool_threads_are_reused_and_exit_when_idle() {
        let (tx, rx) = mpsc::channel();
        let mut carried = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let tx = tx.clone();
            TEST_POOL
                .run(Box::new(move |sc: &mut Scratch| {
                    tx.send((std::thread::current().id(), sc.buf.len())).unwrap();
                }))
                .unwrap_or_else(|_| panic!("no thread"));
            // Each job ended before the next is run: one thread carries them all.
            carried.insert(format!("{:?}", rx.recv().unwrap().0));
            let deadline = Instant::now() + Duration::from_secs(10);
            while TEST_POOL.idle_threads() == 0 {
                assert!(Instant::now() < deadline, "the thread did not come back to the pool");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(carried.len(), 1, "sequential jobs ran on {} threads", carried.len());
        let ids: Vec<_> = (0..4)
            .map(|_| {
                let tx = tx.clone();
                let (done_tx, done_rx) = mpsc::channel::<()>();
                TEST_POOL
                    .run(Box::new(move |sc: &mut Scratch| {
                        tx.send((std::thread::current().id(), sc.buf.len())).unwrap();
                        let _ = done_rx.recv();
                    }))
                    .unwrap_or_else(|_| panic!("no thread"));
                done_tx
            })
            .collect();
        // Four jobs at once: four threads, each with its own buffer.
        let mut threads = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let (id, len) = rx.recv().unwrap();
            assert_eq!(len, BUF);
            threads.insert(format!("{id:?}"));
        }
        assert_eq!(threads.len(), 4);
        drop(ids);
        // Idle past their time, they exit and leave the pool.
        let deadline = Instant::now() + Duration::from_secs(20);
        while TEST_POOL.idle_threads() > 0 {
            assert!(Instant::now() < deadline, "{} idle threads did not exit", TEST_POOL.idle_threads());
            std::thread::sleep(Duration::from_millis(10));
        }
        // And a job after that still runs (on a new thread).
        TEST_POOL
            .run(Box::new(move |_: &mut Scratch| tx.send((std::thread::current().id(), 0)).unwrap()))
            .unwrap_or_else(|_| panic!("no thread"));
        assert!(rx.recv_timeout(Duration::from_secs(10)).is_ok());
    }
}
