//! The domain orchestrator's logic, callable without HTTP: users and role-bound tokens, the
//! zone registry with heartbeats, the service registry, status aggregation, lifecycle rules.
//!
//! Store tables: `meta` (the domain's id and name), `users` (name → role), `tokens`
//! (SHA-256 of the token → user; tokens themselves are never stored), `zones` (name → the
//! zone's registration), `services` (name → [`ServiceRecord`]: manifest verbatim, parsed
//! service, owner, target, placement and deployment progress).
//!
//! Visibility (FUSION §3.2.1): an admin sees everything; a provider its own services and the
//! zones they run in; a zone itself and the services placed in it. Ownership violations on
//! writes are 403s, and nothing is changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use zonal_control::place::{Allocation, ZoneSummary};
use zonal_model::{Resources, Service};
use zonal_proto::wire::{
    CreateToken, CreateUser, DomainInfo, InstanceView, RegisterService, ServiceView, SlotTotals, TokenCreated,
    UserView, ZoneRegistered, ZoneRegistration, ZoneReport, ZoneView,
};
use zonal_proto::{now_ms, ApiError, Client, Principal, Role};
use zonal_store::{Batch, Store, StoreExt};

pub(crate) const T_META: &str = "meta";
pub(crate) const T_USERS: &str = "users";
pub(crate) const T_TOKENS: &str = "tokens";
pub(crate) const T_ZONES: &str = "zones";
pub(crate) const T_SERVICES: &str = "services";

/// Timing of the zone registry.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A zone that sends no heartbeat for this long is unavailable.
    pub zone_timeout: Duration,
    /// After being unavailable this much longer, its services are placed elsewhere.
    pub replace_after: Duration,
    /// How long an offer round waits for the zones' offers.
    pub offer_deadline: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            zone_timeout: Duration::from_secs(10),
            replace_after: Duration::from_secs(30),
            offer_deadline: crate::offers::DEFAULT_OFFER_DEADLINE,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub role: Role,
    pub created_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub user: String,
    pub role: Role,
    pub created_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZoneRecord {
    pub registration: ZoneRegistration,
    pub registered_ms: u64,
}

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
    /// `registered`, `placing`, `deploying`, `deployed`, `terminating`, `terminated`, `deleting`.
    pub state: String,
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

/// Liveness and the last report of one zone (memory only).
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub last_seen: Instant,
    pub report: Option<ZoneReport>,
}

/// The domain orchestrator.
pub struct DomainCore {
    pub info: DomainInfo,
    pub timing: Timing,
    pub(crate) store: Arc<dyn Store>,
    heartbeats: Mutex<HashMap<String, Heartbeat>>,
    /// Serialises read-modify-write of service records (never held across network calls).
    pub(crate) services_lock: Mutex<()>,
    pub(crate) kick: Notify,
    pub state_dir: Option<PathBuf>,
    /// How the domain decides placement (solver settings, switching costs, re-placement).
    pub decisions: crate::decisions::DecisionSettings,
    /// Serialises decisions: each one sees the capacity the previous one took.
    pub(crate) decide_lock: tokio::sync::Mutex<()>,
    /// Resolutions per service and region, for measured demand (memory only).
    resolutions: Mutex<crate::snapshot::Resolutions>,
}

pub(crate) fn store_err(e: zonal_store::StoreError) -> ApiError {
    ApiError::internal(format!("the domain's store failed: {e}"))
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_name(kind: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 128
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::bad_request(format!(
            "{kind} name {name:?} is not valid; expected 1–128 characters from a-z, A-Z, 0-9, '-', '_', '.'"
        )));
    }
    Ok(())
}

impl DomainCore {
    /// Opens the domain on `store`. On first start creates the user `admin` and returns its
    /// token (the only time it is known in clear).
    pub fn open(store: Arc<dyn Store>, name: &str, timing: Timing) -> Result<(Arc<Self>, Option<String>), String> {
        let info = match store.get::<DomainInfo>(T_META, "identity").map_err(|e| e.to_string())? {
            Some(i) => i,
            None => {
                let i = DomainInfo { id: zonal_proto::secret()[..16].to_string(), name: name.to_string() };
                store.put(T_META, "identity", &i).map_err(|e| e.to_string())?;
                i
            }
        };
        let mut bootstrap = None;
        let has_admin = store
            .list::<UserRecord>(T_USERS, "")
            .map_err(|e| e.to_string())?
            .iter()
            .any(|(_, u)| u.role == Role::Admin);
        if !has_admin {
            let token = zonal_proto::secret();
            let now = now_ms();
            let batch = Batch::new()
                .put(T_USERS, "admin", &UserRecord { name: "admin".into(), role: Role::Admin, created_ms: now })
                .and_then(|b| {
                    b.put(
                        T_TOKENS,
                        &hash(&token),
                        &TokenRecord { user: "admin".into(), role: Role::Admin, created_ms: now },
                    )
                })
                .map_err(|e| e.to_string())?;
            store.commit(batch).map_err(|e| e.to_string())?;
            bootstrap = Some(token);
        }
        // Every known zone starts with a fresh heartbeat: the domain cannot know how long it
        // was down, so zones get one timeout to report before they count as unavailable.
        let mut hb = HashMap::new();
        for (zname, _) in store.list::<ZoneRecord>(T_ZONES, "").map_err(|e| e.to_string())? {
            hb.insert(zname, Heartbeat { last_seen: Instant::now(), report: None });
        }
        let core = DomainCore {
            info,
            timing,
            store,
            heartbeats: Mutex::new(hb),
            services_lock: Mutex::new(()),
            kick: Notify::new(),
            state_dir: None,
            decisions: Default::default(),
            decide_lock: tokio::sync::Mutex::new(()),
            resolutions: Mutex::new(Default::default()),
        };
        Ok((Arc::new(core), bootstrap))
    }

    /// The same domain with other decision settings (before it serves).
    pub fn with_decisions(self: Arc<Self>, settings: crate::decisions::DecisionSettings) -> Arc<Self> {
        match Arc::try_unwrap(self) {
            Ok(mut core) => {
                core.decisions = settings;
                Arc::new(core)
            }
            Err(shared) => shared,
        }
    }

    pub(crate) fn resolutions(&self) -> MutexGuard<'_, crate::snapshot::Resolutions> {
        self.resolutions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn hb(&self) -> MutexGuard<'_, HashMap<String, Heartbeat>> {
        self.heartbeats.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn lock_services(&self) -> MutexGuard<'_, ()> {
        self.services_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn kick(&self) {
        self.kick.notify_one();
    }

    // ------------------------------------------------------------------ auth

    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let rec = self.store.get::<TokenRecord>(T_TOKENS, &hash(token)).ok()??;
        Some(Principal { name: rec.user, role: rec.role })
    }

    /// `POST /1.0/tokens`: a token for `name` with `role`; creates the user when missing.
    pub fn create_token(&self, req: &CreateToken) -> Result<TokenCreated, ApiError> {
        let role = Role::parse_user_role(&req.role).map_err(ApiError::bad_request)?;
        valid_name("user", &req.name)?;
        let now = now_ms();
        let mut batch = Batch::new();
        match self.store.get::<UserRecord>(T_USERS, &req.name).map_err(store_err)? {
            Some(u) if u.role != role => {
                return Err(ApiError::conflict(format!(
                    "user {} has the role {}; a token for it cannot have the role {role}",
                    req.name, u.role
                )))
            }
            Some(_) => {}
            None => {
                batch = batch
                    .put(T_USERS, &req.name, &UserRecord { name: req.name.clone(), role, created_ms: now })
                    .map_err(store_err)?;
            }
        }
        let token = zonal_proto::secret();
        batch = batch
            .put(T_TOKENS, &hash(&token), &TokenRecord { user: req.name.clone(), role, created_ms: now })
            .map_err(store_err)?;
        self.store.commit(batch).map_err(store_err)?;
        Ok(TokenCreated { token, name: req.name.clone(), role: role.as_str().into() })
    }

    // ------------------------------------------------------------------ users

    fn user_view(&self, u: &UserRecord) -> Result<UserView, ApiError> {
        let services = self.store.list::<ServiceRecord>(T_SERVICES, "").map_err(store_err)?;
        let tokens = self.store.list::<TokenRecord>(T_TOKENS, "").map_err(store_err)?;
        Ok(UserView {
            name: u.name.clone(),
            role: u.role.as_str().into(),
            services: services.iter().filter(|(_, s)| s.owner == u.name).count() as u32,
            tokens: tokens.iter().filter(|(_, t)| t.user == u.name).count() as u32,
        })
    }

    pub fn users(&self, caller: &Principal) -> Result<Vec<UserView>, ApiError> {
        let users = self.store.list::<UserRecord>(T_USERS, "").map_err(store_err)?;
        users
            .iter()
            .filter(|(_, u)| caller.is_admin() || u.name == caller.name)
            .map(|(_, u)| self.user_view(u))
            .collect()
    }

    pub fn user(&self, caller: &Principal, name: &str) -> Result<UserView, ApiError> {
        if !caller.is_admin() && caller.name != name {
            return Err(ApiError::forbidden(format!(
                "{} {:?} may only see its own user, not {name:?}",
                caller.role, caller.name
            )));
        }
        let u = self
            .store
            .get::<UserRecord>(T_USERS, name)
            .map_err(store_err)?
            .ok_or_else(|| ApiError::not_found(format!("no user {name:?}")))?;
        self.user_view(&u)
    }

    pub fn create_user(&self, req: &CreateUser) -> Result<UserView, ApiError> {
        let role = Role::parse_user_role(&req.role).map_err(ApiError::bad_request)?;
        valid_name("user", &req.name)?;
        if self.store.get::<UserRecord>(T_USERS, &req.name).map_err(store_err)?.is_some() {
            return Err(ApiError::conflict(format!("user {:?} already exists", req.name)));
        }
        let u = UserRecord { name: req.name.clone(), role, created_ms: now_ms() };
        self.store.put(T_USERS, &u.name, &u).map_err(store_err)?;
        self.user_view(&u)
    }

    /// Deletes a user and its tokens; refused while it owns services that run, or when it
    /// is the last admin.
    pub fn delete_user(&self, name: &str) -> Result<(), ApiError> {
        let u = self
            .store
            .get::<UserRecord>(T_USERS, name)
            .map_err(store_err)?
            .ok_or_else(|| ApiError::not_found(format!("no user {name:?}")))?;
        let services = self.store.list::<ServiceRecord>(T_SERVICES, "").map_err(store_err)?;
        let running: Vec<&str> = services
            .iter()
            .filter(|(_, s)| s.owner == name && (s.target == Target::Deployed || s.placement.is_some()))
            .map(|(k, _)| k.as_str())
            .collect();
        if !running.is_empty() {
            return Err(ApiError::conflict(format!(
                "user {name} owns running services ({}); terminate or delete them first",
                running.join(", ")
            )));
        }
        if u.role == Role::Admin {
            let admins = self
                .store
                .list::<UserRecord>(T_USERS, "")
                .map_err(store_err)?
                .iter()
                .filter(|(_, x)| x.role == Role::Admin)
                .count();
            if admins <= 1 {
                return Err(ApiError::conflict("cannot delete the last admin user; create another admin first"));
            }
        }
        if u.role == Role::Zone && self.store.get::<ZoneRecord>(T_ZONES, name).map_err(store_err)?.is_some() {
            return Err(ApiError::conflict(format!(
                "user {name} is the identity of a registered zone; delete the zone first"
            )));
        }
        let mut batch = Batch::new().delete(T_USERS, name);
        for (h, t) in self.store.list::<TokenRecord>(T_TOKENS, "").map_err(store_err)? {
            if t.user == name {
                batch = batch.delete(T_TOKENS, &h);
            }
        }
        for (k, s) in &services {
            if s.owner == name {
                batch = batch.delete(T_SERVICES, k);
            }
        }
        self.store.commit(batch).map_err(store_err)
    }

    // ------------------------------------------------------------------ zones

    /// `POST /1.0/zones`: a zone registers itself (or an admin registers one).
    pub fn register_zone(&self, caller: &Principal, reg: ZoneRegistration) -> Result<ZoneRegistered, ApiError> {
        valid_name("zone", &reg.name)?;
        if caller.role == Role::Zone && caller.name != reg.name {
            return Err(ApiError::forbidden(format!(
                "zone identity {:?} may only register the zone of the same name, not {:?}",
                caller.name, reg.name
            )));
        }
        if !(reg.endpoint.starts_with("http://") || reg.endpoint.starts_with("https://")) {
            return Err(ApiError::bad_request(format!(
                "zone {}: endpoint {:?} is not a URL; expected http://host:port",
                reg.name, reg.endpoint
            )));
        }
        let rec = ZoneRecord { registration: reg.clone(), registered_ms: now_ms() };
        self.store.put(T_ZONES, &reg.name, &rec).map_err(store_err)?;
        self.hb().entry(reg.name.clone()).or_insert(Heartbeat { last_seen: Instant::now(), report: None }).last_seen =
            Instant::now();
        tracing::info!(zone = reg.name, endpoint = reg.endpoint, "zone registered");
        self.kick();
        Ok(ZoneRegistered { domain: self.info.clone(), zone: self.zone_view(&rec) })
    }

    /// `PUT /1.0/zones/{zone}/status`: a heartbeat. Also reconciles the zone's services with
    /// the domain's placements (a zone that lost a service is re-driven; a zone holding a
    /// service the domain no longer places there is told to drop it).
    pub fn zone_status(&self, caller: &Principal, name: &str, report: ZoneReport) -> Result<(), ApiError> {
        if caller.role == Role::Zone && caller.name != name {
            return Err(ApiError::forbidden(format!(
                "zone identity {:?} may only report for itself, not {name:?}",
                caller.name
            )));
        }
        if self.store.get::<ZoneRecord>(T_ZONES, name).map_err(store_err)?.is_none() {
            return Err(ApiError::not_found(format!("zone {name:?} is not registered; POST /1.0/zones first")));
        }
        let reported: BTreeSet<String> = report.services.iter().map(|s| s.serviceid.clone()).collect();
        {
            let mut hb = self.hb();
            let e = hb.entry(name.to_string()).or_insert(Heartbeat { last_seen: Instant::now(), report: None });
            e.last_seen = Instant::now();
            e.report = Some(report);
        }
        let _g = self.lock_services();
        let services = self.store.list::<ServiceRecord>(T_SERVICES, "").map_err(store_err)?;
        let mut batch = Batch::new();
        let mut changed = false;
        for (id, mut s) in services {
            let placed_here = s.placement.iter().chain(s.previous.iter()).any(|p| p.zones.contains_key(name));
            let mut dirty = false;
            if placed_here && s.target == Target::Deployed && !reported.contains(&id) {
                if let Some(p) = s.progress.get_mut(name) {
                    if p.registered {
                        tracing::warn!(
                            zone = name,
                            service = id,
                            "the zone lost the service: deploying it there again"
                        );
                        *p = ZoneProgress::default();
                        dirty = true;
                    }
                }
            }
            if !placed_here && reported.contains(&id) && !s.cleanup.contains(name) && !s.draining.contains_key(name) {
                s.cleanup.insert(name.to_string());
                dirty = true;
            }
            if dirty {
                if s.state == "deployed" {
                    s.state = "deploying".into();
                }
                batch = batch.put(T_SERVICES, &id, &s).map_err(store_err)?;
                changed = true;
            }
        }
        self.store.commit(batch).map_err(store_err)?;
        if changed {
            self.kick();
        }
        Ok(())
    }

    /// Is the zone heard from recently enough?
    pub fn zone_available(&self, name: &str) -> bool {
        self.hb().get(name).is_some_and(|h| h.last_seen.elapsed() <= self.timing.zone_timeout)
    }

    /// How long the zone has been silent beyond its timeout (None while available).
    pub(crate) fn zone_down_for(&self, name: &str) -> Option<Duration> {
        let hb = self.hb();
        let since = hb.get(name).map_or(Duration::MAX, |h| h.last_seen.elapsed());
        since.checked_sub(self.timing.zone_timeout)
    }

    fn zone_view(&self, rec: &ZoneRecord) -> ZoneView {
        let r = &rec.registration;
        let hb = self.hb().get(&r.name).cloned();
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
            state: if self.zone_available(&r.name) { "available".into() } else { "unavailable".into() },
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

    fn zone_visible(&self, caller: &Principal, zone: &str) -> Result<bool, ApiError> {
        Ok(match caller.role {
            Role::Admin | Role::Domain => true,
            Role::Zone => caller.name == zone,
            _ => self
                .visible_services(caller)?
                .iter()
                .any(|s| s.placement.as_ref().is_some_and(|p| p.zones.contains_key(zone))),
        })
    }

    pub fn zones(&self, caller: &Principal) -> Result<Vec<ZoneView>, ApiError> {
        let mut out = Vec::new();
        for (name, rec) in self.store.list::<ZoneRecord>(T_ZONES, "").map_err(store_err)? {
            if self.zone_visible(caller, &name)? {
                out.push(self.zone_view(&rec));
            }
        }
        Ok(out)
    }

    pub fn zone(&self, caller: &Principal, name: &str) -> Result<ZoneView, ApiError> {
        let rec = self.zone_record(name)?;
        if !self.zone_visible(caller, name)? {
            return Err(ApiError::forbidden(format!("{} {:?} may not see zone {name}", caller.role, caller.name)));
        }
        Ok(self.zone_view(&rec))
    }

    pub(crate) fn zone_record(&self, name: &str) -> Result<ZoneRecord, ApiError> {
        self.store
            .get::<ZoneRecord>(T_ZONES, name)
            .map_err(store_err)?
            .ok_or_else(|| ApiError::not_found(format!("no zone {name:?} is registered in domain {}", self.info.name)))
    }

    /// Deletes a zone; refused while services are placed there or it runs instances.
    pub fn delete_zone(&self, name: &str) -> Result<(), ApiError> {
        let view = self.zone_view(&self.zone_record(name)?);
        let services = self.store.list::<ServiceRecord>(T_SERVICES, "").map_err(store_err)?;
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
            return Err(ApiError::conflict(format!(
                "zone {name} still runs {} instance(s) of services ({}); terminate them (zonal delete service …) before deleting the zone",
                view.instances,
                if placed.is_empty() { "not placed by this domain".to_string() } else { placed.join(", ") }
            )));
        }
        self.store.delete(T_ZONES, name).map_err(store_err)?;
        self.hb().remove(name);
        Ok(())
    }

    /// Zone summaries for placement.
    pub fn zone_summaries(&self) -> Result<Vec<ZoneSummary>, ApiError> {
        let zones = self.store.list::<ZoneRecord>(T_ZONES, "").map_err(store_err)?;
        Ok(zones
            .into_iter()
            .map(|(name, rec)| {
                let report = self.hb().get(&name).and_then(|h| h.report.clone());
                let hosts = match report {
                    Some(r) => r.hosts,
                    None => rec
                        .registration
                        .hosts
                        .iter()
                        .map(|h| zonal_control::place::HostSummary {
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
    pub fn zone_client(&self, name: &str) -> Result<Client, String> {
        self.zone_client_within(name, Duration::from_secs(5))
    }

    /// A client for zone `name` whose requests give up after `timeout`.
    pub fn zone_client_within(&self, name: &str, timeout: Duration) -> Result<Client, String> {
        let rec = self
            .store
            .get::<ZoneRecord>(T_ZONES, name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("zone {name} is not registered"))?;
        Client::new(&rec.registration.endpoint, Some(rec.registration.api_key.clone()), timeout)
            .map_err(|e| e.to_string())
    }

    // ------------------------------------------------------------------ services

    pub(crate) fn service_record(&self, id: &str) -> Result<ServiceRecord, ApiError> {
        self.store
            .get::<ServiceRecord>(T_SERVICES, id)
            .map_err(store_err)?
            .ok_or_else(|| ApiError::not_found(format!("no service {id:?} is registered in domain {}", self.info.name)))
    }

    fn can_see(&self, caller: &Principal, s: &ServiceRecord) -> bool {
        match caller.role {
            Role::Admin | Role::Domain => true,
            Role::Provider => s.owner == caller.name,
            Role::Zone => s.placement.as_ref().is_some_and(|p| p.zones.contains_key(&caller.name)),
            Role::Instance => false,
        }
    }

    /// The service if the caller may see it (403 naming the owner otherwise).
    pub fn visible_service(&self, caller: &Principal, id: &str) -> Result<ServiceRecord, ApiError> {
        let s = self.service_record(id)?;
        if !self.can_see(caller, &s) {
            return Err(ApiError::forbidden(format!(
                "service {id} belongs to {}; {} {:?} may not access it",
                s.owner, caller.role, caller.name
            )));
        }
        Ok(s)
    }

    pub(crate) fn owned(&self, caller: &Principal, id: &str) -> Result<ServiceRecord, ApiError> {
        let s = self.visible_service(caller, id)?;
        if !(caller.is_admin() || (caller.role == Role::Provider && s.owner == caller.name)) {
            return Err(ApiError::forbidden(format!(
                "only the owner of service {id} ({}) or an admin may change it",
                s.owner
            )));
        }
        Ok(s)
    }

    pub fn visible_services(&self, caller: &Principal) -> Result<Vec<ServiceRecord>, ApiError> {
        Ok(self
            .store
            .list::<ServiceRecord>(T_SERVICES, "")
            .map_err(store_err)?
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| self.can_see(caller, s))
            .collect())
    }

    /// Status aggregation: slots and zones from the zones' latest reports.
    pub fn service_view(&self, s: &ServiceRecord) -> ServiceView {
        let mut slots = SlotTotals::default();
        let placement = s.placement.clone().unwrap_or_default();
        let hb = self.hb();
        for zone in placement.zones.keys() {
            if let Some(v) = hb
                .get(zone)
                .and_then(|h| h.report.as_ref())
                .and_then(|r| r.services.iter().find(|x| x.serviceid == s.serviceid))
            {
                slots.add(v.slots);
            }
        }
        ServiceView {
            serviceid: s.serviceid.clone(),
            owner: s.owner.clone(),
            state: s.state.clone(),
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

    /// The record a manifest would register as (validated; nothing stored): the service,
    /// its owner (the caller for a provider), nothing placed.
    pub(crate) fn candidate_record(
        &self,
        caller: &Principal,
        serviceid: Option<&str>,
        manifest: &str,
    ) -> Result<ServiceRecord, ApiError> {
        let file = serviceid.map_or_else(|| "manifest".to_string(), |s| format!("manifest of {s}"));
        let service = zonal_descriptor::parse_manifest(&file, manifest)
            .map_err(|e| ApiError::invalid_manifest(e.summary.clone(), e.diagnostic_lines()))?;
        let id = service.name.clone();
        valid_name("service", &id)?;
        if let Some(want) = serviceid {
            if want != id {
                return Err(ApiError::bad_request(format!(
                    "serviceid {want:?} does not match the manifest's service name {id:?}"
                )));
            }
        }
        let owner = match caller.role {
            Role::Provider => {
                if let Some(o) = service.owner.as_ref().filter(|o| *o != &caller.name) {
                    return Err(ApiError::forbidden(format!(
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
            state: "registered".into(),
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
    /// an invalid one).
    pub fn register_service(&self, caller: &Principal, req: &RegisterService) -> Result<(u16, ServiceView), ApiError> {
        let rec = self.candidate_record(caller, req.serviceid.as_deref(), &req.manifest)?;
        let id = rec.serviceid.clone();
        let _g = self.lock_services();
        if let Some(existing) = self.store.get::<ServiceRecord>(T_SERVICES, &id).map_err(store_err)? {
            if !self.can_see(caller, &existing) || (caller.role == Role::Provider && existing.owner != caller.name) {
                return Err(ApiError::conflict(format!("a service named {id} is already registered by another owner")));
            }
            if existing.manifest == req.manifest && existing.target != Target::Deleted {
                return Ok((200, self.service_view(&existing)));
            }
            if existing.target == Target::Deployed || existing.placement.is_some() || existing.target == Target::Deleted
            {
                return Err(ApiError::conflict(format!(
                    "service {id} is {} with a different manifest; delete it (zonal delete service {id}) before registering the new one",
                    existing.state
                )));
            }
        }
        self.store.put(T_SERVICES, &id, &rec).map_err(store_err)?;
        tracing::info!(service = id, owner = rec.owner, "service registered");
        Ok((201, self.service_view(&rec)))
    }

    /// Changes a record without an owner's request (an event of the domain itself).
    pub(crate) fn update_service_quietly(&self, id: &str, f: impl FnOnce(&mut ServiceRecord)) -> Result<(), ApiError> {
        let _g = self.lock_services();
        let Some(mut s) = self.store.get::<ServiceRecord>(T_SERVICES, id).map_err(store_err)? else { return Ok(()) };
        f(&mut s);
        self.store.put(T_SERVICES, id, &s).map_err(store_err)
    }

    pub(crate) fn update_service(
        &self,
        caller: &Principal,
        id: &str,
        f: impl FnOnce(&mut ServiceRecord) -> Result<(), ApiError>,
    ) -> Result<ServiceView, ApiError> {
        let _g = self.lock_services();
        let mut s = self.owned(caller, id)?;
        f(&mut s)?;
        s.generation += 1;
        s.attempt = 0;
        s.next_try_ms = 0;
        self.store.put(T_SERVICES, id, &s).map_err(store_err)?;
        drop(_g);
        self.kick();
        Ok(self.service_view(&s))
    }

    /// `PUT /1.0/services/{id}/state`.
    pub fn set_state(&self, caller: &Principal, id: &str, state: &str) -> Result<ServiceView, ApiError> {
        self.update_service(caller, id, |s| {
            if s.target == Target::Deleted {
                return Err(ApiError::conflict(format!("service {id} is being deleted")));
            }
            match state {
                "deploy" | "deployed" | "provision" => {
                    s.target = Target::Deployed;
                    if s.state != "deployed" {
                        s.state = "deploying".into();
                    }
                }
                "terminate" | "terminated" => {
                    s.target = Target::Terminated;
                    s.state = if s.placement.is_some() || !s.cleanup.is_empty() || !s.draining.is_empty() {
                        "terminating".into()
                    } else {
                        "terminated".into()
                    };
                }
                "register" | "registered" => {
                    s.target = Target::Registered;
                    s.state = if s.placement.is_some() || !s.cleanup.is_empty() || !s.draining.is_empty() {
                        "terminating".into()
                    } else {
                        "registered".into()
                    };
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown state {other:?} for service {id}; expected register, provision, deploy or terminate"
                    )))
                }
            }
            s.message = None;
            Ok(())
        })
    }

    /// `DELETE /1.0/services/{id}`: terminate everywhere, then unregister.
    pub fn delete_service(&self, caller: &Principal, id: &str) -> Result<ServiceView, ApiError> {
        self.update_service(caller, id, |s| {
            s.target = Target::Deleted;
            s.state = "deleting".into();
            Ok(())
        })
    }

    /// Instances of the visible services, asked live from their zones.
    pub async fn instances(&self, caller: &Principal, service: Option<&str>) -> Result<Vec<InstanceView>, ApiError> {
        let services = match service {
            Some(id) => vec![self.visible_service(caller, id)?],
            None => self.visible_services(caller)?,
        };
        let mut by_zone: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &services {
            let zones: BTreeSet<String> = s
                .placement
                .iter()
                .chain(s.previous.iter())
                .flat_map(|p| p.zones.keys().cloned())
                .chain(s.cleanup.iter().cloned())
                .chain(s.draining.keys().cloned())
                .collect();
            for z in zones {
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
    pub async fn instance_logs(&self, caller: &Principal, id: &str, lines: usize) -> Result<String, ApiError> {
        for inst in self.instances(caller, None).await? {
            if inst.id == id {
                let client = self.zone_client(&inst.zone).map_err(ApiError::unavailable)?;
                let (_, bytes) = client
                    .send_raw(axum::http::Method::GET, &format!("/1.0/instances/{id}/logs?lines={lines}"), None)
                    .await
                    .map_err(|e| ApiError::unavailable(e.to_string()))?;
                return Ok(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        Err(ApiError::not_found(format!("no instance {id:?} among the services you can see")))
    }
}

impl DomainCore {
    /// A service as one zone reports it (both `/services/{s}/zones/{z}` and
    /// `/zones/{z}/services/{s}`).
    pub fn service_in_zone(&self, caller: &Principal, id: &str, zone: &str) -> Result<serde_json::Value, ApiError> {
        let s = self.visible_service(caller, id)?;
        let placed = s.placement.as_ref().and_then(|p| p.zones.get(zone)).cloned();
        let Some(instances) = placed else {
            return Err(ApiError::not_found(format!("service {id} is not placed in zone {zone}")));
        };
        let reported = self
            .hb()
            .get(zone)
            .and_then(|h| h.report.as_ref())
            .and_then(|r| r.services.iter().find(|x| x.serviceid == id).cloned());
        Ok(serde_json::json!({
            "serviceid": id,
            "zone": zone,
            "zone_state": if self.zone_available(zone) { "available" } else { "unavailable" },
            "instances": instances,
            "progress": s.progress.get(zone),
            "state": reported.as_ref().map_or("unknown".to_string(), |r| r.state.clone()),
            "running": reported.as_ref().map_or(0, |r| r.running),
            "advertised": reported.as_ref().map_or(0, |r| r.advertised),
            "endpoints": reported.as_ref().map(|r| r.endpoints.clone()).unwrap_or_default(),
            "peers": reported.as_ref().map(|r| r.peers.clone()).unwrap_or_default(),
            "gateway_sessions": reported.as_ref().map_or(0, |r| r.gateway_sessions),
            "lost_sessions": reported.as_ref().map_or(0, |r| r.lost_sessions),
            "slots": reported.map(|r| r.slots).unwrap_or_default(),
        }))
    }

    /// Prometheus gauges of the domain.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let zones = self.store.list::<ZoneRecord>(T_ZONES, "").unwrap_or_default();
        let available = zones.iter().filter(|(n, _)| self.zone_available(n)).count();
        let _ = writeln!(out, "# HELP zonal_domain_zones Registered zones by availability.");
        let _ = writeln!(out, "# TYPE zonal_domain_zones gauge");
        let _ = writeln!(out, "zonal_domain_zones{{state=\"available\"}} {available}");
        let _ = writeln!(out, "zonal_domain_zones{{state=\"unavailable\"}} {}", zones.len() - available);
        let instances: u32 = self.hb().values().filter_map(|h| h.report.as_ref()).map(|r| r.instances).sum();
        let _ = writeln!(out, "# HELP zonal_domain_instances Instances reported by all zones.");
        let _ = writeln!(out, "# TYPE zonal_domain_instances gauge");
        let _ = writeln!(out, "zonal_domain_instances {instances}");
        let services = self.store.list::<ServiceRecord>(T_SERVICES, "").unwrap_or_default();
        let mut by_state: BTreeMap<String, u32> = BTreeMap::new();
        for (_, s) in &services {
            *by_state.entry(s.state.clone()).or_default() += 1;
        }
        let _ = writeln!(out, "# HELP zonal_domain_services Services by state.");
        let _ = writeln!(out, "# TYPE zonal_domain_services gauge");
        for (st, n) in by_state {
            let _ = writeln!(out, "zonal_domain_services{{state=\"{st}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP zonal_domain_slots Session slots per service, domain-wide.");
        let _ = writeln!(out, "# TYPE zonal_domain_slots gauge");
        for (_, s) in &services {
            let v = self.service_view(s);
            let _ = writeln!(out, "zonal_domain_slots{{service=\"{}\",kind=\"total\"}} {}", s.serviceid, v.slots.total);
            let _ = writeln!(out, "zonal_domain_slots{{service=\"{}\",kind=\"free\"}} {}", s.serviceid, v.slots.free);
        }
    }
}

/// Awaits the futures one after the other, collecting their outputs in order. Zones answer
/// in milliseconds on a laptop; a concurrent join is a later optimisation.
pub(crate) async fn futures_join<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::with_capacity(futs.len());
    for f in futs {
        out.push(f.await);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonal_proto::wire::HostInfo;
    use zonal_store::MemStore;

    const WEB: &str = "kind: Service\nname: web\nowner: acme\ncomponents:\n  - name: web\n    run: zonal workload\n    resources: {cpu: 1}\n";

    fn admin() -> Principal {
        Principal { name: "admin".into(), role: Role::Admin }
    }

    fn open() -> Arc<DomainCore> {
        DomainCore::open(Arc::new(MemStore::new()), "t", Timing::default()).expect("open").0
    }

    fn zone(core: &DomainCore, name: &str) {
        let reg = ZoneRegistration {
            name: name.into(),
            endpoint: "http://127.0.0.1:9".into(),
            api_key: "k".into(),
            tier: None,
            hosts: vec![HostInfo {
                name: "h".into(),
                capacity: Resources::new().with("cpu", zonal_model::Amount::cpu(8000)),
                features: Default::default(),
                available: true,
                power: Default::default(),
            }],
            location: None,
            price: None,
        };
        core.register_zone(&admin(), reg).expect("zone");
    }

    #[test]
    fn bootstrap_creates_one_admin_whose_token_works_once_hashed() {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        let (core, token) = DomainCore::open(store.clone(), "t", Timing::default()).expect("open");
        let token = token.expect("first start yields a token");
        assert_eq!(core.authenticate(&token).map(|p| p.role), Some(Role::Admin));
        assert!(core.authenticate("guess").is_none());
        // Only the hash is stored.
        let raw = store.list_raw(T_TOKENS, "").expect("tokens");
        assert!(raw.iter().all(|(k, v)| !k.contains(&token) && !String::from_utf8_lossy(v).contains(&token)));
        let (_, again) = DomainCore::open(store, "t", Timing::default()).expect("reopen");
        assert!(again.is_none(), "no second bootstrap token");
    }

    #[test]
    fn provider_tokens_see_and_change_only_their_own_services() {
        let core = open();
        let acme = core.create_token(&CreateToken { role: "provider".into(), name: "acme".into() }).expect("token");
        let acme = core.authenticate(&acme.token).expect("acme");
        let other = Principal { name: "other".into(), role: Role::Provider };
        let (status, v) =
            core.register_service(&acme, &RegisterService { serviceid: None, manifest: WEB.into() }).expect("register");
        assert_eq!((status, v.owner.as_str()), (201, "acme"));
        assert!(core.visible_services(&other).expect("list").is_empty());
        assert_eq!(core.set_state(&other, "web", "deploy").expect_err("403").status, 403);
        assert_eq!(core.service_record("web").expect("web").target, Target::Registered);
        // Same manifest again: idempotent.
        assert_eq!(
            core.register_service(&acme, &RegisterService { serviceid: None, manifest: WEB.into() }).expect("again").0,
            200
        );
        // A token cannot change an existing user's role.
        assert_eq!(
            core.create_token(&CreateToken { role: "admin".into(), name: "acme".into() }).expect_err("409").status,
            409
        );
    }

    #[test]
    fn lifecycle_rules_refuse_deleting_zones_and_users_with_running_dependents() {
        let core = open();
        zone(&core, "z1");
        let acme = Principal { name: "acme".into(), role: Role::Provider };
        core.create_user(&CreateUser { name: "acme".into(), role: "provider".into() }).expect("user");
        core.register_service(&acme, &RegisterService { serviceid: None, manifest: WEB.into() }).expect("register");
        // Placed through the pipeline, as `PUT …/state deploy` does.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(core.deploy_service(&acme, "web", false))
            .expect("deployed");
        assert_eq!(core.service_record("web").expect("web").placement.map(|p| p.instances()), Some(1));
        let e = core.delete_zone("z1").expect_err("zone runs web");
        assert_eq!(e.status, 409);
        assert!(e.body.detail.contains("web"), "{}", e.body.detail);
        let e = core.delete_user("acme").expect_err("acme runs web");
        assert_eq!(e.status, 409);
        assert!(
            core.zone_record("z1").is_ok() && core.store.get::<UserRecord>(T_USERS, "acme").expect("get").is_some()
        );
        assert_eq!(core.delete_user("admin").expect_err("last admin").status, 409);
    }

    #[test]
    fn zones_register_only_themselves_and_heartbeats_need_registration() {
        let core = open();
        let z = Principal { name: "z1".into(), role: Role::Zone };
        let reg = ZoneRegistration {
            name: "z2".into(),
            endpoint: "http://127.0.0.1:1".into(),
            api_key: "k".into(),
            tier: None,
            hosts: vec![],
            location: None,
            price: None,
        };
        assert_eq!(core.register_zone(&z, reg).expect_err("403").status, 403);
        assert_eq!(core.zone_status(&z, "z1", ZoneReport::default()).expect_err("404").status, 404);
        let reg = ZoneRegistration {
            name: "z1".into(),
            endpoint: "not a url".into(),
            api_key: "k".into(),
            tier: None,
            hosts: vec![],
            location: None,
            price: None,
        };
        assert_eq!(core.register_zone(&z, reg).expect_err("400").status, 400);
        assert!(core.zones(&admin()).expect("zones").is_empty());
    }
}
