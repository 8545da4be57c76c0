//! Service resolution (FUSION §2.3.1, §2.9): which zone a client should open its session in.
//!
//! The offers are the zones' latest heartbeats: per service, the gateway endpoint and the
//! advertised slots (free + headroom, FUSION §2.8.3.2). A client's round-trip time to a zone
//! is estimated from distance by the model's latency model (`2 × 5 µs/km × great-circle
//! distance + access`), the zone's location coming from its registration. The pure
//! `zonal_control::slots::resolve` ranks zones by the service's utility of that latency
//! (then lower latency, then more slots) and takes the first with slots, so a full zone
//! spills over to the next. When no zone that runs the service has a slot, the best zone by
//! utility that does not run it yet gets an on-demand deployment, and the answer says so.

use zonal_control::place::{place_service, PlacementDemand};
use zonal_control::slots::{resolve, Resolution, ZoneOffer};
use zonal_model::{LatencyModel, Location, UtilitySla};
use zonal_proto::wire::Resolved;
use zonal_proto::{ApiError, Principal};
use zonal_store::StoreExt;

use crate::core::{store_err, DomainCore, Target, ZoneRecord, T_SERVICES, T_ZONES};

/// Where a client is: coordinates, or the name of a zone it is next to.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    At(Location),
    Region(String),
}

impl DomainCore {
    /// `GET /1.0/resolve/{service}`.
    pub fn resolve(&self, caller: &Principal, id: &str, from: &Origin) -> Result<Resolved, ApiError> {
        let s = self.visible_service(caller, id)?;
        if s.target != Target::Deployed {
            return Err(ApiError::conflict(format!(
                "service {id} is not deployed (it is {}); deploy it before resolving it",
                s.state
            )));
        }
        let zones = self.store.list::<ZoneRecord>(T_ZONES, "").map_err(store_err)?;
        let at = match from {
            Origin::At(l) => *l,
            Origin::Region(r) => {
                zones.iter().find(|(n, _)| n == r).and_then(|(_, z)| z.registration.location).ok_or_else(|| {
                    let known: Vec<&str> = zones.iter().map(|(n, _)| n.as_str()).collect();
                    ApiError::bad_request(format!(
                        "region {r:?} is not a zone with a location; expected one of {} or ?lat=…&lon=…",
                        known.join(", ")
                    ))
                })?
            }
        };
        let model = LatencyModel::default();
        let sla = s.service.sla.unwrap_or_default();
        let utility = |rtt: f64| UtilitySla::utility(&sla, rtt);
        let placed: Vec<String> = s.placement.as_ref().map(|p| p.zones.keys().cloned().collect()).unwrap_or_default();
        let mut running = Vec::new();
        // Zones whose instances are still starting: no slots yet, but they are on the way.
        let mut starting: Vec<String> = Vec::new();
        let mut candidates = Vec::new();
        // Availability first: it takes the heartbeat lock itself.
        let available: Vec<bool> = zones.iter().map(|(n, _)| self.zone_available(n)).collect();
        {
            let hb = self.hb();
            for ((name, z), up) in zones.iter().zip(available) {
                let Some(loc) = z.registration.location else { continue };
                if !up {
                    continue;
                }
                let rtt_ms = model.user_rtt(at.distance_km(&loc)).as_millis();
                let view = hb
                    .get(name)
                    .and_then(|h| h.report.as_ref())
                    .and_then(|r| r.services.iter().find(|v| v.serviceid == id && v.state == "deployed"));
                match view.and_then(|v| first_endpoint(&s.service, v).map(|e| (v, e))) {
                    Some((v, endpoint)) => {
                        if v.advertised == 0 && v.running < v.instances.values().sum::<u32>() {
                            starting.push(name.clone());
                        }
                        running.push((
                            ZoneOffer { zone: name.clone(), endpoint, advertised: v.advertised, rtt_ms },
                            v.endpoints.clone(),
                        ))
                    }
                    None if !placed.contains(name) => candidates.push(ZoneOffer {
                        zone: name.clone(),
                        endpoint: String::new(),
                        // Nothing runs there yet: the resolver can only offer it on demand.
                        advertised: 0,
                        rtt_ms,
                    }),
                    None => {}
                }
            }
        }
        let offers: Vec<ZoneOffer> = running.iter().map(|(o, _)| o.clone()).collect();
        match resolve(&offers, &utility) {
            Resolution::Zone { zone, endpoint, utility, rank } => {
                let (rtt_ms, advertised, endpoints) = running
                    .iter()
                    .find(|(o, _)| o.zone == zone)
                    .map(|(o, e)| (o.rtt_ms, o.advertised, e.clone()))
                    .unwrap_or_default();
                Ok(Resolved { serviceid: id.to_string(), zone, endpoint, endpoints, rtt_ms, utility, rank, advertised })
            }
            Resolution::DeployOnDemand { .. } | Resolution::Unreachable => {
                let deploying: Vec<&String> = placed
                    .iter()
                    .filter(|z| !running.iter().any(|(o, _)| &o.zone == *z) || starting.contains(z))
                    .collect();
                // The best zone by utility that does not run the service yet, and can hold it;
                // but not while a zone of the placement is still coming up: its slots are
                // on the way.
                let settled = s.placement.is_some() && deploying.is_empty();
                let mut pool = if settled { candidates } else { Vec::new() };
                let mut refused: Vec<String> = Vec::new();
                while let Resolution::DeployOnDemand { zone, utility: u } = resolve(&pool, &utility) {
                    match self.deploy_on_demand(id, &zone)? {
                        Ok(()) => {
                            return Err(ApiError::new(
                                503,
                                "deploying_on_demand",
                                format!(
                                    "no zone within reach has a free slot for {id}; deploying it on demand in zone {zone} (utility {u:.2}); retry in a few seconds"
                                ),
                            ))
                        }
                        Err(why) => {
                            tracing::info!(service = id, zone, "on-demand deployment not possible: {why}");
                            refused.push(format!("{zone}: {why}"));
                            pool.retain(|o| o.zone != zone);
                        }
                    }
                }
                if s.placement.is_none() {
                    return Err(ApiError::new(
                        503,
                        "deploying",
                        format!("service {id} is being placed; retry in a few seconds"),
                    ));
                }
                if !deploying.is_empty() {
                    return Err(ApiError::new(
                        503,
                        "deploying_on_demand",
                        format!(
                            "no zone has a free slot for {id}; it is being deployed in {}; retry in a few seconds",
                            deploying.iter().map(|z| z.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                Err(ApiError::new(
                    503,
                    "no_slots",
                    format!(
                        "no zone within the service's r_max ({}) of ({:.4}, {:.4}) has a free slot for {id}, and none can take another deployment{}",
                        sla.r_max,
                        at.lat,
                        at.lon,
                        if refused.is_empty() { String::new() } else { format!(" ({})", refused.join("; ")) }
                    ),
                ))
            }
        }
    }

    /// Adds `zone` to the service's placement with the components' minimum counts; the
    /// coordinator deploys it there. The inner error says why the zone cannot take it.
    fn deploy_on_demand(&self, id: &str, zone: &str) -> Result<Result<(), String>, ApiError> {
        let summaries = self.zone_summaries()?;
        let Some(summary) = summaries.into_iter().find(|z| z.name == zone) else {
            return Ok(Err("zone gone".into()));
        };
        let _g = self.lock_services();
        let mut s = self.service_record(id)?;
        let allocation = match place_service(&[summary], &s.service, &PlacementDemand { slots: 0 }) {
            Ok(a) => a,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let Some(counts) = allocation.zones.get(zone).cloned() else { return Ok(Err("no allocation".into())) };
        let placement = s.placement.get_or_insert_with(Default::default);
        if placement.zones.contains_key(zone) {
            return Ok(Ok(()));
        }
        placement.zones.insert(zone.to_string(), counts);
        s.progress.insert(zone.to_string(), Default::default());
        s.cleanup.remove(zone);
        s.state = "deploying".into();
        s.generation += 1;
        s.attempt = 0;
        s.next_try_ms = 0;
        self.store.put(T_SERVICES, id, &s).map_err(store_err)?;
        drop(_g);
        tracing::info!(service = id, zone, "no free slots: deploying on demand");
        self.kick();
        Ok(Ok(()))
    }
}

/// The zone endpoint of the service's entry component: its first port with a gateway.
fn first_endpoint(service: &zonal_model::Service, view: &zonal_proto::wire::ZoneServiceView) -> Option<String> {
    let entry = service.entry_component()?;
    entry
        .ports
        .iter()
        .find_map(|p| view.endpoints.get(&p.name).cloned())
        .or_else(|| view.endpoints.values().next().cloned())
}
