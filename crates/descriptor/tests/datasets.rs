//! Every importer on the real files under `../shared/data`, through the same entry point
//! the CLI uses: each dataset loads without a diagnostic, and its conversion to native YAML
//! reads back as the same model. A missing file fails the test, naming it and saying how to
//! get the data (`zonal-testdata`).

use zonal_descriptor::{load_paths, read_yaml_str, write_documents};

fn round_trip(relative: &str) -> zonal_model::Bundle {
    let path = zonal_testdata::path(relative);
    let loaded = load_paths(&[&path]);
    let msgs: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(loaded.is_valid(), "{relative}: {}", msgs.join("\n"));
    let text = write_documents(&loaded.bundle.documents);
    let again = read_yaml_str("converted.yaml", &text);
    let msgs: Vec<String> = again.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(again.is_valid(), "{relative} converted: {}", msgs.join("\n"));
    assert_eq!(again.bundle, loaded.bundle, "{relative}: conversion changed the model");
    loaded.bundle
}

#[test]
fn topology_zoo_files_load_and_convert() {
    for (file, zones, links) in [
        ("Interoute.graphml", 110, 146),
        ("Cogentco.graphml", 197, 243),
        ("GtsCe.graphml", 149, 193),
        ("Geant2012.graphml", 40, 61),
        ("Kdl.graphml", 754, 895),
    ] {
        let b = round_trip(&format!("topology-zoo/{file}"));
        let infra = b.infrastructure();
        assert_eq!((infra.zones.len(), infra.links.len()), (zones, links), "{file}");
        assert_eq!(infra.zones.iter().filter(|z| !z.is_transit()).count(), 20, "{file}: 20 data centres by default");
    }
}

#[test]
fn wondernetwork_loads_with_its_pings() {
    // The importer reads the pings file beside the servers file.
    zonal_testdata::path("latency/wondernetwork-pings-2020-07-19-grouped.csv");
    let b = round_trip("latency/wondernetwork-servers-2020-07-19.csv");
    let infra = b.infrastructure();
    assert_eq!(infra.zones.len(), 246);
    assert_eq!(infra.latencies.len(), 30_107);
}

#[test]
fn geo_video_and_eua_load() {
    // The importer reads the EC2 prices beside dcNodes.csv.
    zonal_testdata::path("geo-video/ec2_price.out");
    let dc = round_trip("geo-video/dcNodes.csv").infrastructure();
    assert_eq!(dc.host_count(), 2506, "one host per data centre");
    assert!(dc.zones.iter().all(|z| z.price.cpu_hour.amount() > 0.0), "EC2 prices found beside dcNodes.csv");
    assert_eq!(round_trip("geo-video/mooc.out").demand().regions.len(), 1869);
    assert_eq!(round_trip("edge-eua/edge-servers/site-optus-melbCBD.csv").infrastructure().zones.len(), 125);
    let users = round_trip("edge-eua/users/users-melbcbd-generated.csv").demand();
    assert_eq!(users.regions.iter().map(|r| r.weight).sum::<f64>(), 816.0, "816 users grouped by nearest site");
}
