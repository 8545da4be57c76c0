//! Every example descriptor validates, alone and together; native → model → native round
//! trips; TOSCA templates (and CSAR archives) convert into native YAML that validates.

use std::io::Write;
use std::path::PathBuf;

use zonal_descriptor::{load_paths, read_yaml_str, tosca, write_documents, Loaded};
use zonal_model::{Bundle, Document};

fn examples_dir() -> PathBuf {
    zonal_testdata::examples()
}

fn native_examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn assert_valid(loaded: &Loaded) {
    let msgs: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(loaded.is_valid(), "unexpected diagnostics:\n{}", msgs.join("\n"));
}

#[test]
fn every_example_validates_alone_and_together() {
    let files = native_examples();
    assert!(files.len() >= 5, "expected the five native examples, found {files:?}");
    for f in &files {
        assert_valid(&load_paths(std::slice::from_ref(f)));
    }
    let all = load_paths(&files);
    assert_valid(&all);
    let kinds: Vec<&str> = all.bundle.documents.iter().map(Document::kind).collect();
    for k in ["Infrastructure", "Service", "Demand"] {
        assert!(kinds.contains(&k), "examples lack a {k}");
    }
}

#[test]
fn native_round_trips_through_the_model() {
    let loaded = load_paths(&native_examples());
    assert_valid(&loaded);
    let text = write_documents(&loaded.bundle.documents);
    let again = read_yaml_str("round-trip.yaml", &text);
    assert_valid(&again);
    assert_eq!(again.bundle, loaded.bundle, "native → model → native → model changed the model:\n{text}");
    // And the written text is stable.
    assert_eq!(write_documents(&again.bundle.documents), text);
}

#[test]
fn example_infrastructure_is_three_edges_and_a_core() {
    let loaded = load_paths(&[examples_dir().join("infrastructure.yaml")]);
    let infra = loaded.bundle.infrastructure();
    let tiers: Vec<_> = infra.zones.iter().map(|z| z.tier.clone().unwrap_or_default()).collect();
    assert_eq!(tiers.iter().filter(|t| *t == "edge").count(), 3);
    assert_eq!(tiers.iter().filter(|t| *t == "core").count(), 1);
    assert!(infra.zones.iter().all(|z| z.location.is_some()));
}

fn convert_and_revalidate(loaded: &Loaded) -> Bundle {
    assert_valid(loaded);
    let text = write_documents(&loaded.bundle.documents);
    let native = read_yaml_str("converted.yaml", &text);
    assert_valid(&native);
    native.bundle
}

#[test]
fn fusion_epg_tosca_converts_to_valid_native_yaml() {
    let loaded = load_paths(&[examples_dir().join("tosca/fusion-epg.yaml")]);
    let bundle = convert_and_revalidate(&loaded);
    let epg = bundle.service("epg-tosca").expect("the service is named by metadata.template_name");
    assert_eq!(epg.entry.as_deref(), Some("myepg"));
    assert_eq!(epg.components.len(), 3);
    let main = epg.component("myepg").unwrap();
    assert_eq!(main.slots.per_instance, 50, "max_slots comes from the maxsessionslots input's default");
    assert_eq!(main.scaling.max_instances, 10);
    assert_eq!(main.resources.get("cpu"), 2000, "num_cpus comes from the cpus input");
    assert_eq!(main.resources.get("memory"), 4_000_000_000);
    assert_eq!(main.placement.requires.get("arch").map(String::as_str), Some("x86_64"));
    assert_eq!(epg.evaluator, Some(zonal_model::EvaluatorRef::Component { component: "myepgevaluator".into() }));
    assert_eq!(epg.binding, zonal_model::Binding::Late);
    assert_eq!(epg.channels.len(), 1);
    assert_eq!(epg.channels[0].max_latency.map(|d| d.as_millis()), Some(5.0));
    assert_eq!(epg.owner.as_deref(), Some("bell-labs"));
}

#[test]
fn opera_tagged_hosts_become_workload_tags() {
    let loaded = load_paths(&[examples_dir().join("tosca/opera-owncloud.yaml")]);
    let bundle = convert_and_revalidate(&loaded);
    let s = bundle.service("owncloud").unwrap();
    assert_eq!(s.component("database").unwrap().tag.as_deref(), Some("memory-intensive"));
    assert_eq!(s.component("frontend").unwrap().tag.as_deref(), Some("web-frontend"));
    assert!(s.component("database").unwrap().resources.is_empty());
}

/// FUSION's own draft layout: top-level node_templates, version 1_0_0, lower-case type
/// names, `AttachTo`, sizes without units — accepted, each leniency noted.
#[test]
fn fusion_draft_intent_is_accepted_with_notes() {
    let draft = "\
tosca_definitions_version: tosca_simple_yaml_1_0_0
inputs:
  maxsessionslots:
    type: integer
    default: 100
    constraints:
      - in_range: [ 50, 500 ]
node_templates:
  myEPG:
    type: tosca.nodes.FusionService
    properties:
      svc_scaling: {min_instances: 1, max_instances: 10}
      session_slots: {min_slots: 1, max_slots: { get_input: maxsessionslots }, initial_slots: 10}
    requirements:
      - host: my_server
  myEPGevaluator:
    type: tosca.nodes.fusionevaluator
    requirements:
      - host: my_server
      - DependsOn: myEPG
      - AttachTo: my_fusiondomain
  my_server:
    type: tosca.nodes.Compute
    properties: {disk_size: 10, num_cpus: 2, mem_size: 4, os_arch: x86_64}
  my_fusiondomain:
    type: tosca.nodes.FusionDomain
";
    let loaded = read_yaml_str("draft.yaml", draft);
    assert_valid(&loaded);
    let notes = loaded.notes.join("\n");
    assert!(notes.contains("tosca_simple_yaml_1_0"), "{notes}");
    assert!(notes.contains("top level"), "{notes}");
    assert!(notes.contains("no unit"), "{notes}");
    let Document::Service(s) = &loaded.bundle.documents[0] else { panic!("expected a service") };
    assert_eq!(s.component("myepg").unwrap().slots.per_instance, 100);
    assert_eq!(s.component("myepg").unwrap().resources.get("memory"), 4_000_000_000);
}

#[test]
fn really_wrong_tosca_is_rejected_with_locations() {
    let bad = "\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    slots:
      type: integer
      default: 20
      constraints:
        - in_range: [50, 500]
  node_templates:
    svc:
      type: tosca.nodes.FusionServise
    comp:
      type: tosca.nodes.FusionComponent
      properties:
        session_slots: {max_slots: {get_input: slotz}}
      requirements:
        - host: missing_server
";
    let loaded = read_yaml_str("bad.yaml", bad);
    let msgs: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
    let all = msgs.join("\n");
    assert!(all.contains("bad.yaml:6:16: topology_template.inputs.slots.default: input `slots` = 20 breaks its constraint `in_range: [50, 500]`"), "{all}");
    assert!(all.contains("bad.yaml:11:13: topology_template.node_templates.svc.type: unknown node type \"tosca.nodes.FusionServise\""), "{all}");
    assert!(all.contains("get_input names an undefined input `slotz`"), "{all}");
    assert!(all.contains("requirement `host` names \"missing_server\", which is not a node template"), "{all}");
    assert!(loaded.bundle.documents.is_empty(), "nothing from an invalid template is used");
}

fn csar(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in entries {
            zip.start_file(*name, opts).unwrap();
            zip.write_all(body.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }
    buf.into_inner()
}

#[test]
fn csar_archives_are_read_through_their_metadata() {
    let template = std::fs::read_to_string(examples_dir().join("tosca/fusion-epg.yaml")).unwrap();
    let types = "tosca_definitions_version: tosca_simple_yaml_1_3\nnode_types:\n  acme.EPG:\n    derived_from: tosca.nodes.FusionService\n";
    let custom = template.replace("type: tosca.nodes.FusionService", "type: acme.EPG");
    let bytes = csar(&[
        (
            "TOSCA-Metadata/TOSCA.meta",
            "TOSCA-Meta-File-Version: 1.0\nCSAR-Version: 1.1\nEntry-Definitions: Definitions/epg.yaml\n",
        ),
        ("Definitions/epg.yaml", &custom),
        ("Definitions/acme-types.yaml", types),
    ]);
    let loaded = tosca::read_csar("epg.csar", &bytes);
    let bundle = convert_and_revalidate(&loaded);
    assert_eq!(
        bundle.service("epg-tosca").unwrap().entry.as_deref(),
        Some("myepg"),
        "acme.EPG derives from FusionService"
    );

    let missing =
        tosca::read_csar("bad.csar", &csar(&[("TOSCA-Metadata/TOSCA.meta", "Entry-Definitions: nope.yaml\n")]));
    assert_eq!(
        missing.diagnostics[0].to_string(),
        "bad.csar: Entry-Definitions names \"nope.yaml\", which is not in the archive"
    );
    let not_zip = tosca::read_csar("x.csar", b"plain text");
    assert!(not_zip.diagnostics[0].message.starts_with("not a CSAR/zip archive"));
}
