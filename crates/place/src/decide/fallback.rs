//! The last resort: when no solver returns a feasible plan within its time budget (a solver
//! failure or a time limit without an incumbent — not a proof of infeasibility), the whole
//! service goes into one zone by a greedy rule, FUSION year 2's:
//!
//! 1. each component gets its wanted instances ([`super::wanted_instances`]);
//! 2. a zone is feasible when the shared rules allow it for every component and the
//!    instances fit on its hosts, first fit decreasing by CPU, honouring required features and
//!    (symmetric) anti-affinity;
//! 3. among feasible zones the one with the most free CPU, then memory, then the first name.
//!
//! Channels stay inside the zone, so no path is reserved. The decision names this stage.

use std::collections::{BTreeMap, BTreeSet};

use zonal_model::resources::{CPU, MEMORY};
use zonal_model::rules::{anti_affine, host_allows, zone_refusal, HostView};
use zonal_model::Resources;

use super::{wanted_instances, Route, Solved};
use crate::error::{ConstraintFamily, InfeasibilityReason, PlaceError};
use crate::plan::{Placement, Plan, PlanStatus};
use crate::problem::Problem;

/// Places `service` whole in one zone (see the module docs).
pub fn greedy(p: &Problem, service: &str, slots: u32) -> Result<Solved, PlaceError> {
    let si =
        p.service_index(service).ok_or_else(|| PlaceError::input("service", format!("unknown service {service:?}")))?;
    let s = &p.services[si].service;
    let wanted = wanted_instances(s, slots);
    let mut order: Vec<&zonal_model::Component> =
        s.components.iter().filter(|c| wanted.get(&c.name).is_some_and(|n| *n > 0)).collect();
    order.sort_by(|a, b| b.resources.get(CPU).cmp(&a.resources.get(CPU)).then(a.name.cmp(&b.name)));
    // (zone, its free capacity after, rows (component, host, instances)).
    type Choice = (usize, Resources, Vec<(String, usize, u32)>);
    let mut best: Option<Choice> = None;
    let mut reasons = Vec::new();
    for (zi, z) in p.zones.iter().enumerate() {
        if let Some((c, r)) = order.iter().find_map(|c| zone_refusal(&c.placement, &z.name).map(|r| (c, r))) {
            reasons.push(format!("{}: component {} {r}", z.name, c.name));
            continue;
        }
        let mut free: BTreeMap<usize, Resources> =
            z.hosts.iter().filter(|&&h| p.hosts[h].available).map(|&h| (h, p.hosts[h].capacity.clone())).collect();
        let mut on: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
        let mut rows: Vec<(String, usize, u32)> = Vec::new();
        let mut failed = None;
        'comps: for c in &order {
            let avoid = anti_affine(s, &c.name);
            for i in 0..wanted[&c.name].min(c.scaling.max_instances) {
                let host = z.hosts.iter().copied().find(|&h| {
                    let hd = &p.hosts[h];
                    let view =
                        HostView { zone: &z.name, name: &hd.name, features: &hd.features, available: hd.available };
                    host_allows(&c.placement, view)
                        && free.get(&h).is_some_and(|f| f.fits(&c.resources))
                        && !on.get(&h).is_some_and(|here| avoid.iter().any(|a| here.contains(a)))
                });
                let Some(h) = host else {
                    failed =
                        Some(format!("{}: instance {} of {} ({}) fits no host", z.name, i + 1, c.name, c.resources));
                    break 'comps;
                };
                if let Some(f) = free.get_mut(&h) {
                    f.sub_scaled(&c.resources, 1);
                }
                on.entry(h).or_default().insert(c.name.clone());
                match rows.iter_mut().find(|r| r.0 == c.name && r.1 == h) {
                    Some(r) => r.2 += 1,
                    None => rows.push((c.name.clone(), h, 1)),
                }
            }
        }
        if let Some(why) = failed {
            reasons.push(why);
            continue;
        }
        let mut total = Resources::new();
        for f in free.values() {
            total.add_scaled(f, 1);
        }
        let key = |r: &Resources| (r.get(CPU), r.get(MEMORY));
        if best.as_ref().is_none_or(|(_, b, _)| key(&total) > key(b)) {
            best = Some((zi, total, rows));
        }
    }
    let Some((zi, _, rows)) = best else {
        return Err(PlaceError::Infeasible {
            reasons: vec![InfeasibilityReason {
                family: ConstraintFamily::Capacity,
                subject: vec![service.to_string()],
                detail: format!("no zone can take the whole service: {}", reasons.join("; ")),
            }],
        });
    };
    let mut plan = Plan::new("greedy");
    plan.status = PlanStatus::Feasible { limit: "greedy last resort".into() };
    for (comp, h, n) in rows {
        plan.placements.push(Placement {
            service: service.to_string(),
            subscription: None,
            component: comp,
            zone: p.zones[zi].name.clone(),
            host: Some(p.hosts[h].name.clone()),
            instances: n,
            slots: 0.0,
        });
    }
    plan.normalize();
    Ok(Solved {
        route: Route::Greedy,
        reason: format!(
            "the greedy last resort put the whole service in zone {} (most free capacity)",
            p.zones[zi].name
        ),
        plan,
        solvers: Vec::new(),
        notes: Vec::new(),
        base: None,
    })
}
