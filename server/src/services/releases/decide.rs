//! What people (and imported signatures) do to a release: approve or reject the stage waiting
//! for them, abort, override a closed calendar; and how a release ends.
//!
//! Approvals are checked here, against the stage the release is at: the right role (or an
//! administrator), not the person who created the release or submitted the version, never the
//! submitting tenant, once per person per stage. The engine then counts distinct approvers.

use app::api::backend::Principal;
use app::authz::{Action, authorize, tenant_scope};
use app::delivery::{DecisionInput, ReleaseDetail, Verdict};
use app::error::AppError;
use app::types::Role;
use delivery::engine::{ReleaseState, StageState, Waiting};
use delivery::spec::{ApproverRole, StageKind};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use trust::intoto;

use super::documents::{self, DocKind, RELEASE_STATEMENT};
use super::{Releases, Then, state_of};
use crate::db::entities::{
    release, release_decision, release_stage, signing_request, submission, tenant,
};
use crate::services::db_error;
use crate::services::jobs::Job;
use crate::services::ledger_store::{Appender, Record};
use crate::services::webhooks::Event;

const MAX_REASON: usize = 2000;

fn role_ok(stage_role: ApproverRole, role: Role) -> bool {
    role == Role::Admin
        || matches!(
            (stage_role, role),
            (ApproverRole::Reviewer, Role::Reviewer)
                | (ApproverRole::Secops, Role::Secops)
                | (ApproverRole::Platform, Role::Platform)
        )
}

impl Releases {
    /// Why `who` may not decide the release's current stage now, if they may not.
    pub(super) async fn cannot_decide(
        &self,
        who: &Principal,
        r: &release::Model,
    ) -> Result<Option<String>, AppError> {
        if authorize(who, Action::DecideRelease).is_err() {
            return Ok(Some(format!(
                "only reviewers, secops, platform users and administrators approve releases; you are signed in as {}",
                who.role()
            )));
        }
        if state_of(r)? != ReleaseState::Running || r.stage_state != StageState::Waiting.as_str() {
            return Ok(Some(format!(
                "release {} is not waiting for a decision",
                r.id
            )));
        }
        let spec = self.pipelines.version(r.spec_version).await?;
        let Some(stage) = spec
            .spec
            .pipelines
            .iter()
            .find(|p| p.name == r.pipeline)
            .and_then(|p| p.stages.get(r.stage.max(0) as usize))
        else {
            return Ok(Some(
                "the release's pipeline no longer has this stage".into(),
            ));
        };
        let StageKind::Approval { role, .. } = stage.kind else {
            return Ok(Some(format!(
                "release {} is at stage `{}` ({}), which takes no approvals",
                r.id,
                stage.name,
                stage.kind.name()
            )));
        };
        if !role_ok(role, who.role()) {
            return Ok(Some(format!(
                "stage `{}` is approved by a {} (or an administrator); you are signed in as {}",
                stage.name,
                role.as_str(),
                who.role()
            )));
        }
        if who.tenant_id == Some(r.tenant_id) {
            return Ok(Some(
                "the submitting tenant never approves its own release".into(),
            ));
        }
        let submitted_by = submission::Entity::find_by_id(r.submission_id.clone())
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .map(|s| s.submitted_by)
            .unwrap_or_default();
        if who.me.username == r.created_by || who.me.username == submitted_by {
            return Ok(Some(format!(
                "you {} this release, and nobody approves their own release: another {} must",
                if who.me.username == r.created_by {
                    "created"
                } else {
                    "submitted the version of"
                },
                role.as_str()
            )));
        }
        if let Some(d) = self
            .decisions(&self.conn, &r.id, r.stage)
            .await?
            .into_iter()
            .find(|d| d.user_id == who.user_id && d.username == who.me.username)
        {
            return Ok(Some(format!(
                "you already {} stage `{}` at {}: each person decides once",
                if d.approve { "approved" } else { "rejected" },
                stage.name,
                super::timestamp(d.created_at)
            )));
        }
        Ok(None)
    }

    /// Approves or rejects the stage the release waits at.
    pub async fn decide(
        &self,
        who: &Principal,
        id: &str,
        input: DecisionInput,
    ) -> Result<ReleaseDetail, AppError> {
        authorize(who, Action::DecideRelease)?;
        let r = self.row(&self.conn, id).await?;
        if !tenant_scope(who).admits(r.tenant_id) {
            return Err(super::not_found(id));
        }
        let reason = input.reason.trim().to_owned();
        if reason.chars().count() > MAX_REASON {
            return Err(AppError::invalid(
                "reason",
                format!("a reason is at most {MAX_REASON} characters"),
            ));
        }
        if input.decision == Verdict::Reject && reason.is_empty() {
            return Err(AppError::invalid(
                "reason",
                "a rejection needs a reason: say what must change for the next version to pass review",
            ));
        }
        if let Some(why) = self.cannot_decide(who, &r).await? {
            return Err(
                if why.contains("already")
                    || why.contains("not waiting")
                    || why.contains("takes no approvals")
                {
                    AppError::conflict(why)
                } else {
                    AppError::forbidden(why)
                },
            );
        }
        let approve = input.decision == Verdict::Approve;
        let now = self.clock.now();
        let mut a = self.ledger.begin().await?;
        let r = self.row(a.txn(), id).await?;
        release_decision::Entity::insert(release_decision::ActiveModel {
            release_id: Set(r.id.clone()),
            stage: Set(r.stage),
            user_id: Set(who.user_id),
            username: Set(who.me.username.clone()),
            role: Set(who.role().as_str().into()),
            approve: Set(approve),
            reason: Set(reason.clone()),
            created_at: Set(now),
            ..Default::default()
        })
        .exec_without_returning(a.txn())
        .await
        .map_err(|e| match db_error(e) {
            AppError::Conflict { .. } => {
                AppError::conflict("you already decided this stage: each person decides once")
            }
            other => other,
        })?;
        let first_look = r.package_opened_at.is_none();
        self.advance_in(
            &a,
            &r,
            |m| {
                if first_look {
                    m.package_opened_at = Set(Some(now));
                }
            },
            Then::Now,
        )
        .await?;
        let slug = self.tenant_slug(r.tenant_id).await?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: slug,
            action: if approve {
                "release.approve"
            } else {
                "release.reject"
            }
            .into(),
            subject: format!("release:{}", r.id),
            details: json!({"stage": r.stage, "role": who.role().as_str(), "reason": reason}),
        })
        .await?;
        a.commit().await?;
        self.queue.notify();
        self.detail(who, id).await
    }

    /// Stops a release in flight. Never waits for the calendar.
    pub async fn abort(
        &self,
        who: &Principal,
        id: &str,
        reason: &str,
    ) -> Result<ReleaseDetail, AppError> {
        authorize(who, Action::AbortRelease)?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON {
            return Err(AppError::invalid(
                "reason",
                "an abort needs a reason (up to 2000 characters): it is shown on the release and kept in the ledger",
            ));
        }
        let mut a = self.ledger.begin().await?;
        let r = self.row(a.txn(), id).await?;
        let state = state_of(&r)?;
        if state.is_final() {
            return Err(AppError::conflict(format!(
                "release {id} already ended ({}): only a release in flight can be aborted",
                state.as_str()
            )));
        }
        let text = format!("aborted by {}: {reason}", who.me.username);
        self.end_in(&mut a, &r, ReleaseState::Aborted, &text, &who.me.username)
            .await?;
        a.commit().await?;
        self.detail(who, id).await
    }

    /// Lets the waiting promotion through a closed calendar (administrators, with a reason).
    pub async fn override_window(
        &self,
        who: &Principal,
        id: &str,
        reason: &str,
    ) -> Result<ReleaseDetail, AppError> {
        authorize(who, Action::OverrideWindow)?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON {
            return Err(AppError::invalid(
                "reason",
                "an override needs a reason: it is kept in the ledger",
            ));
        }
        let mut a = self.ledger.begin().await?;
        let r = self.row(a.txn(), id).await?;
        let waiting: Option<Waiting> = r
            .waiting
            .as_deref()
            .and_then(|w| serde_json::from_str(w).ok());
        if state_of(&r)? != ReleaseState::Running
            || !matches!(waiting, Some(Waiting::Window { .. }))
        {
            return Err(AppError::conflict(format!(
                "release {id} is not waiting for a window: there is nothing to override"
            )));
        }
        self.advance_in(&a, &r, |m| m.window_override = Set(true), Then::Now)
            .await?;
        let slug = self.tenant_slug(r.tenant_id).await?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: slug,
            action: "release.window.override".into(),
            subject: format!("release:{}", r.id),
            details: json!({"stage": r.stage, "reason": reason, "waiting": waiting.map(|w| w.describe())}),
        })
        .await?;
        a.commit().await?;
        self.queue.notify();
        self.detail(who, id).await
    }

    /// Runs a `wake` job: a signature the release waited for was imported.
    pub async fn wake(&self, job: &Job) -> Result<(), AppError> {
        let request_id = job.subject.trim_start_matches("wake:").to_owned();
        let Some(waiter) = self.signing.waiter_of(&request_id).await? else {
            return self.queue.done(&self.conn, job.id).await;
        };
        let Some(id) = waiter.strip_prefix("release:") else {
            return self.queue.done(&self.conn, job.id).await;
        };
        let Some(envelope) = self.signing.signed_envelope(&request_id).await? else {
            return self.queue.done(&self.conn, job.id).await;
        };
        let now = self.clock.now();
        let mut a = self.ledger.begin().await?;
        let r = self.row(a.txn(), id).await?;
        let state = state_of(&r)?;
        let slug = self.tenant_slug(r.tenant_id).await?;
        if r.layout_request.as_deref() == Some(&request_id) && state == ReleaseState::Pending {
            let (root, _) = self.keys.pinned_root().await?;
            let key = root
                .find(&trust::keys::KeyId(
                    envelope
                        .signatures
                        .first()
                        .map(|s| s.keyid.clone())
                        .unwrap_or_default(),
                ))
                .and_then(|k| trust::keys::PublicKey::from_pem(&k.public_key).ok())
                .ok_or_else(|| {
                    AppError::internal("the layout's signing key is not in the trust root")
                })?;
            let envelope = documents::with_intoto_key_id(envelope, &key);
            documents::store(
                a.txn(),
                &r.id,
                DocKind::Layout,
                delivery::layout::LAYOUT,
                &intoto::intoto_key_id(&key),
                &envelope,
                now,
            )
            .await?;
            self.advance_in(
                &a,
                &r,
                |m| m.state = Set(ReleaseState::Running.as_str().into()),
                Then::Now,
            )
            .await?;
            a.append(Record {
                actor: "system".into(),
                tenant: slug,
                action: "release.layout.signed".into(),
                subject: format!("release:{}", r.id),
                details: json!({"request": request_id, "key_id": key.id().0}),
            })
            .await?;
        } else if r.signature_request.as_deref() == Some(&request_id)
            && state == ReleaseState::Running
            && !r.signature_made
        {
            let key_id = envelope
                .signatures
                .first()
                .map(|s| s.keyid.clone())
                .unwrap_or_default();
            documents::store(
                a.txn(),
                &r.id,
                DocKind::Statement,
                RELEASE_STATEMENT,
                &key_id,
                &envelope,
                now,
            )
            .await?;
            self.advance_in(&a, &r, |m| m.signature_made = Set(true), Then::Now)
                .await?;
            a.append(Record {
                actor: "system".into(),
                tenant: slug,
                action: "release.sign".into(),
                subject: format!("release:{}", r.id),
                details: json!({"request": request_id, "key_id": key_id, "statement": RELEASE_STATEMENT, "offline": true}),
            })
            .await?;
        }
        self.queue.done(a.txn(), job.id).await?;
        a.commit().await?;
        self.queue.notify();
        Ok(())
    }

    /// Ends a release (superseded, aborted, rejected, failed) inside the caller's transaction:
    /// the current stage stops, the ones after it are skipped, pending signing requests for it
    /// are cancelled, the ledger and the webhooks hear of it.
    pub(super) async fn end_in(
        &self,
        a: &mut Appender,
        r: &release::Model,
        state: ReleaseState,
        reason: &str,
        actor: &str,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        release_stage::Entity::update_many()
            .col_expr(
                release_stage::Column::State,
                StageState::Skipped.as_str().into(),
            )
            .filter(release_stage::Column::ReleaseId.eq(r.id.clone()))
            .filter(release_stage::Column::State.eq(StageState::Pending.as_str()))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        release_stage::Entity::update_many()
            .col_expr(
                release_stage::Column::State,
                StageState::Stopped.as_str().into(),
            )
            .col_expr(release_stage::Column::FinishedAt, Some(now).into())
            .col_expr(
                release_stage::Column::Detail,
                Some(reason.to_owned()).into(),
            )
            .filter(release_stage::Column::ReleaseId.eq(r.id.clone()))
            .filter(release_stage::Column::State.eq(StageState::Waiting.as_str()))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        signing_request::Entity::update_many()
            .col_expr(signing_request::Column::Status, "cancelled".into())
            .col_expr(signing_request::Column::CompletedAt, Some(now).into())
            .filter(signing_request::Column::Subject.eq(super::waiter(&r.id)))
            .filter(signing_request::Column::Status.eq("pending"))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        let reason_text = reason.to_owned();
        self.advance_in(
            a,
            r,
            |m| {
                m.state = Set(state.as_str().into());
                m.reason = Set(Some(reason_text));
                m.finished_at = Set(Some(now));
                m.waiting = Set(None);
            },
            Then::Now,
        )
        .await?;
        let slug = self.tenant_slug(r.tenant_id).await?;
        let action = match state {
            ReleaseState::Superseded => "release.supersede",
            ReleaseState::Aborted => "release.abort",
            ReleaseState::Rejected => "release.reject.final",
            ReleaseState::RolledBack => "release.rollback",
            _ => "release.fail",
        };
        a.append(Record {
            actor: actor.to_owned(),
            tenant: slug.clone(),
            action: action.into(),
            subject: format!("release:{}", r.id),
            details: json!({"reason": reason, "stage": r.stage, "plugin": r.plugin_id, "version": r.version}),
        })
        .await?;
        let event = match state {
            ReleaseState::Aborted | ReleaseState::Superseded | ReleaseState::Failed => {
                Some(Event::Aborted)
            }
            ReleaseState::Rejected => Some(Event::Rejected),
            ReleaseState::RolledBack => Some(Event::RolledBack),
            _ => None,
        };
        if let Some(event) = event {
            self.hooks
                .emit_in(
                    a.txn(),
                    event,
                    &r.id,
                    json!({
                        "release": r.id, "plugin": r.plugin_id, "version": r.version,
                        "state": state.as_str(), "reason": reason, "tenant": slug,
                    }),
                )
                .await?;
        }
        metrics::counter!("stellar_releases_finished_total", "state" => state.as_str())
            .increment(1);
        Ok(())
    }

    /// Ends a release whose step failed on every attempt: the release is `failed` with the
    /// reason, never silently stuck.
    pub async fn fail(&self, job: &Job, error: &str) -> Result<(), AppError> {
        let id = job.subject.split(':').nth(1).unwrap_or_default().to_owned();
        let mut a = self.ledger.begin().await?;
        if let Ok(r) = self.row(a.txn(), &id).await
            && !state_of(&r)?.is_final()
        {
            let reason = format!("a step failed {} times: {error}", job.attempts);
            self.end_in(&mut a, &r, ReleaseState::Failed, &reason, "system")
                .await?;
        }
        self.queue.failed(a.txn(), job.id, error).await?;
        a.commit().await
    }

    pub(super) async fn tenant_slug(&self, id: i32) -> Result<Option<String>, AppError> {
        Ok(tenant::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .map(|t| t.slug))
    }
}
