//! The JSON API of the pipeline spec (versions: read, check, publish), the release calendar
//! (windows, and the week view), and outgoing webhooks (register, list, deactivate, delivery
//! log).

use app::delivery::{
    CalendarWeek, CalendarWindow, CreatedWebhook, NewPipelineVersion, NewWebhook, NewWindow,
    PipelineVersion, SpecProblem, Webhook, WebhookDelivery,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::problem::{ApiError, Problem};
use crate::services::pipelines::problems;

const PROBLEM: &str = "application/problem+json";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(active_pipeline))
        .routes(routes!(list_versions, publish_version))
        .routes(routes!(get_version))
        .routes(routes!(check_spec))
        .routes(routes!(calendar_week))
        .routes(routes!(list_windows, add_window))
        .routes(routes!(remove_window))
        .routes(routes!(list_webhooks, register_webhook))
        .routes(routes!(deactivate_webhook))
        .routes(routes!(webhook_deliveries))
}

/// The active (newest) version of the pipeline spec.
#[utoipa::path(get, path = "/api/v1/pipeline", tag = "pipeline",
    responses((status = 200, body = PipelineVersion), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn active_pipeline(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> Result<Json<PipelineVersion>, ApiError> {
    Ok(Json(s.pipelines.get(&who, None).await?))
}

/// Every version of the pipeline spec, newest first.
#[utoipa::path(get, path = "/api/v1/pipeline/versions", tag = "pipeline",
    responses((status = 200, body = Vec<PipelineVersion>)))]
async fn list_versions(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> Result<Json<Vec<PipelineVersion>>, ApiError> {
    Ok(Json(s.pipelines.list(&who).await?))
}

/// Publishes a new version (platform, administrators): checked like `stellar pipeline check`,
/// stored, ledgered, active at once on every instance.
#[utoipa::path(post, path = "/api/v1/pipeline/versions", tag = "pipeline", request_body = NewPipelineVersion,
    responses((status = 201, body = PipelineVersion), (status = 422, body = Problem, content_type = PROBLEM)))]
async fn publish_version(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<NewPipelineVersion>,
) -> Result<(StatusCode, Json<PipelineVersion>), ApiError> {
    let v = s
        .pipelines
        .publish(&who, &input.source, input.comment)
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// One stored version.
#[utoipa::path(get, path = "/api/v1/pipeline/versions/{version}", tag = "pipeline",
    params(("version" = i32, Path, description = "Version number")),
    responses((status = 200, body = PipelineVersion), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn get_version(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(version): ApiPath<i32>,
) -> Result<Json<PipelineVersion>, ApiError> {
    Ok(Json(s.pipelines.get(&who, Some(version)).await?))
}

/// A spec to check.
#[derive(Deserialize, utoipa::ToSchema)]
struct SpecText {
    source: String,
}

/// Checks a spec without storing it: every problem with its line and column (empty: valid).
#[utoipa::path(post, path = "/api/v1/pipeline/check", tag = "pipeline", request_body = SpecText,
    responses((status = 200, body = Vec<SpecProblem>)))]
async fn check_spec(
    State(_s): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<SpecText>,
) -> Result<Json<Vec<SpecProblem>>, ApiError> {
    app::authz::authorize(&who, app::authz::Action::ReadPipeline)?;
    Ok(Json(match delivery::spec::parse(&input.source) {
        Ok(_) => Vec::new(),
        Err(errors) => problems(&errors),
    }))
}

/// Which week.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WeekQuery {
    /// Any day of the week (`2026-12-01`); default this week.
    week: Option<String>,
}

/// A week of the release calendar: releases past, running and scheduled, and the windows.
#[utoipa::path(get, path = "/api/v1/calendar", tag = "calendar", params(WeekQuery),
    responses((status = 200, body = CalendarWeek), (status = 422, body = Problem, content_type = PROBLEM)))]
async fn calendar_week(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiQuery(q): ApiQuery<WeekQuery>,
) -> Result<Json<CalendarWeek>, ApiError> {
    Ok(Json(s.releases.week(&who, q.week.as_deref()).await?))
}

/// The windows in force.
#[utoipa::path(get, path = "/api/v1/calendar/windows", tag = "calendar",
    responses((status = 200, body = Vec<CalendarWindow>)))]
async fn list_windows(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> Result<Json<Vec<CalendarWindow>>, ApiError> {
    Ok(Json(s.calendar.list(&who).await?))
}

/// Adds an allow or freeze window: one-off (`starts_at`, `ends_at`) or recurring (`cron`,
/// `duration`, `timezone`).
#[utoipa::path(post, path = "/api/v1/calendar/windows", tag = "calendar", request_body = NewWindow,
    responses((status = 201, body = CalendarWindow), (status = 422, body = Problem, content_type = PROBLEM)))]
async fn add_window(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<NewWindow>,
) -> Result<(StatusCode, Json<CalendarWindow>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.calendar.add(&who, input).await?),
    ))
}

/// Removes a window (kept for the record, no longer in force).
#[utoipa::path(delete, path = "/api/v1/calendar/windows/{id}", tag = "calendar",
    params(("id" = i32, Path, description = "Window id")),
    responses((status = 200, body = CalendarWindow), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn remove_window(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<CalendarWindow>, ApiError> {
    Ok(Json(s.calendar.remove(&who, id).await?))
}

/// Every webhook (administrators).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", responses((status = 200, body = Vec<Webhook>)))]
async fn list_webhooks(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> Result<Json<Vec<Webhook>>, ApiError> {
    Ok(Json(s.webhooks.list(&who).await?))
}

/// Registers a webhook; the answer holds its HMAC secret, shown this once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 422, body = Problem, content_type = PROBLEM)))]
async fn register_webhook(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.webhooks.register(&who, input).await?),
    ))
}

/// Deactivates a webhook: nothing more is sent to it.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i32, Path, description = "Webhook id")),
    responses((status = 200, body = Webhook), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn deactivate_webhook(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<Webhook>, ApiError> {
    Ok(Json(s.webhooks.deactivate(&who, id).await?))
}

/// A webhook's delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i32, Path, description = "Webhook id")),
    responses((status = 200, body = Vec<WebhookDelivery>), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn webhook_deliveries(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<Vec<WebhookDelivery>>, ApiError> {
    Ok(Json(s.webhooks.deliveries(&who, id, 200).await?))
}
