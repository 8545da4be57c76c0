//! Scenario generators for the reproductions.
//!
//! **INPUT service chains** (seed 004 §V.C). The paper evaluates three chains SC1–SC3 ("varying
//! the number of centers, proximity levels and Service Apps", the largest with 60 Service
//! Apps) with 100 emulated subscriptions each, random CPU and RAM, on Interoute with 20
//! data-centre nodes. Its Fig. 2, which defined the chains, is lost, so Zonal defines them:
//!
//! | chain | service apps | proximity class |
//! |---|---|---|
//! | SC1 | 4 (firewall, cache, transcoder, analytics) | metro |
//! | SC2 | 20 | regional |
//! | SC3 | 60 | national |
//!
//! Every subscription is one service: a user-side component pinned at the subscriber's access
//! node (a transit node of the topology, chosen at random), the service apps in a line, and a
//! back-end DC app pinned at a data-centre zone (the "back-end network" of the paper). Each
//! service app asks for a random CPU of 250m–2 cores (steps of 250m) and RAM of 256Mi–4Gi
//! (powers of two); each channel for 1–20 Mbps.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use zonal_model::{
    Amount, Bandwidth, Channel, Component, Infrastructure, Pin, PlacementConstraints, Resources, Service,
};

/// The shape of one INPUT chain family.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainShape {
    pub name: &'static str,
    pub service_apps: usize,
    pub proximity: &'static str,
}

/// SC1–SC3 as Zonal defines them (see the module docs).
pub const INPUT_CHAINS: [ChainShape; 3] = [
    ChainShape { name: "SC1", service_apps: 4, proximity: "metro" },
    ChainShape { name: "SC2", service_apps: 20, proximity: "regional" },
    ChainShape { name: "SC3", service_apps: 60, proximity: "national" },
];

/// Generates `subscriptions` services of the given chain shape on `infra`: each pins its
/// user-side component at a random transit zone and its back-end at a random zone with hosts.
/// Returns `None` when the infrastructure has no zone with hosts or no transit zone.
pub fn input_subscriptions(
    infra: &Infrastructure,
    shape: &ChainShape,
    subscriptions: usize,
    seed: u64,
) -> Option<Vec<Service>> {
    let dcs: Vec<&str> = infra.zones.iter().filter(|z| !z.is_transit()).map(|z| z.name.as_str()).collect();
    let access: Vec<&str> = infra.zones.iter().filter(|z| z.is_transit()).map(|z| z.name.as_str()).collect();
    if dcs.is_empty() || access.is_empty() {
        return None;
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(subscriptions);
    for n in 0..subscriptions {
        let user_zone = access[rng.random_range(0..access.len())];
        let backend_zone = dcs[rng.random_range(0..dcs.len())];
        let mut components = vec![Component {
            name: "user".into(),
            user_side: true,
            placement: PlacementConstraints {
                pin: Some(Pin { zone: user_zone.into(), host: None }),
                ..Default::default()
            },
            ..Default::default()
        }];
        for i in 0..shape.service_apps {
            let cpu = 250 * rng.random_range(1..=8u64);
            let mem = 256u64 << rng.random_range(0..=4u32);
            components.push(Component {
                name: format!("app{i:02}"),
                resources: Resources::new().with("cpu", Amount::cpu(cpu)).with("memory", Amount::bytes(mem << 20)),
                public: i == 0,
                ..Default::default()
            });
        }
        components.push(Component {
            name: "backend".into(),
            resources: Resources::new().with("cpu", Amount::cpu(1000)).with("memory", Amount::bytes(1 << 30)),
            placement: PlacementConstraints {
                pin: Some(Pin { zone: backend_zone.into(), host: None }),
                ..Default::default()
            },
            ..Default::default()
        });
        let names: Vec<String> = components.iter().map(|c| c.name.clone()).collect();
        let channels = names
            .windows(2)
            .map(|w| Channel {
                from: w[0].clone(),
                to: w[1].clone(),
                bandwidth: Some(Bandwidth(rng.random_range(1..=20u64) * 1_000_000)),
                max_latency: None,
            })
            .collect();
        out.push(Service {
            name: format!("{}-sub{n:03}", shape.name.to_lowercase()),
            owner: Some(format!("subscriber-{n:03}")),
            components,
            channels,
            entry: Some("app00".into()),
            proximity: Some(shape.proximity.into()),
            ..Default::default()
        });
    }
    Some(out)
}

/// Counts, for a report: components and channels per generated service.
pub fn chain_sizes(services: &[Service]) -> BTreeMap<String, (usize, usize)> {
    services.iter().map(|s| (s.name.clone(), (s.components.len(), s.channels.len()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonal_model::{Host, Zone};

    fn tiny() -> Infrastructure {
        let host = Host { name: "h".into(), available: true, ..Default::default() };
        Infrastructure {
            name: "t".into(),
            zones: vec![
                Zone { name: "dc".into(), hosts: vec![host], ..Default::default() },
                Zone { name: "access".into(), ..Default::default() },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn subscriptions_are_deterministic_chains() {
        let a = input_subscriptions(&tiny(), &INPUT_CHAINS[2], 3, 7).unwrap();
        let b = input_subscriptions(&tiny(), &INPUT_CHAINS[2], 3, 7).unwrap();
        assert_eq!(a, b, "same seed, same scenario");
        assert_eq!(a[0].components.len(), 62, "user + 60 apps + backend");
        assert_eq!(a[0].channels.len(), 61);
        assert!(a[0].components[0].user_side);
        assert_eq!(a[0].components[0].placement.pin.as_ref().unwrap().zone, "access");
        let c = input_subscriptions(&tiny(), &INPUT_CHAINS[2], 3, 8).unwrap();
        assert_ne!(a, c, "another seed, another scenario");
    }
}
