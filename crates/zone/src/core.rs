//! The zone manager's hub: [`ZoneCore`], its settings, and how its state is locked.
//!
//! The logic is split by concern, each module owning its state (one lock each) and adding
//! its methods to [`ZoneCore`]:
//!
//! | module | state | what |
//! |---|---|---|
//! | [`crate::registry`] | `registry` | services: register, update, delete, desired counts, state, the domain's plan |
//! | [`crate::instances`] | `instances` | instance records, tokens, slot reports, lost sessions; views, reports, logs, configs |
//! | `launch` | — | starting and stopping processes: host choice, environment, records |
//! | `reconcile` | — | the control loop: process events, adoption, the reconciler's actions |
//! | [`crate::moves`] | `moves` | instance moves to another host (persisted) |
//! | [`crate::scaler`] | `scaler` | the slot scaler and overlays (virtual elastic scaling) |
//! | `gateway` | `gateway` | listeners, the choice of instance per connection, session counts, remote peers |
//! | [`crate::binding`] | `binding` | the domain binding and the DC adaptor attachment |
//! | [`crate::context`] | — (store) | the late-binding namespace |
//! | [`crate::report`] | — | service views, heartbeat body, host capacity, metrics |
//! | [`crate::offers`] | `offers` | offers to the domain (memory only) |
//! | [`crate::users`] | `uids` | the providers' uids/gids (persisted in `meta`) |
//!
//! **Lock order.** A method that holds several locks takes them in this order, and never
//! takes an earlier one while holding a later one: `registry` → `instances` → `moves` →
//! `scaler` → `gateway` → `binding`. `offers`, `uids`, `url` and `events_rx` are leaves: nothing else
//! is taken while one of them is held. Store writes may happen under a lock (a record and
//! its store row change together); slow work (processes, HTTP, sleeping) never does.
//!
//! Store tables: `meta` (identity, domain binding, DCA), `services` (id →
//! [`crate::registry::ServiceRecord`]), `instances` (id → [`crate::instances::InstanceRecord`]),
//! `moves`, `context` (`<namespace>/<key>` → JSON), `gateway` (listener ports, lost sessions,
//! the session ledger's generation counted: see `gateway`).
//!
//! Crash rules:
//! * An instance record is written *before* its process is started and again with its pid
//!   right after, so a crash in between leaves a record without pid; on restart such a
//!   process is found by its token in `/proc`.
//! * On start, every record with a pid is checked: alive with the same kernel start time and
//!   token → *adopt*; otherwise → *lost* (forgotten and replaced by the reconciler).
//! * A clean stop (SIGTERM/SIGINT to the manager) stops every instance and drops its record;
//!   desired counts stay, so the next start brings the service back.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Notify};
use zonal_control::slots::BalancePolicy;
use zonal_proto::wire::HostInfo;
use zonal_proto::{now_ms, Principal, Role};
use zonal_store::{Store, StoreExt};

use crate::adaptor::DcAdaptor;
use crate::binding::Binding;
use crate::error::ZoneError;
use crate::gateway::GatewayState;
use crate::instances::Instances;
use crate::moves::MoveRecord;
use crate::offers::OfferBook;
use crate::reconcile::Event;
use crate::registry::Registry;
use crate::scaler::ScalerState;
use crate::users::{Isolation, UidBook};

pub(crate) const T_META: &str = "meta";

/// Settings of a zone manager.
#[derive(Debug, Clone)]
pub struct ZoneSettings {
    pub name: String,
    pub tier: Option<String>,
    pub hosts: Vec<HostInfo>,
    /// The zone's prices (quoted in offers).
    pub price: zonal_model::Price,
    pub state_dir: PathBuf,
    /// How long a stopping instance gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// The scaler's and the gateway's settings.
    pub slots: SlotSettings,
    /// Whose uid instances run under, and their process limit ([`crate::users`]).
    pub isolation: Isolation,
}

/// The longest a relay thread may poll a session before it sleeps: longer only burns CPU.
pub const MAX_GATEWAY_POLL: Duration = Duration::from_millis(10);

/// How the zone scales on session slots and balances new sessions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlotSettings {
    /// The gateway's choice of instance for a new connection.
    pub balance: BalancePolicy,
    /// Scale in only while `min_free + hysteresis` slots stay free without the victim.
    pub hysteresis: u32,
    /// Least time between two scale-outs, and between two scale-ins.
    pub cooldown_out: Duration,
    pub cooldown_in: Duration,
    /// How long a relay thread polls a session's socket for its next message before it
    /// blocks (0: never polls; at most [`MAX_GATEWAY_POLL`]): lower added latency for CPU
    /// (see `relay::threads`).
    pub gateway_poll: Duration,
}

impl Default for SlotSettings {
    fn default() -> Self {
        SlotSettings {
            balance: BalancePolicy::LeastLoaded,
            hysteresis: 5,
            cooldown_out: Duration::from_secs(1),
            cooldown_in: Duration::from_secs(10),
            gateway_poll: Duration::from_micros(50),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Identity {
    api_key: String,
    last_addr: Option<String>,
}

/// The zone manager.
pub struct ZoneCore {
    pub settings: ZoneSettings,
    /// Itself, for background tasks (which must not keep the zone alive).
    pub(crate) me: Weak<ZoneCore>,
    api_key: String,
    /// The zone's own bearer token at the domain (what its operator started it with): at this
    /// zone it admits role `zone`, which only `GET /metrics` accepts.
    own_token: std::sync::OnceLock<String>,
    url: Mutex<String>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) adaptor: Arc<dyn DcAdaptor>,
    registry: Mutex<Registry>,
    instances: Mutex<Instances>,
    moves: Mutex<BTreeMap<String, MoveRecord>>,
    scaler: Mutex<ScalerState>,
    gateway: Mutex<GatewayState>,
    binding: Mutex<Binding>,
    /// The providers' uids (a leaf lock).
    uids: Mutex<UidBook>,
    kick: Notify,
    pub(crate) events: mpsc::UnboundedSender<Event>,
    pub(crate) events_rx: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    /// Bumped on every change a heartbeat should carry.
    pub changed: watch::Sender<u64>,
    /// Offers made to the domain, until they expire.
    pub(crate) offers: Mutex<OfferBook>,
}

/// A poisoned lock means a panic elsewhere while it was held; the state is still the best
/// there is, and the zone must keep serving its instances.
fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ZoneCore {
    /// Opens the zone: loads the store and checks every recorded process.
    pub fn open(
        settings: ZoneSettings,
        store: Arc<dyn Store>,
        adaptor: Arc<dyn DcAdaptor>,
    ) -> Result<Arc<Self>, ZoneError> {
        let identity = match store.get::<Identity>(T_META, "identity")? {
            Some(i) => i,
            None => {
                let i = Identity { api_key: zonal_proto::secret(), last_addr: None };
                store.put(T_META, "identity", &i)?;
                i
            }
        };
        let binding = Binding::load(store.as_ref())?;
        let registry = Registry::load(store.as_ref())?;
        let moves = crate::moves::load(store.as_ref())?;
        let mut instances = Instances::load(store.as_ref(), adaptor.as_ref())?;
        let uids = UidBook::load(store.as_ref(), &settings.isolation)?;
        // The gateway's ports and lost sessions, the sessions the last process cut included.
        let services = registry.services.keys().cloned().collect();
        let recovered = crate::gateway::recover(store.as_ref(), &settings.state_dir, &services)?;
        instances.lost_sessions = recovered.lost;
        let (tx, rx) = mpsc::unbounded_channel();
        let gateway = GatewayState::restored(now_ms() | 1, recovered.ports, recovered.ledger);
        Ok(Arc::new_cyclic(|me| ZoneCore {
            settings,
            me: me.clone(),
            api_key: identity.api_key,
            own_token: std::sync::OnceLock::new(),
            url: Mutex::new(String::new()),
            store,
            adaptor,
            registry: Mutex::new(registry),
            instances: Mutex::new(instances),
            moves: Mutex::new(moves),
            scaler: Mutex::new(ScalerState::default()),
            gateway: Mutex::new(gateway),
            binding: Mutex::new(binding),
            uids: Mutex::new(uids),
            kick: Notify::new(),
            events: tx,
            events_rx: Mutex::new(Some(rx)),
            changed: watch::channel(0).0,
            offers: Mutex::new(Default::default()),
        }))
    }

    // Lock accessors, in lock order (see the module documentation).

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        guard(&self.registry)
    }

    pub(crate) fn instances_state(&self) -> MutexGuard<'_, Instances> {
        guard(&self.instances)
    }

    pub(crate) fn moves_state(&self) -> MutexGuard<'_, BTreeMap<String, MoveRecord>> {
        guard(&self.moves)
    }

    pub(crate) fn scaler_state(&self) -> MutexGuard<'_, ScalerState> {
        guard(&self.scaler)
    }

    pub(crate) fn gateway_state(&self) -> MutexGuard<'_, GatewayState> {
        guard(&self.gateway)
    }

    pub(crate) fn binding_state(&self) -> MutexGuard<'_, Binding> {
        guard(&self.binding)
    }

    pub(crate) fn offer_book(&self) -> MutexGuard<'_, OfferBook> {
        guard(&self.offers)
    }

    pub(crate) fn uid_book(&self) -> MutexGuard<'_, UidBook> {
        guard(&self.uids)
    }

    /// Tells the heartbeat that something it carries changed.
    pub(crate) fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Asks the control loop to reconcile now.
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    /// Resolves when [`ZoneCore::kick`] was called (the control loop waits on it).
    pub(crate) async fn kicked(&self) {
        self.kick.notified().await
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The bearer token the domain uses to call this zone.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    pub fn url(&self) -> String {
        guard(&self.url).clone()
    }

    /// The address the manager listened on last time (reused so adopted instances keep
    /// reaching it).
    pub fn last_addr(&self) -> Option<String> {
        self.store.get::<Identity>(T_META, "identity").ok().flatten().and_then(|i| i.last_addr)
    }

    /// Records the manager's URL (and writes `<state>/zone.url`, and the `zone.url` in each
    /// instance's working directory, for the instances). Called once at start, which is also
    /// when directories of no instance are removed and the logs of removed instances pruned.
    pub fn set_url(&self, addr: std::net::SocketAddr) -> Result<(), ZoneError> {
        self.set_url_with_scheme("http", addr)
    }

    /// [`ZoneCore::set_url`] with the scheme the API is served with (`http`, `https`).
    pub fn set_url_with_scheme(&self, scheme: &str, addr: std::net::SocketAddr) -> Result<(), ZoneError> {
        let url = format!("{scheme}://{addr}");
        *guard(&self.url) = url.clone();
        let identity = Identity { api_key: self.api_key.clone(), last_addr: Some(addr.to_string()) };
        self.store.put(T_META, "identity", &identity)?;
        let path = self.settings.state_dir.join("zone.url");
        std::fs::write(&path, &url).map_err(|e| ZoneError::Store(format!("cannot write {}: {e}", path.display())))?;
        self.tell_instances_url(&url);
        self.prune_workdirs();
        self.prune_logs(now_ms());
        Ok(())
    }

    /// Sets the zone's own token at the domain, which then admits role `zone` here (see
    /// `own_token`); an empty token admits nothing.
    pub fn set_own_token(&self, token: &str) {
        if !token.is_empty() {
            let _ = self.own_token.set(token.to_string());
        }
    }

    /// Resolves a bearer token: the domain's key, the zone's own token or an instance's token.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        if !self.api_key.is_empty() && token == self.api_key {
            return Some(Principal { name: "domain".into(), role: Role::Domain });
        }
        if self.own_token.get().is_some_and(|own| own == token) {
            return Some(Principal { name: self.settings.name.clone(), role: Role::Zone });
        }
        self.instances_state().tokens.get(token).map(|id| Principal { name: id.clone(), role: Role::Instance })
    }
}

/// A service or instance name as the API accepts it.
pub(crate) fn valid_name(kind: &str, name: &str) -> Result<(), ZoneError> {
    match zonal_model::names::api_name_problem(name) {
        Some(why) => Err(ZoneError::Invalid(format!("{kind} name {why}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A zone on a memory store for unit tests.

    use super::*;
    use zonal_store::MemStore;

    pub(crate) const WEB: &str = "kind: Service\nname: web\ncomponents:\n  - name: web\n    run: zonal workload\n    scaling: {min_instances: 1, max_instances: 3}\n";

    pub(crate) fn zone_with_hosts(dir: &std::path::Path, hosts: Vec<HostInfo>) -> Arc<ZoneCore> {
        let settings = ZoneSettings {
            name: "z".into(),
            tier: None,
            hosts,
            price: Default::default(),
            state_dir: dir.to_path_buf(),
            stop_grace: Duration::from_secs(1),
            slots: SlotSettings::default(),
            isolation: Isolation::default(),
        };
        let adaptor = Arc::new(crate::process::ProcessAdaptor::new("z-test", PathBuf::from("/bin/false")));
        ZoneCore::open(settings, Arc::new(MemStore::new()), adaptor).expect("open")
    }

    pub(crate) fn zone(dir: &std::path::Path) -> Arc<ZoneCore> {
        zone_with_hosts(dir, Vec::new())
    }

    /// The HTTP status `api.rs` gives an error.
    pub(crate) fn status(e: ZoneError) -> u16 {
        zonal_proto::ApiError::from(e).status
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    use zonal_control::reconcile::InstanceState;
    use zonal_model::{Amount, Resources};
    use zonal_proto::wire::{InstanceSlots, ZoneSlotsChange};

    use super::testing::zone_with_hosts;
    use super::*;
    use crate::gateway::Route;
    use crate::instances::InstanceRecord;

    const DUO: &str = "kind: Service\nname: duo\nentry: front\ncomponents:\n  - name: front\n    run: zonal workload\n    resources: {cpu: 100m}\n    scaling: {min_instances: 1, max_instances: 4}\n    ports:\n      - {name: tcp, protocol: tcp}\n  - name: back\n    run: zonal workload\n    resources: {cpu: 100m}\n    scaling: {min_instances: 0, max_instances: 4}\n    ports:\n      - {name: rpc, protocol: tcp}\nchannels:\n  - {from: front, to: back}\n";

    /// Every path that takes several locks, at once from several threads: a lock taken out
    /// of order would sooner or later deadlock here, and the watchdog would say so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_use_takes_the_locks_in_one_order() {
        let dir = tempfile::tempdir().expect("dir");
        let capacity = Resources::new().with("cpu", Amount::cpu(8000));
        let hosts = ["h0", "h1"]
            .map(|n| HostInfo { name: n.into(), capacity: capacity.clone(), available: true, ..Default::default() })
            .to_vec();
        let z = zone_with_hosts(dir.path(), hosts);
        z.register_service("duo", DUO).expect("register");
        let plan = |remote: bool| ZoneSlotsChange {
            instances: [("front".to_string(), 2), ("back".to_string(), u32::from(!remote))].into(),
            remote_peers: if remote {
                [("back/rpc".to_string(), "127.0.0.1:9".to_string())].into()
            } else {
                BTreeMap::new()
            },
            ..Default::default()
        };
        z.set_desired("duo", &plan(true)).expect("plan");
        z.set_service_state("duo", "deploy").expect("deploy");
        // Two running instances (records only: no process is started by this test).
        for (i, host) in ["h0", "h1"].iter().enumerate() {
            let id = format!("duo-front-{i}");
            let rec = InstanceRecord {
                id: id.clone(),
                service: "duo".into(),
                component: "front".into(),
                host: host.to_string(),
                token: format!("token-{i}"),
                admin_token: String::new(),
                pid: None,
                start_time: 0,
                ports: vec![zonal_proto::env::PortMapping {
                    name: "tcp".into(),
                    protocol: "tcp".into(),
                    private: 0,
                    public: 1,
                }],
                workdir: dir.path().join(&id),
                log: dir.path().join(&id).join("instance.log"),
                state: InstanceState::Running,
                restarts: 0,
                started_ms: Some(0),
                restart_at_ms: None,
                last_exit: None,
                resources: Resources::new().with("cpu", Amount::cpu(100)),
            };
            z.instances_state().records.insert(id, rec);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let handle = tokio::runtime::Handle::current();
        let front = ("duo".to_string(), "front".to_string(), "tcp".to_string());
        let back = ("duo".to_string(), "back".to_string(), "rpc".to_string());
        let workers: Vec<Box<dyn Fn(u64) + Send>> = vec![
            Box::new({
                let z = z.clone();
                move |n| {
                    for key in [&front, &back] {
                        match z.gateway_route(key, &[]) {
                            Some(Route::Local(p)) => z.gateway_release(&key.0, &p.instance, p.addr.port()),
                            Some(Route::Remote(_)) => z.remote_release(key),
                            None => z.gateway_rejected("duo"),
                        }
                    }
                    let slots =
                        InstanceSlots { max: 4, free: (n % 4) as u32, used: 4 - (n % 4) as u32, ..Default::default() };
                    let _ = z.report_slots(&format!("duo-front-{}", n % 2), slots);
                }
            }),
            Box::new({
                let z = z.clone();
                move |_| {
                    let _ = z.report();
                    z.render_metrics(&mut String::new());
                    let _ = z.instances(Some("duo"));
                    let _ = z.dca();
                }
            }),
            Box::new({
                let z = z.clone();
                move |n| {
                    let _ = z.set_desired("duo", &plan(n % 2 == 0));
                    let _ = z.move_instance("duo-front-0", if n % 2 == 0 { "h1" } else { "h0" });
                    let _ = z.unbind_domain();
                }
            }),
            Box::new({
                let z = z.clone();
                move |n| {
                    let now = zonal_proto::now_ms() + n;
                    z.scale_services(now);
                    z.sync_gateways();
                    z.prune_overlays();
                    z.progress_moves(now);
                    z.finish_deletions();
                }
            }),
        ];
        let (done_tx, done) = std::sync::mpsc::channel();
        for work in workers {
            let (stop, handle, done_tx) = (stop.clone(), handle.clone(), done_tx.clone());
            std::thread::spawn(move || {
                let _rt = handle.enter();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    work(n);
                    n += 1;
                }
                let _ = done_tx.send(n);
            });
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        stop.store(true, Ordering::Relaxed);
        let started = Instant::now();
        for _ in 0..4 {
            let left = Duration::from_secs(20).saturating_sub(started.elapsed());
            let rounds = done.recv_timeout(left).expect("a worker is stuck: locks taken out of order");
            assert!(rounds > 0);
        }
        z.close_gateways();
    }
}
