//! Plugin submissions: intake, the durable analysis queue, verdicts, and publisher keys.
//!
//! **Intake** checks a bundle completely before anything is stored (limits, paths, manifest,
//! module); a refused bundle leaves no row behind. An accepted bundle is stored with its job
//! and its ledger entry in one transaction.
//!
//! **Jobs** are claimed with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one
//! writer). A worker that dies leaves its lease to expire, and any instance takes the job over.
//! A job that keeps failing ends as failed after `--job-attempts`, and never blocks the queue.
//! The verdict table's unique key on the submission makes "exactly one verdict" a database
//! invariant, whatever the workers do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::api::backend::Principal;
use app::error::AppError;
use app::types::{
    NewPublisherKey, PackInfo, PluginVersion, PublisherKey, PublisherProfile,
    PublisherProfileUpdate, Role, SubmissionDetail, SubmissionFilter, SubmissionPage,
    SubmissionSummary, SubmissionVerdict,
};
use chrono::Utc;
use plugin::{Context, Inspected, Previous, Publisher, Rejection};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend,
    DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use serde_json::{Value, json};
use trust::dsse::{Statement as InTotoStatement, Subject};
use trust::keys::{PublicKey, Purpose};

use super::ledger::{Ledger, Record};
use super::policy::ActivePack;
use super::signing::{Attested, Signing};
use super::{db_error, timestamp};
use crate::config::AnalysisConfig;
use crate::db::entities::{job, publisher_key, submission, submission_blob, tenant, verdict};

/// Who sees every tenant's submissions.
pub const STAFF: &[Role] = &[Role::Reviewer, Role::Secops, Role::Platform, Role::Admin];

/// Why a submission was not taken.
#[derive(Debug)]
pub enum SubmitError {
    /// The bundle itself is at fault: nothing was stored.
    Refused(Rejection),
    App(AppError),
}

impl From<AppError> for SubmitError {
    fn from(e: AppError) -> Self {
        SubmitError::App(e)
    }
}

/// The intake and analysis settings.
pub type Settings = AnalysisConfig;

/// Submissions, verdicts, publisher keys and the analysis workers.
#[derive(Clone)]
pub struct Submissions {
    conn: DatabaseConnection,
    ledger: Ledger,
    signing: Signing,
    pack: ActivePack,
    settings: Arc<Settings>,
    wake: Arc<tokio::sync::Notify>,
    /// Bundles unpacked at once: each may hold its bundle and its expanded files in memory.
    intake: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Submissions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submissions")
            .field("pack", &self.pack)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn is_staff(who: &Principal) -> bool {
    STAFF.contains(&who.role())
}

fn not_found(id: &str) -> AppError {
    AppError::not_found(format!("there is no submission `{id}`"))
}

impl Submissions {
    pub fn new(
        conn: DatabaseConnection,
        ledger: Ledger,
        signing: Signing,
        pack: ActivePack,
        settings: Settings,
    ) -> Self {
        Submissions {
            conn,
            ledger,
            signing,
            pack,
            intake: Arc::new(tokio::sync::Semaphore::new(settings.max_concurrent_uploads)),
            settings: Arc::new(settings),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn pack(&self) -> &ActivePack {
        &self.pack
    }

    async fn tenant_by_id(&self, id: i32) -> Result<tenant::Model, AppError> {
        tenant::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::internal("the caller's tenant is missing"))
    }

    /// The partner's own tenant; staff have none and may not submit.
    async fn own_tenant(&self, who: &Principal) -> Result<tenant::Model, AppError> {
        match (who.role(), who.tenant_id) {
            (Role::Partner, Some(id)) => self.tenant_by_id(id).await,
            _ => Err(AppError::forbidden(
                "only partner accounts submit plugins, for their own tenant",
            )),
        }
    }

    // ----- intake ------------------------------------------------------------------------------

    /// Checks a bundle and, if it is acceptable, stores it and queues its analysis.
    pub async fn submit(
        &self,
        who: &Principal,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<SubmissionSummary, SubmitError> {
        let tenant = self.own_tenant(who).await?;
        let limits = self.settings.limits;
        let _permit = self
            .intake
            .acquire()
            .await
            .map_err(|_| AppError::internal("intake is shutting down"))?;
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
        let model = submission::ActiveModel {
            id: Set(id.clone()),
            tenant_id: Set(tenant.id),
            plugin_id: Set(m.id.clone()),
            version: Set(m.version.chars().take(128).collect()),
            bundle_sha256: Set(inspected.bundle.sha256.clone()),
            bundle_size: Set(inspected.bundle.size as i64),
            filename: Set(if filename.is_empty() {
                "bundle".into()
            } else {
                filename
            }),
            manifest: Set(manifest_json),
            status: Set("queued".into()),
            decision: Set(None),
            error: Set(None),
            submitted_by: Set(who.me.username.clone()),
            created_at: Set(now),
            finished_at: Set(None),
        };
        let mut a = self.ledger.begin().await?;
        let saved = model.insert(a.txn()).await.map_err(db_error)?;
        submission_blob::ActiveModel {
            submission_id: Set(id.clone()),
            data: Set(bytes),
        }
        .insert(a.txn())
        .await
        .map_err(db_error)?;
        job::ActiveModel {
            kind: Set("analyse".into()),
            submission_id: Set(id.clone()),
            state: Set("queued".into()),
            attempts: Set(0),
            max_attempts: Set(self.settings.max_attempts as i32),
            lease_owner: Set(None),
            lease_expires: Set(None),
            run_after: Set(0),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(a.txn())
        .await
        .map_err(db_error)?;
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
        self.wake.notify_one();
        Ok(summary(&saved, &tenant.slug, 0))
    }

    // ----- reading -----------------------------------------------------------------------------

    /// Submissions the caller may see, newest first.
    pub async fn list(
        &self,
        who: &Principal,
        filter: SubmissionFilter,
    ) -> Result<SubmissionPage, AppError> {
        let limit = filter.limit.unwrap_or(50).clamp(1, 200);
        let offset = filter.offset.unwrap_or(0);
        let mut q = submission::Entity::find();
        let tenants = tenant::Entity::find()
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        if is_staff(who) {
            if let Some(slug) = filter.tenant.as_deref().filter(|s| !s.is_empty()) {
                let t = tenants
                    .iter()
                    .find(|t| t.slug == slug)
                    .ok_or_else(|| AppError::not_found(format!("there is no tenant `{slug}`")))?;
                q = q.filter(submission::Column::TenantId.eq(t.id));
            }
        } else {
            let Some(tid) = who.tenant_id else {
                return Err(AppError::forbidden("you belong to no tenant"));
            };
            q = q.filter(submission::Column::TenantId.eq(tid));
        }
        if let Some(p) = filter.plugin.as_deref().filter(|s| !s.is_empty()) {
            q = q.filter(submission::Column::PluginId.eq(p));
        }
        if let Some(d) = filter.decision.as_deref().filter(|s| !s.is_empty()) {
            if !matches!(d, "pass" | "warn" | "deny") {
                return Err(AppError::invalid(
                    "decision",
                    format!("`{d}` is not a decision: use pass, warn or deny"),
                ));
            }
            q = q.filter(submission::Column::Decision.eq(d));
        }
        let total = q.clone().count(&self.conn).await.map_err(db_error)?;
        let rows = q
            .order_by_desc(submission::Column::CreatedAt)
            .order_by_desc(submission::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let verdicts = verdict::Entity::find()
            .filter(verdict::Column::SubmissionId.is_in(ids))
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let items = rows
            .iter()
            .map(|r| {
                let slug = tenants
                    .iter()
                    .find(|t| t.id == r.tenant_id)
                    .map(|t| t.slug.as_str())
                    .unwrap_or("?");
                let findings = verdicts
                    .iter()
                    .find(|v| v.submission_id == r.id)
                    .map(finding_count)
                    .unwrap_or(0);
                summary(r, slug, findings)
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
        let row = submission::Entity::find_by_id(id.to_owned())
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| not_found(id))?;
        if !is_staff(who) && who.tenant_id != Some(row.tenant_id) {
            return Err(not_found(id));
        }
        let tenant = self.tenant_by_id(row.tenant_id).await?;
        let v = verdict::Entity::find()
            .filter(verdict::Column::SubmissionId.eq(id))
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        let findings = v.as_ref().map(finding_count).unwrap_or(0);
        let facts = v
            .as_ref()
            .and_then(|v| serde_json::from_str::<Value>(&v.facts).ok());
        let verdict = v.as_ref().map(verdict_view);
        // The plugin's versions from this tenant, newest first.
        let versions = submission::Entity::find()
            .filter(submission::Column::TenantId.eq(row.tenant_id))
            .filter(submission::Column::PluginId.eq(row.plugin_id.clone()))
            .order_by_desc(submission::Column::CreatedAt)
            .limit(100)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let ids: Vec<String> = versions.iter().map(|r| r.id.clone()).collect();
        let their_facts = verdict::Entity::find()
            .filter(verdict::Column::SubmissionId.is_in(ids))
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let history = versions
            .iter()
            .map(|r| {
                let f = their_facts
                    .iter()
                    .find(|v| v.submission_id == r.id)
                    .and_then(|v| serde_json::from_str::<Value>(&v.facts).ok());
                let list = |key: &str| -> Vec<String> {
                    f.as_ref()
                        .and_then(|f| f.pointer(&format!("/history/{key}")))
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                        .unwrap_or_default()
                };
                PluginVersion {
                    submission: r.id.clone(),
                    version: r.version.clone(),
                    decision: r.decision.clone(),
                    status: r.status.clone(),
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

    // ----- publisher profiles ------------------------------------------------------------------

    async fn tenant_by_slug(&self, who: &Principal, slug: &str) -> Result<tenant::Model, AppError> {
        let t = tenant::Entity::find()
            .filter(tenant::Column::Slug.eq(slug))
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        match t {
            Some(t) if is_staff(who) || who.tenant_id == Some(t.id) => Ok(t),
            _ => Err(AppError::not_found(format!("there is no tenant `{slug}`"))),
        }
    }

    /// A tenant's publisher profile (partners: their own).
    pub async fn profile(&self, who: &Principal, slug: &str) -> Result<PublisherProfile, AppError> {
        Ok(profile_view(&self.tenant_by_slug(who, slug).await?))
    }

    /// Changes a publisher profile (administrators), recorded in the ledger.
    pub async fn update_profile(
        &self,
        who: &Principal,
        slug: &str,
        input: PublisherProfileUpdate,
    ) -> Result<PublisherProfile, AppError> {
        if who.role() != Role::Admin {
            return Err(AppError::forbidden(
                "only administrators change publisher profiles",
            ));
        }
        let t = self.tenant_by_slug(who, slug).await?;
        if let Some(tier) = &input.tier
            && !matches!(tier.as_str(), "partner" | "community")
        {
            return Err(AppError::invalid(
                "tier",
                format!("`{tier}` is not a tier: use partner or community"),
            ));
        }
        if let Some(list) = &input.egress_allow {
            if list.len() > 100 {
                return Err(AppError::invalid(
                    "egress_allow",
                    "at most 100 host patterns",
                ));
            }
            for p in list {
                let host = p.strip_prefix("*.").unwrap_or(p);
                let ok = p == "*"
                    || plugin::Permission::parse(&format!("net:{host}")).is_ok_and(|perm| {
                        matches!(perm, plugin::Permission::Net { port: None, .. })
                    });
                if !ok {
                    return Err(AppError::invalid(
                        "egress_allow",
                        format!(
                            "`{p}` is not a host pattern: use `*`, `*.example.com` or `api.example.com`"
                        ),
                    ));
                }
            }
        }
        let verified = input.verified.unwrap_or(t.verified);
        let tier = input.tier.clone().unwrap_or_else(|| t.tier.clone());
        let egress = input
            .egress_allow
            .clone()
            .map(|l| l.join(" "))
            .unwrap_or_else(|| t.egress_allow.clone());
        let mut a = self.ledger.begin().await?;
        tenant::Entity::update_many()
            .col_expr(tenant::Column::Verified, verified.into())
            .col_expr(tenant::Column::Tier, tier.clone().into())
            .col_expr(tenant::Column::EgressAllow, egress.clone().into())
            .filter(tenant::Column::Id.eq(t.id))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: Some(t.slug.clone()),
            action: "publisher.update".into(),
            subject: t.slug.clone(),
            details: json!({"verified": verified, "tier": tier, "egress_allow": egress}),
        })
        .await?;
        a.commit().await?;
        Ok(profile_view(&tenant::Model {
            verified,
            tier,
            egress_allow: egress,
            ..t
        }))
    }

    // ----- publisher keys ----------------------------------------------------------------------

    /// Registers a publisher key for the partner's tenant (administrators name the tenant).
    pub async fn register_key(
        &self,
        who: &Principal,
        input: NewPublisherKey,
    ) -> Result<PublisherKey, AppError> {
        let tenant = match (who.role(), input.tenant.as_deref()) {
            (Role::Admin, Some(slug)) => tenant::Entity::find()
                .filter(tenant::Column::Slug.eq(slug))
                .one(&self.conn)
                .await
                .map_err(db_error)?
                .ok_or_else(|| AppError::not_found(format!("there is no tenant `{slug}`")))?,
            (Role::Admin, None) => {
                return Err(AppError::invalid(
                    "tenant",
                    "name the tenant whose key this is",
                ));
            }
            _ => self.own_tenant(who).await?,
        };
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::invalid(
                "name",
                "give the key a name of 1 to 100 characters",
            ));
        }
        let key = PublicKey::from_pem(input.public_key_pem.trim()).map_err(|e| {
            AppError::invalid(
                "public_key_pem",
                format!(
                    "not a P-256 public key in PEM form ({e}); `stellar plugin keygen` writes one"
                ),
            )
        })?;
        let key_id = key.id().0;
        let now = Utc::now();
        let mut a = self.ledger.begin().await?;
        let saved = publisher_key::ActiveModel {
            tenant_id: Set(tenant.id),
            key_id: Set(key_id.clone()),
            name: Set(name.clone()),
            public_pem: Set(key.to_pem()),
            created_by: Set(who.me.username.clone()),
            created_at: Set(now),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(a.txn())
        .await
        .map_err(|e| match db_error(e) {
            AppError::Conflict { .. } => AppError::conflict(format!(
                "the key {key_id} is already registered for {}",
                tenant.slug
            )),
            other => other,
        })?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: Some(tenant.slug.clone()),
            action: "publisher-key.create".into(),
            subject: key_id,
            details: json!({"name": name}),
        })
        .await?;
        a.commit().await?;
        Ok(key_view(&saved, &tenant.slug))
    }

    /// The publisher keys the caller may see.
    pub async fn list_keys(&self, who: &Principal) -> Result<Vec<PublisherKey>, AppError> {
        let tenants = tenant::Entity::find()
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let mut q = publisher_key::Entity::find();
        if !is_staff(who) {
            let Some(tid) = who.tenant_id else {
                return Err(AppError::forbidden("you belong to no tenant"));
            };
            q = q.filter(publisher_key::Column::TenantId.eq(tid));
        }
        let rows = q
            .order_by_asc(publisher_key::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|k| {
                let slug = tenants
                    .iter()
                    .find(|t| t.id == k.tenant_id)
                    .map(|t| t.slug.as_str())
                    .unwrap_or("?");
                key_view(k, slug)
            })
            .collect())
    }

    // ----- the queue ---------------------------------------------------------------------------

    /// Jobs waiting to run.
    pub async fn queue_depth(&self) -> Result<u64, AppError> {
        job::Entity::find()
            .filter(job::Column::State.eq("queued"))
            .count(&self.conn)
            .await
            .map_err(db_error)
    }

    /// Starts the workers of this instance. They stop when `stop` fires.
    pub fn spawn_workers(
        &self,
        instance: &str,
        workers: usize,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..workers)
            .map(|i| {
                let me = self.clone();
                let owner = format!("{instance}/{i}");
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    loop {
                        if *stop.borrow() {
                            break;
                        }
                        let worked = match me.work_once(&owner).await {
                            Ok(w) => w,
                            Err(e) => {
                                tracing::warn!(worker = %owner, error = %e, "worker step failed");
                                false
                            }
                        };
                        if worked {
                            continue;
                        }
                        tokio::select! {
                            _ = me.wake.notified() => {}
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = stop.changed() => {}
                        }
                    }
                })
            })
            .collect()
    }

    /// Ends jobs whose lease ran out on their last attempt (the worker died each time).
    async fn sweep(&self) -> Result<(), AppError> {
        let now = now_ms();
        let dead = job::Entity::find()
            .filter(job::Column::State.eq("running"))
            .filter(job::Column::LeaseExpires.lt(now))
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        for j in dead.into_iter().filter(|j| j.attempts >= j.max_attempts) {
            let error = format!(
                "the analysis stopped without an answer {} times (the worker was lost each time); giving up",
                j.attempts
            );
            self.fail(&j, &error, true).await?;
        }
        Ok(())
    }

    /// Claims one job, if any is due. The claim is one statement, so two workers never hold
    /// the same job while its lease lasts.
    async fn claim(&self, owner: &str) -> Result<Option<job::Model>, AppError> {
        let now = now_ms();
        let lease = now + self.settings.lease.as_millis() as i64;
        let backend = self.conn.get_database_backend();
        let sql = match backend {
            DatabaseBackend::Postgres => {
                "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires = $2, \
                 attempts = attempts + 1, updated_at = $3 \
                 WHERE id = (SELECT id FROM jobs \
                   WHERE ((state = 'queued' AND run_after <= $4) \
                      OR (state = 'running' AND lease_expires < $4)) \
                     AND attempts < max_attempts \
                   ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING id"
            }
            _ => {
                "UPDATE jobs SET state = 'running', lease_owner = ?, lease_expires = ?, \
                 attempts = attempts + 1, updated_at = ? \
                 WHERE id = (SELECT id FROM jobs \
                   WHERE ((state = 'queued' AND run_after <= ?) \
                      OR (state = 'running' AND lease_expires < ?)) \
                     AND attempts < max_attempts \
                   ORDER BY id LIMIT 1) \
                 RETURNING id"
            }
        };
        let mut values: Vec<sea_orm::Value> =
            vec![owner.into(), lease.into(), Utc::now().into(), now.into()];
        if backend != DatabaseBackend::Postgres {
            values.push(now.into());
        }
        let row = self
            .conn
            .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let id: i32 = row.try_get("", "id").map_err(db_error)?;
        job::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(db_error)
    }

    /// Queue upkeep, run by the periodic housekeeping of every instance (not on each claim):
    /// ends jobs whose workers died on their last attempt and updates the queue-depth gauge.
    pub async fn upkeep(&self) -> Result<(), AppError> {
        self.sweep().await?;
        metrics::gauge!("stellar_jobs_queued").set(self.queue_depth().await? as f64);
        Ok(())
    }

    /// Runs one due job; `false` if there was none.
    pub async fn work_once(&self, owner: &str) -> Result<bool, AppError> {
        let Some(j) = self.claim(owner).await? else {
            return Ok(false);
        };
        let started = Instant::now();
        match self.analyse(&j).await {
            Ok(decision) => {
                metrics::histogram!("stellar_analysis_duration_seconds")
                    .record(started.elapsed().as_secs_f64());
                tracing::info!(submission = %j.submission_id, %decision, "verdict");
            }
            Err(e) => {
                let last = j.attempts >= j.max_attempts;
                tracing::warn!(submission = %j.submission_id, attempt = j.attempts, error = %e, "analysis failed");
                self.fail(&j, &e.to_string(), last).await?;
            }
        }
        Ok(true)
    }

    /// Records a failed attempt: back in the queue with a back-off, or failed for good.
    async fn fail(&self, j: &job::Model, error: &str, last: bool) -> Result<(), AppError> {
        let now = Utc::now();
        if !last {
            let backoff = 1000i64 << j.attempts.clamp(0, 10);
            job::Entity::update_many()
                .col_expr(job::Column::State, "queued".into())
                .col_expr(job::Column::RunAfter, (now_ms() + backoff).into())
                .col_expr(job::Column::LastError, Some(error.to_owned()).into())
                .col_expr(job::Column::UpdatedAt, now.into())
                .filter(job::Column::Id.eq(j.id))
                .exec(&self.conn)
                .await
                .map_err(db_error)?;
            return Ok(());
        }
        let sub = submission::Entity::find_by_id(j.submission_id.clone())
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        let slug = match &sub {
            Some(s) => Some(self.tenant_by_id(s.tenant_id).await?.slug),
            None => None,
        };
        let mut a = self.ledger.begin().await?;
        job::Entity::update_many()
            .col_expr(job::Column::State, "failed".into())
            .col_expr(job::Column::LastError, Some(error.to_owned()).into())
            .col_expr(job::Column::UpdatedAt, now.into())
            .filter(job::Column::Id.eq(j.id))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        submission::Entity::update_many()
            .col_expr(submission::Column::Status, "failed".into())
            .col_expr(submission::Column::Error, Some(error.to_owned()).into())
            .col_expr(submission::Column::FinishedAt, Some(now).into())
            .filter(submission::Column::Id.eq(j.submission_id.clone()))
            .filter(submission::Column::Status.ne("done"))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        a.append(Record {
            actor: "stellar-analysis".into(),
            tenant: slug,
            action: "submission.failed".into(),
            subject: j.submission_id.clone(),
            details: json!({"error": error, "attempts": j.attempts}),
        })
        .await?;
        a.commit().await?;
        metrics::counter!("stellar_submissions_total", "decision" => "failed").increment(1);
        Ok(())
    }

    /// The previous accepted version of the plugin (pass or warn), before this submission.
    async fn previous(&self, s: &submission::Model) -> Result<Option<Previous>, AppError> {
        let prev = submission::Entity::find()
            .filter(submission::Column::TenantId.eq(s.tenant_id))
            .filter(submission::Column::PluginId.eq(s.plugin_id.clone()))
            .filter(submission::Column::Decision.is_in(["pass", "warn"]))
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
            .and_then(|v| serde_json::from_str::<Value>(&v.facts).ok());
        let permissions = facts
            .and_then(|f| f.get("permissions").cloned())
            .and_then(|p| serde_json::from_value(p).ok())
            .unwrap_or_default();
        Ok(Some(Previous {
            version: prev.version,
            permissions,
        }))
    }

    /// Analyses and judges one submission, and stores its verdict.
    async fn analyse(&self, j: &job::Model) -> Result<String, AppError> {
        let s = submission::Entity::find_by_id(j.submission_id.clone())
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
            let text = analysis.facts.to_string();
            let verdict = pack
                .pack
                .evaluate_json(&text, &dsl::EvalOptions::new(today))
                .map_err(|e| format!("the facts do not fit the policy schema: {e}"))?;
            Ok::<_, String>((analysis.facts, verdict))
        })
        .await
        .map_err(|e| AppError::internal(format!("the analysis stopped: {e}")))?
        .map_err(AppError::internal)?;
        let decision = format!("{:?}", verdict.decision).to_lowercase();
        let verdict_json = json!({
            "decision": decision,
            "findings": verdict.findings,
            "errors": verdict.errors,
        });
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
                decision: Set(decision.clone()),
                verdict: Set(verdict_json.to_string()),
                facts: Set(facts.to_string()),
                attestation_id: Set(None),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(a.txn())
            .await
            .map_err(db_error)?;
            submission::Entity::update_many()
                .col_expr(submission::Column::Status, "done".into())
                .col_expr(submission::Column::Decision, Some(decision.clone()).into())
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
                    "decision": decision,
                    "bundle_sha256": s.bundle_sha256,
                    "pack": {"name": self.pack.name, "version": self.pack.version, "sha256": self.pack.sha256},
                    "findings": fired,
                }),
            })
            .await?;
        }
        job::Entity::update_many()
            .col_expr(job::Column::State, "done".into())
            .col_expr(job::Column::UpdatedAt, now.into())
            .filter(job::Column::Id.eq(j.id))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        a.commit().await?;
        if exists {
            return Ok(decision);
        }
        metrics::counter!("stellar_submissions_total", "decision" => decision.clone()).increment(1);
        for f in &verdict.findings {
            metrics::counter!(
                "stellar_findings_total",
                "rule" => f.rule.clone(),
                "effect" => format!("{:?}", f.effect).to_lowercase()
            )
            .increment(1);
        }
        self.sign_verdict(&s, &tenant.slug, &decision, &verdict_json, &facts)
            .await;
        Ok(decision)
    }

    /// Signs the verdict (in-toto statement about the bundle, DSSE envelope, validator key).
    /// When the validator key is offline this queues a signing request instead.
    async fn sign_verdict(
        &self,
        s: &submission::Model,
        tenant: &str,
        decision: &str,
        verdict_json: &Value,
        facts: &Value,
    ) {
        let findings: Vec<Value> = verdict_json["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| json!({"rule": f["rule"], "effect": f["effect"], "severity": f["severity"]}))
                    .collect()
            })
            .unwrap_or_default();
        let statement = InTotoStatement::new(
            vec![Subject::with_sha256(
                format!("{}@{}.bundle", s.plugin_id, s.version),
                s.bundle_sha256.clone(),
            )],
            "https://stellar.dev/attestations/verdict/v1",
            json!({
                "submission": s.id,
                "plugin": s.plugin_id,
                "version": s.version,
                "publisher": tenant,
                "decision": decision,
                "pack": {"name": self.pack.name, "version": self.pack.version, "sha256": self.pack.sha256},
                "findings": findings,
                "factsSha256": plugin::bundle::sha256_hex(facts.to_string().as_bytes()),
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

fn finding_count(v: &verdict::Model) -> u32 {
    serde_json::from_str::<Value>(&v.verdict)
        .ok()
        .and_then(|j| j["findings"].as_array().map(|a| a.len() as u32))
        .unwrap_or(0)
}

fn summary(r: &submission::Model, tenant: &str, findings: u32) -> SubmissionSummary {
    SubmissionSummary {
        id: r.id.clone(),
        tenant: tenant.to_owned(),
        plugin: r.plugin_id.clone(),
        version: r.version.clone(),
        status: r.status.clone(),
        decision: r.decision.clone(),
        findings,
        bundle_sha256: r.bundle_sha256.clone(),
        filename: r.filename.clone(),
        submitted_by: r.submitted_by.clone(),
        created_at: timestamp(r.created_at),
        finished_at: r.finished_at.map(timestamp),
        error: r.error.clone(),
    }
}

fn verdict_view(v: &verdict::Model) -> SubmissionVerdict {
    let j: Value = serde_json::from_str(&v.verdict).unwrap_or_default();
    SubmissionVerdict {
        decision: v.decision.clone(),
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
    }
}

fn profile_view(t: &tenant::Model) -> PublisherProfile {
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

fn key_view(k: &publisher_key::Model, tenant: &str) -> PublisherKey {
    PublisherKey {
        key_id: k.key_id.clone(),
        tenant: tenant.to_owned(),
        name: k.name.clone(),
        public_key_pem: k.public_pem.clone(),
        created_by: k.created_by.clone(),
        created_at: timestamp(k.created_at),
        revoked_at: k.revoked_at.map(timestamp),
    }
}

#[async_trait::async_trait]
impl app::api::backend::SubmissionsBackend for Submissions {
    async fn list_submissions(
        &self,
        who: &Principal,
        filter: SubmissionFilter,
    ) -> Result<SubmissionPage, AppError> {
        self.list(who, filter).await
    }

    async fn submission(&self, who: &Principal, id: &str) -> Result<SubmissionDetail, AppError> {
        self.get(who, id).await
    }
}
