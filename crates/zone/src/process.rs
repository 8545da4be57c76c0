//! The process adaptor: every instance is a real child process on this machine.
//!
//! * **Its own uid.** A zone that runs as root starts each instance under its provider's
//!   unprivileged uid/gid ([`crate::users`]): in the child, before `exec`, it joins the
//!   instance's cgroup, sets the rlimits, sets `umask 077`, changes into the working directory
//!   (as root: the directory may sit under the zone's 0700 state directory, which the
//!   instance's uid cannot traverse — relative paths from there work), then `setgroups(0)`,
//!   `setgid`, `setuid`, checks that every id is the instance's and that `setuid(0)` fails,
//!   and sets `no_new_privs` (no setuid binary gives root back). A zone that is not root
//!   cannot switch users: its instances run as its own user, with everything else below; it
//!   says so once at start and in `GET /1.0/dca`. Never as root: a root zone refuses to start
//!   an instance without a uid.
//! * **`zonal` through a descriptor.** `zonal` as the program means this very executable,
//!   opened once when the adaptor is made and executed as `/proc/self/fd/N`: the instance's
//!   uid need not be able to reach its path (e.g. under `/root`, mode 0700).
//! * **A clean environment**: exactly what the zone gives ([`LaunchSpec::env`]), nothing of
//!   the zone manager's own (`env_clear`).
//! * **A private working directory** (`<state>/instances/<id>`, mode 0700, owned by the
//!   instance's uid, holding `instance.json` and `zone.url`), removed with the instance
//!   ([`DcAdaptor::cleanup`]). Files the zone writes into it are created under a fresh name
//!   (never through a link the instance planted) and renamed into place.
//! * **Logs** are the zone's: stdout and stderr go to a file outside the working directory
//!   (`<state>/logs/<id>.log`, opened by the zone), which the instance can write through the
//!   descriptor it was given but cannot otherwise reach.
//! * **Its own process group**, so signals reach the instance and everything it forks, and a
//!   Ctrl-C aimed at the terminal's foreground group does not.
//! * **Limits.** `RLIMIT_NOFILE` (4096, or a `nofile`/`files` resource), `RLIMIT_AS` from the
//!   component's memory (address space, not resident memory, so it is given headroom:
//!   `max(2 × memory, memory + 256 MiB)`), `RLIMIT_CORE` 0, and under a provider uid
//!   `RLIMIT_NPROC` (`--instance-nproc`, default 1024: processes and threads of all that
//!   provider's instances here together — a fork bomb stops there); soft and hard alike, so
//!   the instance cannot raise them. When cgroup v2 is mounted at `/sys/fs/cgroup` and
//!   writable, each instance also gets a cgroup (created by the zone, not writable by the
//!   instance) with `memory.max`, `cpu.max` and `pids.max`, joined before `exec`, and killed
//!   whole (`cgroup.kill`) when the instance stops; otherwise this is skipped and said once in
//!   the log.
//! * **Survives its zone manager.** No parent-death signal is set: when the zone manager
//!   crashes the instances keep running, and the restarted manager adopts them by pid,
//!   kernel start time and the per-instance token found in `/proc/<pid>/environ` (root reads
//!   any process's; a zone that is not root reads its own user's).
//! * **Clean stop.** SIGTERM to the group, SIGKILL to the group after the grace period.
//!
//! Ports are chosen by binding `127.0.0.1:0` and releasing the port; a port handed out is
//! not handed out again by this adaptor while it runs.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zonal_model::resources::{CPU, MEMORY};
use zonal_proto::env::{PortMapping, ZONAL_ZONE_URL, ZONE_URL_FILE};
use zonal_proto::Client;

use crate::adaptor::{AdminApi, BoxFut, DcAdaptor, LaunchSpec, Launched, ProcessStatus};
use crate::users::{RunAs, DEFAULT_NPROC};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Does this process run as root (effective uid 0), so that it can switch users?
pub fn running_as_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// The embedded default adaptor.
pub struct ProcessAdaptor {
    zonal_exe: PathBuf,
    /// `zonal_exe`, opened once (close-on-exec): `zonal` instances are executed as
    /// `/proc/self/fd/N`, so their uid need not reach the executable's path.
    zonal_file: Option<File>,
    /// Cgroup directory for this zone's instances, when cgroup v2 is writable.
    cgroup: Option<PathBuf>,
    handed_out: Mutex<HashSet<u16>>,
    /// Runs as root: instances run under their provider's uid.
    root: bool,
    /// `RLIMIT_NPROC` of a provider's uid (and `pids.max` of an instance's cgroup).
    nproc: u64,
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
        let root = running_as_root();
        if root {
            tracing::info!(
                "instances run under their provider's own unprivileged uid/gid (never root, never the zone's)"
            );
        } else {
            // SAFETY: getuid(2) cannot fail and touches no memory.
            let uid = unsafe { libc::getuid() };
            tracing::warn!(
                "this zone runs as uid {uid}, not root: it cannot switch users, so instances run as uid {uid} too. They still get a clean environment, private working directories and limits, but nothing keeps them from this user's files (the zone's state included) or processes"
            );
        }
        let zonal_file = match File::open(&zonal_exe) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(
                    "cannot open {} ({e}): `zonal` instances are started by its path, which their uid may not reach",
                    zonal_exe.display()
                );
                None
            }
        };
        ProcessAdaptor {
            zonal_exe,
            zonal_file,
            cgroup,
            handed_out: Mutex::new(HashSet::new()),
            root,
            nproc: DEFAULT_NPROC,
        }
    }

    /// Sets the process limit of each provider uid (`RLIMIT_NPROC`) and instance cgroup.
    pub fn with_nproc(mut self, nproc: u64) -> Self {
        self.nproc = nproc.max(1);
        self
    }

    fn cgroup_dir(zone: &str) -> Option<PathBuf> {
        let root = Path::new(CGROUP_ROOT);
        if !root.join("cgroup.controllers").exists() {
            return None;
        }
        let dir = root.join("zonal").join(zone);
        std::fs::create_dir_all(&dir).ok()?;
        // Enable the controllers we use for the children of both levels (best effort).
        let _ = std::fs::write(root.join("cgroup.subtree_control"), "+memory +cpu +pids");
        let _ = std::fs::write(root.join("zonal").join("cgroup.subtree_control"), "+memory +cpu +pids");
        let _ = std::fs::write(dir.join("cgroup.subtree_control"), "+memory +cpu +pids");
        Some(dir)
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

    /// Creates the instance's cgroup (the zone's: not writable by the instance) with its
    /// limits; returns the path of its `cgroup.procs`, which the child joins before `exec`.
    fn prepare_cgroup(&self, spec: &LaunchSpec) -> Option<CString> {
        let base = self.cgroup.as_ref()?;
        let dir = base.join(&spec.id);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(instance = spec.id, "cannot create cgroup {}: {e}", dir.display());
            return None;
        }
        let mem = spec.resources.get(MEMORY);
        if mem > 0 {
            let _ = std::fs::write(dir.join("memory.max"), mem.to_string());
        }
        let cpu = spec.resources.get(CPU);
        if cpu > 0 {
            let _ = std::fs::write(dir.join("cpu.max"), format!("{} 100000", cpu * 100));
        }
        let _ = std::fs::write(dir.join("pids.max"), self.nproc.to_string());
        CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).ok()
    }

    /// Moves `pid` into its cgroup if joining it in the child did not work.
    fn ensure_cgroup(&self, spec: &LaunchSpec, pid: u32) {
        let Some(base) = &self.cgroup else { return };
        let procs = base.join(&spec.id).join("cgroup.procs");
        let listed = std::fs::read_to_string(&procs).is_ok_and(|t| t.lines().any(|l| l.trim() == pid.to_string()));
        if !listed {
            if let Err(e) = std::fs::write(&procs, pid.to_string()) {
                tracing::warn!(instance = spec.id, "cannot move pid {pid} into cgroup {}: {e}", procs.display());
            }
        }
    }
}

/// Creates `dir` (and its parents) when missing and makes it mode 0700: a directory of the
/// zone's own (the instances' parent, the logs).
pub fn private_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot make {} private (mode 0700): {e}", dir.display()))
}

/// Writes `text` to `dir/name`, where `dir` may belong to an instance: the file is created
/// under a fresh random name (`O_EXCL`, so never through a link the instance planted), mode
/// 0600, given to `owner`, then renamed over `name` (a rename replaces a link, it does not
/// follow it).
pub fn write_in(dir: &Path, name: &str, text: &str, owner: Option<RunAs>) -> Result<(), String> {
    let target = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}", &zonal_proto::secret()[..12]));
    let result = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        if let Some(r) = owner {
            std::os::unix::fs::fchown(&f, Some(r.uid), Some(r.gid))?;
        }
        f.write_all(text.as_bytes())?;
        drop(f);
        std::fs::rename(&tmp, &target)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", target.display())
    })
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

/// True when `pid` has begun to exit (`PF_EXITING` in the flags, field 9 of
/// `/proc/<pid>/stat`): a process killed with `kill -9` closes its sockets before it shows
/// as a zombie. False when it cannot be read.
pub fn exiting(pid: u32) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let Some(i) = text.rfind(')') else { return false };
    text[i + 1..].split_whitespace().nth(6).and_then(|f| f.parse::<u64>().ok()).is_some_and(|f| f & PF_EXITING != 0)
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

/// What the child does between `fork` and `exec`, as root when it switches users. Only
/// async-signal-safe calls (system calls on memory prepared before the fork); it allocates
/// nothing.
struct ChildSetup {
    nofile: u64,
    address_space: Option<u64>,
    /// `RLIMIT_NPROC`, under a provider uid only (the zone's own user has other processes).
    nproc: Option<u64>,
    cgroup_procs: Option<CString>,
    workdir: CString,
    run_as: Option<RunAs>,
}

impl ChildSetup {
    fn run(&self) -> std::io::Result<()> {
        use std::io::Error;
        // SAFETY (all calls below): plain system calls on values owned by `self` or on the
        // stack; each is async-signal-safe, none allocates.
        unsafe {
            // Soft and hard alike: the instance cannot raise them again.
            let set = |res, value: u64| {
                let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                if libc::getrlimit(res, &mut cur) == 0 {
                    let v: libc::rlim_t = value.min(cur.rlim_max);
                    let lim = libc::rlimit { rlim_cur: v, rlim_max: v };
                    libc::setrlimit(res, &lim);
                }
            };
            set(libc::RLIMIT_NOFILE, self.nofile);
            set(libc::RLIMIT_CORE, 0);
            if let Some(bytes) = self.address_space {
                set(libc::RLIMIT_AS, bytes);
            }
            if let Some(n) = self.nproc {
                // Root may set any value; this one is hard for the instance.
                let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
                if libc::setrlimit(libc::RLIMIT_NPROC, &lim) != 0 {
                    return Err(Error::last_os_error());
                }
            }
            if let Some(path) = &self.cgroup_procs {
                // "0": the writing process itself.
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd >= 0 {
                    libc::write(fd, b"0".as_ptr().cast(), 1);
                    libc::close(fd);
                }
            }
            libc::umask(0o077);
            // As the zone's user, before dropping privileges: the directory's ancestors may
            // be closed to the instance's uid.
            if libc::chdir(self.workdir.as_ptr()) != 0 {
                return Err(Error::last_os_error());
            }
            if let Some(r) = self.run_as {
                if libc::setgroups(0, std::ptr::null()) != 0 {
                    return Err(Error::last_os_error());
                }
                if libc::setgid(r.gid) != 0 {
                    return Err(Error::last_os_error());
                }
                if libc::setuid(r.uid) != 0 {
                    return Err(Error::last_os_error());
                }
                // Verify: every id is the instance's, it has no groups, and root is gone for
                // good (setuid(0)/setgid(0) must fail).
                let dropped = libc::getuid() == r.uid
                    && libc::geteuid() == r.uid
                    && libc::getgid() == r.gid
                    && libc::getegid() == r.gid
                    && libc::getgroups(0, std::ptr::null_mut()) == 0
                    && libc::setuid(0) != 0
                    && libc::setgid(0) != 0;
                if !dropped {
                    return Err(Error::from_raw_os_error(libc::EPERM));
                }
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(Error::last_os_error());
            }
        }
        Ok(())
    }
}

impl DcAdaptor for ProcessAdaptor {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn limits(&self) -> Vec<String> {
        let mut l = vec!["RLIMIT_NOFILE".to_string(), "RLIMIT_AS (from memory)".into(), "RLIMIT_CORE=0".into()];
        if self.root {
            l.push(format!("RLIMIT_NPROC={} per provider uid", self.nproc));
        }
        if self.cgroup.is_some() {
            l.push(format!("cgroup v2 memory.max, cpu.max and pids.max={}", self.nproc));
        } else {
            l.push("no cgroups (cgroup v2 not writable here)".into());
        }
        if self.root {
            l.push("instances run as their provider's own unprivileged uid/gid (never root, never the zone's), no_new_privs".into());
        } else {
            // SAFETY: getuid(2) cannot fail and touches no memory.
            let uid = unsafe { libc::getuid() };
            l.push(format!("instances run as the zone's own uid {uid}: the zone is not root and cannot switch users"));
        }
        l.push("clean environment, private working directory (0700), umask 077".into());
        l
    }

    fn switches_users(&self) -> bool {
        self.root
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
        if spec.run_as.is_some() && !self.root {
            return Err(format!("instance {}: this zone is not root and cannot run it as another uid", spec.id));
        }
        let dir = &spec.workdir;
        if let Some(parent) = dir.parent() {
            private_dir(parent)?;
        }
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "{} exists and is not a directory; expected the instance's working directory",
                    dir.display()
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(dir)
                .map_err(|e| format!("cannot create the working directory {}: {e}", dir.display()))?,
            Err(e) => return Err(format!("cannot inspect the working directory {}: {e}", dir.display())),
        }
        // The parent is the zone's (0700), so the instance cannot swap this entry for a link.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot make {} private (mode 0700): {e}", dir.display()))?;
        if let Some(r) = spec.run_as {
            std::os::unix::fs::chown(dir, Some(r.uid), Some(r.gid))
                .map_err(|e| format!("cannot give {} to uid {r}: {e}", dir.display()))?;
        }
        let config = serde_json::json!({
            "id": spec.id,
            "service": spec.service,
            "component": spec.component,
            "argv": spec.argv,
            "ports": spec.ports,
            "resources": spec.resources,
        });
        let text = serde_json::to_string_pretty(&config).unwrap_or_default();
        write_in(dir, "instance.json", &text, spec.run_as)?;
        if let Some(url) = spec.env.get(ZONAL_ZONE_URL) {
            write_in(dir, ZONE_URL_FILE, url, spec.run_as)?;
        }
        Ok(())
    }

    fn start(&self, spec: &LaunchSpec) -> Result<Launched, String> {
        let Some(argv0) = spec.argv.first() else {
            return Err(format!("instance {}: the run spec has no program", spec.id));
        };
        if self.root && spec.run_as.is_none() {
            return Err(format!(
                "instance {}: no uid to run it as; a zone running as root never starts an instance as root",
                spec.id
            ));
        }
        if let Some(parent) = spec.log.parent() {
            private_dir(parent)?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&spec.log)
            .map_err(|e| format!("cannot open the log {}: {e}", spec.log.display()))?;
        let log2 = log.try_clone().map_err(|e| format!("cannot open the log {}: {e}", spec.log.display()))?;
        let program = match (argv0.as_str(), &self.zonal_file) {
            ("zonal", Some(f)) => PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())),
            ("zonal", None) => self.zonal_exe.clone(),
            (other, _) => PathBuf::from(other),
        };
        let mem = spec.resources.get(MEMORY);
        let setup = ChildSetup {
            nofile: match spec.resources.get("nofile").max(spec.resources.get("files")) {
                0 => 4096,
                n => n,
            },
            address_space: (mem > 0).then(|| (mem.saturating_mul(2)).max(mem.saturating_add(256 << 20))),
            nproc: spec.run_as.map(|_| self.nproc),
            cgroup_procs: self.prepare_cgroup(spec),
            workdir: CString::new(spec.workdir.as_os_str().as_bytes())
                .map_err(|_| format!("instance {}: its working directory has a NUL byte", spec.id))?,
            run_as: spec.run_as,
        };
        let mut cmd = tokio::process::Command::new(&program);
        cmd.arg0(argv0)
            .args(&spec.argv[1..])
            .env_clear()
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .process_group(0)
            .kill_on_drop(false);
        // SAFETY: the closure runs between fork and exec; `ChildSetup::run` makes only
        // async-signal-safe system calls on memory prepared before the fork.
        unsafe {
            cmd.pre_exec(move || setup.run());
        }
        let child = cmd.spawn().map_err(|e| {
            let who = spec.run_as.map(|r| format!(" as uid {r}")).unwrap_or_default();
            let hint = if e.raw_os_error() == Some(libc::EAGAIN) && spec.run_as.is_some() {
                format!(
                    " (the provider's uid is at its process limit: RLIMIT_NPROC {}, `zonal zone --instance-nproc`)",
                    self.nproc
                )
            } else {
                String::new()
            };
            format!("cannot start {argv0} for instance {}{who} in {}: {e}{hint}", spec.id, spec.workdir.display())
        })?;
        let pid = child.id().ok_or_else(|| format!("instance {} exited before it could be watched", spec.id))?;
        let start_time = proc_stat(pid).map_or(0, |(_, s)| s);
        self.ensure_cgroup(spec, pid);
        Ok(Launched { pid, start_time, child: Some(child) })
    }

    fn stop(&self, id: &str, pid: u32, grace: Duration) -> BoxFut<'_, ()> {
        let id = id.to_string();
        Box::pin(async move {
            if signal_group(pid, libc::SIGTERM) {
                let deadline = Instant::now() + grace;
                while Instant::now() < deadline && alive(pid) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if alive(pid) {
                    tracing::warn!(instance = id, pid, "did not stop within {grace:?} of SIGTERM: sending SIGKILL");
                }
                // Whatever is left of the group (children of the instance) goes too.
                signal_group(pid, libc::SIGKILL);
            }
            // And whatever left the group but not the cgroup.
            if let Some(base) = &self.cgroup {
                let _ = std::fs::write(base.join(&id).join("cgroup.kill"), "1");
            }
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

    fn cleanup(&self, id: &str, workdir: &Path) {
        if let Some(base) = &self.cgroup {
            let _ = std::fs::remove_dir(base.join(id));
        }
        // Only the instance's own directory (named after it), and never through a link.
        if workdir.file_name().map(|n| n.as_bytes()) != Some(id.as_bytes()) {
            tracing::warn!(instance = id, "not removing {}: not the instance's directory", workdir.display());
            return;
        }
        match std::fs::symlink_metadata(workdir) {
            Ok(m) if m.is_dir() => {
                if let Err(e) = std::fs::remove_dir_all(workdir) {
                    tracing::warn!(instance = id, "cannot remove the working directory {}: {e}", workdir.display());
                }
            }
            Ok(_) => {
                let _ = std::fs::remove_file(workdir);
            }
            Err(_) => {}
        }
    }

    fn zone_moved(&self, workdir: &Path, url: &str) -> Result<(), String> {
        let Ok(m) = std::fs::symlink_metadata(workdir) else { return Ok(()) };
        if !m.is_dir() {
            return Ok(());
        }
        let owner = self.root.then(|| RunAs { uid: m.uid(), gid: m.gid() });
        write_in(workdir, ZONE_URL_FILE, url, owner)
    }

    fn add_config(&self, admin: AdminApi, body: serde_json::Value) -> BoxFut<'_, Result<serde_json::Value, String>> {
        Box::pin(async move {
            let c = admin_client(&admin)?;
            c.post("/1.0/configs", &body).await.map_err(|e| e.to_string())
        })
    }

    fn remove_config(&self, admin: AdminApi, name: &str) -> BoxFut<'_, Result<(), String>> {
        let name = name.to_string();
        Box::pin(async move {
            let c = admin_client(&admin)?;
            c.delete(&format!("/1.0/configs/{name}")).await.map(|_| ()).map_err(|e| e.to_string())
        })
    }

    fn configs(&self, admin: AdminApi) -> BoxFut<'_, Result<serde_json::Value, String>> {
        Box::pin(async move {
            let c = admin_client(&admin)?;
            c.get("/1.0/configs").await.map_err(|e| e.to_string())
        })
    }
}

/// A client of an instance's admin API, carrying its admin secret.
fn admin_client(admin: &AdminApi) -> Result<Client, String> {
    Client::new(&format!("http://127.0.0.1:{}", admin.port), admin.bearer(), Duration::from_secs(5))
        .map_err(|e| e.to_string())
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

    const NEEDS_ROOT: &str =
        "this test starts processes under other uids, which needs root: run the tests as root (CI does)";

    fn spec(dir: &Path, id: &str, argv: &[&str], run_as: Option<RunAs>) -> LaunchSpec {
        let workdir = dir.join("instances").join(id);
        let env = [
            ("PATH".to_string(), zonal_proto::env::SAFE_PATH.to_string()),
            ("HOME".to_string(), workdir.display().to_string()),
            (ZONAL_ZONE_URL.to_string(), "http://127.0.0.1:9".to_string()),
        ];
        LaunchSpec {
            id: id.into(),
            service: "s".into(),
            component: "c".into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            env: env.into_iter().collect(),
            log: dir.join("logs").join(format!("{id}.log")),
            workdir,
            run_as,
            resources: Default::default(),
            ports: Vec::new(),
        }
    }

    /// Provisions and starts `spec`, waits for it to exit, kills what is left of its process
    /// group, and returns its output.
    async fn run(adaptor: &ProcessAdaptor, spec: &LaunchSpec) -> String {
        adaptor.provision(spec).expect("provision");
        let launched = adaptor.start(spec).expect("start");
        let mut child = launched.child.expect("our child");
        let waited = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
        signal_group(launched.pid, libc::SIGKILL);
        waited.expect("exits in time").expect("wait");
        std::fs::read_to_string(&spec.log).expect("log")
    }

    /// Waits (up to 5 s) until no process of `uid` is left; returns those that are.
    async fn wait_until_gone(uid: u32) -> Vec<u32> {
        for _ in 0..100 {
            if processes_of(uid).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        processes_of(uid)
    }

    /// Live processes whose real uid is `uid`.
    fn processes_of(uid: u32) -> Vec<u32> {
        let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
        dir.flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
            .filter(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                status
                    .lines()
                    .any(|l| l.strip_prefix("Uid:").and_then(|v| v.split_whitespace().next()) == Some(&uid.to_string()))
            })
            .collect()
    }

    /// The drop happens in the right order (cgroup, limits, chdir as root, then setgroups,
    /// setgid, setuid, checked) and `zonal` runs through its descriptor: here the program is
    /// a copy of `sh` in a 0700 directory the instance's uid cannot reach, and the working
    /// directory sits under 0700 directories (the test's temporary directory) too.
    #[tokio::test]
    async fn an_instance_runs_as_its_own_uid_in_its_private_directory() {
        assert!(running_as_root(), "{NEEDS_ROOT}");
        let dir = tempfile::tempdir().expect("dir");
        let bin = dir.path().join("bin");
        private_dir(&bin).expect("bin");
        std::fs::copy("/bin/sh", bin.join("zonal-sh")).expect("a copy of sh");
        let adaptor = ProcessAdaptor::new("t", bin.join("zonal-sh"));
        let script = "id -u; id -g; id -G; pwd; umask; grep NoNewPrivs /proc/self/status; \
            echo vars: $(env | cut -d= -f1 | sort | tr '\\n' ' '); \
            cat instance.json >/dev/null && echo json-readable; echo url: $(cat zone.url); \
            ls .. >/dev/null 2>&1 && echo parent-open || echo parent-closed; \
            ls \"$HOME/..\" >/dev/null 2>&1 && echo home-parent-open || echo home-parent-closed; \
            touch made && echo made: $(stat -c '%a %u' made); \
            grep 'Max processes' /proc/self/limits | tr -s ' ' | cut -d' ' -f3,4";
        let run_as = RunAs { uid: 200_777, gid: 200_778 };
        let spec = spec(dir.path(), "t-1", &["zonal", "-c", script], Some(run_as));
        let out = run(&adaptor, &spec).await;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(&lines[..5], ["200777", "200778", "200778", spec.workdir.to_str().expect("utf-8"), "0077"], "{out}");
        assert!(out.contains("NoNewPrivs:\t1"), "{out}");
        // Nothing of this (the zone's) environment but what the spec gave.
        let vars = lines.iter().find_map(|l| l.strip_prefix("vars: ")).expect("vars");
        let given: Vec<&str> = vars.split_whitespace().collect();
        for (k, _) in std::env::vars() {
            assert!(
                matches!(k.as_str(), "PATH" | "HOME" | "PWD") || !given.contains(&k.as_str()),
                "{k} leaked into the instance: {vars}"
            );
        }
        assert!(given.contains(&ZONAL_ZONE_URL), "{vars}");
        assert!(out.contains("json-readable") && out.contains("url: http://127.0.0.1:9"), "{out}");
        assert!(out.contains("parent-closed") && out.contains("home-parent-closed"), "{out}");
        assert!(out.contains("made: 600 200777"), "{out}");
        assert_eq!(lines.last().copied(), Some(format!("{DEFAULT_NPROC} {DEFAULT_NPROC}").as_str()), "{out}");
        // The directory is the instance's, 0700; the log is the zone's.
        let m = std::fs::metadata(&spec.workdir).expect("workdir");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (200_777, 200_778, 0o700));
        let l = std::fs::metadata(&spec.log).expect("log");
        assert_eq!((l.uid(), l.mode() & 0o777), (0, 0o600));
        // Removed with the instance; the log stays.
        adaptor.cleanup("t-1", &spec.workdir);
        assert!(!spec.workdir.exists() && spec.log.exists());
    }

    #[tokio::test]
    async fn a_root_zone_never_runs_an_instance_as_root_and_caps_a_providers_processes() {
        assert!(running_as_root(), "{NEEDS_ROOT}");
        let dir = tempfile::tempdir().expect("dir");
        let adaptor = ProcessAdaptor::new("t", PathBuf::from("/bin/false")).with_nproc(5);
        let spec_root = spec(dir.path(), "t-2", &["true"], None);
        adaptor.provision(&spec_root).expect("provision");
        let e = adaptor.start(&spec_root).expect_err("no uid");
        assert!(e.contains("never starts an instance as root"), "{e}");
        // A fork bomb stops at RLIMIT_NPROC: the shell and 4 children make 5.
        let bomb = "i=0; while :; do sleep 3 & i=$((i+1)); echo forked $i; done";
        let run_as = RunAs { uid: 200_779, gid: 200_779 };
        let left = wait_until_gone(200_779).await;
        assert!(left.is_empty(), "processes of uid 200779 from elsewhere would count against its limit: {left:?}");
        let out = run(&adaptor, &spec(dir.path(), "t-3", &["sh", "-c", bomb], Some(run_as))).await;
        let forked = out.lines().filter_map(|l| l.strip_prefix("forked ")).filter_map(|n| n.parse::<u32>().ok()).max();
        assert_eq!(forked, Some(4), "{out}");
        assert!(out.to_ascii_lowercase().contains("fork"), "the shell says why it stopped: {out}");
    }

    /// Files the zone writes into an instance's directory never follow a link the instance
    /// planted there.
    #[test]
    fn a_running_process_is_not_exiting_and_a_killed_one_is() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
        let pid = child.id();
        assert!(!exiting(pid), "a sleeping process has not begun to exit");
        assert!(!exiting(std::process::id()), "nor has this test");
        assert!(!exiting(u32::MAX), "an unknown pid is not exiting");
        let _ = child.kill();
        // Killed, not reaped yet: a zombie, which went through the kernel's exit (the flag
        // is read from the right field).
        wait_until(|| proc_stat(pid).is_some_and(|(state, _)| state == 'Z'));
        assert!(exiting(pid), "a killed process has begun to exit");
        let _ = child.wait();
    }

    fn wait_until(f: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(std::time::Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn writes_into_an_instance_directory_do_not_follow_links() {
        let dir = tempfile::tempdir().expect("dir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").expect("victim");
        let inst = dir.path().join("i-1");
        std::fs::create_dir(&inst).expect("inst");
        std::os::unix::fs::symlink(&victim, inst.join("instance.json")).expect("link");
        write_in(&inst, "instance.json", "{}", None).expect("write");
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep");
        let m = std::fs::symlink_metadata(inst.join("instance.json")).expect("file");
        assert!(m.is_file() && m.mode() & 0o777 == 0o600);
        // Cleanup removes the instance's own directory only, never through a link.
        let adaptor = ProcessAdaptor::new("t", PathBuf::from("/bin/false"));
        adaptor.cleanup("other", &inst);
        assert!(inst.exists(), "a directory not named after the instance stays");
        adaptor.cleanup("i-1", &inst);
        assert!(!inst.exists() && victim.exists());
    }
}
