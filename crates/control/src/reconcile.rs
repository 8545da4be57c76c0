//! The zone's reconciler: desired instance counts against observed instances.
//!
//! Modelled on Nomad's `reconcile.go`: every observed instance is sorted into exactly one
//! named bucket, per `(service, component)` group, and the buckets determine the actions:
//!
//! | bucket        | which instances                                              | action        |
//! |---------------|--------------------------------------------------------------|---------------|
//! | `keep`        | running (supervised), provisioning                           | —             |
//! | `adopt`       | running but not supervised (found alive after a restart)     | `Adopt`       |
//! | `restart`     | failed and their backoff has expired                         | `Restart`     |
//! | `backoff`     | failed and still waiting                                     | — (wake time) |
//! | `lost`        | recorded, but the process is gone or is not ours             | `Forget`      |
//! | `stopping`    | terminating                                                  | —             |
//! | `draining`    | decommissioned, still holding sessions                       | —             |
//! | `stop`        | excess failed/provisioning, idle decommissioned, or anything of a group no longer wanted | `Stop` |
//! | `decommission`| excess running instances of a group that is still wanted     | `Decommission`|
//! | `recommission`| draining instances taken back instead of starting new ones   | `Recommission`|
//! | `start`       | the shortfall                                                 | `Start`       |
//!
//! Rules, in the words an operator would use:
//! * Failed, restarting and adopted instances count towards the desired number; lost ones do
//!   not (they are replaced), terminating and draining ones do not either.
//! * A group that is still wanted scales in gracefully (FUSION §2.8): excess instances that
//!   serve nobody (failed, provisioning) are stopped first; then running ones are
//!   decommissioned, most free slots first, and stopped once all their slots are free.
//! * A group that is no longer wanted at all (service terminated or deleted) is stopped at
//!   once, draining or not.
//! * A shortfall is filled by recommissioning draining instances first, then by starting new
//!   ones.
//!
//! The output is deterministic: it depends only on the input set, not its order.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::Millis;

/// The life-cycle state of an instance (FUSION: provisioning, running, decommissioned,
/// terminating, failed; plus `lost` for records whose process cannot be found).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    Provisioning,
    Running,
    Decommissioned,
    Terminating,
    Failed,
    Lost,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Provisioning => "provisioning",
            InstanceState::Running => "running",
            InstanceState::Decommissioned => "decommissioned",
            InstanceState::Terminating => "terminating",
            InstanceState::Failed => "failed",
            InstanceState::Lost => "lost",
        }
    }
}

/// A `(service, component)` pair: the unit desired counts are given for.
pub type Group = (String, String);

/// Session-slot usage an instance reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotUsage {
    pub max: u32,
    pub free: u32,
}

/// What the zone knows about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub service: String,
    pub component: String,
    pub state: InstanceState,
    /// Is the zone watching this process? False for instances found alive after a restart
    /// of the zone manager, until adopted.
    pub supervised: bool,
    /// For `Failed`: when its restart backoff ends.
    pub restart_at: Option<Millis>,
    /// The instance's last slot report, if any.
    pub slots: Option<SlotUsage>,
}

impl Observed {
    fn group(&self) -> Group {
        (self.service.clone(), self.component.clone())
    }
}

/// One thing for the zone to do.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Start `count` new instances of the group.
    Start { service: String, component: String, count: u32 },
    /// Take a process found alive after a restart under supervision again.
    Adopt { id: String },
    /// Start a failed instance again (same id, directory and ports).
    Restart { id: String },
    /// Drop the record of an instance whose process is gone.
    Forget { id: String },
    /// Stop sending new sessions; stop it once idle.
    Decommission { id: String },
    /// Take a draining instance back into service.
    Recommission { id: String },
    /// Stop the process (SIGTERM, then SIGKILL after the grace period) and drop it.
    Stop { id: String },
}

/// The instance ids of one group, by bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buckets {
    pub keep: Vec<String>,
    pub adopt: Vec<String>,
    pub restart: Vec<String>,
    pub backoff: Vec<String>,
    pub lost: Vec<String>,
    pub stopping: Vec<String>,
    pub draining: Vec<String>,
    pub stop: Vec<String>,
    pub decommission: Vec<String>,
    pub recommission: Vec<String>,
    pub start: u32,
}

/// The reconciler's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub groups: BTreeMap<String, Buckets>,
    pub actions: Vec<Action>,
    /// The earliest time a waiting instance needs another look (a backoff ending).
    pub wake_at: Option<Millis>,
}

/// Compares `desired` instance counts per group with `observed` instances at time `now`.
///
/// Groups absent from `desired` are unwanted: their instances are stopped.
pub fn reconcile(desired: &BTreeMap<Group, u32>, observed: &[Observed], now: Millis) -> Reconciliation {
    let mut by_group: BTreeMap<Group, Vec<&Observed>> = BTreeMap::new();
    for o in observed {
        by_group.entry(o.group()).or_default().push(o);
    }
    for g in desired.keys() {
        by_group.entry(g.clone()).or_default();
    }
    let mut out = Reconciliation::default();
    for (group, mut instances) in by_group {
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        let wanted = desired.get(&group).copied();
        let (b, wake) = reconcile_group(wanted, &instances, now);
        out.wake_at = match (out.wake_at, wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (service, component) = group;
        for id in &b.adopt {
            out.actions.push(Action::Adopt { id: id.clone() });
        }
        for id in &b.restart {
            out.actions.push(Action::Restart { id: id.clone() });
        }
        for id in &b.lost {
            out.actions.push(Action::Forget { id: id.clone() });
        }
        for id in &b.stop {
            out.actions.push(Action::Stop { id: id.clone() });
        }
        for id in &b.decommission {
            out.actions.push(Action::Decommission { id: id.clone() });
        }
        for id in &b.recommission {
            out.actions.push(Action::Recommission { id: id.clone() });
        }
        if b.start > 0 {
            out.actions.push(Action::Start { service: service.clone(), component: component.clone(), count: b.start });
        }
        out.groups.insert(format!("{service}/{component}"), b);
    }
    out
}

fn reconcile_group(wanted: Option<u32>, instances: &[&Observed], now: Millis) -> (Buckets, Option<Millis>) {
    let mut b = Buckets::default();
    let mut wake: Option<Millis> = None;
    // Live instances, in removal preference order: (rank, tie-break, id). Lower rank goes first.
    let mut live: Vec<(u8, i64, String)> = Vec::new();
    let mut draining: Vec<&Observed> = Vec::new();
    for o in instances {
        match o.state {
            InstanceState::Terminating => b.stopping.push(o.id.clone()),
            InstanceState::Lost => b.lost.push(o.id.clone()),
            InstanceState::Decommissioned => draining.push(o),
            InstanceState::Failed => {
                let at = o.restart_at.unwrap_or(0);
                if at <= now {
                    live.push((1, 0, o.id.clone()));
                    b.restart.push(o.id.clone());
                } else {
                    live.push((0, 0, o.id.clone()));
                    b.backoff.push(o.id.clone());
                    wake = Some(wake.map_or(at, |w| w.min(at)));
                }
            }
            InstanceState::Provisioning => {
                live.push((2, 0, o.id.clone()));
                b.keep.push(o.id.clone());
            }
            InstanceState::Running => {
                // Most free slots first; unknown slots count as fully free.
                let free = o.slots.map_or(i64::MAX, |s| i64::from(s.free));
                live.push((3, -free, o.id.clone()));
                if o.supervised {
                    b.keep.push(o.id.clone());
                } else {
                    b.adopt.push(o.id.clone());
                }
            }
        }
    }
    let Some(wanted) = wanted else {
        // Unwanted group: stop everything that is not already stopping or gone.
        b.stop.append(&mut b.keep);
        b.stop.append(&mut b.adopt);
        b.stop.append(&mut b.restart);
        b.stop.append(&mut b.backoff);
        b.stop.extend(draining.iter().map(|o| o.id.clone()));
        b.stop.sort();
        return (b, None);
    };
    let have = live.len() as u64;
    let wanted64 = u64::from(wanted);
    if have > wanted64 {
        live.sort();
        let excess = (have - wanted64) as usize;
        let mut removed = BTreeSet::new();
        for (rank, _, id) in live.into_iter().take(excess) {
            removed.insert(id.clone());
            if rank == 3 {
                b.decommission.push(id);
            } else {
                b.stop.push(id);
            }
        }
        for v in [&mut b.keep, &mut b.adopt, &mut b.restart, &mut b.backoff] {
            v.retain(|id| !removed.contains(id));
        }
        // A decommissioned instance that was not yet adopted must be adopted first.
        for o in instances {
            if !o.supervised && o.state == InstanceState::Running && removed.contains(&o.id) {
                b.adopt.push(o.id.clone());
            }
        }
        b.adopt.sort();
        if wake.is_some() && b.backoff.is_empty() {
            wake = None;
        }
    } else if have < wanted64 {
        let mut short = wanted64 - have;
        // Take back the draining instances with the most sessions first: they are the most
        // expensive to lose.
        let used = |o: &Observed| o.slots.map_or(0, |s| s.max.saturating_sub(s.free));
        let mut by_used: Vec<&&Observed> = draining.iter().collect();
        by_used.sort_by(|a, b| used(b).cmp(&used(a)).then_with(|| a.id.cmp(&b.id)));
        let mut taken = BTreeSet::new();
        for o in by_used {
            if short == 0 {
                break;
            }
            taken.insert(o.id.clone());
            b.recommission.push(o.id.clone());
            short -= 1;
        }
        b.recommission.sort();
        draining.retain(|o| !taken.contains(&o.id));
        b.start = short as u32;
    }
    for o in draining {
        let idle = o.slots.is_none_or(|s| s.free >= s.max);
        if idle {
            b.stop.push(o.id.clone());
        } else {
            b.draining.push(o.id.clone());
        }
    }
    b.stop.sort();
    b.decommission.sort();
    (b, wake)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn obs(id: &str, state: InstanceState) -> Observed {
        Observed {
            id: id.into(),
            service: "epg".into(),
            component: "renderer".into(),
            state,
            supervised: true,
            restart_at: None,
            slots: None,
        }
    }

    fn want(n: u32) -> BTreeMap<Group, u32> {
        [(("epg".to_string(), "renderer".to_string()), n)].into_iter().collect()
    }

    #[test]
    fn starts_the_shortfall() {
        let r = reconcile(&want(3), &[obs("a", InstanceState::Running)], 0);
        assert_eq!(r.actions, [Action::Start { service: "epg".into(), component: "renderer".into(), count: 2 }]);
        assert_eq!(r.groups["epg/renderer"].keep, ["a"]);
    }

    #[test]
    fn nothing_to_do_when_converged() {
        let r = reconcile(&want(2), &[obs("a", InstanceState::Running), obs("b", InstanceState::Provisioning)], 0);
        assert!(r.actions.is_empty());
    }

    #[test]
    fn adopts_lost_and_replaces_after_a_restart() {
        let mut alive = obs("a", InstanceState::Running);
        alive.supervised = false;
        let gone = obs("b", InstanceState::Lost);
        let r = reconcile(&want(2), &[alive, gone], 0);
        assert_eq!(
            r.actions,
            [
                Action::Adopt { id: "a".into() },
                Action::Forget { id: "b".into() },
                Action::Start { service: "epg".into(), component: "renderer".into(), count: 1 }
            ]
        );
    }

    #[test]
    fn failed_instances_restart_after_their_backoff() {
        let mut f = obs("a", InstanceState::Failed);
        f.restart_at = Some(1000);
        let r = reconcile(&want(1), std::slice::from_ref(&f), 500);
        assert!(r.actions.is_empty());
        assert_eq!(r.wake_at, Some(1000));
        assert_eq!(r.groups["epg/renderer"].backoff, ["a"]);
        let r = reconcile(&want(1), &[f], 1000);
        assert_eq!(r.actions, [Action::Restart { id: "a".into() }]);
    }

    #[test]
    fn scale_in_decommissions_the_instance_with_most_free_slots() {
        let mut a = obs("a", InstanceState::Running);
        a.slots = Some(SlotUsage { max: 10, free: 2 });
        let mut b = obs("b", InstanceState::Running);
        b.slots = Some(SlotUsage { max: 10, free: 9 });
        let r = reconcile(&want(1), &[a, b], 0);
        assert_eq!(r.actions, [Action::Decommission { id: "b".into() }]);
    }

    #[test]
    fn scale_in_prefers_failed_and_provisioning_over_running() {
        let r = reconcile(
            &want(1),
            &[obs("a", InstanceState::Running), obs("b", InstanceState::Provisioning), obs("c", InstanceState::Failed)],
            0,
        );
        assert_eq!(r.actions, [Action::Stop { id: "b".into() }, Action::Stop { id: "c".into() }]);
    }

    #[test]
    fn draining_instances_stop_when_idle_and_come_back_on_demand() {
        let mut busy = obs("a", InstanceState::Decommissioned);
        busy.slots = Some(SlotUsage { max: 10, free: 4 });
        let mut idle = obs("b", InstanceState::Decommissioned);
        idle.slots = Some(SlotUsage { max: 10, free: 10 });
        let r = reconcile(&want(0), &[busy.clone(), idle.clone()], 0);
        assert_eq!(r.actions, [Action::Stop { id: "b".into() }]);
        assert_eq!(r.groups["epg/renderer"].draining, ["a"]);
        let r = reconcile(&want(1), &[busy, idle], 0);
        assert_eq!(r.actions, [Action::Stop { id: "b".into() }, Action::Recommission { id: "a".into() }]);
    }

    #[test]
    fn unwanted_groups_stop_at_once() {
        let mut busy = obs("a", InstanceState::Decommissioned);
        busy.slots = Some(SlotUsage { max: 10, free: 4 });
        let r = reconcile(
            &BTreeMap::new(),
            &[busy, obs("b", InstanceState::Running), obs("c", InstanceState::Terminating)],
            0,
        );
        assert_eq!(r.actions, [Action::Stop { id: "a".into() }, Action::Stop { id: "b".into() }]);
        assert_eq!(r.groups["epg/renderer"].stopping, ["c"]);
    }

    fn state() -> impl Strategy<Value = InstanceState> {
        prop_oneof![
            Just(InstanceState::Provisioning),
            Just(InstanceState::Running),
            Just(InstanceState::Decommissioned),
            Just(InstanceState::Terminating),
            Just(InstanceState::Failed),
            Just(InstanceState::Lost),
        ]
    }

    fn observed() -> impl Strategy<Value = Vec<Observed>> {
        prop::collection::vec(
            (0..2usize, state(), any::<bool>(), 0..2000u64, prop::option::of((1..10u32, 0..10u32))),
            0..12,
        )
        .prop_map(|items| {
            items
                .into_iter()
                .enumerate()
                .map(|(i, (g, state, supervised, at, slots))| Observed {
                    id: format!("i{i:02}"),
                    service: "s".into(),
                    component: ["a", "b"][g].into(),
                    state,
                    supervised,
                    restart_at: Some(at),
                    slots: slots.map(|(max, free)| SlotUsage { max, free: free.min(max) }),
                })
                .collect()
        })
    }

    proptest! {
        // A fixed seed: the same cases on every run (tests are deterministic).
        #![proptest_config(ProptestConfig { rng_seed: proptest::test_runner::RngSeed::Fixed(20261202), ..ProptestConfig::default() })]
        #[test]
        fn converges_and_is_order_independent(obs in observed(), wa in 0..6u32, wb in prop::option::of(0..6u32), now in 0..2000u64, seed in any::<u64>()) {
            let mut desired = BTreeMap::new();
            desired.insert(("s".to_string(), "a".to_string()), wa);
            if let Some(wb) = wb {
                desired.insert(("s".to_string(), "b".to_string()), wb);
            }
            let r = reconcile(&desired, &obs, now);
            // Order independence.
            let mut shuffled = obs.clone();
            let n = shuffled.len();
            if n > 1 {
                for i in 0..n {
                    let j = ((seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64)) % n as u64) as usize;
                    shuffled.swap(i, j);
                }
            }
            prop_assert_eq!(&r, &reconcile(&desired, &shuffled, now));
            // Every instance is in exactly one bucket (adopt may overlap with decommission).
            for (key, b) in &r.groups {
                let mut seen = BTreeSet::new();
                for id in b.keep.iter().chain(&b.restart).chain(&b.backoff).chain(&b.lost).chain(&b.stopping)
                    .chain(&b.draining).chain(&b.stop).chain(&b.decommission).chain(&b.recommission)
                {
                    prop_assert!(seen.insert(id.clone()), "{} twice in {}", id, key);
                }
            }
            // Convergence: after the actions, the live count per wanted group equals the wish.
            for ((svc, comp), want) in &desired {
                let key = format!("{svc}/{comp}");
                let b = &r.groups[&key];
                let live_after = b.keep.len() + b.restart.len() + b.backoff.len() + b.recommission.len()
                    + b.adopt.iter().filter(|id| !b.decommission.contains(id)).count()
                    + b.start as usize;
                prop_assert_eq!(live_after, *want as usize, "group {}", key);
            }
            // Nothing survives in an unwanted group.
            for (key, b) in &r.groups {
                if !desired.keys().any(|(s, c)| format!("{s}/{c}") == *key) {
                    prop_assert!(b.keep.is_empty() && b.adopt.is_empty() && b.restart.is_empty() && b.draining.is_empty() && b.start == 0);
                }
            }
            // Lost instances are always forgotten; terminating ones never touched.
            for o in &obs {
                let touched = r.actions.iter().any(|a| matches!(a,
                    Action::Stop { id } | Action::Restart { id } | Action::Decommission { id } | Action::Recommission { id } if *id == o.id));
                if o.state == InstanceState::Terminating { prop_assert!(!touched); }
                if o.state == InstanceState::Lost {
                    let forgotten = r.actions.contains(&Action::Forget { id: o.id.clone() });
                    prop_assert!(forgotten);
                }
            }
        }
    }
}
