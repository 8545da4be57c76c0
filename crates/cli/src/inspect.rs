//! `zonal inspect FILE... [--output json]`

use std::path::PathBuf;

use serde_json::json;
use zonal_model::Bundle;

use crate::table::Table;
use crate::validate::load_valid;
use crate::{Failure, Output};

#[derive(clap::Args)]
pub struct Args {
    /// Descriptor or dataset files, read together.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub datasets: crate::validate::DatasetArgs,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Counts and totals shown by `inspect`.
pub fn summary(bundle: &Bundle) -> serde_json::Value {
    let infra = bundle.infrastructure();
    let demand = bundle.demand();
    let capacity: serde_json::Map<String, serde_json::Value> =
        infra.total_capacity().0.iter().map(|(k, a)| (k.clone(), json!(a.to_string()))).collect();
    let services: Vec<serde_json::Value> = bundle
        .services()
        .map(|s| {
            json!({
                "name": s.name,
                "components": s.components.len(),
                "channels": s.channels.len(),
                "entry": s.entry_component().map(|c| c.name.clone()),
            })
        })
        .collect();
    json!({
        "documents": bundle.documents.len(),
        "zones": infra.zones.len(),
        "transit_zones": infra.zones.iter().filter(|z| z.is_transit()).count(),
        "hosts": infra.host_count(),
        "links": infra.links.len(),
        "measured_latencies": infra.latencies.len(),
        "capacity": capacity,
        "services": bundle.services().count(),
        "components": bundle.services().map(|s| s.components.len()).sum::<usize>(),
        "channels": bundle.services().map(|s| s.channels.len()).sum::<usize>(),
        "regions": demand.regions.len(),
        "demand_entries": demand.entries.len(),
        "service_list": services,
    })
}

pub fn run(args: Args) -> Result<(), Failure> {
    let loaded = load_valid(&args.files, &args.datasets)?;
    let bundle = &loaded.bundle;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&summary(bundle)).unwrap_or_default());
        return Ok(());
    }
    let infra = bundle.infrastructure();
    if !infra.zones.is_empty() {
        let transit = infra.zones.iter().filter(|z| z.is_transit()).count();
        println!(
            "{} zones ({} with hosts, {} transit), {} hosts, {} links, {} measured latencies",
            infra.zones.len(),
            infra.zones.len() - transit,
            transit,
            infra.host_count(),
            infra.links.len(),
            infra.latencies.len()
        );
        println!("capacity: {}\n", infra.total_capacity());
        let mut t = Table::new(["ZONE", "TIER", "HOSTS", "CPU", "MEMORY", "LOCATION"]);
        let shown = infra.zones.iter().take(40);
        for z in shown {
            let cap = z.capacity();
            t.row([
                z.name.clone(),
                z.tier.clone().unwrap_or_else(|| "-".into()),
                z.hosts.len().to_string(),
                cap.0.get("cpu").map_or("-".into(), |a| a.to_string()),
                cap.0.get("memory").map_or("-".into(), |a| a.to_string()),
                z.location.map_or("-".into(), |l| format!("{:.4},{:.4}", l.lat, l.lon)),
            ]);
        }
        print!("{}", t.render());
        if infra.zones.len() > 40 {
            println!("… and {} more zones (use --output json for counts only)", infra.zones.len() - 40);
        }
        println!();
    }
    let mut t = Table::new(["SERVICE", "COMPONENTS", "CHANNELS", "ENTRY", "SLA"]);
    for s in bundle.services() {
        t.row([
            s.name.clone(),
            s.components.len().to_string(),
            s.channels.len().to_string(),
            s.entry_component().map_or("-".into(), |c| c.name.clone()),
            s.sla.map_or_else(
                || s.proximity.clone().map_or("-".into(), |p| format!("proximity {p}")),
                |x| format!("{}/{}/{}", x.r_min, x.r_med, x.r_max),
            ),
        ]);
    }
    if !t.is_empty() {
        print!("{}", t.render());
        println!();
    }
    let demand = bundle.demand();
    if !demand.regions.is_empty() {
        let slots: u64 = demand.entries.iter().map(|e| u64::from(e.slots.peak())).sum();
        println!("{} regions, {} demand entries, {} slots at peak", demand.regions.len(), demand.entries.len(), slots);
    }
    Ok(())
}
