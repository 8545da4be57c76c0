//! Session slots end to end: the zone scaler, the gateway, service resolution and
//! `zonal load`, each test under `zonal up` (a domain and its zone managers on 127.0.0.1,
//! instances running `zonal workload`), driven by the `zonal` commands a user types and the
//! API. Every test ends with Ctrl-C to `zonal up` and checks that no process is left.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const CORE: &str = "frankfurt-core";
const EDGE: &str = "antwerp-edge";
const ANTWERP: (f64, f64) = (51.2194, 4.4025);
const FRANKFURT: (f64, f64) = (50.1109, 8.6821);

/// Zone flags that make the scaler quick enough for a test.
const QUICK: &[&str] = &["--scale-out-cooldown", "0ms", "--scale-in-cooldown", "500ms", "--scale-hysteresis", "1"];

/// An infrastructure document with the named zones (of Frankfurt's core and Antwerp's edge)
/// and `extra` appended (e.g. measured latencies).
fn infrastructure(zones: &[&str], extra: &str) -> String {
    let mut text = String::from("kind: Infrastructure\nname: slots-test\ndomain: test\nzones:\n");
    for z in zones {
        text.push_str(match *z {
            CORE => "  - name: frankfurt-core\n    location: {lat: 50.1109, lon: 8.6821}\n    tier: core\n    hosts:\n      - {name: fra, count: 2, capacity: {cpu: 32, memory: 128Gi}}\n",
            EDGE => "  - name: antwerp-edge\n    location: {lat: 51.2194, lon: 4.4025}\n    tier: edge\n    hosts:\n      - {name: antwerp, count: 2, capacity: {cpu: 8, memory: 32Gi}}\n",
            other => panic!("no test zone {other}"),
        });
    }
    if zones.len() == 2 {
        text.push_str("links:\n  - {from: antwerp-edge, to: frankfurt-core, bandwidth: 40Gbps}\n");
    }
    text.push_str(extra);
    text
}

fn manifest(name: &str, workload: &str, per: u32, min_free: u32, min: u32, max: u32) -> String {
    format!(
        "kind: Service\nname: {name}\nsla: {{r_min: 5ms, r_med: 50ms, r_max: 150ms}}\ncomponents:\n  - name: {name}\n    run: zonal workload --name {name} {workload}\n    resources: {{cpu: 100m, memory: 64Mi}}\n    slots: {{per_instance: {per}, min_free: {min_free}}}\n    scaling: {{min_instances: {min}, max_instances: {max}}}\n    ports:\n      - {{name: tcp, protocol: tcp}}\n"
    )
}

/// `zonal apply -f MANIFEST --no-wait` with the manifest's text; returns the service id.
fn deploy_text(h: &Harness, up: &Up, text: &str) -> String {
    let name = text.lines().find_map(|l| l.strip_prefix("name: ")).expect("a service name").trim().to_string();
    let file = h.path().join(format!("{name}.yaml"));
    std::fs::write(&file, text).expect("write the manifest");
    let out = up.zonal(&["apply", "-f", file.to_str().expect("utf-8 path"), "--no-wait"]);
    assert!(out.contains("deployment accepted"), "{out}");
    name
}

/// `zonal up` with the given zones and the quick scaler; the admin client of its domain.
fn system(h: &mut Harness, zones: &[&str], extra_infra: &str) -> (Up, zonal_proto::Client) {
    let up = h.up(&infrastructure(zones, extra_infra), QUICK);
    let admin = h.client(&up.url, Some(&up.token));
    wait_for("the zones to report", Duration::from_secs(20), || {
        let v = h.get(&admin, "/1.0/zones");
        let n = v.as_array()?.iter().filter(|z| z["state"] == "available" && !z["last_seen_ms"].is_null()).count();
        (n == zones.len()).then_some(())
    });
    (up, admin)
}

/// Waits until the service has scaled in to a single running instance.
fn wait_for_one_running(h: &Harness, c: &zonal_proto::Client, id: &str, within: Duration) {
    wait_for("scale-in to one instance", within, || {
        let all = instances(h, c, id);
        (all.len() == 1 && all[0]["state"] == "running").then_some(())
    });
}

/// Ctrl-C to `zonal up`, and asserts that no process is left behind.
fn shut_down(h: &Harness, up: &mut Up) {
    up.stop();
    h.assert_no_leftovers();
}

fn instances(h: &Harness, c: &zonal_proto::Client, id: &str) -> Vec<Value> {
    h.get(c, &format!("/1.0/services/{id}/instances")).as_array().cloned().unwrap_or_default()
}

/// Instances that are running and have reported their slots.
fn reporting(h: &Harness, c: &zonal_proto::Client, id: &str) -> Vec<Value> {
    instances(h, c, id).into_iter().filter(|i| i["state"] == "running" && i["slots"].is_object()).collect()
}

fn resolve(h: &Harness, c: &zonal_proto::Client, id: &str, at: (f64, f64)) -> Result<Value, (u16, Value)> {
    h.call(c, "GET", &format!("/1.0/resolve/{id}?lat={}&lon={}", at.0, at.1), None)
}

/// Opens a session at `addr`; returns it with its greeting.
fn open(addr: &str) -> (TcpStream, String) {
    let s = TcpStream::connect(addr).expect("connect to the gateway");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut line = String::new();
    BufReader::new(s.try_clone().expect("clone")).read_line(&mut line).expect("greeting");
    (s, line)
}

fn instance_of(greeting: &str) -> String {
    greeting.split_whitespace().find_map(|w| w.strip_prefix("instance=")).expect("instance in greeting").to_string()
}

/// The session is alive: it echoes.
fn echoes(s: &mut TcpStream) -> bool {
    if s.write_all(b"ping\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(s.try_clone().expect("clone")).read_line(&mut line).is_ok() && line == "ping\n"
}

#[test]
fn gateway_scales_out_before_slots_run_out_never_exceeds_slots_and_drains_without_cutting() {
    let mut h = Harness::new();
    let (mut up, admin) = system(&mut h, &[CORE], "");
    let id = deploy_text(&h, &up, &manifest("lane", "--slots 3", 3, 2, 1, 3));
    wait_for("one reporting instance", Duration::from_secs(30), || {
        (reporting(&h, &admin, &id).len() == 1).then_some(())
    });
    let endpoint = wait_for("the gateway endpoint", Duration::from_secs(10), || {
        resolve(&h, &admin, &id, ANTWERP).ok().and_then(|r| r["endpoint"].as_str().map(str::to_string))
    });

    // Fill the zone one session at a time: each time free slots drop below min_free (2),
    // the zone starts an instance, so every session up to max × slots is accepted.
    let mut sessions = Vec::new();
    let mut per_instance: BTreeMap<String, u32> = BTreeMap::new();
    for k in 0..9usize {
        let (s, g) = open(&endpoint);
        assert!(g.starts_with("zonal-workload lane"), "session {k} refused: {g}");
        *per_instance.entry(instance_of(&g)).or_default() += 1;
        sessions.push((s, instance_of(&g)));
        let want = (k + 1 + 2).div_ceil(3).min(3);
        wait_for(&format!("{want} instances after {} sessions", k + 1), Duration::from_secs(20), || {
            (reporting(&h, &admin, &id).len() >= want).then_some(())
        });
    }
    assert_eq!(per_instance.len(), 3, "{per_instance:?}");
    assert!(per_instance.values().all(|&n| n == 3), "no instance got more than its 3 slots: {per_instance:?}");
    // All 9 slots are taken: the gateway turns the 10th connection away itself.
    let (_s, g) = open(&endpoint);
    assert!(g.starts_with("busy"), "{g}");
    for i in reporting(&h, &admin, &id) {
        assert!(i["slots"]["used"].as_u64() <= i["slots"]["max"].as_u64(), "{i}");
        assert!(i["gateway_sessions"].as_u64().unwrap_or(0) <= 3, "{i}");
    }

    // Load falls: keep one session per instance, close the rest. The zone scales in to the
    // minimum by draining; the kept sessions are never cut.
    let mut kept = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (s, inst) in sessions {
        if seen.insert(inst) {
            kept.push(s);
        }
    }
    assert_eq!(kept.len(), 3);
    wait_for("a decommissioned instance", Duration::from_secs(20), || {
        instances(&h, &admin, &id).iter().any(|i| i["state"] == "decommissioned").then_some(())
    });
    for s in kept.iter_mut() {
        assert!(echoes(s), "a session on a draining instance is still served");
    }
    drop(kept);
    wait_for_one_running(&h, &admin, &id, Duration::from_secs(30));

    shut_down(&h, &mut up);
}

/// Runs `zonal load … --quiet -o json` against the domain and returns its report.
fn load(up: &Up, args: &[&str]) -> Value {
    let mut all = vec!["load", "--quiet", "-o", "json"];
    all.extend_from_slice(args);
    let text = up.zonal(&all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad report ({e}): {text}"))
}

#[test]
fn load_rises_and_falls_the_zone_follows_and_no_session_is_cut() {
    let mut h = Harness::new();
    let (mut up, admin) = system(&mut h, &[CORE], "");
    let id = deploy_text(&h, &up, &manifest("wave", "--slots 5", 5, 4, 1, 6));
    wait_for("one reporting instance", Duration::from_secs(30), || {
        (reporting(&h, &admin, &id).len() == 1).then_some(())
    });
    // About 3 sessions/s of ~2.5 s each: ~8 open at the peak, more than one instance holds.
    let report = load(
        &up,
        &[
            &id,
            "--from",
            "antwerp=51.2194,4.4025:3",
            "--from",
            "liege=50.6326,5.5797:1",
            "--rate",
            "3",
            "--duration",
            "8s",
            "--session-mean",
            "2500ms",
            "--session-max",
            "6s",
            "--seed",
            "7",
        ],
    );
    let n = |k: &str| report[k].as_u64().unwrap_or(u64::MAX);
    assert!(n("arrived") >= 15, "{report}");
    assert_eq!(n("accepted"), n("arrived"), "the zone scaled out before its slots ran out: {report}");
    assert_eq!(n("cut"), 0, "no session was cut: {report}");
    assert_eq!(n("completed"), n("accepted"), "{report}");
    assert!(report["instances"].as_object().map_or(0, |m| m.len()) >= 2, "sessions spread over instances: {report}");
    assert_eq!(report["zones"][CORE].as_u64(), Some(n("accepted")), "{report}");
    assert!(report["connect_ms"]["p99"].as_f64().unwrap_or(f64::MAX) < 1000.0, "{report}");
    // Load gone: the zone drains back to its minimum.
    wait_for_one_running(&h, &admin, &id, Duration::from_secs(40));

    shut_down(&h, &mut up);
}

#[test]
fn resolution_picks_the_nearest_zone_deploys_on_demand_and_spills_over() {
    let mut h = Harness::new();
    let (mut up, admin) = system(&mut h, &[CORE, EDGE], "");
    // One instance of two slots per zone: a zone is full after two sessions.
    let id = deploy_text(&h, &up, &manifest("kiosk", "--slots 2", 2, 0, 1, 1));
    // The placer puts the service in one zone; the client sits at the other one.
    let placed = wait_for("resolution to a zone", Duration::from_secs(30), || resolve(&h, &admin, &id, ANTWERP).ok());
    let (far, near_zone, client) = if placed["zone"] == CORE { (CORE, EDGE, ANTWERP) } else { (EDGE, CORE, FRANKFURT) };
    let first = resolve(&h, &admin, &id, client).expect("resolve");
    assert_eq!(first["zone"], far, "{first}");
    let far_ep = first["endpoint"].as_str().expect("endpoint").to_string();
    let (c1, _) = open(&far_ep);
    let (c2, _) = open(&far_ep);

    // The only zone running it is full: resolution deploys on demand in the nearest zone.
    let (status, body) =
        wait_for("an on-demand deployment", Duration::from_secs(20), || resolve(&h, &admin, &id, client).err());
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "deploying_on_demand", "{body}");
    assert!(body["detail"].as_str().unwrap_or("").contains(near_zone), "{body}");
    let near = wait_for("resolution to the new zone", Duration::from_secs(30), || {
        resolve(&h, &admin, &id, client).ok().filter(|r| r["zone"] == near_zone)
    });
    assert_eq!(near["rank"], 0, "the nearest zone ranks first: {near}");
    assert!(near["rtt_ms"].as_f64() < first["rtt_ms"].as_f64(), "{near} vs {first}");

    // The nearest zone fills; the other has room again: the client spills over.
    let near_ep = near["endpoint"].as_str().expect("endpoint").to_string();
    let (e1, _) = open(&near_ep);
    let (e2, _) = open(&near_ep);
    drop((c1, c2));
    let spilled = wait_for("spill-over to the farther zone", Duration::from_secs(20), || {
        resolve(&h, &admin, &id, client).ok().filter(|r| r["zone"] == far)
    });
    assert_eq!(spilled["rank"], 1, "{spilled}");

    // The same through the CLI.
    let from = format!("{},{}", client.0, client.1);
    let text = up.zonal(&["resolve", &id, "--from", &from, "-o", "json"]);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["zone"], far, "{v}");
    assert_eq!(v["rtt_source"], "distance", "{v}");
    // Resolution is in the OpenAPI document.
    let doc = h.get(&h.client(&up.url, None), "/openapi.json");
    assert!(doc["paths"]["/1.0/resolve/{id}"]["get"].is_object());
    drop((e1, e2));

    shut_down(&h, &mut up);
}

#[test]
fn a_killed_instance_loses_its_sessions_is_replaced_and_configuration_caps_hold() {
    let mut h = Harness::new();
    let (mut up, admin) = system(&mut h, &[CORE], "");
    // Four resource slots, but the configuration behind the gateway is capped at two.
    let id = deploy_text(&h, &up, &manifest("cam", "--slots 4 --config tcp=0:2", 4, 0, 1, 1));
    let inst = wait_for("one reporting instance", Duration::from_secs(30), || reporting(&h, &admin, &id).pop());
    let ep = wait_for("the gateway endpoint", Duration::from_secs(10), || {
        resolve(&h, &admin, &id, ANTWERP).ok().and_then(|r| r["endpoint"].as_str().map(str::to_string))
    });
    let (mut s1, g1) = open(&ep);
    let (mut s2, g2) = open(&ep);
    assert!(g1.contains("config=tcp") && g2.contains("config=tcp"), "{g1} {g2}");
    let (_s3, g3) = open(&ep);
    assert!(g3.starts_with("busy"), "the configuration's cap of 2 holds: {g3}");
    wait_for("the zone to see two sessions", Duration::from_secs(10), || {
        let v = h.get(&admin, &format!("/1.0/zones/{CORE}/services/{id}"));
        (v["slots"]["used"] == 2).then_some(())
    });

    // kill -9 the instance: both sessions end, the zone reports them lost and the instance
    // comes back.
    let pid = inst["pid"].as_u64().expect("pid") as i32;
    // SAFETY: kills the instance process this test's zone started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    for s in [&mut s1, &mut s2] {
        let mut line = String::new();
        let n = BufReader::new(s.try_clone().expect("clone")).read_line(&mut line).unwrap_or(0);
        assert_eq!(n, 0, "the session ended with its instance");
    }
    wait_for("the lost sessions to be reported", Duration::from_secs(10), || {
        let v = h.get(&admin, &format!("/1.0/zones/{CORE}/services/{id}"));
        (v["lost_sessions"] == 2).then_some(())
    });
    let back = wait_for("a replacement instance", Duration::from_secs(30), || {
        reporting(&h, &admin, &id).into_iter().find(|i| i["pid"].as_u64() != Some(pid as u64))
    });
    assert_eq!(back["slots"]["used"], 0, "{back}");
    let (_s, g) = open(&ep);
    assert!(g.starts_with("zonal-workload cam"), "sessions are served again: {g}");

    shut_down(&h, &mut up);
}

#[test]
fn the_scaler_adds_a_configuration_to_a_running_instance_before_starting_one() {
    let mut h = Harness::new();
    let (mut up, admin) = system(&mut h, &[CORE], "");
    // A pool whose instances take configurations of other services (FUSION overlaying).
    let pool =
        manifest("pool", "--slots 6", 6, 0, 1, 1).replace("    ports:", "    supports_overlay: true\n    ports:");
    let pool_id = deploy_text(&h, &up, &pool);
    let host = wait_for("the pool instance", Duration::from_secs(30), || reporting(&h, &admin, &pool_id).pop());
    let host_id = host["id"].as_str().expect("id").to_string();
    // A guest service that may be served by configurations on other instances.
    let id = deploy_text(&h, &up, &manifest("guest", "--slots 2", 2, 1, 1, 2));
    wait_for("the guest instance", Duration::from_secs(30), || (reporting(&h, &admin, &id).len() == 1).then_some(()));
    let ep = wait_for("the guest gateway", Duration::from_secs(10), || {
        resolve(&h, &admin, &id, ANTWERP).ok().and_then(|r| r["endpoint"].as_str().map(str::to_string))
    });
    let mut held = Vec::new();
    for _ in 0..2 {
        let (s, g) = open(&ep);
        assert!(g.starts_with("zonal-workload guest"), "{g}");
        held.push(s);
    }
    // The guest's own instance is full: the scaler overlays a configuration on the pool's
    // instance instead of starting a second guest instance.
    let pool_admin = instance_admin(std::slice::from_ref(&host), "pool");
    wait_for("a guest configuration on the pool instance", Duration::from_secs(20), || {
        h.get(&pool_admin, "/1.0/configs").get("guest").map(|_| ())
    });
    wait_for("the overlay to be offered", Duration::from_secs(10), || {
        let v = h.get(&admin, &format!("/1.0/zones/{CORE}/services/{id}"));
        (v["advertised"].as_u64() >= Some(1)).then_some(())
    });
    let (s, g) = open(&ep);
    assert!(g.contains("config=guest") && g.contains(&format!("instance={host_id}")), "{g}");
    held.push(s);
    assert_eq!(instances(&h, &admin, &id).len(), 1, "no second guest instance was started");

    // Load gone: the overlay drains and is removed; the pool instance keeps running.
    drop(held);
    wait_for("the guest configuration to be removed", Duration::from_secs(20), || {
        h.get(&pool_admin, "/1.0/configs").get("guest").is_none().then_some(())
    });
    assert_eq!(reporting(&h, &admin, &pool_id).len(), 1);

    shut_down(&h, &mut up);
}

#[test]
fn components_reach_each_other_through_the_zone_gateway_within_their_slots() {
    let mut h = Harness::new();
    let (mut up, admin) = system(&mut h, &[CORE], "");
    let duo = "kind: Service\nname: duo\nsla: {r_min: 5ms, r_med: 50ms, r_max: 150ms}\nentry: front\ncomponents:\n  - name: front\n    run: zonal workload --name duo-front --slots 4\n    resources: {cpu: 100m, memory: 64Mi}\n    slots: {per_instance: 4, min_free: 0}\n    scaling: {min_instances: 1, max_instances: 1}\n    ports:\n      - {name: tcp, protocol: tcp}\n  - name: back\n    run: zonal workload --name duo-back --slots 2\n    resources: {cpu: 100m, memory: 64Mi}\n    slots: {per_instance: 2, min_free: 0}\n    scaling: {min_instances: 2, max_instances: 2}\n    ports:\n      - {name: tcp, protocol: tcp}\nchannels:\n  - {from: front, to: back}\n";
    let id = deploy_text(&h, &up, duo);
    wait_for("three reporting instances", Duration::from_secs(30), || {
        (reporting(&h, &admin, &id).len() == 3).then_some(())
    });
    let view = h.get(&admin, &format!("/1.0/zones/{CORE}/services/{id}"));
    let peer = view["peers"]["back/tcp"].as_str().unwrap_or_else(|| panic!("no gateway for back: {view}")).to_string();
    assert_eq!(view["endpoints"].as_object().map(|m| m.len()), Some(1), "only the entry is public: {view}");
    assert_ne!(view["endpoints"]["tcp"].as_str(), Some(peer.as_str()), "{view}");

    // The front instance was told where its peer is: the zone's gateway, not an instance.
    let all = instances(&h, &admin, &id);
    let front = pid_of(&all, "front");
    let environ = std::fs::read(format!("/proc/{front}/environ")).expect("front's environment");
    let vars: Vec<String> = environ.split(|b| *b == 0).map(|v| String::from_utf8_lossy(v).into_owned()).collect();
    assert!(vars.contains(&format!("ZONAL_PEER_BACK={peer}")), "{vars:?}");
    assert!(vars.contains(&format!("ZONAL_PEER_BACK_TCP={peer}")), "{vars:?}");

    // Connections to the peer are balanced over back's instances and never exceed their
    // slots: 2 instances × 2 slots, the fifth is turned away.
    let mut held = Vec::new();
    let mut per_instance: BTreeMap<String, u32> = BTreeMap::new();
    for k in 0..4 {
        let (s, g) = open(&peer);
        assert!(g.starts_with("zonal-workload duo-back"), "connection {k}: {g}");
        *per_instance.entry(instance_of(&g)).or_default() += 1;
        held.push(s);
    }
    assert_eq!(per_instance.len(), 2, "{per_instance:?}");
    assert!(per_instance.values().all(|&n| n == 2), "{per_instance:?}");
    let (_s, g) = open(&peer);
    assert!(g.starts_with("busy"), "{g}");
    for s in held.iter_mut() {
        assert!(echoes(s));
    }
    drop(held);

    shut_down(&h, &mut up);
}

#[test]
fn user_regions_and_measured_latencies_steer_resolution_and_slots_are_aggregated_per_region() {
    let mut h = Harness::new();
    let measured = "latencies:\n  - {from: antwerp, to: frankfurt-core, rtt: 9ms}\n  - {from: antwerp, to: antwerp-edge, rtt: 7ms}\n";
    let (mut up, admin) = system(&mut h, &[CORE, EDGE], measured);
    let demand = h.path().join("demand.yaml");
    std::fs::write(
        &demand,
        "kind: Demand\nname: users\nregions:\n  - {name: antwerp, location: {lat: 51.2194, lon: 4.4025}, weight: 3, attach: antwerp-edge}\n  - {name: lab, weight: 1, attach: antwerp-edge}\ndemand: []\n",
    )
    .expect("write the demand");
    let out = up.zonal(&["apply", "-f", demand.to_str().expect("utf-8 path")]);
    assert!(out.contains("2 user regions"), "{out}");
    let geo = h.get(&admin, "/1.0/geography");
    assert_eq!(geo["latencies"].as_array().map(Vec::len), Some(2), "zonal up sent the measured latencies: {geo}");

    let id = deploy_text(&h, &up, &manifest("atlas", "--slots 3", 3, 0, 1, 1));
    let json = |args: &[&str]| -> Value {
        let text = up.zonal(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    let by_region = wait_for("resolution by region", Duration::from_secs(30), || {
        let (ok, text, _) = up.try_zonal(&["resolve", &id, "--region", "antwerp", "-o", "json"]);
        if !ok {
            return None;
        }
        serde_json::from_str::<Value>(&text).ok()
    });
    let zone = by_region["zone"].as_str().expect("zone").to_string();
    let expected = if zone == CORE { 9.0 } else { 7.0 };
    assert_eq!(by_region["rtt_source"], "measured", "{by_region}");
    assert_eq!(by_region["rtt_ms"].as_f64(), Some(expected), "{by_region}");
    // The same city by coordinates: estimated from distance, not measured.
    let by_position = json(&["resolve", &id, "--from", "51.2194,4.4025", "-o", "json"]);
    assert_eq!(by_position["rtt_source"], "distance", "{by_position}");
    // A region without a location: through its attach zone.
    let lab = json(&["resolve", &id, "--region", "lab", "-o", "json"]);
    assert_eq!(lab["rtt_source"], "attach", "{lab}");
    if zone == EDGE {
        assert_eq!(lab["rtt_ms"].as_f64(), Some(0.0), "{lab}");
    }

    // The domain's per-region view: the slots within reach and where clients go.
    let regions = json(&["get", "regions", "-o", "json"]);
    let antwerp = regions.as_array().and_then(|r| r.iter().find(|r| r["name"] == "antwerp")).cloned();
    let antwerp = antwerp.unwrap_or_else(|| panic!("{regions}"));
    assert_eq!(antwerp["services"][0]["serviceid"], id.as_str(), "{antwerp}");
    assert_eq!(antwerp["services"][0]["advertised"], 3, "{antwerp}");
    assert_eq!(antwerp["services"][0]["zone"], zone.as_str(), "{antwerp}");
    assert_eq!(antwerp["services"][0]["rtt_ms"].as_f64(), Some(expected), "{antwerp}");
    let table = up.zonal(&["get", "regions"]);
    assert!(table.contains("SLOTS IN REACH") && table.contains("lab") && table.contains(&zone), "{table}");
    let endpoint = by_region["endpoint"].as_str().expect("endpoint").to_string();
    let (held, g) = open(&endpoint);
    assert!(g.starts_with("zonal-workload atlas"), "{g}");
    wait_for("the region's slots to drop", Duration::from_secs(10), || {
        let r = h.get(&admin, "/1.0/regions");
        let a = r.as_array()?.iter().find(|r| r["name"] == "antwerp")?.clone();
        (a["services"][0]["advertised"] == 2).then_some(())
    });

    // zonal load with clients of named regions.
    let report = load(
        &up,
        &[
            &id,
            "--region",
            "antwerp:2",
            "--region",
            "lab",
            "--rate",
            "4",
            "--duration",
            "2s",
            "--session-mean",
            "200ms",
            "--session-max",
            "500ms",
            "--seed",
            "3",
        ],
    );
    let n = |k: &str| report[k].as_u64().unwrap_or(u64::MAX);
    assert!(n("arrived") >= 2, "{report}");
    assert_eq!(n("failed"), 0, "{report}");
    assert_eq!(n("cut"), 0, "{report}");
    assert!(report["regions"]["antwerp"].is_object(), "{report}");
    drop(held);

    // Unknown regions are named with what is known; a bad geography changes nothing.
    let (ok, _, err) = up.try_zonal(&["resolve", &id, "--region", "paris"]);
    assert!(!ok && err.contains("\"paris\"") && err.contains("antwerp") && err.contains("lab"), "{err}");
    let bad =
        json!({"regions": [{"name": "x", "weight": 1.0}, {"name": "x", "weight": 1.0, "attach": "antwerp-edge"}]});
    let (status, body) = h.call(&admin, "PUT", "/1.0/geography", Some(bad)).expect_err("invalid geography");
    assert_eq!(status, 400, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("regions[1].name") && detail.contains("regions[0]"), "{body}");
    assert_eq!(h.get(&admin, "/1.0/geography")["regions"].as_array().map(Vec::len), Some(2));

    shut_down(&h, &mut up);
}
