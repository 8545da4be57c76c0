//! The Alibaba GPU cluster trace v2023 ("openb", Weng et al., USENIX ATC 2023): node and pod
//! lists as CSV.
//!
//! Nodes: `sn, cpu_milli, memory_mib, gpu, model`. Pods: `name, cpu_milli, memory_mib,
//! num_gpu, gpu_milli[, gpu_spec, qos, pod_phase, creation_time, deletion_time,
//! scheduled_time]` (the sampled lists omit the trailing columns; columns are found by name).
//!
//! **Vector model** (three dimensions, in this order): `cpu` in millicores, `memory` in MiB,
//! `gpu` in milli-GPUs. A node offers `gpu × 1000` milli-GPUs; a pod asks for
//! `num_gpu × gpu_milli` (GPU-sharing pods have `num_gpu = 1` and `gpu_milli < 1000`;
//! multi-GPU pods have `gpu_milli = 1000`). Aggregating a node's GPUs into one dimension is a
//! relaxation: a real scheduler must also fit a sharing pod inside *one* device and give a
//! multi-GPU pod whole devices (the fragmentation the trace's paper is about). The issue asks
//! for the cpu/memory/gpu vector model; per-device packing is not modelled. GPU type
//! constraints (`gpu_spec`) are empty in the default pod list and are ignored.

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::formats::vbp::ParseError;
use crate::instance::{Bin, Instance};

/// A node of the trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenbNode {
    pub name: String,
    pub cpu_milli: u64,
    pub memory_mib: u64,
    pub gpu: u64,
    pub model: String,
}

/// A pod of the trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenbPod {
    pub name: String,
    pub cpu_milli: u64,
    pub memory_mib: u64,
    pub num_gpu: u64,
    pub gpu_milli: u64,
    pub qos: Option<String>,
    pub creation_time: Option<u64>,
    pub deletion_time: Option<u64>,
    pub scheduled_time: Option<u64>,
}

impl OpenbPod {
    /// The demand vector `[cpu_milli, memory_mib, milli-GPUs]`.
    pub fn demand(&self) -> [u64; 3] {
        [self.cpu_milli, self.memory_mib, self.num_gpu * self.gpu_milli]
    }
}

impl OpenbNode {
    /// The capacity vector `[cpu_milli, memory_mib, milli-GPUs]`.
    pub fn capacity(&self) -> [u64; 3] {
        [self.cpu_milli, self.memory_mib, self.gpu * 1000]
    }
}

/// The dimension names of the openb vector model.
pub const DIMENSIONS: [&str; 3] = ["cpu", "memory", "gpu"];

fn err(source: &str, message: String) -> ParseError {
    ParseError { source: source.to_string(), message }
}

struct Table {
    source: String,
    headers: csv::StringRecord,
    records: Vec<csv::StringRecord>,
}

impl Table {
    fn read<R: Read>(source: &str, r: R) -> Result<Table, ParseError> {
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(r);
        let headers = rdr.headers().map_err(|e| err(source, e.to_string()))?.clone();
        let records = rdr.records().collect::<Result<Vec<_>, _>>().map_err(|e| err(source, e.to_string()))?;
        Ok(Table { source: source.to_string(), headers, records })
    }
    fn col(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h.trim() == name)
    }
    fn need(&self, name: &str) -> Result<usize, ParseError> {
        self.col(name).ok_or_else(|| err(&self.source, format!("no column {name:?}")))
    }
    fn num(&self, row: usize, col: usize) -> Result<u64, ParseError> {
        let v = self.records[row].get(col).unwrap_or("").trim();
        v.parse::<u64>().map_err(|_| {
            err(
                &self.source,
                format!("line {}: column {:?}: expected an integer, found {v:?}", row + 2, &self.headers[col]),
            )
        })
    }
    fn opt_num(&self, row: usize, col: Option<usize>) -> Result<Option<u64>, ParseError> {
        match col {
            Some(c) if !self.records[row].get(c).unwrap_or("").trim().is_empty() => self.num(row, c).map(Some),
            _ => Ok(None),
        }
    }
    fn text(&self, row: usize, col: usize) -> String {
        self.records[row].get(col).unwrap_or("").trim().to_string()
    }
}

/// Reads `openb_node_list_*.csv`.
pub fn read_nodes<R: Read>(r: R) -> Result<Vec<OpenbNode>, ParseError> {
    let t = Table::read("node list", r)?;
    let (sn, cpu, mem, gpu) = (t.need("sn")?, t.need("cpu_milli")?, t.need("memory_mib")?, t.need("gpu")?);
    let model = t.col("model");
    (0..t.records.len())
        .map(|i| {
            Ok(OpenbNode {
                name: t.text(i, sn),
                cpu_milli: t.num(i, cpu)?,
                memory_mib: t.num(i, mem)?,
                gpu: t.num(i, gpu)?,
                model: model.map(|m| t.text(i, m)).unwrap_or_default(),
            })
        })
        .collect()
}

/// Reads `openb_pod_list_*.csv`.
pub fn read_pods<R: Read>(r: R) -> Result<Vec<OpenbPod>, ParseError> {
    let t = Table::read("pod list", r)?;
    let (name, cpu, mem, ng, gm) =
        (t.need("name")?, t.need("cpu_milli")?, t.need("memory_mib")?, t.need("num_gpu")?, t.need("gpu_milli")?);
    let (qos, ct, dt, st) = (t.col("qos"), t.col("creation_time"), t.col("deletion_time"), t.col("scheduled_time"));
    (0..t.records.len())
        .map(|i| {
            Ok(OpenbPod {
                name: t.text(i, name),
                cpu_milli: t.num(i, cpu)?,
                memory_mib: t.num(i, mem)?,
                num_gpu: t.num(i, ng)?,
                gpu_milli: t.num(i, gm)?,
                qos: qos.map(|c| t.text(i, c)).filter(|s| !s.is_empty()),
                creation_time: t.opt_num(i, ct)?,
                deletion_time: t.opt_num(i, dt)?,
                scheduled_time: t.opt_num(i, st)?,
            })
        })
        .collect()
}

/// The packing instance "all pods at once onto the nodes": listed bins of unit cost (the
/// objective is the number of nodes used), dimensions [`DIMENSIONS`].
pub fn to_instance(name: &str, nodes: &[OpenbNode], pods: &[OpenbPod]) -> Instance {
    let bins = nodes.iter().map(|n| Bin::new(n.capacity().to_vec())).collect();
    let items = pods.iter().map(|p| p.demand().iter().map(|&x| x as i64).collect()).collect();
    Instance::listed(name, 3, bins, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_layouts() {
        let nodes = "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,262144,0,\nn1,96000,393216,8,V100M32\n";
        let n = read_nodes(nodes.as_bytes()).unwrap();
        assert_eq!(n[1].capacity(), [96000, 393216, 8000]);
        let full = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\np0,12000,16384,1,460,,LS,Running,0,125,0\n";
        let p = read_pods(full.as_bytes()).unwrap();
        assert_eq!(p[0].demand(), [12000, 16384, 460]);
        assert_eq!(p[0].deletion_time, Some(125));
        let short = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,4000,100,2,1000\n";
        let p = read_pods(short.as_bytes()).unwrap();
        assert_eq!(p[0].demand(), [4000, 100, 2000]);
        assert_eq!(p[0].creation_time, None);
        assert!(read_pods("name,cpu_milli\np,1\n".as_bytes()).is_err());
        assert!(read_nodes("sn,cpu_milli,memory_mib,gpu\nn,x,1,1\n".as_bytes())
            .unwrap_err()
            .message
            .contains("line 2"));
    }
}
