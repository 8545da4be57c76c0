//! Starting and stopping instance processes through the DC adaptor: the host a new instance
//! goes to ([`crate::placement::choose_host`]), its record (written before the process
//! exists), the uid it runs under (its provider's, [`crate::users`]), its environment
//! (exactly `PATH`, `HOME`, the manifest's `env` and `zonal_proto::env`, with `ZONAL_PEER_*`
//! pointing at the zone's gateways — nothing of the zone's own), its stop, and what is left
//! when it is gone: the working directory is removed, the log kept (`<state>/logs/<id>.log`,
//! the last [`KEPT_LOGS_PER_SERVICE`] of each service for at most [`KEPT_LOG_DAYS`] days). The
//! control loop (`reconcile`) and moves call these.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use zonal_control::backoff::{after_crash, Backoff};
use zonal_control::place::{pick_host, HostSummary};
use zonal_control::reconcile::InstanceState;
use zonal_model::{RunSpec, Service};
use zonal_proto::env as penv;
use zonal_proto::now_ms;
use zonal_store::{Batch, StoreExt};

use crate::adaptor::LaunchSpec;
use crate::core::ZoneCore;
use crate::instances::{InstanceRecord, T_INSTANCES};
use crate::placement::choose_host;
use crate::reconcile::Event;
use crate::registry::T_CONTEXT;

/// `name` as an environment variable suffix: ASCII letters and digits upper-cased, the rest `_`.
pub(crate) fn env_key(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

fn describe_exit(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "exited".to_string(),
    }
}

/// The store table of removed instances' kept logs: id → [`KeptLog`].
pub(crate) const T_LOGS: &str = "logs";
/// Logs of removed instances kept per service.
pub const KEPT_LOGS_PER_SERVICE: usize = 10;
/// Days a removed instance's log is kept at most.
pub const KEPT_LOG_DAYS: u64 = 7;

/// The log of a removed instance, kept for `zonal logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeptLog {
    pub service: String,
    pub component: String,
    pub path: PathBuf,
    pub removed_ms: u64,
}

impl ZoneCore {
    fn launch_spec(&self, rec: &InstanceRecord, service: &Service, tenant: &str) -> Result<LaunchSpec, String> {
        let run_as = self.run_as(tenant)?;
        let comp = service
            .component(&rec.component)
            .ok_or_else(|| format!("service {} has no component {}", rec.service, rec.component))?;
        let (argv, extra_env) = match &comp.run {
            RunSpec::Command { argv, env } => (argv.clone(), env.clone()),
            RunSpec::Image { image, .. } => {
                return Err(format!(
                    "component {} runs the container image {image}; the process adaptor runs commands only (`run: <command line>`)",
                    comp.name
                ))
            }
            RunSpec::None => return Err(format!("component {} has nothing to run (`run` is empty)", comp.name)),
        };
        let url = self.url();
        let peers: Vec<String> =
            service.channels.iter().filter(|c| c.from == comp.name).map(|c| c.to.clone()).collect();
        // The whole environment: nothing of the zone's own is inherited (its token above all).
        let mut env = BTreeMap::new();
        env.insert("PATH".to_string(), penv::SAFE_PATH.to_string());
        env.insert("HOME".to_string(), rec.workdir.display().to_string());
        env.extend(extra_env);
        env.insert(penv::ZONAL_ZONE_URL.into(), url.clone());
        env.insert(penv::ZONAL_ZONE_FILE.into(), penv::ZONE_URL_FILE.into());
        env.insert(penv::ZONAL_ZONE.into(), self.settings.name.clone());
        env.insert(penv::ZONAL_HOST.into(), rec.host.clone());
        env.insert(penv::ZONAL_INSTANCE_ID.into(), rec.id.clone());
        env.insert(penv::ZONAL_INSTANCE_TOKEN.into(), rec.token.clone());
        env.insert(penv::ZONAL_ADMIN_TOKEN.into(), rec.admin_token.clone());
        env.insert(penv::ZONAL_SERVICE.into(), rec.service.clone());
        env.insert(penv::ZONAL_COMPONENT.into(), rec.component.clone());
        env.insert(penv::ZONAL_CONTEXT_URL.into(), format!("{url}/1.0/context/{}", rec.service));
        env.insert(penv::ZONAL_PORTS.into(), penv::encode_ports(&rec.ports));
        env.insert(penv::ZONAL_PEERS.into(), peers.join(","));
        env.insert(
            penv::ZONAL_CONFIG.into(),
            serde_json::json!({"service": rec.service, "component": rec.component, "zone": self.settings.name})
                .to_string(),
        );
        for p in &rec.ports {
            env.insert(format!("ZONAL_PORT_{}", env_key(&p.name)), p.public.to_string());
        }
        // TLS (auth, issue 14): the CA the instance must trust to call the zone over HTTPS.
        if let Some(pem) = zonal_proto::client::default_ca_pem() {
            env.insert(penv::ZONAL_CA_PEM.into(), pem);
        }
        // Connections to the components this one has channels to go through the zone's
        // gateway, which balances them over those instances by slots (FUSION §2.9), or
        // relays them to the zone the component runs in (remote peers).
        let mut first_port = BTreeSet::new();
        for (to, port, addr) in self.peer_gateways(service, &comp.name) {
            env.insert(format!("ZONAL_PEER_{}_{}", env_key(&to), env_key(&port)), addr.to_string());
            if first_port.insert(to.clone()) {
                env.insert(format!("ZONAL_PEER_{}", env_key(&to)), addr.to_string());
            }
        }
        Ok(LaunchSpec {
            id: rec.id.clone(),
            service: rec.service.clone(),
            component: rec.component.clone(),
            argv,
            env,
            workdir: rec.workdir.clone(),
            log: rec.log.clone(),
            run_as,
            resources: rec.resources.clone(),
            ports: rec.ports.clone(),
        })
    }

    /// Starts the process of `rec` (new or restarting). Returns the problem, if any.
    pub(crate) fn launch(&self, mut rec: InstanceRecord) -> Result<(), String> {
        let service = self.registry().services.get(&rec.service).map(|s| (s.service.clone(), s.tenant()));
        let Some((service, tenant)) = service else {
            return Err(format!("service {} is not registered", rec.service));
        };
        // A restarted process gets a fresh admin secret: a process that held its admin port
        // meanwhile and was sent the old one learns nothing that lasts. Stored before the
        // start, so a zone that crashes right after still knows it.
        if rec.started_ms.is_some() {
            rec.admin_token = zonal_proto::secret();
            self.persist(&rec);
        }
        let result = self.launch_spec(&rec, &service, &tenant).and_then(|spec| {
            self.adaptor.provision(&spec)?;
            self.adaptor.start(&spec)
        });
        let mut inst = self.instances_state();
        match result {
            Ok(launched) => {
                rec.pid = Some(launched.pid);
                rec.start_time = launched.start_time;
                rec.started_ms = Some(now_ms());
                rec.restart_at_ms = None;
                rec.state = InstanceState::Provisioning;
                self.persist(&rec);
                tracing::info!(instance = rec.id, pid = launched.pid, host = rec.host, "instance started");
                inst.supervised.insert(rec.id.clone());
                inst.adopted.remove(&rec.id);
                if let Some(child) = launched.child {
                    self.watch_child(rec.id.clone(), launched.pid, child);
                } else {
                    inst.adopted.insert(rec.id.clone());
                }
                inst.records.insert(rec.id.clone(), rec);
                Ok(())
            }
            Err(e) => {
                let (restarts, delay) = after_crash(&Backoff::RESTART, rec.restarts, 0);
                rec.restarts = restarts;
                rec.restart_at_ms = Some(now_ms() + delay);
                rec.last_exit = Some(e.clone());
                rec.state = InstanceState::Failed;
                rec.pid = None;
                self.persist(&rec);
                inst.records.insert(rec.id.clone(), rec);
                Err(e)
            }
        }
    }

    pub(crate) fn create_instance(&self, service_id: &str, component: &str) -> Result<(), String> {
        self.create_instance_on(service_id, component, None).map(|_| ())
    }

    /// Starts one instance of `component`: on `host` when given (a move), else on the host
    /// [`choose_host`] chooses (planned hosts, then the accepted offer's, then any). Returns
    /// the new instance's id once its process was launched; the error is a log message.
    pub(crate) fn create_instance_on(
        &self,
        service_id: &str,
        component: &str,
        on: Option<&str>,
    ) -> Result<String, String> {
        // Lock order: registry → instances → binding, all released before the launch.
        let (comp, planned, offered, hosts, occupied, live, attached) = {
            let reg = self.registry();
            let s = reg.services.get(service_id).ok_or_else(|| format!("service {service_id} is not registered"))?;
            let comp = s
                .component_for_new_instances(component)
                .ok_or_else(|| format!("service {service_id} has no component {component}"))?;
            let planned = s.planned_hosts.get(component).cloned().unwrap_or_default();
            let offered = s.accepted_offer.as_ref().map(|o| o.hosts.clone()).unwrap_or_default();
            let inst = self.instances_state();
            let mut occupied: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut live: BTreeMap<String, u32> = BTreeMap::new();
            for i in inst.records.values().filter(|i| i.service == service_id && i.state != InstanceState::Lost) {
                occupied.entry(i.host.clone()).or_default().push(i.component.clone());
                // Live as the reconciler counts them: going away (stopping, draining) does not count.
                let going = matches!(i.state, InstanceState::Terminating | InstanceState::Decommissioned);
                if i.component == component && !going {
                    *live.entry(i.host.clone()).or_default() += 1;
                }
            }
            let hosts = self.hosts_free_in(&inst);
            drop(inst);
            drop(reg);
            let attached = self.binding_state().dca_attached;
            (comp, planned, offered, hosts, occupied, live, attached)
        };
        if !attached {
            return Err("no DC adaptor is attached to this zone (PUT /1.0/dca)".into());
        }
        let host = match on {
            Some(name) => {
                let only: Vec<HostSummary> = hosts.iter().filter(|h| h.name == name).cloned().collect();
                pick_host(&only, &comp, &occupied).cloned()
            }
            None => choose_host(&hosts, &comp, &occupied, &planned, &live, &offered).cloned(),
        };
        let host = host.ok_or_else(|| {
            format!(
                "no host of zone {} has room for an instance of {service_id}/{component} ({})",
                self.settings.name, comp.resources
            )
        })?;
        let token = zonal_proto::secret();
        let id = format!("{service_id}-{component}-{}", &token[..6]);
        let workdir = self.settings.state_dir.join("instances").join(&id);
        let log = self.logs_dir().join(format!("{id}.log"));
        let rec = InstanceRecord {
            id: id.clone(),
            service: service_id.to_string(),
            component: component.to_string(),
            host: host.name.clone(),
            token: token.clone(),
            admin_token: zonal_proto::secret(),
            pid: None,
            start_time: 0,
            ports: self.adaptor.ports(&comp.ports)?,
            log,
            workdir,
            state: InstanceState::Provisioning,
            restarts: 0,
            started_ms: None,
            restart_at_ms: None,
            last_exit: None,
            resources: comp.resources.clone(),
        };
        // Recorded before the process exists, so a crash right after the start can still
        // find the process by its token.
        self.persist(&rec);
        {
            let mut inst = self.instances_state();
            inst.tokens.insert(token, id.clone());
            inst.records.insert(id.clone(), rec.clone());
        }
        self.launch(rec).map(|_| id)
    }

    fn watch_child(&self, id: String, pid: u32, mut child: tokio::process::Child) {
        let tx = self.events.clone();
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(s) => describe_exit(s),
                Err(e) => format!("could not wait for the process: {e}"),
            };
            let _ = tx.send(Event::Exited { id, pid, status });
        });
    }

    /// Stops an instance (SIGTERM, SIGKILL after the grace period) in the background; the
    /// control loop forgets it once its process is gone.
    pub(crate) fn stop_instance(&self, id: &str) {
        let pid = {
            let mut inst = self.instances_state();
            let Some(rec) = inst.records.get_mut(id) else { return };
            if rec.state == InstanceState::Terminating {
                return;
            }
            rec.state = InstanceState::Terminating;
            let rec = rec.clone();
            self.persist(&rec);
            rec.pid
        };
        let tx = self.events.clone();
        let adaptor = self.adaptor.clone();
        let grace = self.settings.stop_grace;
        let id = id.to_string();
        tokio::spawn(async move {
            if let Some(pid) = pid {
                adaptor.stop(&id, pid, grace).await;
            }
            let _ = tx.send(Event::Stopped { id });
        });
    }

    /// Drops an instance's record, token, context entries and adaptor leftovers (its
    /// working directory); keeps its log.
    pub(crate) fn forget(&self, id: &str) {
        let mut inst = self.instances_state();
        let Some(rec) = inst.records.remove(id) else { return };
        inst.supervised.remove(id);
        inst.adopted.remove(id);
        inst.reports.remove(id);
        inst.tokens.remove(&rec.token);
        let mut batch = Batch::new().delete(T_INSTANCES, id);
        if let Ok(keys) = self.store.list_raw(T_CONTEXT, &format!("{}/{}/{}", rec.service, rec.component, id)) {
            for (k, _) in keys {
                batch = batch.delete(T_CONTEXT, &k);
            }
        }
        if let Err(e) = self.store.commit(batch) {
            tracing::error!(instance = id, "cannot drop the instance record: {e}");
        }
        drop(inst);
        let log = self.keep_log(&rec);
        self.adaptor.cleanup(id, &rec.workdir);
        self.record_kept_log(&rec, log);
    }

    /// The zone's directory of instance logs.
    pub(crate) fn logs_dir(&self) -> PathBuf {
        self.settings.state_dir.join("logs")
    }

    /// The log of a removed instance, out of its working directory when it was there (records
    /// of older zones), into the zone's logs.
    fn keep_log(&self, rec: &InstanceRecord) -> Option<PathBuf> {
        if !rec.log.starts_with(&rec.workdir) {
            return rec.log.exists().then(|| rec.log.clone());
        }
        // Never through a link the instance planted in its directory.
        let is_file = std::fs::symlink_metadata(&rec.log).is_ok_and(|m| m.is_file());
        if !is_file {
            return None;
        }
        let dest = self.logs_dir().join(format!("{}.log", rec.id));
        let moved = crate::process::private_dir(&self.logs_dir()).and_then(|_| {
            std::fs::rename(&rec.log, &dest).map_err(|e| format!("cannot keep the log {}: {e}", rec.log.display()))
        });
        match moved {
            Ok(()) => Some(dest),
            Err(e) => {
                tracing::warn!(instance = rec.id, "{e}");
                None
            }
        }
    }

    /// Indexes a removed instance's kept log and applies the retention.
    fn record_kept_log(&self, rec: &InstanceRecord, log: Option<PathBuf>) {
        let Some(path) = log else { return };
        let kept =
            KeptLog { service: rec.service.clone(), component: rec.component.clone(), path, removed_ms: now_ms() };
        if let Err(e) = self.store.put(T_LOGS, &rec.id, &kept) {
            tracing::warn!(instance = rec.id, "cannot index the kept log: {e}");
        }
        self.prune_logs(now_ms());
    }

    /// The kept log of a removed instance.
    pub(crate) fn kept_log(&self, id: &str) -> Option<KeptLog> {
        self.store.get::<KeptLog>(T_LOGS, id).ok().flatten()
    }

    /// Retention of removed instances' logs: the newest [`KEPT_LOGS_PER_SERVICE`] of each
    /// service, none older than [`KEPT_LOG_DAYS`] days; a log file that belongs to no instance
    /// record and no index entry (a crash between the two) goes once it is that old.
    pub(crate) fn prune_logs(&self, now: u64) {
        let max_age = KEPT_LOG_DAYS * 24 * 3600 * 1000;
        let Ok(all) = self.store.list::<KeptLog>(T_LOGS, "") else { return };
        let mut by_service: BTreeMap<&str, Vec<(&String, &KeptLog)>> = BTreeMap::new();
        for (id, k) in &all {
            by_service.entry(k.service.as_str()).or_default().push((id, k));
        }
        let mut drop_ids: Vec<(&String, &KeptLog)> = Vec::new();
        for (_, mut logs) in by_service {
            logs.sort_by_key(|(id, k)| (std::cmp::Reverse(k.removed_ms), *id));
            for (i, (id, k)) in logs.into_iter().enumerate() {
                if i >= KEPT_LOGS_PER_SERVICE || now.saturating_sub(k.removed_ms) > max_age {
                    drop_ids.push((id, k));
                }
            }
        }
        let mut batch = Batch::new();
        for (id, k) in &drop_ids {
            if k.path.starts_with(self.logs_dir()) {
                let _ = std::fs::remove_file(&k.path);
            }
            batch = batch.delete(T_LOGS, id);
        }
        if !drop_ids.is_empty() {
            if let Err(e) = self.store.commit(batch) {
                tracing::warn!("cannot drop expired logs from the index: {e}");
            }
        }
        // Orphans: files of no record and no index entry, older than the retention.
        let known: BTreeSet<PathBuf> = {
            let inst = self.instances_state();
            inst.records.values().map(|r| r.log.clone()).collect()
        };
        let indexed: BTreeSet<&Path> = all.iter().map(|(_, k)| k.path.as_path()).collect();
        let Ok(entries) = std::fs::read_dir(self.logs_dir()) else { return };
        for e in entries.flatten() {
            let path = e.path();
            if known.contains(&path) || indexed.contains(path.as_path()) {
                continue;
            }
            let old = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_millis() as u64 > max_age);
            if old && e.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// Removes working directories that belong to no instance record (left by zones from
    /// before directories were removed with their instances, or by a crash between the two).
    pub(crate) fn prune_workdirs(&self) {
        let known: BTreeSet<PathBuf> = self.instances_state().records.values().map(|r| r.workdir.clone()).collect();
        let Ok(entries) = std::fs::read_dir(self.settings.state_dir.join("instances")) else { return };
        for e in entries.flatten() {
            let path = e.path();
            let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
            if known.contains(&path) || !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            tracing::info!("removing {}: the working directory of no instance of this zone", path.display());
            self.adaptor.cleanup(&name, &path);
        }
    }

    /// Tells every instance the zone's new URL (the `zone.url` in its working directory).
    pub(crate) fn tell_instances_url(&self, url: &str) {
        let dirs: Vec<(String, PathBuf)> =
            self.instances_state().records.values().map(|r| (r.id.clone(), r.workdir.clone())).collect();
        for (id, dir) in dirs {
            if let Err(e) = self.adaptor.zone_moved(&dir, url) {
                tracing::warn!(instance = id, "{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_environment_suffixes() {
        assert_eq!(env_key("my-peer.1"), "MY_PEER_1");
    }

    #[test]
    fn directories_of_no_instance_are_removed_and_kept_logs_are_pruned() {
        let dir = tempfile::tempdir().expect("dir");
        let z = crate::core::testing::zone(dir.path());
        let ghost = dir.path().join("instances").join("web-web-0a0b0c");
        std::fs::create_dir_all(&ghost).expect("ghost");
        std::fs::write(ghost.join("instance.log"), "old").expect("old log");
        z.prune_workdirs();
        assert!(!ghost.exists());

        // 12 removed instances of one service: the newest 10 logs stay; an old one goes.
        let logs = z.logs_dir();
        std::fs::create_dir_all(&logs).expect("logs");
        let now = now_ms();
        for i in 0..12u64 {
            let path = logs.join(format!("web-web-{i}.log"));
            std::fs::write(&path, "x").expect("log");
            let k = KeptLog { service: "web".into(), component: "web".into(), path, removed_ms: now - 12 + i };
            z.store.put(T_LOGS, &format!("web-web-{i}"), &k).expect("index");
        }
        let old = logs.join("db-db-1.log");
        std::fs::write(&old, "x").expect("log");
        let week = KEPT_LOG_DAYS * 24 * 3600 * 1000;
        let k = KeptLog { service: "db".into(), component: "db".into(), path: old.clone(), removed_ms: now - week - 1 };
        z.store.put(T_LOGS, "db-db-1", &k).expect("index");
        z.prune_logs(now);
        let left: Vec<String> =
            z.store.list::<KeptLog>(T_LOGS, "").expect("list").into_iter().map(|(id, _)| id).collect();
        assert_eq!(left.len(), KEPT_LOGS_PER_SERVICE, "{left:?}");
        assert!(!left.contains(&"web-web-0".to_string()) && !left.contains(&"web-web-1".to_string()));
        assert!(!old.exists() && !logs.join("web-web-0.log").exists() && logs.join("web-web-11.log").exists());
        assert_eq!(z.log_tail_of("web-web-11", 5, Some("web")).expect("kept"), "x\n");
        assert_eq!(crate::core::testing::status(z.log_tail_of("web-web-11", 5, Some("db")).expect_err("other")), 404);
    }
}
