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
    #[command(flatten)]
    pub decisions: DecisionArgs,
    #[command(flatten)]
    pub tls: common::TlsArgs,
}

/// How the domain decides placement (every apply, demand shift, lost or added zone).
#[derive(clap::Args, Debug, Clone)]
pub struct DecisionArgs {
    /// Time limit of each solve of a placement decision.
    #[arg(long = "solve-time-limit", default_value = "10s", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// A demand change re-decides a service when its relative L1 distance to the demand of
    /// its last decision exceeds this (0–1).
    #[arg(long = "demand-threshold", default_value_t = 0.25)]
    pub demand_threshold: f64,
    /// Least time between two re-decisions of one service (demand shifts, added zones).
    #[arg(long = "replan-cooldown", default_value = "15s", value_parser = parse_duration)]
    pub replan_cooldown: Duration,
    /// How long a zone leaving a placement may drain its sessions before its instances stop.
    #[arg(long = "drain-timeout", default_value = "60s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// What moving one instance costs a re-placement, as a multiple of the defaults (0.02
    /// FUSION utility, 2 ms of channel delay, 0.05 per hour of instance cost): re-placements
    /// that gain less do nothing.
    #[arg(long = "move-cost", default_value_t = 1.0)]
    pub move_cost: f64,
    /// Among equally priced hosts, put single-component services where they pack best
    /// (binpack: fewer hosts on) or leave the most room (spread).
    #[arg(long = "scheduler", value_enum, default_value_t = SchedulerArg::Binpack)]
    pub scheduler: SchedulerArg,
    /// FUSION's Step-2 trade-off for services with regional demand: 1 = maximal total
    /// utility (then the cheapest plan at that utility), 0 = the fair plan at least cost.
    #[arg(long = "fusion-alpha", default_value_t = 0.5)]
    pub fusion_alpha: f64,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulerArg {
    Binpack,
    Spread,
}

impl DecisionArgs {
    pub fn settings(&self) -> Result<zonal_domain::decisions::DecisionSettings, Failure> {
        if !(self.demand_threshold.is_finite() && (0.0..=1.0).contains(&self.demand_threshold)) {
            return Err(Failure::new(
                2,
                format!("--demand-threshold {}: expected a number from 0 to 1", self.demand_threshold),
            ));
        }
        if !(self.move_cost.is_finite() && self.move_cost >= 0.0) {
            return Err(Failure::new(2, format!("--move-cost {}: expected a non-negative number", self.move_cost)));
        }
        if !(0.0..=1.0).contains(&self.fusion_alpha) {
            return Err(Failure::new(
                2,
                format!("--fusion-alpha {}: expected a number from 0 to 1", self.fusion_alpha),
            ));
        }
        let mut s = zonal_domain::decisions::DecisionSettings {
            demand_threshold: self.demand_threshold,
            replan_cooldown: self.replan_cooldown,
            drain_timeout: self.drain_timeout,
            ..Default::default()
        };
        let limit = Some(self.time_limit);
        s.options.fusion.solver.time_limit = limit;
        s.options.chain.solver.time_limit = limit;
        s.options.heuristic.solver.time_limit = limit;
        s.options.switching = zonal_place::decide::SwitchingCosts::scaled(self.move_cost);
        s.options.fusion.alpha = self.fusion_alpha;
        s.options.scoring = match self.scheduler {
            SchedulerArg::Binpack => zonal_place::single::Scoring::BestFit,
            SchedulerArg::Spread => zonal_place::single::Scoring::Spread,
        };
        Ok(s)
    }

    /// The same settings as `zonal domain` flags (for `zonal up`).
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--solve-time-limit".into(),
            format!("{}ms", self.time_limit.as_millis()),
            "--demand-threshold".into(),
            self.demand_threshold.to_string(),
            "--replan-cooldown".into(),
            format!("{}ms", self.replan_cooldown.as_millis()),
            "--drain-timeout".into(),
            format!("{}ms", self.drain_timeout.as_millis()),
            "--move-cost".into(),
            self.move_cost.to_string(),
            "--scheduler".into(),
            match self.scheduler {
                SchedulerArg::Binpack => "binpack".into(),
                SchedulerArg::Spread => "spread".into(),
            },
            "--fusion-alpha".into(),
            self.fusion_alpha.to_string(),
        ]
    }
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
        decisions: args.decisions.settings()?,
        timing: Timing {
            zone_timeout: args.zone_timeout,
            replace_after: args.replace_after,
            offer_deadline: args.offer_deadline,
        },
    };
    let ready_file = args.ready_file.clone();
    let tls = args.tls.load()?;
    let rt = common::daemon_runtime()?;
    rt.block_on(zonal_domain::serve_with(opts, tls, common::shutdown_signal(), move |ready| {
        let url = ready.url();
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
