//! The access table: who may call each route. The authentication layer consults it on every
//! request, and a route that is not in it is refused to everyone (deny by default).
//!
//! The OpenAPI document takes its security requirements from this table too, so the document
//! and the enforcement cannot disagree.

use app::routes::{ADMINS, ANY_ROLE, AUDITORS, PAGES};
use app::types::Role;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// A signed-in user with one of these roles. Services narrow further by tenant.
    Roles(&'static [Role]),
}

/// One route and its access.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub method: &'static str,
    /// The route template, as axum matches it.
    pub path: &'static str,
    pub access: Access,
}

const fn rule(method: &'static str, path: &'static str, access: Access) -> Rule {
    Rule {
        method,
        path,
        access,
    }
}

const ANY: Access = Access::Roles(ANY_ROLE);
const ADMIN: Access = Access::Roles(ADMINS);
const AUDIT: Access = Access::Roles(AUDITORS);
const SIGN: Access = Access::Roles(super::api_trust::SIGNERS);
const SUBMIT: Access = Access::Roles(super::api_submissions::SUBMITTERS);
const KEYS: Access = Access::Roles(super::api_submissions::KEY_REGISTRARS);

/// The JSON API, operations and sign-in routes.
pub const API_RULES: &[Rule] = &[
    rule("GET", "/api/v1/version", Access::Public),
    rule("GET", "/api/openapi.json", Access::Public),
    rule("GET", "/healthz", Access::Public),
    rule("GET", "/readyz", Access::Public),
    // `/metrics` has its own optional bearer token (`--metrics-token`).
    rule("GET", "/metrics", Access::Public),
    rule("POST", "/auth/login", Access::Public),
    rule("POST", "/auth/logout", ANY),
    rule("GET", "/api/v1/me", ANY),
    rule("GET", "/api/v1/dashboard", ANY),
    rule("GET", "/api/v1/tenants", ANY),
    rule("POST", "/api/v1/tenants", ADMIN),
    rule("GET", "/api/v1/tenants/{slug}", ANY),
    rule("GET", "/api/v1/tenants/{slug}/members", ANY),
    rule("GET", "/api/v1/users", ADMIN),
    rule("POST", "/api/v1/users", ADMIN),
    rule("GET", "/api/v1/users/{username}", ANY),
    rule("PATCH", "/api/v1/users/{username}", ADMIN),
    rule("GET", "/api/v1/tokens", ANY),
    rule("POST", "/api/v1/tokens", ANY),
    rule("DELETE", "/api/v1/tokens/{id}", ANY),
    rule("GET", "/api/v1/submissions", ANY),
    rule("POST", "/api/v1/submissions", SUBMIT),
    rule("GET", "/api/v1/submissions/{id}", ANY),
    rule("POST", "/submissions/upload", SUBMIT),
    rule("GET", "/api/v1/tenants/{slug}/publisher", ANY),
    rule("PATCH", "/api/v1/tenants/{slug}/publisher", ADMIN),
    rule("GET", "/api/v1/publisher-keys", ANY),
    rule("POST", "/api/v1/publisher-keys", KEYS),
    rule("GET", "/api/v1/ledger", AUDIT),
    rule("GET", "/api/v1/ledger/entries", AUDIT),
    rule("GET", "/api/v1/ledger/entries/{seq}", AUDIT),
    rule("GET", "/api/v1/ledger/entries/{seq}/proof", AUDIT),
    rule("GET", "/api/v1/ledger/checkpoints", AUDIT),
    rule("POST", "/api/v1/ledger/checkpoints", AUDIT),
    rule("GET", "/api/v1/ledger/checkpoint", AUDIT),
    rule("GET", "/api/v1/ledger/proofs/consistency", AUDIT),
    rule("GET", "/api/v1/ledger/export", AUDIT),
    rule("POST", "/api/v1/ledger/verifications", AUDIT),
    // Public keys are public: anyone may verify Stellar's signatures.
    rule("GET", "/api/v1/trust-root", Access::Public),
    rule("GET", "/api/v1/keys", ANY),
    rule("GET", "/api/v1/signing-requests", SIGN),
    rule("GET", "/api/v1/signing-requests/{id}", SIGN),
    rule("POST", "/api/v1/signing-requests/{id}/signature", SIGN),
];

/// The portal's server functions. Their services authorize each call in detail.
pub const SERVER_FN_RULES: &[Rule] = &[
    rule("GET", "/portal/api/dashboard", ANY),
    rule("GET", "/portal/api/tenants", ANY),
    rule("POST", "/portal/api/tenants/create", ADMIN),
    rule("GET", "/portal/api/users", ADMIN),
    rule("POST", "/portal/api/users/create", ADMIN),
    rule("POST", "/portal/api/users/set-disabled", ADMIN),
    rule("GET", "/portal/api/tokens", ANY),
    rule("POST", "/portal/api/tokens/create", ANY),
    rule("POST", "/portal/api/tokens/revoke", ANY),
    rule("GET", "/portal/api/ledger/status", AUDIT),
    rule("GET", "/portal/api/ledger/entries", AUDIT),
    rule("GET", "/portal/api/ledger/proof", AUDIT),
    rule("POST", "/portal/api/ledger/verify", AUDIT),
    rule("POST", "/portal/api/ledger/checkpoint", AUDIT),
    rule("GET", "/portal/api/submissions", ANY),
    rule("GET", "/portal/api/submission", ANY),
];

/// What the table says about a request to a matched route, or `None` if the route is unknown.
pub fn lookup(method: &str, route: &str) -> Option<Access> {
    if route.starts_with("/pkg") {
        return Some(Access::Public);
    }
    let method = if method == "HEAD" { "GET" } else { method };
    if let Some((_, roles)) = PAGES.iter().find(|(path, _)| *path == route) {
        return (method == "GET").then(|| roles.map_or(Access::Public, Access::Roles));
    }
    API_RULES
        .iter()
        .chain(SERVER_FN_RULES)
        .find(|r| r.method == method && r.path == route)
        .map(|r| r.access)
}

/// Whether a route is a portal page (answered with a redirect to sign in, not a 401).
pub fn is_page(route: &str) -> bool {
    PAGES.iter().any(|(path, _)| *path == route)
}

/// Whether any rule names this route, whatever the method (another method gets 405).
pub fn route_known(route: &str) -> bool {
    route.starts_with("/pkg")
        || PAGES.iter().any(|(path, _)| *path == route)
        || API_RULES
            .iter()
            .chain(SERVER_FN_RULES)
            .any(|r| r.path == route)
}

/// Whether a route is one of the portal's server functions.
pub fn is_server_fn(route: &str) -> bool {
    route.starts_with("/portal/api/")
}
