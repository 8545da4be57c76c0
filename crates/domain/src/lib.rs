//! The domain orchestrator (FUSION §3.2), as a library; `zonal domain` is a thin shell over
//! [`serve`].
//!
//! * [`core`] — [`DomainCore`], the hub: shared handles, each concern's state, the lock
//!   order (read it first).
//! * [`auth`] — the bootstrap admin, users, role-bound tokens (lifetimes, revocation),
//!   authentication.
//! * [`audit`] — reading the audit log of every write (`GET /1.0/audit`), the domain's own
//!   or a zone's; the log itself is `zonal_proto::audit`, written by the API's audit layer.
//! * [`zones`] — the zone registry: registration, heartbeats and availability, zone views,
//!   summaries and clients.
//! * [`services`] — the service registry: records and their lifecycle states, registration,
//!   state changes, views, visibility, instances asked live from the zones.
//! * [`snapshot`] — the live state the placement pipeline decides on (zones as registered and
//!   reported, the infrastructure document, regions, knowledge base, declared and measured
//!   demand).
//! * [`decisions`] — every apply, slot change, demand shift and lost or added zone decided by
//!   `zonal_place::decide`; dry runs; the re-planner; service events.
//! * [`deploy`] — the deployment coordinator: each zone's share of the target (counts, hosts,
//!   profiles, remote peers), sent with persisted progress and retries, in a safe order
//!   (new instances serve before old ones drain), cascade of terminations.
//! * [`resolve`] — service resolution: the best zone endpoint for a client by latency
//!   utility and advertised slots, spill-over, on-demand deployment.
//! * [`offers`] — offer rounds for services that name an evaluator (FUSION S3).
//! * [`consolidate`] — consolidation plans (`zonal-pack`) carried out through zone moves.
//! * [`metrics`] — `/metrics`: gauges, decision counts and times, reserved bandwidth.
//! * [`error`] — [`DomainError`], what the logic returns.
//! * [`api`] — the `/1.0` REST API and `/openapi.json`; the only place a [`DomainError`]
//!   becomes an HTTP status.
//!
//! On first start the domain creates the user `admin` and writes its token to
//! `<state>/admin.token` (mode 0600); that is the only place the token exists in clear.

pub mod api;
pub mod audit;
pub mod auth;
pub mod consolidate;
pub mod core;
pub mod decisions;
pub mod deploy;
pub mod error;
pub mod metrics;
pub mod offers;
pub mod resolve;
pub mod services;
pub mod snapshot;
pub mod zones;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use zonal_proto::server::HttpMetrics;
use zonal_store::RedbStore;

pub use crate::core::{DomainCore, Timing};
pub use crate::error::DomainError;

/// How to run a domain orchestrator.
#[derive(Debug, Clone)]
pub struct DomainOptions {
    pub name: String,
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub timing: Timing,
    /// When the domain consolidates by itself.
    pub consolidation: consolidate::ConsolidationPolicy,
    /// How the domain decides placement.
    pub decisions: decisions::DecisionSettings,
}

/// What a started domain tells its caller.
#[derive(Debug, Clone)]
pub struct Ready {
    pub addr: SocketAddr,
    /// Where the bootstrap admin token was written (first start only).
    pub admin_token_file: Option<PathBuf>,
    /// The API is served over HTTPS.
    pub tls: bool,
}

impl Ready {
    /// The API's URL (`https://…` when served over TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }
}

/// Runs the domain orchestrator over plain HTTP until `shutdown` resolves.
pub async fn serve(
    opts: DomainOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(Ready),
) -> Result<(), String> {
    serve_with(opts, None, shutdown, ready).await
}

/// Runs the domain orchestrator until `shutdown` resolves; with `tls`, the API is HTTPS
/// only. Every write is recorded in `<state>/audit.jsonl` (see `zonal_proto::audit`).
/// Calls to zones trust the process's CA (`zonal_proto::client::set_default_ca_pem`).
pub async fn serve_with(
    opts: DomainOptions,
    tls: Option<zonal_proto::server::TlsIdentity>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(Ready),
) -> Result<(), String> {
    std::fs::create_dir_all(&opts.state_dir)
        .map_err(|e| format!("cannot create the state directory {}: {e}", opts.state_dir.display()))?;
    let store = Arc::new(RedbStore::open(&opts.state_dir.join("domain.redb")).map_err(|e| e.to_string())?);
    let (core, bootstrap) = DomainCore::open(store, &opts.name, opts.timing).map_err(|e| e.to_string())?;
    let core = core.with_decisions(opts.decisions.clone());
    let mut admin_token_file = None;
    if let Some(token) = bootstrap {
        let path = opts.state_dir.join("admin.token");
        write_secret(&path, &token)?;
        admin_token_file = Some(path);
    }
    let listener =
        TcpListener::bind(opts.listen).await.map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics = Arc::new(HttpMetrics::default());
    let audit = zonal_proto::audit::Audit::open(&opts.state_dir)?;
    let app = api::router_with_audit(core.clone(), metrics, Some(audit));
    let (stop_tx, stop_rx) = watch::channel(false);
    core.recover_consolidation();
    let coordinator = tokio::spawn(deploy::run(core.clone(), stop_rx.clone()));
    let triggers = tokio::spawn(consolidate::run_triggers(core.clone(), opts.consolidation.clone(), stop_rx.clone()));
    let replanner = tokio::spawn(decisions::run_replanner(core.clone(), stop_rx));
    ready(Ready { addr, admin_token_file, tls: tls.is_some() });
    let result = zonal_proto::server::serve(listener, tls, app, shutdown)
        .await
        .map_err(|e| format!("the domain API stopped: {e}"));
    let _ = stop_tx.send(true);
    let _ = coordinator.await;
    let _ = triggers.await;
    let _ = replanner.await;
    tracing::info!("domain {} stopped", opts.name);
    result
}

/// Writes a secret readable by its owner only.
pub fn write_secret(path: &std::path::Path, secret: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(secret.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
