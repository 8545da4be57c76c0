//! Zonal's native YAML descriptors: `kind: Infrastructure | Service | Demand`, several
//! documents per file. The format is written for people: units on every quantity, names
//! instead of indices, and defaults for everything that has a sensible one. The field
//! reference is `docs/descriptors.md`.

use std::collections::BTreeMap;

use zonal_model::service::BUILTIN_EVALUATORS;
use zonal_model::{
    Amount, Binding, Channel, Component, Demand, DemandEntry, Document, Duration, EvaluatorRef, FieldPath,
    HardwareProfile, Host, Infrastructure, KnowledgeBase, LatencyModel, Link, Location, MeasuredLatency, Pin,
    PlacementConstraints, Port, PowerModel, Price, Protocol, Region, Resources, RunSpec, Scaling, Service, SlotProfile,
    SlotSpec, TagCandidate, TagMode, UtilitySla, WorkloadTag, Zone,
};

use crate::decode::{Cx, Fields};
use crate::yaml::Node;

/// The document kinds this reader understands.
pub const KINDS: &[&str] = &["Infrastructure", "Service", "Demand", "KnowledgeBase"];

/// Reads one native document. Returns `None` (with diagnostics recorded) when it is invalid.
pub fn read_document(cx: &mut Cx<'_>, node: &Node) -> Option<Document> {
    let root = FieldPath::root();
    let before = cx.diagnostics.len();
    let mut f = cx.fields(node, &root)?;
    let kind = match f.optional("kind") {
        Some((k, p)) => cx.string(k, &p).map(|s| (s, k.span, p)),
        None => {
            let hint = if f.has("tosca_definitions_version") {
                " (this looks like a TOSCA template: `zonal convert FILE --to yaml` turns it into a native descriptor)"
            } else {
                ""
            };
            cx.error(
                node.span,
                &root.key("kind"),
                format!("missing required field `kind`: expected one of {}{hint}", KINDS.join(", ")),
            );
            return None;
        }
    };
    let (kind, kind_span, kind_path) = kind?;
    let doc = match kind.as_str() {
        "Infrastructure" => infrastructure(cx, &mut f).map(Document::Infrastructure),
        "Service" => service(cx, &mut f).map(Document::Service),
        "Demand" => demand(cx, &mut f).map(Document::Demand),
        "KnowledgeBase" => knowledge_base(cx, &mut f).map(Document::KnowledgeBase),
        other => {
            let suggestion =
                crate::decode::closest(other, KINDS).map(|k| format!(" (did you mean {k}?)")).unwrap_or_default();
            cx.error(
                kind_span,
                &kind_path,
                format!("expected one of {}, found {other:?}{suggestion}", KINDS.join(", ")),
            );
            return None;
        }
    };
    f.finish(cx);
    if cx.diagnostics.len() > before {
        None
    } else {
        doc
    }
}

fn location(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Location> {
    let mut f = cx.fields(node, path)?;
    let lat = f.required(cx, "lat", "a latitude in degrees").and_then(|(n, p)| cx.number(n, &p, -90.0..=90.0));
    let lon = f.required(cx, "lon", "a longitude in degrees").and_then(|(n, p)| cx.number(n, &p, -180.0..=180.0));
    f.finish(cx);
    Location::new(lat?, lon?)
}

fn optional_location(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> Option<Option<Location>> {
    match f.optional("location") {
        Some((n, p)) => location(cx, n, &p).map(Some),
        None => Some(None),
    }
}

fn duration_field(cx: &mut Cx<'_>, f: &mut Fields<'_>, key: &'static str) -> Option<Option<Duration>> {
    match f.optional(key) {
        Some((n, p)) => cx.quantity(n, &p).map(Some),
        None => Some(None),
    }
}

fn flag(cx: &mut Cx<'_>, f: &mut Fields<'_>, key: &'static str, default: bool) -> bool {
    f.optional(key).and_then(|(n, p)| cx.boolean(n, &p)).unwrap_or(default)
}

// ---------------------------------------------------------------------------------------
// Infrastructure
// ---------------------------------------------------------------------------------------

fn infrastructure(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> Option<Infrastructure> {
    let mut ok = true;
    let name = f.required(cx, "name", "a name for this infrastructure").and_then(|(n, p)| cx.name(n, &p));
    let domain = f.optional("domain").and_then(|(n, p)| cx.name(n, &p));
    let zones = match f.required(cx, "zones", "a list of zones") {
        Some((n, p)) => cx.list(n, &p, zone),
        None => Vec::new(),
    };
    let links = f.optional("links").map(|(n, p)| cx.list(n, &p, link)).unwrap_or_default();
    let latencies = f.optional("latencies").map(|(n, p)| cx.list(n, &p, measured_latency)).unwrap_or_default();
    let latency_model = match f.optional("latency_model") {
        Some((n, p)) => latency_model(cx, n, &p).unwrap_or_else(|| {
            ok = false;
            LatencyModel::default()
        }),
        None => LatencyModel::default(),
    };
    let mut proximity_classes = BTreeMap::new();
    if let Some((n, p)) = f.optional("proximity_classes") {
        if let Some(mut pf) = cx.fields(n, &p) {
            for (key, _, value) in pf.entries.clone() {
                if let Some(d) = cx.quantity::<Duration>(value, &p.key(key)) {
                    proximity_classes.insert(key.to_string(), d);
                }
            }
            pf.used.iter_mut().for_each(|u| *u = true);
        }
    }
    let name = name?;
    ok.then_some(Infrastructure { name, domain, zones, links, latencies, latency_model, proximity_classes })
}

fn latency_model(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<LatencyModel> {
    let mut f = cx.fields(node, path)?;
    let d = LatencyModel::default();
    let one_way_per_km = duration_field(cx, &mut f, "one_way_per_km");
    let per_hop = duration_field(cx, &mut f, "per_hop");
    let access = duration_field(cx, &mut f, "access");
    f.finish(cx);
    Some(LatencyModel {
        one_way_per_km: one_way_per_km?.unwrap_or(d.one_way_per_km),
        per_hop: per_hop?.unwrap_or(d.per_hop),
        access: access?.unwrap_or(d.access),
    })
}

fn zone(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Zone> {
    let mut f = cx.fields(node, path)?;
    let name = f.required(cx, "name", "the zone's name").and_then(|(n, p)| cx.name(n, &p));
    let location = optional_location(cx, &mut f);
    let tier = f.optional("tier").and_then(|(n, p)| cx.name(n, &p));
    let price = match f.optional("price") {
        Some((n, p)) => price(cx, n, &p),
        None => Some(Price::default()),
    };
    let labels = f.optional("labels").map(|(n, p)| cx.string_map(n, &p)).unwrap_or_default();
    let mut hosts = Vec::new();
    if let Some((n, p)) = f.optional("hosts") {
        for group in cx.list(n, &p, host_group) {
            hosts.extend(group);
        }
    }
    f.finish(cx);
    Some(Zone { name: name?, location: location?, tier, price: price?, hosts, labels })
}

fn price(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Price> {
    let mut f = cx.fields(node, path)?;
    let mut money = |cx: &mut Cx<'_>, key: &'static str| match f.optional(key) {
        Some((n, p)) => cx.quantity(n, &p),
        None => Some(Default::default()),
    };
    let cpu_hour = money(cx, "cpu_hour");
    let memory_gib_hour = money(cx, "memory_gib_hour");
    let gpu_hour = money(cx, "gpu_hour");
    let egress_per_gb = money(cx, "egress_per_gb");
    f.finish(cx);
    Some(Price {
        cpu_hour: cpu_hour?,
        memory_gib_hour: memory_gib_hour?,
        gpu_hour: gpu_hour?,
        egress_per_gb: egress_per_gb?,
    })
}

/// A host entry; `count: N` stamps out N identical hosts named `<name>-0` … `<name>-(N-1)`.
fn host_group(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Vec<Host>> {
    let mut f = cx.fields(node, path)?;
    let name = f.required(cx, "name", "the host's name").and_then(|(n, p)| cx.name(n, &p));
    let count = match f.optional("count") {
        Some((n, p)) => cx.u32(n, &p, 1),
        None => Some(1),
    };
    let capacity = match f.required(cx, "capacity", "the host's resources, e.g. {cpu: 16, memory: 64Gi}") {
        Some((n, p)) => resources(cx, n, &p),
        None => None,
    };
    let features = f.optional("features").map(|(n, p)| cx.string_map(n, &p)).unwrap_or_default();
    let power = match f.optional("power") {
        Some((n, p)) => power(cx, n, &p),
        None => Some(PowerModel::default()),
    };
    let available = flag(cx, &mut f, "available", true);
    f.finish(cx);
    let (name, count, capacity, power) = (name?, count?, capacity?, power?);
    let host = |name: String| Host { name, capacity: capacity.clone(), features: features.clone(), power, available };
    Some(if count == 1 { vec![host(name)] } else { (0..count).map(|i| host(format!("{name}-{i}"))).collect() })
}

fn power(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<PowerModel> {
    let mut f = cx.fields(node, path)?;
    let idle = f.required(cx, "idle", "the idle power, e.g. 90W").and_then(|(n, p)| cx.quantity(n, &p));
    let max = f.required(cx, "max", "the power at full load, e.g. 250W").and_then(|(n, p)| cx.quantity(n, &p));
    f.finish(cx);
    Some(PowerModel { idle: idle?, max: max? })
}

/// A resource vector: `{cpu: 500m, memory: 256Mi, gpu: 1}`.
fn resources(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Resources> {
    let mut f = cx.fields(node, path)?;
    let mut out = Resources::new();
    let mut ok = true;
    for (key, _, value) in f.entries.clone() {
        let p = path.key(key);
        let Some(text) = cx.string(value, &p) else {
            ok = false;
            continue;
        };
        match Amount::parse(key, &text) {
            Ok(a) => {
                out.0.insert(key.to_string(), a);
            }
            Err(e) => {
                cx.error(value.span, &p, format!("expected {}, found {}", e.expected, value.describe()));
                ok = false;
            }
        }
    }
    f.used.iter_mut().for_each(|u| *u = true);
    ok.then_some(out)
}

fn link(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Link> {
    let mut f = cx.fields(node, path)?;
    let from = f.required(cx, "from", "a zone name").and_then(|(n, p)| cx.name(n, &p));
    let to = f.required(cx, "to", "a zone name").and_then(|(n, p)| cx.name(n, &p));
    let latency = duration_field(cx, &mut f, "latency");
    let bandwidth = match f.optional("bandwidth") {
        Some((n, p)) => cx.quantity(n, &p).map(Some),
        None => Some(None),
    };
    let cost_per_gb = match f.optional("cost_per_gb") {
        Some((n, p)) => cx.quantity(n, &p),
        None => Some(Default::default()),
    };
    f.finish(cx);
    Some(Link { from: from?, to: to?, latency: latency?, bandwidth: bandwidth?, cost_per_gb: cost_per_gb? })
}

fn measured_latency(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<MeasuredLatency> {
    let mut f = cx.fields(node, path)?;
    let from = f.required(cx, "from", "a zone or region name").and_then(|(n, p)| cx.name(n, &p));
    let to = f.required(cx, "to", "a zone or region name").and_then(|(n, p)| cx.name(n, &p));
    let rtt = f.required(cx, "rtt", "a round-trip time, e.g. 12ms").and_then(|(n, p)| cx.quantity(n, &p));
    f.finish(cx);
    Some(MeasuredLatency { from: from?, to: to?, rtt: rtt? })
}

// ---------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------

fn service(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> Option<Service> {
    let name = f.required(cx, "name", "the service's name").and_then(|(n, p)| cx.name(n, &p));
    let description = f.optional("description").and_then(|(n, p)| cx.string(n, &p));
    let owner = f.optional("owner").and_then(|(n, p)| cx.name(n, &p));
    let entry = f.optional("entry").and_then(|(n, p)| cx.name(n, &p));
    let sla = match f.optional("sla") {
        Some((n, p)) => utility_sla(cx, n, &p).map(Some),
        None => Some(None),
    };
    let proximity = f.optional("proximity").and_then(|(n, p)| cx.name(n, &p));
    let session_bandwidth = match f.optional("session_bandwidth") {
        Some((n, p)) => cx.quantity(n, &p).map(Some),
        None => Some(None),
    };
    let evaluator = match f.optional("evaluator") {
        Some((n, p)) => evaluator(cx, n, &p).map(Some),
        None => Some(None),
    };
    let reuse_existing = flag(cx, f, "reuse_existing", true);
    let share = f.optional("share").map(|(n, p)| shared_with(cx, n, &p)).unwrap_or_default();
    let binding = match f.optional("binding") {
        Some((n, p)) => match cx.string(n, &p).as_deref() {
            Some("static") => Some(Binding::Static),
            Some("late") => Some(Binding::Late),
            Some(_) => {
                cx.error(n.span, &p, format!("expected `static` or `late`, found {}", n.describe()));
                None
            }
            None => None,
        },
        None => Some(Binding::default()),
    };
    let entry_name = entry.clone();
    let components: Vec<Component> = match f.required(cx, "components", "a list of components") {
        Some((n, p)) => {
            let first = n
                .as_seq()
                .and_then(|s| s.first())
                .and_then(|c| c.get("name"))
                .and_then(|n| n.as_scalar())
                .map(|s| s.text.clone());
            let entry_of_service = entry_name.or(first);
            cx.list(n, &p, |cx, node, path| component(cx, node, path, entry_of_service.as_deref()))
        }
        None => Vec::new(),
    };
    let channels = f.optional("channels").map(|(n, p)| cx.list(n, &p, channel)).unwrap_or_default();
    Some(Service {
        name: name?,
        description,
        owner,
        components,
        channels,
        entry,
        sla: sla?,
        proximity,
        session_bandwidth: session_bandwidth?,
        evaluator: evaluator?,
        reuse_existing,
        share,
        binding: binding?,
    })
}

/// `share: [provider, …]`: the providers whose services may use this service's instances,
/// named like users (`zonal token create --name`), each once. No wildcard: sharing hands
/// another provider's sessions to this service's code, so each provider is named, and a
/// provider created later is not included by accident.
fn shared_with(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    cx.list(node, path, |cx, n, p| {
        let text = cx.string(n, p)?;
        let problem = if text == "*" {
            Some("expected a provider's name; `*` (every provider) is not accepted: name each provider that may use this service's instances".to_string())
        } else if let Some(why) = zonal_model::names::api_name_problem(&text) {
            Some(format!("expected a provider's name: {why}"))
        } else if !seen.insert(text.clone()) {
            Some(format!("provider {text:?} is listed twice; name each provider once"))
        } else {
            None
        };
        match problem {
            Some(message) => {
                cx.error(n.span, p, message);
                None
            }
            None => Some(text),
        }
    })
}

fn utility_sla(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<UtilitySla> {
    let mut f = cx.fields(node, path)?;
    let d = UtilitySla::default();
    let r_min = duration_field(cx, &mut f, "r_min");
    let r_med = duration_field(cx, &mut f, "r_med");
    let r_max = duration_field(cx, &mut f, "r_max");
    let importance = match f.optional("importance") {
        Some((n, p)) => cx.number(n, &p, 1.0..=f64::INFINITY),
        None => Some(d.importance),
    };
    f.finish(cx);
    Some(UtilitySla {
        r_min: r_min?.unwrap_or(d.r_min),
        r_med: r_med?.unwrap_or(d.r_med),
        r_max: r_max?.unwrap_or(d.r_max),
        importance: importance?,
    })
}

fn evaluator(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<EvaluatorRef> {
    let mut f = cx.fields(node, path)?;
    let builtin = f.optional("builtin");
    let url = f.optional("url");
    let comp = f.optional("component");
    let result = match (builtin, url, comp) {
        (Some((n, p)), None, None) => {
            let name = cx.name(n, &p)?;
            if !BUILTIN_EVALUATORS.contains(&name.as_str()) {
                cx.error(
                    n.span,
                    &p,
                    format!(
                        "expected one of the built-in evaluators {}, found {name:?}",
                        BUILTIN_EVALUATORS.join(", ")
                    ),
                );
                None
            } else {
                Some(EvaluatorRef::Builtin { name })
            }
        }
        (None, Some((n, p)), None) => cx.string(n, &p).map(|url| EvaluatorRef::Http { url }),
        (None, None, Some((n, p))) => cx.name(n, &p).map(|component| EvaluatorRef::Component { component }),
        _ => {
            cx.error(node.span, path, "expected exactly one of `builtin`, `url` or `component`");
            None
        }
    };
    f.finish(cx);
    result
}

fn component(cx: &mut Cx<'_>, node: &Node, path: &FieldPath, entry: Option<&str>) -> Option<Component> {
    let mut f = cx.fields(node, path)?;
    let name = f.required(cx, "name", "the component's name").and_then(|(n, p)| cx.name(n, &p));
    let run = match f.optional("run") {
        Some((n, p)) => run_spec(cx, n, &p),
        None => Some(RunSpec::None),
    };
    let resources = match f.optional("resources") {
        Some((n, p)) => resources(cx, n, &p),
        None => Some(Resources::new()),
    };
    let slots = match f.optional("slots") {
        Some((n, p)) => slot_spec(cx, n, &p),
        None => Some(SlotSpec::default()),
    };
    let scaling = match f.optional("scaling") {
        Some((n, p)) => scaling(cx, n, &p),
        None => Some(Scaling::default()),
    };
    let placement = match f.optional("placement") {
        Some((n, p)) => placement(cx, n, &p),
        None => Some(PlacementConstraints::default()),
    };
    let evaluator = match f.optional("evaluator") {
        Some((n, p)) => evaluator(cx, n, &p).map(Some),
        None => Some(None),
    };
    let supports_overlay = flag(cx, &mut f, "supports_overlay", false);
    let tag = f.optional("tag").and_then(|(n, p)| cx.name(n, &p));
    let ports = f.optional("ports").map(|(n, p)| cx.list(n, &p, port)).unwrap_or_default();
    let is_entry = name.is_some() && name.as_deref() == entry;
    let public = flag(cx, &mut f, "public", is_entry);
    let user_side = flag(cx, &mut f, "user_side", false);
    f.finish(cx);
    Some(Component {
        name: name?,
        run: run?,
        resources: resources?,
        slots: slots?,
        scaling: scaling?,
        placement: placement?,
        evaluator: evaluator?,
        supports_overlay,
        tag,
        ports,
        public,
        user_side,
    })
}

/// `run: "zonal workload --slots 10"`, `run: {command: [...], env: {...}}` or
/// `run: {image: registry/app:1.0, command: [...], env: {...}}`.
fn run_spec(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<RunSpec> {
    if let Some(s) = node.as_scalar() {
        let argv: Vec<String> = s.text.split_whitespace().map(str::to_string).collect();
        if argv.is_empty() {
            cx.error(node.span, path, "expected a command line, found an empty string");
            return None;
        }
        cx.spans.insert(path.clone(), node.span);
        return Some(RunSpec::Command { argv, env: BTreeMap::new() });
    }
    let mut f = cx.fields(node, path)?;
    let image = f.optional("image").and_then(|(n, p)| cx.string(n, &p));
    let command = match f.optional("command") {
        Some((n, p)) => {
            if let Some(s) = n.as_scalar() {
                Some(s.text.split_whitespace().map(str::to_string).collect())
            } else {
                Some(cx.list(n, &p, |cx, n, p| cx.string(n, p)))
            }
        }
        None => None,
    };
    let env = f.optional("env").map(|(n, p)| cx.string_map(n, &p)).unwrap_or_default();
    f.finish(cx);
    match (image, command) {
        (Some(image), command) => Some(RunSpec::Image { image, command: command.unwrap_or_default(), env }),
        (None, Some(argv)) if !argv.is_empty() => Some(RunSpec::Command { argv, env }),
        _ => {
            cx.error(
                node.span,
                path,
                "expected `command` (a program and its arguments) or `image` (a container image)",
            );
            None
        }
    }
}

fn slot_spec(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<SlotSpec> {
    let mut f = cx.fields(node, path)?;
    let per_instance = match f.optional("per_instance") {
        Some((n, p)) => cx.u32(n, &p, 1),
        None => Some(1),
    };
    let min_free = match f.optional("min_free") {
        Some((n, p)) => cx.u32(n, &p, 0),
        None => Some(0),
    };
    f.finish(cx);
    Some(SlotSpec { per_instance: per_instance?, min_free: min_free? })
}

fn scaling(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Scaling> {
    let mut f = cx.fields(node, path)?;
    let min = match f.optional("min_instances") {
        Some((n, p)) => cx.u32(n, &p, 0),
        None => Some(1),
    };
    let max = match f.optional("max_instances") {
        Some((n, p)) => cx.u32(n, &p, 1),
        None => min.map(|m| m.max(1)),
    };
    f.finish(cx);
    Some(Scaling { min_instances: min?, max_instances: max? })
}

fn placement(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<PlacementConstraints> {
    let mut f = cx.fields(node, path)?;
    let requires = f.optional("requires").map(|(n, p)| cx.string_map(n, &p)).unwrap_or_default();
    let zones = f.optional("zones").map(|(n, p)| cx.names(n, &p)).unwrap_or_default();
    let avoid_zones = f.optional("avoid_zones").map(|(n, p)| cx.names(n, &p)).unwrap_or_default();
    let affinity = f.optional("affinity").map(|(n, p)| cx.names(n, &p)).unwrap_or_default();
    let anti_affinity = f.optional("anti_affinity").map(|(n, p)| cx.names(n, &p)).unwrap_or_default();
    let proximity = f.optional("proximity").and_then(|(n, p)| cx.name(n, &p));
    let pin = match f.optional("pin") {
        Some((n, p)) => pin(cx, n, &p).map(Some),
        None => Some(None),
    };
    f.finish(cx);
    Some(PlacementConstraints { requires, zones, avoid_zones, affinity, anti_affinity, proximity, pin: pin? })
}

fn pin(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Pin> {
    let mut f = cx.fields(node, path)?;
    let zone = f.required(cx, "zone", "the zone the component is pinned to").and_then(|(n, p)| cx.name(n, &p));
    let host = f.optional("host").and_then(|(n, p)| cx.name(n, &p));
    f.finish(cx);
    Some(Pin { zone: zone?, host })
}

fn port(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Port> {
    let mut f = cx.fields(node, path)?;
    let name = f.required(cx, "name", "the port's name").and_then(|(n, p)| cx.name(n, &p));
    let number = match f.optional("port") {
        Some((n, p)) => match cx.uint(n, &p, 1) {
            Some(v) if v <= 65535 => Some(Some(v as u16)),
            Some(v) => {
                cx.error(n.span, &p, format!("expected a port number between 1 and 65535, found {v}"));
                None
            }
            None => None,
        },
        None => Some(None),
    };
    let protocol = match f.optional("protocol") {
        Some((n, p)) => match cx.string(n, &p).as_deref() {
            Some("tcp") => Some(Protocol::Tcp),
            Some("http") => Some(Protocol::Http),
            Some("udp") => Some(Protocol::Udp),
            Some(_) => {
                cx.error(n.span, &p, format!("expected tcp, http or udp, found {}", n.describe()));
                None
            }
            None => None,
        },
        None => Some(Protocol::Tcp),
    };
    f.finish(cx);
    Some(Port { name: name?, port: number?, protocol: protocol? })
}

fn channel(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Channel> {
    let mut f = cx.fields(node, path)?;
    let from = f.required(cx, "from", "a component name").and_then(|(n, p)| cx.name(n, &p));
    let to = f.required(cx, "to", "a component name").and_then(|(n, p)| cx.name(n, &p));
    let bandwidth = match f.optional("bandwidth") {
        Some((n, p)) => cx.quantity(n, &p).map(Some),
        None => Some(None),
    };
    let max_latency = duration_field(cx, &mut f, "max_latency");
    f.finish(cx);
    Some(Channel { from: from?, to: to?, bandwidth: bandwidth?, max_latency: max_latency? })
}

// ---------------------------------------------------------------------------------------
// Demand
// ---------------------------------------------------------------------------------------

fn demand(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> Option<Demand> {
    let name = f.required(cx, "name", "a name for this demand").and_then(|(n, p)| cx.name(n, &p));
    let regions = match f.required(cx, "regions", "a list of user regions") {
        Some((n, p)) => cx.list(n, &p, region),
        None => Vec::new(),
    };
    let entries = f.optional("demand").map(|(n, p)| cx.list(n, &p, demand_entry)).unwrap_or_default();
    Some(Demand { name: name?, regions, entries })
}

fn region(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Region> {
    let mut f = cx.fields(node, path)?;
    let name = f.required(cx, "name", "the region's name").and_then(|(n, p)| cx.name(n, &p));
    let location = optional_location(cx, &mut f);
    let weight = match f.optional("weight") {
        Some((n, p)) => cx.number(n, &p, f64::MIN_POSITIVE..=f64::INFINITY),
        None => Some(1.0),
    };
    let attach = f.optional("attach").and_then(|(n, p)| cx.name(n, &p));
    f.finish(cx);
    Some(Region { name: name?, location: location?, weight: weight?, attach })
}

fn demand_entry(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<DemandEntry> {
    let mut f = cx.fields(node, path)?;
    let service = f.required(cx, "service", "a service name").and_then(|(n, p)| cx.name(n, &p));
    let region = f.required(cx, "region", "a region name").and_then(|(n, p)| cx.name(n, &p));
    let slots = match f.required(cx, "slots", "a number of slots, or a mapping of start times to slots") {
        Some((n, p)) => slot_profile(cx, n, &p),
        None => None,
    };
    let sla = match f.optional("sla") {
        Some((n, p)) => utility_sla(cx, n, &p).map(Some),
        None => Some(None),
    };
    let session_bandwidth = match f.optional("session_bandwidth") {
        Some((n, p)) => cx.quantity(n, &p).map(Some),
        None => Some(None),
    };
    f.finish(cx);
    Some(DemandEntry {
        service: service?,
        region: region?,
        slots: slots?,
        sla: sla?,
        session_bandwidth: session_bandwidth?,
    })
}

/// `slots: 40` or `slots: {"06:00": 10, "18:00": 40}`.
fn slot_profile(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<SlotProfile> {
    if node.as_scalar().is_some() {
        return cx.u32(node, path, 0).map(SlotProfile::Constant);
    }
    let mut f = cx.fields(node, path)?;
    let mut windows = Vec::new();
    let mut ok = true;
    for (key, key_span, value) in f.entries.clone() {
        let p = path.key(key);
        match key.parse::<zonal_model::TimeOfDay>() {
            Ok(t) => match cx.u32(value, &p, 0) {
                Some(n) => windows.push((t, n)),
                None => ok = false,
            },
            Err(e) => {
                cx.error(key_span, &p, format!("expected {} as a window start, found {key:?}", e.expected));
                ok = false;
            }
        }
    }
    f.used.iter_mut().for_each(|u| *u = true);
    windows.sort_by_key(|(t, _)| *t);
    (ok && !windows.is_empty()).then_some(SlotProfile::Windows(windows)).or_else(|| {
        if ok {
            cx.error(node.span, path, "expected at least one window");
        }
        None
    })
}

// ---------------------------------------------------------------------------------------
// Knowledge base
// ---------------------------------------------------------------------------------------

fn knowledge_base(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> Option<KnowledgeBase> {
    let name = f.required(cx, "name", "a name for this knowledge base").and_then(|(n, p)| cx.name(n, &p));
    let profiles = match f.required(cx, "profiles", "a list of hardware profiles") {
        Some((n, p)) => cx.list(n, &p, hardware_profile),
        None => Vec::new(),
    };
    let tags = match f.required(cx, "tags", "a list of workload tags") {
        Some((n, p)) => cx.list(n, &p, workload_tag),
        None => Vec::new(),
    };
    Some(KnowledgeBase { name: name?, profiles, tags })
}

fn hardware_profile(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<HardwareProfile> {
    let mut f = cx.fields(node, path)?;
    let name = f.required(cx, "name", "the profile's name").and_then(|(n, p)| cx.name(n, &p));
    let arch = f.optional("arch").and_then(|(n, p)| cx.name(n, &p));
    let res = match f.required(cx, "resources", "the resources an instance gets, e.g. {cpu: 4, memory: 16Gi}") {
        Some((n, p)) => resources(cx, n, &p),
        None => None,
    };
    let accelerator = f.optional("accelerator").and_then(|(n, p)| cx.name(n, &p));
    f.finish(cx);
    Some(HardwareProfile { name: name?, arch, resources: res?, accelerator })
}

fn workload_tag(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<WorkloadTag> {
    let mut f = cx.fields(node, path)?;
    let name = f.required(cx, "name", "the tag").and_then(|(n, p)| cx.name(n, &p));
    let mode = match f.optional("mode") {
        Some((n, p)) => match cx.string(n, &p).as_deref() {
            Some("exact") => Some(TagMode::Exact),
            Some("hint") => Some(TagMode::Hint),
            Some(_) => {
                cx.error(n.span, &p, format!("expected `exact` or `hint`, found {}", n.describe()));
                None
            }
            None => None,
        },
        None => Some(TagMode::Hint),
    };
    let candidates = match f.required(cx, "candidates", "a list of {profile, performance}") {
        Some((n, p)) => cx.list(n, &p, |cx, node, path| {
            let mut f = cx.fields(node, path)?;
            let profile = f.required(cx, "profile", "a profile name").and_then(|(n, p)| cx.name(n, &p));
            let performance = match f.optional("performance") {
                Some((n, p)) => cx.number(n, &p, f64::MIN_POSITIVE..=f64::INFINITY),
                None => Some(1.0),
            };
            f.finish(cx);
            Some(TagCandidate { profile: profile?, performance: performance? })
        }),
        None => Vec::new(),
    };
    f.finish(cx);
    Some(WorkloadTag { name: name?, mode: mode?, candidates })
}
