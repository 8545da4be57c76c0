//! The zone manager's logic, callable without HTTP.
//!
//! [`ZoneCore`] holds the zone's registered services, desired instance counts and instance
//! records (durable, in the store) and what only lives while the manager runs (which
//! processes it watches, the last slot reports). API handlers call its methods; one control
//! loop ([`ZoneCore::run`]) owns every change to instance processes: it turns process events
//! into record updates, asks the pure reconciler (`zonal_control::reconcile`) what to do,
//! and does it through the DC adaptor.
//!
//! Store tables: `meta` (identity, domain binding, DCA), `services` (id → [`ServiceRecord`]),
//! `instances` (id → [`InstanceRecord`]), `context` (`<namespace>/<key>` → JSON).
//!
//! Crash rules:
//! * An instance record is written *before* its process is started and again with its pid
//!   right after, so a crash in between leaves a record without pid; on restart such a
//!   process is found by its token in `/proc`.
//! * On start, every record with a pid is checked: alive with the same kernel start time and
//!   token → *adopt*; otherwise → *lost* (forgotten and replaced by the reconciler).
//! * A clean stop (SIGTERM/SIGINT to the manager) stops every instance and drops its record;
//!   desired counts stay, so the next start brings the service back.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::AbortHandle;
use zonal_control::backoff::{after_crash, Backoff};
use zonal_control::place::{pick_host, with_symmetric_anti_affinity, HostSummary};
use zonal_control::reconcile::{reconcile, Action, InstanceState, Observed, SlotUsage};
use zonal_control::slots::{
    advertised_slots, pick, scale, BalancePolicy, Candidate, InstanceSlots as SlotInstance, ScaleAction, ScalerMemory,
    ScalerPolicy, SlotState,
};
use zonal_model::{Resources, RunSpec, Service};
use zonal_proto::env::{self as penv, PortMapping};
use zonal_proto::wire::{
    DcaView, DomainBinding, HostInfo, InstanceSlots, InstanceView, Meter, SlotTotals, StateReply, ZoneReport,
    ZoneServiceView, ZoneSlotsChange,
};
use zonal_proto::{now_ms, ApiError, Principal, Role};
use zonal_store::{Batch, Store, StoreExt};

use crate::adaptor::{DcAdaptor, LaunchSpec, ProcessStatus};

const T_META: &str = "meta";
const T_SERVICES: &str = "services";
const T_INSTANCES: &str = "instances";
const T_CONTEXT: &str = "context";

/// How long an instance that never reports slots stays `provisioning`.
const PROVISIONING_GRACE_MS: u64 = 3_000;

/// A service registered in this zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub serviceid: String,
    /// The manifest, verbatim.
    pub manifest: String,
    pub service: Service,
    /// `registered`, `deployed` or `terminating` (being deleted).
    pub state: String,
    /// Instances wanted per component while deployed.
    pub desired: BTreeMap<String, u32>,
    pub slots: Option<u32>,
    /// The offer the domain accepted for these slots, and the hosts it named: new instances
    /// go there while they have room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_offer: Option<AcceptedOffer>,
    /// The component that evaluates this zone for the service (an offer request asked for
    /// it): one instance of it runs until the domain accepts an offer or removes the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluator: Option<String>,
}

/// An offer of this zone that the domain accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptedOffer {
    pub id: String,
    pub hosts: Vec<String>,
}

/// One instance, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub id: String,
    pub service: String,
    pub component: String,
    pub host: String,
    /// The instance's secret (its bearer token here, and its mark in `/proc/<pid>/environ`).
    pub token: String,
    pub pid: Option<u32>,
    pub start_time: u64,
    pub ports: Vec<PortMapping>,
    pub workdir: PathBuf,
    pub log: PathBuf,
    pub state: InstanceState,
    pub restarts: u32,
    pub started_ms: Option<u64>,
    pub restart_at_ms: Option<u64>,
    pub last_exit: Option<String>,
    pub resources: Resources,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Identity {
    api_key: String,
    last_addr: Option<String>,
}

/// An adopted process to check: id, pid, kernel start time, token.
type AdoptedProcess = (String, u32, u64, String);

enum Event {
    Exited { id: String, pid: u32, status: String },
    Stopped { id: String },
}

#[derive(Default)]
pub(crate) struct Runtime {
    pub(crate) services: BTreeMap<String, ServiceRecord>,
    pub(crate) instances: BTreeMap<String, InstanceRecord>,
    /// Instances whose process is watched (our child, or adopted and polled).
    supervised: HashSet<String>,
    /// Adopted instances (not our children: polled through /proc).
    adopted: HashSet<String>,
    slots: HashMap<String, InstanceSlots>,
    tokens: HashMap<String, String>,
    /// Last problem starting instances, per service.
    problems: BTreeMap<String, String>,
    domain: Option<DomainBinding>,
    dca_attached: bool,
    /// Gateway listeners per (service, component, port name): the entry component's are the
    /// zone's public endpoints; the others serve connections between components (channels).
    gateways: BTreeMap<GatewayKey, (SocketAddr, AbortHandle)>,
    /// Sessions the gateway proxies now, per instance and per (instance, port name). Counted
    /// here, synchronously with the choice, because slot reports lag behind new sessions.
    pub(crate) gw_sessions: HashMap<String, u32>,
    gw_port_sessions: HashMap<(String, u16), u32>,
    /// Configurations of a service overlaid on running instances of other services
    /// (FUSION's virtual elastic scaling, §2.3.2.2): guest service → host instance → overlay.
    /// Memory only: after a zone manager restart the scaler starts from instances again.
    overlays: BTreeMap<String, BTreeMap<String, Overlay>>,
    /// Smoothed connect latency to each instance (µs), for power-of-two choices.
    ewma_us: HashMap<String, f64>,
    /// Connections the gateway turned away for lack of slots, per service.
    gw_rejected: BTreeMap<String, u64>,
    /// When the scaler last acted, per service.
    scaler: HashMap<String, ScalerMemory>,
    /// Sessions that were open on instances that died, per service.
    lost_sessions: BTreeMap<String, u64>,
    /// Instance moves to another host, by the moving instance's id (persisted).
    pub(crate) moves: BTreeMap<String, crate::moves::MoveRecord>,
    /// State of the gateway's random choices (power of two).
    rng: u64,
}

/// Settings of a zone manager.
#[derive(Debug, Clone)]
pub struct ZoneSettings {
    pub name: String,
    pub tier: Option<String>,
    pub hosts: Vec<HostInfo>,
    /// The zone's prices (quoted in offers).
    pub price: zonal_model::Price,
    pub state_dir: PathBuf,
    /// How long a stopping instance gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// The scaler's and the gateway's settings.
    pub slots: SlotSettings,
}

/// How the zone scales on session slots and balances new sessions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlotSettings {
    /// The gateway's choice of instance for a new connection.
    pub balance: BalancePolicy,
    /// Scale in only while `min_free + hysteresis` slots stay free without the victim.
    pub hysteresis: u32,
    /// Least time between two scale-outs, and between two scale-ins.
    pub cooldown_out: Duration,
    pub cooldown_in: Duration,
}

impl Default for SlotSettings {
    fn default() -> Self {
        SlotSettings {
            balance: BalancePolicy::LeastLoaded,
            hysteresis: 5,
            cooldown_out: Duration::from_secs(1),
            cooldown_in: Duration::from_secs(10),
        }
    }
}

/// A gateway listener: (service, component, port name).
pub(crate) type GatewayKey = (String, String, String);

/// Capacity assumed for an instance behind an internal gateway that reports no slots (a
/// plain process): it is then balanced by open connections alone.
const UNREPORTED_CAPACITY: u32 = 1 << 20;

/// What the gateway chose for a new connection.
pub(crate) struct Picked {
    pub instance: String,
    pub addr: SocketAddr,
}

/// A configuration of a guest service on a host instance (named after the guest service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Overlay {
    /// Its port on the host instance; 0 while it is being added.
    port: u16,
    /// Most sessions of the guest on the host.
    cap: u32,
    /// Scaled in: no new sessions, removed once its last session ends.
    draining: bool,
}

/// The zone manager.
pub struct ZoneCore {
    pub settings: ZoneSettings,
    /// Itself, for the gateway tasks (which must not keep the zone alive).
    me: Weak<ZoneCore>,
    api_key: String,
    url: Mutex<String>,
    pub(crate) store: Arc<dyn Store>,
    adaptor: Arc<dyn DcAdaptor>,
    rt: Mutex<Runtime>,
    kick: Notify,
    events: mpsc::UnboundedSender<Event>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    /// Bumped on every change a heartbeat should carry.
    pub changed: watch::Sender<u64>,
    /// Offers made to the domain, until they expire.
    pub(crate) offers: Mutex<crate::offers::OfferBook>,
}

fn store_err(e: zonal_store::StoreError) -> ApiError {
    ApiError::internal(format!("the zone's store failed: {e}"))
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

/// Parses a manifest with `zonal_descriptor::parse_manifest`; a refused one becomes the
/// `400 invalid_manifest` answer with every diagnostic.
pub fn parse_manifest(file: &str, manifest: &str) -> Result<Service, ApiError> {
    zonal_descriptor::parse_manifest(file, manifest)
        .map_err(|e| ApiError::invalid_manifest(e.summary.clone(), e.diagnostic_lines()))
}

impl ZoneCore {
    /// Opens the zone: loads the store and checks every recorded process.
    pub fn open(
        settings: ZoneSettings,
        store: Arc<dyn Store>,
        adaptor: Arc<dyn DcAdaptor>,
    ) -> Result<Arc<Self>, String> {
        let identity = match store.get::<Identity>(T_META, "identity").map_err(|e| e.to_string())? {
            Some(i) => i,
            None => {
                let i = Identity { api_key: zonal_proto::secret(), last_addr: None };
                store.put(T_META, "identity", &i).map_err(|e| e.to_string())?;
                i
            }
        };
        let mut rt = Runtime { dca_attached: true, ..Default::default() };
        rt.domain = store.get(T_META, "domain").map_err(|e| e.to_string())?;
        if let Some(attached) = store.get::<bool>(T_META, "dca_attached").map_err(|e| e.to_string())? {
            rt.dca_attached = attached;
        }
        for (id, s) in store.list::<ServiceRecord>(T_SERVICES, "").map_err(|e| e.to_string())? {
            rt.services.insert(id, s);
        }
        for (id, m) in store.list::<crate::moves::MoveRecord>(crate::moves::T_MOVES, "").map_err(|e| e.to_string())? {
            rt.moves.insert(id, m);
        }
        let mut batch = Batch::new();
        for (id, mut rec) in store.list::<InstanceRecord>(T_INSTANCES, "").map_err(|e| e.to_string())? {
            if rec.pid.is_none() && rec.state != InstanceState::Failed {
                if let Some((pid, start)) = crate::process::find_by_token(&rec.token) {
                    tracing::info!(instance = id, pid, "found the process of an instance whose pid was not recorded");
                    rec.pid = Some(pid);
                    rec.start_time = start;
                }
            }
            if let Some(pid) = rec.pid {
                match adaptor.status(pid, rec.start_time, &rec.token) {
                    ProcessStatus::Alive => {
                        tracing::info!(instance = id, pid, "instance still running: will adopt it");
                        if rec.state != InstanceState::Decommissioned {
                            rec.state = InstanceState::Running;
                        }
                    }
                    status => {
                        tracing::info!(instance = id, pid, ?status, "instance process is gone: lost");
                        rec.state = InstanceState::Lost;
                        rec.pid = None;
                    }
                }
            } else if rec.state != InstanceState::Failed {
                rec.state = InstanceState::Lost;
            }
            batch = batch.put(T_INSTANCES, &id, &rec).map_err(|e| e.to_string())?;
            rt.tokens.insert(rec.token.clone(), id.clone());
            rt.instances.insert(id, rec);
        }
        store.commit(batch).map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let seed = now_ms() | 1;
        rt.rng = seed;
        Ok(Arc::new_cyclic(|me| ZoneCore {
            settings,
            me: me.clone(),
            api_key: identity.api_key,
            url: Mutex::new(String::new()),
            store,
            adaptor,
            rt: Mutex::new(rt),
            kick: Notify::new(),
            events: tx,
            events_rx: Mutex::new(Some(rx)),
            changed: watch::channel(0).0,
            offers: Mutex::new(Default::default()),
        }))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Runtime> {
        self.rt.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Asks the control loop to reconcile now.
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The bearer token the domain uses to call this zone.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    pub fn url(&self) -> String {
        self.url.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The address the manager listened on last time (reused so adopted instances keep
    /// reaching it).
    pub fn last_addr(&self) -> Option<String> {
        self.store.get::<Identity>(T_META, "identity").ok().flatten().and_then(|i| i.last_addr)
    }

    /// Records the manager's URL (and writes `<state>/zone.url` for the instances).
    pub fn set_url(&self, addr: std::net::SocketAddr) -> Result<(), String> {
        let url = format!("http://{addr}");
        *self.url.lock().unwrap_or_else(|p| p.into_inner()) = url.clone();
        let identity = Identity { api_key: self.api_key.clone(), last_addr: Some(addr.to_string()) };
        self.store.put(T_META, "identity", &identity).map_err(|e| e.to_string())?;
        let path = self.settings.state_dir.join("zone.url");
        std::fs::write(&path, &url).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Resolves a bearer token: the domain's key or an instance's token.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        if !self.api_key.is_empty() && token == self.api_key {
            return Some(Principal { name: "domain".into(), role: Role::Domain });
        }
        self.lock().tokens.get(token).map(|id| Principal { name: id.clone(), role: Role::Instance })
    }

    // ------------------------------------------------------------------ domain, dca

    pub fn domain(&self) -> Option<DomainBinding> {
        self.lock().domain.clone()
    }

    /// Binds the zone to a domain (one domain per zone). Rebinding to the same domain name
    /// (a domain that moved to another URL) is allowed.
    pub fn bind_domain(&self, binding: DomainBinding) -> Result<DomainBinding, ApiError> {
        let mut rt = self.lock();
        if let Some(current) = &rt.domain {
            let same = match (&current.id, &binding.id, &current.name, &binding.name) {
                (Some(a), Some(b), _, _) => a == b,
                (_, _, Some(a), Some(b)) => a == b,
                _ => current.url == binding.url,
            };
            if !same {
                return Err(ApiError::conflict(format!(
                    "zone {} is bound to domain {} ({}); a zone belongs to exactly one domain — DELETE /1.0/domain first",
                    self.settings.name,
                    current.name.as_deref().unwrap_or("?"),
                    current.url
                )));
            }
        }
        self.store.put(T_META, "domain", &binding).map_err(store_err)?;
        rt.domain = Some(binding.clone());
        Ok(binding)
    }

    pub fn unbind_domain(&self) -> Result<(), ApiError> {
        let mut rt = self.lock();
        let active: Vec<&String> = rt
            .services
            .values()
            .filter(|s| s.state == "deployed" || s.state == "terminating")
            .map(|s| &s.serviceid)
            .collect();
        if !active.is_empty() || !rt.instances.is_empty() {
            return Err(ApiError::conflict(format!(
                "zone {} still runs services of its domain ({}); terminate them before unbinding the domain",
                self.settings.name,
                active.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        self.store.delete(T_META, "domain").map_err(store_err)?;
        rt.domain = None;
        Ok(())
    }

    pub fn dca(&self) -> DcaView {
        let rt = self.lock();
        DcaView {
            kind: if rt.dca_attached { self.adaptor.kind().to_string() } else { "none".into() },
            instances_active: rt.instances.len() as u32,
            limits: self.adaptor.limits(),
        }
    }

    pub fn set_dca(&self, kind: &str) -> Result<DcaView, ApiError> {
        if kind != self.adaptor.kind() {
            return Err(ApiError::bad_request(format!(
                "DC adaptor {kind:?} is not available in this zone manager; expected {:?}",
                self.adaptor.kind()
            )));
        }
        self.store.put(T_META, "dca_attached", &true).map_err(store_err)?;
        self.lock().dca_attached = true;
        Ok(self.dca())
    }

    pub fn detach_dca(&self) -> Result<(), ApiError> {
        let mut rt = self.lock();
        if !rt.instances.is_empty() {
            return Err(ApiError::conflict(format!(
                "{} instance(s) are active on the DC adaptor; terminate them before removing it",
                rt.instances.len()
            )));
        }
        self.store.put(T_META, "dca_attached", &false).map_err(store_err)?;
        rt.dca_attached = false;
        Ok(())
    }

    // ------------------------------------------------------------------ services

    /// `POST /1.0/services`: registers (or re-registers, unchanged) a service.
    pub fn register_service(&self, serviceid: &str, manifest: &str) -> Result<(u16, StateReply), ApiError> {
        valid_name("service", serviceid)?;
        let service = parse_manifest(&format!("manifest of {serviceid}"), manifest)?;
        if service.name != serviceid {
            return Err(ApiError::bad_request(format!(
                "serviceid {serviceid:?} does not match the manifest's service name {:?}",
                service.name
            )));
        }
        let mut rt = self.lock();
        if let Some(existing) = rt.services.get(serviceid) {
            if existing.manifest == manifest {
                return Ok((200, StateReply { state: existing.state.clone() }));
            }
            if existing.state != "registered" {
                return Err(ApiError::conflict(format!(
                    "service {serviceid} is {} in zone {} with another manifest; terminate it before changing the manifest",
                    existing.state, self.settings.name
                )));
            }
        }
        let rec = ServiceRecord {
            serviceid: serviceid.to_string(),
            manifest: manifest.to_string(),
            service,
            state: "registered".into(),
            desired: BTreeMap::new(),
            slots: None,
            accepted_offer: None,
            evaluator: None,
        };
        self.store.put(T_SERVICES, serviceid, &rec).map_err(store_err)?;
        rt.services.insert(serviceid.to_string(), rec);
        drop(rt);
        self.bump();
        Ok((201, StateReply { state: "registered".into() }))
    }

    fn service_view(&self, rt: &Runtime, s: &ServiceRecord) -> ZoneServiceView {
        let entry = s.service.entry_component().map(|c| c.name.clone()).unwrap_or_default();
        let mut slots = SlotTotals::default();
        let mut running = 0;
        for inst in rt.instances.values().filter(|i| i.service == s.serviceid) {
            if inst.state == InstanceState::Running {
                running += 1;
            }
            if inst.component == entry && matches!(inst.state, InstanceState::Running | InstanceState::Decommissioned) {
                if let Some(sl) = rt.slots.get(&inst.id) {
                    let free = if inst.state == InstanceState::Running { sl.free } else { 0 };
                    slots.add(SlotTotals { total: sl.max, free, used: sl.used });
                }
            }
        }
        let mut advertised = 0;
        let mut gateway_sessions = 0;
        if let (Some(c), true) = (s.service.entry_component(), s.state == "deployed") {
            let view = Self::scaler_view(rt, &s.serviceid, &c.name, c.slots.per_instance);
            advertised = advertised_slots(&view, c.slots.per_instance, c.scaling.max_instances);
            gateway_sessions = rt
                .instances
                .values()
                .filter(|i| i.service == s.serviceid)
                .map(|i| rt.gw_sessions.get(&i.id).copied().unwrap_or(0))
                .sum();
        }
        let entry = s.service.entry_component().map(|c| c.name.as_str());
        let mut endpoints = BTreeMap::new();
        let mut peers = BTreeMap::new();
        for ((svc, comp, port), (addr, _)) in &rt.gateways {
            if *svc != s.serviceid {
                continue;
            }
            if Some(comp.as_str()) == entry {
                endpoints.insert(port.clone(), addr.to_string());
            }
            peers.insert(format!("{comp}/{port}"), addr.to_string());
        }
        ZoneServiceView {
            serviceid: s.serviceid.clone(),
            state: s.state.clone(),
            slots,
            instances: if s.state == "deployed" { s.desired.clone() } else { BTreeMap::new() },
            running,
            namespace: s.serviceid.clone(),
            advertised,
            endpoints,
            peers,
            lost_sessions: rt.lost_sessions.get(&s.serviceid).copied().unwrap_or(0),
            gateway_sessions,
        }
    }

    /// The instances of `(service, component)` as the scaler sees them. Sessions in use are
    /// the larger of what the instance reported and what the gateway has open to it: a
    /// report may not yet count a session the gateway just forwarded.
    fn scaler_view(rt: &Runtime, service: &str, component: &str, per_instance: u32) -> Vec<SlotInstance> {
        let mut out = Vec::new();
        for i in rt.instances.values().filter(|i| i.service == service && i.component == component) {
            let gw = rt.gw_sessions.get(&i.id).copied().unwrap_or(0);
            let report = rt.slots.get(&i.id);
            let (state, max, free, active) = match (i.state, report) {
                (InstanceState::Running, Some(r)) => {
                    let active = r.used.max(gw);
                    (SlotState::Active, r.max, r.free.min(r.max.saturating_sub(active)), active)
                }
                // Starting, restarting or not yet reporting: its slots are on the way.
                (InstanceState::Running | InstanceState::Provisioning | InstanceState::Failed, _) => {
                    (SlotState::Provisioning, per_instance, per_instance, 0)
                }
                (InstanceState::Decommissioned, r) => {
                    let max = r.map_or(per_instance, |r| r.max);
                    let active = r.map_or(0, |r| r.used).max(gw);
                    (SlotState::Decommissioned, max, max.saturating_sub(active), active)
                }
                (InstanceState::Terminating | InstanceState::Lost, _) => continue,
            };
            out.push(SlotInstance {
                id: i.id.clone(),
                state,
                max,
                free,
                active,
                started_ms: i.started_ms.unwrap_or(0),
            });
        }
        out.extend(Self::overlay_view(rt, service));
        out
    }

    /// The guest's overlays as the scaler sees them. They count as the youngest instances:
    /// an overlay is the cheapest capacity to give back, so scale-in drains it first.
    fn overlay_view(rt: &Runtime, guest: &str) -> Vec<SlotInstance> {
        let mut out = Vec::new();
        for (host, ov) in rt.overlays.get(guest).into_iter().flatten() {
            if ov.port == 0 {
                out.push(SlotInstance {
                    id: host.clone(),
                    state: SlotState::Provisioning,
                    max: ov.cap,
                    free: ov.cap,
                    active: 0,
                    started_ms: u64::MAX,
                });
                continue;
            }
            let Some(rep) = rt.slots.get(host) else { continue };
            let gw_host = rt.gw_sessions.get(host).copied().unwrap_or(0);
            let gw = rt.gw_port_sessions.get(&(host.clone(), ov.port)).copied().unwrap_or(0);
            let (used, cfg_free) = rep.configs.get(guest).map_or((gw, 0), |c| (c.used.max(gw), c.free));
            let shared = rep.free.min(rep.max.saturating_sub(rep.used.max(gw_host)));
            let free = cfg_free.min(ov.cap.saturating_sub(used)).min(shared);
            out.push(SlotInstance {
                id: host.clone(),
                state: if ov.draining { SlotState::Decommissioned } else { SlotState::Active },
                max: ov.cap,
                free: if ov.draining { ov.cap.saturating_sub(used) } else { free },
                active: used,
                started_ms: u64::MAX,
            });
        }
        out
    }

    /// Running instances of other services whose component supports overlays and that have
    /// free resource slots and no configuration of `guest` yet: (id, admin port, free).
    fn overlay_hosts(rt: &Runtime, guest: &str) -> Vec<(String, u16, u32)> {
        let mut out: Vec<(String, u16, u32)> = rt
            .instances
            .values()
            .filter(|i| i.service != guest && i.state == InstanceState::Running)
            .filter(|i| {
                rt.services
                    .get(&i.service)
                    .and_then(|s| s.service.component(&i.component))
                    .is_some_and(|c| c.supports_overlay)
            })
            .filter(|i| !rt.overlays.get(guest).is_some_and(|o| o.contains_key(&i.id)))
            .filter_map(|i| {
                let rep = rt.slots.get(&i.id)?;
                let admin = i.ports.iter().find(|p| p.name == "admin")?.public;
                let gw = rt.gw_sessions.get(&i.id).copied().unwrap_or(0);
                let free = rep.free.min(rep.max.saturating_sub(rep.used.max(gw)));
                (free > 0).then(|| (i.id.clone(), admin, free))
            })
            .collect();
        out.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        out
    }

    /// Adds a configuration of `guest` capped at `cap` sessions to host instance `host`
    /// (through its admin API, in the background); the gateway uses it once it is there.
    fn add_overlay(&self, guest: &str, host: &str, admin: u16, cap: u32) {
        self.lock()
            .overlays
            .entry(guest.to_string())
            .or_default()
            .insert(host.to_string(), Overlay { port: 0, cap, draining: false });
        let Some(me) = self.me.upgrade() else { return };
        let (guest, host) = (guest.to_string(), host.to_string());
        tokio::spawn(async move {
            let body = serde_json::json!({"name": guest, "port": 0, "max": cap});
            let result = me.adaptor.add_config(admin, body).await;
            let mut rt = me.lock();
            match result {
                Ok(v) => {
                    let port = v.get("port").and_then(|p| p.as_u64()).and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
                    if let Some(ov) = rt.overlays.get_mut(&guest).and_then(|o| o.get_mut(&host)) {
                        ov.port = port;
                        tracing::info!(
                            service = guest,
                            host,
                            port,
                            cap,
                            "virtual scale-out: configuration added to a running instance"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(service = guest, host, "cannot add a configuration: {e}");
                    if let Some(o) = rt.overlays.get_mut(&guest) {
                        o.remove(&host);
                    }
                }
            }
            drop(rt);
            me.bump();
            me.kick();
        });
    }

    /// Removes the overlay of `guest` on `host` (its sessions have ended, or it is unwanted).
    fn remove_overlay(&self, guest: &str, host: &str) {
        let admin = {
            let mut rt = self.lock();
            if let Some(o) = rt.overlays.get_mut(guest) {
                o.remove(host);
            }
            rt.instances.get(host).and_then(|i| i.ports.iter().find(|p| p.name == "admin").map(|p| p.public))
        };
        tracing::info!(service = guest, host, "virtual scale-in: configuration removed from the instance");
        self.bump();
        let (Some(admin), Some(me)) = (admin, self.me.upgrade()) else { return };
        let (guest, host) = (guest.to_string(), host.to_string());
        tokio::spawn(async move {
            if let Err(e) = me.adaptor.remove_config(admin, &guest).await {
                tracing::warn!(service = guest, host, "cannot remove a configuration: {e}");
            }
        });
    }

    /// Drops overlays whose guest is no longer deployed or whose host is gone.
    fn prune_overlays(&self) {
        let stale: Vec<(String, String)> = {
            let rt = self.lock();
            rt.overlays
                .iter()
                .flat_map(|(g, hosts)| hosts.keys().map(move |h| (g.clone(), h.clone())))
                .filter(|(g, h)| {
                    let guest_up = rt.services.get(g).is_some_and(|s| s.state == "deployed");
                    let host_up = rt.instances.get(h).is_some_and(|i| i.state == InstanceState::Running);
                    !(guest_up && host_up)
                })
                .collect()
        };
        for (g, h) in stale {
            self.remove_overlay(&g, &h);
        }
    }

    pub fn services(&self) -> Vec<ZoneServiceView> {
        let rt = self.lock();
        rt.services.values().map(|s| self.service_view(&rt, s)).collect()
    }

    pub fn service(&self, id: &str) -> Result<ZoneServiceView, ApiError> {
        let rt = self.lock();
        let s = rt.services.get(id).ok_or_else(|| self.no_service(id))?;
        Ok(self.service_view(&rt, s))
    }

    pub fn service_manifest(&self, id: &str) -> Result<String, ApiError> {
        self.lock().services.get(id).map(|s| s.manifest.clone()).ok_or_else(|| self.no_service(id))
    }

    fn no_service(&self, id: &str) -> ApiError {
        ApiError::not_found(format!("service {id:?} is not registered in zone {}", self.settings.name))
    }

    pub(crate) fn update_service(
        &self,
        id: &str,
        f: impl FnOnce(&mut ServiceRecord) -> Result<(), ApiError>,
    ) -> Result<ZoneServiceView, ApiError> {
        let mut rt = self.lock();
        let mut rec = rt.services.get(id).cloned().ok_or_else(|| self.no_service(id))?;
        f(&mut rec)?;
        self.store.put(T_SERVICES, id, &rec).map_err(store_err)?;
        let view = self.service_view(&rt, &rec);
        rt.services.insert(id.to_string(), rec);
        drop(rt);
        self.bump();
        self.kick();
        Ok(view)
    }

    /// Makes sure one instance of `component` runs as the evaluator of service `id` here,
    /// registering the service from `manifest` first if this zone does not hold it yet.
    pub(crate) fn want_evaluator(&self, id: &str, manifest: &str, component: &str) -> Result<(), ApiError> {
        if !self.lock().services.contains_key(id) {
            self.register_service(id, manifest)?;
        }
        let held = self.lock().services.get(id).map(|s| (s.manifest == manifest, s.evaluator.is_some()));
        match held {
            Some((false, _)) => Err(ApiError::conflict(format!(
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
    /// `evaluations` port, else its `admin` port.
    pub(crate) fn evaluator_port(&self, service: &str, component: &str) -> Option<u16> {
        let rt = self.lock();
        rt.instances
            .values()
            .filter(|i| i.service == service && i.component == component && i.state == InstanceState::Running)
            .find_map(|i| {
                let named = |n: &str| i.ports.iter().find(|p| p.name == n).map(|p| p.public);
                named(zonal_proto::env::EVALUATIONS_PORT).or_else(|| named("admin"))
            })
    }

    /// `PUT /1.0/services/{id}/slots`: instances wanted per component.
    pub fn set_desired(&self, id: &str, change: &ZoneSlotsChange) -> Result<ZoneServiceView, ApiError> {
        let accepted = match &change.offer {
            Some(offer) => Some(AcceptedOffer { id: offer.clone(), hosts: self.offered_hosts(id, offer)? }),
            None => None,
        };
        self.update_service(id, |rec| {
            if rec.state == "terminating" {
                return Err(ApiError::conflict(format!("service {id} is being deleted from this zone")));
            }
            for (comp, n) in &change.instances {
                let c = rec.service.component(comp).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "service {id} has no component {comp:?}; expected one of {}",
                        rec.service.components.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                })?;
                if *n > c.scaling.max_instances {
                    return Err(ApiError::bad_request(format!(
                        "component {comp} of {id}: {n} instances exceed its max_instances ({})",
                        c.scaling.max_instances
                    )));
                }
            }
            rec.desired = change.instances.clone();
            rec.slots = change.slots;
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
    pub fn set_service_state(&self, id: &str, state: &str) -> Result<ZoneServiceView, ApiError> {
        self.update_service(id, |rec| {
            if rec.state == "terminating" {
                return Err(ApiError::conflict(format!("service {id} is being deleted from this zone")));
            }
            match state {
                "deploy" | "deployed" => {
                    if rec.desired.is_empty() {
                        rec.desired = zonal_control::place::instance_counts(&rec.service, &Default::default())
                            .into_iter()
                            .collect();
                    }
                    rec.state = "deployed".into();
                }
                "register" | "registered" | "provision" | "terminate" | "terminated" => rec.state = "registered".into(),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown state {other:?} for service {id}; expected register, provision, deploy or terminate"
                    )))
                }
            }
            Ok(())
        })
    }

    /// `DELETE /1.0/services/{id}`: terminates its instances, then unregisters it. Returns
    /// 204 when gone, 202 while instances are stopping (ask again).
    pub fn delete_service(&self, id: &str) -> Result<u16, ApiError> {
        {
            let rt = self.lock();
            if !rt.services.contains_key(id) {
                return Err(self.no_service(id));
            }
        }
        self.update_service(id, |rec| {
            rec.state = "terminating".into();
            Ok(())
        })?;
        Ok(if self.finish_deletions() { 204 } else { 202 })
    }

    /// Removes services being deleted whose instances are all gone. Returns true when none
    /// is left pending.
    fn finish_deletions(&self) -> bool {
        let mut rt = self.lock();
        let pending: Vec<String> =
            rt.services.values().filter(|s| s.state == "terminating").map(|s| s.serviceid.clone()).collect();
        let mut all_done = true;
        for id in pending {
            if rt.instances.values().any(|i| i.service == id) {
                all_done = false;
                continue;
            }
            let mut batch = Batch::new().delete(T_SERVICES, &id);
            if let Ok(keys) = self.store.list_raw(T_CONTEXT, &format!("{id}/")) {
                for (k, _) in keys {
                    batch = batch.delete(T_CONTEXT, &k);
                }
            }
            if let Err(e) = self.store.commit(batch) {
                tracing::error!("cannot delete service {id}: {e}");
                all_done = false;
                continue;
            }
            rt.services.remove(&id);
            rt.problems.remove(&id);
            tracing::info!(service = id, "service unregistered from the zone");
        }
        all_done
    }

    /// Adds one instance of `component` (`POST /1.0/services/{id}/instances`).
    pub fn add_instance(&self, id: &str, component: &str) -> Result<ZoneServiceView, ApiError> {
        self.update_service(id, |rec| {
            let max = rec
                .service
                .component(component)
                .ok_or_else(|| ApiError::bad_request(format!("service {id} has no component {component:?}")))?
                .scaling
                .max_instances;
            let n = rec.desired.entry(component.to_string()).or_insert(0);
            if *n >= max {
                return Err(ApiError::conflict(format!(
                    "component {component} of {id} already has its max_instances ({max})"
                )));
            }
            *n += 1;
            if rec.state == "registered" {
                rec.state = "deployed".into();
            }
            Ok(())
        })
    }

    // ------------------------------------------------------------------ instances

    fn view(&self, rt: &Runtime, r: &InstanceRecord) -> InstanceView {
        InstanceView {
            id: r.id.clone(),
            service: r.service.clone(),
            component: r.component.clone(),
            zone: self.settings.name.clone(),
            host: r.host.clone(),
            state: r.state,
            pid: r.pid,
            ports: r.ports.clone(),
            slots: rt.slots.get(&r.id).cloned(),
            restarts: r.restarts,
            started_ms: r.started_ms,
            adopted: rt.adopted.contains(&r.id),
            gateway_sessions: rt.gw_sessions.get(&r.id).copied().unwrap_or(0),
            workdir: r.workdir.display().to_string(),
            log: r.log.display().to_string(),
            last_exit: r.last_exit.clone(),
        }
    }

    pub fn instances(&self, service: Option<&str>) -> Result<Vec<InstanceView>, ApiError> {
        let rt = self.lock();
        if let Some(s) = service {
            if !rt.services.contains_key(s) {
                return Err(self.no_service(s));
            }
        }
        Ok(rt
            .instances
            .values()
            .filter(|i| service.is_none_or(|s| i.service == s))
            .map(|r| self.view(&rt, r))
            .collect())
    }

    pub fn instance(&self, id: &str) -> Result<InstanceView, ApiError> {
        let rt = self.lock();
        let r = rt.instances.get(id).ok_or_else(|| self.no_instance(id))?;
        Ok(self.view(&rt, r))
    }

    fn no_instance(&self, id: &str) -> ApiError {
        ApiError::not_found(format!("no instance {id:?} in zone {}", self.settings.name))
    }

    /// Stops one particular instance and lowers its component's desired count by one.
    pub fn terminate_instance(&self, id: &str) -> Result<InstanceView, ApiError> {
        let (service, component) = {
            let rt = self.lock();
            let r = rt.instances.get(id).ok_or_else(|| self.no_instance(id))?;
            (r.service.clone(), r.component.clone())
        };
        self.update_service(&service, |rec| {
            if let Some(n) = rec.desired.get_mut(&component) {
                *n = n.saturating_sub(1);
            }
            Ok(())
        })?;
        self.stop_instance(id);
        self.instance(id)
    }

    /// Only an instance itself (or the domain) may speak for it.
    pub fn check_instance_caller(&self, caller: &Principal, id: &str) -> Result<(), ApiError> {
        if caller.role == Role::Instance && caller.name != id {
            return Err(ApiError::forbidden(format!(
                "instance {} may only report for itself, not for instance {id}",
                caller.name
            )));
        }
        Ok(())
    }

    /// `PUT /1.0/instances/{id}/slots`: an instance reports its slots.
    pub fn report_slots(&self, id: &str, slots: InstanceSlots) -> Result<InstanceSlots, ApiError> {
        let mut rt = self.lock();
        let rec = rt.instances.get(id).cloned().ok_or_else(|| self.no_instance(id))?;
        if rec.state == InstanceState::Provisioning {
            let mut r = rec;
            r.state = InstanceState::Running;
            self.store.put(T_INSTANCES, id, &r).map_err(store_err)?;
            rt.instances.insert(id.to_string(), r);
        }
        rt.slots.insert(id.to_string(), slots.clone());
        drop(rt);
        self.bump();
        // The scaler decides on slots: let it look now rather than at the next tick.
        self.kick();
        Ok(slots)
    }

    /// `POST /1.0/meters`: FUSION's Ceilometer `fusioncounter` (free session slots).
    pub fn meter(&self, caller: &Principal, m: &Meter) -> Result<InstanceSlots, ApiError> {
        if m.counter_name != "fusioncounter" {
            return Err(ApiError::bad_request(format!(
                "unknown counter_name {:?}; this zone accepts \"fusioncounter\" (session slots)",
                m.counter_name
            )));
        }
        let id = &m.resource_metadata.instance_id;
        self.check_instance_caller(caller, id)?;
        let volume = match &m.counter_volume {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "counter_volume {} is not a number of session slots; expected a non-negative number",
                m.counter_volume
            ))
        })?;
        let free = volume.round() as u32;
        let previous = self.lock().slots.get(id).cloned();
        let mut slots = previous.unwrap_or_default();
        slots.max = slots.max.max(free);
        slots.free = free;
        slots.used = slots.max - free;
        self.report_slots(id, slots)
    }

    pub fn log_tail(&self, id: &str, lines: usize) -> Result<String, ApiError> {
        let path = {
            let rt = self.lock();
            rt.instances.get(id).map(|r| r.log.clone()).ok_or_else(|| self.no_instance(id))?
        };
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let start = all.len().saturating_sub(lines);
        let mut out = all[start..].join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        Ok(out)
    }

    fn admin_port(&self, id: &str) -> Result<u16, ApiError> {
        let rt = self.lock();
        let r = rt.instances.get(id).ok_or_else(|| self.no_instance(id))?;
        if r.state != InstanceState::Running && r.state != InstanceState::Provisioning {
            return Err(ApiError::conflict(format!("instance {id} is {}; expected running", r.state.as_str())));
        }
        r.ports.iter().find(|p| p.name == "admin").map(|p| p.public).ok_or_else(|| {
            ApiError::conflict(format!("instance {id} has no admin port; it does not implement the instance API"))
        })
    }

    pub fn ports(&self, id: &str) -> Result<Vec<PortMapping>, ApiError> {
        let rt = self.lock();
        rt.instances.get(id).map(|r| r.ports.clone()).ok_or_else(|| self.no_instance(id))
    }

    pub async fn configs(&self, id: &str) -> Result<serde_json::Value, ApiError> {
        let port = self.admin_port(id)?;
        self.adaptor.configs(port).await.map_err(|e| ApiError::unavailable(format!("instance {id}: {e}")))
    }

    pub async fn add_config(&self, id: &str, body: serde_json::Value) -> Result<serde_json::Value, ApiError> {
        let port = self.admin_port(id)?;
        let out =
            self.adaptor.add_config(port, body).await.map_err(|e| ApiError::conflict(format!("instance {id}: {e}")))?;
        self.bump();
        Ok(out)
    }

    pub async fn remove_config(&self, id: &str, name: &str) -> Result<(), ApiError> {
        let port = self.admin_port(id)?;
        self.adaptor.remove_config(port, name).await.map_err(|e| ApiError::conflict(format!("instance {id}: {e}")))
    }

    // ------------------------------------------------------------------ context

    /// Instances may only use their own service's namespace.
    pub fn check_namespace(&self, caller: &Principal, ns: &str) -> Result<(), ApiError> {
        if caller.role == Role::Instance {
            let own = self.lock().instances.get(&caller.name).map(|i| i.service.clone());
            if own.as_deref() != Some(ns) {
                return Err(ApiError::forbidden(format!(
                    "instance {} may only use the context namespace of its own service, not {ns:?}",
                    caller.name
                )));
            }
        }
        Ok(())
    }

    pub fn context_list(&self, ns: &str, prefix: &str) -> Result<BTreeMap<String, serde_json::Value>, ApiError> {
        let base = format!("{ns}/");
        let entries = self.store.list::<serde_json::Value>(T_CONTEXT, &format!("{base}{prefix}")).map_err(store_err)?;
        Ok(entries.into_iter().map(|(k, v)| (k[base.len()..].to_string(), v)).collect())
    }

    pub fn context_get(&self, ns: &str, key: &str) -> Result<serde_json::Value, ApiError> {
        self.store
            .get(T_CONTEXT, &format!("{ns}/{key}"))
            .map_err(store_err)?
            .ok_or_else(|| ApiError::not_found(format!("no key {key:?} in context namespace {ns:?}")))
    }

    pub fn context_put(&self, ns: &str, key: &str, value: &serde_json::Value) -> Result<(), ApiError> {
        if !self.lock().services.contains_key(ns) {
            return Err(ApiError::not_found(format!("no context namespace {ns:?}: no such service in this zone")));
        }
        if key.is_empty() {
            return Err(ApiError::bad_request("expected a non-empty key after the namespace"));
        }
        self.store.put(T_CONTEXT, &format!("{ns}/{key}"), value).map_err(store_err)
    }

    pub fn context_delete(&self, ns: &str, key: &str) -> Result<(), ApiError> {
        self.store.delete(T_CONTEXT, &format!("{ns}/{key}")).map_err(store_err)
    }

    // ------------------------------------------------------------------ summaries

    /// Each host with what is not reserved by instances.
    pub fn hosts_free(&self) -> Vec<HostSummary> {
        let rt = self.lock();
        self.hosts_free_locked(&rt)
    }

    pub(crate) fn hosts_free_locked(&self, rt: &Runtime) -> Vec<HostSummary> {
        self.hosts_free_besides(rt, None)
    }

    /// Each host with what is not reserved by instances other than those of `service`
    /// (an offer for a service already here may reuse the room its own instances hold).
    pub(crate) fn hosts_free_for_offer(&self, service: &str) -> Vec<HostSummary> {
        let rt = self.lock();
        self.hosts_free_besides(&rt, Some(service))
    }

    fn hosts_free_besides(&self, rt: &Runtime, service: Option<&str>) -> Vec<HostSummary> {
        self.settings
            .hosts
            .iter()
            .map(|h| {
                let mut free = h.capacity.clone();
                let reserving = |i: &&InstanceRecord| {
                    i.host == h.name && i.state != InstanceState::Lost && service.is_none_or(|s| i.service != s)
                };
                for i in rt.instances.values().filter(reserving) {
                    free.sub_scaled(&i.resources, 1);
                }
                HostSummary { name: h.name.clone(), free, features: h.features.clone(), available: h.available }
            })
            .collect()
    }

    /// The heartbeat body.
    pub fn report(&self) -> ZoneReport {
        let hosts = self.hosts_free();
        let rt = self.lock();
        ZoneReport {
            hosts,
            services: rt.services.values().map(|s| self.service_view(&rt, s)).collect(),
            instances: rt.instances.len() as u32,
        }
    }

    /// Prometheus gauges of the zone.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let rt = self.lock();
        let mut by: BTreeMap<(String, String, &'static str), u32> = BTreeMap::new();
        let mut restarts: BTreeMap<(String, String), u32> = BTreeMap::new();
        for i in rt.instances.values() {
            *by.entry((i.service.clone(), i.component.clone(), i.state.as_str())).or_default() += 1;
            *restarts.entry((i.service.clone(), i.component.clone())).or_default() += i.restarts;
        }
        let _ = writeln!(out, "# HELP zonal_zone_instances Instances by service, component and state.");
        let _ = writeln!(out, "# TYPE zonal_zone_instances gauge");
        for ((s, c, st), n) in &by {
            let _ = writeln!(out, "zonal_zone_instances{{service=\"{s}\",component=\"{c}\",state=\"{st}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP zonal_zone_instance_restarts Restarts of current instances after crashes.");
        let _ = writeln!(out, "# TYPE zonal_zone_instance_restarts gauge");
        for ((s, c), n) in &restarts {
            let _ = writeln!(out, "zonal_zone_instance_restarts{{service=\"{s}\",component=\"{c}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP zonal_zone_slots Session slots of each service's entry component.");
        let _ = writeln!(out, "# TYPE zonal_zone_slots gauge");
        for s in rt.services.values() {
            let v = self.service_view(&rt, s);
            let _ = writeln!(out, "zonal_zone_slots{{service=\"{}\",kind=\"total\"}} {}", s.serviceid, v.slots.total);
            let _ = writeln!(out, "zonal_zone_slots{{service=\"{}\",kind=\"free\"}} {}", s.serviceid, v.slots.free);
            let _ =
                writeln!(out, "zonal_zone_slots{{service=\"{}\",kind=\"advertised\"}} {}", s.serviceid, v.advertised);
        }
        let _ = writeln!(out, "# HELP zonal_zone_gateway_sessions Sessions the gateway proxies now.");
        let _ = writeln!(out, "# TYPE zonal_zone_gateway_sessions gauge");
        for s in rt.services.values() {
            let v = self.service_view(&rt, s);
            let _ = writeln!(out, "zonal_zone_gateway_sessions{{service=\"{}\"}} {}", s.serviceid, v.gateway_sessions);
        }
        let _ = writeln!(out, "# HELP zonal_zone_gateway_rejected_total Connections turned away: no free slot.");
        let _ = writeln!(out, "# TYPE zonal_zone_gateway_rejected_total counter");
        for (s, n) in &rt.gw_rejected {
            let _ = writeln!(out, "zonal_zone_gateway_rejected_total{{service=\"{s}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP zonal_zone_lost_sessions_total Sessions open on instances that died.");
        let _ = writeln!(out, "# TYPE zonal_zone_lost_sessions_total counter");
        for (s, n) in &rt.lost_sessions {
            let _ = writeln!(out, "zonal_zone_lost_sessions_total{{service=\"{s}\"}} {n}");
        }
    }

    // ------------------------------------------------------------------ control loop

    fn observed(&self, rt: &Runtime) -> Vec<Observed> {
        rt.instances
            .values()
            // An instance whose replacement has started is the move's to stop, not the
            // reconciler's to count.
            .filter(|r| !crate::moves::being_replaced(&rt.moves, &r.id))
            .map(|r| Observed {
                id: r.id.clone(),
                service: r.service.clone(),
                component: r.component.clone(),
                state: r.state,
                supervised: rt.supervised.contains(&r.id),
                restart_at: r.restart_at_ms,
                slots: Self::usage(rt, &r.id),
            })
            .collect()
    }

    /// Slot usage for the reconciler, counting the gateway's open sessions too, so that a
    /// draining instance is stopped only when neither its report nor the gateway shows a
    /// session.
    pub(crate) fn usage(rt: &Runtime, id: &str) -> Option<SlotUsage> {
        let gw = rt.gw_sessions.get(id).copied().unwrap_or(0);
        match rt.slots.get(id) {
            Some(s) => Some(SlotUsage { max: s.max, free: s.free.min(s.max.saturating_sub(gw)) }),
            None if gw > 0 => Some(SlotUsage { max: gw, free: 0 }),
            None => None,
        }
    }

    fn desired(rt: &Runtime) -> BTreeMap<(String, String), u32> {
        let mut d = BTreeMap::new();
        for s in rt.services.values() {
            let deployed = s.state == "deployed";
            if !deployed && (s.evaluator.is_none() || s.state == "terminating") {
                continue;
            }
            for c in &s.service.components {
                let mut n = if deployed { s.desired.get(&c.name).copied().unwrap_or(0) } else { 0 };
                if s.evaluator.as_deref() == Some(c.name.as_str()) {
                    n = n.max(1);
                }
                d.insert((s.serviceid.clone(), c.name.clone()), n);
            }
        }
        d
    }

    fn persist(&self, rec: &InstanceRecord) {
        if let Err(e) = self.store.put(T_INSTANCES, &rec.id, rec) {
            tracing::error!(instance = rec.id, "cannot record the instance: {e}");
        }
    }

    fn handle_event(&self, ev: Event) {
        match ev {
            Event::Exited { id, pid, status } => {
                let mut rt = self.lock();
                let Some(mut rec) = rt.instances.get(&id).cloned() else { return };
                if rec.pid != Some(pid) || rec.state == InstanceState::Terminating {
                    return;
                }
                let now = now_ms();
                let ran_for = now.saturating_sub(rec.started_ms.unwrap_or(now));
                let (restarts, delay) = after_crash(&Backoff::RESTART, rec.restarts, ran_for);
                tracing::warn!(instance = id, pid, status, restarts, "instance exited; restarting in {delay} ms");
                rec.restarts = restarts;
                rec.restart_at_ms = Some(now + delay);
                rec.last_exit = Some(status);
                rec.pid = None;
                rec.state = InstanceState::Failed;
                let open = rt.slots.get(&id).map_or(0, |s| s.used).max(rt.gw_sessions.get(&id).copied().unwrap_or(0));
                if open > 0 {
                    tracing::warn!(
                        instance = id,
                        sessions = open,
                        "the instance died with open sessions: they are lost"
                    );
                    *rt.lost_sessions.entry(rec.service.clone()).or_default() += u64::from(open);
                }
                rt.supervised.remove(&id);
                rt.adopted.remove(&id);
                rt.slots.remove(&id);
                self.persist(&rec);
                rt.instances.insert(id, rec);
            }
            Event::Stopped { id } => self.forget(&id),
        }
        self.bump();
    }

    /// Drops an instance's record, token, context entries and adaptor leftovers.
    fn forget(&self, id: &str) {
        let mut rt = self.lock();
        let Some(rec) = rt.instances.remove(id) else { return };
        rt.supervised.remove(id);
        rt.adopted.remove(id);
        rt.slots.remove(id);
        rt.tokens.remove(&rec.token);
        let mut batch = Batch::new().delete(T_INSTANCES, id);
        if let Ok(keys) = self.store.list_raw(T_CONTEXT, &format!("{}/{}/{}", rec.service, rec.component, id)) {
            for (k, _) in keys {
                batch = batch.delete(T_CONTEXT, &k);
            }
        }
        if let Err(e) = self.store.commit(batch) {
            tracing::error!(instance = id, "cannot drop the instance record: {e}");
        }
        self.adaptor.cleanup(id);
    }

    fn watch_child(&self, id: String, pid: u32, mut child: tokio::process::Child) {
        let tx = self.events.clone();
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(s) => describe_exit(s),
                Err(e) => format!("could not wait for the process: {e}"),
            };
            let _ = tx.send(Event::Exited { id, pid, status });
        });
    }

    fn launch_spec(&self, rec: &InstanceRecord, service: &Service) -> Result<LaunchSpec, String> {
        let comp = service
            .component(&rec.component)
            .ok_or_else(|| format!("service {} has no component {}", rec.service, rec.component))?;
        let (argv, extra_env) = match &comp.run {
            RunSpec::Command { argv, env } => (argv.clone(), env.clone()),
            RunSpec::Image { image, .. } => {
                return Err(format!(
                    "component {} runs the container image {image}; the process adaptor runs commands only (`run: <command line>`)",
                    comp.name
                ))
            }
            RunSpec::None => return Err(format!("component {} has nothing to run (`run` is empty)", comp.name)),
        };
        let url = self.url();
        let peers: Vec<String> =
            service.channels.iter().filter(|c| c.from == comp.name).map(|c| c.to.clone()).collect();
        let mut env = extra_env;
        env.insert(penv::ZONAL_ZONE_URL.into(), url.clone());
        env.insert(penv::ZONAL_ZONE_FILE.into(), self.settings.state_dir.join("zone.url").display().to_string());
        env.insert(penv::ZONAL_ZONE.into(), self.settings.name.clone());
        env.insert(penv::ZONAL_HOST.into(), rec.host.clone());
        env.insert(penv::ZONAL_INSTANCE_ID.into(), rec.id.clone());
        env.insert(penv::ZONAL_INSTANCE_TOKEN.into(), rec.token.clone());
        env.insert(penv::ZONAL_SERVICE.into(), rec.service.clone());
        env.insert(penv::ZONAL_COMPONENT.into(), rec.component.clone());
        env.insert(penv::ZONAL_CONTEXT_URL.into(), format!("{url}/1.0/context/{}", rec.service));
        env.insert(penv::ZONAL_PORTS.into(), penv::encode_ports(&rec.ports));
        env.insert(penv::ZONAL_PEERS.into(), peers.join(","));
        env.insert(
            penv::ZONAL_CONFIG.into(),
            serde_json::json!({"service": rec.service, "component": rec.component, "zone": self.settings.name})
                .to_string(),
        );
        for p in &rec.ports {
            env.insert(format!("ZONAL_PORT_{}", env_key(&p.name)), p.public.to_string());
        }
        // Connections to the components this one has channels to go through the zone's
        // gateway, which balances them over those instances by slots (FUSION §2.9).
        let mut first_port = BTreeSet::new();
        for (to, port, addr) in self.peer_gateways(service, &comp.name) {
            env.insert(format!("ZONAL_PEER_{}_{}", env_key(&to), env_key(&port)), addr.to_string());
            if first_port.insert(to.clone()) {
                env.insert(format!("ZONAL_PEER_{}", env_key(&to)), addr.to_string());
            }
        }
        Ok(LaunchSpec {
            id: rec.id.clone(),
            service: rec.service.clone(),
            component: rec.component.clone(),
            argv,
            env,
            workdir: rec.workdir.clone(),
            log: rec.log.clone(),
            resources: rec.resources.clone(),
            ports: rec.ports.clone(),
        })
    }

    /// Starts the process of `rec` (new or restarting). Returns the problem, if any.
    fn launch(&self, mut rec: InstanceRecord) -> Result<(), String> {
        let service = self.lock().services.get(&rec.service).map(|s| s.service.clone());
        let Some(service) = service else { return Err(format!("service {} is not registered", rec.service)) };
        let result = self.launch_spec(&rec, &service).and_then(|spec| {
            self.adaptor.provision(&spec)?;
            self.adaptor.start(&spec)
        });
        let mut rt = self.lock();
        match result {
            Ok(launched) => {
                rec.pid = Some(launched.pid);
                rec.start_time = launched.start_time;
                rec.started_ms = Some(now_ms());
                rec.restart_at_ms = None;
                rec.state = InstanceState::Provisioning;
                self.persist(&rec);
                tracing::info!(instance = rec.id, pid = launched.pid, host = rec.host, "instance started");
                rt.supervised.insert(rec.id.clone());
                rt.adopted.remove(&rec.id);
                if let Some(child) = launched.child {
                    self.watch_child(rec.id.clone(), launched.pid, child);
                } else {
                    rt.adopted.insert(rec.id.clone());
                }
                rt.instances.insert(rec.id.clone(), rec);
                Ok(())
            }
            Err(e) => {
                let (restarts, delay) = after_crash(&Backoff::RESTART, rec.restarts, 0);
                rec.restarts = restarts;
                rec.restart_at_ms = Some(now_ms() + delay);
                rec.last_exit = Some(e.clone());
                rec.state = InstanceState::Failed;
                rec.pid = None;
                self.persist(&rec);
                rt.instances.insert(rec.id.clone(), rec);
                Err(e)
            }
        }
    }

    fn create_instance(&self, service_id: &str, component: &str) -> Result<(), String> {
        self.create_instance_on(service_id, component, None).map(|_| ())
    }

    /// Starts one instance of `component`: on `host` when given (a move), else on the host
    /// [`pick_host`] chooses. Returns the new instance's id once its process was launched.
    pub(crate) fn create_instance_on(
        &self,
        service_id: &str,
        component: &str,
        on: Option<&str>,
    ) -> Result<String, String> {
        let (service, hosts, occupied, attached, offered) = {
            let rt = self.lock();
            let s = rt.services.get(service_id).ok_or_else(|| format!("service {service_id} is not registered"))?;
            let mut occupied: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for i in rt.instances.values().filter(|i| i.service == service_id && i.state != InstanceState::Lost) {
                occupied.entry(i.host.clone()).or_default().push(i.component.clone());
            }
            let offered = s.accepted_offer.as_ref().map(|o| o.hosts.clone()).unwrap_or_default();
            (s.service.clone(), self.hosts_free_locked(&rt), occupied, rt.dca_attached, offered)
        };
        if !attached {
            return Err("no DC adaptor is attached to this zone (PUT /1.0/dca)".into());
        }
        let comp =
            service.component(component).ok_or_else(|| format!("service {service_id} has no component {component}"))?;
        let comp = with_symmetric_anti_affinity(&service, comp);
        let host = match on {
            Some(name) => {
                let only: Vec<HostSummary> = hosts.iter().filter(|h| h.name == name).cloned().collect();
                pick_host(&only, &comp, &occupied).cloned()
            }
            None => {
                // The hosts of an accepted offer first, then any host.
                let in_offer: Vec<HostSummary> = hosts.iter().filter(|h| offered.contains(&h.name)).cloned().collect();
                pick_host(&in_offer, &comp, &occupied).or_else(|| pick_host(&hosts, &comp, &occupied)).cloned()
            }
        };
        let host = host.ok_or_else(|| {
            format!(
                "no host of zone {} has room for an instance of {service_id}/{component} ({})",
                self.settings.name, comp.resources
            )
        })?;
        let token = zonal_proto::secret();
        let id = format!("{service_id}-{component}-{}", &token[..6]);
        let workdir = self.settings.state_dir.join("instances").join(&id);
        let rec = InstanceRecord {
            id: id.clone(),
            service: service_id.to_string(),
            component: component.to_string(),
            host: host.name.clone(),
            token: token.clone(),
            pid: None,
            start_time: 0,
            ports: self.adaptor.ports(&comp.ports)?,
            log: workdir.join("instance.log"),
            workdir,
            state: InstanceState::Provisioning,
            restarts: 0,
            started_ms: None,
            restart_at_ms: None,
            last_exit: None,
            resources: comp.resources.clone(),
        };
        // Recorded before the process exists, so a crash right after the start can still
        // find the process by its token.
        self.persist(&rec);
        {
            let mut rt = self.lock();
            rt.tokens.insert(token, id.clone());
            rt.instances.insert(id.clone(), rec.clone());
        }
        self.launch(rec).map(|_| id)
    }

    pub(crate) fn stop_instance(&self, id: &str) {
        let pid = {
            let mut rt = self.lock();
            let Some(rec) = rt.instances.get_mut(id) else { return };
            if rec.state == InstanceState::Terminating {
                return;
            }
            rec.state = InstanceState::Terminating;
            let rec = rec.clone();
            self.persist(&rec);
            rec.pid
        };
        let tx = self.events.clone();
        let adaptor = self.adaptor.clone();
        let grace = self.settings.stop_grace;
        let id = id.to_string();
        tokio::spawn(async move {
            if let Some(pid) = pid {
                adaptor.stop(&id, pid, grace).await;
            }
            let _ = tx.send(Event::Stopped { id });
        });
    }

    fn set_state(&self, id: &str, state: InstanceState) {
        let mut rt = self.lock();
        if let Some(rec) = rt.instances.get_mut(id) {
            rec.state = state;
            let rec = rec.clone();
            self.persist(&rec);
        }
    }

    /// One reconcile pass. Returns when the loop should look again at the latest.
    fn reconcile_once(&self) -> Option<u64> {
        let now = now_ms();
        // Watch adopted processes and promote instances that never report slots.
        let (adopted, slow): (Vec<AdoptedProcess>, Vec<String>) = {
            let rt = self.lock();
            let adopted = rt
                .adopted
                .iter()
                .filter_map(|id| rt.instances.get(id))
                .filter_map(|r| r.pid.map(|p| (r.id.clone(), p, r.start_time, r.token.clone())))
                .collect();
            let slow = rt
                .instances
                .values()
                .filter(|r| r.state == InstanceState::Provisioning && r.pid.is_some())
                .filter(|r| r.started_ms.is_some_and(|s| s + PROVISIONING_GRACE_MS <= now))
                .map(|r| r.id.clone())
                .collect();
            (adopted, slow)
        };
        for (id, pid, start, token) in adopted {
            if self.adaptor.status(pid, start, &token) != ProcessStatus::Alive {
                self.handle_event(Event::Exited { id, pid, status: "exited (adopted process, status unknown)".into() });
            }
        }
        for id in slow {
            self.set_state(&id, InstanceState::Running);
        }
        let moved = self.progress_moves(now);
        let scaled = self.scale_services(now) || moved;
        self.sync_gateways();
        self.prune_overlays();
        let r = {
            let rt = self.lock();
            reconcile(&Self::desired(&rt), &self.observed(&rt), now)
        };
        let mut changed = scaled;
        for action in r.actions {
            changed = true;
            match action {
                Action::Start { service, component, count } => {
                    for _ in 0..count {
                        if let Err(e) = self.create_instance(&service, &component) {
                            let mut rt = self.lock();
                            if rt.problems.get(&service) != Some(&e) {
                                tracing::warn!(service, component, "cannot start an instance: {e}");
                            }
                            rt.problems.insert(service.clone(), e);
                            break;
                        }
                        self.lock().problems.remove(&service);
                    }
                }
                Action::Adopt { id } => {
                    tracing::info!(instance = id, "adopted");
                    let mut rt = self.lock();
                    rt.supervised.insert(id.clone());
                    rt.adopted.insert(id);
                }
                Action::Restart { id } => {
                    let rec = self.lock().instances.get(&id).cloned();
                    if let Some(rec) = rec {
                        tracing::info!(instance = id, restarts = rec.restarts, "restarting");
                        if let Err(e) = self.launch(rec) {
                            tracing::warn!(instance = id, "restart failed: {e}");
                        }
                    }
                }
                Action::Forget { id } => {
                    tracing::info!(instance = id, "forgetting a lost instance; a replacement will start");
                    self.forget(&id);
                }
                Action::Decommission { id } => {
                    tracing::info!(instance = id, "decommissioned: draining its sessions");
                    self.set_state(&id, InstanceState::Decommissioned);
                }
                Action::Recommission { id } => self.set_state(&id, InstanceState::Running),
                Action::Stop { id } => {
                    tracing::info!(instance = id, "stopping");
                    self.stop_instance(&id);
                }
            }
        }
        if changed {
            self.bump();
        }
        self.finish_deletions();
        r.wake_at
    }

    /// The slot scaler (FUSION §2.8.2) for the entry component of every deployed service:
    /// asks `zonal_control::slots::scale` and turns its answer into desired counts and
    /// instance states, which the reconciler then carries out. Returns true if it acted.
    ///
    /// It acts only on a converged group (as many live instances as desired) whose instances
    /// report slots: while instances start or stop, or for programs that report nothing,
    /// the counts the domain asked for stand.
    fn scale_services(&self, now: u64) -> bool {
        let cfg = self.settings.slots;
        let mut plans: Vec<(String, String, u32, Vec<ScaleAction>)> = Vec::new();
        {
            let rt = self.lock();
            for rec in rt.services.values().filter(|s| s.state == "deployed") {
                let Some(c) = rec.service.entry_component() else { continue };
                if matches!(c.run, RunSpec::None) || crate::moves::group_moving(&rt.moves, &rec.serviceid, &c.name) {
                    continue;
                }
                let view = Self::scaler_view(&rt, &rec.serviceid, &c.name, c.slots.per_instance);
                let own: Vec<&SlotInstance> = view
                    .iter()
                    .filter(|i| rt.instances.get(&i.id).is_some_and(|r| r.service == rec.serviceid))
                    .collect();
                if !own.iter().any(|i| i.state != SlotState::Provisioning) {
                    continue;
                }
                let live = own.iter().filter(|i| i.state != SlotState::Decommissioned).count() as u32;
                let desired = rec.desired.get(&c.name).copied().unwrap_or(0);
                if live != desired {
                    continue;
                }
                let policy = ScalerPolicy {
                    min_free: c.slots.min_free,
                    per_instance: c.slots.per_instance,
                    min_instances: c.scaling.min_instances,
                    max_instances: c.scaling.max_instances,
                    hysteresis: cfg.hysteresis,
                    cooldown_out_ms: cfg.cooldown_out.as_millis() as u64,
                    cooldown_in_ms: cfg.cooldown_in.as_millis() as u64,
                };
                let memory = rt.scaler.get(&rec.serviceid).copied().unwrap_or_default();
                let actions = scale(&policy, &view, &memory, now);
                if !actions.is_empty() {
                    plans.push((rec.serviceid.clone(), c.name.clone(), c.scaling.max_instances, actions));
                }
            }
        }
        let mut acted = false;
        for (service, component, max, actions) in plans {
            let mut delta: i64 = 0;
            let mut out = false;
            let mut inn = false;
            let (overlaid, reuse, per, min_instances, desired_now) = {
                let rt = self.lock();
                let rec = rt.services.get(&service);
                let comp = rec.and_then(|r| r.service.component(&component));
                (
                    rt.overlays
                        .get(&service)
                        .map(|o| o.keys().cloned().collect::<BTreeSet<String>>())
                        .unwrap_or_default(),
                    rec.is_some_and(|r| r.service.reuse_existing),
                    comp.map_or(1, |c| c.slots.per_instance),
                    comp.map_or(1, |c| c.scaling.min_instances),
                    rec.and_then(|r| r.desired.get(&component).copied()).unwrap_or(0),
                )
            };
            for a in actions {
                match a {
                    ScaleAction::Start(mut n) => {
                        // Virtual elastic scaling first: a configuration on a running instance
                        // with free resource slots is cheaper than a new instance.
                        if reuse {
                            let hosts = Self::overlay_hosts(&self.lock(), &service);
                            for (host, admin, free) in hosts.into_iter().take(n as usize) {
                                self.add_overlay(&service, &host, admin, free.min(per.max(1)));
                                n -= 1;
                                out = true;
                            }
                        }
                        if n > 0 {
                            tracing::info!(service, component, count = n, "scaling out: free slots below the minimum");
                            delta += i64::from(n);
                            out = true;
                        }
                    }
                    ScaleAction::Decommission(id) if overlaid.contains(&id) => {
                        tracing::info!(service, host = id, "virtual scale-in: draining the configuration");
                        if let Some(ov) = self.lock().overlays.get_mut(&service).and_then(|o| o.get_mut(&id)) {
                            ov.draining = true;
                        }
                        inn = true;
                    }
                    ScaleAction::Recommission(id) if overlaid.contains(&id) => {
                        if let Some(ov) = self.lock().overlays.get_mut(&service).and_then(|o| o.get_mut(&id)) {
                            ov.draining = false;
                        }
                        out = true;
                    }
                    ScaleAction::Terminate(id) if overlaid.contains(&id) => self.remove_overlay(&service, &id),
                    // Never below the minimum of the service's own instances: overlays come
                    // and go with other services.
                    ScaleAction::Decommission(_) if i64::from(desired_now) + delta <= i64::from(min_instances) => {}
                    ScaleAction::Recommission(id) => {
                        tracing::info!(service, instance = id, "scaling out: recommissioning a draining instance");
                        self.set_state(&id, InstanceState::Running);
                        delta += 1;
                        out = true;
                    }
                    ScaleAction::Decommission(id) => {
                        tracing::info!(service, instance = id, "scaling in: decommissioned, draining its sessions");
                        self.set_state(&id, InstanceState::Decommissioned);
                        delta -= 1;
                        inn = true;
                    }
                    // The reconciler stops a drained instance once neither its report nor
                    // the gateway shows a session (see `usage`).
                    ScaleAction::Terminate(_) => {}
                }
            }
            if delta != 0 {
                let r = self.update_service(&service, |rec| {
                    let n = rec.desired.entry(component.clone()).or_insert(0);
                    *n = (i64::from(*n) + delta).clamp(0, i64::from(max)) as u32;
                    Ok(())
                });
                if let Err(e) = r {
                    tracing::warn!(service, "cannot record the scaler's instance count: {}", e.body.detail);
                }
            }
            let mut rt = self.lock();
            let m = rt.scaler.entry(service).or_default();
            if out {
                m.last_out_ms = Some(now);
            }
            if inn {
                m.last_in_ms = Some(now);
            }
            acted |= out || inn;
        }
        acted
    }

    /// One gateway listener per port of each deployed service's entry component (its public
    /// endpoints) and of each component another one has a channel to (admin ports excepted);
    /// listeners of services no longer deployed are closed (open sessions run to their end).
    fn sync_gateways(&self) {
        let wanted: BTreeSet<GatewayKey> = {
            let rt = self.lock();
            rt.services.values().filter(|s| s.state == "deployed").flat_map(|s| gateway_keys(&s.service)).collect()
        };
        let mut rt = self.lock();
        let stale: Vec<GatewayKey> = rt.gateways.keys().filter(|k| !wanted.contains(*k)).cloned().collect();
        let mut changed = !stale.is_empty();
        for k in stale {
            if let Some((addr, task)) = rt.gateways.remove(&k) {
                tracing::info!(service = k.0, component = k.1, port = k.2, %addr, "gateway closed");
                task.abort();
            }
        }
        for key in wanted {
            changed |= self.open_gateway(&mut rt, key).is_some();
        }
        drop(rt);
        if changed {
            self.bump();
        }
    }

    /// Opens the gateway `key` unless it is open; returns its address when it was opened now.
    fn open_gateway(&self, rt: &mut Runtime, key: GatewayKey) -> Option<SocketAddr> {
        if rt.gateways.contains_key(&key) {
            return None;
        }
        match crate::gateway::listen(self.me.clone(), key.clone()) {
            Ok((addr, task)) => {
                tracing::info!(service = key.0, component = key.1, port = key.2, %addr, "gateway listening");
                rt.gateways.insert(key, (addr, task));
                Some(addr)
            }
            Err(e) => {
                tracing::warn!(service = key.0, component = key.1, port = key.2, "cannot open the gateway: {e}");
                None
            }
        }
    }

    /// The gateway address of each port of the components `component` has channels to,
    /// opened now if need be (an instance learns them at start, before the next sync).
    fn peer_gateways(&self, service: &Service, component: &str) -> Vec<(String, String, SocketAddr)> {
        let keys: Vec<GatewayKey> = gateway_keys(service)
            .into_iter()
            .filter(|(_, to, _)| service.channels.iter().any(|c| c.from == component && c.to == *to))
            .collect();
        let mut rt = self.lock();
        let mut out = Vec::new();
        for key in keys {
            self.open_gateway(&mut rt, key.clone());
            if let Some((addr, _)) = rt.gateways.get(&key) {
                out.push((key.1, key.2, *addr));
            }
        }
        out
    }

    /// The gateway's choice for a new connection to `key`'s component and port (FUSION
    /// §2.9): an active instance with a free slot (and a free slot under the
    /// configuration's cap), by the zone's balancing policy, skipping `excluded`. The session
    /// is counted at once. Behind an internal gateway, an instance that reports no slots is
    /// balanced by open connections alone; at a public endpoint it is not ready until it
    /// reports.
    pub(crate) fn gateway_pick(&self, key: &GatewayKey, excluded: &[String]) -> Option<Picked> {
        let (service, component, port) = key;
        let mut rt = self.lock();
        let public = rt.services.get(service)?.service.entry_component()?.name == *component;
        let mut cands = Vec::new();
        let mut addrs = Vec::new();
        for i in rt.instances.values() {
            if i.service != *service || i.component != *component || excluded.contains(&i.id) {
                continue;
            }
            let state = match i.state {
                InstanceState::Running => SlotState::Active,
                InstanceState::Decommissioned => SlotState::Decommissioned,
                _ => continue,
            };
            let Some(pm) = i.ports.iter().find(|p| p.name == *port) else { continue };
            let gw = rt.gw_sessions.get(&i.id).copied().unwrap_or(0);
            let Some(rep) = rt.slots.get(&i.id) else {
                if !public {
                    cands.push(Candidate {
                        id: i.id.clone(),
                        state,
                        max: UNREPORTED_CAPACITY,
                        free: UNREPORTED_CAPACITY.saturating_sub(gw),
                        config_free: None,
                        ewma_us: rt.ewma_us.get(&i.id).copied().unwrap_or(0.0),
                    });
                    addrs.push(SocketAddr::from(([127, 0, 0, 1], pm.public)));
                }
                continue;
            };
            let free = rep.free.min(rep.max.saturating_sub(rep.used.max(gw)));
            let gw_port = rt.gw_port_sessions.get(&(i.id.clone(), pm.public)).copied().unwrap_or(0);
            let config_free = rep
                .configs
                .values()
                .find(|c| c.port == pm.public)
                .and_then(|c| c.max.map(|cap| c.free.min(cap.saturating_sub(c.used.max(gw_port)))));
            cands.push(Candidate {
                id: i.id.clone(),
                state,
                max: rep.max,
                free,
                config_free,
                ewma_us: rt.ewma_us.get(&i.id).copied().unwrap_or(0.0),
            });
            addrs.push(SocketAddr::from(([127, 0, 0, 1], pm.public)));
        }
        // The service's configurations on other services' instances: the host's resource
        // slots are shared, the configuration's cap holds. Overlays carry the entry only.
        for (host, ov) in rt.overlays.get(service).into_iter().flatten().filter(|_| public) {
            let Some(rep) = rt.slots.get(host).filter(|_| ov.port != 0 && !excluded.contains(host)) else { continue };
            if rt.instances.get(host).is_none_or(|i| i.state != InstanceState::Running) {
                continue;
            }
            let gw = rt.gw_sessions.get(host).copied().unwrap_or(0);
            let gw_port = rt.gw_port_sessions.get(&(host.clone(), ov.port)).copied().unwrap_or(0);
            let cfg = rep.configs.get(service);
            let used = cfg.map_or(gw_port, |c| c.used.max(gw_port));
            cands.push(Candidate {
                id: host.clone(),
                state: if ov.draining { SlotState::Decommissioned } else { SlotState::Active },
                max: rep.max,
                free: rep.free.min(rep.max.saturating_sub(rep.used.max(gw))),
                config_free: Some(cfg.map_or(0, |c| c.free).min(ov.cap.saturating_sub(used))),
                ewma_us: rt.ewma_us.get(host).copied().unwrap_or(0.0),
            });
            addrs.push(SocketAddr::from(([127, 0, 0, 1], ov.port)));
        }
        // xorshift64: the gateway's randomness only spreads load, it need not be strong.
        let mut x = rt.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rt.rng = x;
        let k = pick(self.settings.slots.balance, &cands, x)?;
        let id = cands[k].id.clone();
        *rt.gw_sessions.entry(id.clone()).or_default() += 1;
        *rt.gw_port_sessions.entry((id.clone(), addrs[k].port())).or_default() += 1;
        Some(Picked { instance: id, addr: addrs[k] })
    }

    /// A gateway session to `instance` ended (or its connection failed).
    pub(crate) fn gateway_release(&self, instance: &str, port: u16) {
        let mut rt = self.lock();
        if let Some(n) = rt.gw_sessions.get_mut(instance) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                rt.gw_sessions.remove(instance);
            }
        }
        let key = (instance.to_string(), port);
        if let Some(n) = rt.gw_port_sessions.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                rt.gw_port_sessions.remove(&key);
            }
        }
        let draining = rt.instances.get(instance).is_some_and(|i| i.state == InstanceState::Decommissioned)
            || rt.overlays.values().any(|o| o.get(instance).is_some_and(|ov| ov.draining));
        drop(rt);
        if draining {
            // Its last session may just have ended: let the reconciler stop it now.
            self.kick();
        }
    }

    /// Records how long connecting to `instance` took (failures count as slow).
    pub(crate) fn gateway_latency(&self, instance: &str, took: Duration) {
        let mut rt = self.lock();
        let prev = rt.ewma_us.get(instance).copied().unwrap_or(0.0);
        let v = zonal_control::slots::ewma(prev, took.as_secs_f64() * 1e6, 0.2);
        rt.ewma_us.insert(instance.to_string(), v);
    }

    /// The gateway turned a connection to `service` away: no instance had a free slot.
    pub(crate) fn gateway_rejected(&self, service: &str) {
        *self.lock().gw_rejected.entry(service.to_string()).or_default() += 1;
    }

    /// The control loop. Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(mut events) = self.events_rx.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            tracing::error!("the zone's control loop is already running");
            return;
        };
        loop {
            while let Ok(ev) = events.try_recv() {
                self.handle_event(ev);
            }
            let wake = self.reconcile_once();
            let now = now_ms();
            let wait = wake.map_or(500, |w| w.saturating_sub(now)).clamp(5, 500);
            tokio::select! {
                ev = events.recv() => if let Some(ev) = ev { self.handle_event(ev) },
                _ = self.kick.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
    }

    /// Clean stop: stops every instance (SIGTERM, then SIGKILL after the grace period) and
    /// drops their records; desired counts stay.
    pub async fn stop_all(&self) {
        let all: Vec<(String, Option<u32>)> = self.lock().instances.values().map(|r| (r.id.clone(), r.pid)).collect();
        if all.is_empty() {
            return;
        }
        tracing::info!("stopping {} instance(s)", all.len());
        let mut tasks = Vec::new();
        for (id, pid) in all {
            self.set_state(&id, InstanceState::Terminating);
            let adaptor = self.adaptor.clone();
            let grace = self.settings.stop_grace;
            tasks.push(tokio::spawn(async move {
                if let Some(pid) = pid {
                    adaptor.stop(&id, pid, grace).await;
                }
                id
            }));
        }
        for t in tasks {
            if let Ok(id) = t.await {
                self.forget(&id);
            }
        }
    }
}

/// The gateways a deployed service needs in a zone: every port (but `admin`) of its entry
/// component and of each component that is the target of a channel, when it runs something.
fn gateway_keys(service: &Service) -> BTreeSet<GatewayKey> {
    let entry = service.entry_component().map(|c| c.name.clone());
    service
        .components
        .iter()
        .filter(|c| !matches!(c.run, RunSpec::None))
        .filter(|c| Some(&c.name) == entry.as_ref() || service.channels.iter().any(|ch| ch.to == c.name))
        .flat_map(|c| {
            c.ports.iter().filter(|p| p.name != "admin").map(|p| (service.name.clone(), c.name.clone(), p.name.clone()))
        })
        .collect()
}

/// `name` as an environment variable suffix: ASCII letters and digits upper-cased, the rest `_`.
fn env_key(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

fn describe_exit(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "exited".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonal_store::MemStore;

    const WEB: &str = "kind: Service\nname: web\ncomponents:\n  - name: web\n    run: zonal workload\n    scaling: {min_instances: 1, max_instances: 3}\n";

    fn open(dir: &std::path::Path) -> Arc<ZoneCore> {
        let settings = ZoneSettings {
            name: "z".into(),
            tier: None,
            hosts: Vec::new(),
            price: Default::default(),
            state_dir: dir.to_path_buf(),
            stop_grace: Duration::from_secs(1),
            slots: SlotSettings::default(),
        };
        let adaptor = Arc::new(crate::process::ProcessAdaptor::new("z-test", PathBuf::from("/bin/false")));
        ZoneCore::open(settings, Arc::new(MemStore::new()), adaptor).expect("open")
    }

    #[test]
    fn gateways_front_the_entry_and_every_channel_target_but_not_admin_ports_or_empty_components() {
        let text = "kind: Service\nname: duo\nentry: front\ncomponents:\n  - name: front\n    run: zonal workload\n    ports:\n      - {name: tcp, protocol: tcp}\n      - {name: admin, protocol: http}\n  - name: back\n    run: zonal workload\n    ports:\n      - {name: rpc, protocol: tcp}\n      - {name: stats, protocol: tcp}\n  - name: lonely\n    run: zonal workload\n    ports:\n      - {name: tcp, protocol: tcp}\nchannels:\n  - {from: front, to: back}\n";
        let service = parse_manifest("test", text).expect("manifest");
        let keys: Vec<(String, String)> = gateway_keys(&service).into_iter().map(|(_, c, p)| (c, p)).collect();
        let want = [("back", "rpc"), ("back", "stats"), ("front", "tcp")];
        assert_eq!(keys, want.map(|(c, p)| (c.to_string(), p.to_string())).to_vec());
        assert_eq!(env_key("my-peer.1"), "MY_PEER_1");
    }

    #[test]
    fn registration_is_validated_and_idempotent() {
        let dir = tempfile::tempdir().expect("dir");
        let z = open(dir.path());
        assert_eq!(z.register_service("other", WEB).expect_err("mismatch").status, 400);
        assert_eq!(
            z.register_service("web", "kind: Service\nname: web\n").expect_err("invalid").body.error,
            "invalid_manifest"
        );
        assert_eq!(z.register_service("web", WEB).expect("register").0, 201);
        assert_eq!(z.register_service("web", WEB).expect("again").0, 200);
        let e = z.set_desired(
            "web",
            &ZoneSlotsChange { instances: [("web".to_string(), 9)].into_iter().collect(), slots: None, offer: None },
        );
        assert_eq!(e.expect_err("over max").status, 400);
        let e = z.set_desired(
            "web",
            &ZoneSlotsChange { instances: [("nope".to_string(), 1)].into_iter().collect(), slots: None, offer: None },
        );
        assert_eq!(e.expect_err("unknown component").status, 400);
        let v = z.set_service_state("web", "deploy").expect("deploy");
        assert_eq!(v.instances.get("web"), Some(&1), "deploy without counts uses min_instances");
        let changed = WEB.replace("max_instances: 3", "max_instances: 4");
        assert_eq!(z.register_service("web", &changed).expect_err("deployed").status, 409);
        assert_eq!(z.unbind_domain().expect_err("active").status, 409);
    }

    #[test]
    fn instances_speak_only_for_themselves_and_their_namespace() {
        let dir = tempfile::tempdir().expect("dir");
        let z = open(dir.path());
        z.register_service("web", WEB).expect("register");
        let inst = Principal { name: "web-web-abc".into(), role: Role::Instance };
        assert_eq!(z.check_instance_caller(&inst, "web-web-xyz").expect_err("other").status, 403);
        assert!(z.check_instance_caller(&inst, "web-web-abc").is_ok());
        // Not a known instance: no namespace.
        assert_eq!(z.check_namespace(&inst, "web").expect_err("unknown instance").status, 403);
        let domain = Principal { name: "domain".into(), role: Role::Domain };
        assert!(z.check_namespace(&domain, "web").is_ok());
        z.context_put("web", "web/i1", &serde_json::json!({"endpoints": {"a": "127.0.0.1:1"}})).expect("put");
        assert_eq!(z.context_list("web", "web/").expect("list").len(), 1);
        assert_eq!(z.context_put("nope", "k", &serde_json::json!(1)).expect_err("no ns").status, 404);
        let bad = Meter {
            counter_name: "fusioncounter".into(),
            counter_unit: None,
            counter_volume: serde_json::json!("lots"),
            counter_type: None,
            resource_metadata: zonal_proto::wire::MeterMetadata { instance_id: "web-web-abc".into(), service_id: None },
        };
        assert_eq!(z.meter(&inst, &bad).expect_err("not a number").status, 400);
    }
}
