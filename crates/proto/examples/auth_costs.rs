//! What the audit log and TLS cost, measured on this machine (loopback, one process):
//!
//! ```sh
//! cargo run --release -p zonal-proto --example auth_costs -- [N]
//! ```
//!
//! * an audit entry appended and `fdatasync`ed (`audit.jsonl`), and appended without sync
//!   (`audit-telemetry.jsonl`), in the directory given by `$AUDIT_DIR` (default: a temporary
//!   directory under /tmp);
//! * a write request (POST) answered by a router with and without the audit layer, over a
//!   kept-alive HTTP connection;
//! * a GET over plain HTTP and over HTTPS (rustls, TLS 1.3, ECDSA P-256), connection kept
//!   alive, and a fresh HTTPS connection per request (TCP + TLS handshake).
//!
//! Prints the median and 99th percentile of each, in microseconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::Router;
use serde_json::{json, Value};
use zonal_proto::audit::{Audit, AuditEntry};
use zonal_proto::server::{self, Access, AuditState, AuthState, Authenticate, HttpMetrics, Routes, TlsIdentity};
use zonal_proto::{Client, Principal, Role};

struct Anyone;

impl Authenticate for Anyone {
    fn authenticate(&self, _token: &str) -> Option<Principal> {
        Some(Principal { name: "bench".into(), role: Role::Admin })
    }
}

fn percentiles(mut us: Vec<f64>) -> (f64, f64) {
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

fn report(what: &str, us: Vec<f64>) {
    let n = us.len();
    let (p50, p99) = percentiles(us);
    println!("{what:<58} n={n:<5} p50 {p50:>9.1} µs   p99 {p99:>9.1} µs");
}

fn entry(i: u64) -> AuditEntry {
    let ts_ms = zonal_proto::now_ms();
    AuditEntry {
        ts_ms,
        time: zonal_proto::rfc3339(ts_ms),
        user: Some("acme".into()),
        role: Some("provider".into()),
        token_id: Some("0123456789ab".into()),
        method: "PUT".into(),
        path: format!("/1.0/services/s{i}/state"),
        route: Some("/1.0/services/{id}/state".into()),
        resource: Some(format!("s{i}")),
        status: 202,
        outcome: "ok".into(),
        request_id: Some(format!("1234-{i:x}")),
        telemetry: i % 2 == 1,
        zone: None,
    }
}

async fn write_handler() -> zonal_proto::openapi::Created<Value> {
    zonal_proto::openapi::Created(json!({"serviceid": "web", "state": "registered"}))
}

async fn read_handler() -> axum::Json<Value> {
    axum::Json(json!({"ok": true}))
}

fn app(audit: Option<Arc<Audit>>) -> Router {
    const ADMIN: Access = Access::Roles(&[Role::Admin]);
    let (router, index, _) = Routes::<()>::new()
        .add(Method::POST, "/things", "write", ADMIN, write_handler)
        .add(Method::GET, "/things", "read", ADMIN, read_handler)
        .into_parts();
    let router = router
        .layer(from_fn_with_state(AuthState { authenticator: Arc::new(Anyone), index }, server::auth))
        .layer(from_fn_with_state(Arc::new(HttpMetrics::default()), server::observe));
    match audit {
        Some(log) => router.layer(from_fn_with_state(AuditState { log, telemetry: &[] }, server::audit)),
        None => router,
    }
}

async fn start(app: Router, tls: Option<TlsIdentity>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(server::serve(listener, tls, app, std::future::pending()));
    addr
}

async fn time_requests(client: &Client, method: Method, n: usize) -> Vec<f64> {
    let body = (method == Method::POST).then(|| json!({"name": "x"}));
    // Warm up the connection.
    client.send_raw(method.clone(), "/things", body.clone()).await.expect("warm-up");
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        client.send_raw(method.clone(), "/things", body.clone()).await.expect("request");
        out.push(t.elapsed().as_secs_f64() * 1e6);
    }
    out
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let base = std::env::var_os("AUDIT_DIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new().prefix("zonal-audit-cost-").tempdir_in(&base).expect("temp dir");
    println!("audit files in {} ({} entries each)", dir.path().display(), n);

    // 1. The log alone.
    let audit = Audit::open(dir.path()).expect("audit");
    let (mut synced, mut unsynced) = (Vec::new(), Vec::new());
    for i in 0..2 * n as u64 {
        let e = entry(i);
        let t = Instant::now();
        audit.record(&e).expect("append");
        let us = t.elapsed().as_secs_f64() * 1e6;
        if e.telemetry {
            unsynced.push(us)
        } else {
            synced.push(us)
        }
    }
    report("audit entry, written + fdatasync (audit.jsonl)", synced);
    report("audit entry, written, no sync (audit-telemetry.jsonl)", unsynced);
    let bytes = std::fs::metadata(audit.writes.path()).map_or(0, |m| m.len());
    println!("{:<58} {:.0} bytes per entry", "audit.jsonl size", bytes as f64 / n as f64);

    // 2. A write request with and without the audit layer (plain HTTP, kept alive).
    let t = Duration::from_secs(10);
    let plain = start(app(None), None).await;
    let audited = start(app(Some(Audit::open(&dir.path().join("layer")).expect("audit"))), None).await;
    let c = Client::with_ca(&format!("http://{plain}"), Some("t".into()), t, None).expect("client");
    report("POST, no audit layer (HTTP)", time_requests(&c, Method::POST, n).await);
    let c = Client::with_ca(&format!("http://{audited}"), Some("t".into()), t, None).expect("client");
    report("POST through the audit layer (HTTP)", time_requests(&c, Method::POST, n).await);
    report("GET through the audit layer (not audited) (HTTP)", time_requests(&c, Method::GET, n).await);

    // 3. TLS: kept-alive requests and fresh connections.
    let (ca, identity) = pki();
    let tls = start(app(None), Some(identity)).await;
    let c = Client::with_ca(&format!("http://{plain}"), Some("t".into()), t, None).expect("client");
    report("GET, plain HTTP, connection kept alive", time_requests(&c, Method::GET, n).await);
    let c = Client::with_ca(&format!("https://{tls}"), Some("t".into()), t, Some(&ca)).expect("client");
    report("GET, HTTPS, connection kept alive", time_requests(&c, Method::GET, n).await);
    let fresh = n.min(500);
    let mut http_new = Vec::with_capacity(fresh);
    let mut https_new = Vec::with_capacity(fresh);
    for _ in 0..fresh {
        let c = Client::with_ca(&format!("http://{plain}"), Some("t".into()), t, None).expect("client");
        let s = Instant::now();
        c.send_raw(Method::GET, "/things", None).await.expect("request");
        http_new.push(s.elapsed().as_secs_f64() * 1e6);
        let c = Client::with_ca(&format!("https://{tls}"), Some("t".into()), t, Some(&ca)).expect("client");
        let s = Instant::now();
        c.send_raw(Method::GET, "/things", None).await.expect("request");
        https_new.push(s.elapsed().as_secs_f64() * 1e6);
    }
    report("GET, plain HTTP, new connection", http_new);
    report("GET, HTTPS, new connection (TCP + TLS handshake)", https_new);
}
