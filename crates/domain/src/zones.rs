//! The zone registry: registration, heartbeats and availability, the zones as the API shows
//! them, their summaries for placement, and clients to call them.
//!
//! Store table: `zones` (name → [`ZoneRecord`]: the registration, with the key to call the
//! zone). Lock: `heartbeats` (`Heartbeats`, memory only: when each zone was last heard from
//! and its last report). Its accessors copy what they read and release it at once, so it is
//! never held while anything else is taken.
//!
//! A zone silent for `zone_timeout` is [`Availability::Unavailable`] (placement leaves it
//! out); silent for `replace_after` longer it is lost (`zone_lost`) and its
//! services are decided again without it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use zonal_control::place::{HostSummary, ZoneSummary};
use zonal_control::reconcile::InstanceState;
use zonal_model::Resources;
use zonal_proto::wire::{SlotTotals, ZoneRegistered, ZoneRegistration, ZoneReport, ZoneServiceView, ZoneView};
use zonal_proto::{now_ms, Client, Principal, Role};
use zonal_store::{Store, StoreExt};

use crate::core::{guard, valid_name, DomainCore};
use crate::error::DomainError;
use crate::services::{ServiceRecord, T_SERVICES};

pub(crate) const T_ZONES: &str = "zones";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZoneRecord {
    pub registration: ZoneRegistration,
    pub registered_ms: u64,
}

/// Whether a zone is heard from recently enough. Shown as the lower-case word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    Available,
    /// It missed its heartbeats for longer than `zone_timeout`.
    Unavailable,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Available => "available",
            Availability::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service's state as a zone reports it. The wire carries the zone's lower-case word;
/// this is where the domain reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedState {
    Registered,
    Deployed,
    Terminating,
    /// A word this domain does not know (a newer zone).
    Other,
}

impl ReportedState {
    pub fn of(view: &ZoneServiceView) -> Self {
        match view.state.as_str() {
            "registered" => ReportedState::Registered,
            "deployed" => ReportedState::Deployed,
            "terminating" => ReportedState::Terminating,
            _ => ReportedState::Other,
        }
    }
}

/// Liveness and the last report of one zone (memory only).
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub last_seen: Instant,
    /// Shared, so that readers copy it without holding the lock.
    pub report: Option<Arc<ZoneReport>>,
}

/// The heartbeats of every registered zone: the `heartbeats` lock.
#[derive(Debug, Default)]
pub(crate) struct Heartbeats {
    map: Mutex<BTreeMap<String, Heartbeat>>,
}

impl Heartbeats {
    /// Every known zone starts with a fresh heartbeat: the domain cannot know how long it was
    /// down, so zones get one timeout to report before they count as unavailable.
    pub(crate) fn load(store: &dyn Store) -> Result<Heartbeats, DomainError> {
        let mut map = BTreeMap::new();
        for (zone, _) in store.list::<ZoneRecord>(T_ZONES, "")? {
            map.insert(zone, Heartbeat { last_seen: Instant::now(), report: None });
        }
        Ok(Heartbeats { map: Mutex::new(map) })
    }

    fn get(&self, zone: &str) -> Option<Heartbeat> {
        guard(&self.map).get(zone).cloned()
    }

    /// The zone was heard from now; with a report, that is its latest.
    fn seen(&self, zone: &str, report: Option<ZoneReport>) {
        let mut map = guard(&self.map);
        let e = map.entry(zone.to_string()).or_insert(Heartbeat { last_seen: Instant::now(), report: None });
        e.last_seen = Instant::now();
        if let Some(r) = report {
            e.report = Some(Arc::new(r));
        }
    }

    fn remove(&self, zone: &str) {
        guard(&self.map).remove(zone);
    }

    fn zones(&self) -> Vec<String> {
        guard(&self.map).keys().cloned().collect()
    }

    fn reports(&self) -> Vec<(String, Arc<ZoneReport>)> {
        guard(&self.map).iter().filter_map(|(z, h)| Some((z.clone(), h.report.clone()?))).collect()
    }
}

impl DomainCore {
    /// `POST /1.0/zones`: a zone registers itself (or an admin registers one).
    pub fn register_zone(&self, caller: &Principal, reg: ZoneRegistration) -> Result<ZoneRegistered, DomainError> {
        valid_name("zone", &reg.name)?;
        if caller.role == Role::Zone && caller.name != reg.name {
            return Err(DomainError::Forbidden(format!(
                "zone identity {:?} may only register the zone of the same name, not {:?}",
                caller.name, reg.name
            )));
        }
        let host = reg.endpoint.strip_prefix("http://").or_else(|| reg.endpoint.strip_prefix("https://"));
        if !host.is_some_and(|h| !h.is_empty() && !h.starts_with('/')) {
            return Err(DomainError::Invalid(format!(
                "zone {}: endpoint {:?} is not a URL; expected http://host:port",
                reg.name, reg.endpoint
            )));
        }
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, h) in reg.hosts.iter().enumerate() {
            if let Some(p) = zonal_model::names::name_problem(&h.name) {
                problems.push(format!("hosts[{i}].name: {p}"));
            } else if !seen.insert(h.name.as_str()) {
                problems.push(format!("hosts[{i}].name: host {:?} is listed twice", h.name));
            }
            for (r, p) in h.capacity.problems() {
                problems.push(format!("hosts[{i}].capacity.{r}: {p}"));
            }
        }
        if let Some(t) = reg.tier.as_deref().and_then(zonal_model::names::label_problem) {
            problems.push(format!("tier: {t}"));
        }
        if !problems.is_empty() {
            return Err(DomainError::Invalid(format!(
                "zone {}: {}; nothing was registered",
                reg.name,
                problems.join("; ")
            )));
        }
        let rec = ZoneRecord { registration: reg.clone(), registered_ms: now_ms() };
        self.store.put(T_ZONES, &reg.name, &rec)?;
        self.heartbeats.seen(&reg.name, None);
        tracing::info!(zone = reg.name, endpoint = reg.endpoint, "zone registered");
        self.kick();
        Ok(ZoneRegistered { domain: self.info.clone(), zone: self.zone_view(&rec) })
    }

    /// `PUT /1.0/zones/{zone}/status`: a heartbeat. Also reconciles the zone's services with
    /// the domain's placements (`reconcile_zone_report`).
    pub fn zone_status(&self, caller: &Principal, name: &str, report: ZoneReport) -> Result<(), DomainError> {
        if caller.role == Role::Zone && caller.name != name {
            return Err(DomainError::Forbidden(format!(
                "zone identity {:?} may only report for itself, not {name:?}",
                caller.name
            )));
        }
        if self.store.get::<ZoneRecord>(T_ZONES, name)?.is_none() {
            return Err(DomainError::NotFound(format!("zone {name:?} is not registered; POST /1.0/zones first")));
        }
        let reported: BTreeMap<String, String> =
            report.services.iter().map(|s| (s.serviceid.clone(), s.state.clone())).collect();
        self.heartbeats.seen(name, Some(report));
        self.reconcile_zone_report(name, &reported)
    }

    /// Whether the zone is heard from recently enough.
    pub fn availability(&self, name: &str) -> Availability {
        match self.heartbeats.get(name) {
            Some(h) if h.last_seen.elapsed() <= self.timing.zone_timeout => Availability::Available,
            _ => Availability::Unavailable,
        }
    }

    /// Is the zone heard from recently enough?
    pub fn zone_available(&self, name: &str) -> bool {
        self.availability(name) == Availability::Available
    }

    /// How long the zone has been silent beyond its timeout (None while available).
    pub(crate) fn zone_down_for(&self, name: &str) -> Option<Duration> {
        let since = self.heartbeats.get(name).map_or(Duration::MAX, |h| h.last_seen.elapsed());
        since.checked_sub(self.timing.zone_timeout)
    }

    /// Gone for longer than `replace_after` past its timeout: its services go elsewhere.
    pub(crate) fn zone_lost(&self, name: &str) -> bool {
        self.zone_down_for(name).is_some_and(|d| d > self.timing.replace_after)
    }

    /// Zones up now, by name.
    pub(crate) fn zones_up(&self) -> Vec<String> {
        // `zones()` is sorted (a BTreeMap) and availability takes the lock again per zone.
        self.heartbeats.zones().into_iter().filter(|z| self.zone_available(z)).collect()
    }

    /// The last report of `zone`, if it sent one since the domain started.
    pub(crate) fn zone_report(&self, zone: &str) -> Option<Arc<ZoneReport>> {
        self.heartbeats.get(zone).and_then(|h| h.report)
    }

    /// The last report of every zone that sent one, by zone name.
    pub(crate) fn zone_reports(&self) -> Vec<(String, Arc<ZoneReport>)> {
        self.heartbeats.reports()
    }

    /// Service `id` as `zone` last reported it.
    pub(crate) fn reported_service(&self, zone: &str, id: &str) -> Option<ZoneServiceView> {
        self.zone_report(zone).and_then(|r| r.services.iter().find(|x| x.serviceid == id).cloned())
    }

    /// Instances of `service` running in `zone` per component, from its last heartbeat.
    pub(crate) fn running_in(&self, zone: &str, service: &str) -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        if let Some(r) = self.zone_report(zone) {
            for p in r.placements.iter().filter(|p| p.service == service && p.state == InstanceState::Running) {
                *out.entry(p.component.clone()).or_default() += 1;
            }
        }
        out
    }

    /// Instances of `service` a zone still holds (any live state), from its last heartbeat.
    pub(crate) fn held_in(&self, zone: &str, service: &str) -> u32 {
        self.zone_report(zone).map_or(0, |r| {
            r.placements.iter().filter(|p| p.service == service && p.state != InstanceState::Lost).count()
        }) as u32
    }

    /// The gateways zone `zone` reports for `service`'s component `component`: port → address
    /// (its own gateways only, not the relays to other zones).
    pub(crate) fn gateways_of(&self, zone: &str, service: &str, component: &str) -> BTreeMap<String, String> {
        let Some(view) = self.reported_service(zone, service) else { return BTreeMap::new() };
        let prefix = format!("{component}/");
        view.peers
            .iter()
            .filter(|(k, addr)| k.starts_with(&prefix) && !view.remote_peers.contains_key(*addr))
            .map(|(k, addr)| (k[prefix.len()..].to_string(), addr.clone()))
            .collect()
    }

    fn zone_view(&self, rec: &ZoneRecord) -> ZoneView {
        let r = &rec.registration;
        let hb = self.heartbeats.get(&r.name);
        let mut capacity = Resources::new();
        for h in &r.hosts {
            capacity.add_scaled(&h.capacity, 1);
        }
        let mut free = Resources::new();
        let mut services = Vec::new();
        let mut instances = 0;
        let mut slots = SlotTotals::default();
        match hb.as_ref().and_then(|h| h.report.as_ref()) {
            Some(rep) => {
                for h in &rep.hosts {
                    free.add_scaled(&h.free, 1);
                }
                services = rep.services.iter().map(|s| s.serviceid.clone()).collect();
                instances = rep.instances;
                for s in &rep.services {
                    slots.add(s.slots);
                }
            }
            None => free = capacity.clone(),
        }
        ZoneView {
            name: r.name.clone(),
            endpoint: r.endpoint.clone(),
            state: self.availability(&r.name).as_str().into(),
            tier: r.tier.clone(),
            hosts: r.hosts.len(),
            capacity,
            free,
            services,
            instances,
            slots,
            last_seen_ms: hb.map(|h| h.last_seen.elapsed().as_millis() as u64),
        }
    }

    fn zone_visible(&self, caller: &Principal, zone: &str) -> Result<bool, DomainError> {
        Ok(match caller.role {
            Role::Admin | Role::Domain => true,
            Role::Zone => caller.name == zone,
            _ => self
                .visible_services(caller)?
                .iter()
                .any(|s| s.placement.as_ref().is_some_and(|p| p.zones.contains_key(zone))),
        })
    }

    pub fn zones(&self, caller: &Principal) -> Result<Vec<ZoneView>, DomainError> {
        let mut out = Vec::new();
        for (name, rec) in self.store.list::<ZoneRecord>(T_ZONES, "")? {
            if self.zone_visible(caller, &name)? {
                out.push(self.zone_view_for(caller, &rec)?);
            }
        }
        Ok(out)
    }

    pub fn zone(&self, caller: &Principal, name: &str) -> Result<ZoneView, DomainError> {
        let rec = self.zone_record(name)?;
        if !self.zone_visible(caller, name)? {
            return Err(DomainError::Forbidden(format!("{} {:?} may not see zone {name}", caller.role, caller.name)));
        }
        self.zone_view_for(caller, &rec)
    }

    /// A zone as `caller` may see it: an admin or the zone itself all of it; a provider the
    /// zone's capacity, but of its services, instances and slots only its own (a zone is
    /// shared by providers; what else runs there is not theirs to read).
    fn zone_view_for(&self, caller: &Principal, rec: &ZoneRecord) -> Result<ZoneView, DomainError> {
        let mut view = self.zone_view(rec);
        if matches!(caller.role, Role::Admin | Role::Domain | Role::Zone) {
            return Ok(view);
        }
        let mine: std::collections::BTreeSet<String> =
            self.visible_services(caller)?.into_iter().map(|s| s.serviceid).collect();
        view.services.retain(|s| mine.contains(s));
        view.instances = 0;
        view.slots = SlotTotals::default();
        if let Some(rep) = self.zone_report(&rec.registration.name) {
            view.instances =
                rep.placements.iter().filter(|p| mine.contains(&p.service) && p.state != InstanceState::Lost).count()
                    as u32;
            for s in rep.services.iter().filter(|s| mine.contains(&s.serviceid)) {
                view.slots.add(s.slots);
            }
        }
        Ok(view)
    }

    pub(crate) fn zone_record(&self, name: &str) -> Result<ZoneRecord, DomainError> {
        self.store.get::<ZoneRecord>(T_ZONES, name)?.ok_or_else(|| {
            DomainError::NotFound(format!("no zone {name:?} is registered in domain {}", self.info.name))
        })
    }

    /// Deletes a zone; refused while services are placed there or it runs instances.
    pub fn delete_zone(&self, name: &str) -> Result<(), DomainError> {
        let view = self.zone_view(&self.zone_record(name)?);
        let services = self.store.list::<ServiceRecord>(T_SERVICES, "")?;
        let placed: Vec<&str> = services
            .iter()
            .filter(|(_, s)| {
                s.placement.iter().chain(s.previous.iter()).any(|p| p.zones.contains_key(name))
                    || s.cleanup.contains(name)
                    || s.draining.contains_key(name)
            })
            .map(|(k, _)| k.as_str())
            .collect();
        if !placed.is_empty() || view.instances > 0 {
            return Err(DomainError::Conflict(format!(
                "zone {name} still runs {} instance(s) of services ({}); terminate them (zonal delete service …) before deleting the zone",
                view.instances,
                if placed.is_empty() { "not placed by this domain".to_string() } else { placed.join(", ") }
            )));
        }
        self.store.delete(T_ZONES, name)?;
        self.heartbeats.remove(name);
        Ok(())
    }

    /// Zone summaries for placement.
    pub fn zone_summaries(&self) -> Result<Vec<ZoneSummary>, DomainError> {
        let zones = self.store.list::<ZoneRecord>(T_ZONES, "")?;
        Ok(zones
            .into_iter()
            .map(|(name, rec)| {
                let hosts = match self.zone_report(&name) {
                    Some(r) => r.hosts.clone(),
                    None => rec
                        .registration
                        .hosts
                        .iter()
                        .map(|h| HostSummary {
                            name: h.name.clone(),
                            free: h.capacity.clone(),
                            features: h.features.clone(),
                            available: h.available,
                        })
                        .collect(),
                };
                ZoneSummary { available: self.zone_available(&name), name, tier: rec.registration.tier.clone(), hosts }
            })
            .collect())
    }

    /// A client for calling zone `name` with the key it gave at registration.
    pub fn zone_client(&self, name: &str) -> Result<Client, DomainError> {
        self.zone_client_within(name, Duration::from_secs(5))
    }

    /// A client for zone `name` whose requests give up after `timeout`.
    pub fn zone_client_within(&self, name: &str, timeout: Duration) -> Result<Client, DomainError> {
        let rec = self
            .store
            .get::<ZoneRecord>(T_ZONES, name)?
            .ok_or_else(|| DomainError::NotFound(format!("zone {name} is not registered")))?;
        Client::new(&rec.registration.endpoint, Some(rec.registration.api_key.clone()), timeout)
            .map_err(|e| DomainError::Unavailable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{admin, open, zone};

    fn registration(name: &str, endpoint: &str) -> ZoneRegistration {
        ZoneRegistration {
            name: name.into(),
            endpoint: endpoint.into(),
            api_key: "k".into(),
            tier: None,
            hosts: vec![],
            location: None,
            price: None,
        }
    }

    #[test]
    fn zones_register_only_themselves_and_heartbeats_need_registration() {
        let core = open();
        let z = Principal { name: "z1".into(), role: Role::Zone };
        let e = core.register_zone(&z, registration("z2", "http://127.0.0.1:1")).expect_err("another zone");
        assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
        let e = core.zone_status(&z, "z1", ZoneReport::default()).expect_err("not registered");
        assert!(matches!(e, DomainError::NotFound(_)), "{e:?}");
        let e = core.register_zone(&z, registration("z1", "not a url")).expect_err("not a URL");
        assert!(matches!(e, DomainError::Invalid(_)), "{e:?}");
        assert!(core.zones(&admin()).expect("zones").is_empty());
    }

    #[test]
    fn a_registered_zone_is_available_until_its_heartbeats_stop() {
        let mut core = open();
        zone(&core, "z1");
        assert_eq!(core.availability("z1"), Availability::Available);
        assert_eq!(core.zone(&admin(), "z1").expect("z1").state, "available");
        assert_eq!(core.zones_up(), ["z1"]);
        assert_eq!(core.availability("nowhere"), Availability::Unavailable);
        // With no timeout at all, a zone is unavailable as soon as it was seen.
        Arc::get_mut(&mut core).expect("one owner").timing.zone_timeout = Duration::ZERO;
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(core.zone(&admin(), "z1").expect("z1").state, "unavailable");
        assert!(core.zone_down_for("z1").is_some() && core.zones_up().is_empty());
    }

    #[test]
    fn a_provider_sees_of_a_shared_zone_only_its_own_services_instances_and_slots() {
        use zonal_proto::wire::{InstancePlacement, ZoneServiceView};
        let core = crate::core::testing::two_providers_in_z1();
        let view = |id: &str, used: u32| ZoneServiceView {
            serviceid: id.into(),
            state: "deployed".into(),
            slots: SlotTotals { total: 10, free: 10 - used, used },
            ..Default::default()
        };
        let placed = |id: &str, service: &str| InstancePlacement {
            id: id.into(),
            service: service.into(),
            component: "web".into(),
            host: "h".into(),
            state: InstanceState::Running,
            resources: Resources::new(),
        };
        let report = ZoneReport {
            services: vec![view("web", 1), view("bell-app", 3)],
            instances: 3,
            placements: vec![
                placed("web-web-1", "web"),
                placed("bell-app-web-1", "bell-app"),
                placed("bell-app-web-2", "bell-app"),
            ],
            ..Default::default()
        };
        core.zone_status(&admin(), "z1", report).expect("heartbeat");
        let acme = Principal { name: "acme".into(), role: Role::Provider };
        let bell = Principal { name: "bell-labs".into(), role: Role::Provider };
        let a = core.zone(&acme, "z1").expect("acme runs a service in z1");
        assert_eq!((a.services.clone(), a.instances, a.slots.used), (vec!["web".to_string()], 1, 1), "{a:?}");
        let b = &core.zones(&bell).expect("zones")[0];
        assert_eq!((b.services.clone(), b.instances, b.slots.used), (vec!["bell-app".to_string()], 2, 3), "{b:?}");
        // The admin and the zone itself see everything the zone runs.
        let all = core.zone(&admin(), "z1").expect("z1");
        assert_eq!((all.services.len(), all.instances, all.slots.used), (2, 3, 4));
        let z1 = Principal { name: "z1".into(), role: Role::Zone };
        assert_eq!(core.zone(&z1, "z1").expect("itself").services.len(), 2);
    }

    #[test]
    fn reported_states_are_read_from_the_zones_words() {
        let view = |state: &str| ZoneServiceView { serviceid: "s".into(), state: state.into(), ..Default::default() };
        assert_eq!(ReportedState::of(&view("deployed")), ReportedState::Deployed);
        assert_eq!(ReportedState::of(&view("registered")), ReportedState::Registered);
        assert_eq!(ReportedState::of(&view("terminating")), ReportedState::Terminating);
        assert_eq!(ReportedState::of(&view("paused")), ReportedState::Other);
    }
}
