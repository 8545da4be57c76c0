//! The stages that shape a service's problem before it is solved: what is deployed at all,
//! hardware profiles for tagged components (OPERA), and zones' offers (FUSION evaluators).

use std::collections::{BTreeMap, BTreeSet};

use zonal_model::{ComponentOverride, EvaluatorRef, Service};

use super::live::{LiveState, OfferTerms};
use super::Overrides;
use crate::error::{ConstraintFamily, InfeasibilityReason, PlaceError};
use crate::problem::Problem;
use crate::profiles::{substitute, HostState, PerformancePerWatt};

/// The component that evaluates zones for the service, if one of its own does (it runs only
/// during an offer round, never as part of the deployment).
pub fn evaluator_component(service: &Service) -> Option<String> {
    let named = service.evaluator.as_ref().or_else(|| service.entry_component().and_then(|c| c.evaluator.as_ref()));
    match named {
        Some(EvaluatorRef::Component { component }) => Some(component.clone()),
        _ => None,
    }
}

/// The service as deployed: without its evaluator component (and the channels touching it).
pub fn deployable(service: &Service) -> Service {
    let Some(eval) = evaluator_component(service) else { return service.clone() };
    let mut s = service.clone();
    s.components.retain(|c| c.name != eval);
    s.channels.retain(|ch| ch.from != eval && ch.to != eval);
    s
}

/// OPERA profiles: each tagged component gets the hardware profile ranked best among the
/// hosts it may use (the shared host rule, and its proximity class from the service's users
/// where those are known), by the knowledge base and the efficiency model
/// ([`crate::profiles`]). Returns the service with the profiles substituted, the overrides
/// the zones need, and notes. Without a knowledge base, or for a tag it does not know, the
/// component stays as described (a note says so).
pub fn profiles(state: &LiveState, service: &Service, problem: &Problem) -> (Service, Overrides, Vec<String>) {
    let mut notes = Vec::new();
    let mut overrides = BTreeMap::new();
    if !service.components.iter().any(|c| c.tag.is_some()) {
        return (service.clone(), overrides, notes);
    }
    let Some(kb) = &state.knowledge_base else {
        notes.push("tagged components keep their declared resources: the domain has no knowledge base".into());
        return (service.clone(), overrides, notes);
    };
    let Some(si) = problem.service_index(&service.name) else { return (service.clone(), overrides, notes) };
    let mut out = service.clone();
    for (ci, comp) in service.components.iter().enumerate() {
        if comp.tag.is_none() || comp.user_side {
            continue;
        }
        let hosts = candidate_hosts(state, problem, si, ci);
        let alone = Service { components: vec![comp.clone()], ..service.clone() };
        let (substituted, choices) = substitute(&alone, kb, &mut hosts.clone(), &PerformancePerWatt);
        let Some(choice) = choices.first() else { continue };
        let Some(chosen) = &choice.chosen else {
            notes.push(format!(
                "component {}: tag {:?} not applied ({}); it keeps its declared resources",
                comp.name, choice.tag, choice.reason
            ));
            continue;
        };
        let new = &substituted.components[0];
        let extra: BTreeMap<String, String> = new
            .placement
            .requires
            .iter()
            .filter(|(k, v)| comp.placement.requires.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let resources = (new.resources != comp.resources).then(|| new.resources.clone());
        notes.push(format!(
            "component {}: tag {:?} → profile {} ({}, best host {}/{})",
            comp.name, choice.tag, chosen.profile, choice.reason, chosen.zone, chosen.host
        ));
        overrides.insert(
            comp.name.clone(),
            ComponentOverride { profile: Some(chosen.profile.clone()), resources, requires: extra },
        );
        out.components[ci] = new.clone();
    }
    (out, overrides, notes)
}

/// Hosts component `ci` may use, as the profile ranking sees them.
fn candidate_hosts(state: &LiveState, p: &Problem, si: usize, ci: usize) -> Vec<HostState> {
    let sd = &p.services[si];
    let comp = &sd.service.components[ci];
    // Where its users are: a pinned user-side component, else the demand's regions.
    let user_zone = sd
        .service
        .components
        .iter()
        .filter(|c| c.user_side)
        .find_map(|c| c.placement.pin.as_ref())
        .and_then(|pin| p.zone_index(&pin.zone));
    let bound = if comp.placement.pin.is_some() { None } else { p.component_proximity(si, ci) };
    let capacity = state.capacity_for(&sd.name);
    let mut out = Vec::new();
    for (h, host) in p.hosts.iter().enumerate() {
        let zone = &p.zones[host.zone];
        if !p.host_allows(h, &comp.placement) {
            continue;
        }
        if let Some(b) = bound {
            let near = match user_zone {
                Some(u) => p.zone_rtt(u, host.zone) <= b + 1e-9,
                None if p.regions.is_empty() => true,
                None => (0..p.regions.len()).all(|r| p.region_rtt[r][host.zone] <= b + 1e-9),
            };
            if !near {
                continue;
            }
        }
        let Some(infra_host) = state
            .infrastructure
            .zones
            .iter()
            .find(|z| z.name == zone.name)
            .and_then(|z| z.hosts.iter().find(|x| x.name == host.name))
        else {
            continue;
        };
        let free = capacity.get(&(zone.name.clone(), host.name.clone())).cloned().unwrap_or_default();
        let mut used = infra_host.capacity.clone();
        used.sub_scaled(&free, 1);
        out.push(HostState {
            zone: zone.name.clone(),
            host: host.name.clone(),
            arch: host.features.get("arch").cloned(),
            accelerator: host.features.get("accelerator").cloned(),
            capacity: infra_host.capacity.clone(),
            used,
            power: infra_host.power,
        });
    }
    out
}

/// An evaluator's best score per (zone, host).
pub type Preferences = BTreeMap<(String, String), f64>;

/// FUSION evaluators as a stage: only the hosts the zones offered may take the service
/// (every other host of `bundle` is marked unavailable for it), and each offered host's best
/// score becomes its preference, which the objective weighs ([`set_preference`]). A price per
/// slot-hour is the zone's own price (already in the problem), so it adds nothing here.
pub fn offers(
    bundle: &mut zonal_model::Bundle,
    service: &str,
    offers: &[OfferTerms],
) -> Result<(Preferences, Vec<String>), PlaceError> {
    let mut preference: BTreeMap<(String, String), f64> = BTreeMap::new();
    for o in offers {
        for env in &o.environments {
            if env.slots == 0 || env.score.is_nan() || env.score <= 0.0 {
                continue;
            }
            let e = preference.entry((o.zone.clone(), env.host.clone())).or_insert(0.0);
            *e = e.max(env.score.min(1.0));
        }
    }
    for d in &mut bundle.documents {
        if let zonal_model::Document::Infrastructure(infra) = d {
            for z in &mut infra.zones {
                for h in &mut z.hosts {
                    if !preference.contains_key(&(z.name.clone(), h.name.clone())) {
                        h.available = false;
                    }
                }
            }
        }
    }
    let usable = bundle
        .infrastructures()
        .flat_map(|i| i.zones.iter().flat_map(|z| z.hosts.iter().map(move |h| (z, h))))
        .filter(|(z, h)| h.available && preference.contains_key(&(z.name.clone(), h.name.clone())))
        .count();
    if usable == 0 {
        return Err(PlaceError::Infeasible {
            reasons: vec![InfeasibilityReason {
                family: ConstraintFamily::Placement,
                subject: vec![service.to_string()],
                detail: "no zone offered a usable environment for the service (no offer arrived in time, or every evaluator score was 0)".into(),
            }],
        });
    }
    let zones: BTreeSet<&str> = preference.keys().map(|(z, _)| z.as_str()).collect();
    let note = format!(
        "offers: {usable} environment(s) in {} zone(s) ({}) may take the service; their evaluator scores weigh in the objective",
        zones.len(),
        zones.iter().copied().collect::<Vec<_>>().join(", ")
    );
    Ok((preference, vec![note]))
}

/// Puts the offer stage's preferences into the problem (hosts not offered: 0).
pub fn set_preference(problem: &mut Problem, service: &str, preference: &BTreeMap<(String, String), f64>) {
    let Some(si) = problem.service_index(service) else { return };
    let v: Vec<f64> = problem
        .hosts
        .iter()
        .map(|h| preference.get(&(problem.zones[h.zone].name.clone(), h.name.clone())).copied().unwrap_or(0.0))
        .collect();
    problem.services[si].host_preference = Some(v);
}
