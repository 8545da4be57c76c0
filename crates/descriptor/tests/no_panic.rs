//! The descriptor reader never panics, whatever it is given (the cargo-fuzz target in
//! `fuzz/` explores the same entry point for longer).

use proptest::prelude::*;
use zonal_descriptor::read_yaml_str;

const FRAGMENTS: &[&str] = &[
    "kind: Service\n",
    "kind: Infrastructure\n",
    "kind: Demand\n",
    "name: x\n",
    "components:\n",
    "  - name: a\n",
    "    slots: {per_instance: -1}\n",
    "zones:\n",
    "  - {name: z, location: {lat: 1, lon: 2}}\n",
    "---\n",
    "links: [{from: a, to: b}]\n",
    "tosca_definitions_version: tosca_simple_yaml_1_3\n",
    "node_templates:\n",
    "  n: {type: tosca.nodes.Compute}\n",
    "&a {x: 1}\n",
    "<<: *a\n",
    "*b\n",
    "[\n",
    "{\n",
    ": :\n",
    "\t\n",
    "regions: [{name: r}]\n",
    "demand: [{service: s, region: r, slots: {\"10:00\": 3}}]\n",
    "    resources: {cpu: 1e400}\n",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, rng_seed: proptest::test_runner::RngSeed::Fixed(20261202), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = read_yaml_str("fuzz.yaml", &text);
    }

    #[test]
    fn descriptor_shaped_text_never_panics(parts in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..14)) {
        let text: String = parts.concat();
        let loaded = read_yaml_str("fuzz.yaml", &text);
        // Invalid input yields no documents.
        if !loaded.diagnostics.is_empty() {
            prop_assert!(loaded.bundle.documents.len() <= text.matches("---").count() + 1);
        }
    }
}
