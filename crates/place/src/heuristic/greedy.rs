//! The greedy placer and its tree look-ahead: the breadth-first order from the fixed
//! components, the tree dynamic programme `togo` over candidate zones, the host scoring, and
//! the greedy in its two orders (falling back to [`super::fallback`] when both get stuck).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::error::{reason, ConstraintFamily, PlaceError};

use super::fallback::BACKTRACK_TRIES;
use super::model::Model;
use super::state::Search;

impl Model<'_> {
    /// The tree programme's least delay of child `c`'s subtree, reached over route `r`, when
    /// its parent `t` sits in `zone` (∞ when no zone of `c` meets the route's latency bound).
    fn subtree_delay(&self, t: usize, zone: usize, c: usize, r: usize) -> f64 {
        let rt = &self.routes[r];
        self.zones[c]
            .iter()
            .zip(&self.togo[c])
            .map(|(&zc, &g)| {
                let (a, b) = if rt.from == t { (zone, zc) } else { (zc, zone) };
                let d = self.p.zone_delay[a][b];
                if d > rt.max + 1e-9 {
                    f64::INFINITY
                } else {
                    rt.mult() * d + g
                }
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// Breadth-first order from the fixed components and the tree dynamic programme.
    pub(super) fn tree(&mut self) {
        let n = self.n();
        let p = self.p;
        let mut seen = vec![false; n];
        let starts: Vec<usize> =
            (0..n).filter(|&t| self.fixed[t].is_some()).chain((0..n).filter(|&t| self.fixed[t].is_none())).collect();
        for s0 in starts {
            if seen[s0] {
                continue;
            }
            seen[s0] = true;
            self.roots.push(s0);
            let mut queue = VecDeque::from([s0]);
            while let Some(u) = queue.pop_front() {
                self.order.push(u);
                for &r in &self.incident[u] {
                    let v = self.other(r, u);
                    if !seen[v] {
                        seen[v] = true;
                        self.children[u].push((v, r));
                        queue.push_back(v);
                    }
                }
            }
        }
        self.zones = (0..n)
            .map(|t| match self.fixed[t] {
                Some((z, _)) => vec![z],
                None => self.cands[t].iter().map(|&h| p.hosts[h].zone).collect::<BTreeSet<_>>().into_iter().collect(),
            })
            .collect();
        self.togo = self.zones.iter().map(|zs| vec![0.0; zs.len()]).collect();
        for &t in self.order.iter().rev() {
            for (i, &z) in self.zones[t].iter().enumerate() {
                let mut sum = 0.0;
                for &(c, r) in &self.children[t] {
                    sum += self.subtree_delay(t, z, c, r);
                }
                self.togo[t][i] = sum;
            }
        }
    }
}

impl Search<'_, '_> {
    /// Look-ahead of `t` in `zone`: the tree programme's least delay of each child subtree
    /// not placed yet (placed children count through their routed channels instead).
    fn ahead(&self, t: usize, zone: usize) -> f64 {
        let m = self.m;
        let mut sum = 0.0;
        for &(c, r) in &m.children[t] {
            if self.st.zone[c].is_some() {
                continue;
            }
            sum += m.subtree_delay(t, zone, c, r);
        }
        sum
    }

    /// The greedy in two orders: pinned (single-zone) components right after the fixed ones,
    /// then breadth-first — so a pinned component's host is not filled by its neighbours
    /// first; if that gets stuck, most constrained (fewest candidate hosts) first.
    pub(super) fn greedy(&mut self) -> Result<(), PlaceError> {
        let m = self.m;
        let single = |t: usize| m.fixed[t].is_none() && m.zones[t].len() == 1;
        let first: Vec<usize> = m
            .order
            .iter()
            .copied()
            .filter(|&t| m.fixed[t].is_some())
            .chain(m.order.iter().copied().filter(|&t| single(t)))
            .chain(m.order.iter().copied().filter(|&t| m.fixed[t].is_none() && !single(t)))
            .collect();
        let start = self.st.clone();
        let err = match self.greedy_in(&first) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        self.st = start.clone();
        let mut second = first.clone();
        // Stable: ties keep the first order.
        second.sort_by_key(|&t| if m.fixed[t].is_some() { 0 } else { m.cands[t].len() });
        if self.greedy_in(&second).is_ok() {
            return Ok(());
        }
        self.st = start.clone();
        let mut budget = BACKTRACK_TRIES;
        if self.backtrack(&mut budget) {
            self.backtracked = true;
            return Ok(());
        }
        self.st = start;
        Err(err)
    }

    fn greedy_in(&mut self, order: &[usize]) -> Result<(), PlaceError> {
        let m = self.m;
        for &t in order {
            if let Some((z, h)) = m.fixed[t] {
                self.st.zone[t] = Some(z);
                self.st.host[t] = h;
                for &r in &m.incident[t] {
                    if self.st.path[r].is_none() && !self.route(r) {
                        return Err(self.stuck(t));
                    }
                }
                continue;
            }
            // Score every candidate host, then commit the best one whose routes fit together.
            let mut placed = false;
            for h in self.scored_hosts(t) {
                self.put(t, h);
                if self.route_incident(t).is_some() {
                    placed = true;
                    break;
                }
                self.take(t);
            }
            if !placed {
                return Err(self.stuck(t));
            }
        }
        Ok(())
    }

    /// The candidate hosts of unplaced component `t` that fit, respect (anti-)affinity and
    /// reach every placed neighbour within bandwidth and max latency, best first: objective
    /// estimate (routed delay to placed neighbours + look-ahead + weight if newly used),
    /// then the shorter routes to what is placed, then total delay, then hosts already used.
    pub(super) fn scored_hosts(&mut self, t: usize) -> Vec<usize> {
        let m = self.m;
        let p = m.p;
        {
            let mut scored: Vec<(i64, i64, i64, bool, usize)> = Vec::new();
            let mut ahead_of: BTreeMap<usize, f64> = BTreeMap::new();
            for &h in &m.cands[t] {
                if !self.fits(t, h) {
                    continue;
                }
                let z = p.hosts[h].zone;
                if m.anti[t].iter().any(|&o| self.st.host[o] == Some(h))
                    || m.affine[t].iter().any(|&o| self.st.zone[o].is_some_and(|oz| oz != z))
                {
                    continue;
                }
                let mut delay = 0.0;
                let mut feasible = true;
                for &r in &m.incident[t] {
                    let o = m.other(r, t);
                    let Some(oz) = self.st.zone[o] else { continue };
                    let rt = &m.routes[r];
                    let (a, b) = if rt.from == t { (z, oz) } else { (oz, z) };
                    match self.router.route(a, b, rt.bw, rt.rev_bw, rt.max, &self.st.arc_free) {
                        Some(pth) => delay += rt.mult() * pth.delay,
                        None => {
                            feasible = false;
                            break;
                        }
                    }
                }
                let ahead = match ahead_of.get(&z) {
                    Some(&a) => a,
                    None => {
                        let a = self.ahead(t, z);
                        ahead_of.insert(z, a);
                        a
                    }
                };
                if !feasible || !ahead.is_finite() {
                    continue;
                }
                let fresh = if self.st.count[h] == 0 { m.weight[h] } else { 0.0 };
                // Objective estimate first (rounded to 1e-6, so float noise does not decide),
                // then the shorter routes to what is placed (defer commitments the look-ahead
                // cannot see capacity for), then total delay, then hosts already used.
                let key = |x: f64| (x * 1e6).round() as i64;
                scored.push((
                    key(m.wd * (delay + ahead) + m.ws * fresh),
                    key(delay),
                    key(delay + ahead),
                    self.st.count[h] == 0,
                    h,
                ));
            }
            scored.sort();
            scored.into_iter().map(|(.., h)| h).collect()
        }
    }

    /// Routes every unrouted channel of `t` whose other end is placed; on failure undoes
    /// what it routed and returns `None`, else the routes it added.
    pub(super) fn route_incident(&mut self, t: usize) -> Option<Vec<usize>> {
        let mut routed = Vec::new();
        for &r in &self.m.incident[t] {
            if self.st.path[r].is_none() {
                if self.route(r) {
                    routed.push(r);
                } else {
                    for r in routed {
                        self.unroute(r);
                    }
                    return None;
                }
            }
        }
        Some(routed)
    }

    fn stuck(&self, t: usize) -> PlaceError {
        let s = &self.m.p.services[self.m.si].service;
        PlaceError::Infeasible {
            reasons: vec![reason(
                ConstraintFamily::Other,
                vec![s.name.clone(), self.m.request.id.clone(), s.components[t].name.clone()],
                format!(
                    "the greedy placer found no candidate host for component {:?} whose capacity, anti-affinity and channel routes (bandwidth, max latency) fit with the components placed before it; the exact chain ILP may still find a placement",
                    s.components[t].name
                ),
            )],
        }
    }
}
