//! Positions on Earth and the latency model that turns distance into delay.

use serde::{Deserialize, Serialize};

use crate::units::Duration;

/// Mean Earth radius used for great-circle distances (km).
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// A point on Earth in decimal degrees. Read from JSON only when both coordinates are finite
/// and on Earth (`lat` in [-90, 90], `lon` in [-180, 180]); a request naming `lat: 999` is
/// refused while it is read, naming the coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawLocation")]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
}

/// A location as written, before its check.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocation {
    lat: f64,
    lon: f64,
}

impl TryFrom<RawLocation> for Location {
    type Error = String;
    fn try_from(raw: RawLocation) -> Result<Self, String> {
        match Location::problem(raw.lat, raw.lon) {
            Some(p) => Err(p),
            None => Ok(Location { lat: raw.lat, lon: raw.lon }),
        }
    }
}

impl Location {
    /// A location, or `None` if the coordinates are outside [-90, 90] × [-180, 180].
    pub fn new(lat: f64, lon: f64) -> Option<Self> {
        Location::problem(lat, lon).is_none().then_some(Location { lat, lon })
    }

    /// What is wrong with these coordinates (which one, and what was expected), or `None`.
    pub fn problem(lat: f64, lon: f64) -> Option<String> {
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            Some(format!("lat: expected a latitude in degrees between -90 and 90, found {lat}"))
        } else if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
            Some(format!("lon: expected a longitude in degrees between -180 and 180, found {lon}"))
        } else {
            None
        }
    }

    /// Great-circle (Haversine) distance in kilometres.
    pub fn distance_km(&self, other: &Location) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }
}

/// How Zonal estimates delay from distance when nothing was measured.
///
/// * A link's one-way delay is `distance × one_way_per_km + per_hop`.
/// * A user's round-trip time to a zone is `2 × distance × one_way_per_km + access`.
///
/// The default `one_way_per_km` of 5 µs/km is the propagation delay of light in optical
/// fibre (about 200,000 km/s) over the great-circle distance, with no detour factor; `per_hop`
/// (default 0.1 ms) stands for switching and queueing at each router; `access` (default 0)
/// for the user's access network. Measured latencies, when given, always win over the model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyModel {
    pub one_way_per_km: Duration,
    pub per_hop: Duration,
    pub access: Duration,
}

impl Default for LatencyModel {
    fn default() -> Self {
        LatencyModel {
            one_way_per_km: Duration::from_millis(0.005),
            per_hop: Duration::from_millis(0.1),
            access: Duration::ZERO,
        }
    }
}

impl LatencyModel {
    /// One-way delay of a link spanning `km`.
    pub fn link_delay(&self, km: f64) -> Duration {
        Duration::from_millis(km * self.one_way_per_km.as_millis() + self.per_hop.as_millis())
    }
    /// Round-trip time for a user at distance `km` from a zone.
    pub fn user_rtt(&self, km: f64) -> Duration {
        Duration::from_millis(2.0 * km * self.one_way_per_km.as_millis() + self.access.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        let london = Location::new(51.5074, -0.1278).unwrap();
        let paris = Location::new(48.8566, 2.3522).unwrap();
        let d = london.distance_km(&paris);
        assert!((d - 343.5).abs() < 2.0, "London-Paris is about 344 km, got {d}");
        assert_eq!(london.distance_km(&london), 0.0);
        assert!(Location::new(91.0, 0.0).is_none());
    }

    #[test]
    fn latency_model_defaults() {
        let m = LatencyModel::default();
        assert!((m.user_rtt(1000.0).as_millis() - 10.0).abs() < 1e-9);
        assert!((m.link_delay(1000.0).as_millis() - 5.1).abs() < 1e-9);
    }
}
