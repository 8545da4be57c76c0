//! Exponential backoff: restarts of crashed instances and daemons, retries of deployment
//! steps and of client calls.
//!
//! Restarts start over after a healthy period: a process that ran [`STABLE_AFTER_MS`] before
//! it failed is restarted after the first step again ([`after_crash`]). The zone's
//! reconciler uses it for instances, `zonal up` for the daemons it supervises.
//!
//! No jitter: decisions must be reproducible, and on one machine with a handful of zones the
//! thundering-herd problem jitter solves does not arise. A caller that needs spreading can
//! offset the attempt number per key.

use serde::{Deserialize, Serialize};

use crate::Millis;

/// `delay(n) = min(base × 2ⁿ, cap)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub base_ms: Millis,
    pub cap_ms: Millis,
}

impl Backoff {
    /// Restarts of a crashed instance: 250 ms, 500 ms, 1 s, … up to 30 s.
    pub const RESTART: Backoff = Backoff { base_ms: 250, cap_ms: 30_000 };
    /// Retries of a domain → zone call, restarts of a daemon under `zonal up`: 200 ms,
    /// 400 ms, … up to 5 s.
    pub const RETRY: Backoff = Backoff { base_ms: 200, cap_ms: 5_000 };

    /// The wait before attempt `attempt + 1` after `attempt` failures (0 → `base`).
    pub fn delay(&self, attempt: u32) -> Millis {
        let factor = 1u64.checked_shl(attempt.min(63)).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.cap_ms)
    }
}

/// How long an instance must run before a crash no longer counts against its backoff.
pub const STABLE_AFTER_MS: Millis = 10_000;

/// After an instance that had crashed `restarts` times ran for `ran_for` and exited again:
/// the new restart count and when to restart it (relative to the exit).
///
/// An instance that ran stably ([`STABLE_AFTER_MS`]) starts over at the base delay, so a
/// service that crashes once a day is restarted quickly every time.
pub fn after_crash(policy: &Backoff, restarts: u32, ran_for: Millis) -> (u32, Millis) {
    let previous = if ran_for >= STABLE_AFTER_MS { 0 } else { restarts };
    (previous.saturating_add(1), policy.delay(previous))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff { base_ms: 100, cap_ms: 1000 };
        let d: Vec<Millis> = (0..6).map(|n| b.delay(n)).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX), 1000);
    }

    #[test]
    fn stable_runs_reset_the_count() {
        let b = Backoff::RESTART;
        assert_eq!(after_crash(&b, 0, 5), (1, 250));
        assert_eq!(after_crash(&b, 3, 5), (4, 2000));
        assert_eq!(after_crash(&b, 7, STABLE_AFTER_MS), (1, 250));
    }

    /// Crashes at start-up climb the ladder; a run of the stated healthy period puts the next
    /// failure back on its first step; a run just short of it does not.
    #[test]
    fn a_healthy_period_starts_the_ladder_over() {
        let b = Backoff::RETRY;
        let mut restarts = 0;
        let mut delays = Vec::new();
        for ran_for in [50, 50, 50, 50, STABLE_AFTER_MS, 50, STABLE_AFTER_MS - 1] {
            let (n, delay) = after_crash(&b, restarts, ran_for);
            restarts = n;
            delays.push(delay);
        }
        assert_eq!(delays, [200, 400, 800, 1600, 200, 400, 800]);
        assert_eq!(restarts, 3);
    }
}
