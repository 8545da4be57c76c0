//! The VNMP suite: Inführ & Raidl's virtual network mapping instances (substrate graphs of
//! 20–200 nodes, 40 delay-constrained slices each) as chain-placement problems, each slice
//! solved by the exact chain ILP and by the heuristic, both plans checked.
//!
//! # Reader
//!
//! [`parse_vnmp`] reads the text of one instance (after bzip2, [`decompress`]); [`read_vnmp`]
//! takes any reader. Layout, one item a line, blank lines ignored:
//!
//! ```text
//! #Substrate Graph
//! # noVertices / n / # noArcs / m
//! # Vertices: id cost cpu group      (n lines)
//! # Arcs: idS idT bandwidth cost delay (m lines, directed)
//! # noSlices / k
//! then k times:
//! #Virtual Graph
//! # noVertices / nv / # noArcs / na
//! # Vertices: id cpu                  (nv lines)
//! # Arcs: idS idT bandwidth delay     (na lines; delay = largest end-to-end delay allowed)
//! # Mapping / p / # Mapping pairs     (p lines: virtual id, substrate id allowed to host it)
//! # Substrate Size / n
//! # Slice Type / t
//! ```
//!
//! Every structural error (a missing header, a wrong number of columns, a bad number, an id out
//! of range or repeated, a duplicate arc, a virtual vertex with no allowed substrate vertex,
//! trailing text) is a [`VnmpError`] naming the 1-based line.
//!
//! # Conversion ([`to_bundle`])
//!
//! * **Substrate vertex → zone** `sNNN` (zero-padded, so zones sort by id) with one host `h`
//!   whose CPU is the vertex's CPU (one VNMP CPU unit = one core). Vertex cost and group are
//!   kept in the instance but not used.
//! * **Substrate arcs → links.** Zonal's links are undirected with one bandwidth per
//!   direction and one delay, while VNMP's two arcs of a vertex pair differ (delays often by
//!   2–5×). Each unordered pair becomes one link with the **smaller bandwidth** of its two arcs
//!   and, by [`LinkRule`], the **larger delay** (`Conservative`, the default: every plan valid
//!   on the link is valid on the directed original, but about a third of the slices lose every
//!   path within their delay bounds and become infeasible) or the **smaller delay**
//!   (`Relaxed`: every slice keeps its directed-feasible placements, but a plan may exceed a
//!   bound on the slower direction). Either way each plan is also checked on the directed
//!   original ([`directed_check`]: every hop an arc, every virtual arc's directed delay within
//!   its bound, every arc's bandwidth within capacity), and the CSV says which passed. A pair
//!   with an arc one way only (none in the published instances) still becomes a link with
//!   that arc's values, and a note says so.
//! * **Slice → service** `sliceNN`, **virtual vertex → component** `vN` with that CPU,
//!   **virtual arc → channel** with its bandwidth and its delay as max latency, **mapping
//!   pairs → the component's allowed zones** (`placement.zones`), so both the solvers'
//!   candidate filter and the independent checker enforce them. No component is user-side: the
//!   VNMP source vertex (vertex 0, which has exactly one allowed substrate vertex) is an
//!   ordinary component restricted to that zone, so it still consumes its CPU, as in VNMP.
//! * Each slice is placed **alone against the whole substrate** (one [`ChainRequest`] per
//!   slice), so the exact and heuristic plans of a slice solve the very same problem. VNMP
//!   maps all slices together onto shared capacity; that is not what is measured here.
//! * **Objective**: the chain solvers' delay objective (Σ over channels of the path's summed
//!   link delay; virtual vertices on the same substrate vertex need no path), as in the `zoo`
//!   suite, not VNMP's substrate usage cost.
//!
//! Not modelled: VNMP's routing CPU (each unit of bandwidth entering a substrate node also
//! uses a unit of its CPU), node and arc usage costs, and the freedom of two opposite virtual
//! arcs to take unrelated paths (the chain ILP routes a symmetric pair on reverse paths, IN-29;
//! the heuristic does the same).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::time::Instant;

use zonal_model::{
    Amount, Bandwidth, Bundle, Channel, Component, Document, Duration, Host, Infrastructure, Link, Money, Resources,
    Service, Zone,
};
use zonal_place::chain::{place_chain_with, ChainOptions, ChainRequest, Residual};
use zonal_place::check::check;
use zonal_place::heuristic::{BoundMethod, ChainHeuristic, HeuristicOptions};
use zonal_place::problem::{Problem, ProblemOptions};
use zonal_place::solver::SolverOptions;
use zonal_place::{PlaceError, Plan, PlanStatus};

use crate::chain_peer::{self, ChainPeer, ChainPeerResult, Comparison};
use crate::report::{median, num, ratio, seconds, CsvRow, Summary};
use crate::{BenchError, Progress};

// ---------------------------------------------------------------------------------------
// Instance.

/// A substrate vertex.
#[derive(Debug, Clone, PartialEq)]
pub struct SubstrateVertex {
    pub cost: f64,
    pub cpu: f64,
    pub group: u64,
}

/// A directed substrate arc.
#[derive(Debug, Clone, PartialEq)]
pub struct SubstrateArc {
    pub from: usize,
    pub to: usize,
    pub bandwidth: f64,
    pub cost: f64,
    pub delay: f64,
}

/// A directed virtual arc; `delay` is the largest end-to-end delay its path may have.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualArc {
    pub from: usize,
    pub to: usize,
    pub bandwidth: f64,
    pub delay: f64,
}

/// One slice (virtual network).
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// CPU of each virtual vertex, by id.
    pub cpu: Vec<f64>,
    pub arcs: Vec<VirtualArc>,
    /// Allowed (virtual vertex, substrate vertex) pairs, in file order.
    pub mapping: Vec<(usize, usize)>,
    pub slice_type: u32,
}

/// One VNMP instance.
#[derive(Debug, Clone, PartialEq)]
pub struct VnmpInstance {
    /// The file stem, e.g. `eu_20_0_prob`.
    pub name: String,
    pub vertices: Vec<SubstrateVertex>,
    pub arcs: Vec<SubstrateArc>,
    pub slices: Vec<Slice>,
}

/// A malformed VNMP file: the 1-based line and what was wrong there.
#[derive(Debug, Clone, PartialEq)]
pub struct VnmpError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for VnmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for VnmpError {}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, VnmpError> {
    Err(VnmpError { line, message: message.into() })
}

/// `#Substrate Graph` and `# Substrate Graph` alike: no `#`, single spaces, lower case.
fn normalize_header(line: &str) -> Option<String> {
    let rest = line.strip_prefix('#')?;
    Some(rest.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase())
}

/// The non-blank lines with their numbers.
struct Cursor<'a> {
    lines: Vec<(usize, &'a str)>,
    pos: usize,
    /// Number of the file's last line, for errors at the end of input.
    last: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Cursor<'a> {
        let mut last = 0;
        let mut lines = Vec::new();
        for (i, l) in text.lines().enumerate() {
            last = i + 1;
            let t = l.trim();
            if !t.is_empty() {
                lines.push((i + 1, t));
            }
        }
        Cursor { lines, pos: 0, last }
    }

    fn next(&mut self, expected: &str) -> Result<(usize, &'a str), VnmpError> {
        match self.lines.get(self.pos) {
            Some(&l) => {
                self.pos += 1;
                Ok(l)
            }
            None => err(self.last, format!("unexpected end of input; expected {expected}")),
        }
    }

    /// The header line `# {name}`.
    fn header(&mut self, name: &str) -> Result<usize, VnmpError> {
        let want = format!("`# {name}`");
        let (line, text) = self.next(&want)?;
        match normalize_header(text) {
            Some(h) if h == normalize_header(&format!("#{name}")).unwrap_or_default() => Ok(line),
            _ => err(line, format!("expected {want}, found `{text}`")),
        }
    }

    /// A header followed by a line with one count.
    fn count(&mut self, name: &str) -> Result<(usize, usize), VnmpError> {
        self.header(name)?;
        let (line, text) = self.next(&format!("the number after `# {name}`"))?;
        Ok((line, int(line, name, text)? as usize))
    }

    /// Fails unless `count` more lines are left, before anything is allocated for them (a
    /// corrupt count must not ask for terabytes).
    fn expect_lines(&self, line: usize, count: usize, what: &str) -> Result<(), VnmpError> {
        let left = self.lines.len() - self.pos;
        if count > left {
            return err(line, format!("{count} {what} announced, but only {left} non-blank lines follow"));
        }
        Ok(())
    }

    /// A data line of exactly `columns.len()` whitespace-separated fields.
    fn row(&mut self, what: &str, columns: &[&str]) -> Result<(usize, Vec<&'a str>), VnmpError> {
        let (line, text) = self.next(what)?;
        let fields: Vec<&str> = text.split_whitespace().collect();
        if text.starts_with('#') || fields.len() != columns.len() {
            return err(line, format!("expected {what} ({}), found `{text}`", columns.join(" ")));
        }
        Ok((line, fields))
    }
}

fn int(line: usize, column: &str, text: &str) -> Result<u64, VnmpError> {
    text.parse::<u64>().or_else(|_| err(line, format!("{column}: expected a non-negative integer, found `{text}`")))
}

fn real(line: usize, column: &str, text: &str) -> Result<f64, VnmpError> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => err(line, format!("{column}: expected a non-negative number, found `{text}`")),
    }
}

/// An id in `0..n`.
fn id(line: usize, column: &str, text: &str, n: usize, of: &str) -> Result<usize, VnmpError> {
    let v = int(line, column, text)? as usize;
    if v >= n {
        return err(line, format!("{column}: {v} is not a {of} id (expected 0..{})", n.saturating_sub(1)));
    }
    Ok(v)
}

/// Parses one instance from its (decompressed) text; `name` is kept as the instance's name.
pub fn parse_vnmp(name: &str, text: &str) -> Result<VnmpInstance, VnmpError> {
    let mut c = Cursor::new(text);
    c.header("Substrate Graph")?;
    let (n_line, n) = c.count("noVertices")?;
    let (m_line, m) = c.count("noArcs")?;
    c.expect_lines(n_line, n, "substrate vertices")?;
    c.expect_lines(m_line, n.saturating_add(m), "substrate vertices and arcs")?;
    c.header("Vertices: id cost cpu group")?;
    let mut vertices: Vec<Option<SubstrateVertex>> = vec![None; n];
    for _ in 0..n {
        let (line, f) = c.row("a substrate vertex", &["id", "cost", "cpu", "group"])?;
        let v = id(line, "id", f[0], n, "substrate vertex")?;
        if vertices[v].is_some() {
            return err(line, format!("substrate vertex {v} is listed twice"));
        }
        vertices[v] = Some(SubstrateVertex {
            cost: real(line, "cost", f[1])?,
            cpu: real(line, "cpu", f[2])?,
            group: int(line, "group", f[3])?,
        });
    }
    // n distinct ids below n: every slot is filled.
    let vertices: Vec<SubstrateVertex> = vertices.into_iter().flatten().collect();
    c.header("Arcs: idS idT bandwidth cost delay")?;
    let mut arcs = Vec::with_capacity(m);
    let mut seen: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for _ in 0..m {
        let (line, f) = c.row("a substrate arc", &["idS", "idT", "bandwidth", "cost", "delay"])?;
        let (from, to) = (id(line, "idS", f[0], n, "substrate vertex")?, id(line, "idT", f[1], n, "substrate vertex")?);
        if from == to {
            return err(line, format!("arc {from} → {to} joins a vertex to itself"));
        }
        if let Some(first) = seen.insert((from, to), line) {
            return err(line, format!("arc {from} → {to} is listed twice (first on line {first})"));
        }
        arcs.push(SubstrateArc {
            from,
            to,
            bandwidth: real(line, "bandwidth", f[2])?,
            cost: real(line, "cost", f[3])?,
            delay: real(line, "delay", f[4])?,
        });
    }
    let (k_line, k) = c.count("noSlices")?;
    c.expect_lines(k_line, k, "slices")?;
    let mut slices = Vec::with_capacity(k);
    for si in 0..k {
        c.header("Virtual Graph")?;
        let (nv_line, nv) = c.count("noVertices")?;
        let (na_line, na) = c.count("noArcs")?;
        c.expect_lines(nv_line, nv, "virtual vertices")?;
        c.expect_lines(na_line, nv.saturating_add(na), "virtual vertices and arcs")?;
        c.header("Vertices: id cpu")?;
        let mut cpu: Vec<Option<f64>> = vec![None; nv];
        for _ in 0..nv {
            let (line, f) = c.row(&format!("a virtual vertex of slice {si}"), &["id", "cpu"])?;
            let v = id(line, "id", f[0], nv, "virtual vertex")?;
            if cpu[v].is_some() {
                return err(line, format!("virtual vertex {v} of slice {si} is listed twice"));
            }
            cpu[v] = Some(real(line, "cpu", f[1])?);
        }
        let cpu: Vec<f64> = cpu.into_iter().flatten().collect();
        c.header("Arcs: idS idT bandwidth delay")?;
        let mut varcs = Vec::with_capacity(na);
        let mut vseen: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        for _ in 0..na {
            let (line, f) = c.row(&format!("a virtual arc of slice {si}"), &["idS", "idT", "bandwidth", "delay"])?;
            let (from, to) =
                (id(line, "idS", f[0], nv, "virtual vertex")?, id(line, "idT", f[1], nv, "virtual vertex")?);
            if from == to {
                return err(line, format!("virtual arc {from} → {to} of slice {si} joins a vertex to itself"));
            }
            if let Some(first) = vseen.insert((from, to), line) {
                return err(
                    line,
                    format!("virtual arc {from} → {to} of slice {si} is listed twice (first on line {first})"),
                );
            }
            varcs.push(VirtualArc {
                from,
                to,
                bandwidth: real(line, "bandwidth", f[2])?,
                delay: real(line, "delay", f[3])?,
            });
        }
        let (mapping_line, pairs) = c.count("Mapping")?;
        c.expect_lines(mapping_line, pairs, "mapping pairs")?;
        c.header("Mapping pairs")?;
        let mut mapping = Vec::with_capacity(pairs);
        let mut allowed = vec![false; nv];
        for _ in 0..pairs {
            let (line, f) = c.row(&format!("a mapping pair of slice {si}"), &["virtual id", "substrate id"])?;
            let v = id(line, "virtual id", f[0], nv, "virtual vertex")?;
            let s = id(line, "substrate id", f[1], n, "substrate vertex")?;
            if mapping.contains(&(v, s)) {
                return err(line, format!("mapping pair {v} {s} of slice {si} is listed twice"));
            }
            allowed[v] = true;
            mapping.push((v, s));
        }
        if let Some(v) = allowed.iter().position(|a| !a) {
            return err(mapping_line, format!("virtual vertex {v} of slice {si} has no allowed substrate vertex"));
        }
        let (line, size) = c.count("Substrate Size")?;
        if size != n {
            return err(line, format!("slice {si} is for a substrate of {size} vertices, this one has {n}"));
        }
        let (line, t) = c.count("Slice Type")?;
        let slice_type = u32::try_from(t).or_else(|_| err(line, format!("slice type {t} is out of range")))?;
        slices.push(Slice { cpu, arcs: varcs, mapping, slice_type });
    }
    if let Some(&(line, text)) = c.lines.get(c.pos) {
        return err(line, format!("expected the end of the file after {k} slices, found `{text}`"));
    }
    Ok(VnmpInstance { name: name.to_string(), vertices, arcs, slices })
}

/// Reads one instance from plain (already decompressed) text.
pub fn read_vnmp(name: &str, mut reader: impl Read) -> Result<VnmpInstance, BenchError> {
    let mut text = String::new();
    reader.read_to_string(&mut text).map_err(|e| BenchError::new(format!("{name}: {e}")))?;
    parse_vnmp(name, &text).map_err(|e| BenchError::new(format!("{name}: {e}")))
}

/// Decompresses a bzip2 stream into text (the published instances are `.bz2`).
pub fn decompress(name: &str, reader: impl Read) -> Result<String, BenchError> {
    let mut text = String::new();
    bzip2::read::MultiBzDecoder::new(reader)
        .read_to_string(&mut text)
        .map_err(|e| BenchError::new(format!("{name}: not a readable bzip2 text file: {e}")))?;
    Ok(text)
}

// ---------------------------------------------------------------------------------------
// Conversion.

/// How the two directed arcs of a vertex pair become one link (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkRule {
    /// Smaller bandwidth, larger delay: plans are valid on the directed instance.
    #[default]
    Conservative,
    /// Smaller bandwidth, smaller delay: no directed-feasible placement is lost.
    Relaxed,
}

impl LinkRule {
    pub fn name(self) -> &'static str {
        match self {
            LinkRule::Conservative => "conservative",
            LinkRule::Relaxed => "relaxed",
        }
    }
}

/// Zone name of substrate vertex `v` out of `n`, zero-padded so names sort as ids.
pub fn zone_name(v: usize, n: usize) -> String {
    let width = n.saturating_sub(1).to_string().len();
    format!("s{v:0width$}")
}

/// Service name of slice `i`.
pub fn slice_name(i: usize) -> String {
    format!("slice{i:02}")
}

/// One VNMP CPU unit is one core.
fn cpu(units: f64) -> Resources {
    Resources::new().with("cpu", Amount::cpu((units * 1000.0).round() as u64))
}

/// The bundle of an instance with the chosen slices, one request per slice; notes on what
/// the conversion had to decide.
pub fn to_bundle(inst: &VnmpInstance, slices: &[usize], rule: LinkRule) -> (Bundle, Vec<ChainRequest>, Vec<String>) {
    let n = inst.vertices.len();
    let mut notes = Vec::new();
    let zones: Vec<Zone> = inst
        .vertices
        .iter()
        .enumerate()
        .map(|(v, sv)| Zone {
            name: zone_name(v, n),
            hosts: vec![Host { name: "h".into(), capacity: cpu(sv.cpu), available: true, ..Default::default() }],
            ..Default::default()
        })
        .collect();
    // Unordered pair → (min bandwidth, max or min delay, arcs seen).
    let mut pairs: BTreeMap<(usize, usize), (f64, f64, usize)> = BTreeMap::new();
    for a in &inst.arcs {
        let e = pairs.entry((a.from.min(a.to), a.from.max(a.to))).or_insert((f64::INFINITY, f64::NAN, 0));
        e.0 = e.0.min(a.bandwidth);
        // f64::max/min ignore the NaN of the first arc.
        e.1 = match rule {
            LinkRule::Conservative => e.1.max(a.delay),
            LinkRule::Relaxed => e.1.min(a.delay),
        };
        e.2 += 1;
    }
    let one_way = pairs.values().filter(|p| p.2 < 2).count();
    if one_way > 0 {
        notes.push(format!("{one_way} vertex pair(s) with an arc one way only became two-way links"));
    }
    let links = pairs
        .iter()
        .map(|(&(a, b), &(bw, delay, _))| Link {
            from: zone_name(a, n),
            to: zone_name(b, n),
            latency: Some(Duration::from_millis(delay)),
            bandwidth: Some(Bandwidth::from_mbps(bw)),
            cost_per_gb: Money::new(0.0),
        })
        .collect();
    let infra = Infrastructure { name: inst.name.clone(), zones, links, ..Default::default() };
    let mut docs = vec![Document::Infrastructure(infra)];
    let mut requests = Vec::new();
    for &i in slices {
        let Some(sl) = inst.slices.get(i) else { continue };
        let mut components: Vec<Component> = sl
            .cpu
            .iter()
            .enumerate()
            .map(|(v, &c)| Component { name: format!("v{v}"), resources: cpu(c), ..Default::default() })
            .collect();
        for &(v, s) in &sl.mapping {
            components[v].placement.zones.push(zone_name(s, n));
        }
        for c in &mut components {
            c.placement.zones.sort();
        }
        let channels = sl
            .arcs
            .iter()
            .map(|a| Channel {
                from: format!("v{}", a.from),
                to: format!("v{}", a.to),
                bandwidth: Some(Bandwidth::from_mbps(a.bandwidth)),
                max_latency: Some(Duration::from_millis(a.delay)),
            })
            .collect();
        let name = slice_name(i);
        docs.push(Document::Service(Service { name: name.clone(), components, channels, ..Default::default() }));
        requests.push(ChainRequest { id: name.clone(), service: name, region: None });
    }
    (Bundle::new(docs), requests, notes)
}

/// `count` slice indices evenly spaced over `total` (all when `count` is 0 or at least
/// `total`). The published files list 10 slices of each of 4 types in a row, so 4 picks one
/// of each type.
pub fn spread(total: usize, count: usize) -> Vec<usize> {
    if count == 0 || count >= total {
        return (0..total).collect();
    }
    (0..count).map(|i| i * total / count).collect()
}

/// The number after `prefix` in a generated name (`s007` → 7, `v3` → 3).
fn index_in(name: &str, prefix: &str) -> Option<usize> {
    name.strip_prefix(prefix)?.parse().ok()
}

/// Checks a plan's channel paths on the directed original instance: every hop is an arc,
/// every virtual arc's path delay (summed over the directed arcs) is within its bound, and
/// every arc's bandwidth covers the virtual arcs crossing it. Returns the violations.
pub fn directed_check(inst: &VnmpInstance, plan: &Plan) -> Vec<String> {
    let arcs: BTreeMap<(usize, usize), &SubstrateArc> = inst.arcs.iter().map(|a| ((a.from, a.to), a)).collect();
    let mut used: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut out = Vec::new();
    for path in &plan.paths {
        let found = index_in(&path.service, "slice").and_then(|si| inst.slices.get(si)).and_then(|sl| {
            let (f, t) = (index_in(&path.from, "v")?, index_in(&path.to, "v")?);
            sl.arcs.iter().find(|a| a.from == f && a.to == t)
        });
        let Some(va) = found else {
            out.push(format!("{} {} → {}: not a virtual arc of the instance", path.service, path.from, path.to));
            continue;
        };
        let zones: Option<Vec<usize>> = path.zones.iter().map(|z| index_in(z, "s")).collect();
        let Some(zones) = zones else {
            out.push(format!("{} {} → {}: a zone that is no substrate vertex", path.service, path.from, path.to));
            continue;
        };
        let mut delay = 0.0;
        for w in zones.windows(2) {
            match arcs.get(&(w[0], w[1])) {
                Some(a) => {
                    delay += a.delay;
                    *used.entry((w[0], w[1])).or_insert(0.0) += va.bandwidth;
                }
                None => out.push(format!("{} {} → {}: no arc {} → {}", path.service, path.from, path.to, w[0], w[1])),
            }
        }
        if delay > va.delay + 1e-9 {
            out.push(format!(
                "{} {} → {}: directed delay {delay} exceeds its bound {}",
                path.service, path.from, path.to, va.delay
            ));
        }
    }
    for (&(a, b), &bw) in &used {
        if let Some(arc) = arcs.get(&(a, b)) {
            if bw > arc.bandwidth + 1e-9 {
                out.push(format!("arc {a} → {b}: {bw} bandwidth over its capacity {}", arc.bandwidth));
            }
        }
    }
    out
}

fn directed_text(inst: &VnmpInstance, r: &Result<Plan, PlaceError>) -> String {
    match r {
        Ok(plan) => {
            let v = directed_check(inst, plan);
            if v.is_empty() {
                "ok".into()
            } else {
                format!("violated: {}", v.join("; "))
            }
        }
        Err(_) => "-".into(),
    }
}

// ---------------------------------------------------------------------------------------
// Suite.

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct VnmpRun {
    /// Slices per instance, evenly spaced (0: all).
    pub slices: usize,
    pub links: LinkRule,
    /// The exact chain ILP's solver options (time limit).
    pub solver: SolverOptions,
    pub heuristic: HeuristicOptions,
}

/// The heuristic as this suite times it: iteration-capped local search (no time budget, so
/// deterministic) and the combinatorial bound only, so that no solver call is in its time.
pub fn default_heuristic() -> HeuristicOptions {
    HeuristicOptions { bound: BoundMethod::Combinatorial, ..Default::default() }
}

/// Within this relative distance of the exact optimum counts as a hit (the issue's 2 %).
pub const TARGET_RATIO: f64 = 1.02;
/// The issue's speed-up target: exact time over heuristic time.
pub const TARGET_SPEEDUP: f64 = 10.0;

/// One slice: the exact and the heuristic plan.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceRecord {
    /// Substrate vertices.
    pub size: usize,
    pub instance: String,
    /// The [`LinkRule`] of the conversion.
    pub links: &'static str,
    pub slice: usize,
    pub slice_type: u32,
    pub components: usize,
    pub channels: usize,
    pub mapping_pairs: usize,
    /// `optimal`, `feasible (…)`, `infeasible`, `error: …`.
    pub exact_status: String,
    pub exact_delay: Option<f64>,
    pub exact_bound: Option<f64>,
    pub exact_gap: Option<f64>,
    /// Wall clock: build, solve, extract.
    pub exact_seconds: f64,
    pub exact_columns: usize,
    /// `ok`, `-` (no plan) or the checker's violations.
    pub exact_check: String,
    /// `ok`, `-` (no plan) or how the plan breaks the directed original ([`directed_check`]).
    pub exact_directed: String,
    /// `optimal` (proven by its own bound), `feasible (heuristic)`, `infeasible`, `error: …`.
    pub heuristic_status: String,
    pub heuristic_delay: Option<f64>,
    pub heuristic_bound: Option<f64>,
    pub heuristic_gap: Option<f64>,
    pub heuristic_seconds: f64,
    pub heuristic_check: String,
    pub heuristic_directed: String,
    /// The exact ILP's own objective (path tie-break included), to compare with a peer's.
    pub exact_ilp_objective: Option<f64>,
    /// The peer on the same ILP, when one was asked for.
    pub peer: Option<ChainPeerResult>,
}

fn status_text(r: &Result<Plan, PlaceError>) -> String {
    match r {
        Ok(p) => match &p.status {
            PlanStatus::Optimal => "optimal".into(),
            PlanStatus::Feasible { limit } => format!("feasible ({limit})"),
        },
        // The error text starts with "infeasible" and names the failing constraints.
        Err(e @ PlaceError::Infeasible { .. }) => e.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

fn check_text(p: &Problem, r: &Result<Plan, PlaceError>) -> String {
    match r {
        Ok(plan) => {
            let report = check(p, plan);
            if report.is_ok() {
                "ok".into()
            } else {
                format!("FAILED: {}", report.summary().replace('\n', "; "))
            }
        }
        Err(_) => "-".into(),
    }
}

impl SliceRecord {
    pub fn exact_optimal(&self) -> bool {
        self.exact_status == "optimal"
    }
    /// Both plans (where there is one) passed the checker.
    pub fn check_ok(&self) -> bool {
        !self.exact_check.starts_with("FAILED") && !self.heuristic_check.starts_with("FAILED")
    }
    /// Heuristic delay over exact delay: 1 when both are 0, infinite when only the exact one is.
    pub fn ratio(&self) -> Option<f64> {
        let (h, e) = (self.heuristic_delay?, self.exact_delay?);
        Some(if e.abs() <= 1e-9 {
            if h.abs() <= 1e-9 {
                1.0
            } else {
                f64::INFINITY
            }
        } else {
            h / e
        })
    }
    /// Within 2 % of the exact plan; `false` when the heuristic found nothing but the exact
    /// solve did; `None` when the exact solve found nothing.
    pub fn within_target(&self) -> Option<bool> {
        let e = self.exact_delay?;
        Some(self.heuristic_delay.is_some_and(|h| h <= e * TARGET_RATIO + 1e-9))
    }
    pub fn speedup(&self) -> Option<f64> {
        (self.heuristic_seconds > 0.0).then(|| self.exact_seconds / self.heuristic_seconds)
    }
}

/// A ratio for CSV: `inf` spelled out (an empty field would read as "missing").
fn ratio_field(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_infinite() => "inf".into(),
        v => num(v),
    }
}

impl CsvRow for SliceRecord {
    fn header() -> &'static [&'static str] {
        &[
            "size",
            "instance",
            "links",
            "slice",
            "slice_type",
            "components",
            "channels",
            "mapping_pairs",
            "exact_status",
            "exact_delay",
            "exact_bound",
            "exact_gap",
            "exact_seconds",
            "exact_columns",
            "exact_check",
            "exact_directed",
            "heuristic_status",
            "heuristic_delay",
            "heuristic_bound",
            "heuristic_gap",
            "heuristic_seconds",
            "heuristic_check",
            "heuristic_directed",
            "ratio",
            "within_2pct",
            "speedup",
            "peer",
            "peer_status",
            "peer_objective",
            "peer_bound",
            "peer_seconds",
            "peer_wall_seconds",
            "exact_ilp_objective",
            "exact_over_peer",
            "objectives_agree",
        ]
    }
    fn fields(&self) -> Vec<String> {
        vec![
            self.size.to_string(),
            self.instance.clone(),
            self.links.to_string(),
            self.slice.to_string(),
            self.slice_type.to_string(),
            self.components.to_string(),
            self.channels.to_string(),
            self.mapping_pairs.to_string(),
            self.exact_status.clone(),
            num(self.exact_delay),
            num(self.exact_bound),
            num(self.exact_gap),
            num(Some(self.exact_seconds)),
            self.exact_columns.to_string(),
            self.exact_check.clone(),
            self.exact_directed.clone(),
            self.heuristic_status.clone(),
            num(self.heuristic_delay),
            num(self.heuristic_bound),
            num(self.heuristic_gap),
            num(Some(self.heuristic_seconds)),
            self.heuristic_check.clone(),
            self.heuristic_directed.clone(),
            ratio_field(self.ratio()),
            self.within_target().map_or(String::new(), |b| b.to_string()),
            num(self.speedup()),
        ]
        .into_iter()
        .chain(chain_peer::csv_fields(self.exact_ilp_objective, self.exact_optimal(), self.peer.as_ref()))
        .collect()
    }
}

/// Runs every chosen slice of every instance: exact, then heuristic, both checked.
pub fn run_vnmp(instances: &[VnmpInstance], run: &VnmpRun, progress: Progress) -> Result<Vec<SliceRecord>, BenchError> {
    run_vnmp_with_peer(instances, run, None, progress)
}

/// [`run_vnmp`], and with `peer` every slice's exact ILP solved again by the peer.
pub fn run_vnmp_with_peer(
    instances: &[VnmpInstance],
    run: &VnmpRun,
    peer: Option<&ChainPeer>,
    progress: Progress,
) -> Result<Vec<SliceRecord>, BenchError> {
    let chosen: Vec<Vec<usize>> = instances.iter().map(|i| spread(i.slices.len(), run.slices)).collect();
    let total: usize = chosen.iter().map(Vec::len).sum();
    let mut done = 0;
    let mut out = Vec::new();
    // The plain ILP: the heuristic is measured against it (the strong bound would run the
    // heuristic inside the exact method).
    let exact = ChainOptions { solver: run.solver.clone(), strong_bound: false, ..Default::default() };
    for (inst, picks) in instances.iter().zip(&chosen) {
        let (bundle, requests, _) = to_bundle(inst, picks, run.links);
        let p = Problem::from_bundle(&bundle, &ProblemOptions::default())
            .map_err(|e| BenchError::new(format!("{}: {e}", inst.name)))?;
        let residual = Residual::full(&p);
        for (&si, req) in picks.iter().zip(&requests) {
            progress(done, total, &format!("{} slice {si}", inst.name));
            done += 1;
            let sl = &inst.slices[si];
            let started = Instant::now();
            let e = place_chain_with(&p, req, &residual, &exact);
            let exact_seconds = started.elapsed().as_secs_f64();
            // A fresh heuristic per slice: its path cache is part of what it pays for.
            let started = Instant::now();
            let h = ChainHeuristic::new(&p, run.heuristic.clone()).place(req, &residual);
            let heuristic_seconds = started.elapsed().as_secs_f64();
            let peer_result = peer.map(|peer| {
                progress(done - 1, total, &format!("{} slice {si}: {}", inst.name, peer.name()));
                peer.solve(&format!("{} slice {si}", inst.name), &p, req, &residual, exact.objective)
            });
            let term = |r: &Result<Plan, PlaceError>| r.as_ref().ok().and_then(|p| p.term("delay_ms"));
            out.push(SliceRecord {
                size: inst.vertices.len(),
                instance: inst.name.clone(),
                links: run.links.name(),
                slice: si,
                slice_type: sl.slice_type,
                components: sl.cpu.len(),
                channels: sl.arcs.len(),
                mapping_pairs: sl.mapping.len(),
                exact_status: status_text(&e),
                exact_delay: term(&e),
                exact_bound: e.as_ref().ok().and_then(|p| p.bound),
                exact_gap: e.as_ref().ok().and_then(|p| p.gap),
                exact_seconds,
                exact_columns: e.as_ref().map_or(0, |p| p.stats.columns),
                exact_check: check_text(&p, &e),
                exact_directed: directed_text(inst, &e),
                heuristic_status: status_text(&h),
                heuristic_delay: term(&h),
                heuristic_bound: h.as_ref().ok().and_then(|p| p.bound),
                heuristic_gap: h.as_ref().ok().and_then(|p| p.gap),
                heuristic_seconds,
                heuristic_check: check_text(&p, &h),
                heuristic_directed: directed_text(inst, &h),
                exact_ilp_objective: e.as_ref().ok().and_then(|p| p.stats.solve_log.last()).and_then(|s| s.objective),
                peer: peer_result,
            });
        }
    }
    progress(total, total, "done");
    Ok(out)
}

/// The median of every value, infinities included (a miss with an exact optimum of 0 must
/// not vanish from the median).
fn median_all(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

fn share(k: usize, n: usize) -> String {
    if n == 0 {
        "-".into()
    } else {
        format!("{k}/{n} ({:.0} %)", 100.0 * k as f64 / n as f64)
    }
}

/// One row per substrate size. Ratios and hits count the slices whose exact solve is proven
/// optimal; slices the exact solve left at the time limit are counted apart.
pub fn summary(records: &[SliceRecord]) -> Summary {
    let mut groups: BTreeMap<usize, Vec<&SliceRecord>> = BTreeMap::new();
    for r in records {
        groups.entry(r.size).or_default().push(r);
    }
    let mut s = Summary {
        title: format!(
            "VNMP slices: heuristic against the exact chain ILP (delay objective, each slice alone on the substrate, {} links)",
            records.first().map_or("conservative", |r| r.links)
        ),
        headers: [
            "SIZE",
            "INSTANCES",
            "SLICES",
            "EXACT OPTIMAL",
            "HEUR PLACED",
            "MEDIAN RATIO",
            "MAX RATIO",
            "WITHIN 2 %",
            "EXACT TIME",
            "HEUR TIME",
            "MEDIAN SPEEDUP",
            "BOTH TARGETS",
            "CHECK",
            "DIRECTED OK",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    for (size, rs) in &groups {
        let instances: std::collections::BTreeSet<&str> = rs.iter().map(|r| r.instance.as_str()).collect();
        let opt: Vec<&&SliceRecord> = rs.iter().filter(|r| r.exact_optimal()).collect();
        let ratios: Vec<f64> = opt.iter().filter_map(|r| r.ratio()).collect();
        let hits = opt.iter().filter(|r| r.within_target() == Some(true)).count();
        let speedups: Vec<f64> = opt.iter().filter_map(|r| r.speedup()).collect();
        let both = opt
            .iter()
            .filter(|r| r.within_target() == Some(true) && r.speedup().is_some_and(|x| x >= TARGET_SPEEDUP))
            .count();
        let exact_t: Vec<f64> = rs.iter().map(|r| r.exact_seconds).collect();
        let heur_t: Vec<f64> = rs.iter().map(|r| r.heuristic_seconds).collect();
        let max_ratio = ratios.iter().copied().fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let med_ratio = median_all(&ratios);
        let med_speedup = median(&speedups);
        s.rows.push(vec![
            size.to_string(),
            instances.len().to_string(),
            rs.len().to_string(),
            share(opt.len(), rs.len()),
            share(rs.iter().filter(|r| r.heuristic_delay.is_some()).count(), rs.len()),
            med_ratio.map_or("-".into(), |x| format!("{x:.4}")),
            max_ratio.map_or("-".into(), |x| format!("{x:.4}")),
            share(hits, opt.len()),
            seconds(median(&exact_t)),
            seconds(median(&heur_t)),
            ratio(med_speedup),
            share(both, opt.len()),
            if rs.iter().all(|r| r.check_ok()) { "ok".into() } else { "FAILED".into() },
            {
                let plans: Vec<&str> = rs
                    .iter()
                    .flat_map(|r| [r.exact_directed.as_str(), r.heuristic_directed.as_str()])
                    .filter(|d| *d != "-")
                    .collect();
                share(plans.iter().filter(|d| **d == "ok").count(), plans.len())
            },
        ]);
        let limited = rs.iter().filter(|r| r.exact_status.starts_with("feasible")).count();
        if limited > 0 {
            let better = rs
                .iter()
                .filter(|r| r.exact_status.starts_with("feasible"))
                .filter(|r| r.ratio().is_some_and(|x| x < 1.0 - 1e-9))
                .count();
            s.notes.push(format!(
                "size {size}: {limited} slice(s) stopped at the exact time limit (not in the ratios); the heuristic beat the incumbent on {better}"
            ));
        }
        let met = hits == opt.len() && med_speedup.is_some_and(|x| x >= TARGET_SPEEDUP);
        s.notes.push(format!(
            "size {size}: target (every proven-optimal slice within 2 %, median speed-up ≥ 10×) {}",
            if opt.is_empty() {
                "not measurable (no proven optimum)"
            } else if met {
                "met"
            } else {
                "missed"
            }
        ));
    }
    s.notes.push("heuristic: greedy + local search (iteration cap, no time budget), combinatorial bound only; exact: chain ILP, HiGHS relative gap 1e-4".into());
    s
}

/// The peer's summary: one row per substrate size.
pub fn peer_summary(records: &[SliceRecord]) -> Option<Summary> {
    let comparisons: Vec<Comparison> = records
        .iter()
        .filter_map(|r| {
            Some(Comparison {
                group: format!("size {}", r.size),
                exact_objective: r.exact_ilp_objective,
                exact_optimal: r.exact_optimal(),
                exact_seconds: r.exact_seconds,
                heuristic_objective: r.heuristic_delay,
                heuristic_seconds: Some(r.heuristic_seconds),
                peer: r.peer.as_ref()?,
            })
        })
        .collect();
    if comparisons.is_empty() {
        return None;
    }
    let mut s = chain_peer::summary("vnmp", &comparisons);
    s.notes.push("HEUR/PEER compares the heuristic's delay (no tie-break) with the peer's ILP objective".into());
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::no_progress;

    /// Triangle 0–1–2 (1 → 2 slow), one slice of two vertices: v0 fixed on 0, v1 on 1 or 2.
    const TINY: &str = "#Substrate Graph
# noVertices
3
# noArcs
6
# Vertices: id cost cpu group
0 1 100 0
1 2 100 0
2 3 50 1
# Arcs: idS idT bandwidth cost delay
0 1 100 1 5
1 0 80 1 7
1 2 100 1 5
2 1 100 1 5
0 2 100 1 30
2 0 100 1 30
# noSlices
1
#Virtual Graph
# noVertices
2
# noArcs
2
# Vertices: id cpu
0 10
1 60

# Arcs: idS idT bandwidth delay
0 1 20 40
1 0 10 40
# Mapping
3
# Mapping pairs
0 0
1 1
1 2
# Substrate Size
3
# Slice Type
2
";

    fn tiny() -> VnmpInstance {
        parse_vnmp("tiny", TINY).unwrap()
    }

    #[test]
    fn reads_the_layout() {
        let i = tiny();
        assert_eq!(i.vertices.len(), 3);
        assert_eq!(i.vertices[2], SubstrateVertex { cost: 3.0, cpu: 50.0, group: 1 });
        assert_eq!(i.arcs.len(), 6);
        assert_eq!(i.arcs[1], SubstrateArc { from: 1, to: 0, bandwidth: 80.0, cost: 1.0, delay: 7.0 });
        assert_eq!(i.slices.len(), 1);
        let s = &i.slices[0];
        assert_eq!(s.cpu, vec![10.0, 60.0]);
        assert_eq!(s.arcs[0], VirtualArc { from: 0, to: 1, bandwidth: 20.0, delay: 40.0 });
        assert_eq!(s.mapping, vec![(0, 0), (1, 1), (1, 2)]);
        assert_eq!(s.slice_type, 2);
        assert_eq!(read_vnmp("tiny", TINY.as_bytes()).unwrap(), i);
    }

    fn error_of(text: &str) -> VnmpError {
        parse_vnmp("bad", text).unwrap_err()
    }

    #[test]
    fn malformed_input_names_the_line() {
        let e = error_of(&TINY.replace("2 3 50 1", "2 3 fifty 1"));
        assert_eq!(e.line, 9, "{e}");
        assert!(e.message.contains("cpu") && e.message.contains("fifty"), "{e}");
        let e = error_of(&TINY.replace("0 2 100 1 30", "0 7 100 1 30"));
        assert_eq!(e.line, 15, "{e}");
        assert!(e.message.contains("not a substrate vertex id"), "{e}");
        let e = error_of(&TINY.replace("# noSlices", "# noSlice"));
        assert_eq!(e.line, 17, "{e}");
        assert!(e.message.contains("`# noSlices`"), "{e}");
        let e = error_of(&TINY.replace("1 0 10 40", "1 0 10"));
        assert!(e.line == 30 && e.message.contains("virtual arc"), "{e}");
        let e = error_of(&TINY.replace("1 1\n1 2\n", "1 1\n1 1\n"));
        assert!(e.message.contains("twice"), "{e}");
        let e = error_of(&TINY.replace("0 0\n1 1\n1 2\n", "1 0\n1 1\n1 2\n"));
        assert!(e.line == 32 && e.message.contains("virtual vertex 0"), "{e}");
        let e = error_of(&TINY.replace("1 2 100 1 5\n2 1", "1 0 100 1 5\n2 1"));
        assert!(e.line == 13 && e.message.contains("line 12"), "{e}");
        let e = error_of(&format!("{TINY}extra\n"));
        assert!(e.line == 41 && e.message.contains("end of the file"), "{e}");
        let e = error_of(&TINY[..TINY.find("# Slice Type").unwrap()]);
        assert!(e.message.contains("end of input") && e.message.contains("Slice Type"), "{e}");
        let e = error_of(&TINY.replace("# noArcs\n6", "# noArcs\n600000000000"));
        assert!(e.line == 5 && e.message.contains("only"), "{e}");
        let e = error_of(&TINY.replace("# Substrate Size\n3", "# Substrate Size\n4"));
        assert!(e.message.contains("4 vertices"), "{e}");
    }

    #[test]
    fn conversion_makes_zones_links_and_constrained_components() {
        let i = tiny();
        let (bundle, requests, notes) = to_bundle(&i, &[0], LinkRule::Conservative);
        assert!(notes.is_empty());
        assert_eq!(requests.len(), 1);
        let infra = bundle.infrastructure();
        assert_eq!(infra.zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>(), ["s0", "s1", "s2"]);
        assert_eq!(infra.zones[2].hosts[0].capacity.get("cpu"), 50_000);
        // 0–1: min bandwidth 80, max delay 7.
        let l = infra.links.iter().find(|l| l.from == "s0" && l.to == "s1").unwrap();
        assert_eq!((l.bandwidth.map(|b| b.mbps()), l.latency.map(|d| d.as_millis())), (Some(80.0), Some(7.0)));
        assert_eq!(infra.links.len(), 3);
        let (relaxed, _, _) = to_bundle(&i, &[0], LinkRule::Relaxed);
        let infra = relaxed.infrastructure();
        let l = infra.links.iter().find(|l| l.from == "s0" && l.to == "s1").unwrap();
        assert_eq!((l.bandwidth.map(|b| b.mbps()), l.latency.map(|d| d.as_millis())), (Some(80.0), Some(5.0)));
        let svc = bundle.documents.iter().find_map(|d| if let Document::Service(s) = d { Some(s) } else { None });
        let svc = svc.unwrap();
        assert_eq!(svc.name, "slice00");
        assert_eq!(svc.components[1].placement.zones, ["s1", "s2"]);
        assert_eq!(svc.components[1].resources.get("cpu"), 60_000);
        assert_eq!(svc.channels[1].max_latency.map(|d| d.as_millis()), Some(40.0));
        assert_eq!(zone_name(7, 200), "s007");
        assert_eq!(spread(40, 4), [0, 10, 20, 30]);
        assert_eq!(spread(3, 0), [0, 1, 2]);
    }

    #[test]
    fn one_way_arcs_are_noted() {
        let mut i = tiny();
        i.arcs.retain(|a| !(a.from == 2 && a.to == 0));
        let (_, _, notes) = to_bundle(&i, &[0], LinkRule::Relaxed);
        assert_eq!(notes.len(), 1, "{notes:?}");
    }

    #[test]
    fn both_solvers_agree_on_the_tiny_slice() {
        let run = VnmpRun {
            slices: 0,
            links: LinkRule::Conservative,
            solver: SolverOptions::default(),
            heuristic: default_heuristic(),
        };
        let records = run_vnmp(&[tiny()], &run, &mut no_progress).unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        // v1 on s1: 7 ms each way (the link takes the larger delay) = 14; on s2 (too small) no.
        assert_eq!(r.exact_status, "optimal", "{r:?}");
        assert_eq!(r.exact_delay, Some(14.0));
        assert_eq!(r.heuristic_delay, Some(14.0));
        assert_eq!(r.ratio(), Some(1.0));
        assert_eq!(r.within_target(), Some(true));
        assert!(r.check_ok() && r.exact_check == "ok" && r.heuristic_check == "ok", "{r:?}");
        assert_eq!((r.exact_directed.as_str(), r.heuristic_directed.as_str()), ("ok", "ok"));
        let csv = crate::report::to_csv(&records);
        assert!(csv.starts_with("size,instance,links,slice,"));
        let s = summary(&records);
        assert_eq!(s.rows.len(), 1);
        assert_eq!(s.rows[0][3], "1/1 (100 %)");
    }

    #[test]
    fn the_directed_check_catches_the_slower_direction() {
        // v1 → v0 may take 6: 1 → 0 takes 7, 0 → 1 only 5.
        let mut i = tiny();
        i.slices[0].arcs[1].delay = 6.0;
        let mut run = VnmpRun {
            slices: 0,
            links: LinkRule::Conservative,
            solver: SolverOptions::default(),
            heuristic: default_heuristic(),
        };
        let r = &run_vnmp(std::slice::from_ref(&i), &run, &mut no_progress).unwrap()[0];
        assert!(r.exact_status.starts_with("infeasible") && r.heuristic_status.starts_with("infeasible"), "{r:?}");
        assert_eq!(r.exact_directed, "-");
        run.links = LinkRule::Relaxed;
        let r = &run_vnmp(&[i], &run, &mut no_progress).unwrap()[0];
        assert_eq!(r.exact_status, "optimal", "{r:?}");
        assert_eq!(r.exact_delay, Some(10.0), "5 ms each way on the relaxed link");
        assert!(r.check_ok(), "valid on the converted problem: {r:?}");
        assert!(r.exact_directed.starts_with("violated") && r.exact_directed.contains("exceeds"), "{r:?}");
        assert!(r.heuristic_directed.starts_with("violated"), "{r:?}");
    }

    #[test]
    fn ratio_edge_cases() {
        let mut r = SliceRecord {
            size: 3,
            instance: "x".into(),
            links: "conservative",
            slice: 0,
            slice_type: 0,
            components: 1,
            channels: 0,
            mapping_pairs: 1,
            exact_status: "optimal".into(),
            exact_delay: Some(0.0),
            exact_bound: None,
            exact_gap: None,
            exact_seconds: 1.0,
            exact_columns: 0,
            exact_check: "ok".into(),
            exact_directed: "ok".into(),
            heuristic_status: "optimal".into(),
            heuristic_delay: Some(0.0),
            heuristic_bound: None,
            heuristic_gap: None,
            heuristic_seconds: 0.01,
            heuristic_check: "ok".into(),
            heuristic_directed: "ok".into(),
            exact_ilp_objective: Some(0.0),
            peer: None,
        };
        assert_eq!(r.ratio(), Some(1.0));
        assert_eq!(r.speedup(), Some(100.0));
        r.heuristic_delay = Some(3.0);
        assert_eq!(r.ratio(), Some(f64::INFINITY));
        assert_eq!(r.within_target(), Some(false));
        assert_eq!(ratio_field(r.ratio()), "inf");
        r.heuristic_delay = None;
        assert_eq!(r.within_target(), Some(false));
        r.exact_delay = None;
        assert_eq!(r.within_target(), None);
        r.heuristic_check = "FAILED: x".into();
        assert!(!r.check_ok());
        assert_eq!(median_all(&[1.0, f64::INFINITY, 2.0]), Some(2.0));
    }

    /// One real file of the reference data (a missing file fails the test with the reason).
    #[test]
    fn reads_a_published_instance() {
        let path = zonal_testdata::path("vnmp/20/eu_20_0_prob.bz2");
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let text = decompress("eu_20_0_prob", file).unwrap();
        let i = parse_vnmp("eu_20_0_prob", &text).unwrap();
        assert_eq!((i.vertices.len(), i.arcs.len(), i.slices.len()), (20, 44, 40));
        assert_eq!(i.slices[0].cpu.len(), 5);
        assert_eq!(i.slices[0].mapping.iter().filter(|m| m.0 == 0).count(), 1, "the source vertex is fixed");
        let (bundle, requests, notes) = to_bundle(&i, &spread(40, 4), LinkRule::Conservative);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(requests.len(), 4);
        assert_eq!(bundle.infrastructure().links.len(), 22);
        Problem::from_bundle(&bundle, &ProblemOptions::default()).unwrap();
    }
}
