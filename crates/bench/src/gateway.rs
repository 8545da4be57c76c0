//! A native load generator for the gateway benchmark (`zonal bench --suite gateway`).
//!
//! It speaks `zonal workload`'s session protocol: the server greets each connection with one
//! line, then echoes every line it is sent. One *round* on one *path* (a set of addresses:
//! the back ends directly, the Zonal gateway, haproxy) opens `conc` connections (spread over
//! the path's addresses), reads every greeting, lets each connection do `warmup` untimed
//! round trips, then `round_trips` timed ones: write one `msg`-byte line, read its echo in
//! full. Each round trip is timed with [`Instant`] into a preallocated buffer (no allocation
//! on the measured path); the round's figures are min/p50/p90/p99/max over every round trip
//! of every connection, and round trips per second over the wall time from the moment all
//! connections were ready until the last one finished.
//!
//! [`run`] interleaves the paths round by round in the order A B C, C B A, … so drift in the
//! machine's load hits every path alike, and [`summarise`] reports min/median/max across
//! rounds of each figure and, per round, what each proxy adds over the direct path.
//!
//! Connections of one round are blocking sockets, one thread each (`TCP_NODELAY` set). The
//! caller decides where those threads run (the CLI pins the process to a core apart from
//! the servers before calling [`run`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::BenchError;

/// One way to reach the echo back ends.
#[derive(Debug, Clone)]
pub struct Path {
    /// `direct`, `gateway`, `haproxy`.
    pub name: String,
    /// Connection `i` of a round goes to `addrs[i % addrs.len()]`.
    pub addrs: Vec<SocketAddr>,
}

/// What one round does.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Concurrent connections per round.
    pub conc: usize,
    /// Bytes per message, the final newline included (≥ 1).
    pub msg: usize,
    /// Untimed round trips per connection before the timed ones.
    pub warmup: usize,
    /// Timed round trips per connection.
    pub round_trips: usize,
    /// Rounds per path.
    pub rounds: usize,
    /// Sequential session opens per round, before the connections (0: none): each is
    /// connect, greeting, one round trip, close, timed as a whole.
    pub opens: usize,
    /// Timeout of each connect, read and write.
    pub timeout: Duration,
}

/// The figures of one round on one path; latencies in µs.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub path: String,
    pub round: usize,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub round_trips: usize,
    pub secs: f64,
    /// Session opens (connect → greeting → one echo): p50 and p99 in µs (0 without opens).
    pub open_p50: f64,
    pub open_p99: f64,
    /// CPU time of the whole machine (every core, every process: client, proxy, back ends)
    /// while the round trips ran, per round trip, in µs; from `/proc/stat`, whose 10 ms ticks
    /// make it coarse for a short round (0 where `/proc/stat` cannot be read).
    pub cpu_us: f64,
}

impl Round {
    pub fn per_second(&self) -> f64 {
        if self.secs > 0.0 {
            self.round_trips as f64 / self.secs
        } else {
            0.0
        }
    }
}

/// CPU time spent by the whole machine so far (every state but idle and I/O wait), in
/// seconds, from the first line of `/proc/stat` (ticks of 1/100 s, Linux's fixed USER_HZ).
fn machine_busy_secs() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    busy_secs_of(text.lines().next()?)
}

/// [`machine_busy_secs`] of a `/proc/stat` `cpu` line: user nice system idle iowait irq
/// softirq steal ….
fn busy_secs_of(line: &str) -> Option<f64> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields.take(8).map(str::parse).collect::<Result<_, _>>().ok()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, steal] = ticks.as_slice() else { return None };
    Some((user + nice + system + irq + softirq + steal) as f64 / 100.0)
}

/// The value at quantile `q` of sorted samples (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One connection: greeted, warmed up, waiting at the barrier, then timed.
fn connection(addr: SocketAddr, cfg: &Config, start: &Barrier, passed: &mut bool) -> Result<Vec<u64>, String> {
    let fail = |what: &str, e: std::io::Error| format!("{addr}: {what}: {e}");
    let stream = TcpStream::connect_timeout(&addr, cfg.timeout).map_err(|e| fail("connect", e))?;
    stream.set_nodelay(true).map_err(|e| fail("TCP_NODELAY", e))?;
    stream.set_read_timeout(Some(cfg.timeout)).map_err(|e| fail("read timeout", e))?;
    stream.set_write_timeout(Some(cfg.timeout)).map_err(|e| fail("write timeout", e))?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| fail("clone", e))?);
    let mut greeting = String::new();
    reader.read_line(&mut greeting).map_err(|e| fail("greeting", e))?;
    if greeting.is_empty() || greeting.starts_with("busy") {
        return Err(format!("{addr}: refused the session (greeting {:?})", greeting.trim_end()));
    }
    // Anything past the greeting line stays in `reader`'s buffer; the echo is read through it.
    let mut msg = vec![b'x'; cfg.msg];
    if let Some(last) = msg.last_mut() {
        *last = b'\n';
    }
    let mut echo = vec![0u8; cfg.msg];
    let mut writer = stream;
    let mut one = |writer: &mut TcpStream, reader: &mut BufReader<TcpStream>| -> Result<(), String> {
        writer.write_all(&msg).map_err(|e| fail("write", e))?;
        reader.read_exact(&mut echo).map_err(|e| fail("read echo", e))?;
        if echo != msg {
            return Err(format!("{addr}: the echo differs from the message sent"));
        }
        Ok(())
    };
    for _ in 0..cfg.warmup {
        one(&mut writer, &mut reader)?;
    }
    let mut samples = Vec::with_capacity(cfg.round_trips);
    start.wait();
    *passed = true;
    for _ in 0..cfg.round_trips {
        let t0 = Instant::now();
        one(&mut writer, &mut reader)?;
        samples.push(t0.elapsed().as_nanos() as u64);
    }
    Ok(samples)
}

/// One timed session open: connect, greeting, one round trip of `cfg.msg` bytes; ns.
fn open_one(addr: SocketAddr, cfg: &Config) -> Result<u64, String> {
    let fail = |what: &str, e: std::io::Error| format!("{addr}: session open: {what}: {e}");
    let t0 = Instant::now();
    let stream = TcpStream::connect_timeout(&addr, cfg.timeout).map_err(|e| fail("connect", e))?;
    stream.set_nodelay(true).map_err(|e| fail("TCP_NODELAY", e))?;
    stream.set_read_timeout(Some(cfg.timeout)).map_err(|e| fail("read timeout", e))?;
    let mut writer = stream.try_clone().map_err(|e| fail("clone", e))?;
    let mut reader = BufReader::new(stream);
    let mut greeting = String::new();
    reader.read_line(&mut greeting).map_err(|e| fail("greeting", e))?;
    if greeting.is_empty() || greeting.starts_with("busy") {
        return Err(format!("{addr}: refused the session (greeting {:?})", greeting.trim_end()));
    }
    writer.write_all(b"ping\n").map_err(|e| fail("write", e))?;
    let mut echo = [0u8; 5];
    reader.read_exact(&mut echo).map_err(|e| fail("read echo", e))?;
    let took = t0.elapsed().as_nanos() as u64;
    if &echo != b"ping\n" {
        return Err(format!("{addr}: session open: the echo differs from the message sent"));
    }
    Ok(took)
}

/// One round on one path.
pub fn round(path: &Path, number: usize, cfg: &Config) -> Result<Round, BenchError> {
    if path.addrs.is_empty() || cfg.conc == 0 || cfg.msg == 0 || cfg.round_trips == 0 {
        return Err(BenchError::new(format!(
            "gateway round on {}: expected at least one address, connection, byte and round trip",
            path.name
        )));
    }
    let mut opens = Vec::with_capacity(cfg.opens);
    for i in 0..cfg.opens {
        opens.push(
            open_one(path.addrs[i % path.addrs.len()], cfg)
                .map_err(|e| BenchError::new(format!("gateway round {number} on {}: {e}", path.name)))?,
        );
    }
    opens.sort_unstable();
    // Every connection plus this thread: the clock starts when all are warmed up.
    let start = Arc::new(Barrier::new(cfg.conc + 1));
    let (samples, secs) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.conc)
            .map(|i| {
                let addr = path.addrs[i % path.addrs.len()];
                let start = Arc::clone(&start);
                s.spawn(move || {
                    let mut passed = false;
                    let r = connection(addr, cfg, &start, &mut passed);
                    if !passed {
                        // Never leave the others waiting: a connection that failed before
                        // the start still passes the barrier once.
                        start.wait();
                    }
                    r
                })
            })
            .collect();
        start.wait();
        let busy0 = machine_busy_secs();
        let t0 = Instant::now();
        let results: Vec<Result<Vec<u64>, String>> =
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a client thread panicked".into()))).collect();
        let secs = t0.elapsed().as_secs_f64();
        let busy = busy0.zip(machine_busy_secs()).map_or(0.0, |(a, b)| (b - a).max(0.0));
        (results, (secs, busy))
    });
    let (secs, busy) = secs;
    let mut all = Vec::with_capacity(cfg.conc * cfg.round_trips);
    for r in samples {
        all.extend(r.map_err(|e| BenchError::new(format!("gateway round {number} on {}: {e}", path.name)))?);
    }
    all.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    Ok(Round {
        path: path.name.clone(),
        round: number,
        min: us(all[0]),
        p50: us(quantile(&all, 0.50)),
        p90: us(quantile(&all, 0.90)),
        p99: us(quantile(&all, 0.99)),
        max: us(all[all.len() - 1]),
        round_trips: all.len(),
        secs,
        open_p50: us(quantile(&opens, 0.50)),
        open_p99: us(quantile(&opens, 0.99)),
        cpu_us: busy * 1e6 / all.len() as f64,
    })
}

/// Every round of every path, interleaved A B C, C B A, …; `progress` hears each.
pub fn run(paths: &[Path], cfg: &Config, progress: crate::Progress) -> Result<Vec<Round>, BenchError> {
    let total = paths.len() * cfg.rounds;
    let mut out = Vec::with_capacity(total);
    for r in 0..cfg.rounds {
        let order: Vec<&Path> = if r % 2 == 0 { paths.iter().collect() } else { paths.iter().rev().collect() };
        for p in order {
            progress(out.len(), total, &format!("round {} of {}: {}", r + 1, cfg.rounds, p.name));
            out.push(round(p, r + 1, cfg)?);
        }
    }
    progress(total, total, "done");
    Ok(out)
}

/// A minimal user-space TCP relay — the floor of what any user-space relay adds on a machine:
/// per connection it connects to the next back end (round robin) and moves bytes with two
/// blocking threads, one per direction, each `read` into its own 64 KiB buffer and
/// `write_all` to the other side (`TCP_NODELAY` on both). No admission, accounting or
/// anything else a gateway does, so `gateway − bare-relay` in the same round is what the
/// gateway's own work adds, and `bare-relay − direct` what the extra hop costs (two more
/// loopback traversals and two more thread wake-ups per round trip). Stopped when dropped
/// (its connections' threads end when the client closes, as each half-close is passed on).
pub struct BareRelay {
    addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl BareRelay {
    /// Listens on 127.0.0.1 (an ephemeral port) and relays to `backends`. `setup` runs first
    /// on the accepting thread (the CLI pins it to the servers' core); the relay threads it
    /// starts inherit its CPU affinity. An error from `setup` is returned and nothing runs.
    pub fn start(
        backends: Vec<SocketAddr>,
        setup: impl FnOnce() -> Result<(), String> + Send + 'static,
    ) -> Result<BareRelay, BenchError> {
        if backends.is_empty() {
            return Err(BenchError::new("bare relay: expected at least one back end"));
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| BenchError::new(format!("bare relay: bind 127.0.0.1:0: {e}")))?;
        let addr = listener.local_addr().map_err(|e| BenchError::new(format!("bare relay: local address: {e}")))?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ready, started) = std::sync::mpsc::channel();
        let acceptor = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let ok = setup();
                let go = ok.is_ok();
                let _ = ready.send(ok);
                if !go {
                    return;
                }
                for (n, client) in listener.incoming().enumerate() {
                    if stop.load(std::sync::atomic::Ordering::Acquire) {
                        return;
                    }
                    // A connection that fails is dropped (closed): the client's round fails
                    // with its own error.
                    if let Ok(client) = client {
                        let _ = relay_one(client, backends[n % backends.len()]);
                    }
                }
            }
        });
        match started.recv() {
            Ok(Ok(())) => Ok(BareRelay { addr, stop, acceptor: Some(acceptor) }),
            Ok(Err(e)) => {
                let _ = acceptor.join();
                Err(BenchError::new(format!("bare relay: {e}")))
            }
            Err(_) => Err(BenchError::new("bare relay: the accepting thread ended before it started")),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for BareRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        // Wake the accepting thread, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// Connects `client` to `backend` and starts its two relay threads.
fn relay_one(client: TcpStream, backend: SocketAddr) -> std::io::Result<()> {
    let server = TcpStream::connect_timeout(&backend, Duration::from_secs(5))?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (c2, s2) = (client.try_clone()?, server.try_clone()?);
    std::thread::spawn(move || one_way(client, server));
    std::thread::spawn(move || one_way(s2, c2));
    Ok(())
}

/// Moves `from` to `to` until the end of `from`'s stream (or an error), then half-closes `to`.
fn one_way(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// min / median / max of a list of values (0s when empty).
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    (v[0], median, v[n - 1])
}

/// The figures named by a statistic: round trips `min`, `p50`, `p90`, `p99`, `max`, `rt/s`;
/// session opens `open p50`, `open p99`; the machine's CPU µs per round trip `cpu/rt`.
pub const STATS: [&str; 9] = ["min", "p50", "p90", "p99", "max", "rt/s", "open p50", "open p99", "cpu/rt"];

fn stat(r: &Round, name: &str) -> f64 {
    match name {
        "min" => r.min,
        "p50" => r.p50,
        "p90" => r.p90,
        "p99" => r.p99,
        "max" => r.max,
        "open p50" => r.open_p50,
        "open p99" => r.open_p99,
        "cpu/rt" => r.cpu_us,
        _ => r.per_second(),
    }
}

/// Per path and statistic, (min, median, max) across rounds.
pub fn per_path(rounds: &[Round], path: &str) -> Vec<(&'static str, (f64, f64, f64))> {
    STATS
        .iter()
        .map(|s| {
            let v: Vec<f64> = rounds.iter().filter(|r| r.path == path).map(|r| stat(r, s)).collect();
            (*s, spread(&v))
        })
        .collect()
}

/// Per statistic, (min, median, max) across rounds of `path − reference` in the same round
/// (latencies in µs; `rt/s` as the ratio path / reference).
pub fn added(rounds: &[Round], path: &str, reference: &str) -> Vec<(&'static str, (f64, f64, f64))> {
    STATS
        .iter()
        .map(|s| {
            let v: Vec<f64> = rounds
                .iter()
                .filter(|r| r.path == path)
                .filter_map(|r| {
                    let base = rounds.iter().find(|b| b.path == reference && b.round == r.round)?;
                    Some(if *s == "rt/s" {
                        stat(r, s) / stat(base, s).max(f64::MIN_POSITIVE)
                    } else {
                        stat(r, s) - stat(base, s)
                    })
                })
                .collect();
            (*s, spread(&v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A line echo server like `zonal workload`: greets, then echoes every line.
    fn echo_server(sessions: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let h = std::thread::spawn(move || {
            let mut served = Vec::new();
            for _ in 0..sessions {
                let (stream, _) = listener.accept().expect("accept");
                served.push(std::thread::spawn(move || {
                    let mut w = stream.try_clone().expect("clone");
                    w.write_all(b"hello\n").expect("greet");
                    let mut r = BufReader::new(stream);
                    let mut line = Vec::new();
                    while r.read_until(b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
                        w.write_all(&line).expect("echo");
                        line.clear();
                    }
                }));
            }
            for s in served {
                let _ = s.join();
            }
        });
        (addr, h)
    }

    /// A round of 2 connections × 50 round trips of 100 bytes (3 untimed first), after 3 timed
    /// session opens: 5 sessions in all.
    fn two_connections_fifty_round_trips() -> Config {
        Config { conc: 2, msg: 100, warmup: 3, round_trips: 50, rounds: 1, opens: 3, timeout: Duration::from_secs(5) }
    }

    #[test]
    fn a_round_times_every_round_trip_of_every_connection() {
        let (addr, server) = echo_server(5);
        let cfg = two_connections_fifty_round_trips();
        let path = Path { name: "direct".into(), addrs: vec![addr] };
        let r = round(&path, 1, &cfg).expect("round");
        server.join().expect("server");
        assert_eq!(r.round_trips, 100);
        assert!(r.min > 0.0 && r.min <= r.p50 && r.p50 <= r.p90 && r.p90 <= r.p99 && r.p99 <= r.max);
        assert!(r.per_second() > 0.0);
        assert!(r.open_p50 > 0.0 && r.open_p50 <= r.open_p99);
        assert!(r.cpu_us >= 0.0 && r.cpu_us.is_finite());
    }

    #[test]
    fn a_refused_connection_fails_the_round_with_the_address() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let cfg =
            Config { conc: 1, msg: 8, warmup: 0, round_trips: 1, rounds: 1, opens: 0, timeout: Duration::from_secs(2) };
        let e = round(&Path { name: "gateway".into(), addrs: vec![addr] }, 1, &cfg).expect_err("refused");
        assert!(e.message.contains(&addr.to_string()) && e.message.contains("gateway"), "{e}");
    }

    #[test]
    fn the_bare_relay_passes_sessions_through_and_stops_when_dropped() {
        let (addr, server) = echo_server(5);
        let relay = BareRelay::start(vec![addr], || Ok(())).expect("relay");
        let cfg = two_connections_fifty_round_trips();
        let r = round(&Path { name: "bare-relay".into(), addrs: vec![relay.addr()] }, 1, &cfg).expect("round");
        assert_eq!(r.round_trips, 100);
        // Every session ended at the echo server too: each half-close was passed on.
        server.join().expect("server");
        let relay_addr = relay.addr();
        drop(relay);
        let mut s = TcpStream::connect_timeout(&relay_addr, Duration::from_secs(1));
        if let Ok(s) = &mut s {
            // A connection accepted by the kernel before the listener closed reads its end.
            s.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
            assert_eq!(s.read(&mut [0u8; 8]).unwrap_or(0), 0, "nothing relays after the drop");
        }
    }

    #[test]
    fn a_bare_relay_whose_setup_fails_says_why_and_runs_nothing() {
        let (addr, _) = (SocketAddr::from(([127, 0, 0, 1], 9)), ());
        let e = BareRelay::start(vec![addr], || Err("cannot pin to core 7".into())).err().expect("refused");
        assert!(e.message.contains("cannot pin to core 7"), "{e}");
        assert!(BareRelay::start(Vec::new(), || Ok(())).err().expect("no back end").message.contains("back end"));
    }

    #[test]
    fn spread_and_added_are_per_round() {
        let mk = |path: &str, round, p50| Round {
            path: path.into(),
            round,
            min: p50,
            p50,
            p90: p50,
            p99: p50,
            max: p50,
            round_trips: 10,
            secs: 1.0,
            open_p50: 0.0,
            open_p99: 0.0,
            cpu_us: 1.0,
        };
        let rounds = vec![mk("direct", 1, 20.0), mk("gateway", 1, 30.0), mk("direct", 2, 40.0), mk("gateway", 2, 45.0)];
        let a = added(&rounds, "gateway", "direct");
        assert_eq!(a[1], ("p50", (5.0, 7.5, 10.0)));
        assert_eq!(a[5], ("rt/s", (1.0, 1.0, 1.0)));
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (1.0, 2.0, 3.0));
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), 2);
        assert_eq!(quantile(&[1, 2, 3, 4], 0.99), 4);
        assert_eq!(a[8], ("cpu/rt", (0.0, 0.0, 0.0)));
    }

    #[test]
    fn busy_time_counts_every_state_but_idle_and_io_wait() {
        let busy = busy_secs_of("cpu  100 20 30 5000 70 4 6 10 0 0").expect("a cpu line");
        assert!((busy - 1.70).abs() < 1e-9, "{busy}");
        assert_eq!(busy_secs_of("cpu0 1 2 3 4 5 6 7 8"), None, "a per-core line");
        assert_eq!(busy_secs_of("cpu  1 2 3"), None, "too few fields");
        assert_eq!(busy_secs_of("cpu  1 x 3 4 5 6 7 8"), None, "not a number");
    }
}
