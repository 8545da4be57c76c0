//! The domain orchestrator's hub: [`DomainCore`], its timing, and how its state is locked.
//!
//! The logic is split by concern, each module owning its state and adding its methods to
//! [`DomainCore`]; all of it is callable without HTTP and returns [`DomainError`]:
//!
//! | module | state (lock) | what |
//! |---|---|---|
//! | [`crate::auth`] | — (store: `users`, `tokens`) | the bootstrap admin, users, role-bound tokens, authentication |
//! | [`crate::zones`] | `heartbeats` | the zone registry, heartbeats and availability, zone views, summaries and clients |
//! | [`crate::services`] | `services` | service records and their lifecycle state, registration, state changes, views, visibility, instances |
//! | [`crate::decisions`] | `decider` (async) | every placement decided by `zonal_place::decide`: apply, slots, dry runs, re-plans; events |
//! | [`crate::deploy`] | — | the deployment coordinator: zone shares, safe order, drains, withdrawals |
//! | [`crate::snapshot`] | `documents`, `resolutions` | the live state the pipeline decides on; the infrastructure, knowledge base and declared demand; measured demand |
//! | [`crate::offers`] | — | offer rounds (FUSION S3) |
//! | [`crate::resolve`] | — (takes `documents` to change the geography) | client resolution, per-region slots, on-demand deployment, the geography |
//! | [`crate::consolidate`] | — (store: last run) | consolidation plans and their moves |
//! | [`crate::metrics`] | `metrics` | `/metrics`: gauges, decision counts and times, reserved bandwidth |
//! | `api` | — | the `/1.0` REST API; the only place a [`DomainError`] becomes an HTTP status |
//!
//! **Lock order.** A method that holds several locks takes them in this order, and never
//! takes an earlier one while holding a later one: `decider` → `services` → `heartbeats`.
//! `documents`, `resolutions` and `metrics` are leaves: nothing else is taken while one of
//! them is held. `heartbeats` is a leaf too in practice: its accessors copy what they read
//! (reports are shared `Arc`s) and release it at once. The `decider` is a tokio mutex and is
//! held across the awaits of one decision (offer round, solver) so that each decision sees
//! the capacity the previous one took; every other lock is a std mutex, never held across an
//! await, network call or solve. Store writes may happen under the `services` lock (a record
//! is read, changed and written back as one step).
//!
//! Store tables: `meta` (the domain's id and name, the geography, the documents, the last
//! consolidation run), `users`, `tokens` ([`crate::auth`]), `zones` ([`crate::zones`]),
//! `services` ([`crate::services`]).
//!
//! Visibility (FUSION §3.2.1): an admin sees everything; a provider its own services and the
//! zones they run in; a zone itself and the services placed in it. Ownership violations on
//! writes are refused ([`DomainError::Forbidden`]), and nothing is changed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use zonal_proto::wire::DomainInfo;
use zonal_store::{Store, StoreExt};

pub use crate::error::DomainError;

pub(crate) const T_META: &str = "meta";

/// Timing of the zone registry.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A zone that sends no heartbeat for this long is unavailable.
    pub zone_timeout: Duration,
    /// After being unavailable this much longer, its services are placed elsewhere.
    pub replace_after: Duration,
    /// How long an offer round waits for the zones' offers.
    pub offer_deadline: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            zone_timeout: Duration::from_secs(10),
            replace_after: Duration::from_secs(30),
            offer_deadline: crate::offers::DEFAULT_OFFER_DEADLINE,
        }
    }
}

/// The domain orchestrator.
pub struct DomainCore {
    pub info: DomainInfo,
    pub timing: Timing,
    pub state_dir: Option<PathBuf>,
    /// How the domain decides placement (solver settings, switching costs, re-placement).
    pub decisions: crate::decisions::DecisionSettings,
    pub(crate) store: Arc<dyn Store>,
    /// Wakes the deployment coordinator.
    kick: Notify,
    // Each concern's state, in lock order (see the module documentation).
    /// One decision at a time ([`crate::decisions`]).
    pub(crate) decider: crate::decisions::Decider,
    /// Read-modify-write of service records ([`crate::services`]).
    pub(crate) services: crate::services::ServiceLock,
    /// Liveness and the last report of each zone ([`crate::zones`]).
    pub(crate) heartbeats: crate::zones::Heartbeats,
    /// Changes of the geography and the declared demand ([`crate::snapshot`]).
    pub(crate) documents: crate::snapshot::DocumentLock,
    /// Resolutions per service and region, for measured demand ([`crate::snapshot`]).
    pub(crate) resolutions: crate::snapshot::ResolutionLog,
    /// Decision counts and times ([`crate::metrics`]).
    pub(crate) metrics: crate::metrics::DecisionMetrics,
}

/// A poisoned lock means a panic elsewhere while it was held; the state is still the best
/// there is, and the domain must keep serving.
pub(crate) fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DomainCore {
    /// Opens the domain on `store`. On first start creates the user `admin` and returns its
    /// token (the only time it is known in clear).
    pub fn open(store: Arc<dyn Store>, name: &str, timing: Timing) -> Result<(Arc<Self>, Option<String>), DomainError> {
        let info = match store.get::<DomainInfo>(T_META, "identity")? {
            Some(i) => i,
            None => {
                let i = DomainInfo { id: zonal_proto::secret()[..16].to_string(), name: name.to_string() };
                store.put(T_META, "identity", &i)?;
                i
            }
        };
        let bootstrap = crate::auth::bootstrap_admin(store.as_ref())?;
        let heartbeats = crate::zones::Heartbeats::load(store.as_ref())?;
        let core = DomainCore {
            info,
            timing,
            state_dir: None,
            decisions: Default::default(),
            store,
            kick: Notify::new(),
            decider: Default::default(),
            services: Default::default(),
            heartbeats,
            documents: Default::default(),
            resolutions: Default::default(),
            metrics: Default::default(),
        };
        Ok((Arc::new(core), bootstrap))
    }

    /// The same domain with other decision settings (before it serves).
    pub fn with_decisions(self: Arc<Self>, settings: crate::decisions::DecisionSettings) -> Arc<Self> {
        match Arc::try_unwrap(self) {
            Ok(mut core) => {
                core.decisions = settings;
                Arc::new(core)
            }
            Err(shared) => shared,
        }
    }

    /// Asks the deployment coordinator for a pass now.
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    /// Resolves when [`DomainCore::kick`] was called (the coordinator waits on it).
    pub(crate) async fn kicked(&self) {
        self.kick.notified().await
    }
}

/// A user, zone or service name as the API accepts it.
pub(crate) fn valid_name(kind: &str, name: &str) -> Result<(), DomainError> {
    match zonal_model::names::api_name_problem(name) {
        Some(why) => Err(DomainError::Invalid(format!("{kind} name {why}"))),
        None => Ok(()),
    }
}

/// Awaits the futures one after the other, collecting their outputs in order. Zones answer
/// in milliseconds on a laptop; a concurrent join is a later optimisation.
pub(crate) async fn futures_join<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::with_capacity(futs.len());
    for f in futs {
        out.push(f.await);
    }
    out
}

#[cfg(test)]
pub(crate) mod testing {
    //! A domain on a memory store for unit tests.

    use super::*;
    use zonal_model::Resources;
    use zonal_proto::wire::{HostInfo, ZoneRegistration};
    use zonal_proto::{Principal, Role};
    use zonal_store::MemStore;

    pub(crate) const WEB: &str = "kind: Service\nname: web\nowner: acme\ncomponents:\n  - name: web\n    run: zonal workload\n    resources: {cpu: 1}\n";

    pub(crate) fn admin() -> Principal {
        Principal { name: "admin".into(), role: Role::Admin }
    }

    pub(crate) fn open() -> Arc<DomainCore> {
        DomainCore::open(Arc::new(MemStore::new()), "t", Timing::default()).expect("open").0
    }

    /// Registers zone `name` with one host of 8 CPUs.
    pub(crate) fn zone(core: &DomainCore, name: &str) {
        let reg = ZoneRegistration {
            name: name.into(),
            endpoint: "http://127.0.0.1:9".into(),
            api_key: "k".into(),
            tier: None,
            hosts: vec![HostInfo {
                name: "h".into(),
                capacity: Resources::new().with("cpu", zonal_model::Amount::cpu(8000)),
                features: Default::default(),
                available: true,
                power: Default::default(),
            }],
            location: None,
            price: None,
        };
        core.register_zone(&admin(), reg).expect("zone");
    }

    /// A domain with zone `z1` where acme's `web` and bell-labs' `bell-app` are both placed:
    /// two providers sharing one zone.
    pub(crate) fn two_providers_in_z1() -> Arc<DomainCore> {
        let core = open();
        zone(&core, "z1");
        let bell_app = WEB.replace("name: web\nowner: acme", "name: bell-app\nowner: bell-labs");
        for manifest in [WEB.to_string(), bell_app] {
            let req = zonal_proto::wire::RegisterService { serviceid: None, manifest };
            let (_, v) = core.register_service(&admin(), &req).expect("register");
            block_on(core.deploy_service(&admin(), &v.serviceid, false)).expect("placed in z1");
        }
        core
    }

    /// Runs `f` to completion on a fresh current-thread runtime.
    pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    use zonal_proto::wire::{GeographyChange, RegisterService, ZoneReport, ZoneServiceView};

    use super::testing::{admin, block_on, open, zone, WEB};
    use super::*;

    /// Every path that takes several locks, at once from several threads: a lock taken out
    /// of order would sooner or later deadlock here, and the watchdog would say so.
    #[test]
    fn concurrent_use_takes_the_locks_in_one_order() {
        let core = open();
        zone(&core, "z1");
        zone(&core, "z2");
        core.register_service(&admin(), &RegisterService { serviceid: None, manifest: WEB.into() }).expect("web");
        block_on(core.deploy_service(&admin(), "web", false)).expect("placed");
        let report = |n: u64| ZoneReport {
            services: if n.is_multiple_of(2) {
                vec![ZoneServiceView { serviceid: "web".into(), state: "deployed".into(), ..Default::default() }]
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<Box<dyn Fn(u64) + Send>> = vec![
            Box::new({
                let core = core.clone();
                move |n| {
                    // Heartbeats, then the services they reconcile.
                    let _ = core.zone_status(&admin(), if n.is_multiple_of(2) { "z1" } else { "z2" }, report(n));
                    let _ = core.zones(&admin());
                    let _ = core.zone_summaries();
                }
            }),
            Box::new({
                let core = core.clone();
                move |n| {
                    // Owners' changes (services, then heartbeats for the view).
                    let word = if n.is_multiple_of(2) { "terminate" } else { "deploy" };
                    let _ = core.set_state(&admin(), "web", word);
                    for s in core.visible_services(&admin()).unwrap_or_default() {
                        core.service_view(&s);
                    }
                    let mut out = String::new();
                    core.render_metrics(&mut out);
                }
            }),
            Box::new({
                let core = core.clone();
                move |n| {
                    // Documents, measured demand, the live state, resolution.
                    let _ = core.set_geography(GeographyChange::default());
                    core.record_resolution("web", if n.is_multiple_of(2) { "north" } else { "south" });
                    let _ = core.live_state(&[]);
                    let _ = core.regions(&admin());
                    let _ = core.resolve(&admin(), "web", &crate::resolve::Origin::Region("z1".into()));
                }
            }),
            Box::new({
                let core = core.clone();
                move |n| {
                    // Decisions (the decider, then services and heartbeats) and the coordinator.
                    block_on(async {
                        let _ = core.set_slots(&admin(), "web", (n % 3) as u32).await;
                        let _ = core.replan("web", zonal_place::decide::Trigger::Demand).await;
                        core.coordinate().await;
                    });
                }
            }),
        ];
        let (done_tx, done) = std::sync::mpsc::channel();
        for work in workers {
            let (stop, done_tx) = (stop.clone(), done_tx.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    work(n);
                    n += 1;
                }
                let _ = done_tx.send(n);
            });
        }
        std::thread::sleep(Duration::from_millis(400));
        stop.store(true, Ordering::Relaxed);
        let started = Instant::now();
        for _ in 0..4 {
            let left = Duration::from_secs(20).saturating_sub(started.elapsed());
            let rounds = done.recv_timeout(left).expect("a worker is stuck: locks taken out of order");
            assert!(rounds > 0);
        }
    }
}
