//! The domain's `/metrics` (Prometheus text; the HTTP metrics are `zonal_proto`'s):
//!
//! * `zonal_domain_zones{state}` — registered zones by availability;
//! * `zonal_domain_instances` — instances reported by all zones;
//! * `zonal_domain_services{state}` — services by lifecycle state;
//! * `zonal_domain_slots{service, kind}` — session slots per service, domain-wide.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::core::DomainCore;
use crate::zones::{Availability, ZoneRecord, T_ZONES};
use zonal_store::StoreExt;

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
    }
}
