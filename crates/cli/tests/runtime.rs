//! End-to-end tests of the running system: real `zonal domain`, `zonal zone` and
//! `zonal workload` processes on 127.0.0.1, in temporary directories. Every test ends by
//! checking that no process it started is left.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;
use support::*;

const ZONE: &str = "frankfurt-core";

/// Reads the greeting line of a session.
fn session(port: u16) -> (TcpStream, String) {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the instance");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut line = String::new();
    BufReader::new(s.try_clone().expect("clone")).read_line(&mut line).expect("greeting");
    (s, line)
}

#[test]
fn epg_is_deployed_and_serves_sessions_then_deletes_cascade() {
    let mut h = Harness::new();
    let (mut domain, admin_token) = h.domain("127.0.0.1:0");
    let admin = h.client(&domain.url, Some(&admin_token));
    let zone_token = h.token(&admin, "zone", ZONE);
    let mut zone = h.zone(ZONE, &domain.url, &zone_token);
    wait_for("the zone to register", Duration::from_secs(20), || {
        let zones = h.get(&admin, "/1.0/zones");
        (zones[0]["state"] == "available").then_some(())
    });

    let id = deploy(&h, &admin, "epg.yaml");
    let instances = wait_running(&h, &admin, &id, 2);
    assert_eq!(h.instance_processes().len(), 2, "one process per instance");
    // Placed by the offer of the zone, scored by EPG's own evaluator component (which the
    // zone ran for the evaluation and stopped once the domain accepted the offer).
    let round = h.get(&admin, &format!("/1.0/services/{id}/offers"));
    assert_eq!(round["taken"][0]["zone"], ZONE, "{round}");
    assert_eq!(round["received"][0]["evaluator"], "component evaluator", "{round}");

    // The entry instance accepts a TCP session, which holds one slot.
    let (mut s, greeting) = session(port_of(&instances, "renderer", "rfb"));
    assert!(greeting.starts_with("zonal-workload epg-renderer"), "{greeting}");
    s.write_all(b"ping\n").expect("write");
    let mut echo = String::new();
    BufReader::new(s.try_clone().expect("clone")).read_line(&mut echo).expect("echo");
    assert_eq!(echo, "ping\n");
    wait_for("the used slot to reach the domain", Duration::from_secs(10), || {
        let v = h.get(&admin, &format!("/1.0/services/{id}/slots"));
        (v["used"] == 1 && v["total"] == 10).then_some(())
    });
    drop(s);

    // The streamer serves two configurations on their own ports.
    for config in ["epg", "dashboard"] {
        let (_s, g) = session(port_of(&instances, "streamer", config));
        assert!(g.contains(&format!("config={config}")), "{g}");
    }

    // Late binding: the renderer found the streamer through the zone's context namespace.
    let workload = instance_admin(&instances, "renderer");
    wait_for("the renderer to find its streamer peer", Duration::from_secs(10), || {
        let st = h.get(&workload, "/1.0/state");
        st["peers"]["streamer"].as_array().filter(|a| a.len() == 2).map(|_| ())
    });

    // Multi-configuration: a configuration is added to the running streamer, on its own port.
    let streamer_admin = instance_admin(&instances, "streamer");
    let added = h
        .call(&streamer_admin, "POST", "/1.0/configs", Some(json!({"name": "extra", "port": 0, "max": 1})))
        .expect("add config");
    let extra_port = added["port"].as_u64().expect("port") as u16;
    let (_e1, g) = session(extra_port);
    assert!(g.contains("config=extra"), "{g}");
    let (_e2, g) = session(extra_port);
    assert!(g.starts_with("busy"), "the configuration's cap holds: {g}");
    assert_eq!(h.get(&streamer_admin, "/1.0/slots")["configs"].as_object().map(|c| c.len()), Some(3));

    // Metrics on both daemons: the domain's for an admin, the zone's for the zone's own token
    // (what an operator's Prometheus holds); without a token, nothing.
    let metrics = |url: &str, token: Option<&str>| {
        let c = h.client(url, token);
        let (status, bytes) =
            h.rt.block_on(c.send_raw(zonal_proto::client::Method::GET, "/metrics", None)).expect("metrics");
        assert_eq!(status, 200, "GET {url}/metrics: {}", String::from_utf8_lossy(&bytes));
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let dm = metrics(&domain.url, Some(&admin_token));
    assert!(dm.contains("zonal_domain_http_requests_total{") && dm.contains("zonal_domain_instances 2"), "{dm}");
    let zm = metrics(&zone.url, Some(&zone_token));
    assert!(zm.contains("zonal_zone_instances{service=\"epg\",component=\"renderer\",state=\"running\"} 1"), "{zm}");

    // Lifecycle rules: a zone with running services cannot be deleted.
    let err = h.call(&admin, "DELETE", &format!("/1.0/zones/{ZONE}"), None).expect_err("zone delete must be refused");
    assert_eq!(err.0, 409, "{err:?}");

    // Deleting the service cascades domain → zone → adaptor.
    h.call(&admin, "DELETE", &format!("/1.0/services/{id}"), None).expect("delete");
    wait_for("the service to be gone", Duration::from_secs(20), || {
        h.call(&admin, "GET", &format!("/1.0/services/{id}"), None).err().filter(|e| e.0 == 404).map(|_| ())
    });
    wait_for("the instances to stop", Duration::from_secs(10), || h.instance_processes().is_empty().then_some(()));
    h.call(&admin, "DELETE", &format!("/1.0/zones/{ZONE}"), None).expect("an idle zone can be deleted");

    zone.stop();
    domain.stop();
    h.assert_no_leftovers();
}

#[test]
fn zone_manager_crash_adopts_instances_and_instance_crash_restarts() {
    let mut h = Harness::new();
    let (mut domain, admin_token) = h.domain("127.0.0.1:0");
    let admin = h.client(&domain.url, Some(&admin_token));
    let zone_token = h.token(&admin, "zone", ZONE);
    let mut zone = h.zone(ZONE, &domain.url, &zone_token);
    let id = deploy(&h, &admin, "epg.yaml");
    let before = wait_running(&h, &admin, &id, 2);
    let pids_before = h.instance_processes();
    assert_eq!(pids_before.len(), 2);

    // kill -9 of the zone manager: the instances keep running…
    zone.crash();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(h.instance_processes(), pids_before, "instances survive their zone manager");
    // (The key the domain calls the zone with, read from the stopped zone's store.)
    let zone_key = {
        let path = h.path().join("zones").join(ZONE).join("zone.redb");
        let store = zonal_store::RedbStore::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let identity: serde_json::Value = zonal_store::StoreExt::get(&store, "meta", "identity")
            .expect("read the zone's identity")
            .expect("the zone's identity");
        identity["api_key"].as_str().expect("api_key").to_string()
    };
    // …and a restarted zone manager adopts them: same processes, none duplicated.
    let mut zone = h.zone(ZONE, &domain.url, &zone_token);
    let after = wait_for("the instances to be adopted", Duration::from_secs(20), || {
        let v = h.get(&admin, &format!("/1.0/services/{id}?instances=true"));
        let inst = v["instances"].as_array()?.clone();
        (inst.len() == 2 && inst.iter().all(|i| i["adopted"] == true && i["state"] == "running")).then_some(inst)
    });
    assert_eq!(pid_of(&after, "renderer"), pid_of(&before, "renderer"));
    assert_eq!(pid_of(&after, "streamer"), pid_of(&before, "streamer"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(h.instance_processes(), pids_before, "no instance was duplicated");
    let (_s, g) = session(port_of(&after, "renderer", "rfb"));
    assert!(g.starts_with("zonal-workload"), "{g}");
    // The restarted zone manager still holds each adopted instance's admin secret: it reads
    // the renderer's configurations through its admin API.
    let as_domain = h.client(&zone.url, Some(&zone_key));
    let renderer = after.iter().find(|i| i["component"] == "renderer").expect("renderer");
    let configs = format!("/1.0/instances/{}/configs", renderer["id"].as_str().expect("id"));
    assert!(h.get(&as_domain, &configs).as_object().is_some_and(|c| !c.is_empty()), "configs of an adopted instance");
    let old_secret = instance_admin(&after, "renderer");
    assert_eq!(h.get(&old_secret, "/1.0/state")["state"], "running");

    // kill -9 of an (adopted) instance: the zone restarts it.
    let victim = pid_of(&after, "renderer");
    // SAFETY: kills a process this test started.
    unsafe {
        libc::kill(victim as i32, libc::SIGKILL);
    }
    let restarted = wait_for("the renderer to be restarted", Duration::from_secs(20), || {
        let v = h.get(&admin, &format!("/1.0/services/{id}?instances=true"));
        let inst = v["instances"].as_array()?.clone();
        let r = inst.iter().find(|i| i["component"] == "renderer")?;
        (r["state"] == "running" && r["restarts"] == 1 && r["pid"].as_u64() != Some(victim as u64)).then_some(inst)
    });
    assert_eq!(h.instance_processes().len(), 2);
    // The restarted instance keeps its id and port.
    assert_eq!(port_of(&restarted, "renderer", "rfb"), port_of(&before, "renderer", "rfb"));
    wait_for("the restarted renderer to accept sessions", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port_of(&restarted, "renderer", "rfb"))).ok().map(|_| ())
    });
    // …with a fresh admin secret: the old one is refused, the zone has the new one.
    let new_secret = instance_admin(&restarted, "renderer");
    assert_eq!(h.get(&new_secret, "/1.0/state")["state"], "running");
    let refused = h.call(&old_secret, "GET", "/1.0/state", None).expect_err("the old secret is refused");
    assert_eq!(refused.0, 401, "{refused:?}");
    assert!(h.get(&as_domain, &configs).as_object().is_some_and(|c| !c.is_empty()), "configs after the restart");

    // A clean stop of the zone manager stops its instances.
    zone.stop();
    assert!(h.instance_processes().is_empty(), "a cleanly stopped zone leaves no instance");
    domain.stop();
    h.assert_no_leftovers();
}

#[test]
fn domain_stopped_mid_deployment_completes_after_restart() {
    let mut h = Harness::new();
    let (mut domain, admin_token) = h.domain("127.0.0.1:0");
    let listen = domain.url.trim_start_matches("http://").to_string();
    let admin = h.client(&domain.url, Some(&admin_token));
    let zone_token = h.token(&admin, "zone", ZONE);
    let mut zone = h.zone(ZONE, &domain.url, &zone_token);
    wait_for("the zone to register", Duration::from_secs(20), || {
        (h.get(&admin, "/1.0/zones")[0]["last_seen_ms"].is_u64()).then_some(())
    });
    // The zone goes away; the deployment is accepted and stalls, retrying.
    zone.stop();
    let id = deploy(&h, &admin, "web.yaml");
    wait_for("the deployment to be retrying", Duration::from_secs(20), || {
        let v = h.get(&admin, &format!("/1.0/services/{id}"));
        (v["state"] == "deploying" && v["message"].as_str().is_some_and(|m| m.contains(ZONE))).then_some(())
    });
    // The domain stops mid-deployment…
    domain.stop();
    // …the zone comes back while the domain is down, then the domain restarts.
    let mut zone = h.zone(ZONE, &format!("http://{listen}"), &zone_token);
    let (mut domain, _) = h.domain(&listen);
    let instances = wait_running(&h, &admin, &id, 1);
    let (_s, g) = session(port_of(&instances, "web", "http"));
    assert!(g.starts_with("zonal-workload"), "{g}");
    assert_eq!(h.instance_processes().len(), 1);

    zone.stop();
    domain.stop();
    h.assert_no_leftovers();
}

#[test]
fn invalid_manifest_is_refused_with_every_diagnostic_and_nothing_is_stored() {
    let mut h = Harness::new();
    let (mut domain, admin_token) = h.domain("127.0.0.1:0");
    let admin = h.client(&domain.url, Some(&admin_token));
    let bad = "kind: Service\nname: broken\ncomponents:\n  - name: a\n    resources: {cpu: lots}\n    scaling: {min_instances: 3, max_instances: 1}\n";
    let err = h.call(&admin, "POST", "/1.0/services", Some(json!({"manifest": bad}))).expect_err("must be refused");
    assert_eq!(err.0, 400);
    assert_eq!(err.1["error"], "invalid_manifest");
    let diags: Vec<String> = err.1["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    assert!(diags.iter().any(|d| d.contains(":5:") && d.contains("cpu")), "located cpu error in {diags:?}");
    // Not JSON at all: a clear 400 too.
    let (status, body) =
        h.call(&admin, "POST", "/1.0/services", Some(json!({"nope": 1}))).expect_err("must be refused");
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("manifest")), "{body}");
    assert_eq!(h.get(&admin, "/1.0/services"), json!([]), "nothing was stored");
    domain.stop();
    h.assert_no_leftovers();
}

#[test]
fn wrong_roles_are_refused_and_change_nothing() {
    let mut h = Harness::new();
    let (mut domain, admin_token) = h.domain("127.0.0.1:0");
    let admin = h.client(&domain.url, Some(&admin_token));
    let acme = h.client(&domain.url, Some(&h.token(&admin, "provider", "acme")));
    let other = h.client(&domain.url, Some(&h.token(&admin, "provider", "other")));
    let zone = h.client(&domain.url, Some(&h.token(&admin, "zone", "ghent-edge")));
    let nobody = h.client(&domain.url, None);
    let forged = h.client(&domain.url, Some("not-a-token"));

    // No or unknown token: 401.
    assert_eq!(h.call(&nobody, "GET", "/1.0/services", None).expect_err("401").0, 401);
    assert_eq!(h.call(&forged, "GET", "/1.0/services", None).expect_err("401").0, 401);
    // Providers may not create tokens or register zones; zones may not register services.
    assert_eq!(
        h.call(&acme, "POST", "/1.0/tokens", Some(json!({"role": "admin", "name": "me"}))).expect_err("403").0,
        403
    );
    let reg = json!({"name": "rogue", "endpoint": "http://127.0.0.1:9", "api_key": "k"});
    let (status, body) = h.call(&acme, "POST", "/1.0/zones", Some(reg)).expect_err("403");
    assert_eq!(status, 403);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("provider") && d.contains("zone")), "{body}");
    let manifest = std::fs::read_to_string(example("web.yaml")).expect("web.yaml");
    assert_eq!(h.call(&zone, "POST", "/1.0/services", Some(json!({"manifest": manifest}))).expect_err("403").0, 403);
    // A zone identity may only register its own zone.
    let reg = json!({"name": "antwerp-edge", "endpoint": "http://127.0.0.1:9", "api_key": "k"});
    assert_eq!(h.call(&zone, "POST", "/1.0/zones", Some(reg)).expect_err("403").0, 403);
    assert_eq!(h.get(&admin, "/1.0/zones"), json!([]), "no zone was registered");

    // acme owns its service (web.yaml names acme as owner); other may not touch it nor see it.
    h.call(&acme, "POST", "/1.0/services", Some(json!({"manifest": manifest}))).expect("acme registers web");
    let users_before = h.get(&admin, "/1.0/users");
    assert_eq!(h.get(&other, "/1.0/services"), json!([]), "lists are filtered by owner");
    assert_eq!(h.call(&other, "DELETE", "/1.0/services/web", None).expect_err("403").0, 403);
    assert_eq!(
        h.call(&other, "PUT", "/1.0/services/web/state", Some(json!({"state": "deploy"}))).expect_err("403").0,
        403
    );
    let web = h.get(&admin, "/1.0/services/web");
    assert_eq!(web["state"], "registered", "nothing changed");
    assert_eq!(web["owner"], "acme");
    // A provider cannot register a manifest that names another owner.
    let epg = std::fs::read_to_string(example("epg.yaml")).expect("epg.yaml");
    assert_eq!(h.call(&acme, "POST", "/1.0/services", Some(json!({"manifest": epg}))).expect_err("403").0, 403);
    assert_eq!(h.get(&acme, "/1.0/services").as_array().map(Vec::len), Some(1));
    assert_eq!(h.get(&admin, "/1.0/users"), users_before, "users unchanged");
    // Unknown routes and methods are JSON errors too.
    let (status, body) = h.call(&admin, "GET", "/1.0/nothing-here", None).expect_err("404");
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    domain.stop();
    h.assert_no_leftovers();
}

#[test]
fn up_apply_get_and_ctrl_c_leave_no_process() {
    let mut h = Harness::new();
    let state = h.path().join("up");
    let ctx = h.path().join("ctx.json");
    let web = support::repo_root().join("examples/web.yaml");
    let (mut up, log) = h.spawn(
        &[
            "up",
            "--state",
            state.to_str().expect("utf-8"),
            "--context",
            ctx.to_str().expect("utf-8"),
            "--heartbeat",
            "300ms",
            "--stop-grace",
            "3s",
            "--apply",
            web.to_str().expect("utf-8"),
        ],
        &[],
        "up.log",
    );
    wait_for("zonal up to write the context", Duration::from_secs(40), || {
        if let Ok(Some(s)) = up.try_wait() {
            panic!("zonal up exited ({s}):\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        ctx.exists().then_some(())
    });
    let run = |args: &[&str]| {
        let out = std::process::Command::new(ZONAL)
            .args(args)
            .current_dir(support::repo_root())
            .env("ZONAL_CONTEXT", &ctx)
            .env_remove("ZONAL_URL")
            .env_remove("ZONAL_TOKEN")
            .output()
            .expect("run zonal");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "zonal {args:?} failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
        text
    };
    wait_for("zonal up --apply to deploy web", Duration::from_secs(40), || {
        std::fs::read_to_string(&log).ok().filter(|l| l.contains("service web placed in zone")).map(|_| ())
    });
    let applied = run(&["apply", "-f", "examples/epg.yaml"]);
    assert!(applied.contains("placed in zone"), "{applied}");
    let zones = run(&["get", "zones"]);
    assert_eq!(zones.lines().filter(|l| l.contains("available")).count(), 4, "{zones}");
    let instances = run(&["get", "instances"]);
    assert!(instances.contains("renderer") && instances.contains("streamer"), "{instances}");
    let described = run(&["describe", "service", "epg"]);
    assert!(described.contains("State:     deployed"), "{described}");
    let json_out = run(&["get", "instances", "-o", "json"]);
    let parsed: serde_json::Value = serde_json::from_str(&json_out).expect("json output");
    let first = parsed[0]["id"].as_str().expect("instance id").to_string();
    let token = run(&["token", "create", "--role", "provider", "--name", "acme"]);
    assert_eq!(token.trim().len(), 64, "{token}");
    let logs = run(&["logs", &first]);
    assert!(logs.contains("workload epg-"), "{logs}");
    // The zones EPG's offer round started its evaluator in (and did not choose) stop it.
    wait_for("one process per instance (web, renderer, streamer)", Duration::from_secs(15), || {
        (processes_under(&state.join("zones")).len() == 3).then_some(())
    });

    // Ctrl-C: everything stops.
    // SAFETY: interrupts the process this test started.
    unsafe {
        libc::kill(up.id() as i32, libc::SIGINT);
    }
    wait_for("zonal up to exit", Duration::from_secs(40), || up.try_wait().ok().flatten());
    h.assert_no_leftovers();
    assert!(!ctx.exists(), "the context of a stopped domain is removed");
}

#[test]
fn services_of_a_dead_zone_are_placed_elsewhere_and_the_zone_drops_them_on_return() {
    let mut h = Harness::new();
    let (mut domain, admin_token) = h.domain_with("127.0.0.1:0", &["--zone-timeout", "1s", "--replace-after", "500ms"]);
    let admin = h.client(&domain.url, Some(&admin_token));
    let t_fra = h.token(&admin, "zone", ZONE);
    let t_ghent = h.token(&admin, "zone", "ghent-edge");
    let mut fra = h.zone(ZONE, &domain.url, &t_fra);
    let mut ghent = h.zone("ghent-edge", &domain.url, &t_ghent);
    wait_for("both zones to report", Duration::from_secs(20), || {
        let z = h.get(&admin, "/1.0/zones");
        (z.as_array()?.iter().filter(|z| z["last_seen_ms"].is_u64()).count() == 2).then_some(())
    });
    let id = deploy(&h, &admin, "web.yaml");
    wait_running(&h, &admin, &id, 1);
    let first = h.get(&admin, &format!("/1.0/services/{id}"))["zones"][0].as_str().expect("zone").to_string();
    assert_eq!(first, ZONE, "the zone with most free capacity");
    // The zone manager dies (its instance lives on) and misses its heartbeats.
    fra.crash();
    let instances = wait_for("the service to move to ghent-edge", Duration::from_secs(20), || {
        let v = h.get(&admin, &format!("/1.0/services/{id}?instances=true"));
        let inst = v["instances"].as_array()?.clone();
        (v["zones"] == json!(["ghent-edge"])
            && v["state"] == "deployed"
            && inst.iter().any(|i| i["zone"] == "ghent-edge" && i["state"] == "running"))
        .then_some(inst)
    });
    let (_s, g) = session(port_of(
        &instances.into_iter().filter(|i| i["zone"] == "ghent-edge").collect::<Vec<_>>(),
        "web",
        "http",
    ));
    assert!(g.starts_with("zonal-workload"), "{g}");
    // When the zone returns, it is told to drop the service: one instance is left in all.
    let mut fra = h.zone(ZONE, &domain.url, &t_fra);
    wait_for("the old zone to drop the service", Duration::from_secs(20), || {
        let n = processes_under(&h.path().join("zones").join(ZONE)).len();
        (n == 0 && h.instance_processes().len() == 1).then_some(())
    });
    fra.stop();
    ghent.stop();
    domain.stop();
    h.assert_no_leftovers();
}

#[test]
fn workload_refuses_sessions_beyond_its_slots() {
    let mut h = Harness::new();
    let (mut child, log) = h.spawn(&["workload", "--slots", "1", "--name", "solo"], &[], "workload.log");
    let port: u16 = wait_for("the workload to listen", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).ok()?;
        let at = text.find("solo=127.0.0.1:")? + "solo=127.0.0.1:".len();
        text[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    });
    let (first, g) = session(port);
    assert!(g.starts_with("zonal-workload solo"), "{g}");
    let (_second, g) = session(port);
    assert_eq!(g, "busy: no free session slots\n");
    drop(first);
    wait_for("the slot to be free again", Duration::from_secs(5), || {
        let (_s, g) = session(port);
        g.starts_with("zonal-workload").then_some(())
    });
    let _ = child.kill();
    let _ = child.wait();
    h.assert_no_leftovers();
}
