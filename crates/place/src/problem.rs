//! From a [`Bundle`] to the numbers the placement algorithms need. Pure: no I/O.
//!
//! [`Problem::from_bundle`] indexes zones, hosts, links, regions, services and demand (each
//! sorted by name, so every index — and everything derived from it — is deterministic) and
//! precomputes:
//!
//! * **Zone → zone one-way delay** over the link graph (Dijkstra from every zone; ties broken
//!   by zone index). A link's delay is its declared `latency`, else
//!   [`LatencyModel::link_delay`] of the great-circle distance between its zones when both
//!   have a location, else the model's `per_hop` delay alone (a note says so).
//! * **Region → zone round-trip time** ([`Problem::region_rtt`]), in this order of preference:
//!   a measured RTT from `Infrastructure.latencies` (either direction); else
//!   [`LatencyModel::user_rtt`] of the region–zone distance when both have a location; else,
//!   when the region has an `attach` zone, `access + 2 × one-way shortest-path delay` from the
//!   attach zone; else unknown (`f64::INFINITY`, which every algorithm treats as unreachable).
//! * **Slot capacity per (service, zone)** ([`Problem::slot_capacity`]): the number of whole
//!   service instances that fit in the zone's available capacity — the summed capacity of the
//!   zone's *available* hosts that have every feature the service's components require —
//!   divided (per resource, rounded down, minimum over resources) by one instance's resources,
//!   where one instance of a composite is one instance of each non-user-side component (FUSION
//!   year 2 deploys a composite whole inside one zone) other than the service's evaluator
//!   component (evaluators run per candidate zone for the offer flow, not per instance). That count is capped by the entry
//!   component's `scaling.max_instances` (a per-zone bound; for a composite, the smallest cap
//!   of its placed components, since each composite instance has one of each) and multiplied by the entry
//!   component's `slots.per_instance`. It is zero where a component's `zones`, `avoid_zones`,
//!   `pin` or required features exclude the zone. Capacity is aggregated per zone, not
//!   bin-packed per host: the domain decides across zones, a zone decides inside itself.
//! * **Deploy cost per slot-hour** ([`Problem::deploy_cost`]): the zone's
//!   [`zonal_model::Price::hourly`] of one instance's resources divided by the entry
//!   component's slots per instance (FUSION's DeployCost is linear in slots, ambiguity 7).
//! * **Bandwidth cost per slot-hour** ([`DemandData::bandwidth_cost`]): the zone's
//!   `egress_per_gb` times the session bandwidth in GB per hour,
//!   `bits/s × 3600 s / 8 bits per byte / 10⁹ bytes per GB` (decimal GB, as clouds bill).
//!
//! Demand is read at one time of day ([`ProblemOptions::at`]) or, by default, at its peak.
//! User-side components (INPUT user apps) consume no host resources and are never counted in
//! an instance's resources.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use serde::{Deserialize, Serialize};
use zonal_model::{Bundle, Component, Location, Price, Resources, Service, TimeOfDay, UtilitySla};

use crate::error::PlaceError;

/// How to read a bundle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProblemOptions {
    /// Time of day at which demand is read; its peak when `None`.
    pub at: Option<TimeOfDay>,
}

/// A zone as the algorithms see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneData {
    pub name: String,
    pub location: Option<Location>,
    pub price: Price,
    /// Indices into [`Problem::hosts`].
    pub hosts: Vec<usize>,
    /// Summed capacity of the zone's available hosts.
    pub capacity: Resources,
}

/// A host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostData {
    pub name: String,
    pub zone: usize,
    pub capacity: Resources,
    pub features: BTreeMap<String, String>,
    pub available: bool,
}

/// A link between two zones; usable in both directions with `bandwidth_mbps` each way.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkData {
    pub a: usize,
    pub b: usize,
    /// One-way delay in milliseconds.
    pub delay_ms: f64,
    /// Capacity per direction in Mbit/s; unlimited when `None`.
    pub bandwidth_mbps: Option<f64>,
}

/// A user region.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionData {
    pub name: String,
    pub location: Option<Location>,
    pub weight: f64,
    pub attach: Option<usize>,
}

/// A service with what placement derives from it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceData {
    pub name: String,
    pub service: Service,
    /// Index of the entry component in `service.components`.
    pub entry: usize,
    /// Components Zonal places (all but user-side ones), indices into `service.components`.
    pub placed: Vec<usize>,
    /// Resources of one instance of the whole service (sum over `placed`).
    pub instance_resources: Resources,
    /// Entry component's slots per instance (at least 1).
    pub slots_per_instance: u32,
    /// Per-zone instance cap: the smallest `scaling.max_instances` of the placed components
    /// (one composite instance is one instance of each; for an atomic service, the entry's).
    pub max_instances: u32,
    pub sla: UtilitySla,
    /// Per-session bandwidth in Mbit/s (0 when not given).
    pub session_mbps: f64,
    /// Zones the service's placement constraints allow (per zone index).
    pub allowed: Vec<bool>,
    /// Proximity bound (ms, round trip) for the whole service: the tightest class of its
    /// placed components (component class, else the service's); `None` when none declares one.
    pub proximity_ms: Option<f64>,
    /// The service-level proximity class bound alone.
    pub service_proximity_ms: Option<f64>,
    /// How much each host (index into [`Problem::hosts`]) suits the service, in [0, 1]: an
    /// evaluator's scores of the environments its zones offered (FUSION §2.7.4). `None`: no
    /// evaluator spoke, every host suits equally. Set by the run-time pipeline's offer stage.
    pub host_preference: Option<Vec<f64>>,
}

/// Slots of one service wanted by one region.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandData {
    pub service: usize,
    pub region: usize,
    pub slots: f64,
    pub sla: UtilitySla,
    /// Session bandwidth in Mbit/s.
    pub session_mbps: f64,
}

/// Converts a session bandwidth in Mbit/s to GB per hour: `Mbit/s × 10⁶ × 3600 / 8 / 10⁹`.
pub fn mbps_to_gb_per_hour(mbps: f64) -> f64 {
    mbps * 1e6 * 3600.0 / 8.0 / 1e9
}

impl DemandData {
    /// Bandwidth cost per slot-hour at a zone: `egress_per_gb × session GB per hour`.
    pub fn bandwidth_cost(&self, zone: &ZoneData) -> f64 {
        zone.price.egress_per_gb.amount() * mbps_to_gb_per_hour(self.session_mbps)
    }
}

/// Everything the placement algorithms need, indexed and precomputed.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub zones: Vec<ZoneData>,
    pub hosts: Vec<HostData>,
    pub links: Vec<LinkData>,
    pub regions: Vec<RegionData>,
    pub services: Vec<ServiceData>,
    /// Sorted by (service name, region name).
    pub demands: Vec<DemandData>,
    /// `[region][zone]` round-trip time in ms (`INFINITY` when unknown).
    pub region_rtt: Vec<Vec<f64>>,
    /// `[zone][zone]` one-way shortest-path delay in ms (`INFINITY` when disconnected).
    pub zone_delay: Vec<Vec<f64>>,
    /// `[zone][zone]` predecessor of the destination on the shortest path from the source.
    zone_pred: Vec<Vec<Option<usize>>>,
    /// `[service][zone]` slot capacity (see module docs).
    pub slot_capacity: Vec<Vec<f64>>,
    /// `[service][zone]` deploy cost per slot-hour.
    pub deploy_cost: Vec<Vec<f64>>,
    /// Proximity classes in force, name → round-trip bound in ms.
    pub proximity_classes: BTreeMap<String, f64>,
    pub latency_model: zonal_model::LatencyModel,
    /// Assumptions made while building (fallbacks used).
    pub notes: Vec<String>,
}

fn host_has_features(host: &HostData, requires: &BTreeMap<String, String>) -> bool {
    zonal_model::rules::has_features(&host.features, requires)
}

#[derive(Copy, Clone, PartialEq)]
struct HeapItem {
    dist: f64,
    node: usize,
}
impl Eq for HeapItem {}
impl Ord for HeapItem {
    fn cmp(&self, other: &Self) -> Ordering {
        other.dist.total_cmp(&self.dist).then_with(|| other.node.cmp(&self.node))
    }
}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Dijkstra from `source` over an adjacency list of (neighbour, delay).
fn dijkstra(adj: &[Vec<(usize, f64)>], source: usize) -> (Vec<f64>, Vec<Option<usize>>) {
    let n = adj.len();
    let mut dist = vec![f64::INFINITY; n];
    let mut pred = vec![None; n];
    let mut heap = BinaryHeap::new();
    dist[source] = 0.0;
    heap.push(HeapItem { dist: 0.0, node: source });
    while let Some(HeapItem { dist: d, node }) = heap.pop() {
        if d > dist[node] {
            continue;
        }
        for &(next, w) in &adj[node] {
            let nd = d + w;
            if nd < dist[next] {
                dist[next] = nd;
                pred[next] = Some(node);
                heap.push(HeapItem { dist: nd, node: next });
            }
        }
    }
    (dist, pred)
}

impl Problem {
    /// Builds the problem from a bundle (all infrastructure, service and demand documents).
    pub fn from_bundle(bundle: &Bundle, options: &ProblemOptions) -> Result<Problem, PlaceError> {
        let infra = bundle.infrastructure();
        let demand = bundle.demand();
        let mut notes = Vec::new();

        // Zones and hosts, sorted by name.
        let mut zone_list: Vec<&zonal_model::Zone> = infra.zones.iter().collect();
        zone_list.sort_by(|a, b| a.name.cmp(&b.name));
        let zone_index: BTreeMap<&str, usize> =
            zone_list.iter().enumerate().map(|(i, z)| (z.name.as_str(), i)).collect();
        if zone_index.len() != zone_list.len() {
            return Err(PlaceError::input("infrastructure.zones", "zone names must be unique"));
        }
        let mut zones = Vec::new();
        let mut hosts = Vec::new();
        for (zi, z) in zone_list.iter().enumerate() {
            let mut host_list: Vec<&zonal_model::Host> = z.hosts.iter().collect();
            host_list.sort_by(|a, b| a.name.cmp(&b.name));
            let mut idx = Vec::new();
            for h in host_list {
                idx.push(hosts.len());
                hosts.push(HostData {
                    name: h.name.clone(),
                    zone: zi,
                    capacity: h.capacity.clone(),
                    features: h.features.clone(),
                    available: h.available,
                });
            }
            zones.push(ZoneData {
                name: z.name.clone(),
                location: z.location,
                price: z.price.clone(),
                hosts: idx,
                capacity: z.capacity(),
            });
        }
        let zone_of = |name: &str, at: String| -> Result<usize, PlaceError> {
            zone_index.get(name).copied().ok_or_else(|| {
                PlaceError::input(
                    at,
                    format!("unknown zone {name:?}; expected one of the infrastructure's {} zones", zone_index.len()),
                )
            })
        };

        // Links.
        let model = infra.latency_model;
        let mut links = Vec::new();
        let mut per_hop_only = Vec::new();
        for (li, l) in infra.links.iter().enumerate() {
            let a = zone_of(&l.from, format!("infrastructure.links[{li}].from"))?;
            let b = zone_of(&l.to, format!("infrastructure.links[{li}].to"))?;
            let delay_ms = match (l.latency, zones[a].location, zones[b].location) {
                (Some(d), _, _) => d.as_millis(),
                (None, Some(la), Some(lb)) => model.link_delay(la.distance_km(&lb)).as_millis(),
                _ => {
                    per_hop_only.push(format!("{}–{}", l.from, l.to));
                    model.per_hop.as_millis()
                }
            };
            links.push(LinkData { a, b, delay_ms, bandwidth_mbps: l.bandwidth.map(|b| b.mbps()) });
        }
        links.sort_by_key(|x| (x.a.min(x.b), x.a.max(x.b)));
        if !per_hop_only.is_empty() {
            notes.push(format!(
                "{} link(s) have neither a latency nor located ends; their delay is the per-hop delay alone ({}): {}",
                per_hop_only.len(),
                model.per_hop,
                per_hop_only.join(", ")
            ));
        }

        // Shortest paths.
        let mut adj = vec![Vec::new(); zones.len()];
        for l in &links {
            adj[l.a].push((l.b, l.delay_ms));
            adj[l.b].push((l.a, l.delay_ms));
        }
        for a in &mut adj {
            a.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)));
        }
        let mut zone_delay = Vec::with_capacity(zones.len());
        let mut zone_pred = Vec::with_capacity(zones.len());
        for s in 0..zones.len() {
            let (d, p) = if links.is_empty() {
                let mut d = vec![f64::INFINITY; zones.len()];
                d[s] = 0.0;
                (d, vec![None; zones.len()])
            } else {
                dijkstra(&adj, s)
            };
            zone_delay.push(d);
            zone_pred.push(p);
        }

        // Regions.
        let mut region_list: Vec<&zonal_model::Region> = demand.regions.iter().collect();
        region_list.sort_by(|a, b| a.name.cmp(&b.name));
        let mut regions = Vec::new();
        for r in &region_list {
            let attach = match &r.attach {
                Some(z) => Some(zone_of(z, format!("demand.regions[{}].attach", r.name))?),
                None => None,
            };
            let weight = if r.weight.is_finite() && r.weight > 0.0 { r.weight } else { 1.0 };
            regions.push(RegionData { name: r.name.clone(), location: r.location, weight, attach });
        }
        let region_index: BTreeMap<&str, usize> =
            regions.iter().enumerate().map(|(i, r)| (r.name.as_str(), i)).collect();

        // Region → zone RTT.
        let measured = zonal_model::LatencyTable::new(&infra.latencies);
        let mut region_rtt = Vec::with_capacity(regions.len());
        let mut unknown = 0usize;
        for r in &regions {
            let mut row = Vec::with_capacity(zones.len());
            for (zi, z) in zones.iter().enumerate() {
                let rtt = if let Some(m) = measured.get(&r.name, &z.name) {
                    m
                } else if let (Some(lr), Some(lz)) = (r.location, z.location) {
                    model.user_rtt(lr.distance_km(&lz)).as_millis()
                } else if let Some(a) = r.attach {
                    model.access.as_millis() + 2.0 * zone_delay[a][zi]
                } else {
                    f64::INFINITY
                };
                if !rtt.is_finite() {
                    unknown += 1;
                }
                row.push(rtt);
            }
            region_rtt.push(row);
        }
        if unknown > 0 {
            notes.push(format!("{unknown} (region, zone) pair(s) have no known latency (no measurement, no locations, no attach path); they are treated as unreachable"));
        }

        // Proximity classes.
        let proximity_classes: BTreeMap<String, f64> =
            infra.proximity_classes().into_iter().map(|(k, v)| (k, v.as_millis())).collect();

        // Services.
        let mut service_list: Vec<&Service> = bundle.services().collect();
        service_list.sort_by(|a, b| a.name.cmp(&b.name));
        let mut services = Vec::new();
        for s in &service_list {
            services.push(Self::service_data(s, &zones, &hosts, &zone_index, &proximity_classes)?);
        }
        let service_index: BTreeMap<&str, usize> =
            services.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        if service_index.len() != services.len() {
            return Err(PlaceError::input("services", "service names must be unique"));
        }

        // Demand.
        let mut demands = Vec::new();
        let mut seen = BTreeSet::new();
        for (ei, e) in demand.entries.iter().enumerate() {
            let at = format!("demand.demand[{ei}]");
            let si = *service_index.get(e.service.as_str()).ok_or_else(|| {
                PlaceError::input(
                    format!("{at}.service"),
                    format!(
                        "unknown service {:?}; expected one of {:?}",
                        e.service,
                        service_index.keys().collect::<Vec<_>>()
                    ),
                )
            })?;
            let ri = *region_index.get(e.region.as_str()).ok_or_else(|| {
                PlaceError::input(
                    format!("{at}.region"),
                    format!(
                        "unknown region {:?} for service {:?}; expected a region defined under `regions`",
                        e.region, e.service
                    ),
                )
            })?;
            if !seen.insert((si, ri)) {
                return Err(PlaceError::input(
                    at,
                    format!("service {:?} has two demand entries for region {:?}; expected one", e.service, e.region),
                ));
            }
            let slots = match options.at {
                Some(t) => e.slots.at(t),
                None => e.slots.peak(),
            } as f64;
            let sla = e.sla.unwrap_or(services[si].sla);
            if let Some((field, msg)) = sla.problems().into_iter().next() {
                return Err(PlaceError::input(
                    format!("{at}.sla.{field}"),
                    format!("service {:?}, region {:?}: {msg}", e.service, e.region),
                ));
            }
            let session_mbps = e.session_bandwidth.map(|b| b.mbps()).unwrap_or(services[si].session_mbps);
            if slots > 0.0 {
                demands.push(DemandData { service: si, region: ri, slots, sla, session_mbps });
            }
        }
        demands.sort_by_key(|a| (a.service, a.region));

        // Slot capacity and deploy cost.
        let mut slot_capacity = Vec::with_capacity(services.len());
        let mut deploy_cost = Vec::with_capacity(services.len());
        for s in &services {
            let (caps, costs) = Self::capacity_and_cost(s, &zones, &hosts);
            slot_capacity.push(caps);
            deploy_cost.push(costs);
        }

        Ok(Problem {
            zones,
            hosts,
            links,
            regions,
            services,
            demands,
            region_rtt,
            zone_delay,
            zone_pred,
            slot_capacity,
            deploy_cost,
            proximity_classes,
            latency_model: model,
            notes,
        })
    }

    /// Slot capacity and deploy cost per zone of one service (see the module docs).
    fn capacity_and_cost(s: &ServiceData, zones: &[ZoneData], hosts: &[HostData]) -> (Vec<f64>, Vec<f64>) {
        let mut caps = Vec::with_capacity(zones.len());
        let mut costs = Vec::with_capacity(zones.len());
        let mut requires = BTreeMap::new();
        for &ci in &s.placed {
            requires.extend(s.service.components[ci].placement.requires.clone());
        }
        for (zi, z) in zones.iter().enumerate() {
            let cap = if s.allowed[zi] {
                let mut usable = Resources::new();
                for &h in &z.hosts {
                    if hosts[h].available && host_has_features(&hosts[h], &requires) {
                        usable.add_scaled(&hosts[h].capacity, 1);
                    }
                }
                let has_host = z.hosts.iter().any(|&h| hosts[h].available && host_has_features(&hosts[h], &requires));
                if has_host {
                    let n = usable.copies_of(&s.instance_resources).min(u64::from(s.max_instances));
                    n as f64 * f64::from(s.slots_per_instance)
                } else {
                    0.0
                }
            } else {
                0.0
            };
            caps.push(cap);
            costs.push(z.price.hourly(&s.instance_resources) / f64::from(s.slots_per_instance));
        }
        (caps, costs)
    }

    /// The problem with service `si` replaced by `service` (same name; a variant the run-time
    /// pipeline derives: fewer components, avoided zones, a proximity bound). Zones, hosts,
    /// links, regions and demand stay, so indices and residuals carry over. The evaluator's
    /// preferences stay too.
    pub fn replace_service(&self, si: usize, service: &Service) -> Result<Problem, PlaceError> {
        let mut q = self.clone();
        let zone_index: BTreeMap<&str, usize> =
            self.zones.iter().enumerate().map(|(i, z)| (z.name.as_str(), i)).collect();
        let mut data = Self::service_data(service, &self.zones, &self.hosts, &zone_index, &self.proximity_classes)?;
        data.host_preference = self.services[si].host_preference.clone();
        let (caps, costs) = Self::capacity_and_cost(&data, &self.zones, &self.hosts);
        q.services[si] = data;
        q.slot_capacity[si] = caps;
        q.deploy_cost[si] = costs;
        Ok(q)
    }

    fn service_data(
        s: &Service,
        zones: &[ZoneData],
        hosts: &[HostData],
        zone_index: &BTreeMap<&str, usize>,
        classes: &BTreeMap<String, f64>,
    ) -> Result<ServiceData, PlaceError> {
        let at = format!("service {:?}", s.name);
        if s.components.is_empty() {
            return Err(PlaceError::input(at, "expected at least one component"));
        }
        let entry_comp = s.entry_component().ok_or_else(|| {
            PlaceError::input(format!("{at}.entry"), format!("unknown entry component {:?}", s.entry))
        })?;
        let entry = s.components.iter().position(|c| c.name == entry_comp.name).unwrap_or(0);
        // The evaluator component is deployed per candidate zone by the evaluation flow, not
        // once per composite instance; user-side components are never placed.
        let evaluator = match &s.evaluator {
            Some(zonal_model::EvaluatorRef::Component { component }) => Some(component.as_str()),
            _ => None,
        };
        let placed: Vec<usize> = (0..s.components.len())
            .filter(|&i| !s.components[i].user_side && Some(s.components[i].name.as_str()) != evaluator)
            .collect();
        let mut instance_resources = Resources::new();
        for &ci in &placed {
            instance_resources.add_scaled(&s.components[ci].resources, 1);
        }
        let spi = entry_comp.slots.per_instance;
        if spi == 0 {
            return Err(PlaceError::input(
                format!("{at}.components.{}.slots.per_instance", entry_comp.name),
                "expected at least 1 session slot per instance, found 0",
            ));
        }
        let mut allowed = vec![true; zones.len()];
        for &ci in &placed {
            let c: &Component = &s.components[ci];
            let p = &c.placement;
            for list in [&p.zones, &p.avoid_zones] {
                for z in list {
                    if !zone_index.contains_key(z.as_str()) {
                        return Err(PlaceError::input(
                            format!("{at}.components.{}.placement", c.name),
                            format!("unknown zone {z:?}; expected one of the infrastructure's zones"),
                        ));
                    }
                }
            }
            if let Some(pin) = &p.pin {
                if !zone_index.contains_key(pin.zone.as_str()) {
                    return Err(PlaceError::input(
                        format!("{at}.components.{}.placement.pin", c.name),
                        format!("unknown zone {:?}; expected one of the infrastructure's zones", pin.zone),
                    ));
                }
            }
            for (zi, z) in zones.iter().enumerate() {
                let ok = zonal_model::rules::zone_allows(p, &z.name)
                    && z.hosts.iter().any(|&h| hosts[h].available && host_has_features(&hosts[h], &p.requires));
                allowed[zi] &= ok;
            }
        }
        let class_bound = |class: &String, at: String| -> Result<f64, PlaceError> {
            classes.get(class).copied().ok_or_else(|| {
                PlaceError::input(
                    at,
                    format!(
                        "unknown proximity class {class:?}; expected one of {:?}",
                        classes.keys().collect::<Vec<_>>()
                    ),
                )
            })
        };
        let service_bound = match &s.proximity {
            Some(class) => Some(class_bound(class, format!("{at}.proximity"))?),
            None => None,
        };
        // The tightest class of any placed component (its own, else the service's): a FUSION
        // composite runs whole in one zone, so every component is as far from the user.
        let mut proximity_ms: Option<f64> = None;
        for &ci in &placed {
            let c = &s.components[ci];
            let b = match &c.placement.proximity {
                Some(class) => Some(class_bound(class, format!("{at}.components.{}.placement.proximity", c.name))?),
                None => service_bound,
            };
            if let Some(b) = b {
                proximity_ms = Some(proximity_ms.map_or(b, |x: f64| x.min(b)));
            }
        }
        let max_instances = placed
            .iter()
            .map(|&ci| s.components[ci].scaling.max_instances)
            .min()
            .unwrap_or(entry_comp.scaling.max_instances);
        Ok(ServiceData {
            name: s.name.clone(),
            service: s.clone(),
            entry,
            placed,
            instance_resources,
            slots_per_instance: spi,
            max_instances,
            sla: s.sla.unwrap_or_default(),
            session_mbps: s.session_bandwidth.map(|b| b.mbps()).unwrap_or(0.0),
            allowed,
            proximity_ms,
            service_proximity_ms: service_bound,
            host_preference: None,
        })
    }

    pub fn zone_index(&self, name: &str) -> Option<usize> {
        self.zones.binary_search_by(|z| z.name.as_str().cmp(name)).ok()
    }
    pub fn region_index(&self, name: &str) -> Option<usize> {
        self.regions.binary_search_by(|r| r.name.as_str().cmp(name)).ok()
    }
    pub fn service_index(&self, name: &str) -> Option<usize> {
        self.services.binary_search_by(|s| s.name.as_str().cmp(name)).ok()
    }
    /// Index of host `host` in zone `zone`.
    pub fn host_index(&self, zone: usize, host: &str) -> Option<usize> {
        self.zones.get(zone)?.hosts.iter().copied().find(|&h| self.hosts[h].name == host)
    }
    /// Index of a host by name alone (host names are unique per zone; the first match wins).
    pub fn host_by_name(&self, host: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == host)
    }

    /// The shortest path (zone indices, both ends included) from `from` to `to`; `None` when
    /// they are disconnected. A zone to itself is `[from]`.
    pub fn shortest_path(&self, from: usize, to: usize) -> Option<Vec<usize>> {
        if !self.zone_delay.get(from)?.get(to)?.is_finite() {
            return None;
        }
        let mut path = vec![to];
        let mut cur = to;
        while cur != from {
            cur = self.zone_pred[from][cur]?;
            path.push(cur);
            if path.len() > self.zones.len() {
                return None;
            }
        }
        path.reverse();
        Some(path)
    }

    /// The link between zones `a` and `b` (either direction), if any.
    pub fn link_between(&self, a: usize, b: usize) -> Option<&LinkData> {
        self.links.iter().find(|l| (l.a == a && l.b == b) || (l.a == b && l.b == a))
    }

    /// Round-trip time between two zones over the link graph (`2 ×` one-way shortest path).
    pub fn zone_rtt(&self, a: usize, b: usize) -> f64 {
        2.0 * self.zone_delay[a][b]
    }

    /// The proximity bound (round trip, ms) of `class`.
    pub fn proximity_bound(&self, class: &str) -> Option<f64> {
        self.proximity_classes.get(class).copied()
    }

    /// The proximity class bound applying to component `ci` of service `si`: the component's
    /// own class, else the service's; `None` when neither declares one.
    pub fn component_proximity(&self, si: usize, ci: usize) -> Option<f64> {
        let s = &self.services[si];
        match &s.service.components[ci].placement.proximity {
            Some(c) => self.proximity_bound(c),
            None => s.service_proximity_ms,
        }
    }

    /// Total demand (slots) of service `si`.
    pub fn service_demand(&self, si: usize) -> f64 {
        self.demands.iter().filter(|d| d.service == si).map(|d| d.slots).sum()
    }
}

/// Does `host` have every feature in `requires` (`"*"` = present with any value)?
pub fn host_satisfies(host: &HostData, requires: &BTreeMap<String, String>) -> bool {
    host_has_features(host, requires)
}

impl Problem {
    /// The shared host rule ([`zonal_model::rules::host_allows`]) for host `h`: zone list,
    /// avoided zones, pin (zone and host), availability, required features.
    pub fn host_allows(&self, h: usize, c: &zonal_model::PlacementConstraints) -> bool {
        let host = &self.hosts[h];
        zonal_model::rules::host_allows(
            c,
            zonal_model::rules::HostView {
                zone: &self.zones[host.zone].name,
                name: &host.name,
                features: &host.features,
                available: host.available,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    #[test]
    fn latency_sources_in_order_of_preference() {
        let mut b = line_bundle(3, 2);
        // region r0 at zone z0's location, r1 attached to z2 without location, r2 measured.
        if let zonal_model::Document::Infrastructure(infra) = &mut b.documents[0] {
            infra.latencies.push(zonal_model::MeasuredLatency {
                from: "r2".into(),
                to: "z1".into(),
                rtt: zonal_model::Duration::from_millis(7.0),
            });
        }
        if let zonal_model::Document::Demand(d) = &mut b.documents[2] {
            d.regions.push(region("r1", None, Some("z2")));
            d.regions.push(region("r2", None, None));
        }
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        let (r0, r1, r2) =
            (p.region_index("r0").unwrap(), p.region_index("r1").unwrap(), p.region_index("r2").unwrap());
        assert!(p.region_rtt[r0][0] < 1e-9, "same place, no access delay");
        // r1: attach z2 → z0 is two links; RTT = 2 × one-way path delay.
        let one_way = p.zone_delay[2][0];
        assert!((p.region_rtt[r1][0] - 2.0 * one_way).abs() < 1e-9);
        assert_eq!(p.region_rtt[r2][1], 7.0);
        assert!(p.region_rtt[r2][0].is_infinite());
        assert_eq!(p.shortest_path(0, 2), Some(vec![0, 1, 2]));
        assert!(p.notes.iter().any(|n| n.contains("no known latency")));
    }

    #[test]
    fn slot_capacity_and_costs() {
        let b = line_bundle(2, 1);
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        // Each zone: 1 host of 4 cores / 8 GiB; the service needs 1 core + 1 GiB per instance,
        // max 10 instances, 4 slots each → min(4, 8, 10) × 4 = 16 slots.
        assert_eq!(p.slot_capacity[0], vec![16.0, 16.0]);
        // price: 0.04 per core-hour, 0.01 per GiB-hour → 0.05 per instance-hour / 4 slots.
        assert!((p.deploy_cost[0][0] - 0.0125).abs() < 1e-12);
        // 8 Mbit/s = 3.6 GB/h, at 0.02 per GB → 0.072 per slot-hour.
        assert!((mbps_to_gb_per_hour(8.0) - 3.6).abs() < 1e-12);
        let d = &p.demands[0];
        assert!((d.bandwidth_cost(&p.zones[0]) - 0.072).abs() < 1e-12);
    }

    #[test]
    fn placement_constraints_zero_the_capacity() {
        let mut b = line_bundle(3, 1);
        if let zonal_model::Document::Service(s) = &mut b.documents[1] {
            s.components[0].placement.avoid_zones = vec!["z1".into()];
            s.components[0].placement.requires.insert("gpu".into(), "*".into());
        }
        if let zonal_model::Document::Infrastructure(infra) = &mut b.documents[0] {
            infra.zones[2].hosts[0].features.insert("gpu".into(), "t4".into());
            infra.zones[1].hosts[0].features.insert("gpu".into(), "t4".into());
        }
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        assert_eq!(p.slot_capacity[0], vec![0.0, 0.0, 16.0]);
    }

    #[test]
    fn unknown_names_are_typed_errors() {
        let mut b = line_bundle(2, 1);
        if let zonal_model::Document::Demand(d) = &mut b.documents[2] {
            d.entries[0].service = "nope".into();
        }
        let e = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap_err();
        assert!(matches!(&e, PlaceError::Input { detail, .. } if detail.contains("nope")), "{e}");
    }
}
