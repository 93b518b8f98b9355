//! Building and running the server: [`Application::build`] opens the database, migrates, seeds,
//! and binds the port (0 picks a free one); [`Application::run_until`] serves until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::db::{Db, DbError};
use crate::http::{AppState, build_app, leptos_options};
use crate::services::accounts::{Accounts, AuthSettings};
use crate::services::audit::Audit;
use crate::services::keys::{Keyring, ONLINE_PURPOSES};
use crate::services::ledger::Ledger;
use crate::services::policy;
use crate::services::signing::Signing;
use crate::services::submissions::{Settings, Submissions};
use crate::services::throttle::Limits;
use crate::{seed, telemetry};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("seeding demo data failed: {0}")]
    Seed(app::error::AppError),
    #[error("the signing keys are not usable: {0}")]
    Keys(app::error::AppError),
    #[error("{0}")]
    Analysis(String),
}

/// A server ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

/// The account settings named by the configuration.
pub fn auth_settings(config: &Config) -> AuthSettings {
    AuthSettings {
        session_ttl: config.session_ttl,
        session_idle: config.session_idle,
        throttle: Limits {
            max_failures: config.login_max_failures,
            lockout: config.login_lockout,
        },
    }
}

impl Application {
    /// Opens the database, applies migrations (unless configured not to), seeds demo data if
    /// asked, and binds the listening socket.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let db = Db::connect(&config.database_url).await?;
        if !config.skip_migrations {
            db.migrate().await?;
        }
        let ledger = Ledger::new(db.conn.clone(), config.keys.ledger_origin.clone());
        let keys = Keyring::new(
            db.conn.clone(),
            config.keys.key_dir.clone(),
            config.keys.key_passphrase.clone(),
        );
        let accounts = Accounts::new(db.conn.clone(), auth_settings(&config), ledger.clone());
        let signing = Signing::new(db.conn.clone(), keys.clone(), ledger.clone());
        if !config.skip_migrations {
            // The server signs verdicts and checkpoints itself: make sure it can.
            for purpose in ONLINE_PURPOSES {
                keys.signer(purpose, &ledger)
                    .await
                    .map_err(StartError::Keys)?;
            }
        }
        let pack = match &config.analysis.policy_dir {
            Some(dir) => policy::from_dir(dir),
            None => policy::built_in(),
        }
        .map_err(|e| StartError::Analysis(format!("--policy-dir: {e}")))?;
        let settings = Settings::from_args(&config.analysis).map_err(StartError::Analysis)?;
        let submissions = Submissions::new(
            db.conn.clone(),
            ledger.clone(),
            signing.clone(),
            pack,
            settings,
        );
        if config.demo {
            seed::demo(&accounts).await.map_err(StartError::Seed)?;
        }
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.addr,
                source,
            })?;
        let mut config = config;
        if let Ok(local) = listener.local_addr() {
            config.addr = local;
        }
        let state = AppState {
            leptos_options: leptos_options(&config),
            config: Arc::new(config),
            db,
            accounts,
            audit: Audit::new(ledger.clone(), keys.clone()),
            keys,
            ledger,
            signing,
            submissions,
            metrics: telemetry::metrics_handle(),
            openapi: Arc::new(OnceLock::new()),
        };
        Ok(Application { listener, state })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.state.config.addr
    }

    /// The shared state (for tests that need to reach the database).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes; requests in flight then finish, background tasks stop
    /// and the database pool is closed.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let instance = self
            .state
            .config
            .analysis
            .instance
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let workers = self
            .state
            .submissions
            .spawn_workers(&instance, stop_rx.clone());
        let housekeeping = tokio::spawn(housekeeping(self.state.clone(), stop_rx));
        let router = build_app(self.state.clone());
        let served = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        let _ = stop_tx.send(true);
        let _ = housekeeping.await;
        // Workers finish the job in hand (bounded by the sandbox limits), then stop.
        for w in workers {
            let _ = w.await;
        }
        self.state.db.close().await;
        tracing::info!("shutdown complete");
        served
    }
}

/// Periodic work: metrics upkeep, purging expired sessions, ledger checkpoints and
/// verification.
async fn housekeeping(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut upkeep = tokio::time::interval(Duration::from_secs(5));
    let mut purge = tokio::time::interval(Duration::from_secs(600));
    let mut checkpoint = tokio::time::interval(state.config.checkpoint_interval);
    let mut verify = tokio::time::interval(state.config.verify_interval);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = upkeep.tick() => {
                state.metrics.run_upkeep();
                if let Err(e) = state.submissions.upkeep().await {
                    tracing::warn!(error = %e, "queue upkeep failed");
                }
            }
            _ = checkpoint.tick() => {
                match state.ledger.size().await {
                    Ok(0) | Err(_) => {}
                    Ok(_) => {
                        if let Err(e) = state.ledger.checkpoint(&state.keys).await {
                            tracing::warn!(error = %e, "signing a ledger checkpoint failed");
                        }
                    }
                }
            }
            _ = verify.tick() => {
                match state.ledger.verify(&state.keys).await {
                    Ok(v) if v.ok => tracing::info!(entries = v.entries, "ledger verified"),
                    Ok(v) => tracing::error!(message = %v.message, "ledger verification failed"),
                    Err(e) => tracing::warn!(error = %e, "ledger verification could not run"),
                }
            }
            _ = purge.tick() => {
                match state.accounts.purge_expired_sessions().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(purged = n, "expired sessions purged"),
                    Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
                }
            }
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received: finishing requests in flight");
}
