//! The process adaptor: every instance is a real child process on this machine.
//!
//! * **Isolation that needs no privileges.** Each instance gets its own working directory
//!   (`<state>/instances/<id>`), its own environment (see `zonal_proto::env`), stdout and
//!   stderr appended to `<workdir>/instance.log`, and its own **process group**, so signals
//!   reach the instance and everything it forks, and a Ctrl-C aimed at the terminal's
//!   foreground group does not.
//! * **Limits where the OS allows.** `RLIMIT_NOFILE` (4096, or a `nofile`/`files` resource),
//!   `RLIMIT_AS` from the component's memory (address space, not resident memory, so it is
//!   given headroom: `max(2 × memory, memory + 256 MiB)`), `RLIMIT_CORE` 0. When cgroup v2 is
//!   mounted at `/sys/fs/cgroup` and writable, each instance also gets a cgroup with
//!   `memory.max` and `cpu.max`; otherwise this is skipped and said once in the log.
//! * **Survives its zone manager.** No parent-death signal is set: when the zone manager
//!   crashes the instances keep running, and the restarted manager adopts them by pid,
//!   kernel start time and the per-instance token found in `/proc/<pid>/environ`.
//! * **Clean stop.** SIGTERM to the group, SIGKILL to the group after the grace period.
//! * `zonal` as the program means this very executable (`std::env::current_exe()`).
//!
//! Ports are chosen by binding `127.0.0.1:0` and releasing the port; a port handed out is
//! not handed out again by this adaptor while it runs.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zonal_model::resources::{CPU, MEMORY};
use zonal_proto::env::PortMapping;
use zonal_proto::Client;

use crate::adaptor::{BoxFut, DcAdaptor, LaunchSpec, Launched, ProcessStatus};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The embedded default adaptor.
pub struct ProcessAdaptor {
    zonal_exe: PathBuf,
    /// Cgroup directory for this zone's instances, when cgroup v2 is writable.
    cgroup: Option<PathBuf>,
    handed_out: Mutex<HashSet<u16>>,
}

impl ProcessAdaptor {
    /// `zone` names the cgroup subtree; `zonal_exe` is what `zonal` in a run spec runs.
    pub fn new(zone: &str, zonal_exe: PathBuf) -> Self {
        let cgroup = Self::cgroup_dir(zone);
        match &cgroup {
            Some(dir) => tracing::info!("instances get cgroup v2 limits under {}", dir.display()),
            None => tracing::info!(
                "cgroup v2 is not writable at {CGROUP_ROOT} (absent, v1/hybrid layout, or read-only): skipping cgroup limits, applying rlimits only"
            ),
        }
        ProcessAdaptor { zonal_exe, cgroup, handed_out: Mutex::new(HashSet::new()) }
    }

    fn cgroup_dir(zone: &str) -> Option<PathBuf> {
        let root = Path::new(CGROUP_ROOT);
        if !root.join("cgroup.controllers").exists() {
            return None;
        }
        let dir = root.join("zonal").join(zone);
        std::fs::create_dir_all(&dir).ok()?;
        // Enable the controllers we use for the children of both levels (best effort).
        let _ = std::fs::write(root.join("cgroup.subtree_control"), "+memory +cpu");
        let _ = std::fs::write(root.join("zonal").join("cgroup.subtree_control"), "+memory +cpu");
        let _ = std::fs::write(dir.join("cgroup.subtree_control"), "+memory +cpu");
        Some(dir)
    }

    fn program(&self, argv0: &str) -> PathBuf {
        if argv0 == "zonal" {
            self.zonal_exe.clone()
        } else {
            PathBuf::from(argv0)
        }
    }

    fn free_port(&self) -> Result<u16, String> {
        let mut handed = self.handed_out.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..64 {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
            let port = l.local_addr().map_err(|e| e.to_string())?.port();
            if handed.insert(port) {
                return Ok(port);
            }
        }
        Err("cannot find a free port that was not handed out already".into())
    }

    fn apply_cgroup(&self, spec: &LaunchSpec, pid: u32) {
        let Some(base) = &self.cgroup else { return };
        let dir = base.join(&spec.id);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(instance = spec.id, "cannot create cgroup {}: {e}", dir.display());
            return;
        }
        let mem = spec.resources.get(MEMORY);
        if mem > 0 {
            let _ = std::fs::write(dir.join("memory.max"), mem.to_string());
        }
        let cpu = spec.resources.get(CPU);
        if cpu > 0 {
            let _ = std::fs::write(dir.join("cpu.max"), format!("{} 100000", cpu * 100));
        }
        if let Err(e) = std::fs::write(dir.join("cgroup.procs"), pid.to_string()) {
            tracing::warn!(instance = spec.id, "cannot move pid {pid} into cgroup {}: {e}", dir.display());
        }
    }
}

/// Reads `/proc/<pid>/stat`: the state letter and the start time (field 22).
pub fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after ")" come: state (field 3), ppid (4), …, starttime (22) → index 19.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// The process group of `pid` (field 5 of `/proc/<pid>/stat`).
pub fn process_group_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    after.split_whitespace().nth(2)?.parse().ok()
}

/// Does `/proc/<pid>/environ` contain `name=value`?
pub fn environ_has(pid: u32, name: &str, value: &str) -> bool {
    let Ok(bytes) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
    let want = format!("{name}={value}");
    bytes.split(|b| *b == 0).any(|entry| entry == want.as_bytes())
}

fn signal_group(pgid: u32, sig: libc::c_int) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else { return false };
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) with a negative pid signals the process group; no memory is touched.
    unsafe { libc::kill(-pgid, sig) == 0 }
}

fn alive(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

impl DcAdaptor for ProcessAdaptor {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn limits(&self) -> Vec<String> {
        let mut l = vec!["RLIMIT_NOFILE".to_string(), "RLIMIT_AS (from memory)".into(), "RLIMIT_CORE=0".into()];
        if self.cgroup.is_some() {
            l.push("cgroup v2 memory.max and cpu.max".into());
        } else {
            l.push("no cgroups (cgroup v2 not writable here)".into());
        }
        l
    }

    fn ports(&self, declared: &[zonal_model::Port]) -> Result<Vec<PortMapping>, String> {
        let mut out = Vec::new();
        for p in declared {
            let protocol = match p.protocol {
                zonal_model::Protocol::Tcp => "tcp",
                zonal_model::Protocol::Http => "http",
                zonal_model::Protocol::Udp => "udp",
            };
            out.push(PortMapping {
                name: p.name.clone(),
                protocol: protocol.into(),
                private: p.port.unwrap_or(0),
                public: self.free_port()?,
            });
        }
        if !out.iter().any(|p| p.name == "admin") {
            out.push(PortMapping {
                name: "admin".into(),
                protocol: "http".into(),
                private: 0,
                public: self.free_port()?,
            });
        }
        Ok(out)
    }

    fn provision(&self, spec: &LaunchSpec) -> Result<(), String> {
        std::fs::create_dir_all(&spec.workdir)
            .map_err(|e| format!("cannot create the working directory {}: {e}", spec.workdir.display()))?;
        let config = serde_json::json!({
            "id": spec.id,
            "service": spec.service,
            "component": spec.component,
            "argv": spec.argv,
            "ports": spec.ports,
            "resources": spec.resources,
        });
        let path = spec.workdir.join("instance.json");
        let text = serde_json::to_string_pretty(&config).unwrap_or_default();
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    fn start(&self, spec: &LaunchSpec) -> Result<Launched, String> {
        let Some(argv0) = spec.argv.first() else {
            return Err(format!("instance {}: the run spec has no program", spec.id));
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .map_err(|e| format!("cannot open the log {}: {e}", spec.log.display()))?;
        let log2 = log.try_clone().map_err(|e| format!("cannot open the log {}: {e}", spec.log.display()))?;
        let program = self.program(argv0);
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&spec.argv[1..])
            .current_dir(&spec.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .process_group(0)
            .kill_on_drop(false);
        // The operator's client credentials never leak into instances.
        for k in ["ZONAL_TOKEN", "ZONAL_URL", "ZONAL_CONTEXT"] {
            cmd.env_remove(k);
        }
        cmd.envs(&spec.env);
        let mem = spec.resources.get(MEMORY);
        let address_space: Option<u64> = (mem > 0).then(|| (mem.saturating_mul(2)).max(mem.saturating_add(256 << 20)));
        let nofile: u64 = match spec.resources.get("nofile").max(spec.resources.get("files")) {
            0 => 4096,
            n => n,
        };
        // SAFETY: the closure runs between fork and exec and only calls setrlimit(2), which
        // is async-signal-safe; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                let set = |res, soft: u64| {
                    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                    if libc::getrlimit(res, &mut cur) == 0 {
                        let soft: libc::rlim_t = soft.min(cur.rlim_max);
                        let lim = libc::rlimit { rlim_cur: soft, rlim_max: cur.rlim_max };
                        libc::setrlimit(res, &lim);
                    }
                };
                set(libc::RLIMIT_NOFILE, nofile);
                set(libc::RLIMIT_CORE, 0);
                if let Some(bytes) = address_space {
                    set(libc::RLIMIT_AS, bytes);
                }
                Ok(())
            });
        }
        let child =
            cmd.spawn().map_err(|e| format!("cannot start {} for instance {}: {e}", program.display(), spec.id))?;
        let pid = child.id().ok_or_else(|| format!("instance {} exited before it could be watched", spec.id))?;
        let start_time = proc_stat(pid).map_or(0, |(_, s)| s);
        self.apply_cgroup(spec, pid);
        Ok(Launched { pid, start_time, child: Some(child) })
    }

    fn stop(&self, id: &str, pid: u32, grace: Duration) -> BoxFut<'_, ()> {
        let id = id.to_string();
        Box::pin(async move {
            if !signal_group(pid, libc::SIGTERM) {
                return;
            }
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && alive(pid) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if alive(pid) {
                tracing::warn!(instance = id, pid, "did not stop within {grace:?} of SIGTERM: sending SIGKILL");
            }
            // Whatever is left of the group (children of the instance) goes too.
            signal_group(pid, libc::SIGKILL);
        })
    }

    fn status(&self, pid: u32, start_time: u64, token: &str) -> ProcessStatus {
        match proc_stat(pid) {
            None => ProcessStatus::Gone,
            Some((state, _)) if state == 'Z' || state == 'X' => ProcessStatus::Gone,
            Some((_, started)) if started != start_time => ProcessStatus::NotOurs,
            Some(_) if !environ_has(pid, zonal_proto::env::ZONAL_INSTANCE_TOKEN, token) => ProcessStatus::NotOurs,
            Some(_) => ProcessStatus::Alive,
        }
    }

    fn cleanup(&self, id: &str) {
        if let Some(base) = &self.cgroup {
            let _ = std::fs::remove_dir(base.join(id));
        }
    }

    fn add_config(&self, admin_port: u16, body: serde_json::Value) -> BoxFut<'_, Result<serde_json::Value, String>> {
        Box::pin(async move {
            let c = Client::new(&format!("http://127.0.0.1:{admin_port}"), None, Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            c.post("/1.0/configs", &body).await.map_err(|e| e.to_string())
        })
    }

    fn remove_config(&self, admin_port: u16, name: &str) -> BoxFut<'_, Result<(), String>> {
        let name = name.to_string();
        Box::pin(async move {
            let c = Client::new(&format!("http://127.0.0.1:{admin_port}"), None, Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            c.delete(&format!("/1.0/configs/{name}")).await.map(|_| ()).map_err(|e| e.to_string())
        })
    }

    fn configs(&self, admin_port: u16) -> BoxFut<'_, Result<serde_json::Value, String>> {
        Box::pin(async move {
            let c = Client::new(&format!("http://127.0.0.1:{admin_port}"), None, Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            c.get("/1.0/configs").await.map_err(|e| e.to_string())
        })
    }
}

/// Finds a live process carrying `ZONAL_INSTANCE_TOKEN=token` (a process started just before
/// a crash, whose pid was never recorded). Linux only; `None` elsewhere.
pub fn find_by_token(token: &str) -> Option<(u32, u64)> {
    let dir = std::fs::read_dir("/proc").ok()?;
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        // The instance is the leader of its process group; its children share the token.
        if environ_has(pid, zonal_proto::env::ZONAL_INSTANCE_TOKEN, token) && process_group_of(pid) == Some(pid) {
            if let Some((state, start)) = proc_stat(pid) {
                if state != 'Z' && state != 'X' {
                    return Some((pid, start));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_stat_and_environ() {
        let me = std::process::id();
        let (state, start) = proc_stat(me).expect("own /proc stat");
        assert!(state == 'R' || state == 'S', "{state}");
        assert!(start > 0);
        std::env::set_var("ZONAL_TEST_MARK", "x1");
        // environ reflects the initial environment only; PATH is always there.
        let path = std::env::var("PATH").unwrap_or_default();
        assert!(environ_has(me, "PATH", &path) || path.is_empty());
        assert!(!environ_has(me, "ZONAL_TEST_MARK_NEVER", "y"));
    }
}
