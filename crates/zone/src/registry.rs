//! The services registered in this zone: registration, state, desired instance counts and
//! the domain's plan for them (planned hosts, component overrides, remote peers), persisted
//! in the `services` table. Lock: `registry` (first in the lock order).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zonal_control::reconcile::InstanceState;
use zonal_model::{Component, Service};
use zonal_proto::wire::{ComponentOverride, ZoneServiceView, ZoneSlotsChange};
use zonal_store::{Batch, Store, StoreExt};

use crate::core::{valid_name, ZoneCore};
use crate::error::ZoneError;
use crate::placement;

pub(crate) const T_SERVICES: &str = "services";
pub(crate) const T_CONTEXT: &str = "context";

/// Where a service stands in this zone. Stored and shown as the lower-case word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Known here, nothing runs.
    Registered,
    /// Its desired instances run (the reconciler keeps them).
    Deployed,
    /// Being deleted: its instances stop, then the record goes.
    Terminating,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Registered => "registered",
            ServiceState::Deployed => "deployed",
            ServiceState::Terminating => "terminating",
        }
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service registered in this zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub serviceid: String,
    /// The manifest, verbatim.
    pub manifest: String,
    pub service: Service,
    pub state: ServiceState,
    /// Instances wanted per component while deployed (the domain's counts, then the
    /// scaler's).
    pub desired: BTreeMap<String, u32>,
    /// The domain's counts per component as last given: the scaler never scales in below
    /// them (the domain sized them for the demand it knows; the scaler adds to them for the
    /// sessions that really come).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub planned: BTreeMap<String, u32>,
    pub slots: Option<u32>,
    /// The offer the domain accepted for these slots, and the hosts it named: new instances
    /// go there while they have room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_offer: Option<AcceptedOffer>,
    /// The component that evaluates this zone for the service (an offer request asked for
    /// it): one instance of it runs until the domain accepts an offer or removes the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluator: Option<String>,
    /// The domain's planned hosts: component → host → instances.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub planned_hosts: BTreeMap<String, BTreeMap<String, u32>>,
    /// The domain's hardware profile per component (resources, extra required features).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, ComponentOverride>,
    /// Channel targets in other zones: `component/port` → remote `host:port`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remote_peers: BTreeMap<String, String>,
    /// The provider that owns the service, as the domain registered it. `None` in records
    /// written before the domain sent owners (or registered by an older domain): such a
    /// service neither carries another's sessions nor has its sessions carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl ServiceRecord {
    fn new(serviceid: &str, manifest: &str, service: Service, owner: Option<&str>) -> ServiceRecord {
        ServiceRecord {
            owner: owner.map(str::to_string),
            serviceid: serviceid.to_string(),
            manifest: manifest.to_string(),
            service,
            state: ServiceState::Registered,
            desired: BTreeMap::new(),
            planned: BTreeMap::new(),
            slots: None,
            accepted_offer: None,
            evaluator: None,
            planned_hosts: BTreeMap::new(),
            overrides: BTreeMap::new(),
            remote_peers: BTreeMap::new(),
        }
    }

    /// Whose uid the instances run under ([`crate::users`]): the owner the domain gave, else
    /// the manifest's `owner`, else the service alone (`service:<id>`, a tenant of its own —
    /// never one shared with other services whose owner is unknown).
    pub fn tenant(&self) -> String {
        match self.owner.as_ref().or(self.service.owner.as_ref()) {
            Some(o) => o.clone(),
            None => format!("service:{}", self.serviceid),
        }
    }

    pub fn is_deployed(&self) -> bool {
        self.state == ServiceState::Deployed
    }

    /// May this service's instances carry sessions of `guest` (a configuration of `guest`
    /// overlaid on them)? Within one provider, or where this service's `share` names the
    /// guest's provider; never when either owner is unknown ([`Service::may_carry`]).
    pub(crate) fn may_carry(&self, guest: &ServiceRecord) -> bool {
        self.service.may_carry(self.owner.as_deref(), guest.owner.as_deref())
    }

    /// `component` as new instances of it are made here: the manifest's, with symmetric
    /// anti-affinity and the domain's override applied.
    pub(crate) fn component_for_new_instances(&self, component: &str) -> Option<Component> {
        placement::effective_component(&self.service, component, self.overrides.get(component))
    }

    /// Where connections to `component`'s `port` go when the component runs in another
    /// zone: the remote address, unless instances of it are wanted here (local ones win).
    pub(crate) fn remote_target(&self, component: &str, port: &str) -> Option<&str> {
        if self.desired.get(component).copied().unwrap_or(0) > 0 {
            return None;
        }
        self.remote_peers.get(&format!("{component}/{port}")).map(String::as_str)
    }
}

/// An offer of this zone that the domain accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptedOffer {
    pub id: String,
    pub hosts: Vec<String>,
}

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// The service is new here (or its manifest replaced one that was only registered).
    Created,
    /// The same manifest was registered already.
    Unchanged,
}

/// Where a deletion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// The service is gone.
    Gone,
    /// Its instances are stopping; ask again.
    Pending,
}

/// The registered services.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub services: BTreeMap<String, ServiceRecord>,
}

impl Registry {
    pub(crate) fn load(store: &dyn Store) -> Result<Registry, ZoneError> {
        Ok(Registry { services: store.list::<ServiceRecord>(T_SERVICES, "")?.into_iter().collect() })
    }
}

/// The state a `PUT …/state` asks for.
fn requested_state(id: &str, state: &str) -> Result<ServiceState, ZoneError> {
    match state {
        "deploy" | "deployed" => Ok(ServiceState::Deployed),
        "register" | "registered" | "provision" | "terminate" | "terminated" => Ok(ServiceState::Registered),
        other => Err(ZoneError::Invalid(format!(
            "unknown state {other:?} for service {id}; expected register, provision, deploy or terminate"
        ))),
    }
}

impl ZoneCore {
    pub(crate) fn no_service(&self, id: &str) -> ZoneError {
        ZoneError::NotFound(format!("service {id:?} is not registered in zone {}", self.settings.name))
    }

    /// Registers (or re-registers, unchanged) a service whose owner is not known.
    pub fn register_service(&self, serviceid: &str, manifest: &str) -> Result<(Registration, ServiceState), ZoneError> {
        self.register_service_of(serviceid, manifest, None)
    }

    /// `POST /1.0/services`: registers (or re-registers, unchanged) a service of provider
    /// `owner`. The same manifest again records the owner given (the domain's word is the
    /// last), so a record from before owners were sent learns its owner.
    pub fn register_service_of(
        &self,
        serviceid: &str,
        manifest: &str,
        owner: Option<&str>,
    ) -> Result<(Registration, ServiceState), ZoneError> {
        valid_name("service", serviceid)?;
        if let Some(o) = owner {
            valid_name("owner", o)?;
        }
        let service = zonal_descriptor::parse_manifest(&format!("manifest of {serviceid}"), manifest)?;
        if service.name != serviceid {
            return Err(ZoneError::Invalid(format!(
                "serviceid {serviceid:?} does not match the manifest's service name {:?}",
                service.name
            )));
        }
        let mut reg = self.registry();
        if let Some(existing) = reg.services.get(serviceid) {
            if existing.manifest == manifest {
                let state = existing.state;
                if owner.is_some() && existing.owner.as_deref() != owner {
                    let mut rec = existing.clone();
                    tracing::info!(service = serviceid, owner, was = ?rec.owner, "the service's owner is recorded");
                    rec.owner = owner.map(str::to_string);
                    self.store.put(T_SERVICES, serviceid, &rec)?;
                    reg.services.insert(serviceid.to_string(), rec);
                    drop(reg);
                    self.bump();
                    self.kick();
                }
                return Ok((Registration::Unchanged, state));
            }
            if existing.state != ServiceState::Registered {
                return Err(ZoneError::Conflict(format!(
                    "service {serviceid} is {} in zone {} with another manifest; terminate it before changing the manifest",
                    existing.state, self.settings.name
                )));
            }
        }
        let rec = ServiceRecord::new(serviceid, manifest, service, owner);
        self.store.put(T_SERVICES, serviceid, &rec)?;
        reg.services.insert(serviceid.to_string(), rec);
        drop(reg);
        self.bump();
        Ok((Registration::Created, ServiceState::Registered))
    }

    pub fn services(&self) -> Vec<ZoneServiceView> {
        let reg = self.registry();
        reg.services.values().map(|s| self.service_view(s)).collect()
    }

    pub fn service(&self, id: &str) -> Result<ZoneServiceView, ZoneError> {
        let reg = self.registry();
        let s = reg.services.get(id).ok_or_else(|| self.no_service(id))?;
        Ok(self.service_view(s))
    }

    pub fn service_manifest(&self, id: &str) -> Result<String, ZoneError> {
        self.registry().services.get(id).map(|s| s.manifest.clone()).ok_or_else(|| self.no_service(id))
    }

    /// Changes service `id` by `f`, stores it and answers its view; the control loop is
    /// woken to carry the change out.
    pub(crate) fn update_service(
        &self,
        id: &str,
        f: impl FnOnce(&mut ServiceRecord) -> Result<(), ZoneError>,
    ) -> Result<ZoneServiceView, ZoneError> {
        let mut reg = self.registry();
        let mut rec = reg.services.get(id).cloned().ok_or_else(|| self.no_service(id))?;
        f(&mut rec)?;
        self.store.put(T_SERVICES, id, &rec)?;
        let view = self.service_view(&rec);
        reg.services.insert(id.to_string(), rec);
        drop(reg);
        self.bump();
        self.kick();
        Ok(view)
    }

    /// Makes sure one instance of `component` runs as the evaluator of service `id` here,
    /// registering the service from `manifest` first if this zone does not hold it yet.
    pub(crate) fn want_evaluator(
        &self,
        id: &str,
        manifest: &str,
        owner: Option<&str>,
        component: &str,
    ) -> Result<(), ZoneError> {
        if !self.registry().services.contains_key(id) {
            self.register_service_of(id, manifest, owner)?;
        }
        let held = self.registry().services.get(id).map(|s| (s.manifest == manifest, s.evaluator.is_some()));
        match held {
            Some((false, _)) => Err(ZoneError::Conflict(format!(
                "service {id} is registered in zone {} with another manifest",
                self.settings.name
            ))),
            Some((true, true)) => Ok(()),
            _ => self
                .update_service(id, |rec| {
                    rec.evaluator = Some(component.to_string());
                    Ok(())
                })
                .map(|_| ()),
        }
    }

    /// The 127.0.0.1 port of a running evaluator instance of `component` of `service`: its
    /// `evaluations` port, else its `admin` port; with the instance's admin secret, which both
    /// require.
    pub(crate) fn evaluator_port(&self, service: &str, component: &str) -> Option<(u16, String)> {
        let inst = self.instances_state();
        inst.records
            .values()
            .filter(|i| i.service == service && i.component == component && i.state == InstanceState::Running)
            .find_map(|i| {
                let named = |n: &str| i.ports.iter().find(|p| p.name == n).map(|p| p.public);
                named(zonal_proto::env::EVALUATIONS_PORT).or_else(|| named("admin")).map(|p| (p, i.admin_token.clone()))
            })
    }

    /// `PUT /1.0/services/{id}/slots`: instances wanted per component, and the domain's plan
    /// for them (planned hosts, overrides, remote peers), which replaces the previous one.
    pub fn set_desired(&self, id: &str, change: &ZoneSlotsChange) -> Result<ZoneServiceView, ZoneError> {
        if let Some(p) = change
            .slots
            .and_then(|n| zonal_model::limits::at_most(n, zonal_model::limits::MAX_DEMAND_SLOTS, "session slots"))
        {
            return Err(ZoneError::Invalid(format!("slots: {p}")));
        }
        let accepted = match &change.offer {
            Some(offer) => Some(AcceptedOffer { id: offer.clone(), hosts: self.offered_hosts(id, offer)? }),
            None => None,
        };
        self.update_service(id, |rec| {
            if rec.state == ServiceState::Terminating {
                return Err(ZoneError::Conflict(format!("service {id} is being deleted from this zone")));
            }
            for (comp, n) in &change.instances {
                let c = rec.service.component(comp).ok_or_else(|| {
                    ZoneError::Invalid(format!(
                        "service {id} has no component {comp:?}; expected one of {}",
                        rec.service.components.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                })?;
                if *n > c.scaling.max_instances {
                    return Err(ZoneError::Invalid(format!(
                        "component {comp} of {id}: {n} instances exceed its max_instances ({})",
                        c.scaling.max_instances
                    )));
                }
            }
            placement::check_plan(id, &rec.service, change, &self.settings.hosts).map_err(ZoneError::Invalid)?;
            rec.desired = change.instances.clone();
            rec.planned = change.instances.clone();
            rec.slots = change.slots;
            rec.planned_hosts = placement::without_zero_counts(&change.hosts);
            rec.overrides = change.overrides.clone();
            rec.remote_peers = change.remote_peers.clone();
            if accepted.is_some() {
                rec.accepted_offer = accepted.clone();
                // The domain chose: the evaluation is over, so is the evaluator's instance
                // (unless the service's own counts keep one).
                rec.evaluator = None;
            }
            Ok(())
        })
    }

    /// `PUT /1.0/services/{id}/state`.
    pub fn set_service_state(&self, id: &str, state: &str) -> Result<ZoneServiceView, ZoneError> {
        self.update_service(id, |rec| {
            if rec.state == ServiceState::Terminating {
                return Err(ZoneError::Conflict(format!("service {id} is being deleted from this zone")));
            }
            let target = requested_state(id, state)?;
            if target == ServiceState::Deployed && rec.desired.is_empty() {
                rec.desired =
                    zonal_control::place::instance_counts(&rec.service, &Default::default()).into_iter().collect();
            }
            rec.state = target;
            Ok(())
        })
    }

    /// `DELETE /1.0/services/{id}`: terminates its instances, then unregisters it.
    pub fn delete_service(&self, id: &str) -> Result<Deletion, ZoneError> {
        if !self.registry().services.contains_key(id) {
            return Err(self.no_service(id));
        }
        self.update_service(id, |rec| {
            rec.state = ServiceState::Terminating;
            Ok(())
        })?;
        Ok(if self.finish_deletions() { Deletion::Gone } else { Deletion::Pending })
    }

    /// Removes services being deleted whose instances are all gone (with their namespace).
    /// Returns true when none is left pending.
    pub(crate) fn finish_deletions(&self) -> bool {
        let mut reg = self.registry();
        let pending: Vec<String> = reg
            .services
            .values()
            .filter(|s| s.state == ServiceState::Terminating)
            .map(|s| s.serviceid.clone())
            .collect();
        let mut all_done = true;
        for id in pending {
            if self.instances_state().records.values().any(|i| i.service == id) {
                all_done = false;
                continue;
            }
            let mut batch = Batch::new().delete(T_SERVICES, &id);
            if let Ok(keys) = self.store.list_raw(T_CONTEXT, &format!("{id}/")) {
                for (k, _) in keys {
                    batch = batch.delete(T_CONTEXT, &k);
                }
            }
            // Its gateway ports and lost sessions: a service registered again starts afresh.
            if let Ok(rows) = self.store.list_raw(crate::gateway::T_GATEWAY, &format!("port/{id}/")) {
                for (k, _) in rows {
                    batch = batch.delete(crate::gateway::T_GATEWAY, &k);
                }
            }
            batch = batch.delete(crate::gateway::T_GATEWAY, &crate::gateway::lost_row(&id));
            if let Err(e) = self.store.commit(batch) {
                tracing::error!("cannot delete service {id}: {e}");
                all_done = false;
                continue;
            }
            reg.services.remove(&id);
            self.instances_state().problems.remove(&id);
            self.instances_state().lost_sessions.remove(&id);
            self.forget_gateway_ports(&id);
            // Its namespace is gone, remote-peer entries included: a service registered
            // again under this name gets them written afresh.
            self.gateway_state().published.retain(|(ns, _), _| *ns != id);
            tracing::info!(service = id, "service unregistered from the zone");
        }
        all_done
    }

    /// Adds one instance of `component` (`POST /1.0/services/{id}/instances`).
    pub fn add_instance(&self, id: &str, component: &str) -> Result<ZoneServiceView, ZoneError> {
        self.update_service(id, |rec| {
            let max = rec
                .service
                .component(component)
                .ok_or_else(|| ZoneError::Invalid(format!("service {id} has no component {component:?}")))?
                .scaling
                .max_instances;
            let n = rec.desired.entry(component.to_string()).or_insert(0);
            if *n >= max {
                return Err(ZoneError::Conflict(format!(
                    "component {component} of {id} already has its max_instances ({max})"
                )));
            }
            *n += 1;
            if rec.state == ServiceState::Registered {
                rec.state = ServiceState::Deployed;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{status, zone, zone_with_hosts, WEB};
    use zonal_proto::wire::HostInfo;

    #[test]
    fn registration_is_validated_and_idempotent() {
        let dir = tempfile::tempdir().expect("dir");
        let z = zone(dir.path());
        assert_eq!(status(z.register_service("other", WEB).expect_err("mismatch")), 400);
        let invalid = z.register_service("web", "kind: Service\nname: web\n").expect_err("invalid");
        assert_eq!(zonal_proto::ApiError::from(invalid).body.error, "invalid_manifest");
        assert_eq!(
            z.register_service("web", WEB).expect("register"),
            (Registration::Created, ServiceState::Registered)
        );
        assert_eq!(z.register_service("web", WEB).expect("again").0, Registration::Unchanged);
        let change =
            |comp: &str, n| ZoneSlotsChange { instances: [(comp.to_string(), n)].into(), ..Default::default() };
        assert_eq!(status(z.set_desired("web", &change("web", 9)).expect_err("over max")), 400);
        assert_eq!(status(z.set_desired("web", &change("nope", 1)).expect_err("unknown component")), 400);
        let v = z.set_service_state("web", "deploy").expect("deploy");
        assert_eq!(v.instances.get("web"), Some(&1), "deploy without counts uses min_instances");
        assert_eq!(v.state, "deployed");
        let changed = WEB.replace("max_instances: 3", "max_instances: 4");
        assert_eq!(status(z.register_service("web", &changed).expect_err("deployed")), 409);
        assert_eq!(status(z.unbind_domain().expect_err("active")), 409);
        assert_eq!(status(z.set_service_state("web", "explode").expect_err("unknown state")), 400);
    }

    #[test]
    fn states_are_stored_as_the_same_words_and_old_records_load() {
        for (state, word) in [
            (ServiceState::Registered, "registered"),
            (ServiceState::Deployed, "deployed"),
            (ServiceState::Terminating, "terminating"),
        ] {
            assert_eq!(serde_json::to_value(state).expect("json"), serde_json::json!(word));
            assert_eq!(state.to_string(), word);
        }
        // A record written before planned hosts, overrides and remote peers existed.
        let service = zonal_descriptor::parse_manifest("m", WEB).expect("manifest");
        let old = serde_json::json!({
            "serviceid": "web", "manifest": WEB, "service": service, "state": "deployed",
            "desired": {"web": 2}, "slots": null
        });
        let rec: ServiceRecord = serde_json::from_value(old).expect("an old record loads");
        assert_eq!(rec.state, ServiceState::Deployed);
        assert!(rec.planned_hosts.is_empty() && rec.overrides.is_empty() && rec.remote_peers.is_empty());
        assert_eq!(rec.owner, None, "a record from before owners were sent: owner unknown");
        // And a record without them is written without them (old zone managers read it).
        let text = serde_json::to_string(&rec).expect("json");
        assert!(!text.contains("planned_hosts") && !text.contains("remote_peers"), "{text}");
        let written: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert!(written.get("owner").is_none(), "{text}");
    }

    #[test]
    fn the_owner_comes_with_the_registration_and_is_recorded_on_a_repeat() {
        let dir = tempfile::tempdir().expect("dir");
        let z = zone(dir.path());
        // An older domain registers without an owner: unknown.
        z.register_service("web", WEB).expect("register");
        assert_eq!(z.registry().services["web"].owner, None);
        // The domain registers it again with its owner: recorded and stored, nothing else.
        assert_eq!(z.register_service_of("web", WEB, Some("acme")).expect("again").0, Registration::Unchanged);
        let stored: ServiceRecord = z.store.get(T_SERVICES, "web").expect("store").expect("record");
        assert_eq!(stored.owner.as_deref(), Some("acme"));
        // A registration without an owner does not forget it.
        z.register_service("web", WEB).expect("again");
        assert_eq!(z.registry().services["web"].owner.as_deref(), Some("acme"));
        let e = z.register_service_of("web", WEB, Some("a/b")).expect_err("a bad owner name");
        assert_eq!(status(e), 400);
    }

    #[test]
    fn the_plan_is_validated_and_persisted_with_the_service() {
        let dir = tempfile::tempdir().expect("dir");
        let hosts = ["h0", "h1"].map(|n| HostInfo { name: n.into(), available: true, ..Default::default() }).to_vec();
        let z = zone_with_hosts(dir.path(), hosts);
        z.register_service("web", WEB).expect("register");
        let mut change = ZoneSlotsChange { instances: [("web".to_string(), 2)].into(), ..Default::default() };
        change.hosts = [("web".to_string(), [("h1".to_string(), 2), ("h0".to_string(), 0)].into())].into();
        change.overrides = [(
            "web".to_string(),
            ComponentOverride { resources: None, requires: [("accelerator".to_string(), "t4".to_string())].into() },
        )]
        .into();
        z.set_desired("web", &change).expect("a valid plan");
        let stored: ServiceRecord = z.store.get(T_SERVICES, "web").expect("store").expect("record");
        assert_eq!(stored.planned_hosts, [("web".to_string(), [("h1".to_string(), 2)].into())].into());
        assert_eq!(stored.overrides, change.overrides);

        let mut bad = change.clone();
        bad.hosts = [("web".to_string(), [("h9".to_string(), 1)].into())].into();
        let e = z.set_desired("web", &bad).expect_err("unknown host");
        assert!(e.to_string().contains("no host \"h9\"") && e.to_string().contains("h0, h1"), "{e}");
        bad.hosts = [("web".to_string(), [("h0".to_string(), 3)].into())].into();
        let e = z.set_desired("web", &bad).expect_err("more planned than wanted");
        assert!(e.to_string().contains("3 instance(s)") && e.to_string().contains("2"), "{e}");
        // A later PUT without a plan replaces it.
        z.set_desired("web", &ZoneSlotsChange { instances: [("web".to_string(), 1)].into(), ..Default::default() })
            .expect("no plan");
        let stored: ServiceRecord = z.store.get(T_SERVICES, "web").expect("store").expect("record");
        assert!(stored.planned_hosts.is_empty() && stored.overrides.is_empty());
    }
}
