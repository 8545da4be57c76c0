//! `zonal bench --suite gateway [--peer haproxy] [--rounds N] [--conc N] [--msg B]
//! [--round-trips N] [--opens N] [--reference ZONAL]`: the gateway's added latency measured
//! by a native client.
//!
//! Starts what it measures itself, on 127.0.0.1: `zonal up --apply <examples>/echo-bench.yaml`
//! (a domain, a zone, two `zonal workload` echo instances behind the zone's gateway) in a
//! fresh state directory, and with `--peer haproxy` haproxy in TCP mode (`balance leastconn`,
//! `maxconn` per server = its slots, as scripts/bench-gateway configured it). Then
//! [`zonal_bench::gateway`] runs interleaved rounds on the paths direct (the instances' own
//! ports), gateway (the endpoint `zonal resolve` returns) and haproxy. `--reference ZONAL`
//! starts a second stack from another build and adds its gateway as the path gateway-ref, so
//! a change to the relay is measured against the build before it in the same run.
//!
//! Pinning: with at least two cores, the servers (`zonal up` and everything it starts,
//! haproxy) run on the last core and this process (the client) on the first, by
//! sched_setaffinity(2); the summary says which.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zonal_bench::gateway::{self, Config, Round};
use zonal_bench::report::Summary;

use super::{finish, write, Args, Bar, PeerArg};
use crate::Failure;

/// A child process stopped (SIGINT, then SIGKILL after 15 s) when dropped.
struct Guard {
    child: Child,
    label: &'static str,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signals a child this process started and has not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => {
                    eprintln!("{} did not stop within 15 s of SIGINT; killing it", self.label);
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// The CPU set of one core.
fn one_core(core: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`; `core` is below the machine's core count.
    unsafe { libc::CPU_SET(core, &mut set) };
    set
}

/// Pins the calling thread (and the threads it starts later) to `core`.
fn pin_self(core: usize) -> Result<(), Failure> {
    let set = one_core(core);
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of the size given.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(Failure::new(1, format!("sched_setaffinity(core {core}): {}", std::io::Error::last_os_error())));
    }
    Ok(())
}

/// A command whose process (and all it starts) runs on `core` when given.
fn pinned(program: &Path, core: Option<usize>) -> Command {
    let mut cmd = Command::new(program);
    if let Some(core) = core {
        let set = one_core(core);
        // SAFETY: sched_setaffinity(2) is async-signal-safe; `set` was built before fork and is
        // only read.
        unsafe {
            cmd.pre_exec(move || {
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd
}

fn zonal_json(exe: &Path, context: &Path, args: &[&str]) -> Result<serde_json::Value, String> {
    let out = Command::new(exe)
        .args(args)
        .env("ZONAL_CONTEXT", context)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("zonal {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!("zonal {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("zonal {}: not JSON: {e}", args.join(" ")))
}

/// The echo instances' ports and slots once both run, else why not.
fn echo_backends(instances: &serde_json::Value) -> Option<(Vec<u16>, u64)> {
    let list: Vec<&serde_json::Value> = instances.as_array()?.iter().filter(|i| i["service"] == "echo").collect();
    if list.len() != 2 || list.iter().any(|i| i["state"] != "running" || i["slots"].is_null()) {
        return None;
    }
    let ports: Option<Vec<u16>> = list
        .iter()
        .map(|i| {
            i["ports"].as_array()?.iter().find(|p| p["name"] == "echo")?["public"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
        })
        .collect();
    Some((ports?, list[0]["slots"]["max"].as_u64()?))
}

fn wait_listening(addr: SocketAddr, what: &str, log: &Path) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() >= deadline {
            return Err(Failure::new(
                1,
                format!("{what} does not listen on {addr} after 10 s (see {})", log.display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn free_port() -> Result<u16, Failure> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Failure::new(1, format!("bind 127.0.0.1:0: {e}")))?;
    l.local_addr().map(|a| a.port()).map_err(|e| Failure::new(1, format!("local address: {e}")))
}

fn cfg_of(args: &Args) -> Result<Config, Failure> {
    let cfg = Config {
        conc: args.conc,
        msg: args.msg,
        warmup: 200,
        round_trips: args.round_trips,
        rounds: args.rounds,
        opens: args.opens,
        timeout: Duration::from_secs(10),
    };
    if cfg.conc == 0 || cfg.msg == 0 || cfg.round_trips == 0 || cfg.rounds == 0 {
        return Err(Failure::new(2, "--conc, --msg, --round-trips and --rounds: expected at least 1 each"));
    }
    if cfg.conc > 64 {
        return Err(Failure::new(
            2,
            format!("--conc {}: expected at most 64 (the back ends have 2 × 64 slots)", cfg.conc),
        ));
    }
    Ok(cfg)
}

pub fn run(args: &Args) -> Result<(), Failure> {
    let cfg = cfg_of(args)?;
    let haproxy = match args.peer {
        None => false,
        Some(PeerArg::Haproxy) => true,
        Some(p) => {
            let name = clap::ValueEnum::to_possible_value(&p).map(|v| v.get_name().to_string()).unwrap_or_default();
            return Err(Failure::new(2, format!("--peer {name}: the gateway suite compares only with haproxy")));
        }
    };
    if haproxy && Command::new("haproxy").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        return Err(Failure::new(
            1,
            "--peer haproxy: haproxy is not on PATH (install it, e.g. apt-get install haproxy)",
        ));
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let (client_core, server_core) = if cores >= 2 { (Some(0), Some(cores - 1)) } else { (None, None) };
    let exe = std::env::current_exe().map_err(|e| Failure::new(1, format!("cannot find the zonal binary: {e}")))?;
    let descriptor = args.examples.join("echo-bench.yaml");
    if !descriptor.is_file() {
        return Err(Failure::new(
            1,
            format!("{} not found (point --examples at the example descriptors)", descriptor.display()),
        ));
    }
    let work = std::env::temp_dir().join(format!("zonal-bench-gw.{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| Failure::new(1, format!("cannot create {}: {e}", work.display())))?;
    let result = measure(args, &cfg, haproxy, (client_core, server_core), &exe, &descriptor, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// A running `zonal up` of echo-bench.yaml: its guard, the echo back ends, their slots and
/// the gateway endpoint.
struct Stack {
    _up: Guard,
    direct: Vec<SocketAddr>,
    slots: u64,
    gateway: SocketAddr,
}

fn log_file(p: &Path) -> Result<(std::fs::File, std::fs::File), Failure> {
    let out = std::fs::File::create(p).map_err(|e| Failure::new(1, format!("cannot create {}: {e}", p.display())))?;
    let err = out.try_clone().map_err(|e| Failure::new(1, format!("{}: {e}", p.display())))?;
    Ok((out, err))
}

/// Starts `exe up --apply descriptor` in `dir` (pinned to `core`), with `exe`'s directory
/// first on PATH so its instances run the same build's `zonal workload`, and `extra` after
/// its own arguments, and waits for it.
fn start_stack(
    exe: &Path,
    descriptor: &Path,
    dir: &Path,
    core: Option<usize>,
    extra: &[&str],
) -> Result<Stack, Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure::new(1, format!("cannot create {}: {e}", dir.display())))?;
    let bin_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let path_var = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::var_os("PATH").iter().flat_map(std::env::split_paths)),
    )
    .map_err(|e| Failure::new(1, format!("PATH: {e}")))?;
    let context = dir.join("context.json");
    let up_log = dir.join("up.log");
    let (out, err) = log_file(&up_log)?;
    let child = pinned(exe, core)
        .arg("up")
        .arg("--state")
        .arg(dir.join("state"))
        .arg("--context")
        .arg(&context)
        .arg("--apply")
        .arg(descriptor)
        .args(extra)
        .env("PATH", path_var)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| Failure::new(1, format!("cannot start {} up: {e}", exe.display())))?;
    let up = Guard { child, label: "zonal up" };
    // The instances can run before the zone's next heartbeat tells the domain so; until then
    // `zonal resolve` answers "being deployed, retry", which is what a client does here.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (ports, slots, gateway) = loop {
        let seen = if context.is_file() {
            zonal_json(exe, &context, &["get", "instances", "-o", "json"]).and_then(|instances| {
                let (ports, slots) =
                    echo_backends(&instances).ok_or("the two echo instances are not running with slots")?;
                let resolved =
                    zonal_json(exe, &context, &["resolve", "echo", "--region", "frankfurt-core", "-o", "json"])?;
                let gateway: SocketAddr = resolved["endpoints"]["echo"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("zonal resolve echo: no endpoint host:port in {resolved}"))?;
                Ok((ports, slots, gateway))
            })
        } else {
            Err("no context file yet".into())
        };
        match seen {
            Ok(found) => break found,
            Err(why) if Instant::now() >= deadline => {
                return Err(Failure::new(
                    1,
                    format!("echo not resolvable after 60 s: {why} (see {})", up_log.display()),
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let direct = ports.iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect();
    Ok(Stack { _up: up, direct, slots, gateway })
}

fn measure(
    args: &Args,
    cfg: &Config,
    haproxy: bool,
    (client_core, server_core): (Option<usize>, Option<usize>),
    exe: &Path,
    descriptor: &Path,
    work: &Path,
) -> Result<(), Failure> {
    let poll = args.gateway_poll.map(|p| format!("{}us", p.as_micros()));
    let poll: Vec<&str> = poll.iter().flat_map(|p| ["--gateway-poll", p.as_str()]).collect();
    let stack = start_stack(exe, descriptor, &work.join("current"), server_core, &poll)?;
    let reference = match &args.reference {
        Some(r) => Some(start_stack(r, descriptor, &work.join("reference"), server_core, &[])?),
        None => None,
    };
    let (direct, slots) = (stack.direct.clone(), stack.slots);
    let mut paths = vec![
        gateway::Path { name: "direct".into(), addrs: direct.clone() },
        gateway::Path { name: "gateway".into(), addrs: vec![stack.gateway] },
    ];
    if let Some(r) = &reference {
        paths.push(gateway::Path { name: "gateway-ref".into(), addrs: vec![r.gateway] });
    }
    let _haproxy = if haproxy {
        let port = free_port()?;
        let mut text = format!(
            "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n\
             frontend echo\n  bind 127.0.0.1:{port}\n  default_backend echo\nbackend echo\n  balance leastconn\n"
        );
        for (n, a) in direct.iter().enumerate() {
            text.push_str(&format!("  server s{} {a} maxconn {slots}\n", n + 1));
        }
        let cfg_path = work.join("haproxy.cfg");
        std::fs::write(&cfg_path, text)
            .map_err(|e| Failure::new(1, format!("cannot write {}: {e}", cfg_path.display())))?;
        let hlog = work.join("haproxy.log");
        let (out, err) = log_file(&hlog)?;
        let child = pinned(Path::new("haproxy"), server_core)
            .arg("-db")
            .arg("-f")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Failure::new(1, format!("--peer haproxy: cannot start haproxy: {e}")))?;
        let guard = Guard { child, label: "haproxy" };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_listening(addr, "haproxy", &hlog)?;
        paths.push(gateway::Path { name: "haproxy".into(), addrs: vec![addr] });
        Some(guard)
    } else {
        None
    };
    let _bare = if args.bare_relay {
        let relay = gateway::BareRelay::start(direct.clone(), move || match server_core {
            Some(core) => pin_self(core).map_err(|f| f.message),
            None => Ok(()),
        })
        .map_err(|e| Failure::new(1, e.message))?;
        paths.push(gateway::Path { name: "bare-relay".into(), addrs: vec![relay.addr()] });
        Some(relay)
    } else {
        None
    };
    if let Some(core) = client_core {
        pin_self(core)?;
    }
    let bar = Bar::new();
    let rounds =
        gateway::run(&paths, cfg, &mut |d, t, w| bar.report(d, t, w)).map_err(|e| Failure::new(1, e.message))?;
    drop(bar);
    let csv = write(&args.out, "gateway.csv", &csv_of(&rounds))?;
    let pinning = match (client_core, server_core) {
        (Some(c), Some(s)) => format!("client pinned to core {c}; zonal up (domain, zone, gateway, echo instances), haproxy and the bare relay's threads to core {s} (sched_setaffinity)"),
        _ => "one core: client and servers share it (no pinning)".into(),
    };
    let polling = match args.gateway_poll {
        Some(p) => format!("the gateway's relay polls for {} µs (--gateway-poll)", p.as_micros()),
        None => "the gateway's relay polls for its build's default (zonal zone --gateway-poll)".into(),
    };
    let notes = [pinning, polling];
    let summaries = summaries(&rounds, &paths, cfg, &notes);
    let _ = std::io::stdout().flush();
    finish(args, &summaries, &[csv])
}

fn csv_of(rounds: &[Round]) -> String {
    let mut s = String::from(
        "round,path,min_us,p50_us,p90_us,p99_us,max_us,round_trips,secs,round_trips_per_s,open_p50_us,open_p99_us,cpu_us_per_round_trip\n",
    );
    for r in rounds {
        s.push_str(&format!(
            "{},{},{:.2},{:.2},{:.2},{:.2},{:.2},{},{:.4},{:.0},{:.2},{:.2},{:.2}\n",
            r.round,
            r.path,
            r.min,
            r.p50,
            r.p90,
            r.p99,
            r.max,
            r.round_trips,
            r.secs,
            r.per_second(),
            r.open_p50,
            r.open_p99,
            r.cpu_us
        ));
    }
    s
}

fn triple((lo, med, hi): (f64, f64, f64), ratio: bool) -> String {
    if ratio {
        format!("{lo:.3} / {med:.3} / {hi:.3}")
    } else if hi.abs().max(lo.abs()) >= 1000.0 {
        format!("{lo:.0} / {med:.0} / {hi:.0}")
    } else {
        format!("{lo:.1} / {med:.1} / {hi:.1}")
    }
}

fn summaries(rounds: &[Round], paths: &[gateway::Path], cfg: &Config, setup: &[String]) -> Vec<Summary> {
    let headers: Vec<String> =
        std::iter::once("path".to_string()).chain(gateway::STATS.iter().map(|s| s.to_string())).collect();
    let per_path = Summary {
        title: format!(
            "gateway: {} rounds per path, interleaved; each {} connection(s) × {} timed round trips of {} bytes \
             (after {} untimed), preceded by {} sequential session opens (connect, greeting, one echo, close); \
             latency µs, min / median / max across rounds",
            cfg.rounds, cfg.conc, cfg.round_trips, cfg.msg, cfg.warmup, cfg.opens
        ),
        headers: headers.clone(),
        rows: paths
            .iter()
            .map(|p| {
                std::iter::once(p.name.clone())
                    .chain(gateway::per_path(rounds, &p.name).into_iter().map(|(_, t)| triple(t, false)))
                    .collect()
            })
            .collect(),
        notes: setup
            .iter()
            .cloned()
            .chain([
                "the direct row's spread across rounds is the measurement's noise floor".into(),
                "cpu/rt: CPU time of the whole machine (all cores and processes) per round trip, from /proc/stat's 10 ms ticks"
                    .into(),
            ])
            .collect(),
    };
    let added = Summary {
        title: "added over direct (the current build's echo instances) in the same round: latency µs (path − direct), rt/s as path / direct; \
                min / median / max across rounds"
            .into(),
        headers,
        rows: paths
            .iter()
            .filter(|p| p.name != "direct")
            .map(|p| {
                std::iter::once(format!("{} − direct", p.name))
                    .chain(gateway::added(rounds, &p.name, "direct").into_iter().map(|(s, t)| triple(t, s == "rt/s")))
                    .collect()
            })
            .collect(),
        notes: vec![],
    };
    let mut out = vec![per_path, added];
    let against = [
        ("gateway-ref", "the reference build's gateway", vec![]),
        ("haproxy", "haproxy", vec![]),
        (
            "bare-relay",
            "the bare relay (the floor of a user-space relay here)",
            vec![
                "gateway − bare-relay: what the gateway's own work adds beyond moving the bytes through one more hop \
                  (admission, slots and ledger are per session, not per round trip)"
                    .to_string(),
            ],
        ),
    ];
    for (other, what, notes) in against {
        if paths.iter().any(|p| p.name == other) {
            out.push(Summary {
                title: format!(
                    "gateway against {what} in the same round: latency µs (gateway − {other}), rt/s as gateway / {other}"
                ),
                headers: gateway::STATS.iter().map(|s| s.to_string()).collect(),
                rows: vec![gateway::added(rounds, "gateway", other)
                    .into_iter()
                    .map(|(s, t)| triple(t, s == "rt/s"))
                    .collect()],
                notes,
            });
        }
    }
    if cfg.opens == 0 {
        // No session opens were timed: drop their columns.
        for sum in &mut out {
            let keep: Vec<bool> = sum.headers.iter().map(|h| !h.starts_with("open ")).collect();
            let drop_opens = |row: &mut Vec<String>| {
                let mut k = keep.iter();
                row.retain(|_| k.next().copied().unwrap_or(true));
            };
            drop_opens(&mut sum.headers);
            sum.rows.iter_mut().for_each(drop_opens);
        }
    }
    out
}
