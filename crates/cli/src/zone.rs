//! `zonal zone`: the zone manager daemon.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use zonal_control::slots::BalancePolicy;
use zonal_model::{Amount, Resources};
use zonal_proto::wire::HostInfo;
use zonal_zone::users::{Isolation, RunAs};
use zonal_zone::{SlotSettings, ZoneOptions};

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
    /// The zone's token at the domain (role zone); also $ZONAL_ZONE_TOKEN. Visible to every
    /// user of the machine in the process list: prefer --token-file.
    #[arg(long)]
    pub token: Option<String>,
    /// A file holding the zone's token at the domain (read once at start; keep it 0600).
    #[arg(long, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
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
    #[command(flatten)]
    pub slots: SlotArgs,
    #[command(flatten)]
    pub isolation: IsolationArgs,
    #[command(flatten)]
    pub tls: common::TlsArgs,
}

/// Whose uid instances run under and their process limit (also on `zonal up`).
#[derive(clap::Args, Debug, Clone)]
pub struct IsolationArgs {
    /// Uids handed to providers, one each (gid = uid), when the zone runs as root. Zones
    /// sharing a machine need disjoint ranges (`zonal up` splits its range between them).
    #[arg(long, value_name = "FIRST-LAST", default_value = "200000-265535", value_parser = zonal_zone::users::parse_uid_range)]
    pub instance_uids: (u32, u32),
    /// Run PROVIDER's instances as UID:GID (never 0); repeatable.
    #[arg(long = "run-as", value_name = "PROVIDER=UID:GID", value_parser = zonal_zone::users::parse_run_as)]
    pub run_as: Vec<(String, RunAs)>,
    /// RLIMIT_NPROC of each provider's uid: processes and threads of all its instances in the
    /// zone together (and pids.max of each instance's cgroup v2).
    #[arg(long, default_value_t = zonal_zone::users::DEFAULT_NPROC)]
    pub instance_nproc: u64,
}

impl IsolationArgs {
    pub fn settings(&self) -> Result<Isolation, Failure> {
        let run_as: BTreeMap<String, RunAs> = self.run_as.iter().cloned().collect();
        if run_as.len() != self.run_as.len() {
            return Err(Failure::new(2, "--run-as names a provider twice; expected one mapping per provider"));
        }
        zonal_zone::users::check_run_as(&run_as).map_err(|e| Failure::new(2, e))?;
        if self.instance_nproc == 0 {
            return Err(Failure::new(
                2,
                "--instance-nproc 0 would keep every instance from starting; expected at least 1",
            ));
        }
        Ok(Isolation { uids: self.instance_uids, run_as, nproc: self.instance_nproc })
    }

    /// The same settings as `zonal zone` flags, with `uids` as the range (for `zonal up`).
    pub fn to_args(&self, uids: (u32, u32)) -> Vec<String> {
        let mut out = vec![
            "--instance-uids".to_string(),
            format!("{}-{}", uids.0, uids.1),
            "--instance-nproc".into(),
            self.instance_nproc.to_string(),
        ];
        for (p, r) in &self.run_as {
            out.push("--run-as".into());
            out.push(format!("{p}={}:{}", r.uid, r.gid));
        }
        out
    }
}

/// How the zone scales on session slots and balances new sessions (also on `zonal up`).
#[derive(clap::Args, Debug, Clone)]
pub struct SlotArgs {
    /// The gateway's choice of instance for a new session.
    #[arg(long, value_enum, default_value_t = Balance::LeastLoaded)]
    pub balance: Balance,
    /// Scale in only while min_free + this many slots stay free without the instance removed.
    #[arg(long, default_value_t = 5)]
    pub scale_hysteresis: u32,
    /// Least time between two scale-outs.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub scale_out_cooldown: Duration,
    /// Least time between two scale-ins.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub scale_in_cooldown: Duration,
    /// How long the gateway's relay polls a session for its next message before it sleeps
    /// (e.g. 50us; 0 never polls): less added latency per message for up to this much CPU
    /// per message and direction. At most 10ms.
    #[arg(long, default_value = "50us", value_parser = parse_gateway_poll)]
    pub gateway_poll: Duration,
}

/// `--gateway-poll`: a duration of at most [`zonal_zone::MAX_GATEWAY_POLL`].
pub(crate) fn parse_gateway_poll(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    let max = zonal_zone::MAX_GATEWAY_POLL;
    if d > max {
        return Err(format!("{text} is longer than the {}ms a relay may poll", max.as_millis()));
    }
    Ok(d)
}

impl SlotArgs {
    pub fn settings(&self) -> SlotSettings {
        SlotSettings {
            balance: match self.balance {
                Balance::MostFree => BalancePolicy::MostFree,
                Balance::LeastLoaded => BalancePolicy::LeastLoaded,
                Balance::PowerOfTwo => BalancePolicy::PowerOfTwo,
            },
            hysteresis: self.scale_hysteresis,
            cooldown_out: self.scale_out_cooldown,
            cooldown_in: self.scale_in_cooldown,
            gateway_poll: self.gateway_poll,
        }
    }

    /// The same settings as `zonal zone` flags (for `zonal up`).
    pub fn to_args(&self) -> Vec<String> {
        let balance = match self.balance {
            Balance::MostFree => "most-free",
            Balance::LeastLoaded => "least-loaded",
            Balance::PowerOfTwo => "power-of-two",
        };
        vec![
            "--balance".into(),
            balance.into(),
            "--scale-hysteresis".into(),
            self.scale_hysteresis.to_string(),
            "--scale-out-cooldown".into(),
            format!("{}ms", self.scale_out_cooldown.as_millis()),
            "--scale-in-cooldown".into(),
            format!("{}ms", self.scale_in_cooldown.as_millis()),
            "--gateway-poll".into(),
            format!("{}us", self.gateway_poll.as_micros()),
        ]
    }
}

/// Balancing policies of the zone gateway.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// The instance with the most free slots.
    MostFree,
    /// The instance with the smallest share of its slots in use.
    LeastLoaded,
    /// Two random instances; the one with the lower smoothed connect latency.
    PowerOfTwo,
}

/// The hosts, tier, location and prices of zone `name` from an infrastructure file.
struct ZoneFacts {
    hosts: Vec<HostInfo>,
    tier: Option<String>,
    location: Option<zonal_model::Location>,
    price: zonal_model::Price,
}

fn zone_facts(path: &std::path::Path, name: &str) -> Result<ZoneFacts, Failure> {
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
            power: h.power,
        })
        .collect();
    Ok(ZoneFacts { hosts, tier: zone.tier.clone(), location: zone.location, price: zone.price.clone() })
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
        power: Default::default(),
    }
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("info");
    let facts = match &args.infrastructure {
        Some(path) => zone_facts(path, &args.name)?,
        None => ZoneFacts { hosts: vec![local_host()], tier: None, location: None, price: Default::default() },
    };
    let state_dir = args.state.clone().unwrap_or_else(|| common::default_state_dir(&format!("zones/{}", args.name)));
    let zonal_exe =
        std::env::current_exe().map_err(|e| Failure::new(1, format!("cannot find this executable: {e}")))?;
    let isolation = args.isolation.settings()?;
    let token = match &args.token_file {
        Some(path) => {
            let t = std::fs::read_to_string(path)
                .map_err(|e| Failure::new(2, format!("--token-file {}: {e}", path.display())))?;
            let t = t.trim().to_string();
            if t.is_empty() {
                return Err(Failure::new(
                    2,
                    format!("--token-file {}: the file is empty; expected the zone's token", path.display()),
                ));
            }
            Some(t)
        }
        None if args.token.is_some() => {
            tracing::warn!("--token is visible to every user of this machine in the process list; prefer --token-file");
            args.token.clone()
        }
        None => std::env::var(zonal_proto::env::ZONAL_ZONE_TOKEN).ok().filter(|t| !t.is_empty()),
    };
    let opts = ZoneOptions {
        name: args.name.clone(),
        listen: args.listen,
        state_dir: state_dir.clone(),
        domain_url: args.domain.clone(),
        token,
        tier: facts.tier,
        hosts: facts.hosts,
        price: facts.price,
        heartbeat: args.heartbeat,
        stop_grace: args.stop_grace,
        zonal_exe,
        location: facts.location,
        slots: args.slots.settings(),
        isolation,
    };
    let ready_file = args.ready_file.clone();
    let name = args.name.clone();
    let tls = args.tls.load()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let rt = common::daemon_runtime()?;
    rt.block_on(zonal_zone::serve_with(opts, tls, common::shutdown_signal(), move |addr| {
        let url = format!("{scheme}://{addr}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_poll_is_a_duration_of_at_most_ten_milliseconds() {
        assert_eq!(parse_gateway_poll("50us"), Ok(Duration::from_micros(50)));
        assert_eq!(parse_gateway_poll("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_gateway_poll("10ms"), Ok(Duration::from_millis(10)));
        let long = parse_gateway_poll("11ms").expect_err("too long");
        assert!(long.contains("11ms") && long.contains("10ms"), "{long}");
        assert!(parse_gateway_poll("fast").is_err());
    }

    #[test]
    fn zonal_up_hands_the_gateway_poll_to_its_zones() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            slots: SlotArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(["zonal", "--gateway-poll", "120us"]).expect("flags");
        assert_eq!(cli.slots.settings().gateway_poll, Duration::from_micros(120));
        let args = cli.slots.to_args();
        let again = <Cli as clap::Parser>::try_parse_from(std::iter::once("zonal".to_string()).chain(args))
            .expect("the flags zonal up passes on");
        assert_eq!(again.slots.settings(), cli.slots.settings());
        let default = <Cli as clap::Parser>::try_parse_from(["zonal"]).expect("no flags");
        assert_eq!(default.slots.settings().gateway_poll, SlotSettings::default().gateway_poll);
    }
}
