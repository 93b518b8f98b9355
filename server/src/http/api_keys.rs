//! The JSON API of Stellar's signing keys: the public trust root, the key list, and offline
//! signing requests (platform engineers and administrators).

use app::error::AppError;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{ApiJson, ApiPath, Auth};
use super::problem::{ApiError, Problem};
use crate::services::keys::KeyInfo;
use crate::services::signing::Imported;

type ApiResult<T> = Result<Json<T>, ApiError>;

const PROBLEM: &str = "application/problem+json";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(trust_root))
        .routes(routes!(list_keys))
        .routes(routes!(list_signing_requests))
        .routes(routes!(get_signing_request))
        .routes(routes!(import_signature))
}

/// The trust root: every registered public key with its purpose, validity and revocation.
/// Public, so that anyone can verify Stellar's signatures offline.
#[utoipa::path(get, path = "/api/v1/trust-root", tag = "keys",
    responses((status = 200, description = "Trust root (version 1)", content_type = "application/json")))]
async fn trust_root(State(s): State<AppState>) -> Result<Response, ApiError> {
    let root = s.keys.trust_root().await?;
    let mut res = root.to_json().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

/// Registered signing keys, newest first.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = [KeyInfo])))]
async fn list_keys(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Vec<KeyInfo>> {
    Ok(Json(s.keys.list(&who).await?))
}

/// Signing requests waiting for an offline key.
#[utoipa::path(get, path = "/api/v1/signing-requests", tag = "keys",
    responses((status = 200, description = "Pending requests (stellar-signing-request/v1)", content_type = "application/json"),
        (status = 403, body = Problem, content_type = PROBLEM)))]
async fn list_signing_requests(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> Result<Response, ApiError> {
    let list = s.signing.pending(&who).await?;
    Ok(Json(list).into_response())
}

/// One pending request: the file to carry to the offline signer.
#[utoipa::path(get, path = "/api/v1/signing-requests/{id}", tag = "keys",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "stellar-signing-request/v1", content_type = "application/json"),
        (status = 404, body = Problem, content_type = PROBLEM)))]
async fn get_signing_request(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.signing.request(&who, &id).await?).into_response())
}

/// Imports the signature of a request (`stellar sign --offline` output). The server verifies
/// it against the trust root and stores the attestation exactly as if it had signed online.
#[utoipa::path(post, path = "/api/v1/signing-requests/{id}/signature", tag = "keys",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = Object, description = "stellar-signed-request/v1"),
    responses((status = 201, body = Imported), (status = 422, body = Problem, content_type = PROBLEM)))]
async fn import_signature(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(signed): ApiJson<trust::offline::SignedRequest>,
) -> Result<(StatusCode, Json<Imported>), ApiError> {
    if signed.format != trust::offline::SIGNED_FORMAT {
        return Err(AppError::invalid(
            "format",
            format!(
                "`{}` is not a signed request: expected `{}` (the output of `stellar sign --offline`)",
                signed.format,
                trust::offline::SIGNED_FORMAT
            ),
        )
        .into());
    }
    if signed.request_id != id {
        return Err(AppError::invalid(
            "request_id",
            format!(
                "the signed file is for request {}, not {id}",
                signed.request_id
            ),
        )
        .into());
    }
    let saved = s.signing.import(&who, &signed).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}
