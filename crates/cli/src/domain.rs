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
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("info");
    let state_dir = args.state.unwrap_or_else(|| common::default_state_dir("domain"));
    let opts = DomainOptions {
        name: args.name.clone(),
        listen: args.listen,
        state_dir: state_dir.clone(),
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
