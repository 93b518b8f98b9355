//! Logging (`tracing`) and the Prometheus metrics recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use clap::ValueEnum;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people: one coloured line per event.
    Human,
    /// For machines: one JSON object per line.
    Json,
}

/// Installs the global log subscriber: human lines or JSON lines on standard error.
pub fn init_logging(format: LogFormat, filter: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| format!("invalid `--log` filter `{filter}`: {e}"))?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Human => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}

/// Histogram buckets for request latencies, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide metrics recorder (installed once; later calls share it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".to_owned()),
                    LATENCY_BUCKETS,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed already; this one still renders.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        "stellar_http_requests_total",
        "HTTP requests answered, by method, route template and status"
    );
    metrics::describe_histogram!(
        "stellar_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by method and route template"
    );
    metrics::describe_gauge!(
        "stellar_build_info",
        "Always 1; the labels name the running version"
    );
    metrics::describe_counter!(
        "stellar_ledger_appends_total",
        "Entries appended to the audit ledger"
    );
    metrics::describe_gauge!("stellar_ledger_entries", "Entries in the audit ledger");
    metrics::describe_gauge!(
        "stellar_ledger_checkpoint_size",
        "Tree size of the newest signed ledger checkpoint"
    );
    metrics::describe_gauge!(
        "stellar_ledger_verified",
        "1 if the last full ledger verification passed, 0 if it found a problem"
    );
    metrics::describe_counter!(
        "stellar_submissions_received_total",
        "Bundles accepted at intake and queued for analysis"
    );
    metrics::describe_counter!(
        "stellar_submissions_total",
        "Submissions judged, by decision (pass, warn, deny, or failed when the analysis could not finish)"
    );
    metrics::describe_counter!(
        "stellar_findings_total",
        "Findings in verdicts, by rule and effect"
    );
    metrics::describe_histogram!(
        "stellar_analysis_duration_seconds",
        metrics::Unit::Seconds,
        "Time from claiming a submission to its stored verdict"
    );
    metrics::describe_gauge!("stellar_jobs_queued", "Jobs waiting for a worker");
    metrics::describe_counter!(
        "stellar_password_checks_total",
        "Passwords checked at sign-in (the throttle bounds these, not the attempts)"
    );
    metrics::describe_counter!(
        "stellar_login_throttled_total",
        "Sign-in attempts refused by the throttle, by layer (address-memory, address, user)"
    );
    metrics::describe_counter!(
        "stellar_uploads_refused_total",
        "Uploads refused before intake, by reason (busy, quota-queued, quota-bytes, plugin-id-taken)"
    );
    metrics::describe_counter!(
        "stellar_releases_created_total",
        "Releases created (by people, CI tokens or auto_release)"
    );
    metrics::describe_counter!(
        "stellar_releases_finished_total",
        "Releases that ended, by state (succeeded, rejected, aborted, superseded, failed, rolled_back)"
    );
    metrics::describe_counter!(
        "stellar_rollbacks_total",
        "Rollouts the rollback rules rolled back, by plugin and by the deny rule that fired"
    );
    metrics::describe_gauge!(
        "stellar_rollout_step",
        "The step (from 1) of the plugin's rollout in flight; 0 after a rollback"
    );
    metrics::describe_gauge!(
        "stellar_rollout_weight",
        "Percent of hosts the plugin's rollout has reached; 0 after a rollback"
    );
    metrics::describe_counter!(
        "stellar_rollout_intervals_total",
        "Rollout intervals judged, by plugin and what the verdict did (advance, stay, hold, pause, roll_back, complete)"
    );
    metrics::describe_counter!(
        "stellar_releases_yanked_total",
        "GA versions withdrawn, by plugin"
    );
    metrics::describe_counter!(
        "stellar_fleet_polls_total",
        "Channel polls by hosts, by result (changed, or not_modified for an ETag hit)"
    );
    metrics::describe_counter!(
        "stellar_fleet_samples_total",
        "Health samples stored from fleet reports"
    );
    metrics::describe_counter!(
        "stellar_fleet_reports_refused_total",
        "Fleet report batches refused, by reason (late, future, duplicate, oversized, inconsistent, bad_name, bad_interval, not_told, unknown_host, wrong_host)"
    );
    metrics::describe_counter!(
        "stellar_sso_refused_total",
        "Single sign-ons refused, by reason (sso_state, sso_provider, sso_token, sso_unmapped, sso_tenant, sso_disabled, sso_busy)"
    );
    metrics::gauge!("stellar_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}
