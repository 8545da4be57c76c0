//! Placement via offers end to end (FUSION S3): under `zonal up`, a service that names a
//! provider's evaluator (an HTTP server this test runs on 127.0.0.1) or a built-in one is
//! placed where the zones' offers say, not where the greedy placer would put it; slots are
//! shared across zones when the best offer is too small; a zone whose evaluator misses the
//! deadline makes no offer. Ends with Ctrl-C to `zonal up` and checks no process is left.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

/// Three zones; the greedy placer (most free capacity) would always pick `big`.
const INFRA: &str = "kind: Infrastructure
name: offers-test
domain: test
zones:
  - name: big
    price: {cpu_hour: 0.06}
    hosts:
      - {name: big-host, capacity: {cpu: 32, memory: 128Gi}}
  - name: mid
    price: {cpu_hour: 0.05}
    hosts:
      - {name: mid-host, capacity: {cpu: 8, memory: 32Gi}}
  - name: small
    price: {cpu_hour: 0.02}
    hosts:
      - {name: small-host, capacity: {cpu: 4, memory: 16Gi}}
";

/// What the test evaluator answers for a zone: its score and how long it takes.
#[derive(Clone, Copy)]
struct Answer {
    score: f64,
    delay: Duration,
}

/// A provider's evaluator on 127.0.0.1: `POST /1.0/evaluations` scores by the environment's
/// zone, as the test sets it.
struct TestEvaluator {
    url: String,
    answers: Arc<Mutex<BTreeMap<String, Answer>>>,
    calls: Arc<Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl TestEvaluator {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the evaluator");
        let answers: Arc<Mutex<BTreeMap<String, Answer>>> = Arc::default();
        let calls: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (a, c) = (answers.clone(), calls.clone());
        let app = axum::Router::new().route(
            "/1.0/evaluations",
            axum::routing::post(move |axum::Json(call): axum::Json<Value>| {
                let (a, c) = (a.clone(), c.clone());
                async move {
                    let zone = call["environment"]["zone"].as_str().unwrap_or_default().to_string();
                    c.lock().expect("calls").push(call);
                    let answer = a
                        .lock()
                        .expect("answers")
                        .get(&zone)
                        .copied()
                        .unwrap_or(Answer { score: 0.0, delay: Duration::ZERO });
                    tokio::time::sleep(answer.delay).await;
                    axum::Json(json!({"score": answer.score}))
                }
            }),
        );
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind the evaluator");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        runtime.spawn(async move { axum::serve(listener, app).await });
        TestEvaluator { url, answers, calls, _runtime: runtime }
    }

    fn answer(&self, zone: &str, score: f64, delay_ms: u64) {
        self.answers
            .lock()
            .expect("answers")
            .insert(zone.into(), Answer { score, delay: Duration::from_millis(delay_ms) });
    }

    fn zones_asked(&self) -> Vec<String> {
        let calls = self.calls.lock().expect("calls");
        let mut z: Vec<String> =
            calls.iter().filter_map(|c| c["environment"]["zone"].as_str().map(str::to_string)).collect();
        z.sort();
        z.dedup();
        z
    }
}

fn manifest(name: &str, evaluator: &str) -> String {
    format!(
        "kind: Service\nname: {name}\nevaluator: {evaluator}\ncomponents:\n  - name: web\n    run: zonal workload --name {name} --slots 4\n    resources: {{cpu: 2, memory: 256Mi}}\n    slots: {{per_instance: 4}}\n    scaling: {{min_instances: 1, max_instances: 10}}\n    ports:\n      - {{name: tcp, protocol: tcp}}\n"
    )
}

/// The service's placement: zone → instances of `web`.
fn placement(h: &Harness, c: &zonal_proto::Client, id: &str) -> BTreeMap<String, u64> {
    let v = h.get(c, &format!("/1.0/services/{id}"));
    let mut out = BTreeMap::new();
    if let Some(p) = v["placement"].as_object() {
        for (zone, comps) in p {
            out.insert(zone.clone(), comps["web"].as_u64().unwrap_or(0));
        }
    }
    out
}

fn wait_placement(h: &Harness, c: &zonal_proto::Client, id: &str, want: &[(&str, u64)]) {
    let want: BTreeMap<String, u64> = want.iter().map(|(z, n)| (z.to_string(), *n)).collect();
    wait_for(&format!("{id} placed as {want:?}"), Duration::from_secs(30), || {
        (placement(h, c, id) == want).then_some(())
    });
}

/// Running instances of the service per zone.
fn running_by_zone(h: &Harness, c: &zonal_proto::Client, id: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for i in h.get(c, &format!("/1.0/services/{id}/instances")).as_array().cloned().unwrap_or_default() {
        if i["state"] == "running" {
            *out.entry(i["zone"].as_str().unwrap_or_default().to_string()).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn placement_follows_the_zones_offers() {
    let ev = TestEvaluator::start();
    ev.answer("mid", 0.9, 0);
    ev.answer("big", 0.4, 0);
    ev.answer("small", 0.0, 0);
    let mut h = Harness::new();
    let mut up = h.up(INFRA, &[]);
    let admin = h.client(&up.url, Some(&up.token));
    wait_for("the zones to report", Duration::from_secs(20), || {
        let v = h.get(&admin, "/1.0/zones");
        let n = v.as_array()?.iter().filter(|z| z["state"] == "available" && !z["last_seen_ms"].is_null()).count();
        (n == 3).then_some(())
    });

    // The provider's evaluator prefers mid; small scores 0 (unusable).
    let file = h.path().join("web.yaml");
    std::fs::write(&file, manifest("web", &format!("{{url: {}}}", ev.url))).expect("write the manifest");
    let out = up.zonal(&["apply", "-f", file.to_str().expect("utf-8 path"), "--no-wait"]);
    assert!(out.contains("deployment accepted"), "{out}");
    wait_placement(&h, &admin, "web", &[("mid", 1)]);
    assert_eq!(ev.zones_asked(), ["big", "mid", "small"], "every zone asked its evaluator");
    let round = h.get(&admin, "/1.0/services/web/offers");
    assert_eq!(round["taken"][0]["zone"], "mid", "{round}");
    assert_eq!(round["taken"][0]["slots"], 4, "{round}");
    assert!(round["declined"]["small"].as_str().is_some_and(|w| w.contains("scored 0")), "{round}");
    let described = up.zonal(&["describe", "service", "web"]);
    assert!(described.contains("Offers:") && described.contains("small: no offer"), "{described}");

    // More slots than mid can hold (8 cores = 4 instances = 16 slots): big takes the rest.
    h.call(&admin, "PUT", "/1.0/services/web/slots", Some(json!({"slots": 20}))).expect("set the demand");
    wait_placement(&h, &admin, "web", &[("big", 1), ("mid", 4)]);
    // (From there each zone's slot scaler sizes its share: idle instances are scaled in.)
    wait_for("instances running in mid and in big", Duration::from_secs(30), || {
        let r = running_by_zone(&h, &admin, "web");
        (r.contains_key("mid") && r.contains_key("big")).then_some(())
    });

    // mid's evaluator now answers after the deadline: mid makes no offer, big gets it all.
    ev.answer("mid", 0.9, 3_000);
    h.call(&admin, "PUT", "/1.0/services/web/slots", Some(json!({"slots": 8}))).expect("set the demand");
    wait_placement(&h, &admin, "web", &[("big", 2)]);
    let round = h.get(&admin, "/1.0/services/web/offers");
    // The zone gives up on its evaluator first (a 422 naming it); on a slow machine the
    // domain's own deadline may come first.
    let why = round["declined"]["mid"].as_str().unwrap_or_default();
    assert!(why.contains("no answer from the evaluator within") || why.contains("deadline"), "{round}");
    wait_for("mid emptied (drained and stopped), big serving", Duration::from_secs(30), || {
        let r = running_by_zone(&h, &admin, "web");
        let anything_in_mid =
            h.get(&admin, "/1.0/services/web/instances").as_array()?.iter().any(|i| i["zone"] == "mid");
        (!anything_in_mid && r.contains_key("big")).then_some(())
    });

    // A built-in evaluator: the price evaluator takes the cheapest zone.
    let file = h.path().join("cheap.yaml");
    std::fs::write(&file, manifest("cheap", "{builtin: price}")).expect("write the manifest");
    up.zonal(&["apply", "-f", file.to_str().expect("utf-8 path"), "--no-wait"]);
    wait_placement(&h, &admin, "cheap", &[("small", 1)]);
    let round = h.get(&admin, "/1.0/services/cheap/offers");
    assert_eq!(round["received"].as_array().map(Vec::len), Some(3), "{round}");
    assert!(round["received"].as_array().into_iter().flatten().all(|o| o["evaluator"] == "price"), "{round}");

    // A service without an evaluator has no offer round.
    let err = h.call(&admin, "GET", "/1.0/services/nope/offers", None).expect_err("no such service");
    assert_eq!(err.0, 404);

    up.stop();
    h.assert_no_leftovers();
}
