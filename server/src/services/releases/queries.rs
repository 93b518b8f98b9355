//! Reading releases: the list (with filters and the approvals inbox), one release with its
//! timeline, the count of what waits for the caller, and the attestation archive. A partner
//! sees their own tenant's releases; another tenant's is "not found", exactly like a missing
//! one.

use std::collections::HashMap;

use app::api::backend::Principal;
use app::authz::{Action, authorize, tenant_scope};
use app::delivery::{CalendarDay, CalendarWeek};
use app::delivery::{
    ReleaseDecision, ReleaseDetail, ReleaseFilter, ReleasePage, ReleaseStage, StageKind, StageState,
};
use app::error::AppError;
use chrono::{Datelike, Days, Duration, NaiveDate, NaiveTime};
use delivery::engine::StageState as EngineStage;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::documents::{self, ArchiveFiles, DocKind};
use super::{Releases, engine_state, not_found, state_of};
use crate::db::entities::{release, release_decision, release_stage, submission_blob, verdict};
use crate::services::{db_error, timestamp};

impl Releases {
    /// One release, if the caller may see it.
    pub(super) async fn visible(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<release::Model, AppError> {
        authorize(who, Action::ReadReleases)?;
        let r = self.row(&self.conn, id).await?;
        if !tenant_scope(who).admits(r.tenant_id) {
            return Err(not_found(id));
        }
        Ok(r)
    }

    async fn stage_names(
        &self,
        ids: &[String],
    ) -> Result<HashMap<(String, i32), String>, AppError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(release_stage::Entity::find()
            .filter(release_stage::Column::ReleaseId.is_in(ids.iter().cloned()))
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|s| ((s.release_id, s.idx), s.name))
            .collect())
    }

    /// Releases the caller may see, newest first.
    pub async fn list(
        &self,
        who: &Principal,
        filter: ReleaseFilter,
    ) -> Result<ReleasePage, AppError> {
        authorize(who, Action::ReadReleases)?;
        let (limit, offset) = app::types::page_bounds(filter.limit, filter.offset)?;
        let slugs = self.slugs().await?;
        let mut q = release::Entity::find();
        match tenant_scope(who).only() {
            Some(only) => q = q.filter(release::Column::TenantId.eq(only)),
            None => {
                if let Some(slug) = filter.tenant.as_deref().filter(|s| !s.is_empty()) {
                    let id = slugs
                        .iter()
                        .find(|(_, s)| s.as_str() == slug)
                        .map(|(id, _)| *id)
                        .ok_or_else(|| {
                            AppError::not_found(format!("there is no tenant `{slug}`"))
                        })?;
                    q = q.filter(release::Column::TenantId.eq(id));
                }
            }
        }
        if let Some(p) = filter.plugin.as_deref().filter(|s| !s.is_empty()) {
            q = q.filter(release::Column::PluginId.eq(p));
        }
        if let Some(s) = filter.state {
            q = q.filter(release::Column::State.eq(engine_state(s).as_str()));
        }
        if filter.awaiting_me == Some(true) {
            let ids = self.awaiting(who).await?;
            q = q.filter(release::Column::Id.is_in(ids));
        }
        let total = q.clone().count(&self.conn).await.map_err(db_error)?;
        let rows = q
            .order_by_desc(release::Column::CreatedAt)
            .order_by_desc(release::Column::Id)
            .limit(limit)
            .offset(offset)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let names = self
            .stage_names(&rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>())
            .await?;
        let items = rows
            .iter()
            .map(|r| self.summary(r, &slugs, names.get(&(r.id.clone(), r.stage)).cloned()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReleasePage {
            items,
            total,
            limit,
            offset,
        })
    }

    /// Releases waiting at an approval stage that the caller may decide now.
    pub async fn awaiting(&self, who: &Principal) -> Result<Vec<String>, AppError> {
        if authorize(who, Action::DecideRelease).is_err() {
            return Ok(Vec::new());
        }
        let waiting = release::Entity::find()
            .filter(release::Column::State.eq(delivery::engine::ReleaseState::Running.as_str()))
            .filter(release::Column::StageState.eq(EngineStage::Waiting.as_str()))
            .limit(500)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let mut out = Vec::new();
        for r in waiting {
            if self.cannot_decide(who, &r).await?.is_none() {
                out.push(r.id);
            }
        }
        Ok(out)
    }

    /// How many releases wait for the caller's decision (the badge in the navigation).
    pub async fn inbox_count(&self, who: &Principal) -> Result<u64, AppError> {
        authorize(who, Action::ReadReleases)?;
        Ok(self.awaiting(who).await?.len() as u64)
    }

    /// One release with its timeline.
    pub async fn detail(&self, who: &Principal, id: &str) -> Result<ReleaseDetail, AppError> {
        let r = self.visible(who, id).await?;
        let slugs = self.slugs().await?;
        let stages = release_stage::Entity::find()
            .filter(release_stage::Column::ReleaseId.eq(r.id.clone()))
            .order_by_asc(release_stage::Column::Idx)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let docs = documents::all(&self.conn, &r.id).await?;
        let (root, _) = self.keys.pinned_root().await?;
        let refs = documents::refs(&docs, &root);
        let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
        let decisions = release_decision::Entity::find()
            .filter(release_decision::Column::ReleaseId.eq(r.id.clone()))
            .order_by_asc(release_decision::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|d| ReleaseDecision {
                stage: names
                    .get(d.stage.max(0) as usize)
                    .cloned()
                    .unwrap_or_default(),
                username: d.username,
                role: d.role,
                approve: d.approve,
                reason: d.reason,
                at: timestamp(d.created_at),
            })
            .collect();
        let stage_views = stages
            .iter()
            .map(|s| {
                let link = refs
                    .iter()
                    .find(|d| {
                        d.kind == DocKind::Link.as_str()
                            && d.name.starts_with(&format!("{}.", s.name))
                    })
                    .cloned();
                Ok(ReleaseStage {
                    index: s.idx.max(0) as u32,
                    name: s.name.clone(),
                    kind: s
                        .kind
                        .parse::<StageKind>()
                        .map_err(|e| AppError::internal(e.to_string()))?,
                    state: s
                        .state
                        .parse::<StageState>()
                        .map_err(|e| AppError::internal(e.to_string()))?,
                    started_at: s.started_at.map(timestamp),
                    finished_at: s.finished_at.map(timestamp),
                    actor: s.actor.clone(),
                    detail: s.detail.clone(),
                    link,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let verdict = verdict::Entity::find()
            .filter(verdict::Column::SubmissionId.eq(r.submission_id.clone()))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .and_then(|v| v.decision.parse().ok())
            .unwrap_or(app::types::Decision::Pass);
        let state = state_of(&r)?;
        let waiting_for_decision =
            !state.is_final() && r.stage_state == EngineStage::Waiting.as_str();
        let cannot = if waiting_for_decision {
            self.cannot_decide(who, &r).await?
        } else {
            Some("the release is not waiting for a decision".into())
        };
        let is_approval = stages
            .get(r.stage.max(0) as usize)
            .is_some_and(|s| s.kind == "approval");
        let rollout = self.rollout_view(&self.conn, &r).await?;
        let phase = rollout.as_ref().map(|v| match v.phase {
            app::delivery::RolloutPhase::Running => delivery::rollout::Phase::Running,
            app::delivery::RolloutPhase::Paused => delivery::rollout::Phase::Paused,
            app::delivery::RolloutPhase::RolledBack => delivery::rollout::Phase::RolledBack,
            app::delivery::RolloutPhase::Complete => delivery::rollout::Phase::Complete,
        });
        let controls = Self::controls_for(who, &r, phase);
        Ok(ReleaseDetail {
            summary: self.summary(&r, &slugs, names.get(r.stage.max(0) as usize).cloned())?,
            bundle_sha256: r.bundle_sha256.clone(),
            verdict,
            stages: stage_views,
            decisions,
            documents: refs,
            can_decide: cannot.is_none(),
            cannot_decide: if is_approval && waiting_for_decision {
                cannot
            } else {
                None
            },
            can_abort: !state.is_final() && authorize(who, Action::AbortRelease).is_ok(),
            package_ready_at: r.package_ready_at.map(timestamp),
            package_opened_at: r.package_opened_at.map(timestamp),
            decided_at: r.decided_at.map(timestamp),
            rollout,
            controls,
            yanked_at: r.yanked_at.map(timestamp),
        })
    }

    /// The attestation archive of a release: `(file name, tar.gz bytes)`.
    pub async fn attestations(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<(String, Vec<u8>), AppError> {
        let r = self.visible(who, id).await?;
        let files = self.archive_files(&r).await?;
        let folder = format!("release-{}", r.id);
        Ok((format!("{folder}.tar.gz"), files.tar_gz(&folder)?))
    }

    /// The files of a release's archive.
    pub(crate) async fn archive_files(&self, r: &release::Model) -> Result<ArchiveFiles, AppError> {
        if state_of(r)? == delivery::engine::ReleaseState::Pending {
            return Err(AppError::conflict(format!(
                "release {} has no signed layout yet: its signing request waits for the offline release key",
                r.id
            )));
        }
        let docs = documents::all(&self.conn, &r.id).await?;
        let blob = submission_blob::Entity::find_by_id(r.submission_id.clone())
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::internal("the release's bundle is missing"))?;
        let (root, _) = self.keys.pinned_root().await?;
        let layout = docs
            .iter()
            .find(|d| d.kind == DocKind::Layout.as_str())
            .ok_or_else(|| AppError::internal("the release has no layout"))?;
        // The release key that signed the layout, as in-toto-verify's `--verification-keys`.
        let key = root
            .keys
            .iter()
            .filter_map(|k| trust::keys::PublicKey::from_pem(&k.public_key).ok())
            .find(|k| trust::intoto::intoto_key_id(k) == layout.key_id)
            .ok_or_else(|| AppError::internal("the layout's key is not in the trust root"))?;
        Ok(ArchiveFiles::new(blob.data, &docs, &key, &root, &r.id))
    }

    /// A week of the calendar: the releases alive each day, the windows open each day, and the
    /// releases waiting for a window.
    pub async fn week(&self, who: &Principal, day: Option<&str>) -> Result<CalendarWeek, AppError> {
        authorize(who, Action::ReadReleases)?;
        authorize(who, Action::ReadPipeline)?;
        let day = match day.filter(|d| !d.is_empty()) {
            None => self.clock.now().date_naive(),
            Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                AppError::invalid(
                    "week",
                    format!("`{d}` is not a date: write it as 2026-12-01"),
                )
            })?,
        };
        let monday = day - Days::new(u64::from(day.weekday().num_days_from_monday()));
        let start = monday.and_time(NaiveTime::MIN).and_utc();
        let end = start + Duration::days(7);
        let slugs = self.slugs().await?;
        let mut q = release::Entity::find()
            .filter(release::Column::CreatedAt.lt(end))
            .filter(
                Condition::any()
                    .add(release::Column::FinishedAt.is_null())
                    .add(release::Column::FinishedAt.gte(start)),
            );
        if let Some(only) = tenant_scope(who).only() {
            q = q.filter(release::Column::TenantId.eq(only));
        }
        let rows = q
            .order_by_asc(release::Column::CreatedAt)
            .limit(1000)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let names = self
            .stage_names(&rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>())
            .await?;
        let summaries: Vec<(release::Model, app::delivery::ReleaseSummary)> = rows
            .into_iter()
            .map(|r| {
                let s = self.summary(&r, &slugs, names.get(&(r.id.clone(), r.stage)).cloned())?;
                Ok((r, s))
            })
            .collect::<Result<_, AppError>>()?;
        let calendar = self.calendar.load().await?;
        let windows = self.calendar.list(who).await?;
        let mut days = Vec::new();
        for i in 0..7 {
            let d0 = start + Duration::days(i);
            let d1 = d0 + Duration::days(1);
            let alive: Vec<_> = summaries
                .iter()
                .filter(|(r, _)| r.created_at < d1 && r.finished_at.is_none_or(|f| f >= d0))
                .map(|(_, s)| s.clone())
                .collect();
            let mut freezes = std::collections::BTreeSet::new();
            let mut allows = std::collections::BTreeSet::new();
            // Sampled every 15 minutes, plus each window's openings inside the day.
            for w in &calendar.windows {
                let mut open = false;
                let mut t = d0;
                while t < d1 && !open {
                    open = w.schedule.open_at(t).is_some();
                    t += Duration::minutes(15);
                }
                if !open {
                    open = w
                        .schedule
                        .next_start(d0 - Duration::seconds(1))
                        .is_some_and(|s| s < d1);
                }
                if open {
                    match w.kind {
                        delivery::calendar::WindowKind::Deny => freezes.insert(w.name.clone()),
                        delivery::calendar::WindowKind::Allow => allows.insert(w.name.clone()),
                    };
                }
            }
            days.push(CalendarDay {
                date: d0.date_naive().to_string(),
                releases: alive,
                freezes: freezes.into_iter().collect(),
                allows: allows.into_iter().collect(),
            });
        }
        let scheduled = summaries
            .iter()
            .filter(|(r, _)| {
                r.waiting
                    .as_deref()
                    .is_some_and(|w| w.contains("\"window\""))
                    && !state_of(r).is_ok_and(|s| s.is_final())
            })
            .map(|(_, s)| s.clone())
            .collect();
        Ok(CalendarWeek {
            start: monday.to_string(),
            days,
            windows,
            scheduled,
        })
    }
}
