//! `zonal bench --suite vnmp`: VNMP slices, the heuristic against the exact chain ILP.
//!
//! Instances are read from `--data`/vnmp/<size>/ (`.bz2` as published, or plain text), in
//! natural name order, so a folder of more instances of the same format can be pointed at.

use std::path::Path;
use std::time::Duration;

use zonal_bench::chain_peer::ChainPeer;
use zonal_bench::report::to_csv;
use zonal_bench::vnmp::{
    decompress, default_heuristic, parse_vnmp, peer_summary, run_vnmp_with_peer, summary, LinkRule, VnmpInstance,
    VnmpRun,
};
use zonal_place::SolverOptions;

use super::{finish, write, Args, Bar, LinksArg};
use crate::Failure;

const DEFAULT_INSTANCES: usize = 2;
const DEFAULT_SLICES: usize = 8;
const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(30);

/// Digit runs compare as numbers, so `eu_20_2` comes before `eu_20_10`.
fn natural_key(name: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits > 0 {
            key.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let text = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            key.push((0, rest[..text].to_string()));
            rest = &rest[text..];
        }
    }
    key
}

fn list(dir: &Path) -> Result<Vec<std::path::PathBuf>, Failure> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Failure::new(1, format!("cannot read {}: {e} (point --data at the reference data directory)", dir.display()))
    })?;
    let mut files: Vec<std::path::PathBuf> =
        entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort_by_cached_key(|p| {
        natural_key(&p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
    });
    Ok(files)
}

fn read_instance(path: &Path) -> Result<VnmpInstance, Failure> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = file_name.strip_suffix(".bz2").unwrap_or(&file_name).to_string();
    let file =
        std::fs::File::open(path).map_err(|e| Failure::new(1, format!("cannot read {}: {e}", path.display())))?;
    let text = if file_name.ends_with(".bz2") {
        decompress(&name, file).map_err(|e| Failure::new(1, format!("{}: {e}", path.display())))?
    } else {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::BufReader::new(file), &mut text)
            .map_err(|e| Failure::new(1, format!("cannot read {}: {e}", path.display())))?;
        text
    };
    parse_vnmp(&name, &text).map_err(|e| Failure::new(1, format!("{}:{}: {}", path.display(), e.line, e.message)))
}

pub fn run(args: &Args) -> Result<(), Failure> {
    let root = args.data.join("vnmp");
    let sizes: Vec<usize> = if args.sizes.is_empty() {
        let mut found: Vec<usize> = std::fs::read_dir(&root)
            .map_err(|e| {
                Failure::new(
                    1,
                    format!("cannot read {}: {e} (point --data at the reference data directory)", root.display()),
                )
            })?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect();
        found.sort_unstable();
        found
    } else {
        args.sizes.clone()
    };
    if sizes.is_empty() {
        return Err(Failure::new(1, format!("no size folders (20/, 30/, …) under {}", root.display())));
    }
    let per_size = match args.limit {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => DEFAULT_INSTANCES,
    };
    let mut instances = Vec::new();
    for size in &sizes {
        let files = list(&root.join(size.to_string()))?;
        if files.is_empty() {
            return Err(Failure::new(1, format!("no instances in {}", root.join(size.to_string()).display())));
        }
        for path in files.iter().take(per_size) {
            instances.push(read_instance(path)?);
        }
    }
    let run = VnmpRun {
        slices: args.slices.unwrap_or(DEFAULT_SLICES),
        links: match args.links {
            LinksArg::Conservative => LinkRule::Conservative,
            LinksArg::Relaxed => LinkRule::Relaxed,
        },
        solver: SolverOptions {
            time_limit: Some(args.time_limit.unwrap_or(DEFAULT_TIME_LIMIT)),
            threads: args.solver_threads(),
            ..Default::default()
        },
        heuristic: default_heuristic(),
    };
    let runner = args.peer_runner()?;
    let peer = runner
        .as_ref()
        .map(|r| ChainPeer::new(r, &run.solver))
        .transpose()
        .map_err(|e| Failure::new(1, e.to_string()))?;
    let bar = Bar::new();
    let records = run_vnmp_with_peer(&instances, &run, peer.as_ref(), &mut |d, t, w| bar.report(d, t, w))
        .map_err(|e| Failure::new(1, e.to_string()))?;
    drop(bar);
    let csv = write(&args.out, "vnmp.csv", &to_csv(&records))?;
    let summaries: Vec<_> = std::iter::once(summary(&records)).chain(peer_summary(&records)).collect();
    finish(args, &summaries, &[csv])?;
    let failed: Vec<String> = records
        .iter()
        .filter(|r| !r.check_ok())
        .map(|r| format!("{} slice {}: exact {}; heuristic {}", r.instance, r.slice, r.exact_check, r.heuristic_check))
        .collect();
    if !failed.is_empty() {
        return Err(Failure::new(1, format!("{} plan(s) failed the checker:\n{}", failed.len(), failed.join("\n"))));
    }
    Ok(())
}
