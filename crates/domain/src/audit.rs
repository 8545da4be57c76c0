//! Reading the audit log (`GET /1.0/audit`, `zonal audit`): the domain's own, or — with
//! `?zone=Z` — the log zone Z keeps of the writes made there (by the domain, by instances),
//! fetched live with the key the zone gave at registration.
//!
//! The log is written by the API's audit layer (`zonal_proto::server::audit`) into
//! `<state>/audit.jsonl` and `<state>/audit-telemetry.jsonl`; what it holds, how durable and
//! how bounded it is: `zonal_proto::audit`.

use std::sync::Arc;

use zonal_proto::audit::{Audit, AuditEntry, AuditQuery};
use zonal_proto::now_ms;

use crate::core::DomainCore;
use crate::error::DomainError;

/// The entries `q` asks for, oldest first.
pub async fn read(
    core: &DomainCore,
    audit: Option<Arc<Audit>>,
    q: &AuditQuery,
) -> Result<Vec<AuditEntry>, DomainError> {
    // Checked here too, so a bad query is named before any zone is asked.
    let filter = q.filter(now_ms()).map_err(DomainError::Invalid)?;
    if let Some(zone) = &q.zone {
        let client = core.zone_client(zone)?;
        let forward = AuditQuery { zone: None, ..q.clone() };
        let mut entries: Vec<AuditEntry> = client
            .get(&format!("/1.0/audit{}", forward.to_query_string()))
            .await
            .map_err(|e| DomainError::Unavailable(format!("the audit log of zone {zone}: {e}")))?;
        for e in &mut entries {
            e.zone = Some(zone.clone());
        }
        return Ok(entries);
    }
    let audit = audit.ok_or_else(|| {
        DomainError::Unavailable("this domain keeps no audit log (it was started without a state directory)".into())
    })?;
    // Reading up to the whole bounded log is file I/O: off the async workers.
    tokio::task::spawn_blocking(move || audit.query(&filter))
        .await
        .map_err(|e| DomainError::Store(format!("reading the audit log failed: {e}")))?
        .map_err(DomainError::Store)
}
