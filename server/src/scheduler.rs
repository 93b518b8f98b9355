//! Background work: the one scheduler of periodic tasks, and the workers that run the jobs of
//! the durable queue.
//!
//! Two kinds of periodic task:
//! - **local** tasks do per-instance upkeep (metrics, the queue gauge and sweep, expired
//!   sessions, idle throttle buckets, fleet reports past their retention) and run on every
//!   instance;
//! - **once** tasks must happen once across all instances (signing a ledger checkpoint,
//!   verifying the ledger): each due one enqueues a job whose subject names the task and its
//!   time slot (`ledger.checkpoint:<slot>`), so that however many instances tick in the same
//!   slot there is one job, run by whichever worker claims it.
//!
//! **Invariant:** time is the [`Clock`]'s. With the system clock a loop sleeps until the next
//! task is due; with a manual clock no loop runs and tests call [`Scheduler::tick`] after
//! moving the clock, so that nothing happens behind a test's back and no test waits for a tick.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::ScheduleConfig;
use crate::services::Services;
use crate::services::jobs::JobKind;

/// A periodic task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Metrics upkeep, the queue sweep and gauge, idle throttle buckets (every instance).
    Upkeep,
    /// Deleting expired sessions (every instance; idempotent).
    PurgeSessions,
    /// Deleting fleet reports older than their retention (every instance; idempotent).
    PruneReports,
    /// Signing a ledger checkpoint (once, as a job).
    Checkpoint,
    /// Verifying the whole ledger (once, as a job).
    VerifyLedger,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Upkeep => "upkeep",
            Task::PurgeSessions => "purge-sessions",
            Task::PruneReports => "fleet.prune-reports",
            Task::Checkpoint => "ledger.checkpoint",
            Task::VerifyLedger => "ledger.verify",
        }
    }

    /// The job a once-task enqueues.
    fn job(self) -> Option<JobKind> {
        match self {
            Task::Checkpoint => Some(JobKind::LedgerCheckpoint),
            Task::VerifyLedger => Some(JobKind::LedgerVerify),
            Task::Upkeep | Task::PurgeSessions | Task::PruneReports => None,
        }
    }
}

struct Slot {
    task: Task,
    every: Duration,
    next: DateTime<Utc>,
}

/// The scheduler of one instance.
pub struct Scheduler {
    services: Services,
    metrics: PrometheusHandle,
    clock: Clock,
    slots: Mutex<Vec<Slot>>,
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::days(1))
}

impl Scheduler {
    /// Every task first falls due one period after now.
    pub fn new(services: Services, metrics: PrometheusHandle, schedule: ScheduleConfig) -> Self {
        let clock = services.queue.clock().clone();
        let now = clock.now();
        let slots = [
            (Task::Upkeep, Duration::from_secs(5)),
            (Task::PurgeSessions, Duration::from_secs(600)),
            (Task::PruneReports, Duration::from_secs(3600)),
            (Task::Checkpoint, schedule.checkpoint_interval),
            (Task::VerifyLedger, schedule.verify_interval),
        ]
        .into_iter()
        .map(|(task, every)| Slot {
            task,
            every,
            next: now + delta(every),
        })
        .collect();
        Scheduler {
            services,
            metrics,
            clock,
            slots: Mutex::new(slots),
        }
    }

    /// The tasks due now, each moved to its next time.
    fn take_due(&self) -> Vec<(Task, Duration)> {
        let now = self.clock.now();
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut due = Vec::new();
        for s in slots.iter_mut().filter(|s| s.next <= now) {
            due.push((s.task, s.every));
            // A late tick runs a task once, not once per period missed.
            while s.next <= now {
                s.next += delta(s.every);
            }
        }
        due
    }

    /// How long until the next task is due.
    pub fn until_next(&self) -> Duration {
        let now = self.clock.now();
        let slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots
            .iter()
            .map(|s| (s.next - now).to_std().unwrap_or(Duration::ZERO))
            .min()
            .unwrap_or(Duration::from_secs(5))
    }

    /// Runs every task that is due now; returns which ran. A task's failure is logged and
    /// does not stop the others.
    pub async fn tick(&self) -> Vec<Task> {
        let due = self.take_due();
        let mut ran = Vec::with_capacity(due.len());
        for (task, every) in due {
            if let Err(e) = self.run(task, every).await {
                tracing::warn!(task = task.name(), error = %e, "a scheduled task failed");
            }
            ran.push(task);
        }
        ran
    }

    async fn run(&self, task: Task, every: Duration) -> Result<(), app::error::AppError> {
        if let Some(kind) = task.job() {
            let secs = every.as_secs().max(1) as i64;
            let slot = self.clock.now().timestamp().div_euclid(secs);
            self.services
                .queue
                .enqueue_once(kind, &format!("{}:{slot}", kind.as_str()))
                .await?;
            return Ok(());
        }
        match task {
            Task::Upkeep => {
                self.metrics.run_upkeep();
                self.services.accounts.forget_idle_addresses();
                self.services.sweep_jobs().await
            }
            Task::PurgeSessions => {
                let n = self.services.accounts.purge_expired_sessions().await?;
                if n > 0 {
                    tracing::debug!(purged = n, "expired sessions purged");
                }
                Ok(())
            }
            Task::PruneReports => {
                let n = self.services.fleet.prune().await?;
                if n > 0 {
                    tracing::info!(pruned = n, "fleet reports past their retention deleted");
                }
                Ok(())
            }
            Task::Checkpoint | Task::VerifyLedger => Ok(()),
        }
    }

    /// Ticks whenever a task falls due, until `stop` fires. Only for the system clock.
    pub fn spawn(self: Arc<Self>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                // A scaled clock runs `factor` times faster: sleep that much less.
                let wait = self.until_next() / self.clock.factor().max(1);
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep(wait) => { self.tick().await; }
                }
            }
        })
    }
}

/// Starts `n` workers that claim and run jobs until `stop` fires. Each finishes the job in
/// hand (bounded by the sandbox limits) before it stops.
pub fn spawn_workers(
    services: &Services,
    instance: &str,
    n: usize,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let services = services.clone();
            let owner = format!("{instance}/{i}");
            let mut stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    if *stop.borrow() {
                        break;
                    }
                    let worked = match services.work_once(&owner).await {
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
                        _ = services.queue.woken() => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => {}
                    }
                }
            })
        })
        .collect()
}
