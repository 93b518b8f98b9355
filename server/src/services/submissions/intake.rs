//! Intake: a partner's bundle is read (at most `--max-concurrent-uploads` at once), checked
//! completely (limits, paths, manifest, module), held against the tenant's quotas and the
//! owner of its plugin id, then stored with its job and its ledger entry in one transaction.
//!
//! **Invariant:** a refused bundle leaves nothing behind.
//!
//! **Invariant:** a plugin id belongs to the tenant that first published it; the quota checks
//! and the claim on the id run inside the ledger's transaction, whose first statement
//! serialises appends, so two parallel uploads cannot both pass them.

use app::api::backend::Principal;
use app::authz::{Action, authorize, tenant_scope};
use app::error::AppError;
use app::types::{SubmissionStatus, SubmissionSummary};
use chrono::Utc;
use plugin::Rejection;
use sea_orm::sea_query::{Alias, Expr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, PaginatorTrait,
    QueryFilter, QuerySelect,
};
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;

use super::views::summary;
use super::{Submissions, SubmitError};
use crate::db::entities::{plugin as plugin_owner, submission, submission_blob, tenant};
use crate::services::db_error;
use crate::services::jobs::JobKind;
use crate::services::ledger_store::Record;

impl Submissions {
    /// The right to read one upload into memory: at most `--max-concurrent-uploads` at once.
    /// Take it before reading the body; it is released when dropped.
    pub async fn upload_permit(&self, who: &Principal) -> Result<OwnedSemaphorePermit, AppError> {
        authorize(who, Action::Submit)?;
        match tokio::time::timeout(
            self.settings.upload_wait,
            self.uploads.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(AppError::internal("intake is shutting down")),
            Err(_) => {
                metrics::counter!("stellar_uploads_refused_total", "reason" => "busy").increment(1);
                Err(AppError::TooManyRequests {
                    retry_after_secs: 5,
                    message: format!(
                        "{} uploads are being read already: try again in a few seconds",
                        self.settings.max_concurrent_uploads
                    ),
                })
            }
        }
    }

    /// The partner's own tenant; staff have none and may not submit.
    async fn own_tenant(&self, who: &Principal) -> Result<tenant::Model, AppError> {
        match tenant_scope(who).only() {
            Some(id) if id >= 0 => self.tenant_by_id(id).await,
            _ => Err(AppError::forbidden(
                "only partner accounts submit plugins, for their own tenant",
            )),
        }
    }

    /// Checks a bundle and, if it is acceptable, stores it and queues its analysis.
    pub async fn submit(
        &self,
        who: &Principal,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<SubmissionSummary, SubmitError> {
        authorize(who, Action::Submit)?;
        let tenant = self.own_tenant(who).await?;
        let limits = self.settings.limits;
        let (inspected, bytes) = tokio::task::spawn_blocking(move || {
            let r = plugin::inspect(&bytes, &limits);
            (r, bytes)
        })
        .await
        .map_err(|e| AppError::internal(format!("intake stopped: {e}")))?;
        let inspected = inspected.map_err(SubmitError::Refused)?;
        let m = &inspected.manifest;
        if m.publisher != tenant.slug {
            let (line, column) = m.publisher_at;
            return Err(SubmitError::Refused(Rejection {
                code: "publisher_mismatch".into(),
                file: Some("plugin.toml".into()),
                message: format!(
                    "plugin.toml names the publisher `{}`, but you submit for `{}`",
                    m.publisher, tenant.slug
                ),
                errors: vec![plugin::ManifestError {
                    line,
                    column,
                    message: format!("set `publisher = \"{}\"`", tenant.slug),
                }],
            }));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let now = Utc::now();
        let filename: String = filename
            .chars()
            .filter(|c| !c.is_control())
            .take(255)
            .collect();
        let manifest_json = serde_json::to_string(m).unwrap_or_default();
        let size = inspected.bundle.size as i64;

        let mut a = self.ledger.begin().await?;
        // Quotas: submissions waiting, and bytes stored.
        let queued = submission::Entity::find()
            .filter(submission::Column::TenantId.eq(tenant.id))
            .filter(submission::Column::Status.eq(SubmissionStatus::Queued.as_str()))
            .count(a.txn())
            .await
            .map_err(db_error)?;
        let quotas = self.settings.quotas;
        if queued >= quotas.max_queued {
            metrics::counter!("stellar_uploads_refused_total", "reason" => "quota-queued")
                .increment(1);
            return Err(AppError::TooManyRequests {
                retry_after_secs: 30,
                message: format!(
                    "{} submissions of `{}` are waiting for their verdict already (the limit is {}): wait for them, then submit again",
                    queued, tenant.slug, quotas.max_queued
                ),
            }
            .into());
        }
        let stored: Option<i64> = submission::Entity::find()
            .select_only()
            // SUM of a bigint is NUMERIC on PostgreSQL: cast it back.
            .expr(
                Expr::col(submission::Column::BundleSize)
                    .sum()
                    .cast_as(Alias::new("BIGINT")),
            )
            .filter(submission::Column::TenantId.eq(tenant.id))
            .into_tuple::<Option<i64>>()
            .one(a.txn())
            .await
            .map_err(db_error)?
            .flatten();
        let stored = u64::try_from(stored.unwrap_or(0)).unwrap_or(0);
        if stored.saturating_add(size as u64) > quotas.max_bytes {
            metrics::counter!("stellar_uploads_refused_total", "reason" => "quota-bytes")
                .increment(1);
            return Err(SubmitError::Refused(Rejection {
                code: "tenant_storage_full".into(),
                file: None,
                message: format!(
                    "`{}` stores {stored} bytes of bundles; this one ({size} bytes) would pass the limit of {} bytes: ask an administrator to raise --tenant-max-bytes",
                    tenant.slug, quotas.max_bytes
                ),
                errors: Vec::new(),
            }));
        }
        // The plugin id: this tenant's, or nobody's yet.
        match plugin_owner::Entity::find_by_id(m.id.clone())
            .one(a.txn())
            .await
            .map_err(db_error)?
        {
            Some(owner) if owner.tenant_id != tenant.id => {
                metrics::counter!("stellar_uploads_refused_total", "reason" => "plugin-id-taken")
                    .increment(1);
                let (line, column) = m.id_at;
                return Err(SubmitError::Refused(Rejection {
                    code: "plugin_id_taken".into(),
                    file: Some("plugin.toml".into()),
                    message: format!(
                        "the plugin id `{}` belongs to another publisher: choose an id of your own",
                        m.id
                    ),
                    errors: vec![plugin::ManifestError {
                        line,
                        column,
                        message: format!("`id = \"{}\"` is taken: use another id", m.id),
                    }],
                }));
            }
            Some(_) => {}
            None => {
                plugin_owner::ActiveModel {
                    plugin_id: Set(m.id.clone()),
                    tenant_id: Set(tenant.id),
                    created_at: Set(now),
                }
                .insert(a.txn())
                .await
                .map_err(db_error)?;
            }
        }
        let model = submission::ActiveModel {
            id: Set(id.clone()),
            tenant_id: Set(tenant.id),
            plugin_id: Set(m.id.clone()),
            version: Set(m.version.chars().take(128).collect()),
            bundle_sha256: Set(inspected.bundle.sha256.clone()),
            bundle_size: Set(size),
            filename: Set(if filename.is_empty() {
                "bundle".into()
            } else {
                filename
            }),
            manifest: Set(manifest_json),
            status: Set(SubmissionStatus::Queued.as_str().into()),
            decision: Set(None),
            error: Set(None),
            submitted_by: Set(who.me.username.clone()),
            created_at: Set(now),
            finished_at: Set(None),
        };
        let saved = model.insert(a.txn()).await.map_err(db_error)?;
        submission_blob::ActiveModel {
            submission_id: Set(id.clone()),
            data: Set(bytes),
        }
        .insert(a.txn())
        .await
        .map_err(db_error)?;
        self.queue
            .enqueue_in(a.txn(), JobKind::Analyse, &id, Some(tenant.id))
            .await?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: Some(tenant.slug.clone()),
            action: "submission.create".into(),
            subject: id.clone(),
            details: json!({
                "plugin": m.id,
                "version": m.version,
                "bundle_sha256": inspected.bundle.sha256,
                "bundle_size": inspected.bundle.size,
            }),
        })
        .await?;
        a.commit().await?;
        metrics::counter!("stellar_submissions_received_total").increment(1);
        self.queue.notify();
        Ok(summary(&saved, &tenant.slug, 0))
    }
}
