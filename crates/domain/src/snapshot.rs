//! What the domain knows, as the placement pipeline's [`LiveState`]: the infrastructure (the
//! zones as they registered, completed by the infrastructure document the operator gave:
//! links, prices, proximity classes, transit zones), which zones are up, what each zone
//! reports free and running, the user regions, the knowledge base, and every deployed service
//! with its demand (declared and measured) and its target.
//!
//! Also the domain's documents behind it: `PUT /1.0/infrastructure` (an Infrastructure
//! document: `zonal up` sends its own, `zonal apply -f infra.yaml` replaces it),
//! `PUT /1.0/knowledge-base` (OPERA's tags → profiles), and the declared demand
//! (`PUT /1.0/geography` with `demand`, from `zonal apply -f demand.yaml`); and the measured
//! demand: resolutions per service and region in a sliding window ([`Resolutions`]).
//!
//! Locks: `documents` (`DocumentLock`: changes of the geography and the declared demand)
//! and `resolutions` (the window of resolutions), both leaves.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use zonal_model::{DemandEntry, Host, Infrastructure, KnowledgeBase, Link, SlotProfile, TimeOfDay, Zone};
use zonal_place::decide::{LiveInstance, LiveService, LiveState, OfferTerms, OfferedHost};
use zonal_proto::Principal;
use zonal_store::StoreExt;

use crate::core::{guard, DomainCore, T_META};
use crate::error::DomainError;
use crate::services::{ServiceRecord, Target};
use crate::zones::{ZoneRecord, T_ZONES};

const INFRASTRUCTURE: &str = "infrastructure";
const KNOWLEDGE_BASE: &str = "knowledge_base";
const DEMAND: &str = "demand";

/// How long resolutions count towards measured demand.
pub const RESOLUTION_WINDOW: Duration = Duration::from_secs(60);

/// The `documents` lock: serialises changes of the geography and the declared demand (each
/// a read-modify-write of a `meta` row). A leaf: only the store is used under it.
#[derive(Debug, Default)]
pub(crate) struct DocumentLock {
    lock: Mutex<()>,
}

impl DocumentLock {
    pub(crate) fn hold(&self) -> MutexGuard<'_, ()> {
        guard(&self.lock)
    }
}

/// The `resolutions` lock: the measured demand's counts. A leaf.
#[derive(Default)]
pub(crate) struct ResolutionLog {
    log: Mutex<Resolutions>,
}

/// Resolutions per service: when, and from which region (memory only).
#[derive(Default)]
pub struct Resolutions {
    seen: BTreeMap<String, VecDeque<(Instant, String)>>,
}

impl Resolutions {
    /// Counts one resolution of `service` from `region`.
    pub fn record(&mut self, service: &str, region: &str, now: Instant) {
        let q = self.seen.entry(service.to_string()).or_default();
        q.push_back((now, region.to_string()));
        Self::expire(q, now);
        // Bounded: a flood of resolutions keeps only the most recent ones.
        while q.len() > 100_000 {
            q.pop_front();
        }
    }

    fn expire(q: &mut VecDeque<(Instant, String)>, now: Instant) {
        while q.front().is_some_and(|(t, _)| now.duration_since(*t) > RESOLUTION_WINDOW) {
            q.pop_front();
        }
    }

    /// Resolutions of `service` per region in the window.
    pub fn counts(&mut self, service: &str, now: Instant) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        if let Some(q) = self.seen.get_mut(service) {
            Self::expire(q, now);
            for (_, r) in q.iter() {
                *out.entry(r.clone()).or_default() += 1;
            }
        }
        out
    }
}

/// The current UTC time of day (demand profiles are read at it).
pub fn time_of_day() -> Option<TimeOfDay> {
    let secs = zonal_proto::now_ms() / 1000;
    TimeOfDay::from_minutes(((secs / 60) % (24 * 60)) as u16)
}

impl DomainCore {
    /// The infrastructure document the operator gave (none yet: zones as registered only).
    pub fn infrastructure_document(&self) -> Result<Option<Infrastructure>, DomainError> {
        Ok(self.store.get::<Infrastructure>(T_META, INFRASTRUCTURE)?)
    }

    /// `PUT /1.0/infrastructure`: replaces the infrastructure document after checking it
    /// (unique zone names, links between known zones); its measured latencies and latency
    /// model also become the geography's.
    pub fn set_infrastructure(&self, infra: Infrastructure) -> Result<Infrastructure, DomainError> {
        let problems = zonal_model::Bundle::new(vec![zonal_model::Document::Infrastructure(infra.clone())]).validate();
        if let Some(p) = problems.first() {
            return Err(DomainError::Invalid(format!(
                "invalid infrastructure ({} problem(s)); first: {}: {}",
                problems.len(),
                p.path,
                p.message
            )));
        }
        self.set_geography(zonal_proto::wire::GeographyChange {
            latencies: Some(infra.latencies.clone()),
            latency_model: Some(infra.latency_model),
            ..Default::default()
        })?;
        self.store.put(T_META, INFRASTRUCTURE, &infra)?;
        self.kick();
        Ok(infra)
    }

    pub fn knowledge_base(&self) -> Result<Option<KnowledgeBase>, DomainError> {
        Ok(self.store.get::<KnowledgeBase>(T_META, KNOWLEDGE_BASE)?)
    }

    /// `PUT /1.0/knowledge-base`: OPERA's workload tags → hardware profiles, checked first.
    pub fn set_knowledge_base(&self, kb: KnowledgeBase) -> Result<KnowledgeBase, DomainError> {
        let problems = zonal_model::Bundle::new(vec![zonal_model::Document::KnowledgeBase(kb.clone())]).validate();
        if let Some(p) = problems.first() {
            return Err(DomainError::Invalid(format!(
                "invalid knowledge base ({} problem(s)); first: {}: {}",
                problems.len(),
                p.path,
                p.message
            )));
        }
        self.store.put(T_META, KNOWLEDGE_BASE, &kb)?;
        Ok(kb)
    }

    /// The declared demand entries (demand documents applied to the domain).
    pub fn declared_demand(&self) -> Result<Vec<DemandEntry>, DomainError> {
        Ok(self.store.get::<Vec<DemandEntry>>(T_META, DEMAND)?.unwrap_or_default())
    }

    pub(crate) fn store_declared_demand(&self, entries: &[DemandEntry]) -> Result<(), DomainError> {
        Ok(self.store.put(T_META, DEMAND, &entries.to_vec())?)
    }

    /// Counts a resolution of `service` from `region` towards measured demand.
    pub(crate) fn record_resolution(&self, service: &str, region: &str) {
        guard(&self.resolutions.log).record(service, region, Instant::now());
    }

    /// The regional demand of `s` now: declared (at the time of day) and measured, each
    /// region the larger of the two ([`zonal_control::demand`]).
    pub(crate) fn demand_now(
        &self,
        s: &ServiceRecord,
        declared: &[DemandEntry],
        at: Option<TimeOfDay>,
    ) -> Vec<DemandEntry> {
        let mine: Vec<&DemandEntry> = declared.iter().filter(|e| e.service == s.serviceid).collect();
        let declared_now: BTreeMap<String, u32> =
            mine.iter().map(|e| (e.region.clone(), at.map_or(e.slots.peak(), |t| e.slots.at(t)))).collect();
        let open: u32 = self
            .zone_reports()
            .iter()
            .flat_map(|(_, r)| r.services.iter().filter(|v| v.serviceid == s.serviceid))
            .map(|v| v.slots.used.max(v.gateway_sessions))
            .sum();
        let counts = guard(&self.resolutions.log).counts(&s.serviceid, Instant::now());
        let measured = zonal_control::demand::estimate(&counts, open);
        zonal_control::demand::combine(&declared_now, &measured)
            .into_iter()
            .map(|(region, n)| {
                let base = mine.iter().find(|e| e.region == region);
                DemandEntry {
                    service: s.serviceid.clone(),
                    region,
                    slots: SlotProfile::Constant(n),
                    sla: base.and_then(|e| e.sla),
                    session_bandwidth: base.and_then(|e| e.session_bandwidth),
                }
            })
            .collect()
    }

    /// The infrastructure the pipeline decides on (see the module docs).
    fn live_infrastructure(&self) -> Result<Infrastructure, DomainError> {
        let doc = self.infrastructure_document()?.unwrap_or_default();
        let geo = self.geography()?;
        let records: Vec<(String, ZoneRecord)> = self.store.list::<ZoneRecord>(T_ZONES, "")?;
        let registered: BTreeSet<&str> = records.iter().map(|(n, _)| n.as_str()).collect();
        let mut zones: Vec<Zone> = Vec::new();
        for (name, rec) in &records {
            let r = &rec.registration;
            let declared = doc.zone(name);
            zones.push(Zone {
                name: name.clone(),
                location: r.location.or(declared.and_then(|z| z.location)),
                tier: r.tier.clone().or(declared.and_then(|z| z.tier.clone())),
                price: r.price.clone().or(declared.map(|z| z.price.clone())).unwrap_or_default(),
                hosts: r
                    .hosts
                    .iter()
                    .map(|h| Host {
                        name: h.name.clone(),
                        capacity: h.capacity.clone(),
                        features: h.features.clone(),
                        power: h.power,
                        available: h.available,
                    })
                    .collect(),
                labels: declared.map(|z| z.labels.clone()).unwrap_or_default(),
            });
        }
        // Zones of the document without a zone manager still carry traffic (transit nodes,
        // unmanaged sites); nothing is placed on their hosts.
        for z in doc.zones.iter().filter(|z| !registered.contains(z.name.as_str())) {
            let mut z = z.clone();
            for h in &mut z.hosts {
                h.available = false;
            }
            zones.push(z);
        }
        let names: BTreeSet<String> = zones.iter().map(|z| z.name.clone()).collect();
        let links: Vec<Link> =
            doc.links.iter().filter(|l| names.contains(&l.from) && names.contains(&l.to)).cloned().collect();
        Ok(Infrastructure {
            name: if doc.name.is_empty() { self.info.name.clone() } else { doc.name.clone() },
            domain: Some(self.info.name.clone()),
            zones,
            links,
            latencies: geo.latencies,
            latency_model: geo.latency_model,
            proximity_classes: doc.proximity_classes,
        })
    }

    /// The live state (see the module docs). `extra` stands in for services being decided
    /// that are not stored (a dry run), replacing a stored one of the same name.
    pub fn live_state(&self, extra: &[ServiceRecord]) -> Result<LiveState, DomainError> {
        let infrastructure = self.live_infrastructure()?;
        let geo = self.geography()?;
        let declared = self.declared_demand()?;
        let at = time_of_day();
        let mut unavailable = BTreeSet::new();
        let mut free: BTreeMap<String, BTreeMap<String, zonal_model::Resources>> = BTreeMap::new();
        let mut instances = Vec::new();
        for z in &infrastructure.zones {
            if !self.zone_available(&z.name) {
                unavailable.insert(z.name.clone());
            }
        }
        for (zone, r) in self.zone_reports() {
            let hosts = free.entry(zone.clone()).or_default();
            for host in &r.hosts {
                hosts.insert(host.name.clone(), host.free.clone());
            }
            for p in &r.placements {
                use zonal_control::reconcile::InstanceState as S;
                if matches!(p.state, S::Lost | S::Terminating) {
                    continue;
                }
                instances.push(LiveInstance {
                    service: p.service.clone(),
                    component: p.component.clone(),
                    zone: zone.clone(),
                    host: p.host.clone(),
                    resources: p.resources.clone(),
                });
            }
        }
        let mut records: BTreeMap<String, ServiceRecord> = self
            .service_records()?
            .into_iter()
            .filter(|(_, s)| s.target == Target::Deployed || s.placement.is_some())
            .collect();
        for e in extra {
            records.insert(e.serviceid.clone(), e.clone());
        }
        let services = records
            .values()
            .map(|s| LiveService {
                service: s.service.clone(),
                demand: self.demand_now(s, &declared, at),
                slots: s.demand,
                running: s.placement.clone(),
                offers: s.offers.as_ref().map(offer_terms),
            })
            .collect();
        Ok(LiveState {
            infrastructure,
            unavailable,
            free,
            instances,
            regions: geo.regions,
            knowledge_base: self.knowledge_base()?,
            services,
            at,
        })
    }

    /// `GET /1.0/state`: the live state as the pipeline sees it (admins: everything;
    /// providers: their own services only, the infrastructure and regions as they are).
    pub fn state_for(&self, caller: &Principal) -> Result<LiveState, DomainError> {
        let mut st = self.live_state(&[])?;
        if !caller.is_admin() {
            let mine: BTreeSet<String> = self.visible_services(caller)?.into_iter().map(|s| s.serviceid).collect();
            st.services.retain(|s| mine.contains(&s.service.name));
            st.instances.retain(|i| mine.contains(&i.service));
        }
        Ok(st)
    }
}

/// An offer round's valid offers as the pipeline's offer stage reads them.
fn offer_terms(round: &crate::offers::OfferRound) -> Vec<OfferTerms> {
    let now = zonal_proto::now_ms();
    round
        .received
        .iter()
        .filter(|o| o.expires_ms > now)
        .map(|o| OfferTerms {
            zone: o.zone.clone(),
            environments: o
                .environments
                .iter()
                .map(|e| OfferedHost { host: e.environment.clone(), score: e.score, slots: e.slots, price: e.price })
                .collect(),
        })
        .collect()
}
