//! Zonal's run-time decisions, as pure functions.
//!
//! Everything here takes data and returns a decision: no I/O, no clock (the current time is a
//! parameter, in milliseconds since an arbitrary epoch), no randomness. The daemons
//! (`zonal-domain`, `zonal-zone`) are thin shells that observe the world, call these
//! functions, and carry out what they return; the simulator can call the same functions.
//!
//! * [`reconcile`] — the zone manager's reconciler (after Nomad's): sorts observed instances
//!   into named buckets against the desired counts and emits the actions that close the gap.
//! * [`backoff`] — restart backoff for crashed instances and the retry policy of the
//!   domain's deployment coordinator.
//! * [`place`] — the zone-side host choice ([`place::pick_host`]) and the minimum instance
//!   counts a zone starts a service with; the domain's placement is `zonal_place::decide`.
//! * [`demand`] — measured demand: open sessions split over user regions by where clients
//!   resolve from, combined with declared demand, and when a change is a shift worth
//!   re-deciding for.
//! * [`slots`] — FUSION session slots: what a zone advertises (free + headroom), the zone
//!   scaler (drain-safe scale-in, hysteresis, cooldowns), the gateway's balancing policies,
//!   the domain's resolution with spill-over and its on-demand hold-back rule, and Erlang-C
//!   sizing.
//! * [`geography`] — where clients are: user regions, measured round-trip times and the
//!   latency model turned into a client's RTT to each zone, and per-region slot availability.
//! * [`evaluate`] — FUSION evaluator-based placement: the built-in evaluators, a zone's
//!   environments and its offer, the domain's choice across offers, and the composite
//!   strategies (divide-and-conquer, two-phase).

pub mod backoff;
pub mod demand;
pub mod evaluate;
pub mod geography;
pub mod place;
pub mod reconcile;
pub mod slots;

/// Milliseconds since an arbitrary epoch chosen by the caller.
pub type Millis = u64;
