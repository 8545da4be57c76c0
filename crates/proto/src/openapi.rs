//! The OpenAPI 3 document of a route table, generated from the handlers' own types.
//!
//! [`crate::server::Routes::add`] takes a handler only when every one of its extractors
//! ([`DocExtractor`]) and its return type ([`DocResponse`]) can describe themselves: a
//! [`JsonBody<T>`](crate::server::JsonBody) documents the request body with `T`'s JSON Schema
//! (derived with `schemars` from the same type the body is decoded into, so required fields,
//! bounds and unknown-field refusal are those the decoder applies); a `Query<Q>` documents
//! `Q`'s fields as query parameters; `Json<T>`, [`Created`], [`Accepted`], [`NoContent`],
//! [`Text`], [`Metrics`], [`Ndjson`] and [`OrRetry`] document the status codes, content types
//! and schemas of what is answered. A route whose handler returns a bare `Response` does not
//! compile, so the document cannot drift from the handlers.
//!
//! Responses still typed as `serde_json::Value` are documented as free-form JSON (the empty
//! schema, described as such). Request bodies are typed, except the model's whole documents
//! (infrastructure, knowledge base) and the model types inside some bodies (a zone's price,
//! hosts' power, a geography's regions, latencies and demand), documented as objects whose
//! fields are not described, and a namespace entry, which is any JSON value.

use std::collections::BTreeMap;
use std::future::Future;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::server::{JsonAny, JsonBody};

/// One response of an operation.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub description: &'static str,
    /// Content type and schema of the body; none: no body.
    pub content: Option<(&'static str, Value)>,
    /// Headers the response carries (name → header object).
    pub headers: Map<String, Value>,
}

/// What a route's handler reads and answers.
#[derive(Debug, Clone, Default)]
pub struct Operation {
    /// Content type, schema and whether it is required.
    pub request: Option<(&'static str, Value)>,
    /// Query parameters (OpenAPI parameter objects).
    pub query: Vec<Value>,
    pub replies: Vec<Reply>,
    /// The handler can fail with an `{error, detail}` answer.
    pub fallible: bool,
}

impl Operation {
    fn reply(&mut self, r: Reply) {
        if !self.replies.iter().any(|x| x.status == r.status) {
            self.replies.push(r);
        }
    }
}

/// The schema generator of the documents: OpenAPI 3.0 schemas, named types under
/// `#/components/schemas`, and objects closed (`additionalProperties: false`) unless their
/// type says otherwise: request bodies refuse unknown fields, and responses are serialized
/// from the same structs.
pub fn generator() -> SchemaGenerator {
    SchemaSettings::openapi3().with_transform(close_objects).into_generator()
}

/// Closes objects (see [`generator`]) and bounds integers by their Rust type's range
/// (`format: uint32` and friends carry no `maximum` of their own).
fn close_objects(schema: &mut Schema) {
    if let Some(obj) = schema.as_object_mut() {
        if obj.contains_key("properties") && !obj.contains_key("additionalProperties") {
            obj.insert("additionalProperties".into(), Value::Bool(false));
        }
        let range: Option<(i128, i128)> = match obj.get("format").and_then(Value::as_str) {
            Some("uint8") => Some((0, u8::MAX.into())),
            Some("uint16") => Some((0, u16::MAX.into())),
            Some("uint32") => Some((0, u32::MAX.into())),
            Some("uint64" | "uint") => Some((0, u64::MAX.into())),
            Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
            Some("int64" | "int") => Some((i64::MIN.into(), i64::MAX.into())),
            _ => None,
        };
        if let Some((min, max)) = range {
            if !obj.contains_key("minimum") {
                obj.insert("minimum".into(), json!(min));
            }
            if !obj.contains_key("maximum") {
                obj.insert("maximum".into(), json!(max));
            }
        }
        for (_, v) in obj.iter_mut() {
            visit(v);
        }
    }
}

fn visit(v: &mut Value) {
    match v {
        Value::Object(_) => {
            if let Ok(s) = <&mut Schema>::try_from(v) {
                close_objects(s);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(visit),
        _ => {}
    }
}

/// `T`'s schema where a body is described: a reference to a named type, or the inline schema
/// with the generator's rules applied; `serde_json::Value` (JSON Schema `true`) is written as
/// the empty schema, described as free-form.
fn schema_of<T: JsonSchema>(gen: &mut SchemaGenerator) -> Value {
    let mut s = gen.subschema_for::<T>();
    close_objects(&mut s);
    match s.to_value() {
        Value::Bool(_) => json!({"description": "free-form JSON (its fields are not described here: not yet typed)"}),
        v => v,
    }
}

fn error_schema() -> Value {
    json!({"$ref": "#/components/schemas/Error"})
}

/// An extractor that documents what it reads.
pub trait DocExtractor {
    fn document(_op: &mut Operation, _gen: &mut SchemaGenerator) {}
}

impl<S> DocExtractor for State<S> {}
impl<T> DocExtractor for Extension<T> {}
impl<T> DocExtractor for Option<Extension<T>> {}
/// Path parameters are documented from the route pattern.
impl<T> DocExtractor for Path<T> {}

impl<T: JsonSchema> DocExtractor for JsonBody<T> {
    fn document(op: &mut Operation, gen: &mut SchemaGenerator) {
        op.request = Some(("application/json", schema_of::<T>(gen)));
    }
}

impl DocExtractor for JsonAny {
    fn document(op: &mut Operation, _gen: &mut SchemaGenerator) {
        op.request = Some(("application/json", json!({"description": "any JSON value"})));
    }
}

impl<T: JsonSchema> DocExtractor for crate::server::JsonAnyAs<T> {
    fn document(op: &mut Operation, gen: &mut SchemaGenerator) {
        op.request = Some(("application/json", schema_of::<T>(gen)));
    }
}

impl<Q: JsonSchema> DocExtractor for Query<Q> {
    fn document(op: &mut Operation, _gen: &mut SchemaGenerator) {
        // Parameters need their schemas inline.
        let mut inline = SchemaSettings::openapi3().with_transform(close_objects);
        inline.inline_subschemas = true;
        let root = inline.into_generator().into_root_schema_for::<Q>();
        let required: Vec<&str> = root
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Some(props) = root.get("properties").and_then(Value::as_object) else { return };
        for (name, schema) in props {
            let mut schema = schema.clone();
            // A query string has no null: an absent parameter is the `None`.
            if let Some(o) = schema.as_object_mut() {
                o.remove("nullable");
            }
            let description = schema.as_object_mut().and_then(|o| o.remove("description"));
            let mut p =
                json!({"name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": schema});
            if let Some(d) = description {
                p["description"] = d;
            }
            op.query.push(p);
        }
    }
}

/// A return type that documents what it answers.
pub trait DocResponse {
    fn document(op: &mut Operation, gen: &mut SchemaGenerator);
}

fn json_reply(status: u16, description: &'static str, schema: Value) -> Reply {
    Reply { status, description, content: Some(("application/json", schema)), headers: Map::new() }
}

impl<T: JsonSchema> DocResponse for Json<T> {
    fn document(op: &mut Operation, gen: &mut SchemaGenerator) {
        op.reply(json_reply(200, "OK", schema_of::<T>(gen)));
    }
}

impl<T: DocResponse> DocResponse for Result<T, ApiError> {
    fn document(op: &mut Operation, gen: &mut SchemaGenerator) {
        T::document(op, gen);
        op.fallible = true;
    }
}

/// `201 Created` with a JSON body.
pub struct Created<T>(pub T);
/// `202 Accepted` with a JSON body: the change is under way.
pub struct Accepted<T>(pub T);
/// `202 Accepted` without a body.
pub struct AcceptedEmpty;
/// `204 No Content`.
pub struct NoContent;

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, Json(self.0)).into_response()
    }
}
impl<T: JsonSchema> DocResponse for Created<T> {
    fn document(op: &mut Operation, gen: &mut SchemaGenerator) {
        op.reply(json_reply(201, "Created", schema_of::<T>(gen)));
    }
}
impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        (StatusCode::ACCEPTED, Json(self.0)).into_response()
    }
}
impl<T: JsonSchema> DocResponse for Accepted<T> {
    fn document(op: &mut Operation, gen: &mut SchemaGenerator) {
        op.reply(json_reply(202, "Accepted: the change is under way", schema_of::<T>(gen)));
    }
}
impl IntoResponse for AcceptedEmpty {
    fn into_response(self) -> Response {
        StatusCode::ACCEPTED.into_response()
    }
}
impl DocResponse for AcceptedEmpty {
    fn document(op: &mut Operation, _gen: &mut SchemaGenerator) {
        op.reply(Reply {
            status: 202,
            description: "Accepted: the change is under way",
            content: None,
            headers: Map::new(),
        });
    }
}
impl IntoResponse for NoContent {
    fn into_response(self) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}
impl DocResponse for NoContent {
    fn document(op: &mut Operation, _gen: &mut SchemaGenerator) {
        op.reply(Reply { status: 204, description: "Done; no body", content: None, headers: Map::new() });
    }
}

/// One of two answers (e.g. `200` for an unchanged resource, `201` for a new one).
pub enum Either<A, B> {
    A(A),
    B(B),
}
impl<A: IntoResponse, B: IntoResponse> IntoResponse for Either<A, B> {
    fn into_response(self) -> Response {
        match self {
            Either::A(a) => a.into_response(),
            Either::B(b) => b.into_response(),
        }
    }
}
impl<A: DocResponse, B: DocResponse> DocResponse for Either<A, B> {
    fn document(op: &mut Operation, gen: &mut SchemaGenerator) {
        A::document(op, gen);
        B::document(op, gen);
    }
}

/// `200` with `text/plain; charset=utf-8` (a log's tail).
pub struct Text(pub String);
impl IntoResponse for Text {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.0).into_response()
    }
}
impl DocResponse for Text {
    fn document(op: &mut Operation, _gen: &mut SchemaGenerator) {
        op.reply(Reply {
            status: 200,
            description: "Plain text",
            content: Some(("text/plain", json!({"type": "string"}))),
            headers: Map::new(),
        });
    }
}

/// `200` with the Prometheus text exposition format (`text/plain; version=0.0.4`).
pub struct Metrics(pub String);
impl IntoResponse for Metrics {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], self.0).into_response()
    }
}
impl DocResponse for Metrics {
    fn document(op: &mut Operation, _gen: &mut SchemaGenerator) {
        op.reply(Reply {
            status: 200,
            description: "Prometheus text exposition format 0.0.4",
            content: Some(("text/plain", json!({"type": "string"}))),
            headers: Map::new(),
        });
    }
}

/// `200` streaming JSON lines (`application/x-ndjson`) as an attachment named `filename`.
pub struct Ndjson {
    pub filename: String,
    pub body: axum::body::Body,
}
impl IntoResponse for Ndjson {
    fn into_response(self) -> Response {
        let disposition = format!("attachment; filename=\"{}\"", self.filename);
        let mut resp = ([(header::CONTENT_TYPE, "application/x-ndjson")], self.body).into_response();
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        resp
    }
}
impl DocResponse for Ndjson {
    fn document(op: &mut Operation, _gen: &mut SchemaGenerator) {
        let mut headers = Map::new();
        headers.insert(
            "Content-Disposition".into(),
            json!({"description": "attachment; filename=\"<domain>-<ms>.zonal-backup\"", "schema": {"type": "string"}}),
        );
        op.reply(Reply {
            status: 200,
            description: "JSON lines, one JSON object per line, streamed",
            content: Some(("application/x-ndjson", json!({"type": "string"}))),
            headers,
        });
    }
}

/// A resolution: `200` with the answer, or `503` with `Retry-After` (seconds) while the
/// service is being deployed or has no free slot.
pub enum OrRetry<T> {
    Found(T),
    Wait(ApiError),
}
impl<T: Serialize> IntoResponse for OrRetry<T> {
    fn into_response(self) -> Response {
        match self {
            OrRetry::Found(t) => Json(t).into_response(),
            OrRetry::Wait(e) => {
                let mut resp = e.into_response();
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
                resp
            }
        }
    }
}
impl<T: JsonSchema> DocResponse for OrRetry<T> {
    fn document(op: &mut Operation, gen: &mut SchemaGenerator) {
        op.reply(json_reply(200, "OK", schema_of::<T>(gen)));
        let mut headers = Map::new();
        headers.insert(
            "Retry-After".into(),
            json!({"description": "seconds to wait before asking again", "required": true, "schema": {"type": "integer", "minimum": 0}}),
        );
        op.reply(Reply {
            status: 503,
            description: "No endpoint yet: deploying (on demand) or no free slot; come back after Retry-After",
            content: Some(("application/json", error_schema())),
            headers,
        });
    }
}

/// A handler whose extractors and answer document themselves (see the module docs).
/// Implemented for every async function of up to seven extractors, as axum's `Handler` is.
pub trait DocHandler<T> {
    fn document(op: &mut Operation, gen: &mut SchemaGenerator);
}

impl<F, Fut, Res> DocHandler<((),)> for F
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Res>,
    Res: DocResponse,
{
    fn document(op: &mut Operation, gen: &mut SchemaGenerator) {
        Res::document(op, gen);
    }
}

macro_rules! doc_handler {
    ($($ty:ident),+) => {
        impl<F, Fut, Res, M, $($ty,)+> DocHandler<(M, $($ty,)+)> for F
        where
            F: FnOnce($($ty,)+) -> Fut,
            Fut: Future<Output = Res>,
            Res: DocResponse,
            $($ty: DocExtractor,)+
        {
            fn document(op: &mut Operation, gen: &mut SchemaGenerator) {
                $($ty::document(op, gen);)+
                Res::document(op, gen);
            }
        }
    };
}

doc_handler!(T1);
doc_handler!(T1, T2);
doc_handler!(T1, T2, T3);
doc_handler!(T1, T2, T3, T4);
doc_handler!(T1, T2, T3, T4, T5);
doc_handler!(T1, T2, T3, T4, T5, T6);
doc_handler!(T1, T2, T3, T4, T5, T6, T7);

/// An RFC 1123 DNS label as `zonal_model::names` defines a name: the JSON Schema of a name.
pub fn name_schema(_gen: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": zonal_model::names::MAX_NAME_LEN,
        "pattern": NAME_PATTERN,
    })
}

/// [`name_schema`] for an optional name.
pub fn optional_name_schema(gen: &mut SchemaGenerator) -> Schema {
    let mut s = name_schema(gen);
    s.insert("nullable".into(), Value::Bool(true));
    s
}

/// A free label (`zonal_model::names::label_problem`: a tier, an architecture): 1-128
/// characters, no `/`, no control characters, no leading or trailing white space.
pub fn label_schema(_gen: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 128,
        "pattern": "^[^/\\s\\x00-\\x1f\\x7f-\\x9f]([^/\\x00-\\x1f\\x7f-\\x9f]*[^/\\s\\x00-\\x1f\\x7f-\\x9f])?$",
    })
}

/// [`label_schema`] for an optional label.
pub fn optional_label_schema(gen: &mut SchemaGenerator) -> Schema {
    let mut s = label_schema(gen);
    s.insert("nullable".into(), Value::Bool(true));
    s
}

/// A span as `crate::parse_span` reads it (a whole number and one unit), at most as many
/// digits per unit as keep it under the 100 years `parse_span` allows.
pub const SPAN_PATTERN: &str = "^([0-9]{1,12}ms|[0-9]{1,9}s|[0-9]{1,7}(m|min)|[0-9]{1,5}h|[0-9]{1,4}d|[0-9]{1,3}w)$";

/// A token's lifetime (`CreateToken::ttl`): `never`, or a span of at least one second.
pub const TTL_PATTERN: &str = "^(never|0*[1-9][0-9]{3,11}ms|0*[1-9][0-9]{0,8}s|0*[1-9][0-9]{0,6}(m|min)|0*[1-9][0-9]{0,4}h|0*[1-9][0-9]{0,3}d|0*[1-9][0-9]{0,2}w)$";

/// The pattern of a name (`zonal_model::names::name_problem`): 1-63 of `a-z`, `0-9`, `-`,
/// beginning and ending with a letter or digit.
pub const NAME_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";

/// The statuses every operation of a route may answer besides its own, with `{error, detail}`.
pub(crate) fn error_reply(status: u16) -> (String, Value) {
    let description = match status {
        400 => "The request is malformed or names something invalid (the detail says what and where)",
        401 => "No known bearer token (missing, unknown, expired or revoked)",
        403 => "The caller's role or ownership does not admit this",
        404 => "No such resource",
        409 => "The resource's state does not allow this now",
        413 => "The body is larger than this resource's limit",
        415 => "The body is not `Content-Type: application/json`",
        422 => "The request is valid but cannot be carried out (e.g. infeasible placement)",
        500 => "The daemon's store failed",
        503 => "A zone or the domain is unavailable now",
        _ => "Error",
    };
    (
        status.to_string(),
        json!({"description": description, "content": {"application/json": {"schema": error_schema()}}}),
    )
}

/// The `Error` component.
pub(crate) fn error_component() -> Value {
    json!({
        "type": "object",
        "required": ["error", "detail"],
        "additionalProperties": false,
        "properties": {
            "error": {"type": "string", "description": "short machine code"},
            "detail": {"type": "string", "description": "what, where and what was expected"},
            "diagnostics": {"type": "array", "items": {"type": "string"}}
        }
    })
}

/// The answers of `op` as an OpenAPI `responses` object, with the error statuses in `errors`.
pub(crate) fn responses(op: &Operation, errors: &[u16]) -> Map<String, Value> {
    let mut out = BTreeMap::new();
    for r in &op.replies {
        let mut v = json!({"description": r.description});
        if let Some((ct, schema)) = &r.content {
            v["content"] = json!({ *ct: {"schema": schema} });
        }
        if !r.headers.is_empty() {
            v["headers"] = Value::Object(r.headers.clone());
        }
        out.insert(r.status.to_string(), v);
    }
    for s in errors {
        let (k, v) = error_reply(*s);
        out.entry(k).or_insert(v);
    }
    out.into_iter().collect()
}

// ------------------------------------------------------------------ schemas of model types
//
// The model's types (crates model and control) carry no JSON Schema of their own; the wire
// types name these stand-ins for them.

/// `zonal_model::Location`: decimal degrees on Earth.
#[derive(JsonSchema)]
#[schemars(rename = "Location")]
pub struct LocationDoc {
    #[schemars(range(min = -90.0, max = 90.0))]
    pub lat: f64,
    #[schemars(range(min = -180.0, max = 180.0))]
    pub lon: f64,
}

/// `zonal_model::ResourceUnit`.
#[derive(JsonSchema)]
#[schemars(rename = "ResourceUnit")]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ResourceUnitDoc {
    Millicores,
    Bytes,
    Count,
}

fn amount(unit: &str, max: u64) -> Value {
    json!({
        "type": "object",
        "required": ["value", "unit"],
        "additionalProperties": false,
        "properties": {
            "value": {"type": "integer", "minimum": 0, "maximum": max},
            "unit": {"type": "string", "enum": [unit]},
        }
    })
}

/// `zonal_model::Resources`: resource name → amount (`Amount::problem`: `cpu` in millicores,
/// `memory` and `disk` in bytes, `gpu` counted; each at most its unit's maximum).
pub struct ResourcesDoc;
impl JsonSchema for ResourcesDoc {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Resources".into()
    }
    fn json_schema(_gen: &mut SchemaGenerator) -> Schema {
        use zonal_model::limits::{MAX_BYTES, MAX_COUNT, MAX_CPU_MILLICORES};
        let (cpu, bytes, count) =
            (amount("millicores", MAX_CPU_MILLICORES), amount("bytes", MAX_BYTES), amount("count", MAX_COUNT));
        let value = json!({
            "type": "object",
            "description": "resource name → {value, unit}",
            "properties": {"cpu": cpu, "memory": bytes, "disk": bytes, "gpu": count},
            "additionalProperties": {"oneOf": [cpu, bytes, count]},
        });
        Schema::try_from(value).unwrap_or_default()
    }
}

/// `zonal_model::Resources` as a zone reports it (heartbeats): resource name → amount, read
/// as reported (the zone measured it), not checked against the limits.
#[derive(JsonSchema)]
#[schemars(rename = "ReportedResources")]
#[serde(transparent)]
pub struct ReportedResourcesDoc(pub BTreeMap<String, ReportedAmountDoc>);

/// `zonal_model::Amount` as reported.
#[derive(JsonSchema)]
#[schemars(rename = "ReportedAmount")]
pub struct ReportedAmountDoc {
    pub value: u64,
    pub unit: ResourceUnitDoc,
}

/// `zonal_control::place::HostSummary`: a host and its capacity not reserved by instances.
#[derive(JsonSchema)]
#[schemars(rename = "HostSummary")]
pub struct HostSummaryDoc {
    pub name: String,
    pub free: ReportedResourcesDoc,
    pub features: BTreeMap<String, String>,
    pub available: bool,
}

/// `zonal_control::reconcile::InstanceState`.
#[derive(JsonSchema)]
#[schemars(rename = "InstanceState")]
#[serde(rename_all = "lowercase")]
pub enum InstanceStateDoc {
    Provisioning,
    Running,
    Decommissioned,
    Terminating,
    Failed,
    Lost,
}

/// `crate::env::PortMapping`: one logical port and the real port it is mapped to.
#[derive(JsonSchema)]
#[schemars(rename = "PortMapping")]
pub struct PortMappingDoc {
    pub name: String,
    pub protocol: String,
    pub private: u16,
    pub public: u16,
}

macro_rules! free_object {
    ($name:ident, $title:literal, $what:literal) => {
        #[doc = $what]
        pub struct $name;
        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $title.into()
            }
            fn json_schema(_gen: &mut SchemaGenerator) -> Schema {
                schemars::json_schema!({
                    "type": "object",
                    "additionalProperties": true,
                    "description": $what,
                })
            }
        }
    };
}

free_object!(
    PowerDoc,
    "PowerModel",
    "Power draw idle and at full load (`idle`, `max`: watts, e.g. \"120W\"); its fields are not described here (not yet typed)"
);
free_object!(
    PriceDoc,
    "Price",
    "Prices (`cpu_hour`, `memory_gib_hour`, `gpu_hour`, `egress_per_gb`); its fields are not described here (not yet typed)"
);
free_object!(
    FreeObject,
    "FreeObject",
    "A JSON object of the model (a host summary, a user region, a measured latency, a latency model, a demand entry) whose fields are not described here (not yet typed)"
);

/// What is missing from a generated document (for the daemons' tests): every operation
/// has a success response, every success response with a body has a schema, every POST and
/// PUT has a request body with a schema, every error status has the `Error` schema, and
/// every `$ref` names a schema of the document.
pub fn problems(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let schemas = doc["components"]["schemas"].as_object().cloned().unwrap_or_default();
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    for r in refs {
        match r.strip_prefix("#/components/schemas/") {
            Some(name) if schemas.contains_key(name) => {}
            _ => out.push(format!("$ref {r} names no schema of the document")),
        }
    }
    let Some(paths) = doc["paths"].as_object() else { return vec!["no paths".into()] };
    for (path, ops) in paths {
        for (method, op) in ops.as_object().into_iter().flatten() {
            let what = format!("{} {path}", method.to_uppercase());
            let Some(responses) = op["responses"].as_object() else {
                out.push(format!("{what}: no responses"));
                continue;
            };
            if !responses.keys().any(|k| k.starts_with('2')) {
                out.push(format!("{what}: no success response"));
            }
            for (status, r) in responses {
                for (ct, media) in r["content"].as_object().into_iter().flatten() {
                    if !media["schema"].is_object() {
                        out.push(format!("{what}: response {status} {ct} has no schema"));
                    }
                    if status.starts_with(['4', '5']) && media["schema"]["$ref"] != "#/components/schemas/Error" {
                        out.push(format!("{what}: error {status} is not the Error schema"));
                    }
                }
            }
            if (method == "post" || method == "put")
                && !op["requestBody"]["content"]["application/json"]["schema"].is_object()
            {
                out.push(format!("{what}: no request body schema"));
            }
        }
    }
    out
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::Role;
    use crate::server::{Access, Routes};
    use axum::http::Method;
    use serde::Deserialize;

    /// A body with required fields, an optional one and a bounded number.
    #[derive(Serialize, Deserialize, JsonSchema)]
    struct Thing {
        #[schemars(schema_with = "name_schema")]
        name: String,
        #[serde(default)]
        colour: Option<String>,
        count: u32,
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Filter {
        /// Only things of this colour.
        colour: Option<String>,
    }

    async fn make(JsonBody(t): JsonBody<Thing>) -> Result<Created<Thing>, ApiError> {
        Ok(Created(t))
    }
    async fn list(Query(_q): Query<Filter>) -> Json<Vec<Thing>> {
        Json(Vec::new())
    }
    async fn gone(Path(_id): Path<String>) -> Result<NoContent, ApiError> {
        Ok(NoContent)
    }
    async fn metrics() -> Metrics {
        Metrics(String::new())
    }

    fn document() -> Value {
        const ADMIN: Access = Access::Roles(&[Role::Admin]);
        Routes::<()>::new()
            .add(Method::POST, "/things", "Create a thing", ADMIN, make)
            .add(Method::GET, "/things", "Things", ADMIN, list)
            .add(Method::DELETE, "/things/{id}", "Delete a thing", ADMIN, gone)
            .add(Method::GET, "/metrics", "Metrics", Access::Public, metrics)
            .openapi("test", "a test API")
    }

    #[test]
    fn the_required_fields_of_a_handlers_body_type_are_required_in_the_document() {
        let doc = document();
        let thing = &doc["components"]["schemas"]["Thing"];
        let mut required: Vec<&str> =
            thing["required"].as_array().expect("required").iter().filter_map(Value::as_str).collect();
        required.sort();
        assert_eq!(required, ["count", "name"], "{thing}");
        assert_eq!(thing["additionalProperties"], false, "unknown fields are refused: {thing}");
        assert_eq!(thing["properties"]["name"]["pattern"], NAME_PATTERN);
        assert_eq!(thing["properties"]["name"]["maxLength"], 63);
        assert_eq!(thing["properties"]["count"]["maximum"], u32::MAX, "{thing}");
        let post = &doc["paths"]["/things"]["post"];
        assert_eq!(post["requestBody"]["required"], true);
        assert_eq!(post["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Thing");
        assert_eq!(
            post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Thing"
        );
        for status in ["400", "401", "403", "413", "415"] {
            assert_eq!(
                post["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/Error",
                "{status}"
            );
        }
        let get = &doc["paths"]["/things"]["get"];
        assert_eq!(get["parameters"][0]["name"], "colour");
        assert_eq!(get["parameters"][0]["in"], "query");
        assert_eq!(get["parameters"][0]["required"], false);
        assert_eq!(get["responses"]["200"]["content"]["application/json"]["schema"]["type"], "array");
        let delete = &doc["paths"]["/things/{id}"]["delete"];
        assert!(delete["responses"]["204"].is_object() && delete["responses"]["204"].get("content").is_none());
        assert_eq!(delete["parameters"][0]["in"], "path");
        let metrics = &doc["paths"]["/metrics"]["get"];
        assert!(metrics["responses"]["200"]["content"]["text/plain"].is_object(), "{metrics}");
        assert!(metrics["responses"].get("401").is_none(), "public: no token errors");
    }

    #[test]
    fn the_generated_document_is_valid_openapi_3() {
        let doc = document();
        assert_eq!(problems(&doc), Vec::<String>::new());
        let parsed: openapiv3::OpenAPI = serde_json::from_value(doc.clone()).expect("an OpenAPI 3.0 document");
        assert_eq!(parsed.paths.paths.len(), 3);
        assert!(parsed.components.is_some_and(|c| c.schemas.contains_key("Thing") && c.schemas.contains_key("Error")));
    }
}
