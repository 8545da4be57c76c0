//! The zone manager (FUSION §3.3), as a library; `zonal zone` is a thin shell over [`serve`].
//!
//! The logic is callable without HTTP, split by concern (each module owns its state and
//! lock; [`core`] documents the lock order):
//!
//! * [`core`] — [`ZoneCore`], its settings and locks; [`error`] — [`ZoneError`].
//! * [`registry`] — services: register, update, delete, state ([`ServiceState`]), desired
//!   counts and the domain's plan; [`placement`] — where a new instance goes (planned hosts,
//!   accepted offer, overrides) and the checks on the plan.
//! * [`instances`] — instance records, slot reports, views, logs, configurations;
//!   `launch` — starting and stopping processes; `reconcile` — the control loop.
//! * [`scaler`] — the slot scaler and overlays (virtual elastic scaling).
//! * `gateway` — listeners, the choice per connection, session counts, remote peers;
//!   `relay` — the TCP side.
//! * [`context`] — the late-binding namespace; [`report`] — service views, heartbeat,
//!   metrics; [`binding`] — domain binding and DC adaptor attachment.
//! * [`moves`] — instance moves; [`offers`] — offers (FUSION S3).
//! * [`api`] — the zone-side `/1.0` REST API (the only place errors become HTTP).
//! * [`adaptor`] — the DC adaptor trait; [`process`] — the embedded process adaptor;
//!   [`users`] — the uid/gid each provider's instances run under.
//!
//! A zone manager registers with its one domain (`POST /1.0/zones` at the domain, then
//! binds itself as by `PUT /1.0/domain`), reports capacity, hosts and slot summaries by
//! heartbeat (`PUT /1.0/zones/{zone}/status`, every `heartbeat` and promptly after a change),
//! and re-registers when the domain has forgotten it. The hosts of the infrastructure file
//! are capacity accounting on this machine: instances reserve their resources on one of
//! them, and are all real processes here.
//!
//! The listen port is kept across restarts (when `--listen` asks for port 0, the port used
//! last time is tried first), so adopted instances keep reaching their zone; instances also
//! re-read `<state>/zone.url` if it moved anyway.

pub mod adaptor;
pub mod api;
pub mod binding;
pub mod context;
pub mod core;
pub mod error;
mod gateway;
pub mod instances;
mod launch;
pub mod moves;
pub mod offers;
pub mod placement;
pub mod process;
mod reconcile;
pub mod registry;
mod relay;
pub mod report;
pub mod scaler;
pub mod users;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use zonal_proto::server::HttpMetrics;
use zonal_proto::wire::{DomainBinding, HostInfo, ZoneRegistered, ZoneRegistration};
use zonal_proto::Client;
use zonal_store::RedbStore;

pub use crate::core::{SlotSettings, ZoneCore, ZoneSettings, MAX_GATEWAY_POLL};
pub use crate::error::ZoneError;
pub use crate::registry::ServiceState;

/// How to run a zone manager.
#[derive(Debug, Clone)]
pub struct ZoneOptions {
    pub name: String,
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub domain_url: Option<String>,
    /// The zone's bearer token at the domain (role `zone`).
    pub token: Option<String>,
    pub tier: Option<String>,
    pub hosts: Vec<HostInfo>,
    /// The zone's prices, quoted in its offers.
    pub price: zonal_model::Price,
    pub heartbeat: Duration,
    pub stop_grace: Duration,
    /// What `zonal` in a run spec means (normally `std::env::current_exe()`).
    pub zonal_exe: PathBuf,
    /// Where the zone is (sent to the domain for service resolution).
    pub location: Option<zonal_model::Location>,
    /// Scaler and gateway settings.
    pub slots: SlotSettings,
    /// Instance uids and limits.
    pub isolation: users::Isolation,
}

async fn bind(core: &ZoneCore, listen: SocketAddr) -> Result<TcpListener, String> {
    if listen.port() == 0 {
        if let Some(last) = core.last_addr().and_then(|a| a.parse::<SocketAddr>().ok()) {
            if last.ip() == listen.ip() {
                if let Ok(l) = TcpListener::bind(last).await {
                    return Ok(l);
                }
            }
        }
    }
    TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))
}

/// Runs a zone manager over plain HTTP until `shutdown` resolves, then stops its instances
/// cleanly. `ready` is called with the bound address once the API is listening.
pub async fn serve(
    opts: ZoneOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    serve_with(opts, None, shutdown, ready).await
}

/// [`serve`]; with `tls`, the zone API is HTTPS only (instances are given the process's CA,
/// `zonal_proto::client::set_default_ca_pem`, as `ZONAL_CA_PEM`). Every write made at the
/// zone is recorded in `<state>/audit.jsonl` (see `zonal_proto::audit`).
pub async fn serve_with(
    opts: ZoneOptions,
    tls: Option<zonal_proto::server::TlsIdentity>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    // 0700: instances are started in their working directories (inside) before they drop
    // privileges, so their users never need to pass through; the store is 0600.
    if let Some(left) = zonal_store::files::private_dir(&opts.state_dir)
        .map_err(|e| format!("cannot create the state directory {}: {e}", opts.state_dir.display()))?
    {
        tracing::warn!("the state directory {} stays as it is (not 0700): {}", left.path.display(), left.why);
    }
    let store =
        Arc::new(RedbStore::open(&opts.state_dir.join("zone.redb")).map_err(|e| store_refusal(&e, &opts.state_dir))?);
    let adaptor =
        Arc::new(process::ProcessAdaptor::new(&opts.name, opts.zonal_exe.clone()).with_nproc(opts.isolation.nproc));
    let settings = ZoneSettings {
        name: opts.name.clone(),
        tier: opts.tier.clone(),
        hosts: opts.hosts.clone(),
        price: opts.price.clone(),
        state_dir: opts.state_dir.clone(),
        stop_grace: opts.stop_grace,
        slots: opts.slots,
        isolation: opts.isolation.clone(),
    };
    let core = ZoneCore::open(settings, store, adaptor).map_err(|e| e.to_string())?;
    // The relay threads are the process's: one zone per process.
    relay::set_poll(opts.slots.gateway_poll);
    if let Some(token) = &opts.token {
        core.set_own_token(token.trim());
    }
    let listener = bind(&core, opts.listen).await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    core.set_url_with_scheme(scheme, addr).map_err(|e| e.to_string())?;
    let metrics = Arc::new(HttpMetrics::default());
    let audit = zonal_proto::audit::Audit::open(&opts.state_dir)?;
    let app = api::router_with_audit(core.clone(), metrics, Some(audit));
    let (stop_tx, stop_rx) = watch::channel(false);
    let control = tokio::spawn(core.clone().run(stop_rx.clone()));
    let link = opts
        .domain_url
        .as_ref()
        .map(|url| tokio::spawn(domain_link(core.clone(), opts.clone(), url.clone(), stop_rx.clone())));
    ready(addr);
    let server = zonal_proto::server::serve(listener, tls, app, shutdown);
    let result = server.await.map_err(|e| format!("the zone API stopped: {e}"));
    let _ = stop_tx.send(true);
    let _ = control.await;
    // Nothing of this zone outlives `serve`: the domain link (which holds the zone, and so
    // its store) ends now rather than after a heartbeat in flight, the gateways close.
    if let Some(link) = link {
        link.abort();
        let _ = link.await;
    }
    // The sessions open now are cut by stopping the instances: the ledger keeps their count
    // for the next start, which counts them lost (as after a kill).
    core.freeze_session_ledger();
    core.stop_all().await;
    core.close_gateways();
    tracing::info!("zone {} stopped", opts.name);
    result
}

/// The one line a zone that cannot use its store exits with: what is wrong with which file,
/// and the fix.
pub fn store_refusal(e: &zonal_store::OpenError, state_dir: &std::path::Path) -> String {
    match e {
        zonal_store::OpenError::Damaged { path, .. } => format!(
            "{e}; it was left as it is and the zone did not start. Restore a zone backup (zonal restore BACKUP --state {dir} --force), or move the file away (mv {p} {p}.damaged) and start the zone again: its domain deploys its services anew, and instances still running from before are not adopted (stop them: their working directories are under {dir}/instances)",
            dir = state_dir.display(),
            p = path.display()
        ),
        _ => e.to_string(),
    }
}

/// Registration with the domain, then heartbeats; re-registers when the domain answers 404.
async fn domain_link(core: Arc<ZoneCore>, opts: ZoneOptions, url: String, mut stop: watch::Receiver<bool>) {
    let client = match Client::new(&url, opts.token.clone(), Duration::from_secs(5)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot create a client for the domain {url}: {e}");
            return;
        }
    };
    let mut changed = core.changed.subscribe();
    'register: loop {
        let mut attempt = 0u32;
        loop {
            let reg = ZoneRegistration {
                name: opts.name.clone(),
                endpoint: core.url(),
                api_key: core.api_key().to_string(),
                tier: opts.tier.clone(),
                hosts: opts.hosts.clone(),
                location: opts.location,
                price: Some(opts.price.clone()),
            };
            match client.post::<_, ZoneRegistered>("/1.0/zones", &reg).await {
                Ok(r) => {
                    let binding = DomainBinding {
                        url: url.clone(),
                        name: Some(r.domain.name.clone()),
                        id: Some(r.domain.id.clone()),
                    };
                    if let Err(e) = core.bind_domain(binding) {
                        tracing::error!("{e}");
                        return;
                    }
                    tracing::info!(domain = r.domain.name, url, "registered with the domain");
                    break;
                }
                Err(e) => {
                    if attempt.is_multiple_of(20) {
                        tracing::warn!("cannot register with the domain yet: {e}");
                    }
                    let delay = zonal_control::backoff::Backoff::RETRY.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
        let path = format!("/1.0/zones/{}/status", opts.name);
        let mut failing = false;
        loop {
            match client.put::<_, serde_json::Value>(&path, &core.report()).await {
                Ok(_) => {
                    if failing {
                        tracing::info!("heartbeats reach the domain again");
                    }
                    failing = false;
                }
                Err(e) if e.status() == Some(404) => {
                    tracing::warn!("the domain does not know this zone any more: registering again");
                    continue 'register;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!("heartbeat failed: {e}");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(opts.heartbeat) => {}
                r = changed.changed() => {
                    if r.is_err() { return; }
                    // Coalesce bursts of changes into one heartbeat.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ = stop.changed() => return,
            }
        }
    }
}
