//! From a plan to a deployment target, and a target against what runs.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use zonal_model::{Allocation, ReservedPath, RunSpec};

use super::Overrides;
use crate::plan::Plan;
use crate::problem::Problem;

/// The deployment target a plan stands for: instances of every component that runs
/// (user-side components and components that run nothing are planned, not deployed), the
/// hosts the plan chose, the channel paths that cross zones with their bandwidth (identical
/// paths of several subscriptions or copies counted once, with `copies`), and the profiles
/// chosen for tagged components.
pub fn allocation(p: &Problem, plan: &Plan, overrides: &Overrides) -> Allocation {
    let mut a = Allocation::default();
    let mut deployed: BTreeSet<String> = BTreeSet::new();
    for pl in &plan.placements {
        let Some(c) = p.service_index(&pl.service).and_then(|si| p.services[si].service.component(&pl.component))
        else {
            continue;
        };
        if c.user_side || matches!(c.run, RunSpec::None) || pl.instances == 0 {
            continue;
        }
        deployed.insert(pl.component.clone());
        *a.zones.entry(pl.zone.clone()).or_default().entry(pl.component.clone()).or_default() += pl.instances;
        if let Some(h) = &pl.host {
            *a.hosts
                .entry(pl.zone.clone())
                .or_default()
                .entry(pl.component.clone())
                .or_default()
                .entry(h.clone())
                .or_default() += pl.instances;
        }
    }
    let mut paths: BTreeMap<(String, String, Vec<String>), ReservedPath> = BTreeMap::new();
    for path in plan.paths.iter().filter(|x| x.zones.len() > 1) {
        let mbps = p
            .service_index(&path.service)
            .and_then(|si| p.services[si].service.channels.iter().find(|c| c.from == path.from && c.to == path.to))
            .and_then(|c| c.bandwidth)
            .map_or(0.0, |b| b.mbps());
        paths
            .entry((path.from.clone(), path.to.clone(), path.zones.clone()))
            .or_insert_with(|| ReservedPath {
                from: path.from.clone(),
                to: path.to.clone(),
                zones: path.zones.clone(),
                mbps,
                latency_ms: path.latency_ms,
                copies: 0,
            })
            .copies += 1;
    }
    a.paths = paths.into_values().collect();
    a.overrides =
        overrides.iter().filter(|(c, _)| deployed.contains(*c)).map(|(k, v)| (k.clone(), v.clone())).collect();
    a.normalize();
    a
}

/// `a` and `b` together: counts and hosts added, identical paths' copies added, profiles of
/// both.
pub fn sum(a: &Allocation, b: &Allocation) -> Allocation {
    let mut out = a.clone();
    for (zone, comps) in &b.zones {
        for (c, n) in comps {
            *out.zones.entry(zone.clone()).or_default().entry(c.clone()).or_default() += n;
        }
    }
    for (zone, comps) in &b.hosts {
        for (c, hosts) in comps {
            for (h, n) in hosts {
                *out.hosts
                    .entry(zone.clone())
                    .or_default()
                    .entry(c.clone())
                    .or_default()
                    .entry(h.clone())
                    .or_default() += n;
            }
        }
    }
    for p in &b.paths {
        match out.paths.iter_mut().find(|x| x.from == p.from && x.to == p.to && x.zones == p.zones) {
            Some(x) => x.copies += p.copies,
            None => out.paths.push(p.clone()),
        }
    }
    for (c, o) in &b.overrides {
        out.overrides.entry(c.clone()).or_insert_with(|| o.clone());
    }
    out.normalize();
    out
}

/// One count that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub zone: String,
    pub component: String,
    /// The host, when both sides say where (else the zone as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub before: u32,
    pub after: u32,
}

/// Instances of a component that leave one place for another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub component: String,
    pub from_zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_host: Option<String>,
    pub to_zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_host: Option<String>,
    pub count: u32,
}

/// A target against what runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    /// Every count that changes, per zone and component (and host where known).
    pub changes: Vec<Change>,
    /// Decreases paired with increases of the same component: instances that move.
    pub moves: Vec<Move>,
    /// Instances started and stopped in all (moves included).
    pub start: u32,
    pub stop: u32,
    pub paths_added: Vec<ReservedPath>,
    pub paths_released: Vec<ReservedPath>,
    /// Zones whose share changes (they get a new count, hosts or peers).
    pub zones: Vec<String>,
    /// Profiles that change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides_changed: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.paths_added.is_empty()
            && self.paths_released.is_empty()
            && self.overrides_changed.is_empty()
    }
    /// Instances that move (one stop and one start each).
    pub fn moved(&self) -> u32 {
        self.moves.iter().map(|m| m.count).sum()
    }
}

type Place = (String, Option<String>);

/// Counts per component and place: host-level where the allocation says where, else the
/// zone as a whole.
fn places(a: &Allocation, host_level: &BTreeSet<(String, String)>) -> BTreeMap<String, BTreeMap<Place, u32>> {
    let mut out: BTreeMap<String, BTreeMap<Place, u32>> = BTreeMap::new();
    for (zone, comps) in &a.zones {
        for (comp, n) in comps {
            let by_host = a.hosts.get(zone).and_then(|c| c.get(comp));
            let known: u32 = by_host.map_or(0, |h| h.values().sum());
            if host_level.contains(&(zone.clone(), comp.clone())) && known == *n {
                for (h, k) in by_host.into_iter().flatten() {
                    *out.entry(comp.clone()).or_default().entry((zone.clone(), Some(h.clone()))).or_default() += k;
                }
            } else {
                *out.entry(comp.clone()).or_default().entry((zone.clone(), None)).or_default() += n;
            }
        }
    }
    out
}

/// `after` against `before` (see [`Diff`]).
pub fn diff(before: &Allocation, after: &Allocation) -> Diff {
    // Host level only where both sides know every instance's host.
    let fully_placed = |a: &Allocation| -> BTreeSet<(String, String)> {
        let mut s = BTreeSet::new();
        for (zone, comps) in &a.zones {
            for (comp, n) in comps {
                let known: u32 = a.hosts.get(zone).and_then(|c| c.get(comp)).map_or(0, |h| h.values().sum());
                if known == *n {
                    s.insert((zone.clone(), comp.clone()));
                }
            }
        }
        s
    };
    let (fb, fa) = (fully_placed(before), fully_placed(after));
    let mut both: BTreeSet<(String, String)> = fb.intersection(&fa).cloned().collect();
    // A pair present on one side only is host-level if that side knows its hosts.
    for k in fb.iter().chain(&fa) {
        let in_b = before.count(&k.0, &k.1) > 0;
        let in_a = after.count(&k.0, &k.1) > 0;
        if in_b != in_a {
            both.insert(k.clone());
        }
    }
    let (pb, pa) = (places(before, &both), places(after, &both));
    let mut d = Diff::default();
    let comps: BTreeSet<&String> = pb.keys().chain(pa.keys()).collect();
    let mut zones: BTreeSet<String> = BTreeSet::new();
    for comp in comps {
        let empty = BTreeMap::new();
        let (b, a) = (pb.get(comp).unwrap_or(&empty), pa.get(comp).unwrap_or(&empty));
        let keys: BTreeSet<&Place> = b.keys().chain(a.keys()).collect();
        let mut down: Vec<(Place, u32)> = Vec::new();
        let mut up: Vec<(Place, u32)> = Vec::new();
        for k in keys {
            let (x, y) = (b.get(k).copied().unwrap_or(0), a.get(k).copied().unwrap_or(0));
            if x == y {
                continue;
            }
            zones.insert(k.0.clone());
            d.changes.push(Change {
                zone: k.0.clone(),
                component: comp.clone(),
                host: k.1.clone(),
                before: x,
                after: y,
            });
            if x > y {
                d.stop += x - y;
                down.push((k.clone(), x - y));
            } else {
                d.start += y - x;
                up.push((k.clone(), y - x));
            }
        }
        // Pair decreases with increases, in name order, into moves.
        let (mut i, mut j) = (0, 0);
        while i < down.len() && j < up.len() {
            let n = down[i].1.min(up[j].1);
            d.moves.push(Move {
                component: comp.clone(),
                from_zone: down[i].0 .0.clone(),
                from_host: down[i].0 .1.clone(),
                to_zone: up[j].0 .0.clone(),
                to_host: up[j].0 .1.clone(),
                count: n,
            });
            down[i].1 -= n;
            up[j].1 -= n;
            if down[i].1 == 0 {
                i += 1;
            }
            if up[j].1 == 0 {
                j += 1;
            }
        }
    }
    let key = |p: &ReservedPath| (p.from.clone(), p.to.clone(), p.zones.clone(), p.copies, p.mbps.to_bits());
    let kb: BTreeSet<_> = before.paths.iter().map(key).collect();
    let ka: BTreeSet<_> = after.paths.iter().map(key).collect();
    d.paths_added = after.paths.iter().filter(|p| !kb.contains(&key(p))).cloned().collect();
    d.paths_released = before.paths.iter().filter(|p| !ka.contains(&key(p))).cloned().collect();
    for p in d.paths_added.iter().chain(&d.paths_released) {
        // Both ends' zones get new peers.
        if let (Some(f), Some(l)) = (p.zones.first(), p.zones.last()) {
            zones.insert(f.clone());
            zones.insert(l.clone());
        }
    }
    let names: BTreeSet<&String> = before.overrides.keys().chain(after.overrides.keys()).collect();
    d.overrides_changed =
        names.into_iter().filter(|c| before.overrides.get(*c) != after.overrides.get(*c)).cloned().collect();
    if !d.overrides_changed.is_empty() {
        zones.extend(after.zones.keys().cloned());
    }
    d.zones = zones.into_iter().collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(rows: &[(&str, &str, &str, u32)]) -> Allocation {
        let mut a = Allocation::default();
        for (z, c, h, n) in rows {
            *a.zones.entry(z.to_string()).or_default().entry(c.to_string()).or_default() += n;
            if !h.is_empty() {
                *a.hosts
                    .entry(z.to_string())
                    .or_default()
                    .entry(c.to_string())
                    .or_default()
                    .entry(h.to_string())
                    .or_default() += n;
            }
        }
        a
    }

    #[test]
    fn moves_pair_decreases_with_increases_at_host_level() {
        let before = alloc(&[("a", "web", "a0", 2), ("b", "web", "b0", 1)]);
        let after = alloc(&[("a", "web", "a0", 1), ("c", "web", "c1", 2)]);
        let d = diff(&before, &after);
        assert_eq!((d.start, d.stop, d.moved()), (2, 2, 2));
        assert_eq!(d.moves[0].from_zone, "a");
        assert_eq!(d.moves[0].to_host.as_deref(), Some("c1"));
        assert_eq!(d.zones, vec!["a".to_string(), "b".to_string(), "c".to_string()]);
        assert!(diff(&after, &after).is_empty());
    }

    #[test]
    fn zone_level_when_a_side_does_not_know_hosts() {
        let before = alloc(&[("a", "web", "", 2)]);
        let after = alloc(&[("a", "web", "a0", 3)]);
        let d = diff(&before, &after);
        assert_eq!(d.changes.len(), 1);
        assert_eq!(d.changes[0].host, None);
        assert_eq!((d.start, d.stop, d.moved()), (1, 0, 0));
    }

    #[test]
    fn paths_added_and_released() {
        let mut before = alloc(&[("a", "x", "", 1), ("b", "y", "", 1)]);
        before.paths.push(ReservedPath {
            from: "x".into(),
            to: "y".into(),
            zones: vec!["a".into(), "b".into()],
            mbps: 10.0,
            latency_ms: 1.0,
            copies: 1,
        });
        let after = alloc(&[("a", "x", "", 1), ("a", "y", "", 1)]);
        let d = diff(&before, &after);
        assert_eq!(d.paths_released.len(), 1);
        assert!(d.paths_added.is_empty());
        assert_eq!(d.moved(), 1);
    }
}
