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
//! Lock: `gateway` (listeners, open sessions per instance and per instance port, connect
//! latencies, rejections, remote sessions, the remote peers published in the namespace).
//! The choice of an instance and the count of its new session happen under this one lock
//! (with `instances` and `scaler` held for reading, in lock order), because slot reports lag
//! behind new sessions: counted later, a burst could send an instance more sessions than its
//! slots.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::AbortHandle;
use zonal_control::reconcile::InstanceState;
use zonal_control::slots::{pick, Candidate, SlotState};
use zonal_model::{RunSpec, Service};

use crate::core::ZoneCore;

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
            *self.gateway_state().remote_sessions.entry(key.clone()).or_default() += 1;
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
        Some(Route::Local(Picked { instance: id, addr: addrs[k] }))
    }

    /// A gateway session to `instance` ended (or its connection failed).
    pub(crate) fn gateway_release(&self, instance: &str, port: u16) {
        {
            let mut gw = self.gateway_state();
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

    /// Closes every listener (the zone manager stops; open sessions run to their end).
    pub(crate) fn close_gateways(&self) {
        let mut gw = self.gateway_state();
        for (_, (_, task)) in std::mem::take(&mut gw.listeners) {
            task.abort();
        }
    }

    /// Opens the gateway `key` unless it is open; returns its address when it was opened now.
    fn open_gateway(&self, gw: &mut GatewayState, key: GatewayKey) -> Option<SocketAddr> {
        if gw.listeners.contains_key(&key) {
            return None;
        }
        match crate::relay::listen(self.me.clone(), key.clone()) {
            Ok((addr, task)) => {
                tracing::info!(service = key.0, component = key.1, port = key.2, %addr, "gateway listening");
                gw.listeners.insert(key, (addr, task));
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
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_front_the_entry_and_every_channel_target_but_not_admin_ports_or_empty_components() {
        let text = "kind: Service\nname: duo\nentry: front\ncomponents:\n  - name: front\n    run: zonal workload\n    ports:\n      - {name: tcp, protocol: tcp}\n      - {name: admin, protocol: http}\n  - name: back\n    run: zonal workload\n    ports:\n      - {name: rpc, protocol: tcp}\n      - {name: stats, protocol: tcp}\n  - name: lonely\n    run: zonal workload\n    ports:\n      - {name: tcp, protocol: tcp}\nchannels:\n  - {from: front, to: back}\n";
        let service = zonal_descriptor::parse_manifest("test", text).expect("manifest");
        let keys: Vec<(String, String)> = gateway_keys(&service).into_iter().map(|(_, c, p)| (c, p)).collect();
        let want = [("back", "rpc"), ("back", "stats"), ("front", "tcp")];
        assert_eq!(keys, want.map(|(c, p)| (c.to_string(), p.to_string())).to_vec());
    }
}
