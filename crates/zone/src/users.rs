//! Whose uid an instance runs under: one unprivileged uid/gid per provider (Kubernetes'
//! `runAsUser`, Nomad's `user`), so the instances of one provider cannot read, write or signal
//! those of another, nor anything of the zone manager's.
//!
//! * `--run-as PROVIDER=UID:GID` maps a provider to ids the operator chose (never 0).
//! * Every other provider gets the lowest free uid of `--instance-uids FIRST-LAST` (default
//!   200000–265535), with gid = uid, on the first instance it starts here. Allocations are
//!   kept in the zone's store (`meta/instance_uids`), so they are stable across restarts; one
//!   that falls outside a changed range, or onto an id now mapped by `--run-as`, is given a
//!   new one (its instances' directories are handed over when they next start).
//! * No `/etc/passwd` entry is needed: `setuid(2)` takes numeric ids.
//! * A service whose owner the zone does not know is a tenant of its own
//!   ([`crate::registry::ServiceRecord::tenant`]).
//!
//! Zones that share a machine must be given disjoint ranges (`zonal up` splits the range
//! between its zones); within a zone two tenants never share a uid.
//!
//! Lock: `uids`, a leaf (nothing else is taken while it is held).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use zonal_store::{Store, StoreExt};

use crate::core::{ZoneCore, T_META};
use crate::error::ZoneError;

/// The key of the allocations in the `meta` table.
const UIDS_KEY: &str = "instance_uids";

/// The default range of uids handed to providers.
pub const DEFAULT_UIDS: (u32, u32) = (200_000, 265_535);
/// The default `RLIMIT_NPROC` of a provider's uid (processes and threads of all its
/// instances in this zone together).
pub const DEFAULT_NPROC: u64 = 1024;

/// A uid and gid to run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl std::fmt::Display for RunAs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// How a zone isolates instances (the `zonal zone` flags).
#[derive(Debug, Clone, PartialEq)]
pub struct Isolation {
    /// Uids handed to providers, inclusive.
    pub uids: (u32, u32),
    /// Providers with ids chosen by the operator.
    pub run_as: BTreeMap<String, RunAs>,
    /// `RLIMIT_NPROC` of each provider's uid.
    pub nproc: u64,
}

impl Default for Isolation {
    fn default() -> Self {
        Isolation { uids: DEFAULT_UIDS, run_as: BTreeMap::new(), nproc: DEFAULT_NPROC }
    }
}

/// Parses `FIRST-LAST` (a range of uids above 0, FIRST ≤ LAST).
pub fn parse_uid_range(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{text:?} is not a uid range; expected FIRST-LAST, e.g. 200000-265535 (above 0)");
    let (a, b) = text.trim().split_once('-').ok_or_else(bad)?;
    let first: u32 = a.trim().parse().map_err(|_| bad())?;
    let last: u32 = b.trim().parse().map_err(|_| bad())?;
    if first == 0 || first > last {
        return Err(bad());
    }
    if last == u32::MAX {
        return Err(format!(
            "{text:?}: uid {last} is (uid_t)-1, which setuid(2) does not take; expected a smaller LAST"
        ));
    }
    Ok((first, last))
}

/// Parses `PROVIDER=UID:GID` (`PROVIDER=UID` means gid = uid); root (0) is refused.
pub fn parse_run_as(text: &str) -> Result<(String, RunAs), String> {
    let bad = || format!("{text:?} is not PROVIDER=UID:GID (e.g. acme=3000:3000, ids above 0)");
    let (provider, ids) = text.split_once('=').ok_or_else(bad)?;
    let provider = provider.trim();
    if let Some(why) = zonal_model::names::api_name_problem(provider) {
        return Err(format!("{text:?}: provider name {why}"));
    }
    let (uid, gid) = match ids.split_once(':') {
        Some((u, g)) => (u.trim().parse::<u32>().map_err(|_| bad())?, g.trim().parse::<u32>().map_err(|_| bad())?),
        None => {
            let u = ids.trim().parse::<u32>().map_err(|_| bad())?;
            (u, u)
        }
    };
    if uid == 0 || gid == 0 {
        return Err(format!("{text:?}: instances never run as root (uid or gid 0); expected ids above 0"));
    }
    if uid == u32::MAX || gid == u32::MAX {
        return Err(bad());
    }
    Ok((provider.to_string(), RunAs { uid, gid }))
}

/// Checks a set of `--run-as` mappings: no two providers share a uid.
pub fn check_run_as(map: &BTreeMap<String, RunAs>) -> Result<(), String> {
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for (p, r) in map {
        if let Some(other) = seen.insert(r.uid, p) {
            return Err(format!(
                "--run-as maps both {other:?} and {p:?} to uid {}; each provider needs a uid of its own",
                r.uid
            ));
        }
    }
    Ok(())
}

/// The providers' allocated ids.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct UidBook {
    pub allocated: BTreeMap<String, RunAs>,
}

impl UidBook {
    /// Loads the allocations, dropping those that no longer fit `isolation` (outside the
    /// range, or on a uid `--run-as` now gives a provider).
    pub(crate) fn load(store: &dyn Store, isolation: &Isolation) -> Result<UidBook, ZoneError> {
        let mut book = store.get::<UidBook>(T_META, UIDS_KEY)?.unwrap_or_default();
        let explicit: BTreeSet<u32> = isolation.run_as.values().map(|r| r.uid).collect();
        let (first, last) = isolation.uids;
        book.allocated.retain(|tenant, r| {
            let keep = (first..=last).contains(&r.uid) && !explicit.contains(&r.uid);
            if !keep {
                tracing::info!(
                    tenant,
                    uid = r.uid,
                    "uid no longer in --instance-uids {first}-{last}: a new one is allocated"
                );
            }
            keep
        });
        Ok(book)
    }

    /// The ids of `tenant`: the operator's mapping, else its allocation, else the lowest free
    /// uid of the range (and `true`: the book changed and must be stored).
    pub(crate) fn run_as(&mut self, tenant: &str, isolation: &Isolation) -> Result<(RunAs, bool), String> {
        if let Some(r) = isolation.run_as.get(tenant) {
            return Ok((*r, false));
        }
        if let Some(r) = self.allocated.get(tenant) {
            return Ok((*r, false));
        }
        let taken: BTreeSet<u32> =
            self.allocated.values().map(|r| r.uid).chain(isolation.run_as.values().map(|r| r.uid)).collect();
        let (first, last) = isolation.uids;
        let uid = (first..=last).find(|u| !taken.contains(u)).ok_or_else(|| {
            format!(
                "no free uid left for provider {tenant:?}: --instance-uids {first}-{last} is used up by {} providers; give the zone a larger range",
                self.allocated.len()
            )
        })?;
        let r = RunAs { uid, gid: uid };
        self.allocated.insert(tenant.to_string(), r);
        Ok((r, true))
    }
}

impl ZoneCore {
    /// The uid/gid the instances of `tenant` run under, or `None` when this zone cannot
    /// switch users (it does not run as root: instances run as the zone's own user).
    pub(crate) fn run_as(&self, tenant: &str) -> Result<Option<RunAs>, String> {
        if !self.adaptor.switches_users() {
            return Ok(None);
        }
        let mut book = self.uid_book();
        let before = book.clone();
        let (r, changed) = book.run_as(tenant, &self.settings.isolation)?;
        if changed {
            if let Err(e) = self.store.put(T_META, UIDS_KEY, &*book) {
                *book = before;
                return Err(format!("cannot record the uid of provider {tenant:?}: {e}"));
            }
            tracing::info!(tenant, uid = r.uid, gid = r.gid, "instances of this provider run as uid {}", r.uid);
        }
        Ok(Some(r))
    }

    /// Every tenant's ids known here (allocated and `--run-as`), for the status.
    pub fn tenant_uids(&self) -> BTreeMap<String, RunAs> {
        let mut all = self.uid_book().allocated.clone();
        all.extend(self.settings.isolation.run_as.clone());
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonal_store::MemStore;

    #[test]
    fn flags_parse_and_refuse_root() {
        assert_eq!(parse_uid_range("200000-265535"), Ok((200_000, 265_535)));
        assert!(parse_uid_range("0-10").is_err());
        assert!(parse_uid_range("10-5").is_err());
        assert!(parse_uid_range("ten").is_err());
        assert_eq!(parse_run_as("acme=3000:3001"), Ok(("acme".into(), RunAs { uid: 3000, gid: 3001 })));
        assert_eq!(parse_run_as("acme=3000"), Ok(("acme".into(), RunAs { uid: 3000, gid: 3000 })));
        let root = parse_run_as("acme=0:0").expect_err("root");
        assert!(root.contains("never run as root"), "{root}");
        assert!(parse_run_as("acme=5:0").is_err());
        assert!(parse_run_as("a/b=5:5").is_err());
        let two: BTreeMap<String, RunAs> =
            [("a".to_string(), RunAs { uid: 7, gid: 7 }), ("b".to_string(), RunAs { uid: 7, gid: 8 })].into();
        assert!(check_run_as(&two).expect_err("shared uid").contains("uid 7"));
    }

    #[test]
    fn providers_get_distinct_stable_uids() {
        let iso = Isolation {
            uids: (1000, 1002),
            run_as: [("ops".to_string(), RunAs { uid: 1001, gid: 50 })].into(),
            nproc: 10,
        };
        let mut book = UidBook::default();
        let (acme, new) = book.run_as("acme", &iso).expect("acme");
        assert_eq!((acme, new), (RunAs { uid: 1000, gid: 1000 }, true));
        assert_eq!(book.run_as("acme", &iso), Ok((acme, false)), "stable");
        // 1001 belongs to ops (explicit), so bell gets 1002.
        assert_eq!(book.run_as("bell", &iso).expect("bell").0.uid, 1002);
        assert_eq!(book.run_as("ops", &iso), Ok((RunAs { uid: 1001, gid: 50 }, false)));
        let full = book.run_as("carol", &iso).expect_err("range used up");
        assert!(full.contains("--instance-uids 1000-1002"), "{full}");

        // Stored and loaded again: the same ids; a narrower range re-allocates what left it.
        let store = MemStore::new();
        store.put(T_META, UIDS_KEY, &book).expect("put");
        assert_eq!(UidBook::load(&store, &iso).expect("load"), book);
        let narrow = Isolation { uids: (1000, 1000), ..iso.clone() };
        let loaded = UidBook::load(&store, &narrow).expect("load");
        assert_eq!(loaded.allocated.keys().collect::<Vec<_>>(), vec!["acme"]);
    }

    /// A root zone allocates from its range, stores it, and says who runs as what; a zone
    /// that is not root runs instances as itself and says so.
    #[test]
    fn the_zone_allocates_and_reports_uids() {
        let dir = tempfile::tempdir().expect("dir");
        let z = crate::core::testing::zone(dir.path());
        let dca = z.dca().limits.join("\n");
        if crate::process::running_as_root() {
            let acme = z.run_as("acme").expect("acme").expect("a uid as root");
            assert_eq!(acme, RunAs { uid: DEFAULT_UIDS.0, gid: DEFAULT_UIDS.0 });
            assert_eq!(z.run_as("bell").expect("bell").map(|r| r.uid), Some(DEFAULT_UIDS.0 + 1));
            let stored = z.store.get::<UidBook>(T_META, UIDS_KEY).expect("get").expect("stored");
            assert_eq!(stored.allocated.len(), 2);
            let dca = z.dca().limits.join("\n");
            assert!(dca.contains("provider acme runs as uid:gid 200000:200000"), "{dca}");
            assert!(dca.contains("never root"), "{dca}");
        } else {
            assert_eq!(z.run_as("acme"), Ok(None));
            assert!(dca.contains("cannot switch users"), "{dca}");
        }
    }
}
