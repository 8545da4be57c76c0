//! `zonal bench --suite geo-video|zoo|vbp|openb|vnmp|runtime|gateway [--limit N] [--seeds K] [--time-limit S] [--peer P] [--out DIR]`:
//! runs a benchmark suite of `zonal-bench`, writes its CSV into `--out` and prints a summary.
//! Each suite lives in its own module; this one parses the shared arguments, reads the data
//! files, shows progress and prints tables.

mod gateway;
mod geovideo;
mod pack;
mod runtime;
mod vnmp;
mod zoo;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use zonal_bench::report::Summary;
use zonal_place::SolverOptions;

use crate::table::Table;
use crate::Failure;

/// The benchmark suites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// FUSION utility LP on the geo-video MOOC data: LP time against size; with --reproduce
    /// the cost/utility curve with and without Step 1 (seed 000 §4.4).
    GeoVideo,
    /// INPUT chain ILP on Topology Zoo WANs: time and gap against chain length and topology;
    /// with --reproduce INPUT's setting on Interoute (seed 004 §V.C); with --peer, CP-SAT or
    /// HiGHS on the same ILPs (and Zonal's heuristic on the same subscriptions).
    Zoo,
    /// Vector bin packing on the Panigrahy / New / Triplet instances with known optima and
    /// the best published heuristics; with --peer, CP-SAT or HiGHS on the same instances.
    Vbp,
    /// Packing and consolidation (with a checked migration plan) of the Alibaba openb GPU
    /// trace: 8,152 pods, 1,523 nodes.
    Openb,
    /// VNMP slices (Inführ & Raidl, 20–200 substrate nodes) as delay-constrained chains: the
    /// heuristic against the exact chain ILP, both plans checked; with --peer, CP-SAT or HiGHS
    /// on the same ILPs.
    Vnmp,
    /// The run-time decision pipeline against the greedy it replaced: decision latency
    /// percentiles at 100 zones × 20 hosts (1 solver thread), quality per service on the
    /// examples and on Interoute, re-placement under a demand shift.
    Runtime,
    /// The gateway's added latency: a native client doing echo round trips directly to two
    /// `zonal workload` back ends, through the zone's gateway and (with --peer haproxy)
    /// through haproxy, interleaved rounds, client and servers pinned to different cores.
    Gateway,
}

/// How `--suite vnmp` turns the two directed arcs of a vertex pair into one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LinksArg {
    /// Smaller bandwidth, larger delay: every plan is valid on the directed instance.
    Conservative,
    /// Smaller bandwidth, smaller delay: no slice loses a placement (a plan may exceed a
    /// bound on the slower direction; the directed check says).
    Relaxed,
}

/// A peer solver for `--peer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PeerArg {
    /// Google OR-Tools CP-SAT (PyPI ortools).
    Ortools,
    /// HiGHS through highspy (PyPI highspy).
    Highspy,
    /// haproxy in TCP mode (gateway suite only; must be on PATH).
    Haproxy,
}

impl PeerArg {
    /// The solver peer, or why this peer is not one.
    fn solver(self) -> Result<zonal_bench::peer::Peer, Failure> {
        match self {
            PeerArg::Ortools => Ok(zonal_bench::peer::Peer::Ortools),
            PeerArg::Highspy => Ok(zonal_bench::peer::Peer::Highspy),
            PeerArg::Haproxy => {
                Err(Failure::new(2, "--peer haproxy: only for --suite gateway (solver suites take ortools or highspy)"))
            }
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum)]
    pub suite: Suite,
    /// Cap on the work: geo-video, the first N sizes of the LP sweep; zoo, N subscriptions
    /// per (topology, chain, seed) (default 10, with --reproduce 100); vbp, N instances per
    /// family, evenly spaced (default 20; 0 = all 2,940); vnmp, the first N instances per size
    /// (default 2; 0 = all); runtime, N new services per route at scale and N per kind on
    /// Interoute (default 25 and 4).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Seeds 1..=K; figures are medians over them (runtime: one synthetic state and one
    /// Interoute scenario per seed, percentiles over every decision).
    #[arg(long, value_name = "K", default_value_t = 3)]
    pub seeds: u64,
    /// Time limit of each solve (default: geo-video and zoo 60s, vbp 2s, openb 4s, vnmp 30s,
    /// runtime 10s).
    #[arg(long, value_name = "S", value_parser = crate::common::parse_duration)]
    pub time_limit: Option<Duration>,
    /// vbp, openb, zoo, vnmp: also solve every instance with this peer (its own virtualenv and
    /// process, created on first use under ~/.cache/zonal/peers), same model, same time
    /// limit, 1 thread (Zonal's exact solve then also gets 1 thread unless --threads says
    /// otherwise). zoo and vnmp hand the peer Zonal's own chain ILP as an MPS file.
    #[arg(long, value_enum)]
    pub peer: Option<PeerArg>,
    /// vbp: a family, Panigrahy, New or Triplet (repeatable); default all three.
    #[arg(long = "family", value_name = "NAME")]
    pub families: Vec<String>,
    /// Directory for the CSV (and SVG) files; created if missing.
    #[arg(long, value_name = "DIR", default_value = "bench-results")]
    pub out: PathBuf,
    /// The reference data directory (`geo-video/`, `topology-zoo/`).
    #[arg(long, value_name = "DIR", default_value = "../shared/data")]
    pub data: PathBuf,
    /// runtime: the directory of the example descriptors (infrastructure.yaml, web.yaml, …).
    #[arg(long, value_name = "DIR", default_value = "examples")]
    pub examples: PathBuf,
    /// Reproduce the paper's evaluation instead of the benchmark sweep.
    #[arg(long)]
    pub reproduce: bool,
    /// geo-video: time the FUSION curve (--budgets N budgets + its two ends) solved by one
    /// warm session, against separate solves and the column generation before issue 15 on
    /// the first --reference-points points (same run).
    #[arg(long)]
    pub fusion_speed: bool,
    /// geo-video --fusion-speed: points also solved separately and by the reference.
    #[arg(long, value_name = "K", default_value_t = 2)]
    pub reference_points: usize,
    /// geo-video --reproduce and --fusion-speed: budget points between the two ends of the curve.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub budgets: usize,
    /// geo-video --reproduce: a seeded sample of this many user cities (all by default).
    #[arg(long, value_name = "N")]
    pub regions: Option<usize>,
    /// geo-video --reproduce: a seeded sample of this many zones (all by default).
    #[arg(long, value_name = "N")]
    pub zones: Option<usize>,
    /// geo-video: total slot capacity over total demand (≥ 1).
    #[arg(long, value_name = "F", default_value_t = zonal_bench::geovideo::DEFAULT_CAPACITY_FACTOR)]
    pub capacity_factor: f64,
    /// zoo: a topology by file stem under topology-zoo/ (repeatable); default Interoute,
    /// Cogentco, Kdl (Interoute alone with --reproduce).
    #[arg(long = "topology", value_name = "NAME")]
    pub topologies: Vec<String>,
    /// zoo: a chain, SC1 (4 apps), SC2 (20) or SC3 (60) (repeatable); default all three.
    #[arg(long = "chain", value_name = "SC")]
    pub chains: Vec<String>,
    /// zoo: the exact chain method without its strong bound (plain HiGHS: no heuristic start,
    /// no combinatorial bound), as before issue 15; always so with --peer (both solve the same ILP).
    #[arg(long)]
    pub no_strong_bound: bool,
    /// zoo: also solve every subscription with the plain ILP and the heuristic alone, against
    /// the same residual, and report the strong bound's speed-up over the plain ILP.
    #[arg(long)]
    pub compare_plain: bool,
    /// vnmp: substrate sizes to run, comma-separated (default: every numbered folder under
    /// vnmp/, i.e. 20,30,50,100,200).
    #[arg(long, value_name = "N,…", value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// vnmp: slices per instance, evenly spaced over its 40 (default 8, two of each type;
    /// 0 = all).
    #[arg(long, value_name = "K")]
    pub slices: Option<usize>,
    /// vnmp: how the two directed arcs of a substrate vertex pair become one link.
    #[arg(long, value_enum, default_value_t = LinksArg::Conservative)]
    pub links: LinksArg,
    /// gateway: rounds per path (interleaved direct, gateway, haproxy, haproxy, gateway, …).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub rounds: usize,
    /// gateway: concurrent connections per round (at most 64).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub conc: usize,
    /// gateway: bytes per message, its final newline included.
    #[arg(long, value_name = "B", default_value_t = 64)]
    pub msg: usize,
    /// gateway: timed round trips per connection per round (after 200 untimed).
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub round_trips: usize,
    /// gateway: also measure the gateway of this other zonal binary (its own `zonal up` and
    /// echo instances, same pinning) as the path gateway-ref: before/after in one run.
    #[arg(long, value_name = "ZONAL")]
    pub reference: Option<PathBuf>,
    /// gateway: also measure a minimal user-space relay (two blocking threads per connection,
    /// read and write, on the servers' core) as the path bare-relay: the floor of any
    /// user-space relay on this machine, against which the gateway's own work shows.
    #[arg(long)]
    pub bare_relay: bool,
    /// gateway: `zonal up --gateway-poll` of the current build's stack (not the reference's,
    /// which keeps its own default): e.g. 50us, to weigh polling against the reference build
    /// as gateway-ref in the same rounds.
    #[arg(long, value_name = "DURATION", value_parser = crate::zone::parse_gateway_poll)]
    pub gateway_poll: Option<std::time::Duration>,
    /// gateway: sequential session opens per round and path (connect, greeting, one echo).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub opens: usize,
    /// Solver threads (HiGHS default when absent; runtime: 1).
    #[arg(long)]
    pub threads: Option<u32>,
}

impl Args {
    fn solver(&self) -> SolverOptions {
        let time_limit = self.time_limit.unwrap_or(Duration::from_secs(60));
        SolverOptions { time_limit: Some(time_limit), threads: self.solver_threads(), ..Default::default() }
    }
    /// `--threads`, or 1 when a peer (which runs on 1 thread) is compared.
    fn solver_threads(&self) -> Option<u32> {
        self.threads.or(self.peer.map(|_| 1))
    }
    /// The peer of `--peer`, prepared (its virtualenv created on first use).
    fn peer_runner(&self) -> Result<Option<zonal_bench::peer::PeerRunner>, Failure> {
        self.peer.map(|p| pack::prepare_peer(p.solver()?)).transpose()
    }
    fn seed_list(&self) -> Result<Vec<u64>, Failure> {
        if self.seeds == 0 {
            return Err(Failure::new(2, "--seeds: expected at least 1"));
        }
        Ok((1..=self.seeds).collect())
    }
}

pub fn run(args: Args) -> Result<(), Failure> {
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::new(1, format!("cannot create --out {}: {e}", args.out.display())))?;
    match args.suite {
        Suite::GeoVideo => geovideo::run(&args),
        Suite::Zoo => zoo::run(&args),
        Suite::Vbp => pack::run_vbp(&args),
        Suite::Openb => pack::run_openb(&args),
        Suite::Vnmp => vnmp::run(&args),
        Suite::Runtime => runtime::run(&args),
        Suite::Gateway => gateway::run(&args),
    }
}

/// Reads a data file, naming it and the flag to fix when it is missing.
fn read_data(data: &Path, relative: &str) -> Result<String, Failure> {
    let path = data.join(relative);
    std::fs::read_to_string(&path).map_err(|e| {
        Failure::new(1, format!("cannot read {}: {e} (point --data at the reference data directory)", path.display()))
    })
}

fn write(out: &Path, name: &str, text: &str) -> Result<PathBuf, Failure> {
    let path = out.join(name);
    std::fs::write(&path, text).map_err(|e| Failure::new(1, format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// A progress bar on standard error (hidden when it is not a terminal) and the callback
/// the suites report to.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new() -> Bar {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(bar)
    }
    fn report(&self, done: usize, total: usize, what: &str) {
        // indicatif draws nothing without a terminal; a log still wants to see long runs move.
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!("[{done}/{total}] {what}");
        }
        self.0.set_length(total as u64);
        self.0.set_position(done as u64);
        self.0.set_message(what.to_string());
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Renders a summary as text: title, aligned table, notes.
fn render(s: &Summary) -> String {
    let mut t = Table::new(s.headers.iter().cloned());
    for r in &s.rows {
        t.row(r.iter().cloned());
    }
    let mut out = format!("{}\n\n{}", s.title, t.render());
    for n in &s.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

/// Prints summaries and writes them to `summary.txt` beside the CSV.
fn finish(args: &Args, summaries: &[Summary], files: &[PathBuf]) -> Result<(), Failure> {
    let text: Vec<String> = summaries.iter().map(render).collect();
    let text = text.join("\n");
    print!("{text}");
    let path = write(&args.out, "summary.txt", &text)?;
    let names: Vec<String> = files.iter().chain(std::iter::once(&path)).map(|p| p.display().to_string()).collect();
    println!("\nwrote {}", names.join(", "));
    Ok(())
}
