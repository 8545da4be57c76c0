//! Consolidation of running instances (INPUT §IV.3, OPERA §4.2.3): within each zone, pack
//! the instances onto fewer hosts / less power with `zonal-pack`, as an ordered migration
//! plan that the independent checker confirms never overloads a host mid-way, and carry it
//! out step by step through the zones' moves (`POST /1.0/instances/{i}/move`: replacement
//! first, then the old instance stops), so a host is never asked to hold more than a checked
//! intermediate state.
//!
//! **What may move.** Instances that are running and whose component asks for nothing the
//! packer does not model: no pinned host, no anti-affinity, no required host features unless
//! every host of the zone has them. Everything else stays where it is (and still counts
//! against its host). Each instance's demand is its component's resources; its migration
//! cost is its memory (OPERA §6). Hosts draw `idle + (max − idle) × CPU utilisation` from
//! the infrastructure's power models; hosts left empty are listed for suspension.
//!
//! **When.** On request (`POST /1.0/consolidation`, `zonal consolidate`) and, with `zonal
//! domain --consolidate plan|apply`, on INPUT's triggers (periodic, a change in services or
//! instances, a host below a utilisation threshold; with hysteresis and a cool-down:
//! `zonal_pack::decide`). The last run, with each step's progress, is kept in the store
//! (`GET /1.0/consolidation`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zonal_model::Service;
use zonal_pack::{
    check_plan, consolidate, ConsHost, ConsInstance, ConsolidationOptions, ConsolidationProblem, MigrationBudget,
    MigrationCost, Utilisation,
};
use zonal_proto::wire::{HostInfo, InstanceView};
use zonal_proto::{now_ms, Principal, Role};
use zonal_store::StoreExt;

use crate::core::{DomainCore, T_META};
use crate::error::DomainError;
use crate::services::ServiceState;
use crate::zones::{ZoneRecord, T_ZONES};

/// What to consolidate and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ConsolidationRequest {
    /// Carry the plan out (else only plan).
    pub apply: bool,
    /// Only these zones (default: every available zone).
    #[schemars(inner(length(min = 1, max = 63), regex(pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")))]
    pub zones: Vec<String>,
    /// At most this many moves per zone.
    pub max_moves: Option<usize>,
    /// Migration cost in watts per move and per GiB moved (default 1 and 1).
    #[schemars(range(min = 0.0))]
    pub per_move_watts: Option<f64>,
    #[schemars(range(min = 0.0))]
    pub per_gib_watts: Option<f64>,
    /// Time for the packer per zone (default 2 s).
    #[schemars(range(min = 1, max = 60_000))]
    pub time_limit_ms: Option<u64>,
}

/// Where a step of a plan stands. Stored and shown as the lower-case word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Planned,
    /// Its zone is moving the instance.
    Moving,
    Done,
    Failed,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Planned => "planned",
            StepState::Moving => "moving",
            StepState::Done => "done",
            StepState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for StepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a consolidation run stands. Stored and shown as the lower-case word.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Planned only (or being planned).
    #[default]
    Planned,
    /// Its steps are being carried out.
    Applying,
    Done,
    /// A step failed (or the domain stopped while applying).
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Planned => "planned",
            RunState::Applying => "applying",
            RunState::Done => "done",
            RunState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a zone's plan, and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    pub instance: String,
    pub service: String,
    pub component: String,
    pub from: String,
    pub to: String,
    /// A stop on the way that breaks a cycle of moves.
    pub temporary: bool,
    pub state: StepState,
    /// The instance that replaced it on `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One zone's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneConsolidation {
    pub zone: String,
    pub hosts_on_before: usize,
    pub hosts_on_after: usize,
    pub watts_before: f64,
    pub watts_after: f64,
    pub bytes_moved: u64,
    /// Which candidate won (`current`, `drain`, `repack+drain`).
    pub algorithm: String,
    pub steps: Vec<StepView>,
    /// Hosts empty after the plan: to suspend.
    pub hosts_to_suspend: Vec<String>,
    /// Instances that may not move, with why.
    pub kept: BTreeMap<String, String>,
    /// The independent checker replayed every step within capacity.
    pub checked: bool,
}

/// One consolidation run over the domain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsolidationRun {
    pub at_ms: u64,
    /// `requested`, or the triggers that fired.
    pub reasons: Vec<String>,
    pub apply: bool,
    pub state: RunState,
    pub zones: Vec<ZoneConsolidation>,
    /// Zones that could not be planned, with why.
    pub errors: BTreeMap<String, String>,
}

/// A zone's consolidation problem, with the instance ids in problem order.
pub struct ZoneProblem {
    pub problem: ConsolidationProblem,
    pub instances: Vec<InstanceView>,
    pub kept: BTreeMap<String, String>,
}

const DIMENSIONS: [&str; 3] =
    [zonal_model::resources::CPU, zonal_model::resources::MEMORY, zonal_model::resources::GPU];

/// Why an instance must stay where it is, if it must.
fn must_stay(i: &InstanceView, service: Option<&Service>, hosts: &[HostInfo]) -> Option<String> {
    if i.state != zonal_control::reconcile::InstanceState::Running {
        return Some(format!("it is {}", i.state.as_str()));
    }
    let Some(c) = service.and_then(|s| s.component(&i.component)) else {
        return Some("its service is not known to the domain".into());
    };
    let p = &c.placement;
    if p.pin.as_ref().is_some_and(|pin| pin.host.is_some()) {
        return Some("its component is pinned to a host".into());
    }
    if !p.anti_affinity.is_empty() {
        return Some("its component has anti-affinity rules".into());
    }
    let everywhere = hosts
        .iter()
        .all(|h| p.requires.iter().all(|(k, v)| h.features.get(k).is_some_and(|have| v == "*" || have == v)));
    if !everywhere {
        return Some("its component requires host features not every host has".into());
    }
    None
}

/// Builds the zone's problem (pure): hosts from the registration, instances as the zone
/// reports them, demands from the services' components.
pub fn zone_problem(
    hosts: &[HostInfo],
    zone_available: bool,
    instances: &[InstanceView],
    services: &BTreeMap<String, Service>,
    req: &ConsolidationRequest,
) -> Result<ZoneProblem, String> {
    let index: BTreeMap<&str, usize> = hosts.iter().enumerate().map(|(k, h)| (h.name.as_str(), k)).collect();
    let dims: Vec<String> = DIMENSIONS.iter().map(|d| d.to_string()).collect();
    let cons_hosts = hosts
        .iter()
        .map(|h| ConsHost {
            name: h.name.clone(),
            capacity: DIMENSIONS.iter().map(|d| h.capacity.get(d)).collect(),
            idle_watts: h.power.idle.watts(),
            max_watts: h.power.max.watts(),
            available: h.available && zone_available,
            target: None,
        })
        .collect();
    let mut kept = BTreeMap::new();
    let mut cons_instances = Vec::new();
    let mut views = Vec::new();
    for i in instances.iter().filter(|i| i.state != zonal_control::reconcile::InstanceState::Lost) {
        let Some(&host) = index.get(i.host.as_str()) else {
            return Err(format!("instance {} runs on host {}, which the zone did not register", i.id, i.host));
        };
        let service = services.get(&i.service);
        let component = service.and_then(|s| s.component(&i.component));
        let resources = component.map(|c| c.resources.clone()).unwrap_or_default();
        let why = must_stay(i, service, hosts);
        if let Some(w) = &why {
            kept.insert(i.id.clone(), w.clone());
        }
        cons_instances.push(ConsInstance {
            name: i.id.clone(),
            demand: DIMENSIONS.iter().map(|d| resources.get(d)).collect(),
            host,
            memory_bytes: resources.get(zonal_model::resources::MEMORY),
            pinned: why.is_some(),
        });
        views.push(i.clone());
    }
    let defaults = MigrationCost::default();
    let problem = ConsolidationProblem {
        dims,
        hosts: cons_hosts,
        instances: cons_instances,
        budget: MigrationBudget { max_moves: req.max_moves, max_bytes: None },
        cost: MigrationCost {
            per_move: req.per_move_watts.unwrap_or(defaults.per_move),
            per_gib: req.per_gib_watts.unwrap_or(defaults.per_gib),
        },
        target: None,
        utilisation: Utilisation::Dimension(0),
    };
    Ok(ZoneProblem { problem, instances: views, kept })
}

/// Plans one zone (pure but for the packer's time limit): the ordered steps, checked.
pub fn plan_zone(zone: &str, zp: &ZoneProblem, req: &ConsolidationRequest) -> Result<ZoneConsolidation, String> {
    let opts = ConsolidationOptions {
        time_limit: Duration::from_millis(req.time_limit_ms.unwrap_or(2_000)),
        seed: 1,
        repack: true,
    };
    let plan = consolidate(&zp.problem, &opts).map_err(|e| format!("{e:?}"))?;
    let checked = check_plan(&zp.problem, &plan);
    if let Err(violations) = &checked {
        return Err(format!("the migration plan failed its check: {violations:?}"));
    }
    let host = |k: usize| zp.problem.hosts.get(k).map_or_else(|| format!("#{k}"), |h| h.name.clone());
    let steps = plan
        .order
        .steps
        .iter()
        .map(|st| {
            let i = &zp.instances[st.instance];
            StepView {
                instance: i.id.clone(),
                service: i.service.clone(),
                component: i.component.clone(),
                from: host(st.from),
                to: host(st.to),
                temporary: st.temporary,
                state: StepState::Planned,
                replacement: None,
                error: None,
            }
        })
        .collect();
    Ok(ZoneConsolidation {
        zone: zone.to_string(),
        hosts_on_before: plan.hosts_on_before,
        hosts_on_after: plan.hosts_on_after,
        watts_before: plan.energy_before,
        watts_after: plan.energy_after,
        bytes_moved: plan.bytes_moved,
        algorithm: plan.algorithm.clone(),
        steps,
        hosts_to_suspend: plan.hosts_emptied.iter().map(|&k| host(k)).collect(),
        kept: zp.kept.clone(),
        checked: checked.is_ok(),
    })
}

impl ConsolidationRequest {
    /// Checks the request; the error names the field.
    pub fn check(&self) -> Result<(), DomainError> {
        for (name, v) in [("per_move_watts", self.per_move_watts), ("per_gib_watts", self.per_gib_watts)] {
            if v.is_some_and(|w| !(w.is_finite() && w >= 0.0)) {
                return Err(DomainError::Invalid(format!("{name}: expected a non-negative number of watts")));
            }
        }
        if self.time_limit_ms.is_some_and(|t| t == 0 || t > 60_000) {
            return Err(DomainError::Invalid("time_limit_ms: expected 1 to 60000 milliseconds".into()));
        }
        Ok(())
    }
}

impl ConsolidationRun {
    pub fn new(reasons: Vec<String>, apply: bool) -> Self {
        ConsolidationRun { at_ms: now_ms(), reasons, apply, state: RunState::Planned, ..Default::default() }
    }
}

/// The key of the last run in the meta table.
const LAST_RUN: &str = "consolidation";
/// How long one step may take: the zone's move timeout and drain limit, and some slack.
const STEP_LIMIT: Duration = Duration::from_secs(100);

/// When the domain consolidates by itself (`zonal domain --consolidate …`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsolidationPolicy {
    /// `off`, `plan` (compute and keep the plan) or `apply` (also carry it out).
    pub mode: AutoMode,
    pub triggers: zonal_pack::TriggerConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoMode {
    #[default]
    Off,
    Plan,
    Apply,
}

/// Where a zone's move stands (the zone's words; `GET /1.0/instances/{i}/move`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MoveState {
    Starting,
    Draining,
    Done,
    Failed,
    /// A word this domain does not know (a newer zone): still under way.
    #[serde(other)]
    Other,
}

/// A zone's reply to a move request, as far as the domain needs it.
#[derive(Debug, Deserialize)]
struct MoveReply {
    state: MoveState,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl DomainCore {
    /// The last consolidation run, if any.
    pub fn last_consolidation(&self) -> Result<Option<ConsolidationRun>, DomainError> {
        Ok(self.store.get::<ConsolidationRun>(T_META, LAST_RUN)?)
    }

    /// The last consolidation run as `caller` may see it (`GET /1.0/consolidation`): an admin
    /// all of it; a zone its own zone's plan; a provider every zone's figures, but only the
    /// steps and kept instances of its own services (instance ids name their service).
    pub fn consolidation_for(&self, caller: &Principal) -> Result<Option<ConsolidationRun>, DomainError> {
        let Some(mut run) = self.last_consolidation()? else { return Ok(None) };
        match caller.role {
            Role::Admin | Role::Domain => {}
            Role::Zone => {
                run.zones.retain(|z| z.zone == caller.name);
                run.errors.retain(|zone, _| *zone == caller.name);
            }
            Role::Provider | Role::Instance => {
                let mine: BTreeSet<String> = self.visible_services(caller)?.into_iter().map(|s| s.serviceid).collect();
                // Which service each instance belongs to, from the zones' heartbeats; an
                // instance no zone reports any more is not shown.
                let service_of: BTreeMap<String, String> = self
                    .zone_reports()
                    .iter()
                    .flat_map(|(_, r)| r.placements.iter().map(|p| (p.id.clone(), p.service.clone())))
                    .collect();
                for z in &mut run.zones {
                    z.steps.retain(|st| mine.contains(&st.service));
                    z.kept.retain(|id, _| service_of.get(id).is_some_and(|s| mine.contains(s)));
                }
            }
        }
        Ok(Some(run))
    }

    /// After a restart: a run that was being applied stopped with the domain.
    pub fn recover_consolidation(&self) {
        if let Ok(Some(mut run)) = self.last_consolidation() {
            if run.state == RunState::Applying {
                run.state = RunState::Failed;
                run.errors
                    .insert("domain".into(), "the domain stopped while applying; the steps marked done stay".into());
                for s in run.zones.iter_mut().flat_map(|z| z.steps.iter_mut()).filter(|s| s.state == StepState::Moving)
                {
                    s.state = StepState::Failed;
                    s.error = Some("interrupted".into());
                }
                self.save_consolidation(&run);
            }
        }
    }

    fn save_consolidation(&self, run: &ConsolidationRun) {
        if let Err(e) = self.store.put(T_META, LAST_RUN, run) {
            tracing::error!("cannot record the consolidation run: {e}");
        }
    }

    /// Plans a consolidation of every (requested) zone and keeps it as the last run; the
    /// caller starts [`DomainCore::apply_consolidation`] when `req.apply`.
    pub async fn plan_consolidation(
        &self,
        req: &ConsolidationRequest,
        reasons: Vec<String>,
    ) -> Result<ConsolidationRun, DomainError> {
        req.check()?;
        if self.last_consolidation()?.is_some_and(|r| r.state == RunState::Applying) {
            return Err(DomainError::Conflict("a consolidation is being applied; wait until it is done".into()));
        }
        let zones = self.store.list::<ZoneRecord>(T_ZONES, "")?;
        for z in &req.zones {
            if !zones.iter().any(|(n, _)| n == z) {
                return Err(DomainError::Invalid(format!("zones: no zone {z:?} is registered")));
            }
        }
        let services: BTreeMap<String, Service> =
            self.service_records()?.into_iter().map(|(id, s)| (id, s.service)).collect();
        let mut run = ConsolidationRun::new(reasons, req.apply);
        for (name, rec) in zones {
            if !req.zones.is_empty() && !req.zones.contains(&name) {
                continue;
            }
            if !self.zone_available(&name) {
                run.errors.insert(name, "unavailable (missed its heartbeats)".into());
                continue;
            }
            let instances = match self.zone_client(&name) {
                Ok(c) => c.get::<Vec<InstanceView>>("/1.0/instances").await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let planned = instances.and_then(|inst| {
                let zp = zone_problem(&rec.registration.hosts, true, &inst, &services, req)?;
                plan_zone(&name, &zp, req)
            });
            match planned {
                Ok(z) => run.zones.push(z),
                Err(e) => {
                    run.errors.insert(name, e);
                }
            }
        }
        run.state = match (req.apply, run.zones.iter().any(|z| !z.steps.is_empty())) {
            (true, true) => RunState::Applying,
            // Nothing to move: applying it is done at once.
            (true, false) => RunState::Done,
            (false, _) => RunState::Planned,
        };
        self.save_consolidation(&run);
        Ok(run)
    }

    /// Carries out the last run's steps in order, zone after zone; a failed step ends its
    /// zone's plan (the steps after it assumed it). Progress is recorded after every step.
    pub async fn apply_consolidation(self: Arc<Self>) {
        let Ok(Some(mut run)) = self.last_consolidation() else { return };
        let mut failed = false;
        for zi in 0..run.zones.len() {
            let zone = run.zones[zi].zone.clone();
            let client = match self.zone_client_within(&zone, Duration::from_secs(10)) {
                Ok(c) => c,
                Err(e) => {
                    run.errors.insert(zone, e.to_string());
                    failed = true;
                    continue;
                }
            };
            // Instance ids change as they move: an instance's replacement carries on.
            let mut current: BTreeMap<String, String> = BTreeMap::new();
            for si in 0..run.zones[zi].steps.len() {
                let step = run.zones[zi].steps[si].clone();
                let id = current.get(&step.instance).cloned().unwrap_or_else(|| step.instance.clone());
                run.zones[zi].steps[si].state = StepState::Moving;
                self.save_consolidation(&run);
                let outcome = self.move_and_wait(&client, &id, &step.to).await;
                let s = &mut run.zones[zi].steps[si];
                match outcome {
                    Ok(replacement) => {
                        s.state = StepState::Done;
                        s.replacement = Some(replacement.clone());
                        current.insert(step.instance.clone(), replacement);
                        self.record_move(&zone, &step);
                    }
                    Err(e) => {
                        tracing::warn!(zone, instance = id, to = step.to, "consolidation step failed: {e}");
                        s.state = StepState::Failed;
                        s.error = Some(e);
                        failed = true;
                        break;
                    }
                }
                self.save_consolidation(&run);
            }
        }
        run.state = if failed { RunState::Failed } else { RunState::Done };
        self.save_consolidation(&run);
        tracing::info!(state = run.state.as_str(), "consolidation applied");
    }

    /// A consolidation move changes where the service's target says its instance runs: the
    /// planned host is moved too (so later decisions diff against what runs), and the
    /// service's events say so.
    fn record_move(&self, zone: &str, step: &StepView) {
        let _ = self.update_service_quietly(&step.service, |r| {
            if let Some(hosts) =
                r.placement.as_mut().and_then(|p| p.hosts.get_mut(zone)).and_then(|c| c.get_mut(&step.component))
            {
                if let Some(n) = hosts.get_mut(&step.from) {
                    *n = n.saturating_sub(1);
                }
                hosts.retain(|_, n| *n > 0);
                *hosts.entry(step.to.clone()).or_default() += 1;
            }
            crate::decisions::push_event(
                r,
                "consolidated",
                format!(
                    "{} moved from host {} to {} in zone {zone} (consolidation)",
                    step.component, step.from, step.to
                ),
            );
        });
    }

    async fn move_and_wait(&self, client: &zonal_proto::Client, id: &str, to: &str) -> Result<String, String> {
        let body = serde_json::json!({"host": to});
        client
            .post::<_, serde_json::Value>(&format!("/1.0/instances/{id}/move"), &body)
            .await
            .map_err(|e| e.to_string())?;
        let stop = tokio::time::Instant::now() + STEP_LIMIT;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match client.get::<MoveReply>(&format!("/1.0/instances/{id}/move")).await {
                Ok(m) if m.state == MoveState::Done => {
                    return m.replacement.ok_or_else(|| format!("the zone finished moving {id} without a replacement"))
                }
                Ok(m) if m.state == MoveState::Failed => {
                    return Err(m.error.unwrap_or_else(|| "the move failed".into()))
                }
                // Starting, draining (or a newer word): still under way.
                Ok(_) => {}
                Err(e) if tokio::time::Instant::now() >= stop => return Err(e.to_string()),
                Err(_) => {}
            }
            if tokio::time::Instant::now() >= stop {
                return Err(format!("moving {id} to {to} took longer than {} s", STEP_LIMIT.as_secs()));
            }
        }
    }

    /// What the triggers look at: deployed services, instances and each busy host's CPU
    /// utilisation, from the zones' heartbeats.
    fn consolidation_observation(&self, now_s: u64) -> zonal_pack::Observation {
        let services = self
            .service_records()
            .map(|v| v.iter().filter(|(_, s)| s.state == ServiceState::Deployed).count())
            .unwrap_or(0);
        let zones = self.store.list::<ZoneRecord>(T_ZONES, "").unwrap_or_default();
        let mut instances = 0usize;
        let mut host_utilisation = BTreeMap::new();
        for (name, rec) in zones {
            let Some(report) = self.zone_report(&name) else { continue };
            instances += report.instances as usize;
            for h in &report.hosts {
                let cap = rec
                    .registration
                    .hosts
                    .iter()
                    .find(|r| r.name == h.name)
                    .map_or(0, |r| r.capacity.get(zonal_model::resources::CPU));
                let free = h.free.get(zonal_model::resources::CPU);
                if cap > 0 && free < cap {
                    host_utilisation.insert(format!("{name}/{}", h.name), (cap - free) as f64 / cap as f64);
                }
            }
        }
        zonal_pack::Observation { now: now_s, services, instances, host_utilisation }
    }
}

/// The domain's own consolidation loop: observes every few seconds, asks the triggers, and
/// plans (and applies) when one fires. Runs until `stop` turns true.
pub async fn run_triggers(
    core: Arc<DomainCore>,
    policy: ConsolidationPolicy,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if policy.mode == AutoMode::Off {
        return;
    }
    let started = tokio::time::Instant::now();
    let mut state = zonal_pack::TriggerState::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
        let obs = core.consolidation_observation(started.elapsed().as_secs());
        let (decision, next) = zonal_pack::decide(&policy.triggers, &state, &obs);
        state = next;
        let zonal_pack::Decision::Run(reasons) = decision else { continue };
        let reasons: Vec<String> = reasons.iter().map(|r| format!("{r:?}")).collect();
        let req = ConsolidationRequest { apply: policy.mode == AutoMode::Apply, ..Default::default() };
        match core.plan_consolidation(&req, reasons.clone()).await {
            Ok(run) => {
                tracing::info!(
                    ?reasons,
                    zones = run.zones.len(),
                    state = run.state.as_str(),
                    "consolidation triggered"
                );
                if run.state == RunState::Applying {
                    core.clone().apply_consolidation().await;
                }
            }
            Err(e) => tracing::warn!("triggered consolidation not planned: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonal_control::reconcile::InstanceState;
    use zonal_model::{Amount, Resources};

    fn host(name: &str, ssd: bool) -> HostInfo {
        HostInfo {
            name: name.into(),
            capacity: Resources::new().with("cpu", Amount::cpu(8000)).with("memory", Amount::bytes(32 << 30)),
            features: if ssd { [("disk".to_string(), "ssd".to_string())].into() } else { BTreeMap::new() },
            available: true,
            power: zonal_model::PowerModel {
                idle: zonal_model::Power::from_watts(100.0),
                max: zonal_model::Power::from_watts(250.0),
            },
        }
    }

    fn instance(id: &str, service: &str, host: &str, state: InstanceState) -> InstanceView {
        serde_json::from_value(serde_json::json!({
            "id": id, "service": service, "component": "app", "zone": "z", "host": host, "state": state,
            "pid": null, "ports": [], "slots": null, "restarts": 0, "started_ms": null, "adopted": false,
            "workdir": "", "log": ""
        }))
        .expect("an instance view")
    }

    fn service(extra: &str) -> Service {
        let text = format!("kind: Service\nname: s\ncomponents:\n  - name: app\n    run: zonal workload\n    resources: {{cpu: 2, memory: 1Gi}}\n{extra}");
        zonal_descriptor::parse_manifest("s.yaml", &text).expect("a service")
    }

    #[test]
    fn spread_instances_are_packed_and_constrained_ones_stay() {
        let hosts = [host("h0", true), host("h1", true), host("h2", false)];
        let services: BTreeMap<String, Service> = [
            ("free".to_string(), service("")),
            ("ssd".to_string(), service("    placement: {requires: {disk: ssd}}\n")),
        ]
        .into();
        let instances = [
            instance("f0", "free", "h0", InstanceState::Running),
            instance("f1", "free", "h1", InstanceState::Running),
            instance("s0", "ssd", "h1", InstanceState::Running),
            instance("p", "free", "h2", InstanceState::Provisioning),
        ];
        let req = ConsolidationRequest::default();
        let zp = zone_problem(&hosts, true, &instances, &services, &req).expect("a problem");
        assert_eq!(zp.problem.instances[0].demand, vec![2000, 1 << 30, 0]);
        assert!(zp.kept["s0"].contains("features"), "{:?}", zp.kept);
        assert!(zp.kept["p"].contains("provisioning"), "{:?}", zp.kept);
        assert!(!zp.kept.contains_key("f0") && !zp.kept.contains_key("f1"));
        let plan = plan_zone("z", &zp, &req).expect("a plan");
        assert!(plan.checked);
        // h1 holds the instance that needs an SSD and h2 the provisioning one, so both stay
        // on; moving f0 to either empties h0.
        assert_eq!(plan.hosts_on_after, 2, "{plan:?}");
        assert!(plan.watts_after < plan.watts_before);
        assert_eq!(plan.hosts_to_suspend, ["h0"]);
        assert_eq!(plan.steps.len(), 1);
        assert_eq!(plan.steps[0].instance, "f0");
    }

    #[test]
    fn an_instance_on_an_unknown_host_is_an_error_and_bad_costs_are_refused() {
        let e = zone_problem(
            &[host("h0", false)],
            true,
            &[instance("x", "s", "nowhere", InstanceState::Running)],
            &BTreeMap::new(),
            &ConsolidationRequest::default(),
        );
        assert!(e.err().is_some_and(|m| m.contains("nowhere")));
        let bad = ConsolidationRequest { per_move_watts: Some(-1.0), ..Default::default() };
        assert!(bad.check().err().is_some_and(|e| e.detail().contains("per_move_watts")));
    }

    /// A run exactly as the domain stored it while its states were strings still loads, and
    /// is written back with the same words.
    #[test]
    fn a_run_written_before_the_states_were_enums_still_loads() {
        let text = include_str!("../testdata/consolidation_run_before_enums.json");
        let run: ConsolidationRun = serde_json::from_str(text).expect("the old run loads");
        assert_eq!(run.state, RunState::Applying);
        let steps: Vec<StepState> = run.zones[0].steps.iter().map(|s| s.state).collect();
        assert_eq!(steps, [StepState::Done, StepState::Moving, StepState::Planned]);
        let old: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!(serde_json::to_value(&run).expect("json"), old);
    }

    #[test]
    fn a_zones_move_states_are_read_and_unknown_ones_mean_under_way() {
        let reply = |state: &str| serde_json::from_value::<MoveReply>(serde_json::json!({"state": state}));
        assert_eq!(reply("done").expect("done").state, MoveState::Done);
        assert_eq!(reply("failed").expect("failed").state, MoveState::Failed);
        assert_eq!(reply("draining").expect("draining").state, MoveState::Draining);
        assert_eq!(reply("starting").expect("starting").state, MoveState::Starting);
        assert_eq!(reply("paused").expect("a newer word").state, MoveState::Other);
    }

    #[test]
    fn a_provider_reads_of_a_consolidation_only_its_own_instances_and_a_zone_only_its_own_plan() {
        use crate::core::testing::admin;
        use zonal_proto::wire::{InstancePlacement, ZoneReport};
        let core = crate::core::testing::two_providers_in_z1();
        let placed = |id: &str, service: &str| InstancePlacement {
            id: id.into(),
            service: service.into(),
            component: "web".into(),
            host: "h".into(),
            state: InstanceState::Running,
            resources: Resources::new(),
        };
        let report = ZoneReport {
            placements: vec![placed("web-web-1", "web"), placed("bell-app-web-1", "bell-app")],
            ..Default::default()
        };
        core.zone_status(&admin(), "z1", report).expect("heartbeat");
        let step = |instance: &str, service: &str| StepView {
            instance: instance.into(),
            service: service.into(),
            component: "web".into(),
            from: "h".into(),
            to: "h2".into(),
            temporary: false,
            state: StepState::Planned,
            replacement: None,
            error: None,
        };
        let plan = |zone: &str| ZoneConsolidation {
            zone: zone.into(),
            hosts_on_before: 2,
            hosts_on_after: 1,
            watts_before: 300.0,
            watts_after: 200.0,
            bytes_moved: 1,
            algorithm: "drain".into(),
            steps: vec![step("web-web-1", "web"), step("bell-app-web-1", "bell-app")],
            hosts_to_suspend: vec!["h".into()],
            kept: [
                ("web-web-2".to_string(), "pinned".to_string()),
                ("bell-app-web-1".to_string(), "pinned".to_string()),
            ]
            .into(),
            checked: true,
        };
        let run = ConsolidationRun { zones: vec![plan("z1"), plan("z2")], ..Default::default() };
        core.store.put(T_META, LAST_RUN, &run).expect("store the run");
        let acme = Principal { name: "acme".into(), role: Role::Provider };
        let mine = core.consolidation_for(&acme).expect("read").expect("a run");
        assert_eq!(mine.zones.len(), 2, "every zone's figures");
        let text = serde_json::to_string(&mine).expect("json");
        assert!(!text.contains("bell-app"), "nothing of bell-labs': {text}");
        assert_eq!(mine.zones[0].steps.len(), 1);
        assert!(mine.zones[0].kept.is_empty(), "web-web-2 is not reported by any zone: {text}");
        let z1 = Principal { name: "z1".into(), role: Role::Zone };
        let own = core.consolidation_for(&z1).expect("read").expect("a run");
        assert_eq!(own.zones.iter().map(|z| z.zone.as_str()).collect::<Vec<_>>(), ["z1"]);
        assert_eq!(core.consolidation_for(&admin()).expect("read"), Some(run));
    }
}
