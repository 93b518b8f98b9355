//! Releases: an accepted submission going through its pipeline, review → sign → rollout → GA.
//!
//! - [`create`]: a release from an accepted submission (by a person, or by `auto_release`),
//!   with its in-toto layout signed by the release key (or a signing request for an offline
//!   key) and the `judge` link; an older release of the plugin in flight is superseded.
//! - [`step`]: the stage engine's actions applied, one transaction each, by the job queue.
//! - [`decide`]: approvals and rejections, aborts, window overrides, imported signatures.
//! - [`documents`]: the layout, links and statements, the attestation archive.
//! - [`package`]: the fast-review package.
//! - [`queries`]: lists, one release, the inbox count, the calendar's view of releases.
//! - [`rollout`]: analysed rollouts judged interval by interval, rollbacks, and people's
//!   controls (promote, pause, resume, retry, yank).
//!
//! **Invariants:**
//! - Every change to a release is one transaction that also appends its ledger entry, bumps the
//!   release's `seq`, and enqueues the next step job `release:<id>:<seq>`; a job whose `seq` is
//!   not the release's current one does nothing. So a stage runs once whatever the workers do,
//!   and a crash between two steps loses nothing (the next job is already queued).
//! - Partners see their own tenant's releases only; another tenant's is "not found".
//! - At most one release per plugin is in flight (`pending` or `running`).
//! - Time is the scheduler's clock: holds and windows move only when it does.

mod create;
mod decide;
pub mod documents;
pub mod package;
mod queries;
pub mod rollout;
mod step;

use std::collections::HashMap;

use app::delivery::{ReleaseState as WireState, ReleaseSummary};
use app::error::AppError;
use chrono::{DateTime, Utc};
use delivery::engine::{self, Decision as EngineDecision, Progress, ReleaseState, Signature};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};

use super::calendar::CalendarService;
use super::jobs::{JobKind, Queue};
use super::keys::Keyring;
use super::ledger_store::{Appender, LedgerStore};
use super::pipelines::Pipelines;
use super::signing::Signing;
use super::webhooks::Webhooks;
use super::{db_error, timestamp};
use crate::clock::Clock;
use crate::db::entities::{release, release_decision, tenant};

/// Releases and their stage engine.
#[derive(Clone, Debug)]
pub struct Releases {
    conn: DatabaseConnection,
    ledger: LedgerStore,
    queue: Queue,
    keys: Keyring,
    signing: Signing,
    pipelines: Pipelines,
    calendar: CalendarService,
    hooks: Webhooks,
    clock: Clock,
    /// The rollback rules that judge analysed rollouts.
    rollback: super::policy::ActivePack,
}

fn not_found(id: &str) -> AppError {
    AppError::not_found(format!("there is no release `{id}`"))
}

/// When the engine looks at a release again after a change.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Then {
    /// At once.
    Now,
    /// When the clock reaches this time (a hold, a window).
    At(DateTime<Utc>),
    /// When something happens (a decision, an imported signature): that event queues the step.
    Event,
}

/// The job subject of a release's step at `seq`.
pub fn step_subject(id: &str, seq: i32) -> String {
    format!("release:{id}:{seq}")
}

/// The waiter name signing requests carry for a release.
pub fn waiter(id: &str) -> String {
    format!("release:{id}")
}

pub(crate) fn state_of(r: &release::Model) -> Result<ReleaseState, AppError> {
    ReleaseState::parse(&r.state).ok_or_else(|| {
        AppError::internal(format!(
            "release {} has the unknown state `{}`",
            r.id, r.state
        ))
    })
}

pub(crate) fn wire_state(s: ReleaseState) -> WireState {
    match s {
        ReleaseState::Pending => WireState::Pending,
        ReleaseState::Running => WireState::Running,
        ReleaseState::Succeeded => WireState::Succeeded,
        ReleaseState::Rejected => WireState::Rejected,
        ReleaseState::Aborted => WireState::Aborted,
        ReleaseState::Superseded => WireState::Superseded,
        ReleaseState::Failed => WireState::Failed,
        ReleaseState::RolledBack => WireState::RolledBack,
        ReleaseState::Yanked => WireState::Yanked,
    }
}

pub(crate) fn engine_state(s: WireState) -> ReleaseState {
    match s {
        WireState::Pending => ReleaseState::Pending,
        WireState::Running => ReleaseState::Running,
        WireState::Succeeded => ReleaseState::Succeeded,
        WireState::Rejected => ReleaseState::Rejected,
        WireState::Aborted => ReleaseState::Aborted,
        WireState::Superseded => ReleaseState::Superseded,
        WireState::Failed => ReleaseState::Failed,
        WireState::RolledBack => ReleaseState::RolledBack,
        WireState::Yanked => ReleaseState::Yanked,
    }
}

/// The waiting reason stored with a release, as one sentence.
pub(crate) fn waiting_text(r: &release::Model) -> Option<String> {
    let w: engine::Waiting = serde_json::from_str(r.waiting.as_deref()?).ok()?;
    Some(w.describe())
}

impl Releases {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        conn: DatabaseConnection,
        ledger: LedgerStore,
        queue: Queue,
        keys: Keyring,
        signing: Signing,
        pipelines: Pipelines,
        calendar: CalendarService,
        hooks: Webhooks,
        rollback: super::policy::ActivePack,
    ) -> Self {
        let clock = queue.clock().clone();
        Releases {
            conn,
            ledger,
            queue,
            keys,
            signing,
            pipelines,
            calendar,
            hooks,
            clock,
            rollback,
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    async fn row<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: &str,
    ) -> Result<release::Model, AppError> {
        release::Entity::find_by_id(id.to_owned())
            .one(conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| not_found(id))
    }

    /// Decisions on one stage of a release, oldest first.
    async fn decisions<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: &str,
        stage: i32,
    ) -> Result<Vec<release_decision::Model>, AppError> {
        release_decision::Entity::find()
            .filter(release_decision::Column::ReleaseId.eq(id))
            .filter(release_decision::Column::Stage.eq(stage))
            .order_by_asc(release_decision::Column::Id)
            .all(conn)
            .await
            .map_err(db_error)
    }

    /// Where a release stands, as the engine sees it.
    async fn progress<C: ConnectionTrait>(
        &self,
        conn: &C,
        r: &release::Model,
    ) -> Result<Progress, AppError> {
        let decisions = self
            .decisions(conn, &r.id, r.stage)
            .await?
            .into_iter()
            .map(|d| EngineDecision {
                user: d.username,
                approve: d.approve,
                reason: d.reason,
            })
            .collect();
        Ok(Progress {
            state: state_of(r)?,
            stage: r.stage.max(0) as usize,
            stage_state: engine::StageState::parse(&r.stage_state).ok_or_else(|| {
                AppError::internal(format!("release {} has a damaged stage state", r.id))
            })?,
            step: r.step.map(|s| s.max(0) as usize),
            step_started: r.step_started,
            decisions,
            signature: match (&r.signature_request, r.signature_made) {
                (_, true) => Signature::Made,
                (Some(req), false) => Signature::Requested {
                    request: req.clone(),
                },
                (None, false) => Signature::None,
            },
            window_override: r.window_override,
            analysis: self.analysed(conn, r).await?,
        })
    }

    /// Bumps a release's `seq` (failing if someone else moved it first), applying `change`,
    /// and queues the step job for the new `seq` as `then` says.
    async fn advance_in(
        &self,
        a: &Appender,
        r: &release::Model,
        change: impl FnOnce(&mut release::ActiveModel),
        then: Then,
    ) -> Result<i32, AppError> {
        let next = r.seq + 1;
        let mut active = release::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(r.id.clone()),
            ..Default::default()
        };
        change(&mut active);
        active.seq = Set(next);
        active.updated_at = Set(self.clock.now());
        let result = release::Entity::update_many()
            .set(active)
            .filter(release::Column::Id.eq(r.id.clone()))
            .filter(release::Column::Seq.eq(r.seq))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        if result.rows_affected != 1 {
            return Err(AppError::conflict(format!(
                "release {} changed at the same moment: look at it again and retry",
                r.id
            )));
        }
        let state = {
            let fresh = self.row(a.txn(), &r.id).await?;
            state_of(&fresh)?
        };
        let at = match then {
            Then::Now => Some(0),
            Then::At(t) => Some(t.timestamp_millis()),
            Then::Event => None,
        };
        if let (ReleaseState::Running, Some(at)) = (state, at) {
            self.queue
                .enqueue_at_in(
                    a.txn(),
                    JobKind::ReleaseStep,
                    &step_subject(&r.id, next),
                    Some(r.tenant_id),
                    at,
                )
                .await?;
        }
        Ok(next)
    }

    /// Tenant slugs by id.
    async fn slugs(&self) -> Result<HashMap<i32, String>, AppError> {
        Ok(tenant::Entity::find()
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|t| (t.id, t.slug))
            .collect())
    }

    pub(crate) fn summary(
        &self,
        r: &release::Model,
        slugs: &HashMap<i32, String>,
        stage_name: Option<String>,
    ) -> Result<ReleaseSummary, AppError> {
        let state = state_of(r)?;
        Ok(ReleaseSummary {
            id: r.id.clone(),
            tenant: slugs.get(&r.tenant_id).cloned().unwrap_or_default(),
            plugin: r.plugin_id.clone(),
            version: r.version.clone(),
            submission: r.submission_id.clone(),
            state: wire_state(state),
            stage: if state == ReleaseState::Succeeded {
                None
            } else {
                stage_name
            },
            waiting: if state.is_final() {
                None
            } else {
                waiting_text(r)
            },
            reason: r.reason.clone(),
            pipeline: r.pipeline.clone(),
            spec_version: r.spec_version,
            created_by: r.created_by.clone(),
            created_at: timestamp(r.created_at),
            updated_at: timestamp(r.updated_at),
            finished_at: r.finished_at.map(timestamp),
        })
    }
}

#[async_trait::async_trait]
impl app::api::backend::DeliveryBackend for Releases {
    async fn list_releases(
        &self,
        who: &app::api::backend::Principal,
        filter: app::delivery::ReleaseFilter,
    ) -> Result<app::delivery::ReleasePage, AppError> {
        self.list(who, filter).await
    }

    async fn release(
        &self,
        who: &app::api::backend::Principal,
        id: &str,
    ) -> Result<app::delivery::ReleaseDetail, AppError> {
        self.detail(who, id).await
    }

    async fn package(
        &self,
        who: &app::api::backend::Principal,
        id: &str,
    ) -> Result<app::delivery::ReviewPackage, AppError> {
        Releases::package(self, who, id).await
    }

    async fn inbox_count(&self, who: &app::api::backend::Principal) -> Result<u64, AppError> {
        Releases::inbox_count(self, who).await
    }

    async fn calendar(
        &self,
        who: &app::api::backend::Principal,
        week: &str,
    ) -> Result<app::delivery::CalendarWeek, AppError> {
        self.week(who, Some(week)).await
    }

    async fn webhooks(
        &self,
        who: &app::api::backend::Principal,
    ) -> Result<Vec<app::delivery::Webhook>, AppError> {
        self.hooks.list(who).await
    }

    async fn webhook_deliveries(
        &self,
        who: &app::api::backend::Principal,
        id: i32,
    ) -> Result<Vec<app::delivery::WebhookDelivery>, AppError> {
        self.hooks.deliveries(who, id, 200).await
    }
}
