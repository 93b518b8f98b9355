//! The authorization policy: who may do what, and which tenant's data they see.
//!
//! This is the one place that says it. The server's route table maps every route to an
//! [`Action`] and refuses the others at the edge; every service method authorizes its caller
//! again with [`authorize`] and scopes its queries with [`TenantScope`]; the OpenAPI document
//! lists [`Action::roles`]; the portal shows a link only to those [`Action::allows`].
//!
//! **Invariant:** deny by default. An action names the roles that may take it (never "all but"),
//! and an API token additionally needs the [`Scope`] the action asks for. Partners see their
//! own tenant's data and nothing else; staff (every other role) see every tenant.

use serde::{Deserialize, Serialize};

use crate::types::Role;

/// Something a caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read one's own account: who am I, the dashboard, one's own tokens.
    UseAccount,
    /// Create and revoke one's own API tokens.
    ManageOwnTokens,
    /// Read tenants and their members (partners: their own).
    ReadTenants,
    /// List every user and every user's tokens.
    ReadUsers,
    /// Create tenants and users, change users, make and revoke tokens for others.
    ManageAccounts,
    /// Read submissions, verdicts, publisher profiles and keys (partners: their own).
    ReadSubmissions,
    /// Upload a plugin bundle for one's own tenant.
    Submit,
    /// Register a publisher public key (partners: for their own tenant; it counts only once
    /// approved).
    RegisterPublisherKey,
    /// Approve publisher keys so that signatures by them count.
    ApprovePublisherKeys,
    /// Revoke a publisher key (partners: their own tenant's).
    RevokePublisherKey,
    /// Change a tenant's publisher profile (verified, tier, egress rules).
    EditPublisherProfile,
    /// Inspect the audit ledger: entries, checkpoints, proofs, export.
    ReadLedger,
    /// Sign a ledger checkpoint or verify the ledger now.
    OperateLedger,
    /// List the signing keys (public keys and windows).
    ReadKeys,
    /// Generate, rotate and revoke Stellar's signing keys; sign attestations on request.
    ManageSigningKeys,
    /// See, export and import offline signing requests.
    HandleSigningRequests,
    /// Read releases, their stages, review packages and attestations (partners: their own).
    ReadReleases,
    /// Request a release of an accepted submission (partners: their own tenant's, e.g. from
    /// CI with a token scoped to `release`).
    RequestRelease,
    /// Approve or reject a release waiting for approval (the stage names the role; nobody
    /// approves their own release, and never the submitting tenant).
    DecideRelease,
    /// Stop a release that is in flight.
    AbortRelease,
    /// Let a promotion through a closed release calendar, with a reason.
    OverrideWindow,
    /// Read the pipeline spec and its versions, and the release calendar.
    ReadPipeline,
    /// Publish a new version of the pipeline spec; add and remove calendar windows.
    ManagePipeline,
    /// Register outgoing webhooks and read their delivery logs.
    ManageWebhooks,
    /// See the fleet: hosts, their versions, regions and last reports.
    ReadFleet,
    /// Create and revoke fleet tokens (the credentials hosts poll and report with).
    ManageFleet,
    /// Steer a rollout: promote, pause, resume, retry a rolled-back release, yank a GA version.
    ControlRollout,
}

/// What an API token may be used for. Sessions carry every scope; a token carries the scopes
/// chosen when it was made, and an action needs its scope as well as the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read what the role may see.
    Read,
    /// Submit plugins and register publisher keys.
    Submit,
    /// Request, approve, reject and abort releases.
    Release,
    /// Every other change: accounts, tokens, keys, the ledger, the pipeline.
    Admin,
}

impl Scope {
    /// Every scope, in the order they are listed.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Submit, Scope::Release, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Submit => "submit",
            Scope::Release => "release",
            Scope::Admin => "admin",
        }
    }

    /// Parses `read`, `submit`, `release` or `admin`.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const ALL_ROLES: &[Role] = &Role::ALL;
const ADMIN: &[Role] = &[Role::Admin];
const PARTNER: &[Role] = &[Role::Partner];
const AUDITORS: &[Role] = &[Role::Secops, Role::Admin];
const PLATFORM: &[Role] = &[Role::Platform, Role::Admin];
const KEY_OWNERS: &[Role] = &[Role::Partner, Role::Admin];
const KEY_REVOKERS: &[Role] = &[Role::Partner, Role::Secops, Role::Admin];
const RELEASE_REQUESTERS: &[Role] = &[Role::Partner, Role::Platform, Role::Admin];
const APPROVERS: &[Role] = &[Role::Reviewer, Role::Secops, Role::Platform, Role::Admin];

impl Action {
    /// Every action.
    pub const ALL: [Action; 27] = [
        Action::UseAccount,
        Action::ManageOwnTokens,
        Action::ReadTenants,
        Action::ReadUsers,
        Action::ManageAccounts,
        Action::ReadSubmissions,
        Action::Submit,
        Action::RegisterPublisherKey,
        Action::ApprovePublisherKeys,
        Action::RevokePublisherKey,
        Action::EditPublisherProfile,
        Action::ReadLedger,
        Action::OperateLedger,
        Action::ReadKeys,
        Action::ManageSigningKeys,
        Action::HandleSigningRequests,
        Action::ReadReleases,
        Action::RequestRelease,
        Action::DecideRelease,
        Action::AbortRelease,
        Action::OverrideWindow,
        Action::ReadPipeline,
        Action::ManagePipeline,
        Action::ManageWebhooks,
        Action::ReadFleet,
        Action::ManageFleet,
        Action::ControlRollout,
    ];

    /// The roles that may take this action.
    pub const fn roles(self) -> &'static [Role] {
        match self {
            Action::UseAccount
            | Action::ManageOwnTokens
            | Action::ReadTenants
            | Action::ReadSubmissions
            | Action::ReadKeys
            | Action::ReadReleases
            | Action::ReadPipeline => ALL_ROLES,
            Action::ReadUsers
            | Action::ManageAccounts
            | Action::EditPublisherProfile
            | Action::OverrideWindow
            | Action::ManageWebhooks => ADMIN,
            Action::RequestRelease => RELEASE_REQUESTERS,
            Action::DecideRelease => APPROVERS,
            Action::AbortRelease | Action::ManagePipeline => PLATFORM,
            Action::Submit => PARTNER,
            Action::RegisterPublisherKey => KEY_OWNERS,
            Action::ApprovePublisherKeys | Action::ReadLedger | Action::OperateLedger => AUDITORS,
            Action::RevokePublisherKey => KEY_REVOKERS,
            Action::ManageSigningKeys | Action::HandleSigningRequests => PLATFORM,
            Action::ReadFleet | Action::ManageFleet | Action::ControlRollout => PLATFORM,
        }
    }

    /// The token scope this action needs.
    pub const fn scope(self) -> Scope {
        match self {
            Action::UseAccount
            | Action::ReadTenants
            | Action::ReadUsers
            | Action::ReadSubmissions
            | Action::ReadLedger
            | Action::ReadKeys
            | Action::ReadReleases
            | Action::ReadPipeline
            | Action::ReadFleet => Scope::Read,
            Action::Submit | Action::RegisterPublisherKey => Scope::Submit,
            Action::RequestRelease
            | Action::DecideRelease
            | Action::AbortRelease
            | Action::ControlRollout => Scope::Release,
            Action::ManageOwnTokens
            | Action::ManageAccounts
            | Action::ApprovePublisherKeys
            | Action::RevokePublisherKey
            | Action::EditPublisherProfile
            | Action::OperateLedger
            | Action::ManageSigningKeys
            | Action::HandleSigningRequests
            | Action::OverrideWindow
            | Action::ManagePipeline
            | Action::ManageWebhooks
            | Action::ManageFleet => Scope::Admin,
        }
    }

    /// What the action is, for messages: "only … may {description}".
    pub const fn description(self) -> &'static str {
        match self {
            Action::UseAccount => "use an account",
            Action::ManageOwnTokens => "manage their API tokens",
            Action::ReadTenants => "read tenants",
            Action::ReadUsers => "list every user",
            Action::ManageAccounts => "manage tenants and users",
            Action::ReadSubmissions => "read submissions",
            Action::Submit => "submit plugins, for their own tenant",
            Action::RegisterPublisherKey => "register publisher keys",
            Action::ApprovePublisherKeys => "approve publisher keys",
            Action::RevokePublisherKey => "revoke publisher keys",
            Action::EditPublisherProfile => "change publisher profiles",
            Action::ReadLedger => "inspect the audit ledger",
            Action::OperateLedger => "sign checkpoints of the audit ledger or verify it",
            Action::ReadKeys => "list the signing keys",
            Action::ManageSigningKeys => "manage Stellar's signing keys",
            Action::HandleSigningRequests => "handle offline signing requests",
            Action::ReadReleases => "read releases",
            Action::RequestRelease => "request releases",
            Action::DecideRelease => "approve or reject releases",
            Action::AbortRelease => "abort releases",
            Action::OverrideWindow => "override the release calendar",
            Action::ReadPipeline => "read the pipeline spec and the release calendar",
            Action::ManagePipeline => "change the pipeline spec and the release calendar",
            Action::ReadFleet => "see the fleet's hosts",
            Action::ManageFleet => "create and revoke fleet tokens",
            Action::ControlRollout => "promote, pause, resume, retry or yank releases",
            Action::ManageWebhooks => "manage webhooks",
        }
    }

    /// Whether `role` may take this action.
    pub fn allows(self, role: Role) -> bool {
        self.roles().contains(&role)
    }
}

/// Which tenants' data a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantScope {
    /// Staff: every tenant.
    All,
    /// A partner: their own tenant (by database id).
    Own(i32),
    /// A partner account without a tenant (which the schema forbids): nothing.
    Nothing,
}

impl TenantScope {
    /// The scope of a role and its tenant.
    pub fn of(role: Role, tenant_id: Option<i32>) -> TenantScope {
        match (role.is_staff(), tenant_id) {
            (true, _) => TenantScope::All,
            (false, Some(id)) => TenantScope::Own(id),
            (false, None) => TenantScope::Nothing,
        }
    }

    /// Whether data of `tenant_id` is visible.
    pub fn admits(self, tenant_id: i32) -> bool {
        match self {
            TenantScope::All => true,
            TenantScope::Own(id) => id == tenant_id,
            TenantScope::Nothing => false,
        }
    }

    /// The one tenant a partner is limited to (`None` for staff).
    pub fn only(self) -> Option<i32> {
        match self {
            TenantScope::All => None,
            TenantScope::Own(id) => Some(id),
            // No row has id -1: a query limited to it finds nothing.
            TenantScope::Nothing => Some(-1),
        }
    }
}

/// Names of roles, for messages: "secops or admin".
pub fn role_list(roles: &[Role]) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    match names.as_slice() {
        [] => "nobody".into(),
        [one] => (*one).into(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(feature = "ssr")]
mod check {
    use super::{Action, TenantScope, role_list};
    use crate::api::backend::Principal;
    use crate::error::AppError;

    /// Allows `who` to take `action`, or says why not: the role, or the token's scope.
    pub fn authorize(who: &Principal, action: Action) -> Result<(), AppError> {
        if !action.allows(who.role()) {
            return Err(AppError::forbidden(format!(
                "only {} may {}; you are signed in as {}",
                role_list(action.roles()),
                action.description(),
                who.role()
            )));
        }
        if !who.scopes.contains(&action.scope()) {
            return Err(AppError::forbidden(format!(
                "this API token lacks the `{}` scope needed to {}: create a token with it",
                action.scope(),
                action.description()
            )));
        }
        Ok(())
    }

    /// The tenants `who` sees.
    pub fn tenant_scope(who: &Principal) -> TenantScope {
        TenantScope::of(who.role(), who.tenant_id)
    }
}

#[cfg(feature = "ssr")]
pub use check::{authorize, tenant_scope};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_names_roles_and_partners_see_only_their_tenant() {
        for a in Action::ALL {
            assert!(!a.roles().is_empty(), "{a:?}");
        }
        assert_eq!(TenantScope::of(Role::Partner, Some(3)), TenantScope::Own(3));
        assert!(!TenantScope::Own(3).admits(4));
        assert!(TenantScope::of(Role::Reviewer, None).admits(4));
        assert!(!TenantScope::Nothing.admits(4));
        assert_eq!(role_list(&[Role::Secops, Role::Admin]), "secops or admin");
        assert_eq!(Scope::parse("submit"), Some(Scope::Submit));
        assert_eq!(Scope::parse("write"), None);
    }
}
