//! The knowledge base (OPERA ECRAE, seed 003 §4.2): workload tags → candidate hardware
//! profiles.
//!
//! A component may carry a workload tag (`memory-intensive`) instead of concrete resources.
//! The knowledge base lists, for each tag, the hardware profiles the workload can run on
//! (architecture, cpu, memory, accelerator) with the workload's relative performance on each.
//! An *exact* tag names exactly one profile, used as is; a *hint* tag lists candidates that an
//! efficiency model ranks against the hosts actually available.

use serde::{Deserialize, Serialize};

use crate::resources::Resources;

/// A knowledge-base document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeBase {
    pub name: String,
    pub profiles: Vec<HardwareProfile>,
    pub tags: Vec<WorkloadTag>,
}

impl KnowledgeBase {
    pub fn profile(&self, name: &str) -> Option<&HardwareProfile> {
        self.profiles.iter().find(|p| p.name == name)
    }
    pub fn tag(&self, name: &str) -> Option<&WorkloadTag> {
        self.tags.iter().find(|t| t.name == name)
    }
}

/// A concrete hardware configuration an instance can be given (OPERA's "flavour").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HardwareProfile {
    pub name: String,
    /// Required host architecture (`x86_64`, `arm64`, `ppc64le`), matched against the host
    /// feature `arch`.
    pub arch: Option<String>,
    /// Resources one instance reserves with this profile.
    pub resources: Resources,
    /// Required accelerator, matched against the host feature `accelerator`.
    pub accelerator: Option<String>,
}

/// How a tag is resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagMode {
    /// The tag names exactly one profile; it is used without ranking.
    Exact,
    /// The tag lists candidate profiles; the efficiency model ranks them.
    #[default]
    Hint,
}

/// A workload tag and its candidate profiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadTag {
    pub name: String,
    pub mode: TagMode,
    pub candidates: Vec<TagCandidate>,
}

/// One profile a tagged workload can use, with the workload's performance on it relative to
/// a reference profile (1.0), e.g. from offline profiling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagCandidate {
    pub profile: String,
    pub performance: f64,
}
