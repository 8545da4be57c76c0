//! Model → native YAML. The output reads like a hand-written descriptor: defaults are left
//! out, quantities carry their units, and reading it back gives the same model.

use serde_norway::{Mapping, Value};
use zonal_model::{
    Binding, Channel, Component, Demand, Document, EvaluatorRef, Host, Infrastructure, KnowledgeBase, LatencyModel,
    Location, Price, Region, ResourceUnit, Resources, RunSpec, Scaling, Service, SlotProfile, SlotSpec, TagMode,
    UtilitySla, Zone,
};

/// Writes documents as one multi-document YAML stream.
pub fn write_documents(docs: &[Document]) -> String {
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let value = match doc {
            Document::Infrastructure(x) => infrastructure(x),
            Document::Service(x) => service(x),
            Document::Demand(x) => demand(x),
            Document::KnowledgeBase(x) => knowledge_base(x),
        };
        // Serialising a Value of strings, numbers, booleans, lists and maps cannot fail.
        out.push_str(&serde_norway::to_string(&value).unwrap_or_default());
    }
    out
}

struct Map(Mapping);

impl Map {
    fn new() -> Self {
        Map(Mapping::new())
    }
    fn put(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.0.insert(Value::String(key.to_string()), value.into());
        self
    }
    fn put_if(&mut self, cond: bool, key: &str, value: impl Into<Value>) -> &mut Self {
        if cond {
            self.put(key, value);
        }
        self
    }
    fn put_opt<T: ToString>(&mut self, key: &str, value: &Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.put(key, v.to_string());
        }
        self
    }
    fn done(&mut self) -> Value {
        Value::Mapping(std::mem::take(&mut self.0))
    }
}

fn strings<'a>(items: impl IntoIterator<Item = &'a String>) -> Value {
    Value::Sequence(items.into_iter().map(|s| Value::String(s.clone())).collect())
}

fn string_map(m: &std::collections::BTreeMap<String, String>) -> Value {
    let mut out = Map::new();
    for (k, v) in m {
        out.put(k, v.clone());
    }
    out.done()
}

fn location(l: &Location) -> Value {
    Map::new().put("lat", l.lat).put("lon", l.lon).done()
}

fn resources(r: &Resources) -> Value {
    let mut out = Map::new();
    for (k, a) in &r.0 {
        match a.unit {
            ResourceUnit::Count => out.put(k, a.value),
            ResourceUnit::Millicores if a.value % 1000 == 0 => out.put(k, a.value / 1000),
            _ => out.put(k, a.to_string()),
        };
    }
    out.done()
}

fn infrastructure(x: &Infrastructure) -> Value {
    let mut m = Map::new();
    m.put("kind", "Infrastructure").put("name", x.name.clone()).put_opt("domain", &x.domain);
    if x.latency_model != LatencyModel::default() {
        let lm = &x.latency_model;
        m.put(
            "latency_model",
            Map::new()
                .put("one_way_per_km", lm.one_way_per_km.to_string())
                .put("per_hop", lm.per_hop.to_string())
                .put("access", lm.access.to_string())
                .done(),
        );
    }
    if !x.proximity_classes.is_empty() {
        let mut pc = Map::new();
        for (k, v) in &x.proximity_classes {
            pc.put(k, v.to_string());
        }
        m.put("proximity_classes", pc.done());
    }
    m.put("zones", Value::Sequence(x.zones.iter().map(zone).collect()));
    if !x.links.is_empty() {
        let links = x
            .links
            .iter()
            .map(|l| {
                Map::new()
                    .put("from", l.from.clone())
                    .put("to", l.to.clone())
                    .put_opt("latency", &l.latency)
                    .put_opt("bandwidth", &l.bandwidth)
                    .put_if(l.cost_per_gb.amount() > 0.0, "cost_per_gb", l.cost_per_gb.to_string())
                    .done()
            })
            .collect();
        m.put("links", Value::Sequence(links));
    }
    if !x.latencies.is_empty() {
        let lat = x
            .latencies
            .iter()
            .map(|l| {
                Map::new().put("from", l.from.clone()).put("to", l.to.clone()).put("rtt", l.rtt.to_string()).done()
            })
            .collect();
        m.put("latencies", Value::Sequence(lat));
    }
    m.done()
}

fn zone(z: &Zone) -> Value {
    let mut m = Map::new();
    m.put("name", z.name.clone());
    if let Some(l) = &z.location {
        m.put("location", location(l));
    }
    m.put_opt("tier", &z.tier);
    if !z.price.is_free() {
        m.put("price", price(&z.price));
    }
    if !z.labels.is_empty() {
        m.put("labels", string_map(&z.labels));
    }
    if !z.hosts.is_empty() {
        m.put("hosts", Value::Sequence(z.hosts.iter().map(host).collect()));
    }
    m.done()
}

fn price(p: &Price) -> Value {
    let mut m = Map::new();
    for (k, v) in [
        ("cpu_hour", &p.cpu_hour),
        ("memory_gib_hour", &p.memory_gib_hour),
        ("gpu_hour", &p.gpu_hour),
        ("egress_per_gb", &p.egress_per_gb),
    ] {
        m.put_if(v.amount() > 0.0, k, v.to_string());
    }
    m.done()
}

fn host(h: &Host) -> Value {
    let mut m = Map::new();
    m.put("name", h.name.clone()).put("capacity", resources(&h.capacity));
    if !h.features.is_empty() {
        m.put("features", string_map(&h.features));
    }
    if h.power != Default::default() {
        m.put("power", Map::new().put("idle", h.power.idle.to_string()).put("max", h.power.max.to_string()).done());
    }
    m.put_if(!h.available, "available", false);
    m.done()
}

fn sla(s: &UtilitySla) -> Value {
    let mut m = Map::new();
    m.put("r_min", s.r_min.to_string()).put("r_med", s.r_med.to_string()).put("r_max", s.r_max.to_string());
    m.put_if(s.importance != 1.0, "importance", s.importance);
    m.done()
}

fn evaluator(e: &EvaluatorRef) -> Value {
    match e {
        EvaluatorRef::Builtin { name } => Map::new().put("builtin", name.clone()).done(),
        EvaluatorRef::Http { url } => Map::new().put("url", url.clone()).done(),
        EvaluatorRef::Component { component } => Map::new().put("component", component.clone()).done(),
    }
}

fn service(s: &Service) -> Value {
    let mut m = Map::new();
    m.put("kind", "Service")
        .put("name", s.name.clone())
        .put_opt("description", &s.description)
        .put_opt("owner", &s.owner);
    m.put_opt("entry", &s.entry);
    if let Some(x) = &s.sla {
        m.put("sla", sla(x));
    }
    m.put_opt("proximity", &s.proximity).put_opt("session_bandwidth", &s.session_bandwidth);
    if let Some(e) = &s.evaluator {
        m.put("evaluator", evaluator(e));
    }
    m.put_if(!s.reuse_existing, "reuse_existing", false);
    m.put_if(!s.share.is_empty(), "share", strings(&s.share));
    m.put_if(s.binding == Binding::Late, "binding", "late");
    let entry = s.entry.clone().or_else(|| s.components.first().map(|c| c.name.clone()));
    m.put("components", Value::Sequence(s.components.iter().map(|c| component(c, entry.as_deref())).collect()));
    if !s.channels.is_empty() {
        m.put("channels", Value::Sequence(s.channels.iter().map(channel).collect()));
    }
    m.done()
}

fn component(c: &Component, entry: Option<&str>) -> Value {
    let mut m = Map::new();
    m.put("name", c.name.clone());
    match &c.run {
        RunSpec::None => {}
        RunSpec::Command { argv, env } => {
            let mut r = Map::new();
            r.put("command", strings(argv));
            if !env.is_empty() {
                r.put("env", string_map(env));
            }
            m.put("run", r.done());
        }
        RunSpec::Image { image, command, env } => {
            let mut r = Map::new();
            r.put("image", image.clone());
            if !command.is_empty() {
                r.put("command", strings(command));
            }
            if !env.is_empty() {
                r.put("env", string_map(env));
            }
            m.put("run", r.done());
        }
    }
    if !c.resources.0.is_empty() {
        m.put("resources", resources(&c.resources));
    }
    if c.slots != SlotSpec::default() {
        m.put(
            "slots",
            Map::new()
                .put("per_instance", c.slots.per_instance)
                .put_if(c.slots.min_free > 0, "min_free", c.slots.min_free)
                .done(),
        );
    }
    if c.scaling != Scaling::default() {
        m.put(
            "scaling",
            Map::new()
                .put("min_instances", c.scaling.min_instances)
                .put("max_instances", c.scaling.max_instances)
                .done(),
        );
    }
    let p = &c.placement;
    if *p != Default::default() {
        let mut pm = Map::new();
        if !p.requires.is_empty() {
            pm.put("requires", string_map(&p.requires));
        }
        pm.put_if(!p.zones.is_empty(), "zones", strings(&p.zones));
        pm.put_if(!p.avoid_zones.is_empty(), "avoid_zones", strings(&p.avoid_zones));
        pm.put_if(!p.affinity.is_empty(), "affinity", strings(&p.affinity));
        pm.put_if(!p.anti_affinity.is_empty(), "anti_affinity", strings(&p.anti_affinity));
        pm.put_opt("proximity", &p.proximity);
        if let Some(pin) = &p.pin {
            pm.put("pin", Map::new().put("zone", pin.zone.clone()).put_opt("host", &pin.host).done());
        }
        m.put("placement", pm.done());
    }
    if let Some(e) = &c.evaluator {
        m.put("evaluator", evaluator(e));
    }
    m.put_if(c.supports_overlay, "supports_overlay", true);
    m.put_opt("tag", &c.tag);
    if !c.ports.is_empty() {
        let ports = c
            .ports
            .iter()
            .map(|p| {
                let proto = match p.protocol {
                    zonal_model::Protocol::Tcp => "tcp",
                    zonal_model::Protocol::Http => "http",
                    zonal_model::Protocol::Udp => "udp",
                };
                let mut pm = Map::new();
                pm.put("name", p.name.clone());
                if let Some(n) = p.port {
                    pm.put("port", u64::from(n));
                }
                pm.put("protocol", proto).done()
            })
            .collect();
        m.put("ports", Value::Sequence(ports));
    }
    let default_public = Some(c.name.as_str()) == entry;
    m.put_if(c.public != default_public, "public", c.public);
    m.put_if(c.user_side, "user_side", true);
    m.done()
}

fn channel(c: &Channel) -> Value {
    Map::new()
        .put("from", c.from.clone())
        .put("to", c.to.clone())
        .put_opt("bandwidth", &c.bandwidth)
        .put_opt("max_latency", &c.max_latency)
        .done()
}

fn demand(d: &Demand) -> Value {
    let mut m = Map::new();
    m.put("kind", "Demand").put("name", d.name.clone());
    m.put("regions", Value::Sequence(d.regions.iter().map(region).collect()));
    if !d.entries.is_empty() {
        let entries = d
            .entries
            .iter()
            .map(|e| {
                let mut em = Map::new();
                em.put("service", e.service.clone()).put("region", e.region.clone());
                match &e.slots {
                    SlotProfile::Constant(n) => em.put("slots", *n),
                    SlotProfile::Windows(w) => {
                        let mut wm = Map::new();
                        for (t, n) in w {
                            wm.put(&t.to_string(), *n);
                        }
                        em.put("slots", wm.done())
                    }
                };
                if let Some(s) = &e.sla {
                    em.put("sla", sla(s));
                }
                em.put_opt("session_bandwidth", &e.session_bandwidth);
                em.done()
            })
            .collect();
        m.put("demand", Value::Sequence(entries));
    }
    m.done()
}

fn region(r: &Region) -> Value {
    let mut m = Map::new();
    m.put("name", r.name.clone());
    if let Some(l) = &r.location {
        m.put("location", location(l));
    }
    m.put_if(r.weight != 1.0, "weight", r.weight);
    m.put_opt("attach", &r.attach);
    m.done()
}

fn knowledge_base(k: &KnowledgeBase) -> Value {
    let mut m = Map::new();
    m.put("kind", "KnowledgeBase").put("name", k.name.clone());
    let profiles = k
        .profiles
        .iter()
        .map(|p| {
            Map::new()
                .put("name", p.name.clone())
                .put_opt("arch", &p.arch)
                .put("resources", resources(&p.resources))
                .put_opt("accelerator", &p.accelerator)
                .done()
        })
        .collect();
    m.put("profiles", Value::Sequence(profiles));
    let tags = k
        .tags
        .iter()
        .map(|t| {
            let candidates = t
                .candidates
                .iter()
                .map(|c| Map::new().put("profile", c.profile.clone()).put("performance", c.performance).done())
                .collect();
            Map::new()
                .put("name", t.name.clone())
                .put_if(t.mode == TagMode::Exact, "mode", "exact")
                .put("candidates", Value::Sequence(candidates))
                .done()
        })
        .collect();
    m.put("tags", Value::Sequence(tags));
    m.done()
}
