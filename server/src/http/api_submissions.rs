//! The JSON API of plugin submissions: upload a bundle, list and read submissions with their
//! verdicts, publisher profiles, and publisher keys (registered by partners, approved by secops
//! or administrators, revocable).

use app::types::{
    NewPublisherKey, PublisherKey, PublisherProfile, PublisherProfileUpdate, SubmissionDetail,
    SubmissionFilter, SubmissionPage, SubmissionSummary,
};
use axum::Extension;
use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{CSRF_FIELD, UploadCsrf, csrf_matches};
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::problem::{ApiError, Problem};
use crate::services::submissions::SubmitError;

const PROBLEM: &str = "application/problem+json";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_submissions, create_submission))
        .routes(routes!(get_submission))
        .routes(routes!(list_publisher_keys, create_publisher_key))
        .routes(routes!(approve_publisher_key))
        .routes(routes!(revoke_publisher_key))
        .routes(routes!(portal_upload))
        .routes(routes!(get_publisher_profile, update_publisher_profile))
}

/// The upload form.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct Upload {
    /// The bundle: `.tar.gz` or `.zip` (see docs/plugin-bundle.md).
    #[schema(value_type = String, format = Binary)]
    bundle: Vec<u8>,
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::App(e) => ApiError::App(e),
            SubmitError::Refused(r) => ApiError::Refused(r),
        }
    }
}

/// Submits a bundle (multipart field `bundle`). Answers 202 with the queued submission; the
/// verdict follows at `GET /api/v1/submissions/{id}`. A bundle that cannot be accepted is
/// refused with 413 or 422, a problem that names the file and the limit or the manifest line,
/// and nothing is stored.
#[utoipa::path(post, path = "/api/v1/submissions", tag = "submissions",
    request_body(content = Upload, content_type = "multipart/form-data"),
    responses((status = 202, body = SubmissionSummary),
        (status = 413, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM)))]
async fn create_submission(
    State(s): State<AppState>,
    Auth(who): Auth,
    mut form: Multipart,
) -> Result<(StatusCode, Json<SubmissionSummary>), ApiError> {
    let _reading = s.submissions.upload_permit(&who).await?;
    let limit = s.submissions.settings().limits.max_bundle_bytes;
    let (filename, bytes) = read_bundle(&mut form, limit).await?;
    let created = s.submissions.submit(&who, &filename, bytes).await?;
    Ok((StatusCode::ACCEPTED, Json(created)))
}

fn refuse(code: &str, message: String) -> ApiError {
    ApiError::Refused(plugin::Rejection {
        code: code.into(),
        file: None,
        message,
        errors: Vec::new(),
    })
}

/// Reads the `bundle` field of a multipart form, refusing more than `limit` bytes.
pub async fn read_bundle(form: &mut Multipart, limit: u64) -> Result<(String, Vec<u8>), ApiError> {
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            refuse(
                "bundle_too_large",
                format!("the upload is larger than the limit of {limit} bytes"),
            )
        } else {
            refuse(
                "upload_invalid",
                format!("the upload could not be read: {e}"),
            )
        }
    };
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("bundle") {
            continue;
        }
        let filename = field.file_name().unwrap_or("bundle").to_owned();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(refuse(
                    "bundle_too_large",
                    format!(
                        "`{filename}` is larger than the limit of {limit} bytes (raise --max-bundle-bytes or make the bundle smaller)"
                    ),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Err(refuse(
                "upload_invalid",
                "the `bundle` field is empty: choose a bundle file".into(),
            ));
        }
        return Ok((filename, bytes));
    }
    Err(refuse(
        "upload_invalid",
        "the form has no `bundle` field: send the bundle as multipart/form-data field `bundle`"
            .into(),
    ))
}

/// The portal's upload form (works without JavaScript): on success, to the submission's page;
/// when refused, back to the form with the reason next to the field. With a session, the
/// form's first field is its CSRF token, checked before the bundle is read (never in the URL).
#[utoipa::path(post, path = "/submissions/upload", tag = "portal",
    request_body(content = Upload, content_type = "multipart/form-data"),
    responses((status = 303, description = "To the submission, or back to the form with `?error=`")))]
pub async fn portal_upload(
    State(s): State<AppState>,
    Auth(who): Auth,
    csrf: Option<Extension<UploadCsrf>>,
    mut form: Multipart,
) -> Response {
    if let Some(Extension(UploadCsrf(expected))) = csrf
        && !first_field_is_token(&mut form, &expected).await
    {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "the CSRF token is missing or wrong: reload the upload page and try again (the form's first field must be `csrf_token`)",
        )
        .into_response_with_status();
    }
    let limit = s.submissions.settings().limits.max_bundle_bytes;
    let outcome = match s.submissions.upload_permit(&who).await {
        Err(e) => Err(ApiError::App(e)),
        Ok(_reading) => match read_bundle(&mut form, limit).await {
            Ok((filename, bytes)) => s
                .submissions
                .submit(&who, &filename, bytes)
                .await
                .map_err(ApiError::from),
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok(created) => {
            axum::response::Redirect::to(&format!("/submissions/{}", created.id)).into_response()
        }
        Err(e) => {
            let message = match e {
                ApiError::Refused(r) => {
                    let mut m = r.message;
                    for err in r.errors.iter().take(5) {
                        m.push_str(&format!(
                            " — plugin.toml line {}, column {}: {}",
                            err.line, err.column, err.message
                        ));
                    }
                    m
                }
                ApiError::App(e) => e.to_string(),
                ApiError::Report(r) => r.detail,
                ApiError::Rejection { detail, .. } => detail,
            };
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("error", &message.chars().take(1500).collect::<String>())
                .finish();
            axum::response::Redirect::to(&format!("/submissions/new?{q}")).into_response()
        }
    }
}

/// Reads the form's first field: it must be `csrf_token`, holding the session's token.
async fn first_field_is_token(form: &mut Multipart, expected: &str) -> bool {
    let Ok(Some(field)) = form.next_field().await else {
        return false;
    };
    if field.name() != Some(CSRF_FIELD) {
        return false;
    }
    match field.text().await {
        Ok(t) if t.len() <= 256 => csrf_matches(&t, expected),
        _ => false,
    }
}

/// Submissions the caller may see, newest first: a partner's own tenant; staff all tenants
/// (filter with `tenant`).
#[utoipa::path(get, path = "/api/v1/submissions", tag = "submissions", params(SubmissionFilter),
    responses((status = 200, body = SubmissionPage)))]
async fn list_submissions(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiQuery(filter): ApiQuery<SubmissionFilter>,
) -> Result<Json<SubmissionPage>, ApiError> {
    Ok(Json(s.submissions.list(&who, filter).await?))
}

/// A submission with its verdict (findings with evidence and fixes), the facts it judged, and
/// the plugin's versions.
#[utoipa::path(get, path = "/api/v1/submissions/{id}", tag = "submissions",
    params(("id" = String, Path, description = "Submission id")),
    responses((status = 200, body = SubmissionDetail), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn get_submission(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SubmissionDetail>, ApiError> {
    Ok(Json(s.submissions.get(&who, &id).await?))
}

/// Publisher keys: a partner's own tenant; staff all.
#[utoipa::path(get, path = "/api/v1/publisher-keys", tag = "submissions",
    responses((status = 200, body = [PublisherKey])))]
async fn list_publisher_keys(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> Result<Json<Vec<PublisherKey>>, ApiError> {
    Ok(Json(s.submissions.list_keys(&who).await?))
}

/// Registers a publisher public key. Bundles signed with it count as signed once secops or an
/// administrator approved it.
#[utoipa::path(post, path = "/api/v1/publisher-keys", tag = "submissions",
    request_body = NewPublisherKey,
    responses((status = 201, body = PublisherKey), (status = 409, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM)))]
async fn create_publisher_key(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<NewPublisherKey>,
) -> Result<(StatusCode, Json<PublisherKey>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.submissions.register_key(&who, input).await?),
    ))
}

/// Approves a publisher key (secops, administrators): from now on its signatures count.
#[utoipa::path(post, path = "/api/v1/publisher-keys/{key}/approve", tag = "submissions",
    params(("key" = String, Path, description = "Key id, or its first 8+ hex digits")),
    responses((status = 200, body = PublisherKey), (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM)))]
async fn approve_publisher_key(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<PublisherKey>, ApiError> {
    Ok(Json(s.submissions.approve_key(&who, &key).await?))
}

/// Revokes a publisher key (its partner, secops, administrators): its signatures no longer
/// count.
#[utoipa::path(post, path = "/api/v1/publisher-keys/{key}/revoke", tag = "submissions",
    params(("key" = String, Path, description = "Key id, or its first 8+ hex digits")),
    responses((status = 200, body = PublisherKey), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn revoke_publisher_key(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<PublisherKey>, ApiError> {
    Ok(Json(s.submissions.revoke_key(&who, &key).await?))
}

/// A tenant's publisher profile: verified, tier, egress rules (partners: their own tenant).
#[utoipa::path(get, path = "/api/v1/tenants/{slug}/publisher", tag = "submissions",
    params(("slug" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = PublisherProfile), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn get_publisher_profile(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<PublisherProfile>, ApiError> {
    Ok(Json(s.submissions.profile(&who, &slug).await?))
}

/// Changes a tenant's publisher profile (administrators); the change is in the ledger.
#[utoipa::path(patch, path = "/api/v1/tenants/{slug}/publisher", tag = "submissions",
    params(("slug" = String, Path, description = "Tenant slug")),
    request_body = PublisherProfileUpdate,
    responses((status = 200, body = PublisherProfile), (status = 403, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM)))]
async fn update_publisher_profile(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(slug): ApiPath<String>,
    ApiJson(input): ApiJson<PublisherProfileUpdate>,
) -> Result<Json<PublisherProfile>, ApiError> {
    Ok(Json(
        s.submissions.update_profile(&who, &slug, input).await?,
    ))
}
