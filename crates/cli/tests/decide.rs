//! The running domain decides with the optimiser (`zonal-place`), end to end under
//! `zonal up`: what `zonal apply --dry-run` and `zonal plan --context` show is what
//! `zonal apply` deploys; a chain's proximity class keeps it at the edge near its user; a
//! composite no zone can hold is split, its channel crosses zones through the zones'
//! gateways, and its bandwidth is reserved (a second service is refused for lack of it) and
//! released on delete; an infeasible service is refused naming the constraint and nothing is
//! deployed, or kept pending; a demand shift re-places a slot service without cutting a
//! session.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

/// Two small edge zones near the user, a large core zone ~1,700 km away (Lisbon).
const EDGE_AND_FAR_CORE: &str = "kind: Infrastructure
name: edge-and-far-core
domain: test
zones:
  - name: antwerp-edge
    location: {lat: 51.2194, lon: 4.4025}
    price: {cpu_hour: 0.06, memory_gib_hour: 0.008}
    hosts:
      - {name: a, capacity: {cpu: 4, memory: 8Gi}}
  - name: ghent-edge
    location: {lat: 51.0543, lon: 3.7174}
    price: {cpu_hour: 0.06, memory_gib_hour: 0.008}
    hosts:
      - {name: g, capacity: {cpu: 4, memory: 8Gi}}
  - name: lisbon-core
    location: {lat: 38.7223, lon: -9.1393}
    price: {cpu_hour: 0.03, memory_gib_hour: 0.004}
    hosts:
      - {name: l, count: 2, capacity: {cpu: 64, memory: 256Gi}}
links:
  - {from: antwerp-edge, to: ghent-edge, bandwidth: 10Gbps}
  - {from: antwerp-edge, to: lisbon-core, bandwidth: 10Gbps}
";

const METRO_CHAIN: &str = "kind: Service
name: cam
proximity: metro
components:
  - name: user-app
    user_side: true
    placement: {pin: {zone: antwerp-edge}}
  - name: fw
    run: zonal workload --slots 10 --name cam-fw
    resources: {cpu: 1, memory: 512Mi}
    public: true
    ports: [{name: video, protocol: tcp}]
  - name: cache
    run: zonal workload --slots 10 --name cam-cache
    resources: {cpu: 1, memory: 512Mi}
    ports: [{name: video, protocol: tcp}]
channels:
  - {from: user-app, to: fw, bandwidth: 20Mbps}
  - {from: fw, to: cache, bandwidth: 20Mbps, max_latency: 5ms}
";

fn write(h: &Harness, name: &str, text: &str) -> String {
    let p = h.path().join(name);
    std::fs::write(&p, text).expect("write a test file");
    p.to_str().expect("utf-8 path").to_string()
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// Running instances of `service` per zone.
fn running_by_zone(h: &Harness, c: &zonal_proto::Client, service: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let v = h.get(c, &format!("/1.0/services/{service}/instances"));
    for i in v.as_array().into_iter().flatten().filter(|i| i["state"] == "running") {
        *out.entry(i["zone"].as_str().unwrap_or("").to_string()).or_default() += 1;
    }
    out
}

#[test]
fn the_dry_run_shows_what_apply_deploys_and_a_metro_chain_stays_at_the_edge() {
    let mut h = Harness::new();
    let mut up = h.up(EDGE_AND_FAR_CORE, &[]);
    let admin = h.client(&up.url, Some(&up.token));
    let chain = write(&h, "cam.yaml", METRO_CHAIN);

    let dry = json_of(&up.zonal(&["apply", "--dry-run", "-f", &chain, "-o", "json"]));
    assert_eq!(dry["route"], "chain", "{dry}");
    assert_eq!(dry["check"]["violations"], json!([]), "{dry}");
    let zones: Vec<&str> = dry["target"]["zones"].as_object().expect("zones").keys().map(String::as_str).collect();
    assert!(zones.iter().all(|z| z.ends_with("-edge")), "the metro class keeps the chain at the edge: {dry}");
    assert_eq!(dry["diff"]["start"], 2, "{dry}");
    // Nothing was stored by the dry run.
    let (code, _) = h.call(&admin, "GET", "/1.0/services/cam", None).expect_err("not registered");
    assert_eq!(code, 404);

    // `zonal plan --context` decides the same on the same state.
    let ctx = up.context.to_str().expect("utf-8").to_string();
    let planned = json_of(&up.zonal(&["plan", "--context", &ctx, "-f", &chain, "-o", "json"]));
    assert_eq!(planned[0]["target"], dry["target"], "plan --context and apply --dry-run agree");
    // And the offline planner on the same files (nothing runs yet): the same hosts.
    let infra = h.path().join("infrastructure.yaml");
    let offline = json_of(&up.zonal(&["plan", "-f", infra.to_str().expect("utf-8"), "-f", &chain, "-o", "json"]));
    let mut hosts: Vec<(String, String, String)> = offline["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| p["component"] != "user-app")
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            (s("zone"), s("component"), s("host"))
        })
        .collect();
    hosts.sort();
    let mut runtime: Vec<(String, String, String)> = Vec::new();
    for (zone, comps) in dry["target"]["hosts"].as_object().expect("hosts") {
        for (comp, on) in comps.as_object().expect("components") {
            for host in on.as_object().expect("hosts").keys() {
                runtime.push((zone.clone(), comp.clone(), host.clone()));
            }
        }
    }
    runtime.sort();
    assert_eq!(hosts, runtime, "zonal plan and the running domain place the chain alike");
    let table = up.zonal(&["apply", "--dry-run", "-f", &chain]);
    assert!(table.contains("diff:") && table.contains("chain"), "{table}");

    // Applying it deploys exactly that placement.
    let out = up.zonal(&["apply", "-f", &chain]);
    assert!(out.contains("decided by chain"), "{out}");
    let decision = h.get(&admin, "/1.0/services/cam/decision");
    assert_eq!(decision["decision"]["target"], dry["target"], "apply deployed the dry run's placement");
    let want: BTreeMap<String, usize> = dry["target"]["zones"]
        .as_object()
        .expect("zones")
        .iter()
        .map(|(z, c)| {
            (z.clone(), c.as_object().map_or(0, |c| c.values().filter_map(Value::as_u64).sum::<u64>() as usize))
        })
        .collect();
    wait_for("the chain's instances to run where decided", Duration::from_secs(30), || {
        (running_by_zone(&h, &admin, "cam") == want).then_some(())
    });
    let described = up.zonal(&["describe", "service", "cam"]);
    assert!(described.contains("Decision:") && described.contains("Events:"), "{described}");
    // A dry run now: nothing to change.
    let again = json_of(&up.zonal(&["apply", "--dry-run", "-f", &chain, "-o", "json"]));
    assert_eq!(again["diff"]["start"], 0, "{again}");
    assert_eq!(again["diff"]["stop"], 0, "{again}");

    up.stop();
    h.assert_no_leftovers();
}

/// Two zones joined by a 300 Mbit/s link; no zone can hold the 10-core composite.
const TWO_SMALL_ZONES: &str = "kind: Infrastructure
name: two-small-zones
domain: test
zones:
  - name: a
    location: {lat: 50.0, lon: 4.0}
    hosts: [{name: a0, capacity: {cpu: 8, memory: 16Gi}}]
  - name: b
    location: {lat: 50.0, lon: 5.0}
    hosts: [{name: b0, capacity: {cpu: 8, memory: 16Gi}}]
links:
  - {from: a, to: b, bandwidth: 300Mbps}
";

fn pair(name: &str, cpu: u32) -> String {
    format!(
        "kind: Service
name: {name}
entry: front
components:
  - name: front
    run: zonal workload --slots 10 --name {name}-front
    resources: {{cpu: {cpu}, memory: 256Mi}}
    ports: [{{name: web, protocol: tcp}}]
  - name: back
    run: zonal workload --slots 10 --name {name}-back
    resources: {{cpu: {cpu}, memory: 256Mi}}
    ports: [{{name: rpc, protocol: tcp}}]
channels:
  - {{from: front, to: back, bandwidth: 200Mbps}}
"
    )
}

/// The value of `name` in process `pid`'s environment.
fn env_of(pid: u32, name: &str) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    raw.split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
}

#[test]
fn a_composite_too_big_for_any_zone_is_split_and_its_bandwidth_is_reserved_until_deleted() {
    let mut h = Harness::new();
    let mut up = h.up(TWO_SMALL_ZONES, &[]);
    let admin = h.client(&up.url, Some(&up.token));
    let big = write(&h, "big.yaml", &pair("big", 5));
    let out = up.zonal(&["apply", "-f", &big]);
    assert!(out.contains("channel front → back over"), "{out}");
    let d = h.get(&admin, "/1.0/services/big/decision")["decision"].clone();
    assert_eq!(d["target"]["zones"].as_object().map(|z| z.len()), Some(2), "{d}");
    let path = &d["target"]["paths"][0];
    assert_eq!(path["mbps"], 200.0, "{d}");
    let instances = wait_running(&h, &admin, "big", 2);
    // front reaches back in the other zone through its own zone's gateway.
    let front = instances.iter().find(|i| i["component"] == "front").expect("front");
    let back = instances.iter().find(|i| i["component"] == "back").expect("back");
    assert_ne!(front["zone"], back["zone"]);
    let pid = front["pid"].as_u64().expect("pid") as u32;
    let peer = env_of(pid, "ZONAL_PEER_BACK").expect("ZONAL_PEER_BACK in front's environment");
    let greeting = wait_for("a session from front's zone to back", Duration::from_secs(15), || {
        let s = TcpStream::connect(&peer).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        line.contains("instance=").then_some(line)
    });
    assert!(greeting.contains(back["id"].as_str().expect("id")), "{greeting}");
    let state = h.get(&admin, "/1.0/state");
    let reserved: f64 = state["services"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["running"]["paths"].as_array().cloned().unwrap_or_default())
        .map(|p| p["mbps"].as_f64().unwrap_or(0.0) * p["copies"].as_f64().unwrap_or(0.0))
        .sum();
    assert_eq!(reserved, 200.0, "{state}");

    // Another pair needs the link too (3 cores left per zone): 100 Mbit/s are left, it is
    // refused naming the link, and nothing of it is deployed.
    let small = write(&h, "small.yaml", &pair("small", 2));
    let (ok, out, err) = up.try_zonal(&["apply", "-f", &small]);
    assert!(!ok, "{out}{err}");
    assert!(err.contains("infeasible") && err.contains("bandwidth"), "{err}");
    assert_eq!(h.get(&admin, "/1.0/services/small")["state"], "registered");
    assert_eq!(h.get(&admin, "/1.0/services/small/instances"), json!([]));

    // Deleting the first releases its bandwidth and cores: the second fits now.
    up.zonal(&["delete", "service", "big"]);
    wait_for("big to be gone", Duration::from_secs(30), || {
        h.call(&admin, "GET", "/1.0/services/big", None).err().filter(|(c, _)| *c == 404).map(|_| ())
    });
    let out = up.zonal(&["apply", "-f", &small]);
    assert!(out.contains("placed in zone"), "{out}");
    up.stop();
    h.assert_no_leftovers();
}

#[test]
fn an_infeasible_service_is_refused_with_the_reason_or_kept_pending() {
    let mut h = Harness::new();
    let mut up = h.up(TWO_SMALL_ZONES, &[]);
    let admin = h.client(&up.url, Some(&up.token));
    let tpu = write(
        &h,
        "tpu.yaml",
        "kind: Service\nname: tpu\ncomponents:\n  - name: t\n    run: zonal workload\n    resources: {cpu: 1}\n    placement: {requires: {accelerator: tpu}}\n",
    );
    let (ok, _, err) = up.try_zonal(&["apply", "-f", &tpu]);
    assert!(!ok);
    assert!(err.contains("infeasible") && err.contains("accelerator"), "{err}");
    let v = h.get(&admin, "/1.0/services/tpu");
    assert_eq!((v["state"].as_str(), v["target"].as_str()), (Some("registered"), Some("registered")), "{v}");
    assert!(h.get(&admin, "/1.0/services/tpu/events").to_string().contains("refused"));
    let out = up.zonal(&["apply", "-f", &tpu, "--pending"]);
    assert!(out.contains("pending"), "{out}");
    assert_eq!(h.get(&admin, "/1.0/services/tpu")["state"], "pending");
    assert!(h.instance_processes().is_empty());
    up.stop();
    h.assert_no_leftovers();
}

/// Two edge zones 200 km apart, each next to one user region.
const TWO_CITIES: &str = "kind: Infrastructure
name: two-cities
domain: test
zones:
  - name: west
    location: {lat: 51.05, lon: 3.72}
    hosts: [{name: w, capacity: {cpu: 8, memory: 16Gi}}]
  - name: east
    location: {lat: 50.63, lon: 5.58}
    hosts: [{name: e, capacity: {cpu: 8, memory: 16Gi}}]
links:
  - {from: west, to: east, bandwidth: 10Gbps}
";

fn demand(west: u32, east: u32) -> String {
    format!(
        "kind: Demand
name: d
regions:
  - {{name: ghent, location: {{lat: 51.05, lon: 3.72}}, weight: 1}}
  - {{name: liege, location: {{lat: 50.63, lon: 5.58}}, weight: 1}}
demand:
  - {{service: shop, region: ghent, slots: {west}}}
  - {{service: shop, region: liege, slots: {east}}}
"
    )
}

const SHOP: &str = "kind: Service
name: shop
sla: {r_min: 0ms, r_med: 1ms, r_max: 30ms}
components:
  - name: web
    run: zonal workload --slots 10 --name shop
    resources: {cpu: 1, memory: 128Mi}
    slots: {per_instance: 10, min_free: 0}
    scaling: {min_instances: 1, max_instances: 6}
    ports: [{name: http, protocol: tcp}]
";

#[test]
fn a_demand_shift_replaces_a_slot_service_without_cutting_a_session() {
    let mut h = Harness::new();
    let mut up = h.up(TWO_CITIES, &["--replan-cooldown", "500ms", "--move-cost", "0.05"]);
    let admin = h.client(&up.url, Some(&up.token));
    up.zonal(&["apply", "-f", &write(&h, "d1.yaml", &demand(40, 5))]);
    up.zonal(&["apply", "-f", &write(&h, "shop.yaml", SHOP)]);
    let d = h.get(&admin, "/1.0/services/shop/decision")["decision"].clone();
    assert_eq!(d["route"], "fusion", "{d}");
    wait_for("shop mostly in the west", Duration::from_secs(30), || {
        let r = running_by_zone(&h, &admin, "shop");
        (r.get("west").copied().unwrap_or(0) >= 4).then_some(())
    });
    // A session held on a west instance through the whole re-placement.
    let endpoint = h.get(&admin, "/1.0/resolve/shop?region=ghent")["endpoint"].as_str().expect("endpoint").to_string();
    let mut session = TcpStream::connect(&endpoint).expect("connect");
    session.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut reader = BufReader::new(session.try_clone().expect("clone"));
    let mut greeting = String::new();
    reader.read_line(&mut greeting).expect("greeting");
    assert!(greeting.contains("instance="), "{greeting}");

    // The users move east: the domain re-places (gated), new instances serve first.
    let shifted = Instant::now();
    up.zonal(&["apply", "-f", &write(&h, "d2.yaml", &demand(5, 40))]);
    let moved = wait_for("shop mostly in the east", Duration::from_secs(60), || {
        let r = running_by_zone(&h, &admin, "shop");
        (r.get("east").copied().unwrap_or(0) >= 4).then_some(r)
    });
    let converged = shifted.elapsed();
    let events = h.get(&admin, "/1.0/services/shop/events").to_string();
    assert!(events.contains("replaced") && events.contains("demand changed"), "{events}");
    // The session is still served by its instance.
    session.write_all(b"still there?\n").expect("write");
    let mut echo = String::new();
    reader.read_line(&mut echo).expect("the session survived the re-placement");
    assert_eq!(echo, "still there?\n");
    let lost: u64 = h.get(&admin, "/1.0/zones/west/services/shop")["lost_sessions"].as_u64().unwrap_or(0);
    assert_eq!(lost, 0);
    drop(reader);
    drop(session);
    wait_for("the west instances to drain", Duration::from_secs(60), || {
        let r = running_by_zone(&h, &admin, "shop");
        (r.get("west").copied().unwrap_or(0) <= 1).then_some(())
    });
    eprintln!("re-placement converged in {converged:?}: {moved:?}");
    up.stop();
    h.assert_no_leftovers();
}

#[test]
fn the_domain_depends_on_the_optimiser() {
    let lock = std::fs::read_to_string(repo_root().join("Cargo.lock")).expect("Cargo.lock");
    let domain = lock.split("[[package]]").find(|p| p.contains("name = \"zonal-domain\"")).expect("zonal-domain");
    assert!(domain.contains("\"zonal-place\""), "zonal-domain must decide with zonal-place:\n{domain}");
    let proto = lock.split("[[package]]").find(|p| p.contains("name = \"zonal-proto\"")).expect("zonal-proto");
    assert!(!proto.contains("\"zonal-descriptor\""), "zonal-proto must not depend on zonal-descriptor:\n{proto}");
}

/// Two zones 71 km apart, the first three times dearer; a region next to each.
const DEAR_AND_CHEAP: &str = "kind: Infrastructure
name: dear-and-cheap
domain: test
zones:
  - name: dear
    location: {lat: 50.0, lon: 0.0}
    price: {cpu_hour: 3.0}
    hosts: [{name: d0, capacity: {cpu: 4, memory: 8Gi}}]
  - name: cheap
    location: {lat: 50.0, lon: 1.0}
    price: {cpu_hour: 1.0}
    hosts: [{name: c0, capacity: {cpu: 4, memory: 8Gi}}]
links:
  - {from: dear, to: cheap, bandwidth: 100Mbps}
";

/// Both zones are within R_min (20 ms) of both regions: equally useful, so at α = 1 only cost
/// tells them apart, and only the tie-break (Step 3) looks at it. (On this instance HiGHS
/// happens to return the cheap vertex without Step 3 too: this test checks that
/// `--fusion-alpha` reaches the domain's FUSION route; the unit test
/// `decide::tests::alpha_one_in_the_domain_places_in_the_cheaper_of_equally_useful_zones`
/// is the one that fails without Step 3.)
const NEAR_SHOP: &str = "kind: Service
name: near
sla: {r_min: 20ms, r_med: 30ms, r_max: 50ms}
session_bandwidth: 8Mbps
components:
  - name: web
    run: zonal workload --slots 4 --name near
    resources: {cpu: 1, memory: 1Gi}
    slots: {per_instance: 4, min_free: 0}
    scaling: {min_instances: 0, max_instances: 10}
    ports: [{name: http, protocol: tcp}]
";

const NEAR_USERS: &str = "kind: Demand
name: near-users
regions:
  - {name: by-dear, location: {lat: 50.0, lon: 0.0}, weight: 1}
  - {name: by-cheap, location: {lat: 50.0, lon: 1.0}, weight: 1}
demand:
  - {service: near, region: by-dear, slots: 2}
  - {service: near, region: by-cheap, slots: 2}
";

#[test]
fn at_fusion_alpha_one_the_domain_takes_the_cheaper_of_equally_useful_zones() {
    let mut h = Harness::new();
    let mut up = h.up(DEAR_AND_CHEAP, &["--fusion-alpha", "1"]);
    let file = write(&h, "near.yaml", NEAR_SHOP);
    let users = write(&h, "near-users.yaml", NEAR_USERS);
    up.zonal(&["apply", "-f", &users]);
    let dry = json_of(&up.zonal(&["apply", "--dry-run", "-f", &file, "-o", "json"]));
    assert_eq!(dry["route"], "fusion", "{dry}");
    assert_eq!(dry["check"]["violations"], json!([]), "{dry}");
    let zones: Vec<&str> = dry["target"]["zones"].as_object().expect("zones").keys().map(String::as_str).collect();
    assert_eq!(zones, vec!["cheap"], "{dry}");
    // `zonal plan --alpha 1` on the same files agrees.
    let infra = h.path().join("infrastructure.yaml");
    let offline = json_of(&up.zonal(&[
        "plan",
        "--alpha",
        "1",
        "-f",
        infra.to_str().expect("utf-8"),
        "-f",
        &file,
        "-f",
        &users,
        "-o",
        "json",
    ]));
    let placed: Vec<&str> =
        offline["placements"].as_array().expect("placements").iter().filter_map(|p| p["zone"].as_str()).collect();
    assert!(!placed.is_empty() && placed.iter().all(|z| *z == "cheap"), "{offline}");
    // A bad α is refused, naming the flag.
    let state = h.path().join("bad-alpha-state");
    let (ok, out, err) = up.try_zonal(&[
        "domain",
        "--listen",
        "127.0.0.1:0",
        "--state",
        state.to_str().expect("utf-8"),
        "--fusion-alpha",
        "1.5",
    ]);
    assert!(!ok && err.contains("--fusion-alpha 1.5: expected a number from 0 to 1"), "{out}{err}");
    assert!(!state.exists(), "a refused flag writes nothing");
    up.stop();
    h.assert_no_leftovers();
}
