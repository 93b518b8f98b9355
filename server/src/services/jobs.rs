//! The durable job queue: every piece of background work that must happen exactly once across
//! instances (the analysis of a submission, a ledger checkpoint, a ledger verification, and
//! what later areas add) is a row here, claimed by whichever instance's worker comes first.
//!
//! **Invariants:**
//! - A job's `subject` is unique: enqueuing the same subject twice (two instances' schedulers
//!   in the same slot, a retried request) makes one job.
//! - A claim is one statement with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has
//!   one writer), so two workers never hold the same job while its lease lasts; an expired
//!   lease lets any instance take the job over; after `max_attempts` it ends as failed.
//! - Claims are fair between tenants: the next job is the one with the fewest jobs of its own
//!   tenant ahead of it still queued or running, so a tenant with a long backlog waits its turn
//!   behind everyone else's first job (each tenant's backlog is bounded by its quota).
//! - Time is the [`Clock`]'s: leases and back-offs move only when it does.

use std::sync::Arc;
use std::time::Duration;

use app::error::AppError;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, Statement,
};

use super::db_error;
use crate::clock::Clock;
use crate::db::entities::job;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Analyse and judge a submission (subject: the submission id).
    Analyse,
    /// Sign a ledger checkpoint (subject: `ledger.checkpoint:<slot>`).
    LedgerCheckpoint,
    /// Verify the whole ledger (subject: `ledger.verify:<slot>`).
    LedgerVerify,
    /// Take a release's next step (subject: `release:<id>:<seq>`, the release's transition
    /// counter when the job was made: a job whose release has moved on does nothing).
    ReleaseStep,
    /// A signature was imported: wake what waits on it (subject: `wake:<request id>`).
    Wake,
    /// Deliver one webhook event (subject: `webhook:<delivery id>`).
    Webhook,
    /// Release a judged submission if its pipeline says `auto_release` (subject:
    /// `auto-release:<submission id>`).
    AutoRelease,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Analyse => "analyse",
            JobKind::LedgerCheckpoint => "ledger.checkpoint",
            JobKind::LedgerVerify => "ledger.verify",
            JobKind::ReleaseStep => "release.step",
            JobKind::Wake => "wake",
            JobKind::Webhook => "webhook",
            JobKind::AutoRelease => "auto-release",
        }
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        [
            JobKind::Analyse,
            JobKind::LedgerCheckpoint,
            JobKind::LedgerVerify,
            JobKind::ReleaseStep,
            JobKind::Wake,
            JobKind::Webhook,
            JobKind::AutoRelease,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i32,
    pub kind: JobKind,
    pub subject: String,
    pub tenant_id: Option<i32>,
    /// This attempt's number, from 1.
    pub attempts: i32,
    pub max_attempts: i32,
}

impl Job {
    /// Whether this is the job's last attempt.
    pub fn last_attempt(&self) -> bool {
        self.attempts >= self.max_attempts
    }
}

/// The queue.
#[derive(Clone, Debug)]
pub struct Queue {
    conn: DatabaseConnection,
    clock: Clock,
    lease: Duration,
    max_attempts: u32,
    wake: Arc<tokio::sync::Notify>,
}

impl Queue {
    pub fn new(conn: DatabaseConnection, clock: Clock, lease: Duration, max_attempts: u32) -> Self {
        Queue {
            conn,
            clock,
            lease,
            max_attempts,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Completes when a job was enqueued (or after a spurious wake-up).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Tells a waiting worker that a job is there (after the enqueuing transaction commits).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    fn row(&self, kind: JobKind, subject: &str, tenant_id: Option<i32>) -> job::ActiveModel {
        self.row_at(kind, subject, tenant_id, 0)
    }

    fn row_at(
        &self,
        kind: JobKind,
        subject: &str,
        tenant_id: Option<i32>,
        run_after: i64,
    ) -> job::ActiveModel {
        let now = self.clock.now();
        job::ActiveModel {
            kind: Set(kind.as_str().into()),
            subject: Set(subject.to_owned()),
            tenant_id: Set(tenant_id),
            state: Set(JobState::Queued.as_str().into()),
            attempts: Set(0),
            max_attempts: Set(self.max_attempts as i32),
            lease_owner: Set(None),
            lease_expires: Set(None),
            run_after: Set(run_after),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
    }

    /// Enqueues a job inside the caller's transaction (the state change that needs it).
    pub async fn enqueue_in<C: ConnectionTrait>(
        &self,
        txn: &C,
        kind: JobKind,
        subject: &str,
        tenant_id: Option<i32>,
    ) -> Result<(), AppError> {
        job::Entity::insert(self.row(kind, subject, tenant_id))
            .exec_without_returning(txn)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Enqueues a job inside the caller's transaction that becomes due at `at` (the clock's
    /// time, milliseconds since the epoch), unless one with this subject exists.
    pub async fn enqueue_at_in<C: ConnectionTrait>(
        &self,
        txn: &C,
        kind: JobKind,
        subject: &str,
        tenant_id: Option<i32>,
        at_ms: i64,
    ) -> Result<(), AppError> {
        job::Entity::insert(self.row_at(kind, subject, tenant_id, at_ms))
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(job::Column::Subject)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Enqueues a job unless one with this subject exists; `true` if this call made it.
    pub async fn enqueue_once(&self, kind: JobKind, subject: &str) -> Result<bool, AppError> {
        match job::Entity::insert(self.row(kind, subject, None))
            .exec_without_returning(&self.conn)
            .await
        {
            Ok(_) => {
                self.notify();
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(db_error(e)),
        }
    }

    /// Claims one due job, if any. One statement, fair between tenants.
    pub async fn claim(&self, owner: &str) -> Result<Option<Job>, AppError> {
        let now = self.clock.now_ms();
        let lease = now + self.lease.as_millis() as i64;
        let backend = self.conn.get_database_backend();
        // The due jobs; among them, the one with the fewest jobs of its own tenant ahead of it
        // still queued or running (round robin between tenants), then the oldest.
        let pick = "SELECT j.id FROM jobs j \
             WHERE ((j.state = 'queued' AND j.run_after <= $4) \
                OR (j.state = 'running' AND j.lease_expires < $4)) \
               AND j.attempts < j.max_attempts \
             ORDER BY (SELECT COUNT(*) FROM jobs q \
                       WHERE q.state IN ('queued', 'running') AND q.id < j.id \
                         AND COALESCE(q.tenant_id, 0) = COALESCE(j.tenant_id, 0)), j.id \
             LIMIT 1";
        let sql = match backend {
            DatabaseBackend::Postgres => format!(
                "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires = $2, \
                 attempts = attempts + 1, updated_at = $3 \
                 WHERE id = ({pick} FOR UPDATE SKIP LOCKED) \
                 RETURNING id, kind, subject, tenant_id, attempts, max_attempts"
            ),
            _ => format!(
                "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires = $2, \
                 attempts = attempts + 1, updated_at = $3 \
                 WHERE id = ({pick}) \
                 RETURNING id, kind, subject, tenant_id, attempts, max_attempts"
            ),
        };
        let values: Vec<sea_orm::Value> = vec![
            owner.into(),
            lease.into(),
            self.clock.now().into(),
            now.into(),
        ];
        let Some(row) = self
            .conn
            .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let kind: String = row.try_get("", "kind").map_err(db_error)?;
        let job = Job {
            id: row.try_get("", "id").map_err(db_error)?,
            kind: JobKind::parse(&kind).ok_or_else(|| {
                AppError::internal(format!("a stored job has the unknown kind `{kind}`"))
            })?,
            subject: row.try_get("", "subject").map_err(db_error)?,
            tenant_id: row.try_get("", "tenant_id").map_err(db_error)?,
            attempts: row.try_get("", "attempts").map_err(db_error)?,
            max_attempts: row.try_get("", "max_attempts").map_err(db_error)?,
        };
        Ok(Some(job))
    }

    /// Marks a job done (in the transaction that stores its outcome, when there is one).
    pub async fn done<C: ConnectionTrait>(&self, conn: &C, id: i32) -> Result<(), AppError> {
        self.set_state(conn, id, JobState::Done, None).await
    }

    /// Marks a job failed for good.
    pub async fn failed<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: i32,
        error: &str,
    ) -> Result<(), AppError> {
        self.set_state(conn, id, JobState::Failed, Some(error))
            .await
    }

    async fn set_state<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: i32,
        state: JobState,
        error: Option<&str>,
    ) -> Result<(), AppError> {
        let mut update = job::Entity::update_many()
            .col_expr(job::Column::State, state.as_str().into())
            .col_expr(job::Column::UpdatedAt, self.clock.now().into());
        if let Some(e) = error {
            update = update.col_expr(job::Column::LastError, Some(e.to_owned()).into());
        }
        update
            .filter(job::Column::Id.eq(id))
            .exec(conn)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Puts a job that failed back in the queue, after a back-off that doubles per attempt.
    pub async fn retry(&self, job: &Job, error: &str) -> Result<(), AppError> {
        let backoff = 1000i64 << job.attempts.clamp(0, 10);
        job::Entity::update_many()
            .col_expr(job::Column::State, JobState::Queued.as_str().into())
            .col_expr(
                job::Column::RunAfter,
                (self.clock.now_ms() + backoff).into(),
            )
            .col_expr(job::Column::LastError, Some(error.to_owned()).into())
            .col_expr(job::Column::UpdatedAt, self.clock.now().into())
            .filter(job::Column::Id.eq(job.id))
            .exec(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Jobs whose lease ran out on their last attempt: their worker died every time.
    pub async fn abandoned(&self) -> Result<Vec<Job>, AppError> {
        let rows = job::Entity::find()
            .filter(job::Column::State.eq(JobState::Running.as_str()))
            .filter(job::Column::LeaseExpires.lt(self.clock.now_ms()))
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .filter(|j| j.attempts >= j.max_attempts)
            .filter_map(|j| {
                Some(Job {
                    kind: JobKind::parse(&j.kind)?,
                    id: j.id,
                    subject: j.subject,
                    tenant_id: j.tenant_id,
                    attempts: j.attempts,
                    max_attempts: j.max_attempts,
                })
            })
            .collect())
    }

    /// Jobs waiting to run.
    pub async fn depth(&self) -> Result<u64, AppError> {
        job::Entity::find()
            .filter(job::Column::State.eq(JobState::Queued.as_str()))
            .count(&self.conn)
            .await
            .map_err(db_error)
    }

    /// Jobs due now or running: what workers would do without the clock moving (tests wait for
    /// this to reach zero).
    pub async fn busy(&self) -> Result<u64, AppError> {
        job::Entity::find()
            .filter(
                sea_orm::Condition::any()
                    .add(job::Column::State.eq(JobState::Running.as_str()))
                    .add(
                        sea_orm::Condition::all()
                            .add(job::Column::State.eq(JobState::Queued.as_str()))
                            .add(job::Column::RunAfter.lte(self.clock.now_ms())),
                    ),
            )
            .count(&self.conn)
            .await
            .map_err(db_error)
    }

    /// Jobs queued or running.
    pub async fn pending(&self) -> Result<u64, AppError> {
        job::Entity::find()
            .filter(
                job::Column::State.is_in([JobState::Queued.as_str(), JobState::Running.as_str()]),
            )
            .count(&self.conn)
            .await
            .map_err(db_error)
    }
}
