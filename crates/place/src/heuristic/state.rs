//! The state of a chain being placed (hosts, zones, routes, free capacity and bandwidth) and
//! the primitive operations every stage uses: put a component on a host, take it off, route a
//! channel and reserve its bandwidth, release it, and the objective of the current state.

use std::rc::Rc;

use crate::chain::Residual;

use super::model::{dense, Model};
use super::routing::{Router, ZPath};

/// A partial placement of one chain: host and zone per component, route per channel, and what
/// is left of each candidate host and arc.
#[derive(Clone)]
pub(super) struct State {
    pub(super) host: Vec<Option<usize>>,
    pub(super) zone: Vec<Option<usize>>,
    pub(super) path: Vec<Option<Rc<ZPath>>>,
    /// Dense free capacity per host (index into `p.hosts`; empty for non-candidates).
    pub(super) free: Vec<Vec<u64>>,
    /// Components of this chain per host.
    pub(super) count: Vec<u32>,
    pub(super) arc_free: Vec<f64>,
}

impl State {
    /// Nothing of the chain placed, against `residual`.
    pub(super) fn empty(m: &Model, residual: &Residual) -> State {
        let p = m.p;
        let free: Vec<Vec<u64>> = (0..p.hosts.len())
            .map(|h| {
                if m.host_list.binary_search(&h).is_ok() {
                    dense(&residual.host_free[h], &m.res_names)
                } else {
                    Vec::new()
                }
            })
            .collect();
        State {
            host: vec![None; m.n()],
            zone: vec![None; m.n()],
            path: vec![None; m.routes.len()],
            free,
            count: vec![0; p.hosts.len()],
            arc_free: residual.arc_free.clone(),
        }
    }
}

/// One chain being placed: its model, the router (with its path cache) and the current state.
/// Each stage is a set of methods on it, in the stage's own file.
pub(super) struct Search<'m, 'a> {
    pub(super) m: &'m Model<'a>,
    pub(super) router: &'m mut Router,
    pub(super) st: State,
    /// The greedy needed its depth-first fallback.
    pub(super) backtracked: bool,
}

impl Search<'_, '_> {
    pub(super) fn fits(&self, t: usize, h: usize) -> bool {
        // Only candidate hosts are ever asked about; they all have a dense row.
        self.m.demand[t].iter().zip(&self.st.free[h]).all(|(d, free)| d <= free)
    }

    pub(super) fn objective(&self) -> f64 {
        let m = self.m;
        let delay: f64 =
            m.routes.iter().zip(&self.st.path).map(|(r, pth)| pth.as_ref().map_or(0.0, |x| r.mult() * x.delay)).sum();
        let servers: f64 = m.host_list.iter().filter(|&&h| self.st.count[h] > 0).map(|&h| m.weight[h]).sum();
        m.wd * delay + m.ws * servers
    }

    pub(super) fn delay(&self) -> f64 {
        self.m.routes.iter().zip(&self.st.path).map(|(r, pth)| pth.as_ref().map_or(0.0, |x| r.mult() * x.delay)).sum()
    }

    pub(super) fn reserve(&mut self, r: usize, pth: &ZPath, sign: f64) {
        let rt = &self.m.routes[r];
        for &arc in &pth.arcs {
            if rt.bw > 0.0 {
                self.st.arc_free[arc] -= sign * rt.bw;
            }
            if rt.rev_bw > 0.0 {
                self.st.arc_free[arc ^ 1] -= sign * rt.rev_bw;
            }
        }
    }

    pub(super) fn unroute(&mut self, r: usize) {
        if let Some(pth) = self.st.path[r].take() {
            self.reserve(r, &pth, -1.0);
        }
    }

    /// Routes `r` if both ends are placed; false when no path fits.
    pub(super) fn route(&mut self, r: usize) -> bool {
        let rt = &self.m.routes[r];
        let (Some(a), Some(b)) = (self.st.zone[rt.from], self.st.zone[rt.to]) else { return true };
        match self.router.route(a, b, rt.bw, rt.rev_bw, rt.max, &self.st.arc_free) {
            Some(pth) => {
                self.reserve(r, &pth, 1.0);
                self.st.path[r] = Some(pth);
                true
            }
            None => false,
        }
    }

    pub(super) fn put(&mut self, t: usize, h: usize) {
        for (f, d) in self.st.free[h].iter_mut().zip(&self.m.demand[t]) {
            *f -= d;
        }
        self.st.count[h] += 1;
        self.st.host[t] = Some(h);
        self.st.zone[t] = Some(self.m.p.hosts[h].zone);
    }

    pub(super) fn take(&mut self, t: usize) {
        if let Some(h) = self.st.host[t].take() {
            for (f, d) in self.st.free[h].iter_mut().zip(&self.m.demand[t]) {
                *f += d;
            }
            self.st.count[h] -= 1;
        }
        self.st.zone[t] = None;
    }

    /// Anti-affinity and affinity of `t` against the components placed now.
    pub(super) fn relations_ok(&self, t: usize) -> bool {
        let (h, z) = (self.st.host[t], self.st.zone[t]);
        self.m.anti[t].iter().all(|&o| self.st.host[o].is_none() || self.st.host[o] != h)
            && self.m.affine[t].iter().all(|&o| self.st.zone[o].is_none() || self.st.zone[o] == z)
    }

    pub(super) fn pick_in_zone(&self, t: usize, zone: usize) -> Option<usize> {
        let hosts = self.m.cands[t].iter().copied().filter(|&h| self.m.p.hosts[h].zone == zone && self.fits(t, h));
        let (used, fresh): (Vec<usize>, Vec<usize>) = hosts.partition(|&h| self.st.count[h] > 0);
        used.into_iter().chain(fresh).find(|&h| {
            let other_anti = self.m.anti[t].iter().any(|&o| self.st.host[o] == Some(h));
            !other_anti
        })
    }
}
