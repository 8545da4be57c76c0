//! Zonal's domain model.
//!
//! Infrastructure (zones, hosts, links), services (components, channels), demand (user
//! regions, slots over time) and SLAs, with strictly parsed units. This crate is pure: no
//! I/O, no clock, no randomness. Readers in `zonal-descriptor` build these types from files;
//! the decision crates consume them.

pub mod bundle;
pub mod demand;
pub mod geo;
pub mod infra;
pub mod kb;
pub mod limits;
pub mod live;
pub mod names;
pub mod path;
pub mod resources;
pub mod rules;
pub mod service;
pub mod sla;
pub mod units;

pub use bundle::{Bundle, Document};
pub use demand::{Demand, DemandEntry, Region, SlotProfile};
pub use geo::{LatencyModel, Location};
pub use infra::{Host, Infrastructure, LatencyTable, Link, MeasuredLatency, PowerModel, Price, Zone};
pub use kb::{HardwareProfile, KnowledgeBase, TagCandidate, TagMode, WorkloadTag};
pub use live::{Allocation, ComponentOverride, HostSummary, ReservedPath, ZoneSummary};
pub use path::{FieldPath, ModelError, Segment};
pub use resources::{Amount, ResourceUnit, Resources};
pub use service::{
    Binding, Channel, Component, EvaluatorRef, Pin, PlacementConstraints, Port, Protocol, RunSpec, Scaling, Service,
    SlotSpec,
};
pub use sla::UtilitySla;
pub use units::{Bandwidth, Cpu, Duration, Money, Percent, Power, Size, TimeOfDay, UnitError};
