//! The local search: first-improvement over five neighbourhoods (move, swap, zone shift, host
//! merge, re-route) chosen by a seeded SplitMix64 generator; a move is kept only when the
//! objective strictly improves.

use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use super::routing::ZPath;
use super::state::Search;
use super::HeuristicOptions;

/// Where a move sends a component.
#[derive(Clone, Copy)]
enum Target {
    Host(usize),
    /// Any candidate host in this zone (one already used first, then in index order).
    Zone(usize),
}

impl Search<'_, '_> {
    /// Applies `changes` and re-routes `extra` routes and every route they touch; keeps the
    /// result when feasible and strictly better, else restores the previous state.
    fn try_change(&mut self, changes: &[(usize, Target)], extra: &[usize]) -> bool {
        let before = self.objective();
        let saved_hosts: Vec<(usize, Option<usize>)> = changes.iter().map(|&(t, _)| (t, self.st.host[t])).collect();
        let mut affected: BTreeSet<usize> = extra.iter().copied().collect();
        for &(t, _) in changes {
            affected.extend(self.m.incident[t].iter().copied());
        }
        let saved_paths: Vec<(usize, Option<Rc<ZPath>>)> =
            affected.iter().map(|&r| (r, self.st.path[r].clone())).collect();
        for &r in &affected {
            self.unroute(r);
        }
        for &(t, _) in changes {
            self.take(t);
        }
        let mut ok = true;
        for &(t, target) in changes {
            let h = match target {
                Target::Host(h) => (self.m.cands[t].contains(&h) && self.fits(t, h)).then_some(h),
                Target::Zone(z) => self.pick_in_zone(t, z),
            };
            match h {
                Some(h) => self.put(t, h),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            ok = changes.iter().all(|&(t, _)| self.relations_ok(t));
        }
        if ok {
            for &r in &affected {
                if !self.route(r) {
                    ok = false;
                    break;
                }
            }
        }
        if ok && self.objective() < before - 1e-9 * before.abs().max(1.0) {
            return true;
        }
        // Restore.
        for &r in &affected {
            self.unroute(r);
        }
        for &(t, _) in changes {
            self.take(t);
        }
        for &(t, h) in &saved_hosts {
            if let Some(h) = h {
                self.put(t, h);
            }
        }
        for (r, pth) in saved_paths {
            if let Some(pth) = pth {
                self.reserve(r, &pth, 1.0);
                self.st.path[r] = Some(pth);
            }
        }
        false
    }

    /// Local search; returns (iterations, improving moves).
    pub(super) fn improve(&mut self, options: &HeuristicOptions) -> (usize, usize) {
        let m = self.m;
        let movable: Vec<usize> = (0..m.n()).filter(|&t| m.fixed[t].is_none() && !m.cands[t].is_empty()).collect();
        if movable.is_empty() || options.max_iterations == 0 {
            return (0, 0);
        }
        let routed: Vec<usize> = (0..m.routes.len()).collect();
        let mut rng = crate::rng::SplitMix64(options.seed ^ 0x5A17_0000_0000_0001);
        let started = Instant::now();
        let stall_limit = (20 * (movable.len() + m.routes.len())).max(200);
        let (mut it, mut improved, mut stall) = (0usize, 0usize, 0usize);
        while it < options.max_iterations && stall < stall_limit {
            if it % 64 == 0 && options.time_budget.is_some_and(|b| started.elapsed() >= b) {
                break;
            }
            it += 1;
            let kind = rng.below(10);
            let ok = match kind {
                // Move one component.
                0..=3 => {
                    let t = movable[rng.below(movable.len())];
                    let cands = &m.cands[t];
                    let h = if rng.below(2) == 0 {
                        cands[rng.below(cands.len())]
                    } else {
                        // A host a neighbour or another component already uses.
                        let used: Vec<usize> = cands
                            .iter()
                            .copied()
                            .filter(|&h| self.st.count[h] > 0 && Some(h) != self.st.host[t])
                            .collect();
                        if used.is_empty() {
                            cands[rng.below(cands.len())]
                        } else {
                            used[rng.below(used.len())]
                        }
                    };
                    Some(h) != self.st.host[t] && self.try_change(&[(t, Target::Host(h))], &[])
                }
                // Swap two components.
                4 | 5 => {
                    let (a, b) = (movable[rng.below(movable.len())], movable[rng.below(movable.len())]);
                    match (self.st.host[a], self.st.host[b]) {
                        (Some(ha), Some(hb)) if ha != hb && m.cands[a].contains(&hb) && m.cands[b].contains(&ha) => {
                            self.try_change(&[(a, Target::Host(hb)), (b, Target::Host(ha))], &[])
                        }
                        _ => false,
                    }
                }
                // Shift a connected run of components sharing a zone to another zone.
                6 | 7 => {
                    let t = movable[rng.below(movable.len())];
                    let zs = &m.zones[t];
                    let target = zs[rng.below(zs.len())];
                    match self.st.zone[t] {
                        Some(z) if z != target => {
                            let run = self.run_in_zone(t, z);
                            let changes: Vec<(usize, Target)> =
                                run.iter().map(|&c| (c, Target::Zone(target))).collect();
                            self.try_change(&changes, &[])
                        }
                        _ => false,
                    }
                }
                // Merge one used host onto another.
                8 => {
                    let used: Vec<usize> = m.host_list.iter().copied().filter(|&h| self.st.count[h] > 0).collect();
                    if used.len() < 2 {
                        false
                    } else {
                        let (a, b) = (used[rng.below(used.len())], used[rng.below(used.len())]);
                        let on_a: Vec<usize> =
                            movable.iter().copied().filter(|&t| self.st.host[t] == Some(a)).collect();
                        a != b && {
                            let changes: Vec<(usize, Target)> = on_a.iter().map(|&t| (t, Target::Host(b))).collect();
                            self.try_change(&changes, &[])
                        }
                    }
                }
                // Re-route one channel.
                _ if routed.is_empty() => false,
                _ => {
                    let r = routed[rng.below(routed.len())];
                    self.try_change(&[], &[r])
                }
            };
            if ok {
                improved += 1;
                stall = 0;
            } else {
                stall += 1;
            }
        }
        (it, improved)
    }

    /// Non-fixed components connected to `t` through channels, all in zone `z`.
    fn run_in_zone(&self, t: usize, z: usize) -> Vec<usize> {
        let m = self.m;
        let mut seen = BTreeSet::from([t]);
        let mut queue = VecDeque::from([t]);
        while let Some(u) = queue.pop_front() {
            for &r in &m.incident[u] {
                let v = m.other(r, u);
                if m.fixed[v].is_none() && self.st.zone[v] == Some(z) && seen.insert(v) {
                    queue.push_back(v);
                }
            }
        }
        seen.into_iter().collect()
    }
}
