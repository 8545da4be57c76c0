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
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
        let route = on(filter, handler).layer(axum::extract::DefaultBodyLimit::max(MAX_DOCUMENT_BODY_BYTES));
        self.router = self.router.route(path, route);
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

#[cfg(test)]
mod tests {
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
