//! schemathesis (PyPI, 4.x) against a real domain and a real zone manager on 127.0.0.1: every
//! operation of each daemon's own `GET /openapi.json`, every check (`--checks all`), the
//! examples, coverage and fuzzing phases, with a fixed seed. Test data is created first (a
//! provider with a deployed service and its instance, an offer, victims for the deleting
//! operations), and the `{…}` path parameters name it (`schemathesis.toml` at the repository
//! root, which also holds the few per-operation exceptions with their reasons).
//!
//! Each daemon is run twice: every operation but DELETE first, then the DELETE operations,
//! whose path parameters name victims created for them, so deleting cannot take the data
//! the reading run needs; the domain's zone registration runs last of all (see below).
//!
//! schemathesis is found at `$ZONAL_SCHEMATHESIS`, else `$HOME/.cache/zonal/venv/bin/schemathesis`
//! (what `scripts/setup` installs). Its absence is a failure naming the fix, never a skip.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const Z1: &str = "frankfurt-core";

fn manifest(name: &str) -> String {
    format!(
        "kind: Service\nname: {name}\nowner: acme\ncomponents:\n  - name: web\n    run: zonal workload --name {name} --slots 4\n    resources: {{cpu: 100m, memory: 64Mi}}\n    slots: {{per_instance: 4}}\n    scaling: {{min_instances: 1, max_instances: 2}}\n    placement: {{zones: [{Z1}]}}\n    ports:\n      - {{name: tcp, protocol: tcp}}\n"
    )
}

fn schemathesis_bin() -> PathBuf {
    let path = std::env::var_os("ZONAL_SCHEMATHESIS").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/zonal/venv/bin/schemathesis")
    });
    assert!(
        path.is_file(),
        "schemathesis is not installed at {}: run scripts/setup (it installs the pinned schemathesis into \
         $HOME/.cache/zonal/venv), or point $ZONAL_SCHEMATHESIS at it",
        path.display()
    );
    path
}

/// What one schemathesis run found.
struct Outcome {
    ok: bool,
    summary: String,
    generated: u64,
    operations: u64,
    seconds: f64,
}

/// Runs schemathesis against `url` with `token`; `ids` names the test data (the
/// `ZONAL_ST_*` variables `schemathesis.toml` reads); `filter` selects operations.
fn schemathesis(h: &Harness, label: &str, url: &str, token: &str, ids: &[(&str, &str)], filter: &[&str]) -> Outcome {
    let bin = schemathesis_bin();
    let config = repo_root().join("schemathesis.toml");
    let dir = h.path().join(format!("st-{label}"));
    std::fs::create_dir_all(&dir).expect("report dir");
    let started = Instant::now();
    let out = Command::new(&bin)
        .current_dir(&dir)
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{url}/openapi.json")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "25", "--seed", "14", "--generation-database", "none"])
        .args(["--workers", "1", "--request-timeout", "30", "--no-color", "--output-truncate", "false"])
        .args(filter)
        .envs(ids.iter().copied())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    std::fs::write(dir.join("output.txt"), format!("{stdout}\n{stderr}")).expect("write output");
    let number_before = |text: &str, word: &str| -> u64 {
        text.lines()
            .find_map(|l| {
                let i = l.find(word)?;
                l[..i].split_whitespace().last()?.parse().ok()
            })
            .unwrap_or(0)
    };
    let summary = match stdout.find("SUMMARY") {
        Some(i) => stdout[i..].to_string(),
        None => format!("{stdout}\n{stderr}"),
    };
    let operations = summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Outcome {
        ok: out.status.success(),
        generated: number_before(&summary, " generated"),
        operations,
        summary: if out.status.success() { summary } else { format!("{stdout}\n{stderr}") },
        seconds,
    }
}

#[test]
fn schemathesis_finds_no_failure_in_either_daemons_openapi_document() {
    let bin = schemathesis_bin();
    let mut h = Harness::new();
    let (mut domain, admin_token) = h.domain("127.0.0.1:0");
    let admin = h.client(&domain.url, Some(&admin_token));
    let acme_token = h.token(&admin, "provider", "acme");
    let zone_token = h.token(&admin, "zone", Z1);
    // The key the zone hands the domain is in its store: start the zone, stop it hard, read
    // the key, start it again (same state, same key).
    let mut zone = h.zone(Z1, &domain.url, &zone_token);
    wait_for("the zone to register", Duration::from_secs(30), || {
        let v = h.call(&admin, "GET", &format!("/1.0/zones/{Z1}"), None).ok()?;
        (v["state"] == "available").then_some(())
    });
    zone.crash();
    let zone_key = {
        let path = h.path().join("zones").join(Z1).join("zone.redb");
        let store = zonal_store::RedbStore::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let identity: Value = zonal_store::StoreExt::get(&store, "meta", "identity")
            .expect("read the zone's identity")
            .expect("the zone's identity");
        identity["api_key"].as_str().expect("api_key").to_string()
    };
    let mut zone = h.zone(Z1, &domain.url, &zone_token);
    wait_for("the zone to report again", Duration::from_secs(30), || {
        let v = h.get(&admin, &format!("/1.0/zones/{Z1}"));
        (v["state"] == "available" && v["last_seen_ms"].as_u64().is_some_and(|ms| ms < 1000)).then_some(())
    });

    // Test data: acme's deployed service (the reading runs' `{id}`) and a victim service (the
    // deleting runs'), their instances, a user and a token to delete, a zone to delete, an
    // offer at the zone.
    let acme = h.client(&domain.url, Some(&acme_token));
    for name in ["acme-app", "victim-app"] {
        h.call(&acme, "POST", "/1.0/services", Some(json!({"manifest": manifest(name)})))
            .unwrap_or_else(|e| panic!("register {name}: {e:?}"));
        h.call(&acme, "PUT", &format!("/1.0/services/{name}/state"), Some(json!({"state": "deploy"})))
            .unwrap_or_else(|e| panic!("deploy {name}: {e:?}"));
    }
    let instance_of = |name: &str| -> String {
        wait_for(&format!("a running instance of {name}"), Duration::from_secs(60), || {
            let v = h.call(&acme, "GET", &format!("/1.0/services/{name}?instances=true"), None).ok()?;
            let running = v["instances"].as_array()?.iter().find(|i| i["state"] == "running")?.clone();
            Some(running["id"].as_str()?.to_string())
        })
    };
    let acme_instance = instance_of("acme-app");
    let victim_instance = instance_of("victim-app");
    let victim_token = h
        .call(&admin, "POST", "/1.0/tokens", Some(json!({"role": "provider", "name": "victim"})))
        .unwrap_or_else(|e| panic!("victim token: {e:?}"));
    let victim_token_id = victim_token["id"].as_str().expect("token id").to_string();
    h.call(
        &admin,
        "POST",
        "/1.0/zones",
        Some(json!({"name": "victim-zone", "endpoint": "http://127.0.0.1:9", "api_key": "unused"})),
    )
    .unwrap_or_else(|e| panic!("victim zone: {e:?}"));
    let at_zone = h.client(&zone.url, Some(&zone_key));
    let offer = h
        .call(&at_zone, "POST", "/1.0/offers", Some(json!({"serviceid": "offered", "manifest": manifest("offered").replace("owner: acme\n", "owner: acme\nevaluator: {builtin: latency}\n"), "slots": 4})))
        .unwrap_or_else(|e| panic!("an offer: {e:?}"));
    let offer_id = offer["id"].as_str().or_else(|| offer["offer"].as_str()).unwrap_or("none").to_string();

    let reading = [
        ("ZONAL_ST_ZONE", Z1),
        ("ZONAL_ST_USER", "acme"),
        ("ZONAL_ST_TOKEN", victim_token_id.as_str()),
        ("ZONAL_ST_INSTANCE", acme_instance.as_str()),
        ("ZONAL_ST_OFFER", offer_id.as_str()),
        ("ZONAL_ST_SERVICE", "acme-app"),
    ];
    let deleting = [
        ("ZONAL_ST_ZONE", "victim-zone"),
        ("ZONAL_ST_USER", "victim"),
        ("ZONAL_ST_TOKEN", victim_token_id.as_str()),
        ("ZONAL_ST_INSTANCE", victim_instance.as_str()),
        ("ZONAL_ST_OFFER", offer_id.as_str()),
        ("ZONAL_ST_SERVICE", "victim-app"),
    ];
    // Registering zones (an admin may register any name, the fixture's zone included, at any
    // endpoint) runs last: a zone registered at a generated endpoint is unreachable, and
    // what asks it afterwards is rightly answered 503.
    let read: &[&str] = &["--exclude-method", "DELETE", "--exclude-name", "POST /1.0/zones"];
    let delete: &[&str] = &["--include-method", "DELETE"];
    let register: &[&str] = &["--include-name", "POST /1.0/zones"];
    let runs = [
        ("zone-read", zone.url.as_str(), zone_key.as_str(), &reading, read),
        ("domain-read", domain.url.as_str(), admin_token.as_str(), &reading, read),
        ("zone-delete", zone.url.as_str(), zone_key.as_str(), &deleting, delete),
        ("domain-delete", domain.url.as_str(), admin_token.as_str(), &deleting, delete),
        ("domain-register", domain.url.as_str(), admin_token.as_str(), &deleting, register),
    ];
    let mut failed = Vec::new();
    let (mut generated, mut operations, mut seconds) = (0, 0, 0.0);
    for (label, url, token, ids, filter) in runs {
        let o = schemathesis(&h, label, url, token, ids, filter);
        println!(
            "== schemathesis {label} ({}): {} operations, {} cases, {:.1} s\n{}",
            bin.display(),
            o.operations,
            o.generated,
            o.seconds,
            o.summary
        );
        generated += o.generated;
        operations += o.operations;
        seconds += o.seconds;
        if !o.ok {
            failed.push(label);
        }
    }
    println!("schemathesis: {operations} operations tested, {generated} cases generated, {seconds:.1} s in all");
    zone.stop();
    domain.stop();
    h.assert_no_leftovers();
    assert!(failed.is_empty(), "schemathesis reported failures in {failed:?} (the output is above)");
}
