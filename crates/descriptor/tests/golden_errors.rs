//! Golden tests of the messages for typical mistakes: each case is a small descriptor (or a
//! set of them) and the exact diagnostics a user sees. A message must say where (file:line:
//! column and field path), what was found and what was expected.

use zonal_descriptor::{read_yaml_str, Loaded};

/// Reads each (file, text) pair, cross-checks them together, and renders the diagnostics.
fn diagnostics(files: &[(&str, &str)]) -> Vec<String> {
    let mut loaded = Loaded::default();
    for (name, text) in files {
        loaded.extend(read_yaml_str(name, text));
    }
    if loaded.diagnostics.is_empty() {
        loaded.cross_check();
    }
    assert!(loaded.diagnostics.is_empty() || !loaded.is_valid());
    loaded.diagnostics.iter().map(|d| d.to_string()).collect()
}

const INFRA: &str = "\
kind: Infrastructure
name: lab
zones:
  - name: edge-a
    location: {lat: 51.2, lon: 4.4}
    hosts:
      - name: h1
        capacity: {cpu: 8, memory: 16Gi}
        features: {arch: x86_64}
  - name: core
    hosts:
      - name: big
        capacity: {cpu: 32, memory: 128Gi}
";

struct Case {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    expected: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "negative slots",
        files: &[("examples/epg.yaml", "kind: Service\nname: epg\ncomponents:\n  - name: a\n  - name: streamer\n    slots:\n      per_instance: -3\n")],
        expected: &["examples/epg.yaml:7:21: components[1].slots.per_instance: expected an integer between 1 and 100000, found -3"],
    },
    Case {
        name: "missing kind",
        files: &[("s.yaml", "name: web\ncomponents: []\n")],
        expected: &["s.yaml:1:1: kind: missing required field `kind`: expected one of Infrastructure, Service, Demand, KnowledgeBase"],
    },
    Case {
        name: "misspelt kind",
        files: &[("s.yaml", "kind: Servce\nname: web\n")],
        expected: &["s.yaml:1:7: kind: expected one of Infrastructure, Service, Demand, KnowledgeBase, found \"Servce\" (did you mean Service?)"],
    },
    Case {
        name: "TOSCA given where native was expected without a version",
        files: &[("t.yaml", "tosca_definitions_version: tosca_simple_yaml_9\nnode_templates: {}\n")],
        expected: &[
            "t.yaml:1:28: tosca_definitions_version: expected one of tosca_simple_yaml_1_0, tosca_simple_yaml_1_1, tosca_simple_yaml_1_2, tosca_simple_yaml_1_3, tosca_simple_profile_for_nfv_1_0_0, found \"tosca_simple_yaml_9\"",
            "t.yaml:2:17: node_templates: no service node: expected at least one node of type tosca.nodes.FusionService, FusionComponent or another software component",
        ],
    },
    Case {
        name: "duration without unit",
        files: &[("s.yaml", "kind: Service\nname: web\nsla: {r_min: 20, r_med: 50ms, r_max: 150ms}\ncomponents:\n  - name: web\n")],
        expected: &["s.yaml:3:14: sla.r_min: expected a duration with a unit: ns, us, ms, s, m or h (e.g. 20ms, 1.5s, 250us), found 20"],
    },
    Case {
        name: "memory in the wrong unit",
        files: &[("s.yaml", "kind: Service\nname: web\ncomponents:\n  - name: web\n    resources: {cpu: 500m, memory: 4gb}\n")],
        expected: &["s.yaml:5:36: components[0].resources.memory: expected a size: bytes, or a number with k, M, G, T (decimal) or Ki, Mi, Gi, Ti (binary), e.g. 256Mi, 4Gi, 1G, found 4gb"],
    },
    Case {
        name: "cpu as words",
        files: &[("s.yaml", "kind: Service\nname: web\ncomponents:\n  - name: web\n    resources: {cpu: two}\n")],
        expected: &["s.yaml:5:22: components[0].resources.cpu: expected a CPU amount: cores (2, 0.5) or millicores (500m), found two"],
    },
    Case {
        name: "unknown field with a suggestion",
        files: &[("s.yaml", "kind: Service\nname: web\ncomponents:\n  - name: web\n    slot: {per_instance: 4}\n")],
        expected: &["s.yaml:5:5: components[0].slot: unknown field `slot`; did you mean `slots`? expected one of: evaluator, name, placement, ports, public, resources, run, scaling, slots, supports_overlay, tag, user_side"],
    },
    Case {
        name: "channel to a missing component",
        files: &[("s.yaml", "kind: Service\nname: epg\ncomponents:\n  - name: renderer\n  - name: streamer\nchannels:\n  - {from: renderer, to: stremer}\n")],
        expected: &["s.yaml:7:26: channels[0].to: unknown component \"stremer\"; expected one of service \"epg\"'s components (renderer, streamer)"],
    },
    Case {
        name: "link to an unknown zone",
        files: &[("i.yaml", "kind: Infrastructure\nname: lab\nzones:\n  - name: a\n  - name: b\nlinks:\n  - {from: a, to: c}\n")],
        expected: &["i.yaml:7:19: links[0].to: unknown zone \"c\"; expected one of this infrastructure's zones (a, b)"],
    },
    Case {
        name: "latitude out of range",
        files: &[("i.yaml", "kind: Infrastructure\nname: lab\nzones:\n  - name: a\n    location: {lat: 151.2, lon: 4.4}\n")],
        expected: &["i.yaml:5:21: zones[0].location.lat: expected a number between -90 and 90, found 151.2"],
    },
    Case {
        name: "duplicate zone names",
        files: &[("i.yaml", "kind: Infrastructure\nname: lab\nzones:\n  - name: a\n  - name: a\n")],
        expected: &["i.yaml:5:11: zones[1].name: duplicate zone name \"a\": each zone needs its own name"],
    },
    Case {
        name: "duplicate YAML key",
        files: &[("s.yaml", "kind: Service\nname: web\nname: web2\ncomponents:\n  - name: web\n")],
        expected: &["s.yaml:3:1: duplicate key \"name\" (first defined at line 2); each key may appear once"],
    },
    Case {
        name: "YAML syntax error",
        files: &[("s.yaml", "kind: Service\nname: [web\ncomponents: []\n")],
        expected: &["s.yaml:3:11: invalid YAML: illegal placement of ':' indicator"],
    },
    Case {
        name: "min above max instances",
        files: &[("s.yaml", "kind: Service\nname: web\ncomponents:\n  - name: web\n    scaling: {min_instances: 5, max_instances: 2}\n")],
        expected: &["s.yaml:5:30: components[0].scaling.min_instances: expected min_instances at most max_instances (2), found 5"],
    },
    Case {
        name: "SLA thresholds out of order",
        files: &[("s.yaml", "kind: Service\nname: web\nsla: {r_min: 50ms, r_med: 20ms, r_max: 150ms}\ncomponents:\n  - name: web\n")],
        expected: &["s.yaml:3:27: sla.r_med: expected r_med greater than r_min (50ms), found 20ms"],
    },
    Case {
        name: "resource no host offers",
        files: &[
            ("i.yaml", INFRA),
            ("s.yaml", "kind: Service\nname: ml\ncomponents:\n  - name: trainer\n    resources: {cpu: 4, gpu: 1}\n"),
        ],
        expected: &["s.yaml:5:30: components[0].resources.gpu: no host offers resource \"gpu\"; hosts offer cpu, memory"],
    },
    Case {
        name: "resource in a unit of the wrong kind",
        files: &[
            ("i.yaml", "kind: Infrastructure\nname: lab\nzones:\n  - name: a\n    hosts:\n      - {name: h, capacity: {cpu: 4, nvme: 1Ti}}\n"),
            ("s.yaml", "kind: Service\nname: db\ncomponents:\n  - name: db\n    resources: {nvme: 2}\n"),
        ],
        expected: &["s.yaml:5:23: components[0].resources.nvme: expected a size (bytes, Mi, Gi, ...) as hosts offer \"nvme\" in, found a count (2)"],
    },
    Case {
        name: "demand for an unknown region and service",
        files: &[
            ("s.yaml", "kind: Service\nname: web\ncomponents:\n  - name: web\n"),
            ("d.yaml", "kind: Demand\nname: day\nregions:\n  - {name: antwerp}\ndemand:\n  - {service: wbe, region: antwerpen, slots: 10}\n"),
        ],
        expected: &[
            "d.yaml:6:15: demand[0].service: unknown service \"wbe\"; expected one of the services given (web)",
            "d.yaml:6:28: demand[0].region: unknown region \"antwerpen\"; expected one of the regions defined under `regions` (antwerp)",
        ],
    },
    Case {
        name: "bad window time",
        files: &[("d.yaml", "kind: Demand\nname: day\nregions:\n  - {name: a}\ndemand:\n  - service: web\n    region: a\n    slots: {\"25:00\": 4}\n")],
        expected: &["d.yaml:8:13: demand[0].slots.25:00: expected a time of day HH:MM on a 24-hour clock (e.g. 18:30) as a window start, found \"25:00\""],
    },
    Case {
        name: "pinned to an unknown zone",
        files: &[("i.yaml", INFRA), ("s.yaml", "kind: Service\nname: c\ncomponents:\n  - name: u\n    user_side: true\n    placement: {pin: {zone: edge-b}}\n")],
        expected: &["s.yaml:6:29: components[0].placement.pin.zone: unknown zone \"edge-b\"; expected one of the infrastructure's zones (core, edge-a)"],
    },
    Case {
        name: "unknown proximity class",
        files: &[("s.yaml", "kind: Service\nname: c\nproximity: nearby\ncomponents:\n  - name: a\n")],
        expected: &["s.yaml:3:12: proximity: unknown proximity class \"nearby\"; expected one of edge, metro, national, regional"],
    },
    Case {
        name: "feature no host has",
        files: &[("i.yaml", INFRA), ("s.yaml", "kind: Service\nname: c\ncomponents:\n  - name: a\n    placement: {requires: {arch: arm64}}\n")],
        expected: &["s.yaml:5:34: components[0].placement.requires.arch: no host offers feature arch=arm64 (arch: x86_64)"],
    },
    Case {
        name: "several errors at once",
        files: &[("s.yaml", "kind: Service\nname: web\ncomponents:\n  - name: web\n    slots: {per_instance: 0, min_free: lots}\n    ports: [{name: http, port: 70000}]\n")],
        expected: &[
            "s.yaml:5:27: components[0].slots.per_instance: expected an integer between 1 and 100000, found 0",
            "s.yaml:5:40: components[0].slots.min_free: expected an integer between 0 and 100000, found lots",
            "s.yaml:6:32: components[0].ports[0].port: expected a port number between 1 and 65535, found 70000",
        ],
    },
    Case {
        name: "tag missing from the knowledge base",
        files: &[
            ("kb.yaml", "kind: KnowledgeBase\nname: kb\nprofiles:\n  - {name: p, resources: {cpu: 1}}\ntags:\n  - {name: web, candidates: [{profile: q}]}\n"),
            ("s.yaml", "kind: Service\nname: s\ncomponents:\n  - {name: a, tag: webb}\n"),
        ],
        expected: &[
            "kb.yaml:6:40: tags[0].candidates[0].profile: unknown profile \"q\"; expected one of p",
            "s.yaml:4:20: components[0].tag: unknown workload tag \"webb\"; the knowledge base defines web",
        ],
    },
    Case {
        name: "counts beyond their maximum (issue 14: per_instance wrapped, min_instances accepted)",
        files: &[("s.yaml", "kind: Service\nname: s\ncomponents:\n  - name: a\n    slots: {per_instance: 4294967295}\n    scaling: {min_instances: 100000}\n")],
        expected: &[
            "s.yaml:5:27: components[0].slots.per_instance: expected an integer between 1 and 100000, found 4294967295",
            "s.yaml:6:30: components[0].scaling.min_instances: expected an integer between 0 and 1000, found 100000",
        ],
    },
    Case {
        name: "names that are not DNS labels",
        files: &[("s.yaml", "kind: Service\nname: '..'\ncomponents:\n  - name: Web\n  - name: a_b\n")],
        expected: &[
            "s.yaml:2:7: name: expected a name (a DNS label: 1-63 characters from a-z, 0-9 and '-', beginning and ending with a letter or digit), found \"..\": it has the character '.'",
            "s.yaml:4:11: components[0].name: expected a name (a DNS label: 1-63 characters from a-z, 0-9 and '-', beginning and ending with a letter or digit), found \"Web\": it has the upper-case letter 'W' (names are lower case)",
            "s.yaml:5:11: components[1].name: expected a name (a DNS label: 1-63 characters from a-z, 0-9 and '-', beginning and ending with a letter or digit), found \"a_b\": it has the character '_'",
        ],
    },
    Case {
        name: "an unterminated quote in run",
        files: &[("s.yaml", "kind: Service\nname: s\ncomponents:\n  - name: a\n    run: zonal workload --name 'a b\n")],
        expected: &[
            "s.yaml:5:10: components[0].run: expected a command line split by shell rules, found an unterminated quote in zonal workload --name 'a b; close the quote, or write the command as a list (`[prog, \"arg with space\"]`)",
        ],
    },
    Case {
        name: "a host count beyond the maximum and sizes beyond theirs",
        files: &[("i.yaml", "kind: Infrastructure\nname: i\nzones:\n  - name: z\n    hosts:\n      - {name: h, count: 4294967295, capacity: {cpu: 8, memory: 2Ei}}\n")],
        expected: &[
            "i.yaml:6:26: zones[0].hosts[0].count: expected an integer between 1 and 10000, found 4294967295",
            "i.yaml:6:65: zones[0].hosts[0].capacity.memory: expected a size of at most 1Ei (2^60 bytes), found 2Ei",
        ],
    },
    Case {
        name: "a billion laughs",
        files: &[("bomb.yaml", "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n")],
        expected: &[
            "bomb.yaml:5:8: this alias would expand to 11111 more nodes, past the limit of 20000 nodes added by aliases (MAX_YAML_ALIAS_NODES; 12330 already added); write the values out or use fewer aliases",
        ],
    },
    Case {
        name: "wrong shape",
        files: &[("s.yaml", "kind: Service\nname: web\ncomponents:\n  name: web\n")],
        expected: &["s.yaml:4:3: components: expected a list, found a mapping"],
    },
];

#[test]
fn golden_error_messages() {
    let mut failures = Vec::new();
    for case in CASES {
        let got = diagnostics(case.files);
        let want: Vec<String> = case.expected.iter().map(|s| s.to_string()).collect();
        if got != want {
            failures.push(format!("case {:?}\n  got:  {got:#?}\n  want: {want:#?}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} golden case(s) differ:\n{}", failures.len(), failures.join("\n"));
    assert!(CASES.len() >= 20);
}
