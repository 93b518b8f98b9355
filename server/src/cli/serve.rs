//! `stellar serve` and `stellar migrate`.

use super::args::{DbArgs, ServeArgs};
use super::open_db;
use crate::config::Config;
use crate::startup::{Application, shutdown_signal};
use crate::telemetry;

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> Result<(), String> {
    let config = Config::from_args(args).map_err(|e| e.to_string())?;
    telemetry::init_logging(config.log_format, &config.log)?;
    let app = Application::build(config)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(addr = %app.local_addr(), "listening on http://{}", app.local_addr());
    app.run_until(shutdown_signal())
        .await
        .map_err(|e| format!("the server stopped with an error: {e}"))
}

/// Applies pending migrations.
pub async fn migrate(db: DbArgs) -> Result<(), String> {
    let services = open_db(&db).await?;
    services.close().await;
    println!("migrations applied");
    Ok(())
}
