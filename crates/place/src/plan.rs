//! The one output type of every placement algorithm.
//!
//! A [`Plan`] says where each component runs ([`Placement`]: zone, optionally host, instance
//! count, slots used), who is served where ([`Assignment`]: a region's share of a service's
//! sessions at a zone), how channels are routed ([`ChannelPath`]: zones hop by hop), and what
//! the objective and its terms are, with the solver's bound, gap and statistics.
//!
//! Conventions:
//! * Everything is sorted by names ([`Plan::normalize`]); no hash-map order leaks in, so the
//!   same input gives byte-identical JSON.
//! * `Placement::slots` is the number of session slots the plan uses on those instances (0 when
//!   the algorithm assigns no sessions, as in chain placement); it never exceeds
//!   `instances × slots.per_instance` of the component.
//! * `Assignment::utility` is the utility the region gets for the service: FUSION applies the
//!   utility function to the *share-weighted average* latency of the region's sessions
//!   (constraint 6), so every row of one (service, region) carries the same value.
//!   `latency_ms` is the round-trip time of that row's (region, zone) pair.
//! * A `ChannelPath` lists zones from the `from` component's zone to the `to` component's
//!   zone; it is empty when both are in the same zone (collocated: no WAN hop).
//! * `subscription` distinguishes several chains of one service placed side by side (INPUT
//!   subscriptions); it is `None` for FUSION plans.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::solver::{SolveStats, SolveStatus};

/// Where instances of one component run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    pub component: String,
    pub zone: String,
    pub host: Option<String>,
    pub instances: u32,
    pub slots: f64,
}

/// A share of one region's sessions of one service, served at one zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub service: String,
    pub region: String,
    pub zone: String,
    /// Fraction of the region's demand for the service served here (shares sum to 1).
    pub share: f64,
    /// `share × demand` in session slots.
    pub slots: f64,
    /// Round-trip time between the region and the zone.
    pub latency_ms: f64,
    /// Utility of the region for this service (on its share-weighted average latency).
    pub utility: Option<f64>,
}

/// The route of one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelPath {
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    pub from: String,
    pub to: String,
    /// Zones hop by hop, both ends included; empty when collocated.
    pub zones: Vec<String>,
    /// Sum of the one-way delays of the hops.
    pub latency_ms: f64,
}

/// A chain subscription: which user the chain serves (for proximity classes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub service: String,
    pub region: Option<String>,
    /// The zone proximity is measured from when no region is given.
    pub user_zone: Option<String>,
}

/// How a plan was obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PlanStatus {
    /// Proven optimal (within the configured gap).
    Optimal,
    /// Feasible; a limit stopped the proof of optimality.
    Feasible { limit: String },
}

impl PlanStatus {
    pub fn from_solve(s: &SolveStatus) -> PlanStatus {
        match s {
            SolveStatus::Feasible { limit } => PlanStatus::Feasible { limit: limit.clone() },
            _ => PlanStatus::Optimal,
        }
    }
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Solver effort behind a plan (summed over all solves that produced it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanStats {
    pub seconds: f64,
    /// Columns and rows of the largest model solved.
    pub columns: usize,
    pub rows: usize,
    pub iterations: u64,
    pub nodes: Option<u64>,
    pub solves: u32,
    /// Time spent building models (seconds).
    #[serde(default)]
    pub build_seconds: f64,
    /// Time spent pricing columns in column generation (seconds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pricing_seconds: f64,
    /// Every solve, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub solve_log: Vec<SolveStats>,
}

impl PlanStats {
    pub fn add(&mut self, s: &SolveStats) {
        self.seconds += s.seconds;
        self.columns = self.columns.max(s.columns);
        self.rows = self.rows.max(s.rows);
        self.iterations += s.simplex_iterations + s.ipm_iterations;
        if let Some(n) = s.nodes {
            self.nodes = Some(self.nodes.unwrap_or(0) + n);
        }
        self.solves += 1;
        self.solve_log.push(s.clone());
    }
}

/// The output of every placement algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub algorithm: String,
    pub status: PlanStatus,
    pub placements: Vec<Placement>,
    pub assignments: Vec<Assignment>,
    pub paths: Vec<ChannelPath>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<Subscription>,
    pub objective: f64,
    pub objective_terms: BTreeMap<String, f64>,
    pub bound: Option<f64>,
    pub gap: Option<f64>,
    pub stats: PlanStats,
    pub notes: Vec<String>,
}

impl Plan {
    pub fn new(algorithm: impl Into<String>) -> Plan {
        Plan {
            algorithm: algorithm.into(),
            status: PlanStatus::Optimal,
            placements: Vec::new(),
            assignments: Vec::new(),
            paths: Vec::new(),
            subscriptions: Vec::new(),
            objective: 0.0,
            objective_terms: BTreeMap::new(),
            bound: None,
            gap: None,
            stats: PlanStats::default(),
            notes: Vec::new(),
        }
    }

    /// Sorts every list by names so that equal plans compare (and serialise) equal.
    pub fn normalize(&mut self) {
        self.placements.sort_by(|a, b| {
            (&a.service, &a.subscription, &a.component, &a.zone, &a.host).cmp(&(
                &b.service,
                &b.subscription,
                &b.component,
                &b.zone,
                &b.host,
            ))
        });
        self.assignments.sort_by(|a, b| (&a.service, &a.region, &a.zone).cmp(&(&b.service, &b.region, &b.zone)));
        self.paths.sort_by(|a, b| {
            (&a.service, &a.subscription, &a.from, &a.to).cmp(&(&b.service, &b.subscription, &b.from, &b.to))
        });
        self.subscriptions.sort_by(|a, b| a.id.cmp(&b.id));
    }

    /// A term of the objective, if the plan reports it.
    pub fn term(&self, name: &str) -> Option<f64> {
        self.objective_terms.get(name).copied()
    }

    /// The distinct `(zone, host)` pairs holding placed components (user-side components run
    /// at the user's and hold no server): the `used_servers` term.
    pub fn used_hosts(&self, p: &crate::problem::Problem) -> std::collections::BTreeSet<(String, String)> {
        self.placements
            .iter()
            .filter(|pl| {
                !p.service_index(&pl.service)
                    .and_then(|si| p.services[si].service.component(&pl.component))
                    .is_some_and(|c| c.user_side)
            })
            .filter_map(|pl| pl.host.as_ref().map(|h| (pl.zone.clone(), h.clone())))
            .collect()
    }

    /// Adds `part` (another subscription, copy or service placed against what this plan
    /// left) to this plan: its rows, its objective and terms (summed: a caller recomputes
    /// the terms that do not add up, such as distinct hosts), its solver effort, and a
    /// time-limited status. Bound and gap are the caller's to combine. The one merge of plan
    /// parts: chain sequences, the heuristic's sequences and the run-time pipeline use it.
    pub fn absorb(&mut self, part: &Plan) {
        self.placements.extend(part.placements.iter().cloned());
        self.assignments.extend(part.assignments.iter().cloned());
        self.paths.extend(part.paths.iter().cloned());
        self.subscriptions.extend(part.subscriptions.iter().cloned());
        self.objective += part.objective;
        for (k, v) in &part.objective_terms {
            *self.objective_terms.entry(k.clone()).or_insert(0.0) += v;
        }
        let s = &mut self.stats;
        s.seconds += part.stats.seconds;
        s.build_seconds += part.stats.build_seconds;
        s.columns = s.columns.max(part.stats.columns);
        s.rows = s.rows.max(part.stats.rows);
        s.iterations += part.stats.iterations;
        s.solves += part.stats.solves;
        if let Some(n) = part.stats.nodes {
            s.nodes = Some(s.nodes.unwrap_or(0) + n);
        }
        if let PlanStatus::Feasible { .. } = part.status {
            self.status = part.status.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip_and_normalize() {
        let mut p = Plan::new("test");
        for z in ["b", "a"] {
            p.placements.push(Placement {
                service: "s".into(),
                subscription: None,
                component: "c".into(),
                zone: z.into(),
                host: None,
                instances: 1,
                slots: 0.0,
            });
        }
        p.status = PlanStatus::Feasible { limit: "ReachedTimeLimit".into() };
        p.normalize();
        assert_eq!(p.placements[0].zone, "a");
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("subscription"), "optional fields are omitted when empty: {json}");
        let back: Plan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }
}
