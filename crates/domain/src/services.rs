//! The service registry: service records and their lifecycle, registration from a manifest,
//! state changes, the views the API shows, who may see and change what, and the instances
//! asked live from the zones.
//!
//! Store table: `services` (name → [`ServiceRecord`]: the manifest verbatim, the parsed
//! service, owner, target and state, the placement and per-zone progress). Lock: `services`
//! (`ServiceLock`): every read-modify-write of a record holds it, so two changes never
//! interleave; it is never held across an await or a call to a zone.
//!
//! A record carries two lifecycle words: its [`Target`] (what the domain drives it towards,
//! set by the API) and its [`ServiceState`] (where it stands, moved by decisions and the
//! deployment coordinator). Both are stored and shown as the same lower-case words as ever.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use zonal_control::place::Allocation;
use zonal_model::Service;
use zonal_proto::wire::{InstanceView, RegisterService, ServiceView, SlotTotals};
use zonal_proto::{Principal, Role};
use zonal_store::{Batch, StoreExt};

use crate::core::{futures_join, guard, valid_name, DomainCore};
use crate::error::DomainError;

pub(crate) const T_SERVICES: &str = "services";

/// What the domain is driving a service towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Registered,
    Deployed,
    Terminated,
    Deleted,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Registered => "registered",
            Target::Deployed => "deployed",
            Target::Terminated => "terminated",
            Target::Deleted => "deleted",
        }
    }
}

/// Where a service stands domain-wide. Stored and shown as the lower-case word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Known to the domain, placed nowhere.
    Registered,
    /// Waiting for the offers of zones (a service with an evaluator).
    Placing,
    /// It does not fit on the live state; decided again when the state changes.
    Pending,
    /// Its target is being carried out in the zones.
    Deploying,
    /// Every zone of its target confirmed its share.
    Deployed,
    /// Being removed from its zones (its target is registered or terminated).
    Terminating,
    /// Removed from every zone.
    Terminated,
    /// Being removed from its zones, then unregistered.
    Deleting,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Registered => "registered",
            ServiceState::Placing => "placing",
            ServiceState::Pending => "pending",
            ServiceState::Deploying => "deploying",
            ServiceState::Deployed => "deployed",
            ServiceState::Terminating => "terminating",
            ServiceState::Terminated => "terminated",
            ServiceState::Deleting => "deleting",
        }
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `PUT /1.0/services/{id}/state` asks for (FUSION's words and their synonyms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRequest {
    /// `register`, `registered`: placed nowhere, still known.
    Register,
    /// `deploy`, `deployed`, `provision`.
    Deploy,
    /// `terminate`, `terminated`.
    Terminate,
}

impl StateRequest {
    pub fn parse(word: &str) -> Option<StateRequest> {
        match word {
            "register" | "registered" => Some(StateRequest::Register),
            "deploy" | "deployed" | "provision" => Some(StateRequest::Deploy),
            "terminate" | "terminated" => Some(StateRequest::Terminate),
            _ => None,
        }
    }
}

/// Deployment progress in one zone (each step is idempotent at the zone).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneProgress {
    pub registered: bool,
    pub scaled: bool,
    pub deployed: bool,
    /// The share the zone last confirmed; a different share is sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<zonal_proto::wire::ZoneSlotsChange>,
}

impl ZoneProgress {
    pub fn done(&self) -> bool {
        self.registered && self.scaled && self.deployed
    }
}

/// A registered service and its deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub serviceid: String,
    pub owner: String,
    /// The manifest, verbatim.
    pub manifest: String,
    pub service: Service,
    pub target: Target,
    pub state: ServiceState,
    pub demand: u32,
    pub placement: Option<Allocation>,
    pub progress: BTreeMap<String, ZoneProgress>,
    /// Zones the service must be removed from (old placements).
    pub cleanup: BTreeSet<String>,
    pub message: Option<String>,
    /// Failed attempts of the current step (for the retry backoff).
    pub attempt: u32,
    /// Not before this wall-clock time (ms) is the next attempt made.
    pub next_try_ms: u64,
    /// Bumped by every API change; progress computed from an older generation is discarded.
    pub generation: u64,
    /// The last offer round, for a service that names an evaluator (placed by offers);
    /// `None` asks for a new round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offers: Option<crate::offers::OfferRound>,
    /// The target being replaced, kept (with its counts) until the new target's instances
    /// run, so that a service never has fewer instances serving than before a re-placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Allocation>,
    /// The last decision (placement, re-placement, or one the gate declined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<crate::decisions::DecisionRecord>,
    /// What happened to the service, newest last (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<crate::decisions::ServiceEvent>,
    /// The regional demand the target was decided for (re-placement compares against it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub demand_basis: BTreeMap<String, u32>,
    /// Zones that ran the service and leave its placement: they drain its sessions before
    /// they drop it. Since when they were told (ms); 0 until they have been told.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub draining: BTreeMap<String, u64>,
}

impl ServiceRecord {
    /// Some zone still holds (or may hold) the service: its target, old placements being
    /// cleaned up, zones draining.
    pub fn holds_zones(&self) -> bool {
        self.placement.is_some() || !self.cleanup.is_empty() || !self.draining.is_empty()
    }

    /// Every zone that may hold the service: its target, the target being replaced, zones
    /// being cleaned up or draining.
    pub fn zones_holding(&self) -> BTreeSet<String> {
        self.placement
            .iter()
            .chain(self.previous.iter())
            .flat_map(|p| p.zones.keys().cloned())
            .chain(self.cleanup.iter().cloned())
            .chain(self.draining.keys().cloned())
            .collect()
    }
}

/// The `services` lock: read-modify-write of service records.
#[derive(Debug, Default)]
pub(crate) struct ServiceLock {
    lock: Mutex<()>,
}

impl ServiceLock {
    fn hold(&self) -> MutexGuard<'_, ()> {
        guard(&self.lock)
    }
}

impl DomainCore {
    pub(crate) fn service_record(&self, id: &str) -> Result<ServiceRecord, DomainError> {
        self.store.get::<ServiceRecord>(T_SERVICES, id)?.ok_or_else(|| {
            DomainError::NotFound(format!("no service {id:?} is registered in domain {}", self.info.name))
        })
    }

    /// Every stored service record, by name.
    pub(crate) fn service_records(&self) -> Result<Vec<(String, ServiceRecord)>, DomainError> {
        Ok(self.store.list::<ServiceRecord>(T_SERVICES, "")?)
    }

    fn can_see(&self, caller: &Principal, s: &ServiceRecord) -> bool {
        match caller.role {
            Role::Admin | Role::Domain => true,
            Role::Provider => s.owner == caller.name,
            Role::Zone => s.placement.as_ref().is_some_and(|p| p.zones.contains_key(&caller.name)),
            Role::Instance => false,
        }
    }

    /// The service if the caller may see it (forbidden, naming the owner, otherwise).
    pub fn visible_service(&self, caller: &Principal, id: &str) -> Result<ServiceRecord, DomainError> {
        let s = self.service_record(id)?;
        if !self.can_see(caller, &s) {
            return Err(DomainError::Forbidden(format!(
                "service {id} belongs to {}; {} {:?} may not access it",
                s.owner, caller.role, caller.name
            )));
        }
        Ok(s)
    }

    pub(crate) fn owned(&self, caller: &Principal, id: &str) -> Result<ServiceRecord, DomainError> {
        let s = self.visible_service(caller, id)?;
        if !(caller.is_admin() || (caller.role == Role::Provider && s.owner == caller.name)) {
            return Err(DomainError::Forbidden(format!(
                "only the owner of service {id} ({}) or an admin may change it",
                s.owner
            )));
        }
        Ok(s)
    }

    pub fn visible_services(&self, caller: &Principal) -> Result<Vec<ServiceRecord>, DomainError> {
        Ok(self.service_records()?.into_iter().map(|(_, s)| s).filter(|s| self.can_see(caller, s)).collect())
    }

    /// Status aggregation: slots and zones from the zones' latest reports.
    pub fn service_view(&self, s: &ServiceRecord) -> ServiceView {
        let mut slots = SlotTotals::default();
        let placement = s.placement.clone().unwrap_or_default();
        for zone in placement.zones.keys() {
            if let Some(v) = self.reported_service(zone, &s.serviceid) {
                slots.add(v.slots);
            }
        }
        ServiceView {
            serviceid: s.serviceid.clone(),
            owner: s.owner.clone(),
            state: s.state.as_str().into(),
            target: s.target.as_str().into(),
            slots,
            zones: placement.zones.keys().cloned().collect(),
            placement: placement.zones,
            demand: s.demand,
            message: s.message.clone(),
            instances: None,
            manifest: None,
        }
    }

    /// A service as one zone reports it (both `/services/{s}/zones/{z}` and
    /// `/zones/{z}/services/{s}`).
    pub fn service_in_zone(&self, caller: &Principal, id: &str, zone: &str) -> Result<serde_json::Value, DomainError> {
        let s = self.visible_service(caller, id)?;
        let placed = s.placement.as_ref().and_then(|p| p.zones.get(zone)).cloned();
        let Some(instances) = placed else {
            return Err(DomainError::NotFound(format!("service {id} is not placed in zone {zone}")));
        };
        let reported = self.reported_service(zone, id);
        Ok(serde_json::json!({
            "serviceid": id,
            "zone": zone,
            "zone_state": self.availability(zone).as_str(),
            "instances": instances,
            "progress": s.progress.get(zone),
            "state": reported.as_ref().map_or("unknown".to_string(), |r| r.state.clone()),
            "running": reported.as_ref().map_or(0, |r| r.running),
            "advertised": reported.as_ref().map_or(0, |r| r.advertised),
            "endpoints": reported.as_ref().map(|r| r.endpoints.clone()).unwrap_or_default(),
            "peers": reported.as_ref().map(|r| r.peers.clone()).unwrap_or_default(),
            "gateway_sessions": reported.as_ref().map_or(0, |r| r.gateway_sessions),
            "lost_sessions": reported.as_ref().map_or(0, |r| r.lost_sessions),
            "notices": reported.as_ref().map(|r| r.notices.clone()).unwrap_or_default(),
            "slots": reported.map(|r| r.slots).unwrap_or_default(),
        }))
    }

    /// The record a manifest would register as (validated; nothing stored): the service,
    /// its owner (the caller for a provider), nothing placed.
    pub(crate) fn candidate_record(
        &self,
        caller: &Principal,
        serviceid: Option<&str>,
        manifest: &str,
    ) -> Result<ServiceRecord, DomainError> {
        let file = serviceid.map_or_else(|| "manifest".to_string(), |s| format!("manifest of {s}"));
        let service = zonal_descriptor::parse_manifest(&file, manifest)?;
        let id = service.name.clone();
        valid_name("service", &id)?;
        if let Some(want) = serviceid {
            if want != id {
                return Err(DomainError::Invalid(format!(
                    "serviceid {want:?} does not match the manifest's service name {id:?}"
                )));
            }
        }
        let owner = match caller.role {
            Role::Provider => {
                if let Some(o) = service.owner.as_ref().filter(|o| *o != &caller.name) {
                    return Err(DomainError::Forbidden(format!(
                        "the manifest names {o:?} as owner, but you are provider {:?}; a provider registers its own services only",
                        caller.name
                    )));
                }
                caller.name.clone()
            }
            _ => service.owner.clone().unwrap_or_else(|| caller.name.clone()),
        };
        Ok(ServiceRecord {
            serviceid: id,
            owner,
            manifest: manifest.to_string(),
            service,
            target: Target::Registered,
            state: ServiceState::Registered,
            demand: 0,
            placement: None,
            progress: BTreeMap::new(),
            cleanup: BTreeSet::new(),
            message: None,
            attempt: 0,
            next_try_ms: 0,
            generation: 1,
            offers: None,
            previous: None,
            decision: None,
            events: Vec::new(),
            demand_basis: BTreeMap::new(),
            draining: BTreeMap::new(),
        })
    }

    /// `POST /1.0/services`: validates the manifest and registers it (nothing is stored from
    /// an invalid one). Returns whether it was created (else: the same manifest again).
    pub fn register_service(
        &self,
        caller: &Principal,
        req: &RegisterService,
    ) -> Result<(Registration, ServiceView), DomainError> {
        let rec = self.candidate_record(caller, req.serviceid.as_deref(), &req.manifest)?;
        let id = rec.serviceid.clone();
        let _g = self.services.hold();
        if let Some(existing) = self.store.get::<ServiceRecord>(T_SERVICES, &id)? {
            if !self.can_see(caller, &existing) || (caller.role == Role::Provider && existing.owner != caller.name) {
                return Err(DomainError::Conflict(format!(
                    "a service named {id} is already registered by another owner"
                )));
            }
            if existing.manifest == req.manifest && existing.target != Target::Deleted {
                return Ok((Registration::Unchanged, self.service_view(&existing)));
            }
            if existing.target == Target::Deployed || existing.placement.is_some() || existing.target == Target::Deleted
            {
                return Err(DomainError::Conflict(format!(
                    "service {id} is {} with a different manifest; delete it (zonal delete service {id}) before registering the new one",
                    existing.state
                )));
            }
        }
        self.store.put(T_SERVICES, &id, &rec)?;
        tracing::info!(service = id, owner = rec.owner, "service registered");
        Ok((Registration::Created, self.service_view(&rec)))
    }

    /// Changes a record without an owner's request (an event of the domain itself).
    pub(crate) fn update_service_quietly(
        &self,
        id: &str,
        f: impl FnOnce(&mut ServiceRecord),
    ) -> Result<(), DomainError> {
        let _g = self.services.hold();
        let Some(mut s) = self.store.get::<ServiceRecord>(T_SERVICES, id)? else { return Ok(()) };
        f(&mut s);
        Ok(self.store.put(T_SERVICES, id, &s)?)
    }

    /// An owner's change: `f` changes the record (or refuses); the new generation starts
    /// its steps afresh and the coordinator is woken.
    pub(crate) fn update_service(
        &self,
        caller: &Principal,
        id: &str,
        f: impl FnOnce(&mut ServiceRecord) -> Result<(), DomainError>,
    ) -> Result<ServiceView, DomainError> {
        let g = self.services.hold();
        let mut s = self.owned(caller, id)?;
        f(&mut s)?;
        self.commit_generation(id, &mut s)?;
        drop(g);
        Ok(self.service_view(&s))
    }

    /// Writes `s` as a new generation (progress computed from older ones is discarded, the
    /// retry backoff restarts) and wakes the deployment loop. Called with the services lock held.
    fn commit_generation(&self, id: &str, s: &mut ServiceRecord) -> Result<(), DomainError> {
        s.generation += 1;
        s.attempt = 0;
        s.next_try_ms = 0;
        self.store.put(T_SERVICES, id, s)?;
        self.kick();
        Ok(())
    }

    /// A change of the domain's own that starts a new generation, like an owner's: `f`
    /// returns whether it changed anything (nothing is written otherwise).
    pub(crate) fn change_service(
        &self,
        id: &str,
        f: impl FnOnce(&mut ServiceRecord) -> Result<bool, DomainError>,
    ) -> Result<bool, DomainError> {
        let g = self.services.hold();
        let mut s = self.service_record(id)?;
        if !f(&mut s)? {
            return Ok(false);
        }
        self.commit_generation(id, &mut s)?;
        drop(g);
        Ok(true)
    }

    /// Applies `f` to the stored record if nobody changed it since `generation`; `f` returns
    /// whether to delete the record. Returns whether the change was recorded.
    pub(crate) fn commit(&self, id: &str, generation: u64, f: impl FnOnce(&mut ServiceRecord) -> bool) -> bool {
        let _g = self.services.hold();
        let Ok(Some(mut s)) = self.store.get::<ServiceRecord>(T_SERVICES, id) else { return false };
        if s.generation != generation {
            return false;
        }
        let delete = f(&mut s);
        let r = if delete { self.store.delete(T_SERVICES, id) } else { self.store.put(T_SERVICES, id, &s) };
        if let Err(e) = r {
            tracing::error!(service = id, "cannot record deployment progress: {e}");
            return false;
        }
        true
    }

    /// Reconciles the services with what zone `zone` reports holding (`reported`): a zone
    /// that lost a service it runs is re-driven; a zone holding a service the domain no longer
    /// places there is told to drop it.
    pub(crate) fn reconcile_zone_report(
        &self,
        zone: &str,
        reported: &BTreeMap<String, String>,
    ) -> Result<(), DomainError> {
        let g = self.services.hold();
        let mut batch = Batch::new();
        let mut changed = false;
        for (id, mut s) in self.service_records()? {
            let placed_here = s.placement.iter().chain(s.previous.iter()).any(|p| p.zones.contains_key(zone));
            let mut dirty = false;
            if placed_here && s.target == Target::Deployed && !reported.contains_key(&id) {
                if let Some(p) = s.progress.get_mut(zone) {
                    if p.registered {
                        tracing::warn!(zone, service = id, "the zone lost the service: deploying it there again");
                        *p = ZoneProgress::default();
                        dirty = true;
                    }
                }
            }
            // A zone that holds a service only registered, for an offer round under way (its
            // evaluator component runs there), keeps it until the round is decided.
            let in_offer_round = reported.get(&id).is_some_and(|st| st == "registered")
                && DomainCore::places_by_offers(&s)
                && s.offers.as_ref().is_none_or(|r| {
                    zonal_proto::now_ms().saturating_sub(r.at_ms) < crate::offers::OFFER_VALIDITY.as_millis() as u64
                });
            if !placed_here
                && reported.contains_key(&id)
                && !in_offer_round
                && !s.cleanup.contains(zone)
                && !s.draining.contains_key(zone)
            {
                s.cleanup.insert(zone.to_string());
                dirty = true;
            }
            if dirty {
                if s.state == ServiceState::Deployed {
                    s.state = ServiceState::Deploying;
                }
                batch = batch.put(T_SERVICES, &id, &s)?;
                changed = true;
            }
        }
        self.store.commit(batch)?;
        drop(g);
        if changed {
            self.kick();
        }
        Ok(())
    }

    /// `PUT /1.0/services/{id}/state`: `state` is one of [`StateRequest`]'s words.
    pub fn set_state(&self, caller: &Principal, id: &str, state: &str) -> Result<ServiceView, DomainError> {
        self.update_service(caller, id, |s| {
            if s.target == Target::Deleted {
                return Err(DomainError::Conflict(format!("service {id} is being deleted")));
            }
            let Some(request) = StateRequest::parse(state) else {
                return Err(DomainError::Invalid(format!(
                    "unknown state {state:?} for service {id}; expected register, provision, deploy or terminate"
                )));
            };
            // Withdrawing from zones takes the coordinator's passes; without zones it is done.
            let holds = s.holds_zones();
            let withdrawn = |done| if holds { ServiceState::Terminating } else { done };
            match request {
                StateRequest::Deploy => {
                    s.target = Target::Deployed;
                    if s.state != ServiceState::Deployed {
                        s.state = ServiceState::Deploying;
                    }
                }
                StateRequest::Terminate => {
                    s.state = withdrawn(ServiceState::Terminated);
                    s.target = Target::Terminated;
                }
                StateRequest::Register => {
                    s.state = withdrawn(ServiceState::Registered);
                    s.target = Target::Registered;
                }
            }
            s.message = None;
            Ok(())
        })
    }

    /// `DELETE /1.0/services/{id}`: terminate everywhere, then unregister.
    pub fn delete_service(&self, caller: &Principal, id: &str) -> Result<ServiceView, DomainError> {
        self.update_service(caller, id, |s| {
            s.target = Target::Deleted;
            s.state = ServiceState::Deleting;
            Ok(())
        })
    }

    /// Instances of the visible services, asked live from their zones.
    pub async fn instances(&self, caller: &Principal, service: Option<&str>) -> Result<Vec<InstanceView>, DomainError> {
        let services = match service {
            Some(id) => vec![self.visible_service(caller, id)?],
            None => self.visible_services(caller)?,
        };
        let mut by_zone: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &services {
            for z in s.zones_holding() {
                by_zone.entry(z).or_default().push(s.serviceid.clone());
            }
        }
        let mut calls = Vec::new();
        for (zone, ids) in by_zone {
            let client = self.zone_client(&zone);
            calls.push(async move {
                let Ok(client) = client else { return Vec::new() };
                let mut out = Vec::new();
                for id in ids {
                    if let Ok(v) = client.get::<Vec<InstanceView>>(&format!("/1.0/services/{id}/instances")).await {
                        out.extend(v);
                    }
                }
                out
            });
        }
        let mut all: Vec<InstanceView> = Vec::new();
        for part in futures_join(calls).await {
            all.extend(part);
        }
        all.sort_by(|a, b| (&a.service, &a.zone, &a.component, &a.id).cmp(&(&b.service, &b.zone, &b.component, &b.id)));
        Ok(all)
    }

    /// The log tail of an instance the caller may see.
    pub async fn instance_logs(&self, caller: &Principal, id: &str, lines: usize) -> Result<String, DomainError> {
        for inst in self.instances(caller, None).await? {
            if inst.id == id {
                let client = self.zone_client(&inst.zone).map_err(|e| DomainError::Unavailable(e.to_string()))?;
                let (_, bytes) = client
                    .send_raw(axum::http::Method::GET, &format!("/1.0/instances/{id}/logs?lines={lines}"), None)
                    .await
                    .map_err(|e| DomainError::Unavailable(e.to_string()))?;
                return Ok(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        // A removed instance: its zone keeps its log for a while (the zone's retention). Ask
        // the zones, naming the service it must have been of — a provider's own services only;
        // an admin's question names none (the service may be gone).
        if zonal_model::names::api_name_problem(id).is_none() && id != "." && id != ".." {
            let services: Vec<Option<String>> = if caller.is_admin() {
                vec![None]
            } else {
                self.visible_services(caller)?
                    .into_iter()
                    .map(|s| s.serviceid)
                    .filter(|s| id.starts_with(&format!("{s}-")))
                    .map(Some)
                    .collect()
            };
            let zones = self.store.list::<crate::zones::ZoneRecord>(crate::zones::T_ZONES, "")?;
            for service in &services {
                let filter = service.as_ref().map(|s| format!("&service={s}")).unwrap_or_default();
                for (zone, _) in &zones {
                    let Ok(client) = self.zone_client(zone) else { continue };
                    let path = format!("/1.0/instances/{id}/logs?lines={lines}{filter}");
                    if let Ok((_, bytes)) = client.send_raw(axum::http::Method::GET, &path, None).await {
                        return Ok(String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
            }
        }
        Err(DomainError::NotFound(format!("no instance {id:?} among the services you can see")))
    }
}

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// The service is new (or its manifest replaced one that was only registered).
    Created,
    /// The same manifest was registered already.
    Unchanged,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{admin, block_on, open, zone, WEB};
    use zonal_proto::wire::CreateToken;

    #[test]
    fn provider_tokens_see_and_change_only_their_own_services() {
        let core = open();
        let acme =
            core.create_token(&CreateToken { role: "provider".into(), name: "acme".into(), ttl: None }).expect("token");
        let acme = core.authenticate(&acme.token).expect("acme");
        let other = Principal { name: "other".into(), role: Role::Provider };
        let (created, v) =
            core.register_service(&acme, &RegisterService { serviceid: None, manifest: WEB.into() }).expect("register");
        assert_eq!((created, v.owner.as_str(), v.state.as_str()), (Registration::Created, "acme", "registered"));
        assert!(core.visible_services(&other).expect("list").is_empty());
        assert!(matches!(core.set_state(&other, "web", "deploy"), Err(DomainError::Forbidden(_))));
        assert_eq!(core.service_record("web").expect("web").target, Target::Registered);
        // Same manifest again: idempotent.
        let again = core.register_service(&acme, &RegisterService { serviceid: None, manifest: WEB.into() });
        assert_eq!(again.expect("again").0, Registration::Unchanged);
        // A token cannot change an existing user's role.
        let e =
            core.create_token(&CreateToken { role: "admin".into(), name: "acme".into(), ttl: None }).expect_err("role");
        assert!(matches!(e, DomainError::Conflict(_)), "{e:?}");
    }

    #[test]
    fn state_requests_move_the_lifecycle_and_unknown_words_are_refused() {
        let core = open();
        zone(&core, "z1");
        core.register_service(&admin(), &RegisterService { serviceid: None, manifest: WEB.into() }).expect("register");
        // Nothing placed: terminating is immediate.
        let v = core.set_state(&admin(), "web", "terminate").expect("terminate");
        assert_eq!((v.state.as_str(), v.target.as_str()), ("terminated", "terminated"));
        let e = core.set_state(&admin(), "web", "pause").expect_err("unknown word");
        assert!(matches!(&e, DomainError::Invalid(d) if d.contains("\"pause\"")), "{e:?}");
        block_on(core.deploy_service(&admin(), "web", false)).expect("deployed");
        assert_eq!(core.service_record("web").expect("web").state, ServiceState::Deploying);
        // Placed: withdrawing takes the coordinator.
        let v = core.set_state(&admin(), "web", "registered").expect("register");
        assert_eq!((v.state.as_str(), v.target.as_str()), ("terminating", "registered"));
        let v = core.delete_service(&admin(), "web").expect("delete");
        assert_eq!(v.state, "deleting");
        let e = core.set_state(&admin(), "web", "deploy").expect_err("being deleted");
        assert!(matches!(e, DomainError::Conflict(_)), "{e:?}");
    }

    #[test]
    fn service_states_are_stored_as_the_same_words() {
        use ServiceState as S;
        for (state, word) in [
            (S::Registered, "registered"),
            (S::Placing, "placing"),
            (S::Pending, "pending"),
            (S::Deploying, "deploying"),
            (S::Deployed, "deployed"),
            (S::Terminating, "terminating"),
            (S::Terminated, "terminated"),
            (S::Deleting, "deleting"),
        ] {
            assert_eq!(serde_json::to_value(state).expect("json"), serde_json::json!(word));
            assert_eq!(serde_json::from_value::<S>(serde_json::json!(word)).expect("read"), state);
            assert_eq!(state.to_string(), word);
        }
    }

    /// A record exactly as the domain stored it while the state was a string (placed, being
    /// deployed, with its decision and events) still loads, and shows the same words.
    #[test]
    fn a_record_written_before_the_states_were_enums_still_loads() {
        let text = include_str!("../testdata/service_record_before_enums.json");
        let rec: ServiceRecord = serde_json::from_str(text).expect("the old record loads");
        assert_eq!((rec.target, rec.state), (Target::Deployed, ServiceState::Deploying));
        assert_eq!(rec.placement.as_ref().map(|p| p.instances()), Some(1));
        assert_eq!(rec.events.len(), 1);
        // Written back, the words are the same as before.
        let again = serde_json::to_value(&rec).expect("json");
        let old: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!((&again["state"], &again["target"]), (&old["state"], &old["target"]));
        let view = open().service_view(&rec);
        assert_eq!((view.state.as_str(), view.target.as_str()), ("deploying", "deployed"));
    }
}
