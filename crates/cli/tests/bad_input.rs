//! The bad-input corpus (issue 14): several hundred malformed, hostile or out-of-range inputs,
//! each of which must be refused with a clear answer and change nothing.
//!
//! * **Descriptors** — the issue's cases (an alias bomb, `.`/`..` as names, `per_instance:
//!   4294967295`, `min_instances: 100000`, unknown fields, an unterminated quote in `run:`, …)
//!   and cases generated from every native example, field by field (an unknown key in every
//!   mapping, bad names, out-of-range and negative counts, malformed quantities). Each goes
//!   through `zonal validate` (exit 1, a `file:line:column` diagnostic) and, when it is a
//!   service, through `POST /1.0/services` to a real `zonal domain` (4xx).
//! * **API bodies** — every write route of the domain and of a zone: wrong types, missing and
//!   unknown fields, huge, negative and fractional numbers, numbers JSON cannot hold, deep
//!   nesting, oversized bodies, bad UTF-8, wrong and missing Content-Type, arrays and `null`
//!   instead of objects, trailing text.
//! * **Headers** (Authorization: missing, wrong scheme, empty, very long, not ASCII), **query
//!   strings** (bad coordinates, repeated and contradictory parameters, huge values) and
//!   **path segments** (`.`, `..`, encoded slashes and dots, NUL, very long names).
//!
//! Every answer must be a 4xx (never 2xx, never 5xx) with a JSON `{error, detail}` body, and the
//! domain's store must stay byte for byte what it was: the domain runs with no zone (nothing
//! else writes to it), and its `domain.redb` file is read and compared after every case
//! (reads never write to a redb file; a control write at the end shows the comparison sees a
//! change). The zone's cases run against a zone registered with a stand-in domain (a few lines
//! of axum below, so that the real domain's store sees nothing of it), and its `zone.redb` is
//! compared the same way. Requests are written as raw HTTP/1.1 on a TCP socket, so that what a
//! well-behaved client library would refuse to send (bad UTF-8, bad headers) is sent as is.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{example, Harness, ZONAL};
use zonal_descriptor::yaml::{self, Node, NodeKind};

// ------------------------------------------------------------------ raw HTTP

/// An answer: status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` (raw bytes) to `addr` and reads the answer to the end.
fn send(addr: &str, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    // The server may answer (and close) before it has read an oversized body: a write error
    // then is expected, the answer is what counts.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| {
        panic!(
            "no HTTP answer to {:?}: {:?}",
            String::from_utf8_lossy(&request[..request.len().min(200)]),
            String::from_utf8_lossy(&out)
        )
    });
    let head = String::from_utf8_lossy(&out[..head_end]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    let mut body = out[head_end + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = unchunk(&body);
    }
    Answer { status, body }
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// A raw HTTP/1.1 request. `headers` are sent as given (bytes); `Host`, `Connection: close`
/// and `Content-Length` are added.
fn request(method: &str, path: &[u8], headers: &[(&str, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(method.as_bytes());
    r.push(b' ');
    r.extend_from_slice(path);
    r.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.extend_from_slice(k.as_bytes());
        r.extend_from_slice(b": ");
        r.extend_from_slice(v);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    r.extend_from_slice(body);
    r
}

fn bearer(token: &str) -> (&'static str, Vec<u8>) {
    ("Authorization", format!("Bearer {token}").into_bytes())
}

fn json_type() -> (&'static str, Vec<u8>) {
    ("Content-Type", b"application/json".to_vec())
}

// ------------------------------------------------------------------ cases

/// The admin routes that take a whole document, with the larger body limit (16 MiB).
const DOCUMENT_ROUTES: &[&str] = &["/1.0/infrastructure", "/1.0/geography", "/1.0/knowledge-base"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Domain,
    Zone,
}

/// One HTTP case: what it is, where it goes, the raw request.
struct Case {
    what: String,
    target: Target,
    raw: Vec<u8>,
    /// The exact status, where the case's kind fixes it (415, 413, …); else any 4xx.
    status: Option<u16>,
}

/// Collects cases with the tokens they use.
struct Cases {
    list: Vec<Case>,
    admin: String,
    provider: String,
    zone_key: String,
}

impl Cases {
    fn add(&mut self, target: Target, what: impl Into<String>, raw: Vec<u8>) {
        self.list.push(Case { what: what.into(), target, raw, status: None });
    }

    /// The last case added must get exactly `status`.
    fn expect(&mut self, status: u16) {
        if let Some(c) = self.list.last_mut() {
            c.status = Some(status);
        }
    }

    fn token(&self, target: Target) -> String {
        match target {
            Target::Domain => self.admin.clone(),
            Target::Zone => self.zone_key.clone(),
        }
    }

    /// A JSON body (as bytes) to `method path` with the target's token.
    fn body(&mut self, target: Target, method: &str, path: &str, what: &str, body: &[u8]) {
        let raw = request(method, path.as_bytes(), &[bearer(&self.token(target)), json_type()], body);
        self.add(target, format!("{method} {path}: {what}"), raw);
    }

    fn json(&mut self, target: Target, method: &str, path: &str, what: &str, v: &Value) {
        self.body(target, method, path, what, v.to_string().as_bytes());
    }

    /// The body faults every JSON route must refuse, whatever it reads.
    fn malformed_bodies(&mut self, target: Target, method: &str, path: &str, template: &Value) {
        let token = self.token(target);
        let text = template.to_string();
        let with = |ct: Option<&str>| {
            let mut h = vec![bearer(&token)];
            if let Some(ct) = ct {
                h.push(("Content-Type", ct.as_bytes().to_vec()));
            }
            h
        };
        for (what, ct) in [
            ("no Content-Type", None),
            ("Content-Type text/plain", Some("text/plain")),
            ("Content-Type form", Some("application/x-www-form-urlencoded")),
            ("Content-Type with bad bytes", Some("application/\u{ff}json")),
        ] {
            self.add(
                target,
                format!("{method} {path}: {what}"),
                request(method, path.as_bytes(), &with(ct), text.as_bytes()),
            );
            self.expect(415);
        }
        let mut bad_utf8 = text.clone().into_bytes();
        bad_utf8.truncate(bad_utf8.len().saturating_sub(1));
        bad_utf8.extend_from_slice(b", \"x\": \"\xff\xfe\xc0\"}");
        self.body(target, method, path, "bad UTF-8 in a string", &bad_utf8);
        self.body(target, method, path, "bad UTF-8 bytes", b"\xff\xfe\xfd");
        self.body(target, method, path, "not JSON", b"{\"unterminated");
        self.body(target, method, path, "an empty body", b"");
        self.body(target, method, path, "null", b"null");
        self.body(target, method, path, "[null, null]", b"[null, null]");
        self.expect(400);
        self.body(target, method, path, "a string", b"\"text\"");
        self.body(target, method, path, "a number", b"42");
        self.body(target, method, path, "trailing text", format!("{text} trailing").as_bytes());
        self.body(target, method, path, "two objects", format!("{text}{text}").as_bytes());
        let deep = format!("{{\"deep\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
        self.body(target, method, path, "deep nesting (5000 levels)", deep.as_bytes());
        let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(2 << 20));
        self.body(target, method, path, "a 2 MiB body", big.as_bytes());
        if !DOCUMENT_ROUTES.contains(&path) {
            self.expect(413);
        }
        let mut unknown = template.clone();
        unknown["zz_unknown"] = json!(1);
        self.json(target, method, path, "an unknown field", &unknown);
        let mut unknown = template.clone();
        unknown["Zz"] = json!({"nested": [1, 2, 3]});
        self.json(target, method, path, "an unknown field with a nested value", &unknown);
    }

    /// Each field of `template` replaced by each value in `values`.
    fn fields(&mut self, target: Target, method: &str, path: &str, template: &Value, field: &str, values: &[Value]) {
        for v in values {
            let mut b = template.clone();
            b[field] = v.clone();
            self.json(target, method, path, &format!("{field} = {v}"), &b);
        }
    }

    /// Each required field of `template` left out, and set to `null`.
    fn required(&mut self, target: Target, method: &str, path: &str, template: &Value, fields: &[&str]) {
        for f in fields {
            let mut b = template.clone();
            if let Some(m) = b.as_object_mut() {
                m.remove(*f);
            }
            self.json(target, method, path, &format!("{f} missing"), &b);
            let mut b = template.clone();
            b[*f] = Value::Null;
            self.json(target, method, path, &format!("{f} null"), &b);
        }
    }
}

/// Names no API may accept (the issue's `.` and `..` first).
fn bad_names() -> Vec<Value> {
    [".", "..", "a/b", "", "Web", "a_b", "a b", "-a", "a-", "a\u{0}b", "a\nb", "é", &"n".repeat(64)]
        .iter()
        .map(|s| json!(s))
        .collect()
}

/// Numbers a count must refuse: negative, fractional, beyond `u32`, beyond `f64`'s finite
/// range (JSON has no NaN or infinity; this is the nearest it gets), strings, objects.
fn bad_counts() -> Vec<Value> {
    vec![json!(-1), json!(1.5), json!(4_294_967_296u64), json!(1e300), json!("10"), json!({"n": 1}), json!(true)]
}

// ------------------------------------------------------------------ descriptors

/// Keys whose mapping is free-form (any key is valid there): no unknown key is added to them.
const FREE_MAPS: &[&str] = &["labels", "features", "requires", "env", "resources", "capacity", "proximity_classes"];
/// Keys whose value is a name.
const NAME_KEYS: &[&str] =
    &["name", "entry", "from", "to", "owner", "zone", "host", "service", "region", "attach", "tag", "profile"];
/// Keys whose value is a count or a bounded number.
const NUMBER_KEYS: &[&str] = &[
    "per_instance",
    "min_free",
    "min_instances",
    "max_instances",
    "port",
    "count",
    "weight",
    "importance",
    "performance",
];
/// Keys whose value is a quantity with a unit.
const QUANTITY_KEYS: &[&str] = &[
    "r_min",
    "r_med",
    "r_max",
    "latency",
    "bandwidth",
    "max_latency",
    "rtt",
    "session_bandwidth",
    "one_way_per_km",
    "per_hop",
    "access",
    "cpu",
    "memory",
    "disk",
    "idle",
    "cost_per_gb",
    "cpu_hour",
    "memory_gib_hour",
];

/// A descriptor case: a file name and its text.
struct Descriptor {
    what: String,
    file: String,
    text: String,
}

/// Replaces the plain scalar at `node` (one line) with `new`.
fn replace_scalar(text: &str, node: &Node, new: &str) -> Option<String> {
    let NodeKind::Scalar(s) = &node.kind else { return None };
    if s.quoted || s.text.contains('\n') {
        return None;
    }
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let line = lines.get_mut(node.span.line - 1)?;
    let start: usize = line.char_indices().nth(node.span.column - 1).map(|(i, _)| i)?;
    if !line[start..].starts_with(&s.text) {
        return None;
    }
    line.replace_range(start..start + s.text.len(), new);
    Some(lines.join("\n") + "\n")
}

/// Adds `zz_unknown: 1` to the mapping whose first key is at `first_key`.
fn add_unknown_key(text: &str, map: &Node, flow: bool) -> Option<String> {
    let (first, _) = map.as_map()?.first()?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let line_no = first.span.line - 1;
    let col = first.span.column - 1;
    if flow {
        let line = lines.get_mut(line_no)?;
        let at: usize = line.char_indices().nth(col).map(|(i, _)| i)?;
        line.insert_str(at, "zz_unknown: 1, ");
    } else {
        lines.insert(line_no + 1, format!("{}zz_unknown: 1", " ".repeat(col)));
    }
    Some(lines.join("\n") + "\n")
}

/// Walks `node` (under `key`), generating mutations of `text`.
fn mutate(text: &str, node: &Node, key: &str, out: &mut Vec<(String, String)>) {
    match &node.kind {
        NodeKind::Map(entries) => {
            let time_windows =
                key == "slots" && entries.iter().any(|(k, _)| k.as_scalar().is_some_and(|s| s.text.contains(':')));
            if !FREE_MAPS.contains(&key) && !time_windows {
                let line = text.lines().nth(node.span.line.saturating_sub(1)).unwrap_or("");
                let flow = line.trim_end().ends_with('}') && line.contains('{');
                if let Some(t) = add_unknown_key(text, node, flow) {
                    out.push((format!("an unknown key in the mapping at line {} ({key})", node.span.line), t));
                }
            }
            for (k, v) in entries {
                let Some(k) = k.as_scalar().map(|s| s.text.clone()) else { continue };
                if FREE_MAPS.contains(&key) {
                    if key != "resources" && key != "capacity" {
                        continue;
                    }
                    // A resource amount: negative, malformed and beyond its maximum.
                    for bad in ["-1", "lots", "99999999999999999999"] {
                        if let Some(t) = replace_scalar(text, v, bad) {
                            out.push((format!("{key}.{k} = {bad}"), t));
                        }
                    }
                    continue;
                }
                if v.as_scalar().is_some() {
                    let bad: &[&str] = if NAME_KEYS.contains(&k.as_str()) {
                        &["'..'", "'.'", "Bad_Name", "a/b"]
                    } else if NUMBER_KEYS.contains(&k.as_str()) {
                        &["-1", "4294967296", "1e999"]
                    } else if QUANTITY_KEYS.contains(&k.as_str()) {
                        &["-5", "5 parsecs"]
                    } else if k == "kind" {
                        &["Servce"]
                    } else {
                        &[]
                    };
                    for b in bad {
                        if let Some(t) = replace_scalar(text, v, b) {
                            out.push((format!("{k} at line {} = {b}", v.span.line), t));
                        }
                    }
                } else {
                    mutate(text, v, &k, out);
                }
            }
        }
        NodeKind::Seq(items) => {
            for item in items {
                mutate(text, item, key, out);
            }
        }
        _ => {}
    }
}

/// The issue's descriptor cases, written out.
fn issue_descriptors() -> Vec<(String, String)> {
    let svc = |extra: &str| format!("kind: Service\nname: s\ncomponents:\n  - name: a\n{extra}");
    let mut bomb = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
    for i in 1..10 {
        bomb.push_str(&format!("l{i}: &l{i} [{}]\n", vec![format!("*l{}", i - 1); 9].join(", ")));
    }
    let bomb_service = format!("kind: Service\nname: bomb\ncomponents:\n  - name: a\n    env_bomb: &x [1]\n{bomb}");
    vec![
        ("a billion laughs (9 levels of 9 aliases)".into(), bomb),
        ("a billion laughs inside a service".into(), bomb_service),
        ("service name .".into(), "kind: Service\nname: '.'\ncomponents:\n  - name: a\n".into()),
        ("service name ..".into(), "kind: Service\nname: '..'\ncomponents:\n  - name: a\n".into()),
        ("per_instance: 4294967295".into(), svc("    slots: {per_instance: 4294967295}\n")),
        ("min_instances: 100000".into(), svc("    scaling: {min_instances: 100000, max_instances: 100000}\n")),
        ("max below min".into(), svc("    scaling: {min_instances: 5, max_instances: 2}\n")),
        ("an unknown field".into(), svc("    colour: red\n")),
        ("an unterminated quote in run".into(), svc("    run: zonal workload --name 'a b\n")),
        ("an unterminated double quote in run".into(), svc("    run: zonal workload --name \"a b\n")),
        ("an empty run list".into(), svc("    run: []\n")),
        ("a run list of a mapping".into(), svc("    run: [{a: 1}]\n")),
        ("nesting 100 deep".into(), format!("{}1{}", "[".repeat(100), "]".repeat(100))),
        ("block nesting 100 deep".into(), (0..100).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect()),
        ("a duplicate key".into(), "kind: Service\nname: s\nname: t\ncomponents:\n  - name: a\n".into()),
        ("a tab for indentation".into(), "kind: Service\nname: s\ncomponents:\n\t- name: a\n".into()),
        ("an alias to no anchor".into(), "kind: Service\nname: *nothing\ncomponents:\n  - name: a\n".into()),
        ("a merge of a scalar".into(), "kind: Service\nname: s\ncomponents:\n  - <<: 5\n    name: a\n".into()),
        ("a port of 70000".into(), svc("    ports: [{name: p, port: 70000}]\n")),
        ("a port named ..".into(), svc("    ports: [{name: '..'}]\n")),
        ("a channel to itself".into(), "kind: Service\nname: s\ncomponents:\n  - name: a\nchannels:\n  - {from: a, to: a}\n".into()),
        ("an evaluator URL that is not http".into(), "kind: Service\nname: s\nevaluator: {url: 'file:///etc/passwd'}\ncomponents:\n  - name: a\n".into()),
        ("a duration of 1e300 hours".into(), "kind: Service\nname: s\nsla: {r_min: 1ms, r_med: 2ms, r_max: 1e300h}\ncomponents:\n  - name: a\n".into()),
        ("an importance of 1e300".into(), "kind: Service\nname: s\nsla: {importance: 1e300}\ncomponents:\n  - name: a\n".into()),
        ("a memory of 2Ei".into(), svc("    resources: {memory: 2Ei}\n")),
        ("a CPU of 10 million cores".into(), svc("    resources: {cpu: 10000000}\n")),
        ("a host count of 4294967295".into(), "kind: Infrastructure\nname: i\nzones:\n  - name: z\n    hosts:\n      - {name: h, count: 4294967295, capacity: {cpu: 1}}\n".into()),
        ("a latitude of 999".into(), "kind: Infrastructure\nname: i\nzones:\n  - name: z\n    location: {lat: 999, lon: 0}\n".into()),
        ("a longitude of .nan".into(), "kind: Demand\nname: d\nregions:\n  - name: r\n    location: {lat: 0, lon: .nan}\n".into()),
        ("a weight of .inf".into(), "kind: Demand\nname: d\nregions:\n  - {name: r, weight: .inf, location: {lat: 0, lon: 0}}\n".into()),
        ("demand of 4294967295 slots".into(), "kind: Demand\nname: d\nregions:\n  - {name: r, location: {lat: 0, lon: 0}}\ndemand:\n  - {service: s, region: r, slots: 4294967295}\n".into()),
        ("a name with upper case".into(), "kind: Service\nname: Web\ncomponents:\n  - name: a\n".into()),
        ("a name of 64 characters".into(), format!("kind: Service\nname: {}\ncomponents:\n  - name: a\n", "n".repeat(64))),
        ("a zone named a/b".into(), "kind: Infrastructure\nname: i\nzones:\n  - name: a/b\n".into()),
        ("a document of a list".into(), "- kind: Service\n".into()),
        ("no document".into(), "# nothing\n".into()),
        ("a TOSCA template with templates that become one name".into(), "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n    web_a:\n      type: tosca.nodes.FusionService\n    Web-A:\n      type: tosca.nodes.FusionComponent\n".into()),
        ("a TOSCA template_name that is not a name".into(), "tosca_definitions_version: tosca_simple_yaml_1_3\nmetadata: {template_name: 'My Service'}\ntopology_template:\n  node_templates:\n    web:\n      type: tosca.nodes.FusionService\n".into()),
    ]
}

/// Every descriptor case: the issue's, and the generated ones (each native example mutated
/// field by field).
fn descriptor_cases() -> Vec<Descriptor> {
    let mut out = Vec::new();
    for (i, (what, text)) in issue_descriptors().into_iter().enumerate() {
        out.push(Descriptor { what, file: format!("issue-{i}.yaml"), text });
    }
    for ex in [
        "web.yaml",
        "epg.yaml",
        "input-chain.yaml",
        "echo-bench.yaml",
        "demand.yaml",
        "knowledge-base.yaml",
        "infrastructure.yaml",
    ] {
        let text = std::fs::read_to_string(example(ex)).expect("example");
        let docs = yaml::parse(&text).unwrap_or_else(|(_, e)| panic!("{ex}: {e:?}"));
        let mut mutations = Vec::new();
        for d in &docs {
            mutate(&text, d, "", &mut mutations);
        }
        // The infrastructure is long and regular: every 3rd mutation covers each kind of field.
        let step = if ex == "infrastructure.yaml" { 3 } else { 1 };
        for (j, (what, t)) in mutations.into_iter().enumerate().filter(|(j, _)| j % step == 0) {
            out.push(Descriptor {
                what: format!("{ex}: {what}"),
                file: format!("{}-{j}.yaml", ex.trim_end_matches(".yaml")),
                text: t,
            });
        }
    }
    out
}

// ------------------------------------------------------------------ a stand-in domain for the zone

/// Accepts a zone's registration (keeping the key it hands over) and its heartbeats.
fn stand_in_domain() -> (String, Arc<Mutex<Option<String>>>) {
    use axum::routing::{post, put};
    let key: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let k = key.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let app = axum::Router::new()
                .route(
                    "/1.0/zones",
                    post(move |axum::Json(reg): axum::Json<Value>| async move {
                        *k.lock().expect("key") = reg["api_key"].as_str().map(str::to_string);
                        let zone = json!({"name": reg["name"], "endpoint": reg["endpoint"], "state": "available",
                            "tier": null, "hosts": 0, "capacity": {}, "free": {}, "services": [], "instances": 0,
                            "slots": {"total": 0, "free": 0}, "last_seen_ms": null});
                        (
                            axum::http::StatusCode::CREATED,
                            axum::Json(json!({"domain": {"id": "stand-in", "name": "stand-in"}, "zone": zone})),
                        )
                    }),
                )
                .route("/1.0/zones/{z}/status", put(|| async { axum::Json(json!({"status": "ok"})) }));
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(listener, app).await;
        });
    });
    (format!("http://{addr}"), key)
}

// ------------------------------------------------------------------ the test

fn addr_of(url: &str) -> String {
    url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn bad_inputs_are_refused_and_change_nothing() {
    let started = Instant::now();
    let mut h = Harness::new();
    let (domain, admin) = h.domain("127.0.0.1:0");
    let d_addr = addr_of(&domain.url);
    let admin_client = h.client(&domain.url, Some(&admin));
    let provider = h.token(&admin_client, "provider", "acme");
    // One registered service, so that routes about a service reach their body and query checks.
    let web = std::fs::read_to_string(example("web.yaml")).expect("web.yaml");
    h.call(&admin_client, "POST", "/1.0/services", Some(json!({"manifest": web})))
        .unwrap_or_else(|e| panic!("register web: {e:?}"));

    // A zone, registered with a stand-in domain.
    let (stand_in, key) = stand_in_domain();
    let zone_state = h.path().join("zone-z");
    let zone_ready = h.path().join("zone-z.url");
    let infra = example("infrastructure.yaml");
    let (mut zone_child, zone_log) = h.spawn(
        &[
            "zone",
            "--name",
            "antwerp-edge",
            "--listen",
            "127.0.0.1:0",
            "--state",
            zone_state.to_str().expect("path"),
            "--domain",
            &stand_in,
            "--infrastructure",
            infra.to_str().expect("path"),
            "--heartbeat",
            "1h",
            "--ready-file",
            zone_ready.to_str().expect("path"),
        ],
        &[("ZONAL_ZONE_TOKEN", "stand-in")],
        "zone-z.log",
    );
    let zone_url = support::wait_for("the zone's ready file", Duration::from_secs(30), || {
        if let Ok(Some(s)) = zone_child.try_wait() {
            panic!("zone exited: {s}: {}", std::fs::read_to_string(&zone_log).unwrap_or_default());
        }
        std::fs::read_to_string(&zone_ready).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    });
    let zone_key =
        support::wait_for("the zone's registration", Duration::from_secs(30), || key.lock().expect("key").clone());
    let z_addr = addr_of(&zone_url);
    // The zone's first writes (its identity, the domain binding) are done once it is bound.
    support::wait_for("the zone to be bound", Duration::from_secs(30), || {
        let a = send(&z_addr, &request("GET", b"/1.0/domain", &[bearer(&zone_key)], b""));
        (a.status == 200).then_some(())
    });
    // A service registered at the zone, for the routes about one.
    let reg = request(
        "POST",
        b"/1.0/services",
        &[bearer(&zone_key), json_type()],
        json!({"serviceid": "web", "manifest": web}).to_string().as_bytes(),
    );
    assert_eq!(send(&z_addr, &reg).status, 201, "register web at the zone");

    let domain_store = h.path().join("domain/domain.redb");
    let zone_store = zone_state.join("zone.redb");
    std::thread::sleep(Duration::from_millis(500));
    let mut domain_before = read(&domain_store);
    let mut zone_before = read(&zone_store);

    // ---------------------------------------------------------------- descriptors
    let descriptors = descriptor_cases();
    let dir = h.path().join("descriptors");
    std::fs::create_dir_all(&dir).expect("dir");
    let mut failures: Vec<String> = Vec::new();
    let mut posted = 0;
    let mut bomb_ms: Vec<f64> = Vec::new();
    // Control: every example validates alone, so each mutation is what makes it invalid.
    for ex in [
        "web.yaml",
        "epg.yaml",
        "input-chain.yaml",
        "echo-bench.yaml",
        "demand.yaml",
        "knowledge-base.yaml",
        "infrastructure.yaml",
    ] {
        let out = std::process::Command::new(ZONAL)
            .args(["validate", example(ex).to_str().expect("path")])
            .output()
            .expect("run");
        assert!(out.status.success(), "{ex} must validate alone: {}", String::from_utf8_lossy(&out.stderr));
    }
    for d in &descriptors {
        let path: PathBuf = dir.join(&d.file);
        std::fs::write(&path, &d.text).expect("write");
        let out = std::process::Command::new(ZONAL)
            .args(["validate", path.to_str().expect("path")])
            .env_remove("ZONAL_URL")
            .output()
            .expect("run zonal validate");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let located = stderr.lines().any(|l| {
            l.strip_prefix(&format!("{}:", path.display()))
                .and_then(|rest| rest.split(':').take(2).map(|n| n.parse::<usize>().ok()).collect::<Option<Vec<_>>>())
                .is_some_and(|lc| lc.len() == 2)
        });
        if out.status.code() != Some(1) || !located {
            failures.push(format!("validate {} ({}): exit {:?}, stderr:\n{stderr}", d.file, d.what, out.status.code()));
        }
        // Services (and what fails before its kind is known) also go to the domain.
        if d.text.contains("kind: Service") || d.text.contains("tosca_definitions_version") || !d.text.contains("kind:")
        {
            posted += 1;
            let body = json!({"manifest": d.text}).to_string();
            let t = Instant::now();
            let a = send(&d_addr, &request("POST", b"/1.0/services", &[bearer(&admin), json_type()], body.as_bytes()));
            if d.what.contains("billion laughs") {
                bomb_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            check(&mut failures, &format!("POST /1.0/services with {} ({})", d.file, d.what), &a);
            let now = read(&domain_store);
            if now != domain_before {
                failures.push(format!("POST /1.0/services with {} ({}) changed the domain's store", d.file, d.what));
                domain_before = now;
            }
        }
    }

    // ---------------------------------------------------------------- API bodies, headers, queries, paths
    let mut c =
        Cases { list: Vec::new(), admin: admin.clone(), provider: provider.clone(), zone_key: zone_key.clone() };
    domain_cases(&mut c, &web);
    zone_cases(&mut c, &web);
    header_query_path_cases(&mut c);
    let http_cases = c.list.len();
    for case in &c.list {
        let (addr, store, before) = match case.target {
            Target::Domain => (&d_addr, &domain_store, &mut domain_before),
            Target::Zone => (&z_addr, &zone_store, &mut zone_before),
        };
        let a = send(addr, &case.raw);
        check(&mut failures, &format!("{:?} {}", case.target, case.what), &a);
        if case.status.is_some_and(|s| s != a.status) {
            failures.push(format!("{:?} {}: expected {:?}, got {}", case.target, case.what, case.status, a.status));
        }
        let now = read(store);
        if now != *before {
            failures.push(format!(
                "{:?} {} changed the store (answer {} {})",
                case.target,
                case.what,
                a.status,
                a.text()
            ));
            *before = now;
        }
    }

    // Control: a real write does change the store, so the comparison above sees writes.
    let a = send(
        &d_addr,
        &request("POST", b"/1.0/users", &[bearer(&admin), json_type()], br#"{"name": "control", "role": "provider"}"#),
    );
    assert_eq!(a.status, 201, "{}", a.text());
    assert_ne!(read(&domain_store), domain_before, "a write changes domain.redb");

    let total = descriptors.len() + posted + http_cases;
    eprintln!(
        "bad-input corpus: {} descriptor files through zonal validate, {posted} of them through POST /1.0/services, {http_cases} HTTP cases ({} at the domain, {} at the zone): {total} cases, {} failures, in {:.1} s; alias bomb through POST /1.0/services: {:?} ms",
        descriptors.len(),
        c.list.iter().filter(|x| x.target == Target::Domain).count(),
        c.list.iter().filter(|x| x.target == Target::Zone).count(),
        failures.len(),
        started.elapsed().as_secs_f64(),
        bomb_ms.iter().map(|m| (m * 10.0).round() / 10.0).collect::<Vec<_>>(),
    );
    if let Ok(path) = std::env::var("ZONAL_CORPUS_FAILURES") {
        // Where to write every failure (to compare runs, e.g. against the code before a fix).
        let _ = std::fs::write(path, failures.join("\n---\n"));
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases were not refused cleanly:\n{}",
        failures.len(),
        failures.join("\n---\n")
    );
    assert!(total >= 300, "the corpus has {total} cases; the issue asks for at least 300");
    let mut zone_child = zone_child;
    let _ = zone_child.kill();
    let _ = zone_child.wait();
    let mut domain = domain;
    domain.stop();
    h.assert_no_leftovers();
}

/// A clear refusal: 4xx with `{error, detail}`.
fn check(failures: &mut Vec<String>, what: &str, a: &Answer) {
    let body: Option<Value> = serde_json::from_slice(&a.body).ok();
    let clear = body.as_ref().is_some_and(|b| {
        b["error"].as_str().is_some_and(|e| !e.is_empty()) && b["detail"].as_str().is_some_and(|d| !d.is_empty())
    });
    if !(400..500).contains(&a.status) || !clear {
        failures.push(format!("{what}: {} {}", a.status, a.text().chars().take(400).collect::<String>()));
    }
}

fn domain_cases(c: &mut Cases, web: &str) {
    use Target::Domain as D;
    // POST /1.0/zones
    let zone = json!({"name": "z1", "endpoint": "http://127.0.0.1:9", "api_key": "k", "hosts": [{"name": "h", "capacity": {}}]});
    c.malformed_bodies(D, "POST", "/1.0/zones", &zone);
    c.required(D, "POST", "/1.0/zones", &zone, &["name", "endpoint", "api_key"]);
    c.fields(D, "POST", "/1.0/zones", &zone, "name", &bad_names());
    c.fields(D, "POST", "/1.0/zones", &zone, "endpoint", &[json!("ftp://x"), json!(""), json!(5)]);
    c.fields(
        D,
        "POST",
        "/1.0/zones",
        &zone,
        "location",
        &[
            json!({"lat": 999, "lon": 0}),
            json!({"lat": 0, "lon": -181}),
            json!({"lat": null, "lon": null}),
            json!([null, null]),
            json!({"lat": 1}),
        ],
    );
    c.fields(
        D,
        "POST",
        "/1.0/zones",
        &zone,
        "hosts",
        &[
            json!([{"name": "..", "capacity": {}}]),
            json!([{"name": "h", "capacity": {}}, {"name": "h", "capacity": {}}]),
            json!([{"name": "h", "capacity": {"cpu": {"value": 1u64 << 62, "unit": "millicores"}}}]),
            json!([{"name": "h", "capacity": {"memory": {"value": 5, "unit": "millicores"}}}]),
            json!([{"name": "h", "capacity": {"cpu": {"value": -1, "unit": "millicores"}}}]),
            json!([{"name": "h"}]),
            json!({"h": 1}),
        ],
    );
    // PUT /1.0/zones/{z}/status
    let report = json!({"hosts": [], "services": [], "instances": 0});
    c.malformed_bodies(D, "PUT", "/1.0/zones/antwerp-edge/status", &report);
    c.fields(D, "PUT", "/1.0/zones/antwerp-edge/status", &report, "instances", &bad_counts());
    // POST /1.0/services
    let svc = json!({"manifest": web});
    c.malformed_bodies(D, "POST", "/1.0/services", &svc);
    c.required(D, "POST", "/1.0/services", &svc, &["manifest"]);
    c.fields(D, "POST", "/1.0/services", &svc, "serviceid", &[json!(".."), json!("other"), json!(5)]);
    c.fields(
        D,
        "POST",
        "/1.0/services",
        &svc,
        "manifest",
        &[json!(5), json!(["a"]), json!(""), json!("kind: Service\nname: '.'\ncomponents: [{name: a}]\n")],
    );
    // PUT /1.0/services/{s}/state
    let state = json!({"state": "terminate"});
    c.malformed_bodies(D, "PUT", "/1.0/services/web/state", &state);
    c.required(D, "PUT", "/1.0/services/web/state", &state, &["state"]);
    c.fields(
        D,
        "PUT",
        "/1.0/services/web/state",
        &state,
        "state",
        &[json!("bogus"), json!(""), json!(1), json!(["deploy"])],
    );
    // PUT /1.0/services/{s}/slots
    let slots = json!({"slots": 10});
    c.malformed_bodies(D, "PUT", "/1.0/services/web/slots", &slots);
    c.required(D, "PUT", "/1.0/services/web/slots", &slots, &["slots"]);
    let mut counts = bad_counts();
    counts.push(json!(10_000_001));
    c.fields(D, "PUT", "/1.0/services/web/slots", &slots, "slots", &counts);
    // POST /1.0/users and /1.0/tokens
    for path in ["/1.0/users", "/1.0/tokens"] {
        let user = json!({"name": "bob", "role": "provider"});
        c.malformed_bodies(D, "POST", path, &user);
        c.required(D, "POST", path, &user, &["name", "role"]);
        c.fields(D, "POST", path, &user, "name", &bad_names());
        c.fields(D, "POST", path, &user, "role", &[json!("god"), json!("instance"), json!(""), json!(1)]);
    }
    // PUT /1.0/geography
    let geo = json!({"regions": [{"name": "r", "location": {"lat": 50.0, "lon": 4.0}, "weight": 1.0}]});
    c.malformed_bodies(D, "PUT", "/1.0/geography", &geo);
    let region = |v: Value| json!([v]);
    c.fields(
        D, "PUT", "/1.0/geography", &geo, "regions",
        &[
            region(json!({"name": "r", "location": {"lat": 999, "lon": 0}, "weight": 1})),
            region(json!({"name": "r", "location": {"lat": 0, "lon": 181}, "weight": 1})),
            region(json!({"name": "r", "location": {"lat": null, "lon": null}, "weight": 1})),
            region(json!({"name": "r", "location": [null, null], "weight": 1})),
            region(json!({"name": "r", "location": {"lat": 0, "lon": 0, "alt": 5}, "weight": 1})),
            region(json!({"name": "r", "location": {"lat": 0, "lon": 0}, "weight": -1})),
            region(json!({"name": "r", "location": {"lat": 0, "lon": 0}, "weight": 0})),
            region(json!({"name": "r", "location": {"lat": 0, "lon": 0}, "weight": 1e300})),
            region(json!({"name": "..", "location": {"lat": 0, "lon": 0}, "weight": 1})),
            region(json!({"name": "r", "weight": 1})),
            region(json!({"name": "r", "attach": "..", "weight": 1})),
            json!([{"name": "r", "location": {"lat": 0, "lon": 0}, "weight": 1}, {"name": "r", "location": {"lat": 0, "lon": 0}, "weight": 1}]),
            json!([null, null]),
            json!({"r": 1}),
        ],
    );
    c.fields(
        D,
        "PUT",
        "/1.0/geography",
        &geo,
        "latencies",
        &[
            json!([{"from": "a", "to": "a", "rtt": "1ms"}]),
            json!([{"from": "..", "to": "a", "rtt": "1ms"}]),
            json!([{"from": "a", "to": "b", "rtt": "-1ms"}]),
            json!([{"from": "a", "to": "b", "rtt": "1e300h"}]),
        ],
    );
    c.fields(
        D,
        "PUT",
        "/1.0/geography",
        &geo,
        "latency_model",
        &[json!({"one_way_per_km": "fast", "per_hop": "1ms", "access": "0ms"}), json!(5)],
    );
    c.fields(
        D,
        "PUT",
        "/1.0/geography",
        &geo,
        "demand",
        &[
            json!([{"service": "web", "region": "nowhere", "slots": 1}]),
            json!([{"service": "web", "region": "r", "slots": 4_294_967_295u64}]),
            json!([{"service": "..", "region": "r", "slots": 1}]),
            json!([{"service": "web", "region": "r", "slots": -1}]),
        ],
    );
    // POST /1.0/consolidation
    let cons = json!({"apply": false});
    c.malformed_bodies(D, "POST", "/1.0/consolidation", &cons);
    c.fields(D, "POST", "/1.0/consolidation", &cons, "per_move_watts", &[json!(-1), json!("1"), json!([1])]);
    c.fields(D, "POST", "/1.0/consolidation", &cons, "time_limit_ms", &[json!(0), json!(99_999_999), json!(-5)]);
    c.fields(D, "POST", "/1.0/consolidation", &cons, "zones", &[json!(["nosuch"]), json!(".."), json!([1])]);
    c.fields(D, "POST", "/1.0/consolidation", &cons, "max_moves", &[json!(-1), json!(1.5)]);
    // POST /1.0/plans (a valid dry run answers 200; only invalid ones are sent)
    let plan = json!({"manifest": web});
    c.malformed_bodies(D, "POST", "/1.0/plans", &json!({"serviceid": "web", "slots": 1}));
    c.fields(D, "POST", "/1.0/plans", &plan, "slots", &counts);
    c.fields(
        D,
        "POST",
        "/1.0/plans",
        &plan,
        "manifest",
        &[json!("kind: Service\nname: '..'\ncomponents: [{name: a}]\n"), json!(1)],
    );
    c.json(D, "POST", "/1.0/plans", "neither manifest nor serviceid", &json!({}));
    c.json(D, "POST", "/1.0/plans", "an unknown serviceid", &json!({"serviceid": "nosuch"}));
    // PUT /1.0/infrastructure and /1.0/knowledge-base
    let infra = json!({"name": "i", "domain": null, "zones": [{"name": "z", "location": {"lat": 1.0, "lon": 2.0}, "tier": null,
        "price": {"cpu_hour": "0", "memory_gib_hour": "0", "gpu_hour": "0", "egress_per_gb": "0"},
        "hosts": [{"name": "h", "capacity": {"cpu": {"value": 1000, "unit": "millicores"}}, "features": {}, "power": {"idle": "0W", "max": "0W"}, "available": true}], "labels": {}}],
        "links": [], "latencies": [], "latency_model": {"one_way_per_km": "0.005ms", "per_hop": "0.1ms", "access": "0ms"}, "proximity_classes": {}});
    c.malformed_bodies(D, "PUT", "/1.0/infrastructure", &infra);
    c.required(D, "PUT", "/1.0/infrastructure", &infra, &["name", "zones"]);
    c.fields(D, "PUT", "/1.0/infrastructure", &infra, "name", &bad_names()[..4]);
    for (what, f) in [
        ("zone named ..", json!({"name": ".."})),
        ("zone at lat 999", json!({"location": {"lat": 999, "lon": 0}})),
        (
            "host with 1e12 cores",
            json!({"hosts": [{"name": "h", "capacity": {"cpu": {"value": 1_000_000_000_000_000u64, "unit": "millicores"}}, "features": {}, "power": {"idle": "0W", "max": "0W"}, "available": true}]}),
        ),
        (
            "host named Big",
            json!({"hosts": [{"name": "Big", "capacity": {}, "features": {}, "power": {"idle": "0W", "max": "0W"}, "available": true}]}),
        ),
        ("an unknown zone field", json!({"colour": "red"})),
    ] {
        let mut body = infra.clone();
        if let (Some(zone), Some(m)) = (body["zones"][0].as_object_mut(), f.as_object()) {
            for (k, v) in m {
                zone.insert(k.clone(), v.clone());
            }
        }
        c.json(D, "PUT", "/1.0/infrastructure", what, &body);
    }
    c.fields(
        D,
        "PUT",
        "/1.0/infrastructure",
        &infra,
        "links",
        &[
            json!([{"from": "z", "to": "nowhere", "latency": null, "bandwidth": "1Gbps", "cost_per_gb": "0"}]),
            json!([{"from": "z", "to": "z", "latency": "-1ms", "bandwidth": null, "cost_per_gb": "0"}]),
            json!([{"from": "z", "to": "y", "latency": null, "bandwidth": "999999Tbps", "cost_per_gb": "0"}]),
        ],
    );
    for path in DOCUMENT_ROUTES {
        let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(17 << 20));
        c.body(D, "PUT", path, "a 17 MiB document", big.as_bytes());
        c.expect(413);
    }
    let kb = json!({"name": "kb", "profiles": [{"name": "p", "arch": null, "resources": {}, "accelerator": null}], "tags": [{"name": "t", "mode": "hint", "candidates": [{"profile": "p", "performance": 1.0}]}]});
    c.malformed_bodies(D, "PUT", "/1.0/knowledge-base", &kb);
    c.required(D, "PUT", "/1.0/knowledge-base", &kb, &["name", "profiles", "tags"]);
    c.fields(
        D,
        "PUT",
        "/1.0/knowledge-base",
        &kb,
        "tags",
        &[
            json!([{"name": "t", "mode": "hint", "candidates": [{"profile": "q", "performance": 1.0}]}]),
            json!([{"name": "t", "mode": "hint", "candidates": [{"profile": "p", "performance": -1.0}]}]),
            json!([{"name": "t", "mode": "sometimes", "candidates": []}]),
            json!([{"name": "T T", "mode": "hint", "candidates": [{"profile": "p", "performance": 1.0}]}]),
        ],
    );
    c.fields(
        D,
        "PUT",
        "/1.0/knowledge-base",
        &kb,
        "profiles",
        &[
            json!([{"name": "..", "resources": {}}]),
            json!([{"name": "p", "resources": {"gpu": {"value": 1u64 << 40, "unit": "count"}}}]),
        ],
    );
}

fn zone_cases(c: &mut Cases, web: &str) {
    use Target::Zone as Z;
    // POST /1.0/services: `.` and `..` are refused here too (the issue: the zone kept them).
    let svc =
        json!({"serviceid": "web2", "manifest": web.replace("name: web\ndescription", "name: web2\ndescription")});
    c.malformed_bodies(Z, "POST", "/1.0/services", &svc);
    c.required(Z, "POST", "/1.0/services", &svc, &["serviceid", "manifest"]);
    for bad in bad_names() {
        let name = bad.as_str().unwrap_or_default().to_string();
        let manifest = format!("kind: Service\nname: {}\ncomponents:\n  - name: a\n", json!(name));
        c.json(
            Z,
            "POST",
            "/1.0/services",
            &format!("service {bad} (manifest and serviceid)"),
            &json!({"serviceid": name, "manifest": manifest}),
        );
    }
    c.fields(Z, "POST", "/1.0/services", &svc, "serviceid", &[json!(".."), json!("."), json!("web"), json!(7)]);
    c.fields(
        Z,
        "POST",
        "/1.0/services",
        &svc,
        "manifest",
        &[json!(""), json!("kind: Service\nname: web2\ncomponents: [{name: a, slots: {per_instance: 4294967295}}]\n")],
    );
    // PUT state, slots
    let state = json!({"state": "terminate"});
    c.malformed_bodies(Z, "PUT", "/1.0/services/web/state", &state);
    c.fields(Z, "PUT", "/1.0/services/web/state", &state, "state", &[json!("bogus"), json!(3)]);
    let slots = json!({"instances": {"web": 1}});
    c.malformed_bodies(Z, "PUT", "/1.0/services/web/slots", &slots);
    c.required(Z, "PUT", "/1.0/services/web/slots", &slots, &["instances"]);
    c.fields(
        Z,
        "PUT",
        "/1.0/services/web/slots",
        &slots,
        "instances",
        &[
            json!({"web": -1}),
            json!({"web": 4_294_967_296u64}),
            json!({"web": 7}),
            json!({"nosuch": 1}),
            json!({"web": "1"}),
            json!([1]),
        ],
    );
    c.fields(Z, "PUT", "/1.0/services/web/slots", &slots, "slots", &[json!(-1), json!(10_000_001), json!(1.5)]);
    c.fields(
        Z,
        "PUT",
        "/1.0/services/web/slots",
        &slots,
        "hosts",
        &[json!({"web": {"nohost": 1}}), json!({"web": {"antwerp-0": 5}})],
    );
    c.fields(
        Z,
        "PUT",
        "/1.0/services/web/slots",
        &slots,
        "remote_peers",
        &[json!({"web/http": "x"}), json!({"nosuch/p": "127.0.0.1:1"})],
    );
    // POST instances, offers
    c.malformed_bodies(Z, "POST", "/1.0/services/web/instances", &json!({"component": "web"}));
    c.json(Z, "POST", "/1.0/services/web/instances", "an unknown component", &json!({"component": "nosuch"}));
    let offer = json!({"manifest": web, "slots": 10});
    c.malformed_bodies(Z, "POST", "/1.0/services/web/offers", &offer);
    c.fields(
        Z,
        "POST",
        "/1.0/services/web/offers",
        &offer,
        "slots",
        &[json!(0), json!(-1), json!(10_000_001), json!(1e300)],
    );
    c.fields(
        Z,
        "POST",
        "/1.0/services/web/offers",
        &offer,
        "deadline_ms",
        &[json!(0), json!(-1), json!(86_400_000u64 * 365)],
    );
    c.fields(Z, "POST", "/1.0/services/web/offers", &offer, "regions", &[json!({"r": -1.0}), json!({"r": "x"})]);
    c.fields(
        Z,
        "POST",
        "/1.0/services/web/offers",
        &offer,
        "manifest",
        &[json!("kind: Service\nname: web\ncomponents: [{name: '..'}]\n")],
    );
    c.json(Z, "POST", "/1.0/offers", "no serviceid", &offer);
    // Instances: state, slots, move, configs
    c.malformed_bodies(Z, "PUT", "/1.0/instances/nosuch/state", &json!({"state": "terminate"}));
    let islots = json!({"max": 10, "free": 5, "used": 5});
    c.malformed_bodies(Z, "PUT", "/1.0/instances/nosuch/slots", &islots);
    c.fields(Z, "PUT", "/1.0/instances/nosuch/slots", &islots, "max", &bad_counts());
    c.malformed_bodies(Z, "POST", "/1.0/instances/nosuch/move", &json!({"host": "antwerp-0"}));
    c.json(Z, "POST", "/1.0/instances/nosuch/move", "host as a number", &json!({"host": 1}));
    c.malformed_bodies(Z, "POST", "/1.0/instances/nosuch/configs", &json!({"name": "c", "port": 1}));
    c.json(Z, "POST", "/1.0/instances/nosuch/configs", "config named ..", &json!({"name": "..", "port": 1}));
    c.json(Z, "POST", "/1.0/instances/nosuch/configs", "port 70000", &json!({"name": "c", "port": 70000}));
    // Meters (a Ceilometer sample or a list of them)
    c.body(Z, "POST", "/1.0/meters", "not JSON", b"{");
    c.body(Z, "POST", "/1.0/meters", "bad UTF-8", b"\xff");
    c.json(
        Z,
        "POST",
        "/1.0/meters",
        "no counter_volume",
        &json!({"counter_name": "fusioncounter", "resource_metadata": {"instanceId": "x"}}),
    );
    c.json(
        Z,
        "POST",
        "/1.0/meters",
        "an unknown instance",
        &json!({"counter_name": "fusioncounter", "counter_volume": 1, "resource_metadata": {"instanceId": "nosuch"}}),
    );
    c.json(Z, "POST", "/1.0/meters", "a list of numbers", &json!([1, 2]));
    // Domain binding, DCA, context
    c.malformed_bodies(Z, "PUT", "/1.0/domain", &json!({"url": "http://127.0.0.1:1", "id": "other"}));
    c.json(Z, "PUT", "/1.0/domain", "url as a number", &json!({"url": 5}));
    c.json(Z, "PUT", "/1.0/domain", "another domain", &json!({"url": "http://127.0.0.1:1", "id": "other"}));
    c.malformed_bodies(Z, "PUT", "/1.0/dca", &json!({"kind": "process"}));
    c.json(Z, "PUT", "/1.0/dca", "an unknown kind", &json!({"kind": "mainframe"}));
    c.body(Z, "PUT", "/1.0/context/web/k", "not JSON", b"{");
    c.body(Z, "PUT", "/1.0/context/web/k", "bad UTF-8", b"\"\xff\"");
    c.body(
        Z,
        "PUT",
        "/1.0/context/web/k",
        "deep nesting",
        format!("{}1{}", "[".repeat(1000), "]".repeat(1000)).as_bytes(),
    );
    c.body(Z, "PUT", "/1.0/context/web/k", "a 2 MiB value", format!("\"{}\"", "x".repeat(2 << 20)).as_bytes());
    c.json(Z, "PUT", "/1.0/context/nosuch/k", "an unknown namespace", &json!(1));
    c.json(Z, "PUT", "/1.0/context/../k", "namespace ..", &json!(1));
    let long_key = format!("/1.0/context/web/{}", "k".repeat(2000));
    c.json(Z, "PUT", &long_key, "a 2000-byte key", &json!(1));
    c.json(Z, "PUT", "/1.0/context/web/a%01b", "a control character in the key", &json!(1));
}

fn header_query_path_cases(c: &mut Cases) {
    use Target::{Domain as D, Zone as Z};
    let body = br#"{"name": "eve", "role": "provider"}"#;
    let long = format!("Bearer {}", "a".repeat(60_000));
    let auths: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("no Authorization", None),
        ("wrong scheme", Some(b"Basic YWRtaW46YWRtaW4=".to_vec())),
        ("empty", Some(Vec::new())),
        ("Bearer alone", Some(b"Bearer".to_vec())),
        ("Bearer and a space", Some(b"Bearer ".to_vec())),
        ("an unknown token", Some(b"Bearer 0000000000000000000000000000000000000000000000000000000000000000".to_vec())),
        ("two tokens", Some(b"Bearer a b".to_vec())),
        ("60 KB token", Some(long.into_bytes())),
        ("not ASCII", Some(b"Bearer \xff\xfe\xc3\xa9".to_vec())),
        ("a token with a NUL-like escape", Some(b"Bearer \\u0000".to_vec())),
    ];
    for (target, path) in [(D, "/1.0/users"), (Z, "/1.0/services")] {
        for (what, auth) in &auths {
            let mut h = vec![json_type()];
            if let Some(a) = auth {
                h.push(("Authorization", a.clone()));
            }
            c.add(target, format!("POST {path}: Authorization {what}"), request("POST", path.as_bytes(), &h, body));
        }
    }
    // A provider may not act as an admin.
    let provider = c.provider.clone();
    c.add(D, "POST /1.0/users as a provider", request("POST", b"/1.0/users", &[bearer(&provider), json_type()], body));
    c.add(
        D,
        "PUT /1.0/geography as a provider",
        request("PUT", b"/1.0/geography", &[bearer(&provider), json_type()], b"{}"),
    );
    // The domain's token is not the zone's key, and the zone's key is nothing at the domain.
    let (admin, key) = (c.admin.clone(), c.zone_key.clone());
    c.add(
        Z,
        "POST /1.0/services with the domain's admin token",
        request("POST", b"/1.0/services", &[bearer(&admin), json_type()], body),
    );
    c.add(D, "POST /1.0/users with the zone's key", request("POST", b"/1.0/users", &[bearer(&key), json_type()], body));

    // Query strings.
    let get = |c: &mut Cases, target: Target, path: &str| {
        let t = c.token(target);
        c.add(target, format!("GET {path}"), request("GET", path.as_bytes(), &[bearer(&t)], b""));
    };
    for q in [
        "lat=999&lon=0",
        "lat=0&lon=181",
        "lat=-90.0001&lon=0",
        "lat=abc&lon=1",
        "lat=NaN&lon=0",
        "lat=inf&lon=0",
        "lat=1e400&lon=0",
        "lat=1",
        "lon=1",
        "lat=&lon=",
        "lat=1&lat=2&lon=3",
        "lat=1&lon=2&region=antwerp",
        "region=",
        "region=..",
        "region=%00",
        "region=a&region=b",
        "lat=%ff&lon=0",
        "lat=1,2&lon=3",
    ] {
        get(c, D, &format!("/1.0/resolve/web?{q}"));
    }
    get(c, D, "/1.0/resolve/nosuch?lat=1&lon=2");
    get(c, D, "/1.0/services/web?instances=maybe");
    get(c, D, "/1.0/services/web?instances=1&instances=0");
    get(c, D, "/1.0/instances/nosuch/logs?lines=-1");
    get(c, D, "/1.0/instances/nosuch/logs?lines=99999999999999999999999");
    get(c, Z, "/1.0/instances/nosuch/logs?lines=abc");
    let t = c.admin.clone();
    c.add(
        D,
        "PUT state ?pending=maybe",
        request("PUT", b"/1.0/services/web/state?pending=maybe", &[bearer(&t), json_type()], br#"{"state": "deploy"}"#),
    );

    // Path segments.
    for (target, method, base, body) in [
        (D, "DELETE", "/1.0/services/", None),
        (D, "PUT", "/1.0/services/{}/state", Some(br#"{"state": "terminate"}"#.to_vec())),
        (D, "DELETE", "/1.0/users/", None),
        (D, "DELETE", "/1.0/zones/", None),
        (D, "GET", "/1.0/services/", None),
        (Z, "DELETE", "/1.0/services/", None),
        (Z, "PUT", "/1.0/services/{}/state", Some(br#"{"state": "terminate"}"#.to_vec())),
        (Z, "DELETE", "/1.0/instances/", None),
    ] {
        let long = "n".repeat(5000);
        for seg in [".", "..", "%2e%2e", "%2E", "a%2Fb", "..%2F..%2Fetc", "%00", "%ff", long.as_str(), "web%20", "WEB"]
        {
            let path = if base.contains("{}") { base.replace("{}", seg) } else { format!("{base}{seg}") };
            let tok = c.token(target);
            let mut h = vec![bearer(&tok)];
            if body.is_some() {
                h.push(json_type());
            }
            let shown: String = path.chars().take(60).collect();
            c.add(
                target,
                format!("{method} {shown}"),
                request(method, path.as_bytes(), &h, body.as_deref().unwrap_or(b"")),
            );
        }
    }
}
