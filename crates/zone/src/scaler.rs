//! The slot scaler (FUSION §2.8.2) and virtual elastic scaling (§2.3.2.2): configurations of
//! a service overlaid on running instances of other services. Lock: `scaler` (overlays and
//! the scaler's memory; after `moves`, before `gateway`).
//!
//! The decisions are `zonal_control::slots::scale`; this module builds its view of each
//! group (instance reports and the gateway's open sessions), and turns its answer into
//! desired counts, instance states and overlays, which the reconciler then carries out.
//!
//! **Tenancy.** A configuration of service S may be overlaid on an instance of service T
//! only when T may carry S's sessions ([`ServiceRecord::may_carry`]): both owners known and
//! the same provider, or T's `share` names S's provider. An overlay that is no longer
//! allowed (an owner changed, a record without owner) is drained — no new session, open
//! ones run to their end — and then removed; the gateway never sends a new session to it.
//!
//! Overlays are kept in memory; after a zone manager restart, the configurations its
//! predecessor added to instances that are still running (they are adopted) show up in the
//! instances' slot reports and are taken back as overlays — and drained if not allowed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use zonal_control::reconcile::InstanceState;
use zonal_control::slots::{scale, InstanceSlots as SlotInstance, ScaleAction, ScalerMemory, ScalerPolicy, SlotState};
use zonal_model::RunSpec;

use crate::adaptor::AdminApi;
use crate::core::ZoneCore;
use crate::gateway::GatewayState;
use crate::instances::Instances;
use crate::registry::{Registry, ServiceRecord};

/// A configuration of a guest service on a host instance (named after the guest service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overlay {
    /// Its port on the host instance; 0 while it is being added.
    pub port: u16,
    /// Most sessions of the guest on the host.
    pub cap: u32,
    /// Scaled in: no new sessions, removed once its last session ends.
    pub draining: bool,
}

/// The scaler's state.
#[derive(Debug, Default)]
pub(crate) struct ScalerState {
    /// Overlays: guest service → host instance → overlay.
    pub overlays: BTreeMap<String, BTreeMap<String, Overlay>>,
    /// When the scaler last acted, per service.
    pub memory: HashMap<String, ScalerMemory>,
}

/// The instances of `(service, component)` as the scaler sees them. Sessions in use are the
/// larger of what the instance reported and what the gateway has open to it: a report may
/// not yet count a session the gateway just forwarded.
pub(crate) fn scaler_view(
    inst: &Instances,
    sc: &ScalerState,
    gw: &GatewayState,
    service: &str,
    component: &str,
    per_instance: u32,
) -> Vec<SlotInstance> {
    let mut out = Vec::new();
    for i in inst.records.values().filter(|i| i.service == service && i.component == component) {
        let open = gw.sessions_of(&i.id);
        let report = inst.reports.get(&i.id);
        let (state, max, free, active) = match (i.state, report) {
            (InstanceState::Running, Some(r)) => {
                let active = r.used.max(open);
                (SlotState::Active, r.max, r.free.min(r.max.saturating_sub(active)), active)
            }
            // Starting, restarting or not yet reporting: its slots are on the way.
            (InstanceState::Running | InstanceState::Provisioning | InstanceState::Failed, _) => {
                (SlotState::Provisioning, per_instance, per_instance, 0)
            }
            (InstanceState::Decommissioned, r) => {
                let max = r.map_or(per_instance, |r| r.max);
                let active = r.map_or(0, |r| r.used).max(open);
                (SlotState::Decommissioned, max, max.saturating_sub(active), active)
            }
            (InstanceState::Terminating | InstanceState::Lost, _) => continue,
        };
        out.push(SlotInstance { id: i.id.clone(), state, max, free, active, started_ms: i.started_ms.unwrap_or(0) });
    }
    out.extend(overlay_view(inst, sc, gw, service));
    out
}

/// The guest's overlays as the scaler sees them. They count as the youngest instances: an
/// overlay is the cheapest capacity to give back, so scale-in drains it first.
fn overlay_view(inst: &Instances, sc: &ScalerState, gw: &GatewayState, guest: &str) -> Vec<SlotInstance> {
    let mut out = Vec::new();
    for (host, ov) in sc.overlays.get(guest).into_iter().flatten() {
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
        let Some(rep) = inst.reports.get(host) else { continue };
        let gw_host = gw.sessions_of(host);
        let open = gw.port_sessions_of(host, ov.port);
        let (used, cfg_free) = rep.configs.get(guest).map_or((open, 0), |c| (c.used.max(open), c.free));
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

/// May instance `host` carry sessions of service `guest` (see the module docs)?
pub(crate) fn overlay_allowed(reg: &Registry, inst: &Instances, guest: &str, host: &str) -> bool {
    let carrier = inst.records.get(host).and_then(|i| reg.services.get(&i.service));
    match (carrier, reg.services.get(guest)) {
        (Some(t), Some(s)) => t.serviceid != s.serviceid && t.may_carry(s),
        _ => false,
    }
}

/// Running instances of other services that may carry `guest`'s sessions, whose component
/// supports overlays, and that have free resource slots and no configuration of `guest`
/// yet: (id, admin API, free).
fn overlay_hosts(
    reg: &Registry,
    inst: &Instances,
    sc: &ScalerState,
    gw: &GatewayState,
    guest: &str,
) -> Vec<(String, AdminApi, u32)> {
    let Some(guest_rec) = reg.services.get(guest) else { return Vec::new() };
    let mut out: Vec<(String, AdminApi, u32)> = inst
        .records
        .values()
        .filter(|i| i.service != guest && i.state == InstanceState::Running)
        .filter(|i| {
            reg.services.get(&i.service).is_some_and(|t: &ServiceRecord| {
                t.may_carry(guest_rec) && t.service.component(&i.component).is_some_and(|c| c.supports_overlay)
            })
        })
        .filter(|i| !sc.overlays.get(guest).is_some_and(|o| o.contains_key(&i.id)))
        .filter_map(|i| {
            let rep = inst.reports.get(&i.id)?;
            let admin = AdminApi::of(i)?;
            let free = rep.free.min(rep.max.saturating_sub(rep.used.max(gw.sessions_of(&i.id))));
            (free > 0).then(|| (i.id.clone(), admin, free))
        })
        .collect();
    out.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    out
}

/// Configurations of another registered, deployed service on a running instance of which
/// the scaler has no record (an earlier zone manager added them before it stopped): taken
/// back as overlays, so that they are used, counted, drained and removed like any other. A
/// configuration counts only when it is named after that service and listens on a port that
/// is none of the instance's own.
fn adopt_overlays(reg: &Registry, inst: &Instances, sc: &mut ScalerState) {
    for (host, rep) in &inst.reports {
        let Some(rec) = inst.records.get(host).filter(|i| i.state == InstanceState::Running) else { continue };
        for (guest, cfg) in &rep.configs {
            let own_port = rec.ports.iter().any(|p| p.public == cfg.port);
            let deployed = reg.services.get(guest).is_some_and(|s| s.is_deployed());
            let known = sc.overlays.get(guest).is_some_and(|o| o.contains_key(host));
            if *guest == rec.service || own_port || cfg.port == 0 || !deployed || known {
                continue;
            }
            let per = reg
                .services
                .get(guest)
                .and_then(|s| s.service.entry_component())
                .map_or(1, |c| c.slots.per_instance.max(1));
            tracing::info!(
                service = guest,
                host,
                port = cfg.port,
                "configuration on a running instance taken back as an overlay"
            );
            sc.overlays
                .entry(guest.clone())
                .or_default()
                .insert(host.clone(), Overlay { port: cfg.port, cap: cfg.max.unwrap_or(per), draining: false });
        }
    }
}

impl ZoneCore {
    /// Adds a configuration of `guest` capped at `cap` sessions to host instance `host`
    /// (through its admin API, in the background); the gateway uses it once it is there.
    fn add_overlay(&self, guest: &str, host: &str, admin: AdminApi, cap: u32) {
        self.scaler_state()
            .overlays
            .entry(guest.to_string())
            .or_default()
            .insert(host.to_string(), Overlay { port: 0, cap, draining: false });
        let Some(me) = self.me.upgrade() else { return };
        let (guest, host) = (guest.to_string(), host.to_string());
        tokio::spawn(async move {
            let body = serde_json::json!({"name": guest, "port": 0, "max": cap});
            let result = me.adaptor.add_config(admin.clone(), body).await;
            let orphan = {
                let mut sc = me.scaler_state();
                match result {
                    Ok(v) => {
                        let port =
                            v.get("port").and_then(|p| p.as_u64()).and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
                        match sc.overlays.get_mut(&guest).and_then(|o| o.get_mut(&host)) {
                            Some(ov) => {
                                ov.port = port;
                                tracing::info!(
                                    service = guest,
                                    host,
                                    port,
                                    cap,
                                    "virtual scale-out: configuration added to a running instance"
                                );
                                false
                            }
                            // Given up meanwhile (unwanted, or no longer allowed).
                            None => true,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(service = guest, host, "cannot add a configuration: {e}");
                        if let Some(o) = sc.overlays.get_mut(&guest) {
                            o.remove(&host);
                        }
                        false
                    }
                }
            };
            // No configuration is left behind on the instance for an overlay given up.
            if orphan {
                if let Err(e) = me.adaptor.remove_config(admin, &guest).await {
                    tracing::warn!(service = guest, host, "cannot remove a configuration: {e}");
                }
            }
            me.bump();
            me.kick();
        });
    }

    /// Removes the overlay of `guest` on `host` (its sessions have ended, or it is unwanted).
    fn remove_overlay(&self, guest: &str, host: &str) {
        let admin = {
            let inst = self.instances_state();
            let mut sc = self.scaler_state();
            if let Some(o) = sc.overlays.get_mut(guest) {
                o.remove(host);
            }
            inst.records.get(host).and_then(AdminApi::of)
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

    /// Takes back the configurations an earlier zone manager overlaid on instances that still
    /// run (see the module docs); drops overlays whose guest is no longer deployed or whose
    /// host is gone; drains overlays that are no longer allowed and removes them once their
    /// last session has ended.
    pub(crate) fn prune_overlays(&self) {
        let (stale, revoked) = {
            let reg = self.registry();
            let inst = self.instances_state();
            let mut sc = self.scaler_state();
            let gw = self.gateway_state();
            adopt_overlays(&reg, &inst, &mut sc);
            let mut stale = Vec::new();
            let mut revoked = Vec::new();
            for (g, hosts) in sc.overlays.iter_mut() {
                for (h, ov) in hosts.iter_mut() {
                    let guest_up = reg.services.get(g).is_some_and(|s| s.is_deployed());
                    let host_up = inst.records.get(h).is_some_and(|i| i.state == InstanceState::Running);
                    if !(guest_up && host_up) {
                        stale.push((g.clone(), h.clone()));
                    } else if !overlay_allowed(&reg, &inst, g, h) {
                        let used = inst.reports.get(h).and_then(|r| r.configs.get(g)).map_or(0, |c| c.used);
                        let open = if ov.port == 0 { 0 } else { gw.port_sessions_of(h, ov.port) };
                        if used.max(open) == 0 {
                            stale.push((g.clone(), h.clone()));
                        } else if !ov.draining {
                            ov.draining = true;
                            revoked.push((g.clone(), h.clone(), used.max(open)));
                        }
                    }
                }
            }
            (stale, revoked)
        };
        for (g, h, sessions) in revoked {
            tracing::warn!(
                service = g,
                host = h,
                sessions,
                "the instance may no longer carry this service's sessions (another provider's, not shared): draining the configuration"
            );
            self.bump();
        }
        for (g, h) in stale {
            self.remove_overlay(&g, &h);
        }
    }

    /// The slot scaler for the entry component of every deployed service: asks
    /// `zonal_control::slots::scale` and turns its answer into desired counts and instance
    /// states, which the reconciler then carries out. Returns true if it acted.
    ///
    /// It acts only on a converged group (as many live instances as desired) whose instances
    /// report slots: while instances start or stop, or for programs that report nothing,
    /// the counts the domain asked for stand.
    pub(crate) fn scale_services(&self, now: u64) -> bool {
        let cfg = self.settings.slots;
        let mut plans: Vec<(String, String, u32, Vec<ScaleAction>)> = Vec::new();
        {
            let reg = self.registry();
            let inst = self.instances_state();
            let moves = self.moves_state();
            let sc = self.scaler_state();
            let gw = self.gateway_state();
            for rec in reg.services.values().filter(|s| s.is_deployed()) {
                let Some(c) = rec.service.entry_component() else { continue };
                if matches!(c.run, RunSpec::None) || crate::moves::group_moving(&moves, &rec.serviceid, &c.name) {
                    continue;
                }
                let view = scaler_view(&inst, &sc, &gw, &rec.serviceid, &c.name, c.slots.per_instance);
                let own: Vec<&SlotInstance> = view
                    .iter()
                    .filter(|i| inst.records.get(&i.id).is_some_and(|r| r.service == rec.serviceid))
                    .collect();
                if !own.iter().any(|i| i.state != SlotState::Provisioning) {
                    continue;
                }
                let live = own.iter().filter(|i| i.state != SlotState::Decommissioned).count() as u32;
                let desired = rec.desired.get(&c.name).copied().unwrap_or(0);
                // Nothing wanted here: the domain drains the service from this zone (bringing
                // it back is the domain's decision, not the scaler's).
                if live != desired || desired == 0 {
                    continue;
                }
                let planned = rec.planned.get(&c.name).copied().unwrap_or(0);
                let policy = ScalerPolicy {
                    min_free: c.slots.min_free,
                    per_instance: c.slots.per_instance,
                    min_instances: c.scaling.min_instances.max(planned),
                    max_instances: c.scaling.max_instances,
                    hysteresis: cfg.hysteresis,
                    cooldown_out_ms: cfg.cooldown_out.as_millis() as u64,
                    cooldown_in_ms: cfg.cooldown_in.as_millis() as u64,
                };
                let memory = sc.memory.get(&rec.serviceid).copied().unwrap_or_default();
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
            let (reuse, per, min_instances, desired_now) = {
                let reg = self.registry();
                let rec = reg.services.get(&service);
                let comp = rec.and_then(|r| r.service.component(&component));
                (
                    rec.is_some_and(|r| r.service.reuse_existing),
                    comp.map_or(1, |c| c.slots.per_instance),
                    comp.map_or(1, |c| c.scaling.min_instances)
                        .max(rec.and_then(|r| r.planned.get(&component).copied()).unwrap_or(0)),
                    rec.and_then(|r| r.desired.get(&component).copied()).unwrap_or(0),
                )
            };
            let overlaid: BTreeSet<String> =
                self.scaler_state().overlays.get(&service).map(|o| o.keys().cloned().collect()).unwrap_or_default();
            for a in actions {
                match a {
                    ScaleAction::Start(mut n) => {
                        // Virtual elastic scaling first: a configuration on a running instance
                        // with free resource slots is cheaper than a new instance.
                        if reuse {
                            let hosts = {
                                let reg = self.registry();
                                let inst = self.instances_state();
                                let sc = self.scaler_state();
                                let gw = self.gateway_state();
                                overlay_hosts(&reg, &inst, &sc, &gw, &service)
                            };
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
                        if let Some(ov) = self.scaler_state().overlays.get_mut(&service).and_then(|o| o.get_mut(&id)) {
                            ov.draining = true;
                        }
                        inn = true;
                    }
                    ScaleAction::Recommission(id) if overlaid.contains(&id) => {
                        let allowed = {
                            let reg = self.registry();
                            let inst = self.instances_state();
                            overlay_allowed(&reg, &inst, &service, &id)
                        };
                        if allowed {
                            if let Some(ov) =
                                self.scaler_state().overlays.get_mut(&service).and_then(|o| o.get_mut(&id))
                            {
                                ov.draining = false;
                            }
                            out = true;
                        }
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
                    // the gateway shows a session (see `instances::usage`).
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
                    tracing::warn!(service, "cannot record the scaler's instance count: {e}");
                }
            }
            let mut sc = self.scaler_state();
            let m = sc.memory.entry(service).or_default();
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
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use zonal_model::Resources;
    use zonal_proto::env::PortMapping;
    use zonal_proto::wire::{ConfigSlots, InstanceSlots};

    use super::*;
    use crate::core::testing::zone;
    use crate::gateway::Route;
    use crate::instances::InstanceRecord;

    /// bell-labs' pool: its instances take other services' configurations.
    const POOL: &str = "kind: Service\nname: pool\ncomponents:\n  - name: pool\n    run: zonal workload\n    supports_overlay: true\n    slots: {per_instance: 6}\n    ports:\n      - {name: tcp, protocol: tcp}\n";
    /// acme's shop, which allows reuse (the default).
    const SHOP: &str = "kind: Service\nname: shop\ncomponents:\n  - name: shop\n    run: zonal workload\n    slots: {per_instance: 2, min_free: 1}\n    ports:\n      - {name: tcp, protocol: tcp}\n";
    const HOST: &str = "pool-pool-aaaaaa";
    /// The pool instance's own port, and the port of a configuration overlaid on it.
    const OWN_PORT: u16 = 7000;
    const OVERLAY_PORT: u16 = 7001;

    /// A zone with pool (bell-labs) and shop (`shop_owner`) deployed and one running pool
    /// instance reporting 6 free slots, `configs` among them. No process is started.
    fn zone_with_pool(dir: &std::path::Path, shop_owner: Option<&str>, configs: &[(&str, u16, u32)]) -> Arc<ZoneCore> {
        let z = zone(dir);
        z.register_service_of("pool", POOL, Some("bell-labs")).expect("pool");
        z.register_service_of("shop", SHOP, shop_owner).expect("shop");
        for s in ["pool", "shop"] {
            z.set_service_state(s, "deploy").expect("deploy");
        }
        let port = |name: &str, public| PortMapping { name: name.into(), protocol: "tcp".into(), private: 0, public };
        let rec = InstanceRecord {
            id: HOST.into(),
            service: "pool".into(),
            component: "pool".into(),
            host: "h0".into(),
            token: "t".into(),
            admin_token: String::new(),
            pid: None,
            start_time: 0,
            ports: vec![port("tcp", OWN_PORT), port("admin", 7009)],
            workdir: dir.join(HOST),
            log: dir.join(HOST).join("instance.log"),
            state: InstanceState::Running,
            restarts: 0,
            started_ms: Some(0),
            restart_at_ms: None,
            last_exit: None,
            resources: Resources::new(),
        };
        let used: u32 = configs.iter().map(|c| c.2).sum();
        let report = InstanceSlots {
            max: 6,
            free: 6 - used,
            used,
            configs: configs
                .iter()
                .map(|(name, port, used)| {
                    (name.to_string(), ConfigSlots { port: *port, max: Some(2), used: *used, free: 2 - used })
                })
                .collect(),
        };
        let mut inst = z.instances_state();
        inst.records.insert(HOST.into(), rec);
        inst.reports.insert(HOST.into(), report);
        drop(inst);
        z
    }

    fn hosts_for_shop(z: &ZoneCore) -> Vec<String> {
        let (reg, inst, sc, gw) = (z.registry(), z.instances_state(), z.scaler_state(), z.gateway_state());
        overlay_hosts(&reg, &inst, &sc, &gw, "shop").into_iter().map(|(id, _, _)| id).collect()
    }

    fn set_share(z: &ZoneCore, share: &[&str]) {
        if let Some(pool) = z.registry().services.get_mut("pool") {
            pool.service.share = share.iter().map(|s| s.to_string()).collect();
        }
    }

    /// Where the gateway sends a new session of the shop (none: nowhere).
    fn shop_session(z: &ZoneCore) -> Option<(String, u16)> {
        let key = ("shop".to_string(), "shop".to_string(), "tcp".to_string());
        match z.gateway_route(&key, &[])? {
            Route::Local(p) => {
                z.gateway_release(&key.0, &p.instance, p.addr.port());
                Some((p.instance, p.addr.port()))
            }
            Route::Remote(_) => None,
        }
    }

    #[test]
    fn an_instance_carries_another_services_sessions_only_within_a_provider_or_when_shared() {
        let dir = tempfile::tempdir().expect("dir");
        // acme's shop, bell-labs' pool: not offered, whatever room the pool has.
        let z = zone_with_pool(dir.path(), Some("acme"), &[]);
        assert!(hosts_for_shop(&z).is_empty());
        set_share(&z, &["globex"]);
        assert!(hosts_for_shop(&z).is_empty(), "shared with someone else only");
        set_share(&z, &["acme"]);
        assert_eq!(hosts_for_shop(&z), [HOST], "bell-labs shares the pool with acme");
        // One provider's own services.
        let dir = tempfile::tempdir().expect("dir");
        let z = zone_with_pool(dir.path(), Some("bell-labs"), &[]);
        assert_eq!(hosts_for_shop(&z), [HOST]);
        // A service whose owner the zone does not know (registered by an older domain).
        let dir = tempfile::tempdir().expect("dir");
        let z = zone_with_pool(dir.path(), None, &[]);
        assert!(hosts_for_shop(&z).is_empty());
        set_share(&z, &["acme"]);
        assert!(hosts_for_shop(&z).is_empty(), "an unknown owner is nobody's");
    }

    #[tokio::test]
    async fn the_gateway_never_sends_a_session_to_an_overlay_that_is_not_allowed() {
        let dir = tempfile::tempdir().expect("dir");
        let z = zone_with_pool(dir.path(), Some("acme"), &[("shop", OVERLAY_PORT, 0)]);
        let overlay = Overlay { port: OVERLAY_PORT, cap: 2, draining: false };
        z.scaler_state().overlays.entry("shop".into()).or_default().insert(HOST.into(), overlay);
        assert_eq!(shop_session(&z), None, "acme's session is not sent to bell-labs' instance");
        set_share(&z, &["acme"]);
        assert_eq!(shop_session(&z), Some((HOST.to_string(), OVERLAY_PORT)), "shared: the overlay serves");
    }

    #[tokio::test]
    async fn an_overlay_no_longer_allowed_drains_and_goes_and_left_over_configurations_are_taken_back() {
        let dir = tempfile::tempdir().expect("dir");
        // After a zone manager restart: the pool instance (adopted) still serves one session
        // of a shop configuration the earlier manager added; a configuration on the
        // instance's own port is the instance's own, not an overlay.
        let z = zone_with_pool(dir.path(), Some("acme"), &[("shop", OVERLAY_PORT, 1)]);
        set_share(&z, &["acme"]);
        z.prune_overlays();
        let ov = z.scaler_state().overlays.get("shop").and_then(|o| o.get(HOST)).copied();
        assert_eq!(ov, Some(Overlay { port: OVERLAY_PORT, cap: 2, draining: false }), "taken back, allowed");

        // The pool no longer shares: no new session goes there, the open one runs on.
        set_share(&z, &[]);
        z.prune_overlays();
        let ov = z.scaler_state().overlays.get("shop").and_then(|o| o.get(HOST)).copied();
        assert_eq!(ov.map(|o| o.draining), Some(true), "drained while a session is open");
        assert_eq!(shop_session(&z), None);
        // Recommissioning (the scaler wanting capacity back) does not revive it.
        assert!(!overlay_allowed(&z.registry(), &z.instances_state(), "shop", HOST));

        // Its last session ends: removed.
        if let Some(r) = z.instances_state().reports.get_mut(HOST) {
            r.configs.insert("shop".into(), ConfigSlots { port: OVERLAY_PORT, max: Some(2), used: 0, free: 2 });
        }
        z.prune_overlays();
        assert!(z.scaler_state().overlays.get("shop").is_none_or(|o| o.is_empty()), "removed once idle");

        // Without sessions, an overlay not allowed goes at once; a configuration on the
        // instance's own port is never taken for an overlay.
        let dir = tempfile::tempdir().expect("dir");
        let z = zone_with_pool(dir.path(), Some("acme"), &[("shop", OWN_PORT, 0)]);
        set_share(&z, &["acme"]);
        z.prune_overlays();
        assert!(z.scaler_state().overlays.is_empty(), "the instance's own configuration");
        let dir = tempfile::tempdir().expect("dir");
        let z = zone_with_pool(dir.path(), Some("acme"), &[("shop", OVERLAY_PORT, 0)]);
        z.prune_overlays();
        assert!(z.scaler_state().overlays.get("shop").is_none_or(|o| o.is_empty()), "not allowed, idle: removed");
    }
}
