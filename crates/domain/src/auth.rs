//! Users and role-bound bearer tokens: the bootstrap admin, authentication, users and tokens
//! as the API shows them, and the lifecycle rule for deleting a user.
//!
//! Store tables: `users` (name → [`UserRecord`]), `tokens` (SHA-256 of the token →
//! [`TokenRecord`]; tokens themselves are never stored). No lock: each change is one
//! committed batch.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zonal_proto::wire::{CreateToken, CreateUser, TokenCreated, UserView};
use zonal_proto::{now_ms, Principal, Role};
use zonal_store::{Batch, Store, StoreExt};

use crate::core::{valid_name, DomainCore};
use crate::error::DomainError;
use crate::services::{ServiceRecord, Target, T_SERVICES};
use crate::zones::{ZoneRecord, T_ZONES};

pub(crate) const T_USERS: &str = "users";
pub(crate) const T_TOKENS: &str = "tokens";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub role: Role,
    pub created_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub user: String,
    pub role: Role,
    pub created_ms: u64,
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// On first start (no admin yet), creates the user `admin` and returns its token.
pub(crate) fn bootstrap_admin(store: &dyn Store) -> Result<Option<String>, DomainError> {
    let has_admin = store.list::<UserRecord>(T_USERS, "")?.iter().any(|(_, u)| u.role == Role::Admin);
    if has_admin {
        return Ok(None);
    }
    let token = zonal_proto::secret();
    let now = now_ms();
    let batch = Batch::new()
        .put(T_USERS, "admin", &UserRecord { name: "admin".into(), role: Role::Admin, created_ms: now })
        .and_then(|b| {
            b.put(T_TOKENS, &hash(&token), &TokenRecord { user: "admin".into(), role: Role::Admin, created_ms: now })
        })?;
    store.commit(batch)?;
    Ok(Some(token))
}

impl DomainCore {
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let rec = self.store.get::<TokenRecord>(T_TOKENS, &hash(token)).ok()??;
        Some(Principal { name: rec.user, role: rec.role })
    }

    /// `POST /1.0/tokens`: a token for `name` with `role`; creates the user when missing.
    pub fn create_token(&self, req: &CreateToken) -> Result<TokenCreated, DomainError> {
        let role = Role::parse_user_role(&req.role).map_err(DomainError::Invalid)?;
        valid_name("user", &req.name)?;
        let now = now_ms();
        let mut batch = Batch::new();
        match self.store.get::<UserRecord>(T_USERS, &req.name)? {
            Some(u) if u.role != role => {
                return Err(DomainError::Conflict(format!(
                    "user {} has the role {}; a token for it cannot have the role {role}",
                    req.name, u.role
                )))
            }
            Some(_) => {}
            None => {
                batch = batch.put(T_USERS, &req.name, &UserRecord { name: req.name.clone(), role, created_ms: now })?;
            }
        }
        let token = zonal_proto::secret();
        batch = batch.put(T_TOKENS, &hash(&token), &TokenRecord { user: req.name.clone(), role, created_ms: now })?;
        self.store.commit(batch)?;
        Ok(TokenCreated { token, name: req.name.clone(), role: role.as_str().into() })
    }

    fn user_view(&self, u: &UserRecord) -> Result<UserView, DomainError> {
        let services = self.store.list::<ServiceRecord>(T_SERVICES, "")?;
        let tokens = self.store.list::<TokenRecord>(T_TOKENS, "")?;
        Ok(UserView {
            name: u.name.clone(),
            role: u.role.as_str().into(),
            services: services.iter().filter(|(_, s)| s.owner == u.name).count() as u32,
            tokens: tokens.iter().filter(|(_, t)| t.user == u.name).count() as u32,
        })
    }

    pub fn users(&self, caller: &Principal) -> Result<Vec<UserView>, DomainError> {
        let users = self.store.list::<UserRecord>(T_USERS, "")?;
        users
            .iter()
            .filter(|(_, u)| caller.is_admin() || u.name == caller.name)
            .map(|(_, u)| self.user_view(u))
            .collect()
    }

    pub fn user(&self, caller: &Principal, name: &str) -> Result<UserView, DomainError> {
        if !caller.is_admin() && caller.name != name {
            return Err(DomainError::Forbidden(format!(
                "{} {:?} may only see its own user, not {name:?}",
                caller.role, caller.name
            )));
        }
        let u = self
            .store
            .get::<UserRecord>(T_USERS, name)?
            .ok_or_else(|| DomainError::NotFound(format!("no user {name:?}")))?;
        self.user_view(&u)
    }

    pub fn create_user(&self, req: &CreateUser) -> Result<UserView, DomainError> {
        let role = Role::parse_user_role(&req.role).map_err(DomainError::Invalid)?;
        valid_name("user", &req.name)?;
        if self.store.get::<UserRecord>(T_USERS, &req.name)?.is_some() {
            return Err(DomainError::Conflict(format!("user {:?} already exists", req.name)));
        }
        let u = UserRecord { name: req.name.clone(), role, created_ms: now_ms() };
        self.store.put(T_USERS, &u.name, &u)?;
        self.user_view(&u)
    }

    /// Deletes a user and its tokens; refused while it owns services that run, or when it
    /// is the last admin.
    pub fn delete_user(&self, name: &str) -> Result<(), DomainError> {
        let u = self
            .store
            .get::<UserRecord>(T_USERS, name)?
            .ok_or_else(|| DomainError::NotFound(format!("no user {name:?}")))?;
        let services = self.store.list::<ServiceRecord>(T_SERVICES, "")?;
        let running: Vec<&str> = services
            .iter()
            .filter(|(_, s)| s.owner == name && (s.target == Target::Deployed || s.placement.is_some()))
            .map(|(k, _)| k.as_str())
            .collect();
        if !running.is_empty() {
            return Err(DomainError::Conflict(format!(
                "user {name} owns running services ({}); terminate or delete them first",
                running.join(", ")
            )));
        }
        if u.role == Role::Admin {
            let admins =
                self.store.list::<UserRecord>(T_USERS, "")?.iter().filter(|(_, x)| x.role == Role::Admin).count();
            if admins <= 1 {
                return Err(DomainError::Conflict(
                    "cannot delete the last admin user; create another admin first".into(),
                ));
            }
        }
        if u.role == Role::Zone && self.store.get::<ZoneRecord>(T_ZONES, name)?.is_some() {
            return Err(DomainError::Conflict(format!(
                "user {name} is the identity of a registered zone; delete the zone first"
            )));
        }
        let mut batch = Batch::new().delete(T_USERS, name);
        for (h, t) in self.store.list::<TokenRecord>(T_TOKENS, "")? {
            if t.user == name {
                batch = batch.delete(T_TOKENS, &h);
            }
        }
        for (k, s) in &services {
            if s.owner == name {
                batch = batch.delete(T_SERVICES, k);
            }
        }
        Ok(self.store.commit(batch)?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use zonal_proto::wire::RegisterService;
    use zonal_store::MemStore;

    use super::*;
    use crate::core::testing::{block_on, open, zone, WEB};
    use crate::core::Timing;

    #[test]
    fn bootstrap_creates_one_admin_whose_token_works_once_hashed() {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        let (core, token) = DomainCore::open(store.clone(), "t", Timing::default()).expect("open");
        let token = token.expect("first start yields a token");
        assert_eq!(core.authenticate(&token).map(|p| p.role), Some(Role::Admin));
        assert!(core.authenticate("guess").is_none());
        // Only the hash is stored.
        let raw = store.list_raw(T_TOKENS, "").expect("tokens");
        assert!(raw.iter().all(|(k, v)| !k.contains(&token) && !String::from_utf8_lossy(v).contains(&token)));
        let (_, again) = DomainCore::open(store, "t", Timing::default()).expect("reopen");
        assert!(again.is_none(), "no second bootstrap token");
    }

    #[test]
    fn lifecycle_rules_refuse_deleting_zones_and_users_with_running_dependents() {
        let core = open();
        zone(&core, "z1");
        let acme = Principal { name: "acme".into(), role: Role::Provider };
        core.create_user(&CreateUser { name: "acme".into(), role: "provider".into() }).expect("user");
        core.register_service(&acme, &RegisterService { serviceid: None, manifest: WEB.into() }).expect("register");
        // Placed through the pipeline, as `PUT …/state deploy` does.
        block_on(core.deploy_service(&acme, "web", false)).expect("deployed");
        assert_eq!(core.service_record("web").expect("web").placement.map(|p| p.instances()), Some(1));
        let e = core.delete_zone("z1").expect_err("zone runs web");
        assert!(matches!(e, DomainError::Conflict(_)), "{e:?}");
        assert!(e.detail().contains("web"), "{e}");
        let e = core.delete_user("acme").expect_err("acme runs web");
        assert!(matches!(e, DomainError::Conflict(_)), "{e:?}");
        assert!(
            core.zone_record("z1").is_ok() && core.store.get::<UserRecord>(T_USERS, "acme").expect("get").is_some()
        );
        assert!(matches!(core.delete_user("admin"), Err(DomainError::Conflict(_))), "the last admin stays");
    }
}
