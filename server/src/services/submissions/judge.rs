//! Judging a submission (the `analyse` job): the bundle is inspected again, analysed in the
//! sandbox, its typed facts evaluated by the active pack, and the verdict stored with its
//! ledger entry, then signed (online, or as a signing request when the validator key is
//! offline).
//!
//! **Invariant:** what is signed is what the evaluator decided: the attestation is built from
//! the `dsl::Verdict` itself, and the facts it names by digest are the stored facts.
//!
//! **Invariant:** only approved, unrevoked publisher keys make a signature count.

use std::time::Instant;

use app::error::AppError;
use app::types::{Decision, SubmissionStatus};
use chrono::Utc;
use plugin::{Context, Facts, Inspected, Previous, Publisher};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::json;
use trust::dsse::{Statement as InTotoStatement, Subject};
use trust::keys::{PublicKey, Purpose};

use super::Submissions;
use crate::db::entities::{publisher_key, submission, submission_blob, verdict};
use crate::services::db_error;
use crate::services::jobs::Job;
use crate::services::ledger_store::Record;
use crate::services::signing::Attested;

/// The predicate type of a signed verdict.
pub const VERDICT_PREDICATE: &str = "https://stellar.dev/attestations/verdict/v1";

fn decision(d: dsl::Decision) -> Decision {
    match d {
        dsl::Decision::Pass => Decision::Pass,
        dsl::Decision::Warn => Decision::Warn,
        dsl::Decision::Deny => Decision::Deny,
    }
}

impl Submissions {
    /// The previous accepted version of the plugin (pass or warn), before this submission.
    async fn previous(&self, s: &submission::Model) -> Result<Option<Previous>, AppError> {
        let prev = submission::Entity::find()
            .filter(submission::Column::TenantId.eq(s.tenant_id))
            .filter(submission::Column::PluginId.eq(s.plugin_id.clone()))
            .filter(
                submission::Column::Decision
                    .is_in([Decision::Pass.as_str(), Decision::Warn.as_str()]),
            )
            .filter(submission::Column::CreatedAt.lt(s.created_at))
            .order_by_desc(submission::Column::CreatedAt)
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        let Some(prev) = prev else { return Ok(None) };
        let facts = verdict::Entity::find()
            .filter(verdict::Column::SubmissionId.eq(prev.id.clone()))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .and_then(|v| serde_json::from_str::<Facts>(&v.facts).ok());
        Ok(Some(Previous {
            version: prev.version,
            permissions: facts.map(|f| f.permissions).unwrap_or_default(),
        }))
    }

    /// Runs one `analyse` job: judges its submission and stores the verdict. An error is for
    /// the queue to retry or, on the last attempt, to record with [`Submissions::fail`].
    pub async fn judge(&self, job: &Job) -> Result<Decision, AppError> {
        let started = Instant::now();
        let s = submission::Entity::find_by_id(job.subject.clone())
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::internal("the job's submission is missing"))?;
        let tenant = self.tenant_by_id(s.tenant_id).await?;
        let blob = submission_blob::Entity::find_by_id(s.id.clone())
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::internal("the submission's bundle is missing"))?;
        let keys: Vec<PublicKey> = publisher_key::Entity::find()
            .filter(publisher_key::Column::TenantId.eq(tenant.id))
            .filter(publisher_key::Column::ApprovedAt.is_not_null())
            .filter(publisher_key::Column::RevokedAt.is_null())
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .iter()
            .filter_map(|k| PublicKey::from_pem(&k.public_pem).ok())
            .collect();
        let ctx = Context {
            publisher: Publisher {
                id: tenant.slug.clone(),
                verified: tenant.verified,
                tier: tenant.tier.clone(),
            },
            publisher_keys: keys,
            egress: plugin::sandbox::EgressRules {
                allow: tenant
                    .egress_allow
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
            },
            caps: self.settings.caps,
            previous: self.previous(&s).await?,
            advisories: self.settings.advisories.clone(),
            hosts: self.settings.hosts.clone(),
        };
        let limits = self.settings.limits;
        let pack = self.pack.clone();
        let today = Utc::now().date_naive();
        let (facts, verdict) = tokio::task::spawn_blocking(move || {
            let inspected: Inspected = plugin::inspect(&blob.data, &limits)
                .map_err(|r| format!("the stored bundle no longer passes intake: {r}"))?;
            let analysis = plugin::analyse(&inspected, &ctx);
            let verdict = pack
                .pack
                .evaluate_facts(&analysis.facts, &dsl::EvalOptions::new(today))
                .map_err(|e| format!("the facts do not fit the policy schema: {e}"))?;
            Ok::<_, String>((analysis.facts, verdict))
        })
        .await
        .map_err(|e| AppError::internal(format!("the analysis stopped: {e}")))?
        .map_err(AppError::internal)?;
        let decided = decision(verdict.decision);
        let facts_text = serde_json::to_string(&facts)
            .map_err(|e| AppError::internal(format!("the facts cannot be stored: {e}")))?;
        let verdict_text = serde_json::to_string(&json!({
            "decision": verdict.decision.as_str(),
            "findings": verdict.findings,
            "errors": verdict.errors,
        }))
        .map_err(|e| AppError::internal(format!("the verdict cannot be stored: {e}")))?;
        let now = Utc::now();
        let mut a = self.ledger.begin().await?;
        let exists = verdict::Entity::find()
            .filter(verdict::Column::SubmissionId.eq(s.id.clone()))
            .one(a.txn())
            .await
            .map_err(db_error)?
            .is_some();
        if !exists {
            verdict::ActiveModel {
                submission_id: Set(s.id.clone()),
                pack_name: Set(self.pack.name.clone()),
                pack_version: Set(self.pack.version.clone()),
                pack_sha256: Set(self.pack.sha256.clone()),
                bundle_sha256: Set(s.bundle_sha256.clone()),
                decision: Set(decided.as_str().into()),
                verdict: Set(verdict_text),
                facts: Set(facts_text.clone()),
                attestation_id: Set(None),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(a.txn())
            .await
            .map_err(db_error)?;
            submission::Entity::update_many()
                .col_expr(
                    submission::Column::Status,
                    SubmissionStatus::Done.as_str().into(),
                )
                .col_expr(submission::Column::Decision, Some(decided.as_str()).into())
                .col_expr(submission::Column::Error, Option::<String>::None.into())
                .col_expr(submission::Column::FinishedAt, Some(now).into())
                .filter(submission::Column::Id.eq(s.id.clone()))
                .exec(a.txn())
                .await
                .map_err(db_error)?;
            let fired: Vec<&str> = verdict.findings.iter().map(|f| f.rule.as_str()).collect();
            a.append(Record {
                actor: "stellar-analysis".into(),
                tenant: Some(tenant.slug.clone()),
                action: "verdict".into(),
                subject: s.id.clone(),
                details: json!({
                    "plugin": s.plugin_id,
                    "version": s.version,
                    "decision": decided.as_str(),
                    "bundle_sha256": s.bundle_sha256,
                    "pack": {"name": self.pack.name, "version": self.pack.version, "sha256": self.pack.sha256},
                    "findings": fired,
                }),
            })
            .await?;
        }
        if !exists && decided.accepted() {
            // A pipeline may release accepted versions by itself (`auto_release`).
            self.queue
                .enqueue_in(
                    a.txn(),
                    crate::services::jobs::JobKind::AutoRelease,
                    &format!("auto-release:{}", s.id),
                    Some(tenant.id),
                )
                .await?;
        }
        self.queue.done(a.txn(), job.id).await?;
        a.commit().await?;
        if exists {
            return Ok(decided);
        }
        metrics::histogram!("stellar_analysis_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("stellar_submissions_total", "decision" => decided.as_str()).increment(1);
        for f in &verdict.findings {
            metrics::counter!(
                "stellar_findings_total",
                "rule" => f.rule.clone(),
                "effect" => f.effect.as_str()
            )
            .increment(1);
        }
        self.sign_verdict(&s, &tenant.slug, &verdict, &facts_text)
            .await;
        Ok(decided)
    }

    /// Records that a submission's analysis failed for good (its job's last attempt).
    pub async fn fail(&self, job: &Job, error: &str) -> Result<(), AppError> {
        let sub = submission::Entity::find_by_id(job.subject.clone())
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        let slug = match &sub {
            Some(s) => Some(self.tenant_by_id(s.tenant_id).await?.slug),
            None => None,
        };
        let mut a = self.ledger.begin().await?;
        self.queue.failed(a.txn(), job.id, error).await?;
        submission::Entity::update_many()
            .col_expr(
                submission::Column::Status,
                SubmissionStatus::Failed.as_str().into(),
            )
            .col_expr(submission::Column::Error, Some(error.to_owned()).into())
            .col_expr(submission::Column::FinishedAt, Some(Utc::now()).into())
            .filter(submission::Column::Id.eq(job.subject.clone()))
            .filter(submission::Column::Status.ne(SubmissionStatus::Done.as_str()))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        a.append(Record {
            actor: "stellar-analysis".into(),
            tenant: slug,
            action: "submission.failed".into(),
            subject: job.subject.clone(),
            details: json!({"error": error, "attempts": job.attempts}),
        })
        .await?;
        a.commit().await?;
        metrics::counter!("stellar_submissions_total", "decision" => "failed").increment(1);
        Ok(())
    }

    /// Signs the verdict (an in-toto statement about the bundle in a DSSE envelope, by the
    /// validator key), from the evaluator's own verdict. When the validator key is offline this
    /// queues a signing request instead.
    async fn sign_verdict(
        &self,
        s: &submission::Model,
        tenant: &str,
        verdict: &dsl::Verdict,
        facts_text: &str,
    ) {
        let findings: Vec<serde_json::Value> = verdict
            .findings
            .iter()
            .map(|f| json!({"rule": f.rule, "effect": f.effect, "severity": f.severity}))
            .collect();
        let statement = InTotoStatement::new(
            vec![Subject::with_sha256(
                format!("{}@{}.bundle", s.plugin_id, s.version),
                s.bundle_sha256.clone(),
            )],
            VERDICT_PREDICATE,
            json!({
                "submission": s.id,
                "plugin": s.plugin_id,
                "version": s.version,
                "publisher": tenant,
                "decision": verdict.decision.as_str(),
                "pack": {"name": self.pack.name, "version": self.pack.version, "sha256": self.pack.sha256},
                "findings": findings,
                "factsSha256": plugin::bundle::sha256_hex(facts_text.as_bytes()),
            }),
        );
        match self
            .signing
            .attest(
                Purpose::Validator,
                statement,
                "stellar-analysis",
                Some(tenant.to_owned()),
            )
            .await
        {
            Ok(Attested::Signed(info)) => {
                let r = verdict::Entity::update_many()
                    .col_expr(verdict::Column::AttestationId, Some(info.id).into())
                    .filter(verdict::Column::SubmissionId.eq(s.id.clone()))
                    .exec(&self.conn)
                    .await;
                if let Err(e) = r {
                    tracing::error!(error = %e, "could not link the verdict attestation");
                }
            }
            Ok(Attested::Pending(req)) => {
                tracing::info!(request = %req.id, "verdict signature queued for the offline key");
            }
            Err(e) => tracing::error!(error = %e, "could not sign the verdict"),
        }
    }
}
