//! `zonal consolidate`: pack the running instances of each zone onto fewer hosts (less
//! power) as a checked, ordered migration plan; with `--apply`, carry it out and follow its
//! progress; `--last` shows the last run (also the ones the domain's triggers started).

use std::time::Duration;

use zonal_domain::consolidate::{ConsolidationRequest, ConsolidationRun, RunState, StepState, ZoneConsolidation};

use crate::common::{self, parse_duration, Conn};
use crate::table::Table;
use crate::{Failure, Output};

#[derive(clap::Args)]
pub struct Args {
    /// Carry the plan out, step by step (replacement first, then the old instance stops).
    #[arg(long)]
    pub apply: bool,
    /// Show the last run instead of planning a new one.
    #[arg(long, conflicts_with = "apply")]
    pub last: bool,
    /// Only this zone (repeatable; default: every available zone).
    #[arg(long = "zone")]
    pub zones: Vec<String>,
    /// At most this many moves per zone.
    #[arg(long)]
    pub max_moves: Option<usize>,
    /// Migration cost in watts per move (default 1).
    #[arg(long)]
    pub per_move_watts: Option<f64>,
    /// Migration cost in watts per GiB of memory moved (default 1).
    #[arg(long)]
    pub per_gib_watts: Option<f64>,
    /// Time for the packer per zone.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub time_limit: Duration,
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

fn percent_saved(z: &ZoneConsolidation) -> String {
    if z.watts_before > 0.0 {
        format!(" ({:+.0} %)", 100.0 * (z.watts_after - z.watts_before) / z.watts_before)
    } else {
        String::new()
    }
}

/// The run as people read it: per zone a summary line, the steps, what is suspended and what
/// stays.
fn render(run: &ConsolidationRun) -> String {
    let mut out = format!("Consolidation ({}): {}\n", run.reasons.join(", "), run.state);
    for z in &run.zones {
        out.push_str(&format!(
            "\nZone {}: {} → {} hosts on, {:.0} W → {:.0} W{}, {} step(s), {} moved ({}); {}\n",
            z.zone,
            z.hosts_on_before,
            z.hosts_on_after,
            z.watts_before,
            z.watts_after,
            percent_saved(z),
            z.steps.len(),
            zonal_model::Size(z.bytes_moved).human(),
            z.algorithm,
            if z.checked { "checked: every step within capacity" } else { "NOT checked" },
        ));
        if !z.steps.is_empty() {
            let mut t = Table::new(["STEP", "INSTANCE", "SERVICE/COMPONENT", "FROM", "TO", "STATE", "NOTE"]);
            for (k, s) in z.steps.iter().enumerate() {
                let note = match (&s.error, &s.replacement, s.temporary) {
                    (Some(e), _, _) => e.clone(),
                    (None, Some(r), _) => format!("now {r}"),
                    (None, None, true) => "temporary stop".into(),
                    _ => String::new(),
                };
                t.row([
                    (k + 1).to_string(),
                    s.instance.clone(),
                    format!("{}/{}", s.service, s.component),
                    s.from.clone(),
                    s.to.clone(),
                    s.state.to_string(),
                    note,
                ]);
            }
            for line in t.render().lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
        if !z.hosts_to_suspend.is_empty() {
            out.push_str(&format!("  to suspend: {}\n", z.hosts_to_suspend.join(", ")));
        }
        for (id, why) in &z.kept {
            out.push_str(&format!("  stays: {id} ({why})\n"));
        }
    }
    for (zone, why) in &run.errors {
        out.push_str(&format!("\nZone {zone}: not planned — {why}\n"));
    }
    out
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("warn");
    let client = args.conn.client()?;
    let rt = common::client_runtime()?;
    let run: ConsolidationRun = rt.block_on(async {
        if args.last {
            return client.get::<ConsolidationRun>("/1.0/consolidation").await.map_err(Failure::from);
        }
        let req = ConsolidationRequest {
            apply: args.apply,
            zones: args.zones.clone(),
            max_moves: args.max_moves,
            per_move_watts: args.per_move_watts,
            per_gib_watts: args.per_gib_watts,
            time_limit_ms: Some(args.time_limit.as_millis() as u64),
        };
        let mut run: ConsolidationRun = client.post("/1.0/consolidation", &req).await?;
        if run.state != RunState::Applying {
            return Ok(run);
        }
        let total: usize = run.zones.iter().map(|z| z.steps.len()).sum();
        if args.output == Output::Table {
            println!(
                "Applying {total} step(s) in {} zone(s)…",
                run.zones.iter().filter(|z| !z.steps.is_empty()).count()
            );
        }
        let bar = if args.output == Output::Table {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        while run.state == RunState::Applying {
            tokio::time::sleep(Duration::from_millis(200)).await;
            run = client.get("/1.0/consolidation").await?;
            let done = run.zones.iter().flat_map(|z| &z.steps).filter(|s| s.state == StepState::Done).count();
            bar.set_position(done as u64);
            if let Some(s) = run.zones.iter().flat_map(|z| &z.steps).find(|s| s.state == StepState::Moving) {
                bar.set_message(format!("moving {} to {}", s.instance, s.to));
            }
        }
        bar.finish_and_clear();
        Ok(run)
    })?;
    match args.output {
        Output::Json => common::print_json(&run),
        Output::Table => print!("{}", render(&run)),
    }
    if run.state == RunState::Failed {
        return Err(Failure::new(1, "a consolidation step failed (see its note); the steps before it stay done"));
    }
    Ok(())
}
