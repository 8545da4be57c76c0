//! The fast path for single-component services: filter, then score, over every host, with all
//! that does not change between placements computed once.
//!
//! This is the shape of a Kubernetes scheduling cycle (filter plugins, then score plugins,
//! over all nodes), kept cheap by precomputation:
//!
//! * [`SinglePlacer::new`] lays the hosts' free capacity out as one flat array of integers
//!   (`host × resource`) with the reciprocal of each capacity, so a placement touches
//!   contiguous memory and never a map or a string.
//! * [`SinglePlacer::compile`] applies every *static* filter once per (service, region):
//!   availability, allowed / avoided zones, pin, required features, proximity class from the
//!   region; it keeps the candidate hosts and each one's round-trip time to the region,
//!   normalised to [0, 1].
//! * [`SinglePlacer::place`] then does only the dynamic part for every candidate: does the
//!   demand fit the free capacity, is the zone under the component's `scaling.max_instances`,
//!   and the score `latency_weight × rtt + fit`, where `fit` is the mean over resources of the
//!   share of the host's capacity left free after the placement (best fit packs hosts, like
//!   kube-scheduler's `MostAllocated`; [`Scoring::Spread`] negates it, like `LeastAllocated`).
//!   The lowest score wins, ties to the lower host index; the demand is reserved at once.
//!
//! [`SinglePlacer::plan`] turns everything placed so far into the shared [`Plan`] (one row per
//! service, component and host), which the independent checker verifies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::chain::Residual;
use crate::error::PlaceError;
use crate::plan::{Placement, Plan};
use crate::problem::Problem;

/// How candidate hosts are ranked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// Least capacity left after placing (packs hosts, frees others for consolidation).
    #[default]
    BestFit,
    /// Most capacity left after placing (spreads load).
    Spread,
}

/// One (service, region) ready to place: its candidates and their precomputed terms.
#[derive(Debug, Clone)]
pub struct Compiled {
    id: usize,
    service: usize,
    component: usize,
    /// Positions in the placer's host table.
    candidates: Vec<u32>,
    /// Normalised round-trip time to the region per candidate (0 without a region).
    latency: Vec<f64>,
    /// Per candidate: the zone's hourly price of one instance, normalised to [0, 1] by the
    /// dearest candidate, and 1 − the host's preference (an evaluator's score).
    price: Vec<f64>,
    unsuited: Vec<f64>,
    demand: Vec<u64>,
    max_per_zone: u32,
}

impl Compiled {
    /// Hosts left after the static filters.
    pub fn candidates(&self) -> usize {
        self.candidates.len()
    }
}

/// Places single-component services one instance at a time (see the module docs).
pub struct SinglePlacer<'p> {
    problem: &'p Problem,
    res_names: Vec<String>,
    /// Host table: indices into `problem.hosts` of the available hosts.
    hosts: Vec<usize>,
    zone: Vec<u32>,
    /// `free[i × R + r]`, `inv_cap[i × R + r]` (0 for a resource the host lacks).
    free: Vec<u64>,
    inv_cap: Vec<f64>,
    scoring: Scoring,
    /// Weight of the latency term against the fit term.
    pub latency_weight: f64,
    /// Weight of the price term (0: price is ignored, as in the fast-path benchmark).
    pub cost_weight: f64,
    /// Weight of the preference term (an evaluator's scores, see
    /// [`crate::problem::ServiceData::host_preference`]).
    pub preference_weight: f64,
    /// Per compiled entry, instances per zone.
    zone_counts: Vec<Vec<u32>>,
    /// (compiled entry, host table position) of every placement, in order.
    log: Vec<(u32, u32)>,
    compiled: Vec<(usize, usize)>,
}

impl<'p> SinglePlacer<'p> {
    /// A placer over the available hosts of `problem`, starting from `residual`'s free
    /// capacity. The resources tracked are those any single-component service asks for.
    pub fn new(problem: &'p Problem, residual: &Residual, scoring: Scoring) -> SinglePlacer<'p> {
        let p = problem;
        let mut names = std::collections::BTreeSet::new();
        for s in &p.services {
            for c in &s.service.components {
                names.extend(c.resources.names().map(String::from));
            }
        }
        let res_names: Vec<String> = names.into_iter().collect();
        let hosts: Vec<usize> = (0..p.hosts.len()).filter(|&h| p.hosts[h].available).collect();
        let mut free = Vec::with_capacity(hosts.len() * res_names.len());
        let mut inv_cap = Vec::with_capacity(hosts.len() * res_names.len());
        for &h in &hosts {
            for r in &res_names {
                free.push(residual.host_free[h].get(r));
                let cap = p.hosts[h].capacity.get(r);
                inv_cap.push(if cap > 0 { 1.0 / cap as f64 } else { 0.0 });
            }
        }
        let zone = hosts.iter().map(|&h| p.hosts[h].zone as u32).collect();
        SinglePlacer {
            problem,
            res_names,
            hosts,
            zone,
            free,
            inv_cap,
            scoring,
            latency_weight: 1.0,
            cost_weight: 0.0,
            preference_weight: 0.0,
            zone_counts: Vec::new(),
            log: Vec::new(),
            compiled: Vec::new(),
        }
    }

    /// Applies the static filters of `service` for users in `region` (see the module docs).
    pub fn compile(&mut self, service: &str, region: Option<&str>) -> Result<Compiled, PlaceError> {
        let p = self.problem;
        let si = p.service_index(service).ok_or_else(|| {
            PlaceError::input(
                "single.service",
                format!("unknown service {service:?}; expected a service of the bundle"),
            )
        })?;
        let sd = &p.services[si];
        if sd.placed.len() != 1 || !sd.service.channels.is_empty() {
            return Err(PlaceError::input(
                format!("service {service:?}"),
                format!(
                    "expected exactly one placed component and no channels for the single-component fast path, found {} component(s) and {} channel(s); use the chain heuristic",
                    sd.placed.len(),
                    sd.service.channels.len()
                ),
            ));
        }
        let ci = sd.placed[0];
        let comp = &sd.service.components[ci];
        let ri = match region {
            Some(r) => Some(p.region_index(r).ok_or_else(|| {
                PlaceError::input(
                    format!("service {service:?}"),
                    format!("unknown region {r:?}; expected a region of the demand"),
                )
            })?),
            None => None,
        };
        let bound = p.component_proximity(si, ci);
        let pc = &comp.placement;
        let mut candidates = Vec::new();
        let mut rtt = Vec::new();
        for (i, &h) in self.hosts.iter().enumerate() {
            let host = &p.hosts[h];
            if !p.host_allows(h, pc) {
                continue;
            }
            let lat = ri.map_or(0.0, |r| p.region_rtt[r][host.zone]);
            if ri.is_some() && !lat.is_finite() {
                continue;
            }
            if let (Some(b), None) = (bound, &pc.pin) {
                if ri.is_none() || lat > b + 1e-9 {
                    continue;
                }
            }
            candidates.push(i as u32);
            rtt.push(lat);
        }
        let max_rtt = rtt.iter().copied().fold(0.0, f64::max);
        let latency = rtt.iter().map(|&l| if max_rtt > 0.0 { l / max_rtt } else { 0.0 }).collect();
        let hourly: Vec<f64> = candidates
            .iter()
            .map(|&i| p.zones[p.hosts[self.hosts[i as usize]].zone].price.hourly(&comp.resources))
            .collect();
        let dearest = hourly.iter().copied().fold(0.0, f64::max);
        let price = hourly.iter().map(|&c| if dearest > 0.0 { c / dearest } else { 0.0 }).collect();
        let unsuited = candidates
            .iter()
            .map(|&i| {
                let h = self.hosts[i as usize];
                let pref = p.services[si].host_preference.as_ref().and_then(|v| v.get(h)).copied().unwrap_or(1.0);
                1.0 - pref.clamp(0.0, 1.0)
            })
            .collect();
        let id = self.compiled.len();
        self.compiled.push((si, ci));
        self.zone_counts.push(vec![0; p.zones.len()]);
        Ok(Compiled {
            id,
            service: si,
            component: ci,
            candidates,
            latency,
            price,
            unsuited,
            demand: self.res_names.iter().map(|r| comp.resources.get(r)).collect(),
            max_per_zone: comp.scaling.max_instances,
        })
    }

    /// Places one instance of `c`; returns the host (index into `problem.hosts`), or `None`
    /// when no candidate has room.
    pub fn place(&mut self, c: &Compiled) -> Option<usize> {
        let r_n = self.res_names.len();
        let spread = self.scoring == Scoring::Spread;
        let inv_r = if r_n > 0 { 1.0 / r_n as f64 } else { 0.0 };
        let counts = &self.zone_counts[c.id];
        let mut best: Option<(f64, usize)> = None;
        'hosts: for (k, &pos) in c.candidates.iter().enumerate() {
            let i = pos as usize;
            if counts[self.zone[i] as usize] >= c.max_per_zone {
                continue;
            }
            let base = i * r_n;
            let mut left = 0.0;
            for (r, &d) in c.demand.iter().enumerate() {
                let f = self.free[base + r];
                if f < d {
                    continue 'hosts;
                }
                left += (f - d) as f64 * self.inv_cap[base + r];
            }
            let fit = left * inv_r;
            let score = self.latency_weight * c.latency[k]
                + self.cost_weight * c.price[k]
                + self.preference_weight * c.unsuited[k]
                + if spread { -fit } else { fit };
            if best.is_none_or(|(b, _)| score < b) {
                best = Some((score, i));
            }
        }
        let (_, i) = best?;
        let base = i * r_n;
        for (r, &d) in c.demand.iter().enumerate() {
            self.free[base + r] -= d;
        }
        self.zone_counts[c.id][self.zone[i] as usize] += 1;
        self.log.push((c.id as u32, i as u32));
        Some(self.hosts[i])
    }

    /// Placements so far.
    pub fn placed(&self) -> usize {
        self.log.len()
    }

    /// Everything placed so far as one plan (one row per service, component and host).
    pub fn plan(&self) -> Plan {
        let p = self.problem;
        let mut rows: BTreeMap<(usize, usize, usize), u32> = BTreeMap::new();
        for &(id, i) in &self.log {
            let (si, ci) = self.compiled[id as usize];
            *rows.entry((si, ci, self.hosts[i as usize])).or_default() += 1;
        }
        let mut plan = Plan::new("single-fast-path");
        let mut used = std::collections::BTreeSet::new();
        for ((si, ci, h), n) in rows {
            let s = &p.services[si];
            used.insert(h);
            plan.placements.push(Placement {
                service: s.name.clone(),
                subscription: None,
                component: s.service.components[ci].name.clone(),
                zone: p.zones[p.hosts[h].zone].name.clone(),
                host: Some(p.hosts[h].name.clone()),
                instances: n,
                slots: 0.0,
            });
        }
        plan.objective = used.len() as f64;
        plan.objective_terms.insert("used_servers".into(), used.len() as f64);
        plan.status = crate::plan::PlanStatus::Feasible { limit: "heuristic".into() };
        plan.notes.push(format!(
            "{} single-component placements, filter + {:?} score over the hosts",
            self.log.len(),
            self.scoring
        ));
        plan.normalize();
        plan
    }

    /// The service and component a compiled entry places.
    pub fn target(&self, c: &Compiled) -> (&str, &str) {
        let s = &self.problem.services[c.service];
        (s.name.as_str(), s.service.components[c.component].name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check;
    use crate::problem::ProblemOptions;
    use crate::testkit::*;

    #[test]
    fn fills_hosts_best_fit_within_filters_and_passes_the_checker() {
        let mut b = line_bundle(3, 1);
        // z2's host has the feature; max 3 instances per zone; 1 core each on 4-core hosts.
        infra_mut(&mut b).zones[2].hosts[0].features.insert("gpu".into(), "t4".into());
        let s = service_mut(&mut b, "svc");
        s.components[0].scaling.max_instances = 3;
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        let mut placer = SinglePlacer::new(&p, &Residual::full(&p), Scoring::BestFit);
        let c = placer.compile("svc", Some("r0")).unwrap();
        assert_eq!(c.candidates(), 3);
        let hosts: Vec<Option<usize>> = (0..10).map(|_| placer.place(&c)).collect();
        // Three per zone, nearest region first (r0 sits at z0).
        assert_eq!(hosts.iter().flatten().count(), 9);
        assert_eq!(hosts[0], Some(0));
        assert!(hosts[9].is_none());
        let plan = placer.plan();
        let r = check(&p, &plan);
        assert!(r.is_ok(), "{}", r.summary());
        assert_eq!(plan.term("used_servers"), Some(3.0));

        let mut b2 = b.clone();
        service_mut(&mut b2, "svc").components[0].placement.requires.insert("gpu".into(), "*".into());
        let p2 = Problem::from_bundle(&b2, &ProblemOptions::default()).unwrap();
        let mut placer = SinglePlacer::new(&p2, &Residual::full(&p2), Scoring::Spread);
        let c = placer.compile("svc", None).unwrap();
        assert_eq!(c.candidates(), 1, "only z2's host has the feature");
        assert_eq!(placer.place(&c).map(|h| p2.zones[p2.hosts[h].zone].name.as_str()), Some("z2"));
    }

    #[test]
    fn composite_services_are_refused_with_a_reason() {
        let mut b = line_bundle(2, 1);
        service_mut(&mut b, "svc").components.push(component("db", 1, 1));
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        let mut placer = SinglePlacer::new(&p, &Residual::full(&p), Scoring::BestFit);
        let e = placer.compile("svc", None).unwrap_err();
        assert!(e.to_string().contains("exactly one placed component"), "{e}");
        assert!(placer.compile("nope", None).is_err());
    }
}
