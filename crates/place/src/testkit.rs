//! Small bundles for tests.

use zonal_model::{
    Amount, Bandwidth, Bundle, Channel, Component, Demand, DemandEntry, Document, Duration, Host, Infrastructure, Link,
    Location, MeasuredLatency, Money, Price, Region, Resources, Scaling, Service, SlotSpec, UtilitySla, Zone,
};

use crate::plan::{Assignment, ChannelPath, Placement};

pub fn res(cores: u64, gib: u64) -> Resources {
    Resources::new().with("cpu", Amount::cpu(cores * 1000)).with("memory", Amount::bytes(gib << 30))
}

pub fn host(name: &str, cores: u64, gib: u64) -> Host {
    Host { name: name.into(), capacity: res(cores, gib), available: true, ..Default::default() }
}

pub fn zone(name: &str, lat: f64, lon: f64, hosts: Vec<Host>) -> Zone {
    Zone {
        name: name.into(),
        location: Location::new(lat, lon),
        price: Price {
            cpu_hour: Money::new(0.04),
            memory_gib_hour: Money::new(0.01),
            gpu_hour: Money::new(0.0),
            egress_per_gb: Money::new(0.02),
        },
        hosts,
        ..Default::default()
    }
}

pub fn link(a: &str, b: &str, latency_ms: Option<f64>, mbps: Option<f64>) -> Link {
    Link {
        from: a.into(),
        to: b.into(),
        latency: latency_ms.map(Duration::from_millis),
        bandwidth: mbps.map(Bandwidth::from_mbps),
        cost_per_gb: Money::new(0.0),
    }
}

/// A measured round-trip time between two places (zones or regions).
pub fn measured(from: &str, to: &str, rtt_ms: f64) -> MeasuredLatency {
    MeasuredLatency { from: from.into(), to: to.into(), rtt: Duration::from_millis(rtt_ms) }
}

/// A channel with an optional bandwidth (Mbit/s) and max one-way latency (ms).
pub fn channel(from: &str, to: &str, mbps: Option<f64>, max_latency_ms: Option<f64>) -> Channel {
    Channel {
        from: from.into(),
        to: to.into(),
        bandwidth: mbps.map(Bandwidth::from_mbps),
        max_latency: max_latency_ms.map(Duration::from_millis),
    }
}

pub fn region(name: &str, loc: Option<(f64, f64)>, attach: Option<&str>) -> Region {
    Region {
        name: name.into(),
        location: loc.and_then(|(a, b)| Location::new(a, b)),
        weight: 1.0,
        attach: attach.map(Into::into),
    }
}

pub fn component(name: &str, cores: u64, gib: u64) -> Component {
    Component {
        name: name.into(),
        resources: res(cores, gib),
        slots: SlotSpec { per_instance: 4, min_free: 0 },
        scaling: Scaling { min_instances: 0, max_instances: 10 },
        public: true,
        ..Default::default()
    }
}

pub fn entry(service: &str, region: &str, slots: u32) -> DemandEntry {
    DemandEntry::constant(service, region, slots)
}

pub fn sla(r_min: f64, r_med: f64, r_max: f64) -> UtilitySla {
    UtilitySla {
        r_min: Duration::from_millis(r_min),
        r_med: Duration::from_millis(r_med),
        r_max: Duration::from_millis(r_max),
        importance: 1.0,
    }
}

/// `zones` zones on a line of latitude 50°, one degree of longitude apart (≈71 km), each with
/// one host `h` of 4 cores / 8 GiB, linked in a chain at 100 Mbit/s; one service `svc` with
/// one component `app` (1 core, 1 GiB, 4 slots per instance, ≤ 10 instances, 8 Mbit/s per
/// session, SLA 0/5/50 ms); `regions` regions r0.. at the first zones' locations wanting 2 slots each.
pub fn line_bundle(zones: usize, regions: usize) -> Bundle {
    let zs: Vec<Zone> = (0..zones).map(|i| zone(&format!("z{i}"), 50.0, i as f64, vec![host("h", 4, 8)])).collect();
    let links = (1..zones).map(|i| link(&format!("z{}", i - 1), &format!("z{i}"), None, Some(100.0))).collect();
    let infra = Infrastructure { name: "line".into(), zones: zs, links, ..Default::default() };
    let svc = Service {
        name: "svc".into(),
        components: vec![component("app", 1, 1)],
        session_bandwidth: Some(Bandwidth::from_mbps(8.0)),
        sla: Some(sla(0.0, 5.0, 50.0)),
        ..Default::default()
    };
    let demand = Demand {
        name: "d".into(),
        regions: (0..regions)
            .map(|i| region(&format!("r{i}"), Some((50.0, (i % zones.max(1)) as f64)), None))
            .collect(),
        entries: (0..regions).map(|i| entry("svc", &format!("r{i}"), 2)).collect(),
    };
    Bundle::new(vec![Document::Infrastructure(infra), Document::Service(svc), Document::Demand(demand)])
}

/// A plan row: `instances` of `component` in `zone` (on `host`), using `slots` session slots.
pub fn placement(
    service: &str,
    subscription: Option<&str>,
    component: &str,
    zone: &str,
    host: Option<&str>,
    instances: u32,
    slots: f64,
) -> Placement {
    Placement {
        service: service.into(),
        subscription: subscription.map(Into::into),
        component: component.into(),
        zone: zone.into(),
        host: host.map(Into::into),
        instances,
        slots,
    }
}

/// A plan row: a `share` of `region`'s sessions of `service` served in `zone`.
pub fn assignment(
    service: &str,
    region: &str,
    zone: &str,
    share: f64,
    slots: f64,
    latency_ms: f64,
    utility: Option<f64>,
) -> Assignment {
    Assignment { service: service.into(), region: region.into(), zone: zone.into(), share, slots, latency_ms, utility }
}

/// A plan row: the route of channel `from → to` over `zones` (empty when collocated).
pub fn path(
    service: &str,
    subscription: Option<&str>,
    from: &str,
    to: &str,
    zones: &[&str],
    latency_ms: f64,
) -> ChannelPath {
    ChannelPath {
        service: service.into(),
        subscription: subscription.map(Into::into),
        from: from.into(),
        to: to.into(),
        zones: zones.iter().map(|z| z.to_string()).collect(),
        latency_ms,
    }
}

pub fn infra_mut(b: &mut Bundle) -> &mut Infrastructure {
    b.documents
        .iter_mut()
        .find_map(|d| match d {
            Document::Infrastructure(i) => Some(i),
            _ => None,
        })
        .expect("bundle has an infrastructure")
}

pub fn service_mut<'a>(b: &'a mut Bundle, name: &str) -> &'a mut Service {
    b.documents
        .iter_mut()
        .find_map(|d| match d {
            Document::Service(s) if s.name == name => Some(s),
            _ => None,
        })
        .expect("bundle has the service")
}

pub fn demand_mut(b: &mut Bundle) -> &mut Demand {
    b.documents
        .iter_mut()
        .find_map(|d| match d {
            Document::Demand(x) => Some(x),
            _ => None,
        })
        .expect("bundle has a demand")
}

/// The problem of a bundle with default options.
pub fn problem(b: &Bundle) -> crate::problem::Problem {
    crate::problem::Problem::from_bundle(b, &crate::problem::ProblemOptions::default()).unwrap()
}

/// Asserts that the independent checker accepts `plan`.
pub fn checked(p: &crate::problem::Problem, plan: &crate::plan::Plan) {
    let r = crate::check::check(p, plan);
    assert!(r.is_ok(), "checker found violations:\n{}\nplan: {plan:#?}", r.summary());
}
