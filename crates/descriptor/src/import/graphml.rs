//! Internet Topology Zoo GraphML → [`Infrastructure`].
//!
//! Conversion rules:
//!
//! * **Keys.** `<data>` values are matched to attributes through the file's `<key>`
//!   declarations by `attr.name` (`label`, `Latitude`, `Longitude`, `Country`, `Internal`,
//!   `hyperedge`, `LinkSpeedRaw`); key ids (`d30`, ...) differ between files and are never
//!   assumed. A `<data>` whose key is not declared is an error.
//! * **Nodes → zones**, in document order. The zone name is the node `label`; when several
//!   nodes share a label, each of them gets its GraphML id appended (`Paris-12`, `Paris-40`);
//!   should that still collide, `-2`, `-3`, ... are appended in document order. A missing,
//!   empty or literal `None` label (the Topology Zoo writes `None` for the anonymous
//!   hyperedge nodes that stand for a shared medium) gives `hyperedge-<id>` when the node has
//!   `hyperedge` = 1, else `node-<id>`. Labels kept on the zone: `graphml_id` (always),
//!   `country`, `internal`, `hyperedge` (when present), and `location_imputed: "true"` for
//!   nodes whose position was imputed.
//! * **Coordinates** come from `Latitude`/`Longitude` (decimal degrees; out of range is an
//!   error). A node with neither, or with only one of the two (noted), gets an **imputed**
//!   position, computed in rounds: in each round every still unpositioned node that has at
//!   least one positioned neighbour (given, or imputed in an earlier round) takes the mean
//!   of those neighbours' positions; all positions of a round are assigned together, so the
//!   result does not depend on node order. When a round makes no progress, every node left
//!   (a component with no given coordinate at all) takes the mean of all *given* positions.
//!   "Mean" is the spherical centroid (mean of unit vectors), which equals the arithmetic
//!   mean of latitudes and longitudes to within metres at these scales but stays correct
//!   across the antimeridian. Every imputed node is listed in the report.
//! * **Edges → links.** The graph is treated as undirected whatever `edgedefault` says (a
//!   directed file is noted). Self-loops are dropped (listed in the report). Parallel edges
//!   between the same pair of nodes (either direction) are merged into one link, placed at
//!   the first edge's position and oriented like it; the number merged is reported. Link
//!   bandwidth is `LinkSpeedRaw` (bits/s, rounded to whole bits/s) when present; for merged
//!   edges the known bandwidths are summed (when only some of the parallel edges give one,
//!   the sum of the known ones is used and the link is noted); with none known the link has
//!   no bandwidth (unlimited in the model). An edge naming a node id that does not exist is
//!   an error.
//! * **Latency.** Each link's one-way delay is `LatencyModel::default().link_delay(d)` where
//!   `d` is the great-circle distance between the endpoints' (given or imputed) positions:
//!   5 µs/km plus 0.1 ms per hop (see `zonal_model::geo`). The infrastructure's
//!   `latency_model` is the default one. Links cost nothing per GB.
//! * **Data centres.** [`GraphmlOptions::datacenters`] decides which zones get hosts; the
//!   others are transit zones (no hosts). `TopDegree(k)` takes the `k` nodes of highest
//!   degree, counted on the merged links without self-loops, ties broken by the smaller
//!   GraphML node id (numerically when both ids are integers, integer ids before others,
//!   otherwise as strings). The default, `TopDegree(20)`, follows the INPUT paper (20
//!   data-centre nodes out of 110 on Interoute). `Named` accepts zone names (the final, unique
//!   ones, or labels that become them: `London` for `london`) and GraphML ids, zone names first; a name matching neither is an error. Each data-centre zone gets one host, a copy of
//!   [`GraphmlOptions::host`] named `<zone>-h0`.
//! * Zone names are the node labels as names (`zonal_model::names::sanitize`: `New York` →
//!   `new-york`). The infrastructure is named after the file stem (`interoute`); it has no domain, no
//!   prices and no measured latencies. Graph-level `<data>`, ports, nested graphs and
//!   `<hyperedge>` elements are ignored.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use zonal_model::{Bandwidth, Host, Infrastructure, LatencyModel, Link, Location, Money, Zone};

use super::text::{centroid, error, fmt_location, host_template, named_host, stem, unique_names};
use super::{ImportError, ImportReport};

/// Which topology nodes become data centres (zones with hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatacenterRule {
    /// No data centres: every zone is transit.
    None,
    /// Every node is a data centre.
    All,
    /// The `k` nodes of highest degree (ties: smaller GraphML id first).
    TopDegree(usize),
    /// The nodes with these zone names or GraphML ids.
    Named(Vec<String>),
}

impl Default for DatacenterRule {
    /// `TopDegree(20)`, as in the INPUT paper's Interoute evaluation.
    fn default() -> Self {
        DatacenterRule::TopDegree(20)
    }
}

/// Options of [`import_graphml`].
#[derive(Debug, Clone, PartialEq)]
pub struct GraphmlOptions {
    pub datacenters: DatacenterRule,
    /// Template of the single host given to each data-centre zone (renamed `<zone>-h0`).
    pub host: Host,
}

impl Default for GraphmlOptions {
    fn default() -> Self {
        GraphmlOptions { datacenters: DatacenterRule::default(), host: default_host() }
    }
}

/// The default data-centre host: cpu 32, memory 128Gi, disk 2Ti, power 100 W idle / 300 W
/// max, available.
pub fn default_host() -> Host {
    host_template(32, 128, 2048, 100.0, 300.0)
}

/// One `<node>` as read.
struct NodeIn {
    id: String,
    label: Option<String>,
    location: Option<Location>,
    country: Option<String>,
    internal: Option<String>,
    hyperedge: Option<String>,
}

/// A merged link being built.
struct LinkAcc {
    a: usize,
    b: usize,
    edges: usize,
    bandwidth_sum: u64,
    bandwidth_known: usize,
}

/// Reads a Topology Zoo GraphML file; see the module documentation for the rules.
pub fn import_graphml(
    text: &str,
    file: &str,
    options: &GraphmlOptions,
) -> Result<(Infrastructure, ImportReport), ImportError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| {
        let p = e.pos();
        error(file, Some(p.row as usize), Some(p.col as usize), format!("expected well-formed XML: {e}"))
    })?;
    let at = |node: roxmltree::Node, message: String| {
        let p = doc.text_pos_at(node.range().start);
        error(file, Some(p.row as usize), Some(p.col as usize), message)
    };
    let mut report = ImportReport::default();

    let root = doc.root_element();
    if root.tag_name().name() != "graphml" {
        return Err(at(root, format!("expected a <graphml> root element, found <{}>", root.tag_name().name())));
    }
    // Key id → attribute name.
    let mut keys: HashMap<&str, &str> = HashMap::new();
    for key in root.children().filter(|n| n.has_tag_name_local("key")) {
        let id = key.attribute("id").ok_or_else(|| at(key, "expected an id attribute on <key>".into()))?;
        let name = key.attribute("attr.name").unwrap_or(id);
        keys.insert(id, name);
    }
    let graph = root
        .children()
        .find(|n| n.has_tag_name_local("graph"))
        .ok_or_else(|| at(root, "expected a <graph> element inside <graphml>".into()))?;
    if root.children().filter(|n| n.has_tag_name_local("graph")).count() > 1 {
        report.notes.push("the file holds several <graph> elements; only the first was read".into());
    }
    if graph.attribute("edgedefault") == Some("directed") {
        report.notes.push("edgedefault is \"directed\"; edges were read as undirected links".into());
    }

    // Reads the declared <data> children of an element: attribute name → (text, element).
    let data_of =
        |element: roxmltree::Node<'_, '_>| -> Result<BTreeMap<String, (String, roxmltree::NodeId)>, ImportError> {
            let mut out = BTreeMap::new();
            for d in element.children().filter(|n| n.has_tag_name_local("data")) {
                let key = d.attribute("key").ok_or_else(|| at(d, "expected a key attribute on <data>".into()))?;
                let name = keys
                    .get(key)
                    .ok_or_else(|| at(d, format!("expected a key declared by a <key> element, found key {key:?}")))?;
                out.insert(name.to_string(), (d.text().unwrap_or("").trim().to_string(), d.id()));
            }
            Ok(out)
        };
    let node_at = |id: roxmltree::NodeId| doc.get_node(id).unwrap_or(root);
    let number =
        |data: &BTreeMap<String, (String, roxmltree::NodeId)>, name: &str| -> Result<Option<f64>, ImportError> {
            match data.get(name) {
                None => Ok(None),
                Some((t, id)) => match t.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(Some(v)),
                    _ => Err(at(node_at(*id), format!("expected {name} as a decimal number, found {t:?}"))),
                },
            }
        };

    // Nodes.
    let mut nodes: Vec<NodeIn> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for n in graph.children().filter(|n| n.has_tag_name_local("node")) {
        let id = n.attribute("id").ok_or_else(|| at(n, "expected an id attribute on <node>".into()))?.to_string();
        if index.contains_key(&id) {
            return Err(at(n, format!("expected unique node ids, found id {id:?} a second time")));
        }
        let data = data_of(n)?;
        let (lat, lon) = (number(&data, "Latitude")?, number(&data, "Longitude")?);
        let location = match (lat, lon) {
            (Some(la), Some(lo)) => Some(Location::new(la, lo).ok_or_else(|| {
                at(n, format!("expected Latitude in [-90, 90] and Longitude in [-180, 180], found ({la}, {lo})"))
            })?),
            (None, None) => None,
            _ => {
                report.notes.push(format!("node {id} has only one of Latitude/Longitude; its position is imputed"));
                None
            }
        };
        let text = |name: &str| data.get(name).map(|(t, _)| t.clone()).filter(|t| !t.is_empty());
        index.insert(id.clone(), nodes.len());
        nodes.push(NodeIn {
            id,
            label: text("label").filter(|l| l != "None"),
            location,
            country: text("Country"),
            internal: text("Internal"),
            hyperedge: text("hyperedge"),
        });
    }
    if nodes.is_empty() {
        return Err(at(graph, "expected at least one <node> in the graph".into()));
    }

    // Edges.
    let mut links: Vec<LinkAcc> = Vec::new();
    let mut pair_index: HashMap<(usize, usize), usize> = HashMap::new();
    let mut self_loops: Vec<usize> = Vec::new();
    let mut edge_count = 0usize;
    for e in graph.children().filter(|n| n.has_tag_name_local("edge")) {
        edge_count += 1;
        let end = |attr: &str| -> Result<usize, ImportError> {
            let v = e.attribute(attr).ok_or_else(|| at(e, format!("expected a {attr} attribute on <edge>")))?;
            index.get(v).copied().ok_or_else(|| at(e, format!("expected the edge {attr} to be a node id, found {v:?}")))
        };
        let (a, b) = (end("source")?, end("target")?);
        let data = data_of(e)?;
        let bandwidth = match number(&data, "LinkSpeedRaw")? {
            Some(v) if v >= 0.0 => Some(v.round() as u64),
            Some(v) => {
                let id = data.get("LinkSpeedRaw").map(|(_, id)| *id);
                return Err(at(id.map_or(e, node_at), format!("expected LinkSpeedRaw ≥ 0 bits/s, found {v}")));
            }
            None => None,
        };
        if a == b {
            self_loops.push(a);
            continue;
        }
        let key = (a.min(b), a.max(b));
        let li = *pair_index.entry(key).or_insert_with(|| {
            links.push(LinkAcc { a, b, edges: 0, bandwidth_sum: 0, bandwidth_known: 0 });
            links.len() - 1
        });
        let link = &mut links[li];
        link.edges += 1;
        if let Some(bw) = bandwidth {
            link.bandwidth_sum = link.bandwidth_sum.saturating_add(bw);
            link.bandwidth_known += 1;
        }
    }

    // Names.
    let candidates: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| match &n.label {
            Some(l) => vec![l.clone(), format!("{l}-{}", n.id)],
            None if n.hyperedge.as_deref() == Some("1") => vec![format!("hyperedge-{}", n.id)],
            None => vec![format!("node-{}", n.id)],
        })
        .collect();
    let names = unique_names(&candidates);

    // Adjacency and degree on the merged links.
    let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for l in &links {
        neighbours[l.a].push(l.b);
        neighbours[l.b].push(l.a);
    }

    // Positions, imputing the missing ones.
    let given: Vec<Location> = nodes.iter().filter_map(|n| n.location).collect();
    let mut position: Vec<Option<Location>> = nodes.iter().map(|n| n.location).collect();
    let describe = |i: usize| format!("{:?} (node {})", names[i], nodes[i].id);
    loop {
        let round: Vec<(usize, Location, usize)> = (0..nodes.len())
            .filter(|&i| position[i].is_none())
            .filter_map(|i| {
                let known: Vec<Location> = neighbours[i].iter().filter_map(|&j| position[j]).collect();
                centroid(known.iter().copied()).map(|c| (i, c, known.len()))
            })
            .collect();
        if round.is_empty() {
            break;
        }
        for (i, c, k) in round {
            position[i] = Some(c);
            report.notes.push(format!(
                "imputed the position of {}: mean of {k} positioned neighbour(s) → {}",
                describe(i),
                fmt_location(&c)
            ));
        }
    }
    if position.iter().any(Option::is_none) {
        let Some(mean) = centroid(given.iter().copied()) else {
            return Err(error(
                file,
                None,
                None,
                "expected at least one node with Latitude and Longitude, found none: positions cannot be imputed",
            ));
        };
        for (i, p) in position.iter_mut().enumerate() {
            if p.is_none() {
                *p = Some(mean);
                report.notes.push(format!(
                    "imputed the position of {}: no positioned neighbour, mean of all {} given positions → {}",
                    describe(i),
                    given.len(),
                    fmt_location(&mean)
                ));
            }
        }
    }

    // Data centres.
    let degree: Vec<usize> = neighbours.iter().map(Vec::len).collect();
    let mut is_dc = vec![false; nodes.len()];
    match &options.datacenters {
        DatacenterRule::None => {}
        DatacenterRule::All => is_dc.iter_mut().for_each(|d| *d = true),
        DatacenterRule::TopDegree(k) => {
            let mut order: Vec<usize> = (0..nodes.len()).collect();
            order.sort_by(|&x, &y| degree[y].cmp(&degree[x]).then_with(|| compare_ids(&nodes[x].id, &nodes[y].id)));
            for &i in order.iter().take(*k) {
                is_dc[i] = true;
            }
            if *k > nodes.len() {
                report.notes.push(format!("TopDegree({k}) asks for more nodes than the {} there are", nodes.len()));
            }
        }
        DatacenterRule::Named(wanted) => {
            for w in wanted {
                let as_name = zonal_model::names::sanitize(w);
                let i = names.iter().position(|n| n == w || *n == as_name).or_else(|| index.get(w.as_str()).copied()).ok_or_else(|| {
                    error(
                        file,
                        None,
                        None,
                        format!("expected the data centre {w:?} (from the import options) to be a zone name or GraphML node id of this topology"),
                    )
                })?;
                is_dc[i] = true;
            }
        }
    }

    // Documents.
    let model = LatencyModel::default();
    let imputed: Vec<bool> = nodes.iter().map(|n| n.location.is_none()).collect();
    let zones: Vec<Zone> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut labels = BTreeMap::new();
            labels.insert("graphml_id".to_string(), n.id.clone());
            if let Some(c) = &n.country {
                labels.insert("country".to_string(), c.clone());
            }
            if let Some(v) = &n.internal {
                labels.insert("internal".to_string(), v.clone());
            }
            if let Some(v) = &n.hyperedge {
                labels.insert("hyperedge".to_string(), v.clone());
            }
            if imputed[i] {
                labels.insert("location_imputed".to_string(), "true".to_string());
            }
            let hosts = if is_dc[i] { vec![named_host(&options.host, format!("{}-h0", names[i]))] } else { Vec::new() };
            Zone { name: names[i].clone(), location: position[i], tier: None, price: Default::default(), hosts, labels }
        })
        .collect();
    let mut partial_bandwidth = Vec::new();
    let out_links: Vec<Link> = links
        .iter()
        .map(|l| {
            let km = match (position[l.a], position[l.b]) {
                (Some(p), Some(q)) => p.distance_km(&q),
                _ => 0.0,
            };
            if l.bandwidth_known > 0 && l.bandwidth_known < l.edges {
                partial_bandwidth.push(format!("{}–{}", names[l.a], names[l.b]));
            }
            Link {
                from: names[l.a].clone(),
                to: names[l.b].clone(),
                latency: Some(model.link_delay(km)),
                bandwidth: (l.bandwidth_known > 0).then_some(Bandwidth(l.bandwidth_sum)),
                cost_per_gb: Money::default(),
            }
        })
        .collect();

    // Report.
    let merged: usize = links.iter().map(|l| l.edges - 1).sum();
    let pairs_merged = links.iter().filter(|l| l.edges > 1).count();
    let dc_count = is_dc.iter().filter(|d| **d).count();
    let imputed_count = imputed.iter().filter(|d| **d).count();
    let mut summary = vec![format!(
        "{} nodes → {} zones ({dc_count} data centres, {} transit); {edge_count} edges → {} distinct node pairs ({} self-loops) → {} links; {imputed_count} positions imputed",
        nodes.len(),
        zones.len(),
        zones.len() - dc_count,
        links.len() + dedup_count(&self_loops),
        dedup_count(&self_loops),
        out_links.len()
    )];
    if merged > 0 {
        summary.push(format!(
            "merged {merged} parallel edge(s) into existing links ({pairs_merged} node pair(s) had more than one edge)"
        ));
    }
    if !self_loops.is_empty() {
        let list: Vec<String> = self_loops.iter().map(|&i| describe(i)).collect();
        summary.push(format!("dropped {} self-loop edge(s): {}", self_loops.len(), list.join(", ")));
    }
    if !partial_bandwidth.is_empty() {
        summary.push(format!(
            "bandwidth known on only some of the parallel edges of {} link(s); the known ones were summed: {}",
            partial_bandwidth.len(),
            partial_bandwidth.join(", ")
        ));
    }
    let dc_names: Vec<&str> = (0..nodes.len()).filter(|&i| is_dc[i]).map(|i| names[i].as_str()).collect();
    summary.push(format!("data centres ({:?}): {}", options.datacenters, dc_names.join(", ")));
    summary.append(&mut report.notes);
    report.notes = summary;

    let infra = Infrastructure {
        name: stem(file),
        domain: None,
        zones,
        links: out_links,
        latencies: Vec::new(),
        latency_model: model,
        proximity_classes: BTreeMap::new(),
    };
    Ok((infra, report))
}

/// Number of distinct values in `v`.
fn dedup_count(v: &[usize]) -> usize {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.dedup();
    s.len()
}

/// Orders GraphML ids: integers numerically and before other ids, others as strings.
fn compare_ids(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// `has_tag_name` ignoring the namespace.
trait LocalName {
    fn has_tag_name_local(&self, name: &str) -> bool;
}

impl LocalName for roxmltree::Node<'_, '_> {
    fn has_tag_name_local(&self, name: &str) -> bool {
        self.is_element() && self.tag_name().name() == name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::shared_data_file;

    const HEAD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key attr.name="label" attr.type="string" for="node" id="d1" />
  <key attr.name="Latitude" attr.type="double" for="node" id="d2" />
  <key attr.name="Longitude" attr.type="double" for="node" id="d3" />
  <key attr.name="Country" attr.type="string" for="node" id="d4" />
  <key attr.name="hyperedge" attr.type="int" for="node" id="d5" />
  <key attr.name="LinkSpeedRaw" attr.type="double" for="edge" id="d6" />
  <graph edgedefault="undirected">
"#;

    fn node(id: &str, label: &str, pos: Option<(f64, f64)>) -> String {
        let coords =
            pos.map_or(String::new(), |(la, lo)| format!(r#"<data key="d2">{la}</data><data key="d3">{lo}</data>"#));
        format!(r#"<node id="{id}"><data key="d1">{label}</data>{coords}</node>"#)
    }

    fn doc(body: &str) -> String {
        format!("{HEAD}{body}\n  </graph>\n</graphml>\n")
    }

    fn sample() -> String {
        let mut b = String::new();
        b += &node("0", "Paris", Some((48.8566, 2.3522)));
        b += &node("1", "London", Some((51.5074, -0.1278)));
        b += &node("2", "Paris", Some((48.85, 2.35)));
        b += &node("3", "Nowhere", None);
        b += r#"<node id="4"><data key="d5">1</data><data key="d1">None</data></node>"#;
        b += r#"<edge source="0" target="1"><data key="d6">1000000000.0</data></edge>"#;
        b += r#"<edge source="1" target="0"><data key="d6">2500000000.0</data></edge>"#;
        b += r#"<edge source="1" target="1"></edge>"#;
        b += r#"<edge source="0" target="3"></edge>"#;
        b += r#"<edge source="1" target="3"></edge>"#;
        b += r#"<edge source="2" target="0"></edge>"#;
        doc(&b)
    }

    #[test]
    fn converts_a_small_topology() {
        let opts = GraphmlOptions { datacenters: DatacenterRule::TopDegree(2), ..Default::default() };
        let (infra, report) = import_graphml(&sample(), "tiny.graphml", &opts).unwrap();
        assert_eq!(infra.name, "tiny");
        let names: Vec<&str> = infra.zones.iter().map(|z| z.name.as_str()).collect();
        assert_eq!(names, ["paris-0", "london", "paris-2", "nowhere", "hyperedge-4"]);
        assert_eq!(infra.zones[0].labels["graphml_id"], "0");
        assert_eq!(infra.links.len(), 4, "parallel edges merged, self-loop dropped");
        let paris_london = &infra.links[0];
        assert_eq!((paris_london.from.as_str(), paris_london.to.as_str()), ("paris-0", "london"));
        assert_eq!(paris_london.bandwidth, Some(Bandwidth(3_500_000_000)));
        let d = infra.zones[0].location.unwrap().distance_km(&infra.zones[1].location.unwrap());
        let expected = d * 0.005 + 0.1;
        assert!((paris_london.latency.unwrap().as_millis() - expected).abs() < 1e-9);
        assert_eq!(infra.links[1].bandwidth, None);
        // Nowhere sits between Paris-0 and London; the isolated hyperedge at the mean of all.
        let nowhere = infra.zones[3].location.unwrap();
        assert!((nowhere.lat - (48.8566 + 51.5074) / 2.0).abs() < 0.05, "{nowhere:?}");
        assert_eq!(infra.zones[3].labels["location_imputed"], "true");
        assert!(infra.zones[4].location.is_some());
        assert_eq!(report.notes.iter().filter(|n| n.starts_with("imputed")).count(), 2);
        assert!(report.notes.iter().any(|n| n.contains("merged 1 parallel edge")));
        assert!(report.notes.iter().any(|n| n.contains("dropped 1 self-loop")));
        // Degrees: Paris-0 3, London 2, Nowhere 2, Paris-2 1 → London wins the tie (id 1 < 3).
        let dcs: Vec<&str> = infra.zones.iter().filter(|z| !z.is_transit()).map(|z| z.name.as_str()).collect();
        assert_eq!(dcs, ["paris-0", "london"]);
        assert_eq!(infra.zones[0].hosts[0].name, "paris-0-h0");
        assert_eq!(infra.zones[0].hosts[0].capacity.get("cpu"), 32_000);
    }

    #[test]
    fn datacenter_rules() {
        let run = |rule| {
            let opts = GraphmlOptions { datacenters: rule, ..Default::default() };
            import_graphml(&sample(), "t.graphml", &opts).map(|(i, _)| i.host_count())
        };
        assert_eq!(run(DatacenterRule::None), Ok(0));
        assert_eq!(run(DatacenterRule::All), Ok(5));
        assert_eq!(run(DatacenterRule::Named(vec!["London".into(), "3".into()])), Ok(2));
        let e = run(DatacenterRule::Named(vec!["Paris".into()])).unwrap_err();
        assert!(e.message.contains("\"Paris\""), "{e}");
    }

    #[test]
    fn errors_are_located() {
        let bad = doc(&format!("{}\n<edge source=\"0\" target=\"9\"/>", node("0", "A", Some((1.0, 2.0)))));
        let e = import_graphml(&bad, "bad.graphml", &GraphmlOptions::default()).unwrap_err();
        assert_eq!((e.file.as_str(), e.line, e.column), ("bad.graphml", Some(11), Some(1)), "{e}");
        assert!(e.message.contains("\"9\""), "{e}");

        let bad = doc(&node("0", "A", Some((1.0, 1.0))).replace(">1<", ">north<"));
        let e = import_graphml(&bad, "bad.graphml", &GraphmlOptions::default()).unwrap_err();
        assert_eq!(e.line, Some(10));
        assert!(e.message.contains("Latitude") && e.message.contains("north"), "{e}");

        let bad = doc(&node("0", "A", Some((95.0, 1.0))));
        let e = import_graphml(&bad, "bad.graphml", &GraphmlOptions::default()).unwrap_err();
        assert!(e.message.contains("[-90, 90]"), "{e}");

        let e = import_graphml("<graphml><graph><node id='a'>", "x.graphml", &GraphmlOptions::default()).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.column.is_some() && e.message.contains("XML"), "{e}");

        let bad = doc(r#"<node id="0"><data key="d99">x</data></node>"#);
        let e = import_graphml(&bad, "bad.graphml", &GraphmlOptions::default()).unwrap_err();
        assert!(e.message.contains("d99"), "{e}");
    }

    fn real(file: &str) -> (Infrastructure, ImportReport) {
        let (path, text) = shared_data_file(&format!("topology-zoo/{file}"));
        import_graphml(&text, &path, &GraphmlOptions::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn imputed(infra: &Infrastructure) -> usize {
        infra.zones.iter().filter(|z| z.labels.contains_key("location_imputed")).count()
    }

    #[test]
    fn interoute_matches_the_acceptance_counts() {
        let (infra, report) = real("Interoute.graphml");
        eprintln!("Interoute report:\n  {}", report.notes.join("\n  "));
        assert_eq!(infra.zones.len(), 110);
        assert_eq!(infra.links.len(), 146);
        assert_eq!(imputed(&infra), 14);
        assert_eq!(report.notes.iter().filter(|n| n.starts_with("imputed")).count(), 14);
        assert!(
            report.notes[0].contains("158 edges → 148 distinct node pairs (2 self-loops) → 146 links"),
            "{}",
            report.notes[0]
        );
        assert!(report.notes.iter().any(|n| n.starts_with("dropped 2 self-loop")));
        assert_eq!(infra.zones.iter().filter(|z| !z.is_transit()).count(), 20);
        assert_eq!(infra.host_count(), 20);
        let mut names: Vec<&str> = infra.zones.iter().map(|z| z.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 110, "zone names are unique");
        assert!(infra.zones.iter().all(|z| z.location.is_some()));
        assert!(infra.links.iter().all(|l| l.latency.is_some_and(|d| d.as_millis() >= 0.1)));
    }

    #[test]
    fn all_topology_zoo_files_import() {
        // (file, nodes, links, imputed)
        for (file, zones, links, imp) in [
            ("Interoute.graphml", 110, 146, 14),
            ("Cogentco.graphml", 197, 243, 11),
            ("GtsCe.graphml", 149, 193, 8),
            ("Geant2012.graphml", 40, 61, 3),
            ("Kdl.graphml", 754, 895, 28),
        ] {
            let (infra, report) = real(file);
            eprintln!("{file}: {}", report.notes[0]);
            assert_eq!((infra.zones.len(), infra.links.len(), imputed(&infra)), (zones, links, imp), "{file}");
            assert_eq!(infra.host_count(), 20, "{file}");
        }
        let (geant, _) = real("Geant2012.graphml");
        assert_eq!(geant.links.iter().filter(|l| l.bandwidth.is_some()).count(), 39);
    }
}
