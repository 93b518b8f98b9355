//! The fleet's HTTP API: the host protocol (the channel with ETags, bundles and their
//! attestations, health reports), authenticated by fleet tokens only; the fleet tokens and the
//! fleet overview for platform users; and the rollout controls on a release.

use app::delivery::{ReleaseDetail, RolloutControl};
use app::fleet::{CreatedFleetToken, FleetOverview, FleetToken, NewFleetToken};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use delivery::fleet::ReportBatch;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{ApiForm, ApiJson, ApiPath, Auth};
use super::problem::{ApiError, Problem};
use crate::services::fleet::{HostCaller, ReportError};

const PROBLEM: &str = "application/problem+json";
/// The header a group token's host names itself in.
pub const HOST_HEADER: &str = "stellar-host";
/// The server's clock (Unix seconds) on every channel answer: hosts align their report
/// intervals to it.
pub const TIME_HEADER: &str = "stellar-time";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(channel))
        .routes(routes!(bundle))
        .routes(routes!(attestations))
        .routes(routes!(report))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(overview))
        .routes(routes!(control))
        .routes(routes!(portal_control))
}

/// The host a fleet request comes from (the authentication layer put it there).
pub struct Host(pub HostCaller);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Host {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<HostCaller>()
            .cloned()
            .map(Host)
            .ok_or_else(|| ApiError::App(app::error::AppError::unauthenticated()))
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// One plugin the channel names.
#[derive(Serialize, ToSchema)]
struct Entry {
    plugin: String,
    version: String,
    /// Download it from `/api/v1/fleet/bundles/{bundle_sha256}` and check the digest.
    bundle_sha256: String,
    /// The release's signed documents (from `/api/v1/fleet/bundles/{digest}/attestations`).
    attestations: Vec<String>,
    /// `canary` (this host is in the rollout's cohort) or `stable`.
    cohort: String,
}

/// What a host runs.
#[derive(Serialize, ToSchema)]
struct ChannelAnswer {
    host: String,
    entries: Vec<Entry>,
}

/// What this host should run now: one entry per plugin (a plugin absent is to be removed).
/// Send the last answer's `ETag` as `If-None-Match`: an unchanged channel answers 304 with no
/// body. A group token's host names itself in `Stellar-Host`; `Stellar-Product-Version` and
/// `Stellar-Region` describe it on the fleet page.
#[utoipa::path(get, path = "/api/v1/fleet/channel", tag = "fleet",
    params(
        ("Stellar-Host" = Option<String>, Header, description = "The host (group tokens)"),
        ("Stellar-Product-Version" = Option<String>, Header, description = "The host product's version"),
        ("Stellar-Region" = Option<String>, Header, description = "The host's region"),
        ("If-None-Match" = Option<String>, Header, description = "The last answer's ETag")),
    responses((status = 200, body = ChannelAnswer), (status = 304, description = "Unchanged"),
        (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM)))]
async fn channel(
    State(s): State<AppState>,
    Host(caller): Host,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = s
        .fleet
        .channel(
            &caller,
            header_str(&headers, HOST_HEADER),
            header_str(&headers, "stellar-product-version"),
            header_str(&headers, "stellar-region"),
        )
        .await?;
    let time = HeaderValue::from(s.releases.clock().now().timestamp());
    let etag = HeaderValue::from_str(&c.answer.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let hit = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == c.answer.etag || t.trim() == "*");
    metrics::counter!("stellar_fleet_polls_total", "result" => if hit { "not_modified" } else { "changed" })
        .increment(1);
    if hit {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (TIME_HEADER.parse().unwrap_or(header::DATE), time),
            ],
        )
            .into_response());
    }
    let body = ChannelAnswer {
        host: c.host,
        entries: c
            .answer
            .entries
            .iter()
            .map(|e| Entry {
                plugin: e.plugin.clone(),
                version: e.version.clone(),
                bundle_sha256: e.bundle_sha256.clone(),
                attestations: e.attestations.clone(),
                cohort: e.cohort.clone(),
            })
            .collect(),
    };
    Ok((
        [
            (header::ETAG, etag),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-cache"),
            ),
            (TIME_HEADER.parse().unwrap_or(header::DATE), time),
        ],
        Json(body),
    )
        .into_response())
}

/// A bundle the channel names. Check its sha256 against the digest and verify its
/// attestations before installing it.
#[utoipa::path(get, path = "/api/v1/fleet/bundles/{digest}", tag = "fleet",
    params(("digest" = String, Path, description = "The bundle's sha256 (hex)")),
    responses((status = 200, content_type = "application/octet-stream", description = "The bundle"),
        (status = 404, body = Problem, content_type = PROBLEM)))]
async fn bundle(
    State(s): State<AppState>,
    Host(caller): Host,
    ApiPath(digest): ApiPath<String>,
) -> Result<Response, ApiError> {
    let bytes = s.fleet.bundle(&caller, &digest).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=31536000, immutable"),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// One signed document of a release.
#[derive(Serialize, ToSchema)]
struct Attestation {
    name: String,
    /// The DSSE envelope.
    #[schema(value_type = Object)]
    envelope: serde_json::Value,
}

/// The signed documents (in-toto layout, links, statements) of the release a bundle digest
/// names; verify them with the trust root (`/api/v1/keys/root`) before installing.
#[utoipa::path(get, path = "/api/v1/fleet/bundles/{digest}/attestations", tag = "fleet",
    params(("digest" = String, Path, description = "The bundle's sha256 (hex)")),
    responses((status = 200, body = Vec<Attestation>), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn attestations(
    State(s): State<AppState>,
    Host(caller): Host,
    ApiPath(digest): ApiPath<String>,
) -> Result<Json<Vec<Attestation>>, ApiError> {
    Ok(Json(
        s.fleet
            .attestations(&caller, &digest)
            .await?
            .into_iter()
            .map(|(name, envelope)| Attestation { name, envelope })
            .collect(),
    ))
}

/// How many samples were stored.
#[derive(Serialize, ToSchema)]
struct Stored {
    stored: usize,
}

/// A host's health samples (per plugin version and interval; latency as a histogram over the
/// documented buckets). Stored whole, or refused whole (422) with every bad sample named:
/// late, future-dated, duplicate, oversized, inconsistent, or for a version the channel never
/// named.
#[utoipa::path(post, path = "/api/v1/fleet/reports", tag = "fleet",
    request_body(content = Object, description = "A report batch: host, product_version, policy_pack, samples"),
    responses((status = 202, body = Stored),
        (status = 403, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM)))]
async fn report(
    State(s): State<AppState>,
    Host(caller): Host,
    ApiJson(batch): ApiJson<ReportBatch>,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
    match s.fleet.report(&caller, &batch).await {
        Ok(stored) => Ok((StatusCode::ACCEPTED, Json(Stored { stored }))),
        Err(ReportError::Refused(r)) => Err(ApiError::Report(r)),
        Err(ReportError::App(e)) => Err(ApiError::App(e)),
    }
}

/// Every fleet token (never their secrets).
#[utoipa::path(get, path = "/api/v1/fleet/tokens", tag = "fleet",
    responses((status = 200, body = Vec<FleetToken>)))]
async fn list_tokens(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> Result<Json<Vec<FleetToken>>, ApiError> {
    Ok(Json(s.fleet.list_tokens(&who).await?))
}

/// Makes a fleet token for one host (`host`) or for a group of hosts (`group`). The secret is
/// shown once.
#[utoipa::path(post, path = "/api/v1/fleet/tokens", tag = "fleet", request_body = NewFleetToken,
    responses((status = 201, body = CreatedFleetToken), (status = 422, body = Problem, content_type = PROBLEM)))]
async fn create_token(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<NewFleetToken>,
) -> Result<(StatusCode, Json<CreatedFleetToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.fleet.create_token(&who, input).await?),
    ))
}

/// Revokes a fleet token: its hosts are refused from their next request.
#[utoipa::path(post, path = "/api/v1/fleet/tokens/{id}/revoke", tag = "fleet",
    params(("id" = String, Path, description = "Fleet token id")),
    responses((status = 200, body = FleetToken), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn revoke_token(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<FleetToken>, ApiError> {
    Ok(Json(s.fleet.revoke_token(&who, &id).await?))
}

/// Hosts by product version and region, and the stale ones.
#[utoipa::path(get, path = "/api/v1/fleet", tag = "fleet",
    responses((status = 200, body = FleetOverview)))]
async fn overview(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> Result<Json<FleetOverview>, ApiError> {
    Ok(Json(s.fleet.overview(&who).await?))
}

/// A rollout control with its reason.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ControlInput {
    control: RolloutControl,
    reason: String,
}

/// Steers a release's rollout (platform users): `promote` skips the rest of the hold,
/// `pause` and `resume` stop and restart the analysis, `retry` starts a rolled-back release
/// again, `yank` withdraws a GA version (hosts return to the one before). Ledgered with the
/// reason; 409 when the release is not in a state the control applies to.
#[utoipa::path(post, path = "/api/v1/releases/{id}/rollout", tag = "releases",
    params(("id" = String, Path, description = "Release id")), request_body = ControlInput,
    responses((status = 200, body = ReleaseDetail),
        (status = 409, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM)))]
async fn control(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<ControlInput>,
) -> Result<Json<ReleaseDetail>, ApiError> {
    Ok(Json(
        s.releases
            .control(&who, &id, input.control, &input.reason)
            .await?,
    ))
}

/// The portal's rollout control form.
#[derive(Deserialize, ToSchema)]
struct ControlForm {
    control: String,
    #[serde(default)]
    reason: String,
}

/// The portal's rollout controls (work without JavaScript): back to the release with what
/// happened.
#[utoipa::path(post, path = "/releases/{id}/rollout", tag = "portal",
    params(("id" = String, Path, description = "Release id")),
    request_body(content = ControlForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the release, with `?notice=` or `?error=`")))]
async fn portal_control(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiForm(form): ApiForm<ControlForm>,
) -> Response {
    let outcome = match form.control.parse::<RolloutControl>() {
        Ok(c) => s
            .releases
            .control(&who, &id, c, &form.reason)
            .await
            .map(|_| format!("Done: {}.", c.as_str()))
            .map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "`{}` is not a control: promote, pause, resume, retry or yank",
            form.control
        )),
    };
    super::api_releases::back(&id, outcome)
}
