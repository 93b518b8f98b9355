//! The wire contract between the server, the browser and API clients.
//!
//! These are data-transfer types, deliberately separate from the database entities: they carry
//! exactly what a caller may see. Times travel as RFC 3339 strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a user may do. A partner belongs to exactly one tenant; every other role is staff and
/// belongs to none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A partner developer: submits plugins for their own tenant only.
    Partner,
    /// Approves or rejects releases from the fast-review package.
    Reviewer,
    /// Writes and publishes policies; inspects the audit ledger.
    Secops,
    /// Runs the release pipeline and the signing keys.
    Platform,
    /// Manages tenants, users and tokens.
    Admin,
}

impl Role {
    /// Every role, in the order the portal lists them.
    pub const ALL: [Role; 5] = [
        Role::Partner,
        Role::Reviewer,
        Role::Secops,
        Role::Platform,
        Role::Admin,
    ];

    /// The name used in the API, the database and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Partner => "partner",
            Role::Reviewer => "reviewer",
            Role::Secops => "secops",
            Role::Platform => "platform",
            Role::Admin => "admin",
        }
    }

    /// Staff see every tenant; partners see only their own.
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Partner)
    }

    /// The name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Role::Partner => "Partner",
            Role::Reviewer => "Reviewer",
            Role::Secops => "SecOps",
            Role::Platform => "Platform",
            Role::Admin => "Admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Role`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`: expected one of partner, reviewer, secops, platform, admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// A tenant named by its slug, as embedded in other views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TenantRef {
    /// Stable, URL-safe identifier (`acme`).
    pub slug: String,
    /// Display name (`Acme Corp`).
    pub name: String,
}

/// The signed-in user as the portal sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Me {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// The tenant of a partner; `null` for staff.
    pub tenant: Option<TenantRef>,
}

/// What the portal shows before anyone signs in, from the server's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalInfo {
    /// What the sign-in page calls the single sign-on provider, when one is configured.
    pub sso: Option<String>,
}

/// The portal session: who is signed in and the token that state-changing forms must carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub me: Me,
    /// Sent back as the `csrf_token` form field or the `x-csrf-token` header.
    pub csrf_token: String,
}

/// Counts shown on the dashboard, scoped to what the viewer may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Dashboard {
    /// `null` when the counts cover every tenant (staff), else the partner's tenant.
    pub tenant: Option<TenantRef>,
    pub tenants: u64,
    pub users: u64,
    pub partners: u64,
    pub active_tokens: u64,
    pub active_sessions: u64,
}

/// A tenant with its member count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Tenant {
    pub slug: String,
    pub name: String,
    pub members: u64,
    pub created_at: String,
}

/// Input for creating a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewTenant {
    /// 2–63 characters: lowercase letters, digits and `-`, starting with a letter.
    pub slug: String,
    pub name: String,
}

/// A user account as listed to administrators and tenant members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct User {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Tenant slug of a partner; `null` for staff.
    pub tenant: Option<String>,
    pub disabled: bool,
    pub created_at: String,
}

/// Input for creating a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewUser {
    /// 2–63 characters: lowercase letters, digits, `-`, `_` and `.`, starting with a letter.
    pub username: String,
    /// Defaults to the username when empty.
    #[serde(default)]
    pub display_name: String,
    pub role: Role,
    /// Required for partners, forbidden for staff.
    #[serde(default)]
    pub tenant: Option<String>,
    /// At least 12 characters.
    pub password: String,
}

/// A change to a user account; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserUpdate {
    #[serde(default)]
    pub display_name: Option<String>,
    /// Disabling a user also ends their sessions; their tokens stop working.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// At least 12 characters; ends the user's sessions.
    #[serde(default)]
    pub password: Option<String>,
    /// With a new password (or when disabling): also revoke every API token of the user, so
    /// that a leaked token stops working together with the old password.
    #[serde(default)]
    pub revoke_tokens: bool,
}

/// An API token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApiToken {
    /// Stable identifier, used to revoke the token.
    pub id: String,
    pub name: String,
    /// The user the token acts as.
    pub user: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// What the token may be used for.
    pub scopes: Vec<crate::authz::Scope>,
}

/// Input for creating an API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewApiToken {
    /// What the token is for (`ci`, `laptop`).
    pub name: String,
    /// Only administrators may create a token for another user; defaults to the caller.
    #[serde(default)]
    pub user: Option<String>,
    /// Days until the token expires; none means it lasts until revoked.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
    /// What the token may be used for (`read`, `submit`, `admin`); every scope when omitted.
    /// A token cannot get a scope the credential that creates it lacks.
    #[serde(default)]
    pub scopes: Option<Vec<crate::authz::Scope>>,
}

/// A newly created token: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedApiToken {
    pub token: ApiToken,
    /// Send as `Authorization: Bearer <secret>`. It cannot be shown again.
    pub secret: String,
}

/// What `GET /api/v1/version` answers; clients negotiate the API version against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    /// The server's own version (semver).
    pub server_version: String,
    /// Every API version this server answers, oldest first.
    pub api_versions: Vec<String>,
    /// The newest API version.
    pub current_api_version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_round_trips_through_text() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!("root".parse::<Role>(), Err(UnknownRole("root".to_owned())));
    }
}

/// One audit-ledger entry, exactly as hashed: its fields are those of the offline verifier's
/// entry, so an entry (or a proof holding one) can be checked with `stellar ledger verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LedgerEntry {
    /// Position in the ledger, from 0 (also the Merkle leaf index).
    pub seq: u64,
    /// RFC 3339 UTC with microseconds.
    pub time: String,
    /// A username, `system`, or `cli:<operating-system user>`.
    pub actor: String,
    pub tenant: Option<String>,
    /// `login`, `login.failed`, `token.create`, `key.rotate`, …
    pub action: String,
    pub subject: String,
    /// Canonical JSON text.
    pub details: String,
    pub prev_hash: String,
    pub entry_hash: String,
}

/// Filters for the ledger list; empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct LedgerFilter {
    /// Exact actor.
    #[serde(default)]
    pub actor: Option<String>,
    /// Exact action, or a prefix ending in `.` (`token.`).
    #[serde(default)]
    pub action: Option<String>,
    /// Exact tenant slug.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    /// Entries before this time (RFC 3339).
    #[serde(default)]
    pub until: Option<String>,
    /// Page number, from 1 (at most 1,000,000).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 1_000_000))]
    pub page: Option<u64>,
    /// Entries per page, 1–200 (default 50).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 200))]
    pub per_page: Option<u64>,
}

/// A page of ledger entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LedgerPage {
    pub entries: Vec<LedgerEntry>,
    pub page: u64,
    pub per_page: u64,
    /// Entries matching the filters.
    pub total: u64,
    /// Entries in the whole ledger.
    pub size: u64,
}

/// A signed checkpoint of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LedgerCheckpoint {
    /// Tree size: the entries it covers.
    pub size: u64,
    /// Hex Merkle root.
    pub root_hash: String,
    /// The C2SP signed note.
    pub note: String,
    pub key_id: String,
    pub created_at: String,
}

/// The outcome of a verification of the whole ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LedgerVerification {
    pub verified_at: String,
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// The newest checkpoint the entries matched, when ok.
    pub checkpoint_size: Option<u64>,
    /// What was checked, or what failed (naming the first bad entry).
    pub message: String,
}

/// The ledger at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LedgerStatus {
    pub size: u64,
    pub latest_checkpoint: Option<LedgerCheckpoint>,
    pub last_verification: Option<LedgerVerification>,
}

/// An entry with its inclusion proof in a signed checkpoint. This JSON is the proof bundle
/// `stellar ledger verify --proof FILE --trust-root ROOT` checks offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LedgerProof {
    pub entry: LedgerEntry,
    /// The size of the checkpoint the proof leads to.
    pub tree_size: u64,
    /// Hex sibling hashes, leaf to root (RFC 6962 audit path).
    pub proof: Vec<String>,
    /// The checkpoint's signed note.
    pub checkpoint: String,
}

/// One entry as the portal shows it: the entry, and its inclusion proof once a signed
/// checkpoint covers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntryView {
    pub entry: LedgerEntry,
    pub proof: Option<LedgerProof>,
    /// Why there is no proof yet (no checkpoint covers the entry).
    pub uncovered: Option<String>,
}

/// A consistency proof between two signed checkpoints; also a bundle for
/// `stellar ledger verify --proof`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LedgerConsistency {
    pub old_size: u64,
    pub new_size: u64,
    /// Hex hashes (RFC 6962 consistency proof).
    pub proof: Vec<String>,
    pub old_checkpoint: String,
    pub new_checkpoint: String,
}

// ----- plugin submissions ------------------------------------------------------------------------

/// Where a rule is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RuleLocation {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

/// One fact that decided a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Evidence {
    /// The expression, as written in the rule.
    pub expr: String,
    /// Its value in these facts.
    pub value: String,
    /// How the value relates to what it was tested against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// What would change the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would_pass: Option<String>,
}

impl Evidence {
    /// `expr = value relation`.
    pub fn text(&self) -> String {
        match &self.relation {
            Some(r) => format!("{} = {} {r}", self.expr, self.value),
            None => format!("{} = {}", self.expr, self.value),
        }
    }
}

/// A waiver that set a finding aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Waiver {
    pub name: String,
    pub reason: String,
    pub approver: String,
    pub expires: String,
}

/// A rule that fired, with its evidence and fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Finding {
    /// The rule's stable id.
    pub rule: String,
    /// `deny`, `warn` or `info`.
    pub effect: String,
    /// `enforce`, `audit` or `advisory`.
    pub mode: String,
    /// `critical`, `high`, `medium` or `low`.
    pub severity: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub message: String,
    #[serde(default)]
    pub fix: Option<String>,
    #[serde(default)]
    pub docs: Option<String>,
    pub location: RuleLocation,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    #[serde(default)]
    pub waiver: Option<Waiver>,
}

/// A rule that could not be evaluated (it counts as fired when enforced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RuleError {
    pub rule: String,
    pub effect: String,
    pub error: String,
    pub location: RuleLocation,
}

/// The policy pack a verdict was reached under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PackInfo {
    pub name: String,
    pub version: String,
    /// sha256 over the pack's sources.
    #[serde(default)]
    pub sha256: String,
}

/// What became of a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SubmissionStatus {
    /// Waiting for (or in) analysis.
    Queued,
    /// Judged: it has a verdict.
    Done,
    /// The analysis could not finish; the error says why.
    Failed,
}

/// The decision of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Pass,
    Warn,
    Deny,
}

/// A stored status or decision that is none of the known names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a known value")]
pub struct UnknownValue(pub String);

impl SubmissionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionStatus::Queued => "queued",
            SubmissionStatus::Done => "done",
            SubmissionStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for SubmissionStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queued" => Ok(SubmissionStatus::Queued),
            "done" => Ok(SubmissionStatus::Done),
            "failed" => Ok(SubmissionStatus::Failed),
            other => Err(UnknownValue(other.to_owned())),
        }
    }
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Pass => "pass",
            Decision::Warn => "warn",
            Decision::Deny => "deny",
        }
    }

    /// Whether a submission with this decision may be released.
    pub fn accepted(self) -> bool {
        !matches!(self, Decision::Deny)
    }
}

impl std::str::FromStr for Decision {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pass" => Ok(Decision::Pass),
            "warn" => Ok(Decision::Warn),
            "deny" => Ok(Decision::Deny),
            other => Err(UnknownValue(other.to_owned())),
        }
    }
}

impl fmt::Display for SubmissionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The immutable verdict on a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SubmissionVerdict {
    pub decision: Decision,
    pub pack: PackInfo,
    /// sha256 of the bundle judged.
    pub bundle_sha256: String,
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub errors: Vec<RuleError>,
    /// Id of the signed verdict attestation (DSSE), once signed.
    pub attestation_id: Option<i32>,
    pub created_at: String,
}

/// A submission in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SubmissionSummary {
    pub id: String,
    pub tenant: String,
    pub plugin: String,
    pub version: String,
    pub status: SubmissionStatus,
    /// Set once judged.
    pub decision: Option<Decision>,
    pub findings: u32,
    pub bundle_sha256: String,
    pub filename: String,
    pub submitted_by: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// Why the analysis failed, when it did.
    pub error: Option<String>,
}

/// One version of a plugin, for the history on a submission's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PluginVersion {
    pub submission: String,
    pub version: String,
    pub decision: Option<Decision>,
    pub status: SubmissionStatus,
    pub created_at: String,
    /// Permissions added and removed against the version before it.
    pub added_permissions: Vec<String>,
    pub removed_permissions: Vec<String>,
}

/// A submission with its verdict, facts and the plugin's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SubmissionDetail {
    pub summary: SubmissionSummary,
    pub verdict: Option<SubmissionVerdict>,
    /// The facts the policy judged.
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
    pub facts: Option<serde_json::Value>,
    /// Every version of this plugin from this tenant, newest first.
    pub history: Vec<PluginVersion>,
}

/// Filters for the submissions list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams, utoipa::ToSchema))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct SubmissionFilter {
    /// Tenant slug (staff only; partners always see their own tenant).
    pub tenant: Option<String>,
    pub plugin: Option<String>,
    pub decision: Option<Decision>,
    /// Page size, 1–200 (default 50).
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 200))]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 200))]
    pub limit: Option<u64>,
    /// Skip this many (at most 1,000,000).
    #[cfg_attr(feature = "ssr", param(minimum = 0, maximum = 1_000_000))]
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 1_000_000))]
    pub offset: Option<u64>,
}

/// The largest page a list answers.
pub const MAX_PAGE_SIZE: u64 = 200;
/// The largest offset a list takes.
pub const MAX_OFFSET: u64 = 1_000_000;

/// A list's page size (default 50) and offset, or the field that is out of range.
pub fn page_bounds(
    limit: Option<u64>,
    offset: Option<u64>,
) -> Result<(u64, u64), crate::error::AppError> {
    let limit = limit.unwrap_or(50);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(crate::error::AppError::invalid(
            "limit",
            format!("`limit` is {limit}: a page holds 1 to {MAX_PAGE_SIZE}"),
        ));
    }
    let offset = offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(crate::error::AppError::invalid(
            "offset",
            format!("`offset` is {offset}: at most {MAX_OFFSET}; narrow the filters instead"),
        ));
    }
    Ok((limit, offset))
}

/// A page of submissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SubmissionPage {
    pub items: Vec<SubmissionSummary>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// A publisher signing key registered for a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PublisherKey {
    pub key_id: String,
    pub tenant: String,
    pub name: String,
    pub public_key_pem: String,
    pub created_by: String,
    pub created_at: String,
    /// Signatures by the key count only once secops or an administrator approved it.
    pub approved_at: Option<String>,
    pub approved_by: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    /// `pending` (waits for approval), `approved` or `revoked`.
    pub state: PublisherKeyState,
}

/// Where a publisher key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PublisherKeyState {
    /// Registered; its signatures do not count until approved.
    Pending,
    /// Its signatures count.
    Approved,
    /// Its signatures no longer count.
    Revoked,
}

/// Input for registering a publisher key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewPublisherKey {
    /// A label (`release laptop`).
    pub name: String,
    /// The P-256 public key, PEM (SubjectPublicKeyInfo), as `stellar plugin keygen` writes it.
    pub public_key_pem: String,
    /// Tenant slug (administrators only; partners register keys for their own tenant).
    #[serde(default)]
    pub tenant: Option<String>,
}

/// How the marketplace knows a tenant as a publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PublisherProfile {
    pub tenant: String,
    /// Whether the marketplace verified this publisher (the policies read it).
    pub verified: bool,
    /// `partner` or `community`.
    pub tier: String,
    /// Hosts this tenant's plugins may reach through the zero-trust connector: `*`,
    /// `*.example.com` or `api.example.com`. A plugin must also declare `net:HOST`.
    pub egress_allow: Vec<String>,
}

/// Changes to a publisher profile (administrators); absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PublisherProfileUpdate {
    pub verified: Option<bool>,
    pub tier: Option<String>,
    pub egress_allow: Option<Vec<String>>,
}
