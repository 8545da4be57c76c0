//! What the runtime subcommands share: the client context (which domain, which token), the
//! tokio runtime, logging, signals, durations.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zonal_proto::Client;

use crate::Failure;

/// Where the client context lives: `$ZONAL_CONTEXT`, else
/// `$XDG_CONFIG_HOME/zonal/context.json`, else `~/.config/zonal/context.json`.
pub fn default_context_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ZONAL_CONTEXT").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("zonal").join("context.json")
}

/// Default state directory of `zonal up` and the daemons: `$XDG_STATE_HOME/zonal/<what>`,
/// else `~/.local/state/zonal/<what>`.
pub fn default_state_dir(what: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .unwrap_or_else(|| PathBuf::from(".zonal-state"));
    base.join("zonal").join(what)
}

/// The client context file written by `zonal up`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    pub url: String,
    pub token: String,
    /// The CA certificate (PEM file) that signed the domain's certificate (`zonal up --tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

/// Which domain to talk to, and as whom.
#[derive(clap::Args, Debug, Clone)]
pub struct Conn {
    /// Domain API URL (default: $ZONAL_URL, else the context file `zonal up` wrote).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Bearer token (default: $ZONAL_TOKEN, else the context file).
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Client context file (default: $ZONAL_CONTEXT, else ~/.config/zonal/context.json).
    #[arg(long, global = true)]
    pub context: Option<PathBuf>,
    /// CA certificate (PEM) to trust for an https:// domain (default: $ZONAL_CA_FILE, else
    /// the context's `ca`, which `zonal up --tls` writes).
    #[arg(long, global = true)]
    pub ca: Option<PathBuf>,
}

/// HTTPS for a daemon (`zonal domain`, `zonal zone`): its certificate and key, and the CA it
/// trusts when it calls the other daemons.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Serve HTTPS only, with this certificate (PEM; the daemon's certificate first, then
    /// any intermediates). Needs --tls-key.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, SEC1 or PKCS#1).
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Trust this CA certificate (PEM) besides the public roots when calling other daemons
    /// over HTTPS (the domain calling zones, a zone calling its domain); a zone also gives it
    /// to its instances (ZONAL_CA_PEM).
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// Installs the CA for this process's clients and reads the identity to serve with.
    pub fn load(&self) -> Result<Option<zonal_proto::server::TlsIdentity>, Failure> {
        if let Some(ca) = &self.tls_ca {
            let pem = read_ca(ca)?;
            zonal_proto::client::set_default_ca_pem(&pem)
                .map_err(|e| Failure::new(2, format!("--tls-ca {}: {e}", ca.display())))?;
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                zonal_proto::server::TlsIdentity::from_pem_files(cert, key).map(Some).map_err(|e| Failure::new(2, e))
            }
            (None, None) => Ok(None),
            _ => Err(Failure::new(2, "--tls-cert and --tls-key go together; give both or neither")),
        }
    }

    /// The same settings as flags (for `zonal up`).
    pub fn to_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (flag, v) in [("--tls-cert", &self.tls_cert), ("--tls-key", &self.tls_key), ("--tls-ca", &self.tls_ca)] {
            if let Some(p) = v {
                out.push(flag.to_string());
                out.push(p.display().to_string());
            }
        }
        out
    }
}

/// The PEM text of the CA certificate at `path`, or a one-line reason naming the file.
pub fn read_ca(path: &std::path::Path) -> Result<String, Failure> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(2, format!("the CA certificate {}: {e}", path.display())))?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(Failure::new(
            2,
            format!("{}: no PEM certificate in it; expected a `-----BEGIN CERTIFICATE-----` block", path.display()),
        ));
    }
    Ok(pem)
}

impl Conn {
    pub fn client(&self) -> Result<Client, Failure> {
        let path = self.context.clone().unwrap_or_else(default_context_path);
        let ctx: Option<Context> = std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok());
        let url = self
            .url
            .clone()
            .or_else(|| std::env::var("ZONAL_URL").ok().filter(|s| !s.is_empty()))
            .or_else(|| ctx.as_ref().map(|c| c.url.clone()))
            .ok_or_else(|| {
                Failure::new(
                    2,
                    format!(
                        "no domain to talk to: pass --url, set ZONAL_URL, or start one with `zonal up` (which writes {})",
                        path.display()
                    ),
                )
            })?;
        let token = self
            .token
            .clone()
            .or_else(|| std::env::var("ZONAL_TOKEN").ok().filter(|s| !s.is_empty()))
            .or_else(|| ctx.as_ref().map(|c| c.token.clone()));
        let ca = self
            .ca
            .clone()
            .or_else(|| std::env::var_os("ZONAL_CA_FILE").filter(|s| !s.is_empty()).map(PathBuf::from))
            .or_else(|| ctx.and_then(|c| c.ca));
        let ca_pem = ca.as_deref().map(read_ca).transpose()?;
        Client::with_ca(&url, token, Duration::from_secs(30), ca_pem.as_deref())
            .map_err(|e| Failure::new(1, e.to_string()))
    }
}

impl From<zonal_proto::ClientError> for Failure {
    fn from(e: zonal_proto::ClientError) -> Self {
        Failure::new(1, e.to_string())
    }
}

/// A multi-threaded runtime for the daemons (two workers: they are mostly idle).
pub fn daemon_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(1, format!("cannot start the async runtime: {e}")))
}

/// A single-threaded runtime for client commands and the workload.
pub fn client_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(1, format!("cannot start the async runtime: {e}")))
}

/// Logs to stderr; `RUST_LOG` overrides `default` (e.g. `info`).
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
    }
}

/// Parses `500ms`, `2s`, `1m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    text.parse::<zonal_model::units::Duration>().map(|d| d.to_std()).map_err(|e| e.to_string())
}

/// Writes `text` atomically to `path` (temp file + rename).
pub fn write_atomic(path: &std::path::Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Prints pretty JSON.
pub fn print_json(v: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
