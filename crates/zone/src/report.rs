//! What the zone tells others: the service view (API and heartbeat), the heartbeat body with
//! host capacity and where every instance runs, and the Prometheus gauges. Read-only; no
//! state of its own. Lock order as everywhere: registry → instances → scaler → gateway.

use std::collections::BTreeMap;

use zonal_control::place::HostSummary;
use zonal_control::reconcile::InstanceState;
use zonal_control::slots::advertised_slots;
use zonal_proto::wire::{InstancePlacement, SlotTotals, ZoneReport, ZoneServiceView};

use crate::core::ZoneCore;
use crate::instances::{InstanceRecord, Instances};
use crate::registry::ServiceRecord;
use crate::scaler::scaler_view;

impl ZoneCore {
    /// The view of service `s`. Takes instances → scaler → gateway: the caller may hold the
    /// registry, nothing later.
    pub(crate) fn service_view(&self, s: &ServiceRecord) -> ZoneServiceView {
        let inst = self.instances_state();
        let sc = self.scaler_state();
        let gw = self.gateway_state();
        let entry = s.service.entry_component().map(|c| c.name.clone()).unwrap_or_default();
        let mut slots = SlotTotals::default();
        let mut running = 0;
        for i in inst.records.values().filter(|i| i.service == s.serviceid) {
            if i.state == InstanceState::Running {
                running += 1;
            }
            if i.component == entry && matches!(i.state, InstanceState::Running | InstanceState::Decommissioned) {
                if let Some(sl) = inst.reports.get(&i.id) {
                    let free = if i.state == InstanceState::Running { sl.free } else { 0 };
                    slots.add(SlotTotals { total: sl.max, free, used: sl.used });
                }
            }
        }
        let mut advertised = 0;
        let mut gateway_sessions = 0;
        if let (Some(c), true) = (s.service.entry_component(), s.is_deployed()) {
            let view = scaler_view(&inst, &sc, &gw, &s.serviceid, &c.name, c.slots.per_instance);
            advertised = advertised_slots(&view, c.slots.per_instance, c.scaling.max_instances);
            gateway_sessions =
                inst.records.values().filter(|i| i.service == s.serviceid).map(|i| gw.sessions_of(&i.id)).sum::<u32>()
                    + gw.remote_sessions_of(&s.serviceid);
        }
        let mut endpoints = BTreeMap::new();
        let mut peers = BTreeMap::new();
        let mut remote_peers = BTreeMap::new();
        for (comp, port, addr) in gw.listeners_of(&s.serviceid) {
            if comp == entry {
                endpoints.insert(port.to_string(), addr.to_string());
            }
            peers.insert(format!("{comp}/{port}"), addr.to_string());
            if let Some(remote) = s.remote_target(comp, port) {
                remote_peers.insert(addr.to_string(), remote.to_string());
            }
        }
        ZoneServiceView {
            serviceid: s.serviceid.clone(),
            state: s.state.as_str().to_string(),
            slots,
            instances: if s.is_deployed() { s.desired.clone() } else { BTreeMap::new() },
            running,
            namespace: s.serviceid.clone(),
            advertised,
            endpoints,
            peers,
            lost_sessions: inst.lost_sessions.get(&s.serviceid).copied().unwrap_or(0),
            gateway_sessions,
            remote_peers,
            notices: gw.notices_of(&s.serviceid),
        }
    }

    /// Each host with what is not reserved by instances.
    pub fn hosts_free(&self) -> Vec<HostSummary> {
        let inst = self.instances_state();
        self.hosts_free_in(&inst)
    }

    pub(crate) fn hosts_free_in(&self, inst: &Instances) -> Vec<HostSummary> {
        self.hosts_free_besides(inst, None)
    }

    /// Each host with what is not reserved by instances other than those of `service`
    /// (an offer for a service already here may reuse the room its own instances hold).
    pub(crate) fn hosts_free_for_offer(&self, service: &str) -> Vec<HostSummary> {
        let inst = self.instances_state();
        self.hosts_free_besides(&inst, Some(service))
    }

    fn hosts_free_besides(&self, inst: &Instances, service: Option<&str>) -> Vec<HostSummary> {
        self.settings
            .hosts
            .iter()
            .map(|h| {
                let mut free = h.capacity.clone();
                let reserving = |i: &&InstanceRecord| {
                    i.host == h.name && i.state != InstanceState::Lost && service.is_none_or(|s| i.service != s)
                };
                for i in inst.records.values().filter(reserving) {
                    free.sub_scaled(&i.resources, 1);
                }
                HostSummary { name: h.name.clone(), free, features: h.features.clone(), available: h.available }
            })
            .collect()
    }

    /// Where every recorded instance runs (lost ones excepted) and what it reserves.
    pub fn placements(&self) -> Vec<InstancePlacement> {
        let inst = self.instances_state();
        inst.records
            .values()
            .filter(|i| i.state != InstanceState::Lost)
            .map(|i| InstancePlacement {
                id: i.id.clone(),
                service: i.service.clone(),
                component: i.component.clone(),
                host: i.host.clone(),
                state: i.state,
                resources: i.resources.clone(),
            })
            .collect()
    }

    /// The heartbeat body.
    pub fn report(&self) -> ZoneReport {
        let hosts = self.hosts_free();
        let placements = self.placements();
        let services = self.services();
        ZoneReport { hosts, services, instances: self.instances_state().records.len() as u32, placements }
    }

    /// Prometheus gauges of the zone.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let mut by: BTreeMap<(String, String, &'static str), u32> = BTreeMap::new();
        let mut restarts: BTreeMap<(String, String), u32> = BTreeMap::new();
        let lost = {
            let inst = self.instances_state();
            for i in inst.records.values() {
                *by.entry((i.service.clone(), i.component.clone(), i.state.as_str())).or_default() += 1;
                *restarts.entry((i.service.clone(), i.component.clone())).or_default() += i.restarts;
            }
            inst.lost_sessions.clone()
        };
        let views = self.services();
        // Per remote peer: service, `component/port`, open sessions, unreachable count.
        let mut remote: Vec<(String, String, u32, u64)> = Vec::new();
        let rejected = {
            let gw = self.gateway_state();
            for (k, (n, f)) in gw.remote_counts() {
                remote.push((k.0.clone(), format!("{}/{}", k.1, k.2), n, f));
            }
            gw.rejected().clone()
        };
        let _ = writeln!(out, "# HELP zonal_zone_instances Instances by service, component and state.");
        let _ = writeln!(out, "# TYPE zonal_zone_instances gauge");
        for ((s, c, st), n) in &by {
            let _ = writeln!(out, "zonal_zone_instances{{service=\"{s}\",component=\"{c}\",state=\"{st}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP zonal_zone_instance_restarts Restarts of current instances after crashes.");
        let _ = writeln!(out, "# TYPE zonal_zone_instance_restarts gauge");
        for ((s, c), n) in &restarts {
            let _ = writeln!(out, "zonal_zone_instance_restarts{{service=\"{s}\",component=\"{c}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP zonal_zone_slots Session slots of each service's entry component.");
        let _ = writeln!(out, "# TYPE zonal_zone_slots gauge");
        for v in &views {
            let _ = writeln!(out, "zonal_zone_slots{{service=\"{}\",kind=\"total\"}} {}", v.serviceid, v.slots.total);
            let _ = writeln!(out, "zonal_zone_slots{{service=\"{}\",kind=\"free\"}} {}", v.serviceid, v.slots.free);
            let _ =
                writeln!(out, "zonal_zone_slots{{service=\"{}\",kind=\"advertised\"}} {}", v.serviceid, v.advertised);
        }
        let _ = writeln!(out, "# HELP zonal_zone_gateway_sessions Sessions the gateway proxies now.");
        let _ = writeln!(out, "# TYPE zonal_zone_gateway_sessions gauge");
        for v in &views {
            let _ = writeln!(out, "zonal_zone_gateway_sessions{{service=\"{}\"}} {}", v.serviceid, v.gateway_sessions);
        }
        let _ = writeln!(out, "# HELP zonal_zone_gateway_rejected_total Connections turned away: no free slot.");
        let _ = writeln!(out, "# TYPE zonal_zone_gateway_rejected_total counter");
        for (s, n) in &rejected {
            let _ = writeln!(out, "zonal_zone_gateway_rejected_total{{service=\"{s}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP zonal_zone_lost_sessions_total Sessions cut while open: on instances that died, and through the gateway by a stop of the zone manager.");
        let _ = writeln!(out, "# TYPE zonal_zone_lost_sessions_total counter");
        for (s, n) in &lost {
            let _ = writeln!(out, "zonal_zone_lost_sessions_total{{service=\"{s}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP zonal_zone_remote_sessions Sessions relayed to a peer in another zone now.");
        let _ = writeln!(out, "# TYPE zonal_zone_remote_sessions gauge");
        for (s, peer, n, _) in &remote {
            let _ = writeln!(out, "zonal_zone_remote_sessions{{service=\"{s}\",peer=\"{peer}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP zonal_zone_remote_unreachable_total Connections closed: the remote peer was unreachable."
        );
        let _ = writeln!(out, "# TYPE zonal_zone_remote_unreachable_total counter");
        for (s, peer, _, n) in &remote {
            let _ = writeln!(out, "zonal_zone_remote_unreachable_total{{service=\"{s}\",peer=\"{peer}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::zone;

    #[test]
    fn the_heartbeat_lists_where_instances_run_but_not_lost_ones() {
        let dir = tempfile::tempdir().expect("dir");
        let z = zone(dir.path());
        let rec = |id: &str, host: &str, state| InstanceRecord {
            id: id.into(),
            service: "web".into(),
            component: "web".into(),
            host: host.into(),
            token: format!("t-{id}"),
            admin_token: String::new(),
            pid: None,
            start_time: 0,
            ports: Vec::new(),
            workdir: dir.path().join(id),
            log: dir.path().join(id).join("instance.log"),
            state,
            restarts: 0,
            started_ms: None,
            restart_at_ms: None,
            last_exit: None,
            resources: zonal_model::Resources::new().with("cpu", zonal_model::Amount::cpu(250)),
        };
        {
            let mut inst = z.instances_state();
            for r in [rec("a", "h0", InstanceState::Running), rec("b", "h1", InstanceState::Lost)] {
                inst.records.insert(r.id.clone(), r);
            }
        }
        let report = z.report();
        assert_eq!(report.instances, 2);
        assert_eq!(report.placements.len(), 1, "{:?}", report.placements);
        let p = &report.placements[0];
        assert_eq!((p.id.as_str(), p.host.as_str(), p.state), ("a", "h0", InstanceState::Running));
        assert_eq!(p.resources.get("cpu"), 250);
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["placements"][0]["state"], "running");
        assert_eq!(json["placements"][0]["service"], "web");
    }
}
