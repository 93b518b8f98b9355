//! Building and running the server: [`Application::build`] opens the database, migrates, seeds,
//! and binds the port (0 picks a free one); [`Application::run_until`] serves until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::http::{AppState, build_app};
use crate::scheduler::{Scheduler, spawn_workers};
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
    scheduler: Arc<Scheduler>,
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
                    .signer(purpose, &services.ledger_store)
                    .await
                    .map_err(StartError::Keys)?;
            }
        }
        if config.services.migrate {
            match services
                .pipelines
                .seed(&config.pipeline.source, &config.pipeline.origin)
                .await
                .map_err(StartError::Seed)?
            {
                Some(v) => {
                    tracing::info!(version = v, origin = %config.pipeline.origin, "pipeline spec seeded")
                }
                None => {
                    let active = services
                        .pipelines
                        .active()
                        .await
                        .map_err(StartError::Seed)?;
                    tracing::info!(
                        version = active.version,
                        "pipeline spec loaded from the database"
                    );
                }
            }
        }
        if config.demo {
            seed::demo(
                &config.services,
                &services,
                config.demo_submissions,
                config.demo_releases,
            )
            .await
            .map_err(StartError::Seed)?;
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
        let metrics = telemetry::metrics_handle();
        let state = AppState::new(&config.http, &services, metrics.clone());
        let scheduler = Arc::new(Scheduler::new(services.clone(), metrics, config.schedule));
        Ok(Application {
            listener,
            state,
            services,
            scheduler,
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

    /// The scheduler (tests on a manual clock tick it by hand).
    pub fn scheduler(&self) -> Arc<Scheduler> {
        self.scheduler.clone()
    }

    /// Serves until `shutdown` completes; requests in flight then finish, background tasks stop
    /// and the database pool is closed. The scheduler's loop runs only on the system clock.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let workers = spawn_workers(
            &self.services,
            &self.config.instance,
            self.config.workers,
            stop_rx.clone(),
        );
        let ticking = (!self.services.queue.clock().is_manual())
            .then(|| self.scheduler.clone().spawn(stop_rx));
        let router = build_app(self.state.clone());
        let served = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        let _ = stop_tx.send(true);
        if let Some(t) = ticking {
            let _ = t.await;
        }
        // Workers finish the job in hand (bounded by the sandbox limits), then stop.
        for w in workers {
            let _ = w.await;
        }
        self.services.close().await;
        tracing::info!("shutdown complete");
        served
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
