//! Who is calling.
//!
//! Roles of the domain (FUSION §3.6): the **domain admin** may do everything; a **service
//! provider** owns services and sees only its own; a **zone** (manager) registers and
//! reports its own zone only. At a zone: the **domain** it is bound to drives it; an
//! **instance** may only report its own slots and use its own context namespace.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Provider,
    Zone,
    Domain,
    Instance,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Provider => "provider",
            Role::Zone => "zone",
            Role::Domain => "domain",
            Role::Instance => "instance",
        }
    }
    /// Parses a role a person may hand out with a token (`admin`, `provider`, `zone`; the
    /// FUSION spellings `domain-admin` and `service-provider` too).
    /// A user's role as the API takes it: exactly `admin`, `provider` or `zone` (what
    /// `GET /openapi.json` lists; the CLI reads the aliases of [`Role::parse_user_role`] and
    /// sends these).
    pub fn parse_api_role(text: &str) -> Result<Role, String> {
        match text {
            "admin" => Ok(Role::Admin),
            "provider" => Ok(Role::Provider),
            "zone" => Ok(Role::Zone),
            other => Err(format!("unknown role {other:?}; expected admin, provider or zone")),
        }
    }

    pub fn parse_user_role(text: &str) -> Result<Role, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "admin" | "domain-admin" | "domain_admin" => Ok(Role::Admin),
            "provider" | "service-provider" | "service_provider" => Ok(Role::Provider),
            "zone" | "zone-manager" | "zone_manager" => Ok(Role::Zone),
            other => Err(format!("unknown role {other:?}; expected admin, provider or zone")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller: a name and a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin || self.role == Role::Domain
    }
}
