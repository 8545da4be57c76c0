//! The depth-first fallback for when both greedy orders get stuck: zone domains kept arc
//! consistent, most constrained component first, hosts in the greedy's ranking, within
//! [`BACKTRACK_TRIES`] host tries.

use super::state::Search;

/// Host tries of the greedy's depth-first fallback ([`Search::backtrack`]) before it gives up.
pub(super) const BACKTRACK_TRIES: usize = 5_000;

impl Search<'_, '_> {
    /// Whether `t` in zone `zt` and `o` in zone `zo` can meet route `r`'s latency bound: the
    /// shortest-path delay is a lower bound on any route's, so `false` rules the pair out.
    fn reachable(&self, r: usize, t: usize, zt: usize, zo: usize) -> bool {
        let rt = &self.m.routes[r];
        let d = if rt.from == t { self.m.p.zone_delay[zt][zo] } else { self.m.p.zone_delay[zo][zt] };
        d <= rt.max + 1e-9
    }

    /// Depth-first search with forward checking, for when both greedy orders get stuck. Each
    /// component keeps a domain of zones, first made arc consistent over the channels' latency
    /// bounds; the search places the component with the fewest zones left (most constrained
    /// first), tries its hosts in the greedy's ranking, and after each choice restores arc
    /// consistency over every unplaced component (zones out of latency reach of a neighbour's
    /// domain, or without a host that still fits, drop out); an empty domain undoes the choice
    /// at once. Dense meshes under tight delay bounds
    /// need it (VNMP's VoIP slices: an early choice can leave a later component no host within
    /// reach of all its neighbours). Gives up after `budget` host tries.
    pub(super) fn backtrack(&mut self, budget: &mut usize) -> bool {
        let m = self.m;
        let n = m.n();
        for t in 0..n {
            if let Some((z, h)) = m.fixed[t] {
                self.st.zone[t] = Some(z);
                self.st.host[t] = h;
            }
        }
        for t in 0..n {
            if m.fixed[t].is_some() && self.route_incident(t).is_none() {
                return false;
            }
        }
        let mut dom: Vec<Vec<usize>> =
            (0..n).map(|t| self.st.zone[t].map_or_else(|| m.zones[t].clone(), |z| vec![z])).collect();
        self.consistent(&mut dom) && self.forward(&dom, budget)
    }

    /// Narrows the unplaced components' domains to arc consistency: a zone stays only if it
    /// has a host that fits the component now and every channel can reach some zone of the
    /// other end's domain within its latency bound. False when a domain empties.
    fn consistent(&mut self, dom: &mut [Vec<usize>]) -> bool {
        let m = self.m;
        let n = m.n();
        for t in (0..n).filter(|&t| self.st.zone[t].is_none()) {
            dom[t].retain(|&z| m.cands[t].iter().any(|&h| m.p.hosts[h].zone == z && self.fits(t, h)));
            // Channels to placed components must have a route now, with the bandwidth left.
            for &r in &m.incident[t] {
                let Some(zo) = self.st.zone[m.other(r, t)] else { continue };
                let rt = &m.routes[r];
                let arc_free = &self.st.arc_free;
                let router = &mut *self.router;
                dom[t].retain(|&z| {
                    let (a, b) = if rt.from == t { (z, zo) } else { (zo, z) };
                    router.route(a, b, rt.bw, rt.rev_bw, rt.max, arc_free).is_some()
                });
            }
            if dom[t].is_empty() {
                return false;
            }
        }
        let mut changed = true;
        while changed {
            changed = false;
            for t in (0..n).filter(|&t| self.st.zone[t].is_none()) {
                let before = dom[t].len();
                let kept: Vec<usize> = dom[t]
                    .iter()
                    .copied()
                    .filter(|&zt| {
                        m.incident[t].iter().all(|&r| {
                            let o = m.other(r, t);
                            o == t || dom[o].iter().any(|&zo| self.reachable(r, t, zt, zo))
                        })
                    })
                    .collect();
                if kept.is_empty() {
                    return false;
                }
                if kept.len() < before {
                    dom[t] = kept;
                    changed = true;
                }
            }
        }
        true
    }

    fn forward(&mut self, dom: &[Vec<usize>], budget: &mut usize) -> bool {
        let m = self.m;
        // Most constrained first; ties to the one with more placed neighbours, then index.
        let next = (0..m.n()).filter(|&t| self.st.zone[t].is_none()).min_by_key(|&t| {
            let placed = m.incident[t].iter().filter(|&&r| self.st.zone[m.other(r, t)].is_some()).count();
            (dom[t].len(), std::cmp::Reverse(placed), t)
        });
        let Some(t) = next else { return true };
        for h in self.scored_hosts(t) {
            let z = m.p.hosts[h].zone;
            if dom[t].binary_search(&z).is_err() {
                continue;
            }
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            self.put(t, h);
            if let Some(routed) = self.route_incident(t) {
                let mut narrowed = dom.to_vec();
                narrowed[t] = vec![z];
                let alive = self.consistent(&mut narrowed);
                if alive && self.forward(&narrowed, budget) {
                    return true;
                }
                for r in routed {
                    self.unroute(r);
                }
            }
            self.take(t);
        }
        false
    }
}
