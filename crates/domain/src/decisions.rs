//! The domain decides with `zonal-place`: every apply, slot change, demand shift, lost or
//! added zone goes through [`zonal_place::decide`] on the live state ([`crate::snapshot`]),
//! one decision at a time (each sees the capacity the previous one took).
//!
//! * **Apply** (`PUT /1.0/services/{s}/state deploy`, `PUT …/slots`): the decision is made
//!   in the request. A service the optimiser proves infeasible is refused (422, naming the
//!   constraint, component, zone or link) and nothing changes; with `?pending=true` it stays
//!   `pending` with the reason, and is decided again whenever the domain's state changes.
//! * **Dry run** (`POST /1.0/plans`, `zonal apply --dry-run`, `zonal plan --context`): the
//!   same decision on the same state, returned and not stored.
//! * **Re-placement** ([`run_replanner`]): a demand shift (declared or measured, beyond
//!   [`DecisionSettings::demand_threshold`]) or a zone that registered or came back makes a
//!   gated decision (switching cost against gain); a zone gone for longer than
//!   `replace_after` makes an ungated one (the deployment coordinator asks for it).
//!   Optional re-decisions of one service are at least [`DecisionSettings::replan_cooldown`]
//!   apart.
//!
//! A decision that is applied becomes the service's target; the coordinator
//! ([`crate::deploy`]) carries out the difference in a safe order. Every decision — applied,
//! declined by the gate, or refused — is a service event (`GET /1.0/services/{s}/events`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard};
use zonal_control::evaluate::evaluator_of;
use zonal_model::Allocation;
use zonal_place::decide::{decide, DecideOptions, Decision, Refused, Route, Trigger};
use zonal_proto::wire::ServiceView;
use zonal_proto::{now_ms, Principal};

use crate::core::DomainCore;
use crate::error::DomainError;
use crate::metrics::DecisionOutcome;
use crate::offers::{OfferRound, TakenOffer};
use crate::services::{ServiceRecord, ServiceState, Target};

/// Events kept per service.
pub const EVENTS_KEPT: usize = 64;

/// The `decider` lock: one decision at a time, so that each sees the capacity the previous
/// one took. A tokio mutex, held across the awaits of one decision (offer round, solver).
#[derive(Debug, Default)]
pub(crate) struct Decider {
    one: AsyncMutex<()>,
}

/// How the domain decides placement.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionSettings {
    pub options: DecideOptions,
    /// A demand change re-decides when its relative L1 distance to the demand of the last
    /// decision exceeds this, and moves at least one entry instance's slots.
    pub demand_threshold: f64,
    /// Least time between two optional re-decisions of one service.
    pub replan_cooldown: Duration,
    /// How often the re-planner looks at demand and zones.
    pub replan_every: Duration,
    /// How long a zone leaving a service's placement may drain its sessions before its
    /// instances are stopped.
    pub drain_timeout: Duration,
}

impl Default for DecisionSettings {
    fn default() -> Self {
        DecisionSettings {
            options: DecideOptions::default(),
            demand_threshold: 0.25,
            replan_cooldown: Duration::from_secs(15),
            replan_every: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(60),
        }
    }
}

/// Something that happened to a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceEvent {
    pub at_ms: u64,
    /// `placed`, `replaced`, `kept`, `refused`, `pending`, `fallback`, `drained`, …
    pub kind: String,
    pub message: String,
}

/// A decision as stored with its service: the pipeline's [`Decision`] with the plan's long
/// lists cut to [`PLAN_ROWS_KEPT`] rows, and the zones that were up when it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub at_ms: u64,
    pub decision: Decision,
    pub zones_up: Vec<String>,
}

/// Rows of a stored plan's placements, assignments, paths and subscriptions.
pub const PLAN_ROWS_KEPT: usize = 200;

impl DecisionRecord {
    fn new(mut decision: Decision, zones_up: Vec<String>) -> DecisionRecord {
        let p = &mut decision.plan;
        let cut = p.placements.len() > PLAN_ROWS_KEPT
            || p.assignments.len() > PLAN_ROWS_KEPT
            || p.paths.len() > PLAN_ROWS_KEPT
            || p.subscriptions.len() > PLAN_ROWS_KEPT;
        p.placements.truncate(PLAN_ROWS_KEPT);
        p.assignments.truncate(PLAN_ROWS_KEPT);
        p.paths.truncate(PLAN_ROWS_KEPT);
        p.subscriptions.truncate(PLAN_ROWS_KEPT);
        p.stats.solve_log.clear();
        if cut {
            p.notes.push(format!("stored plan cut to {PLAN_ROWS_KEPT} rows per list"));
        }
        DecisionRecord { at_ms: now_ms(), decision, zones_up }
    }
}

/// Why a decision could not be made.
#[derive(Debug, Clone)]
pub enum DecideFailure {
    /// The optimiser proved the service cannot be placed on the live state.
    Refused(Refused),
    /// The domain could not gather what the decision needs (store, offers, a panic).
    Other(String),
}

impl std::fmt::Display for DecideFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecideFailure::Refused(r) => {
                write!(f, "{r}")?;
                for reason in r.reasons() {
                    write!(f, "\n  {reason}")?;
                }
                Ok(())
            }
            DecideFailure::Other(s) => f.write_str(s),
        }
    }
}

impl From<DecideFailure> for DomainError {
    /// Infeasible (with every reason), or the decision could not be made.
    fn from(e: DecideFailure) -> DomainError {
        match e {
            DecideFailure::Refused(r) => DomainError::Unprocessable {
                reasons: r.reasons().iter().map(ToString::to_string).collect(),
                detail: format!(
                    "{r}; nothing was deployed (apply with ?pending=true to keep it pending until it fits)"
                ),
            },
            DecideFailure::Other(s) => DomainError::Unavailable(s),
        }
    }
}

/// What `DomainCore::decide_for` answers.
pub(crate) type Decided = Result<(Decision, Option<OfferRound>), DecideFailure>;

/// `POST /1.0/plans`: what would the domain decide? Nothing is stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// A manifest to decide for as if it were applied (registered or not).
    #[serde(default)]
    pub manifest: Option<String>,
    /// A registered service to decide for again now (when no manifest is given).
    #[serde(default)]
    #[schemars(schema_with = "zonal_proto::openapi::optional_name_schema")]
    pub serviceid: Option<String>,
    /// Session slots wanted domain-wide (default: the registered service's, else none).
    #[serde(default)]
    pub slots: Option<u32>,
}

pub(crate) fn push_event(rec: &mut ServiceRecord, kind: &str, message: impl Into<String>) {
    let message = message.into();
    tracing::info!(service = rec.serviceid, kind, "{message}");
    rec.events.push(ServiceEvent { at_ms: now_ms(), kind: kind.to_string(), message });
    if rec.events.len() > EVENTS_KEPT {
        let drop = rec.events.len() - EVENTS_KEPT;
        rec.events.drain(..drop);
    }
}

/// The larger count of each component in each zone of `a` and `b`, hosts of both.
pub(crate) fn union_max(a: &Allocation, b: &Allocation) -> Allocation {
    let mut out = a.clone();
    for (zone, comps) in &b.zones {
        for (c, n) in comps {
            let e = out.zones.entry(zone.clone()).or_default().entry(c.clone()).or_default();
            *e = (*e).max(*n);
        }
    }
    for (zone, comps) in &b.hosts {
        for (c, hosts) in comps {
            for (h, n) in hosts {
                let e = out
                    .hosts
                    .entry(zone.clone())
                    .or_default()
                    .entry(c.clone())
                    .or_default()
                    .entry(h.clone())
                    .or_default();
                *e = (*e).max(*n);
            }
        }
    }
    out
}

impl DomainCore {
    /// Waits for the `decider` lock (see [`crate::core`]).
    pub(crate) async fn one_decision(&self) -> AsyncMutexGuard<'_, ()> {
        self.decider.one.lock().await
    }

    /// Counts a decision in `/metrics`: its route and outcome, and the time since `started`.
    /// A decision that could not be made (no offers yet, the store failed) is not one.
    pub(crate) fn count_decision(&self, decided: &Decided, started: Instant) {
        let (route, outcome) = match decided {
            Ok((d, _)) if d.route == Route::Greedy => (d.route.as_str(), DecisionOutcome::Fallback),
            Ok((d, _)) if d.apply => (d.route.as_str(), DecisionOutcome::Applied),
            Ok((d, _)) => (d.route.as_str(), DecisionOutcome::Kept),
            Err(DecideFailure::Refused(_)) => ("none", DecisionOutcome::Refused),
            Err(DecideFailure::Other(_)) => return,
        };
        self.metrics.record(route, outcome, started.elapsed().as_secs_f64());
    }

    /// An offer round for `rec` when it names an evaluator (the pipeline's offer stage reads
    /// its offers); `None` for other services.
    async fn offers_for(&self, rec: &ServiceRecord) -> Result<Option<OfferRound>, DecideFailure> {
        if !DomainCore::places_by_offers(rec) {
            return Ok(None);
        }
        let summaries = self.zone_summaries().map_err(|e| DecideFailure::Other(e.to_string()))?;
        let candidates: Vec<_> = summaries.into_iter().filter(|z| !self.zone_lost(&z.name)).collect();
        self.offer_round_for(rec, &candidates).await.map(Some).map_err(|e| DecideFailure::Other(e.to_string()))
    }

    /// Decides for `rec` (standing for the stored record, which it may not be yet) on the
    /// live state; an offer round first when `offers` is set and it names an evaluator.
    pub(crate) async fn decide_for(&self, rec: &ServiceRecord, trigger: Trigger, offers: bool) -> Decided {
        let mut candidate = rec.clone();
        candidate.target = Target::Deployed;
        let round = if offers { self.offers_for(&candidate).await? } else { None };
        if let Some(r) = &round {
            if r.received.is_empty() {
                // Evaluators that are slow to start or zones that are busy are no proof that
                // the service cannot run: a new round is asked for later.
                let why: Vec<String> = r.declined.iter().map(|(z, w)| format!("{z}: {w}")).collect();
                return Err(DecideFailure::Other(format!(
                    "no zone made an offer for service {} yet ({}); asking again",
                    rec.serviceid,
                    if why.is_empty() { "no zone is a candidate".to_string() } else { why.join("; ") }
                )));
            }
            candidate.offers = Some(r.clone());
        }
        let state =
            self.live_state(std::slice::from_ref(&candidate)).map_err(|e| DecideFailure::Other(e.to_string()))?;
        let options = self.decisions.options.clone();
        let id = rec.serviceid.clone();
        let decided = tokio::task::spawn_blocking(move || decide(&state, &id, trigger, &options))
            .await
            .map_err(|e| DecideFailure::Other(format!("the decision stopped: {e}")))?;
        let decision = decided.map_err(DecideFailure::Refused)?;
        Ok((decision, round))
    }

    /// Applies `decision` to the stored record (see the module docs of [`crate::deploy`] for
    /// how a target is carried out).
    pub(crate) fn apply_decision(&self, s: &mut ServiceRecord, decision: Decision, round: Option<OfferRound>) {
        let kind = if s.placement.is_none() {
            "placed"
        } else if decision.apply {
            "replaced"
        } else {
            "kept"
        };
        let kind = if decision.route == zonal_place::decide::Route::Greedy { "fallback" } else { kind };
        push_event(s, kind, decision.summary.clone());
        if decision.apply {
            let old = s.placement.clone().filter(|a| a.instances() > 0);
            let target = decision.target.clone();
            if let Some(old) = old {
                // Keep what served until the new target runs (a transition already under
                // way keeps its own earlier target too).
                let keep = match s.previous.take() {
                    Some(p) => union_max(&p, &old),
                    None => old,
                };
                if keep.zones.iter().any(|(z, comps)| comps.iter().any(|(c, n)| target.count(z, c) < *n)) {
                    s.previous = Some(keep);
                }
            }
            let keep_zones: BTreeSet<String> =
                target.zones.keys().chain(s.previous.iter().flat_map(|p| p.zones.keys())).cloned().collect();
            for z in s.progress.keys().cloned().collect::<Vec<_>>() {
                if !keep_zones.contains(&z) {
                    // It ran the deployment: it drains before it drops the service.
                    s.progress.remove(&z);
                    s.draining.entry(z).or_insert(0);
                }
            }
            for z in &keep_zones {
                s.cleanup.remove(z);
                s.draining.remove(z);
                s.progress.entry(z.clone()).or_default();
            }
            s.placement = Some(target);
            s.state = ServiceState::Deploying;
            s.message = None;
            s.attempt = 0;
            s.demand_basis = decision.demand.clone();
            if let Some(mut r) = round {
                // The offers the decision used, per zone of the target.
                r.taken = r
                    .received
                    .iter()
                    .filter(|o| decision.target.zones.contains_key(&o.zone))
                    .map(|o| TakenOffer {
                        offer: o.id.clone(),
                        zone: o.zone.clone(),
                        slots: entry_slots(&s.service, &decision.target, &o.zone),
                    })
                    .collect();
                r.uncovered = 0;
                for z in DomainCore::asked_but_not_chosen(s, &r, &decision.target) {
                    s.cleanup.insert(z);
                }
                s.offers = Some(r);
            }
        }
        s.decision = Some(DecisionRecord::new(decision, self.zones_up()));
    }

    /// `PUT /1.0/services/{id}/state deploy`: decides now; refused
    /// ([`DomainError::Unprocessable`]) when the optimiser proves it infeasible, unless
    /// `pending`.
    pub async fn deploy_service(
        &self,
        caller: &Principal,
        id: &str,
        pending: bool,
    ) -> Result<ServiceView, DomainError> {
        let _one = self.one_decision().await;
        let rec = self.owned(caller, id)?;
        if rec.target == Target::Deleted {
            return Err(DomainError::Conflict(format!("service {id} is being deleted")));
        }
        if rec.target == Target::Deployed && rec.placement.is_some() {
            // Already placed: deploying again changes nothing (a new slot count does).
            return self.update_service(caller, id, |s| {
                if !matches!(s.state, ServiceState::Deployed | ServiceState::Pending) {
                    s.state = ServiceState::Deploying;
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let decided = self.decide_for(&rec, Trigger::Apply, true).await;
        self.count_decision(&decided, started);
        match decided {
            Ok((decision, round)) => self.update_service(caller, id, |s| {
                s.target = Target::Deployed;
                self.apply_decision(s, decision, round);
                Ok(())
            }),
            Err(DecideFailure::Other(why)) if DomainCore::places_by_offers(&rec) => {
                self.update_service(caller, id, |s| {
                    // No offer yet: the coordinator asks again (with backoff) until one comes.
                    s.target = Target::Deployed;
                    s.state = ServiceState::Placing;
                    s.message = Some(why.clone());
                    push_event(s, "placing", why.clone());
                    Ok(())
                })
            }
            Err(DecideFailure::Refused(r)) if pending => self.update_service(caller, id, |s| {
                s.target = Target::Deployed;
                s.state = ServiceState::Pending;
                s.message = Some(DecideFailure::Refused(r.clone()).to_string());
                push_event(s, "pending", format!("waiting until it fits: {r}"));
                Ok(())
            }),
            Err(e) => {
                if let DecideFailure::Refused(r) = &e {
                    let _ = self.update_service_quietly(id, |s| push_event(s, "refused", r.to_string()));
                }
                Err(e.into())
            }
        }
    }

    /// `PUT /1.0/services/{id}/slots`: the slots wanted domain-wide; a deployed service is
    /// decided again at once (refused when the new demand cannot be placed: nothing changes
    /// then).
    pub async fn set_slots(&self, caller: &Principal, id: &str, slots: u32) -> Result<ServiceView, DomainError> {
        if let Some(p) = zonal_model::limits::at_most(slots, zonal_model::limits::MAX_DEMAND_SLOTS, "session slots") {
            return Err(DomainError::Invalid(format!("slots: {p}")));
        }
        let _one = self.one_decision().await;
        let rec = self.owned(caller, id)?;
        if rec.target != Target::Deployed || rec.placement.is_none() {
            return self.update_service(caller, id, |s| {
                s.demand = slots;
                Ok(())
            });
        }
        let mut candidate = rec.clone();
        candidate.demand = slots;
        let started = Instant::now();
        let decided = self.decide_for(&candidate, Trigger::Apply, true).await;
        self.count_decision(&decided, started);
        let (decision, round) = decided?;
        self.update_service(caller, id, |s| {
            s.demand = slots;
            self.apply_decision(s, decision, round);
            Ok(())
        })
    }

    /// `POST /1.0/plans`: the decision the domain would make, not stored (nor counted).
    pub async fn dry_run(&self, caller: &Principal, req: &PlanRequest) -> Result<Decision, DomainError> {
        if let Some(p) = req
            .slots
            .and_then(|n| zonal_model::limits::at_most(n, zonal_model::limits::MAX_DEMAND_SLOTS, "session slots"))
        {
            return Err(DomainError::Invalid(format!("slots: {p}")));
        }
        let _one = self.one_decision().await;
        let mut rec = match (&req.manifest, &req.serviceid) {
            (Some(manifest), _) => {
                let candidate = self.candidate_record(caller, req.serviceid.as_deref(), manifest)?;
                match self.service_record(&candidate.serviceid) {
                    // The registered service's placement is what the dry run compares with.
                    Ok(existing) if existing.manifest == *manifest => existing,
                    _ => candidate,
                }
            }
            (None, Some(id)) => self.owned(caller, id)?,
            (None, None) => {
                return Err(DomainError::Invalid("POST /1.0/plans: expected a manifest or a serviceid".into()));
            }
        };
        if let Some(slots) = req.slots {
            rec.demand = slots;
        }
        // A component evaluator would be started in the zones for a new round: a dry run
        // uses the service's last round instead.
        let component_evaluator =
            evaluator_of(&rec.service).is_some_and(|(_, e)| matches!(e, zonal_model::EvaluatorRef::Component { .. }));
        let trigger = if rec.placement.is_some() { Trigger::Demand } else { Trigger::Apply };
        let (mut decision, _) = self.decide_for(&rec, trigger, !component_evaluator).await?;
        if component_evaluator && DomainCore::places_by_offers(&rec) {
            decision.notes.push(match &rec.offers {
                Some(_) => "dry run: the offers of the service's last round were used (no evaluator was started)".into(),
                None => "dry run: no offer round was run (that would start the evaluator component in the zones); placed without offers".into(),
            });
        }
        Ok(decision)
    }

    /// The decision of one re-placement, stored (applied or declined). Returns whether the
    /// target changed.
    pub(crate) async fn replan(&self, id: &str, trigger: Trigger) -> bool {
        let _one = self.one_decision().await;
        let Ok(rec) = self.service_record(id) else { return false };
        if rec.target != Target::Deployed || rec.placement.is_none() {
            return false;
        }
        let gen = rec.generation;
        let started = Instant::now();
        let outcome = self.decide_for(&rec, trigger.clone(), true).await;
        self.count_decision(&outcome, started);
        let mut changed = false;
        self.commit(id, gen, |s| {
            match outcome {
                Ok((decision, round)) => {
                    changed = decision.apply && !decision.diff.is_empty();
                    self.apply_decision(s, decision, round);
                }
                Err(e) => {
                    push_event(s, "refused", format!("{}: {e}", trigger.describe()));
                    s.message = Some(format!("cannot place the service again ({}): {e}", trigger.describe()));
                }
            }
            false
        });
        if changed {
            self.kick();
        }
        changed
    }

    /// `GET /1.0/services/{id}/events`.
    pub fn events(&self, caller: &Principal, id: &str) -> Result<Vec<ServiceEvent>, DomainError> {
        Ok(self.visible_service(caller, id)?.events)
    }

    /// `GET /1.0/services/{id}/decision`: the last decision.
    pub fn last_decision(&self, caller: &Principal, id: &str) -> Result<Option<DecisionRecord>, DomainError> {
        Ok(self.visible_service(caller, id)?.decision)
    }

    /// Services whose demand moved or that gained a zone, for the re-planner.
    fn replan_candidates(&self) -> Vec<(String, Trigger)> {
        let Ok(services) = self.service_records() else { return Vec::new() };
        let up: BTreeSet<String> = self.zones_up().into_iter().collect();
        let declared = self.declared_demand().unwrap_or_default();
        let at = crate::snapshot::time_of_day();
        let now = now_ms();
        let cooldown = self.decisions.replan_cooldown.as_millis() as u64;
        let mut out = Vec::new();
        for (id, s) in services {
            if s.target != Target::Deployed || s.placement.is_none() || s.previous.is_some() {
                continue;
            }
            let Some(last) = &s.decision else { continue };
            if now.saturating_sub(last.at_ms) < cooldown {
                continue;
            }
            let known: BTreeSet<String> = last.zones_up.iter().cloned().collect();
            let added: Vec<String> = up.difference(&known).cloned().collect();
            if !added.is_empty() {
                out.push((id, Trigger::ZoneAdded { zones: added }));
                continue;
            }
            let demand: BTreeMap<String, u32> =
                self.demand_now(&s, &declared, at).iter().map(|e| (e.region.clone(), e.slots.peak())).collect();
            let per = s.service.entry_component().map_or(1, |c| c.slots.per_instance.max(1));
            if zonal_control::demand::shifted(&s.demand_basis, &demand, self.decisions.demand_threshold, per) {
                out.push((id, Trigger::Demand));
            }
        }
        out
    }
}

/// Session slots of `service`'s entry instances in `zone` of target `a`.
fn entry_slots(service: &zonal_model::Service, a: &Allocation, zone: &str) -> u32 {
    service.entry_component().map_or(0, |c| a.count(zone, &c.name).saturating_mul(c.slots.per_instance))
}

/// The re-planner: every `replan_every`, the services whose demand shifted or that gained a
/// zone are decided again (gated). Runs until `stop` turns true.
pub async fn run_replanner(core: Arc<DomainCore>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(core.decisions.replan_every) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        for (id, trigger) in core.replan_candidates() {
            core.replan(&id, trigger).await;
        }
    }
}
