//! `zonal workload`: the bundled demo service, so a fresh machine has something real to run.
//!
//! A TCP session server with `slots` session slots. Each accepted connection holds one slot
//! until it closes; it is greeted with one line and then echoed. A connection beyond the
//! free slots gets `busy: …` and is closed. Several **configurations** (FUSION
//! multi-configuration instances) may be served at once, each on its own port and all sharing
//! the slots, each optionally capped.
//!
//! An HTTP admin port implements the FUSION instance API (§7.4): `/1.0/state`, `/1.0/slots`
//! (free/used/max, per configuration) and `/1.0/configs[/{name}]` (add or remove
//! configurations while running).
//!
//! When started by a zone (the environment of [`zonal_proto::env`] is set), it reports its
//! slots to the zone (`PUT /1.0/instances/{id}/slots`) on every change and every few seconds,
//! registers its endpoints in its composite's late-binding namespace and looks up its peers
//! there (`ZONAL_PEERS`).
//!
//! **Admin secret.** Started by a zone, the instance finds its admin secret in
//! [`env::ZONAL_ADMIN_TOKEN`]: every request to the admin API (and to the `evaluations` port)
//! must then carry `Authorization: Bearer <secret>`, else it is answered 401 `{error,
//! detail}` — another provider's instance on the same 127.0.0.1 can neither read nor change
//! this one. Run by hand (no such variable), the admin API is open, as before.
//!
//! **Who may open a session.** Started by a zone (the environment has
//! [`env::ZONAL_INSTANCE_ID`]), the instance serves a session only to a connection whose
//! socket belongs to root (the zone manager: its gateway and relay) or to the instance's own
//! uid (its provider's other instances); any other — another provider's instance connecting
//! straight to this data port around the gateway — gets `refused: …` and is closed, holding
//! no slot ([`zonal_proto::peer`]: the kernel names the uid). A warning is logged at most every 10 s
//! (with the count since), so a flood of refused connections cannot fill the log. Run by
//! hand, anyone may connect.
//!
//! With `--evaluate RULE` it is also the service's evaluator (FUSION §2.6.2.2): `POST
//! /1.0/evaluations` scores the environment in the body by a built-in rule, on the
//! zone-assigned `evaluations` port and on the admin API.
//!
//! Ports: a configuration `NAME=PORT` listens on the zone-assigned port named `NAME` (or
//! mapped from private port `PORT`) when the zone set `ZONAL_PORTS`, else on `PORT` itself.
//! Without configurations, one configuration named after the workload listens on `--port`,
//! else on the first port the zone assigned that is neither `admin` nor `evaluations`, else on an ephemeral port. The admin
//! API listens on `--admin`, else the zone's `admin` port, else an ephemeral port.
//!
//! Design choice: a single-threaded runtime — this is a demo that must start fast and stay
//! small (a few MB RSS), so dozens of instances fit on a laptop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use zonal_control::evaluate::{builtin, EvaluationCall, EvaluationReply, Evaluator};
use zonal_proto::env::{self, PortMapping, EVALUATIONS_PORT};
use zonal_proto::server::JsonBody;
use zonal_proto::wire::{AddConfig, ConfigSlots, InstanceSlots, WorkloadState};
use zonal_proto::{peer, ApiError, Client};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub name: String,
    pub slots: u32,
    /// `(name, port, cap)`.
    pub configs: Vec<(String, u16, Option<u32>)>,
    pub port: Option<u16>,
    pub admin: Option<SocketAddr>,
    pub report_every: Duration,
    /// Act as the service's evaluator too: answer `POST /1.0/evaluations` with this built-in
    /// rule (`latency`, `price`, `hardware`), on the zone-assigned `evaluations` port and on
    /// the admin API.
    pub evaluate: Option<String>,
}

/// Parses `NAME=PORT` or `NAME=PORT:MAX`.
pub fn parse_config(text: &str) -> Result<(String, u16, Option<u32>), String> {
    let bad = || format!("--config {text:?}: expected NAME=PORT or NAME=PORT:MAX, e.g. epg=5001 or epg=5001:10");
    let (name, rest) = text.split_once('=').ok_or_else(bad)?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(bad());
    }
    let (port, max) = match rest.split_once(':') {
        Some((p, m)) => (p, Some(m.parse::<u32>().map_err(|_| bad())?)),
        None => (rest, None),
    };
    Ok((name.to_string(), port.parse::<u16>().map_err(|_| bad())?, max))
}

struct Config {
    port: u16,
    max: Option<u32>,
    used: u32,
    listener: Option<AbortHandle>,
}

struct Inner {
    name: String,
    state: String,
    max: u32,
    used: u32,
    configs: BTreeMap<String, Config>,
    peers: BTreeMap<String, Vec<String>>,
    admin: SocketAddr,
}

#[derive(Clone)]
struct App {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<tokio::sync::watch::Sender<u64>>,
    stop: Arc<Notify>,
    ports: Arc<Vec<PortMapping>>,
    /// Started by a zone: sessions only from root or this uid (see the module docs).
    only_from: Option<u32>,
    /// Refused connections since the last warning, and when that was.
    refusals: Arc<Mutex<(u64, Option<std::time::Instant>)>>,
}

impl App {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the report and context loops that something changed.
    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn slots(&self) -> InstanceSlots {
        let g = self.lock();
        let free_shared = g.max.saturating_sub(g.used);
        InstanceSlots {
            max: g.max,
            used: g.used,
            free: if g.state == "running" { free_shared } else { 0 },
            configs: g
                .configs
                .iter()
                .map(|(n, c)| {
                    let cap_free = c.max.map_or(u32::MAX, |m| m.saturating_sub(c.used));
                    (n.clone(), ConfigSlots { port: c.port, max: c.max, used: c.used, free: free_shared.min(cap_free) })
                })
                .collect(),
        }
    }

    /// Takes a slot for configuration `config`, or says why not.
    fn acquire(&self, config: &str) -> Result<u32, &'static str> {
        let mut g = self.lock();
        if g.state != "running" {
            return Err("not accepting sessions");
        }
        if g.used >= g.max {
            return Err("no free session slots");
        }
        let c = g.configs.get_mut(config).ok_or("configuration removed")?;
        if c.max.is_some_and(|m| c.used >= m) {
            return Err("no free session slots for this configuration");
        }
        c.used += 1;
        g.used += 1;
        let n = g.used;
        drop(g);
        self.bump();
        Ok(n)
    }

    fn release(&self, config: &str) {
        let mut g = self.lock();
        g.used = g.used.saturating_sub(1);
        if let Some(c) = g.configs.get_mut(config) {
            c.used = c.used.saturating_sub(1);
        }
        drop(g);
        self.bump();
    }

    /// Resolves the port a configuration listens on (see the module docs).
    fn resolve_port(&self, name: &str, port: u16) -> u16 {
        self.ports
            .iter()
            .find(|p| p.name == name)
            .or_else(|| self.ports.iter().find(|p| port != 0 && p.private == port))
            .map_or(port, |p| p.public)
    }

    async fn add_config(&self, name: String, port: u16, max: Option<u32>) -> Result<u16, ApiError> {
        if self.lock().configs.contains_key(&name) {
            return Err(ApiError::conflict(format!("configuration {name:?} already exists; remove it first")));
        }
        let want = self.resolve_port(&name, port);
        let listener = TcpListener::bind(("127.0.0.1", want)).await.map_err(|e| {
            ApiError::conflict(format!("configuration {name:?}: cannot listen on 127.0.0.1:{want}: {e}"))
        })?;
        let bound = listener.local_addr().map(|a| a.port()).unwrap_or(want);
        let app = self.clone();
        let cname = name.clone();
        let task = tokio::spawn(async move { app.accept_loop(listener, cname).await });
        self.lock()
            .configs
            .insert(name.clone(), Config { port: bound, max, used: 0, listener: Some(task.abort_handle()) });
        self.bump();
        tracing::info!(config = name, port = bound, "serving configuration");
        Ok(bound)
    }

    fn remove_config(&self, name: &str) -> bool {
        let removed = self.lock().configs.remove(name);
        match removed {
            Some(c) => {
                if let Some(h) = c.listener {
                    h.abort();
                }
                self.bump();
                true
            }
            None => false,
        }
    }

    async fn accept_loop(self, listener: TcpListener, config: String) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let app = self.clone();
            let config = config.clone();
            tokio::spawn(async move { app.session(stream, peer, config).await });
        }
    }

    /// Logs a refused connection: at most one warning every 10 s, with the count since.
    fn note_refusal(&self, config: &str, why: &str) {
        let mut r = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        r.0 += 1;
        if r.1.is_none_or(|last| last.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(config, "refused {why} (refused since the last warning: {})", r.0);
            *r = (0, Some(std::time::Instant::now()));
        } else {
            tracing::debug!(config, "refused {why}");
        }
    }

    async fn session(self, mut stream: TcpStream, peer: SocketAddr, config: String) {
        if let Some(own) = self.only_from {
            let checked = match stream.local_addr() {
                Ok(local) => peer::allowed(local, peer, own),
                Err(e) => Err(format!("a connection from {peer} without a local address: {e}")),
            };
            if let Err(why) = checked {
                self.note_refusal(&config, &why);
                let _ =
                    stream.write_all(b"refused: sessions reach this instance through its zone's gateway only\n").await;
                let _ = stream.shutdown().await;
                return;
            }
        }
        let name = self.lock().name.clone();
        match self.acquire(&config) {
            Err(why) => {
                let _ = stream.write_all(format!("busy: {why}\n").as_bytes()).await;
                let _ = stream.shutdown().await;
            }
            Ok(n) => {
                tracing::debug!(%peer, config, "session opened");
                // The instance id lets load generators count sessions per instance behind a gateway.
                let instance = std::env::var(env::ZONAL_INSTANCE_ID).unwrap_or_else(|_| "-".into());
                let greeting = format!("zonal-workload {name} config={config} session={n} instance={instance}\n");
                if stream.write_all(greeting.as_bytes()).await.is_ok() {
                    let (r, mut w) = stream.split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if w.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                            break;
                        }
                    }
                }
                self.release(&config);
                tracing::debug!(%peer, config, "session closed");
            }
        }
    }
}

/// Identity given by the zone, when started by one.
struct ZoneLink {
    client: Client,
    zone_file: Option<String>,
    instance: String,
    component: String,
    context: Option<String>,
    peers: Vec<String>,
}

impl ZoneLink {
    fn from_env() -> Option<ZoneLink> {
        let url = std::env::var(env::ZONAL_ZONE_URL).ok()?;
        let instance = std::env::var(env::ZONAL_INSTANCE_ID).ok()?;
        // A zone serving HTTPS hands over the CA that signed its certificate.
        if let Some(pem) = std::env::var(env::ZONAL_CA_PEM).ok().filter(|p| !p.trim().is_empty()) {
            if let Err(e) = zonal_proto::client::set_default_ca_pem(&pem) {
                tracing::error!("{}: {e}; calls to the zone over HTTPS will be refused", env::ZONAL_CA_PEM);
            }
        }
        let token = std::env::var(env::ZONAL_INSTANCE_TOKEN).ok();
        let client = Client::new(&url, token, Duration::from_secs(3)).ok()?;
        Some(ZoneLink {
            client,
            zone_file: std::env::var(env::ZONAL_ZONE_FILE).ok(),
            instance,
            component: std::env::var(env::ZONAL_COMPONENT).unwrap_or_default(),
            context: std::env::var(env::ZONAL_CONTEXT_URL).ok(),
            peers: std::env::var(env::ZONAL_PEERS)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    /// The zone client, following a moved zone manager through the zone file.
    fn client(&self) -> Client {
        if let Some(url) = self.zone_file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()) {
            let url = url.trim();
            if !url.is_empty() && url != self.client.base() {
                if let Ok(c) = Client::new(url, None, Duration::from_secs(3)) {
                    return Client::with_token(&c, std::env::var(env::ZONAL_INSTANCE_TOKEN).ok());
                }
            }
        }
        self.client.clone()
    }

    /// The context namespace path on the zone (`/1.0/context/<ns>`).
    fn context_path(&self) -> Option<String> {
        let url = self.context.as_ref()?;
        url.find("/1.0/context/").map(|i| url[i..].to_string())
    }
}

async fn report_loop(app: App, link: Arc<ZoneLink>, every: Duration) {
    let path = format!("/1.0/instances/{}/slots", link.instance);
    let mut last_error: Option<String> = None;
    let mut changed = app.changed.subscribe();
    loop {
        let slots = app.slots();
        match link.client().put::<_, serde_json::Value>(&path, &slots).await {
            Ok(_) => last_error = None,
            Err(e) => {
                let msg = e.to_string();
                if last_error.as_ref() != Some(&msg) {
                    tracing::warn!("cannot report slots to the zone: {msg}");
                }
                last_error = Some(msg);
            }
        }
        tokio::select! {
            _ = changed.changed() => {
                // Debounce bursts of session changes into one report.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn context_loop(app: App, link: Arc<ZoneLink>) {
    let Some(ns) = link.context_path() else { return };
    let key = format!("{ns}/{}/{}", link.component, link.instance);
    let mut changed = app.changed.subscribe();
    loop {
        let (endpoints, admin) = {
            let g = app.lock();
            let e: BTreeMap<String, String> =
                g.configs.iter().map(|(n, c)| (n.clone(), format!("127.0.0.1:{}", c.port))).collect();
            (e, g.admin.to_string())
        };
        let value = serde_json::json!({"instance": link.instance, "component": link.component, "endpoints": endpoints, "admin": admin});
        let registered = link.client().put::<_, serde_json::Value>(&key, &value).await.is_ok();
        let mut all_found = registered;
        for peer in &link.peers {
            let found: Vec<String> =
                match link.client().get::<BTreeMap<String, serde_json::Value>>(&format!("{ns}?prefix={peer}/")).await {
                    Ok(entries) => entries
                        .values()
                        .filter_map(|v| v.get("endpoints").and_then(|e| e.as_object()))
                        .flat_map(|m| m.values().filter_map(|a| a.as_str().map(str::to_string)).collect::<Vec<_>>())
                        .collect(),
                    Err(_) => Vec::new(),
                };
            if found.is_empty() {
                all_found = false;
            } else {
                let mut g = app.lock();
                if g.peers.get(peer) != Some(&found) {
                    tracing::info!(peer, endpoints = ?found, "found peer through the context namespace");
                    g.peers.insert(peer.clone(), found);
                }
            }
        }
        let wait = if all_found { Duration::from_secs(5) } else { Duration::from_millis(200) };
        tokio::select! {
            // Only configuration changes alter what is registered.
            _ = configs_changed(&app, &mut changed) => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Resolves when the set of configurations (names and ports) changes.
async fn configs_changed(app: &App, rx: &mut tokio::sync::watch::Receiver<u64>) {
    let snapshot =
        |app: &App| -> Vec<(String, u16)> { app.lock().configs.iter().map(|(n, c)| (n.clone(), c.port)).collect() };
    let before = snapshot(app);
    loop {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        if snapshot(app) != before {
            return;
        }
    }
}

fn api_state(app: &App) -> WorkloadState {
    let g = app.lock();
    WorkloadState {
        name: g.name.clone(),
        state: g.state.clone(),
        instance: std::env::var(env::ZONAL_INSTANCE_ID).ok(),
        peers: g.peers.clone(),
    }
}

async fn get_state(State(app): State<App>) -> Json<WorkloadState> {
    Json(api_state(&app))
}

async fn put_state(
    State(app): State<App>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<Json<WorkloadState>, ApiError> {
    let want = body.get("state").and_then(|s| s.as_str()).unwrap_or_default().to_string();
    match want.as_str() {
        "start" | "running" => app.lock().state = "running".into(),
        "pause" | "paused" => app.lock().state = "paused".into(),
        "terminate" => {
            app.lock().state = "terminating".into();
            app.stop.notify_one();
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "PUT /1.0/state: unknown state {other:?}; expected start, pause or terminate"
            )))
        }
    }
    app.bump();
    Ok(Json(api_state(&app)))
}

async fn delete_state(State(app): State<App>) -> StatusCode {
    app.lock().state = "terminating".into();
    app.stop.notify_one();
    StatusCode::NO_CONTENT
}

async fn get_slots(State(app): State<App>) -> Json<InstanceSlots> {
    Json(app.slots())
}

async fn put_slots(
    State(app): State<App>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<Json<InstanceSlots>, ApiError> {
    let max = body
        .get("max")
        .and_then(|m| m.as_u64())
        .and_then(|m| u32::try_from(m).ok())
        .ok_or_else(|| ApiError::bad_request("PUT /1.0/slots: expected {\"max\": N} with N a whole number"))?;
    app.lock().max = max;
    app.bump();
    Ok(Json(app.slots()))
}

async fn delete_slots(State(app): State<App>) -> StatusCode {
    app.lock().max = 0;
    app.bump();
    StatusCode::NO_CONTENT
}

async fn get_configs(State(app): State<App>) -> Json<BTreeMap<String, ConfigSlots>> {
    Json(app.slots().configs)
}

async fn post_config(
    State(app): State<App>,
    JsonBody(body): JsonBody<AddConfig>,
) -> Result<impl IntoResponse, ApiError> {
    if body.name.is_empty() {
        return Err(ApiError::bad_request("POST /1.0/configs: expected a non-empty \"name\""));
    }
    app.add_config(body.name.clone(), body.port, body.max).await?;
    Ok((StatusCode::CREATED, Json(app.slots().configs.get(&body.name).copied())))
}

async fn delete_configs(State(app): State<App>) -> StatusCode {
    let names: Vec<String> = app.lock().configs.keys().cloned().collect();
    for n in names {
        app.remove_config(&n);
    }
    StatusCode::NO_CONTENT
}

async fn get_config(State(app): State<App>, Path(name): Path<String>) -> Result<Json<ConfigSlots>, ApiError> {
    app.slots()
        .configs
        .get(&name)
        .copied()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no configuration {name:?} on this instance")))
}

async fn delete_config(State(app): State<App>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    if app.remove_config(&name) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no configuration {name:?} on this instance")))
    }
}

/// The admin secret of this instance: [`env::ZONAL_ADMIN_TOKEN`] when set and not empty.
fn admin_secret() -> Option<Arc<str>> {
    std::env::var(env::ZONAL_ADMIN_TOKEN).ok().filter(|t| !t.is_empty()).map(Arc::from)
}

/// Equal, comparing every byte (no early exit that would time the secret).
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    given.len() == secret.len() && given.iter().zip(secret).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Refuses, 401 `{error, detail}`, every request that does not carry `Authorization: Bearer
/// <secret>`; with no secret, lets everything through.
async fn require_secret(secret: Option<Arc<str>>, req: Request, next: Next) -> Response {
    let Some(secret) = secret else { return next.run(req).await };
    let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim);
    let token = given.and_then(|v| v.split_once(' ')).filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
    match token.map(|(_, t)| t) {
        Some(token) if same_secret(token.trim().as_bytes(), secret.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::unauthorized(format!(
            "{} {}: the bearer token is not this instance's admin secret; only the zone that started it holds that",
            req.method(),
            req.uri().path()
        ))
        .into_response(),
        None => ApiError::unauthorized(format!(
            "{} {}: this instance's admin API needs `Authorization: Bearer <admin secret>`; only the zone that started it holds that",
            req.method(),
            req.uri().path()
        ))
        .into_response(),
    }
}

/// [`require_secret`] as a layer.
fn guarded(router: Router, secret: Option<Arc<str>>) -> Router {
    router.layer(axum::middleware::from_fn(move |req: Request, next: Next| require_secret(secret.clone(), req, next)))
}

/// The evaluator API with the built-in `rule` (a provider's evaluator as a component,
/// FUSION §2.6.2.2): also served on its own on the zone-assigned `evaluations` port, if any.
async fn evaluator_router(rule: &str, ports: &[PortMapping], secret: Option<Arc<str>>) -> Result<Router, String> {
    let evaluator: Arc<dyn Evaluator + Send + Sync> = Arc::from(builtin(rule).ok_or_else(|| {
        format!("--evaluate {rule:?}: expected one of {}", zonal_model::service::BUILTIN_EVALUATORS.join(", "))
    })?);
    let router =
        Router::new().route(
            "/1.0/evaluations",
            post(move |JsonBody(call): JsonBody<EvaluationCall>| {
                let evaluator = evaluator.clone();
                async move {
                    Json(EvaluationReply { score: evaluator.evaluate(&call.request, &call.environment), id: None })
                }
            }),
        );
    if let Some(p) = ports.iter().find(|p| p.name == EVALUATIONS_PORT) {
        let addr = SocketAddr::from(([127, 0, 0, 1], p.public));
        let listener =
            TcpListener::bind(addr).await.map_err(|e| format!("cannot listen for the evaluator API on {addr}: {e}"))?;
        let own = guarded(router.clone(), secret).layer(zonal_proto::server::body_limit());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, own).await {
                tracing::error!("evaluator API stopped: {e}");
            }
        });
    }
    Ok(router)
}

/// Runs the workload until SIGTERM/SIGINT or `DELETE /1.0/state`.
pub async fn run(opts: Options) -> Result<(), String> {
    let ports = match std::env::var(env::ZONAL_PORTS) {
        Ok(text) => env::decode_ports(&text)?,
        Err(_) => Vec::new(),
    };
    let admin_addr = opts.admin.unwrap_or_else(|| {
        let port = ports.iter().find(|p| p.name == "admin").map_or(0, |p| p.public);
        SocketAddr::from(([127, 0, 0, 1], port))
    });
    let admin_listener = TcpListener::bind(admin_addr)
        .await
        .map_err(|e| format!("cannot listen for the admin API on {admin_addr}: {e}"))?;
    let admin = admin_listener.local_addr().map_err(|e| e.to_string())?;
    let app = App {
        inner: Arc::new(Mutex::new(Inner {
            name: opts.name.clone(),
            state: "running".into(),
            max: opts.slots,
            used: 0,
            configs: BTreeMap::new(),
            peers: BTreeMap::new(),
            admin,
        })),
        changed: Arc::new(tokio::sync::watch::channel(0u64).0),
        stop: Arc::new(Notify::new()),
        ports: Arc::new(ports.clone()),
        only_from: std::env::var_os(env::ZONAL_INSTANCE_ID).map(|_| peer::own_uid()),
        refusals: Arc::new(Mutex::new((0, None))),
    };
    let mut configs = opts.configs.clone();
    if configs.is_empty() {
        let port = opts.port.unwrap_or_else(|| {
            ports.iter().find(|p| p.name != "admin" && p.name != EVALUATIONS_PORT).map_or(0, |p| p.public)
        });
        configs.push((opts.name.clone(), port, None));
    }
    let mut bound = Vec::new();
    for (name, port, max) in configs {
        let p = app.add_config(name.clone(), port, max).await.map_err(|e| e.body.detail)?;
        bound.push(format!("{name}=127.0.0.1:{p}"));
    }
    println!(
        "workload {}: {} slots; sessions on {}; admin API on http://{admin}",
        opts.name,
        opts.slots,
        bound.join(", ")
    );

    let evaluator = match &opts.evaluate {
        Some(rule) => Some(evaluator_router(rule, &ports, admin_secret()).await?),
        None => None,
    };
    let mut router = Router::new()
        .route("/1.0/state", get(get_state).put(put_state).delete(delete_state))
        .route("/1.0/slots", get(get_slots).put(put_slots).delete(delete_slots))
        .route("/1.0/configs", get(get_configs).post(post_config).delete(delete_configs))
        .route("/1.0/configs/{name}", get(get_config).delete(delete_config))
        .with_state(app.clone());
    if let Some(ev) = evaluator {
        router = router.merge(ev);
    }
    let router = guarded(router, admin_secret()).layer(zonal_proto::server::body_limit());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(admin_listener, router).await {
            tracing::error!("admin API stopped: {e}");
        }
    });

    let link = ZoneLink::from_env().map(Arc::new);
    if let Some(link) = &link {
        tokio::spawn(report_loop(app.clone(), link.clone(), opts.report_every));
        tokio::spawn(context_loop(app.clone(), link.clone()));
    }

    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
        _ = app.stop.notified() => tracing::info!("terminate requested through the admin API"),
    }
    app.lock().state = "terminating".into();
    if let Some(link) = &link {
        if let Some(ns) = link.context_path() {
            let key = format!("{ns}/{}/{}", link.component, link.instance);
            let _ = tokio::time::timeout(Duration::from_millis(500), link.client().delete(&key)).await;
        }
        let slots = app.slots();
        let path = format!("/1.0/instances/{}/slots", link.instance);
        let _ =
            tokio::time::timeout(Duration::from_millis(500), link.client().put::<_, serde_json::Value>(&path, &slots))
                .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn status(router: &Router, auth: Option<&str>) -> (u16, String) {
        use tower::ServiceExt;
        let mut req = axum::http::Request::builder().uri("/1.0/state");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = router.clone().oneshot(req.body(axum::body::Body::empty()).expect("request")).await.expect("answer");
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_admin_api_answers_only_to_its_secret() {
        let plain = Router::new().route("/1.0/state", get(|| async { "ok" }));
        let secret: Arc<str> = Arc::from("s3cret-s3cret");
        let router = guarded(plain.clone(), Some(secret));
        for auth in
            [None, Some("Bearer wrong"), Some("Bearer s3cret"), Some("Basic s3cret-s3cret"), Some("s3cret-s3cret")]
        {
            let (code, body) = status(&router, auth).await;
            assert_eq!(code, 401, "{auth:?}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).expect("{error, detail}");
            assert_eq!(v["error"], "unauthorized", "{body}");
            assert!(v["detail"].as_str().is_some_and(|d| d.contains("GET /1.0/state")), "{body}");
        }
        assert_eq!(status(&router, Some("Bearer s3cret-s3cret")).await, (200, "ok".into()));
        assert_eq!(status(&router, Some("bearer  s3cret-s3cret ")).await.0, 200, "scheme case and spaces");
        // Run by hand (no secret): open.
        assert_eq!(status(&guarded(plain, None), None).await.0, 200);
        assert!(same_secret(b"abc", b"abc") && !same_secret(b"abc", b"abd") && !same_secret(b"ab", b"abc"));
    }

    #[test]
    fn config_syntax() {
        assert_eq!(parse_config("epg=5001").unwrap(), ("epg".into(), 5001, None));
        assert_eq!(parse_config("dash=0:3").unwrap(), ("dash".into(), 0, Some(3)));
        assert!(parse_config("epg").is_err());
        assert!(parse_config("=5").is_err());
        assert!(parse_config("epg=x").is_err());
        assert!(parse_config("epg=70000").is_err());
    }
}
