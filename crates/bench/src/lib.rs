//! Benchmark suites and scenario generators.
//!
//! Everything here is deterministic for a given seed: scenario generators take an explicit
//! seed and use a seeded generator, so a benchmark run can be repeated exactly.

pub mod peer;
pub mod scenarios;
pub mod vbp;
