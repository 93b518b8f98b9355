//! Plugin submissions: intake ([`intake`]), reading them ([`queries`]), judging them
//! ([`judge`], run by the job queue's workers), publisher profiles and keys ([`publishers`]),
//! and the wire views ([`views`]).
//!
//! **Intake** checks a bundle completely before anything is stored (limits, paths, manifest,
//! module, the tenant's quotas, who owns the plugin id); a refused bundle leaves no row
//! behind. An accepted bundle is stored with its job and its ledger entry in one transaction.
//!
//! **Invariant:** one verdict per submission, whatever the workers do (a unique key on
//! `verdicts.submission_id`).

mod intake;
mod judge;
mod publishers;
mod queries;
mod views;

use std::sync::Arc;

use app::api::backend::Principal;
use app::error::AppError;
use app::types::{SubmissionDetail, SubmissionFilter, SubmissionPage};
use plugin::Rejection;
use sea_orm::{DatabaseConnection, EntityTrait};

use super::db_error;
use super::jobs::Queue;
use super::ledger_store::LedgerStore;
use super::policy::ActivePack;
use super::signing::Signing;
use crate::config::AnalysisConfig;
use crate::db::entities::tenant;

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

/// Submissions, verdicts, publisher keys, and the analysis the workers run.
#[derive(Clone)]
pub struct Submissions {
    conn: DatabaseConnection,
    ledger: LedgerStore,
    signing: Signing,
    queue: Queue,
    pack: ActivePack,
    settings: Arc<AnalysisConfig>,
    /// Uploads read into memory at once.
    uploads: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Submissions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submissions")
            .field("pack", &self.pack)
            .finish_non_exhaustive()
    }
}

fn not_found(id: &str) -> AppError {
    AppError::not_found(format!("there is no submission `{id}`"))
}

impl Submissions {
    pub fn new(
        conn: DatabaseConnection,
        ledger: LedgerStore,
        signing: Signing,
        queue: Queue,
        pack: ActivePack,
        settings: AnalysisConfig,
    ) -> Self {
        Submissions {
            conn,
            ledger,
            signing,
            queue,
            pack,
            uploads: Arc::new(tokio::sync::Semaphore::new(settings.max_concurrent_uploads)),
            settings: Arc::new(settings),
        }
    }

    pub fn settings(&self) -> &AnalysisConfig {
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
