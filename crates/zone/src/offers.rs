//! The zone's side of placement via offers (FUSION S3, §2.6.2.2, §7.2.2): the domain asks
//! `POST /1.0/services/{id}/offers` (or `POST /1.0/offers` with `serviceid` in the body), the
//! zone lists its environments for the service's entry component, has the service's evaluator
//! score each one within the deadline, and answers with a binding offer it keeps until it
//! expires (`GET`/`DELETE` on `/1.0/offers[/{id}]` and `/1.0/services/{id}/offers`).
//!
//! Evaluators: the built-in ones are called in process; a provider's evaluator (`evaluator:
//! {url: …}`) gets one `POST {url}/1.0/evaluations` per environment, all at once, and an
//! environment without an answer by the deadline is left out of the offer (and named in its
//! `left_out`). A component evaluator (one of the service's own components) is called the
//! same way on its instance's `evaluations` port (else its `admin` port); the zone registers
//! the service from the request's manifest if it does not hold it, and keeps one instance of
//! the evaluator running while the service is in the zone, deployed or not (FUSION: "ensure
//! evaluator instances exist").
//!
//! Offers live in memory: they are short-lived and re-requested by the domain after a
//! restart. An offer does not reserve capacity; when the domain accepts it (the offer id in
//! `PUT …/slots`), new instances go to the offered environments while they have room.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::JoinSet;
use zonal_control::evaluate::{
    build_offer, builtin, checked_score, evaluation_request, evaluator_of, zone_environments, Environment,
    EvaluationCall, EvaluationReply, EvaluationRequest, Offer,
};
use zonal_model::EvaluatorRef;
use zonal_proto::wire::OfferRequest;
use zonal_proto::{now_ms, Client};

use crate::core::ZoneCore;
use crate::error::ZoneError;

/// Time the zone may take for an offer when the domain names none.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
/// Longest deadline a request may ask for.
pub const MAX_DEADLINE: Duration = Duration::from_secs(30);
/// How long an offer stays valid when the domain names no validity.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(60);
/// Longest validity a request may ask for.
pub const MAX_VALIDITY: Duration = Duration::from_secs(3600);
/// The share of the deadline evaluators get; the rest is for building and sending the answer.
const EVALUATOR_SHARE: f64 = 0.75;

/// The zone's offers, until they expire or are deleted.
#[derive(Debug, Default)]
pub(crate) struct OfferBook {
    offers: BTreeMap<String, Offer>,
    /// Makes ids unique within the zone's run; the start time makes them unique across runs.
    next: u64,
}

impl OfferBook {
    fn prune(&mut self, now: u64) {
        self.offers.retain(|_, o| o.is_valid_at(now));
    }
}

fn bounded(asked_ms: Option<u64>, default: Duration, max: Duration, what: &str) -> Result<Duration, ZoneError> {
    match asked_ms {
        None => Ok(default),
        Some(0) => Err(ZoneError::Invalid(format!("{what}: expected a positive number of milliseconds, got 0"))),
        Some(ms) if Duration::from_millis(ms) > max => Err(ZoneError::Invalid(format!(
            "{what}: {ms} ms is longer than the {} ms this zone allows",
            max.as_millis()
        ))),
        Some(ms) => Ok(Duration::from_millis(ms)),
    }
}

impl ZoneCore {
    /// `POST /1.0/services/{id}/offers` (`path_id`) or `POST /1.0/offers` (`serviceid` in
    /// the body): evaluates this zone for the service and returns the offer it stores.
    pub async fn make_offer(&self, path_id: Option<&str>, req: OfferRequest) -> Result<Offer, ZoneError> {
        let id = match (path_id, req.serviceid.as_deref()) {
            (Some(p), Some(b)) if p != b => {
                return Err(ZoneError::Invalid(format!(
                    "serviceid {b:?} in the body does not match service {p:?} of the path"
                )))
            }
            (Some(p), _) => p.to_string(),
            (None, Some(b)) => b.to_string(),
            (None, None) => {
                return Err(ZoneError::Invalid("serviceid: expected the id of the service to evaluate".into()))
            }
        };
        let deadline = bounded(req.deadline_ms, DEFAULT_DEADLINE, MAX_DEADLINE, "deadline_ms")?;
        let validity = bounded(req.validity_ms, DEFAULT_VALIDITY, MAX_VALIDITY, "validity_ms")?;
        if req.slots == 0 || req.slots > zonal_model::limits::MAX_DEMAND_SLOTS {
            return Err(ZoneError::Invalid(format!(
                "slots: expected 1 to {} session slots to offer, found {}",
                zonal_model::limits::MAX_DEMAND_SLOTS,
                req.slots
            )));
        }
        for (field, map) in [("regions", &req.regions), ("region_rtt_ms", &req.region_rtt_ms)] {
            if let Some((r, v)) = map.iter().find(|(_, v)| !(v.is_finite() && **v >= 0.0 && **v <= 1e9)) {
                return Err(ZoneError::Invalid(format!(
                    "{field}.{r}: expected a non-negative number of at most 1e9, found {v}"
                )));
            }
        }
        let service = zonal_descriptor::parse_manifest(&format!("manifest of {id}"), &req.manifest)?;
        let (component, evaluator) = evaluator_of(&service).ok_or_else(|| {
            ZoneError::Unprocessable(format!(
                "service {id} names no evaluator (set `evaluator` on the service or its entry component)"
            ))
        })?;
        let hosts = self.hosts_free_for_offer(&id);
        let envs = zone_environments(&self.settings.name, &hosts, component, &self.settings.price, &req.region_rtt_ms);
        let request = evaluation_request(&service, component, req.slots, &req.regions);
        let budget = deadline.mul_f64(EVALUATOR_SHARE).max(Duration::from_millis(1));
        let (label, scored) = match evaluator {
            EvaluatorRef::Builtin { name } => {
                let ev = builtin(name)
                    .ok_or_else(|| ZoneError::Unprocessable(format!("service {id}: no built-in evaluator {name:?}")))?;
                let scored = envs.into_iter().map(|e| {
                    let s = ev.evaluate(&request, &e);
                    (e, Ok(s))
                });
                (name.clone(), scored.collect())
            }
            EvaluatorRef::Http { url } => (url.clone(), score_over_http(url, None, &request, envs, budget).await),
            EvaluatorRef::Component { component: c } => {
                let started = tokio::time::Instant::now();
                let scored = match self.evaluator_url(&id, &req.manifest, req.owner.as_deref(), c, budget).await? {
                    Ok((url, secret)) => {
                        let left = budget.saturating_sub(started.elapsed());
                        score_over_http(&url, Some(secret), &request, envs, left).await
                    }
                    Err(why) => envs.into_iter().map(|e| (e, Err(why.clone()))).collect(),
                };
                (format!("component {c}"), scored)
            }
        };
        let mut left_out = Vec::new();
        let mut usable: Vec<(Environment, f64)> = Vec::new();
        for (env, score) in scored {
            match score {
                Ok(_) if env.free_slots == 0 => left_out.push(format!("{}: no room for an instance", env.id)),
                Ok(s) if s <= 0.0 => left_out.push(format!("{}: scored 0 (unusable)", env.id)),
                Ok(s) => usable.push((env, s)),
                Err(why) => left_out.push(format!("{}: {why}", env.id)),
            }
        }
        let now = now_ms();
        let mut book = self.offer_book();
        book.prune(now);
        book.next += 1;
        let offer_id = format!("{}-{id}-{}-{}", self.settings.name, now, book.next);
        let Some(mut offer) = build_offer(offer_id, &request, &usable, now, validity.as_millis() as u64) else {
            return Err(ZoneError::Unprocessable(format!(
                "zone {} has no environment to offer for {id}: {}",
                self.settings.name,
                if left_out.is_empty() { "no available host".to_string() } else { left_out.join("; ") }
            )));
        };
        offer.service = id;
        offer.evaluator = label;
        offer.left_out = left_out;
        book.offers.insert(offer.id.clone(), offer.clone());
        Ok(offer)
    }

    /// The URL of the service's evaluator component in this zone and the instance's admin
    /// secret (which its evaluator API wants), starting it when none runs
    /// (the zone registers the service for that). `Ok(Err(why))` when it is not ready within
    /// `budget`.
    async fn evaluator_url(
        &self,
        id: &str,
        manifest: &str,
        owner: Option<&str>,
        component: &str,
        budget: Duration,
    ) -> Result<Result<(String, String), String>, ZoneError> {
        self.want_evaluator(id, manifest, owner, component)?;
        let stop = tokio::time::Instant::now() + budget;
        loop {
            if let Some((port, secret)) = self.evaluator_port(id, component) {
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    return Ok(Ok((format!("http://{addr}"), secret)));
                }
            }
            if tokio::time::Instant::now() >= stop {
                return Ok(Err(format!(
                    "the evaluator component {component} was not answering within {} ms (starting)",
                    budget.as_millis()
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Valid offers, of one service or all.
    pub fn offers(&self, service: Option<&str>) -> Vec<Offer> {
        let mut book = self.offer_book();
        book.prune(now_ms());
        book.offers.values().filter(|o| service.is_none_or(|s| o.service == s)).cloned().collect()
    }

    /// One valid offer.
    pub fn offer(&self, id: &str) -> Result<Offer, ZoneError> {
        self.offers(None)
            .into_iter()
            .find(|o| o.id == id)
            .ok_or_else(|| ZoneError::NotFound(format!("no valid offer {id:?} in zone {}", self.settings.name)))
    }

    /// Flushes the offers of one service, or all; returns how many were dropped.
    pub fn delete_offers(&self, service: Option<&str>) -> usize {
        let mut book = self.offer_book();
        let before = book.offers.len();
        book.offers.retain(|_, o| service.is_some_and(|s| o.service != s));
        before - book.offers.len()
    }

    /// Deletes one offer.
    pub fn delete_offer(&self, id: &str) -> Result<(), ZoneError> {
        match self.offer_book().offers.remove(id) {
            Some(_) => Ok(()),
            None => Err(ZoneError::NotFound(format!("no offer {id:?} in zone {}", self.settings.name))),
        }
    }

    /// The environments of offer `id` for `service`, if it is still valid (the domain
    /// accepting it in `PUT …/slots`).
    pub(crate) fn offered_hosts(&self, service: &str, id: &str) -> Result<Vec<String>, ZoneError> {
        let offer = self.offer(id)?;
        if offer.service != service {
            return Err(ZoneError::Invalid(format!("offer {id} is for service {}, not {service}", offer.service)));
        }
        Ok(offer.environments.iter().map(|e| e.environment.clone()).collect())
    }
}

/// Asks a provider's evaluator to score every environment, all at once; an environment
/// without an answer within `budget` is reported as such.
async fn score_over_http(
    url: &str,
    secret: Option<String>,
    request: &EvaluationRequest,
    envs: Vec<Environment>,
    budget: Duration,
) -> Vec<(Environment, Result<f64, String>)> {
    // The budget below decides; the client's own timeout only stops requests left behind, so
    // a slow evaluator is always reported as "no answer within", not as a transport error.
    let bearer = secret.filter(|s| !s.is_empty());
    let client = match Client::new(url, bearer, budget + Duration::from_secs(1)) {
        Ok(c) => c,
        Err(e) => return envs.into_iter().map(|env| (env, Err(format!("evaluator {url}: {e}")))).collect(),
    };
    let mut tasks = JoinSet::new();
    for (i, env) in envs.iter().enumerate() {
        let call = EvaluationCall { request: request.clone(), environment: env.clone() };
        let client = client.clone();
        tasks.spawn(async move {
            let r = client.post::<_, EvaluationReply>("/1.0/evaluations", &call).await;
            (i, r.map_err(|e| e.to_string()).and_then(|reply| checked_score(reply.score)))
        });
    }
    let mut scores: Vec<Result<f64, String>> =
        vec![Err(format!("no answer from the evaluator within {} ms", budget.as_millis())); envs.len()];
    let stop = tokio::time::Instant::now() + budget;
    while let Ok(Some(done)) = tokio::time::timeout_at(stop, tasks.join_next()).await {
        if let Ok((i, score)) = done {
            scores[i] = score;
        }
    }
    tasks.abort_all();
    envs.into_iter().zip(scores).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_and_validities_are_bounded() {
        let d = |ms| bounded(ms, DEFAULT_DEADLINE, MAX_DEADLINE, "deadline_ms");
        assert_eq!(d(None).ok(), Some(DEFAULT_DEADLINE));
        assert_eq!(d(Some(250)).ok(), Some(Duration::from_millis(250)));
        assert!(d(Some(0)).is_err());
        let too_long = d(Some(31_000)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(too_long.contains("31000 ms") && too_long.contains("30000"), "{too_long}");
    }
}
