//! Placement via offers (FUSION S3, §2.7.4): for a service that names an evaluator, the
//! domain asks every candidate zone for an offer at once (`POST /1.0/services/{id}/offers`
//! with the manifest, the slots wanted, the demand regions and its RTT estimates from each
//! region to that zone) and waits until the offer deadline. The offers that arrived are the
//! input of the placement pipeline's offer stage (`zonal_place::decide::stages::offers`):
//! only the offered environments may take the service, and their scores weigh in the
//! objective. The round — offers received, zones that made none and why, what the decision
//! took — is kept on the service (`GET /1.0/services/{id}/offers`).
//!
//! Each zone of the target then gets its share with the offer's id in `PUT …/slots`, which
//! accepts the offer (the zone stops a component evaluator it ran for the round).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use zonal_control::evaluate::{evaluator_of, slots_wanted, Offer};
use zonal_control::geography::{Client as GeoClient, Estimator, ZonePlace};
use zonal_control::place::{instance_counts, zone_admits, Allocation, PlacementDemand, ZoneSummary};
use zonal_model::EvaluatorRef;
use zonal_proto::wire::OfferRequest;
use zonal_proto::{now_ms, ClientError, Principal};
use zonal_store::StoreExt;

use crate::core::DomainCore;
use crate::error::DomainError;
use crate::services::ServiceRecord;
use crate::zones::{ZoneRecord, T_ZONES};

/// How long the domain waits for zones' offers unless told otherwise.
pub const DEFAULT_OFFER_DEADLINE: Duration = Duration::from_secs(2);
/// How long the domain asks offers to stay valid: long enough to deploy on them.
pub const OFFER_VALIDITY: Duration = Duration::from_secs(60);

/// One zone's share of an offer round's choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakenOffer {
    pub offer: String,
    pub zone: String,
    pub slots: u32,
}

/// One round of offers for a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferRound {
    pub at_ms: u64,
    /// Session slots asked for.
    pub slots: u32,
    pub deadline_ms: u64,
    /// Zones the request was sent to.
    pub asked: Vec<String>,
    /// Every offer that arrived in time.
    pub received: Vec<Offer>,
    /// Zones that made no offer, and why (not a candidate, declined, too late, unreachable).
    pub declined: BTreeMap<String, String>,
    /// What the domain took, per zone.
    pub taken: Vec<TakenOffer>,
    /// Slots no offer covered.
    pub uncovered: u32,
}

impl OfferRound {
    /// The offer taken in `zone`, if any.
    pub fn taken_in(&self, zone: &str) -> Option<&TakenOffer> {
        self.taken.iter().find(|t| t.zone == zone)
    }
}

impl DomainCore {
    /// Whether the service is placed by offers (it names an evaluator).
    pub(crate) fn places_by_offers(s: &ServiceRecord) -> bool {
        evaluator_of(&s.service).is_some()
    }

    /// Zones that hold the service only because they were asked for an offer: a zone runs a
    /// component evaluator inside the service, so the zones not chosen must drop it again.
    pub(crate) fn asked_but_not_chosen(s: &ServiceRecord, round: &OfferRound, chosen: &Allocation) -> Vec<String> {
        let component_evaluator =
            evaluator_of(&s.service).is_some_and(|(_, e)| matches!(e, EvaluatorRef::Component { .. }));
        if !component_evaluator {
            return Vec::new();
        }
        round.asked.iter().filter(|z| !chosen.zones.contains_key(*z)).cloned().collect()
    }

    /// Runs an offer round for `s` over the zones in `summaries`: every candidate zone is
    /// asked at once and the offers that arrive by the deadline are kept with why each other
    /// zone made none. The choice among them is the placement pipeline's (its offer stage).
    pub(crate) async fn offer_round_for(
        &self,
        s: &ServiceRecord,
        summaries: &[ZoneSummary],
    ) -> Result<OfferRound, DomainError> {
        let id = &s.serviceid;
        let slots = slots_wanted(&s.service, s.demand);
        let deadline = self.timing.offer_deadline;
        let geo = self.geography()?;
        let est = Estimator::new(&geo);
        let records: BTreeMap<String, ZoneRecord> = self.store.list::<ZoneRecord>(T_ZONES, "")?.into_iter().collect();
        let places: Vec<ZonePlace> =
            records.iter().map(|(n, r)| ZonePlace { name: n, location: r.registration.location }).collect();
        let regions: BTreeMap<String, f64> = geo.regions.iter().map(|r| (r.name.clone(), r.weight)).collect();
        let minimum = instance_counts(&s.service, &PlacementDemand { slots: 0 });
        let mut round =
            OfferRound { at_ms: now_ms(), slots, deadline_ms: deadline.as_millis() as u64, ..Default::default() };
        let mut asks = JoinSet::new();
        for zone in summaries {
            // Room is the zone's to judge: its offer counts what the service's own instances
            // there hold, which the heartbeat's free capacity does not.
            if let Err(why) = zone_admits(zone, &s.service, &minimum) {
                round.declined.insert(zone.name.clone(), format!("not a candidate: {why}"));
                continue;
            }
            let Some(place) = places.iter().find(|p| p.name == zone.name).copied() else { continue };
            let region_rtt_ms: BTreeMap<String, f64> = geo
                .regions
                .iter()
                .filter_map(|r| {
                    let (rtt, _) = est.rtt(&GeoClient::Region(r.clone()), place, &places)?;
                    Some((r.name.clone(), rtt))
                })
                .collect();
            let body = OfferRequest {
                serviceid: Some(id.clone()),
                manifest: s.manifest.clone(),
                slots,
                regions: regions.clone(),
                region_rtt_ms,
                deadline_ms: Some(deadline.as_millis() as u64),
                validity_ms: Some(OFFER_VALIDITY.as_millis() as u64),
                owner: Some(s.owner.clone()),
            };
            let client = match self.zone_client_within(&zone.name, deadline) {
                Ok(c) => c,
                Err(e) => {
                    round.declined.insert(zone.name.clone(), e.to_string());
                    continue;
                }
            };
            let name = zone.name.clone();
            round.asked.push(name.clone());
            let path = format!("/1.0/services/{id}/offers");
            asks.spawn(async move {
                let r = client.post::<_, Offer>(&path, &body).await;
                (name, r)
            });
        }
        let asked = round.asked.clone();
        let stop = tokio::time::Instant::now() + deadline;
        while let Ok(Some(done)) = tokio::time::timeout_at(stop, asks.join_next()).await {
            let Ok((zone, answer)) = done else { continue };
            match answer {
                Ok(offer) if offer.zone == zone && offer.service == *id => round.received.push(offer),
                Ok(offer) => {
                    round.declined.insert(
                        zone.clone(),
                        format!("answered with an offer for {}/{} instead", offer.zone, offer.service),
                    );
                }
                // The zone's own explanation when it gave one (no usable environment, …).
                Err(ClientError::Api { body, .. }) => {
                    round.declined.insert(zone, body.detail);
                }
                Err(e) => {
                    round.declined.insert(zone, e.to_string());
                }
            }
        }
        asks.abort_all();
        for zone in asked {
            let answered = round.received.iter().any(|o| o.zone == zone) || round.declined.contains_key(&zone);
            if !answered {
                round.declined.insert(zone, format!("no offer within the {} ms deadline", deadline.as_millis()));
            }
        }
        round.received.sort_by(|a, b| a.zone.cmp(&b.zone));
        Ok(round)
    }

    /// `GET /1.0/services/{id}/offers`: the service's last offer round.
    pub fn offer_round(&self, caller: &Principal, id: &str) -> Result<Option<OfferRound>, DomainError> {
        Ok(self.visible_service(caller, id)?.offers)
    }
}
