//! Infrastructure: zones with hosts, links between zones, measured latencies, proximity
//! classes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::geo::{LatencyModel, Location};
use crate::resources::Resources;
use crate::units::{Bandwidth, Duration, Money, Power};

/// An infrastructure document: the zones of one domain and how they are connected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Infrastructure {
    pub name: String,
    /// The administrative domain these zones belong to.
    pub domain: Option<String>,
    pub zones: Vec<Zone>,
    pub links: Vec<Link>,
    /// Measured round-trip times between named places (zones or user regions). They override
    /// the distance-based [`LatencyModel`].
    pub latencies: Vec<MeasuredLatency>,
    pub latency_model: LatencyModel,
    /// Named proximity classes (INPUT): the largest user-to-component round-trip time each
    /// class allows. When empty, [`default_proximity_classes`] apply.
    pub proximity_classes: BTreeMap<String, Duration>,
}

/// The proximity classes Zonal knows without being told. INPUT names proximity classes but
/// gives no values; these are Zonal's choice, stated in ARCHITECTURE.md.
pub fn default_proximity_classes() -> BTreeMap<String, Duration> {
    [("edge", 5.0), ("metro", 15.0), ("regional", 40.0), ("national", 80.0)]
        .into_iter()
        .map(|(n, ms)| (n.to_string(), Duration::from_millis(ms)))
        .collect()
}

impl Infrastructure {
    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.name == name)
    }
    pub fn host_count(&self) -> usize {
        self.zones.iter().map(|z| z.hosts.len()).sum()
    }
    /// Proximity classes in force: the declared ones, or the defaults when none are declared.
    pub fn proximity_classes(&self) -> BTreeMap<String, Duration> {
        if self.proximity_classes.is_empty() {
            default_proximity_classes()
        } else {
            self.proximity_classes.clone()
        }
    }
    /// Total capacity over all available hosts.
    pub fn total_capacity(&self) -> Resources {
        let mut total = Resources::new();
        for z in &self.zones {
            for h in z.hosts.iter().filter(|h| h.available) {
                total.add_scaled(&h.capacity, 1);
            }
        }
        total
    }
}

/// An execution zone: a site (edge site, data centre) run by one zone manager.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    pub name: String,
    pub location: Option<Location>,
    /// Free-form tier label (`edge`, `core`, ...), used in summaries and constraints.
    pub tier: Option<String>,
    pub price: Price,
    pub hosts: Vec<Host>,
    /// Extra labels that placement constraints can match (`country: BE`).
    pub labels: BTreeMap<String, String>,
}

impl Zone {
    /// A zone with no hosts only forwards traffic (a transit node of a topology).
    pub fn is_transit(&self) -> bool {
        self.hosts.is_empty()
    }
    pub fn capacity(&self) -> Resources {
        let mut total = Resources::new();
        for h in self.hosts.iter().filter(|h| h.available) {
            total.add_scaled(&h.capacity, 1);
        }
        total
    }
}

/// What running things in a zone costs. Per-hour prices apply per instance, to the resources
/// it reserves; `egress_per_gb` to traffic leaving the zone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub cpu_hour: Money,
    pub memory_gib_hour: Money,
    pub gpu_hour: Money,
    pub egress_per_gb: Money,
}

impl Price {
    pub fn is_free(&self) -> bool {
        self.cpu_hour.amount() == 0.0
            && self.memory_gib_hour.amount() == 0.0
            && self.gpu_hour.amount() == 0.0
            && self.egress_per_gb.amount() == 0.0
    }
    /// Hourly cost of reserving `resources`.
    pub fn hourly(&self, resources: &Resources) -> f64 {
        resources.get(crate::resources::CPU) as f64 / 1000.0 * self.cpu_hour.amount()
            + resources.get(crate::resources::MEMORY) as f64 / (1u64 << 30) as f64 * self.memory_gib_hour.amount()
            + resources.get(crate::resources::GPU) as f64 * self.gpu_hour.amount()
    }
}

/// An execution environment: a machine (physical or virtual) with a capacity vector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    pub capacity: Resources,
    /// Features placement can require: `arch: x86_64`, `gpu: nvidia-t4`, `sriov: "true"`.
    pub features: BTreeMap<String, String>,
    pub power: PowerModel,
    /// False when the host is down or cordoned: nothing new is placed on it.
    pub available: bool,
}

/// Power draw as a linear function of utilisation: `idle + (max − idle) × utilisation`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PowerModel {
    pub idle: Power,
    pub max: Power,
}

impl PowerModel {
    /// Watts drawn at `utilisation` in [0, 1].
    pub fn watts(&self, utilisation: f64) -> f64 {
        let u = utilisation.clamp(0.0, 1.0);
        self.idle.watts() + (self.max.watts() - self.idle.watts()) * u
    }
}

/// A bidirectional link between two zones (or topology nodes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub from: String,
    pub to: String,
    /// One-way delay; estimated from the zones' distance when absent.
    pub latency: Option<Duration>,
    /// Capacity in each direction; unlimited when absent.
    pub bandwidth: Option<Bandwidth>,
    /// Price of traffic over the link, per GB.
    pub cost_per_gb: Money,
}

/// A measured round-trip time between two named places.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredLatency {
    pub from: String,
    pub to: String,
    pub rtt: Duration,
}

/// Measured round-trip times indexed by place names. A measurement counts in both
/// directions unless the other direction was measured too (then each keeps its own).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyTable {
    /// from → to → RTT (ms); nested so that a lookup by `&str` allocates nothing.
    rtt_ms: BTreeMap<String, BTreeMap<String, f64>>,
}

impl LatencyTable {
    pub fn new(measured: &[MeasuredLatency]) -> Self {
        let mut rtt_ms: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for m in measured {
            rtt_ms.entry(m.from.clone()).or_default().insert(m.to.clone(), m.rtt.as_millis());
        }
        for m in measured {
            rtt_ms.entry(m.to.clone()).or_default().entry(m.from.clone()).or_insert(m.rtt.as_millis());
        }
        LatencyTable { rtt_ms }
    }
    /// The measured round-trip time from `from` to `to` (ms).
    pub fn get(&self, from: &str, to: &str) -> Option<f64> {
        self.rtt_ms.get(from)?.get(to).copied()
    }
}
