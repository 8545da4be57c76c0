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

use std::time::Duration;

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
        Ok(Client { base: base.trim_end_matches('/').to_string(), token, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn with_token(&self, token: Option<String>) -> Self {
        Client { base: self.base.clone(), token, http: self.http.clone() }
    }

    /// Sends one request; `path` starts with `/`. Returns the status and body bytes of a
    /// success, or the error.
    pub async fn send_raw(
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
        let what = format!("{method} {}{path}", self.base);
        let (_, bytes) = self.send_raw(method, path, body).await?;
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
