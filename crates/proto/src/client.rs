//! A small typed HTTP client for the `/1.0` APIs.
//!
//! Every failure names the method and URL and says whether the daemon could not be reached,
//! answered with an error (its `{error, detail}` is kept), or answered something that is not
//! the expected JSON.
//!
//! HTTPS: a client verifies the daemon's certificate against the public roots and, when one
//! is configured, a CA certificate — given to [`Client::with_ca`], or set for the whole
//! process with [`set_default_ca_pem`] (the daemons' `--tls-ca`, an instance's
//! `ZONAL_CA_PEM`), which [`Client::new`] uses. A certificate nobody trusted is refused, and
//! the error says so and what to configure.
//!
//! A client made [`Client::retrying`] rides out a daemon restart: idempotent calls are
//! retried ([`Retry`]) while the daemon cannot be reached or answers 502/503/504 for want of
//! something it depends on, with backoff, for a bounded time. Idempotent: GET, HEAD, PUT,
//! DELETE, OPTIONS, and a POST the caller declares so ([`Client::post_idempotent`]: e.g.
//! registering a service under its id with the same manifest answers the same the second
//! time). Any other POST is sent once: the daemon may have acted on it before it went away.

use std::time::{Duration, Instant};

pub use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ErrorBody;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The daemon could not be reached (refused, timed out, reset).
    Unreachable { what: String, cause: String },
    /// The daemon answered with an error status.
    Api { what: String, status: u16, body: ErrorBody },
    /// The answer was not the JSON expected.
    Decode { what: String, cause: String },
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unreachable { what, cause } => write!(f, "{what}: cannot reach the daemon ({cause})"),
            ClientError::Api { what, status, body } => {
                write!(f, "{what}: {} ({status}): {}", body.error, body.detail)?;
                for d in &body.diagnostics {
                    write!(f, "\n  {d}")?;
                }
                Ok(())
            }
            ClientError::Decode { what, cause } => write!(f, "{what}: unexpected answer ({cause})"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A client of one daemon, optionally with a bearer token.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    retry: Option<Retry>,
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s.push_str(tls_hint(&s));
    s
}

/// What to do about a TLS failure named in `cause` (empty for other failures).
fn tls_hint(cause: &str) -> &'static str {
    if cause.contains("UnknownIssuer") || cause.contains("invalid peer certificate") {
        "; the daemon's certificate is not signed by a CA this client trusts: give the CA certificate (zonal --ca FILE, \
         ZONAL_CA_FILE, or the `ca` of the context `zonal up --tls` writes; daemons: --tls-ca)"
    } else if cause.contains("InvalidContentType") || cause.contains("corrupt message") {
        "; the daemon does not speak TLS on this port: use an http:// URL"
    } else {
        ""
    }
}

/// The process-wide CA certificate (PEM) every [`Client::new`] trusts besides the public roots.
static DEFAULT_CA: std::sync::RwLock<Option<String>> = std::sync::RwLock::new(None);

/// Makes every client this process creates with [`Client::new`] trust the CA certificate(s)
/// in `pem`. Refused (and nothing changed) when `pem` holds no certificate.
pub fn set_default_ca_pem(pem: &str) -> Result<(), String> {
    parse_ca(pem.as_bytes())?;
    *DEFAULT_CA.write().unwrap_or_else(|p| p.into_inner()) = Some(pem.to_string());
    Ok(())
}

/// The CA set with [`set_default_ca_pem`], if any.
pub fn default_ca_pem() -> Option<String> {
    DEFAULT_CA.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn parse_ca(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    let certs =
        reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("the CA certificate is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no CA certificate found; expected a PEM `CERTIFICATE` block".into());
    }
    Ok(certs)
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:7070`), with a per-request `timeout`;
    /// HTTPS trusts the public roots and the process's CA ([`set_default_ca_pem`]).
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> Result<Self, ClientError> {
        Self::with_ca(base, token, timeout, default_ca_pem().as_deref())
    }

    /// [`Client::new`] trusting the CA certificate(s) in `ca_pem` (PEM) instead of the
    /// process's; `None`: the public roots only.
    pub fn with_ca(
        base: &str,
        token: Option<String>,
        timeout: Duration,
        ca_pem: Option<&str>,
    ) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = ca_pem {
            for cert in
                parse_ca(pem.as_bytes()).map_err(|cause| ClientError::Unreachable { what: base.to_string(), cause })?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .pool_idle_timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .map_err(|e| ClientError::Unreachable { what: base.to_string(), cause: describe(&e) })?;
        Ok(Client { base: base.trim_end_matches('/').to_string(), token, http, retry: None })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn with_token(&self, token: Option<String>) -> Self {
        Client { token, ..self.clone() }
    }

    /// Sends one request; `path` starts with `/`. Returns the status and body bytes of a
    /// success, or the error. Retried as [`Client::retrying`] says when the method is
    /// idempotent (POST is not).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let idempotent = method != Method::POST && method != Method::PATCH;
        self.send_retrying(method, path, body, idempotent).await
    }

    /// One attempt of [`Client::send_raw`].
    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let url = format!("{}{}", self.base, path);
        let what = format!("{method} {url}");
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp =
            req.send().await.map_err(|e| ClientError::Unreachable { what: what.clone(), cause: describe(&e) })?;
        let status = resp.status().as_u16();
        let bytes =
            resp.bytes().await.map_err(|e| ClientError::Unreachable { what: what.clone(), cause: describe(&e) })?;
        if status >= 400 {
            let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
                error: format!("http_{status}"),
                detail: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
                diagnostics: Vec::new(),
            });
            return Err(ClientError::Api { what, status, body });
        }
        Ok((status, bytes.to_vec()))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, ClientError> {
        let idempotent = method != Method::POST;
        self.call_with(method, path, body, idempotent).await
    }

    async fn call_with<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        idempotent: bool,
    ) -> Result<T, ClientError> {
        let what = format!("{method} {}{path}", self.base);
        let (_, bytes) = self.send_retrying(method, path, body, idempotent).await?;
        let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(bytes).map_err(|e| ClientError::Decode { what, cause: e.to_string() })
    }

    fn encode<B: Serialize>(body: &B) -> Result<serde_json::Value, ClientError> {
        serde_json::to_value(body)
            .map_err(|e| ClientError::Decode { what: "request body".into(), cause: e.to_string() })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None).await
    }
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(Self::encode(body)?)).await
    }
    pub async fn put<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        self.call(Method::PUT, path, Some(Self::encode(body)?)).await
    }
    /// DELETE; returns the status (204 done, 202 in progress).
    pub async fn delete(&self, path: &str) -> Result<u16, ClientError> {
        self.send_raw(Method::DELETE, path, None).await.map(|(s, _)| s)
    }
}

/// How a [`Client`] retries idempotent calls: for up to `budget` after the first failure,
/// waiting `backoff.delay(n)` before the n-th retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub budget: Duration,
    pub backoff: zonal_control::backoff::Backoff,
}

impl Retry {
    /// 100 ms, 200 ms, … up to 2 s between attempts, for `budget`.
    pub fn for_up_to(budget: Duration) -> Retry {
        Retry { budget, backoff: zonal_control::backoff::Backoff { base_ms: 100, cap_ms: 2_000 } }
    }

    /// Whether a failure is worth another attempt of an idempotent call: the daemon could
    /// not be reached (refused, reset, timed out: it is restarting, or was never up), or
    /// answered that it is not ready — 502 or 504, or 503 `unavailable` (something it
    /// depends on is not reachable). A 503 that is an answer (resolution's `no_slots`,
    /// `deploying`, `deploying_on_demand`) is not retried: the caller decides.
    pub fn retryable(e: &ClientError) -> bool {
        match e {
            ClientError::Unreachable { .. } => true,
            ClientError::Api { status: 502 | 504, .. } => true,
            ClientError::Api { status: 503, body, .. } => body.error == "unavailable" || body.error == "http_503",
            _ => false,
        }
    }
}

impl Client {
    /// This client, retrying idempotent calls as [`Retry`] says (a zero budget: never).
    pub fn retrying(mut self, retry: Retry) -> Self {
        self.retry = (!retry.budget.is_zero()).then_some(retry);
        self
    }

    /// A POST that is idempotent by the API's design (sending it twice has the effect of
    /// sending it once, and answers alike), so it is retried like a PUT.
    pub async fn post_idempotent<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call_with(Method::POST, path, Some(Self::encode(body)?), true).await
    }

    async fn send_retrying(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        idempotent: bool,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let retry = match self.retry {
            Some(r) if idempotent => r,
            _ => return self.send_once(method, path, body).await,
        };
        let mut first_failure: Option<Instant> = None;
        let mut attempt = 0u32;
        loop {
            let e = match self.send_once(method.clone(), path, body.clone()).await {
                Ok(answer) => return Ok(answer),
                Err(e) if Retry::retryable(&e) => e,
                Err(e) => return Err(e),
            };
            let since = *first_failure.get_or_insert_with(Instant::now);
            let delay = Duration::from_millis(retry.backoff.delay(attempt));
            if since.elapsed() + delay > retry.budget {
                return Err(e);
            }
            if attempt == 0 {
                tracing::warn!("{e}; retrying for up to {:?}", retry.budget);
            }
            attempt = attempt.saturating_add(1);
            tokio::time::sleep(delay).await;
        }
    }

    /// GETs `path` and hands the body to `sink` chunk by chunk as it arrives (a large
    /// answer, e.g. a backup, is never held whole). Starting the download is retried like
    /// any GET; a failure once bytes have been handed over is returned (the caller starts
    /// again). Returns the bytes received.
    pub async fn download(
        &self,
        path: &str,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<u64, ClientError> {
        let url = format!("{}{}", self.base, path);
        let what = format!("GET {url}");
        let mut first_failure: Option<Instant> = None;
        let mut attempt = 0u32;
        let mut resp = loop {
            let mut req = self.http.get(&url);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            let e = match req.send().await {
                Ok(r) if r.status().as_u16() < 400 => break r,
                Ok(r) => {
                    let status = r.status().as_u16();
                    let bytes = r.bytes().await.unwrap_or_default();
                    let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
                        error: format!("http_{status}"),
                        detail: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
                        diagnostics: Vec::new(),
                    });
                    ClientError::Api { what: what.clone(), status, body }
                }
                Err(e) => ClientError::Unreachable { what: what.clone(), cause: describe(&e) },
            };
            let Some(retry) = self.retry.filter(|_| Retry::retryable(&e)) else { return Err(e) };
            let since = *first_failure.get_or_insert_with(Instant::now);
            let delay = Duration::from_millis(retry.backoff.delay(attempt));
            if since.elapsed() + delay > retry.budget {
                return Err(e);
            }
            attempt = attempt.saturating_add(1);
            tokio::time::sleep(delay).await;
        };
        let mut total = 0u64;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    sink(&chunk).map_err(|e| ClientError::Decode { what: what.clone(), cause: e.to_string() })?;
                    total += chunk.len() as u64;
                }
                Ok(None) => return Ok(total),
                Err(e) => {
                    return Err(ClientError::Unreachable {
                        what,
                        cause: format!("the answer was cut after {total} bytes: {}", describe(&e)),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, error: &str) -> ClientError {
        ClientError::Api {
            what: "GET x".into(),
            status,
            body: ErrorBody { error: error.into(), detail: String::new(), diagnostics: Vec::new() },
        }
    }

    #[test]
    fn only_failures_of_reaching_a_ready_daemon_are_retried() {
        assert!(Retry::retryable(&ClientError::Unreachable { what: "x".into(), cause: "refused".into() }));
        assert!(Retry::retryable(&api(502, "http_502")));
        assert!(Retry::retryable(&api(504, "http_504")));
        assert!(Retry::retryable(&api(503, "unavailable")));
        for answer in ["no_slots", "deploying", "deploying_on_demand"] {
            assert!(!Retry::retryable(&api(503, answer)), "{answer}");
        }
        for status in [400, 401, 403, 404, 409, 422, 500] {
            assert!(!Retry::retryable(&api(status, "x")), "{status}");
        }
        assert!(!Retry::retryable(&ClientError::Decode { what: "x".into(), cause: "y".into() }));
    }

    /// A port nothing listens on, then a server that answers once it is there.
    #[tokio::test]
    async fn idempotent_calls_wait_for_a_daemon_that_comes_back_and_posts_do_not() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        let addr = probe.local_addr().expect("addr");
        drop(probe);
        let client = Client::new(&format!("http://{addr}"), None, Duration::from_secs(2))
            .expect("client")
            .retrying(Retry::for_up_to(Duration::from_secs(20)));
        // Nothing listens: a plain POST fails at once.
        let started = Instant::now();
        let e = client.post::<_, serde_json::Value>("/x", &serde_json::json!({})).await.expect_err("no daemon");
        assert!(e.is_unreachable() && started.elapsed() < Duration::from_secs(2), "{e} after {:?}", started.elapsed());
        // The daemon comes up 600 ms later: the GET and the idempotent POST get through.
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            let listener = tokio::net::TcpListener::bind(addr).await.expect("bind again");
            let app = axum::Router::new()
                .route("/x", axum::routing::get(|| async { axum::Json(serde_json::json!({"ok": 1})) }))
                .route("/x", axum::routing::post(|| async { axum::Json(serde_json::json!({"ok": 2})) }));
            let _ = axum::serve(listener, app).await;
        });
        let v: serde_json::Value = client.get("/x").await.expect("the GET waits for the daemon");
        assert_eq!(v["ok"], 1);
        let v: serde_json::Value = client.post_idempotent("/x", &serde_json::json!({})).await.expect("post");
        assert_eq!(v["ok"], 2);
        // Without retries a GET to a port nobody listens on fails at once.
        server.abort();
        let _ = server.await;
        let once = Client::new(&format!("http://{addr}"), None, Duration::from_secs(2)).expect("client");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(once.get::<serde_json::Value>("/x").await.is_err());
    }
}
