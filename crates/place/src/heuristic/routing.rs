//! Routing: Yen's k shortest loop-free paths on the zone graph (cached per zone pair), and the
//! bandwidth-aware choice of a channel's route (the fastest of the `k` with the bandwidth left
//! in both directions and within the channel's max latency, else a bandwidth-filtered shortest
//! path). Bandwidth itself is reserved by the caller ([`super::state::Search::reserve`]).

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use crate::problem::Problem;

/// A loop-free path on the zone graph.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ZPath {
    pub(crate) zones: Vec<usize>,
    /// Arc indices as in [`crate::chain::Residual::arc_free`].
    pub(crate) arcs: Vec<usize>,
    pub(crate) delay: f64,
}

/// k-shortest loop-free paths per zone pair (Yen), cached, plus a bandwidth-aware choice.
pub(crate) struct Router {
    /// Per zone: (neighbour, arc, delay). Only the first link of a zone pair is used, as the
    /// checker and [`crate::chain::consume`] do.
    adj: Vec<Vec<(usize, usize, f64)>>,
    k: usize,
    cache: BTreeMap<(usize, usize), Vec<Rc<ZPath>>>,
    /// Plain shortest path per zone pair, from one shortest-path tree per source zone.
    shortest: BTreeMap<(usize, usize), Option<Rc<ZPath>>>,
    trees: BTreeMap<usize, Vec<Option<(usize, usize)>>>,
}

/// A Dijkstra heap entry: smallest distance first, ties to the smaller zone index.
#[derive(Clone, Copy, PartialEq)]
struct Item {
    dist: f64,
    zone: usize,
}
impl Eq for Item {}
impl Ord for Item {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.dist.total_cmp(&self.dist).then_with(|| other.zone.cmp(&self.zone))
    }
}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

const BW_TOL: f64 = 1e-9;

impl Router {
    pub(crate) fn new(p: &Problem, k: usize) -> Router {
        let mut adj = vec![Vec::new(); p.zones.len()];
        let mut seen = BTreeSet::new();
        for (li, l) in p.links.iter().enumerate() {
            if l.a == l.b || !seen.insert((l.a.min(l.b), l.a.max(l.b))) {
                continue;
            }
            adj[l.a].push((l.b, 2 * li, l.delay_ms));
            adj[l.b].push((l.a, 2 * li + 1, l.delay_ms));
        }
        for a in &mut adj {
            a.sort_by_key(|x| x.0);
        }
        Router { adj, k: k.max(1), cache: BTreeMap::new(), shortest: BTreeMap::new(), trees: BTreeMap::new() }
    }

    /// Dijkstra from `a` (to `b`, or to every zone when `b` is `None`) avoiding banned zones
    /// and arcs and arcs `usable` rejects; ties broken by zone index, so it is deterministic.
    /// Returns each zone's predecessor (zone, arc) and distance.
    fn search(
        &self,
        a: usize,
        b: Option<usize>,
        banned_zone: &[bool],
        banned_arc: &BTreeSet<usize>,
        usable: &dyn Fn(usize) -> bool,
    ) -> (Vec<f64>, Vec<Option<(usize, usize)>>) {
        let n = self.adj.len();
        let mut dist = vec![f64::INFINITY; n];
        let mut pred: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut heap = std::collections::BinaryHeap::new();
        dist[a] = 0.0;
        heap.push(Item { dist: 0.0, zone: a });
        while let Some(Item { dist: d, zone: u }) = heap.pop() {
            if d > dist[u] {
                continue;
            }
            if Some(u) == b {
                break;
            }
            for &(v, arc, w) in &self.adj[u] {
                if banned_zone[v] || banned_arc.contains(&arc) || !usable(arc) {
                    continue;
                }
                let nd = d + w;
                if nd < dist[v] {
                    dist[v] = nd;
                    pred[v] = Some((u, arc));
                    heap.push(Item { dist: nd, zone: v });
                }
            }
        }
        (dist, pred)
    }

    /// Walks `pred` back from `b` to `a`.
    fn walk(&self, a: usize, b: usize, pred: &[Option<(usize, usize)>]) -> Option<ZPath> {
        let mut zones = vec![b];
        let mut arcs = Vec::new();
        let mut cur = b;
        while cur != a {
            let (u, arc) = pred[cur]?;
            zones.push(u);
            arcs.push(arc);
            cur = u;
            if zones.len() > self.adj.len() {
                return None;
            }
        }
        zones.reverse();
        arcs.reverse();
        let delay = self.path_delay(&arcs, &zones);
        Some(ZPath { zones, arcs, delay })
    }

    fn dijkstra(
        &self,
        a: usize,
        b: usize,
        banned_zone: &[bool],
        banned_arc: &BTreeSet<usize>,
        usable: &dyn Fn(usize) -> bool,
    ) -> Option<ZPath> {
        let (_, pred) = self.search(a, Some(b), banned_zone, banned_arc, usable);
        self.walk(a, b, &pred)
    }

    /// The shortest path from `a` to `b` ignoring bandwidth (one tree per source, cached).
    fn shortest(&mut self, a: usize, b: usize) -> Option<Rc<ZPath>> {
        if let Some(p) = self.shortest.get(&(a, b)) {
            return p.clone();
        }
        if !self.trees.contains_key(&a) {
            let (_, pred) = self.search(a, None, &vec![false; self.adj.len()], &BTreeSet::new(), &|_| true);
            self.trees.insert(a, pred);
        }
        let pth = self.trees.get(&a).and_then(|pred| self.walk(a, b, pred)).map(Rc::new);
        self.shortest.insert((a, b), pth.clone());
        pth
    }

    fn path_delay(&self, arcs: &[usize], zones: &[usize]) -> f64 {
        arcs.iter().zip(zones).map(|(&arc, &z)| self.adj[z].iter().find(|e| e.1 == arc).map_or(0.0, |e| e.2)).sum()
    }

    /// Yen's k shortest loop-free paths from `a` to `b` (`a ≠ b`), fastest first.
    pub(super) fn k_shortest(&mut self, a: usize, b: usize) -> &[Rc<ZPath>] {
        if !self.cache.contains_key(&(a, b)) {
            let paths = self.yen(a, b);
            self.cache.insert((a, b), paths);
        }
        self.cache.get(&(a, b)).map_or(&[], Vec::as_slice)
    }

    fn yen(&self, a: usize, b: usize) -> Vec<Rc<ZPath>> {
        let n = self.adj.len();
        let no_zone = vec![false; n];
        let mut found: Vec<ZPath> = Vec::new();
        if let Some(first) = self.dijkstra(a, b, &no_zone, &BTreeSet::new(), &|_| true) {
            found.push(first);
        }
        let mut pool: Vec<ZPath> = Vec::new();
        while !found.is_empty() && found.len() < self.k {
            let prev = found[found.len() - 1].clone();
            for i in 0..prev.zones.len() - 1 {
                let spur = prev.zones[i];
                let root = &prev.zones[..=i];
                let mut banned_arc = BTreeSet::new();
                for pth in &found {
                    if pth.zones.len() > i + 1 && &pth.zones[..=i] == root {
                        banned_arc.insert(pth.arcs[i]);
                    }
                }
                let mut banned_zone = vec![false; n];
                for &z in &root[..i] {
                    banned_zone[z] = true;
                }
                let Some(tail) = self.dijkstra(spur, b, &banned_zone, &banned_arc, &|_| true) else { continue };
                let mut zones = root[..i].to_vec();
                zones.extend(&tail.zones);
                let mut arcs = prev.arcs[..i].to_vec();
                arcs.extend(&tail.arcs);
                let delay = self.path_delay(&arcs, &zones);
                let cand = ZPath { zones, arcs, delay };
                if !found.iter().any(|f| f.zones == cand.zones) && !pool.iter().any(|f| f.zones == cand.zones) {
                    pool.push(cand);
                }
            }
            if pool.is_empty() {
                break;
            }
            let best = (0..pool.len())
                .min_by(|&x, &y| {
                    pool[x].delay.total_cmp(&pool[y].delay).then_with(|| pool[x].zones.cmp(&pool[y].zones))
                })
                .unwrap_or(0);
            found.push(pool.swap_remove(best));
        }
        found.into_iter().map(Rc::new).collect()
    }

    /// The fastest path from `a` to `b` with `bw` free on its arcs and `rev_bw` on their
    /// reverses, within `max` ms; `Some(empty)` when `a == b`.
    pub(crate) fn route(
        &mut self,
        a: usize,
        b: usize,
        bw: f64,
        rev_bw: f64,
        max: f64,
        arc_free: &[f64],
    ) -> Option<Rc<ZPath>> {
        if a == b {
            return Some(Rc::new(ZPath { zones: Vec::new(), arcs: Vec::new(), delay: 0.0 }));
        }
        let usable = |arc: usize| {
            (bw <= 0.0 || arc_free[arc] + BW_TOL >= bw) && (rev_bw <= 0.0 || arc_free[arc ^ 1] + BW_TOL >= rev_bw)
        };
        // The shortest path first: in an uncongested network it is the answer, and Yen's
        // alternatives are only computed for the zone pairs that need them.
        let first = self.shortest(a, b)?;
        if first.delay > max + 1e-9 {
            return None;
        }
        if first.arcs.iter().all(|&arc| usable(arc)) {
            return Some(first);
        }
        for pth in self.k_shortest(a, b) {
            if pth.delay > max + 1e-9 {
                return None; // the rest are slower still
            }
            if pth.arcs.iter().all(|&arc| usable(arc)) {
                return Some(Rc::clone(pth));
            }
        }
        let pth = self.dijkstra(a, b, &vec![false; self.adj.len()], &BTreeSet::new(), &usable)?;
        (pth.delay <= max + 1e-9).then(|| Rc::new(pth))
    }
}
