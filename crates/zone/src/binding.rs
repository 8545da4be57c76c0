//! The zone's domain binding (exactly one domain per zone) and the attachment of its DC
//! adaptor. Both are persisted in the `meta` table; the lock is `binding` (last in the lock
//! order: unbinding and detaching check services and instances first, holding their locks
//! so nothing starts in between).

use zonal_proto::wire::{DcaView, DomainBinding};
use zonal_store::{Store, StoreExt};

use crate::core::{ZoneCore, T_META};
use crate::error::ZoneError;
use crate::registry::ServiceState;

/// The domain this zone belongs to and whether its DC adaptor is attached.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub domain: Option<DomainBinding>,
    pub dca_attached: bool,
}

impl Binding {
    pub(crate) fn load(store: &dyn Store) -> Result<Binding, ZoneError> {
        Ok(Binding {
            domain: store.get(T_META, "domain")?,
            dca_attached: store.get::<bool>(T_META, "dca_attached")?.unwrap_or(true),
        })
    }
}

impl ZoneCore {
    pub fn domain(&self) -> Option<DomainBinding> {
        self.binding_state().domain.clone()
    }

    /// Binds the zone to a domain (one domain per zone). Rebinding to the same domain name
    /// (a domain that moved to another URL) is allowed.
    pub fn bind_domain(&self, binding: DomainBinding) -> Result<DomainBinding, ZoneError> {
        let mut b = self.binding_state();
        if let Some(current) = &b.domain {
            let same = match (&current.id, &binding.id, &current.name, &binding.name) {
                (Some(a), Some(b), _, _) => a == b,
                (_, _, Some(a), Some(b)) => a == b,
                _ => current.url == binding.url,
            };
            if !same {
                return Err(ZoneError::Conflict(format!(
                    "zone {} is bound to domain {} ({}); a zone belongs to exactly one domain — DELETE /1.0/domain first",
                    self.settings.name,
                    current.name.as_deref().unwrap_or("?"),
                    current.url
                )));
            }
        }
        self.store.put(T_META, "domain", &binding)?;
        b.domain = Some(binding.clone());
        Ok(binding)
    }

    pub fn unbind_domain(&self) -> Result<(), ZoneError> {
        let reg = self.registry();
        let inst = self.instances_state();
        let active: Vec<&str> = reg
            .services
            .values()
            .filter(|s| matches!(s.state, ServiceState::Deployed | ServiceState::Terminating))
            .map(|s| s.serviceid.as_str())
            .collect();
        if !active.is_empty() || !inst.records.is_empty() {
            return Err(ZoneError::Conflict(format!(
                "zone {} still runs services of its domain ({}); terminate them before unbinding the domain",
                self.settings.name,
                active.join(", ")
            )));
        }
        let mut b = self.binding_state();
        self.store.delete(T_META, "domain")?;
        b.domain = None;
        Ok(())
    }

    pub fn dca(&self) -> DcaView {
        let active = self.instances_state().records.len() as u32;
        let attached = self.binding_state().dca_attached;
        DcaView {
            kind: if attached { self.adaptor.kind().to_string() } else { "none".into() },
            instances_active: active,
            limits: self.isolation_limits(),
        }
    }

    /// The adaptor's limits, and the uid each provider's instances run under.
    fn isolation_limits(&self) -> Vec<String> {
        let mut limits = self.adaptor.limits();
        if self.adaptor.switches_users() {
            limits
                .extend(self.tenant_uids().iter().map(|(tenant, r)| format!("provider {tenant} runs as uid:gid {r}")));
        }
        limits
    }

    pub fn set_dca(&self, kind: &str) -> Result<DcaView, ZoneError> {
        if kind != self.adaptor.kind() {
            return Err(ZoneError::Invalid(format!(
                "DC adaptor {kind:?} is not available in this zone manager; expected {:?}",
                self.adaptor.kind()
            )));
        }
        self.store.put(T_META, "dca_attached", &true)?;
        self.binding_state().dca_attached = true;
        Ok(self.dca())
    }

    pub fn detach_dca(&self) -> Result<(), ZoneError> {
        let inst = self.instances_state();
        if !inst.records.is_empty() {
            return Err(ZoneError::Conflict(format!(
                "{} instance(s) are active on the DC adaptor; terminate them before removing it",
                inst.records.len()
            )));
        }
        let mut b = self.binding_state();
        self.store.put(T_META, "dca_attached", &false)?;
        b.dca_attached = false;
        Ok(())
    }
}
