//! The JSON API of the trust base: the audit ledger (entries, signed checkpoints, proofs,
//! export, verification), the signing keys and trust root, and offline signing requests.

use app::api::backend::{LedgerBackend, Principal};
use app::error::AppError;
use app::types::{
    LedgerCheckpoint, LedgerConsistency, LedgerEntry, LedgerFilter, LedgerPage, LedgerProof,
    LedgerStatus, LedgerVerification, Role,
};
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::api_v1::{ApiJson, ApiPath};
use super::auth::Auth;
use super::problem::{ApiError, Problem};
use crate::services::keys::KeyInfo;
use crate::services::ledger::Ledger;
use crate::services::signing::AttestationInfo;

/// A query string whose rejections are problem documents.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Who may handle signing requests.
pub const SIGNERS: &[Role] = &[Role::Platform, Role::Admin];

fn require_signer(who: &Principal) -> Result<(), AppError> {
    if SIGNERS.contains(&who.role()) {
        Ok(())
    } else {
        Err(AppError::forbidden(format!(
            "only platform engineers and administrators handle signing requests; you are signed in as {}",
            who.role()
        )))
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ledger_status))
        .routes(routes!(ledger_entries))
        .routes(routes!(ledger_entry))
        .routes(routes!(ledger_entry_proof))
        .routes(routes!(list_checkpoints, create_checkpoint))
        .routes(routes!(latest_checkpoint))
        .routes(routes!(consistency_proof))
        .routes(routes!(export))
        .routes(routes!(verify))
        .routes(routes!(trust_root))
        .routes(routes!(list_keys))
        .routes(routes!(list_signing_requests))
        .routes(routes!(get_signing_request))
        .routes(routes!(import_signature))
}

const PROBLEM: &str = "application/problem+json";

/// The ledger at a glance: size, newest checkpoint, last verification.
#[utoipa::path(get, path = "/api/v1/ledger", tag = "ledger",
    responses((status = 200, body = LedgerStatus), (status = 403, body = Problem, content_type = PROBLEM)))]
async fn ledger_status(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<LedgerStatus> {
    Ok(Json(s.audit.ledger_status(&who).await?))
}

/// Entries matching the filters, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/ledger/entries", tag = "ledger", params(LedgerFilter),
    responses((status = 200, body = LedgerPage), (status = 422, body = Problem, content_type = PROBLEM)))]
async fn ledger_entries(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiQuery(filter): ApiQuery<LedgerFilter>,
) -> ApiResult<LedgerPage> {
    Ok(Json(s.audit.ledger_entries(&who, filter).await?))
}

/// One entry.
#[utoipa::path(get, path = "/api/v1/ledger/entries/{seq}", tag = "ledger",
    params(("seq" = u64, Path, description = "Entry position, from 0")),
    responses((status = 200, body = LedgerEntry), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn ledger_entry(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(seq): ApiPath<u64>,
) -> ApiResult<LedgerEntry> {
    Ok(Json(s.audit.entry(&who, seq).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ProofQuery {
    /// The checkpoint size to prove inclusion in (default: the newest checkpoint; one is
    /// signed if none covers the entry yet).
    size: Option<u64>,
}

/// An entry with its inclusion proof in a signed checkpoint: a bundle that
/// `stellar ledger verify --proof` checks offline.
#[utoipa::path(get, path = "/api/v1/ledger/entries/{seq}/proof", tag = "ledger",
    params(("seq" = u64, Path, description = "Entry position, from 0"), ProofQuery),
    responses((status = 200, body = LedgerProof), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn ledger_entry_proof(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(seq): ApiPath<u64>,
    ApiQuery(q): ApiQuery<ProofQuery>,
) -> ApiResult<LedgerProof> {
    Ok(Json(s.audit.ledger_proof(&who, seq, q.size).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// How many, newest first (1–1000, default 100).
    limit: Option<u64>,
}

/// Signed checkpoints, newest first.
#[utoipa::path(get, path = "/api/v1/ledger/checkpoints", tag = "ledger", params(ListQuery),
    responses((status = 200, body = [LedgerCheckpoint])))]
async fn list_checkpoints(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Vec<LedgerCheckpoint>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::invalid("limit", "must be between 1 and 1000").into());
    }
    Ok(Json(s.audit.checkpoints(&who, limit).await?))
}

/// Signs a checkpoint of the current ledger now (answers the newest one, 200, if the ledger
/// has not grown since).
#[utoipa::path(post, path = "/api/v1/ledger/checkpoints", tag = "ledger",
    responses((status = 201, body = LedgerCheckpoint), (status = 200, body = LedgerCheckpoint),
        (status = 409, body = Problem, content_type = PROBLEM)))]
async fn create_checkpoint(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> Result<(StatusCode, Json<LedgerCheckpoint>), ApiError> {
    let before = s.ledger.latest_checkpoint().await?.map(|c| c.size);
    let cp = s.audit.checkpoint_ledger(&who).await?;
    let status = if before == Some(cp.size) {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(cp)))
}

/// The newest signed checkpoint (one is signed if there is none yet).
#[utoipa::path(get, path = "/api/v1/ledger/checkpoint", tag = "ledger",
    responses((status = 200, body = LedgerCheckpoint), (status = 409, body = Problem, content_type = PROBLEM)))]
async fn latest_checkpoint(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<LedgerCheckpoint> {
    Ok(Json(s.audit.latest_checkpoint(&who).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencyQuery {
    /// The older checkpoint's size.
    old: u64,
    /// The newer checkpoint's size.
    new: u64,
}

/// A consistency proof between two signed checkpoints: a bundle that
/// `stellar ledger verify --proof` checks offline.
#[utoipa::path(get, path = "/api/v1/ledger/proofs/consistency", tag = "ledger", params(ConsistencyQuery),
    responses((status = 200, body = LedgerConsistency), (status = 404, body = Problem, content_type = PROBLEM)))]
async fn consistency_proof(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> ApiResult<LedgerConsistency> {
    Ok(Json(s.audit.consistency(&who, q.old, q.new).await?))
}

/// The whole ledger as JSON Lines: a header (format, origin, size, every signed checkpoint),
/// then one entry per line. Streamed; `stellar ledger verify --export` checks it offline.
#[utoipa::path(get, path = "/api/v1/ledger/export", tag = "ledger",
    responses((status = 200, description = "JSON Lines", content_type = "application/x-ndjson")))]
async fn export(State(s): State<AppState>, Auth(who): Auth) -> Result<Response, ApiError> {
    let ledger = s.audit.authorize_export(&who)?.clone();
    let header = ledger.export_header().await?;
    let first = serde_json::to_string(&header).map_err(|e| AppError::internal(e.to_string()))?;
    let size = header.size;
    let stream = futures_util::stream::unfold(
        (ledger, Some(first), 0u64),
        move |(ledger, first, from): (Ledger, Option<String>, u64)| async move {
            if let Some(line) = first {
                return Some((Ok(format!("{line}\n")), (ledger, None, from)));
            }
            if from >= size {
                return None;
            }
            match ledger.range(from, 2000.min(size - from)).await {
                Ok(page) if !page.is_empty() => {
                    let next = page.last().map_or(size, |e| e.seq + 1);
                    let mut chunk = String::new();
                    for e in page.iter().filter(|e| e.seq < size) {
                        chunk.push_str(&serde_json::to_string(e).unwrap_or_default());
                        chunk.push('\n');
                    }
                    Some((Ok(chunk), (ledger, None, next)))
                }
                Ok(_) => None,
                Err(e) => Some((
                    Err(std::io::Error::other(e.to_string())),
                    (ledger, None, size),
                )),
            }
        },
    );
    let mut res = Body::from_stream(stream).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"stellar-ledger.jsonl\""),
    );
    Ok(res)
}

/// Verifies the whole ledger now against the registered checkpoint keys and records the
/// outcome (shown in the portal).
#[utoipa::path(post, path = "/api/v1/ledger/verifications", tag = "ledger",
    responses((status = 200, body = LedgerVerification)))]
async fn verify(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<LedgerVerification> {
    Ok(Json(s.audit.verify_ledger(&who).await?))
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
async fn list_keys(State(s): State<AppState>, Auth(_who): Auth) -> ApiResult<Vec<KeyInfo>> {
    Ok(Json(s.keys.list().await?))
}

/// Signing requests waiting for an offline key.
#[utoipa::path(get, path = "/api/v1/signing-requests", tag = "keys",
    responses((status = 200, description = "Pending requests (stellar-signing-request/v1)", content_type = "application/json"),
        (status = 403, body = Problem, content_type = PROBLEM)))]
async fn list_signing_requests(
    State(s): State<AppState>,
    Auth(who): Auth,
) -> Result<Response, ApiError> {
    require_signer(&who)?;
    let list = s.signing.pending().await?;
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
    require_signer(&who)?;
    Ok(Json(s.signing.request(&id).await?).into_response())
}

/// Imports the signature of a request (`stellar sign --offline` output). The server verifies
/// it against the trust root and stores the attestation exactly as if it had signed online.
#[utoipa::path(post, path = "/api/v1/signing-requests/{id}/signature", tag = "keys",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = Object, description = "stellar-signed-request/v1"),
    responses((status = 201, body = AttestationInfo), (status = 422, body = Problem, content_type = PROBLEM)))]
async fn import_signature(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(signed): ApiJson<trust::offline::SignedRequest>,
) -> Result<(StatusCode, Json<AttestationInfo>), ApiError> {
    require_signer(&who)?;
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
    let saved = s.signing.import(&signed, &who.me.username).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}
