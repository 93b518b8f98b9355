//! Pipeline specs, versioned in the database: the newest version is active on every instance.
//!
//! `--pipeline FILE` (or the built-in default) seeds version 1 when there is none; after that,
//! platform users and administrators publish new versions through the API and the CLI. A
//! version is checked (the same parser as `stellar pipeline check`, and a release key must be
//! registered, because every release's layout is signed with it), stored exactly as written,
//! and ledgered, in one transaction. A release records the version it ran under and keeps it.
//!
//! **Invariant:** versions only go up, and a stored version is never changed (the unique key on
//! `version` makes two instances publishing at once end with one winner and one conflict).

use app::api::backend::Principal;
use app::authz::{Action, authorize};
use app::delivery::{PipelineVersion, SpecProblem};
use app::error::AppError;
use delivery::spec::{self, Spec};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use sha2::{Digest, Sha256};
use trust::keys::Purpose;

use super::keys::Keyring;
use super::ledger_store::{LedgerStore, Record};
use super::{db_error, timestamp};
use crate::db::entities::pipeline_spec;

/// The versions of the pipeline spec.
#[derive(Clone, Debug)]
pub struct Pipelines {
    conn: DatabaseConnection,
    ledger: LedgerStore,
    keys: Keyring,
}

/// A stored, parsed version.
#[derive(Clone, Debug)]
pub struct SpecVersion {
    pub version: i32,
    pub spec: Spec,
}

fn view(m: pipeline_spec::Model) -> PipelineVersion {
    PipelineVersion {
        version: m.version,
        sha256: m.sha256,
        created_by: m.created_by,
        created_at: timestamp(m.created_at),
        comment: m.comment,
        source: m.source,
    }
}

/// The spec's problems, as the API reports them.
pub fn problems(errors: &[spec::SpecError]) -> Vec<SpecProblem> {
    errors
        .iter()
        .map(|e| SpecProblem {
            line: e.line as u32,
            column: e.column as u32,
            message: e.message.clone(),
        })
        .collect()
}

fn invalid(errors: &[spec::SpecError]) -> AppError {
    let lines: Vec<String> = errors.iter().map(|e| format!("line {e}")).collect();
    AppError::invalid(
        "spec",
        format!("the pipeline spec is not valid: {}", lines.join("; ")),
    )
}

impl Pipelines {
    pub fn new(conn: DatabaseConnection, ledger: LedgerStore, keys: Keyring) -> Self {
        Pipelines { conn, ledger, keys }
    }

    /// Stores `source` as version 1 if no version exists (start-up); a no-op otherwise.
    pub async fn seed(&self, source: &str, origin: &str) -> Result<Option<i32>, AppError> {
        if self.latest_row().await?.is_some() {
            return Ok(None);
        }
        spec::parse(source).map_err(|e| invalid(&e))?;
        match self.store(source, "system", Some(origin.to_owned())).await {
            Ok(v) => Ok(Some(v.version)),
            // Another instance seeded it first.
            Err(AppError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Publishes a new version: checked, stored, ledgered.
    pub async fn publish(
        &self,
        who: &Principal,
        source: &str,
        comment: Option<String>,
    ) -> Result<PipelineVersion, AppError> {
        authorize(who, Action::ManagePipeline)?;
        let parsed = spec::parse(source).map_err(|e| invalid(&e))?;
        for p in &parsed.pipelines {
            for st in &p.stages {
                if let spec::StageKind::Rollout {
                    analysis: Some(name),
                    ..
                } = &st.kind
                    && name != "default"
                {
                    return Err(AppError::invalid(
                        "spec",
                        format!(
                            "stage `{}` of pipeline `{}` names the analysis `{name}`: this server judges rollouts with one set of rollback rules, `default` (the built-in `policies/rollout`, or the directory given to `stellar serve --rollback-policy-dir`)",
                            st.name, p.name
                        ),
                    ));
                }
            }
        }
        if parsed.needs_release_key() && self.keys.active(Purpose::Release).await?.is_none() {
            return Err(AppError::invalid(
                "spec",
                "every release's in-toto layout is signed with the `release` key, and no release key is registered: run `stellar key generate --purpose release` (add `--offline-out FILE` to keep it offline) first",
            ));
        }
        let comment = comment.map(|c| c.chars().take(500).collect());
        let stored = self.store(source, &who.me.username, comment).await?;
        Ok(view(stored.row))
    }

    async fn store(
        &self,
        source: &str,
        actor: &str,
        comment: Option<String>,
    ) -> Result<Stored, AppError> {
        let sha = hex::encode(Sha256::digest(source.as_bytes()));
        let mut a = self.ledger.begin().await?;
        let next = pipeline_spec::Entity::find()
            .select_only()
            .column_as(pipeline_spec::Column::Version.max(), "max")
            .into_tuple::<Option<i32>>()
            .one(a.txn())
            .await
            .map_err(db_error)?
            .flatten()
            .unwrap_or(0)
            + 1;
        let row = pipeline_spec::Entity::insert(pipeline_spec::ActiveModel {
            version: Set(next),
            source: Set(source.to_owned()),
            sha256: Set(sha.clone()),
            created_by: Set(actor.to_owned()),
            comment: Set(comment.clone()),
            created_at: Set(chrono::Utc::now()),
            ..Default::default()
        })
        .exec_with_returning(a.txn())
        .await
        .map_err(|e| match db_error(e) {
            AppError::Conflict { .. } => AppError::conflict(
                "another pipeline version was published at the same moment: read the newest and publish again",
            ),
            other => other,
        })?;
        a.append(Record {
            actor: actor.to_owned(),
            tenant: None,
            action: "pipeline.publish".into(),
            subject: format!("pipeline:{next}"),
            details: serde_json::json!({"version": next, "sha256": sha, "comment": comment}),
        })
        .await?;
        a.commit().await?;
        Ok(Stored { version: next, row })
    }

    async fn latest_row(&self) -> Result<Option<pipeline_spec::Model>, AppError> {
        pipeline_spec::Entity::find()
            .order_by_desc(pipeline_spec::Column::Version)
            .one(&self.conn)
            .await
            .map_err(db_error)
    }

    /// The active (newest) version, parsed.
    pub async fn active(&self) -> Result<SpecVersion, AppError> {
        let row = self.latest_row().await?.ok_or_else(|| {
            AppError::conflict("no pipeline spec is stored yet: start the server once, or publish one with `stellar pipeline publish FILE`")
        })?;
        Self::parsed(row)
    }

    /// One version, parsed.
    pub async fn version(&self, version: i32) -> Result<SpecVersion, AppError> {
        let row = pipeline_spec::Entity::find()
            .filter(pipeline_spec::Column::Version.eq(version))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| {
                AppError::not_found(format!("there is no pipeline version {version}"))
            })?;
        Self::parsed(row)
    }

    fn parsed(row: pipeline_spec::Model) -> Result<SpecVersion, AppError> {
        let spec = spec::parse(&row.source).map_err(|e| {
            AppError::internal(format!(
                "stored pipeline version {} no longer parses: {}",
                row.version,
                e.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
        Ok(SpecVersion {
            version: row.version,
            spec,
        })
    }

    /// Every version, newest first.
    pub async fn list(&self, who: &Principal) -> Result<Vec<PipelineVersion>, AppError> {
        authorize(who, Action::ReadPipeline)?;
        Ok(pipeline_spec::Entity::find()
            .order_by_desc(pipeline_spec::Column::Version)
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(view)
            .collect())
    }

    /// One version as stored (`None`: the active one).
    pub async fn get(
        &self,
        who: &Principal,
        version: Option<i32>,
    ) -> Result<PipelineVersion, AppError> {
        authorize(who, Action::ReadPipeline)?;
        let row = match version {
            None => self.latest_row().await?,
            Some(v) => pipeline_spec::Entity::find()
                .filter(pipeline_spec::Column::Version.eq(v))
                .one(&self.conn)
                .await
                .map_err(db_error)?,
        };
        row.map(view).ok_or_else(|| match version {
            Some(v) => AppError::not_found(format!("there is no pipeline version {v}")),
            None => AppError::not_found("no pipeline spec is stored yet"),
        })
    }
}

struct Stored {
    version: i32,
    row: pipeline_spec::Model,
}
