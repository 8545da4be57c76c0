//! The domain's `/metrics` (Prometheus text; the HTTP metrics are `zonal_proto`'s):
//!
//! * `zonal_domain_zones{state}` — registered zones by availability;
//! * `zonal_domain_instances` — instances reported by all zones;
//! * `zonal_domain_services{state}` — services by lifecycle state;
//! * `zonal_domain_slots{service, kind}` — session slots per service, domain-wide;
//! * `zonal_domain_decisions_total{route, outcome}` — placement decisions by the pipeline's
//!   route (`chain`, `fusion`, `split`, `copies`, `single`, `greedy`; `none` when refused) and
//!   outcome (`applied`, `kept` by the switching-cost gate, `refused` as infeasible, `fallback`
//!   when the greedy last resort placed it), counted where decisions are made (apply, slot
//!   changes, re-plans, the coordinator's own; dry runs are not decisions);
//! * `zonal_domain_decision_seconds` — a histogram of the time of those decisions, from
//!   asking to the answer (an offer round, the live state, the pipeline);
//! * `zonal_domain_reserved_mbps{from, to}` — bandwidth the services' targets reserve on each
//!   directed link with their channel paths.
//!
//! Lock: `metrics` (`DecisionMetrics`), a leaf.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::core::{guard, DomainCore};
use crate::zones::{Availability, ZoneRecord, T_ZONES};
use zonal_store::StoreExt;

/// Bucket bounds of `zonal_domain_decision_seconds`.
pub const DECISION_BUCKETS: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How a decision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DecisionOutcome {
    /// Its target is the service's new target.
    Applied,
    /// The switching-cost gate kept what runs.
    Kept,
    /// The optimiser proved it infeasible.
    Refused,
    /// No solver answered in time; the greedy last resort placed it.
    Fallback,
}

impl DecisionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionOutcome::Applied => "applied",
            DecisionOutcome::Kept => "kept",
            DecisionOutcome::Refused => "refused",
            DecisionOutcome::Fallback => "fallback",
        }
    }
}

/// Decision counts and times: the `metrics` lock.
#[derive(Debug, Default)]
pub(crate) struct DecisionMetrics {
    inner: Mutex<Decisions>,
}

#[derive(Debug, Default)]
struct Decisions {
    /// By (route, outcome).
    totals: BTreeMap<(&'static str, DecisionOutcome), u64>,
    /// Decisions that took at most each bound of [`DECISION_BUCKETS`] (cumulative).
    buckets: [u64; DECISION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl DecisionMetrics {
    /// Counts one decision by `route` that ended in `outcome` after `seconds`.
    pub(crate) fn record(&self, route: &'static str, outcome: DecisionOutcome, seconds: f64) {
        let mut d = guard(&self.inner);
        *d.totals.entry((route, outcome)).or_default() += 1;
        for (i, bound) in DECISION_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                d.buckets[i] += 1;
            }
        }
        d.count += 1;
        d.sum += seconds;
    }

    fn render(&self, out: &mut String) {
        let d = guard(&self.inner);
        let _ = writeln!(out, "# HELP zonal_domain_decisions_total Placement decisions by route and outcome.");
        let _ = writeln!(out, "# TYPE zonal_domain_decisions_total counter");
        for ((route, outcome), n) in &d.totals {
            let _ =
                writeln!(out, "zonal_domain_decisions_total{{route=\"{route}\",outcome=\"{}\"}} {n}", outcome.as_str());
        }
        let _ = writeln!(out, "# HELP zonal_domain_decision_seconds Time of a placement decision.");
        let _ = writeln!(out, "# TYPE zonal_domain_decision_seconds histogram");
        for (bound, n) in DECISION_BUCKETS.iter().zip(d.buckets) {
            let _ = writeln!(out, "zonal_domain_decision_seconds_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "zonal_domain_decision_seconds_bucket{{le=\"+Inf\"}} {}", d.count);
        let _ = writeln!(out, "zonal_domain_decision_seconds_sum {}", d.sum);
        let _ = writeln!(out, "zonal_domain_decision_seconds_count {}", d.count);
    }
}

impl DomainCore {
    /// The domain's metrics (see the module docs), appended to `out`.
    pub fn render_metrics(&self, out: &mut String) {
        let zones = self.store.list::<ZoneRecord>(T_ZONES, "").unwrap_or_default();
        let available = zones.iter().filter(|(n, _)| self.availability(n) == Availability::Available).count();
        let _ = writeln!(out, "# HELP zonal_domain_zones Registered zones by availability.");
        let _ = writeln!(out, "# TYPE zonal_domain_zones gauge");
        let _ = writeln!(out, "zonal_domain_zones{{state=\"{}\"}} {available}", Availability::Available);
        let _ =
            writeln!(out, "zonal_domain_zones{{state=\"{}\"}} {}", Availability::Unavailable, zones.len() - available);
        let instances: u32 = self.zone_reports().iter().map(|(_, r)| r.instances).sum();
        let _ = writeln!(out, "# HELP zonal_domain_instances Instances reported by all zones.");
        let _ = writeln!(out, "# TYPE zonal_domain_instances gauge");
        let _ = writeln!(out, "zonal_domain_instances {instances}");
        let services = self.service_records().unwrap_or_default();
        let mut by_state: BTreeMap<&'static str, u32> = BTreeMap::new();
        for (_, s) in &services {
            *by_state.entry(s.state.as_str()).or_default() += 1;
        }
        let _ = writeln!(out, "# HELP zonal_domain_services Services by state.");
        let _ = writeln!(out, "# TYPE zonal_domain_services gauge");
        for (st, n) in by_state {
            let _ = writeln!(out, "zonal_domain_services{{state=\"{st}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP zonal_domain_slots Session slots per service, domain-wide.");
        let _ = writeln!(out, "# TYPE zonal_domain_slots gauge");
        for (_, s) in &services {
            let v = self.service_view(s);
            let _ = writeln!(out, "zonal_domain_slots{{service=\"{}\",kind=\"total\"}} {}", s.serviceid, v.slots.total);
            let _ = writeln!(out, "zonal_domain_slots{{service=\"{}\",kind=\"free\"}} {}", s.serviceid, v.slots.free);
        }
        self.metrics.render(out);
        let mut reserved: BTreeMap<(String, String), f64> = BTreeMap::new();
        for (_, s) in &services {
            for (link, mbps) in s.placement.iter().flat_map(|p| p.link_load()) {
                *reserved.entry(link).or_default() += mbps;
            }
        }
        let _ = writeln!(
            out,
            "# HELP zonal_domain_reserved_mbps Bandwidth the services' targets reserve per directed link (Mbit/s)."
        );
        let _ = writeln!(out, "# TYPE zonal_domain_reserved_mbps gauge");
        for ((from, to), mbps) in reserved {
            let _ = writeln!(out, "zonal_domain_reserved_mbps{{from=\"{from}\",to=\"{to}\"}} {mbps}");
        }
    }
}

#[cfg(test)]
mod tests {
    use zonal_model::{Allocation, ReservedPath};
    use zonal_proto::wire::RegisterService;
    use zonal_proto::{Principal, Role};

    use super::*;
    use crate::core::testing::{admin, block_on, open, zone, WEB};
    use crate::services::T_SERVICES;

    /// The value of the sample `name` (with its labels, as written) in `text`.
    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn decisions_are_counted_by_route_and_outcome_and_timed() {
        let core = open();
        zone(&core, "z1");
        let acme = Principal { name: "acme".into(), role: Role::Provider };
        core.register_service(&acme, &RegisterService { serviceid: None, manifest: WEB.into() }).expect("web");
        block_on(core.deploy_service(&acme, "web", false)).expect("placed");
        // 100 CPUs on a zone of 8: the optimiser refuses it.
        let big = WEB.replace("name: web\nowner", "name: big\nowner").replace("cpu: 1}", "cpu: 100}");
        core.register_service(&admin(), &RegisterService { serviceid: None, manifest: big }).expect("big");
        let e = block_on(core.deploy_service(&admin(), "big", false)).expect_err("infeasible");
        assert!(matches!(e, crate::error::DomainError::Unprocessable { .. }), "{e:?}");
        // A dry run decides nothing.
        let dry = crate::decisions::PlanRequest { serviceid: Some("web".into()), ..Default::default() };
        block_on(core.dry_run(&admin(), &dry)).expect("dry run");

        let mut text = String::new();
        core.render_metrics(&mut text);
        assert_eq!(
            sample(&text, "zonal_domain_decisions_total{route=\"single\",outcome=\"applied\"}"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, "zonal_domain_decisions_total{route=\"none\",outcome=\"refused\"}"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(sample(&text, "zonal_domain_decision_seconds_count"), Some(2.0), "{text}");
        assert_eq!(sample(&text, "zonal_domain_decision_seconds_bucket{le=\"+Inf\"}"), Some(2.0), "{text}");
        assert!(sample(&text, "zonal_domain_decision_seconds_bucket{le=\"10\"}").is_some_and(|n| n <= 2.0), "{text}");
        assert!(text.contains("# TYPE zonal_domain_decision_seconds histogram"), "{text}");
        assert_eq!(sample(&text, "zonal_domain_services{state=\"deploying\"}"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "zonal_domain_services{state=\"registered\"}"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "zonal_domain_zones{state=\"available\"}"), Some(1.0), "{text}");
    }

    #[test]
    fn the_histogram_counts_each_decision_in_every_bucket_it_fits() {
        let m = DecisionMetrics::default();
        m.record("chain", DecisionOutcome::Applied, 0.02);
        m.record("chain", DecisionOutcome::Kept, 0.3);
        m.record("greedy", DecisionOutcome::Fallback, 12.0);
        let mut text = String::new();
        m.render(&mut text);
        for (le, n) in [("0.01", 0.0), ("0.05", 1.0), ("0.25", 1.0), ("0.5", 2.0), ("10", 2.0), ("+Inf", 3.0)] {
            let name = format!("zonal_domain_decision_seconds_bucket{{le=\"{le}\"}}");
            assert_eq!(sample(&text, &name), Some(n), "{name}: {text}");
        }
        assert!(sample(&text, "zonal_domain_decision_seconds_sum").is_some_and(|s| (s - 12.32).abs() < 1e-9));
        assert_eq!(sample(&text, "zonal_domain_decisions_total{route=\"chain\",outcome=\"kept\"}"), Some(1.0));
        assert_eq!(sample(&text, "zonal_domain_decisions_total{route=\"greedy\",outcome=\"fallback\"}"), Some(1.0));
    }

    #[test]
    fn reserved_bandwidth_is_summed_per_directed_link_over_the_targets() {
        let core = open();
        let path = |zones: &[&str], mbps: f64, copies: u32| ReservedPath {
            from: "a".into(),
            to: "b".into(),
            zones: zones.iter().map(|z| z.to_string()).collect(),
            mbps,
            latency_ms: 1.0,
            copies,
        };
        for (id, paths) in [
            ("one", vec![path(&["z1", "z2", "z3"], 10.0, 2)]),
            ("two", vec![path(&["z1", "z2"], 5.0, 1), path(&["z2", "z1"], 1.5, 1)]),
        ] {
            let manifest = WEB.replace("name: web\nowner", &format!("name: {id}\nowner"));
            core.register_service(&admin(), &RegisterService { serviceid: None, manifest }).expect("register");
            let mut rec = core.service_record(id).expect("record");
            rec.placement = Some(Allocation { paths, ..Default::default() });
            core.store.put(T_SERVICES, id, &rec).expect("put");
        }
        let mut text = String::new();
        core.render_metrics(&mut text);
        assert_eq!(sample(&text, "zonal_domain_reserved_mbps{from=\"z1\",to=\"z2\"}"), Some(25.0), "{text}");
        assert_eq!(sample(&text, "zonal_domain_reserved_mbps{from=\"z2\",to=\"z3\"}"), Some(20.0), "{text}");
        assert_eq!(sample(&text, "zonal_domain_reserved_mbps{from=\"z2\",to=\"z1\"}"), Some(1.5), "{text}");
        assert!(text.contains("# TYPE zonal_domain_reserved_mbps gauge"));
    }
}
