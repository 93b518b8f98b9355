//! The route table: which [`Action`] each route is, from the policy in [`app::authz`]. The
//! authentication layer consults it on every request, and a route that is not in it is
//! refused to everyone (deny by default). Services authorize the same action again, with the
//! tenant scope.
//!
//! The OpenAPI document takes its security requirements from this table too, so the document
//! and the enforcement cannot disagree.

use app::authz::Action;
use app::routes::PAGES;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// A signed-in caller allowed to take this action.
    Signed(Action),
    /// A host of the fleet, with a fleet token (never a user's session or API token).
    Host,
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

const fn to(action: Action) -> Access {
    Access::Signed(action)
}

const PUBLIC: Access = Access::Public;
const HOST: Access = Access::Host;

/// The JSON API, operations and sign-in routes.
pub const API_RULES: &[Rule] = &[
    rule("GET", "/api/v1/version", PUBLIC),
    rule("GET", "/api/openapi.json", PUBLIC),
    rule("GET", "/healthz", PUBLIC),
    rule("GET", "/readyz", PUBLIC),
    // `/metrics` has its own optional bearer token (`--metrics-token`).
    rule("GET", "/metrics", PUBLIC),
    rule("POST", "/auth/login", PUBLIC),
    rule("GET", "/auth/oidc/start", PUBLIC),
    rule("GET", "/auth/oidc/callback", PUBLIC),
    rule("POST", "/auth/logout", to(Action::UseAccount)),
    rule("GET", "/api/v1/me", to(Action::UseAccount)),
    rule("GET", "/api/v1/dashboard", to(Action::UseAccount)),
    rule("GET", "/api/v1/tenants", to(Action::ReadTenants)),
    rule("POST", "/api/v1/tenants", to(Action::ManageAccounts)),
    rule("GET", "/api/v1/tenants/{slug}", to(Action::ReadTenants)),
    rule(
        "GET",
        "/api/v1/tenants/{slug}/members",
        to(Action::ReadTenants),
    ),
    rule("GET", "/api/v1/users", to(Action::ReadUsers)),
    rule("POST", "/api/v1/users", to(Action::ManageAccounts)),
    rule("GET", "/api/v1/users/{username}", to(Action::UseAccount)),
    rule(
        "PATCH",
        "/api/v1/users/{username}",
        to(Action::ManageAccounts),
    ),
    rule("GET", "/api/v1/tokens", to(Action::UseAccount)),
    rule("POST", "/api/v1/tokens", to(Action::ManageOwnTokens)),
    rule("DELETE", "/api/v1/tokens/{id}", to(Action::ManageOwnTokens)),
    rule("GET", "/api/v1/submissions", to(Action::ReadSubmissions)),
    rule("POST", "/api/v1/submissions", to(Action::Submit)),
    rule(
        "GET",
        "/api/v1/submissions/{id}",
        to(Action::ReadSubmissions),
    ),
    rule("POST", "/submissions/upload", to(Action::Submit)),
    rule(
        "GET",
        "/api/v1/tenants/{slug}/publisher",
        to(Action::ReadSubmissions),
    ),
    rule(
        "PATCH",
        "/api/v1/tenants/{slug}/publisher",
        to(Action::EditPublisherProfile),
    ),
    rule("GET", "/api/v1/publisher-keys", to(Action::ReadSubmissions)),
    rule(
        "POST",
        "/api/v1/publisher-keys",
        to(Action::RegisterPublisherKey),
    ),
    rule(
        "POST",
        "/api/v1/publisher-keys/{key}/approve",
        to(Action::ApprovePublisherKeys),
    ),
    rule(
        "POST",
        "/api/v1/publisher-keys/{key}/revoke",
        to(Action::RevokePublisherKey),
    ),
    rule("GET", "/api/v1/ledger", to(Action::ReadLedger)),
    rule("GET", "/api/v1/ledger/entries", to(Action::ReadLedger)),
    rule(
        "GET",
        "/api/v1/ledger/entries/{seq}",
        to(Action::ReadLedger),
    ),
    rule(
        "GET",
        "/api/v1/ledger/entries/{seq}/proof",
        to(Action::ReadLedger),
    ),
    rule("GET", "/api/v1/ledger/checkpoints", to(Action::ReadLedger)),
    rule(
        "POST",
        "/api/v1/ledger/checkpoints",
        to(Action::OperateLedger),
    ),
    rule("GET", "/api/v1/ledger/checkpoint", to(Action::ReadLedger)),
    rule(
        "GET",
        "/api/v1/ledger/proofs/consistency",
        to(Action::ReadLedger),
    ),
    rule("GET", "/api/v1/ledger/export", to(Action::ReadLedger)),
    rule(
        "POST",
        "/api/v1/ledger/verifications",
        to(Action::OperateLedger),
    ),
    // Public keys are public: anyone may verify Stellar's signatures.
    rule("GET", "/api/v1/trust-root", PUBLIC),
    rule("GET", "/api/v1/keys", to(Action::ReadKeys)),
    rule(
        "GET",
        "/api/v1/signing-requests",
        to(Action::HandleSigningRequests),
    ),
    rule(
        "GET",
        "/api/v1/signing-requests/{id}",
        to(Action::HandleSigningRequests),
    ),
    rule(
        "POST",
        "/api/v1/signing-requests/{id}/signature",
        to(Action::HandleSigningRequests),
    ),
    rule("POST", "/releases/{id}/decision", to(Action::DecideRelease)),
    rule("POST", "/releases/{id}/abort", to(Action::AbortRelease)),
    rule("GET", "/api/v1/releases", to(Action::ReadReleases)),
    rule("POST", "/api/v1/releases", to(Action::RequestRelease)),
    rule("GET", "/api/v1/releases/{id}", to(Action::ReadReleases)),
    rule(
        "POST",
        "/api/v1/releases/{id}/approvals",
        to(Action::DecideRelease),
    ),
    rule(
        "POST",
        "/api/v1/releases/{id}/abort",
        to(Action::AbortRelease),
    ),
    rule(
        "POST",
        "/api/v1/releases/{id}/override",
        to(Action::OverrideWindow),
    ),
    rule(
        "GET",
        "/api/v1/releases/{id}/package",
        to(Action::ReadReleases),
    ),
    rule(
        "GET",
        "/api/v1/releases/{id}/attestations",
        to(Action::ReadReleases),
    ),
    rule("GET", "/api/v1/inbox", to(Action::ReadReleases)),
    rule("GET", "/api/v1/pipeline", to(Action::ReadPipeline)),
    rule("GET", "/api/v1/pipeline/versions", to(Action::ReadPipeline)),
    rule(
        "POST",
        "/api/v1/pipeline/versions",
        to(Action::ManagePipeline),
    ),
    rule(
        "GET",
        "/api/v1/pipeline/versions/{version}",
        to(Action::ReadPipeline),
    ),
    rule("POST", "/api/v1/pipeline/check", to(Action::ReadPipeline)),
    rule("GET", "/api/v1/calendar", to(Action::ReadPipeline)),
    rule("GET", "/api/v1/calendar/windows", to(Action::ReadPipeline)),
    rule(
        "POST",
        "/api/v1/calendar/windows",
        to(Action::ManagePipeline),
    ),
    rule(
        "DELETE",
        "/api/v1/calendar/windows/{id}",
        to(Action::ManagePipeline),
    ),
    rule("GET", "/api/v1/fleet/channel", HOST),
    rule("GET", "/api/v1/fleet/bundles/{digest}", HOST),
    rule("GET", "/api/v1/fleet/bundles/{digest}/attestations", HOST),
    rule("POST", "/api/v1/fleet/reports", HOST),
    rule("GET", "/api/v1/fleet", to(Action::ReadFleet)),
    rule("GET", "/api/v1/fleet/tokens", to(Action::ManageFleet)),
    rule("POST", "/api/v1/fleet/tokens", to(Action::ManageFleet)),
    rule(
        "POST",
        "/api/v1/fleet/tokens/{id}/revoke",
        to(Action::ManageFleet),
    ),
    rule(
        "POST",
        "/api/v1/releases/{id}/rollout",
        to(Action::ControlRollout),
    ),
    rule("POST", "/releases/{id}/rollout", to(Action::ControlRollout)),
    rule("GET", "/api/v1/webhooks", to(Action::ManageWebhooks)),
    rule("POST", "/api/v1/webhooks", to(Action::ManageWebhooks)),
    rule(
        "DELETE",
        "/api/v1/webhooks/{id}",
        to(Action::ManageWebhooks),
    ),
    rule(
        "GET",
        "/api/v1/webhooks/{id}/deliveries",
        to(Action::ManageWebhooks),
    ),
];

/// The portal's server functions. Their services authorize each call in detail.
pub const SERVER_FN_RULES: &[Rule] = &[
    rule("GET", "/portal/api/dashboard", to(Action::UseAccount)),
    rule("GET", "/portal/api/tenants", to(Action::ReadTenants)),
    rule(
        "POST",
        "/portal/api/tenants/create",
        to(Action::ManageAccounts),
    ),
    rule("GET", "/portal/api/users", to(Action::ReadUsers)),
    rule(
        "POST",
        "/portal/api/users/create",
        to(Action::ManageAccounts),
    ),
    rule(
        "POST",
        "/portal/api/users/set-disabled",
        to(Action::ManageAccounts),
    ),
    rule(
        "POST",
        "/portal/api/users/reset-password",
        to(Action::ManageAccounts),
    ),
    rule("GET", "/portal/api/tokens", to(Action::UseAccount)),
    rule(
        "POST",
        "/portal/api/tokens/create",
        to(Action::ManageOwnTokens),
    ),
    rule(
        "POST",
        "/portal/api/tokens/revoke",
        to(Action::ManageOwnTokens),
    ),
    rule("GET", "/portal/api/ledger/status", to(Action::ReadLedger)),
    rule("GET", "/portal/api/ledger/entries", to(Action::ReadLedger)),
    rule("GET", "/portal/api/ledger/proof", to(Action::ReadLedger)),
    rule(
        "POST",
        "/portal/api/ledger/verify",
        to(Action::OperateLedger),
    ),
    rule(
        "POST",
        "/portal/api/ledger/checkpoint",
        to(Action::OperateLedger),
    ),
    rule(
        "GET",
        "/portal/api/submissions",
        to(Action::ReadSubmissions),
    ),
    rule("GET", "/portal/api/submission", to(Action::ReadSubmissions)),
    rule("GET", "/portal/api/releases", to(Action::ReadReleases)),
    rule("GET", "/portal/api/release", to(Action::ReadReleases)),
    rule(
        "GET",
        "/portal/api/release/package",
        to(Action::ReadReleases),
    ),
    rule("GET", "/portal/api/inbox", to(Action::ReadReleases)),
    rule("GET", "/portal/api/calendar", to(Action::ReadPipeline)),
    rule("GET", "/portal/api/fleet", to(Action::ReadFleet)),
    rule("GET", "/portal/api/webhooks", to(Action::ManageWebhooks)),
    rule(
        "GET",
        "/portal/api/webhooks/deliveries",
        to(Action::ManageWebhooks),
    ),
];

/// What the table says about a request to a matched route, or `None` if the route is unknown.
pub fn lookup(method: &str, route: &str) -> Option<Access> {
    if route.starts_with("/pkg") {
        return Some(Access::Public);
    }
    let method = if method == "HEAD" { "GET" } else { method };
    if let Some((_, action)) = PAGES.iter().find(|(path, _)| *path == route) {
        return (method == "GET").then(|| action.map_or(Access::Public, Access::Signed));
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
