//! Single-component placement throughput at kube-scheduler scale: `hosts` hosts (default
//! 5,000) in 50 zones, four service types (web, cache with a `disk: ssd` feature, batch,
//! latency-bound api with a `metro` proximity class from one of 20 regions), placed one
//! instance at a time by the [`SinglePlacer`] fast path, each placement a full filter + score
//! over every candidate host. Run it on one core:
//!
//! ```text
//! cargo build --release -p zonal-place --example single_throughput
//! taskset -c 0 target/release/examples/single_throughput [hosts] [placements] [best-fit|spread]
//! ```
//!
//! Prints the build and compile times, placements per second over the timed loop, and
//! verifies the resulting plan with the independent checker (outside the timing).

use std::time::Instant;

use zonal_model::{
    Amount, Bundle, Component, Demand, Document, Host, Infrastructure, Location, Region, Resources, Scaling, Service,
    SlotSpec, Zone,
};
use zonal_place::chain::Residual;
use zonal_place::problem::{Problem, ProblemOptions};
use zonal_place::rng::SplitMix64;
use zonal_place::single::{Scoring, SinglePlacer};

fn res(millicores: u64, mib: u64) -> Resources {
    Resources::new().with("cpu", Amount::cpu(millicores)).with("memory", Amount::bytes(mib << 20))
}

fn component(name: &str, r: Resources) -> Component {
    Component {
        name: name.into(),
        resources: r,
        slots: SlotSpec { per_instance: 1, min_free: 0 },
        scaling: Scaling { min_instances: 0, max_instances: 1_000_000 },
        public: true,
        ..Default::default()
    }
}

fn bundle(hosts: usize, seed: u64) -> Bundle {
    let mut rng = SplitMix64(seed);
    let zones_n = 50;
    let zones: Vec<Zone> = (0..zones_n)
        .map(|z| Zone {
            name: format!("z{z:02}"),
            location: Location::new(40.0 + 20.0 * rng.unit(), -5.0 + 30.0 * rng.unit()),
            hosts: (0..hosts / zones_n + usize::from(z < hosts % zones_n))
                .map(|h| {
                    let mut host = Host {
                        name: format!("z{z:02}-h{h:04}"),
                        capacity: res(
                            if h % 4 == 0 { 64_000 } else { 32_000 },
                            if h % 4 == 0 { 262_144 } else { 131_072 },
                        ),
                        available: h % 97 != 0,
                        ..Default::default()
                    };
                    if h % 3 == 0 {
                        host.features.insert("disk".into(), "ssd".into());
                    }
                    host
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let infra = Infrastructure { name: "synthetic".into(), zones, ..Default::default() };
    let mut cache = component("cache", res(1_000, 4_096));
    cache.placement.requires.insert("disk".into(), "ssd".into());
    let mut api = component("api", res(500, 512));
    api.placement.proximity = Some("metro".into());
    let services = [
        Service { name: "web".into(), components: vec![component("web", res(250, 256))], ..Default::default() },
        Service { name: "cache".into(), components: vec![cache], ..Default::default() },
        Service { name: "batch".into(), components: vec![component("batch", res(2_000, 2_048))], ..Default::default() },
        Service { name: "api".into(), components: vec![api], ..Default::default() },
    ];
    let regions = (0..20)
        .map(|r| Region {
            name: format!("r{r:02}"),
            location: Location::new(40.0 + 20.0 * rng.unit(), -5.0 + 30.0 * rng.unit()),
            weight: 1.0,
            attach: None,
        })
        .collect();
    let mut docs = vec![Document::Infrastructure(infra)];
    docs.extend(services.into_iter().map(Document::Service));
    docs.push(Document::Demand(Demand { name: "d".into(), regions, entries: vec![] }));
    Bundle::new(docs)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hosts: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let placements: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let scoring = if args.get(2).map(String::as_str) == Some("spread") { Scoring::Spread } else { Scoring::BestFit };

    let t0 = Instant::now();
    let b = bundle(hosts, 7);
    let p = match Problem::from_bundle(&b, &ProblemOptions::default()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let build = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut placer = SinglePlacer::new(&p, &Residual::full(&p), scoring);
    let mut kinds = Vec::new();
    for name in ["web", "cache", "batch"] {
        kinds.push(placer.compile(name, None).unwrap_or_else(|e| panic!("{e}")));
    }
    for r in 0..20 {
        kinds.push(placer.compile("api", Some(&format!("r{r:02}"))).unwrap_or_else(|e| panic!("{e}")));
    }
    let compile = t1.elapsed().as_secs_f64();
    let mut rng = SplitMix64(11);
    let sequence: Vec<usize> = (0..placements).map(|_| (rng.next_u64() % kinds.len() as u64) as usize).collect();
    let mut failed = 0usize;
    let t2 = Instant::now();
    for &k in &sequence {
        if placer.place(&kinds[k]).is_none() {
            failed += 1;
        }
    }
    let secs = t2.elapsed().as_secs_f64();
    let mean_cands = kinds.iter().map(|k| k.candidates()).sum::<usize>() as f64 / kinds.len() as f64;
    println!(
        "hosts {} (available {}), scoring {scoring:?}: problem {build:.3} s, placer + {} compiled entries {compile:.4} s (mean {mean_cands:.0} candidates)",
        p.hosts.len(),
        p.hosts.iter().filter(|h| h.available).count(),
        kinds.len()
    );
    println!(
        "{placements} placements ({failed} found no room) in {secs:.3} s: {:.0} placements/s, {:.2} µs each",
        placements as f64 / secs,
        secs / placements as f64 * 1e6
    );
    let plan = placer.plan();
    let t3 = Instant::now();
    let report = zonal_place::check(&p, &plan);
    println!(
        "plan: {} rows on {} hosts; checker {} in {:.3} s",
        plan.placements.len(),
        plan.term("used_servers").unwrap_or(0.0),
        if report.is_ok() { "ok" } else { "FAILED" },
        t3.elapsed().as_secs_f64()
    );
    if !report.is_ok() {
        eprintln!("{}", report.summary());
        std::process::exit(1);
    }
}
