//! Moving an instance to another host of the zone (a consolidation step): make before break.
//!
//! `POST /1.0/instances/{i}/move {host}` records the move (persisted, so a zone manager
//! restart carries on); the control loop then starts a replacement of the same component on
//! that host, and once it runs, stops the old instance — as soon as it holds no session, or
//! after [`DRAIN_LIMIT_MS`]. While the replacement exists the old instance is not counted by the
//! reconciler (the replacement takes its place) and the slot scaler leaves the group alone.
//! A replacement that is not running within [`MOVE_TIMEOUT_MS`] is stopped and the move fails;
//! the old instance stays. Finished moves are kept for [`KEEP_FINISHED_MS`] for `GET`.
//!
//! During a step both instances hold resources: the target must have room for the new one
//! while the source still holds the old one — the condition every step of a checked
//! migration plan meets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zonal_control::place::pick_host;
use zonal_control::reconcile::InstanceState;
use zonal_proto::now_ms;
use zonal_store::{Store, StoreExt};

use crate::core::ZoneCore;
use crate::error::ZoneError;
use crate::instances::usage;

pub(crate) const T_MOVES: &str = "moves";
/// Longest wait for the replacement to run.
pub const MOVE_TIMEOUT_MS: u64 = 60_000;
/// Longest wait, once the replacement runs, for the old instance's sessions to end.
pub const DRAIN_LIMIT_MS: u64 = 30_000;
/// How long a finished move stays visible.
pub const KEEP_FINISHED_MS: u64 = 600_000;

/// Where a move stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveState {
    /// The replacement is being started.
    Starting,
    /// The replacement runs; the old instance finishes its sessions.
    Draining,
    Done,
    Failed,
}

/// One move, by the moving instance's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoveRecord {
    pub instance: String,
    pub service: String,
    pub component: String,
    pub from: String,
    pub to: String,
    pub state: MoveState,
    /// The new instance on `to`, once started.
    pub replacement: Option<String>,
    pub started_ms: u64,
    /// When the replacement was first seen running.
    pub running_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub error: Option<String>,
}

impl MoveRecord {
    fn active(&self) -> bool {
        matches!(self.state, MoveState::Starting | MoveState::Draining)
    }
}

/// The recorded moves (the lock `moves` holds them, after `instances` in the lock order).
pub(crate) fn load(store: &dyn Store) -> Result<BTreeMap<String, MoveRecord>, ZoneError> {
    Ok(store.list::<MoveRecord>(T_MOVES, "")?.into_iter().collect())
}

/// Is instance `id` being replaced (its replacement started, the move not failed)?
pub(crate) fn being_replaced(moves: &BTreeMap<String, MoveRecord>, id: &str) -> bool {
    moves.get(id).is_some_and(|m| m.replacement.is_some() && m.state != MoveState::Failed)
}

/// Is a move of this group under way?
pub(crate) fn group_moving(moves: &BTreeMap<String, MoveRecord>, service: &str, component: &str) -> bool {
    moves.values().any(|m| m.active() && m.service == service && m.component == component)
}

impl ZoneCore {
    /// `POST /1.0/instances/{id}/move`: moves a running instance to `host` (202 with the
    /// move). Refused when the instance is not running or already moving, or `host` is
    /// unknown, unavailable, the same, or has no room for it (features, anti-affinity, fit).
    pub fn move_instance(&self, id: &str, host: &str) -> Result<MoveRecord, ZoneError> {
        // Lock order registry → instances → moves, all held: the room checked is the room
        // recorded, and no second move of the instance slips in.
        let reg = self.registry();
        let inst_state = self.instances_state();
        let mut moves = self.moves_state();
        let inst =
            inst_state.records.get(id).ok_or_else(|| ZoneError::NotFound(format!("no instance {id} in this zone")))?;
        if inst.state != InstanceState::Running {
            return Err(ZoneError::Conflict(format!(
                "instance {id} is {}; only a running instance can move",
                inst.state.as_str()
            )));
        }
        if moves.get(id).is_some_and(MoveRecord::active) {
            return Err(ZoneError::Conflict(format!("instance {id} is already moving")));
        }
        if inst.host == host {
            return Err(ZoneError::Invalid(format!("instance {id} already runs on host {host}")));
        }
        let Some(info) = self.settings.hosts.iter().find(|h| h.name == host) else {
            let known: Vec<&str> = self.settings.hosts.iter().map(|h| h.name.as_str()).collect();
            return Err(ZoneError::Invalid(format!(
                "host: zone {} has no host {host:?}; expected one of {}",
                self.settings.name,
                known.join(", ")
            )));
        };
        if !info.available {
            return Err(ZoneError::Conflict(format!("host {host} is unavailable")));
        }
        let service = reg
            .services
            .get(&inst.service)
            .ok_or_else(|| ZoneError::Conflict(format!("the service of instance {id} is not registered")))?;
        let comp = service.component_for_new_instances(&inst.component).ok_or_else(|| {
            ZoneError::Conflict(format!("service {} has no component {}", inst.service, inst.component))
        })?;
        let mut occupied: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in inst_state.records.values().filter(|i| i.service == inst.service && i.state != InstanceState::Lost) {
            occupied.entry(i.host.clone()).or_default().push(i.component.clone());
        }
        let hosts: Vec<_> = self.hosts_free_in(&inst_state).into_iter().filter(|h| h.name == host).collect();
        if pick_host(&hosts, &comp, &occupied).is_none() {
            return Err(ZoneError::Conflict(format!(
                "host {host} has no room for instance {id} ({}: resources, required features or anti-affinity)",
                comp.resources
            )));
        }
        let m = MoveRecord {
            instance: id.to_string(),
            service: inst.service.clone(),
            component: inst.component.clone(),
            from: inst.host.clone(),
            to: host.to_string(),
            state: MoveState::Starting,
            replacement: None,
            started_ms: now_ms(),
            running_ms: None,
            finished_ms: None,
            error: None,
        };
        self.store.put(T_MOVES, id, &m)?;
        moves.insert(id.to_string(), m.clone());
        drop((moves, inst_state, reg));
        self.kick();
        Ok(m)
    }

    /// `GET /1.0/instances/{id}/move`: the instance's last move.
    pub fn move_of(&self, id: &str) -> Result<MoveRecord, ZoneError> {
        self.moves_state().get(id).cloned().ok_or_else(|| ZoneError::NotFound(format!("instance {id} has no move")))
    }

    /// Every recent move.
    pub fn moves(&self) -> Vec<MoveRecord> {
        self.moves_state().values().cloned().collect()
    }

    fn save_move(&self, m: &MoveRecord) {
        if let Err(e) = self.store.put(T_MOVES, &m.instance, m) {
            tracing::error!(instance = m.instance, "cannot record the move: {e}");
        }
    }

    /// One step of every move (the control loop calls it). Returns true if anything changed.
    pub(crate) fn progress_moves(&self, now: u64) -> bool {
        let moves: Vec<MoveRecord> = self.moves_state().values().cloned().collect();
        let mut changed = false;
        for mut m in moves {
            if !m.active() {
                if m.finished_ms.is_some_and(|f| now.saturating_sub(f) > KEEP_FINISHED_MS) {
                    self.moves_state().remove(&m.instance);
                    let _ = self.store.delete(T_MOVES, &m.instance);
                }
                continue;
            }
            let before = m.clone();
            self.step_move(&mut m, now);
            if m != before {
                changed = true;
                if !m.active() {
                    m.finished_ms = Some(now);
                    match &m.error {
                        Some(e) => tracing::warn!(instance = m.instance, to = m.to, "move failed: {e}"),
                        None => tracing::info!(instance = m.instance, to = m.to, replacement = ?m.replacement, "moved"),
                    }
                }
                self.save_move(&m);
                self.moves_state().insert(m.instance.clone(), m);
            }
        }
        changed
    }

    fn step_move(&self, m: &mut MoveRecord, now: u64) {
        let fail = |m: &mut MoveRecord, why: String| {
            m.state = MoveState::Failed;
            m.error = Some(why);
        };
        let (old_state, old_busy) = {
            let inst = self.instances_state();
            let gw = self.gateway_state();
            let busy =
                gw.sessions_of(&m.instance) > 0 || usage(&inst, &gw, &m.instance).is_some_and(|u| u.free < u.max);
            (inst.records.get(&m.instance).map(|r| r.state), busy)
        };
        let Some(replacement) = m.replacement.clone() else {
            if old_state != Some(InstanceState::Running) {
                return fail(m, format!("instance {} stopped running before its replacement started", m.instance));
            }
            match self.create_instance_on(&m.service, &m.component, Some(&m.to)) {
                Ok(id) => m.replacement = Some(id),
                Err(e) => fail(m, format!("cannot start the replacement on {}: {e}", m.to)),
            }
            return;
        };
        let new_state = self.instances_state().records.get(&replacement).map(|r| r.state);
        match m.state {
            MoveState::Starting if new_state == Some(InstanceState::Running) => {
                m.state = MoveState::Draining;
                m.running_ms = Some(now);
            }
            MoveState::Starting if now.saturating_sub(m.started_ms) > MOVE_TIMEOUT_MS || new_state.is_none() => {
                self.stop_instance(&replacement);
                fail(
                    m,
                    format!(
                        "the replacement {replacement} on {} did not run within {} s",
                        m.to,
                        MOVE_TIMEOUT_MS / 1000
                    ),
                );
            }
            MoveState::Draining => {
                let drained = !old_busy || m.running_ms.is_some_and(|r| now.saturating_sub(r) > DRAIN_LIMIT_MS);
                if drained || old_state.is_none() {
                    self.stop_instance(&m.instance);
                    m.state = MoveState::Done;
                }
            }
            _ => {}
        }
    }
}
