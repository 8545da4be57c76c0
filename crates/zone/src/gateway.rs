//! The gateway's state and decisions (FUSION §2.9); the TCP side is [`crate::relay`].
//!
//! One listener per port (but `admin`) of each deployed service's entry component (its
//! public endpoints) and of each component another one has a channel to (connections
//! between components; instances find these in `ZONAL_PEER_<COMPONENT>[_<PORT>]`). For each
//! new connection [`ZoneCore::gateway_route`] decides where it goes:
//!
//! * to an instance here with a free slot, by the zone's balancing policy; or
//! * for a channel target that runs in another zone (a *remote peer*: the domain gave its
//!   address in `remote_peers` and wants no instance of it here — local instances win), to
//!   that address. The listener stays the same when the address changes, so instances keep
//!   their `ZONAL_PEER_*`; new connections go to the new address.
//!
//! **Across a restart of the zone manager** (`kill -9` included):
//!
//! * Each listener's port is kept in the zone's store (`gateway` table,
//!   `port/<service>/<component>/<port>`), and a restarted zone listens on the same port
//!   again, so the endpoints the domain resolves clients to and the `ZONAL_PEER_*` of adopted
//!   instances stay right. A port another process took meanwhile cannot be had: the listener
//!   takes a free one, logs it and says so in the service's `notices`.
//! * Sessions through the gateway are relayed by this process and end with it: a restart
//!   cuts them. They are counted: the [`Ledger`] (`<state>/gateway.sessions`) holds the
//!   sessions open now per service, rewritten in place at every session start and end
//!   without fsync (a process that is killed leaves the page cache behind: the count
//!   survives `kill -9`, though not a crash of the machine). The next start adds what it
//!   says to each service's `lost_sessions`, once (its generation is recorded in the store
//!   in the same commit), and the lost counts themselves are kept in the store
//!   (`lost/<service>`). A clean stop freezes the ledger before it stops the instances, so
//!   the sessions that stop cuts are counted the same way.
//!
//! Lock: `gateway` (listeners, open sessions per instance and per instance port, connect
//! latencies, rejections, remote sessions, the remote peers published in the namespace, the
//! ports to keep, the session ledger).
//! The choice of an instance and the count of its new session happen under this one lock
//! (with `instances` and `scaler` held for reading, in lock order), because slot reports lag
//! behind new sessions: counted later, a burst could send an instance more sessions than its
//! slots.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::AbortHandle;
use zonal_control::reconcile::InstanceState;
use zonal_control::slots::{pick, Candidate, SlotState};
use zonal_model::{RunSpec, Service};
use zonal_store::{Batch, Store, StoreExt};

use crate::core::ZoneCore;
use crate::error::ZoneError;

/// The zone store's table of gateway state: `port/<service>/<component>/<port>` → the
/// listener's port, `lost/<service>` → sessions lost, `ledger` → the last session-ledger
/// generation counted.
pub(crate) const T_GATEWAY: &str = "gateway";
/// The session ledger's file in the zone's state directory.
pub(crate) const LEDGER_FILE: &str = "gateway.sessions";

fn port_row(key: &GatewayKey) -> String {
    format!("port/{}/{}/{}", key.0, key.1, key.2)
}

pub(crate) fn lost_row(service: &str) -> String {
    format!("lost/{service}")
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
    /// When the zone runs instances under providers' uids: the process of the instance
    /// listening at `addr`, whose uid the accepting socket must have (see `relay`).
    pub pid: Option<u32>,
}

/// Where a new connection goes.
pub(crate) enum Route {
    /// An instance in this zone (its session is counted already).
    Local(Picked),
    /// The component runs in another zone: relay to this `host:port` (counted already).
    Remote(String),
}

/// The gateway's state.
#[derive(Debug)]
pub(crate) struct GatewayState {
    listeners: BTreeMap<GatewayKey, (SocketAddr, AbortHandle)>,
    /// Sessions the gateway proxies now, per instance and per (instance, port). Counted
    /// here, synchronously with the choice, because slot reports lag behind new sessions.
    sessions: HashMap<String, u32>,
    port_sessions: HashMap<(String, u16), u32>,
    /// Smoothed connect latency to each instance (µs), for power-of-two choices.
    ewma_us: HashMap<String, f64>,
    /// Connections turned away for lack of slots, per service.
    rejected: BTreeMap<String, u64>,
    /// Sessions relayed to remote peers now, and connections that could not reach them.
    remote_sessions: BTreeMap<GatewayKey, u32>,
    remote_failures: BTreeMap<GatewayKey, u64>,
    /// Remote peers written to the namespace: (namespace, key) → value.
    pub(crate) published: BTreeMap<(String, String), serde_json::Value>,
    /// State of the random choices (power of two).
    rng: u64,
    /// The port each listener had (from the store): a restarted zone listens there again.
    ports: BTreeMap<GatewayKey, u16>,
    /// Listeners whose port is not in the store yet.
    unsaved: BTreeSet<GatewayKey>,
    /// Per service, what its listeners have to say (a port that could not be had back).
    notices: BTreeMap<String, Vec<String>>,
    /// Sessions open now per service, kept where a process kill does not lose them.
    ledger: Option<Ledger>,
}

impl GatewayState {
    pub(crate) fn new(seed: u64) -> GatewayState {
        GatewayState {
            listeners: BTreeMap::new(),
            sessions: HashMap::new(),
            port_sessions: HashMap::new(),
            ewma_us: HashMap::new(),
            rejected: BTreeMap::new(),
            remote_sessions: BTreeMap::new(),
            remote_failures: BTreeMap::new(),
            published: BTreeMap::new(),
            rng: seed,
            ports: BTreeMap::new(),
            unsaved: BTreeSet::new(),
            notices: BTreeMap::new(),
            ledger: None,
        }
    }

    /// The gateway's state for a zone that starts: the ports its listeners had (from the
    /// store) and the session ledger.
    pub(crate) fn restored(seed: u64, ports: BTreeMap<GatewayKey, u16>, ledger: Option<Ledger>) -> GatewayState {
        GatewayState { ports, ledger, ..GatewayState::new(seed) }
    }

    /// What the listeners of `service` have to say.
    pub(crate) fn notices_of(&self, service: &str) -> Vec<String> {
        self.notices.get(service).cloned().unwrap_or_default()
    }

    fn session_started(&mut self, service: &str) {
        if let Some(l) = &mut self.ledger {
            l.change(service, 1);
        }
    }

    fn session_ended(&mut self, service: &str) {
        if let Some(l) = &mut self.ledger {
            l.change(service, -1);
        }
    }

    /// Sessions the gateway has open to instance `id`.
    pub(crate) fn sessions_of(&self, id: &str) -> u32 {
        self.sessions.get(id).copied().unwrap_or(0)
    }

    /// Sessions the gateway has open to `port` of instance `id`.
    pub(crate) fn port_sessions_of(&self, id: &str, port: u16) -> u32 {
        self.port_sessions.get(&(id.to_string(), port)).copied().unwrap_or(0)
    }

    fn ewma_of(&self, id: &str) -> f64 {
        self.ewma_us.get(id).copied().unwrap_or(0.0)
    }

    /// The listeners of `service`: (component, port, address).
    pub(crate) fn listeners_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = (&'a str, &'a str, SocketAddr)> {
        self.listeners
            .iter()
            .filter(move |(k, _)| k.0 == service)
            .map(|(k, (addr, _))| (k.1.as_str(), k.2.as_str(), *addr))
    }

    pub(crate) fn listener(&self, key: &GatewayKey) -> Option<SocketAddr> {
        self.listeners.get(key).map(|(a, _)| *a)
    }

    /// Sessions relayed to remote peers of `service` now.
    pub(crate) fn remote_sessions_of(&self, service: &str) -> u32 {
        self.remote_sessions.iter().filter(|(k, _)| k.0 == service).map(|(_, n)| *n).sum()
    }

    pub(crate) fn rejected(&self) -> &BTreeMap<String, u64> {
        &self.rejected
    }

    /// Per remote peer: open sessions and failed connections.
    pub(crate) fn remote_counts(&self) -> BTreeMap<&GatewayKey, (u32, u64)> {
        let mut out: BTreeMap<&GatewayKey, (u32, u64)> = BTreeMap::new();
        for (k, n) in &self.remote_sessions {
            out.entry(k).or_default().0 = *n;
        }
        for (k, n) in &self.remote_failures {
            out.entry(k).or_default().1 = *n;
        }
        out
    }

    /// xorshift64: the gateway's randomness only spreads load, it need not be strong.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// The gateways a deployed service needs in a zone: every port (but `admin`) of its entry
/// component and of each component that is the target of a channel, when it runs something.
pub(crate) fn gateway_keys(service: &Service) -> BTreeSet<GatewayKey> {
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

impl ZoneCore {
    /// Where a new connection to `key`'s component and port goes (FUSION §2.9): to the
    /// component's remote address when it runs in another zone; else to an active instance
    /// here with a free slot (and a free slot under the configuration's cap), by the zone's
    /// balancing policy, skipping `excluded`. The session is counted at once. Behind an
    /// internal gateway, an instance that reports no slots is balanced by open connections
    /// alone; at a public endpoint it is not ready until it reports.
    pub(crate) fn gateway_route(&self, key: &GatewayKey, excluded: &[String]) -> Option<Route> {
        let (service, component, port) = key;
        let (public, remote, carriers) = {
            let reg = self.registry();
            let rec = reg.services.get(service)?;
            let public = rec.service.entry_component()?.name == *component;
            // Services whose instances may carry this one's sessions (overlays): its own
            // provider's, and those that share with it (`scaler` module docs).
            let carriers: BTreeSet<String> = match public {
                true => reg.services.values().filter(|t| t.may_carry(rec)).map(|t| t.serviceid.clone()).collect(),
                false => BTreeSet::new(),
            };
            (public, rec.remote_target(component, port).map(str::to_string), carriers)
        };
        if let Some(addr) = remote {
            let mut gw = self.gateway_state();
            *gw.remote_sessions.entry(key.clone()).or_default() += 1;
            gw.session_started(service);
            return Some(Route::Remote(addr));
        }
        // Lock order instances → scaler → gateway; all three held so that the candidates,
        // the choice and the count of the session are one step.
        let inst = self.instances_state();
        let sc = self.scaler_state();
        let mut gw = self.gateway_state();
        let mut cands = Vec::new();
        let mut addrs = Vec::new();
        for i in inst.records.values() {
            if i.service != *service || i.component != *component || excluded.contains(&i.id) {
                continue;
            }
            let state = match i.state {
                InstanceState::Running => SlotState::Active,
                InstanceState::Decommissioned => SlotState::Decommissioned,
                _ => continue,
            };
            let Some(pm) = i.ports.iter().find(|p| p.name == *port) else { continue };
            let open = gw.sessions_of(&i.id);
            let Some(rep) = inst.reports.get(&i.id) else {
                if !public {
                    cands.push(Candidate {
                        id: i.id.clone(),
                        state,
                        max: UNREPORTED_CAPACITY,
                        free: UNREPORTED_CAPACITY.saturating_sub(open),
                        config_free: None,
                        ewma_us: gw.ewma_of(&i.id),
                    });
                    addrs.push(SocketAddr::from(([127, 0, 0, 1], pm.public)));
                }
                continue;
            };
            let free = rep.free.min(rep.max.saturating_sub(rep.used.max(open)));
            let open_port = gw.port_sessions_of(&i.id, pm.public);
            let config_free = rep
                .configs
                .values()
                .find(|c| c.port == pm.public)
                .and_then(|c| c.max.map(|cap| c.free.min(cap.saturating_sub(c.used.max(open_port)))));
            cands.push(Candidate {
                id: i.id.clone(),
                state,
                max: rep.max,
                free,
                config_free,
                ewma_us: gw.ewma_of(&i.id),
            });
            addrs.push(SocketAddr::from(([127, 0, 0, 1], pm.public)));
        }
        // The service's configurations on other services' instances: the host's resource
        // slots are shared, the configuration's cap holds. Overlays carry the entry only.
        for (host, ov) in sc.overlays.get(service).into_iter().flatten().filter(|_| public) {
            let Some(rep) = inst.reports.get(host).filter(|_| ov.port != 0 && !excluded.contains(host)) else {
                continue;
            };
            if inst
                .records
                .get(host)
                .is_none_or(|i| i.state != InstanceState::Running || !carriers.contains(&i.service))
            {
                continue;
            }
            let open = gw.sessions_of(host);
            let open_port = gw.port_sessions_of(host, ov.port);
            let cfg = rep.configs.get(service);
            let used = cfg.map_or(open_port, |c| c.used.max(open_port));
            cands.push(Candidate {
                id: host.clone(),
                state: if ov.draining { SlotState::Decommissioned } else { SlotState::Active },
                max: rep.max,
                free: rep.free.min(rep.max.saturating_sub(rep.used.max(open))),
                config_free: Some(cfg.map_or(0, |c| c.free).min(ov.cap.saturating_sub(used))),
                ewma_us: gw.ewma_of(host),
            });
            addrs.push(SocketAddr::from(([127, 0, 0, 1], ov.port)));
        }
        let random = gw.next_random();
        let k = pick(self.settings.slots.balance, &cands, random)?;
        let id = cands[k].id.clone();
        *gw.sessions.entry(id.clone()).or_default() += 1;
        *gw.port_sessions.entry((id.clone(), addrs[k].port())).or_default() += 1;
        gw.session_started(service);
        let pid = self.adaptor.switches_users().then(|| inst.records.get(&id).and_then(|r| r.pid)).flatten();
        Some(Route::Local(Picked { instance: id, addr: addrs[k], pid }))
    }

    /// A gateway session of `service` to `instance` ended (or its connection failed).
    pub(crate) fn gateway_release(&self, service: &str, instance: &str, port: u16) {
        {
            let mut gw = self.gateway_state();
            gw.session_ended(service);
            if let Some(n) = gw.sessions.get_mut(instance) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    gw.sessions.remove(instance);
                }
            }
            let key = (instance.to_string(), port);
            if let Some(n) = gw.port_sessions.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    gw.port_sessions.remove(&key);
                }
            }
        }
        // The gateway lock is released first: instances and scaler come before it.
        let draining =
            self.instances_state().records.get(instance).is_some_and(|i| i.state == InstanceState::Decommissioned)
                || self.scaler_state().overlays.values().any(|o| o.get(instance).is_some_and(|ov| ov.draining));
        if draining {
            // Its last session may just have ended: let the reconciler stop it now.
            self.kick();
        }
    }

    /// A session relayed to a remote peer ended.
    pub(crate) fn remote_release(&self, key: &GatewayKey) {
        let mut gw = self.gateway_state();
        gw.session_ended(&key.0);
        if let Some(n) = gw.remote_sessions.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                gw.remote_sessions.remove(key);
            }
        }
    }

    /// A connection for a remote peer could not reach it: counted and logged (the
    /// connection is closed by the caller).
    pub(crate) fn remote_unreachable(&self, key: &GatewayKey, addr: &str, why: &str) {
        *self.gateway_state().remote_failures.entry(key.clone()).or_default() += 1;
        tracing::warn!(
            service = key.0,
            component = key.1,
            port = key.2,
            remote = addr,
            "cannot reach the remote peer: {why}; the connection was closed"
        );
    }

    /// Records how long connecting to `instance` took (failures count as slow).
    pub(crate) fn gateway_latency(&self, instance: &str, took: Duration) {
        let mut gw = self.gateway_state();
        let prev = gw.ewma_of(instance);
        let v = zonal_control::slots::ewma(prev, took.as_secs_f64() * 1e6, 0.2);
        gw.ewma_us.insert(instance.to_string(), v);
    }

    /// The gateway turned a connection to `service` away: no instance had a free slot.
    pub(crate) fn gateway_rejected(&self, service: &str) {
        *self.gateway_state().rejected.entry(service.to_string()).or_default() += 1;
    }

    /// One gateway listener per port of each deployed service's entry component (its public
    /// endpoints) and of each component another one has a channel to (admin ports excepted);
    /// listeners of services no longer deployed are closed (open sessions run to their end).
    /// Remote peers are (re)published in their service's namespace.
    pub(crate) fn sync_gateways(&self) {
        let (wanted, remote): (BTreeSet<GatewayKey>, Vec<(GatewayKey, String)>) = {
            let reg = self.registry();
            let mut wanted = BTreeSet::new();
            let mut remote = Vec::new();
            for s in reg.services.values().filter(|s| s.is_deployed()) {
                for key in gateway_keys(&s.service) {
                    if let Some(addr) = s.remote_target(&key.1, &key.2) {
                        remote.push((key.clone(), addr.to_string()));
                    }
                    wanted.insert(key);
                }
            }
            (wanted, remote)
        };
        let mut gw = self.gateway_state();
        let stale: Vec<GatewayKey> = gw.listeners.keys().filter(|k| !wanted.contains(*k)).cloned().collect();
        let mut changed = !stale.is_empty();
        for k in stale {
            if let Some((addr, task)) = gw.listeners.remove(&k) {
                tracing::info!(service = k.0, component = k.1, port = k.2, %addr, "gateway closed");
                task.abort();
            }
        }
        for key in wanted {
            changed |= self.open_gateway(&mut gw, key).is_some();
        }
        self.save_gateway_ports(&mut gw);
        let entries: BTreeMap<(String, String), serde_json::Value> = remote
            .into_iter()
            .filter_map(|(key, addr)| {
                let local = gw.listener(&key)?;
                Some(crate::context::remote_peer_entry(&key, local, &addr))
            })
            .collect();
        drop(gw);
        self.publish_remote_peers(entries);
        if changed {
            self.bump();
        }
    }

    /// Forgets the ports and notices of a service unregistered here (its store rows go with
    /// its record).
    pub(crate) fn forget_gateway_ports(&self, service: &str) {
        let mut gw = self.gateway_state();
        gw.ports.retain(|k, _| k.0 != service);
        gw.unsaved.retain(|k| k.0 != service);
        gw.notices.remove(service);
    }

    /// Stops counting session ends in the ledger: the sessions open now are the ones a
    /// clean stop cuts (it stops the instances next), and the next start counts them lost.
    pub(crate) fn freeze_session_ledger(&self) {
        if let Some(l) = &mut self.gateway_state().ledger {
            l.frozen = true;
        }
    }

    /// Closes every listener (the zone manager stops; open sessions run to their end).
    pub(crate) fn close_gateways(&self) {
        let mut gw = self.gateway_state();
        for (_, (_, task)) in std::mem::take(&mut gw.listeners) {
            task.abort();
        }
    }

    /// Opens the gateway `key` unless it is open; returns its address when it was opened now.
    /// A listener that had a port (in the store) gets it again if it is free.
    fn open_gateway(&self, gw: &mut GatewayState, key: GatewayKey) -> Option<SocketAddr> {
        if gw.listeners.contains_key(&key) {
            return None;
        }
        let want = gw.ports.get(&key).copied();
        match crate::relay::listen(self.me.clone(), key.clone(), want) {
            Ok((addr, task, taken)) => {
                tracing::info!(service = key.0, component = key.1, port = key.2, %addr, "gateway listening");
                if let Some((old, why)) = taken {
                    let notice = format!(
                        "gateway {}/{}: port {old} (its port before the zone manager restarted) could not be had again ({why}); listening on {} instead",
                        key.1,
                        key.2,
                        addr.port()
                    );
                    tracing::warn!(service = key.0, "{notice}");
                    let notes = gw.notices.entry(key.0.clone()).or_default();
                    notes.retain(|n| !n.starts_with(&format!("gateway {}/{}:", key.1, key.2)));
                    notes.push(notice);
                }
                if want != Some(addr.port()) {
                    gw.ports.insert(key.clone(), addr.port());
                    gw.unsaved.insert(key.clone());
                }
                gw.listeners.insert(key, (addr, task));
                Some(addr)
            }
            Err(e) => {
                tracing::warn!(service = key.0, component = key.1, port = key.2, "cannot open the gateway: {e}");
                None
            }
        }
    }

    /// Writes the ports of listeners opened since the last call (one commit, under the
    /// gateway lock, so that the store never holds an older port than the listener's).
    fn save_gateway_ports(&self, gw: &mut GatewayState) {
        if gw.unsaved.is_empty() {
            return;
        }
        let mut batch = Batch::new();
        for key in &gw.unsaved {
            let Some(port) = gw.ports.get(key) else { continue };
            match batch.put(T_GATEWAY, &port_row(key), port) {
                Ok(b) => batch = b,
                Err(e) => {
                    tracing::error!("{e}");
                    return;
                }
            }
        }
        match self.store.commit(batch) {
            Ok(()) => gw.unsaved.clear(),
            Err(e) => {
                tracing::warn!("cannot keep the gateway ports in the store (tried again at the next change): {e}")
            }
        }
    }

    /// The gateway address of each port of the components `component` has channels to,
    /// opened now if need be (an instance learns them at start, before the next sync).
    pub(crate) fn peer_gateways(&self, service: &Service, component: &str) -> Vec<(String, String, SocketAddr)> {
        let keys: Vec<GatewayKey> = gateway_keys(service)
            .into_iter()
            .filter(|(_, to, _)| service.channels.iter().any(|c| c.from == component && c.to == *to))
            .collect();
        let mut gw = self.gateway_state();
        let mut out = Vec::new();
        for key in keys {
            self.open_gateway(&mut gw, key.clone());
            if let Some(addr) = gw.listener(&key) {
                out.push((key.1, key.2, addr));
            }
        }
        self.save_gateway_ports(&mut gw);
        out
    }
}

/// Sessions open through the gateway now, per service, in a small file rewritten in place at
/// every change (`pwrite` at offset 0, padded to the longest text written, no fsync): a
/// killed process leaves it in the page cache, so the next start reads what was open when
/// it died. `{"generation": g, "open": {"<service>": n}}`; each start of the zone manager
/// writes a new generation.
pub(crate) struct Ledger {
    file: File,
    path: PathBuf,
    generation: u64,
    open: BTreeMap<String, u32>,
    written: usize,
    /// Set by a clean stop: the count stays as it was (module doc).
    frozen: bool,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).field("generation", &self.generation).finish()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LedgerText {
    generation: u64,
    open: BTreeMap<String, u32>,
}

impl Ledger {
    fn change(&mut self, service: &str, delta: i32) {
        if self.frozen {
            return;
        }
        match self.open.get_mut(service) {
            Some(n) => {
                *n = n.saturating_add_signed(delta);
                if *n == 0 {
                    self.open.remove(service);
                }
            }
            None if delta > 0 => {
                self.open.insert(service.to_string(), delta.unsigned_abs());
            }
            None => return,
        }
        self.write();
    }

    /// The text is written by hand (it is read back with serde): this runs under the
    /// gateway lock at every session start and end.
    fn write(&mut self) {
        use std::io::Write as _;
        self.buf.clear();
        let _ = write!(self.buf, "{{\"generation\":{},\"open\":{{", self.generation);
        for (i, (service, n)) in self.open.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            let _ = serde_json::to_writer(&mut self.buf, service);
            let _ = write!(self.buf, ":{n}");
        }
        self.buf.extend_from_slice(b"}}\n");
        let len = self.buf.len();
        if len < self.written {
            self.buf.resize(self.written, b' ');
        }
        match self.file.write_at(&self.buf, 0) {
            Ok(n) if n == self.buf.len() => self.written = self.written.max(len),
            Ok(_) | Err(_) => tracing::warn!("cannot write the session ledger {}", self.path.display()),
        }
    }

    /// What an open count of sessions per service means to a zone that starts: the
    /// sessions the last process relayed when it ended, which its end cut.
    fn read(path: &Path) -> Result<Option<LedgerText>, String> {
        match std::fs::read(path) {
            // Truncated by a start that ended before it wrote: nothing was open then.
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(None),
            Ok(bytes) => serde_json::from_slice::<LedgerText>(&bytes)
                .map(Some)
                .map_err(|e| format!("the session ledger {} is unreadable: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read the session ledger {}: {e}", path.display())),
        }
    }
}

/// What a starting zone recovers of its gateway: the listeners' ports, the sessions lost
/// per service (those cut by the end of the previous process added once), and a new ledger.
pub(crate) struct Recovered {
    pub ports: BTreeMap<GatewayKey, u16>,
    pub lost: BTreeMap<String, u64>,
    pub ledger: Option<Ledger>,
}

/// Reads the gateway state a zone left (see the module doc). `services` are the services
/// registered here: sessions of one no longer here are not counted.
pub(crate) fn recover(
    store: &dyn Store,
    state_dir: &Path,
    services: &BTreeSet<String>,
) -> Result<Recovered, ZoneError> {
    let mut ports = BTreeMap::new();
    for (row, port) in store.list::<u16>(T_GATEWAY, "port/")? {
        let mut parts = row.trim_start_matches("port/").splitn(3, '/');
        if let (Some(s), Some(c), Some(p)) = (parts.next(), parts.next(), parts.next()) {
            ports.insert((s.to_string(), c.to_string(), p.to_string()), port);
        }
    }
    let mut lost: BTreeMap<String, u64> = store
        .list::<u64>(T_GATEWAY, "lost/")?
        .into_iter()
        .map(|(row, n)| (row.trim_start_matches("lost/").to_string(), n))
        .collect();
    let path = state_dir.join(LEDGER_FILE);
    let counted = store.get::<u64>(T_GATEWAY, "ledger")?.unwrap_or(0);
    let left = match Ledger::read(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("{e}: the sessions the last stop of the zone manager cut are not counted");
            None
        }
    };
    let mut generation = counted;
    if let Some(left) = left {
        generation = generation.max(left.generation);
        if left.generation > counted {
            let mut batch = Batch::new().put(T_GATEWAY, "ledger", &left.generation)?;
            for (service, n) in left.open.iter().filter(|(s, n)| **n > 0 && services.contains(*s)) {
                let total = lost.entry(service.clone()).or_default();
                *total += u64::from(*n);
                batch = batch.put(T_GATEWAY, &lost_row(service), total)?;
                tracing::warn!(
                    service,
                    sessions = n,
                    "sessions relayed by the gateway were cut when the zone manager stopped: counted as lost"
                );
            }
            store.commit(batch)?;
        }
    }
    let ledger = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(zonal_store::files::FILE_MODE)
        .open(&path)
    {
        Ok(file) => {
            let _ = zonal_store::files::tighten_file(&path);
            let mut l = Ledger {
                file,
                path,
                generation: generation + 1,
                open: BTreeMap::new(),
                written: 0,
                frozen: false,
                buf: Vec::new(),
            };
            l.write();
            Some(l)
        }
        Err(e) => {
            tracing::warn!(
                "cannot write the session ledger {}: {e}; sessions a restart cuts will not be counted",
                path.display()
            );
            None
        }
    };
    Ok(Recovered { ports, lost, ledger })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// What the ledger file says now.
    fn on_disk(dir: &Path) -> LedgerText {
        serde_json::from_slice(&std::fs::read(dir.join(LEDGER_FILE)).expect("ledger")).expect("ledger JSON")
    }

    /// A figure for docs/reliability.md, not an assertion:
    /// `cargo test -p zonal-zone -- --ignored --nocapture measure_ledger`.
    #[test]
    #[ignore = "a measurement; run it by name"]
    fn measure_ledger() {
        let dir = tempfile::tempdir().expect("dir");
        let store = zonal_store::MemStore::new();
        let names: Vec<String> = (0..20).map(|i| format!("service-{i}")).collect();
        let mut l = recover(&store, dir.path(), &names.iter().cloned().collect()).expect("recover").ledger.expect("l");
        let n = 200_000;
        let t = std::time::Instant::now();
        for i in 0..n {
            l.change(&names[i % names.len()], if i % 2 == 0 { 1 } else { -1 });
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        eprintln!("ledger: {per:.2} µs per session start or end ({n} changes, 20 services)");
    }

    #[test]
    fn the_ledger_follows_sessions_and_a_restart_counts_the_open_ones_once() {
        let dir = tempfile::tempdir().expect("dir");
        let store = zonal_store::MemStore::new();
        store.put(T_GATEWAY, &port_row(&("web".into(), "web".into(), "http".into())), &41234u16).expect("put");
        let r = recover(&store, dir.path(), &services(&["web", "epg"])).expect("recover");
        assert_eq!(r.ports.values().copied().collect::<Vec<_>>(), [41234]);
        assert!(r.lost.is_empty());
        let mut ledger = r.ledger.expect("a ledger");
        for _ in 0..12 {
            ledger.change("web", 1);
        }
        ledger.change("epg", 1);
        for _ in 0..9 {
            ledger.change("web", -1);
        }
        // Shorter text than before: padded, still one JSON document.
        let text = on_disk(dir.path());
        assert_eq!(text.open, [("epg".to_string(), 1), ("web".to_string(), 3)].into());
        let generation = text.generation;
        // The process ends (as a kill leaves it); the service epg is gone meanwhile.
        drop(ledger);
        let r = recover(&store, dir.path(), &services(&["web"])).expect("recover");
        assert_eq!(r.lost, [("web".to_string(), 3)].into());
        assert_eq!(store.get::<u64>(T_GATEWAY, "lost/web").expect("get"), Some(3));
        assert_eq!(store.get::<u64>(T_GATEWAY, "ledger").expect("get"), Some(generation));
        let next = r.ledger.expect("a new ledger");
        assert_eq!(on_disk(dir.path()).generation, generation + 1);
        assert!(on_disk(dir.path()).open.is_empty());
        drop(next);
        // A crash right after that commit, before the new ledger: nothing counted twice.
        std::fs::write(dir.path().join(LEDGER_FILE), format!("{{\"generation\":{generation},\"open\":{{\"web\":3}}}}"))
            .expect("write");
        let r = recover(&store, dir.path(), &services(&["web"])).expect("recover");
        assert_eq!(r.lost, [("web".to_string(), 3)].into());
        // A frozen ledger (clean stop) keeps its count.
        let mut l = r.ledger.expect("ledger");
        l.change("web", 1);
        l.frozen = true;
        l.change("web", -1);
        assert_eq!(on_disk(dir.path()).open, [("web".to_string(), 1)].into());
        drop(l);
        let r = recover(&store, dir.path(), &services(&["web"])).expect("recover");
        assert_eq!(r.lost, [("web".to_string(), 4)].into());
        // An unreadable ledger counts nothing, and says so (the start goes on).
        std::fs::write(dir.path().join(LEDGER_FILE), b"{\"generation\":9,\"op").expect("write");
        let r = recover(&store, dir.path(), &services(&["web"])).expect("recover");
        assert_eq!(r.lost, [("web".to_string(), 4)].into());
    }

    #[test]
    fn gateways_front_the_entry_and_every_channel_target_but_not_admin_ports_or_empty_components() {
        let text = "kind: Service\nname: duo\nentry: front\ncomponents:\n  - name: front\n    run: zonal workload\n    ports:\n      - {name: tcp, protocol: tcp}\n      - {name: admin, protocol: http}\n  - name: back\n    run: zonal workload\n    ports:\n      - {name: rpc, protocol: tcp}\n      - {name: stats, protocol: tcp}\n  - name: lonely\n    run: zonal workload\n    ports:\n      - {name: tcp, protocol: tcp}\nchannels:\n  - {from: front, to: back}\n";
        let service = zonal_descriptor::parse_manifest("test", text).expect("manifest");
        let keys: Vec<(String, String)> = gateway_keys(&service).into_iter().map(|(_, c, p)| (c, p)).collect();
        let want = [("back", "rpc"), ("back", "stats"), ("front", "tcp")];
        assert_eq!(keys, want.map(|(c, p)| (c.to_string(), p.to_string())).to_vec());
    }
}
