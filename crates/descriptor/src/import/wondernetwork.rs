//! WonderNetwork ping data (WonderProxy "a day in the life of the internet", 2020-07-19)
//! → [`Infrastructure`] with measured latencies, and a dense [`LatencyMatrix`].
//!
//! Inputs: the servers CSV (`id,name,title,location,state,country,state_abbv,continent,
//! latitude,longitude,selected,,,11`) and the grouped pings CSV (`source,destination,min,
//! avg,max,mdev`, RTTs in milliseconds, `source`/`destination` are server ids).
//!
//! Conversion rules:
//!
//! * Columns are found by header name (case-insensitive), so the servers file's trailing
//!   unnamed columns (`,,,11`) and any extra columns are ignored. Required: `id`, `name`,
//!   `latitude`, `longitude` (servers) and `source`, `destination`, `avg` (pings).
//! * **Servers → zones**, in file order, with no hosts (they are measurement points, not
//!   places to run things). Name: the `name` column; when names repeat, each gets `-<id>`
//!   appended. Location from `latitude`/`longitude`. Labels: `title` (the city title),
//!   `country`, `state`, `continent` (WonderNetwork's numeric continent code), when not
//!   empty, and `wondernetwork_id`. A duplicate server id, a non-integer id, an empty name
//!   or bad coordinates is an error.
//! * **Pings → latencies.** The RTT is the `avg` column (ms). Rows whose source equals
//!   destination are ignored (counted). Rows naming a server id that is not in the servers
//!   file are skipped and counted, with the ids listed: the 2020-07-19 dump has 1,976 rows
//!   for ids 292–295, which its servers file lacks (known junk). A non-integer id or a
//!   non-numeric or negative `avg` is an error. All measurements of an unordered pair are
//!   averaged into one [`MeasuredLatency`] (normally one per direction: the mean of the two
//!   directions is used and the number of such pairs is noted), `from` being the server that
//!   comes first in the servers file. Entries are sorted by (from, to) file order. Pairs
//!   never measured are reported (listed when there are at most 50).
//! * The infrastructure is named after the servers file stem, has no links, and keeps the
//!   default latency model (for places that were not measured).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use zonal_model::{Duration, Infrastructure, MeasuredLatency, Zone};

use super::text::{csv_records, error, header_column, optional_column, stem, unique_names, Row};
use super::{ImportError, ImportReport};

/// Reads the WonderNetwork servers and grouped pings files; see the module documentation.
pub fn import_wondernetwork(
    servers: &str,
    servers_file: &str,
    pings: &str,
    pings_file: &str,
) -> Result<(Infrastructure, ImportReport), ImportError> {
    let mut report = ImportReport::default();

    // Servers.
    let records = csv_records(servers, servers_file)?;
    let rows: Vec<Row> = records.iter().map(|r| Row::from_csv(servers_file, servers, r)).collect();
    let Some((header, rows)) = rows.split_first() else {
        return Err(error(servers_file, Some(1), None, "expected a header line, found an empty file"));
    };
    let c_id = header_column(header, "id")?;
    let c_name = header_column(header, "name")?;
    let c_lat = header_column(header, "latitude")?;
    let c_lon = header_column(header, "longitude")?;
    let optional: Vec<(&str, Option<usize>)> =
        ["title", "country", "state", "continent"].iter().map(|n| (*n, optional_column(header, n))).collect();

    let mut zones: Vec<Zone> = Vec::new();
    let mut ids: Vec<u64> = Vec::new();
    let mut by_id: HashMap<u64, usize> = HashMap::new();
    for row in rows.iter().filter(|r| r.fields.iter().any(|f| !f.text.is_empty())) {
        let id_text = row.non_empty(c_id, "a server id")?;
        let id: u64 = id_text
            .parse()
            .map_err(|_| row.error_at(c_id, format!("expected a server id (a whole number), found {id_text:?}")))?;
        if by_id.contains_key(&id) {
            return Err(row.error_at(c_id, format!("expected unique server ids, found id {id} a second time")));
        }
        let name = row.non_empty(c_name, "a server name")?;
        let location = row.location(c_lat, c_lon)?;
        let mut labels = BTreeMap::new();
        for (label, column) in &optional {
            if let Some(v) = column.and_then(|c| row.fields.get(c)).map(|f| f.text).filter(|t| !t.is_empty()) {
                labels.insert(label.to_string(), v.to_string());
            }
        }
        labels.insert("wondernetwork_id".to_string(), id.to_string());
        by_id.insert(id, zones.len());
        ids.push(id);
        zones.push(Zone { name: name.to_string(), location: Some(location), labels, ..Default::default() });
    }
    if zones.is_empty() {
        return Err(error(servers_file, Some(2), None, "expected at least one server row, found none"));
    }
    let candidates: Vec<Vec<String>> =
        zones.iter().zip(&ids).map(|(z, id)| vec![z.name.clone(), format!("{}-{id}", z.name)]).collect();
    for (z, n) in zones.iter_mut().zip(unique_names(&candidates)) {
        z.name = n;
    }

    // Pings.
    let records = csv_records(pings, pings_file)?;
    let rows: Vec<Row> = records.iter().map(|r| Row::from_csv(pings_file, pings, r)).collect();
    let Some((header, rows)) = rows.split_first() else {
        return Err(error(pings_file, Some(1), None, "expected a header line, found an empty file"));
    };
    let c_src = header_column(header, "source")?;
    let c_dst = header_column(header, "destination")?;
    let c_avg = header_column(header, "avg")?;
    let mut sums: BTreeMap<(usize, usize), (f64, usize)> = BTreeMap::new();
    let (mut self_rows, mut unknown_rows) = (0usize, 0usize);
    let mut unknown_ids: BTreeSet<u64> = BTreeSet::new();
    for row in rows.iter().filter(|r| r.fields.iter().any(|f| !f.text.is_empty())) {
        let id = |c: usize, what: &str| -> Result<u64, ImportError> {
            let t = row.non_empty(c, what)?;
            t.parse().map_err(|_| row.error_at(c, format!("expected {what} (a whole number), found {t:?}")))
        };
        let (s, d) = (id(c_src, "a source server id")?, id(c_dst, "a destination server id")?);
        let rtt = row.non_negative(c_avg, "the average RTT in ms")?;
        let (Some(&a), Some(&b)) = (by_id.get(&s), by_id.get(&d)) else {
            unknown_rows += 1;
            unknown_ids.extend([s, d].into_iter().filter(|i| !by_id.contains_key(i)));
            continue;
        };
        if a == b {
            self_rows += 1;
            continue;
        }
        let e = sums.entry((a.min(b), a.max(b))).or_insert((0.0, 0));
        e.0 += rtt;
        e.1 += 1;
    }
    let latencies: Vec<MeasuredLatency> = sums
        .iter()
        .map(|(&(a, b), &(sum, n))| MeasuredLatency {
            from: zones[a].name.clone(),
            to: zones[b].name.clone(),
            rtt: Duration::from_millis(sum / n as f64),
        })
        .collect();

    let n = zones.len();
    let all_pairs = n * (n - 1) / 2;
    report.notes.push(format!(
        "{n} servers → {n} zones; {} of {all_pairs} server pairs measured ({:.2} %)",
        latencies.len(),
        100.0 * latencies.len() as f64 / all_pairs.max(1) as f64
    ));
    let both = sums.values().filter(|(_, k)| *k == 2).count();
    let more = sums.values().filter(|(_, k)| *k > 2).count();
    if both > 0 {
        report.notes.push(format!("{both} pairs measured in both directions: their RTT is the mean of the two"));
    }
    if more > 0 {
        report.notes.push(format!("{more} pairs measured more than twice: their RTT is the mean of all measurements"));
    }
    if self_rows > 0 {
        report.notes.push(format!("ignored {self_rows} rows measuring a server against itself"));
    }
    if unknown_rows > 0 {
        let list: Vec<String> = unknown_ids.iter().map(u64::to_string).collect();
        report.notes.push(format!(
            "skipped {unknown_rows} ping rows naming server ids absent from {servers_file}: {}",
            list.join(", ")
        ));
    }
    let missing: Vec<String> = (0..n)
        .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
        .filter(|p| !sums.contains_key(p))
        .map(|(a, b)| format!("{}–{}", zones[a].name, zones[b].name))
        .collect();
    if !missing.is_empty() {
        let shown = if missing.len() <= 50 { format!(": {}", missing.join(", ")) } else { String::new() };
        report.notes.push(format!("{} server pairs have no measurement{shown}", missing.len()));
    }

    let infra = Infrastructure { name: stem(servers_file), zones, latencies, ..Default::default() };
    Ok((infra, report))
}

/// A dense, symmetric matrix of round-trip times (ms) between named places, with `NaN` where
/// nothing was measured and 0 on the diagonal. Row-major `n × n`.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyMatrix {
    names: Vec<String>,
    index: HashMap<String, usize>,
    rtt_ms: Vec<f64>,
}

impl LatencyMatrix {
    /// A matrix over `names` with nothing measured yet. A repeated name keeps its first index.
    pub fn new(names: Vec<String>) -> Self {
        let n = names.len();
        let mut index = HashMap::with_capacity(n);
        for (i, name) in names.iter().enumerate() {
            index.entry(name.clone()).or_insert(i);
        }
        let mut rtt_ms = vec![f64::NAN; n * n];
        for i in 0..n {
            rtt_ms[i * n + i] = 0.0;
        }
        LatencyMatrix { names, index, rtt_ms }
    }

    /// The matrix over `infra`'s zones (in order) filled from its measured latencies.
    /// Measurements naming something other than a zone are ignored; a pair measured twice
    /// keeps the later value.
    pub fn from_infrastructure(infra: &Infrastructure) -> Self {
        let mut m = LatencyMatrix::new(infra.zones.iter().map(|z| z.name.clone()).collect());
        for l in &infra.latencies {
            if let (Some(a), Some(b)) = (m.index_of(&l.from), m.index_of(&l.to)) {
                m.set_index(a, b, l.rtt.as_millis());
            }
        }
        m
    }

    /// Number of places.
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
    /// The places, in index order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
    /// The RTT in ms between `a` and `b`; `None` when either name is unknown or the pair was
    /// not measured.
    pub fn get(&self, a: &str, b: &str) -> Option<f64> {
        let v = self.get_index(self.index_of(a)?, self.index_of(b)?);
        (!v.is_nan()).then_some(v)
    }
    /// The RTT in ms between places `i` and `j` (`NaN` when not measured). Panics when an
    /// index is out of range, like slice indexing.
    pub fn get_index(&self, i: usize, j: usize) -> f64 {
        assert!(i < self.len() && j < self.len(), "latency matrix index ({i}, {j}) out of range {}", self.len());
        self.rtt_ms[i * self.len() + j]
    }
    /// Sets the RTT between `i` and `j` (both directions).
    pub fn set_index(&mut self, i: usize, j: usize, rtt_ms: f64) {
        let n = self.len();
        assert!(i < n && j < n, "latency matrix index ({i}, {j}) out of range {n}");
        self.rtt_ms[i * n + j] = rtt_ms;
        self.rtt_ms[j * n + i] = rtt_ms;
    }
    /// The row-major `n × n` values.
    pub fn as_slice(&self) -> &[f64] {
        &self.rtt_ms
    }
    /// Number of unordered pairs of distinct places with no value.
    pub fn missing_pairs(&self) -> usize {
        let n = self.len();
        (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).filter(|&(i, j)| self.rtt_ms[i * n + j].is_nan()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::shared_data_file;

    const SERVERS: &str =
        "id,name,title,location,state,country,state_abbv,continent,latitude,longitude,selected,,,11\n\
1,Melbourne,Melbourne,Melbourne,Victoria,Australia,VIC,4,-37.7833,144.9667,1,,,\n\
2,Toronto,Toronto,Toronto,Ontario,Canada,ON,1,43.6481,-79.4042,1,,,\n\
5,Paris,Paris,Paris,,France,,3,48.85,2.35,,,,\n\
7,Paris,Paris,Paris,Texas,United States,TX,1,33.66,-95.55,,,,\n";

    const PINGS: &str = "source,destination,min,avg,max,mdev\n\
1,2,200,210,220,1\n2,1,200,220,230,1\n1,1,0.01,0.02,0.03,0\n1,5,1,280.5,1,1\n9,1,1,1,1,1\n5,7,1,100,1,1\n";

    #[test]
    fn converts_servers_and_pings() {
        let (infra, report) = import_wondernetwork(SERVERS, "servers.csv", PINGS, "pings.csv").unwrap();
        let names: Vec<&str> = infra.zones.iter().map(|z| z.name.as_str()).collect();
        assert_eq!(names, ["melbourne", "toronto", "paris-5", "paris-7"]);
        assert!(infra.zones.iter().all(|z| z.hosts.is_empty()));
        assert_eq!(infra.zones[1].labels["country"], "Canada");
        assert_eq!(infra.zones[1].labels["title"], "Toronto");
        assert!(!infra.zones[2].labels.contains_key("state"));
        assert_eq!(infra.latencies.len(), 3);
        let l = &infra.latencies[0];
        assert_eq!((l.from.as_str(), l.to.as_str(), l.rtt.as_millis()), ("melbourne", "toronto", 215.0));
        assert!(report.notes.iter().any(|n| n.contains("1 pairs measured in both directions")));
        assert!(report.notes.iter().any(|n| n.starts_with("skipped 1 ping rows") && n.ends_with(": 9")));
        assert!(report.notes.iter().any(|n| n.starts_with("ignored 1 rows")));
        assert!(report.notes.iter().any(|n| n.starts_with("3 server pairs have no measurement")));

        let m = LatencyMatrix::from_infrastructure(&infra);
        assert_eq!(m.len(), 4);
        assert_eq!(m.get("toronto", "melbourne"), Some(215.0));
        assert_eq!(m.get("melbourne", "melbourne"), Some(0.0));
        assert_eq!(m.get("toronto", "paris-5"), None);
        assert!(m.get_index(1, 2).is_nan());
        assert_eq!(m.get("atlantis", "toronto"), None);
        assert_eq!(m.missing_pairs(), 3);
    }

    #[test]
    fn malformed_rows_are_located_errors() {
        let bad = PINGS.replace("1,5,1,280.5", "1,5,1,fast");
        let e = import_wondernetwork(SERVERS, "servers.csv", &bad, "pings.csv").unwrap_err();
        assert_eq!((e.file.as_str(), e.line, e.column), ("pings.csv", Some(5), Some(7)), "{e}");
        assert!(e.message.contains("average RTT") && e.message.contains("fast"), "{e}");

        let bad = SERVERS.replace("43.6481", "433.6481");
        let e = import_wondernetwork(&bad, "servers.csv", PINGS, "pings.csv").unwrap_err();
        assert_eq!((e.line, e.column), (Some(3), Some(47)), "{e}");

        let bad = SERVERS.replace("5,Paris,", "2,Paris,");
        let e = import_wondernetwork(&bad, "servers.csv", PINGS, "pings.csv").unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("unique server ids"), "{e}");

        let e = import_wondernetwork(SERVERS, "servers.csv", "src,dst,avg\n1,2,3\n", "pings.csv").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("\"source\""), "{e}");
    }

    #[test]
    fn real_wondernetwork_data() {
        let (sf, servers) = shared_data_file("latency/wondernetwork-servers-2020-07-19.csv");
        let (pf, pings) = shared_data_file("latency/wondernetwork-pings-2020-07-19-grouped.csv");
        let (infra, report) = import_wondernetwork(&servers, &sf, &pings, &pf).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("WonderNetwork report:\n  {}", report.notes.join("\n  "));
        assert_eq!(infra.zones.len(), 246);
        assert_eq!(infra.latencies.len(), 30_107);
        assert!(report.notes.iter().any(|n| n.starts_with("28 server pairs have no measurement")), "{report:?}");
        assert!(report
            .notes
            .iter()
            .any(|n| n.starts_with("skipped 1976 ping rows") && n.ends_with("292, 293, 294, 295")));
        assert!(report.notes.iter().any(|n| n.starts_with("29780 pairs measured in both directions")));
        let m = LatencyMatrix::from_infrastructure(&infra);
        assert_eq!(m.missing_pairs(), 28);
        let rtt = m.get("melbourne", "toronto").expect("measured");
        assert!((150.0..400.0).contains(&rtt), "{rtt}");
    }
}
