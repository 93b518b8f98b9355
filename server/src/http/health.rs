//! Operations endpoints: liveness, readiness and the Prometheus scrape.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::problem::Problem;
use crate::secrets::constant_time_eq;

/// The routes of this module, with their OpenAPI operations.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers and its schema is current; 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn readyz(State(s): State<AppState>) -> Response {
    match s.health.readiness().await {
        Ok(()) => Json(Health { status: "ready" }).into_response(),
        Err(reason) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}"),
        )
        .into_response_with_status(),
    }
}

/// Metrics in the Prometheus text format. Requires `Authorization: Bearer <metrics token>`
/// when the server runs with `--metrics-token`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &s.http.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(given, expected.expose()) {
            return Problem::new(
                StatusCode::UNAUTHORIZED,
                "the metrics endpoint needs `Authorization: Bearer <metrics token>` (see `--metrics-token`)",
            )
            .into_response_with_status();
        }
    }
    let mut res = s.metrics.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}
