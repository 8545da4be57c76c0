//! VPSolver `.vbp` instances and the `*_summary_known.csv` tables of the Vectorpack
//! benchmark (Mommessin et al., Computers & OR 2024).
//!
//! `.vbp` text: the number of dimensions `d`; the `d` bin capacities; the number of item
//! *types* `m`; then `m` lines of `d` demands followed by the multiplicity of the type. All
//! whitespace-separated integers. Items are expanded type by type, in file order.
//!
//! The archives are read in place by streaming them ([`read_archive`]); nothing is unpacked
//! to disk.

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::instance::Instance;

/// A parse error with the 1-based token position that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub source: String,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

impl std::error::Error for ParseError {}

struct Tokens<'a> {
    name: &'a str,
    toks: std::iter::Enumerate<std::str::SplitAsciiWhitespace<'a>>,
}

impl Tokens<'_> {
    fn err(&self, message: String) -> ParseError {
        ParseError { source: self.name.to_string(), message }
    }
    fn signed(&mut self, what: &str) -> Result<i64, ParseError> {
        let (pos, t) = self.toks.next().ok_or_else(|| self.err(format!("unexpected end of file, expected {what}")))?;
        t.parse::<i64>().map_err(|_| self.err(format!("token {}: expected {what}, found {t:?}", pos + 1)))
    }
    fn unsigned(&mut self, what: &str) -> Result<u64, ParseError> {
        let v = self.signed(what)?;
        u64::try_from(v).map_err(|_| self.err(format!("expected {what}, found {v}")))
    }
}

/// Parses one `.vbp` text into an identical-bins [`Instance`] named `name`. Demands may be
/// negative (the Triplet generator produces a few; see [`crate::instance`]); capacities and
/// counts may not.
pub fn parse_vbp(name: &str, text: &str) -> Result<Instance, ParseError> {
    let mut t = Tokens { name, toks: text.split_ascii_whitespace().enumerate() };
    let d = t.unsigned("the number of dimensions")? as usize;
    if d == 0 || d > 1000 {
        return Err(t.err(format!("implausible dimension count {d}")));
    }
    let capacity = (0..d).map(|_| t.unsigned("a capacity")).collect::<Result<Vec<_>, _>>()?;
    let m = t.unsigned("the number of item types")? as usize;
    let mut items = Vec::new();
    for _ in 0..m {
        let dem = (0..d).map(|_| t.signed("a demand")).collect::<Result<Vec<_>, _>>()?;
        let count = t.unsigned("an item multiplicity")?;
        if count > 10_000_000 {
            return Err(t.err(format!("implausible multiplicity {count}")));
        }
        for _ in 0..count {
            items.push(dem.clone());
        }
    }
    Ok(Instance::identical(name, capacity, items))
}

/// Streams a `.tar.gz` archive of `.vbp` files and calls `visit(stem, instance)` for every
/// instance whose file stem `wanted` accepts. Stops early when `visit` returns false.
pub fn read_archive<R: Read>(
    reader: R,
    mut wanted: impl FnMut(&str) -> bool,
    mut visit: impl FnMut(&str, Instance) -> bool,
) -> Result<(), ParseError> {
    let gz = flate2::read::GzDecoder::new(reader);
    let mut ar = tar::Archive::new(gz);
    let io = |e: std::io::Error| ParseError { source: "archive".into(), message: e.to_string() };
    for entry in ar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.to_string_lossy().into_owned();
        if !path.ends_with(".vbp") {
            continue;
        }
        let stem = path.rsplit('/').next().unwrap_or(&path).trim_end_matches(".vbp").to_string();
        if !wanted(&stem) {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).map_err(io)?;
        let inst = parse_vbp(&stem, &text)?;
        if !visit(&stem, inst) {
            break;
        }
    }
    Ok(())
}

/// One row of a `*_summary_known.csv` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownRow {
    pub instance: String,
    /// The lower bound the authors computed.
    pub lb: u64,
    /// The proven optimum, when known.
    pub opt: Option<u64>,
    /// The best value over the ~100 published heuristics, for this instance.
    pub best_heuristic: u64,
}

/// Parses a tab-separated summary table (`instance_name LB OPT best_overall …`; `OPT = -1`
/// when unknown) into a map by instance name.
pub fn parse_summary<R: Read>(reader: R) -> Result<BTreeMap<String, KnownRow>, ParseError> {
    let mut rdr = csv::ReaderBuilder::new().delimiter(b'\t').from_reader(reader);
    let err = |m: String| ParseError { source: "summary".into(), message: m };
    let headers = rdr.headers().map_err(|e| err(e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name).ok_or_else(|| err(format!("no column {name}")));
    let (ci, cl, co, cb) = (col("instance_name")?, col("LB")?, col("OPT")?, col("best_overall")?);
    let mut out = BTreeMap::new();
    for (line, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| err(e.to_string()))?;
        let num = |c: usize| -> Result<i64, ParseError> {
            rec.get(c)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .ok_or_else(|| err(format!("line {}: column {} is not an integer", line + 2, &headers[c])))
        };
        let name = rec.get(ci).unwrap_or_default().to_string();
        let opt = num(co)?;
        out.insert(
            name.clone(),
            KnownRow {
                instance: name,
                lb: num(cl)?.max(0) as u64,
                opt: if opt > 0 { Some(opt as u64) } else { None },
                best_heuristic: num(cb)?.max(0) as u64,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vbp() {
        let inst = parse_vbp("x", "2\n10 20\n2\n3 4 2\n5 6 1\n").unwrap();
        assert_eq!(inst.dims, 2);
        assert_eq!(inst.items, vec![vec![3, 4], vec![3, 4], vec![5, 6]]);
        assert!(parse_vbp("x", "2\n10 20\n2\n3 4 2\n5").is_err());
        assert!(parse_vbp("x", "2\n10 x\n").unwrap_err().message.contains("token 3"));
    }

    #[test]
    fn parses_summary() {
        let t = "instance_name\tLB\tOPT\tbest_overall\tbest_IC\nclass1_20_3_0\t10\t11\t11\t11\nclass1_20_3_1\t9\t-1\t10\t10\n";
        let m = parse_summary(t.as_bytes()).unwrap();
        assert_eq!(m["class1_20_3_0"].opt, Some(11));
        assert_eq!(m["class1_20_3_1"].opt, None);
        assert_eq!(m["class1_20_3_1"].best_heuristic, 10);
    }
}
