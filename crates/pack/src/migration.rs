//! Ordered migration plans and their independent checker.
//!
//! A consolidation target says where every instance should end up; applying it means
//! migrating instances one at a time, and each intermediate state must respect every host's
//! capacity — a host receiving an instance before the ones leaving it are gone would be
//! overloaded mid-way.
//!
//! **Ordering** ([`order_migrations`]): repeatedly execute any pending move whose
//! destination has room *now* (moves are tried smallest-first, so big moves wait for room
//! to be freed). A move only frees room at its source, so when no pending move fits, the
//! remaining moves form a cyclic dependency (A waits for B's host, B for A's). It is broken:
//!
//! 1. by a **temporary move** of the smallest pending instance whose departure lets a
//!    blocked move into its host go ahead, to a *spare* host with room now (preferring hosts that are on in both the current and the target state, then hosts
//!    that are on now, then available empty hosts, which are powered on temporarily); the
//!    instance later continues to its target. This costs one extra migration, is done at
//!    most once per instance, and only while the move budget allows it;
//! 2. otherwise by **leaving the instance in place**: its target becomes its current host,
//!    and, if that overfills the host's final state, moves *into* that host are cancelled too
//!    (the cancelled instances stay where they are, and so on). Cancelling everything gives
//!    back the current assignment, so this always terminates.
//!
//! Both are reported ([`MigrationOrder::temporary`], [`MigrationOrder::left_in_place`]).
//!
//! **Capacity during migration** is the hosts' *physical* capacity (100 %); the target
//! utilisation is a policy for the final state, and a host may briefly exceed it while a
//! plan runs. A host that is already over its capacity in the current state (possible after
//! an out-of-band resize) may stay so, but no step may add load to it.
//!
//! **The checker** ([`check_steps`]) shares no code with the ordering: it replays the steps
//! from the current assignment, verifies that each step starts where the instance is, that
//! its destination has room (physical capacity, u128 arithmetic) and exists, and that the
//! final assignment equals the expected one.

use serde::{Deserialize, Serialize};

/// One migration step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub instance: usize,
    pub from: usize,
    pub to: usize,
    /// True when `to` is a temporary stop that breaks a cycle (the instance moves on later).
    pub temporary: bool,
}

/// The ordered steps and what had to give way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationOrder {
    pub steps: Vec<Step>,
    /// Instances that made a temporary stop, with the spare host used.
    pub temporary: Vec<(usize, usize)>,
    /// Instances whose move was cancelled because no safe order existed within the budget.
    pub left_in_place: Vec<usize>,
    /// The final assignment after the steps (the target, less the cancelled moves).
    pub final_assignment: Vec<usize>,
}

/// Inputs of the ordering: physical capacities per host, demand per instance.
pub struct OrderInput<'a> {
    pub capacity: &'a [Vec<u64>],
    /// Hosts that may serve as temporary stops (available hosts).
    pub spare_ok: &'a [bool],
    pub demand: &'a [Vec<u64>],
    pub current: &'a [usize],
    pub target: &'a [usize],
    /// The most steps (real + temporary) the plan may have.
    pub max_steps: usize,
}

fn fits(load: &[u128], d: &[u64], cap: &[u64]) -> bool {
    load.iter().zip(d).zip(cap).all(|((&l, &x), &c)| l + x as u128 <= c as u128)
}

fn add(load: &mut [u128], d: &[u64]) {
    for (l, &x) in load.iter_mut().zip(d) {
        *l += x as u128;
    }
}

fn sub(load: &mut [u128], d: &[u64]) {
    for (l, &x) in load.iter_mut().zip(d) {
        *l -= x as u128;
    }
}

fn loads_of(inp: &OrderInput, assign: &[usize]) -> Vec<Vec<u128>> {
    let dims = inp.capacity.first().map_or(0, Vec::len);
    let mut loads = vec![vec![0u128; dims]; inp.capacity.len()];
    for (i, &h) in assign.iter().enumerate() {
        add(&mut loads[h], &inp.demand[i]);
    }
    loads
}

/// Orders the moves from `current` to `target` (see the module docs).
pub fn order_migrations(inp: &OrderInput) -> MigrationOrder {
    let n = inp.current.len();
    let nh = inp.capacity.len();
    let mut target = inp.target.to_vec();
    let mut pos = inp.current.to_vec();
    let mut loads = loads_of(inp, &pos);
    let mut final_loads = loads_of(inp, &target);
    let mut count_now = vec![0usize; nh];
    let mut count_final = vec![0usize; nh];
    for i in 0..n {
        count_now[pos[i]] += 1;
        count_final[target[i]] += 1;
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut temporary = Vec::new();
    let mut left = Vec::new();
    let size = |i: usize| -> u128 { inp.demand[i].iter().map(|&x| x as u128).sum() };
    let mut pending: Vec<usize> = (0..n).filter(|&i| pos[i] != target[i]).collect();
    pending.sort_by_key(|&i| (size(i), i));
    let real_moves = pending.len();
    let mut stopped = vec![false; n];
    let mut step = |i: usize,
                    to: usize,
                    temp: bool,
                    pos: &mut Vec<usize>,
                    loads: &mut Vec<Vec<u128>>,
                    count_now: &mut Vec<usize>| {
        let from = pos[i];
        sub(&mut loads[from], &inp.demand[i]);
        add(&mut loads[to], &inp.demand[i]);
        count_now[from] -= 1;
        count_now[to] += 1;
        pos[i] = to;
        steps.push(Step { instance: i, from, to, temporary: temp });
    };
    while !pending.is_empty() {
        let mut progress = false;
        let mut kept = Vec::with_capacity(pending.len());
        for &i in &pending {
            let to = target[i];
            if pos[i] == to {
                continue;
            }
            if fits(&loads[to], &inp.demand[i], &inp.capacity[to]) {
                step(i, to, false, &mut pos, &mut loads, &mut count_now);
                progress = true;
            } else {
                kept.push(i);
            }
        }
        pending = kept;
        if progress || pending.is_empty() {
            continue;
        }
        // Deadlock: give a temporary stop to the smallest instance whose departure lets a
        // blocked move into its host go ahead (each instance stops at most once).
        let budget_left = inp.max_steps.saturating_sub(real_moves + temporary.len());
        let mut broke = false;
        if budget_left > 0 {
            let mut incoming: std::collections::HashMap<usize, Vec<usize>> = std::collections::HashMap::new();
            for &j in &pending {
                incoming.entry(target[j]).or_default().push(j);
            }
            'outer: for &i in &pending {
                if stopped[i] {
                    continue;
                }
                let x = pos[i];
                let unblocks = incoming.get(&x).is_some_and(|js| {
                    js.iter().any(|&j| {
                        (0..inp.demand[j].len()).all(|k| {
                            loads[x][k] - inp.demand[i][k] as u128 + inp.demand[j][k] as u128
                                <= inp.capacity[x][k] as u128
                        })
                    })
                });
                if !unblocks {
                    continue;
                }
                let mut best: Option<(u8, usize)> = None;
                for h in 0..nh {
                    if h == pos[i] || h == target[i] || !inp.spare_ok[h] {
                        continue;
                    }
                    if !fits(&loads[h], &inp.demand[i], &inp.capacity[h]) {
                        continue;
                    }
                    let rank = match (count_now[h] > 0, count_final[h] > 0) {
                        (true, true) => 0,
                        (true, false) => 1,
                        _ => 2,
                    };
                    if best.is_none_or(|(r, _)| rank < r) {
                        best = Some((rank, h));
                        if rank == 0 {
                            break;
                        }
                    }
                }
                if let Some((_, h)) = best {
                    step(i, h, true, &mut pos, &mut loads, &mut count_now);
                    temporary.push((i, h));
                    stopped[i] = true;
                    broke = true;
                    break 'outer;
                }
            }
        }
        if broke {
            continue;
        }
        // Leave the smallest blocked instance in place, cancelling moves into its host
        // while that host's final state would be overfull.
        let mut work = vec![pending[0]];
        while let Some(j) = work.pop() {
            if target[j] == pos[j] {
                continue;
            }
            let old = target[j];
            sub(&mut final_loads[old], &inp.demand[j]);
            count_final[old] -= 1;
            target[j] = pos[j];
            let h = pos[j];
            add(&mut final_loads[h], &inp.demand[j]);
            count_final[h] += 1;
            left.push(j);
            // Incoming instances not yet arrived, largest first.
            let mut incoming: Vec<usize> = pending.iter().copied().filter(|&x| target[x] == h && pos[x] != h).collect();
            incoming.sort_by_key(|&x| std::cmp::Reverse((size(x), x)));
            let cap = &inp.capacity[h];
            let mut fl = final_loads[h].clone();
            for x in incoming {
                if fl.iter().zip(cap).all(|(&l, &c)| l <= c as u128) {
                    break;
                }
                sub(&mut fl, &inp.demand[x]);
                work.push(x);
            }
        }
        pending.retain(|&x| pos[x] != target[x]);
    }
    MigrationOrder { steps, temporary, left_in_place: left, final_assignment: pos }
}

/// Something wrong with a migration plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanViolation {
    /// Step `step` moves an instance that is not where the step says.
    WrongSource { step: usize, instance: usize, expected: usize, actual: usize },
    /// Step `step` refers to an instance or host that does not exist.
    Unknown { step: usize },
    /// After step `step`, host `host` exceeds its capacity in dimension `dim`.
    Overload { step: usize, host: usize, dim: usize, load: u128, capacity: u64 },
    /// The final assignment differs from the expected one for `instance`.
    FinalMismatch { instance: usize, expected: usize, actual: usize },
    /// A pinned instance is moved.
    PinnedMoved { step: usize, instance: usize },
    /// An instance is moved onto an unavailable host.
    Unavailable { step: usize, host: usize },
    /// The plan exceeds the migration budget.
    OverBudget { what: String },
}

impl std::fmt::Display for PlanViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanViolation::WrongSource { step, instance, expected, actual } => write!(
                f,
                "step {step}: instance {instance} is on host {actual}, the step moves it from host {expected}"
            ),
            PlanViolation::Unknown { step } => write!(f, "step {step}: unknown instance or host"),
            PlanViolation::Overload { step, host, dim, load, capacity } => {
                write!(f, "after step {step}: host {host} dimension {dim} holds {load} > capacity {capacity}")
            }
            PlanViolation::FinalMismatch { instance, expected, actual } => {
                write!(f, "instance {instance} ends on host {actual}, the plan's target is host {expected}")
            }
            PlanViolation::PinnedMoved { step, instance } => {
                write!(f, "step {step}: instance {instance} is pinned and must not move")
            }
            PlanViolation::Unavailable { step, host } => write!(f, "step {step}: host {host} is not available"),
            PlanViolation::OverBudget { what } => write!(f, "over the migration budget: {what}"),
        }
    }
}

/// Replays `steps` from `current` with physical `capacity` and returns the final
/// assignment, or every violation found. A host already over capacity in `current` is only
/// flagged when a step adds load to it.
pub fn check_steps(
    capacity: &[Vec<u64>],
    demand: &[Vec<u64>],
    current: &[usize],
    steps: &[Step],
    expected_final: &[usize],
) -> Result<Vec<usize>, Vec<PlanViolation>> {
    let mut errors = Vec::new();
    let hosts = capacity.len();
    let mut pos = current.to_vec();
    let mut load: Vec<Vec<u128>> = capacity.iter().map(|c| vec![0u128; c.len()]).collect();
    for (i, &h) in pos.iter().enumerate() {
        if h >= hosts || demand[i].len() != capacity[h].len() {
            errors.push(PlanViolation::Unknown { step: 0 });
            return Err(errors);
        }
        for (k, &x) in demand[i].iter().enumerate() {
            load[h][k] += x as u128;
        }
    }
    for (s, st) in steps.iter().enumerate() {
        if st.instance >= pos.len() || st.to >= hosts || st.from >= hosts {
            errors.push(PlanViolation::Unknown { step: s });
            continue;
        }
        if pos[st.instance] != st.from {
            errors.push(PlanViolation::WrongSource {
                step: s,
                instance: st.instance,
                expected: st.from,
                actual: pos[st.instance],
            });
            continue;
        }
        let d = &demand[st.instance];
        for (k, &x) in d.iter().enumerate() {
            load[st.from][k] -= x as u128;
            load[st.to][k] += x as u128;
        }
        pos[st.instance] = st.to;
        for (k, &l) in load[st.to].iter().enumerate() {
            if l > capacity[st.to][k] as u128 && d[k] > 0 {
                errors.push(PlanViolation::Overload {
                    step: s,
                    host: st.to,
                    dim: k,
                    load: l,
                    capacity: capacity[st.to][k],
                });
            }
        }
    }
    for (i, (&a, &e)) in pos.iter().zip(expected_final).enumerate() {
        if a != e {
            errors.push(PlanViolation::FinalMismatch { instance: i, expected: e, actual: a });
        }
    }
    if errors.is_empty() {
        Ok(pos)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cap: &[Vec<u64>], dem: &[Vec<u64>], cur: &[usize], tgt: &[usize], max: usize) -> MigrationOrder {
        let spare = vec![true; cap.len()];
        order_migrations(&OrderInput {
            capacity: cap,
            spare_ok: &spare,
            demand: dem,
            current: cur,
            target: tgt,
            max_steps: max,
        })
    }

    #[test]
    fn orders_a_chain() {
        // Host 1 is full; instance 0 (on 0) must wait until instance 1 leaves host 1 for host 2.
        let cap = vec![vec![10], vec![10], vec![10]];
        let dem = vec![vec![6], vec![6]];
        let o = run(&cap, &dem, &[0, 1], &[1, 2], 10);
        assert_eq!(o.steps.len(), 2);
        assert_eq!(o.steps[0].instance, 1);
        check_steps(&cap, &dem, &[0, 1], &o.steps, &[1, 2]).unwrap();
    }

    #[test]
    fn breaks_a_swap_with_a_spare() {
        // Swap two 6s between two full hosts: needs a temporary stop on host 2.
        let cap = vec![vec![10], vec![10], vec![10]];
        let dem = vec![vec![6], vec![6]];
        let o = run(&cap, &dem, &[0, 1], &[1, 0], 10);
        assert_eq!(o.temporary.len(), 1);
        assert_eq!(o.steps.len(), 3);
        assert!(o.left_in_place.is_empty());
        check_steps(&cap, &dem, &[0, 1], &o.steps, &[1, 0]).unwrap();
    }

    #[test]
    fn leaves_a_cycle_in_place_without_spare_room() {
        let cap = vec![vec![10], vec![10]];
        let dem = vec![vec![6], vec![6]];
        let o = run(&cap, &dem, &[0, 1], &[1, 0], 10);
        assert_eq!(o.left_in_place.len(), 2);
        assert!(o.steps.is_empty());
        assert_eq!(o.final_assignment, vec![0, 1]);
        check_steps(&cap, &dem, &[0, 1], &o.steps, &o.final_assignment).unwrap();
    }

    #[test]
    fn checker_catches_overload_and_mismatch() {
        let cap = vec![vec![10], vec![10]];
        let dem = vec![vec![6], vec![6]];
        let bad = [Step { instance: 0, from: 0, to: 1, temporary: false }];
        let e = check_steps(&cap, &dem, &[0, 1], &bad, &[1, 1]).unwrap_err();
        assert!(matches!(e[0], PlanViolation::Overload { .. }));
        let e = check_steps(&cap, &dem, &[0, 1], &[], &[1, 1]).unwrap_err();
        assert!(matches!(e[0], PlanViolation::FinalMismatch { .. }));
        let wrong = [Step { instance: 0, from: 1, to: 0, temporary: false }];
        assert!(matches!(
            check_steps(&cap, &dem, &[0, 1], &wrong, &[0, 1]).unwrap_err()[0],
            PlanViolation::WrongSource { .. }
        ));
    }
}
