//! Instance records and what is known about each instance while the manager runs: which
//! processes it watches, adopted ones, tokens, the last slot reports, sessions lost with
//! dead instances, and the last problem starting instances per service. Lock: `instances`
//! (after `registry`, before `moves`, `scaler` and `gateway`).
//!
//! Starting and stopping processes is in `launch`; the control loop that decides
//! when is in `reconcile`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use zonal_control::reconcile::{InstanceState, SlotUsage};
use zonal_model::Resources;
use zonal_proto::env::PortMapping;
use zonal_proto::wire::{InstanceSlots, InstanceView, Meter};
use zonal_proto::{Principal, Role};
use zonal_store::{Batch, Store, StoreExt};

use crate::adaptor::{AdminApi, DcAdaptor, ProcessStatus};
use crate::core::ZoneCore;
use crate::error::ZoneError;
use crate::gateway::GatewayState;

pub(crate) const T_INSTANCES: &str = "instances";

/// One instance, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub id: String,
    pub service: String,
    pub component: String,
    pub host: String,
    /// The instance's secret (its bearer token here, and its mark in `/proc/<pid>/environ`).
    pub token: String,
    /// The secret of the instance's admin API ([`zonal_proto::env::ZONAL_ADMIN_TOKEN`]); empty
    /// in a record written before admin secrets existed.
    #[serde(default)]
    pub admin_token: String,
    pub pid: Option<u32>,
    pub start_time: u64,
    pub ports: Vec<PortMapping>,
    pub workdir: PathBuf,
    pub log: PathBuf,
    pub state: InstanceState,
    pub restarts: u32,
    pub started_ms: Option<u64>,
    pub restart_at_ms: Option<u64>,
    pub last_exit: Option<String>,
    pub resources: Resources,
}

/// The instances and what the manager knows of them.
#[derive(Debug, Default)]
pub(crate) struct Instances {
    pub records: BTreeMap<String, InstanceRecord>,
    /// Instances whose process is watched (our child, or adopted and polled).
    pub supervised: HashSet<String>,
    /// Adopted instances (not our children: polled through /proc).
    pub adopted: HashSet<String>,
    /// The last slot report of each instance.
    pub reports: HashMap<String, InstanceSlots>,
    /// Token → instance id.
    pub tokens: HashMap<String, String>,
    /// Sessions that were open on instances that died, per service.
    pub lost_sessions: BTreeMap<String, u64>,
    /// Last problem starting instances, per service (logged once, not at every pass).
    pub problems: BTreeMap<String, String>,
}

impl Instances {
    /// Loads the records and checks every recorded process: alive and ours → will be
    /// adopted (running); gone → lost. Writes the outcome back.
    pub(crate) fn load(store: &dyn Store, adaptor: &dyn DcAdaptor) -> Result<Instances, ZoneError> {
        let mut out = Instances::default();
        let mut batch = Batch::new();
        for (id, mut rec) in store.list::<InstanceRecord>(T_INSTANCES, "")? {
            // A record is written before its process starts and again with the pid once it
            // has (a restart too: a failed record may own a process whose pid was not yet
            // written when the manager was killed). The process carries the token.
            if rec.pid.is_none() {
                if let Some((pid, start)) = crate::process::find_by_token(&rec.token) {
                    tracing::info!(instance = id, pid, "found the process of an instance whose pid was not recorded");
                    rec.pid = Some(pid);
                    rec.start_time = start;
                    rec.restart_at_ms = None;
                }
            }
            if let Some(pid) = rec.pid {
                match adaptor.status(pid, rec.start_time, &rec.token) {
                    ProcessStatus::Alive => {
                        tracing::info!(instance = id, pid, "instance still running: will adopt it");
                        if rec.state != InstanceState::Decommissioned {
                            rec.state = InstanceState::Running;
                        }
                    }
                    status => {
                        tracing::info!(instance = id, pid, ?status, "instance process is gone: lost");
                        rec.state = InstanceState::Lost;
                        rec.pid = None;
                    }
                }
            } else if rec.state != InstanceState::Failed {
                rec.state = InstanceState::Lost;
            }
            batch = batch.put(T_INSTANCES, &id, &rec)?;
            out.tokens.insert(rec.token.clone(), id.clone());
            out.records.insert(id, rec);
        }
        store.commit(batch)?;
        Ok(out)
    }

    /// Sessions in use on instance `id`: the larger of its report and what the gateway has
    /// open to it (a report may not yet count a session the gateway just forwarded).
    pub(crate) fn used_with(&self, gw: &GatewayState, id: &str) -> u32 {
        self.reports.get(id).map_or(0, |s| s.used).max(gw.sessions_of(id))
    }
}

/// The last `lines` lines of the file at `path` (empty when it cannot be read), reading at
/// most the last [`TAIL_BYTES`] of it, so a large log costs no more than that.
fn tail_lines(path: &std::path::Path, lines: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
    let len = f.metadata().map_or(0, |m| m.len());
    let from = len.saturating_sub(TAIL_BYTES);
    if f.seek(SeekFrom::Start(from)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    if f.take(TAIL_BYTES).read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    if from > 0 && !all.is_empty() {
        all.remove(0); // cut in the middle
    }
    let start = all.len().saturating_sub(lines);
    let mut out = all[start..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// The most of a log `zonal logs` reads (its tail).
const TAIL_BYTES: u64 = 8 << 20;

/// Slot usage for the reconciler, counting the gateway's open sessions too, so that a
/// draining instance is stopped only when neither its report nor the gateway shows a
/// session.
pub(crate) fn usage(inst: &Instances, gw: &GatewayState, id: &str) -> Option<SlotUsage> {
    let open = gw.sessions_of(id);
    match inst.reports.get(id) {
        Some(s) => Some(SlotUsage { max: s.max, free: s.free.min(s.max.saturating_sub(open)) }),
        None if open > 0 => Some(SlotUsage { max: open, free: 0 }),
        None => None,
    }
}

impl ZoneCore {
    pub(crate) fn no_instance(&self, id: &str) -> ZoneError {
        ZoneError::NotFound(format!("no instance {id:?} in zone {}", self.settings.name))
    }

    fn view(&self, inst: &Instances, gw: &GatewayState, r: &InstanceRecord) -> InstanceView {
        InstanceView {
            id: r.id.clone(),
            service: r.service.clone(),
            component: r.component.clone(),
            zone: self.settings.name.clone(),
            host: r.host.clone(),
            state: r.state,
            pid: r.pid,
            ports: r.ports.clone(),
            slots: inst.reports.get(&r.id).cloned(),
            restarts: r.restarts,
            started_ms: r.started_ms,
            adopted: inst.adopted.contains(&r.id),
            gateway_sessions: gw.sessions_of(&r.id),
            workdir: r.workdir.display().to_string(),
            log: r.log.display().to_string(),
            last_exit: r.last_exit.clone(),
        }
    }

    pub fn instances(&self, service: Option<&str>) -> Result<Vec<InstanceView>, ZoneError> {
        if let Some(s) = service {
            if !self.registry().services.contains_key(s) {
                return Err(self.no_service(s));
            }
        }
        let inst = self.instances_state();
        let gw = self.gateway_state();
        Ok(inst
            .records
            .values()
            .filter(|i| service.is_none_or(|s| i.service == s))
            .map(|r| self.view(&inst, &gw, r))
            .collect())
    }

    pub fn instance(&self, id: &str) -> Result<InstanceView, ZoneError> {
        let inst = self.instances_state();
        let gw = self.gateway_state();
        let r = inst.records.get(id).ok_or_else(|| self.no_instance(id))?;
        Ok(self.view(&inst, &gw, r))
    }

    /// Stops one particular instance and lowers its component's desired count by one.
    pub fn terminate_instance(&self, id: &str) -> Result<InstanceView, ZoneError> {
        let (service, component) = {
            let inst = self.instances_state();
            let r = inst.records.get(id).ok_or_else(|| self.no_instance(id))?;
            (r.service.clone(), r.component.clone())
        };
        self.update_service(&service, |rec| {
            if let Some(n) = rec.desired.get_mut(&component) {
                *n = n.saturating_sub(1);
            }
            Ok(())
        })?;
        self.stop_instance(id);
        self.instance(id)
    }

    /// Only an instance itself (or the domain) may speak for it.
    pub fn check_instance_caller(&self, caller: &Principal, id: &str) -> Result<(), ZoneError> {
        if caller.role == Role::Instance && caller.name != id {
            return Err(ZoneError::Forbidden(format!(
                "instance {} may only report for itself, not for instance {id}",
                caller.name
            )));
        }
        Ok(())
    }

    /// `PUT /1.0/instances/{id}/slots`: an instance reports its slots.
    pub fn report_slots(&self, id: &str, slots: InstanceSlots) -> Result<InstanceSlots, ZoneError> {
        let mut inst = self.instances_state();
        let rec = inst.records.get(id).cloned().ok_or_else(|| self.no_instance(id))?;
        if rec.state == InstanceState::Provisioning {
            let mut r = rec;
            r.state = InstanceState::Running;
            self.store.put(T_INSTANCES, id, &r)?;
            inst.records.insert(id.to_string(), r);
        }
        inst.reports.insert(id.to_string(), slots.clone());
        drop(inst);
        self.bump();
        // The scaler decides on slots: let it look now rather than at the next tick.
        self.kick();
        Ok(slots)
    }

    /// `POST /1.0/meters`: FUSION's Ceilometer `fusioncounter` (free session slots).
    pub fn meter(&self, caller: &Principal, m: &Meter) -> Result<InstanceSlots, ZoneError> {
        if m.counter_name != "fusioncounter" {
            return Err(ZoneError::Invalid(format!(
                "unknown counter_name {:?}; this zone accepts \"fusioncounter\" (session slots)",
                m.counter_name
            )));
        }
        let id = &m.resource_metadata.instance_id;
        self.check_instance_caller(caller, id)?;
        let volume = match &m.counter_volume {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| {
            ZoneError::Invalid(format!(
                "counter_volume {} is not a number of session slots; expected a non-negative number",
                m.counter_volume
            ))
        })?;
        let free = volume.round() as u32;
        let previous = self.instances_state().reports.get(id).cloned();
        let mut slots = previous.unwrap_or_default();
        slots.max = slots.max.max(free);
        slots.free = free;
        slots.used = slots.max - free;
        self.report_slots(id, slots)
    }

    pub fn log_tail(&self, id: &str, lines: usize) -> Result<String, ZoneError> {
        self.log_tail_of(id, lines, None)
    }

    /// The last `lines` lines of the log of instance `id`, running or removed (its log is
    /// kept: [`crate::launch`]); with `service`, only if the instance is or was of it.
    pub fn log_tail_of(&self, id: &str, lines: usize, service: Option<&str>) -> Result<String, ZoneError> {
        let live = self.instances_state().records.get(id).map(|r| (r.service.clone(), r.log.clone()));
        let (of, path) = match live {
            Some(found) => found,
            None => self.kept_log(id).map(|k| (k.service, k.path)).ok_or_else(|| self.no_instance(id))?,
        };
        if service.is_some_and(|s| s != of) {
            return Err(self.no_instance(id));
        }
        Ok(tail_lines(&path, lines))
    }

    fn admin_api(&self, id: &str) -> Result<AdminApi, ZoneError> {
        let inst = self.instances_state();
        let r = inst.records.get(id).ok_or_else(|| self.no_instance(id))?;
        if r.state != InstanceState::Running && r.state != InstanceState::Provisioning {
            return Err(ZoneError::Conflict(format!("instance {id} is {}; expected running", r.state.as_str())));
        }
        AdminApi::of(r).ok_or_else(|| {
            ZoneError::Conflict(format!("instance {id} has no admin port; it does not implement the instance API"))
        })
    }

    pub fn ports(&self, id: &str) -> Result<Vec<PortMapping>, ZoneError> {
        let inst = self.instances_state();
        inst.records.get(id).map(|r| r.ports.clone()).ok_or_else(|| self.no_instance(id))
    }

    pub async fn configs(&self, id: &str) -> Result<serde_json::Value, ZoneError> {
        let admin = self.admin_api(id)?;
        self.adaptor.configs(admin).await.map_err(|e| ZoneError::Unavailable(format!("instance {id}: {e}")))
    }

    pub async fn add_config(&self, id: &str, body: serde_json::Value) -> Result<serde_json::Value, ZoneError> {
        let admin = self.admin_api(id)?;
        let out = self
            .adaptor
            .add_config(admin, body)
            .await
            .map_err(|e| ZoneError::Conflict(format!("instance {id}: {e}")))?;
        self.bump();
        Ok(out)
    }

    pub async fn remove_config(&self, id: &str, name: &str) -> Result<(), ZoneError> {
        let admin = self.admin_api(id)?;
        self.adaptor.remove_config(admin, name).await.map_err(|e| ZoneError::Conflict(format!("instance {id}: {e}")))
    }

    /// Writes `rec` to the store (a failure is logged: the record in memory stands).
    pub(crate) fn persist(&self, rec: &InstanceRecord) {
        if let Err(e) = self.store.put(T_INSTANCES, &rec.id, rec) {
            tracing::error!(instance = rec.id, "cannot record the instance: {e}");
        }
    }

    /// Sets an instance's state (and stores it).
    pub(crate) fn set_state(&self, id: &str, state: InstanceState) {
        let mut inst = self.instances_state();
        if let Some(rec) = inst.records.get_mut(id) {
            rec.state = state;
            let rec = rec.clone();
            self.persist(&rec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{status, zone, WEB};

    /// A restart writes the record (failed, no pid) before it starts the process and the pid
    /// after: a zone killed between the two must still find the process at its next start,
    /// or the process runs on unknown, holding the instance's ports, and every restart fails.
    #[test]
    fn a_failed_record_whose_restart_started_a_process_adopts_it() {
        use std::os::unix::process::CommandExt;
        let store = zonal_store::MemStore::new();
        let token = zonal_proto::secret();
        let rec = InstanceRecord {
            id: "web-web-abc123".into(),
            service: "web".into(),
            component: "web".into(),
            host: "h".into(),
            token: token.clone(),
            admin_token: String::new(),
            pid: None,
            start_time: 0,
            ports: Vec::new(),
            workdir: PathBuf::from("/nonexistent/web-web-abc123"),
            log: PathBuf::from("/nonexistent/web-web-abc123.log"),
            state: InstanceState::Failed,
            restarts: 1,
            started_ms: Some(1),
            restart_at_ms: Some(2),
            last_exit: Some("killed by signal 9".into()),
            resources: Resources::default(),
        };
        store.put(T_INSTANCES, &rec.id, &rec).expect("put");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(zonal_proto::env::ZONAL_INSTANCE_TOKEN, &token)
            .process_group(0)
            .spawn()
            .expect("sleep");
        // spawn returns once the child is in execve, where the kernel fills in the new
        // program's environment a little later: until then /proc/<pid>/environ reads empty.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !crate::process::environ_has(child.id(), zonal_proto::env::ZONAL_INSTANCE_TOKEN, &token) {
            assert!(std::time::Instant::now() < deadline, "the child's environment never showed the token");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let adaptor = crate::process::ProcessAdaptor::new("z-test", PathBuf::from("/bin/false"));
        let loaded = Instances::load(&store, &adaptor);
        let _ = child.kill();
        let _ = child.wait();
        let loaded = loaded.expect("load");
        let got = &loaded.records[&rec.id];
        assert_eq!((got.pid, got.state, got.restart_at_ms), (Some(child.id()), InstanceState::Running, None));
        let stored: InstanceRecord = store.get(T_INSTANCES, &rec.id).expect("get").expect("stored");
        assert_eq!(stored.pid, Some(child.id()), "the adoption is written back");

        // With no such process the record stays failed: its restart is still due.
        let none = InstanceRecord { token: zonal_proto::secret(), ..rec };
        store.put(T_INSTANCES, &none.id, &none).expect("put");
        let loaded = Instances::load(&store, &adaptor).expect("load");
        let got = &loaded.records[&none.id];
        assert_eq!((got.pid, got.state, got.restart_at_ms), (None, InstanceState::Failed, Some(2)));
    }

    #[test]
    fn instances_speak_only_for_themselves() {
        let dir = tempfile::tempdir().expect("dir");
        let z = zone(dir.path());
        z.register_service("web", WEB).expect("register");
        let inst = Principal { name: "web-web-abc".into(), role: Role::Instance };
        assert_eq!(status(z.check_instance_caller(&inst, "web-web-xyz").expect_err("other")), 403);
        assert!(z.check_instance_caller(&inst, "web-web-abc").is_ok());
        let bad = Meter {
            counter_name: "fusioncounter".into(),
            counter_unit: None,
            counter_volume: serde_json::json!("lots"),
            counter_type: None,
            resource_metadata: zonal_proto::wire::MeterMetadata { instance_id: "web-web-abc".into(), service_id: None },
        };
        assert_eq!(status(z.meter(&inst, &bad).expect_err("not a number")), 400);
        assert_eq!(status(z.instance("nope").expect_err("no instance")), 404);
        assert_eq!(status(z.instances(Some("nope")).expect_err("no service")), 404);
    }
}
