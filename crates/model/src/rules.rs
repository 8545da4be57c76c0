//! Placement rules, written once: may this component run in this zone, on this host?
//!
//! Every placer (the optimiser's problem builder and pre-filters, the single-component fast
//! path, the greedy last resort, the zone's host choice) and the independent plan checker ask
//! these functions, so a constraint means the same thing everywhere:
//!
//! * **Zone rule** ([`zone_refusal`]): the component's `zones` list (empty: any), its
//!   `avoid_zones`, and its `pin` (zone).
//! * **Host rule** ([`host_refusal`]): the zone rule, the pin's host, availability, and the
//!   required features (`"*"`: present with any value).
//! * **Anti-affinity** is symmetric ([`anti_affine`]): a component avoids the components it
//!   names and those that name it.
//!
//! Capacity is not a rule here: it depends on what else runs, which each placer tracks in its
//! own way (residual vectors, LP rows).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::service::{Component, PlacementConstraints, Service};

/// Why a zone or host may not take a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Refusal {
    /// The component may only run in the listed zones.
    NotInZones { zones: Vec<String> },
    /// The component avoids this zone.
    Avoided,
    /// The component is pinned to another zone.
    PinnedToZone { zone: String },
    /// The component is pinned to another host of this zone.
    PinnedToHost { host: String },
    /// The host is down or cordoned.
    Unavailable,
    /// The host lacks required features (`key=value`, `key=*`).
    MissingFeatures { missing: Vec<String> },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotInZones { zones } => write!(f, "may only run in {}", zones.join(", ")),
            Refusal::Avoided => f.write_str("avoids this zone"),
            Refusal::PinnedToZone { zone } => write!(f, "is pinned to zone {zone}"),
            Refusal::PinnedToHost { host } => write!(f, "is pinned to host {host}"),
            Refusal::Unavailable => f.write_str("the host is unavailable"),
            Refusal::MissingFeatures { missing } => write!(f, "needs host features {}", missing.join(", ")),
        }
    }
}

/// Why `zone` may not take a component with constraints `c`; `None` when it may.
pub fn zone_refusal(c: &PlacementConstraints, zone: &str) -> Option<Refusal> {
    if !c.zones.is_empty() && !c.zones.iter().any(|z| z == zone) {
        return Some(Refusal::NotInZones { zones: c.zones.clone() });
    }
    if c.avoid_zones.iter().any(|z| z == zone) {
        return Some(Refusal::Avoided);
    }
    match &c.pin {
        Some(pin) if pin.zone != zone => Some(Refusal::PinnedToZone { zone: pin.zone.clone() }),
        _ => None,
    }
}

/// May `zone` take a component with constraints `c`?
pub fn zone_allows(c: &PlacementConstraints, zone: &str) -> bool {
    zone_refusal(c, zone).is_none()
}

/// The required features a host with `features` lacks, as `key=value` (empty: none).
pub fn missing_features(features: &BTreeMap<String, String>, requires: &BTreeMap<String, String>) -> Vec<String> {
    requires
        .iter()
        .filter(|(k, want)| !features.get(*k).is_some_and(|have| want.as_str() == "*" || have == *want))
        .map(|(k, want)| format!("{k}={want}"))
        .collect()
}

/// Does a host with `features` offer everything `requires` names (`"*"`: any value)?
pub fn has_features(features: &BTreeMap<String, String>, requires: &BTreeMap<String, String>) -> bool {
    requires.iter().all(|(k, want)| features.get(k).is_some_and(|have| want == "*" || have == want))
}

/// A host as the host rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct HostView<'a> {
    pub zone: &'a str,
    pub name: &'a str,
    pub features: &'a BTreeMap<String, String>,
    pub available: bool,
}

/// Why host `h` may not take a component with constraints `c`; `None` when it may.
pub fn host_refusal(c: &PlacementConstraints, h: HostView<'_>) -> Option<Refusal> {
    if let Some(r) = zone_refusal(c, h.zone) {
        return Some(r);
    }
    if let Some(pinned) = c.pin.as_ref().and_then(|p| p.host.as_deref()) {
        if pinned != h.name {
            return Some(Refusal::PinnedToHost { host: pinned.to_string() });
        }
    }
    if !h.available {
        return Some(Refusal::Unavailable);
    }
    let missing = missing_features(h.features, &c.requires);
    (!missing.is_empty()).then_some(Refusal::MissingFeatures { missing })
}

/// May host `h` take a component with constraints `c`?
pub fn host_allows(c: &PlacementConstraints, h: HostView<'_>) -> bool {
    host_refusal(c, h).is_none()
}

/// The components `component` must not share a host with: those it names in
/// `anti_affinity` and those of `service` that name it (the rule is symmetric).
pub fn anti_affine(service: &Service, component: &str) -> Vec<String> {
    let mut out: Vec<String> =
        service.component(component).map(|c| c.placement.anti_affinity.clone()).unwrap_or_default();
    for other in &service.components {
        if other.placement.anti_affinity.iter().any(|a| a == component) && !out.contains(&other.name) {
            out.push(other.name.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `component` with its anti-affinity made symmetric (see [`anti_affine`]).
pub fn with_symmetric_anti_affinity(service: &Service, component: &Component) -> Component {
    let mut c = component.clone();
    c.placement.anti_affinity = anti_affine(service, &component.name);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Pin;

    fn features(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn zone_rule_lists_avoids_and_pins() {
        let mut c = PlacementConstraints { zones: vec!["a".into(), "b".into()], ..Default::default() };
        assert!(zone_allows(&c, "a"));
        assert_eq!(zone_refusal(&c, "z"), Some(Refusal::NotInZones { zones: vec!["a".into(), "b".into()] }));
        c.avoid_zones = vec!["b".into()];
        assert_eq!(zone_refusal(&c, "b"), Some(Refusal::Avoided));
        c.pin = Some(Pin { zone: "a".into(), host: Some("h1".into()) });
        assert!(zone_allows(&c, "a"));
        c.zones.clear();
        c.avoid_zones.clear();
        assert_eq!(zone_refusal(&c, "c"), Some(Refusal::PinnedToZone { zone: "a".into() }));
    }

    #[test]
    fn host_rule_adds_pin_host_availability_and_features() {
        let mut c = PlacementConstraints {
            requires: features(&[("arch", "x86_64"), ("accelerator", "*")]),
            ..Default::default()
        };
        let f = features(&[("arch", "x86_64")]);
        let h = HostView { zone: "a", name: "h0", features: &f, available: true };
        assert_eq!(host_refusal(&c, h), Some(Refusal::MissingFeatures { missing: vec!["accelerator=*".into()] }));
        let f2 = features(&[("arch", "x86_64"), ("accelerator", "t4")]);
        let h2 = HostView { zone: "a", name: "h1", features: &f2, available: true };
        assert!(host_allows(&c, h2));
        assert_eq!(host_refusal(&c, HostView { available: false, ..h2 }), Some(Refusal::Unavailable));
        c.pin = Some(Pin { zone: "a".into(), host: Some("h0".into()) });
        assert_eq!(host_refusal(&c, h2), Some(Refusal::PinnedToHost { host: "h0".into() }));
        assert_eq!(missing_features(&f2, &c.requires), Vec::<String>::new());
        assert!(has_features(&f2, &c.requires) && !has_features(&f, &c.requires));
    }

    #[test]
    fn anti_affinity_is_symmetric() {
        let mut s = Service { name: "s".into(), ..Default::default() };
        for n in ["x", "y", "z"] {
            s.components.push(Component { name: n.into(), ..Default::default() });
        }
        s.components[0].placement.anti_affinity = vec!["y".into()];
        assert_eq!(anti_affine(&s, "y"), vec!["x".to_string()]);
        assert_eq!(anti_affine(&s, "x"), vec!["y".to_string()]);
        assert!(anti_affine(&s, "z").is_empty());
        assert_eq!(with_symmetric_anti_affinity(&s, &s.components[1]).placement.anti_affinity, vec!["x".to_string()]);
    }
}
