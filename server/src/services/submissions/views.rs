//! What callers see of submissions, verdicts, publisher profiles and keys: the wire types of
//! `app::types`, built from stored rows. Stored names (`queued`, `deny`) become enums here and
//! nowhere else.

use app::error::AppError;
use app::types::{
    Decision, PackInfo, PublisherKey, PublisherKeyState, PublisherProfile, SubmissionStatus,
    SubmissionSummary, SubmissionVerdict,
};
use sea_orm::DerivePartialModel;
use serde_json::Value;

use crate::db::entities::{publisher_key, submission, tenant, verdict};
use crate::services::timestamp;

/// The columns a submission's summary shows (lists leave out the manifest and the bundle).
#[derive(Debug, Clone, DerivePartialModel)]
#[sea_orm(entity = "submission::Entity")]
pub(super) struct SummaryRow {
    pub id: String,
    pub tenant_id: i32,
    pub plugin_id: String,
    pub version: String,
    pub bundle_sha256: String,
    pub filename: String,
    pub status: String,
    pub decision: Option<String>,
    pub error: Option<String>,
    pub submitted_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<&submission::Model> for SummaryRow {
    fn from(r: &submission::Model) -> Self {
        SummaryRow {
            id: r.id.clone(),
            tenant_id: r.tenant_id,
            plugin_id: r.plugin_id.clone(),
            version: r.version.clone(),
            bundle_sha256: r.bundle_sha256.clone(),
            filename: r.filename.clone(),
            status: r.status.clone(),
            decision: r.decision.clone(),
            error: r.error.clone(),
            submitted_by: r.submitted_by.clone(),
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}

/// A stored status; an unknown one is reported as failed (it cannot be acted on).
pub(super) fn status_of(text: &str) -> SubmissionStatus {
    text.parse().unwrap_or(SubmissionStatus::Failed)
}

/// A stored decision, if it is one.
pub(super) fn decision_of(text: Option<&str>) -> Option<Decision> {
    text.and_then(|d| d.parse().ok())
}

/// How many findings a stored verdict has.
pub(super) fn finding_count(verdict_json: &str) -> u32 {
    serde_json::from_str::<Value>(verdict_json)
        .ok()
        .and_then(|j| j["findings"].as_array().map(|a| a.len() as u32))
        .unwrap_or(0)
}

pub(super) fn summary_of(r: &SummaryRow, tenant: &str, findings: u32) -> SubmissionSummary {
    SubmissionSummary {
        id: r.id.clone(),
        tenant: tenant.to_owned(),
        plugin: r.plugin_id.clone(),
        version: r.version.clone(),
        status: status_of(&r.status),
        decision: decision_of(r.decision.as_deref()),
        findings,
        bundle_sha256: r.bundle_sha256.clone(),
        filename: r.filename.clone(),
        submitted_by: r.submitted_by.clone(),
        created_at: timestamp(r.created_at),
        finished_at: r.finished_at.map(timestamp),
        error: r.error.clone(),
    }
}

pub(super) fn summary(r: &submission::Model, tenant: &str, findings: u32) -> SubmissionSummary {
    summary_of(&SummaryRow::from(r), tenant, findings)
}

pub(super) fn verdict_view(v: &verdict::Model) -> Result<SubmissionVerdict, AppError> {
    let j: Value = serde_json::from_str(&v.verdict)
        .map_err(|e| AppError::internal(format!("a stored verdict is damaged: {e}")))?;
    Ok(SubmissionVerdict {
        decision: v.decision.parse().map_err(|e| {
            AppError::internal(format!("a stored verdict has a damaged decision: {e}"))
        })?,
        pack: PackInfo {
            name: v.pack_name.clone(),
            version: v.pack_version.clone(),
            sha256: v.pack_sha256.clone(),
        },
        bundle_sha256: v.bundle_sha256.clone(),
        findings: serde_json::from_value(j["findings"].clone()).unwrap_or_default(),
        errors: serde_json::from_value(j["errors"].clone()).unwrap_or_default(),
        attestation_id: v.attestation_id,
        created_at: timestamp(v.created_at),
    })
}

pub(super) fn profile_view(t: &tenant::Model) -> PublisherProfile {
    PublisherProfile {
        tenant: t.slug.clone(),
        verified: t.verified,
        tier: t.tier.clone(),
        egress_allow: t
            .egress_allow
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    }
}

pub(super) fn key_view(k: &publisher_key::Model, tenant: &str) -> PublisherKey {
    let state = match (&k.revoked_at, &k.approved_at) {
        (Some(_), _) => PublisherKeyState::Revoked,
        (None, Some(_)) => PublisherKeyState::Approved,
        (None, None) => PublisherKeyState::Pending,
    };
    PublisherKey {
        key_id: k.key_id.clone(),
        tenant: tenant.to_owned(),
        name: k.name.clone(),
        public_key_pem: k.public_pem.clone(),
        created_by: k.created_by.clone(),
        created_at: timestamp(k.created_at),
        approved_at: k.approved_at.map(timestamp),
        approved_by: k.approved_by.clone(),
        revoked_at: k.revoked_at.map(timestamp),
        revoked_by: k.revoked_by.clone(),
        state,
    }
}
