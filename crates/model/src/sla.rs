//! Service-level agreements: FUSION's latency utility and INPUT's proximity classes.

use serde::{Deserialize, Serialize};

use crate::units::Duration;

/// FUSION's utility thresholds for one service (and optionally one region).
///
/// Utility of a response time `x` (seed 000 §2.7.2.1): with `D = r_med − r_min` and
/// `z = max(0, x − r_min)`, `u(x) = (D − z) / (k·D)` for `x ≤ r_max`, and −∞ (blocked) beyond.
/// So `u = 1/k` up to `r_min`, `0` at `r_med`, negative up to `r_max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UtilitySla {
    pub r_min: Duration,
    pub r_med: Duration,
    pub r_max: Duration,
    /// Importance k ≥ 1; larger means less important.
    pub importance: f64,
}

impl Default for UtilitySla {
    /// The thresholds of FUSION's placement evaluation: 20/50/150 ms, k = 1.
    fn default() -> Self {
        UtilitySla {
            r_min: Duration::from_millis(20.0),
            r_med: Duration::from_millis(50.0),
            r_max: Duration::from_millis(150.0),
            importance: 1.0,
        }
    }
}

impl UtilitySla {
    /// `D = r_med − r_min` in milliseconds.
    pub fn span_ms(&self) -> f64 {
        self.r_med.as_millis() - self.r_min.as_millis()
    }

    /// The utility of a response time of `latency_ms`; `None` means blocked (beyond `r_max`).
    pub fn utility(&self, latency_ms: f64) -> Option<f64> {
        if latency_ms > self.r_max.as_millis() {
            return None;
        }
        let d = self.span_ms();
        let z = (latency_ms - self.r_min.as_millis()).max(0.0);
        Some((d - z) / (self.importance * d))
    }

    /// The best utility this SLA can give (`1/k`, reached at or below `r_min`).
    pub fn max_utility(&self) -> f64 {
        1.0 / self.importance
    }

    /// Checks the thresholds; returns (field, message) pairs for what is wrong.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.r_med <= self.r_min {
            out.push(("r_med", format!("expected r_med greater than r_min ({}), found {}", self.r_min, self.r_med)));
        }
        if self.r_max < self.r_med {
            out.push(("r_max", format!("expected r_max at least r_med ({}), found {}", self.r_med, self.r_max)));
        }
        if !(self.importance.is_finite() && self.importance >= 1.0 && self.importance <= crate::limits::MAX_FACTOR) {
            out.push((
                "importance",
                format!(
                    "expected an importance k between 1 and {}, found {}",
                    crate::limits::MAX_FACTOR,
                    self.importance
                ),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utility_shape() {
        let sla = UtilitySla::default();
        assert_eq!(sla.utility(10.0), Some(1.0));
        assert_eq!(sla.utility(20.0), Some(1.0));
        assert_eq!(sla.utility(50.0), Some(0.0));
        assert!((sla.utility(35.0).unwrap() - 0.5).abs() < 1e-12);
        assert!((sla.utility(150.0).unwrap() + 10.0 / 3.0).abs() < 1e-12);
        assert_eq!(sla.utility(150.1), None);
        let k2 = UtilitySla { importance: 2.0, ..sla };
        assert_eq!(k2.utility(0.0), Some(0.5));
        assert!(sla.problems().is_empty());
        let bad = UtilitySla { r_med: Duration::from_millis(10.0), importance: 0.5, ..sla };
        assert_eq!(bad.problems().len(), 2);
    }
}
