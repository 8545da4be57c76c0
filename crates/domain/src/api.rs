//! The domain orchestrator's `/1.0` REST API (FUSION §7.1). Handlers only translate HTTP to
//! calls on [`DomainCore`] and back; authentication, role checks, request ids and metrics are
//! layers (see `zonal_proto::server`). This is the one place where the logic's
//! [`DomainError`] becomes an HTTP status and `{error, detail}` body.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use zonal_proto::audit::{Audit, AuditQuery};
use zonal_proto::openapi::{Accepted, Created, Either, Metrics, Ndjson, NoContent, OrRetry, Text};
use zonal_proto::server::{
    self, Access, AuditState, AuthState, Authenticate, Authenticated, HttpMetrics, JsonBody, Refusal, Routes,
};
use zonal_proto::wire::{
    CreateToken, CreateUser, DomainInfo, InstanceView, RegionView, RegisterService, ServiceView, SlotsChange,
    StateChange, TokenCreated, TokenView, UserView, ZoneRegistered, ZoneRegistration, ZoneReport, ZoneView,
};
use zonal_proto::{ApiError, Principal, Role};

use crate::consolidate::RunState;
use crate::core::DomainCore;
use crate::error::DomainError;
use crate::services::{Registration, StateRequest};

type R<T> = Result<T, ApiError>;

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        match e {
            DomainError::NotFound(d) => ApiError::not_found(d),
            DomainError::Conflict(d) => ApiError::conflict(d),
            DomainError::Invalid(d) => ApiError::bad_request(d),
            DomainError::InvalidManifest { summary, diagnostics } => ApiError::invalid_manifest(summary, diagnostics),
            DomainError::Forbidden(d) => ApiError::forbidden(d),
            DomainError::Unprocessable { detail, reasons } => {
                ApiError::new(422, "infeasible", detail).with_diagnostics(reasons)
            }
            DomainError::NoSlot { why, detail } => ApiError::new(503, why.as_str(), detail),
            DomainError::Unavailable(d) => ApiError::unavailable(d),
            DomainError::Store(d) => ApiError::internal(d),
        }
    }
}

const ADMIN: Access = Access::Roles(&[Role::Admin]);
const ANY: Access = Access::Roles(&[Role::Admin, Role::Provider, Role::Zone]);
const PROVIDERS: Access = Access::Roles(&[Role::Admin, Role::Provider]);
const ZONES: Access = Access::Roles(&[Role::Admin, Role::Zone]);

#[derive(Clone)]
pub struct Api {
    pub core: Arc<DomainCore>,
    metrics: Arc<HttpMetrics>,
    openapi: Arc<Value>,
    /// The audit log, when the domain keeps one (it does when it has a state directory).
    audit: Option<Arc<Audit>>,
}

struct DomainAuth(Arc<DomainCore>);

impl Authenticate for DomainAuth {
    fn authenticate(&self, token: &str) -> Option<Principal> {
        self.0.authenticate(token)
    }
    fn check(&self, token: &str) -> Result<Authenticated, Refusal> {
        self.0.check_token(token)
    }
}

/// Accepted requests of these routes are telemetry in the audit log (zone heartbeats).
const TELEMETRY: &[(Method, &str)] = &[(Method::PUT, "/1.0/zones/{zone}/status")];

/// Every route of the domain API, with who may call it.
pub fn routes() -> Routes<Api> {
    use Method as M;
    Routes::new()
        .add(M::GET, "/healthz", "Liveness", Access::Public, healthz)
        .add(M::GET, "/openapi.json", "This OpenAPI document", Access::Public, openapi)
        .add(M::GET, "/metrics", "Prometheus metrics (names services of every provider)", ADMIN, metrics)
        .add(M::GET, "/1.0/domain", "The domain's id and name", ANY, get_domain)
        .add(M::GET, "/1.0/zones", "Zones with state, capacity and slots", ANY, list_zones)
        .add(M::POST, "/1.0/zones", "Register a zone (the zone itself or an admin)", ZONES, post_zone)
        .add(M::DELETE, "/1.0/zones", "Delete every zone without running services", ADMIN, delete_zones)
        .add(M::GET, "/1.0/zones/{zone}", "A zone: state, capacity, services", ANY, get_zone)
        .add(M::DELETE, "/1.0/zones/{zone}", "Delete a zone (refused while it runs services)", ADMIN, delete_zone)
        .add(M::PUT, "/1.0/zones/{zone}/status", "A zone's heartbeat with its summaries", ZONES, put_zone_status)
        .add(M::GET, "/1.0/zones/{zone}/services", "Services placed in a zone", ANY, zone_services)
        .add(M::GET, "/1.0/zones/{zone}/services/{id}", "A service in one zone", ANY, zone_service)
        .add(M::GET, "/1.0/services", "Services with state and slots", ANY, list_services)
        .add(M::POST, "/1.0/services", "Register a service {serviceid?, manifest}", PROVIDERS, post_service)
        .add(M::DELETE, "/1.0/services", "Delete every service the caller owns", PROVIDERS, delete_services)
        .add(M::GET, "/1.0/services/{id}", "A service: manifest, placement, state (?instances=true)", ANY, get_service)
        .add(M::DELETE, "/1.0/services/{id}", "Terminate everywhere, then unregister", PROVIDERS, delete_service)
        .add(M::GET, "/1.0/services/{id}/state", "A service's domain-wide state", ANY, get_state)
        .add(
            M::PUT,
            "/1.0/services/{id}/state",
            "Change state: register, provision, deploy, terminate",
            PROVIDERS,
            put_state,
        )
        .add(M::DELETE, "/1.0/services/{id}/state", "Terminate everywhere, then unregister", PROVIDERS, delete_service)
        .add(M::GET, "/1.0/services/{id}/slots", "Domain-wide session slots", ANY, get_slots)
        .add(M::PUT, "/1.0/services/{id}/slots", "Set the session slots wanted domain-wide", PROVIDERS, put_slots)
        .add(M::DELETE, "/1.0/services/{id}/slots", "Terminate all instances", PROVIDERS, delete_slots)
        .add(M::GET, "/1.0/services/{id}/zones", "Zones the service is placed in", ANY, service_zones)
        .add(
            M::GET,
            "/1.0/services/{id}/offers",
            "The last offer round of a service placed by offers: received, declined, taken",
            ANY,
            service_offers,
        )
        .add(M::GET, "/1.0/services/{id}/zones/{zone}", "A service in one zone", ANY, service_zone)
        .add(
            M::GET,
            "/1.0/services/{id}/instances",
            "A service's instances, from its zones",
            PROVIDERS,
            service_instances,
        )
        .add(M::GET, "/1.0/instances", "Instances of the caller's services", PROVIDERS, list_instances)
        .add(
            M::GET,
            "/1.0/instances/{instance}/logs",
            "The tail of an instance's log (?lines=N)",
            PROVIDERS,
            instance_logs,
        )
        .add(M::GET, "/1.0/users", "Users (others than oneself: admin only)", ANY, list_users)
        .add(M::POST, "/1.0/users", "Register a user {name, role}", ADMIN, post_user)
        .add(M::GET, "/1.0/users/{user}", "A user", ANY, get_user)
        .add(M::DELETE, "/1.0/users/{user}", "Delete a user (refused while it runs services)", ADMIN, delete_user)
        .add(M::POST, "/1.0/tokens", "Create a bearer token {role, name, ttl?}", ADMIN, post_token)
        .add(M::GET, "/1.0/tokens", "Tokens: id, user, role, created, expires, revoked (?user=); never secrets", ADMIN, list_tokens)
        .add(M::DELETE, "/1.0/tokens/{token}", "Revoke a token by its id", ADMIN, revoke_token)
        .add(M::DELETE, "/1.0/users/{user}/tokens", "Revoke every token of a user", ADMIN, revoke_user_tokens)
        .add(
            M::GET,
            "/1.0/audit",
            "The audit log of writes: who, what, when, result (?since=1h&user=U&zone=Z&telemetry=true&limit=N)",
            ADMIN,
            get_audit,
        )
        .add(
            M::GET,
            "/1.0/resolve/{id}",
            "The best zone endpoint for a client (?lat=…&lon=… or ?region=REGION|ZONE): latency utility, advertised slots, spill-over; 503 while deploying on demand",
            ANY,
            get_resolve,
        )
        .add(M::GET, "/1.0/geography", "User regions, measured latencies and the latency model", ANY, get_geography)
        .add_document(
            M::PUT,
            "/1.0/geography",
            "Set the parts given {regions?, latencies?, latency_model?} (from demand and infrastructure documents)",
            ADMIN,
            put_geography,
        )
        .add(M::GET, "/1.0/consolidation", "The last consolidation run: plan per zone, each step's progress", ANY, get_consolidation)
        .add(
            M::POST,
            "/1.0/consolidation",
            "Plan (and with apply, carry out) a consolidation {apply?, zones?, max_moves?, per_move_watts?, per_gib_watts?, time_limit_ms?}",
            ADMIN,
            post_consolidation,
        )
        .add(M::GET, "/1.0/regions", "Per user region: slots of each deployed service within reach", ANY, list_regions)
        .add(
            M::POST,
            "/1.0/plans",
            "Dry run: the decision the domain would make for {manifest?, serviceid?, slots?}, as a diff against what runs; nothing is stored",
            PROVIDERS,
            post_plan,
        )
        .add(M::GET, "/1.0/state", "The live state the placement pipeline decides on", PROVIDERS, get_live_state)
        .add(M::GET, "/1.0/services/{id}/events", "What happened to a service (decisions, moves, drains)", ANY, service_events)
        .add(M::GET, "/1.0/services/{id}/decision", "The service's last placement decision", ANY, service_decision)
        .add(M::GET, "/1.0/infrastructure", "The infrastructure document (links, prices, proximity classes)", ANY, get_infrastructure)
        .add_document(M::PUT, "/1.0/infrastructure", "Replace the infrastructure document", ADMIN, put_infrastructure)
        .add(M::GET, "/1.0/knowledge-base", "The knowledge base (workload tags → hardware profiles)", ANY, get_kb)
        .add_document(M::PUT, "/1.0/knowledge-base", "Replace the knowledge base", ADMIN, put_kb)
        .add(
            M::GET,
            "/1.0/backup",
            "A consistent snapshot of the domain's store as a zonal-backup file (JSON lines, SHA-256 in the last line; zonal backup, zonal restore)",
            ADMIN,
            get_backup,
        )
}

async fn get_backup(State(api): State<Api>) -> Ndjson {
    let filename = format!("{}-{}.zonal-backup", api.core.info.name, zonal_proto::now_ms());
    Ndjson { filename, body: api.core.backup_body() }
}

async fn post_plan(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    JsonBody(b): JsonBody<crate::decisions::PlanRequest>,
) -> R<Json<Value>> {
    Ok(Json(json!(api.core.dry_run(&who(p)?, &b).await?)))
}

async fn get_live_state(State(api): State<Api>, p: Option<Extension<Principal>>) -> R<Json<Value>> {
    Ok(Json(json!(api.core.state_for(&who(p)?)?)))
}

async fn service_events(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> R<Json<Value>> {
    Ok(Json(json!(api.core.events(&who(p)?, &id)?)))
}

async fn service_decision(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> R<Json<Value>> {
    match api.core.last_decision(&who(p)?, &id)? {
        Some(d) => Ok(Json(json!(d))),
        None => Err(ApiError::not_found(format!("service {id} has not been placed yet (deploy it: zonal apply -f …)"))),
    }
}

async fn get_infrastructure(State(api): State<Api>) -> R<Json<Value>> {
    match api.core.infrastructure_document()? {
        Some(i) => Ok(Json(json!(i))),
        None => Err(ApiError::not_found(
            "no infrastructure document has been given (zonal up sends its own; zonal apply -f infra.yaml replaces it)",
        )),
    }
}

async fn put_infrastructure(
    State(api): State<Api>,
    JsonBody(Document(b)): JsonBody<Document<zonal_model::Infrastructure>>,
) -> R<Json<Value>> {
    Ok(Json(json!(api.core.set_infrastructure(b)?)))
}

async fn get_kb(State(api): State<Api>) -> R<Json<Value>> {
    match api.core.knowledge_base()? {
        Some(k) => Ok(Json(json!(k))),
        None => Err(ApiError::not_found("no knowledge base has been given (zonal apply -f knowledge-base.yaml)")),
    }
}

async fn put_kb(
    State(api): State<Api>,
    JsonBody(Document(b)): JsonBody<Document<zonal_model::KnowledgeBase>>,
) -> R<Json<Value>> {
    Ok(Json(json!(api.core.set_knowledge_base(b)?)))
}

async fn get_geography(State(api): State<Api>, p: Option<Extension<Principal>>) -> R<Json<Value>> {
    who(p)?;
    Ok(Json(json!(api.core.geography()?)))
}

async fn put_geography(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    JsonBody(b): JsonBody<zonal_proto::wire::GeographyChange>,
) -> R<Json<Value>> {
    who(p)?;
    Ok(Json(json!(api.core.set_geography(b)?)))
}

async fn list_regions(State(api): State<Api>, p: Option<Extension<Principal>>) -> R<Json<Vec<RegionView>>> {
    Ok(Json(api.core.regions(&who(p)?)?))
}

/// A whole document of the model (an infrastructure, a knowledge base) as a request body. The
/// model's types carry no JSON Schema yet: the document says so (an object, its fields
/// described in docs/), and the body is read strictly by the model's own reader.
#[derive(Deserialize)]
#[serde(transparent)]
struct Document<T>(T);

impl<T> schemars::JsonSchema for Document<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ModelDocument".into()
    }
    fn json_schema(_gen: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "additionalProperties": true,
            "description": "A whole model document (the infrastructure or the knowledge base, as `zonal apply -f` sends it); its fields are not described here (not yet typed): see docs/runtime.md",
        })
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ResolveQuery {
    /// The client's latitude in degrees (with `lon`; or `region` instead of both).
    #[schemars(with = "Option<f64>", range(min = -90.0, max = 90.0))]
    lat: Option<String>,
    /// The client's longitude in degrees (with `lat`).
    #[schemars(with = "Option<f64>", range(min = -180.0, max = 180.0))]
    lon: Option<String>,
    /// A user region or a zone the client is in (instead of `lat` and `lon`).
    #[serde(default)]
    #[schemars(schema_with = "zonal_proto::openapi::name_schema")]
    region: Option<String>,
}

async fn get_resolve(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
    Query(q): Query<ResolveQuery>,
) -> R<OrRetry<zonal_proto::wire::Resolved>> {
    use crate::resolve::Origin;
    let coord = |name: &str, v: &str| {
        v.trim().parse::<f64>().map_err(|_| ApiError::bad_request(format!("?{name}={v:?} is not a number of degrees")))
    };
    let from = match (q.lat.as_deref(), q.lon.as_deref(), q.region) {
        (Some(lat), Some(lon), None) => {
            let (lat, lon) = (coord("lat", lat)?, coord("lon", lon)?);
            Origin::At(zonal_model::Location::new(lat, lon).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "({lat}, {lon}) is not a place on Earth; expected lat in [-90, 90] and lon in [-180, 180]"
                ))
            })?)
        }
        (None, None, Some(r)) => {
            if let Some(why) = zonal_model::names::name_problem(&r) {
                return Err(ApiError::bad_request(format!("?region: {why} (a user region or a zone)")));
            }
            Origin::Region(r)
        }
        _ => {
            return Err(ApiError::bad_request(
                "GET /1.0/resolve/{service}: expected ?lat=…&lon=… or ?region=REGION (one of the two)",
            ))
        }
    };
    match api.core.resolve(&who(p)?, &id, &from) {
        Ok(r) => Ok(OrRetry::Found(r)),
        // Tell clients when to come back while an on-demand deployment is under way.
        Err(e @ DomainError::NoSlot { .. }) => Ok(OrRetry::Wait(ApiError::from(e))),
        Err(e) => Err(e.into()),
    }
}

/// The OpenAPI document of the domain API.
pub fn openapi_document() -> Value {
    routes().openapi(
        "Zonal domain orchestrator",
        "FUSION /1.0 domain API: zones, services, state, slots, users, tokens. Bearer tokens bound to roles (admin, provider, zone).",
    )
}

/// The domain's router with its layers, without an audit log.
pub fn router(core: Arc<DomainCore>, metrics: Arc<HttpMetrics>) -> Router {
    router_with_audit(core, metrics, None)
}

/// The domain's router with its layers; with `audit`, every write is recorded there
/// (`zonal_proto::audit`) and `GET /1.0/audit` reads it.
pub fn router_with_audit(core: Arc<DomainCore>, metrics: Arc<HttpMetrics>, audit: Option<Arc<Audit>>) -> Router {
    let (router, index, _) = routes().into_parts();
    let api = Api {
        core: core.clone(),
        metrics: metrics.clone(),
        openapi: Arc::new(openapi_document()),
        audit: audit.clone(),
    };
    let auth_state = AuthState { authenticator: Arc::new(DomainAuth(core)), index };
    let router = router
        .fallback(server::not_found)
        .with_state(api)
        .layer(server::body_limit())
        .layer(from_fn_with_state(auth_state, server::auth))
        .layer(from_fn_with_state(metrics, server::observe));
    match audit {
        Some(log) => router.layer(from_fn_with_state(AuditState { log, telemetry: TELEMETRY }, server::audit)),
        None => router,
    }
}

fn who(p: Option<Extension<Principal>>) -> R<Principal> {
    server::principal(p)
}

/// `GET /healthz`.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
    /// The domain's name.
    domain: String,
}

async fn healthz(State(api): State<Api>) -> Json<Health> {
    Json(Health { status: "ok", domain: api.core.info.name.clone() })
}

/// `{"status": "ok"}`: a report was taken.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct Taken {
    /// Always `ok`.
    status: &'static str,
}

/// `GET /1.0/services/{id}/state`.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct ServiceStateView {
    state: String,
    target: String,
    message: Option<String>,
}

/// `GET /1.0/services/{id}/slots`: domain-wide session slots and the demand.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct ServiceSlotsView {
    total: u32,
    free: u32,
    used: u32,
    demand: u32,
}

async fn openapi(State(api): State<Api>) -> Json<Value> {
    Json((*api.openapi).clone())
}

async fn metrics(State(api): State<Api>) -> Metrics {
    let mut out = String::new();
    api.metrics.render("zonal_domain", &mut out);
    api.core.render_metrics(&mut out);
    Metrics(out)
}

async fn get_domain(State(api): State<Api>) -> Json<DomainInfo> {
    Json(api.core.info.clone())
}

async fn list_zones(State(api): State<Api>, p: Option<Extension<Principal>>) -> R<Json<Vec<ZoneView>>> {
    Ok(Json(api.core.zones(&who(p)?)?))
}

async fn post_zone(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    JsonBody(b): JsonBody<ZoneRegistration>,
) -> R<Created<ZoneRegistered>> {
    Ok(Created(api.core.register_zone(&who(p)?, b)?))
}

async fn delete_zones(State(api): State<Api>, p: Option<Extension<Principal>>) -> R<NoContent> {
    for z in api.core.zones(&who(p)?)? {
        api.core.delete_zone(&z.name)?;
    }
    Ok(NoContent)
}

async fn get_zone(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(zone): Path<String>,
) -> R<Json<ZoneView>> {
    Ok(Json(api.core.zone(&who(p)?, &zone)?))
}

async fn delete_zone(State(api): State<Api>, Path(zone): Path<String>) -> R<NoContent> {
    api.core.delete_zone(&zone)?;
    Ok(NoContent)
}

async fn put_zone_status(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(zone): Path<String>,
    JsonBody(b): JsonBody<ZoneReport>,
) -> R<Json<Taken>> {
    api.core.zone_status(&who(p)?, &zone, b)?;
    Ok(Json(Taken { status: "ok" }))
}

async fn zone_services(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(zone): Path<String>,
) -> R<Json<Value>> {
    let caller = who(p)?;
    api.core.zone(&caller, &zone)?;
    let out: Vec<Value> = api
        .core
        .visible_services(&caller)?
        .iter()
        .filter(|s| s.placement.as_ref().is_some_and(|pl| pl.zones.contains_key(&zone)))
        .map(|s| json!(api.core.service_view(s)))
        .collect();
    Ok(Json(json!(out)))
}

async fn zone_service(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path((zone, id)): Path<(String, String)>,
) -> R<Json<Value>> {
    Ok(Json(api.core.service_in_zone(&who(p)?, &id, &zone)?))
}

async fn service_zone(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path((id, zone)): Path<(String, String)>,
) -> R<Json<Value>> {
    Ok(Json(api.core.service_in_zone(&who(p)?, &id, &zone)?))
}

async fn list_services(State(api): State<Api>, p: Option<Extension<Principal>>) -> R<Json<Vec<ServiceView>>> {
    let views: Vec<ServiceView> =
        api.core.visible_services(&who(p)?)?.iter().map(|s| api.core.service_view(s)).collect();
    Ok(Json(views))
}

async fn post_service(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    JsonBody(b): JsonBody<RegisterService>,
) -> R<Either<Json<ServiceView>, Created<ServiceView>>> {
    let (registration, view) = api.core.register_service(&who(p)?, &b)?;
    Ok(match registration {
        Registration::Created => Either::B(Created(view)),
        Registration::Unchanged => Either::A(Json(view)),
    })
}

async fn delete_services(State(api): State<Api>, p: Option<Extension<Principal>>) -> R<Accepted<Vec<ServiceView>>> {
    let caller = who(p)?;
    let mut out = Vec::new();
    for s in api.core.visible_services(&caller)? {
        if caller.is_admin() || s.owner == caller.name {
            match api.core.delete_service(&caller, &s.serviceid) {
                Ok(v) => out.push(v),
                // Deleted meanwhile (its deletion finished since the list was read).
                Err(DomainError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(Accepted(out))
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Detail {
    /// Include the service's instances, from its zones.
    instances: Option<bool>,
}

async fn get_service(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
    Query(q): Query<Detail>,
) -> R<Json<ServiceView>> {
    let caller = who(p)?;
    let s = api.core.visible_service(&caller, &id)?;
    let mut view = api.core.service_view(&s);
    view.manifest = Some(s.manifest.clone());
    if q.instances.unwrap_or(false) {
        view.instances = Some(api.core.instances(&caller, Some(&id)).await?);
    }
    Ok(Json(view))
}

async fn delete_service(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> R<Accepted<ServiceView>> {
    Ok(Accepted(api.core.delete_service(&who(p)?, &id)?))
}

async fn get_state(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> R<Json<ServiceStateView>> {
    let v = api.core.service_view(&api.core.visible_service(&who(p)?, &id)?);
    Ok(Json(ServiceStateView { state: v.state, target: v.target, message: v.message }))
}

#[derive(Deserialize, schemars::JsonSchema)]
struct DeployQuery {
    /// Keep an infeasible service pending instead of refusing it.
    pending: Option<bool>,
}

async fn put_state(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
    Query(q): Query<DeployQuery>,
    JsonBody(b): JsonBody<StateChange>,
) -> R<Accepted<ServiceView>> {
    let caller = who(p)?;
    let view = match StateRequest::parse(&b.state) {
        Some(StateRequest::Deploy) => api.core.deploy_service(&caller, &id, q.pending.unwrap_or(false)).await?,
        _ => api.core.set_state(&caller, &id, &b.state)?,
    };
    Ok(Accepted(view))
}

async fn get_slots(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> R<Json<ServiceSlotsView>> {
    let v = api.core.service_view(&api.core.visible_service(&who(p)?, &id)?);
    Ok(Json(ServiceSlotsView { total: v.slots.total, free: v.slots.free, used: v.slots.used, demand: v.demand }))
}

async fn put_slots(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<SlotsChange>,
) -> R<Accepted<ServiceView>> {
    Ok(Accepted(api.core.set_slots(&who(p)?, &id, b.slots).await?))
}

async fn delete_slots(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> R<Accepted<ServiceView>> {
    Ok(Accepted(api.core.set_state(&who(p)?, &id, "terminate")?))
}

async fn get_consolidation(State(api): State<Api>, p: Option<Extension<Principal>>) -> R<Json<Value>> {
    match api.core.consolidation_for(&who(p)?)? {
        Some(run) => Ok(Json(json!(run))),
        None => Err(ApiError::not_found("no consolidation has run yet (POST /1.0/consolidation, zonal consolidate)")),
    }
}

async fn post_consolidation(
    State(api): State<Api>,
    JsonBody(b): JsonBody<crate::consolidate::ConsolidationRequest>,
) -> R<Either<Json<Value>, Accepted<Value>>> {
    let run = api.core.plan_consolidation(&b, vec!["requested".into()]).await?;
    if run.state == RunState::Applying {
        tokio::spawn(api.core.clone().apply_consolidation());
        return Ok(Either::B(Accepted(json!(run))));
    }
    Ok(Either::A(Json(json!(run))))
}

async fn service_offers(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> R<Json<Value>> {
    let caller = who(p)?;
    match api.core.offer_round(&caller, &id)? {
        Some(round) => Ok(Json(json!(round))),
        None => Err(ApiError::not_found(format!(
            "service {id} has no offer round (it names no evaluator, or its placement by offers has not run yet)"
        ))),
    }
}

async fn service_zones(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> R<Json<Value>> {
    let caller = who(p)?;
    let s = api.core.visible_service(&caller, &id)?;
    let mut out = Vec::new();
    for zone in s.placement.iter().flat_map(|pl| pl.zones.keys()) {
        out.push(api.core.service_in_zone(&caller, &id, zone)?);
    }
    Ok(Json(json!(out)))
}

async fn service_instances(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> R<Json<Vec<InstanceView>>> {
    Ok(Json(api.core.instances(&who(p)?, Some(&id)).await?))
}

async fn list_instances(State(api): State<Api>, p: Option<Extension<Principal>>) -> R<Json<Vec<InstanceView>>> {
    Ok(Json(api.core.instances(&who(p)?, None).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Lines {
    /// How many lines of the log's tail (default 200).
    lines: Option<usize>,
}

async fn instance_logs(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(instance): Path<String>,
    Query(q): Query<Lines>,
) -> R<Text> {
    let text = api.core.instance_logs(&who(p)?, &instance, q.lines.unwrap_or(200)).await?;
    Ok(Text(text))
}

async fn list_users(State(api): State<Api>, p: Option<Extension<Principal>>) -> R<Json<Vec<UserView>>> {
    Ok(Json(api.core.users(&who(p)?)?))
}

async fn post_user(State(api): State<Api>, JsonBody(b): JsonBody<CreateUser>) -> R<Created<UserView>> {
    Ok(Created(api.core.create_user(&b)?))
}

async fn get_user(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(user): Path<String>,
) -> R<Json<UserView>> {
    Ok(Json(api.core.user(&who(p)?, &user)?))
}

async fn delete_user(State(api): State<Api>, Path(user): Path<String>) -> R<NoContent> {
    api.core.delete_user(&user)?;
    Ok(NoContent)
}

async fn post_token(State(api): State<Api>, JsonBody(b): JsonBody<CreateToken>) -> R<Created<TokenCreated>> {
    Ok(Created(api.core.create_token(&b)?))
}

#[derive(Deserialize, schemars::JsonSchema)]
struct TokensQuery {
    /// Only this user's tokens.
    user: Option<String>,
}

async fn list_tokens(State(api): State<Api>, Query(q): Query<TokensQuery>) -> R<Json<Vec<TokenView>>> {
    Ok(Json(api.core.tokens(q.user.as_deref())?))
}

async fn revoke_token(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> R<Json<TokenView>> {
    Ok(Json(api.core.revoke_token(&who(p)?, &id)?))
}

async fn revoke_user_tokens(
    State(api): State<Api>,
    p: Option<Extension<Principal>>,
    Path(user): Path<String>,
) -> R<Json<Vec<TokenView>>> {
    Ok(Json(api.core.revoke_user_tokens(&who(p)?, &user)?))
}

async fn get_audit(State(api): State<Api>, Query(q): Query<AuditQuery>) -> R<Json<Value>> {
    Ok(Json(json!(crate::audit::read(&api.core, api.audit.clone(), &q).await?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    use zonal_store::MemStore;

    fn concrete(path: &str) -> String {
        path.split('/')
            .map(|seg| if seg.starts_with('{') { "x".to_string() } else { seg.to_string() })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Each kind of error keeps the status, error word, detail and diagnostics the API has
    /// always answered with.
    #[test]
    fn domain_errors_map_to_their_statuses_and_words() {
        use crate::error::NoSlot;
        let cases = [
            (DomainError::NotFound("no service \"x\"".into()), 404, "not_found"),
            (DomainError::Conflict("busy".into()), 409, "conflict"),
            (DomainError::Invalid("bad name".into()), 400, "bad_request"),
            (
                DomainError::InvalidManifest {
                    summary: "2 problems".into(),
                    diagnostics: vec!["a".into(), "b".into()],
                },
                400,
                "invalid_manifest",
            ),
            (DomainError::Forbidden("not yours".into()), 403, "forbidden"),
            (
                DomainError::Unprocessable { detail: "cannot place".into(), reasons: vec!["cpu".into()] },
                422,
                "infeasible",
            ),
            (DomainError::NoSlot { why: NoSlot::Placing, detail: "placing".into() }, 503, "deploying"),
            (
                DomainError::NoSlot { why: NoSlot::DeployingOnDemand, detail: "coming".into() },
                503,
                "deploying_on_demand",
            ),
            (DomainError::NoSlot { why: NoSlot::NoSlots, detail: "full".into() }, 503, "no_slots"),
            (DomainError::Unavailable("zone down".into()), 503, "unavailable"),
            (DomainError::Store("the domain's store failed: disk".into()), 500, "internal"),
        ];
        for (e, status, word) in cases {
            let detail = e.detail().to_string();
            let diagnostics = match &e {
                DomainError::InvalidManifest { diagnostics, .. } => diagnostics.clone(),
                DomainError::Unprocessable { reasons, .. } => reasons.clone(),
                _ => Vec::new(),
            };
            let api = ApiError::from(e);
            assert_eq!((api.status, api.body.error.as_str()), (status, word), "{detail}");
            assert_eq!((api.body.detail, api.body.diagnostics), (detail, diagnostics));
        }
    }

    /// The document is OpenAPI 3.0 (it reads as `openapiv3`'s types), every route has its
    /// request and response schemas, and every reference resolves.
    #[test]
    fn the_openapi_document_is_valid_openapi_3_with_the_schemas_of_every_route() {
        let doc = openapi_document();
        assert_eq!(zonal_proto::openapi::problems(&doc), Vec::<String>::new());
        let parsed: openapiv3::OpenAPI = serde_json::from_value(doc.clone()).expect("an OpenAPI 3.0 document");
        let operations: usize = parsed.paths.paths.values().filter_map(|p| p.as_item()).map(|p| p.iter().count()).sum();
        assert_eq!(operations, routes().specs().len());
    }

    #[tokio::test]
    async fn every_route_is_in_the_openapi_document_and_is_served() {
        let doc = openapi_document();
        let (core, token) = DomainCore::open(Arc::new(MemStore::new()), "test", Default::default()).expect("open");
        let token = token.expect("bootstrap token");
        let app = router(core, Arc::new(HttpMetrics::default()));
        let specs = routes().specs().to_vec();
        assert!(specs.len() > 25);
        for s in &specs {
            let op = &doc["paths"][server::openapi_path(s.path).as_str()][s.method.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} missing from /openapi.json", s.method, s.path);
            assert!(op["summary"].as_str().is_some_and(|x| !x.is_empty()));
            let body = if matches!(s.method, Method::POST | Method::PUT) { Body::from("{}") } else { Body::empty() };
            let req = Request::builder()
                .method(s.method.clone())
                .uri(concrete(s.path))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(body)
                .expect("request");
            let resp = app.clone().oneshot(req).await.expect("response");
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
            let text = String::from_utf8_lossy(&bytes);
            assert_ne!(status, 405, "{} {}: {text}", s.method, s.path);
            assert!(!text.contains("no resource at"), "{} {} is not routed: {text}", s.method, s.path);
            if status >= 400 {
                let e: zonal_proto::ErrorBody = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| panic!("{} {}: not a JSON error: {text}", s.method, s.path));
                assert!(!e.error.is_empty() && !e.detail.is_empty());
            }
        }
        // And nothing else is documented.
        let documented: usize =
            doc["paths"].as_object().map_or(0, |p| p.values().map(|m| m.as_object().map_or(0, |m| m.len())).sum());
        assert_eq!(documented, specs.len());
    }
}
