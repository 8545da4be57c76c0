//! Session slots end to end: the zone scaler, the gateway, service resolution and
//! `zonal load`, with real `zonal domain`, `zonal zone` and `zonal workload` processes on
//! 127.0.0.1. Every test ends by checking that no process it started is left.

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

fn manifest(name: &str, workload: &str, per: u32, min_free: u32, min: u32, max: u32) -> String {
    format!(
        "kind: Service\nname: {name}\nsla: {{r_min: 5ms, r_med: 50ms, r_max: 150ms}}\ncomponents:\n  - name: {name}\n    run: zonal workload --name {name} {workload}\n    resources: {{cpu: 100m, memory: 64Mi}}\n    slots: {{per_instance: {per}, min_free: {min_free}}}\n    scaling: {{min_instances: {min}, max_instances: {max}}}\n    ports:\n      - {{name: tcp, protocol: tcp}}\n"
    )
}

fn deploy_text(h: &Harness, c: &zonal_proto::Client, text: &str) -> String {
    let v = h.call(c, "POST", "/1.0/services", Some(json!({"manifest": text}))).expect("register");
    let id = v["serviceid"].as_str().expect("serviceid").to_string();
    h.call(c, "PUT", &format!("/1.0/services/{id}/state"), Some(json!({"state": "deploy"}))).expect("deploy");
    id
}

/// A domain and the given zones, all registered.
fn system(h: &mut Harness, zones: &[&str], extra: &[&str]) -> (Daemon, Vec<Daemon>, zonal_proto::Client, String) {
    let (domain, admin_token) = h.domain("127.0.0.1:0");
    let admin = h.client(&domain.url, Some(&admin_token));
    let mut daemons = Vec::new();
    for z in zones {
        let token = h.token(&admin, "zone", z);
        daemons.push(h.zone_with(z, &domain.url, &token, extra));
    }
    wait_for("the zones to register", Duration::from_secs(20), || {
        let v = h.get(&admin, "/1.0/zones");
        let up = v.as_array()?.iter().filter(|z| z["state"] == "available" && !z["last_seen_ms"].is_null()).count();
        (up == zones.len()).then_some(())
    });
    (domain, daemons, admin, admin_token)
}

/// Waits until the service has scaled in to a single running instance.
fn wait_for_one_running(h: &Harness, c: &zonal_proto::Client, id: &str, within: Duration) {
    wait_for("scale-in to one instance", within, || {
        let all = instances(h, c, id);
        (all.len() == 1 && all[0]["state"] == "running").then_some(())
    });
}

/// Stops the zones, then the domain, and asserts that no process is left behind.
fn shut_down(h: &Harness, domain: &mut Daemon, zones: &mut [Daemon]) {
    for z in zones.iter_mut() {
        z.stop();
    }
    domain.stop();
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
    let (mut domain, mut zones, admin, _) = system(&mut h, &[CORE], QUICK);
    let id = deploy_text(&h, &admin, &manifest("lane", "--slots 3", 3, 2, 1, 3));
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

    shut_down(&h, &mut domain, &mut zones);
}

/// Runs `zonal load … -o json` against the domain and returns its report.
fn load(h: &mut Harness, domain: &str, token: &str, args: &[&str]) -> Value {
    let mut all = vec!["load", "--url", domain, "--token", token, "--quiet", "-o", "json"];
    all.extend_from_slice(args);
    let (mut child, log) = h.spawn(&all, &[], "load.log");
    let status = wait_for("zonal load to finish", Duration::from_secs(120), || child.try_wait().ok().flatten());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "zonal load failed: {text}");
    let start = text.find('{').unwrap_or_else(|| panic!("no JSON report: {text}"));
    serde_json::from_str(&text[start..]).unwrap_or_else(|e| panic!("bad report ({e}): {text}"))
}

#[test]
fn load_rises_and_falls_the_zone_follows_and_no_session_is_cut() {
    let mut h = Harness::new();
    let (mut domain, mut zones, admin, token) = system(&mut h, &[CORE], QUICK);
    let id = deploy_text(&h, &admin, &manifest("wave", "--slots 5", 5, 4, 1, 6));
    wait_for("one reporting instance", Duration::from_secs(30), || {
        (reporting(&h, &admin, &id).len() == 1).then_some(())
    });
    let url = domain.url.clone();
    // About 3 sessions/s of ~2.5 s each: ~8 open at the peak, more than one instance holds.
    let report = load(
        &mut h,
        &url,
        &token,
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

    shut_down(&h, &mut domain, &mut zones);
}

#[test]
fn resolution_picks_the_nearest_zone_deploys_on_demand_and_spills_over() {
    let mut h = Harness::new();
    let (mut domain, mut zones, admin, token) = system(&mut h, &[CORE, EDGE], QUICK);
    // One instance of two slots per zone: a zone is full after two sessions.
    let id = deploy_text(&h, &admin, &manifest("kiosk", "--slots 2", 2, 0, 1, 1));
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
    let (mut child, log) = h.spawn(
        &["resolve", &id, "--from", &from, "--url", &domain.url, "--token", &token, "-o", "json"],
        &[],
        "resolve.log",
    );
    let st = wait_for("zonal resolve", Duration::from_secs(20), || child.try_wait().ok().flatten());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(st.success(), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["zone"], far, "{v}");
    // Resolution is in the OpenAPI document.
    let doc = h.get(&h.client(&domain.url, None), "/openapi.json");
    assert!(doc["paths"]["/1.0/resolve/{id}"]["get"].is_object());
    drop((e1, e2));

    shut_down(&h, &mut domain, &mut zones);
}

#[test]
fn a_killed_instance_loses_its_sessions_is_replaced_and_configuration_caps_hold() {
    let mut h = Harness::new();
    let (mut domain, mut zones, admin, _) = system(&mut h, &[CORE], QUICK);
    // Four resource slots, but the configuration behind the gateway is capped at two.
    let id = deploy_text(&h, &admin, &manifest("cam", "--slots 4 --config tcp=0:2", 4, 0, 1, 1));
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

    shut_down(&h, &mut domain, &mut zones);
}

#[test]
fn the_scaler_adds_a_configuration_to_a_running_instance_before_starting_one() {
    let mut h = Harness::new();
    let (mut domain, mut zones, admin, _) = system(&mut h, &[CORE], QUICK);
    // A pool whose instances take configurations of other services (FUSION overlaying).
    let pool =
        manifest("pool", "--slots 6", 6, 0, 1, 1).replace("    ports:", "    supports_overlay: true\n    ports:");
    let pool_id = deploy_text(&h, &admin, &pool);
    let host = wait_for("the pool instance", Duration::from_secs(30), || reporting(&h, &admin, &pool_id).pop());
    let host_id = host["id"].as_str().expect("id").to_string();
    // A guest service that may be served by configurations on other instances.
    let id = deploy_text(&h, &admin, &manifest("guest", "--slots 2", 2, 1, 1, 2));
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
    let admin_port = port_of(std::slice::from_ref(&host), "pool", "admin");
    let pool_admin = h.client(&format!("http://127.0.0.1:{admin_port}"), None);
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

    shut_down(&h, &mut domain, &mut zones);
}
