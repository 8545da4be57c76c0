//! The deployment coordinator: drives every service towards its target, zone by zone.
//!
//! A service's target is the placement pipeline's decision ([`crate::decisions`]): instances
//! per component per zone, the hosts the plan chose, the channels that cross zones and the
//! profiles of tagged components. Each zone gets its **share** in `PUT …/slots`
//! ([`zonal_proto::wire::ZoneSlotsChange`]): its counts, its planned hosts, the overrides of
//! its components, the accepted offer (services with an evaluator) and the **remote peers**:
//! for every channel whose source runs in the zone and whose target does not, the target
//! zone's gateway address for each of the target's ports (`component/port → host:port`),
//! which the zone relays to through a local listener (late binding finds them in the
//! zone's namespace too). A zone's share is sent only once the zones it needs peers from
//! report their gateways (so its instances start with every `ZONAL_PEER_*`), or after
//! [`PEER_WAIT`] when they do not (a cycle of channels across zones); it is sent again when
//! anything in it changes (a peer's gateway moved).
//!
//! FUSION's deployment protocol (seed 001 §4.1, steps 1–12) per zone: register the service
//! (`POST /1.0/services`, with its owner: the zone keeps overlays within one provider unless
//! a service shares), set its share (`PUT …/slots`), deploy (`PUT …/state`). Each step
//! is idempotent at the zone and recorded in the service's progress as soon as the zone
//! confirms it, so a domain stopped mid-deployment resumes where it was. A failed step is
//! retried with exponential backoff ([`Backoff::RETRY`]); the error is shown in the service's
//! `message` meanwhile.
//!
//! **Safe order.** When a decision replaces a target, the old one is kept as `previous` and
//! every zone gets the larger of its old and new counts, until every zone of the new target
//! runs its new instances; only then do the zones get their final counts. Zones that lose
//! instances scale in by draining (decommissioned instances take no new session and stop
//! once idle: sessions are not cut), and zones that leave the placement first drain to zero
//! and are then told to drop the service, at the latest after the drain timeout. So a slot
//! service never has fewer instances serving than its old target during a re-placement.
//!
//! **Termination and deletion** cascade: `DELETE /1.0/services/{id}` at every zone that
//! holds the service until each answers 204 or 404; only then is the target (or, for a
//! delete, the service) dropped — and with it the channel bandwidth it reserved.
//!
//! **Lost zones.** A zone silent for `zone_timeout + replace_after` makes the pipeline decide
//! again without it (`ZoneLost`); the old zone is told to drop the service when it returns.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zonal_control::backoff::Backoff;
use zonal_model::Allocation;
use zonal_place::decide::Trigger;
use zonal_proto::wire::{ComponentOverride, StateChange, ZoneServiceRegister, ZoneSlotsChange};
use zonal_proto::{now_ms, ClientError};

use crate::core::DomainCore;
use crate::decisions::{push_event, DecideFailure};
use crate::services::{ServiceRecord, ServiceState, Target};

/// How long a zone's share waits for the gateways of its remote peers.
pub const PEER_WAIT: Duration = Duration::from_secs(5);

enum Outcome {
    /// Nothing more to do now.
    Done,
    /// Waiting for zones (instances starting or stopping): look again soon.
    Pending,
    /// A step failed.
    Failed(String),
}

/// What one zone should be told.
struct Share {
    change: ZoneSlotsChange,
    /// Remote peers it needs whose gateways are not known yet.
    waiting_for: Vec<String>,
}

impl DomainCore {
    /// Zones of the target that have been gone too long.
    fn lost_zones(&self, s: &ServiceRecord) -> Vec<String> {
        s.placement
            .as_ref()
            .map(|p| p.zones.keys().filter(|z| self.zone_lost(z)).cloned().collect())
            .unwrap_or_default()
    }

    fn needs_work(&self, s: &ServiceRecord) -> bool {
        match s.target {
            Target::Deployed => {
                s.state != ServiceState::Deployed
                    || s.placement.is_none()
                    || s.previous.is_some()
                    || !s.cleanup.is_empty()
                    || !s.draining.is_empty()
                    || s.progress.values().any(|p| !p.done())
                    || !self.lost_zones(s).is_empty()
                    || self.shares(s).iter().any(|(z, share)| {
                        share.waiting_for.is_empty()
                            && s.progress.get(z).and_then(|p| p.sent.as_ref()) != Some(&share.change)
                    })
            }
            Target::Registered | Target::Terminated => s.holds_zones() || s.state == ServiceState::Terminating,
            Target::Deleted => true,
        }
    }

    /// One pass over every service that needs work. Returns the wait before the next pass.
    pub async fn coordinate(&self) -> Duration {
        let services = match self.service_records() {
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

    /// A decision made by the coordinator itself: a service without a target (pending, or
    /// placed while the domain was down) or one that lost zones.
    async fn decide_here(&self, s: &ServiceRecord, trigger: Trigger) -> Outcome {
        let _one = self.one_decision().await;
        let id = s.serviceid.clone();
        let Ok(fresh) = self.service_record(&id) else { return Outcome::Done };
        if fresh.generation != s.generation {
            return Outcome::Done; // changed meanwhile: the next pass sees the new record
        }
        let started = Instant::now();
        let decided = self.decide_for(&fresh, trigger.clone(), true).await;
        self.count_decision(&decided, started);
        match decided {
            Ok((decision, round)) => {
                self.commit(&id, fresh.generation, |r| {
                    self.apply_decision(r, decision, round);
                    false
                });
                Outcome::Done
            }
            Err(e) => {
                let pending = matches!(e, DecideFailure::Refused(_));
                let msg = format!("cannot place service {id} ({}): {e}", trigger.describe());
                self.commit(&id, fresh.generation, |r| {
                    if pending {
                        r.state = ServiceState::Pending;
                    }
                    if r.message.as_deref() != Some(msg.as_str()) {
                        push_event(r, if pending { "pending" } else { "refused" }, msg.clone());
                    }
                    false
                });
                Outcome::Failed(msg)
            }
        }
    }

    /// What each zone of the target (and, during a transition, of the previous target)
    /// should be told (see the module docs).
    fn shares(&self, s: &ServiceRecord) -> BTreeMap<String, Share> {
        let mut out = BTreeMap::new();
        let Some(target) = &s.placement else { return out };
        let effective: Allocation = match &s.previous {
            Some(prev) => crate::decisions::union_max(target, prev),
            None => target.clone(),
        };
        for (zone, comps) in &effective.zones {
            let mut change = ZoneSlotsChange {
                instances: comps.clone(),
                hosts: effective.hosts.get(zone).cloned().unwrap_or_default(),
                ..Default::default()
            };
            for comp in comps.keys() {
                if let Some(o) = target.overrides.get(comp) {
                    change.overrides.insert(
                        comp.clone(),
                        ComponentOverride { resources: o.resources.clone(), requires: o.requires.clone() },
                    );
                }
            }
            if let Some(taken) = s.offers.as_ref().and_then(|o| o.taken_in(zone)) {
                change.slots = Some(taken.slots);
                change.offer = Some(taken.offer.clone());
            }
            let mut waiting_for = Vec::new();
            for ch in &s.service.channels {
                let here = |c: &str| effective.count(zone, c) > 0;
                if !here(&ch.from) || here(&ch.to) {
                    continue;
                }
                // Where the target component runs: the end of the path the plan chose from
                // this zone, else the first zone running it.
                let to_zone = target
                    .paths
                    .iter()
                    .find(|p| p.from == ch.from && p.to == ch.to && p.zones.first() == Some(zone))
                    .and_then(|p| p.zones.last().cloned())
                    .or_else(|| effective.zones.iter().find(|(_, c)| c.contains_key(&ch.to)).map(|(z, _)| z.clone()));
                let Some(to_zone) = to_zone else { continue };
                let gateways = self.gateways_of(&to_zone, &s.serviceid, &ch.to);
                if gateways.is_empty() {
                    waiting_for.push(format!("{}@{to_zone}", ch.to));
                }
                for (port, addr) in gateways {
                    change.remote_peers.insert(format!("{}/{port}", ch.to), addr);
                }
            }
            out.insert(zone.clone(), Share { change, waiting_for });
        }
        out
    }

    async fn deploy(&self, s: ServiceRecord) -> Outcome {
        let id = s.serviceid.clone();
        let gen = s.generation;
        if s.placement.is_none() {
            return self.decide_here(&s, Trigger::Apply).await;
        }
        let lost = self.lost_zones(&s);
        if !lost.is_empty() {
            tracing::warn!(service = id, zones = ?lost, "zones missed their heartbeats for too long: deciding again");
            return self.decide_here(&s, Trigger::ZoneLost { zones: lost }).await;
        }
        let shares = self.shares(&s);
        let mut pending = false;
        for (zone, share) in &shares {
            let mut prog = s.progress.get(zone).cloned().unwrap_or_default();
            let current = prog.sent.as_ref() == Some(&share.change);
            if prog.registered && prog.deployed && current {
                continue;
            }
            if !share.waiting_for.is_empty() {
                let since = s.decision.as_ref().map_or(0, |d| d.at_ms);
                if now_ms().saturating_sub(since) < PEER_WAIT.as_millis() as u64 {
                    pending = true;
                    continue; // its peers' gateways first
                }
            }
            let client = match self.zone_client(zone) {
                Ok(c) => c,
                Err(e) => return Outcome::Failed(e.to_string()),
            };
            let result: Result<(), ClientError> = async {
                if !prog.registered {
                    let body = ZoneServiceRegister {
                        serviceid: id.clone(),
                        manifest: s.manifest.clone(),
                        owner: Some(s.owner.clone()),
                    };
                    client.post::<_, serde_json::Value>("/1.0/services", &body).await?;
                    prog.registered = true;
                }
                if !current {
                    client.put::<_, serde_json::Value>(&format!("/1.0/services/{id}/slots"), &share.change).await?;
                    prog.sent = Some(share.change.clone());
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
            tracing::info!(service = id, zone, "zone share sent");
        }
        // A transition ends when every zone of the new target runs its new instances.
        if let (Some(target), Some(_)) = (&s.placement, &s.previous) {
            let serving = target.zones.iter().all(|(zone, comps)| {
                let running = self.running_in(zone, &id);
                comps.iter().all(|(c, n)| running.get(c).copied().unwrap_or(0) >= *n)
            });
            if serving {
                self.commit(&id, gen, |r| {
                    if let Some(prev) = r.previous.take() {
                        let keep: BTreeSet<String> = r.placement.iter().flat_map(|p| p.zones.keys()).cloned().collect();
                        for z in prev.zones.keys().filter(|z| !keep.contains(*z)) {
                            r.progress.remove(z);
                            r.draining.entry(z.clone()).or_insert(0);
                        }
                        push_event(r, "serving", "the new placement serves: old instances drain");
                    }
                    false
                });
                return Outcome::Pending;
            }
            pending = true;
        }
        // Zones leaving the placement drain to zero, then drop the service; zones that only
        // held it for an offer round (or hold it without the domain placing it) drop it now.
        for zone in s.draining.keys().cloned().collect::<Vec<_>>() {
            match self.drain_zone(&s, &zone).await {
                Ok(true) => {
                    self.commit(&id, gen, |r| {
                        r.draining.remove(&zone);
                        false
                    });
                }
                Ok(false) => pending = true,
                Err(e) => tracing::debug!(service = id, zone, "cannot remove the service from an old zone yet: {e}"),
            }
        }
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
        let all_sent = shares.iter().all(|(z, share)| {
            self.service_record(&id)
                .ok()
                .and_then(|r| r.progress.get(z).cloned())
                .is_some_and(|p| p.done() && p.sent.as_ref() == Some(&share.change))
        });
        if all_sent && s.previous.is_none() {
            self.commit(&id, gen, |r| {
                if r.state != ServiceState::Deployed {
                    tracing::info!(service = id, "deployed");
                }
                r.state = ServiceState::Deployed;
                r.message = None;
                r.attempt = 0;
                false
            });
        }
        if pending {
            Outcome::Pending
        } else {
            Outcome::Done
        }
    }

    /// A zone leaving `s`'s placement: first it is told to keep no instance (decommissioned
    /// instances take no new session and stop once idle), then — when it holds none, or after
    /// the drain timeout — it drops the service. A zone that cannot be told yet (down) is told
    /// when it is back. Ok(true) when gone.
    async fn drain_zone(&self, s: &ServiceRecord, zone: &str) -> Result<bool, String> {
        if self.zone_record(zone).is_err() {
            return Ok(true); // the zone itself is gone
        }
        let id = &s.serviceid;
        let mut since = s.draining.get(zone).copied().unwrap_or(0);
        if since == 0 {
            if !self.zone_available(zone) {
                return Ok(false);
            }
            let client = self.zone_client(zone).map_err(|e| e.to_string())?;
            let body = ZoneSlotsChange::default();
            match client.put::<_, serde_json::Value>(&format!("/1.0/services/{id}/slots"), &body).await {
                Ok(_) => {}
                Err(e) if e.status() == Some(404) => return Ok(true),
                Err(e) if e.status().is_some() => {} // refusing to drain: it is asked to drop it below
                Err(e) => return Err(e.to_string()),
            }
            since = now_ms();
            let z = zone.to_string();
            self.commit(id, s.generation, |r| {
                r.draining.insert(z, since);
                false
            });
        }
        let timed_out = now_ms().saturating_sub(since) >= self.decisions.drain_timeout.as_millis() as u64;
        let held = self.held_in(zone, id);
        if held > 0 && !timed_out {
            return Ok(false);
        }
        if timed_out && held > 0 {
            let _ = self.update_service_quietly(id, |r| {
                push_event(
                    r,
                    "drain-timeout",
                    format!(
                        "zone {zone}: {held} instance(s) still held sessions after the drain timeout; stopping them"
                    ),
                )
            });
        }
        self.remove_from_zone(id, zone).await
    }

    /// Asks `zone` to terminate and unregister service `id`. Ok(true) when gone.
    async fn remove_from_zone(&self, id: &str, zone: &str) -> Result<bool, String> {
        if self.zone_record(zone).is_err() {
            return Ok(true); // the zone itself is gone
        }
        let client = self.zone_client(zone).map_err(|e| e.to_string())?;
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
        let zones = s.zones_holding();
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
                r.draining.remove(z);
                r.progress.remove(z);
                if let Some(p) = &mut r.placement {
                    p.zones.remove(z);
                    p.hosts.remove(z);
                }
                if let Some(p) = &mut r.previous {
                    p.zones.remove(z);
                }
            }
            if r.placement.as_ref().is_some_and(|p| p.zones.is_empty()) {
                r.placement = None;
            }
            if finished {
                r.placement = None;
                r.previous = None;
                r.progress.clear();
                r.cleanup.clear();
                r.draining.clear();
                r.message = None;
                r.attempt = 0;
                match target {
                    Target::Deleted => {
                        tracing::info!(service = id, "deleted");
                        return true;
                    }
                    Target::Terminated => r.state = ServiceState::Terminated,
                    _ => r.state = ServiceState::Registered,
                }
                push_event(r, "withdrawn", "withdrawn from all zones; its channel bandwidth is released");
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
            _ = core.kicked() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
