//! Analysed rollouts at work: a rollout stage with rollback rules is judged interval by
//! interval on what the hosts reported ([`delivery::rollout`]), and moves only by its verdicts
//! and by people's controls (promote, pause, resume, retry, yank).
//!
//! **Invariants.**
//! - Each judged interval is one transaction: its row (verdict, facts, the rules that fired),
//!   the rollout's new state, the release's `seq` and, for a step, rollback, pause or
//!   completion, the ledger entry; a job of an older `seq` does nothing, so no interval is
//!   judged twice and no step is taken twice, whichever instance runs it and however often it
//!   crashes.
//! - Both cohorts are measured over the same window; hosts are assigned by a stable hash of
//!   host and release, exactly as the channel assigns them.
//! - A rollback is a verdict: the deny rules with their evidence, signed by the pipeline-step
//!   key as an in-toto statement, kept with the release and in the ledger, counted in
//!   `stellar_rollbacks_total{plugin,rule}`; it never waits for the calendar or a person.

use app::api::backend::Principal;
use app::authz::{Action, authorize};
use app::delivery::{
    CohortNumbers, FiredRule, ReleaseDetail, RolloutControl, RolloutInterval, RolloutPhase,
    RolloutView,
};
use app::error::AppError;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use delivery::engine::{Analysed, ReleaseState, StageState};
use delivery::rollout::{self, Cohort, Context, Fired, Outcome, Phase, Plan, Progress, Sample};
use delivery::spec::{Pipeline, StageKind};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::json;
use trust::dsse::{Envelope, Statement, Subject};

use super::documents::{self, DocKind};
use super::{Releases, Then, state_of};
use crate::db::entities::{fleet_report, release, rollout as rollout_row, rollout_interval};
use crate::services::db_error;
use crate::services::fleet::{Fleet, histogram_of, stable_of};
use crate::services::ledger_store::{Appender, Record};
use crate::services::webhooks::Event;

/// The predicate type of a signed rollback verdict.
pub const ROLLBACK_PREDICATE: &str = "https://stellar.dev/attestations/rollback/v1";
/// Most judged intervals a rollout view carries (the newest).
const MAX_SHOWN_INTERVALS: u64 = 288;
/// Longest reason a person gives for a control.
const MAX_REASON: usize = 2000;

fn phase_of(row: &rollout_row::Model) -> Result<Phase, AppError> {
    Phase::parse(&row.phase).ok_or_else(|| {
        AppError::internal(format!(
            "the rollout of release {} has the unknown phase `{}`",
            row.release_id, row.phase
        ))
    })
}

fn wire_phase(p: Phase) -> RolloutPhase {
    match p {
        Phase::Running => RolloutPhase::Running,
        Phase::Paused => RolloutPhase::Paused,
        Phase::RolledBack => RolloutPhase::RolledBack,
        Phase::Complete => RolloutPhase::Complete,
    }
}

fn secs(d: TimeDelta) -> u64 {
    d.num_seconds().max(0) as u64
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The rollout plan of a release's stage, if it is an analysed rollout.
pub(super) fn plan_of(pipeline: &Pipeline, stage: usize) -> Option<Plan> {
    let kind = &pipeline.stages.get(stage)?.kind;
    match kind {
        StageKind::Rollout {
            analysis: Some(_), ..
        } => Plan::of(kind),
        _ => None,
    }
}

fn progress_of(row: &rollout_row::Model, phase: Phase) -> Progress {
    Progress {
        step: row.step.max(0) as usize,
        step_started: row.step_started.max(0) as u64,
        passing_since: row.passing_since.max(0) as u64,
        inconclusive: row.inconclusive.max(0) as u32,
        phase,
    }
}

fn numbers(f: &serde_json::Value) -> CohortNumbers {
    let n = |k: &str| f[k].as_u64().unwrap_or(0);
    CohortNumbers {
        version: f["version"].as_str().unwrap_or_default().to_owned(),
        hosts: n("hosts"),
        silent_hosts: n("silent_hosts"),
        samples: n("samples"),
        errors: n("errors"),
        crashes: n("crashes"),
        error_rate_bp: n("error_rate_bp"),
        crash_rate_bp: n("crash_rate_bp"),
        p95_ms: n("p95_ms"),
    }
}

impl Releases {
    /// Where an analysed rollout stands, for the engine.
    pub(super) async fn analysed<C: ConnectionTrait>(
        &self,
        conn: &C,
        r: &release::Model,
    ) -> Result<Option<Analysed>, AppError> {
        let Some(row) = rollout_row::Entity::find_by_id(r.id.clone())
            .one(conn)
            .await
            .map_err(db_error)?
            .filter(|row| row.stage == r.stage)
        else {
            return Ok(None);
        };
        Ok(Some(Analysed {
            phase: phase_of(&row)?,
            next_at: row.next_at,
            paused_because: row.paused_because.clone(),
            step: row.step.max(0) as usize,
        }))
    }

    /// The first step of an analysed rollout: its state starts now (again, after a retry).
    pub(super) async fn begin_rollout(
        &self,
        a: &Appender,
        r: &release::Model,
        stage: usize,
        plan: &Plan,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let existing = rollout_row::Entity::find_by_id(r.id.clone())
            .one(a.txn())
            .await
            .map_err(db_error)?;
        let intervals = existing.as_ref().map_or(0, |e| e.intervals);
        let row = rollout_row::ActiveModel {
            release_id: Set(r.id.clone()),
            stage: Set(stage as i32),
            phase: Set(Phase::Running.as_str().into()),
            started_at: Set(now),
            step: Set(0),
            weight: Set(i32::from(plan.weight(0))),
            step_started: Set(0),
            passing_since: Set(0),
            inconclusive: Set(0),
            intervals: Set(intervals),
            next_at: Set(now + TimeDelta::seconds(plan.interval_secs as i64)),
            paused_because: Set(None),
            updated_at: Set(now),
        };
        if existing.is_some() {
            rollout_row::Entity::update(row)
                .exec(a.txn())
                .await
                .map_err(db_error)?;
        } else {
            rollout_row::Entity::insert(row)
                .exec_without_returning(a.txn())
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    pub(super) fn gauges(&self, plugin: &str, step: usize, weight: u8) {
        metrics::gauge!("stellar_rollout_step", "plugin" => plugin.to_owned()).set(step as f64);
        metrics::gauge!("stellar_rollout_weight", "plugin" => plugin.to_owned())
            .set(f64::from(weight));
    }

    /// Both cohorts over the window `(from, now]`.
    async fn cohorts<C: ConnectionTrait>(
        &self,
        conn: &C,
        r: &release::Model,
        baseline: Option<&str>,
        weight: u8,
        (from, now): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<(Cohort, Cohort), AppError> {
        let hosts = Fleet::live_hosts(conn, from).await?;
        let on_canary = hosts
            .iter()
            .filter(|h| rollout::in_canary(h, &r.id, weight))
            .count() as u64;
        let on_baseline = if baseline.is_some() {
            hosts.len() as u64 - on_canary
        } else {
            0
        };
        let mut canary = Cohort::new(&r.version, on_canary);
        let mut base = Cohort::new(baseline.unwrap_or(""), on_baseline);
        let rows = fleet_report::Entity::find()
            .filter(fleet_report::Column::PluginId.eq(r.plugin_id.clone()))
            .filter(
                fleet_report::Column::IntervalStart
                    .gt(from.timestamp() - delivery::fleet::MAX_INTERVAL_SECS as i64),
            )
            .filter(fleet_report::Column::IntervalStart.lte(now.timestamp()))
            .all(conn)
            .await
            .map_err(db_error)?;
        for row in rows {
            let end = row.interval_start + i64::from(row.interval_secs);
            if end <= from.timestamp() || end > now.timestamp() {
                continue;
            }
            let sample = Sample {
                host: row.host,
                version: row.version,
                interval: 0,
                calls: row.calls.max(0) as u64,
                errors: row.errors.max(0) as u64,
                crashes: row.crashes.max(0) as u64,
                latency: histogram_of(&row.latency),
            };
            if sample.version == canary.version {
                canary.add(&sample);
            } else if baseline == Some(sample.version.as_str()) {
                base.add(&sample);
            }
        }
        Ok((canary, base))
    }

    /// Judges the interval that ends now and applies the verdict (the engine's `Analyse`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn analyse(
        &self,
        a: &mut Appender,
        r: &release::Model,
        pipeline: &Pipeline,
        stage: usize,
        promote: bool,
        now: DateTime<Utc>,
        tenant: Option<String>,
    ) -> Result<(), AppError> {
        let plan = plan_of(pipeline, stage).ok_or_else(|| {
            AppError::internal(format!(
                "stage {stage} of release {} is not an analysed rollout",
                r.id
            ))
        })?;
        let row = match rollout_row::Entity::find_by_id(r.id.clone())
            .one(a.txn())
            .await
            .map_err(db_error)?
        {
            Some(row) => row,
            None => {
                self.begin_rollout(a, r, stage, &plan, now).await?;
                return self.advance_in(a, r, |_| {}, Then::Now).await.map(|_| ());
            }
        };
        let phase = phase_of(&row)?;
        if phase != Phase::Running {
            return Ok(());
        }
        let progress = progress_of(&row, phase);
        let now_s = secs(now - row.started_at);
        let weight = plan.weight(progress.step);
        let stable = stable_of(a.txn(), &r.plugin_id, Some(&r.id)).await?;
        let baseline = stable.as_ref().map(|s| s.version.clone());
        // The window, from the step's start at the earliest: a new step compares only what
        // was reported since it began (hosts changed cohorts then).
        let step_began = row.started_at + TimeDelta::seconds(progress.step_started as i64);
        let from = (now - TimeDelta::seconds(plan.window_secs as i64)).max(step_began);
        let (canary, base) = self
            .cohorts(a.txn(), r, baseline.as_deref(), weight, (from, now))
            .await?;
        let context = Context {
            plugin: &r.plugin_id,
            publisher: tenant.as_deref().unwrap_or(""),
            first_release: stable.is_none(),
            plan: &plan,
            progress,
            now: now_s,
        };
        let facts = rollout::facts(&context, &canary, &base);
        let (judgement, fired) = rollout::judge(
            &self.rollback.pack,
            &dsl::EvalOptions::new(now.date_naive()),
            &facts,
        )
        .map_err(|e| AppError::internal(format!("the rollback rules could not judge: {e}")))?;
        let (mut next, outcome) = plan.next(progress, now_s, judgement);
        let mut outcome = outcome.unwrap_or(Outcome::Stay);
        let mut held_by_calendar = false;
        if !promote && matches!(outcome, Outcome::Advance | Outcome::Complete) {
            // The calendar is closed: judged all the same, but the step waits.
            next = progress;
            outcome = Outcome::Stay;
            held_by_calendar = true;
        }
        let seq = row.intervals + 1;
        rollout_interval::Entity::insert(rollout_interval::ActiveModel {
            release_id: Set(r.id.clone()),
            seq: Set(seq),
            at: Set(now),
            step: Set(progress.step as i32 + 1),
            weight: Set(i32::from(weight)),
            judgement: Set(judgement.as_str().into()),
            outcome: Set(outcome.as_str().into()),
            fired: Set(serde_json::to_string(&fired).unwrap_or_else(|_| "[]".into())),
            facts: Set(facts.to_string()),
            ..Default::default()
        })
        .exec_without_returning(a.txn())
        .await
        .map_err(db_error)?;
        let paused_because = (outcome == Outcome::Pause).then(|| {
            let why = fired
                .first()
                .map(|f| format!(" (last: {})", f.message))
                .unwrap_or_default();
            format!(
                "{} inconclusive intervals in a row, the limit{why}",
                next.inconclusive
            )
        });
        let new_weight = plan.weight(next.step);
        rollout_row::Entity::update(rollout_row::ActiveModel {
            release_id: sea_orm::ActiveValue::Unchanged(r.id.clone()),
            phase: Set(next.phase.as_str().into()),
            step: Set(next.step as i32),
            weight: Set(i32::from(if next.phase == Phase::Complete {
                100
            } else {
                new_weight
            })),
            step_started: Set(next.step_started as i64),
            passing_since: Set(next.passing_since as i64),
            inconclusive: Set(next.inconclusive as i32),
            intervals: Set(seq),
            next_at: Set(now + TimeDelta::seconds(plan.interval_secs as i64)),
            paused_because: Set(paused_because.clone()),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(a.txn())
        .await
        .map_err(db_error)?;
        metrics::counter!("stellar_rollout_intervals_total", "plugin" => r.plugin_id.clone(), "outcome" => outcome.as_str())
            .increment(1);
        let record = |action: &str, details: serde_json::Value| Record {
            actor: "rollback rules".into(),
            tenant: tenant.clone(),
            action: action.into(),
            subject: format!("release:{}", r.id),
            details,
        };
        let summary = json!({
            "interval": seq, "step": progress.step + 1, "weight": weight,
            "judgement": judgement.as_str(), "outcome": outcome.as_str(),
            "rules": fired.iter().map(|f| f.rule.clone()).collect::<Vec<_>>(),
            "canary": facts["canary"], "baseline": facts["baseline"],
        });
        match outcome {
            Outcome::Advance => {
                // The engine takes the step the rollout reached (its ledger entry, webhook
                // and gauges), as it does a person's promotion.
                a.append(record("rollout.advance", summary)).await?;
                self.advance_in(a, r, |_| {}, Then::Now).await?;
            }
            Outcome::Complete => {
                a.append(record("rollout.complete", summary)).await?;
                self.advance_in(a, r, |m| m.waiting = Set(None), Then::Now)
                    .await?;
                self.gauges(&r.plugin_id, next.step + 1, 100);
            }
            Outcome::RollBack | Outcome::Pause => {
                if outcome == Outcome::Pause {
                    a.append(record("rollout.pause", summary)).await?;
                }
                self.advance_in(a, r, |m| m.waiting = Set(None), Then::Now)
                    .await?;
            }
            Outcome::Hold | Outcome::Stay => {
                let _ = held_by_calendar;
                self.advance_in(a, r, |_| {}, Then::Now).await?;
            }
        }
        Ok(())
    }

    /// The rules denied: the verdict is signed and kept, and the release ends rolled back (the
    /// channel returns every host to the previous GA version, or removes the plugin).
    pub(super) async fn roll_back(
        &self,
        a: &mut Appender,
        r: &release::Model,
        pipeline: &Pipeline,
        stage: usize,
        now: DateTime<Utc>,
        tenant: Option<String>,
    ) -> Result<(), AppError> {
        let last = rollout_interval::Entity::find()
            .filter(rollout_interval::Column::ReleaseId.eq(r.id.clone()))
            .order_by_desc(rollout_interval::Column::Seq)
            .one(a.txn())
            .await
            .map_err(db_error)?
            .ok_or_else(|| {
                AppError::internal(format!("release {} rolls back without a verdict", r.id))
            })?;
        let fired: Vec<Fired> = serde_json::from_str(&last.fired).unwrap_or_default();
        let facts: serde_json::Value = serde_json::from_str(&last.facts).unwrap_or_default();
        let deny: Vec<&Fired> = fired.iter().filter(|f| f.effect == "deny").collect();
        let plan = plan_of(pipeline, stage);
        let baseline = facts["baseline"]["version"]
            .as_str()
            .filter(|v| !v.is_empty());
        let statement = Statement::new(
            vec![Subject::with_sha256(
                format!("{}-{}.tar.gz", r.plugin_id, r.version),
                r.bundle_sha256.clone(),
            )],
            ROLLBACK_PREDICATE,
            json!({
                "release": r.id,
                "plugin": r.plugin_id,
                "version": r.version,
                "returnTo": baseline,
                "interval": last.seq,
                "step": last.step,
                "weight": last.weight,
                "windowSecs": plan.as_ref().map(|p| p.window_secs),
                "judgedAt": at(last.at),
                "rules": deny,
                "facts": facts,
                "policy": {"name": self.rollback.name, "version": self.rollback.version, "sha256": self.rollback.sha256},
            }),
        );
        let key = self.step_key(a.txn(), &r.id).await?;
        let envelope =
            documents::with_intoto_key_id(Envelope::sign_statement(&statement, &key), key.public());
        let name = format!("statements/rollback-{}.json", last.seq);
        documents::store(
            a.txn(),
            &r.id,
            DocKind::Statement,
            &name,
            &trust::intoto::intoto_key_id(key.public()),
            &envelope,
            now,
        )
        .await?;
        let rules: Vec<String> = deny.iter().map(|f| f.rule.clone()).collect();
        let first = deny
            .first()
            .map(|f| format!("{}: {}", f.rule, f.message))
            .unwrap_or_else(|| "the rollback rules denied".into());
        let target = match baseline {
            Some(v) => format!("every host returns to {v}"),
            None => "the plugin is removed from every host (its first release)".into(),
        };
        let reason = format!(
            "rolled back at step {} ({} %) by the rollback rules: {first}; {target}",
            last.step, last.weight
        );
        self.set_stage(
            a,
            &r.id,
            stage,
            StageState::Stopped,
            None,
            Some(now),
            Some("rollback rules".into()),
            Some(reason.clone()),
        )
        .await?;
        a.append(Record {
            actor: "rollback rules".into(),
            tenant: tenant.clone(),
            action: "rollout.rollback".into(),
            subject: format!("release:{}", r.id),
            details: json!({
                "rules": rules, "statement": name, "interval": last.seq,
                "canary": facts["canary"], "baseline": facts["baseline"],
                "return_to": baseline,
            }),
        })
        .await?;
        self.end_in(a, r, ReleaseState::RolledBack, &reason, "rollback rules")
            .await?;
        for rule in &rules {
            metrics::counter!("stellar_rollbacks_total", "plugin" => r.plugin_id.clone(), "rule" => rule.clone())
                .increment(1);
        }
        if rules.is_empty() {
            metrics::counter!("stellar_rollbacks_total", "plugin" => r.plugin_id.clone(), "rule" => "unknown")
                .increment(1);
        }
        self.gauges(&r.plugin_id, 0, 0);
        Ok(())
    }

    /// The rollout of a release as the portal and the API show it.
    pub(super) async fn rollout_view<C: ConnectionTrait>(
        &self,
        conn: &C,
        r: &release::Model,
    ) -> Result<Option<RolloutView>, AppError> {
        let Some(row) = rollout_row::Entity::find_by_id(r.id.clone())
            .one(conn)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let spec = self.pipelines.version(r.spec_version).await?;
        let plan = spec
            .spec
            .pipelines
            .iter()
            .find(|p| p.name == r.pipeline)
            .and_then(|p| plan_of(p, row.stage.max(0) as usize));
        let Some(plan) = plan else {
            return Ok(None);
        };
        let phase = phase_of(&row)?;
        // The newest intervals (a day at five minutes), oldest first.
        let mut intervals = rollout_interval::Entity::find()
            .filter(rollout_interval::Column::ReleaseId.eq(r.id.clone()))
            .order_by_desc(rollout_interval::Column::Seq)
            .limit(MAX_SHOWN_INTERVALS)
            .all(conn)
            .await
            .map_err(db_error)?;
        intervals.reverse();
        let intervals: Vec<RolloutInterval> = intervals
            .into_iter()
            .map(|i| {
                let facts: serde_json::Value = serde_json::from_str(&i.facts).unwrap_or_default();
                let fired: Vec<Fired> = serde_json::from_str(&i.fired).unwrap_or_default();
                RolloutInterval {
                    seq: i.seq.max(0) as u32,
                    at: at(i.at),
                    step: i.step.max(0) as u32,
                    weight: i.weight.clamp(0, 100) as u8,
                    judgement: i.judgement,
                    outcome: i.outcome,
                    canary: numbers(&facts["canary"]),
                    baseline: numbers(&facts["baseline"]),
                    fired: fired
                        .into_iter()
                        .map(|f| FiredRule {
                            rule: f.rule,
                            effect: f.effect,
                            message: f.message,
                            evidence: f.evidence,
                            fix: f.fix,
                        })
                        .collect(),
                }
            })
            .collect();
        let baseline_version = intervals
            .last()
            .map(|i| i.baseline.version.clone())
            .filter(|v| !v.is_empty());
        let running = phase == Phase::Running && state_of(r)? == ReleaseState::Running;
        Ok(Some(RolloutView {
            phase: wire_phase(phase),
            step: row.step.max(0) as u32 + 1,
            steps: plan.steps.len() as u32,
            weight: row.weight.clamp(0, 100) as u8,
            baseline_version,
            next_at: running.then(|| at(row.next_at)),
            paused_because: row.paused_because,
            interval_secs: plan.interval_secs,
            window_secs: plan.window_secs,
            min_samples: plan.min_samples,
            intervals_total: row.intervals.max(0) as u32,
            intervals,
        }))
    }

    /// The controls a caller may use on a release now.
    pub(super) fn controls_for(
        who: &Principal,
        r: &release::Model,
        phase: Option<Phase>,
    ) -> Vec<RolloutControl> {
        if authorize(who, Action::ControlRollout).is_err() {
            return Vec::new();
        }
        let state = ReleaseState::parse(&r.state);
        let mut out = Vec::new();
        match (state, phase) {
            (Some(ReleaseState::Running), Some(Phase::Running)) => {
                out.extend([RolloutControl::Promote, RolloutControl::Pause]);
            }
            (Some(ReleaseState::Running), Some(Phase::Paused)) => {
                out.extend([RolloutControl::Promote, RolloutControl::Resume]);
            }
            (Some(ReleaseState::RolledBack), Some(_)) => out.push(RolloutControl::Retry),
            (Some(ReleaseState::Succeeded), _) => out.push(RolloutControl::Yank),
            _ => {}
        }
        out
    }

    /// Applies a person's control to a release's rollout, with a reason that is ledgered.
    pub async fn control(
        &self,
        who: &Principal,
        id: &str,
        control: RolloutControl,
        reason: &str,
    ) -> Result<ReleaseDetail, AppError> {
        authorize(who, Action::ControlRollout)?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON {
            return Err(AppError::invalid(
                "reason",
                format!(
                    "`{}` needs a reason (up to {MAX_REASON} characters): it is shown on the release and kept in the ledger",
                    control.as_str()
                ),
            ));
        }
        let now = self.clock.now();
        let a = self.ledger.begin().await?;
        let r = self.row(a.txn(), id).await?;
        let state = state_of(&r)?;
        let row = rollout_row::Entity::find_by_id(r.id.clone())
            .one(a.txn())
            .await
            .map_err(db_error)?;
        let phase = row.as_ref().map(phase_of).transpose()?;
        if !Self::controls_for(who, &r, phase).contains(&control) {
            let now_what = match (state, phase) {
                (ReleaseState::Running, None) => {
                    "its rollout has not begun (or its pipeline has no analysed rollout)".to_owned()
                }
                (s, Some(p)) => format!("it is {} and its rollout {}", s.as_str(), p.as_str()),
                (s, None) => format!("it is {}", s.as_str()),
            };
            return Err(AppError::conflict(format!(
                "release {id} cannot be told to {} now: {now_what}",
                control.as_str()
            )));
        }
        let tenant = self.tenant_slug(r.tenant_id).await?;
        let spec = self.pipelines.version(r.spec_version).await?;
        let pipeline = spec
            .spec
            .pipelines
            .iter()
            .find(|p| p.name == r.pipeline)
            .cloned()
            .ok_or_else(|| AppError::internal("the release's pipeline is missing"))?;
        let mut details = json!({"reason": reason, "by": who.me.username});
        match control {
            RolloutControl::Promote | RolloutControl::Pause | RolloutControl::Resume => {
                let row = row.ok_or_else(|| AppError::internal("no rollout state"))?;
                let stage = row.stage.max(0) as usize;
                let plan = plan_of(&pipeline, stage)
                    .ok_or_else(|| AppError::internal("the stage is not an analysed rollout"))?;
                let now_s = secs(now - row.started_at);
                let mut m = rollout_row::ActiveModel {
                    release_id: sea_orm::ActiveValue::Unchanged(r.id.clone()),
                    updated_at: Set(now),
                    ..Default::default()
                };
                match control {
                    RolloutControl::Promote => {
                        // A promotion, like every step: never through a closed calendar.
                        let calendar = self.calendar.load().await?;
                        if let delivery::calendar::Gate::Closed { reason, opens_at } =
                            calendar.gate(&r.plugin_id, now)
                        {
                            return Err(AppError::conflict(format!(
                                "{reason}: a promotion waits{}",
                                opens_at
                                    .map(|t| format!(" until {}", at(t)))
                                    .unwrap_or_default()
                            )));
                        }
                        let next = row.step.max(0) as usize + 1;
                        let weight = plan.weight(next);
                        if weight >= 100 || next >= plan.steps.len() {
                            m.phase = Set(Phase::Complete.as_str().into());
                            m.weight = Set(100);
                        } else {
                            m.phase = Set(Phase::Running.as_str().into());
                            m.step = Set(next as i32);
                            m.weight = Set(i32::from(weight));
                            m.step_started = Set(now_s as i64);
                            m.passing_since = Set(now_s as i64);
                            m.inconclusive = Set(0);
                            m.paused_because = Set(None);
                            m.next_at = Set(now + TimeDelta::seconds(plan.interval_secs as i64));
                        }
                        details["to_percent"] = json!(weight.min(100));
                    }
                    RolloutControl::Pause => {
                        m.phase = Set(Phase::Paused.as_str().into());
                        m.paused_because =
                            Set(Some(format!("paused by {}: {reason}", who.me.username)));
                    }
                    _ => {
                        m.phase = Set(Phase::Running.as_str().into());
                        m.paused_because = Set(None);
                        m.inconclusive = Set(0);
                        m.passing_since = Set(now_s as i64);
                        m.next_at = Set(now + TimeDelta::seconds(plan.interval_secs as i64));
                    }
                }
                rollout_row::Entity::update(m)
                    .exec(a.txn())
                    .await
                    .map_err(db_error)?;
                // The engine takes a promoted step (ledger, webhook, gauges) on its next look.
                self.advance_in(&a, &r, |m| m.waiting = Set(None), Then::Now)
                    .await?;
            }
            RolloutControl::Retry => {
                let row = row.ok_or_else(|| AppError::internal("no rollout state"))?;
                let newer = release::Entity::find()
                    .filter(release::Column::PluginId.eq(r.plugin_id.clone()))
                    .filter(release::Column::Id.ne(r.id.clone()))
                    .filter(release::Column::CreatedAt.gt(r.created_at))
                    .one(a.txn())
                    .await
                    .map_err(db_error)?;
                if let Some(n) = newer {
                    return Err(AppError::conflict(format!(
                        "a newer release of {} exists ({} {}, {}): retry that one instead",
                        r.plugin_id, n.version, n.id, n.state
                    )));
                }
                let in_flight = release::Entity::find()
                    .filter(release::Column::PluginId.eq(r.plugin_id.clone()))
                    .filter(release::Column::State.is_in(["pending", "running"]))
                    .one(a.txn())
                    .await
                    .map_err(db_error)?;
                if let Some(n) = in_flight {
                    return Err(AppError::conflict(format!(
                        "release {} of {} is in flight: at most one release per plugin is",
                        n.id, r.plugin_id
                    )));
                }
                let stage = row.stage.max(0) as usize;
                self.set_stage(
                    &a,
                    &r.id,
                    stage,
                    StageState::Waiting,
                    Some(now),
                    None,
                    None,
                    Some("retried".into()),
                )
                .await?;
                self.advance_in(
                    &a,
                    &r,
                    |m| {
                        m.state = Set(ReleaseState::Running.as_str().into());
                        m.stage = Set(stage as i32);
                        m.stage_state = Set(StageState::Waiting.as_str().into());
                        m.step = Set(None);
                        m.step_started = Set(None);
                        m.waiting = Set(None);
                        m.reason = Set(None);
                        m.finished_at = Set(None);
                    },
                    Then::Now,
                )
                .await?;
            }
            RolloutControl::Yank => {
                let back_to = stable_of(a.txn(), &r.plugin_id, Some(&r.id)).await?;
                details["return_to"] = json!(back_to.as_ref().map(|b| b.version.clone()));
                let text = format!("yanked by {}: {reason}", who.me.username);
                let done = release::Entity::update_many()
                    .col_expr(release::Column::State, ReleaseState::Yanked.as_str().into())
                    .col_expr(release::Column::YankedAt, Some(now).into())
                    .col_expr(release::Column::Reason, Some(text).into())
                    .col_expr(release::Column::Seq, (r.seq + 1).into())
                    .col_expr(release::Column::UpdatedAt, now.into())
                    .filter(release::Column::Id.eq(r.id.clone()))
                    .filter(release::Column::Seq.eq(r.seq))
                    .exec(a.txn())
                    .await
                    .map_err(db_error)?;
                if done.rows_affected != 1 {
                    return Err(AppError::conflict(format!(
                        "release {id} changed at the same moment: look at it again and retry"
                    )));
                }
                self.hooks
                    .emit_in(
                        a.txn(),
                        Event::RolledBack,
                        &r.id,
                        json!({"release": r.id, "plugin": r.plugin_id, "version": r.version,
                               "state": "yanked", "reason": reason, "tenant": tenant}),
                    )
                    .await?;
                metrics::counter!("stellar_releases_yanked_total", "plugin" => r.plugin_id.clone())
                    .increment(1);
            }
        }
        let mut a = a;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant,
            action: format!("release.{}", control.as_str()),
            subject: format!("release:{}", r.id),
            details,
        })
        .await?;
        a.commit().await?;
        self.queue.notify();
        self.detail(who, id).await
    }
}
