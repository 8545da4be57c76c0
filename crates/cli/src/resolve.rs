//! `zonal resolve SERVICE --from LAT,LON`: which zone endpoint a client there is sent to.

use zonal_proto::wire::Resolved;
use zonal_proto::{Client, ClientError};

use crate::common::{self, Conn};
use crate::{Failure, Output};

#[derive(clap::Args)]
pub struct Args {
    /// The service to resolve.
    pub service: String,
    /// Where the client is, in decimal degrees: LAT,LON (e.g. 51.22,4.40).
    #[arg(long, value_name = "LAT,LON", value_parser = parse_position, conflicts_with = "region")]
    pub from: Option<(f64, f64)>,
    /// Or: the client is in this user region (see `zonal get regions`), or next to this zone.
    #[arg(long)]
    pub region: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Parses `LAT,LON`.
pub fn parse_position(text: &str) -> Result<(f64, f64), String> {
    let bad = || format!("{text:?}: expected LAT,LON in decimal degrees, e.g. 51.22,4.40");
    let (lat, lon) = text.split_once(',').ok_or_else(bad)?;
    let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
    let lon: f64 = lon.trim().parse().map_err(|_| bad())?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!("{text:?}: latitude must be in [-90, 90] and longitude in [-180, 180]"));
    }
    Ok((lat, lon))
}

/// The resolve path for a client at `from` (or next to zone `region`).
pub fn path(service: &str, from: Option<(f64, f64)>, region: Option<&str>) -> String {
    match (from, region) {
        (Some((lat, lon)), _) => format!("/1.0/resolve/{service}?lat={lat}&lon={lon}"),
        (None, Some(r)) => {
            let r: String = form_urlencoded::byte_serialize(r.as_bytes()).collect();
            format!("/1.0/resolve/{service}?region={r}")
        }
        (None, None) => format!("/1.0/resolve/{service}"),
    }
}

/// Resolves once.
pub async fn resolve(client: &Client, path: &str) -> Result<Resolved, ClientError> {
    client.get::<Resolved>(path).await
}

pub fn run(args: Args) -> Result<(), Failure> {
    if args.from.is_none() && args.region.is_none() {
        return Err(Failure::new(2, "say where the client is: --from LAT,LON or --region REGION"));
    }
    let client = args.conn.client()?;
    let rt = common::client_runtime()?;
    let p = path(&args.service, args.from, args.region.as_deref());
    match rt.block_on(resolve(&client, &p)) {
        Ok(r) => {
            match args.output {
                Output::Json => common::print_json(&r),
                Output::Table => println!(
                    "{} → zone {} at {} (rtt {:.2} ms {}, utility {:.2}, rank {}{}, {} slots advertised)",
                    r.serviceid,
                    r.zone,
                    r.endpoint,
                    r.rtt_ms,
                    match r.rtt_source.as_str() {
                        "measured" => "measured",
                        "attach" => "estimated via the region's attach zone",
                        _ => "estimated from distance",
                    },
                    r.utility,
                    r.rank,
                    if r.rank > 0 { ": spilled over" } else { "" },
                    r.advertised
                ),
            }
            Ok(())
        }
        // No slots anywhere: the domain says whether it is deploying on demand.
        Err(ClientError::Api { status: 503, body, .. }) => {
            if args.output == Output::Json {
                common::print_json(&body);
            }
            Err(Failure::new(3, format!("{}: {}", body.error, body.detail)))
        }
        Err(e) => Err(e.into()),
    }
}
