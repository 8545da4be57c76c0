//! The segment programme for path-shaped chains (step 6 of the module docs): contiguous
//! segments, one zone each, each within the free capacity of its zone's candidate hosts,
//! minimising the shortest-path delay between consecutive segments; a second start beside the
//! tree greedy.

use std::collections::BTreeMap;

use super::state::{Search, State};

/// Labels (distinct sets of zones used) kept per (component, zone) state of the segment
/// programme, and complete labels built.
const SEGMENT_LABELS: usize = 8;

/// A partial solution of the segment programme: its delay, the zones its segments use
/// (sorted), where its last segment starts and the label it extends there.
#[derive(Clone)]
struct SegmentLabel {
    cost: f64,
    zones: Vec<usize>,
    start: usize,
    prev: (usize, usize),
}

impl Search<'_, '_> {
    /// Segment programme for path-shaped chains: cut the path into contiguous segments, one
    /// zone each, a segment fitting the free capacity of its zone's candidate hosts; minimise
    /// the delay between consecutive segments over shortest paths. Each (component, zone)
    /// state keeps up to [`SEGMENT_LABELS`] labels with distinct sets of zones used so far, and
    /// a segment may only enter a zone its label has not used, so two segments never share a
    /// zone's capacity (a zone is visited once). Up to that many of the cheapest complete
    /// labels are built host by host (a zone's free capacity may be split over hosts) and the
    /// best plan kept. Returns false (state untouched) when the chain is not a path or no
    /// label can be built.
    pub(super) fn segments(&mut self) -> bool {
        let m = self.m;
        let p = m.p;
        let Some(order) = self.m.path_order() else { return false };
        let n = order.len();
        let r_n = m.res_names.len();
        let mut cap: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for &h in &m.host_list {
            let c = cap.entry(p.hosts[h].zone).or_insert_with(|| vec![0; r_n]);
            for (x, f) in c.iter_mut().zip(&self.st.free[h]) {
                *x += f;
            }
        }
        let route_between = |i: usize| -> Option<usize> {
            m.incident[order[i]].iter().copied().find(|&r| m.other(r, order[i]) == order[i - 1])
        };
        let edge = |i: usize, zp: usize, z: usize| -> f64 {
            let Some(r) = route_between(i) else { return f64::INFINITY };
            let rt = &m.routes[r];
            let d = if rt.from == order[i - 1] { p.zone_delay[zp][z] } else { p.zone_delay[z][zp] };
            if d > rt.max + 1e-9 {
                f64::INFINITY
            } else {
                rt.mult() * d
            }
        };
        // labels[i][k]: segments ending with component order[i] in zone zs[i][k], cheapest first.
        let zs: Vec<&Vec<usize>> = order.iter().map(|&t| &m.zones[t]).collect();
        let mut labels: Vec<Vec<Vec<SegmentLabel>>> = zs.iter().map(|z| vec![Vec::new(); z.len()]).collect();
        let zero = vec![0u64; r_n];
        for i in 0..n {
            for (k, &z) in zs[i].iter().enumerate() {
                let room = if m.fixed[order[i]].is_some() { &zero } else { cap.get(&z).unwrap_or(&zero) };
                let mut used = vec![0u64; r_n];
                // (cost, segment start j, previous zone index, previous label); j = 0 has none.
                let mut offers: Vec<(f64, usize, usize, usize)> = Vec::new();
                let mut cap_cost = f64::INFINITY;
                for j in (0..=i).rev() {
                    if zs[j].binary_search(&z).is_err() {
                        break;
                    }
                    for (u, d) in used.iter_mut().zip(&m.demand[order[j]]) {
                        *u += d;
                    }
                    if used.iter().zip(room).any(|(u, r)| u > r) {
                        break;
                    }
                    if j == 0 {
                        offers.push((0.0, 0, usize::MAX, usize::MAX));
                        continue;
                    }
                    for (kp, &zp) in zs[j - 1].iter().enumerate() {
                        if zp == z {
                            continue;
                        }
                        let e = edge(j, zp, z);
                        if !e.is_finite() {
                            continue;
                        }
                        // One source's labels have distinct zone sets, so its K-th valid offer
                        // caps the cost of the K labels kept: dearer offers cannot be kept.
                        let mut valid = 0;
                        for (li, lab) in labels[j - 1][kp].iter().enumerate() {
                            let cost = lab.cost + e;
                            if cost > cap_cost {
                                break;
                            }
                            if lab.zones.binary_search(&z).is_err() {
                                offers.push((cost, j, kp, li));
                                valid += 1;
                                if valid == SEGMENT_LABELS {
                                    cap_cost = cost;
                                }
                            }
                        }
                    }
                }
                let cheaper = |a: &(f64, usize, usize, usize), b: &(f64, usize, usize, usize)| {
                    a.0.total_cmp(&b.0).then_with(|| (a.1, a.2, a.3).cmp(&(b.1, b.2, b.3)))
                };
                // Only the cheapest offers can become labels: sort a short prefix first, and
                // the rest only when duplicate zone sets leave too few labels.
                let mut sorted = offers.len().min(8 * SEGMENT_LABELS);
                if offers.len() > sorted {
                    offers.select_nth_unstable_by(sorted, cheaper);
                }
                offers[..sorted].sort_by(cheaper);
                let mut kept: Vec<SegmentLabel> = Vec::new();
                for idx in 0..offers.len() {
                    if idx == sorted {
                        offers[idx..].sort_by(cheaper);
                        sorted = offers.len();
                    }
                    let (cost, j, kp, li) = offers[idx];
                    let mut zones = if j == 0 { Vec::new() } else { labels[j - 1][kp][li].zones.clone() };
                    let at = zones.binary_search(&z).unwrap_or_else(|x| x);
                    zones.insert(at, z);
                    // Same zones used, same future: the cheaper label dominates.
                    if kept.iter().any(|l| l.zones == zones) {
                        continue;
                    }
                    kept.push(SegmentLabel { cost, zones, start: j, prev: (kp, li) });
                    if kept.len() == SEGMENT_LABELS {
                        break;
                    }
                }
                labels[i][k] = kept;
            }
        }
        let mut finals: Vec<(f64, usize, usize)> = labels[n - 1]
            .iter()
            .enumerate()
            .flat_map(|(k, ls)| ls.iter().enumerate().map(move |(li, l)| (l.cost, k, li)))
            .collect();
        finals.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| (a.1, a.2).cmp(&(b.1, b.2))));
        finals.truncate(SEGMENT_LABELS);
        let saved = self.st.clone();
        let mut best: Option<(f64, State)> = None;
        for (_, k0, l0) in finals {
            // Walk the labels back into one zone per component.
            let mut zone_of = vec![0usize; n];
            let (mut i, mut k, mut li) = (n - 1, k0, l0);
            loop {
                let lab = &labels[i][k][li];
                for z in zone_of.iter_mut().take(i + 1).skip(lab.start) {
                    *z = zs[i][k];
                }
                if lab.start == 0 {
                    break;
                }
                (k, li) = lab.prev;
                i = lab.start - 1;
            }
            self.st = saved.clone();
            if self.build_in_zones(&order, &zone_of) {
                let obj = self.objective();
                if best.as_ref().is_none_or(|(b, _)| obj < *b) {
                    best = Some((obj, self.st.clone()));
                }
            }
        }
        match best {
            Some((_, st)) => {
                self.st = st;
                true
            }
            None => {
                self.st = saved;
                false
            }
        }
    }

    /// Places `order[i]` in zone `zone_of[i]` (host by host) and routes every channel; false
    /// when a host, a relation or a route does not fit (the state is then partly built).
    fn build_in_zones(&mut self, order: &[usize], zone_of: &[usize]) -> bool {
        let m = self.m;
        for (i, &t) in order.iter().enumerate() {
            if let Some((z, h)) = m.fixed[t] {
                self.st.zone[t] = Some(z);
                self.st.host[t] = h;
                continue;
            }
            match self.pick_in_zone(t, zone_of[i]) {
                Some(h) => self.put(t, h),
                None => return false,
            }
        }
        (0..m.n()).all(|t| self.relations_ok(t)) && (0..m.routes.len()).all(|r| self.route(r))
    }
}
