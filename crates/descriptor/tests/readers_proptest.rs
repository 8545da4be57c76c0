//! Property-based runs of every descriptor reader (issue 14): native YAML, TOSCA, manifests,
//! CSAR (zip), GraphML and the CSV/text dataset importers, each fed arbitrary input and the
//! repository's own valid inputs mutated at random (bytes deleted, duplicated, replaced,
//! lines swapped, fragments spliced in). Whatever the input:
//!
//! * no reader panics;
//! * no YAML tree passes the reader's limits (depth, node count), aliases included;
//! * every error carries a location: YAML and TOSCA diagnostics a `line:column` (and
//!   manifests, cross-checks included), importer errors their file (and a line whenever the
//!   problem is in one), CSAR errors the archive (and the entry).
//!
//! Each property runs a bounded, seeded number of cases (a fixed seed: the same cases on every
//! run), so the whole file takes seconds in a debug build; the `fuzz/` cargo-fuzz target
//! explores the YAML entry point for longer (not in CI: it needs nightly).

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use zonal_descriptor::import::{
    import_dc_nodes, import_eua_sites, import_eua_users, import_graphml, import_manydc, import_mooc,
    import_wondernetwork, EuaOptions, GeoVideoOptions, GraphmlOptions, ImportError, MoocOptions,
};
use zonal_descriptor::limits::{MAX_YAML_DEPTH, MAX_YAML_NODES};
use zonal_descriptor::yaml::{self, Node, NodeKind};
use zonal_descriptor::{parse_manifest, read_yaml_str, tosca};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, rng_seed: RngSeed::Fixed(20261206), failure_persistence: None, ..ProptestConfig::default() }
}

fn example(name: &str) -> String {
    let path = zonal_testdata::examples().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One random edit of a text.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Duplicate(usize, usize),
    Replace(usize, String),
    Insert(usize, String),
    SwapLines(usize, usize),
}

const SPLICES: &[&str] = &[
    "&a ",
    "*a",
    "<<: *a\n",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "\n  ",
    "\t",
    "'",
    "\"",
    "#",
    "---\n",
    "...\n",
    "!!str ",
    "~",
    "null",
    "-1",
    "4294967296",
    "1e999",
    ".nan",
    ".inf",
    "''",
    "..",
    "Web",
    "a/b",
    "\u{0}",
    "é",
    "\u{feff}",
    "zz_unknown: 1\n",
    "name: x\n",
    "kind: Service\n",
    "run: 'a b\n",
    "run: [a, \"b c\"]\n",
    "per_instance: 0\n",
    "lat: 999\n",
    "get_input: x",
    "type: tosca.nodes.Compute\n",
    "requirements: [{host: nowhere}]\n",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), 0usize..80).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        (any::<usize>(), prop::sample::select(SPLICES)).prop_map(|(a, s)| Edit::Replace(a, s.to_string())),
        (any::<usize>(), prop::sample::select(SPLICES)).prop_map(|(a, s)| Edit::Insert(a, s.to_string())),
        (any::<usize>(), "\\PC{0,12}").prop_map(|(a, s)| Edit::Insert(a, s)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

/// Applies `edits` to `text` (positions taken modulo its length, on char boundaries).
fn apply(text: &str, edits: &[Edit]) -> String {
    let mut s = text.to_string();
    let boundary = |s: &str, i: usize| -> usize {
        if s.is_empty() {
            return 0;
        }
        let mut i = i % (s.len() + 1);
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    for e in edits {
        match e {
            Edit::Delete(a, n) => {
                let a = boundary(&s, *a);
                let b = boundary(&s, a.saturating_add(*n).min(s.len()));
                if b > a {
                    s.replace_range(a..b, "");
                }
            }
            Edit::Duplicate(a, n) => {
                let a = boundary(&s, *a);
                let b = boundary(&s, a.saturating_add(*n).min(s.len()));
                let piece = s[a..b.max(a)].to_string();
                s.insert_str(b.max(a), &piece);
            }
            Edit::Replace(a, with) => {
                let a = boundary(&s, *a);
                let b = boundary(&s, (a + with.len()).min(s.len()));
                s.replace_range(a..b.max(a), with);
            }
            Edit::Insert(a, with) => {
                let a = boundary(&s, *a);
                s.insert_str(a, with);
            }
            Edit::SwapLines(a, b) => {
                let mut lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let (a, b) = (a % lines.len(), b % lines.len());
                    lines.swap(a, b);
                }
                s = lines.join("\n") + "\n";
            }
        }
    }
    s
}

/// Depth and node count of a YAML tree.
fn measure(node: &Node, depth: usize, out: &mut (usize, usize)) {
    out.0 = out.0.max(depth);
    out.1 += 1;
    match &node.kind {
        NodeKind::Seq(items) => items.iter().for_each(|n| measure(n, depth + 1, out)),
        NodeKind::Map(entries) => entries.iter().for_each(|(k, v)| {
            measure(k, depth + 1, out);
            measure(v, depth + 1, out);
        }),
        _ => {}
    }
}

/// The YAML tree of `text` stays within the limits, and every YAML-level error is located.
fn yaml_within_limits(text: &str) -> Result<(), TestCaseError> {
    let docs = match yaml::parse(text) {
        Ok(d) => d,
        Err((d, e)) => {
            prop_assert!(e.span.line >= 1 && e.span.column >= 1, "unlocated: {e:?}");
            d
        }
    };
    let mut m = (0, 0);
    for d in &docs {
        measure(d, 1, &mut m);
    }
    prop_assert!(m.0 <= MAX_YAML_DEPTH + 1, "depth {} past the limit", m.0);
    prop_assert!(m.1 <= MAX_YAML_NODES, "{} nodes past the limit", m.1);
    Ok(())
}

/// Reads `text` as a file and as a manifest: no panic, every diagnostic located.
fn read_everything(text: &str) -> Result<(), TestCaseError> {
    yaml_within_limits(text)?;
    let mut loaded = read_yaml_str("fuzz.yaml", text);
    if loaded.is_valid() {
        loaded.cross_check();
    }
    for d in &loaded.diagnostics {
        prop_assert!(d.span.is_some(), "a diagnostic without a line and column: {d}");
        let _ = d.to_string();
    }
    if let Err(e) = parse_manifest("manifest", text) {
        for d in &e.diagnostics {
            prop_assert!(d.span.is_some(), "a manifest diagnostic without a line and column: {d}");
        }
        prop_assert!(!e.summary.is_empty());
    }
    Ok(())
}

/// An importer's error names its file, and a line unless it is about the file as a whole.
fn located(e: &ImportError, file: &str) -> Result<(), TestCaseError> {
    prop_assert!(e.file.ends_with(file) || e.file.contains(file), "error names {:?}, not {file}: {e}", e.file);
    prop_assert!(!e.message.is_empty());
    let whole_file = ["found none", "expected at least one"].iter().any(|w| e.message.contains(w));
    prop_assert!(e.line.is_some() || whole_file, "an error without a line: {e}");
    Ok(())
}

const GRAPHML: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key attr.name="label" attr.type="string" for="node" id="d1" />
  <key attr.name="Latitude" attr.type="double" for="node" id="d2" />
  <key attr.name="Longitude" attr.type="double" for="node" id="d3" />
  <key attr.name="LinkSpeedRaw" attr.type="double" for="edge" id="d6" />
  <graph edgedefault="undirected">
    <node id="0"><data key="d1">Paris</data><data key="d2">48.85</data><data key="d3">2.35</data></node>
    <node id="1"><data key="d1">London</data><data key="d2">51.5</data><data key="d3">-0.12</data></node>
    <node id="2"><data key="d1">Nowhere</data></node>
    <edge source="0" target="1"><data key="d6">1000000000</data></edge>
    <edge source="1" target="2" />
  </graph>
</graphml>
"#;

const SERVERS: &str = "id,name,title,location,state,country,state_abbv,continent,latitude,longitude\n\
1,Melbourne,Melbourne,Melbourne,Victoria,Australia,VIC,4,-37.78,144.96\n\
2,Toronto,Toronto,Toronto,Ontario,Canada,ON,1,43.64,-79.40\n\
5,Paris,Paris,Paris,,France,,3,48.85,2.35\n";
const PINGS: &str = "source,destination,min,avg,max,mdev\n1,2,200,210,220,1\n2,5,1,80.5,1,1\n5,1,1,100,1,1\n";
const DC_NODES: &str = "% DataCenterMapID\tLatitude\tLongitude\tInfoType\tMappedFlag\tArea\tProvider\tCountry code\tSubcontinental Zone code\tCity ID\tCity name\tCity Latitude\tCity Longitude\tInformation URL\n\
1\t53.48\t-2.24\t1\tYes\tN/A\tN/A\tGB\tEUW\t100\tManchester\t53.48\t-2.24\thttp://x\n\
2\t42.99\t-71.45\t1\tYes\tN/A\tN/A\tUS\tNAN\t200\tManchester\t42.99\t-71.45\thttp://x\n";
const MANYDC: &str = "%Lat Lon Zone InCost OutCost % Placename\n37.33, -121.89, NAN, 0.0, 0.02 % San Jose\n53.34, -6.26, EUW, 0.0, 0.02 % Dublin\n";
const MOOC: &str = "31.22222, 121.45806, 3712.505, ASP % Shanghai\n52.48, -1.89, 12.4, EUW % Birmingham\n";
const SITES: &str =
    "SITE_ID,LATITUDE,LONGITUDE,NAME,STATE,LICENSING_AREA_ID,POSTCODE,SITE_PRECISION,ELEVATION,HCIS_L2\r\n\
10003026,-37.81517,144.97476,Spring and Flinders ucell,VIC,2,,Within 10 meters,,KX3P\r\n\
10003027,-37.81524,144.95256,\"Optus Minicell, Spencer St\",VIC,2,,Within 10 meters,,KX3P\r\n";
const USERS: &str = "Latitude,Longitude\r\n-37.8152,144.9748\r\n-37.8150,144.9746\r\n";

/// A zip archive of `entries`.
fn zip_of(entries: &[(String, String)]) -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        for (name, body) in entries {
            if w.start_file(name.as_str(), opts).is_ok() {
                let _ = w.write_all(body.as_bytes());
            }
        }
        let _ = w.finish();
    }
    buf.into_inner()
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn native_examples_mutated(ex in prop::sample::select(&["web.yaml", "epg.yaml", "input-chain.yaml", "echo-bench.yaml", "demand.yaml", "knowledge-base.yaml", "infrastructure.yaml"][..]), edits in prop::collection::vec(edit(), 1..6)) {
        read_everything(&apply(&example(ex), &edits))?;
    }

    #[test]
    fn tosca_examples_mutated(ex in prop::sample::select(&["tosca/fusion-epg.yaml", "tosca/opera-owncloud.yaml"][..]), edits in prop::collection::vec(edit(), 1..6)) {
        read_everything(&apply(&example(ex), &edits))?;
    }

    #[test]
    fn arbitrary_text(text in "\\PC{0,300}") {
        read_everything(&text)?;
    }

    #[test]
    fn yaml_shaped_noise(parts in prop::collection::vec(prop::sample::select(SPLICES), 0..40)) {
        read_everything(&parts.concat())?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Anchors and aliases combined at random never build more than the limits allow.
    #[test]
    fn aliases_never_pass_the_limits(levels in 1usize..12, width in 1usize..40, merges in 0usize..4) {
        let mut text = format!("a0: &a0 [{}]\n", vec!["x"; width].join(", "));
        for i in 1..levels {
            text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); width].join(", ")));
        }
        for i in 0..merges {
            text.push_str(&format!("m{i}: &m{i} {{k{i}: *a{}}}\nn{i}: {{<<: *m{i}}}\n", levels - 1));
        }
        yaml_within_limits(&text)?;
        let _ = read_yaml_str("aliases.yaml", &text);
    }

    #[test]
    fn csar_archives(entries in prop::collection::vec((prop::sample::select(&["TOSCA-Metadata/TOSCA.meta", "service.yaml", "types.yaml", "other/x.yml", "a.yaml", "../evil.yaml"][..]), prop::sample::select(&["Entry-Definitions: service.yaml\n", "Entry-Definitions: nowhere.yaml\n", "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n    web: {type: tosca.nodes.FusionService}\n", "node_types:\n  acme.X: {derived_from: tosca.nodes.FusionService}\n", "[", "a: &a [*a]\n", ""][..])), 0..6), garbage in prop::collection::vec(any::<u8>(), 0..64)) {
        let files: Vec<(String, String)> = entries.iter().map(|(n, b)| (n.to_string(), b.to_string())).collect();
        for bytes in [zip_of(&files), garbage.clone(), { let mut z = zip_of(&files); z.truncate(z.len() / 2); z }] {
            let loaded = tosca::read_csar("fuzz.csar", &bytes);
            for d in &loaded.diagnostics {
                prop_assert!(d.file.starts_with("fuzz.csar"), "a CSAR diagnostic that does not name the archive: {d}");
                let _ = d.to_string();
            }
        }
    }

    #[test]
    fn graphml_mutated(edits in prop::collection::vec(edit(), 0..6)) {
        let text = apply(GRAPHML, &edits);
        if let Err(e) = import_graphml(&text, "fuzz.graphml", &GraphmlOptions::default()) {
            located(&e, "fuzz.graphml")?;
        }
    }

    #[test]
    fn csv_importers_mutated(which in 0usize..6, edits in prop::collection::vec(edit(), 0..6)) {
        let file = ["servers.csv", "pings.csv", "dcNodes.csv", "manydc.out", "mooc.out", "site-x.csv"][which];
        let result = match which {
            0 => import_wondernetwork(&apply(SERVERS, &edits), "servers.csv", PINGS, "pings.csv").map(|_| ()),
            1 => import_wondernetwork(SERVERS, "servers.csv", &apply(PINGS, &edits), "pings.csv").map(|_| ()),
            2 => import_dc_nodes(&apply(DC_NODES, &edits), "dcNodes.csv", &GeoVideoOptions::default()).map(|_| ()),
            3 => import_manydc(&apply(MANYDC, &edits), "manydc.out", &GeoVideoOptions::default()).map(|_| ()),
            4 => import_mooc(&apply(MOOC, &edits), "mooc.out", &MoocOptions::default()).map(|_| ()),
            _ => import_eua_sites(&apply(SITES, &edits), "site-x.csv", &EuaOptions::default()).map(|_| ()),
        };
        if let Err(e) = result {
            located(&e, file)?;
        }
    }

    #[test]
    fn eua_users_mutated(edits in prop::collection::vec(edit(), 0..6)) {
        let sites = import_eua_sites(SITES, "site-x.csv", &EuaOptions::default()).map(|(i, _)| i);
        prop_assert!(sites.is_ok());
        if let Ok(sites) = sites {
            if let Err(e) = import_eua_users(&apply(USERS, &edits), "users-x.csv", &sites, &EuaOptions::default()) {
                located(&e, "users-x.csv")?;
            }
        }
    }
}
