//! Peer solvers run as their own processes, so a benchmark can report Zonal's figures as
//! ratios against OR-Tools CP-SAT or HiGHS (highspy) solving the same formulation with the
//! same time limit in the same run.
//!
//! Each peer lives in its own Python virtualenv under a cache directory, created on first use
//! (`python3 -m venv`, then `pip install` of the PyPI package): OR-Tools and highspy bundle
//! incompatible native libraries and cannot share one process. The model scripts are part of
//! this crate (`peers/*.py`) and are rewritten into the virtualenv on every run, so an
//! updated formulation always takes effect. Instances go in as JSON on stdin and results come
//! back as JSON on stdout; a peer that overruns its time limit by more than
//! [`KILL_GRACE`] is killed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long past its own time limit a peer may run (start-up, model building) before it is
/// killed and reported as timed out.
pub const KILL_GRACE: Duration = Duration::from_secs(60);

const VBP_SCRIPT: &str = include_str!("../peers/vbp.py");
/// Solves any MIP that Zonal wrote out as an MPS file (see [`crate::chain_peer`]).
const MIP_SCRIPT: &str = include_str!("../peers/mip.py");
const OPENB_SCRIPT: &str = include_str!("../peers/openb.py");

/// A peer solver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Peer {
    /// Google OR-Tools CP-SAT (PyPI `ortools`).
    Ortools,
    /// HiGHS through its Python bindings (PyPI `highspy`).
    Highspy,
}

impl Peer {
    pub const ALL: [Peer; 2] = [Peer::Ortools, Peer::Highspy];

    pub fn name(self) -> &'static str {
        match self {
            Peer::Ortools => "ortools",
            Peer::Highspy => "highspy",
        }
    }

    /// The PyPI package that provides it.
    pub fn package(self) -> &'static str {
        self.name()
    }

    pub fn parse(s: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(s))
    }
}

/// Why a peer could not be prepared or run.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(
        "creating the {peer} virtualenv at {dir}: {detail} (needs python3 with the venv module and access to PyPI)"
    )]
    Setup { peer: &'static str, dir: String, detail: String },
    #[error("{peer} on {instance}: {detail}")]
    Run { peer: &'static str, instance: String, detail: String },
}

/// A prepared peer: a Python interpreter with the peer's package, and its model scripts.
#[derive(Debug, Clone)]
pub struct PeerRunner {
    pub peer: Peer,
    python: PathBuf,
    dir: PathBuf,
}

/// A peer's answer on one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerOutcome {
    /// The solver's own name (`cp-sat`, `highs`).
    pub solver: String,
    /// `optimal`, `feasible`, `infeasible`, `unknown`, or `timeout` when it was killed.
    pub status: String,
    /// Objective of its best solution (bins), if it found one.
    pub bins: Option<u64>,
    /// Its proven lower bound, if any.
    pub bound: Option<u64>,
    /// Solve time as the peer measured it (model build and solve, not interpreter start).
    pub time_s: f64,
    /// Wall time of the whole process, interpreter start included.
    #[serde(default)]
    pub wall_s: f64,
}

/// One vector bin packing instance with identical bins, as the peers read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VbpPeerInput {
    pub name: String,
    pub dims: usize,
    pub capacity: Vec<u64>,
    pub items: Vec<Vec<i64>>,
    /// Candidate bins (an upper bound on the optimum, e.g. Zonal's own answer).
    pub max_bins: usize,
    pub time_limit_s: f64,
    pub threads: usize,
}

/// A MIP in a model file, as `mip.py` reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MipPeerInput {
    /// The instance's name, for messages.
    pub name: String,
    /// Path of the MPS file.
    pub mps: PathBuf,
    pub time_limit_s: f64,
    pub threads: usize,
    /// Relative gap at which the peer may stop (Zonal's HiGHS runs at 1e-4).
    pub mip_rel_gap: f64,
}

/// A peer's answer on one MIP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MipPeerOutcome {
    /// The solver's own name (`cp-sat`, `highs`).
    pub solver: String,
    /// `optimal`, `feasible`, `infeasible`, `unbounded`, `unknown`, or `timeout` when killed.
    pub status: String,
    /// Objective of its best solution, in the model's own terms.
    pub objective: Option<f64>,
    /// Its proven bound on the objective.
    pub bound: Option<f64>,
    /// Reading the file and solving, as the peer measured it (not interpreter start).
    pub time_s: f64,
    /// Wall time of the whole process, interpreter start included.
    #[serde(default)]
    pub wall_s: f64,
    #[serde(default)]
    pub columns: usize,
    #[serde(default)]
    pub rows: usize,
    /// Continuous columns in the file (CP-SAT can only approximate them by scaled integers).
    #[serde(default)]
    pub continuous_columns: usize,
}

impl MipPeerOutcome {
    fn timed_out(peer: Peer, wall_s: f64) -> MipPeerOutcome {
        MipPeerOutcome {
            solver: peer.name().to_string(),
            status: "timeout".into(),
            objective: None,
            bound: None,
            time_s: wall_s,
            wall_s,
            columns: 0,
            rows: 0,
            continuous_columns: 0,
        }
    }
    pub fn optimal(&self) -> bool {
        self.status == "optimal"
    }
}

/// A node type of [`OpenbPeerInput`]: a capacity vector and how many nodes have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeType {
    pub capacity: Vec<u64>,
    pub count: usize,
}

/// A pod type of [`OpenbPeerInput`]: a demand vector and how many pods ask for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodType {
    pub demand: Vec<u64>,
    pub count: usize,
}

/// The openb packing (every pod onto the listed nodes, fewest nodes used), aggregated by
/// node type and pod type, as `peers/openb.py` reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenbPeerInput {
    pub name: String,
    pub node_types: Vec<NodeType>,
    pub pod_types: Vec<PodType>,
    pub time_limit_s: f64,
    pub threads: usize,
}

/// Equal vectors counted, in vector order.
fn count_types(vs: &[Vec<u64>]) -> Vec<(Vec<u64>, usize)> {
    let mut m: std::collections::BTreeMap<&[u64], usize> = std::collections::BTreeMap::new();
    for v in vs {
        *m.entry(v.as_slice()).or_default() += 1;
    }
    m.into_iter().map(|(v, n)| (v.to_vec(), n)).collect()
}

impl OpenbPeerInput {
    /// Aggregates node capacities and pod demands into types; one thread.
    pub fn new(name: &str, capacities: &[Vec<u64>], demands: &[Vec<u64>], time_limit_s: f64) -> Self {
        OpenbPeerInput {
            name: name.to_string(),
            node_types: count_types(capacities)
                .into_iter()
                .map(|(capacity, count)| NodeType { capacity, count })
                .collect(),
            pod_types: count_types(demands).into_iter().map(|(demand, count)| PodType { demand, count }).collect(),
            time_limit_s,
            threads: 1,
        }
    }
}

/// Creates (once) the peer's virtualenv under `cache_dir/peers/NAME` and installs its package.
/// `say` hears what is being done, so a caller can tell the user why the first run is slow.
pub fn prepare(peer: Peer, cache_dir: &Path, mut say: impl FnMut(&str)) -> Result<PeerRunner, PeerError> {
    let dir = cache_dir.join("peers").join(peer.name());
    let python = dir.join("bin").join("python");
    let marker = dir.join(".installed");
    let setup_err = |detail: String| PeerError::Setup { peer: peer.name(), dir: dir.display().to_string(), detail };
    if !marker.exists() {
        say(&format!("creating the {} virtualenv at {} (first use)", peer.name(), dir.display()));
        std::fs::create_dir_all(&dir).map_err(|e| setup_err(e.to_string()))?;
        run_quietly(Command::new("python3").args(["-m", "venv"]).arg(&dir)).map_err(setup_err)?;
        say(&format!("installing {} from PyPI", peer.package()));
        run_quietly(Command::new(&python).args(["-m", "pip", "install", "--quiet", peer.package()]))
            .map_err(setup_err)?;
        std::fs::write(&marker, peer.package()).map_err(|e| setup_err(e.to_string()))?;
    }
    std::fs::write(dir.join("vbp.py"), VBP_SCRIPT).map_err(|e| setup_err(e.to_string()))?;
    std::fs::write(dir.join("mip.py"), MIP_SCRIPT).map_err(|e| setup_err(e.to_string()))?;
    Ok(PeerRunner { peer, python, dir })
}

fn run_quietly(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let tail: String = String::from_utf8_lossy(&out.stderr).lines().rev().take(5).collect::<Vec<_>>().join(" / ");
        Err(format!("{cmd:?} failed ({}): {tail}", out.status))
    }
}

impl PeerRunner {
    /// Solves one vector bin packing instance with the peer.
    pub fn solve_vbp(&self, input: &VbpPeerInput) -> Result<PeerOutcome, PeerError> {
        let body = serde_json::to_vec(input).map_err(|e| self.run_err(&input.name, e.to_string()))?;
        let limit = Duration::from_secs_f64(input.time_limit_s.max(0.0)) + KILL_GRACE;
        self.run_script("vbp.py", &input.name, &body, limit)
    }

    /// Solves the openb packing with the peer (`peers/openb.py`, written next to the
    /// interpreter on every call so that an updated formulation takes effect).
    pub fn solve_openb(&self, input: &OpenbPeerInput) -> Result<PeerOutcome, PeerError> {
        std::fs::write(self.dir.join("openb.py"), OPENB_SCRIPT)
            .map_err(|e| self.run_err(&input.name, format!("writing openb.py into {}: {e}", self.dir.display())))?;
        let body = serde_json::to_vec(input).map_err(|e| self.run_err(&input.name, e.to_string()))?;
        let limit = Duration::from_secs_f64(input.time_limit_s.max(0.0)) + KILL_GRACE;
        self.run_script("openb.py", &input.name, &body, limit)
    }

    fn run_err(&self, instance: &str, detail: String) -> PeerError {
        PeerError::Run { peer: self.peer.name(), instance: instance.to_string(), detail }
    }

    fn run_script(&self, script: &str, instance: &str, body: &[u8], limit: Duration) -> Result<PeerOutcome, PeerError> {
        let (answer, wall_s) = self.run_process(script, instance, body, limit)?;
        let Some(out) = answer else {
            return Ok(PeerOutcome {
                solver: self.peer.name().to_string(),
                status: "timeout".into(),
                bins: None,
                bound: None,
                time_s: wall_s,
                wall_s,
            });
        };
        let mut outcome: PeerOutcome = serde_json::from_slice(&out).map_err(|e| {
            self.run_err(instance, format!("unreadable answer ({e}): {}", String::from_utf8_lossy(&out)))
        })?;
        outcome.wall_s = wall_s;
        Ok(outcome)
    }

    /// Solves the MIP in the model file `input.mps` with the peer.
    pub fn solve_mip(&self, input: &MipPeerInput) -> Result<MipPeerOutcome, PeerError> {
        let body = serde_json::to_vec(input).map_err(|e| self.run_err(&input.name, e.to_string()))?;
        let limit = Duration::from_secs_f64(input.time_limit_s.max(0.0)) + KILL_GRACE;
        let (answer, wall_s) = self.run_process("mip.py", &input.name, &body, limit)?;
        let Some(out) = answer else {
            return Ok(MipPeerOutcome::timed_out(self.peer, wall_s));
        };
        let mut outcome: MipPeerOutcome = serde_json::from_slice(&out).map_err(|e| {
            self.run_err(&input.name, format!("unreadable answer ({e}): {}", String::from_utf8_lossy(&out)))
        })?;
        outcome.wall_s = wall_s;
        Ok(outcome)
    }

    /// Runs one script with `body` on stdin: its stdout (`None` when it was killed at
    /// `limit`) and the process's wall time.
    fn run_process(
        &self,
        script: &str,
        instance: &str,
        body: &[u8],
        limit: Duration,
    ) -> Result<(Option<Vec<u8>>, f64), PeerError> {
        let start = Instant::now();
        let mut child = Command::new(&self.python)
            .arg(self.dir.join(script))
            .args(["--solver", self.peer.name()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.run_err(instance, format!("cannot start {}: {e}", self.python.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(body).map_err(|e| self.run_err(instance, format!("writing the instance: {e}")))?;
        }
        // Drain both pipes on their own threads so a chatty peer cannot block on a full pipe.
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let out_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(o) = stdout.as_mut() {
                let _ = o.read_to_end(&mut s);
            }
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(e) = stderr.as_mut() {
                let _ = e.read_to_end(&mut s);
            }
            s
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if start.elapsed() > limit => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(self.run_err(instance, format!("waiting: {e}"))),
            }
        };
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        let wall_s = start.elapsed().as_secs_f64();
        let Some(status) = status else {
            return Ok((None, wall_s));
        };
        if !status.success() {
            let tail: String = String::from_utf8_lossy(&err).lines().rev().take(3).collect::<Vec<_>>().join(" / ");
            return Err(self.run_err(instance, format!("exited with {status}: {tail}")));
        }
        Ok((Some(out), wall_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_by_name() {
        assert_eq!(Peer::parse("OrTools"), Some(Peer::Ortools));
        assert_eq!(Peer::parse("highspy"), Some(Peer::Highspy));
        assert_eq!(Peer::parse("gurobi"), None);
    }

    #[test]
    fn the_mip_script_reads_what_the_input_writes_and_answers_what_the_outcome_reads() {
        let input = MipPeerInput {
            name: "t".into(),
            mps: PathBuf::from("/x.mps"),
            time_limit_s: 1.0,
            threads: 1,
            mip_rel_gap: 1e-4,
        };
        let json = serde_json::to_value(&input).unwrap_or_default();
        for field in ["mps", "time_limit_s", "threads", "mip_rel_gap"] {
            assert!(json.get(field).is_some(), "{field} missing");
            assert!(MIP_SCRIPT.contains(&format!("[\"{field}\"]")), "mip.py does not read {field}");
        }
        let answer = r#"{"solver": "cp-sat", "status": "optimal", "objective": 3.5, "bound": 3.5,
            "time_s": 0.01, "read_s": 0.001, "columns": 3, "rows": 2, "integer_columns": 2,
            "continuous_columns": 1}"#;
        let o: MipPeerOutcome = serde_json::from_str(answer).unwrap();
        assert!(o.optimal() && o.objective == Some(3.5) && o.continuous_columns == 1, "{o:?}");
        for field in ["solver", "status", "objective", "bound", "time_s", "columns", "rows", "continuous_columns"] {
            assert!(MIP_SCRIPT.contains(&format!("\"{field}\":")), "mip.py does not answer {field}");
        }
    }

    #[test]
    fn the_openb_input_aggregates_types_and_matches_the_script() {
        let caps = vec![vec![8, 8, 2], vec![4, 4, 0], vec![8, 8, 2]];
        let pods = vec![vec![1, 1, 1], vec![2, 2, 0], vec![1, 1, 1]];
        let input = OpenbPeerInput::new("t", &caps, &pods, 5.0);
        assert_eq!(
            input.node_types,
            vec![NodeType { capacity: vec![4, 4, 0], count: 1 }, NodeType { capacity: vec![8, 8, 2], count: 2 }]
        );
        assert_eq!(input.pod_types.iter().map(|t| t.count).collect::<Vec<_>>(), vec![2, 1]);
        let json = serde_json::to_value(&input).unwrap_or_default();
        assert_eq!(json["pod_types"][0]["demand"], serde_json::json!([1, 1, 1]));
        assert_eq!(json["node_types"][1]["capacity"], serde_json::json!([8, 8, 2]));
        for field in ["node_types", "pod_types", "capacity", "demand", "count", "time_limit_s", "threads"] {
            assert!(OPENB_SCRIPT.contains(&format!("\"{field}\"")), "openb.py does not read {field}");
        }
    }

    #[test]
    fn the_vbp_script_reads_what_the_input_writes() {
        let input = VbpPeerInput {
            name: "t".into(),
            dims: 2,
            capacity: vec![10, 10],
            items: vec![vec![5, 3]],
            max_bins: 1,
            time_limit_s: 1.0,
            threads: 1,
        };
        let json = serde_json::to_value(&input).unwrap_or_default();
        for field in ["capacity", "items", "max_bins", "time_limit_s", "threads"] {
            assert!(json.get(field).is_some(), "{field} missing");
            assert!(VBP_SCRIPT.contains(&format!("\"{field}\"")), "vbp.py does not read {field}");
        }
    }
}
