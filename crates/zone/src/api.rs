//! The zone-side `/1.0` REST API (FUSION §7.2 plus the DCA-level instance resources).
//! Handlers only translate HTTP to calls on [`ZoneCore`] and back; this is the one place
//! where a [`ZoneError`] becomes an HTTP status and `{error, detail}` body.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use zonal_proto::audit::{Audit, AuditQuery};
use zonal_proto::openapi::{Accepted, AcceptedEmpty, Created, Either, Metrics, NoContent, Text};
use zonal_proto::server::{self, Access, AuditState, AuthState, Authenticate, HttpMetrics, JsonBody, Routes};
use zonal_proto::wire::{
    DcaView, DomainBinding, InstanceSlots, InstanceView, Meter, OfferRequest, SlotTotals, StateChange, StateReply,
    ZoneServiceRegister, ZoneServiceView, ZoneSlotsChange,
};
use zonal_proto::{ApiError, Principal, Role};

use crate::core::ZoneCore;
use crate::error::ZoneError;
use crate::registry::{Deletion, Registration, ServiceState};

type R<T> = Result<T, ApiError>;

impl From<ZoneError> for ApiError {
    fn from(e: ZoneError) -> ApiError {
        match e {
            ZoneError::NotFound(d) => ApiError::not_found(d),
            ZoneError::Conflict(d) => ApiError::conflict(d),
            ZoneError::Invalid(d) => ApiError::bad_request(d),
            ZoneError::InvalidManifest { summary, diagnostics } => ApiError::invalid_manifest(summary, diagnostics),
            ZoneError::Forbidden(d) => ApiError::forbidden(d),
            ZoneError::Unprocessable(d) => ApiError::unprocessable(d),
            ZoneError::Unavailable(d) => ApiError::unavailable(d),
            ZoneError::Store(d) => ApiError::internal(d),
        }
    }
}

const DOMAIN: Access = Access::Roles(&[Role::Domain]);
const DOMAIN_OR_INSTANCE: Access = Access::Roles(&[Role::Domain, Role::Instance]);
/// The domain's key, or the zone's own token at the domain (what its operator holds).
const DOMAIN_OR_ZONE: Access = Access::Roles(&[Role::Domain, Role::Zone]);

#[derive(Clone)]
pub struct Api {
    pub core: Arc<ZoneCore>,
    metrics: Arc<HttpMetrics>,
    openapi: Arc<Value>,
    /// The audit log of the writes made at this zone, when it keeps one.
    audit: Option<Arc<Audit>>,
}

/// Accepted requests of these routes are telemetry in the audit log (instances' reports).
const TELEMETRY: &[(Method, &str)] = &[(Method::PUT, "/1.0/instances/{id}/slots"), (Method::POST, "/1.0/meters")];

struct ZoneAuth(Arc<ZoneCore>);

impl Authenticate for ZoneAuth {
    fn authenticate(&self, token: &str) -> Option<Principal> {
        self.0.authenticate(token)
    }
}

fn routes() -> Routes<Api> {
    use Method as M;
    Routes::new()
        .add(M::GET, "/healthz", "Liveness", Access::Public, healthz)
        .add(M::GET, "/openapi.json", "This OpenAPI document", Access::Public, openapi)
        .add(
            M::GET,
            "/metrics",
            "Prometheus metrics (names services): the domain's key or the zone's own token",
            DOMAIN_OR_ZONE,
            metrics,
        )
        .add(M::GET, "/1.0/services", "Services with state and slots", DOMAIN, list_services)
        .add(M::POST, "/1.0/services", "Register a service {serviceid, manifest}", DOMAIN, post_service)
        .add(M::DELETE, "/1.0/services", "Terminate and unregister all services", DOMAIN, delete_services)
        .add(M::GET, "/1.0/services/{id}", "A service with its manifest", DOMAIN, get_service)
        .add(M::DELETE, "/1.0/services/{id}", "Terminate and unregister a service", DOMAIN, delete_service)
        .add(M::GET, "/1.0/services/{id}/state", "A service's state", DOMAIN, get_service_state)
        .add(
            M::PUT,
            "/1.0/services/{id}/state",
            "Change state: register, provision, deploy, terminate",
            DOMAIN,
            put_service_state,
        )
        .add(M::DELETE, "/1.0/services/{id}/state", "Terminate and unregister a service", DOMAIN, delete_service)
        .add(M::GET, "/1.0/services/{id}/slots", "A service's session slots", DOMAIN, get_service_slots)
        .add(
            M::PUT,
            "/1.0/services/{id}/slots",
            "Instances wanted per component (and slots)",
            DOMAIN,
            put_service_slots,
        )
        .add(M::DELETE, "/1.0/services/{id}/slots", "Terminate the service's instances", DOMAIN, delete_service_slots)
        .add(M::GET, "/1.0/services/{id}/instances", "A service's instances", DOMAIN, get_service_instances)
        .add(M::POST, "/1.0/services/{id}/instances", "Create one instance {component}", DOMAIN, post_service_instance)
        .add(
            M::DELETE,
            "/1.0/services/{id}/instances",
            "Terminate all the service's instances",
            DOMAIN,
            delete_service_slots,
        )
        .add(M::GET, "/1.0/services/{id}/offers", "The service's valid offers", DOMAIN, get_service_offers)
        .add(
            M::POST,
            "/1.0/services/{id}/offers",
            "Evaluate this zone for a service {manifest, slots, regions, region_rtt_ms, deadline_ms, validity_ms}: a binding offer",
            DOMAIN,
            post_service_offer,
        )
        .add(M::DELETE, "/1.0/services/{id}/offers", "Flush the service's offers", DOMAIN, delete_service_offers)
        .add(M::GET, "/1.0/offers", "All valid offers", DOMAIN, get_offers)
        .add(M::POST, "/1.0/offers", "Evaluate this zone for a service {serviceid, manifest, slots, …}", DOMAIN, post_offer)
        .add(M::DELETE, "/1.0/offers", "Flush every offer", DOMAIN, delete_offers)
        .add(M::GET, "/1.0/offers/{offer}", "One valid offer", DOMAIN, get_offer)
        .add(M::DELETE, "/1.0/offers/{offer}", "Withdraw an offer", DOMAIN, delete_offer)
        .add(M::GET, "/1.0/instances", "All instances", DOMAIN, list_instances)
        .add(M::GET, "/1.0/instances/{id}", "An instance: state, slots, ports", DOMAIN, get_instance)
        .add(M::DELETE, "/1.0/instances/{id}", "Terminate an instance", DOMAIN, delete_instance)
        .add(M::GET, "/1.0/instances/{id}/state", "An instance's state", DOMAIN, get_instance_state)
        .add(
            M::PUT,
            "/1.0/instances/{id}/state",
            "Change state: provision, deploy, terminate",
            DOMAIN,
            put_instance_state,
        )
        .add(M::DELETE, "/1.0/instances/{id}/state", "Terminate an instance", DOMAIN, delete_instance)
        .add(M::GET, "/1.0/instances/{id}/slots", "An instance's slots", DOMAIN_OR_INSTANCE, get_instance_slots)
        .add(
            M::PUT,
            "/1.0/instances/{id}/slots",
            "An instance reports its slots",
            DOMAIN_OR_INSTANCE,
            put_instance_slots,
        )
        .add(M::DELETE, "/1.0/instances/{id}/slots", "Drop all slots: terminate the instance", DOMAIN, delete_instance)
        .add(M::GET, "/1.0/moves", "Recent instance moves", DOMAIN, get_moves)
        .add(M::GET, "/1.0/instances/{id}/move", "The instance's last move", DOMAIN, get_move)
        .add(
            M::POST,
            "/1.0/instances/{id}/move",
            "Move a running instance to another host {host}: replacement first, then the old one stops",
            DOMAIN,
            post_move,
        )
        .add(
            M::GET,
            "/1.0/instances/{id}/logs",
            "The tail of an instance's log, running or recently removed (?lines=N&service=S)",
            DOMAIN,
            get_logs,
        )
        .add(M::GET, "/1.0/instances/{id}/ports", "Logical port to real port mappings", DOMAIN, get_ports)
        .add(M::GET, "/1.0/instances/{id}/configs", "An instance's configurations", DOMAIN, get_configs)
        .add(M::POST, "/1.0/instances/{id}/configs", "Add a configuration {name, port, max}", DOMAIN, post_config)
        .add(M::DELETE, "/1.0/instances/{id}/configs", "Remove all configurations", DOMAIN, delete_configs)
        .add(M::DELETE, "/1.0/instances/{id}/configs/{config}", "Remove a configuration", DOMAIN, delete_config)
        .add(M::POST, "/1.0/meters", "Ceilometer-style fusioncounter report", DOMAIN_OR_INSTANCE, post_meter)
        .add(M::GET, "/1.0/domain", "The domain this zone belongs to", DOMAIN, get_domain)
        .add(M::PUT, "/1.0/domain", "Bind the zone to its domain {url, name}", DOMAIN, put_domain)
        .add(M::DELETE, "/1.0/domain", "Unbind the domain (no active services)", DOMAIN, delete_domain)
        .add(M::GET, "/1.0/dca", "The DC adaptor", DOMAIN, get_dca)
        .add(M::PUT, "/1.0/dca", "Attach the DC adaptor {kind}", DOMAIN, put_dca)
        .add(M::DELETE, "/1.0/dca", "Detach the DC adaptor (no active instances)", DOMAIN, delete_dca)
        .add(M::GET, "/1.0/context/{ns}", "Late-binding namespace entries (?prefix=)", DOMAIN_OR_INSTANCE, context_list)
        .add(M::GET, "/1.0/context/{ns}/{*key}", "One namespace entry", DOMAIN_OR_INSTANCE, context_get)
        .add(M::PUT, "/1.0/context/{ns}/{*key}", "Set a namespace entry", DOMAIN_OR_INSTANCE, context_put)
        .add(M::DELETE, "/1.0/context/{ns}/{*key}", "Delete a namespace entry", DOMAIN_OR_INSTANCE, context_delete)
        .add(
            M::GET,
            "/1.0/audit",
            "The audit log of the writes made at this zone (?since=1h&user=U&telemetry=true&limit=N)",
            DOMAIN,
            get_audit,
        )
}

/// The OpenAPI document of the zone API.
pub fn openapi_document() -> Value {
    routes()
        .openapi("Zonal zone manager", "Zone-side FUSION /1.0 API: services, instances, slots, domain, DCA, context.")
}

/// The zone manager's router with its layers (auth, request ids, metrics, error mapping),
/// without an audit log.
pub fn router(core: Arc<ZoneCore>, metrics: Arc<HttpMetrics>) -> Router {
    router_with_audit(core, metrics, None)
}

/// The router; with `audit`, every write made at the zone is recorded there
/// (`zonal_proto::audit`) and `GET /1.0/audit` reads it.
pub fn router_with_audit(core: Arc<ZoneCore>, metrics: Arc<HttpMetrics>, audit: Option<Arc<Audit>>) -> Router {
    let table = routes();
    let openapi = Arc::new(openapi_document());
    let (router, index, _) = table.into_parts();
    let api = Api { core: core.clone(), metrics: metrics.clone(), openapi, audit: audit.clone() };
    let auth_state = AuthState { authenticator: Arc::new(ZoneAuth(core)), index };
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

async fn get_audit(State(api): State<Api>, Query(q): Query<AuditQuery>) -> R<Json<Value>> {
    let filter = q.filter(zonal_proto::now_ms()).map_err(ApiError::bad_request)?;
    let audit = api.audit.clone().ok_or_else(|| ApiError::unavailable("this zone keeps no audit log"))?;
    let entries = tokio::task::spawn_blocking(move || audit.query(&filter))
        .await
        .map_err(|e| ApiError::internal(format!("reading the audit log failed: {e}")))?
        .map_err(ApiError::internal)?;
    Ok(Json(json!(entries)))
}

fn caller(p: Option<Extension<Principal>>) -> R<Principal> {
    server::principal(p)
}

/// `GET /healthz`.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
    /// The zone's name.
    zone: String,
}

async fn healthz(State(api): State<Api>) -> Json<Health> {
    Json(Health { status: "ok", zone: api.core.name().to_string() })
}

/// Zone `GET /1.0/services/{id}/state`.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct ServiceStateView {
    state: String,
    running: u32,
    /// Desired instances per component.
    instances: BTreeMap<String, u32>,
}

async fn openapi(State(api): State<Api>) -> Json<Value> {
    Json((*api.openapi).clone())
}

async fn metrics(State(api): State<Api>) -> Metrics {
    let mut out = String::new();
    api.metrics.render("zonal_zone", &mut out);
    api.core.render_metrics(&mut out);
    Metrics(out)
}

async fn list_services(State(api): State<Api>) -> Json<Vec<ZoneServiceView>> {
    Json(api.core.services())
}

async fn post_service(
    State(api): State<Api>,
    JsonBody(b): JsonBody<ZoneServiceRegister>,
) -> R<Either<Json<StateReply>, Created<StateReply>>> {
    let (done, state) = api.core.register_service_of(&b.serviceid, &b.manifest, b.owner.as_deref())?;
    let reply = StateReply { state: state.as_str().into() };
    Ok(match done {
        Registration::Created => Either::B(Created(reply)),
        Registration::Unchanged => Either::A(Json(reply)),
    })
}

async fn delete_services(State(api): State<Api>) -> R<Either<AcceptedEmpty, NoContent>> {
    let mut pending = false;
    for s in api.core.services() {
        pending |= api.core.delete_service(&s.serviceid)? == Deletion::Pending;
    }
    Ok(if pending { Either::A(AcceptedEmpty) } else { Either::B(NoContent) })
}

async fn get_service(State(api): State<Api>, Path(id): Path<String>) -> R<Json<Value>> {
    let view = api.core.service(&id)?;
    let mut v = json!(view);
    v["manifest"] = json!(api.core.service_manifest(&id)?);
    Ok(Json(v))
}

async fn delete_service(State(api): State<Api>, Path(id): Path<String>) -> R<Either<Accepted<StateReply>, NoContent>> {
    Ok(match api.core.delete_service(&id)? {
        Deletion::Gone => Either::B(NoContent),
        Deletion::Pending => Either::A(Accepted(StateReply { state: ServiceState::Terminating.as_str().into() })),
    })
}

async fn get_service_state(State(api): State<Api>, Path(id): Path<String>) -> R<Json<ServiceStateView>> {
    let v = api.core.service(&id)?;
    Ok(Json(ServiceStateView { state: v.state, running: v.running, instances: v.instances }))
}

async fn put_service_state(
    State(api): State<Api>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<StateChange>,
) -> R<Json<ZoneServiceView>> {
    Ok(Json(api.core.set_service_state(&id, &b.state)?))
}

async fn get_service_slots(State(api): State<Api>, Path(id): Path<String>) -> R<Json<SlotTotals>> {
    Ok(Json(api.core.service(&id)?.slots))
}

async fn put_service_slots(
    State(api): State<Api>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ZoneSlotsChange>,
) -> R<Json<Value>> {
    Ok(Json(json!(api.core.set_desired(&id, &b)?)))
}

#[derive(Deserialize, schemars::JsonSchema)]
struct MoveBody {
    host: String,
}

async fn post_move(
    State(api): State<Api>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<MoveBody>,
) -> R<Accepted<Value>> {
    Ok(Accepted(json!(api.core.move_instance(&id, &b.host)?)))
}

async fn get_move(State(api): State<Api>, Path(id): Path<String>) -> R<Json<Value>> {
    Ok(Json(json!(api.core.move_of(&id)?)))
}

async fn get_moves(State(api): State<Api>) -> Json<Value> {
    Json(json!(api.core.moves()))
}

async fn get_service_offers(State(api): State<Api>, Path(id): Path<String>) -> R<Json<Value>> {
    Ok(Json(json!(api.core.offers(Some(&id)))))
}

async fn post_service_offer(
    State(api): State<Api>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<OfferRequest>,
) -> R<Created<Value>> {
    let offer = api.core.make_offer(Some(&id), b).await?;
    Ok(Created(json!(offer)))
}

async fn delete_service_offers(State(api): State<Api>, Path(id): Path<String>) -> NoContent {
    api.core.delete_offers(Some(&id));
    NoContent
}

async fn get_offers(State(api): State<Api>) -> Json<Value> {
    Json(json!(api.core.offers(None)))
}

async fn post_offer(State(api): State<Api>, JsonBody(b): JsonBody<OfferRequest>) -> R<Created<Value>> {
    let offer = api.core.make_offer(None, b).await?;
    Ok(Created(json!(offer)))
}

async fn delete_offers(State(api): State<Api>) -> NoContent {
    api.core.delete_offers(None);
    NoContent
}

async fn get_offer(State(api): State<Api>, Path(offer): Path<String>) -> R<Json<Value>> {
    Ok(Json(json!(api.core.offer(&offer)?)))
}

async fn delete_offer(State(api): State<Api>, Path(offer): Path<String>) -> R<NoContent> {
    api.core.delete_offer(&offer)?;
    Ok(NoContent)
}

async fn delete_service_slots(State(api): State<Api>, Path(id): Path<String>) -> R<Json<ZoneServiceView>> {
    Ok(Json(api.core.set_desired(&id, &ZoneSlotsChange::default())?))
}

async fn get_service_instances(State(api): State<Api>, Path(id): Path<String>) -> R<Json<Vec<InstanceView>>> {
    Ok(Json(api.core.instances(Some(&id))?))
}

#[derive(Deserialize, schemars::JsonSchema)]
struct NewInstance {
    component: String,
}

async fn post_service_instance(
    State(api): State<Api>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<NewInstance>,
) -> R<Created<Value>> {
    Ok(Created(json!(api.core.add_instance(&id, &b.component)?)))
}

async fn list_instances(State(api): State<Api>) -> R<Json<Vec<InstanceView>>> {
    Ok(Json(api.core.instances(None)?))
}

async fn get_instance(State(api): State<Api>, Path(id): Path<String>) -> R<Json<InstanceView>> {
    Ok(Json(api.core.instance(&id)?))
}

async fn delete_instance(State(api): State<Api>, Path(id): Path<String>) -> R<Accepted<Value>> {
    Ok(Accepted(json!(api.core.terminate_instance(&id)?)))
}

async fn get_instance_state(State(api): State<Api>, Path(id): Path<String>) -> R<Json<Value>> {
    let v = api.core.instance(&id)?;
    Ok(Json(json!({"state": v.state, "pid": v.pid, "restarts": v.restarts, "adopted": v.adopted})))
}

/// Zone `PUT /1.0/instances/{id}/state`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct InstanceStateChange {
    #[schemars(extend("enum" = ["provision", "deploy", "deployed", "terminate", "terminated"]))]
    state: String,
}

async fn put_instance_state(
    State(api): State<Api>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<InstanceStateChange>,
) -> R<Json<Value>> {
    match b.state.as_str() {
        "terminate" | "terminated" => Ok(Json(json!(api.core.terminate_instance(&id)?))),
        "provision" | "deploy" | "deployed" => Ok(Json(json!(api.core.instance(&id)?))),
        other => Err(ApiError::bad_request(format!(
            "unknown state {other:?} for instance {id}; expected provision, deploy or terminate"
        ))),
    }
}

async fn get_instance_slots(
    State(api): State<Api>,
    who: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> R<Json<Value>> {
    api.core.check_instance_caller(&caller(who)?, &id)?;
    Ok(Json(json!(api.core.instance(&id)?.slots)))
}

async fn put_instance_slots(
    State(api): State<Api>,
    who: Option<Extension<Principal>>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<InstanceSlots>,
) -> R<Json<InstanceSlots>> {
    api.core.check_instance_caller(&caller(who)?, &id)?;
    Ok(Json(api.core.report_slots(&id, b)?))
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Lines {
    lines: Option<usize>,
    /// Only if the instance is (or was) of this service (the domain asks so for a provider).
    service: Option<String>,
}

async fn get_logs(State(api): State<Api>, Path(id): Path<String>, Query(q): Query<Lines>) -> R<Text> {
    let text = api.core.log_tail_of(&id, q.lines.unwrap_or(200), q.service.as_deref())?;
    Ok(Text(text))
}

async fn get_ports(State(api): State<Api>, Path(id): Path<String>) -> R<Json<Value>> {
    Ok(Json(json!(api.core.ports(&id)?)))
}

async fn get_configs(State(api): State<Api>, Path(id): Path<String>) -> R<Json<Value>> {
    Ok(Json(api.core.configs(&id).await?))
}

async fn post_config(
    State(api): State<Api>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<zonal_proto::wire::AddConfig>,
) -> R<Created<Value>> {
    if let Some(why) = zonal_model::names::name_problem(&b.name) {
        return Err(ApiError::bad_request(format!("POST /1.0/instances/{id}/configs: name: {why}")));
    }
    Ok(Created(api.core.add_config(&id, json!(b)).await?))
}

async fn delete_configs(State(api): State<Api>, Path(id): Path<String>) -> R<NoContent> {
    let configs = api.core.configs(&id).await?;
    if let Some(map) = configs.as_object() {
        for name in map.keys() {
            api.core.remove_config(&id, name).await?;
        }
    }
    Ok(NoContent)
}

async fn delete_config(State(api): State<Api>, Path((id, config)): Path<(String, String)>) -> R<NoContent> {
    api.core.remove_config(&id, &config).await?;
    Ok(NoContent)
}

/// `POST /1.0/meters`: one Ceilometer sample or a list of them (the documented schema).
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum MeterBody {
    One(Meter),
    Many(Vec<Meter>),
}

async fn post_meter(
    State(api): State<Api>,
    who: Option<Extension<Principal>>,
    // FUSION's Ceilometer samples carry many standard fields Zonal does not read (timestamp,
    // project_id, …): the one request body whose unknown fields are ignored.
    server::JsonAnyAs(b, _): server::JsonAnyAs<MeterBody>,
) -> R<Json<Value>> {
    let who = caller(who)?;
    let meters: Vec<Meter> = if b.is_array() {
        serde_json::from_value(b)
    } else {
        serde_json::from_value(b).map(|m| vec![m])
    }
    .map_err(|e| {
        ApiError::bad_request(format!(
            "POST /1.0/meters: {e}; expected a Ceilometer sample {{counter_name, counter_volume, resource_metadata: {{instanceId, serviceId}}}} or a list of them"
        ))
    })?;
    let mut out = Vec::new();
    for m in &meters {
        out.push(api.core.meter(&who, m)?);
    }
    Ok(Json(json!(out)))
}

async fn get_domain(State(api): State<Api>) -> R<Json<Value>> {
    api.core.domain().map(|d| Json(json!(d))).ok_or_else(|| ApiError::not_found("this zone is not bound to a domain"))
}

async fn put_domain(State(api): State<Api>, JsonBody(b): JsonBody<DomainBinding>) -> R<Json<DomainBinding>> {
    Ok(Json(api.core.bind_domain(b)?))
}

async fn delete_domain(State(api): State<Api>) -> R<NoContent> {
    api.core.unbind_domain()?;
    Ok(NoContent)
}

async fn get_dca(State(api): State<Api>) -> Json<DcaView> {
    Json(api.core.dca())
}

#[derive(Deserialize, schemars::JsonSchema)]
struct DcaKind {
    /// The one DC adaptor this zone manager has.
    #[schemars(extend("enum" = ["process"]))]
    kind: String,
}

async fn put_dca(State(api): State<Api>, JsonBody(b): JsonBody<DcaKind>) -> R<Json<Value>> {
    Ok(Json(json!(api.core.set_dca(&b.kind)?)))
}

async fn delete_dca(State(api): State<Api>) -> R<NoContent> {
    api.core.detach_dca()?;
    Ok(NoContent)
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Prefix {
    prefix: Option<String>,
}

async fn context_list(
    State(api): State<Api>,
    who: Option<Extension<Principal>>,
    Path(ns): Path<String>,
    Query(q): Query<Prefix>,
) -> R<Json<BTreeMap<String, Value>>> {
    api.core.check_namespace(&caller(who)?, &ns)?;
    Ok(Json(api.core.context_list(&ns, q.prefix.as_deref().unwrap_or(""))?))
}

async fn context_get(
    State(api): State<Api>,
    who: Option<Extension<Principal>>,
    Path((ns, key)): Path<(String, String)>,
) -> R<Json<Value>> {
    api.core.check_namespace(&caller(who)?, &ns)?;
    Ok(Json(api.core.context_get(&ns, &key)?))
}

async fn context_put(
    State(api): State<Api>,
    who: Option<Extension<Principal>>,
    Path((ns, key)): Path<(String, String)>,
    server::JsonAny(v): server::JsonAny,
) -> R<Json<Value>> {
    api.core.check_namespace(&caller(who)?, &ns)?;
    api.core.context_put(&ns, &key, &v)?;
    Ok(Json(v))
}

async fn context_delete(
    State(api): State<Api>,
    who: Option<Extension<Principal>>,
    Path((ns, key)): Path<(String, String)>,
) -> R<NoContent> {
    api.core.check_namespace(&caller(who)?, &ns)?;
    api.core.context_delete(&ns, &key)?;
    Ok(NoContent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    use zonal_store::MemStore;

    use crate::core::ZoneSettings;
    use crate::process::ProcessAdaptor;

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
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = ZoneSettings {
            name: "z".into(),
            tier: None,
            hosts: Vec::new(),
            price: Default::default(),
            state_dir: dir.path().to_path_buf(),
            stop_grace: std::time::Duration::from_secs(1),
            slots: Default::default(),
            isolation: Default::default(),
        };
        let adaptor = Arc::new(ProcessAdaptor::new("z-test", std::path::PathBuf::from("/bin/false")));
        let core = ZoneCore::open(settings, Arc::new(MemStore::new()), adaptor).expect("open");
        let key = core.api_key().to_string();
        let app = router(core, Arc::new(HttpMetrics::default()));
        let doc = openapi_document();
        for s in routes().specs() {
            assert!(
                doc["paths"][server::openapi_path(s.path).as_str()][s.method.as_str().to_ascii_lowercase()].is_object(),
                "{} {}",
                s.method,
                s.path
            );
            let uri: String = s
                .path
                .replace("{*key}", "k")
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let body = if matches!(s.method, Method::POST | Method::PUT) { Body::from("{}") } else { Body::empty() };
            let req = Request::builder()
                .method(s.method.clone())
                .uri(uri)
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(body)
                .expect("request");
            let resp = app.clone().oneshot(req).await.expect("response");
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
            let text = String::from_utf8_lossy(&bytes);
            assert_ne!(status, 405, "{} {}: {text}", s.method, s.path);
            assert!(!text.contains("no resource at"), "{} {} is not routed: {text}", s.method, s.path);
        }
    }
}
