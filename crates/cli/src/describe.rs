//! `zonal describe service NAME`: placement, instances, slots and state of one service, the
//! decision that placed it (which placer and why, objective, paths, the diff it carried out)
//! and what happened to it since (its events).

use zonal_domain::decisions::{DecisionRecord, ServiceEvent};
use zonal_domain::offers::OfferRound;
use zonal_proto::wire::{InstanceView, ServiceView};

use crate::common::{self, Conn};
use crate::table::Table;
use crate::{Failure, Output};

#[derive(clap::Subcommand)]
pub enum What {
    /// One service.
    Service { name: String },
}

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

/// `name=127.0.0.1:port` for every non-admin port.
pub fn endpoints(i: &InstanceView) -> String {
    let e: Vec<String> =
        i.ports.iter().filter(|p| p.name != "admin").map(|p| format!("{}=127.0.0.1:{}", p.name, p.public)).collect();
    if e.is_empty() {
        "-".into()
    } else {
        e.join(",")
    }
}

pub fn slots(i: &InstanceView) -> String {
    i.slots.as_ref().map_or("-".into(), |s| format!("{}/{}", s.free, s.max))
}

pub fn instance_table(instances: &[InstanceView]) -> Table {
    let mut t = Table::new([
        "INSTANCE",
        "COMPONENT",
        "ZONE",
        "HOST",
        "STATE",
        "PID",
        "SLOTS FREE/MAX",
        "RESTARTS",
        "ENDPOINTS",
    ]);
    for i in instances {
        t.row([
            i.id.clone(),
            i.component.clone(),
            i.zone.clone(),
            i.host.clone(),
            format!("{}{}", i.state.as_str(), if i.adopted { " (adopted)" } else { "" }),
            i.pid.map_or("-".into(), |p| p.to_string()),
            slots(i),
            i.restarts.to_string(),
            endpoints(i),
        ]);
    }
    t
}

/// The last offer round: every offer received (and what was taken from it), then the zones
/// that made none and why.
fn offer_section(round: &OfferRound) -> String {
    let mut out = format!(
        "Offers:    {} received for {} slots within {} ms; {} uncovered\n",
        round.received.len(),
        round.slots,
        round.deadline_ms,
        round.uncovered
    );
    if !round.received.is_empty() {
        let mut t =
            Table::new(["ZONE", "OFFER", "SCORE", "PRICE/SLOT-H", "SLOTS", "TAKEN", "EVALUATOR", "ENVIRONMENTS"]);
        for o in &round.received {
            let taken = round.taken.iter().find(|t| t.offer == o.id).map_or(0, |t| t.slots);
            let envs: Vec<String> = o.environments.iter().map(|e| format!("{}:{}", e.environment, e.slots)).collect();
            t.row([
                o.zone.clone(),
                o.id.clone(),
                format!("{:.3}", o.score),
                format!("{:.4}", o.price),
                o.slots.to_string(),
                taken.to_string(),
                o.evaluator.clone(),
                envs.join(" "),
            ]);
        }
        for line in t.render().lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    for (zone, why) in &round.declined {
        out.push_str(&format!("  {zone}: no offer — {why}\n"));
    }
    out
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("warn");
    let What::Service { name } = &args.what;
    let client = args.conn.client()?;
    common::client_runtime()?.block_on(async {
        let v: ServiceView = client.get(&format!("/1.0/services/{name}?instances=true")).await?;
        if args.output == Output::Json {
            let mut v = v;
            v.manifest = None;
            let decision: Option<DecisionRecord> = client.get(&format!("/1.0/services/{name}/decision")).await.ok();
            let events: Vec<ServiceEvent> =
                client.get(&format!("/1.0/services/{name}/events")).await.unwrap_or_default();
            common::print_json(&serde_json::json!({"service": v, "decision": decision, "events": events}));
            return Ok(());
        }
        println!("Service:   {}", v.serviceid);
        println!("Owner:     {}", v.owner);
        println!("State:     {} (target {})", v.state, v.target);
        if let Some(m) = &v.message {
            println!("Message:   {m}");
        }
        println!("Slots:     {} free of {} ({} used); demand {}", v.slots.free, v.slots.total, v.slots.used, v.demand);
        if v.placement.is_empty() {
            println!("Placement: (none)");
        } else {
            println!("Placement:");
            for (zone, comps) in &v.placement {
                let parts: Vec<String> = comps.iter().map(|(c, n)| format!("{c}×{n}")).collect();
                println!("  {zone}: {}", parts.join(", "));
            }
        }
        match client.get::<DecisionRecord>(&format!("/1.0/services/{name}/decision")).await {
            Ok(d) => {
                println!("Decision:  (at {})", since(d.at_ms));
                for line in crate::decision::render(&d.decision).lines() {
                    println!("  {line}");
                }
            }
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
        let events: Vec<ServiceEvent> = client.get(&format!("/1.0/services/{name}/events")).await.unwrap_or_default();
        if !events.is_empty() {
            println!("Events:");
            for ev in events.iter().rev().take(10).rev() {
                println!("  {:>8}  {:<12} {}", since(ev.at_ms), ev.kind, ev.message);
            }
        }
        match client.get::<OfferRound>(&format!("/1.0/services/{name}/offers")).await {
            Ok(round) => print!("{}", offer_section(&round)),
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
        let instances = v.instances.unwrap_or_default();
        println!("Instances: {}", instances.len());
        if !instances.is_empty() {
            println!();
            print!("{}", instance_table(&instances).render());
        }
        Ok(())
    })
}

/// How long ago `at_ms` was, for people (`3 s ago`, `5 min ago`).
fn since(at_ms: u64) -> String {
    let ago = zonal_proto::now_ms().saturating_sub(at_ms) / 1000;
    match ago {
        0..=119 => format!("{ago} s ago"),
        120..=7199 => format!("{} min ago", ago / 60),
        _ => format!("{} h ago", ago / 3600),
    }
}
