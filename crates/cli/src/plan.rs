//! `zonal plan -f FILE... [--algorithm auto|exact|heuristic] [--only fusion|chain] [--objective …]
//! [--time-limit 10s] [--tradeoff N]`: offline placement of descriptors and datasets, checked by
//! the independent plan checker.
//!
//! `zonal plan --context -f SERVICE.yaml…`: against the running domain instead — its live
//! state (`GET /1.0/state`) with the files' services and demand added, each service decided
//! by the same pipeline the domain runs (`zonal_place::decide`), printed as a diff against what
//! runs. Nothing is stored.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use serde_json::json;
use zonal_model::TimeOfDay;
use zonal_place::auto::{fusion_problem, plan_bundle, AutoOptions, BundlePlan, ChainSolver, Method};
use zonal_place::chain::ChainObjective;
use zonal_place::fusion::{tradeoff_curve, Curve};
use zonal_place::{LpMethod, PlaceError, PlanStatus};

use crate::table::Table;
use crate::validate::{load_valid, DatasetArgs};
use crate::{Failure, Output};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Algorithm {
    /// Per chain service: the exact ILP when it is small enough to prove within --time-limit
    /// (at most 500 binaries per second of the limit), the heuristic otherwise.
    Auto,
    /// The exact chain ILP for every chain.
    Exact,
    /// Greedy + local search for every chain, with a lower bound and gap.
    Heuristic,
    /// Former spelling of `--only fusion`.
    #[value(hide = true)]
    Fusion,
    /// Former spelling of `--only chain`.
    #[value(hide = true)]
    Chain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Only {
    /// Only the services the FUSION utility LP places.
    Fusion,
    /// Only the service chains.
    Chain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChainGoal {
    /// Minimise the summed link delay of every channel's path.
    Delay,
    /// Minimise the servers used (INPUT's objective 2).
    Servers,
    /// Both, weighted by --delay-weight and --servers-weight.
    Weighted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method_ {
    Auto,
    Simplex,
    Ipm,
}

#[derive(clap::Args)]
pub struct Args {
    /// Infrastructure, service and demand files (any supported format), read together.
    #[arg(short = 'f', long = "file", required = true)]
    pub files: Vec<PathBuf>,
    /// How chains are solved: exact ILP, heuristic, or chosen by size (auto).
    #[arg(long, value_enum, default_value_t = Algorithm::Auto)]
    pub algorithm: Algorithm,
    /// Plan only the services of one method (FUSION LP or chains).
    #[arg(long, value_enum)]
    pub only: Option<Only>,
    /// Local-search iterations per chain for the heuristic (0 = greedy only).
    #[arg(long, default_value_t = 2000)]
    pub iterations: usize,
    /// Seed of the heuristic's local search.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// What the chain ILP minimises.
    #[arg(long, value_enum, default_value_t = ChainGoal::Delay)]
    pub objective: ChainGoal,
    #[arg(long, default_value_t = 1.0)]
    pub delay_weight: f64,
    #[arg(long, default_value_t = 1.0)]
    pub servers_weight: f64,
    /// FUSION Step 2 trade-off: 1 = maximal total utility (then, Step 3, the cheapest plan at
    /// that utility), 0 = fair solution at minimum cost.
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// FUSION budget (TOTAL_COST) per hour.
    #[arg(long)]
    pub budget: Option<f64>,
    /// Time of day the demand is read at (HH:MM); its peak when absent.
    #[arg(long)]
    pub at: Option<String>,
    /// Time limit of each solve.
    #[arg(long, default_value = "10s", value_parser = crate::common::parse_duration)]
    pub time_limit: Duration,
    /// Relative gap at which a MIP counts as solved.
    #[arg(long, default_value_t = 1e-4)]
    pub gap: f64,
    /// Solver threads (HiGHS default when absent).
    #[arg(long)]
    pub threads: Option<u32>,
    /// LP method: interior point for large LPs, simplex for small ones.
    #[arg(long, value_enum, default_value_t = Method_::Auto)]
    pub lp_method: Method_,
    /// Keep FUSION's fractional slot shares instead of rounding them into instances.
    #[arg(long)]
    pub no_rounding: bool,
    /// FUSION exactly as the paper: no shared zone capacity across services.
    #[arg(long)]
    pub paper_capacity: bool,
    /// Write the FUSION cost/utility curve with N budgets as CSV and SVG (into --out).
    #[arg(long, value_name = "N")]
    pub tradeoff: Option<usize>,
    /// Directory for --tradeoff files.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    #[command(flatten)]
    pub datasets: DatasetArgs,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Decide against the running domain: its live state, with the files' services and demand
    /// added, by the pipeline the domain runs; prints each decision as a diff against what
    /// runs. Optionally the client context file of that domain (default: the one `zonal up`
    /// wrote, or $ZONAL_URL/$ZONAL_TOKEN).
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "CONTEXT_FILE")]
    pub context: Option<PathBuf>,
    /// Domain API URL for --context.
    #[arg(long)]
    pub url: Option<String>,
    /// Bearer token for --context.
    #[arg(long)]
    pub token: Option<String>,
}

impl Args {
    fn options(&self) -> Result<AutoOptions, Failure> {
        let mut o = AutoOptions::default();
        if let Some(at) = &self.at {
            o.problem.at = Some(at.parse::<TimeOfDay>().map_err(|e| Failure::new(2, format!("--at: {e}")))?);
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Failure::new(2, format!("--alpha: expected a number between 0 and 1, found {}", self.alpha)));
        }
        o.fusion.alpha = self.alpha;
        o.fusion.budget = self.budget;
        o.fusion.rounding = !self.no_rounding;
        o.fusion.shared_zone_capacity = !self.paper_capacity;
        let solver = &mut o.fusion.solver;
        solver.time_limit = Some(self.time_limit);
        solver.mip_rel_gap = self.gap;
        solver.threads = self.threads;
        solver.lp_method = match self.lp_method {
            Method_::Auto => LpMethod::Auto,
            Method_::Simplex => LpMethod::Simplex,
            Method_::Ipm => LpMethod::Ipm,
        };
        o.chain.solver = o.fusion.solver.clone();
        o.chain.objective = match self.objective {
            ChainGoal::Delay => ChainObjective::Delay,
            ChainGoal::Servers => ChainObjective::UsedServers,
            ChainGoal::Weighted => ChainObjective::Weighted { delay: self.delay_weight, servers: self.servers_weight },
        };
        o.only = match (self.only, self.algorithm) {
            (Some(Only::Fusion), _) | (None, Algorithm::Fusion) => Some(Method::Fusion),
            (Some(Only::Chain), _) | (None, Algorithm::Chain) => Some(Method::Chain),
            (None, _) => None,
        };
        o.chain_solver = match self.algorithm {
            Algorithm::Exact => ChainSolver::Exact,
            Algorithm::Heuristic => ChainSolver::Heuristic,
            Algorithm::Auto | Algorithm::Fusion | Algorithm::Chain => ChainSolver::Auto,
        };
        o.heuristic.max_iterations = self.iterations;
        o.heuristic.seed = self.seed;
        o.heuristic.solver = o.chain.solver.clone();
        Ok(o)
    }
}

/// Runs `work` on another thread and shows a spinner if it takes longer than a second.
fn with_progress<T: Send>(what: &str, work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let handle = scope.spawn(work);
        let started = Instant::now();
        let mut bar: Option<indicatif::ProgressBar> = None;
        while !handle.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
            if bar.is_none() && started.elapsed() > Duration::from_secs(1) {
                let b = indicatif::ProgressBar::new_spinner().with_message(what.to_string());
                b.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                b.enable_steady_tick(Duration::from_millis(100));
                bar = Some(b);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

fn explain(e: &PlaceError) -> Failure {
    match e {
        PlaceError::Infeasible { reasons } => {
            for r in reasons {
                eprintln!("  {r}");
            }
            Failure::new(1, format!("no plan: the constraints cannot all be met ({} reason(s) above)", reasons.len()))
        }
        other => Failure::new(1, format!("no plan: {other}")),
    }
}

pub fn run(args: Args) -> Result<(), Failure> {
    let loaded = load_valid(&args.files, &args.datasets)?;
    if args.context.is_some() {
        return in_context(&args, &loaded.bundle);
    }
    let options = args.options()?;
    if let Some(n) = args.tradeoff {
        return tradeoff(&args, &loaded.bundle, &options, n);
    }
    let bundle = &loaded.bundle;
    let result = with_progress("solving", || plan_bundle(bundle, &options)).map_err(|e| explain(&e))?;
    match args.output {
        Output::Json => print_json(&result),
        Output::Table => print_table(&result),
    }
    if !result.check.is_ok() {
        return Err(Failure::new(1, format!("the plan failed the independent checker:\n{}", result.check.summary())));
    }
    Ok(())
}

fn print_json(r: &BundlePlan) {
    let p = &r.plan;
    let v = json!({
        "status": match p.status { PlanStatus::Optimal => "optimal", PlanStatus::Feasible { .. } => "feasible" },
        "algorithm": p.algorithm,
        "objective": p.objective,
        "bound": p.bound,
        "gap": p.gap,
        "solve_seconds": p.stats.seconds,
        "objective_terms": p.objective_terms,
        "placements": p.placements,
        "paths": p.paths,
        "assignments": p.assignments,
        "subscriptions": p.subscriptions,
        "methods": r.methods.iter().map(|(s, m)| json!({"service": s, "method": m})).collect::<Vec<_>>(),
        "chain_solvers": r.solvers,
        "rejected": r.rejected.iter().map(|(id, e)| json!({"subscription": id, "reason": e.to_string()})).collect::<Vec<_>>(),
        "stats": p.stats,
        "notes": p.notes,
        "check": {
            "ok": r.check.is_ok(),
            "violations": r.check.violations.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            "recomputed_terms": r.check.terms,
        },
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
}

fn print_table(r: &BundlePlan) {
    let p = &r.plan;
    let fmt_opt = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.6}"));
    println!(
        "plan: {}  status {}  objective {:.6}  bound {}  gap {}  solved in {:.3} s ({} solves, {} columns, {} rows)",
        p.algorithm,
        crate::decision::status(&p.status),
        p.objective,
        fmt_opt(p.bound),
        p.gap.map_or("-".into(), |g| format!("{:.4}%", g * 100.0)),
        p.stats.seconds,
        p.stats.solves,
        p.stats.columns,
        p.stats.rows
    );
    if r.check.is_ok() {
        println!(
            "checker: ok (capacities, latencies, paths, coverage, pins and objective terms verified independently)"
        );
    }
    if !p.objective_terms.is_empty() {
        let terms: Vec<String> = p.objective_terms.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
        println!("terms: {}", terms.join(", "));
    }
    let methods: Vec<String> = r.methods.iter().map(|(s, m)| format!("{s}: {m:?}").to_lowercase()).collect();
    println!("methods: {}", methods.join(", "));
    print_solvers(r);
    println!();
    let mut t = Table::new(["SERVICE", "COMPONENT", "ZONE", "HOST", "INSTANCES", "SLOTS", "SUBSCRIPTION"]);
    const ROWS: usize = 60;
    for pl in p.placements.iter().take(ROWS) {
        t.row([
            pl.service.clone(),
            pl.component.clone(),
            pl.zone.clone(),
            pl.host.clone().unwrap_or_else(|| "-".into()),
            pl.instances.to_string(),
            format!("{:.1}", pl.slots),
            pl.subscription.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    if !t.is_empty() {
        print!("{}", t.render());
        if p.placements.len() > ROWS {
            println!("… {} more placements (--output json has them all)", p.placements.len() - ROWS);
        }
    }
    let mut t = Table::new(["SERVICE", "SUBSCRIPTION", "CHANNEL", "PATH", "LATENCY"]);
    for path in p.paths.iter().take(ROWS) {
        t.row([
            path.service.clone(),
            path.subscription.clone().unwrap_or_else(|| "-".into()),
            format!("{} → {}", path.from, path.to),
            if path.zones.is_empty() { "(same zone)".into() } else { path.zones.join(" → ") },
            format!("{:.3} ms", path.latency_ms + 0.0),
        ]);
    }
    if !t.is_empty() {
        println!();
        print!("{}", t.render());
        if p.paths.len() > ROWS {
            println!("… {} more paths (--output json has them all)", p.paths.len() - ROWS);
        }
    }
    let mut t = Table::new(["SERVICE", "REGION", "ZONE", "SHARE", "SLOTS", "LATENCY", "UTILITY"]);
    let shown = p.assignments.iter().take(30);
    for a in shown {
        t.row([
            a.service.clone(),
            a.region.clone(),
            a.zone.clone(),
            format!("{:.3}", a.share),
            format!("{:.1}", a.slots),
            format!("{:.1} ms", a.latency_ms),
            a.utility.map_or("-".into(), |u| format!("{u:.3}")),
        ]);
    }
    if !t.is_empty() {
        println!();
        print!("{}", t.render());
        if p.assignments.len() > 30 {
            println!("… {} more assignments (--output json has them all)", p.assignments.len() - 30);
        }
    }
    for n in &p.notes {
        println!("note: {n}");
    }
}

/// One line per solver: how many chain services got it and the reason (of the first one).
fn print_solvers(r: &BundlePlan) {
    for solver in ["exact", "heuristic"] {
        let chosen: Vec<_> = r.solvers.iter().filter(|c| c.solver == solver).collect();
        let Some(first) = chosen.first() else { continue };
        let who = if chosen.len() == 1 { first.service.clone() } else { format!("{} services", chosen.len()) };
        let more = if chosen.len() > 1 { format!(" (first: {})", first.service) } else { String::new() };
        println!("chain solver: {solver} for {who}: {}{more}", first.reason);
    }
}

fn tradeoff(args: &Args, bundle: &zonal_model::Bundle, options: &AutoOptions, n: usize) -> Result<(), Failure> {
    if n < 2 {
        return Err(Failure::new(2, "--tradeoff: expected at least 2 budget points"));
    }
    let problem = fusion_problem(bundle, &options.problem).map_err(|e| explain(&e))?;
    let curve: Curve = with_progress("solving the cost/utility curve", || tradeoff_curve(&problem, &options.fusion, n))
        .map_err(|e| explain(&e))?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::new(1, format!("cannot create {}: {e}", args.out.display())))?;
    let csv_path = args.out.join("tradeoff.csv");
    let svg_path = args.out.join("tradeoff.svg");
    std::fs::write(&csv_path, curve_csv(&curve))
        .map_err(|e| Failure::new(1, format!("cannot write {}: {e}", csv_path.display())))?;
    std::fs::write(&svg_path, curve_svg(&curve))
        .map_err(|e| Failure::new(1, format!("cannot write {}: {e}", svg_path.display())))?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&curve).unwrap_or_default()),
        Output::Table => {
            let mut t = Table::new(["BUDGET", "COST", "UTILITY %", "MIN UTILITY", "WORST LATENCY"]);
            for p in std::iter::once(&curve.min_cost).chain(&curve.points).chain(std::iter::once(&curve.max_utility)) {
                t.row([
                    format!("{:.4}", p.budget),
                    format!("{:.4}", p.cost),
                    format!("{:.2}", p.utility_percent),
                    format!("{:.4}", p.min_utility),
                    format!("{:.1} ms", p.worst_latency_ms),
                ]);
            }
            print!("{}", t.render());
            println!(
                "\n{} solves in {:.2} s; wrote {} and {}",
                curve.solves,
                curve.seconds,
                csv_path.display(),
                svg_path.display()
            );
        }
    }
    Ok(())
}

/// The curve as CSV: one row per point, the two ends marked.
pub fn curve_csv(c: &Curve) -> String {
    let mut out = String::from("kind,budget,cost,total_utility,utility_percent,min_utility,worst_latency_ms\n");
    let mut row = |kind: &str, p: &zonal_place::fusion::CurvePoint| {
        out.push_str(&format!(
            "{kind},{},{},{},{},{},{}\n",
            p.budget, p.cost, p.total_utility, p.utility_percent, p.min_utility, p.worst_latency_ms
        ));
    };
    row("min_cost", &c.min_cost);
    for p in &c.points {
        row("budget", p);
    }
    row("max_utility", &c.max_utility);
    out
}

/// The curve as a self-contained SVG line chart: utility % against cost.
pub fn curve_svg(c: &Curve) -> String {
    let (w, h, m) = (640.0, 400.0, 60.0);
    let pts: Vec<(f64, f64)> = c.points.iter().map(|p| (p.cost, p.utility_percent)).collect();
    let all: Vec<(f64, f64)> = pts
        .iter()
        .copied()
        .chain([(c.min_cost.cost, c.min_cost.utility_percent), (c.max_utility.cost, c.max_utility.utility_percent)])
        .collect();
    let (mut x0, mut x1) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (x, _)| (a.min(*x), b.max(*x)));
    let (mut y0, mut y1) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (_, y)| (a.min(*y), b.max(*y)));
    if x1 - x0 < 1e-12 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    if y1 - y0 < 1e-9 {
        y0 -= 1.0;
        y1 += 1.0;
    }
    let sx = |x: f64| m + (x - x0) / (x1 - x0) * (w - 2.0 * m);
    let sy = |y: f64| h - m - (y - y0) / (y1 - y0) * (h - 2.0 * m);
    let poly: Vec<String> = pts.iter().map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y))).collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">FUSION cost/utility trade-off</text>\n\
         <line x1=\"{m}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">cost per hour</text>\n\
         <text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">utility (% of everyone under R_min)</text>\n",
        w / 2.0,
        h - m,
        w - m,
        h - m,
        h - m,
        w / 2.0,
        h - 16.0,
        h / 2.0,
        h / 2.0
    );
    for (v, x) in [(x0, sx(x0)), (x1, sx(x1))] {
        svg.push_str(&format!("<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{v:.4}</text>\n", h - m + 16.0));
    }
    for (v, y) in [(y0, sy(y0)), (y1, sy(y1))] {
        svg.push_str(&format!("<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.1}%</text>\n", m - 6.0, y + 4.0));
    }
    svg.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>\n",
        poly.join(" ")
    ));
    for (x, y) in &pts {
        svg.push_str(&format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f77b4\"/>\n", sx(*x), sy(*y)));
    }
    for (label, p, color) in [("min cost", &c.min_cost, "#d62728"), ("max utility", &c.max_utility, "#2ca02c")] {
        let (x, y) = (sx(p.cost), sy(p.utility_percent));
        svg.push_str(&format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\">{label}</text>\n",
            x + 8.0,
            y - 8.0
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// `--context`: the files' services decided on the running domain's live state, one after the
/// other (each sees what the previous one would take), as the domain would.
fn in_context(args: &Args, bundle: &zonal_model::Bundle) -> Result<(), Failure> {
    use zonal_place::decide::{decide, DecideOptions, LiveService, LiveState, Trigger};
    if bundle.infrastructures().next().is_some() {
        return Err(Failure::new(
            2,
            "--context decides on the running domain's infrastructure; pass services and demand only (zonal apply -f changes the domain's infrastructure)",
        ));
    }
    let services: Vec<&zonal_model::Service> = bundle.services().collect();
    if services.is_empty() {
        return Err(Failure::new(2, "--context: expected at least one service file to decide"));
    }
    let conn = crate::common::Conn {
        url: args.url.clone(),
        token: args.token.clone(),
        context: args.context.clone().filter(|p| !p.as_os_str().is_empty()),
        ca: None, // $ZONAL_CA_FILE or the context's CA
        retry_for: Duration::from_secs(30),
    };
    let client = conn.client()?;
    let mut state: LiveState = crate::common::client_runtime()?.block_on(client.get("/1.0/state"))?;
    let demand = bundle.demand();
    for r in &demand.regions {
        state.regions.retain(|x| x.name != r.name);
        state.regions.push(r.clone());
    }
    for s in &services {
        let entries: Vec<_> = demand.entries.iter().filter(|e| e.service == s.name).cloned().collect();
        match state.services.iter_mut().find(|x| x.service.name == s.name) {
            Some(live) => {
                live.service = (*s).clone();
                if !entries.is_empty() {
                    live.demand = entries;
                }
            }
            None => state.services.push(LiveService {
                service: (*s).clone(),
                demand: entries,
                slots: 0,
                running: None,
                offers: None,
            }),
        }
    }
    if let Some(kb) = bundle.knowledge_bases().next() {
        state.knowledge_base = Some(kb.clone());
    }
    let mut options = DecideOptions::default();
    let limit = Some(args.time_limit);
    options.fusion.solver.time_limit = limit;
    options.chain.solver.time_limit = limit;
    options.heuristic.solver.time_limit = limit;
    options.fusion.alpha = args.alpha;
    let mut names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    let mut decisions = Vec::new();
    let mut failed = Vec::new();
    for name in names {
        let running = state.service(name).is_some_and(|s| s.running.is_some());
        let trigger = if running { Trigger::Demand } else { Trigger::Apply };
        match with_progress(&format!("deciding {name}"), || decide(&state, name, trigger, &options)) {
            Ok(d) => {
                if d.apply {
                    state.assume(name, &d.target);
                }
                decisions.push(d);
            }
            Err(e) => {
                let mut msg = e.to_string();
                for r in e.reasons() {
                    msg.push_str(&format!("\n  {r}"));
                }
                failed.push(msg);
            }
        }
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&decisions).unwrap_or_default()),
        Output::Table => {
            for (i, d) in decisions.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print!("{}", crate::decision::render(d));
            }
        }
    }
    if !failed.is_empty() {
        return Err(Failure::new(1, failed.join("\n")));
    }
    Ok(())
}
