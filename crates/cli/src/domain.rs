//! `zonal domain`: the domain orchestrator daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use zonal_domain::{DomainOptions, Timing};

use crate::common::{self, parse_duration};
use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// State directory (the store, the bootstrap admin token).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The domain's name.
    #[arg(long, default_value = "zonal")]
    pub name: String,
    /// A zone silent for this long is unavailable.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub zone_timeout: Duration,
    /// Services of a zone unavailable this much longer are placed elsewhere.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub replace_after: Duration,
    /// How long a placement by offers waits for the zones' offers (services with an evaluator).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub offer_deadline: Duration,
    /// Write the API URL to this file once listening (for supervisors such as `zonal up`).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    #[command(flatten)]
    pub consolidation: ConsolidationArgs,
}

/// When the domain consolidates running instances by itself (INPUT's triggers).
#[derive(clap::Args, Debug, Clone)]
pub struct ConsolidationArgs {
    /// off; plan (compute and keep the plan: `zonal consolidate --last`); apply (also carry it out).
    #[arg(long = "consolidate", value_enum, default_value_t = AutoArg::Off)]
    pub mode: AutoArg,
    /// Periodic trigger (0s: off).
    #[arg(long = "consolidate-every", default_value = "1h", value_parser = parse_duration)]
    pub every: Duration,
    /// Threshold trigger: a busy host below this CPU utilisation, in percent (0: off).
    #[arg(long = "consolidate-below", default_value_t = 30.0)]
    pub below: f64,
    /// Least time between two triggered runs (event and threshold triggers).
    #[arg(long = "consolidate-cooldown", default_value = "5m", value_parser = parse_duration)]
    pub cooldown: Duration,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoArg {
    Off,
    Plan,
    Apply,
}

impl ConsolidationArgs {
    pub fn policy(&self) -> Result<zonal_domain::consolidate::ConsolidationPolicy, Failure> {
        use zonal_domain::consolidate::{AutoMode, ConsolidationPolicy};
        if !(self.below.is_finite() && (0.0..100.0).contains(&self.below)) {
            return Err(Failure::new(
                2,
                format!("--consolidate-below {}: expected a percentage from 0 to 99", self.below),
            ));
        }
        let triggers = zonal_pack::TriggerConfig {
            period: (!self.every.is_zero()).then_some(self.every.as_secs().max(1)),
            low: (self.below > 0.0).then_some(self.below / 100.0),
            min_interval: self.cooldown.as_secs(),
            ..Default::default()
        };
        let mode = match self.mode {
            AutoArg::Off => AutoMode::Off,
            AutoArg::Plan => AutoMode::Plan,
            AutoArg::Apply => AutoMode::Apply,
        };
        Ok(ConsolidationPolicy { mode, triggers })
    }

    /// The same settings as `zonal domain` flags (for `zonal up`).
    pub fn to_args(&self) -> Vec<String> {
        let mode = match self.mode {
            AutoArg::Off => "off",
            AutoArg::Plan => "plan",
            AutoArg::Apply => "apply",
        };
        vec![
            "--consolidate".into(),
            mode.into(),
            "--consolidate-every".into(),
            format!("{}ms", self.every.as_millis()),
            "--consolidate-below".into(),
            self.below.to_string(),
            "--consolidate-cooldown".into(),
            format!("{}ms", self.cooldown.as_millis()),
        ]
    }
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("info");
    let state_dir = args.state.unwrap_or_else(|| common::default_state_dir("domain"));
    let opts = DomainOptions {
        name: args.name.clone(),
        listen: args.listen,
        state_dir: state_dir.clone(),
        consolidation: args.consolidation.policy()?,
        timing: Timing {
            zone_timeout: args.zone_timeout,
            replace_after: args.replace_after,
            offer_deadline: args.offer_deadline,
        },
    };
    let ready_file = args.ready_file.clone();
    let rt = common::daemon_runtime()?;
    rt.block_on(zonal_domain::serve(opts, common::shutdown_signal(), move |ready| {
        let url = format!("http://{}", ready.addr);
        println!("domain {} listening on {url}", args.name);
        println!("state in {}", state_dir.display());
        if let Some(f) = &ready.admin_token_file {
            println!("admin token written to {} (first start)", f.display());
        }
        if let Some(path) = &ready_file {
            if let Err(e) = common::write_atomic(path, &url) {
                tracing::error!("{e}");
            }
        }
    }))
    .map_err(|e| Failure::new(1, e))
}
