//! `zonal zone`: the zone manager daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use zonal_model::{Amount, Resources};
use zonal_proto::wire::HostInfo;
use zonal_zone::ZoneOptions;

use crate::common::{self, parse_duration};
use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The zone's name (in the infrastructure file, when one is given).
    #[arg(long)]
    pub name: String,
    /// Address to listen on; port 0 reuses the previous port when free, else picks one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// State directory (the store, instance working directories and logs).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The domain orchestrator's URL; without it the zone runs on its own.
    #[arg(long)]
    pub domain: Option<String>,
    /// The zone's token at the domain (role zone); also $ZONAL_ZONE_TOKEN.
    #[arg(long)]
    pub token: Option<String>,
    /// Infrastructure file declaring this zone's hosts (capacity accounting on this machine).
    /// Without it the zone has one host with this machine's CPUs and memory.
    #[arg(long, short = 'f')]
    pub infrastructure: Option<PathBuf>,
    /// Interval between heartbeats to the domain.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Grace period between SIGTERM and SIGKILL when stopping an instance.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub stop_grace: Duration,
    /// Write the API URL to this file once listening (for supervisors such as `zonal up`).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
}

/// The hosts of zone `name` from an infrastructure file.
pub fn zone_hosts(path: &std::path::Path, name: &str) -> Result<(Vec<HostInfo>, Option<String>), Failure> {
    let loaded = crate::validate::load_valid(&[path.to_path_buf()], &crate::validate::DatasetArgs::default())?;
    let infra = loaded.bundle.infrastructure();
    let zone = infra.zone(name).ok_or_else(|| {
        let known: Vec<&str> = infra.zones.iter().map(|z| z.name.as_str()).collect();
        Failure::new(2, format!("{}: no zone {name:?}; expected one of {}", path.display(), known.join(", ")))
    })?;
    let hosts = zone
        .hosts
        .iter()
        .map(|h| HostInfo {
            name: h.name.clone(),
            capacity: h.capacity.clone(),
            features: h.features.clone(),
            available: h.available,
        })
        .collect();
    Ok((hosts, zone.tier.clone()))
}

fn local_host() -> HostInfo {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(4 << 20);
    HostInfo {
        name: "local".into(),
        capacity: Resources::new().with("cpu", Amount::cpu(cpus * 1000)).with("memory", Amount::bytes(mem_kib * 1024)),
        features: [("arch".to_string(), std::env::consts::ARCH.to_string())].into_iter().collect(),
        available: true,
    }
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("info");
    let (hosts, tier) = match &args.infrastructure {
        Some(path) => zone_hosts(path, &args.name)?,
        None => (vec![local_host()], None),
    };
    let state_dir = args.state.clone().unwrap_or_else(|| common::default_state_dir(&format!("zones/{}", args.name)));
    let zonal_exe =
        std::env::current_exe().map_err(|e| Failure::new(1, format!("cannot find this executable: {e}")))?;
    let opts = ZoneOptions {
        name: args.name.clone(),
        listen: args.listen,
        state_dir: state_dir.clone(),
        domain_url: args.domain.clone(),
        token: args.token.clone().or_else(|| std::env::var("ZONAL_ZONE_TOKEN").ok().filter(|t| !t.is_empty())),
        tier,
        hosts,
        heartbeat: args.heartbeat,
        stop_grace: args.stop_grace,
        zonal_exe,
    };
    let ready_file = args.ready_file.clone();
    let name = args.name.clone();
    let rt = common::daemon_runtime()?;
    rt.block_on(zonal_zone::serve(opts, common::shutdown_signal(), move |addr| {
        let url = format!("http://{addr}");
        println!("zone {name} listening on {url}");
        println!("state and instance logs in {}", state_dir.display());
        if let Some(path) = &ready_file {
            if let Err(e) = common::write_atomic(path, &url) {
                tracing::error!("{e}");
            }
        }
    }))
    .map_err(|e| Failure::new(1, e))
}
