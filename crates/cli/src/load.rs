//! `zonal load SERVICE`: a load generator for session services.
//!
//! Sessions arrive as a Poisson process (`--rate` per second, exponential gaps) from client
//! regions chosen by weight (`--from [NAME=]LAT,LON[:WEIGHT]`, the regions of a Demand
//! document with `--demand`, or `--region NAME[:WEIGHT]` for a user region the domain knows,
//! resolved by name so that its measured latencies count). Each session is resolved at the domain
//! (`GET /1.0/resolve/{service}`), opened over TCP at the zone endpoint returned, and held
//! for a duration drawn from an exponential distribution (`--session-mean`, capped at
//! `--session-max`). One seed (`--seed`) drives arrivals, regions and durations, so a run is
//! repeatable up to what the system answers.
//!
//! A session is *accepted* when the server greets it (`zonal-workload … instance=ID`),
//! *rejected* when resolution finds no slot or the server answers `busy: …`, *failed* when
//! resolution or the connection fails otherwise, and *cut* when the server closes it before
//! its planned end. Connect latency is measured from the start of the TCP connect to the
//! greeting. After the arrival period every open session runs to its planned end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpStream;
use zonal_proto::{Client, ClientError};

use crate::common::{self, parse_duration, Conn};
use crate::{Failure, Output};

#[derive(clap::Args)]
pub struct Args {
    /// The service to open sessions to.
    pub service: String,
    /// A client region: [NAME=]LAT,LON[:WEIGHT] (repeatable; weight 1 by default).
    #[arg(long = "from", value_name = "[NAME=]LAT,LON[:WEIGHT]", value_parser = parse_region)]
    pub from: Vec<RegionArg>,
    /// Take the client regions (positions and weights) from a Demand document.
    #[arg(long)]
    pub demand: Option<std::path::PathBuf>,
    /// A user region of the domain (`zonal get regions`), resolved by name: NAME[:WEIGHT]
    /// (repeatable).
    #[arg(long = "region", value_name = "NAME[:WEIGHT]", value_parser = parse_named_region)]
    pub region: Vec<RegionArg>,
    /// New sessions per second (Poisson arrivals).
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// How long new sessions keep arriving.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Mean session length (exponentially distributed).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub session_mean: Duration,
    /// Longest session (the exponential's tail is cut here).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub session_max: Duration,
    /// Seed of arrivals, regions and durations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this many sessions have arrived.
    #[arg(long)]
    pub max_sessions: Option<u64>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionArg {
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub weight: f64,
    /// Resolved by name (`?region=`) instead of by position.
    pub by_name: bool,
}

/// Parses a positive weight after `:` in `text`.
fn parse_weight(text: &str, w: &str) -> Result<f64, String> {
    let w: f64 = w.trim().parse().map_err(|_| format!("{text:?}: weight {w:?} is not a number"))?;
    if !(w.is_finite() && w > 0.0) {
        return Err(format!("{text:?}: expected a positive weight"));
    }
    Ok(w)
}

/// Parses `NAME[:WEIGHT]`.
pub fn parse_named_region(text: &str) -> Result<RegionArg, String> {
    let (name, weight) = match text.rsplit_once(':') {
        Some((n, w)) => (n, parse_weight(text, w)?),
        None => (text, 1.0),
    };
    if let Some(problem) = zonal_model::names::name_problem(name) {
        return Err(format!("{text:?}: {problem}"));
    }
    Ok(RegionArg { name: name.to_string(), lat: 0.0, lon: 0.0, weight, by_name: true })
}

/// Parses `[NAME=]LAT,LON[:WEIGHT]`.
pub fn parse_region(text: &str) -> Result<RegionArg, String> {
    let (name, rest) = match text.split_once('=') {
        Some((n, r)) => (Some(n.to_string()), r),
        None => (None, text),
    };
    let (pos, weight) = match rest.split_once(':') {
        Some((p, w)) => (p, parse_weight(text, w)?),
        None => (rest, 1.0),
    };
    let (lat, lon) = crate::resolve::parse_position(pos)?;
    Ok(RegionArg { name: name.unwrap_or_else(|| pos.to_string()), lat, lon, weight, by_name: false })
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

fn percentiles(mut v: Vec<f64>) -> Percentiles {
    if v.is_empty() {
        return Percentiles::default();
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Percentiles { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: v[v.len() - 1] }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct RegionCount {
    pub accepted: u64,
    pub rejected: u64,
}

/// What a run measured.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub service: String,
    pub seed: u64,
    pub rate: f64,
    pub duration_s: f64,
    pub arrived: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Sessions the server closed before their planned end.
    pub cut: u64,
    pub completed: u64,
    pub peak_open: u64,
    /// Connect latency (TCP connect to greeting), milliseconds.
    pub connect_ms: Percentiles,
    /// Resolution latency, milliseconds.
    pub resolve_ms: Percentiles,
    pub zones: BTreeMap<String, u64>,
    pub instances: BTreeMap<String, u64>,
    pub regions: BTreeMap<String, RegionCount>,
    /// Why sessions were rejected or failed, by reason.
    pub reasons: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Tally {
    report: Report,
    open: u64,
    connect: Vec<f64>,
    resolve: Vec<f64>,
}

type Shared = Arc<Mutex<Tally>>;

fn tally(t: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Exponential sample with the given mean (inverse CDF; `u` in [0, 1)).
fn exponential(u: f64, mean: f64) -> f64 {
    -(1.0 - u).ln() * mean
}

enum Outcome {
    Accepted { zone: String, instance: String, connect_ms: f64 },
    Rejected(String),
    Failed(String),
}

async fn open_session(client: &Client, path: &str, t: &Shared) -> (Outcome, Option<TcpStream>) {
    let started = Instant::now();
    let resolved = crate::resolve::resolve(client, path).await;
    let resolve_ms = started.elapsed().as_secs_f64() * 1e3;
    tally(t).resolve.push(resolve_ms);
    let r = match resolved {
        Ok(r) => r,
        Err(ClientError::Api { status: 503, body, .. }) => return (Outcome::Rejected(body.error), None),
        Err(e) => {
            return (
                Outcome::Failed(format!("resolve: {}", e.status().map_or("unreachable".into(), |s| s.to_string()))),
                None,
            )
        }
    };
    let t0 = Instant::now();
    let stream = match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&r.endpoint)).await {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => return (Outcome::Failed("connect refused".into()), None),
        Err(_) => return (Outcome::Failed("connect timeout".into()), None),
    };
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    match tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return (Outcome::Failed("no greeting".into()), None),
    }
    let connect_ms = t0.elapsed().as_secs_f64() * 1e3;
    if line.starts_with("busy") {
        return (Outcome::Rejected("busy".into()), None);
    }
    let instance = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("instance="))
        .map_or_else(|| "unknown".to_string(), str::to_string);
    (Outcome::Accepted { zone: r.zone, instance, connect_ms }, Some(reader.into_inner()))
}

async fn session(client: Client, path: String, region: String, hold: Duration, t: Shared) {
    let (outcome, stream) = open_session(&client, &path, &t).await;
    {
        let mut g = tally(&t);
        let counts = g.report.regions.entry(region.clone()).or_default();
        match &outcome {
            Outcome::Accepted { .. } => counts.accepted += 1,
            Outcome::Rejected(_) => counts.rejected += 1,
            Outcome::Failed(_) => {}
        }
        match outcome {
            Outcome::Accepted { zone, instance, connect_ms } => {
                g.report.accepted += 1;
                *g.report.zones.entry(zone).or_default() += 1;
                *g.report.instances.entry(instance).or_default() += 1;
                g.connect.push(connect_ms);
                g.open += 1;
                g.report.peak_open = g.report.peak_open.max(g.open);
            }
            Outcome::Rejected(why) => {
                g.report.rejected += 1;
                *g.report.reasons.entry(why).or_default() += 1;
            }
            Outcome::Failed(why) => {
                g.report.failed += 1;
                *g.report.reasons.entry(why).or_default() += 1;
            }
        }
    }
    let Some(mut stream) = stream else { return };
    // Hold the session; any read that ends (EOF, reset) before the planned end is a cut.
    let mut buf = [0u8; 256];
    let cut = tokio::time::timeout(hold, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok();
    drop(stream);
    let mut g = tally(&t);
    g.open = g.open.saturating_sub(1);
    if cut {
        g.report.cut += 1;
    } else {
        g.report.completed += 1;
    }
}

fn regions(args: &Args) -> Result<Vec<RegionArg>, Failure> {
    let mut out = args.from.clone();
    out.extend(args.region.iter().cloned());
    if let Some(path) = &args.demand {
        let loaded = crate::validate::load_valid(std::slice::from_ref(path), &crate::validate::DatasetArgs::default())?;
        for r in loaded.bundle.demand().regions {
            let Some(l) = r.location else {
                eprintln!("note: region {} has no location; skipped", r.name);
                continue;
            };
            out.push(RegionArg { name: r.name, lat: l.lat, lon: l.lon, weight: r.weight, by_name: false });
        }
    }
    if out.is_empty() {
        return Err(Failure::new(
            2,
            "no client regions: pass --from LAT,LON or --region NAME (repeatable), or --demand FILE",
        ));
    }
    Ok(out)
}

pub fn run(args: Args) -> Result<(), Failure> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(Failure::new(
            2,
            format!("--rate {}: expected a positive number of sessions per second", args.rate),
        ));
    }
    let regions = regions(&args)?;
    let total_weight: f64 = regions.iter().map(|r| r.weight).sum();
    // A load generator counts what failed: its resolutions are not retried.
    let client = args.conn.client()?.retrying(zonal_proto::client::Retry::for_up_to(std::time::Duration::ZERO));
    let rt = common::client_runtime()?;
    let t: Shared = Arc::new(Mutex::new(Tally::default()));
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(args.duration.as_millis() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    };
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let mean_gap = 1.0 / args.rate;
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        let mut next = 0.0f64;
        let mut arrived = 0u64;
        loop {
            next += exponential(rng.random::<f64>(), mean_gap);
            if next >= args.duration.as_secs_f64() || args.max_sessions.is_some_and(|m| arrived >= m) {
                break;
            }
            let pick = rng.random::<f64>() * total_weight;
            let mut acc = 0.0;
            let region = regions
                .iter()
                .find(|r| {
                    acc += r.weight;
                    pick < acc
                })
                .unwrap_or(&regions[regions.len() - 1]);
            let hold = Duration::from_secs_f64(exponential(rng.random::<f64>(), args.session_mean.as_secs_f64()))
                .min(args.session_max);
            let at = started + Duration::from_secs_f64(next);
            loop {
                let now = Instant::now();
                if now >= at {
                    break;
                }
                tokio::time::sleep((at - now).min(Duration::from_millis(200))).await;
                progress(&bar, &t, started);
            }
            arrived += 1;
            tally(&t).report.arrived = arrived;
            let path = if region.by_name {
                crate::resolve::path(&args.service, None, Some(&region.name))
            } else {
                crate::resolve::path(&args.service, Some((region.lat, region.lon)), None)
            };
            tasks.spawn(session(client.clone(), path, region.name.clone(), hold, t.clone()));
            progress(&bar, &t, started);
        }
        // Let every open session run to its planned end.
        loop {
            tokio::select! {
                r = tasks.join_next() => if r.is_none() { break },
                _ = tokio::time::sleep(Duration::from_millis(200)) => progress(&bar, &t, started),
            }
        }
    });
    bar.finish_and_clear();
    let mut g = tally(&t);
    let mut report = std::mem::take(&mut g.report);
    report.service = args.service.clone();
    report.seed = args.seed;
    report.rate = args.rate;
    report.duration_s = args.duration.as_secs_f64();
    report.connect_ms = percentiles(std::mem::take(&mut g.connect));
    report.resolve_ms = percentiles(std::mem::take(&mut g.resolve));
    drop(g);
    match args.output {
        Output::Json => common::print_json(&report),
        Output::Table => print_report(&report),
    }
    Ok(())
}

fn progress(bar: &indicatif::ProgressBar, t: &Shared, started: Instant) {
    let g = tally(t);
    bar.set_position(started.elapsed().as_millis() as u64);
    bar.set_message(format!(
        "open {} · accepted {} · rejected {} · cut {} · failed {}",
        g.open, g.report.accepted, g.report.rejected, g.report.cut, g.report.failed
    ));
}

fn print_report(r: &Report) {
    println!(
        "{}: {} sessions arrived ({:.1}/s for {:.0} s, seed {}): {} accepted, {} rejected, {} failed; {} completed, {} cut; peak {} open",
        r.service, r.arrived, r.rate, r.duration_s, r.seed, r.accepted, r.rejected, r.failed, r.completed, r.cut, r.peak_open
    );
    let c = &r.connect_ms;
    println!("connect latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms", c.p50, c.p90, c.p99, c.max);
    let mut t = crate::table::Table::new(["ZONE", "SESSIONS"]);
    for (z, n) in &r.zones {
        t.row([z.clone(), n.to_string()]);
    }
    print!("{}", t.render());
    let mut t = crate::table::Table::new(["INSTANCE", "SESSIONS"]);
    for (i, n) in &r.instances {
        t.row([i.clone(), n.to_string()]);
    }
    print!("{}", t.render());
    if !r.reasons.is_empty() {
        let why: Vec<String> = r.reasons.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!("rejected/failed: {}", why.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse_with_and_without_name_and_weight() {
        let r = parse_region("antwerp=51.2,4.4:3").expect("full form");
        assert_eq!((r.name.as_str(), r.lat, r.lon, r.weight), ("antwerp", 51.2, 4.4, 3.0));
        let r = parse_region("50.1,8.7").expect("position only");
        assert_eq!((r.name.as_str(), r.weight), ("50.1,8.7", 1.0));
        assert!(parse_region("x=91,0").is_err());
        assert!(parse_region("x=1,2:0").is_err());
        assert!(parse_region("nowhere").is_err());
    }

    #[test]
    fn percentiles_and_exponential_samples() {
        let p = percentiles((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(percentiles(Vec::new()).max, 0.0);
        // The mean of many inverse-CDF samples is close to the mean asked for.
        let n = 10_000;
        let mean: f64 =
            (0..n).map(|i| exponential((f64::from(i) + 0.5) / f64::from(n), 2.0)).sum::<f64>() / f64::from(n);
        assert!((mean - 2.0).abs() < 0.05, "{mean}");
    }
}
