//! Role × resource: every route of both daemons, called by every kind of caller, against real
//! daemons on 127.0.0.1 (a domain and two zone managers; instances running `zonal workload`).
//!
//! The routes are read from each daemon's own `GET /openapi.json`, which the daemon generates
//! from the same route table that builds its router and its role rules: a route added to a
//! table is called here automatically, and a route without a rule in [`DOMAIN_RULES`] or
//! [`ZONE_RULES`] fails the test (so does a rule without a route).
//!
//! Callers ([`Caller`]): anonymous; the admin; acme (the provider owning the services in the
//! paths); bell-labs (another provider, with a service in the same zone); frankfurt-core (the
//! zone those services run in) and antwerp-edge (another zone), each with its zone token;
//! an instance of acme's service and one of bell-labs' service, each with its instance token;
//! and the domain's key at frankfurt-core. Tokens of the other daemon are unknown tokens.
//!
//! Each answer must be what the rule says: 401 without a known token, 403 for a role the
//! route does not admit or a resource the caller may not see or change, 404 where the rule
//! hides the resource, and otherwise success: 2xx, or a 4xx about the request itself (a
//! body the handler refuses, a 409 about the resource's state) — never 401/403/404 and never
//! 5xx. Requests that would destroy a fixture get a victim of their own (see [`Prep`]);
//! requests whose only check is the role send `{}`, which the handler refuses after the role
//! check, so nothing changes.
//!
//! A leak check runs on every answer: a caller never reads the name of a service (or an
//! instance of it) that it may not see, unless it named it in the request itself. Public
//! routes (`/healthz`, `/openapi.json`) are exempt; `/metrics` names services of every
//! provider, so it is the admin's at the domain and, at a zone, the domain's key's or the
//! zone's own token's (what the operator's Prometheus holds), and is checked like any route.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use zonal_proto::client::Method;
use zonal_proto::Role;

const Z1: &str = "frankfurt-core";
const Z2: &str = "antwerp-edge";

/// acme's service: the `{id}` of the domain's and the zone's service routes. It (and
/// bell-labs') needs a host feature only some hosts have, so a consolidation plan lists its
/// instance among those kept where they are.
const ACME_APP: &str = "kind: Service\nname: acme-app\nowner: acme\nevaluator: {builtin: latency}\ncomponents:\n  - name: web\n    run: zonal workload --name acme-app --slots 4\n    resources: {cpu: 100m, memory: 64Mi}\n    slots: {per_instance: 4}\n    scaling: {min_instances: 1, max_instances: 2}\n    placement: {zones: [frankfurt-core], requires: {sriov: \"true\"}}\n    ports:\n      - {name: tcp, protocol: tcp}\n";
/// acme's spare instances: each request that terminates an instance (as the domain's key at
/// the zone) takes one of them.
const ACME_SPARE: &str = "kind: Service\nname: acme-spare\nowner: acme\ncomponents:\n  - name: web\n    run: zonal workload --name acme-spare --slots 1\n    resources: {cpu: 100m, memory: 64Mi}\n    scaling: {min_instances: 4, max_instances: 4}\n    placement: {zones: [frankfurt-core]}\n    ports:\n      - {name: tcp, protocol: tcp}\n";
/// bell-labs' service, in the same zone.
const BELL_APP: &str = "kind: Service\nname: bell-app\nowner: bell-labs\ncomponents:\n  - name: web\n    run: zonal workload --name bell-app --slots 4\n    resources: {cpu: 100m, memory: 64Mi}\n    placement: {zones: [frankfurt-core], requires: {sriov: \"true\"}}\n    ports:\n      - {name: tcp, protocol: tcp}\n";

/// Names only acme (and the admin, and the zone running them) may read.
const ACME_NAMES: &[&str] = &["acme-app", "acme-spare", "acme-victim"];
/// Names only bell-labs (and the admin, and the zone running them) may read.
const BELL_NAMES: &[&str] = &["bell-app"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    Anonymous,
    /// antwerp-edge's zone token: a zone none of the services runs in.
    OtherZone,
    /// frankfurt-core's zone token: the zone acme's and bell-labs' services run in.
    ZoneItself,
    /// bell-labs: a provider that does not own acme's services.
    OtherProvider,
    /// An instance of bell-labs' service (its instance token).
    OtherInstance,
    /// An instance of acme's service (its instance token).
    Instance,
    /// acme: the provider that owns the services in the paths.
    Owner,
    /// The key frankfurt-core gave the domain at registration.
    DomainKey,
    Admin,
}

/// In this order: callers that may change a resource come last, after those that may not.
const CALLERS: [Caller; 9] = [
    Caller::Anonymous,
    Caller::OtherZone,
    Caller::ZoneItself,
    Caller::OtherProvider,
    Caller::OtherInstance,
    Caller::Instance,
    Caller::Owner,
    Caller::DomainKey,
    Caller::Admin,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Daemon {
    Domain,
    Zone,
}

impl Caller {
    /// The role this caller's token has at `daemon` (none: not a token `daemon` knows).
    fn role_at(self, daemon: Daemon) -> Option<Role> {
        match (daemon, self) {
            (Daemon::Domain, Caller::Admin) => Some(Role::Admin),
            (Daemon::Domain, Caller::Owner | Caller::OtherProvider) => Some(Role::Provider),
            (Daemon::Domain, Caller::ZoneItself | Caller::OtherZone) => Some(Role::Zone),
            (Daemon::Zone, Caller::DomainKey) => Some(Role::Domain),
            // A zone knows its own token at the domain (it admits `GET /metrics` only).
            (Daemon::Zone, Caller::ZoneItself) => Some(Role::Zone),
            (Daemon::Zone, Caller::Instance | Caller::OtherInstance) => Some(Role::Instance),
            _ => None,
        }
    }

    /// Service names this caller may not read (see the module docs).
    fn forbidden_names(self) -> &'static [&'static str] {
        match self {
            Caller::Owner | Caller::Instance => BELL_NAMES,
            Caller::OtherProvider | Caller::OtherInstance => ACME_NAMES,
            Caller::OtherZone | Caller::Anonymous => &["acme-app", "acme-spare", "acme-victim", "bell-app"],
            Caller::Admin | Caller::DomainKey | Caller::ZoneItself => &[],
        }
    }
}

// ------------------------------------------------------------------------------ the rules

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
enum Who {
    /// Anyone, without a token.
    Public,
    /// Callers holding one of these roles; nothing else is checked.
    Roles(&'static [Role]),
    /// Callers holding one of these roles, and then the logic's check on the resource.
    Scoped(&'static [Role], Scope),
}

/// The logic's check on the resource a route names (the fixtures: acme owns `acme-app`, which
/// runs in frankfurt-core with bell-labs' `bell-app`).
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// A list or document that every admitted caller gets, filtered to what it may see (the
    /// leak check reads it).
    Filtered,
    /// The service in the path: its owner, the admin and the zones it runs in may read it.
    SeeService,
    /// The service in the path or body: only its owner and the admin may change it.
    OwnService,
    /// The zone in the path: the admin, that zone, providers with a service there.
    SeeZone,
    /// The zone in the path or body: the admin and that zone itself.
    OwnZone,
    /// The user in the path (acme): the admin and that user.
    SelfUser,
    /// An instance of acme's service in the path: the admin and its owner; anyone else gets
    /// 404, as for an instance that does not exist.
    SeeInstanceElse404,
    /// The instance in the path or body (acme's): the domain and that instance itself.
    SelfInstance,
    /// The context namespace in the path (acme's service): the domain and that service's
    /// instances.
    OwnNamespace,
}

/// What a request carries besides the path.
#[derive(Debug, Clone, Copy)]
enum Input {
    None,
    /// `{}`: for routes whose only check is the role; the handler refuses it as a body after
    /// the role check, so an admitted caller changes nothing.
    Empty,
    /// A query string.
    Query(&'static str),
    /// A valid body, built by [`World::body`] from the fixtures.
    Body(&'static str),
}

/// What a request needs prepared so that it changes nothing the other cases use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prep {
    None,
    /// A fresh service of acme's, registered at the domain only: the `{id}`.
    DomainVictim,
    /// A fresh service registered at the zone only: the `{id}`.
    ZoneVictim,
    /// One of acme's spare instances: the `{id}` (used up by the call that terminates it).
    SpareInstance,
    /// A fresh offer of the zone for acme's service: the `{offer}`.
    Offer,
    /// The namespace key `{key}` exists.
    ContextKey,
    /// A fresh provider user with a token: the `{user}` (its tokens are revoked by the call).
    VictimUser,
    /// Collection-wide destruction (`DELETE /1.0/services`, `DELETE /1.0/zones`): runs after
    /// every other case.
    Last,
}

/// What undoes a route's effect once every caller has called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Nothing,
    /// A heartbeat was sent for frankfurt-core: wait for its own next one.
    Heartbeat,
    /// frankfurt-core was registered again (without its hosts): restart its zone manager,
    /// which registers it as it is (its instances are adopted).
    RestartZone,
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    method: &'static str,
    path: &'static str,
    who: Who,
    input: Input,
    prep: Prep,
    after: After,
    /// 404 is a success here for admitted callers (the resource the route reads may not
    /// exist yet, e.g. an instance that never moved).
    absent_ok: bool,
}

const fn r(method: &'static str, path: &'static str, who: Who) -> Rule {
    Rule { method, path, who, input: Input::None, prep: Prep::None, after: After::Nothing, absent_ok: false }
}

impl Rule {
    const fn input(mut self, input: Input) -> Rule {
        self.input = input;
        self
    }
    const fn prep(mut self, prep: Prep) -> Rule {
        self.prep = prep;
        self
    }
    const fn after(mut self, after: After) -> Rule {
        self.after = after;
        self
    }
    const fn absent_ok(mut self) -> Rule {
        self.absent_ok = true;
        self
    }
}

use Role::{Admin as A, Domain as D, Instance as I, Provider as P, Zone as Z};
use Scope::*;

const ANY: &[Role] = &[A, P, Z];
const PROVIDERS: &[Role] = &[A, P];
const ZONES: &[Role] = &[A, Z];
const ADMIN: &[Role] = &[A];
const DOMAIN: &[Role] = &[D];
const DOMAIN_OR_INSTANCE: &[Role] = &[D, I];
const DOMAIN_OR_ZONE: &[Role] = &[D, Z];
const PUBLIC: Who = Who::Public;
const EMPTY: Input = Input::Empty;

const fn roles(r: &'static [Role]) -> Who {
    Who::Roles(r)
}
const fn scoped(r: &'static [Role], s: Scope) -> Who {
    Who::Scoped(r, s)
}
const fn body(name: &'static str) -> Input {
    Input::Body(name)
}

/// The domain's routes.
const DOMAIN_RULES: &[Rule] = &[
    r("GET", "/healthz", PUBLIC),
    r("GET", "/openapi.json", PUBLIC),
    r("GET", "/metrics", roles(ADMIN)),
    r("GET", "/1.0/domain", roles(ANY)),
    r("GET", "/1.0/zones", scoped(ANY, Filtered)),
    r("POST", "/1.0/zones", scoped(ZONES, OwnZone)).input(body("zone-registration")).after(After::RestartZone),
    r("DELETE", "/1.0/zones", roles(ADMIN)).prep(Prep::Last),
    r("GET", "/1.0/zones/{zone}", scoped(ANY, SeeZone)),
    r("DELETE", "/1.0/zones/{zone}", roles(ADMIN)), // 409: services run there
    r("PUT", "/1.0/zones/{zone}/status", scoped(ZONES, OwnZone)).input(body("zone-report")).after(After::Heartbeat),
    r("GET", "/1.0/zones/{zone}/services", scoped(ANY, SeeZone)),
    r("GET", "/1.0/zones/{zone}/services/{id}", scoped(ANY, SeeService)),
    r("GET", "/1.0/services", scoped(ANY, Filtered)),
    r("POST", "/1.0/services", scoped(PROVIDERS, OwnService)).input(body("acme-manifest")),
    r("DELETE", "/1.0/services", scoped(PROVIDERS, Filtered)).prep(Prep::Last),
    r("GET", "/1.0/services/{id}", scoped(ANY, SeeService)),
    r("DELETE", "/1.0/services/{id}", scoped(PROVIDERS, OwnService)).prep(Prep::DomainVictim),
    r("GET", "/1.0/services/{id}/state", scoped(ANY, SeeService)),
    r("PUT", "/1.0/services/{id}/state", scoped(PROVIDERS, OwnService))
        .input(body("register-state"))
        .prep(Prep::DomainVictim),
    r("DELETE", "/1.0/services/{id}/state", scoped(PROVIDERS, OwnService)).prep(Prep::DomainVictim),
    r("GET", "/1.0/services/{id}/slots", scoped(ANY, SeeService)),
    r("PUT", "/1.0/services/{id}/slots", scoped(PROVIDERS, OwnService))
        .input(body("one-slot"))
        .prep(Prep::DomainVictim),
    r("DELETE", "/1.0/services/{id}/slots", scoped(PROVIDERS, OwnService)).prep(Prep::DomainVictim),
    r("GET", "/1.0/services/{id}/zones", scoped(ANY, SeeService)),
    r("GET", "/1.0/services/{id}/zones/{zone}", scoped(ANY, SeeService)),
    r("GET", "/1.0/services/{id}/offers", scoped(ANY, SeeService)),
    r("GET", "/1.0/services/{id}/events", scoped(ANY, SeeService)),
    r("GET", "/1.0/services/{id}/decision", scoped(ANY, SeeService)),
    r("GET", "/1.0/services/{id}/instances", scoped(PROVIDERS, SeeService)),
    r("GET", "/1.0/instances", scoped(PROVIDERS, Filtered)),
    r("GET", "/1.0/instances/{instance}/logs", scoped(PROVIDERS, SeeInstanceElse404)),
    r("GET", "/1.0/users", scoped(ANY, Filtered)),
    r("POST", "/1.0/users", roles(ADMIN)).input(EMPTY),
    r("GET", "/1.0/users/{user}", scoped(ANY, SelfUser)),
    r("DELETE", "/1.0/users/{user}", roles(ADMIN)), // 409: acme runs services
    r("POST", "/1.0/tokens", roles(ADMIN)).input(EMPTY),
    r("GET", "/1.0/tokens", roles(ADMIN)),
    r("DELETE", "/1.0/tokens/{token}", roles(ADMIN)).absent_ok(), // 404: no token has that id
    r("DELETE", "/1.0/users/{user}/tokens", roles(ADMIN)).prep(Prep::VictimUser),
    r("GET", "/1.0/audit", roles(ADMIN)),
    r("GET", "/1.0/backup", roles(ADMIN)),
    r("GET", "/1.0/resolve/{id}", scoped(ANY, SeeService)).input(Input::Query("lat=50.11&lon=8.68")),
    r("GET", "/1.0/geography", roles(ANY)),
    r("PUT", "/1.0/geography", roles(ADMIN)).input(EMPTY), // changes nothing: no part given
    r("GET", "/1.0/regions", scoped(ANY, Filtered)),
    r("GET", "/1.0/consolidation", scoped(ANY, Filtered)),
    r("POST", "/1.0/consolidation", roles(ADMIN)).input(EMPTY), // plans, applies nothing
    r("POST", "/1.0/plans", scoped(PROVIDERS, OwnService)).input(body("plan")),
    r("GET", "/1.0/state", scoped(PROVIDERS, Filtered)),
    r("GET", "/1.0/infrastructure", roles(ANY)),
    r("PUT", "/1.0/infrastructure", roles(ADMIN)).input(EMPTY),
    r("GET", "/1.0/knowledge-base", roles(ANY)),
    r("PUT", "/1.0/knowledge-base", roles(ADMIN)).input(body("knowledge-base")),
];

/// The zone's routes (called at frankfurt-core).
const ZONE_RULES: &[Rule] = &[
    r("GET", "/healthz", PUBLIC),
    r("GET", "/openapi.json", PUBLIC),
    r("GET", "/metrics", roles(DOMAIN_OR_ZONE)),
    r("GET", "/1.0/services", roles(DOMAIN)),
    r("POST", "/1.0/services", roles(DOMAIN)).input(EMPTY),
    r("DELETE", "/1.0/services", roles(DOMAIN)).prep(Prep::Last),
    r("GET", "/1.0/services/{id}", roles(DOMAIN)),
    r("DELETE", "/1.0/services/{id}", roles(DOMAIN)).prep(Prep::ZoneVictim),
    r("GET", "/1.0/services/{id}/state", roles(DOMAIN)),
    r("PUT", "/1.0/services/{id}/state", roles(DOMAIN)).input(EMPTY),
    r("DELETE", "/1.0/services/{id}/state", roles(DOMAIN)).prep(Prep::ZoneVictim),
    r("GET", "/1.0/services/{id}/slots", roles(DOMAIN)),
    r("PUT", "/1.0/services/{id}/slots", roles(DOMAIN)).input(EMPTY),
    r("DELETE", "/1.0/services/{id}/slots", roles(DOMAIN)).prep(Prep::ZoneVictim),
    r("GET", "/1.0/services/{id}/instances", roles(DOMAIN)),
    r("POST", "/1.0/services/{id}/instances", roles(DOMAIN)).input(EMPTY),
    r("DELETE", "/1.0/services/{id}/instances", roles(DOMAIN)).prep(Prep::ZoneVictim),
    r("GET", "/1.0/services/{id}/offers", roles(DOMAIN)),
    r("POST", "/1.0/services/{id}/offers", roles(DOMAIN)).input(EMPTY),
    r("DELETE", "/1.0/services/{id}/offers", roles(DOMAIN)),
    r("GET", "/1.0/offers", roles(DOMAIN)),
    r("POST", "/1.0/offers", roles(DOMAIN)).input(EMPTY),
    r("DELETE", "/1.0/offers", roles(DOMAIN)),
    r("GET", "/1.0/offers/{offer}", roles(DOMAIN)).prep(Prep::Offer),
    r("DELETE", "/1.0/offers/{offer}", roles(DOMAIN)).prep(Prep::Offer),
    r("GET", "/1.0/instances", roles(DOMAIN)),
    r("GET", "/1.0/instances/{id}", roles(DOMAIN)),
    r("DELETE", "/1.0/instances/{id}", roles(DOMAIN)).prep(Prep::SpareInstance),
    r("GET", "/1.0/instances/{id}/state", roles(DOMAIN)),
    r("PUT", "/1.0/instances/{id}/state", roles(DOMAIN)).input(EMPTY),
    r("DELETE", "/1.0/instances/{id}/state", roles(DOMAIN)).prep(Prep::SpareInstance),
    r("GET", "/1.0/instances/{id}/slots", scoped(DOMAIN_OR_INSTANCE, SelfInstance)),
    r("PUT", "/1.0/instances/{id}/slots", scoped(DOMAIN_OR_INSTANCE, SelfInstance)).input(body("own-slots")),
    r("DELETE", "/1.0/instances/{id}/slots", roles(DOMAIN)).prep(Prep::SpareInstance),
    r("GET", "/1.0/moves", roles(DOMAIN)),
    r("GET", "/1.0/instances/{id}/move", roles(DOMAIN)).absent_ok(), // 404: it never moved
    r("POST", "/1.0/instances/{id}/move", roles(DOMAIN)).input(EMPTY),
    r("GET", "/1.0/instances/{id}/logs", roles(DOMAIN)),
    r("GET", "/1.0/instances/{id}/ports", roles(DOMAIN)),
    r("GET", "/1.0/instances/{id}/configs", roles(DOMAIN)),
    r("POST", "/1.0/instances/{id}/configs", roles(DOMAIN)).input(EMPTY),
    r("DELETE", "/1.0/instances/{id}/configs", roles(DOMAIN)).prep(Prep::SpareInstance),
    r("DELETE", "/1.0/instances/{id}/configs/{config}", roles(DOMAIN)), // 409: no such configuration
    r("POST", "/1.0/meters", scoped(DOMAIN_OR_INSTANCE, SelfInstance)).input(body("meter")),
    r("GET", "/1.0/domain", roles(DOMAIN)),
    r("PUT", "/1.0/domain", roles(DOMAIN)).input(EMPTY),
    r("DELETE", "/1.0/domain", roles(DOMAIN)), // 409: services are active
    r("GET", "/1.0/dca", roles(DOMAIN)),
    r("PUT", "/1.0/dca", roles(DOMAIN)).input(EMPTY),
    r("DELETE", "/1.0/dca", roles(DOMAIN)), // 409: instances are active
    r("GET", "/1.0/context/{ns}", scoped(DOMAIN_OR_INSTANCE, OwnNamespace)),
    r("GET", "/1.0/context/{ns}/{key}", scoped(DOMAIN_OR_INSTANCE, OwnNamespace)).prep(Prep::ContextKey),
    r("PUT", "/1.0/context/{ns}/{key}", scoped(DOMAIN_OR_INSTANCE, OwnNamespace)).input(body("context-value")),
    r("DELETE", "/1.0/context/{ns}/{key}", scoped(DOMAIN_OR_INSTANCE, OwnNamespace)).prep(Prep::ContextKey),
    r("GET", "/1.0/audit", roles(DOMAIN)),
];

/// The answer the rule expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 2xx, or a 4xx about the request itself (not 401, 403, 404), never 5xx.
    Success,
    Status(u16),
}

/// What `caller` must get from a route with rule `who` at `daemon`.
fn expected(daemon: Daemon, who: Who, caller: Caller) -> Expect {
    use Caller::*;
    let (roles, scope) = match who {
        Who::Public => return Expect::Success,
        Who::Roles(r) => (r, None),
        Who::Scoped(r, s) => (r, Some(s)),
    };
    let Some(role) = caller.role_at(daemon) else { return Expect::Status(401) };
    if !roles.contains(&role) {
        return Expect::Status(403);
    }
    let allowed = match scope {
        None | Some(Filtered) => true,
        Some(SeeService) => matches!(caller, Admin | Owner | ZoneItself),
        Some(OwnService) => matches!(caller, Admin | Owner),
        Some(SeeZone) => matches!(caller, Admin | Owner | OtherProvider | ZoneItself),
        Some(OwnZone) => matches!(caller, Admin | ZoneItself),
        Some(SelfUser) => matches!(caller, Admin | Owner),
        Some(SeeInstanceElse404) => {
            return if matches!(caller, Admin | Owner) { Expect::Success } else { Expect::Status(404) }
        }
        Some(SelfInstance) | Some(OwnNamespace) => matches!(caller, DomainKey | Instance),
    };
    if allowed {
        Expect::Success
    } else {
        Expect::Status(403)
    }
}

// ------------------------------------------------------------------------------ the world

/// The running system and every fixture the requests name.
struct World {
    h: Harness,
    domain: Daemon_,
    zones: Vec<Daemon_>,
    tokens: BTreeMap<Caller, String>,
    zone1_key: String,
    acme_instance: String,
    bell_instance: String,
    spares: Vec<String>,
    serial: u32,
}

type Daemon_ = support::Daemon;

/// `ZONAL_INSTANCE_TOKEN` of a running process.
fn instance_token(pid: u64) -> String {
    let environ =
        std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_else(|e| panic!("the environment of {pid}: {e}"));
    environ
        .split(|b| *b == 0)
        .find_map(|v| v.strip_prefix(b"ZONAL_INSTANCE_TOKEN="))
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .unwrap_or_else(|| panic!("process {pid} has no ZONAL_INSTANCE_TOKEN"))
}

/// Runs `zonal ARGS` against the domain; panics with its output when it fails.
fn zonal(url: &str, token: &str, args: &[&str]) {
    let out = std::process::Command::new(ZONAL)
        .args(args)
        .env("ZONAL_URL", url)
        .env("ZONAL_TOKEN", token)
        .env("ZONAL_CONTEXT", "/nonexistent/zonal-context.json")
        .output()
        .expect("run zonal");
    assert!(
        out.status.success(),
        "zonal {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl World {
    fn start() -> World {
        let mut h = Harness::new();
        let (domain, admin_token) = h.domain("127.0.0.1:0");
        let admin = h.client(&domain.url, Some(&admin_token));
        let mut tokens = BTreeMap::new();
        tokens.insert(Caller::Admin, admin_token.clone());
        tokens.insert(Caller::Owner, h.token(&admin, "provider", "acme"));
        tokens.insert(Caller::OtherProvider, h.token(&admin, "provider", "bell-labs"));
        tokens.insert(Caller::ZoneItself, h.token(&admin, "zone", Z1));
        tokens.insert(Caller::OtherZone, h.token(&admin, "zone", Z2));
        let zone2 = h.zone(Z2, &domain.url, &tokens[&Caller::OtherZone]);
        // The key frankfurt-core hands the domain is in its store (and nowhere else): start
        // it once, stop it hard, read the key, start it again (same state, same key).
        let mut zone1 = h.zone(Z1, &domain.url, &tokens[&Caller::ZoneItself]);
        wait_for("both zones to register", Duration::from_secs(20), || {
            let v = h.get(&admin, "/1.0/zones");
            (v.as_array()?.iter().filter(|z| z["state"] == "available").count() == 2).then_some(())
        });
        zone1.crash();
        let zone1_key = {
            let path = h.path().join("zones").join(Z1).join("zone.redb");
            let store = zonal_store::RedbStore::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let identity: Value = zonal_store::StoreExt::get(&store, "meta", "identity")
                .expect("read the zone's identity")
                .expect("the zone's identity");
            identity["api_key"].as_str().expect("api_key").to_string()
        };
        let zone1 = h.zone(Z1, &domain.url, &tokens[&Caller::ZoneItself]);
        tokens.insert(Caller::DomainKey, zone1_key.clone());
        wait_for("frankfurt-core to report again", Duration::from_secs(20), || {
            let v = h.get(&admin, &format!("/1.0/zones/{Z1}"));
            (v["state"] == "available" && v["last_seen_ms"].as_u64().is_some_and(|ms| ms < 1000)).then_some(())
        });

        // Documents the GET routes read, and the services the paths name.
        zonal(&domain.url, &admin_token, &["apply", "-f", example("infrastructure.yaml").to_str().expect("path")]);
        zonal(&domain.url, &admin_token, &["apply", "-f", example("knowledge-base.yaml").to_str().expect("path")]);
        let acme = h.client(&domain.url, Some(&tokens[&Caller::Owner]));
        let bell = h.client(&domain.url, Some(&tokens[&Caller::OtherProvider]));
        for (client, manifest) in [(&acme, ACME_APP), (&acme, ACME_SPARE), (&bell, BELL_APP)] {
            let v = h.call(client, "POST", "/1.0/services", Some(json!({"manifest": manifest}))).expect("register");
            let id = v["serviceid"].as_str().expect("serviceid").to_string();
            h.call(client, "PUT", &format!("/1.0/services/{id}/state"), Some(json!({"state": "deploy"})))
                .unwrap_or_else(|e| panic!("deploy {id}: {e:?}"));
        }
        let running = |client: &zonal_proto::Client, id: &str, n: usize| -> Vec<Value> {
            try_wait_for(&format!("{n} reporting instances of {id}"), Duration::from_secs(60), || {
                let v = h.call(client, "GET", &format!("/1.0/services/{id}?instances=true"), None);
                let v = v.map_err(|e| format!("{e:?}"))?;
                let all = v["instances"].as_array().cloned().unwrap_or_default();
                let ok = all.iter().filter(|i| i["state"] == "running" && i["slots"].is_object()).count();
                (v["state"] == "deployed" && ok == n && all.len() == n).then_some(all).ok_or_else(|| v.to_string())
            })
            // What the zones looked like too, to tell why it never ran.
            .unwrap_or_else(|e| panic!("{e}; zones: {}", h.get(&admin, "/1.0/zones")))
        };
        let acme_app = running(&acme, "acme-app", 1);
        let spares = running(&acme, "acme-spare", 4);
        let bell_app = running(&bell, "bell-app", 1);
        let id = |i: &Value| i["id"].as_str().expect("instance id").to_string();
        let pid = |i: &Value| i["pid"].as_u64().expect("instance pid");
        tokens.insert(Caller::Instance, instance_token(pid(&acme_app[0])));
        tokens.insert(Caller::OtherInstance, instance_token(pid(&bell_app[0])));
        // A consolidation plan to read; it names both providers' instances (kept where they
        // are), so its views are worth the leak check.
        let plan = h.call(&admin, "POST", "/1.0/consolidation", Some(json!({}))).expect("a consolidation plan");
        for i in [&acme_app[0], &bell_app[0]] {
            assert!(plan.to_string().contains(&id(i)), "the plan names {}: {plan}", id(i));
        }
        World {
            acme_instance: id(&acme_app[0]),
            bell_instance: id(&bell_app[0]),
            spares: spares.iter().map(id).collect(),
            h,
            domain,
            zones: vec![zone1, zone2],
            tokens,
            zone1_key,
            serial: 0,
        }
    }

    /// Waits until the domain has frankfurt-core's own heartbeat again (its hosts, its
    /// free capacity).
    fn wait_for_zone1(&self) {
        let admin = self.domain_admin();
        wait_for("frankfurt-core's own heartbeat", Duration::from_secs(30), || {
            let v = self.h.get(&admin, &format!("/1.0/zones/{Z1}"));
            let free = v["free"].as_object().is_some_and(|f| !f.is_empty());
            (v["state"] == "available" && v["hosts"].as_u64() > Some(0) && free).then_some(())
        });
    }

    fn undo(&mut self, after: After) {
        match after {
            After::Nothing => {}
            After::Heartbeat => self.wait_for_zone1(),
            After::RestartZone => {
                self.zones[0].crash();
                let zone1 = self.h.zone(Z1, &self.domain.url, &self.tokens[&Caller::ZoneItself]);
                self.zones[0] = zone1;
                self.wait_for_zone1();
                // Slot reports are memory only: the adopted instances send theirs again.
                let zone = self.zone_admin();
                wait_for("the adopted instances to report their slots", Duration::from_secs(30), || {
                    let all = self.h.get(&zone, "/1.0/instances");
                    let all = all.as_array()?;
                    all.iter().all(|i| i["state"] == "running" && i["slots"].is_object()).then_some(())
                });
            }
        }
    }

    fn url(&self, daemon: Daemon) -> &str {
        match daemon {
            Daemon::Domain => &self.domain.url,
            Daemon::Zone => &self.zones[0].url,
        }
    }

    fn client(&self, daemon: Daemon, caller: Caller) -> zonal_proto::Client {
        self.h.client(self.url(daemon), self.tokens.get(&caller).map(String::as_str))
    }

    /// The domain's key at frankfurt-core.
    fn zone_admin(&self) -> zonal_proto::Client {
        self.h.client(&self.zones[0].url, Some(&self.zone1_key))
    }

    fn domain_admin(&self) -> zonal_proto::Client {
        self.h.client(&self.domain.url, Some(&self.tokens[&Caller::Admin]))
    }

    fn next(&mut self) -> u32 {
        self.serial += 1;
        self.serial
    }

    /// Prepares what `rule` needs; returns the path parameters it fills.
    fn prepare(&mut self, daemon: Daemon, rule: &Rule) -> BTreeMap<&'static str, String> {
        let mut params: BTreeMap<&'static str, String> = BTreeMap::new();
        params.insert("zone", Z1.into());
        params.insert("user", "acme".into());
        params.insert("instance", self.acme_instance.clone());
        params.insert("ns", "acme-app".into());
        params.insert("key", "matrix/probe".into());
        params.insert("config", "no-such-config".into());
        params.insert("token", "000000000000".into());
        let instance_route = rule.path.starts_with("/1.0/instances/");
        params.insert(
            "id",
            if daemon == Daemon::Zone && instance_route { self.acme_instance.clone() } else { "acme-app".into() },
        );
        match rule.prep {
            Prep::None | Prep::Last => {}
            Prep::DomainVictim => {
                let name = format!("acme-victim-{}", self.next());
                let manifest = ACME_APP.replace("name: acme-app", &format!("name: {name}"));
                self.h
                    .call(&self.domain_admin(), "POST", "/1.0/services", Some(json!({"manifest": manifest})))
                    .unwrap_or_else(|e| panic!("register {name}: {e:?}"));
                params.insert("id", name);
            }
            Prep::ZoneVictim => {
                let name = format!("zone-victim-{}", self.next());
                let manifest =
                    BELL_APP.replace("name: bell-app", &format!("name: {name}")).replace("owner: bell-labs\n", "");
                self.h
                    .call(
                        &self.zone_admin(),
                        "POST",
                        "/1.0/services",
                        Some(json!({"serviceid": name, "manifest": manifest})),
                    )
                    .unwrap_or_else(|e| panic!("register {name} at the zone: {e:?}"));
                params.insert("id", name);
            }
            Prep::SpareInstance => {
                let spare = self.spares.last().cloned().expect("a spare instance left (add one to acme-spare)");
                params.insert("id", spare);
            }
            Prep::Offer => {
                let req = json!({"manifest": ACME_APP, "slots": 1, "validity_ms": 600000});
                let offer = self
                    .h
                    .call(&self.zone_admin(), "POST", "/1.0/services/acme-app/offers", Some(req))
                    .unwrap_or_else(|e| panic!("an offer of the zone: {e:?}"));
                params.insert("offer", offer["id"].as_str().expect("offer id").to_string());
            }
            Prep::VictimUser => {
                let name = format!("victim-{}", self.next());
                self.h
                    .call(&self.domain_admin(), "POST", "/1.0/tokens", Some(json!({"name": name, "role": "provider"})))
                    .unwrap_or_else(|e| panic!("a token for {name}: {e:?}"));
                params.insert("user", name);
            }
            Prep::ContextKey => {
                self.h
                    .call(&self.zone_admin(), "PUT", "/1.0/context/acme-app/matrix/probe", Some(json!({"probe": 1})))
                    .unwrap_or_else(|e| panic!("a namespace key: {e:?}"));
            }
        }
        params
    }

    /// The valid bodies the rules name.
    fn body(&mut self, name: &str) -> Value {
        match name {
            "acme-manifest" => json!({"manifest": ACME_APP}),
            "register-state" => json!({"state": "register"}),
            "one-slot" => json!({"slots": 1}),
            "plan" => json!({"serviceid": "acme-app"}),
            "knowledge-base" => self.h.get(&self.domain_admin(), "/1.0/knowledge-base"),
            "zone-registration" => {
                json!({"name": Z1, "endpoint": self.zones[0].url, "api_key": self.zone1_key, "tier": "core"})
            }
            // What frankfurt-core reports, as it reports it (hosts and placements follow in
            // its next heartbeat).
            "zone-report" => {
                let services = self.h.get(&self.zone_admin(), "/1.0/services");
                json!({"hosts": [], "services": services, "instances": 0})
            }
            "own-slots" => self.h.get(&self.zone_admin(), &format!("/1.0/instances/{}/slots", self.acme_instance)),
            "meter" => {
                let slots = self.h.get(&self.zone_admin(), &format!("/1.0/instances/{}/slots", self.acme_instance));
                json!({"counter_name": "fusioncounter", "counter_volume": slots["free"],
                       "resource_metadata": {"instanceId": self.acme_instance}})
            }
            "context-value" => json!({"probe": 2}),
            other => panic!("no body named {other:?}"),
        }
    }
}

/// One request; (status, body text).
fn send(h: &Harness, c: &zonal_proto::Client, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let m = Method::from_bytes(method.as_bytes()).expect("method");
    match h.rt.block_on(c.send_raw(m, path, body)) {
        Ok((status, bytes)) => (status, String::from_utf8_lossy(&bytes).into_owned()),
        Err(zonal_proto::ClientError::Api { status, body, .. }) => {
            (status, serde_json::to_string(&body).unwrap_or_default())
        }
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

/// The routes a daemon serves, from its `/openapi.json`: (METHOD, path).
fn served_routes(h: &Harness, url: &str) -> BTreeSet<(String, String)> {
    let doc = h.get(&h.client(url, None), "/openapi.json");
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths in /openapi.json") {
        for method in ops.as_object().expect("operations").keys() {
            out.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    out
}

fn rules_of(daemon: Daemon) -> &'static [Rule] {
    match daemon {
        Daemon::Domain => DOMAIN_RULES,
        Daemon::Zone => ZONE_RULES,
    }
}

/// Every route of `daemon` has a rule and every rule a route.
fn check_coverage(w: &World, daemon: Daemon) -> usize {
    let served = served_routes(&w.h, w.url(daemon));
    let ruled: BTreeSet<(String, String)> =
        rules_of(daemon).iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
    assert_eq!(ruled.len(), rules_of(daemon).len(), "{daemon:?}: a route has two rules");
    let missing: Vec<_> = served.difference(&ruled).collect();
    assert!(missing.is_empty(), "{daemon:?} routes without a rule in access_matrix.rs (add one): {missing:?}");
    let stale: Vec<_> = ruled.difference(&served).collect();
    assert!(stale.is_empty(), "{daemon:?} rules for routes the daemon does not serve: {stale:?}");
    served.len()
}

/// Calls `rule` as every caller; returns the failures (one line each).
fn run_rule(w: &mut World, daemon: Daemon, rule: &Rule, calls: &mut usize) -> Vec<String> {
    let mut failures = Vec::new();
    let mut used_spare = false;
    for caller in CALLERS {
        let params = w.prepare(daemon, rule);
        let mut path = rule.path.to_string();
        for (k, v) in &params {
            path = path.replace(&format!("{{{k}}}"), v);
        }
        if let Input::Query(q) = rule.input {
            path = format!("{path}?{q}");
        }
        let body = match rule.input {
            Input::None | Input::Query(_) => None,
            Input::Empty => Some(json!({})),
            Input::Body(name) => Some(w.body(name)),
        };
        let request_text = format!("{path} {}", body.as_ref().map(Value::to_string).unwrap_or_default());
        let (status, text) = send(&w.h, &w.client(daemon, caller), rule.method, &path, body);
        *calls += 1;
        let want = expected(daemon, rule.who, caller);
        let ok = match want {
            Expect::Status(s) => status == s,
            Expect::Success => {
                (200..300).contains(&status)
                    || ((400..500).contains(&status) && ![401, 403, 404].contains(&status))
                    || (status == 404 && rule.absent_ok)
            }
        };
        let what = format!("{daemon:?} {} {} as {caller:?}", rule.method, rule.path);
        if !ok {
            failures.push(format!(
                "{what}: expected {want:?}, got {status}: {}",
                text.chars().take(300).collect::<String>()
            ));
        }
        if !matches!(rule.who, Who::Public) {
            for name in caller.forbidden_names() {
                if text.contains(name) && !request_text.contains(name) {
                    failures.push(format!(
                        "{what}: the answer ({status}) names {name:?}, which {caller:?} may not see: {}",
                        text.chars().take(400).collect::<String>()
                    ));
                }
            }
        }
        used_spare |= rule.prep == Prep::SpareInstance && (200..300).contains(&status) && caller == Caller::DomainKey;
    }
    // A spare instance is used up once the domain's key terminated it.
    if used_spare {
        w.spares.pop();
    }
    w.undo(rule.after);
    failures
}

/// bell-labs' views of its own service name nothing of acme's: bell-app was placed (decided,
/// deployed) after acme's services ran in the same zone, so its decision, events, instances,
/// logs and plans are where acme's could show. (The matrix reads acme's service as acme.)
fn own_views_name_nothing_of_others(w: &mut World) -> Vec<String> {
    let bell = w.client(Daemon::Domain, Caller::OtherProvider);
    let logs = format!("/1.0/instances/{}/logs", w.bell_instance);
    let reads: Vec<(&str, String, Option<Value>)> = [
        "/1.0/services/bell-app?instances=true",
        "/1.0/services/bell-app/decision",
        "/1.0/services/bell-app/events",
        "/1.0/services/bell-app/slots",
        "/1.0/services/bell-app/zones",
        "/1.0/services/bell-app/zones/frankfurt-core",
        "/1.0/services/bell-app/instances",
        "/1.0/zones/frankfurt-core/services/bell-app",
        "/1.0/resolve/bell-app?lat=50.11&lon=8.68",
        logs.as_str(),
    ]
    .into_iter()
    .map(|p| ("GET", p.to_string(), None))
    .chain([("POST", "/1.0/plans".to_string(), Some(json!({"serviceid": "bell-app"})))])
    .collect();
    let mut failures = Vec::new();
    for (method, path, body) in reads {
        let (status, text) = send(&w.h, &bell, method, &path, body);
        if !(200..300).contains(&status) {
            failures.push(format!("bell-labs {method} {path}: {status}: {text}"));
        }
        for name in ACME_NAMES.iter().filter(|n| text.contains(**n)) {
            failures.push(format!(
                "bell-labs {method} {path} names {name:?}: {}",
                text.chars().take(400).collect::<String>()
            ));
        }
    }
    failures
}

#[test]
fn every_route_answers_every_caller_by_the_rules_and_nothing_leaks_across_providers() {
    let mut w = World::start();
    let domain_routes = check_coverage(&w, Daemon::Domain);
    let zone_routes = check_coverage(&w, Daemon::Zone);
    // The instances of the rules exist: acme's is in frankfurt-core with bell-labs'.
    assert_ne!(w.acme_instance, w.bell_instance);

    let mut failures = own_views_name_nothing_of_others(&mut w);
    let mut calls = 0;
    let order = [(Daemon::Domain, false), (Daemon::Zone, false), (Daemon::Zone, true), (Daemon::Domain, true)];
    for (daemon, last) in order {
        for rule in rules_of(daemon).iter().filter(|r| (r.prep == Prep::Last) == last) {
            failures.extend(run_rule(&mut w, daemon, rule, &mut calls));
        }
    }
    eprintln!(
        "access matrix: domain {domain_routes} routes × {n} callers, zone {zone_routes} routes × {n} callers: {calls} calls, {} failures",
        failures.len(),
        n = CALLERS.len()
    );
    assert_eq!(calls, (domain_routes + zone_routes) * CALLERS.len());
    assert!(failures.is_empty(), "{} of {calls} answers broke the rules:\n{}", failures.len(), failures.join("\n"));

    for z in &mut w.zones {
        z.stop();
    }
    w.domain.stop();
    w.h.assert_no_leftovers();
}
