//! A harness for tests that run the real `zonal` binary: daemons on 127.0.0.1 ephemeral
//! ports in a temporary directory, and a guard that kills every process the test started —
//! daemons and the instances they started — even when the test panics.
//!
//! Instances are found by their working directory: the zone gives each instance one under
//! its state directory, which lives inside the test's temporary directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use zonal_proto::Client;

pub const ZONAL: &str = env!("CARGO_BIN_EXE_zonal");

pub fn repo_root() -> PathBuf {
    zonal_testdata::repo_root()
}

pub fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    try_wait_for(what, timeout, || f().ok_or_else(String::new)).unwrap_or_else(|e| panic!("{e}"))
}

/// Polls `f` until it returns `Ok`; after `timeout`, says what was awaited and `f`'s last
/// answer (why it was not yet so).
pub fn try_wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match f() {
            Ok(v) => return Ok(v),
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            let last = if last.is_empty() { String::new() } else { format!("; last seen: {last}") };
            return Err(format!("timed out after {timeout:?} waiting for {what}{last}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits up to `timeout` for a daemon's ready file; panics with its log if it exits first.
pub fn wait_ready_within(file: &Path, child: &mut Child, log: &Path, timeout: Duration) -> String {
    wait_for(&format!("{} to be written", file.display()), timeout, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "daemon exited ({status}) during start-up; log {}:\n{}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::fs::read_to_string(file).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    })
}

/// Pids of live processes whose working directory is under `dir`.
pub fn processes_under(dir: &Path) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return out };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) else { continue };
        if !cwd.starts_with(dir) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()).unwrap_or("");
        if state != "Z" && state != "X" {
            out.push(pid);
        }
    }
    out.sort();
    out
}

fn kill_group(pid: u32, sig: i32) {
    if let Ok(p) = i32::try_from(pid) {
        if p > 1 {
            // SAFETY: signals a process group the test created.
            unsafe {
                libc::kill(-p, sig);
            }
        }
    }
}

/// A daemon started by a test.
pub struct Daemon {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// SIGTERM, then waits for the exit.
    pub fn stop(&mut self) {
        kill_group(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "daemon {} did not stop after SIGTERM; log:\n{}",
            self.pid(),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
    /// SIGKILL to the daemon alone (its instances live on in their own groups).
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub rt: tokio::runtime::Runtime,
    spawned: Vec<u32>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("zonal-it-").tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("run")).expect("run dir");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Harness { dir, rt, spawned: Vec::new() }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().canonicalize().expect("temp dir path")
    }

    /// Runs `zonal ARGS` in its own process group, cwd in the temp dir, output to `log`.
    pub fn spawn(&mut self, args: &[&str], env: &[(&str, &str)], log: &str) -> (Child, PathBuf) {
        self.spawn_program(Path::new(ZONAL), args, env, log)
    }

    /// Runs `exe ARGS` as [`Harness::spawn`] runs `zonal`: the operator's `ZONAL_*` removed,
    /// `env` added, its pid remembered for the clean-up.
    fn spawn_program(&mut self, exe: &Path, args: &[&str], env: &[(&str, &str)], log: &str) -> (Child, PathBuf) {
        use std::os::unix::process::CommandExt;
        let log_path = self.path().join(log);
        let f = std::fs::File::create(&log_path).expect("log file");
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .current_dir(self.path().join("run"))
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("log"))
            .stderr(f)
            .env_remove("ZONAL_URL")
            .env_remove("ZONAL_TOKEN")
            .env("ZONAL_CONTEXT", self.path().join("no-context.json"))
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn zonal");
        self.spawned.push(child.id());
        (child, log_path)
    }

    fn wait_ready(&self, file: &Path, child: &mut Child, log: &Path) -> String {
        wait_ready_within(file, child, log, Duration::from_secs(20))
    }

    /// Spawns `zonal domain` on `state` and `listen`, writing its URL to `ready` once it
    /// listens (the file is removed first); `wait_ready_within` waits for it.
    pub fn spawn_domain(
        &mut self,
        state: &Path,
        listen: &str,
        ready: &Path,
        extra: &[&str],
        log: &str,
    ) -> (Child, PathBuf) {
        let _ = std::fs::remove_file(ready);
        let mut args = vec![
            "domain",
            "--listen",
            listen,
            "--state",
            state.to_str().expect("utf-8 path"),
            "--ready-file",
            ready.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        self.spawn(&args, &[], log)
    }

    /// Spawns zone `name` (hosts from the example infrastructure) for the domain at `domain`
    /// on `<dir>/zones/<name>`, writing its URL to `ready` (removed first).
    pub fn spawn_zone(
        &mut self,
        name: &str,
        domain: &str,
        token: &str,
        ready: &Path,
        extra: &[&str],
        log: &str,
    ) -> (Child, PathBuf) {
        let state = self.path().join("zones").join(name);
        let _ = std::fs::remove_file(ready);
        let infra = example("infrastructure.yaml");
        let mut args = vec![
            "zone",
            "--name",
            name,
            "--listen",
            "127.0.0.1:0",
            "--state",
            state.to_str().expect("utf-8 path"),
            "--domain",
            domain,
            "--infrastructure",
            infra.to_str().expect("utf-8 path"),
            "--heartbeat",
            "300ms",
            "--ready-file",
            ready.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        self.spawn(&args, &[("ZONAL_ZONE_TOKEN", token)], log)
    }

    /// Starts a domain on `listen` (e.g. `127.0.0.1:0`); returns it and the admin token.
    pub fn domain(&mut self, listen: &str) -> (Daemon, String) {
        self.domain_with(listen, &["--zone-timeout", "30s"])
    }

    /// Starts a domain with extra flags.
    pub fn domain_with(&mut self, listen: &str, extra: &[&str]) -> (Daemon, String) {
        let state = self.path().join("domain");
        let ready = self.path().join("domain.url");
        let (mut child, log) = self.spawn_domain(&state, listen, &ready, extra, "domain.log");
        let url = self.wait_ready(&ready, &mut child, &log);
        let token = std::fs::read_to_string(state.join("admin.token")).expect("admin token").trim().to_string();
        (Daemon { child, url, log }, token)
    }

    /// Starts zone `name` (hosts from the example infrastructure) for the domain at `domain`.
    pub fn zone(&mut self, name: &str, domain: &str, token: &str) -> Daemon {
        self.zone_with(name, domain, token, &[])
    }

    /// Starts zone `name` with extra flags (e.g. the scaler's cooldowns).
    pub fn zone_with(&mut self, name: &str, domain: &str, token: &str, extra: &[&str]) -> Daemon {
        let ready = self.path().join(format!("zone-{name}.url"));
        let args: Vec<&str> = ["--stop-grace", "3s"].into_iter().chain(extra.iter().copied()).collect();
        let (mut child, log) = self.spawn_zone(name, domain, token, &ready, &args, &format!("zone-{name}.log"));
        let url = self.wait_ready(&ready, &mut child, &log);
        Daemon { child, url, log }
    }

    pub fn client(&self, url: &str, token: Option<&str>) -> Client {
        Client::new(url, token.map(str::to_string), Duration::from_secs(10)).expect("client")
    }

    /// `method path body` against `client`; Ok(json) or Err((status, json body)).
    pub fn call(&self, client: &Client, method: &str, path: &str, body: Option<Value>) -> Result<Value, (u16, Value)> {
        let m = zonal_proto::client::Method::from_bytes(method.as_bytes()).expect("method");
        match self.rt.block_on(client.send_raw(m, path, body)) {
            Ok((_, bytes)) => Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null)),
            Err(zonal_proto::ClientError::Api { status, body, .. }) => {
                Err((status, serde_json::to_value(body).unwrap_or_default()))
            }
            Err(e) => Err((0, Value::String(e.to_string()))),
        }
    }

    pub fn get(&self, client: &Client, path: &str) -> Value {
        self.call(client, "GET", path, None).unwrap_or_else(|e| panic!("GET {path}: {e:?}"))
    }

    /// A token for `name` with `role`, made with the admin token.
    pub fn token(&self, admin: &Client, role: &str, name: &str) -> String {
        let v = self
            .call(admin, "POST", "/1.0/tokens", Some(serde_json::json!({"role": role, "name": name})))
            .unwrap_or_else(|e| panic!("token: {e:?}"));
        v["token"].as_str().expect("token").to_string()
    }

    /// Instance processes (working directory under a zone's state).
    pub fn instance_processes(&self) -> Vec<u32> {
        processes_under(&self.path().join("zones"))
    }

    /// Waits up to 5 s for every process started by this test to be gone; what is still
    /// there then, each with its command line and working directory.
    pub fn leftovers(&self) -> Vec<String> {
        let dir = self.path();
        for _ in 0..200 {
            if processes_under(&dir).is_empty() {
                return Vec::new();
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        processes_under(&dir)
            .into_iter()
            .map(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_string())
                    .unwrap_or_default();
                let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
                format!("pid {pid} ({cmdline}) in {}", cwd.display())
            })
            .collect()
    }

    /// Waits until no process started by this test is left.
    pub fn assert_no_leftovers(&self) {
        let left = self.leftovers();
        assert!(left.is_empty(), "processes left behind: {left:?}");
    }
}

/// A whole domain started by `zonal up` (domain and zone managers as its children).
pub struct Up {
    pub child: Child,
    pub log: PathBuf,
    /// The client context `zonal up` wrote; `zonal` commands run with `ZONAL_CONTEXT` set to it.
    pub context: PathBuf,
    pub url: String,
    pub token: String,
}

impl Up {
    /// Ctrl-C, as a user would; waits until `zonal up` has exited.
    pub fn stop(&mut self) {
        // SAFETY: interrupts the process this test started.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        wait_for("zonal up to exit", Duration::from_secs(40), || self.child.try_wait().ok().flatten());
    }

    /// Runs `zonal ARGS` against this domain (through its context) and returns its
    /// stdout; panics with the output when it fails.
    pub fn zonal(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.try_zonal(args);
        assert!(ok, "zonal {args:?} failed:\n{out}{err}");
        out
    }

    /// Runs `zonal ARGS` against this domain: (success, stdout, stderr).
    pub fn try_zonal(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(ZONAL)
            .args(args)
            .env("ZONAL_CONTEXT", &self.context)
            .env_remove("ZONAL_URL")
            .env_remove("ZONAL_TOKEN")
            .stdin(Stdio::null())
            .output()
            .expect("run zonal");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Harness {
    /// `zonal up -f INFRA` with `infrastructure` as the file's text and `extra` flags; waits
    /// until every zone has registered (the context is written then).
    pub fn up(&mut self, infrastructure: &str, extra: &[&str]) -> Up {
        let (state, context) = (self.path().join("up"), self.path().join("context.json"));
        self.up_from(Path::new(ZONAL), infrastructure, &state, &context, extra)
    }

    /// `exe up` on `infrastructure`, its state in `state`, its context written to `context`;
    /// returns once the context is written.
    fn up_from(&mut self, exe: &Path, infrastructure: &str, state: &Path, context: &Path, extra: &[&str]) -> Up {
        let infra = self.path().join("infrastructure.yaml");
        std::fs::write(&infra, infrastructure).expect("write the infrastructure");
        let mut args = vec![
            "up",
            "-f",
            infra.to_str().expect("utf-8 path"),
            "--state",
            state.to_str().expect("utf-8 path"),
            "--context",
            context.to_str().expect("utf-8 path"),
            "--heartbeat",
            "300ms",
            "--stop-grace",
            "3s",
        ];
        args.extend_from_slice(extra);
        let (mut child, log) = self.spawn_program(exe, &args, &[], "up.log");
        let text = wait_for("zonal up to write the context", Duration::from_secs(60), || {
            if let Ok(Some(s)) = child.try_wait() {
                panic!("zonal up exited ({s}):\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            std::fs::read_to_string(context).ok().filter(|t| !t.trim().is_empty())
        });
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("context {text:?}: {e}"));
        let url = v["url"].as_str().expect("url in the context").to_string();
        let token = v["token"].as_str().expect("token in the context").to_string();
        Up { child, log, context: context.to_path_buf(), url, token }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for pid in &self.spawned {
            kill_group(*pid, libc::SIGKILL);
        }
        for pid in processes_under(&self.path()) {
            kill_group(pid, libc::SIGKILL);
        }
        // ZONAL_TEST_KEEP=1 keeps the temporary directory (daemon logs, stores) to look at.
        if std::env::var_os("ZONAL_TEST_KEEP").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
            eprintln!("kept {}", dir.keep().display());
        }
    }
}

/// Registers and deploys `file` through the API; returns the service id.
pub fn deploy(h: &Harness, c: &Client, file: &str) -> String {
    let text = std::fs::read_to_string(example(file)).expect("example");
    let v = h.call(c, "POST", "/1.0/services", Some(serde_json::json!({"manifest": text}))).expect("register");
    let id = v["serviceid"].as_str().expect("serviceid").to_string();
    h.call(c, "PUT", &format!("/1.0/services/{id}/state"), Some(serde_json::json!({"state": "deploy"})))
        .expect("deploy");
    id
}

/// Waits until service `id` is deployed with `n` running instances; returns the instances.
pub fn wait_running(h: &Harness, c: &Client, id: &str, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} running instances of {id}"), Duration::from_secs(30), || {
        let v = h.call(c, "GET", &format!("/1.0/services/{id}?instances=true"), None).ok()?;
        let inst = v["instances"].as_array()?.clone();
        let running = inst.iter().filter(|i| i["state"] == "running").count();
        (v["state"] == "deployed" && running == n && inst.len() == n).then_some(inst)
    })
}

/// The public port named `port` of the instance of `component`.
pub fn port_of(instances: &[Value], component: &str, port: &str) -> u16 {
    let i = instances.iter().find(|i| i["component"] == component).expect("component instance");
    let p = i["ports"].as_array().expect("ports").iter().find(|p| p["name"] == port).expect("port");
    p["public"].as_u64().expect("port number") as u16
}

/// A variable of a running process's initial environment (`/proc/<pid>/environ`; readable by
/// its own uid and root).
pub fn environ_var(pid: u32, name: &str) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_else(|e| panic!("the environment of {pid}: {e}"));
    let prefix = format!("{name}=");
    raw.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A client of the admin API of the instance of `component` among `instances`, carrying the
/// instance's admin secret (read from its environment, as root: what its zone gave it).
pub fn instance_admin(instances: &[Value], component: &str) -> Client {
    let port = port_of(instances, component, "admin");
    let pid = pid_of(instances, component);
    let secret = environ_var(pid, zonal_proto::env::ZONAL_ADMIN_TOKEN)
        .unwrap_or_else(|| panic!("instance {pid} of {component} has no {}", zonal_proto::env::ZONAL_ADMIN_TOKEN));
    Client::new(&format!("http://127.0.0.1:{port}"), Some(secret), Duration::from_secs(10)).expect("client")
}

pub fn pid_of(instances: &[Value], component: &str) -> u32 {
    instances.iter().find(|i| i["component"] == component).and_then(|i| i["pid"].as_u64()).expect("pid") as u32
}

impl Harness {
    /// Runs `exe ARGS` (a `zonal` executable elsewhere, e.g. a link in a directory only root
    /// can reach) as [`Harness::spawn`] runs `zonal`.
    pub fn spawn_exe(&mut self, exe: &Path, args: &[&str], log: &str) -> (Child, PathBuf) {
        self.spawn_program(exe, args, &[], log)
    }

    /// [`Harness::up`] run from the executable `exe`, its state in `state` and its context
    /// written to `context`.
    pub fn up_exe(&mut self, exe: &Path, infrastructure: &str, state: &Path, context: &Path) -> Up {
        self.up_from(exe, infrastructure, state, context, &[])
    }
}
