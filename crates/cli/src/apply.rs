//! `zonal apply -f FILE`: register a service and deploy it; prints what the domain decided
//! (which placer, why) and where it runs. `--dry-run` prints the decision the domain would
//! make as a diff against what runs, and changes nothing.
//!
//! A file without a service sets what the domain decides with instead: a Demand document's
//! user regions and declared demand, an Infrastructure document (links, prices, proximity
//! classes, measured latencies, latency model), a KnowledgeBase (workload tags → profiles).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use zonal_control::geography::Geography;
use zonal_domain::decisions::DecisionRecord;
use zonal_model::Bundle;
use zonal_place::decide::Decision;
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
    /// Print the decision the domain would make (placement, objective, the diff against what
    /// runs) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep a service that cannot be placed now pending (decided again as the domain
    /// changes) instead of refusing it.
    #[arg(long)]
    pub pending: bool,
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

/// The geography a bundle's demand and infrastructure documents carry (`None`: neither):
/// user regions and declared demand, measured latencies and the latency model.
pub fn geography_of(bundle: &Bundle) -> Option<GeographyChange> {
    let mut change = GeographyChange::default();
    let demands: Vec<_> = bundle.demands().collect();
    if !demands.is_empty() {
        change.regions = Some(demands.iter().flat_map(|d| d.regions.iter().cloned()).collect());
        change.demand = Some(demands.iter().flat_map(|d| d.entries.iter().cloned()).collect());
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

/// Sends the bundle's infrastructure document and knowledge base to the domain (the placement
/// pipeline decides with their links, prices, proximity classes and profiles).
pub async fn push_documents(client: &zonal_proto::Client, bundle: &Bundle) -> Result<Vec<String>, Failure> {
    let mut done = Vec::new();
    if bundle.infrastructures().next().is_some() {
        let infra = bundle.infrastructure();
        let _: serde_json::Value = client.put("/1.0/infrastructure", &infra).await?;
        done.push(format!("domain infrastructure: {} zones, {} links", infra.zones.len(), infra.links.len()));
    }
    if let Some(kb) = bundle.knowledge_bases().next() {
        let _: serde_json::Value = client.put("/1.0/knowledge-base", kb).await?;
        done.push(format!("domain knowledge base: {} profiles, {} tags", kb.profiles.len(), kb.tags.len()));
    }
    Ok(done)
}

fn apply_documents(args: &Args, bundle: &Bundle) -> Result<(), Failure> {
    let client = args.conn.client()?;
    common::client_runtime()?.block_on(async {
        let mut lines = push_documents(&client, bundle).await?;
        let mut geo = None;
        if let Some(change) = geography_of(bundle) {
            let g = push_geography(&client, &change).await?;
            if change.regions.is_some() {
                lines.push(format!("domain geography: {} user regions", g.regions.len()));
            }
            if let Some(d) = &change.demand {
                lines.push(format!("domain demand: {} entries declared", d.len()));
            }
            if change.latencies.is_some() {
                lines.push(format!("domain geography: {} measured latencies", g.latencies.len()));
            }
            geo = Some(g);
        }
        match args.output {
            Output::Json => common::print_json(&serde_json::json!({"applied": lines, "geography": geo})),
            Output::Table => {
                for l in lines {
                    println!("{l}");
                }
            }
        }
        Ok(())
    })
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("warn");
    let loaded =
        crate::validate::load_valid(std::slice::from_ref(&args.file), &crate::validate::DatasetArgs::default())?;
    let services: Vec<_> = loaded.bundle.services().collect();
    if services.is_empty() {
        let b = &loaded.bundle;
        if b.infrastructures().next().is_some() || b.demands().next().is_some() || b.knowledge_bases().next().is_some()
        {
            if args.dry_run {
                return Err(Failure::new(2, "--dry-run decides a service; this file has none"));
            }
            return apply_documents(&args, b);
        }
    }
    if services.len() != 1 {
        return Err(Failure::new(
            2,
            format!(
                "{}: expected exactly one service (or demand, infrastructure or knowledge-base documents), found {} services",
                args.file.display(),
                services.len()
            ),
        ));
    }
    let id = services[0].name.clone();
    let manifest = std::fs::read_to_string(&args.file)
        .map_err(|e| Failure::new(1, format!("cannot read {}: {e}", args.file.display())))?;
    let client = args.conn.client()?;
    if args.dry_run {
        return common::client_runtime()?.block_on(async {
            let req = serde_json::json!({"manifest": manifest, "serviceid": id, "slots": args.slots});
            // A dry run stores nothing: sending it again is harmless.
            let d: Decision = client.post_idempotent("/1.0/plans", &req).await?;
            match args.output {
                Output::Json => common::print_json(&d),
                Output::Table => print!("{}", crate::decision::render(&d)),
            }
            Ok(())
        });
    }
    common::client_runtime()?.block_on(async {
        let start = Instant::now();
        // Registering under its id with the same manifest again answers the same (the domain
        // keeps the first): idempotent, so retried across a domain restart.
        let _: ServiceView =
            client.post_idempotent("/1.0/services", &RegisterService { serviceid: Some(id.clone()), manifest }).await?;
        if let Some(slots) = args.slots {
            let _: ServiceView = client.put(&format!("/1.0/services/{id}/slots"), &SlotsChange { slots }).await?;
        }
        let path = format!("/1.0/services/{id}/state{}", if args.pending { "?pending=true" } else { "" });
        let accepted: ServiceView = client.put(&path, &StateChange { state: "deploy".into() }).await?;
        let triggered = start.elapsed();
        let decision: Option<DecisionRecord> = client.get(&format!("/1.0/services/{id}/decision")).await.ok();
        if args.no_wait || accepted.state == "pending" {
            match args.output {
                Output::Json => common::print_json(&serde_json::json!({"service": accepted, "decision": decision})),
                Output::Table => {
                    println!("service {id}: deployment accepted ({})", accepted.state);
                    if let Some(m) = &accepted.message {
                        println!("{m}");
                    }
                    if let Some(d) = &decision {
                        println!("{}", d.decision.summary);
                    }
                }
            }
            return Ok(());
        }
        let v = wait_running(&client, &id, args.timeout).await?;
        let took = start.elapsed();
        match args.output {
            Output::Json => common::print_json(&serde_json::json!({
                "service": v,
                "decision": decision,
                "trigger_seconds": triggered.as_secs_f64(),
                "running_seconds": took.as_secs_f64(),
            })),
            Output::Table => {
                if let Some(d) = &decision {
                    let d = &d.decision;
                    println!("decided by {} ({}): {}", d.route.as_str(), d.plan.algorithm, d.reason);
                }
                for (zone, comps) in &v.placement {
                    let parts: Vec<String> = comps.iter().map(|(c, n)| format!("{c}×{n}")).collect();
                    println!("service {id} placed in zone {zone}: {}", parts.join(", "));
                }
                if let Some(d) = &decision {
                    for p in &d.decision.target.paths {
                        println!(
                            "channel {} → {} over {} ({:.2} ms, {} × {} Mbit/s reserved)",
                            p.from,
                            p.to,
                            p.zones.join(" → "),
                            p.latency_ms,
                            p.copies,
                            p.mbps
                        );
                    }
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
