//! The wire contract of delivery: releases, their stages and decisions, the fast-review
//! package, pipeline spec versions, the release calendar and webhooks.
//!
//! The server's domain types (`delivery::engine`) say the same states; these are what a caller
//! sees, with times as RFC 3339 strings, and what the portal renders.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{Decision, UnknownValue};

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($name::$v),)+
                    other => Err(UnknownValue(other.to_owned())),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// Where a release stands.
    ReleaseState {
        /// Created; its layout waits for the offline release key.
        Pending = "pending",
        /// Going through its stages.
        Running = "running",
        /// Every stage done: GA.
        Succeeded = "succeeded",
        /// An approver rejected it.
        Rejected = "rejected",
        /// Stopped by a platform user.
        Aborted = "aborted",
        /// A newer release of the plugin replaced it.
        Superseded = "superseded",
        /// A stage could not complete.
        Failed = "failed",
        /// Rolled back after reaching hosts.
        RolledBack = "rolled_back",
        /// Withdrawn after GA.
        Yanked = "yanked",
    }
}

impl ReleaseState {
    /// Whether the release is over.
    pub fn is_final(self) -> bool {
        !matches!(self, ReleaseState::Pending | ReleaseState::Running)
    }

    /// The name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            ReleaseState::Pending => "Pending",
            ReleaseState::Running => "Running",
            ReleaseState::Succeeded => "GA",
            ReleaseState::Rejected => "Rejected",
            ReleaseState::Aborted => "Aborted",
            ReleaseState::Superseded => "Superseded",
            ReleaseState::Failed => "Failed",
            ReleaseState::RolledBack => "Rolled back",
            ReleaseState::Yanked => "Yanked",
        }
    }
}

wire_enum! {
    /// Where a stage stands.
    StageState {
        Pending = "pending",
        Waiting = "waiting",
        Succeeded = "succeeded",
        Stopped = "stopped",
        Skipped = "skipped",
    }
}

wire_enum! {
    /// What a stage does.
    StageKind {
        Approval = "approval",
        Sign = "sign",
        Rollout = "rollout",
        Ga = "ga",
    }
}

/// A release in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseSummary {
    pub id: String,
    pub tenant: String,
    pub plugin: String,
    pub version: String,
    pub submission: String,
    pub state: ReleaseState,
    /// The current stage's name (none once every stage completed).
    pub stage: Option<String>,
    /// Why it waits, in one sentence, when it does.
    pub waiting: Option<String>,
    /// Why it ended, when it ended other than by GA.
    pub reason: Option<String>,
    pub pipeline: String,
    pub spec_version: i32,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

/// A stage of a release, as its timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseStage {
    pub index: u32,
    pub name: String,
    pub kind: StageKind,
    pub state: StageState,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Who completed (or stopped) it.
    pub actor: Option<String>,
    /// What happened, or why it waits.
    pub detail: Option<String>,
    /// Its in-toto link, once completed: file name and signing key.
    pub link: Option<DocumentRef>,
}

/// A signed document of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DocumentRef {
    /// File name in the attestation archive.
    pub name: String,
    /// `layout`, `link`, `statement` or `package`.
    pub kind: String,
    /// The signing key (in-toto key id for layouts and links, Stellar's for statements).
    pub key_id: String,
    /// Whether its signature verified when the page was made.
    pub verified: bool,
}

/// An approver's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseDecision {
    pub stage: String,
    pub username: String,
    pub role: String,
    pub approve: bool,
    pub reason: String,
    pub at: String,
}

/// A release with its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseDetail {
    pub summary: ReleaseSummary,
    pub bundle_sha256: String,
    pub verdict: Decision,
    pub stages: Vec<ReleaseStage>,
    pub decisions: Vec<ReleaseDecision>,
    pub documents: Vec<DocumentRef>,
    /// Whether the caller may approve or reject now.
    pub can_decide: bool,
    /// Why the caller may not decide (when a decision is awaited and they cannot make it).
    pub cannot_decide: Option<String>,
    /// Whether the caller may abort it.
    pub can_abort: bool,
    /// When the review package was ready, first opened, and decided.
    pub package_ready_at: Option<String>,
    pub package_opened_at: Option<String>,
    pub decided_at: Option<String>,
    /// The rollout, when the release has an analysed rollout stage that has begun.
    pub rollout: Option<RolloutView>,
    /// The rollout controls the caller may use now.
    pub controls: Vec<RolloutControl>,
    /// When a GA version was yanked.
    pub yanked_at: Option<String>,
}

wire_enum! {
    /// Where an analysed rollout stands.
    RolloutPhase {
        /// Judged interval by interval.
        Running = "running",
        /// Stopped for a person.
        Paused = "paused",
        /// Every host returned to the previous version.
        RolledBack = "rolled_back",
        /// Every host runs the new version.
        Complete = "complete",
    }
}

wire_enum! {
    /// A person's control over a rollout.
    RolloutControl {
        /// Skip the rest of the step's hold: take the next step now.
        Promote = "promote",
        /// Stop the analysis (hosts stay where they are).
        Pause = "pause",
        /// Restart the analysis of a paused rollout.
        Resume = "resume",
        /// Start a rolled-back release's rollout again from its first step.
        Retry = "retry",
        /// Withdraw a GA version: hosts return to the version before it.
        Yank = "yank",
    }
}

/// A rollout's state and its judged intervals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RolloutView {
    pub phase: RolloutPhase,
    /// The current step, from 1, of `steps`.
    pub step: u32,
    pub steps: u32,
    /// Percent of hosts on the new version now.
    pub weight: u8,
    /// The version hosts outside the canary run (none on a plugin's first release).
    pub baseline_version: Option<String>,
    /// When the next interval is judged (while running).
    pub next_at: Option<String>,
    pub paused_because: Option<String>,
    /// Seconds per interval and per window.
    pub interval_secs: u64,
    pub window_secs: u64,
    pub min_samples: u64,
    /// How many intervals were judged in all.
    pub intervals_total: u32,
    /// The judged intervals, oldest first (the newest 288: a day at five minutes).
    pub intervals: Vec<RolloutInterval>,
}

/// One judged interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RolloutInterval {
    pub seq: u32,
    pub at: String,
    /// The step (from 1) and weight it was judged at.
    pub step: u32,
    pub weight: u8,
    /// `pass`, `warn` or `deny`.
    pub judgement: String,
    /// `roll_back`, `hold`, `pause`, `stay`, `advance` or `complete`.
    pub outcome: String,
    pub canary: CohortNumbers,
    pub baseline: CohortNumbers,
    pub fired: Vec<FiredRule>,
}

/// One cohort's numbers over an interval's window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CohortNumbers {
    pub version: String,
    pub hosts: u64,
    pub silent_hosts: u64,
    pub samples: u64,
    pub errors: u64,
    pub crashes: u64,
    pub error_rate_bp: u64,
    pub crash_rate_bp: u64,
    pub p95_ms: u64,
}

/// A rollback rule that fired, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FiredRule {
    pub rule: String,
    pub effect: String,
    pub message: String,
    pub evidence: Vec<String>,
    pub fix: Option<String>,
}

/// Filters for the release list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams, utoipa::ToSchema))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct ReleaseFilter {
    /// Tenant slug (staff only; partners always see their own).
    pub tenant: Option<String>,
    pub plugin: Option<String>,
    pub state: Option<ReleaseState>,
    /// Only releases waiting for a decision the caller may make.
    pub awaiting_me: Option<bool>,
    /// Page size, 1–200 (default 50).
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 200))]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 200))]
    pub limit: Option<u64>,
    /// Skip this many (at most 1,000,000).
    #[cfg_attr(feature = "ssr", param(minimum = 0, maximum = 1_000_000))]
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 1_000_000))]
    pub offset: Option<u64>,
}

/// A page of releases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleasePage {
    pub items: Vec<ReleaseSummary>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// Input for a new release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewRelease {
    /// The accepted submission to release.
    pub submission: String,
}

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Reject,
}

/// An approver's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DecisionInput {
    pub decision: Verdict,
    /// Why (required to reject; recorded either way).
    #[serde(default)]
    pub reason: String,
}

/// Why a release is stopped, or a window overridden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReasonInput {
    pub reason: String,
}

/// A problem in a pipeline spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SpecProblem {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// A stored version of the pipeline spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PipelineVersion {
    pub version: i32,
    pub sha256: String,
    pub created_by: String,
    pub created_at: String,
    pub comment: Option<String>,
    /// The TOML text, as published.
    pub source: String,
}

/// A new version of the pipeline spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewPipelineVersion {
    pub source: String,
    #[serde(default)]
    pub comment: Option<String>,
}

// ---- the fast-review package ----

/// A component of the SBOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ComponentRef {
    pub name: String,
    pub version: String,
    pub licenses: Vec<String>,
}

/// A component whose version or licences changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ComponentChange {
    pub name: String,
    pub before: ComponentRef,
    pub after: ComponentRef,
}

/// A finding, as the package compares them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FindingRef {
    pub rule: String,
    pub effect: String,
    pub message: String,
}

/// A publisher signature on the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SignatureRef {
    pub key_id: String,
    pub key_name: Option<String>,
    /// `approved`, `pending`, `revoked` or `unknown`.
    pub state: String,
}

/// How much a risk point weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    High,
    Medium,
    Low,
}

/// One point of the risk summary, and the fact it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RiskPoint {
    pub level: RiskLevel,
    pub text: String,
    /// The fact it is traced to (`permissions.added`, `findings.new`, `sbom.licenses`…).
    pub fact: String,
}

/// What a reviewer needs to decide, in one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReviewPackage {
    pub release: String,
    pub plugin: String,
    pub version: String,
    pub tenant: String,
    /// The last GA version it is compared with (none for a first release).
    pub previous_version: Option<String>,
    pub verdict: Decision,
    pub findings: Vec<FindingRef>,
    pub permissions_added: Vec<String>,
    pub permissions_removed: Vec<String>,
    pub imports_added: Vec<String>,
    pub imports_removed: Vec<String>,
    pub module_size_kb: u64,
    pub previous_module_size_kb: Option<u64>,
    pub findings_new: Vec<FindingRef>,
    pub findings_resolved: Vec<FindingRef>,
    pub components_added: Vec<ComponentRef>,
    pub components_removed: Vec<ComponentRef>,
    pub components_changed: Vec<ComponentChange>,
    pub signatures: Vec<SignatureRef>,
    pub risk: Vec<RiskPoint>,
    /// The signed statement's file name in the attestation archive.
    pub statement: Option<String>,
    pub ready_at: Option<String>,
}

// ---- the calendar ----

/// Allow or deny (freeze).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    Allow,
    Deny,
}

/// A window of the release calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CalendarWindow {
    pub id: i32,
    pub name: String,
    pub kind: WindowKind,
    /// One-off: start and end (RFC 3339).
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    /// Recurring: five-field cron, duration (`2h`), IANA time zone.
    pub cron: Option<String>,
    pub duration: Option<String>,
    pub timezone: Option<String>,
    /// Glob of plugin ids it applies to (all when absent).
    pub plugins: Option<String>,
    pub comment: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

/// Input for a new window: either `starts_at` + `ends_at`, or `cron` + `duration` (+ `timezone`,
/// default UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewWindow {
    pub name: String,
    pub kind: Option<WindowKind>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub cron: Option<String>,
    pub duration: Option<String>,
    pub timezone: Option<String>,
    pub plugins: Option<String>,
    pub comment: Option<String>,
}

/// One day of the calendar view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CalendarDay {
    /// `2026-12-01`.
    pub date: String,
    /// Releases created, finished or running that day.
    pub releases: Vec<ReleaseSummary>,
    /// Names of the freeze windows in force at some time that day.
    pub freezes: Vec<String>,
    /// Names of the allow windows open at some time that day.
    pub allows: Vec<String>,
}

/// A week of the calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CalendarWeek {
    /// The Monday, `2026-11-30`.
    pub start: String,
    pub days: Vec<CalendarDay>,
    pub windows: Vec<CalendarWindow>,
    /// Releases waiting for a window, with the time it opens.
    pub scheduled: Vec<ReleaseSummary>,
}

// ---- webhooks ----

/// An outgoing webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: i32,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
    pub created_by: String,
    pub created_at: String,
}

/// A new webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewWebhook {
    pub url: String,
    /// Event names (default: every release event).
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// A webhook as created: its secret, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    /// The HMAC-SHA256 key that signs every payload; it is not shown again.
    pub secret: String,
}

/// One delivery of an event to a hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    pub id: i32,
    pub event: String,
    pub release: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}
