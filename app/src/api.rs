//! Server functions: the portal's calls into the server.
//!
//! Each function is thin: it finds the caller ([`backend::principal`]) and the server's
//! implementation ([`backend::PortalBackend`], provided as context), and delegates. Authorization
//! happens in that implementation, for every call. Reads use `GET` so that every `POST` is a
//! state change, and every state change carries the session's CSRF token as `csrf_token` (the
//! server checks it before the function runs).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::delivery::{
    CalendarWeek, ReleaseDetail, ReleaseFilter, ReleasePage, ReviewPackage, Webhook,
    WebhookDelivery,
};
use crate::error::AppError;
use crate::types::{
    ApiToken, Dashboard, LedgerCheckpoint, LedgerEntryView, LedgerFilter, LedgerPage, LedgerStatus,
    LedgerVerification, SubmissionDetail, SubmissionFilter, SubmissionPage, Tenant, User,
};

/// Counts for the dashboard, scoped to the caller's tenant for partners.
#[server(prefix = "/portal/api", endpoint = "dashboard", input = GetUrl)]
pub async fn get_dashboard() -> Result<Dashboard, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::backend()?.dashboard(&who).await)
}

/// Tenants the caller may see.
#[server(prefix = "/portal/api", endpoint = "tenants", input = GetUrl)]
pub async fn list_tenants() -> Result<Vec<Tenant>, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::backend()?.list_tenants(&who).await)
}

/// Creates a tenant (administrators).
#[server(prefix = "/portal/api", endpoint = "tenants/create")]
pub async fn create_tenant(
    csrf_token: String,
    slug: String,
    name: String,
) -> Result<Tenant, AppError> {
    let _ = csrf_token; // checked by the server before this runs
    let who = backend::principal()?;
    let input = crate::types::NewTenant { slug, name };
    backend::respond(backend::backend()?.create_tenant(&who, input).await)
}

/// Every user account (administrators).
#[server(prefix = "/portal/api", endpoint = "users", input = GetUrl)]
pub async fn list_users() -> Result<Vec<User>, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::backend()?.list_users(&who).await)
}

/// Creates a user account (administrators).
#[server(prefix = "/portal/api", endpoint = "users/create")]
pub async fn create_user(
    csrf_token: String,
    username: String,
    display_name: String,
    role: String,
    tenant: String,
    password: String,
) -> Result<User, AppError> {
    let _ = csrf_token; // checked by the server before this runs
    let who = backend::principal()?;
    let role = role
        .parse()
        .map_err(|e: crate::types::UnknownRole| AppError::invalid("role", e.to_string()))?;
    let tenant = Some(tenant.trim().to_owned()).filter(|t| !t.is_empty());
    let input = crate::types::NewUser {
        username,
        display_name,
        role,
        tenant,
        password,
    };
    backend::respond(backend::backend()?.create_user(&who, input).await)
}

/// Disables or re-enables a user account (administrators).
#[server(prefix = "/portal/api", endpoint = "users/set-disabled")]
pub async fn set_user_disabled(
    csrf_token: String,
    username: String,
    disabled: bool,
) -> Result<User, AppError> {
    let _ = csrf_token; // checked by the server before this runs
    let who = backend::principal()?;
    let update = crate::types::UserUpdate {
        disabled: Some(disabled),
        ..Default::default()
    };
    backend::respond(
        backend::backend()?
            .update_user(&who, &username, update)
            .await,
    )
}

/// Sets a new password for a user (administrators); their sessions end, and with
/// `revoke_tokens` their API tokens are revoked too.
#[server(prefix = "/portal/api", endpoint = "users/reset-password")]
pub async fn reset_password(
    csrf_token: String,
    username: String,
    password: String,
    revoke_tokens: Option<String>,
) -> Result<User, AppError> {
    let _ = csrf_token; // checked by the server before this runs
    let who = backend::principal()?;
    let update = crate::types::UserUpdate {
        password: Some(password),
        revoke_tokens: revoke_tokens.is_some(),
        ..Default::default()
    };
    backend::respond(
        backend::backend()?
            .update_user(&who, username.trim(), update)
            .await,
    )
}

/// The caller's API tokens; administrators see every user's.
#[server(prefix = "/portal/api", endpoint = "tokens", input = GetUrl)]
pub async fn list_tokens() -> Result<Vec<ApiToken>, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::backend()?.list_tokens(&who).await)
}

pub use token_forms::*;

/// The token form's server function: one argument per form field, more than clippy's default.
#[allow(
    clippy::too_many_arguments,
    reason = "a server function takes one argument per form field"
)]
mod token_forms {
    use leptos::prelude::*;

    #[cfg(feature = "ssr")]
    use super::backend;
    use crate::error::AppError;
    use crate::types::CreatedApiToken;

    /// Creates an API token; its secret is in the answer and nowhere else.
    #[server(prefix = "/portal/api", endpoint = "tokens/create")]
    pub async fn create_token(
        csrf_token: String,
        name: String,
        user: String,
        expires_in_days: String,
        scope_read: Option<String>,
        scope_submit: Option<String>,
        scope_release: Option<String>,
        scope_admin: Option<String>,
    ) -> Result<CreatedApiToken, AppError> {
        let _ = csrf_token; // checked by the server before this runs
        let who = backend::principal()?;
        let expires_in_days = match expires_in_days.trim() {
            "" => None,
            days => Some(days.parse::<u32>().map_err(|_| {
                AppError::invalid(
                    "expires_in_days",
                    format!("`{days}` is not a whole number of days: leave it empty for no expiry"),
                )
            })?),
        };
        let user = Some(user.trim().to_owned()).filter(|u| !u.is_empty());
        let scopes: Vec<crate::authz::Scope> = [
            (scope_read, crate::authz::Scope::Read),
            (scope_submit, crate::authz::Scope::Submit),
            (scope_release, crate::authz::Scope::Release),
            (scope_admin, crate::authz::Scope::Admin),
        ]
        .into_iter()
        .filter_map(|(field, scope)| field.map(|_| scope))
        .collect();
        let input = crate::types::NewApiToken {
            name,
            user,
            expires_in_days,
            scopes: Some(scopes),
        };
        backend::respond(backend::backend()?.create_token(&who, input).await)
    }
}

/// Revokes an API token.
#[server(prefix = "/portal/api", endpoint = "tokens/revoke")]
pub async fn revoke_token(csrf_token: String, id: String) -> Result<ApiToken, AppError> {
    let _ = csrf_token; // checked by the server before this runs
    let who = backend::principal()?;
    backend::respond(backend::backend()?.revoke_token(&who, &id).await)
}

/// The ledger at a glance: size, newest checkpoint, last verification (secops, admin).
#[server(prefix = "/portal/api", endpoint = "ledger/status", input = GetUrl)]
pub async fn get_ledger_status() -> Result<LedgerStatus, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::ledger()?.ledger_status(&who).await)
}

/// A page of ledger entries matching the filters, newest first (secops, admin).
#[server(prefix = "/portal/api", endpoint = "ledger/entries", input = GetUrl)]
pub async fn get_ledger_entries(filter: LedgerFilter) -> Result<LedgerPage, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::ledger()?.ledger_entries(&who, filter).await)
}

/// One entry, with its inclusion proof in the newest checkpoint once one covers it (secops,
/// admin).
#[server(prefix = "/portal/api", endpoint = "ledger/proof", input = GetUrl)]
pub async fn get_ledger_proof(seq: u64) -> Result<LedgerEntryView, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::ledger()?.ledger_entry_view(&who, seq).await)
}

/// Verifies the whole ledger now (secops, admin).
#[server(prefix = "/portal/api", endpoint = "ledger/verify")]
pub async fn verify_ledger(csrf_token: String) -> Result<LedgerVerification, AppError> {
    let _ = csrf_token; // checked by the server before this runs
    let who = backend::principal()?;
    backend::respond(backend::ledger()?.verify_ledger(&who).await)
}

/// Signs a checkpoint of the ledger now (secops, admin).
#[server(prefix = "/portal/api", endpoint = "ledger/checkpoint")]
pub async fn checkpoint_ledger(csrf_token: String) -> Result<LedgerCheckpoint, AppError> {
    let _ = csrf_token; // checked by the server before this runs
    let who = backend::principal()?;
    backend::respond(backend::ledger()?.checkpoint_ledger(&who).await)
}

/// Submissions the caller may see, newest first (partners: their own tenant).
#[server(prefix = "/portal/api", endpoint = "submissions", input = GetUrl)]
pub async fn get_submissions(filter: SubmissionFilter) -> Result<SubmissionPage, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::submissions()?.list_submissions(&who, filter).await)
}

/// One submission with its verdict, facts and history; another tenant's is "not found".
#[server(prefix = "/portal/api", endpoint = "submission", input = GetUrl)]
pub async fn get_submission(id: String) -> Result<SubmissionDetail, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::submissions()?.submission(&who, &id).await)
}

/// Releases the caller may see, newest first (partners: their own tenant).
#[server(prefix = "/portal/api", endpoint = "releases", input = GetUrl)]
pub async fn get_releases(filter: ReleaseFilter) -> Result<ReleasePage, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::delivery()?.list_releases(&who, filter).await)
}

/// One release with its timeline; another tenant's is "not found".
#[server(prefix = "/portal/api", endpoint = "release", input = GetUrl)]
pub async fn get_release(id: String) -> Result<ReleaseDetail, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::delivery()?.release(&who, &id).await)
}

/// The fast-review package of a release (opening it as someone who may decide records the
/// first look, for review-effort metrics).
#[server(prefix = "/portal/api", endpoint = "release/package", input = GetUrl)]
pub async fn get_release_package(id: String) -> Result<ReviewPackage, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::delivery()?.package(&who, &id).await)
}

/// How many releases wait for the caller's decision.
#[server(prefix = "/portal/api", endpoint = "inbox", input = GetUrl)]
pub async fn get_inbox_count() -> Result<u64, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::delivery()?.inbox_count(&who).await)
}

/// A week of the release calendar (`week`: any day in it, `2026-12-01`; empty: this week).
#[server(prefix = "/portal/api", endpoint = "calendar", input = GetUrl)]
pub async fn get_calendar(week: String) -> Result<CalendarWeek, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::delivery()?.calendar(&who, &week).await)
}

/// Every webhook (administrators).
#[server(prefix = "/portal/api", endpoint = "webhooks", input = GetUrl)]
pub async fn get_webhooks() -> Result<Vec<Webhook>, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::delivery()?.webhooks(&who).await)
}

/// A webhook's delivery log, newest first (administrators).
#[server(prefix = "/portal/api", endpoint = "webhooks/deliveries", input = GetUrl)]
pub async fn get_webhook_deliveries(id: i32) -> Result<Vec<WebhookDelivery>, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::delivery()?.webhook_deliveries(&who, id).await)
}

/// The fleet at a glance: hosts by product version and region, stale hosts (platform users).
#[server(prefix = "/portal/api", endpoint = "fleet", input = GetUrl)]
pub async fn get_fleet() -> Result<crate::fleet::FleetOverview, AppError> {
    let who = backend::principal()?;
    backend::respond(backend::fleet()?.overview(&who).await)
}

/// The server side of the portal: what the server supplies, and how server functions reach it.
#[cfg(feature = "ssr")]
pub mod backend {
    use std::sync::Arc;

    use leptos::prelude::*;

    use crate::error::AppError;
    use crate::types::*;

    /// Who is asking. The server's authentication layer puts it in the request extensions;
    /// a request without one is anonymous.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Principal {
        /// Database id of the user (0 for the operator, who is no user).
        pub user_id: i32,
        /// Database id of the partner's tenant.
        pub tenant_id: Option<i32>,
        pub me: Me,
        /// Set for session (cookie) authentication, absent for API tokens.
        pub csrf_token: Option<String>,
        /// What the credential may be used for: every scope for a session, the token's own
        /// for an API token.
        pub scopes: Vec<crate::authz::Scope>,
    }

    impl Principal {
        pub fn role(&self) -> Role {
            self.me.role
        }

        /// Whoever runs a command-line verb against the database and the key directory
        /// (`stellar admin …`, `stellar key …`): they hold everything an administrator could
        /// reach, and act with an administrator's rights. Recorded as `name` in the ledger
        /// (`cli:<operating-system user>`, or `system` for the server's own work).
        pub fn operator(name: impl Into<String>) -> Principal {
            let name = name.into();
            Principal {
                user_id: 0,
                tenant_id: None,
                me: Me {
                    display_name: name.clone(),
                    username: name,
                    role: Role::Admin,
                    tenant: None,
                },
                csrf_token: None,
                scopes: crate::authz::Scope::ALL.to_vec(),
            }
        }

        /// Whether this is the command-line operator rather than a signed-in user.
        pub fn is_operator(&self) -> bool {
            self.user_id == 0
        }
    }

    /// What the server implements for the portal. Every method authorizes its caller.
    #[async_trait::async_trait]
    pub trait PortalBackend: Send + Sync + 'static {
        async fn dashboard(&self, who: &Principal) -> Result<Dashboard, AppError>;
        async fn list_tenants(&self, who: &Principal) -> Result<Vec<Tenant>, AppError>;
        async fn create_tenant(
            &self,
            who: &Principal,
            input: NewTenant,
        ) -> Result<Tenant, AppError>;
        async fn list_users(&self, who: &Principal) -> Result<Vec<User>, AppError>;
        async fn create_user(&self, who: &Principal, input: NewUser) -> Result<User, AppError>;
        async fn update_user(
            &self,
            who: &Principal,
            username: &str,
            input: UserUpdate,
        ) -> Result<User, AppError>;
        async fn list_tokens(&self, who: &Principal) -> Result<Vec<ApiToken>, AppError>;
        async fn create_token(
            &self,
            who: &Principal,
            input: NewApiToken,
        ) -> Result<CreatedApiToken, AppError>;
        async fn revoke_token(&self, who: &Principal, id: &str) -> Result<ApiToken, AppError>;
    }

    /// The backend as stored in the reactive context.
    pub type SharedBackend = Arc<dyn PortalBackend>;

    /// What the server implements for the ledger view. Every method authorizes its caller.
    #[async_trait::async_trait]
    pub trait LedgerBackend: Send + Sync + 'static {
        async fn ledger_status(&self, who: &Principal) -> Result<LedgerStatus, AppError>;
        async fn ledger_entries(
            &self,
            who: &Principal,
            filter: LedgerFilter,
        ) -> Result<LedgerPage, AppError>;
        async fn ledger_proof(
            &self,
            who: &Principal,
            seq: u64,
            size: Option<u64>,
        ) -> Result<LedgerProof, AppError>;
        /// One entry, and its proof once a checkpoint covers it.
        async fn ledger_entry_view(
            &self,
            who: &Principal,
            seq: u64,
        ) -> Result<LedgerEntryView, AppError>;
        async fn verify_ledger(&self, who: &Principal) -> Result<LedgerVerification, AppError>;
        async fn checkpoint_ledger(&self, who: &Principal) -> Result<LedgerCheckpoint, AppError>;
    }

    /// The ledger backend as stored in the reactive context.
    pub type SharedLedger = Arc<dyn LedgerBackend>;

    /// What the server implements for the submission pages. Every method authorizes its caller.
    #[async_trait::async_trait]
    pub trait SubmissionsBackend: Send + Sync + 'static {
        async fn list_submissions(
            &self,
            who: &Principal,
            filter: SubmissionFilter,
        ) -> Result<SubmissionPage, AppError>;
        async fn submission(&self, who: &Principal, id: &str)
        -> Result<SubmissionDetail, AppError>;
    }

    /// The submissions backend as stored in the reactive context.
    pub type SharedSubmissions = Arc<dyn SubmissionsBackend>;

    /// What the server implements for the delivery pages. Every method authorizes its caller.
    #[async_trait::async_trait]
    pub trait DeliveryBackend: Send + Sync + 'static {
        async fn list_releases(
            &self,
            who: &Principal,
            filter: crate::delivery::ReleaseFilter,
        ) -> Result<crate::delivery::ReleasePage, AppError>;
        async fn release(
            &self,
            who: &Principal,
            id: &str,
        ) -> Result<crate::delivery::ReleaseDetail, AppError>;
        async fn package(
            &self,
            who: &Principal,
            id: &str,
        ) -> Result<crate::delivery::ReviewPackage, AppError>;
        async fn inbox_count(&self, who: &Principal) -> Result<u64, AppError>;
        async fn calendar(
            &self,
            who: &Principal,
            week: &str,
        ) -> Result<crate::delivery::CalendarWeek, AppError>;
        async fn webhooks(
            &self,
            who: &Principal,
        ) -> Result<Vec<crate::delivery::Webhook>, AppError>;
        async fn webhook_deliveries(
            &self,
            who: &Principal,
            id: i32,
        ) -> Result<Vec<crate::delivery::WebhookDelivery>, AppError>;
    }

    /// The delivery backend as stored in the reactive context.
    pub type SharedDelivery = Arc<dyn DeliveryBackend>;

    /// What the server implements for the fleet page. Every method authorizes its caller.
    #[async_trait::async_trait]
    pub trait FleetBackend: Send + Sync + 'static {
        async fn overview(&self, who: &Principal) -> Result<crate::fleet::FleetOverview, AppError>;
    }

    /// The fleet backend as stored in the reactive context.
    pub type SharedFleet = Arc<dyn FleetBackend>;

    /// The server's fleet backend, from context.
    pub fn fleet() -> Result<SharedFleet, AppError> {
        use_context::<SharedFleet>()
            .ok_or_else(|| AppError::internal("the fleet backend is not configured"))
    }

    /// The server's delivery backend, from context.
    pub fn delivery() -> Result<SharedDelivery, AppError> {
        use_context::<SharedDelivery>()
            .ok_or_else(|| AppError::internal("the delivery backend is not configured"))
    }

    /// The server's submissions backend, from context.
    pub fn submissions() -> Result<SharedSubmissions, AppError> {
        use_context::<SharedSubmissions>()
            .ok_or_else(|| AppError::internal("the submissions backend is not configured"))
    }

    /// The server's ledger backend, from context.
    pub fn ledger() -> Result<SharedLedger, AppError> {
        use_context::<SharedLedger>()
            .ok_or_else(|| AppError::internal("the ledger backend is not configured"))
    }

    /// The server's backend, from context.
    pub fn backend() -> Result<SharedBackend, AppError> {
        use_context::<SharedBackend>()
            .ok_or_else(|| AppError::internal("the portal backend is not configured"))
    }

    /// The caller, if signed in.
    pub fn principal_opt() -> Option<Principal> {
        use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>().cloned())
    }

    /// The caller, or `Unauthenticated` (answered with 401).
    pub fn principal() -> Result<Principal, AppError> {
        respond(principal_opt().ok_or_else(AppError::unauthenticated))
    }

    /// Passes a result through, setting the response status of an error.
    pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
        if let Err(err) = &result
            && let Some(options) = use_context::<leptos_axum::ResponseOptions>()
            && let Ok(status) = http::StatusCode::from_u16(err.status())
        {
            options.set_status(status);
        }
        result
    }
}
