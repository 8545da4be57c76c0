//! The run-time decision pipeline: one service, placed (or placed again) on the live state,
//! as a checked plan and the difference against what runs.
//!
//! The domain calls [`decide`] for every apply, demand change, lost or returning zone and
//! consolidation round; `zonal apply --dry-run` and `zonal plan --context` call it on the
//! domain's snapshot and print the result without storing anything; `zonal plan` places a
//! whole bundle through the same stages ([`crate::auto::plan_bundle`]); the simulator will
//! call it on its world. Pure: data in, decision out (the clock is read only to measure the
//! time spent).
//!
//! ```text
//! LiveState ─▶ problem ─▶ profiles ─▶ offers ─▶ route ─▶ solve ─▶ check ─▶ gate ─▶ diff ─▶ Decision
//!             (residual)  (OPERA tag  (FUSION   (which    (LP, ILP,  (independent (switching
//!                          → profile)  evaluator method)   heuristic, checker)    cost vs gain)
//!                                      scores)             greedy)
//! ```
//!
//! 1. **Problem** ([`live::LiveState::bundle_for`]): the infrastructure with the capacity and
//!    bandwidth the *other* services leave, the service, its regional demand.
//! 2. **Profiles** ([`stages::profiles`]): tagged components get the hardware profile the
//!    knowledge base and the efficiency model rank best among the hosts they may use (its
//!    resources when they declare none, its architecture and accelerator as required
//!    features); the choice travels to the zones as an override.
//! 3. **Offers** ([`stages::offers`]): for a service with an evaluator, only the hosts its
//!    zones offered may take it, and each host's score becomes its preference in the
//!    objective (FUSION §2.7.4 as a stage, not a separate path).
//! 4. **Route** ([`Route`]), by what the description calls for:
//!
//!    | the service | method |
//!    |---|---|
//!    | has a user-side component | **chain**: INPUT's ILP or the heuristic (by size), one subscription per demanded slot and region, or one |
//!    | regional demand | **fusion**: the two-step utility LP, rounded into instances, composite whole per zone, then hosts; a composite no zone can hold whole is **split** instead |
//!    | composite, no regional demand | **copies**: each copy of the composite by the chain ILP minimising instance cost (channel delay as tie-break): collocated in the cheapest zone that fits, split across zones with its channels routed and their bandwidth reserved only when it must or when that is cheaper |
//!    | one component, no regional demand | **single**: the fast path, cheapest host first, then best fit |
//!
//!    A solver that returns no plan in its time budget (not a proof of infeasibility) hands
//!    over to the **greedy** last resort ([`fallback`]): the whole composite in the zone with
//!    the most free capacity; the decision says so.
//! 5. **Check** ([`crate::check`]): the plan against the service's problem; a plan that fails
//!    is never deployed.
//! 6. **Gate** (re-placements only, [`gate`]): the running target and the new plan are both
//!    evaluated on today's problem; a new plan whose gain is below its moves' cost is not
//!    applied, and the decision says why.
//! 7. **Diff** ([`diff`]): instances to start and stop per zone and host, moves, channel
//!    paths added and released.

pub mod diff;
pub mod fallback;
pub mod gate;
pub mod live;
pub mod methods;
pub mod stages;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use zonal_model::{Allocation, ComponentOverride, Service};

use crate::auto::{ChainSolver, SolverChoice};
use crate::chain::ChainOptions;
use crate::check::CheckReport;
use crate::error::{ConstraintFamily, InfeasibilityReason, PlaceError};
use crate::fusion::FusionOptions;
use crate::heuristic::HeuristicOptions;
use crate::plan::Plan;
use crate::problem::{Problem, ProblemOptions};

pub use diff::Diff;
pub use gate::{Evaluation, SwitchingCosts};
pub use live::{LiveInstance, LiveService, LiveState, OfferTerms, OfferedHost};

/// What made the domain decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// A service was applied (registered and deployed, or its slots set).
    Apply,
    /// Its demand changed beyond the threshold (declared or measured).
    Demand,
    /// Zones of its target missed their heartbeats for too long.
    ZoneLost { zones: Vec<String> },
    /// Zones registered or came back.
    ZoneAdded { zones: Vec<String> },
    /// A consolidation round.
    Consolidation,
}

impl Trigger {
    /// Re-placements go through the gate; an apply or a lost zone must act.
    pub fn is_optional(&self) -> bool {
        matches!(self, Trigger::Demand | Trigger::ZoneAdded { .. } | Trigger::Consolidation)
    }

    pub fn describe(&self) -> String {
        match self {
            Trigger::Apply => "apply".into(),
            Trigger::Demand => "demand changed".into(),
            Trigger::ZoneLost { zones } => format!("zone(s) lost: {}", zones.join(", ")),
            Trigger::ZoneAdded { zones } => format!("zone(s) added: {}", zones.join(", ")),
            Trigger::Consolidation => "consolidation".into(),
        }
    }
}

/// The method that placed a service (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Chain,
    Fusion,
    Split,
    Copies,
    Single,
    /// The last resort: no solver returned a plan in its time budget.
    Greedy,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Chain => "chain",
            Route::Fusion => "fusion",
            Route::Split => "split",
            Route::Copies => "copies",
            Route::Single => "single",
            Route::Greedy => "greedy",
        }
    }
}

/// How the pipeline solves.
#[derive(Debug, Clone, PartialEq)]
pub struct DecideOptions {
    pub fusion: FusionOptions,
    pub chain: ChainOptions,
    pub chain_solver: ChainSolver,
    pub heuristic: HeuristicOptions,
    pub switching: SwitchingCosts,
    /// How single-component services are put on hosts among equally priced ones: packed
    /// (best fit, the default: fewer hosts on, as consolidation wants) or spread (most room
    /// left), like Nomad's `binpack` and `spread` schedulers.
    pub scoring: crate::single::Scoring,
}

impl Default for DecideOptions {
    fn default() -> Self {
        let solver =
            crate::solver::SolverOptions { time_limit: Some(std::time::Duration::from_secs(10)), ..Default::default() };
        DecideOptions {
            fusion: FusionOptions { solver: solver.clone(), ..Default::default() },
            chain: ChainOptions { solver: solver.clone(), ..Default::default() },
            chain_solver: ChainSolver::Auto,
            heuristic: HeuristicOptions { solver, ..Default::default() },
            switching: SwitchingCosts::default(),
            scoring: crate::single::Scoring::BestFit,
        }
    }
}

impl DecideOptions {
    /// The whole-bundle planner's options with the same settings.
    pub fn auto(&self, at: Option<zonal_model::TimeOfDay>) -> crate::auto::AutoOptions {
        crate::auto::AutoOptions {
            problem: ProblemOptions { at },
            fusion: self.fusion.clone(),
            chain: self.chain.clone(),
            chain_solver: self.chain_solver,
            heuristic: self.heuristic.clone(),
            only: None,
        }
    }
}

/// What the pipeline decided for one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub service: String,
    pub trigger: Trigger,
    pub route: Route,
    /// Why that method (and solver).
    pub reason: String,
    /// The chain solver chosen per service, when chains were solved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub solvers: Vec<SolverChoice>,
    /// The checked plan.
    pub plan: Plan,
    pub check: CheckReport,
    /// What to deploy (the running target when the gate kept it).
    pub target: Allocation,
    /// `target` against what runs.
    pub diff: Diff,
    /// The running target evaluated on today's problem (none before the first placement, or
    /// when it cannot be evaluated, e.g. it uses a zone that is gone).
    pub before: Option<Evaluation>,
    /// The new plan evaluated the same way.
    pub after: Evaluation,
    /// `after − before` in the evaluation's units (higher is better), when both exist.
    pub gain: Option<f64>,
    /// What the moves cost, in the same units.
    pub move_cost: f64,
    /// True when the new plan is to be deployed; false when the gate kept what runs.
    pub apply: bool,
    /// The regional demand decided for (slots per region; empty without regional demand).
    #[serde(default)]
    pub demand: BTreeMap<String, u32>,
    /// One line for the service's events.
    pub summary: String,
    pub notes: Vec<String>,
    /// Wall-clock time of the whole decision.
    pub seconds: f64,
}

/// Why a service cannot be placed on the live state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error("no service {0:?} is registered")]
    UnknownService(String),
    #[error("cannot place service {service}: {error}")]
    Place { service: String, error: PlaceError },
}

impl Refused {
    /// The infeasibility reasons (which constraint, which component, zone or link).
    pub fn reasons(&self) -> &[InfeasibilityReason] {
        match self {
            Refused::Place { error, .. } => error.reasons(),
            Refused::UnknownService(_) => &[],
        }
    }
}

/// The components a service deploys, and how many instances of each it wants at least
/// (its minimum, the entry's share of `slots`); user-side components, components that run
/// nothing, and an evaluator component (which runs only during offer rounds) want none.
pub fn wanted_instances(service: &Service, slots: u32) -> BTreeMap<String, u32> {
    let entry = service.entry_component().map(|c| c.name.clone());
    let evaluator = stages::evaluator_component(service);
    service
        .components
        .iter()
        .map(|c| {
            let deploys = !c.user_side && Some(&c.name) != evaluator.as_ref();
            let mut n = if deploys { c.scaling.min_instances } else { 0 };
            if deploys && Some(&c.name) == entry.as_ref() {
                n = n.max(1);
                if slots > 0 {
                    n = n.max(slots.div_ceil(c.slots.per_instance.max(1)));
                }
            }
            (c.name.clone(), n)
        })
        .collect()
}

/// Decides where `service` runs on `state` (see the module docs).
pub fn decide(state: &LiveState, service: &str, trigger: Trigger, opts: &DecideOptions) -> Result<Decision, Refused> {
    let started = Instant::now();
    let live = state.service(service).ok_or_else(|| Refused::UnknownService(service.to_string()))?;
    let refuse = |error: PlaceError| Refused::Place { service: service.to_string(), error };
    let entries = state.regional_demand(live);
    let mut notes: Vec<String> = Vec::new();

    let (problem, overrides, stage_notes) = problem_for(state, live, &entries).map_err(refuse)?;
    notes.extend(stage_notes);

    // Optional re-placements of chains keep the chains that run (OCM never migrates them).
    let keep = live.running.as_ref().filter(|r| trigger.is_optional() && r.instances() > 0);
    let solved = methods::solve_service(&problem, service, live.slots, keep, opts);
    let mut solved = match solved {
        Ok(s) => s,
        Err(PlaceError::Solver { detail }) => {
            let mut s = fallback::greedy(&problem, service, live.slots).map_err(|e| {
                refuse(PlaceError::Solver { detail: format!("{detail}; the greedy last resort failed too: {e}") })
            })?;
            s.reason = format!("no solver returned a feasible plan within its time budget ({detail}): {}", s.reason);
            s
        }
        Err(e) => return Err(refuse(e)),
    };
    notes.append(&mut solved.notes);
    let check = crate::check::check(&problem, &solved.plan);
    if !check.is_ok() {
        return Err(refuse(PlaceError::Solver {
            detail: format!("the {} plan failed the independent checker: {}", solved.route.as_str(), check.summary()),
        }));
    }
    let mut target = diff::allocation(&problem, &solved.plan, &overrides);
    if let Some(base) = &solved.base {
        target = diff::sum(base, &target);
    }
    target.normalize();
    let after = gate::evaluate(&problem, service, &target, opts).unwrap_or_else(|e| {
        notes.push(format!("the new target could not be evaluated: {e}"));
        Evaluation::default()
    });
    let running = live.running.clone().unwrap_or_default();
    let before = live
        .running
        .as_ref()
        .filter(|r| r.instances() > 0)
        .and_then(|r| gate::evaluate_running(state, &problem, service, r, opts).ok());
    let changes = diff::diff(&running, &target);
    let move_cost = opts.switching.cost_of(&changes, after.unit);
    let gain = before.as_ref().map(|b| after.value - b.value);
    let unchanged = changes.is_empty();
    let (apply, summary) = gate::verdict(&trigger, &solved, &changes, before.as_ref(), &after, move_cost, unchanged);
    let (target, changes) = if apply { (target, changes) } else { (running.clone(), diff::diff(&running, &running)) };
    Ok(Decision {
        service: service.to_string(),
        trigger,
        route: solved.route,
        reason: solved.reason,
        solvers: solved.solvers,
        plan: solved.plan,
        check,
        target,
        diff: changes,
        before,
        after,
        gain,
        move_cost,
        apply,
        demand: entries.iter().map(|e| (e.region.clone(), state.slots_of(e))).collect(),
        summary,
        notes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The problem `live` is decided on, after the stages that shape it (see the module docs):
/// its deployable components, the profiles of tagged components (the overrides the zones
/// need), the offers' restrictions and preferences. Returns notes saying what the stages did.
pub fn problem_for(
    state: &LiveState,
    live: &LiveService,
    entries: &[zonal_model::DemandEntry],
) -> Result<(Problem, Overrides, Vec<String>), PlaceError> {
    let options = ProblemOptions { at: state.at };
    let mut notes = Vec::new();
    let deployable = stages::deployable(&live.service);
    let tagged = deployable.components.iter().any(|c| c.tag.is_some());
    let (shaped, overrides) = if tagged {
        // Profiles are ranked among the hosts the component may use: that needs the problem.
        let base = Problem::from_bundle(&state.bundle_for(&deployable, entries), &options)?;
        let (shaped, overrides, profile_notes) = stages::profiles(state, &deployable, &base);
        notes.extend(profile_notes);
        (shaped, overrides)
    } else {
        (deployable, Overrides::new())
    };
    let mut bundle = state.bundle_for(&shaped, entries);
    let preference = match &live.offers {
        Some(offers) => {
            let (pref, offer_notes) = stages::offers(&mut bundle, &live.service.name, offers)?;
            notes.extend(offer_notes);
            Some(pref)
        }
        None => None,
    };
    let mut problem = Problem::from_bundle(&bundle, &options)?;
    if let Some(pref) = &preference {
        stages::set_preference(&mut problem, &live.service.name, pref);
    }
    Ok((problem, overrides, notes))
}

/// A plan and how it was obtained, before checking.
#[derive(Debug, Clone)]
pub struct Solved {
    pub route: Route,
    pub reason: String,
    pub plan: Plan,
    pub solvers: Vec<SolverChoice>,
    pub notes: Vec<String>,
    /// The running target the plan comes on top of (online chain placement), if any.
    pub base: Option<Allocation>,
}

/// An infeasibility naming the service and what is short.
pub(crate) fn shortfall(service: &str, component: &str, detail: String) -> PlaceError {
    PlaceError::Infeasible {
        reasons: vec![InfeasibilityReason {
            family: ConstraintFamily::Capacity,
            subject: vec![service.to_string(), component.to_string()],
            detail,
        }],
    }
}

/// Overrides are per component; kept sorted.
pub type Overrides = BTreeMap<String, ComponentOverride>;
