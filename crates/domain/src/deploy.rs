//! The deployment coordinator: drives every service towards its target, zone by zone.
//!
//! FUSION's deployment protocol (seed 001 §4.1, steps 1–12) without offers: place the
//! service (the pure placer of `zonal-control`), then in each chosen zone register the
//! service (`POST /1.0/services`), set the instances wanted (`PUT …/slots`) and deploy
//! (`PUT …/state`). Each step is idempotent at the zone and recorded in the service's
//! progress in the store as soon as the zone confirms it, so a domain stopped mid-deployment
//! resumes where it was. A failed step is retried with exponential backoff
//! ([`Backoff::RETRY`]); the error is shown in the service's `message` meanwhile.
//!
//! Termination and deletion cascade: `DELETE /1.0/services/{id}` at every zone that holds
//! the service (the zone stops the instances through its adaptor, then unregisters it) until
//! each answers 204 or 404; only then is the placement (or, for a delete, the service)
//! dropped.
//!
//! Zones that miss heartbeats for `zone_timeout + replace_after` lose their services: the
//! placer runs again without them, and the old zone is told to drop the service when it
//! comes back.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use zonal_control::backoff::Backoff;
use zonal_control::place::{place_service, PlacementDemand};
use zonal_proto::wire::{StateChange, ZoneServiceRegister, ZoneSlotsChange};
use zonal_proto::{now_ms, ClientError};
use zonal_store::StoreExt;

use crate::core::{DomainCore, ServiceRecord, Target, T_SERVICES};

enum Outcome {
    /// Nothing more to do now.
    Done,
    /// Waiting for zones (e.g. instances stopping): look again soon.
    Pending,
    /// A step failed.
    Failed(String),
}

impl DomainCore {
    /// Applies `f` to the stored record if nobody changed it since `generation`.
    fn commit(&self, id: &str, generation: u64, f: impl FnOnce(&mut ServiceRecord) -> bool) -> bool {
        let _g = self.lock_services();
        let Ok(Some(mut s)) = self.store.get::<ServiceRecord>(T_SERVICES, id) else { return false };
        if s.generation != generation {
            return false;
        }
        let delete = f(&mut s);
        let r = if delete { self.store.delete(T_SERVICES, id) } else { self.store.put(T_SERVICES, id, &s) };
        if let Err(e) = r {
            tracing::error!(service = id, "cannot record deployment progress: {e}");
            return false;
        }
        true
    }

    fn needs_work(&self, s: &ServiceRecord) -> bool {
        match s.target {
            Target::Deployed => {
                s.state != "deployed"
                    || s.placement.is_none()
                    || !s.cleanup.is_empty()
                    || s.progress.values().any(|p| !p.done())
                    || (DomainCore::places_by_offers(s) && s.offers.is_none())
                    || s.placement.as_ref().is_some_and(|p| {
                        p.zones.keys().any(|z| self.zone_down_for(z).is_some_and(|d| d > self.timing.replace_after))
                    })
            }
            Target::Registered | Target::Terminated => {
                s.placement.is_some() || !s.cleanup.is_empty() || s.state == "terminating"
            }
            Target::Deleted => true,
        }
    }

    /// One pass over every service that needs work. Returns the wait before the next pass.
    pub async fn coordinate(&self) -> Duration {
        let services = match self.store.list::<ServiceRecord>(T_SERVICES, "") {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot read services: {e}");
                return Duration::from_secs(1);
            }
        };
        let mut wait = Duration::from_millis(500);
        for (id, s) in services {
            if !self.needs_work(&s) {
                continue;
            }
            let now = now_ms();
            if s.next_try_ms > now {
                wait = wait.min(Duration::from_millis(s.next_try_ms - now));
                continue;
            }
            let gen = s.generation;
            let outcome = match s.target {
                Target::Deployed => self.deploy(s).await,
                _ => self.withdraw(s).await,
            };
            match outcome {
                Outcome::Done => {}
                Outcome::Pending => {
                    self.commit(&id, gen, |r| {
                        r.next_try_ms = now_ms() + 100;
                        false
                    });
                    wait = wait.min(Duration::from_millis(100));
                }
                Outcome::Failed(msg) => {
                    let mut delay = 0;
                    self.commit(&id, gen, |r| {
                        delay = Backoff::RETRY.delay(r.attempt);
                        if r.message.as_ref() != Some(&msg) {
                            tracing::warn!(service = id, "deployment step failed (retrying): {msg}");
                        }
                        r.attempt = r.attempt.saturating_add(1);
                        r.next_try_ms = now_ms() + delay;
                        r.message = Some(msg);
                        false
                    });
                    wait = wait.min(Duration::from_millis(delay.max(10)));
                }
            }
        }
        wait
    }

    async fn deploy(&self, mut s: ServiceRecord) -> Outcome {
        let id = s.serviceid.clone();
        let gen = s.generation;
        // Re-place when a zone of the placement has been gone too long.
        let lost: Vec<String> = s
            .placement
            .as_ref()
            .map(|p| {
                p.zones
                    .keys()
                    .filter(|z| self.zone_down_for(z).is_some_and(|d| d > self.timing.replace_after))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if !lost.is_empty() {
            tracing::warn!(service = id, zones = ?lost, "zones missed their heartbeats for too long: placing the service again");
        }
        let by_offers = DomainCore::places_by_offers(&s);
        if s.placement.is_none() || !lost.is_empty() || (by_offers && s.offers.is_none()) {
            let summaries = match self.zone_summaries() {
                Ok(z) => z,
                Err(e) => return Outcome::Failed(e.body.detail),
            };
            let (allocation, round) = if by_offers {
                // Zones that missed their heartbeats for too long make no offers.
                let candidates: Vec<_> = summaries.into_iter().filter(|z| !lost.contains(&z.name)).collect();
                match self.place_by_offers(&s, &candidates).await {
                    Ok((a, round)) => (a, Some(round)),
                    Err(e) => return Outcome::Failed(format!("cannot place service {id}: {e}")),
                }
            } else {
                match place_service(&summaries, &s.service, &PlacementDemand { slots: s.demand }) {
                    Ok(a) => (a, None),
                    Err(e) => return Outcome::Failed(format!("cannot place service {id}: {e}")),
                }
            };
            let old: BTreeSet<String> = s.placement.iter().flat_map(|p| p.zones.keys().cloned()).collect();
            let ok = self.commit(&id, gen, |r| {
                for z in &old {
                    if !allocation.zones.contains_key(z) {
                        r.cleanup.insert(z.clone());
                    }
                }
                r.progress.retain(|z, _| allocation.zones.contains_key(z));
                for z in allocation.zones.keys() {
                    // Zones kept from the old placement get their new share too.
                    r.progress.entry(z.clone()).or_default().scaled = false;
                    r.cleanup.remove(z);
                }
                tracing::info!(service = id, placement = ?allocation.zones, "placed");
                r.placement = Some(allocation.clone());
                r.state = "deploying".into();
                r.message = round
                    .as_ref()
                    .filter(|o| o.uncovered > 0)
                    .map(|o| format!("the offers covered {} of {} session slots", o.slots - o.uncovered, o.slots));
                if let Some(round) = &round {
                    for z in DomainCore::asked_but_not_chosen(r, round, &allocation) {
                        r.cleanup.insert(z);
                    }
                    r.offers = Some(round.clone());
                }
                false
            });
            if !ok {
                return Outcome::Done; // changed meanwhile: the next pass sees the new record
            }
            match self.service_record(&id) {
                Ok(fresh) => s = fresh,
                Err(_) => return Outcome::Done,
            }
        }
        let Some(placement) = s.placement.clone() else { return Outcome::Done };
        for (zone, components) in &placement.zones {
            let mut prog = s.progress.get(zone).cloned().unwrap_or_default();
            if prog.done() {
                continue;
            }
            let client = match self.zone_client(zone) {
                Ok(c) => c,
                Err(e) => return Outcome::Failed(e),
            };
            let result: Result<(), ClientError> = async {
                if !prog.registered {
                    let body = ZoneServiceRegister { serviceid: id.clone(), manifest: s.manifest.clone() };
                    client.post::<_, serde_json::Value>("/1.0/services", &body).await?;
                    prog.registered = true;
                }
                if !prog.scaled {
                    // Placed by offers: this zone's share and the offer it accepts.
                    let taken = s.offers.as_ref().and_then(|o| o.taken_in(zone));
                    let body = ZoneSlotsChange {
                        instances: components.clone(),
                        slots: taken.map(|t| t.slots).or((s.demand > 0).then_some(s.demand)),
                        offer: taken.map(|t| t.offer.clone()),
                        ..Default::default()
                    };
                    client.put::<_, serde_json::Value>(&format!("/1.0/services/{id}/slots"), &body).await?;
                    prog.scaled = true;
                }
                if !prog.deployed {
                    let body = StateChange { state: "deploy".into() };
                    client.put::<_, serde_json::Value>(&format!("/1.0/services/{id}/state"), &body).await?;
                    prog.deployed = true;
                }
                Ok(())
            }
            .await;
            let step_ok = result.is_ok();
            let z = zone.clone();
            let p = prog.clone();
            if !self.commit(&id, gen, |r| {
                r.progress.insert(z, p);
                false
            }) {
                return Outcome::Done;
            }
            if let Err(e) = result {
                return Outcome::Failed(format!("zone {zone}: {e}"));
            }
            debug_assert!(step_ok);
            tracing::info!(service = id, zone, "deployed in zone");
        }
        // Old zones drop the service (best effort, retried).
        let mut pending = false;
        for zone in s.cleanup.clone() {
            match self.remove_from_zone(&id, &zone).await {
                Ok(true) => {
                    self.commit(&id, gen, |r| {
                        r.cleanup.remove(&zone);
                        false
                    });
                }
                Ok(false) => pending = true,
                Err(e) => tracing::debug!(service = id, zone, "cannot remove the service from an old zone yet: {e}"),
            }
        }
        let all_done = self.commit(&id, gen, |r| {
            if r.state != "deployed" {
                tracing::info!(service = id, "deployed");
            }
            r.state = "deployed".into();
            if r.offers.as_ref().is_none_or(|o| o.uncovered == 0) {
                r.message = None;
            }
            r.attempt = 0;
            false
        });
        if pending && all_done {
            Outcome::Pending
        } else {
            Outcome::Done
        }
    }

    /// Asks `zone` to terminate and unregister service `id`. Ok(true) when gone.
    async fn remove_from_zone(&self, id: &str, zone: &str) -> Result<bool, String> {
        if self.zone_record(zone).is_err() {
            return Ok(true); // the zone itself is gone
        }
        let client = self.zone_client(zone)?;
        match client.delete(&format!("/1.0/services/{id}")).await {
            Ok(202) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(true),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn withdraw(&self, s: ServiceRecord) -> Outcome {
        let id = s.serviceid.clone();
        let gen = s.generation;
        let zones: BTreeSet<String> =
            s.placement.iter().flat_map(|p| p.zones.keys().cloned()).chain(s.cleanup.iter().cloned()).collect();
        let mut pending = false;
        let mut failure = None;
        let mut gone = BTreeSet::new();
        for zone in &zones {
            match self.remove_from_zone(&id, zone).await {
                Ok(true) => {
                    gone.insert(zone.clone());
                }
                Ok(false) => pending = true,
                Err(e) => failure = Some(format!("zone {zone}: {e}")),
            }
        }
        let finished = !pending && failure.is_none();
        let target = s.target;
        self.commit(&id, gen, |r| {
            for z in &gone {
                r.cleanup.remove(z);
                r.progress.remove(z);
                if let Some(p) = &mut r.placement {
                    p.zones.remove(z);
                }
            }
            if r.placement.as_ref().is_some_and(|p| p.zones.is_empty()) {
                r.placement = None;
            }
            if finished {
                r.placement = None;
                r.progress.clear();
                r.cleanup.clear();
                r.message = None;
                r.attempt = 0;
                match target {
                    Target::Deleted => {
                        tracing::info!(service = id, "deleted");
                        return true;
                    }
                    Target::Terminated => r.state = "terminated".into(),
                    _ => r.state = "registered".into(),
                }
                tracing::info!(service = id, state = r.state, "withdrawn from all zones");
            }
            false
        });
        match failure {
            Some(f) => Outcome::Failed(f),
            None if pending => Outcome::Pending,
            None => Outcome::Done,
        }
    }
}

/// The coordinator loop: a pass on every kick (an API change, a zone event) and at least
/// every half second. Runs until `stop` turns true.
pub async fn run(core: Arc<DomainCore>, mut stop: watch::Receiver<bool>) {
    loop {
        let wait = core.coordinate().await;
        tokio::select! {
            _ = core.kick.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
