//! The late-binding namespace of each composite (`/1.0/context/{service}[/{key…}]`): JSON
//! values in the store's `context` table under `<service>/<key>`. Instances register their
//! endpoints as `<component>/<instance>` and find peers by the prefix `<component>/`; the
//! zone itself publishes each remote peer (a channel target in another zone) as
//! `<component>/remote-<port>`, pointing at the local gateway listener that relays to it.
//! No lock of its own: the store is the state.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use zonal_proto::{Principal, Role};
use zonal_store::StoreExt;

use crate::core::ZoneCore;
use crate::error::ZoneError;
use crate::gateway::GatewayKey;
use crate::registry::T_CONTEXT;

/// The namespace entry of a remote peer: ((namespace, key), value), the value shaped like
/// what `zonal workload` registers so that a lookup by component prefix finds it.
pub(crate) fn remote_peer_entry(
    key: &GatewayKey,
    local: SocketAddr,
    remote: &str,
) -> ((String, String), serde_json::Value) {
    let (service, component, port) = key;
    let value = serde_json::json!({
        "component": component,
        "endpoints": { port.as_str(): local.to_string() },
        "remote": remote,
    });
    ((service.clone(), format!("{component}/remote-{port}")), value)
}

impl ZoneCore {
    /// Instances may only use their own service's namespace.
    pub fn check_namespace(&self, caller: &Principal, ns: &str) -> Result<(), ZoneError> {
        if caller.role == Role::Instance {
            let own = self.instances_state().records.get(&caller.name).map(|i| i.service.clone());
            if own.as_deref() != Some(ns) {
                return Err(ZoneError::Forbidden(format!(
                    "instance {} may only use the context namespace of its own service, not {ns:?}",
                    caller.name
                )));
            }
        }
        Ok(())
    }

    pub fn context_list(&self, ns: &str, prefix: &str) -> Result<BTreeMap<String, serde_json::Value>, ZoneError> {
        let base = format!("{ns}/");
        let entries = self.store.list::<serde_json::Value>(T_CONTEXT, &format!("{base}{prefix}"))?;
        Ok(entries.into_iter().map(|(k, v)| (k[base.len()..].to_string(), v)).collect())
    }

    pub fn context_get(&self, ns: &str, key: &str) -> Result<serde_json::Value, ZoneError> {
        self.store
            .get(T_CONTEXT, &format!("{ns}/{key}"))?
            .ok_or_else(|| ZoneError::NotFound(format!("no key {key:?} in context namespace {ns:?}")))
    }

    pub fn context_put(&self, ns: &str, key: &str, value: &serde_json::Value) -> Result<(), ZoneError> {
        if !self.registry().services.contains_key(ns) {
            return Err(ZoneError::NotFound(format!("no context namespace {ns:?}: no such service in this zone")));
        }
        valid_key(key)?;
        Ok(self.store.put(T_CONTEXT, &format!("{ns}/{key}"), value)?)
    }

    /// Deletes an entry; a key no entry could have (empty, over 1024 bytes, control
    /// characters) is refused as `context_put` refuses it, not answered "deleted".
    pub fn context_delete(&self, ns: &str, key: &str) -> Result<(), ZoneError> {
        valid_key(key)?;
        Ok(self.store.delete(T_CONTEXT, &format!("{ns}/{key}"))?)
    }

    /// Makes the namespace hold exactly the remote-peer entries `wanted` (of those the zone
    /// published): new or changed ones are written, gone ones deleted. A failed write is
    /// logged and tried again at the next pass.
    pub(crate) fn publish_remote_peers(&self, wanted: BTreeMap<(String, String), serde_json::Value>) {
        let (puts, deletes): (Vec<_>, Vec<_>) = {
            let gw = self.gateway_state();
            let puts =
                wanted.iter().filter(|(k, v)| gw.published.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone()));
            let deletes = gw.published.keys().filter(|k| !wanted.contains_key(*k)).cloned();
            (puts.collect(), deletes.collect())
        };
        for ((ns, key), value) in puts {
            match self.store.put(T_CONTEXT, &format!("{ns}/{key}"), &value) {
                Ok(()) => {
                    tracing::info!(service = ns, key, %value, "remote peer published in the namespace");
                    self.gateway_state().published.insert((ns, key), value);
                }
                Err(e) => tracing::warn!(service = ns, key, "cannot publish the remote peer: {e}"),
            }
        }
        for (ns, key) in deletes {
            match self.store.delete(T_CONTEXT, &format!("{ns}/{key}")) {
                Ok(()) => {
                    self.gateway_state().published.remove(&(ns, key));
                }
                Err(e) => tracing::warn!(service = ns, key, "cannot withdraw the remote peer: {e}"),
            }
        }
    }
}

/// A namespace key: 1 to 1024 bytes without control characters (the `{key}` of the
/// `/1.0/context/{ns}/{key}` routes as GET /openapi.json documents it).
fn valid_key(key: &str) -> Result<(), ZoneError> {
    if key.is_empty() || key.len() > 1024 || key.chars().any(char::is_control) {
        return Err(ZoneError::Invalid(
            "expected a key of 1 to 1024 bytes without control characters after the namespace".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{status, zone, WEB};

    #[test]
    fn instances_use_only_their_namespace() {
        let dir = tempfile::tempdir().expect("dir");
        let z = zone(dir.path());
        z.register_service("web", WEB).expect("register");
        let inst = Principal { name: "web-web-abc".into(), role: Role::Instance };
        // Not a known instance: no namespace.
        assert_eq!(status(z.check_namespace(&inst, "web").expect_err("unknown instance")), 403);
        let domain = Principal { name: "domain".into(), role: Role::Domain };
        assert!(z.check_namespace(&domain, "web").is_ok());
        z.context_put("web", "web/i1", &serde_json::json!({"endpoints": {"a": "127.0.0.1:1"}})).expect("put");
        assert_eq!(z.context_list("web", "web/").expect("list").len(), 1);
        assert_eq!(status(z.context_put("nope", "k", &serde_json::json!(1)).expect_err("no ns")), 404);
        assert_eq!(status(z.context_get("web", "nope").expect_err("no key")), 404);
    }

    #[test]
    fn remote_peers_are_published_like_instances_and_withdrawn() {
        let dir = tempfile::tempdir().expect("dir");
        let z = zone(dir.path());
        z.register_service("web", WEB).expect("register");
        let key = ("web".to_string(), "back".to_string(), "rpc".to_string());
        let local: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let (k, v) = remote_peer_entry(&key, local, "10.0.0.7:4100");
        assert_eq!(k, ("web".to_string(), "back/remote-rpc".to_string()));
        assert_eq!(
            v,
            serde_json::json!({"component": "back", "endpoints": {"rpc": "127.0.0.1:4000"}, "remote": "10.0.0.7:4100"})
        );
        z.publish_remote_peers([(k.clone(), v.clone())].into());
        assert_eq!(z.context_list("web", "back/").expect("list"), [("back/remote-rpc".to_string(), v)].into());
        z.publish_remote_peers(BTreeMap::new());
        assert!(z.context_list("web", "back/").expect("list").is_empty());
    }
}
