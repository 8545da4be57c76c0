//! Named resource vectors: a host's capacity and a component's demand per instance.
//!
//! `cpu` is in millicores, `memory` and `disk` in bytes, `gpu` a count. Any other name is
//! user-defined: a plain number is a count, a number with a size unit (`100Gi`) is bytes.
//! The unit kind travels with each amount so that a host offering `nvme: 1Ti` and a
//! component asking for `nvme: 2` are reported as a mismatch instead of compared.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::units::{Cpu, Size, UnitError};

/// The kind of unit a resource is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceUnit {
    Millicores,
    Bytes,
    Count,
}

impl fmt::Display for ResourceUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceUnit::Millicores => "CPU (cores or millicores)",
            ResourceUnit::Bytes => "a size (bytes, Mi, Gi, ...)",
            ResourceUnit::Count => "a count",
        })
    }
}

/// Well-known resource names.
pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const DISK: &str = "disk";
pub const GPU: &str = "gpu";

/// One amount of one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Amount {
    pub value: u64,
    pub unit: ResourceUnit,
}

impl Amount {
    pub fn cpu(millicores: u64) -> Self {
        Amount { value: millicores, unit: ResourceUnit::Millicores }
    }
    pub fn bytes(bytes: u64) -> Self {
        Amount { value: bytes, unit: ResourceUnit::Bytes }
    }
    pub fn count(n: u64) -> Self {
        Amount { value: n, unit: ResourceUnit::Count }
    }

    /// Parses the amount of resource `name` from text, choosing the unit by name.
    pub fn parse(name: &str, text: &str) -> Result<Amount, UnitError> {
        match name {
            CPU => text.parse::<Cpu>().map(|c| Amount::cpu(c.0)),
            MEMORY | DISK => text.parse::<Size>().map(|s| Amount::bytes(s.0)),
            _ => {
                let trimmed = text.trim();
                if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
                    trimmed
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n <= crate::limits::MAX_COUNT)
                        .map(Amount::count)
                        .ok_or_else(|| UnitError {
                            expected: "a whole number of at most 1000000",
                            found: text.to_string(),
                        })
                } else if name == GPU {
                    Err(UnitError { expected: "a whole number of GPUs", found: text.to_string() })
                } else {
                    text.parse::<Size>().map(|s| Amount::bytes(s.0)).map_err(|_| UnitError {
                        expected: "a whole number, or a size such as 100Gi",
                        found: text.to_string(),
                    })
                }
            }
        }
    }
}

impl Amount {
    /// What is wrong with this amount of resource `name` (beyond its unit's maximum, or in
    /// the wrong unit for a well-known resource), or `None`. Amounts read from JSON (API
    /// bodies) are checked with this; amounts parsed from text are checked while parsed.
    pub fn problem(&self, name: &str) -> Option<String> {
        use crate::limits::{MAX_BYTES, MAX_COUNT, MAX_CPU_MILLICORES};
        let expected_unit = match name {
            CPU => Some(ResourceUnit::Millicores),
            MEMORY | DISK => Some(ResourceUnit::Bytes),
            GPU => Some(ResourceUnit::Count),
            _ => None,
        };
        if let Some(u) = expected_unit.filter(|u| *u != self.unit) {
            return Some(format!("expected {u} for {name:?}, found {}", self.unit));
        }
        let max = match self.unit {
            ResourceUnit::Millicores => MAX_CPU_MILLICORES,
            ResourceUnit::Bytes => MAX_BYTES,
            ResourceUnit::Count => MAX_COUNT,
        };
        (self.value > max).then(|| {
            format!("expected at most {} ({}), found {}", Amount { value: max, unit: self.unit }, self.unit, self.value)
        })
    }
}

impl Resources {
    /// Every amount beyond its maximum or in the wrong unit, as `(resource, problem)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        self.0.iter().filter_map(|(n, a)| a.problem(n).map(|p| (n.clone(), p))).collect()
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit {
            ResourceUnit::Millicores => write!(f, "{}", Cpu(self.value)),
            ResourceUnit::Bytes => write!(f, "{}", Size(self.value)),
            ResourceUnit::Count => write!(f, "{}", self.value),
        }
    }
}

/// A vector of named resource amounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Resources(pub BTreeMap<String, Amount>);

impl Resources {
    pub fn new() -> Self {
        Resources(BTreeMap::new())
    }
    pub fn with(mut self, name: &str, amount: Amount) -> Self {
        self.0.insert(name.to_string(), amount);
        self
    }
    /// The amount of `name`, zero when absent.
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).map_or(0, |a| a.value)
    }
    pub fn is_empty(&self) -> bool {
        self.0.values().all(|a| a.value == 0)
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
    /// True when `self` has at least `demand` of every resource `demand` names.
    pub fn fits(&self, demand: &Resources) -> bool {
        demand.0.iter().all(|(name, a)| self.get(name) >= a.value)
    }
    /// Adds `other` times `times` to `self` (saturating).
    pub fn add_scaled(&mut self, other: &Resources, times: u64) {
        for (name, a) in &other.0 {
            let entry = self.0.entry(name.clone()).or_insert(Amount { value: 0, unit: a.unit });
            entry.value = entry.value.saturating_add(a.value.saturating_mul(times));
        }
    }
    /// Subtracts `other` times `times` (saturating at zero).
    pub fn sub_scaled(&mut self, other: &Resources, times: u64) {
        for (name, a) in &other.0 {
            if let Some(entry) = self.0.get_mut(name) {
                entry.value = entry.value.saturating_sub(a.value.saturating_mul(times));
            }
        }
    }
    /// How many copies of `demand` fit into `self` (`u64::MAX` when `demand` is empty).
    pub fn copies_of(&self, demand: &Resources) -> u64 {
        demand.0.iter().filter(|(_, a)| a.value > 0).map(|(name, a)| self.get(name) / a.value).min().unwrap_or(u64::MAX)
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, a) in &self.0 {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{name}={a}")?;
        }
        if first {
            f.write_str("(none)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_follow_names() {
        assert_eq!(Amount::parse("cpu", "500m").unwrap(), Amount::cpu(500));
        assert_eq!(Amount::parse("memory", "1Gi").unwrap(), Amount::bytes(1 << 30));
        assert_eq!(Amount::parse("gpu", "2").unwrap(), Amount::count(2));
        assert!(Amount::parse("gpu", "0.5").is_err());
        assert_eq!(Amount::parse("nvme", "1Ti").unwrap(), Amount::bytes(1 << 40));
        assert_eq!(Amount::parse("fpga", "3").unwrap(), Amount::count(3));
        assert!(Amount::parse("memory", "lots").is_err());
    }

    #[test]
    fn vector_arithmetic() {
        let cap = Resources::new().with("cpu", Amount::cpu(4000)).with("memory", Amount::bytes(8 << 30));
        let d = Resources::new().with("cpu", Amount::cpu(1500)).with("memory", Amount::bytes(1 << 30));
        assert!(cap.fits(&d));
        assert_eq!(cap.copies_of(&d), 2);
        let mut left = cap.clone();
        left.sub_scaled(&d, 2);
        assert_eq!(left.get("cpu"), 1000);
        assert!(!left.fits(&d));
    }
}
