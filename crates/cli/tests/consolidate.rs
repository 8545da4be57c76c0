//! Consolidation end to end under `zonal up`: three services spread over three hosts of one
//! zone (`--scheduler spread`: the emptiest host for each new instance), the domain's trigger plans
//! a consolidation by itself when they appear, `zonal consolidate` plans two checked moves
//! onto one host, `--apply` carries them out (replacement first, then the old instance
//! stops), and every service keeps a running instance. Ends with Ctrl-C and no process left.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use support::*;

const INFRA: &str = "kind: Infrastructure
name: consolidation-test
domain: test
zones:
  - name: dc
    hosts:
      - {name: h, count: 3, capacity: {cpu: 8, memory: 32Gi}, power: {idle: 100W, max: 250W}}
";

fn manifest(name: &str) -> String {
    format!(
        "kind: Service\nname: {name}\ncomponents:\n  - name: app\n    run: zonal workload --name {name} --slots 4\n    resources: {{cpu: 2, memory: 256Mi}}\n    slots: {{per_instance: 4}}\n    scaling: {{min_instances: 1, max_instances: 1}}\n    ports:\n      - {{name: tcp, protocol: tcp}}\n"
    )
}

/// Running instances: (service, host).
fn running(h: &Harness, c: &zonal_proto::Client) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = h
        .get(c, "/1.0/instances")
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|i| i["state"] == "running")
        .map(|i| (i["service"].as_str().unwrap_or("").to_string(), i["host"].as_str().unwrap_or("").to_string()))
        .collect();
    out.sort();
    out
}

#[test]
fn consolidation_plans_checked_moves_and_applies_them_without_a_gap() {
    let mut h = Harness::new();
    let mut up = h.up(INFRA, &["--consolidate", "plan", "--consolidate-cooldown", "0s", "--scheduler", "spread"]);
    let admin = h.client(&up.url, Some(&up.token));
    wait_for("the zone to report", Duration::from_secs(20), || {
        let v = h.get(&admin, "/1.0/zones");
        v.as_array()?.iter().any(|z| z["state"] == "available" && !z["last_seen_ms"].is_null()).then_some(())
    });
    for name in ["a", "b", "c"] {
        let file = h.path().join(format!("{name}.yaml"));
        std::fs::write(&file, manifest(name)).expect("write the manifest");
        up.zonal(&["apply", "-f", file.to_str().expect("utf-8 path")]);
    }
    let spread = wait_for("one instance per service, on three hosts", Duration::from_secs(30), || {
        let r = running(&h, &admin);
        let hosts: BTreeSet<&String> = r.iter().map(|(_, host)| host).collect();
        (r.len() == 3 && hosts.len() == 3).then_some(r)
    });

    // The event trigger (services and instances appeared) planned it by itself.
    let triggered = wait_for("a triggered plan with two moves", Duration::from_secs(30), || {
        let (code, v) = match h.call(&admin, "GET", "/1.0/consolidation", None) {
            Ok(v) => (200, v),
            Err(e) => e,
        };
        (code == 200 && v["reasons"][0] != "requested" && v["zones"][0]["steps"].as_array()?.len() == 2).then_some(v)
    });
    assert_eq!(triggered["state"], "planned", "{triggered}");
    assert_eq!(running(&h, &admin), spread, "plan mode moves nothing");

    // Asked for: two checked moves onto one host, two hosts to suspend, less power.
    let plan = up.zonal(&["consolidate", "-o", "json"]);
    let v: Value = serde_json::from_str(&plan).expect("json");
    let z = &v["zones"][0];
    assert_eq!(z["hosts_on_before"], 3, "{v}");
    assert_eq!(z["hosts_on_after"], 1, "{v}");
    assert_eq!(z["checked"], true, "{v}");
    assert_eq!(z["hosts_to_suspend"].as_array().map(Vec::len), Some(2), "{v}");
    assert!(z["watts_after"].as_f64() < z["watts_before"].as_f64(), "{v}");
    let table = up.zonal(&["consolidate"]);
    assert!(table.contains("3 → 1 hosts on") && table.contains("to suspend"), "{table}");

    // Applied: every instance ends on one host, each service kept a running instance
    // throughout (sampled while the moves ran), and the old processes are gone.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let sampler = {
        let url = up.url.clone();
        let token = up.token.clone();
        std::thread::spawn(move || {
            let h = Harness::new();
            let c = h.client(&url, Some(&token));
            let mut worst = usize::MAX;
            while done_rx.try_recv().is_err() {
                let services: BTreeSet<String> = running(&h, &c).into_iter().map(|(s, _)| s).collect();
                worst = worst.min(services.len());
                std::thread::sleep(Duration::from_millis(50));
            }
            worst
        })
    };
    let applied = up.zonal(&["consolidate", "--apply"]);
    let _ = done_tx.send(());
    let worst = sampler.join().expect("sampler");
    assert!(applied.contains("Consolidation (requested): done"), "{applied}");
    assert_eq!(worst, 3, "a service was without a running instance during the moves");
    let after = running(&h, &admin);
    let hosts: BTreeSet<&String> = after.iter().map(|(_, host)| host).collect();
    assert_eq!((after.len(), hosts.len()), (3, 1), "{after:?}");
    wait_for("the moved instances' old processes to stop", Duration::from_secs(20), || {
        (processes_under(&h.path().join("up").join("zones")).len() == 3).then_some(())
    });
    let last = up.zonal(&["consolidate", "--last"]);
    assert!(last.contains("done") && last.contains("now "), "{last}");

    up.stop();
    h.assert_no_leftovers();
}
