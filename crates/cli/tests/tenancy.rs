//! Tenancy end to end: under `zonal up`, two service providers share a zone. bell-labs runs
//! FUSION's EPG (`examples/epg.yaml`), whose streamer supports overlays and has free slots;
//! acme runs a service that allows reuse (`reuse_existing`, the default). When acme's zone
//! scaler wants capacity, it must never put acme's sessions on bell-labs' instance (no
//! configuration of acme's service is added there): it starts acme's own instance instead.
//! Once bell-labs' service says `share: [acme]`, the overlay is used as before (virtual
//! elastic scaling still works when asked for). Ends with Ctrl-C to `zonal up` and checks
//! that no process is left.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const CORE: &str = "frankfurt-core";
const FRANKFURT: (f64, f64) = (50.1109, 8.6821);

/// Zone flags that make the scaler quick enough for a test.
const QUICK: &[&str] = &["--scale-out-cooldown", "0ms", "--scale-in-cooldown", "500ms", "--scale-hysteresis", "1"];

const INFRASTRUCTURE: &str = "kind: Infrastructure\nname: tenancy-test\ndomain: test\nzones:\n  - name: frankfurt-core\n    location: {lat: 50.1109, lon: 8.6821}\n    tier: core\n    hosts:\n      - {name: fra, count: 2, capacity: {cpu: 32, memory: 128Gi}}\n";

/// acme's service: two sessions per instance, one kept free, at most two instances; reuse of
/// other instances is allowed (the default).
const SHOP: &str = "kind: Service\nname: shop\nowner: acme\nsla: {r_min: 5ms, r_med: 50ms, r_max: 150ms}\ncomponents:\n  - name: shop\n    run: zonal workload --name shop --slots 2\n    resources: {cpu: 100m, memory: 64Mi}\n    slots: {per_instance: 2, min_free: 1}\n    scaling: {min_instances: 1, max_instances: 2}\n    ports:\n      - {name: tcp, protocol: tcp}\n";

fn register_and_deploy(h: &Harness, c: &zonal_proto::Client, manifest: &str) -> String {
    let v = h.call(c, "POST", "/1.0/services", Some(json!({"manifest": manifest}))).expect("register");
    let id = v["serviceid"].as_str().expect("serviceid").to_string();
    h.call(c, "PUT", &format!("/1.0/services/{id}/state"), Some(json!({"state": "deploy"}))).expect("deploy");
    id
}

fn instances(h: &Harness, c: &zonal_proto::Client, id: &str) -> Vec<Value> {
    h.get(c, &format!("/1.0/services/{id}/instances")).as_array().cloned().unwrap_or_default()
}

/// Instances that are running and have reported their slots.
fn reporting(h: &Harness, c: &zonal_proto::Client, id: &str) -> Vec<Value> {
    instances(h, c, id).into_iter().filter(|i| i["state"] == "running" && i["slots"].is_object()).collect()
}

/// The running, reporting streamer of an EPG service: (instance id, its admin API client).
fn streamer(h: &Harness, c: &zonal_proto::Client, epg: &str) -> (String, zonal_proto::Client) {
    let s = wait_for(&format!("{epg}'s streamer reporting its slots"), Duration::from_secs(60), || {
        reporting(h, c, epg).into_iter().find(|i| i["component"] == "streamer")
    });
    let id = s["id"].as_str().expect("id").to_string();
    (id, instance_admin(std::slice::from_ref(&s), "streamer"))
}

/// The configurations an instance serves (its own admin API).
fn configs(h: &Harness, instance_admin: &zonal_proto::Client) -> Value {
    h.get(instance_admin, "/1.0/configs")
}

/// Opens a session at `addr`; returns it with its greeting.
fn open(addr: &str) -> (TcpStream, String) {
    let s = TcpStream::connect(addr).expect("connect to the gateway");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut line = String::new();
    BufReader::new(s.try_clone().expect("clone")).read_line(&mut line).expect("greeting");
    (s, line)
}

#[test]
fn acme_sessions_never_reach_bell_labs_instances_unless_bell_labs_shares() {
    let mut h = Harness::new();
    let mut up = h.up(INFRASTRUCTURE, QUICK);
    let admin = h.client(&up.url, Some(&up.token));
    wait_for("the zone to report", Duration::from_secs(20), || {
        let v = h.get(&admin, "/1.0/zones");
        v.as_array()?.iter().any(|z| z["state"] == "available" && !z["last_seen_ms"].is_null()).then_some(())
    });
    let bell = h.client(&up.url, Some(&h.token(&admin, "provider", "bell-labs")));
    let acme = h.client(&up.url, Some(&h.token(&admin, "provider", "acme")));

    // bell-labs' EPG, exactly as the example: its streamer supports overlays, 4 free slots.
    let epg_text = std::fs::read_to_string(example("epg.yaml")).expect("epg.yaml");
    assert!(epg_text.contains("supports_overlay: true") && !epg_text.contains("share:"), "{epg_text}");
    let epg = register_and_deploy(&h, &bell, &epg_text);
    let (epg_streamer, epg_streamer_admin) = streamer(&h, &bell, &epg);

    // acme's shop, in the same zone.
    let shop = register_and_deploy(&h, &acme, SHOP);
    wait_for("one reporting shop instance", Duration::from_secs(30), || {
        (reporting(&h, &acme, &shop).len() == 1).then_some(())
    });
    let endpoint = wait_for("the shop's gateway", Duration::from_secs(20), || {
        let r = h.call(&acme, "GET", &format!("/1.0/resolve/{shop}?lat={}&lon={}", FRANKFURT.0, FRANKFURT.1), None);
        r.ok().and_then(|r| r["endpoint"].as_str().map(str::to_string))
    });

    // Two sessions fill the shop's instance: free slots (0) fall below min_free (1), so acme's
    // scaler wants capacity. bell-labs' streamer has free slots and supports overlays, but it
    // is not acme's: no configuration of the shop may appear there, and acme's own second
    // instance serves instead.
    let mut held = Vec::new();
    for _ in 0..2 {
        let (s, g) = open(&endpoint);
        assert!(g.starts_with("zonal-workload shop"), "{g}");
        held.push(s);
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let on_streamer = configs(&h, &epg_streamer_admin);
        assert!(
            on_streamer.get("shop").is_none(),
            "acme's shop was given a configuration on bell-labs' instance {epg_streamer}: {on_streamer}"
        );
        if reporting(&h, &acme, &shop).len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "acme's shop did not scale out with its own instance");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The next session goes to acme's own new instance, never to bell-labs'.
    let (s, g) = open(&endpoint);
    assert!(g.starts_with("zonal-workload shop") && !g.contains(&epg_streamer), "{g}");
    held.push(s);
    let on_streamer = configs(&h, &epg_streamer_admin);
    assert!(on_streamer.get("shop").is_none(), "{on_streamer}");
    let zone_log = h.path().join("up/logs/zone-frankfurt-core.log");
    let zone_log = std::fs::read_to_string(&zone_log).unwrap_or_else(|e| panic!("{}: {e}", zone_log.display()));
    assert!(!zone_log.contains("virtual scale-out"), "no overlay was added anywhere");

    // Load gone: the shop scales back in to one instance.
    drop(held);
    wait_for("the shop to scale in", Duration::from_secs(30), || {
        let all = instances(&h, &acme, &shop);
        (all.len() == 1 && all[0]["state"] == "running").then_some(())
    });

    // bell-labs shares a second EPG with acme explicitly: now the overlay may be used.
    let shared_text = epg_text.replace("name: epg\n", "name: epg-shared\nshare: [acme]\n");
    assert!(shared_text.contains("share: [acme]"));
    let shared = register_and_deploy(&h, &bell, &shared_text);
    let (shared_streamer, shared_streamer_admin) = streamer(&h, &bell, &shared);
    let mut held = Vec::new();
    for _ in 0..2 {
        let (s, g) = open(&endpoint);
        assert!(g.starts_with("zonal-workload shop"), "{g}");
        held.push(s);
    }
    wait_for("a shop configuration on the shared streamer", Duration::from_secs(30), || {
        configs(&h, &shared_streamer_admin).get("shop").map(|_| ())
    });
    wait_for("the overlay to be offered", Duration::from_secs(10), || {
        let v = h.get(&acme, &format!("/1.0/zones/{CORE}/services/{shop}"));
        (v["advertised"].as_u64() >= Some(1)).then_some(())
    });
    let (s, g) = open(&endpoint);
    assert!(g.contains("config=shop") && g.contains(&format!("instance={shared_streamer}")), "{g}");
    held.push(s);
    assert_eq!(instances(&h, &acme, &shop).len(), 1, "the shared overlay served instead of a second instance");
    let on_streamer = configs(&h, &epg_streamer_admin);
    assert!(on_streamer.get("shop").is_none(), "the unshared EPG still carries nothing of acme's: {on_streamer}");
    drop(held);

    up.stop();
    h.assert_no_leftovers();
}
