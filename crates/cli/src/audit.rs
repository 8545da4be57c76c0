//! `zonal audit`: the audit log of writes (admin only, through the domain API): who, what,
//! when, and the result — the domain's own, or with `--zone Z` the log zone Z keeps of the
//! writes made there (by the domain, by instances).

use zonal_proto::audit::{AuditEntry, AuditQuery};

use crate::common::{self, Conn};
use crate::table::Table;
use crate::{Failure, Output};

#[derive(clap::Args)]
pub struct Args {
    /// Only entries this recent: 90s, 15m, 1h, 7d …
    #[arg(long)]
    pub since: Option<String>,
    /// Only requests made with this user's tokens (at a zone: `domain` or an instance id).
    #[arg(long)]
    pub user: Option<String>,
    /// Read the log of this zone (the writes made at the zone) instead of the domain's.
    #[arg(long)]
    pub zone: Option<String>,
    /// Also show accepted heartbeats, slot reports and meters (kept in a separate log).
    #[arg(long)]
    pub telemetry: bool,
    /// At most this many entries, the newest.
    #[arg(long, default_value_t = 200)]
    pub limit: usize,
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("warn");
    if let Some(s) = &args.since {
        zonal_proto::parse_span(s).map_err(|e| Failure::new(2, format!("--since {e}")))?;
    }
    if args.limit == 0 || args.limit > AuditQuery::MAX_LIMIT {
        return Err(Failure::new(
            2,
            format!("--limit {}: expected a number from 1 to {}", args.limit, AuditQuery::MAX_LIMIT),
        ));
    }
    let q = AuditQuery {
        since: args.since.clone(),
        user: args.user.clone(),
        zone: args.zone.clone(),
        telemetry: args.telemetry.then_some(true),
        limit: Some(args.limit),
    };
    let path = format!("/1.0/audit{}", q.to_query_string());
    let client = args.conn.client()?;
    let entries: Vec<AuditEntry> = common::client_runtime()?.block_on(client.get(&path))?;
    match args.output {
        Output::Json => common::print_json(&entries),
        Output::Table => {
            let mut t =
                Table::new(["TIME", "USER", "ROLE", "TOKEN", "METHOD", "PATH", "RESOURCE", "STATUS", "OUTCOME"]);
            for e in &entries {
                t.row([
                    e.time.clone(),
                    e.user.clone().unwrap_or_else(|| "-".into()),
                    e.role.clone().unwrap_or_else(|| "-".into()),
                    e.token_id.clone().unwrap_or_else(|| "-".into()),
                    e.method.clone(),
                    e.path.clone(),
                    e.resource.clone().unwrap_or_else(|| "-".into()),
                    e.status.to_string(),
                    e.outcome.clone(),
                ]);
            }
            print!("{}", t.render());
            if entries.is_empty() {
                eprintln!("no entries{}", args.since.as_ref().map_or(String::new(), |s| format!(" in the last {s}")));
            }
        }
    }
    Ok(())
}
