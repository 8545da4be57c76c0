//! Services: atomic or composite graphs of components joined by channels.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resources::Resources;
use crate::sla::UtilitySla;
use crate::units::{Bandwidth, Duration};

/// A service registered from a manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub description: Option<String>,
    /// The service provider that owns the service.
    pub owner: Option<String>,
    pub components: Vec<Component>,
    pub channels: Vec<Channel>,
    /// The component that receives client sessions (FUSION overlays the composite's public
    /// name onto it). Defaults to the first public component.
    pub entry: Option<String>,
    /// FUSION utility thresholds for users of this service (overridable per region in demand).
    pub sla: Option<UtilitySla>,
    /// INPUT proximity class: the largest user-to-component latency allowed for every
    /// component that is not pinned.
    pub proximity: Option<String>,
    /// Bandwidth one session needs between the user and the service (for bandwidth cost).
    pub session_bandwidth: Option<Bandwidth>,
    /// The evaluator used to score candidate zones (FUSION §2.7.4).
    pub evaluator: Option<EvaluatorRef>,
    /// May Zonal serve this service with configurations overlaid on running instances of
    /// other services (FUSION multi-configuration)? False forbids reuse.
    pub reuse_existing: bool,
    /// Other providers whose services may be served by configurations overlaid on this
    /// service's instances (`share: [provider, …]`). Empty: only its own provider's services.
    /// Names only: there is no wildcard (see [`Service::may_carry`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub share: Vec<String>,
    /// How components find each other (FUSION §2.6.3).
    pub binding: Binding,
}

impl Service {
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }
    pub fn is_composite(&self) -> bool {
        self.components.len() > 1
    }
    /// May instances of this service, owned by `owner`, carry sessions of a service owned by
    /// `guest_owner` (an overlaid configuration)? Only when both owners are known and they
    /// are the same provider, or this service names the guest's provider in `share`. An
    /// unknown owner (a record written before owners were recorded) shares with nobody.
    pub fn may_carry(&self, owner: Option<&str>, guest_owner: Option<&str>) -> bool {
        match (owner, guest_owner) {
            (Some(owner), Some(guest)) => owner == guest || self.share.iter().any(|p| p == guest),
            _ => false,
        }
    }
    /// The entry component: the declared one, else the first public one, else the first.
    pub fn entry_component(&self) -> Option<&Component> {
        match &self.entry {
            Some(name) => self.component(name),
            None => self.components.iter().find(|c| c.public).or(self.components.first()),
        }
    }
}

/// How a composite's components are wired together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Binding {
    /// Static graph: deployed together with a shared key/value namespace in which each
    /// component registers its endpoints and looks up its peers.
    #[default]
    Static,
    /// Each component resolves its peers by service name at run time.
    Late,
}

/// One component of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub run: RunSpec,
    /// Resources one instance reserves.
    pub resources: Resources,
    pub slots: SlotSpec,
    pub scaling: Scaling,
    pub placement: PlacementConstraints,
    /// Component-level evaluator (overrides the service's).
    pub evaluator: Option<EvaluatorRef>,
    /// Can other services' configurations be overlaid on this component's instances?
    pub supports_overlay: bool,
    /// Workload tag (OPERA): a profile such as `memory-intensive` that a knowledge base maps
    /// to concrete hardware.
    pub tag: Option<String>,
    /// Ports the component listens on.
    pub ports: Vec<Port>,
    /// Visible to clients through resolution; internal components are not.
    pub public: bool,
    /// A user-side component (INPUT "User App"): never placed by Zonal, pinned where the user is.
    pub user_side: bool,
}

/// What an instance runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(Default)]
pub enum RunSpec {
    /// A command line run as a child process. `zonal` as the program means this executable.
    Command { argv: Vec<String>, env: BTreeMap<String, String> },
    /// A container image, with an optional command override.
    Image { image: String, command: Vec<String>, env: BTreeMap<String, String> },
    /// Nothing to run: a component placed for planning only (or a user-side endpoint).
    #[default]
    None,
}

/// Session slots (FUSION): how many concurrent sessions one instance serves with good QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSpec {
    pub per_instance: u32,
    /// Slots the zone keeps free at all times; below this it scales out.
    pub min_free: u32,
}

impl Default for SlotSpec {
    fn default() -> Self {
        SlotSpec { per_instance: 1, min_free: 0 }
    }
}

/// Bounds on the number of instances, per zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaling {
    pub min_instances: u32,
    pub max_instances: u32,
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling { min_instances: 1, max_instances: 1 }
    }
}

/// Where a component may run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlacementConstraints {
    /// Host features required (`arch: x86_64`; a value of `"*"` means "present, any value").
    pub requires: BTreeMap<String, String>,
    /// Only these zones (empty: any zone).
    pub zones: Vec<String>,
    /// Never these zones.
    pub avoid_zones: Vec<String>,
    /// Components that must run in the same zone.
    pub affinity: Vec<String>,
    /// Components that must not run on the same host.
    pub anti_affinity: Vec<String>,
    /// Proximity class overriding the service's.
    pub proximity: Option<String>,
    /// Fixed location: the component is placed in advance (INPUT static components).
    pub pin: Option<Pin>,
}

/// A fixed location for a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub zone: String,
    pub host: Option<String>,
}

/// A port a component listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub name: String,
    /// Fixed port number; chosen by the zone when absent.
    pub port: Option<u16>,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Http,
    Udp,
}

/// A channel: traffic from one component to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub from: String,
    pub to: String,
    pub bandwidth: Option<Bandwidth>,
    /// The largest one-way delay the channel's path may have.
    pub max_latency: Option<Duration>,
}

/// Which evaluator scores candidate environments for a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvaluatorRef {
    /// A built-in evaluator by name (`latency`, `price`, `hardware`).
    Builtin { name: String },
    /// A provider's evaluator answering `POST /1.0/evaluations` at this URL.
    Http { url: String },
    /// One of the service's own components is the evaluator; Zonal deploys it in candidate
    /// zones and calls it there.
    Component { component: String },
}

/// Names of the built-in evaluators.
pub const BUILTIN_EVALUATORS: &[&str] = &["latency", "price", "hardware"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_carry_other_providers_sessions_only_when_shared_by_name() {
        let mut epg = Service { name: "epg".into(), ..Default::default() };
        assert!(epg.may_carry(Some("bell-labs"), Some("bell-labs")), "a provider's own services");
        assert!(!epg.may_carry(Some("bell-labs"), Some("acme")), "not shared");
        epg.share = vec!["acme".into()];
        assert!(epg.may_carry(Some("bell-labs"), Some("acme")), "shared with acme by name");
        assert!(!epg.may_carry(Some("bell-labs"), Some("globex")), "only the providers named");
        assert!(!epg.may_carry(None, Some("acme")), "an unknown owner shares with nobody");
        assert!(!epg.may_carry(Some("bell-labs"), None), "nor does a guest of unknown owner get in");
        assert!(!epg.may_carry(None, None));
        // Old records (no `share`) read as unshared, and unshared services write no `share`.
        let old: Service = serde_json::from_value(serde_json::json!({
            "name": "x", "description": null, "owner": null, "components": [], "channels": [], "entry": null,
            "sla": null, "proximity": null, "session_bandwidth": null, "evaluator": null,
            "reuse_existing": true, "binding": "static"
        }))
        .expect("a record without share");
        assert!(old.share.is_empty());
        assert!(!serde_json::to_string(&old).expect("json").contains("share"));
    }
}
