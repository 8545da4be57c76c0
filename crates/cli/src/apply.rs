//! `zonal apply -f FILE`: register a service and deploy it; prints what was placed where. A
//! file with no service but a demand or infrastructure document sets the domain's geography
//! instead: the demand's user regions, the infrastructure's measured latencies and latency
//! model (what resolution and `zonal get regions` estimate client latencies from).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use zonal_control::geography::Geography;
use zonal_model::Bundle;
use zonal_proto::wire::{GeographyChange, RegisterService, ServiceView, SlotsChange, StateChange};

use crate::common::{self, parse_duration, Conn};
use crate::describe::instance_table;
use crate::{Failure, Output};

#[derive(clap::Args)]
pub struct Args {
    /// The service manifest (native YAML or TOSCA), one service per file; or a demand or
    /// infrastructure document, whose regions and latencies the domain resolves clients by.
    #[arg(short = 'f', long = "file", required = true)]
    pub file: PathBuf,
    /// Session slots wanted domain-wide (default: the components' minimum instances).
    #[arg(long)]
    pub slots: Option<u32>,
    /// Return once the deployment is accepted instead of waiting for running instances.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for all instances to run.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Polls the service until every placed instance runs, or `timeout`.
pub async fn wait_running(client: &zonal_proto::Client, id: &str, timeout: Duration) -> Result<ServiceView, Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        let v: ServiceView = client.get(&format!("/1.0/services/{id}?instances=true")).await?;
        let expected: u32 = v.placement.values().flat_map(|c| c.values()).sum();
        let running = v
            .instances
            .as_ref()
            .map_or(0, |i| i.iter().filter(|x| x.state == zonal_control::reconcile::InstanceState::Running).count())
            as u32;
        if v.state == "deployed" && running >= expected && expected > 0 {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            let why = v.message.clone().unwrap_or_else(|| format!("{running} of {expected} instances running"));
            return Err(Failure::new(1, format!("service {id} is {} after {timeout:?}: {why}", v.state)));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The geography a bundle's demand and infrastructure documents carry (`None`: neither).
pub fn geography_of(bundle: &Bundle) -> Option<GeographyChange> {
    let mut change = GeographyChange::default();
    let demands: Vec<_> = bundle.demands().collect();
    if !demands.is_empty() {
        change.regions = Some(demands.iter().flat_map(|d| d.regions.iter().cloned()).collect());
    }
    let infras: Vec<_> = bundle.infrastructures().collect();
    if let Some(first) = infras.first() {
        change.latencies = Some(infras.iter().flat_map(|i| i.latencies.iter().cloned()).collect());
        change.latency_model = Some(first.latency_model);
    }
    (change != GeographyChange::default()).then_some(change)
}

/// Sends `change` to the domain; returns the geography now in force.
pub async fn push_geography(client: &zonal_proto::Client, change: &GeographyChange) -> Result<Geography, Failure> {
    Ok(client.put("/1.0/geography", change).await?)
}

fn apply_geography(args: &Args, change: GeographyChange) -> Result<(), Failure> {
    let client = args.conn.client()?;
    let geo = common::client_runtime()?.block_on(push_geography(&client, &change))?;
    match args.output {
        Output::Json => common::print_json(&geo),
        Output::Table => {
            if change.regions.is_some() {
                println!("domain geography: {} user regions", geo.regions.len());
            }
            if change.latencies.is_some() {
                println!("domain geography: {} measured latencies", geo.latencies.len());
            }
        }
    }
    Ok(())
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("warn");
    let loaded =
        crate::validate::load_valid(std::slice::from_ref(&args.file), &crate::validate::DatasetArgs::default())?;
    let services: Vec<_> = loaded.bundle.services().collect();
    if services.is_empty() {
        if let Some(change) = geography_of(&loaded.bundle) {
            return apply_geography(&args, change);
        }
    }
    if services.len() != 1 {
        return Err(Failure::new(
            2,
            format!(
                "{}: expected exactly one service (or a demand or infrastructure document), found {} services",
                args.file.display(),
                services.len()
            ),
        ));
    }
    let id = services[0].name.clone();
    let manifest = std::fs::read_to_string(&args.file)
        .map_err(|e| Failure::new(1, format!("cannot read {}: {e}", args.file.display())))?;
    let client = args.conn.client()?;
    common::client_runtime()?.block_on(async {
        let start = Instant::now();
        let _: ServiceView =
            client.post("/1.0/services", &RegisterService { serviceid: Some(id.clone()), manifest }).await?;
        if let Some(slots) = args.slots {
            let _: ServiceView = client.put(&format!("/1.0/services/{id}/slots"), &SlotsChange { slots }).await?;
        }
        let accepted: ServiceView =
            client.put(&format!("/1.0/services/{id}/state"), &StateChange { state: "deploy".into() }).await?;
        let triggered = start.elapsed();
        if args.no_wait {
            match args.output {
                Output::Json => common::print_json(&accepted),
                Output::Table => println!("service {id}: deployment accepted ({})", accepted.state),
            }
            return Ok(());
        }
        let v = wait_running(&client, &id, args.timeout).await?;
        let took = start.elapsed();
        match args.output {
            Output::Json => common::print_json(&serde_json::json!({
                "service": v,
                "trigger_seconds": triggered.as_secs_f64(),
                "running_seconds": took.as_secs_f64(),
            })),
            Output::Table => {
                for (zone, comps) in &v.placement {
                    let parts: Vec<String> = comps.iter().map(|(c, n)| format!("{c}×{n}")).collect();
                    println!("service {id} placed in zone {zone}: {}", parts.join(", "));
                }
                println!(
                    "deployment accepted in {:.0} ms; all instances running after {:.0} ms\n",
                    triggered.as_secs_f64() * 1000.0,
                    took.as_secs_f64() * 1000.0
                );
                print!("{}", instance_table(v.instances.as_deref().unwrap_or_default()).render());
            }
        }
        Ok(())
    })
}
