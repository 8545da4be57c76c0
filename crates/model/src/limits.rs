//! The largest value every count and size of the model may take. Each is far above what a
//! real deployment needs and far below what would overflow the arithmetic done on it (slots
//! are multiplied by instances and summed over zones in `u32`/`u64`); a value beyond one is
//! refused where it is read (descriptors, API bodies), naming the field and the maximum.

/// Instances of one component in one zone (`scaling.max_instances`, and `min_instances`).
pub const MAX_INSTANCES: u32 = 1_000;
/// Session slots of one instance (`slots.per_instance`, `slots.min_free`).
pub const MAX_SLOTS_PER_INSTANCE: u32 = 100_000;
/// Session slots one demand entry (or one of its windows) asks for, and the domain-wide
/// slots of `PUT /1.0/services/{s}/slots`: 10 million.
pub const MAX_DEMAND_SLOTS: u32 = 10_000_000;
/// Hosts one `count:` of an infrastructure descriptor stamps out.
pub const MAX_HOST_COUNT: u32 = 10_000;
/// CPU of one host or instance, in millicores (one million cores).
pub const MAX_CPU_MILLICORES: u64 = 1_000_000_000;
/// A size (memory, disk, any size-measured resource), in bytes: 1 EiB.
pub const MAX_BYTES: u64 = 1 << 60;
/// A counted resource (GPUs, any other whole-number resource): one million.
pub const MAX_COUNT: u64 = 1_000_000;
/// A bandwidth, in bits per second: 100 Tbit/s.
pub const MAX_BANDWIDTH_BPS: u64 = 100_000_000_000_000;
/// A duration (latencies, SLA thresholds, time limits), in milliseconds: one year.
pub const MAX_DURATION_MS: f64 = 365.0 * 24.0 * 3_600_000.0;
/// A user region's weight (its group size).
pub const MAX_WEIGHT: f64 = 1e9;
/// An SLA's importance, and a knowledge base's relative performance.
pub const MAX_FACTOR: f64 = 1e6;

/// Why `value` of `what` is beyond `max`, or `None`.
pub fn at_most<T: PartialOrd + std::fmt::Display>(value: T, max: T, what: &str) -> Option<String> {
    (value > max).then(|| format!("expected {what} of at most {max}, found {value}"))
}
