//! REST bodies, in the FUSION `/1.0` layout (seed notes §2.2–2.5).
//!
//! FUSION gives one concrete example (zone `GET /1.0/services` →
//! `[{serviceid, state, slots: {total, free}}]`, `POST` → `{"state": "registered"}`); those
//! shapes are kept verbatim and the rest follows their style: `serviceid` for service names,
//! lower-case states, slot totals as `{total, free, used}`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use zonal_control::place::HostSummary;
use zonal_control::reconcile::InstanceState;
use zonal_model::{Location, Resources};

use crate::env::PortMapping;

/// Session slots summed over instances (FUSION `slots: {total, free}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SlotTotals {
    pub total: u32,
    pub free: u32,
    #[serde(default)]
    pub used: u32,
}

impl SlotTotals {
    pub fn add(&mut self, other: SlotTotals) {
        self.total += other.total;
        self.free += other.free;
        self.used += other.used;
    }
}

// ---------------------------------------------------------------- domain: zones

/// A host as a zone declares it when registering.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostInfo {
    #[schemars(schema_with = "crate::openapi::name_schema")]
    pub name: String,
    #[schemars(with = "crate::openapi::ResourcesDoc")]
    pub capacity: Resources,
    #[serde(default)]
    pub features: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub available: bool,
    /// Power draw idle and at full load (consolidation's energy model); zero when unknown.
    #[serde(default)]
    #[schemars(with = "crate::openapi::PowerDoc")]
    pub power: zonal_model::PowerModel,
}

fn yes() -> bool {
    true
}

/// `POST /1.0/zones`: a zone manager registers its zone (or an admin registers one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ZoneRegistration {
    #[schemars(schema_with = "crate::openapi::name_schema")]
    pub name: String,
    /// Base URL of the zone manager's API.
    #[schemars(regex(pattern = "^https?://[^/]"))]
    pub endpoint: String,
    /// The bearer token the domain must use when calling this zone.
    pub api_key: String,
    #[serde(default)]
    #[schemars(schema_with = "crate::openapi::optional_label_schema")]
    pub tier: Option<String>,
    #[serde(default)]
    pub hosts: Vec<HostInfo>,
    /// Where the zone is (from the infrastructure file); service resolution estimates a
    /// client's latency to the zone from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::openapi::LocationDoc>")]
    pub location: Option<Location>,
    /// What running things in the zone costs (from the infrastructure file): the domain's
    /// placement weighs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::openapi::PriceDoc>")]
    pub price: Option<zonal_model::Price>,
}

/// `PUT /1.0/zones/{zone}/status`: a zone's heartbeat with its summaries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ZoneReport {
    /// Every host with the capacity not reserved by instances.
    #[schemars(with = "Vec<crate::openapi::HostSummaryDoc>")]
    pub hosts: Vec<HostSummary>,
    pub services: Vec<ZoneServiceView>,
    pub instances: u32,
    /// Where each recorded instance runs (lost ones excepted), so the domain knows which
    /// host holds what.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placements: Vec<InstancePlacement>,
}

/// One instance of a zone's heartbeat: where it runs and what it reserves there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstancePlacement {
    pub id: String,
    pub service: String,
    pub component: String,
    pub host: String,
    #[schemars(with = "crate::openapi::InstanceStateDoc")]
    pub state: InstanceState,
    /// The resources it reserves on its host.
    #[schemars(with = "crate::openapi::ReportedResourcesDoc")]
    pub resources: Resources,
}

/// Who the domain is: its persistent id and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DomainInfo {
    pub id: String,
    pub name: String,
}

/// The answer to `POST /1.0/zones`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ZoneRegistered {
    pub domain: DomainInfo,
    pub zone: ZoneView,
}

/// A zone as the domain shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ZoneView {
    pub name: String,
    pub endpoint: String,
    /// `available` or `unavailable` (missed heartbeats).
    pub state: String,
    pub tier: Option<String>,
    pub hosts: usize,
    #[schemars(with = "crate::openapi::ResourcesDoc")]
    pub capacity: Resources,
    #[schemars(with = "crate::openapi::ResourcesDoc")]
    pub free: Resources,
    pub services: Vec<String>,
    pub instances: u32,
    pub slots: SlotTotals,
    /// Milliseconds since the last heartbeat (none since the domain started).
    pub last_seen_ms: Option<u64>,
}

// ---------------------------------------------------------------- domain: services

/// `POST /1.0/services`: register a service from its manifest (native YAML or TOSCA),
/// kept verbatim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RegisterService {
    /// Must equal the manifest's service name when given.
    #[serde(default)]
    pub serviceid: Option<String>,
    pub manifest: String,
}

/// `PUT …/state`: `register`, `provision`, `deploy` or `terminate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StateChange {
    #[schemars(extend("enum" = ["register", "registered", "provision", "deploy", "deployed", "terminate", "terminated"]))]
    pub state: String,
}

/// `PUT /1.0/services/{id}/slots`: session slots wanted domain-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SlotsChange {
    #[schemars(range(max = zonal_model::limits::MAX_DEMAND_SLOTS))]
    pub slots: u32,
}

/// A service as the domain shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceView {
    pub serviceid: String,
    pub owner: String,
    /// `registered`, `deploying`, `deployed`, `terminating`, `terminated`, `deleting`.
    pub state: String,
    /// What the domain is driving the service towards: `registered`, `deployed`,
    /// `terminated`, `deleted`.
    pub target: String,
    pub slots: SlotTotals,
    /// Zones the service is placed in.
    pub zones: Vec<String>,
    /// Instances per component per zone.
    pub placement: BTreeMap<String, BTreeMap<String, u32>>,
    /// Demand in session slots (0: the components' minimum).
    pub demand: u32,
    /// The last problem the deployment met, if it has not completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<InstanceView>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

// ---------------------------------------------------------------- domain: users, tokens

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserView {
    pub name: String,
    pub role: String,
    pub services: u32,
    pub tokens: u32,
}

/// `POST /1.0/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreateUser {
    #[schemars(schema_with = "crate::openapi::name_schema")]
    pub name: String,
    #[schemars(extend("enum" = ["admin", "provider", "zone"]))]
    pub role: String,
}

/// `POST /1.0/tokens`: a new bearer token for user `name` with `role` (the user is created
/// when missing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreateToken {
    #[schemars(extend("enum" = ["admin", "provider", "zone"]))]
    pub role: String,
    #[schemars(schema_with = "crate::openapi::name_schema")]
    pub name: String,
    /// Lifetime: a span (`30d`, `12h`, `90s`) or `never`. Absent: the role's default (90
    /// days for admin and provider tokens, none for zone tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::openapi::TTL_PATTERN))]
    pub ttl: Option<String>,
}

/// The token is shown once; the domain keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenCreated {
    pub token: String,
    pub name: String,
    pub role: String,
    /// The token's non-secret id (`zonal token list`, `zonal token revoke ID`, the audit log).
    #[serde(default)]
    pub id: String,
    /// When it expires (ms since the epoch); absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
}

/// A token as `GET /1.0/tokens` shows it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenView {
    pub id: String,
    pub user: String,
    pub role: String,
    pub created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
    /// `active`, `expired` or `revoked`.
    pub state: String,
}

// ---------------------------------------------------------------- zone

/// Zone `POST /1.0/services` (FUSION verbatim: `serviceid`, `manifest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ZoneServiceRegister {
    #[schemars(schema_with = "crate::openapi::name_schema")]
    pub serviceid: String,
    pub manifest: String,
    /// The provider that owns the service, as the domain recorded it: the zone lets one
    /// service's sessions onto another's instances only within one provider (or where that
    /// service's `share` names it), and runs each provider's instances under that provider's
    /// own uid. Absent from older domains: the zone then treats the owner as unknown — an
    /// unknown owner shares with nobody, and its service runs under a uid of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::openapi::optional_name_schema")]
    pub owner: Option<String>,
}

/// `{"state": "registered"}` and friends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StateReply {
    pub state: String,
}

/// A service as a zone shows it (FUSION: `serviceid`, `state`, `slots{total, free}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ZoneServiceView {
    pub serviceid: String,
    /// `registered`, `deployed`, `terminating`.
    pub state: String,
    pub slots: SlotTotals,
    /// Desired instances per component.
    pub instances: BTreeMap<String, u32>,
    /// Instances running now.
    pub running: u32,
    /// The late-binding namespace of the composite in this zone.
    pub namespace: String,
    /// Slots the zone advertises to resolution (FUSION §2.8.3.2): free slots of instances
    /// taking sessions plus those obtainable by starting instances up to the maximum.
    #[serde(default)]
    pub advertised: u32,
    /// The zone's service endpoints (the gateway), per port name of the entry component.
    #[serde(default)]
    pub endpoints: BTreeMap<String, String>,
    /// The zone's gateways for connections between components, per `component/port` (the
    /// entry's included): what instances get as `ZONAL_PEER_*`.
    #[serde(default)]
    pub peers: BTreeMap<String, String>,
    /// Sessions cut while open: on instances that died, and through the gateway when the
    /// zone manager's process ended (killed or stopped; counted at its next start). Kept in
    /// the zone's store.
    #[serde(default)]
    pub lost_sessions: u64,
    /// Sessions the gateway is proxying now (to instances here and to remote peers).
    #[serde(default)]
    pub gateway_sessions: u32,
    /// The gateways of `peers` that relay to a component running in another zone: local
    /// address → the remote address (`host:port`) each connection is relayed to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remote_peers: BTreeMap<String, String>,
    /// What the zone has to say about the service's gateways (e.g. a listener that could not
    /// have its port back after a restart of the zone manager, and the port it took).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

/// Zone `PUT /1.0/services/{id}/slots`: instances wanted per component (the domain's
/// placement decision), and optionally the session slots they stand for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ZoneSlotsChange {
    pub instances: BTreeMap<String, u32>,
    #[serde(default)]
    pub slots: Option<u32>,
    /// The zone's offer the domain accepted for these slots: new instances go to the
    /// environments it named while they have room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    /// The planned host of each instance: component → host → instances. New instances of a
    /// component go to a planned host that has fewer of them than planned (and room) before
    /// any other host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, BTreeMap<String, u32>>,
    /// Per component, the hardware profile the domain resolved (e.g. from a workload tag):
    /// new instances reserve these resources and need these host features.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, ComponentOverride>,
    /// Channel targets running in another zone: `component/port` → `host:port` reachable
    /// from this zone. The zone relays connections to them through a local gateway listener.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remote_peers: BTreeMap<String, String>,
}

/// What the domain changes of one component's manifest for this zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ComponentOverride {
    /// Resources each new instance reserves instead of the manifest's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::openapi::ResourcesDoc>")]
    pub resources: Option<Resources>,
    /// Host features required on top of the manifest's `requires` (same key: this value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requires: BTreeMap<String, String>,
}

/// `POST /1.0/services/{id}/offers` at a zone (or `POST /1.0/offers` with `serviceid`): the
/// domain asks for a binding offer. The manifest comes along, so a zone that is not chosen
/// holds nothing of the service; region RTTs are the domain's estimates for this zone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OfferRequest {
    #[serde(default)]
    #[schemars(schema_with = "crate::openapi::optional_name_schema")]
    pub serviceid: Option<String>,
    pub manifest: String,
    /// Session slots wanted (of the entry component).
    #[schemars(range(min = 1, max = zonal_model::limits::MAX_DEMAND_SLOTS))]
    pub slots: u32,
    /// Demand regions and their weights.
    #[serde(default)]
    #[schemars(inner(range(min = 0.0, max = 1e9)))]
    pub regions: BTreeMap<String, f64>,
    /// Round-trip time (ms) from each region to this zone.
    #[serde(default)]
    #[schemars(inner(range(min = 0.0, max = 1e9)))]
    pub region_rtt_ms: BTreeMap<String, f64>,
    /// How long the zone may take to answer (its evaluator calls get less).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub deadline_ms: Option<u64>,
    /// How long the offer should stay valid.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub validity_ms: Option<u64>,
    /// The provider that owns the service (an evaluator component runs under its uid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// A component instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceView {
    pub id: String,
    pub service: String,
    pub component: String,
    pub zone: String,
    pub host: String,
    #[schemars(with = "crate::openapi::InstanceStateDoc")]
    pub state: InstanceState,
    pub pid: Option<u32>,
    #[schemars(with = "Vec<crate::openapi::PortMappingDoc>")]
    pub ports: Vec<PortMapping>,
    pub slots: Option<InstanceSlots>,
    pub restarts: u32,
    /// Wall-clock start time, milliseconds since the Unix epoch.
    pub started_ms: Option<u64>,
    /// True when the current process was adopted after a zone manager restart.
    pub adopted: bool,
    /// Sessions the zone's gateway is proxying to this instance now.
    #[serde(default)]
    pub gateway_sessions: u32,
    pub workdir: String,
    pub log: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
}

/// Per-configuration session slots of a multi-configuration instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigSlots {
    pub port: u16,
    /// Cap on this configuration's sessions (none: limited by the shared slots only).
    pub max: Option<u32>,
    pub used: u32,
    pub free: u32,
}

/// An instance's slots (FUSION §2.3.2: resource slots plus per-configuration session
/// slots). `PUT /1.0/instances/{id}/slots` at the zone; `GET /1.0/slots` at the instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceSlots {
    pub max: u32,
    pub free: u32,
    pub used: u32,
    #[serde(default)]
    pub configs: BTreeMap<String, ConfigSlots>,
}

/// FUSION's Ceilometer meter (§2.8.3.1), accepted at zone `POST /1.0/meters`. Its other
/// standard fields (timestamp, project_id, …) are accepted and not read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = true))]
pub struct Meter {
    pub counter_name: String,
    #[serde(default)]
    pub counter_unit: Option<String>,
    /// A number or a numeric string (`"$sessionslots"` substituted).
    pub counter_volume: serde_json::Value,
    #[serde(default)]
    pub counter_type: Option<String>,
    pub resource_metadata: MeterMetadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = true))]
pub struct MeterMetadata {
    #[serde(rename = "instanceId")]
    pub instance_id: String,
    #[serde(rename = "serviceId", default)]
    pub service_id: Option<String>,
}

/// Zone `PUT /1.0/domain`: bind the zone to its (one) domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DomainBinding {
    pub url: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The domain's persistent id; the binding holds while it is the same, whatever the URL.
    #[serde(default)]
    pub id: Option<String>,
}

/// Zone `GET /1.0/dca`: the DC adaptor the zone drives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DcaView {
    pub kind: String,
    pub instances_active: u32,
    /// Which resource limits the adaptor applies on this machine.
    pub limits: Vec<String>,
}

/// Instance `GET /1.0/state`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkloadState {
    pub name: String,
    /// `running`, `paused`, `terminating`.
    pub state: String,
    pub instance: Option<String>,
    /// Peer endpoints found through the late-binding namespace: component → addresses.
    pub peers: BTreeMap<String, Vec<String>>,
}

/// Instance `POST /1.0/configs`: add a configuration (its own port; optional cap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AddConfig {
    #[schemars(schema_with = "crate::openapi::name_schema")]
    pub name: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub max: Option<u32>,
}

/// Domain `PUT /1.0/geography`: replaces the parts given (user regions from a demand
/// document; measured latencies and the latency model from an infrastructure document).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GeographyChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::openapi::FreeObject>>")]
    pub regions: Option<Vec<zonal_model::Region>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::openapi::FreeObject>>")]
    pub latencies: Option<Vec<zonal_model::MeasuredLatency>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::openapi::FreeObject>")]
    pub latency_model: Option<zonal_model::LatencyModel>,
    /// Declared demand: session slots per service and region over the day (a Demand
    /// document's entries); replaces the declared demand of the services it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::openapi::FreeObject>>")]
    pub demand: Option<Vec<zonal_model::DemandEntry>>,
}

/// Domain `GET /1.0/regions`: one user region and the session slots within its reach.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RegionView {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::openapi::LocationDoc>")]
    pub location: Option<Location>,
    pub weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    pub services: Vec<RegionServiceView>,
}

/// One deployed service as seen from a region.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RegionServiceView {
    pub serviceid: String,
    /// Slots advertised by the zones within the service's R_max of the region.
    pub advertised: u32,
    /// Those zones, best utility first.
    pub zones: Vec<String>,
    /// Where a client of the region would be sent now (none: every zone in reach is full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Estimated round-trip time to that zone (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

/// Domain `GET /1.0/resolve/{service}`: where a client should open its session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Resolved {
    pub serviceid: String,
    pub zone: String,
    /// The zone's service endpoint (`host:port` of its gateway) for the entry component's
    /// first port; `endpoints` has every port.
    pub endpoint: String,
    pub endpoints: BTreeMap<String, String>,
    /// Estimated round-trip time from the client to the zone (ms).
    pub rtt_ms: f64,
    /// The service's utility of that latency.
    pub utility: f64,
    /// Position of the zone in the utility order (0 = best; more means spill-over).
    pub rank: usize,
    /// Slots the zone advertised.
    pub advertised: u32,
    /// Where `rtt_ms` comes from: `measured`, `distance` or `attach`.
    #[serde(default)]
    pub rtt_source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domains_plan_is_optional_both_ways_so_old_peers_interoperate() {
        // What an older domain sends still reads, with no plan.
        let old: ZoneSlotsChange = serde_json::from_str(r#"{"instances": {"web": 2}, "slots": 40}"#).expect("old body");
        assert_eq!(
            old,
            ZoneSlotsChange { instances: [("web".into(), 2)].into(), slots: Some(40), ..Default::default() }
        );
        // Without a plan nothing new is written, so an older zone reads it too.
        let text = serde_json::to_string(&old).expect("json");
        assert!(!text.contains("hosts") && !text.contains("overrides") && !text.contains("remote_peers"), "{text}");
        let body = r#"{"instances": {"gpu": 1, "web": 2}, "hosts": {"web": {"h1": 2}},
            "overrides": {"gpu": {"resources": {"cpu": {"value": 1500, "unit": "millicores"}}, "requires": {"accelerator": "t4"}}},
            "remote_peers": {"back/rpc": "10.0.0.7:4100"}}"#;
        let plan: ZoneSlotsChange = serde_json::from_str(body).expect("plan");
        assert_eq!(plan.hosts["web"]["h1"], 2);
        assert_eq!(plan.overrides["gpu"].resources.as_ref().map(|r| r.get("cpu")), Some(1500));
        assert_eq!(plan.overrides["gpu"].requires["accelerator"], "t4");
        assert_eq!(plan.remote_peers["back/rpc"], "10.0.0.7:4100");
        let again: ZoneSlotsChange = serde_json::from_str(&serde_json::to_string(&plan).expect("json")).expect("back");
        assert_eq!(again, plan);
    }

    #[test]
    fn a_zone_registration_carries_the_owner_and_old_ones_still_read() {
        let old: ZoneServiceRegister = serde_json::from_str(r#"{"serviceid": "web", "manifest": "m"}"#).expect("old");
        assert_eq!(old.owner, None);
        assert!(!serde_json::to_string(&old).expect("json").contains("owner"), "an older zone reads it");
        let new = ZoneServiceRegister { owner: Some("acme".into()), ..old };
        let text = serde_json::to_string(&new).expect("json");
        assert_eq!(serde_json::from_str::<ZoneServiceRegister>(&text).expect("back"), new);
    }

    #[test]
    fn heartbeats_and_views_without_the_new_fields_still_read() {
        let report: ZoneReport = serde_json::from_str(r#"{"hosts": [], "services": [], "instances": 0}"#).expect("old");
        assert!(report.placements.is_empty());
        assert!(!serde_json::to_string(&report).expect("json").contains("placements"));
        let view: ZoneServiceView = serde_json::from_str(
            r#"{"serviceid": "s", "state": "deployed", "slots": {"total": 0, "free": 0}, "instances": {}, "running": 0, "namespace": "s"}"#,
        )
        .expect("old view");
        assert!(view.remote_peers.is_empty());
        let placed = InstancePlacement {
            id: "s-web-1".into(),
            service: "s".into(),
            component: "web".into(),
            host: "h1".into(),
            state: InstanceState::Running,
            resources: Resources::new().with("cpu", zonal_model::Amount::cpu(500)),
        };
        let json = serde_json::to_value(&placed).expect("json");
        assert_eq!(json["state"], "running");
        assert_eq!(serde_json::from_value::<InstancePlacement>(json).expect("back"), placed);
    }
}
