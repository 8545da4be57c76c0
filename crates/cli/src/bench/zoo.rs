//! `zonal bench --suite zoo`: the INPUT chain ILP on Topology Zoo WANs.

use zonal_bench::chain_peer::ChainPeer;
use zonal_bench::report::to_csv;
use zonal_bench::scenarios::INPUT_CHAINS;
use zonal_bench::zoo::{
    peer_summary, plain_summary, run_zoo_with_peer, summary, Topology, ZooRun, DATACENTERS, TOPOLOGIES,
};

use super::{finish, read_data, write, Args, Bar};
use crate::Failure;

pub fn run(args: &Args) -> Result<(), Failure> {
    let names: Vec<String> = match (args.topologies.is_empty(), args.reproduce) {
        (false, _) => args.topologies.clone(),
        (true, true) => vec!["Interoute".into()],
        (true, false) => TOPOLOGIES.iter().map(|s| s.to_string()).collect(),
    };
    let mut chains = Vec::new();
    for c in &args.chains {
        let shape = INPUT_CHAINS
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(c))
            .ok_or_else(|| Failure::new(2, format!("--chain: expected SC1, SC2 or SC3, found {c:?}")))?;
        chains.push(shape.clone());
    }
    if chains.is_empty() {
        chains = INPUT_CHAINS.to_vec();
    }
    let texts: Vec<(String, String)> = names
        .iter()
        .map(|n| read_data(&args.data, &format!("topology-zoo/{n}.graphml")).map(|t| (n.clone(), t)))
        .collect::<Result<_, _>>()?;
    let topologies: Vec<Topology> = texts.iter().map(|(n, t)| Topology { name: n, graphml: t }).collect();
    let run = ZooRun {
        chains,
        subscriptions: args.limit.unwrap_or(if args.reproduce { 100 } else { 10 }),
        seeds: args.seed_list()?,
        datacenters: DATACENTERS,
        solver: args.solver(),
        strong_bound: !args.no_strong_bound,
        compare_plain: args.compare_plain,
    };
    let runner = args.peer_runner()?;
    let peer = runner
        .as_ref()
        .map(|r| ChainPeer::new(r, &run.solver))
        .transpose()
        .map_err(|e| Failure::new(1, e.to_string()))?;
    let bar = Bar::new();
    let records = run_zoo_with_peer(&topologies, &run, peer.as_ref(), &mut |d, t, w| bar.report(d, t, w))
        .map_err(|e| Failure::new(1, e.to_string()))?;
    drop(bar);
    let name = if args.reproduce { "input-chains.csv" } else { "zoo-chains.csv" };
    let csv = write(&args.out, name, &to_csv(&records))?;
    let summaries: Vec<_> =
        std::iter::once(summary(&records)).chain(plain_summary(&records)).chain(peer_summary(&records)).collect();
    finish(args, &summaries, &[csv])
}
