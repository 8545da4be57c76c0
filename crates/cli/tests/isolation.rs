//! Instances are isolated from the orchestrator and from each other (issue 14, item 2): a
//! hostile `run:` under `zonal up` as root tries to reach the daemons' tokens and stores,
//! another provider's instance and the zone itself, and fails at every step, while the same
//! probe run as the zone's user (root, with the zone's environment — what an instance was
//! before) succeeds at every step.
//!
//! Over 127.0.0.1 it then calls the other provider's instance admin API (with no token, its
//! own instance token and its own admin secret) and both daemons' `/metrics` (with no token
//! and its instance token): every request is refused 401 — the admin API wants the secret
//! only that instance's zone holds, `/metrics` wants an operator's token.
//!
//! These tests need root (they check the real privilege drop): they fail, saying so, when
//! not run as root.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use support::{instance_admin, pid_of, port_of, wait_for, wait_running, Harness, ZONAL};
use zonal_proto::Client;

const INFRA: &str = "kind: Infrastructure\nname: iso\nzones:\n  - name: z1\n    location: {lat: 51.2, lon: 4.4}\n    hosts:\n      - name: h1\n        capacity: {cpu: 8, memory: 16Gi}\n";

/// Another provider's service: the bundled workload, holding its instance token.
const VAULT: &str = "kind: Service\nname: vault\ncomponents:\n  - name: vault\n    run: zonal workload --slots 2\n";
/// The probe's own provider's service: the bundled workload too.
const MINE: &str = "kind: Service\nname: mine\ncomponents:\n  - name: mine\n    run: zonal workload --slots 2\n";

/// The hostile probe: every attempt prints `<what>-ok` or `<what>-denied`; then it idles.
/// Run by bash (for its `/dev/tcp`: a plain HTTP/1.1 request needs no other tool).
const PROBE: &str = r#"
# http METHOD PORT PATH TOKEN BODY: prints the status code (000: no connection).
http() {
  exec 3<>"/dev/tcp/127.0.0.1/$2" 2>/dev/null || { echo 000; return; }
  local auth="" code
  if [ -n "$4" ]; then auth="Authorization: Bearer $4"$'\r\n'; fi
  printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%sContent-Type: application/json\r\nContent-Length: %s\r\n\r\n%s' "$1" "$3" "$auth" "${#5}" "$5" >&3
  read -r _ code _ <&3
  exec 3<&- 3>&-
  echo "${code:-000}"
}
# try LABEL METHOD PORT PATH TOKEN BODY: 401 or 403 is a refusal, anything else got through.
try() {
  local code; code=$(http "$2" "$3" "$4" "$5" "$6")
  case $code in 401|403) echo "http-denied $1 $code";; *) echo "http-ok $1 $code";; esac
}
if [ -n "$PROBE_ADMIN" ]; then
  for t in none instance-token admin-secret; do
    case $t in none) tok="";; instance-token) tok="$ZONAL_INSTANCE_TOKEN";; admin-secret) tok="$ZONAL_ADMIN_TOKEN";; esac
    try "admin:GET/1.0/state:$t" GET "$PROBE_ADMIN" /1.0/state "$tok" ""
    try "admin:PUT/1.0/slots:$t" PUT "$PROBE_ADMIN" /1.0/slots "$tok" '{"max":0}'
    try "admin:POST/1.0/configs:$t" POST "$PROBE_ADMIN" /1.0/configs "$tok" '{"name":"stolen","port":0}'
    try "admin:DELETE/1.0/state:$t" DELETE "$PROBE_ADMIN" /1.0/state "$tok" ""
  done
  for d in "zone:$PROBE_ZONE" "domain:$PROBE_DOMAIN"; do
    try "metrics:${d%%:*}:none" GET "${d#*:}" /metrics "" ""
    try "metrics:${d%%:*}:instance-token" GET "${d#*:}" /metrics "$ZONAL_INSTANCE_TOKEN" ""
  done
  # Data ports, straight (not through the gateway): the other provider's, then its own
  # provider's. A served session starts with the workload's greeting.
  for d in "data:$PROBE_DATA" "own-data:$PROBE_OWN_DATA"; do
    line=$( { exec 3<>"/dev/tcp/127.0.0.1/${d#*:}" && read -r -t 5 l <&3 && echo "$l"; } 2>/dev/null )
    case $line in zonal-workload*) echo "${d%%:*}-port reached";; *) echo "${d%%:*}-port refused: $line";; esac
  done
fi
echo "ids $(id -u) $(id -g) $(id -G)"
echo "cwd $(stat -c '%a %u' .)"
for f in $PROBE_FILES; do if cat "$f" >/dev/null 2>&1; then echo "read-ok $f"; else echo "read-denied $f"; fi; done
for d in $PROBE_DIRS; do if ls "$d" >/dev/null 2>&1; then echo "list-ok $d"; else echo "list-denied $d"; fi; done
for w in $PROBE_WRITES; do if (echo x > "$w") 2>/dev/null; then rm -f "$w"; echo "write-ok $w"; else echo "write-denied $w"; fi; done
for p in $PROBE_PIDS; do if kill -0 "$p" 2>/dev/null; then echo "kill-ok $p"; else echo "kill-denied $p"; fi; done
for v in ZONAL_ZONE_TOKEN ZONAL_TOKEN; do if env | grep -q "^$v="; then echo "env-has $v"; else echo "env-lacks $v"; fi; done
echo probe-done
exec sleep 600
"#;

fn assert_root() {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test checks that a zone running as root drops instances to unprivileged uids: run it as root (CI does)"
    );
}

/// The pid of the daemon `zonal <kind> … --name <name> …` this test started (its working
/// directory is under the test's).
fn daemon_pid(h: &Harness, kind: &str, name: Option<&str>) -> u32 {
    let root = h.path();
    let found = std::fs::read_dir("/proc").expect("/proc").flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
        if !cwd.starts_with(&root) {
            return None;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let named = name.is_none_or(|n| args.windows(2).any(|w| w[0] == "--name" && w[1] == n));
        (args.get(1).map(String::as_str) == Some(kind) && named).then_some(pid)
    });
    found.unwrap_or_else(|| panic!("no `zonal {kind}` process of this test"))
}

/// `/proc/<pid>/environ` as a map (read as root).
fn environ(pid: u32) -> BTreeMap<String, String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    raw.split(|b| *b == 0)
        .filter_map(|kv| String::from_utf8_lossy(kv).split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// The real uid of `pid` (`/proc/<pid>/status`).
fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("Uid line")
}

/// `METHOD path` with `body` against `client`: (status, body text).
fn raw(h: &Harness, client: &Client, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let m = zonal_proto::client::Method::from_bytes(method.as_bytes()).expect("method");
    match h.rt.block_on(client.send_raw(m, path, body)) {
        Ok((status, bytes)) => (status, String::from_utf8_lossy(&bytes).into_owned()),
        Err(zonal_proto::ClientError::Api { status, body, .. }) => (status, format!("{body:?}")),
        Err(e) => (0, e.to_string()),
    }
}

/// Registers `manifest` with `client` (a provider's token) and deploys it.
fn deploy(h: &Harness, client: &Client, manifest: &str) -> String {
    let v = h.call(client, "POST", "/1.0/services", Some(json!({ "manifest": manifest }))).expect("register");
    let id = v["serviceid"].as_str().expect("serviceid").to_string();
    h.call(client, "PUT", &format!("/1.0/services/{id}/state"), Some(json!({"state": "deploy"}))).expect("deploy");
    id
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("json string")
}

#[test]
fn a_hostile_instance_reaches_nothing_of_the_daemons_or_of_another_provider() {
    assert_root();
    let mut h = Harness::new();
    // Only Zonal's own protections stand between an instance and the daemons' files: the
    // test's directory is opened to everyone (as /var/lib or /srv would be)…
    std::fs::set_permissions(h.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // …while the `zonal` executable sits where no other uid can reach it (as under /root).
    let bin = h.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o700)).expect("chmod bin");
    let exe = bin.join("zonal");
    if std::fs::hard_link(ZONAL, &exe).is_err() {
        std::fs::copy(ZONAL, &exe).expect("a copy of zonal");
    }
    let private = h.path().join("home");
    std::fs::create_dir(&private).expect("home");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod home");
    let state = h.path().join("up");
    let mut up = h.up_exe(&exe, INFRA, &state, &private.join("context.json"));
    let admin = h.client(&up.url, Some(&up.token));
    let bell = h.client(&up.url, Some(&h.token(&admin, "provider", "bell")));
    let acme = h.client(&up.url, Some(&h.token(&admin, "provider", "acme")));

    // bell's service: the bundled workload (run through its descriptor by a uid that cannot
    // reach bin/zonal), holding its own token.
    deploy(&h, &bell, VAULT);
    let vault = wait_running(&h, &bell, "vault", 1).remove(0);
    let vault_id = vault["id"].as_str().expect("id").to_string();
    let vault_pid = vault["pid"].as_u64().unwrap_or_else(|| panic!("no pid: {vault}")) as u32;
    let vault_dir = PathBuf::from(vault["workdir"].as_str().expect("workdir"));
    let vault_log = PathBuf::from(vault["log"].as_str().expect("log"));
    let zone_pid = daemon_pid(&h, "zone", Some("z1"));
    let domain_pid = daemon_pid(&h, "domain", None);
    let zone_dir = state.join("zones").join("z1");
    // The ports the probe calls over 127.0.0.1: vault's admin API and data port, both daemons.
    let vault_admin = instance_admin(std::slice::from_ref(&vault), "vault");
    let data_port = |admin: &Client| {
        wait_for("the workload's data port", Duration::from_secs(20), || {
            let (status, text) = raw(&h, admin, "GET", "/1.0/slots", None);
            let v: Value = serde_json::from_str(&text).ok()?;
            (status == 200).then(|| v["configs"]["workload"]["port"].as_u64()).flatten()
        })
    };
    let vault_data = data_port(&vault_admin);
    deploy(&h, &acme, MINE);
    let mine = wait_running(&h, &acme, "mine", 1).remove(0);
    let mine_data = data_port(&instance_admin(std::slice::from_ref(&mine), "mine"));
    // The zone's own user (root here) reaches vault's data port: the zone's gateway would.
    let mut from_root = std::net::TcpStream::connect(("127.0.0.1", vault_data as u16)).expect("connect as root");
    from_root.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut greeting = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut from_root), &mut greeting).expect("greeting");
    assert!(greeting.starts_with("zonal-workload "), "{greeting}");
    drop(from_root);
    let vault_admin_port = port_of(std::slice::from_ref(&vault), "vault", "admin");
    let zone_url = std::fs::read_to_string(zone_dir.join("zone.url")).expect("zone url");
    let port_in = |url: &str| url.trim().rsplit(':').next().unwrap_or_default().trim_end_matches('/').to_string();
    let (zone_port, domain_port) = (port_in(&zone_url), port_in(&up.url));

    let targets = |paths: &[&Path]| paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ");
    let files = targets(&[
        Path::new("/etc/passwd"), // a control: world-readable
        &state.join("domain").join("admin.token"),
        &state.join("domain").join("domain.redb"),
        &state.join("zones").join("z1.token"),
        &zone_dir.join("zone.redb"),
        &vault_dir.join("instance.json"),
        &vault_log,
        Path::new(&format!("/proc/{zone_pid}/environ")),
        Path::new(&format!("/proc/{domain_pid}/environ")),
        Path::new(&format!("/proc/{vault_pid}/environ")),
    ]);
    let dirs = targets(&[&state, &zone_dir, &zone_dir.join("instances"), &vault_dir, &state.join("domain")]);
    let writes = targets(&[&vault_dir.join("pwned"), &zone_dir.join("instances").join("pwned"), &state.join("pwned")]);
    let pids = format!("{vault_pid} {zone_pid} {domain_pid}");
    let (admin_port, data_port, own_data_port) =
        (vault_admin_port.to_string(), vault_data.to_string(), mine_data.to_string());
    let mut env: BTreeMap<&str, &str> = [
        ("PROBE_ADMIN", admin_port.as_str()),
        ("PROBE_DATA", data_port.as_str()),
        ("PROBE_OWN_DATA", own_data_port.as_str()),
        ("PROBE_ZONE", zone_port.as_str()),
        ("PROBE_DOMAIN", domain_port.as_str()),
        ("PROBE_FILES", files.as_str()),
        ("PROBE_DIRS", dirs.as_str()),
        ("PROBE_WRITES", writes.as_str()),
        ("PROBE_PIDS", pids.as_str()),
    ]
    .into();
    let env_yaml: Vec<String> = env.iter().map(|(k, v)| format!("{k}: {}", quoted(v))).collect();
    let probe = format!(
        "kind: Service\nname: probe\ncomponents:\n  - name: probe\n    run:\n      command: [\"bash\", \"-c\", {}]\n      env: {{{}}}\n",
        quoted(PROBE),
        env_yaml.join(", ")
    );
    deploy(&h, &acme, &probe);
    let inst = wait_running(&h, &acme, "probe", 1).remove(0);
    let probe_id = inst["id"].as_str().expect("id").to_string();
    let probe_pid = inst["pid"].as_u64().expect("pid") as u32;
    let logs = format!("/1.0/instances/{probe_id}/logs?lines=200");
    let out = wait_for("the probe to finish", Duration::from_secs(20), || {
        let (status, text) = raw(&h, &acme, "GET", &logs, None);
        (status == 200 && text.contains("probe-done")).then_some(text)
    });

    // Every attempt failed (the control read shows the probe itself works).
    let lines: Vec<&str> = out.lines().collect();
    let ok: Vec<&&str> = lines.iter().filter(|l| l.contains("-ok ") && !l.ends_with(" /etc/passwd")).collect();
    assert!(ok.is_empty(), "the hostile instance reached: {ok:?}\n{out}");
    assert!(out.contains("read-ok /etc/passwd"), "{out}");
    let denied = lines.iter().filter(|l| l.contains("-denied ")).count();
    // 10 files (less the control), 5 directories, 3 writes, 3 signals; 12 admin API requests
    // and 4 metrics requests.
    assert_eq!(denied, 9 + 5 + 3 + 3 + 12 + 4, "{out}");
    // The admin API: 401 whatever the token; /metrics: 401 without one, 403 for an instance's
    // token at its zone (a token the zone knows, of a role /metrics does not admit), 401 for
    // it at the domain (a token the domain does not know).
    let admin_401 = lines.iter().filter(|l| l.starts_with("http-denied admin:") && l.ends_with(" 401")).count();
    assert_eq!(admin_401, 12, "{out}");
    for (label, code) in
        [("zone:none", 401), ("zone:instance-token", 403), ("domain:none", 401), ("domain:instance-token", 401)]
    {
        assert!(out.contains(&format!("http-denied metrics:{label} {code}\n")), "{label}: {out}");
    }
    // vault is untouched, and its zone (with the secret) still reaches its admin API.
    let state_now = h.get(&vault_admin, "/1.0/state");
    assert_eq!(state_now["state"], "running", "{state_now}");
    let slots_now = h.get(&vault_admin, "/1.0/slots");
    assert_eq!((slots_now["max"].as_u64(), slots_now["configs"].get("stolen")), (Some(2), None), "{slots_now}");
    // vault's data port refuses a session straight from another provider's uid (no slot is
    // taken); the probe's own provider's instance serves it.
    assert!(
        out.contains("\ndata-port refused: refused: sessions reach this instance through its zone's gateway only\n"),
        "{out}"
    );
    assert!(out.contains("\nown-data-port reached\n"), "{out}");
    assert_eq!(slots_now["used"].as_u64(), Some(0), "{slots_now}");
    assert!(out.contains("env-lacks ZONAL_ZONE_TOKEN") && out.contains("env-lacks ZONAL_TOKEN"), "{out}");

    // Its own uid: not root, not the zone's, not bell's; its directory is its own and 0700.
    let (probe_uid, vault_uid) = (uid_of(probe_pid), uid_of(vault_pid));
    assert!(probe_uid >= 200_000 && vault_uid >= 200_000 && probe_uid != vault_uid, "{probe_uid} {vault_uid}");
    assert_ne!(uid_of(zone_pid), probe_uid);
    assert!(out.contains(&format!("ids {probe_uid} {probe_uid} {probe_uid}\n")), "{out}");
    assert!(out.contains(&format!("cwd 700 {probe_uid}\n")), "{out}");
    let m = std::fs::metadata(&vault_dir).expect("vault dir");
    assert_eq!((m.uid(), m.mode() & 0o777), (vault_uid, 0o700));

    // Its environment: PATH, HOME, the manifest's env, ZONAL_* of its own; no daemon token.
    // (`sleep` is what the probe's shell became: bash added PWD, SHLVL and `_`.)
    let probe_env = environ(probe_pid);
    for k in probe_env.keys() {
        assert!(
            matches!(k.as_str(), "PATH" | "HOME" | "PWD" | "SHLVL" | "_")
                || k.starts_with("PROBE_")
                || k.starts_with("ZONAL_"),
            "{k} in the instance's environment"
        );
    }
    assert!(!probe_env.contains_key("ZONAL_ZONE_TOKEN") && !probe_env.contains_key("ZONAL_TOKEN"));
    let token = probe_env["ZONAL_INSTANCE_TOKEN"].clone();

    // With whatever token it has: no heartbeat as its zone at the domain, nothing at the zone
    // beyond its own reports.
    let report = json!({"hosts": [], "services": [], "instances": 0});
    let as_instance = h.client(&up.url, Some(&token));
    let (status, body) = raw(&h, &as_instance, "PUT", "/1.0/zones/z1/status", Some(report.clone()));
    assert_eq!(status, 401, "a heartbeat with the instance's token: {body}");
    let at_zone = h.client(zone_url.trim(), Some(&token));
    let slots = json!({"max": 1, "free": 0, "used": 1});
    let (status, body) = raw(&h, &at_zone, "PUT", &format!("/1.0/instances/{vault_id}/slots"), Some(slots));
    assert_eq!(status, 403, "a slot report for another provider's instance: {body}");
    let (status, body) = raw(&h, &at_zone, "GET", "/1.0/services", None);
    assert_eq!(status, 403, "the zone's service list: {body}");

    // The same probe as the zone's user with the zone's environment — what an instance was
    // before — reaches everything: the failures above are the isolation's doing.
    let zone_token = std::fs::read_to_string(state.join("zones").join("z1.token")).expect("zone token");
    // (The HTTP part is left out: the admin secret and /metrics tokens do not depend on the
    // caller's uid, root is refused the same.)
    for k in ["PROBE_ADMIN", "PROBE_DATA", "PROBE_OWN_DATA", "PROBE_ZONE", "PROBE_DOMAIN"] {
        env.remove(k);
    }
    let before = std::process::Command::new("bash")
        .arg("-c")
        .arg(PROBE.replace("exec sleep 600", ""))
        .envs(&env)
        .env("ZONAL_ZONE_TOKEN", zone_token.trim())
        .current_dir(&private)
        .output()
        .expect("run the probe as root");
    let before = String::from_utf8_lossy(&before.stdout).into_owned();
    assert!(!before.contains("-denied "), "as the zone's user: {before}");
    assert!(before.contains("env-has ZONAL_ZONE_TOKEN"), "{before}");

    // Deleted: bell's instance directory goes, its log stays and `zonal logs` still shows it.
    let (status, body) = raw(&h, &bell, "DELETE", "/1.0/services/vault", None);
    assert!(status < 300, "delete vault: {status} {body}");
    wait_for("vault's directory to be removed", Duration::from_secs(20), || (!vault_dir.exists()).then_some(()));
    let kept = std::fs::metadata(&vault_log).expect("the log is kept");
    assert_eq!((kept.uid(), kept.mode() & 0o777), (0, 0o600));
    let shown = up.zonal(&["logs", &vault_id]);
    assert!(shown.contains("workload workload: 2 slots"), "{shown}");

    // What an instance could do before, with the zone's token it had in its environment: the
    // domain takes the heartbeat.
    let as_zone = h.client(&up.url, Some(zone_token.trim()));
    let (status, body) = raw(&h, &as_zone, "PUT", "/1.0/zones/z1/status", Some(report));
    assert_eq!(status, 200, "the zone's own token: {body}");

    up.stop();
    h.assert_no_leftovers();
}

/// acme's service: a front end with a channel to a back end whose process does not listen on
/// its `db` port (it died, or never bound it).
const SHOP: &str = "kind: Service\nname: shop\ncomponents:\n  - name: front\n    run: zonal workload --slots 2\n  - name: back\n    run: sleep 600\n    ports:\n      - {name: db, protocol: tcp}\nchannels:\n  - {from: front, to: back}\n";

/// One line from `port` on 127.0.0.1 (empty when the connection closes first).
fn first_line(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut line = String::new();
    let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut s), &mut line);
    line
}

#[test]
fn the_gateway_sends_nothing_to_another_providers_process_holding_an_instances_port() {
    assert_root();
    let mut h = Harness::new();
    let mut up = h.up(INFRA, &[]);
    let admin = h.client(&up.url, Some(&up.token));
    let bell = h.client(&up.url, Some(&h.token(&admin, "provider", "bell")));
    let acme = h.client(&up.url, Some(&h.token(&admin, "provider", "acme")));

    deploy(&h, &acme, SHOP);
    let shop = wait_running(&h, &acme, "shop", 2);
    let db = port_of(&shop, "back", "db");
    let gateway: u16 = support::environ_var(pid_of(&shop, "front"), "ZONAL_PEER_BACK")
        .and_then(|a| a.rsplit(':').next().and_then(|p| p.parse().ok()))
        .expect("the front end's gateway to the back end (ZONAL_PEER_BACK)");

    // bell takes the back end's port (as if after its death) with a process of its own.
    let squat = format!(
        "kind: Service\nname: squat\ncomponents:\n  - name: squat\n    run: zonal workload --slots 2 --name squatter --port {db}\n"
    );
    deploy(&h, &bell, &squat);
    let squatter = wait_running(&h, &bell, "squat", 1).remove(0);
    let (squatter_uid, back_uid) = (uid_of(pid_of(&[squatter], "squat")), uid_of(pid_of(&shop, "back")));
    assert_ne!(squatter_uid, back_uid, "two providers, two uids");
    // It really holds the port (root reaches it straight)…
    let direct = wait_for("the squatter to listen on the back end's port", Duration::from_secs(20), || {
        let line = first_line(db);
        line.starts_with("zonal-workload squatter").then_some(line)
    });
    assert!(direct.contains("config=squatter"), "{direct}");
    // …but the gateway in front of acme's back end sends acme's sessions nowhere: the
    // socket that accepted its connection is not the back end's uid.
    for _ in 0..3 {
        let line = first_line(gateway);
        assert!(line.starts_with("busy:"), "a session for acme's back end reached bell's process: {line:?}");
    }

    up.stop();
    h.assert_no_leftovers();
}
