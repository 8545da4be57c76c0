//! The zone's control loop ([`ZoneCore::run`]): it owns every change to instance processes.
//! Each pass turns process events into record updates, polls adopted processes, steps the
//! moves, runs the slot scaler, keeps the gateways in line with the services, asks the pure
//! reconciler (`zonal_control::reconcile`) what to do, and does it through the DC adaptor.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use zonal_control::backoff::{after_crash, Backoff};
use zonal_control::reconcile::{reconcile, Action, InstanceState, Observed};
use zonal_proto::now_ms;
use zonal_store::StoreExt;

use crate::adaptor::ProcessStatus;
use crate::core::ZoneCore;
use crate::instances::usage;
use crate::registry::{Registry, ServiceState};

/// How long an instance that never reports slots stays `provisioning`.
const PROVISIONING_GRACE_MS: u64 = 3_000;

/// What happened to a process, sent to the control loop.
pub(crate) enum Event {
    Exited { id: String, pid: u32, status: String },
    Stopped { id: String },
}

/// An adopted process to check: id, pid, kernel start time, token.
type AdoptedProcess = (String, u32, u64, String);

/// Instances wanted per `(service, component)`: the desired counts of deployed services,
/// and one evaluator instance where an offer request asked for it.
fn desired(reg: &Registry) -> BTreeMap<(String, String), u32> {
    let mut d = BTreeMap::new();
    for s in reg.services.values() {
        let deployed = s.state == ServiceState::Deployed;
        if !deployed && (s.evaluator.is_none() || s.state == ServiceState::Terminating) {
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

impl ZoneCore {
    /// The instances as the reconciler sees them. Lock order: instances → moves → gateway.
    fn observed(&self) -> Vec<Observed> {
        let inst = self.instances_state();
        let moves = self.moves_state();
        let gw = self.gateway_state();
        inst.records
            .values()
            // An instance whose replacement has started is the move's to stop, not the
            // reconciler's to count.
            .filter(|r| !crate::moves::being_replaced(&moves, &r.id))
            .map(|r| Observed {
                id: r.id.clone(),
                service: r.service.clone(),
                component: r.component.clone(),
                state: r.state,
                supervised: inst.supervised.contains(&r.id),
                restart_at: r.restart_at_ms,
                slots: usage(&inst, &gw, &r.id),
            })
            .collect()
    }

    pub(crate) fn handle_event(&self, ev: Event) {
        match ev {
            Event::Exited { id, pid, status } => {
                let mut inst = self.instances_state();
                let Some(mut rec) = inst.records.get(&id).cloned() else { return };
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
                let open = inst.used_with(&self.gateway_state(), &id);
                if open > 0 {
                    tracing::warn!(
                        instance = id,
                        sessions = open,
                        "the instance died with open sessions: they are lost"
                    );
                    let total = inst.lost_sessions.entry(rec.service.clone()).or_default();
                    *total += u64::from(open);
                    // Kept across restarts of the zone manager, like those a restart cuts.
                    let row = crate::gateway::lost_row(&rec.service);
                    if let Err(e) = self.store.put(crate::gateway::T_GATEWAY, &row, total) {
                        tracing::warn!("cannot keep the count of lost sessions: {e}");
                    }
                }
                inst.supervised.remove(&id);
                inst.adopted.remove(&id);
                inst.reports.remove(&id);
                self.persist(&rec);
                inst.records.insert(id, rec);
            }
            Event::Stopped { id } => self.forget(&id),
        }
        self.bump();
    }

    /// The gateway saw instance `id` end a session whose client had not ended it. If the
    /// process is gone or exiting, its exit is handled now, while the gateway still counts
    /// that session, so the sessions it had open are counted lost — not only when the
    /// child's waiter or the next poll of an adopted process gets to it: a zone manager
    /// killed before then would count them neither here (the instance is forgotten as lost
    /// at the next start) nor in the session ledger (the gateway had closed them). An
    /// instance that is alive (it closed the session itself) is left alone at once; a
    /// supervised child's waiter is given 20 ms to report the real exit status first.
    pub(crate) async fn gateway_saw_instance_end(&self, id: &str) {
        let found = {
            let inst = self.instances_state();
            inst.records
                .get(id)
                .and_then(|r| r.pid.map(|p| (p, r.start_time, r.token.clone(), inst.supervised.contains(id))))
        };
        let Some((pid, start, token, supervised)) = found else { return };
        let gone = self.adaptor.status(pid, start, &token) != ProcessStatus::Alive;
        if !gone && !crate::process::exiting(pid) {
            return;
        }
        let handled = || self.instances_state().records.get(id).and_then(|r| r.pid) != Some(pid);
        for _ in 0..if supervised { 10 } else { 0 } {
            if handled() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if !handled() {
            let status = "killed or exited (seen by the gateway as the process ended a session)".to_string();
            self.handle_event(Event::Exited { id: id.to_string(), pid, status });
        }
    }

    /// One reconcile pass. Returns when the loop should look again at the latest.
    fn reconcile_once(&self) -> Option<u64> {
        let now = now_ms();
        // Watch adopted processes and promote instances that never report slots.
        let (adopted, slow): (Vec<AdoptedProcess>, Vec<String>) = {
            let inst = self.instances_state();
            let adopted = inst
                .adopted
                .iter()
                .filter_map(|id| inst.records.get(id))
                .filter_map(|r| r.pid.map(|p| (r.id.clone(), p, r.start_time, r.token.clone())))
                .collect();
            let slow = inst
                .records
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
            // Desired and observed from one moment: the registry stays locked while the
            // instances are read (lock order registry → instances → moves → gateway), so a
            // terminate that lowers a count and stops an instance is seen whole or not at all.
            let reg = self.registry();
            reconcile(&desired(&reg), &self.observed(), now)
        };
        let mut changed = scaled;
        for action in r.actions {
            changed = true;
            match action {
                Action::Start { service, component, count } => {
                    for _ in 0..count {
                        if let Err(e) = self.create_instance(&service, &component) {
                            let mut inst = self.instances_state();
                            if inst.problems.get(&service) != Some(&e) {
                                tracing::warn!(service, component, "cannot start an instance: {e}");
                            }
                            inst.problems.insert(service.clone(), e);
                            break;
                        }
                        self.instances_state().problems.remove(&service);
                    }
                }
                Action::Adopt { id } => {
                    tracing::info!(instance = id, "adopted");
                    let mut inst = self.instances_state();
                    inst.supervised.insert(id.clone());
                    inst.adopted.insert(id);
                }
                Action::Restart { id } => {
                    let rec = self.instances_state().records.get(&id).cloned();
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

    /// The control loop. Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let rx = self.events_rx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut events) = rx else {
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
                _ = self.kicked() => {}
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
        let all: Vec<(String, Option<u32>)> =
            self.instances_state().records.values().map(|r| (r.id.clone(), r.pid)).collect();
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
