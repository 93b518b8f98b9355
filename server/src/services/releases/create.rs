//! Creating a release from an accepted submission.
//!
//! One transaction: the older in-flight release of the plugin (if any) ends `superseded`; the
//! release and its stages are stored; its layout is generated from the pipeline that takes it
//! and signed with the release key (an offline key leaves the release `pending` on a signing
//! request); the `judge` link records the verdict; the ledger says so; the first step is queued.

use app::api::backend::Principal;
use app::authz::{Action, authorize, tenant_scope};
use app::delivery::{NewRelease, ReleaseDetail};
use app::error::AppError;
use app::types::Decision;
use chrono::Duration;
use delivery::engine::{ReleaseState, StageState};
use delivery::layout::{self, About, LAYOUT};
use delivery::spec::{Candidate, Tier};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use trust::intoto;
use trust::keys::Purpose;

use super::documents::{self, DocKind, VERDICT_STATEMENT};
use super::{Releases, step_subject, waiter};
use crate::db::entities::{attestation, release, release_stage, submission, tenant, verdict};
use crate::services::db_error;
use crate::services::jobs::{Job, JobKind};
use crate::services::keys::Signer;
use crate::services::ledger_store::Record;
use crate::services::signing::{QueuedRequest, RequestKind};
use crate::services::webhooks::Event;

impl Releases {
    /// Creates a release of an accepted submission (pass or warn), as `who`.
    pub async fn create(
        &self,
        who: &Principal,
        input: NewRelease,
    ) -> Result<ReleaseDetail, AppError> {
        authorize(who, Action::RequestRelease)?;
        let s = submission::Entity::find_by_id(input.submission.clone())
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .filter(|s| tenant_scope(who).admits(s.tenant_id))
            .ok_or_else(|| {
                AppError::not_found(format!("there is no submission `{}`", input.submission))
            })?;
        let id = self.create_for(&s, &who.me.username, None).await?;
        self.detail(who, &id).await
    }

    /// Runs an `auto-release` job: releases the judged submission if its pipeline says
    /// `auto_release`; otherwise (or if it was denied) does nothing.
    pub async fn auto_release(&self, job: &Job) -> Result<(), AppError> {
        let id = job.subject.trim_start_matches("auto-release:");
        let Some(s) = submission::Entity::find_by_id(id.to_owned())
            .one(&self.conn)
            .await
            .map_err(db_error)?
        else {
            return self.queue.done(&self.conn, job.id).await;
        };
        let (_, pipeline) = self.pipeline_for(&s).await?;
        let accepted = s
            .decision
            .as_deref()
            .and_then(|d| d.parse::<Decision>().ok())
            .is_some_and(Decision::accepted);
        if !pipeline.auto_release || !accepted {
            return self.queue.done(&self.conn, job.id).await;
        }
        match self.create_for(&s, "system", Some(job.id)).await {
            Ok(_) => Ok(()),
            // A release of this submission exists already (made by a person first).
            Err(AppError::Conflict { message }) if message.contains("already has release") => {
                self.queue.done(&self.conn, job.id).await
            }
            Err(e) => Err(e),
        }
    }

    /// The active spec's version and the pipeline that takes this submission.
    async fn pipeline_for(
        &self,
        s: &submission::Model,
    ) -> Result<(i32, delivery::spec::Pipeline), AppError> {
        let t = tenant::Entity::find_by_id(s.tenant_id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::internal("the submission's tenant is missing"))?;
        let active = self.pipelines.active().await?;
        let candidate = Candidate {
            plugin: &s.plugin_id,
            tier: Tier::parse(&t.tier).unwrap_or(Tier::Community),
            verified: t.verified,
        };
        let pipeline = active.spec.select(candidate).cloned().ok_or_else(|| {
            AppError::invalid("submission", active.spec.no_pipeline_reason(candidate))
        })?;
        Ok((active.version, pipeline))
    }

    async fn create_for(
        &self,
        s: &submission::Model,
        actor: &str,
        job: Option<i32>,
    ) -> Result<String, AppError> {
        // Only an accepted verdict is released; a denied one says why.
        let v = verdict::Entity::find()
            .filter(verdict::Column::SubmissionId.eq(s.id.clone()))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| {
                AppError::conflict(format!(
                    "submission {} has no verdict yet ({}): release it once it is judged",
                    s.id, s.status
                ))
            })?;
        let decision: Decision = v
            .decision
            .parse()
            .map_err(|_| AppError::internal("a stored verdict has a damaged decision"))?;
        if !decision.accepted() {
            let j: serde_json::Value = serde_json::from_str(&v.verdict).unwrap_or_default();
            let reasons: Vec<String> = j["findings"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .filter(|f| f["effect"] == "deny" && f["waiver"].is_null())
                        .map(|f| {
                            format!(
                                "{}: {}",
                                f["rule"].as_str().unwrap_or("?"),
                                f["message"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            return Err(AppError::invalid(
                "submission",
                format!(
                    "submission {} ({} {}) was denied, and a denied version is never released: {}; fix the findings and submit a new version",
                    s.id,
                    s.plugin_id,
                    s.version,
                    if reasons.is_empty() {
                        "see its verdict".to_owned()
                    } else {
                        reasons.join("; ")
                    }
                ),
            ));
        }
        let (spec_version, pipeline) = self.pipeline_for(s).await?;
        // The keys: the release key signs the layout; the pipeline-step key (the server's own)
        // signs the links.
        let release_key = match self.keys.signer(Purpose::Release, &self.ledger).await {
            Ok(k) => k,
            Err(AppError::Conflict { .. }) => {
                return Err(AppError::conflict(
                    "no release key is registered, and every release's layout is signed with it: run `stellar key generate --purpose release` (add `--offline-out FILE` to keep it offline)",
                ));
            }
            Err(e) => return Err(e),
        };
        let step_key = match self
            .keys
            .signer(Purpose::PipelineStep, &self.ledger)
            .await?
        {
            Signer::Online(k) => k,
            Signer::Offline { .. } => {
                return Err(AppError::conflict(
                    "the pipeline-step key is offline, but Stellar signs every stage's link itself as the stage completes: rotate it to an online key (`stellar key rotate --purpose pipeline-step`)",
                ));
            }
        };
        let now = self.clock.now();
        let id = uuid::Uuid::now_v7().to_string();
        let about = About {
            release: &id,
            plugin: &s.plugin_id,
            version: &s.version,
            spec_version: i64::from(spec_version),
        };
        let spec = self.pipelines.version(spec_version).await?;
        let expires = now + Duration::days(i64::from(spec.spec.layout_expires_days));
        let the_layout = layout::layout(&pipeline, &about, step_key.public(), expires);
        let tenant_slug = tenant::Entity::find_by_id(s.tenant_id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .map(|t| t.slug);

        let mut a = self.ledger.begin().await?;
        // One release per submission.
        if let Some(existing) = release::Entity::find()
            .filter(release::Column::SubmissionId.eq(s.id.clone()))
            .one(a.txn())
            .await
            .map_err(db_error)?
        {
            return Err(AppError::conflict(format!(
                "submission {} already has release {} ({}): a version is released once",
                s.id, existing.id, existing.state
            )));
        }
        // At most one release per plugin in flight: the older one ends superseded.
        let in_flight = release::Entity::find()
            .filter(release::Column::PluginId.eq(s.plugin_id.clone()))
            .filter(release::Column::State.is_in([
                ReleaseState::Pending.as_str(),
                ReleaseState::Running.as_str(),
            ]))
            .all(a.txn())
            .await
            .map_err(db_error)?;
        for old in in_flight {
            let reason = format!(
                "superseded by release {id} of version {} (created by {actor})",
                s.version
            );
            self.end_in(&mut a, &old, ReleaseState::Superseded, &reason, actor)
                .await?;
        }
        let state = match &release_key {
            Signer::Online(_) => ReleaseState::Running,
            Signer::Offline { .. } => ReleaseState::Pending,
        };
        release::Entity::insert(release::ActiveModel {
            id: Set(id.clone()),
            tenant_id: Set(s.tenant_id),
            submission_id: Set(s.id.clone()),
            plugin_id: Set(s.plugin_id.clone()),
            version: Set(s.version.clone()),
            bundle_sha256: Set(s.bundle_sha256.clone()),
            spec_version: Set(spec_version),
            pipeline: Set(pipeline.name.clone()),
            state: Set(state.as_str().into()),
            stage: Set(0),
            stage_state: Set(StageState::Pending.as_str().into()),
            step: Set(None),
            step_started: Set(None),
            waiting: Set(None),
            signature_request: Set(None),
            signature_made: Set(false),
            layout_request: Set(None),
            window_override: Set(false),
            reason: Set(None),
            seq: Set(0),
            created_by: Set(actor.to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            finished_at: Set(None),
            package_ready_at: Set(None),
            package_opened_at: Set(None),
            decided_at: Set(None),
            yanked_at: Set(None),
        })
        .exec_without_returning(a.txn())
        .await
        .map_err(db_error)?;
        release_stage::Entity::insert_many(pipeline.stages.iter().enumerate().map(|(i, st)| {
            release_stage::ActiveModel {
                release_id: Set(id.clone()),
                idx: Set(i as i32),
                name: Set(st.name.clone()),
                kind: Set(st.kind.name().into()),
                state: Set(StageState::Pending.as_str().into()),
                started_at: Set(None),
                finished_at: Set(None),
                actor: Set(None),
                detail: Set(None),
                ..Default::default()
            }
        }))
        .exec_without_returning(a.txn())
        .await
        .map_err(db_error)?;

        // The layout: signed now, or a signing request for the offline release key.
        let payload = serde_json::to_vec(&the_layout)
            .map_err(|e| AppError::internal(format!("the layout cannot be written: {e}")))?;
        let mut layout_request = None;
        match &release_key {
            Signer::Online(k) => {
                let envelope = intoto::sign(&the_layout, k);
                documents::store(
                    a.txn(),
                    &id,
                    DocKind::Layout,
                    LAYOUT,
                    &intoto::intoto_key_id(k.public()),
                    &envelope,
                    now,
                )
                .await?;
            }
            Signer::Offline { key_id } => {
                let request = self
                    .signing
                    .queue_request(
                        &mut a,
                        QueuedRequest {
                            kind: RequestKind::Layout,
                            purpose: Purpose::Release,
                            key_id,
                            payload_type: trust::dsse::INTOTO_PAYLOAD_TYPE,
                            payload: &payload,
                            subject: Some(&waiter(&id)),
                            actor,
                            tenant: tenant_slug.clone(),
                            about: json!({"release": id, "document": LAYOUT}),
                        },
                    )
                    .await?;
                release::Entity::update_many()
                    .col_expr(
                        release::Column::LayoutRequest,
                        Some(request.id.clone()).into(),
                    )
                    .filter(release::Column::Id.eq(id.clone()))
                    .exec(a.txn())
                    .await
                    .map_err(db_error)?;
                layout_request = Some(request.id);
            }
        }
        // The first step: Stellar's judgement of this very bundle.
        let (link_name, link) = documents::link(
            delivery::spec::JUDGE_STEP,
            &s.bundle_sha256,
            json!({
                "verdict": decision.as_str(),
                "submission": s.id,
                "pack": {"name": v.pack_name, "version": v.pack_version, "sha256": v.pack_sha256},
                "verdict_attestation": v.attestation_id,
            }),
            &step_key,
        );
        documents::store(
            a.txn(),
            &id,
            DocKind::Link,
            &link_name,
            &intoto::intoto_key_id(step_key.public()),
            &link,
            now,
        )
        .await?;
        if let Some(att) = v.attestation_id
            && let Some(att) = attestation::Entity::find_by_id(att)
                .one(a.txn())
                .await
                .map_err(db_error)?
            && let Ok(env) = trust::dsse::Envelope::from_json(&att.envelope)
        {
            documents::store(
                a.txn(),
                &id,
                DocKind::Statement,
                VERDICT_STATEMENT,
                &att.key_id,
                &env,
                now,
            )
            .await?;
        }
        a.append(Record {
            actor: actor.to_owned(),
            tenant: tenant_slug.clone(),
            action: "release.create".into(),
            subject: format!("release:{id}"),
            details: json!({
                "plugin": s.plugin_id,
                "version": s.version,
                "submission": s.id,
                "bundle_sha256": s.bundle_sha256,
                "verdict": decision.as_str(),
                "pipeline": pipeline.name,
                "spec_version": spec_version,
                "stages": pipeline.stages.iter().map(|st| st.name.clone()).collect::<Vec<_>>(),
                "layout_expires": the_layout.expires,
                "layout_request": layout_request,
                "link": link_name,
            }),
        })
        .await?;
        if state == ReleaseState::Running {
            self.queue
                .enqueue_at_in(
                    a.txn(),
                    JobKind::ReleaseStep,
                    &step_subject(&id, 0),
                    Some(s.tenant_id),
                    0,
                )
                .await?;
        }
        self.hooks
            .emit_in(
                a.txn(),
                Event::Created,
                &id,
                json!({
                    "release": id, "plugin": s.plugin_id, "version": s.version,
                    "tenant": tenant_slug, "pipeline": pipeline.name, "state": state.as_str(),
                }),
            )
            .await?;
        if let Some(job) = job {
            self.queue.done(a.txn(), job).await?;
        }
        a.commit().await?;
        self.queue.notify();
        metrics::counter!("stellar_releases_created_total").increment(1);
        Ok(id)
    }
}
