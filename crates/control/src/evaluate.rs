//! Evaluator-based placement (FUSION D3.2 §2.6.2.2, §2.7.4): zones score their execution
//! environments for a service with an evaluator, turn the best into time-stamped offers, and
//! the domain chooses among the offers received in time.
//!
//! This module is the pure decision part: evaluators that need no network, a zone's
//! environments for a component, offer building, offer choice across zones, and the two
//! composite strategies. Gathering offers in parallel with a deadline (the domain), calling a
//! provider's evaluator over HTTP (`POST /1.0/evaluations`) and keeping offers until they
//! expire (the zone) are the daemons' job; they call these functions.
//!
//! Choices the seed leaves open, made here:
//! * Scores are floats in [0, 1], higher is better, 0 = unusable (the seed allows ranks or
//!   floats; one scale is needed to compare offers from different zones).
//! * An offer covers as many of the requested slots as the zone can, possibly over several
//!   environments (best score first, then cheapest); its score is the slot-weighted mean.
//! * The domain discards expired offers, then takes slots from offers by score (then price,
//!   then zone name for determinism) until the request is covered, so several zones may share
//!   the slots.
//! * Time is passed in (milliseconds since an epoch chosen by the caller); nothing here reads
//!   a clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zonal_model::{Component, Price, Service};

use crate::place::HostSummary;

/// Where an evaluator is asked to look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Unique within the zone (a host, or a logical environment wrapping one).
    pub id: String,
    pub zone: String,
    /// Host features (`arch`, `accelerator`, …).
    pub features: BTreeMap<String, String>,
    /// Slots of this service the environment could still host.
    pub free_slots: u32,
    /// Price per slot-hour quoted by the zone for this environment.
    pub price: f64,
    /// Round-trip latency from each demand region (ms), as the zone knows it.
    pub region_rtt_ms: BTreeMap<String, f64>,
}

/// What is being placed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EvaluationRequest {
    pub service: String,
    pub component: Option<String>,
    pub slots: u32,
    /// Instantiation parameters (resolution, frame rate, …), passed through to evaluators.
    pub params: BTreeMap<String, String>,
    /// Required host features.
    pub requires: BTreeMap<String, String>,
    /// Demand regions and their weights, for latency-aware evaluators.
    pub regions: BTreeMap<String, f64>,
    /// FUSION utility thresholds (ms) used by the latency evaluator: r_min, r_med, r_max.
    pub latency_sla_ms: Option<(f64, f64, f64)>,
}

/// Scores one environment for one request: a value in [0, 1], 0 meaning unusable.
pub trait Evaluator {
    fn name(&self) -> &str;
    fn evaluate(&self, request: &EvaluationRequest, env: &Environment) -> f64;
}

fn features_ok(request: &EvaluationRequest, env: &Environment) -> bool {
    request.requires.iter().all(|(k, v)| env.features.get(k).is_some_and(|have| v == "*" || have == v))
}

/// Scores by the demand-weighted FUSION utility of the environment's latency to the regions:
/// 1 when every region is under r_min, falling linearly to 0 at r_med, 0 beyond (and for any
/// region past r_max).
#[derive(Debug, Default)]
pub struct LatencyEvaluator;

impl Evaluator for LatencyEvaluator {
    fn name(&self) -> &str {
        "latency"
    }
    fn evaluate(&self, request: &EvaluationRequest, env: &Environment) -> f64 {
        if !features_ok(request, env) {
            return 0.0;
        }
        let (r_min, r_med, r_max) = request.latency_sla_ms.unwrap_or((20.0, 50.0, 150.0));
        let total: f64 = request.regions.values().sum();
        if total <= 0.0 {
            return 1.0;
        }
        let mut score = 0.0;
        for (region, w) in &request.regions {
            let Some(&rtt) = env.region_rtt_ms.get(region) else { return 0.0 };
            if rtt > r_max {
                return 0.0;
            }
            let u = ((r_med - rtt.max(r_min)) / (r_med - r_min)).clamp(0.0, 1.0);
            score += w * u;
        }
        score / total
    }
}

/// Scores by price: `reference / (reference + price)`, so free is 1 and the reference price
/// scores 0.5.
#[derive(Debug)]
pub struct PriceEvaluator {
    pub reference_price: f64,
}

impl Evaluator for PriceEvaluator {
    fn name(&self) -> &str {
        "price"
    }
    fn evaluate(&self, request: &EvaluationRequest, env: &Environment) -> f64 {
        if !features_ok(request, env) {
            return 0.0;
        }
        let r = self.reference_price.max(f64::MIN_POSITIVE);
        r / (r + env.price.max(0.0))
    }
}

/// Scores by hardware match: 0 if a required feature is missing, otherwise the share of the
/// requested slots the environment can host (so a roomy matching host beats a cramped one).
#[derive(Debug, Default)]
pub struct HardwareEvaluator;

impl Evaluator for HardwareEvaluator {
    fn name(&self) -> &str {
        "hardware"
    }
    fn evaluate(&self, request: &EvaluationRequest, env: &Environment) -> f64 {
        if !features_ok(request, env) || env.free_slots == 0 {
            return 0.0;
        }
        (f64::from(env.free_slots) / f64::from(request.slots.max(1))).min(1.0)
    }
}

/// Most instances one environment is offered for, so a component without resources (which
/// "fits" without limit) still makes a finite offer.
pub const MAX_INSTANCES_PER_ENVIRONMENT: u64 = 1 << 16;

/// A zone's environments for `component`: one per available host, with the slots its free
/// capacity holds (instances that fit × slots per instance, within the component's
/// `max_instances`), its features, the price of one slot-hour at the zone's prices, and the
/// domain's RTT estimates from each region to the zone.
pub fn zone_environments(
    zone: &str,
    hosts: &[HostSummary],
    component: &Component,
    price: &Price,
    region_rtt_ms: &BTreeMap<String, f64>,
) -> Vec<Environment> {
    let per = component.slots.per_instance.max(1);
    let instance_cap = u64::from(component.scaling.max_instances).min(MAX_INSTANCES_PER_ENVIRONMENT);
    hosts
        .iter()
        .filter(|h| h.available)
        .map(|h| {
            let instances = h.free.copies_of(&component.resources).min(instance_cap);
            Environment {
                id: h.name.clone(),
                zone: zone.to_string(),
                features: h.features.clone(),
                free_slots: u32::try_from(instances.saturating_mul(u64::from(per))).unwrap_or(u32::MAX),
                price: price.hourly(&component.resources) / f64::from(per),
                region_rtt_ms: region_rtt_ms.clone(),
            }
        })
        .collect()
}

/// The evaluation request for `slots` session slots of `component` of `service`: its
/// required features, the service's utility thresholds and the demand regions.
pub fn evaluation_request(
    service: &Service,
    component: &Component,
    slots: u32,
    regions: &BTreeMap<String, f64>,
) -> EvaluationRequest {
    EvaluationRequest {
        service: service.name.clone(),
        component: Some(component.name.clone()),
        slots,
        params: BTreeMap::new(),
        requires: component.placement.requires.clone(),
        regions: regions.clone(),
        latency_sla_ms: service.sla.as_ref().map(|s| (s.r_min.as_millis(), s.r_med.as_millis(), s.r_max.as_millis())),
    }
}

/// The component whose slots an offer is for (the entry component) and the evaluator that
/// scores it: the component's own, else the service's. `None` when neither names one.
pub fn evaluator_of(service: &Service) -> Option<(&Component, &zonal_model::EvaluatorRef)> {
    let entry = service.entry_component()?;
    entry.evaluator.as_ref().or(service.evaluator.as_ref()).map(|e| (entry, e))
}

/// Session slots a placement by offers asks for: the demand, else the entry component's
/// minimum instances (at least one) worth of slots.
pub fn slots_wanted(service: &Service, demand: u32) -> u32 {
    if demand > 0 {
        return demand;
    }
    service
        .entry_component()
        .map(|c| c.scaling.min_instances.max(1).saturating_mul(c.slots.per_instance.max(1)))
        .unwrap_or(1)
}

/// The allocation a choice of offers stands for: in each zone, the instances its share of
/// slots needs (a composite goes whole into every chosen zone).
pub fn allocation_for(service: &Service, shares: &[(String, u32)]) -> crate::place::Allocation {
    let mut allocation = crate::place::Allocation::default();
    for (zone, slots) in shares {
        let counts = crate::place::instance_counts(service, &crate::place::PlacementDemand { slots: *slots });
        allocation.zones.insert(zone.clone(), counts);
    }
    allocation
}

/// The price at which the built-in price evaluator scores 0.5, per slot-hour (in the
/// zones' price unit). Zones quote prices in one unit per domain, so one reference makes
/// their scores comparable.
pub const PRICE_REFERENCE_PER_SLOT_HOUR: f64 = 0.01;

/// The built-in evaluator of that name (see [`zonal_model::service::BUILTIN_EVALUATORS`]).
pub fn builtin(name: &str) -> Option<Box<dyn Evaluator + Send + Sync>> {
    match name {
        "latency" => Some(Box::new(LatencyEvaluator)),
        "price" => Some(Box::new(PriceEvaluator { reference_price: PRICE_REFERENCE_PER_SLOT_HOUR })),
        "hardware" => Some(Box::new(HardwareEvaluator)),
        _ => None,
    }
}

/// What a zone sends to a provider's evaluator (`POST /1.0/evaluations`): the request and one
/// environment to score. The evaluator answers [`EvaluationReply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationCall {
    pub request: EvaluationRequest,
    pub environment: Environment,
}

/// An evaluator's answer: a score in [0, 1] (0 = unusable); `id` if it stored the evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReply {
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Checks an evaluator's score: a number in [0, 1].
pub fn checked_score(score: f64) -> Result<f64, String> {
    if score.is_finite() && (0.0..=1.0).contains(&score) {
        Ok(score)
    } else {
        Err(format!("score {score} is outside [0, 1]"))
    }
}

/// One environment's part of an offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferedEnvironment {
    pub environment: String,
    pub slots: u32,
    pub score: f64,
    pub price: f64,
}

/// A zone's binding offer to host slots of a service until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub id: String,
    pub zone: String,
    pub service: String,
    pub environments: Vec<OfferedEnvironment>,
    pub slots: u32,
    /// Slot-weighted mean score.
    pub score: f64,
    /// Slot-weighted mean price per slot-hour.
    pub price: f64,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// Which evaluator scored it (`latency`, `price`, `hardware` or the provider's URL).
    #[serde(default)]
    pub evaluator: String,
    /// Environments left out, each with why (no answer in time, an error, score 0, full).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

impl Offer {
    pub fn is_valid_at(&self, now_ms: u64) -> bool {
        now_ms < self.expires_ms
    }
}

/// Builds a zone's offer from the scores its evaluator gave (only scores received before the
/// zone's deadline are passed in). Returns `None` when no environment is usable.
pub fn build_offer(
    id: String,
    request: &EvaluationRequest,
    scored: &[(Environment, f64)],
    now_ms: u64,
    validity_ms: u64,
) -> Option<Offer> {
    let mut usable: Vec<&(Environment, f64)> = scored.iter().filter(|(e, s)| *s > 0.0 && e.free_slots > 0).collect();
    usable.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.price.total_cmp(&b.0.price)).then(a.0.id.cmp(&b.0.id)));
    let zone = usable.first()?.0.zone.clone();
    let mut left = request.slots;
    let mut environments = Vec::new();
    for (env, score) in usable {
        if left == 0 {
            break;
        }
        let take = env.free_slots.min(left);
        left -= take;
        environments.push(OfferedEnvironment {
            environment: env.id.clone(),
            slots: take,
            score: *score,
            price: env.price,
        });
    }
    let slots: u32 = environments.iter().map(|e| e.slots).sum();
    let weighted = |f: fn(&OfferedEnvironment) -> f64| {
        environments.iter().map(|e| f(e) * f64::from(e.slots)).sum::<f64>() / f64::from(slots.max(1))
    };
    Some(Offer {
        id,
        zone,
        service: request.service.clone(),
        score: weighted(|e| e.score),
        price: weighted(|e| e.price),
        environments,
        slots,
        created_ms: now_ms,
        expires_ms: now_ms.saturating_add(validity_ms),
        evaluator: String::new(),
        left_out: Vec::new(),
    })
}

/// The domain's choice: which offers, and how many slots from each.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub taken: Vec<(String, String, u32)>,
    /// Slots no valid offer could cover.
    pub uncovered: u32,
}

/// Chooses among offers received in time: valid ones only, best score first (then cheaper,
/// then zone name), taking slots until `slots` are covered.
pub fn choose_offers(offers: &[Offer], slots: u32, now_ms: u64) -> Choice {
    let mut valid: Vec<&Offer> = offers.iter().filter(|o| o.is_valid_at(now_ms) && o.slots > 0).collect();
    valid.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.price.total_cmp(&b.price)).then(a.zone.cmp(&b.zone)));
    let mut left = slots;
    let mut taken = Vec::new();
    for o in valid {
        if left == 0 {
            break;
        }
        let t = o.slots.min(left);
        left -= t;
        taken.push((o.id.clone(), o.zone.clone(), t));
    }
    Choice { taken, uncovered: left }
}

/// Relations between components that a composite placement must respect.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompositeRules {
    /// Pairs that must share a zone.
    pub affinity: Vec<(String, String)>,
    /// Pairs that must not share a zone.
    pub anti_affinity: Vec<(String, String)>,
    /// Channels with a latency bound: (from, to, max one-way ms).
    pub max_latency_ms: Vec<(String, String, f64)>,
}

/// Divide-and-conquer composite placement (FUSION §2.7.4.5, from D3.1): each component's
/// offers were gathered independently; the domain picks one offer per component maximising
/// the sum of scores subject to affinity, anti-affinity and channel latency bounds
/// (`zone_latency(a, b)` gives the one-way latency between zones). Exhaustive over the top
/// `beam` offers per component, so it stays small. Returns component → offer id.
pub fn divide_and_conquer(
    per_component: &BTreeMap<String, Vec<Offer>>,
    rules: &CompositeRules,
    zone_latency: &dyn Fn(&str, &str) -> f64,
    now_ms: u64,
    beam: usize,
) -> Option<BTreeMap<String, String>> {
    let comps: Vec<&String> = per_component.keys().collect();
    let lists: Vec<Vec<&Offer>> = comps
        .iter()
        .map(|c| {
            let mut v: Vec<&Offer> = per_component[*c].iter().filter(|o| o.is_valid_at(now_ms)).collect();
            v.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.zone.cmp(&b.zone)));
            v.truncate(beam.max(1));
            v
        })
        .collect();
    if lists.iter().any(Vec::is_empty) {
        return None;
    }
    let index: BTreeMap<&str, usize> = comps.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let mut best: Option<(f64, Vec<usize>)> = None;
    let mut pick = vec![0usize; comps.len()];
    loop {
        let zone = |c: &str| index.get(c).map(|&i| lists[i][pick[i]].zone.as_str());
        let ok = rules.affinity.iter().all(|(a, b)| zone(a) == zone(b))
            && rules.anti_affinity.iter().all(|(a, b)| zone(a) != zone(b) || zone(a).is_none())
            && rules.max_latency_ms.iter().all(|(a, b, max)| match (zone(a), zone(b)) {
                (Some(za), Some(zb)) => zone_latency(za, zb) <= *max,
                _ => true,
            });
        if ok {
            let total: f64 = pick.iter().enumerate().map(|(i, &k)| lists[i][k].score).sum();
            if best.as_ref().is_none_or(|(b, _)| total > *b + 1e-12) {
                best = Some((total, pick.clone()));
            }
        }
        // Next combination (odometer).
        let mut i = 0;
        loop {
            if i == pick.len() {
                return best.map(|(_, p)| {
                    comps.iter().enumerate().map(|(i, c)| ((*c).clone(), lists[i][p[i]].id.clone())).collect()
                });
            }
            pick[i] += 1;
            if pick[i] < lists[i].len() {
                break;
            }
            pick[i] = 0;
            i += 1;
        }
    }
}

/// The composite-service evaluator of the two-phase strategy: given every component's offers
/// and the free slots of instances already running (which may be reused), it returns a global
/// score and one offer per component — or declines.
pub trait CompositeEvaluator {
    fn select(
        &self,
        per_component: &BTreeMap<String, Vec<Offer>>,
        running_free_slots: &BTreeMap<(String, String), u32>,
    ) -> Option<(f64, BTreeMap<String, String>)>;
}

/// Two-phase divide-and-conquer (FUSION §2.7.4.5, Fig. 16): phase 1 gathered per-component
/// offers (the caller did that); phase 2 hands them, with the running instances' free slots,
/// to the provider's composite evaluator. Expired offers are withheld from it.
pub fn two_phase(
    per_component: &BTreeMap<String, Vec<Offer>>,
    running_free_slots: &BTreeMap<(String, String), u32>,
    evaluator: &dyn CompositeEvaluator,
    now_ms: u64,
) -> Option<(f64, BTreeMap<String, String>)> {
    let valid: BTreeMap<String, Vec<Offer>> = per_component
        .iter()
        .map(|(c, os)| (c.clone(), os.iter().filter(|o| o.is_valid_at(now_ms)).cloned().collect()))
        .collect();
    let (score, chosen) = evaluator.select(&valid, running_free_slots)?;
    // The evaluator may only choose offers it was given.
    let all_known = chosen.iter().all(|(c, id)| valid.get(c).is_some_and(|os| os.iter().any(|o| &o.id == id)));
    all_known.then_some((score, chosen))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(id: &str, zone: &str, free: u32, price: f64, rtt: f64) -> Environment {
        Environment {
            id: id.into(),
            zone: zone.into(),
            features: [("arch".to_string(), "x86_64".to_string())].into(),
            free_slots: free,
            price,
            region_rtt_ms: [("r".to_string(), rtt)].into(),
        }
    }

    fn request(slots: u32) -> EvaluationRequest {
        EvaluationRequest {
            service: "epg".into(),
            slots,
            regions: [("r".to_string(), 1.0)].into(),
            ..Default::default()
        }
    }

    #[test]
    fn builtins_score_in_unit_range() {
        let r = request(10);
        let near = env("a", "z", 10, 0.1, 10.0);
        let far = env("b", "z", 10, 0.1, 60.0);
        assert_eq!(LatencyEvaluator.evaluate(&r, &near), 1.0);
        assert_eq!(LatencyEvaluator.evaluate(&r, &far), 0.0);
        assert!((PriceEvaluator { reference_price: 0.1 }.evaluate(&r, &near) - 0.5).abs() < 1e-12);
        let mut gpu = r.clone();
        gpu.requires.insert("accelerator".into(), "*".into());
        assert_eq!(HardwareEvaluator.evaluate(&gpu, &near), 0.0, "missing feature is unusable");
        assert_eq!(HardwareEvaluator.evaluate(&r, &env("c", "z", 5, 0.1, 1.0)), 0.5);
    }

    #[test]
    fn offers_span_environments_and_expire() {
        let r = request(12);
        let scored = vec![
            (env("a", "z1", 8, 0.2, 5.0), 0.9),
            (env("b", "z1", 8, 0.1, 5.0), 0.9),
            (env("c", "z1", 8, 0.1, 5.0), 0.0),
        ];
        let o = build_offer("o1".into(), &r, &scored, 1000, 500).unwrap();
        assert_eq!(o.slots, 12);
        assert_eq!(o.environments[0].environment, "b", "equal score: cheaper first");
        assert!(o.environments.iter().all(|e| e.environment != "c"), "score 0 is unusable");
        assert!(o.is_valid_at(1499) && !o.is_valid_at(1500));
    }

    #[test]
    fn domain_splits_slots_across_zones_and_skips_expired() {
        let mk = |id: &str, zone: &str, slots: u32, score: f64, exp: u64| Offer {
            id: id.into(),
            zone: zone.into(),
            service: "s".into(),
            environments: vec![],
            slots,
            score,
            price: 0.1,
            created_ms: 0,
            expires_ms: exp,
            evaluator: String::new(),
            left_out: vec![],
        };
        let offers = vec![mk("a", "z1", 5, 0.9, 100), mk("b", "z2", 10, 0.8, 100), mk("c", "z3", 50, 0.99, 10)];
        let c = choose_offers(&offers, 12, 50);
        assert_eq!(c.taken, vec![("a".into(), "z1".into(), 5), ("b".into(), "z2".into(), 7)]);
        assert_eq!(c.uncovered, 0);
        assert_eq!(choose_offers(&offers, 100, 50).uncovered, 85);
    }

    #[test]
    fn divide_and_conquer_respects_affinity_and_latency() {
        let mk = |id: &str, zone: &str, score: f64| Offer {
            id: id.into(),
            zone: zone.into(),
            service: "s".into(),
            environments: vec![],
            slots: 1,
            score,
            price: 0.0,
            created_ms: 0,
            expires_ms: 10,
            evaluator: String::new(),
            left_out: vec![],
        };
        let mut per = BTreeMap::new();
        per.insert("renderer".to_string(), vec![mk("r1", "z1", 0.9), mk("r2", "z2", 0.5)]);
        per.insert("streamer".to_string(), vec![mk("s2", "z2", 0.95), mk("s1", "z1", 0.3)]);
        let rules = CompositeRules { affinity: vec![("renderer".into(), "streamer".into())], ..Default::default() };
        let lat = |a: &str, b: &str| if a == b { 0.0 } else { 10.0 };
        let chosen = divide_and_conquer(&per, &rules, &lat, 0, 4).unwrap();
        // z1: 0.9 + 0.3 = 1.2; z2: 0.5 + 0.95 = 1.45.
        assert_eq!(chosen["renderer"], "r2");
        assert_eq!(chosen["streamer"], "s2");
        let none = CompositeRules {
            anti_affinity: vec![("renderer".into(), "streamer".into())],
            max_latency_ms: vec![("renderer".into(), "streamer".into(), 5.0)],
            ..Default::default()
        };
        assert!(
            divide_and_conquer(&per, &none, &lat, 0, 4).is_none(),
            "different zones are required but too far apart"
        );
    }

    #[test]
    fn zone_environments_count_slots_within_free_capacity_and_caps() {
        use zonal_model::{Amount, Money, Resources};
        let res = |cpu: u64| Resources::new().with("cpu", Amount::cpu(cpu * 1000));
        let host = |name: &str, cpu: u64, available: bool| HostSummary {
            name: name.into(),
            free: res(cpu),
            features: BTreeMap::new(),
            available,
        };
        let mut c = Component { name: "web".into(), resources: res(2), ..Default::default() };
        c.slots.per_instance = 4;
        c.scaling.max_instances = 3;
        let price = Price { cpu_hour: Money::new(0.05), ..Default::default() };
        let rtt: BTreeMap<String, f64> = [("antwerp".to_string(), 12.0)].into();
        let hosts = [host("a", 8, true), host("b", 32, true), host("c", 32, false), host("d", 1, true)];
        let envs = zone_environments("z", &hosts, &c, &price, &rtt);
        let slots: Vec<(&str, u32)> = envs.iter().map(|e| (e.id.as_str(), e.free_slots)).collect();
        // a: 4 instances fit, capped at 3; b: capped at 3; c: unavailable; d: none fits.
        assert_eq!(slots, [("a", 12), ("b", 12), ("d", 0)]);
        assert!((envs[0].price - 2.0 * 0.05 / 4.0).abs() < 1e-12, "one slot-hour is a quarter of an instance-hour");
        assert_eq!(envs[0].region_rtt_ms, rtt);
        assert!(envs.iter().all(|e| e.zone == "z"));
    }

    #[test]
    fn the_entry_components_evaluator_overrides_the_services() {
        use zonal_model::EvaluatorRef;
        let builtin = |n: &str| EvaluatorRef::Builtin { name: n.into() };
        let mut svc = Service {
            name: "s".into(),
            components: vec![Component { name: "web".into(), ..Default::default() }],
            ..Default::default()
        };
        assert!(evaluator_of(&svc).is_none());
        svc.evaluator = Some(builtin("price"));
        assert_eq!(evaluator_of(&svc).map(|(c, e)| (c.name.as_str(), e.clone())), Some(("web", builtin("price"))));
        svc.components[0].evaluator = Some(builtin("latency"));
        assert_eq!(evaluator_of(&svc).map(|(_, e)| e.clone()), Some(builtin("latency")));
        assert!(builtin_names_resolve());
    }

    fn builtin_names_resolve() -> bool {
        zonal_model::service::BUILTIN_EVALUATORS.iter().all(|n| builtin(n).is_some_and(|e| e.name() == *n))
            && builtin("nope").is_none()
    }
}
