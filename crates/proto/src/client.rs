//! A small typed HTTP client for the `/1.0` APIs.
//!
//! Every failure names the method and URL and says whether the daemon could not be reached,
//! answered with an error (its `{error, detail}` is kept), or answered something that is not
//! the expected JSON.

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
    s
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:7070`), with a per-request `timeout`.
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
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
