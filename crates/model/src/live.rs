//! The running system's vocabulary: what zones report, and what the domain deploys.
//!
//! * [`HostSummary`] / [`ZoneSummary`] — a zone's hosts as its heartbeat reports them (free
//!   capacity, features, availability).
//! * [`Allocation`] — a service's deployment target: instances per component per zone, the
//!   hosts the plan chose for them, the channel paths that cross zones (with the bandwidth
//!   they reserve on each link) and the hardware profiles chosen for tagged components. The
//!   domain stores it per service; zones receive their share.
//!
//! Plain data: no I/O, no decisions (those are in `zonal-place` and `zonal-control`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resources::Resources;

/// What the domain knows about one host of a zone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    pub name: String,
    /// Capacity not yet reserved by instances.
    pub free: Resources,
    pub features: BTreeMap<String, String>,
    pub available: bool,
}

/// What the domain knows about one zone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ZoneSummary {
    pub name: String,
    /// False when the zone missed its heartbeats.
    pub available: bool,
    pub tier: Option<String>,
    pub hosts: Vec<HostSummary>,
}

impl ZoneSummary {
    /// Free capacity summed over the available hosts.
    pub fn free(&self) -> Resources {
        let mut total = Resources::new();
        for h in self.hosts.iter().filter(|h| h.available) {
            total.add_scaled(&h.free, 1);
        }
        total
    }
}

/// A channel path between zones that a deployment reserves bandwidth on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservedPath {
    pub from: String,
    pub to: String,
    /// Zones hop by hop, both ends included (never empty: collocated channels reserve nothing).
    pub zones: Vec<String>,
    /// Bandwidth per copy of the channel (Mbit/s), reserved on every link of the path in its
    /// direction.
    pub mbps: f64,
    /// One-way delay of the path (ms).
    pub latency_ms: f64,
    /// How many copies of the channel take this path (one per chain subscription or
    /// composite copy routed the same way).
    pub copies: u32,
}

impl ReservedPath {
    /// Bandwidth this path reserves on each of its links (Mbit/s).
    pub fn reserved_mbps(&self) -> f64 {
        self.mbps * f64::from(self.copies)
    }
}

/// A hardware profile chosen for a tagged component (OPERA knowledge base): the resources an
/// instance reserves instead of the manifest's, and the host features it needs besides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentOverride {
    /// The profile's name, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requires: BTreeMap<String, String>,
}

/// A service's deployment target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// Instances per component per zone.
    pub zones: BTreeMap<String, BTreeMap<String, u32>>,
    /// The hosts the plan chose: zone → component → host → instances (a hint the zone follows
    /// while the host has room; empty when the placer worked at zone level).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, BTreeMap<String, BTreeMap<String, u32>>>,
    /// Channels that cross zones, and the bandwidth they reserve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<ReservedPath>,
    /// Hardware profiles chosen for tagged components.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, ComponentOverride>,
}

impl Allocation {
    /// Instances in total.
    pub fn instances(&self) -> u32 {
        self.zones.values().flat_map(|c| c.values()).sum()
    }

    /// Instances of `component` in `zone`.
    pub fn count(&self, zone: &str, component: &str) -> u32 {
        self.zones.get(zone).and_then(|c| c.get(component)).copied().unwrap_or(0)
    }

    /// Drops zero counts and empty zones, so equal targets compare equal.
    pub fn normalize(&mut self) {
        for comps in self.zones.values_mut() {
            comps.retain(|_, n| *n > 0);
        }
        self.zones.retain(|_, c| !c.is_empty());
        for comps in self.hosts.values_mut() {
            for hosts in comps.values_mut() {
                hosts.retain(|_, n| *n > 0);
            }
            comps.retain(|_, h| !h.is_empty());
        }
        self.hosts.retain(|_, c| !c.is_empty());
        self.paths.retain(|p| p.copies > 0 && p.zones.len() > 1);
        self.paths.sort_by(|a, b| (&a.from, &a.to, &a.zones).cmp(&(&b.from, &b.to, &b.zones)));
    }

    /// Bandwidth reserved on each directed link `(from zone, to zone)` (Mbit/s).
    pub fn link_load(&self) -> BTreeMap<(String, String), f64> {
        let mut out = BTreeMap::new();
        for p in &self.paths {
            for w in p.zones.windows(2) {
                *out.entry((w[0].clone(), w[1].clone())).or_insert(0.0) += p.reserved_mbps();
            }
        }
        out
    }

    /// The zone share of `zone`: only its counts, hosts and the profiles; paths stay with the
    /// domain.
    pub fn zone_share(&self, zone: &str) -> (BTreeMap<String, u32>, BTreeMap<String, BTreeMap<String, u32>>) {
        (self.zones.get(zone).cloned().unwrap_or_default(), self.hosts.get(zone).cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_and_link_load() {
        let mut a = Allocation::default();
        a.zones.entry("z1".into()).or_default().insert("x".into(), 2);
        a.zones.entry("z2".into()).or_default().insert("y".into(), 0);
        a.paths.push(ReservedPath {
            from: "x".into(),
            to: "y".into(),
            zones: vec!["z1".into(), "z3".into(), "z2".into()],
            mbps: 5.0,
            latency_ms: 1.0,
            copies: 2,
        });
        a.paths.push(ReservedPath {
            from: "x".into(),
            to: "y".into(),
            zones: vec!["z1".into()],
            mbps: 5.0,
            latency_ms: 0.0,
            copies: 1,
        });
        a.normalize();
        assert_eq!(a.zones.len(), 1);
        assert_eq!(a.paths.len(), 1);
        assert_eq!(a.instances(), 2);
        let load = a.link_load();
        assert_eq!(load[&("z1".to_string(), "z3".to_string())], 10.0);
        assert_eq!(load[&("z3".to_string(), "z2".to_string())], 10.0);
        let json = serde_json::to_string(&Allocation { zones: a.zones.clone(), ..Default::default() }).unwrap();
        assert_eq!(json, r#"{"zones":{"z1":{"x":2}}}"#, "old records and peers see the same shape");
    }
}
