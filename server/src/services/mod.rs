//! Services: the operations of Stellar, each authorizing its caller. HTTP handlers, server
//! functions and command-line verbs are thin layers over these.
//!
//! [`Services::open`] is the composition root: `stellar serve` and every verb that touches the
//! database build their services through it, from a validated [`ServicesConfig`], and nowhere
//! else.
//!
//! **Invariant:** every public method that reads or changes tenant data takes the caller's
//! [`Principal`](app::api::backend::Principal) and applies its scope; a partner asking for
//! another tenant's object gets `NotFound`, exactly as if it did not exist.

pub mod accounts;
pub mod calendar;
pub mod fleet;
pub mod jobs;
pub mod keys;
pub mod ledger;
pub mod ledger_store;
pub mod pipelines;
pub mod policy;
pub mod releases;
pub mod signing;
pub mod sso;
pub mod submissions;
pub mod throttle;
pub mod webhooks;

use app::error::AppError;
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{DbErr, SqlErr};

use crate::config::ServicesConfig;
use crate::db::{Db, DbError};

/// Why the services could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the policy pack cannot be used: {0}")]
    Pack(String),
    #[error("single sign-on cannot be set up: {0}")]
    Sso(String),
}

/// Every service, wired to one database.
#[derive(Clone, Debug)]
pub struct Services {
    pub db: Db,
    pub accounts: accounts::Accounts,
    /// The ledger's store: every service appends through it.
    pub ledger_store: ledger_store::LedgerStore,
    /// The ledger as a service: checkpoints, verification, the auditors' view.
    pub ledger: ledger::Ledger,
    pub keys: keys::Keyring,
    pub signing: signing::Signing,
    pub submissions: submissions::Submissions,
    /// The durable job queue every instance's workers claim from.
    pub queue: jobs::Queue,
    /// Versions of the pipeline spec.
    pub pipelines: pipelines::Pipelines,
    /// The release calendar.
    pub calendar: calendar::CalendarService,
    pub webhooks: webhooks::Webhooks,
    pub releases: releases::Releases,
    pub fleet: fleet::Fleet,
    /// Single sign-on, when configured.
    pub sso: Option<sso::Sso>,
}

impl Services {
    /// Connects to the database (migrating it if the configuration says so), loads the policy
    /// pack, and builds every service.
    pub async fn open(config: &ServicesConfig) -> Result<Services, OpenError> {
        let db = Db::connect(&config.database_url).await?;
        if config.migrate {
            db.migrate().await?;
        }
        let pack = policy::load(&config.analysis.pack).map_err(OpenError::Pack)?;
        let rollback = policy::load_rollback(config.analysis.rollback_pack.as_deref())
            .map_err(OpenError::Pack)?;
        let conn = db.conn.clone();
        let ledger =
            ledger_store::LedgerStore::new(conn.clone(), config.keys.ledger_origin.clone());
        let keys = keys::Keyring::new(
            conn.clone(),
            config.keys.key_dir.clone(),
            config.keys.passphrase.clone(),
        );
        let accounts = accounts::Accounts::new(conn.clone(), config.auth, ledger.clone());
        let queue = jobs::Queue::new(
            conn.clone(),
            config.clock.clone(),
            config.analysis.lease,
            config.analysis.max_attempts,
        );
        let signing =
            signing::Signing::new(conn.clone(), keys.clone(), ledger.clone(), queue.clone());
        let pipelines = pipelines::Pipelines::new(conn.clone(), ledger.clone(), keys.clone());
        let calendar =
            calendar::CalendarService::new(conn.clone(), ledger.clone(), config.clock.clone());
        let webhooks = webhooks::Webhooks::new(conn.clone(), ledger.clone(), queue.clone());
        let releases = releases::Releases::new(
            conn.clone(),
            ledger.clone(),
            queue.clone(),
            keys.clone(),
            signing.clone(),
            pipelines.clone(),
            calendar.clone(),
            webhooks.clone(),
            rollback,
        );
        let fleet = fleet::Fleet::new(
            conn.clone(),
            ledger.clone(),
            config.clock.clone(),
            config.analysis.fleet_retention_days,
        );
        let sso = config
            .sso
            .clone()
            .map(|settings| sso::Sso::new(settings, conn.clone(), ledger.clone(), accounts.clone()))
            .transpose()
            .map_err(|e| OpenError::Sso(e.to_string()))?;
        let submissions = submissions::Submissions::new(
            conn,
            ledger.clone(),
            signing.clone(),
            queue.clone(),
            pack,
            config.analysis.clone(),
        );
        Ok(Services {
            ledger: ledger::Ledger::new(ledger.clone(), keys.clone()),
            ledger_store: ledger,
            db,
            accounts,
            keys,
            signing,
            submissions,
            queue,
            pipelines,
            calendar,
            webhooks,
            releases,
            fleet,
            sso,
        })
    }

    /// Claims and runs one due job; `false` when none was due. A failure is retried after a
    /// back-off, and ends the job (and what it was for) on its last attempt.
    pub async fn work_once(&self, owner: &str) -> Result<bool, AppError> {
        let Some(job) = self.queue.claim(owner).await? else {
            return Ok(false);
        };
        let outcome = match job.kind {
            jobs::JobKind::Analyse => self.submissions.judge(&job).await.map(|decision| {
                tracing::info!(submission = %job.subject, %decision, "verdict");
            }),
            jobs::JobKind::LedgerCheckpoint => match self.ledger.sign_checkpoint().await {
                Ok(_) => self.queue.done(&self.db.conn, job.id).await,
                // Nothing to sign in an empty ledger: done all the same.
                Err(AppError::Conflict { message }) => {
                    tracing::debug!(%message, "no checkpoint signed");
                    self.queue.done(&self.db.conn, job.id).await
                }
                Err(e) => Err(e),
            },
            jobs::JobKind::ReleaseStep => self.releases.step(&job).await,
            jobs::JobKind::Wake => self.releases.wake(&job).await,
            jobs::JobKind::AutoRelease => self.releases.auto_release(&job).await,
            jobs::JobKind::Webhook => self.webhooks.deliver(&job).await,
            jobs::JobKind::LedgerVerify => match self.ledger.verify_now().await {
                Ok(v) => {
                    if v.ok {
                        tracing::info!(entries = v.entries, "ledger verified");
                    } else {
                        tracing::error!(message = %v.message, "ledger verification failed");
                    }
                    self.queue.done(&self.db.conn, job.id).await
                }
                Err(e) => Err(e),
            },
        };
        if let Err(e) = outcome {
            let detail = e.detail();
            tracing::warn!(job = job.id, kind = job.kind.as_str(), attempt = job.attempts, error = %detail, "job failed");
            self.job_failed(&job, &detail).await?;
        }
        Ok(true)
    }

    /// Records a failed attempt: back in the queue, or failed for good on the last one.
    async fn job_failed(&self, job: &jobs::Job, error: &str) -> Result<(), AppError> {
        if !job.last_attempt() {
            return self.queue.retry(job, error).await;
        }
        match job.kind {
            jobs::JobKind::Analyse => self.submissions.fail(job, error).await,
            jobs::JobKind::Webhook => self.webhooks.fail(job, error).await,
            jobs::JobKind::ReleaseStep => self.releases.fail(job, error).await,
            _ => self.queue.failed(&self.db.conn, job.id, error).await,
        }
    }

    /// Ends jobs whose workers died on their last attempt, and updates the queue gauge.
    pub async fn sweep_jobs(&self) -> Result<(), AppError> {
        for job in self.queue.abandoned().await? {
            let error = format!(
                "the work stopped without an answer {} times (the worker was lost each time); giving up",
                job.attempts
            );
            self.job_failed(&job, &error).await?;
        }
        metrics::gauge!("stellar_jobs_queued").set(self.queue.depth().await? as f64);
        Ok(())
    }

    /// Closes the database pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.db.clone().close().await;
    }
}

/// Readiness, which anyone may ask for: it says what is wrong without paths or driver text.
#[derive(Clone, Debug)]
pub struct Health {
    db: Db,
}

impl Health {
    pub fn new(db: Db) -> Self {
        Health { db }
    }

    /// Ready, or the public reason why not (the detail goes to the log).
    pub async fn readiness(&self) -> Result<(), String> {
        self.db.readiness().await.map_err(|e| {
            tracing::warn!(reason = %e.detail(), "not ready");
            e.public()
        })
    }
}

/// Logs a database error and turns it into an error a caller can read.
pub(crate) fn db_error(err: DbErr) -> AppError {
    if let Some(SqlErr::UniqueConstraintViolation(detail)) = err.sql_err() {
        tracing::info!(%detail, "unique constraint violated");
        return AppError::conflict("that name is already taken: choose another");
    }
    tracing::error!(error = %err, "database error");
    AppError::internal(
        "the database could not complete the request: try again, and report the request id if it persists",
    )
}

/// RFC 3339 in UTC with second precision: how times travel.
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
