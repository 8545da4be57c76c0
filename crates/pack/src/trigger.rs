//! When to consolidate: INPUT's three triggers (IN-14) as a pure decision function.
//!
//! * **Periodic**: every `period` seconds since the last run.
//! * **Event**: the number of services or of instances changed since the last run (INPUT:
//!   "when the number of services in the INPUT system changes"; a service removed frees
//!   room that consolidation can reclaim).
//! * **Threshold**: a powered-on host is below `low` utilisation (INPUT: "if the resource
//!   utilization of an INPUT node drops below a threshold").
//!
//! **Hysteresis**, so that consolidation does not thrash:
//!
//! * a host must stay below `low` for `persistence` consecutive observations before it
//!   fires the threshold trigger, and once it has fired it is *disarmed* until its
//!   utilisation rises above `low + margin` (a host hovering around `low` fires once, not at
//!   every observation);
//! * event and threshold triggers respect a **cool-down** (`min_interval` seconds since the
//!   last run); the periodic trigger is its own rate limit. A trigger held back by the
//!   cool-down is reported as `Wait` with the time it becomes eligible, and fires then if
//!   its condition still holds.
//!
//! [`decide`] takes the configuration, the previous state and an observation, and returns the
//! decision and the next state: no clock, no I/O (time is the caller's `now`, in seconds).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Trigger configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerConfig {
    /// Periodic trigger period (s); `None` = off.
    pub period: Option<u64>,
    /// Fire on a change of the service or instance count.
    pub on_events: bool,
    /// Threshold trigger: utilisation (0..1) below which a host is under-used; `None` = off.
    pub low: Option<f64>,
    /// Hysteresis margin above `low` needed to re-arm a host.
    pub margin: f64,
    /// Consecutive observations below `low` before a host fires.
    pub persistence: u32,
    /// Cool-down (s) after a run before an event or threshold trigger may fire.
    pub min_interval: u64,
}

impl Default for TriggerConfig {
    /// Hourly, on events, below 30 % with a 10-point margin, 3 observations, 5 min cool-down.
    fn default() -> Self {
        TriggerConfig {
            period: Some(3600),
            on_events: true,
            low: Some(0.3),
            margin: 0.1,
            persistence: 3,
            min_interval: 300,
        }
    }
}

/// What the caller observed at `now`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Seconds on any monotonic scale.
    pub now: u64,
    pub services: usize,
    pub instances: usize,
    /// Utilisation (0..1) of each powered-on host, by name.
    pub host_utilisation: BTreeMap<String, f64>,
}

/// What the triggers remember between observations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TriggerState {
    pub last_run: Option<u64>,
    /// Service and instance counts at the last run (or first observation).
    pub seen: Option<(usize, usize)>,
    /// Consecutive observations below `low`, per host.
    pub below: BTreeMap<String, u32>,
    /// Hosts that fired and wait to rise above `low + margin`.
    pub disarmed: BTreeMap<String, ()>,
}

/// Why a run was triggered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reason {
    Periodic,
    ServicesChanged { before: usize, now: usize },
    InstancesChanged { before: usize, now: usize },
    Underused { host: String, utilisation: f64 },
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Decision {
    /// Consolidate now, for these reasons.
    Run(Vec<Reason>),
    /// Nothing to do; `until` is when a held-back trigger becomes eligible, if any.
    Wait { until: Option<u64> },
}

/// Decides whether to consolidate now. The caller stores the returned state and passes it
/// back with the next observation; on `Run`, the state records `now` as the last run.
pub fn decide(cfg: &TriggerConfig, state: &TriggerState, obs: &Observation) -> (Decision, TriggerState) {
    let mut st = state.clone();
    let mut reasons = Vec::new();
    let mut held: Option<u64> = None;
    let cooled = st.last_run.is_none_or(|t| obs.now >= t.saturating_add(cfg.min_interval));
    let eligible_at = st.last_run.map(|t| t.saturating_add(cfg.min_interval));

    // Periodic.
    if let Some(period) = cfg.period {
        match st.last_run {
            None => reasons.push(Reason::Periodic),
            Some(t) if obs.now >= t.saturating_add(period) => reasons.push(Reason::Periodic),
            _ => {}
        }
    }

    // Events.
    let (s0, i0) = st.seen.unwrap_or((obs.services, obs.instances));
    if st.seen.is_none() {
        st.seen = Some((obs.services, obs.instances));
    }
    let mut events = Vec::new();
    if cfg.on_events {
        if obs.services != s0 {
            events.push(Reason::ServicesChanged { before: s0, now: obs.services });
        }
        if obs.instances != i0 {
            events.push(Reason::InstancesChanged { before: i0, now: obs.instances });
        }
    }

    // Threshold with persistence and re-arming.
    let mut underused = Vec::new();
    if let Some(low) = cfg.low {
        st.below.retain(|h, _| obs.host_utilisation.contains_key(h));
        st.disarmed.retain(|h, _| obs.host_utilisation.contains_key(h));
        for (h, &u) in &obs.host_utilisation {
            if st.disarmed.contains_key(h) {
                if u > low + cfg.margin {
                    st.disarmed.remove(h);
                }
                st.below.remove(h);
                continue;
            }
            if u < low {
                let c = st.below.entry(h.clone()).or_insert(0);
                *c += 1;
                if *c >= cfg.persistence.max(1) {
                    underused.push(Reason::Underused { host: h.clone(), utilisation: u });
                }
            } else {
                st.below.remove(h);
            }
        }
    }

    if !events.is_empty() || !underused.is_empty() {
        if cooled {
            reasons.extend(events);
            reasons.extend(underused.iter().cloned());
        } else {
            held = eligible_at;
        }
    }

    if reasons.is_empty() {
        return (Decision::Wait { until: held }, st);
    }
    // Fire: record the run; hosts that fired are disarmed until they recover.
    st.last_run = Some(obs.now);
    st.seen = Some((obs.services, obs.instances));
    for r in &reasons {
        if let Reason::Underused { host, .. } = r {
            st.disarmed.insert(host.clone(), ());
            st.below.remove(host);
        }
    }
    (Decision::Run(reasons), st)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(now: u64, services: usize, hosts: &[(&str, f64)]) -> Observation {
        Observation {
            now,
            services,
            instances: services * 2,
            host_utilisation: hosts.iter().map(|(h, u)| (h.to_string(), *u)).collect(),
        }
    }

    fn cfg() -> TriggerConfig {
        TriggerConfig {
            period: Some(100),
            on_events: true,
            low: Some(0.3),
            margin: 0.1,
            persistence: 2,
            min_interval: 10,
        }
    }

    #[test]
    fn periodic() {
        let c = cfg();
        let (d, s) = decide(&c, &TriggerState::default(), &obs(0, 1, &[]));
        assert_eq!(d, Decision::Run(vec![Reason::Periodic]));
        let (d, s) = decide(&c, &s, &obs(50, 1, &[]));
        assert_eq!(d, Decision::Wait { until: None });
        let (d, _) = decide(&c, &s, &obs(100, 1, &[]));
        assert_eq!(d, Decision::Run(vec![Reason::Periodic]));
    }

    #[test]
    fn event_respects_cooldown() {
        let c = cfg();
        let (_, s) = decide(&c, &TriggerState::default(), &obs(0, 3, &[]));
        let (d, s) = decide(&c, &s, &obs(5, 2, &[]));
        assert_eq!(d, Decision::Wait { until: Some(10) });
        let (d, s) = decide(&c, &s, &obs(11, 2, &[]));
        assert!(matches!(&d, Decision::Run(r) if r.contains(&Reason::ServicesChanged { before: 3, now: 2 })));
        let (d, _) = decide(&c, &s, &obs(30, 2, &[]));
        assert_eq!(d, Decision::Wait { until: None });
    }

    #[test]
    fn threshold_has_persistence_and_hysteresis() {
        let c = cfg();
        let (_, s) = decide(&c, &TriggerState::default(), &obs(0, 1, &[("h", 0.5)]));
        let (d, s) = decide(&c, &s, &obs(20, 1, &[("h", 0.2)]));
        assert_eq!(d, Decision::Wait { until: None }, "one observation is not enough");
        let (d, s) = decide(&c, &s, &obs(30, 1, &[("h", 0.2)]));
        assert!(matches!(d, Decision::Run(_)));
        // Still low: disarmed, no thrashing.
        let (d, s) = decide(&c, &s, &obs(50, 1, &[("h", 0.25)]));
        assert_eq!(d, Decision::Wait { until: None });
        let (d, s) = decide(&c, &s, &obs(60, 1, &[("h", 0.35)]));
        assert_eq!(d, Decision::Wait { until: None }, "0.35 is not above low + margin");
        let (_, s) = decide(&c, &s, &obs(70, 1, &[("h", 0.45)]));
        let (_, s) = decide(&c, &s, &obs(80, 1, &[("h", 0.1)]));
        let (d, _) = decide(&c, &s, &obs(90, 1, &[("h", 0.1)]));
        assert!(matches!(d, Decision::Run(_)), "re-armed after recovering");
    }
}
