//! The domain's placement step and the zone's host choice.
//!
//! **Boundary.** [`place_service`] takes zone summaries (what each zone reported: hosts with
//! free capacity and features, whether the zone is available), one service and its demand,
//! and returns an [`Allocation`]: instances per component per zone. It is pure. The greedy
//! placer below is the first implementation; the exact optimiser (`zonal-place`) can replace
//! its internals without touching the callers.
//!
//! **Greedy rules (FUSION year 2).**
//! 1. A composite goes whole into one zone (its channels then stay inside a zone).
//! 2. Each component gets `max(min_instances, ⌈demand slots / slots per instance⌉)` instances
//!    (demand applies to the entry component), capped at `max_instances`. Components that run
//!    nothing (`run: none`) or run at the user's side get none.
//! 3. A zone is feasible when it is available, allowed by every component's `zones`,
//!    `avoid_zones` and `pin`, and all the instances fit on its hosts (first-fit decreasing,
//!    honouring required features and anti-affinity).
//! 4. Among feasible zones, the one with the most free capacity wins: most free CPU, then most
//!    free memory, then the name (so the choice is deterministic).
//!
//! [`pick_host`] is the zone-side counterpart: the host for one new instance.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zonal_model::{Component, Resources, RunSpec, Service};

pub use zonal_model::live::{Allocation, HostSummary, ZoneSummary};
pub use zonal_model::rules::with_symmetric_anti_affinity;

/// How much of the service is wanted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementDemand {
    /// Session slots wanted for the entry component; 0 means "the minimum".
    pub slots: u32,
}

/// Why a service could not be placed: one reason per zone considered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceError {
    pub reasons: Vec<(String, String)>,
}

impl std::fmt::Display for PlaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.reasons.is_empty() {
            return f.write_str("no zones are registered");
        }
        f.write_str("no zone can take the service: ")?;
        for (i, (zone, why)) in self.reasons.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{zone}: {why}")?;
        }
        Ok(())
    }
}

/// Instances of each component the service needs for `demand`.
pub fn instance_counts(service: &Service, demand: &PlacementDemand) -> BTreeMap<String, u32> {
    let entry = service.entry_component().map(|c| c.name.clone());
    service
        .components
        .iter()
        .map(|c| {
            let runs = !matches!(c.run, RunSpec::None) && !c.user_side;
            let n = if !runs {
                0
            } else {
                let mut n = c.scaling.min_instances;
                if Some(&c.name) == entry.as_ref() && demand.slots > 0 {
                    let per = c.slots.per_instance.max(1);
                    n = n.max(demand.slots.div_ceil(per));
                }
                n.min(c.scaling.max_instances)
            };
            (c.name.clone(), n)
        })
        .collect()
}

fn zone_allowed(c: &Component, zone: &str) -> Result<(), String> {
    match zonal_model::rules::zone_refusal(&c.placement, zone) {
        None => Ok(()),
        Some(r) => Err(format!("component {} {r}", c.name)),
    }
}

/// Does `host` offer every feature `requires` names (`"*"`: any value)?
pub fn has_features(host: &HostSummary, requires: &BTreeMap<String, String>) -> bool {
    zonal_model::rules::has_features(&host.features, requires)
}

/// Chooses the host for one new instance of `component`: an available host with the
/// required features and room for its resources, not holding an instance of a component it
/// is anti-affine to (`occupied`: host → components running there). Among those, the one with
/// the most free CPU, then memory, then the first by name (spreading instances over hosts).
pub fn pick_host<'h>(
    hosts: &'h [HostSummary],
    component: &Component,
    occupied: &BTreeMap<String, Vec<String>>,
) -> Option<&'h HostSummary> {
    let pinned_host = component.placement.pin.as_ref().and_then(|p| p.host.as_deref());
    hosts
        .iter()
        .filter(|h| h.available && h.free.fits(&component.resources))
        .filter(|h| has_features(h, &component.placement.requires))
        .filter(|h| pinned_host.is_none_or(|p| p == h.name))
        .filter(|h| {
            let here = occupied.get(&h.name);
            !component.placement.anti_affinity.iter().any(|a| here.is_some_and(|cs| cs.contains(a)))
        })
        .min_by(|a, b| {
            b.free
                .get(zonal_model::resources::CPU)
                .cmp(&a.free.get(zonal_model::resources::CPU))
                .then(b.free.get(zonal_model::resources::MEMORY).cmp(&a.free.get(zonal_model::resources::MEMORY)))
                .then(a.name.cmp(&b.name))
        })
}

/// Tries to fit `counts` instances of the service's components onto `zone`'s hosts.
fn fits(zone: &ZoneSummary, service: &Service, counts: &BTreeMap<String, u32>) -> Result<(), String> {
    let mut hosts = zone.hosts.clone();
    let mut occupied: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // First-fit decreasing: the largest CPU demands first.
    let mut order: Vec<Component> = service
        .components
        .iter()
        .filter(|c| counts.get(&c.name).is_some_and(|n| *n > 0))
        .map(|c| with_symmetric_anti_affinity(service, c))
        .collect();
    order.sort_by(|a, b| {
        b.resources
            .get(zonal_model::resources::CPU)
            .cmp(&a.resources.get(zonal_model::resources::CPU))
            .then(a.name.cmp(&b.name))
    });
    for c in &order {
        for i in 0..counts[&c.name] {
            let Some(host) = pick_host(&hosts, c, &occupied).map(|h| h.name.clone()) else {
                let with_features =
                    hosts.iter().filter(|h| h.available && has_features(h, &c.placement.requires)).count();
                return Err(if with_features == 0 && !c.placement.requires.is_empty() {
                    let req: Vec<String> = c.placement.requires.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("no available host offers {} for component {}", req.join(", "), c.name)
                } else {
                    format!(
                        "instance {} of component {} ({}) does not fit on any host (free: {})",
                        i + 1,
                        c.name,
                        c.resources,
                        zone.free()
                    )
                });
            };
            if let Some(h) = hosts.iter_mut().find(|h| h.name == host) {
                h.free.sub_scaled(&c.resources, 1);
            }
            occupied.entry(host).or_default().push(c.name.clone());
        }
    }
    Ok(())
}

/// Whether `zone` may take `counts` instances of the service at all: available, and allowed
/// by every component that runs (capacity aside). The reason when not.
pub fn zone_admits(zone: &ZoneSummary, service: &Service, counts: &BTreeMap<String, u32>) -> Result<(), String> {
    if !zone.available {
        return Err("unavailable (missed its heartbeats)".to_string());
    }
    service
        .components
        .iter()
        .filter(|c| counts.get(&c.name).is_some_and(|n| *n > 0))
        .try_for_each(|c| zone_allowed(c, &zone.name))
}

/// Whether `zone` can take `counts` instances of the service: [`zone_admits`], and all of
/// them fit on its hosts. The reason when not.
pub fn zone_feasible(zone: &ZoneSummary, service: &Service, counts: &BTreeMap<String, u32>) -> Result<(), String> {
    zone_admits(zone, service, counts)?;
    fits(zone, service, counts)
}

/// Places `service` for `demand` on one of `zones`.
pub fn place_service(
    zones: &[ZoneSummary],
    service: &Service,
    demand: &PlacementDemand,
) -> Result<Allocation, PlaceError> {
    let counts = instance_counts(service, demand);
    let mut reasons = Vec::new();
    let mut best: Option<(&ZoneSummary, Resources)> = None;
    let mut sorted: Vec<&ZoneSummary> = zones.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for zone in sorted {
        if let Err(why) = zone_feasible(zone, service, &counts) {
            reasons.push((zone.name.clone(), why));
            continue;
        }
        let free = zone.free();
        let better = match &best {
            None => true,
            Some((_, bf)) => {
                let key = |r: &Resources| (r.get(zonal_model::resources::CPU), r.get(zonal_model::resources::MEMORY));
                key(&free) > key(bf)
            }
        };
        if better {
            best = Some((zone, free));
        }
    }
    match best {
        Some((zone, _)) => {
            let per_zone: BTreeMap<String, u32> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
            let mut allocation = Allocation::default();
            allocation.zones.insert(zone.name.clone(), per_zone);
            Ok(allocation)
        }
        None => Err(PlaceError { reasons }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonal_model::{Amount, Pin, Scaling, SlotSpec};

    fn res(cpu: u64, mem_mi: u64) -> Resources {
        Resources::new().with("cpu", Amount::cpu(cpu)).with("memory", Amount::bytes(mem_mi << 20))
    }

    fn host(name: &str, cpu: u64, mem: u64) -> HostSummary {
        HostSummary { name: name.into(), free: res(cpu, mem), features: BTreeMap::new(), available: true }
    }

    fn zone(name: &str, hosts: Vec<HostSummary>) -> ZoneSummary {
        ZoneSummary { name: name.into(), available: true, tier: None, hosts }
    }

    fn comp(name: &str, cpu: u64, min: u32) -> Component {
        Component {
            name: name.into(),
            run: RunSpec::Command { argv: vec!["true".into()], env: BTreeMap::new() },
            resources: res(cpu, 128),
            slots: SlotSpec { per_instance: 10, min_free: 0 },
            scaling: Scaling { min_instances: min, max_instances: 5 },
            ..Default::default()
        }
    }

    fn svc(components: Vec<Component>) -> Service {
        Service { name: "s".into(), components, ..Default::default() }
    }

    #[test]
    fn composite_goes_whole_to_the_zone_with_most_free_capacity() {
        let zones = vec![zone("a", vec![host("a0", 4000, 4096)]), zone("b", vec![host("b0", 8000, 4096)])];
        let s = svc(vec![comp("x", 1000, 1), comp("y", 2000, 2), comp("eval", 100, 0)]);
        let a = place_service(&zones, &s, &PlacementDemand::default()).unwrap();
        assert_eq!(a.zones.len(), 1);
        assert_eq!(a.zones["b"], [("x".to_string(), 1), ("y".to_string(), 2)].into_iter().collect());
        assert_eq!(a.instances(), 3);
    }

    #[test]
    fn demand_scales_the_entry_component() {
        let zones = vec![zone("a", vec![host("a0", 16000, 65536)])];
        let s = svc(vec![comp("x", 1000, 1), comp("y", 1000, 1)]);
        let a = place_service(&zones, &s, &PlacementDemand { slots: 35 }).unwrap();
        assert_eq!(a.zones["a"]["x"], 4);
        assert_eq!(a.zones["a"]["y"], 1);
    }

    #[test]
    fn constraints_and_capacity_exclude_zones_with_reasons() {
        let mut big = zone("big", vec![host("b0", 64000, 65536)]);
        big.available = false;
        let zones =
            vec![big, zone("small", vec![host("s0", 1000, 4096)]), zone("pinned", vec![host("p0", 4000, 4096)])];
        let mut x = comp("x", 2000, 1);
        x.placement.avoid_zones = vec!["pinned".into()];
        let err = place_service(&zones, &svc(vec![x.clone()]), &PlacementDemand::default()).unwrap_err();
        assert_eq!(err.reasons.len(), 3);
        assert!(err.to_string().contains("big: unavailable"), "{err}");
        assert!(err.to_string().contains("does not fit"), "{err}");
        x.placement.avoid_zones.clear();
        x.placement.pin = Some(Pin { zone: "pinned".into(), host: None });
        let a = place_service(&zones, &svc(vec![x]), &PlacementDemand::default()).unwrap();
        assert!(a.zones.contains_key("pinned"));
    }

    #[test]
    fn features_and_anti_affinity_are_honoured() {
        let mut gpu = host("g0", 8000, 8192);
        gpu.features.insert("accelerator".into(), "t4".into());
        let zones = vec![zone("a", vec![host("a0", 8000, 8192), host("a1", 8000, 8192)]), zone("g", vec![gpu])];
        let mut x = comp("x", 1000, 1);
        x.placement.requires.insert("accelerator".into(), "*".into());
        let a = place_service(&zones, &svc(vec![x]), &PlacementDemand::default()).unwrap();
        assert!(a.zones.contains_key("g"));
        let mut y = comp("y", 1000, 1);
        y.placement.anti_affinity = vec!["z".into()];
        let z = comp("z", 1000, 1);
        let only_one_host = vec![zone("one", vec![host("o0", 8000, 8192)])];
        assert!(place_service(&only_one_host, &svc(vec![y.clone(), z.clone()]), &PlacementDemand::default()).is_err());
        assert!(place_service(&zones, &svc(vec![y, z]), &PlacementDemand::default()).is_ok());
    }

    #[test]
    fn pick_host_spreads_and_is_deterministic() {
        let hosts = vec![host("h1", 4000, 4096), host("h0", 4000, 4096), host("h2", 2000, 4096)];
        let c = comp("x", 1000, 1);
        assert_eq!(pick_host(&hosts, &c, &BTreeMap::new()).map(|h| h.name.as_str()), Some("h0"));
        let big = comp("big", 3000, 1);
        let small_only = vec![host("h2", 2000, 4096)];
        assert!(pick_host(&small_only, &big, &BTreeMap::new()).is_none());
    }
}
