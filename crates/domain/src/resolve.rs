//! Service resolution (FUSION §2.3.1, §2.9): which zone a client should open its session in,
//! and the session slots each user region can reach (§2.5.3.1).
//!
//! The offers are the zones' latest heartbeats: per service, the gateway endpoint and the
//! advertised slots (free + headroom, FUSION §2.8.3.2). A client's round-trip time to each
//! zone comes from the domain's geography (`PUT /1.0/geography`: user regions, measured
//! latencies, the latency model) by the rules of [`zonal_control::geography`]: measured
//! first, then distance, then via the region's attach zone. The pure
//! `zonal_control::slots::resolve` ranks zones by the service's utility of that latency (then
//! lower latency, then more slots) and takes the first with slots, so a full zone spills over
//! to the next. When no zone that runs the service has a slot, `slots::when_full` decides
//! between waiting (placement or deployment under way) and an on-demand deployment in the
//! best zone by utility that does not run it yet; the answer says which.

use zonal_control::geography::{
    change_problems, region_availability, Client, Estimator, Geography, RttSource, ZonePlace,
};
use zonal_control::place::{instance_counts, zone_feasible, PlacementDemand};
use zonal_control::slots::{resolve, when_full, Resolution, WhenFull, ZoneOffer};
use zonal_model::{Location, Service, UtilitySla};
use zonal_proto::wire::{GeographyChange, RegionServiceView, RegionView, Resolved, ZoneServiceView};
use zonal_proto::Principal;
use zonal_store::StoreExt;

pub use zonal_control::geography::Origin;

use crate::core::{DomainCore, T_META};
use crate::error::{DomainError, NoSlot};
use crate::services::{ServiceRecord, ServiceState, Target};
use crate::zones::{ReportedState, ZoneRecord, T_ZONES};

/// The key of the geography in the meta table.
const GEOGRAPHY: &str = "geography";

/// One available zone, and what its heartbeat says of one service.
struct ZoneSeen {
    name: String,
    location: Option<Location>,
    /// The service as deployed there, if it is.
    running: Option<Running>,
    placed: bool,
}

/// A service deployed in a zone, from the zone's heartbeat.
struct Running {
    advertised: u32,
    /// The entry component's first gateway endpoint.
    endpoint: String,
    endpoints: std::collections::BTreeMap<String, String>,
    /// Instances are still starting: no slots yet, but they are on the way.
    starting: bool,
}

/// Every available zone as the resolver sees one service.
struct Snapshot {
    zones: Vec<ZoneSeen>,
}

impl Snapshot {
    fn places(&self) -> Vec<ZonePlace<'_>> {
        self.zones.iter().map(|z| ZonePlace { name: &z.name, location: z.location }).collect()
    }

    /// Offers from the zones running the service, and candidate zones for an on-demand
    /// deployment (not placed there yet), with the client's RTT to each; zones whose RTT is
    /// unknown are out of reach.
    fn offers(&self, est: &Estimator, client: &Client) -> (Vec<(ZoneOffer, RttSource)>, Vec<ZoneOffer>) {
        let places = self.places();
        let mut running = Vec::new();
        let mut candidates = Vec::new();
        for (z, place) in self.zones.iter().zip(&places) {
            let Some((rtt_ms, source)) = est.rtt(client, *place, &places) else { continue };
            match &z.running {
                Some(r) => running.push((
                    ZoneOffer { zone: z.name.clone(), endpoint: r.endpoint.clone(), advertised: r.advertised, rtt_ms },
                    source,
                )),
                // Nothing runs there yet: the resolver can only offer it on demand.
                None if !z.placed => {
                    candidates.push(ZoneOffer { zone: z.name.clone(), endpoint: String::new(), advertised: 0, rtt_ms })
                }
                None => {}
            }
        }
        (running, candidates)
    }
}

impl DomainCore {
    /// What the domain knows about where users are (empty until set).
    pub fn geography(&self) -> Result<Geography, DomainError> {
        Ok(self.store.get::<Geography>(T_META, GEOGRAPHY)?.unwrap_or_default())
    }

    /// `PUT /1.0/geography`: replaces the parts given, after checking all of them; an
    /// invalid change changes nothing.
    pub fn set_geography(&self, change: GeographyChange) -> Result<Geography, DomainError> {
        let problems = change_problems(change.regions.as_deref(), change.latencies.as_deref());
        if !problems.is_empty() {
            return Err(DomainError::Invalid(format!("invalid geography: {}", problems.join("; "))));
        }
        let _g = self.documents.hold();
        let mut geo = self.geography()?;
        if let Some(r) = change.regions {
            geo.regions = r;
        }
        if let Some(l) = change.latencies {
            geo.latencies = l;
        }
        if let Some(m) = change.latency_model {
            geo.latency_model = m;
        }
        if let Some(entries) = &change.demand {
            let mut problems = Vec::new();
            for (i, e) in entries.iter().enumerate() {
                if !geo.regions.iter().any(|r| r.name == e.region) {
                    problems.push(format!("demand[{i}].region: unknown user region {:?}", e.region));
                }
                if let Some(p) = zonal_model::names::name_problem(&e.service) {
                    problems.push(format!("demand[{i}].service: {p}"));
                }
                if let Some(p) =
                    zonal_model::limits::at_most(e.slots.peak(), zonal_model::limits::MAX_DEMAND_SLOTS, "session slots")
                {
                    problems.push(format!("demand[{i}].slots: {p}"));
                }
                if let Some((field, p)) = e.sla.as_ref().and_then(|s| s.problems().into_iter().next()) {
                    problems.push(format!("demand[{i}].sla.{field}: {p}"));
                }
            }
            if !problems.is_empty() {
                return Err(DomainError::Invalid(format!("invalid demand: {}", problems.join("; "))));
            }
            let named: std::collections::BTreeSet<&str> = entries.iter().map(|e| e.service.as_str()).collect();
            let mut declared = self.declared_demand()?;
            declared.retain(|e| !named.contains(e.service.as_str()));
            declared.extend(entries.iter().cloned());
            self.store_declared_demand(&declared)?;
        }
        self.store.put(T_META, GEOGRAPHY, &geo)?;
        Ok(geo)
    }

    /// The available zones and what their heartbeats say of service `s`.
    fn snapshot(&self, s: &ServiceRecord) -> Result<Snapshot, DomainError> {
        let id = s.service.name.as_str();
        let zones = self.store.list::<ZoneRecord>(T_ZONES, "")?;
        let placed: Vec<&String> = s.placement.as_ref().map(|p| p.zones.keys().collect()).unwrap_or_default();
        let mut out = Vec::new();
        for (name, z) in &zones {
            if !self.zone_available(name) {
                continue;
            }
            let view = self.reported_service(name, id).filter(|v| ReportedState::of(v) == ReportedState::Deployed);
            let running = view.as_ref().and_then(|v| {
                Some(Running {
                    advertised: v.advertised,
                    endpoint: first_endpoint(&s.service, v)?,
                    endpoints: v.endpoints.clone(),
                    starting: v.advertised == 0 && v.running < v.instances.values().sum::<u32>(),
                })
            });
            out.push(ZoneSeen {
                name: name.clone(),
                location: z.registration.location,
                running,
                placed: placed.contains(&name),
            });
        }
        Ok(Snapshot { zones: out })
    }

    /// `GET /1.0/resolve/{service}`.
    pub fn resolve(&self, caller: &Principal, id: &str, from: &Origin) -> Result<Resolved, DomainError> {
        let s = self.visible_service(caller, id)?;
        if s.target != Target::Deployed {
            return Err(DomainError::Conflict(format!(
                "service {id} is not deployed (it is {}); deploy it before resolving it",
                s.state
            )));
        }
        let geo = self.geography()?;
        let est = Estimator::new(&geo);
        let snap = self.snapshot(&s)?;
        let client = est.client(from, &snap.places()).map_err(DomainError::Invalid)?;
        if let Some(region) = nearest_region(&geo, &client) {
            self.record_resolution(id, &region);
        }
        let sla = s.service.sla.unwrap_or_default();
        let utility = |rtt: f64| UtilitySla::utility(&sla, rtt);
        let (running, candidates) = snap.offers(&est, &client);
        let offers: Vec<ZoneOffer> = running.iter().map(|(o, _)| o.clone()).collect();
        if let Resolution::Zone { zone, endpoint, utility, rank } = resolve(&offers, &utility) {
            let (o, source) = running.iter().find(|(o, _)| o.zone == zone).cloned().unwrap_or_else(|| {
                (
                    ZoneOffer { zone: zone.clone(), endpoint: endpoint.clone(), advertised: 0, rtt_ms: 0.0 },
                    RttSource::Distance,
                )
            });
            let endpoints = snap
                .zones
                .iter()
                .find(|z| z.name == zone)
                .and_then(|z| z.running.as_ref().map(|r| r.endpoints.clone()))
                .unwrap_or_default();
            return Ok(Resolved {
                serviceid: id.to_string(),
                zone,
                endpoint,
                endpoints,
                rtt_ms: o.rtt_ms,
                utility,
                rank,
                advertised: o.advertised,
                rtt_source: source.as_str().to_string(),
            });
        }
        let placed: Vec<String> = s.placement.as_ref().map(|p| p.zones.keys().cloned().collect()).unwrap_or_default();
        let reporting: Vec<String> =
            snap.zones.iter().filter(|z| z.running.is_some()).map(|z| z.name.clone()).collect();
        let starting: Vec<String> = snap
            .zones
            .iter()
            .filter(|z| z.running.as_ref().is_some_and(|r| r.starting))
            .map(|z| z.name.clone())
            .collect();
        let mut refused: Vec<String> = Vec::new();
        match when_full(s.placement.as_ref().map(|_| placed.as_slice()), &reporting, &starting) {
            WhenFull::Placing => {
                return Err(DomainError::NoSlot {
                    why: NoSlot::Placing,
                    detail: format!("service {id} is being placed; retry in a few seconds"),
                })
            }
            WhenFull::Deploying(zones) => {
                return Err(DomainError::NoSlot {
                    why: NoSlot::DeployingOnDemand,
                    detail: format!(
                        "no zone has a free slot for {id}; it is being deployed in {}; retry in a few seconds",
                        zones.join(", ")
                    ),
                })
            }
            WhenFull::DeployOnDemand => {
                let mut pool = candidates;
                while let Resolution::DeployOnDemand { zone, utility: u } = resolve(&pool, &utility) {
                    match self.deploy_on_demand(id, &zone)? {
                        Ok(()) => {
                            return Err(DomainError::NoSlot {
                                why: NoSlot::DeployingOnDemand,
                                detail: format!(
                                    "no zone within reach has a free slot for {id}; deploying it on demand in zone {zone} (utility {u:.2}); retry in a few seconds"
                                ),
                            })
                        }
                        Err(why) => {
                            tracing::info!(service = id, zone, "on-demand deployment not possible: {why}");
                            refused.push(format!("{zone}: {why}"));
                            pool.retain(|o| o.zone != zone);
                        }
                    }
                }
            }
        }
        let whence = match &client {
            Client::At(l) => format!("({:.4}, {:.4})", l.lat, l.lon),
            Client::Region(r) => format!("region {}", r.name),
        };
        Err(DomainError::NoSlot {
            why: NoSlot::NoSlots,
            detail: format!(
                "no zone within the service's r_max ({}) of {whence} has a free slot for {id}, and none can take another deployment{}",
                sla.r_max,
                if refused.is_empty() { String::new() } else { format!(" ({})", refused.join("; ")) }
            ),
        })
    }

    /// `GET /1.0/regions`: per user region, the slots of each deployed service the caller may
    /// see within its R_max, and where a client of the region would be sent now.
    pub fn regions(&self, caller: &Principal) -> Result<Vec<RegionView>, DomainError> {
        let geo = self.geography()?;
        let est = Estimator::new(&geo);
        let services: Vec<(ServiceRecord, Snapshot)> = self
            .visible_services(caller)?
            .into_iter()
            .filter(|s| s.target == Target::Deployed)
            .map(|s| self.snapshot(&s).map(|snap| (s, snap)))
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for r in &geo.regions {
            let client = Client::Region(r.clone());
            let mut views = Vec::new();
            for (s, snap) in &services {
                let sla = s.service.sla.unwrap_or_default();
                let utility = |rtt: f64| UtilitySla::utility(&sla, rtt);
                let offers: Vec<ZoneOffer> = snap.offers(&est, &client).0.into_iter().map(|(o, _)| o).collect();
                let a = region_availability(&offers, &utility);
                let (zone, rtt_ms) = match &a.resolution {
                    Resolution::Zone { zone, .. } => {
                        (Some(zone.clone()), offers.iter().find(|o| o.zone == *zone).map(|o| o.rtt_ms))
                    }
                    _ => (None, None),
                };
                views.push(RegionServiceView {
                    serviceid: s.service.name.clone(),
                    advertised: a.advertised,
                    zones: a.zones,
                    zone,
                    rtt_ms,
                });
            }
            out.push(RegionView {
                name: r.name.clone(),
                location: r.location,
                weight: r.weight,
                attach: r.attach.clone(),
                services: views,
            });
        }
        Ok(out)
    }

    /// Adds `zone` to the service's placement with the components' minimum counts; the
    /// coordinator deploys it there. The inner error says why the zone cannot take it.
    fn deploy_on_demand(&self, id: &str, zone: &str) -> Result<Result<(), String>, DomainError> {
        let summaries = self.zone_summaries()?;
        let Some(summary) = summaries.into_iter().find(|z| z.name == zone) else {
            return Ok(Err("zone gone".into()));
        };
        let mut outcome = Ok(());
        let deployed = self.change_service(id, |s| {
            // The service's minimum instances, on the zone's own hosts (the shared rules): the
            // on-demand step scales the service out by one zone, like a zone's scaler by one
            // instance; the next re-decision weighs where it should run.
            let counts: std::collections::BTreeMap<String, u32> =
                instance_counts(&s.service, &PlacementDemand { slots: 0 })
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .collect();
            if let Err(why) = zone_feasible(&summary, &s.service, &counts) {
                outcome = Err(why);
                return Ok(false);
            }
            if s.placement.as_ref().is_some_and(|p| p.zones.contains_key(zone)) {
                return Ok(false);
            }
            s.placement.get_or_insert_with(Default::default).zones.insert(zone.to_string(), counts);
            s.progress.insert(zone.to_string(), Default::default());
            s.cleanup.remove(zone);
            s.draining.remove(zone);
            s.state = ServiceState::Deploying;
            crate::decisions::push_event(
                s,
                "on-demand",
                format!("no zone in reach had a free slot: deployed on demand in zone {zone}"),
            );
            Ok(true)
        })?;
        if deployed {
            tracing::info!(service = id, zone, "no free slots: deploying on demand");
        }
        Ok(outcome)
    }
}

/// The zone endpoint of the service's entry component: its first port with a gateway.
fn first_endpoint(service: &Service, view: &ZoneServiceView) -> Option<String> {
    let entry = service.entry_component()?;
    entry
        .ports
        .iter()
        .find_map(|p| view.endpoints.get(&p.name).cloned())
        .or_else(|| view.endpoints.values().next().cloned())
}

/// The user region a resolving client counts for (measured demand): the region it named,
/// else the region nearest to its coordinates (within 100 km).
fn nearest_region(geo: &Geography, client: &Client) -> Option<String> {
    match client {
        Client::Region(r) => geo.regions.iter().any(|x| x.name == r.name).then(|| r.name.clone()),
        Client::At(l) => geo
            .regions
            .iter()
            .filter_map(|r| r.location.map(|loc| (loc.distance_km(l), r)))
            .filter(|(d, _)| *d <= 100.0)
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, r)| r.name.clone()),
    }
}
