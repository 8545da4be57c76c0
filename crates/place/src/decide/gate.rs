//! Re-placement with switching cost: the running target and a new plan are evaluated the same
//! way on today's problem, and a re-placement whose gain does not pay for its moves is not
//! carried out.
//!
//! **Evaluation** ([`evaluate`]), by what the service is about:
//! * regional demand and no user side (FUSION): the sessions are assigned to the target's
//!   entry slots by FUSION's service-selection LP (the same two steps, capacity = the target's
//!   instances × slots per instance); the value is `W·min u + α·Σ w·u − (1 − α)·instance cost
//!   per hour` — FUSION's two steps in one number: the worst region's utility first (weighted by
//!   the regions' total weight `W`, so a unit of it is worth a unit for everyone), then the
//!   Step-2 objective with the target's real instance cost — unit `utility`;
//! * a chain (INPUT): `−Σ` channel path delay × copies, unit `delay_ms`;
//! * otherwise: `−(instance cost per hour + 0.01 × path delay)`, unit `cost`.
//!
//! Terms reported with every evaluation (what `zonal apply --dry-run` prints before and
//! after): `instance_cost` per hour, `delay_ms`, and for FUSION services
//! `mean_user_latency_ms` (demand-weighted), `worst_region_utility`, `total_utility`.
//!
//! **Switching cost** ([`SwitchingCosts`]): the price of moving one instance, in the
//! evaluation's unit. A move is a stop paired with a start of the same component elsewhere
//! ([`super::diff::Diff::moves`]); scaling out or in is not a move. Defaults: 0.02 utility,
//! 2 ms of channel delay, 0.05 per hour of instance cost — small enough that a lost zone or a
//! clear shift of users pays for the moves, large enough that noise in measured demand (or a
//! cent an hour) does not make the domain shuffle instances.
//!
//! **Verdict** ([`verdict`]): an apply and a lost zone always act; a demand change, an added
//! zone or a consolidation round act when nothing moves (the service only grows or shrinks),
//! when the running target cannot be evaluated any more (it no longer fits or no longer
//! covers the demand), or when gain > move cost.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zonal_model::Allocation;

use super::diff::Diff;
use super::live::LiveState;
use super::{DecideOptions, Solved, Trigger};
use crate::auto::{method_of, Method};
use crate::error::PlaceError;
use crate::fusion::{self, Selection};
use crate::problem::Problem;

/// What one moved instance costs, per evaluation unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SwitchingCosts {
    pub utility_per_move: f64,
    pub delay_ms_per_move: f64,
    pub cost_per_move: f64,
}

impl Default for SwitchingCosts {
    fn default() -> Self {
        SwitchingCosts { utility_per_move: 0.02, delay_ms_per_move: 2.0, cost_per_move: 0.05 }
    }
}

impl SwitchingCosts {
    /// The defaults times `factor` (the operator's one knob: `zonal domain --move-cost`).
    pub fn scaled(factor: f64) -> SwitchingCosts {
        let d = SwitchingCosts::default();
        SwitchingCosts {
            utility_per_move: d.utility_per_move * factor,
            delay_ms_per_move: d.delay_ms_per_move * factor,
            cost_per_move: d.cost_per_move * factor,
        }
    }

    /// The cost of `diff`'s moves in `unit`.
    pub fn cost_of(&self, diff: &Diff, unit: Unit) -> f64 {
        let per = match unit {
            Unit::Utility => self.utility_per_move,
            Unit::DelayMs => self.delay_ms_per_move,
            Unit::Cost => self.cost_per_move,
        };
        per * f64::from(diff.moved())
    }
}

/// The unit of an evaluation's value (higher is better in every unit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// FUSION's Step-2 objective.
    Utility,
    /// Minus the channel delay.
    DelayMs,
    /// Minus the instance cost per hour.
    #[default]
    Cost,
}

/// A target evaluated on a problem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub value: f64,
    pub unit: Unit,
    pub terms: BTreeMap<String, f64>,
}

/// Instance cost per hour and summed path delay of `a` for service `si`.
fn cost_and_delay(p: &Problem, si: usize, a: &Allocation) -> (f64, f64) {
    let s = &p.services[si].service;
    let mut cost = 0.0;
    for (zone, comps) in &a.zones {
        let Some(zi) = p.zone_index(zone) else { continue };
        for (comp, n) in comps {
            let resources = a
                .overrides
                .get(comp)
                .and_then(|o| o.resources.clone())
                .or_else(|| s.component(comp).map(|c| c.resources.clone()))
                .unwrap_or_default();
            cost += f64::from(*n) * p.zones[zi].price.hourly(&resources);
        }
    }
    let delay = a.paths.iter().map(|x| x.latency_ms * f64::from(x.copies)).sum();
    (cost, delay)
}

/// Evaluates target `a` of `service` on `p` (see the module docs).
pub fn evaluate(p: &Problem, service: &str, a: &Allocation, opts: &DecideOptions) -> Result<Evaluation, PlaceError> {
    let si =
        p.service_index(service).ok_or_else(|| PlaceError::input("service", format!("unknown service {service:?}")))?;
    let sd = &p.services[si];
    let (cost, delay) = cost_and_delay(p, si, a);
    let mut terms = BTreeMap::new();
    terms.insert("instance_cost".to_string(), cost);
    terms.insert("delay_ms".to_string(), delay);
    let demanded = p.demands.iter().any(|d| d.service == si);
    if method_of(&sd.service) == Method::Chain {
        return Ok(Evaluation { value: -delay, unit: Unit::DelayMs, terms });
    }
    if !demanded {
        return Ok(Evaluation { value: -(cost + super::methods::COPY_DELAY_WEIGHT * delay), unit: Unit::Cost, terms });
    }
    let entry = &sd.service.components[sd.entry].name;
    let spi = f64::from(sd.slots_per_instance);
    let mut selection = Selection::default();
    for (zone, comps) in &a.zones {
        if let Some(n) = comps.get(entry) {
            selection.free_slots.insert((service.to_string(), zone.clone()), f64::from(*n) * spi);
        }
    }
    let opts_f = fusion::FusionOptions { rounding: false, ..opts.fusion.clone() };
    let sel = fusion::select(p, &selection, &opts_f)?;
    let total_u = sel.term("total_utility").unwrap_or(0.0);
    let min_u = sel.term("min_utility").unwrap_or(0.0);
    let demand: f64 = p.demands.iter().filter(|d| d.service == si).map(|d| d.slots).sum();
    let mean_latency =
        if demand > 0.0 { sel.assignments.iter().map(|x| x.slots * x.latency_ms).sum::<f64>() / demand } else { 0.0 };
    terms.insert("total_utility".into(), total_u);
    terms.insert("worst_region_utility".into(), min_u);
    terms.insert("mean_user_latency_ms".into(), mean_latency);
    let alpha = opts.fusion.alpha;
    // FUSION decides max-min fairness first: a unit of the worst region's utility is worth as
    // much as a unit for every region (the regions' total weight), then Step 2's trade-off.
    let weight: f64 = p.demands.iter().filter(|d| d.service == si).map(|d| p.regions[d.region].weight).sum();
    let value = weight.max(1.0) * min_u + alpha * total_u - (1.0 - alpha) * cost;
    Ok(Evaluation { value, unit: Unit::Utility, terms })
}

/// Evaluates the running target; an error when it uses a zone that is down or cannot serve
/// today's demand any more.
pub fn evaluate_running(
    state: &LiveState,
    p: &Problem,
    service: &str,
    running: &Allocation,
    opts: &DecideOptions,
) -> Result<Evaluation, PlaceError> {
    if let Some(z) = running.zones.keys().find(|z| state.unavailable.contains(*z)) {
        return Err(PlaceError::input("running", format!("the running target uses zone {z}, which is down")));
    }
    evaluate(p, service, running, opts)
}

/// Whether the new target is deployed, and the one-line account of why.
pub fn verdict(
    trigger: &Trigger,
    solved: &Solved,
    diff: &Diff,
    before: Option<&Evaluation>,
    after: &Evaluation,
    move_cost: f64,
    unchanged: bool,
) -> (bool, String) {
    let limit = match &solved.plan.status {
        crate::plan::PlanStatus::Feasible { limit } if limit != "heuristic" && limit != "greedy last resort" => {
            format!(
                ", {limit}: best plan's gap {}",
                solved.plan.gap.map_or("unknown".to_string(), |g| format!("{:.2}%", g * 100.0))
            )
        }
        _ => String::new(),
    };
    let how = format!("{} ({}{limit})", solved.route.as_str(), solved.plan.algorithm);
    if unchanged {
        return (true, format!("{}: placement unchanged by {how}", trigger.describe()));
    }
    let moves = diff.moved();
    let what = format!("{} start(s), {} stop(s), {moves} move(s)", diff.start, diff.stop);
    if !trigger.is_optional() {
        return (true, format!("{}: placed by {how}: {what}", trigger.describe()));
    }
    let Some(before) = before else {
        return (
            true,
            format!("{}: the running placement no longer serves; placed by {how}: {what}", trigger.describe()),
        );
    };
    if moves == 0 {
        // Nothing moves: the service only grows or shrinks with its demand.
        return (true, format!("{}: resized by {how}: {what}", trigger.describe()));
    }
    let gain = after.value - before.value;
    if gain <= move_cost {
        return (
            false,
            format!(
                "{}: re-plan by {how} gains {gain:.4} {:?}, less than its move cost {move_cost:.4} ({moves} move(s)): nothing changed",
                trigger.describe(),
                after.unit
            ),
        );
    }
    (
        true,
        format!(
            "{}: re-placed by {how}: gain {gain:.4} {:?} > move cost {move_cost:.4}; {what}",
            trigger.describe(),
            after.unit
        ),
    )
}
