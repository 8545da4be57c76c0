//! The DC adaptor boundary: what a zone manager needs from whatever really runs instances.
//!
//! FUSION's DCA works at component-instance granularity (provision, start, stop, status,
//! configurations, ports). The zone manager owns *what* should run and *why*; the adaptor
//! only carries out one instance-level operation at a time and reports what it sees. The
//! trait is object-safe (`Arc<dyn DcAdaptor>`), so adaptors can be chosen by name; the
//! process adaptor ([`crate::process::ProcessAdaptor`]) is the embedded default.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use zonal_model::Resources;
use zonal_proto::env::PortMapping;

use crate::users::RunAs;

/// A boxed future (keeps the trait object-safe).
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything needed to provision and start one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    pub id: String,
    pub service: String,
    pub component: String,
    /// `argv[0]` of `zonal` means this executable.
    pub argv: Vec<String>,
    /// The instance's whole environment (nothing else is inherited).
    pub env: BTreeMap<String, String>,
    /// Its private working directory (mode 0700, owned by `run_as`).
    pub workdir: PathBuf,
    /// Where its stdout and stderr go (a file of the zone's, outside `workdir`).
    pub log: PathBuf,
    /// The uid/gid to run as; `None`: as the zone's own user (a zone that is not root).
    pub run_as: Option<RunAs>,
    pub resources: Resources,
    pub ports: Vec<PortMapping>,
}

/// Where and how the zone reaches an instance's admin API: its `admin` port on 127.0.0.1 and
/// the instance's admin secret (sent as `Authorization: Bearer`; empty for an instance
/// recorded before admin secrets existed, which gets no header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminApi {
    pub port: u16,
    pub secret: String,
}

impl AdminApi {
    /// The instance's admin API, if it has an `admin` port.
    pub fn of(rec: &crate::instances::InstanceRecord) -> Option<AdminApi> {
        rec.ports
            .iter()
            .find(|p| p.name == "admin")
            .map(|p| AdminApi { port: p.public, secret: rec.admin_token.clone() })
    }

    /// The bearer token to send (`None` for an instance without a secret).
    pub fn bearer(&self) -> Option<String> {
        (!self.secret.is_empty()).then(|| self.secret.clone())
    }
}

/// A started process.
#[derive(Debug)]
pub struct Launched {
    pub pid: u32,
    /// Kernel start time of the process (clock ticks since boot), to tell it from a later
    /// process that reuses the pid.
    pub start_time: u64,
    /// The child handle when the zone manager is the parent: awaiting it reaps the process.
    pub child: Option<tokio::process::Child>,
}

/// What the adaptor sees of a recorded process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessStatus {
    /// Alive, same start time, carries the instance's token.
    Alive,
    /// No such process (or a zombie).
    Gone,
    /// A process with that pid exists but it is not the instance (pid reused).
    NotOurs,
}

/// The operations a zone manager asks of its data centre.
pub trait DcAdaptor: Send + Sync {
    /// The adaptor's name (`process`).
    fn kind(&self) -> &'static str;
    /// The resource limits and isolation this adaptor applies on this machine, for `GET
    /// /1.0/dca`.
    fn limits(&self) -> Vec<String>;
    /// Can it run instances under other uids (the zone runs as root)?
    fn switches_users(&self) -> bool {
        false
    }
    /// Chooses real ports for the component's logical ports (plus an `admin` port).
    fn ports(&self, declared: &[zonal_model::Port]) -> Result<Vec<PortMapping>, String>;
    /// Prepares the environment (working directory, configuration file).
    fn provision(&self, spec: &LaunchSpec) -> Result<(), String>;
    /// Starts the instance.
    fn start(&self, spec: &LaunchSpec) -> Result<Launched, String>;
    /// Stops it: SIGTERM to its process group, SIGKILL after `grace`.
    fn stop(&self, id: &str, pid: u32, grace: Duration) -> BoxFut<'_, ()>;
    /// Is the recorded process still the instance?
    fn status(&self, pid: u32, start_time: u64, token: &str) -> ProcessStatus;
    /// Removes what `provision`/`start` set up: the working directory `workdir` and
    /// anything outside it (the log is the zone's and stays).
    fn cleanup(&self, id: &str, workdir: &Path);
    /// Tells a provisioned instance the zone's current URL (the file its `ZONAL_ZONE_FILE`
    /// names, in `workdir`).
    fn zone_moved(&self, workdir: &Path, url: &str) -> Result<(), String>;
    /// Adds a configuration to a running instance through its admin API.
    fn add_config(&self, admin: AdminApi, body: serde_json::Value) -> BoxFut<'_, Result<serde_json::Value, String>>;
    /// Removes a configuration from a running instance.
    fn remove_config(&self, admin: AdminApi, name: &str) -> BoxFut<'_, Result<(), String>>;
    /// Lists a running instance's configurations.
    fn configs(&self, admin: AdminApi) -> BoxFut<'_, Result<serde_json::Value, String>>;
}
