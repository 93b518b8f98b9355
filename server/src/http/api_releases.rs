//! The JSON API of releases: create one from an accepted submission, list and read them, approve
//! or reject, abort, override a closed calendar, read the fast-review package, download the
//! attestation archive; the count of what waits for the caller.

use app::delivery::{
    DecisionInput, NewRelease, ReasonInput, ReleaseDetail, ReleaseFilter, ReleasePage,
    ReviewPackage,
};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{ApiForm, ApiJson, ApiPath, ApiQuery, Auth};
use super::problem::{ApiError, Problem};

const PROBLEM: &str = "application/problem+json";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_releases, create_release))
        .routes(routes!(get_release))
        .routes(routes!(decide_release))
        .routes(routes!(abort_release))
        .routes(routes!(override_window))
        .routes(routes!(release_package))
        .routes(routes!(release_attestations))
        .routes(routes!(inbox))
        .routes(routes!(portal_decision))
        .routes(routes!(portal_abort))
}

/// The portal's approve / reject form.
#[derive(serde::Deserialize, utoipa::ToSchema)]
struct DecisionForm {
    /// `approve` or `reject`.
    decision: String,
    #[serde(default)]
    reason: String,
}

/// The portal's abort form.
#[derive(serde::Deserialize, utoipa::ToSchema)]
struct AbortForm {
    #[serde(default)]
    reason: String,
}

pub(super) fn back(id: &str, outcome: Result<String, String>) -> Response {
    let (key, text) = match outcome {
        Ok(n) => ("notice", n),
        Err(e) => ("error", e),
    };
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair(key, &text.chars().take(1500).collect::<String>())
        .finish();
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    axum::response::Redirect::to(&format!("/releases/{id}?{q}")).into_response()
}

/// The portal's decision form (works without JavaScript): back to the release with what
/// happened. The session's CSRF token is the form's `csrf_token` field.
#[utoipa::path(post, path = "/releases/{id}/decision", tag = "portal",
    params(("id" = String, Path, description = "Release id")),
    request_body(content = DecisionForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the release, with `?notice=` or `?error=`")))]
async fn portal_decision(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiForm(form): ApiForm<DecisionForm>,
) -> Response {
    let decision = match form.decision.as_str() {
        "approve" => app::delivery::Verdict::Approve,
        "reject" => app::delivery::Verdict::Reject,
        other => {
            return back(
                &id,
                Err(format!("`{other}` is not a decision: approve or reject")),
            );
        }
    };
    let outcome = s
        .releases
        .decide(
            &who,
            &id,
            DecisionInput {
                decision,
                reason: form.reason,
            },
        )
        .await
        .map(|_| match decision {
            app::delivery::Verdict::Approve => "Approved: the release moves on.".to_owned(),
            app::delivery::Verdict::Reject => "Rejected: the release has ended.".to_owned(),
        })
        .map_err(|e| e.to_string());
    back(&id, outcome)
}

/// The portal's abort form (works without JavaScript).
#[utoipa::path(post, path = "/releases/{id}/abort", tag = "portal",
    params(("id" = String, Path, description = "Release id")),
    request_body(content = AbortForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the release, with `?notice=` or `?error=`")))]
async fn portal_abort(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiForm(form): ApiForm<AbortForm>,
) -> Response {
    let outcome = s
        .releases
        .abort(&who, &id, &form.reason)
        .await
        .map(|_| "Aborted.".to_owned())
        .map_err(|e| e.to_string());
    back(&id, outcome)
}

/// Releases the caller may see, newest first (partners: their own tenant's). `awaiting_me=true`
/// lists the approvals inbox.
#[utoipa::path(get, path = "/api/v1/releases", tag = "releases", params(ReleaseFilter),
    responses((status = 200, body = ReleasePage)))]
async fn list_releases(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiQuery(filter): ApiQuery<ReleaseFilter>,
) -> Result<Json<ReleasePage>, ApiError> {
    Ok(Json(s.releases.list(&who, filter).await?))
}

/// Creates a release of an accepted submission (pass or warn). A denied submission is refused
/// with its reasons; an older release of the plugin in flight ends `superseded`.
#[utoipa::path(post, path = "/api/v1/releases", tag = "releases", request_body = NewRelease,
    responses((status = 201, body = ReleaseDetail),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM)))]
async fn create_release(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<NewRelease>,
) -> Result<(StatusCode, Json<ReleaseDetail>), ApiError> {
    let created = s.releases.create(&who, input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// A release with its stages (actor, time, link and signature status), decisions and documents.
#[utoipa::path(get, path = "/api/v1/releases/{id}", tag = "releases",
    params(("id" = String, Path, description = "Release id")),
    responses((status = 200, body = ReleaseDetail), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn get_release(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReleaseDetail>, ApiError> {
    Ok(Json(s.releases.detail(&who, &id).await?))
}

/// Approves or rejects the approval stage the release waits at. Refused (403) to the wrong
/// role, to the person who created the release or submitted the version, and to the
/// submitting tenant; refused (409) to someone who already decided, and when no decision is
/// awaited.
#[utoipa::path(post, path = "/api/v1/releases/{id}/approvals", tag = "releases",
    params(("id" = String, Path, description = "Release id")), request_body = DecisionInput,
    responses((status = 200, body = ReleaseDetail),
        (status = 403, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM)))]
async fn decide_release(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<DecisionInput>,
) -> Result<Json<ReleaseDetail>, ApiError> {
    Ok(Json(s.releases.decide(&who, &id, input).await?))
}

/// Stops a release in flight, with a reason (never waits for the calendar). A finished release
/// cannot be aborted (409).
#[utoipa::path(post, path = "/api/v1/releases/{id}/abort", tag = "releases",
    params(("id" = String, Path, description = "Release id")), request_body = ReasonInput,
    responses((status = 200, body = ReleaseDetail), (status = 409, body = Problem, content_type = PROBLEM)))]
async fn abort_release(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<ReasonInput>,
) -> Result<Json<ReleaseDetail>, ApiError> {
    Ok(Json(s.releases.abort(&who, &id, &input.reason).await?))
}

/// Lets a promotion that waits for the calendar through (administrators, with a reason that
/// is ledgered).
#[utoipa::path(post, path = "/api/v1/releases/{id}/override", tag = "releases",
    params(("id" = String, Path, description = "Release id")), request_body = ReasonInput,
    responses((status = 200, body = ReleaseDetail), (status = 409, body = Problem, content_type = PROBLEM)))]
async fn override_window(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<ReasonInput>,
) -> Result<Json<ReleaseDetail>, ApiError> {
    Ok(Json(
        s.releases.override_window(&who, &id, &input.reason).await?,
    ))
}

/// The fast-review package (the predicate of its signed statement, which is in the
/// attestation archive).
#[utoipa::path(get, path = "/api/v1/releases/{id}/package", tag = "releases",
    params(("id" = String, Path, description = "Release id")),
    responses((status = 200, body = ReviewPackage), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn release_package(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReviewPackage>, ApiError> {
    Ok(Json(s.releases.package(&who, &id).await?))
}

/// The attestation archive (`.tar.gz`): the bundle, the in-toto layout and links, the
/// statements, the release key and the trust root. Unpack it and run
/// `in-toto-verify -l root.layout --verification-keys release.pub` inside.
#[utoipa::path(get, path = "/api/v1/releases/{id}/attestations", tag = "releases",
    params(("id" = String, Path, description = "Release id")),
    responses((status = 200, content_type = "application/gzip", description = "The archive"),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM)))]
async fn release_attestations(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (name, bytes) = s.releases.attestations(&who, &id).await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/gzip"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// How many releases wait for the caller's decision.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Inbox {
    waiting: u64,
}

/// The count the portal's navigation badge shows: releases waiting for a decision the caller
/// may make.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "releases", responses((status = 200, body = Inbox)))]
async fn inbox(State(s): State<AppState>, Auth(who): Auth) -> Result<Json<Inbox>, ApiError> {
    Ok(Json(Inbox {
        waiting: s.releases.inbox_count(&who).await?,
    }))
}
