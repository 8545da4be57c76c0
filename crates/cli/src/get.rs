//! `zonal get zones|services|instances|users|regions`.

use zonal_proto::wire::{InstanceView, RegionView, ServiceView, ZoneView};

use crate::common::{self, Conn};
use crate::describe::instance_table;
use crate::table::Table;
use crate::{Failure, Output};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Kind {
    Zones,
    Services,
    Instances,
    Users,
    /// User regions (from `zonal apply -f DEMAND`) and the slots of each service within reach.
    Regions,
}

#[derive(clap::Args)]
pub struct Args {
    /// What to list.
    #[arg(value_enum)]
    pub kind: Kind,
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

fn amount(r: &zonal_model::Resources, name: &str) -> String {
    r.0.get(name).map_or("-".into(), |a| match a.unit {
        zonal_model::ResourceUnit::Bytes => zonal_model::Size(a.value).human(),
        // Cores with at most one decimal: "255.5/256" reads better than "255500m/256".
        zonal_model::ResourceUnit::Millicores => {
            let cores = a.value as f64 / 1000.0;
            if a.value % 1000 == 0 {
                format!("{cores:.0}")
            } else {
                format!("{cores:.1}")
            }
        }
        _ => a.to_string(),
    })
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("warn");
    let client = args.conn.client()?;
    common::client_runtime()?.block_on(async {
        match args.kind {
            Kind::Zones => {
                let zones: Vec<ZoneView> = client.get("/1.0/zones").await?;
                if args.output == Output::Json {
                    common::print_json(&zones);
                    return Ok(());
                }
                let mut t = Table::new([
                    "ZONE",
                    "STATE",
                    "TIER",
                    "HOSTS",
                    "CPU FREE/TOTAL",
                    "MEMORY FREE",
                    "SERVICES",
                    "INSTANCES",
                    "ENDPOINT",
                ]);
                for z in &zones {
                    t.row([
                        z.name.clone(),
                        z.state.clone(),
                        z.tier.clone().unwrap_or_else(|| "-".into()),
                        z.hosts.to_string(),
                        format!("{}/{}", amount(&z.free, "cpu"), amount(&z.capacity, "cpu")),
                        amount(&z.free, "memory"),
                        z.services.len().to_string(),
                        z.instances.to_string(),
                        z.endpoint.clone(),
                    ]);
                }
                print!("{}", t.render());
            }
            Kind::Services => {
                let services: Vec<ServiceView> = client.get("/1.0/services").await?;
                if args.output == Output::Json {
                    common::print_json(&services);
                    return Ok(());
                }
                let mut t =
                    Table::new(["SERVICE", "OWNER", "STATE", "ZONES", "INSTANCES", "SLOTS FREE/TOTAL", "MESSAGE"]);
                for s in &services {
                    let n: u32 = s.placement.values().flat_map(|c| c.values()).sum();
                    t.row([
                        s.serviceid.clone(),
                        s.owner.clone(),
                        s.state.clone(),
                        if s.zones.is_empty() { "-".into() } else { s.zones.join(",") },
                        n.to_string(),
                        format!("{}/{}", s.slots.free, s.slots.total),
                        s.message.clone().unwrap_or_default(),
                    ]);
                }
                print!("{}", t.render());
            }
            Kind::Instances => {
                let instances: Vec<InstanceView> = client.get("/1.0/instances").await?;
                if args.output == Output::Json {
                    common::print_json(&instances);
                    return Ok(());
                }
                print!("{}", instance_table(&instances).render());
            }
            Kind::Users => {
                let users: Vec<zonal_proto::wire::UserView> = client.get("/1.0/users").await?;
                if args.output == Output::Json {
                    common::print_json(&users);
                    return Ok(());
                }
                let mut t = Table::new(["USER", "ROLE", "SERVICES", "TOKENS"]);
                for u in &users {
                    t.row([u.name.clone(), u.role.clone(), u.services.to_string(), u.tokens.to_string()]);
                }
                print!("{}", t.render());
            }
            Kind::Regions => {
                let regions: Vec<RegionView> = client.get("/1.0/regions").await?;
                if args.output == Output::Json {
                    common::print_json(&regions);
                    return Ok(());
                }
                if regions.is_empty() {
                    println!("no user regions known; give the domain some with zonal apply -f DEMAND.yaml");
                    return Ok(());
                }
                let mut t = Table::new(["REGION", "SERVICE", "SLOTS IN REACH", "ZONES IN REACH", "SENT TO", "RTT"]);
                for r in &regions {
                    if r.services.is_empty() {
                        t.row([r.name.clone(), "-".into(), "-".into(), "-".into(), "-".into(), "-".into()]);
                    }
                    for s in &r.services {
                        t.row([
                            r.name.clone(),
                            s.serviceid.clone(),
                            s.advertised.to_string(),
                            if s.zones.is_empty() { "-".into() } else { s.zones.join(",") },
                            s.zone.clone().unwrap_or_else(|| "- (full)".into()),
                            s.rtt_ms.map_or("-".into(), |ms| format!("{ms:.1} ms")),
                        ]);
                    }
                }
                print!("{}", t.render());
            }
        }
        Ok(())
    })
}
