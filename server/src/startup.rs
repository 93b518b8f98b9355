//! Building and running the server: [`Application::build`] opens the database, migrates, seeds,
//! and binds the port (0 picks a free one); [`Application::run_until`] serves until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, ScheduleConfig};
use crate::http::{AppState, build_app};
use crate::services::keys::ONLINE_PURPOSES;
use crate::services::{OpenError, Services};
use crate::{seed, telemetry};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("seeding demo data failed: {0}")]
    Seed(app::error::AppError),
    #[error("the signing keys are not usable: {0}")]
    Keys(app::error::AppError),
}

/// A server ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    services: Services,
    config: Arc<Config>,
}

impl Application {
    /// Opens the services (database, migrations unless configured not to, the policy pack),
    /// makes sure the server can sign, seeds demo data if asked, and binds the listening
    /// socket.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let services = Services::open(&config.services).await?;
        if config.services.migrate {
            // The server signs verdicts and checkpoints itself: make sure it can.
            for purpose in ONLINE_PURPOSES {
                services
                    .keys
                    .signer(purpose, &services.ledger)
                    .await
                    .map_err(StartError::Keys)?;
            }
        }
        if config.demo {
            seed::demo(&services).await.map_err(StartError::Seed)?;
        }
        let listener = TcpListener::bind(config.http.addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.http.addr,
                source,
            })?;
        let mut config = config;
        if let Ok(local) = listener.local_addr() {
            config.http.addr = local;
        }
        let state = AppState::new(&config.http, &services, telemetry::metrics_handle());
        Ok(Application {
            listener,
            state,
            services,
            config: Arc::new(config),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.config.http.addr
    }

    /// The services (for tests that need to reach the database).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until `shutdown` completes; requests in flight then finish, background tasks stop
    /// and the database pool is closed.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let workers = self.services.submissions.spawn_workers(
            &self.config.instance,
            self.config.workers,
            stop_rx.clone(),
        );
        let housekeeping = tokio::spawn(housekeeping(
            self.services.clone(),
            self.state.metrics.clone(),
            self.config.schedule,
            stop_rx,
        ));
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
        self.services.close().await;
        tracing::info!("shutdown complete");
        served
    }
}

/// Periodic work: metrics upkeep, purging expired sessions, ledger checkpoints and
/// verification.
async fn housekeeping(
    state: Services,
    metrics: PrometheusHandle,
    schedule: ScheduleConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut upkeep = tokio::time::interval(Duration::from_secs(5));
    let mut purge = tokio::time::interval(Duration::from_secs(600));
    let mut checkpoint = tokio::time::interval(schedule.checkpoint_interval);
    let mut verify = tokio::time::interval(schedule.verify_interval);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = upkeep.tick() => {
                metrics.run_upkeep();
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
