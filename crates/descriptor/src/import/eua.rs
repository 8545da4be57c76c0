//! EUA edge dataset (github PhuLai/eua-dataset): base-station sites → edge zones, user
//! positions → [`Demand`].
//!
//! ## Sites (`edge-servers/site-optus-melbCBD.csv`) → [`import_eua_sites`]
//!
//! CSV with header `SITE_ID,LATITUDE,LONGITUDE,NAME,...`; columns are found by header name
//! (case-insensitive); `SITE_ID`, `LATITUDE`, `LONGITUDE` are required, `NAME` optional,
//! other columns ignored.
//!
//! * One zone per site, in file order: name `site-<SITE_ID>`, location from
//!   `LATITUDE`/`LONGITUDE`, tier `edge`, label `name` = the `NAME` column (when not empty),
//!   one host, a copy of [`EuaOptions::host`] (default cpu 16, memory 64Gi, no disk or power
//!   figures) named `site-<SITE_ID>-h0`. No prices, no links (the dataset has none).
//! * A duplicate or empty `SITE_ID`, or bad coordinates, is an error.
//!
//! ## Users (`users/users-melbcbd-generated.csv`) → [`import_eua_users`]
//!
//! CSV with header `Latitude,Longitude` (case-insensitive). Every user has weight 1.
//!
//! * By default one region per user, `user-<n>` with `n` the 1-based data-row number, at the
//!   user's position, no attachment zone.
//! * With [`EuaOptions::cluster_to_sites`], users are grouped by their nearest site
//!   (great-circle distance; ties to the site listed first): one region per site that has at
//!   least one user, named `users-site-<SITE_ID>`, attached to that site's zone, weight =
//!   the number of users, location = their centroid (spherical mean). Regions follow the
//!   sites' order; sites with no user get no region (counted in the report). The sites are
//!   the located zones of the infrastructure passed in (normally from
//!   [`import_eua_sites`]); with none, clustering is an error.
//! * With [`EuaOptions::service`] set, one [`DemandEntry`] per region for that service with
//!   `SlotProfile::Constant(weight)` (one slot per user).
//!
//! The stored files have 125 sites and 816 users; clustered to their nearest site, the
//! users form 120 regions (5 sites have no user). Documents are named after the file stem.

use std::collections::{BTreeMap, HashSet};

use zonal_model::{Demand, DemandEntry, Host, Infrastructure, Location, Region, SlotProfile, Zone};

use super::text::{centroid, csv_records, error, header_column, host_template, named_host, optional_column, stem, Row};
use super::{ImportError, ImportReport};

/// Options of the EUA importers.
#[derive(Debug, Clone, PartialEq)]
pub struct EuaOptions {
    /// Template of the single host of each site (renamed `site-<id>-h0`). Default: cpu 16,
    /// memory 64Gi ([`default_edge_host`]).
    pub host: Host,
    /// Group users into one region per nearest site instead of one region per user.
    pub cluster_to_sites: bool,
    /// When set, one demand entry per region for this service (one slot per user).
    pub service: Option<String>,
}

impl Default for EuaOptions {
    fn default() -> Self {
        EuaOptions { host: default_edge_host(), cluster_to_sites: false, service: None }
    }
}

/// The default edge host: cpu 16, memory 64Gi, available.
pub fn default_edge_host() -> Host {
    host_template(16, 64, 0, 0.0, 0.0)
}

/// Reads the EUA sites CSV into edge zones; see the module documentation.
pub fn import_eua_sites(
    text: &str,
    file: &str,
    options: &EuaOptions,
) -> Result<(Infrastructure, ImportReport), ImportError> {
    let records = csv_records(text, file)?;
    let rows: Vec<Row> = records.iter().map(|r| Row::from_csv(file, text, r)).collect();
    let Some((header, rows)) = rows.split_first() else {
        return Err(error(file, Some(1), None, "expected a header line, found an empty file"));
    };
    let c_id = header_column(header, "SITE_ID")?;
    let c_lat = header_column(header, "LATITUDE")?;
    let c_lon = header_column(header, "LONGITUDE")?;
    let c_name = optional_column(header, "NAME");
    let mut zones: Vec<Zone> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for row in rows.iter().filter(|r| r.fields.iter().any(|f| !f.text.is_empty())) {
        let id = row.non_empty(c_id, "a SITE_ID")?;
        if !seen.insert(id) {
            return Err(row.error_at(c_id, format!("expected unique SITE_IDs, found {id} a second time")));
        }
        let location = row.location(c_lat, c_lon)?;
        let name = format!("site-{id}");
        let mut labels = BTreeMap::new();
        if let Some(n) = c_name.and_then(|c| row.fields.get(c)).map(|f| f.text).filter(|t| !t.is_empty()) {
            labels.insert("name".to_string(), n.to_string());
        }
        zones.push(Zone {
            hosts: vec![named_host(&options.host, format!("{name}-h0"))],
            name,
            location: Some(location),
            tier: Some("edge".to_string()),
            price: Default::default(),
            labels,
        });
    }
    if zones.is_empty() {
        return Err(error(file, Some(2), None, "expected at least one site row, found none"));
    }
    let report =
        ImportReport { notes: vec![format!("{} sites → {} edge zones, one host each", zones.len(), zones.len())] };
    Ok((Infrastructure { name: stem(file), zones, ..Default::default() }, report))
}

/// Reads the EUA users CSV into a demand; `sites` supplies the zones users are clustered to
/// when [`EuaOptions::cluster_to_sites`] is set. See the module documentation.
pub fn import_eua_users(
    text: &str,
    file: &str,
    sites: &Infrastructure,
    options: &EuaOptions,
) -> Result<(Demand, ImportReport), ImportError> {
    let records = csv_records(text, file)?;
    let rows: Vec<Row> = records.iter().map(|r| Row::from_csv(file, text, r)).collect();
    let Some((header, rows)) = rows.split_first() else {
        return Err(error(file, Some(1), None, "expected a header line, found an empty file"));
    };
    let c_lat = header_column(header, "Latitude")?;
    let c_lon = header_column(header, "Longitude")?;
    let mut users: Vec<Location> = Vec::new();
    for row in rows.iter().filter(|r| r.fields.iter().any(|f| !f.text.is_empty())) {
        users.push(row.location(c_lat, c_lon)?);
    }
    let mut report = ImportReport::default();
    let regions: Vec<Region> = if options.cluster_to_sites {
        let located: Vec<(&str, Location)> =
            sites.zones.iter().filter_map(|z| z.location.map(|l| (z.name.as_str(), l))).collect();
        if located.is_empty() {
            return Err(error(
                file,
                None,
                None,
                format!("expected located site zones to cluster users to, found none in {:?}", sites.name),
            ));
        }
        let mut members: Vec<Vec<Location>> = vec![Vec::new(); located.len()];
        for u in &users {
            let mut best = (0usize, f64::INFINITY);
            for (i, (_, l)) in located.iter().enumerate() {
                let d = l.distance_km(u);
                if d < best.1 {
                    best = (i, d);
                }
            }
            members[best.0].push(*u);
        }
        let empty = members.iter().filter(|m| m.is_empty()).count();
        let regions: Vec<Region> = located
            .iter()
            .zip(&members)
            .filter(|(_, m)| !m.is_empty())
            .map(|((zone, _), m)| Region {
                name: format!("users-{zone}"),
                location: centroid(m.iter().copied()),
                weight: m.len() as f64,
                attach: Some(zone.to_string()),
            })
            .collect();
        report.notes.push(format!(
            "{} users clustered to their nearest site → {} regions; {empty} of {} sites have no user",
            users.len(),
            regions.len(),
            located.len()
        ));
        regions
    } else {
        report.notes.push(format!("{} users → {} regions, one per user", users.len(), users.len()));
        users
            .iter()
            .enumerate()
            .map(|(i, l)| Region { name: format!("user-{}", i + 1), location: Some(*l), weight: 1.0, attach: None })
            .collect()
    };
    let entries: Vec<DemandEntry> = match &options.service {
        Some(service) => regions
            .iter()
            .map(|r| DemandEntry {
                service: service.clone(),
                region: r.name.clone(),
                slots: SlotProfile::Constant(r.weight as u32),
                sla: None,
                session_bandwidth: None,
            })
            .collect(),
        None => Vec::new(),
    };
    Ok((Demand { name: stem(file), regions, entries }, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::shared_data_file;

    const SITES: &str =
        "SITE_ID,LATITUDE,LONGITUDE,NAME,STATE,LICENSING_AREA_ID,POSTCODE,SITE_PRECISION,ELEVATION,HCIS_L2\r\n\
10003026,-37.81517,144.97476,Spring and Flinders ucell,VIC,2,,Within 10 meters,,KX3P\r\n\
10003027,-37.81524,144.95256,\"Optus Minicell, Spencer St\",VIC,2,,Within 10 meters,,KX3P\r\n\
10003238,-37.81239,144.9712,136 Exhibition St MELBOURNE,VIC,2,,Within 10 meters,,KX3P\r\n";

    const USERS: &str = "Latitude,Longitude\r\n-37.8152,144.9748\r\n-37.8150,144.9746\r\n-37.8153,144.9526\r\n";

    #[test]
    fn sites_become_edge_zones() {
        let (infra, report) = import_eua_sites(SITES, "site-optus-melbCBD.csv", &EuaOptions::default()).unwrap();
        assert_eq!(infra.name, "site-optus-melbcbd");
        assert_eq!(infra.zones.len(), 3);
        let z = &infra.zones[1];
        assert_eq!(z.name, "site-10003027");
        assert_eq!(z.tier.as_deref(), Some("edge"));
        assert_eq!(z.labels["name"], "Optus Minicell, Spencer St");
        assert_eq!(z.hosts[0].name, "site-10003027-h0");
        assert_eq!(z.hosts[0].capacity.get("memory"), 64 << 30);
        assert!(report.notes[0].starts_with("3 sites"));
    }

    #[test]
    fn users_one_region_each_or_clustered() {
        let (sites, _) = import_eua_sites(SITES, "s.csv", &EuaOptions::default()).unwrap();
        let (demand, _) = import_eua_users(USERS, "users.csv", &sites, &EuaOptions::default()).unwrap();
        let names: Vec<&str> = demand.regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["user-1", "user-2", "user-3"]);
        assert!(demand.entries.is_empty());

        let opts = EuaOptions { cluster_to_sites: true, service: Some("ar".into()), ..Default::default() };
        let (demand, report) = import_eua_users(USERS, "users.csv", &sites, &opts).unwrap();
        let summary: Vec<(&str, f64, Option<&str>)> =
            demand.regions.iter().map(|r| (r.name.as_str(), r.weight, r.attach.as_deref())).collect();
        assert_eq!(
            summary,
            [("users-site-10003026", 2.0, Some("site-10003026")), ("users-site-10003027", 1.0, Some("site-10003027"))]
        );
        let c = demand.regions[0].location.unwrap();
        assert!((c.lat + 37.8151).abs() < 1e-6 && (c.lon - 144.9747).abs() < 1e-6, "{c:?}");
        assert_eq!(demand.entries[0].slots, SlotProfile::Constant(2));
        assert!(report.notes[0].contains("1 of 3 sites have no user"));

        let e = import_eua_users(USERS, "users.csv", &Infrastructure::default(), &opts).unwrap_err();
        assert!(e.message.contains("located site zones"), "{e}");
    }

    #[test]
    fn malformed_rows_are_located() {
        let bad = SITES.replace("144.9712,", "east,");
        let e = import_eua_sites(&bad, "s.csv", &EuaOptions::default()).unwrap_err();
        assert_eq!((e.file.as_str(), e.line, e.column), ("s.csv", Some(4), Some(20)), "{e}");
        assert!(e.message.contains("longitude") && e.message.contains("east"), "{e}");

        let bad = SITES.replace("10003238", "10003026");
        let e = import_eua_sites(&bad, "s.csv", &EuaOptions::default()).unwrap_err();
        assert_eq!((e.line, e.column), (Some(4), Some(1)));

        let bad = USERS.replace("-37.8153", "-97.8153");
        let (sites, _) = import_eua_sites(SITES, "s.csv", &EuaOptions::default()).unwrap();
        let e = import_eua_users(&bad, "u.csv", &sites, &EuaOptions::default()).unwrap_err();
        assert_eq!((e.line, e.column), (Some(4), Some(1)), "{e}");

        let e = import_eua_users("lat,lon\n1,2\n", "u.csv", &sites, &EuaOptions::default()).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("\"Latitude\""), "{e}");
    }

    #[test]
    fn real_eua_files() {
        let (sf, sites) = shared_data_file("edge-eua/edge-servers/site-optus-melbCBD.csv");
        let (uf, users) = shared_data_file("edge-eua/users/users-melbcbd-generated.csv");
        let opts = EuaOptions::default();
        let (infra, _) = import_eua_sites(&sites, &sf, &opts).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(infra.zones.len(), 125);
        assert_eq!(infra.host_count(), 125);
        let (demand, _) = import_eua_users(&users, &uf, &infra, &opts).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(demand.regions.len(), 816);
        let opts = EuaOptions { cluster_to_sites: true, ..opts };
        let (clustered, report) = import_eua_users(&users, &uf, &infra, &opts).unwrap_or_else(|e| panic!("{e}"));
        let total: f64 = clustered.regions.iter().map(|r| r.weight).sum();
        assert_eq!(total, 816.0);
        assert_eq!(clustered.regions.len(), 120);
        eprintln!("EUA: {}", report.notes.join("; "));
    }
}
