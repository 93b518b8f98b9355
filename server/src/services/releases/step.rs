//! The stage engine at work: a `release.step` job asks [`delivery::engine::next`] for the one
//! next action and applies it in one transaction, which also marks the job done and queues the
//! job of the next `seq`. A job whose `seq` is not the release's current one does nothing.

use app::error::AppError;
use chrono::SecondsFormat;
use delivery::engine::{self, Action, ReleaseState, StageState, Waiting};
use delivery::spec::StageKind;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use trust::dsse::{Envelope, Statement, Subject};
use trust::intoto;
use trust::keys::Purpose;

use super::documents::{self, DocKind, RELEASE_PREDICATE, RELEASE_STATEMENT};
use super::{Releases, Then, state_of, waiter};
use crate::db::entities::{release, release_stage, tenant};
use crate::services::db_error;
use crate::services::jobs::Job;
use crate::services::keys::Signer;
use crate::services::ledger_store::{Appender, Record};
use crate::services::signing::{QueuedRequest, RequestKind};
use crate::services::webhooks::Event;

impl Releases {
    /// Runs one `release.step` job.
    pub async fn step(&self, job: &Job) -> Result<(), AppError> {
        let mut parts = job.subject.splitn(3, ':');
        let (Some("release"), Some(id), Some(seq)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(AppError::internal(format!(
                "a release step job has the malformed subject `{}`",
                job.subject
            )));
        };
        let seq: i32 = seq
            .parse()
            .map_err(|_| AppError::internal("a release step job has a malformed seq"))?;
        let r = self.row(&self.conn, id).await?;
        if r.seq != seq || state_of(&r)? != ReleaseState::Running {
            // Someone moved the release on since this job was queued: the job of the current
            // seq does the work.
            return self.queue.done(&self.conn, job.id).await;
        }
        let spec = self.pipelines.version(r.spec_version).await?;
        let pipeline = spec
            .spec
            .pipelines
            .iter()
            .find(|p| p.name == r.pipeline)
            .cloned()
            .ok_or_else(|| {
                AppError::internal(format!(
                    "pipeline `{}` is missing from spec version {}",
                    r.pipeline, r.spec_version
                ))
            })?;
        let calendar = self.calendar.load().await?;
        let now = self.clock.now();

        let mut a = self.ledger.begin().await?;
        // Read again under the ledger lock: the decision is made on what is committed.
        let r = self.row(a.txn(), id).await?;
        if r.seq != seq {
            drop(a);
            return self.queue.done(&self.conn, job.id).await;
        }
        let progress = self.progress(a.txn(), &r).await?;
        let action = engine::next(&pipeline, &progress, &r.plugin_id, &calendar, now);
        let tenant_slug = tenant::Entity::find_by_id(r.tenant_id)
            .one(a.txn())
            .await
            .map_err(db_error)?
            .map(|t| t.slug);
        let record = |action: &str, details: serde_json::Value| Record {
            actor: "system".into(),
            tenant: tenant_slug.clone(),
            action: action.into(),
            subject: format!("release:{}", r.id),
            details,
        };
        let stage_name = |i: usize| {
            pipeline
                .stages
                .get(i)
                .map(|s| s.name.clone())
                .unwrap_or_default()
        };
        match action {
            Action::Nothing => {
                self.queue.done(a.txn(), job.id).await?;
                a.commit().await?;
                return Ok(());
            }
            Action::Start { stage } => {
                let kind = &pipeline.stages[stage].kind;
                self.set_stage(
                    &a,
                    &r.id,
                    stage,
                    StageState::Waiting,
                    Some(now),
                    None,
                    None,
                    None,
                )
                .await?;
                let package = matches!(kind, StageKind::Approval { .. });
                self.advance_in(
                    &a,
                    &r,
                    |m| {
                        m.stage_state = Set(StageState::Waiting.as_str().into());
                        m.waiting = Set(None);
                        if package && r.package_ready_at.is_none() {
                            m.package_ready_at = Set(Some(now));
                        }
                    },
                    Then::Now,
                )
                .await?;
                a.append(record(
                    "release.stage.start",
                    json!({"stage": stage_name(stage), "kind": kind.name(), "index": stage}),
                ))
                .await?;
                if package {
                    self.seal_package(&mut a, &r, now).await?;
                    self.hooks
                        .emit_in(
                            a.txn(),
                            super::super::webhooks::Event::WaitingForApproval,
                            &r.id,
                            json!({
                                "release": r.id, "plugin": r.plugin_id, "version": r.version,
                                "stage": stage_name(stage),
                            }),
                        )
                        .await?;
                }
                if kind.is_promotion() && matches!(kind, StageKind::Ga) {
                    self.hooks
                        .emit_in(
                            a.txn(),
                            Event::Promoted,
                            &r.id,
                            json!({
                                "release": r.id, "plugin": r.plugin_id, "version": r.version,
                                "stage": stage_name(stage), "percent": 100,
                            }),
                        )
                        .await?;
                }
            }
            Action::RequestSignature { stage } => {
                let statement = self
                    .release_statement(a.txn(), &r, &pipeline.name, now)
                    .await?;
                match self.keys.signer(Purpose::Release, &self.ledger).await? {
                    Signer::Online(k) => {
                        let envelope = Envelope::sign_statement(&statement, &k);
                        documents::store(
                            a.txn(),
                            &r.id,
                            DocKind::Statement,
                            RELEASE_STATEMENT,
                            &k.id().0,
                            &envelope,
                            now,
                        )
                        .await?;
                        self.advance_in(&a, &r, |m| m.signature_made = Set(true), Then::Now)
                            .await?;
                        a.append(record(
                            "release.sign",
                            json!({"stage": stage_name(stage), "key_id": k.id().0, "statement": RELEASE_STATEMENT, "offline": false}),
                        ))
                        .await?;
                    }
                    Signer::Offline { key_id } => {
                        let payload = serde_json::to_vec(&statement)
                            .map_err(|e| AppError::internal(e.to_string()))?;
                        let request = self
                            .signing
                            .queue_request(
                                &mut a,
                                QueuedRequest {
                                    kind: RequestKind::Attestation,
                                    purpose: Purpose::Release,
                                    key_id: &key_id,
                                    payload_type: trust::dsse::INTOTO_PAYLOAD_TYPE,
                                    payload: &payload,
                                    subject: Some(&waiter(&r.id)),
                                    actor: "system",
                                    tenant: tenant_slug.clone(),
                                    about: json!({"release": r.id, "predicate_type": RELEASE_PREDICATE}),
                                },
                            )
                            .await?;
                        let why = Waiting::Signature {
                            request: request.id.clone(),
                        };
                        self.set_stage(
                            &a,
                            &r.id,
                            stage,
                            StageState::Waiting,
                            None,
                            None,
                            None,
                            Some(why.describe()),
                        )
                        .await?;
                        let waiting = serde_json::to_string(&why).unwrap_or_default();
                        self.advance_in(
                            &a,
                            &r,
                            |m| {
                                m.signature_request = Set(Some(request.id.clone()));
                                m.waiting = Set(Some(waiting));
                            },
                            Then::Now,
                        )
                        .await?;
                    }
                }
            }
            Action::Step {
                stage,
                step,
                percent,
            } => {
                if let Some(plan) = super::rollout::plan_of(&pipeline, stage) {
                    if step == 0 {
                        self.begin_rollout(&a, &r, stage, &plan, now).await?;
                    }
                    self.gauges(&r.plugin_id, step + 1, percent);
                }
                self.advance_in(
                    &a,
                    &r,
                    |m| {
                        m.step = Set(Some(step as i32));
                        m.step_started = Set(Some(now));
                        m.waiting = Set(None);
                        m.window_override = Set(false);
                    },
                    Then::Now,
                )
                .await?;
                self.set_stage(
                    &a,
                    &r.id,
                    stage,
                    StageState::Waiting,
                    None,
                    None,
                    None,
                    Some(format!("at {percent} %")),
                )
                .await?;
                a.append(record(
                    "release.promote",
                    json!({"stage": stage_name(stage), "step": step, "percent": percent}),
                ))
                .await?;
                self.hooks
                    .emit_in(
                        a.txn(),
                        Event::Promoted,
                        &r.id,
                        json!({
                            "release": r.id, "plugin": r.plugin_id, "version": r.version,
                            "stage": stage_name(stage), "percent": percent,
                        }),
                    )
                    .await?;
            }
            Action::Analyse { stage, promote } => {
                self.analyse(
                    &mut a,
                    &r,
                    &pipeline,
                    stage,
                    promote,
                    now,
                    tenant_slug.clone(),
                )
                .await?;
            }
            Action::RollBack { stage } => {
                self.roll_back(&mut a, &r, &pipeline, stage, now, tenant_slug.clone())
                    .await?;
            }
            Action::Wait { stage, why } => {
                let text = serde_json::to_string(&why).unwrap_or_default();
                let changed = r.waiting.as_deref() != Some(text.as_str());
                let recheck = why.recheck_at();
                if !changed && recheck.is_none() {
                    // Already recorded; the event it waits for will queue the next step.
                    self.queue.done(a.txn(), job.id).await?;
                    a.commit().await?;
                    return Ok(());
                }
                self.set_stage(
                    &a,
                    &r.id,
                    stage,
                    StageState::Waiting,
                    None,
                    None,
                    None,
                    Some(why.describe()),
                )
                .await?;
                let then = match recheck {
                    Some(t) => Then::At(t),
                    None => Then::Event,
                };
                self.advance_in(&a, &r, |m| m.waiting = Set(Some(text.clone())), then)
                    .await?;
                // An analysed rollout waits for its next interval every interval: its
                // judged intervals are the record, not a wait entry each time.
                if changed && !matches!(why, Waiting::Analysis { .. }) {
                    a.append(record(
                        "release.wait",
                        json!({"stage": stage_name(stage), "why": why.describe(), "recheck_at": recheck.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))}),
                    ))
                    .await?;
                }
            }
            Action::Complete { stage } => {
                let kind = pipeline.stages[stage].kind.clone();
                let decisions = self.decisions(a.txn(), &r.id, stage as i32).await?;
                let approvers: Vec<String> = decisions
                    .iter()
                    .filter(|d| d.approve)
                    .map(|d| d.username.clone())
                    .collect();
                let byproducts = match &kind {
                    StageKind::Approval {
                        role,
                        approvers: need,
                    } => json!({
                        "approvers": approvers, "role": role.as_str(), "required": need,
                    }),
                    StageKind::Sign => json!({"statement": RELEASE_STATEMENT}),
                    StageKind::Rollout { steps, .. } => json!({
                        "percent": steps.last().map(|s| s.percent).unwrap_or(100),
                    }),
                    StageKind::Ga => json!({"percent": 100}),
                };
                let step_key = self.step_key(a.txn(), &r.id).await?;
                let (name, link) =
                    documents::link(&stage_name(stage), &r.bundle_sha256, byproducts, &step_key);
                documents::store(
                    a.txn(),
                    &r.id,
                    DocKind::Link,
                    &name,
                    &intoto::intoto_key_id(step_key.public()),
                    &link,
                    now,
                )
                .await?;
                let actor = if approvers.is_empty() {
                    "system".to_owned()
                } else {
                    approvers.join(", ")
                };
                self.set_stage(
                    &a,
                    &r.id,
                    stage,
                    StageState::Succeeded,
                    None,
                    Some(now),
                    Some(actor.clone()),
                    None,
                )
                .await?;
                let approval = matches!(kind, StageKind::Approval { .. });
                self.advance_in(
                    &a,
                    &r,
                    |m| {
                        m.stage = Set(stage as i32 + 1);
                        m.stage_state = Set(StageState::Pending.as_str().into());
                        m.step = Set(None);
                        m.step_started = Set(None);
                        m.waiting = Set(None);
                        m.signature_request = Set(None);
                        m.signature_made = Set(false);
                        m.window_override = Set(false);
                        if approval {
                            m.decided_at = Set(Some(now));
                        }
                    },
                    Then::Now,
                )
                .await?;
                a.append(record(
                    "release.stage.complete",
                    json!({"stage": stage_name(stage), "kind": kind.name(), "link": name, "actor": actor}),
                ))
                .await?;
                let event = match kind {
                    StageKind::Approval { .. } => Some(Event::Approved),
                    StageKind::Sign => Some(Event::Signed),
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
                                "stage": stage_name(stage), "by": actor,
                            }),
                        )
                        .await?;
                }
            }
            Action::Reject { stage, by, reason } => {
                self.set_stage(
                    &a,
                    &r.id,
                    stage,
                    StageState::Stopped,
                    None,
                    Some(now),
                    Some(by.clone()),
                    Some(format!("rejected by {by}: {reason}")),
                )
                .await?;
                let text = format!(
                    "rejected by {by} at stage `{}`: {reason}",
                    stage_name(stage)
                );
                self.end_in(&mut a, &r, ReleaseState::Rejected, &text, &by)
                    .await?;
                release::Entity::update_many()
                    .col_expr(release::Column::DecidedAt, Some(now).into())
                    .filter(release::Column::Id.eq(r.id.clone()))
                    .exec(a.txn())
                    .await
                    .map_err(db_error)?;
            }
            Action::Finish => {
                self.advance_in(
                    &a,
                    &r,
                    |m| {
                        m.state = Set(ReleaseState::Succeeded.as_str().into());
                        m.finished_at = Set(Some(now));
                        m.waiting = Set(None);
                    },
                    Then::Now,
                )
                .await?;
                a.append(record(
                    "release.ga",
                    json!({"plugin": r.plugin_id, "version": r.version, "bundle_sha256": r.bundle_sha256}),
                ))
                .await?;
                metrics::counter!("stellar_releases_finished_total", "state" => "succeeded")
                    .increment(1);
            }
        }
        self.queue.done(a.txn(), job.id).await?;
        a.commit().await?;
        self.queue.notify();
        Ok(())
    }

    /// Updates one stage row (fields given as `Some`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn set_stage(
        &self,
        a: &Appender,
        release_id: &str,
        stage: usize,
        state: StageState,
        started_at: Option<chrono::DateTime<chrono::Utc>>,
        finished_at: Option<chrono::DateTime<chrono::Utc>>,
        actor: Option<String>,
        detail: Option<String>,
    ) -> Result<(), AppError> {
        let mut q = release_stage::Entity::update_many()
            .col_expr(release_stage::Column::State, state.as_str().into());
        if let Some(t) = started_at {
            q = q.col_expr(release_stage::Column::StartedAt, Some(t).into());
        }
        if let Some(t) = finished_at {
            q = q.col_expr(release_stage::Column::FinishedAt, Some(t).into());
        }
        if let Some(who) = actor {
            q = q.col_expr(release_stage::Column::Actor, Some(who).into());
        }
        if let Some(d) = detail {
            q = q.col_expr(release_stage::Column::Detail, Some(d).into());
        }
        q.filter(release_stage::Column::ReleaseId.eq(release_id))
            .filter(release_stage::Column::Idx.eq(stage as i32))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// The statement the sign stage signs: this bundle is released, under this pipeline, with
    /// these approvals.
    async fn release_statement<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        r: &release::Model,
        pipeline: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Statement, AppError> {
        let decisions = crate::db::entities::release_decision::Entity::find()
            .filter(crate::db::entities::release_decision::Column::ReleaseId.eq(r.id.clone()))
            .all(conn)
            .await
            .map_err(db_error)?;
        let approvals: Vec<serde_json::Value> = decisions
            .iter()
            .filter(|d| d.approve)
            .map(|d| json!({"user": d.username, "role": d.role, "at": d.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)}))
            .collect();
        Ok(Statement::new(
            vec![Subject::with_sha256(
                format!("{}-{}.tar.gz", r.plugin_id, r.version),
                r.bundle_sha256.clone(),
            )],
            RELEASE_PREDICATE,
            json!({
                "release": r.id,
                "plugin": r.plugin_id,
                "version": r.version,
                "submission": r.submission_id,
                "pipeline": pipeline,
                "specVersion": r.spec_version,
                "approvals": approvals,
                "signedAt": chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
                "releasedAt": now.to_rfc3339_opts(SecondsFormat::Secs, true),
            }),
        ))
    }

    /// The pipeline-step key the release's layout names (links must be signed by it, even if
    /// the key was rotated since; a revoked or lost one fails the stage).
    pub(super) async fn step_key<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        release_id: &str,
    ) -> Result<std::sync::Arc<trust::keys::KeyPair>, AppError> {
        let docs = documents::all(conn, release_id).await?;
        let judge = docs
            .iter()
            .find(|d| d.kind == DocKind::Link.as_str())
            .ok_or_else(|| AppError::internal("the release has no judge link"))?;
        let wanted = judge.key_id.clone();
        let keys = self.keys.list_all().await?;
        for k in keys
            .iter()
            .filter(|k| k.purpose == Purpose::PipelineStep.as_str())
        {
            let Ok(public) = trust::keys::PublicKey::from_pem(&k.public_key) else {
                continue;
            };
            if intoto::intoto_key_id(&public) == wanted {
                if k.revoked_at.is_some() {
                    return Err(AppError::conflict(format!(
                        "the pipeline-step key {} that this release's layout names was revoked: abort the release and create it again",
                        &k.key_id[..16]
                    )));
                }
                if let Some(kp) = self.keys.private(&k.key_id)? {
                    return Ok(kp);
                }
            }
        }
        Err(AppError::conflict(
            "the pipeline-step key this release's layout names is no longer in the key directory: abort the release and create it again",
        ))
    }
}
