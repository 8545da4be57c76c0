//! Cross-cutting server concerns as axum layers, shared by both daemons.
//!
//! * [`Routes`] — a route table: each route is added with its method, path, one-line summary
//!   and who may call it. The same table builds the axum router, the OpenAPI 3 document
//!   (`/openapi.json` is generated from it, so it cannot drift from the routes) and the role
//!   rules the [`auth`] layer enforces.
//! * [`auth`] — bearer-token authentication and role checks, before any handler runs: a
//!   missing, unknown, expired or revoked token is 401 (saying which), a role the route does
//!   not admit is 403. Ownership (a provider's own services) is checked by the logic, which
//!   knows what is owned.
//! * [`audit`] — every request other than GET/HEAD recorded in the daemon's audit log
//!   ([`crate::audit`]) before its answer leaves.
//! * [`TlsIdentity`], [`serve`] — HTTPS (rustls, TLS 1.2/1.3) or plain HTTP on one listener;
//!   plain HTTP sent to an HTTPS port is answered `400 tls_required` and closed.
//! * [`observe`] — request ids (`x-request-id`, kept when the client sends one), latency and
//!   status metrics per route ([`HttpMetrics`], Prometheus text), and error mapping: any
//!   error response that is not already JSON (axum's 404/405/415, extractor rejections)
//!   becomes `{error, detail}`.
//! * [`JsonBody`] — a JSON extractor whose rejections are `{error, detail}` 400s.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::openapi::{DocHandler, Operation};
use crate::roles::{Principal, Role};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (the OpenAPI document, metrics, health).
    Public,
    /// Callers holding one of these roles.
    Roles(&'static [Role]),
}

/// One route of the table.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// What the handler reads and answers, from its types.
    pub op: Operation,
}

/// Role rules by `(method, route pattern)`.
#[derive(Debug, Default)]
pub struct RouteIndex {
    rules: HashMap<(Method, &'static str), Access>,
}

impl RouteIndex {
    /// Who may call `method path` (HEAD: as GET, which axum answers HEAD for).
    pub fn access(&self, method: &Method, path: &str) -> Option<Access> {
        let method = if method == Method::HEAD { &Method::GET } else { method };
        self.rules.iter().find(|((m, p), _)| m == method && *p == path).map(|(_, a)| *a)
    }

    /// The methods route pattern `path` serves (with HEAD where GET is served), for `Allow`.
    pub fn allowed(&self, path: &str) -> Vec<Method> {
        let mut out: Vec<Method> = self.rules.keys().filter(|(_, p)| *p == path).map(|(m, _)| m.clone()).collect();
        if out.contains(&Method::GET) {
            out.push(Method::HEAD);
        }
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        out
    }
}

/// The answer to a method a path does not serve: `405` with `Allow` and `{error, detail}`.
pub fn method_not_allowed(method: &Method, path: &str, allowed: &[Method]) -> Response {
    let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    let mut resp = ApiError::new(
        405,
        "method_not_allowed",
        format!("{path} does not support {method}; it supports {} (see GET /openapi.json)", list.join(", ")),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&list.join(", ")) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

/// A route table that builds a router, an OpenAPI document and the role rules together.
/// A handler is accepted only when its extractors and its answer document themselves
/// ([`DocHandler`]): the document is generated from the same types the handler decodes and
/// encodes.
pub struct Routes<S> {
    router: Router<S>,
    specs: Vec<RouteSpec>,
    schemas: schemars::SchemaGenerator,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Routes { router: Router::new(), specs: Vec::new(), schemas: crate::openapi::generator() }
    }

    fn spec<H: DocHandler<T>, T>(&mut self, method: Method, path: &'static str, summary: &'static str, access: Access) {
        let mut op = Operation::default();
        H::document(&mut op, &mut self.schemas);
        self.specs.push(RouteSpec { method, path, summary, access, op });
    }

    /// Adds `handler` for `method path`.
    pub fn add<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        summary: &'static str,
        access: Access,
        handler: H,
    ) -> Self
    where
        H: Handler<T, S> + DocHandler<T>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
        self.router = self.router.route(path, on(filter, handler));
        self.spec::<H, T>(method, path, summary, access);
        self
    }

    /// Adds `handler` for `method path` with the larger body limit of whole documents
    /// ([`MAX_DOCUMENT_BODY_BYTES`]: an infrastructure with its measured latencies, a
    /// geography); for admin routes only.
    pub fn add_document<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        summary: &'static str,
        access: Access,
        handler: H,
    ) -> Self
    where
        H: Handler<T, S> + DocHandler<T>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
        let route = on(filter, handler).layer(axum::extract::DefaultBodyLimit::max(MAX_DOCUMENT_BODY_BYTES));
        self.router = self.router.route(path, route);
        self.spec::<H, T>(method, path, summary, access);
        self
    }

    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    /// The OpenAPI 3 document of every route added.
    pub fn openapi(&self, title: &str, description: &str) -> Value {
        openapi(&self.specs, self.schemas.clone().take_definitions(true), title, description)
    }

    /// The router and the role rules.
    pub fn into_parts(self) -> (Router<S>, Arc<RouteIndex>, Vec<RouteSpec>) {
        let mut index = RouteIndex::default();
        for s in &self.specs {
            index.rules.insert((s.method.clone(), s.path), s.access);
        }
        (self.router, Arc::new(index), self.specs)
    }
}

/// A route pattern as the OpenAPI document writes it: axum's `{*key}` (the rest of the path)
/// is the parameter `{key}`.
pub fn openapi_path(pattern: &str) -> String {
    pattern.replace("{*", "{")
}

fn openapi(specs: &[RouteSpec], definitions: serde_json::Map<String, Value>, title: &str, description: &str) -> Value {
    let mut paths: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for s in specs {
        let mut params: Vec<Value> = s
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|x| x.strip_suffix('}')))
            .map(|name| {
                match name.strip_prefix('*') {
                    // The rest of the path (a namespace key): 1 to 1024 bytes without control
                    // characters, '/' allowed.
                    Some(name) => json!({"name": name, "in": "path", "required": true,
                        "description": "the rest of the path: 1 to 1024 bytes without control characters ('/' allowed)",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]+$"}}),
                    None => json!({"name": name, "in": "path", "required": true, "description": "one path segment",
                        "schema": {"type": "string", "minLength": 1}}),
                }
            })
            .collect();
        let has_path_params = !params.is_empty();
        params.extend(s.op.query.iter().cloned());
        let (security, roles) = match s.access {
            Access::Public => (json!([]), json!([])),
            Access::Roles(rs) => (json!([{"bearer": []}]), json!(rs.iter().map(|r| r.as_str()).collect::<Vec<_>>())),
        };
        // The error statuses this route can answer: from the layers (auth, body reading) and
        // the handler (its `Result`).
        let mut errors: Vec<u16> = Vec::new();
        if s.op.request.is_some() || !s.op.query.is_empty() || s.op.fallible {
            errors.push(400);
        }
        if matches!(s.access, Access::Roles(_)) {
            errors.extend([401, 403]);
        }
        if has_path_params || s.op.fallible {
            errors.push(404);
        }
        if s.op.request.is_some() {
            errors.extend([413, 415]);
        }
        if s.op.fallible {
            errors.extend([409, 422, 500, 503]);
        }
        let mut op = json!({
            "summary": s.summary,
            "operationId": format!("{}{}", s.method.as_str().to_ascii_lowercase(), s.path.replace(['/', '{', '}', '*'], "_")),
            "parameters": params,
            "security": security,
            "x-roles": roles,
            "responses": crate::openapi::responses(&s.op, &errors),
        });
        if let Some((ct, schema)) = &s.op.request {
            op["requestBody"] = json!({"required": true, "content": {*ct: {"schema": schema}}});
        }
        paths.entry(openapi_path(s.path)).or_default().insert(s.method.as_str().to_ascii_lowercase(), op);
    }
    let mut schemas = definitions;
    schemas.insert("Error".into(), crate::openapi::error_component());
    json!({
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1.0", "description": description},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        }
    })
}

/// Turns a bearer token into a principal.
pub trait Authenticate: Send + Sync + 'static {
    fn authenticate(&self, token: &str) -> Option<Principal>;

    /// Who holds `token` and the token's id, or why the token is refused. The default knows
    /// only known and unknown tokens; the domain says when a token expired or was revoked.
    fn check(&self, token: &str) -> Result<Authenticated, Refusal> {
        self.authenticate(token).map(|principal| Authenticated { principal, token_id: None }).ok_or(Refusal::Unknown)
    }
}

/// An accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub principal: Principal,
    /// The token's non-secret id, when it has one (domain tokens).
    pub token_id: Option<String>,
}

/// Why a token is refused (401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such token.
    Unknown,
    /// The token's lifetime ended at `at_ms`.
    Expired { token_id: String, user: String, role: Role, at_ms: u64 },
    /// The token was revoked at `at_ms`.
    Revoked { token_id: String, user: String, role: Role, at_ms: u64 },
}

impl Refusal {
    /// The sentence a 401 gives.
    pub fn reason(&self) -> String {
        match self {
            Refusal::Unknown => "the bearer token is not known".into(),
            Refusal::Expired { token_id, user, at_ms, .. } => {
                format!("the bearer token {token_id} of user {user} expired at {}", crate::rfc3339(*at_ms))
            }
            Refusal::Revoked { token_id, user, at_ms, .. } => {
                format!("the bearer token {token_id} of user {user} was revoked at {}", crate::rfc3339(*at_ms))
            }
        }
    }
}

/// State of the [`auth`] layer.
#[derive(Clone)]
pub struct AuthState {
    pub authenticator: Arc<dyn Authenticate>,
    pub index: Arc<RouteIndex>,
}

/// The credentials of an `Authorization` header (RFC 9110 §11.6.2:
/// `auth-scheme [ 1*SP token68 ]`, the scheme case-insensitive). `Ok(None)`: no header;
/// `Err`: a header that is not a bearer token, and why.
fn bearer(req: &Request) -> Result<Option<&str>, &'static str> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| "the Authorization header is not visible ASCII")?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("the Authorization header does not use the Bearer scheme");
    }
    let token = rest.trim_start_matches(' ').trim_end();
    // token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    let token68 = !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'));
    if !token68 {
        return Err("the Authorization header's Bearer credentials are empty or not a token68");
    }
    Ok(Some(token))
}

/// Who made a request, as far as the [`auth`] layer could tell; the [`audit`] layer
/// records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub user: Option<String>,
    pub role: Option<Role>,
    pub token_id: Option<String>,
}

/// A slot the [`audit`] layer puts into the request for the [`auth`] layer to fill.
#[derive(Clone, Default)]
struct CallerSlot(Arc<Mutex<Option<Caller>>>);

fn unauthorized(detail: String, token_sent: bool) -> Response {
    let mut resp = ApiError::unauthorized(detail).into_response();
    let challenge =
        if token_sent { "Bearer realm=\"zonal\", error=\"invalid_token\"" } else { "Bearer realm=\"zonal\"" };
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    resp
}

/// Authentication and role checks. Inserts the [`Principal`] into the request extensions.
/// Tokens are checked against the authenticator on every request (no cache), so a revoked
/// or expired token is refused from the next request on.
pub async fn auth(State(st): State<AuthState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let presented = bearer(&req);
    let checked = match presented {
        Ok(Some(t)) => Some(st.authenticator.check(t)),
        _ => None,
    };
    let caller = match &checked {
        Some(Ok(a)) => {
            Caller { user: Some(a.principal.name.clone()), role: Some(a.principal.role), token_id: a.token_id.clone() }
        }
        Some(Err(Refusal::Expired { token_id, user, role, .. } | Refusal::Revoked { token_id, user, role, .. })) => {
            Caller { user: Some(user.clone()), role: Some(*role), token_id: Some(token_id.clone()) }
        }
        _ => Caller::default(),
    };
    if let Some(slot) = req.extensions().get::<CallerSlot>() {
        *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(caller);
    }
    let principal = match &checked {
        Some(Ok(a)) => Some(a.principal.clone()),
        _ => None,
    };
    let Some(path) = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()) else {
        return next.run(req).await; // unmatched: the fallback answers 404
    };
    // A method the path does not serve: 405 naming those it does, before any token check
    // (TRACE, OPTIONS, PATCH, … on any route, the public ones included).
    let Some(access) = st.index.access(&method, &path) else {
        return method_not_allowed(&method, &path, &st.index.allowed(&path));
    };
    match access {
        Access::Public => {}
        Access::Roles(roles) => {
            let Some(p) = &principal else {
                let why = match (&presented, &checked) {
                    (Err(why), _) => why.to_string(),
                    (_, Some(Err(refusal))) => refusal.reason(),
                    _ => "no bearer token was sent".to_string(),
                };
                let hint = match &checked {
                    Some(Err(Refusal::Expired { .. } | Refusal::Revoked { .. })) => {
                        "an admin makes a new one with `zonal token create`"
                    }
                    _ => "create one with `zonal token create`",
                };
                return unauthorized(
                    format!("{method} {path} needs an `Authorization: Bearer <token>` header; {why} ({hint})"),
                    !matches!(presented, Ok(None)),
                );
            };
            if !roles.contains(&p.role) {
                let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                return ApiError::forbidden(format!(
                    "{} {:?} may not {method} {path}; this needs the role {}",
                    p.role,
                    p.name,
                    allowed.join(" or ")
                ))
                .into_response();
            }
        }
    }
    if let Some(p) = principal {
        req.extensions_mut().insert(p);
    }
    next.run(req).await
}

/// State of the [`audit`] layer.
#[derive(Clone)]
pub struct AuditState {
    pub log: Arc<crate::audit::Audit>,
    /// Routes whose accepted requests are telemetry (heartbeats, slot reports, meters): kept
    /// in the telemetry log (see [`crate::audit`]).
    pub telemetry: &'static [(Method, &'static str)],
}

/// Largest response body the [`audit`] layer reads to find the id of what was created.
const AUDIT_BODY_LIMIT: u64 = 64 * 1024;

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// The values of a route pattern's parameters in `path`, joined by `/` (`{*key}` takes the
/// rest of the path).
fn route_params(pattern: &str, path: &str) -> Option<String> {
    let mut values = Vec::new();
    let mut actual = path.trim_start_matches('/').split('/');
    for seg in pattern.trim_start_matches('/').split('/') {
        if seg.starts_with("{*") {
            let rest: Vec<&str> = actual.by_ref().collect();
            values.push(rest.join("/"));
            break;
        }
        let a = actual.next()?;
        if seg.starts_with('{') {
            values.push(a.to_string());
        }
    }
    (!values.is_empty()).then(|| values.join("/"))
}

/// Records every request other than GET and HEAD in the audit log (see [`crate::audit`]),
/// after the handler answered and **before** the answer is returned: an acknowledged write
/// has its entry on disk. Install it outside [`auth`] and [`observe`] (it reads the
/// principal [`auth`] found, the request id and the final `{error, detail}`).
pub async fn audit(State(st): State<AuditState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if method == Method::GET || method == Method::HEAD {
        return next.run(req).await;
    }
    let path = cut(req.uri().path(), 1024);
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let slot = CallerSlot::default();
    req.extensions_mut().insert(slot.clone());
    // The id a create names in its body (`serviceid`, `name`): read only from a small JSON
    // body of known length, which is handed on unchanged; nothing else of it is kept.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= AUDIT_BODY_LIMIT);
    let mut requested = None;
    if declared {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, AUDIT_BODY_LIMIT as usize).await {
            Ok(bytes) => {
                requested = serde_json::from_slice::<Value>(&bytes).ok().and_then(|j| {
                    ["serviceid", "name"].iter().find_map(|k| j.get(*k).and_then(Value::as_str)).map(|s| cut(s, 256))
                });
                req = Request::from_parts(parts, Body::from(bytes));
            }
            Err(e) => {
                // The body could not be read (the client went away): the handler gets the same.
                let text = format!("the request body could not be read: {e}");
                req = Request::from_parts(parts, Body::from(text));
            }
        }
    }
    let resp = next.run(req).await;
    let ts_ms = crate::now_ms();
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let small = axum::body::HttpBody::size_hint(&body).exact().is_some_and(|n| n <= AUDIT_BODY_LIMIT);
    let (body, json) = if small {
        match axum::body::to_bytes(body, AUDIT_BODY_LIMIT as usize).await {
            Ok(bytes) => {
                let json = serde_json::from_slice::<Value>(&bytes).ok();
                (Body::from(bytes), json)
            }
            Err(e) => (Body::from(format!("the response could not be read: {e}")), None),
        }
    } else {
        (body, None)
    };
    let resource = route
        .as_deref()
        .and_then(|r| route_params(r, &path))
        .or_else(|| {
            let j = json.as_ref()?;
            ["serviceid", "id", "name"].iter().find_map(|k| j.get(*k).and_then(Value::as_str)).map(|s| cut(s, 256))
        })
        .or(requested);
    let outcome = if status < 400 {
        "ok".to_string()
    } else {
        match json.as_ref().map(|j| (j.get("error").and_then(Value::as_str), j.get("detail").and_then(Value::as_str))) {
            Some((Some(e), Some(d))) => format!("{e}: {}", cut(d, 300)),
            Some((Some(e), None)) => e.to_string(),
            _ => format!("http {status}"),
        }
    };
    let caller = slot.0.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
    let telemetry =
        status < 400 && route.as_deref().is_some_and(|r| st.telemetry.iter().any(|(m, p)| *m == method && *p == r));
    let entry = crate::audit::AuditEntry {
        ts_ms,
        time: crate::rfc3339(ts_ms),
        user: caller.user,
        role: caller.role.map(|r| r.as_str().to_string()),
        token_id: caller.token_id,
        method: method.to_string(),
        path,
        route,
        resource,
        status,
        outcome,
        request_id: parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(|s| cut(s, 128)),
        telemetry,
        zone: None,
    };
    let log = st.log.clone();
    let written = tokio::task::spawn_blocking(move || log.record(&entry)).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("audit: {e}"),
        Err(e) => tracing::error!("audit: the writer failed: {e}"),
    }
    Response::from_parts(parts, body)
}

/// Per-route request counts and latency histograms.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    routes: Mutex<BTreeMap<(String, String), RouteStats>>,
}

/// Histogram bucket bounds, seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Debug, Default, Clone)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl HttpMetrics {
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let st = routes.entry((method.to_string(), route.to_string())).or_default();
        *st.by_status.entry(status).or_default() += 1;
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                st.buckets[i] += 1;
            }
        }
        st.count += 1;
        st.sum += seconds;
    }

    /// Prometheus text exposition of the HTTP metrics, with metric names under `prefix`.
    pub fn render(&self, prefix: &str, out: &mut String) {
        use std::fmt::Write as _;
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let _ = writeln!(out, "# HELP {prefix}_http_requests_total HTTP requests by method, route and status.");
        let _ = writeln!(out, "# TYPE {prefix}_http_requests_total counter");
        for ((m, r), st) in &routes {
            for (status, n) in &st.by_status {
                let _ = writeln!(
                    out,
                    "{prefix}_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# HELP {prefix}_http_request_duration_seconds HTTP request latency.");
        let _ = writeln!(out, "# TYPE {prefix}_http_request_duration_seconds histogram");
        for ((m, r), st) in &routes {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{prefix}_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"{b}\"}} {}",
                    st.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "{prefix}_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"+Inf\"}} {}",
                st.count
            );
            let _ =
                writeln!(out, "{prefix}_http_request_duration_seconds_sum{{method=\"{m}\",route=\"{r}\"}} {}", st.sum);
            let _ = writeln!(
                out,
                "{prefix}_http_request_duration_seconds_count{{method=\"{m}\",route=\"{r}\"}} {}",
                st.count
            );
        }
    }
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Request ids, metrics and error mapping (see the module docs).
pub async fn observe(State(metrics): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let uri_path = req.uri().path().to_string();
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let request_id =
        req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string).unwrap_or_else(|| {
            format!("{:x}-{:x}", std::process::id(), REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed))
        });
    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status >= 400 && !is_json {
        let body = std::mem::replace(resp.body_mut(), Body::empty());
        let text = axum::body::to_bytes(body, 64 * 1024)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let err = match status {
            404 => {
                ApiError::not_found(format!("no resource at {method} {uri_path}; see GET /openapi.json for the routes"))
            }
            405 => ApiError::new(
                405,
                "method_not_allowed",
                format!("{uri_path} does not support {method}; see GET /openapi.json"),
            ),
            _ => ApiError::new(
                status,
                if status < 500 { "bad_request" } else { "internal" },
                format!("{method} {uri_path}: {}", if text.is_empty() { "request refused" } else { text.trim() }),
            ),
        };
        // The router's `Allow` (of a 405) stays.
        let allow = resp.headers().get(header::ALLOW).cloned();
        resp = err.into_response();
        if let Some(a) = allow {
            resp.headers_mut().insert(header::ALLOW, a);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let secs = start.elapsed().as_secs_f64();
    metrics.record(method.as_str(), &route, status, secs);
    tracing::debug!(request_id, %method, path = uri_path, status, ms = secs * 1000.0, "request");
    resp
}

/// The largest request body a daemon reads: 1 MiB (a service manifest is a few KiB; the
/// example manifests are under 4 KiB). A larger body is answered `413 payload_too_large`,
/// naming the limit, before it is read to the end.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The largest body of the admin routes that take a whole document (`PUT /1.0/infrastructure`,
/// `PUT /1.0/geography`, `PUT /1.0/knowledge-base`, added with [`Routes::add_document`]):
/// 16 MiB. WonderNetwork's 246 servers with 30,107 measured latencies are 1.6 MB as native
/// YAML, more as JSON.
pub const MAX_DOCUMENT_BODY_BYTES: usize = 16 << 20;

/// The layer that applies [`MAX_BODY_BYTES`] to every body extractor of a router.
pub fn body_limit() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES)
}

/// JSON request bodies, read strictly: `Content-Type: application/json` (else 415), at most
/// [`MAX_BODY_BYTES`] (else 413), a JSON object at the top (not an array: `[null, null]` is not
/// a body with every field left out), every field known (an unknown field is an error naming
/// its path, where a lenient reader would silently ignore it), and every value of the right
/// type and within its bounds (else 400 naming the field's path and what was expected).
/// Responses are read leniently elsewhere: only requests are strict, so a newer peer may add
/// fields to what it answers.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (what, bytes) = json_bytes(req, state).await?;
        decode_json(&what, &bytes).map(JsonBody)
    }
}

/// Any JSON value as a request body (a namespace entry, a list of meter samples): the same
/// Content-Type and size rules as [`JsonBody`], any JSON type at the top, nesting bounded by
/// the JSON reader (128 levels).
pub struct JsonAny(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonAny {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (what, bytes) = json_bytes(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(JsonAny)
            .map_err(|e| ApiError::bad_request(format!("{what}: the body is not valid JSON: {e}")))
    }
}

/// [`JsonAny`] whose documented schema is `T`'s (a body read leniently by the handler, e.g.
/// Ceilometer samples whose fields Zonal does not read).
pub struct JsonAnyAs<T>(pub Value, pub std::marker::PhantomData<T>);

impl<S: Send + Sync, T> FromRequest<S> for JsonAnyAs<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonAny(v) = JsonAny::from_request(req, state).await?;
        Ok(JsonAnyAs(v, std::marker::PhantomData))
    }
}

/// The request's name (`METHOD path`) and its body, after the Content-Type and size checks.
async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<(String, axum::body::Bytes), ApiError> {
    {
        let what = format!("{} {}", req.method(), req.uri().path());
        let content_type =
            req.headers().get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let is_json = content_type.as_deref().is_some_and(|ct| {
            let mime = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
        if !is_json {
            return Err(ApiError::new(
                415,
                "unsupported_media_type",
                format!(
                    "{what}: expected the header `Content-Type: application/json`, found {}",
                    content_type.map_or_else(|| "none".to_string(), |c| format!("{c:?}"))
                ),
            ));
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rej) if rej.status().as_u16() == 413 => {
                return Err(ApiError::new(
                    413,
                    "payload_too_large",
                    format!("{what}: the request body is larger than this resource's limit ({MAX_BODY_BYTES} bytes, MAX_BODY_BYTES; {MAX_DOCUMENT_BODY_BYTES} bytes for the infrastructure, geography and knowledge-base documents)"),
                ))
            }
            Err(rej) => {
                return Err(ApiError::bad_request(format!("{what}: the request body could not be read: {}", rej.body_text())))
            }
        };
        Ok((what, bytes))
    }
}

/// Reads a request body as [`JsonBody`] does (see there), `what` naming the request in errors.
pub fn decode_json<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        let found = match first {
            None => "an empty body".to_string(),
            Some(b'[') => "a JSON array".to_string(),
            Some(_) => format!("{:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(40)])),
        };
        return Err(ApiError::bad_request(format!(
            "{what}: expected a JSON object `{{…}}` as the request body, found {found} (the fields are in GET /openapi.json)"
        )));
    }
    let mut unknown: Vec<String> = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = {
        let mut note = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let ignored = serde_ignored::Deserializer::new(&mut de, &mut note);
        serde_path_to_error::deserialize(ignored)
    };
    let value = match parsed {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = if path == "." || path.is_empty() { String::new() } else { format!("field `{path}`: ") };
            let problem = if inner.is_syntax() || inner.is_eof() {
                format!("the body is not valid JSON: {inner}")
            } else {
                format!("{at}{inner}")
            };
            return Err(ApiError::bad_request(format!("{what}: {problem} (the fields are in GET /openapi.json)")));
        }
    };
    if let Err(e) = de.end() {
        return Err(ApiError::bad_request(format!("{what}: unexpected text after the JSON object: {e}")));
    }
    if let Some(first) = unknown.first() {
        let more = if unknown.len() > 1 {
            format!(" (and {} more: {})", unknown.len() - 1, unknown[1..].join(", "))
        } else {
            String::new()
        };
        return Err(ApiError::bad_request(format!(
            "{what}: unknown field `{first}`{more}; expected only the fields this resource reads (GET /openapi.json); nothing was changed"
        )));
    }
    Ok(value)
}

/// The principal the [`auth`] layer attached (admin-equivalent when the route is public and
/// no token was sent is *not* assumed: handlers of protected routes always have one).
pub fn principal(ext: Option<axum::Extension<Principal>>) -> Result<Principal, ApiError> {
    ext.map(|axum::Extension(p)| p).ok_or_else(|| ApiError::unauthorized("this resource needs a bearer token"))
}

/// The 404 answer for paths no route matches.
pub async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no resource at {method} {}; see GET /openapi.json for the routes", uri.path()))
}

/// A daemon's certificate and private key for HTTPS.
#[derive(Clone)]
pub struct TlsIdentity {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsIdentity")
    }
}

impl TlsIdentity {
    /// Reads a PEM certificate chain (the daemon's certificate first) and a PEM private key
    /// (PKCS#8, SEC1 or PKCS#1). Each problem is named with the file.
    pub fn from_pem_files(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, String> {
        let cert_pem = std::fs::read(cert).map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
        let key_pem = std::fs::read(key).map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
        Self::from_pem(&cert_pem, &key_pem).map_err(|e| format!("{} / {}: {e}", cert.display(), key.display()))
    }

    /// The same from PEM text.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, String> {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the certificate is not PEM: {e:?}"))?;
        if certs.is_empty() {
            return Err("no certificate found; expected a PEM `CERTIFICATE` block".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| format!("no private key found ({e:?}); expected a PEM `PRIVATE KEY` block"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("the certificate and key do not make a TLS identity: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsIdentity { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) })
    }
}

/// How long a new connection may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

/// The answer to a plain-HTTP request on an HTTPS port.
fn tls_required_response(addr: std::net::SocketAddr) -> Vec<u8> {
    let body = json!({
        "error": "tls_required",
        "detail": format!("this port serves HTTPS only; use https://{addr} (and trust the CA that signed its certificate)"),
    })
    .to_string();
    format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A listener that completes TLS handshakes concurrently (a slow or silent client holds up
/// nobody) and hands axum only finished TLS streams. A connection whose first byte is not a
/// TLS handshake record gets `400 tls_required` in plain HTTP and is closed.
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, std::net::SocketAddr)>,
    local: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: tokio::net::TcpListener, identity: TlsIdentity) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let task = tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                let (stream, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: wait a little rather than spin.
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let (tx, acceptor) = (tx.clone(), identity.acceptor.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let handshake = async {
                        let mut first = [0u8; 1];
                        let n = stream.peek(&mut first).await.map_err(|e| e.to_string())?;
                        // 0x16: a TLS handshake record. Anything else (`GET `, `POST`…) is not TLS.
                        if n == 1 && first[0] != 0x16 {
                            use tokio::io::AsyncWriteExt as _;
                            let mut stream = stream;
                            let _ = stream.write_all(&tls_required_response(local)).await;
                            let _ = stream.shutdown().await;
                            return Err("plain HTTP sent to the HTTPS port: answered 400 tls_required".to_string());
                        }
                        acceptor.accept(stream).await.map_err(|e| e.to_string())
                    };
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local, task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Stops accepting (closes the port) when the server is done with the listener.
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task ended (only when the listener is being dropped): no more
            // connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves `app` on `listener` until `shutdown` resolves: HTTPS with `tls`, else plain HTTP.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<TlsIdentity>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        Some(identity) => {
            let listener = TlsListener::new(listener, identity)?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request as HttpRequest;
    use tower::ServiceExt;

    /// Tokens: `good` (admin alice, id aaaaaaaaaaaa), `old` (expired), `gone` (revoked).
    struct Fake;

    impl Authenticate for Fake {
        fn authenticate(&self, token: &str) -> Option<Principal> {
            self.check(token).ok().map(|a| a.principal)
        }
        fn check(&self, token: &str) -> Result<Authenticated, Refusal> {
            let id = |c: char| std::iter::repeat_n(c, 12).collect::<String>();
            match token {
                "good" => Ok(Authenticated {
                    principal: Principal { name: "alice".into(), role: Role::Admin },
                    token_id: Some(id('a')),
                }),
                "prov" => Ok(Authenticated {
                    principal: Principal { name: "acme".into(), role: Role::Provider },
                    token_id: Some(id('c')),
                }),
                "old" => Err(Refusal::Expired {
                    token_id: id('b'),
                    user: "bob".into(),
                    role: Role::Provider,
                    at_ms: 1_777_629_600_000,
                }),
                "gone" => Err(Refusal::Revoked { token_id: id('d'), user: "dan".into(), role: Role::Zone, at_ms: 0 }),
                _ => Err(Refusal::Unknown),
            }
        }
    }

    async fn created() -> crate::openapi::Created<Value> {
        crate::openapi::Created(json!({"serviceid": "web", "token": "s3cr3t-never-logged"}))
    }

    async fn fine() -> axum::Json<Value> {
        axum::Json(json!({"ok": true}))
    }

    fn app(audit: Option<Arc<crate::audit::Audit>>) -> Router {
        const ADMIN: Access = Access::Roles(&[Role::Admin]);
        const ANYONE: Access = Access::Roles(&[Role::Admin, Role::Provider]);
        let (router, index, _) = Routes::<()>::new()
            .add(Method::GET, "/things", "list", ANYONE, fine)
            .add(Method::POST, "/things", "create", ADMIN, created)
            .add(Method::PUT, "/things/{id}/status", "report", ANYONE, fine)
            .into_parts();
        let auth_state = AuthState { authenticator: Arc::new(Fake), index };
        let router = router
            .fallback(not_found)
            .layer(axum::middleware::from_fn_with_state(auth_state, auth))
            .layer(axum::middleware::from_fn_with_state(Arc::new(HttpMetrics::default()), observe));
        match audit {
            Some(log) => router.layer(axum::middleware::from_fn_with_state(
                AuditState { log, telemetry: &[(Method::PUT, "/things/{id}/status")] },
                super::audit,
            )),
            None => router,
        }
    }

    async fn call(app: &Router, method: &str, path: &str, authorization: Option<&str>) -> (u16, Value) {
        call_with(app, method, path, authorization, None).await
    }

    async fn call_with(
        app: &Router,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = HttpRequest::builder().method(method).uri(path);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let body = match body {
            Some(b) => {
                let text = b.to_string();
                req = req.header("content-type", "application/json").header("content-length", text.len());
                Body::from(text)
            }
            None => Body::empty(),
        };
        let resp = app.clone().oneshot(req.body(body).expect("request")).await.expect("response");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn the_bearer_scheme_is_case_insensitive_and_nothing_else_is_loosened() {
        let app = app(None);
        for ok in ["Bearer good", "bearer good", "BEARER good", "bEaReR good", "Bearer   good", "Bearer good "] {
            assert_eq!(call(&app, "GET", "/things", Some(ok)).await.0, 200, "{ok:?}");
        }
        for (bad, why) in [
            ("Basic good", "does not use the Bearer scheme"),
            ("Bearergood", "does not use the Bearer scheme"),
            ("Bearer", "empty or not a token68"),
            ("Bearer good extra", "empty or not a token68"),
            ("Bearer\tgood", "does not use the Bearer scheme"),
            ("Token good", "does not use the Bearer scheme"),
        ] {
            let (status, body) = call(&app, "GET", "/things", Some(bad)).await;
            assert_eq!(status, 401, "{bad:?}");
            assert!(body["detail"].as_str().is_some_and(|d| d.contains(why)), "{bad:?}: {body}");
        }
    }

    #[tokio::test]
    async fn a_method_a_path_does_not_serve_is_405_with_allow_before_any_token_check() {
        let app = app(None);
        for (method, path, allow) in [
            ("TRACE", "/things", "GET, HEAD, POST"),
            ("PATCH", "/things", "GET, HEAD, POST"),
            ("DELETE", "/things/t1/status", "PUT"),
            ("OPTIONS", "/things/t1/status", "PUT"),
        ] {
            for auth in [None, Some("Bearer good"), Some("Bearer nope")] {
                let req = HttpRequest::builder().method(method).uri(path);
                let req = match auth {
                    Some(a) => req.header("authorization", a),
                    None => req,
                };
                let resp = app.clone().oneshot(req.body(Body::empty()).expect("request")).await.expect("response");
                assert_eq!(resp.status(), 405, "{method} {path} {auth:?}");
                assert_eq!(resp.headers().get("allow").and_then(|v| v.to_str().ok()), Some(allow), "{method} {path}");
                let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
                let body: Value = serde_json::from_slice(&bytes).expect("a JSON error");
                assert_eq!(body["error"], "method_not_allowed");
                assert!(body["detail"].as_str().is_some_and(|d| d.contains(method) && d.contains(allow)), "{body}");
            }
        }
        // HEAD is served where GET is, with GET's rules.
        assert_eq!(call(&app, "HEAD", "/things", Some("Bearer good")).await.0, 200);
        assert_eq!(call(&app, "HEAD", "/things", None).await.0, 401);
    }

    #[tokio::test]
    async fn expired_revoked_and_unknown_tokens_get_401_naming_why() {
        let app = app(None);
        let cases = [
            ("Bearer old", "the bearer token bbbbbbbbbbbb of user bob expired at 2026-05-01T10:00:00.000Z"),
            ("Bearer gone", "the bearer token dddddddddddd of user dan was revoked at 1970-01-01T00:00:00.000Z"),
            ("Bearer nope", "the bearer token is not known"),
        ];
        for (header, why) in cases {
            let (status, body) = call(&app, "GET", "/things", Some(header)).await;
            assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")), "{header}");
            assert!(body["detail"].as_str().is_some_and(|d| d.contains(why)), "{header}: {body}");
        }
        let (status, body) = call(&app, "GET", "/things", None).await;
        assert_eq!(status, 401);
        assert!(body["detail"].as_str().is_some_and(|d| d.contains("no bearer token was sent")), "{body}");
    }

    #[tokio::test]
    async fn every_write_is_audited_with_its_principal_and_result_and_reads_are_not() {
        let dir = tempfile::tempdir().expect("dir");
        let log = crate::audit::Audit::open(dir.path()).expect("audit");
        let app = app(Some(log.clone()));
        assert_eq!(call(&app, "GET", "/things", Some("Bearer good")).await.0, 200);
        assert_eq!(call(&app, "POST", "/things", Some("Bearer good")).await.0, 201);
        let attempt = json!({"name": "n1", "api_key": "k3y-never-logged"});
        assert_eq!(call_with(&app, "POST", "/things", Some("Bearer prov"), Some(attempt)).await.0, 403);
        assert_eq!(call(&app, "POST", "/things", Some("Bearer old")).await.0, 401);
        assert_eq!(call(&app, "POST", "/things", None).await.0, 401);
        assert_eq!(call(&app, "DELETE", "/nowhere", Some("Bearer good")).await.0, 404);
        assert_eq!(call(&app, "PUT", "/things/t1/status", Some("Bearer prov")).await.0, 200);
        assert_eq!(call(&app, "PUT", "/things/t1/status", Some("Bearer nope")).await.0, 401);
        let got = log.query(&crate::audit::AuditFilter::default()).expect("read");
        type Row<'a> = (Option<&'a str>, Option<&'a str>, &'a str, &'a str, u16);
        let rows: Vec<Row> = got
            .iter()
            .map(|e| (e.user.as_deref(), e.token_id.as_deref(), e.method.as_str(), e.path.as_str(), e.status))
            .collect();
        assert_eq!(
            rows,
            vec![
                (Some("alice"), Some("aaaaaaaaaaaa"), "POST", "/things", 201),
                (Some("acme"), Some("cccccccccccc"), "POST", "/things", 403),
                (Some("bob"), Some("bbbbbbbbbbbb"), "POST", "/things", 401),
                (None, None, "POST", "/things", 401),
                (Some("alice"), Some("aaaaaaaaaaaa"), "DELETE", "/nowhere", 404),
                (None, None, "PUT", "/things/t1/status", 401),
            ],
            "{got:#?}"
        );
        assert_eq!(got[0].resource.as_deref(), Some("web"), "the id the answer names");
        assert_eq!(got[0].outcome, "ok");
        assert_eq!(got[1].resource.as_deref(), Some("n1"), "the id the refused request named");
        assert!(got[1].outcome.starts_with("forbidden: provider \"acme\" may not POST /things"), "{}", got[1].outcome);
        assert!(got[2].outcome.contains("expired at"), "{}", got[2].outcome);
        assert_eq!(got[5].resource.as_deref(), Some("t1"), "the path's parameter");
        assert!(got.iter().all(|e| e.request_id.is_some()));
        let text = std::fs::read_to_string(log.writes.path()).expect("log");
        assert!(!text.contains("s3cr3t") && !text.contains("k3y"), "no body is recorded");
        // The accepted report is telemetry, kept apart.
        let all = crate::audit::AuditFilter { telemetry: true, ..Default::default() };
        let telemetry: Vec<_> = log.query(&all).expect("read").into_iter().filter(|e| e.telemetry).collect();
        assert_eq!(telemetry.len(), 1);
        assert_eq!((telemetry[0].user.as_deref(), telemetry[0].status), (Some("acme"), 200));
    }

    fn pki() -> (String, TlsIdentity) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).expect("ca");
        let key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("leaf");
        let identity = TlsIdentity::from_pem(leaf.pem().as_bytes(), key.serialize_pem().as_bytes()).expect("identity");
        (ca.pem(), identity)
    }

    #[tokio::test]
    async fn https_is_served_verified_against_the_ca_and_plain_http_is_refused_cleanly() {
        use std::time::Duration;
        let (ca_pem, identity) = pki();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Some(identity), app(None), async {
            let _ = stop_rx.await;
        }));
        let https = format!("https://{addr}");
        let trusted =
            crate::Client::with_ca(&https, Some("good".into()), Duration::from_secs(5), Some(&ca_pem)).expect("client");
        let v: Value = trusted.get("/things").await.expect("GET over HTTPS with the CA");
        assert_eq!(v["ok"], true);
        // A client that does not trust the CA is refused, and told why.
        let stranger =
            crate::Client::with_ca(&https, Some("good".into()), Duration::from_secs(5), None).expect("client");
        let e = stranger.get::<Value>("/things").await.expect_err("untrusted certificate");
        assert!(e.is_unreachable() && e.to_string().contains("not signed by a CA this client trusts"), "{e}");
        // Plain HTTP to the HTTPS port: a clean 400 naming the fix, then the connection closes.
        let plain =
            crate::Client::with_ca(&format!("http://{addr}"), None, Duration::from_secs(5), None).expect("client");
        let e = plain.get::<Value>("/things").await.expect_err("plain HTTP");
        assert_eq!(e.status(), Some(400), "{e}");
        assert!(e.to_string().contains("tls_required") && e.to_string().contains(&https), "{e}");
        // A client speaking TLS to a plain-HTTP port is told that too.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let plain_addr = listener.local_addr().expect("addr");
        let plain_server = tokio::spawn(serve(listener, None, app(None), std::future::pending()));
        let wrong =
            crate::Client::with_ca(&format!("https://{plain_addr}"), None, Duration::from_secs(5), Some(&ca_pem))
                .expect("client");
        let e = wrong.get::<Value>("/things").await.expect_err("TLS to plain HTTP");
        assert!(e.is_unreachable(), "{e}");
        plain_server.abort();
        let _ = stop_tx.send(());
        server.await.expect("join").expect("served");
        // The port is closed once the server has stopped.
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the HTTPS port still accepts");
    }
}

#[cfg(test)]
mod body_tests {
    use super::*;
    use crate::wire::{GeographyChange, RegisterService, ZoneSlotsChange};

    fn detail<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        let e = decode_json::<T>("PUT /x", body.as_bytes()).expect_err(body);
        assert_eq!(e.status, 400, "{e}");
        e.body.detail
    }

    #[test]
    fn request_bodies_are_read_strictly_and_errors_name_the_field() {
        // Unknown fields, at the top and nested (a lenient reader silently ignores them).
        let d = detail::<RegisterService>(r#"{"manifest": "m", "colour": "red"}"#);
        assert!(d.contains("unknown field `colour`"), "{d}");
        let d = detail::<ZoneSlotsChange>(r#"{"instances": {}, "overrides": {"a": {"requires": {}, "extra": 1}}}"#);
        assert!(d.contains("unknown field `overrides.a.extra`"), "{d}");
        // Not an object: `[null, null]` would otherwise read as a body with every field left out.
        assert!(detail::<GeographyChange>("[null, null]").contains("found a JSON array"));
        assert!(detail::<GeographyChange>("").contains("found an empty body"));
        assert!(detail::<GeographyChange>("null").contains("expected a JSON object"));
        // Coordinates off the Earth, or missing, are named.
        let d = detail::<GeographyChange>(
            r#"{"regions": [{"name": "r", "location": {"lat": 999, "lon": 0}, "weight": 1}]}"#,
        );
        assert!(d.contains("regions[0].location") && d.contains("lat: expected a latitude"), "{d}");
        let d = detail::<GeographyChange>(
            r#"{"regions": [{"name": "r", "location": {"lat": null, "lon": null}, "weight": 1}]}"#,
        );
        assert!(d.contains("regions[0].location.lat"), "{d}");
        // Wrong types and huge numbers name the field and what was expected.
        let d = detail::<crate::wire::SlotsChange>(r#"{"slots": -1}"#);
        assert!(d.contains("field `slots`") && d.contains("u32"), "{d}");
        let d = detail::<crate::wire::SlotsChange>(r#"{"slots": 1e400}"#);
        assert!(d.contains("slots") || d.contains("not valid JSON"), "{d}");
        assert!(detail::<crate::wire::SlotsChange>(r#"{"slots": 1} x"#).contains("after the JSON object"));
        // Deep nesting: refused by the JSON reader's recursion limit (128) where a value is
        // built, skipped without recursion where it is an unknown field.
        let deep = format!("{{\"x\": {}1{}}}", "[".repeat(200), "]".repeat(200));
        assert!(detail::<Value>(&deep).contains("recursion limit"), "deep nesting is refused");
        detail::<RegisterService>(&deep);
        // What is right still reads.
        let ok: RegisterService = decode_json("POST /x", br#"{"manifest": "m"}"#).expect("ok");
        assert_eq!(ok.manifest, "m");
    }
}
