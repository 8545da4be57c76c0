//! Durable state end to end (issue 14, item 4), with the real binaries on 127.0.0.1:
//!
//! * a damaged store (empty, truncated, garbage) stops `zonal domain`, `zonal zone` and
//!   `zonal up` with one line naming the file and the fix, and is left as it was;
//! * `zonal backup` of a running domain and `zonal restore` bring back users, tokens,
//!   services, placements, decisions, geography, infrastructure and knowledge base;
//! * state files are 0600 and directories 0700, also
//!   when they were looser before;
//! * the gateway keeps its port across restarts of its zone manager, and the sessions a
//!   restart cuts are counted in `lost_sessions`;
//! * `zonal apply` completes when the domain is killed and restarted under it;
//! * `zonal up` restarts a daemon that ran healthy after the first step of its backoff again.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const ZONE: &str = "frankfurt-core";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A port nothing listens on now (the kernel's choice), for a daemon that must come back on
/// the same address.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("addr").port()
}

/// Waits for `child` to exit; panics (the child is killed with the harness) after `timeout`.
fn exit_of(child: &mut Child, log: &Path, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if Instant::now() >= deadline {
            panic!(
                "still running after {timeout:?} (it should have refused to start); log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `zonal domain` on `state` and `listen`; waits until it listens.
fn start_domain(h: &mut Harness, state: &Path, listen: &str, log: &str) -> Daemon {
    let ready = h.path().join(format!("{log}.url"));
    let (mut child, log) = h.spawn_domain(state, listen, &ready, &["--zone-timeout", "30s"], log);
    let url = wait_ready_within(&ready, &mut child, &log, Duration::from_secs(30));
    Daemon { child, url, log }
}

/// Runs `zonal ARGS` to completion: (success, stdout, stderr).
fn zonal(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(ZONAL)
        .args(args)
        .current_dir(repo_root())
        .env_remove("ZONAL_URL")
        .env_remove("ZONAL_TOKEN")
        .env("ZONAL_CONTEXT", "/nonexistent/zonal-context.json")
        .stdin(Stdio::null())
        .output()
        .expect("run zonal");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn xorshift_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Waits until the domain's view of `service` in the zone satisfies `f`.
fn zone_view(h: &Harness, admin: &zonal_proto::Client, service: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, Duration::from_secs(30), || {
        let v = h.call(admin, "GET", &format!("/1.0/zones/{ZONE}/services/{service}"), None).ok()?;
        f(&v).then_some(v)
    })
}

fn endpoint_port(v: &Value) -> u16 {
    let ep = v["endpoints"]["http"].as_str().unwrap_or_else(|| panic!("no http endpoint: {v}"));
    ep.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("endpoint {ep}"))
}

/// A session through the gateway at `port`: the stream, once an instance greeted it (a
/// zone that just started offers an instance once it has reported its slots).
fn session(port: u16) -> TcpStream {
    wait_for(&format!("a session through the gateway on port {port}"), Duration::from_secs(20), || {
        let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut line = String::new();
        BufReader::new(s.try_clone().ok()?).read_line(&mut line).ok()?;
        line.starts_with("zonal-workload").then_some(s)
    })
}

/// True when the peer closed `s` (end of stream or reset) within 5 s.
fn was_cut(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn damaged_stores_stop_each_daemon_with_one_line_and_are_left_as_they_were() {
    let mut h = Harness::new();
    // Real stores, closed cleanly: a domain with a token and a zone that registered.
    let (mut domain, token) = h.domain("127.0.0.1:0");
    let admin = h.client(&domain.url, Some(&token));
    h.token(&admin, "provider", "acme");
    let zone_token = h.token(&admin, "zone", ZONE);
    let mut zone = h.zone(ZONE, &domain.url, &zone_token);
    wait_for("the zone to register", Duration::from_secs(20), || {
        (h.get(&admin, "/1.0/zones")[0]["state"] == "available").then_some(())
    });
    zone.stop();
    domain.stop();
    let real_domain = std::fs::read(h.path().join("domain/domain.redb")).expect("domain store");
    let real_zone = std::fs::read(h.path().join(format!("zones/{ZONE}/zone.redb"))).expect("zone store");
    let infra = example("infrastructure.yaml");

    for (kind, real) in [("domain", &real_domain), ("zone", &real_zone)] {
        let mut signed = xorshift_bytes(7, 1 << 16);
        signed[..9].copy_from_slice(&real[..9]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("truncated to half", real[..real.len() / 2].to_vec()),
            ("truncated by a page", real[..real.len() - 4096].to_vec()),
            ("garbage", xorshift_bytes(42, 1 << 16)),
            ("garbage behind redb's signature", signed),
        ];
        for (i, (case, bytes)) in cases.into_iter().enumerate() {
            let state = h.path().join(format!("bad-{kind}-{i}"));
            std::fs::create_dir_all(&state).expect("dir");
            let file = state.join(format!("{kind}.redb"));
            std::fs::write(&file, &bytes).expect("write the damaged store");
            let state_s = state.to_str().expect("utf-8").to_string();
            let infra_s = infra.to_str().expect("utf-8").to_string();
            let args: Vec<&str> = if kind == "domain" {
                vec!["domain", "--listen", "127.0.0.1:0", "--state", &state_s]
            } else {
                vec![
                    "zone",
                    "--name",
                    ZONE,
                    "--listen",
                    "127.0.0.1:0",
                    "--state",
                    &state_s,
                    "--infrastructure",
                    &infra_s,
                ]
            };
            let (mut child, log) = h.spawn(&args, &[], &format!("bad-{kind}-{i}.log"));
            let status = exit_of(&mut child, &log, Duration::from_secs(60));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let last = text.lines().last().unwrap_or_default();
            let what = format!("{kind} on a store {case}");
            assert_eq!(status.code(), Some(1), "{what}: {text}");
            assert!(!text.contains("panicked"), "{what}: no panic, but:\n{text}");
            assert!(last.starts_with(&format!("zonal: the store {}", file.display())), "{what}: {last}");
            assert!(last.contains("zonal restore") && last.contains("left as it is"), "{what}: {last}");
            assert_eq!(std::fs::read(&file).expect("read"), bytes, "{what}: the file was changed");
            assert!(!state.join("admin.token").exists(), "{what}: a new admin token was written");
        }
    }

    // zonal up says the same, and stops.
    let up_state = h.path().join("up-bad");
    std::fs::create_dir_all(up_state.join("domain")).expect("dir");
    std::fs::write(up_state.join("domain/domain.redb"), b"").expect("empty store");
    let ctx = h.path().join("up-bad.json");
    let (mut up, log) = h.spawn(
        &["up", "--state", up_state.to_str().expect("utf-8"), "--context", ctx.to_str().expect("utf-8")],
        &[],
        "up-bad.log",
    );
    let status = exit_of(&mut up, &log, Duration::from_secs(60));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("zonal: the domain orchestrator did not start: the store")
            && text.contains("domain.redb is empty (0 bytes)")
            && text.contains("zonal restore"),
        "{text}"
    );
    assert_eq!(std::fs::read(up_state.join("domain/domain.redb")).expect("read"), b"");
    assert!(!ctx.exists(), "no context for a domain that did not start");
    h.assert_no_leftovers();
}

/// User regions and declared demand the one zone can serve.
const DEMAND: &str = "kind: Demand
name: test
regions:
  - {name: antwerp, location: {lat: 51.2194, lon: 4.4025}, weight: 3, attach: frankfurt-core}
  - {name: liege, location: {lat: 50.6326, lon: 5.5797}, weight: 1, attach: frankfurt-core}
demand:
  - {service: web, region: antwerp, slots: 20}
  - {service: web, region: liege, slots: 10}
";

/// What a domain knows that a restore must bring back.
fn seen(h: &Harness, c: &zonal_proto::Client, id: &str) -> Value {
    json!({
        "users": h.get(c, "/1.0/users"),
        "service": h.get(c, &format!("/1.0/services/{id}"))["placement"],
        "decision": h.get(c, &format!("/1.0/services/{id}/decision"))["decision"]["target"],
        "geography": h.get(c, "/1.0/geography"),
        "infrastructure": h.get(c, "/1.0/infrastructure"),
        "knowledge_base": h.get(c, "/1.0/knowledge-base"),
        "domain": h.get(c, "/1.0/domain"),
    })
}

#[test]
fn a_backup_of_a_running_domain_restores_everything_it_knew() {
    let mut h = Harness::new();
    let listen = format!("127.0.0.1:{}", free_port());
    let state = h.path().join("domain");
    let mut domain = start_domain(&mut h, &state, &listen, "domain.log");
    let token = std::fs::read_to_string(state.join("admin.token")).expect("admin token").trim().to_string();
    let url = domain.url.clone();
    let admin = h.client(&url, Some(&token));
    let acme = h.token(&admin, "provider", "acme");
    let zone_token = h.token(&admin, "zone", ZONE);
    let mut zone = h.zone(ZONE, &url, &zone_token);
    wait_for("the zone to register", Duration::from_secs(20), || {
        (h.get(&admin, "/1.0/zones")[0]["state"] == "available").then_some(())
    });
    // Geography (demand), infrastructure and knowledge base, then a deployed service.
    let demand = h.path().join("demand.yaml");
    std::fs::write(&demand, DEMAND).expect("write");
    for path in [demand, example("infrastructure.yaml"), example("knowledge-base.yaml")] {
        let (ok, out, err) = zonal(&["apply", "-f", path.to_str().expect("utf-8"), "--url", &url, "--token", &token]);
        assert!(ok, "apply {}: {out}{err}", path.display());
    }
    let id = deploy(&h, &admin, "web.yaml");
    let before = wait_running(&h, &admin, &id, 1);
    let acme_client = h.client(&url, Some(&acme));
    let known = seen(&h, &admin, &id);
    let names = |v: Value| -> Vec<String> {
        v.as_array().into_iter().flatten().filter_map(|s| s["serviceid"].as_str().map(str::to_string)).collect()
    };
    let acme_sees = names(h.get(&acme_client, "/1.0/services"));
    assert_eq!(acme_sees, std::slice::from_ref(&id));

    // The backup: only an admin may take it.
    let file = h.path().join("domain.zonal-backup");
    let file_s = file.to_str().expect("utf-8");
    let (ok, _, err) = zonal(&["backup", file_s, "--url", &url, "--token", &acme]);
    assert!(!ok && err.contains("403"), "a provider cannot take a backup: {err}");
    assert!(!file.exists());
    let (ok, out, err) = zonal(&["backup", file_s, "--url", &url, "--token", &token]);
    assert!(ok, "backup: {out}{err}");
    assert!(out.contains("backup of domain"), "{out}");
    assert_eq!(mode(&file), 0o600, "a backup is private");
    let (ok, _, err) = zonal(&["backup", file_s, "--url", &url, "--token", &token]);
    assert!(!ok && err.contains("exists"), "an existing backup is not overwritten: {err}");

    // A damaged copy is refused whole: nothing is written.
    let text = std::fs::read_to_string(&file).expect("backup");
    let damaged = h.path().join("damaged.zonal-backup");
    std::fs::write(&damaged, text.replacen("\"acme\"", "\"acmf\"", 1)).expect("write");
    let fresh = h.path().join("fresh");
    let (ok, _, err) = zonal(&["restore", damaged.to_str().expect("utf-8"), "--state", fresh.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("checksum does not match"), "{err}");
    assert!(!fresh.join("domain.redb").exists());

    // A store file is backed up offline only when its daemon is stopped.
    let state_s = state.to_str().expect("utf-8");
    let offline = h.path().join("offline.zonal-backup");
    let offline_s = offline.to_str().expect("utf-8");
    let store_s = format!("{state_s}/domain.redb");
    let (ok, _, err) = zonal(&["backup", offline_s, "--store", &store_s]);
    assert!(!ok && err.contains("another process holds it open"), "{err}");
    // The domain stops; restoring over its store needs --force, and keeps the old one.
    domain.stop();
    let (ok, out, err) = zonal(&["backup", offline_s, "--store", &store_s, "-o", "json"]);
    assert!(ok, "offline backup: {out}{err}");
    let offline_rows: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(offline_rows["store"], "domain");
    assert_eq!(mode(&offline), 0o600);
    let (ok, _, err) = zonal(&["restore", file_s, "--state", state_s]);
    assert!(!ok && err.contains("--force"), "{err}");
    // Restored into a new state directory, started on the same address: the zone carries on.
    let restored = h.path().join("restored");
    let (ok, out, err) = zonal(&["restore", file_s, "--state", restored.to_str().expect("utf-8")]);
    assert!(ok, "restore: {out}{err}");
    assert_eq!((mode(&restored), mode(&restored.join("domain.redb"))), (0o700, 0o600));
    let mut domain = start_domain(&mut h, &restored, &listen, "restored.log");
    // New clients: pooled connections went with the stopped domain.
    let admin = h.client(&url, Some(&token));
    let acme_client = h.client(&url, Some(&acme));
    assert!(!restored.join("admin.token").exists(), "the restored domain kept its admin: no new token");
    assert_eq!(seen(&h, &admin, &id), known, "the restored domain knows what the backed-up one knew");
    assert_eq!(names(h.get(&acme_client, "/1.0/services")), acme_sees, "tokens survive");
    // The service is still deployed, by the same instance: nothing was redeployed.
    let after = wait_running(&h, &admin, &id, 1);
    assert_eq!(pid_of(&after, "web"), pid_of(&before, "web"));
    wait_for("the zone to report to the restored domain", Duration::from_secs(20), || {
        (h.get(&admin, "/1.0/zones")[0]["state"] == "available").then_some(())
    });
    domain.stop();
    let (ok, out, err) = zonal(&["restore", file_s, "--state", state_s, "--force"]);
    assert!(ok && out.contains("kept as"), "restore --force: {out}{err}");
    let aside: Vec<PathBuf> = std::fs::read_dir(&state)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("domain.redb.replaced-"))
        .collect();
    assert_eq!(aside.len(), 1, "the replaced store is kept: {aside:?}");
    zone.stop();
    h.assert_no_leftovers();
}

#[test]
fn state_files_are_private_and_looser_ones_are_tightened() {
    let mut h = Harness::new();
    let (mut domain, token) = h.domain("127.0.0.1:0");
    let admin = h.client(&domain.url, Some(&token));
    let zone_token = h.token(&admin, "zone", ZONE);
    let mut zone = h.zone(ZONE, &domain.url, &zone_token);
    let dstate = h.path().join("domain");
    let zstate = h.path().join("zones").join(ZONE);
    assert_eq!(mode(&dstate), 0o700, "domain state directory");
    assert_eq!(mode(&dstate.join("domain.redb")), 0o600);
    assert_eq!(mode(&dstate.join("admin.token")), 0o600);
    assert_eq!(mode(&zstate), 0o700, "zone state directory");
    assert_eq!(mode(&zstate.join("zone.redb")), 0o600);
    assert_eq!(mode(&zstate.join("gateway.sessions")), 0o600);
    // Files and directories left looser (by an older version, by hand) are tightened.
    zone.stop();
    domain.stop();
    set_mode(&dstate, 0o755);
    set_mode(&dstate.join("domain.redb"), 0o644);
    set_mode(&dstate.join("admin.token"), 0o644);
    set_mode(&zstate, 0o755);
    set_mode(&zstate.join("zone.redb"), 0o664);
    let listen = domain.url.trim_start_matches("http://").to_string();
    let (mut domain, _) = h.domain(&listen);
    let mut zone = h.zone(ZONE, &domain.url, &zone_token);
    assert_eq!(
        [mode(&dstate), mode(&dstate.join("domain.redb")), mode(&dstate.join("admin.token"))],
        [0o700, 0o600, 0o600]
    );
    assert_eq!([mode(&zstate), mode(&zstate.join("zone.redb"))], [0o700, 0o600]);
    zone.stop();
    domain.stop();
    h.assert_no_leftovers();
}

#[test]
fn the_gateway_keeps_its_port_across_zone_restarts_and_counts_the_sessions_they_cut() {
    let mut h = Harness::new();
    let (mut domain, token) = h.domain("127.0.0.1:0");
    let admin = h.client(&domain.url, Some(&token));
    let zone_token = h.token(&admin, "zone", ZONE);
    let mut zone = h.zone(ZONE, &domain.url, &zone_token);
    let id = deploy(&h, &admin, "web.yaml");
    let before = wait_running(&h, &admin, &id, 1);
    let v = zone_view(&h, &admin, &id, "the gateway endpoint", |v| v["endpoints"]["http"].is_string());
    let port = endpoint_port(&v);
    let mut open: Vec<TcpStream> = (0..3).map(|_| session(port)).collect();
    zone_view(&h, &admin, &id, "3 gateway sessions", |v| v["gateway_sessions"] == 3);

    // kill -9 of the zone manager: its sessions are cut…
    zone.crash();
    for s in &mut open {
        assert!(was_cut(s), "a session relayed by a killed zone manager ends");
    }
    // …and counted when it comes back, on the same port, with the instance adopted.
    let mut zone = h.zone(ZONE, &domain.url, &zone_token);
    let v = zone_view(&h, &admin, &id, "3 lost sessions after the kill", |v| v["lost_sessions"] == 3);
    assert_eq!(endpoint_port(&v), port, "the gateway listens on its port again: {v}");
    assert!(v["notices"].as_array().is_none_or(|n| n.is_empty()), "{v}");
    let after = wait_running(&h, &admin, &id, 1);
    assert_eq!(pid_of(&after, "web"), pid_of(&before, "web"), "adopted, not restarted");
    let mut one = session(port);
    zone_view(&h, &admin, &id, "1 gateway session", |v| v["gateway_sessions"] == 1);

    // Killed again while another process takes its port: it listens elsewhere and says so.
    zone.crash();
    assert!(was_cut(&mut one));
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the gateway's port");
    let mut zone = h.zone(ZONE, &domain.url, &zone_token);
    let v = zone_view(&h, &admin, &id, "4 lost sessions", |v| v["lost_sessions"] == 4);
    let moved = endpoint_port(&v);
    assert_ne!(moved, port);
    let notices = v["notices"].to_string();
    assert!(notices.contains(&format!("port {port}")) && notices.contains(&format!("on {moved}")), "{v}");
    drop(squatter);

    // A clean stop stops the instances, which cuts the sessions: counted as well; the new
    // port is kept from now on.
    let _two: Vec<TcpStream> = (0..2).map(|_| session(moved)).collect();
    zone_view(&h, &admin, &id, "2 gateway sessions", |v| v["gateway_sessions"] == 2);
    zone.stop();
    let mut zone = h.zone(ZONE, &domain.url, &zone_token);
    let v = zone_view(&h, &admin, &id, "6 lost sessions", |v| v["lost_sessions"] == 6 && v["running"] == 1);
    assert_eq!(endpoint_port(&v), moved, "{v}");
    let _ = session(moved);

    zone.stop();
    domain.stop();
    h.assert_no_leftovers();
}

/// `zonal apply` keeps going while its domain is killed and started again on the same state
/// and port: before its first call (the domain is down when apply starts) and while it waits.
#[test]
fn apply_completes_when_the_domain_is_killed_and_restarted_under_it() {
    let mut h = Harness::new();
    let listen = format!("127.0.0.1:{}", free_port());
    let state = h.path().join("domain");
    let mut domain = start_domain(&mut h, &state, &listen, "domain.log");
    let token = std::fs::read_to_string(state.join("admin.token")).expect("admin token").trim().to_string();
    let url = domain.url.clone();
    let admin = h.client(&url, Some(&token));
    let zone_token = h.token(&admin, "zone", ZONE);
    let mut zone = h.zone(ZONE, &url, &zone_token);
    wait_for("the zone to register", Duration::from_secs(20), || {
        (h.get(&admin, "/1.0/zones")[0]["state"] == "available").then_some(())
    });

    // 1. The domain is down when apply starts; it comes back 1.5 s later.
    domain.crash();
    let web = example("web.yaml");
    let (mut apply, log) =
        h.spawn(&["apply", "-f", web.to_str().expect("utf-8"), "--url", &url, "--token", &token], &[], "apply-1.log");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(apply.try_wait().expect("wait").is_none(), "apply waits for the domain");
    let mut domain = start_domain(&mut h, &state, &listen, "domain-2.log");
    let status = exit_of(&mut apply, &log, Duration::from_secs(90));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success() && text.contains("placed in zone"), "apply: {text}");

    // 2. Killed (kill -9) once the service is registered, while apply decides and waits.
    let other = h.path().join("other.yaml");
    std::fs::write(&other, std::fs::read_to_string(&web).expect("web.yaml").replace("name: web\n", "name: other\n"))
        .expect("write");
    let (mut apply, log) =
        h.spawn(&["apply", "-f", other.to_str().expect("utf-8"), "--url", &url, "--token", &token], &[], "apply-2.log");
    wait_for("the service to be registered", Duration::from_secs(30), || {
        h.call(&admin, "GET", "/1.0/services/other", None).ok().map(|_| ())
    });
    domain.crash();
    std::thread::sleep(Duration::from_millis(500));
    let mut domain = start_domain(&mut h, &state, &listen, "domain-3.log");
    let status = exit_of(&mut apply, &log, Duration::from_secs(90));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success() && text.contains("placed in zone"), "apply: {text}");
    // A new client: the old one's pooled connection went with the killed domain.
    let admin = h.client(&url, Some(&token));
    let v = h.get(&admin, "/1.0/services/other");
    assert_eq!(v["state"], "deployed", "{v}");

    zone.stop();
    domain.stop();
    h.assert_no_leftovers();
}

/// One zone, for `zonal up`.
const SMALL: &str = "kind: Infrastructure
name: durable-test
domain: test
zones:
  - name: dc
    hosts:
      - {name: h, capacity: {cpu: 4, memory: 8Gi}}
";

/// The pid of `zonal up`'s domain daemon (its command line says `domain`).
fn domain_pid(h: &Harness) -> Option<u32> {
    processes_under(&h.path()).into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| c.split(|b| *b == 0).nth(1) == Some(b"domain".as_slice()))
            .unwrap_or(false)
    })
}

#[test]
fn up_files_are_private_and_a_daemon_that_ran_healthy_restarts_after_the_first_step() {
    let mut h = Harness::new();
    // Left looser by an older version: tightened.
    let state = h.path().join("up");
    std::fs::create_dir_all(state.join("logs")).expect("dir");
    std::fs::write(state.join("logs/domain.log"), "an old line\n").expect("write");
    set_mode(&state, 0o755);
    set_mode(&state.join("logs"), 0o755);
    set_mode(&state.join("logs/domain.log"), 0o644);
    let mut up = h.up(SMALL, &[]);
    assert_eq!(mode(&up.context), 0o600, "the client context holds the admin token");
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("logs")), 0o700);
    assert_eq!(mode(&state.join("logs/domain.log")), 0o600);
    assert_eq!(mode(&state.join("zones")), 0o700);
    assert_eq!(mode(&state.join("zones/dc.token")), 0o600);
    assert_eq!(mode(&state.join("domain/admin.token")), 0o600);

    let admin = h.client(&up.url, Some(&up.token));
    // Kill the domain as soon as it is back, four times: the backoff climbs…
    let kill_domain = |h: &Harness| {
        let pid = wait_for("the domain to run", Duration::from_secs(30), || {
            let pid = domain_pid(h)?;
            h.call(&admin, "GET", "/1.0/domain", None).ok().map(|_| pid)
        });
        // SAFETY: kills a process this test started.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
        wait_for("the domain to die", Duration::from_secs(10), || (domain_pid(h) != Some(pid)).then_some(()));
    };
    for _ in 0..4 {
        kill_domain(&h);
    }
    // …then it runs healthy for longer than the stated period, and is killed again.
    let healthy = Duration::from_millis(zonal_control::backoff::STABLE_AFTER_MS + 1_000);
    wait_for("the domain to run", Duration::from_secs(30), || h.call(&admin, "GET", "/1.0/domain", None).ok());
    std::thread::sleep(healthy);
    kill_domain(&h);
    wait_for("the domain to run", Duration::from_secs(30), || h.call(&admin, "GET", "/1.0/domain", None).ok());
    let log = std::fs::read_to_string(&up.log).unwrap_or_default();
    let delays: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("the domain orchestrator exited unexpectedly"))
        .filter_map(|l| l.split("restarting it in ").nth(1))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(delays, ["200ms", "400ms", "800ms", "1.6s", "200ms"], "{log}");
    up.stop();
    h.assert_no_leftovers();
}
