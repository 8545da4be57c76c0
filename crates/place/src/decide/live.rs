//! What the running domain knows, as plain data, and the placement problem of one service
//! built from it.
//!
//! A [`LiveState`] is a snapshot: the infrastructure as registered (every host with its full
//! capacity, links with their full bandwidth, prices, power, latencies, proximity classes),
//! which zones are up, what each zone last reported free on each host and which instances
//! it runs, the user regions, the knowledge base, and every service with its demand and its
//! current target. The domain builds it from its store and the zones' heartbeats; `zonal plan`
//! builds it from files ([`LiveState::from_bundle`]); `zonal plan --context` fetches the
//! domain's; the simulator builds it from its world. The decision depends on nothing else.
//!
//! [`LiveState::bundle_for`] turns it into the bundle of one service, against the capacity the
//! *other* services leave:
//!
//! * **Hosts.** A host's capacity is what its zone last reported free, plus what the service's
//!   own instances on it hold (they can be reused); a host of a zone that is down, or that the
//!   zone reports unavailable, takes nothing. Without a report, the capacity less what the
//!   recorded instances of other services reserve.
//! * **Links.** A link's bandwidth is what the other services' reserved channel paths leave,
//!   in the more loaded direction (the placement problem has one bandwidth per link, used in
//!   each direction; taking the smaller residual keeps both directions safe).
//! * **Demand.** The service's demand entries per region (declared and measured, as the caller
//!   combined them). Without any, a domain-wide slot count is spread over the known user
//!   regions by their weights ([`LiveState::regional_demand`]); without regions either, the
//!   service is placed for its slot count (or minimum instances) alone.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use zonal_model::{
    Allocation, Bundle, Demand, DemandEntry, Document, Infrastructure, KnowledgeBase, Region, Resources, Service,
    TimeOfDay,
};

/// One instance a zone reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveInstance {
    pub service: String,
    pub component: String,
    pub zone: String,
    pub host: String,
    pub resources: Resources,
}

/// A zone's offer for a service (FUSION §2.7.4), as the offer stage uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferTerms {
    pub zone: String,
    /// Per offered environment (host): the evaluator's score in [0, 1] and the slots offered.
    pub environments: Vec<OfferedHost>,
}

/// One environment (host) of an offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferedHost {
    pub host: String,
    pub score: f64,
    pub slots: u32,
    /// Price per slot-hour quoted.
    pub price: f64,
}

/// A registered service as the decision sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveService {
    pub service: Service,
    /// Session slots wanted per region (declared demand documents and measured sessions,
    /// combined by the caller).
    #[serde(default)]
    pub demand: Vec<DemandEntry>,
    /// Session slots wanted domain-wide without a region (`PUT /1.0/services/{s}/slots`);
    /// 0: the components' minimum instances.
    #[serde(default)]
    pub slots: u32,
    /// What the domain deploys now (none before the first decision).
    #[serde(default)]
    pub running: Option<Allocation>,
    /// The valid offers of the service's last offer round (services with an evaluator).
    #[serde(default)]
    pub offers: Option<Vec<OfferTerms>>,
}

/// A snapshot of the running domain (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    pub infrastructure: Infrastructure,
    /// Zones that are down (missed heartbeats): nothing is placed there.
    #[serde(default)]
    pub unavailable: BTreeSet<String>,
    /// Free capacity per zone and host as last reported.
    #[serde(default)]
    pub free: BTreeMap<String, BTreeMap<String, Resources>>,
    /// Instances the zones report.
    #[serde(default)]
    pub instances: Vec<LiveInstance>,
    #[serde(default)]
    pub regions: Vec<Region>,
    #[serde(default)]
    pub knowledge_base: Option<KnowledgeBase>,
    #[serde(default)]
    pub services: Vec<LiveService>,
    /// The time of day demand profiles are read at; their peak when absent.
    #[serde(default)]
    pub at: Option<TimeOfDay>,
}

impl LiveState {
    /// The state of an empty domain running `bundle`'s infrastructure, with its services and
    /// demand registered and nothing running (what `zonal plan` decides on).
    pub fn from_bundle(bundle: &Bundle) -> LiveState {
        let demand = bundle.demand();
        let services = bundle
            .services()
            .map(|s| LiveService {
                service: s.clone(),
                demand: demand.entries.iter().filter(|e| e.service == s.name).cloned().collect(),
                slots: 0,
                running: None,
                offers: None,
            })
            .collect();
        LiveState {
            infrastructure: bundle.infrastructure(),
            regions: demand.regions,
            knowledge_base: bundle.knowledge_bases().next().cloned(),
            services,
            ..Default::default()
        }
    }

    pub fn service(&self, name: &str) -> Option<&LiveService> {
        self.services.iter().find(|s| s.service.name == name)
    }

    /// The regional demand of `s`: its entries; else its domain-wide slots spread over the
    /// user regions by weight (largest remainder, so the slots add up); else nothing.
    pub fn regional_demand(&self, s: &LiveService) -> Vec<DemandEntry> {
        let mut entries: Vec<DemandEntry> = s
            .demand
            .iter()
            .filter(|e| self.regions.iter().any(|r| r.name == e.region))
            .filter(|e| self.slots_of(e) > 0)
            .cloned()
            .collect();
        if !entries.is_empty() || s.slots == 0 || self.regions.is_empty() {
            entries.sort_by(|a, b| a.region.cmp(&b.region));
            return entries;
        }
        let total: f64 = self.regions.iter().map(|r| r.weight.max(0.0)).sum();
        if total <= 0.0 {
            return Vec::new();
        }
        let mut shares: Vec<(String, u32, f64)> = self
            .regions
            .iter()
            .map(|r| {
                let exact = f64::from(s.slots) * r.weight.max(0.0) / total;
                (r.name.clone(), exact.floor() as u32, exact - exact.floor())
            })
            .collect();
        let given: u32 = shares.iter().map(|x| x.1).sum();
        let mut order: Vec<usize> = (0..shares.len()).collect();
        order.sort_by(|&a, &b| shares[b].2.total_cmp(&shares[a].2).then(shares[a].0.cmp(&shares[b].0)));
        for &i in order.iter().take(s.slots.saturating_sub(given) as usize) {
            shares[i].1 += 1;
        }
        let mut out: Vec<DemandEntry> = shares
            .into_iter()
            .filter(|x| x.1 > 0)
            .map(|(region, n, _)| DemandEntry::constant(&s.service.name, &region, n))
            .collect();
        out.sort_by(|a, b| a.region.cmp(&b.region));
        out
    }

    /// Slots of one demand entry at the state's time of day (its peak without one).
    pub fn slots_of(&self, e: &DemandEntry) -> u32 {
        match self.at {
            Some(t) => e.slots.at(t),
            None => e.slots.peak(),
        }
    }

    /// Free capacity of every host for `service` (see the module docs): zone → host → free.
    pub fn capacity_for(&self, service: &str) -> BTreeMap<(String, String), Resources> {
        // Instances by host, once: (own, others') resources per (zone, host).
        let mut held: BTreeMap<(&str, &str), (Resources, Resources)> = BTreeMap::new();
        for i in &self.instances {
            let e = held.entry((i.zone.as_str(), i.host.as_str())).or_default();
            if i.service == service {
                e.0.add_scaled(&i.resources, 1);
            } else {
                e.1.add_scaled(&i.resources, 1);
            }
        }
        let none = (Resources::new(), Resources::new());
        let mut out = BTreeMap::new();
        for z in &self.infrastructure.zones {
            let down = self.unavailable.contains(&z.name);
            for h in &z.hosts {
                let key = (z.name.clone(), h.name.clone());
                if down || !h.available {
                    out.insert(key, Resources::new());
                    continue;
                }
                let (own, others) = held.get(&(z.name.as_str(), h.name.as_str())).unwrap_or(&none);
                let free = match self.free.get(&z.name).and_then(|hs| hs.get(&h.name)) {
                    Some(f) => {
                        let mut f = f.clone();
                        f.add_scaled(own, 1);
                        f
                    }
                    None => {
                        let mut f = h.capacity.clone();
                        f.sub_scaled(others, 1);
                        f
                    }
                };
                out.insert(key, clamp_to(&free, &h.capacity));
            }
        }
        out
    }

    /// Bandwidth the other services' channel paths reserve per directed link (Mbit/s).
    pub fn reserved_links(&self, besides: &str) -> BTreeMap<(String, String), f64> {
        let mut out: BTreeMap<(String, String), f64> = BTreeMap::new();
        for s in self.services.iter().filter(|s| s.service.name != besides) {
            if let Some(a) = &s.running {
                for (k, v) in a.link_load() {
                    *out.entry(k).or_default() += v;
                }
            }
        }
        out
    }

    /// The bundle of one service against the capacity the others leave (see the module
    /// docs), with `service` standing for the registered one (the pipeline's stages may
    /// have adjusted it) and `entries` its regional demand.
    pub fn bundle_for(&self, service: &Service, entries: &[DemandEntry]) -> Bundle {
        let mut infra = self.infrastructure.clone();
        let capacity = self.capacity_for(&service.name);
        for z in &mut infra.zones {
            for h in &mut z.hosts {
                if let Some(c) = capacity.get(&(z.name.clone(), h.name.clone())) {
                    h.available = h.available && !self.unavailable.contains(&z.name);
                    h.capacity = c.clone();
                }
            }
        }
        let reserved = self.reserved_links(&service.name);
        for l in &mut infra.links {
            if let Some(bw) = l.bandwidth {
                let fwd = reserved.get(&(l.from.clone(), l.to.clone())).copied().unwrap_or(0.0);
                let back = reserved.get(&(l.to.clone(), l.from.clone())).copied().unwrap_or(0.0);
                let left = (bw.mbps() - fwd.max(back)).max(0.0);
                l.bandwidth = Some(zonal_model::Bandwidth::from_mbps(left));
            }
        }
        let used: BTreeSet<&str> = entries.iter().map(|e| e.region.as_str()).collect();
        let demand = Demand {
            name: format!("{}-demand", service.name),
            regions: self.regions.iter().filter(|r| used.contains(r.name.as_str())).cloned().collect(),
            entries: entries.to_vec(),
        };
        Bundle::new(vec![Document::Infrastructure(infra), Document::Service(service.clone()), Document::Demand(demand)])
    }
}

impl LiveState {
    /// The state after `service`'s target becomes `target` (a decision carried out): its
    /// instances are those of the target's hosts (zone-level counts where the target names no
    /// host are left out: nothing says which host they take), the capacity they take is gone
    /// from the reported free capacity, and its `running` is the target. What `zonal plan
    /// --context` and the simulator use to decide several services in a row.
    pub fn assume(&mut self, service: &str, target: &Allocation) {
        let Some(si) = self.services.iter().position(|s| s.service.name == service) else { return };
        let svc = self.services[si].service.clone();
        let mut released: Vec<LiveInstance> = Vec::new();
        self.instances.retain(|i| {
            if i.service == service {
                released.push(i.clone());
                false
            } else {
                true
            }
        });
        for i in released {
            if let Some(f) = self.free.get_mut(&i.zone).and_then(|h| h.get_mut(&i.host)) {
                f.add_scaled(&i.resources, 1);
            }
        }
        for (zone, comps) in &target.hosts {
            for (comp, hosts) in comps {
                let resources = target
                    .overrides
                    .get(comp)
                    .and_then(|o| o.resources.clone())
                    .or_else(|| svc.component(comp).map(|c| c.resources.clone()))
                    .unwrap_or_default();
                for (host, n) in hosts {
                    for _ in 0..*n {
                        self.instances.push(LiveInstance {
                            service: service.to_string(),
                            component: comp.clone(),
                            zone: zone.clone(),
                            host: host.clone(),
                            resources: resources.clone(),
                        });
                        if let Some(f) = self.free.get_mut(zone).and_then(|h| h.get_mut(host)) {
                            f.sub_scaled(&resources, 1);
                        }
                    }
                }
            }
        }
        self.services[si].running = Some(target.clone());
    }
}

/// `r` with no amount above `cap`'s (a report racing an instance start can overshoot).
fn clamp_to(r: &Resources, cap: &Resources) -> Resources {
    let mut out = Resources::new();
    for name in cap.names() {
        let unit = cap.0.get(name).map(|a| a.unit);
        if let Some(unit) = unit {
            let v = r.get(name).min(cap.get(name));
            out = out.with(name, zonal_model::Amount { value: v, unit });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use zonal_model::ReservedPath;

    #[test]
    fn capacity_for_adds_back_the_services_own_instances_and_drops_down_zones() {
        let b = line_bundle(2, 1);
        let mut st = LiveState::from_bundle(&b);
        let z0 = st.infrastructure.zones[0].name.clone();
        let h0 = st.infrastructure.zones[0].hosts[0].name.clone();
        let cap = st.infrastructure.zones[0].hosts[0].capacity.clone();
        let one = res(1, 1);
        let mut reported = cap.clone();
        reported.sub_scaled(&one, 2);
        st.free.entry(z0.clone()).or_default().insert(h0.clone(), reported.clone());
        for s in ["svc", "other"] {
            st.instances.push(LiveInstance {
                service: s.into(),
                component: "c".into(),
                zone: z0.clone(),
                host: h0.clone(),
                resources: one.clone(),
            });
        }
        let for_svc = st.capacity_for("svc");
        let mut want = reported.clone();
        want.add_scaled(&one, 1);
        assert_eq!(for_svc[&(z0.clone(), h0.clone())], want);
        st.unavailable.insert(z0.clone());
        assert!(st.capacity_for("svc")[&(z0, h0)].is_empty());
    }

    #[test]
    fn slots_spread_over_regions_by_weight_and_add_up() {
        let b = line_bundle(2, 3);
        let mut st = LiveState::from_bundle(&b);
        for (i, r) in st.regions.iter_mut().enumerate() {
            r.weight = [3.0, 2.0, 1.0][i];
        }
        let mut s = st.services[0].clone();
        s.demand.clear();
        s.slots = 10;
        let d = st.regional_demand(&s);
        let total: u32 = d.iter().map(|e| st.slots_of(e)).sum();
        assert_eq!(total, 10);
        assert_eq!(st.slots_of(&d[0]), 5, "3/6 of 10");
    }

    #[test]
    fn other_services_paths_reserve_link_bandwidth() {
        let b = line_bundle(2, 1);
        let mut st = LiveState::from_bundle(&b);
        let (a, z) = (st.infrastructure.links[0].from.clone(), st.infrastructure.links[0].to.clone());
        st.infrastructure.links[0].bandwidth = Some(zonal_model::Bandwidth::from_mbps(100.0));
        let mut alloc = Allocation::default();
        alloc.paths.push(ReservedPath {
            from: "x".into(),
            to: "y".into(),
            zones: vec![a.clone(), z.clone()],
            mbps: 30.0,
            latency_ms: 1.0,
            copies: 2,
        });
        st.services.push(LiveService {
            service: Service { name: "other".into(), ..Default::default() },
            demand: vec![],
            slots: 0,
            running: Some(alloc),
            offers: None,
        });
        let svc = st.services[0].service.clone();
        let bundle = st.bundle_for(&svc, &[]);
        let bw = bundle.infrastructure().links[0].bandwidth.map(|b| b.mbps());
        assert_eq!(bw, Some(40.0));
    }
}
