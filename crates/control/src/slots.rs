//! Session slots (FUSION D3.2 §2.3.2, §2.8, §2.9): what a zone advertises, how it scales, how
//! it balances new sessions, and how the domain resolves a client to a zone. Pure decisions:
//! time, randomness and observations come in as arguments.

use std::collections::BTreeMap;

/// Lifecycle of an instance as the scaler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Starting; its slots are not yet offered.
    Provisioning,
    /// Takes new sessions.
    Active,
    /// Takes no new sessions; terminated once its last session ends (FUSION §2.8.2).
    Decommissioned,
}

/// One instance's slot report.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSlots {
    pub id: String,
    pub state: SlotState,
    /// Slots the instance offers in total (its resource slots).
    pub max: u32,
    /// Slots still free. An instance may lower this below `max − active` under contention.
    pub free: u32,
    /// Sessions in progress. Drain completion is decided on this, not on `free == max`,
    /// because an instance may lower its own `free` (seed notes, ambiguity 22).
    pub active: u32,
    /// When the instance started (ms), for tie-breaks.
    pub started_ms: u64,
}

/// What a zone advertises for a service (FUSION §2.8.3.2): the free slots of instances that
/// take sessions, plus the slots it could add by starting instances up to its maximum.
pub fn advertised_slots(instances: &[InstanceSlots], per_instance: u32, max_instances: u32) -> u32 {
    let free: u32 = instances.iter().filter(|i| i.state == SlotState::Active).map(|i| i.free).sum();
    let running = instances.iter().filter(|i| i.state != SlotState::Decommissioned).count() as u32;
    free + max_instances.saturating_sub(running) * per_instance
}

/// The scaler's configuration for one service in one zone.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalerPolicy {
    /// Keep at least this many free slots on active instances (the manifest's `min_free`).
    pub min_free: u32,
    pub per_instance: u32,
    pub min_instances: u32,
    pub max_instances: u32,
    /// Scale in only when, after removing an instance, at least `min_free + hysteresis`
    /// slots would still be free; stops flapping around the threshold.
    pub hysteresis: u32,
    pub cooldown_out_ms: u64,
    pub cooldown_in_ms: u64,
}

/// What the scaler wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleAction {
    /// Start this many new instances.
    Start(u32),
    /// Put a decommissioned instance back into service (cheaper than starting one).
    Recommission(String),
    /// Stop sending new sessions to this instance.
    Decommission(String),
    /// Stop this drained instance (no active sessions).
    Terminate(String),
}

/// When the scaler last acted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScalerMemory {
    pub last_out_ms: Option<u64>,
    pub last_in_ms: Option<u64>,
}

/// One scaling decision (FUSION §2.8.2): terminate drained instances; scale out when free
/// slots fall below `min_free` (recommission first, then start instances up to the maximum,
/// counting those still provisioning); scale in by decommissioning the active instance with
/// the most free slots when the rest keep `min_free + hysteresis` free. Never terminates an
/// instance with an active session.
pub fn scale(
    policy: &ScalerPolicy,
    instances: &[InstanceSlots],
    memory: &ScalerMemory,
    now_ms: u64,
) -> Vec<ScaleAction> {
    let mut actions = Vec::new();
    for i in instances.iter().filter(|i| i.state == SlotState::Decommissioned && i.active == 0) {
        actions.push(ScaleAction::Terminate(i.id.clone()));
    }
    let active: Vec<&InstanceSlots> = instances.iter().filter(|i| i.state == SlotState::Active).collect();
    let provisioning = instances.iter().filter(|i| i.state == SlotState::Provisioning).count() as u32;
    // Slots coming from instances still starting count as free: they will be.
    let free: u32 = active.iter().map(|i| i.free).sum::<u32>() + provisioning * policy.per_instance;
    let running = active.len() as u32 + provisioning;
    let cooled = |last: Option<u64>, cool: u64| last.is_none_or(|t| now_ms.saturating_sub(t) >= cool);

    let below_min_instances = running < policy.min_instances;
    if (free < policy.min_free || below_min_instances) && cooled(memory.last_out_ms, policy.cooldown_out_ms) {
        let mut missing = policy.min_free.saturating_sub(free);
        let mut wanted_instances = policy.min_instances.saturating_sub(running);
        // Recommission draining instances that still have sessions, most free first.
        let mut draining: Vec<&InstanceSlots> =
            instances.iter().filter(|i| i.state == SlotState::Decommissioned && i.active > 0).collect();
        draining.sort_by(|a, b| b.free.cmp(&a.free).then(a.id.cmp(&b.id)));
        for d in draining {
            if missing == 0 && wanted_instances == 0 {
                break;
            }
            actions.push(ScaleAction::Recommission(d.id.clone()));
            missing = missing.saturating_sub(d.free);
            wanted_instances = wanted_instances.saturating_sub(1);
        }
        let per = policy.per_instance.max(1);
        let by_slots = missing.div_ceil(per);
        let room = policy.max_instances.saturating_sub(running);
        let start = by_slots.max(wanted_instances).min(room);
        if start > 0 {
            actions.push(ScaleAction::Start(start));
        }
        return actions;
    }
    // Scale in only on a settled picture: with an instance still starting, its slots are
    // counted as free while the victim is chosen among active ones, which would drain a busy
    // instance for an empty one. And not right after a scale-out either: the load that
    // caused it is likely still there.
    if free >= policy.min_free
        && provisioning == 0
        && cooled(memory.last_in_ms, policy.cooldown_in_ms)
        && cooled(memory.last_out_ms, policy.cooldown_in_ms)
        && running > policy.min_instances.max(1)
    {
        // Victim: most free slots, then the youngest (it has had least time to gather sessions).
        if let Some(victim) =
            active.iter().max_by(|a, b| a.free.cmp(&b.free).then(a.started_ms.cmp(&b.started_ms)).then(b.id.cmp(&a.id)))
        {
            let remaining = free - victim.free;
            if remaining >= policy.min_free + policy.hysteresis {
                actions.push(ScaleAction::Decommission(victim.id.clone()));
            }
        }
    }
    actions
}

/// How the gateway picks an instance for a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalancePolicy {
    /// The instance with the most free slots (spreads sessions).
    MostFree,
    /// The instance with the lowest share of its slots in use.
    LeastLoaded,
    /// Two random candidates, the one with the lower latency estimate (EWMA) wins.
    PowerOfTwo,
}

/// A candidate as the gateway sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub state: SlotState,
    pub max: u32,
    pub free: u32,
    /// Free slots left under this configuration's cap (multi-configuration), if capped.
    pub config_free: Option<u32>,
    /// Smoothed connect latency (µs).
    pub ewma_us: f64,
}

impl Candidate {
    fn eligible(&self) -> bool {
        self.state == SlotState::Active && self.free > 0 && self.config_free.is_none_or(|c| c > 0)
    }
}

/// Picks the instance for a new connection, or `None` when no active instance has a free
/// slot (and a free slot under the configuration's cap). `random` drives power-of-two choices.
pub fn pick(policy: BalancePolicy, candidates: &[Candidate], random: u64) -> Option<usize> {
    let eligible: Vec<usize> = (0..candidates.len()).filter(|&i| candidates[i].eligible()).collect();
    if eligible.is_empty() {
        return None;
    }
    let c = |i: usize| &candidates[i];
    match policy {
        BalancePolicy::MostFree => {
            eligible.into_iter().max_by(|&a, &b| c(a).free.cmp(&c(b).free).then(c(b).id.cmp(&c(a).id)))
        }
        BalancePolicy::LeastLoaded => eligible.into_iter().min_by(|&a, &b| {
            let load = |i: usize| 1.0 - f64::from(c(i).free) / f64::from(c(i).max.max(1));
            load(a).total_cmp(&load(b)).then(c(a).id.cmp(&c(b).id))
        }),
        BalancePolicy::PowerOfTwo => {
            let n = eligible.len() as u64;
            let a = eligible[(random % n) as usize];
            let b = eligible[((random / n.max(1)) % n) as usize];
            Some(if c(b).ewma_us < c(a).ewma_us { b } else { a })
        }
    }
}

/// Exponentially weighted moving average update.
pub fn ewma(previous: f64, sample: f64, weight: f64) -> f64 {
    if previous <= 0.0 {
        sample
    } else {
        previous + weight.clamp(0.0, 1.0) * (sample - previous)
    }
}

/// A zone's advertisement as the resolver sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneOffer {
    pub zone: String,
    pub endpoint: String,
    pub advertised: u32,
    /// Estimated round-trip time from the client (ms).
    pub rtt_ms: f64,
}

/// The resolver's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Send the client here; `rank` is its position in the utility order (0 = best).
    Zone { zone: String, endpoint: String, utility: f64, rank: usize },
    /// No zone within R_max has slots: deploy on demand in this zone (the best by utility).
    DeployOnDemand { zone: String, utility: f64 },
    /// No zone is within R_max at all.
    Unreachable,
}

/// Resolves a client: zones ordered by the service's utility of their latency (then more
/// slots, then name); the first with advertised slots wins, so a full zone spills over to the
/// next. With no slots anywhere, the best zone gets an on-demand deployment.
pub fn resolve(zones: &[ZoneOffer], utility: &dyn Fn(f64) -> Option<f64>) -> Resolution {
    let mut ranked: Vec<(f64, &ZoneOffer)> = zones.iter().filter_map(|z| utility(z.rtt_ms).map(|u| (u, z))).collect();
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.rtt_ms.total_cmp(&b.1.rtt_ms))
            .then(b.1.advertised.cmp(&a.1.advertised))
            .then(a.1.zone.cmp(&b.1.zone))
    });
    if let Some((rank, (u, z))) = ranked.iter().enumerate().find(|(_, (_, z))| z.advertised > 0) {
        return Resolution::Zone { zone: z.zone.clone(), endpoint: z.endpoint.clone(), utility: *u, rank };
    }
    match ranked.first() {
        Some((u, z)) => Resolution::DeployOnDemand { zone: z.zone.clone(), utility: *u },
        None => Resolution::Unreachable,
    }
}

/// What the domain does when no zone that runs a service has a free slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhenFull {
    /// The service has no placement yet: wait for it.
    Placing,
    /// Zones of the placement are still coming up (not reporting, or starting instances):
    /// their slots are on the way, so no on-demand deployment yet.
    Deploying(Vec<String>),
    /// Everything placed is up and full: deploy on demand in the best zone that can take it.
    DeployOnDemand,
}

/// The on-demand hold-back rule (FUSION §2.6: slots available in a region "or new instances
/// can quickly be deployed on-the-fly"): `placed` is the service's placement (`None` before
/// one exists), `reporting` the zones whose heartbeat shows it deployed, `starting` those
/// of them whose instances are still starting.
pub fn when_full(placed: Option<&[String]>, reporting: &[String], starting: &[String]) -> WhenFull {
    let Some(placed) = placed else { return WhenFull::Placing };
    let deploying: Vec<String> =
        placed.iter().filter(|z| !reporting.contains(z) || starting.contains(z)).cloned().collect();
    if deploying.is_empty() {
        WhenFull::DeployOnDemand
    } else {
        WhenFull::Deploying(deploying)
    }
}

/// Erlang-C: probability that an arriving session must wait, with `servers` slots and offered
/// load `erlangs` (λ/μ). 1 when the load is at or above capacity.
pub fn erlang_c(servers: u32, erlangs: f64) -> f64 {
    let c = f64::from(servers);
    if servers == 0 || erlangs >= c {
        return 1.0;
    }
    // Erlang-B by the stable recurrence, then C from B.
    let mut b = 1.0;
    for k in 1..=servers {
        b = erlangs * b / (f64::from(k) + erlangs * b);
    }
    let rho = erlangs / c;
    b / (1.0 - rho + rho * b)
}

/// Mean waiting time (same unit as `1/mu`) in an M/M/c queue.
pub fn erlang_c_mean_wait(servers: u32, lambda: f64, mu: f64) -> f64 {
    let a = lambda / mu;
    let c = f64::from(servers);
    if a >= c {
        return f64::INFINITY;
    }
    erlang_c(servers, a) / (c * mu - lambda)
}

/// The fewest slots that keep the mean wait at or below `max_wait`.
pub fn slots_for_wait(lambda: f64, mu: f64, max_wait: f64) -> u32 {
    let mut c = (lambda / mu).floor() as u32 + 1;
    while erlang_c_mean_wait(c, lambda, mu) > max_wait {
        c += 1;
    }
    c
}

/// Per-service slots needed when `n` configurations with the same load share one pool
/// versus separate pools (FUSION §4.1's multi-configuration argument).
pub fn pooling_gain(n: u32, lambda: f64, mu: f64, max_wait: f64) -> BTreeMap<&'static str, f64> {
    let separate = slots_for_wait(lambda, mu, max_wait);
    let pooled = slots_for_wait(lambda * f64::from(n), mu, max_wait);
    BTreeMap::from([
        ("separate_per_service", f64::from(separate)),
        ("pooled_per_service", f64::from(pooled) / f64::from(n)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_demand_waits_for_placement_and_for_zones_still_coming_up() {
        let z = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(when_full(None, &[], &[]), WhenFull::Placing);
        let placed = z(&["a", "b"]);
        assert_eq!(when_full(Some(&placed), &z(&["a"]), &[]), WhenFull::Deploying(z(&["b"])));
        assert_eq!(when_full(Some(&placed), &z(&["a", "b"]), &z(&["a"])), WhenFull::Deploying(z(&["a"])));
        assert_eq!(when_full(Some(&placed), &z(&["a", "b"]), &[]), WhenFull::DeployOnDemand);
    }

    fn inst(id: &str, state: SlotState, max: u32, free: u32, active: u32) -> InstanceSlots {
        InstanceSlots { id: id.into(), state, max, free, active, started_ms: 0 }
    }

    fn policy() -> ScalerPolicy {
        ScalerPolicy {
            min_free: 5,
            per_instance: 10,
            min_instances: 1,
            max_instances: 4,
            hysteresis: 2,
            cooldown_out_ms: 1000,
            cooldown_in_ms: 5000,
        }
    }

    #[test]
    fn advertisement_counts_headroom_like_fusion() {
        // One idle instance of N = 10, M = 4: advertise M × N (§2.8.1).
        assert_eq!(advertised_slots(&[inst("a", SlotState::Active, 10, 10, 0)], 10, 4), 40);
        let draining = inst("b", SlotState::Decommissioned, 10, 9, 1);
        assert_eq!(advertised_slots(&[inst("a", SlotState::Active, 10, 3, 7), draining], 10, 4), 3 + 3 * 10);
    }

    #[test]
    fn scales_out_before_slots_run_out_and_respects_bounds() {
        let p = policy();
        let acts = scale(&p, &[inst("a", SlotState::Active, 10, 2, 8)], &ScalerMemory::default(), 0);
        assert_eq!(acts, vec![ScaleAction::Start(1)]);
        let full: Vec<_> = (0..4).map(|i| inst(&format!("i{i}"), SlotState::Active, 10, 0, 10)).collect();
        assert!(scale(&p, &full, &ScalerMemory::default(), 0).is_empty(), "at max instances nothing starts");
        let cooling = ScalerMemory { last_out_ms: Some(500), last_in_ms: None };
        assert!(scale(&p, &[inst("a", SlotState::Active, 10, 2, 8)], &cooling, 1000).is_empty());
    }

    #[test]
    fn recommissions_before_starting() {
        let p = policy();
        let acts = scale(
            &p,
            &[inst("a", SlotState::Active, 10, 1, 9), inst("b", SlotState::Decommissioned, 10, 8, 2)],
            &ScalerMemory::default(),
            0,
        );
        assert_eq!(acts, vec![ScaleAction::Recommission("b".into())]);
    }

    #[test]
    fn scale_in_drains_the_most_free_and_never_cuts_sessions() {
        let p = policy();
        let insts = [inst("a", SlotState::Active, 10, 8, 2), inst("b", SlotState::Active, 10, 9, 1)];
        assert_eq!(scale(&p, &insts, &ScalerMemory::default(), 0), vec![ScaleAction::Decommission("b".into())]);
        let draining = [inst("a", SlotState::Active, 10, 6, 4), inst("b", SlotState::Decommissioned, 10, 9, 1)];
        assert!(!scale(&p, &draining, &ScalerMemory::default(), 0)
            .iter()
            .any(|a| matches!(a, ScaleAction::Terminate(_))));
        let drained = [inst("a", SlotState::Active, 10, 6, 4), inst("b", SlotState::Decommissioned, 10, 10, 0)];
        assert!(scale(&p, &drained, &ScalerMemory::default(), 0).contains(&ScaleAction::Terminate("b".into())));
        // Not while an instance starts, nor within the scale-in cooldown after a scale-out.
        let starting = [inst("a", SlotState::Active, 10, 1, 9), inst("b", SlotState::Provisioning, 10, 10, 0)];
        assert!(scale(&p, &starting, &ScalerMemory::default(), 0).is_empty());
        let just_out = ScalerMemory { last_out_ms: Some(1000), last_in_ms: None };
        assert!(scale(&p, &insts, &just_out, 2000).is_empty());
        assert_eq!(scale(&p, &insts, &just_out, 6000), vec![ScaleAction::Decommission("b".into())]);
        // Hysteresis: removing b would leave 6 − … < min_free + hysteresis → keep.
        let tight = [inst("a", SlotState::Active, 10, 3, 7), inst("b", SlotState::Active, 10, 5, 5)];
        assert!(scale(&p, &tight, &ScalerMemory::default(), 0).is_empty());
    }

    #[test]
    fn gateway_never_picks_a_full_or_draining_instance() {
        let c = |id: &str, state, free, cap: Option<u32>, ewma| Candidate {
            id: id.into(),
            state,
            max: 4,
            free,
            config_free: cap,
            ewma_us: ewma,
        };
        let cands = vec![
            c("full", SlotState::Active, 0, None, 1.0),
            c("drain", SlotState::Decommissioned, 4, None, 1.0),
            c("capped", SlotState::Active, 3, Some(0), 1.0),
            c("ok", SlotState::Active, 2, Some(1), 50.0),
            c("ok2", SlotState::Active, 1, None, 10.0),
        ];
        for p in [BalancePolicy::MostFree, BalancePolicy::LeastLoaded, BalancePolicy::PowerOfTwo] {
            for r in 0..20 {
                let i = pick(p, &cands, r).unwrap();
                assert!(["ok", "ok2"].contains(&cands[i].id.as_str()), "{p:?} picked {}", cands[i].id);
            }
        }
        assert_eq!(cands[pick(BalancePolicy::MostFree, &cands, 0).unwrap()].id, "ok");
        assert!(pick(BalancePolicy::MostFree, &cands[..3], 0).is_none());
    }

    #[test]
    fn resolution_prefers_utility_then_spills_over() {
        let sla = |rtt: f64| if rtt > 150.0 { None } else { Some((50.0 - rtt.max(20.0)) / 30.0) };
        let zones = vec![
            ZoneOffer { zone: "near".into(), endpoint: "a".into(), advertised: 0, rtt_ms: 5.0 },
            ZoneOffer { zone: "mid".into(), endpoint: "b".into(), advertised: 3, rtt_ms: 30.0 },
            ZoneOffer { zone: "far".into(), endpoint: "c".into(), advertised: 9, rtt_ms: 200.0 },
        ];
        assert!(matches!(resolve(&zones, &sla), Resolution::Zone { ref zone, rank: 1, .. } if zone == "mid"));
        let none: Vec<_> = zones
            .iter()
            .cloned()
            .map(|mut z| {
                z.advertised = 0;
                z
            })
            .collect();
        assert!(matches!(resolve(&none, &sla), Resolution::DeployOnDemand { ref zone, .. } if zone == "near"));
        assert_eq!(resolve(&zones[2..], &sla), Resolution::Unreachable);
    }

    #[test]
    fn erlang_c_matches_fusion_numbers() {
        // FUSION §4.1 cross-check (seed notes): C = 10, ρ = 0.5, μ = 4/h → mean wait ≈ 6.5 s.
        let mu = 4.0 / 3600.0;
        let wait = erlang_c_mean_wait(10, 5.0 * mu, mu);
        assert!((wait - 6.5).abs() < 0.2, "mean wait {wait}");
        // λ = 60/h, W ≤ 0.1 s: 29 slots alone, 19 per service when 8 share.
        let g = pooling_gain(8, 60.0 / 3600.0, mu, 0.1);
        assert_eq!(g["separate_per_service"], 29.0);
        assert_eq!(g["pooled_per_service"], 19.0);
    }
}
