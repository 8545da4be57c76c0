//! Where a new instance goes inside the zone, and the checks on the domain's plan.
//!
//! The domain's plan (`PUT …/slots`) may name, per component, the hosts its instances
//! should run on and how many on each (`hosts`), a hardware profile (`overrides`: resources
//! and extra required features), and the addresses of channel targets that run in other
//! zones (`remote_peers`). [`choose_host`] turns the first two into a host for one new
//! instance; everything here is pure.
//!
//! Host choice, in order:
//! 1. a planned host of the component that holds fewer live instances of it than planned;
//! 2. a host of the offer the domain accepted (an offer's hosts are a plan without counts);
//! 3. any host (`zonal_control::place::pick_host`).
//!
//! Every step keeps the component's rules: available, room for its resources, required
//! features, pinned host, anti-affinity. Among several candidates of a step `pick_host`
//! chooses (most free CPU, then memory, then name).

use std::collections::BTreeMap;

use zonal_control::place::{pick_host, with_symmetric_anti_affinity, HostSummary};
use zonal_model::{Component, Service};
use zonal_proto::wire::{ComponentOverride, HostInfo, ZoneSlotsChange};

use crate::gateway::gateway_keys;

/// `component` of `service` as new instances of it are made: anti-affinity made symmetric,
/// and the domain's override applied (its resources replace the manifest's; its required
/// features are added, its value winning for a feature both name).
pub fn effective_component(service: &Service, component: &str, over: Option<&ComponentOverride>) -> Option<Component> {
    let mut c = with_symmetric_anti_affinity(service, service.component(component)?);
    if let Some(o) = over {
        if let Some(r) = &o.resources {
            c.resources = r.clone();
        }
        for (k, v) in &o.requires {
            c.placement.requires.insert(k.clone(), v.clone());
        }
    }
    Some(c)
}

/// The host for one new instance of `component` (see the module documentation).
/// `occupied`: host → components of the service there; `live`: host → live instances of
/// this component; `planned`: host → instances the plan puts there; `offered`: the hosts of
/// an accepted offer.
pub fn choose_host<'h>(
    hosts: &'h [HostSummary],
    component: &Component,
    occupied: &BTreeMap<String, Vec<String>>,
    planned: &BTreeMap<String, u32>,
    live: &BTreeMap<String, u32>,
    offered: &[String],
) -> Option<&'h HostSummary> {
    let short_of_plan =
        |h: &HostSummary| planned.get(&h.name).is_some_and(|&want| live.get(&h.name).copied().unwrap_or(0) < want);
    let steps: [&dyn Fn(&HostSummary) -> bool; 2] = [&short_of_plan, &|h| offered.contains(&h.name)];
    for step in steps {
        let candidates: Vec<HostSummary> = hosts.iter().filter(|h| step(h)).cloned().collect();
        if let Some(chosen) = pick_host(&candidates, component, occupied) {
            return hosts.iter().find(|h| h.name == chosen.name);
        }
    }
    pick_host(hosts, component, occupied)
}

/// The plan without hosts planned for no instance.
pub fn without_zero_counts(hosts: &BTreeMap<String, BTreeMap<String, u32>>) -> BTreeMap<String, BTreeMap<String, u32>> {
    hosts
        .iter()
        .map(|(c, per)| (c.clone(), per.iter().filter(|(_, n)| **n > 0).map(|(h, n)| (h.clone(), *n)).collect()))
        .filter(|(_, per): &(String, BTreeMap<String, u32>)| !per.is_empty())
        .collect()
}

fn component_names(service: &Service) -> String {
    service.components.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// Checks the plan of a `PUT …/slots` against the service and the zone's hosts. The error
/// names the field, what was wrong and what was expected.
pub fn check_plan(id: &str, service: &Service, change: &ZoneSlotsChange, hosts: &[HostInfo]) -> Result<(), String> {
    for (comp, per_host) in &change.hosts {
        if service.component(comp).is_none() {
            return Err(format!(
                "hosts: service {id} has no component {comp:?}; expected one of {}",
                component_names(service)
            ));
        }
        for host in per_host.keys() {
            if !hosts.iter().any(|h| h.name == *host) {
                let known: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
                return Err(format!(
                    "hosts.{comp}: this zone has no host {host:?}; expected one of {}",
                    if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
                ));
            }
        }
        let planned: u32 = per_host.values().sum();
        let wanted = change.instances.get(comp).copied().unwrap_or(0);
        if planned > wanted {
            return Err(format!(
                "hosts.{comp}: the plan puts {planned} instance(s) of {comp} on hosts, but only {wanted} are asked for in instances.{comp}"
            ));
        }
    }
    for (comp, over) in &change.overrides {
        if service.component(comp).is_none() {
            return Err(format!(
                "overrides: service {id} has no component {comp:?}; expected one of {}",
                component_names(service)
            ));
        }
        if let Some((k, v)) = over.requires.iter().find(|(k, v)| k.is_empty() || v.is_empty()) {
            return Err(format!(
                "overrides.{comp}.requires: feature {k:?} = {v:?}; expected a non-empty name and value (\"*\" for any value)"
            ));
        }
    }
    if !change.remote_peers.is_empty() {
        // Only channel targets: the entry's public endpoint is not reached through peers.
        let targets: Vec<String> = gateway_keys(service)
            .into_iter()
            .filter(|(_, c, _)| service.channels.iter().any(|ch| ch.to == *c))
            .map(|(_, c, p)| format!("{c}/{p}"))
            .collect();
        for (key, addr) in &change.remote_peers {
            if !targets.contains(key) {
                return Err(format!(
                    "remote_peers: {key:?} is not a port of a channel target of service {id}; expected one of {}",
                    if targets.is_empty() {
                        "(none: no component is the target of a channel)".into()
                    } else {
                        targets.join(", ")
                    }
                ));
            }
            check_address(addr).map_err(|why| format!("remote_peers.{key}: {why}"))?;
        }
    }
    Ok(())
}

/// `host:port` with a non-empty host and a port in 1–65535.
fn check_address(addr: &str) -> Result<(), String> {
    let ok =
        addr.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(())
    } else {
        Err(format!("{addr:?} is not an address; expected host:port (e.g. 10.0.0.7:4100)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonal_model::{Amount, Resources};

    fn res(cpu: u64) -> Resources {
        Resources::new().with("cpu", Amount::cpu(cpu)).with("memory", Amount::bytes(64 << 20))
    }

    fn host(name: &str, cpu: u64) -> HostSummary {
        HostSummary { name: name.into(), free: res(cpu), features: BTreeMap::new(), available: true }
    }

    fn service() -> Service {
        zonal_descriptor::parse_manifest(
            "m",
            "kind: Service\nname: s\nentry: front\ncomponents:\n  - name: front\n    run: zonal workload\n    resources: {cpu: 1, memory: 64Mi}\n    scaling: {min_instances: 1, max_instances: 4}\n    ports:\n      - {name: tcp, protocol: tcp}\n  - name: back\n    run: zonal workload\n    ports:\n      - {name: rpc, protocol: tcp}\nchannels:\n  - {from: front, to: back}\n",
        )
        .expect("manifest")
    }

    fn counts(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(h, n)| (h.to_string(), *n)).collect()
    }

    #[test]
    fn planned_hosts_short_of_their_count_come_first_then_the_offer_then_any() {
        // h0 has the most free CPU, so pick_host alone would take it.
        let hosts = vec![host("h0", 8000), host("h1", 2000), host("h2", 4000)];
        let c = effective_component(&service(), "front", None).expect("component");
        let none = BTreeMap::new();
        let nobody = BTreeMap::new();
        let pick = |planned: &BTreeMap<String, u32>, live: &BTreeMap<String, u32>, offered: &[String]| {
            choose_host(&hosts, &c, &nobody, planned, live, offered).map(|h| h.name.clone())
        };
        assert_eq!(pick(&none, &none, &[]), Some("h0".into()));
        let plan = counts(&[("h1", 2), ("h2", 1)]);
        // Both planned hosts are short: the one with more room of the two.
        assert_eq!(pick(&plan, &none, &[]), Some("h2".into()));
        assert_eq!(pick(&plan, &counts(&[("h2", 1)]), &[]), Some("h1".into()));
        assert_eq!(pick(&plan, &counts(&[("h2", 1), ("h1", 1)]), &[]), Some("h1".into()));
        // The plan is met: the accepted offer's hosts, then any host.
        let met = counts(&[("h2", 1), ("h1", 2)]);
        assert_eq!(pick(&plan, &met, &["h2".to_string()]), Some("h2".into()));
        assert_eq!(pick(&plan, &met, &[]), Some("h0".into()));
    }

    #[test]
    fn a_planned_host_without_room_or_features_is_passed_over() {
        let mut gpu = host("g0", 500);
        gpu.features.insert("accelerator".into(), "t4".into());
        let hosts = vec![host("h0", 8000), host("h1", 500), gpu];
        let svc = service();
        let plan = counts(&[("h1", 1)]);
        let none = BTreeMap::new();
        let nobody = BTreeMap::new();
        let c = effective_component(&svc, "front", None).expect("component");
        // h1 is planned but has no room for 1 CPU: the zone chooses.
        assert_eq!(choose_host(&hosts, &c, &nobody, &plan, &none, &[]).map(|h| h.name.as_str()), Some("h0"));
        // An override asking for less CPU and an accelerator: only g0 may take it.
        let over = ComponentOverride {
            resources: Some(res(250)),
            requires: [("accelerator".to_string(), "*".to_string())].into(),
        };
        let c = effective_component(&svc, "front", Some(&over)).expect("component");
        assert_eq!(c.resources, res(250));
        assert_eq!(choose_host(&hosts, &c, &nobody, &plan, &none, &[]).map(|h| h.name.as_str()), Some("g0"));
        let mut hosts_without_gpu = hosts.clone();
        hosts_without_gpu.pop();
        assert!(choose_host(&hosts_without_gpu, &c, &nobody, &plan, &none, &[]).is_none());
    }

    #[test]
    fn plans_are_checked_field_by_field() {
        let svc = service();
        let hosts = vec![HostInfo { name: "h0".into(), ..Default::default() }];
        let base = ZoneSlotsChange { instances: [("front".to_string(), 1)].into(), ..Default::default() };
        assert_eq!(check_plan("s", &svc, &base, &hosts), Ok(()));
        let with = |f: &dyn Fn(&mut ZoneSlotsChange)| {
            let mut c = base.clone();
            f(&mut c);
            check_plan("s", &svc, &c, &hosts)
        };
        let e = with(&|c| c.hosts = [("nope".into(), counts(&[("h0", 1)]))].into()).expect_err("component");
        assert!(e.starts_with("hosts: service s has no component \"nope\"; expected one of front, back"), "{e}");
        let e = with(&|c| c.overrides = [("nope".into(), ComponentOverride::default())].into()).expect_err("comp");
        assert!(e.starts_with("overrides:"), "{e}");
        let e = with(&|c| {
            c.overrides =
                [("back".into(), ComponentOverride { resources: None, requires: [("".into(), "x".into())].into() })]
                    .into()
        })
        .expect_err("empty feature");
        assert!(e.starts_with("overrides.back.requires"), "{e}");
        let e =
            with(&|c| c.remote_peers = [("front/tcp".into(), "10.0.0.1:80".into())].into()).expect_err("no channel");
        assert!(e.contains("expected one of back/rpc"), "{e}");
        let e = with(&|c| c.remote_peers = [("back/rpc".into(), "10.0.0.1".into())].into()).expect_err("no port");
        assert!(e.starts_with("remote_peers.back/rpc: \"10.0.0.1\" is not an address"), "{e}");
        assert_eq!(with(&|c| c.remote_peers = [("back/rpc".into(), "zone-b.example:4100".into())].into()), Ok(()));
        let plan = [("front".to_string(), counts(&[("h0", 0)]))].into();
        assert!(without_zero_counts(&plan).is_empty());
    }
}
