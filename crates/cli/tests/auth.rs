//! Auth on the real binaries (issue 14, item 5): token expiry and revocation (also of a zone's
//! token: it can no longer heartbeat), token lists without secrets, the audit log of accepted
//! and refused writes surviving a `kill -9` of the domain, and `zonal up --tls` end to end.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{example, wait_for, Harness, ZONAL};
use zonal_proto::Client;

/// `zonal ARGS --url URL --token TOKEN` (no context): (success, stdout, stderr).
fn zonal(h: &Harness, url: &str, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(ZONAL)
        .args(args)
        .args(["--url", url, "--token", token])
        .env("ZONAL_CONTEXT", h.path().join("no-context.json"))
        .env_remove("ZONAL_URL")
        .env_remove("ZONAL_TOKEN")
        .env_remove("ZONAL_CA_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("run zonal");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn zonal_ok(h: &Harness, url: &str, token: &str, args: &[&str]) -> String {
    let (ok, out, err) = zonal(h, url, token, args);
    assert!(ok, "zonal {args:?} failed:\n{out}{err}");
    out
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn detail(e: &(u16, Value)) -> String {
    e.1["detail"].as_str().unwrap_or_default().to_string()
}

#[test]
fn tokens_expire_and_a_revoked_token_is_refused_from_the_next_request() {
    let mut h = Harness::new();
    let (mut d, admin_token) = h.domain("127.0.0.1:0");
    let url = d.url.clone();
    // A token with a 2 s lifetime works, then gets 401 naming when it expired.
    let short = json_of(&zonal_ok(
        &h,
        &url,
        &admin_token,
        &["token", "create", "--role", "provider", "--name", "acme", "--ttl", "2s", "-o", "json"],
    ));
    let (secret, id) = (short["token"].as_str().expect("token"), short["id"].as_str().expect("id"));
    let expires_ms = short["expires_ms"].as_u64().expect("expires_ms");
    let acme = h.client(&url, Some(secret));
    h.call(&acme, "GET", "/1.0/services", None).expect("valid before its expiry");
    let wait = Duration::from_millis(expires_ms.saturating_sub(zonal_proto::now_ms()) + 50);
    std::thread::sleep(wait);
    let e = h.call(&acme, "GET", "/1.0/services", None).expect_err("expired");
    assert_eq!(e.0, 401, "{e:?}");
    let expected = format!("the bearer token {id} of user acme expired at {}", zonal_proto::rfc3339(expires_ms));
    assert!(detail(&e).contains(&expected), "{e:?}");

    // Revocation: the very next request is refused.
    let long = json_of(&zonal_ok(
        &h,
        &url,
        &admin_token,
        &["token", "create", "--role", "provider", "--name", "acme", "--ttl", "1h", "-o", "json"],
    ));
    let (secret2, id2) = (long["token"].as_str().expect("token"), long["id"].as_str().expect("id"));
    let acme2 = h.client(&url, Some(secret2));
    h.call(
        &acme2,
        "POST",
        "/1.0/services",
        Some(json!({"manifest": std::fs::read_to_string(example("web.yaml")).expect("web")})),
    )
    .expect("registered with the valid token");
    let out = zonal_ok(&h, &url, &admin_token, &["token", "revoke", id2]);
    assert!(out.contains(id2) && out.contains("revoked"), "{out}");
    let e = h.call(&acme2, "DELETE", "/1.0/services/web", None).expect_err("revoked");
    assert_eq!(e.0, 401, "{e:?}");
    assert!(detail(&e).contains(&format!("the bearer token {id2} of user acme was revoked at")), "{e:?}");
    assert!(h.get(&h.client(&url, Some(&admin_token)), "/1.0/services/web").is_object(), "nothing was deleted");

    // The list names every token by id and state, never a secret.
    let list = zonal_ok(&h, &url, &admin_token, &["token", "list", "-o", "json"]);
    for s in [secret, secret2, admin_token.as_str()] {
        assert!(!list.contains(s), "a secret in the list:\n{list}");
    }
    let list = json_of(&list);
    let state = |id: &str| list.as_array().and_then(|l| l.iter().find(|t| t["id"] == id)).map(|t| t["state"].clone());
    assert_eq!((state(id), state(id2)), (Some(json!("expired")), Some(json!("revoked"))), "{list}");
    let table = zonal_ok(&h, &url, &admin_token, &["token", "list", "--user", "acme"]);
    assert!(table.contains("ID") && table.contains(id) && !table.contains("admin "), "{table}");
    // The last valid admin token cannot be revoked: the domain would be locked.
    let (ok, _, err) = zonal(&h, &url, &admin_token, &["token", "revoke", "--user", "admin"]);
    assert!(!ok && err.contains("no valid admin token"), "{err}");
    d.stop();
    h.assert_no_leftovers();
}

#[test]
fn a_zone_whose_token_is_revoked_can_no_longer_heartbeat() {
    let mut h = Harness::new();
    let (mut d, admin_token) = h.domain_with("127.0.0.1:0", &["--zone-timeout", "2s", "--replace-after", "60s"]);
    let admin = h.client(&d.url, Some(&admin_token));
    let zone_token = h.token(&admin, "zone", "antwerp-edge");
    let mut z = h.zone("antwerp-edge", &d.url, &zone_token);
    let state = |h: &Harness| {
        let v = h.call(&admin, "GET", "/1.0/zones/antwerp-edge", None).ok()?; // 404 until it registers
        v["state"].as_str().map(str::to_string)
    };
    wait_for("the zone to be available", Duration::from_secs(20), || {
        (state(&h).as_deref() == Some("available")).then_some(())
    });
    h.call(&admin, "DELETE", "/1.0/users/antwerp-edge/tokens", None).expect("revoke the zone's tokens");
    // Its heartbeat is refused at once, naming why …
    let as_zone = h.client(&d.url, Some(&zone_token));
    let e = h
        .call(&as_zone, "PUT", "/1.0/zones/antwerp-edge/status", Some(json!({"hosts": [], "services": []})))
        .expect_err("revoked");
    assert_eq!(e.0, 401, "{e:?}");
    assert!(detail(&e).contains("of user antwerp-edge was revoked at"), "{e:?}");
    // … so the domain stops hearing from the zone and marks it unavailable.
    wait_for("the zone to become unavailable", Duration::from_secs(20), || {
        (state(&h).as_deref() == Some("unavailable")).then_some(())
    });
    let log = std::fs::read_to_string(&z.log).expect("zone log");
    assert!(log.contains("revoked"), "the zone log says why its heartbeats fail:\n{log}");
    // The refusals are in the audit log with the zone's identity and token id.
    let audit = zonal_ok(&h, &d.url, &admin_token, &["audit", "--user", "antwerp-edge", "-o", "json"]);
    let entries = json_of(&audit);
    let refused = entries
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["status"] == 401 && e["route"] == "/1.0/zones/{zone}/status")
        .count();
    assert!(refused >= 1, "{audit}");
    z.stop();
    d.stop();
    h.assert_no_leftovers();
}

#[test]
fn the_audit_log_records_accepted_and_refused_writes_and_survives_kill_9() {
    let mut h = Harness::new();
    let (mut d, admin_token) = h.domain("127.0.0.1:0");
    let admin = h.client(&d.url, Some(&admin_token));
    let admin_id = json_of(&zonal_ok(&h, &d.url, &admin_token, &["token", "list", "-o", "json"]))[0]["id"]
        .as_str()
        .expect("admin token id")
        .to_string();
    h.call(&admin, "POST", "/1.0/users", Some(json!({"name": "acme", "role": "provider"}))).expect("user");
    let created =
        h.call(&admin, "POST", "/1.0/tokens", Some(json!({"role": "provider", "name": "acme"}))).expect("token");
    let (acme_token, acme_id) = (created["token"].as_str().expect("token"), created["id"].as_str().expect("id"));
    let acme = h.client(&d.url, Some(acme_token));
    let manifest = std::fs::read_to_string(example("web.yaml")).expect("web");
    h.call(&acme, "POST", "/1.0/services", Some(json!({"manifest": manifest}))).expect("register");
    let e = h.call(&acme, "POST", "/1.0/users", Some(json!({"name": "mallory", "role": "admin"}))).expect_err("403");
    assert_eq!(e.0, 403);
    let stranger = h.client(&d.url, Some("0123456789abcdef"));
    assert_eq!(h.call(&stranger, "DELETE", "/1.0/services/web", None).expect_err("401").0, 401);
    let nobody = h.client(&d.url, None);
    assert_eq!(
        h.call(&nobody, "PUT", "/1.0/services/web/state", Some(json!({"state": "deploy"}))).expect_err("401").0,
        401
    );
    // The last write was acknowledged: kill -9 the domain now, then start it again.
    d.crash();
    let mode = std::fs::metadata(h.path().join("domain").join("audit.jsonl")).expect("audit file");
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
    let (mut d, _) = h.domain("127.0.0.1:0");
    let entries = json_of(&zonal_ok(&h, &d.url, &admin_token, &["audit", "--since", "1h", "-o", "json"]));
    let rows: Vec<(Value, Value, Value, Value, Value, Value)> = entries
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["user"].clone(),
                e["token_id"].clone(),
                e["method"].clone(),
                e["path"].clone(),
                e["status"].clone(),
                e["resource"].clone(),
            )
        })
        .collect();
    let row = |u: Value, t: Value, m: &str, p: &str, s: u16, r: Value| (u, t, json!(m), json!(p), json!(s), r);
    let expected = vec![
        row(json!("admin"), json!(admin_id), "POST", "/1.0/users", 201, json!("acme")),
        row(json!("admin"), json!(admin_id), "POST", "/1.0/tokens", 201, json!(acme_id)),
        row(json!("acme"), json!(acme_id), "POST", "/1.0/services", 201, json!("web")),
        row(json!("acme"), json!(acme_id), "POST", "/1.0/users", 403, json!("mallory")),
        row(Value::Null, Value::Null, "DELETE", "/1.0/services/web", 401, json!("web")),
        row(Value::Null, Value::Null, "PUT", "/1.0/services/web/state", 401, json!("web")),
    ];
    assert_eq!(rows, expected, "{entries:#}");
    let text = serde_json::to_string(&entries).expect("json");
    assert!(!text.contains(acme_token) && !text.contains(&admin_token), "a secret in the audit log");
    assert!(entries[3]["outcome"].as_str().is_some_and(|o| o.starts_with("forbidden:")), "{}", entries[3]);
    assert!(entries[4]["outcome"].as_str().is_some_and(|o| o.contains("not known")), "{}", entries[4]);
    // Filters: by user, and the reading itself (a GET) is not a write.
    let mine = json_of(&zonal_ok(&h, &d.url, &admin_token, &["audit", "--user", "acme", "-o", "json"]));
    assert_eq!(mine.as_array().map(Vec::len), Some(2), "{mine}");
    let table = zonal_ok(&h, &d.url, &admin_token, &["audit"]);
    assert!(table.contains("OUTCOME") && table.contains("forbidden"), "{table}");
    // Only an admin reads it.
    let acme = h.client(&d.url, Some(acme_token));
    let e = h.call(&acme, "GET", "/1.0/audit", None).expect_err("admin only");
    assert_eq!(e.0, 403, "{e:?}");
    d.stop();
    h.assert_no_leftovers();
}

const ONE_ZONE: &str = "kind: Infrastructure
name: one-zone
domain: test
zones:
  - name: a
    location: {lat: 50.0, lon: 4.0}
    hosts: [{name: a0, capacity: {cpu: 8, memory: 16Gi}}]
";

#[test]
fn zonal_up_tls_serves_every_daemon_over_https_and_every_client_verifies() {
    let mut h = Harness::new();
    let mut up = h.up(ONE_ZONE, &["--tls"]);
    assert!(up.url.starts_with("https://127.0.0.1:"), "{}", up.url);
    let ctx = json_of(&std::fs::read_to_string(&up.context).expect("context"));
    let ca_path = ctx["ca"].as_str().expect("the context records the CA").to_string();
    let ca = std::fs::read_to_string(&ca_path).expect("ca.pem");
    let key = h.path().join("up").join("tls").join("ca.key");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).expect("key").permissions()) & 0o777,
        0o600
    );
    // Apply a service; its instance serves and reports to its zone over HTTPS.
    let out = up.zonal(&["apply", "-f", example("web.yaml").to_str().expect("path")]);
    assert!(out.contains("placed in zone a"), "{out}");
    let instances = wait_for("a running instance", Duration::from_secs(30), || {
        let v = json_of(&up.zonal(&["get", "instances", "-o", "json"]));
        v.as_array().filter(|l| l.len() == 1 && l[0]["state"] == "running").cloned()
    });
    let zones = json_of(&up.zonal(&["get", "zones", "-o", "json"]));
    assert!(zones[0]["endpoint"].as_str().is_some_and(|e| e.starts_with("https://")), "{zones}");
    let described = up.zonal(&["describe", "service", "web"]);
    assert!(
        described.contains("deployed") && described.contains(instances[0]["id"].as_str().expect("id")),
        "{described}"
    );
    // A real session through the zone's gateway.
    // The instance can run before the zone's next heartbeat reports it; resolve says "retry".
    let r = wait_for("a resolution", Duration::from_secs(30), || {
        let (ok, text, _) = up.try_zonal(&["resolve", "web", "--from", "50.0,4.0", "-o", "json"]);
        ok.then(|| json_of(&text))
    });
    let endpoint = r["endpoint"].as_str().expect("endpoint").to_string();
    let stream = std::net::TcpStream::connect(&endpoint).expect("connect to the gateway");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut greeting = String::new();
    BufReader::new(&stream).read_line(&mut greeting).expect("greeting");
    assert!(greeting.contains("instance="), "{greeting}");
    drop(stream);
    // The zone heard from the domain and from the instance over HTTPS (its audit log says
    // who wrote what there).
    let zone_log = wait_for("the instance's reports at the zone", Duration::from_secs(20), || {
        let v = json_of(&up.zonal(&["audit", "--zone", "a", "--telemetry", "-o", "json"]));
        let by = |role: &str| v.as_array().is_some_and(|l| l.iter().any(|e| e["role"] == role && e["status"] == 200));
        (by("domain") && by("instance")).then_some(v)
    });
    assert!(zone_log.as_array().is_some_and(|l| l.iter().all(|e| e["zone"] == "a")), "{zone_log}");
    // A client that does not trust the CA is refused, and told what to do.
    let (ok, _, err) = zonal(&h, &up.url, &up.token, &["get", "zones"]);
    assert!(!ok && err.contains("not signed by a CA this client trusts"), "{err}");
    // … and one given the CA explicitly works.
    let ca_file = h.path().join("ca-copy.pem");
    std::fs::write(&ca_file, &ca).expect("copy");
    zonal_ok(&h, &up.url, &up.token, &["get", "zones", "--ca", ca_file.to_str().expect("path")]);
    // Plain HTTP to the HTTPS port fails cleanly: a 400 naming the fix.
    let plain = h.client(&up.url.replace("https://", "http://"), Some(&up.token));
    let e = h.call(&plain, "GET", "/1.0/zones", None).expect_err("plain HTTP");
    assert_eq!((e.0, e.1["error"].as_str()), (400, Some("tls_required")), "{e:?}");
    // The rust client with the CA, as the daemons use it.
    let started = Instant::now();
    let c = Client::with_ca(&up.url, Some(up.token.clone()), Duration::from_secs(10), Some(&ca)).expect("client");
    let v: Value = h.rt.block_on(c.get("/1.0/domain")).expect("GET over HTTPS");
    assert_eq!(v["name"], "test", "{v}");
    assert!(started.elapsed() < Duration::from_secs(10));
    up.stop();
    h.assert_no_leftovers();
}
