//! `zonal up`: a whole domain on this machine, in the foreground.
//!
//! Starts one `zonal domain` and one `zonal zone` per zone of the infrastructure (default:
//! the embedded `examples/infrastructure.yaml`, 3 edge + 1 core zones) as child processes on
//! 127.0.0.1 ephemeral ports, creates a zone token per zone, writes the client context (URL
//! and admin token) that `zonal apply/get/describe/delete/logs` use by default, prints where
//! everything is, and stays in the foreground. A daemon that dies is restarted (zones adopt
//! their instances). Ctrl-C or SIGTERM stops the zones first (each stops its instances:
//! SIGTERM, then SIGKILL after the grace period), then the domain; no process is left.
//!
//! Each daemon runs in its own process group with a parent-death signal (SIGTERM), so even a
//! `kill -9` of `zonal up` stops the daemons — and the zones then stop their instances.
//!
//! Isolation: the state directory is made 0700 (nothing under it — stores, tokens, logs — is
//! reachable by an instance's uid), each zone reads its token from a 0600 file
//! (`--token-file`, so it is in no process's environment or command line), and the zones get
//! disjoint slices of `--instance-uids`, so a uid never serves two providers on this machine.
//!
//! `--tls`: every daemon serves HTTPS with a certificate from a local CA (`crate::tls`), and
//! every client verifies it; plain HTTP on 127.0.0.1 otherwise.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zonal_proto::wire::{CreateToken, TokenCreated, ZoneView};
use zonal_proto::Client;

use crate::common::{self, parse_duration, Context};
use crate::table::Table;
use crate::Failure;

/// The example infrastructure, embedded so `zonal up` works from any directory.
pub const DEFAULT_INFRASTRUCTURE: &str = include_str!("../../../examples/infrastructure.yaml");
/// The example knowledge base (OPERA workload tags → hardware profiles), embedded too.
pub const DEFAULT_KNOWLEDGE_BASE: &str = include_str!("../../../examples/knowledge-base.yaml");

#[derive(clap::Args)]
pub struct Args {
    /// Infrastructure file (default: the embedded example, 3 edge + 1 core zones).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// State directory: stores, tokens, logs, instance working directories.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Start from an empty state directory.
    #[arg(long)]
    pub fresh: bool,
    /// Port of the domain API (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Where to write the client context (default: $ZONAL_CONTEXT, else ~/.config/zonal/context.json).
    #[arg(long)]
    pub context: Option<PathBuf>,
    /// Grace period between SIGTERM and SIGKILL for instances.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub stop_grace: Duration,
    /// Zone heartbeat interval.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Once the domain is up, `zonal apply -f FILE` each of these service manifests.
    #[arg(long = "apply", value_name = "FILE")]
    pub apply: Vec<PathBuf>,
    /// Serve every daemon over HTTPS: a local CA and per-daemon certificates under
    /// <state>/tls (keys 0600); every client verifies (the context records the CA). Without
    /// it the daemons speak plain HTTP on 127.0.0.1.
    #[arg(long)]
    pub tls: bool,
    #[command(flatten)]
    pub slots: crate::zone::SlotArgs,
    #[command(flatten)]
    pub isolation: crate::zone::IsolationArgs,
    #[command(flatten)]
    pub consolidation: crate::domain::ConsolidationArgs,
    #[command(flatten)]
    pub decisions: crate::domain::DecisionArgs,
}

struct Daemon {
    label: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    /// Unexpected exits in a row (a run of `backoff::STABLE_AFTER_MS` starts over).
    restarts: u32,
    restart_at: Option<Instant>,
    /// When the running process was started.
    started: Option<Instant>,
}

impl Daemon {
    fn spawn(&mut self, exe: &Path) -> Result<(), Failure> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(zonal_store::files::FILE_MODE)
            .open(&self.log)
            .map_err(|e| Failure::new(1, format!("cannot open {}: {e}", self.log.display())))?;
        let _ = zonal_store::files::tighten_file(&self.log);
        let log2 = log.try_clone().map_err(|e| Failure::new(1, format!("cannot open {}: {e}", self.log.display())))?;
        let mut cmd = Command::new(exe);
        cmd.args(&self.args).stdin(Stdio::null()).stdout(log).stderr(log2).process_group(0);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| Failure::new(1, format!("cannot start {}: {e}", self.label)))?;
        self.child = Some(child);
        self.restart_at = None;
        self.started = Some(Instant::now());
        Ok(())
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            if let Ok(pid) = libc::pid_t::try_from(c.id()) {
                // SAFETY: signals the daemon's own process group.
                unsafe {
                    libc::kill(-pid, sig);
                }
            }
        }
    }

    /// Waits for the daemon to exit, up to `timeout`; true when it did.
    fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.as_mut().map(|c| c.try_wait()) {
                None | Some(Ok(Some(_))) | Some(Err(_)) => {
                    self.child = None;
                    return true;
                }
                Some(Ok(None)) => {}
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self, timeout: Duration) {
        self.signal(libc::SIGTERM);
        if !self.wait(timeout) {
            eprintln!("zonal up: {} did not stop within {timeout:?}: killing it", self.label);
            self.signal(libc::SIGKILL);
            self.wait(Duration::from_secs(2));
        }
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn wait_file(path: &Path, daemon: &mut Daemon, timeout: Duration) -> Result<String, Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(t) = std::fs::read_to_string(path) {
            if !t.trim().is_empty() {
                return Ok(t.trim().to_string());
            }
        }
        if daemon.wait(Duration::ZERO) {
            // A daemon that refused to start says why in its last line (`zonal: …`).
            let last = tail(&daemon.log, 1);
            if let Some(why) = last.strip_prefix("zonal: ") {
                return Err(Failure::new(1, format!("{} did not start: {why}", daemon.label)));
            }
            return Err(Failure::new(
                1,
                format!(
                    "{} exited during start-up; last lines of {}:\n{}",
                    daemon.label,
                    daemon.log.display(),
                    tail(&daemon.log, 15)
                ),
            ));
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(
                1,
                format!("{} did not start within {timeout:?}; see {}", daemon.label, daemon.log.display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `range` split into `n` disjoint slices of equal size, one per zone.
fn split_uids(range: (u32, u32), n: usize) -> Result<Vec<(u32, u32)>, Failure> {
    let size = u64::from(range.1 - range.0) + 1;
    let per = size / n.max(1) as u64;
    if per == 0 {
        return Err(Failure::new(
            2,
            format!(
                "--instance-uids {}-{} has fewer uids than the {n} zones; expected a larger range",
                range.0, range.1
            ),
        ));
    }
    Ok((0..n as u64)
        .map(|i| {
            let first = u64::from(range.0) + i * per;
            (first as u32, (first + per - 1) as u32)
        })
        .collect())
}

fn zone_token(rt: &tokio::runtime::Runtime, admin: &Client, dir: &Path, zone: &str) -> Result<String, Failure> {
    let path = dir.join(format!("{zone}.token"));
    // A token file an older version wrote may be readable by others.
    zonal_store::files::tighten_file(&path)
        .map_err(|e| Failure::new(1, format!("cannot make {} private: {e}", path.display())))?;
    if let Ok(t) = std::fs::read_to_string(&path) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_string());
        }
    }
    let t: TokenCreated = rt
        .block_on(admin.post("/1.0/tokens", &CreateToken { role: "zone".into(), name: zone.to_string(), ttl: None }))?;
    zonal_domain::write_secret(&path, &t.token).map_err(|e| Failure::new(1, e))?;
    Ok(t.token)
}

pub fn run(args: Args) -> Result<(), Failure> {
    let state = args.state.clone().unwrap_or_else(|| common::default_state_dir("up"));
    if args.fresh && state.exists() {
        std::fs::remove_dir_all(&state)
            .map_err(|e| Failure::new(1, format!("cannot empty {}: {e}", state.display())))?;
    }
    let logs = state.join("logs");
    // Instances run under other uids and are started in their working directories before
    // they drop privileges: nothing under the state directory is theirs to reach (0700), the
    // stores and tokens in it are 0600.
    let private = |dir: &Path| -> Result<(), Failure> {
        let made = zonal_store::files::private_dir(dir);
        if let Some(left) = made.map_err(|e| Failure::new(1, format!("cannot create {}: {e}", dir.display())))? {
            eprintln!("zonal up: {} keeps its mode: {}", left.path.display(), left.why);
        }
        Ok(())
    };
    private(&state)?;
    private(&logs)?;
    let state = state.canonicalize().unwrap_or(state);
    let logs = state.join("logs");
    let infra_path = match &args.file {
        Some(f) => f.canonicalize().map_err(|e| Failure::new(2, format!("{}: {e}", f.display())))?,
        None => {
            let p = state.join("infrastructure.yaml");
            std::fs::write(&p, DEFAULT_INFRASTRUCTURE)
                .map_err(|e| Failure::new(1, format!("cannot write {}: {e}", p.display())))?;
            p
        }
    };
    let loaded =
        crate::validate::load_valid(std::slice::from_ref(&infra_path), &crate::validate::DatasetArgs::default())?;
    let infra = loaded.bundle.infrastructure();
    let zones: Vec<String> = infra.zones.iter().filter(|z| !z.is_transit()).map(|z| z.name.clone()).collect();
    if zones.is_empty() {
        return Err(Failure::new(
            2,
            format!("{}: no zones with hosts; expected an Infrastructure document", infra_path.display()),
        ));
    }
    let domain_name = infra.domain.clone().unwrap_or_else(|| infra.name.clone());
    args.isolation.settings()?;
    let uid_slices = split_uids(args.isolation.instance_uids, zones.len())?;
    let exe = std::env::current_exe().map_err(|e| Failure::new(1, format!("cannot find this executable: {e}")))?;
    let context_path = args.context.clone().unwrap_or_else(common::default_context_path);
    let rt = common::client_runtime()?;
    // HTTPS: the local CA (kept across runs) and a fresh certificate per daemon.
    let ca = if args.tls { Some(crate::tls::LocalCa::open_or_create(&state.join("tls"))?) } else { None };
    let ca_pem = ca.as_ref().map(|c| common::read_ca(&c.cert)).transpose()?;
    let tls_args = |name: &str| -> Result<Vec<String>, Failure> {
        let Some(ca) = &ca else { return Ok(Vec::new()) };
        let issued = ca.issue(name)?;
        Ok(common::TlsArgs { tls_cert: Some(issued.cert), tls_key: Some(issued.key), tls_ca: Some(ca.cert.clone()) }
            .to_args())
    };

    // The domain.
    let ready = state.join("domain.url");
    let _ = std::fs::remove_file(&ready);
    let mut domain = Daemon {
        label: "the domain orchestrator".into(),
        args: vec![
            "domain".into(),
            "--listen".into(),
            format!("127.0.0.1:{}", args.port),
            "--state".into(),
            state.join("domain").display().to_string(),
            "--name".into(),
            domain_name.clone(),
            "--ready-file".into(),
            ready.display().to_string(),
        ]
        .into_iter()
        .chain(args.consolidation.to_args())
        .chain(args.decisions.to_args())
        .chain(tls_args("domain")?)
        .collect(),
        env: Vec::new(),
        log: logs.join("domain.log"),
        child: None,
        restarts: 0,
        restart_at: None,
        started: None,
    };
    domain.spawn(&exe)?;
    let mut zones_d: Vec<Daemon> = Vec::new();
    let result = (|| -> Result<(String, String), Failure> {
        let url = wait_file(&ready, &mut domain, Duration::from_secs(20))?;
        // A restarted domain must come back on the same address: the zones know it.
        if let Some(i) = domain.args.iter().position(|a| a == "--listen") {
            domain.args[i + 1] = url.trim_start_matches("https://").trim_start_matches("http://").to_string();
        }
        let token_file = state.join("domain").join("admin.token");
        let admin_token = std::fs::read_to_string(&token_file)
            .map_err(|e| Failure::new(1, format!("cannot read the admin token {}: {e}", token_file.display())))?
            .trim()
            .to_string();
        let admin = Client::with_ca(&url, Some(admin_token.clone()), Duration::from_secs(10), ca_pem.as_deref())?;
        let zdir = state.join("zones");
        private(&zdir)?;
        for (z, uids) in zones.iter().zip(&uid_slices) {
            zone_token(&rt, &admin, &zdir, z)?;
            let zready = zdir.join(format!("{z}.url"));
            let _ = std::fs::remove_file(&zready);
            let mut d = Daemon {
                label: format!("zone {z}"),
                args: vec![
                    "zone".into(),
                    "--name".into(),
                    z.clone(),
                    "--listen".into(),
                    "127.0.0.1:0".into(),
                    "--state".into(),
                    zdir.join(z).display().to_string(),
                    "--domain".into(),
                    url.clone(),
                    "--infrastructure".into(),
                    infra_path.display().to_string(),
                    "--heartbeat".into(),
                    format!("{}ms", args.heartbeat.as_millis()),
                    "--stop-grace".into(),
                    format!("{}ms", args.stop_grace.as_millis()),
                    "--ready-file".into(),
                    zready.display().to_string(),
                    "--token-file".into(),
                    zdir.join(format!("{z}.token")).display().to_string(),
                ]
                .into_iter()
                .chain(args.slots.to_args())
                .chain(args.isolation.to_args(*uids))
                .chain(tls_args(&format!("zone-{z}"))?)
                .collect(),
                env: Vec::new(),
                log: logs.join(format!("zone-{z}.log")),
                child: None,
                restarts: 0,
                restart_at: None,
                started: None,
            };
            d.spawn(&exe)?;
            zones_d.push(d);
        }
        for (i, z) in zones.iter().enumerate() {
            wait_file(&zdir.join(format!("{z}.url")), &mut zones_d[i], Duration::from_secs(20))?;
        }
        // Wait until every zone has registered and sent a heartbeat.
        let deadline = Instant::now() + Duration::from_secs(20);
        let views = loop {
            let views: Vec<ZoneView> = rt.block_on(admin.get("/1.0/zones"))?;
            let up = views
                .iter()
                .filter(|v| v.state == "available" && zones.contains(&v.name) && v.last_seen_ms.is_some())
                .count();
            if up == zones.len() {
                break views;
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(
                    1,
                    format!("only {up} of {} zones registered within 20 s; see {}", zones.len(), logs.display()),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The infrastructure document (links, prices, proximity classes: the placement
        // pipeline decides with them), the embedded knowledge base (OPERA profiles for tagged
        // components), and the measured latencies and latency model (resolution uses them).
        let mut docs = loaded.bundle.clone();
        if docs.knowledge_bases().next().is_none() {
            match zonal_descriptor::read_yaml_str("knowledge-base.yaml (embedded)", DEFAULT_KNOWLEDGE_BASE)
                .bundle
                .knowledge_bases()
                .next()
            {
                Some(kb) => docs.documents.push(zonal_model::Document::KnowledgeBase(kb.clone())),
                None => {
                    tracing::warn!("the embedded knowledge base does not read; tagged components keep their resources")
                }
            }
        }
        rt.block_on(crate::apply::push_documents(&admin, &docs))?;
        if let Some(change) = crate::apply::geography_of(&loaded.bundle) {
            rt.block_on(crate::apply::push_geography(&admin, &change))?;
        }
        common::write_atomic(
            &context_path,
            &serde_json::to_string_pretty(&Context {
                url: url.clone(),
                token: admin_token.clone(),
                ca: ca.as_ref().map(|c| c.cert.clone()),
            })
            .unwrap_or_default(),
        )
        .map_err(|e| Failure::new(1, e))?;
        println!("zonal up: domain {domain_name:?} with {} zones running on this machine\n", zones.len());
        println!("  API       {url}   (OpenAPI: {url}/openapi.json, metrics: {url}/metrics with the admin token)");
        println!("  token     {} (admin)", token_file.display());
        if let Some(ca) = &ca {
            println!("  TLS       every daemon serves HTTPS; CA {} (clients verify against it)", ca.cert.display());
        }
        println!("  context   {} (used by zonal apply/get/describe/delete/logs)", context_path.display());
        println!("  state     {}", state.display());
        println!("  logs      {} (daemons); instance logs: zonal logs INSTANCE\n", logs.display());
        let mut t = Table::new(["ZONE", "TIER", "HOSTS", "ENDPOINT"]);
        for v in &views {
            t.row([
                v.name.clone(),
                v.tier.clone().unwrap_or_else(|| "-".into()),
                v.hosts.to_string(),
                v.endpoint.clone(),
            ]);
        }
        print!("{}", t.render());
        if args.apply.is_empty() {
            println!("\nnext: zonal apply -f examples/epg.yaml && zonal get instances      (Ctrl-C stops everything)");
        }
        Ok((url, admin_token))
    })();
    let url = match result {
        Ok((url, token)) => {
            apply_manifests(&args.apply, &url, &token, ca.as_ref().map(|c| c.cert.as_path()));
            url
        }
        Err(e) => {
            for z in zones_d.iter_mut() {
                z.stop(args.stop_grace + Duration::from_secs(10));
            }
            domain.stop(Duration::from_secs(10));
            return Err(e);
        }
    };

    // Foreground: supervise until SIGINT/SIGTERM.
    rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let stop = common::shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => {
                    for d in std::iter::once(&mut domain).chain(zones_d.iter_mut()) {
                        if d.child.is_some() && d.wait(Duration::ZERO) {
                            // A daemon that ran healthy for a while starts over at the first step.
                            let ran_for = d.started.map_or(0, |s| s.elapsed().as_millis() as u64);
                            let (restarts, delay) = zonal_control::backoff::after_crash(
                                &zonal_control::backoff::Backoff::RETRY,
                                d.restarts,
                                ran_for,
                            );
                            let delay = Duration::from_millis(delay);
                            eprintln!("zonal up: {} exited unexpectedly; restarting it in {delay:?} (log: {})", d.label, d.log.display());
                            d.restarts = restarts;
                            d.restart_at = Some(Instant::now() + delay);
                        }
                        if d.restart_at.is_some_and(|at| Instant::now() >= at) {
                            if let Err(e) = d.spawn(&exe) {
                                eprintln!("zonal up: {}", e.message);
                                d.restart_at = Some(Instant::now() + Duration::from_secs(5));
                            }
                        }
                    }
                }
            }
        }
    });
    println!("\nzonal up: stopping the zones (and their instances), then the domain");
    for z in zones_d.iter() {
        z.signal(libc::SIGTERM);
    }
    for z in zones_d.iter_mut() {
        z.stop(args.stop_grace + Duration::from_secs(10));
    }
    domain.stop(Duration::from_secs(10));
    // The context pointed at this domain, which is gone now.
    let ours = std::fs::read_to_string(&context_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Context>(&t).ok())
        .is_some_and(|c| c.url == url);
    if ours {
        let _ = std::fs::remove_file(&context_path);
    }
    println!("zonal up: stopped");
    Ok(())
}

/// `zonal apply -f FILE` against the domain at `url` with the admin `token` — given by
/// environment, not on the command line: every process of the machine (instances included)
/// may read another's command line (`/proc/<pid>/cmdline`), not its environment.
fn apply_command(exe: &Path, file: &Path, url: &str, token: &str) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg("apply").arg("-f").arg(file).env("ZONAL_URL", url).env("ZONAL_TOKEN", token);
    cmd
}

/// Runs `zonal apply -f FILE` against the new domain for each manifest given with `--apply`.
/// A failed apply is reported and the domain keeps running, so the user can fix and retry.
fn apply_manifests(files: &[PathBuf], url: &str, token: &str, ca: Option<&Path>) {
    let Ok(exe) = std::env::current_exe() else { return };
    for file in files {
        println!("\n$ zonal apply -f {}", file.display());
        let mut cmd = apply_command(&exe, file, url, token);
        if let Some(ca) = ca {
            cmd.arg("--ca").arg(ca);
        }
        let status = cmd.status();
        match status {
            Ok(s) if s.success() => {}
            Ok(_) => eprintln!("zonal up: applying {} failed (see above); the domain keeps running", file.display()),
            Err(e) => eprintln!("zonal up: cannot run zonal apply: {e}"),
        }
    }
    if !files.is_empty() {
        println!("\nrunning; try: zonal get instances, zonal describe service NAME      (Ctrl-C stops everything)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_is_on_no_command_line() {
        let cmd = apply_command(Path::new("/bin/zonal"), Path::new("web.yaml"), "http://127.0.0.1:1", "s3cret");
        assert!(cmd.get_args().all(|a| a != "s3cret"), "{cmd:?}");
        let env: Vec<_> = cmd.get_envs().collect();
        assert!(env.contains(&(std::ffi::OsStr::new("ZONAL_TOKEN"), Some(std::ffi::OsStr::new("s3cret")))));
    }

    #[test]
    fn zones_get_disjoint_uid_slices() {
        let slices = split_uids((200_000, 265_535), 4).expect("slices");
        assert_eq!(slices, vec![(200_000, 216_383), (216_384, 232_767), (232_768, 249_151), (249_152, 265_535)]);
        assert_eq!(split_uids((10, 12), 2).expect("slices"), vec![(10, 10), (11, 11)]);
        let e = split_uids((10, 11), 3).expect_err("too few");
        assert!(e.message.contains("fewer uids than the 3 zones"), "{}", e.message);
    }
}
