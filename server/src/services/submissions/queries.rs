//! Reading submissions: the list (a page of summaries, selecting only the columns it shows:
//! no manifest, no bundle, no facts) and one submission with its verdict, facts and history.
//! A partner sees their own tenant's; another tenant's submission is "not found", exactly like
//! a missing one.

use std::collections::HashMap;

use app::api::backend::Principal;
use app::authz::{Action, authorize, tenant_scope};
use app::error::AppError;
use app::types::{PluginVersion, SubmissionDetail, SubmissionFilter, SubmissionPage};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

use super::views::{
    SummaryRow, decision_of, finding_count, status_of, summary, summary_of, verdict_view,
};
use super::{Submissions, not_found};
use crate::db::entities::{submission, tenant, verdict};
use crate::services::{db_error, timestamp};

impl Submissions {
    /// Submissions the caller may see, newest first.
    pub async fn list(
        &self,
        who: &Principal,
        filter: SubmissionFilter,
    ) -> Result<SubmissionPage, AppError> {
        authorize(who, Action::ReadSubmissions)?;
        let (limit, offset) = app::types::page_bounds(filter.limit, filter.offset)?;
        let mut q = submission::Entity::find();
        let slugs: HashMap<i32, String> = tenant::Entity::find()
            .select_only()
            .column(tenant::Column::Id)
            .column(tenant::Column::Slug)
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .collect();
        match tenant_scope(who).only() {
            Some(only) => q = q.filter(submission::Column::TenantId.eq(only)),
            None => {
                if let Some(slug) = filter.tenant.as_deref().filter(|s| !s.is_empty()) {
                    let id = slugs
                        .iter()
                        .find(|(_, s)| s.as_str() == slug)
                        .map(|(id, _)| *id)
                        .ok_or_else(|| {
                            AppError::not_found(format!("there is no tenant `{slug}`"))
                        })?;
                    q = q.filter(submission::Column::TenantId.eq(id));
                }
            }
        }
        if let Some(p) = filter.plugin.as_deref().filter(|s| !s.is_empty()) {
            q = q.filter(submission::Column::PluginId.eq(p));
        }
        if let Some(d) = filter.decision {
            q = q.filter(submission::Column::Decision.eq(d.as_str()));
        }
        let total = q.clone().count(&self.conn).await.map_err(db_error)?;
        let rows: Vec<SummaryRow> = q
            .order_by_desc(submission::Column::CreatedAt)
            .order_by_desc(submission::Column::Id)
            .offset(offset)
            .limit(limit)
            .into_partial_model()
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        // The verdicts' findings only: their facts stay out of lists.
        let findings: HashMap<String, u32> = verdict::Entity::find()
            .select_only()
            .column(verdict::Column::SubmissionId)
            .column(verdict::Column::Verdict)
            .filter(verdict::Column::SubmissionId.is_in(ids))
            .into_tuple::<(String, String)>()
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|(id, v)| (id, finding_count(&v)))
            .collect();
        let items = rows
            .iter()
            .map(|r| {
                let slug = slugs.get(&r.tenant_id).map(String::as_str).unwrap_or("?");
                summary_of(r, slug, findings.get(&r.id).copied().unwrap_or(0))
            })
            .collect();
        Ok(SubmissionPage {
            items,
            total,
            limit,
            offset,
        })
    }

    /// One submission with its verdict, facts and the plugin's history. Another tenant's
    /// submission is "not found", exactly like a missing one.
    pub async fn get(&self, who: &Principal, id: &str) -> Result<SubmissionDetail, AppError> {
        authorize(who, Action::ReadSubmissions)?;
        let row = submission::Entity::find_by_id(id.to_owned())
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .filter(|r| tenant_scope(who).admits(r.tenant_id))
            .ok_or_else(|| not_found(id))?;
        let tenant = self.tenant_by_id(row.tenant_id).await?;
        let v = verdict::Entity::find()
            .filter(verdict::Column::SubmissionId.eq(id))
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        let findings = v.as_ref().map_or(0, |v| finding_count(&v.verdict));
        let facts = v
            .as_ref()
            .and_then(|v| serde_json::from_str::<Value>(&v.facts).ok());
        let verdict = v.as_ref().map(verdict_view).transpose()?;
        // The plugin's versions from this tenant, newest first.
        let versions: Vec<SummaryRow> = submission::Entity::find()
            .filter(submission::Column::TenantId.eq(row.tenant_id))
            .filter(submission::Column::PluginId.eq(row.plugin_id.clone()))
            .order_by_desc(submission::Column::CreatedAt)
            .limit(100)
            .into_partial_model()
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let ids: Vec<String> = versions.iter().map(|r| r.id.clone()).collect();
        let their_facts: HashMap<String, Value> = verdict::Entity::find()
            .select_only()
            .column(verdict::Column::SubmissionId)
            .column(verdict::Column::Facts)
            .filter(verdict::Column::SubmissionId.is_in(ids))
            .into_tuple::<(String, String)>()
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .filter_map(|(id, f)| Some((id, serde_json::from_str(&f).ok()?)))
            .collect();
        let history = versions
            .iter()
            .map(|r| {
                let list = |key: &str| -> Vec<String> {
                    their_facts
                        .get(&r.id)
                        .and_then(|f| f.pointer(&format!("/history/{key}")))
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                        .unwrap_or_default()
                };
                PluginVersion {
                    submission: r.id.clone(),
                    version: r.version.clone(),
                    decision: decision_of(r.decision.as_deref()),
                    status: status_of(&r.status),
                    created_at: timestamp(r.created_at),
                    added_permissions: list("added_permissions"),
                    removed_permissions: list("removed_permissions"),
                }
            })
            .collect();
        Ok(SubmissionDetail {
            summary: summary(&row, &tenant.slug, findings),
            verdict,
            facts,
            history,
        })
    }
}
