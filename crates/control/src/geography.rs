//! Where clients are and how far each zone is from them, as the domain sees it (FUSION
//! §2.3.1, §2.5.3.1: resolution and regional slot availability). Pure: the domain passes in
//! what it knows (user regions from demand documents, measured round-trip times and the
//! latency model from the infrastructure, zones' locations from their registrations).
//!
//! A client's round-trip time to a zone, in this order of preference:
//! 1. a measured RTT between the client's region and the zone (either direction);
//! 2. the latency model's `user_rtt` of the great-circle distance, when both have a location;
//! 3. from the region's attach zone: `access` + the measured attach→zone RTT, else
//!    `access + 2 × link_delay(distance)` between the two zones (the domain has no link
//!    graph, so a multi-hop path counts as one link; zero when the attach zone is the zone);
//! 4. unknown: the zone is out of reach.
//!
//! A client given by coordinates uses rule 2 alone. A client given by the name of a zone (the
//! older `?region=ZONE` form) stands at that zone's location, attached to it.

use serde::{Deserialize, Serialize};
use zonal_model::{LatencyModel, LatencyTable, Location, MeasuredLatency, Region};

use crate::slots::{resolve, Resolution, ZoneOffer};

/// What the domain knows about where users are and what was measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Geography {
    #[serde(default)]
    pub regions: Vec<Region>,
    #[serde(default)]
    pub latencies: Vec<MeasuredLatency>,
    #[serde(default)]
    pub latency_model: LatencyModel,
}

/// Every problem with a geography change, each naming its field (`regions[2].name`, …);
/// empty when it can be stored. A region needs a valid, unique name, a positive weight, and
/// a location or an attach zone (without either nothing is in reach); a measured latency
/// needs two different places.
pub fn change_problems(regions: Option<&[Region]>, latencies: Option<&[MeasuredLatency]>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in regions.into_iter().flatten().enumerate() {
        if let Some(e) = zonal_model::names::name_problem(&r.name) {
            problems.push(format!("regions[{i}].name: {e}"));
        }
        if !seen.insert(r.name.as_str()) {
            problems.push(format!("regions[{i}].name: region {:?} is listed twice", r.name));
        }
        if !(r.weight.is_finite() && r.weight > 0.0 && r.weight <= zonal_model::limits::MAX_WEIGHT) {
            problems.push(format!(
                "regions[{i}].weight: expected a positive number of at most {}, got {}",
                zonal_model::limits::MAX_WEIGHT,
                r.weight
            ));
        }
        if let Some(p) = r.location.and_then(|l| Location::problem(l.lat, l.lon)) {
            problems.push(format!("regions[{i}].location.{p}"));
        }
        if let Some(p) = r.attach.as_deref().and_then(zonal_model::names::name_problem) {
            problems.push(format!("regions[{i}].attach: {p}"));
        }
        if r.location.is_none() && r.attach.is_none() {
            problems.push(format!(
                "regions[{i}] ({}): expected a location or an attach zone; without either nothing is in reach",
                r.name
            ));
        }
    }
    for (i, m) in latencies.into_iter().flatten().enumerate() {
        if m.from == m.to {
            problems.push(format!("latencies[{i}]: from and to are both {:?}", m.from));
        }
        for (field, name) in [("from", &m.from), ("to", &m.to)] {
            if let Some(p) = zonal_model::names::name_problem(name) {
                problems.push(format!("latencies[{i}].{field}: {p}"));
            }
        }
    }
    problems
}

/// Where a client is: coordinates, or the name of a region (or of a zone it is next to).
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    At(Location),
    Region(String),
}

/// A zone as the estimator needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZonePlace<'a> {
    pub name: &'a str,
    pub location: Option<Location>,
}

/// A client's position, resolved against the geography once per request.
#[derive(Debug, Clone, PartialEq)]
pub enum Client {
    At(Location),
    Region(Region),
}

/// Where an RTT estimate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RttSource {
    Measured,
    Distance,
    /// From the region's attach zone (measured or by distance between the zones).
    Attach,
}

impl RttSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RttSource::Measured => "measured",
            RttSource::Distance => "distance",
            RttSource::Attach => "attach",
        }
    }
}

/// The RTT estimator over one geography.
pub struct Estimator<'g> {
    geo: &'g Geography,
    measured: LatencyTable,
}

impl<'g> Estimator<'g> {
    pub fn new(geo: &'g Geography) -> Self {
        Estimator { geo, measured: LatencyTable::new(&geo.latencies) }
    }

    /// Finds the client: a region by name first, then a zone by name (standing at its
    /// location, attached to it). The error lists what would have been accepted.
    pub fn client(&self, from: &Origin, zones: &[ZonePlace]) -> Result<Client, String> {
        match from {
            Origin::At(l) => Ok(Client::At(*l)),
            Origin::Region(name) => {
                if let Some(r) = self.geo.regions.iter().find(|r| r.name == *name) {
                    return Ok(Client::Region(r.clone()));
                }
                if let Some(z) = zones.iter().find(|z| z.name == name) {
                    return Ok(Client::Region(Region {
                        name: name.clone(),
                        location: z.location,
                        weight: 1.0,
                        attach: Some(name.clone()),
                    }));
                }
                let mut known: Vec<&str> = self.geo.regions.iter().map(|r| r.name.as_str()).collect();
                known.extend(zones.iter().map(|z| z.name));
                Err(format!(
                    "region {name:?} is neither a region of the domain's demand documents nor a zone; expected one of {} or ?lat=…&lon=…",
                    if known.is_empty() { "(none known)".to_string() } else { known.join(", ") }
                ))
            }
        }
    }

    /// Estimated round-trip time (ms) from `client` to `zone` and where the figure comes
    /// from; `None` when nothing tells. `zones` gives the locations of attach zones.
    pub fn rtt(&self, client: &Client, zone: ZonePlace, zones: &[ZonePlace]) -> Option<(f64, RttSource)> {
        let model = &self.geo.latency_model;
        let by_distance =
            |a: Location| zone.location.map(|z| (model.user_rtt(a.distance_km(&z)).as_millis(), RttSource::Distance));
        match client {
            Client::At(l) => by_distance(*l),
            Client::Region(r) => {
                if let Some(m) = self.measured.get(&r.name, zone.name) {
                    return Some((m, RttSource::Measured));
                }
                if let Some(rtt) = r.location.and_then(by_distance) {
                    return Some(rtt);
                }
                let attach = r.attach.as_deref()?;
                let access = model.access.as_millis();
                if attach == zone.name {
                    return Some((access, RttSource::Attach));
                }
                if let Some(m) = self.measured.get(attach, zone.name) {
                    return Some((access + m, RttSource::Attach));
                }
                let a = zones.iter().find(|z| z.name == attach)?.location?;
                let b = zone.location?;
                Some((access + 2.0 * model.link_delay(a.distance_km(&b)).as_millis(), RttSource::Attach))
            }
        }
    }
}

/// A service's session slots as seen from one region.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionAvailability {
    /// Slots advertised by the zones within the service's R_max of the region.
    pub advertised: u32,
    /// Those zones, best utility first.
    pub zones: Vec<String>,
    /// Where a client of the region would be sent now.
    pub resolution: Resolution,
}

/// Aggregates the zones' offers (RTTs from the region) for one region (FUSION §2.5.3.1:
/// "high-level session-slot availability … to increase or decrease slots per region").
pub fn region_availability(offers: &[ZoneOffer], utility: &dyn Fn(f64) -> Option<f64>) -> RegionAvailability {
    let mut reach: Vec<(f64, &ZoneOffer)> = offers.iter().filter_map(|o| utility(o.rtt_ms).map(|u| (u, o))).collect();
    reach.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.rtt_ms.total_cmp(&b.1.rtt_ms)).then(a.1.zone.cmp(&b.1.zone)));
    RegionAvailability {
        advertised: reach.iter().map(|(_, o)| o.advertised).sum(),
        zones: reach.iter().map(|(_, o)| o.zone.clone()).collect(),
        resolution: resolve(offers, utility),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonal_model::Duration;

    fn place(name: &str, lat: f64, lon: f64) -> ZonePlace<'_> {
        ZonePlace { name, location: Location::new(lat, lon) }
    }

    fn region(name: &str, loc: Option<(f64, f64)>, attach: Option<&str>) -> Region {
        Region {
            name: name.into(),
            location: loc.and_then(|(a, b)| Location::new(a, b)),
            weight: 1.0,
            attach: attach.map(Into::into),
        }
    }

    #[test]
    fn measured_beats_distance_beats_attach_and_unknown_is_none() {
        let zones = [place("antwerp-edge", 51.22, 4.40), place("frankfurt-core", 50.11, 8.68)];
        let geo = Geography {
            regions: vec![
                region("antwerp", Some((51.22, 4.40)), Some("antwerp-edge")),
                region("lab", None, Some("antwerp-edge")),
                region("nowhere", None, None),
            ],
            latencies: vec![MeasuredLatency {
                from: "frankfurt-core".into(),
                to: "antwerp".into(),
                rtt: Duration::from_millis(17.0),
            }],
            latency_model: LatencyModel::default(),
        };
        let est = Estimator::new(&geo);
        let antwerp = est.client(&Origin::Region("antwerp".into()), &zones).expect("region");
        // Measured, in the other direction.
        assert_eq!(est.rtt(&antwerp, zones[1], &zones), Some((17.0, RttSource::Measured)));
        // Same place: distance zero.
        assert!(est.rtt(&antwerp, zones[0], &zones).expect("rtt").0 < 0.01);
        // No location: through the attach zone, one link Antwerp–Frankfurt (~330 km).
        let lab = est.client(&Origin::Region("lab".into()), &zones).expect("region");
        let via = est.rtt(&lab, zones[1], &zones).expect("rtt").0;
        assert!((3.0..4.0).contains(&via), "{via}");
        assert_eq!(est.rtt(&lab, zones[0], &zones), Some((0.0, RttSource::Attach)));
        let nowhere = est.client(&Origin::Region("nowhere".into()), &zones).expect("region");
        assert_eq!(est.rtt(&nowhere, zones[1], &zones), None);
    }

    #[test]
    fn a_zone_name_stands_for_a_client_at_that_zone_and_unknown_names_list_the_known() {
        let zones = [place("antwerp-edge", 51.22, 4.40), place("frankfurt-core", 50.11, 8.68)];
        let geo = Geography { regions: vec![region("ghent", Some((51.05, 3.72)), None)], ..Default::default() };
        let est = Estimator::new(&geo);
        let c = est.client(&Origin::Region("frankfurt-core".into()), &zones).expect("zone as region");
        assert!(est.rtt(&c, zones[1], &zones).expect("rtt").0 < 0.01);
        let err = est.client(&Origin::Region("paris".into()), &zones).expect_err("unknown");
        assert!(err.contains("\"paris\"") && err.contains("ghent") && err.contains("frankfurt-core"), "{err}");
    }

    #[test]
    fn region_availability_sums_slots_within_reach_and_resolves_like_the_resolver() {
        let offer = |zone: &str, advertised, rtt_ms| ZoneOffer {
            zone: zone.into(),
            endpoint: format!("{zone}:1"),
            advertised,
            rtt_ms,
        };
        let offers = [offer("near", 0, 5.0), offer("mid", 4, 30.0), offer("far", 9, 200.0)];
        let utility = |rtt: f64| (rtt <= 150.0).then(|| 1.0 - rtt / 150.0);
        let a = region_availability(&offers, &utility);
        assert_eq!(a.advertised, 4);
        assert_eq!(a.zones, vec!["near".to_string(), "mid".to_string()]);
        assert!(matches!(a.resolution, Resolution::Zone { ref zone, rank: 1, .. } if zone == "mid"));
    }
}
