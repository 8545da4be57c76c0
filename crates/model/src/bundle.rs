//! A bundle of documents read together, and the checks that need more than one field.
//!
//! Field-level checks (types, units, ranges) happen where documents are read. The checks here
//! look across fields and documents: names that must exist, bounds that must be ordered, units
//! that must agree. References to a kind of document that is not in the bundle are not
//! checked (validating a service alone must not demand an infrastructure).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::demand::{Demand, SlotProfile};
use crate::geo::Location;
use crate::infra::Infrastructure;
use crate::kb::{KnowledgeBase, TagMode};
use crate::path::{FieldPath, ModelError};
use crate::resources::ResourceUnit;
use crate::service::{EvaluatorRef, Service, BUILTIN_EVALUATORS};
use crate::units::Duration;

/// One document of any kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Document {
    Infrastructure(Infrastructure),
    Service(Service),
    Demand(Demand),
    KnowledgeBase(KnowledgeBase),
}

impl Document {
    pub fn kind(&self) -> &'static str {
        match self {
            Document::Infrastructure(_) => "Infrastructure",
            Document::Service(_) => "Service",
            Document::Demand(_) => "Demand",
            Document::KnowledgeBase(_) => "KnowledgeBase",
        }
    }
    pub fn name(&self) -> &str {
        match self {
            Document::Infrastructure(d) => &d.name,
            Document::Service(d) => &d.name,
            Document::Demand(d) => &d.name,
            Document::KnowledgeBase(d) => &d.name,
        }
    }
}

/// Documents read together, in the order they were given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub documents: Vec<Document>,
}

impl Bundle {
    pub fn new(documents: Vec<Document>) -> Self {
        Bundle { documents }
    }

    pub fn infrastructures(&self) -> impl Iterator<Item = &Infrastructure> {
        self.documents.iter().filter_map(|d| match d {
            Document::Infrastructure(i) => Some(i),
            _ => None,
        })
    }
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.documents.iter().filter_map(|d| match d {
            Document::Service(s) => Some(s),
            _ => None,
        })
    }
    pub fn demands(&self) -> impl Iterator<Item = &Demand> {
        self.documents.iter().filter_map(|d| match d {
            Document::Demand(x) => Some(x),
            _ => None,
        })
    }
    pub fn knowledge_bases(&self) -> impl Iterator<Item = &KnowledgeBase> {
        self.documents.iter().filter_map(|d| match d {
            Document::KnowledgeBase(k) => Some(k),
            _ => None,
        })
    }
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services().find(|s| s.name == name)
    }

    /// All infrastructure documents merged into one (zones, links and latencies concatenated;
    /// the first document's name, domain and latency model win).
    pub fn infrastructure(&self) -> Infrastructure {
        let mut merged: Option<Infrastructure> = None;
        for infra in self.infrastructures() {
            match &mut merged {
                None => merged = Some(infra.clone()),
                Some(m) => {
                    m.zones.extend(infra.zones.iter().cloned());
                    m.links.extend(infra.links.iter().cloned());
                    m.latencies.extend(infra.latencies.iter().cloned());
                    for (k, v) in &infra.proximity_classes {
                        m.proximity_classes.entry(k.clone()).or_insert(*v);
                    }
                }
            }
        }
        merged.unwrap_or_default()
    }

    /// All demand documents merged into one.
    pub fn demand(&self) -> Demand {
        let mut merged = Demand::default();
        for d in self.demands() {
            if merged.name.is_empty() {
                merged.name = d.name.clone();
            }
            merged.regions.extend(d.regions.iter().cloned());
            merged.entries.extend(d.entries.iter().cloned());
        }
        merged
    }

    /// Every cross-field and cross-document problem, sorted by document and path.
    pub fn validate(&self) -> Vec<ModelError> {
        let mut v = Validator { bundle: self, errors: Vec::new(), context: Context::build(self) };
        for (i, doc) in self.documents.iter().enumerate() {
            if let Some(problem) = crate::names::name_problem(doc.name()) {
                v.error(i, FieldPath::root().key("name"), format!("{} name: {problem}", doc.kind().to_lowercase()));
            }
            match doc {
                Document::Infrastructure(infra) => v.infrastructure(i, infra),
                Document::Service(s) => v.service(i, s),
                Document::Demand(d) => v.demand(i, d),
                Document::KnowledgeBase(k) => v.knowledge_base(i, k),
            }
        }
        v.duplicates_across_documents();
        v.errors.sort();
        v.errors.dedup();
        v.errors
    }
}

/// Names gathered from all documents, for reference checks.
struct Context {
    has_infrastructure: bool,
    /// Without a demand document, user region names cannot be checked (they come later, e.g.
    /// `zonal apply -f demand.yaml` after `zonal up -f infrastructure.yaml`).
    has_demand: bool,
    has_services: bool,
    zones: BTreeMap<String, BTreeSet<String>>,
    regions: BTreeSet<String>,
    services: BTreeSet<String>,
    /// For each resource name offered by some host, the unit it is offered in.
    resource_units: BTreeMap<String, ResourceUnit>,
    /// Feature key → values offered by some host.
    features: BTreeMap<String, BTreeSet<String>>,
    proximity_classes: BTreeMap<String, Duration>,
    /// Workload tags defined by knowledge bases (`None` when no knowledge base was given).
    tags: Option<BTreeSet<String>>,
}

impl Context {
    fn build(bundle: &Bundle) -> Self {
        let infra = bundle.infrastructure();
        let mut resource_units = BTreeMap::new();
        let mut features: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut zones = BTreeMap::new();
        for z in &infra.zones {
            zones.insert(z.name.clone(), z.hosts.iter().map(|h| h.name.clone()).collect());
            for h in &z.hosts {
                for (name, amount) in &h.capacity.0 {
                    resource_units.entry(name.clone()).or_insert(amount.unit);
                }
                for (k, val) in &h.features {
                    features.entry(k.clone()).or_default().insert(val.clone());
                }
            }
        }
        Context {
            has_infrastructure: bundle.infrastructures().next().is_some(),
            has_demand: bundle.demands().next().is_some(),
            has_services: bundle.services().next().is_some(),
            zones,
            regions: bundle.demands().flat_map(|d| d.regions.iter().map(|r| r.name.clone())).collect(),
            services: bundle.services().map(|s| s.name.clone()).collect(),
            resource_units,
            features,
            proximity_classes: infra.proximity_classes(),
            tags: bundle
                .knowledge_bases()
                .next()
                .map(|_| bundle.knowledge_bases().flat_map(|k| k.tags.iter().map(|t| t.name.clone())).collect()),
        }
    }
}

struct Validator<'a> {
    bundle: &'a Bundle,
    errors: Vec<ModelError>,
    context: Context,
}

fn list(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| n.as_ref().to_string()).collect();
    if names.is_empty() {
        "none are defined".to_string()
    } else if names.len() > 8 {
        format!("{}, … ({} in all)", names[..8].join(", "), names.len())
    } else {
        names.join(", ")
    }
}

impl Validator<'_> {
    fn error(&mut self, document: usize, path: FieldPath, message: impl Into<String>) {
        self.errors.push(ModelError { document, path, message: message.into() });
    }

    /// Reports names that occur more than once in `names`, at the later occurrences.
    fn unique<'n>(&mut self, doc: usize, what: &str, names: impl Iterator<Item = (FieldPath, &'n str)>) {
        let mut seen = HashSet::new();
        for (path, name) in names {
            if let Some(problem) = crate::names::name_problem(name) {
                self.error(doc, path, format!("{what} name: {problem}"));
            } else if !seen.insert(name) {
                self.error(doc, path, format!("duplicate {what} name {name:?}: each {what} needs its own name"));
            }
        }
    }

    fn zone_exists(&mut self, doc: usize, path: FieldPath, zone: &str) {
        if self.context.has_infrastructure && !self.context.zones.contains_key(zone) {
            let known = list(self.context.zones.keys());
            self.error(
                doc,
                path,
                format!("unknown zone {zone:?}; expected one of the infrastructure's zones ({known})"),
            );
        }
    }

    fn infrastructure(&mut self, doc: usize, infra: &Infrastructure) {
        let root = FieldPath::root();
        self.unique(
            doc,
            "zone",
            infra.zones.iter().enumerate().map(|(i, z)| (root.key("zones").index(i).key("name"), z.name.as_str())),
        );
        for (zi, zone) in infra.zones.iter().enumerate() {
            let zp = root.key("zones").index(zi);
            self.unique(
                doc,
                "host",
                zone.hosts.iter().enumerate().map(|(i, h)| (zp.key("hosts").index(i).key("name"), h.name.as_str())),
            );
            if let Some(l) = &zone.location {
                if let Some(p) = Location::problem(l.lat, l.lon) {
                    self.error(doc, zp.key("location"), p);
                }
            }
            for (hi, host) in zone.hosts.iter().enumerate() {
                let hp = zp.key("hosts").index(hi);
                for (name, p) in host.capacity.problems() {
                    self.error(doc, hp.key("capacity").key(&name), p);
                }
                if host.power.max < host.power.idle {
                    self.error(
                        doc,
                        hp.key("power").key("max"),
                        format!(
                            "expected maximum power at least the idle power ({}), found {}",
                            host.power.idle, host.power.max
                        ),
                    );
                }
            }
        }
        let zone_names: BTreeSet<&str> = infra.zones.iter().map(|z| z.name.as_str()).collect();
        let mut seen_links = HashSet::new();
        for (li, link) in infra.links.iter().enumerate() {
            let lp = root.key("links").index(li);
            for (field, name) in [("from", &link.from), ("to", &link.to)] {
                if !zone_names.contains(name.as_str()) && !self.context.zones.contains_key(name) {
                    let known = list(&zone_names);
                    self.error(
                        doc,
                        lp.key(field),
                        format!("unknown zone {name:?}; expected one of this infrastructure's zones ({known})"),
                    );
                }
            }
            if link.from == link.to {
                self.error(
                    doc,
                    lp.key("to"),
                    format!("a link from {:?} to itself; expected two different zones", link.from),
                );
            }
            let key = if link.from <= link.to { (&link.from, &link.to) } else { (&link.to, &link.from) };
            if !seen_links.insert(key) {
                self.error(
                    doc,
                    lp.clone(),
                    format!("duplicate link between {:?} and {:?}; merge them into one", link.from, link.to),
                );
            }
        }
        for (i, m) in infra.latencies.iter().enumerate() {
            let mp = root.key("latencies").index(i);
            let zone_end = self.context.zones.contains_key(&m.from) || self.context.zones.contains_key(&m.to);
            if !self.context.has_demand && !zone_end {
                self.error(
                    doc,
                    mp.clone(),
                    format!(
                        "neither {:?} nor {:?} is a zone; a measured latency needs a zone at one end",
                        m.from, m.to
                    ),
                );
            }
            for (field, name) in [("from", &m.from), ("to", &m.to)] {
                let known = self.context.zones.contains_key(name) || self.context.regions.contains(name);
                if !known && self.context.has_demand {
                    self.error(doc, mp.key(field), format!("unknown place {name:?}; expected a zone or a user region"));
                }
            }
        }
        for (name, d) in &infra.proximity_classes {
            if d.as_millis() <= 0.0 {
                self.error(doc, root.key("proximity_classes").key(name), "expected a positive latency bound");
            }
        }
    }

    fn service(&mut self, doc: usize, s: &Service) {
        let root = FieldPath::root();
        if s.components.is_empty() {
            self.error(doc, root.key("components"), "expected at least one component");
        }
        self.unique(
            doc,
            "component",
            s.components
                .iter()
                .enumerate()
                .map(|(i, c)| (root.key("components").index(i).key("name"), c.name.as_str())),
        );
        let names: BTreeSet<&str> = s.components.iter().map(|c| c.name.as_str()).collect();
        let component_ref = |v: &mut Self, path: FieldPath, name: &str| {
            if !names.contains(name) {
                v.error(
                    doc,
                    path,
                    format!(
                        "unknown component {name:?}; expected one of service {:?}'s components ({})",
                        s.name,
                        list(&names)
                    ),
                );
            }
        };
        for (ci, ch) in s.channels.iter().enumerate() {
            let cp = root.key("channels").index(ci);
            component_ref(self, cp.key("from"), &ch.from);
            component_ref(self, cp.key("to"), &ch.to);
            if ch.from == ch.to {
                self.error(
                    doc,
                    cp.key("to"),
                    format!("a channel from {:?} to itself; expected two different components", ch.from),
                );
            }
        }
        if let Some(entry) = &s.entry {
            component_ref(self, root.key("entry"), entry);
        }
        if let Some(sla) = &s.sla {
            for (field, msg) in sla.problems() {
                self.error(doc, root.key("sla").key(field), msg);
            }
        }
        if let Some(p) = &s.proximity {
            self.proximity_exists(doc, root.key("proximity"), p);
        }
        if let Some(e) = &s.evaluator {
            self.evaluator(doc, root.key("evaluator"), e, &names);
        }
        for (ci, c) in s.components.iter().enumerate() {
            let cp = root.key("components").index(ci);
            use crate::limits::{at_most, MAX_INSTANCES, MAX_SLOTS_PER_INSTANCE};
            for (field, value, max, what) in [
                ("slots.per_instance", c.slots.per_instance, MAX_SLOTS_PER_INSTANCE, "slots per instance"),
                ("slots.min_free", c.slots.min_free, MAX_SLOTS_PER_INSTANCE, "free slots"),
                ("scaling.min_instances", c.scaling.min_instances, MAX_INSTANCES, "instances per zone"),
                ("scaling.max_instances", c.scaling.max_instances, MAX_INSTANCES, "instances per zone"),
            ] {
                if let Some(p) = at_most(value, max, what) {
                    let (a, b) = field.split_once('.').unwrap_or((field, ""));
                    self.error(doc, cp.key(a).key(b), p);
                }
            }
            if c.slots.per_instance == 0 {
                self.error(doc, cp.key("slots").key("per_instance"), "expected at least 1 slot per instance, found 0");
            }
            for (name, p) in c.resources.problems() {
                self.error(doc, cp.key("resources").key(&name), p);
            }
            self.unique(
                doc,
                "port",
                c.ports.iter().enumerate().map(|(i, p)| (cp.key("ports").index(i).key("name"), p.name.as_str())),
            );
            if c.scaling.max_instances == 0 {
                self.error(doc, cp.key("scaling").key("max_instances"), "expected at least 1 instance, found 0");
            }
            if c.scaling.min_instances > c.scaling.max_instances {
                self.error(
                    doc,
                    cp.key("scaling").key("min_instances"),
                    format!(
                        "expected min_instances at most max_instances ({}), found {}",
                        c.scaling.max_instances, c.scaling.min_instances
                    ),
                );
            }
            let reachable = u64::from(c.slots.per_instance) * u64::from(c.scaling.max_instances);
            if u64::from(c.slots.min_free) > reachable {
                self.error(
                    doc,
                    cp.key("slots").key("min_free"),
                    format!(
                        "{} free slots can never be kept: at most {} instances × {} slots = {reachable}",
                        c.slots.min_free, c.scaling.max_instances, c.slots.per_instance
                    ),
                );
            }
            let pp = cp.key("placement");
            for (field, list_) in [("affinity", &c.placement.affinity), ("anti_affinity", &c.placement.anti_affinity)] {
                for (i, other) in list_.iter().enumerate() {
                    component_ref(self, pp.key(field).index(i), other);
                    if other == &c.name {
                        self.error(
                            doc,
                            pp.key(field).index(i),
                            format!("component {:?} names itself; expected another component", c.name),
                        );
                    }
                }
            }
            for (field, zones) in [("zones", &c.placement.zones), ("avoid_zones", &c.placement.avoid_zones)] {
                for (i, z) in zones.iter().enumerate() {
                    self.zone_exists(doc, pp.key(field).index(i), z);
                }
            }
            if let Some(p) = &c.placement.proximity {
                self.proximity_exists(doc, pp.key("proximity"), p);
            }
            if let Some(pin) = &c.placement.pin {
                self.zone_exists(doc, pp.key("pin").key("zone"), &pin.zone);
                if let (Some(host), Some(hosts)) = (&pin.host, self.context.zones.get(&pin.zone)) {
                    if !hosts.contains(host) {
                        let known = list(hosts);
                        self.error(
                            doc,
                            pp.key("pin").key("host"),
                            format!("unknown host {host:?} in zone {:?}; expected one of {known}", pin.zone),
                        );
                    }
                }
            }
            if let Some(e) = &c.evaluator {
                self.evaluator(doc, cp.key("evaluator"), e, &names);
            }
            if let (Some(tag), Some(tags)) = (&c.tag, &self.context.tags) {
                if !tags.contains(tag) {
                    let known = list(tags);
                    self.error(
                        doc,
                        cp.key("tag"),
                        format!("unknown workload tag {tag:?}; the knowledge base defines {known}"),
                    );
                }
            }
            if self.context.has_infrastructure {
                for (name, amount) in &c.resources.0 {
                    match self.context.resource_units.get(name) {
                        None if amount.value > 0 => {
                            let known = list(self.context.resource_units.keys());
                            self.error(
                                doc,
                                cp.key("resources").key(name),
                                format!("no host offers resource {name:?}; hosts offer {known}"),
                            );
                        }
                        Some(unit) if *unit != amount.unit => self.error(
                            doc,
                            cp.key("resources").key(name),
                            format!("expected {unit} as hosts offer {name:?} in, found {} ({amount})", amount.unit),
                        ),
                        _ => {}
                    }
                }
                for (key, want) in &c.placement.requires {
                    let offered = self.context.features.get(key);
                    let ok = offered.is_some_and(|vals| want == "*" || vals.contains(want));
                    if !ok {
                        let have = offered.map(list).unwrap_or_else(|| "no host has it".to_string());
                        self.error(
                            doc,
                            pp.key("requires").key(key),
                            format!("no host offers feature {key}={want} ({key}: {have})"),
                        );
                    }
                }
            }
        }
    }

    fn proximity_exists(&mut self, doc: usize, path: FieldPath, class: &str) {
        if !self.context.proximity_classes.contains_key(class) {
            let known = list(self.context.proximity_classes.keys());
            self.error(doc, path, format!("unknown proximity class {class:?}; expected one of {known}"));
        }
    }

    fn evaluator(&mut self, doc: usize, path: FieldPath, e: &EvaluatorRef, components: &BTreeSet<&str>) {
        match e {
            EvaluatorRef::Builtin { name } if !BUILTIN_EVALUATORS.contains(&name.as_str()) => self.error(
                doc,
                path.key("builtin"),
                format!("unknown built-in evaluator {name:?}; expected one of {}", BUILTIN_EVALUATORS.join(", ")),
            ),
            EvaluatorRef::Component { component } if !components.contains(component.as_str()) => self.error(
                doc,
                path.key("component"),
                format!(
                    "unknown component {component:?}; expected one of this service's components ({})",
                    list(components)
                ),
            ),
            EvaluatorRef::Http { url } if !(url.starts_with("http://") || url.starts_with("https://")) => {
                self.error(doc, path.key("url"), format!("expected an http:// or https:// URL, found {url:?}"))
            }
            _ => {}
        }
    }

    fn demand(&mut self, doc: usize, d: &Demand) {
        let root = FieldPath::root();
        self.unique(
            doc,
            "region",
            d.regions.iter().enumerate().map(|(i, r)| (root.key("regions").index(i).key("name"), r.name.as_str())),
        );
        for (ri, r) in d.regions.iter().enumerate() {
            if !(r.weight.is_finite() && r.weight > 0.0 && r.weight <= crate::limits::MAX_WEIGHT) {
                self.error(
                    doc,
                    root.key("regions").index(ri).key("weight"),
                    format!("expected a positive weight of at most {}, found {}", crate::limits::MAX_WEIGHT, r.weight),
                );
            }
            if let Some(l) = &r.location {
                if let Some(p) = Location::problem(l.lat, l.lon) {
                    self.error(doc, root.key("regions").index(ri).key("location"), p);
                }
            }
            if let Some(z) = &r.attach {
                self.zone_exists(doc, root.key("regions").index(ri).key("attach"), z);
            }
        }
        let regions: BTreeSet<&str> = d.regions.iter().map(|r| r.name.as_str()).collect();
        for (ei, e) in d.entries.iter().enumerate() {
            let ep = root.key("demand").index(ei);
            if !regions.contains(e.region.as_str()) && !self.context.regions.contains(&e.region) {
                self.error(
                    doc,
                    ep.key("region"),
                    format!(
                        "unknown region {:?}; expected one of the regions defined under `regions` ({})",
                        e.region,
                        list(&regions)
                    ),
                );
            }
            if self.context.has_services && !self.context.services.contains(&e.service) {
                let known = list(&self.context.services);
                self.error(
                    doc,
                    ep.key("service"),
                    format!("unknown service {:?}; expected one of the services given ({known})", e.service),
                );
            }
            let most = match &e.slots {
                SlotProfile::Constant(n) => *n,
                SlotProfile::Windows(w) => w.iter().map(|(_, n)| *n).max().unwrap_or(0),
            };
            if let Some(p) = crate::limits::at_most(most, crate::limits::MAX_DEMAND_SLOTS, "session slots") {
                self.error(doc, ep.key("slots"), p);
            }
            if let SlotProfile::Windows(w) = &e.slots {
                for pair in w.windows(2) {
                    if pair[1].0 <= pair[0].0 {
                        self.error(
                            doc,
                            ep.key("slots"),
                            format!(
                                "windows must be in increasing time order; {} comes after {}",
                                pair[1].0, pair[0].0
                            ),
                        );
                    }
                }
            }
            if let Some(sla) = &e.sla {
                for (field, msg) in sla.problems() {
                    self.error(doc, ep.key("sla").key(field), msg);
                }
            }
        }
    }

    fn knowledge_base(&mut self, doc: usize, kb: &KnowledgeBase) {
        let root = FieldPath::root();
        self.unique(
            doc,
            "profile",
            kb.profiles.iter().enumerate().map(|(i, p)| (root.key("profiles").index(i).key("name"), p.name.as_str())),
        );
        self.unique(
            doc,
            "tag",
            kb.tags.iter().enumerate().map(|(i, t)| (root.key("tags").index(i).key("name"), t.name.as_str())),
        );
        for (pi, p) in kb.profiles.iter().enumerate() {
            for (name, problem) in p.resources.problems() {
                self.error(doc, root.key("profiles").index(pi).key("resources").key(&name), problem);
            }
        }
        let profiles: BTreeSet<&str> = kb.profiles.iter().map(|p| p.name.as_str()).collect();
        for (ti, t) in kb.tags.iter().enumerate() {
            let tp = root.key("tags").index(ti);
            if t.candidates.is_empty() {
                self.error(doc, tp.key("candidates"), "expected at least one candidate profile");
            }
            if t.mode == TagMode::Exact && t.candidates.len() > 1 {
                self.error(
                    doc,
                    tp.key("candidates"),
                    format!("an exact tag names exactly one profile, found {}", t.candidates.len()),
                );
            }
            for (ci, c) in t.candidates.iter().enumerate() {
                let cp = tp.key("candidates").index(ci);
                if !profiles.contains(c.profile.as_str()) {
                    self.error(
                        doc,
                        cp.key("profile"),
                        format!("unknown profile {:?}; expected one of {}", c.profile, list(&profiles)),
                    );
                }
                if !(c.performance.is_finite() && c.performance > 0.0 && c.performance <= crate::limits::MAX_FACTOR) {
                    self.error(
                        doc,
                        cp.key("performance"),
                        format!("expected a positive relative performance, found {}", c.performance),
                    );
                }
            }
        }
    }

    fn duplicates_across_documents(&mut self) {
        let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for (i, doc) in self.bundle.documents.iter().enumerate() {
            if let Some(first) = seen.insert((doc.kind(), doc.name()), i) {
                if !matches!(doc, Document::Service(_)) {
                    continue; // several infrastructure or demand parts may share a name and merge
                }
                self.error(
                    i,
                    FieldPath::root().key("name"),
                    format!(
                        "service {:?} is defined twice (also document {}); service names must be unique",
                        doc.name(),
                        first + 1
                    ),
                );
            }
        }
        let mut zones: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, doc) in self.bundle.documents.iter().enumerate() {
            if let Document::Infrastructure(infra) = doc {
                for (zi, z) in infra.zones.iter().enumerate() {
                    if let Some(first) = zones.insert(&z.name, i) {
                        if first != i {
                            self.error(
                                i,
                                FieldPath::root().key("zones").index(zi).key("name"),
                                format!(
                                    "zone {:?} is also defined in document {}; zone names must be unique in a domain",
                                    z.name,
                                    first + 1
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
}
