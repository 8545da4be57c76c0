//! Demand: user regions and the session slots they want over the day.

use serde::{Deserialize, Serialize};

use crate::geo::Location;
use crate::sla::UtilitySla;
use crate::units::{Bandwidth, TimeOfDay};

/// A demand document: user regions and, per service and region, slots wanted over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Demand {
    pub name: String,
    pub regions: Vec<Region>,
    pub entries: Vec<DemandEntry>,
}

impl Demand {
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }
}

/// A group of geographically close users (FUSION's "user").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Region {
    pub name: String,
    pub location: Option<Location>,
    /// Relative size of the group (FUSION group-size weighting); 1 when not given.
    pub weight: f64,
    /// The zone (topology node) where these users attach to the network, if known.
    pub attach: Option<String>,
}

/// Slots of one service wanted by one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemandEntry {
    pub service: String,
    pub region: String,
    pub slots: SlotProfile,
    /// Region-specific SLA, overriding the service's.
    pub sla: Option<UtilitySla>,
    /// Region-specific per-session bandwidth, overriding the service's.
    pub session_bandwidth: Option<Bandwidth>,
}

impl DemandEntry {
    /// The same number of slots all day, with the service's own SLA and session bandwidth.
    pub fn constant(service: &str, region: &str, slots: u32) -> DemandEntry {
        DemandEntry {
            service: service.to_string(),
            region: region.to_string(),
            slots: SlotProfile::Constant(slots),
            sla: None,
            session_bandwidth: None,
        }
    }
}

/// Slots wanted over the day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotProfile {
    /// The same number all day.
    Constant(u32),
    /// A step function: each window starts at its time and lasts until the next one
    /// (the last wraps around midnight to the first). Sorted by start.
    Windows(Vec<(TimeOfDay, u32)>),
}

impl SlotProfile {
    /// Slots wanted at time of day `at`.
    pub fn at(&self, at: TimeOfDay) -> u32 {
        match self {
            SlotProfile::Constant(n) => *n,
            SlotProfile::Windows(w) => {
                w.iter().rev().find(|(start, _)| *start <= at).or(w.last()).map_or(0, |(_, n)| *n)
            }
        }
    }
    /// The largest number of slots wanted at any time.
    pub fn peak(&self) -> u32 {
        match self {
            SlotProfile::Constant(n) => *n,
            SlotProfile::Windows(w) => w.iter().map(|(_, n)| *n).max().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_a_step_function_that_wraps() {
        let t = |s: &str| s.parse::<TimeOfDay>().unwrap();
        let p = SlotProfile::Windows(vec![(t("06:00"), 10), (t("18:00"), 40)]);
        assert_eq!(p.at(t("07:00")), 10);
        assert_eq!(p.at(t("18:00")), 40);
        assert_eq!(p.at(t("02:00")), 40, "before the first window, the last one still runs");
        assert_eq!(p.peak(), 40);
    }
}
