//! Measurement records as CSV, medians, and summary tables (headers and text cells; the CLI
//! lays them out).

/// A record that can be written as one CSV row.
pub trait CsvRow {
    fn header() -> &'static [&'static str];
    fn fields(&self) -> Vec<String>;
}

/// Quotes a field when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The records as CSV text with a header line.
pub fn to_csv<R: CsvRow>(rows: &[R]) -> String {
    let mut out = R::header().join(",");
    out.push('\n');
    for r in rows {
        let fields: Vec<String> = r.fields().iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// A number for CSV: empty when absent or not finite, so spreadsheets read it as missing.
pub fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => String::new(),
    }
}

/// The median of the finite values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// The `p`-th percentile (0–100) of the finite values by the nearest-rank rule: the smallest
/// value with at least `p` % of the values at or below it (`p` = 100 is the maximum).
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p.clamp(0.0, 100.0) / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// The largest finite value.
pub fn max(values: &[f64]) -> Option<f64> {
    values.iter().copied().filter(|x| x.is_finite()).reduce(f64::max)
}

/// A table for people: a title, column headers and rows of text cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Lines printed under the table (targets, caveats).
    pub notes: Vec<String>,
}

/// Seconds for a table: milliseconds below one second.
pub fn seconds(v: Option<f64>) -> String {
    match v {
        Some(s) if s.is_finite() && s < 1.0 => format!("{:.1} ms", s * 1e3),
        Some(s) if s.is_finite() => format!("{s:.2} s"),
        _ => "-".into(),
    }
}

/// A ratio for a table (`-` when unknown).
pub fn ratio(v: Option<f64>) -> String {
    match v {
        Some(r) if r.is_finite() => format!("{r:.2}×"),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct R(&'static str, f64);
    impl CsvRow for R {
        fn header() -> &'static [&'static str] {
            &["name", "value"]
        }
        fn fields(&self) -> Vec<String> {
            vec![self.0.into(), num(Some(self.1))]
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let csv = to_csv(&[R("a", 1.5), R("b,\"c\"", f64::NAN)]);
        assert_eq!(csv, "name,value\na,1.5\n\"b,\"\"c\"\"\",\n");
    }

    #[test]
    fn medians_ignore_missing_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, f64::NAN, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(max(&[1.0, f64::INFINITY, 3.0]), Some(3.0));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[5.0], 99.0), Some(5.0));
        assert_eq!(percentile(&[f64::NAN], 50.0), None);
    }
}
