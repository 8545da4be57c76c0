//! `zonal bench --suite runtime`: the run-time decision pipeline against the greedy it
//! replaced — decision latency at 100 zones × 20 hosts, quality per service on the examples
//! and on a Topology Zoo network, re-placement under a demand shift.

use std::path::Path;
use std::time::Duration;

use zonal_bench::report::to_csv;
use zonal_bench::runtime::{options, run_runtime, summaries, RuntimeData, RuntimeRun, Scale, EXAMPLE_FILES};
use zonal_bench::zoo::Topology;

use super::{finish, read_data, write, Args, Bar};
use crate::Failure;

/// New services per route at scale when `--limit` is absent.
const DEFAULT_PER_ROUTE: usize = 25;
/// Services per kind on the Topology Zoo network when `--limit` is absent.
const DEFAULT_ZOO_PER_KIND: usize = 4;
/// The domain's default time limit per solve.
const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(10);
/// The Topology Zoo network of the quality part.
const ZOO_TOPOLOGY: &str = "Interoute";

/// Reads an example descriptor, naming it and the flag to fix when it is missing.
fn read_example(dir: &Path, name: &str) -> Result<(String, String), Failure> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::new(1, format!("cannot read {}: {e} (point --examples at the repository's examples/)", path.display()))
    })?;
    Ok((path.display().to_string(), text))
}

pub fn run(args: &Args) -> Result<(), Failure> {
    let examples: Vec<(String, String)> =
        EXAMPLE_FILES.iter().map(|f| read_example(&args.examples, f)).collect::<Result<_, _>>()?;
    let graphml = read_data(&args.data, &format!("topology-zoo/{ZOO_TOPOLOGY}.graphml"))?;
    let data = RuntimeData { examples: &examples, zoo: Topology { name: ZOO_TOPOLOGY, graphml: &graphml } };
    let run = RuntimeRun {
        scale: Scale::issue(args.limit.unwrap_or(DEFAULT_PER_ROUTE)),
        seeds: args.seed_list()?,
        zoo_per_kind: args.limit.unwrap_or(DEFAULT_ZOO_PER_KIND),
        // One solver thread, as the issue asks, unless --threads says otherwise.
        options: options(args.time_limit.unwrap_or(DEFAULT_TIME_LIMIT), args.threads.unwrap_or(1)),
    };
    let bar = Bar::new();
    let results =
        run_runtime(data, &run, &mut |d, t, w| bar.report(d, t, w)).map_err(|e| Failure::new(1, e.to_string()))?;
    drop(bar);
    let files = vec![
        write(&args.out, "runtime-latency.csv", &to_csv(&results.latency))?,
        write(&args.out, "runtime-quality.csv", &to_csv(&results.quality))?,
        write(&args.out, "runtime-shift.csv", &to_csv(&results.shift))?,
    ];
    finish(args, &summaries(&results, &run), &files)
}
