//! Users and role-bound bearer tokens: the bootstrap admin, authentication, users and tokens
//! as the API shows them, token lifetimes and revocation, and the lifecycle rule for deleting
//! a user.
//!
//! Store tables: `users` (name → [`UserRecord`]), `tokens` (SHA-256 of the token →
//! [`TokenRecord`]; tokens themselves are never stored). No lock: each change is one
//! committed batch.
//!
//! **Token ids.** A token's id is the first 12 hex digits of its SHA-256 (the key of its
//! record): not secret (it cannot be turned back into the token), stable, and the same in
//! `zonal token list`, `zonal token revoke ID` and the audit log.
//!
//! **Lifetimes.** A token may have an expiry (`ttl` at creation: a span or `never`). Defaults:
//! admin and provider tokens 90 days ([`DEFAULT_TTL`]); zone tokens none (a zone whose token
//! lapsed would silently stop heartbeating — rotate them by creating a new token and revoking
//! the old); the bootstrap admin's token (`<state>/admin.token`) none, it is the way back in.
//! Revocation marks the record (`revoked_ms`) and keeps it for the list and the audit; a
//! revoked or expired token is refused from the next request on — every request reads the
//! record from the store, nothing is cached. Revoking the last valid admin token is refused.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zonal_proto::server::{Authenticated, Refusal};
use zonal_proto::wire::{CreateToken, CreateUser, TokenCreated, TokenView, UserView};
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
    /// When the token stops working (absent: never). Absent in records of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
    /// When it was revoked (absent: it was not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
    /// Who revoked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
}

impl TokenRecord {
    /// `active`, `expired` or `revoked` at `now`.
    pub fn state(&self, now: u64) -> &'static str {
        if self.revoked_ms.is_some() {
            "revoked"
        } else if self.expires_ms.is_some_and(|e| now >= e) {
            "expired"
        } else {
            "active"
        }
    }
}

/// The lifetime of admin and provider tokens made without a `ttl`.
pub const DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

/// Length of a token id (hex digits of the token's SHA-256).
pub const TOKEN_ID_LEN: usize = 12;

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The id of the token whose record key (SHA-256, hex) is `key`.
pub fn token_id(key: &str) -> String {
    key.chars().take(TOKEN_ID_LEN).collect()
}

fn token_view(key: &str, t: &TokenRecord, now: u64) -> TokenView {
    TokenView {
        id: token_id(key),
        user: t.user.clone(),
        role: t.role.as_str().into(),
        created_ms: t.created_ms,
        expires_ms: t.expires_ms,
        revoked_ms: t.revoked_ms,
        state: t.state(now).into(),
    }
}

/// The expiry a token made at `now` gets from `ttl` (`never`, a span, or the role's default).
fn expiry(role: Role, ttl: Option<&str>, now: u64) -> Result<Option<u64>, DomainError> {
    let span = match ttl {
        Some("never") => return Ok(None),
        Some(text) if text.trim() != text => {
            return Err(DomainError::Invalid(format!(
                "ttl: {text:?} has spaces around it; expected a span such as 30d, or never"
            )))
        }
        Some(text) => zonal_proto::parse_span(text).map_err(|e| DomainError::Invalid(format!("ttl: {e}, or never")))?,
        None if role == Role::Zone => return Ok(None),
        None => DEFAULT_TTL,
    };
    if span.as_millis() < 1000 {
        return Err(DomainError::Invalid(format!("ttl: {} ms is too short; expected at least 1s", span.as_millis())));
    }
    Ok(Some(now.saturating_add(span.as_millis() as u64)))
}

fn secret() -> Result<String, DomainError> {
    zonal_proto::try_secret().map_err(DomainError::Store)
}

/// On first start (no admin yet), creates the user `admin` and returns its token.
pub(crate) fn bootstrap_admin(store: &dyn Store) -> Result<Option<String>, DomainError> {
    let has_admin = store.list::<UserRecord>(T_USERS, "")?.iter().any(|(_, u)| u.role == Role::Admin);
    if has_admin {
        return Ok(None);
    }
    let token = secret()?;
    let now = now_ms();
    let record = TokenRecord {
        user: "admin".into(),
        role: Role::Admin,
        created_ms: now,
        expires_ms: None,
        revoked_ms: None,
        revoked_by: None,
    };
    let batch = Batch::new()
        .put(T_USERS, "admin", &UserRecord { name: "admin".into(), role: Role::Admin, created_ms: now })
        .and_then(|b| b.put(T_TOKENS, &hash(&token), &record))?;
    store.commit(batch)?;
    Ok(Some(token))
}

impl DomainCore {
    /// The principal holding `token`, when it is known, unexpired and not revoked.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        self.check_token(token).ok().map(|a| a.principal)
    }

    /// Who holds `token` and its id, or why it is refused (unknown, expired at …, revoked
    /// at …). Reads the store every time: a revocation counts from the next request.
    pub fn check_token(&self, token: &str) -> Result<Authenticated, Refusal> {
        let key = hash(token);
        let rec = match self.store.get::<TokenRecord>(T_TOKENS, &key) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(Refusal::Unknown),
            Err(e) => {
                tracing::error!("cannot read the tokens table: {e}");
                return Err(Refusal::Unknown);
            }
        };
        let token_id = token_id(&key);
        if let Some(at_ms) = rec.revoked_ms {
            return Err(Refusal::Revoked { token_id, user: rec.user, role: rec.role, at_ms });
        }
        if let Some(at_ms) = rec.expires_ms.filter(|e| now_ms() >= *e) {
            return Err(Refusal::Expired { token_id, user: rec.user, role: rec.role, at_ms });
        }
        Ok(Authenticated { principal: Principal { name: rec.user, role: rec.role }, token_id: Some(token_id) })
    }

    /// `GET /1.0/tokens`: every token (of `user`, when given), oldest first; never a secret.
    pub fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenView>, DomainError> {
        let now = now_ms();
        let mut out: Vec<TokenView> = self
            .store
            .list::<TokenRecord>(T_TOKENS, "")?
            .iter()
            .filter(|(_, t)| user.is_none_or(|u| t.user == u))
            .map(|(k, t)| token_view(k, t, now))
            .collect();
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(out)
    }

    /// Revokes the tokens `pick` selects (already revoked ones stay as they are); refused
    /// when no valid admin token would be left.
    fn revoke_where(
        &self,
        caller: &Principal,
        what: &str,
        pick: impl Fn(&str, &TokenRecord) -> bool,
    ) -> Result<Vec<TokenView>, DomainError> {
        let now = now_ms();
        let all = self.store.list::<TokenRecord>(T_TOKENS, "")?;
        let chosen: Vec<&(String, TokenRecord)> = all.iter().filter(|(k, t)| pick(k, t)).collect();
        if chosen.is_empty() {
            return Err(DomainError::NotFound(format!("no token {what} (zonal token list shows the ids)")));
        }
        let admins_left =
            all.iter().filter(|(k, t)| t.role == Role::Admin && t.state(now) == "active" && !pick(k, t)).count();
        let revokes_an_admin = chosen.iter().any(|(_, t)| t.role == Role::Admin && t.state(now) == "active");
        if revokes_an_admin && admins_left == 0 {
            return Err(DomainError::Conflict(format!(
                "revoking {what} would leave no valid admin token, and nobody could manage the domain; \
                 create another first (zonal token create --role admin --name NAME)"
            )));
        }
        let mut batch = Batch::new();
        let mut out = Vec::new();
        for (k, t) in chosen {
            let mut t = t.clone();
            if t.revoked_ms.is_none() {
                t.revoked_ms = Some(now);
                t.revoked_by = Some(caller.name.clone());
                batch = batch.put(T_TOKENS, k, &t)?;
            }
            out.push(token_view(k, &t, now));
        }
        self.store.commit(batch)?;
        Ok(out)
    }

    /// `DELETE /1.0/tokens/{id}`: revokes one token.
    pub fn revoke_token(&self, caller: &Principal, id: &str) -> Result<TokenView, DomainError> {
        if id.len() != TOKEN_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DomainError::Invalid(format!(
                "token id {id:?}: expected {TOKEN_ID_LEN} hex digits as zonal token list shows them"
            )));
        }
        let id = id.to_ascii_lowercase();
        let mut out = self.revoke_where(caller, &format!("with id {id}"), |k, _| k.starts_with(&id))?;
        out.pop().ok_or_else(|| DomainError::NotFound(format!("no token with id {id}")))
    }

    /// `DELETE /1.0/users/{user}/tokens`: revokes every token of `user`.
    pub fn revoke_user_tokens(&self, caller: &Principal, user: &str) -> Result<Vec<TokenView>, DomainError> {
        if self.store.get::<UserRecord>(T_USERS, user)?.is_none() {
            return Err(DomainError::NotFound(format!("no user {user:?}")));
        }
        self.revoke_where(caller, &format!("of user {user}"), |_, t| t.user == user)
    }

    /// `POST /1.0/tokens`: a token for `name` with `role`; creates the user when missing.
    pub fn create_token(&self, req: &CreateToken) -> Result<TokenCreated, DomainError> {
        let role = Role::parse_api_role(&req.role).map_err(DomainError::Invalid)?;
        valid_name("user", &req.name)?;
        let now = now_ms();
        let expires_ms = expiry(role, req.ttl.as_deref(), now)?;
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
        let token = secret()?;
        let key = hash(&token);
        let record = TokenRecord {
            user: req.name.clone(),
            role,
            created_ms: now,
            expires_ms,
            revoked_ms: None,
            revoked_by: None,
        };
        batch = batch.put(T_TOKENS, &key, &record)?;
        self.store.commit(batch)?;
        Ok(TokenCreated { token, name: req.name.clone(), role: role.as_str().into(), id: token_id(&key), expires_ms })
    }

    fn user_view(&self, u: &UserRecord) -> Result<UserView, DomainError> {
        let services = self.store.list::<ServiceRecord>(T_SERVICES, "")?;
        let tokens = self.store.list::<TokenRecord>(T_TOKENS, "")?;
        Ok(UserView {
            name: u.name.clone(),
            role: u.role.as_str().into(),
            services: services.iter().filter(|(_, s)| s.owner == u.name).count() as u32,
            tokens: tokens.iter().filter(|(_, t)| t.user == u.name && t.state(now_ms()) == "active").count() as u32,
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
        let role = Role::parse_api_role(&req.role).map_err(DomainError::Invalid)?;
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

    fn admin_caller() -> Principal {
        Principal { name: "admin".into(), role: Role::Admin }
    }

    fn token(core: &DomainCore, role: &str, name: &str, ttl: Option<&str>) -> TokenCreated {
        core.create_token(&CreateToken { role: role.into(), name: name.into(), ttl: ttl.map(str::to_string) })
            .expect("token")
    }

    #[test]
    fn tokens_get_ids_and_default_lifetimes_and_expire() {
        let core = open();
        let now = now_ms();
        let p = token(&core, "provider", "acme", None);
        assert_eq!(p.id.len(), TOKEN_ID_LEN);
        let ttl = p.expires_ms.expect("providers expire by default") - now;
        assert!(ttl.abs_diff(DEFAULT_TTL.as_millis() as u64) < 60_000, "{ttl}");
        let z = token(&core, "zone", "z9", None);
        assert_eq!(z.expires_ms, None, "zone tokens do not expire unless asked");
        let forever = token(&core, "provider", "acme", Some("never"));
        assert_eq!(forever.expires_ms, None);
        let a = core.check_token(&p.token).expect("valid");
        assert_eq!((a.principal.name.as_str(), a.token_id.as_deref()), ("acme", Some(p.id.as_str())));
        // A token past its expiry is refused, naming when.
        let key = hash(&p.token);
        let mut rec = core.store.get::<TokenRecord>(T_TOKENS, &key).expect("get").expect("record");
        rec.expires_ms = Some(now - 1);
        core.store.put(T_TOKENS, &key, &rec).expect("put");
        match core.check_token(&p.token) {
            Err(Refusal::Expired { token_id, user, at_ms, .. }) => {
                assert_eq!((token_id, user, at_ms), (p.id.clone(), "acme".to_string(), now - 1));
            }
            other => panic!("expected expired, got {other:?}"),
        }
        assert!(core.authenticate(&p.token).is_none());
        for bad in ["soon", "0s", "999ms", "30", "-1d"] {
            let e = core
                .create_token(&CreateToken { role: "provider".into(), name: "acme".into(), ttl: Some(bad.into()) })
                .expect_err(bad);
            assert!(matches!(e, DomainError::Invalid(_)) && e.detail().starts_with("ttl:"), "{bad}: {e}");
        }
    }

    #[test]
    fn revocation_is_immediate_listed_without_secrets_and_keeps_one_admin() {
        let core = open();
        let first = core.tokens(None).expect("list");
        assert_eq!(first.len(), 1, "the bootstrap admin's token");
        let p1 = token(&core, "provider", "acme", Some("1h"));
        let p2 = token(&core, "provider", "acme", Some("1h"));
        let b = token(&core, "provider", "bell", None);
        let v = core.revoke_token(&admin_caller(), &p1.id.to_ascii_uppercase()).expect("revoke");
        assert_eq!((v.id.as_str(), v.state.as_str()), (p1.id.as_str(), "revoked"));
        assert!(matches!(core.check_token(&p1.token), Err(Refusal::Revoked { .. })), "refused at once");
        assert!(core.check_token(&p2.token).is_ok() && core.check_token(&b.token).is_ok());
        // Revoking again changes nothing; unknown or malformed ids are named.
        assert_eq!(core.revoke_token(&admin_caller(), &p1.id).expect("again").revoked_ms, v.revoked_ms);
        assert!(matches!(core.revoke_token(&admin_caller(), "000000000000"), Err(DomainError::NotFound(_))));
        assert!(matches!(core.revoke_token(&admin_caller(), "xyz"), Err(DomainError::Invalid(_))));
        let all = core.revoke_user_tokens(&admin_caller(), "acme").expect("by user");
        assert_eq!(all.len(), 2);
        assert!(core.check_token(&p2.token).is_err() && core.check_token(&b.token).is_ok());
        assert!(matches!(core.revoke_user_tokens(&admin_caller(), "nobody"), Err(DomainError::NotFound(_))));
        // The list shows ids and states, never a token or its full hash.
        let listed = serde_json::to_string(&core.tokens(None).expect("list")).expect("json");
        for t in [&p1.token, &p2.token, &b.token] {
            assert!(!listed.contains(t.as_str()) && !listed.contains(&hash(t)), "{listed}");
        }
        assert_eq!(core.tokens(Some("acme")).expect("acme").iter().filter(|t| t.state == "revoked").count(), 2);
        // The only valid admin token cannot be revoked; with a second one it can.
        let e = core.revoke_user_tokens(&admin_caller(), "admin").expect_err("last admin");
        assert!(matches!(e, DomainError::Conflict(_)) && e.detail().contains("no valid admin token"), "{e}");
        let a2 = token(&core, "admin", "ops", None);
        core.revoke_user_tokens(&admin_caller(), "admin").expect("another admin exists");
        let e = core.revoke_token(&admin_caller(), &a2.id).expect_err("now the last");
        assert!(matches!(e, DomainError::Conflict(_)), "{e}");
        assert_eq!(core.user(&admin_caller(), "acme").expect("user").tokens, 0, "active tokens only");
    }
}
