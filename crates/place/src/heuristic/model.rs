//! The chain as the heuristic sees it: candidate hosts (the chain ILP's pre-filter, narrowed
//! for affinity groups), dense resource demands, routes (a symmetric channel pair as one),
//! relations (anti-affinity, affinity groups) and host weights. Built once per chain by
//! [`Model::new`], which also runs the tree look-ahead ([`Model::tree`], in `greedy.rs`).

use std::collections::BTreeSet;

use crate::chain::{candidates, ChainObjective, ChainRequest, Residual, Slot};
use crate::error::{reason, ConstraintFamily, PlaceError};
use crate::problem::Problem;

/// One routed channel (a symmetric pair is one route carrying both).
pub(super) struct RouteSpec {
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) bw: f64,
    pub(super) rev_bw: f64,
    pub(super) max: f64,
    /// Channels of the service on this route (primary first).
    pub(super) channels: Vec<usize>,
}

impl RouteSpec {
    pub(super) fn mult(&self) -> f64 {
        self.channels.len() as f64
    }
}

pub(super) struct Model<'a> {
    pub(super) p: &'a Problem,
    pub(super) si: usize,
    pub(super) request: &'a ChainRequest,
    pub(super) user_zone: Option<usize>,
    /// Per component: fixed zone and host (user-side), or `None`.
    pub(super) fixed: Vec<Option<(usize, Option<usize>)>>,
    pub(super) cands: Vec<Vec<usize>>,
    /// Dense demand per component over `res_names`.
    pub(super) demand: Vec<Vec<u64>>,
    pub(super) res_names: Vec<String>,
    pub(super) routes: Vec<RouteSpec>,
    pub(super) incident: Vec<Vec<usize>>,
    pub(super) anti: Vec<Vec<usize>>,
    pub(super) affine: Vec<Vec<usize>>,
    /// Weight of each host (by index into `p.hosts`; 0 for non-candidates).
    pub(super) weight: Vec<f64>,
    /// Sorted union of all candidate hosts.
    pub(super) host_list: Vec<usize>,
    pub(super) wd: f64,
    pub(super) ws: f64,
    /// Breadth-first order, tree children (component, route), zones per component and togo.
    pub(super) order: Vec<usize>,
    pub(super) roots: Vec<usize>,
    pub(super) children: Vec<Vec<(usize, usize)>>,
    pub(super) zones: Vec<Vec<usize>>,
    pub(super) togo: Vec<Vec<f64>>,
}

pub(super) fn dense(r: &zonal_model::Resources, names: &[String]) -> Vec<u64> {
    names.iter().map(|n| r.get(n)).collect()
}

impl<'a> Model<'a> {
    pub(super) fn new(
        p: &'a Problem,
        request: &'a ChainRequest,
        residual: &Residual,
        objective: ChainObjective,
    ) -> Result<Model<'a>, PlaceError> {
        let (ctx, slots) = candidates(p, request, residual)?;
        let si = ctx.si;
        let s = &p.services[si].service;
        let n = s.components.len();
        let mut fixed = vec![None; n];
        let mut cands = vec![Vec::new(); n];
        for (t, slot) in slots.iter().enumerate() {
            match slot {
                Slot::Fixed { zone, host } => fixed[t] = Some((*zone, *host)),
                Slot::Hosts(hs) => cands[t] = hs.clone(),
            }
        }
        let mut names: BTreeSet<String> = BTreeSet::new();
        for c in &s.components {
            names.extend(c.resources.names().map(String::from));
        }
        let res_names: Vec<String> = names.into_iter().collect();
        let demand: Vec<Vec<u64>> = s
            .components
            .iter()
            .map(|c| if c.user_side { vec![0; res_names.len()] } else { dense(&c.resources, &res_names) })
            .collect();
        let comp = |name: &str| s.components.iter().position(|c| c.name == name);
        // Routes, a symmetric pair as one.
        let mut routes: Vec<RouteSpec> = Vec::new();
        for (chi, ch) in s.channels.iter().enumerate() {
            let (Some(f), Some(t)) = (comp(&ch.from), comp(&ch.to)) else { continue };
            let max = ch.max_latency.map_or(f64::INFINITY, |d| d.as_millis());
            let bw = ch.bandwidth.map_or(0.0, |b| b.mbps());
            if let Some(r) = routes.iter_mut().find(|r| r.from == t && r.to == f && r.channels.len() == 1) {
                r.channels.push(chi);
                r.max = r.max.min(max);
                r.rev_bw = bw;
                continue;
            }
            routes.push(RouteSpec { from: f, to: t, bw, rev_bw: 0.0, max, channels: vec![chi] });
        }
        let mut incident = vec![Vec::new(); n];
        for (ri, r) in routes.iter().enumerate() {
            incident[r.from].push(ri);
            if r.to != r.from {
                incident[r.to].push(ri);
            }
        }
        // Anti-affinity, symmetric; affinity groups, transitive.
        let mut anti = vec![Vec::new(); n];
        let mut group: Vec<usize> = (0..n).collect();
        fn find(g: &mut [usize], x: usize) -> usize {
            let mut r = x;
            while g[r] != r {
                r = g[r];
            }
            g[x] = r;
            r
        }
        for (a, c) in s.components.iter().enumerate() {
            for o in &c.placement.anti_affinity {
                if let Some(b) = comp(o) {
                    if a != b {
                        anti[a].push(b);
                        anti[b].push(a);
                    }
                }
            }
            for o in &c.placement.affinity {
                if let Some(b) = comp(o) {
                    let (ra, rb) = (find(&mut group, a), find(&mut group, b));
                    group[ra.max(rb)] = ra.min(rb);
                }
            }
        }
        for a in &mut anti {
            a.sort_unstable();
            a.dedup();
        }
        let roots_of: Vec<usize> = (0..n).map(|x| find(&mut group, x)).collect();
        let mut affine = vec![Vec::new(); n];
        for a in 0..n {
            for b in 0..n {
                if a != b && roots_of[a] == roots_of[b] {
                    affine[a].push(b);
                }
            }
        }
        // An affinity group can only use the zones all its members can.
        let zone_set = |t: usize, cands: &[Vec<usize>]| -> BTreeSet<usize> {
            match fixed[t] {
                Some((z, _)) => [z].into(),
                None => cands[t].iter().map(|&h| p.hosts[h].zone).collect(),
            }
        };
        let mut narrowed = cands.clone();
        for t in 0..n {
            if affine[t].is_empty() || fixed[t].is_some() {
                continue;
            }
            let mut ok = zone_set(t, &cands);
            for &o in &affine[t] {
                ok = ok.intersection(&zone_set(o, &cands)).copied().collect();
            }
            narrowed[t].retain(|&h| ok.contains(&p.hosts[h].zone));
            if narrowed[t].is_empty() {
                return Err(PlaceError::Infeasible {
                    reasons: vec![reason(
                        ConstraintFamily::Placement,
                        vec![s.name.clone(), s.components[t].name.clone()],
                        format!(
                            "component {:?} and its affinity group have no candidate zone in common",
                            s.components[t].name
                        ),
                    )],
                });
            }
        }
        let cands = narrowed;
        let host_list: Vec<usize> = cands.iter().flatten().copied().collect::<BTreeSet<_>>().into_iter().collect();
        let mut weight = vec![0.0; p.hosts.len()];
        for &h in &host_list {
            let cap = p.hosts[h].capacity.get(zonal_model::resources::CPU) as f64;
            weight[h] = if cap > 0.0 {
                100.0 * residual.host_free[h].get(zonal_model::resources::CPU) as f64 / cap
            } else {
                0.0
            };
        }
        let (wd, ws) = objective.weights();
        let mut m = Model {
            p,
            si,
            request,
            user_zone: ctx.user_zone,
            fixed,
            cands,
            demand,
            res_names,
            routes,
            incident,
            anti,
            affine,
            weight,
            host_list,
            wd,
            ws,
            order: Vec::new(),
            roots: Vec::new(),
            children: vec![Vec::new(); n],
            zones: Vec::new(),
            togo: Vec::new(),
        };
        m.tree();
        Ok(m)
    }

    pub(super) fn n(&self) -> usize {
        self.fixed.len()
    }

    pub(super) fn other(&self, r: usize, t: usize) -> usize {
        let rt = &self.routes[r];
        if rt.from == t {
            rt.to
        } else {
            rt.from
        }
    }
}
