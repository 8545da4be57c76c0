//! An independent plan checker.
//!
//! [`check`] verifies a [`Plan`] against a [`Problem`] without reusing any solver formulation:
//! it walks the plan's placements, assignments and paths and tests each rule directly on the
//! model data (host and zone capacities, links, SLAs, placement constraints). It then
//! recomputes the objective terms from scratch and reports any claimed term that differs by
//! more than the tolerance.
//!
//! Rules checked:
//! * **Names**: every service, component, zone, host, region in the plan exists; a host is in
//!   the zone it is said to be in; placed hosts are available.
//! * **Host capacity** per resource: Σ instances × component resources ≤ host capacity.
//!   **Zone capacity**: the same summed over the zone against its available hosts (this is the
//!   check that applies to zone-level placements, `host: None`). User-side components consume
//!   nothing.
//! * **Slots**: a placement uses at most `instances × slots.per_instance`; the slots assigned
//!   to a (service, zone) fit in the entry component's instances there; per-zone instances of
//!   a component stay within `scaling.max_instances` (FUSION plans; chain subscriptions are
//!   separate chain instances and are not capped together). A plan that assigns sessions of
//!   a service but places none of it (FUSION service selection, which uses running
//!   instances) is not checked against slot capacity.
//! * **Paths**: start at the `from` component's zone, end at the `to` component's zone,
//!   consecutive zones are joined by a link, no zone repeats (loop-free), empty when
//!   collocated; a channel between components in different zones must have a path; a channel
//!   of a replicated composite (components in several zones) must be collocated in each zone.
//!   The claimed path latency must match the sum of the links' one-way delays and stay within
//!   the channel's `max_latency`. **Link bandwidth** per direction: Σ channel bandwidth ≤ link
//!   bandwidth.
//! * **Proximity classes**: the round-trip latency from the user (the subscription's region,
//!   or its user zone over the link graph; for FUSION assignments the region) to each
//!   non-pinned, non-user-side component's zone is within the class bound.
//! * **Pins**: a pinned component is in its pin zone (and host when given). **IN-23**: a host
//!   that holds a user-side component holds nothing else.
//! * **Demand coverage** (when the plan has assignments): for each demand entry the shares sum
//!   to 1 ± 1e-6, slots = share × demand, each used (region, zone) pair is within R_max and its
//!   claimed latency matches the problem's.
//! * **Affinity** (same zone) and **anti-affinity** (never the same host), **allowed/avoided
//!   zones**, **required features** (on the host, or on some available host of the zone).
//!
//! Terms recomputed: `min_utility`, `total_utility` (Σ region weight × utility),
//! `utility_percent` (Σ w·u / Σ w·(1/k) × 100), `worst_latency_ms` (largest share-weighted
//! average latency), `cost` (Σ assigned slots × (deploy cost per slot-hour + bandwidth cost per
//! slot-hour)), `instance_cost` (Σ instances × zone price of the component's resources),
//! `delay_ms` (Σ path latencies), `used_servers` (distinct hosts holding placed components).
//!
//! **Budget** ([`check_within_budget`]): a plan made under FUSION's cost budget has a
//! recomputed `cost` within it (relative tolerance 1e-5).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use zonal_model::Resources;

use crate::plan::Plan;
use crate::problem::{host_satisfies, mbps_to_gb_per_hour, Problem};

/// What kind of rule a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    UnknownName,
    UnavailableHost,
    HostCapacity,
    ZoneCapacity,
    SlotCapacity,
    MaxInstances,
    LinkBandwidth,
    PathEnds,
    PathBroken,
    PathLoop,
    MissingPath,
    PathLatency,
    ChannelLatency,
    Proximity,
    Pin,
    StaticHost,
    Coverage,
    RMax,
    Affinity,
    AntiAffinity,
    AllowedZones,
    Features,
    TermMismatch,
    Budget,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub kind: ViolationKind,
    pub subject: Vec<String>,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} [{}]: {}", self.kind, self.subject.join(" / "), self.detail)
    }
}

/// The checker's verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub violations: Vec<Violation>,
    /// Objective terms recomputed from scratch.
    pub terms: BTreeMap<String, f64>,
    /// Terms the plan claims that the checker cannot recompute.
    pub unchecked_terms: Vec<String>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
    /// A one-line-per-violation summary.
    pub fn summary(&self) -> String {
        self.violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }
}

/// Tolerance on slots, shares and latencies.
const TOL: f64 = 1e-6;
/// Relative tolerance on objective terms.
const TERM_TOL: f64 = 1e-5;

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

struct Checker {
    out: Vec<Violation>,
}

impl Checker {
    fn v(&mut self, kind: ViolationKind, subject: &[&str], detail: String) {
        self.out.push(Violation { kind, subject: subject.iter().map(|s| s.to_string()).collect(), detail });
    }
}

type GroupKey = (String, Option<String>);

/// Checks `plan` against `problem`; see the module docs for the rules.
pub fn check(problem: &Problem, plan: &Plan) -> CheckReport {
    let p = problem;
    let mut c = Checker { out: Vec::new() };
    let mut host_use: BTreeMap<usize, Resources> = BTreeMap::new();
    let mut zone_use: BTreeMap<usize, Resources> = BTreeMap::new();
    let mut instances_per: BTreeMap<(String, String, usize), u64> = BTreeMap::new();
    // (service, subscription) → component → zones / hosts
    let mut comp_zones: BTreeMap<GroupKey, BTreeMap<String, BTreeSet<usize>>> = BTreeMap::new();
    let mut comp_hosts: BTreeMap<GroupKey, BTreeMap<String, BTreeSet<usize>>> = BTreeMap::new();
    let mut entry_slots: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut user_hosts: BTreeSet<usize> = BTreeSet::new();
    let mut placed_hosts: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut instance_cost = 0.0;

    for pl in &plan.placements {
        let subj = [pl.service.as_str(), pl.component.as_str(), pl.zone.as_str()];
        let Some(si) = p.service_index(&pl.service) else {
            c.v(ViolationKind::UnknownName, &subj, format!("unknown service {:?}", pl.service));
            continue;
        };
        let sd = &p.services[si];
        let Some(ci) = sd.service.components.iter().position(|x| x.name == pl.component) else {
            c.v(
                ViolationKind::UnknownName,
                &subj,
                format!("service {:?} has no component {:?}", pl.service, pl.component),
            );
            continue;
        };
        let comp = &sd.service.components[ci];
        let Some(zi) = p.zone_index(&pl.zone) else {
            c.v(ViolationKind::UnknownName, &subj, format!("unknown zone {:?}", pl.zone));
            continue;
        };
        let hi = match &pl.host {
            Some(h) => match p.host_index(zi, h) {
                Some(hi) => Some(hi),
                None => {
                    c.v(ViolationKind::UnknownName, &subj, format!("zone {:?} has no host {h:?}", pl.zone));
                    continue;
                }
            },
            None => None,
        };
        let key: GroupKey = (pl.service.clone(), pl.subscription.clone());
        comp_zones.entry(key.clone()).or_default().entry(pl.component.clone()).or_default().insert(zi);
        if let Some(hi) = hi {
            comp_hosts.entry(key.clone()).or_default().entry(pl.component.clone()).or_default().insert(hi);
        }
        // Pins.
        if let Some(pin) = &comp.placement.pin {
            if pin.zone != pl.zone || (pin.host.is_some() && pl.host.is_some() && pin.host != pl.host) {
                c.v(
                    ViolationKind::Pin,
                    &subj,
                    format!(
                        "component is pinned to zone {:?} host {:?}, placed in zone {:?} host {:?}",
                        pin.zone, pin.host, pl.zone, pl.host
                    ),
                );
            }
        }
        if comp.user_side {
            if let Some(hi) = hi {
                user_hosts.insert(hi);
            }
            continue;
        }
        if let Some(hi) = hi {
            if !p.hosts[hi].available {
                c.v(ViolationKind::UnavailableHost, &subj, format!("host {:?} is not available", p.hosts[hi].name));
            }
            host_use.entry(hi).or_default().add_scaled(&comp.resources, u64::from(pl.instances));
            placed_hosts.entry(hi).or_default().push(format!("{}/{}", pl.service, pl.component));
        }
        zone_use.entry(zi).or_default().add_scaled(&comp.resources, u64::from(pl.instances));
        instance_cost += f64::from(pl.instances) * p.zones[zi].price.hourly(&comp.resources);
        // Allowed zones and features.
        let pc = &comp.placement;
        if comp.placement.pin.as_ref().is_none_or(|pin| pin.zone == pl.zone)
            && zonal_model::rules::zone_refusal(pc, &pl.zone).is_some()
        {
            c.v(
                ViolationKind::AllowedZones,
                &subj,
                format!("zone not allowed (zones {:?}, avoid {:?})", pc.zones, pc.avoid_zones),
            );
        }
        let feat_ok = match hi {
            Some(hi) => host_satisfies(&p.hosts[hi], &pc.requires),
            None => {
                p.zones[zi].hosts.iter().any(|&h| p.hosts[h].available && host_satisfies(&p.hosts[h], &pc.requires))
            }
        };
        if !feat_ok {
            c.v(ViolationKind::Features, &subj, format!("required features {:?} not offered", pc.requires));
        }
        // Slots.
        let spi = f64::from(comp.slots.per_instance);
        if pl.slots > f64::from(pl.instances) * spi + TOL {
            c.v(
                ViolationKind::SlotCapacity,
                &subj,
                format!("{} slots on {} instance(s) of {} slots", pl.slots, pl.instances, spi),
            );
        }
        if ci == sd.entry {
            *entry_slots.entry((si, zi)).or_default() += f64::from(pl.instances) * spi;
        }
        if pl.subscription.is_none() {
            *instances_per.entry((pl.service.clone(), pl.component.clone(), zi)).or_default() +=
                u64::from(pl.instances);
        }
    }

    // Max instances per zone.
    for ((s, comp, zi), n) in &instances_per {
        if let Some(si) = p.service_index(s) {
            if let Some(cd) = p.services[si].service.component(comp) {
                if *n > u64::from(cd.scaling.max_instances) {
                    c.v(
                        ViolationKind::MaxInstances,
                        &[s, comp, &p.zones[*zi].name],
                        format!("{n} instances, at most {} per zone", cd.scaling.max_instances),
                    );
                }
            }
        }
    }
    // Host and zone capacity.
    for (hi, used) in &host_use {
        let h = &p.hosts[*hi];
        for (r, a) in &used.0 {
            if a.value > h.capacity.get(r) {
                c.v(
                    ViolationKind::HostCapacity,
                    &[&p.zones[h.zone].name, &h.name, r],
                    format!("uses {} of {r}, capacity {}", a.value, h.capacity.get(r)),
                );
            }
        }
    }
    for (zi, used) in &zone_use {
        let z = &p.zones[*zi];
        for (r, a) in &used.0 {
            if a.value > z.capacity.get(r) {
                c.v(
                    ViolationKind::ZoneCapacity,
                    &[&z.name, r],
                    format!("uses {} of {r}, available capacity {}", a.value, z.capacity.get(r)),
                );
            }
        }
    }
    // IN-23.
    for hi in &user_hosts {
        if let Some(others) = placed_hosts.get(hi) {
            c.v(
                ViolationKind::StaticHost,
                &[&p.hosts[*hi].name],
                format!("host holds a user-side component and also {}", others.join(", ")),
            );
        }
    }
    // Affinity / anti-affinity.
    for (key, comps) in &comp_zones {
        let Some(si) = p.service_index(&key.0) else { continue };
        for comp in &p.services[si].service.components {
            let Some(zs) = comps.get(&comp.name) else { continue };
            for other in &comp.placement.affinity {
                if let Some(ozs) = comps.get(other) {
                    if zs != ozs {
                        c.v(
                            ViolationKind::Affinity,
                            &[&key.0, &comp.name, other],
                            format!("in zones {zs:?} vs {ozs:?}; affinity needs the same zone"),
                        );
                    }
                }
            }
            for other in &comp.placement.anti_affinity {
                let hs = comp_hosts.get(key).and_then(|m| m.get(&comp.name));
                let ohs = comp_hosts.get(key).and_then(|m| m.get(other));
                if let (Some(hs), Some(ohs)) = (hs, ohs) {
                    if let Some(h) = hs.intersection(ohs).next() {
                        c.v(
                            ViolationKind::AntiAffinity,
                            &[&key.0, &comp.name, other, &p.hosts[*h].name],
                            "anti-affine components share a host".into(),
                        );
                    }
                }
            }
        }
    }

    // Paths.
    let mut arc_load: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut delay_sum = 0.0;
    let mut has_path: BTreeSet<(GroupKey, String, String)> = BTreeSet::new();
    for path in &plan.paths {
        let key: GroupKey = (path.service.clone(), path.subscription.clone());
        let subj = [path.service.as_str(), path.from.as_str(), path.to.as_str()];
        has_path.insert((key.clone(), path.from.clone(), path.to.clone()));
        let Some(si) = p.service_index(&path.service) else {
            c.v(ViolationKind::UnknownName, &subj, "unknown service".into());
            continue;
        };
        let Some(ch) = p.services[si].service.channels.iter().find(|ch| ch.from == path.from && ch.to == path.to)
        else {
            c.v(ViolationKind::UnknownName, &subj, "the service has no such channel".into());
            continue;
        };
        let one = |comp: &str| -> Option<usize> {
            let zs = comp_zones.get(&key)?.get(comp)?;
            (zs.len() == 1).then(|| *zs.iter().next().unwrap_or(&0))
        };
        let (Some(fz), Some(tz)) = (one(&path.from), one(&path.to)) else {
            c.v(ViolationKind::PathEnds, &subj, "a path needs each end component placed in exactly one zone".into());
            continue;
        };
        let mut zones = Vec::new();
        let mut bad = false;
        for z in &path.zones {
            match p.zone_index(z) {
                Some(zi) => zones.push(zi),
                None => {
                    c.v(ViolationKind::UnknownName, &subj, format!("unknown zone {z:?} on the path"));
                    bad = true;
                }
            }
        }
        if bad {
            continue;
        }
        let mut latency = 0.0;
        if fz == tz {
            if !zones.is_empty() {
                c.v(
                    ViolationKind::PathEnds,
                    &subj,
                    format!("both ends are in zone {:?}; a collocated channel has an empty path", p.zones[fz].name),
                );
            }
        } else {
            if zones.first() != Some(&fz) || zones.last() != Some(&tz) {
                c.v(
                    ViolationKind::PathEnds,
                    &subj,
                    format!("path {:?} must run from {:?} to {:?}", path.zones, p.zones[fz].name, p.zones[tz].name),
                );
            }
            let distinct: BTreeSet<usize> = zones.iter().copied().collect();
            if distinct.len() != zones.len() {
                c.v(ViolationKind::PathLoop, &subj, format!("path {:?} visits a zone twice", path.zones));
            }
            for w in zones.windows(2) {
                match p.link_between(w[0], w[1]) {
                    Some(l) => {
                        latency += l.delay_ms;
                        *arc_load.entry((w[0], w[1])).or_default() += ch.bandwidth.map(|b| b.mbps()).unwrap_or(0.0);
                    }
                    None => c.v(
                        ViolationKind::PathBroken,
                        &subj,
                        format!("no link between {:?} and {:?}", p.zones[w[0]].name, p.zones[w[1]].name),
                    ),
                }
            }
        }
        if !close(latency, path.latency_ms, TERM_TOL) {
            c.v(
                ViolationKind::PathLatency,
                &subj,
                format!("claims {} ms, links add up to {latency} ms", path.latency_ms),
            );
        }
        if let Some(max) = ch.max_latency {
            if latency > max.as_millis() + TOL {
                c.v(
                    ViolationKind::ChannelLatency,
                    &subj,
                    format!("path latency {latency} ms above the channel's max {} ms", max.as_millis()),
                );
            }
        }
        delay_sum += latency;
    }
    for ((a, b), load) in &arc_load {
        if let Some(l) = p.link_between(*a, *b) {
            if let Some(bw) = l.bandwidth_mbps {
                if *load > bw + TOL * bw.max(1.0) {
                    c.v(
                        ViolationKind::LinkBandwidth,
                        &[&p.zones[*a].name, &p.zones[*b].name],
                        format!("{load} Mbit/s over a {bw} Mbit/s link"),
                    );
                }
            }
        }
    }
    // Missing paths / replicated channels.
    for (key, comps) in &comp_zones {
        let Some(si) = p.service_index(&key.0) else { continue };
        for ch in &p.services[si].service.channels {
            let (Some(fz), Some(tz)) = (comps.get(&ch.from), comps.get(&ch.to)) else { continue };
            if fz.len() == 1 && tz.len() == 1 {
                if fz != tz && !has_path.contains(&(key.clone(), ch.from.clone(), ch.to.clone())) {
                    c.v(
                        ViolationKind::MissingPath,
                        &[&key.0, &ch.from, &ch.to],
                        "components in different zones and no path given".into(),
                    );
                }
            } else if !fz.is_subset(tz) {
                c.v(
                    ViolationKind::MissingPath,
                    &[&key.0, &ch.from, &ch.to],
                    "replicated components must be collocated in every zone".into(),
                );
            }
        }
    }

    // Proximity for chain subscriptions.
    let subs: BTreeMap<(&str, &str), &crate::plan::Subscription> =
        plan.subscriptions.iter().map(|s| ((s.service.as_str(), s.id.as_str()), s)).collect();
    for pl in &plan.placements {
        let Some(sub) = &pl.subscription else { continue };
        let (Some(si), Some(zi)) = (p.service_index(&pl.service), p.zone_index(&pl.zone)) else { continue };
        let Some(ci) = p.services[si].service.components.iter().position(|x| x.name == pl.component) else { continue };
        let comp = &p.services[si].service.components[ci];
        if comp.user_side || comp.placement.pin.is_some() {
            continue;
        }
        let Some(bound) = p.component_proximity(si, ci) else { continue };
        let Some(s) = subs.get(&(pl.service.as_str(), sub.as_str())) else {
            c.v(
                ViolationKind::Proximity,
                &[&pl.service, sub, &pl.component],
                "no subscription record says where the user is".into(),
            );
            continue;
        };
        let lat = match (&s.region, &s.user_zone) {
            (Some(r), _) => p.region_index(r).map(|ri| p.region_rtt[ri][zi]),
            (None, Some(z)) => p.zone_index(z).map(|uz| p.zone_rtt(uz, zi)),
            _ => None,
        };
        match lat {
            Some(l) if l <= bound + TOL => {}
            Some(l) => c.v(
                ViolationKind::Proximity,
                &[&pl.service, sub, &pl.component, &pl.zone],
                format!("{l} ms from the user, class allows {bound} ms"),
            ),
            None => c.v(
                ViolationKind::Proximity,
                &[&pl.service, sub, &pl.component],
                "the user's location is unknown".into(),
            ),
        }
    }

    // Assignments: coverage, R_max, slots per (service, zone), utilities.
    let mut terms = BTreeMap::new();
    if !plan.assignments.is_empty() {
        let mut by_pair: BTreeMap<(usize, usize), Vec<&crate::plan::Assignment>> = BTreeMap::new();
        let mut assigned: BTreeMap<(usize, usize), f64> = BTreeMap::new();
        let mut cost = 0.0;
        for a in &plan.assignments {
            let subj = [a.service.as_str(), a.region.as_str(), a.zone.as_str()];
            let (Some(si), Some(ri), Some(zi)) =
                (p.service_index(&a.service), p.region_index(&a.region), p.zone_index(&a.zone))
            else {
                c.v(ViolationKind::UnknownName, &subj, "unknown service, region or zone".into());
                continue;
            };
            by_pair.entry((si, ri)).or_default().push(a);
            *assigned.entry((si, zi)).or_default() += a.slots;
            let sd = &p.services[si];
            let spi = f64::from(sd.slots_per_instance);
            let deploy = p.zones[zi].price.hourly(&sd.instance_resources) / spi;
            let mbps = p
                .demands
                .iter()
                .find(|d| d.service == si && d.region == ri)
                .map(|d| d.session_mbps)
                .unwrap_or(sd.session_mbps);
            cost += a.slots * (deploy + p.zones[zi].price.egress_per_gb.amount() * mbps_to_gb_per_hour(mbps));
            let rtt = p.region_rtt[ri][zi];
            if !close(rtt, a.latency_ms, TERM_TOL) {
                c.v(
                    ViolationKind::PathLatency,
                    &subj,
                    format!("claims {} ms, the problem's latency is {rtt} ms", a.latency_ms),
                );
            }
            if let Some(bound) = sd.proximity_ms {
                if rtt > bound + TOL {
                    c.v(ViolationKind::Proximity, &subj, format!("{rtt} ms from the region, class allows {bound} ms"));
                }
            }
        }
        let services_placed: BTreeSet<&str> = plan.placements.iter().map(|pl| pl.service.as_str()).collect();
        for ((si, zi), slots) in &assigned {
            if !services_placed.contains(p.services[*si].name.as_str()) {
                continue; // service selection: capacity is running instances the plan does not list
            }
            let cap = entry_slots.get(&(*si, *zi)).copied().unwrap_or(0.0);
            if *slots > cap + TOL * cap.max(1.0) {
                c.v(
                    ViolationKind::SlotCapacity,
                    &[&p.services[*si].name, &p.zones[*zi].name],
                    format!("{slots} slots assigned, the entry component's instances there offer {cap}"),
                );
            }
        }
        let (mut min_u, mut total_u, mut max_u, mut worst) = (f64::INFINITY, 0.0, 0.0, 0.0f64);
        // Chains are served per subscription (and may reject one), not by shares.
        for d in &p.demands {
            let (sname, rname) = (p.services[d.service].name.as_str(), p.regions[d.region].name.as_str());
            if crate::auto::method_of(&p.services[d.service].service) == crate::auto::Method::Chain {
                continue;
            }
            let rows = by_pair.remove(&(d.service, d.region)).unwrap_or_default();
            let share: f64 = rows.iter().map(|a| a.share).sum();
            if (share - 1.0).abs() > TOL {
                c.v(ViolationKind::Coverage, &[sname, rname], format!("shares sum to {share}, expected 1"));
            }
            let mut lat = 0.0;
            for a in &rows {
                let zi = p.zone_index(&a.zone).unwrap_or(0);
                let rtt = p.region_rtt[d.region][zi];
                if rtt > d.sla.r_max.as_millis() + TOL {
                    c.v(
                        ViolationKind::RMax,
                        &[sname, rname, &a.zone],
                        format!("{rtt} ms is beyond R_max {} ms", d.sla.r_max.as_millis()),
                    );
                }
                if !close(a.slots, a.share * d.slots, TOL) {
                    c.v(
                        ViolationKind::Coverage,
                        &[sname, rname, &a.zone],
                        format!("{} slots for a share {} of {} slots", a.slots, a.share, d.slots),
                    );
                }
                lat += a.share * rtt;
            }
            if share > 0.0 {
                lat /= share;
            }
            let w = p.regions[d.region].weight;
            match d.sla.utility(lat) {
                Some(u) => {
                    min_u = min_u.min(u);
                    total_u += w * u;
                    for a in &rows {
                        if let Some(claimed) = a.utility {
                            if !close(claimed, u, TERM_TOL) {
                                c.v(
                                    ViolationKind::TermMismatch,
                                    &[sname, rname, &a.zone],
                                    format!("claims utility {claimed}, recomputed {u}"),
                                );
                            }
                        }
                    }
                }
                None => c.v(ViolationKind::RMax, &[sname, rname], format!("average latency {lat} ms is beyond R_max")),
            }
            max_u += w * d.sla.max_utility();
            worst = worst.max(lat);
        }
        for ((si, ri), _) in by_pair {
            c.v(
                ViolationKind::Coverage,
                &[&p.services[si].name, &p.regions[ri].name],
                "assignment for a region without demand".into(),
            );
        }
        if min_u.is_finite() {
            terms.insert("min_utility".to_string(), min_u);
        }
        terms.insert("total_utility".to_string(), total_u);
        if max_u > 0.0 {
            terms.insert("utility_percent".to_string(), total_u / max_u * 100.0);
        }
        terms.insert("worst_latency_ms".to_string(), worst);
        terms.insert("cost".to_string(), cost);
    }
    if !plan.placements.is_empty() {
        terms.insert("instance_cost".to_string(), instance_cost);
    }
    if !plan.paths.is_empty() {
        terms.insert("delay_ms".to_string(), delay_sum);
    }
    if plan.placements.iter().any(|pl| pl.host.is_some()) {
        terms.insert("used_servers".to_string(), placed_hosts.len() as f64);
    }

    let mut unchecked = Vec::new();
    for (name, claimed) in &plan.objective_terms {
        match terms.get(name) {
            Some(v) if !close(*v, *claimed, TERM_TOL) => {
                c.v(ViolationKind::TermMismatch, &[name], format!("plan claims {claimed}, recomputed {v}"));
            }
            Some(_) => {}
            None => unchecked.push(name.clone()),
        }
    }
    CheckReport { violations: c.out, terms, unchecked_terms: unchecked }
}

/// [`check`], and for a plan made under a cost budget (FUSION's `TOTAL_COST`, `--budget`, the
/// curve's budget points) that its recomputed `cost` is within the budget.
pub fn check_within_budget(problem: &Problem, plan: &Plan, budget: Option<f64>) -> CheckReport {
    let mut report = check(problem, plan);
    let Some(budget) = budget else { return report };
    let over = |cost: f64| cost > budget + TERM_TOL * budget.abs().max(1.0);
    match report.terms.get("cost").copied() {
        Some(cost) if over(cost) => report.violations.push(Violation {
            kind: ViolationKind::Budget,
            subject: vec!["cost".into()],
            detail: format!("recomputed cost {cost} per hour is above the budget {budget}"),
        }),
        Some(_) => {}
        None if plan.assignments.is_empty() => {}
        None => report.violations.push(Violation {
            kind: ViolationKind::Budget,
            subject: vec!["cost".into()],
            detail: format!("no cost could be recomputed to compare with the budget {budget}"),
        }),
    }
    report
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
