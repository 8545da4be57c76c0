//! The domain's plan carried out by a real zone manager, through its HTTP API.
//!
//! Each test runs `zonal_zone::serve` in process on 127.0.0.1 (ephemeral port) with its
//! state in a temporary directory, beside a stand-in domain that records the zone's
//! registration (for the key to call it) and its heartbeats. Instances are real processes
//! (`sleep`), so their environment can be read from `/proc`; plain TCP listeners stand for
//! the gateways of other zones. A guard kills every process whose working directory is in
//! the test's directory, even when the test fails; each test ends by checking none is left.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use zonal_model::{Amount, Resources};
use zonal_proto::wire::{DomainInfo, HostInfo, ZoneRegistered, ZoneRegistration, ZoneReport};
use zonal_proto::Client;
use zonal_zone::{serve, ZoneOptions};

const PATIENCE: Duration = Duration::from_secs(20);

/// Pids of live processes whose working directory is under `dir`.
fn processes_under(dir: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return out };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()).unwrap_or("");
        if cwd.starts_with(dir) && state != "Z" && state != "X" {
            out.push(pid);
        }
    }
    out
}

/// Kills what the test started, however it ends.
struct NoLeftovers(PathBuf);

impl Drop for NoLeftovers {
    fn drop(&mut self) {
        for pid in processes_under(&self.0) {
            // SAFETY: signals processes (and their groups) this test's zone started.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

async fn wait_for<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {PATIENCE:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What the stand-in domain has seen.
#[derive(Default)]
struct Seen {
    key: Option<String>,
    report: Option<ZoneReport>,
}

struct Domain {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

async fn domain() -> Domain {
    async fn register(State(seen): State<Arc<Mutex<Seen>>>, Json(reg): Json<ZoneRegistration>) -> Json<ZoneRegistered> {
        seen.lock().expect("seen").key = Some(reg.api_key);
        Json(ZoneRegistered {
            domain: DomainInfo { id: "d-test".into(), name: "test".into() },
            zone: Default::default(),
        })
    }
    async fn status(State(seen): State<Arc<Mutex<Seen>>>, Json(report): Json<ZoneReport>) -> Json<Value> {
        seen.lock().expect("seen").report = Some(report);
        Json(json!({}))
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new()
        .route("/1.0/zones", post(register))
        .route("/1.0/zones/{zone}/status", put(status))
        .with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the domain");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Domain { url, seen }
}

struct Zone {
    client: Client,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Zone {
    async fn start(dir: &Path, domain: &Domain, hosts: &[HostInfo]) -> Zone {
        domain.seen.lock().expect("seen").key = None;
        let opts = ZoneOptions {
            name: "z1".into(),
            listen: "127.0.0.1:0".parse().expect("address"),
            state_dir: dir.join("zone"),
            domain_url: Some(domain.url.clone()),
            token: Some("zone-token".into()),
            tier: None,
            hosts: hosts.to_vec(),
            price: Default::default(),
            heartbeat: Duration::from_millis(200),
            stop_grace: Duration::from_secs(2),
            zonal_exe: PathBuf::from("/bin/false"),
            location: None,
            slots: Default::default(),
            isolation: Default::default(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready) = oneshot::channel::<SocketAddr>();
        let task = tokio::spawn(serve(
            opts,
            async move {
                let _ = stopped.await;
            },
            move |addr| {
                let _ = ready_tx.send(addr);
            },
        ));
        let Ok(addr) = ready.await else {
            panic!("the zone did not start: {:?}", task.await);
        };
        let key = wait_for("the zone to register", async || domain.seen.lock().expect("seen").key.clone()).await;
        let client = Client::new(&format!("http://{addr}"), Some(key), Duration::from_secs(10)).expect("client");
        Zone { client, stop, task }
    }

    /// A clean stop: the zone stops its instances and returns.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("the zone task").expect("the zone stopped cleanly");
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let m = zonal_proto::client::Method::from_bytes(method.as_bytes()).expect("method");
        match self.client.send_raw(m, path, body).await {
            Ok((_, bytes)) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    async fn get(&self, path: &str) -> Value {
        self.call("GET", path, None).await
    }

    /// The service's instances once there are `n` with a process, by component.
    async fn instances(&self, service: &str, n: usize) -> Vec<Value> {
        wait_for(&format!("{n} instances of {service} with a process"), async || {
            let all = self.get(&format!("/1.0/services/{service}/instances")).await;
            let all = all.as_array()?.clone();
            (all.len() == n && all.iter().all(|i| i["pid"].is_u64())).then_some(all)
        })
        .await
    }

    async fn metrics(&self) -> String {
        let (_, bytes) =
            self.client.send_raw(zonal_proto::client::Method::GET, "/metrics", None).await.expect("GET /metrics");
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn host(name: &str, millicores: u64, features: &[(&str, &str)]) -> HostInfo {
    HostInfo {
        name: name.into(),
        capacity: Resources::new().with("cpu", Amount::cpu(millicores)).with("memory", Amount::bytes(4 << 30)),
        features: features.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        available: true,
        power: Default::default(),
    }
}

fn environment(pid: u64) -> BTreeMap<String, String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("the instance's environment");
    raw.split(|b| *b == 0)
        .filter_map(|v| String::from_utf8_lossy(v).split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

async fn assert_no_leftovers(dir: &Path) {
    wait_for("every instance to be gone", async || processes_under(dir).is_empty().then_some(())).await;
}

const PLAN: &str = "kind: Service\nname: plan\nentry: web\ncomponents:\n  - name: web\n    run: sleep 120\n    resources: {cpu: 500m, memory: 64Mi}\n    scaling: {min_instances: 1, max_instances: 4}\n  - name: gpu\n    run: sleep 120\n    resources: {cpu: 500m, memory: 64Mi}\n    scaling: {min_instances: 0, max_instances: 2}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_hosts_and_overrides_decide_where_instances_run_and_the_heartbeat_says_where() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path().canonicalize().expect("path");
    let _guard = NoLeftovers(dir.clone());
    let domain = domain().await;
    // h0 has the most free CPU: without a plan every web instance would go there.
    let hosts = [
        host("h0", 8000, &[]),
        host("h1", 4000, &[]),
        host("h2", 4000, &[]),
        host("g0", 2000, &[("accelerator", "t4")]),
    ];
    let zone = Zone::start(&dir, &domain, &hosts).await;
    zone.call("POST", "/1.0/services", Some(json!({"serviceid": "plan", "manifest": PLAN}))).await;
    let view = zone
        .call(
            "PUT",
            "/1.0/services/plan/slots",
            Some(json!({
                "instances": {"web": 3, "gpu": 1},
                "hosts": {"web": {"h1": 1, "h2": 1}},
                "overrides": {"gpu": {
                    "resources": {"cpu": {"value": 1500, "unit": "millicores"}, "memory": {"value": 67108864, "unit": "bytes"}},
                    "requires": {"accelerator": "t4"}
                }}
            })),
        )
        .await;
    assert_eq!(view["instances"], json!({}), "counts apply once deployed: {view}");
    zone.call("PUT", "/1.0/services/plan/state", Some(json!({"state": "deploy"}))).await;

    let where_ = |all: &[Value]| {
        let mut out: Vec<(String, String)> = all
            .iter()
            .map(|i| (i["component"].as_str().unwrap_or("").to_string(), i["host"].as_str().unwrap_or("").to_string()))
            .collect();
        out.sort();
        out
    };
    let want: Vec<(String, String)> = [("gpu", "g0"), ("web", "h0"), ("web", "h1"), ("web", "h2")]
        .map(|(c, h)| (c.to_string(), h.to_string()))
        .to_vec();
    let all = zone.instances("plan", 4).await;
    assert_eq!(where_(&all), want, "planned hosts first, then the zone's choice; the override needs g0");

    // The heartbeat tells the domain where each instance runs and what it reserves there.
    let placements = wait_for("a heartbeat with every placement", async || {
        let seen = domain.seen.lock().expect("seen");
        let r = seen.report.as_ref()?;
        (r.placements.len() == 4 && r.placements.iter().all(|p| p.resources.get("cpu") > 0))
            .then(|| r.placements.clone())
    })
    .await;
    let gpu = placements.iter().find(|p| p.component == "gpu").expect("the gpu instance");
    assert_eq!((gpu.host.as_str(), gpu.resources.get("cpu")), ("g0", 1500), "the override's resources");
    assert!(placements.iter().filter(|p| p.component == "web").all(|p| p.resources.get("cpu") == 500));
    assert!(placements.iter().all(|p| p.service == "plan" && all.iter().any(|i| i["id"] == p.id.as_str())));

    // A plan that is not this zone's is refused, naming what is wrong.
    let m = zonal_proto::client::Method::PUT;
    let bad = json!({"instances": {"web": 1}, "hosts": {"web": {"h7": 1}}});
    match zone.client.send_raw(m, "/1.0/services/plan/slots", Some(bad)).await {
        Err(zonal_proto::ClientError::Api { status, body, .. }) => {
            assert_eq!(status, 400);
            assert!(body.detail.contains("no host \"h7\""), "{}", body.detail);
        }
        other => panic!("expected 400, got {other:?}"),
    }

    // The plan is kept with the service: after a clean stop (instances stop, counts stay)
    // the restarted zone places the instances the same way.
    zone.stop().await;
    assert_no_leftovers(&dir).await;
    let zone = Zone::start(&dir, &domain, &hosts).await;
    let all = zone.instances("plan", 4).await;
    assert_eq!(where_(&all), want, "after a restart");
    zone.stop().await;
    assert_no_leftovers(&dir).await;
}

/// A stand-in for another zone's gateway: greets each connection with `name`, then echoes.
async fn remote_gateway(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(format!("{name}\n").as_bytes()).await;
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Connects to `addr` and reads the first line ("" when the connection is closed first).
async fn greeting(addr: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect to the zone's listener");
    let mut line = String::new();
    let mut reader = BufReader::new(&mut s);
    let _ = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await.expect("an answer");
    (s, line.trim_end().to_string())
}

const DUO: &str = "kind: Service\nname: duo\nentry: front\ncomponents:\n  - name: front\n    run: sleep 120\n    resources: {cpu: 100m, memory: 64Mi}\n  - name: back\n    run: sleep 120\n    resources: {cpu: 100m, memory: 64Mi}\n    scaling: {min_instances: 0, max_instances: 2}\n    ports:\n      - {name: rpc, protocol: tcp}\nchannels:\n  - {from: front, to: back}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_peers_are_reached_through_a_local_listener_that_follows_the_plan() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path().canonicalize().expect("path");
    let _guard = NoLeftovers(dir.clone());
    let domain = domain().await;
    let hosts = [host("h0", 4000, &[])];
    let (a, b) = (remote_gateway("zone-a").await, remote_gateway("zone-b").await);
    let zone = Zone::start(&dir, &domain, &hosts).await;
    zone.call("POST", "/1.0/services", Some(json!({"serviceid": "duo", "manifest": DUO}))).await;
    let plan = |back: u32, remote: &str| json!({"instances": {"front": 1, "back": back}, "remote_peers": {"back/rpc": remote}});
    zone.call("PUT", "/1.0/services/duo/slots", Some(plan(0, &a.to_string()))).await;
    zone.call("PUT", "/1.0/services/duo/state", Some(json!({"state": "deploy"}))).await;

    // The listener in front of back/rpc relays to zone A, and the view says so.
    let local = wait_for("the remote listener", async || {
        let v = zone.get("/1.0/services/duo").await;
        let local = v["peers"]["back/rpc"].as_str()?.to_string();
        (v["remote_peers"][&local] == a.to_string()).then_some(local)
    })
    .await;
    let (held, line) = greeting(&local).await;
    assert_eq!(line, "zone-a");
    let v = zone.get("/1.0/services/duo").await;
    assert_eq!(v["gateway_sessions"], 1, "the relayed session is counted: {v}");
    assert!(zone.metrics().await.contains("zonal_zone_remote_sessions{service=\"duo\",peer=\"back/rpc\"} 1"));
    drop(held);

    // The front instance was told the local listener, exactly as for a local peer.
    let front = zone.instances("duo", 1).await;
    let pid = front[0]["pid"].as_u64().expect("pid");
    let env = environment(pid);
    assert_eq!(env.get("ZONAL_PEER_BACK"), Some(&local), "{env:?}");
    assert_eq!(env.get("ZONAL_PEER_BACK_RPC"), Some(&local), "{env:?}");

    // Late binding: the remote peer is in the namespace where `back/` lookups find it.
    let entry = json!({"component": "back", "endpoints": {"rpc": local}, "remote": a.to_string()});
    wait_for("the remote peer in the namespace", async || {
        let v = zone.get("/1.0/context/duo?prefix=back/").await;
        (v == json!({"back/remote-rpc": entry})).then_some(())
    })
    .await;

    // A new address: same local port, new connections go to zone B, no instance restarts.
    let v = zone.call("PUT", "/1.0/services/duo/slots", Some(plan(0, &b.to_string()))).await;
    let mut relayed = serde_json::Map::new();
    relayed.insert(local.clone(), json!(b.to_string()));
    assert_eq!(v["remote_peers"], Value::Object(relayed), "{v}");
    assert_eq!(greeting(&local).await.1, "zone-b");
    let again = zone.instances("duo", 1).await;
    assert_eq!(again[0]["pid"].as_u64(), Some(pid), "the front instance kept running");

    // An unreachable remote: the connection is closed (and counted).
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address").to_string()
    };
    zone.call("PUT", "/1.0/services/duo/slots", Some(plan(0, &gone))).await;
    assert_eq!(greeting(&local).await.1, "", "closed without a word");
    let metrics = zone.metrics().await;
    assert!(metrics.contains("zonal_zone_remote_unreachable_total{service=\"duo\",peer=\"back/rpc\"} 1"), "{metrics}");

    // Back runs here too: local instances win, the listener no longer relays.
    let v = zone.call("PUT", "/1.0/services/duo/slots", Some(plan(1, &b.to_string()))).await;
    assert_eq!(v["remote_peers"], json!(null), "{v}");
    let (_s, line) = greeting(&local).await;
    assert!(line.starts_with("busy"), "a local instance of back is wanted (not running yet): no relay, got {line:?}");
    wait_for("the remote peer withdrawn from the namespace", async || {
        zone.get("/1.0/context/duo?prefix=back/").await.as_object()?.is_empty().then_some(())
    })
    .await;

    // Persisted: after a restart the listener is open again and relays to zone A.
    zone.call("PUT", "/1.0/services/duo/slots", Some(plan(0, &a.to_string()))).await;
    zone.stop().await;
    assert_no_leftovers(&dir).await;
    let zone = Zone::start(&dir, &domain, &hosts).await;
    let local = wait_for("the remote listener after the restart", async || {
        let v = zone.get("/1.0/services/duo").await;
        let local = v["peers"]["back/rpc"].as_str()?.to_string();
        (v["remote_peers"][&local] == a.to_string()).then_some(local)
    })
    .await;
    assert_eq!(greeting(&local).await.1, "zone-a");
    wait_for("the namespace to name the new listener", async || {
        let v = zone.get("/1.0/context/duo?prefix=back/").await;
        (v["back/remote-rpc"]["endpoints"]["rpc"] == local.as_str()).then_some(())
    })
    .await;
    zone.stop().await;
    assert_no_leftovers(&dir).await;
}
