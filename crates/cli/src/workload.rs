//! `zonal workload`: the bundled demo service (see `zonal-workload`).

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{self, parse_duration};
use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// Name shown in greetings and used as the default configuration's name.
    #[arg(long, default_value = "workload")]
    pub name: String,
    /// Session slots shared by all configurations.
    #[arg(long, default_value_t = 10)]
    pub slots: u32,
    /// A configuration NAME=PORT[:MAX] on its own port (repeatable; MAX caps its sessions).
    #[arg(long = "config", value_parser = zonal_workload::parse_config)]
    pub configs: Vec<(String, u16, Option<u32>)>,
    /// Session port of the default configuration (default: the zone-assigned port, else any).
    #[arg(long)]
    pub port: Option<u16>,
    /// Admin API address (default: the zone-assigned admin port, else any on 127.0.0.1).
    #[arg(long)]
    pub admin: Option<SocketAddr>,
    /// Interval of periodic slot reports to the zone.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub report_every: Duration,
    /// Also answer `POST /1.0/evaluations` as the service's evaluator, scoring by this
    /// built-in rule: latency, price or hardware.
    #[arg(long)]
    pub evaluate: Option<String>,
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("info");
    let opts = zonal_workload::Options {
        name: args.name,
        slots: args.slots,
        configs: args.configs,
        port: args.port,
        admin: args.admin,
        report_every: args.report_every,
        evaluate: args.evaluate,
    };
    common::client_runtime()?.block_on(zonal_workload::run(opts)).map_err(|e| Failure::new(1, e))
}
