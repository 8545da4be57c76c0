//! Benchmark suites and scenario generators.
//!
//! Everything here is deterministic for a given seed: scenario generators take an explicit
//! seed and use a seeded generator, so a benchmark run can be repeated exactly. The suites
//! take dataset *text* (the caller reads the files), run the placement algorithms, measure
//! wall-clock time, and return plain records; `zonal bench` parses arguments, reads files,
//! writes CSV and prints the summaries.
//!
//! | module | what |
//! |---|---|
//! | [`scenarios`] | INPUT SC1–SC3 subscriptions on a topology |
//! | [`gateway`] | a native load generator for the gateway: echo round trips over N connections, paths interleaved round by round, latency percentiles and throughput |
//! | [`geovideo`] | FUSION's MOOC placement (seed 000 §4.4): scenario, LP-size sweep, cost/utility curve with and without Step 1 |
//! | [`zoo`] | INPUT chains on Topology Zoo WANs (seed 004 §V.C): time to place and route, gap |
//! | [`report`] | CSV rows, medians, percentiles, summary tables |
//! | [`runtime`] | the run-time decision pipeline (`decide`) against the greedy it replaced: latency percentiles at 100 zones × 20 hosts, quality per service, re-placement under a demand shift |
//! | [`vbp`] | the vector bin packing suite (`zonal-pack`) against a peer solver on the same instances |
//! | [`vnmp`] | Inführ & Raidl's VNMP slices as delay-constrained chains: exact chain ILP against the heuristic, both checked |
//! | [`peer`] | OR-Tools CP-SAT and highspy as peers: own virtualenvs, own processes, JSON in and out |
//! | [`chain_peer`] | a peer on Zonal's exact chain ILP, written as MPS (`zoo`, `vnmp`): same formulation, objectives compared |

#![forbid(unsafe_code)]

pub mod chain_peer;
pub mod gateway;
pub mod geovideo;
pub mod peer;
pub mod report;
pub mod runtime;
pub mod scenarios;
pub mod vbp;
pub mod vnmp;
pub mod zoo;

use std::fmt;

/// A benchmark could not be set up: what went wrong, naming the input.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchError {
    pub message: String,
}

impl BenchError {
    pub fn new(message: impl Into<String>) -> Self {
        BenchError { message: message.into() }
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BenchError {}

/// Told about each unit of work as it starts: `(done so far, total, what)`. The CLI shows it
/// as a progress bar; tests pass [`no_progress`].
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, &str);

/// A [`Progress`] that ignores everything.
pub fn no_progress(_: usize, _: usize, _: &str) {}
