//! Cross-cutting server concerns as axum layers, shared by both daemons.
//!
//! * [`Routes`] — a route table: each route is added with its method, path, one-line summary
//!   and who may call it. The same table builds the axum router, the OpenAPI 3 document
//!   (`/openapi.json` is generated from it, so it cannot drift from the routes) and the role
//!   rules the [`auth`] layer enforces.
//! * [`auth`] — bearer-token authentication and role checks, before any handler runs: a
//!   missing or unknown token is 401, a role the route does not admit is 403. Ownership
//!   (a provider's own services) is checked by the logic, which knows what is owned.
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
}

/// Role rules by `(method, route pattern)`.
#[derive(Debug, Default)]
pub struct RouteIndex {
    rules: HashMap<(Method, &'static str), Access>,
}

impl RouteIndex {
    pub fn access(&self, method: &Method, path: &str) -> Option<Access> {
        self.rules.iter().find(|((m, p), _)| m == method && *p == path).map(|(_, a)| *a)
    }
}

/// A route table that builds a router, an OpenAPI document and the role rules together.
pub struct Routes<S> {
    router: Router<S>,
    specs: Vec<RouteSpec>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Routes { router: Router::new(), specs: Vec::new() }
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
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
        self.router = self.router.route(path, on(filter, handler));
        self.specs.push(RouteSpec { method, path, summary, access });
        self
    }

    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    /// The OpenAPI 3 document of every route added.
    pub fn openapi(&self, title: &str, description: &str) -> Value {
        openapi(&self.specs, title, description)
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

fn openapi(specs: &[RouteSpec], title: &str, description: &str) -> Value {
    let mut paths: BTreeMap<&str, serde_json::Map<String, Value>> = BTreeMap::new();
    for s in specs {
        let params: Vec<Value> = s
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|x| x.strip_suffix('}')))
            .map(|name| {
                let name = name.trim_start_matches('*');
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        let (security, roles) = match s.access {
            Access::Public => (json!([]), json!([])),
            Access::Roles(rs) => (json!([{"bearer": []}]), json!(rs.iter().map(|r| r.as_str()).collect::<Vec<_>>())),
        };
        let ok = match s.method {
            Method::POST => "201",
            Method::DELETE => "204",
            _ => "200",
        };
        let mut responses = serde_json::Map::new();
        responses.insert(ok.into(), json!({"description": "success", "content": {"application/json": {}}}));
        responses.insert(
            "default".into(),
            json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
        let mut op = json!({
            "summary": s.summary,
            "operationId": format!("{}{}", s.method.as_str().to_ascii_lowercase(), s.path.replace(['/', '{', '}', '*'], "_")),
            "parameters": params,
            "security": security,
            "x-roles": roles,
            "responses": responses,
        });
        if matches!(s.method, Method::POST | Method::PUT) {
            op["requestBody"] = json!({"content": {"application/json": {"schema": {"type": "object"}}}});
        }
        paths.entry(s.path).or_default().insert(s.method.as_str().to_ascii_lowercase(), op);
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1.0", "description": description},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error", "detail"],
                "properties": {
                    "error": {"type": "string", "description": "short machine code"},
                    "detail": {"type": "string", "description": "what, where and what was expected"},
                    "diagnostics": {"type": "array", "items": {"type": "string"}}
                }
            }}
        }
    })
}

/// Turns a bearer token into a principal.
pub trait Authenticate: Send + Sync + 'static {
    fn authenticate(&self, token: &str) -> Option<Principal>;
}

/// State of the [`auth`] layer.
#[derive(Clone)]
pub struct AuthState {
    pub authenticator: Arc<dyn Authenticate>,
    pub index: Arc<RouteIndex>,
}

fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// Authentication and role checks. Inserts the [`Principal`] into the request extensions.
pub async fn auth(State(st): State<AuthState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let Some(path) = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()) else {
        return next.run(req).await; // unmatched: the fallback answers 404
    };
    let access = st.index.access(&method, &path).unwrap_or(Access::Roles(&[]));
    let principal = bearer(&req).and_then(|t| st.authenticator.authenticate(t));
    match access {
        Access::Public => {}
        Access::Roles(roles) => {
            let Some(p) = &principal else {
                let why =
                    if bearer(&req).is_some() { "the bearer token is not known" } else { "no bearer token was sent" };
                return ApiError::unauthorized(format!(
                    "{method} {path} needs an `Authorization: Bearer <token>` header; {why} (create one with `zonal token create`)"
                ))
                .into_response();
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
        resp = err.into_response();
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let secs = start.elapsed().as_secs_f64();
    metrics.record(method.as_str(), &route, status, secs);
    tracing::debug!(request_id, %method, path = uri_path, status, ms = secs * 1000.0, "request");
    resp
}

/// JSON request bodies whose rejections are `{error, detail}` 400s.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let what = format!("{} {}", req.method(), req.uri().path());
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(rej) => Err(ApiError::bad_request(format!(
                "{what}: the request body is not what this resource expects: {}; expected a JSON object (see GET /openapi.json)",
                rej.body_text()
            ))),
        }
    }
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
