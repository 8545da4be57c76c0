//! TOSCA Simple Profile in YAML (1.0–1.3) with FUSION's node types and OPERA's tagged hosting
//! nodes → one native [`Service`].
//!
//! FUSION's manifest draft (seed 000 §7.6) is a sketch, not valid TOSCA. This reader accepts
//! its intent and rejects what is really wrong:
//!
//! * accepted: `inputs`/`node_templates` at the top level as well as under
//!   `topology_template`; version `tosca_simple_yaml_1_0_0`; node type names in any case
//!   (`tosca.nodes.fusionevaluator`) and with or without the `tosca.nodes.` prefix; FUSION
//!   properties given either as `properties` or as `capabilities: {name: {properties}}`;
//!   `AttachTo` for `AttachesTo`; bare numbers for `mem_size`/`disk_size` read as GB (the
//!   draft leaves the unit out). Each such leniency is reported as a note.
//! * rejected: YAML errors and duplicate keys, unknown node types (not a TOSCA/FUSION type and
//!   not defined in `node_types` or an import), requirements naming undefined templates,
//!   `get_input` of an undefined input or of an input with no value, input values breaking
//!   their `constraints`, malformed scalar units, and FUSION bounds out of order.
//!
//! Mapping (FUSION → Zonal):
//! * `FusionService` / `FusionComponent` / `FusionEvaluator` nodes become components (the first
//!   `FusionService` is the entry; the service is named after it, or after
//!   `metadata.template_name`); an evaluator that `DependsOn` a service node becomes the
//!   service's evaluator (`evaluator: {component: …}`).
//! * `svc_scaling.{min,max}_instances` → `scaling`; `session_slots.max_slots` → slots per
//!   instance, `session_slots.min_slots` → slots kept free; `app_endpoint`/`admin_port` ports →
//!   `ports`; `interfaces.Standard.start` → the run command.
//! * the `host` requirement's `tosca.nodes.Compute` → resources (`num_cpus`, `mem_size`,
//!   `disk_size`) and required features (`os_arch` → `arch`); an OPERA tagged host (a
//!   hosting node with a `tag` property and no concrete sizes) → the component's workload
//!   `tag`, resources left for the knowledge base to fill.
//! * `ConnectsTo`/`DependsOn` between software nodes → channels; a `FusionLateBind` policy on a
//!   target → late binding, its `min_throughput`/`max_latency` → the channel's bandwidth and
//!   latency bound. `FusionPlacementPolicy` `affinity`/`anti_affinity` → placement constraints.
//! * `FusionDomain`, `FusionSvcContextRepo`, `FusionAuthentication` describe the domain, the
//!   context store and credentials: kept as notes (the domain provides these at run time),
//!   with `FusionAuthentication.userid` → the service's owner.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use zonal_model::{
    Amount, Binding, Channel, Component, Document, Duration, EvaluatorRef, FieldPath, Port, Protocol, Resources,
    RunSpec, Scaling, Service, Size, SlotSpec,
};

use crate::decode::{Cx, Diagnostic};
use crate::load::{Loaded, Source};
use crate::yaml::{self, Node, NodeKind, Scalar};

const VERSIONS: &[&str] = &[
    "tosca_simple_yaml_1_0",
    "tosca_simple_yaml_1_1",
    "tosca_simple_yaml_1_2",
    "tosca_simple_yaml_1_3",
    "tosca_simple_profile_for_nfv_1_0_0",
];

/// What a node template is, after following `derived_from` to a type Zonal knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Service,
    Component,
    Evaluator,
    ContextRepo,
    Domain,
    Authentication,
    Compute,
    /// Any other standard TOSCA node (software component, web server, database, …): a component.
    Software,
    /// Standard TOSCA nodes that are not components (networks, storage, …): ignored.
    Other,
}

fn builtin_role(type_name: &str) -> Option<Role> {
    let lower = type_name.to_ascii_lowercase();
    let short = lower.strip_prefix("tosca.nodes.").unwrap_or(&lower);
    Some(match short {
        "fusionservice" => Role::Service,
        "fusioncomponent" => Role::Component,
        "fusionevaluator" => Role::Evaluator,
        "fusionsvccontextrepo" => Role::ContextRepo,
        "fusiondomain" => Role::Domain,
        "fusionauthentication" => Role::Authentication,
        "compute" | "opera.taggedhost" | "taggedhost" => Role::Compute,
        "softwarecomponent"
        | "webserver"
        | "webapplication"
        | "dbms"
        | "database"
        | "container.application"
        | "container.runtime"
        | "loadbalancer"
        | "root" => Role::Software,
        "blockstorage" | "objectstorage" | "network.network" | "network.port" | "storage.blockstorage" => Role::Other,
        _ => return None,
    })
}

/// A node type defined in the template or an import: its parent.
type TypeTable = BTreeMap<String, String>;

/// Reads a TOSCA template node (the root of a `.yaml` document). Returns the service
/// document(s) and notes about the leniencies applied.
pub fn read_template(cx: &mut Cx<'_>, node: &Node) -> Option<(Vec<Document>, Vec<String>)> {
    read_with_types(cx, node, &TypeTable::new(), None)
}

fn read_with_types(
    cx: &mut Cx<'_>,
    node: &Node,
    imported: &TypeTable,
    fallback_name: Option<&str>,
) -> Option<(Vec<Document>, Vec<String>)> {
    let root = FieldPath::root();
    let before = cx.diagnostics.len();
    let mut notes = Vec::new();
    let mut f = cx.fields(node, &root)?;
    if let Some((v, p)) = f.optional("tosca_definitions_version") {
        let version = cx.string(v, &p).unwrap_or_default();
        if version == "tosca_simple_yaml_1_0_0" {
            notes.push(format!("{}: read tosca_definitions_version {version:?} as tosca_simple_yaml_1_0", cx.file));
        } else if !VERSIONS.contains(&version.as_str()) {
            cx.error(v.span, &p, format!("expected one of {}, found {version:?}", VERSIONS.join(", ")));
        }
    }
    let _ = f.optional("description");
    let metadata = f.optional("metadata").map(|(n, p)| cx.string_map(n, &p)).unwrap_or_default();
    let _ = f.optional("imports");
    let _ = f.optional("dsl_definitions");
    for key in [
        "capability_types",
        "relationship_types",
        "policy_types",
        "data_types",
        "artifact_types",
        "interface_types",
        "group_types",
    ] {
        let _ = f.optional(key);
    }
    let mut types = imported.clone();
    if let Some((n, p)) = f.optional("node_types") {
        read_node_types(cx, n, &p, &mut types);
    }
    // Inputs, templates and policies live under `topology_template`, or (FUSION's draft) at
    // the top level.
    let (topology, tpath): (Option<&Node>, FieldPath) = match f.optional("topology_template") {
        Some((n, p)) => (Some(n), p),
        None => (None, root.clone()),
    };
    let mut top_fields = None;
    let mut tf = match topology {
        Some(n) => cx.fields(n, &tpath),
        None => None,
    };
    let source = match tf.as_mut() {
        Some(t) => t,
        None => {
            top_fields = Some(());
            &mut f
        }
    };
    let inputs = match source.optional("inputs") {
        Some((n, p)) => read_inputs(cx, n, &p),
        None => BTreeMap::new(),
    };
    let templates_node = source.required(cx, "node_templates", "the node templates of the service");
    let policies_node = source.optional("policies");
    let _ = source.optional("outputs");
    let _ = source.optional("groups");
    let _ = source.optional("substitution_mappings");
    let _ = source.optional("workflows");
    let _ = source.optional("relationship_templates");
    let _ = source.optional("description");
    if top_fields.is_some() && templates_node.is_some() {
        notes.push(format!(
            "{}: node_templates given at the top level; TOSCA puts them under topology_template (accepted)",
            cx.file
        ));
    }
    if let Some(t) = tf {
        t.finish(cx);
    }
    f.finish(cx);
    let (templates_node, tpl_path) = templates_node?;
    let mut reader = TemplateReader { cx, types: &types, inputs, notes };
    let service = reader.service(templates_node, &tpl_path, policies_node, &metadata, fallback_name);
    let notes = reader.notes;
    if cx.diagnostics.len() > before {
        return None;
    }
    service.map(|s| (vec![Document::Service(s)], notes))
}

fn read_node_types(cx: &mut Cx<'_>, node: &Node, path: &FieldPath, types: &mut TypeTable) {
    let Some(mut f) = cx.fields(node, path) else { return };
    for (name, _, def) in f.entries.clone() {
        let parent = def.get("derived_from").and_then(|n| n.as_scalar()).map(|s| s.text.clone());
        match parent {
            Some(p) => {
                types.insert(name.to_string(), p);
            }
            None => {
                cx.error(def.span, &path.key(name), "expected `derived_from` naming the type this node type extends")
            }
        }
    }
    f.used.iter_mut().for_each(|u| *u = true);
}

/// An input's value and where it was declared.
struct Input {
    value: Option<Node>,
}

fn read_inputs(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> BTreeMap<String, Input> {
    let mut out = BTreeMap::new();
    let Some(mut f) = cx.fields(node, path) else { return out };
    for (name, _, def) in f.entries.clone() {
        let p = path.key(name);
        let Some(mut d) = cx.fields(def, &p) else { continue };
        let _ = d.optional("type");
        let _ = d.optional("description");
        let _ = d.optional("required");
        let _ = d.optional("status");
        let value = d.optional("default").map(|(n, _)| n.clone());
        if let (Some(v), Some((c, cp))) = (&value, d.optional("constraints")) {
            check_constraints(cx, name, v, c, &cp);
        }
        d.finish(cx);
        out.insert(name.to_string(), Input { value });
    }
    f.used.iter_mut().for_each(|u| *u = true);
    out
}

fn scalar_f64(n: &Node) -> Option<f64> {
    n.as_scalar().and_then(|s| s.text.trim().parse().ok())
}

/// Checks an input's value against TOSCA constraints (`valid_values`, `in_range`,
/// `greater_than`, `greater_or_equal`, `less_than`, `less_or_equal`, `equal`).
fn check_constraints(cx: &mut Cx<'_>, input: &str, value: &Node, constraints: &Node, path: &FieldPath) {
    let Some(list) = constraints.as_seq() else {
        cx.error(constraints.span, path, format!("expected a list of constraints, found {}", constraints.describe()));
        return;
    };
    let text = value.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
    let v = scalar_f64(value);
    for (i, c) in list.iter().enumerate() {
        let cp = path.index(i);
        let Some(entries) = c.as_map() else {
            cx.error(c.span, &cp, format!("expected a constraint such as `in_range: [1, 10]`, found {}", c.describe()));
            continue;
        };
        for (k, arg) in entries {
            let op = k.as_scalar().map(|s| s.text.as_str()).unwrap_or_default();
            let ok = match op {
                "valid_values" => {
                    arg.as_seq().is_some_and(|vals| vals.iter().any(|x| x.as_scalar().is_some_and(|s| s.text == text)))
                }
                "in_range" => match arg.as_seq() {
                    Some([lo, hi]) => {
                        matches!((v, scalar_f64(lo), scalar_f64(hi)), (Some(v), Some(lo), Some(hi)) if v >= lo && v <= hi)
                    }
                    _ => {
                        cx.error(arg.span, &cp.key(op), "expected `in_range: [low, high]`");
                        continue;
                    }
                },
                "greater_than" => matches!((v, scalar_f64(arg)), (Some(v), Some(b)) if v > b),
                "greater_or_equal" => matches!((v, scalar_f64(arg)), (Some(v), Some(b)) if v >= b),
                "less_than" => matches!((v, scalar_f64(arg)), (Some(v), Some(b)) if v < b),
                "less_or_equal" => matches!((v, scalar_f64(arg)), (Some(v), Some(b)) if v <= b),
                "equal" => arg.as_scalar().is_some_and(|s| s.text == text),
                "min_length" | "max_length" | "length" | "pattern" => true,
                other => {
                    cx.error(k.span, &cp.key(other), format!("unknown constraint `{other}`; expected valid_values, in_range, greater_than, greater_or_equal, less_than, less_or_equal or equal"));
                    continue;
                }
            };
            if !ok {
                cx.error(
                    value.span,
                    &path.parent().key("default"),
                    format!("input `{input}` = {} breaks its constraint `{op}: {}`", value.describe(), render(arg)),
                );
            }
        }
    }
}

fn render(n: &Node) -> String {
    match &n.kind {
        NodeKind::Seq(items) => format!("[{}]", items.iter().map(render).collect::<Vec<_>>().join(", ")),
        _ => n.describe(),
    }
}

struct TemplateReader<'c, 'f> {
    cx: &'c mut Cx<'f>,
    types: &'c TypeTable,
    inputs: BTreeMap<String, Input>,
    notes: Vec<String>,
}

/// One node template, pre-digested.
struct Template<'n> {
    name: String,
    role: Role,
    node: &'n Node,
    path: FieldPath,
    /// (requirement name, target template, path of the requirement)
    requirements: Vec<(String, String, FieldPath, crate::yaml::Span)>,
}

impl TemplateReader<'_, '_> {
    fn note(&mut self, text: String) {
        if !self.notes.contains(&text) {
            self.notes.push(text);
        }
    }

    fn role_of(&mut self, type_name: &str, span: crate::yaml::Span, path: &FieldPath) -> Option<Role> {
        let mut current = type_name.to_string();
        let mut seen = BTreeSet::new();
        loop {
            if let Some(role) = builtin_role(&current) {
                let canonical = current.to_ascii_lowercase();
                if !current.starts_with("tosca.nodes.") && !self.types.contains_key(type_name) {
                    self.note(format!("{}: node type {current:?} read as tosca.nodes.{current}", self.cx.file));
                } else if current != canonical
                    && current.chars().any(|c| c.is_ascii_lowercase())
                    && current.starts_with("tosca.nodes.fusion")
                {
                    self.note(format!("{}: node type {current:?} matched case-insensitively", self.cx.file));
                }
                return Some(role);
            }
            match self.types.get(&current) {
                Some(parent) if seen.insert(current.clone()) => current = parent.clone(),
                _ => {
                    self.cx.error(
                        span,
                        path,
                        format!("unknown node type {type_name:?}; expected a TOSCA normative type (tosca.nodes.Compute, tosca.nodes.SoftwareComponent, …), a FUSION type (tosca.nodes.FusionService, FusionComponent, FusionEvaluator, FusionSvcContextRepo, FusionDomain, FusionAuthentication) or a type defined under node_types"),
                    );
                    return None;
                }
            }
        }
    }

    fn service(
        &mut self,
        templates: &Node,
        path: &FieldPath,
        policies: Option<(&Node, FieldPath)>,
        metadata: &BTreeMap<String, String>,
        fallback_name: Option<&str>,
    ) -> Option<Service> {
        let Some(entries) = templates.as_map() else {
            self.cx.error(
                templates.span,
                path,
                format!("expected a mapping of node templates, found {}", templates.describe()),
            );
            return None;
        };
        let mut list: Vec<Template<'_>> = Vec::new();
        for (k, v) in entries {
            let name = k.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
            let p = path.key(&name);
            self.cx.spans.insert(p.clone(), v.span);
            let Some(type_node) = v.get("type") else {
                self.cx.error(
                    v.span,
                    &p.key("type"),
                    "missing required field `type`: expected the node type, e.g. tosca.nodes.FusionService",
                );
                continue;
            };
            let Some(type_name) = type_node.as_scalar().map(|s| s.text.trim_end_matches(':').to_string()) else {
                self.cx.error(
                    type_node.span,
                    &p.key("type"),
                    format!("expected a node type name, found {}", type_node.describe()),
                );
                continue;
            };
            let Some(role) = self.role_of(&type_name, type_node.span, &p.key("type")) else { continue };
            let mut requirements = Vec::new();
            if let Some(reqs) = v.get("requirements") {
                for (i, r) in reqs.as_seq().unwrap_or_default().iter().enumerate() {
                    let rp = p.key("requirements").index(i);
                    match r.as_map().and_then(|m| m.first()) {
                        Some((rk, rv)) => {
                            let req = rk.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
                            let target = match &rv.kind {
                                NodeKind::Scalar(s) => Some(s.text.clone()),
                                NodeKind::Map(_) => rv.get("node").and_then(|n| n.as_scalar()).map(|s| s.text.clone()),
                                _ => None,
                            };
                            match target {
                                Some(t) => requirements.push((
                                    req,
                                    t,
                                    rp.key(rk.as_scalar().map(|s| s.text.as_str()).unwrap_or("?")),
                                    rv.span,
                                )),
                                None => self.cx.error(
                                    rv.span,
                                    &rp,
                                    format!("expected the name of a node template, found {}", rv.describe()),
                                ),
                            }
                        }
                        None => self.cx.error(
                            r.span,
                            &rp,
                            format!("expected a requirement such as `host: my_server`, found {}", r.describe()),
                        ),
                    }
                }
            }
            list.push(Template { name, role, node: v, path: p, requirements });
        }
        let names: BTreeSet<String> = list.iter().map(|t| t.name.clone()).collect();
        for t in &list {
            for (req, target, rp, span) in &t.requirements {
                if !names.contains(target) {
                    // `host: tosca.nodes.Compute` (a type instead of a template) means "some host".
                    if req == "host" && builtin_role(target).is_some() {
                        continue;
                    }
                    let known = names.iter().cloned().collect::<Vec<_>>().join(", ");
                    self.cx.error(*span, rp, format!("requirement `{req}` names {target:?}, which is not a node template; expected one of {known}"));
                }
            }
        }
        let by_name: BTreeMap<&str, &Template<'_>> = list.iter().map(|t| (t.name.as_str(), t)).collect();
        let is_software = |r: Role| matches!(r, Role::Service | Role::Component | Role::Evaluator | Role::Software);

        let mut components = Vec::new();
        let mut channels = Vec::new();
        let mut evaluator = None;
        let mut owner = None;
        for t in &list {
            match t.role {
                Role::Authentication => {
                    owner = self.prop(t.node, &t.path, "userid").and_then(|n| n.as_scalar().map(|s| s.text.clone()))
                }
                Role::Domain | Role::ContextRepo => self.note(format!(
                    "{}: node {:?} ({}) describes the domain's endpoints and context store; the domain provides these at run time",
                    self.cx.file,
                    t.name,
                    if t.role == Role::Domain { "FusionDomain" } else { "FusionSvcContextRepo" }
                )),
                _ => {}
            }
            if !is_software(t.role) {
                continue;
            }
            let host = t
                .requirements
                .iter()
                .find(|(r, ..)| r == "host")
                .and_then(|(_, target, ..)| by_name.get(target.as_str()).copied());
            if let Some(c) = self.component(t, host) {
                components.push(c);
            }
            for (req, target, ..) in &t.requirements {
                let Some(other) = by_name.get(target.as_str()) else { continue };
                if !is_software(other.role) {
                    continue;
                }
                let relation = req.to_ascii_lowercase();
                if t.role == Role::Evaluator && relation == "dependson" {
                    evaluator = Some(EvaluatorRef::Component { component: t.name.clone() });
                    continue;
                }
                if matches!(relation.as_str(), "dependson" | "connectsto" | "depends_on" | "connects_to" | "link") {
                    channels.push(Channel {
                        from: t.name.clone(),
                        to: other.name.clone(),
                        bandwidth: None,
                        max_latency: None,
                    });
                }
            }
        }
        let mut binding = Binding::Static;
        if let Some((pn, pp)) = policies {
            self.policies(pn, &pp, &mut components, &mut channels, &mut binding);
        }
        let entry = list
            .iter()
            .find(|t| t.role == Role::Service)
            .or(list.iter().find(|t| is_software(t.role) && t.role != Role::Evaluator));
        let Some(entry) = entry else {
            self.cx.error(templates.span, path, "no service node: expected at least one node of type tosca.nodes.FusionService, FusionComponent or another software component");
            return None;
        };
        for c in &mut components {
            c.public = c.name == entry.name;
        }
        let name = metadata
            .get("template_name")
            .cloned()
            .or_else(|| fallback_name.map(str::to_string))
            .unwrap_or_else(|| entry.name.clone());
        Some(Service {
            name,
            description: None,
            owner,
            components,
            channels,
            entry: Some(entry.name.clone()),
            sla: None,
            proximity: None,
            session_bandwidth: None,
            evaluator,
            reuse_existing: true,
            share: Vec::new(),
            binding,
        })
    }

    /// A property of a template, looked for under `properties` and then as a capability's
    /// properties (`capabilities: {name: {properties: …}}`), resolving `get_input`.
    fn prop(&mut self, node: &Node, path: &FieldPath, name: &str) -> Option<Node> {
        let direct = node.get("properties").and_then(|p| p.get(name));
        let via_capability = || node.get("capabilities").and_then(|c| c.get(name)).and_then(|c| c.get("properties"));
        let found = direct.or_else(via_capability)?;
        let p = path.key("properties").key(name);
        self.resolve(found, &p)
    }

    /// Resolves `{get_input: name}` anywhere inside `node`.
    fn resolve(&mut self, node: &Node, path: &FieldPath) -> Option<Node> {
        match &node.kind {
            NodeKind::Map(entries)
                if entries.len() == 1 && entries[0].0.as_scalar().is_some_and(|s| s.text == "get_input") =>
            {
                let name = entries[0].1.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
                match self.inputs.get(&name) {
                    Some(Input { value: Some(v) }) => Some(v.clone()),
                    Some(Input { value: None }) => {
                        self.cx.error(node.span, path, format!("input `{name}` has no value; give it a `default`"));
                        None
                    }
                    None => {
                        let known = self.inputs.keys().cloned().collect::<Vec<_>>().join(", ");
                        self.cx.error(
                            node.span,
                            path,
                            format!("get_input names an undefined input `{name}`; inputs: {known}"),
                        );
                        None
                    }
                }
            }
            NodeKind::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let key = k.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
                    out.push((k.clone(), self.resolve(v, &path.key(key))?));
                }
                Some(Node { kind: NodeKind::Map(out), span: node.span })
            }
            _ => Some(node.clone()),
        }
    }

    fn int_prop(&mut self, props: &Node, path: &FieldPath, key: &'static str, default: u32) -> Option<u32> {
        match props.get(key) {
            None => Some(default),
            Some(n) => {
                let n = self.resolve(n, &path.key(key))?;
                self.cx.u32(&n, &path.key(key), 1)
            }
        }
    }

    fn component(&mut self, t: &Template<'_>, host: Option<&Template<'_>>) -> Option<Component> {
        let mut c = Component { name: t.name.clone(), ..Default::default() };
        let before = self.cx.diagnostics.len();
        if let Some(scaling) = self.prop(t.node, &t.path, "svc_scaling") {
            let props = scaling.get("properties").cloned().unwrap_or(scaling);
            let p = t.path.key("properties").key("svc_scaling");
            let min = self.int_prop(&props, &p, "min_instances", 1);
            let max = self.int_prop(&props, &p, "max_instances", min.unwrap_or(1));
            if let (Some(min), Some(max)) = (min, max) {
                if min > max {
                    self.cx.error(
                        props.span,
                        &p.key("min_instances"),
                        format!("expected min_instances ≤ max_instances ({max}), found {min}"),
                    );
                }
                c.scaling = Scaling { min_instances: min, max_instances: max };
            }
        }
        if let Some(slots) = self.prop(t.node, &t.path, "session_slots") {
            let props = slots.get("properties").cloned().unwrap_or(slots);
            let p = t.path.key("properties").key("session_slots");
            let min = self.int_prop(&props, &p, "min_slots", 1);
            let max = self.int_prop(&props, &p, "max_slots", 1);
            let initial = self.int_prop(&props, &p, "initial_slots", 1);
            if let (Some(min), Some(max), Some(initial)) = (min, max, initial) {
                if min > max {
                    self.cx.error(
                        props.span,
                        &p.key("min_slots"),
                        format!("expected min_slots ≤ max_slots ({max}), found {min}"),
                    );
                }
                if initial > max {
                    self.cx.error(
                        props.span,
                        &p.key("initial_slots"),
                        format!("expected initial_slots ≤ max_slots ({max}), found {initial}"),
                    );
                }
                c.slots = SlotSpec { per_instance: max, min_free: min };
            }
        }
        for (cap, port_name) in [("app_endpoint", "app"), ("admin_port", "admin"), ("evaluator_endpoint", "evaluator")]
        {
            if let Some(ep) = self.prop(t.node, &t.path, cap) {
                if let Some(port) = find_port(&ep) {
                    c.ports.push(Port {
                        name: port_name.to_string(),
                        port: Some(port),
                        protocol: if cap == "app_endpoint" { Protocol::Tcp } else { Protocol::Http },
                    });
                }
            }
        }
        if let Some(interfaces) = t.node.get("interfaces") {
            let standard = interfaces.get("Standard").or_else(|| interfaces.get("standard"));
            let start = standard.and_then(|s| s.get("start"));
            let script = start.and_then(|s| match &s.kind {
                NodeKind::Scalar(Scalar { text, .. }) => Some(text.clone()),
                NodeKind::Map(_) => s.get("implementation").and_then(|i| i.as_scalar()).map(|s| s.text.clone()),
                _ => None,
            });
            if let Some(script) = script {
                c.run = RunSpec::Command { argv: vec![script], env: BTreeMap::new() };
            }
        }
        if let Some(image) = t.node.get("artifacts").and_then(|a| a.as_map()).and_then(|m| {
            m.iter().find_map(|(_, v)| {
                let is_image = v
                    .get("type")
                    .and_then(|t| t.as_scalar())
                    .is_some_and(|t| t.text.to_ascii_lowercase().contains("image"));
                is_image.then(|| v.get("file").and_then(|f| f.as_scalar()).map(|s| s.text.clone())).flatten()
            })
        }) {
            c.run = RunSpec::Image { image, command: Vec::new(), env: BTreeMap::new() };
        }
        if let Some(h) = host {
            self.host_into(h, &mut c);
        }
        (self.cx.diagnostics.len() == before).then_some(c)
    }

    /// Turns the hosting node into resources and required features, or a workload tag.
    fn host_into(&mut self, h: &Template<'_>, c: &mut Component) {
        if let Some(tag) = self.prop(h.node, &h.path, "tag").or_else(|| self.prop(h.node, &h.path, "workload_tag")) {
            if let Some(s) = tag.as_scalar() {
                c.tag = Some(s.text.clone());
            }
        }
        // Draft form: properties directly; standard form: capabilities.host / capabilities.os.
        let host_props =
            h.node.get("capabilities").and_then(|c| c.get("host")).and_then(|c| c.get("properties")).cloned();
        let os_props = h.node.get("capabilities").and_then(|c| c.get("os")).and_then(|c| c.get("properties")).cloned();
        let props = h.node.get("properties").cloned();
        let pick = |key: &str| -> Option<Node> {
            host_props.as_ref().and_then(|p| p.get(key)).or_else(|| props.as_ref().and_then(|p| p.get(key))).cloned()
        };
        let p = h.path.key("properties");
        let mut resources = Resources::new();
        if let Some(n) = pick("num_cpus") {
            if let Some(n) = self.resolve(&n, &p.key("num_cpus")) {
                if let Some(cpus) = self.cx.u32(&n, &p.key("num_cpus"), 1) {
                    resources.0.insert("cpu".into(), Amount::cpu(u64::from(cpus) * 1000));
                }
            }
        }
        for (key, resource) in [("mem_size", "memory"), ("disk_size", "disk")] {
            if let Some(n) = pick(key) {
                if let Some(n) = self.resolve(&n, &p.key(key)) {
                    if let Some(bytes) = self.tosca_size(&n, &p.key(key)) {
                        resources.0.insert(resource.into(), Amount::bytes(bytes));
                    }
                }
            }
        }
        c.resources = resources;
        let arch = os_props
            .as_ref()
            .and_then(|o| o.get("architecture"))
            .or_else(|| props.as_ref().and_then(|p| p.get("os_arch")));
        if let Some(a) = arch.and_then(|a| a.as_scalar()) {
            c.placement.requires.insert("arch".into(), a.text.clone());
        }
    }

    /// A TOSCA `scalar-unit.size` (`4 GB`, `512 MiB`); a bare number is read as GB (FUSION's
    /// draft leaves the unit out).
    fn tosca_size(&mut self, n: &Node, path: &FieldPath) -> Option<u64> {
        let text = n.as_scalar().map(|s| s.text.trim().to_string()).unwrap_or_default();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            self.note(format!("{}: {path} = {text} has no unit; read as {text} GB", self.cx.file));
            return format!("{text}G").parse::<Size>().ok().map(|s| s.0);
        }
        let compact: String = text.split_whitespace().collect();
        let normalised =
            compact.replace("kB", "k").replace("KB", "k").replace("KiB", "Ki").replace("iB", "i").replace('B', "");
        match normalised.parse::<Size>() {
            Ok(s) => Some(s.0),
            Err(_) => {
                self.cx.error(
                    n.span,
                    path,
                    format!("expected a TOSCA size such as `4 GB` or `512 MiB`, found {}", n.describe()),
                );
                None
            }
        }
    }

    fn policies(
        &mut self,
        node: &Node,
        path: &FieldPath,
        components: &mut [Component],
        channels: &mut [Channel],
        binding: &mut Binding,
    ) {
        // TOSCA 1.0 writes policies as a list of single-entry maps; later versions also as a map.
        let entries: Vec<(String, Node, FieldPath)> = match &node.kind {
            NodeKind::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, it)| {
                    it.as_map().and_then(|m| m.first()).map(|(k, v)| {
                        (k.as_scalar().map(|s| s.text.clone()).unwrap_or_default(), v.clone(), path.index(i))
                    })
                })
                .collect(),
            NodeKind::Map(m) => m
                .iter()
                .map(|(k, v)| {
                    let name = k.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
                    (name.clone(), v.clone(), path.key(name))
                })
                .collect(),
            _ => {
                self.cx.error(node.span, path, format!("expected a list of policies, found {}", node.describe()));
                return;
            }
        };
        let names: BTreeSet<String> = components.iter().map(|c| c.name.clone()).collect();
        for (name, policy, pp) in entries {
            let ty =
                policy.get("type").and_then(|t| t.as_scalar()).map(|s| s.text.to_ascii_lowercase()).unwrap_or_default();
            let targets: Vec<String> = policy
                .get("targets")
                .and_then(|t| t.as_seq())
                .map(|s| s.iter().filter_map(|t| t.as_scalar().map(|s| s.text.clone())).collect())
                .unwrap_or_default();
            for t in &targets {
                if !names.contains(t) {
                    self.cx.error(
                        policy.span,
                        &pp.key("targets"),
                        format!(
                            "policy `{name}` targets {t:?}, which is not a component; expected one of {}",
                            names.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
            let props = policy.get("properties").cloned();
            if ty.ends_with("fusionlatebind") {
                let allow = props
                    .as_ref()
                    .and_then(|p| p.get("allow_latebinding"))
                    .and_then(|n| n.as_scalar())
                    .map(|s| s.text.to_ascii_lowercase());
                if matches!(allow.as_deref(), Some("yes") | Some("true") | None) {
                    *binding = Binding::Late;
                }
                let bandwidth = props.as_ref().and_then(|p| self.throughput(p, &pp.key("properties")));
                let latency = props.as_ref().and_then(|p| self.latency(p, &pp.key("properties")));
                for ch in channels
                    .iter_mut()
                    .filter(|c| targets.is_empty() || targets.contains(&c.to) || targets.contains(&c.from))
                {
                    ch.bandwidth = ch.bandwidth.or(bandwidth);
                    ch.max_latency = ch.max_latency.or(latency);
                }
            } else if ty.ends_with("fusionplacementpolicy") || ty.contains("affinity") || ty.contains("placement") {
                let anti = ty.contains("anti") || props.as_ref().and_then(|p| p.get("anti_affinity")).is_some();
                for c in components.iter_mut().filter(|c| targets.contains(&c.name)) {
                    let others = targets.iter().filter(|t| **t != c.name).cloned();
                    if anti {
                        c.placement.anti_affinity.extend(others);
                    } else {
                        c.placement.affinity.extend(others);
                    }
                }
            } else {
                self.note(format!("{}: policy `{name}` of type {ty:?} is not used by Zonal", self.cx.file));
            }
        }
    }

    fn throughput(&mut self, props: &Node, path: &FieldPath) -> Option<zonal_model::Bandwidth> {
        let value = props.get("min_throughput")?.as_scalar()?.text.clone();
        let unit = props
            .get("throughput_unit")
            .and_then(|u| u.as_scalar())
            .map(|s| s.text.clone())
            .unwrap_or_else(|| "Mbps".into());
        let unit = if unit == "Kbps" { "kbps".to_string() } else { unit };
        match format!("{value}{unit}").parse() {
            Ok(b) => Some(b),
            Err(e) => {
                self.cx.error(
                    props.span,
                    &path.key("min_throughput"),
                    format!("expected {}, found {value} {unit}", e.expected),
                );
                None
            }
        }
    }

    fn latency(&mut self, props: &Node, path: &FieldPath) -> Option<Duration> {
        let value = props.get("max_latency")?.as_scalar()?.text.clone();
        let unit = props
            .get("latency_unit")
            .and_then(|u| u.as_scalar())
            .map(|s| s.text.to_ascii_uppercase())
            .unwrap_or_else(|| "MSEC".into());
        let suffix = match unit.as_str() {
            "USEC" => "us",
            "MSEC" => "ms",
            "MSECT" => {
                self.note(format!("{}: latency_unit MSECT read as MSEC (a typo in FUSION's draft)", self.cx.file));
                "ms"
            }
            "SEC" => "s",
            other => {
                self.cx.error(
                    props.span,
                    &path.key("latency_unit"),
                    format!("expected USEC, MSEC or SEC, found {other:?}"),
                );
                return None;
            }
        };
        match format!("{value}{suffix}").parse() {
            Ok(d) => Some(d),
            Err(e) => {
                self.cx.error(props.span, &path.key("max_latency"), format!("expected {}, found {value}", e.expected));
                None
            }
        }
    }
}

/// Finds a port number in an endpoint description (`ports: {user_port: {target: 5000}}`, or
/// `port: 5000`).
fn find_port(ep: &Node) -> Option<u16> {
    if let Some(p) = ep.get("port").and_then(scalar_f64) {
        return u16::try_from(p as i64).ok();
    }
    let props = ep.get("properties").unwrap_or(ep);
    let ports = props.get("ports")?.as_map()?;
    ports.iter().find_map(|(_, v)| v.get("target").and_then(scalar_f64).and_then(|t| u16::try_from(t as i64).ok()))
}

/// Reads a CSAR (zip) archive: the entry definitions named in `TOSCA-Metadata/TOSCA.meta`, or
/// the single YAML file at the archive's root. Node types from imported files in the
/// archive are known to the entry template.
pub fn read_csar(file: &str, bytes: &[u8]) -> Loaded {
    let fail = |message: String| Loaded {
        diagnostics: vec![Diagnostic { file: file.to_string(), span: None, path: None, message }],
        ..Default::default()
    };
    let mut archive = match zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
        Ok(a) => a,
        Err(e) => return fail(format!("not a CSAR/zip archive: {e}")),
    };
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..archive.len() {
        let Ok(mut entry) = archive.by_index(i) else { continue };
        if entry.is_dir() || entry.size() > 16 << 20 {
            continue;
        }
        let name = entry.name().to_string();
        let mut text = String::new();
        if entry.read_to_string(&mut text).is_ok() {
            files.insert(name, text);
        }
    }
    let meta = files.get("TOSCA-Metadata/TOSCA.meta");
    let entry = match meta {
        Some(m) => m.lines().find_map(|l| l.strip_prefix("Entry-Definitions:")).map(|s| s.trim().to_string()),
        None => {
            let roots: Vec<&String> =
                files.keys().filter(|k| !k.contains('/') && (k.ends_with(".yaml") || k.ends_with(".yml"))).collect();
            match roots.as_slice() {
                [one] => Some((*one).clone()),
                [] => return fail("no TOSCA-Metadata/TOSCA.meta and no YAML file at the archive root; expected one of them".to_string()),
                many => return fail(format!("no TOSCA-Metadata/TOSCA.meta and several YAML files at the root ({}); expected exactly one, or a TOSCA.meta naming Entry-Definitions", many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))),
            }
        }
    };
    let Some(entry) = entry else {
        return fail("TOSCA-Metadata/TOSCA.meta has no Entry-Definitions line; expected `Entry-Definitions: <path to the service template>`".to_string());
    };
    let Some(text) = files.get(&entry) else {
        return fail(format!("Entry-Definitions names {entry:?}, which is not in the archive"));
    };
    let display = format!("{file}!{entry}");
    // Node types from every other YAML file of the archive (imports).
    let mut types = TypeTable::new();
    for (name, body) in &files {
        if name == &entry || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        if let Ok(docs) = yaml::parse(body) {
            for d in docs {
                if let Some(nt) = d.get("node_types") {
                    let mut cx = Cx::new(name);
                    read_node_types(&mut cx, nt, &FieldPath::root().key("node_types"), &mut types);
                }
            }
        }
    }
    let mut loaded = Loaded::default();
    let docs = match yaml::parse(text) {
        Ok(d) => d,
        Err((_, err)) => {
            loaded.diagnostics.push(Diagnostic {
                file: display,
                span: Some(err.span),
                path: None,
                message: err.message,
            });
            return loaded;
        }
    };
    let stem = std::path::Path::new(file).file_stem().and_then(|s| s.to_str()).map(str::to_string);
    for node in &docs {
        let mut cx = Cx::new(&display);
        if let Some((ds, notes)) = read_with_types(&mut cx, node, &types, stem.as_deref()) {
            for d in ds {
                loaded.bundle.documents.push(d);
                loaded.sources.push(Source { file: display.clone(), spans: cx.spans.clone() });
            }
            loaded.notes.extend(notes);
        }
        loaded.diagnostics.extend(cx.diagnostics);
    }
    loaded
}
